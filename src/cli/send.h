/*
 * send.h - `ferry send`: stream files into a relay channel.
 *
 * Files go one after another on one connection without waiting for the
 * relay between them (pipelined); the relay acknowledges each file-end once
 * it is stored, and the run succeeds only when every file-end is
 * acknowledged.  Data frames are read from the file in large batches and
 * written with one writev of header + payload pairs, never copied.
 *
 * A lost connection (relay restart, cut link) is retried (retry.h): the
 * welcome of the new connection says what the relay stored, files whose
 * file-end it holds count as delivered, and the file it holds part of is
 * continued from there with data frames only -- unless its source changed
 * (size, mtime or inode differ from when it was started), which starts it
 * over with a new file-begin.
 *
 * Run again after an interrupt, the first file is continued from the part
 * the relay kept when that part is a prefix of it (welcome's source fields);
 * before each file the relay is asked whether the channel already holds it
 * (query frame; skipped when it does, unless force).  Directories come
 * expanded (tree.h); holes of sparse files go as hole frames (sparse.h).
 */
#ifndef FY_CLI_SEND_H
#define FY_CLI_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cancel.h"
#include "cli/conn.h"

#define FY_CLI_CHUNK_DEFAULT ((size_t)64 << 10)

typedef struct fy_cli_send_opts {
    const char *server;   /* HOST:PORT */
    const char *channel;
    const char *token;    /* NULL or "" = none */
    size_t chunk;         /* data bytes per frame; 0 = 64 KiB; capped by the relay's max */
    const char *const *files;
    size_t nfiles;
    const char *const *names; /* NULL, or per file: the name to send it under (NULL =
                                 its base name); `ferry send - --name N` */
    int progress;         /* enum fy_cli_progress_mode */
    bool json;            /* results as JSON lines on stdout (progress.h) */
    unsigned retries;     /* reconnect attempts in a row (retry.h); 0 = none */
    int timeout_ms;       /* connect and welcome timeout; 0 = 10 s */
    const fy_cli_tls *tls; /* NULL = plaintext (ferry --tls) */
    fy_cli_cancel *cancel; /* may be NULL */
    bool no_perms;        /* --no-perms: file-begins carry no mode and mtime */
    bool no_sparse;       /* send holes as zeros (tests; old receivers) */
    bool force;           /* --force: send a file the relay already holds (no dedupe) */
} fy_cli_send_opts;

typedef struct fy_cli_send_result {
    uint64_t files_acked; /* files whose file-end the relay acknowledged */
    uint64_t bytes;       /* file bytes of those files */
    double seconds;       /* connect to last ack */
    uint64_t bytes_sent;  /* stream-frame bytes written (headers included), all connections */
    unsigned reconnects;
} fy_cli_send_result;

/* The name a file is sent under: the part of path after the last '/'.
 * Returns it, or NULL when it fails fy_path_check (empty, "." or "..",
 * not UTF-8, a control character, longer than 255 bytes). */
const char *fy_cli_send_name(const char *path);

/* Run a send; logs what goes wrong and returns an exit code (exit.h).
 * r may be NULL.  One thread. */
int fy_cli_send_run(const fy_cli_send_opts *o, fy_cli_send_result *r);

#endif
