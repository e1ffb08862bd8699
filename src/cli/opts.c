/*
 * opts.c - `ferry`'s option table and parser, and what every command that
 * reaches a relay settles before it runs: the relay's address, the token,
 * TLS (opts.h).
 *
 * One table for all commands keeps one spelling and one meaning per flag;
 * each command's `allowed` set says which it takes.  Values are checked
 * here, where the flag is named, so a bad one is a usage error before any
 * connection; what depends on several flags (one of --quiet/--progress)
 * is checked after the loop, the rest by the command.
 */
#include "cli/opts.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cliexit.h"
#include "cli/ident.h"
#include "cli/place.h"
#include "cli/progress.h"
#include "cli/recv.h"
#include "cli/retry.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/tls.h"
#include "ferry/units.h"

_Static_assert(FY_CLI_OPT_END_ - FY_CLI_OPT_SERVER <= 64, "an allowed set is a uint64_t");

static const struct option long_opts[] = {
    {"server", required_argument, 0, FY_CLI_OPT_SERVER},
    {"channel", required_argument, 0, FY_CLI_OPT_CHANNEL},
    {"token", required_argument, 0, FY_CLI_OPT_TOKEN},
    {"chunk", required_argument, 0, FY_CLI_OPT_CHUNK},
    {"out", required_argument, 0, FY_CLI_OPT_OUT},
    {"from-start", no_argument, 0, FY_CLI_OPT_FROM_START},
    {"resume", no_argument, 0, FY_CLI_OPT_RESUME},
    {"from-seq", required_argument, 0, FY_CLI_OPT_FROM_SEQ},
    {"count", required_argument, 0, FY_CLI_OPT_COUNT},
    {"rate", required_argument, 0, FY_CLI_OPT_RATE},
    {"data", required_argument, 0, FY_CLI_OPT_DATA},
    {"max-payload", required_argument, 0, FY_CLI_OPT_MAXP},
    {"size", required_argument, 0, FY_CLI_OPT_SIZE},
    {"receivers", required_argument, 0, FY_CLI_OPT_RECEIVERS},
    {"keep", no_argument, 0, FY_CLI_OPT_KEEP},
    {"help", no_argument, 0, FY_CLI_OPT_HELP},
    {"token-file", required_argument, 0, FY_CLI_OPT_TOKEN_FILE},
    {"retry", no_argument, 0, FY_CLI_OPT_RETRY},
    {"no-retry", no_argument, 0, FY_CLI_OPT_NO_RETRY},
    {"retries", required_argument, 0, FY_CLI_OPT_RETRIES},
    {"connect-timeout", required_argument, 0, FY_CLI_OPT_CONNECT_TIMEOUT},
    {"tls", no_argument, 0, FY_CLI_OPT_TLS},
    {"ca", required_argument, 0, FY_CLI_OPT_CA},
    {"tls-name", required_argument, 0, FY_CLI_OPT_TLS_NAME},
    {"tls-cert", required_argument, 0, FY_CLI_OPT_TLS_CERT},
    {"tls-key", required_argument, 0, FY_CLI_OPT_TLS_KEY},
    {"quiet", no_argument, 0, FY_CLI_OPT_QUIET},
    {"progress", no_argument, 0, FY_CLI_OPT_PROGRESS},
    {"json", no_argument, 0, FY_CLI_OPT_JSON},
    {"name", required_argument, 0, FY_CLI_OPT_NAME},
    {"skip-damaged", no_argument, 0, FY_CLI_OPT_SKIP_DAMAGED},
    {"stored", no_argument, 0, FY_CLI_OPT_STORED},
    {"client-name", required_argument, 0, FY_CLI_OPT_CLIENT_NAME},
    {"verbose", no_argument, 0, FY_CLI_OPT_VERBOSE},
    {"log-level", required_argument, 0, FY_CLI_OPT_LOG_LEVEL},
    {"version", no_argument, 0, FY_CLI_OPT_VERSION},
    {"recursive", no_argument, 0, FY_CLI_OPT_RECURSIVE},
    {"no-perms", no_argument, 0, FY_CLI_OPT_NO_PERMS},
    {"on-conflict", required_argument, 0, FY_CLI_OPT_ON_CONFLICT},
    {"force", no_argument, 0, FY_CLI_OPT_FORCE},
    {"no-wait", no_argument, 0, FY_CLI_OPT_NO_WAIT},
    {"seq", required_argument, 0, FY_CLI_OPT_SEQ},
    {"bytes", required_argument, 0, FY_CLI_OPT_BYTES},
    {"age", required_argument, 0, FY_CLI_OPT_AGE},
    {0, 0, 0, 0}};

