/*
 * trsum.h - per-actor and per-kind figures from a trace (ferry-trace
 * summary): what each actor handled, how long its turns took, how long
 * messages waited in its mailbox, how deep the mailbox got, the bytes it
 * moved and, for forwarders, how far behind their receiver fell.
 *
 * The figures come from the events alone (trace.h): turn_end gives the
 * messages and the turn time, turn_begin the mailbox wait of the turn's
 * first message, send the receiver's depth, bytes and lag their own
 * figures.  A trace covers only what the rings still held, so every figure
 * is "within the trace's time span"; lost events are reported beside them.
 */
#ifndef FY_TRREAD_TRSUM_H
#define FY_TRREAD_TRSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trread/trfile.h"

/* A distribution of nanosecond samples. */
typedef struct fy_trsum_dist {
    uint64_t n, sum, p50, p99, max;
} fy_trsum_dist;

typedef struct fy_trsum_actor {
    uint32_t id;
    uint16_t kind;
    const char *label;   /* points into the fy_trfile; "" when unknown */
    uint64_t msgs;       /* messages handled (sum of turn_end counts) */
    uint64_t sends;      /* traced sends to this actor */
    uint64_t io;         /* readiness events */
    fy_trsum_dist turn;  /* turn durations */
    fy_trsum_dist wait;  /* mailbox wait of each turn's first message, for turns whose
                            first message was sent on the scheduler (others carry none) */
    uint64_t peak_depth; /* deepest mailbox seen by a sender */
    uint64_t bytes[3];   /* in, out, disk */
    bool has_lag;
    uint64_t lag_peak_pkts, lag_peak_bytes, lag_last_pkts, lag_last_bytes;
} fy_trsum_actor;

typedef struct fy_trsum_kind {
    uint16_t kind;
    unsigned actors;
    uint64_t msgs;
    fy_trsum_dist turn, wait;
    uint64_t peak_depth;
    uint64_t bytes[3];
} fy_trsum_kind;

typedef struct fy_trsum {
    fy_trsum_actor *act; /* by id */
    size_t nact;
    fy_trsum_kind *kind; /* by kind */
    size_t nkind;
    uint64_t t0, t1;     /* first and last event, monotonic ns */
    uint64_t events, lost;
} fy_trsum;

/* Compute the figures of f (which must outlive the result).  0 or -ENOMEM. */
int fy_trsum_compute(const fy_trfile *f, fy_trsum **out);
void fy_trsum_free(fy_trsum *s); /* NULL ignored */
/* The actor's figures, NULL when it has no events. */
const fy_trsum_actor *fy_trsum_actor_find(const fy_trsum *s, uint32_t id);

/* Print the summary: the cluster events (counted by kind, the newest top
 * listed), lagging forwarders, slowest actors, per kind, per actor (at
 * most top actors; 0 = all).  name labels the file.  Returns 0 or
 * -EIO when the stream failed. */
int fy_trsum_print(FILE *o, const char *name, const fy_trfile *f, const fy_trsum *s,
                   unsigned top);

/* "850ns", "12.3us", "4.56ms", "1.23s" / "512B", "1.5KiB", ... (buf cap >= 16). */
const char *fy_trsum_fmt_ns(uint64_t ns, char *buf, size_t cap);
const char *fy_trsum_fmt_bytes(uint64_t b, char *buf, size_t cap);

#endif
