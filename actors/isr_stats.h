/*
 * isr_stats.h - the replication figures /metrics shows for a cluster
 * leader (docs/observability.md): per channel the acks waiting for the
 * in-sync replicas, per follower its lag in frames and seconds.  Channel
 * writers put them (actors/writer_isr.c, each on its own turn), the
 * metrics actor reads them; one process-wide table under a mutex.
 */
#ifndef FERRY_ACTORS_ISR_STATS_H
#define FERRY_ACTORS_ISR_STATS_H

#include <stdint.h>

/* Any thread.  A full or unallocatable table drops the figure (metrics only). */
void fy__isrst_chan(const char *chan, uint64_t acks_waiting);
void fy__isrst_node(const char *chan, const char *node, uint64_t lag_frames, uint64_t lag_ms);
/* The channel closed: its rows go. */
void fy__isrst_drop(const char *chan);

/* Each row, under the table's lock (fn must not call back in): node is
 * NULL for a channel's row (a = acks waiting), else a follower's (a = lag
 * in frames, b = lag in ms). */
typedef void (*fy__isrst_fn)(void *arg, const char *chan, const char *node, uint64_t a,
                             uint64_t b);
void fy__isrst_each(fy__isrst_fn fn, void *arg);

#endif
