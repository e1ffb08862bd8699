/*
 * catalog.c - a channel's files read from its segments, and the operator's
 * `deleted` and `retain` files beside them (catalog.h).
 *
 * The walk reads one 32-byte header per frame and the payload of
 * file-begins and file-ends only (a few hundred bytes), so listing a
 * channel costs one pread per frame, not a read of its data.  A header
 * that fails its check, or a frame that runs past the file's end, ends a
 * segment's walk: that is where a writer is still appending (or a crash
 * tore the tail, which the relay repairs when it opens the channel).
 */
#include "store/catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/err.h"
#include "store/seg.h"

/* ---- deleted ------------------------------------------------------------------ */

typedef fy_cat_tomb tomb;

/* The entries of dirfd's `deleted` file.  0 (none: *n = 0), or -errno. */
static int tombs_load(int dirfd, tomb **out, size_t *n)
{
    int fd = openat(dirfd, FY_CAT_DELETED, O_RDONLY | O_CLOEXEC);
    *out = NULL;
    *n = 0;
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    FILE *f = fdopen(fd, "re");
    if (!f) {
        close(fd);
        return -ENOMEM;
    }
    char line[512], name[FY_NAME_MAX + 1];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        tomb t = {0};
        if (sscanf(line, "%" SCNu64 " %" SCNu64 " %255s %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64, &t.first, &t.last, name, &t.begin.seg, &t.begin.off, &t.end.seg,
                   &t.end.off) != 7 || t.last < t.first)
            continue; /* a line we do not understand deletes nothing */
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            tomb *nt = realloc(*out, cap * sizeof *nt);
            if (!nt) {
                fclose(f);
                free(*out);
                *out = NULL;
                return -ENOMEM;
            }
            *out = nt;
        }
        (*out)[(*n)++] = t;
    }
    fclose(f);
    return 0;
}

static int tomb_cmp(const void *a, const void *b)
{
    const tomb *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

int fy__cat_seg_deleted(int dirfd, uint64_t base, uint64_t next)
{
    tomb *t;
    size_t n;
    int rc = tombs_load(dirfd, &t, &n);

    if (rc < 0 || n == 0)
        return rc;
    qsort(t, n, sizeof *t, tomb_cmp);
    uint64_t at = base; /* the first seq not yet covered */
    for (size_t i = 0; i < n && at < next; i++)
        if (t[i].first <= at && t[i].last >= at)
            at = t[i].last + 1;
    free(t);
    return at >= next;
}

int fy_cat_tombs(const char *dir, fy_cat_tomb **out, size_t *n)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int rc = tombs_load(dfd, out, n);
    close(dfd);
    if (rc == 0 && *n > 1)
        qsort(*out, *n, sizeof **out, tomb_cmp);
    return rc;
}

int fy_cat_delete(const char *dir, const fy_cat_file *f)
{
    char path[4600], line[FY_NAME_MAX + 160];
    int n = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 " %s %" PRIu64 " %" PRIu64 " %" PRIu64
                     " %" PRIu64 "\n", f->seq_first, f->seq_last, f->name, f->begin.seg,
                     f->begin.off, f->end.seg, f->end.off);
    snprintf(path, sizeof path, "%s/%s", dir, FY_CAT_DELETED);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = write(fd, line, (size_t)n) == n ? 0 : -EIO;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* ---- retain ------------------------------------------------------------------- */

int fy__cat_retain_at(int dirfd, uint64_t *bytes, uint64_t *secs)
{
    int fd = openat(dirfd, FY_CAT_RETAIN, O_RDONLY | O_CLOEXEC);
    char buf[128];

    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return -EIO;
    buf[n] = 0;
    if (sscanf(buf, "bytes=%" SCNu64 " age=%" SCNu64, bytes, secs) != 2)
        return -EINVAL;
    return 1;
}

int fy_cat_retain_load(const char *dir, uint64_t *bytes, uint64_t *secs)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int rc = fy__cat_retain_at(dfd, bytes, secs);
    close(dfd);
    return rc;
}

int fy_cat_retain_save(const char *dir, uint64_t bytes, uint64_t secs)
{
    char tmp[4600], path[4600], line[96];
    int n = snprintf(line, sizeof line, "bytes=%" PRIu64 " age=%" PRIu64 "\n", bytes, secs);

    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, FY_CAT_RETAIN);
    snprintf(path, sizeof path, "%s/%s", dir, FY_CAT_RETAIN);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = write(fd, line, (size_t)n) == n ? 0 : -EIO;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* ---- the walk ------------------------------------------------------------------ */

typedef struct walk {
    fy_cat *c;
    fy_cat_file cur; /* the file whose file-begin we saw */
    bool in_file;
} walk;

static int push(fy_cat *c, const fy_cat_file *f)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 32;
        fy_cat_file *nf = realloc(c->f, cap * sizeof *nf);
        if (!nf)
            return -ENOMEM;
        c->f = nf;
        c->cap = cap;
    }
    c->f[c->n++] = *f;
    return 0;
}

