/*
 * store.h - one channel's log on disk: data segments and their index.
 *
 * A channel directory holds segments named by the sequence number of their
 * first frame, zero-padded to 20 digits: <base>.log holds the frames exactly
 * as received (header + payload, back to back) and <base>.idx holds one
 * fixed-size record per frame (fy_idx_rec).  docs/storage.md is the byte
 * layout.
 *
 * Ownership follows the actors: fy_store_open() recovers the directory and
 * returns two halves: the fy_log (appends; owned by the channel's
 * file-writer) and the fy_idx (index appends and look-ups; owned by the
 * indexer).  Forwarders read with their own fy_logrd, which opens the
 * segment files read-only and reads only below an end position the writer
 * has published to them in messages.
 */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct fy_log fy_log;
typedef struct fy_idx fy_idx;
typedef struct fy_logrd fy_logrd;

/* Where a frame is: segment (its base seq) and byte offset in that segment. */
typedef struct fy_pos {
    uint64_t seg;
    uint64_t off;
} fy_pos;

/* One index record (32 bytes on disk, little-endian). */
typedef struct fy_idx_rec {
    uint64_t seq;
    uint64_t seg;
    uint64_t off;  /* of the frame's header in the segment */
    uint32_t len;  /* header + payload */
    uint32_t crc;  /* the frame's payload CRC32C, as in its header */
} fy_idx_rec;

enum fy_fsync_mode {
    FY_FSYNC_NEVER = 0,
    FY_FSYNC_INTERVAL = 1, /* fy_log_sync when fsync_ms has passed (the writer's timer) */
    FY_FSYNC_FILE_END = 2  /* at every file-end frame */
};

typedef struct fy_store_opts {
    uint64_t segment_bytes;  /* roll when a segment would pass this; 0 = 256 MiB */
    size_t max_payload;      /* frames larger than this are corrupt; 0 = 1 MiB */
    uint64_t retain_bytes;   /* 0 = keep everything */
    uint64_t retain_secs;    /* 0 = keep everything */
    bool buffered;           /* append through the page cache, not O_DIRECT (log.c) */
} fy_store_opts;

/* What recovery found and did (for the log line and for tests). */
typedef struct fy_recovery {
    uint64_t segments;
    uint64_t frames;          /* frames in the channel after recovery */
    uint64_t first_seq, next_seq;
    uint64_t truncated_bytes; /* cut from the tail of the last segment */
    uint64_t index_dropped;   /* index records removed (ahead of or not matching the data) */
    uint64_t index_added;     /* index records rebuilt from the data */
    uint64_t scanned_bytes;   /* data bytes read by recovery */
    uint64_t segments_dropped; /* after an open (never sealed) segment that was cut */
} fy_recovery;

/* Open (creating if needed) the channel log in directory dir, recovering it:
 * check the tail of the last segment, cut a torn or corrupt last frame,
 * bring the index in line with the data.  Reads only the data beyond the
 * last good index record.  rep may be NULL.  Returns 0 or -errno /
 * -FY_ECORRUPT (damage recovery cannot repair, e.g. a corrupt frame in the
 * middle of a non-last segment). */
int fy_store_open(const char *dir, const fy_store_opts *o, fy_log **log, fy_idx **idx,
                  fy_recovery *rep);

/* ---- the sync worker (syncer.c) ------------------------------------------- */

/* One thread that makes logs durable so their writers never wait for the
 * device: fdatasync of a segment, the seal of a segment the writer rolled
 * away from, the directory fsync that makes a new segment's name durable.
 * Jobs run one at a time in the order they were queued (so each log's
 * durable position only moves forward); a job for a log that already has
 * an unstarted sync of the same segment queued is merged into it.  One
 * per relay; any thread may queue (through fy_log_*), the worker runs the
 * jobs. */
typedef struct fy_syncer fy_syncer;

/* Start the worker thread.  0 or -errno. */
int fy_syncer_start(fy_syncer **out);
/* Run what is queued, then stop and join the thread.  NULL is ignored.
 * Every log using s must be closed first. */
void fy_syncer_stop(fy_syncer *s);
/* Test hook: the job after the next `after` ones fails with err (a
 * negative errno) without syncing, as a failed fdatasync would. */
void fy_syncer_fail_after(fy_syncer *s, unsigned after, int err);
/* Test hook: once `after` more bytes were appended by the logs that use s,
 * appends fail with err (a negative errno: -ENOSPC, -EIO, ...) for `ms`
 * milliseconds, the first one part way (a torn tail, cut back as a real
 * failed write is); then they succeed again.  Buffered appends only. */
