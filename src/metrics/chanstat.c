/*
 * chanstat.c - per-channel figures that outlive a writer (chanstat.h).
 *
 * A table sorted by channel name (binary search; channels come and go
 * rarely next to scrapes).  The disk scan only stats: a channel's stored
 * bytes are its .log files' sizes, its stored frames its .idx files'
 * records ((size - header) / record), so a scrape of a relay holding many
 * channels costs a readdir and a few fstatat per channel, and the owner
 * rate-limits it anyway.
 */
#include "metrics/chanstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDX_HDR 32 /* docs/storage.md: file header, then 32-byte records */
#define IDX_REC 32

typedef struct ent {
    char *name;
    uint64_t stored_bytes, stored_frames;
    bool on_disk; /* in the last scan */
    bool open;    /* a writer answered in this gather */
    uint32_t actor; /* the last writer heard from; 0 = none yet */
    uint64_t last[FY_CS_N], base[FY_CS_N];
} ent;

struct fy_chanstat {
    ent *e;
    size_t n, cap;
    uint64_t scanned_ms;
    bool scanned;
};

int fy_chanstat_new(fy_chanstat **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void fy_chanstat_free(fy_chanstat *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].name);
    free(t->e);
    free(t);
}

/* Index of name, or where it would go (*found false). */
static size_t seek(const fy_chanstat *t, const char *name, bool *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->e[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static ent *get(fy_chanstat *t, const char *name)
{
    bool found;
    size_t i = seek(t, name, &found);
    if (found)
        return &t->e[i];
    if (t->n == t->cap) {
        size_t c = t->cap ? t->cap * 2 : 16;
        ent *p = realloc(t->e, c * sizeof *p);
        if (!p)
            return NULL;
        t->e = p;
        t->cap = c;
    }
    char *dup = strdup(name);
    if (!dup)
        return NULL;
    memmove(&t->e[i + 1], &t->e[i], (t->n - i) * sizeof *t->e);
    t->n++;
    memset(&t->e[i], 0, sizeof t->e[i]);
    t->e[i].name = dup;
    return &t->e[i];
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n > k && strcmp(s + n - k, suf) == 0;
}

/* Sum one channel directory (dfd: the channels root). */
static void scan_one(int dfd, ent *e)
{
    int fd = openat(dfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    uint64_t bytes = 0, frames = 0;
    struct dirent *de;
    struct stat st;
    while ((de = readdir(d)) != NULL) {
        bool log = ends_with(de->d_name, ".log"), idx = ends_with(de->d_name, ".idx");
        if ((!log && !idx) || fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (log)
            bytes += (uint64_t)st.st_size;
        else if (st.st_size > IDX_HDR)
            frames += ((uint64_t)st.st_size - IDX_HDR) / IDX_REC;
    }
    closedir(d);
    e->stored_bytes = bytes;
    e->stored_frames = frames;
}

/* Forget channels neither on disk nor open. */
static void prune(fy_chanstat *t)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].on_disk || t->e[i].open)
            t->e[k++] = t->e[i];
        else
            free(t->e[i].name);
    }
    t->n = k;
}

int fy_chanstat_scan(fy_chanstat *t, const char *root, uint64_t now_ms, uint64_t min_ms)
{
    if (t->scanned && now_ms - t->scanned_ms < min_ms)
        return 0;
    int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    DIR *d = fdopendir(dfd);
    if (!d) {
        int rc = -errno;
        close(dfd);
        return rc;
    }
    t->scanned = true;
    t->scanned_ms = now_ms;
    for (size_t i = 0; i < t->n; i++)
        t->e[i].on_disk = false;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
            continue;
        ent *e = get(t, de->d_name);
        if (!e) {
            rc = -ENOMEM;
            break;
        }
        e->on_disk = true;
        scan_one(dirfd(d), e);
    }
    closedir(d);
    prune(t);
    return rc;
}

void fy_chanstat_begin(fy_chanstat *t)
{
    for (size_t i = 0; i < t->n; i++)
        t->e[i].open = false;
}

int fy_chanstat_writer(fy_chanstat *t, const char *name, uint32_t actor, const uint64_t *v)
{
    ent *e = get(t, name);
    if (!e)
        return -ENOMEM;
    e->open = true;
    if (e->actor != actor) { /* reopened: what the earlier writer counted stays */
        for (int k = 0; k < FY_CS_N; k++)
            e->base[k] += e->last[k];
        memset(e->last, 0, sizeof e->last);
        e->actor = actor;
    }
    for (int k = 0; k < FY_CS_N; k++)
        if (v[k] > e->last[k])
            e->last[k] = v[k]; /* monotonic even if a record arrives late */
    return 0;
}

void fy_chanstat_render(fy_chanstat *t, fy_prom *p)
{
    static const struct {
        const char *name, *help;
        int k;
    } ctr[] = {
        {"ferry_channel_bytes_total", "Bytes appended to the channel's log since ferryd started "
                                      "(kept across the channel's close and reopen).", FY_CS_BYTES},
        {"ferry_channel_frames_total", "Frames appended to the channel's log since ferryd started.",
         FY_CS_FRAMES},
        {"ferry_channel_files_total", "Files stored in the channel since ferryd started.",
         FY_CS_FILES},
        {"ferry_channel_damaged_frames_total",
         "Frames the background scrub found damaged on disk (CRC or header).", FY_CS_DAMAGED},
        {"ferry_channel_sync_failures_total",
         "Syncs of the channel's log that failed: nothing they covered was acknowledged.",
         FY_CS_SYNC_FAILED},
    };
    fy_prom_family(p, "ferry_channel_stored_bytes", "gauge",
                   "Bytes of the channel's log files on disk (every channel, open or not).");
    for (size_t i = 0; i < t->n; i++)
        fy_prom_u64(p, "ferry_channel_stored_bytes", t->e[i].stored_bytes, "channel",
                    t->e[i].name, NULL);
    fy_prom_family(p, "ferry_channel_stored_frames", "gauge",
                   "Frames indexed in the channel's log files on disk (every channel).");
    for (size_t i = 0; i < t->n; i++)
        fy_prom_u64(p, "ferry_channel_stored_frames", t->e[i].stored_frames, "channel",
                    t->e[i].name, NULL);
    for (size_t f = 0; f < sizeof ctr / sizeof *ctr; f++) {
        fy_prom_family(p, ctr[f].name, "counter", ctr[f].help);
        for (size_t i = 0; i < t->n; i++)
            fy_prom_u64(p, ctr[f].name, t->e[i].base[ctr[f].k] + t->e[i].last[ctr[f].k],
                        "channel", t->e[i].name, NULL);
    }
}
