/*
 * trdump.c - the timeline printer (trdump.h).
 *
 * One line per event: relative time, thread, actor (id, kind, label) and
 * the event's own figures spelled out by name, so an operator reads
 * `turn_end msgs=3 turn=12.3us` rather than two raw numbers.
 */
#include "trread/trdump.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trread/trsum.h"

int fy_trdump_parse_time(const char *s, uint64_t *ns)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0) || v > 1e9)
        return -EINVAL;
    double mul = 1e9;
    if (strcmp(end, "ms") == 0)
        mul = 1e6;
    else if (strcmp(end, "us") == 0)
        mul = 1e3;
    else if (strcmp(end, "ns") == 0)
        mul = 1;
    else if (*end && strcmp(end, "s") != 0)
        return -EINVAL;
    *ns = (uint64_t)llround(v * mul);
    return 0;
}

static const char *io_bits(uint64_t b, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s%s", b & 1 ? "read" : "", (b & 1) && (b & 6) ? "|" : "",
             b & 2 ? ((b & 4) ? "write|" : "write") : "", b & 4 ? "hup" : "");
    if (!buf[0])
        snprintf(buf, cap, "0x%" PRIx64, b);
    return buf;
}

static void who(FILE *o, const fy_trfile *f, uint32_t id)
{
    char k[16];
    const fy_trfile_actor *a = fy_trfile_actor_find(f, id);
    if (!id) {
        fprintf(o, "-");
        return;
    }
    fprintf(o, "a%" PRIu32, id);
    if (a) {
        fprintf(o, "(%s", fy_trfile_kind_name(a->kind, k, sizeof k));
        if (a->label[0]) {
            fputc(' ', o);
            for (const char *p = a->label; *p; p++)
                fputc(*p >= 32 && *p < 127 ? *p : '?', o);
        }
        fputc(')', o);
    }
}

static void figures(FILE *o, const fy_trfile *f, const fy_trace_rec *e)
{
    static const char *const dir[] = {"in", "out", "disk"};
    char a[32], k[16];
    switch (e->type) {
    case FY_TR_SEND:
        fprintf(o, " from=");
        who(o, f, (uint32_t)e->a);
        fprintf(o, " depth=%" PRIu64, e->b);
        break;
    case FY_TR_TURN_BEGIN:
        fprintf(o, " wait=%s", fy_trsum_fmt_ns(e->a, a, sizeof a));
        break;
    case FY_TR_TURN_END:
        fprintf(o, " msgs=%" PRIu64 " turn=%s", e->a, fy_trsum_fmt_ns(e->b, a, sizeof a));
        break;
    case FY_TR_IO:
        fprintf(o, " fd=%" PRIu64 " events=%s", e->a, io_bits(e->b, a, sizeof a));
        break;
    case FY_TR_BYTES:
        fprintf(o, " bytes=%" PRIu64 " dir=%s", e->a, e->b < 3 ? dir[e->b] : "?");
        break;
    case FY_TR_ACTOR_NEW:
        fprintf(o, " kind=%s", fy_trfile_kind_name((uint16_t)e->a, k, sizeof k));
        break;
    case FY_TR_LAG:
        fprintf(o, " behind_pkts=%" PRIu64 " behind_bytes=%" PRIu64, e->a, e->b);
        break;
    case FY_TR_SCHED:
    case FY_TR_IDLE:
    case FY_TR_ACTOR_STOP:
    case FY_TR_PARK:
    case FY_TR_UNPARK:
        break;
    default:
        fprintf(o, " a=%" PRIu64 " b=%" PRIu64, e->a, e->b);
        break;
    }
}

static int pass(const fy_trfile *f, const fy_trace_rec *e, uint64_t t0,
                const fy_trdump_filter *flt)
{
    uint64_t rel = e->ts_ns - t0;
    if (rel < flt->since || rel > flt->until)
        return 0;
    if (flt->actor && e->actor != flt->actor &&
        !(e->type == FY_TR_SEND && e->a == flt->actor))
        return 0;
    if (flt->kind >= 0) {
        const fy_trfile_actor *a = fy_trfile_actor_find(f, e->actor);
        if (!a || a->kind != flt->kind)
            return 0;
    }
    return 1;
}

/* A cluster event's line; only without an actor or kind filter (it
 * belongs to no actor). */
static long cluster_line(FILE *o, const fy_trfile_cluster *c, uint64_t t0,
                         const fy_trdump_filter *flt)
{
    char b[16];
    uint64_t rel = c->ts_ns - t0;
    if (flt->actor || flt->kind >= 0 || rel < flt->since || rel > flt->until)
        return 0;
    fprintf(o, "%4" PRIu64 ".%09" PRIu64 " --  %-10s %s epoch=%" PRIu64 " ", rel / 1000000000u,
            rel % 1000000000u, "cluster", fy_trfile_cluster_name(c->ev, b, sizeof b), c->epoch);
    for (const char *p = c->text; *p; p++)
        fputc(*p >= 32 && *p < 127 ? *p : '?', o);
    fputc('\n', o);
    return 1;
}

long fy_trdump_print(FILE *o, const char *name, const fy_trfile *f, const fy_trdump_filter *flt)
{
    size_t n, ncl, ci = 0;
    const fy_trace_rec *ev = fy_trfile_events(f, &n);
    const fy_trfile_cluster *cl = fy_trfile_clusters(f, &ncl);
    uint64_t t0 = n ? ev[0].ts_ns : 0;
    if (ncl && (!n || cl[0].ts_ns < t0))
        t0 = cl[0].ts_ns; /* the timeline starts with whichever came first */
    char when[64] = "unknown", t[16];
    uint64_t real = n || ncl ? fy_trfile_real_ns(f, t0) : 0;
    if (real) {
        time_t sec = (time_t)(real / 1000000000u);
        struct tm tm;
        gmtime_r(&sec, &tm);
        size_t k = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + k, sizeof when - k, ".%06uZ", (unsigned)(real % 1000000000u / 1000));
    }
    fprintf(o, "# trace %s: %zu events and %zu cluster events from %s, %" PRIu64 " lost; time "
            "is seconds after it\n", name, n, ncl, when, fy_trfile_lost(f));
    if (fy_trfile_warning(f)[0])
        fprintf(o, "# warning: %s\n", fy_trfile_warning(f));
    long lines = 0;
    for (size_t i = 0; i < n; i++) {
        const fy_trace_rec *e = &ev[i];
        for (; ci < ncl && cl[ci].ts_ns <= e->ts_ns; ci++)
            lines += cluster_line(o, &cl[ci], t0, flt);
        if (!pass(f, e, t0, flt))
            continue;
        uint64_t rel = e->ts_ns - t0;
        fprintf(o, "%4" PRIu64 ".%09" PRIu64 " t%-2u %-10s ", rel / 1000000000u,
                rel % 1000000000u, (unsigned)e->thread, fy_trfile_type_name(e->type, t, sizeof t));
        who(o, f, e->actor);
        figures(o, f, e);
        fputc('\n', o);
        lines++;
    }
    for (; ci < ncl; ci++)
        lines += cluster_line(o, &cl[ci], t0, flt);
    fflush(o);
    return ferror(o) ? -EIO : lines;
}
