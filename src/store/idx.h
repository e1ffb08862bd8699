/*
 * idx.h - how fy_store_open hands a recovered index to the indexer's half
 * (fy__idx_*).  Internal to src/store.
 */
#ifndef FERRY_STORE_IDX_H
#define FERRY_STORE_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/store.h"

/* Build the indexer's half.  bases[] are the segments (sorted; the last is
 * current), fd is the current segment's index file (O_RDWR) holding every
 * record below next_seq.  Takes ownership of dirfd and fd on success only.
 * Returns 0 or -ENOMEM. */
int fy__idx_new(int dirfd, int fd, const uint64_t *bases, size_t n, uint64_t next_seq,
                fy_idx **out);

#endif
