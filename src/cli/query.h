/*
 * query.h - one query to a relay (docs/protocol.md, "Queries"): connect,
 * send FY_FT_QUERY, take the QREC records (key=value lines) until QEND.
 * The commands ls, info, rm, retain and get (qcmd.c) are built on it.
 */
#ifndef FY_CLI_QUERY_H
#define FY_CLI_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli/cancel.h"
#include "cli/conn.h"
#include "ferry/proto.h"

typedef struct fy_cli_query_opts {
    const char *server;
    const fy_cli_tls *tls; /* NULL: plaintext */
    int timeout_ms;        /* connect and answer; 0 = 10 s */
    fy_cli_cancel *cancel;
    /* FY_EINUSE (a channel a sender or receiver is still leaving) is asked
     * again every 200 ms for up to this long before it is reported. */
    int busy_wait_ms;
} fy_cli_query_opts;

/* Called for each record, in order; a nonzero return stops the query and
 * is returned. */
typedef int (*fy_cli_query_fn)(void *arg, const char *rec);

/* Run q (its client name is filled in when empty).  Returns 0, the
 * callback's nonzero value, or an exit code (cliexit.h) after one log line
 * saying what failed (the relay's error text when it sent one). */
int fy_cli_query_run(const fy_cli_query_opts *o, fy_query *q, fy_cli_query_fn fn, void *arg);

/* The value of key in record rec into out (cap bytes).  true if found. */
bool fy_cli_kv_get(const char *rec, const char *key, char *out, size_t cap);

/* rec as one JSON object line on f: values of digits only are numbers,
 * the others strings. */
void fy_cli_kv_json(FILE *f, const char *rec);

#endif
