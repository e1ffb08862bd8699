/*
 * batch.c - the run of frames that travels session -> writer -> forwarders
 * (fy__batch).  One allocation per batch, shared by every forwarder of the
 * channel through one reference count, so forwarding to N receivers costs N
 * atomic increments per batch, not per frame.  Frames and buffers are
 * separate lists: small frames share a buffer, so a 128-byte frame does
 * not take a 4 KiB pool buffer of its own.
 */
#include <stdlib.h>

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
    free(b);
}

uint8_t fy__batch_type(const fy__batch *b, uint32_t i)
{
    return ((const uint8_t *)b->fr[i].iov_base)[5];
}

/* The seq: little-endian at header offset 16 (docs/protocol.md). */
uint64_t fy__batch_seq(const fy__batch *b, uint32_t i)
{
    const uint8_t *raw = b->fr[i].iov_base;
    uint64_t v = 0;

    for (int k = 7; k >= 0; k--)
        v = v << 8 | raw[16 + k];
    return v;
}
