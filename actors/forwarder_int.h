/*
 * forwarder_int.h - the forwarder's state, shared by its three files:
 * forwarder.c (the actor: messages, subscribing, the receiver's frames,
 * idle checks, drain, closing), fwd_live.c (the live queue) and
 * fwd_catchup.c (the pump: control frames, catch-up from the data file,
 * and the writes from the live queue).  Private to those three files; the
 * rest of the relay sees only fy__forwarder_new (relay_int.h).
 * Every function here runs on the forwarder actor's thread (owner only).
 */
#ifndef FERRY_ACTORS_FORWARDER_INT_H
#define FERRY_ACTORS_FORWARDER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ferry/klog.h"
#include "relay_int.h"

#define FY__FWD_CTL_CAP (16u << 10) /* control frames waiting for a frame boundary */

enum fst { F_SUBSCRIBING, F_LOOKUP, F_CATCHUP, F_LIVE, F_CLOSING };

typedef struct fwd {
    const fy__ctx *ctx;
    const fy__chan *chan;
    fy_actor *self;
    fy_conn conn;         /* plain or TLS: every byte to the receiver goes through it */
    enum fst st;
    char peer[64];
    char client[FY_CLIENT_MAX + 1]; /* from the hello, for `ferry info` */
    uint64_t addr_key[2]; /* the acceptor counts our connection under it */
    uint8_t mode;
    uint64_t resume_from;
    uint16_t hflags;      /* the hello's FY_HELLO_F_* (AHEAD: the welcome carries the epoch) */
    uint64_t r_epoch, r_part; /* FY_HELLO_F_AHEAD: the receiver's epoch and partial file */
    uint64_t rep_cepoch, rep_last_epoch, rep_log_next; /* FY_HELLO_F_REPLICA (fy__fwd_init) */
    uint32_t wflags;      /* FY_WELCOME_F_* of the welcome to send (after a look-up too) */
    fy_dec *dec;
    uint8_t *pending; /* bytes the session read past the hello */
    size_t npending;
    fy_logrd *rd;
    uint8_t ctl[FY__FWD_CTL_CAP]; /* control frames waiting for a frame boundary */
    size_t clen, coff;
    bool mid;             /* a stream frame is partly written */
    fy_pos end;           /* latest end the writer told us */
    uint64_t end_seq;     /* seq of the frame at end */
    fy_pos pos;           /* catch-up: next byte to send from the file */
    uint64_t pos_seq;     /* catch-up: seq we started from (for "nothing to do") */
    uint64_t first_seq_hint; /* for the welcome sent after a look-up */
    bool rd_seeked;
    fy__batch *part;      /* catch-up: frame part_i of part is partly sent */
    uint32_t part_i;
    size_t part_off;
    fy__batch **q;        /* live: ring of batches */
    size_t qhead, qlen, qcap;
    uint32_t qframe;      /* first unsent frame of q[qhead] */
    size_t qoff;          /* bytes of it already sent */
    uint64_t qbytes;      /* pool capacity held by the queued batches */
    uint64_t q_next_seq;  /* seq after the last queued frame */
    bool shutting, bye_queued, cont_pending, timer_armed;
    bool lag_open;        /* the last lag event said "behind" */
    fy__idle idle;        /* when the receiver was last seen alive, and our ping */
    uint64_t ctl_out;     /* control bytes written (with sent: all bytes written) */
    uint64_t ping_bytes;  /* bytes of the pings queued */
    int64_t acked_best;   /* most non-ping bytes the peer had acknowledged at a tick */
    bool cut;             /* the drain timeout passed: finish this frame, bye */
    bool follow;          /* live bytes go out from the file too (no user-space TLS) */
    bool behind;          /* catching up on history (start, resume, overflow), not following */
    bool linger_armed;
    uint64_t last_live_ns; /* when a live batch last moved the end */
    fy_pos bound;         /* catch-up: a frame boundary at or before pos */
    uint64_t sent, acked, catchups, frames_live;
    uint64_t sent_disk;   /* of sent, bytes sent from the file (catch-up) */
    struct fy_cat_tomb *tombs; /* catch-up: the deleted files to skip (fwd_skip.c) */
    size_t ntombs, tomb_next; /* tomb_next: the one a send stopped before */
} fwd;

