/*
 * dirlock.c - one ferryd per data directory (store.h, "the data
 * directory's lock").
 *
 * flock rather than fcntl locks: an flock belongs to the open file
 * description, so it is not silently dropped when some other part of the
 * process closes another descriptor of the same file, and the kernel
 * releases it when the process dies however it dies.  The PID in the file
 * is only a hint for messages: the lock, not the file's content, decides.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "ferry/store.h"

static int lock_path(const char *dir, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", dir, FY_STORE_LOCK_NAME);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The PID the holder wrote, or 0 when the file is empty or not a number. */
static long read_holder(int fd)
{
    char b[32];
    ssize_t n = pread(fd, b, sizeof b - 1, 0);
    if (n <= 0)
        return 0;
    b[n] = 0;
    char *end;
    long pid = strtol(b, &end, 10);
    return pid > 0 && (*end == '\n' || *end == 0) ? pid : 0;
}

int fy_store_lock(const char *data_dir, long *holder)
{
    char path[4200];
    int rc;
    if ((rc = lock_path(data_dir, path, sizeof path)) < 0)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return -errno;
    /* A `ferry check` probing with a shared lock holds it for a moment:
     * a few bounded retries tell that from a running ferryd. */
    for (int tries = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; tries++) {
        if (errno == EWOULDBLOCK && tries < 10) {
            usleep(20 * 1000);
            continue;
        }
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (rc == -EBUSY && holder)
            *holder = read_holder(fd);
        close(fd);
        return rc;
    }
    char b[32];
    int n = snprintf(b, sizeof b, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, b, (size_t)n, 0) != n) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int fy_store_lock_probe(const char *data_dir, long *holder)
{
    char path[4200];
    int rc;
    if ((rc = lock_path(data_dir, path, sizeof path)) < 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    rc = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? 1 : -errno;
        if (rc == 1 && holder)
            *holder = read_holder(fd);
    }
    close(fd); /* drops the shared lock, if taken */
    return rc;
}
