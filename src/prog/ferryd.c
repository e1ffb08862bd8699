/*
 * ferryd.c - the relay daemon: options, config file, signals; then the
 * relay (actors/relay.h) does the work.
 *
 * Settings come from built-in defaults, then --config FILE, then the other
 * flags (flags win).  Signals are blocked in every thread before the
 * scheduler starts and taken here with sigwait(), so no handler ever runs
 * inside an actor.  SIGTERM/SIGINT start the orderly shutdown, cut after
 * --drain-timeout seconds; the exit code is 0 either way, 64 (FY_EXIT_USAGE,
 * as in every Ferry program) for bad options or settings, 1 when the relay
 * cannot start.  SIGHUP reloads what can change without a
 * restart (reload(), below), then the TLS certificate (reload_tls()).
 * Under systemd (Type=notify) READY=1 is sent once the relay listens and
 * STOPPING=1 when the shutdown starts; with WatchdogSec= the watchdog
 * module (src/relay/watchdog.c) sends WATCHDOG=1 while the runtime makes
 * progress.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/exit.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sched.h"
#include "cluster/member.h"
#include "relay/auth.h"
#include "relay/conf.h"
#include "relay/notify.h"
#include "relay/tlsfail.h"
#include "relay/watchdog.h"
#include "relay.h"

static const char usage[] =
    "Usage: ferryd [options]\n"
    "Ferry relay: receives files from senders on named channels, stores them and\n"
    "forwards them to every receiver of the channel.\n"
    "\n"
    "  --listen HOST:PORT     address to listen on (default 127.0.0.1:7420; port 0 = any);\n"
    "                         prints 'listening=HOST:PORT' on stderr once bound\n"
    "  --data DIR             data directory (default ./ferry-data)\n"
    "  --threads N            scheduler threads (default: one per core)\n"
    "  --config FILE          'key = value' settings; the flags below override it\n"
    "                         (keys: the flag names without '--'; see docs/ferryd.conf)\n"
    "  --auth FILE|off        token rules 'TOKEN publish|subscribe|both|admin CHANNEL-GLOB';\n"
    "                         without it (or 'off') anyone who reaches the port may\n"
    "                         publish/subscribe\n"
    "  --memory BYTES         packet buffer pool limit (default 256M; K/M/G suffixes)\n"
    "  --max-payload BYTES    largest frame payload accepted (default 1M)\n"
    "  --fsync never|file-end|MS\n"
    "                         when to fdatasync the channel log (default file-end)\n"
    "  --segment-bytes BYTES  roll data segments at this size (default 256M)\n"
    "  --write-mode buffered|direct\n"
    "                         buffered = write-behind: append through the page cache,\n"
    "                         send live at once, fdatasync on the sync worker (default);\n"
    "                         direct = append whole 4 KiB blocks with O_DIRECT and wait\n"
    "                         for the disk (buffered where the filesystem refuses it)\n"
    "  --write-behind BYTES   per channel, how far the durable log may trail what was\n"
    "                         appended before the sender is paced to the disk\n"
    "                         (default 64M or memory/4, whichever is less; <= memory)\n"
    "  --retain-bytes BYTES   keep at most this much per channel (default 0 = all)\n"
    "  --retain-age SECONDS   remove segments older than this (default 0 = keep)\n"
    "  --scrub-interval SECONDS  re-check sealed segments' CRCs this often, in the\n"
    "                         background (default 86400; 0 = never)\n"
    "  --scrub-rate BYTES     per channel, read at most this much per second (default 64M)\n"
    "  --window BYTES         live window per receiver before it reads from disk (default 8M)\n"
    "  --live-send buffers|file\n"
    "                         how live frames reach receivers: buffers = writev from the\n"
    "                         shared packet buffers, bounded by --window (default);\n"
    "                         file = sendfile from the page cache, no copy and no buffer\n"
    "                         per receiver (plain and kernel-TLS connections; measured\n"
    "                         slower on loopback, docs/benchmarks.md)\n"
    "  --channel-budget BYTES buffers in flight between a sender and its channel's\n"
    "                         writer (default 4M)\n"
    "  --sndbuf BYTES         receiver sockets' send buffer (default 0 = kernel autotuning)\n"
    "  --channel-idle TIME    close a channel after TIME with no sender and no receiver;\n"
    "                         it reopens on demand (default 30s; ms, s or m; bare = s)\n"
    "  --max-channels N       channels open at once (default 1024); at the limit the\n"
    "                         least recently used one with no client is closed to make\n"
    "                         room; when every one has clients, FY_ELIMIT\n"
    "  --max-connections N    client connections at once (default 4096; lowered to fit\n"
    "                         the descriptor limit, ulimit -n, with a warning)\n"
    "  --max-connections-per-ip N\n"
    "                         of those, from one IP address (default 256)\n"
    "  --idle-timeout SECONDS close a sender that sends nothing, or a receiver that\n"
    "                         neither answers nor reads, after this long; pinged at\n"
    "                         half of it (default 60; 0 = off)\n"
    "  --takeover-grace SECONDS  a new connection with the sender's token replaces a\n"
    "                         sender idle this long (default 2; at once when it resumes\n"
    "                         at the channel's next seq)\n"

    "  --tls-cert FILE        TLS on the listener: certificate chain (PEM); with --tls-key\n"
    "  --tls-key FILE         the certificate's private key (PEM)\n"
    "  --tls-client-ca FILE   require client certificates that chain to these CAs (PEM)\n"
    "                         (plaintext is the default: fine on loopback; a non-loopback\n"
    "                         listener without TLS or --auth is logged as a warning)\n"
    "  --upstream HOST:PORT   edge relay: mirror channels this relay does not originate\n"
    "                         from the relay at HOST:PORT (default off)\n"
    "  --upstream-token T     subscribe token presented to the upstream relay\n"
    "  --upstream-ca FILE     speak TLS to the upstream, verified against these CAs (PEM)\n"
    "  --upstream-tls-name NAME  name (or IP) expected in the upstream's certificate\n"
    "                         (default: the host part of --upstream)\n"
    "  --upstream-linger TIME follow a mirrored channel this long after its last local\n"
    "                         receiver left (default 60s)\n"
    "  --metrics HOST:PORT    serve GET /metrics (Prometheus text), /healthz and /readyz\n"
    "                         there (default off);\n"
    "                         prints 'metrics=HOST:PORT' on stderr once bound\n"
    "  --metrics-timeout TIME a metrics-port connection must be answered and gone within\n"
    "                         TIME, or it is closed (slow clients; default 5s)\n"
    "  --min-free BYTES       /readyz answers 503 while the data directory's file system\n"
    "                         has less free space than this (default 64M; 0 = off)\n"
    "  --trace FILE           record the actor trace continuously to FILE (FILE.1 keeps\n"
    "                         the previous part); read it with ferry-trace\n"
    "  --trace-max-bytes BYTES  FILE + FILE.1 together (default 64M)\n"
    "  --trace-events N       events kept per scheduler thread, the flight recorder\n"
    "                         (default 65536; 0 = record nothing)\n"
    "  --cluster URL[,URL...] join a cluster of relays coordinated by etcd at these\n"
    "                         endpoints (http://HOST:PORT; default: none); a hello on\n"
    "                         a channel another relay leads is answered FY_ENOTLEADER\n"
    "                         naming it (docs/cluster.md)\n"
    "  --node NAME            this relay's name in the cluster (required with --cluster)\n"
    "  --advertise HOST:PORT  where clients are sent to reach this relay (default: the\n"
    "                         bound listening address)\n"
    "  --cluster-ttl SECONDS  lease TTL: a relay that dies loses its leadership this\n"
    "                         long after (default 5)\n"
    "  --replicas R           replica count of the channels this relay creates (default 2)\n"
    "  --acks all|leader      with --cluster: a file-end is acknowledged once every\n"
    "                         in-sync replica stored it (all, the default) or once this\n"
    "                         relay did (leader; the only value without --cluster)\n"
    "  --replica-lag MS       a follower not caught up this long leaves the in-sync set\n"
    "                         (default: the cluster TTL; 100ms..3600s)\n"
    "  --cluster-prefix P     etcd key prefix (default /ferry)\n"
    "  --log-level LEVEL      debug|info|warn|error (default info)\n"
    "  -v, --verbose          --log-level debug;  -q, --quiet: --log-level warn\n"
    "  --drain-timeout SECONDS  how long SIGTERM's drain may take (default 5): then\n"
    "                         receivers still being sent are cut at a frame end and\n"
    "                         told bye, and ferryd exits within another second\n"
    "  -h, --help             this text;  -V, --version: the version\n"
    "\n"
    "Signals:\n"
    "  SIGTERM/SIGINT  stop accepting, store what was received, say bye, exit 0\n"
    "                  (after --drain-timeout the rest is cut, see above).\n"
    "  SIGHUP          reload: read --config again (with the same flags on top) and\n"
    "                  the token file; apply auth, log-level and drain-timeout, log\n"
    "                  each change (key=old->new); other changed keys need a restart\n"
    "                  and are logged and ignored.  A file that does not parse is\n"
    "                  refused with the reason and the old settings stay; so are\n"
    "                  settings that drop the token file (unless 'auth = off') and\n"
    "                  a token file with no rules (unless it says 'deny-all').\n"
    "                  Then the files of tls-cert, tls-key and tls-client-ca are\n"
    "                  read again: new handshakes use them, open connections keep\n"
    "                  theirs; a pair that does not load is refused, the old stays.\n"
    "  SIGUSR1         write the flight recorder to DATA/trace-<time>.trace\n"
    "                  (ferry-trace reads it).\n"
    "A fatal signal writes it, best effort, to DATA/trace-<time>-crash.trace.\n"
    "\n"
    "Under systemd: READY=1 once listening, STOPPING=1 at SIGTERM, and with\n"
    "WatchdogSec= (WATCHDOG_USEC) WATCHDOG=1 every quarter of it while the\n"
    "scheduler threads answer a heartbeat.\n"
    "\n"
    "Exit: 0 after a shutdown, 1 the relay could not start (address in use, data\n"
    "directory, etcd unreachable, node name held by a live relay), 64 bad options or\n"
    "settings (flags, --config, --auth file; the usage-error code of every Ferry\n"
    "program).  Errors are one key=value line.\n";

/* Bad options or settings: one error line, FY_EXIT_USAGE. */
static int bad(const char *msg)
{
    fy_klog_usage(msg, NULL, NULL);
    return FY_EXIT_USAGE;
}

