/*
 * writer.c - one channel's file-writer: the data log and the subscriber
 * list (the writer actor).
 *
 * Every batch a sender's session sends is first checked against the
 * files' SHA-256 (verify: the writer hashes each data payload and compares
 * at each file-end; a file-end whose file does not match, and everything
 * after it, is cut off, the sender hears FY_RM_DIGEST_ERR and its later
 * batches are dropped), then appended with one fy_log_append (one pwritev
 * in the common case).  The hash runs here rather than on the session,
 * whose thread also reads and CRC-checks and was the pipeline's slowest
 * stage with it; the writer keeps the hash state of the file in progress
 * across senders and hashes the stored part back from the log only when
 * it has none (a restart inside the file).  Then, in this order: the index
 * records go to the indexer, every subscribed forwarder gets the batch
 * (one shared reference count for all of them: the same bytes, no copy)
 * together with the new end position, the sender gets a credit for the
 * buffer bytes, which reopens the channel's in-flight budget, and last an
 * ack for each file-end (after an fdatasync when the policy is file-end;
 * before it blocks, the writer hands the actors waiting on its thread to
 * the other threads, fy_sched_handoff).  The writer never waits for a
 * forwarder: a forwarder that cannot keep up drops live batches itself and
 * catches up from the file.
 *
 * The writer also enforces one sender per channel (FY_EBUSY) and answers
 * subscriptions with the current end, so a late receiver knows exactly up
 * to where to read history from disk before switching to live batches.
 *
 * It decides when its channel is idle: no sender, no forwarder and no
 * session the registry has given the channel to that is still running
 * (the lease list; a session that got the channel but never attached, e.g.
 * because its client vanished, ends its lease by stopping).  After
 * --channel-idle of that it asks the registry to close it (CHAN_IDLE); on
 * the registry's CLOSE it checks once more and either closes exactly as at
 * shutdown (fdatasync, index synced and closed, log closed: nothing
 * acknowledged or received is lost) or answers CHAN_KEEP.
 *
 * A second connection with the attached sender's token is a takeover
 * candidate: it waits while the attached session decides (FY_RM_TAKEOVER,
 * see session.c) and gets the slot when that one detaches, or FY_EBUSY
 * when it answers FY_RM_KEEP.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/trace.h"
#include "relay/stats.h"
#include "relay_int.h"

#define RETAIN_MS 1000

typedef struct writer {
    const fy__ctx *ctx;
    const fy__chan *chan;
    fy_actor *self;
    fy_actor *indexer;
    fy_log *log;
    fy_actor *sender; /* a reference, or NULL */
    char sender_token[FY_TOKEN_MAX + 1];
    fy__attach_req *taker; /* a takeover waiting for the sender's answer, or NULL */
    fy_actor **fwd;   /* references */
    size_t nfwd, capfwd;
    /* the file in progress, for LIVE joiners and the "file stored" line */
    uint64_t fb_seq;
    fy_pos fb_pos;
    uint64_t fb_size;
    char fb_name[FY_NAME_MAX + 1];
    /* The same file for a sender that continues it: unlike fb_seq (which a
     * sender leaving mid-file clears, so LIVE joiners skip a dead file) it
     * lasts until the file's file-end or the next file-begin, and a restart
     * finds it again in the log (find_part). */
    uint64_t part_seq; /* its file-begin's seq, 0 = none */
    uint64_t fb_got;   /* its payload bytes stored */
    bool dirty, fsync_armed, shutting, idx_shut, idx_done;
    bool store_failed; /* the attached sender's stream broke on a store error */
    /* The SHA-256 of the file in progress, checked at its file-end before
     * the file-end is stored.  Kept across senders (the channel's stream is
     * one sequence), so a sender that continues the file needs nothing;
     * sha_ok false (a restart inside the file, a batch cut short) means the
     * stored part is hashed back from the log first (rehash). */
    fy_sha256 *sha;
    bool sha_ok;        /* sha covers the stored payload of the file part_seq */
    bool digest_failed; /* the attached sender's stream broke on a refused file-end */
    uint64_t first_seq;
    uint64_t bytes, frames, files; /* for /metrics */
    uint64_t damaged;              /* frames the scrub found damaged, for /metrics */
    uint64_t gone_out, gone_frames_out; /* totals of forwarders that have left */
    /* channel lifetime */
    fy_actor **lease;    /* sessions given this channel, until they stop (references) */
    size_t nlease, caplease;
    uint64_t idle_since; /* fy_now_ns() when last seen unused; 0 = in use */
    bool idle_armed, idle_told, idle_close;
    uint64_t gone_disk, gone_catchups;  /* (FY_RM_FWD_TOTALS) */
    /* edge relay (actors/upstream.c): the mirror holds the sender slot */
    fy_actor *upstream;  /* == sender while mirroring (no reference of its own) */
    bool mirrored;       /* the channel is a mirror: local senders are refused */
    bool up_linger_armed;
    uint64_t up_alone_since; /* fy_now_ns() when the last receiver left */
} writer;

/* ---- the digest check ------------------------------------------------------- */

/* The writer checks every file's SHA-256, not the sender's session: the
 * session reads, CRC-checks and packs on its own thread, and with the hash
 * there as well it was the pipeline's slowest stage (docs/reliability.md,
 * "What is guaranteed").  The writer sees every batch in order before it is
 * stored, so the guarantee is the same: a file-end whose file does not hash
 * to its digest is never stored, acknowledged or forwarded. */

