/*
 * qcmd.c - `ferry ls|info|get|rm|retain`: what a relay holds, fetching
 * stored files by name, deleting them, a channel's own retention.
 *
 * The options are ferry's (opts.h: one table, one dialect); the help texts
 * and what each command does with them are here, so these commands stay
 * one module and ferry.c only finds them (fy_cli_qcmd_find).  Output: each
 * record the relay sends is one key=value line on stdout (the relay's own
 * words, docs/client.md lists the keys), or with --json one JSON object a
 * line with the same keys.  `get` looks the files up with a listing, then
 * fetches each as `ferry recv --from-seq SEQ --count 1` would.
 */
#include "cli/qcmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cliexit.h"
#include "cli/opts.h"
#include "cli/qtable.h"
#include "cli/query.h"
#include "cli/recv.h"
#include "cli/state.h"
#include "ferry/klog.h"

/* ---- help ------------------------------------------------------------------------- */

/* Where the relay is and how to reach it, --json, -q, -v, -h, -V. */
#define USAGE_COMMON                                                                          \
    FY_CLI_USAGE_REACH                                                                        \
    "  --json              one JSON object a line, with the keys of the lines above;\n"      \
    "                      {\"type\":\"error\",\"exit\":N,\"error\":..,\"message\":..} when\n"  \
    "                      the command fails or is stopped\n"                                  \
    "  -q, --quiet         only warnings and errors logged\n"                                 \
    FY_CLI_USAGE_COMMON

static const char usage_ls[] =
    "Usage: ferry ls [CHANNEL] [OPTIONS]\n\n"
    "Without CHANNEL: every channel on the relay's disk (open or not) that the token may\n"
    "receive, one line each:\n"
    "  type=channel channel=NAME files=N bytes=N first_seq=N last_seq=N end_seq=N age_s=N partial=0|1\n"
    "With CHANNEL: that line, then one per stored file, oldest first:\n"
    "  type=file channel=C name=NAME size=N sha256=HEX seq_first=N seq_last=N stored=UNIX age_s=N\n"
    "(bytes: on the relay's disk; age_s: since the last write; stored: when the\n"
    "segment holding the file's end was last written).  On a terminal: tables.\n\n"
    USAGE_COMMON "\n";

static const char usage_info[] =
    "Usage: ferry info CHANNEL [OPTIONS]\n\n"
    "The channel's line (as ferry ls), its retention, and who is connected:\n"
    "  type=retain channel=C retain_bytes=N retain_age_s=N source=channel|relay\n"
    "  type=sender channel=C client=NAME peer=IP:PORT bytes_in=N\n"
    "  type=receiver channel=C client=NAME peer=IP:PORT mode=live|catch-up lag_frames=N\n"
    "                lag_bytes=N bytes_out=N\n\n" USAGE_COMMON "\n";

static const char usage_get[] =
    "Usage: ferry get CHANNEL NAME... [--out DIR] [--seq N] [OPTIONS]\n\n"
    "Fetch stored files by name into DIR (default .), checked like ferry recv, then\n"
    "exit.  Each NAME's latest version, or with --seq N the version whose first\n"
    "sequence number (seq_first in ferry ls) is N.  A NAME the channel does not hold\n"
    "exits 3 before anything is fetched.  Prints recv's lines per file.\n\n"
    "  --out DIR           where to put the files (default .)\n"
    "  --seq N             the version starting at seq N (one NAME only)\n"
    FY_CLI_USAGE_REACH
    "  --retry             reconnect after a lost connection (the default)\n"
    "  --no-retry          exit 2 when the connection is lost\n"
    "  --retries N         attempts in a row without progress (default 8)\n"
    "  --progress          draw the progress bar on stderr even when it is not a\n"
    "                      terminal\n"
    "  -q, --quiet         no progress bar, even on a terminal: key=value lines on\n"
    "                      stdout as without one; only warnings and errors logged\n"
    "  --json              recv's JSON Lines: {\"type\":\"file\",...} per file, a total,\n"
    "                      {\"type\":\"error\",...} when the command fails or is stopped\n"
    FY_CLI_USAGE_COMMON "\n";

