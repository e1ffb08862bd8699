/*
 * seg.c - the byte formats of the store's files and the helpers every half
 * of the store shares: file headers, index records, names, directory
 * listing, and the frame scanner.
 *
 * Keeping the formats in one file means the writer, the indexer, recovery
 * and the offline checker cannot disagree about a byte.  Names are built
 * only from numbers here, and files are opened relative to a directory fd,
 * so no channel or file name ever reaches a path in this module.
 */
#include "store/seg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"

#define SEG_DIGITS 20
#define SCAN_CHUNK ((size_t)1 << 20)

_Static_assert(FY__IDX_REC_SIZE == 32, "index records are 32 bytes");
_Static_assert(FY__SEG_HDR_SIZE == FY_FRAME_HDR_SIZE, "headers share one size");

/* ==== names ============================================================== */

void fy__seg_name(uint64_t base, int kind, char out[FY__SEG_NAME_CAP])
{
    snprintf(out, FY__SEG_NAME_CAP, "%020" PRIu64 ".%s", base, kind == FY__SEG_LOG ? "log" : "idx");
}

/* Parse "<20 digits>.log|.idx"; anything else (temp files, dot files) is
 * not ours and is ignored. */
static int parse_name(const char *name, int kind, uint64_t *base)
{
    const char *ext = kind == FY__SEG_LOG ? ".log" : ".idx";
    uint64_t v = 0;

    if (strlen(name) != SEG_DIGITS + 4 || strcmp(name + SEG_DIGITS, ext) != 0)
        return -1;
    for (int i = 0; i < SEG_DIGITS; i++) {
        unsigned d = (unsigned)(name[i] - '0');

        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *base = v;
    return 0;
}

/* ==== file header and index records ===================================== */

static void hdr_encode(int kind, uint64_t base, uint8_t flags, uint8_t out[FY__SEG_HDR_SIZE])
{
    memset(out, 0, FY__SEG_HDR_SIZE);
    fy__st32(out, kind == FY__SEG_LOG ? FY__SEG_MAGIC_LOG : FY__SEG_MAGIC_IDX);
    out[4] = FY__SEG_VERSION;
    out[5] = FY__SEG_HDR_SIZE;
    out[6] = flags;
    fy__st64(out + 8, base);
    fy__st32(out + 28, fy_crc32c(0, out, 28));
}

void fy__seg_hdr_encode(int kind, uint64_t base, uint8_t out[FY__SEG_HDR_SIZE])
{
    hdr_encode(kind, base, 0, out);
}

void fy__seg_hdr_encode_open(uint64_t base, uint8_t out[FY__SEG_HDR_SIZE])
{
    hdr_encode(FY__SEG_LOG, base, FY__SEG_F_OPEN, out);
}

int fy__seg_hdr_check(int kind, uint64_t base, const uint8_t in[FY__SEG_HDR_SIZE])
{
    uint8_t want[FY__SEG_HDR_SIZE];

    /* Every byte is fixed by (kind, base, open), so one comparison checks
     * magic, version, base, the reserved zeros and the CRC together. */
    fy__seg_hdr_encode(kind, base, want);
    if (memcmp(in, want, FY__SEG_HDR_SIZE) == 0)
        return 0;
    if (kind != FY__SEG_LOG)
        return -FY_ECORRUPT;
    fy__seg_hdr_encode_open(base, want);
    return memcmp(in, want, FY__SEG_HDR_SIZE) == 0 ? 1 : -FY_ECORRUPT;
}

int fy__seg_seal(int fd, uint64_t base)
{
    uint8_t hdr[FY__SEG_HDR_SIZE];

    if (fdatasync(fd) != 0)
        return -errno;
    fy__seg_hdr_encode(FY__SEG_LOG, base, hdr);
    int rc = fy__seg_pwrite(fd, hdr, sizeof hdr, 0);
    if (rc < 0)
        return rc;
    return fdatasync(fd) == 0 ? 0 : -errno;
}

void fy__seg_rec_encode(const fy_idx_rec *r, uint8_t out[FY__IDX_REC_SIZE])
{
    fy__st64(out, r->seq);
    fy__st64(out + 8, r->off);
    fy__st32(out + 16, r->len);
    fy__st32(out + 20, r->crc);
    fy__st32(out + 24, 0);
    fy__st32(out + 28, fy_crc32c(0, out, 28));
}

int fy__seg_rec_decode(const uint8_t in[FY__IDX_REC_SIZE], uint64_t seg, fy_idx_rec *r)
{
    if (fy__ld32(in + 28) != fy_crc32c(0, in, 28) || fy__ld32(in + 24) != 0)
        return -FY_ECORRUPT;
    r->seq = fy__ld64(in);
    r->seg = seg;
    r->off = fy__ld64(in + 8);
    r->len = fy__ld32(in + 16);
    r->crc = fy__ld32(in + 20);
    return 0;
}

/* ==== files ============================================================== */

int fy__seg_open(int dirfd, int kind, uint64_t base, int flags)
{
    char name[FY__SEG_NAME_CAP];

    fy__seg_name(base, kind, name);
    int fd = openat(dirfd, name, flags | O_CLOEXEC, 0640);
    return fd >= 0 ? fd : -errno;
}

int fy__seg_create(int dirfd, int kind, uint64_t base, bool excl)
{
    uint8_t hdr[FY__SEG_HDR_SIZE];
    int fd = fy__seg_open(dirfd, kind, base, O_RDWR | O_CREAT | (excl ? O_EXCL : O_TRUNC));

    if (fd < 0)
        return fd;
    /* A data segment is born open: only its seal (fy__seg_seal) says that
     * everything in it reached the disk. */
    if (kind == FY__SEG_LOG)
        fy__seg_hdr_encode_open(base, hdr);
    else
        fy__seg_hdr_encode(kind, base, hdr);
    int rc = fy__seg_pwrite(fd, hdr, sizeof hdr, 0);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int fy__seg_list(int dirfd, int kind, uint64_t **bases, size_t *n)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;

    *bases = NULL;
    *n = 0;
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        uint64_t b;

        if (!e) {
            rc = errno ? -errno : 0;
            break;
        }
        if (parse_name(e->d_name, kind, &b) != 0)
            continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, nc * sizeof *v);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        v[cnt++] = b;
    }
    closedir(d);
    if (rc < 0) {
        free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_u64);
    *bases = v;
    *n = cnt;
    return 0;
}

