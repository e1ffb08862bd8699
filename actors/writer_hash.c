/*
 * writer_hash.c - a channel writer's SHA-256 beside the write: which
 * batches are hashed on a hash worker (src/relay/hasher.c) instead of on
 * the writer's turn, and the worker's reports.
 *
 * A batch that holds no file-end (the body of a file: in a bulk transfer
 * nearly every batch) is appended and published at once and its payload
 * queued to the channel's hash stream, which takes a reference to the
 * batch (its refcounted buffers) until the bytes are hashed.  The batch's
 * credit -- the buffer bytes that reopen the sender's budget -- goes to
 * the sender only when the worker is done with it (FY_RM_HASHED), so the
 * buffers the worker holds count against the channel's budget and a
 * sender faster than the hash is paced to it.  A batch that holds a
 * file-end (or continues a file the writer holds no hash for: rehash)
 * needs the verdict before it is stored: the writer waits for the stream
 * to finish what it was given (fy__writer_hash_own), then checks the batch
 * on its own turn exactly as before (writer_batch.c, verify), so a file
 * whose digest differs is still refused before its file-end is stored,
 * acknowledged or forwarded.
 */
#include <errno.h>
#include <stdlib.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sched.h"
#include "msg.h"
#include "writer_int.h"

/* Runs on a hash worker: only a message to the writer. */
static void notify(void *arg)
{
    fy__msg_hashed(arg);
}

static void release(void *ref)
{
    fy__batch_unref(ref);
}

int fy__writer_hash_open(fy__writer *w)
{
    if (!w->ctx->hasher)
        return 0; /* no workers (unit tests): every batch is checked in series */
    return fy_hasher_open(w->ctx->hasher, w->sha, notify, w->self, &w->hs);
}

void fy__writer_hash_close(fy__writer *w)
{
    if (!w->hs)
        return;
    uint64_t jobs, waits, wait_ns;
    fy_hasher_counts(w->hs, &jobs, &waits, &wait_ns);
    fy__writer_hash_own(w); /* the last credits, while the sender may still be here */
    fy_hasher_close(w->hs);
    w->hs = NULL;
    free(w->hheld);
    w->hheld = NULL;
    w->hheld_n = w->hheld_cap = 0;
    fy_klog(FY_LOG_INFO, "hash stream closed", "channel=%s batches_behind=%llu waits=%llu "
            "wait_ms=%.3f", w->chan->name, (unsigned long long)jobs,
            (unsigned long long)waits, (double)wait_ns / 1e6);
}

/* One credit to the sender: through the write-behind queue as any
 * credit, or at once when the log failed (nothing will be durable again,
 * and the sender waits for its budget to end cleanly). */
static void credit_one(fy__writer *w, uint64_t bytes)
{
    if (!w->sender)
        return;
    if (w->store_failed || !w->log || fy_log_failed(w->log))
        fy__msg_credit(w->sender, bytes);
    else
        fy__writer_answer(w, w->sender, bytes, NULL, 0);
}

/* The credits of the batches the worker finished, one per batch, in
 * order (an edge's mirror counts its batches by them). */
static void credit(fy__writer *w)
{
    int err = 0;

    (void)fy_hasher_take(w->hs, &err);
    if (err) {
        /* A worker could not start a file's hash: the writer hashes its
         * stored part back from the log before the file-end (rehash). */
        w->sha_ok = false;
        fy_klog(FY_LOG_WARN, "fy_sha256_reset failed", "channel=%s err=%s action=\"hash the "
                "file back from the log at its file-end\"", w->chan->name, fy_errname(err));
    }
    /* (hheld_n > 0 whenever a batch is unfinished: also what the analyzer sees) */
    for (uint64_t done = fy_hasher_done(w->hs); w->hheld_done < done && w->hheld_n;
         w->hheld_done++) {
        uint64_t bytes = w->hheld[w->hheld_head];
        w->hheld_head = (w->hheld_head + 1) % w->hheld_cap;
        w->hheld_n--;
        credit_one(w, bytes);
    }
}

/* Room for one more credit in the ring.  0 or -ENOMEM. */
static int held_room(fy__writer *w)
{
    if (w->hheld_n < w->hheld_cap)
        return 0;
    size_t cap = w->hheld_cap ? w->hheld_cap * 2 : 64;
    uint64_t *v = calloc(cap, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; w->hheld_cap && i < w->hheld_n; i++)
        v[i] = w->hheld[(w->hheld_head + i) % w->hheld_cap];
    free(w->hheld);
    w->hheld = v;
    w->hheld_head = 0;
    w->hheld_cap = cap;
    return 0;
}