/* The same for a file a key names: "FILE:LINE: " of that key first when the
 * config file set it. */
static int bad_at(const fy_conf *c, const char *key, const char *msg)
{
    char where[FY_CONF_PATH_MAX + 16], full[FY_CONF_PATH_MAX + 1100];
    fy_conf_where(c, key, where, sizeof where);
    snprintf(full, sizeof full, "%s%s", where, msg);
    return bad(full);
}

/* Apply flags.  With config_only, only --config is looked at (first pass). */
static int parse_flags(int argc, char **argv, fy_conf *c, bool config_only, char *err, size_t cap)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        char key[64];
        /* -v/--verbose and -q/--quiet: --log-level debug / warn, where they stand */
        bool verbose = !strcmp(a, "-v") || !strcmp(a, "--verbose");
        if (verbose || !strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            if (!config_only && fy_conf_set(c, "log-level", verbose ? "debug" : "warn", err, cap) < 0)
                return -EINVAL;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, cap, "unexpected argument '%s'", a);
            return -EINVAL;
        }
        const char *eq = strchr(a, '=');
        size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (kl >= sizeof key) {
            snprintf(err, cap, "unknown option '%s'", a);
            return -EINVAL;
        }
        memcpy(key, a + 2, kl);
        key[kl] = 0;
        if (strcmp(key, "config") != 0 && !fy_conf_known(key)) {
            snprintf(err, cap, "unknown option '--%s'", key);
            return -EINVAL;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            snprintf(err, cap, "option '--%s' needs a value", key);
            return -EINVAL;
        }
        if (strcmp(key, "config") == 0) {
            if (config_only && fy_conf_load(c, val, err, cap) < 0)
                return -EINVAL;
            continue;
        }
        if (!config_only && fy_conf_set(c, key, val, err, cap) < 0)
            return -EINVAL;
    }
    return 0;
}

