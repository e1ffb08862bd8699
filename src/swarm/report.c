/*
 * report.c - the figures of a run and their four printed forms (report.h).
 *
 * figures() is the only place that decides what a figure is called and
 * how it is computed; the table, JSON, CSV and key=value printers just
 * walk its list.  MB/s are 10^6 bytes per second of file payload.
 */
#include "swarm/report.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "swarm/lhist.h"

enum { F_ALL = 0, F_RATE, F_STORM, F_SLOW, F_CHURN };

struct fig {
    const char *key;
    char val[96];
    bool text; /* quoted in JSON */
    int only;  /* F_ALL or the mode it belongs to */
};

#define MAX_FIGS 96

struct figs {
    struct fig f[MAX_FIGS];
    int n;
};

static const char *const modes[] = {"bulk", "rate", "storm", "churn", "slow"};

const char *fy_report_mode_name(int mode)
{
    return mode >= 0 && mode < 5 ? modes[mode] : "unknown";
}

int fy_report_mode_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(s, modes[i]) == 0)
            return i;
    return -EINVAL;
}

__attribute__((format(printf, 5, 6))) static void add(struct figs *fs, int only, bool text,
                                                      const char *key, const char *fmt, ...)
{
    if (fs->n == MAX_FIGS)
        return;
    struct fig *f = &fs->f[fs->n++];
    f->key = key;
    f->text = text;
    f->only = only;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->val, sizeof f->val, fmt, ap);
    va_end(ap);
}

static double rate_of(uint64_t bytes, double s)
{
    return s > 0 ? (double)bytes / s / 1e6 : 0.0;
}

/* Mean of each receiver's own rate (bytes / its own completion time). */
static double per_receiver(const fy_swarm_result *r, int which /* 0 all, 1 fast, 2 slow */)
{
    double sum = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->nrx; i++) {
        const fy_swarm_rx *x = &r->rx[i];
        if ((which == 1 && x->slow) || (which == 2 && !x->slow))
            continue;
        sum += rate_of(x->bytes, x->seconds);
        n++;
    }
    return n ? sum / n : 0.0;
}

static double us(uint64_t ns)
{
    return (double)ns / 1e3;
}

static void latency(struct figs *fs, const fy_swarm_result *r)
{
    const fy_lhist *h = r->lat;
    add(fs, F_RATE, false, "p50_us", "%.1f", us(fy_lhist_percentile(h, 50)));
    add(fs, F_RATE, false, "p90_us", "%.1f", us(fy_lhist_percentile(h, 90)));
    add(fs, F_RATE, false, "p99_us", "%.1f", us(fy_lhist_percentile(h, 99)));
    add(fs, F_RATE, false, "p999_us", "%.1f", us(fy_lhist_percentile(h, 99.9)));
    add(fs, F_RATE, false, "max_us", "%.1f", us(fy_lhist_max(h)));
    add(fs, F_RATE, false, "mean_us", "%.1f", fy_lhist_mean(h) / 1e3);
    add(fs, F_RATE, false, "latency_samples", "%llu", (unsigned long long)fy_lhist_count(h));
}

static void storm(struct figs *fs, const fy_swarm_cfg *c, const fy_swarm_result *r)
{
    const fy_lhist *h = r->storm_lat;
    add(fs, F_STORM, false, "storm", "%llu", (unsigned long long)r->storm);
    add(fs, F_STORM, false, "served", "%llu", (unsigned long long)r->served);
    add(fs, F_STORM, false, "refused", "%llu", (unsigned long long)r->refused);
    add(fs, F_STORM, false, "connect_failed", "%llu", (unsigned long long)r->connect_failed);
    add(fs, F_STORM, false, "unanswered", "%llu", (unsigned long long)r->unanswered);
    add(fs, F_STORM, false, "storm_window_s", "%.1f", c->storm_window);
    add(fs, F_STORM, false, "served_p50_ms", "%.3f", (double)fy_lhist_percentile(h, 50) / 1e6);
    add(fs, F_STORM, false, "served_p99_ms", "%.3f", (double)fy_lhist_percentile(h, 99) / 1e6);
    add(fs, F_STORM, false, "served_max_ms", "%.3f", (double)fy_lhist_max(h) / 1e6);
}