static const char usage_rm[] =
    "Usage: ferry rm CHANNEL [NAME...] [OPTIONS]\n\n"
    "With NAMEs: delete every stored version of each; no listing or fetch shows them\n"
    "again, and their disk space is freed once every file of the channel's oldest\n"
    "segment is deleted (the next retention pass, within a second).  A NAME the\n"
    "channel does not hold: nothing is deleted, exit 3.  Prints per version:\n"
    "  type=deleted channel=C name=NAME seq_first=N seq_last=N\n"
    "Without NAMEs: delete the whole channel and its files now; refused (exit 3,\n"
    "after trying for 2 s) while a sender or a receiver is connected.\n"
    "Prints: type=removed channel=C\n"
    "Needs a token with the admin right on the channel.\n\n" USAGE_COMMON "\n";

static const char usage_retain[] =
    "Usage: ferry retain CHANNEL [--bytes N] [--age D] [OPTIONS]\n\n"
    "Set the channel's own retention, kept in its directory on the relay, in place of\n"
    "the relay's --retain-bytes/--retain-age; a limit not given keeps its value.\n"
    "0 = no limit.  Whole old segments past a limit are removed.  Needs the admin right.\n"
    "Prints: type=retain channel=C retain_bytes=N retain_age_s=N source=channel\n\n"
    "  --bytes N           keep at most N bytes (K/M/G suffixes)\n"
    "  --age D             keep segments younger than D (seconds, or with s/m/h/d)\n"
    USAGE_COMMON "\n";

/* ---- running a query ------------------------------------------------------------------ */

/* What prints a query's records: lines, JSON, or (ls and info on a
 * terminal) a table. */
typedef struct printer {
    const fy_cli_opts *c;
    fy_cli_qtable *table;
} printer;

static int print_rec(void *arg, const char *rec)
{
    const printer *p = arg;
    if (p->table && fy_cli_qtable_add(p->table, rec) == 0)
        return 0;
    if (p->c->json)
        fy_cli_kv_json(stdout, rec);
    else
        printf("%s\n", rec);
    fflush(stdout);
    return 0;
}

static int run(const fy_cli_opts *c, fy_query *q, fy_cli_query_fn fn, void *arg)
{
    fy_cli_query_opts o = {.server = c->server, .tls = &c->tls, .timeout_ms = c->timeout_ms,
                           .cancel = c->cancel,
                           /* a sender or receiver that just left may still be detaching */
                           .busy_wait_ms = q->op == FY_QOP_RM && !q->nnames ? 2000 : 0};
    if (c->token)
        snprintf(q->token, sizeof q->token, "%s", c->token);
    return fy_cli_query_run(&o, q, fn, arg);
}

static int channel_arg(const fy_cli_opts *c, int argc, char **argv, fy_query *q, bool required)
{
    if (optind >= argc)
        return required ? fy_cli_opts_usage_error(c->cmd, "CHANNEL is required", NULL) : 0;
    const char *ch = argv[optind++];
    int rc = fy_cli_opts_channel(c->cmd, NULL, ch);
    if (rc == 0)
        snprintf(q->channel, sizeof q->channel, "%s", ch);
    return rc;
}

/* NAME operands into q->names. */
static int names_arg(const fy_cli_opts *c, int argc, char **argv, fy_query *q)
{
    for (; optind < argc; optind++) {
        const char *n = argv[optind];
        if (q->nnames == FY_QUERY_NAMES_MAX)
            return fy_cli_opts_usage_error(c->cmd, "too many NAMEs (at most 64)", n);
        if (fy_path_check(n, strlen(n)) < 0)
            return fy_cli_opts_usage_error(c->cmd, "invalid file name: a relative path of 1-255 "
                                           "bytes of UTF-8", n);
        snprintf(q->names[q->nnames++], sizeof q->names[0], "%s", n);
    }
    return 0;
}

/* A query of op with CHANNEL (need_ch: required) and NAMEs (names), its
 * records printed.  Returns the exit code. */
