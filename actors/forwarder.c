/*
 * forwarder.c - one receiver connection (the forwarder actor).
 *
 * A forwarder sends a receiver the channel's stream frames, in order, with
 * no gap and no duplicate, at the receiver's own pace.  It has two modes:
 *
 *   catch-up  history from the data file: fy_logrd_send() from a
 *             position up to the latest end the writer told it, no copy
 *             through user space (sendfile; SSL_sendfile under kernel
 *             TLS; user-space TLS preads a record and SSL_writes it,
 *             fy_conn_sendfile).  Live batches that arrive meanwhile only
 *             move that end forward (their bytes are already in the file).
 *             When the reader reaches the end, the forwarder is live.
 *   live      nothing left to send up to the end.  With --live-send file,
 *             where the connection can send from the page cache without a
 *             copy (a plain socket, or kernel TLS) the forwarder *follows*:
 *             a live batch only
 *             moves the end and the bytes go out with sendfile from the
 *             file, like catch-up, with the reader kept open (closed after
 *             FOLLOW_LINGER_MS with nothing new).  Live and catch-up are
 *             then one path: no copy per receiver, no buffer held for a
 *             receiver, nothing to overflow.  By default (--live-send
 *             buffers, and always under user-space TLS) the batches are
 *             queued and sent from the shared buffers with writev or
 *             SSL_write (non-blocking; partial writes resume at the byte):
 *             on loopback that measured faster than sendfile from 16
 *             receivers up (docs/benchmarks.md, "Where the copies go").
 *
 * Queued live batches: a receiver that falls behind by
 * more than the window (--window) makes its forwarder drop every queued batch
 * and go back to catch-up from the first unsent frame, so a slow receiver
 * holds at most a window of buffers and the writer never waits for anyone.
 *
 * Subscribing: the session that read the hello hands over the socket and
 * subscribes on our behalf; the writer answers with its end position.
 * START and RESUME ask the indexer where the first wanted frame is; LIVE
 * starts at the file-begin of the file in progress, or at the end.
 *
 * Ending: the forwarder closes its socket, releases its buffers, asks the
 * writer to unsubscribe it and stops only when the writer confirms, so no
 * live batch can be sent to it after it stopped.
 *
 * Idle receivers (docs/architecture.md, "Timeouts"): a receiver is alive
 * while it sends us anything (acks, pongs) or while its TCP acknowledges
 * stream bytes we wrote -- which stops once it has not read for as long as
 * its receive buffer lasts, however slowly it reads before that.  Acked
 * ping bytes do not count (a stopped process's kernel still acks those).
 * After half of --idle-timeout without either it gets a ping; after the
 * whole timeout FY_ETIMEOUT.
 *
 * Drain: on shutdown it sends what is queued or in the file up to the end,
 * then bye.  When the drain timeout passes first (FY_RM_DRAIN_CUT), it
 * finishes the frame it is in the middle of, drops the rest, and says bye,
 * so a receiver still reading sees a clean end instead of a cut frame.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sock.h"
#include "ferry/trace.h"
#include "relay/stats.h"
#include "relay_int.h"

#define CTL_CAP (16u << 10)
#define TURN_BYTES (8u << 20)   /* bytes per turn, then yield */
#define IOV_PER_CALL 64
#define PRESSURE_MS 20       /* blocked with live buffers: check the pool this often */
#define FOLLOW_LINGER_MS 1000 /* following: close the reader after this long with nothing new */

enum fst { F_SUBSCRIBING, F_LOOKUP, F_CATCHUP, F_LIVE, F_CLOSING };

