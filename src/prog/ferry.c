/*
 * ferry.c - the Ferry client: `ferry send|recv|ls|info|get|rm|retain|check|demo`.
 *
 * Only option parsing and wiring live here; the work is in src/cli/
 * (send.c, recv.c, check.c, demo.c).  Flags, output lines and exit codes
 * are a contract with scripts: docs/client.md describes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cancel.h"
#include "cli/check.h"
#include "cli/cliconf.h"
#include "cli/demo.h"
#include "cli/cliexit.h"
#include "cli/ident.h"
#include "cli/progress.h"
#include "cli/qcmd.h"
#include "cli/recv.h"
#include "cli/retry.h"
#include "cli/place.h"
#include "cli/send.h"
#include "cli/spool.h"
#include "cli/tree.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/tls.h"
#include "ferry/units.h"

#define DEFAULT_SERVER "127.0.0.1:7420"

/* ---- help --------------------------------------------------------------------- */

static const char usage_main[] =
    "Usage: ferry COMMAND [OPTIONS]\n"
    "\n"
    "Send files through a Ferry relay (ferryd) to any number of receivers.\n"
    "\n"
    "Commands:\n"
    "  send    send files into a channel\n"
    "  recv    receive a channel's files into a directory\n"
    "  check   verify a relay's data directory offline\n"
    "  demo    start a relay, send a file to 3 receivers, verify, time it\n"
    "  ls      list a relay's channels, or a channel's stored files\n"
    "  info    a channel's store, retention, and who is connected\n"
    "  get     fetch stored files by name\n"
    "  rm      delete stored files, or a whole channel (admin)\n"
    "  retain  set a channel's own retention (admin)\n"
    "\n"
    "`ferry COMMAND --help` shows a command's options; `ferry --version` the version.\n"
    "docs/client.md has examples.\n"
    "\n"
    "Every command: -h/--help, -V/--version, -v/--verbose (debug log lines),\n"
    "-q/--quiet (no bar, warnings and errors only), --log-level debug|info|warn|error.\n"
    "\n"
    "Where the relay is, and how to reach it (send, recv), first found wins:\n"
    "  1. flags: --server HOST:PORT, --token/--token-file, --tls, --ca, --tls-name, ...\n"
    "  2. environment: FERRY_SERVER=HOST:PORT, FERRY_TOKEN\n"
    "  3. the settings file $XDG_CONFIG_HOME/ferry/config (default\n"
    "     ~/.config/ferry/config; $FERRY_CONFIG names another): 'key = value' lines\n"
    "     with keys server, token-file, tls (yes|no), ca, tls-name, tls-cert, tls-key\n"
    "  4. the default, " DEFAULT_SERVER ", plaintext, no token\n"
    "HOST is a name (/etc/hosts, DNS: every address is tried in turn), an IPv4\n"
    "address, or an IPv6 one in brackets: [::1]:7420.  With TLS the relay's\n"
    "certificate must name HOST (or --tls-name).\n"
    "\n"
    "Progress: a bar on a terminal (--progress: always, --quiet: never), else one\n"
    "key=value line per file on stdout; --json: JSON Lines instead, each object with\n"
    "a \"type\": \"file\" per file, \"total\" at the end, \"error\" on a failure or an\n"
    "interrupt.  Units: mbps = MB/s = 10^6 bytes/s; the bar's K/M/G and MiB/s are\n"
    "powers of 1024.  Log lines (key=value, on stderr) say what failed and why.\n\n";

/* Options send and recv share: connection, token, reconnecting. */
#define USAGE_CONN                                                                            \
    "  --server HOST:PORT  relay address: a host name, an IP, or [IPv6]:PORT (default:\n"     \
    "                      $FERRY_SERVER, else the settings file, else " DEFAULT_SERVER ")\n" \
    "  --token T           access token, if the relay requires one; it shows in `ps`,\n"     \
    "                      so prefer --token-file or FERRY_TOKEN\n"                            \
    "  --token-file FILE   read the token from FILE (its first line)\n"                       \
    "                      (precedence: --token, then --token-file, then $FERRY_TOKEN,\n"     \
    "                      then token-file in the settings file)\n"                           \
    "  --connect-timeout S give up connecting, and waiting for the relay's welcome,\n"       \
    "                      after S seconds (default 10)\n"                                     \
    "  --retry             reconnect after a lost connection (relay restart, cut\n"           \
    "                      link), up to --retries attempts in a row, waiting 0.2 s\n"        \
    "                      doubling to 10 s with jitter (the default)\n"                      \
    "  --no-retry          exit 2 when the connection is lost\n"                               \
    "  --retries N         attempts in a row without progress (default 8)\n"                \
    "  --tls               speak TLS to the relay (ferryd --tls-cert/--tls-key)\n"            \
    "  --ca FILE           verify the relay's certificate against these CAs (PEM; implies\n"  \
    "                      --tls; default: the system's trust store)\n"                      \
    "  --tls-name NAME     name or IP the relay's certificate must carry (default: the\n"     \
    "                      host of --server)\n"                                               \
    "  --tls-cert FILE     client certificate (PEM) for a relay with --tls-client-ca;\n"     \
    "  --tls-key FILE      with its private key\n"                                           \
    "  --progress          draw the progress bar on stderr even when it is not a\n"         \
    "                      terminal (width: the terminal's, else $COLUMNS, else 80)\n"      \
    "  -q, --quiet         no progress bar, even on a terminal: key=value lines on\n"       \
    "                      stdout as without one; only warnings and errors logged\n"      \
    "  -v, --verbose       debug log lines;  --log-level LEVEL: debug|info|warn|error\n"  \
    "  --json              results on stdout as JSON Lines: {\"type\":\"file\",...} per\n" \
    "                      file, {\"type\":\"total\",...} at the end, with the keys of\n"   \
    "                      the key=value lines below; {\"type\":\"error\",\"exit\":N,\n"     \
    "                      \"error\":..,\"message\":..} when the run fails or is stopped\n"     \
    "  --client-name NAME  the name the relay shows for us (default user@host)\n"

