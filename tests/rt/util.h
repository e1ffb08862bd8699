/*
 * rt_util.h - small helpers shared by the runtime tests: bounded waiting,
 * and bringing a scheduler up and down (asserted).
 *
 * Every wait in these tests is bounded in time, so a broken runtime fails
 * a test instead of hanging it.
 */
#ifndef FY_TEST_RT_UTIL_H
#define FY_TEST_RT_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "ferry/sched.h"

#define WAIT_LIMIT_NS (20ull * 1000000000ull)

/* Wait until *v >= want or the limit passes; true if reached. */
static inline bool wait_u64(_Atomic uint64_t *v, uint64_t want)
{
    uint64_t end = fy_now_ns() + WAIT_LIMIT_NS;
    while (atomic_load(v) < want) {
        if (fy_now_ns() > end)
            return false;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return true;
}

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A new scheduler with options o, started; asserts both steps. */
static inline fy_sched *rt_sched_up(const fy_sched_opts *o)
{
    fy_sched *s = NULL;
    assert_int_equal(fy_sched_new(o, &s), 0);
    assert_int_equal(fy_sched_start(s), 0);
    return s;
}

/* Exit, join (stops every remaining actor) and free. */
static inline void rt_sched_down(fy_sched *s)
{
    fy_sched_exit(s);
    fy_sched_join(s);
    fy_sched_free(s);
}

#endif
