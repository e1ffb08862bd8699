/*
 * demo.h - `ferry demo`: the whole relay on one machine in one command.
 *
 * Starts ferryd on 127.0.0.1:0 with a fresh data directory, subscribes N
 * receivers (threads running the same code as `ferry recv`), sends one
 * file of pseudo-random bytes, checks every received copy's SHA-256
 * against the source, prints the times and ONE key=value line:
 *   demo=ok bytes=... receivers=3 seconds=... mbps_per_receiver=... verified=3
 * then stops the relay by its PID and removes its temp directory.
 */
#ifndef FY_CLI_DEMO_H
#define FY_CLI_DEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/cancel.h"

#define FY_CLI_DEMO_SIZE_DEFAULT ((uint64_t)256 << 20)
#define FY_CLI_DEMO_RECEIVERS_MAX 32

typedef struct fy_cli_demo_opts {
    uint64_t size;   /* bytes of the file; 0 = 256 MiB */
    int receivers;   /* 1..32; 0 = 3 */
    bool keep;       /* leave the temp directory (and say where) */
    fy_cli_cancel *cancel;
} fy_cli_demo_opts;

/* Run the demo; returns 0 only if every receiver's copy verified, else an
 * exit code (exit.h).  Starts threads and a child process; one call at a
 * time per process. */
int fy_cli_demo_run(const fy_cli_demo_opts *o);

#endif
