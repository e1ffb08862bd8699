/*
 * member.c - a relay's membership thread (see member.h).
 *
 * One thread polls etcd for every served channel: publish this node's
 * progress, read the state, act (lead a channel without a leader, apply the
 * leader's in-sync changes, take over from a dead leader), and tell the
 * relay what changed.  Polling rather than etcd's watch stream keeps the
 * client to plain request/answer calls; at TTL/8 it adds at most an eighth
 * of the TTL to a failover, which the lease's TTL dominates anyway.
 * The table of channels is shared with the relay's threads under one
 * mutex: they only read it (may_ack) or queue requests for the thread.
 */
#include "cluster/member.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/elect.h"
#include "cluster/etcd.h"
#include "cluster/lease.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sched.h"

#define CHANS_MAX 1024u
#define REQS_MAX 64u
#define KEY_MAX 600
#define TAKEOVER_POLLS 2u /* a dead leader's polls before any in-sync node tries */

typedef struct slot {
    char name[FY_NAME_MAX + 1];
    fy_chanstate st;     /* as last read; under mu */
    bool known, leading; /* under mu */
    uint64_t seen;       /* newest epoch a peer named (fy_member_saw_epoch); under mu */
    char addr[FY_MEMBER_ADDR_MAX]; /* the leader's advertised address; under mu, written
                                      by the member thread only */
    unsigned dead_polls; /* member thread only, from here on */
    uint64_t pub_epoch, pub_seq;
    bool published;
    uint64_t bump_from;  /* under mu: move to epoch + 1 while it is this one (0: no) */
} slot;

typedef struct isr_req {
    unsigned chan;
    char node[FY_NODE_NAME_MAX + 1];
    bool in;
} isr_req;

struct fy_member {
    char endpoints[1024], prefix[128], node[FY_NODE_NAME_MAX + 1], advertise[300];
    int ttl_s;
    unsigned r, poll_ms;
    fy_member_cb changed;
    fy_member_progress_fn progress;
    void *arg;
    fy_etcd *etcd;   /* the member thread's */
    fy_lease *lease; /* replaced only by the member thread, under mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, kick; /* kick: poll again at once (a channel was served) */
    slot *chans;
    unsigned nchans;
    isr_req reqs[REQS_MAX];
    unsigned nreqs;
    _Atomic uint64_t failovers;
};

/* ---- membership ------------------------------------------------------------- */

/* A lease and the node key under it, waiting up to one TTL (+1 s) for an
 * earlier process of the same name to lose its lease. */
static int join(fy_member *m, fy_lease **out)
{
    uint64_t until = fy_now_ns() + (uint64_t)(m->ttl_s + 1) * 1000000000ull;
    fy_lease *l;
    int rc = fy_lease_start(m->endpoints, m->ttl_s, &l);

    if (rc < 0)
        return rc;
    for (;;) {
        rc = fy_elect_register(m->etcd, m->prefix, m->node, m->advertise, fy_lease_id(l));
        if (rc != -EADDRINUSE || fy_now_ns() >= until)
            break;
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc < 0) {
        fy_lease_stop(l, true);
        return rc;
    }
    *out = l;
    return 0;
}

/* ---- one channel's poll ------------------------------------------------------ */

static void progress_key(const fy_member *m, const char *chan, const char *node, char *out)
{
    snprintf(out, KEY_MAX, "%s/progress/%s/%s", m->prefix, chan, node);
}

/* Publish this node's progress on chan when it changed (under the lease,
 * so a dead node's progress goes with it). */
static void publish(fy_member *m, slot *s)
{
    uint64_t e = 0, q = 0;
    char k[KEY_MAX], v[96];

    if (!m->progress)
        return;
    m->progress(m->arg, s->name, &e, &q);
    if (s->published && e == s->pub_epoch && q == s->pub_seq)
        return;
    progress_key(m, s->name, m->node, k);
    snprintf(v, sizeof v, "{\"epoch\":%llu,\"seq\":%llu}", (unsigned long long)e,
             (unsigned long long)q);
    if (fy_etcd_put(m->etcd, k, v, strlen(v), fy_lease_id(m->lease)) == 0) {
        s->published = true;
        s->pub_epoch = e;
        s->pub_seq = q;
    }
}

/* Is this node the best in-sync, live candidate to take over chan?  Live
 * means its progress key exists (it is under its lease); the best has
 * stored the most (epoch, then seq), ties going to the smaller name.  With
 * no in-sync progress published at all, every candidate is as good. */
