/*
 * recv_int.h - what the two files of `ferry recv` share: the receiver's
 * state and the calls between recv.c (the run: the out directory, the
 * resume state, the hello, connections and reconnects) and recvframe.c
 * (the stream frames: the file being received, its checks, acks, the
 * --rate throttle).  Not for other modules: they call fy_cli_recv_run.
 * One receiver is used by one thread.
 */
#ifndef FY_CLI_RECV_INT_H
#define FY_CLI_RECV_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/conn.h"
#include "cli/partfile.h"
#include "cli/progress.h"
#include "cli/recv.h"
#include "ferry/digest.h"
#include "ferry/proto.h"

typedef struct receiver {
    const fy_cli_recv_opts *o;
    fy_cli_conn *k;
    int dirfd;
    fy_sha256 *sha;
    fy_cli_progress prog;
    uint64_t expect;        /* next stream seq */
    /* the file being received */
    bool in_file;
    fy_cli_part pf;         /* its temp file (partfile.h), in pdir */
    int pdir;               /* the directory under --out that holds it (tree.h) */
    const char *base;       /* its last component, in name */
    fy_file_begin fb;       /* its file-begin (mode, mtime) */
    char name[FY_NAME_MAX + 1];
    uint64_t size, got;
    uint64_t part_seq;      /* its file-begin's seq */
    double t0;
    /* progress of the run */
    uint64_t files, bytes, done_seq; /* done_seq: after the last completed file-end */
    uint64_t skipped;       /* frames outside a file (joined mid-file) */
    uint64_t notices;       /* FY_FT_NOTICE frames: what the relay skipped */
    /* --skip-damaged: a skipped file is counted at its file-end (or at the
     * next file-begin when the frame before it was the damaged one), as
     * after a damaged frame we cannot tell which file the frames are of. */
    uint64_t damaged;       /* files skipped because they failed their check */
    bool skipping;          /* after damage: skip to the next file-begin */
    uint64_t bad_seq;       /* the last damaged frame's seq */
    uint64_t unacked;
    double welcome_t, last_state_t, last_end_t;
    uint64_t state_seq;     /* what the state file holds */
    uint64_t epoch;         /* the relay log's epoch our latest frames came from (0: unknown) */
    double rate_t0;
    uint64_t rate_bytes;
    fy_cli_recv_result res;
} receiver;

/* ---- recv.c ---- */

/* A local I/O failure: logged naming call, what and the errno; returns
 * FY_CLI_EXIT_IO. */
int fy__recv_local_fail(receiver *r, const char *call, const char *what, int err);
/* On a terminal, between files: "connected ..., waiting for the next file". */
void fy__recv_waiting(receiver *r);
/* DIR/.ferry-state up to r->done_seq, after an fsync of DIR.  0 or -errno. */
int fy__recv_save_state(receiver *r);

/* ---- recvframe.c ---- */

/* Handle one frame of the connection; returns 0, a negative error
 * (connection-level, mapped by fy_cli_conn_fail) or a positive exit code
 * (a local failure, logged). */
int fy__recv_frame(receiver *r, const fy_frame *f);
/* Drop the partial file, if any (the bar too). */
void fy__recv_discard_part(receiver *r);
/* The decoder rejected the next frame with err: with --skip-damaged and a
 * damaged frame, skip its file, move past it and return true (the caller
 * reconnects after it); else false. */
bool fy__recv_skip_bad_frame(receiver *r, int err);

#endif
