/*
 * daemon.h - start and stop a `ferryd` child process (for `ferry demo`,
 * and for tests that need a real relay).
 *
 * The relay is started on 127.0.0.1:0 so it picks a free port, with its
 * stderr going to a log file; its `listening=HOST:PORT` line tells us the
 * address.  It is always stopped by its PID: SIGTERM, a bounded wait, then
 * SIGKILL.
 */
#ifndef FY_CLI_DAEMON_H
#define FY_CLI_DAEMON_H

#include <sys/types.h>

typedef struct fy_cli_daemon {
    pid_t pid;
    char addr[64];  /* "127.0.0.1:PORT" once listening */
    char log[4096]; /* its stderr */
} fy_cli_daemon;

/* The ferryd next to the running program (/proc/self/exe's directory), else
 * in ../sbin from there (the installed layout), or $FERRYD when set.  Writes
 * the path into buf.  Returns 0 or -ENOENT. */
int fy_cli_daemon_find(char *buf, size_t cap);

/* Start `path --listen 127.0.0.1:0 --data data_dir [extra...]` (extra is a
 * NULL-terminated list, may be NULL) with stderr to log_path, and wait at
 * most timeout_ms for its listening= line.  Returns 0 with d filled, or
 * -errno (-ETIMEDOUT; -ECHILD: it exited).  On failure no child is left. */
int fy_cli_daemon_start(const char *path, const char *data_dir, const char *log_path,
                        const char *const *extra, int timeout_ms, fy_cli_daemon *d);

/* SIGTERM, wait up to timeout_ms, then SIGKILL; reaps the child.  Returns
 * its wait status, or -1 if it had to be killed.  d->pid <= 0 is a no-op
 * returning 0. */
int fy_cli_daemon_stop(fy_cli_daemon *d, int timeout_ms);

#endif
