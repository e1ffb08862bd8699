/*
 * timer.h - the poller's timer queue (internal; timer.c).
 *
 * Any thread adds a timer through a lock-free stack; only the poller thread
 * moves them into an intrusive pairing heap (no allocation on the poller's
 * side, so adding cannot fail there) and fires them.
 */
#ifndef FY_RT_TIMER_H
#define FY_RT_TIMER_H

#include <stdint.h>

#include "ferry/actor.h"
#include "rt/mbox.h"

typedef struct fy__timer fy__timer;

typedef struct fy__timers {
    fy__lifo adds;    /* any thread pushes */
    fy__lifo cancels; /* dying actors push their tcancel link */
    fy__timer *heap; /* poller only */
    uint32_t n;      /* poller only: timers in the heap */
} fy__timers;

/* Any thread: queue a timer; returns 0, or -ENOMEM.  *wake is set when the
 * poller must be woken (the add queue was empty). */
int fy__timer_add(fy__timers *t, fy_actor *a, uint32_t ms, uint64_t tag, int *wake);
/* The thread running a's dtor (once): drop a's pending timers, and the
 * references they hold, soon (the poller does it and is woken). */
void fy__timer_cancel(fy_actor *a);
/* Poller: move added timers into the heap, drop cancelled actors' timers. */
void fy__timer_collect(fy__timers *t);
/* Poller: milliseconds until the next timer is due (rounded up), -1 if none. */
int fy__timer_timeout_ms(const fy__timers *t, uint64_t now_ns);
/* Poller: fire every timer due at now_ns. */
void fy__timer_fire(fy__timers *t, uint64_t now_ns);
/* Teardown, single-threaded: drop every timer unfired. */
void fy__timer_clear(fy__timers *t);

#endif