static bool best_candidate(fy_member *m, const char *chan, const fy_chanstate *st)
{
    char k[KEY_MAX], best[FY_NODE_NAME_MAX + 1] = "";
    fy_etcd_kv *kvs;
    size_t n;
    unsigned long long be = 0, bs = 0, e, q;

    snprintf(k, sizeof k, "%s/progress/%s/", m->prefix, chan);
    if (fy_etcd_list(m->etcd, k, &kvs, &n) < 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *node = kvs[i].key + strlen(k);
        if (!fy_chanstate_in_isr(st, node) ||
            sscanf(kvs[i].value, "{\"epoch\":%llu,\"seq\":%llu}", &e, &q) != 2)
            continue;
        if (!best[0] || e > be || (e == be && q > bs) ||
            (e == be && q == bs && strcmp(node, best) < 0)) {
            snprintf(best, sizeof best, "%s", node);
            be = e;
            bs = q;
        }
    }
    for (size_t i = 0; i < n; i++)
        fy_etcd_kv_free(&kvs[i]);
    free(kvs);
    return !best[0] || strcmp(best, m->node) == 0;
}

/* chan has a leader that is not this node: note whether it is alive, and
 * take over when it is not and this node should.  0 when this node now
 * leads, -EBUSY (st holds the state read) otherwise, or an error. */
static int follow(fy_member *m, slot *s, fy_chanstate *st, char *addr)
{
    char got[FY_MEMBER_ADDR_MAX];
    int rc = fy_elect_node(m->etcd, m->prefix, st->leader, got, sizeof got);

    if (rc == 1 && got[0])
        snprintf(addr, FY_MEMBER_ADDR_MAX, "%s", got);
    if (rc != 0) {
        s->dead_polls = 0;
        return rc < 0 ? rc : -EBUSY;
    }
    s->dead_polls++;
    if (!fy_chanstate_in_isr(st, m->node) ||
        (s->dead_polls <= TAKEOVER_POLLS && !best_candidate(m, s->name, st)))
        return -EBUSY;
    char old[FY_NODE_NAME_MAX + 1];
    uint64_t epoch = st->epoch;
    snprintf(old, sizeof old, "%s", st->leader);
    rc = fy_elect_try(m->etcd, m->prefix, s->name, m->node, m->r, st);
    if (rc == 0) {
        atomic_fetch_add(&m->failovers, 1);
        fy_klog(FY_LOG_WARN, "cluster leader taken over", "channel=%s node=%s old_leader=%s "
                "old_epoch=%llu epoch=%llu dead_polls=%u", s->name, m->node, old,
                (unsigned long long)epoch, (unsigned long long)st->epoch, s->dead_polls);
    }
    return rc;
}

/* This node leads chan: apply the in-sync changes queued for it in one
 * compare-and-swap (put back for the next poll when it fails). */
