/*
 * ferry_swarm.c - ferry-swarm: Ferry's stress-test client swarm.
 *
 * Parses options, raises the open-file limit, runs one swarm (src/swarm)
 * and prints its figures: a table, optional JSON and CSV, and one closing
 * key=value line on stdout.  Exit status 0 only when every receiver got
 * every file intact, nothing failed and the run ended before --timeout;
 * 64 (FY_EXIT_USAGE, as in every Ferry program) for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "ferry/err.h"
#include "ferry/exit.h"
#include "ferry/klog.h"
#include "ferry/sock.h"
#include "ferry/units.h"
#include "swarm/report.h"
#include "swarm/swarm.h"

static const char usage[] =
    "Usage: ferry-swarm [options]\n"
    "Drives many Ferry clients from one process and checks every packet.\n"
    "\n"
    "  --mode MODE          bulk | rate | storm | churn | slow (default bulk)\n"
    "  --server S           HOST:PORT of a relay (default 127.0.0.1:7420), or p2p\n"
    "                       (senders write to receivers directly, no relay)\n"
    "  --tls                speak TLS to the relay; --ca FILE verifies its certificate\n"
    "                       (PEM; implies --tls; default the system's trust store),\n"
    "                       --tls-name NAME if it names the relay differently from S\n"
    "  --senders S          senders in all (default 1); a channel's senders take turns\n"
    "  --channels C         channels (default = senders)\n"
    "  --receivers R        receivers per channel (default 1)\n"
    "  --size BYTES         bytes per file, K/M/G suffixes (default 64M)\n"
    "  --files N            files per sender (default 1)\n"
    "  --chunk BYTES        data bytes per frame, K/M suffixes (default 64K)\n"
    "  --msg-rate N         rate: data frames (messages) per second, all channels\n"
    "                       together\n"
    "  --duration SECONDS   rate: how long to send (default 1)\n"
    "  --connections N      storm: simultaneous connections\n"
    "  --connect-timeout S  storm: a connection counts as served if its welcome comes\n"
    "                       within S seconds (default 5)\n"
    "  --slow N             slow receivers per channel (slow mode; any mode)\n"
    "  --slow-rate BYTES    their read cap per second, K/M/G suffixes\n"
    "  --churners N         churn: receivers per channel that leave and rejoin\n"
    "                       (default half of them)\n"
    "  --churn-times K      churn: how often each leaves (default 3)\n"
    "  --threads T          worker threads (default: one per core)\n"
    "  --token TOKEN        token for hello (default empty)\n"
    "  --verify sha|content sha: every receiver hashes every file (default);\n"
    "                       content: memcmp with the known content + sender digest\n"
    "  --seed N             content seed\n"
    "  --channel-prefix P   channel names P-c0, P-c1 ... (default swarm-PID-TIME)\n"
    "  --json FILE          write every figure (and every receiver) as JSON\n"
    "  --csv FILE           append one CSV row (header first if FILE is new); - = stdout\n"
    "  --timeout SECONDS    hard bound on the whole run (default 120); exit 1 on timeout\n"
    "  --log-level LEVEL    debug | info | warn | error (default warn)\n"
    "  -v, --verbose        --log-level debug;  -q, --quiet: --log-level error\n"
    "  -h, --help           this text;  -V, --version: the version\n"
    "Old spellings, still accepted (with a warning): --target (--server), --packet\n"
    "(--chunk), --rate (--msg-rate), --window (--connect-timeout); docs/swarm.md.\n"
    "Sizes and byte rates are bytes with K/M/G suffixes (powers of 1024).\n"
    "\n"
    "stdout ends with one key=value line: mode= target= senders= channels= receivers=\n"
    "bytes= seconds= mbps_aggregate= mbps_per_receiver= msgs_per_s= integrity_failures=\n"
    "... (+ p50_us= p99_us= p999_us= max_us= in rate mode, served= storm= in storm mode)\n"
    "... server= chunk= (the flags' names; target= and packet= say the same, kept for\n"
    "scripts).  mbps_* are MB/s: 10^6 bytes per second.\n"
    "Exit status: 0 all good, 1 integrity failure / error / timeout, 2 setup failed,\n"
    "64 bad usage (the usage-error code of every Ferry program).  Errors are one\n"
    "key=value line on stderr.\n";

enum {
    O_MODE = 256, O_TARGET, O_SENDERS, O_CHANNELS, O_RECEIVERS, O_SIZE, O_FILES, O_PACKET,
    O_RATE, O_DURATION, O_CONNS, O_WINDOW, O_SLOW, O_SLOW_RATE, O_CHURNERS, O_CHURN_TIMES,
    O_THREADS, O_TOKEN, O_VERIFY, O_SEED, O_PREFIX, O_JSON, O_CSV, O_TIMEOUT, O_LOG, O_HELP, O_VERSION,
    O_TLS, O_CA, O_TLS_NAME,
    /* old spellings (aliases), mapped by `renamed` below */
    O_OLD_TARGET, O_OLD_PACKET, O_OLD_RATE, O_OLD_WINDOW
};

