/*
 * trsum.c - the figures behind `ferry-trace summary` (trsum.h).
 *
 * Two passes over the timeline: the first finds the actors and counts
 * their samples, the second fills one flat sample array per figure (turn
 * time, mailbox wait), each actor owning a slice, so the percentiles need
 * one sort per slice and no per-event allocation.  Percentiles are
 * nearest-rank over the samples in the trace.
 */
#include "trread/trsum.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slices {
    uint64_t *v;   /* all samples, actor after actor */
    size_t *off;   /* nact + 1 offsets */
    size_t *fill;  /* per actor, during the fill */
} slices;

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static uint64_t rank(const uint64_t *v, size_t n, unsigned pct)
{
    if (!n)
        return 0;
    size_t k = (n * pct + 99) / 100; /* ceil(n * p), 1-based */
    return v[k ? k - 1 : 0];
}

/* Sort v[0..n) and describe it. */
static void dist(uint64_t *v, size_t n, fy_trsum_dist *d)
{
    memset(d, 0, sizeof *d);
    if (!n)
        return;
    qsort(v, n, sizeof *v, cmp_u64);
    d->n = n;
    for (size_t i = 0; i < n; i++)
        d->sum += v[i];
    d->p50 = rank(v, n, 50);
    d->p99 = rank(v, n, 99);
    d->max = v[n - 1];
}

static bool is_actor_event(uint16_t t)
{
    return t != FY_TR_PARK && t != FY_TR_UNPARK && t < FY_TR_USER;
}

static long find(const uint32_t *ids, size_t n, uint32_t id)
{
    const uint32_t *p = bsearch(&id, ids, n, sizeof id, cmp_u32);
    return p ? (long)(p - ids) : -1;
}

static int slices_init(slices *s, size_t nact)
{
    s->off = calloc(nact + 1, sizeof *s->off);
    s->fill = calloc(nact + 1, sizeof *s->fill);
    s->v = NULL;
    return s->off && s->fill ? 0 : -ENOMEM;
}

/* Counts in off[i + 1] -> offsets, and room for the samples. */
static int slices_alloc(slices *s, size_t nact)
{
    for (size_t i = 0; i < nact; i++)
        s->off[i + 1] += s->off[i];
    s->v = malloc((s->off[nact] ? s->off[nact] : 1) * sizeof *s->v);
    return s->v ? 0 : -ENOMEM;
}

static void slices_put(slices *s, long i, uint64_t v)
{
    s->v[s->off[i] + s->fill[i]++] = v;
}

static void slices_free(slices *s)
{
    free(s->v);
    free(s->off);
    free(s->fill);
}

/* Per kind: gather the slices of its actors and describe them together. */
static int kinds(fy_trsum *r, slices *turn, slices *wait)
{
    uint32_t seen[65536 / 32] = {0};
    size_t nk = 0;
    for (size_t i = 0; i < r->nact; i++) {
        uint16_t k = r->act[i].kind;
        if (!(seen[k / 32] & (1u << (k % 32)))) {
            seen[k / 32] |= 1u << (k % 32);
            nk++;
        }
    }
    r->kind = calloc(nk ? nk : 1, sizeof *r->kind);
    uint64_t *tmp = malloc(((turn->off[r->nact] > wait->off[r->nact] ? turn->off[r->nact]
                                                                       : wait->off[r->nact]) +
                            1) *
                           sizeof *tmp);
    if (!r->kind || !tmp) {
        free(tmp);
        return -ENOMEM;
    }
    for (unsigned k = 0; k < 65536; k++) {
        if (!(seen[k / 32] & (1u << (k % 32))))
            continue;
        fy_trsum_kind *K = &r->kind[r->nkind++];
        K->kind = (uint16_t)k;
        size_t nt = 0, nw = 0;
        for (size_t i = 0; i < r->nact; i++) {
            const fy_trsum_actor *a = &r->act[i];
            if (a->kind != k)
                continue;
            K->actors++;
            K->msgs += a->msgs;
            if (a->peak_depth > K->peak_depth)
                K->peak_depth = a->peak_depth;
            for (int d = 0; d < 3; d++)
                K->bytes[d] += a->bytes[d];
            memcpy(tmp + nt, turn->v + turn->off[i], (turn->off[i + 1] - turn->off[i]) * 8);
            nt += turn->off[i + 1] - turn->off[i];
        }
        dist(tmp, nt, &K->turn);
        for (size_t i = 0; i < r->nact; i++) {
            if (r->act[i].kind != k)
                continue;
            memcpy(tmp + nw, wait->v + wait->off[i], (wait->off[i + 1] - wait->off[i]) * 8);
            nw += wait->off[i + 1] - wait->off[i];
        }
        dist(tmp, nw, &K->wait);
    }
    free(tmp);
    return 0;
}