/* What every command takes: -h, -V, -v, -q, --log-level. */
#define COMMON                                                                              \
    (FY_CLI_OPT_BIT(FY_CLI_OPT_HELP) | FY_CLI_OPT_BIT(FY_CLI_OPT_VERSION) |                 \
     FY_CLI_OPT_BIT(FY_CLI_OPT_VERBOSE) | FY_CLI_OPT_BIT(FY_CLI_OPT_QUIET) |                \
     FY_CLI_OPT_BIT(FY_CLI_OPT_LOG_LEVEL))

/* ---- messages ------------------------------------------------------------------------ */

int fy_cli_opts_usage_error(const char *cmd, const char *what, const char *arg)
{
    char hint[32];
    snprintf(hint, sizeof hint, strcmp(cmd, "ferry") ? "ferry %s" : "%s", cmd);
    fy_klog_usage(what, arg, hint);
    return FY_CLI_EXIT_USAGE;
}

int fy_cli_opts_channel(const char *cmd, const char *what, const char *name)
{
    if (!name)
        return fy_cli_opts_usage_error(cmd, what, NULL);
    if (fy_name_check(name, strlen(name)) != 0)
        return fy_cli_opts_usage_error(cmd, "invalid channel name: use 1-255 of [A-Za-z0-9._-], "
                                       "not starting with '.'", name);
    return 0;
}

int fy_cli_opts_help(const char *text, int code)
{
    FILE *out = code == 0 ? stdout : stderr;
    fputs(text, out);
    fputs(fy_cli_exit_help(), out);
    return code;
}

int fy_cli_opts_version(void)
{
    printf("ferry %s (protocol %u)\n", FY_VERSION, FY_PROTO_VERSION);
    return 0;
}

/* ---- option values ------------------------------------------------------------------- */

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

/* The short options, the same in every Ferry program (-r: send's). */
static int short_opt(int opt)
{
    switch (opt) {
    case 'h': return FY_CLI_OPT_HELP;
    case 'V': return FY_CLI_OPT_VERSION;
    case 'v': return FY_CLI_OPT_VERBOSE;
    case 'q': return FY_CLI_OPT_QUIET;
    case 'r': return FY_CLI_OPT_RECURSIVE;
    default: return opt;
    }
}

/* An option with a value that is checked here; 0 or a usage error. */
static int take_checked(fy_cli_opts *c, int opt, const char *arg)
{
    const char *cmd = c->cmd;
    char *end;
    switch (opt) {
    case FY_CLI_OPT_CONNECT_TIMEOUT: {
        double v = strtod(arg, &end);
        if (end == arg || *end || !(v > 0) || v > 3600)
            return fy_cli_opts_usage_error(cmd, "--connect-timeout takes seconds, 0 < S <= 3600",
                                           arg);
        c->timeout_ms = (int)(v * 1000) > 0 ? (int)(v * 1000) : 1;
        return 0;
    }
    case FY_CLI_OPT_LOG_LEVEL:
        if ((c->log_level = fy_klog_level_parse(arg)) < 0)
            return fy_cli_opts_usage_error(cmd, "--log-level takes debug, info, warn or error",
                                           arg);
        return 0;
    case FY_CLI_OPT_CLIENT_NAME:
        if (fy_cli_set_client_name(arg) < 0)
            return fy_cli_opts_usage_error(cmd, "invalid --client-name: 1-64 of [A-Za-z0-9._@+:-]",
                                           arg);
        return 0;
    case FY_CLI_OPT_ON_CONFLICT:
        if ((c->on_conflict = fy_cli_conflict_parse(arg)) < 0)
            return fy_cli_opts_usage_error(cmd, "--on-conflict takes keep, replace or rename",
                                           arg);
        return 0;
    case FY_CLI_OPT_SEQ:
        if (fy_units_bytes(arg, &c->seq) < 0 || c->seq == 0)
            return fy_cli_opts_usage_error(cmd, "--seq takes a sequence number (seq_first in "
                                           "ferry ls)", arg);
        return 0;
    case FY_CLI_OPT_BYTES:
        if (fy_units_bytes(arg, &c->bytes) < 0)
            return fy_cli_opts_usage_error(cmd, "--bytes takes a byte count (digits, optional "
                                           "K/M/G)", arg);
        c->has_bytes = true;
        return 0;
    case FY_CLI_OPT_AGE:
        if (parse_age(arg, &c->age) < 0)
            return fy_cli_opts_usage_error(cmd, "--age takes seconds, or digits with s, m, h "
                                           "or d", arg);
        c->has_age = true;
        return 0;
    }
    return 0;
}

