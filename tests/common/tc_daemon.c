/*
 * tc_daemon.c - the real ferryd on loopback (see tc.h).  Its stderr goes to
 * a log file, so it can never block on a full pipe; the address comes from
 * its `listening=HOST:PORT` line, read from where this start began writing.
 */
#include "tc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define ARGS_MAX 64
#define POLL_MS 10

/* Copy the value of "key=VALUE" in a complete line into out; port after its
 * last ':'.  true when found. */
static bool line_value(const char *line, const char *key, char *out, size_t cap, uint16_t *port)
{
    const char *p = strstr(line, key);
    if (!p || !strchr(p, '\n'))
        return false;
    p += strlen(key);
    size_t n = strcspn(p, " \t\r\n\"");
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = 0;
    const char *colon = strrchr(out, ':');
    *port = colon ? (uint16_t)atoi(colon + 1) : 0;
    return true;
}

/* Scan the log from byte `from`: 1 once listening= is there, else 0. */
static int scan_log(tc_daemon *d, const char *log, long from)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return 0;
    char line[4096], metrics[64];
    int found = 0;
    if (fseek(f, from, SEEK_SET) == 0)
        while (!found && fgets(line, sizeof line, f)) {
            line_value(line, "metrics=", metrics, sizeof metrics, &d->metrics_port);
            found = line_value(line, "listening=", d->addr, sizeof d->addr, &d->port);
        }
    fclose(f);
    return found;
}

int tc_daemon_start(tc_daemon *d, const char *ferryd, const char *data, const char *log,
                    const char *const *extra, int timeout_ms)
{
    const char *argv[ARGS_MAX] = {ferryd, "--listen", "127.0.0.1:0"};
    int argc = 3;
    if (data) {
        argv[argc++] = "--data";
        argv[argc++] = data;
    }
    for (int i = 0; extra && extra[i]; i++) {
        if (argc == ARGS_MAX - 1)
            return -E2BIG;
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    memset(d, 0, sizeof *d);
    struct stat sb;
    long from = stat(log, &sb) == 0 ? (long)sb.st_size : 0;
    pid_t pid = tc_spawn(argv, NULL, NULL, log, true);
    if (pid < 0)
        return pid;
    d->pid = pid;
    for (int waited = 0; waited <= timeout_ms; waited += POLL_MS) {
        if (scan_log(d, log, from))
            return 0;
        if (waitpid(pid, &d->exit_status, WNOHANG) == pid) {
            d->pid = 0;
            return -ECHILD;
        }
        tc_sleep_ms(POLL_MS);
    }
    tc_daemon_stop(d, 1000, NULL);
    return -ETIMEDOUT;
}

int tc_daemon_stop(tc_daemon *d, int wait_ms, int *status)
{
    if (d->pid <= 0)
        return -ESRCH;
    int rc = tc_stop(d->pid, wait_ms, status);
    if (rc == -ETIMEDOUT)
        fprintf(stderr, "tests: ferryd %d did not exit in %d ms: SIGKILL\n", (int)d->pid, wait_ms);
    d->pid = 0;
    return rc;
}

void tc_daemon_kill9(tc_daemon *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}