typedef struct fwd {
    const fy__ctx *ctx;
    const fy__chan *chan;
    fy_actor *self;
    fy_conn conn;         /* plain or TLS: every byte to the receiver goes through it */
    enum fst st;
    char peer[64];
    uint64_t addr_key[2]; /* the acceptor counts our connection under it */
    uint8_t mode;
    uint64_t resume_from;
    fy_dec *dec;
    uint8_t *pending; /* bytes the session read past the hello */
    size_t npending;
    fy_logrd *rd;
    uint8_t ctl[CTL_CAP]; /* control frames waiting for a frame boundary */
    size_t clen, coff;
    bool mid;             /* a stream frame is partly written */
    fy_pos end;           /* latest end the writer told us */
    uint64_t end_seq;     /* seq of the frame at end */
    fy_pos pos;           /* catch-up: next byte to send from the file */
    uint64_t pos_seq;     /* catch-up: seq we started from (for "nothing to do") */
    uint64_t first_seq_hint; /* for the welcome sent after a look-up */
    bool rd_seeked;
    fy__batch *part;      /* catch-up: frame part_i of part is partly sent */
    uint32_t part_i;
    size_t part_off;
    fy__batch **q;        /* live: ring of batches */
    size_t qhead, qlen, qcap;
    uint32_t qframe;      /* first unsent frame of q[qhead] */
    size_t qoff;          /* bytes of it already sent */
    uint64_t qbytes;      /* pool capacity held by the queued batches */
    uint64_t q_next_seq;  /* seq after the last queued frame */
    bool shutting, bye_queued, cont_pending, timer_armed;
    bool lag_open;        /* the last lag event said "behind" */
    fy__idle idle;        /* when the receiver was last seen alive, and our ping */
    uint64_t ctl_out;     /* control bytes written (with sent: all bytes written) */
    uint64_t ping_bytes;  /* bytes of the pings queued */
    int64_t acked_best;   /* most non-ping bytes the peer had acknowledged at a tick */
    bool cut;             /* the drain timeout passed: finish this frame, bye */
    bool follow;          /* live bytes go out from the file too (no user-space TLS) */
    bool behind;          /* catching up on history (start, resume, overflow), not following */
    bool linger_armed;
    uint64_t last_live_ns; /* when a live batch last moved the end */
    fy_pos bound;         /* catch-up: a frame boundary at or before pos */
    uint64_t sent, acked, catchups, frames_live;
    uint64_t sent_disk;   /* of sent, bytes sent from the file (catch-up) */
} fwd;

static void pump(fwd *f);

/* ---- small helpers ----------------------------------------------------------- */

static fy__batch *qat(const fwd *f, size_t i)
{
    return f->q[(f->qhead + i) % f->qcap];
}

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
            nq[i] = qat(f, i);
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

static void drop_all(fwd *f)
{
    while (f->qlen)
        q_pop(f);
    fy__batch_unref(f->part);
    f->part = NULL;
}

static int ctl_push(fwd *f, uint8_t type, const uint8_t *p, size_t n)
{
    if (f->coff == f->clen)
        f->coff = f->clen = 0;
    int len = fy__ctl_frame(type, f->chan->id, 0, p, n, f->ctl + f->clen, CTL_CAP - f->clen);
    if (len < 0)
        return len;
    f->clen += (size_t)len;
    return 0;
}

/* ---- ending ------------------------------------------------------------------ */

static void close_fwd(fwd *f, enum fy_klog_level lvl, const char *why)
{
    if (f->st == F_CLOSING)
        return;
    drop_all(f);
    if (f->conn.fd >= 0) {
        fy_io_del(f->ctx->sched, f->conn.fd);
        (void)fy_conn_shutdown_wr(&f->conn);
        (void)fy_conn_drain(&f->conn, 16);
        fy_conn_close(&f->conn);
        fy_actor_post(f->ctx->acceptor, FY_RM_CONN_GONE, 0, f->addr_key[0], f->addr_key[1], NULL,
                      NULL);
    }
    fy_klog(lvl, "receiver closed", "peer=%s channel=%s reason=\"%s\" bytes_sent=%llu "
            "acked_seq=%llu catchups=%llu", f->peer, f->chan->name, why,
            (unsigned long long)f->sent, (unsigned long long)f->acked,
            (unsigned long long)f->catchups);
    f->st = F_CLOSING;
    /* Both to the writer from this actor: they arrive in this order. */
    fy_actor_post(f->chan->writer, FY_RM_FWD_TOTALS,
                  f->catchups > UINT32_MAX ? UINT32_MAX : (uint32_t)f->catchups, f->sent_disk, 0,
                  NULL, NULL);
    fy_actor_post(f->chan->writer, FY_RM_UNSUBSCRIBE, 0, f->sent, f->frames_live, f->self, NULL);
}

