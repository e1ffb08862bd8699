/*
 * ferry.c - the Ferry client: `ferry send|recv|ls|info|get|rm|retain|check|demo`.
 *
 * Only the commands' help texts and wiring live here: the options are
 * parsed by src/cli/opts.c (one table, one dialect for every command), the
 * work is in src/cli/ (send.c, recv.c, check.c, demo.c; the query commands
 * ls, info, get, rm, retain with their help texts in qcmd.c).  Flags, output
 * lines and exit codes are a contract with scripts: docs/client.md
 * describes them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cancel.h"
#include "cli/check.h"
#include "cli/cliexit.h"
#include "cli/demo.h"
#include "cli/opts.h"
#include "cli/qcmd.h"
#include "cli/recv.h"
#include "cli/send.h"
#include "cli/spool.h"
#include "cli/tree.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/tls.h"

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
    "Where the relay is, and how to reach it (every command but check and demo),\n"
    "first found wins:\n"
    "  1. flags: --server HOST:PORT, --token/--token-file, --tls, --ca, --tls-name, ...\n"
    "  2. environment: FERRY_SERVER=HOST:PORT, FERRY_TOKEN\n"
    "  3. the settings file $XDG_CONFIG_HOME/ferry/config (default\n"
    "     ~/.config/ferry/config; $FERRY_CONFIG names another): 'key = value' lines\n"
    "     with keys server, token-file, tls (yes|no), ca, tls-name, tls-cert, tls-key\n"
    "  4. the default, " FY_CLI_DEFAULT_SERVER ", plaintext, no token\n"
    "HOST is a name (/etc/hosts, DNS: every address is tried in turn), an IPv4\n"
    "address, or an IPv6 one in brackets: [::1]:7420.  With TLS the relay's\n"
    "certificate must name HOST (or --tls-name).  A cluster (docs/cluster.md):\n"
    "--server A,B,C tries each in turn while one cannot be reached, and every\n"
    "command follows a relay that names the channel's leader (not one naming an\n"
    "older cluster epoch than the run has seen).\n"
    "\n"
    "Progress (send, recv, get): a bar on a terminal (--progress: always, --quiet:\n"
    "never), else one key=value line per file on stdout; --json: JSON Lines instead,\n"
    "each object with a \"type\": \"file\" per file, \"total\" at the end, \"error\" on\n"
    "a failure or an interrupt (ls, info, rm, retain: their records, and \"error\").\n"
    "Units: mbps = MB/s = 10^6 bytes/s; the bar's K/M/G and MiB/s are\n"
    "powers of 1024.  Log lines (key=value, on stderr) say what failed and why.\n\n";

/* Options send and recv share: where the relay is, reconnecting, output. */
#define USAGE_CONN                                                                            \
    FY_CLI_USAGE_REACH                                                                        \
    "  --retry             reconnect after a lost connection (relay restart, cut\n"           \
    "                      link), up to --retries attempts in a row, waiting 0.2 s\n"        \
    "                      doubling to 10 s with jitter (the default)\n"                      \
    "  --no-retry          exit 2 when the connection is lost\n"                               \
    "  --retries N         attempts in a row without progress (default 8)\n"                \
    "  --progress          draw the progress bar on stderr even when it is not a\n"         \
    "                      terminal (width: the terminal's, else $COLUMNS, else 80)\n"      \
    "  -q, --quiet         no progress bar, even on a terminal: key=value lines on\n"       \
    "                      stdout as without one; only warnings and errors logged\n"      \
    "  --json              results on stdout as JSON Lines: {\"type\":\"file\",...} per\n" \
    "                      file, {\"type\":\"total\",...} at the end, with the keys of\n"   \
    "                      the key=value lines below; {\"type\":\"error\",\"exit\":N,\n"     \
    "                      \"error\":..,\"message\":..} when the run fails or is stopped\n"

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
    FY_CLI_USAGE_COMMON
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
    FY_CLI_USAGE_COMMON
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
    "  --data DIR          the relay's --data directory (required)\n"
    "  --max-payload BYTES largest valid payload (default 16M, the protocol limit)\n"
    "  -q, --quiet         only warnings and errors logged\n"
    FY_CLI_USAGE_COMMON
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
    "  --size BYTES        file size (default 256M; K/M/G suffixes)\n"
    "  --receivers N       receivers, 1-32 (default 3)\n"
    "  --keep              keep the temp directory (source, relay data, received\n"
    "                      files)\n"
    "  -q, --quiet         only warnings and errors logged\n"
    FY_CLI_USAGE_COMMON
    "\n"
    "Exit 0 only if every receiver's copy verified.  $TMPDIR picks the temp place.\n\n";

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
static int expand_trees(const fy_cli_opts *c, const char **files, const char **names, size_t n,
                        fy_cli_tree_list *tree)
{
    const char *bad = "";
    char q[600];
    int rc = fy_cli_tree_expand(files, names, n, c->recursive, tree, &bad);
    if (rc == 0)
        return 0;
    if (rc == -EINVAL)
        return fy_cli_opts_usage_error("send", "-r needs a directory with a name (not . or /)",
                                       bad);
    fy_klog(FY_LOG_ERROR, rc == -EISDIR ? "is a directory: use -r to send a tree"
                                        : "cannot read the tree to send",
            "file=%s err=%s exit=%d", fy_klog_q(bad, q, sizeof q), fy_errname(rc),
            FY_CLI_EXIT_IO);
    return FY_CLI_EXIT_IO;
}

