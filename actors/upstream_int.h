/*
 * upstream_int.h - what the two halves of an edge relay's upstream actor
 * share: its state and the calls between them.  upstream.c is the actor,
 * its state file, the re-sequencing of batches into local numbering and
 * the stream; upstream_link.c is the link (connect, TLS, hello, welcome,
 * backoff).  Everything here runs on the actor's own turn.
 */
#ifndef FERRY_ACTORS_UPSTREAM_INT_H
#define FERRY_ACTORS_UPSTREAM_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "ingest.h"
#include "link/link.h"
#include "pump.h"
#include "relay_int.h"

#define HBUF 64              /* handshake reads: the welcome's leftovers stay small */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_MS 10000     /* connect + hello + welcome must finish within this */
#define RING 256             /* batches in flight tracked for the lag figures */
#define RECON_RING 64        /* completed files remembered for upstream_recon.c */

/* Timer tags (this actor's own): the connection generation rides above. */
enum { TM_RETRY = 1, TM_RECONNECT = 2, TM_CONNECT = 3, TM_REPORT = 4 };
#define REPORT_MS 500        /* a replica reports what it stored at least this often */

enum up_st { U_WAIT, U_LINK, U_STREAM, U_DONE };

/* A file as it passed this edge, in upstream seqs (begin 0: none). */
typedef struct up_file {
    uint64_t begin, end, size, name_h;
    uint8_t sha[FY_SHA256_LEN];
} up_file;

/* What the file the upstream sends again is, while reconciling. */
enum up_match { RM_NONE, RM_DONE, RM_PART };

typedef struct upstream {
    const fy__ctx *ctx;
    fy_actor *self;
    fy_actor *writer;     /* a reference */
    uint32_t chan_id;     /* the local id, written into every header */
    char name[FY_NAME_MAX + 1];
    char dir[4500];       /* the channel's directory: its state file is there */
    fy_addr addr;         /* ctx->up_addr[addr_i % up_naddr] */
    size_t addr_i;
    enum up_st st;
    fy_link link;
    fy_ingest *ing;       /* from the first welcome on; survives reconnects */
    uint32_t gen;         /* connection generation, in io and timer tags */
    int64_t delta;        /* upstream seq - local seq */
    uint64_t local_next;  /* local seq of the next frame to come */
    uint64_t fb_local;    /* local seq of the file-begin of the file in progress, 0 = none */
    uint64_t skip_until;  /* frames below this local seq are stored already: drop them */
    bool fresh;           /* START: the local log holds nothing yet */
    bool restart;         /* after FY_ENOSEQ: START again, new delta, new ingest */
    bool no_ahead;        /* the upstream refused FY_HELLO_F_AHEAD: an older relay */
    uint64_t up_epoch;    /* the upstream log's epoch our latest frames came from (0: unknown) */
    bool rebase;          /* a new stream (fresh or restart) may begin inside a file: the
                             ingest drops frames to the first file-begin and delta is set
                             from the first frame stored, so local seqs stay contiguous */
    uint64_t rebase_local; /* the local seq that first stored frame gets */
    bool rebase_quiet;    /* the rebase is a reconcile's (upstream_recon.c logged it) */
    uint64_t lost_from;   /* after FY_ENOSEQ: the upstream seq we wanted (0: none); the
                             rebase records what was skipped (DIR/skipped) and tells */
    /* upstream_recon.c: ahead of the upstream's log, frames below skip_until
     * are dropped while they are files this edge has */
    bool recon;
    bool seek_begin;      /* drop up to the next file-begin, then rebase there */
    enum up_match recon_match;
    up_file recon_file;   /* RM_DONE: the file it matched */
    uint64_t recon_part;  /* upstream seq of our partial file's file-begin, 0 = none */
    up_file recon_pf;     /* that file as it passed (begin 0: unknown, a restarted edge) */
    uint64_t recon_dups;  /* files dropped as sent again */
    up_file cur;          /* the file in progress as it passed */
    up_file done[RECON_RING]; /* the last files completed, a ring */
    unsigned done_head, done_n;
    bool leaving;         /* linger over: leave at the next file boundary */
    fy__pump pump;        /* the read loop, shared with a sender's session */
    unsigned backoff_ms;
    uint64_t rng;         /* xorshift state for the jitter, seeded per actor */
    /* for /metrics: batches at the writer, oldest first (one CREDIT each) */
    struct { uint64_t next_seq, bytes; } fly[RING];
    unsigned fly_head, fly_n;
    uint64_t reconnects, enoseq, stored_next, origin_next, bytes_rx, bytes_fly;
    uint8_t hbuf[HBUF];
    /* A cluster follower's replica link (upstream_replica.c): delta pinned
     * to 0, the leader's address instead of conf->upstream. */
    bool replica;
    const fy__chan *chan; /* replica: its epochs table records the leader's epochs */
    char peer[FY_MEMBER_ADDR_MAX]; /* who logs name as upstream: conf->upstream or the leader */
    uint64_t cepoch;      /* the newest cluster epoch seen: an older leader is refused */
    uint64_t rep_seq;     /* the last seq reported stored (FY_FT_REPLICA_STORED), 0: none */
    uint64_t rep_ns;      /* fy_now_ns() of that report */
    uint64_t prog_seq;    /* the last seq given to ctx->progress */
    uint64_t first_seq;   /* replica: the log's first seq (a log that holds none names no epoch) */
    bool replica_seek;    /* after FY_ENOSEQ: the stream is read only for its first file-begin */
    bool seek_found;      /* ...which the writer was told to start the log at: leave */
} upstream;

