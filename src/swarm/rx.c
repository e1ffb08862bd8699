/*
 * rx.c - receivers, and the bare connections of a connect storm.
 *
 * A receiver subscribes (hello, mode START so it cannot miss a packet
 * that was sent before its welcome), hands every stream frame to its
 * checker (rxchk.c), and is complete when it holds every file of its
 * channel.  Variants: a slow receiver reads through a token bucket
 * (--slow-rate); a churning receiver closes its connection at chosen
 * points and rejoins with RESUME from the next seq it wants, keeping its
 * checker, so any gap or repeat across the rejoin is counted.  In rate
 * mode each data frame's latency is taken from the time the sender was
 * due to send it, not the time it did (no coordinated omission).
 *
 * A storm connection sends a receiver hello and counts as served only
 * when a welcome comes back within the storm window.
 *
 * A receiver's connection state (idle, connecting, waiting for the
 * welcome, streaming) is its link's (src/link), which also refuses a
 * stream frame before the welcome.
 */
#include "swarm/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "ferry/err.h"
#include "ferry/klog.h"

#define SLOW_MIN_READ (16u * 1024u)

/* Largest payload a receiver accepts: a relay's default, or more when the
 * swarm's own senders use bigger packets (p2p). */
size_t fy__rx_dec_max(const fy_swarm_cfg *cfg)
{
    return cfg->packet > FY_PAYLOAD_MAX_DEFAULT ? cfg->packet : FY_PAYLOAD_MAX_DEFAULT;
}

static void rx_lost(fy__rx *r, int err, const char *what)
{
    fy_klog(FY_LOG_WARN, what, "channel=%u receiver=%u err=%s action=\"receiver stops\"", r->chan,
            r->idx, fy_errname(err));
    r->error = err;
    r->c.w->errors++;
    fy__swarm_conn_finish(&r->c);
    if (!r->welcomed_once) /* never subscribed: the senders would wait forever */
        atomic_store(&r->c.w->sw->abort, 1);
}

static void rx_connect(fy__rx *r)
{
    fy__swarm *sw = r->c.w->sw;
    int rc = fy__swarm_conn_connect(&r->c, fy__rx_dec_max(sw->cfg));
    if (rc < 0) {
        rx_lost(r, rc, "receiver connect");
        return;
    }
    if (r->welcomed_once) /* a rejoin: from the first seq it still wants */
        rc = fy__swarm_conn_hello(&r->c, FY_ROLE_RECEIVER, r->chan, FY_MODE_RESUME,
                            fy_rxchk_next(r->chk));
    else
        rc = fy__swarm_conn_hello(&r->c, FY_ROLE_RECEIVER, r->chan, FY_MODE_START, 0);
    if (rc < 0)
        rx_lost(r, rc, "receiver hello");
}

/* ---- frames ------------------------------------------------------------------ */

static void count_welcome(fy__swarm *sw, uint64_t now)
{
    uint32_t n = atomic_fetch_add_explicit(&sw->welcomed, 1, memory_order_acq_rel) + 1;
    if (n == sw->total_rx) /* the last subscriber lets the senders go */
        atomic_store_explicit(&sw->go_ns, now, memory_order_release);
}

/* The link checked and decoded the welcome. */
static void on_welcome(fy__rx *r, uint64_t now)
{
    if (r->welcomed_once)
        return; /* a rejoin: the stream itself shows a gap or a repeat */
    r->welcomed_once = true;
    fy_rxchk_expect(r->chk, fy_link_welcome(&r->c.link)->next_seq);
    count_welcome(r->c.w->sw, now);
}

static void on_complete(fy__rx *r, uint64_t now)
{
    r->complete = true;
    r->done_ns = now;
    if (fy_link_fd(&r->c.link) >= 0 && !r->c.w->sw->cfg->p2p) {
        fy_link_ctl(&r->c.link, FY_FT_BYE, 0, 0, NULL, 0);
        fy_link_flush(&r->c.link); /* best effort: we close next */
    }
    fy__swarm_conn_finish(&r->c);
}

static void leave(fy__rx *r, uint64_t now)
{
    r->ileave++;
    r->reconnects++;
    fy__swarm_conn_close(&r->c);
    r->c.wake_at = now + 1000000ull + (uint64_t)(r->id % 4) * 1000000ull; /* 1-4 ms away */
}

static void record_latency(fy__rx *r, const fy_rxchk_ev *ev, uint64_t now)
{
    fy__swarm *sw = r->c.w->sw;
    uint64_t t0 = atomic_load_explicit(&sw->sender_t0[ev->sender], memory_order_acquire);
    if (!t0)
        return;
    uint64_t due = t0 + ev->index * sw->interval_ns;
    fy_lhist_record(r->c.w->lat, now > due ? now - due : 0);
}

