/*
 * log.c - the writer's half of a channel log (fy_log): appends frames to
 * the current data segment, rolls segments, syncs, and applies retention.
 *
 * Owned by the channel's file-writer actor; nothing in here is shared with
 * another thread except what it queues on the sync worker (syncer.c), which
 * gets its own fds.  A segment is created open (a flag in its header) and
 * sealed once it is wholly on disk: with a sync worker (write-behind, the
 * relay) the roll opens the new segment at once and the worker seals the
 * old one and fsyncs the directory; without one the roll does that itself.
 * Recovery trusts a sealed segment and repairs an open one (store.c).
 *
 * Durability is tracked in bytes appended since open (and the seq they
 * end at): the worker reports, in order, up to where each job made the
 * log durable, and the owner passes that to fy_log_synced.  A failed sync
 * fails the log: after a failed fdatasync the kernel may have dropped the
 * dirty pages, so retrying it could report data durable that is not; the
 * owner cuts it back to its durable end (fy_log_rewind) and closes it.
 *
 * Appends go through the page cache by default (fy_store_opts.buffered,
 * ferryd's --write-mode buffered): with write-behind the writer must not
 * wait for the device, and on the 2026-12-06 disk that measured faster
 * (docs/architecture.md, "Write-behind").  Direct appends (--write-mode
 * direct) were the default before: copying a batch into the page cache was
 * half of ferryd's CPU at one receiver: each append lands in pages the
 * kernel has to find, fill and later write back, at 0.4-1.3 GB/s on this
 * machine, against 14 GB/s for a copy between warm buffers and 1.7-2.6 GB/s
 * for O_DIRECT writes that cost 0.1 s of CPU per GiB
 * (docs/benchmarks.md, "Where the copies go").  So the frames are copied
 * into one aligned staging buffer, whole DIRECT_ALIGN blocks go to the
 * disk with O_DIRECT from there, and the last partial block is written
 * through the page cache (and kept in the staging buffer, where the next
 * append continues it), so the file always ends exactly at the last frame
 * and readers -- sendfile, recovery, `ferry check` -- see a normal file.
 * The kernel writes back and drops that one cached block before the next
 * direct write covers it.  Appends under DIRECT_MIN_RUN, and all appends
 * where O_DIRECT is refused (some filesystems) or --write-mode buffered
 * asks, go to the file with pwritev, as few calls as the segment boundary
 * and IOV_MAX allow.
 */
#include "store/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "store/catalog.h"
#include "store/seg.h"
#include "store/syncer.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define DIRECT_ALIGN 4096u         /* buffer, offset and length of every direct write */
#define STAGE_CAP (1u << 20)       /* staging buffer, allocated at the first direct append */
/* Smaller appends go through the page cache: a direct write waits for the
 * disk, and a stream of small batches (128-byte frames) paid that wait per
 * batch and measured 8 % slower than buffered. */
#define DIRECT_MIN_RUN (256u << 10)
/* Page cache.  Write-behind appends go through the page cache, and keeping
 * every byte ever stored there cost a 4 GiB 1 -> 1 run 40 % of its rate on
 * this machine (336-348 MB/s, against 559-594 when the sync worker drops
 * what it has synced but the last CACHE_KEEP bytes; the old direct appends:
 * 406-437).  So after each sync the worker drops the segment's clean pages
 * except the last CACHE_KEEP bytes, which late joiners near the live edge
 * read. */
#define CACHE_KEEP ((uint64_t)64 << 20)

struct fy_log {
    int dirfd;
    int fd;         /* current segment, O_RDWR */
    int dfd;        /* the same file opened O_DIRECT, or -1: appends go through fd */
    uint8_t *stage; /* DIRECT_ALIGN-aligned; [0, tail) = the segment's last partial block */
    size_t tail;
    bool tail_ok;   /* stage holds it (else it is read from the file first) */
    bool direct_off; /* O_DIRECT refused or not wanted: buffered appends */
    fy_store_opts o;
    uint64_t next_seq;
    fy__log_seg *segs; /* oldest first; segs[nsegs-1] is current, .bytes = its end */
    size_t nsegs, cap;
    /* write-behind (fy_log_set_syncer) */
    fy_syncer *sync;
    fy_log_synced_fn done;
    void *done_arg;
    uint64_t bytes;         /* appended since open */
    uint64_t queued;        /* bytes the last queued job covers */
    uint64_t durable, durable_seq;
    int failed;             /* a sync failed: that error, for good */
    atomic_int job_err;     /* set by the worker when a job failed (syncer.h) */
    struct iovec iov[IOV_MAX];
};