/* A number (digits, optional K/M/G) for opt, or NULL. */
static uint64_t *number_of(fy_cli_opts *c, int opt)
{
    switch (opt) {
    case FY_CLI_OPT_CHUNK: return &c->chunk;
    case FY_CLI_OPT_FROM_SEQ: return &c->from_seq;
    case FY_CLI_OPT_COUNT: return &c->count;
    case FY_CLI_OPT_RATE: return &c->rate;
    case FY_CLI_OPT_MAXP: return &c->max_payload;
    case FY_CLI_OPT_SIZE: return &c->size;
    case FY_CLI_OPT_RECEIVERS: return &c->receivers;
    case FY_CLI_OPT_RETRIES: return &c->retries;
    default: return NULL;
    }
}

/* A text option: where its value goes, or NULL. */
static const char **text_of(fy_cli_opts *c, int opt)
{
    switch (opt) {
    case FY_CLI_OPT_SERVER: return &c->server;
    case FY_CLI_OPT_CHANNEL: return &c->channel;
    case FY_CLI_OPT_TOKEN: return &c->token;
    case FY_CLI_OPT_OUT: return &c->out;
    case FY_CLI_OPT_DATA: return &c->data;
    case FY_CLI_OPT_TOKEN_FILE: return &c->token_file;
    case FY_CLI_OPT_NAME: return &c->name;
    case FY_CLI_OPT_CA: return &c->ca;
    case FY_CLI_OPT_TLS_NAME: return &c->tls_name;
    case FY_CLI_OPT_TLS_CERT: return &c->tls_cert;
    case FY_CLI_OPT_TLS_KEY: return &c->tls_key;
    default: return NULL;
    }
}

/* A flag without a value. */
static void take_flag(fy_cli_opts *c, int opt)
{
    switch (opt) {
    case FY_CLI_OPT_FROM_START: c->start = FY_CLI_RECV_START; c->starts++; break;
    case FY_CLI_OPT_RESUME: c->start = FY_CLI_RECV_RESUME; c->starts++; break;
    case FY_CLI_OPT_KEEP: c->keep = true; break;
    case FY_CLI_OPT_RETRY: c->no_retry = false; break;
    case FY_CLI_OPT_NO_RETRY: c->no_retry = true; break;
    case FY_CLI_OPT_HELP: c->help = true; break;
    case FY_CLI_OPT_VERSION: c->version = true; break;
    case FY_CLI_OPT_TLS: c->tls_on = true; break;
    case FY_CLI_OPT_QUIET:
        c->progress = FY_CLI_PROGRESS_LINES;
        c->progress_flags |= 1;
        c->log_level = c->log_level < 0 ? FY_LOG_WARN : c->log_level;
        break;
    case FY_CLI_OPT_VERBOSE: c->log_level = FY_LOG_DEBUG; break;
    case FY_CLI_OPT_PROGRESS: c->progress = FY_CLI_PROGRESS_BAR; c->progress_flags |= 2; break;
    case FY_CLI_OPT_JSON: c->json = true; break;
    case FY_CLI_OPT_SKIP_DAMAGED: c->skip_damaged = true; break;
    case FY_CLI_OPT_STORED: c->stored = true; break;
    case FY_CLI_OPT_RECURSIVE: c->recursive = true; break;
    case FY_CLI_OPT_NO_PERMS: c->no_perms = true; break;
    case FY_CLI_OPT_FORCE: c->force = true; break;
    case FY_CLI_OPT_NO_WAIT: c->no_wait = true; break;
    }
}

