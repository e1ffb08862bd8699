/*
 * tx.c - a channel's sender side: the channel's senders, one after the
 * other (a channel takes one sender at a time), each sending its files.
 *
 * Through a relay, a sender is one connection: hello, welcome, the stream
 * (file-begin, data..., file-end per file), then it waits for the ack of
 * its last file-end, says bye and closes, and the channel's next sender
 * connects.  In p2p mode there is no relay: the sender writes the same
 * frames to each receiver's socket itself (one fy__out per receiver, each
 * at its own pace, so a slow receiver holds back only its own link), and
 * the next sender continues the sequence numbers where the last stopped.
 *
 * Frames are never built in memory: frame j of the stream is computed
 * from j (header sealed into a small array, payload pointing into the
 * pattern), and written with writev, FY__IOV_FRAMES frames per call.
 */
#include "swarm/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/klog.h"

/* TX_HELLO covers connecting and waiting for the welcome: the link
 * (src/link) tells those apart and checks the handshake. */
enum { TX_IDLE = 0, TX_HELLO, TX_STREAM, TX_WAIT_ACK, TX_BYE };

static uint32_t tx_sender(const fy__tx *t)
{
    return t->first + t->cur;
}

static void tx_fail(fy__tx *t, int err, const char *what)
{
    fy__swarm *sw = t->c.w->sw;
    fy_klog(FY_LOG_ERROR, what, "channel=%u sender=%u err=%s action=\"stop the run\"", t->chan,
            tx_sender(t), fy_errname(err));
    t->c.w->errors++;
    fy__swarm_conn_finish(&t->c);
    /* without its sender the channel's receivers can never finish */
    atomic_store(&sw->abort, 1);
}

/* ---- the frame stream ------------------------------------------------------ */

/* Header of frame j into hdr; its payload into pl and len. */
static void frame_at(const fy__tx *t, uint64_t j, uint8_t hdr[FY_FRAME_HDR_SIZE],
                     const uint8_t **pl, size_t *len)
{
    const fy__swarm *sw = t->c.w->sw;
    uint64_t per = t->ndata + 2, f = j / per, k = j % per;
    fy_frame_hdr h = {.channel = t->chan_id, .seq = t->base_seq + j};

    if (k == 0) {
        h.type = FY_FT_FILE_BEGIN;
        *pl = t->begin[f].b;
        *len = t->begin[f].len;
        h.crc = t->begin[f].crc;
    } else if (k == per - 1) {
        h.type = FY_FT_FILE_END;
        *pl = t->end.b;
        *len = t->end.len;
        h.crc = t->end.crc;
    } else {
        uint64_t off = (k - 1) * (uint64_t)sw->cfg->packet;
        h.type = FY_FT_DATA;
        *pl = fy_pattern_frame(sw->pat, tx_sender(t), off, t->fsize, len);
        h.crc = fy_pattern_frame_crc(sw->pat, tx_sender(t), off, *len);
    }
    h.len = (uint32_t)*len;
    fy_frame_hdr_encode(&h, hdr);
}

static size_t frame_len(const fy__tx *t, uint64_t j)
{
    uint64_t per = t->ndata + 2, f = j / per, k = j % per;
    if (k == 0)
        return FY_FRAME_HDR_SIZE + t->begin[f].len;
    if (k == per - 1)
        return FY_FRAME_HDR_SIZE + t->end.len;
    uint64_t off = (k - 1) * (uint64_t)t->c.w->sw->cfg->packet;
    uint64_t left = t->fsize - off, p = t->c.w->sw->cfg->packet;
    return FY_FRAME_HDR_SIZE + (size_t)(left < p ? left : p);
}

static void advance(fy__tx *t, fy__out *o, size_t n)
{
    while (n > 0) {
        size_t rest = frame_len(t, o->next) - o->off;
        if (n < rest) {
            o->off += n;
            return;
        }
        n -= rest;
        o->next++;
        o->off = 0;
        t->frames_sent++;
    }
}

