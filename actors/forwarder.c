/*
 * forwarder.c - one receiver connection (the forwarder actor): its state
 * and messages, subscribing, the receiver's frames, idle checks, the drain
 * and closing.  The sending is in two files beside it: fwd_live.c, the
 * live queue (batches from the writer, sent from the shared buffers), and
 * fwd_catchup.c, the pump (control frames, catch-up from the data file,
 * the live queue's writes).  The state is in forwarder_int.h.
 *
 * A forwarder sends a receiver the channel's stream frames, in order, with
 * no gap and no duplicate, at the receiver's own pace.  It has two modes:
 * catch-up, history sent from the data file (fwd_catchup.c), and live,
 * batches sent as the writer publishes them (fwd_live.c).  A live receiver
 * that falls behind by more than the window goes back to catch-up.
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
#include "forwarder_int.h"
#include "msg.h"
#include "relay/stats.h"
#include "store/mirror.h"

#define FWD_NOTICES_MAX 16 /* at a welcome: the newest this many a receiver crosses */

static void on_readable(fwd *f);

/* ---- control frames and ending ------------------------------------------------ */

int fy__fwd_ctl_push(fwd *f, uint8_t type, const uint8_t *p, size_t n)
{
    if (f->coff == f->clen)
        f->coff = f->clen = 0;
    int len = fy__ctl_frame(type, f->chan->id, 0, p, n, f->ctl + f->clen,
                            FY__FWD_CTL_CAP - f->clen);
    if (len < 0)
        return len;
    f->clen += (size_t)len;
    return 0;
}

void fy__fwd_close(fwd *f, enum fy_klog_level lvl, const char *why)
{
    if (f->st == F_CLOSING)
        return;
    fy__fwd_live_drop(f);
    if (f->conn.fd >= 0) {
        fy_io_del(f->ctx->sched, f->conn.fd);
        (void)fy_conn_shutdown_wr(&f->conn);
        (void)fy_conn_drain(&f->conn, 16);
        fy_conn_close(&f->conn);
        fy__msg_conn_gone(f->ctx->acceptor, f->addr_key);
    }
    fy_klog(lvl, "receiver closed", "peer=%s channel=%s reason=\"%s\" bytes_sent=%llu "
            "acked_seq=%llu catchups=%llu", f->peer, f->chan->name, why,
            (unsigned long long)f->sent, (unsigned long long)f->acked,
            (unsigned long long)f->catchups);
    f->st = F_CLOSING;
    /* Both to the writer from this actor: they arrive in this order. */
    fy__msg_fwd_totals(f->chan->writer,
                       f->catchups > UINT32_MAX ? UINT32_MAX : (uint32_t)f->catchups, f->sent_disk);
    fy__msg_unsubscribe(f->chan->writer, f->self, f->sent, f->frames_live);
}

/* End with an error frame (when no stream frame is half written). */
void fy__fwd_fail(fwd *f, int code, const char *fmt, ...)
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
        if (n > 0 && f->clen + (size_t)n <= FY__FWD_CTL_CAP) {
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
    fy__fwd_close(f, FY_LOG_DEBUG, fy_errname(code));
}

/* ---- starting: subscription and look-up --------------------------------------- */

/* To a receiver that asked for notices (FY_HELLO_F_NOTICE): what an edge's
 * mirror skipped before a seq in [from, to] (src/store/mirror.c). */
static void notices(fwd *f, uint64_t from, uint64_t to)
{
    fy_mirror_skip s[FWD_NOTICES_MAX];

    if (!(f->hflags & FY_HELLO_F_NOTICE))
        return;
    int n = fy_mirror_skip_load(f->chan->dir, from, s, FWD_NOTICES_MAX);
    for (int i = 0; i < n && s[i].at_seq <= to; i++) {
        fy_notice v = {.code = s[i].code, .at_seq = s[i].at_seq, .up_from = s[i].up_from,
                       .up_to = s[i].up_to};
        uint8_t p[32 + FY_NOTICE_TEXT_MAX];
        size_t len;
        snprintf(v.text, sizeof v.text, "the upstream's retention removed its seqs %llu..%llu "
                 "before this relay mirrored them: the files in them are not here",
                 (unsigned long long)s[i].up_from, (unsigned long long)s[i].up_to - 1);
        if (fy_notice_encode(&v, p, sizeof p, &len) == 0 &&
            fy__fwd_ctl_push(f, FY_FT_NOTICE, p, len) == 0)
            fy_klog(FY_LOG_INFO, "notice to receiver", "peer=%s channel=%s at_seq=%llu "
                    "code=%s", f->peer, f->chan->name, (unsigned long long)v.at_seq,
                    fy_errname((int)v.code));
    }
}

