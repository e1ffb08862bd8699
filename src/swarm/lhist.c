/*
 * lhist.c - log-linear histogram (see lhist.h for the shape and why).
 *
 * Bucket index of v: values below 256 have a bucket each; above, v is
 * split into its power of two e and the 7 bits after the leading one, so
 * bucket = (e - 6) * 128 + those bits.  The index is monotonic in v, which
 * is what lets a percentile walk the table in order.
 */
#include "swarm/lhist.h"

#include <errno.h>
#include <stdlib.h>

#define SUB_BITS 7
#define SUB ((uint64_t)1 << SUB_BITS)
#define NBUCKETS ((64 - SUB_BITS) * SUB + SUB)

struct fy_lhist {
    uint64_t count, min, max;
    double sum;
    uint64_t b[NBUCKETS];
};

static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - SUB_BITS; /* >= 1: v >> shift is in [SUB, 2*SUB) */
    return (shift + 1) * (unsigned)SUB + (unsigned)((v >> shift) - SUB);
}

/* Highest value that maps to bucket i. */
static uint64_t bucket_high(unsigned i)
{
    if (i < 2 * SUB)
        return i;
    unsigned shift = i / (unsigned)SUB - 1;
    uint64_t mant = SUB + i % SUB;
    if (shift + SUB_BITS + 1 >= 64 && mant == 2 * SUB - 1)
        return UINT64_MAX;
    return ((mant + 1) << shift) - 1;
}

int fy_lhist_new(fy_lhist **out)
{
    fy_lhist *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    *out = h;
    return 0;
}

void fy_lhist_free(fy_lhist *h)
{
    free(h);
}

void fy_lhist_record(fy_lhist *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += (double)v;
}

void fy_lhist_merge(fy_lhist *dst, const fy_lhist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < NBUCKETS; i++)
        dst->b[i] += src->b[i];
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
}

uint64_t fy_lhist_count(const fy_lhist *h)
{
    return h->count;
}

uint64_t fy_lhist_min(const fy_lhist *h)
{
    return h->min;
}

uint64_t fy_lhist_max(const fy_lhist *h)
{
    return h->max;
}

double fy_lhist_mean(const fy_lhist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

uint64_t fy_lhist_percentile(const fy_lhist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p > 100.0)
        p = 100.0;
    /* rank of the value we want, 1-based, rounded up so p99 of 100 values
     * is the 99th and p100 the largest; the small slack keeps 99.9 % of
     * 1000 at 999 although 99.9 is not exact in binary */
    double r = p * (double)h->count / 100.0;
    r -= r * 1e-12;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}