/* Does opt take a value? */
static bool has_value(int opt)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == opt)
            return o->has_arg == required_argument;
    return false;
}

/* One option getopt returned, with its value arg; 0 or a usage error. */
static int take(fy_cli_opts *c, int opt, const char *arg)
{
    const char **text = text_of(c, opt);
    uint64_t *num = number_of(c, opt);
    if (text) {
        *text = arg;
        c->server_given |= opt == FY_CLI_OPT_SERVER;
        c->tls_on |= opt == FY_CLI_OPT_CA;
        return 0;
    }
    if (num) {
        if (fy_units_bytes(arg, num) < 0)
            return fy_cli_opts_usage_error(c->cmd, "not a number (digits, optional K/M/G)", arg);
        if (opt == FY_CLI_OPT_FROM_SEQ) {
            c->start = FY_CLI_RECV_FROM_SEQ;
            c->starts++;
        }
        return 0;
    }
    if (has_value(opt))
        return take_checked(c, opt, arg);
    take_flag(c, opt);
    return 0;
}

/* ---- where the relay is ------------------------------------------------------------- */

/* For a command that reaches a relay: --server, else $FERRY_SERVER, else
 * the settings file's server, else the default.  Reads the settings file
 * (cliconf.h) into c->file for the token and TLS keys too.  0, or the exit
 * code of a file that does not parse (logged). */
static int settings(fy_cli_opts *c)
{
    char err[1200], q[1300];
    int rc = fy_cli_conf_load(&c->file, err, sizeof err);
    if (rc < 0) {
        int code = rc == -EINVAL ? FY_CLI_EXIT_USAGE : FY_CLI_EXIT_IO;
        fy_klog(FY_LOG_ERROR, "cannot use the client settings file", "command=%s reason=%s exit=%d",
                c->cmd, fy_klog_q(err, q, sizeof q), code);
        return code;
    }
    const char *env = getenv("FERRY_SERVER");
    if (c->server_given)
        return 0;
    if (env && *env)
        c->server = env;
    else if (c->file.server[0])
        c->server = c->file.server;
    return 0;
}

/* Parse argv for cmd (argv[0] is the command); the operands stay at
 * argv[optind..].  0 or a usage error (logged). */
static int parse(const fy_cli_cmd *cmd, int argc, char **argv, fy_cli_opts *c)
{
    uint64_t allowed = cmd->allowed | COMMON;
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = short_opt(getopt_long(argc, argv, ":hVvqr", long_opts, NULL))) != -1) {
        if (opt == '?' || opt == ':')
            return fy_cli_opts_usage_error(c->cmd, opt == ':' ? "option needs a value"
                                                              : "unknown option", argv[optind - 1]);
        if (!(allowed & FY_CLI_OPT_BIT(opt)))
            return fy_cli_opts_usage_error(c->cmd, "option not valid for this command",
                                           argv[optind - 1]);
        int rc = take(c, opt, optarg);
        if (rc)
            return rc;
    }
    if (c->progress_flags == 3)
        return fy_cli_opts_usage_error(c->cmd, "choose one of --quiet, --progress", NULL);
    if (c->log_level >= 0)
        fy_klog_set_level((enum fy_klog_level)c->log_level);
    /* --help and --version work whatever the settings file holds */
    if (c->help || c->version || !(cmd->allowed & FY_CLI_OPT_BIT(FY_CLI_OPT_SERVER)))
        return 0;
    return settings(c);
}

/* The token: --token, else the first line of --token-file, else
 * $FERRY_TOKEN, else the settings file's token-file, else none (NULL).  A
 * token on the command line is visible to every user in `ps`; a file or
 * the environment is not.  Returns 0 or an exit code (logged). */
