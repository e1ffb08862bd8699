/*
 * qcmd.c - `ferry ls|info|get|rm|retain`: what a relay holds, fetching
 * stored files by name, deleting them, a channel's own retention.
 *
 * Options are parsed here, not in ferry.c, so these commands stay one
 * module: ferry.c only dispatches to fy_cli_qcmd_main.  Output: each
 * record the relay sends is one key=value line on stdout (the relay's own
 * words, docs/client.md lists the keys), or with --json one JSON object a
 * line with the same keys.  `get` looks the files up with a listing, then
 * fetches each as `ferry recv --from-seq SEQ --count 1` would.
 */
#include "cli/qcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cliexit.h"
#include "cli/ident.h"
#include "cli/qtable.h"
#include "cli/query.h"
#include "cli/recv.h"
#include "cli/retry.h"
#include "cli/state.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/units.h"

#define DEFAULT_SERVER "127.0.0.1:7420"

/* ---- help ------------------------------------------------------------------------- */

#define USAGE_COMMON                                                                          \
    "  --server HOST:PORT  relay address (default $FERRY_SERVER, else " DEFAULT_SERVER ")\n"   \
    "  --token T           access token (also --token-file FILE, $FERRY_TOKEN)\n"            \
    "  --client-name NAME  the name the relay shows for us (default user@host,\n"             \
    "                      or $FERRY_CLIENT_NAME)\n"                                          \
    "  --connect-timeout S give up after S seconds (default 10)\n"                           \
    "  --tls, --ca FILE, --tls-name NAME, --tls-cert FILE, --tls-key FILE\n"                 \
    "                      TLS to the relay, as for send and recv\n"                          \
    "  --json              one JSON object a line instead of key=value lines\n"               \
    "  --help              this text\n"

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
    "  --quiet, --progress as for recv\n" USAGE_COMMON "\n";

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

/* ---- options ------------------------------------------------------------------------ */

enum { O_SERVER = 300, O_TOKEN, O_TOKEN_FILE, O_CLIENT, O_TIMEOUT, O_TLS, O_CA, O_TLS_NAME,
       O_TLS_CERT, O_TLS_KEY, O_JSON, O_HELP, O_OUT, O_SEQ, O_QUIET, O_PROGRESS, O_BYTES,
       O_AGE };

static const struct option opts[] = {
    {"server", required_argument, 0, O_SERVER},   {"token", required_argument, 0, O_TOKEN},
    {"token-file", required_argument, 0, O_TOKEN_FILE},
    {"client-name", required_argument, 0, O_CLIENT},
    {"connect-timeout", required_argument, 0, O_TIMEOUT},
    {"tls", no_argument, 0, O_TLS},               {"ca", required_argument, 0, O_CA},
    {"tls-name", required_argument, 0, O_TLS_NAME}, {"tls-cert", required_argument, 0, O_TLS_CERT},
    {"tls-key", required_argument, 0, O_TLS_KEY}, {"json", no_argument, 0, O_JSON},
    {"help", no_argument, 0, O_HELP},             {"out", required_argument, 0, O_OUT},
    {"seq", required_argument, 0, O_SEQ},         {"quiet", no_argument, 0, O_QUIET},
    {"progress", no_argument, 0, O_PROGRESS},     {"bytes", required_argument, 0, O_BYTES},
    {"age", required_argument, 0, O_AGE},         {0, 0, 0, 0}};

typedef struct qopts {
    const char *cmd, *server, *token, *token_file, *out, *ca, *tls_name, *tls_cert, *tls_key;
    bool json, help, tls, has_bytes, has_age;
    int timeout_ms, progress;
    uint64_t seq, bytes, age;
    char token_buf[FY_TOKEN_MAX + 1];
    fy_cli_tls t;
    fy_cli_cancel *cancel;
    fy_cli_qtable *table; /* ls and info on a terminal: a table instead of lines */
} qopts;

static int usage_error(const qopts *c, const char *what, const char *arg)
{
    char hint[32];
    snprintf(hint, sizeof hint, "ferry %s", c->cmd);
    fy_klog_usage(what, arg, hint);
    return FY_CLI_EXIT_USAGE;
}

/* D: seconds, or digits with s, m, h or d. */
static int parse_age(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;

    if (end == s || *s == '-')
        return -EINVAL;
    if (*end && end[1])
        return -EINVAL;
    switch (*end) {
    case 0: case 's': break;
    case 'm': mul = 60; break;
    case 'h': mul = 3600; break;
    case 'd': mul = 86400; break;
    default: return -EINVAL;
    }
    *out = (uint64_t)v * mul;
    return 0;
}