/* Renamed flags: the old spelling still works, with a warning, so scripts
 * keep running; docs/swarm.md lists them. */
static const struct { int old, now; } renamed[] = {
    {O_OLD_TARGET, O_TARGET}, {O_OLD_PACKET, O_PACKET}, {O_OLD_RATE, O_RATE},
    {O_OLD_WINDOW, O_WINDOW}};

static const struct option opts[] = {
    {"mode", 1, 0, O_MODE}, {"server", 1, 0, O_TARGET}, {"senders", 1, 0, O_SENDERS},
    {"channels", 1, 0, O_CHANNELS}, {"receivers", 1, 0, O_RECEIVERS}, {"size", 1, 0, O_SIZE},
    {"files", 1, 0, O_FILES}, {"chunk", 1, 0, O_PACKET}, {"msg-rate", 1, 0, O_RATE},
    {"duration", 1, 0, O_DURATION}, {"connections", 1, 0, O_CONNS},
    {"connect-timeout", 1, 0, O_WINDOW},
    {"slow", 1, 0, O_SLOW}, {"slow-rate", 1, 0, O_SLOW_RATE}, {"churners", 1, 0, O_CHURNERS},
    {"churn-times", 1, 0, O_CHURN_TIMES}, {"threads", 1, 0, O_THREADS}, {"token", 1, 0, O_TOKEN},
    {"verify", 1, 0, O_VERIFY}, {"seed", 1, 0, O_SEED}, {"channel-prefix", 1, 0, O_PREFIX},
    {"json", 1, 0, O_JSON}, {"csv", 1, 0, O_CSV}, {"timeout", 1, 0, O_TIMEOUT},
    {"log-level", 1, 0, O_LOG}, {"help", 0, 0, O_HELP},
    {"version", 0, 0, O_VERSION}, {"tls", 0, 0, O_TLS}, {"ca", 1, 0, O_CA},
    {"tls-name", 1, 0, O_TLS_NAME},
    {"target", 1, 0, O_OLD_TARGET}, {"packet", 1, 0, O_OLD_PACKET}, {"rate", 1, 0, O_OLD_RATE},
    {"window", 1, 0, O_OLD_WINDOW}, {"verbose", 0, 0, 'v'}, {"quiet", 0, 0, 'q'}, {0, 0, 0, 0}};

struct args {
    fy_swarm_cfg cfg;
    const char *json, *csv;
    int log_level;
    bool tls;
    const char *ca, *tls_name;
};