static int resolve_token(fy_cli_opts *c)
{
    char q[600];
    if (c->token)
        return 0;
    if (c->token_file) {
        int fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            fy_klog(FY_LOG_ERROR, "cannot read the token file", "command=%s file=%s err=%s exit=%d",
                    c->cmd, fy_klog_q(c->token_file, q, sizeof q), fy_errname(-err),
                    FY_CLI_EXIT_IO);
            return FY_CLI_EXIT_IO;
        }
        char buf[FY_TOKEN_MAX + 3];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 0)
            n = 0;
        buf[n] = 0;
        buf[strcspn(buf, "\r\n")] = 0;
        if (strlen(buf) > FY_TOKEN_MAX)
            return fy_cli_opts_usage_error(c->cmd, "the token in --token-file is longer than "
                                           "255 bytes", c->token_file);
        memcpy(c->token_buf, buf, strlen(buf) + 1); /* fits: checked above */
        c->token = c->token_buf;
        return 0;
    }
    const char *env = getenv("FERRY_TOKEN");
    if (env && *env) {
        if (strlen(env) > FY_TOKEN_MAX)
            return fy_cli_opts_usage_error(c->cmd, "$FERRY_TOKEN is longer than 255 bytes", NULL);
        c->token = env;
        return 0;
    }
    if (c->file.token_file[0]) { /* the settings file's, last */
        c->token_file = c->file.token_file;
        return resolve_token(c);
    }
    return 0;
}

/* --tls and friends, the settings file filling what no flag said: the
 * client TLS settings in c->tls, or plaintext (ctx NULL).  0, or the exit
 * code for settings that cannot be used (logged). */
static int setup_tls(fy_cli_opts *c)
{
    char err[512];
    const fy_cli_conf *f = &c->file;
    c->tls_on = c->tls_on || f->tls;
    c->ca = c->ca ? c->ca : f->ca[0] ? f->ca : NULL;
    c->tls_name = c->tls_name ? c->tls_name : f->tls_name[0] ? f->tls_name : NULL;
    c->tls_cert = c->tls_cert ? c->tls_cert : f->tls_cert[0] ? f->tls_cert : NULL;
    c->tls_key = c->tls_key ? c->tls_key : f->tls_key[0] ? f->tls_key : NULL;
    c->tls = (fy_cli_tls){.name = c->tls_name};
    if (!c->tls_on) {
        if (c->tls_name || c->tls_cert || c->tls_key)
            return fy_cli_opts_usage_error(c->cmd, "--tls-name, --tls-cert and --tls-key need "
                                           "--tls", NULL);
        return 0;
    }
    if (fy_tls_client_new(c->ca, c->tls_cert, c->tls_key, &c->tls.ctx, err, sizeof err) < 0) {
        char q[600];
        fy_klog(FY_LOG_ERROR, "cannot set up TLS", "reason=%s exit=%d", fy_klog_q(err, q, sizeof q),
                FY_CLI_EXIT_USAGE);
        return FY_CLI_EXIT_USAGE;
    }
    return 0;
}

/* --json: a failed or interrupted run ends with an error record carrying
 * the message of the last error logged. */
static void json_error(const fy_cli_opts *c, int code)
{
    char msg[512];
    if (!c->json || code == FY_CLI_EXIT_OK)
        return;
    fy_klog_last(msg, sizeof msg);
    fy_cli_progress_json_error(code, fy_cli_exit_text(code), msg);
}

/* ---- running a command --------------------------------------------------------------- */

int fy_cli_opts_main(const fy_cli_cmd *cmd, int argc, char **argv, fy_cli_cancel *cancel)
{
    fy_cli_opts *c = calloc(1, sizeof *c); /* ~7 KiB with the settings file */
    if (!c) {
        fy_klog(FY_LOG_ERROR, "out of memory", "exit=%d", FY_CLI_EXIT_IO);
        return FY_CLI_EXIT_IO;
    }
    c->cmd = cmd->name;
    c->server = FY_CLI_DEFAULT_SERVER;
    c->retries = FY_CLI_RETRIES_DEFAULT;
    c->log_level = -1;
    c->cancel = cancel;
    int rc = parse(cmd, argc, argv, c);
    if (rc == 0 && c->help)
        rc = fy_cli_opts_help(cmd->usage, 0);
    else if (rc == 0 && c->version)
        rc = fy_cli_opts_version();
    else if (rc == 0) {
        bool reach = cmd->allowed & FY_CLI_OPT_BIT(FY_CLI_OPT_SERVER);
        if (reach)
            rc = resolve_token(c);
        if (reach && rc == 0)
            rc = setup_tls(c);
        if (rc == 0)
            rc = cmd->run(c, argc, argv);
        json_error(c, rc);
    }
    fy_tls_free(c->tls.ctx);
    free(c);
    return rc;
}