/* Frames of the current sender that may be written by now: all of them in
 * bulk mode; in rate mode data frame i is due at t0 + i * interval. */
static uint64_t allowed(const fy__tx *t, uint64_t now)
{
    if (!t->interval)
        return t->total;
    if (now < t->t0)
        return 0;
    uint64_t m = (now - t->t0) / t->interval + 1; /* data frames due */
    return m >= t->ndata ? t->total : 1 + m;
}

/* Write frames [o->next, lim) to o.  1 when all are written, 0 when the
 * socket is full or the turn's budget is spent, -errno on a broken link. */
static int out_write(fy__tx *t, fy__out *o, uint64_t lim, size_t *budget)
{
    struct iovec iov[2 * FY__IOV_FRAMES];
    uint8_t hdr[FY__IOV_FRAMES][FY_FRAME_HDR_SIZE];

    while (o->next < lim) {
        if (*budget == 0)
            return 0;
        int n = 0;
        size_t bytes = 0, skip = o->off;
        uint64_t j = o->next;
        for (int k = 0; k < FY__IOV_FRAMES && j < lim && bytes < *budget; k++, j++) {
            const uint8_t *pl;
            size_t len;
            frame_at(t, j, hdr[k], &pl, &len);
            if (skip < FY_FRAME_HDR_SIZE) {
                iov[n++] = (struct iovec){hdr[k] + skip, FY_FRAME_HDR_SIZE - skip};
                if (len)
                    iov[n++] = (struct iovec){(void *)pl, len};
                bytes += FY_FRAME_HDR_SIZE - skip + len;
            } else {
                size_t in = skip - FY_FRAME_HDR_SIZE;
                iov[n++] = (struct iovec){(void *)(pl + in), len - in};
                bytes += len - in;
            }
            skip = 0;
        }
        ssize_t w = fy_conn_writev(o->conn, iov, n);
        if (w == -EAGAIN || w == 0) {
            o->blocked = true;
            return 0;
        }
        if (w < 0)
            return (int)w;
        *budget = (size_t)w >= *budget ? 0 : *budget - (size_t)w;
        t->bytes_sent += (uint64_t)w;
        advance(t, o, (size_t)w);
    }
    return 1;
}

/* ---- one sender after another ---------------------------------------------- */

static int make_ctl_payloads(fy__tx *t)
{
    const fy__swarm *sw = t->c.w->sw;
    uint32_t s = tx_sender(t);

    for (uint32_t f = 0; f < sw->cfg->files; f++) {
        fy_file_begin b = {.size = t->fsize};
        snprintf(b.name, sizeof b.name, "s%u-f%u", s, f);
        int rc = fy_file_begin_encode(&b, t->begin[f].b, sizeof t->begin[f].b, &t->begin[f].len);
        if (rc < 0)
            return rc;
        t->begin[f].crc = fy_crc32c(0, t->begin[f].b, t->begin[f].len);
    }
    fy_file_end e = {.size = t->fsize};
    memcpy(e.sha256, sw->sha[s], 32);
    int rc = fy_file_end_encode(&e, t->end.b, sizeof t->end.b, &t->end.len);
    if (rc < 0)
        return rc;
    t->end.crc = fy_crc32c(0, t->end.b, t->end.len);
    return 0;
}

static void stream_start(fy__tx *t, uint64_t now)
{
    fy__swarm *sw = t->c.w->sw;
    t->c.state = TX_STREAM;
    t->t0 = now;
    t->last_end_seq = t->base_seq + t->total - 1;
    atomic_store_explicit(&sw->sender_t0[tx_sender(t)], now, memory_order_release);
    for (uint32_t i = 0; i < t->nouts; i++) {
        t->outs[i].next = 0;
        t->outs[i].off = 0;
    }
}

static void write_stream(fy__tx *t);

/* Start sender t->cur: connect through the relay, or go straight to the
 * stream over the p2p links. */