/* Hash the stored part of the file in progress (part_seq) back from the
 * log: the writer has no state for it (the relay restarted inside the
 * file, or the last batch was cut short).  0 or a negative error. */
static int rehash(writer *w)
{
    uint64_t t0 = fy_now_ns(), got = 0;
    int rc = fy_sha256_reset(w->sha);

    /* A read of up to a whole file: the actors queued on this thread run
     * on the others meanwhile. */
    fy_sched_handoff();
    if (rc == 0)
        rc = fy_logrd_hash_file(w->chan->dir, w->fb_pos, fy_log_end(w->log), w->part_seq,
                                w->ctx->conf->max_payload, w->sha, &got);
    if (rc == 0 && got != w->fb_got)
        rc = -FY_ECORRUPT;
    w->sha_ok = rc == 0;
    fy_klog(rc < 0 ? FY_LOG_ERROR : FY_LOG_INFO, "sender continues a file", "channel=%s name=%s "
            "size=%llu stored=%llu rehashed=%llu seconds=%.3f err=%s action=\"%s\"",
            w->chan->name, w->fb_name, (unsigned long long)w->fb_size,
            (unsigned long long)w->fb_got, (unsigned long long)got,
            (double)(fy_now_ns() - t0) / 1e9, rc < 0 ? fy_errname(rc) : "none",
            rc < 0 ? "refuse the frame, end the sender's stream" : "check the file-end");
    return rc;
}

/* Hash the batch's files and check each file-end's digest, before any of
 * the batch is stored.  Returns the index of the first frame that may not
 * be stored (b->n when all may), with *cause (0: the digest differs, else
 * why the file could not be hashed), *seq and *d filled for it.  The
 * ingest has checked the framing: file-begin, data, file-end in order. */
static uint32_t verify(writer *w, const fy__batch *b, int *cause, uint64_t *seq,
                       fy__digest_err *d)
{
    uint64_t part = w->part_seq; /* the file in progress as of frame i */
    uint32_t k = 0;              /* the next mark */

    for (uint32_t i = 0; i < b->n; i++) {
        const uint8_t *p = (const uint8_t *)b->fr[i].iov_base + FY_FRAME_HDR_SIZE;
        size_t len = b->fr[i].iov_len - FY_FRAME_HDR_SIZE;
        const fy__file_mark *mk = k < b->nmarks && b->marks[k].frame == i ? &b->marks[k++] : NULL;
        uint8_t t = mk ? mk->type : FY_FT_DATA;
        int rc = 0;

        *seq = fy__batch_seq(b, i);
        if (t == FY_FT_FILE_BEGIN) {
            rc = fy_sha256_reset(w->sha);
            w->sha_ok = rc == 0;
            part = *seq;
        } else if (!w->sha_ok) {
            /* The first frame of a file continued here: its stored part is
             * all in the log only if it is the writer's file in progress
             * and nothing of it came earlier in this batch (which would
             * have left sha_ok set). */
            rc = part && part == w->part_seq ? rehash(w) : -FY_ECORRUPT;
        }
        if (rc < 0) {
            *cause = rc;
            return i;
        }
        if (t == FY_FT_DATA) {
            fy_sha256_update(w->sha, p, len);
        } else if (t == FY_FT_FILE_END) {
            fy_sha256_final(w->sha, d->got);
            w->sha_ok = false; /* final: the next file starts with a reset */
            part = 0;
            memcpy(d->want, mk->sha256, sizeof d->want);
            if (memcmp(d->got, d->want, sizeof d->got) != 0) {
                *cause = 0;
                return i;
            }
        }
    }
    return b->n;
}

/* A frame of the attached sender's batch was refused (cause, seq, d: see
 * verify); the frames before it were stored.  The sender hears why
 * once, after its acks, and its batches sent meanwhile are dropped until
 * it detaches (or, an upstream, starts its stream again: DIGEST_RESET). */
static void digest_failed(writer *w, int cause, uint64_t seq, const fy__digest_err *d)
{
    char got[65], want[65];
    fy_buf *buf = NULL;

    fy_sha256_hex(d->got, got);
    fy_sha256_hex(d->want, want);
    if (cause)
        fy_klog(FY_LOG_ERROR, "file not hashed", "channel=%s name=%s seq=%llu err=%s "
                "action=\"refuse the frame, end the sender's stream\"", w->chan->name,
                w->fb_name, (unsigned long long)seq, fy_errname(cause));
    else
        fy_klog(FY_LOG_WARN, "file digest mismatch", "channel=%s name=%s file_end_seq=%llu "
                "sha256=%s file_end_sha256=%s action=\"file-end not stored, end the sender's "
                "stream\"", w->chan->name, w->fb_name, (unsigned long long)seq, got, want);
    w->digest_failed = true;
    if (!w->sender)
        return;
    if (!cause && fy_buf_alloc(w->ctx->pool, sizeof *d, &buf) == 0) {
        memcpy(fy_buf_data(buf), d, sizeof *d);
        fy_buf_set_len(buf, sizeof *d);
    }
    fy_actor_post(w->sender, FY_RM_DIGEST_ERR, (uint32_t)-cause, seq, 0, NULL, buf);
}