/* ---- upstream.c, for upstream_link.c ------------------------------------ */

/* Read the stream (U_STREAM) as far as the pump allows. */
void fy__upstream_drive(upstream *u);
/* Leave: the writer gets its sender slot back, and this actor stops. */
void fy__upstream_finish(upstream *u, const char *why);
/* Write the state file (sync: durably); a failure is logged. */
void fy__upstream_state_save(upstream *u, bool sync);
/* The ingest's output (fy_ingest_conf.out; arg = the upstream). */
void fy__upstream_batch_out(void *arg, fy__batch *b);

/* ---- upstream_recon.c ------------------------------------------------------ */

/* Record the file-begins and file-ends of batch b, which passes to the
 * writer (before its frames are restamped). */
void fy__upstream_note_marks(upstream *u, const fy__batch *b);
/* The upstream starts us at from_seq, before our end (FY_WELCOME_F_AHEAD):
 * reconcile from there, keeping delta. */
void fy__upstream_recon_start(upstream *u, uint64_t from_seq);
/* Drop the front of b that this edge has; false when nothing is left (b
 * is gone then and its buffers count as credited). */
bool fy__upstream_recon(upstream *u, fy__batch *b);

/* Create the actor for u (filled in) and arm its first connect; frees u
 * on failure. */
int fy__upstream_launch(upstream *u, const fy__chan *chan, fy_actor *writer, fy_actor **out);

/* ---- upstream_replica.c ----------------------------------------------------- */

/* A replica's hello fields (REPLICA, CLIENT, RESUME, AHEAD). */
void fy__upstream_replica_hello(upstream *u, fy_hello *h);
/* A replica's welcome: false when it was refused (the link is lost then). */
bool fy__upstream_replica_welcome(upstream *u, const fy_welcome *w);
/* The leader no longer holds what this log needs next (FY_ENOSEQ, text
 * "... the channel holds A..B"): the writer empties the log to start at A,
 * the link leaves.  False when the text names no first seq. */
bool fy__upstream_replica_enoseq(upstream *u, const char *text);
/* replica_seek: b's first frame is the first file-begin the leader holds;
 * the writer is told to start the log there, and the link leaves (b is
 * dropped, its buffers credited). */
void fy__upstream_replica_seek(upstream *u, fy__batch *b);
/* Tell the leader what is stored (when it changed, or REPORT_MS passed
 * with force). */
void fy__upstream_replica_report(upstream *u, bool force);

/* ---- upstream_link.c ------------------------------------------------------ */

/* Close the link's socket; later events of it are ignored (gen moves on). */
void fy__upstream_link_down(upstream *u);
/* Connect, hello; the welcome comes to fy__upstream_drive_link. */
void fy__upstream_connect(upstream *u);
/* The link is gone: keep the stream state, reconnect after a backoff. */
void fy__upstream_lost(upstream *u, int level, const char *why);
/* The upstream sent an error frame. */
void fy__upstream_error_frame(upstream *u, const fy_frame *f);
/* I/O readiness while connecting, in TLS or waiting for the welcome. */
void fy__upstream_drive_link(upstream *u, uint32_t bits);

#endif