static void sender_begin(fy__tx *t)
{
    fy__swarm *sw = t->c.w->sw;
    int rc = make_ctl_payloads(t);
    if (rc < 0) {
        tx_fail(t, rc, "file control payload");
        return;
    }
    if (sw->cfg->p2p) {
        if (t->cur > 0)
            t->base_seq += t->total;
        stream_start(t, fy__swarm_now_ns());
        write_stream(t);
        return;
    }
    if ((rc = fy__swarm_conn_connect(&t->c, FY_PAYLOAD_MAX_DEFAULT)) < 0) {
        tx_fail(t, rc, "connect");
        return;
    }
    if ((rc = fy__swarm_conn_hello(&t->c, FY_ROLE_SENDER, t->chan, FY_MODE_LIVE, 0)) < 0) {
        tx_fail(t, rc, "sender hello");
        return;
    }
    /* stream frames bypass the link's queue: written by out_write, after
     * the link's control bytes are out */
    t->outs[0].conn = fy_link_conn(&t->c.link);
    t->outs[0].blocked = false;
    t->c.state = TX_HELLO;
}

static void sender_end(fy__tx *t)
{
    fy__swarm_conn_close(&t->c);
    if (!t->c.w->sw->cfg->p2p)
        t->outs[0].conn = NULL;
    if (++t->cur == t->count) {
        fy__swarm_conn_finish(&t->c);
        return;
    }
    sender_begin(t);
}

static void write_stream(fy__tx *t)
{
    uint64_t now = fy__swarm_now_ns();
    uint64_t lim = allowed(t, now);
    bool all = true, more = false;

    for (uint32_t i = 0; i < t->nouts; i++) {
        fy__out *o = &t->outs[i];
        if (o->dead || o->next >= t->total)
            continue;
        size_t budget = FY__TURN_BYTES;
        int rc = o->blocked ? 0 : out_write(t, o, lim, &budget);
        if (rc < 0) {
            if (!t->c.w->sw->cfg->p2p) {
                tx_fail(t, rc, "writev to relay");
                return;
            }
            o->dead = true; /* that receiver is gone; it counts as incomplete */
            continue;
        }
        if (o->next < t->total)
            all = false;
        if (rc == 0 && !o->blocked && budget == 0)
            more = true;
    }
    if (all) {
        if (t->c.w->sw->cfg->p2p) {
            sender_end(t);
        } else {
            t->c.state = TX_WAIT_ACK;
        }
        return;
    }
    if (more)
        fy__swarm_conn_pend(&t->c);
    if (lim < t->total && t->interval)
        t->c.wake_at = t->t0 + (lim - 1) * t->interval;
}

/* ---- frames from the relay ------------------------------------------------- */

/* The link checked and decoded the welcome. */
static void on_welcome(fy__tx *t)
{
    const fy_welcome *wl = fy_link_welcome(&t->c.link);
    if (wl->max_payload < t->c.w->sw->cfg->packet) {
        tx_fail(t, -FY_EOVERSIZE, "relay max_payload below --chunk");
        return;
    }
    t->chan_id = wl->channel;
    t->base_seq = wl->next_seq;
    stream_start(t, fy__swarm_now_ns());
    write_stream(t);
}

static void on_ack(fy__tx *t, const fy_frame *f)
{
    fy_ack a;
    if (fy_ack_decode(f->payload, f->hdr.len, &a) < 0) {
        tx_fail(t, -FY_EPAYLOAD, "ack");
        return;
    }
    if (a.seq > t->acked)
        t->acked = a.seq;
}

