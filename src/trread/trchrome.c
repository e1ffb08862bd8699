/*
 * trchrome.c - Chrome Trace Event JSON from a trace (trchrome.h).
 *
 * One pass over the timeline with a little per-actor state: the wait of
 * the turn in progress (turn_begin comes before turn_end) and the sends
 * not yet matched to a turn of their receiver.  A send is drawn as a flow
 * from the sender's slice to the first turn of the receiver that begins
 * after it; the runtime does not number messages, so when several sends
 * wait, they all point at the same next turn, which is the turn that
 * handled the first of them.  Labels are file bytes, so every string is
 * escaped to plain ASCII JSON.
 */
#include "trread/trchrome.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct act_state {
    uint32_t id;
    uint16_t kind;
    uint64_t wait;     /* of the turn in progress */
    size_t pend_head;  /* pending sends to this actor (index + 1, 0 = none) */
} act_state;

typedef struct pend {
    uint64_t ts;
    uint32_t from;
    size_t next; /* index + 1 */
} pend;

typedef struct chrome {
    FILE *o;
    const fy_trfile *f;
    uint64_t t0;
    act_state *act;
    size_t nact;
    pend *pd;
    size_t npd, cappd;
    size_t free_head; /* recycled pend slots (index + 1) */
    uint64_t flow_id;
    bool first;
} chrome;

static void jstr(FILE *o, const char *s)
{
    fputc('"', o);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(o, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(o, "\\u%04x", *p);
        else
            fputc(*p, o);
    }
    fputc('"', o);
}

static void sep(chrome *c)
{
    fputs(c->first ? "\n" : ",\n", c->o);
    c->first = false;
}

static void us(chrome *c, uint64_t ts)
{
    uint64_t rel = ts > c->t0 ? ts - c->t0 : 0;
    fprintf(c->o, "%" PRIu64 ".%03" PRIu64, rel / 1000, rel % 1000);
}

static int cmp_id(const void *x, const void *y)
{
    const act_state *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

static act_state *find(chrome *c, uint32_t id)
{
    act_state key = {.id = id};
    return c->nact ? bsearch(&key, c->act, c->nact, sizeof key, cmp_id) : NULL;
}

static int collect(chrome *c, const fy_trace_rec *ev, size_t n)
{
    c->act = malloc((n ? n : 1) * sizeof *c->act);
    if (!c->act)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].actor && ev[i].type != FY_TR_PARK && ev[i].type != FY_TR_UNPARK)
            c->act[k++] = (act_state){.id = ev[i].actor};
    qsort(c->act, k, sizeof *c->act, cmp_id);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || c->act[i].id != c->act[u - 1].id)
            c->act[u++] = c->act[i];
    c->nact = u;
    for (size_t i = 0; i < u; i++) {
        const fy_trfile_actor *a = fy_trfile_actor_find(c->f, c->act[i].id);
        c->act[i].kind = a ? a->kind : 0;
    }
    for (size_t i = 0; i < n; i++) /* a kind known only from actor_new */
        if (ev[i].type == FY_TR_ACTOR_NEW) {
            act_state *a = find(c, ev[i].actor);
            if (a && !a->kind)
                a->kind = (uint16_t)ev[i].a;
        }
    return 0;
}