/* End with an error frame (when no stream frame is half written). */
static void fail(fwd *f, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(fwd *f, int code, const char *fmt, ...)
{
    char text[512], q[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (code < 0)
        code = -code;
    fy_klog(FY_LOG_WARN, code == FY_ETIMEOUT ? "idle timeout" : "receiver refused",
            "peer=%s channel=%s err=%s text=%s "
            "action=\"error frame, close\"", f->peer, f->chan->name, fy_errname(code),
            fy_klog_q(text, q, sizeof q));
    if (!f->mid && f->conn.fd >= 0) {
        uint8_t fr[FY_FRAME_HDR_SIZE + 600];
        int n = fy__ctl_error(f->chan->id, code, fr, sizeof fr, "%s", text);
        if (n > 0 && f->clen + (size_t)n <= CTL_CAP) {
            memcpy(f->ctl + f->clen, fr, (size_t)n);
            f->clen += (size_t)n;
        }
        while (f->coff < f->clen) {
            struct iovec iov = {f->ctl + f->coff, f->clen - f->coff};
            ssize_t w = fy_conn_writev(&f->conn, &iov, 1);
            if (w <= 0)
                break;
            f->coff += (size_t)w;
        }
        (void)fy_conn_flush(&f->conn);
    }
    close_fwd(f, FY_LOG_DEBUG, fy_errname(code));
}

/* ---- starting: subscription and look-up --------------------------------------- */

static void welcome(fwd *f, uint64_t first_seq, uint64_t start_seq)
{
    fy_welcome w = {.channel = f->chan->id, .next_seq = start_seq, .first_seq = first_seq,
                    .max_payload = (uint32_t)f->ctx->conf->max_payload};
    uint8_t p[FY_WELCOME_MAX];
    size_t n;

    if (fy_welcome_encode(&w, p, sizeof p, &n) == 0)
        ctl_push(f, FY_FT_WELCOME, p, n);
}

static void start_catchup(fwd *f, fy_pos at, uint64_t seq)
{
    f->st = F_CATCHUP;
    f->behind = true;
    f->pos = at;
    f->bound = at;
    f->pos_seq = seq;
    f->rd_seeked = false;
    pump(f);
}

static void on_readable(fwd *f);

static void on_subscribed(fwd *f, fy__sub_info *si)
{
    FY__OWNER(f->self);
    int rc;

    if (!si || si->err) {
        f->st = F_LIVE; /* nothing queued: fail() writes at once */
        fail(f, si ? (int)si->err : FY_EINTERNAL, "channel %s: %s", f->chan->name,
             fy_strerror(si ? (int)si->err : FY_EINTERNAL));
        free(si);
        return;
    }
    if (f->ctx->conf->sndbuf)
        fy_sock_set_bufs(f->conn.fd, (int)f->ctx->conf->sndbuf, 0);
    f->follow = f->ctx->conf->live_send == FY_LIVE_SEND_FILE &&
                (!fy_conn_is_tls(&f->conn) || fy_conn_ktls_send(&f->conn));
    if ((rc = fy_io_add(f->self, f->conn.fd, FY_IO_READ | FY_IO_WRITE, 0)) < 0) {
        free(si);
        f->st = F_LIVE;
        close_fwd(f, FY_LOG_ERROR, "fy_io_add failed");
        return;
    }
    f->end = si->end;
    f->end_seq = si->next_seq;
    fy__idle_alive(&f->idle, fy_now_ns());
    if (f->ctx->conf->idle_timeout)
        fy_timer_after(f->self, fy__idle_tick_ms(f->ctx->conf->idle_timeout), FY__TM_IDLE);
    uint64_t first = si->first_seq, want;
    switch (f->mode) {
    case FY_MODE_LIVE:
        welcome(f, first, si->fb_seq ? si->fb_seq : si->next_seq);
        fy_klog(FY_LOG_INFO, "receiver subscribed", "peer=%s channel=%s mode=live from_seq=%llu "
                "end_seq=%llu", f->peer, f->chan->name,
                (unsigned long long)(si->fb_seq ? si->fb_seq : si->next_seq),
                (unsigned long long)si->next_seq);
        if (si->fb_seq)
            start_catchup(f, si->fb_pos, si->fb_seq);
        else
            start_catchup(f, si->end, si->next_seq);
        break;
    default:
        want = f->mode == FY_MODE_RESUME && f->resume_from ? f->resume_from : first;
        if (f->mode != FY_MODE_START && f->mode != FY_MODE_RESUME) {
            f->st = F_LIVE;
            fail(f, FY_EPAYLOAD, "unknown receiver mode %u", f->mode);
            break;
        }
        if (want < first || want > si->next_seq) {
            f->st = F_LIVE;
            fail(f, FY_ENOSEQ, "resume from seq %llu: the channel holds %llu..%llu",
                 (unsigned long long)want, (unsigned long long)first,
                 (unsigned long long)si->next_seq);
            break;
        }
        fy_klog(FY_LOG_INFO, "receiver subscribed", "peer=%s channel=%s mode=%s from_seq=%llu "
                "end_seq=%llu", f->peer, f->chan->name,
                f->mode == FY_MODE_START ? "start" : "resume", (unsigned long long)want,
                (unsigned long long)si->next_seq);
        if (want == si->next_seq) {
            welcome(f, first, want);
            start_catchup(f, si->end, want);
        } else {
            f->st = F_LOOKUP;
            f->pos_seq = want;
            f->first_seq_hint = first;
            fy_actor *ref = fy_actor_ref(f->self);
            if (fy_actor_post(f->chan->indexer, FY_RM_LOOKUP, 0, want, 0, ref, NULL) < 0) {
                fy_actor_unref(ref); /* a released message does not drop it */
                fail(f, FY_ESHUTDOWN, "channel closing: seq %llu cannot be looked up",
                     (unsigned long long)want);
            }
        }
        break;
    }
    free(si);
    if (f->st != F_CLOSING) /* also takes frames sent right behind the hello */
        on_readable(f);
}

static void on_looked(fwd *f, fy_msg *m)
{
    if (f->st != F_LOOKUP)
        return;
    if (m->u32) {
        f->st = F_LIVE;
        fail(f, (int)m->u32, "seq %llu not found: %s", (unsigned long long)f->pos_seq,
             fy_strerror((int)m->u32));
        return;
    }
    welcome(f, f->first_seq_hint, f->pos_seq);
    start_catchup(f, (fy_pos){m->u64[0], m->u64[1]}, f->pos_seq);
}

/* ---- live batches -------------------------------------------------------------- */

/* Fall back to the file: keep at most the partly written frame.  nb is the
 * batch that did not fit (or NULL when the pool is short of buffers). */
static void overflow(fwd *f, fy__batch *nb, const char *why)
{
    fy_pos at;
    uint64_t behind = f->qbytes + (nb ? nb->held : 0);

    if (f->qlen) {
        fy__batch *h = qat(f, 0);
        const fy_idx_rec *r = &h->recs[f->qframe];
        if (f->qoff) {
            at = (fy_pos){r->seg, r->off + r->len};
            f->part = h;
            atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
            f->part_i = f->qframe;
            f->part_off = f->qoff;
        } else {
            at = (fy_pos){r->seg, r->off};
        }
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
static void pressure_check(fwd *f)
{
    f->timer_armed = false;
    if (f->st != F_LIVE || !f->qlen)
        return;
    size_t used = fy_bufpool_used(f->ctx->pool), lim = fy_bufpool_limit(f->ctx->pool);
    if (used / 4 * 5 >= lim) { /* 80 % */
        overflow(f, NULL, "pool_pressure");
        pump(f);
        return;
    }
    f->timer_armed = true;
    fy_timer_after(f->self, PRESSURE_MS, FY__TM_RETRY);
}

/* How far behind the channel's end this receiver is: live, the queued
 * frames; catching up, the file bytes between the reader and the end
 * (segments in between counted at the configured segment size). */
static void lag(const fwd *f, uint64_t *pkts, uint64_t *bytes)
{
    *pkts = *bytes = 0;
    if (f->st == F_LIVE && f->qlen) {
        *pkts = f->q_next_seq - qat(f, 0)->recs[f->qframe].seq;
        *bytes = f->qbytes;
    } else if (f->st == F_CATCHUP) {
        if (f->pos.seg == f->end.seg)
            *bytes = f->end.off > f->pos.off ? f->end.off - f->pos.off : 0;
        else
            *bytes = f->end.off + (f->ctx->conf->segment_bytes > f->pos.off
                                       ? f->ctx->conf->segment_bytes - f->pos.off : 0);
    }
}

static void emit_lag(fwd *f)
{
    uint64_t p, b;
    lag(f, &p, &b);
    f->lag_open = b > 0;
    fy_trace_emit(FY_TR_LAG, fy_actor_id(f->self), p, b);
}

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
    emit_lag(f);
    pump(f);
}

static void on_live(fwd *f, fy__batch *b)
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
            emit_lag(f);
            pump(f);
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
        fail(f, FY_EINTERNAL, "live batch starts at seq %llu, expected %llu",
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
    emit_lag(f);
    pump(f);
}

/* ---- writing --------------------------------------------------------------------- */

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

/* Live: writev from the queued buffers.  Frames that lie back to back in
 * one buffer (small frames packed by the session) go out as one iovec, so
 * a call carries up to IOV_PER_CALL runs, not frames.  Returns bytes
 * written or -errno. */
static ssize_t write_live(fwd *f, size_t max)
{
    FY__OWNER(f->self);
    struct iovec iov[IOV_PER_CALL];
    int n = 0;
    ssize_t w;
    size_t tot = 0;
    uint32_t fi = f->qframe;
    size_t off = f->qoff;

    for (size_t bi = 0; bi < f->qlen && tot < max; bi++) {
        fy__batch *b = qat(f, bi);
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
        fy__batch *h = qat(f, 0);
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
static void on_linger(fwd *f)
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
    rc = fy_logrd_send(f->rd, send_file, &f->conn, f->end, max, &sent);
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
    if (sent == 0) {
        go_live(f);
        return 0;
    }
    return (ssize_t)sent;
}

static void pump(fwd *f)
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
            close_fwd(f, FY_LOG_INFO, fy_strerror(rc));
            return;
        }
        ssize_t w;
        if (f->st == F_CATCHUP) {
            w = catchup_step(f, budget);
        } else if (f->qlen) {
            w = write_live(f, budget);
            if (w > 0)
                f->sent += (size_t)w;
        } else {
            /* Caught up: say so, or the trace would keep the last "behind"
             * figure as this receiver's current lag. */
            if (f->lag_open)
                emit_lag(f);
            if (f->shutting && !f->bye_queued) {
                f->bye_queued = true;
                ctl_push(f, FY_FT_BYE, NULL, 0);
                continue;
            }
            if (f->bye_queued && f->coff == f->clen && fy_conn_flush(&f->conn) == 0)
                close_fwd(f, FY_LOG_INFO, "relay shutdown");
            return;
        }
        if (w == -EAGAIN) {
            if (f->st == F_LIVE && f->qlen && !f->timer_armed) {
                f->timer_armed = true;
                fy_timer_after(f->self, PRESSURE_MS, FY__TM_RETRY);
            }
            return;
        }
        if (w < 0) {
            if (w == -EPIPE || w == -ECONNRESET)
                close_fwd(f, FY_LOG_INFO, "peer closed");
            else
                close_fwd(f, FY_LOG_WARN, fy_strerror((int)w));
            return;
        }
        fy_trace_emit(FY_TR_BYTES, fy_actor_id(f->self), (uint64_t)w, 1);
        if ((size_t)w >= budget) {
            if (!f->cont_pending) {
                f->cont_pending = true;
                fy_actor_post(f->self, FY_RM_CONTINUE, 0, 0, 0, NULL, NULL);
            }
            return;
        }
        budget -= (size_t)w;
    }
}

/* ---- the drain timeout ----------------------------------------------------------- */

/* Stop at the end of the frame being sent, then bye (pump sends it once
 * nothing is left, as on an orderly shutdown). */
static void on_cut(fwd *f)
{
    fy_pos end;
    int rc;

    f->shutting = true;
    if (f->cut)
        return;
    f->cut = true;
    switch (f->st) {
    case F_SUBSCRIBING:
    case F_LOOKUP: /* nothing sent yet, not even a welcome */
        close_fwd(f, FY_LOG_INFO, "drain timeout before the first frame");
        return;
    case F_LIVE:
        if (f->qlen && f->qoff) {
            /* The partly written frame goes out from its buffer (write_part,
             * in catch-up mode with nothing to read from the file). */
            fy__batch *h = qat(f, 0);
            const fy_idx_rec *r = &h->recs[f->qframe];
            f->part = h;
            atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
            f->part_i = f->qframe;
            f->part_off = f->qoff;
            while (f->qlen)
                q_pop(f);
            f->st = F_CATCHUP;
            f->pos = f->bound = f->end = (fy_pos){r->seg, r->off + r->len};
            f->pos_seq = 0;
            f->rd_seeked = false;
        }
        while (f->qlen)
            q_pop(f);
        break;
    case F_CATCHUP:
        end = f->pos;
        if (f->rd && f->rd_seeked && (rc = fy_logrd_boundary(f->rd, f->bound, &end)) < 0) {
            fy_klog(FY_LOG_WARN, "drain cut", "peer=%s channel=%s call=fy_logrd_boundary err=%s "
                    "action=\"close without bye\"", f->peer, f->chan->name, fy_errname(rc));
            close_fwd(f, FY_LOG_INFO, "drain timeout");
            return;
        }
        f->end = end;
        f->pos_seq = 0;
        break;
    case F_CLOSING:
        return;
    }
    fy_klog(FY_LOG_INFO, "drain timeout: receiver cut", "peer=%s channel=%s bytes_sent=%llu "
            "action=\"finish the frame, bye\"", f->peer, f->chan->name,
            (unsigned long long)f->sent);
    pump(f);
}

/* ---- reading the receiver's frames ----------------------------------------------- */

static int on_frame(fwd *f, const fy_frame *fr)
{
    switch (fr->hdr.type) {
    case FY_FT_ACK: {
        fy_ack a;
        if (fy_ack_decode(fr->payload, fr->hdr.len, &a) < 0)
            return 0;
        /* Nothing at or past the channel's end has been sent: an ack there
         * is a confused or lying receiver, and its lag figures would lie. */
        uint64_t end = f->end_seq > f->q_next_seq ? f->end_seq : f->q_next_seq;
        if (a.seq >= end) {
            fail(f, FY_EPROTO, "ack of seq %llu, but only seqs below %llu exist",
                 (unsigned long long)a.seq, (unsigned long long)end);
            return 1;
        }
        f->acked = a.seq;
        return 0;
    }
    case FY_FT_PING:
        ctl_push(f, FY_FT_PONG, fr->payload, fr->hdr.len); /* dropped if the queue is full */
        pump(f);
        return 0;
    case FY_FT_PONG: /* the answer to our ping: reading it was the sign of life */
        return 0;
    case FY_FT_BYE:
        close_fwd(f, FY_LOG_INFO, "bye");
        return 1;
    case FY_FT_ERROR:
        fy__ctl_log_peer_error(f->peer, "receiver sent error", fr);
        close_fwd(f, FY_LOG_INFO, "receiver error");
        return 1;
    default:
        fail(f, FY_EPROTO, "unexpected %s frame from a receiver", fy_frame_type_name(fr->hdr.type));
        return 1;
    }
}

static int feed(fwd *f, const uint8_t *p, size_t n)
{
    while (n && f->st != F_CLOSING) {
        size_t used = 0;
        fy_frame fr;
        int rc = fy_dec_feed(f->dec, p, n, &used, &fr);
        p += used;
        n -= used;
        if (rc == 0)
            break;
        if (rc < 0) {
            fail(f, rc, "bad frame from a receiver: %s", fy_strerror(rc));
            return 1;
        }
        if (on_frame(f, &fr))
            return 1;
    }
    return f->st == F_CLOSING;
}

static void on_readable(fwd *f)
{
    uint8_t buf[4096];

    if (f->npending) {
        size_t n = f->npending;
        f->npending = 0;
        if (feed(f, f->pending, n))
            return;
    }
    for (int i = 0; i < 64 && f->st != F_CLOSING; i++) {
        ssize_t n = fy_conn_recv(&f->conn, buf, sizeof buf);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            close_fwd(f, FY_LOG_INFO, n == 0 ? "peer closed" : fy_strerror((int)n));
            return;
        }
        fy__idle_alive(&f->idle, fy_now_ns());
        if (feed(f, buf, (size_t)n))
            return;
    }
    if (!f->cont_pending) { /* a chatty receiver: read the rest next turn */
        f->cont_pending = true;
        fy_actor_post(f->self, FY_RM_CONTINUE, 0, 0, 0, NULL, NULL);
    }
}