/* ---- storing a batch --------------------------------------------------------- */

static void note_frames(writer *w, fy__batch *b, uint64_t *acks, size_t *nacks)
{
    uint32_t k = 0; /* the next mark */

    for (uint32_t i = 0; i < b->n; i++) {
        const fy__file_mark *mk = k < b->nmarks && b->marks[k].frame == i ? &b->marks[k++] : NULL;
        uint8_t t = mk ? mk->type : FY_FT_DATA;
        size_t len = b->fr[i].iov_len - FY_FRAME_HDR_SIZE;
        if (t == FY_FT_FILE_BEGIN) {
            snprintf(w->fb_name, sizeof w->fb_name, "%s", fy__batch_name(b, mk));
            w->fb_size = mk->size;
            w->fb_seq = w->part_seq = b->recs[i].seq;
            w->fb_pos = (fy_pos){b->recs[i].seg, b->recs[i].off};
            w->fb_got = 0;
        } else if (t == FY_FT_DATA) {
            w->fb_got += len;
            if (!w->fb_seq && w->part_seq)
                w->fb_seq = w->part_seq; /* a sender continues the file: LIVE joiners want it */
        } else if (t == FY_FT_FILE_END) {
            fy_klog(FY_LOG_INFO, "file stored", "channel=%s name=%s size=%llu seq_first=%llu "
                    "seq_last=%llu", w->chan->name, w->fb_name, (unsigned long long)w->fb_size,
                    (unsigned long long)w->fb_seq, (unsigned long long)b->recs[i].seq);
            w->fb_seq = w->part_seq = 0;
            w->files++;
            acks[(*nacks)++] = b->recs[i].seq;
        }
    }
}

static void retain(writer *w)
{
    uint64_t first = w->first_seq;
    int rc = fy_log_retain(w->log, (uint64_t)time(NULL), &first);

    if (rc < 0) {
        fy_klog(FY_LOG_WARN, "fy_log_retain failed", "channel=%s err=%s action=\"retry later\"",
                w->chan->name, fy_errname(rc));
        return;
    }
    if (first != w->first_seq) {
        fy_klog(FY_LOG_INFO, "old segments removed", "channel=%s first_seq=%llu", w->chan->name,
                (unsigned long long)first);
        w->first_seq = first;
        fy_actor_post(w->indexer, FY_RM_TRIM, 0, first, 0, NULL, NULL);
    }
}

/* The sender's stream cannot go on: it hears why once, and the batches it
 * sent meanwhile (they no longer follow the log's end) are dropped without
 * a word until it detaches. */
static void store_failed(writer *w, int rc)
{
    w->store_failed = true;
    if (w->sender)
        fy_actor_post(w->sender, FY_RM_STORE_ERR, (uint32_t)-rc, fy_log_next_seq(w->log), 0,
                      NULL, NULL);
}

/* fy_log_append failed part way (a full disk, an I/O error): the log kept
 * the frames before the failure and cut the rest.  Those frames are the
 * batch from here on -- indexed, sent live and acknowledged like any --
 * so log, index and receivers stay at the same frame and the channel
 * goes on once space returns.  The sender hears of it after its acks.
 * Returns false when nothing was stored (the batch is gone then). */
static bool keep_stored(writer *w, fy__batch *b, uint64_t seq0, int rc)
{
    uint32_t kept = (uint32_t)(fy_log_next_seq(w->log) - seq0);

    fy_klog(FY_LOG_ERROR, "fy_log_append failed", "channel=%s frames=%u stored=%u next_seq=%llu "
            "err=%s action=\"keep what was stored, end the sender's connection\"",
            w->chan->name, b->n, kept, (unsigned long long)fy_log_next_seq(w->log),
            fy_errname(rc));
    if (kept) {
        fy__batch_cut(b, kept);
        return true;
    }
    if (w->sender)
        fy_actor_post(w->sender, FY_RM_CREDIT, 0, b->held, 0, NULL, NULL);
    store_failed(w, rc);
    fy__batch_unref(b);
    return false;
}