static int parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (fy_units_bytes(s, &v) < 0 || v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

static int set_target(fy_swarm_cfg *c, const char *t)
{
    snprintf(c->target_text, sizeof c->target_text, "%s", t);
    c->p2p = strcmp(t, "p2p") == 0;
    return c->p2p ? 0 : fy_addr_parse(t, "127.0.0.1", &c->target);
}

static int set_verify(fy_swarm_cfg *c, const char *v)
{
    if (strcmp(v, "sha") == 0)
        c->verify = FY_VERIFY_SHA;
    else if (strcmp(v, "content") == 0)
        c->verify = FY_VERIFY_CONTENT;
    else
        return -EINVAL;
    return 0;
}

static int apply(struct args *a, int o, const char *v)
{
    fy_swarm_cfg *c = &a->cfg;
    uint64_t b;
    int rc;
    switch (o) {
    case O_MODE: return (c->mode = fy_report_mode_parse(v)) < 0 ? -EINVAL : 0;
    case O_TARGET: return set_target(c, v);
    case O_SENDERS: return parse_u32(v, &c->senders);
    case O_CHANNELS: return parse_u32(v, &c->channels);
    case O_RECEIVERS: return parse_u32(v, &c->receivers);
    case O_SIZE: return fy_units_bytes(v, &c->size);
    case O_FILES: return parse_u32(v, &c->files);
    case O_PACKET: return parse_u32(v, &c->packet);
    case O_RATE: return parse_double(v, &c->rate);
    case O_DURATION: return parse_double(v, &c->duration);
    case O_CONNS: return parse_u32(v, &c->connections);
    case O_WINDOW: return parse_double(v, &c->storm_window);
    case O_SLOW: return parse_u32(v, &c->slow);
    case O_SLOW_RATE: return fy_units_bytes(v, &c->slow_rate);
    case O_CHURNERS: return parse_u32(v, &c->churners);
    case O_CHURN_TIMES: return parse_u32(v, &c->churn_times);
    case O_THREADS: return parse_u32(v, &c->threads);
    case O_TOKEN:
        if (strlen(v) > FY_TOKEN_MAX)
            return -EINVAL;
        snprintf(c->token, sizeof c->token, "%s", v);
        return 0;
    case O_VERIFY: return set_verify(c, v);
    case O_SEED: rc = fy_units_bytes(v, &b); c->seed = b; return rc;
    case O_PREFIX:
        snprintf(c->chan_prefix, sizeof c->chan_prefix, "%s", v);
        return fy_name_check(v, strlen(v)) < 0 ? -EINVAL : 0;
    case O_JSON: a->json = v; return 0;
    case O_CSV: a->csv = v; return 0;
    case O_TIMEOUT: return parse_double(v, &c->timeout);
    case O_TLS: a->tls = true; return 0;
    case O_CA: a->ca = v; a->tls = true; return 0;
    case O_TLS_NAME: a->tls_name = v; return 0;
    case O_LOG: return (a->log_level = fy_klog_level_parse(v)) < 0 ? -EINVAL : 0;
    default: return -EINVAL;
    }
}

/* The long name of option o (the first spelling in opts). */
static const char *opt_name(int o)
{
    for (const struct option *p = opts; p->name; p++)
        if (p->val == o)
            return p->name;
    return "?";
}

/* 0, 1 (--help or --version printed) or -EINVAL (error logged). */
static int parse_args(int argc, char **argv, struct args *a)
{
    fy_swarm_cfg *c = &a->cfg;
    c->size = 64u << 20;
    c->packet = 64u << 10;
    c->duration = 1.0;
    a->log_level = FY_LOG_WARN;
    set_target(c, "127.0.0.1:7420");
    int o;
    opterr = 0; /* getopt's own messages are not key=value lines: ours are */
    while ((o = getopt_long(argc, argv, ":hVvq", opts, NULL)) != -1) {
        o = o == 'h' ? O_HELP : o == 'V' ? O_VERSION : o;
        if (o == 'v' || o == 'q') { /* --log-level debug / error */
            a->log_level = o == 'v' ? FY_LOG_DEBUG : FY_LOG_ERROR;
            continue;
        }
        if (o == O_HELP) {
            fputs(usage, stdout);
            return 1;
        }
        if (o == O_VERSION) {
            printf("ferry-swarm %s\n", FY_VERSION);
            return 1;
        }
        if (o == '?' || o == ':') {
            fy_klog_usage(o == ':' ? "option needs a value" : "unknown option", argv[optind - 1],
                          NULL);
            return -EINVAL;
        }
        for (size_t i = 0; i < sizeof renamed / sizeof renamed[0]; i++) {
            if (o != renamed[i].old)
                continue;
            fy_klog(FY_LOG_WARN, "deprecated flag: use its new name", "flag=--%s new=--%s",
                    opt_name(o), opt_name(renamed[i].now));
            o = renamed[i].now;
        }
        if (apply(a, o, optarg) < 0) {
            char what[64];
            snprintf(what, sizeof what, "bad value for --%s", opt_name(o));
            fy_klog_usage(what, optarg, NULL);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fy_klog_usage("unexpected argument", argv[optind], NULL);
        return -EINVAL;
    }
    return 0;
}

/* Raise the soft open-file limit to the hard one; warn when the run needs
 * more than that. */
static void raise_nofile(const fy_swarm_cfg *c)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = rl.rlim_max;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            fy_klog(FY_LOG_WARN, "setrlimit failed", "resource=RLIMIT_NOFILE want=%llu err=%s",
                    (unsigned long long)want, fy_errname(-errno));
    }
    uint64_t need = c->mode == FY_SWARM_STORM
                        ? c->connections
                        : (uint64_t)c->channels * (c->receivers + 1) * (c->p2p ? 2 : 1);
    need += 64 + c->threads;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur)
        fy_klog(FY_LOG_WARN, "open-file limit too low", "nofile=%llu need=%llu "
                "action=\"connections beyond the limit fail (raise the hard limit: ulimit -Hn)\"",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

static int write_csv(const char *path, const fy_swarm_cfg *c, const fy_swarm_result *r)
{
    if (strcmp(path, "-") == 0) {
        fy_report_csv(stdout, c, r, true);
        return 0;
    }
    struct stat st;
    bool header = stat(path, &st) < 0 || st.st_size == 0;
    FILE *f = fopen(path, "a");
    if (!f)
        return -errno;
    fy_report_csv(f, c, r, header);
    return fclose(f) == 0 ? 0 : -errno;
}

static int write_json(const char *path, const fy_swarm_cfg *c, const fy_swarm_result *r)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    int rc = fy_report_json(f, c, r);
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

static int report(const struct args *a, const fy_swarm_result *res)
{
    int rc = 0;
    fy_report_table(stdout, &a->cfg, res);
    if (a->json && (rc = write_json(a->json, &a->cfg, res)) < 0)
        fy_klog(FY_LOG_ERROR, "write json failed", "path=%s err=%s", a->json, fy_errname(rc));
    int rc2 = a->csv ? write_csv(a->csv, &a->cfg, res) : 0;
    if (rc2 < 0)
        fy_klog(FY_LOG_ERROR, "write csv failed", "path=%s err=%s", a->csv, fy_errname(rc2));
    fy_report_kv(stdout, &a->cfg, res);
    fflush(stdout);
    return rc < 0 ? rc : rc2;
}

/* --tls: the client settings every relay connection shares.  -1 (logged)
 * when the CA file or the name cannot be used. */
static int setup_tls(struct args *a)
{
    char err[512], q[600];
    int rc = 0;

    if (a->tls_name)
        snprintf(a->cfg.tls_name, sizeof a->cfg.tls_name, "%s", a->tls_name);
    else
        rc = fy_tls_name_from_server(a->cfg.target_text, a->cfg.tls_name, sizeof a->cfg.tls_name);
    if (rc == 0 && fy_tls_client_new(a->ca, NULL, NULL, &a->cfg.tls, err, sizeof err) < 0) {
        fy_klog(FY_LOG_ERROR, "cannot set up TLS", "reason=%s", fy_klog_q(err, q, sizeof q));
        return -1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    fy_klog_setup("ferry-swarm", FY_LOG_WARN); /* for option errors; --log-level below */
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc > 0 ? 0 : FY_EXIT_USAGE;
    fy_klog_set_level((enum fy_klog_level)a.log_level);
    char why[160];
    if (fy_swarm_cfg_check(&a.cfg, why, sizeof why) < 0) {
        fy_klog_usage(why, NULL, NULL);
        return FY_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that hung up is an error code, not a death */
    if (a.tls && setup_tls(&a) < 0)
        return 2;
    raise_nofile(&a.cfg);
    fy_swarm_result res;
    rc = fy_swarm_run(&a.cfg, &res);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "swarm setup failed", "err=%s action=exit", fy_errname(rc));
        return 2;
    }
    if (res.timed_out)
        fy_klog(FY_LOG_ERROR, "run timed out", "timeout_s=%.1f action=\"report and exit 1\"",
                a.cfg.timeout);
    int out = report(&a, &res);
    bool ok = fy_swarm_result_ok(&a.cfg, &res) && out == 0;
    fy_swarm_result_free(&res);
    fy_tls_free(a.cfg.tls);
    return ok ? 0 : 1;
}