/* The welcome; to a hello with FY_HELLO_F_AHEAD with the extension (its
 * part fields 0: they are a sender's) and the epoch fields, f->wflags
 * included. */
static void welcome(fwd *f, uint64_t first_seq, uint64_t start_seq)
{
    fy_welcome w = {.channel = f->chan->id, .next_seq = start_seq, .first_seq = first_seq,
                    .max_payload = (uint32_t)f->ctx->conf->max_payload};
    fy__fwd_welcome_ext(f, &w);
    uint8_t p[FY_WELCOME_MAX];
    size_t n;

    if (fy_welcome_encode(&w, p, sizeof p, &n) == 0)
        fy__fwd_ctl_push(f, FY_FT_WELCOME, p, n);
    notices(f, start_seq, UINT64_MAX);
}

/* LIVE: from the file-begin of the file in progress, or from the end. */
static void subscribe_live(fwd *f, const fy__sub_info *si)
{
    uint64_t from = si->fb_seq ? si->fb_seq : si->next_seq;

    welcome(f, si->first_seq, from);
    fy_klog(FY_LOG_INFO, "receiver subscribed", "peer=%s channel=%s mode=live from_seq=%llu "
            "end_seq=%llu", f->peer, f->chan->name, (unsigned long long)from,
            (unsigned long long)si->next_seq);
    if (si->fb_seq)
        fy__fwd_start_catchup(f, si->fb_pos, si->fb_seq);
    else
        fy__fwd_start_catchup(f, si->end, si->next_seq);
}

/* A RESUME with FY_HELLO_F_AHEAD: the receiver's frames are the log's own
 * below the lowest start of the epochs since its own, and below the log's
 * end (docs/protocol.md, "A receiver ahead of the log").  A resume point
 * past that is ahead: start it at its partial file's file-begin if the log
 * holds that, else at the limit, and flag the welcome.  Returns the seq
 * to start at (want when it is not ahead). */
static uint64_t reconcile_ahead(fwd *f, const fy__sub_info *si, uint64_t want)
{
    uint64_t limit = fy__chan_valid_below(f->chan, f->r_epoch);
    if (limit > si->next_seq)
        limit = si->next_seq;
    if (want <= limit)
        return want;
    bool part = f->r_part && f->r_part >= si->first_seq && f->r_part < limit;
    uint64_t from = part ? f->r_part : limit > si->first_seq ? limit : si->first_seq;
    f->wflags |= FY_WELCOME_F_AHEAD;
    fy_klog(FY_LOG_WARN, "receiver ahead of the log", "peer=%s channel=%s resume_from=%llu "
            "epoch=%016llx part_seq=%llu valid_below=%llu end_seq=%llu from_seq=%llu "
            "action=\"%s\"", f->peer, f->chan->name, (unsigned long long)want,
            (unsigned long long)f->r_epoch, (unsigned long long)f->r_part,
            (unsigned long long)limit, (unsigned long long)si->next_seq,
            (unsigned long long)from,
            part ? "start at its partial file's begin" : "start where its frames stop being ours");
    return from;
}

/* START and RESUME: from the first frame kept, or the resume point; a seq
 * behind the end is looked up in the index first (FY_RM_LOOKED). */
