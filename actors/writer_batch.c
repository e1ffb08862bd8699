/*
 * writer_batch.c - a channel writer's batch path: what happens to each
 * batch a sender (a local session or an edge's upstream) hands the writer,
 * in four stages, each its own function and always in this order:
 *
 *   verify       a batch that holds a file-end is checked here before
 *                anything of it is stored: the writer waits for the hash
 *                worker to finish the file's earlier batches, hashes the
 *                rest and compares at each file-end; a refused frame and
 *                everything after it are cut off, the sender hears
 *                FY_RM_DIGEST_ERR and its later batches are dropped.  A
 *                batch without one is not hashed here (writer_hash.c)
 *   append       one fy_log_append (one pwritev in the common case); a
 *                failure part way keeps what was stored
 *   publish      the index records go to the indexer, the file in progress
 *                is noted, a batch not verified here goes to the hash
 *                worker, and every subscribed forwarder gets the batch
 *                (one shared reference count: the same bytes, no copy)
 *                together with the new end position
 *   acknowledge  the sender gets a credit for the buffer bytes, which
 *                reopens the channel's in-flight budget, and an ack for
 *                each file-end, each once the log is durable enough
 *                (writer_durable.c: write-behind), then a store or digest
 *                error if there was one
 *
 * The hash runs beside the writer rather than on the sender's session, whose
 * thread also reads and CRC-checks and was the pipeline's slowest stage
 * with it, and the body of a file beside the append rather than before it
 * (at 1 -> 1 it was 38 % of the relay's CPU, all on the writer's turn).
 * The writer keeps the hash state of the file in progress across senders
 * and hashes the stored part back from the log only when it has none (a
 * restart inside the file).  The ingest decoded every file-begin and file-end
 * (fy__batch's marks): nothing here decodes a frame.  Before a blocking
 * write or sync the writer hands the actors waiting on its thread to the
 * others (fy_sched_handoff).  The writer never waits for a forwarder: one
 * that cannot keep up drops live batches itself and catches up from the
 * file.  The lifecycle (slot, subscribers, idle, shutdown, mirror) is
 * writer.c's.  The stages are separate functions with one entry,
 * fy__writer_batch, so their order can change (live delivery that does not
 * wait for the append) without touching the rest of the writer.
 */
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
#include "msg.h"
#include "writer_int.h"

/* ---- verify ---------------------------------------------------------------- */

/* The writer checks every file's SHA-256, not the sender's session: the
 * session reads, CRC-checks and packs on its own thread, and with the hash
 * there as well it was the pipeline's slowest stage (docs/reliability.md,
 * "What is guaranteed").  The writer sees every batch in order, and every
 * batch that holds a file-end before it is stored, with the hash of all of
 * the file before it (fy__writer_hash_own), so the guarantee is the same: a
 * file-end whose file does not hash to its digest is never stored,
 * acknowledged or forwarded. */

/* Hash the stored part of the file in progress (part_seq) back from the
 * log: the writer has no state for it (the relay restarted inside the
 * file, or the last batch was cut short).  0 or a negative error. */
static int rehash(fy__writer *w)
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
static uint32_t verify(fy__writer *w, const fy__batch *b, int *cause, uint64_t *seq,
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
        } else if (t == FY_FT_HOLE) {
            fy_sha256_zeros(w->sha, mk->size);
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
static void digest_failed(fy__writer *w, int cause, uint64_t seq, const fy__digest_err *d)
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
    fy__msg_digest_err(w->sender, (uint32_t)-cause, seq, buf);
}

/* Why the batch was cut short, for the sender after its acks. */
typedef struct refusal {
    bool refused;   /* a frame was refused: the batch ends before it */
    int cause;      /* 0: a wrong digest, else why the file was not hashed */
    uint64_t seq;   /* the refused frame's seq */
    fy__digest_err d;
} refusal;

/* The batch's buffers go back to the sender unused. */
static void give_back(fy__writer *w, fy__batch *b)
{
    fy__writer_hash_own(w); /* the credits of earlier batches first, in order */
    if (w->sender)
        fy__msg_credit(w->sender, b->held);
    fy__batch_unref(b);
}

/* Stage 1.  Cut the batch before a refused frame.  Returns false when
 * nothing is left to store (the batch is gone and the sender told). */
