/*
 * sched.h - the scheduler's records and hooks (internal; sched.c).
 *
 * One fy__thr per scheduler thread.  Its inbox is the only part other
 * threads write (a lock-free stack, so any thread can hand it an actor);
 * the park word is written by the thread and by wakers; the rest -- the
 * local run list, the stats, the trace ring -- belongs to the thread.
 */
#ifndef FY_RT_SCHED_H
#define FY_RT_SCHED_H

#include <pthread.h>
#include <stdint.h>

#include "ferry/sched.h"
#include "rt/actor.h"
#include "rt/mbox.h"
#include "rt/trace.h"

typedef struct fy__io fy__io;

typedef struct fy__thr {
    _Alignas(FY__CACHELINE) fy__lifo inbox; /* any thread pushes actors */
    _Alignas(FY__CACHELINE) int park;       /* futex word: FY__RUNNING or FY__PARKED */
    _Alignas(FY__CACHELINE) fy__link *lq_head, *lq_tail; /* owner-only run list */
    uint32_t lq_n;
    unsigned idx;
    fy_sched *s;
    pthread_t tid;
    uint64_t busy_ns, turns; /* owner writes with ck_pr_store; any reads */
    uint64_t clock_ns;       /* owner: the clock a send stamps (0 = read it, see actor.c) */
    fy__ring ring;
} fy__thr;

enum { FY__RUNNING = 0, FY__PARKED = 1 };

#define FY__TRACE_ACTORS 4096 /* actor-table entries kept for the trace */
#define FY__TRACE_CLUSTER 256 /* cluster events kept for the trace */

struct fy_sched {
    unsigned n;
    unsigned batch;
    fy__thr *thr;
    fy__io *io;
    int trace_on; /* atomic; read by every emit */

    _Alignas(FY__CACHELINE) fy_msg *msg_spare; /* message pool chunks (msg.c) */
    uint32_t msg_spare_n;                      /* atomic: chunks on msg_spare */

    _Alignas(FY__CACHELINE) uint32_t nparked; /* atomic: threads parked */
    uint32_t rr;                              /* atomic: round robin for outside sends */
    uint32_t next_id;                         /* atomic: actor ids */
    uint32_t quit;                            /* atomic: threads leave when idle */

    _Alignas(FY__CACHELINE) pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t cond;
    fy_actor *actors; /* every actor whose dtor has not run */
    uint32_t nactors;
    int started, exit_req, closing, joined;
    fy__trace_actor *tab; /* the last FY__TRACE_ACTORS actors created */
    uint64_t tab_n;
    fy__trace_cl *cl; /* the last FY__TRACE_CLUSTER cluster events */
    uint64_t cl_n;
};

/* The calling thread's scheduler record, NULL off the scheduler. */
extern _Thread_local fy__thr *fy__self;
/* The actor whose handler the calling thread is running, or NULL. */
extern _Thread_local fy_actor *fy__self_actor;

/* Any thread: queue a that the caller just found idle (it holds the
 * scheduled reference for it). */
void fy__sched_schedule(fy_sched *s, fy_actor *a);
/* Any thread: register a new actor (list + trace table). */
void fy__sched_actor_add(fy_sched *s, fy_actor *a);
/* Scheduler thread, after a's dtor ran: take it off the list. */
void fy__sched_actor_gone(fy_sched *s, fy_actor *a);

#endif