static void subscribe_history(fwd *f, const fy__sub_info *si)
{
    uint64_t first = si->first_seq;
    uint64_t want = f->mode == FY_MODE_RESUME && f->resume_from ? f->resume_from : first;

    if (f->mode == FY_MODE_RESUME && (f->hflags & FY_HELLO_F_AHEAD))
        want = reconcile_ahead(f, si, want);

    if (f->mode != FY_MODE_START && f->mode != FY_MODE_RESUME) {
        f->st = F_LIVE;
        fy__fwd_fail(f, FY_EPAYLOAD, "unknown receiver mode %u", f->mode);
        return;
    }
    if (want < first || want > si->next_seq) {
        f->st = F_LIVE;
        fy__fwd_fail(f, FY_ENOSEQ, "resume from seq %llu: the channel holds %llu..%llu",
                     (unsigned long long)want, (unsigned long long)first,
                     (unsigned long long)si->next_seq);
        return;
    }
    fy_klog(FY_LOG_INFO, "receiver subscribed", "peer=%s channel=%s mode=%s from_seq=%llu "
            "end_seq=%llu", f->peer, f->chan->name,
            f->mode == FY_MODE_START ? "start" : "resume", (unsigned long long)want,
            (unsigned long long)si->next_seq);
    if (want == si->next_seq) {
        welcome(f, first, want);
        fy__fwd_start_catchup(f, si->end, want);
        return;
    }
    f->st = F_LOOKUP;
    f->pos_seq = want;
    f->first_seq_hint = first;
    fy_actor *ref = fy_actor_ref(f->self);
    if (fy__msg_lookup(f->chan->indexer, want, ref) < 0) {
        fy_actor_unref(ref); /* a released message does not drop it */
        fy__fwd_fail(f, FY_ESHUTDOWN, "channel closing: seq %llu cannot be looked up",
                     (unsigned long long)want);
    }
}

static void on_subscribed(fwd *f, fy__sub_info *si)
{
    FY__OWNER(f->self);
    if (!si || si->err) {
        f->st = F_LIVE; /* nothing queued: fy__fwd_fail() writes at once */
        fy__fwd_fail(f, si ? (int)si->err : FY_EINTERNAL, "channel %s: %s", f->chan->name,
                     fy_strerror(si ? (int)si->err : FY_EINTERNAL));
        free(si);
        return;
    }
    if (f->ctx->conf->sndbuf)
        fy_sock_set_bufs(f->conn.fd, (int)f->ctx->conf->sndbuf, 0);
    f->follow = f->ctx->conf->live_send == FY_LIVE_SEND_FILE &&
                (!fy_conn_is_tls(&f->conn) || fy_conn_ktls_send(&f->conn));
    if (fy_io_add(f->self, f->conn.fd, FY_IO_READ | FY_IO_WRITE, 0) < 0) {
        free(si);
        f->st = F_LIVE;
        fy__fwd_close(f, FY_LOG_ERROR, "fy_io_add failed");
        return;
    }
    f->end = si->end;
    f->end_seq = si->next_seq;
    fy__idle_alive(&f->idle, fy_now_ns());
    if (f->ctx->conf->idle_timeout)
        fy_timer_after(f->self, fy__idle_tick_ms(f->ctx->conf->idle_timeout), FY__TM_IDLE);
    fy__fwd_replica_join(f);
    if (f->mode == FY_MODE_LIVE)
        subscribe_live(f, si);
    else
        subscribe_history(f, si);
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
        fy__fwd_fail(f, (int)m->u32, "seq %llu not found: %s", (unsigned long long)f->pos_seq,
                     fy_strerror((int)m->u32));
        return;
    }
    welcome(f, f->first_seq_hint, f->pos_seq);
    fy__fwd_start_catchup(f, (fy_pos){m->u64[0], m->u64[1]}, f->pos_seq);
}

/* ---- lag (trace and stats) ----------------------------------------------------- */

/* How far behind the channel's end this receiver is: live, the queued
 * frames; catching up, the file bytes between the reader and the end
 * (segments in between counted at the configured segment size). */
