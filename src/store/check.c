/*
 * check.c - checking a channel log offline (fy_store_check, `ferry check`):
 * every frame's header and payload CRC, sequence continuity, and every
 * index record against its frame, read-only.
 *
 * What a crash leaves and fy_store_open repairs is told apart from damage:
 * the end of the last segment (frames not indexed yet, a torn frame or
 * record), and likewise the end of a segment that is still open (its seal
 * never ran, docs/storage.md "Segment rolling"), after which recovery drops
 * the later segments: their bytes count as torn, not as damage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/store.h"
#include "store/seg.h"

#define REC_CHUNK 256

/* ==== fy_store_check ======================================================= */

/* Compares each frame found in the data with its index record. */
typedef struct checker {
    int xfd; /* -1: no usable index */
    bool last; /* the last segment: a short index is a crash's tail, not damage */
    uint64_t base, nrec;
    uint64_t bstart; /* record number of buf[0] */
    size_t bn;       /* records in buf */
    fy_check_report *rep;
    uint8_t buf[REC_CHUNK * FY__IDX_REC_SIZE];
} checker;

/* A frame the index does not hold: in the last segment that is the tail a
 * crash left before the indexer caught up, which opening repairs. */
static void missing_rec(checker *c)
{
    if (c->last)
        c->rep->unindexed++;
    else
        c->rep->index_errors++;
}

static int check_rec(void *arg, const fy_idx_rec *r)
{
    checker *c = arg;
    uint64_t i = r->seq - c->base;
    fy_idx_rec got;

    if (c->xfd < 0 || i >= c->nrec) {
        missing_rec(c);
        return 0;
    }
    if (i < c->bstart || i >= c->bstart + c->bn) {
        ssize_t n = fy__seg_pread(c->xfd, c->buf, sizeof c->buf, FY__SEG_HDR_SIZE + i * FY__IDX_REC_SIZE);
        if (n < 0)
            return (int)n;
        c->bstart = i;
        c->bn = (size_t)n / FY__IDX_REC_SIZE;
        if (c->bn == 0) {
            missing_rec(c);
            return 0;
        }
    }
    const uint8_t *b = c->buf + (i - c->bstart) * FY__IDX_REC_SIZE;
    if (fy__seg_rec_decode(b, c->base, &got) < 0 || memcmp(&got, r, sizeof got) != 0)
        c->rep->index_errors++;
    return 0;
}

/* Open the segment's index for c; a missing or bad one is noted. */
static void check_open_idx(int dirfd, checker *c)
{
    uint8_t hb[FY__SEG_HDR_SIZE];
    struct stat st;

    c->xfd = fy__seg_open(dirfd, FY__SEG_IDX, c->base, O_RDONLY);
    if (c->xfd >= 0 && fstat(c->xfd, &st) == 0 &&
        fy__seg_pread(c->xfd, hb, sizeof hb, 0) == (ssize_t)sizeof hb &&
        fy__seg_hdr_check(FY__SEG_IDX, c->base, hb) == 0) {
        c->nrec = ((uint64_t)st.st_size - FY__SEG_HDR_SIZE) / FY__IDX_REC_SIZE;
        uint64_t part = ((uint64_t)st.st_size - FY__SEG_HDR_SIZE) % FY__IDX_REC_SIZE;
        if (part && c->last)
            c->rep->torn_bytes += part; /* a torn record write */
        else if (part)
            c->rep->index_errors++;
    } else if (c->xfd >= 0 || !c->last) {
        c->rep->index_errors++; /* a bad header; or no index for a sealed segment */
    }
}

/* Scan the frames of one segment, stepping over a frame whose payload
 * fails its CRC when its header is intact (its length can be trusted), so
 * one bad byte counts once.  Returns 0 or -errno; *res as fy__seg_scan's
 * for the final stretch. */
static int check_frames(int lfd, uint64_t size, size_t maxp, checker *c, fy__seg_scan_res *res)
{
    uint64_t off = FY__SEG_HDR_SIZE, seq = c->base;
    for (;;) {
        int rc = fy__seg_scan(lfd, c->base, off, size, seq, maxp, check_rec, c, res);
        if (rc < 0)
            return rc;
        c->rep->frames += res->frames;
        if (res->stop != -FY_ECRC)
            return 0;
        uint8_t hb[FY_FRAME_HDR_SIZE];
        fy_frame_hdr h;
        if (fy__seg_pread(lfd, hb, sizeof hb, res->end_off) != (ssize_t)sizeof hb ||
            fy_frame_hdr_decode(hb, maxp, &h) < 0)
            return 0;
        c->rep->crc_errors++;
        fy_idx_rec rec = {.seq = res->next_seq, .seg = c->base, .off = res->end_off,
                          .len = (uint32_t)(FY_FRAME_HDR_SIZE + h.len), .crc = h.crc};
        if ((rc = check_rec(c, &rec)) < 0)
            return rc;
        c->rep->frames++;
        off = res->end_off + rec.len;
        seq = res->next_seq + 1;
    }
}

