/*
 * partfile.c - a receiver's temp files (see partfile.h): names that always
 * fit, and opens that never follow what another process planted.
 *
 * Why not O_TMPFILE + linkat: a receiver restarted after a crash must find
 * its partial file again by name (partfile.h), and some file systems
 * (older NFS, FUSE) lack O_TMPFILE.  A fixed name opened with
 * O_EXCL|O_NOFOLLOW after unlinking the entry gives the same safety: the
 * file we write is always one this call created.
 */
#include "cli/partfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/digest.h"

#define PART_SUFFIX ".part"
#define PART_PREFIX_MAX 200u /* bytes of NAME kept in a hashed temp name */
#define PART_OPEN_TRIES 3    /* unlink + create races lost in a row before giving up */

void fy_cli_part_init(fy_cli_part *p)
{
    memset(p, 0, sizeof *p);
    p->dirfd = -1;
    p->fd = -1;
}

int fy_cli_part_name(const char *name, char *out, size_t cap)
{
    size_t n = strnlen(name, FY_NAME_MAX + 1);
    if (n == 0 || n > FY_NAME_MAX)
        return -EINVAL;
    if (cap < FY_CLI_PART_NAME_CAP)
        return -ENAMETOOLONG;
    if (1 + n + sizeof PART_SUFFIX - 1 <= FY_CLI_PART_NAME_CAP - 1) {
        snprintf(out, cap, ".%s" PART_SUFFIX, name);
        return 0;
    }
    /* Too long for ".NAME.part": keep a readable prefix, never cutting a
     * UTF-8 character in two (continuation bytes are 10xxxxxx), and make it
     * unique with a hash of the whole name. */
    size_t keep = PART_PREFIX_MAX;
    while (keep > 0 && ((unsigned char)name[keep] & 0xc0) == 0x80)
        keep--;
    uint8_t d[FY_SHA256_LEN];
    char hex[65];
    int rc = fy_sha256_oneshot(name, n, d);
    if (rc < 0)
        return rc;
    fy_sha256_hex(d, hex);
    snprintf(out, cap, ".%.*s~%.16s" PART_SUFFIX, (int)keep, name, hex);
    return 0;
}

/* p's names for name in dirfd. */
static int set_names(fy_cli_part *p, int dirfd, const char *name)
{
    int rc = fy_cli_part_name(name, p->tmp, sizeof p->tmp);
    if (rc < 0)
        return rc;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->dirfd = dirfd;
    return 0;
}

int fy_cli_part_open(fy_cli_part *p, int dirfd, const char *name, const char **call)
{
    *call = "openat";
    int rc = set_names(p, dirfd, name);
    if (rc < 0)
        return rc;
    for (int i = 0; i < PART_OPEN_TRIES; i++) {
        p->fd = openat(dirfd, p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (p->fd >= 0)
            return 0;
        if (errno != EEXIST)
            return -errno;
        /* A leftover of a crashed run, or something planted: remove the
         * entry itself (unlinkat never follows a symlink) and create anew. */
        if (unlinkat(dirfd, p->tmp, 0) != 0 && errno != ENOENT) {
            *call = "unlinkat";
            return -errno;
        }
    }
    return -EEXIST;
}

int fy_cli_part_reopen(fy_cli_part *p, int dirfd, const char *name, uint64_t *size)
{
    int rc = set_names(p, dirfd, name);
    if (rc < 0)
        return rc;
    /* O_NONBLOCK: a FIFO planted here must not block the open. */
    int fd = openat(dirfd, p->tmp, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
    } else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        rc = -EINVAL; /* a hard link would let us write into someone else's file */
    } else if (fcntl(fd, F_SETFL, 0) != 0 || lseek(fd, 0, SEEK_END) < 0) {
        rc = -errno;
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    p->fd = fd;
    *size = (uint64_t)st.st_size;
    return 0;
}

int fy_cli_part_commit(fy_cli_part *p, const char **call)
{
    int rc = 0;
    *call = "fsync";
    if (fsync(p->fd) != 0)
        rc = -errno;
    if (close(p->fd) != 0 && rc == 0) {
        *call = "close";
        rc = -errno;
    }
    p->fd = -1;
    /* renameat replaces the entry at the final name; it follows no symlink
     * there (nor at the temp name). */
    if (rc == 0 && renameat(p->dirfd, p->tmp, p->dirfd, p->name) != 0) {
        *call = "renameat";
        rc = -errno;
    }
    if (rc < 0)
        unlinkat(p->dirfd, p->tmp, 0);
    return rc;
}

void fy_cli_part_discard(fy_cli_part *p)
{
    if (p->fd < 0)
        return;
    close(p->fd);
    p->fd = -1;
    unlinkat(p->dirfd, p->tmp, 0);
}
