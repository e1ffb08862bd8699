/*
 * epochs.h - the epochs of a channel's log: the file DIR/epochs in the
 * channel's directory (fy_epochs).
 *
 * Each time ferryd opens a channel's log it begins an epoch: a random
 * nonzero id and the log's next seq at that moment (start_seq).  Frames a
 * relay sent before a power loss may be gone from the log after it, and
 * the seqs they had are given to other frames; a receiver that says which
 * epoch its frames came from lets the relay tell how far they are still
 * the log's own (docs/reliability.md, "A receiver ahead of the relay's
 * log").  The file keeps the last FY_EPOCHS_KEEP epochs, one line of text
 * each ("ID START_SEQ", ID in hex), oldest first, so an operator can read
 * it.  Any thread; the caller serialises the calls for one channel (the
 * registry opens a channel once at a time).
 */
#ifndef FERRY_STORE_EPOCHS_H
#define FERRY_STORE_EPOCHS_H

#include <stddef.h>
#include <stdint.h>

#define FY_EPOCHS_KEEP 64u

typedef struct fy_epoch {
    uint64_t id;        /* nonzero */
    uint64_t start_seq; /* the log's next seq when the epoch began */
} fy_epoch;

typedef struct fy_epochs {
    unsigned n;                   /* 1.. once begun; e[n - 1] is the current epoch */
    fy_epoch e[FY_EPOCHS_KEEP];
} fy_epochs;

/* Begin a new epoch of chan_dir's log, whose next seq is next_seq: read
 * the file (none: no history), append the new epoch (an id none of the
 * kept ones has), keep the last FY_EPOCHS_KEEP and replace the file (tmp,
 * fsync, rename, fsync of the directory), so the epoch is on disk before
 * the channel serves anyone.  *out is always filled, the new epoch last.
 * 0; -FY_ECORRUPT when the old file did not parse (its history is dropped,
 * the new file is written); or -errno when writing failed (the epoch holds
 * for this run; a receiver that names it after a restart counts as one of
 * unknown epoch). */
int fy_epochs_begin(const char *chan_dir, uint64_t next_seq, fy_epochs *out);

/* Cluster mode (docs/cluster.md): the ids are cluster epochs, written by
 * the cluster's rules instead of at each opening.  Read chan_dir's file
 * into *out (n = 0: none).  0 or -FY_ECORRUPT (n = 0 then). */
int fy_epochs_load(const char *chan_dir, fy_epochs *out);
/* Record that epoch id begins at start_seq: nothing when the last entry
 * is id already; else entries that begin after start_seq are dropped
 * (a history the log no longer holds), the entry appended, the oldest
 * dropped past FY_EPOCHS_KEEP, and the file replaced durably (as
 * fy_epochs_begin).  *t is the table before, updated in place.  0, 1 when
 * nothing changed, or -errno (t updated, the file not). */
int fy_epochs_add(const char *chan_dir, fy_epochs *t, uint64_t id, uint64_t start_seq);
/* The id of the epoch seq belongs to (the last that begins at or below
 * it), 0 when none does. */
uint64_t fy_epochs_of(const fy_epochs *t, uint64_t seq);

/* The seq below which frames of epoch id are the log's own: the lowest
 * start_seq of the epochs after it.  UINT64_MAX when id is the current
 * epoch, 0 (none) or not kept (unknown): then only the log's end bounds
 * them. */
uint64_t fy_epochs_valid_below(const fy_epochs *t, uint64_t id);

#endif
