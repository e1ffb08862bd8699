/*
 * upstream_link.c - an upstream actor's link to the upstream relay: connect
 * (TCP, then TLS when upstream-ca is set), hello as a receiver that starts
 * or resumes at the next seq this edge needs, the welcome that hands the
 * socket to the ingest, and reconnecting with exponential backoff and
 * jitter when the link is lost (upstream.c says why and what is kept).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/tls.h"
#include "upstream_int.h"

void fy__upstream_link_down(upstream *u)
{
    if (fy_link_fd(&u->link) >= 0)
        fy_io_del(u->ctx->sched, fy_link_fd(&u->link));
    fy_link_close(&u->link);
    u->gen++;
}

/* The link is gone: keep the stream state, try again after a backoff
 * (doubling up to BACKOFF_MAX_MS, each wait drawn from its upper half so
 * many edges do not come back in step). */
void fy__upstream_lost(upstream *u, int level, const char *why)
{
    fy_ingest_flush(u->ing);
    if (u->st == U_STREAM)
        u->reconnects++;
    fy__upstream_link_down(u);
    if (u->leaving) {
        fy__upstream_finish(u, "linger over, link lost");
        return;
    }
    if (u->st != U_STREAM && u->ctx->up_naddr > 1) /* never streamed: the next address */
        u->addr = u->ctx->up_addr[++u->addr_i % u->ctx->up_naddr];
    u->st = U_WAIT;
    u->rng ^= u->rng << 13;
    u->rng ^= u->rng >> 7;
    u->rng ^= u->rng << 17;
    unsigned ms = u->backoff_ms / 2 + (unsigned)(u->rng % (u->backoff_ms / 2 + 1));
    fy_klog(level, "upstream lost", "channel=%s upstream=%s reason=\"%s\" next_seq=%llu "
            "action=\"reconnect in %u ms\"", u->name, u->peer, why,
            (unsigned long long)u->local_next, ms);
    u->backoff_ms = u->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : u->backoff_ms * 2;
    fy_timer_after(u->self, ms, (uint64_t)u->gen << 8 | TM_RECONNECT);
}

void fy__upstream_connect(upstream *u)
{
    fy_hello h = {.role = FY_ROLE_RECEIVER};
    int fd, rc;

    h.mode = u->fresh || u->restart ? FY_MODE_START : FY_MODE_RESUME;
    h.resume_from = h.mode == FY_MODE_RESUME ? (uint64_t)((int64_t)u->local_next + u->delta) : 0;
    if (!u->no_ahead) { /* a receiver that reconciles when it is ahead of the upstream's log */
        h.flags = FY_HELLO_F_AHEAD;
        h.epoch = u->up_epoch;
        if (h.mode == FY_MODE_RESUME && u->fb_local && !u->skip_until)
            h.part_seq = (uint64_t)((int64_t)u->fb_local + u->delta);
    }
    snprintf(h.channel, sizeof h.channel, "%s", u->name);
    snprintf(h.token, sizeof h.token, "%s", u->ctx->conf->upstream_token);
    if (u->replica)
        fy__upstream_replica_hello(u, &h);
    u->gen++;
    if ((fd = fy_link_connect(&u->link, &u->addr, u->ctx->conf->max_payload)) < 0) {
        fy__upstream_lost(u, FY_LOG_WARN, fy_strerror(fd));
        return;
    }
    if (u->ctx->up_tls && !u->replica) { /* upstream-ca: TLS, verified against it */
        const fy_conf *c = u->ctx->conf;
        char name[256];
        if (c->upstream_tls_name[0])
            snprintf(name, sizeof name, "%s", c->upstream_tls_name);
        else if (fy_tls_name_from_server(c->upstream, name, sizeof name) < 0)
            name[0] = '\0';
        if ((rc = fy_link_tls(&u->link, u->ctx->up_tls, name)) < 0) {
            fy_link_close(&u->link);
            fy__upstream_lost(u, FY_LOG_ERROR, fy_strerror(rc));
            return;
        }
    }
    if ((rc = fy_link_hello(&u->link, &h)) < 0 ||
        (rc = fy_io_add(u->self, fd, FY_IO_READ | FY_IO_WRITE, u->gen)) < 0) {
        fy_link_close(&u->link);
        fy__upstream_lost(u, FY_LOG_ERROR, fy_strerror(rc));
        return;
    }
    u->st = U_LINK;
    fy_timer_after(u->self, CONNECT_MS, (uint64_t)u->gen << 8 | TM_CONNECT);
    fy_klog(FY_LOG_DEBUG, "upstream connecting", "channel=%s upstream=%s mode=%s resume_from=%llu",
            u->name, u->peer, h.mode == FY_MODE_START ? "start" : "resume",
            (unsigned long long)h.resume_from);
}

