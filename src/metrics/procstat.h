/*
 * procstat.h - the process figures every Prometheus exporter has
 * (process_resident_memory_bytes, process_open_fds, ...), read from /proc,
 * and the free space of a directory's file system (statvfs).
 *
 * Plain functions, no state but a cached boot time: the caller (the metrics
 * actor) reads them on each scrape.
 */
#ifndef FY_METRICS_PROCSTAT_H
#define FY_METRICS_PROCSTAT_H

#include <stdint.h>

#include "metrics/prom.h"

typedef struct fy_procstat {
    uint64_t rss_bytes, vm_bytes;
    uint64_t open_fds, max_fds;
    double cpu_seconds;   /* user + system */
    double start_seconds; /* since the Unix epoch */
} fy_procstat;

/* The calling process's figures (any thread).  0 or -errno; on a partial
 * failure the figures that could be read are set, the others zero. */
int fy_procstat_read(fy_procstat *out);

/* Append the process_* families to p (read now). */
void fy_procstat_render(fy_prom *p);

/* Free bytes (for an unprivileged writer, f_bavail) and the size of the
 * file system holding dir.  0 or -errno. */
int fy_procstat_disk(const char *dir, uint64_t *free_bytes, uint64_t *size_bytes);

#endif