static const char usage_send[] =
    "Usage: ferry send [--server HOST:PORT] --channel NAME [--token T | --token-file FILE]\n"
    "                  [--chunk BYTES] [--no-retry | --retries N] [--connect-timeout S]\n"
    "                  [--quiet | --progress] [--json] [-r] [--no-perms] [--force]\n"
    "                  FILE... | - --name NAME\n"
    "\n"
    "Send FILEs, in order, into channel NAME.  Each file is sent under its base\n"
    "name; with -r a directory DIR is sent as a tree, each file under DIR's last\n"
    "component and its path below it (photos/b/c.jpg).  Names are UTF-8, 1-255\n"
    "bytes, no '.', '..' or empty component, no control character.  Mode and\n"
    "mtime go along; holes of sparse files are sent as holes.  Exits 0 only once\n"
    "the relay has acknowledged (stored) every file.  After a lost connection it\n"
    "reconnects and continues the file in progress from the last byte the relay\n"
    "stored; a file whose source changed meanwhile (size, mtime, inode) is sent\n"
    "again from its start.  Run again after an interrupt, it continues the first\n"
    "file from what the relay stored when the relay's part is a prefix of it.\n"
    "\n"
    "FILE `-` is standard input, sent under --name NAME: it is first copied to a\n"
    "temp file in $TMPDIR (else /tmp; it needs the room), since a file's size goes\n"
    "first on the wire; the copy is removed afterwards.\n"
    "\n"
    "  --channel NAME      channel to send into (required)\n"
    "  --name NAME         the name for standard input (-) on the relay (required with -)\n"
    "  -r, --recursive     send directories as trees (regular files; symlinks skipped)\n"
    "  --no-perms          do not send the files' mode and mtime\n"
    "  --force             send a file even when the channel's latest file of that\n"
    "                      name is the same (size, SHA-256); without it such a file\n"
    "                      is not stored again and counts as sent\n"
    "  --chunk BYTES       data bytes per frame (default 64K; K/M suffixes; at most\n"
    "                      the relay's maximum payload)\n"
    USAGE_CONN
    "  -h, --help          this text;  -V, --version: the version\n"
    "\n"
    "Without a bar, prints per file once the relay acknowledged it:\n"
    "  file=NAME bytes=N seconds=S mbps=R sha256=HEX   (mbps = 10^6 bytes/s)\n"
    "and at the end: files=N bytes=N seconds=S mbps=R bytes_sent=N reconnects=N status=ok\n"
    "(bytes_sent: stream-frame bytes written, headers included, over all connections)\n"
    "The bar's K/M/G are powers of 1024, as in BYTES options (its rate: MiB/s); each\n"
    "file's finished bar says how long it took, and a total line ends the run.\n\n";

static const char usage_recv[] =
    "Usage: ferry recv [--server HOST:PORT] --channel NAME --out DIR [--token T | --token-file FILE]\n"
    "                  [--from-start | --resume | --from-seq N] [--count N] [--rate BYTES_PER_S]\n"
    "                  [--no-retry | --retries N] [--connect-timeout S] [--quiet | --progress]\n"
    "                  [--json] [--skip-damaged] [--on-conflict rename|keep|replace]\n"
    "                  [--no-perms] [--no-wait]\n"
    "\n"
    "Receive channel NAME's files into DIR (created if missing).  Each file is\n"
    "written to .BASE.part in its directory under DIR (made as needed, never\n"
    "through a symlink), checked (frame CRC32C, size, SHA-256), given the mode and\n"
    "mtime it was sent with, fsync'd and renamed to DIR/NAME (NAME may be a path:\n"
    "a/b/c.txt).  DIR/.ferry-state records where to resume.  After a lost\n"
    "connection it reconnects from the next sequence number it needs and keeps\n"
    "the partial file, which the rest of the file continues.\n"
    "\n"
    "  --channel NAME      channel to receive (required)\n"
    "  --out DIR           directory for the files (required)\n"
    USAGE_CONN
    "  --from-start        start at the first file the relay still holds\n"
    "  --resume            continue after the last file completed in DIR\n"
    "                      (from the start when DIR has no state)\n"
    "  --from-seq N        start at sequence number N\n"
    "                      (default: live, from the next file that starts)\n"
    "  --count N           exit 0 after N files, skipped ones included (default: run\n"
    "                      until interrupted)\n"
    "  --stored            take what the relay stores now (from the start, or from\n"
    "                      --resume / --from-seq), then exit 0; a channel the relay\n"
    "                      does not have exits 3\n"
    "  --rate BYTES_PER_S  read at most this fast (K/M suffixes), e.g. to test a\n"
    "                      slow receiver\n"
    "  --skip-damaged      a file that fails its check (frame CRC32C, size, SHA-256:\n"
    "                      e.g. damaged on the relay's disk) is not fatal: log a\n"
    "                      warning naming it and why, discard it, go on with the\n"
    "                      next file (default: exit 4 at that file)\n"
    "  --on-conflict P     a different file of the name is there: rename (default:\n"
    "                      the new one becomes NAME.1, NAME.2, ...), keep (the old\n"
    "                      one; the new copy is dropped) or replace; an identical\n"
    "                      file is simply kept\n"
    "  --no-perms          ignore the mode and mtime files were sent with\n"
    "  --no-wait           exit 3 when the relay has no channel NAME (default: say\n"
    "                      \"no channel 'NAME' on the relay; waiting for it\" and\n"
    "                      wait until a sender creates it)\n"
    "  -h, --help          this text;  -V, --version: the version\n"
    "\n"
    "Receives into DIR only if it can write there: checked at start (exit 5).\n"
    "On a terminal, between files: \"connected to HOST:PORT, channel NAME: waiting\n"
    "for the next file\".\n"
    "\n"
    "Without a bar, prints per file:\n"
    "  file=NAME bytes=N seconds=S mbps=R sha256=HEX   (mbps = 10^6 bytes/s)\n"
    "and, after --count files: files=N bytes=N seconds=S mbps=R skipped=N status=ok\n"
    "(skipped: files that failed their check, with --skip-damaged)\n"
    "The bar's K/M/G are powers of 1024, as in BYTES options (its rate: MiB/s); each\n"
    "file's finished bar says how long it took, and a total line ends the run.\n\n";

