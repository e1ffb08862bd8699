/*
 * mirror.c - an edge relay's mirror state file (fy_mirror; see mirror.h).
 *
 * Storage work kept out of the upstream actor: the actor decides when the
 * state changes and whether the write must be durable, this file owns the
 * name, the format and the tmp + rename.  A stale file_begin is harmless
 * (it names an earlier file-begin, as good a place to start checking), so
 * callers sync only when delta changes.
 */
#include "store/mirror.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define STATE_FILE "upstream"

void fy_mirror_path(const char *chan_dir, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", chan_dir, STATE_FILE);
}

int fy_mirror_load(const char *chan_dir, fy_mirror_state *st)
{
    char path[4608];
    int rc = 0;

    fy_mirror_path(chan_dir, path, sizeof path);
    *st = (fy_mirror_state){0};
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    if (fscanf(f, "delta=%" SCNd64 " file_begin=%" SCNu64, &st->delta, &st->file_begin) >= 1)
        rc = 1;
    fclose(f);
    return rc;
}

int fy_mirror_save(const char *chan_dir, const fy_mirror_state *st, const char *upstream,
                   bool sync)
{
    char path[4608], tmp[4616], text[400];
    int n = snprintf(text, sizeof text, "delta=%" PRId64 " file_begin=%" PRIu64 " upstream=%s\n",
                     st->delta, st->file_begin, upstream);
    int rc = 0;

    if (n < 0 || (size_t)n >= sizeof text)
        return -ENAMETOOLONG;
    fy_mirror_path(chan_dir, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, text, (size_t)n);
    if (w != n)
        rc = w < 0 ? -errno : -EIO;
    else if (sync && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    return rc;
}
