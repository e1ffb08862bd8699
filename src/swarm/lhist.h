/*
 * lhist.h - a small log-linear latency histogram (HdrHistogram's shape).
 *
 * Values (nanoseconds in the swarm) fall in buckets whose width is 1/128
 * of their power of two, so every recorded value is known to within 0.8 %
 * at any scale from 1 ns to hours, in a fixed 60 KiB table: recording is
 * a shift and an increment, merging is a loop of additions.  Percentiles
 * report the highest value of the bucket (clamped to the exact maximum), so
 * a reported p99 is never below the true one.  One histogram belongs to
 * one thread; merge per-thread histograms after the threads have joined.
 */
#ifndef FY_SWARM_LHIST_H
#define FY_SWARM_LHIST_H

#include <stdint.h>

typedef struct fy_lhist fy_lhist;

/* A zeroed histogram.  0 or -ENOMEM.  Any thread. */
int fy_lhist_new(fy_lhist **out);
/* NULL is allowed. */
void fy_lhist_free(fy_lhist *h);
/* Owner thread only; never fails (values saturate at the top bucket). */
void fy_lhist_record(fy_lhist *h, uint64_t v);
/* dst += src; the caller makes sure neither is being recorded into. */
void fy_lhist_merge(fy_lhist *dst, const fy_lhist *src);

uint64_t fy_lhist_count(const fy_lhist *h);
uint64_t fy_lhist_min(const fy_lhist *h); /* 0 when empty */
uint64_t fy_lhist_max(const fy_lhist *h);
double fy_lhist_mean(const fy_lhist *h);
/* Value at percentile p (0 < p <= 100): the smallest recorded bucket such
 * that at least p % of the values are in it or below, reported as that
 * bucket's highest value clamped to [min, max].  0 when empty. */
uint64_t fy_lhist_percentile(const fy_lhist *h, double p);

#endif