static void integrity(struct figs *fs, const fy_swarm_result *r)
{
    const fy_rxchk_counts *k = &r->chk;
    add(fs, F_ALL, false, "integrity_failures", "%llu", (unsigned long long)r->integrity_failures);
    add(fs, F_ALL, false, "missing", "%llu", (unsigned long long)k->missing);
    add(fs, F_ALL, false, "duplicate", "%llu", (unsigned long long)k->duplicate);
    add(fs, F_ALL, false, "out_of_order", "%llu", (unsigned long long)k->out_of_order);
    add(fs, F_ALL, false, "corrupt", "%llu", (unsigned long long)k->corrupt);
    add(fs, F_ALL, false, "digest_mismatch", "%llu", (unsigned long long)k->digest_mismatch);
    add(fs, F_ALL, false, "size_mismatch", "%llu", (unsigned long long)k->size_mismatch);
    add(fs, F_ALL, false, "partial_files", "%llu", (unsigned long long)k->partial_files);
    add(fs, F_ALL, false, "proto_errors", "%llu", (unsigned long long)k->proto_errors);
    add(fs, F_ALL, false, "files_ok", "%llu", (unsigned long long)k->files_ok);
    add(fs, F_ALL, false, "incomplete", "%llu", (unsigned long long)r->incomplete);
    add(fs, F_ALL, false, "errors", "%llu", (unsigned long long)r->errors);
    add(fs, F_ALL, false, "timeout", "%d", r->timed_out ? 1 : 0);
}

static void figures(struct figs *fs, const fy_swarm_cfg *c, const fy_swarm_result *r)
{
    fs->n = 0;
    add(fs, F_ALL, true, "mode", "%s", fy_report_mode_name(c->mode));
    add(fs, F_ALL, true, "target", "%s", c->p2p ? "p2p" : c->target_text);
    add(fs, F_ALL, false, "senders", "%u", c->senders);
    add(fs, F_ALL, false, "channels", "%u", c->channels);
    add(fs, F_ALL, false, "receivers", "%u", c->receivers);
    add(fs, F_ALL, false, "files", "%u", c->files);
    add(fs, F_ALL, false, "size", "%llu", (unsigned long long)c->size);
    add(fs, F_ALL, false, "packet", "%u", c->packet);
    add(fs, F_ALL, false, "threads", "%u", r->threads);
    add(fs, F_ALL, true, "verify", "%s", c->verify == FY_VERIFY_SHA ? "sha" : "content");
    add(fs, F_ALL, false, "bytes", "%llu", (unsigned long long)r->bytes_delivered);
    add(fs, F_ALL, false, "seconds", "%.6f", r->seconds);
    add(fs, F_ALL, false, "mbps_aggregate", "%.1f", rate_of(r->bytes_delivered, r->seconds));
    add(fs, F_ALL, false, "mbps_per_receiver", "%.1f", per_receiver(r, 0));
    add(fs, F_ALL, false, "msgs_per_s", "%.0f",
        r->seconds > 0 ? (double)r->frames_delivered / r->seconds : 0.0);
    add(fs, F_ALL, false, "bytes_sent", "%llu", (unsigned long long)r->bytes_sent);
    add(fs, F_ALL, false, "setup_seconds", "%.3f", r->setup_seconds);
    integrity(fs, r);
    add(fs, F_RATE, false, "rate", "%.0f", c->rate);
    add(fs, F_RATE, false, "duration", "%.3f", c->duration);
    latency(fs, r);
    storm(fs, c, r);
    add(fs, F_SLOW, false, "slow", "%u", c->slow);
    add(fs, F_SLOW, false, "slow_rate", "%llu", (unsigned long long)c->slow_rate);
    add(fs, F_SLOW, false, "fast_seconds", "%.6f", r->fast_seconds);
    add(fs, F_SLOW, false, "slow_seconds", "%.6f", r->slow_seconds);
    add(fs, F_SLOW, false, "fast_mbps_per_receiver", "%.1f", per_receiver(r, 1));
    add(fs, F_CHURN, false, "churners", "%u", c->churners);
    add(fs, F_CHURN, false, "churn_times", "%u", c->churn_times);
    add(fs, F_CHURN, false, "reconnects", "%u", r->reconnects);
    /* The flags' names (--server, --chunk), after every older key so a CSV
     * appended to a file with the old header only grows at its end. */
    add(fs, F_ALL, true, "server", "%s", c->p2p ? "p2p" : c->target_text);
    add(fs, F_ALL, false, "chunk", "%u", c->packet);
}

/* Does figure f apply to this run? */
static bool applies(const struct fig *f, const fy_swarm_cfg *c)
{
    switch (f->only) {
    case F_RATE:
        return c->mode == FY_SWARM_RATE;
    case F_STORM:
        return c->mode == FY_SWARM_STORM;
    case F_SLOW:
        return c->slow > 0;
    case F_CHURN:
        return c->mode == FY_SWARM_CHURN;
    default:
        return true;
    }
}

void fy_report_kv(FILE *f, const fy_swarm_cfg *cfg, const fy_swarm_result *res)
{
    struct figs fs;
    figures(&fs, cfg, res);
    const char *sep = "";
    for (int i = 0; i < fs.n; i++) {
        if (!applies(&fs.f[i], cfg))
            continue;
        fprintf(f, "%s%s=%s", sep, fs.f[i].key, fs.f[i].val);
        sep = " ";
    }
    fputc('\n', f);
}