static const char usage_check[] =
    "Usage: ferry check --data DIR [--max-payload BYTES]\n"
    "\n"
    "Verify a relay's data directory offline, read-only: every frame's CRC32C and\n"
    "every index record of every channel under DIR/channels/.  Prints one line per\n"
    "channel and a summary line:\n"
    "  check=ok|damaged channels=N damaged=N unreadable=N frames=N bytes=N crc_errors=N index_errors=N\n"
    "\n"
    "  --data DIR           the relay's --data directory (required)\n"
    "  --max-payload BYTES  largest valid payload (default 16M, the protocol limit)\n"
    "  --help               this text\n"
    "\n"
    "What a crash leaves at a channel's end (unindexed=N torn_bytes=N) is not\n"
    "damage: ferryd repairs it when it opens the channel.  A directory a running\n"
    "ferryd holds is not checked (check=busy pid=N).\n"
    "\n"
    "Exit: 0 clean, 1 damage found, 2 in use by a running ferryd, 5 the directory\n"
    "could not be read.\n\n";

static const char usage_demo[] =
    "Usage: ferry demo [--size BYTES] [--receivers N] [--keep]\n"
    "\n"
    "Start ferryd (next to this program, or $FERRYD) on 127.0.0.1 with a fresh\n"
    "temp data directory, subscribe N receivers, send one file of pseudo-random\n"
    "bytes, verify every received copy's SHA-256, print times and throughput and\n"
    "one line: demo=ok bytes=N receivers=N seconds=S mbps_per_receiver=R verified=N\n"
    "\n"
    "  --size BYTES     file size (default 256M; K/M/G suffixes)\n"
    "  --receivers N    receivers, 1-32 (default 3)\n"
    "  --keep           keep the temp directory (source, relay data, received files)\n"
    "  --help           this text\n"
    "\n"
    "Exit 0 only if every receiver's copy verified.  $TMPDIR picks the temp place.\n\n";

static int help(const char *text, int code)
{
    FILE *out = code == 0 ? stdout : stderr;
    fputs(text, out);
    fputs(fy_cli_exit_help(), out);
    return code;
}

static int version(void)
{
    printf("ferry %s (protocol %u)\n", FY_VERSION, FY_PROTO_VERSION);
    return 0;
}

/* A usage error: one log line naming the command's --help; FY_CLI_EXIT_USAGE. */
static int usage_error(const char *cmd, const char *what, const char *arg)
{
    char hint[32];
    snprintf(hint, sizeof hint, strcmp(cmd, "ferry") ? "ferry %s" : "%s", cmd);
    fy_klog_usage(what, arg, hint);
    return FY_CLI_EXIT_USAGE;
}

/* ---- option values ---------------------------------------------------------------- */

/* A byte count: digits with an optional K, M or G (binary) suffix. */

static int check_name(const char *cmd, const char *what, const char *name)
{
    if (!name)
        return usage_error(cmd, what, NULL);
    if (fy_name_check(name, strlen(name)) != 0)
        return usage_error(cmd, "invalid channel name: use 1-255 of [A-Za-z0-9._-], not starting with '.'",
                           name);
    return 0;
}

/* getopt's complaint about argv, in our words.  opt is getopt's return. */
static int bad_option(const char *cmd, char **argv, int opt)
{
    const char *arg = argv[optind - 1];
    return usage_error(cmd, opt == ':' ? "option needs a value" : "unknown option", arg);
}

/* ---- commands ----------------------------------------------------------------------- */