static bool verify_stage(fy__writer *w, fy__batch *b, refusal *r)
{
    fy__writer_hash_own(w); /* the file's earlier batches are hashed */
    uint32_t ok = verify(w, b, &r->cause, &r->seq, &r->d);

    r->refused = ok < b->n;
    if (!r->refused)
        return true;
    fy__batch_cut(b, ok);
    if (ok)
        return true;
    give_back(w, b);
    if (fy__writer_settle(w)) /* the acks of earlier batches first */
        digest_failed(w, r->cause, r->seq, &r->d);
    return false;
}

/* ---- append ---------------------------------------------------------------- */

void fy__writer_retain(fy__writer *w)
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
        fy__msg_trim(w->indexer, first);
    }
}

/* The sender's stream cannot go on: it hears why once, and the batches it
 * sent meanwhile (they no longer follow the log's end) are dropped without
 * a word until it detaches. */
static void store_failed(fy__writer *w, int rc)
{
    fy__writer_hash_own(w); /* its credits before the error */
    w->store_failed = true;
    if (w->sender)
        fy__msg_store_err(w->sender, (uint32_t)-rc, fy_log_next_seq(w->log));
}

/* fy_log_append failed part way (a full disk, an I/O error): the log kept
 * the frames before the failure and cut the rest.  Those frames are the
 * batch from here on -- indexed, sent live and acknowledged like any --
 * so log, index and receivers stay at the same frame and the channel
 * goes on once space returns.  The sender hears of it after its acks.
 * Returns false when nothing was stored (the batch is gone then). */
static bool keep_stored(fy__writer *w, fy__batch *b, uint64_t seq0, int rc)
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
    give_back(w, b);
    if (fy__writer_settle(w)) /* the acks of earlier batches first */
        store_failed(w, rc);
    return false;
}

/* Stage 2.  Append the batch to the log.  Returns false when nothing was
 * stored (the batch is gone, the sender told); else *rc is 0, or the error
 * that cut the batch short (keep_stored). */
static bool append_stage(fy__writer *w, fy__batch *b, bool behind, int *rc)
{
    uint64_t seq0 = fy_log_next_seq(w->log);

    /* A direct append waits for the disk: let the actors queued here run
     * on the other threads meanwhile. */
    if (fy_log_direct(w->log, b->bytes))
        fy_sched_handoff();
    *rc = fy_log_append(w->log, b->fr, b->n, b->recs);
    if (*rc < 0 && !behind)
        w->sha_ok = false; /* hashed past what was stored: hash the file back if it goes on */
    if (*rc < 0 && !keep_stored(w, b, seq0, *rc))
        return false;
    b->end = fy_log_end(w->log);
    b->next_seq = fy_log_next_seq(w->log);
    w->bytes += b->bytes;
    w->frames += b->n;
    fy_trace_emit(FY_TR_BYTES, fy_actor_id(w->self), b->bytes, 2);
    return true;
}

/* ---- publish --------------------------------------------------------------- */

static void note_frames(fy__writer *w, fy__batch *b, uint64_t *acks, size_t *nacks)
{
    uint32_t k = 0; /* the next mark */

    for (uint32_t i = 0; i < b->n; i++) {
        const fy__file_mark *mk = k < b->nmarks && b->marks[k].frame == i ? &b->marks[k++] : NULL;
        uint8_t t = mk ? mk->type : FY_FT_DATA;
        size_t len = b->fr[i].iov_len - FY_FRAME_HDR_SIZE;
        if (t == FY_FT_FILE_BEGIN) {
            snprintf(w->fb_name, sizeof w->fb_name, "%s", fy__batch_name(b, mk));
            w->fb_size = mk->size;
            w->fb_source = mk->source;
            w->fb_seq = w->part_seq = b->recs[i].seq;
            w->fb_pos = (fy_pos){b->recs[i].seg, b->recs[i].off};
            w->fb_got = 0;
        } else if (t == FY_FT_DATA || t == FY_FT_HOLE) {
            w->fb_got += t == FY_FT_HOLE ? mk->size : len;
            if (!w->fb_seq && w->part_seq)
                w->fb_seq = w->part_seq; /* a sender continues the file: LIVE joiners want it */
        } else if (t == FY_FT_FILE_END) {
            fy_klog(FY_LOG_INFO, "file stored", "channel=%s name=%s size=%llu seq_first=%llu "
                    "seq_last=%llu", w->chan->name, w->fb_name, (unsigned long long)w->fb_size,
                    (unsigned long long)w->fb_seq, (unsigned long long)b->recs[i].seq);
            fy__writer_names_note(w, w->fb_name, w->fb_size, w->part_seq ? w->part_seq : w->fb_seq,
                                  mk->sha256);
            w->fb_seq = w->part_seq = 0;
            w->files++;
            acks[(*nacks)++] = b->recs[i].seq;
        }
    }
}