static int apply_isr(fy_member *m, unsigned i, fy_chanstate *st)
{
    isr_req mine[REQS_MAX];
    unsigned n = 0;
    fy_chanstate next = *st;
    int rc;

    pthread_mutex_lock(&m->mu);
    for (unsigned k = 0; k < m->nreqs; k++)
        if (m->reqs[k].chan == i)
            mine[n++] = m->reqs[k];
        else
            m->reqs[k - n] = m->reqs[k];
    m->nreqs -= n;
    pthread_mutex_unlock(&m->mu);
    for (unsigned k = 0; k < n; k++)
        if (mine[k].in)
            fy_chanstate_isr_add(&next, mine[k].node);
        else if (strcmp(mine[k].node, m->node) != 0) /* a leader stays in sync with itself */
            fy_chanstate_isr_remove(&next, mine[k].node);
    if (n == 0 || memcmp(next.isr, st->isr, sizeof next.isr) == 0)
        return 0;
    rc = fy_elect_set_isr(m->etcd, m->prefix, m->chans[i].name, m->node, &next);
    if (rc == 0) {
        *st = next;
        return 0;
    }
    pthread_mutex_lock(&m->mu);
    for (unsigned k = 0; k < n && m->nreqs < REQS_MAX; k++)
        m->reqs[m->nreqs++] = mine[k];
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* This node leads chan: a bump asked for its current epoch is made (one
 * compare-and-swap; asked again when it fails). */
static int bump(fy_member *m, slot *s, fy_chanstate *st)
{
    pthread_mutex_lock(&m->mu);
    uint64_t from = s->bump_from;
    pthread_mutex_unlock(&m->mu);
    if (!from || from != st->epoch)
        return 0;
    int rc = fy_elect_bump(m->etcd, m->prefix, s->name, m->node, st);
    if (rc == 0) {
        fy_klog(FY_LOG_INFO, "cluster epoch moved on", "channel=%s node=%s old_epoch=%llu "
                "epoch=%llu reason=\"log reopened\"", s->name, m->node, (unsigned long long)from,
                (unsigned long long)st->epoch);
        pthread_mutex_lock(&m->mu);
        if (s->bump_from == from)
            s->bump_from = 0;
        pthread_mutex_unlock(&m->mu);
    }
    return rc;
}

static bool same_state(const fy_chanstate *a, const fy_chanstate *b)
{
    return a->epoch == b->epoch && strcmp(a->leader, b->leader) == 0 && a->nisr == b->nisr &&
           a->r == b->r && memcmp(a->isr, b->isr, sizeof a->isr) == 0;
}

/* Record what was read (addr: the leader's address) and tell the relay
 * when it changed. */
static void update(fy_member *m, unsigned i, const fy_chanstate *st, const char *addr)
{
    slot *s = &m->chans[i];
    bool leading = strcmp(st->leader, m->node) == 0, changed;
    fy_chanstate copy = *st;

    pthread_mutex_lock(&m->mu);
    changed = !s->known || s->leading != leading || !same_state(&s->st, st) ||
              strcmp(s->addr, addr) != 0;
    s->st = *st;
    s->known = true;
    s->leading = leading;
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    pthread_mutex_unlock(&m->mu);
    if (changed && m->changed) {
        fy_member_view v = {s->name, leading, &copy, addr};
        m->changed(m->arg, &v);
    }
}

static void poll_chan(fy_member *m, unsigned i)
{
    slot *s = &m->chans[i]; /* its name never changes once served */
    fy_chanstate st;
    char addr[FY_MEMBER_ADDR_MAX] = "";
    int rc;

    publish(m, s);
    rc = fy_elect_read(m->etcd, m->prefix, s->name, &st);
    /* A dead leader's address stays the last one seen (it may come back
     * under its name); s->addr is written by this thread only. */
    if (rc == 0 && s->known && strcmp(st.leader, s->st.leader) == 0)
        snprintf(addr, sizeof addr, "%s", s->addr);
    if (rc == -ENOENT)
        rc = fy_elect_try(m->etcd, m->prefix, s->name, m->node, m->r, &st);
    else if (rc == 0 && strcmp(st.leader, m->node) != 0)
        rc = follow(m, s, &st, addr);
    else if (rc == 0 && (rc = apply_isr(m, i, &st)) == 0)
        rc = bump(m, s, &st);
    if (rc == 0 && strcmp(st.leader, m->node) == 0)
        snprintf(addr, sizeof addr, "%s", m->advertise);
    if (rc == 0 || rc == -EBUSY || rc == -EPERM)
        update(m, i, &st, addr);
    else if (rc != -ESTALE)
        fy_klog(FY_LOG_DEBUG, "cluster poll failed", "channel=%s err=%s", s->name,
                fy_errname(rc));
}

static slot *find(fy_member *m, const char *chan);

/* ---- the thread ----------------------------------------------------------------- */

static bool nap(fy_member *m, unsigned ms)
{
    struct timespec ts;
    bool stop;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->mu);
    if (!m->stop && !m->kick)
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    m->kick = false;
    stop = m->stop;
    pthread_mutex_unlock(&m->mu);
    return stop;
}

/* The lease is gone (etcd said so): lead nothing, and join again. */
static void rejoin(fy_member *m)
{
    fy_lease *l = NULL;

    pthread_mutex_lock(&m->mu);
    for (unsigned i = 0; i < m->nchans; i++)
        m->chans[i].leading = false;
    pthread_mutex_unlock(&m->mu);
    if (join(m, &l) < 0)
        return; /* the next poll tries again */
    pthread_mutex_lock(&m->mu);
    fy_lease *old = m->lease;
    m->lease = l;
    for (unsigned i = 0; i < m->nchans; i++)
        m->chans[i].published = false;
    pthread_mutex_unlock(&m->mu);
    fy_lease_stop(old, false);
    fy_klog(FY_LOG_INFO, "cluster member rejoined", "node=%s lease=%lld", m->node,
            (long long)fy_lease_id(l));
}

