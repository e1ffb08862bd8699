/*
 * session_lead.c - the session's cluster step (docs/cluster.md): a hello
 * that names a channel is served only by the relay that leads it.
 *
 * The hello's channel is served in the member (fy_member_serve), whose own
 * thread reads its state from etcd; a channel nobody leads yet gets this
 * relay as its leader there.  The session never waits on etcd: it reads
 * the member's copy, and while the channel's state is not known yet (the
 * member has not polled since serve) it looks again every LEAD_RETRY_MS,
 * for at most the lease TTL.  A channel another relay leads is answered
 * with an FY_ENOTLEADER error frame whose text names the leader, its
 * advertised address and epoch; the client connects there (src/cli/retry.c).
 */
#include <errno.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/sched.h"
#include "session_int.h"

#define LEAD_RETRY_MS 10

/* A follower's replica hello (FY_HELLO_F_REPLICA) on a channel this relay
 * leads: the connection belongs to this epoch (COMMON: fencing).  A
 * follower that has seen a newer epoch in etcd knows this relay is stale:
 * it is refused FY_ESTALE, and the member acknowledges nothing more in the
 * old epoch (fy_member_saw_epoch) and reads the state again at once. */
static void replica(session *s, const fy_member_lead *l)
{
    if (s->hello.cepoch > l->epoch) {
        fy_member_saw_epoch(s->ctx->member, s->hello.channel, s->hello.cepoch);
        fy_klog(FY_LOG_WARN, "cluster replica names a newer epoch", "channel=%s node=%s "
                "epoch=%llu peer_epoch=%llu action=\"acknowledge nothing more in epoch %llu, "
                "refuse the replica\"", s->hello.channel, s->hello.client,
                (unsigned long long)l->epoch, (unsigned long long)s->hello.cepoch,
                (unsigned long long)l->epoch);
        fy__session_fail(s, FY_ESTALE, "leader=%s epoch=%llu: the follower has seen epoch %llu; "
                         "this relay may be stale", fy_member_node(s->ctx->member),
                         (unsigned long long)l->epoch, (unsigned long long)s->hello.cepoch);
        return;
    }
    s->rep_cepoch = l->epoch;
    fy__session_ask_chan(s);
}

void fy__session_lead(session *s)
{
    fy_member *m = s->ctx->member;
    fy_member_lead l;
    uint64_t now = fy_now_ns();
    int rc;

    if (!s->lead_t0) {
        s->lead_t0 = now;
        rc = fy_member_serve(m, s->hello.channel);
        if (rc < 0) {
            fy__session_fail(s, rc == -ENOSPC ? FY_ELIMIT : FY_EINTERNAL,
                             "cluster: cannot serve channel %s: %s", s->hello.channel,
                             rc == -ENOSPC ? "too many channels in the member"
                                           : fy_strerror(rc));
            return;
        }
    }
    (void)fy_member_lead_of(m, s->hello.channel, &l);
    if (l.leading && (s->hello.flags & FY_HELLO_F_REPLICA)) {
        replica(s, &l);
        return;
    }
    if (l.leading) {
        fy__session_ask_chan(s);
        return;
    }
    /* This node named as leader but not leading: its lease was lost and it
     * is joining again; no address yet: the next poll reads it.  Both are
     * worth a wait, a redirect to itself or to nowhere is not. */
    bool settled = l.known && l.addr[0] && strcmp(l.leader, fy_member_node(m)) != 0;
    /* Known but nobody named: this node's lease ran out while it led (cut
     * off from etcd).  Waiting would only hold the client from the relays
     * that can still reach etcd: it is told at once. */
    bool lost = l.known && !l.leader[0];
    if (!settled && !lost && now - s->lead_t0 < s->ctx->conf->cluster_ttl * 1000000000ull) {
        s->st = S_WAIT_LEAD;
        fy_timer_after(s->self, LEAD_RETRY_MS, FY__TM_LEAD);
        return;
    }
    s->st = S_HELLO; /* the error frame ends it from here, as any refusal */
    fy__session_fail_as(s, FY_ENOTLEADER, settled ? "redirected to the channel's leader"
                                                  : "channel's leader unknown",
                        "leader=%s addr=%s epoch=%llu", l.known ? l.leader : "",
                        settled ? l.addr : "", (unsigned long long)l.epoch);
}
