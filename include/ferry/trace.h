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

/* Switch recording on or off at run time (any thread). */
void fy_trace_enable(fy_sched *s, bool on);

/* Write the header (actor table) and the current contents of every ring to
 * fd, oldest event first.  Any thread; events recorded during the dump may
 * be missing.  Returns 0 or -errno. */
int fy_trace_dump(fy_sched *s, int fd);

#endif
