/*
 * upstream.c - one mirrored channel's subscription to the upstream relay
 * (the upstream actor; an edge relay runs one per channel it mirrors).
 *
 * With --upstream set, a channel that a local receiver asks for and that
 * no local sender feeds is mirrored: its writer starts this actor and gives
 * it the sender slot at once (docs/architecture.md, "Scaling past one
 * machine").  The actor is an ordinary receiver of the upstream relay
 * (src/link: connect, hello role=receiver, welcome) and, once welcomed,
 * reads the socket straight into the buffers of the same fy_ingest a local
 * sender's session uses (actors/ingest.c), through the same read loop
 * (actors/pump.c): every frame is checked, the frames are batched to the
 * writer, which verifies every file's SHA-256, stores, indexes and
 * forwards them exactly as a local sender's (a refused file-end:
 * FY_RM_DIGEST_ERR, on_digest_err).  Nothing is copied that a local
 * sender's stream would not be.
 *
 * Sequence numbers.  The edge's log numbers its frames itself; upstream
 * seq = local seq + delta.  delta is 0 when the edge starts from the
 * upstream's first frame (the usual case) and changes only when the
 * upstream has dropped what the edge needs next (FY_ENOSEQ: retention)
 * and the edge starts again from the oldest seq upstream holds.  It is
 * kept in DIR/upstream (src/store/mirror.c), which also marks the channel
 * as mirrored, so a local sender is refused even while no receiver is
 * there.  Each frame's
 * header gets the local channel id and seq (and a new header CRC) before
 * it goes to the writer; the payload and its CRC are untouched.
 *
 * Losing the link (an upstream restart, a network cut) keeps the ingest
 * and its state -- the file in progress and its bytes so far; the writer
 * keeps the file's SHA-256 so far -- and reconnects with exponential
 * backoff and jitter, resuming at the next seq the ingest expects, so the
 * log goes on with no gap and no duplicate and the local receivers notice
 * nothing but a pause.
 *
 * The writer ends the actor: at shutdown at once, and upstream-linger
 * after its last local receiver left, at the next file boundary (so the
 * log does not end inside a file the next subscription could not finish).
 *
 * Where the parts are: the link (connect, TLS, hello, welcome, backoff) is
 * upstream_link.c; the state file's format and its tmp + rename are
 * src/store/mirror.c; the read loop is the one a sender's session uses
 * (actors/pump.c).  This file holds the actor, the state it keeps, the
 * re-sequencing of batches and the stream's faults.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sock.h"
#include "relay/stats.h"
#include "store/mirror.h"
#include "msg.h"
#include "upstream_int.h"

/* ---- the state file -------------------------------------------------------- */

/* DIR/upstream (src/store/mirror.c) holds delta and the local seq of the
 * file in progress's file-begin.  Written when delta is first known or
 * changes (synced) and at every file-begin and file-end that passes (not
 * synced), so an edge restarted inside a file knows where that file began:
 * it resumes upstream there, checks the file's frames again and drops the
 * ones it already has (the writer hashes the stored part back from its
 * log).  A failure is logged; the mirror goes on. */
void fy__upstream_state_save(upstream *u, bool sync)
{
    fy_mirror_state st = {.delta = u->delta, .file_begin = u->fb_local, .epoch = u->up_epoch};
    if (u->replica) /* a replica's delta is 0 and its channel may be led here one day */
        return;
    int rc = fy_mirror_save(u->dir, &st, u->ctx->conf->upstream, sync);

    if (rc < 0) {
        char path[4700];
        fy_mirror_path(u->dir, path, sizeof path);
        fy_klog(FY_LOG_ERROR, "cannot write mirror state", "path=%s err=%s action=\"go on\"",
                path, fy_errname(rc));
    }
}

int fy__upstream_marked(const char *chan_dir)
{
    fy_mirror_state st;

    return fy_mirror_load(chan_dir, &st);
}

