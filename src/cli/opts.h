/*
 * opts.h - the options of `ferry`'s commands: one table, one parser, one
 * dialect for send, recv, ls, info, get, rm, retain, check and demo.
 *
 * Every command takes -h/--help, -V/--version, -v/--verbose, -q/--quiet and
 * --log-level; each takes the others its `allowed` set names, and any other
 * option is a usage error (exit 64, one log line naming `ferry CMD --help`).
 * A command that reaches a relay (its set has --server) gets where the relay
 * is and how to reach it from, first found: the flags, the environment
 * (FERRY_SERVER, FERRY_TOKEN), the settings file (cliconf.h), the defaults;
 * and with --json a failed run ends with an "error" record on stdout.
 * src/prog/ferry.c and qcmd.c describe their commands with fy_cli_cmd and
 * run them through fy_cli_opts_main.  Called from the program's main
 * thread only (getopt's state is global).
 */
#ifndef FY_CLI_OPTS_H
#define FY_CLI_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/cancel.h"
#include "cli/cliconf.h"
#include "cli/conn.h"
#include "ferry/proto.h"

#define FY_CLI_DEFAULT_SERVER "127.0.0.1:7420"

/* Every long option of every command.  getopt_long returns these codes. */
enum fy_cli_opt {
    FY_CLI_OPT_SERVER = 256, FY_CLI_OPT_CHANNEL, FY_CLI_OPT_TOKEN, FY_CLI_OPT_CHUNK,
    FY_CLI_OPT_OUT, FY_CLI_OPT_FROM_START, FY_CLI_OPT_RESUME, FY_CLI_OPT_FROM_SEQ,
    FY_CLI_OPT_COUNT, FY_CLI_OPT_RATE, FY_CLI_OPT_DATA, FY_CLI_OPT_MAXP, FY_CLI_OPT_SIZE,
    FY_CLI_OPT_RECEIVERS, FY_CLI_OPT_KEEP, FY_CLI_OPT_HELP, FY_CLI_OPT_TOKEN_FILE,
    FY_CLI_OPT_RETRY, FY_CLI_OPT_NO_RETRY, FY_CLI_OPT_RETRIES, FY_CLI_OPT_CONNECT_TIMEOUT,
    FY_CLI_OPT_TLS, FY_CLI_OPT_CA, FY_CLI_OPT_TLS_NAME, FY_CLI_OPT_TLS_CERT, FY_CLI_OPT_TLS_KEY,
    FY_CLI_OPT_QUIET, FY_CLI_OPT_PROGRESS, FY_CLI_OPT_JSON, FY_CLI_OPT_NAME,
    FY_CLI_OPT_SKIP_DAMAGED, FY_CLI_OPT_STORED, FY_CLI_OPT_CLIENT_NAME, FY_CLI_OPT_VERBOSE,
    FY_CLI_OPT_LOG_LEVEL, FY_CLI_OPT_VERSION, FY_CLI_OPT_RECURSIVE, FY_CLI_OPT_NO_PERMS,
    FY_CLI_OPT_ON_CONFLICT, FY_CLI_OPT_FORCE, FY_CLI_OPT_NO_WAIT, FY_CLI_OPT_SEQ,
    FY_CLI_OPT_BYTES, FY_CLI_OPT_AGE,
    FY_CLI_OPT_END_
};

/* An option's bit in a command's `allowed` set. */
#define FY_CLI_OPT_BIT(o) (UINT64_C(1) << ((o) - FY_CLI_OPT_SERVER))

/* The options of every command that reaches a relay: where it is, the
 * token, TLS, our name, --json. */
#define FY_CLI_OPTS_REACH                                                                   \
    (FY_CLI_OPT_BIT(FY_CLI_OPT_SERVER) | FY_CLI_OPT_BIT(FY_CLI_OPT_TOKEN) |                 \
     FY_CLI_OPT_BIT(FY_CLI_OPT_TOKEN_FILE) | FY_CLI_OPT_BIT(FY_CLI_OPT_CONNECT_TIMEOUT) |   \
     FY_CLI_OPT_BIT(FY_CLI_OPT_TLS) | FY_CLI_OPT_BIT(FY_CLI_OPT_CA) |                       \
     FY_CLI_OPT_BIT(FY_CLI_OPT_TLS_NAME) | FY_CLI_OPT_BIT(FY_CLI_OPT_TLS_CERT) |            \
     FY_CLI_OPT_BIT(FY_CLI_OPT_TLS_KEY) | FY_CLI_OPT_BIT(FY_CLI_OPT_CLIENT_NAME) |          \
     FY_CLI_OPT_BIT(FY_CLI_OPT_JSON))

/* ... and of the commands that move files: reconnecting, the bar. */
#define FY_CLI_OPTS_TRANSFER                                                                \
    (FY_CLI_OPTS_REACH | FY_CLI_OPT_BIT(FY_CLI_OPT_RETRY) |                                 \
     FY_CLI_OPT_BIT(FY_CLI_OPT_NO_RETRY) | FY_CLI_OPT_BIT(FY_CLI_OPT_RETRIES) |             \
     FY_CLI_OPT_BIT(FY_CLI_OPT_PROGRESS))