/* Stage 3.  The index records to the indexer, the file in progress noted
 * (acks: the stored file-ends' seqs), the payload to the hash worker when
 * *behind (false afterwards if it was hashed here instead: then the
 * caller credits held), then the batch to every forwarder: the writer's
 * reference becomes theirs and the worker's. */
static void publish_stage(fy__writer *w, fy__batch *b, bool *behind, uint64_t held,
                          uint64_t *acks, size_t *nacks)
{
    fy_idx_rec *recs = malloc(b->n * sizeof *recs);

    if (recs) {
        memcpy(recs, b->recs, b->n * sizeof *recs);
        fy__msg_recs(w->indexer, b->n, recs);
    } else {
        /* The index lags; recovery rebuilds it from the data on next open. */
        fy_klog(FY_LOG_ERROR, "malloc failed", "what=index_records n=%u action=\"skip\"", b->n);
    }
    note_frames(w, b, acks, nacks);
    w->dirty = true;
    /* relaxed: the job's queue lock and the LIVE messages carry the count */
    if (*behind) {
        atomic_store_explicit(&b->refs, (unsigned)w->nfwd + 1, memory_order_relaxed);
        if (!(*behind = fy__writer_hash_push(w, b, held))) /* nobody else holds b yet */
            atomic_store_explicit(&b->refs, w->nfwd ? (unsigned)w->nfwd : 1u,
                                  memory_order_relaxed);
    } else if (w->nfwd) {
        atomic_store_explicit(&b->refs, (unsigned)w->nfwd, memory_order_relaxed);
    }
    if (!w->nfwd) {
        if (!*behind) /* else b may be gone already: the worker's was the last reference */
            fy__batch_unref(b);
        return;
    }
    for (size_t i = 0; i < w->nfwd; i++)
        if (fy__msg_live(w->fwd[i], b) < 0)
            fy__batch_unref(b);
}

/* ---- acknowledge ----------------------------------------------------------- */

/* Stage 4.  To the sender (to, if any): the credit for the buffers (held
 * bytes) and an ack per stored file-end, each as soon as the log's durable
 * position allows (writer_durable.c: a credit at once while the log trails
 * by less than the write-behind budget, an ack at once unless the policy is
 * file-end, else when the sync worker reports), and last why its stream
 * broke, if it did (rc: the append's error; r: a refused frame). */
static void acknowledge_stage(fy__writer *w, fy_actor *to, uint64_t held, const uint64_t *acks,
                              size_t nacks, int rc, const refusal *r)
{
    if (held || nacks) /* else hashed behind: the worker's report credits it */
        fy__writer_answer(w, to, held, acks, nacks);
    if (w->ctx->conf->fsync_mode == FY_FSYNC_INTERVAL && w->dirty && !w->fsync_armed) {
        w->fsync_armed = true;
        fy_timer_after(w->self, w->ctx->conf->fsync_ms, FY__TM_FSYNC);
    }
    if (rc == 0 && !r->refused)
        return;
    if (!fy__writer_settle(w)) /* the sender hears why after the acks of what was stored */
        return;
    if (rc < 0)
        store_failed(w, rc);
    else
        digest_failed(w, r->cause, r->seq, &r->d);
}

/* The fsync-interval timer: a sync of what was appended goes to the sync
 * worker (its report releases nothing under this policy but the credits
 * the write-behind budget holds). */
void fy__writer_sync_due(fy__writer *w)
{
    w->fsync_armed = false;
    if (!w->dirty || !w->log)
        return;
    int rc = fy_log_sync_start(w->log);
    if (rc < 0 && !fy_log_failed(w->log))
        fy_klog(FY_LOG_ERROR, "fy_log_sync_start failed", "channel=%s err=%s "
                "action=\"queue it at the next interval (nothing was synced)\"", w->chan->name,
                fy_errname(rc));
    w->dirty = rc < 0 && !fy_log_failed(w->log);
}