static void on_batch(writer *w, fy__batch *b)
{
    FY__OWNER(w->self);
    uint64_t acks[b->n ? b->n : 1];
    size_t nacks = 0;
    fy_actor *to = w->sender;
    if (w->store_failed || w->digest_failed) {
        if (to)
            fy_actor_post(to, FY_RM_CREDIT, 0, b->held, 0, NULL, NULL);
        fy__batch_unref(b);
        return;
    }
    /* The digests first: a refused frame and everything after it are cut
     * off, the frames before it are stored as any batch. */
    fy__digest_err dg;
    int cause = 0;
    uint64_t bad_seq = 0;
    uint32_t ok = verify(w, b, &cause, &bad_seq, &dg);
    bool refused = ok < b->n;
    if (refused) {
        fy__batch_cut(b, ok);
        if (!ok) {
            if (to)
                fy_actor_post(to, FY_RM_CREDIT, 0, b->held, 0, NULL, NULL);
            fy__batch_unref(b);
            digest_failed(w, cause, bad_seq, &dg);
            return;
        }
    }
    uint64_t seg0 = fy_log_end(w->log).seg;
    uint64_t seq0 = fy_log_next_seq(w->log);
    /* A direct append waits for the disk: let the actors queued here run
     * on the other threads meanwhile. */
    if (fy_log_direct(w->log, b->bytes))
        fy_sched_handoff();
    int rc = fy_log_append(w->log, b->fr, b->n, b->recs);
    if (rc < 0)
        w->sha_ok = false; /* hashed past what was stored: hash the file back if it goes on */
    if (rc < 0 && !keep_stored(w, b, seq0, rc))
        return;
    b->end = fy_log_end(w->log);
    b->next_seq = fy_log_next_seq(w->log);
    w->bytes += b->bytes;
    w->frames += b->n;
    fy_trace_emit(FY_TR_BYTES, fy_actor_id(w->self), b->bytes, 2);

    fy_idx_rec *recs = malloc(b->n * sizeof *recs);
    if (recs) {
        memcpy(recs, b->recs, b->n * sizeof *recs);
        fy_actor_post(w->indexer, FY_RM_RECS, b->n, 0, 0, recs, NULL);
    } else {
        /* The index lags; recovery rebuilds it from the data on next open. */
        fy_klog(FY_LOG_ERROR, "malloc failed", "what=index_records n=%u action=\"skip\"", b->n);
    }
    note_frames(w, b, acks, &nacks);
    w->dirty = true;

    /* Live: every forwarder gets the same batch; the writer's reference
     * becomes theirs. */
    uint64_t held = b->held;
    if (w->nfwd) {
        atomic_store_explicit(&b->refs, (unsigned)w->nfwd, memory_order_relaxed);
        for (size_t i = 0; i < w->nfwd; i++)
            if (fy_actor_post(w->fwd[i], FY_RM_LIVE, 0, 0, 0, b, NULL) < 0)
                fy__batch_unref(b);
    } else {
        fy__batch_unref(b);
    }

    /* The buffers are written: the sender may fill them again while the
     * file-end is synced. */
    if (to)
        fy_actor_post(to, FY_RM_CREDIT, 0, held, 0, NULL, NULL);
    if (nacks && w->ctx->conf->fsync_mode == FY_FSYNC_FILE_END) {
        /* The forwarders just made runnable would otherwise wait out the
         * sync on this thread (a 115 ms stall in the rate case). */
        fy_sched_handoff();
        if ((rc = fy_log_sync(w->log)) < 0) {
            fy_klog(FY_LOG_ERROR, "fy_log_sync failed", "channel=%s err=%s action=\"no ack\"",
                    w->chan->name, fy_errname(rc));
            nacks = 0;
        }
        w->dirty = false;
    }
    if (w->ctx->conf->fsync_mode == FY_FSYNC_INTERVAL && w->dirty && !w->fsync_armed) {
        w->fsync_armed = true;
        fy_timer_after(w->self, w->ctx->conf->fsync_ms, FY__TM_FSYNC);
    }
    if (to)
        for (size_t i = 0; i < nacks; i++)
            fy_actor_post(to, FY_RM_ACK, 0, acks[i], 0, NULL, NULL);
    if (rc < 0)
        store_failed(w, rc); /* after the acks of what was stored */
    else if (refused)
        digest_failed(w, cause, bad_seq, &dg); /* likewise */
    if (fy_log_end(w->log).seg != seg0 && (w->ctx->conf->retain_bytes || w->ctx->conf->retain_age))
        retain(w);
}

/* ---- idleness ------------------------------------------------------------------ */

/* Has anyone a use for the channel?  Drops the leases of sessions that have
 * stopped: everything such a session sent here (ATTACH, SUBSCRIBE for its
 * forwarder, DETACH) was queued before it stopped, so it is handled before
 * any CLOSE the registry sends in answer to a CHAN_IDLE sent after this. */
static bool in_use(writer *w)
{
    for (size_t i = 0; i < w->nlease;) {
        if (fy_actor_stopped(w->lease[i])) {
            fy_actor_unref(w->lease[i]);
            w->lease[i] = w->lease[--w->nlease];
        } else {
            i++;
        }
    }
    /* (fy_actor_stopped is an acquire: the session's sends before its stop
     * happened before the CHAN_IDLE this may lead to.) */
    return w->sender || w->nfwd || w->nlease;
}

static void idle_arm(writer *w, uint64_t ms)
{
    if (w->idle_armed)
        return;
    w->idle_armed = true;
    fy_timer_after(w->self, (uint32_t)(ms ? ms : 1), FY__TM_IDLE);
}

/* Called whenever a user may have left, and on the idle timer. */
static void idle_check(writer *w)
{
    uint64_t idle_ms = w->ctx->conf->channel_idle_ms, now = fy_now_ns();

    if (w->shutting || w->idle_told || !w->log)
        return;
    if (in_use(w)) {
        w->idle_since = 0;
        if (!w->sender && !w->nfwd)
            idle_arm(w, idle_ms); /* only leases: look again when they may have ended */
        return;
    }
    if (!w->idle_since)
        w->idle_since = now;
    uint64_t el = (now - w->idle_since) / 1000000;
    if (el >= idle_ms) {
        w->idle_told = true;
        fy_actor_post(w->ctx->registry, FY_RM_CHAN_IDLE, 0, 0, 0, (void *)w->chan, NULL);
        return;
    }
    idle_arm(w, idle_ms - el);
}