/* ---- idle receivers -------------------------------------------------------------- */

/* Did the peer acknowledge stream bytes since the last tick?  All bytes
 * written minus those not yet acked is what it acked; less the pings
 * queued (written or not) is at most the non-ping bytes acked, and equal
 * once every ping is acked, so a new maximum means new stream or reply
 * bytes reached it -- but for one tick after a real advance whose pings
 * were still unacked.  unacked gets SIOCOUTQ's answer. */
static bool acked_more(fwd *f, ssize_t *unacked)
{
    *unacked = fy_sock_unacked(f->conn.fd);
    if (*unacked < 0)
        return false;
    int64_t v = (int64_t)(f->sent + f->ctl_out - (uint64_t)*unacked) - (int64_t)f->ping_bytes;
    if (v <= f->acked_best)
        return false;
    f->acked_best = v;
    return true;
}

/* The shared idle rule (relay_int.h); the cut comes after 1.5 times the
 * timeout at most when the last sign of life was a ping's ack that the
 * tick took for stream progress (see acked_more). */
static void on_idle_tick(fwd *f)
{
    FY__OWNER(f->self);
    uint64_t now = fy_now_ns(), t = f->ctx->conf->idle_timeout;
    ssize_t unacked = 0;

    if (f->st == F_CLOSING)
        return; /* no more ticks */
    if (f->st == F_LOOKUP || acked_more(f, &unacked)) /* a look-up is our wait, not its */
        fy__idle_alive(&f->idle, now);
    enum fy__idle_do act = fy__idle_check(&f->idle, now, t);
    unsigned long long ms = (now - f->idle.alive_ns) / 1000000;
    if (act == FY__IDLE_CUT) {
        if (unacked > 0 || f->qlen || f->st == F_CATCHUP)
            fail(f, FY_ETIMEOUT, "peer idle too long: the receiver read nothing for %llu ms while "
                 "data was waiting (%lld bytes unacknowledged; idle-timeout %llu s)", ms,
                 (long long)unacked, (unsigned long long)t);
        else
            fail(f, FY_ETIMEOUT, "peer idle too long: nothing from the receiver for %llu ms, no "
                 "pong to our ping (idle-timeout %llu s)", ms, (unsigned long long)t);
        return;
    }
    if (act == FY__IDLE_PING) {
        uint8_t p[8];
        memcpy(p, &now, sizeof p); /* opaque to the peer; echoed in the pong */
        if (ctl_push(f, FY_FT_PING, p, sizeof p) == 0) {
            f->ping_bytes += FY_FRAME_HDR_SIZE + sizeof p;
            pump(f);
        } else {
            f->idle.ping_out = false; /* the queue was full: try at the next tick */
        }
    }
    if (f->st != F_CLOSING)
        fy_timer_after(f->self, fy__idle_tick_ms(t), FY__TM_IDLE);
}