/* Serve every channel listed under PREFIX/channels/ (so a node learns of
 * channels created on others and replicates them all: docs/cluster.md,
 * "Followers").  A channel name the relay would refuse is skipped. */
static void discover(fy_member *m)
{
    char k[KEY_MAX];
    fy_etcd_kv *kvs;
    size_t n;

    snprintf(k, sizeof k, "%s/channels/", m->prefix);
    if (fy_etcd_list(m->etcd, k, &kvs, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *name = kvs[i].key + strlen(k);
        if (name[0] && strlen(name) <= FY_NAME_MAX && !strchr(name, '/')) {
            pthread_mutex_lock(&m->mu);
            if (!find(m, name) && m->nchans < CHANS_MAX)
                snprintf(m->chans[m->nchans++].name, sizeof m->chans[0].name, "%s", name);
            pthread_mutex_unlock(&m->mu);
        }
        fy_etcd_kv_free(&kvs[i]);
    }
    free(kvs);
}

static void *run(void *arg)
{
    fy_member *m = arg;

    do {
        unsigned n;
        if (fy_lease_lost(m->lease))
            rejoin(m);
        discover(m);
        pthread_mutex_lock(&m->mu);
        n = m->nchans;
        pthread_mutex_unlock(&m->mu);
        for (unsigned i = 0; i < n && !fy_lease_lost(m->lease); i++)
            poll_chan(m, i);
    } while (!nap(m, m->poll_ms));
    return NULL;
}

/* ---- the relay's side ------------------------------------------------------------ */

static int copy(char *dst, size_t cap, const char *src)
{
    return src && strlen(src) < cap ? (snprintf(dst, cap, "%s", src), 0) : -EINVAL;
}

static void destroy(fy_member *m)
{
    fy_etcd_close(m->etcd);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m->chans);
    free(m);
}

int fy_member_start(const fy_member_conf *c, fy_member **out)
{
    fy_member *m = calloc(1, sizeof *m);
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    m->ttl_s = c->ttl_s;
    m->r = c->r;
    m->poll_ms = c->poll_ms ? c->poll_ms : (unsigned)c->ttl_s * 1000u / 8u;
    m->changed = c->changed;
    m->progress = c->progress;
    m->arg = c->arg;
    m->chans = calloc(CHANS_MAX, sizeof *m->chans);
    rc = m->chans ? 0 : -ENOMEM;
    if (rc == 0)
        rc = copy(m->endpoints, sizeof m->endpoints, c->endpoints) |
             copy(m->prefix, sizeof m->prefix, c->prefix ? c->prefix : FY_CLUSTER_PREFIX_DEFAULT) |
             copy(m->node, sizeof m->node, c->node) |
             copy(m->advertise, sizeof m->advertise, c->advertise);
    if (rc == 0 && (!fy_node_name_ok(m->node) || c->ttl_s < 2 || c->r == 0 ||
                    c->r > FY_CLUSTER_NODES_MAX))
        rc = -EINVAL;
    if (rc == 0)
        rc = fy_etcd_open(m->endpoints, m->ttl_s * 1000 / 3, &m->etcd);
    if (rc == 0)
        rc = join(m, &m->lease);
    if (rc == 0 && (rc = -pthread_create(&m->thread, NULL, run, m)) < 0)
        fy_lease_stop(m->lease, true);
    if (rc < 0) {
        destroy(m);
        return rc < 0 ? rc : -EINVAL;
    }
    *out = m;
    return 0;
}

void fy_member_stop(fy_member *m, bool crash)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    fy_lease_stop(m->lease, !crash);
    destroy(m);
}

/* The slot of chan, under mu; NULL when not served. */
static slot *find(fy_member *m, const char *chan)
{
    for (unsigned i = 0; i < m->nchans; i++)
        if (strcmp(m->chans[i].name, chan) == 0)
            return &m->chans[i];
    return NULL;
}

