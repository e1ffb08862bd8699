/*
 * store.c - opening a channel log (fy_store_open: recovery) and checking
 * one offline (fy_store_check).
 *
 * Recovery is bounded by what can be damaged, not by the channel's size.
 * A sealed segment (its header's open flag cleared after an fdatasync, see
 * seg.h) is wholly on disk, so each gets an O(1) check: file headers, the
 * index's last record against the data size, the next segment's base, and
 * the header of the frame that record points at.  Only when that fails is
 * the segment scanned (and a bad frame there is -FY_ECORRUPT: it cannot be
 * a torn write, and cutting it would silently drop every later segment).
 * A segment before the last that is still open (power was lost between the
 * roll and its seal on the sync worker) is recovered like the last one;
 * if it was cut, the later segments are dropped (recover_segs).
 * The last segment may be torn: its index records are checked for their
 * own CRC and for forming a chain (seq = base + i, each frame right after
 * the previous one, inside the data); the last record of the good prefix
 * is verified against its frame (stepping back, with doubling steps, while
 * that fails); then the data is scanned forward from there and the first
 * torn or corrupt frame is cut.  So recovery reads the frames beyond the
 * index plus one frame, and index records of the last segment only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/analyzer.h"
#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/store.h"
#include "store/idx.h"
#include "store/log.h"
#include "store/seg.h"

#define REC_CHUNK 256
#define BASE_MAX ((uint64_t)1 << 62) /* far beyond any real channel; keeps seq math exact */

/* ==== index rebuilding ==================================================== */

/* Rewrites an index file from records found in the data, leaving records
 * that already match alone and counting the ones it replaces. */
typedef struct rebuild {
    int fd;
    uint64_t old_n; /* whole records the file held before */
    uint64_t start; /* record number of nb[0] */
    size_t nbuf;
    fy_recovery *rep;
    bool changed;
    uint8_t nb[REC_CHUNK * FY__IDX_REC_SIZE];
    uint8_t ob[REC_CHUNK * FY__IDX_REC_SIZE];
} rebuild;

static int rb_flush(rebuild *rb)
{
    size_t m = rb->nbuf, o = 0;
    bool dirty = false;

    if (m == 0)
        return 0;
    if (rb->old_n > rb->start) {
        o = rb->old_n - rb->start < m ? (size_t)(rb->old_n - rb->start) : m;
        ssize_t r = fy__seg_pread(rb->fd, rb->ob, o * FY__IDX_REC_SIZE,
                                  FY__SEG_HDR_SIZE + rb->start * FY__IDX_REC_SIZE);
        if (r < 0)
            return (int)r;
        o = (size_t)r / FY__IDX_REC_SIZE;
    }
    for (size_t i = 0; i < m; i++) {
        if (i < o && memcmp(rb->nb + i * FY__IDX_REC_SIZE, rb->ob + i * FY__IDX_REC_SIZE,
                            FY__IDX_REC_SIZE) == 0)
            continue;
        rb->rep->index_dropped += i < o;
        rb->rep->index_added++;
        dirty = true;
    }
    if (dirty) {
        int rc = fy__seg_pwrite(rb->fd, rb->nb, m * FY__IDX_REC_SIZE,
                                FY__SEG_HDR_SIZE + rb->start * FY__IDX_REC_SIZE);
        if (rc < 0)
            return rc;
        rb->changed = true;
    }
    rb->start += m;
    rb->nbuf = 0;
    return 0;
}

static int rb_add(void *arg, const fy_idx_rec *r)
{
    rebuild *rb = arg;

    fy__seg_rec_encode(r, rb->nb + rb->nbuf++ * FY__IDX_REC_SIZE);
    return rb->nbuf == REC_CHUNK ? rb_flush(rb) : 0;
}

