/*
 * scrub.c - checking a channel's sealed segments in the background
 * (fy_scrub; store.h, "scrubbing").
 *
 * Receivers catching up are sent the log with sendfile, which never shows
 * the relay the bytes: a frame damaged on disk after it was stored would
 * go out unnoticed, and every receiver would stop at it.  The scrubber
 * reads the sealed segments (never the one being written) in steps its
 * caller paces, checks every frame's header and payload CRC with the same
 * scanner recovery and `ferry check` use, and reports each damaged frame.
 * A frame whose payload fails its CRC but whose header is intact is
 * stepped over, so one bad byte is one report; a damaged header ends the
 * segment's pass (the frames after it cannot be found without guessing).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/store.h"
#include "store/seg.h"

struct fy_scrub {
    int dirfd;
    size_t maxp;
    uint64_t *segs; /* this pass's sealed segments */
    size_t n, i;    /* segs[i] is being scanned */
    int fd;         /* segs[i]'s data, or -1 */
    uint64_t size, off, seq;
};

int fy_scrub_open(const char *dir, size_t max_payload, fy_scrub **out)
{
    fy_scrub *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        int rc = -errno;
        free(s);
        return rc;
    }
    s->maxp = max_payload ? max_payload : FY_PAYLOAD_MAX_DEFAULT;
    s->fd = -1;
    *out = s;
    return 0;
}

void fy_scrub_close(fy_scrub *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    close(s->dirfd);
    free(s->segs);
    free(s);
}

/* Leave the current segment (done, gone or hopeless). */
static void next_seg(fy_scrub *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->i++;
}

/* Start a pass: every segment but the newest, which the writer owns. */
static int start_pass(fy_scrub *s)
{
    free(s->segs);
    s->segs = NULL;
    s->n = s->i = 0;
    int rc = fy__seg_list(s->dirfd, FY__SEG_LOG, &s->segs, &s->n);
    if (rc < 0)
        return rc;
    if (s->n)
        s->n--;
    return 0;
}

/* Open segs[i] (retention may have removed it: skip it then). */
static int open_seg(fy_scrub *s)
{
    struct stat st;
    s->fd = fy__seg_open(s->dirfd, FY__SEG_LOG, s->segs[s->i], O_RDONLY);
    if (s->fd == -ENOENT) {
        s->fd = -1;
        s->i++;
        return 0;
    }
    if (s->fd < 0)
        return s->fd;
    if (fstat(s->fd, &st) != 0)
        return -errno;
    s->size = (uint64_t)st.st_size;
    s->off = FY__SEG_HDR_SIZE;
    s->seq = s->segs[s->i];
    return 0;
}

/* A frame that failed: report it, and step over it when its header can be
 * trusted.  Returns true when the segment's pass goes on. */
static bool damaged(fy_scrub *s, int why, fy_scrub_hit *hit)
{
    uint8_t hb[FY_FRAME_HDR_SIZE];
    fy_frame_hdr h;
    *hit = (fy_scrub_hit){.seg = s->segs[s->i], .off = s->off, .seq = s->seq, .err = why};
    hit->found = true;
    if (why != -FY_ECRC || fy__seg_pread(s->fd, hb, sizeof hb, s->off) != (ssize_t)sizeof hb ||
        fy_frame_hdr_decode(hb, s->maxp, &h) < 0)
        return false;
    s->off += FY_FRAME_HDR_SIZE + h.len;
    s->seq++;
    return true;
}

int fy_scrub_step(fy_scrub *s, uint64_t budget, uint64_t *checked, fy_scrub_hit *hit)
{
    *checked = 0;
    hit->found = false;
    if (!s->segs || s->i >= s->n) {
        int rc = start_pass(s);
        if (rc < 0)
            return rc;
    }
    while (s->i < s->n && s->fd < 0) {
        int rc = open_seg(s);
        if (rc < 0)
            return rc;
    }
    if (s->i >= s->n)
        return 1;
    /* A step must hold a whole frame, or a big one would never be checked. */
    uint64_t want = budget > FY_FRAME_HDR_SIZE + s->maxp ? budget : FY_FRAME_HDR_SIZE + s->maxp;
    uint64_t limit = s->size - s->off > want ? s->off + want : s->size;
    fy__seg_scan_res res;
    int rc = fy__seg_scan(s->fd, s->segs[s->i], s->off, limit, s->seq, s->maxp, NULL, NULL, &res);
    if (rc < 0)
        return rc;
    *checked = res.end_off - s->off;
    s->off = res.end_off;
    s->seq = res.next_seq;
    bool go_on = true;
    if (res.stop == -FY_ETRUNC && limit < s->size)
        ; /* the step ended inside a frame: the next one starts there */
    else if (res.stop != 0)
        go_on = damaged(s, res.stop, hit);
    if (!go_on || s->off >= s->size)
        next_seg(s);
    return s->i >= s->n ? 1 : 0;
}