static int take(qopts *c, int opt)
{
    char *end;
    switch (opt) {
    case O_SERVER: c->server = optarg; break;
    case O_TOKEN: c->token = optarg; break;
    case O_TOKEN_FILE: c->token_file = optarg; break;
    case O_CLIENT:
        if (fy_cli_set_client_name(optarg) < 0)
            return usage_error(c, "invalid --client-name: 1-64 of [A-Za-z0-9._@+:-]", optarg);
        break;
    case O_TIMEOUT: {
        double v = strtod(optarg, &end);
        if (end == optarg || *end || !(v > 0) || v > 3600)
            return usage_error(c, "--connect-timeout takes seconds, 0 < S <= 3600", optarg);
        c->timeout_ms = (int)(v * 1000) > 0 ? (int)(v * 1000) : 1;
        break;
    }
    case O_TLS: c->tls = true; break;
    case O_CA: c->ca = optarg; c->tls = true; break;
    case O_TLS_NAME: c->tls_name = optarg; break;
    case O_TLS_CERT: c->tls_cert = optarg; break;
    case O_TLS_KEY: c->tls_key = optarg; break;
    case O_JSON: c->json = true; break;
    case O_HELP: c->help = true; break;
    case O_OUT: c->out = optarg; break;
    case O_SEQ:
        if (fy_units_bytes(optarg, &c->seq) < 0 || c->seq == 0)
            return usage_error(c, "--seq takes a sequence number (seq_first in ferry ls)", optarg);
        break;
    case O_QUIET: c->progress = 2; break;
    case O_PROGRESS: c->progress = 1; break;
    case O_BYTES:
        if (fy_units_bytes(optarg, &c->bytes) < 0)
            return usage_error(c, "--bytes takes a byte count (digits, optional K/M/G)", optarg);
        c->has_bytes = true;
        break;
    case O_AGE:
        if (parse_age(optarg, &c->age) < 0)
            return usage_error(c, "--age takes seconds, or digits with s, m, h or d", optarg);
        c->has_age = true;
        break;
    }
    return 0;
}

/* The token: --token, --token-file's first line, $FERRY_TOKEN. */
static int resolve_token(qopts *c)
{
    if (c->token)
        return 0;
    if (c->token_file) {
        FILE *f = fopen(c->token_file, "re");
        if (!f) {
            fy_klog(FY_LOG_ERROR, "cannot read the token file", "command=%s file=%s err=%s exit=%d",
                    c->cmd, c->token_file, fy_errname(-errno), FY_CLI_EXIT_IO);
            return FY_CLI_EXIT_IO;
        }
        if (!fgets(c->token_buf, sizeof c->token_buf, f))
            c->token_buf[0] = 0;
        fclose(f);
        c->token_buf[strcspn(c->token_buf, "\r\n")] = 0;
        c->token = c->token_buf;
        return 0;
    }
    const char *env = getenv("FERRY_TOKEN");
    if (env && *env && strlen(env) <= FY_TOKEN_MAX)
        c->token = env;
    return 0;
}

