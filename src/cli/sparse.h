/*
 * sparse.h - where a sparse file's holes are, for `ferry send`.
 *
 * A hole (a range the file system holds no blocks for, which reads as
 * zeros) is sent as one hole frame instead of its zeros, so a 64 MiB
 * file that is mostly hole costs a few frames on the link and on the
 * relay's disk, and stays sparse at receivers.  SEEK_DATA/SEEK_HOLE answer
 * it; a file system without them reports the whole file as data.
 */
#ifndef FY_CLI_SPARSE_H
#define FY_CLI_SPARSE_H

#include <stdbool.h>
#include <stdint.h>

/* The extent of fd (size bytes long) that starts at pos < size: a hole
 * (*hole true) or data, ending at *end (> pos, <= size).  Holes shorter
 * than min_hole are reported as data.  0 or -errno.  Moves fd's offset. */
int fy_cli_sparse_extent(int fd, uint64_t pos, uint64_t size, uint64_t min_hole, bool *hole,
                         uint64_t *end);

#endif
