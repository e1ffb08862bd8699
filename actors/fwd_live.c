/*
 * fwd_live.c - the forwarder's live queue: the batches the writer
 * publishes (FY_RM_LIVE), queued and sent from the shared buffers.
 * fy__fwd_live is the one way in; the pump (fwd_catchup.c) calls
 * fy__fwd_live_write to send from the queue.
 *
 * By default (--live-send buffers, and always under user-space TLS) the
 * batches are queued and sent from the shared buffers with writev or
 * SSL_write (non-blocking; partial writes resume at the byte): on loopback
 * that measured faster than sendfile from 16 receivers up
 * (docs/benchmarks.md, "Where the copies go").  With --live-send file,
 * where the connection can send from the page cache without a copy (a
 * plain socket, or kernel TLS) the forwarder *follows*: a live batch only
 * moves the end and the bytes go out with sendfile from the file, like
 * catch-up, with the reader kept open (closed after a second with nothing
 * new).  Live and catch-up are then one path: no copy per receiver, no
 * buffer held for a receiver, nothing to overflow.
 *
 * A receiver that falls behind by more than the window (--window) makes
 * its forwarder drop every queued batch and go back to catch-up from the
 * first unsent frame, so a slow receiver holds at most a window of buffers
 * and the writer never waits for anyone.  Catching up, a live batch only
 * moves the end: its bytes are in the file already.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/trace.h"
#include "forwarder_int.h"

#define IOV_PER_CALL 64
#define PRESSURE_MS 20 /* blocked with live buffers: check the pool this often */

/* ---- the queue ------------------------------------------------------------------ */

static void q_pop(fwd *f)
{
    fy__batch *b = f->q[f->qhead];
    f->qbytes -= b->held;
    f->qhead = (f->qhead + 1) % f->qcap;
    f->qlen--;
    f->qframe = 0;
    f->qoff = 0;
    fy__batch_unref(b);
}

static int q_push(fwd *f, fy__batch *b)
{
    if (f->qlen == f->qcap) {
        size_t cap = f->qcap ? 2 * f->qcap : 64;
        fy__batch **nq = malloc(cap * sizeof *nq);
        if (!nq)
            return -ENOMEM;
        for (size_t i = 0; i < f->qlen; i++)
            nq[i] = fy__fwd_qat(f, i);
        free(f->q);
        f->q = nq;
        f->qcap = cap;
        f->qhead = 0;
    }
    f->q[(f->qhead + f->qlen) % f->qcap] = b;
    f->qlen++;
    f->qbytes += b->held;
    return 0;
}

void fy__fwd_live_drop(fwd *f)
{
    while (f->qlen)
        q_pop(f);
    fy__batch_unref(f->part);
    f->part = NULL;
}

/* ---- falling back to the file ----------------------------------------------------- */

/* The frame at the head of the queue is partly written: keep it to finish
 * from its buffer (the catch-up's write_part).  Returns where the file
 * continues after it. */
static fy_pos keep_part(fwd *f)
{
    fy__batch *h = fy__fwd_qat(f, 0);
    const fy_idx_rec *r = &h->recs[f->qframe];

    f->part = h;
    atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
    f->part_i = f->qframe;
    f->part_off = f->qoff;
    return (fy_pos){r->seg, r->off + r->len};
}

/* Fall back to the file: keep at most the partly written frame.  nb is the
 * batch that did not fit (or NULL when the pool is short of buffers). */
static void overflow(fwd *f, fy__batch *nb, const char *why)
{
    fy_pos at;
    uint64_t behind = f->qbytes + (nb ? nb->held : 0);

    if (f->qlen && f->qoff) {
        at = keep_part(f);
    } else if (f->qlen) {
        const fy_idx_rec *r = &fy__fwd_qat(f, 0)->recs[f->qframe];
        at = (fy_pos){r->seg, r->off};
    } else {
        at = (fy_pos){nb->recs[0].seg, nb->recs[0].off};
    }
    while (f->qlen)
        q_pop(f);
    f->catchups++;
    if (nb) {
        f->end = nb->end;
        f->end_seq = nb->next_seq;
        fy__batch_unref(nb);
    }
    fy_klog(FY_LOG_INFO, "receiver behind, catching up from disk", "peer=%s channel=%s why=%s "
            "queued_bytes=%llu window=%llu pool_used=%zu from_seg=%llu from_off=%llu end_seq=%llu",
            f->peer, f->chan->name, why, (unsigned long long)behind,
            (unsigned long long)f->ctx->conf->window, fy_bufpool_used(f->ctx->pool),
            (unsigned long long)at.seg, (unsigned long long)at.off,
            (unsigned long long)f->end_seq);
    f->st = F_CATCHUP;
    f->behind = true;
    f->pos = at;
    f->bound = at;
    f->pos_seq = 0; /* there is something to send */
    f->rd_seeked = false;
}

/* A blocked forwarder checks the pool now and then: when it is nearly
 * spent (several channels' windows together can pass it), live buffers
 * held for a receiver that is not reading go back, so no session waits for
 * a slow receiver's buffers. */