void fy_syncer_write_fault(fy_syncer *s, int err, uint64_t after, uint64_t ms);

/* How a log hears that a job finished, on the worker's thread: frames below
 * seq (bytes: fy_log_bytes at the time it was queued) are durable, or the
 * sync failed (rc < 0: nothing after the previous report can be trusted).
 * It must only hand the figures to the log's owner (a message), which
 * passes them to fy_log_synced. */
typedef void (*fy_log_synced_fn)(void *arg, uint64_t seq, uint64_t bytes, int rc);

/* ---- fy_log: the writer's half --------------------------------------------- */

/* Append n complete frames (frames[i] = one frame's header+payload bytes)
 * with as few write calls as possible, rolling the segment first when a frame
 * would pass segment_bytes.  Fills recs[i] for each frame.  Frames must
 * carry consecutive seqs starting at fy_log_next_seq().  Returns 0 or -errno
 * (-FY_ESEQ for a wrong sequence); on error nothing past the last whole
 * frame is kept (fy_log_next_seq() says how many frames were; a batch that
 * fails its checks writes nothing). */
int fy_log_append(fy_log *l, const struct iovec *frames, size_t n, fy_idx_rec *recs);
uint64_t fy_log_next_seq(const fy_log *l);
uint64_t fy_log_first_seq(const fy_log *l);
/* End of the written data (the next frame's position). */
fy_pos fy_log_end(const fy_log *l);
/* True when an append of this many bytes goes to the disk with O_DIRECT and
 * so waits for it (the default for big appends where the filesystem takes
 * it; fy_store_opts.buffered turns it off). */
bool fy_log_direct(const fy_log *l, uint64_t bytes);
/* fdatasync the current segment, on the caller's thread, after waiting
 * for the log's jobs on the sync worker (shutdown and close).  Everything
 * appended is then durable.  Returns 0 or -errno. */
int fy_log_sync(fy_log *l);

/* Write-behind.  With a sync worker set, the log never syncs on the
 * caller's thread except in fy_log_sync: a roll opens the new segment at
 * once and queues the old one's seal (fdatasync, header flag, fdatasync)
 * and the directory's fsync; fy_log_sync_start queues a sync of what was
 * appended so far.  done(arg, ...) reports each job (see fy_log_synced_fn).
 * Without one (tools, tests), rolls seal on the caller's thread. */
void fy_log_set_syncer(fy_log *l, fy_syncer *s, fy_log_synced_fn done, void *arg);
/* Queue a sync of everything appended so far; nothing when that is already
 * durable or queued.  Without a sync worker it is fy_log_sync, at once.
 * 0, or -errno (then nothing was queued). */
int fy_log_sync_start(fy_log *l);
/* The owner, with a report of done: moves the durable position forward.
 * After a failed sync the log is failed for good: the durable position
 * stays, appends return the error (the pages may be gone: a sync is never
 * retried and called durable).  Returns 0 or that error. */
int fy_log_synced(fy_log *l, uint64_t seq, uint64_t bytes, int rc);
/* After a failed sync (fy_log_failed): cut the log back to its durable
 * end, what the last good sync covered -- the frames after it may be gone
 * from the disk whatever the page cache shows, and a later sync that
 * succeeds would not bring them back.  Segments rolled to after that point
 * are deleted (data and index), the one it lies in is truncated there and
 * is the current segment again, with the open flag (recovery repairs its
 * index).  Waits for the log's jobs first.  Call it only to close the log
 * next (the log stays failed), best with the indexer stopped (records it
 * writes later past the cut are dropped by recovery).  *dropped:
 * the bytes cut.  0 (also when nothing needed cutting) or -errno. */
int fy_log_rewind(fy_log *l, uint64_t *dropped);
/* Bytes appended since the log was opened, and how many of them are
 * durable; the frames below fy_log_durable_seq are.  0 or the sync error
 * that failed the log. */
uint64_t fy_log_bytes(const fy_log *l);
uint64_t fy_log_durable_bytes(const fy_log *l);
uint64_t fy_log_durable_seq(const fy_log *l);
int fy_log_failed(const fy_log *l);
/* Remove whole old segments (never the current one) past the retention
 * limits; now_s is wall-clock seconds.  Sets *first_seq to the new first
 * sequence.  The index half must then fy_idx_trim() to it.  Returns the
 * number of segments removed, or -errno.  Age = the segment file's mtime. */