/* The upstream refused us with an error frame. */
void fy__upstream_error_frame(upstream *u, const fy_frame *f)
{
    fy_error e = {0};
    char q[FY_ERRTEXT_MAX + 8];

    (void)fy_error_decode(f->payload, f->hdr.len, &e);
    if (e.code == FY_EPAYLOAD && u->st == U_LINK && !u->no_ahead) {
        u->no_ahead = true;
        fy_klog(FY_LOG_INFO, "upstream does not know FY_HELLO_F_AHEAD: saying hello without it",
                "channel=%s upstream=%s effect=\"an edge ahead of that relay's log gets "
                "FY_ENOSEQ\"", u->name, u->peer);
        fy__upstream_link_down(u);
        fy__upstream_connect(u);
        return;
    }
    if (e.code == FY_ENOSEQ && u->st == U_LINK && u->replica &&
        fy__upstream_replica_enoseq(u, e.text))
        return;
    if (e.code == FY_ENOSEQ && u->st == U_LINK && !u->replica) {
        u->enoseq++;
        if (u->skip_until) { /* the new delta counts from the log's end */
            u->local_next = u->skip_until;
            u->skip_until = u->fb_local = 0;
        }
        u->recon = u->seek_begin = false;
        u->restart = true;
        if (!u->lost_from) /* the rebase records the skip from here */
            u->lost_from = (uint64_t)((int64_t)u->local_next + u->delta);
        fy_klog(FY_LOG_ERROR, "upstream no longer holds the next seq", "channel=%s upstream=%s "
                "want_seq=%llu text=%s action=\"start again from the oldest seq upstream "
                "holds; frames in between are lost on this edge\"", u->name,
                u->peer,
                (unsigned long long)((int64_t)u->local_next + u->delta),
                fy_klog_q(e.text, q, sizeof q));
        u->backoff_ms = BACKOFF_MIN_MS;
        fy__upstream_link_down(u);
        fy__upstream_connect(u);
        return;
    }
    char why[FY_ERRTEXT_MAX + 64];
    snprintf(why, sizeof why, "upstream error %s: %.900s", fy_errname((int)e.code), e.text);
    fy__upstream_lost(u, FY_LOG_WARN, why);
}

/* The upstream's log ends before frames this edge stored (a power loss
 * took them after they were sent): what the upstream numbers from
 * w->next_seq on may be the same files again or other ones.  The edge's
 * log cannot be cut back (its receivers have those frames), so it takes
 * the stream from there with a fresh ingest and reconciles
 * (upstream_recon.c): files it has are dropped, its partial file is
 * continued when the upstream sends it again, and the first other file
 * is stored from its own end on (docs/reliability.md). */
static void on_ahead(upstream *u, const fy_welcome *w)
{
    uint64_t end = u->skip_until ? u->skip_until : u->local_next;

    fy_klog(FY_LOG_WARN, "upstream's log ends before frames this edge stored", "channel=%s "
            "upstream=%s wanted_seq=%llu upstream_seq=%llu local_seq=%llu action=\"drop the "
            "files it sends again, store from the first other file on\"", u->name,
            u->peer, (unsigned long long)((int64_t)end + u->delta),
            (unsigned long long)w->next_seq, (unsigned long long)end);
    fy_ingest_stop(u->ing); /* its stream is over; in-flight credit is forgotten */
    fy_ingest_free(u->ing);
    u->ing = NULL;
    fy__upstream_recon_start(u, w->next_seq);
}

