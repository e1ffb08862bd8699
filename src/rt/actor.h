/*
 * actor.h - the actor record and the turn loop (internal; actor.c).
 *
 * Fields are grouped by who writes them so that senders and the running
 * thread do not share a cache line: set-once fields first, then the
 * mailbox line every sender writes, then the owner-only line.
 */
#ifndef FY_RT_ACTOR_H
#define FY_RT_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry/actor.h"
#include "rt/mbox.h"

#define FY__LABEL_MAX 64 /* including the NUL */

/* Internal message types, below FY_MSG_USER and apart from the public ones. */
enum {
    FY__MSG_STOP = 200,  /* preallocated: makes a stopped actor run its dtor */
    FY__MSG_IOREG = 201, /* readiness from the poller; ptr = the registration */
};

struct fy_actor {
    /* set at creation, read by all */
    fy__link rq; /* run-queue link, used by whoever holds it scheduled */
    fy_sched *s;
    fy_actor_fn fn;
    fy_actor_dtor_fn dtor;
    void *state;
    fy_msg *stop_msg; /* taken by fy_actor_stop(), so stop never fails */
    struct fy_actor *all_prev, *all_next; /* s->actors list, under s->lock */
    uint32_t id;
    uint16_t kind;
    uint32_t stopped; /* atomic flag, set once by fy_actor_stop() */
    char label[FY__LABEL_MAX];

    /* written by every sender */
    _Alignas(FY__CACHELINE) fy__mbox mb;
    uint32_t refs;  /* atomic */
    uint32_t timed; /* atomic flag: a timer was ever added (timer.c) */
    struct fy__timer *timers; /* the poller's: pending timers (timer.c) */
    bool timers_gone;         /* the poller's: cancelled; later adds are dropped */
    fy__link tcancel;         /* pushed once, by die(), to cancel them */
    uint32_t taken; /* owner stores at each take and turn end: taken, not yet
                       handled; senders read it for the depth, on the line
                       their push already holds */

    /* written only by the thread running the actor */
    _Alignas(FY__CACHELINE) fy_msg *q_head;
    fy_msg *q_tail;
    uint32_t q_n;
    bool dead; /* dtor ran */
};

/* Scheduler thread holding a scheduled: run one turn of at most batch
 * messages.  Returns true if the actor is still scheduled (requeue it);
 * false if it was given up (and may already be freed). */
bool fy__actor_turn(fy_actor *a, unsigned batch);

/* Scheduler teardown, single-threaded: release every queued message of a
 * scheduled actor, run its dtor if it is stopped, drop the scheduled
 * reference. */
void fy__actor_abandon(fy_actor *a);

/* Drop a reference that cannot be the last: the caller holds another. */
void fy__actor_unref_not_last(fy_actor *a);

/* Send an internal message (skips the stopped check). */
void fy__actor_push(fy_actor *a, fy_msg *m);

#endif