static void on_lease(writer *w, fy_actor *s)
{
    if (w->nlease == w->caplease) {
        size_t cap = w->caplease ? 2 * w->caplease : 4;
        fy_actor **nl = realloc(w->lease, cap * sizeof *nl);
        if (!nl) {
            /* Without the lease the channel could close under the session:
             * keep it open instead (it closes at shutdown). */
            fy_klog(FY_LOG_ERROR, "malloc failed", "what=lease channel=%s action=\"keep the "
                    "channel open\"", w->chan->name);
            w->idle_told = true;
            fy_actor_unref(s);
            return;
        }
        w->lease = nl;
        w->caplease = cap;
    }
    w->lease[w->nlease++] = s;
    idle_check(w);
}

static void on_shutdown(writer *w);

/* The registry agrees the channel is idle; requests for it wait meanwhile. */
static void on_close(writer *w)
{
    if (w->shutting)
        return; /* a shutdown got here first: its WRITER_DONE answers */
    w->idle_told = false;
    if (in_use(w)) {
        w->idle_since = 0;
        fy_actor_post(w->ctx->registry, FY_RM_CHAN_KEEP, 0, 0, 0, (void *)w->chan, NULL);
        idle_check(w);
        return;
    }
    fy_klog(FY_LOG_INFO, "channel idle, closing", "channel=%s idle_ms=%llu next_seq=%llu",
            w->chan->name, (unsigned long long)w->ctx->conf->channel_idle_ms,
            (unsigned long long)fy_log_next_seq(w->log));
    w->idle_close = true;
    on_shutdown(w);
}

/* ---- an edge relay's mirror ------------------------------------------------------ */

/* A receiver is here and nobody sends: mirror the channel from upstream,
 * unless a local sender's frames are in the log (then it is ours). */
static void mirror_start(writer *w)
{
    bool empty = fy_log_next_seq(w->log) == fy_log_first_seq(w->log);
    fy_actor *up;

    if (!w->ctx->conf->upstream[0] || w->sender || w->shutting || w->store_failed ||
        (!empty && !w->mirrored))
        return;
    int rc = fy__upstream_new(w->ctx, w->chan, w->self, fy_log_next_seq(w->log), empty, &up);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "cannot start the mirror", "channel=%s err=%s", w->chan->name,
                fy_errname(rc));
        return;
    }
    w->sender = w->upstream = up;
    w->mirrored = true;
}

/* The last receiver left: upstream-linger later, the mirror leaves. */
static void mirror_linger(writer *w)
{
    uint64_t ms = w->ctx->conf->upstream_linger_ms, now = fy_now_ns();

    if (!w->upstream || w->nfwd || w->shutting)
        return;
    if (!w->up_alone_since)
        w->up_alone_since = now;
    uint64_t el = (now - w->up_alone_since) / 1000000;
    if (el >= ms) {
        fy_actor_post(w->upstream, FY_RM_SHUTDOWN, 1, 0, 0, NULL, NULL);
    } else if (!w->up_linger_armed) {
        w->up_linger_armed = true;
        fy_timer_after(w->self, (uint32_t)(ms - el), FY__TM_UPLINGER);
    }
}

/* ---- subscribers and the sender slot ------------------------------------------- */

static void on_subscribe(writer *w, fy_actor *f)
{
    fy__sub_info *si = calloc(1, sizeof *si);

    if (w->nfwd == w->capfwd) {
        size_t cap = w->capfwd ? 2 * w->capfwd : 8;
        fy_actor **nf = realloc(w->fwd, cap * sizeof *nf);
        if (nf)
            w->fwd = nf, w->capfwd = cap;
    }
    if (!si || w->nfwd == w->capfwd) {
        /* Cannot track it: the forwarder will see the error and unsubscribe. */
        free(si);
        fy_klog(FY_LOG_ERROR, "malloc failed", "what=subscriber channel=%s", w->chan->name);
        fy_actor_post(f, FY_RM_SUBSCRIBED, 0, 0, 0, NULL, NULL);
        fy_actor_unref(f);
        return;
    }
    w->fwd[w->nfwd++] = f;
    si->err = w->shutting ? FY_ESHUTDOWN : 0;
    si->end = fy_log_end(w->log);
    si->next_seq = fy_log_next_seq(w->log);
    si->first_seq = fy_log_first_seq(w->log);
    si->fb_seq = w->fb_seq;
    si->fb_pos = w->fb_pos;
    if (fy_actor_post(f, FY_RM_SUBSCRIBED, 0, 0, 0, si, NULL) < 0)
        free(si);
    w->up_alone_since = 0;
    mirror_start(w);
}

static void maybe_done(writer *w)
{
    if (!w->shutting || w->nfwd || w->upstream)
        return;
    /* The indexer stops only after the last forwarder has gone: one that
     * subscribed just before the shutdown may still ask it for a look-up,
     * and an answer that never comes would leave it waiting. */
    if (!w->idx_shut) {
        w->idx_shut = true;
        fy_actor_post(w->indexer, FY_RM_SHUTDOWN, 0, 0, 0, NULL, NULL);
    }
    if (!w->idx_done || !w->log)
        return;
    int rc = fy_log_sync(w->log);
    fy_log_close(w->log);
    w->log = NULL;
    fy_klog(rc < 0 ? FY_LOG_ERROR : FY_LOG_INFO, "channel closed", "channel=%s reason=%s sync=%s",
            w->chan->name, w->idle_close ? "idle" : "shutdown", rc < 0 ? fy_errname(rc) : "ok");
    /* The last messages: the registry frees the channel record on
     * WRITER_DONE, so nothing here may touch w->chan after it. */
    fy_actor_post(w->ctx->registry, FY_RM_WRITER_TOTALS, 0, w->gone_out, w->gone_frames_out,
                  (void *)w->chan, NULL);
    fy_actor_post(w->ctx->registry, FY_RM_WRITER_DONE, 0, w->bytes, w->frames, (void *)w->chan,
                  NULL);
    fy_actor_stop(w->self);
}

