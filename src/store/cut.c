/*
 * cut.c - cut a closed channel's log back so that it ends before a seq
 * (fy_store_cut, include/ferry/store.h): what a cluster follower does when
 * its log holds frames its leader's history does not (docs/cluster.md,
 * "Followers").  The segment holding that seq is truncated at the frame's
 * header (and is the open, current segment again), every later segment
 * goes, data and index, and the segment's index is cut to its header:
 * recovery, which runs when the log is opened next, rebuilds it from the
 * data.  The channel is closed meanwhile (its writer closed it to cut), so
 * nothing else has these files open.  fy_store_restart empties such a log
 * to start at a later seq (a follower whose leader no longer holds what it
 * needs next starts again at the leader's first seq).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/store.h"
#include "store/seg.h"

typedef struct finder {
    uint64_t seq, off;
    bool found;
} finder;

static int at_seq(void *arg, const fy_idx_rec *r)
{
    finder *c = arg;

    if (r->seq != c->seq)
        return 0;
    c->off = r->off;
    c->found = true;
    return -ECANCELED; /* found: stop the scan */
}

/* Where frame seq begins in segment fd (base): *off, or 1 when the
 * segment ends at or before it (nothing to cut there). */
static int find(int fd, uint64_t base, uint64_t seq, size_t maxp, uint64_t *off)
{
    struct stat st;
    finder c = {.seq = seq};
    fy__seg_scan_res res;

    *off = FY__SEG_HDR_SIZE;
    if (seq == base)
        return 0;
    if (fstat(fd, &st) != 0)
        return -errno;
    int rc = fy__seg_scan(fd, base, FY__SEG_HDR_SIZE, (uint64_t)st.st_size, base, maxp, at_seq,
                          &c, &res);
    if (c.found) {
        *off = c.off;
        return 0;
    }
    return rc < 0 ? rc : 1;
}

/* Cut segment base of dirfd at off, open again; its index to the header. */
static int cut_seg(int dirfd, int fd, uint64_t base, uint64_t off)
{
    uint8_t hdr[FY__SEG_HDR_SIZE];

    fy__seg_hdr_encode_open(base, hdr);
    int rc = fy__seg_pwrite(fd, hdr, sizeof hdr, 0);
    if (rc == 0 && ftruncate(fd, (off_t)off) != 0)
        rc = -errno;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    int xfd = fy__seg_open(dirfd, FY__SEG_IDX, base, O_RDWR);
    if (rc == 0 && xfd >= 0 && ftruncate(xfd, FY__SEG_HDR_SIZE) != 0)
        rc = -errno;
    if (xfd >= 0)
        close(xfd);
    return rc;
}

static int drop_after(int dirfd, const uint64_t *bases, size_t n, size_t i)
{
    char name[FY__SEG_NAME_CAP];

    for (size_t j = n; j-- > i + 1;) { /* newest first: a crash midway leaves a prefix */
        fy__seg_name(bases[j], FY__SEG_LOG, name);
        if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
            return -errno;
        fy__seg_name(bases[j], FY__SEG_IDX, name);
        if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
            return -errno;
    }
    return 0;
}

int fy_store_cut(const char *dir, uint64_t seq, size_t max_payload)
{
    uint64_t *bases = NULL, off = 0;
    size_t n = 0, i;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1, rc;

    if (dirfd < 0)
        return -errno;
    rc = fy__seg_list(dirfd, FY__SEG_LOG, &bases, &n);
    for (i = n; rc == 0 && i-- > 0 && bases[i] > seq;)
        ;
    if (rc == 0 && (n == 0 || i >= n))
        rc = n == 0 ? 1 : -ERANGE; /* no log: nothing to cut; seq before it: cannot */
    if (rc == 0 && (fd = fy__seg_open(dirfd, FY__SEG_LOG, bases[i], O_RDWR)) < 0)
        rc = fd;
    if (rc == 0 && (rc = find(fd, bases[i], seq, max_payload ? max_payload : 1u << 20,
                              &off)) == 0)
        rc = cut_seg(dirfd, fd, bases[i], off);
    if (rc == 0 || (rc == 1 && i + 1 < n)) /* later segments hold frames past seq */
        rc = drop_after(dirfd, bases, n, i);
    if (rc == 0 && fsync(dirfd) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    close(dirfd);
    free(bases);
    return rc;
}

int fy_store_restart(const char *dir, uint64_t seq)
{
    uint64_t *bases = NULL;
    size_t n = 0;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (dirfd < 0)
        return -errno;
    if (seq == 0) {
        close(dirfd);
        return -EINVAL;
    }
    rc = fy__seg_list(dirfd, FY__SEG_LOG, &bases, &n);
    if (rc == 0)
        rc = drop_after(dirfd, bases, n, (size_t)-1); /* every segment */
    for (int kind = FY__SEG_LOG; rc == 0 && kind <= FY__SEG_IDX; kind++) {
        int fd = fy__seg_create(dirfd, kind, seq, false);
        if (fd < 0)
            rc = fd;
        else if (fsync(fd) != 0)
            rc = -errno;
        if (fd >= 0)
            close(fd);
    }
    if (rc == 0 && fsync(dirfd) != 0)
        rc = -errno;
    close(dirfd);
    free(bases);
    return rc;
}