enum { O_SERVER = 256, O_CHANNEL, O_TOKEN, O_CHUNK, O_OUT, O_FROM_START, O_RESUME, O_FROM_SEQ,
       O_COUNT, O_RATE, O_DATA, O_MAXP, O_SIZE, O_RECEIVERS, O_KEEP, O_HELP, O_TOKEN_FILE,
       O_RETRY, O_NO_RETRY, O_RETRIES, O_CONNECT_TIMEOUT, O_TLS, O_CA, O_TLS_NAME, O_TLS_CERT,
       O_TLS_KEY, O_QUIET, O_PROGRESS, O_JSON, O_NAME, O_SKIP_DAMAGED, O_STORED, O_CLIENT_NAME,
       O_VERBOSE, O_LOG_LEVEL, O_VERSION, O_RECURSIVE, O_NO_PERMS, O_ON_CONFLICT, O_FORCE,
       O_NO_WAIT };

static const struct option long_opts[] = {
    {"server", required_argument, 0, O_SERVER},   {"channel", required_argument, 0, O_CHANNEL},
    {"token", required_argument, 0, O_TOKEN},     {"chunk", required_argument, 0, O_CHUNK},
    {"out", required_argument, 0, O_OUT},         {"from-start", no_argument, 0, O_FROM_START},
    {"resume", no_argument, 0, O_RESUME},         {"from-seq", required_argument, 0, O_FROM_SEQ},
    {"count", required_argument, 0, O_COUNT},     {"rate", required_argument, 0, O_RATE},
    {"data", required_argument, 0, O_DATA},       {"max-payload", required_argument, 0, O_MAXP},
    {"size", required_argument, 0, O_SIZE},       {"receivers", required_argument, 0, O_RECEIVERS},
    {"keep", no_argument, 0, O_KEEP},             {"help", no_argument, 0, O_HELP},
    {"token-file", required_argument, 0, O_TOKEN_FILE}, {"retry", no_argument, 0, O_RETRY},
    {"no-retry", no_argument, 0, O_NO_RETRY},     {"retries", required_argument, 0, O_RETRIES},
    {"connect-timeout", required_argument, 0, O_CONNECT_TIMEOUT},
    {"tls", no_argument, 0, O_TLS},               {"ca", required_argument, 0, O_CA},
    {"tls-name", required_argument, 0, O_TLS_NAME}, {"tls-cert", required_argument, 0, O_TLS_CERT},
    {"tls-key", required_argument, 0, O_TLS_KEY},
    {"quiet", no_argument, 0, O_QUIET},           {"progress", no_argument, 0, O_PROGRESS},
    {"json", no_argument, 0, O_JSON},             {"name", required_argument, 0, O_NAME},
    {"skip-damaged", no_argument, 0, O_SKIP_DAMAGED},
    {"stored", no_argument, 0, O_STORED}, {"client-name", required_argument, 0, O_CLIENT_NAME},
    {"verbose", no_argument, 0, O_VERBOSE},       {"log-level", required_argument, 0, O_LOG_LEVEL},
    {"version", no_argument, 0, O_VERSION},
    {"recursive", no_argument, 0, O_RECURSIVE},   {"no-perms", no_argument, 0, O_NO_PERMS},
    {"on-conflict", required_argument, 0, O_ON_CONFLICT}, {"force", no_argument, 0, O_FORCE},
    {"no-wait", no_argument, 0, O_NO_WAIT},
    {0, 0, 0, 0}};

/* The short options, the same in every Ferry program. */
static int short_opt(int opt)
{
    switch (opt) {
    case 'h': return O_HELP;
    case 'V': return O_VERSION;
    case 'v': return O_VERBOSE;
    case 'q': return O_QUIET;
    default: return opt;
    }
}

/* Every option a command accepts; the others are "unknown" for it. */
typedef struct cmd_opts {
    const char *server, *channel, *token, *out, *data, *token_file, *name;
    uint64_t chunk, from_seq, count, rate, max_payload, size, receivers, retries;
    int start, starts, timeout_ms;
    int progress, progress_flags; /* enum fy_cli_progress_mode; --quiet/--progress given */
    bool keep, help, version, no_retry, tls, json, skip_damaged, stored;
    bool recursive, no_perms, force, no_wait;
    int on_conflict; /* enum fy_cli_conflict */
    bool server_given; /* --server on the command line */
    int log_level;     /* -1: not given (-v, -q, --log-level) */
    fy_cli_conf file;  /* ~/.config/ferry/config, for the commands that connect */
    const char *ca, *tls_name, *tls_cert, *tls_key;
    char token_buf[FY_TOKEN_MAX + 1];
} cmd_opts;

/* Options every command takes: -h, -V, -v, -q, --log-level. */
static bool common_opt(int opt)
{
    return opt == O_HELP || opt == O_VERSION || opt == O_VERBOSE || opt == O_LOG_LEVEL ||
           opt == O_QUIET;
}

/* Where the relay is, for a command that connects: --server, else
 * $FERRY_SERVER, else the settings file's server, else DEFAULT_SERVER.
 * Reads the settings file (cliconf.h) into c->file for the token and TLS
 * keys too.  0, or the exit code of a file that does not parse (logged). */
