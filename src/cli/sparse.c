/*
 * sparse.c - a file's data and holes (see sparse.h).
 *
 * Two lseeks per extent.  The file may change while it is sent (then the
 * digest at the end is what decides); the answers are only clipped to the
 * size the file-begin announced, so a file that grew is sent at the size
 * it had and one that shrank fails its read as before.
 */
#include "cli/sparse.h"

#include <errno.h>
#include <unistd.h>

int fy_cli_sparse_extent(int fd, uint64_t pos, uint64_t size, uint64_t min_hole, bool *hole,
                         uint64_t *end)
{
    *hole = false;
    *end = size;
    off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
    if (d < 0 && errno == ENXIO)
        d = (off_t)size; /* no data from pos on: a hole to the end */
    else if (d < 0)
        return errno == EINVAL || errno == EOPNOTSUPP ? 0 : -errno; /* no hole support: data */
    if ((uint64_t)d > pos) {
        uint64_t e = (uint64_t)d < size ? (uint64_t)d : size;
        if (e - pos >= min_hole || e == size) {
            *hole = true;
            *end = e;
            return 0;
        }
        /* a short hole is sent as zeros along with the data after it */
    }
    off_t h = lseek(fd, (off_t)((uint64_t)d > pos ? (uint64_t)d : pos), SEEK_HOLE);
    if (h < 0)
        return -errno;
    *end = (uint64_t)h < size ? (uint64_t)h : size;
    if (*end <= pos)
        *end = size; /* the file changed under us: read the rest as data */
    return 0;
}