static fy__log_seg *cur(const fy_log *l)
{
    return &l->segs[l->nsegs - 1];
}

static void direct_close(fy_log *l)
{
    if (l->dfd >= 0)
        close(l->dfd);
    l->dfd = -1;
}

/* Load the last partial block of the current segment, which ends at end,
 * into the staging buffer. */
static int load_tail(fy_log *l, uint64_t end)
{
    size_t t = (size_t)(end % DIRECT_ALIGN);
    ssize_t n = t ? pread(l->fd, l->stage, t, (off_t)(end - t)) : 0;

    if (n != (ssize_t)t)
        return n < 0 ? -errno : -EIO;
    l->tail = t;
    return 0;
}

/* Open the current segment for direct appends too.  Any failure (a
 * filesystem without O_DIRECT: EINVAL) leaves appends buffered, which is
 * correct, only dearer. */
static void direct_open(fy_log *l)
{
    char name[FY__SEG_NAME_CAP];

    direct_close(l);
    l->tail_ok = false;
    if (l->direct_off)
        return;
    fy__seg_name(cur(l)->base, FY__SEG_LOG, name);
    l->dfd = openat(l->dirfd, name, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (l->dfd < 0)
        l->direct_off = true;
}

/* The staging buffer, holding the current last partial block.  A channel
 * that only ever gets small batches never allocates it. */
static int stage_ready(fy_log *l)
{
    void *p;

    if (!l->stage) {
        if (posix_memalign(&p, DIRECT_ALIGN, STAGE_CAP) != 0)
            return -ENOMEM;
        l->stage = p;
    }
    if (!l->tail_ok) {
        int rc = load_tail(l, cur(l)->bytes);
        if (rc < 0)
            return rc;
        l->tail_ok = true;
    }
    return 0;
}

bool fy_log_direct(const fy_log *l, uint64_t bytes)
{
    return l->dfd >= 0 && bytes >= DIRECT_MIN_RUN;
}

int fy__log_new(int dirfd, const fy_store_opts *o, int fd, const fy__log_seg *segs, size_t n,
                uint64_t next_seq, fy_log **out)
{
    fy_log *l = calloc(1, sizeof *l);

    if (!l || !(l->segs = malloc((n + 4) * sizeof *segs))) {
        free(l);
        return -ENOMEM;
    }
    memcpy(l->segs, segs, n * sizeof *segs);
    l->nsegs = n;
    l->cap = n + 4;
    l->dirfd = dirfd;
    l->fd = fd;
    l->dfd = -1;
    l->o = *o;
    l->next_seq = next_seq;
    l->durable_seq = next_seq; /* recovery left what it found on disk */
    l->direct_off = o->buffered;
    direct_open(l);
    *out = l;
    return 0;
}

uint64_t fy_log_next_seq(const fy_log *l)
{
    return l->next_seq;
}

uint64_t fy_log_first_seq(const fy_log *l)
{
    return l->segs[0].base;
}

fy_pos fy_log_end(const fy_log *l)
{
    return (fy_pos){.seg = cur(l)->base, .off = cur(l)->bytes};
}

int fy_log_sync(fy_log *l)
{
    if (l->sync) {
        fy__syncer_wait(l->sync, l);
        if (!l->failed)
            l->failed = atomic_load_explicit(&l->job_err, memory_order_relaxed);
    }
    if (l->failed)
        return l->failed;
    if (fdatasync(l->fd) != 0)
        return l->failed = -errno;
    l->durable = l->queued = l->bytes;
    l->durable_seq = l->next_seq;
    return 0;
}

void fy_log_set_syncer(fy_log *l, fy_syncer *s, fy_log_synced_fn done, void *arg)
{
    l->sync = s;
    l->done = done;
    l->done_arg = arg;
}

/* Queue a job for fd (handed over) of segment seg, which ends at end. */
static int push(fy_log *l, int fd, uint64_t seg, uint64_t end, bool seal, int dirfd)
{
    fy__sync_job *j = malloc(sizeof *j);
    uint64_t drop = end > CACHE_KEEP ? (end - CACHE_KEEP) & ~(uint64_t)(DIRECT_ALIGN - 1) : 0;

    if (!j)
        return -ENOMEM;
    *j = (fy__sync_job){.owner = l, .fd = fd, .dirfd = dirfd, .seg = seg, .seal = seal,
                        .drop_to = drop, .seq = l->next_seq, .bytes = l->bytes,
                        .done = l->done, .arg = l->done_arg, .err = &l->job_err};
    fy__syncer_push(l->sync, j);
    l->queued = l->bytes;
    return 0;
}

int fy_log_sync_start(fy_log *l)
{
    if (l->failed)
        return l->failed;
    if (l->queued == l->bytes)
        return 0;
    if (!l->sync)
        return fy_log_sync(l); /* no worker (tools, tests): here, at once */
    int fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = push(l, fd, cur(l)->base, cur(l)->bytes, false, -1);
    if (rc < 0)
        close(fd);
    return rc;
}

int fy_log_synced(fy_log *l, uint64_t seq, uint64_t bytes, int rc)
{
    if (l->failed)
        return l->failed;
    if (rc < 0)
        return l->failed = rc;
    if (bytes >= l->durable) {
        l->durable = bytes;
        l->durable_seq = seq;
    }
    return 0;
}

uint64_t fy_log_bytes(const fy_log *l)
{
    return l->bytes;
}

uint64_t fy_log_durable_bytes(const fy_log *l)
{
    return l->durable;
}

uint64_t fy_log_durable_seq(const fy_log *l)
{
    return l->durable_seq;
}

int fy_log_failed(const fy_log *l)
{
    return l->failed;
}

/* Make the segment the writer rolls away from (fd, base) durable and
 * sealed, and the directory (the new segment's name) durable: on the sync
 * worker when there is one, else here.  Takes fd. */
static int retire(fy_log *l, int fd, uint64_t base, uint64_t end)
{
    int dfd = l->sync ? fcntl(l->dirfd, F_DUPFD_CLOEXEC, 0) : -1;
    if (dfd >= 0) {
        if (push(l, fd, base, end, true, dfd) == 0)
            return 0;
        close(dfd);
    }
    int rc = fy__seg_seal(fd, base);
    close(fd);
    if (rc == 0 && fsync(l->dirfd) != 0)
        rc = -errno;
    if (rc < 0)
        l->failed = rc;
    return rc;
}

/* Start a new segment at next_seq; the old one is sealed by retire. */
static int roll(fy_log *l)
{
    if (l->nsegs == l->cap) {
        fy__log_seg *ns = realloc(l->segs, l->cap * 2 * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        l->segs = ns;
        l->cap *= 2;
    }
    int fd = fy__seg_create(l->dirfd, FY__SEG_LOG, l->next_seq, true);
    if (fd < 0)
        return fd;
    int old = l->fd;
    uint64_t base = cur(l)->base, end = cur(l)->bytes;
    l->fd = fd;
    l->segs[l->nsegs++] = (fy__log_seg){.base = l->next_seq, .bytes = FY__SEG_HDR_SIZE};
    direct_open(l);
    /* The new name must survive a crash too, or recovery would not find
     * the frames written into it: retire fsyncs the directory. */
    return retire(l, old, base, end);
}

/* Check every frame before writing any, so a bad batch leaves no trace. */
static int check_frames(const fy_log *l, const struct iovec *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fy_frame_hdr h;

        if (frames[i].iov_len < FY_FRAME_HDR_SIZE || frames[i].iov_len > UINT32_MAX)
            return -EINVAL;
        int rc = fy_frame_hdr_decode(frames[i].iov_base, l->o.max_payload, &h);
        if (rc < 0)
            return rc;
        if (FY_FRAME_HDR_SIZE + (size_t)h.len != frames[i].iov_len)
            return -EINVAL;
        if (h.seq != l->next_seq + i)
            return -FY_ESEQ;
    }
    return 0;
}

/* pwrite all of b, resuming after EINTR and short writes; *put says how
 * much reached the file.  A direct write may only resume at an aligned
 * point: a short one that stops elsewhere is an error (the disk is full). */
static int pwrite_all(int fd, bool direct, const uint8_t *b, size_t n, uint64_t at, size_t *put)
{
    *put = 0;
    while (*put < n) {
        ssize_t w = pwrite(fd, b + *put, n - *put, (off_t)(at + *put));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        *put += (size_t)w;
        if (direct && *put < n && *put % DIRECT_ALIGN)
            return -ENOSPC;
    }
    return 0;
}

/* Cut the segment back to the last of frames[0..k) that ended at or before
 * file offset got; *done = the frames kept. */
static int cut_back(fy_log *l, const struct iovec *frames, size_t k, uint64_t start,
                    uint64_t got, int rc, size_t *done)
{
    uint64_t keep = start;
    size_t whole = 0;

    while (whole < k && keep + frames[whole].iov_len <= got)
        keep += frames[whole++].iov_len;
    if (ftruncate(l->fd, (off_t)keep) != 0)
        rc = rc == -EIO ? -errno : rc;
    l->tail_ok = false; /* the staging buffer no longer matches the file */
    *done = whole;
    return rc;
}

/* Direct append of frames[0..k): copy into the staging buffer behind the
 * last partial block, write whole blocks with O_DIRECT, the rest through
 * the page cache (file comment).  Failure as write_run's. */
static int write_direct(fy_log *l, const struct iovec *frames, size_t k, size_t *done)
{
    uint64_t start = cur(l)->bytes, at = start - l->tail; /* file offset of stage[0] */
    size_t have = l->tail, i = 0, off = 0, put;
    int rc = 0;

    while (i < k) {
        while (i < k && have < STAGE_CAP) {
            size_t n = frames[i].iov_len - off;
            n = n < STAGE_CAP - have ? n : STAGE_CAP - have;
            memcpy(l->stage + have, (const uint8_t *)frames[i].iov_base + off, n);
            have += n;
            off += n;
            if (off == frames[i].iov_len) {
                i++;
                off = 0;
            }
        }
        size_t full = have & ~(size_t)(DIRECT_ALIGN - 1);
        if (!full)
            continue; /* i == k: only a partial block */
        if ((rc = pwrite_all(l->dfd, true, l->stage, full, at, &put)) < 0)
            return cut_back(l, frames, k, start, at + put, rc, done);
        at += full;
        have -= full;
        memmove(l->stage, l->stage + full, have);
    }
    if (have && (rc = pwrite_all(l->fd, false, l->stage, have, at, &put)) < 0)
        return cut_back(l, frames, k, start, at + put, rc, done);
    l->tail = have;
    *done = k;
    return 0;
}

/* Shorten v[0..m) to n bytes; returns the iovecs left. */
static size_t trim_iov(struct iovec *v, size_t m, uint64_t n)
{
    size_t i = 0;

    for (; i < m && n; i++) {
        if (v[i].iov_len >= n) {
            v[i].iov_len = (size_t)n;
            return i + 1;
        }
        n -= v[i].iov_len;
    }
    return i;
}

/* Write frames[0..k) at the end of the current segment with pwritev(),
 * resuming after short writes.  Frames that lie back to back in memory
 * (small frames packed into one buffer by the session) go as one iovec:
 * the kernel's per-segment cost, not the bytes, was what 1024 iovecs of
 * 160 bytes cost.  On failure the segment is cut back to the last whole
 * frame and *done says how many frames were kept. */
static int write_run(fy_log *l, const struct iovec *frames, size_t k, size_t *done)
{
    uint64_t start = cur(l)->bytes, total = 0, put = 0;
    struct iovec *v = l->iov;
    size_t vi = 0, m = 0;

    for (size_t i = 0; i < k; i++)
        total += frames[i].iov_len;
    if (l->dfd >= 0 && total >= DIRECT_MIN_RUN && stage_ready(l) == 0)
        return write_direct(l, frames, k, done);
    total = 0;
    for (size_t i = 0; i < k; i++) {
        total += frames[i].iov_len;
        if (m && (uint8_t *)v[m - 1].iov_base + v[m - 1].iov_len == frames[i].iov_base)
            v[m - 1].iov_len += frames[i].iov_len;
        else
            v[m++] = frames[i];
    }
    int fault = 0;
    if (l->sync && (total = fy__syncer_write_allow(l->sync, total, &fault)) == 0)
        return cut_back(l, frames, k, start, start, fault, done);
    m = trim_iov(v, m, total); /* a fault lets only total bytes through */
    while (put < total) {
        ssize_t w = pwritev(l->fd, v + vi, (int)(m - vi), (off_t)(start + put));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return cut_back(l, frames, k, start, start + put, w < 0 ? -errno : -EIO, done);
        put += (uint64_t)w;
        while (vi < m && (size_t)w >= v[vi].iov_len)
            w -= (ssize_t)v[vi++].iov_len;
        if (vi < m) {
            v[vi].iov_base = (uint8_t *)v[vi].iov_base + w;
            v[vi].iov_len -= (size_t)w;
        }
    }
    l->tail_ok = false; /* the next direct append reads the block this one ended in */
    if (fault)
        return cut_back(l, frames, k, start, start + put, fault, done);
    *done = k;
    return 0;
}

int fy_log_append(fy_log *l, const struct iovec *frames, size_t n, fy_idx_rec *recs)
{
    int rc = l->failed ? l->failed : check_frames(l, frames, n);
    size_t i = 0;

    if (rc < 0)
        return rc;
    while (i < n) {
        if (cur(l)->bytes > FY__SEG_HDR_SIZE &&
            cur(l)->bytes + frames[i].iov_len > l->o.segment_bytes && (rc = roll(l)) < 0)
            return rc;
        /* The run: frames that fit this segment, IOV_MAX at most; a frame
         * bigger than a whole segment gets a segment of its own. */
        uint64_t end = cur(l)->bytes + frames[i].iov_len;
        size_t k = 1;
        while (i + k < n && k < IOV_MAX && end + frames[i + k].iov_len <= l->o.segment_bytes)
            end += frames[i + k++].iov_len;

        size_t done = 0;
        rc = write_run(l, frames + i, k, &done);
        for (size_t j = 0; j < done; j++) {
            fy_idx_rec *r = &recs[i + j];
            r->seq = l->next_seq++;
            r->seg = cur(l)->base;
            r->off = cur(l)->bytes;
            r->len = (uint32_t)frames[i + j].iov_len;
            r->crc = fy__ld32((const uint8_t *)frames[i + j].iov_base + 24);
            cur(l)->bytes += r->len;
            l->bytes += r->len;
        }
        if (rc < 0)
            return rc;
        i += k;
    }
    return 0;
}

/* ==== after a failed sync ================================================ */

/* Which segment holds the durable end d (fy_log_bytes units), and at which
 * offset: segments since open follow each other in those units (a roll
 * happens at a frame boundary, the old segment's end is the new one's
 * start).  At a boundary the older segment is taken: its seal may be the
 * job that failed.  -1 when d lies before every segment held (retention
 * removed it: cannot happen, the current segment is never removed). */
static ssize_t durable_at(const fy_log *l, uint64_t d, uint64_t *off)
{
    uint64_t c = l->bytes; /* the counter at the end of segment i */

    for (size_t i = l->nsegs; i-- > 0;) {
        uint64_t len = l->segs[i].bytes - FY__SEG_HDR_SIZE;
        if (c - d < len || (c - d == len && i == 0)) {
            *off = l->segs[i].bytes - (c - d);
            return (ssize_t)i;
        }
        c -= len;
    }
    return -1;
}

/* Drop segments keep.. newest first (data and index: the indexer has
 * stopped), then the directory, so recovery never finds them again. */
static int drop_after(fy_log *l, size_t keep)
{
    int rc = 0;

    while (l->nsegs > keep + 1) {
        char name[FY__SEG_NAME_CAP];
        uint64_t base = cur(l)->base;
        fy__seg_name(base, FY__SEG_LOG, name);
        if (unlinkat(l->dirfd, name, 0) != 0 && errno != ENOENT && !rc)
            rc = -errno;
        fy__seg_name(base, FY__SEG_IDX, name);
        (void)unlinkat(l->dirfd, name, 0); /* derived data: recovery deletes a stray one */
        l->nsegs--;
    }
    if (fsync(l->dirfd) != 0 && !rc)
        rc = -errno;
    return rc;
}

int fy_log_rewind(fy_log *l, uint64_t *dropped)
{
    uint64_t off;

    *dropped = 0;
    if (l->sync)
        fy__syncer_wait(l->sync, l);
    if (!l->failed || l->bytes == l->durable)
        return 0;
    ssize_t i = durable_at(l, l->durable, &off);
    if (i < 0)
        return -FY_ECORRUPT;
    *dropped = l->bytes - l->durable;
    direct_close(l);
    if ((size_t)i + 1 < l->nsegs) {
        /* The segment the durable end is in was rolled away from: it is
         * the current one again, open (its seal may be what failed). */
        char name[FY__SEG_NAME_CAP];
        uint8_t hdr[FY__SEG_HDR_SIZE];
        fy__seg_name(l->segs[i].base, FY__SEG_LOG, name);
        int fd = openat(l->dirfd, name, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        fy__seg_hdr_encode_open(l->segs[i].base, hdr);
        int rc = fy__seg_pwrite(fd, hdr, sizeof hdr, 0);
        if (rc < 0) {
            close(fd);
            return rc;
        }
        close(l->fd);
        l->fd = fd;
        if ((rc = drop_after(l, (size_t)i)) < 0)
            return rc;
    }
    if (ftruncate(l->fd, (off_t)off) != 0)
        return -errno;
    cur(l)->bytes = off;
    l->bytes = l->queued = l->durable;
    l->next_seq = l->durable_seq;
    l->tail_ok = false;
    return 0;
}

/* Whether the oldest segment is past a retention limit (bytes, secs: 0 =
 * none), or holds only deleted files (catalog.h).  Age is the segment
 * file's mtime: the time its last frame was written, since a segment is
 * never written again after it rolls. */
static bool expired(const fy_log *l, uint64_t total, uint64_t now_s, uint64_t bytes, uint64_t secs)
{
    if (bytes && total > bytes)
        return true;
    if (fy__cat_seg_deleted(l->dirfd, l->segs[0].base, l->segs[1].base) == 1)
        return true;
    if (!secs)
        return false;
    char name[FY__SEG_NAME_CAP];
    struct stat st;
    fy__seg_name(l->segs[0].base, FY__SEG_LOG, name);
    if (fstatat(l->dirfd, name, &st, 0) != 0)
        return errno == ENOENT; /* already gone: just forget it */
    return st.st_mtim.tv_sec >= 0 && (uint64_t)st.st_mtim.tv_sec + secs <= now_s;
}

int fy_log_retain(fy_log *l, uint64_t now_s, uint64_t *first_seq)
{
    uint64_t total = 0, bytes = l->o.retain_bytes, secs = l->o.retain_secs;
    int removed = 0;

    /* The channel's own limits (`ferry retain`) replace the relay's. */
    if (fy__cat_retain_at(l->dirfd, &bytes, &secs) < 0) {
        bytes = l->o.retain_bytes;
        secs = l->o.retain_secs;
    }
    for (size_t i = 0; i < l->nsegs; i++)
        total += l->segs[i].bytes;
    while (l->nsegs > 1 && expired(l, total, now_s, bytes, secs)) {
        char name[FY__SEG_NAME_CAP];
        fy__seg_name(l->segs[0].base, FY__SEG_LOG, name);
        if (unlinkat(l->dirfd, name, 0) != 0 && errno != ENOENT) {
            int rc = -errno;
            *first_seq = l->segs[0].base;
            return rc;
        }
        total -= l->segs[0].bytes;
        memmove(l->segs, l->segs + 1, (l->nsegs - 1) * sizeof *l->segs);
        l->nsegs--;
        removed++;
    }
    *first_seq = l->segs[0].base;
    return removed;
}

void fy_log_close(fy_log *l)
{
    if (!l)
        return;
    if (l->sync)
        fy__syncer_wait(l->sync, l);
    direct_close(l);
    free(l->stage);
    close(l->fd);
    close(l->dirfd);
    free(l->segs);
    free(l);
}