/* The i-th queued live batch (i < f->qlen). */
static inline fy__batch *fy__fwd_qat(const fwd *f, size_t i)
{
    return f->q[(f->qhead + i) % f->qcap];
}

/* ---- forwarder.c: the actor ------------------------------------------------ */

/* Queue a control frame (sent at the next frame boundary).  0, or -errno
 * when the control queue is full. */
int fy__fwd_ctl_push(fwd *f, uint8_t type, const uint8_t *p, size_t n);
/* Close the connection, drop what is queued, ask the writer to unsubscribe
 * us; the actor stops at the writer's answer.  Once only. */
void fy__fwd_close(fwd *f, enum fy_klog_level lvl, const char *why);
/* End with an error frame (when no stream frame is half written). */
void fy__fwd_fail(fwd *f, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Trace this receiver's lag (FY_TR_LAG). */
void fy__fwd_emit_lag(fwd *f);

/* ---- fwd_live.c: the live queue --------------------------------------------- */

/* The entry point for live data: a batch the writer published (FY_RM_LIVE).
 * Takes the reference on b.  Queues it, follows it in the file, or (when
 * not live) only moves the end; falls back to catch-up past the window. */
void fy__fwd_live(fwd *f, fy__batch *b);
/* writev from the queued batches, up to max bytes.  Bytes written, or
 * -EAGAIN / -errno. */
ssize_t fy__fwd_live_write(fwd *f, size_t max);
/* The live write would block: check the pool in a while (FY__TM_RETRY). */
void fy__fwd_live_blocked(fwd *f);
/* FY__TM_RETRY: give the queued buffers back if the pool is nearly spent. */
void fy__fwd_live_pressure(fwd *f);
/* Drain cut while live: keep the partly written frame, drop the rest. */
void fy__fwd_live_cut(fwd *f);
/* Release every queued batch and the kept partial frame. */
void fy__fwd_live_drop(fwd *f);

/* ---- fwd_catchup.c: the pump and catch-up ------------------------------------ */

/* Send what can go out now: control frames, then catch-up or the live
 * queue, TURN_BYTES a turn; bye when shutting and done. */
void fy__fwd_pump(fwd *f);
/* Catch up from position at (the frame with seq; 0 = "something to send"). */
void fy__fwd_start_catchup(fwd *f, fy_pos at, uint64_t seq);
/* FY__TM_LINGER: close a follower's reader idle for a while. */
void fy__fwd_linger(fwd *f);

/* ---- fwd_replica.c: a cluster follower's replica connection ------------------ */

/* The welcome's extensions: to a hello with FY_HELLO_F_AHEAD or _REPLICA
 * the epoch fields (f->wflags included), to a replica hello also the
 * replica fields (cepoch, trunc_seq). */
void fy__fwd_welcome_ext(const fwd *f, fy_welcome *w);
/* Subscribed: a replica connection is announced to the writer. */
void fy__fwd_replica_join(fwd *f);
/* A replica-stored frame: to the writer.  1 when the connection ended. */
int fy__fwd_replica_stored(fwd *f, const fy_frame *fr);
/* FY_RM_FENCE: end with an error frame naming the leader (code: FY_E*). */
void fy__fwd_fence(fwd *f, int code);

/* ---- fwd_skip.c: deleted files in catch-up ------------------------------------ */

/* Read the channel's deleted files (a receiver with FY_HELLO_F_SKIP only). */
void fy__fwd_skip_load(fwd *f);
/* The end of the next send from f->pos: f->end, or the start of the next
 * deleted file before it.  Returns 1 when f->pos is at or in a deleted
 * file (skip it now with fy__fwd_skip), else 0. */
int fy__fwd_skip_limit(fwd *f, fy_pos *lim);
/* Skip the deleted file the last limit named: queue SKIP, move f->pos
 * past it.  0 or -errno (the control queue is full). */
int fy__fwd_skip(fwd *f);

#endif
