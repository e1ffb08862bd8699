/*
 * trace.h - the actor trace: fixed-size events in per-thread rings.
 *
 * Each scheduler thread records into its own ring without locks or shared
 * cache lines; old events are overwritten (a flight recorder).  The rings can
 * be written to a file whose format is in docs/trace-format.md; ferry-trace
 * reads it.  Recording can be switched off at run time, and compiled out
 * with -DFERRY_TRACE=OFF (then fy_trace_emit is an empty inline).
 */
#ifndef FERRY_TRACE_H
#define FERRY_TRACE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fy_sched fy_sched;

enum fy_trace_ev {
    FY_TR_SEND = 1,       /* actor = receiver, a = sender id (0 = off-actor), b = mailbox depth */
    FY_TR_TURN_BEGIN = 2, /* actor, a = mailbox wait ns of first message */
    FY_TR_TURN_END = 3,   /* actor, a = messages handled, b = turn ns */
    FY_TR_SCHED = 4,      /* actor became runnable */
    FY_TR_IDLE = 5,       /* actor went idle (mailbox empty) */
    FY_TR_IO = 6,         /* actor, a = fd, b = FY_IO_* bits */
    FY_TR_BYTES = 7,      /* actor, a = bytes, b = direction (0 in, 1 out, 2 disk) */
    FY_TR_ACTOR_NEW = 8,  /* actor, a = kind */
    FY_TR_ACTOR_STOP = 9, /* actor */
    FY_TR_PARK = 10,      /* scheduler thread parked */
    FY_TR_UNPARK = 11,    /* scheduler thread woke */
    FY_TR_LAG = 12,       /* actor (forwarder), a = packets behind, b = bytes behind */
    FY_TR_USER = 64
};

/* One event: 32 bytes, the record of the trace file. */
typedef struct fy_trace_rec {
    uint64_t ts_ns;  /* fy_now_ns() */
    uint32_t actor;  /* actor id, 0 = none */
    uint16_t type;   /* enum fy_trace_ev */
    uint16_t thread; /* scheduler thread index */
    uint64_t a, b;
} fy_trace_rec;
_Static_assert(sizeof(fy_trace_rec) == 32, "trace record is 32 bytes on disk");

/* ---- the trace file (docs/trace-format.md) --------------------------------
 * A 64-byte header, then 32-byte records.  Records with a type at or above
 * FY_TR_META describe the file rather than an event; a streamed file can
 * repeat them at any point. */
#define FY_TRACE_MAGIC "FERRYTRC"
#define FY_TRACE_VERSION 1u

typedef struct fy_trace_file_hdr {
    char magic[8];        /* FY_TRACE_MAGIC, no NUL */
    uint32_t version;     /* FY_TRACE_VERSION */
    uint32_t hdr_size;    /* 64: records start here */
    uint32_t rec_size;    /* 32 */
    uint32_t threads;     /* scheduler threads (rings) */
    uint32_t ring_events; /* capacity of each ring */
    uint32_t flags;       /* 0 for a dump */
    uint64_t mono_ns;     /* CLOCK_MONOTONIC when the file was written */
    uint64_t real_ns;     /* CLOCK_REALTIME at the same moment */
    uint32_t pid;
    uint32_t reserved[3];
} fy_trace_file_hdr;
_Static_assert(sizeof(fy_trace_file_hdr) == 64, "trace file header is 64 bytes");

enum fy_trace_meta {
    FY_TR_META = 0xFF00,
    FY_TR_META_CLOCK = 0xFF01,  /* ts_ns = monotonic, a = realtime ns at that moment */
    FY_TR_META_ACTOR = 0xFF02,  /* actor = id, thread = kind, ts_ns = created, a = label
                                   length, b = label records that follow (raw bytes) */
    FY_TR_META_THREAD = 0xFF03, /* thread = index, a = events lost to wrap-around,
                                   b = that thread's event records that follow */
    FY_TR_META_CLUSTER = 0xFF04, /* a cluster event: thread = enum fy_trace_cluster,
                                    actor = its serial (from 1), ts_ns = when, a = the
                                    channel's cluster epoch, b = text records that follow
                                    (key=value text, NUL-padded) */
};

/* What a FY_TR_META_CLUSTER record tells (docs/trace-format.md). */
enum fy_trace_cluster {
    FY_TR_CL_LEADER = 1,   /* a channel's leader or epoch as this relay first sees it or
                              as it changed (not by a takeover) */
    FY_TR_CL_ISR = 2,      /* the channel's in-sync set changed */
    FY_TR_CL_FAILOVER = 3, /* a new leader took over from a dead one (epoch + 1) */
    FY_TR_CL_NOTE = 4,     /* the relay's own cluster decision (text says which) */
};
#define FY_TRACE_CL_TEXT 128 /* bytes of a cluster event's text, NUL included */

#if FY_TRACE
/* Record an event in the calling scheduler thread's ring (no-op off the
 * scheduler or while tracing is off). */
void fy_trace_emit(uint16_t type, uint32_t actor, uint64_t a, uint64_t b);
#else
static inline void fy_trace_emit(uint16_t type, uint32_t actor, uint64_t a, uint64_t b)
{
    (void)type, (void)actor, (void)a, (void)b;
}
#endif

/* Record a cluster event (enum fy_trace_cluster) of a channel in cluster
 * epoch `epoch`, described by text (key=value, cut at FY_TRACE_CL_TEXT - 1
 * bytes).  Any thread, the scheduler's or not (the cluster member's thread
 * calls it); kept in a table of the last FY__TRACE_CLUSTER events that
 * every dump and the streaming tracer write as FY_TR_META_CLUSTER records.
 * Nothing is kept when the relay records no trace (trace-events 0). */
void fy_trace_cluster(fy_sched *s, uint16_t ev, uint64_t epoch, const char *text);

/* Switch recording on or off at run time (any thread). */
void fy_trace_enable(fy_sched *s, bool on);

/* Write the header (actor table) and the current contents of every ring to
 * fd, oldest event first.  Any thread; events recorded during the dump may
 * be missing.  Returns 0 or -errno. */
int fy_trace_dump(fy_sched *s, int fd);

/* Copy into out (up to cap) the events thread's ring recorded after
 * *cursor, the number of that ring's events the caller has already consumed
 * (start at 0), oldest first, and advance *cursor past them.  *n gets the
 * number copied, *lost the number between the old cursor and the first one
 * copied that were overwritten before they could be read (wrap-around, or
 * overwritten during this copy); *cursor always advances by *lost + *n.  The
 * cost is that of the events returned, not of the ring; a slot being written
 * meanwhile is never returned torn (same rule as fy_trace_dump).  Any thread;
 * one cursor per reader and thread.  Returns 0, or -EINVAL if thread is not
 * a scheduler thread of s or *cursor is ahead of the ring.  With the trace
 * compiled out it returns 0 with *n = *lost = 0. */
int fy_trace_read_since(fy_sched *s, unsigned thread, uint64_t *cursor, fy_trace_rec *out,
                        size_t cap, size_t *n, uint64_t *lost);

/* Write to fd what fy_trace_dump writes before the rings: the header, one
 * CLOCK record and the actor table (no THREAD blocks).  For a streaming
 * writer that takes the events with fy_trace_read_since().  Any thread;
 * returns 0 or -errno. */
int fy_trace_dump_head(fy_sched *s, int fd);

#endif