/* Write what is left and cut the file after the last rebuilt record. */
static int rb_finish(rebuild *rb)
{
    struct stat st;
    int rc = rb_flush(rb);

    if (rc < 0)
        return rc;
    if (rb->old_n > rb->start)
        rb->rep->index_dropped += rb->old_n - rb->start;
    uint64_t size = FY__SEG_HDR_SIZE + rb->start * FY__IDX_REC_SIZE;
    if (fstat(rb->fd, &st) != 0)
        return -errno;
    if ((uint64_t)st.st_size != size) {
        if (ftruncate(rb->fd, (off_t)size) != 0)
            return -errno;
        rb->changed = true;
    }
    return 0;
}

/* Make sure idx file fd starts with a good header.  Returns the number of
 * whole records it holds (0 after rewriting a bad header; the records it
 * had are counted as dropped) or -errno.  *partial: a torn record follows. */
static int64_t idx_prepare(int fd, uint64_t base, fy_recovery *rep, bool *partial, bool *changed)
{
    uint8_t hb[FY__SEG_HDR_SIZE];
    struct stat st;

    *partial = false;
    if (fstat(fd, &st) != 0)
        return -errno;
    uint64_t size = (uint64_t)st.st_size;
    ssize_t n = fy__seg_pread(fd, hb, sizeof hb, 0);
    if (n < 0)
        return n;
    if ((size_t)n == sizeof hb && fy__seg_hdr_check(FY__SEG_IDX, base, hb) == 0) {
        *partial = (size - FY__SEG_HDR_SIZE) % FY__IDX_REC_SIZE != 0;
        rep->index_dropped += *partial;
        return (int64_t)((size - FY__SEG_HDR_SIZE) / FY__IDX_REC_SIZE);
    }
    if (size > FY__SEG_HDR_SIZE)
        rep->index_dropped += (size - FY__SEG_HDR_SIZE + FY__IDX_REC_SIZE - 1) / FY__IDX_REC_SIZE;
    fy__seg_hdr_encode(FY__SEG_IDX, base, hb);
    int rc = fy__seg_pwrite(fd, hb, sizeof hb, 0);
    if (rc < 0)
        return rc;
    if (ftruncate(fd, FY__SEG_HDR_SIZE) != 0)
        return -errno;
    *changed = true;
    return 0;
}

static int read_rec(int fd, uint64_t base, uint64_t i, fy_idx_rec *r)
{
    uint8_t b[FY__IDX_REC_SIZE];
    ssize_t n = fy__seg_pread(fd, b, sizeof b, FY__SEG_HDR_SIZE + i * FY__IDX_REC_SIZE);
    if (n < 0)
        return (int)n;
    if ((size_t)n < sizeof b || fy__seg_rec_decode(b, base, r) < 0)
        return -FY_ECORRUPT;
    return 0;
}

/* ==== segments before the last ============================================ */

/* O(1) when the index agrees with the data; otherwise rebuild its index
 * from a full scan, which must find whole frames ending exactly at the
 * data's end and at next_base - 1. */