int fy_log_retain(fy_log *l, uint64_t now_s, uint64_t *first_seq);
void fy_log_close(fy_log *l);

/* ---- fy_idx: the indexer's half -------------------------------------------- */

/* Append the records of frames the log stored, buffered.  Returns 0 or
 * -errno / -FY_ESEQ; after an I/O error (a full disk) the records from
 * fy_idx_next_seq() on were not taken: the caller keeps them and offers
 * them again later.  Records taken are found by look-ups even while they
 * cannot be written. */
int fy_idx_append(fy_idx *x, const fy_idx_rec *recs, size_t n);
/* Look up seq.  Returns 0, or -FY_ENOSEQ if seq is not (or no longer) held,
 * -FY_ECORRUPT if its record is damaged (fy_store_check reports it). */
int fy_idx_lookup(fy_idx *x, uint64_t seq, fy_idx_rec *out);
/* Drop index files of segments below first_seq (after fy_log_retain).
 * Returns the number removed, or -errno. */
int fy_idx_trim(fy_idx *x, uint64_t first_seq);
int fy_idx_sync(fy_idx *x);
void fy_idx_close(fy_idx *x);
/* Added: write the buffered records (no fdatasync), e.g. on the indexer's
 * idle timer, so a crash costs recovery less re-scanning.  Appends flush by
 * themselves every 256 records or 8 MiB of data described.  0 or -errno. */
int fy_idx_flush(fy_idx *x);
/* Added: the next seq fy_idx_append expects, and the oldest seq held. */
uint64_t fy_idx_next_seq(const fy_idx *x);
uint64_t fy_idx_first_seq(const fy_idx *x);

/* ---- fy_logrd: a forwarder's reader ---------------------------------------- */

int fy_logrd_open(const char *dir, fy_logrd **out);
void fy_logrd_close(fy_logrd *r);
/* Position the reader at a frame (from the index, or from a live message). */
int fy_logrd_seek(fy_logrd *r, fy_pos at);
fy_pos fy_logrd_pos(const fy_logrd *r);
/* Send bytes from the reader's position to socket fd with sendfile(), never
 * past `end` (a position the writer published), at most max bytes, crossing
 * into the next segment when the current one is exhausted.  Sets *sent.
 * Returns 0 (check *sent and fy_logrd_pos), -EAGAIN if the socket is full
 * (after sending what it could), or -errno. */
int fy_logrd_sendfile(fy_logrd *r, int fd, fy_pos end, size_t max, size_t *sent);
/* The same through send(arg, in_fd, off, n), which sends up to n bytes of
 * in_fd from off and returns how many it took (> 0), -EAGAIN or -errno:
 * for a connection that is not a plain socket (fy_conn_sendfile, TLS). */
typedef ssize_t (*fy_logrd_send_fn)(void *arg, int in_fd, off_t off, size_t n);
int fy_logrd_send(fy_logrd *r, fy_logrd_send_fn send, void *arg, fy_pos end, size_t max,
                  size_t *sent);
/* The first frame boundary at or after the reader's position, found by
 * walking frame headers (one 32-byte pread each) from `from`: a boundary at
 * or before the position (an earlier segment's counts as the start of the
 * reader's segment).  For a forwarder that must stop sending at a frame's
 * end (the drain timeout).  0 with *out set, or -errno / -FY_ECORRUPT. */
int fy_logrd_boundary(fy_logrd *r, fy_pos from, fy_pos *out);
/* Read whole frames from the position into buf (at most cap bytes, at
 * least one frame if it fits) without passing end.  Sets *len.  For callers
 * that need the bytes (checking, tools).  Returns 0 or -errno / -FY_ECORRUPT. */
int fy_logrd_read(fy_logrd *r, fy_pos end, uint8_t *buf, size_t cap, size_t *len);
/* Hash into sha the data payloads of the file whose file-begin (seq
 * begin_seq) is at begin, up to end (a file in progress: its stored part).
 * Every frame's CRC is checked; a frame there that is not the file's is
 * -FY_ECORRUPT.  *got = payload bytes hashed.  Reads through one buffer of
 * 32 + max_payload bytes (at least 1 MiB).  0 or -errno / -FY_ECORRUPT. */
struct fy_sha256;
int fy_logrd_hash_file(const char *dir, fy_pos begin, fy_pos end, uint64_t begin_seq,
                       size_t max_payload, struct fy_sha256 *sha, uint64_t *got);
