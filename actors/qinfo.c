/*
 * qinfo.c - the query collector: who is connected to a channel, for
 * `ferry info` (one actor per relay, created at start, alive until the
 * relay is freed).
 *
 * It asks the same way the metrics actor scrapes (src/relay/stats.h):
 * FY_STATS_REQ to the registry (which passes it to writers, and they to
 * their forwarders) and to the acceptor (which passes it to sessions),
 * but with itself as the collector (fy_stats_ask_to), so /metrics and
 * `ferry info` never share a scrape.  Each answer says how many more to
 * expect; the round ends when all came or after ROUND_MS, whichever is
 * first.  From the records it keeps the channel's sender sessions and its
 * forwarders, and answers the session with one QREC line each.  Requests
 * are served one round at a time, in order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "query.h"
#include "relay/stats.h"

#define ROUND_MS 1000
#define TEXT_MAX ((size_t)256 << 10)

typedef struct qinfo {
    const fy__ctx *ctx;
    fy_actor *self;
    fy__qinfo_req **q; /* waiting; q[0] is being answered when busy */
    size_t nq, capq;
    bool busy;
    uint64_t round;    /* the scrape id of the current round */
    int64_t pending;   /* answers still expected */
    char *text;        /* records for q[0], one a line */
    size_t len;
} qinfo;

static void add(qinfo *c, const fy_stats_rec *r)
{
    size_t room = TEXT_MAX - c->len;
    int n;

    if (strcmp(r->channel, c->q[0]->channel) != 0 || room < 512)
        return;
    const char *client = r->client[0] ? r->client : "-";
    if (r->kind == FY_KIND_SESSION && r->role == FY_ROLE_SENDER)
        n = snprintf(c->text + c->len, room, "type=sender channel=%s client=%s peer=%s "
                     "bytes_in=%" PRIu64 "\n", r->channel, client, r->peer, r->v[FY_ST_BYTES_IN]);
    else if (r->kind == FY_KIND_FORWARDER)
        n = snprintf(c->text + c->len, room, "type=receiver channel=%s client=%s peer=%s mode=%s "
                     "lag_frames=%" PRIu64 " lag_bytes=%" PRIu64 " bytes_out=%" PRIu64 "\n",
                     r->channel, client, r->peer, r->mode, r->v[FY_ST_LAG_PKTS],
                     r->v[FY_ST_LAG_BYTES], r->v[FY_ST_BYTES_OUT]);
    else if (r->kind == FY_KIND_UPSTREAM)
        n = snprintf(c->text + c->len, room, "type=sender channel=%s client=upstream peer=%s "
                     "bytes_in=%" PRIu64 "\n", r->channel, r->peer, r->v[FY_ST_BYTES_IN]);
    else
        return;
    if (n > 0 && (size_t)n < room)
        c->len += (size_t)n;
}

static void start(qinfo *c);

/* Answer q[0] with what the round found, then start the next. */
static void done(qinfo *c)
{
    fy__qinfo_req *q = c->q[0];

    c->text[c->len] = 0;
    fy__query_post(c->ctx, q->reply, 0, "%s", c->text);
    fy_actor_unref(q->reply);
    free(q);
    memmove(c->q, c->q + 1, (c->nq - 1) * sizeof *c->q);
    c->nq--;
    c->busy = false;
    if (c->nq)
        start(c);
}

static void start(qinfo *c)
{
    c->busy = true;
    c->round++;
    c->len = 0;
    c->pending = 0;
    if (fy_stats_ask_to(c->ctx->registry, c->round, c->self) == 0)
        c->pending++;
    if (fy_stats_ask_to(c->ctx->acceptor, c->round, c->self) == 0)
        c->pending++;
    if (!c->pending) {
        done(c);
        return;
    }
    fy_timer_after(c->self, ROUND_MS, c->round);
}

static void on_req(qinfo *c, fy__qinfo_req *q)
{
    if (c->nq == c->capq) {
        size_t cap = c->capq ? 2 * c->capq : 4;
        fy__qinfo_req **nq = realloc(c->q, cap * sizeof *nq);
        if (!nq) {
            fy__query_post(c->ctx, q->reply, FY_EINTERNAL, "out of memory");
            fy_actor_unref(q->reply);
            free(q);
            return;
        }
        c->q = nq;
        c->capq = cap;
    }
    c->q[c->nq++] = q;
    if (!c->busy)
        start(c);
}

static void on_rep(qinfo *c, const fy_msg *m)
{
    if (!c->busy || m->u64[0] != c->round || !m->buf ||
        fy_buf_len(m->buf) != sizeof(fy_stats_rec))
        return; /* a late answer to an earlier round */
    fy_stats_rec r;
    memcpy(&r, fy_buf_data(m->buf), sizeof r);
    add(c, &r);
    c->pending += (int64_t)r.fanout - 1;
    if (c->pending <= 0)
        done(c);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    qinfo *c = state;

    (void)self;
    switch (m->type) {
    case FY_RM_QINFO:
        on_req(c, m->ptr);
        break;
    case FY_STATS_REP:
        on_rep(c, m);
        break;
    case FY_MSG_TIMER:
        if (c->busy && m->u64[0] == c->round)
            done(c); /* some actor did not answer in time: what came is the answer */
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    qinfo *c = state;

    for (size_t i = 0; i < c->nq; i++) {
        fy_actor_unref(c->q[i]->reply);
        free(c->q[i]);
    }
    free(c->q);
    free(c->text);
    free(c);
}

int fy__qinfo_new(const fy__ctx *ctx, fy_actor **out)
{
    qinfo *c = calloc(1, sizeof *c);
    int rc;

    if (!c || !(c->text = malloc(TEXT_MAX + 1))) {
        free(c);
        return -ENOMEM;
    }
    c->ctx = ctx;
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = c, .kind = FY_KIND_QUERY,
                       .label = "query"};
    if ((rc = fy_actor_new(ctx->sched, &o, &c->self)) < 0) {
        free(c->text);
        free(c);
        return rc;
    }
    *out = c->self;
    return 0;
}
