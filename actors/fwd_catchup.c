/*
 * fwd_catchup.c - the forwarder's pump and its catch-up from the data
 * file.  The pump (fy__fwd_pump) sends what can go out now, a bounded
 * number of bytes a turn: control frames at frame boundaries, then either
 * catch-up from the file or the live queue (fwd_live.c).
 *
 * Catch-up sends history from the data file: fy_logrd_send() from a
 * position up to the latest end the writer told us, no copy through user
 * space (sendfile; SSL_sendfile under kernel TLS; user-space TLS preads a
 * record and SSL_writes it, fy_conn_sendfile).  Live batches that arrive
 * meanwhile only move that end forward (their bytes are already in the
 * file).  When the reader reaches the end, the forwarder is live; a
 * follower (--live-send file) keeps its reader open a while for the next
 * batch.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/uio.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/trace.h"
#include "forwarder_int.h"
#include "msg.h"

#define TURN_BYTES (8u << 20)   /* bytes per turn, then yield */
#define FOLLOW_LINGER_MS 1000 /* following: close the reader after this long with nothing new */

void fy__fwd_start_catchup(fwd *f, fy_pos at, uint64_t seq)
{
    fy__fwd_skip_load(f);
    f->st = F_CATCHUP;
    f->behind = true;
    f->pos = at;
    f->bound = at;
    f->pos_seq = seq;
    f->rd_seeked = false;
    fy__fwd_pump(f);
}

/* ---- writing ---------------------------------------------------------------------- */

/* Write control frames if at a frame boundary.  0 when none are left,
 * -EAGAIN, or -errno. */
static int write_ctl(fwd *f)
{
    FY__OWNER(f->self);
    while (!f->mid && f->coff < f->clen) {
        struct iovec iov = {f->ctl + f->coff, f->clen - f->coff};
        ssize_t n = fy_conn_writev(&f->conn, &iov, 1);
        if (n < 0)
            return (int)n;
        f->coff += (size_t)n;
        f->ctl_out += (uint64_t)n;
    }
    return f->coff < f->clen ? -EAGAIN : 0;
}

/* Catch-up: finish a partly written frame kept from live mode. */
static int write_part(fwd *f)
{
    FY__OWNER(f->self);
    while (f->part) {
        const struct iovec *fr = &f->part->fr[f->part_i];
        struct iovec iov = {(uint8_t *)fr->iov_base + f->part_off, fr->iov_len - f->part_off};
        ssize_t w = fy_conn_writev(&f->conn, &iov, 1);
        if (w < 0)
            return (int)w;
        f->sent += (size_t)w;
        f->part_off += (size_t)w;
        if (f->part_off == fr->iov_len) {
            fy__batch_unref(f->part);
            f->part = NULL;
        }
    }
    return 0;
}

/* ---- reaching the end ----------------------------------------------------------------- */

static void close_reader(fwd *f)
{
    fy_logrd_close(f->rd);
    f->rd = NULL;
    f->rd_seeked = false;
}

static void go_live(fwd *f)
{
    if (!f->cut && f->behind && (f->catchups || f->pos_seq != f->end_seq))
        fy_klog(FY_LOG_INFO, "receiver live", "peer=%s channel=%s next_seq=%llu bytes_sent=%llu",
                f->peer, f->chan->name, (unsigned long long)f->end_seq,
                (unsigned long long)f->sent);
    if (!f->behind && f->end_seq > f->q_next_seq) /* followed: these went out live */
        f->frames_live += f->end_seq - f->q_next_seq;
    f->st = F_LIVE;
    f->behind = false;
    f->mid = false;
    f->q_next_seq = f->end_seq;
    if (f->follow && f->rd && f->rd_seeked) {
        /* The next batch is sent from here: keep the reader a while. */
        if (!f->linger_armed) {
            f->linger_armed = true;
            fy_timer_after(f->self, FOLLOW_LINGER_MS, FY__TM_LINGER);
        }
        return;
    }
    /* Live needs no file: give the descriptors back (10 000 idle live
     * receivers would otherwise hold 20 000 of them). */
    close_reader(f);
}

/* A follower's reader idle for FOLLOW_LINGER_MS goes back: an idle
 * receiver holds only its socket. */
void fy__fwd_linger(fwd *f)
{
    uint64_t idle_ms = (fy_now_ns() - f->last_live_ns) / 1000000;

    f->linger_armed = false;
    if (f->st != F_LIVE || !f->rd)
        return;
    if (idle_ms >= FOLLOW_LINGER_MS) {
        close_reader(f);
        return;
    }
    f->linger_armed = true;
    fy_timer_after(f->self, FOLLOW_LINGER_MS - idle_ms, FY__TM_LINGER);
}