static void lag(const fwd *f, uint64_t *pkts, uint64_t *bytes)
{
    *pkts = *bytes = 0;
    if (f->st == F_LIVE && f->qlen) {
        *pkts = f->q_next_seq - fy__fwd_qat(f, 0)->recs[f->qframe].seq;
        *bytes = f->qbytes;
    } else if (f->st == F_CATCHUP) {
        if (f->pos.seg == f->end.seg)
            *bytes = f->end.off > f->pos.off ? f->end.off - f->pos.off : 0;
        else
            *bytes = f->end.off + (f->ctx->conf->segment_bytes > f->pos.off
                                       ? f->ctx->conf->segment_bytes - f->pos.off : 0);
    }
}

void fy__fwd_emit_lag(fwd *f)
{
    uint64_t p, b;
    lag(f, &p, &b);
    f->lag_open = b > 0;
    fy_trace_emit(FY_TR_LAG, fy_actor_id(f->self), p, b);
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
        fy__fwd_close(f, FY_LOG_INFO, "drain timeout before the first frame");
        return;
    case F_LIVE:
        fy__fwd_live_cut(f);
        break;
    case F_CATCHUP:
        end = f->pos;
        if (f->rd && f->rd_seeked && (rc = fy_logrd_boundary(f->rd, f->bound, &end)) < 0) {
            fy_klog(FY_LOG_WARN, "drain cut", "peer=%s channel=%s call=fy_logrd_boundary err=%s "
                    "action=\"close without bye\"", f->peer, f->chan->name, fy_errname(rc));
            fy__fwd_close(f, FY_LOG_INFO, "drain timeout");
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
    fy__fwd_pump(f);
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
            fy__fwd_fail(f, FY_EPROTO, "ack of seq %llu, but only seqs below %llu exist",
                         (unsigned long long)a.seq, (unsigned long long)end);
            return 1;
        }
        f->acked = a.seq;
        return 0;
    }
    case FY_FT_REPLICA_STORED:
        return fy__fwd_replica_stored(f, fr);
    case FY_FT_PING:
        /* dropped if the queue is full */
        fy__fwd_ctl_push(f, FY_FT_PONG, fr->payload, fr->hdr.len);
        fy__fwd_pump(f);
        return 0;
    case FY_FT_PONG: /* the answer to our ping: reading it was the sign of life */
        return 0;
    case FY_FT_BYE:
        fy__fwd_close(f, FY_LOG_INFO, "bye");
        return 1;
    case FY_FT_ERROR:
        fy__ctl_log_peer_error(f->peer, "receiver sent error", fr);
        fy__fwd_close(f, FY_LOG_INFO, "receiver error");
        return 1;
    default:
        fy__fwd_fail(f, FY_EPROTO, "unexpected %s frame from a receiver",
                     fy_frame_type_name(fr->hdr.type));
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
            fy__fwd_fail(f, rc, "bad frame from a receiver: %s", fy_strerror(rc));
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
            fy__fwd_close(f, FY_LOG_INFO, n == 0 ? "peer closed" : fy_strerror((int)n));
            return;
        }
        fy__idle_alive(&f->idle, fy_now_ns());
        if (feed(f, buf, (size_t)n))
            return;
    }
    if (!f->cont_pending) { /* a chatty receiver: read the rest next turn */
        f->cont_pending = true;
        fy__msg_continue(f->self);
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
            fy__fwd_fail(f, FY_ETIMEOUT, "peer idle too long: the receiver read nothing for "
                         "%llu ms while data was waiting (%lld bytes unacknowledged; "
                         "idle-timeout %llu s)", ms, (long long)unacked, (unsigned long long)t);
        else
            fy__fwd_fail(f, FY_ETIMEOUT, "peer idle too long: nothing from the receiver for "
                         "%llu ms, no pong to our ping (idle-timeout %llu s)", ms,
                         (unsigned long long)t);
        return;
    }
    if (act == FY__IDLE_PING) {
        uint8_t p[8];
        memcpy(p, &now, sizeof p); /* opaque to the peer; echoed in the pong */
        if (fy__fwd_ctl_push(f, FY_FT_PING, p, sizeof p) == 0) {
            f->ping_bytes += FY_FRAME_HDR_SIZE + sizeof p;
            fy__fwd_pump(f);
        } else {
            f->idle.ping_out = false; /* the queue was full: try at the next tick */
        }
    }
    if (f->st != F_CLOSING)
        fy_timer_after(f->self, fy__idle_tick_ms(t), FY__TM_IDLE);
}