static int settings(const char *cmd, cmd_opts *c)
{
    char err[1200], q[1300];
    int rc = fy_cli_conf_load(&c->file, err, sizeof err);
    if (rc < 0) {
        int code = rc == -EINVAL ? FY_CLI_EXIT_USAGE : FY_CLI_EXIT_IO;
        fy_klog(FY_LOG_ERROR, "cannot use the client settings file", "command=%s reason=%s exit=%d",
                cmd, fy_klog_q(err, q, sizeof q), code);
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

/* After parse: its error, else --help, else --version. */
static int early(int rc, const cmd_opts *c, const char *usage)
{
    if (rc)
        return rc;
    return c->help ? help(usage, 0) : version();
}

static int parse(const char *cmd, const char *allowed, int argc, char **argv, cmd_opts *c)
{
    *c = (cmd_opts){.server = DEFAULT_SERVER, .retries = FY_CLI_RETRIES_DEFAULT, .log_level = -1};
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = short_opt(getopt_long(argc, argv, ":hVvqr", long_opts, NULL))) != -1) {
        if (opt == '?' || opt == ':')
            return bad_option(cmd, argv, opt);
        if (opt == 'r')
            opt = O_RECURSIVE;
        if (!common_opt(opt) && !strchr(allowed, 1 + opt - O_SERVER))
            return usage_error(cmd, "option not valid for this command", argv[optind - 1]);
        int rc = 0;
        switch (opt) {
        case O_SERVER: c->server = optarg; c->server_given = true; break;
        case O_CHANNEL: c->channel = optarg; break;
        case O_TOKEN: c->token = optarg; break;
        case O_OUT: c->out = optarg; break;
        case O_DATA: c->data = optarg; break;
        case O_CHUNK: rc = fy_units_bytes(optarg, &c->chunk); break;
        case O_FROM_SEQ: rc = fy_units_bytes(optarg, &c->from_seq); c->start = FY_CLI_RECV_FROM_SEQ; c->starts++; break;
        case O_COUNT: rc = fy_units_bytes(optarg, &c->count); break;
        case O_RATE: rc = fy_units_bytes(optarg, &c->rate); break;
        case O_MAXP: rc = fy_units_bytes(optarg, &c->max_payload); break;
        case O_SIZE: rc = fy_units_bytes(optarg, &c->size); break;
        case O_RECEIVERS: rc = fy_units_bytes(optarg, &c->receivers); break;
        case O_FROM_START: c->start = FY_CLI_RECV_START; c->starts++; break;
        case O_RESUME: c->start = FY_CLI_RECV_RESUME; c->starts++; break;
        case O_KEEP: c->keep = true; break;
        case O_TOKEN_FILE: c->token_file = optarg; break;
        case O_RETRY: c->no_retry = false; break;
        case O_NO_RETRY: c->no_retry = true; break;
        case O_RETRIES: rc = fy_units_bytes(optarg, &c->retries); break;
        case O_CONNECT_TIMEOUT: {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v > 0) || v > 3600)
                return usage_error(cmd, "--connect-timeout takes seconds, 0 < S <= 3600", optarg);
            c->timeout_ms = (int)(v * 1000) > 0 ? (int)(v * 1000) : 1;
            break;
        }
        case O_HELP: c->help = true; break;
        case O_TLS: c->tls = true; break;
        case O_CA: c->ca = optarg; c->tls = true; break;
        case O_TLS_NAME: c->tls_name = optarg; break;
        case O_TLS_CERT: c->tls_cert = optarg; break;
        case O_TLS_KEY: c->tls_key = optarg; break;
        case O_QUIET:
            c->progress = FY_CLI_PROGRESS_LINES;
            c->progress_flags |= 1;
            c->log_level = c->log_level < 0 ? FY_LOG_WARN : c->log_level;
            break;
        case O_VERBOSE: c->log_level = FY_LOG_DEBUG; break;
        case O_LOG_LEVEL:
            if ((c->log_level = fy_klog_level_parse(optarg)) < 0)
                return usage_error(cmd, "--log-level takes debug, info, warn or error", optarg);
            break;
        case O_VERSION: c->version = true; break;
        case O_PROGRESS: c->progress = FY_CLI_PROGRESS_BAR; c->progress_flags |= 2; break;
        case O_JSON: c->json = true; break;
        case O_NAME: c->name = optarg; break;
        case O_SKIP_DAMAGED: c->skip_damaged = true; break;
        case O_STORED: c->stored = true; break;
        case O_CLIENT_NAME:
            if (fy_cli_set_client_name(optarg) < 0)
                return usage_error(cmd, "invalid --client-name: 1-64 of [A-Za-z0-9._@+:-]", optarg);
            break;
        case O_RECURSIVE: c->recursive = true; break;
        case O_NO_PERMS: c->no_perms = true; break;
        case O_FORCE: c->force = true; break;
        case O_ON_CONFLICT:
            if ((c->on_conflict = fy_cli_conflict_parse(optarg)) < 0)
                return usage_error(cmd, "--on-conflict takes keep, replace or rename", optarg);
            break;
        case O_NO_WAIT: c->no_wait = true; break;
        }
        if (rc < 0)
            return usage_error(cmd, "not a number (digits, optional K/M/G)", optarg);
    }
    if (c->progress_flags == 3)
        return usage_error(cmd, "choose one of --quiet, --progress", NULL);
    if (c->log_level >= 0)
        fy_klog_set_level((enum fy_klog_level)c->log_level);
    return strchr(allowed, 1 + O_SERVER - O_SERVER) ? settings(cmd, c) : 0;
}