static void on_unsubscribe(writer *w, fy_actor *f, const fy_msg *m)
{
    fy_actor *ref = NULL;

    w->gone_out += m->u64[0];
    w->gone_frames_out += m->u64[1];

    for (size_t i = 0; i < w->nfwd && !ref; i++)
        if (w->fwd[i] == f) {
            ref = f;
            w->fwd[i] = w->fwd[--w->nfwd];
        }
    /* The forwarder waits for this reply before it stops, so the pointer is
     * good even without a reference; it is the last message we send it. */
    fy_actor_post(f, FY_RM_UNSUBSCRIBED, 0, 0, 0, NULL, NULL);
    fy_actor_unref(ref);
    maybe_done(w);
    mirror_linger(w);
    idle_check(w);
}

/* The file in progress as a pool buffer for ATTACHED, or NULL (none, or
 * no buffer: then the sender starts the file over, which is always safe). */
static fy_buf *part_buf(writer *w)
{
    fy_buf *b;

    if (!w->part_seq || fy_buf_alloc(w->ctx->pool, sizeof(fy__part_info), &b) < 0)
        return NULL;
    fy__part_info *pi = (fy__part_info *)(void *)fy_buf_data(b);
    *pi = (fy__part_info){.seq = w->part_seq, .pos = w->fb_pos, .end = fy_log_end(w->log),
                          .size = w->fb_size, .got = w->fb_got};
    snprintf(pi->name, sizeof pi->name, "%s", w->fb_name);
    fy_buf_set_len(b, sizeof *pi);
    return b;
}

/* Answer a request for the slot: err, or the slot with the log's end and
 * the file in progress. */
static void answer_attach(writer *w, fy__attach_req *r, int err)
{
    fy_actor_post(r->session, FY_RM_ATTACHED, (uint32_t)err, fy_log_next_seq(w->log),
                  fy_log_first_seq(w->log), NULL, err ? NULL : part_buf(w));
    if (err) {
        fy_actor_unref(r->session);
    } else {
        w->sender = r->session;
        memcpy(w->sender_token, r->token, sizeof w->sender_token);
    }
    free(r);
}

static void on_attach(writer *w, fy__attach_req *r)
{
    if (w->mirrored && !w->shutting) { /* an edge's mirror: no local sender, ever */
        fy_actor_post(r->session, FY_RM_ATTACHED, FY_EBUSY, fy_log_next_seq(w->log), UINT64_MAX,
                      NULL, NULL);
        fy_actor_unref(r->session);
        free(r);
        return;
    }
    if (w->shutting || !w->sender) {
        answer_attach(w, r, w->shutting ? FY_ESHUTDOWN : 0);
        return;
    }
    /* Occupied: only the same sender (same token) may take over, one at a time. */
    if (w->taker || strcmp(r->token, w->sender_token) != 0) {
        answer_attach(w, r, FY_EBUSY);
        return;
    }
    w->taker = r;
    fy_actor_post(w->sender, FY_RM_TAKEOVER, 0, r->resume_from, 0, NULL, NULL);
}

/* The attached sender is active: the takeover candidate is refused. */
static void on_keep(writer *w, fy_actor *s)
{
    if (w->sender != s || !w->taker)
        return;
    answer_attach(w, w->taker, FY_EBUSY);
    w->taker = NULL;
}

static void on_detach(writer *w, fy_actor *s)
{
    if (w->taker && w->taker->session == s) { /* the candidate gave up waiting */
        fy_actor_unref(s);
        free(w->taker);
        w->taker = NULL;
        return;
    }
    if (w->sender != s)
        return;
    if (w->fb_seq) {
        fy_klog(FY_LOG_WARN, "sender left inside a file", "channel=%s name=%s file_begin_seq=%llu "
                "next_seq=%llu action=\"kept for a sender that continues it; receivers discard it "
                "if the next sender starts another file\"", w->chan->name,
                w->fb_name, (unsigned long long)w->fb_seq,
                (unsigned long long)fy_log_next_seq(w->log));
        w->fb_seq = 0;
    }
    fy_actor_unref(w->sender);
    w->sender = NULL;
    if (w->upstream == s) {
        /* A receiver that came while the mirror was leaving needs a new one
         * (not after a store error: the next subscription tries again). */
        w->upstream = NULL;
        if (!w->store_failed && w->nfwd)
            mirror_start(w);
        maybe_done(w);
    }
    /* its batches came before this: the next sender starts clean */
    w->store_failed = w->digest_failed = false;
    if (w->taker) { /* a takeover: the slot passes to the waiting connection */
        fy_klog(FY_LOG_INFO, "sender taken over", "channel=%s next_seq=%llu", w->chan->name,
                (unsigned long long)fy_log_next_seq(w->log));
        answer_attach(w, w->taker, w->shutting ? FY_ESHUTDOWN : 0);
        w->taker = NULL;
    }
    idle_check(w);
}