/* Returns false when the connection ended or was left (stop reading). */
static bool on_stream(fy__rx *r, const fy_frame *f, uint64_t now)
{
    fy_rxchk_ev ev;
    fy_rxchk_frame(r->chk, f, &ev);
    if (ev.kind == FY_RXCHK_DATA && r->c.w->lat && ev.sender < r->c.w->sw->cfg->senders)
        record_latency(r, &ev, now);
    if (ev.kind == FY_RXCHK_FILE_END && fy_rxchk_files_done(r->chk) >= r->files_expected) {
        on_complete(r, now);
        return false;
    }
    if (r->churner && r->ileave < r->nleave &&
        fy_rxchk_counts_get(r->chk)->frames >= r->leave_at[r->ileave]) {
        leave(r, now);
        return false;
    }
    return true;
}

static bool on_frame(fy__rx *r, const fy_frame *f, uint64_t now)
{
    fy_error e;
    if (fy_frame_is_stream(f->hdr.type))
        return on_stream(r, f, now);
    switch (f->hdr.type) {
    case FY_FT_WELCOME:
        on_welcome(r, now);
        break;
    case FY_FT_ERROR: {
        int code = FY_EPROTO;
        if (fy_error_decode(f->payload, f->hdr.len, &e) == 0) {
            char q[FY_ERRTEXT_MAX + 8];
            fy_klog(FY_LOG_ERROR, "relay sent error", "channel=%u receiver=%u code=%u text=%s",
                    r->chan, r->idx, e.code, fy_klog_q(e.text, q, sizeof q));
            code = (int)e.code;
        }
        rx_lost(r, -code, "receiver refused");
        return false;
    }
    case FY_FT_PING:
        fy_link_ctl(&r->c.link, FY_FT_PONG, f->hdr.channel, f->hdr.seq, f->payload, f->hdr.len);
        fy_link_flush(&r->c.link);
        break;
    default:
        break;
    }
    return !r->c.done && fy_link_fd(&r->c.link) >= 0;
}

/* ---- reading -------------------------------------------------------------------- */

/* Bytes a slow receiver may read now; 0 after arming its timer. */
static size_t slow_allowance(fy__rx *r, uint64_t now)
{
    double rate = (double)r->c.w->sw->cfg->slow_rate;
    double burst = rate / 50.0 > 65536.0 ? rate / 50.0 : 65536.0;
    r->tokens += (double)(now - r->refill_ns) * rate / 1e9;
    r->refill_ns = now;
    if (r->tokens > burst)
        r->tokens = burst;
    double need = burst < SLOW_MIN_READ ? burst : SLOW_MIN_READ;
    if (r->tokens >= need)
        return (size_t)r->tokens;
    r->c.wake_at = now + (uint64_t)((need - r->tokens) / rate * 1e9) + 1;
    return 0;
}

/* Hand every frame of the last read to on_frame.  False when the
 * connection ended or was left (stop reading). */
static bool take_frames(fy__rx *r, uint64_t now)
{
    fy_frame f;
    int rc;
    while ((rc = fy_link_next(&r->c.link, &f)) > 0)
        if (!on_frame(r, &f, now))
            return false;
    if (rc < 0) {
        fy_rxchk_stream_error(r->chk, rc);
        rx_lost(r, rc, "decode frame");
        return false;
    }
    return true;
}

static void rx_read(fy__rx *r)
{
    uint8_t *buf = r->c.w->rbuf;
    size_t budget = FY__TURN_BYTES;

    while (!r->c.done && fy_link_fd(&r->c.link) >= 0) {
        size_t want = FY__RBUF;
        if (r->slow) {
            size_t a = slow_allowance(r, fy__swarm_now_ns());
            if (a == 0)
                return;
            if (a < want)
                want = a;
        }
        if (budget == 0) {
            fy__swarm_conn_pend(&r->c);
            return;
        }
        ssize_t n = fy_link_recv(&r->c.link, buf, want);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            rx_lost(r, n == 0 ? -ECONNRESET : (int)n, "receiver recv");
            return;
        }
        if (r->slow)
            r->tokens -= (double)n;
        budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
        if (!take_frames(r, fy__swarm_now_ns()))
            return;
    }
}

