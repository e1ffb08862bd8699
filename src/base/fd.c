/*
 * fd.c - the one write-everything loop for files and pipes
 * (include/ferry/fd.h), shared by the trace writers and the client.
 */
#include "ferry/fd.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

int fy_fd_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        /* write(2) returns 0 only for n == 0 on files and pipes; guard
         * anyway so an odd device cannot spin this loop forever. */
        if (w == 0)
            return -EIO;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}