/* ---- the batch path -------------------------------------------------------- */

void fy__writer_batch(fy__writer *w, fy__batch *b)
{
    FY__OWNER(w->self);
    uint64_t acks[b->n ? b->n : 1];
    size_t nacks = 0;
    fy_actor *to = w->sender;
    refusal r = {0};
    int rc;

    if (w->store_failed || w->digest_failed || w->rewind) {
        give_back(w, b);
        return;
    }
    /* The body of a file is hashed behind the append, on a hash worker;
     * a batch that ends a file is checked here first (writer_hash.c). */
    bool behind = fy__writer_hash_behind(w, b);
    if (!behind && !verify_stage(w, b, &r))
        return;
    uint64_t seg0 = fy_log_end(w->log).seg;
    if (!append_stage(w, b, behind, &rc))
        return;
    uint64_t held = b->held; /* b belongs to the forwarders after publish */
    publish_stage(w, b, &behind, held, acks, &nacks);
    /* behind: the worker's report credits the buffers once hashed */
    acknowledge_stage(w, to, behind ? 0 : held, acks, nacks, rc, &r);
    if (fy_log_end(w->log).seg != seg0)
        fy__writer_retain(w);
}

/* ---- the file in progress -------------------------------------------------- */

/* Walk the log back from its last frame, reading only frame headers (index
 * look-up + a 32-byte pread each), to the file-begin of a file whose
 * file-end is missing, and set part_seq, fb_pos, fb_size, fb_name and
 * fb_got from it.  Stops at the first file-end (the common case: one
 * step), at the oldest frame held, or after PART_WALK_MAX frames (a file
 * longer than that in frames is then sent over from its start).  Runs once
 * per channel open, on the registry's thread, before the indexer owns idx. */
#define PART_WALK_MAX ((uint64_t)1 << 22)

void fy__writer_find_part(fy__writer *w, fy_idx *idx)
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
        /* file-begin or hole: its payload is small, read it whole */
        uint8_t buf[FY_FRAME_HDR_SIZE + FY_FILE_BEGIN_MAX];
        size_t len;
        fy_file_begin fb;
        fy_hole ho;
        fy_pos at = {rec.seg, rec.off}, end = {rec.seg, rec.off + rec.len};
        if (h.type == FY_FT_HOLE) {
            if (rec.len > sizeof buf || fy_logrd_seek(rd, at) < 0 ||
                fy_logrd_read(rd, end, buf, sizeof buf, &len) < 0 || len != rec.len ||
                fy_hole_decode(buf + FY_FRAME_HDR_SIZE, h.len, &ho) < 0)
                break;
            got += ho.len;
            continue;
        }
        if (fy_logrd_seek(rd, at) == 0 && fy_logrd_read(rd, end, buf, sizeof buf, &len) == 0 &&
            len == rec.len &&
            fy_file_begin_decode(buf + FY_FRAME_HDR_SIZE, h.len, &fb) == 0 && got <= fb.size) {
            w->part_seq = seq;
            w->fb_pos = at;
            w->fb_size = fb.size;
            w->fb_got = got;
            w->fb_source = fb.ext && (fb.fflags & FY_FB_F_SOURCE) ? fb.source : 0;
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

fy_buf *fy__writer_part_buf(fy__writer *w)
{
    fy_buf *b;

    fy__writer_hash_own(w); /* sha is peeked below */
    if (!w->part_seq || fy_buf_alloc(w->ctx->pool, sizeof(fy__part_info), &b) < 0)
        return NULL;
    fy__part_info *pi = (fy__part_info *)(void *)fy_buf_data(b);
    *pi = (fy__part_info){.seq = w->part_seq, .pos = w->fb_pos, .end = fy_log_end(w->log),
                          .size = w->fb_size, .got = w->fb_got, .source = w->fb_source};
    snprintf(pi->name, sizeof pi->name, "%s", w->fb_name);
    /* sha covers exactly the stored part when sha_ok (hashed past it: not ok) */
    pi->prefix_ok = w->sha_ok && fy_sha256_peek(w->sha, pi->prefix_sha) == 0;
    fy_buf_set_len(b, sizeof *pi);
    return b;
}
