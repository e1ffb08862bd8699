/*
 * writer_isr.c - a cluster leader's channel writer and its followers
 * (docs/cluster.md, "Acknowledgements"): what each follower reported
 * storing, the in-sync set kept in etcd, the acks that wait for it, and
 * the fence when this relay stops leading.
 *
 * Followers connect as receivers with FY_HELLO_F_REPLICA; their forwarders
 * announce them (FY_RM_REPLICA_JOIN) and hand over each replica-stored
 * frame (FY_RM_REPLICA_STORED).  A connection belongs to the epoch it was
 * welcomed in; a report of another epoch is dropped (logged once per
 * follower).  With --acks all a file-end's ack waits (writer_durable.c
 * asks fy__isr_ack_ok) until every in-sync member other than this node
 * reported its seq in the current epoch and fy_member_may_ack says yes:
 * checked again on every report, every change of the set and on a timer
 * while acks wait.
 *
 * The set itself: a follower whose report reaches the durable end of the
 * log is put in (fy_member_set_insync, applied by the member's next poll);
 * one that has not caught up for replica-lag, or whose connection has been
 * gone that long, is taken out.  "Caught up" is judged as Kafka does: the
 * log's last seq is marked with the time; a report that reaches the mark
 * means the follower was caught up at that time.
 *
 * Fencing: once the member says this relay does not lead the channel in
 * the writer's epoch (its lease ran out, or another node took over), no
 * ack goes out any more, the replica connections are ended with
 * FY_ENOTLEADER and the sender hears FY_ENOTLEADER (it reconnects and is
 * redirected).
 * Everything here runs on the writer's turn.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/io.h"
#include "cluster/cltrace.h"
#include "isr_stats.h"
#include "msg.h"
#include "writer_int.h"

#define TICK_WAIT_MS 20   /* the timer while acks wait (lease and set changes) */
#define TICK_MAX_MS 1000  /* otherwise: replica-lag / 4, at most this */
#define ASK_AGAIN_MS 2000 /* an in-sync change not seen in etcd by then is asked again */
#define REPS_MAX (4 * FY_CLUSTER_NODES_MAX) /* followers tracked per channel */

typedef struct rep {
    char node[FY_CLIENT_MAX + 1];
    fy_actor *fwd;      /* its replica connection (compare only; NULL: none) */
    uint64_t cepoch;    /* the epoch that connection belongs to */
    bool reported;      /* seq holds a report of the writer's epoch */
    uint64_t seq;       /* stored up to here, inclusive */
    uint64_t mark_seq, mark_ns; /* the last seq of the log when marked, and when */
    uint64_t caught_ns; /* when it was last known caught up */
    uint64_t gone_ns;   /* when its connection went (0: connected) */
    bool asked, ask_in; /* an in-sync change asked of the member, not yet seen */
    uint64_t asked_ns;
    const char *why;    /* the reason for that change, for the log line */
    bool other_logged;  /* a report of another epoch was logged */
} rep;

struct fy__isr {
    rep *v;
    size_t n, cap;
    uint64_t epoch;     /* the epoch this writer leads in (0: not known yet) */
    bool fenced;        /* it no longer does: nothing is acked */
    bool armed;         /* the timer is set */
    fy_chanstate st;    /* the set as last seen (for the change lines) */
    bool st_known;
    uint64_t waiting;   /* acks held for the replicas at the last look */
};

/* ---- the followers -------------------------------------------------------- */

static uint64_t ns_of_ms(uint64_t ms)
{
    return ms * 1000000ull;
}

static rep *find(struct fy__isr *s, const char *node)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].node, node) == 0)
            return &s->v[i];
    return NULL;
}

static rep *add(struct fy__isr *s, const char *node, uint64_t now)
{
    rep *r = find(s, node);
    if (r)
        return r;
    if (s->n == REPS_MAX)
        return NULL; /* names beyond a cluster's worth: not tracked, never in sync */
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        rep *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return NULL;
        s->v = v;
        s->cap = cap;
    }
    r = &s->v[s->n++];
    *r = (rep){.caught_ns = now, .mark_ns = now, .gone_ns = now};
    snprintf(r->node, sizeof r->node, "%s", node);
    return r;
}

/* The writer's isr state, made on first use (cluster mode only). */
static struct fy__isr *state(fy__writer *w)
{
    if (!w->ctx->member)
        return NULL;
    if (!w->isr)
        w->isr = calloc(1, sizeof *w->isr);
    return w->isr;
}

/* The log's last seq (0: empty) and its durable last seq. */
static uint64_t last_seq(const fy__writer *w)
{
    return fy_log_next_seq(w->log) - 1;
}

