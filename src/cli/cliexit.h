/*
 * cliexit.h - the ferry client's exit codes, and the mapping from Ferry's
 * error numbers to them.
 *
 * The codes are a contract with scripts (docs/client.md, `ferry --help`):
 * a caller can tell "try again later" (2) from "fix your token" (3) from
 * "the bytes were wrong" (4) from "your disk" (5) without parsing text,
 * and "called wrong" (64, the same in every Ferry program: ferry/exit.h).
 */
#ifndef FY_CLI_CLIEXIT_H
#define FY_CLI_CLIEXIT_H

#include "ferry/exit.h"

enum fy_cli_exit {
    FY_CLI_EXIT_OK = 0,
    FY_CLI_EXIT_USAGE = FY_EXIT_USAGE, /* bad flags or arguments: 64 in every program */
    FY_CLI_EXIT_DAMAGE = 1,   /* `ferry check`: damage found */
    FY_CLI_EXIT_NET = 2,      /* server unreachable or connection lost */
    FY_CLI_EXIT_REFUSED = 3,  /* the relay said no (token, busy channel) or broke the protocol */
    FY_CLI_EXIT_CHECKSUM = 4, /* frame CRC, file size or file SHA-256 mismatch */
    FY_CLI_EXIT_IO = 5,       /* local file or disk error */
    FY_CLI_EXIT_TLS = 6,      /* TLS: certificate not verified, or TLS on one side only */
    FY_CLI_EXIT_INTR = 130    /* SIGINT / SIGTERM */
};

/* Exit code for an error a connection produced (negative errno or FY_E*):
 * socket errors -> NET, CRC/size/digest -> CHECKSUM, other protocol errors
 * -> REFUSED, -EINTR -> INTR, -EINVAL -> USAGE.  Any thread. */
int fy_cli_exit_for(int err);

/* One line describing an exit code, for --help and logs.  Any thread. */
const char *fy_cli_exit_text(int code);

/* The text block listing every exit code, for --help.  Any thread. */
const char *fy_cli_exit_help(void);

#endif