int fy_member_serve(fy_member *m, const char *chan)
{
    int rc = 0;

    if (!chan[0] || strlen(chan) > FY_NAME_MAX || strchr(chan, '/'))
        return -EINVAL;
    pthread_mutex_lock(&m->mu);
    if (!find(m, chan)) {
        if (m->nchans == CHANS_MAX) {
            rc = -ENOSPC;
        } else {
            snprintf(m->chans[m->nchans++].name, sizeof m->chans[0].name, "%s", chan);
            /* Poll now, or again at once when a poll is under way (not for
             * a channel already served: every hello would be a poll). */
            m->kick = true;
            pthread_cond_signal(&m->cv);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int fy_member_set_insync(fy_member *m, const char *chan, const char *node, bool in)
{
    int rc = 0;

    if (!fy_node_name_ok(node))
        return -EINVAL;
    pthread_mutex_lock(&m->mu);
    slot *s = find(m, chan);
    if (!s || !s->leading)
        rc = -EPERM;
    else if (m->nreqs == REQS_MAX)
        rc = -ENOSPC;
    else {
        isr_req *q = &m->reqs[m->nreqs++];
        q->chan = (unsigned)(s - m->chans);
        snprintf(q->node, sizeof q->node, "%s", node);
        q->in = in;
        pthread_cond_signal(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int fy_member_bump(fy_member *m, const char *chan, uint64_t epoch)
{
    int rc = 0;

    pthread_mutex_lock(&m->mu);
    slot *s = find(m, chan);
    if (!s || !s->leading || s->st.epoch != epoch) {
        rc = -EPERM;
    } else {
        s->bump_from = epoch;
        m->kick = true;
        pthread_cond_signal(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

bool fy_member_may_ack(fy_member *m, const char *chan, uint64_t epoch, uint64_t now_ns)
{
    bool ok;

    pthread_mutex_lock(&m->mu);
    slot *s = find(m, chan);
    ok = s && s->leading && s->st.epoch == epoch && s->st.nisr >= s->st.r &&
         s->seen <= epoch && fy_lease_held(m->lease, now_ns);
    pthread_mutex_unlock(&m->mu);
    return ok;
}

void fy_member_saw_epoch(fy_member *m, const char *chan, uint64_t epoch)
{
    pthread_mutex_lock(&m->mu);
    slot *s = find(m, chan);
    if (s && epoch > s->seen) {
        s->seen = epoch;
        m->kick = true; /* read the state now rather than at the next poll */
        pthread_cond_signal(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
}

int fy_member_state(fy_member *m, const char *chan, fy_chanstate *st)
{
    int rc = -ENOENT;

    pthread_mutex_lock(&m->mu);
    slot *s = find(m, chan);
    if (s && s->known) {
        *st = s->st;
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

uint64_t fy_member_failovers(fy_member *m)
{
    return atomic_load(&m->failovers);
}

/* Copy slot s out, under mu. */
/* held: this node's lease is held now.  A leader whose lease ran out (cut
 * off from etcd) cannot tell who leads: it says so (known, no leader), so
 * the writer fences and clients go on to another relay of their list. */
static void lead_copy(const slot *s, bool held, fy_member_lead *out)
{
    memset(out, 0, sizeof *out);
    out->known = s->known;
    out->leading = s->known && s->leading && held;
    if (!s->known)
        return;
    out->epoch = s->st.epoch;
    if (s->leading && !held)
        return;
    snprintf(out->leader, sizeof out->leader, "%s", s->st.leader);
    snprintf(out->addr, sizeof out->addr, "%s", s->addr);
}

int fy_member_lead_of(fy_member *m, const char *chan, fy_member_lead *out)
{
    int rc = -ENOENT;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->mu);
    slot *s = find(m, chan);
    if (s) {
        lead_copy(s, fy_lease_held(m->lease, fy_now_ns()), out);
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int fy_member_lead_at(fy_member *m, unsigned i, char *chan, size_t cap, fy_member_lead *out)
{
    int rc = -ENOENT;

    pthread_mutex_lock(&m->mu);
    if (i < m->nchans) {
        snprintf(chan, cap, "%s", m->chans[i].name);
        lead_copy(&m->chans[i], fy_lease_held(m->lease, fy_now_ns()), out);
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

bool fy_member_lease_held(fy_member *m, uint64_t now_ns)
{
    pthread_mutex_lock(&m->mu); /* the member thread replaces the lease under it */
    bool held = fy_lease_held(m->lease, now_ns);
    pthread_mutex_unlock(&m->mu);
    return held;
}

const char *fy_member_node(const fy_member *m)
{
    return m->node;
}
