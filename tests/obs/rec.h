/*
 * rec.h - a scripted run for the trace tests: a known number of messages
 * through two actors, so every figure the reader and the summary compute
 * has a value the test knows in advance.
 *
 *   main --N msgs--> P ("session", label "peer-1") --N sends--> S ("forwarder",
 *   label "chan-a 127.0.0.1:9")
 *
 * P records 100 bytes in per message; S records 100 bytes out and a lag of
 * (message number) packets and (message number * 100) bytes.
 */
#ifndef FY_TEST_OBS_REC_H
#define FY_TEST_OBS_REC_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "ferry/actor.h"
#include "ferry/sched.h"
#include "ferry/trace.h"

#define REC_KIND_P 2
#define REC_KIND_S 6

typedef struct rec_run {
    fy_sched *s;
    fy_actor *p, *q;
    _Atomic uint64_t handled;
} rec_run;

static int rec_s_fn(fy_actor *self, void *st, fy_msg *m)
{
    rec_run *r = st;
    fy_trace_emit(FY_TR_BYTES, fy_actor_id(self), 100, 1);
    fy_trace_emit(FY_TR_LAG, fy_actor_id(self), m->u64[0], m->u64[0] * 100);
    atomic_fetch_add(&r->handled, 1);
    return FY_MSG_DONE;
}

static int rec_p_fn(fy_actor *self, void *st, fy_msg *m)
{
    rec_run *r = st;
    fy_trace_emit(FY_TR_BYTES, fy_actor_id(self), 100, 0);
    (void)fy_actor_post(r->q, FY_MSG_USER, 0, m->u64[0], 0, NULL, NULL);
    return FY_MSG_DONE;
}

static inline void rec_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Create and start the scheduler and the two actors.  0 or a negative error. */
static inline int rec_start(rec_run *r, size_t ring)
{
    fy_sched_opts so = {.threads = 2, .trace_events = ring};
    int rc = fy_sched_new(&so, &r->s);
    if (rc < 0)
        return rc;
    if ((rc = fy_sched_start(r->s)) < 0)
        return rc;
    fy_actor_opts qo = {.fn = rec_s_fn, .state = r, .kind = REC_KIND_S, .label = "chan-a 127.0.0.1:9"};
    if ((rc = fy_actor_new(r->s, &qo, &r->q)) < 0)
        return rc;
    fy_actor_opts po = {.fn = rec_p_fn, .state = r, .kind = REC_KIND_P, .label = "peer-1"};
    return fy_actor_new(r->s, &po, &r->p);
}

/* Send n messages (numbered from first) and wait (bounded) until S had them. */
static inline int rec_send(rec_run *r, uint64_t first, uint64_t n)
{
    uint64_t want = atomic_load(&r->handled) + n;
    for (uint64_t i = 0; i < n; i++) {
        (void)fy_actor_post(r->p, FY_MSG_USER, 0, first + i, 0, NULL, NULL);
        if (i % 64 == 63)
            rec_sleep_ms(1); /* keep mailboxes shallow, like a paced sender */
    }
    uint64_t end = fy_now_ns() + 20000000000ull;
    while (atomic_load(&r->handled) < want) {
        if (fy_now_ns() > end)
            return -1;
        rec_sleep_ms(1);
    }
    return 0;
}

static inline void rec_stop(rec_run *r)
{
    fy_actor_stop(r->p);
    fy_actor_stop(r->q);
    fy_actor_unref(r->p);
    fy_actor_unref(r->q);
    fy_sched_exit(r->s);
    fy_sched_join(r->s);
    fy_sched_free(r->s);
}

#endif