/* Parse argv; the operands stay at argv[optind..). */
static int parse(qopts *c, const char *allowed, int argc, char **argv)
{
    int opt, rc;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (opt == '?' || opt == ':')
            return usage_error(c, opt == ':' ? "option needs a value" : "unknown option",
                               argv[optind - 1]);
        if (opt >= O_OUT && !strchr(allowed, 1 + opt - O_OUT))
            return usage_error(c, "option not valid for this command", argv[optind - 1]);
        if ((rc = take(c, opt)))
            return rc;
    }
    if (!c->server) {
        const char *env = getenv("FERRY_SERVER");
        c->server = env && *env ? env : DEFAULT_SERVER;
    }
    if (c->help)
        return 0;
    if ((rc = resolve_token(c)))
        return rc;
    c->t = (fy_cli_tls){.name = c->tls_name};
    if (c->tls) {
        char err[512];
        if (fy_tls_client_new(c->ca, c->tls_cert, c->tls_key, &c->t.ctx, err, sizeof err) < 0) {
            fy_klog(FY_LOG_ERROR, "cannot set up TLS", "reason=\"%s\" exit=%d", err,
                    FY_CLI_EXIT_USAGE);
            return FY_CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/* ---- running a query ------------------------------------------------------------------ */

static int print_rec(void *arg, const char *rec)
{
    const qopts *c = arg;
    if (c->table && fy_cli_qtable_add(c->table, rec) == 0)
        return 0;
    if (c->json)
        fy_cli_kv_json(stdout, rec);
    else
        printf("%s\n", rec);
    fflush(stdout);
    return 0;
}

static int run(qopts *c, fy_query *q, fy_cli_query_fn fn, void *arg)
{
    fy_cli_query_opts o = {.server = c->server, .tls = &c->t, .timeout_ms = c->timeout_ms,
                           .cancel = c->cancel,
                           /* a sender or receiver that just left may still be detaching */
                           .busy_wait_ms = q->op == FY_QOP_RM && !q->nnames ? 2000 : 0};
    if (c->token)
        snprintf(q->token, sizeof q->token, "%s", c->token);
    return fy_cli_query_run(&o, q, fn, arg);
}

static int channel_arg(qopts *c, int argc, char **argv, fy_query *q, bool required)
{
    if (optind >= argc)
        return required ? usage_error(c, "CHANNEL is required", NULL) : 0;
    const char *ch = argv[optind++];
    if (fy_name_check(ch, strlen(ch)) < 0)
        return usage_error(c, "invalid channel name: use 1-255 of [A-Za-z0-9._-], not starting "
                           "with '.'", ch);
    snprintf(q->channel, sizeof q->channel, "%s", ch);
    return 0;
}

/* NAME operands into q->names. */
static int names_arg(qopts *c, int argc, char **argv, fy_query *q)
{
    for (; optind < argc; optind++) {
        const char *n = argv[optind];
        if (q->nnames == FY_QUERY_NAMES_MAX)
            return usage_error(c, "too many NAMEs (at most 64)", n);
        if (fy_name_check(n, strlen(n)) < 0)
            return usage_error(c, "invalid file name", n);
        snprintf(q->names[q->nnames++], sizeof q->names[0], "%s", n);
    }
    return 0;
}

static int simple(qopts *c, int argc, char **argv, fy_query *q, bool need_ch, bool names)
{
    int rc = channel_arg(c, argc, argv, q, need_ch);
    if (!rc && names)
        rc = names_arg(c, argc, argv, q);
    if (!rc && optind < argc)
        rc = usage_error(c, "unexpected argument", argv[optind]);
    return rc ? rc : run(c, q, print_rec, c);
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
static int fetch(qopts *c, const char *channel, const want *w)
{
    const char *out = c->out ? c->out : ".";
    char state[4200], sha[2 * FY_SHA256_LEN + 1];
    snprintf(state, sizeof state, "%s/%s", out, FY_CLI_STATE_FILE);
    bool had_state = access(state, F_OK) == 0;
    fy_cli_recv_opts o = {.server = c->server, .channel = channel, .token = c->token,
                          .out_dir = out, .start = FY_CLI_RECV_FROM_SEQ, .from_seq = w->found,
                          .count = 1, .progress = c->progress, .json = c->json,
                          .retries = FY_CLI_RETRIES_DEFAULT, .timeout_ms = c->timeout_ms,
                          .tls = &c->t, .cancel = c->cancel};
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

static int cmd_get(qopts *c, int argc, char **argv)
{
    fy_query *q = calloc(1, sizeof *q);
    want *w = calloc((size_t)argc, sizeof *w);
    get_ctx g = {.w = w};
    int rc = !q || !w ? FY_CLI_EXIT_IO : channel_arg(c, argc, argv, q, true);

    for (; !rc && optind < argc; optind++) {
        if (fy_name_check(argv[optind], strlen(argv[optind])) < 0)
            rc = usage_error(c, "invalid file name", argv[optind]);
        w[g.n++] = (want){.name = argv[optind], .seq = c->seq};
    }
    if (!rc && g.n == 0)
        rc = usage_error(c, "NAME is required", NULL);
    if (!rc && c->seq && g.n > 1)
        rc = usage_error(c, "--seq picks the version of one NAME", NULL);
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

#define A(o) ((char)(1 + (o)-O_OUT))

int fy_cli_qcmd_main(const char *cmd, int argc, char **argv, fy_cli_cancel *cancel)
{
    qopts c = {.cmd = cmd, .cancel = cancel};
    fy_query *q = calloc(1, sizeof *q);
    const char *usage = usage_ls, *allowed = "";
    const char get_ok[] = {A(O_OUT), A(O_SEQ), A(O_QUIET), A(O_PROGRESS), 0};
    const char retain_ok[] = {A(O_BYTES), A(O_AGE), 0};
    int rc;

    if (!q)
        return FY_CLI_EXIT_IO;
    if (!strcmp(cmd, "info"))
        usage = usage_info;
    else if (!strcmp(cmd, "get"))
        usage = usage_get, allowed = get_ok;
    else if (!strcmp(cmd, "rm"))
        usage = usage_rm;
    else if (!strcmp(cmd, "retain"))
        usage = usage_retain, allowed = retain_ok;
    rc = parse(&c, allowed, argc, argv);
    if (!rc && c.help) {
        fputs(usage, stdout);
        fputs(fy_cli_exit_help(), stdout);
    } else if (!rc && (!strcmp(cmd, "ls") || !strcmp(cmd, "info"))) {
        q->op = !strcmp(cmd, "ls") ? FY_QOP_LS : FY_QOP_INFO;
        if (!c.json && isatty(STDOUT_FILENO))
            c.table = fy_cli_qtable_new();
        rc = simple(&c, argc, argv, q, q->op == FY_QOP_INFO, false);
        if (c.table && rc == 0)
            fy_cli_qtable_print(c.table, stdout);
        fy_cli_qtable_free(c.table);
    } else if (!rc && !strcmp(cmd, "rm")) {
        q->op = FY_QOP_RM;
        rc = simple(&c, argc, argv, q, true, true);
    } else if (!rc && !strcmp(cmd, "retain")) {
        q->op = FY_QOP_RETAIN;
        q->flags = (uint16_t)((c.has_bytes ? FY_QF_BYTES : 0) | (c.has_age ? FY_QF_AGE : 0));
        q->arg1 = c.bytes;
        q->arg2 = c.age;
        rc = q->flags ? simple(&c, argc, argv, q, true, false)
                      : usage_error(&c, "give --bytes N, --age D or both", NULL);
    } else if (!rc) {
        rc = cmd_get(&c, argc, argv);
    }
    fy_tls_free(c.t.ctx);
    free(q);
    return rc;
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