/* The --help lines of FY_CLI_OPTS_REACH (less --json, which each command
 * words for its own output). */
#define FY_CLI_USAGE_REACH                                                                    \
    "  --server HOST:PORT  relay address: a host name, an IP, or [IPv6]:PORT (default:\n"     \
    "                      $FERRY_SERVER, else the settings file, else "                      \
    FY_CLI_DEFAULT_SERVER ")\n"                                                               \
    "  --token T           access token, if the relay requires one; it shows in `ps`,\n"     \
    "                      so prefer --token-file or FERRY_TOKEN\n"                            \
    "  --token-file FILE   read the token from FILE (its first line)\n"                       \
    "                      (precedence: --token, then --token-file, then $FERRY_TOKEN,\n"     \
    "                      then token-file in the settings file)\n"                           \
    "  --connect-timeout S give up connecting, and waiting for the relay's welcome,\n"       \
    "                      after S seconds (default 10)\n"                                     \
    "  --tls               speak TLS to the relay (ferryd --tls-cert/--tls-key)\n"            \
    "  --ca FILE           verify the relay's certificate against these CAs (PEM; implies\n"  \
    "                      --tls; default: the system's trust store)\n"                      \
    "  --tls-name NAME     name or IP the relay's certificate must carry (default: the\n"     \
    "                      host of --server)\n"                                               \
    "  --tls-cert FILE     client certificate (PEM) for a relay with --tls-client-ca;\n"     \
    "  --tls-key FILE      with its private key\n"                                           \
    "  --client-name NAME  the name the relay shows for us (default user@host,\n"             \
    "                      or $FERRY_CLIENT_NAME)\n"

/* The --help lines of the options every command takes. */
#define FY_CLI_USAGE_COMMON                                                                   \
    "  -v, --verbose       debug log lines;  --log-level LEVEL: debug|info|warn|error\n"      \
    "  -h, --help          this text;  -V, --version: the version\n"

/* A command's options, as parsed; what a command does not take stays at its
 * default.  Owned by fy_cli_opts_main, which frees tls.ctx. */
typedef struct fy_cli_opts {
    const char *cmd; /* "send", "ls", ... */
    const char *server, *channel, *token, *out, *data, *token_file, *name;
    uint64_t chunk, from_seq, count, rate, max_payload, size, receivers, retries;
    int start, starts, timeout_ms; /* enum fy_cli_recv_start; how many start flags */
    int progress, progress_flags; /* enum fy_cli_progress_mode; --quiet/--progress given */
    bool keep, help, version, no_retry, tls_on, json, skip_damaged, stored;
    bool recursive, no_perms, force, no_wait;
    int on_conflict;   /* enum fy_cli_conflict */
    uint64_t seq;      /* get --seq (0: latest) */
    uint64_t bytes, age; /* retain --bytes/--age, when has_bytes/has_age */
    bool has_bytes, has_age;
    bool server_given; /* --server on the command line */
    int log_level;     /* -1: not given (-v, -q, --log-level) */
    const char *ca, *tls_name, *tls_cert, *tls_key;
    fy_cli_conf file;  /* the settings file, for the commands that reach a relay */
    fy_cli_tls tls;    /* made from the flags and the file (ctx NULL: plaintext) */
    fy_cli_cancel *cancel;
    char token_buf[FY_TOKEN_MAX + 1];
} fy_cli_opts;

/* A command: its name, the options it takes besides the common ones, its
 * --help text, and what runs it once the options are in c (its operands
 * at argv[optind..]); run returns the exit code (cliexit.h), logged. */
typedef struct fy_cli_cmd {
    const char *name;
    uint64_t allowed; /* FY_CLI_OPT_BIT()s */
    const char *usage;
    int (*run)(fy_cli_opts *c, int argc, char **argv);
} fy_cli_cmd;

/* Run `ferry CMD argv...` (argv[0] is CMD): parse, then --help or
 * --version, else (for a command that reaches a relay) the token and TLS,
 * then cmd->run; with --json a failure ends with an error record.  cancel
 * may be NULL.  Returns the exit code. */
int fy_cli_opts_main(const fy_cli_cmd *cmd, int argc, char **argv, fy_cli_cancel *cancel);

/* A usage error: one log line naming `ferry CMD --help` (cmd "ferry":
 * `ferry --help`).  Returns FY_CLI_EXIT_USAGE. */
int fy_cli_opts_usage_error(const char *cmd, const char *what, const char *arg);

/* A channel name operand or option value: 0, or a usage error (missing:
 * `what` is the message). */
int fy_cli_opts_channel(const char *cmd, const char *what, const char *name);

/* text and the exit-code table on stdout (code 0) or stderr; returns code. */
int fy_cli_opts_help(const char *text, int code);

/* `ferry VERSION (protocol N)` on stdout; returns 0. */
int fy_cli_opts_version(void);

#endif