/* The token: --token, else the first line of --token-file, else
 * $FERRY_TOKEN, else none (c->token NULL).  A token on the command line is
 * visible to every user in `ps`; a file or the environment is not.
 * Returns 0 or an exit code (logged). */
static int resolve_token(const char *cmd, cmd_opts *c)
{
    char q[600];
    if (c->token)
        return 0;
    if (c->token_file) {
        int fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            fy_klog(FY_LOG_ERROR, "cannot read the token file", "command=%s file=%s err=%s exit=%d",
                    cmd, fy_klog_q(c->token_file, q, sizeof q), fy_errname(-err), FY_CLI_EXIT_IO);
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
            return usage_error(cmd, "the token in --token-file is longer than 255 bytes",
                               c->token_file);
        memcpy(c->token_buf, buf, strlen(buf) + 1); /* fits: checked above */
        c->token = c->token_buf;
        return 0;
    }
    const char *env = getenv("FERRY_TOKEN");
    if (env && *env) {
        if (strlen(env) > FY_TOKEN_MAX)
            return usage_error(cmd, "$FERRY_TOKEN is longer than 255 bytes", NULL);
        c->token = env;
        return 0;
    }
    if (c->file.token_file[0]) { /* the settings file's, last */
        c->token_file = c->file.token_file;
        return resolve_token(cmd, c);
    }
    return 0;
}

/* Option codes for `allowed`: 1 + (O_x - O_SERVER), never 0 (the end). */
#define A(o) ((char)(1 + (o)-O_SERVER))
#define A_TLS A(O_TLS), A(O_CA), A(O_TLS_NAME), A(O_TLS_CERT), A(O_TLS_KEY)

/* --tls and friends: the client TLS settings, or plaintext (t->ctx NULL).
 * 0, or the exit code for settings that cannot be used. */
static int setup_tls(const char *cmd, cmd_opts *c, fy_cli_tls *t)
{
    char err[512];
    /* the settings file fills what no flag said */
    const fy_cli_conf *f = &c->file;
    c->tls = c->tls || f->tls;
    c->ca = c->ca ? c->ca : f->ca[0] ? f->ca : NULL;
    c->tls_name = c->tls_name ? c->tls_name : f->tls_name[0] ? f->tls_name : NULL;
    c->tls_cert = c->tls_cert ? c->tls_cert : f->tls_cert[0] ? f->tls_cert : NULL;
    c->tls_key = c->tls_key ? c->tls_key : f->tls_key[0] ? f->tls_key : NULL;
    *t = (fy_cli_tls){.name = c->tls_name};
    if (!c->tls) {
        if (c->tls_name || c->tls_cert || c->tls_key)
            return usage_error(cmd, "--tls-name, --tls-cert and --tls-key need --tls", NULL);
        return 0;
    }
    if (fy_tls_client_new(c->ca, c->tls_cert, c->tls_key, &t->ctx, err, sizeof err) < 0) {
        char q[600];
        fy_klog(FY_LOG_ERROR, "cannot set up TLS", "reason=%s exit=%d", fy_klog_q(err, q, sizeof q),
                FY_CLI_EXIT_USAGE);
        return FY_CLI_EXIT_USAGE;
    }
    return 0;
}

/* --json: a failed or interrupted run ends with an error record. */
static void json_error(const cmd_opts *c, int code)
{
    char msg[512];
    if (!c->json || code == FY_CLI_EXIT_OK)
        return;
    fy_klog_last(msg, sizeof msg);
    fy_cli_progress_json_error(code, fy_cli_exit_text(code), msg);
}

/* `-`: standard input to a temp file (spool.h) at spool.  0 or an exit
 * code (logged; spool is "" then, fy_cli_spool removed the file). */
static int spool_stdin(fy_cli_cancel *cancel, char *spool, size_t cap)
{
    uint64_t bytes;
    const char *call;
    int rc = fy_cli_spool(STDIN_FILENO, cancel, spool, cap, &bytes, &call);
    if (rc == 0)
        return 0;
    char q[4200];
    int code = rc == -EINTR ? FY_CLI_EXIT_INTR : FY_CLI_EXIT_IO;
    fy_klog(rc == -EINTR ? FY_LOG_WARN : FY_LOG_ERROR,
            rc == -EINTR ? "interrupted while reading standard input: nothing sent"
                         : "cannot copy standard input to a temp file",
            "call=%s file=%s err=%s exit=%d", call, fy_klog_q(spool, q, sizeof q),
            fy_errname(rc), code);
    spool[0] = 0;
    return code;
}

/* The FILE arguments with directories expanded (-r: tree.h).  0 or an
 * exit code (logged): a directory without -r keeps exit 5 (err=EISDIR). */
static int expand_trees(const cmd_opts *c, const char **files, const char **names, size_t n,
                        fy_cli_tree_list *tree)
{
    const char *bad = "";
    char q[600];
    int rc = fy_cli_tree_expand(files, names, n, c->recursive, tree, &bad);
    if (rc == 0)
        return 0;
    if (rc == -EINVAL)
        return usage_error("send", "-r needs a directory with a name (not . or /)", bad);
    fy_klog(FY_LOG_ERROR, rc == -EISDIR ? "is a directory: use -r to send a tree"
                                        : "cannot read the tree to send",
            "file=%s err=%s exit=%d", fy_klog_q(bad, q, sizeof q), fy_errname(rc),
            FY_CLI_EXIT_IO);
    return FY_CLI_EXIT_IO;
}

