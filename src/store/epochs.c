/*
 * epochs.c - the epochs file of a channel's log (fy_epochs; see epochs.h).
 *
 * Storage work kept out of the registry: it decides when an epoch begins
 * (each opening of the log), this file owns the name, the format, the id
 * and the durable replace.  A file that does not parse loses its history
 * rather than the channel: the relay then only knows the epochs from here
 * on, and receivers of older ones are checked against the log's end alone.
 */
#include "store/epochs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ferry/err.h"

#define EPOCHS_FILE "epochs"
#define EPOCHS_HEAD "# ferryd: epochs of this channel's log, oldest first: ID START_SEQ\n"
#define LINE_CAP 128 /* a line: the header, or 16 + 1 + 20 + 1 bytes */

/* Read chan_dir's file into *t (n = 0 when there is none).  0, or
 * -FY_ECORRUPT (then n = 0). */
static int load(const char *path, fy_epochs *t)
{
    t->n = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char line[LINE_CAP];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        fy_epoch e;
        char end;
        if (line[0] == '#')
            continue;
        if (sscanf(line, "%16" SCNx64 " %" SCNu64 "%c", &e.id, &e.start_seq, &end) != 3 ||
            end != '\n' || e.id == 0 || t->n == FY_EPOCHS_KEEP)
            rc = -FY_ECORRUPT;
        else
            t->e[t->n++] = e;
    }
    fclose(f);
    if (rc < 0)
        t->n = 0;
    return rc;
}

static bool known(const fy_epochs *t, uint64_t id)
{
    for (unsigned i = 0; i < t->n; i++)
        if (t->e[i].id == id)
            return true;
    return false;
}

/* A nonzero id none of t's epochs has: random bytes, or the clock mixed
 * with the PID when the kernel has none to give yet. */
static uint64_t new_id(const fy_epochs *t)
{
    uint64_t id = 0;
    for (int i = 0; i < 16 && (id == 0 || known(t, id)); i++) {
        if (getrandom(&id, sizeof id, GRND_NONBLOCK) != (ssize_t)sizeof id) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            id = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)getpid() << 40) ^ (uint64_t)i;
        }
    }
    return id ? id : 1;
}

/* Write t to path through tmp: fsync'd, renamed, the directory fsync'd. */
static int save(const char *dir, const char *path, const fy_epochs *t)
{
    char tmp[4616], text[sizeof EPOCHS_HEAD + FY_EPOCHS_KEEP * LINE_CAP];
    size_t len = (size_t)snprintf(text, sizeof text, "%s", EPOCHS_HEAD);
    for (unsigned i = 0; i < t->n; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%016" PRIx64 " %" PRIu64 "\n",
                                t->e[i].id, t->e[i].start_seq);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, text, len);
    int rc = w == (ssize_t)len ? 0 : w < 0 ? -errno : -EIO;
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    rc = fsync(dfd) < 0 ? -errno : 0;
    close(dfd);
    return rc;
}

int fy_epochs_begin(const char *chan_dir, uint64_t next_seq, fy_epochs *out)
{
    char path[4608];
    snprintf(path, sizeof path, "%s/%s", chan_dir, EPOCHS_FILE);
    int lrc = load(path, out);
    if (out->n == FY_EPOCHS_KEEP) {
        memmove(out->e, out->e + 1, (FY_EPOCHS_KEEP - 1) * sizeof out->e[0]);
        out->n--;
    }
    out->e[out->n] = (fy_epoch){.id = new_id(out), .start_seq = next_seq};
    out->n++;
    int rc = save(chan_dir, path, out);
    return rc < 0 ? rc : lrc;
}

uint64_t fy_epochs_valid_below(const fy_epochs *t, uint64_t id)
{
    uint64_t below = UINT64_MAX;
    if (id == 0)
        return below;
    for (unsigned i = t->n; i-- > 0;) {
        if (t->e[i].id == id)
            return below;
        if (t->e[i].start_seq < below)
            below = t->e[i].start_seq;
    }
    return UINT64_MAX; /* not kept: unknown */
}

int fy_epochs_load(const char *chan_dir, fy_epochs *out)
{
    char path[4608];
    snprintf(path, sizeof path, "%s/%s", chan_dir, EPOCHS_FILE);
    return load(path, out);
}

int fy_epochs_add(const char *chan_dir, fy_epochs *t, uint64_t id, uint64_t start_seq)
{
    char path[4608];

    if (id == 0)
        return -EINVAL;
    if (t->n && t->e[t->n - 1].id == id)
        return 1;
    while (t->n && t->e[t->n - 1].start_seq > start_seq)
        t->n--;
    if (t->n == FY_EPOCHS_KEEP) {
        memmove(t->e, t->e + 1, (FY_EPOCHS_KEEP - 1) * sizeof t->e[0]);
        t->n--;
    }
    t->e[t->n++] = (fy_epoch){.id = id, .start_seq = start_seq};
    snprintf(path, sizeof path, "%s/%s", chan_dir, EPOCHS_FILE);
    return save(chan_dir, path, t);
}

uint64_t fy_epochs_of(const fy_epochs *t, uint64_t seq)
{
    for (unsigned i = t->n; i-- > 0;)
        if (t->e[i].start_seq <= seq)
            return t->e[i].id;
    return 0;
}
