/*
 * spool.c - standard input to a temp file for `ferry send -` (see spool.h).
 *
 * The copy waits for input with poll() and a short timeout rather than a
 * blocking read(): SIGINT is taken by the cancel watcher thread (cancel.h),
 * which can shut down sockets but not wake a read() on a pipe or terminal,
 * so the loop looks at the cancel flag between waits.
 */
#include "cli/spool.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ferry/fd.h"

#define SPOOL_BUF ((size_t)1 << 20)
#define SPOOL_POLL_MS 200

int fy_cli_spool(int fd, fy_cli_cancel *cancel, char *path, size_t cap, uint64_t *bytes,
                 const char **call)
{
    const char *tmp = getenv("TMPDIR");
    *bytes = 0;
    *call = "mkstemp";
    if (snprintf(path, cap, "%s/ferry-stdin-XXXXXX", tmp && *tmp ? tmp : "/tmp") >= (int)cap)
        return -ENAMETOOLONG;
    int out = mkstemp(path);
    if (out < 0)
        return -errno;
    char *buf = malloc(SPOOL_BUF);
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0) {
        if (fy_cli_cancel_requested(cancel)) {
            rc = -EINTR;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, SPOOL_POLL_MS);
        if (pr < 0 && errno != EINTR) {
            *call = "poll";
            rc = -errno;
        }
        if (pr <= 0)
            continue;
        ssize_t n = read(fd, buf, SPOOL_BUF);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno != EINTR && errno != EAGAIN) {
                *call = "read";
                rc = -errno;
            }
            continue;
        }
        *call = "write";
        rc = fy_fd_write_all(out, buf, (size_t)n);
        *bytes += (uint64_t)n;
    }
    free(buf);
    if (close(out) != 0 && rc == 0) {
        *call = "close";
        rc = -errno;
    }
    if (rc < 0)
        unlink(path);
    return rc;
}