/* ---- the actor -------------------------------------------------------------------- */

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
    snprintf(r.client, sizeof r.client, "%s", f->client);
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
            fy__fwd_pump(f);
        break;
    case FY_RM_CONTINUE:
        f->cont_pending = false;
        if (f->st != F_SUBSCRIBING)
            on_readable(f);
        if (f->st != F_CLOSING)
            fy__fwd_pump(f);
        break;
    case FY_RM_SUBSCRIBED:
        on_subscribed(f, m->ptr);
        break;
    case FY_MSG_TIMER:
        if (m->u64[0] == FY__TM_IDLE)
            on_idle_tick(f);
        else if (m->u64[0] == FY__TM_LINGER)
            fy__fwd_linger(f);
        else
            fy__fwd_live_pressure(f);
        break;
    case FY_RM_LOOKED:
        on_looked(f, m);
        break;
    case FY_RM_LIVE:
        fy__fwd_live(f, m->ptr);
        break;
    case FY_RM_DRAIN_CUT:
        on_cut(f);
        break;
    case FY_RM_FENCE:
        fy__fwd_fence(f, (int)m->u32);
        break;
    case FY_RM_NOTICE:
        /* Before our welcome went out, the welcome's own look at the
         * file finds it (written before this message was sent). */
        if (f->st == F_CATCHUP || f->st == F_LIVE) {
            notices(f, m->u64[0], m->u64[0]);
            fy__fwd_pump(f);
        }
        break;
    case FY_RM_SHUTDOWN:
        /* No batch follows (every sender is gone): send what is queued or
         * in the file up to the current end, then bye. */
        f->shutting = true;
        fy__fwd_pump(f);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    fwd *f = state;

    fy__fwd_live_drop(f);
    fy_conn_close(&f->conn);
    fy_logrd_close(f->rd);
    fy_dec_free(f->dec);
    free(f->pending);
    free(f->q);
    free(f->tombs);
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
    f->hflags = in->hflags;
    f->r_epoch = in->r_epoch;
    f->r_part = in->r_part;
    f->rep_cepoch = in->rep_cepoch;
    f->rep_last_epoch = in->rep_last_epoch;
    f->rep_log_next = in->rep_log_next;
    snprintf(f->peer, sizeof f->peer, "%s", in->peer);
    snprintf(f->client, sizeof f->client, "%s", in->client);
    if (in->npending) {
        if (!(f->pending = malloc(in->npending)))
            goto fail;
        memcpy(f->pending, in->pending, in->npending);
        f->npending = in->npending;
    }
    /* Receivers send only small control frames. */
    if ((rc = fy_dec_new(FY_CTL_PAYLOAD_MAX, &f->dec)) < 0)
        goto fail;
    /* "peer channel [client]": ferry-trace shows them in its tables (the
     * runtime keeps 63 bytes of it). */
    char label[sizeof f->peer + FY_NAME_MAX + FY_CLIENT_MAX + 3];
    snprintf(label, sizeof label, "%s %s%s%s", in->peer, in->chan->name, in->client[0] ? " " : "",
             in->client);
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = f, .kind = FY_KIND_FORWARDER,
                       .label = label};
    if ((rc = fy_actor_new(f->ctx->sched, &o, &f->self)) < 0)
        goto fail;
    /* The connection now counts as ours: posted before the session that
     * hands it over reports gone, so the acceptor's count never dips. */
    memcpy(f->addr_key, in->addr_key, sizeof f->addr_key);
    fy__msg_conn_adopt(f->ctx->acceptor, f->addr_key);
    *out = f->self;
    return 0;
fail:
    f->conn = fy_conn_plain(-1); /* the caller still owns it */
    fy_dec_free(f->dec);
    free(f->pending);
    free(f);
    return rc;
}