static int simple(const fy_cli_opts *c, int argc, char **argv, int op, bool need_ch, bool names)
{
    fy_query *q = calloc(1, sizeof *q);
    printer p = {.c = c};
    if (!q)
        return FY_CLI_EXIT_IO;
    q->op = (uint8_t)op;
    if (op == FY_QOP_RETAIN) {
        q->flags = (uint16_t)((c->has_bytes ? FY_QF_BYTES : 0) | (c->has_age ? FY_QF_AGE : 0));
        q->arg1 = c->bytes;
        q->arg2 = c->age;
    }
    int rc = channel_arg(c, argc, argv, q, need_ch);
    if (!rc && names)
        rc = names_arg(c, argc, argv, q);
    if (!rc && optind < argc)
        rc = fy_cli_opts_usage_error(c->cmd, "unexpected argument", argv[optind]);
    if (!rc && (op == FY_QOP_LS || op == FY_QOP_INFO) && !c->json && isatty(STDOUT_FILENO))
        p.table = fy_cli_qtable_new();
    if (!rc)
        rc = run(c, q, print_rec, &p);
    if (p.table && rc == 0)
        fy_cli_qtable_print(p.table, stdout);
    fy_cli_qtable_free(p.table);
    free(q);
    return rc;
}

/* ---- get -------------------------------------------------------------------------- */

typedef struct want {
    const char *name;
    uint64_t seq;      /* wanted version (0: latest) */
    uint64_t found;    /* its seq_first, 0: not found */
    char sha[2 * FY_SHA256_LEN + 1];
} want;

typedef struct get_ctx {
    want *w;
    size_t n;
} get_ctx;

static int on_file(void *arg, const char *rec)
{
    get_ctx *g = arg;
    char type[16], name[FY_NAME_MAX + 1], seq[24], sha[2 * FY_SHA256_LEN + 1];

    if (!fy_cli_kv_get(rec, "type", type, sizeof type) || strcmp(type, "file") != 0 ||
        !fy_cli_kv_get(rec, "name", name, sizeof name) ||
        !fy_cli_kv_get(rec, "seq_first", seq, sizeof seq) ||
        !fy_cli_kv_get(rec, "sha256", sha, sizeof sha))
        return 0;
    uint64_t s = strtoull(seq, NULL, 10);
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->w[i].name, name) == 0 && (!g->w[i].seq || g->w[i].seq == s)) {
            g->w[i].found = s; /* oldest first: the last one seen is the latest */
            snprintf(g->w[i].sha, sizeof g->w[i].sha, "%s", sha);
        }
    return 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* Fetch one file as recv --from-seq SEQ --count 1 would, leaving no state
 * file behind that was not there before. */
static int fetch(const fy_cli_opts *c, const char *channel, const want *w)
{
    const char *out = c->out ? c->out : ".";
    char state[4200], sha[2 * FY_SHA256_LEN + 1];
    snprintf(state, sizeof state, "%s/%s", out, FY_CLI_STATE_FILE);
    bool had_state = access(state, F_OK) == 0;
    fy_cli_recv_opts o = {.server = c->server, .channel = channel, .token = c->token,
                          .out_dir = out, .start = FY_CLI_RECV_FROM_SEQ, .from_seq = w->found,
                          .count = 1, .progress = c->progress, .json = c->json,
                          .retries = c->no_retry ? 0 : (unsigned)c->retries,
                          .timeout_ms = c->timeout_ms, .tls = &c->tls, .cancel = c->cancel};
    fy_cli_recv_result r = {0};
    int rc = fy_cli_recv_run(&o, &r);
    if (!had_state)
        unlink(state);
    if (rc)
        return rc;
    hex(r.last_sha256, sizeof r.last_sha256, sha);
    if (strcmp(r.last_name, w->name) != 0 || strcmp(sha, w->sha) != 0) {
        /* retention or a delete took it between the listing and the fetch */
        fy_klog(FY_LOG_ERROR, "the relay sent another file", "channel=%s name=%s seq=%llu "
                "got=%s exit=%d", channel, w->name, (unsigned long long)w->found, r.last_name,
                FY_CLI_EXIT_REFUSED);
        return FY_CLI_EXIT_REFUSED;
    }
    return 0;
}

