/*
 * tracer.h - recording the trace continuously to a file (ferryd --trace).
 *
 * A tracer actor wakes on a timer (every 100 ms by default), takes the
 * head of a dump (header, clock, actor table: fy_trace_dump_head into an
 * in-memory file) and, with a cursor per thread, only the events each ring
 * recorded since the last tick (fy_trace_read_since), which it appends to
 * the trace file; events overwritten before it read them are counted as
 * lost in the THREAD record.  New actors' records
 * and a clock record go in front of each appended chunk (the format allows
 * meta records anywhere), so the file reads like a dump.
 *
 * Size is bounded: when FILE would pass max_bytes/2 it is renamed to
 * FILE.1 (replacing the previous one) and a new FILE starts with a fresh
 * header and the whole actor table, so FILE and FILE.1 together stay near
 * max_bytes, and the newest events are always in FILE.  An existing FILE
 * is moved to FILE.1 at start, so a restart after a crash keeps the trace
 * of the run that crashed.
 *
 * The ring must not wrap between two ticks or events are lost (counted in
 * the file): with the default 65536-event rings and 100 ms ticks a thread
 * can record 650 000 events/s before that happens.
 */
#ifndef FY_ACTORS_TRACER_H
#define FY_ACTORS_TRACER_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/actor.h"
#include "ferry/sched.h"

#define FY_TRACER_F_STREAM 1u       /* fy_trace_file_hdr.flags of a streamed file */
#define FY_TRACER_DEFAULT_MAX (64ull << 20)

typedef struct fy_tracer_opts {
    const char *path;   /* the trace file; FILE.1 is its predecessor */
    uint64_t max_bytes; /* FILE + FILE.1 together; 0 = FY_TRACER_DEFAULT_MAX */
    unsigned period_ms; /* 0 = 100 */
} fy_tracer_opts;

/* Open the file and start the tracer actor on s (any thread; s started or
 * not).  *out gets one reference; fy_actor_stop() ends the recording after a
 * last drain (in the dtor, on a scheduler thread, also during
 * fy_sched_join).  Returns 0 or -errno with a reason in err. */
int fy_tracer_new(fy_sched *s, const fy_tracer_opts *o, fy_actor **out, char *err,
                    size_t errcap);

#endif