/* Tell systemd (if it is listening) STATE; a failure is logged, not fatal:
 * the unit's start timeout then says the rest. */
static void notify(const char *state)
{
    int rc = fy_notify_send(state);
    if (rc < 0)
        fy_klog(FY_LOG_WARN, "sendto($NOTIFY_SOCKET) failed, continuing without it",
                "socket=%s state=\"%.*s\" err=%s", getenv("NOTIFY_SOCKET"),
                (int)strcspn(state, "\n"), state, fy_errname(rc));
}

/* ---- SIGHUP --------------------------------------------------------------------- */

/* Settings from scratch, as at start: defaults, --config, the flags. */
static int settings(int argc, char **argv, fy_conf *c, char *err, size_t cap)
{
    fy_conf_defaults(c);
    if (parse_flags(argc, argv, c, true, err, cap) < 0 ||
        parse_flags(argc, argv, c, false, err, cap) < 0 || fy_conf_check(c, err, cap) < 0)
        return -EINVAL;
    return 0;
}

static void on_change(void *arg, const char *key, const char *old_val, const char *new_val)
{
    size_t *restart = arg;
    char qo[FY_CONF_PATH_MAX + 8], qn[FY_CONF_PATH_MAX + 8];

    if (fy_conf_reloadable(key)) {
        fy_klog(FY_LOG_INFO, "reload: setting changed", "%s=%s->%s", key, old_val, new_val);
        return;
    }
    (*restart)++;
    fy_klog(FY_LOG_WARN, "reload: setting needs a restart, kept", "key=%s old=%s new=%s "
            "action=\"keep the running value\"", key, fy_klog_q(old_val, qo, sizeof qo),
            fy_klog_q(new_val, qn, sizeof qn));
}

