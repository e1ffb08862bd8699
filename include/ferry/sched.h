/*
 * sched.h - the scheduler: a fixed pool of threads that run actors.
 *
 * An actor becomes runnable when a sender finds it idle and flips its
 * "scheduled" flag; exactly that sender queues it, so an actor is on at most
 * one thread at a time.  A thread runs a bounded batch of one actor's
 * messages, then requeues the actor if its mailbox is not empty, so one
 * flooded actor cannot starve the others.  Idle threads park; an idle
 * runtime uses no CPU.  The scheduler also owns the epoll poller and the
 * timers (io.h) and the per-thread trace rings (trace.h).
 */
#ifndef FERRY_SCHED_H
#define FERRY_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fy_sched fy_sched;

typedef struct fy_sched_opts {
    unsigned threads;      /* scheduler threads; 0 = number of online cores */
    unsigned batch;        /* messages per actor turn; 0 = default (64) */
    size_t trace_events;   /* events per thread ring; 0 = default (65536) */
    bool trace_off;        /* start with tracing switched off */
} fy_sched_opts;

/* Create a scheduler (threads not started).  o may be NULL for defaults. */
int fy_sched_new(const fy_sched_opts *o, fy_sched **out);

/* Start the threads (and the poller).  Call once. */
int fy_sched_start(fy_sched *s);

/* Ask the scheduler to finish (any thread, also from a handler). */
void fy_sched_exit(fy_sched *s);

/* Block until fy_sched_exit(), then stop every remaining actor, release every
 * queued message, run dtors, and join the threads.  Call from the thread that
 * started it. */
void fy_sched_join(fy_sched *s);

/* Free a joined (or never started) scheduler. */
void fy_sched_free(fy_sched *s);

unsigned fy_sched_threads(const fy_sched *s);

/* A handler about to make a call that may block for long (fdatasync): hand
 * the actors waiting in this thread's own run queue to the other threads,
 * so they run while this one waits.  Without it, actors this turn made
 * runnable (the forwarders of a batch just written) would wait for the
 * blocking call too.  No-op off a scheduler thread or with one thread. */
void fy_sched_handoff(void);

/* Index of the calling scheduler thread, or -1 off the scheduler. */
int fy_sched_thread_index(void);

/* Per-thread figures for metrics (racy snapshot): nanoseconds spent running
 * handlers, and turns run.  Returns -EINVAL for a bad index. */
int fy_sched_thread_stats(const fy_sched *s, unsigned idx, uint64_t *busy_ns, uint64_t *turns);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC), the trace's clock. */
uint64_t fy_now_ns(void);

#endif
