/*
 * trsnap.h - flight-recorder snapshots: the rings written to a timestamped
 * file on request (ferryd's SIGUSR1) and, best effort, on a fatal signal.
 */
#ifndef FY_RELAY_TRSNAP_H
#define FY_RELAY_TRSNAP_H

#include <stddef.h>

#include "ferry/sched.h"

/* Write fy_trace_dump(s) to DIR/trace-YYYYmmdd-HHMMSS.trace (UTC; a -N
 * suffix if that name exists; never overwrites).  The file appears under
 * its final name only when complete (written as .tmp, then renamed).  path
 * gets the name.  Any thread but a signal handler.  0 or -errno. */
int fy_trsnap_write(fy_sched *s, const char *dir, char *path, size_t cap);

/* Install SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGABRT handlers that write
 * DIR/trace-YYYYmmdd-HHMMSS-crash.trace and then let the signal kill the
 * process as before.  Best effort: the dump takes the scheduler's lock and
 * allocates, which a crash inside malloc or under that lock can block, so
 * an alarm(5) ends a stuck attempt; it runs on the crashed thread's stack
 * (no alternate stack: the runtime creates the threads).  Call once, from
 * the main thread, before fy_sched_start.  0 or -errno. */
int fy_trsnap_fatal_install(fy_sched *s, const char *dir);

#endif