static uint64_t durable_last(const fy__writer *w)
{
    uint64_t d = fy_log_durable_seq(w->log);
    return d ? d - 1 : 0;
}

/* Did it reach the mark?  Then it was caught up when the mark was set;
 * mark the log's end now. */
static void probe(const fy__writer *w, rep *r, uint64_t now)
{
    if (!r->reported || r->seq < r->mark_seq)
        return;
    r->caught_ns = r->mark_ns;
    r->mark_seq = last_seq(w);
    r->mark_ns = now;
}

/* ---- the epoch and the fence ------------------------------------------------ */

static void fence(fy__writer *w, struct fy__isr *s, const fy_member_lead *l)
{
    s->fenced = true;
    fy_klog(FY_LOG_WARN, "cluster leader fenced", "channel=%s epoch=%llu leader=%s "
            "leader_epoch=%llu acks_waiting=%llu action=\"acknowledge nothing more, end the "
            "replica connections and the sender (they reconnect and are redirected)\"",
            w->chan->name, (unsigned long long)s->epoch, l->known ? l->leader : "-",
            (unsigned long long)l->epoch, (unsigned long long)s->waiting);
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].fwd)
            fy__msg_fence(s->v[i].fwd, FY_ENOTLEADER);
    s->n = 0;
    s->waiting = 0;
    fy__writer_wb_clear(w);
    if (w->sender && !w->upstream)
        fy__msg_store_err(w->sender, FY_ENOTLEADER, fy_log_next_seq(w->log));
}

/* Follow the member: learn the epoch this writer leads in, fence when that
 * is over.  True while it leads. */
static bool leads(fy__writer *w, struct fy__isr *s)
{
    fy_member_lead l;

    if (fy_member_lead_of(w->ctx->member, w->chan->name, &l) < 0 || !l.known)
        return !s->fenced && s->epoch;
    if (l.leading && (l.epoch > s->epoch || (s->fenced && l.epoch == s->epoch))) {
        /* First look, leading again after a fence, or the member moved the
         * channel to a new epoch while this node leads it (a log reopened
         * while leading: writer_follow.c): acks count reports of it only.
         * The same epoch after a fence: the lease lapsed (renewals late, or
         * etcd out of reach) and is held again with nobody else elected, so
         * this node may lead that epoch again (may_ack checks the lease at
         * every ack).  Before, a lapse fenced it for good: it never managed
         * the in-sync set nor acked again (test_acks under TSan in CI). */
        if (s->epoch)
            fy_klog(FY_LOG_INFO, "cluster leader epoch", "channel=%s epoch=%llu was=%llu "
                    "fenced=%s", w->chan->name, (unsigned long long)l.epoch,
                    (unsigned long long)s->epoch, s->fenced ? "yes" : "no");
        s->epoch = l.epoch;
        s->fenced = false;
    } else if (!s->fenced && s->epoch && !l.leading) {
        fence(w, s, &l);
    }
    return !s->fenced && s->epoch;
}

/* ---- the in-sync set ------------------------------------------------------------ */