/* Check one segment; returns its next seq (0 when its data is damaged). */
static int check_seg(int dirfd, uint64_t base, bool last, size_t maxp, fy_check_report *rep,
                     uint64_t *next, bool *open)
{
    uint8_t hb[FY__SEG_HDR_SIZE];
    struct stat st;
    checker *c = NULL;
    int rc = 0, lfd = fy__seg_open(dirfd, FY__SEG_LOG, base, O_RDONLY);

    *next = 0;
    *open = false;
    if (lfd < 0)
        return lfd;
    if (fstat(lfd, &st) != 0 || !(c = calloc(1, sizeof *c))) {
        rc = c ? -errno : -ENOMEM;
        goto out;
    }
    rep->bytes += (uint64_t)st.st_size;
    ssize_t n = fy__seg_pread(lfd, hb, sizeof hb, 0);
    int hs = n == (ssize_t)sizeof hb ? fy__seg_hdr_check(FY__SEG_LOG, base, hb) : -FY_ECORRUPT;
    if (hs < 0) {
        rep->crc_errors++;
        goto out;
    }
    /* An open segment may end torn like the last one (its seal never ran). */
    *open = hs == 1;
    last = last || *open;
    *c = (checker){.base = base, .last = last, .rep = rep};
    check_open_idx(dirfd, c);
    fy__seg_scan_res res;
    uint64_t before = rep->frames;
    if ((rc = check_frames(lfd, (uint64_t)st.st_size, maxp, c, &res)) < 0)
        goto out;
    uint64_t frames = rep->frames - before;
    if (res.stop == -FY_ETRUNC && last)
        rep->torn_bytes += (uint64_t)st.st_size - res.end_off; /* cut on open */
    else if (res.stop != 0)
        rep->crc_errors++;
    /* Records past the frames are errors only when the data was read to
     * its end: past damage they cannot be verified, and the data error
     * already says so. */
    if (res.stop == 0 || res.stop == -FY_ETRUNC)
        if (c->nrec > frames)
            rep->index_errors += c->nrec - frames;
    *next = res.stop == 0 || (res.stop == -FY_ETRUNC && last) ? res.next_seq : 0;
out:
    if (c && c->xfd >= 0)
        close(c->xfd);
    free(c);
    close(lfd);
    return rc;
}

static uint64_t later_bytes(int dirfd, const uint64_t *bases, size_t n)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        char name[FY__SEG_NAME_CAP];
        struct stat st;
        fy__seg_name(bases[i], FY__SEG_LOG, name);
        if (fstatat(dirfd, name, &st, 0) == 0)
            sum += (uint64_t)st.st_size;
    }
    return sum;
}

int fy_store_check(const char *dir, size_t max_payload, fy_check_report *rep)
{
    uint64_t *logs = NULL, *idxs = NULL, expect = 0;
    size_t nl = 0, ni = 0;
    int rc;

    memset(rep, 0, sizeof *rep);
    if (!max_payload)
        max_payload = FY_PAYLOAD_MAX_DEFAULT;
    if (max_payload > FY_PAYLOAD_MAX_LIMIT)
        return -EINVAL;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -errno;
    if ((rc = fy__seg_list(dirfd, FY__SEG_LOG, &logs, &nl)) < 0 ||
        (rc = fy__seg_list(dirfd, FY__SEG_IDX, &idxs, &ni)) < 0)
        goto out;
    for (size_t i = 0, j = 0; i < ni; i++) { /* index files without data */
        while (j < nl && logs[j] < idxs[i])
            j++;
        rep->index_errors += !(j < nl && logs[j] == idxs[i]);
    }
    for (size_t i = 0; i < nl; i++) {
        uint64_t next;
        bool open;
        rep->segments++;
        if (i > 0 && expect && logs[i] != expect)
            rep->crc_errors++; /* a gap or overlap between segments */
        if ((rc = check_seg(dirfd, logs[i], i + 1 == nl, max_payload, rep, &next, &open)) < 0)
            goto out;
        expect = next;
        if (open && next && i + 1 < nl && next != logs[i + 1]) {
            /* A torn open segment: recovery cuts it and drops the rest. */
            rep->torn_bytes += later_bytes(dirfd, logs + i + 1, nl - i - 1);
            break;
        }
    }
    rep->first_seq = nl ? logs[0] : 0;
    rep->next_seq = expect ? expect : rep->first_seq + rep->frames;
    rc = rep->crc_errors || rep->index_errors ? -FY_ECORRUPT : 0;
out:
    close(dirfd);
    free(logs);
    free(idxs);
    return rc;
}