void fy__upstream_recorded(const char *chan_dir, char *up, size_t cap)
{
    fy_mirror_state st;

    (void)fy_mirror_load(chan_dir, &st);
    snprintf(up, cap, "%s", st.upstream);
}

/* ---- batches to the writer, in local numbering ---------------------------------- */

/* Drop the frames below skip_until (checked again after a restart inside
 * a file, already in the log).  Returns false when none is left: the
 * batch is gone then and its buffers count as credited. */
static bool skip_stored(upstream *u, fy__batch *b)
{
    uint32_t k = 0;

    while (k < b->n && (uint64_t)((int64_t)fy__batch_seq(b, k) - u->delta) < u->skip_until)
        k++;
    if (k == b->n) {
        fy_ingest_credit(u->ing, b->held);
        fy__batch_unref(b);
        return false;
    }
    fy__batch_drop_front(b, k);
    u->skip_until = 0;
    return true;
}

/* After FY_ENOSEQ the upstream's frames [u->lost_from, to) never reached
 * this edge: keep that (DIR/skipped) and tell the receivers, through the
 * writer, before the frame at local seq at goes to them. */
static void record_skip(upstream *u, uint64_t at, uint64_t to)
{
    fy_mirror_skip s = {.at_seq = at, .up_from = u->lost_from, .up_to = to, .code = FY_ESKIPPED};
    int rc = fy_mirror_skip_add(u->dir, &s);

    fy_klog(FY_LOG_WARN, "files skipped: the upstream's retention removed them first",
            "channel=%s upstream=%s upstream_from=%llu upstream_to=%llu at_seq=%llu "
            "action=\"notice to receivers\"%s%s", u->name, u->peer,
            (unsigned long long)s.up_from, (unsigned long long)to, (unsigned long long)at,
            rc < 0 ? " record_err=" : "", rc < 0 ? fy_errname(rc) : "");
    fy__msg_notice(u->writer, at);
}

/* The first frame of a new stream is stored: frames before it were the
 * rest of a file this edge cannot have (upstream's oldest seq was inside
 * it), so delta moves past them and the local log has no gap. */
static void rebase(upstream *u, uint64_t first_upstream_seq)
{
    int64_t d = (int64_t)first_upstream_seq - (int64_t)u->rebase_local;
    bool quiet = u->rebase_quiet;
    u->rebase = u->rebase_quiet = false;
    if (u->lost_from && first_upstream_seq > u->lost_from)
        record_skip(u, u->rebase_local, first_upstream_seq);
    u->lost_from = 0;
    if (d == u->delta)
        return;
    if (!quiet)
        fy_klog(FY_LOG_WARN, "upstream stream began inside a file", "channel=%s upstream=%s "
                "skipped_frames=%lld first_seq=%llu action=\"start at the next file\"", u->name,
                u->peer, (long long)(d - u->delta),
                (unsigned long long)first_upstream_seq);
    u->delta = d;
    fy__upstream_state_save(u, true);
}

/* The ingest's output: give each frame the local channel id and seq (the
 * header CRC covers both), note file boundaries, then hand the batch to
 * the writer. */
void fy__upstream_batch_out(void *arg, fy__batch *b)
{
    upstream *u = arg;
    bool boundary = false;

    if (u->replica_seek) {
        fy__upstream_replica_seek(u, b);
        return;
    }
    if (u->recon ? !fy__upstream_recon(u, b) : u->skip_until && !skip_stored(u, b))
        return;
    if (u->rebase && b->n)
        rebase(u, fy__batch_seq(b, 0));
    fy__upstream_note_marks(u, b);
    for (uint32_t i = 0; i < b->n; i++) {
        uint64_t seq = (uint64_t)((int64_t)fy__batch_seq(b, i) - u->delta);
        fy_frame_restamp(b->fr[i].iov_base, u->chan_id, seq);
    }
    for (uint32_t k = 0; k < b->nmarks; k++) {
        const fy__file_mark *mk = &b->marks[k];
        u->fb_local = mk->type == FY_FT_FILE_BEGIN ? fy__batch_seq(b, mk->frame) : 0;
        boundary = true;
    }
    if (boundary)
        fy__upstream_state_save(u, false);
    if (b->n && u->fly_n < RING) {
        unsigned i = (u->fly_head + u->fly_n++) % RING;
        u->fly[i].next_seq = fy__batch_seq(b, b->n - 1) + 1;
        u->fly[i].bytes = b->bytes;
        u->bytes_fly += b->bytes;
    }
    fy__msg_batch(u->writer, b);
}

