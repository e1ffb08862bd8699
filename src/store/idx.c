/*
 * idx.c - the indexer's half of a channel log (fy_idx): appends index
 * records and answers look-ups by sequence number.
 *
 * Owned by the channel's indexer actor.  Records of a segment are fixed-size
 * and consecutive, so record `seq` lives at (seq - base) * 32 past the file
 * header of the segment whose base is the largest one <= seq; the segment is
 * found by binary search in a small sorted array of bases, and a look-up is
 * one pread().  Appends are buffered and written in batches: the index can
 * always be rebuilt from the data, so losing the buffer in a crash costs
 * only a longer recovery scan, which the batch limits bound (PEND_RECS
 * records or PEND_BYTES of data they describe, whichever comes first).
 */
#include "store/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/err.h"
#include "store/seg.h"

#define PEND_RECS 256
#define RD_CACHE 8 /* older segments' index fds kept open for look-ups */
#define PEND_BYTES ((uint64_t)8 << 20)

struct fy_idx {
    int dirfd;
    uint64_t *bases; /* sorted; bases[nb-1] is the current segment */
    size_t nb, cap;
    int cur_fd;       /* index file of the current segment */
    struct {
        int fd; /* -1: free */
        uint64_t base;
    } rd[RD_CACHE];   /* older segments' index files, for look-ups */
    unsigned rd_next; /* the slot to reuse next (round robin) */
    uint64_t next_seq;   /* next record to append */
    uint64_t file_seq;   /* records below it are in cur_fd; the rest are pending */
    uint64_t pend_bytes; /* data bytes the pending records describe */
    size_t npend;
    fy_idx_rec pend[PEND_RECS];
    uint8_t wbuf[PEND_RECS * FY__IDX_REC_SIZE];
};

int fy__idx_new(int dirfd, int fd, const uint64_t *bases, size_t n, uint64_t next_seq,
                fy_idx **out)
{
    fy_idx *x = calloc(1, sizeof *x);

    if (!x || !(x->bases = malloc((n + 4) * sizeof *bases))) {
        free(x);
        return -ENOMEM;
    }
    memcpy(x->bases, bases, n * sizeof *bases);
    x->nb = n;
    x->cap = n + 4;
    x->dirfd = dirfd;
    x->cur_fd = fd;
    for (int i = 0; i < RD_CACHE; i++)
        x->rd[i].fd = -1;
    x->next_seq = x->file_seq = next_seq;
    *out = x;
    return 0;
}

static uint64_t cur_base(const fy_idx *x)
{
    return x->bases[x->nb - 1];
}

uint64_t fy_idx_next_seq(const fy_idx *x)
{
    return x->next_seq;
}

uint64_t fy_idx_first_seq(const fy_idx *x)
{
    return x->bases[0];
}

int fy_idx_flush(fy_idx *x)
{
    if (x->npend == 0)
        return 0;
    for (size_t i = 0; i < x->npend; i++)
        fy__seg_rec_encode(&x->pend[i], x->wbuf + i * FY__IDX_REC_SIZE);
    uint64_t off = FY__SEG_HDR_SIZE + (x->file_seq - cur_base(x)) * FY__IDX_REC_SIZE;
    int rc = fy__seg_pwrite(x->cur_fd, x->wbuf, x->npend * FY__IDX_REC_SIZE, off);
    if (rc < 0)
        return rc;
    x->file_seq += x->npend;
    x->npend = 0;
    x->pend_bytes = 0;
    return 0;
}

/* Move to the index file of a new segment starting at base.  The old file
 * is synced so every index but the last is whole on disk, as its data is. */
static int roll(fy_idx *x, uint64_t base)
{
    int rc = fy_idx_flush(x);
    if (rc < 0)
        return rc;
    if (fdatasync(x->cur_fd) != 0)
        return -errno;
    if (x->nb == x->cap) {
        uint64_t *nbs = realloc(x->bases, x->cap * 2 * sizeof *nbs);
        if (!nbs)
            return -ENOMEM;
        x->bases = nbs;
        x->cap *= 2;
    }
    /* An index is derived data: a stale file of that name is overwritten. */
    int fd = fy__seg_create(x->dirfd, FY__SEG_IDX, base, false);
    if (fd < 0)
        return fd;
    close(x->cur_fd);
    x->cur_fd = fd;
    x->bases[x->nb++] = base;
    x->file_seq = base;
    return 0;
}

