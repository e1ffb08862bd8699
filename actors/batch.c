/*
 * batch.c - the run of frames that travels session -> writer -> forwarders
 * (fy__batch).  One allocation per batch, shared by every forwarder of the
 * channel through one reference count, so forwarding to N receivers costs N
 * atomic increments per batch, not per frame.  Frames and buffers are
 * separate lists: small frames share a buffer, so a 128-byte frame does
 * not take a 4 KiB pool buffer of its own.  The file-begins and file-ends
 * carry what the ingest decoded from them (marks), so no later stage
 * decodes a frame's payload again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "relay_int.h"

fy__batch *fy__batch_new(uint32_t cap)
{
    fy__batch *b = calloc(1, sizeof *b);

    if (!b)
        return NULL;
    b->fr = malloc(cap * sizeof *b->fr);
    b->bufs = malloc(cap * sizeof *b->bufs);
    b->recs = malloc(cap * sizeof *b->recs);
    if (!b->fr || !b->bufs || !b->recs) {
        free(b->fr);
        free(b->bufs);
        free(b->recs);
        free(b);
        return NULL;
    }
    b->cap = cap;
    atomic_init(&b->refs, 1);
    return b;
}

void fy__batch_unref(fy__batch *b)
{
    if (!b)
        return;
    /* acq_rel: every holder's reads of the buffers happen before the free. */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (uint32_t i = 0; i < b->nbufs; i++)
        fy_buf_unref(b->bufs[i]);
    free(b->fr);
    free(b->bufs);
    free(b->recs);
    free(b->marks);
    free(b->names);
    free(b);
}

uint8_t fy__batch_type(const fy__batch *b, uint32_t i)
{
    return fy_frame_raw_type(b->fr[i].iov_base);
}

uint64_t fy__batch_seq(const fy__batch *b, uint32_t i)
{
    return fy_frame_raw_seq(b->fr[i].iov_base);
}

/* ---- marks ------------------------------------------------------------------ */

int fy__batch_mark_room(fy__batch *b, size_t name_len)
{
    if (b->nmarks == b->capmarks) {
        uint32_t cap = b->capmarks ? 2 * b->capmarks : 16;
        fy__file_mark *m = realloc(b->marks, cap * sizeof *m);
        if (!m)
            return -ENOMEM;
        b->marks = m;
        b->capmarks = cap;
    }
    if (b->capnames - b->lnames <= name_len) {
        size_t cap = b->capnames ? 2 * (size_t)b->capnames : 512;
        while (cap - b->lnames <= name_len)
            cap *= 2;
        char *n = realloc(b->names, cap);
        if (!n)
            return -ENOMEM;
        b->names = n;
        b->capnames = (uint32_t)cap;
    }
    return 0;
}

void fy__batch_mark_begin(fy__batch *b, uint32_t frame, const fy_file_begin *fb)
{
    size_t len = strlen(fb->name) + 1;
    fy__file_mark *m = &b->marks[b->nmarks++];

    *m = (fy__file_mark){.frame = frame, .type = FY_FT_FILE_BEGIN, .name = b->lnames,
                         .size = fb->size,
                         .source = fb->ext && (fb->fflags & FY_FB_F_SOURCE) ? fb->source : 0};
    memcpy(b->names + b->lnames, fb->name, len);
    b->lnames += (uint32_t)len;
}

void fy__batch_mark_end(fy__batch *b, uint32_t frame, const fy_file_end *fe)
{
    fy__file_mark *m = &b->marks[b->nmarks++];

    *m = (fy__file_mark){.frame = frame, .type = FY_FT_FILE_END, .size = fe->size};
    memcpy(m->sha256, fe->sha256, sizeof m->sha256);
}

void fy__batch_mark_hole(fy__batch *b, uint32_t frame, uint64_t len)
{
    b->marks[b->nmarks++] = (fy__file_mark){.frame = frame, .type = FY_FT_HOLE, .size = len};
}

/* ---- cutting ---------------------------------------------------------------- */

void fy__batch_cut(fy__batch *b, uint32_t n)
{
    b->n = n;
    b->bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        b->bytes += b->fr[i].iov_len;
    while (b->nmarks && b->marks[b->nmarks - 1].frame >= n)
        b->nmarks--;
}

void fy__batch_drop_front(fy__batch *b, uint32_t k)
{
    uint32_t m = 0;

    for (uint32_t i = 0; i < k; i++)
        b->bytes -= b->fr[i].iov_len;
    memmove(b->fr, b->fr + k, (b->n - k) * sizeof *b->fr);
    b->n -= k;
    if (!b->nmarks)
        return; /* (marks may be NULL: no memmove of it) */
    while (m < b->nmarks && b->marks[m].frame < k)
        m++;
    memmove(b->marks, b->marks + m, (b->nmarks - m) * sizeof *b->marks);
    b->nmarks -= m;
    for (uint32_t i = 0; i < b->nmarks; i++)
        b->marks[i].frame -= k;
}
