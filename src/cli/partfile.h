/*
 * partfile.h - the temp file a receiver writes a file into before it is
 * checked and renamed into place (fy_cli_part), relative to a directory fd.
 *
 * Its name always fits in one path component and is the same for the same
 * file name every time, so a receiver restarted after a crash finds its
 * partial file again: ".NAME.part" when that is at most 255 bytes, else
 * "." + the first 200 bytes of NAME (cut at a UTF-8 character boundary) +
 * "~" + 16 hex digits of SHA-256(NAME) + ".part" (223 bytes at most).  A
 * name starting with '.' is never a received file's (fy_name_check).
 *
 * Nothing found at that name is trusted: a symlink, FIFO or hard link
 * planted there (by another local user, or left by anything else) is never
 * followed or written through.  Creating unlinks whatever entry is there
 * and makes a new file with O_CREAT|O_EXCL|O_NOFOLLOW; reopening opens
 * with O_NOFOLLOW and takes only a regular file with one link; committing
 * is renameat(2), which replaces the final name's entry (a symlink there
 * included) and never follows it.  Every call is relative to the dirfd
 * given, so a caller with a tree of directories passes the fd of the
 * file's own directory and the last path component.
 *
 * One fy_cli_part per file in progress; one thread at a time.
 */
#ifndef FY_CLI_PARTFILE_H
#define FY_CLI_PARTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/proto.h"

#define FY_CLI_PART_NAME_CAP 256u /* a temp name and its NUL */

typedef struct fy_cli_part {
    int dirfd;                        /* not owned */
    int fd;                           /* -1: no temp file open */
    char tmp[FY_CLI_PART_NAME_CAP];   /* the temp file's name in dirfd */
    char name[FY_NAME_MAX + 1];       /* the final name in dirfd */
} fy_cli_part;

/* An empty handle (fd -1).  Call before any other. */
void fy_cli_part_init(fy_cli_part *p);

/* The temp name for file name `name` (1..FY_NAME_MAX bytes) into out (cap
 * >= FY_CLI_PART_NAME_CAP).  0, or -ENAMETOOLONG / -EINVAL for a name out of
 * range.  Any thread. */
int fy_cli_part_name(const char *name, char *out, size_t cap);

/* Start an empty temp file for `name` in dirfd, replacing any entry at the
 * temp name (never following it).  p must not hold an open file.  0, or
 * -errno (p stays empty); *call names the syscall that failed. */
int fy_cli_part_open(fy_cli_part *p, int dirfd, const char *name, const char **call);

/* Open the temp file an earlier run left for `name`, for writing at its
 * end; *size gets its length.  -ENOENT when there is none; -ELOOP / -EINVAL
 * when the entry is not a regular file of one link (not ours: call
 * fy_cli_part_open, which replaces it); else -errno.  p stays empty on
 * failure. */
int fy_cli_part_reopen(fy_cli_part *p, int dirfd, const char *name, uint64_t *size);

/* The file is complete and checked: fsync it, close it and rename it to
 * its final name (replacing a file or symlink of that name, never
 * following one).  On failure the temp file is removed.  0 or -errno;
 * *call names the syscall.  p is empty afterwards either way.  The
 * directory is not fsync'd (the caller does it once for many files). */
int fy_cli_part_commit(fy_cli_part *p, const char **call);

/* Close and remove the temp file, if one is open.  p is empty afterwards. */
void fy_cli_part_discard(fy_cli_part *p);

/* Is a temp file open? */
static inline bool fy_cli_part_active(const fy_cli_part *p)
{
    return p->fd >= 0;
}

#endif