/* A token file with no rules refuses every hello: said at warn, at start
 * and at each reload that takes one. */
static void warn_empty(const char *file, const fy_auth *a)
{
    if (a && fy_auth_rules(a) == 0)
        fy_klog(FY_LOG_WARN, "token file has no rules", "file=%s deny_all=%s action=\"refuse "
                "every hello\"", file, fy_auth_deny_all(a) ? "yes" : "no");
}

/* The token-table step of a reload: load next's token file into *out (NULL:
 * no table) unless the change would weaken access without saying so.  A
 * config that drops the token file needs `auth = off`; a table with no
 * rules needs `deny-all` in the file.  0, or -EINVAL with the reason in
 * err (then nothing is loaded).  Main thread. */
static int reload_auth(const fy_conf *now, const fy_conf *next, fy_auth **out, char *err,
                       size_t cap)
{
    const char *file = fy_conf_token_file(next), *was = fy_conf_token_file(now);

    *out = NULL;
    if (!file) {
        if (was && strcmp(next->auth, "off") != 0) {
            snprintf(err, cap, "the new settings name no token file (auth was %s): that would "
                     "let everyone in; set 'auth = off' to mean it", was);
            return -EINVAL;
        }
        if (was)
            fy_klog(FY_LOG_WARN, "reload: authentication off", "auth=%s->off action=\"anyone "
                    "who reaches the port may publish and subscribe\"", was);
        return 0;
    }
    if (fy_auth_load(file, out, err, cap) < 0)
        return -EINVAL;
    if (fy_auth_rules(*out) == 0 && !fy_auth_deny_all(*out)) {
        snprintf(err, cap, "%s holds no rules: that would lock everyone out; write a line "
                 "'deny-all' in it to mean it", file);
        fy_auth_free(*out);
        *out = NULL;
        return -EINVAL;
    }
    warn_empty(file, *out);
    return 0;
}

/* Read the config file and the token file again and apply what can change
 * without a restart (fy_conf_reloadable), all or nothing: a file that does
 * not parse, or would weaken access silently (reload_auth), leaves every
 * setting as it was.  now holds the running values (main's copy: the
 * relay's fy_conf is never written).  Main thread. */