/* Leave: the writer gets its sender slot back, and this actor stops. */
void fy__upstream_finish(upstream *u, const char *why)
{
    if (u->st == U_DONE)
        return;
    fy_ingest_stop(u->ing);
    fy__upstream_link_down(u);
    fy_klog(FY_LOG_INFO, "upstream unsubscribed", "channel=%s upstream=%s reason=\"%s\" "
            "next_seq=%llu", u->name, u->peer, why,
            (unsigned long long)u->local_next);
    u->st = U_DONE;
    fy__msg_detach(u->writer, u->self);
    fy_actor_stop(u->self);
}

/* ---- the stream ---------------------------------------------------------------- */

/* A control frame inside the stream.  0 to go on, 1 to stop reading. */
static int on_ctl(void *arg, const fy_frame *f)
{
    upstream *u = arg;

    switch (f->hdr.type) {
    case FY_FT_PING:
        if (fy_link_ctl(&u->link, FY_FT_PONG, f->hdr.channel, f->hdr.seq, f->payload,
                        f->hdr.len) == 0)
            (void)fy_link_flush(&u->link);
        return 0;
    case FY_FT_BYE:
        fy__upstream_lost(u, FY_LOG_INFO, "upstream said bye");
        return 1;
    case FY_FT_ERROR:
        fy__upstream_error_frame(u, f);
        return 1;
    default:
        return 0; /* acks, pongs: nothing to do */
    }
}

static void fail_ingest(upstream *u, int rc)
{
    const fy_ingest_fault *x = fy_ingest_fault_get(u->ing);

    if (x->why == FY_INGEST_BEGIN_IN_FILE) {
        /* Upstream's log holds a file its sender abandoned (a sender or an
         * origin that died mid-file, then a new file): receivers discard
         * such a file, and so does this edge's log.  Go on at the new
         * file-begin with a fresh ingest. */
        fy_klog(FY_LOG_INFO, "upstream file abandoned", "channel=%s upstream=%s "
                "file_begin_seq=%llu action=\"resume at the new file\"", u->name,
                u->peer, (unsigned long long)x->hdr.seq);
        u->local_next = (uint64_t)((int64_t)x->hdr.seq - u->delta);
        fy_ingest_free(u->ing);
        u->ing = NULL;
        fy__upstream_link_down(u);
        fy__upstream_connect(u);
        return;
    }

    /* The upstream sent what its own ingest checked: a fault here is damage
     * on its disk or the wire, or a log that ended inside a file.  Keep what
     * was stored; try again from there with a fresh ingest. */
    fy_klog(FY_LOG_ERROR, "upstream stream refused", "channel=%s upstream=%s why=%d err=%s "
            "seq=%llu expect_seq=%llu action=\"reconnect, resume from the last good frame\"",
            u->name, u->peer, (int)x->why, fy_errname(rc),
            (unsigned long long)x->hdr.seq, (unsigned long long)x->expect_seq);
    u->local_next = (uint64_t)((int64_t)fy_ingest_info_get(u->ing)->next_seq - u->delta);
    fy_ingest_free(u->ing);
    u->ing = NULL;
    fy__upstream_lost(u, FY_LOG_ERROR, fy_strerror(rc));
}