/* Added: the checked header of the frame at `at` (a position from the
 * index), without its payload; the reader is left positioned at it.  For a
 * walk over frame types (the writer finding the file in progress after a
 * restart).  Returns 0, -FY_ECORRUPT, or -errno. */
struct fy_frame_hdr;
int fy_logrd_peek(fy_logrd *r, fy_pos at, struct fy_frame_hdr *h);

/* ---- offline checking (ferry check) --------------------------------------- */

typedef struct fy_check_report {
    uint64_t segments, frames, bytes;
    uint64_t crc_errors, index_errors;
    uint64_t first_seq, next_seq;
    /* Not damage: what a crash leaves at the end of the last segment and
     * fy_store_open repairs (frames not indexed yet, a torn last frame or
     * index record). */
    uint64_t unindexed, torn_bytes;
} fy_check_report;

/* Verify every frame's header and payload CRC and every index record of the
 * channel in dir, read-only.  A frame whose payload fails its CRC but whose
 * header is intact is counted and stepped over, so one bad byte is one
 * error and the frames after it are still checked.  Returns 0 when clean
 * (possibly with a repairable tail, see above), -FY_ECORRUPT when anything
 * is wrong (details in rep), or -errno. */
int fy_store_check(const char *dir, size_t max_payload, fy_check_report *rep);


/* ---- scrubbing (scrub.c) -------------------------------------------------- */

/* Background checks of the sealed segments of the channel in a directory
 * (all but the newest): every frame's header and payload CRC, in steps the
 * caller paces.  Read-only; safe beside the writer, the indexer, readers
 * and retention (a segment removed meanwhile is skipped). */
typedef struct fy_scrub fy_scrub;

typedef struct fy_scrub_hit {
    bool found;        /* this step found a damaged frame */
    uint64_t seg, off; /* where */
    uint64_t seq;      /* the seq the frame there should carry */
    int err;           /* -FY_ECRC (payload), or the header's / sequence's error */
} fy_scrub_hit;

/* 0 with *out, or -errno.  max_payload 0: the protocol default. */
int fy_scrub_open(const char *dir, size_t max_payload, fy_scrub **out);
/* Check about budget more bytes (at least one whole frame).  Sets *checked
 * to the bytes checked and *hit (at most one damaged frame per step).
 * Returns 1 when a pass over the sealed segments is complete (the next
 * call starts a new pass, listing the segments again), 0 when there is
 * more, or -errno. */
int fy_scrub_step(fy_scrub *s, uint64_t budget, uint64_t *checked, fy_scrub_hit *hit);
void fy_scrub_close(fy_scrub *s); /* NULL is ignored */

/* ---- the data directory's lock (dirlock.c) -------------------------------- */

/* One ferryd per data directory: two writers on one log destroy files they
 * both acknowledged.  The lock is flock(LOCK_EX) on DATA/ferryd.lock, held
 * for the process's life (the kernel drops it on exit, also on kill -9);
 * the file holds the holder's PID for the message a refused caller prints.
 * The file itself is never removed (unlinking a lock file races a starter
 * that opened it just before). */
#define FY_STORE_LOCK_NAME "ferryd.lock"

/* Take the lock on data_dir (which must exist).  Returns the lock's fd
 * (keep it open; close it to release), -EBUSY when another process holds
 * it (*holder = its PID, or 0 if the file does not say), or -errno. */
int fy_store_lock(const char *data_dir, long *holder);

/* Cut the log of a closed channel directory back so that it ends before
 * seq (its next seq becomes seq): the segment holding seq is truncated at
 * that frame, later segments are removed, the index is rebuilt by the next
 * open's recovery (src/store/cut.c).  max_payload as the store's (0: 1
 * MiB).  0, 1 when the log ends at or before seq (nothing cut), -ERANGE
 * when seq is before the log's first segment, or -errno. */
int fy_store_cut(const char *dir, uint64_t seq, size_t max_payload);
/* Empty the log of a closed channel directory so that its next seq is seq:
 * every segment removed, one empty segment (and index) made at base seq.
 * 0, -EINVAL (seq 0) or -errno. */
int fy_store_restart(const char *dir, uint64_t seq);

/* Is data_dir locked by a running ferryd?  Returns 1 (in use; *holder as
 * above), 0 (free, or no lock file), or -errno.  Takes and drops a shared
 * lock, so it never disturbs the holder. */
int fy_store_lock_probe(const char *data_dir, long *holder);

#endif