void fy__rx_io(fy__rx *r, uint32_t events)
{
    fy_link *l = &r->c.link;
    if (fy_link_state(l) == FY_LINK_CLOSED)
        return;
    if (fy_link_state(l) == FY_LINK_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int rc = fy_link_connected(l);
        if (rc < 0) {
            rx_lost(r, rc, "receiver connect");
            return;
        }
    }
    if (fy_link_ctl_pending(l)) {
        int rc = fy_link_flush(l);
        if (rc < 0) {
            rx_lost(r, rc, "receiver write");
            return;
        }
    }
    rx_read(r);
}

void fy__rx_timer(fy__rx *r, uint64_t now)
{
    (void)now;
    if (r->c.done)
        return;
    if (fy_link_state(&r->c.link) == FY_LINK_CLOSED) /* a churner's rejoin */
        rx_connect(r);
    else
        rx_read(r);
}

void fy__rx_start(fy__rx *r)
{
    fy__swarm *sw = r->c.w->sw;
    r->refill_ns = fy__swarm_now_ns();
    if (!sw->cfg->p2p) {
        rx_connect(r);
        return;
    }
    int rc = fy__swarm_conn_watch(r->c.w, fy_link_fd(&r->c.link), &r->c);
    if (rc < 0) {
        rx_lost(r, rc, "receiver setup");
        return;
    }
    r->welcomed_once = true;
    fy_rxchk_expect(r->chk, 1);
}

void fy__rx_free(fy__rx *r)
{
    if (!r)
        return;
    fy__swarm_conn_close(&r->c);
    fy_rxchk_free(r->chk);
    free(r->leave_at);
    free(r);
}

/* ---- storm ------------------------------------------------------------------------ */

static void storm_resolve(fy__storm *s, uint64_t *counter)
{
    if (s->c.state == -1)
        return;
    s->c.state = -1;
    (*counter)++;
    atomic_fetch_add_explicit(&s->c.w->sw->storm_resolved, 1, memory_order_acq_rel);
}

void fy__storm_start(fy__storm *s)
{
    fy__swarm *sw = s->c.w->sw;
    s->t_start = fy__swarm_now_ns();
    int rc = fy__swarm_conn_connect(&s->c, FY_CTL_PAYLOAD_MAX);
    if (rc == 0) {
        uint32_t k = (uint32_t)(s - s->c.w->storm) * sw->nw + (uint32_t)s->c.w->id;
        rc = fy__swarm_conn_hello(&s->c, FY_ROLE_RECEIVER, k % sw->cfg->channels, FY_MODE_LIVE, 0);
    }
    if (rc < 0) {
        if (rc == -EMFILE || rc == -ENFILE)
            fy_klog(FY_LOG_WARN, "storm connect failed", "err=%s action=\"count as not served\"",
                    fy_errname(rc));
        fy__swarm_conn_close(&s->c);
        storm_resolve(s, &s->c.w->connect_failed);
        return;
    }
    s->c.state = 1; /* unresolved */
}

static void storm_frame(fy__storm *s, const fy_frame *f, uint64_t now)
{
    fy__worker *w = s->c.w;
    if (f->hdr.type == FY_FT_WELCOME && now <= w->sw->storm_end_ns) {
        fy_lhist_record(w->storm_lat, now - s->t_start);
        storm_resolve(s, &w->served);
    } else if (f->hdr.type == FY_FT_ERROR) {
        storm_resolve(s, &w->refused);
    }
}

/* Once resolved, the connection stays open (the relay carries it until
 * the storm ends) and what it reads is no longer decoded. */
void fy__storm_io(fy__storm *s, uint32_t events)
{
    fy__worker *w = s->c.w;
    fy_link *l = &s->c.link;
    if (fy_link_fd(l) < 0)
        return;
    if (fy_link_state(l) == FY_LINK_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (fy_link_connected(l) < 0) {
            fy__swarm_conn_close(&s->c);
            storm_resolve(s, &w->connect_failed);
            return;
        }
    }
    if (fy_link_flush(l) < 0) {
        fy__swarm_conn_close(&s->c);
        storm_resolve(s, &w->connect_failed);
        return;
    }
    for (;;) {
        ssize_t n = fy_link_recv(l, w->rbuf, 4096);
        if (n == -EAGAIN)
            return;
        if (n <= 0) { /* hung up: before a welcome it was not served */
            fy__swarm_conn_close(&s->c);
            storm_resolve(s, &w->connect_failed);
            return;
        }
        uint64_t now = fy__swarm_now_ns();
        while (s->c.state != -1) {
            fy_frame f;
            int rc = fy_link_next(l, &f);
            if (rc < 0) {
                fy__swarm_conn_close(&s->c);
                storm_resolve(s, &w->refused);
                return;
            }
            if (rc == 0)
                break;
            storm_frame(s, &f, now);
        }
    }
}