static void on_frame(fy__tx *t, const fy_frame *f)
{
    fy_error e;
    switch (f->hdr.type) {
    case FY_FT_WELCOME:
        on_welcome(t);
        break;
    case FY_FT_ACK:
        on_ack(t, f);
        break;
    case FY_FT_ERROR: {
        int code = FY_EPROTO;
        if (fy_error_decode(f->payload, f->hdr.len, &e) == 0) {
            char q[FY_ERRTEXT_MAX + 8];
            fy_klog(FY_LOG_ERROR, "relay sent error", "channel=%u sender=%u code=%u text=%s",
                    t->chan, tx_sender(t), e.code, fy_klog_q(e.text, q, sizeof q));
            code = (int)e.code;
        }
        tx_fail(t, -code, "sender refused");
        break;
    }
    default:
        break;
    }
}

static void read_relay(fy__tx *t)
{
    fy_link *l = &t->c.link;
    while (!t->c.done && fy_link_fd(l) >= 0) {
        ssize_t n = fy_link_recv(l, t->c.w->rbuf, FY__RBUF);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            tx_fail(t, n == 0 ? -ECONNRESET : (int)n, "recv from relay");
            return;
        }
        while (!t->c.done && fy_link_fd(l) >= 0) {
            fy_frame f;
            int rc = fy_link_next(l, &f);
            if (rc < 0) {
                tx_fail(t, rc, "decode relay frame");
                return;
            }
            if (rc == 0)
                break;
            on_frame(t, &f);
        }
    }
}

/* ---- events ------------------------------------------------------------------ */

void fy__tx_io(fy__tx *t, fy__out *o, uint32_t events)
{
    if (t->c.done)
        return;
    if (o) { /* a p2p link */
        if (events & (EPOLLERR | EPOLLHUP))
            o->dead = true;
        if (events & EPOLLOUT)
            o->blocked = false;
        if (t->c.state == TX_STREAM)
            write_stream(t);
        return;
    }
    if (t->c.w->sw->cfg->p2p) { /* pending turn of a p2p sender */
        if (t->c.state == TX_STREAM)
            write_stream(t);
        return;
    }
    if (t->c.state == TX_IDLE)
        return;
    fy_link *l = &t->c.link;
    if (fy_link_state(l) == FY_LINK_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int rc = fy_link_connected(l);
        if (rc < 0) {
            tx_fail(t, rc, "connect");
            return;
        }
    }
    if (events & EPOLLOUT)
        t->outs[0].blocked = false;
    int rc = fy_link_flush(l);
    if (rc < 0) {
        tx_fail(t, rc, "write to relay");
        return;
    }
    if (t->c.state == TX_BYE) {
        if (rc == 1)
            sender_end(t);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        read_relay(t);
    if (t->c.done)
        return;
    if (t->c.state == TX_STREAM && rc == 1)
        write_stream(t);
    if (t->c.state == TX_WAIT_ACK && t->acked >= t->last_end_seq) {
        fy_link_ctl(l, FY_FT_BYE, t->chan_id, 0, NULL, 0);
        t->c.state = TX_BYE;
        if (fy_link_flush(l) != 0)
            sender_end(t); /* written, or broken: either way this sender is done */
    }
}

void fy__tx_timer(fy__tx *t, uint64_t now)
{
    (void)now;
    if (!t->c.done && t->c.state == TX_STREAM)
        write_stream(t);
}

void fy__tx_start(fy__tx *t)
{
    if (t->c.done)
        return;
    t->cur = 0;
    sender_begin(t);
}

/* Before the barrier: the digests of this channel's senders (receivers on
 * other threads compare with them after the barrier). */
int fy__tx_prepare(fy__tx *t)
{
    fy__swarm *sw = t->c.w->sw;
    for (uint32_t i = 0; i < t->count; i++) {
        int rc = fy_pattern_sha256(sw->pat, t->first + i, t->fsize, sw->sha[t->first + i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void fy__tx_free(fy__tx *t)
{
    if (!t)
        return;
    fy__swarm_conn_close(&t->c);
    for (uint32_t i = 0; i < t->nouts; i++)
        if (t->c.w->sw->cfg->p2p && t->outs[i].conn)
            fy_conn_close(t->outs[i].conn);
    free(t->outs);
    free(t->begin);
    free(t);
}
