/*
 * ferry_trace.c - ferry-trace: read a trace file written by ferryd and
 * print a timeline (dump), per-actor figures (summary) or Chrome Trace
 * Event JSON (chrome).  Option parsing only; src/trread does the work.
 *
 * Exit codes: 0 done, 1 the file could not be read (missing, foreign,
 * truncated, corrupt: the reason is logged), 64 bad usage (FY_EXIT_USAGE, as
 * in every Ferry program).  Errors are one key=value line on stderr.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/analyzer.h"
#include "ferry/err.h"
#include "ferry/exit.h"
#include "ferry/klog.h"
#include "trread/trchrome.h"
#include "trread/trdump.h"
#include "trread/trfile.h"
#include "trread/trsum.h"

static const char usage[] =
    "Usage: ferry-trace COMMAND FILE [options]\n"
    "Read a trace file written by ferryd (--trace FILE, SIGUSR1, or a crash).\n"
    "\n"
    "commands:\n"
    "  dump FILE      the timeline, one line per event, oldest first; a relay's\n"
    "                 cluster events (leader, isr, failover, note) as `cluster` lines\n"
    "      --actor ID     only this actor (and the sends it made); no cluster lines\n"
    "      --kind K       only actors of this kind (acceptor, session, registry,\n"
    "                     writer, indexer, forwarder, metrics, tracer, or a number)\n"
    "      --since T      from T after the first event (T: 1.5, 1.5s, 250ms, 40us)\n"
    "      --until T      up to T after the first event\n"
    "  summary FILE   the cluster events, counted by kind, the newest listed; then\n"
    "                 per kind and per actor: messages, time handling (p50/p99/max),\n"
    "                 mailbox wait (p50/p99/max), peak mailbox depth, bytes moved;\n"
    "                 the most lagging receivers and the slowest actors first\n"
    "      --top N        per-actor rows to print (default 50, 0 = all)\n"
    "  chrome FILE    Chrome Trace Event JSON on stdout, for ui.perfetto.dev or\n"
    "                 chrome://tracing: a track per actor, a slice per turn, flow\n"
    "                 arrows from send to handling, depth and lag counters, cluster\n"
    "                 events as instant events across every track\n"
    "  info FILE      the header and counts\n"
    "\n"
    "common options:\n"
    "  --partial      read a file cut short (crash, still being written): use the\n"
    "                 complete records and warn, instead of refusing it\n"
    "  -v, --verbose  -q, --quiet (errors only)  --log-level debug|info|warn|error\n"
    "  -h, --help     this text;  -V, --version: the version\n"
    "\n"
    "exit: 0 ok, 1 unreadable/foreign/truncated file, 64 bad usage (the usage-error\n"
    "code of every Ferry program).  Errors are one key=value line on stderr.\n";

/* A usage error: one log line (what, and the argument it is about, when
 * there is one); returns FY_EXIT_USAGE. */
static int bad_usage(const char *what, const char *arg)
{
    fy_klog_usage(what, arg, NULL);
    return FY_EXIT_USAGE;
}

typedef struct opts {
    const char *cmd, *file;
    unsigned flags;
    unsigned top;
    fy_trdump_filter flt;
} opts;

