/*
 * actor.h - actors and their messages.
 *
 * An actor is a handler function plus private state plus a lock-free
 * multi-producer single-consumer mailbox.  Any thread may send to an actor
 * it holds a reference to; the runtime runs the handler on one scheduler
 * thread at a time, for at most a bounded batch of messages per turn.  State
 * is touched only by the handler, so it needs no lock.
 *
 * Messages are fixed-size records from a per-thread pool.  A message may
 * carry one fy_buf reference in m->buf: the runtime releases it after the
 * handler returns unless the handler took it (set m->buf = NULL), so no
 * buffer reference is ever lost, also when the actor is stopped while
 * messages are still arriving.
 *
 * Lifetime: fy_actor_new() returns one reference to the caller.  The actor's
 * memory lives until it is stopped AND every reference has been dropped, so a
 * send to a stopped actor is safe: it releases the message and returns
 * -FY_ECLOSED.
 */
#ifndef FERRY_ACTOR_H
#define FERRY_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry/buf.h"

typedef struct fy_actor fy_actor;
typedef struct fy_sched fy_sched;

/* Runtime message types; an actor's own types start at FY_MSG_USER. */
enum fy_msg_type {
    FY_MSG_IO = 1,    /* fd readiness: u32 = FY_IO_* bits, u64[0] = tag */
    FY_MSG_TIMER = 2, /* timer fired: u64[0] = tag */
    FY_MSG_USER = 256
};

typedef struct fy_msg {
    struct fy_msg *next; /* runtime only: mailbox link */
    uint64_t sent_ns;    /* runtime only: enqueue time, for the trace */
    uint32_t type;
    uint32_t u32;
    uint64_t u64[2];
    void *ptr;
    fy_buf *buf; /* one reference, released after the handler unless taken */
} fy_msg;

/* What a handler returns. */
enum fy_msg_disposition {
    FY_MSG_DONE = 0, /* runtime frees the message (and releases m->buf) */
    FY_MSG_KEPT = 1  /* handler kept the message; it must fy_msg_free() or send it on */
};

typedef int (*fy_actor_fn)(fy_actor *self, void *state, fy_msg *m);
/* Called once, on a scheduler thread, after the actor stopped and its
 * mailbox was drained; frees the state. */
typedef void (*fy_actor_dtor_fn)(void *state);

typedef struct fy_actor_opts {
    fy_actor_fn fn;
    fy_actor_dtor_fn dtor; /* may be NULL */
    void *state;
    uint16_t kind;     /* FY_KIND_* of the program; shown in the trace */
    const char *label; /* e.g. channel name or peer address; copied, may be NULL */
} fy_actor_opts;

/* Create an actor on scheduler s (any thread).  *out holds one reference. */
int fy_actor_new(fy_sched *s, const fy_actor_opts *o, fy_actor **out);

/* Take a message from this thread's pool: all fields zero but type. NULL on OOM. */
fy_msg *fy_msg_new(uint32_t type);
/* Release a message not sent (and its m->buf reference). NULL ignored. */
void fy_msg_free(fy_msg *m);

/* Enqueue m for a (any thread; never blocks).  Consumes m in every case:
 * returns 0, or -FY_ECLOSED after fy_actor_stop() (m was released). */
int fy_actor_send(fy_actor *a, fy_msg *m);

/* Shorthand: allocate, fill and send.  buf's reference is consumed too. */
int fy_actor_post(fy_actor *a, uint32_t type, uint32_t u32, uint64_t u0, uint64_t u1,
                  void *ptr, fy_buf *buf);

/* Stop a (any thread, idempotent): no further message is handled; queued
 * and later messages are released; then the dtor runs on a scheduler thread. */
void fy_actor_stop(fy_actor *a);

fy_actor *fy_actor_ref(fy_actor *a);   /* any thread holding a reference */
void fy_actor_unref(fy_actor *a);      /* any thread; NULL ignored */

uint32_t fy_actor_id(const fy_actor *a);
fy_sched *fy_actor_sched(const fy_actor *a);
/* True once fy_actor_stop(a) was called; then everything its caller did
 * before (e.g. its last sends) happened before this returned (acquire). */
bool fy_actor_stopped(const fy_actor *a);
/* True when the calling thread is running a's handler (for asserts). */
bool fy_actor_running_here(const fy_actor *a);
/* Messages queued and not yet handled (racy snapshot, for metrics). */
uint32_t fy_actor_depth(const fy_actor *a);

#endif