void fy_report_csv(FILE *f, const fy_swarm_cfg *cfg, const fy_swarm_result *res, bool header)
{
    struct figs fs;
    figures(&fs, cfg, res);
    for (int i = 0; header && i < fs.n; i++)
        fprintf(f, "%s%s", i ? "," : "", fs.f[i].key);
    if (header)
        fputc('\n', f);
    for (int i = 0; i < fs.n; i++)
        fprintf(f, "%s%s", i ? "," : "", applies(&fs.f[i], cfg) ? fs.f[i].val : "");
    fputc('\n', f);
}

int fy_report_json(FILE *f, const fy_swarm_cfg *cfg, const fy_swarm_result *res)
{
    struct figs fs;
    figures(&fs, cfg, res);
    fputs("{\n", f);
    for (int i = 0; i < fs.n; i++) {
        if (!applies(&fs.f[i], cfg))
            continue;
        const char *q = fs.f[i].text ? "\"" : "";
        fprintf(f, "  \"%s\": %s%s%s,\n", fs.f[i].key, q, fs.f[i].val, q);
    }
    fputs("  \"receivers_detail\": [", f);
    for (uint32_t i = 0; i < res->nrx; i++) {
        const fy_swarm_rx *x = &res->rx[i];
        fprintf(f,
                "%s\n    {\"channel\": %u, \"index\": %u, \"slow\": %s, \"churner\": %s, "
                "\"complete\": %s, \"seconds\": %.6f, \"bytes\": %llu, \"frames\": %llu, "
                "\"mbps\": %.1f, \"failures\": %llu, \"reconnects\": %u, \"error\": %d}",
                i ? "," : "", x->channel, x->index, x->slow ? "true" : "false",
                x->churner ? "true" : "false", x->complete ? "true" : "false", x->seconds,
                (unsigned long long)x->bytes, (unsigned long long)x->frames,
                rate_of(x->bytes, x->seconds), (unsigned long long)x->failures, x->reconnects,
                x->error);
    }
    fputs("\n  ]\n}\n", f);
    return ferror(f) ? -EIO : 0;
}

static const char *find(const struct figs *fs, const char *key)
{
    for (int i = 0; i < fs->n; i++)
        if (strcmp(fs->f[i].key, key) == 0)
            return fs->f[i].val;
    return "";
}

void fy_report_table(FILE *f, const fy_swarm_cfg *c, const fy_swarm_result *r)
{
    struct figs fs;
    figures(&fs, c, r);
    fprintf(f, "ferry-swarm  mode=%s  server=%s  target=%s  threads=%u  verify=%s\n",
            find(&fs, "mode"), find(&fs, "server"), find(&fs, "target"), r->threads,
            find(&fs, "verify"));
    fprintf(f, "  %-28s %s senders on %s channels, %s receivers per channel\n", "shape",
            find(&fs, "senders"), find(&fs, "channels"), find(&fs, "receivers"));
    if (c->mode != FY_SWARM_STORM) {
        fprintf(f, "  %-28s %s files x %s bytes, %s-byte chunks\n", "per sender",
                find(&fs, "files"), find(&fs, "size"), find(&fs, "chunk"));
        fprintf(f, "  %-28s %s bytes in %s s\n", "delivered", find(&fs, "bytes"),
                find(&fs, "seconds"));
        fprintf(f, "  %-28s %s MB/s aggregate, %s MB/s per receiver (MB = 10^6 bytes)\n", "throughput",
                find(&fs, "mbps_aggregate"), find(&fs, "mbps_per_receiver"));
        fprintf(f, "  %-28s %s data frames/s delivered\n", "messages", find(&fs, "msgs_per_s"));
    }
    for (int i = 0; i < fs.n; i++) {
        const struct fig *g = &fs.f[i];
        if (g->only != F_ALL && applies(g, c))
            fprintf(f, "  %-28s %s\n", g->key, g->val);
    }
    fprintf(f, "  %-28s %s (missing %s, duplicate %s, out of order %s, corrupt %s, "
               "digest %s, size %s, partial %s, protocol %s, incomplete receivers %s)\n",
            "integrity failures", find(&fs, "integrity_failures"), find(&fs, "missing"),
            find(&fs, "duplicate"), find(&fs, "out_of_order"), find(&fs, "corrupt"),
            find(&fs, "digest_mismatch"), find(&fs, "size_mismatch"), find(&fs, "partial_files"),
            find(&fs, "proto_errors"), find(&fs, "incomplete"));
    fprintf(f, "  %-28s %s errors, timeout=%s\n", "connections", find(&fs, "errors"),
            find(&fs, "timeout"));
}