/* The writer refused the frame at local seq `seq` (a file-end whose
 * SHA-256 is wrong, or a file it could not hash: damage on upstream's disk
 * or in this edge's log) and stored the frames before it; it drops the
 * batches sent since.  Sending that file again would not mend the part
 * already stored, so the stream starts again at seq with a fresh ingest
 * that drops the rest of the file up to the next file-begin, which then
 * takes seq (rebase): receivers discard the broken file as one whose
 * sender died, and get the next. */
static void on_digest_err(upstream *u, const fy_msg *m)
{
    uint64_t seq = m->u64[0];

    fy_klog(FY_LOG_ERROR, "upstream file refused", "channel=%s upstream=%s seq=%llu err=%s "
            "action=\"reconnect, resume at the next file\"", u->name, u->peer,
            (unsigned long long)seq, m->u32 ? fy_errname(-(int)m->u32) : "FY_EDIGEST");
    fy_ingest_stop(u->ing); /* its stream is over; in-flight credit is forgotten */
    fy_ingest_free(u->ing);
    u->ing = NULL;
    u->local_next = u->rebase_local = seq;
    u->skip_until = 0;
    u->recon = u->seek_begin = false;
    u->rebase = true;
    /* After the batches the writer drops (the mailbox keeps our order). */
    fy__msg_digest_reset(u->writer, u->self);
    if (u->st == U_STREAM || u->st == U_LINK)
        fy__upstream_lost(u, FY_LOG_WARN, "file refused by the writer");
}

/* The read loop's half (fy__pump_run): 0 when the ingest needs more
 * input, 1 to stop reading. */
static int consume(void *arg)
{
    upstream *u = arg;
    int rc = fy__pump_ingest(&u->pump, u->ing, on_ctl, u);

    if (rc == FY__PUMP_STOP)
        return 1;
    const fy_ingest_info *in = fy_ingest_info_get(u->ing);
    u->local_next = (uint64_t)((int64_t)in->next_seq - u->delta);
    if (in->next_seq > u->origin_next)
        u->origin_next = in->next_seq;
    if (rc < 0)
        fail_ingest(u, rc);
    return rc != FY__PUMP_MORE;
}

static ssize_t read_more(void *arg)
{
    upstream *u = arg;
    struct iovec iov[2];
    ssize_t n = fy_conn_readv(fy_link_conn(&u->link), iov, fy_ingest_iov(u->ing, iov));

    if (n > 0) {
        fy_ingest_got(u->ing, (size_t)n);
        u->bytes_rx += (uint64_t)n;
    }
    return n;
}

static void closed(void *arg, ssize_t n)
{
    fy__upstream_lost(arg, FY_LOG_WARN, n == 0 ? "upstream closed" : fy_strerror((int)n));
}

static const fy__pump_fns pump_fns = {consume, read_more, closed};

void fy__upstream_drive(upstream *u)
{
    if (u->st != U_STREAM || u->pump.paused)
        return;
    bool more = fy__pump_run(&u->pump, &pump_fns, u);
    if (u->st == U_STREAM && u->seek_found) { /* the writer starts the log there */
        fy__upstream_finish(u, "leader's retention passed this log");
        return;
    }
    if (!more)
        return;
    if (u->st == U_STREAM)
        fy_ingest_flush(u->ing);
    if (u->leaving && u->st == U_STREAM && !fy_ingest_info_get(u->ing)->in_file)
        fy__upstream_finish(u, "no local receiver for upstream-linger");
}

/* ---- messages ------------------------------------------------------------------- */

