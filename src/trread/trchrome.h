/*
 * trchrome.h - a trace as Chrome Trace Event JSON (ferry-trace chrome), the
 * format Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * Layout: one process per actor kind, one track (thread) per actor, a
 * slice per turn (args: messages, mailbox wait), a flow arrow from each
 * traced send to the receiver's next turn, counters for mailbox depth and
 * forwarder lag, and one track per scheduler thread showing when it was
 * parked.  Times are microseconds after the first event.
 */
#ifndef FY_TRREAD_TRCHROME_H
#define FY_TRREAD_TRCHROME_H

#include <stdio.h>

#include "trread/trfile.h"

/* The process id used for the scheduler threads' tracks (above any kind). */
#define FY_TRCHROME_SCHED_PID 65536

/* Write the JSON document for f.  Returns 0, -ENOMEM or -EIO. */
int fy_trchrome_write(FILE *o, const fy_trfile *f);

#endif
