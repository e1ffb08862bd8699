/*
 * cancel.h - turning SIGINT/SIGTERM into a clean stop of blocking I/O.
 *
 * The client uses blocking sockets, and a signal handler cannot safely do
 * more than set a flag, while a blocked read() would not notice the flag.
 * So the signals are blocked in every thread and one watcher thread waits
 * for them with sigwait(); on a signal it records it and shuts down every
 * socket registered here, which wakes each blocked read or write with an
 * error.  The code that sees the error asks fy_cli_cancel_requested() and
 * cleans up (temp files removed, what completed reported).
 */
#ifndef FY_CLI_CANCEL_H
#define FY_CLI_CANCEL_H

#include <stdbool.h>

typedef struct fy_cli_cancel fy_cli_cancel;

/* Block SIGINT/SIGTERM in the calling thread (threads started later
 * inherit the mask) and start the watcher.  Call from main before any other
 * thread exists.  Returns 0 or -errno. */
int fy_cli_cancel_new(fy_cli_cancel **out);

/* Stop the watcher and free c (NULL is allowed).  The thread that created it. */
void fy_cli_cancel_free(fy_cli_cancel *c);

/* Has a stop been asked for?  Any thread; c may be NULL (then never). */
bool fy_cli_cancel_requested(fy_cli_cancel *c);

/* The signal that asked for the stop (0 if none or fy_cli_cancel_trigger). */
int fy_cli_cancel_signal(fy_cli_cancel *c);

/* Ask for a stop as a signal would.  Any thread. */
void fy_cli_cancel_trigger(fy_cli_cancel *c);

/* Register / unregister a socket to shut down on a stop.  Unregister before
 * close(), so a reused fd number is never shut down.  Any thread; c may be
 * NULL.  add returns 0 or -ENOSPC (more than 64 sockets). */
int fy_cli_cancel_add_fd(fy_cli_cancel *c, int fd);
void fy_cli_cancel_remove_fd(fy_cli_cancel *c, int fd);

#endif
