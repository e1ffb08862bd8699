/*
 * place.h - a received file's last step: its mode and mtime, and its name
 * under --out when a file of that name is already there (--on-conflict).
 *
 * A receiver never overwrites a different file silently.  The existing
 * file is first compared with the new one (size, then SHA-256): the same
 * bytes need no decision (the new copy is dropped, the file counts as
 * received).  Otherwise the policy decides: rename (the default: the new
 * file becomes NAME.1, NAME.2, ..., the first free one, taken with
 * RENAME_NOREPLACE so a race cannot overwrite either), keep (the existing
 * file stays, the new copy is dropped with a warning), replace (the new
 * file takes the name, as `mv` would, with a log line).
 */
#ifndef FY_CLI_PLACE_H
#define FY_CLI_PLACE_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/proto.h"

enum fy_cli_conflict {
    FY_CLI_CONFLICT_RENAME = 0, /* default */
    FY_CLI_CONFLICT_KEEP = 1,
    FY_CLI_CONFLICT_REPLACE = 2
};

/* What fy_cli_place did. */
enum fy_cli_placed {
    FY_CLI_PLACED_NEW = 0,     /* the name was free */
    FY_CLI_PLACED_SAME,        /* an identical file was there: the new copy dropped */
    FY_CLI_PLACED_RENAMED,     /* a different file was there: new one under NAME.k */
    FY_CLI_PLACED_KEPT,        /* a different file was there and kept: new one dropped */
    FY_CLI_PLACED_REPLACED     /* a different file was there and replaced */
};

/* "keep", "replace", "rename" -> the enum; -1 for anything else. */
int fy_cli_conflict_parse(const char *s);

/* Give the open, complete file fd the mode and mtime its file-begin
 * carried (FY_FB_F_META; setuid/setgid bits are never set).  0 or -errno. */
int fy_cli_place_meta(int fd, const fy_file_begin *fb);

/* Move the checked temp file `part` (in directory pdir) to `base` there
 * under policy; sha/size: the new file's.  *placed says what happened and
 * final (cap bytes) the name it got (base, or base.k).  0 or -errno (the
 * temp file is left for the caller to remove). */
int fy_cli_place(int pdir, const char *part, const char *base, int policy,
                 const uint8_t sha[FY_SHA256_LEN], uint64_t size, int *placed, char *final,
                 size_t cap);

/* A received file's last step, for recv: size (a trailing hole), mode and
 * mtime (fb NULL: not), fsync, close fd, fy_cli_place, close pdir, and a
 * log line when a file of that name was there.  fd and pdir are closed
 * either way, the temp file removed on failure.  0, or -errno with *call
 * naming the call that failed. */
typedef struct fy_cli_place_req {
    int fd, pdir;
    const char *part, *base, *name; /* temp name, final base name, wire name (logs) */
    const fy_file_begin *fb;
    int policy;
    uint64_t size;
    const uint8_t *sha;
} fy_cli_place_req;
int fy_cli_place_finish(const fy_cli_place_req *q, const char **call);

#endif
