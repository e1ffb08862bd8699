/*
 * hasher.h - the hash workers (fy_hasher): threads that run the SHA-256 of
 * the files a relay stores, beside the channel writers instead of on their
 * turn (docs/architecture.md, "Write-behind").
 *
 * A channel's writer opens one stream (fy_hasher_open) on its fy_sha256 and
 * pushes jobs to it: runs of payload bytes, zero runs (holes) and resets
 * (a file-begin).  A stream is served by one worker thread, so its jobs run
 * in the order they were pushed.  While a stream has jobs in flight the
 * fy_sha256 is the worker's; the writer touches it again only after
 * fy_hasher_idle() is true or fy_hasher_wait() returned.  Each job names a
 * reference to release once its bytes are hashed (the batch's refcounted
 * buffers) and a credit (bytes) that fy_hasher_take() hands back.
 */
#ifndef FERRY_RELAY_HASHER_H
#define FERRY_RELAY_HASHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/digest.h"

typedef struct fy_hasher fy_hasher;
typedef struct fy_hasher_stream fy_hasher_stream;

/* One step of a job. */
typedef enum fy_hash_op_kind {
    FY_HASH_DATA,  /* p[0..len) */
    FY_HASH_ZEROS, /* len zero bytes (a hole) */
    FY_HASH_RESET  /* start the next file */
} fy_hash_op_kind;

typedef struct fy_hash_op {
    const void *p;
    uint64_t len;
    fy_hash_op_kind kind;
} fy_hash_op;

/* Called on a worker thread when a job of the stream finished and no
 * earlier call is still unanswered by fy_hasher_take(): it may only post a
 * message (fy_actor_post is safe from any thread). */
typedef void fy_hasher_notify_fn(void *arg);

/* Start n worker threads (at least 1).  Main thread.  0 or -errno. */
int fy_hasher_start(unsigned n, fy_hasher **out);
/* Stop and join the workers (NULL is allowed).  Every stream must be
 * closed: call after the scheduler is joined (the writers' dtors close
 * theirs). */
void fy_hasher_stop(fy_hasher *h);

/* Test hook: every job waits ms milliseconds before it runs (0: none).
 * Main thread, before any stream is opened. */
void fy_hasher_delay(fy_hasher *h, unsigned ms);

/* A stream on sha (the caller's, which stays the caller's to free after
 * fy_hasher_close), served by one worker (round robin).  Any thread.
 * 0 or -ENOMEM. */
int fy_hasher_open(fy_hasher *h, fy_sha256 *sha, fy_hasher_notify_fn *fn, void *arg,
                   fy_hasher_stream **out);
/* Wait for the stream's jobs, then free it (NULL is allowed).  Owner only. */
void fy_hasher_close(fy_hasher_stream *s);

/* Queue ops[0..n) (copied), to run after the stream's earlier jobs; then
 * release(ref) on the worker and add credit to what fy_hasher_take()
 * returns.  Owner only.  0, or -ENOMEM with nothing queued (the caller
 * still holds ref). */
int fy_hasher_push(fy_hasher_stream *s, const fy_hash_op *ops, size_t n, uint64_t credit,
                   void (*release)(void *ref), void *ref);
/* True when every pushed job has run: the fy_sha256 is the owner's again
 * (an acquire: the worker's writes to it are visible).  Owner only. */
bool fy_hasher_idle(const fy_hasher_stream *s);
/* How many of the stream's jobs have run, in push order (an acquire, as
 * fy_hasher_idle).  Owner only. */
uint64_t fy_hasher_done(const fy_hasher_stream *s);
/* Block until fy_hasher_idle().  Owner only; the caller hands its
 * scheduler thread's queue to the others first if it runs on one. */
void fy_hasher_wait(fy_hasher_stream *s);
/* The credit of the jobs finished since the last take, and rearm the
 * notification.  *err: the first error of a reset since the last take
 * (0: none).  Owner only. */
uint64_t fy_hasher_take(fy_hasher_stream *s, int *err);
/* Jobs pushed and the nanoseconds the owner spent blocked in
 * fy_hasher_wait, for the log and tests.  Owner only. */
void fy_hasher_counts(const fy_hasher_stream *s, uint64_t *jobs, uint64_t *waits,
                      uint64_t *wait_ns);

#endif
