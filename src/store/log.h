/*
 * log.h - how fy_store_open hands a recovered channel to the writer's half
 * (fy__log_*).  Internal to src/store.
 */
#ifndef FERRY_STORE_LOG_H
#define FERRY_STORE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/store.h"

/* One data segment the writer knows: its base seq and size in bytes. */
typedef struct fy__log_seg {
    uint64_t base;
    uint64_t bytes;
} fy__log_seg;

/* Build the writer's half.  o must be normalised (no zero defaults left).
 * segs[n-1] is the current segment, open as fd (O_RDWR) with its data
 * ending at segs[n-1].bytes.  Takes ownership of dirfd and fd on success
 * only.  Returns 0 or -ENOMEM. */
int fy__log_new(int dirfd, const fy_store_opts *o, int fd, const fy__log_seg *segs, size_t n,
                uint64_t next_seq, fy_log **out);

#endif