/* send's operands and the options that depend on them: *n FILEs at
 * argv[optind..], the `-` among them at *dash (n: none).  0 or a usage
 * error. */
static int send_args(const fy_cli_opts *c, int argc, char **argv, size_t *n, size_t *dash)
{
    int rc = fy_cli_opts_channel("send", "--channel is required", c->channel);
    if (rc)
        return rc;
    if (optind >= argc)
        return fy_cli_opts_usage_error("send", "no FILE to send", NULL);
    if (c->chunk > FY_PAYLOAD_MAX_LIMIT)
        return fy_cli_opts_usage_error("send", "--chunk is larger than the protocol's 16M limit",
                                       NULL);
    *n = (size_t)(argc - optind);
    *dash = *n;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(argv[optind + i], "-") != 0)
            continue;
        if (*dash < *n)
            return fy_cli_opts_usage_error("send", "standard input (-) can be sent once", NULL);
        *dash = i;
    }
    if (*dash < *n && !c->name)
        return fy_cli_opts_usage_error("send", "- (standard input) needs --name NAME for the "
                                       "relay", NULL);
    if (*dash == *n && c->name)
        return fy_cli_opts_usage_error("send", "--name is for the file from standard input (-)",
                                       c->name);
    if (c->name && fy_path_check(c->name, strlen(c->name)) != 0)
        return fy_cli_opts_usage_error("send", "invalid --name: a relative path of 1-255 bytes "
                                       "of UTF-8, no '..' or empty component, no control "
                                       "character", c->name);
    return 0;
}

/* `ferry send ... - --name NAME`: standard input spooled to a temp file
 * (spool.h), sent under NAME, removed afterwards.  The file list is copied
 * so the "-" can point at the temp file.  TLS is set up before standard
 * input is read (fy_cli_opts_main): a bad TLS setting fails at once. */
static int cmd_send(fy_cli_opts *c, int argc, char **argv)
{
    size_t n = 0, dash = 0;
    int rc = send_args(c, argc, argv, &n, &dash);
    if (rc)
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
        if ((rc = spool_stdin(c->cancel, spool, sizeof spool)) != 0)
            goto out;
        files[dash] = spool;
        names[dash] = c->name;
    }
    if ((rc = expand_trees(c, files, names, n, &tree)) != 0)
        goto out;
    fy_cli_send_opts o = {.server = c->server, .channel = c->channel, .token = c->token,
                          .chunk = (size_t)c->chunk, .files = tree.files, .names = tree.names,
                          .nfiles = tree.n, .cancel = c->cancel, .progress = c->progress,
                          .json = c->json, .retries = c->no_retry ? 0 : (unsigned)c->retries,
                          .timeout_ms = c->timeout_ms, .tls = &c->tls, .no_perms = c->no_perms,
                          .force = c->force,
                          .no_sparse = getenv("FERRY_TEST_NO_SPARSE") != NULL};
    rc = fy_cli_send_run(&o, NULL);
out:
    fy_cli_tree_free(&tree);
    if (spool[0])
        unlink(spool);
    free(files);
    free(names);
    return rc;
}

/* recv --stored: stop at the end of what the relay stores now (asked with
 * a query); -1 when that is nothing (exit 0 at once), 0, or an exit code. */
