/*
 * trace.c - per-thread trace rings and the trace file (ferry/trace.h).
 *
 * Each scheduler thread writes 32-byte events into its own power-of-two
 * ring: no lock, no shared cache line, old events overwritten (a flight
 * recorder).  The words go in with ck_pr_store_64 and the head is
 * published after them, so fy_trace_dump() can copy a ring from another
 * thread like a seqlock and discard exactly the events that may have been
 * overwritten while it copied; fy_trace_read_since() copies by the same
 * rule only the events after a reader's cursor, so a streaming reader pays
 * for the new events rather than for the whole ring.  The actor table is
 * a fixed array of the last FY__TRACE_ACTORS actors created (in sched.c,
 * under the scheduler's lock), so a long-running daemon does not grow it;
 * cluster events, recorded off the scheduler by the member's thread, are
 * kept the same way (the last FY__TRACE_CLUSTER, under the same lock).
 * The format is in docs/trace-format.md.
 */
#include "rt/trace.h"

#include <ck_pr.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ferry/fd.h"
#include "ferry/sched.h"
#include "rt/sched.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "trace records are written in host order");

#define LABEL_RECS 2 /* 64 label bytes after an actor record */
#define CL_RECS (FY_TRACE_CL_TEXT / 32) /* text records after a cluster record */
_Static_assert(FY_TRACE_CL_TEXT % 32 == 0, "a cluster event's text fills whole records");

int fy__ring_init(fy__ring *r, size_t events)
{
    memset(r, 0, sizeof(*r));
    if (events == 0)
        return 0;
    size_t cap = 64;
    while (cap < events && cap < ((size_t)1 << 30))
        cap *= 2;
    r->w = calloc(cap, 4 * sizeof(uint64_t));
    if (!r->w)
        return -ENOMEM;
    r->mask = cap - 1;
    return 0;
}

void fy__ring_fini(fy__ring *r)
{
    free(r->w);
    r->w = NULL;
}

void fy__trace_emit_ts(fy__thr *t, uint64_t ts, uint16_t type, uint32_t actor, uint64_t a, uint64_t b)
{
    fy__ring *r = &t->ring;
    if (!r->w)
        return;
    uint64_t h = r->head;
    uint64_t *w = r->w + (h & r->mask) * 4;
    ck_pr_store_64(&w[0], ts);
    ck_pr_store_64(&w[1], (uint64_t)actor | (uint64_t)type << 32 | (uint64_t)t->idx << 48);
    ck_pr_store_64(&w[2], a);
    ck_pr_store_64(&w[3], b);
    /* The event's words before the head that makes it readable. */
    ck_pr_fence_store();
    ck_pr_store_64(&r->head, h + 1);
}

#if FY_TRACE
void fy_trace_emit(uint16_t type, uint32_t actor, uint64_t a, uint64_t b)
{
    fy__thr *t = fy__self;
    if (!t || !t->ring.w || !ck_pr_load_int(&t->s->trace_on))
        return;
    uint64_t ts = fy_now_ns();
    /* A later send in the same handler may reuse this reading (actor.c):
     * it is the newest this thread has, so stamps never go backwards. */
    if (t->clock_ns)
        t->clock_ns = ts;
    fy__trace_emit_ts(t, ts, type, actor, a, b);
}
#endif

void fy_trace_cluster(fy_sched *s, uint16_t ev, uint64_t epoch, const char *text)
{
    if (!s || !s->cl)
        return;
    uint64_t ts = fy_now_ns();
    pthread_mutex_lock(&s->lock);
    fy__trace_cl *e = &s->cl[s->cl_n++ % FY__TRACE_CLUSTER];
    memset(e, 0, sizeof(*e));
    e->ts_ns = ts;
    e->epoch = epoch;
    e->serial = (uint32_t)s->cl_n;
    e->ev = ev;
    strncpy(e->text, text, sizeof(e->text) - 1);
    pthread_mutex_unlock(&s->lock);
}

void fy_trace_enable(fy_sched *s, bool on)
{
    ck_pr_store_int(&s->trace_on, FY_TRACE && on);
}

/* Copy events [from, to) of r into out, then drop from the front those the
 * writer may have overwritten meanwhile (it may be filling slot h2 now,
 * which held event h2 - size).  Returns how many were dropped; out[0..] then
 * holds events from + skip .. to - 1.  The caller read head (h1 >= to)
 * with a load fence before calling. */
static uint64_t ring_copy(const fy__ring *r, uint64_t from, uint64_t to, fy_trace_rec *out)
{
    uint64_t size = r->mask + 1;

    for (uint64_t i = from; i < to; i++) {
        const uint64_t *w = r->w + (i & r->mask) * 4;
        uint64_t *o = (uint64_t *)(void *)&out[i - from];
        o[0] = ck_pr_load_64(&w[0]);
        o[1] = ck_pr_load_64(&w[1]);
        o[2] = ck_pr_load_64(&w[2]);
        o[3] = ck_pr_load_64(&w[3]);
    }
    ck_pr_fence_load(); /* the copies before the second look at head */
    uint64_t h2 = ck_pr_load_64(&r->head);
    uint64_t safe = h2 + 1 > size ? h2 + 1 - size : 0;
    uint64_t skip = safe > from ? safe - from : 0;
    if (skip > to - from)
        skip = to - from;
    if (skip)
        memmove(out, out + skip, (size_t)(to - from - skip) * sizeof(*out));
    return skip;
}

