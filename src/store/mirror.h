/*
 * mirror.h - an edge relay's mirror state for one channel: the file
 * DIR/upstream in the channel's directory (fy_mirror).
 *
 * Its presence marks the channel as a mirror (a local sender is refused
 * even while nobody receives); its content is what the upstream actor
 * (actors/upstream.c) needs after a restart: the seq offset between the
 * upstream's numbering and the local one, and where the file in progress
 * began.  One line of text, "delta=N file_begin=S upstream=HOST:PORT", and
 * " epoch=E" after it once the upstream's log epoch is known, so an
 * operator can read it.  The file outlives a restart without --upstream:
 * the channel stays a mirror (actors/writer.c refuses local senders).  Any thread; the caller serialises writes to
 * one channel's file (its upstream actor alone writes it).
 */
#ifndef FERRY_STORE_MIRROR_H
#define FERRY_STORE_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fy_mirror_state {
    int64_t delta;       /* upstream seq - local seq */
    uint64_t file_begin; /* local seq of the file in progress's file-begin, 0 = none */
    /* The upstream log's epoch the mirrored frames came from (0: unknown),
     * so an edge restarted after its origin lost frames still says it
     * (docs/reliability.md, "A receiver ahead of the relay's log"). */
    uint64_t epoch;
    /* Load only: the upstream the file names ("" when it names none). */
    char upstream[256];
} fy_mirror_state;

/* What a mirror skipped: before local seq at_seq, the upstream's frames
 * [up_from, up_to), which it no longer held (code FY_ESKIPPED: its
 * retention removed them before this edge mirrored them).  Kept in the
 * channel's file DIR/skipped, the last FY_MIRROR_SKIPS_MAX, one line each:
 * "at_seq=N up_from=A up_to=B code=C", so a receiver that crosses at_seq
 * later (catch-up, a reconnect) is told too (docs/reliability.md). */
#define FY_MIRROR_SKIPS_MAX 64
typedef struct fy_mirror_skip {
    uint64_t at_seq, up_from, up_to;
    uint32_t code;
} fy_mirror_skip;

/* Add s to chan_dir's skipped file (the oldest dropped past the maximum),
 * durably (tmp, fsync, rename).  0 or -errno.  The mirror's actor alone
 * writes it. */
int fy_mirror_skip_add(const char *chan_dir, const fy_mirror_skip *s);

/* The records with at_seq >= from_seq, oldest first, at most cap of them
 * (the newest kept) into out.  Their count (0: none or no file) or -errno.
 * Any thread. */
int fy_mirror_skip_load(const char *chan_dir, uint64_t from_seq, fy_mirror_skip *out, size_t cap);

/* A file in the channel's log, in local seqs (begin 0: none). */
typedef struct fy_mirror_file {
    uint64_t begin, end, size;
    char name[256];
    uint8_t sha256[32];
} fy_mirror_file;

/* The last cap files completed in the log of chan_dir (both their
 * file-begin and file-end in its last two segments), oldest first, and the
 * file in progress after them into *partial (begin 0: none).  Walks frame
 * headers (one pread each) and reads the payloads of file-begins and
 * file-ends, up to a frame that does not check (the end, or a torn tail
 * the writer is still writing).  For an edge that lost its memory of them
 * in a restart (actors/upstream_recon.c).  Count, or -errno. */
int fy_mirror_tail_files(const char *chan_dir, fy_mirror_file *out, size_t cap,
                         fy_mirror_file *partial);

/* The state file's path for channel directory chan_dir, into buf. */
void fy_mirror_path(const char *chan_dir, char *buf, size_t cap);

/* 1 with *st read from chan_dir's state file, 0 when there is none (or it
 * does not begin with a delta).  A field the file lacks is 0 (""). */
int fy_mirror_load(const char *chan_dir, fy_mirror_state *st);

/* Replace the state file whole (a temporary file renamed over it, so a
 * crash leaves the old or the new one); with sync, the new file's data is
 * fsync'd before the rename.  upstream is recorded for the operator.
 * 0 or -errno. */
int fy_mirror_save(const char *chan_dir, const fy_mirror_state *st, const char *upstream,
                   bool sync);

#endif