static void reload(int argc, char **argv, fy_conf *now, fy_relay *relay)
{
    fy_conf next;
    fy_auth *auth = NULL;
    char err[1024], q[1100];
    size_t restart = 0;

    fy_klog(FY_LOG_INFO, "reload", "signal=HUP");
    if (settings(argc, argv, &next, err, sizeof err) < 0 ||
        reload_auth(now, &next, &auth, err, sizeof err) < 0) {
        fy_klog(FY_LOG_ERROR, "reload refused", "reason=%s action=\"keep the old settings\"",
                fy_klog_q(err, q, sizeof q));
        return;
    }
    size_t before = fy_auth_rules(fy_relay_auth(relay));
    (void)fy_relay_set_auth(relay, auth); /* frees the table it replaces, when its own */
    /* Log under the more verbose of the old and new levels, so a change of
     * level shows either way. */
    if (next.log_level < now->log_level)
        fy_klog_set_level((enum fy_klog_level)next.log_level);
    size_t changed = fy_conf_diff(now, &next, on_change, &restart);
    fy_klog(FY_LOG_INFO, "reload: token rules", "file=%s auth_rules=%zu->%zu tables_kept=%zu "
            "tables_freed=%zu", fy_conf_token_file(&next) ? next.auth : "none", before,
            fy_auth_rules(auth), fy_relay_auth_generations(relay), fy_relay_auth_freed(relay));
    fy_klog(FY_LOG_INFO, "reload done", "changed=%zu need_restart=%zu", changed - restart,
            restart);
    fy_klog_set_level((enum fy_klog_level)next.log_level);
    snprintf(now->auth, sizeof now->auth, "%s", next.auth);
    now->log_level = next.log_level;
    now->drain_timeout = next.drain_timeout;
}

/* SIGHUP's TLS step, apart from the settings' (reload() above): the
 * listener's certificate and key are read again from their files, so a
 * renewed certificate needs no restart.  Whether or not the config file
 * parsed: the files are not part of it.  A certificate or key that does not
 * load leaves the old pair in force. */
static void reload_tls(fy_relay *relay)
{
    char desc[256], err[1024], q[1100];
    int rc = fy_relay_reload_tls(relay, desc, sizeof desc, err, sizeof err);

    if (rc < 0)
        fy_klog(FY_LOG_ERROR, "reload: TLS certificate refused", "reason=%s "
                "action=\"keep the old certificate and key\"", fy_klog_q(err, q, sizeof q));
    else if (rc > 0)
        fy_klog(FY_LOG_INFO, "reload: TLS certificate", "%s", desc);
}

/* --help or --version anywhere on the command line: print it, true. */
static bool info_flag(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return true;
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("ferryd %s (protocol %u)\n", FY_VERSION, FY_PROTO_VERSION);
            return true;
        }
    }
    return false;
}

/* Test hook (docs/development.md): FERRY_TEST_WATCHDOG_STALL_MS=N makes
 * SIGUSR2 stall every scheduler thread for N ms.  0 when unset. */
static unsigned stall_ms(void)
{
    const char *v = getenv("FERRY_TEST_WATCHDOG_STALL_MS");
    return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

/* Block the signals main takes with sigwait, before any thread exists:
 * every thread inherits the mask. */
static void block_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGUSR1);
    sigaddset(sigs, SIGHUP);
    if (stall_ms())
        sigaddset(sigs, SIGUSR2); /* the watchdog's test hook; else USR2 keeps its default */
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    /* A receiver that vanishes must be an EPIPE from writev/sendfile, not a kill. */
    signal(SIGPIPE, SIG_IGN);
}

/* Tell whoever started us that the relay listens at addr: the log line,
 * then metrics= and listening= on stderr, then systemd. */
static void announce(const fy_conf *conf, const fy_auth *auth, fy_relay *relay, const char *addr)
{
    fy_klog(FY_LOG_INFO, "started", "listen=%s data=%s threads=%u memory=%llu window=%llu "
            "channel_budget=%llu max_payload=%llu fsync=%s auth_rules=%zu idle_timeout=%llu",
            addr, conf->data,
            conf->threads, (unsigned long long)conf->memory, (unsigned long long)conf->window,
            (unsigned long long)conf->channel_budget, (unsigned long long)conf->max_payload,
            conf->fsync_mode == 0 ? "never" : conf->fsync_mode == 2 ? "file-end" : "interval",
            fy_auth_rules(auth), (unsigned long long)conf->idle_timeout);
    /* Last, after the start-up log line: whoever waits for listening= then
     * finds that line and metrics= too. */
    if (fy_relay_metrics_bound(relay))
        fprintf(stderr, "metrics=%s\n", fy_relay_metrics_bound(relay));
    fprintf(stderr, "listening=%s\n", addr);
    fflush(stderr);
    char note[256];
    snprintf(note, sizeof note, "READY=1\nSTATUS=listening on %s", addr);
    notify(note);
}

/* ---- --cluster ---------------------------------------------------------------- */

