/*
 * trace.h - per-thread trace rings and the actor table (internal; trace.c).
 *
 * A ring is a power-of-two array of 32-byte events written only by its
 * thread.  Words are stored with ck_pr_store_64 and the head is published
 * after them, so fy_trace_dump() on another thread can copy the ring like a
 * seqlock: read head, copy, read head again, and drop the events that may
 * have been overwritten meanwhile.
 */
#ifndef FY_RT_TRACE_H
#define FY_RT_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/trace.h"

typedef struct fy__ring {
    uint64_t head;  /* events ever written; owner stores, dumper loads */
    uint64_t mask;  /* capacity - 1 */
    uint64_t *w;    /* 4 words per event */
} fy__ring;

typedef struct fy__trace_actor {
    uint64_t created_ns;
    uint32_t id;
    uint16_t kind;
    char label[64];
} fy__trace_actor;

typedef struct fy__trace_cl {
    uint64_t ts_ns, epoch;
    uint32_t serial;
    uint16_t ev;
    char text[FY_TRACE_CL_TEXT];
} fy__trace_cl;

struct fy__thr;

/* Scheduler thread t, tracing on: record an event stamped ts (a clock the
 * thread read, no older than its previous event's). */
void fy__trace_emit_ts(struct fy__thr *t, uint64_t ts, uint16_t type, uint32_t actor, uint64_t a,
                       uint64_t b);

/* Allocate a ring of at least events entries (rounded up to a power of 2).
 * events == 0 allocates nothing (compiled-out trace). Returns 0 or -ENOMEM. */
int fy__ring_init(fy__ring *r, size_t events);
void fy__ring_fini(fy__ring *r);

/* Copy up to cap of the ring's events, oldest first, into out; returns the
 * number copied and in *lost the number overwritten before they could be
 * copied (any thread). */
size_t fy__ring_snapshot(const fy__ring *r, fy_trace_rec *out, size_t cap, uint64_t *lost);

#endif
