/*
 * logrd.c - a forwarder's reader of a channel log (fy_logrd): sendfile()
 * from the data segments straight to a socket, or whole frames into a
 * buffer for tools.
 *
 * Each reader has its own read-only fd of the segment it is in, so readers
 * never share state with the writer or with each other.  It holds no other
 * descriptor: the directory is opened only to move to another segment, so a
 * forwarder that follows a channel live costs its socket and one fd.  A reader never goes past the end position
 * the writer published to it: bytes beyond it may be a frame still being
 * written.  A segment other than the one `end` is in is finished (the
 * writer rolled away from it and never writes it again), so its file size
 * is its end.  Crossing to the next segment lists the directory once; that
 * happens once per segment (256 MiB by default), not per frame.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/store.h"
#include "store/seg.h"

struct fy_logrd {
    char *dir;
    int fd; /* segment pos.seg, or -1 */
    fy_pos pos;
};

static int open_dir(const fy_logrd *r)
{
    int fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int fy_logrd_open(const char *dir, fy_logrd **out)
{
    fy_logrd *r = calloc(1, sizeof *r);
    int fd;

    if (!r || !(r->dir = strdup(dir))) {
        free(r);
        return -ENOMEM;
    }
    if ((fd = open_dir(r)) < 0) { /* fail now, as a missing channel should */
        free(r->dir);
        free(r);
        return fd;
    }
    close(fd);
    r->fd = -1;
    *out = r;
    return 0;
}

void fy_logrd_close(fy_logrd *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->dir);
    free(r);
}

/* Open segment base and check its file header. */
static int open_seg(fy_logrd *r, uint64_t base)
{
    uint8_t hb[FY__SEG_HDR_SIZE];
    int dirfd = open_dir(r);

    if (dirfd < 0)
        return dirfd;
    int fd = fy__seg_open(dirfd, FY__SEG_LOG, base, O_RDONLY);
    close(dirfd);

    if (fd < 0)
        return fd == -ENOENT ? -FY_ENOSEQ : fd;
    ssize_t n = fy__seg_pread(fd, hb, sizeof hb, 0);
    if (n != (ssize_t)sizeof hb || fy__seg_hdr_check(FY__SEG_LOG, base, hb) < 0) {
        close(fd);
        return n < 0 ? (int)n : -FY_ECORRUPT;
    }
    if (r->fd >= 0)
        close(r->fd);
    r->fd = fd;
    r->pos.seg = base;
    return 0;
}

int fy_logrd_seek(fy_logrd *r, fy_pos at)
{
    if (at.off < FY__SEG_HDR_SIZE)
        return -EINVAL;
    if (r->fd < 0 || r->pos.seg != at.seg) {
        int rc = open_seg(r, at.seg);
        if (rc < 0)
            return rc;
    }
    r->pos = at;
    return 0;
}

fy_pos fy_logrd_pos(const fy_logrd *r)
{
    return r->pos;
}

/* Bytes readable at the position without passing end; moves on to the next
 * segment when the current one is finished and exhausted.  Returns the
 * count (0 = nothing yet) or -errno. */
static int64_t avail(fy_logrd *r, fy_pos end)
{
    for (;;) {
        if (r->fd < 0)
            return -EINVAL;
        if (r->pos.seg > end.seg || (r->pos.seg == end.seg && r->pos.off > end.off))
            return -EINVAL;
        if (r->pos.seg == end.seg)
            return (int64_t)(end.off - r->pos.off);
        struct stat st;
        if (fstat(r->fd, &st) != 0)
            return -errno;
        if ((uint64_t)st.st_size > r->pos.off)
            return (int64_t)((uint64_t)st.st_size - r->pos.off);
        /* Finished and read: the next segment is the smallest base above. */
        uint64_t *b, next = 0;
        size_t n;
        int rc = open_dir(r);
        if (rc < 0)
            return rc;
        int dirfd = rc;
        rc = fy__seg_list(dirfd, FY__SEG_LOG, &b, &n);
        close(dirfd);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n && !next; i++)
            if (b[i] > r->pos.seg && b[i] <= end.seg)
                next = b[i];
        free(b);
        if (!next)
            return -FY_ECORRUPT; /* end says there is more, but no segment holds it */
        if ((rc = open_seg(r, next)) < 0)
            return rc;
        r->pos.off = FY__SEG_HDR_SIZE;
    }
}

int fy_logrd_send(fy_logrd *r, fy_logrd_send_fn send, void *arg, fy_pos end, size_t max,
                  size_t *sent)
{
    *sent = 0;
    while (*sent < max) {
        int64_t a = avail(r, end);
        if (a <= 0)
            return (int)a;
        size_t want = max - *sent;
        if ((uint64_t)a < want)
            want = (size_t)a;
        ssize_t n = send(arg, r->fd, (off_t)r->pos.off, want);
        if (n < 0)
            return (int)n; /* -EAGAIN: the socket is full; *sent says what went */
        if (n == 0)
            return -FY_ECORRUPT; /* the file is shorter than the writer said */
        r->pos.off += (uint64_t)n;
        *sent += (size_t)n;
    }
    return 0;
}

/* fy_logrd_sendfile's sender: sendfile(2) to the socket in *arg. */
static ssize_t send_to_fd(void *arg, int in_fd, off_t off, size_t n)
{
    int fd = *(const int *)arg;
    for (;;) {
        ssize_t w = sendfile(fd, in_fd, &off, n);
        if (w >= 0)
            return w;
        if (errno != EINTR)
            return -errno;
    }
}

int fy_logrd_sendfile(fy_logrd *r, int fd, fy_pos end, size_t max, size_t *sent)
{
    return fy_logrd_send(r, send_to_fd, &fd, end, max, sent);
}