void fy__fwd_live_pressure(fwd *f)
{
    f->timer_armed = false;
    if (f->st != F_LIVE || !f->qlen)
        return;
    size_t used = fy_bufpool_used(f->ctx->pool), lim = fy_bufpool_limit(f->ctx->pool);
    if (used / 4 * 5 >= lim) { /* 80 % */
        overflow(f, NULL, "pool_pressure");
        fy__fwd_pump(f);
        return;
    }
    f->timer_armed = true;
    fy_timer_after(f->self, PRESSURE_MS, FY__TM_RETRY);
}

void fy__fwd_live_blocked(fwd *f)
{
    if (f->st == F_LIVE && f->qlen && !f->timer_armed) {
        f->timer_armed = true;
        fy_timer_after(f->self, PRESSURE_MS, FY__TM_RETRY);
    }
}

/* The partly written frame goes out from its buffer (write_part, in
 * catch-up mode with nothing to read from the file). */
void fy__fwd_live_cut(fwd *f)
{
    if (f->qlen && f->qoff) {
        fy_pos after = keep_part(f);
        while (f->qlen)
            q_pop(f);
        f->st = F_CATCHUP;
        f->pos = f->bound = f->end = after;
        f->pos_seq = 0;
        f->rd_seeked = false;
    }
    while (f->qlen)
        q_pop(f);
}

/* ---- a batch from the writer ------------------------------------------------------ */

/* Following (live, no queue): the batch's bytes are in the file; send them
 * from there, from the end we had reached. */
static void follow(fwd *f, fy__batch *b)
{
    fy_pos from = f->end;

    f->end = b->end;
    f->end_seq = b->next_seq;
    fy__batch_unref(b);
    f->last_live_ns = fy_now_ns();
    f->st = F_CATCHUP;
    f->behind = false;
    if (!f->rd || fy_logrd_pos(f->rd).seg != from.seg || fy_logrd_pos(f->rd).off != from.off)
        f->rd_seeked = false; /* the reader was closed, or a drain moved nothing */
    f->pos = f->bound = from;
    f->pos_seq = 0;
    fy__fwd_emit_lag(f);
    fy__fwd_pump(f);
}

void fy__fwd_live(fwd *f, fy__batch *b)
{
    if (f->cut) { /* sending nothing new: the end is fixed */
        fy__batch_unref(b);
        return;
    }
    if (f->st != F_LIVE) {
        /* Catching up (or not started): the bytes are in the file already;
         * only the end moves. */
        if (f->st != F_CLOSING && b->next_seq > f->end_seq) {
            f->end = b->end;
            f->end_seq = b->next_seq;
        }
        fy__batch_unref(b);
        if (f->st == F_CATCHUP) {
            fy__fwd_emit_lag(f);
            fy__fwd_pump(f);
        }
        return;
    }
    if (b->next_seq <= f->q_next_seq) { /* all sent already */
        fy__batch_unref(b);
        return;
    }
    if (b->recs[0].seq != f->q_next_seq) {
        uint64_t first = b->recs[0].seq;
        fy__batch_unref(b);
        fy__fwd_fail(f, FY_EINTERNAL, "live batch starts at seq %llu, expected %llu",
                     (unsigned long long)first, (unsigned long long)f->q_next_seq);
        return;
    }
    if (f->follow) {
        follow(f, b);
        return;
    }
    if (f->qbytes + b->held > f->ctx->conf->window) {
        overflow(f, b, "window");
    } else if (q_push(f, b) < 0) {
        overflow(f, b, "no_memory");
    } else {
        f->end = b->end;
        f->end_seq = b->next_seq;
        f->q_next_seq = b->next_seq;
    }
    fy__fwd_emit_lag(f);
    fy__fwd_pump(f);
}

/* ---- writing from the queue ------------------------------------------------------- */

/* Live: writev from the queued buffers.  Frames that lie back to back in
 * one buffer (small frames packed by the session) go out as one iovec, so
 * a call carries up to IOV_PER_CALL runs, not frames.  Returns bytes
 * written or -errno. */
ssize_t fy__fwd_live_write(fwd *f, size_t max)
{
    FY__OWNER(f->self);
    struct iovec iov[IOV_PER_CALL];
    int n = 0;
    ssize_t w;
    size_t tot = 0;
    uint32_t fi = f->qframe;
    size_t off = f->qoff;

    for (size_t bi = 0; bi < f->qlen && tot < max; bi++) {
        fy__batch *b = fy__fwd_qat(f, bi);
        for (; fi < b->n && tot < max; fi++) {
            uint8_t *p = (uint8_t *)b->fr[fi].iov_base + off;
            size_t len = b->fr[fi].iov_len - off;
            if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == p) {
                iov[n - 1].iov_len += len;
            } else {
                if (n == IOV_PER_CALL)
                    goto full;
                iov[n++] = (struct iovec){p, len};
            }
            tot += len;
            off = 0;
        }
        fi = 0;
    }
full:
    w = fy_conn_writev(&f->conn, iov, n);
    if (w == 0)
        return -EAGAIN;
    if (w < 0)
        return w;
    /* Advance past what went out. */
    size_t left = (size_t)w;
    while (left) {
        fy__batch *h = fy__fwd_qat(f, 0);
        size_t rest = h->fr[f->qframe].iov_len - f->qoff;
        if (left < rest) {
            f->qoff += left;
            break;
        }
        left -= rest;
        f->qoff = 0;
        f->frames_live++;
        if (++f->qframe == h->n)
            q_pop(f);
    }
    f->mid = f->qoff != 0;
    return w;
}
