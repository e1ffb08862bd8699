/*
 * fwd_skip.c - deleted files in a forwarder's catch-up (docs/protocol.md,
 * "Deleted files").
 *
 * `ferry rm CHANNEL NAME` leaves the file's frames in the log (its segment
 * is freed later, when every file in it is deleted) and adds it to the
 * channel's `deleted` file, with the log positions it spans.  A receiver
 * that said FY_HELLO_F_SKIP is never sent those frames: catch-up sends up
 * to the start of a deleted file, queues SKIP (first, next seq) at that
 * frame boundary and goes on from just after its file-end.  The list is
 * read when a catch-up starts; a file deleted while a receiver is already
 * catching up is skipped from its next catch-up on.  Live batches are new
 * frames, never deleted ones.  Receivers without the flag get the log as
 * it is.
 */
#include <errno.h>
#include <stdlib.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "forwarder_int.h"
#include "store/catalog.h"

static bool before(fy_pos a, fy_pos b)
{
    return a.seg < b.seg || (a.seg == b.seg && a.off < b.off);
}

void fy__fwd_skip_load(fwd *f)
{
    free(f->tombs);
    f->tombs = NULL;
    f->ntombs = 0;
    f->tomb_next = 0;
    if (!(f->hflags & FY_HELLO_F_SKIP))
        return;
    int rc = fy_cat_tombs(f->chan->dir, &f->tombs, &f->ntombs);
    if (rc < 0)
        fy_klog(FY_LOG_WARN, "cannot read the deleted files", "channel=%s peer=%s err=%s "
                "action=\"send the log as it is\"", f->chan->name, f->peer, fy_errname(rc));
}

int fy__fwd_skip_limit(fwd *f, fy_pos *lim)
{
    for (size_t i = 0; i < f->ntombs; i++) {
        const fy_cat_tomb *t = &f->tombs[i];
        if (!before(f->pos, t->end))
            continue; /* behind us */
        f->tomb_next = i;
        if (!before(f->pos, t->begin))
            return 1;
        if (before(t->begin, *lim))
            *lim = t->begin;
        return 0;
    }
    return 0;
}

int fy__fwd_skip(fwd *f)
{
    const fy_cat_tomb *t = &f->tombs[f->tomb_next];
    fy_skip s = {.first = t->first, .next = t->last + 1};
    uint8_t p[16];
    size_t n;

    fy_skip_encode(&s, p, sizeof p, &n);
    f->mid = false; /* the send stopped at the deleted file's file-begin */
    int rc = fy__fwd_ctl_push(f, FY_FT_SKIP, p, n);
    if (rc < 0)
        return rc;
    fy_klog(FY_LOG_DEBUG, "deleted file skipped", "channel=%s peer=%s first_seq=%llu next_seq=%llu",
            f->chan->name, f->peer, (unsigned long long)s.first, (unsigned long long)s.next);
    f->pos = t->end;
    f->bound = t->end;
    f->rd_seeked = false;
    /* skip only once, even when t->end is where the reader already is */
    f->tombs[f->tomb_next].end = f->tombs[f->tomb_next].begin;
    return 0;
}