int fy_idx_append(fy_idx *x, const fy_idx_rec *recs, size_t n)
{
    int rc;

    /* Check the whole batch first so a bad one appends nothing. */
    for (size_t i = 0; i < n; i++) {
        uint64_t seg = i ? recs[i - 1].seg : cur_base(x);
        if (recs[i].seq != x->next_seq + i)
            return -FY_ESEQ;
        if (recs[i].seg < seg || (recs[i].seg > seg && (recs[i].seg != recs[i].seq ||
                                                        recs[i].off != FY__SEG_HDR_SIZE)))
            return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (recs[i].seg != cur_base(x) && (rc = roll(x, recs[i].seg)) < 0)
            return rc;
        /* The buffer is full only when a flush failed: take no more. */
        if (x->npend == PEND_RECS && (rc = fy_idx_flush(x)) < 0)
            return rc;
        x->pend[x->npend++] = recs[i];
        x->pend_bytes += recs[i].len;
        x->next_seq++;
        /* A failed write keeps the records pending (look-ups still find
         * them); the next append, flush or sync tries again. */
        if (x->npend == PEND_RECS || x->pend_bytes >= PEND_BYTES)
            (void)fy_idx_flush(x);
    }
    return 0;
}

/* The index fd of segment base: the current one or a cached older one. */
static int seg_fd(fy_idx *x, uint64_t base)
{
    if (base == cur_base(x))
        return x->cur_fd;
    for (int i = 0; i < RD_CACHE; i++)
        if (x->rd[i].fd >= 0 && x->rd[i].base == base)
            return x->rd[i].fd;
    int fd = fy__seg_open(x->dirfd, FY__SEG_IDX, base, O_RDONLY);
    if (fd < 0)
        return fd == -ENOENT ? -FY_ENOSEQ : fd;
    unsigned k = x->rd_next++ % RD_CACHE;
    if (x->rd[k].fd >= 0)
        close(x->rd[k].fd);
    x->rd[k].fd = fd;
    x->rd[k].base = base;
    return fd;
}

/* Forget a cached fd of segment base (its file is going away). */
static void rd_drop(fy_idx *x, uint64_t base)
{
    for (int i = 0; i < RD_CACHE; i++)
        if (x->rd[i].fd >= 0 && x->rd[i].base == base) {
            close(x->rd[i].fd);
            x->rd[i].fd = -1;
        }
}

int fy_idx_lookup(fy_idx *x, uint64_t seq, fy_idx_rec *out)
{
    if (seq < x->bases[0] || seq >= x->next_seq)
        return -FY_ENOSEQ;
    if (seq >= x->file_seq) {
        *out = x->pend[seq - x->file_seq];
        return 0;
    }
    size_t lo = 0, hi = x->nb; /* find the last base <= seq */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->bases[mid] <= seq)
            lo = mid;
        else
            hi = mid;
    }
    uint64_t base = x->bases[lo];
    int fd = seg_fd(x, base);
    if (fd < 0)
        return fd;
    uint8_t b[FY__IDX_REC_SIZE];
    ssize_t r = fy__seg_pread(fd, b, sizeof b, FY__SEG_HDR_SIZE + (seq - base) * FY__IDX_REC_SIZE);
    if (r < 0)
        return (int)r;
    if ((size_t)r < sizeof b || fy__seg_rec_decode(b, base, out) < 0 || out->seq != seq)
        return -FY_ECORRUPT;
    return 0;
}

int fy_idx_trim(fy_idx *x, uint64_t first_seq)
{
    int removed = 0;

    while (x->nb > 1 && x->bases[1] <= first_seq) {
        char name[FY__SEG_NAME_CAP];
        rd_drop(x, x->bases[0]);
        fy__seg_name(x->bases[0], FY__SEG_IDX, name);
        if (unlinkat(x->dirfd, name, 0) != 0 && errno != ENOENT)
            return -errno;
        memmove(x->bases, x->bases + 1, (x->nb - 1) * sizeof *x->bases);
        x->nb--;
        removed++;
    }
    return removed;
}

int fy_idx_sync(fy_idx *x)
{
    int rc = fy_idx_flush(x);
    if (rc < 0)
        return rc;
    return fdatasync(x->cur_fd) == 0 ? 0 : -errno;
}

void fy_idx_close(fy_idx *x)
{
    if (!x)
        return;
    fy_idx_flush(x);
    close(x->cur_fd);
    for (int i = 0; i < RD_CACHE; i++)
        rd_drop(x, x->rd[i].base);
    close(x->dirfd);
    free(x->bases);
    free(x);
}
