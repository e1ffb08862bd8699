/*
 * catalog.h - what a channel directory holds, file by file, and the two
 * small files beside its segments that say what an operator decided:
 * `deleted` (files removed by `ferry rm`) and `retain` (the channel's own
 * retention, `ferry retain`).  docs/storage.md, "The catalog".
 *
 * The file list is read from the segments themselves (the file-begin and
 * file-end frames), read-only and without the writer: it may run beside
 * an open channel, and then sees the frames that were whole on disk when
 * it read them (a torn last frame just ends the walk).  Nothing here keeps
 * state between calls; every call may run on any thread.
 */
#ifndef FERRY_STORE_CATALOG_H
#define FERRY_STORE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/proto.h"
#include "ferry/store.h"

/* One line per deleted file: SEQ_FIRST SEQ_LAST NAME BEGIN_SEG BEGIN_OFF END_SEG END_OFF */
#define FY_CAT_DELETED "deleted"
#define FY_CAT_RETAIN "retain"   /* one line: bytes=N age=S (0 = no limit) */

/* One complete file (its file-begin and file-end are both held). */
typedef struct fy_cat_file {
    char name[FY_NAME_MAX + 1];
    uint64_t size;
    uint8_t sha256[FY_SHA256_LEN];
    uint64_t seq_first, seq_last; /* its file-begin's and file-end's seq */
    int64_t stored_s;             /* the mtime of the segment holding its file-end */
    fy_pos begin, end;            /* its file-begin, and just after its file-end */
    bool deleted;                 /* named in `deleted`: never listed or served */
} fy_cat_file;

typedef struct fy_cat {
    fy_cat_file *f; /* in seq order, deleted ones included (flagged) */
    size_t n, cap;
    uint64_t segments, bytes;     /* data segments and their bytes on disk */
    uint64_t first_seq, next_seq; /* frames held: [first_seq, next_seq) */
    uint64_t end_seq;             /* seq after the last complete file's file-end; 0: none */
    int64_t oldest_s, newest_s;   /* mtimes of the oldest and newest segment */
    bool partial;                 /* the log ends inside a file */
} fy_cat;

/* Read the file list of the channel in dir.  0, -ENOENT (no such
 * directory), -ENOMEM, or -errno.  Free with fy_cat_free. */
int fy_cat_scan(const char *dir, fy_cat *c);
void fy_cat_free(fy_cat *c);

/* The latest live (not deleted) version of name, or with seq != 0 the one
 * whose file-begin is seq.  NULL when there is none. */
const fy_cat_file *fy_cat_find(const fy_cat *c, const char *name, uint64_t seq);

/* A deleted file where a forwarder skips it: seqs [first, last], bytes
 * [begin, end) of the log. */
typedef struct fy_cat_tomb {
    uint64_t first, last;
    fy_pos begin, end;
} fy_cat_tomb;

/* The deleted files of the channel in dir, sorted by seq (*out malloc'd,
 * NULL when *n == 0).  0 or -errno (-ENOENT: no channel). */
int fy_cat_tombs(const char *dir, fy_cat_tomb **out, size_t *n);

/* Add f to dir's `deleted` file (appended, fsync'd).  0 or -errno. */
int fy_cat_delete(const char *dir, const fy_cat_file *f);

/* The channel's own retention from dir's `retain`: 1 with *bytes and
 * *secs set (0 = no limit), 0 when there is no such file, -errno. */
int fy_cat_retain_load(const char *dir, uint64_t *bytes, uint64_t *secs);
/* The same through a directory fd (the log's), for the retention pass. */
int fy__cat_retain_at(int dirfd, uint64_t *bytes, uint64_t *secs);
/* Write `retain` (atomically: temp file, fsync, rename).  0 or -errno. */
int fy_cat_retain_save(const char *dir, uint64_t bytes, uint64_t secs);

/* Whether every frame of [base, next) belongs to a deleted file, by dir's
 * `deleted` file (a segment the retention pass may remove).  1, 0, -errno. */
int fy__cat_seg_deleted(int dirfd, uint64_t base, uint64_t next);

/* The channel names under root (DATA/channels), sorted; names that are
 * not valid channel names are left out.  *names is one malloc'd array of
 * n entries.  0 or -errno. */
int fy_cat_channels(const char *root, char (**names)[FY_NAME_MAX + 1], size_t *n);

/* Delete channel name under root: its directory is first renamed to a
 * name no channel can have (so it is gone at once and for good), then
 * emptied and removed.  0, -ENOENT, or -errno. */
int fy_cat_remove_channel(const char *root, const char *name);

#endif