/* `ferry send ... - --name NAME`: standard input spooled to a temp file
 * (spool.h), sent under NAME, removed afterwards.  The file list is copied
 * so the "-" can point at the temp file. */
static int cmd_send(int argc, char **argv, fy_cli_cancel *cancel)
{
    const char allowed[] = {A(O_SERVER), A(O_CHANNEL), A(O_TOKEN), A(O_CHUNK), A(O_HELP),
                            A(O_TOKEN_FILE), A(O_RETRY), A(O_NO_RETRY), A(O_RETRIES),
                            A(O_CONNECT_TIMEOUT), A_TLS, A(O_QUIET), A(O_PROGRESS), A(O_JSON),
                            A(O_NAME), A(O_CLIENT_NAME), A(O_RECURSIVE), A(O_NO_PERMS),
                            A(O_FORCE), 0};
    cmd_opts c;
    int rc = parse("send", allowed, argc, argv, &c);
    if (rc || c.help || c.version)
        return early(rc, &c, usage_send);
    if ((rc = resolve_token("send", &c)))
        return rc;
    if ((rc = check_name("send", "--channel is required", c.channel)))
        return rc;
    if (optind >= argc)
        return usage_error("send", "no FILE to send", NULL);
    if (c.chunk > FY_PAYLOAD_MAX_LIMIT)
        return usage_error("send", "--chunk is larger than the protocol's 16M limit", NULL);
    size_t n = (size_t)(argc - optind), dash = n;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[optind + i], "-") != 0)
            continue;
        if (dash < n)
            return usage_error("send", "standard input (-) can be sent once", NULL);
        dash = i;
    }
    if (dash < n && !c.name)
        return usage_error("send", "- (standard input) needs --name NAME for the relay", NULL);
    if (dash == n && c.name)
        return usage_error("send", "--name is for the file from standard input (-)", c.name);
    if (c.name && fy_path_check(c.name, strlen(c.name)) != 0)
        return usage_error("send", "invalid --name: a relative path of 1-255 bytes of UTF-8, "
                           "no '..' or empty component, no control character", c.name);
    /* before standard input is read: a bad TLS setting fails at once */
    fy_cli_tls tls;
    if ((rc = setup_tls("send", &c, &tls)))
        return rc;
    const char **files = calloc(n, sizeof *files), **names = calloc(n, sizeof *names);
    char spool[4096] = "";
    fy_cli_tree_list tree = {0};
    if (!files || !names) {
        fy_klog(FY_LOG_ERROR, "out of memory", "exit=%d", FY_CLI_EXIT_IO);
        rc = FY_CLI_EXIT_IO;
        goto out;
    }
    memcpy(files, argv + optind, n * sizeof *files);
    if (dash < n) {
        if ((rc = spool_stdin(cancel, spool, sizeof spool)) != 0)
            goto out;
        files[dash] = spool;
        names[dash] = c.name;
    }
    if ((rc = expand_trees(&c, files, names, n, &tree)) != 0)
        goto out;
    fy_cli_send_opts o = {.server = c.server, .channel = c.channel, .token = c.token,
                          .chunk = (size_t)c.chunk, .files = tree.files, .names = tree.names,
                          .nfiles = tree.n, .cancel = cancel, .progress = c.progress,
                          .json = c.json, .retries = c.no_retry ? 0 : (unsigned)c.retries,
                          .timeout_ms = c.timeout_ms, .tls = &tls, .no_perms = c.no_perms,
                          .force = c.force,
                          .no_sparse = getenv("FERRY_TEST_NO_SPARSE") != NULL};
    rc = fy_cli_send_run(&o, NULL);
out:
    json_error(&c, rc);
    fy_cli_tree_free(&tree);
    fy_tls_free(tls.ctx);
    if (spool[0])
        unlink(spool);
    free(files);
    free(names);
    return rc;
}

/* recv --stored: stop at the end of what the relay stores now (asked with
 * a query); -1 when that is nothing (exit 0 at once), 0, or an exit code. */
static int stored_end(const cmd_opts *c, const fy_cli_tls *tls, fy_cli_recv_opts *o)
{
    uint64_t end = 0;
    int rc = fy_cli_stored_end(c->server, tls, c->token, c->channel, c->timeout_ms, o->cancel,
                               &end);
    if (rc)
        return rc;
    if (end == 0 || (o->start == FY_CLI_RECV_FROM_SEQ && o->from_seq >= end)) {
        fy_klog(FY_LOG_INFO, "nothing stored to take", "channel=%s end_seq=%llu", c->channel,
                (unsigned long long)end);
        return -1;
    }
    if (o->start == FY_CLI_RECV_LIVE)
        o->start = FY_CLI_RECV_START;
    o->until_seq = end;
    return 0;
}

