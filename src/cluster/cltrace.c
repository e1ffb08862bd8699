/*
 * cltrace.c - cluster events into the trace (cltrace.h).
 *
 * The last view of each channel is kept in a plain array searched
 * linearly: the member calls only when something changed, a handful of
 * times per failover, so the search is never on a hot path.  The in-sync
 * set is compared as its comma-joined text, which is also what the event
 * shows.
 */
#include "cluster/cltrace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/proto.h"

#define ISR_TEXT (FY_CLUSTER_NODES_MAX * (FY_NODE_NAME_MAX + 1))

typedef struct last_view {
    char chan[FY_NAME_MAX + 1];
    char leader[FY_NODE_NAME_MAX + 1];
    uint64_t epoch;
    char isr[ISR_TEXT];
} last_view;

struct fy_cltrace {
    fy_sched *s;
    last_view *v;
    size_t n, cap;
};

int fy_cltrace_new(fy_sched *s, fy_cltrace **out)
{
    fy_cltrace *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->s = s;
    *out = t;
    return 0;
}

void fy_cltrace_free(fy_cltrace *t)
{
    if (!t)
        return;
    free(t->v);
    free(t);
}

static void join_isr(const fy_chanstate *st, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (unsigned i = 0; i < st->nisr && o < cap; i++) {
        int n = snprintf(out + o, cap - o, "%s%s", i ? "," : "", st->isr[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

/* The remembered view of chan, a new empty one (leader "") when there is
 * none yet, or NULL when out of memory. */
static last_view *find(fy_cltrace *t, const char *chan)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].chan, chan) == 0)
            return &t->v[i];
    if (t->n == t->cap) {
        size_t c = t->cap ? t->cap * 2 : 16;
        last_view *p = realloc(t->v, c * sizeof *p);
        if (!p)
            return NULL;
        t->v = p;
        t->cap = c;
    }
    last_view *l = &t->v[t->n++];
    memset(l, 0, sizeof *l);
    snprintf(l->chan, sizeof l->chan, "%s", chan);
    return l;
}

/* One event; a text longer than an event holds is cut (the channel and
 * the leader come first, so what is cut is the tail of a long in-sync set). */
static void record(fy_sched *s, uint16_t ev, uint64_t epoch, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void record(fy_sched *s, uint16_t ev, uint64_t epoch, const char *fmt, ...)
{
    char text[FY_TRACE_CL_TEXT];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fy_trace_cluster(s, ev, epoch, text);
}

void fy_cltrace_isr_ask(fy_sched *s, const char *chan, uint64_t epoch, const char *node, bool in,
                        const char *why)
{
    record(s, FY_TR_CL_NOTE, epoch, "channel=%s node=%s isr=%s why=%s", chan, node,
           in ? "in" : "out", why && why[0] ? why : "-");
}

void fy_cltrace_view(fy_cltrace *t, const fy_member_view *v)
{
    char isr[ISR_TEXT];
    const fy_chanstate *st = v->st;

    if (!t)
        return;
    last_view *l = find(t, v->chan);
    if (!l)
        return;
    join_isr(st, isr, sizeof isr);
    const char *me = v->leading ? "yes" : "no";
    if (l->leader[0] && st->epoch > l->epoch && strcmp(l->leader, st->leader) != 0) {
        record(t->s, FY_TR_CL_FAILOVER, st->epoch, "channel=%s leader=%s old_leader=%s "
               "old_epoch=%llu isr=%s leading=%s", v->chan, st->leader, l->leader,
               (unsigned long long)l->epoch, isr, me);
    } else if (!l->leader[0] || st->epoch != l->epoch || strcmp(l->leader, st->leader) != 0) {
        record(t->s, FY_TR_CL_LEADER, st->epoch, "channel=%s leader=%s old_epoch=%llu isr=%s r=%u "
               "leading=%s", v->chan, st->leader, (unsigned long long)l->epoch, isr, st->r, me);
    } else if (strcmp(l->isr, isr) != 0) {
        record(t->s, FY_TR_CL_ISR, st->epoch, "channel=%s isr=%s old_isr=%s r=%u leading=%s",
               v->chan, isr, l->isr, st->r, me);
    }
    snprintf(l->leader, sizeof l->leader, "%s", st->leader);
    l->epoch = st->epoch;
    snprintf(l->isr, sizeof l->isr, "%s", isr);
}
