/*
 * replica.c - the cluster's replica manager (one actor per relay with
 * --cluster): every member replicates every channel (docs/cluster.md,
 * "Followers").
 *
 * The member's thread (src/cluster/member.c) is not an actor: when a
 * channel's leader, epoch or in-sync set changes it only posts
 * FY_RM_CLUSTER here (fy_actor_post is safe from any thread), and this
 * actor reads the member's table (fy_member_lead_at: a copy under its
 * mutex) on that and every TICK_MS, so a change posted before this actor
 * existed is not lost.  For each channel the member knows it asks the
 * registry for the channel as a session would (the lease it gets keeps the
 * channel open while the relay runs) and then tells the channel's writer
 * what this node is for it: its leader in epoch E, or a follower of the
 * leader at HOST:PORT (FY_RM_FOLLOW, handled by writer_follow.c).  A
 * writer is told again whenever that changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/sock.h"
#include "relay/kinds.h"
#include "msg.h"
#include "relay_int.h"

#define TICK_MS 200
#define TM_TICK 1

enum rst { R_NONE, R_ASKED, R_OPEN };

typedef struct rchan {
    char name[FY_NAME_MAX + 1];
    enum rst st;
    const fy__chan *chan;  /* R_OPEN: the registry's, held open by our lease */
    bool told, leading;    /* what the writer was last told */
    uint64_t epoch;
    char addr[FY_MEMBER_ADDR_MAX];
} rchan;

typedef struct replica {
    const fy__ctx *ctx;
    fy_actor *self;
    rchan *v;
    size_t n, cap;
    bool stopping;
} replica;

static rchan *find(replica *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

static rchan *add(replica *r, const char *name)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        rchan *nv = realloc(r->v, cap * sizeof *nv);
        if (!nv)
            return NULL;
        r->v = nv;
        r->cap = cap;
    }
    rchan *c = &r->v[r->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

static void ask_chan(replica *r, rchan *c)
{
    fy__chan_req *q = calloc(1, sizeof *q);

    if (!q)
        return;
    q->reply = fy_actor_ref(r->self);
    snprintf(q->name, sizeof q->name, "%s", c->name);
    c->st = R_ASKED;
    if (fy__msg_chan_get(r->ctx->registry, q) < 0)
        c->st = R_NONE;
}

/* Tell c's writer what the member says, when it changed since last told. */
static void tell(replica *r, rchan *c, const fy_member_lead *l)
{
    if (c->told && c->leading == l->leading && c->epoch == l->epoch &&
        (l->leading || strcmp(c->addr, l->addr) == 0))
        return;
    fy__follow *f = calloc(1, sizeof *f);
    if (!f)
        return;
    f->leading = l->leading;
    f->from = r->self;
    f->epoch = l->epoch;
    snprintf(f->leader, sizeof f->leader, "%s", l->leader);
    snprintf(f->addr, sizeof f->addr, "%s", l->addr);
    /* An advertised address is numeric in practice; a host name is looked
     * up here, once per change of leader. */
    if (!l->leading && fy_addr_parse(l->addr, "127.0.0.1", &f->to) < 0) {
        fy_klog(FY_LOG_WARN, "cannot follow: bad leader address", "channel=%s leader=%s "
                "addr=%s action=\"wait for the next change\"", c->name, l->leader, l->addr);
        free(f);
        return;
    }
    if (fy_actor_post(c->chan->writer, FY_RM_FOLLOW, 0, 0, 0, f, NULL) < 0) {
        free(f); /* the writer has stopped (shutdown): ptr is ours again */
        return;
    }
    c->told = true;
    c->leading = l->leading;
    c->epoch = l->epoch;
    snprintf(c->addr, sizeof c->addr, "%s", l->addr);
}

/* Read the member's table and act on every channel it knows. */
static void sync_all(replica *r)
{
    char name[FY_NAME_MAX + 1];
    fy_member_lead l;

    for (unsigned i = 0; fy_member_lead_at(r->ctx->member, i, name, sizeof name, &l) == 0; i++) {
        if (!l.known || (!l.leading && !l.addr[0]))
            continue;
        rchan *c = find(r, name);
        if (!c && !(c = add(r, name)))
            return;
        if (c->st == R_NONE)
            ask_chan(r, c);
        else if (c->st == R_OPEN)
            tell(r, c, &l);
    }
}

/* The registry's answer to CHAN_GET: the channel, or an error (which one
 * asked is not said: every channel still asking asks again next tick). */
static void on_chan(replica *r, fy_msg *m)
{
    const fy__chan *ch = m->ptr;
    rchan *c = ch ? find(r, ch->name) : NULL;

    if (!ch) {
        fy_klog(FY_LOG_WARN, "cluster channel not opened", "err=%s action=\"try again in %u "
                "ms\"", fy_errname(-(int)m->u32), TICK_MS);
        for (size_t i = 0; i < r->n; i++)
            if (r->v[i].st == R_ASKED)
                r->v[i].st = R_NONE;
        return;
    }
    if (!c)
        return;
    c->st = R_OPEN;
    c->chan = ch;
    sync_all(r);
}

/* c's writer closed the channel to cut its log (writer_follow.c): forget
 * the record (freed once the registry has its WRITER_DONE, queued before
 * this), and ask for the channel again (the registry opens it anew). */
static void on_chan_cut(replica *r, const fy_msg *m)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].st == R_OPEN && r->v[i].chan == m->ptr) {
            r->v[i].st = R_NONE;
            r->v[i].chan = NULL;
            r->v[i].told = false;
        }
    sync_all(r); /* at once: the registry's queue has the WRITER_DONE before our ask */
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    replica *r = state;

    if (r->stopping)
        return FY_MSG_DONE;
    switch (m->type) {
    case FY_RM_CLUSTER:
        sync_all(r);
        break;
    case FY_MSG_TIMER:
        sync_all(r);
        fy_timer_after(self, TICK_MS, TM_TICK);
        break;
    case FY_RM_CHAN:
        on_chan(r, m);
        break;
    case FY_RM_CHAN_CUT:
        on_chan_cut(r, m);
        break;
    case FY_RM_SHUTDOWN: /* our leases end with us: the channels may close */
        r->stopping = true;
        fy_actor_stop(self);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    replica *r = state;

    free(r->v);
    free(r);
}

int fy__replica_new(const fy__ctx *ctx, fy_actor **out)
{
    replica *r = calloc(1, sizeof *r);
    int rc;

    if (!r)
        return -ENOMEM;
    r->ctx = ctx;
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = r, .kind = FY_KIND_REPLICA,
                       .label = "replica"};
    if ((rc = fy_actor_new(ctx->sched, &o, &r->self)) < 0) {
        free(r);
        return rc;
    }
    *out = r->self;
    fy_timer_after(r->self, 0, TM_TICK);
    return 0;
}