int fy_logrd_boundary(fy_logrd *r, fy_pos from, fy_pos *out)
{
    uint64_t at = from.seg == r->pos.seg ? from.off : FY__SEG_HDR_SIZE;

    if (r->fd < 0 || from.seg > r->pos.seg || (from.seg == r->pos.seg && from.off > r->pos.off))
        return -EINVAL;
    while (at < r->pos.off) {
        uint8_t hb[FY_FRAME_HDR_SIZE];
        fy_frame_hdr h;
        ssize_t n = fy__seg_pread(r->fd, hb, sizeof hb, at);
        if (n < 0)
            return (int)n;
        if (n != (ssize_t)sizeof hb || fy_frame_hdr_decode(hb, FY_PAYLOAD_MAX_LIMIT, &h) < 0)
            return -FY_ECORRUPT;
        at += FY_FRAME_HDR_SIZE + (uint64_t)h.len;
    }
    *out = (fy_pos){r->pos.seg, at};
    return 0;
}

int fy_logrd_read(fy_logrd *r, fy_pos end, uint8_t *buf, size_t cap, size_t *len)
{
    *len = 0;
    for (;;) {
        int64_t a = avail(r, end);
        if (a <= 0)
            return (int)a;
        if (a < (int64_t)FY_FRAME_HDR_SIZE)
            return -FY_ECORRUPT; /* a torn frame below end */
        size_t want = cap - *len;
        if ((uint64_t)a < want)
            want = (size_t)a;
        if (want < FY_FRAME_HDR_SIZE)
            return *len ? 0 : -ENOBUFS;
        ssize_t n = fy__seg_pread(r->fd, buf + *len, want, r->pos.off);
        if (n < 0)
            return (int)n;
        if ((size_t)n < FY_FRAME_HDR_SIZE)
            return -FY_ECORRUPT;
        /* Keep only whole, checked frames; the rest is read again later. */
        size_t at = 0, got = 0;
        while ((size_t)n - at >= FY_FRAME_HDR_SIZE) {
            fy_frame_hdr h;
            uint8_t *f = buf + *len + at;
            if (fy_frame_hdr_decode(f, FY_PAYLOAD_MAX_LIMIT, &h) < 0)
                return -FY_ECORRUPT;
            size_t flen = FY_FRAME_HDR_SIZE + (size_t)h.len;
            if ((size_t)n - at < flen) {
                if ((uint64_t)(at + flen) > (uint64_t)a)
                    return -FY_ECORRUPT; /* runs past the end: not a frame boundary */
                break;
            }
            if (fy_crc32c(0, f + FY_FRAME_HDR_SIZE, h.len) != h.crc)
                return -FY_ECORRUPT;
            at += flen;
            got++;
        }
        *len += at;
        r->pos.off += at;
        if (got == 0)
            return *len ? 0 : -ENOBUFS; /* the next frame does not fit in cap */
        if ((uint64_t)at < (uint64_t)a)
            return 0; /* buffer full */
    }
}

int fy_logrd_peek(fy_logrd *r, fy_pos at, fy_frame_hdr *h)
{
    uint8_t b[FY_FRAME_HDR_SIZE];
    int rc = fy_logrd_seek(r, at);

    if (rc < 0)
        return rc;
    ssize_t n = fy__seg_pread(r->fd, b, sizeof b, at.off);
    if (n < 0)
        return (int)n;
    if ((size_t)n < sizeof b || fy_frame_hdr_decode(b, FY_PAYLOAD_MAX_LIMIT, h) < 0)
        return -FY_ECORRUPT;
    return 0;
}

int fy_logrd_hash_file(const char *dir, fy_pos begin, fy_pos end, uint64_t begin_seq,
                       size_t max_payload, fy_sha256 *sha, uint64_t *got)
{
    size_t cap = FY_FRAME_HDR_SIZE + max_payload;
    uint64_t frames = 0;
    fy_logrd *rd = NULL;
    uint8_t *buf;
    int rc;

    *got = 0;
    cap = cap < ((size_t)1 << 20) ? (size_t)1 << 20 : cap;
    if (!(buf = malloc(cap)))
        return -ENOMEM;
    if ((rc = fy_logrd_open(dir, &rd)) < 0 || (rc = fy_logrd_seek(rd, begin)) < 0)
        goto out;
    for (;;) {
        size_t len = 0;
        if ((rc = fy_logrd_read(rd, end, buf, cap, &len)) < 0 || len == 0)
            break;
        for (size_t at = 0; at < len;) {
            fy_frame_hdr h;
            (void)fy_frame_hdr_decode(buf + at, FY_PAYLOAD_MAX_LIMIT, &h); /* checked by the read */
            bool first = frames++ == 0;
            fy_hole ho = {0};
            if (first ? h.type != FY_FT_FILE_BEGIN || h.seq != begin_seq
                      : h.type != FY_FT_DATA && (h.type != FY_FT_HOLE ||
                        fy_hole_decode(buf + at + FY_FRAME_HDR_SIZE, h.len, &ho) < 0)) {
                rc = -FY_ECORRUPT;
                goto out;
            }
            if (!first && h.type == FY_FT_HOLE) {
                fy_sha256_zeros(sha, ho.len); /* a hole stands for its length in zeros */
                *got += ho.len;
            } else if (!first) {
                fy_sha256_update(sha, buf + at + FY_FRAME_HDR_SIZE, h.len);
                *got += h.len;
            }
            at += FY_FRAME_HDR_SIZE + h.len;
        }
    }
out:
    fy_logrd_close(rd);
    free(buf);
    return rc;
}