/* The member's thread tells of each channel's leader as it changes. */
static void on_lead(void *arg, const fy_member_view *v)
{
    fy_relay_cluster_changed(arg); /* followers follow, a new leader leads */
    fy_klog(FY_LOG_INFO, "cluster channel leader", "channel=%s leader=%s addr=%s epoch=%llu "
            "leading=%s isr=%u r=%u", v->chan, v->st->leader, v->leader_addr[0] ?
            v->leader_addr : "-", (unsigned long long)v->st->epoch, v->leading ? "yes" : "no",
            v->st->nisr, v->st->r);
}

/* The member's thread asks how far this relay has stored a channel. */
static void on_progress(void *arg, const char *chan, uint64_t *epoch, uint64_t *seq)
{
    fy_relay_progress(arg, chan, epoch, seq);
}

/* Join the cluster (docs/cluster.md) once the relay is bound, so that the
 * advertised address defaults to the bound one.  0, or -1 after the error
 * line (the relay must not start). */
static int join_cluster(const fy_conf *c, const char *bound, fy_relay *relay, fy_member **out)
{
    const char *adv = c->advertise[0] ? c->advertise : bound;
    fy_member_conf mc = {.endpoints = c->cluster, .prefix = c->cluster_prefix, .node = c->node,
                         .advertise = adv, .ttl_s = (int)c->cluster_ttl,
                         .r = (unsigned)c->replicas, .changed = on_lead,
                         .progress = on_progress, .arg = relay};
    uint64_t t0 = fy_now_ns();
    int rc = fy_member_start(&mc, out);
    unsigned ms = (unsigned)((fy_now_ns() - t0) / 1000000);

    if (rc == -EADDRINUSE)
        fy_klog(FY_LOG_ERROR, "cannot join the cluster: the node name is held by a live relay",
                "node=%s cluster=%s waited_ms=%u action=exit", c->node, c->cluster, ms);
    else if (rc < 0)
        fy_klog(FY_LOG_ERROR, "cannot join the cluster: etcd did not answer", "cluster=%s "
                "err=%s waited_ms=%u action=exit", c->cluster, fy_errname(rc), ms);
    else
        fy_klog(FY_LOG_INFO, "cluster joined", "node=%s advertise=%s cluster=%s prefix=%s ttl=%llu "
                "replicas=%llu acks=%s replica_lag_ms=%llu join_ms=%u", c->node, adv, c->cluster,
                c->cluster_prefix, (unsigned long long)c->cluster_ttl,
                (unsigned long long)c->replicas, fy_conf_acks_all(c) ? "all" : "leader",
                (unsigned long long)fy_conf_replica_lag_ms(c), ms);
    if (rc == 0 && !c->advertise[0] && (!strncmp(bound, "0.0.0.0:", 8) || !strncmp(bound, "[::]:", 5)))
        fy_klog(FY_LOG_WARN, "advertised address is a wildcard", "advertise=%s action=\"clients "
                "redirected here cannot connect; set --advertise HOST:PORT\"", bound);
    return rc < 0 ? -1 : 0;
}

/* Create and start the relay and announce it.  0, or 1 (the exit code)
 * with everything freed, auth included. */
static int start(const fy_conf *conf, fy_auth *auth, fy_relay **out)
{
    fy_relay *relay = NULL;
    char err[1024], addr[128];
    int rc;
    if ((rc = fy_relay_new(conf, auth, &relay, err, sizeof err)) < 0) {
        fy_klog(FY_LOG_ERROR, "cannot start", "err=%s text=\"%s\"", fy_errname(rc), err);
        fy_auth_free(auth);
        return 1;
    }
    fy_relay_bound(relay, addr, sizeof addr);
    fy_member *member = NULL;
    if (conf->cluster[0] && join_cluster(conf, addr, relay, &member) < 0) {
        fy_relay_free(relay);
        fy_auth_free(auth);
        return 1;
    }
    fy_relay_set_member(relay, member);
    if ((rc = fy_relay_start(relay, err, sizeof err)) < 0) {
        fy_klog(FY_LOG_ERROR, "cannot start", "err=%s text=\"%s\"", fy_errname(rc), err);
        fy_relay_stop(relay, (unsigned)conf->drain_timeout * 1000u);
        fy_relay_free(relay);
        fy_auth_free(auth);
        return 1;
    }
    announce(conf, auth, relay, addr);
    *out = relay;
    return 0;
}