void fy__writer_hashed(fy__writer *w)
{
    if (w->hs)
        credit(w);
}

void fy__writer_hash_own(fy__writer *w)
{
    if (!w->hs)
        return;
    if (!fy_hasher_idle(w->hs)) {
        /* At most the batches in flight (the channel's budget) at the
         * worker's pace: the actors queued here run on the others. */
        fy_sched_handoff();
        fy_hasher_wait(w->hs);
    }
    credit(w);
}

bool fy__writer_hash_behind(const fy__writer *w, const fy__batch *b)
{
    if (!w->hs)
        return false;
    for (uint32_t k = 0; k < b->nmarks; k++)
        if (b->marks[k].type == FY_FT_FILE_END)
            return false;
    if (w->sha_ok)
        return true;
    /* No hash of a file in progress: fine if this batch starts a file. */
    return b->nmarks && b->marks[0].frame == 0 && b->marks[0].type == FY_FT_FILE_BEGIN;
}

/* The batch's payload as the worker's ops (w->hops, grown as needed). */
static size_t build_ops(fy__writer *w, const fy__batch *b)
{
    uint32_t k = 0; /* the next mark */
    size_t n = 0;

    for (uint32_t i = 0; i < b->n; i++) {
        const fy__file_mark *mk = k < b->nmarks && b->marks[k].frame == i ? &b->marks[k++] : NULL;
        uint8_t t = mk ? mk->type : FY_FT_DATA;
        fy_hash_op *op = &w->hops[n++];
        if (t == FY_FT_FILE_BEGIN) {
            *op = (fy_hash_op){.kind = FY_HASH_RESET};
        } else if (t == FY_FT_HOLE) {
            *op = (fy_hash_op){.kind = FY_HASH_ZEROS, .len = mk->size};
        } else {
            *op = (fy_hash_op){.kind = FY_HASH_DATA,
                               .p = (const uint8_t *)b->fr[i].iov_base + FY_FRAME_HDR_SIZE,
                               .len = b->fr[i].iov_len - FY_FRAME_HDR_SIZE};
        }
    }
    return n;
}

/* No memory for the job: the writer hashes the batch itself, as before. */
static void hash_here(fy__writer *w, const fy__batch *b)
{
    uint32_t k = 0; /* the next mark */

    fy__writer_hash_own(w);
    for (uint32_t i = 0; i < b->n; i++) {
        const fy__file_mark *mk = k < b->nmarks && b->marks[k].frame == i ? &b->marks[k++] : NULL;
        uint8_t t = mk ? mk->type : FY_FT_DATA;
        if (t == FY_FT_FILE_BEGIN)
            w->sha_ok = fy_sha256_reset(w->sha) == 0;
        else if (t == FY_FT_HOLE)
            fy_sha256_zeros(w->sha, mk->size);
        else
            fy_sha256_update(w->sha, (const uint8_t *)b->fr[i].iov_base + FY_FRAME_HDR_SIZE,
                             b->fr[i].iov_len - FY_FRAME_HDR_SIZE);
    }
}

bool fy__writer_hash_push(fy__writer *w, fy__batch *b, uint64_t held)
{
    if (held_room(w) < 0) {
        fy_klog(FY_LOG_WARN, "malloc failed", "what=hash_credits channel=%s action=\"hash on "
                "the writer's thread\"", w->chan->name);
        hash_here(w, b);
        return false;
    }
    if (w->caphops < b->n) {
        fy_hash_op *v = realloc(w->hops, b->n * sizeof *v);
        if (!v) {
            fy_klog(FY_LOG_WARN, "malloc failed", "what=hash_ops channel=%s action=\"hash on "
                    "the writer's thread\"", w->chan->name);
            hash_here(w, b);
            return false;
        }
        w->hops = v;
        w->caphops = b->n;
    }
    size_t n = build_ops(w, b);
    bool ok = w->sha_ok;
    for (size_t i = 0; i < n; i++)
        if (w->hops[i].kind == FY_HASH_RESET)
            ok = true; /* unless the worker's reset fails: credit() */
    if (fy_hasher_push(w->hs, w->hops, n, 0, release, b) == 0) {
        w->sha_ok = ok;
        w->hheld[(w->hheld_head + w->hheld_n++) % w->hheld_cap] = held;
        return true;
    }
    fy_klog(FY_LOG_WARN, "malloc failed", "what=hash_job channel=%s action=\"hash on the "
            "writer's thread\"", w->chan->name);
    hash_here(w, b);
    return false;
}
