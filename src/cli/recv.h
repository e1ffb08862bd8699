/*
 * recv.h - `ferry recv`: receive a channel's files into a directory.
 *
 * Each file is written to a temp file in its directory under DIR (a name
 * is a relative path: tree.h makes the directories, never through a
 * symlink; partfile.h names the temp file .BASE.part, or a shortened name
 * for a long BASE, and never opens it through a planted symlink), checked
 * (size and SHA-256 from file-end; every frame's CRC32C was checked by the
 * decoder), given its mode and mtime, fsync'd and renamed to DIR/NAME --
 * or, when a different file has the name, as on_conflict says (place.h).
 * Hole frames keep a sparse file sparse.  A file-begin before the previous file's file-end
 * means the sender died mid-file: the partial file is discarded with a
 * warning.  DIR/.ferry-state (state.h) records where to resume.
 *
 * A lost connection is retried (retry.h) from the next seq it needs
 * (RESUME), keeping the partial file and its running SHA-256: the rest of
 * that file continues it (the sender continues it the same way), and a
 * file-begin instead discards it as above.  Its hellos name the relay log
 * epoch its frames came from: a relay that lost frames it had sent (a power
 * loss) starts it earlier with FY_WELCOME_F_AHEAD, and then the partial
 * file is discarded (never continued with another stream's bytes),
 * completed files are kept and the resume state moves back
 * (docs/reliability.md, "A receiver ahead of the relay's log").
 *
 * A file that fails its check (a frame CRC error: a frame damaged on the
 * relay's disk; a size or SHA-256 mismatch) ends the run with exit 4,
 * unless skip_damaged: then a warning names the file and the reason, the
 * partial file is discarded and the run goes on with the next file.  After
 * a bad frame the stream's framing is lost, so the receiver reconnects
 * after it (its seq + 1) and skips data until the next file-begin.
 */
#ifndef FY_CLI_RECV_H
#define FY_CLI_RECV_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/cancel.h"
#include "cli/conn.h"
#include "ferry/proto.h"

enum fy_cli_recv_start {
    FY_CLI_RECV_LIVE = 0,     /* from the next file that starts */
    FY_CLI_RECV_START = 1,    /* from the first file the relay still holds */
    FY_CLI_RECV_RESUME = 2,   /* from DIR/.ferry-state (START when there is none) */
    FY_CLI_RECV_FROM_SEQ = 3  /* from sequence number from_seq */
};

typedef struct fy_cli_recv_opts {
    const char *server, *channel, *token, *out_dir;
    int start;          /* enum fy_cli_recv_start */
    uint64_t from_seq;
    uint64_t count;     /* stop after this many files (skipped ones count); 0 = until interrupted */
    uint64_t until_seq; /* also stop once the files below this seq are done (--stored); 0 = no */
    uint64_t rate;      /* read throttle in bytes/s; 0 = none */
    int progress;       /* enum fy_cli_progress_mode */
    bool json;          /* results as JSON lines on stdout (progress.h) */
    unsigned retries;   /* reconnect attempts in a row (retry.h); 0 = none */
    int timeout_ms;     /* connect and welcome timeout; 0 = 10 s */
    const fy_cli_tls *tls; /* NULL = plaintext (ferry --tls) */
    bool skip_damaged;  /* a file that fails its check is skipped, not fatal */
    int on_conflict;    /* enum fy_cli_conflict (place.h): a different file has the name */
    bool no_perms;      /* --no-perms: ignore the mode and mtime files were sent with */
    bool no_wait;       /* no such channel on the relay: exit 3 instead of waiting for it */
    fy_cli_cancel *cancel;
    /* Called once the relay welcomed us (the subscription is in place). */
    void (*on_welcome)(void *arg, const fy_welcome *w);
    /* Called when the relay has no such channel and keeps us waiting for
     * it (may be NULL): the welcome follows once a sender creates it, and
     * the receiver then gets the channel from its first file. */
    void (*on_waiting)(void *arg);
    void *arg;
} fy_cli_recv_opts;

typedef struct fy_cli_recv_result {
    uint64_t files, bytes; /* completed files and their bytes */
    uint64_t skipped;      /* files that failed their check and were skipped */
    double seconds;        /* welcome to the last file-end */
    uint64_t next_seq;     /* after the last completed file's file-end */
    uint64_t notices;      /* notices from an edge relay: what it skipped (logged) */
    char last_name[FY_NAME_MAX + 1];
    uint8_t last_sha256[FY_SHA256_LEN];
} fy_cli_recv_result;

/* Run a receive; logs what goes wrong and returns an exit code (exit.h).
 * r may be NULL.  One thread per call; concurrent calls need different
 * out_dirs. */
int fy_cli_recv_run(const fy_cli_recv_opts *o, fy_cli_recv_result *r);

#endif