static void metadata(chrome *c)
{
    char k[16], name[128];
    uint8_t seen[65536 / 8] = {0};
    for (size_t i = 0; i < c->nact; i++) {
        uint16_t kd = c->act[i].kind;
        if (!(seen[kd / 8] & (1u << (kd % 8)))) {
            seen[kd / 8] |= (uint8_t)(1u << (kd % 8));
            sep(c);
            fprintf(c->o, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%u,\"args\":{\"name\":",
                    (unsigned)kd);
            jstr(c->o, fy_trfile_kind_name(kd, k, sizeof k));
            fputs("}}", c->o);
        }
        const fy_trfile_actor *a = fy_trfile_actor_find(c->f, c->act[i].id);
        snprintf(name, sizeof name, "%s %" PRIu32 "%s%s", fy_trfile_kind_name(kd, k, sizeof k),
                 c->act[i].id, a && a->label[0] ? " " : "", a ? a->label : "");
        sep(c);
        fprintf(c->o, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%u,\"tid\":%" PRIu32
                      ",\"args\":{\"name\":",
                (unsigned)kd, c->act[i].id);
        jstr(c->o, name);
        fputs("}}", c->o);
    }
    sep(c);
    fprintf(c->o, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"args\":{\"name\":"
                  "\"scheduler threads\"}}",
            FY_TRCHROME_SCHED_PID);
    for (unsigned t = 0; t < fy_trfile_threads(c->f); t++) {
        sep(c);
        fprintf(c->o, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%u,"
                      "\"args\":{\"name\":\"thread %u\"}}",
                FY_TRCHROME_SCHED_PID, t + 1, t);
    }
}

static int pend_add(chrome *c, act_state *to, uint64_t ts, uint32_t from)
{
    size_t i;
    if (c->free_head) {
        i = c->free_head - 1;
        c->free_head = c->pd[i].next;
    } else {
        if (c->npd == c->cappd) {
            size_t nc = c->cappd ? c->cappd * 2 : 1024;
            pend *p = realloc(c->pd, nc * sizeof *p);
            if (!p)
                return -ENOMEM;
            c->pd = p;
            c->cappd = nc;
        }
        i = c->npd++;
    }
    c->pd[i] = (pend){.ts = ts, .from = from, .next = to->pend_head};
    to->pend_head = i + 1;
    return 0;
}

/* The receiver's turn begins at ts: draw every send still waiting for it. */
static void flows(chrome *c, act_state *to, uint64_t ts)
{
    while (to->pend_head) {
        size_t i = to->pend_head - 1;
        pend *p = &c->pd[i];
        act_state *from = find(c, p->from);
        uint64_t id = ++c->flow_id;
        sep(c);
        fprintf(c->o, "{\"ph\":\"s\",\"name\":\"msg\",\"cat\":\"msg\",\"id\":%" PRIu64
                      ",\"pid\":%u,\"tid\":%" PRIu32 ",\"ts\":",
                id, from ? (unsigned)from->kind : 0u, p->from);
        us(c, p->ts);
        fputs("}", c->o);
        sep(c);
        fprintf(c->o, "{\"ph\":\"f\",\"bp\":\"e\",\"name\":\"msg\",\"cat\":\"msg\",\"id\":%" PRIu64
                      ",\"pid\":%u,\"tid\":%" PRIu32 ",\"ts\":",
                id, (unsigned)to->kind, to->id);
        us(c, ts);
        fputs("}", c->o);
        to->pend_head = p->next;
        p->next = c->free_head;
        c->free_head = i + 1;
    }
}

static void counter(chrome *c, const act_state *a, const char *what, uint64_t ts,
                    const char *args)
{
    sep(c);
    fprintf(c->o, "{\"ph\":\"C\",\"name\":\"%s %" PRIu32 "\",\"pid\":%u,\"ts\":", what, a->id,
            (unsigned)a->kind);
    us(c, ts);
    fprintf(c->o, ",\"args\":{%s}}", args);
}

