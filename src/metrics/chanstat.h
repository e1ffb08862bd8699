/*
 * chanstat.h - per-channel figures for /metrics that outlive a channel's
 * writer: every channel on disk, open or not, and counters that do not go
 * back to zero when a channel closes after --channel-idle and reopens.
 *
 * Owned by one actor (the metrics actor); no locking.  On each scrape the
 * owner feeds it the disk (fy_chanstat_scan, at most every few seconds)
 * and each open channel's writer record (fy_chanstat_writer); the table
 * keeps, per channel, the counters of its earlier writers (a new writer is
 * recognised by its actor id) and renders base + current.  A channel that
 * is neither on disk nor open is forgotten.
 */
#ifndef FY_METRICS_CHANSTAT_H
#define FY_METRICS_CHANSTAT_H

#include <stdint.h>

#include "metrics/prom.h"

typedef struct fy_chanstat fy_chanstat;

enum { FY_CS_BYTES, FY_CS_FRAMES, FY_CS_FILES, FY_CS_DAMAGED, FY_CS_SYNC_FAILED, FY_CS_N };

int fy_chanstat_new(fy_chanstat **out); /* 0 or -ENOMEM */
void fy_chanstat_free(fy_chanstat *t);  /* NULL ignored */

/* Read every channel directory under root: bytes of its .log files and
 * frames indexed in its .idx files (stat only, no reads).  Skipped when the
 * last scan is younger than min_ms (now_ms: a monotonic clock).  0 or
 * -errno (the table keeps the last scan). */
int fy_chanstat_scan(fy_chanstat *t, const char *root, uint64_t now_ms, uint64_t min_ms);

/* An open channel's writer answered: actor id and its counters since it
 * opened (v[FY_CS_*]).  -ENOMEM when the channel could not be added. */
int fy_chanstat_writer(fy_chanstat *t, const char *name, uint32_t actor, const uint64_t *v);

/* Start of a gather: writers not heard from in it are taken as closed. */
void fy_chanstat_begin(fy_chanstat *t);

/* Append the per-channel families (stored bytes and frames, and the
 * carried counters) to p, one series per known channel. */
void fy_chanstat_render(fy_chanstat *t, fy_prom *p);

#endif