static void on_stats(upstream *u, const fy_msg *m)
{
    fy_stats_rec r = {.actor = fy_actor_id(u->self), .kind = FY_KIND_UPSTREAM};
    const fy_ingest_info *in = fy_ingest_info_get(u->ing);
    /* Upstream's end as far as this edge can know it: the welcome and what
     * has arrived.  Stored: the end of the last batch the writer credited. */
    uint64_t end = u->origin_next > in->next_seq ? u->origin_next : in->next_seq;
    uint64_t stored = (uint64_t)((int64_t)u->stored_next + u->delta);

    r.depth = fy_actor_depth(u->self);
    snprintf(r.channel, sizeof r.channel, "%.71s", u->name);
    snprintf(r.peer, sizeof r.peer, "%.63s", u->peer);
    r.v[FY_ST_UP_CONNECTED] = u->st == U_STREAM;
    r.v[FY_ST_RECONNECTS] = u->reconnects;
    r.v[FY_ST_ENOSEQ] = u->enoseq;
    r.v[FY_ST_LAG_PKTS] = u->stored_next && end > stored ? end - stored : 0;
    r.v[FY_ST_LAG_BYTES] = u->bytes_fly;
    r.v[FY_ST_BYTES_IN] = u->bytes_rx;
    r.v[FY_ST_FRAMES_IN] = in->frames;
    r.v[FY_ST_QUEUED_BYTES] = in->inflight;
    fy_stats_answer(u->ctx->pool, u->ctx->metrics, m, &r);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    upstream *u = state;
    uint64_t tag = m->u64[0];

    (void)self;
    if (u->st == U_DONE)
        return FY_MSG_DONE;
    switch (m->type) {
    case FY_MSG_IO:
        if (tag != u->gen)
            break;
        if (u->st == U_LINK)
            fy__upstream_drive_link(u, m->u32);
        else if (u->st == U_STREAM) {
            uint32_t bits = fy_conn_io_bits(fy_link_conn(&u->link), m->u32);
            if (bits & FY_IO_WRITE)
                (void)fy_link_flush(&u->link); /* a pong, or a TLS record held back */
            if (bits & (FY_IO_READ | FY_IO_HUP))
                fy__upstream_drive(u);
        }
        break;
    case FY_MSG_TIMER:
        if ((tag & 0xff) == TM_RETRY) {
            fy__pump_retry(&u->pump);
            fy__upstream_drive(u);
        } else if ((tag & 0xff) == TM_RECONNECT && tag >> 8 == u->gen && u->st == U_WAIT) {
            fy__upstream_connect(u);
        } else if ((tag & 0xff) == TM_CONNECT && tag >> 8 == u->gen && u->st == U_LINK) {
            fy__upstream_lost(u, FY_LOG_WARN, "no welcome in time");
        } else if ((tag & 0xff) == TM_REPORT && tag >> 8 == u->gen && u->st == U_STREAM) {
            fy__upstream_replica_report(u, true);
            fy_timer_after(u->self, REPORT_MS, (uint64_t)u->gen << 8 | TM_REPORT);
        }
        break;
    case FY_RM_CONTINUE:
        fy__pump_continued(&u->pump);
        fy__upstream_drive(u);
        break;
    case FY_RM_CREDIT:
        if (u->fly_n) {
            u->stored_next = u->fly[u->fly_head].next_seq; /* local numbering */
            u->bytes_fly -= u->fly[u->fly_head].bytes;
            u->fly_head = (u->fly_head + 1) % RING;
            u->fly_n--;
        }
        fy_ingest_credit(u->ing, m->u64[0]);
        if (u->replica) /* credit comes when the batch is as durable as --fsync asks */
            fy__upstream_replica_report(u, false);
        if (fy__pump_credit(&u->pump))
            fy__upstream_drive(u);
        break;
    case FY_RM_ACK: /* a file-end is stored: nothing to tell upstream, a receiver */
        break;
    case FY_RM_STORE_ERR:
        fy_klog(FY_LOG_ERROR, "mirror cannot store", "channel=%s err=%s next_seq=%llu "
                "action=\"unsubscribe; the next receiver tries again\"", u->name,
                fy_errname(-(int)m->u32), (unsigned long long)m->u64[0]);
        fy__upstream_finish(u, "store failed");
        break;
    case FY_RM_DIGEST_ERR:
        on_digest_err(u, m);
        break;
    case FY_RM_SHUTDOWN:
        /* u32 = 1: linger over (leave at a file boundary), else at once. */
        if (m->u32 && u->st == U_STREAM && fy_ingest_info_get(u->ing)->in_file) {
            u->leaving = true;
            break;
        }
        fy__upstream_finish(u, m->u32 ? "no local receiver for upstream-linger" : "relay shutdown");
        break;
    case FY_STATS_REQ:
        on_stats(u, m);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    upstream *u = state;

    if (fy_link_fd(&u->link) >= 0)
        fy_io_del(u->ctx->sched, fy_link_fd(&u->link));
    fy_link_close(&u->link);
    fy_ingest_free(u->ing);
    fy_actor_unref(u->writer);
    free(u);
}

int fy__upstream_new(const fy__ctx *ctx, const fy__chan *chan, fy_actor *writer,
                     uint64_t next_seq, bool empty, fy_actor **out)
{
    upstream *u = calloc(1, sizeof *u);

    if (!u)
        return -ENOMEM;
    u->ctx = ctx;
    u->chan_id = chan->id;
    snprintf(u->name, sizeof u->name, "%s", chan->name);
    snprintf(u->dir, sizeof u->dir, "%s", chan->dir);
    u->local_next = next_seq;
    u->backoff_ms = BACKOFF_MIN_MS;
    /* Edges started together must not retry in step: time, process, actor. */
    u->rng = (fy_now_ns() ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)u) | 1;
    fy_link_init(&u->link);
    if (ctx->up_naddr == 0) { /* fy_relay_new resolved it, or refused to start */
        fy_klog(FY_LOG_ERROR, "bad upstream address", "upstream=%s", ctx->conf->upstream);
        free(u);
        return -EINVAL;
    }
    u->addr = ctx->up_addr[0];
    snprintf(u->peer, sizeof u->peer, "%s", ctx->conf->upstream);
    /* A log with frames and no state file came from a local sender: never
     * mirror over it (the writer checks this before starting us). */
    fy_mirror_state st;
    u->fresh = !fy_mirror_load(u->dir, &st);
    u->delta = st.delta;
    u->fb_local = st.file_begin;
    u->up_epoch = st.epoch; /* so a restarted edge ahead of its origin is still seen as ahead */
    if (u->fresh && !empty) {
        free(u);
        return -FY_EBUSY;
    }
    if (u->fb_local && u->fb_local < next_seq) {
        /* The log ends inside a file: fetch it again from its file-begin so
         * the ingest checks all of it; the frames we have are dropped. */
        u->skip_until = next_seq;
        u->local_next = u->fb_local;
    } else {
        u->fb_local = 0;
    }
    fy_klog(FY_LOG_INFO, "mirroring channel", "channel=%s upstream=%s local_next_seq=%llu "
            "mode=%s resume_at_file_begin=%llu", u->name, ctx->conf->upstream,
            (unsigned long long)next_seq, u->fresh ? "start" : "resume",
            (unsigned long long)(u->skip_until ? u->fb_local : 0));
    return fy__upstream_launch(u, chan, writer, out);
}

int fy__upstream_launch(upstream *u, const fy__chan *chan, fy_actor *writer, fy_actor **out)
{
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = u, .kind = FY_KIND_UPSTREAM,
                       .label = chan->name};
    int rc;

    if ((rc = fy_actor_new(u->ctx->sched, &o, &u->self)) < 0) {
        free(u);
        return rc;
    }
    u->writer = fy_actor_ref(writer);
    u->pump = (fy__pump){.self = u->self, .retry_tag = TM_RETRY};
    *out = u->self;
    /* The first connect runs on the actor's own turn (a timer of 0 ms);
     * from here on u is the actor's (a replica link may leave, and u be
     * freed, before this returns). */
    fy_timer_after(u->self, 0, (uint64_t)u->gen << 8 | TM_RECONNECT);
    return 0;
}