/* Stats: frames_out counts frames sent live (from live buffers, or
 * followed in the file); catch-up of history sends bytes and does not see
 * frame boundaries. */
static void on_stats(fwd *f, const fy_msg *m)
{
    fy_stats_rec r = {.actor = fy_actor_id(f->self), .kind = FY_KIND_FORWARDER, .role = 2};

    r.depth = fy_actor_depth(f->self);
    /* Once closing, the channel record may be gone (its writer may have
     * closed the channel after our UNSUBSCRIBE). */
    if (f->st != F_CLOSING)
        snprintf(r.channel, sizeof r.channel, "%.71s", f->chan->name);
    snprintf(r.peer, sizeof r.peer, "%s", f->peer);
    snprintf(r.mode, sizeof r.mode, "%s", f->st == F_LIVE || !f->behind ? "live" : "catch-up");
    r.v[FY_ST_BYTES_OUT] = f->sent;
    r.v[FY_ST_FRAMES_OUT] = f->frames_live;
    r.v[FY_ST_CATCHUPS] = f->catchups;
    r.v[FY_ST_BYTES_DISK] = f->sent_disk;
    r.v[FY_ST_QUEUED_BYTES] = f->qbytes;
    lag(f, &r.v[FY_ST_LAG_PKTS], &r.v[FY_ST_LAG_BYTES]);
    fy_stats_answer(f->ctx->pool, f->ctx->metrics, m, &r);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    fwd *f = state;

    (void)self;
    if (m->type == FY_STATS_REQ) {
        on_stats(f, m);
        return FY_MSG_DONE;
    }
    if (f->st == F_CLOSING) {
        if (m->type == FY_RM_LIVE)
            fy__batch_unref(m->ptr);
        else if (m->type == FY_RM_SUBSCRIBED)
            free(m->ptr);
        else if (m->type == FY_RM_UNSUBSCRIBED)
            fy_actor_stop(f->self);
        return FY_MSG_DONE;
    }
    switch (m->type) {
    case FY_MSG_IO:
        if (f->st == F_SUBSCRIBING)
            break;
        if (fy_conn_io_bits(&f->conn, m->u32) & (FY_IO_READ | FY_IO_HUP))
            on_readable(f);
        if (f->st != F_CLOSING)
            pump(f);
        break;
    case FY_RM_CONTINUE:
        f->cont_pending = false;
        if (f->st != F_SUBSCRIBING)
            on_readable(f);
        if (f->st != F_CLOSING)
            pump(f);
        break;
    case FY_RM_SUBSCRIBED:
        on_subscribed(f, m->ptr);
        break;
    case FY_MSG_TIMER:
        if (m->u64[0] == FY__TM_IDLE)
            on_idle_tick(f);
        else if (m->u64[0] == FY__TM_LINGER)
            on_linger(f);
        else
            pressure_check(f);
        break;
    case FY_RM_LOOKED:
        on_looked(f, m);
        break;
    case FY_RM_LIVE:
        on_live(f, m->ptr);
        break;
    case FY_RM_DRAIN_CUT:
        on_cut(f);
        break;
    case FY_RM_SHUTDOWN:
        /* No batch follows (every sender is gone): send what is queued or
         * in the file up to the current end, then bye. */
        f->shutting = true;
        pump(f);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    fwd *f = state;

    drop_all(f);
    fy_conn_close(&f->conn);
    fy_logrd_close(f->rd);
    fy_dec_free(f->dec);
    free(f->pending);
    free(f->q);
    free(f);
}

int fy__forwarder_new(const fy__fwd_init *in, fy_actor **out)
{
    fwd *f = calloc(1, sizeof *f);
    int rc = -ENOMEM;

    if (!f)
        return rc;
    f->ctx = in->ctx;
    f->chan = in->chan;
    f->conn = in->conn;
    f->mode = in->mode;
    f->resume_from = in->resume_from;
    snprintf(f->peer, sizeof f->peer, "%s", in->peer);
    if (in->npending) {
        if (!(f->pending = malloc(in->npending)))
            goto fail;
        memcpy(f->pending, in->pending, in->npending);
        f->npending = in->npending;
    }
    /* Receivers send only small control frames. */
    if ((rc = fy_dec_new(FY_CTL_PAYLOAD_MAX, &f->dec)) < 0)
        goto fail;
    /* "peer channel": ferry-trace shows both in its tables. */
    char label[sizeof f->peer + FY_NAME_MAX + 2];
    snprintf(label, sizeof label, "%s %s", in->peer, in->chan->name);
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = f, .kind = FY_KIND_FORWARDER,
                       .label = label};
    if ((rc = fy_actor_new(f->ctx->sched, &o, &f->self)) < 0)
        goto fail;
    /* The connection now counts as ours: posted before the session that
     * hands it over reports gone, so the acceptor's count never dips. */
    memcpy(f->addr_key, in->addr_key, sizeof f->addr_key);
    fy_actor_post(f->ctx->acceptor, FY_RM_CONN_ADOPT, 0, f->addr_key[0], f->addr_key[1], NULL,
                  NULL);
    *out = f->self;
    return 0;
fail:
    f->conn = fy_conn_plain(-1); /* the caller still owns it */
    fy_dec_free(f->dec);
    free(f->pending);
    free(f);
    return rc;
}
