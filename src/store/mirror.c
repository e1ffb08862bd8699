/*
 * mirror.c - an edge relay's mirror state file and its record of what it
 * skipped (fy_mirror; see mirror.h).
 *
 * Storage work kept out of the upstream actor: the actor decides when the
 * state changes and whether the write must be durable, this file owns the
 * name, the format and the tmp + rename.  A stale file_begin is harmless
 * (it names an earlier file-begin, as good a place to start checking), so
 * callers sync only when delta changes.
 */
#include "store/mirror.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/store.h"
#include "store/seg.h"

#define STATE_FILE "upstream"
#define SKIP_FILE "skipped"

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

/* ---- what a mirror skipped ------------------------------------------------------ */

/* Every record of chan_dir's skipped file, oldest first, into out (cap):
 * the newest cap when there are more.  Count, or -errno (-ENOENT: none). */
static int skip_read(const char *chan_dir, fy_mirror_skip *out, size_t cap)
{
    char path[4608], line[256];
    size_t n = 0;

    snprintf(path, sizeof path, "%s/%s", chan_dir, SKIP_FILE);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    while (cap && fgets(line, sizeof line, f)) {
        fy_mirror_skip s;
        if (sscanf(line, "at_seq=%" SCNu64 " up_from=%" SCNu64 " up_to=%" SCNu64 " code=%" SCNu32,
                   &s.at_seq, &s.up_from, &s.up_to, &s.code) != 4)
            continue; /* not ours: skipped, as an operator's comment would be */
        if (n == cap) /* keep the newest: drop the oldest */
            memmove(out, out + 1, (cap - 1) * sizeof *out), n--;
        out[n++] = s;
    }
    fclose(f);
    return (int)n;
}