/* SIGUSR1: write a trace snapshot into the data directory. */
static void trace_snapshot(fy_relay *relay, const fy_conf *conf)
{
    char path[FY_CONF_PATH_MAX + 64] = "";
    int rc = fy_relay_trace(relay, path, sizeof path);
    if (rc < 0)
        fy_klog(FY_LOG_WARN, "trace snapshot failed", "dir=%s err=%s", conf->data,
                fy_errname(rc));
    else
        fy_klog(FY_LOG_INFO, "trace snapshot written", "trace=%s", path);
}

/* Take signals until SIGTERM or SIGINT, which it returns; SIGHUP reloads
 * into *now, SIGUSR1 snapshots the trace, SIGUSR2 (test hook only) stalls
 * the schedulers. */
static int serve(int argc, char **argv, const sigset_t *sigs, const fy_conf *conf, fy_conf *now,
                 fy_relay *relay, fy_watchdog *wd)
{
    const struct timespec second = {.tv_sec = 1};
    int sig = 0;
    for (;;) {
        /* Once a second without a signal: the TLS failures a burst left
         * unlogged (relay/tlsfail.h). */
        if ((sig = sigtimedwait(sigs, NULL, &second)) < 0) {
            uint64_t n = fy_tlsfail_take();
            if (n)
                fy_klog(FY_LOG_WARN, "TLS handshake failures not logged", "suppressed=%llu "
                        "total=%llu", (unsigned long long)n,
                        (unsigned long long)fy_tlsfail_total());
            continue;
        }
        if (sig == SIGHUP) {
            reload(argc, argv, now, relay);
            reload_tls(relay);
        }
        else if (sig == SIGUSR1)
            trace_snapshot(relay, conf);
        else if (sig == SIGUSR2)
            (void)fy_watchdog_stall(wd, fy_relay_sched(relay), stall_ms());
        else
            return sig;
    }
}

/* The orderly shutdown: drain for the drain timeout now in force, then free. */
static void shut_down(int sig, const fy_conf *now, fy_relay *relay, fy_auth *auth,
                      fy_watchdog *wd)
{
    unsigned drain_ms = (unsigned)now->drain_timeout * 1000u;
    fy_klog(FY_LOG_INFO, "shutdown", "signal=%s drain_timeout_ms=%u",
            sig == SIGTERM ? "TERM" : "INT", drain_ms);
    fy_watchdog_stop(wd); /* systemd does not watch a stopping service */
    notify("STOPPING=1\nSTATUS=draining");
    int rc = fy_relay_stop(relay, drain_ms);
    fy_relay_free(relay);
    fy_auth_free(auth);
    fy_klog(FY_LOG_INFO, "exit", "forced=%s", rc < 0 ? "yes" : "no");
}

int main(int argc, char **argv)
{
    fy_conf conf, now; /* conf: the relay's, never written after start; now: SIGHUP's */
    fy_auth *auth = NULL;
    fy_relay *relay = NULL;
    char err[1024];
    sigset_t sigs;

    fy_klog_setup("ferryd", FY_LOG_INFO); /* for option errors; the level is set below */
    if (info_flag(argc, argv))
        return 0;
    if (settings(argc, argv, &conf, err, sizeof err) < 0 ||
        fy_conf_check_files(&conf, err, sizeof err) < 0)
        return bad(err);
    if (fy_conf_token_file(&conf) && fy_auth_load(conf.auth, &auth, err, sizeof err) < 0)
        return bad_at(&conf, "auth", err);

    fy_klog_setup("ferryd", conf.log_level);
    warn_empty(conf.auth, auth);
    block_signals(&sigs);
    if (start(&conf, auth, &relay) != 0)
        return 1;
    now = conf;
    fy_watchdog *wd = NULL;
    if (fy_watchdog_start(fy_relay_sched(relay), &wd, err, sizeof err) < 0)
        fy_klog(FY_LOG_ERROR, "watchdog not started", "text=\"%s\" action=\"run without "
                "it: systemd restarts ferryd after WatchdogSec\"", err);
    int sig = serve(argc, argv, &sigs, &conf, &now, relay, wd);
    shut_down(sig, &now, relay, auth, wd);
    return 0;
}