static int cmd_get(fy_cli_opts *c, int argc, char **argv)
{
    fy_query *q = calloc(1, sizeof *q);
    want *w = calloc((size_t)argc, sizeof *w);
    get_ctx g = {.w = w};
    int rc = !q || !w ? FY_CLI_EXIT_IO : channel_arg(c, argc, argv, q, true);

    for (; !rc && optind < argc; optind++) {
        if (fy_path_check(argv[optind], strlen(argv[optind])) < 0)
            rc = fy_cli_opts_usage_error(c->cmd, "invalid file name: a relative path of 1-255 "
                                         "bytes of UTF-8", argv[optind]);
        w[g.n++] = (want){.name = argv[optind], .seq = c->seq};
    }
    if (!rc && g.n == 0)
        rc = fy_cli_opts_usage_error(c->cmd, "NAME is required", NULL);
    if (!rc && c->seq && g.n > 1)
        rc = fy_cli_opts_usage_error(c->cmd, "--seq picks the version of one NAME", NULL);
    if (!rc) {
        q->op = FY_QOP_LS;
        rc = run(c, q, on_file, &g);
    }
    for (size_t i = 0; !rc && i < g.n; i++)
        if (!w[i].found) {
            fy_klog(FY_LOG_ERROR, "no such file on the channel", "channel=%s name=%s seq=%llu "
                    "hint=\"ferry ls %s\" exit=%d", q->channel, w[i].name,
                    (unsigned long long)w[i].seq, q->channel, FY_CLI_EXIT_REFUSED);
            rc = FY_CLI_EXIT_REFUSED;
        }
    for (size_t i = 0; !rc && i < g.n; i++)
        rc = fetch(c, q->channel, &w[i]);
    free(q);
    free(w);
    return rc;
}

/* ---- the commands ------------------------------------------------------------------- */

static int cmd_ls(fy_cli_opts *c, int argc, char **argv)
{
    return simple(c, argc, argv, FY_QOP_LS, false, false);
}

static int cmd_info(fy_cli_opts *c, int argc, char **argv)
{
    return simple(c, argc, argv, FY_QOP_INFO, true, false);
}

static int cmd_rm(fy_cli_opts *c, int argc, char **argv)
{
    return simple(c, argc, argv, FY_QOP_RM, true, true);
}

static int cmd_retain(fy_cli_opts *c, int argc, char **argv)
{
    if (!c->has_bytes && !c->has_age)
        return fy_cli_opts_usage_error(c->cmd, "give --bytes N, --age D or both", NULL);
    return simple(c, argc, argv, FY_QOP_RETAIN, true, false);
}

#define A(o) FY_CLI_OPT_BIT(FY_CLI_OPT_##o)

static const fy_cli_cmd commands[] = {
    {"ls", FY_CLI_OPTS_REACH, usage_ls, cmd_ls},
    {"info", FY_CLI_OPTS_REACH, usage_info, cmd_info},
    {"get", FY_CLI_OPTS_TRANSFER | A(OUT) | A(SEQ), usage_get, cmd_get},
    {"rm", FY_CLI_OPTS_REACH, usage_rm, cmd_rm},
    {"retain", FY_CLI_OPTS_REACH | A(BYTES) | A(AGE), usage_retain, cmd_retain},
};

const fy_cli_cmd *fy_cli_qcmd_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            return &commands[i];
    return NULL;
}

/* ---- stored: for recv --stored ----------------------------------------------------- */

static int on_chan(void *arg, const char *rec)
{
    char type[16], v[24];
    if (fy_cli_kv_get(rec, "type", type, sizeof type) && !strcmp(type, "channel") &&
        fy_cli_kv_get(rec, "end_seq", v, sizeof v))
        *(uint64_t *)arg = strtoull(v, NULL, 10);
    return 0;
}

int fy_cli_stored_end(const char *server, const fy_cli_tls *tls, const char *token,
                      const char *channel, int timeout_ms, fy_cli_cancel *cancel,
                      uint64_t *end_seq)
{
    fy_query *q = calloc(1, sizeof *q);
    fy_cli_query_opts o = {.server = server, .tls = tls, .timeout_ms = timeout_ms,
                           .cancel = cancel};
    if (!q)
        return FY_CLI_EXIT_IO;
    q->op = FY_QOP_LS;
    snprintf(q->channel, sizeof q->channel, "%s", channel);
    if (token)
        snprintf(q->token, sizeof q->token, "%s", token);
    *end_seq = 0;
    int rc = fy_cli_query_run(&o, q, on_chan, end_seq);
    free(q);
    return rc;
}