int fy_mirror_skip_add(const char *chan_dir, const fy_mirror_skip *s)
{
    fy_mirror_skip recs[FY_MIRROR_SKIPS_MAX];
    char path[4608], tmp[4616];
    int n = skip_read(chan_dir, recs, FY_MIRROR_SKIPS_MAX - 1);
    int rc = 0;

    if (n == -ENOENT)
        n = 0;
    if (n < 0)
        return n;
    recs[n++] = *s;
    snprintf(path, sizeof path, "%s/%s", chan_dir, SKIP_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return -errno;
    for (int i = 0; i < n; i++)
        fprintf(f, "at_seq=%" PRIu64 " up_from=%" PRIu64 " up_to=%" PRIu64 " code=%" PRIu32 "\n",
                recs[i].at_seq, recs[i].up_from, recs[i].up_to, recs[i].code);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int fy_mirror_skip_load(const char *chan_dir, uint64_t from_seq, fy_mirror_skip *out, size_t cap)
{
    fy_mirror_skip recs[FY_MIRROR_SKIPS_MAX] = {{0}};
    int n = skip_read(chan_dir, recs, FY_MIRROR_SKIPS_MAX);
    size_t k = 0;

    if (n < 0)
        return n == -ENOENT ? 0 : n;
    for (int i = 0; i < n; i++)
        if (recs[i].at_seq >= from_seq)
            recs[k++] = recs[i];
    size_t first = k > cap ? k - cap : 0;
    for (size_t i = first; i < k; i++)
        out[i - first] = recs[i];
    return (int)(k - first);
}

/* ---- the files at the log's tail ------------------------------------------------- */

#define TAIL_SEGS 2                    /* the write-behind budget spans at most two */
#define TAIL_FRAMES_MAX ((uint64_t)1 << 22) /* a bound on the walk, per segment */

/* The bases of chan_dir's last TAIL_SEGS segments, ascending, into b. */
static int tail_segs(const char *chan_dir, uint64_t b[TAIL_SEGS])
{
    DIR *d = opendir(chan_dir);
    struct dirent *e;
    int n = 0;

    if (!d)
        return -errno;
    while ((e = readdir(d))) {
        char *end;
        if (strlen(e->d_name) != 24 || strcmp(e->d_name + 20, ".log") != 0)
            continue;
        uint64_t v = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20)
            continue;
        if (n < TAIL_SEGS) { /* insertion keeps b ascending */
            int i = n++;
            for (; i > 0 && b[i - 1] > v; i--)
                b[i] = b[i - 1];
            b[i] = v;
        } else if (v > b[0]) {
            int i = 0;
            for (; i + 1 < TAIL_SEGS && b[i + 1] < v; i++)
                b[i] = b[i + 1];
            b[i] = v;
        }
    }
    closedir(d);
    return n;
}

/* The payload of the frame h at `at` into buf (cap).  0 or -errno. */
static int tail_payload(fy_logrd *rd, fy_pos at, const fy_frame_hdr *h, uint8_t *buf, size_t cap)
{
    fy_pos end = {at.seg, at.off + FY_FRAME_HDR_SIZE + h->len};
    size_t len = 0;
    int rc = fy_logrd_seek(rd, at);

    if (rc == 0)
        rc = fy_logrd_read(rd, end, buf, cap, &len);
    return rc < 0 ? rc : len == FY_FRAME_HDR_SIZE + h->len ? 0 : -FY_ECORRUPT;
}

/* One file-begin or file-end at `at` (seq h->seq) into *cur; a completed
 * file goes to out (the newest cap kept, *n of them). */
static void tail_mark(fy_logrd *rd, fy_pos at, const fy_frame_hdr *h, fy_mirror_file *cur,
                      fy_mirror_file *out, size_t cap, size_t *n)
{
    uint8_t buf[FY_FRAME_HDR_SIZE + 12 + FY_NAME_MAX];
    fy_file_begin fb;
    fy_file_end fe;

    if (tail_payload(rd, at, h, buf, sizeof buf) < 0) {
        cur->begin = 0;
        return;
    }
    if (h->type == FY_FT_FILE_BEGIN) {
        *cur = (fy_mirror_file){0};
        if (fy_file_begin_decode(buf + FY_FRAME_HDR_SIZE, h->len, &fb) == 0) {
            cur->begin = h->seq;
            cur->size = fb.size;
            snprintf(cur->name, sizeof cur->name, "%s", fb.name);
        }
        return;
    }
    if (cur->begin && fy_file_end_decode(buf + FY_FRAME_HDR_SIZE, h->len, &fe) == 0 &&
        fe.size == cur->size) {
        cur->end = h->seq;
        memcpy(cur->sha256, fe.sha256, sizeof cur->sha256);
        if (*n == cap)
            memmove(out, out + 1, (cap - 1) * sizeof *out), (*n)--;
        out[(*n)++] = *cur;
    }
    cur->begin = 0;
}

int fy_mirror_tail_files(const char *chan_dir, fy_mirror_file *out, size_t cap,
                         fy_mirror_file *partial)
{
    uint64_t segs[TAIL_SEGS] = {0};
    fy_mirror_file cur = {0};
    fy_logrd *rd;
    size_t n = 0;
    int ns = tail_segs(chan_dir, segs);

    *partial = cur;
    if (ns <= 0 || cap == 0)
        return ns < 0 ? ns : 0;
    int rc = fy_logrd_open(chan_dir, &rd);
    if (rc < 0)
        return rc;
    for (int s = 0; s < ns; s++) {
        fy_pos at = {segs[s], FY__SEG_HDR_SIZE};
        fy_frame_hdr h;
        for (uint64_t i = 0; i < TAIL_FRAMES_MAX && fy_logrd_peek(rd, at, &h) == 0; i++) {
            if (h.type == FY_FT_FILE_BEGIN || h.type == FY_FT_FILE_END)
                tail_mark(rd, at, &h, &cur, out, cap, &n);
            at.off += FY_FRAME_HDR_SIZE + h.len;
        }
    }
    fy_logrd_close(rd);
    *partial = cur;
    return (int)n;
}