static void on_shutdown(writer *w)
{
    if (w->shutting)
        return;
    w->shutting = true;
    if (w->taker) {
        answer_attach(w, w->taker, FY_ESHUTDOWN);
        w->taker = NULL;
    }
    /* Everything received is on disk before anything else happens, so a
     * shutdown that has to be forced (a receiver that does not read) loses
     * nothing. */
    int rc = fy_log_sync(w->log);
    if (rc < 0)
        fy_klog(FY_LOG_ERROR, "fy_log_sync failed", "channel=%s err=%s", w->chan->name,
                fy_errname(rc));
    for (size_t i = 0; i < w->nfwd; i++)
        fy_actor_post(w->fwd[i], FY_RM_SHUTDOWN, 0, 0, 0, NULL, NULL);
    if (w->upstream) /* it detaches at once; maybe_done waits for that */
        fy_actor_post(w->upstream, FY_RM_SHUTDOWN, 0, 0, 0, NULL, NULL);
    maybe_done(w);
}

/* Stats: one record for the channel, and the request to every forwarder. */
static void on_stats(writer *w, const fy_msg *m)
{
    fy_stats_rec r = {.actor = fy_actor_id(w->self), .kind = FY_KIND_WRITER};

    for (size_t i = 0; i < w->nfwd; i++)
        r.fanout += (uint32_t)fy_stats_pass(m, w->fwd[i]);
    if (w->upstream)
        r.fanout += (uint32_t)fy_stats_pass(m, w->upstream);
    r.depth = fy_actor_depth(w->self);
    snprintf(r.channel, sizeof r.channel, "%.71s", w->chan->name);
    r.v[FY_ST_BYTES_IN] = w->bytes;
    r.v[FY_ST_FRAMES_IN] = w->frames;
    r.v[FY_ST_FILES] = w->files;
    r.v[FY_ST_DAMAGED] = w->damaged;
    r.v[FY_ST_RECEIVERS] = w->nfwd;
    r.v[FY_ST_NEXT_SEQ] = w->log ? fy_log_next_seq(w->log) : 0;
    /* Forwarders that have left (live ones answer for themselves). */
    r.v[FY_ST_BYTES_OUT] = w->gone_out;
    r.v[FY_ST_FRAMES_OUT] = w->gone_frames_out;
    r.v[FY_ST_BYTES_DISK] = w->gone_disk;
    r.v[FY_ST_CATCHUPS] = w->gone_catchups;
    fy_stats_answer(w->ctx->pool, w->ctx->metrics, m, &r);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    writer *w = state;

    (void)self;
    if (m->type == FY_STATS_REQ) {
        on_stats(w, m);
        return FY_MSG_DONE;
    }
    if (!w->log) {
        if (m->type == FY_RM_BATCH)
            fy__batch_unref(m->ptr);
        if (m->type == FY_RM_ATTACH) {
            fy__attach_req *r = m->ptr;
            fy_actor_unref(r->session);
            free(r);
        }
        if (m->type == FY_RM_LEASE)
            fy_actor_unref(m->ptr);
        return FY_MSG_DONE;
    }
    switch (m->type) {
    case FY_RM_BATCH:
        on_batch(w, m->ptr);
        break;
    case FY_RM_ATTACH:
        on_attach(w, m->ptr);
        break;
    case FY_RM_DETACH:
        on_detach(w, m->ptr);
        break;
    case FY_RM_KEEP:
        on_keep(w, m->ptr);
        break;
    case FY_RM_DIGEST_RESET: /* its batches before this were dropped */
        if (w->sender == m->ptr)
            w->digest_failed = false;
        break;
    case FY_RM_SUBSCRIBE:
        on_subscribe(w, m->ptr);
        break;
    case FY_RM_UNSUBSCRIBE:
        on_unsubscribe(w, m->ptr, m);
        break;
    case FY_RM_FWD_TOTALS:
        w->gone_catchups += m->u32;
        w->gone_disk += m->u64[0];
        break;
    case FY_RM_DRAIN_CUT:
        for (size_t i = 0; i < w->nfwd; i++)
            fy_actor_post(w->fwd[i], FY_RM_DRAIN_CUT, 0, 0, 0, NULL, NULL);
        break;
    case FY_RM_SHUTDOWN:
        on_shutdown(w);
        break;
    case FY_RM_DAMAGED:
        w->damaged += m->u64[0];
        break;
    case FY_RM_IDX_DONE:
        w->idx_done = true;
        maybe_done(w);
        break;
    case FY_RM_LEASE:
        on_lease(w, m->ptr);
        break;
    case FY_RM_CLOSE:
        on_close(w);
        break;
    case FY_MSG_TIMER:
        if (m->u64[0] == FY__TM_FSYNC) {
            w->fsync_armed = false;
            if (w->dirty) {
                int rc = fy_log_sync(w->log);
                if (rc < 0)
                    fy_klog(FY_LOG_ERROR, "fy_log_sync failed", "channel=%s err=%s "
                            "action=\"retry at next interval\"", w->chan->name, fy_errname(rc));
                w->dirty = rc < 0;
            }
        } else if (m->u64[0] == FY__TM_UPLINGER) {
            w->up_linger_armed = false;
            mirror_linger(w);
        } else if (m->u64[0] == FY__TM_IDLE) {
            w->idle_armed = false;
            idle_check(w);
        } else if (m->u64[0] == FY__TM_RETAIN) {
            retain(w);
            fy_timer_after(w->self, RETAIN_MS, FY__TM_RETAIN);
        }
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    writer *w = state;

    /* Only reached with the log still open on a forced shutdown. */
    if (w->log) {
        fy_log_sync(w->log);
        fy_log_close(w->log);
    }
    for (size_t i = 0; i < w->nfwd; i++)
        fy_actor_unref(w->fwd[i]);
    fy_actor_unref(w->sender);
    for (size_t i = 0; i < w->nlease; i++)
        fy_actor_unref(w->lease[i]);
    free(w->lease);
    if (w->taker) {
        fy_actor_unref(w->taker->session);
        free(w->taker);
    }
    free(w->fwd);
    fy_sha256_free(w->sha);
    free(w);
}

/* ---- the file in progress after a restart ------------------------------------- */

/* Walk the log back from its last frame, reading only frame headers (index
 * look-up + a 32-byte pread each), to the file-begin of a file whose
 * file-end is missing, and set part_seq, fb_pos, fb_size, fb_name and
 * fb_got from it.  Stops at the first file-end (the common case: one
 * step), at the oldest frame held, or after PART_WALK_MAX frames (a file
 * longer than that in frames is then sent over from its start).  Runs once
 * per channel open, on the registry's thread, before the indexer owns idx. */
#define PART_WALK_MAX ((uint64_t)1 << 22)

static void find_part(writer *w, fy_idx *idx)
{
    uint64_t next = fy_log_next_seq(w->log), first = fy_log_first_seq(w->log), got = 0;
    fy_logrd *rd;

    if (!first || next <= first || fy_logrd_open(w->chan->dir, &rd) < 0)
        return;
    for (uint64_t seq = next - 1, n = 0; seq >= first && n < PART_WALK_MAX; seq--, n++) {
        fy_idx_rec rec;
        fy_frame_hdr h;
        if (fy_idx_lookup(idx, seq, &rec) < 0 || fy_logrd_peek(rd, (fy_pos){rec.seg, rec.off},
                                                                &h) < 0 || h.seq != seq)
            break;
        if (h.type == FY_FT_FILE_END)
            break;
        if (h.type == FY_FT_DATA) {
            got += h.len;
            continue;
        }
        /* file-begin: its payload is small, read it whole */
        uint8_t buf[FY_FRAME_HDR_SIZE + FY_FRAME_HDR_SIZE + FY_NAME_MAX];
        size_t len;
        fy_file_begin fb;
        fy_pos at = {rec.seg, rec.off}, end = {rec.seg, rec.off + rec.len};
        if (fy_logrd_seek(rd, at) == 0 && fy_logrd_read(rd, end, buf, sizeof buf, &len) == 0 &&
            len == rec.len &&
            fy_file_begin_decode(buf + FY_FRAME_HDR_SIZE, h.len, &fb) == 0 && got <= fb.size) {
            w->part_seq = seq;
            w->fb_pos = at;
            w->fb_size = fb.size;
            w->fb_got = got;
            snprintf(w->fb_name, sizeof w->fb_name, "%s", fb.name);
            fy_klog(FY_LOG_INFO, "file in progress found", "channel=%s name=%s size=%llu "
                    "stored=%llu file_begin_seq=%llu frames_walked=%llu action=\"a sender may "
                    "continue it\"", w->chan->name, fb.name, (unsigned long long)fb.size,
                    (unsigned long long)got, (unsigned long long)seq, (unsigned long long)n + 1);
        }
        break;
    }
    fy_logrd_close(rd);
}

int fy__writer_new(const fy__ctx *ctx, const fy__chan *chan, fy_log *log, fy_idx *idx,
                   fy_actor **out, fy_actor **indexer)
{
    writer *w = calloc(1, sizeof *w);
    int rc;

    if (!w) {
        fy_log_close(log);
        fy_idx_close(idx);
        return -ENOMEM;
    }
    if ((rc = fy_sha256_new(&w->sha)) < 0) {
        fy_log_close(log);
        fy_idx_close(idx);
        free(w);
        return rc;
    }
    w->ctx = ctx;
    w->chan = chan;
    w->log = log;
    w->first_seq = fy_log_first_seq(log);
    find_part(w, idx);
    w->mirrored = ctx->conf->upstream[0] && fy__upstream_marked(chan->dir);
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = w, .kind = FY_KIND_WRITER,
                       .label = chan->name};
    if ((rc = fy_actor_new(ctx->sched, &o, &w->self)) < 0) {
        fy_log_close(log);
        fy_idx_close(idx);
        fy_sha256_free(w->sha);
        free(w);
        return rc;
    }
    if ((rc = fy__indexer_new(ctx, chan, idx, w->self, &w->indexer)) < 0) {
        fy_actor_stop(w->self); /* the dtor closes the log */
        fy_actor_unref(w->self);
        return rc;
    }
    if (ctx->conf->retain_bytes || ctx->conf->retain_age)
        fy_timer_after(w->self, RETAIN_MS, FY__TM_RETAIN);
    *out = w->self;
    *indexer = w->indexer;
    return 0;
}