/* ---- catch-up from the file ------------------------------------------------------------ */

/* fy_logrd_send's sender: sendfile(2) on a plain socket, SSL_sendfile under
 * kernel TLS, pread + SSL_write of a record under user-space TLS. */
static ssize_t send_file(void *arg, int in_fd, off_t off, size_t n)
{
    return fy_conn_sendfile(arg, in_fd, off, n);
}

/* Returns bytes sent (>= 0), -EAGAIN or another -errno. */
static ssize_t catchup_step(fwd *f, size_t max)
{
    FY__OWNER(f->self);
    size_t sent = 0;
    int rc;

    if ((rc = write_part(f)) < 0)
        return rc;
    if (f->pos_seq && f->pos_seq == f->end_seq) { /* nothing was ever behind */
        go_live(f);
        return 0;
    }
    if (!f->rd && (rc = fy_logrd_open(f->chan->dir, &f->rd)) < 0) {
        f->rd = NULL;
        return rc;
    }
    if (!f->rd_seeked) {
        if ((rc = fy_logrd_seek(f->rd, f->pos)) < 0)
            return rc;
        f->rd_seeked = true;
    }
    fy_pos lim = f->end;
    if (f->ntombs && fy__fwd_skip_limit(f, &lim))
        return fy__fwd_skip(f); /* at a frame boundary: a deleted file starts here */
    rc = fy_logrd_send(f->rd, send_file, &f->conn, lim, max, &sent);
    f->sent += sent;
    if (f->behind)
        f->sent_disk += sent;
    f->pos = fy_logrd_pos(f->rd);
    if (sent)
        f->mid = true; /* unknown frame boundary until the reader is at the end */
    if (rc == -EAGAIN)
        return sent ? (ssize_t)sent : -EAGAIN;
    if (rc < 0)
        return rc;
    if (sent == 0 && (lim.seg != f->end.seg || lim.off != f->end.off))
        return fy__fwd_skip(f); /* reached the deleted file the limit stopped at */
    if (sent == 0) {
        go_live(f);
        return 0;
    }
    return (ssize_t)sent;
}

/* ---- the pump ---------------------------------------------------------------------------- */

void fy__fwd_pump(fwd *f)
{
    size_t budget = TURN_BYTES;

    for (;;) {
        if (f->st == F_CLOSING || f->st == F_SUBSCRIBING || f->st == F_LOOKUP)
            return;
        /* A TLS record the connection still holds goes first (conn.h). */
        int rc = fy_conn_flush(&f->conn);
        if (rc == -EAGAIN)
            return;
        if (rc == 0)
            rc = write_ctl(f);
        if (rc == -EAGAIN && !f->mid)
            return;
        if (rc < 0 && rc != -EAGAIN) {
            fy__fwd_close(f, FY_LOG_INFO, fy_strerror(rc));
            return;
        }
        ssize_t w;
        if (f->st == F_CATCHUP) {
            w = catchup_step(f, budget);
        } else if (f->qlen) {
            w = fy__fwd_live_write(f, budget);
            if (w > 0)
                f->sent += (size_t)w;
        } else {
            /* Caught up: say so, or the trace would keep the last "behind"
             * figure as this receiver's current lag. */
            if (f->lag_open)
                fy__fwd_emit_lag(f);
            if (f->shutting && !f->bye_queued) {
                f->bye_queued = true;
                fy__fwd_ctl_push(f, FY_FT_BYE, NULL, 0);
                continue;
            }
            if (f->bye_queued && f->coff == f->clen && fy_conn_flush(&f->conn) == 0)
                fy__fwd_close(f, FY_LOG_INFO, "relay shutdown");
            return;
        }
        if (w == -EAGAIN) {
            fy__fwd_live_blocked(f);
            return;
        }
        if (w < 0) {
            if (w == -EPIPE || w == -ECONNRESET)
                fy__fwd_close(f, FY_LOG_INFO, "peer closed");
            else
                fy__fwd_close(f, FY_LOG_WARN, fy_strerror((int)w));
            return;
        }
        fy_trace_emit(FY_TR_BYTES, fy_actor_id(f->self), (uint64_t)w, 1);
        if ((size_t)w >= budget) {
            if (!f->cont_pending) {
                f->cont_pending = true;
                fy__msg_continue(f->self);
            }
            return;
        }
        budget -= (size_t)w;
    }
}