static int event(chrome *c, const fy_trace_rec *e, uint64_t *park)
{
    char args[96];
    if (e->type == FY_TR_PARK || e->type == FY_TR_UNPARK) {
        unsigned t = e->thread;
        if (t >= fy_trfile_threads(c->f))
            return 0;
        if (e->type == FY_TR_PARK) {
            park[t] = e->ts_ns;
        } else if (park[t] && e->ts_ns >= park[t]) {
            sep(c);
            fprintf(c->o, "{\"ph\":\"X\",\"name\":\"parked\",\"pid\":%d,\"tid\":%u,\"ts\":",
                    FY_TRCHROME_SCHED_PID, t + 1);
            us(c, park[t]);
            fprintf(c->o, ",\"dur\":%.3f}", (double)(e->ts_ns - park[t]) / 1e3);
            park[t] = 0;
        }
        return 0;
    }
    act_state *a = e->actor ? find(c, e->actor) : NULL;
    if (!a)
        return 0;
    switch (e->type) {
    case FY_TR_SEND:
        snprintf(args, sizeof args, "\"depth\":%" PRIu64, e->b);
        counter(c, a, "depth", e->ts_ns, args);
        if (e->a && find(c, (uint32_t)e->a))
            return pend_add(c, a, e->ts_ns, (uint32_t)e->a);
        break;
    case FY_TR_TURN_BEGIN:
        a->wait = e->a;
        flows(c, a, e->ts_ns);
        break;
    case FY_TR_TURN_END: {
        uint64_t start = e->ts_ns >= e->b ? e->ts_ns - e->b : e->ts_ns;
        char k[16];
        sep(c);
        fprintf(c->o, "{\"ph\":\"X\",\"name\":\"%s\",\"pid\":%u,\"tid\":%" PRIu32 ",\"ts\":",
                fy_trfile_kind_name(a->kind, k, sizeof k), (unsigned)a->kind, a->id);
        us(c, start < c->t0 ? c->t0 : start);
        fprintf(c->o, ",\"dur\":%.3f,\"args\":{\"msgs\":%" PRIu64 ",\"wait_us\":%.3f}}",
                (double)e->b / 1e3, e->a, (double)a->wait / 1e3);
        a->wait = 0;
        break;
    }
    case FY_TR_IDLE:
        counter(c, a, "depth", e->ts_ns, "\"depth\":0");
        break;
    case FY_TR_LAG:
        snprintf(args, sizeof args, "\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64, e->a, e->b);
        counter(c, a, "lag", e->ts_ns, args);
        break;
    case FY_TR_IO:
        sep(c);
        fprintf(c->o, "{\"ph\":\"i\",\"s\":\"t\",\"name\":\"io\",\"pid\":%u,\"tid\":%" PRIu32
                      ",\"ts\":",
                (unsigned)a->kind, a->id);
        us(c, e->ts_ns);
        fprintf(c->o, ",\"args\":{\"fd\":%" PRIu64 ",\"events\":%" PRIu64 "}}", e->a, e->b);
        break;
    default:
        break;
    }
    return 0;
}

/* Cluster events: global instant events (a line across every track),
 * named "cluster leader" etc., the text in args. */
static void clusters(chrome *c)
{
    size_t n;
    const fy_trfile_cluster *cl = fy_trfile_clusters(c->f, &n);
    char b[16];

    for (size_t i = 0; i < n; i++) {
        sep(c);
        fprintf(c->o, "{\"ph\":\"i\",\"s\":\"g\",\"name\":\"cluster %s\",\"pid\":%d,"
                "\"tid\":0,\"ts\":", fy_trfile_cluster_name(cl[i].ev, b, sizeof b),
                FY_TRCHROME_SCHED_PID);
        us(c, cl[i].ts_ns);
        fprintf(c->o, ",\"args\":{\"epoch\":%" PRIu64 ",\"text\":", cl[i].epoch);
        jstr(c->o, cl[i].text);
        fputs("}}", c->o);
    }
}

int fy_trchrome_write(FILE *o, const fy_trfile *f)
{
    size_t n;
    const fy_trace_rec *ev = fy_trfile_events(f, &n);
    chrome c = {.o = o, .f = f, .t0 = n ? ev[0].ts_ns : 0, .first = true};
    unsigned nthr = fy_trfile_threads(f);
    uint64_t *park = calloc(nthr ? nthr : 1, sizeof *park);
    int rc = park ? collect(&c, ev, n) : -ENOMEM;

    if (rc == 0) {
        fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"source\":\"ferry-trace\"},"
              "\"traceEvents\":[",
              o);
        metadata(&c);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = event(&c, &ev[i], park);
        clusters(&c);
        fputs("\n]}\n", o);
    }
    free(park);
    free(c.act);
    free(c.pd);
    fflush(o);
    if (rc == 0 && ferror(o))
        rc = -EIO;
    return rc;
}
