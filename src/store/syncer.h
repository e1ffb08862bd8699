/*
 * syncer.h - how a log queues work on the sync worker (fy__syncer_*).
 * Internal to src/store; the worker itself is public (store.h, fy_syncer).
 */
#ifndef FERRY_STORE_SYNCER_H
#define FERRY_STORE_SYNCER_H

#include <stdatomic.h>
#include <stdint.h>

#include "ferry/store.h"

/* One job: make segment `seg` (open as fd) durable -- sealed when seal is
 * set -- then fsync dirfd when it is not -1, then report (seq, bytes) to
 * done(arg).  The job owns fd and dirfd (dup'd or handed over by the log,
 * so the log may close or roll meanwhile). */
typedef struct fy__sync_job {
    struct fy__sync_job *next;
    const void *owner; /* the log, for merging and fy__syncer_wait */
    int fd, dirfd;
    uint64_t seg;
    bool seal;
    uint64_t drop_to; /* after a good sync: drop the (clean) cached pages of [0, drop_to) */
    uint64_t seq, bytes;
    fy_log_synced_fn done;
    void *arg;
    atomic_int *err; /* the log's: a failure is stored here before done runs */
} fy__sync_job;

/* Queue j (malloc'd; the worker frees it and closes its fds).  A plain sync
 * whose owner's last queued, unstarted job is a plain sync of the same
 * segment is merged into it.  Any thread. */
void fy__syncer_push(fy_syncer *s, fy__sync_job *j);
/* Wait until no job of owner is queued or running (its reports made, its
 * failure stored in *err: the wait's lock orders that store before the
 * caller's load).
 * Blocks the caller: only for close and fy_log_sync. */
void fy__syncer_wait(fy_syncer *s, const void *owner);
/* The write-fault test hook (fy_syncer_write_fault): how many of the next
 * want bytes an append may write; fewer when the fault strikes, with *err
 * set to the error the append then returns.  Any thread. */
uint64_t fy__syncer_write_allow(fy_syncer *s, uint64_t want, int *err);

#endif