static int check_sealed(int dirfd, uint64_t base, uint64_t next_base, size_t maxp,
                        fy_recovery *rep, uint64_t *bytes)
{
    uint8_t hb[FY__SEG_HDR_SIZE];
    struct stat st;
    int rc, xfd = -1, lfd = fy__seg_open(dirfd, FY__SEG_LOG, base, O_RDONLY);

    if (lfd < 0)
        return lfd;
    if (fstat(lfd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    uint64_t D = (uint64_t)st.st_size;
    *bytes = D;
    ssize_t n = fy__seg_pread(lfd, hb, sizeof hb, 0);
    if (n < 0 || (size_t)n < sizeof hb || fy__seg_hdr_check(FY__SEG_LOG, base, hb) < 0) {
        rc = n < 0 ? (int)n : -FY_ECORRUPT;
        goto out;
    }
    xfd = fy__seg_open(dirfd, FY__SEG_IDX, base, O_RDWR | O_CREAT);
    if (xfd < 0) {
        rc = xfd;
        goto out;
    }
    bool partial, changed = false;
    int64_t nrec = idx_prepare(xfd, base, rep, &partial, &changed);
    if (nrec < 0) {
        rc = (int)nrec;
        goto out;
    }
    fy_idx_rec last;
    if (nrec > 0 && !partial && read_rec(xfd, base, (uint64_t)nrec - 1, &last) == 0 &&
        last.seq == base + (uint64_t)nrec - 1 && last.seq + 1 == next_base &&
        last.off + last.len == D &&
        fy__seg_verify(lfd, &last, maxp, false, &rep->scanned_bytes) == 0) {
        rc = 0;
        goto out;
    }
    rebuild *rb = calloc(1, sizeof *rb);
    if (!rb) {
        rc = -ENOMEM;
        goto out;
    }
    *rb = (rebuild){.fd = xfd, .old_n = (uint64_t)nrec, .rep = rep};
    fy__seg_scan_res res;
    rc = fy__seg_scan(lfd, base, FY__SEG_HDR_SIZE, D, base, maxp, rb_add, rb, &res);
    rep->scanned_bytes += res.read_bytes;
    if (rc == 0 && (res.stop != 0 || res.end_off != D || res.next_seq != next_base))
        rc = -FY_ECORRUPT;
    if (rc == 0)
        rc = rb_finish(rb);
    if (rc == 0 && fdatasync(xfd) != 0)
        rc = -errno;
    free(rb);
out:
    if (xfd >= 0)
        close(xfd);
    close(lfd);
    return rc;
}

/* ==== the last segment ===================================================== */

/* Length of the good prefix of the index: records that pass their own
 * check and chain from the file header through the data. */
static int64_t chain_len(int fd, uint64_t base, uint64_t nrec, uint64_t D, size_t maxp)
{
    uint8_t b[REC_CHUNK * FY__IDX_REC_SIZE];
    uint64_t expect = FY__SEG_HDR_SIZE;

    for (uint64_t i = 0; i < nrec; i += REC_CHUNK) {
        size_t m = nrec - i < REC_CHUNK ? (size_t)(nrec - i) : REC_CHUNK;
        ssize_t n = fy__seg_pread(fd, b, m * FY__IDX_REC_SIZE, FY__SEG_HDR_SIZE + i * FY__IDX_REC_SIZE);
        if (n < 0)
            return n;
        m = (size_t)n / FY__IDX_REC_SIZE;
        for (size_t j = 0; j < m; j++) {
            fy_idx_rec r;
            if (fy__seg_rec_decode(b + j * FY__IDX_REC_SIZE, base, &r) < 0 || r.seq != base + i + j ||
                r.off != expect || r.len < FY_FRAME_HDR_SIZE || r.len > FY_FRAME_HDR_SIZE + maxp ||
                r.off + r.len > D)
                return (int64_t)(i + j);
            expect += r.len;
        }
        if (m < REC_CHUNK && i + m < nrec)
            return (int64_t)(i + m);
    }
    return (int64_t)nrec;
}

/* How many leading records are trusted, after verifying the last one's
 * frame (payload CRC included) and stepping back while that fails.  *start
 * is where the data after them begins. */
static int64_t trusted_prefix(int lfd, int xfd, uint64_t base, uint64_t k, size_t maxp,
                              fy_recovery *rep, uint64_t *start)
{
    uint64_t cand = k, step = 1;

    *start = FY__SEG_HDR_SIZE;
    while (cand > 0) {
        fy_idx_rec r;
        int rc = read_rec(xfd, base, cand - 1, &r);
        if (rc == 0)
            rc = fy__seg_verify(lfd, &r, maxp, true, &rep->scanned_bytes);
        if (rc == 0) {
            *start = r.off + r.len;
            return (int64_t)cand;
        }
        if (rc != -FY_ECORRUPT)
            return rc;
        cand = cand > step ? cand - step : 0;
        step *= 2;
    }
    return 0;
}

/* A segment file shorter than its header, or whose header is all zeros (a
 * crash right after creating it), holds nothing: it is started again. */
static int log_prepare(int lfd, uint64_t base, fy_recovery *rep, uint64_t *D, bool *changed)
{
    uint8_t hb[FY__SEG_HDR_SIZE], zero[FY__SEG_HDR_SIZE] = {0};
    struct stat st;

    if (fstat(lfd, &st) != 0)
        return -errno;
    *D = (uint64_t)st.st_size;
    ssize_t n = fy__seg_pread(lfd, hb, sizeof hb, 0);
    if (n < 0)
        return (int)n;
    if ((size_t)n == sizeof hb && memcmp(hb, zero, sizeof hb) != 0) {
        int hs = fy__seg_hdr_check(FY__SEG_LOG, base, hb);
        if (hs != 0)
            return hs < 0 ? hs : 0;
        /* Sealed (a log from before the flag): it is about to be appended
         * to again, so it must say open before any new byte is on disk. */
        fy__seg_hdr_encode_open(base, hb);
        *changed = true;
        return fy__seg_pwrite(lfd, hb, sizeof hb, 0);
    }
    rep->truncated_bytes += *D;
    if (ftruncate(lfd, 0) != 0)
        return -errno;
    fy__seg_hdr_encode(FY__SEG_LOG, base, hb);
    int rc = fy__seg_pwrite(lfd, hb, sizeof hb, 0);
    *D = FY__SEG_HDR_SIZE;
    *changed = true;
    return rc;
}

static int recover_last(int dirfd, uint64_t base, size_t maxp, fy_recovery *rep, int *lfd_out,
                        int *xfd_out, uint64_t *end, uint64_t *next)
{
    bool changed = false, partial;
    uint64_t D = 0, start = FY__SEG_HDR_SIZE;
    rebuild *rb = NULL;
    int rc, xfd = -1, lfd = fy__seg_open(dirfd, FY__SEG_LOG, base, O_RDWR);

    if (lfd < 0)
        return lfd;
    if ((rc = log_prepare(lfd, base, rep, &D, &changed)) < 0)
        goto fail;
    xfd = fy__seg_open(dirfd, FY__SEG_IDX, base, O_RDWR | O_CREAT);
    if (xfd < 0) {
        rc = xfd;
        goto fail;
    }
    int64_t nrec = idx_prepare(xfd, base, rep, &partial, &changed);
    int64_t k = nrec < 0 ? nrec : chain_len(xfd, base, (uint64_t)nrec, D, maxp);
    if (k >= 0)
        k = trusted_prefix(lfd, xfd, base, (uint64_t)k, maxp, rep, &start);
    if (k < 0) {
        rc = (int)k;
        goto fail;
    }
    if (!(rb = calloc(1, sizeof *rb))) {
        rc = -ENOMEM;
        goto fail;
    }
    *rb = (rebuild){.fd = xfd, .old_n = (uint64_t)nrec, .start = (uint64_t)k, .rep = rep};
    fy__seg_scan_res res;
    rc = fy__seg_scan(lfd, base, start, D, base + (uint64_t)k, maxp, rb_add, rb, &res);
    rep->scanned_bytes += res.read_bytes;
    if (rc < 0)
        goto fail;
    if (res.end_off < D) {
        if (ftruncate(lfd, (off_t)res.end_off) != 0) {
            rc = -errno;
            goto fail;
        }
        rep->truncated_bytes += D - res.end_off;
        changed = true;
    }
    if ((rc = rb_finish(rb)) < 0)
        goto fail;
    /* What recovery decided must be on disk before anything is appended,
     * and so must what it found: after a kill -9 the pages a write-behind
     * writer left may not be, and the log counts them durable from here. */
    if (fdatasync(lfd) != 0 || ((changed || rb->changed) && fdatasync(xfd) != 0)) {
        rc = -errno;
        goto fail;
    }
    free(rb);
    *lfd_out = lfd;
    *xfd_out = xfd;
    *end = res.end_off;
    *next = res.next_seq;
    return 0;
fail:
    free(rb);
    if (xfd >= 0)
        close(xfd);
    close(lfd);
    return rc;
}

/* ==== open segments ======================================================== */

/* Is segment base still open (its seal never ran)?  A header that cannot be
 * read counts as sealed here: check_sealed reports it. */
static bool seg_open(int dirfd, uint64_t base)
{
    uint8_t hb[FY__SEG_HDR_SIZE];
    int fd = fy__seg_open(dirfd, FY__SEG_LOG, base, O_RDONLY);

    if (fd < 0)
        return false;
    ssize_t n = fy__seg_pread(fd, hb, sizeof hb, 0);
    close(fd);
    return n == (ssize_t)sizeof hb && fy__seg_hdr_check(FY__SEG_LOG, base, hb) == 1;
}

/* Remove segments bases[0..n) with their index files, newest first (a
 * crash half way leaves an open segment that is still short, so the next
 * open drops the rest again), then make the removals durable. */
static int drop_segs(int dirfd, const uint64_t *bases, size_t n)
{
    for (size_t i = n; i-- > 0;)
        for (int k = FY__SEG_IDX; k >= FY__SEG_LOG; k--) {
            char name[FY__SEG_NAME_CAP];
            fy__seg_name(bases[i], k, name);
            if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
                return -errno;
        }
    return fsync(dirfd) == 0 ? 0 : -errno;
}

static uint64_t later_size(int dirfd, uint64_t base)
{
    char name[FY__SEG_NAME_CAP];
    struct stat st;

    fy__seg_name(base, FY__SEG_LOG, name);
    return fstatat(dirfd, name, &st, 0) == 0 ? (uint64_t)st.st_size : 0;
}

/* Every segment in order.  A sealed one gets the O(1) check; an open one
 * that is not the last (the writer rolled away from it, and power was lost
 * before the sync worker sealed it) is recovered like the last: cut at its
 * first bad frame.  If it then does not run up to the next segment's base,
 * every later segment is dropped -- they held nothing acknowledged, since
 * durability advances in order -- and it becomes the last; if it does, it
 * is sealed now.  A sealed segment with a bad frame stays -FY_ECORRUPT.
 * The last segment's fds, end and next seq are returned; *n may shrink. */
static int recover_segs(int dirfd, const uint64_t *logs, size_t *n, size_t maxp, fy_recovery *rep,
                        fy__log_seg *segs, int *lfd, int *xfd, uint64_t *end, uint64_t *next)
{
    for (size_t i = 0; i < *n; i++) {
        bool last = i + 1 == *n;
        int rc;
        segs[i].base = logs[i];
        if (!last && !seg_open(dirfd, logs[i])) {
            if ((rc = check_sealed(dirfd, logs[i], logs[i + 1], maxp, rep, &segs[i].bytes)) < 0)
                return rc;
            continue;
        }
        if ((rc = recover_last(dirfd, logs[i], maxp, rep, lfd, xfd, end, next)) < 0)
            return rc;
        segs[i].bytes = *end;
        if (last)
            return 0;
        if (*next == logs[i + 1]) {
            rc = fy__seg_seal(*lfd, logs[i]);
            close(*lfd);
            close(*xfd);
            *lfd = *xfd = -1;
            if (rc < 0)
                return rc;
            continue;
        }
        rep->segments_dropped += *n - i - 1;
        for (size_t j = i + 1; j < *n; j++)
            rep->truncated_bytes += later_size(dirfd, logs[j]);
        rc = drop_segs(dirfd, logs + i + 1, *n - i - 1);
        *n = i + 1;
        return rc;
    }
    return -EINVAL; /* not reached: the last segment returns */
}

/* ==== fy_store_open ======================================================== */

static int norm_opts(const fy_store_opts *in, fy_store_opts *o)
{
    *o = in ? *in : (fy_store_opts){0};
    if (!o->segment_bytes)
        o->segment_bytes = FY__SEG_BYTES_DEFAULT;
    if (!o->max_payload)
        o->max_payload = FY_PAYLOAD_MAX_DEFAULT;
    return o->max_payload > FY_PAYLOAD_MAX_LIMIT ? -EINVAL : 0;
}

/* Index files without a data segment are left over from retention (the
 * log half removes data first) and are removed. */
static int drop_orphans(int dirfd, const uint64_t *logs, size_t nl)
{
    uint64_t *idx;
    size_t ni, j = 0;
    int rc = fy__seg_list(dirfd, FY__SEG_IDX, &idx, &ni);

    for (size_t i = 0; rc == 0 && i < ni; i++) {
        while (j < nl && logs[j] < idx[i])
            j++;
        if (j < nl && logs[j] == idx[i])
            continue;
        char name[FY__SEG_NAME_CAP];
        fy__seg_name(idx[i], FY__SEG_IDX, name);
        if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
            rc = -errno;
    }
    free(idx);
    return rc;
}

/* List the data segments, creating the first one of a new channel. */
static int list_logs(int dirfd, uint64_t **logs, size_t *n)
{
    int rc = fy__seg_list(dirfd, FY__SEG_LOG, logs, n);

    if (rc < 0)
        return rc;
    for (size_t i = 0; i < *n; i++)
        if ((*logs)[i] == 0 || (*logs)[i] > BASE_MAX)
            return -FY_ECORRUPT;
    if (*n > 0)
        return 0;
    if (!(*logs = malloc(sizeof **logs)))
        return -ENOMEM;
    int fd = fy__seg_create(dirfd, FY__SEG_LOG, 1, true);
    if (fd < 0)
        return fd;
    close(fd);
    (*logs)[0] = 1;
    *n = 1;
    return fsync(dirfd) == 0 ? 0 : -errno;
}

int fy_store_open(const char *dir, const fy_store_opts *opts, fy_log **log, fy_idx **idx,
                  fy_recovery *rep)
{
    fy_recovery dummy;
    fy_store_opts o;
    uint64_t *logs = NULL, end = 0, next = 0;
    fy__log_seg *segs = NULL;
    size_t n = 0;
    int lfd = -1, xfd = -1, d1 = -1, d2 = -1, rc;

    rep = rep ? rep : &dummy;
    memset(rep, 0, sizeof *rep);
    *log = NULL;
    *idx = NULL;
    if ((rc = norm_opts(opts, &o)) < 0)
        return rc;
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return -errno;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -errno;
    if ((rc = list_logs(dirfd, &logs, &n)) < 0 || (rc = drop_orphans(dirfd, logs, n)) < 0)
        goto out;
    /* False positive: list_logs makes the first log in an empty directory. */
    FY_ANALYZER_ASSUME(n > 0);
    if (!(segs = calloc(n, sizeof *segs))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = recover_segs(dirfd, logs, &n, o.max_payload, rep, segs, &lfd, &xfd, &end, &next)) < 0)
        goto out;
    segs[n - 1] = (fy__log_seg){.base = logs[n - 1], .bytes = end};
    if (fsync(dirfd) != 0) { /* the last segment's name, likewise */
        rc = -errno;
        goto out;
    }
    if ((d1 = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) < 0 || (d2 = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = fy__log_new(d1, &o, lfd, segs, n, next, log)) < 0)
        goto out;
    d1 = lfd = -1;
    if ((rc = fy__idx_new(d2, xfd, logs, n, next, idx)) < 0) {
        fy_log_close(*log);
        *log = NULL;
        goto out;
    }
    d2 = xfd = -1;
    rep->segments = n;
    rep->first_seq = logs[0];
    rep->next_seq = next;
    rep->frames = next - logs[0];
out:
    if (d1 >= 0)
        close(d1);
    if (d2 >= 0)
        close(d2);
    if (lfd >= 0)
        close(lfd);
    if (xfd >= 0)
        close(xfd);
    close(dirfd);
    free(segs);
    free(logs);
    return rc;
}