static int parse_args(int argc, char **argv, opts *o)
{
    o->flt = (fy_trdump_filter){.kind = -1, .until = UINT64_MAX};
    o->top = 50;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--actor") || !strcmp(a, "--kind") || !strcmp(a, "--since") ||
                     !strcmp(a, "--until") || !strcmp(a, "--top") || !strcmp(a, "--log-level");
        if (takes && !v)
            return bad_usage("option needs a value", a);
        if (!strcmp(a, "--partial")) {
            o->flags |= FY_TRFILE_PARTIAL;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            fy_klog_set_level(FY_LOG_DEBUG);
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            fy_klog_set_level(FY_LOG_ERROR); /* no warnings (a --partial file's) */
        } else if (!strcmp(a, "--log-level")) {
            FY_ANALYZER_ASSUME(v != NULL);
            int lv = fy_klog_level_parse(v);
            if (lv < 0)
                return bad_usage("--log-level takes debug, info, warn or error", v);
            fy_klog_set_level((enum fy_klog_level)lv);
        } else if (!strcmp(a, "--actor")) {
            char *end;
            /* False positive: takes was true; the analyser sees each strcmp() anew. */
            FY_ANALYZER_ASSUME(v != NULL);
            errno = 0;
            unsigned long id = strtoul(v, &end, 10);
            if (errno || *end || end == v || id == 0 || id > UINT32_MAX)
                return bad_usage("--actor wants an actor id (a number > 0)", v);
            o->flt.actor = (uint32_t)id;
        } else if (!strcmp(a, "--kind")) {
            if ((o->flt.kind = fy_trfile_kind_parse(v)) < 0)
                return bad_usage("unknown kind", v);
        } else if (!strcmp(a, "--since") || !strcmp(a, "--until")) {
            if (fy_trdump_parse_time(v, a[2] == 's' ? &o->flt.since : &o->flt.until) < 0)
                return bad_usage("bad time (want 1.5, 1.5s, 250ms, 40us or 100ns)", v);
        } else if (!strcmp(a, "--top")) {
            char *end;
            /* False positive: takes was true; the analyser sees each strcmp() anew. */
            FY_ANALYZER_ASSUME(v != NULL);
            unsigned long n = strtoul(v, &end, 10);
            if (*end || end == v || n > 1000000)
                return bad_usage("--top wants a count", v);
            o->top = (unsigned)n;
        } else if (a[0] == '-' && a[1]) {
            return bad_usage("unknown option", a);
        } else if (!o->cmd) {
            o->cmd = a;
        } else if (!o->file) {
            o->file = a;
        } else {
            return bad_usage("unexpected argument", a);
        }
        if (takes)
            i++;
    }
    if (!o->cmd)
        return bad_usage("no command (dump, summary, chrome, info)", NULL);
    if (strcmp(o->cmd, "dump") && strcmp(o->cmd, "summary") && strcmp(o->cmd, "chrome") &&
        strcmp(o->cmd, "info"))
        return bad_usage("unknown command (dump, summary, chrome, info)", o->cmd);
    if (!o->file)
        return bad_usage("which trace file? (COMMAND FILE)", o->cmd);
    return 0;
}

static int info(const char *name, const fy_trfile *f)
{
    const fy_trace_file_hdr *h = fy_trfile_hdr(f);
    size_t nev, nact, ncl;
    fy_trfile_events(f, &nev);
    fy_trfile_actors(f, &nact);
    fy_trfile_clusters(f, &ncl);
    printf("file=%s version=%u kind=%s pid=%u threads=%u ring_events=%u events=%zu actors=%zu "
           "lost=%llu cluster_events=%zu\n",
           name, h->version, h->flags & 1 ? "stream" : "dump", h->pid, h->threads,
           h->ring_events, nev, nact, (unsigned long long)fy_trfile_lost(f), ncl);
    if (fy_trfile_warning(f)[0])
        printf("warning=\"%s\"\n", fy_trfile_warning(f));
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {0};
    char err[512];
    fy_trfile *f = NULL;
    int rc;

    fy_klog_setup("ferry-trace", FY_LOG_INFO);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("ferry-trace %s (trace format %u)\n", FY_VERSION, FY_TRACE_VERSION);
            return 0;
        }
    }
    if ((rc = parse_args(argc, argv, &o)) != 0)
        return rc;
    if ((rc = fy_trfile_open(o.file, o.flags, &f, err, sizeof err)) < 0) {
        char qf[600], qe[600];
        fy_klog(FY_LOG_ERROR, "cannot read the trace file", "file=%s err=%s reason=%s%s exit=1",
                fy_klog_q(o.file, qf, sizeof qf), fy_errname(rc), fy_klog_q(err, qe, sizeof qe),
                rc == -FY_ETRUNC ? " hint=\"--partial reads the complete part\"" : "");
        return 1;
    }
    if (!strcmp(o.cmd, "dump")) {
        rc = fy_trdump_print(stdout, o.file, f, &o.flt) < 0 ? -EIO : 0;
    } else if (!strcmp(o.cmd, "chrome")) {
        rc = fy_trchrome_write(stdout, f);
    } else if (!strcmp(o.cmd, "info")) {
        rc = info(o.file, f);
    } else {
        fy_trsum *s = NULL;
        rc = fy_trsum_compute(f, &s);
        if (rc == 0)
            rc = fy_trsum_print(stdout, o.file, f, s, o.top);
        fy_trsum_free(s);
    }
    fy_trfile_free(f);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "cannot write the output", "command=%s err=%s reason=\"%s\" exit=1",
                o.cmd, fy_errname(rc), fy_strerror(rc));
        return 1;
    }
    return 0;
}