static int stored_end(const fy_cli_opts *c, fy_cli_recv_opts *o)
{
    uint64_t end = 0;
    int rc = fy_cli_stored_end(c->server, &c->tls, c->token, c->channel, c->timeout_ms,
                               c->cancel, &end);
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

static int cmd_recv(fy_cli_opts *c, int argc, char **argv)
{
    int rc = fy_cli_opts_channel("recv", "--channel is required", c->channel);
    if (rc)
        return rc;
    if (!c->out)
        return fy_cli_opts_usage_error("recv", "--out DIR is required", NULL);
    if (optind < argc)
        return fy_cli_opts_usage_error("recv", "unexpected argument", argv[optind]);
    if (c->starts > 1)
        return fy_cli_opts_usage_error("recv", "choose one of --from-start, --resume, "
                                       "--from-seq", NULL);
    if (c->start == FY_CLI_RECV_FROM_SEQ && c->from_seq == 0)
        return fy_cli_opts_usage_error("recv", "--from-seq must be at least 1", NULL);
    fy_cli_recv_opts o = {.server = c->server, .channel = c->channel, .token = c->token,
                          .out_dir = c->out, .start = c->start, .from_seq = c->from_seq,
                          .count = c->count, .rate = c->rate, .cancel = c->cancel,
                          .progress = c->progress, .json = c->json,
                          .retries = c->no_retry ? 0 : (unsigned)c->retries,
                          .timeout_ms = c->timeout_ms, .tls = &c->tls,
                          .skip_damaged = c->skip_damaged, .on_conflict = c->on_conflict,
                          .no_perms = c->no_perms, .no_wait = c->no_wait};
    if (c->stored && (rc = stored_end(c, &o)) != 0)
        return rc < 0 ? 0 : rc;
    return fy_cli_recv_run(&o, NULL);
}

static int cmd_check(fy_cli_opts *c, int argc, char **argv)
{
    if (!c->data)
        return fy_cli_opts_usage_error("check", "--data DIR is required", NULL);
    if (optind < argc)
        return fy_cli_opts_usage_error("check", "unexpected argument", argv[optind]);
    if (c->max_payload > FY_PAYLOAD_MAX_LIMIT)
        return fy_cli_opts_usage_error("check", "--max-payload is larger than the protocol's "
                                       "16M limit", NULL);
    return fy_cli_check_run(c->data, (size_t)c->max_payload, stdout);
}

static int cmd_demo(fy_cli_opts *c, int argc, char **argv)
{
    if (optind < argc)
        return fy_cli_opts_usage_error("demo", "unexpected argument", argv[optind]);
    if (c->receivers > FY_CLI_DEMO_RECEIVERS_MAX)
        return fy_cli_opts_usage_error("demo", "--receivers must be 1-32", NULL);
    fy_cli_demo_opts o = {.size = c->size, .receivers = (int)c->receivers, .keep = c->keep,
                          .cancel = c->cancel};
    return fy_cli_demo_run(&o);
}

/* ---- the commands ------------------------------------------------------------------- */

#define A(o) FY_CLI_OPT_BIT(FY_CLI_OPT_##o)

static const fy_cli_cmd commands[] = {
    {"send", FY_CLI_OPTS_TRANSFER | A(CHANNEL) | A(CHUNK) | A(NAME) | A(RECURSIVE) |
             A(NO_PERMS) | A(FORCE), usage_send, cmd_send},
    {"recv", FY_CLI_OPTS_TRANSFER | A(CHANNEL) | A(OUT) | A(FROM_START) | A(RESUME) |
             A(FROM_SEQ) | A(COUNT) | A(RATE) | A(SKIP_DAMAGED) | A(STORED) | A(NO_PERMS) |
             A(ON_CONFLICT) | A(NO_WAIT), usage_recv, cmd_recv},
    {"check", A(DATA) | A(MAXP), usage_check, cmd_check},
    {"demo", A(SIZE) | A(RECEIVERS) | A(KEEP), usage_demo, cmd_demo},
};

#define NO_COMMAND "use send, recv, ls, info, get, rm, retain, check or demo"

int main(int argc, char **argv)
{
    fy_klog_setup("ferry", FY_LOG_INFO);
    if (argc < 2) {
        fputs(usage_main, stderr);
        return fy_cli_opts_usage_error("ferry", "no command: " NO_COMMAND, NULL);
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help"))
        return fy_cli_opts_help(usage_main, 0);
    if (!strcmp(name, "--version") || !strcmp(name, "-V"))
        return fy_cli_opts_version();
    const fy_cli_cmd *cmd = fy_cli_qcmd_find(name);
    for (size_t i = 0; !cmd && i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            cmd = &commands[i];
    if (!cmd)
        return fy_cli_opts_usage_error("ferry", "unknown command: " NO_COMMAND, name);
    /* check reads files only: Ctrl-C simply ends it */
    fy_cli_cancel *cancel = NULL;
    int rc = cmd->run == cmd_check ? 0 : fy_cli_cancel_new(&cancel);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "cannot start the signal watcher", "err=%d", rc);
        return FY_CLI_EXIT_IO;
    }
    rc = fy_cli_opts_main(cmd, argc - 1, argv + 1, cancel);
    fy_cli_cancel_free(cancel);
    return rc;
}
