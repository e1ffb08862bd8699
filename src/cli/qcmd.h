/*
 * qcmd.h - the query commands of `ferry`: ls, info, get, rm, retain
 * (qcmd.c), and what `ferry recv --stored` asks before it receives.
 */
#ifndef FY_CLI_QCMD_H
#define FY_CLI_QCMD_H

#include <stdint.h>

#include "cli/cancel.h"
#include "cli/conn.h"
#include "cli/opts.h"

/* The query command called name (ls, info, get, rm, retain), to run with
 * fy_cli_opts_main; NULL for another name. */
const fy_cli_cmd *fy_cli_qcmd_find(const char *name);

/* The seq after the last complete file the relay holds on channel (0:
 * none), for `recv --stored`.  Returns 0 or an exit code (logged); a
 * channel the relay does not have is FY_ENOCHAN: exit 3. */
int fy_cli_stored_end(const char *server, const fy_cli_tls *tls, const char *token,
                      const char *channel, int timeout_ms, fy_cli_cancel *cancel,
                      uint64_t *end_seq);

#endif