/* The distinct actor ids among the actor events, sorted, into ids (room
 * for n); returns how many. */
static size_t actor_ids(const fy_trace_rec *ev, size_t n, uint32_t *ids)
{
    size_t nid = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].actor && is_actor_event(ev[i].type))
            ids[nid++] = ev[i].actor;
    qsort(ids, nid, sizeof *ids, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < nid; i++)
        if (u == 0 || ids[i] != ids[u - 1])
            ids[u++] = ids[i];
    return u;
}

/* One actor entry per id, with the kind and label the file names. */
static int actors_init(fy_trsum *r, const fy_trfile *f, const uint32_t *ids, size_t nid)
{
    r->act = calloc(nid ? nid : 1, sizeof *r->act);
    if (!r->act)
        return -ENOMEM;
    r->nact = nid;
    for (size_t i = 0; i < nid; i++) {
        const fy_trfile_actor *ta = fy_trfile_actor_find(f, ids[i]);
        r->act[i].id = ids[i];
        r->act[i].kind = ta ? ta->kind : 0;
        r->act[i].label = ta ? ta->label : "";
    }
    return 0;
}

/* Pass 1 for one event of actor x: its plain figures, and a count in its
 * turn or wait slice for each sample pass 2 will put there. */
static void count(fy_trsum_actor *a, long x, const fy_trace_rec *e, slices *turn, slices *wait)
{
    switch (e->type) {
    case FY_TR_SEND:
        a->sends++;
        if (e->b > a->peak_depth)
            a->peak_depth = e->b;
        break;
    case FY_TR_TURN_BEGIN:
        if (e->a) /* 0: the first message came from off the scheduler, wait unknown */
            wait->off[x + 1]++;
        break;
    case FY_TR_TURN_END:
        a->msgs += e->a;
        turn->off[x + 1]++;
        break;
    case FY_TR_IO:
        a->io++;
        break;
    case FY_TR_BYTES:
        if (e->b < 3)
            a->bytes[e->b] += e->a;
        break;
    case FY_TR_LAG:
        a->has_lag = true;
        a->lag_last_pkts = e->a;
        a->lag_last_bytes = e->b;
        if (e->b > a->lag_peak_bytes)
            a->lag_peak_bytes = e->b;
        if (e->a > a->lag_peak_pkts)
            a->lag_peak_pkts = e->a;
        break;
    case FY_TR_ACTOR_NEW:
        if (!a->kind)
            a->kind = (uint16_t)e->a;
        break;
    default:
        break;
    }
}

static void count_all(fy_trsum *r, const fy_trace_rec *ev, size_t n, const uint32_t *ids,
                      slices *turn, slices *wait)
{
    for (size_t i = 0; i < n; i++) {
        const fy_trace_rec *e = &ev[i];
        if (!e->actor || !is_actor_event(e->type))
            continue;
        long x = find(ids, r->nact, e->actor);
        count(&r->act[x], x, e, turn, wait);
    }
}

/* Pass 2: the turn and wait samples into their actors' slices. */
static void sample_all(const fy_trace_rec *ev, size_t n, const uint32_t *ids, size_t nid,
                       slices *turn, slices *wait)
{
    for (size_t i = 0; i < n; i++) {
        const fy_trace_rec *e = &ev[i];
        if (!e->actor || (e->type != FY_TR_TURN_BEGIN && e->type != FY_TR_TURN_END))
            continue;
        long x = find(ids, nid, e->actor);
        if (e->type == FY_TR_TURN_END)
            slices_put(turn, x, e->b);
        else if (e->a)
            slices_put(wait, x, e->a);
    }
}