/* A file-begin or file-end at off: read, check and apply its payload. */
static int mark(walk *w, int fd, uint64_t base, uint64_t off, const fy_frame_hdr *h,
                int64_t mtime)
{
    uint8_t p[16 + FY_NAME_MAX];

    if (h->len > sizeof p || fy__seg_pread(fd, p, h->len, off + FY_FRAME_HDR_SIZE) != h->len ||
        fy_crc32c(0, p, h->len) != h->crc)
        return 1; /* not whole (yet): the end of this segment's walk */
    if (h->type == FY_FT_FILE_BEGIN) {
        fy_file_begin fb;
        if (fy_file_begin_decode(p, h->len, &fb) < 0)
            return 1;
        w->cur = (fy_cat_file){.size = fb.size, .seq_first = h->seq, .begin = {base, off}};
        snprintf(w->cur.name, sizeof w->cur.name, "%s", fb.name);
        w->in_file = true;
        return 0;
    }
    fy_file_end fe;
    if (fy_file_end_decode(p, h->len, &fe) < 0)
        return 1;
    if (!w->in_file) /* its file-begin was in a segment retention removed */
        return 0;
    memcpy(w->cur.sha256, fe.sha256, sizeof fe.sha256);
    w->cur.seq_last = h->seq;
    w->cur.stored_s = mtime;
    w->cur.end = (fy_pos){base, off + FY_FRAME_HDR_SIZE + h->len};
    w->in_file = false;
    w->c->end_seq = h->seq + 1;
    return push(w->c, &w->cur);
}

static int walk_seg(walk *w, int dirfd, uint64_t base)
{
    int fd = fy__seg_open(dirfd, FY__SEG_LOG, base, O_RDONLY);
    struct stat st;
    uint64_t off = FY__SEG_HDR_SIZE;
    int rc = 0;

    if (fd < 0)
        return fd == -ENOENT ? 0 : fd; /* retention removed it meanwhile */
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    fy_cat *c = w->c;
    c->segments++;
    c->bytes += (uint64_t)st.st_size;
    if (!c->oldest_s)
        c->oldest_s = st.st_mtim.tv_sec;
    c->newest_s = st.st_mtim.tv_sec;
    for (;;) {
        uint8_t raw[FY_FRAME_HDR_SIZE];
        fy_frame_hdr h;
        if (fy__seg_pread(fd, raw, sizeof raw, off) != (ssize_t)sizeof raw ||
            fy_frame_hdr_decode(raw, FY_PAYLOAD_MAX_LIMIT, &h) < 0 ||
            off + FY_FRAME_HDR_SIZE + h.len > (uint64_t)st.st_size || !fy_frame_is_stream(h.type))
            break;
        if (h.type != FY_FT_DATA && (rc = mark(w, fd, base, off, &h, st.st_mtim.tv_sec)) != 0)
            break;
        if (!c->first_seq)
            c->first_seq = h.seq;
        c->next_seq = h.seq + 1;
        off += FY_FRAME_HDR_SIZE + h.len;
    }
    close(fd);
    return rc < 0 ? rc : 0;
}

static void mark_deleted(fy_cat *c, const tomb *t, size_t nt)
{
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < nt; j++)
            if (c->f[i].seq_first == t[j].first && c->f[i].seq_last == t[j].last)
                c->f[i].deleted = true;
}

int fy_cat_scan(const char *dir, fy_cat *c)
{
    uint64_t *bases = NULL;
    size_t nb = 0, nt = 0;
    tomb *t = NULL;
    walk w = {.c = c};
    int rc;

    memset(c, 0, sizeof *c);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    if ((rc = fy__seg_list(dfd, FY__SEG_LOG, &bases, &nb)) < 0)
        goto out;
    for (size_t i = 0; i < nb && rc >= 0; i++)
        rc = walk_seg(&w, dfd, bases[i]);
    c->partial = w.in_file;
    if (rc >= 0 && (rc = tombs_load(dfd, &t, &nt)) == 0)
        mark_deleted(c, t, nt);
out:
    free(bases);
    free(t);
    close(dfd);
    if (rc < 0)
        fy_cat_free(c);
    return rc < 0 ? rc : 0;
}

void fy_cat_free(fy_cat *c)
{
    free(c->f);
    c->f = NULL;
    c->n = c->cap = 0;
}

const fy_cat_file *fy_cat_find(const fy_cat *c, const char *name, uint64_t seq)
{
    for (size_t i = c->n; i-- > 0;)
        if (!c->f[i].deleted && strcmp(c->f[i].name, name) == 0 &&
            (!seq || c->f[i].seq_first == seq))
            return &c->f[i];
    return NULL;
}

/* ---- channels ----------------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

int fy_cat_channels(const char *root, char (**names)[FY_NAME_MAX + 1], size_t *n)
{
    DIR *d = opendir(root);
    struct dirent *e;
    size_t cap = 0;

    *names = NULL;
    *n = 0;
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (fy_name_check(e->d_name, len) < 0 || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char (*nn)[FY_NAME_MAX + 1] = realloc(*names, cap * sizeof *nn);
            if (!nn) {
                closedir(d);
                free(*names);
                *names = NULL;
                *n = 0;
                return -ENOMEM;
            }
            *names = nn;
        }
        memcpy((*names)[(*n)++], e->d_name, len + 1);
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, name_cmp);
    return 0;
}

int fy_cat_remove_channel(const char *root, const char *name)
{
    static unsigned seq;
    char from[4600], to[4600];

    snprintf(from, sizeof from, "%s/%s", root, name);
    /* '.' starts no channel name: the renamed directory is never opened */
    snprintf(to, sizeof to, "%s/.rm-%s-%ld-%u", root, name, (long)getpid(),
             __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    if (rename(from, to) != 0)
        return -errno;
    DIR *d = opendir(to);
    if (!d)
        return -errno;
    int dfd = dirfd(d), rc = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            unlinkat(dfd, e->d_name, 0) != 0 && rc == 0)
            rc = -errno;
    closedir(d);
    if (rc == 0 && rmdir(to) != 0)
        rc = -errno;
    return rc;
}