/* Welcomed: from here on the socket's bytes go to the ingest. */
static void on_welcome(upstream *u)
{
    const fy_welcome *w = fy_link_welcome(&u->link);
    size_t n;
    const uint8_t *rest = fy_link_rest(&u->link, &n);
    int rc;
    bool ahead = w->ext2 && (w->wflags & FY_WELCOME_F_AHEAD) && !u->fresh && !u->restart;

    if (u->replica && !fy__upstream_replica_welcome(u, w))
        return;

    bool new_epoch = w->ext2 && w->epoch != u->up_epoch;
    if (w->ext2)
        u->up_epoch = w->epoch;
    if (ahead)
        on_ahead(u, w);
    if (u->fresh || u->restart) {
        int64_t d = (int64_t)w->next_seq - (int64_t)u->local_next;
        if (u->restart && !ahead)
            fy_klog(FY_LOG_WARN, "upstream restarted from its oldest seq", "channel=%s "
                    "upstream=%s upstream_seq=%llu local_seq=%llu delta=%" PRId64, u->name,
                    u->peer, (unsigned long long)w->next_seq,
                    (unsigned long long)u->local_next, d);
        if (d != u->delta || u->fresh)
            u->delta = d, fy__upstream_state_save(u, true);
        u->rebase = true;
        u->rebase_local = u->local_next;
        if (u->restart) {
            fy_ingest_stop(u->ing); /* its stream is over; in-flight credit is forgotten */
            fy_ingest_free(u->ing);
            u->ing = NULL;
        }
        u->fresh = u->restart = false;
    }
    if (!u->ing) {
        fy_ingest_conf c = {.pool = u->ctx->pool, .max_payload = u->ctx->conf->max_payload,
                            .budget = u->ctx->conf->channel_budget, .channel = w->channel,
                            .next_seq = (uint64_t)((int64_t)u->local_next + u->delta),
                            .out = fy__upstream_batch_out, .arg = u,
                            .skip_partial = u->rebase || u->recon || u->replica_seek};
        rc = fy_ingest_new(&c, rest, n, &u->ing);
    } else {
        rc = fy_ingest_restart(u->ing, w->channel, rest, n);
    }
    if (rc < 0) {
        fy__upstream_lost(u, FY_LOG_ERROR, fy_strerror(rc));
        return;
    }
    if (new_epoch) /* for a restart of this edge: an older epoch would look ahead */
        fy__upstream_state_save(u, true);
    u->st = U_STREAM;
    u->backoff_ms = BACKOFF_MIN_MS;
    if (u->replica) {
        u->rep_seq = 0; /* a new connection hears where we are at once */
        fy__upstream_replica_report(u, true);
        fy_timer_after(u->self, REPORT_MS, (uint64_t)u->gen << 8 | TM_REPORT);
    }
    if (w->next_seq + 0 > u->origin_next)
        u->origin_next = w->next_seq;
    fy_klog(FY_LOG_INFO, "upstream connected", "channel=%s upstream=%s upstream_channel=%u "
            "from_seq=%llu upstream_first_seq=%llu local_next_seq=%llu reconnects=%llu",
            u->name, u->peer, w->channel, (unsigned long long)w->next_seq,
            (unsigned long long)w->first_seq, (unsigned long long)u->local_next,
            (unsigned long long)u->reconnects);
}

/* The link failed with rc: a TLS failure says why (copied: closing the
 * link frees the text). */
static void link_lost(upstream *u, int rc)
{
    char why[256];

    snprintf(why, sizeof why, "%s", rc == -FY_ETLS && fy_link_tls_error(&u->link)[0]
                                        ? fy_link_tls_error(&u->link) : fy_strerror(rc));
    fy__upstream_lost(u, FY_LOG_WARN, why);
}

/* Connecting, in the TLS handshake, or waiting for the welcome. */
void fy__upstream_drive_link(upstream *u, uint32_t bits)
{
    fy_frame f;
    int rc;

    if (fy_link_state(&u->link) == FY_LINK_CONNECTING && (bits & (FY_IO_WRITE | FY_IO_HUP))) {
        if ((rc = fy_link_connected(&u->link)) < 0) {
            link_lost(u, rc);
            return;
        }
    }
    if ((rc = fy_link_flush(&u->link)) < 0) {
        link_lost(u, rc);
        return;
    }
    if (fy_link_state(&u->link) == FY_LINK_CONNECTING)
        return;
    for (;;) {
        ssize_t n = fy_link_recv(&u->link, u->hbuf, sizeof u->hbuf);
        if (n == -EAGAIN)
            return;
        if (n < 0) {
            link_lost(u, (int)n);
            return;
        }
        if (n == 0) {
            fy__upstream_lost(u, FY_LOG_WARN, "closed before welcome");
            return;
        }
        while ((rc = fy_link_next(&u->link, &f)) == 1) {
            if (f.hdr.type == FY_FT_WELCOME) {
                on_welcome(u);
                if (u->st == U_STREAM)
                    fy__upstream_drive(u);
                return;
            }
            if (f.hdr.type == FY_FT_ERROR) {
                fy__upstream_error_frame(u, &f);
                return;
            }
            if (f.hdr.type == FY_FT_BYE) {
                fy__upstream_lost(u, FY_LOG_INFO, "upstream said bye");
                return;
            }
        }
        if (rc < 0) {
            link_lost(u, rc);
            return;
        }
    }
}
