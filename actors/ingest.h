/*
 * ingest.h - the sender half of a connection: a channel's stream frames
 * in, batches for its file-writer out (fy_ingest).
 *
 * The owner reads the socket into the buffers fy_ingest_iov names and
 * reports how much came (fy_ingest_got); fy_ingest_next then checks every
 * frame (fy_dec in header-first mode, then sequence, file framing, sizes,
 * channel id), packs the stream frames into pooled fy_bufs and hands each
 * full batch, with what it decoded from each file-begin and file-end
 * (fy__batch marks), to the owner's out callback (file digests are the
 * writer's to check, actors/writer_batch.c).  Control frames (ping, bye,
 * ...) go back to the owner, which alone knows what they mean on its link.
 * Nothing here knows about sockets, actors or error frames, so the session
 * (actors/session.c) and a relay that ingests from an upstream relay can
 * both use it.  All functions: the owner's thread only.
 */
#ifndef FERRY_ACTORS_INGEST_H
#define FERRY_ACTORS_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ferry/buf.h"
#include "ferry/proto.h"
#include "relay_int.h"

typedef struct fy_ingest fy_ingest;

typedef struct fy_ingest_conf {
    fy_bufpool *pool;
    size_t max_payload;   /* the decoder's limit for data frames */
    uint64_t budget;      /* buffer bytes at the writer not yet credited */
    uint32_t channel;     /* every header must carry this id */
    uint64_t next_seq;    /* seq of the first stream frame */
    /* The channel's file in progress (fy__part_info), which this connection
     * may continue: with in_file, a first stream frame that is data or
     * file-end continues that file at file_got of its file_size bytes; a
     * file-begin starts another file instead (receivers discard the
     * partial one).  Only the first stream frame decides. */
    bool in_file;
    uint64_t file_size, file_got;
    /* The stream may begin inside a file (an edge starting again at its
     * upstream's oldest seq, which retention put in the middle of a file):
     * stream frames before the first file-begin are checked for their seq
     * and dropped, as a receiver that joins mid-file drops them. */
    bool skip_partial;
    /* Takes the batch (and its reference); called from fy_ingest_next,
     * fy_ingest_flush and fy_ingest_stop. */
    void (*out)(void *arg, fy__batch *b);
    void *arg;
} fy_ingest_conf;

/* Why fy_ingest_next failed.  The owner words its error report from this;
 * the code returned says which FY_E* the peer should get. */
typedef enum fy_ingest_why {
    FY_INGEST_BAD_FRAME = 1, /* the decoder refused it (code) */
    FY_INGEST_CHANNEL,       /* hdr.channel is not conf.channel */
    FY_INGEST_SEQ,           /* hdr.seq is not expect_seq */
    FY_INGEST_BEGIN_PAYLOAD, /* file-begin payload does not decode (code) */
    FY_INGEST_BEGIN_IN_FILE, /* file-begin before the last file ended */
    FY_INGEST_DATA_OUTSIDE,  /* data with no file-begin */
    FY_INGEST_DATA_SIZE,     /* file_got passed file_size */
    FY_INGEST_END_PAYLOAD,   /* file-end payload does not decode (code) */
    FY_INGEST_END_OUTSIDE,   /* file-end with no file-begin */
    FY_INGEST_END_SIZE,      /* end_size, file_got and file_size differ */
    FY_INGEST_ALLOC,         /* fy_buf_alloc(alloc) failed with cause, or a batch (alloc 0) */
} fy_ingest_why;

typedef struct fy_ingest_fault {
    fy_ingest_why why;
    int code;             /* what fy_ingest_next returned */
    int cause;            /* ALLOC: the allocator's error */
    fy_frame_hdr hdr;     /* the offending frame (not for BAD_FRAME, ALLOC) */
    uint64_t expect_seq;  /* seq the next stream frame had to carry */
    uint64_t file_size, file_got, end_size;
    size_t alloc;
} fy_ingest_fault;

/* Counters and stream position, for logs, stats and shutdown. */
typedef struct fy_ingest_info {
    uint64_t frames, bytes; /* stream frames batched, their raw bytes */
    uint64_t inflight;      /* buffer capacity handed out, not yet credited */
    uint64_t next_seq;      /* seq the next stream frame must carry */
    bool in_file;           /* between a file-begin and its file-end */
    bool continued;         /* this connection continued the channel's file in progress */
    uint64_t skipped;       /* frames dropped before the first file-begin (skip_partial) */
} fy_ingest_info;

/* Start with the n bytes at p already read (n <= 1 MiB; copied once).
 * 0, -EINVAL, or -ENOMEM. */
int fy_ingest_new(const fy_ingest_conf *c, const uint8_t *p, size_t n, fy_ingest **out);
/* Drops unsent frames without calling out.  NULL is ignored. */
void fy_ingest_free(fy_ingest *g);

/* Where the next read goes: the rest of a big data frame (straight into its
 * buffer) and/or the read buffer.  Returns the iovec count (1 or 2). */
int fy_ingest_iov(fy_ingest *g, struct iovec iov[2]);
/* n bytes were read into the iovecs fy_ingest_iov gave. */
void fy_ingest_got(fy_ingest *g, size_t n);

/* Process what was read.  Returns 0 when more input is needed; 1 with *ctl
 * filled for a whole, checked control frame (valid until the next call;
 * call again after acting on it); -EAGAIN when the budget is spent (call
 * again after a credit); -FY_EPOOL when the pool is empty (call again
 * later); or a negative FY_E* fault (fy_ingest_fault tells why), after
 * which the frames before the bad one have gone to out, nothing is held
 * and every later call returns the same error. */
int fy_ingest_next(fy_ingest *g, fy_frame *ctl);

/* Hand the batch so far to out (the owner does it once per turn).  NULL is
 * ignored. */
void fy_ingest_flush(fy_ingest *g);
/* End of input: flush, and drop a frame not yet whole.  NULL is ignored. */
void fy_ingest_stop(fy_ingest *g);
/* The writer freed bytes of buffer capacity.  NULL is ignored. */
void fy_ingest_credit(fy_ingest *g, uint64_t bytes);

/* The stream goes on over a new connection (an edge relay reconnecting to
 * its upstream, resuming at info.next_seq): drop the unprocessed input and
 * a frame not yet whole, keep the stream state (next seq, the file in
 * progress and its bytes so far, a checked frame that waits for a
 * buffer), expect channel id in the headers from now on and start with
 * the n bytes at p.  0, -ENOBUFS when the kept frame and the n bytes do
 * not fit the 1 MiB read buffer (keep n small: a welcome's leftovers),
 * or the fault already recorded. */
int fy_ingest_restart(fy_ingest *g, uint32_t channel, const uint8_t *p, size_t n);

const fy_ingest_fault *fy_ingest_fault_get(const fy_ingest *g);
/* The fault in words, for the peer's error frame and the log (the owner
 * still decides what to do about it). */
void fy_ingest_fault_text(const fy_ingest *g, char *buf, size_t cap);
/* NULL gives all zeros (a connection that is not a sender yet). */
const fy_ingest_info *fy_ingest_info_get(const fy_ingest *g);

#endif