size_t fy__ring_snapshot(const fy__ring *r, fy_trace_rec *out, size_t cap, uint64_t *lost)
{
    *lost = 0;
    if (!r->w)
        return 0;
    uint64_t size = r->mask + 1;
    uint64_t h1 = ck_pr_load_64(&r->head);
    ck_pr_fence_load(); /* head before the words it covers */
    uint64_t from = h1 > size ? h1 - size : 0;
    if (h1 - from > cap)
        from = h1 - cap;
    uint64_t skip = ring_copy(r, from, h1, out);
    *lost = from + skip;
    return (size_t)(h1 - from - skip);
}

int fy_trace_read_since(fy_sched *s, unsigned thread, uint64_t *cursor, fy_trace_rec *out,
                        size_t cap, size_t *n, uint64_t *lost)
{
    *n = 0;
    *lost = 0;
    if (thread >= s->n)
        return -EINVAL;
    const fy__ring *r = &s->thr[thread].ring;
    if (!r->w)
        return 0;
    uint64_t size = r->mask + 1, c = *cursor;
    uint64_t h1 = ck_pr_load_64(&r->head);
    ck_pr_fence_load(); /* head before the words it covers */
    if (c > h1)
        return -EINVAL;
    uint64_t from = h1 - c > size ? h1 - size : c;
    uint64_t to = h1 - from > cap ? from + cap : h1;
    uint64_t skip = ring_copy(r, from, to, out);
    *n = (size_t)(to - from - skip);
    *lost = from + skip - c;
    *cursor = to;
    return 0;
}

static void meta(fy_trace_rec *r, uint16_t type, uint64_t ts, uint32_t actor, uint16_t thread,
                 uint64_t a, uint64_t b)
{
    memset(r, 0, sizeof(*r));
    r->ts_ns = ts;
    r->actor = actor;
    r->type = type;
    r->thread = thread;
    r->a = a;
    r->b = b;
}

/* The cluster events, oldest first, into recs from n; the new n.  Under
 * the scheduler's lock. */
static size_t cluster_recs(const fy_sched *s, fy_trace_rec *recs, size_t n)
{
    uint64_t first = s->cl_n > FY__TRACE_CLUSTER ? s->cl_n - FY__TRACE_CLUSTER : 0;
    for (uint64_t i = first; s->cl && i < s->cl_n; i++) {
        const fy__trace_cl *e = &s->cl[i % FY__TRACE_CLUSTER];
        meta(&recs[n++], FY_TR_META_CLUSTER, e->ts_ns, e->serial, e->ev, e->epoch, CL_RECS);
        memcpy(&recs[n], e->text, sizeof(e->text)); /* NUL-padded */
        n += CL_RECS;
    }
    return n;
}

/* Header, clock record, the actor table and the cluster events, as one
 * buffer. */
static int write_head(fy_sched *s, int fd)
{
    size_t max = 2 + (size_t)FY__TRACE_ACTORS * (1 + LABEL_RECS) +
                 (size_t)FY__TRACE_CLUSTER * (1 + CL_RECS);
    fy_trace_rec *recs = calloc(max, sizeof(*recs));
    if (!recs)
        return -ENOMEM;

    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    fy_trace_file_hdr h = {.version = FY_TRACE_VERSION, .hdr_size = sizeof(h), .rec_size = 32};
    memcpy(h.magic, FY_TRACE_MAGIC, 8);
    h.threads = s->n;
    h.ring_events = s->thr[0].ring.w ? (uint32_t)(s->thr[0].ring.mask + 1) : 0;
    h.mono_ns = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
    h.real_ns = (uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec;
    h.pid = (uint32_t)getpid();

    size_t n = 0;
    meta(&recs[n++], FY_TR_META_CLOCK, h.mono_ns, 0, 0, h.real_ns, 0);
    pthread_mutex_lock(&s->lock);
    uint64_t first = s->tab_n > FY__TRACE_ACTORS ? s->tab_n - FY__TRACE_ACTORS : 0;
    for (uint64_t i = first; i < s->tab_n; i++) {
        const fy__trace_actor *e = &s->tab[i % FY__TRACE_ACTORS];
        size_t len = strnlen(e->label, sizeof(e->label) - 1);
        meta(&recs[n++], FY_TR_META_ACTOR, e->created_ns, e->id, e->kind, len, LABEL_RECS);
        memcpy(&recs[n], e->label, len); /* the rest stays NUL */
        n += LABEL_RECS;
    }
    n = cluster_recs(s, recs, n);
    pthread_mutex_unlock(&s->lock);

    int err = fy_fd_write_all(fd, &h, sizeof(h));
    if (!err)
        err = fy_fd_write_all(fd, recs, n * sizeof(*recs));
    free(recs);
    return err;
}

int fy_trace_dump_head(fy_sched *s, int fd)
{
    return write_head(s, fd);
}

int fy_trace_dump(fy_sched *s, int fd)
{
    int err = write_head(s, fd);
    if (err)
        return err;
    size_t cap = s->thr[0].ring.w ? (size_t)(s->thr[0].ring.mask + 1) : 0;
    fy_trace_rec *buf = malloc((cap + 1) * sizeof(*buf));
    if (!buf)
        return -ENOMEM;
    for (unsigned i = 0; i < s->n && !err; i++) {
        uint64_t lost;
        size_t n = fy__ring_snapshot(&s->thr[i].ring, buf + 1, cap, &lost);
        meta(&buf[0], FY_TR_META_THREAD, fy_now_ns(), 0, (uint16_t)i, lost, n);
        err = fy_fd_write_all(fd, buf, (n + 1) * sizeof(*buf));
    }
    free(buf);
    return err;
}