static int cmd_recv(int argc, char **argv, fy_cli_cancel *cancel)
{
    const char allowed[] = {A(O_SERVER), A(O_CHANNEL), A(O_TOKEN), A(O_OUT), A(O_FROM_START),
                            A(O_RESUME), A(O_FROM_SEQ), A(O_COUNT), A(O_RATE), A(O_HELP),
                            A(O_TOKEN_FILE), A(O_RETRY), A(O_NO_RETRY), A(O_RETRIES),
                            A(O_CONNECT_TIMEOUT), A_TLS, A(O_QUIET), A(O_PROGRESS), A(O_JSON),
                            A(O_SKIP_DAMAGED), A(O_STORED), A(O_CLIENT_NAME), A(O_NO_PERMS),
                            A(O_ON_CONFLICT), A(O_NO_WAIT), 0};
    cmd_opts c;
    int rc = parse("recv", allowed, argc, argv, &c);
    if (rc || c.help || c.version)
        return early(rc, &c, usage_recv);
    if ((rc = resolve_token("recv", &c)))
        return rc;
    if ((rc = check_name("recv", "--channel is required", c.channel)))
        return rc;
    if (!c.out)
        return usage_error("recv", "--out DIR is required", NULL);
    if (optind < argc)
        return usage_error("recv", "unexpected argument", argv[optind]);
    if (c.starts > 1)
        return usage_error("recv", "choose one of --from-start, --resume, --from-seq", NULL);
    if (c.start == FY_CLI_RECV_FROM_SEQ && c.from_seq == 0)
        return usage_error("recv", "--from-seq must be at least 1", NULL);
    fy_cli_tls tls;
    if ((rc = setup_tls("recv", &c, &tls)))
        return rc;
    fy_cli_recv_opts o = {.server = c.server, .channel = c.channel, .token = c.token,
                          .out_dir = c.out, .start = c.start, .from_seq = c.from_seq,
                          .count = c.count, .rate = c.rate, .cancel = cancel,
                          .progress = c.progress, .json = c.json,
                          .retries = c.no_retry ? 0 : (unsigned)c.retries,
                          .timeout_ms = c.timeout_ms, .tls = &tls,
                          .skip_damaged = c.skip_damaged, .on_conflict = c.on_conflict,
                          .no_perms = c.no_perms, .no_wait = c.no_wait};
    if (c.stored && (rc = stored_end(&c, &tls, &o)) != 0) {
        fy_tls_free(tls.ctx);
        return rc < 0 ? 0 : rc;
    }
    rc = fy_cli_recv_run(&o, NULL);
    json_error(&c, rc);
    fy_tls_free(tls.ctx);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    const char allowed[] = {A(O_DATA), A(O_MAXP), A(O_HELP), 0};
    cmd_opts c;
    int rc = parse("check", allowed, argc, argv, &c);
    if (rc || c.help || c.version)
        return early(rc, &c, usage_check);
    if (!c.data)
        return usage_error("check", "--data DIR is required", NULL);
    if (optind < argc)
        return usage_error("check", "unexpected argument", argv[optind]);
    if (c.max_payload > FY_PAYLOAD_MAX_LIMIT)
        return usage_error("check", "--max-payload is larger than the protocol's 16M limit", NULL);
    return fy_cli_check_run(c.data, (size_t)c.max_payload, stdout);
}

static int cmd_demo(int argc, char **argv, fy_cli_cancel *cancel)
{
    const char allowed[] = {A(O_SIZE), A(O_RECEIVERS), A(O_KEEP), A(O_HELP), 0};
    cmd_opts c;
    int rc = parse("demo", allowed, argc, argv, &c);
    if (rc || c.help || c.version)
        return early(rc, &c, usage_demo);
    if (optind < argc)
        return usage_error("demo", "unexpected argument", argv[optind]);
    if (c.receivers > FY_CLI_DEMO_RECEIVERS_MAX)
        return usage_error("demo", "--receivers must be 1-32", NULL);
    fy_cli_demo_opts o = {.size = c.size, .receivers = (int)c.receivers, .keep = c.keep,
                          .cancel = cancel};
    return fy_cli_demo_run(&o);
}

int main(int argc, char **argv)
{
    fy_klog_setup("ferry", FY_LOG_INFO);
    if (argc < 2) {
        fputs(usage_main, stderr);
        return usage_error("ferry", "no command: use send, recv, ls, info, get, rm, retain, check or demo", NULL);
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
        return help(usage_main, 0);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V"))
        return version();
    if (!strcmp(cmd, "check"))
        return cmd_check(argc - 1, argv + 1);
    bool query = !strcmp(cmd, "ls") || !strcmp(cmd, "info") || !strcmp(cmd, "get") ||
                 !strcmp(cmd, "rm") || !strcmp(cmd, "retain");
    bool known = query || !strcmp(cmd, "send") || !strcmp(cmd, "recv") || !strcmp(cmd, "demo");
    if (!known) {
        usage_error("ferry", "unknown command: use send, recv, ls, info, get, rm, retain, check or demo", cmd);
        return FY_CLI_EXIT_USAGE;
    }
    fy_cli_cancel *cancel = NULL;
    int rc = fy_cli_cancel_new(&cancel);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "cannot start the signal watcher", "err=%d", rc);
        return FY_CLI_EXIT_IO;
    }
    if (query)
        rc = fy_cli_qcmd_main(cmd, argc - 1, argv + 1, cancel);
    else if (!strcmp(cmd, "send"))
        rc = cmd_send(argc - 1, argv + 1, cancel);
    else if (!strcmp(cmd, "recv"))
        rc = cmd_recv(argc - 1, argv + 1, cancel);
    else
        rc = cmd_demo(argc - 1, argv + 1, cancel);
    fy_cli_cancel_free(cancel);
    return rc;
}