/* ids: room for n.  0 or -ENOMEM. */
static int compute(fy_trsum *r, const fy_trfile *f, const fy_trace_rec *ev, size_t n,
                   uint32_t *ids, slices *turn, slices *wait)
{
    size_t nid = actor_ids(ev, n, ids);
    if (actors_init(r, f, ids, nid) < 0 || slices_init(turn, nid) < 0 ||
        slices_init(wait, nid) < 0)
        return -ENOMEM;
    count_all(r, ev, n, ids, turn, wait);
    if (slices_alloc(turn, nid) < 0 || slices_alloc(wait, nid) < 0)
        return -ENOMEM;
    sample_all(ev, n, ids, nid, turn, wait);
    for (size_t i = 0; i < nid; i++) {
        dist(turn->v + turn->off[i], turn->off[i + 1] - turn->off[i], &r->act[i].turn);
        dist(wait->v + wait->off[i], wait->off[i + 1] - wait->off[i], &r->act[i].wait);
    }
    return kinds(r, turn, wait);
}

int fy_trsum_compute(const fy_trfile *f, fy_trsum **out)
{
    size_t n;
    const fy_trace_rec *ev = fy_trfile_events(f, &n);
    fy_trsum *r = calloc(1, sizeof *r);
    uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    slices turn = {0}, wait = {0};
    int rc = -ENOMEM;

    if (r && ids) {
        r->events = n;
        r->lost = fy_trfile_lost(f);
        if (n) {
            r->t0 = ev[0].ts_ns;
            r->t1 = ev[n - 1].ts_ns;
        }
        rc = compute(r, f, ev, n, ids, &turn, &wait);
    }
    free(ids);
    slices_free(&turn);
    slices_free(&wait);
    if (rc < 0) {
        fy_trsum_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void fy_trsum_free(fy_trsum *s)
{
    if (!s)
        return;
    free(s->act);
    free(s->kind);
    free(s);
}

static int cmp_act_id(const void *x, const void *y)
{
    const fy_trsum_actor *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

const fy_trsum_actor *fy_trsum_actor_find(const fy_trsum *s, uint32_t id)
{
    fy_trsum_actor key = {.id = id};
    return s->nact ? bsearch(&key, s->act, s->nact, sizeof key, cmp_act_id) : NULL;
}

/* ---- printing ------------------------------------------------------------ */

const char *fy_trsum_fmt_ns(uint64_t ns, char *buf, size_t cap)
{
    if (ns < 1000)
        snprintf(buf, cap, "%" PRIu64 "ns", ns);
    else if (ns < 1000000)
        snprintf(buf, cap, "%.1fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, cap, "%.2fms", (double)ns / 1e6);
    else
        snprintf(buf, cap, "%.2fs", (double)ns / 1e9);
    return buf;
}

const char *fy_trsum_fmt_bytes(uint64_t b, char *buf, size_t cap)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
    if (b < 1024) {
        snprintf(buf, cap, "%" PRIu64 "B", b);
        return buf;
    }
    double v = (double)b / 1024;
    int u = 0;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.1f%s", v, unit[u]);
    return buf;
}

/* "12.3us/45.6us/1.02ms" */
static const char *tri(const fy_trsum_dist *d, char *buf, size_t cap)
{
    char a[16], b[16], c[16];
    if (!d->n)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%s/%s/%s", fy_trsum_fmt_ns(d->p50, a, sizeof a),
                 fy_trsum_fmt_ns(d->p99, b, sizeof b), fy_trsum_fmt_ns(d->max, c, sizeof c));
    return buf;
}

/* Labels are raw bytes from the file: printable ASCII only, cut to w. */
static const char *clean(const char *s, char *buf, size_t cap)
{
    size_t k = 0;
    for (; *s && k + 1 < cap; s++)
        buf[k++] = (*s >= 32 && *s < 127) ? *s : '?';
    if (k == 0 && cap > 1)
        buf[k++] = '-';
    buf[k] = 0;
    return buf;
}

static int by_busy(const void *x, const void *y)
{
    const fy_trsum_actor *a = *(fy_trsum_actor *const *)x, *b = *(fy_trsum_actor *const *)y;
    if (a->turn.sum != b->turn.sum)
        return a->turn.sum > b->turn.sum ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int by_lag(const void *x, const void *y)
{
    const fy_trsum_actor *a = *(fy_trsum_actor *const *)x, *b = *(fy_trsum_actor *const *)y;
    /* The receiver still behind when the trace was taken is the one an
     * operator is looking for; a fast one may have had a bigger burst. */
    if (a->lag_last_bytes != b->lag_last_bytes)
        return a->lag_last_bytes > b->lag_last_bytes ? -1 : 1;
    if (a->lag_peak_bytes != b->lag_peak_bytes)
        return a->lag_peak_bytes > b->lag_peak_bytes ? -1 : 1;
    if (a->lag_peak_pkts != b->lag_peak_pkts)
        return a->lag_peak_pkts > b->lag_peak_pkts ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static void actor_row(FILE *o, const fy_trsum_actor *a)
{
    char k[16], l[40], t[64], w[64], b0[16], b1[16], b2[16], bz[16];
    fprintf(o, "  %6" PRIu32 " %-9s %-24s %8" PRIu64 " %9s %-26s %-26s %6" PRIu64 " %9s %9s %9s\n",
            a->id, fy_trfile_kind_name(a->kind, k, sizeof k), clean(a->label, l, 25), a->msgs,
            fy_trsum_fmt_ns(a->turn.sum, bz, sizeof bz), tri(&a->turn, t, sizeof t),
            tri(&a->wait, w, sizeof w), a->peak_depth, fy_trsum_fmt_bytes(a->bytes[0], b0, 16),
            fy_trsum_fmt_bytes(a->bytes[1], b1, 16), fy_trsum_fmt_bytes(a->bytes[2], b2, 16));
}

static void actor_head(FILE *o)
{
    fprintf(o, "  %6s %-9s %-24s %8s %9s %-26s %-26s %6s %9s %9s %9s\n", "actor", "kind", "label",
            "msgs", "busy", "turn p50/p99/max", "wait p50/p99/max", "depth", "in", "out", "disk");
}

static void print_head(FILE *o, const char *name, const fy_trfile *f, const fy_trsum *s)
{
    const fy_trace_file_hdr *h = fy_trfile_hdr(f);
    char when[64] = "unknown time", span[16];
    uint64_t real = fy_trfile_real_ns(f, h->mono_ns ? h->mono_ns : s->t1);
    if (real) {
        time_t sec = (time_t)(real / 1000000000u);
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    fprintf(o, "trace %s: written %s by pid %" PRIu32 ", %u threads, %s\n", name, when, h->pid,
            fy_trfile_threads(f) ? fy_trfile_threads(f) : h->threads,
            h->flags & 1 ? "streamed" : "flight-recorder dump");
    fprintf(o, "span %s, %" PRIu64 " events, %" PRIu64 " lost to ring wrap-around%s\n",
            fy_trsum_fmt_ns(s->t1 - s->t0, span, sizeof span), s->events, s->lost,
            s->lost ? " (figures cover the events kept)" : "");
    if (fy_trfile_warning(f)[0])
        fprintf(o, "warning: %s\n", fy_trfile_warning(f));
}

/* The cluster events (FY_TR_META_CLUSTER), counted by kind, then the
 * newest `top` of them (0: all) with their wall-clock time. */
static void print_cluster(FILE *o, const fy_trfile *f, unsigned top)
{
    size_t n;
    const fy_trfile_cluster *c = fy_trfile_clusters(f, &n);
    uint64_t by[FY_TR_CL_NOTE + 2] = {0};
    char b[16];

    for (size_t i = 0; i < n; i++)
        by[c[i].ev <= FY_TR_CL_NOTE ? c[i].ev : FY_TR_CL_NOTE + 1]++;
    fprintf(o, "\ncluster events: %zu (leader=%" PRIu64 " isr=%" PRIu64 " failover=%" PRIu64
            " note=%" PRIu64 " other=%" PRIu64 ")\n", n, by[FY_TR_CL_LEADER], by[FY_TR_CL_ISR],
            by[FY_TR_CL_FAILOVER], by[FY_TR_CL_NOTE], by[0] + by[FY_TR_CL_NOTE + 1]);
    size_t from = top && n > top ? n - top : 0;
    if (from)
        fprintf(o, "  ... %zu older (--top 0 shows all)\n", from);
    for (size_t i = from; i < n; i++) {
        char when[32] = "?";
        uint64_t real = fy_trfile_real_ns(f, c[i].ts_ns);
        if (real) {
            time_t sec = (time_t)(real / 1000000000u);
            struct tm tm;
            gmtime_r(&sec, &tm);
            size_t k = strftime(when, sizeof when, "%H:%M:%S", &tm);
            snprintf(when + k, sizeof when - k, ".%03u", (unsigned)(real % 1000000000u / 1000000));
        }
        fprintf(o, "  %s %-8s epoch=%" PRIu64 " %s\n", when,
                fy_trfile_cluster_name(c[i].ev, b, sizeof b), c[i].epoch, c[i].text);
    }
}

int fy_trsum_print(FILE *o, const char *name, const fy_trfile *f, const fy_trsum *s,
                   unsigned top)
{
    const fy_trsum_actor **v = malloc((s->nact ? s->nact : 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    print_head(o, name, f, s);
    print_cluster(o, f, top);

    size_t nl = 0;
    for (size_t i = 0; i < s->nact; i++)
        if (s->act[i].has_lag)
            v[nl++] = &s->act[i];
    qsort(v, nl, sizeof *v, by_lag);
    fprintf(o, "\nmost lagging receivers (forwarders, by lag at the end of the trace, then peak lag)\n");
    if (!nl)
        fprintf(o, "  (no lag events in this trace)\n");
    else
        fprintf(o, "  %6s %-32s %10s %10s %10s %10s %8s %9s\n", "actor", "label", "peak_pkts",
                "peak_bytes", "last_pkts", "last_bytes", "msgs", "out");
    for (size_t i = 0; i < nl && (!top || i < top); i++) {
        char l[40], pb[16], lb[16], ob[16];
        fprintf(o, "  %6" PRIu32 " %-32s %10" PRIu64 " %10s %10" PRIu64 " %10s %8" PRIu64 " %9s\n",
                v[i]->id, clean(v[i]->label, l, 33), v[i]->lag_peak_pkts,
                fy_trsum_fmt_bytes(v[i]->lag_peak_bytes, pb, 16), v[i]->lag_last_pkts,
                fy_trsum_fmt_bytes(v[i]->lag_last_bytes, lb, 16), v[i]->msgs,
                fy_trsum_fmt_bytes(v[i]->bytes[1], ob, 16));
    }

    for (size_t i = 0; i < s->nact; i++)
        v[i] = &s->act[i];
    qsort(v, s->nact, sizeof *v, by_busy);
    unsigned slow = top && top < 10 ? top : 10;
    fprintf(o, "\nslowest actors (by time spent handling; busy = sum of turns)\n");
    actor_head(o);
    for (size_t i = 0; i < s->nact && i < slow; i++)
        actor_row(o, v[i]);

    fprintf(o, "\nper kind\n");
    fprintf(o, "  %-9s %6s %8s %9s %-26s %-26s %6s %9s %9s %9s\n", "kind", "actors", "msgs",
            "busy", "turn p50/p99/max", "wait p50/p99/max", "depth", "in", "out", "disk");
    for (size_t i = 0; i < s->nkind; i++) {
        const fy_trsum_kind *K = &s->kind[i];
        char k[16], t[64], w[64], b0[16], b1[16], b2[16], bz[16];
        fprintf(o, "  %-9s %6u %8" PRIu64 " %9s %-26s %-26s %6" PRIu64 " %9s %9s %9s\n",
                fy_trfile_kind_name(K->kind, k, sizeof k), K->actors, K->msgs,
                fy_trsum_fmt_ns(K->turn.sum, bz, sizeof bz), tri(&K->turn, t, sizeof t),
                tri(&K->wait, w, sizeof w), K->peak_depth, fy_trsum_fmt_bytes(K->bytes[0], b0, 16),
                fy_trsum_fmt_bytes(K->bytes[1], b1, 16), fy_trsum_fmt_bytes(K->bytes[2], b2, 16));
    }

    fprintf(o, "\nper actor (%zu actors)\n", s->nact);
    actor_head(o);
    for (size_t i = 0; i < s->nact && (!top || i < top); i++)
        actor_row(o, v[i]);
    if (top && s->nact > top)
        fprintf(o, "  ... %zu more (--top 0 shows all)\n", s->nact - top);
    free(v);
    fflush(o);
    return ferror(o) ? -EIO : 0;
}