ssize_t fy__seg_pread(int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

int fy__seg_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)r;
    }
    return 0;
}

/* ==== frame scanner ====================================================== */

/* Refill buf: keep the unparsed bytes [at, have), read more after them.
 * Returns bytes read (0 at limit or EOF) or -errno. */
static ssize_t refill(int fd, uint8_t *buf, size_t cap, uint64_t *boff, size_t *at, size_t *have,
                      uint64_t limit)
{
    memmove(buf, buf + *at, *have - *at);
    *boff += *at;
    *have -= *at;
    *at = 0;
    uint64_t left = limit - (*boff + *have);
    size_t want = cap - *have;
    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    ssize_t r = fy__seg_pread(fd, buf + *have, want, *boff + *have);
    if (r > 0)
        *have += (size_t)r;
    return r;
}

int fy__seg_scan(int fd, uint64_t seg, uint64_t off, uint64_t limit, uint64_t seq,
                 size_t max_payload, fy__seg_scan_fn fn, void *arg, fy__seg_scan_res *res)
{
    size_t cap = FY_FRAME_HDR_SIZE + max_payload;
    if (cap < SCAN_CHUNK)
        cap = SCAN_CHUNK;
    if (limit > off && limit - off < cap)
        cap = (size_t)(limit - off); /* a small tail needs no big buffer */
    uint8_t *buf = malloc(cap ? cap : 1);
    uint64_t boff = off;
    size_t at = 0, have = 0;
    int rc = 0;

    memset(res, 0, sizeof *res);
    if (!buf)
        return -ENOMEM;
    res->stop = 0;
    for (;;) {
        size_t flen = FY_FRAME_HDR_SIZE;
        fy_frame_hdr h;
        bool hdr_ok = have - at >= FY_FRAME_HDR_SIZE;

        if (hdr_ok) {
            int e = fy_frame_hdr_decode(buf + at, max_payload, &h);
            if (e < 0) {
                res->stop = e;
                break;
            }
            if (h.seq != seq) {
                res->stop = -FY_ESEQ;
                break;
            }
            flen += h.len;
        }
        if (!hdr_ok || have - at < flen) {
            if (boff + have >= limit) {
                res->stop = have > at ? -FY_ETRUNC : 0;
                break;
            }
            ssize_t r = refill(fd, buf, cap, &boff, &at, &have, limit);
            if (r < 0) {
                rc = (int)r;
                break;
            }
            res->read_bytes += (uint64_t)r;
            if (r == 0) { /* the file is shorter than limit */
                res->stop = have > at ? -FY_ETRUNC : 0;
                break;
            }
            continue;
        }
        if (fy_crc32c(0, buf + at + FY_FRAME_HDR_SIZE, h.len) != h.crc) {
            res->stop = -FY_ECRC;
            break;
        }
        fy_idx_rec rec = {.seq = seq, .seg = seg, .off = boff + at, .len = (uint32_t)flen, .crc = h.crc};
        if (fn && (rc = fn(arg, &rec)) < 0)
            break;
        at += flen;
        seq++;
        res->frames++;
    }
    res->end_off = boff + at;
    res->next_seq = seq;
    free(buf);
    return rc;
}

int fy__seg_verify(int fd, const fy_idx_rec *r, size_t max_payload, bool payload, uint64_t *read)
{
    uint8_t hb[FY_FRAME_HDR_SIZE];
    fy_frame_hdr h;

    if (r->len < FY_FRAME_HDR_SIZE)
        return -FY_ECORRUPT;
    ssize_t n = fy__seg_pread(fd, hb, sizeof hb, r->off);
    if (n < 0)
        return (int)n;
    *read += (uint64_t)n;
    if ((size_t)n < sizeof hb || fy_frame_hdr_decode(hb, max_payload, &h) < 0 || h.seq != r->seq ||
        FY_FRAME_HDR_SIZE + (uint64_t)h.len != r->len || h.crc != r->crc)
        return -FY_ECORRUPT;
    if (!payload || h.len == 0)
        return 0;
    uint8_t *p = malloc(h.len);
    if (!p)
        return -ENOMEM;
    n = fy__seg_pread(fd, p, h.len, r->off + FY_FRAME_HDR_SIZE);
    int rc = 0;
    if (n < 0)
        rc = (int)n;
    else {
        *read += (uint64_t)n;
        if ((size_t)n < h.len || fy_crc32c(0, p, h.len) != h.crc)
            rc = -FY_ECORRUPT;
    }
    free(p);
    return rc;
}