static void join_list(const fy_chanstate *st, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (unsigned i = 0; i < st->nisr && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", st->isr[i]);
}

/* One line for each node that came into or left the set since last seen. */
static void log_changes(fy__writer *w, struct fy__isr *s, const fy_chanstate *st)
{
    char list[FY_CLUSTER_NODES_MAX * (FY_NODE_NAME_MAX + 1) + 1];
    const fy_chanstate *old = &s->st;

    join_list(st, list, sizeof list);
    for (int pass = 0; s->st_known && pass < 2; pass++) {
        const fy_chanstate *a = pass ? old : st, *b = pass ? st : old;
        for (unsigned i = 0; i < a->nisr; i++) {
            if (fy_chanstate_in_isr(b, a->isr[i]))
                continue;
            rep *r = find(s, a->isr[i]);
            bool mine = r && r->asked && r->ask_in == !pass;
            fy_klog(FY_LOG_INFO, "cluster in-sync set", "channel=%s node=%s in=%s reason=%s "
                    "isr=%s epoch=%llu r=%u", w->chan->name, a->isr[i], pass ? "no" : "yes",
                    mine ? r->why : "etcd", list, (unsigned long long)st->epoch, st->r);
        }
    }
    for (size_t i = 0; i < s->n; i++) /* asked and done */
        if (s->v[i].asked && fy_chanstate_in_isr(st, s->v[i].node) == s->v[i].ask_in)
            s->v[i].asked = false;
    s->st = *st;
    s->st_known = true;
}

static void ask(fy__writer *w, rep *r, bool in, const char *why, uint64_t now)
{
    if (r->asked && r->ask_in == in && now - r->asked_ns < ns_of_ms(ASK_AGAIN_MS))
        return;
    int rc = fy_member_set_insync(w->ctx->member, w->chan->name, r->node, in);
    if (rc < 0) {
        fy_klog(FY_LOG_WARN, "fy_member_set_insync failed", "channel=%s node=%s in=%s err=%s "
                "action=\"ask again at the next tick\"", w->chan->name, r->node, in ? "yes" : "no",
                fy_errname(rc));
        return;
    }
    r->asked = true;
    r->ask_in = in;
    r->asked_ns = now;
    r->why = why;
    fy_cltrace_isr_ask(w->ctx->sched, w->chan->name, w->isr ? w->isr->epoch : 0, r->node, in,
                       why);
}

/* Put caught-up followers in, take lagging or gone ones out. */
static void manage(fy__writer *w, struct fy__isr *s, const fy_chanstate *st, uint64_t now)
{
    uint64_t lag = ns_of_ms(fy_conf_replica_lag_ms(w->ctx->conf));
    const char *self = fy_member_node(w->ctx->member);

    for (unsigned i = 0; i < st->nisr; i++) /* members with no connection yet count as gone */
        if (strcmp(st->isr[i], self) != 0)
            (void)add(s, st->isr[i], now);
    for (size_t i = 0; i < s->n; i++) {
        rep *r = &s->v[i];
        bool in = fy_chanstate_in_isr(st, r->node);
        probe(w, r, now);
        if (in && r->gone_ns && now - r->gone_ns > lag)
            ask(w, r, false, "gone", now);
        else if (in && !r->gone_ns && now - r->caught_ns > lag)
            ask(w, r, false, "lagging", now);
        else if (!in && !r->gone_ns && r->reported && r->seq >= durable_last(w))
            ask(w, r, true, "caught-up", now);
    }
}

/* ---- acknowledgements ------------------------------------------------------------- */

bool fy__isr_gating(const fy__writer *w)
{
    return w->ctx->member && fy_conf_acks_all(w->ctx->conf) && !w->upstream && !w->mirrored;
}

bool fy__isr_ack_ok(fy__writer *w, uint64_t seq)
{
    struct fy__isr *s = state(w);
    fy_chanstate st;

    if (!fy__isr_gating(w))
        return true;
    if (!s || !leads(w, s) || fy_member_state(w->ctx->member, w->chan->name, &st) < 0 ||
        !fy_member_may_ack(w->ctx->member, w->chan->name, s->epoch, fy_now_ns()))
        return false;
    /* The set checked is the one counted: may_ack read the member's state
     * again, which may have changed since st was copied. */
    const char *self = fy_member_node(w->ctx->member);
    if (st.epoch != s->epoch || st.nisr < st.r || strcmp(st.leader, self) != 0)
        return false;
    for (unsigned i = 0; i < st.nisr; i++) {
        if (strcmp(st.isr[i], self) == 0)
            continue;
        rep *r = find(s, st.isr[i]);
        if (!r || !r->reported || r->cepoch != s->epoch || r->seq < seq)
            return false;
    }
    return true;
}

bool fy__isr_attach_ok(fy__writer *w)
{
    if (!fy__isr_gating(w) || !w->log)
        return true;
    /* What the welcome vouches for: the files before the one in progress
     * (that one the sender continues; its tail may be unsynced). */
    uint64_t upto = w->part_seq ? w->part_seq - 1 : last_seq(w);
    if (upto == 0)
        return true;
    if (w->ctx->conf->fsync_mode == FY_FSYNC_FILE_END && durable_last(w) < upto)
        return false;
    return fy__isr_ack_ok(w, upto);
}

void fy__isr_waiting(fy__writer *w, uint64_t n)
{
    struct fy__isr *s = w->isr;
    if (!s)
        return;
    s->waiting = n;
    if (n)
        fy__isr_watch(w);
}

/* ---- messages and the timer ----------------------------------------------------- */

void fy__isr_watch(fy__writer *w)
{
    struct fy__isr *s = state(w);
    uint64_t ms = fy_conf_replica_lag_ms(w->ctx->conf) / 4;

    if (!s || s->armed)
        return;
    s->armed = true;
    ms = s->waiting || w->sender || w->attach_hold ? TICK_WAIT_MS
         : ms > TICK_MAX_MS                      ? TICK_MAX_MS
                                                 : ms;
    fy_timer_after(w->self, (uint32_t)ms, FY__TM_ISR);
}

void fy__isr_join(fy__writer *w, fy__replica_join *j)
{
    struct fy__isr *s = state(w);
    uint64_t now = fy_now_ns();
    rep *r = s ? add(s, j->node, now) : NULL;

    if (r) {
        if (r->fwd && r->fwd != j->fwd) /* a newer connection of the same follower wins */
            fy__msg_fence(r->fwd, FY_ESTALE);
        r->fwd = j->fwd;
        r->cepoch = j->cepoch;
        r->gone_ns = 0;
        r->reported = false;
        r->other_logged = false;
        r->mark_seq = last_seq(w);
        r->mark_ns = now;
        fy_klog(FY_LOG_INFO, "cluster replica connected", "channel=%s node=%s epoch=%llu "
                "next_seq=%llu", w->chan->name, r->node, (unsigned long long)j->cepoch,
                (unsigned long long)fy_log_next_seq(w->log));
        fy__isr_watch(w);
    }
    free(j);
}

void fy__isr_stored(fy__writer *w, fy_actor *fwd, uint64_t cepoch, uint64_t seq)
{
    struct fy__isr *s = w->isr;
    rep *r = NULL;

    for (size_t i = 0; s && i < s->n && !r; i++)
        if (s->v[i].fwd == fwd)
            r = &s->v[i];
    if (!r)
        return; /* a connection already replaced or fenced */
    if (!leads(w, s) || cepoch != s->epoch || cepoch != r->cepoch) {
        if (!r->other_logged)
            fy_klog(FY_LOG_WARN, "cluster replica report of another epoch", "channel=%s node=%s "
                    "report_epoch=%llu epoch=%llu seq=%llu action=\"ignore its reports\"",
                    w->chan->name, r->node, (unsigned long long)cepoch,
                    (unsigned long long)s->epoch, (unsigned long long)seq);
        r->other_logged = true;
        return;
    }
    if (seq > last_seq(w))
        seq = last_seq(w); /* it cannot have stored what this log does not hold */
    if (!r->reported || seq > r->seq)
        r->seq = seq;
    r->reported = true;
    probe(w, r, fy_now_ns());
    fy__writer_release(w);
}

void fy__isr_msg(fy__writer *w, fy_msg *m)
{
    if (m->type == FY_RM_REPLICA_JOIN)
        fy__isr_join(w, m->ptr);
    else if (m->type == FY_RM_REPLICA_STORED)
        fy__isr_stored(w, m->ptr, m->u64[0], m->u64[1]);
}

void fy__isr_gone(fy__writer *w, fy_actor *fwd)
{
    struct fy__isr *s = w->isr;

    for (size_t i = 0; s && i < s->n; i++)
        if (s->v[i].fwd == fwd) {
            s->v[i].fwd = NULL;
            s->v[i].gone_ns = fy_now_ns();
            s->v[i].reported = false;
            fy_klog(FY_LOG_INFO, "cluster replica disconnected", "channel=%s node=%s",
                    w->chan->name, s->v[i].node);
        }
}

/* The metrics' copy of the lag of each follower and of the acks waiting. */
static void publish(fy__writer *w, struct fy__isr *s, uint64_t now)
{
    uint64_t last = last_seq(w);

    fy__isrst_chan(w->chan->name, s->waiting);
    for (size_t i = 0; i < s->n; i++) {
        const rep *r = &s->v[i];
        uint64_t frames = !r->reported ? last : r->seq < last ? last - r->seq : 0;
        fy__isrst_node(w->chan->name, r->node, frames, (now - r->caught_ns) / 1000000ull);
    }
}

void fy__isr_tick(fy__writer *w)
{
    struct fy__isr *s = w->isr;
    fy_chanstate st;
    uint64_t now = fy_now_ns();

    if (!s)
        return;
    s->armed = false;
    fy__writer_attach_recheck(w); /* fenced or shutting: a held welcome is refused */
    if (!w->log || !leads(w, s)) {
        /* Not leading: the timer starts again with a replica or a sender,
         * except while only this node's lease is out (no leader named): it
         * looks on, to lead its epoch again when the lease is back. */
        fy_member_lead l;
        if (w->log && s->fenced && fy_member_lead_of(w->ctx->member, w->chan->name, &l) == 0 &&
            l.known && !l.leader[0])
            fy__isr_watch(w);
        return;
    }
    if (fy_member_state(w->ctx->member, w->chan->name, &st) == 0) {
        log_changes(w, s, &st);
        manage(w, s, &st, now);
    }
    fy__writer_release(w);
    publish(w, s, now);
    if (s->n || s->waiting || w->sender || w->attach_hold)
        fy__isr_watch(w);
}

void fy__isr_free(fy__writer *w)
{
    if (!w->isr)
        return;
    fy__isrst_drop(w->chan->name);
    free(w->isr->v);
    free(w->isr);
    w->isr = NULL;
}
