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
    char line[512];
    if (fgets(line, sizeof line, f) && sscanf(line, "delta=%" SCNd64, &st->delta) == 1)
        rc = 1;
    fclose(f);
    if (rc == 0)
        return 0;
    /* The fields after delta, each "key=value", in any order. */
    char *save = NULL;
    for (char *t = strtok_r(line, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
        if (sscanf(t, "file_begin=%" SCNu64, &st->file_begin) == 1 ||
            sscanf(t, "epoch=%" SCNu64, &st->epoch) == 1)
            continue;
        if (strncmp(t, "upstream=", 9) == 0)
            snprintf(st->upstream, sizeof st->upstream, "%s", t + 9);
    }
    return 1;
}

int fy_mirror_save(const char *chan_dir, const fy_mirror_state *st, const char *upstream,
                   bool sync)
{
    char path[4608], tmp[4616], text[400];
    int n = snprintf(text, sizeof text, "delta=%" PRId64 " file_begin=%" PRIu64 " upstream=%s",
                     st->delta, st->file_begin, upstream);
    if (n > 0 && (size_t)n < sizeof text)
        n += st->epoch ? snprintf(text + n, sizeof text - (size_t)n, " epoch=%" PRIu64 "\n",
                                  st->epoch)
                       : snprintf(text + n, sizeof text - (size_t)n, "\n");
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
