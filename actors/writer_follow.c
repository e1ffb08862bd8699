/*
 * writer_follow.c - a channel's writer in a cluster: lead the channel, or
 * follow its leader (docs/cluster.md, "Followers").
 *
 * The replica manager (actors/replica.c) tells the writer, on every change
 * the member sees, what this node is for the channel (FY_RM_FOLLOW).  A
 * follower's writer gives its sender slot to a replica link
 * (upstream_replica.c) pointed at the leader, exactly as an edge's writer
 * gives it to its mirror: the frames pass the same checks and are stored,
 * indexed and forwarded as a local sender's.  A change of leader or epoch
 * ends the link and starts a new one once it has detached.  A local
 * sender that is attached when this node stops leading is told to go (its
 * client reconnects and is redirected); one that asks while this node
 * follows is refused with FY_ESHUTDOWN (try again: the next hello is
 * redirected).  When this node becomes the leader the link ends at once
 * and local senders get the slot; the writer kept the file in progress
 * and its SHA-256 across senders, so a sender continues it as after a
 * relay restart.
 * Everything here runs on the writer's turn.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "msg.h"
#include "writer_int.h"

bool fy__writer_following(const fy__writer *w)
{
    return w->follow && !w->follow->leading;
}

bool fy__writer_not_leading(const fy__writer *w)
{
    return w->ctx->member && (!w->follow || !w->follow->leading || !w->lead_ready);
}

/* This node leads in epoch E: its epochs table gets (E, log's next seq),
 * unless E is there already from an earlier opening of the log -- then
 * the member moves the channel to E + 1 first, so one epoch id never spans
 * two openings (a restarted leader may have lost a tail its followers
 * hold), and local senders wait for that. */
static void lead(fy__writer *w, uint64_t epoch)
{
    fy_epoch cur = fy__chan_epoch_cur(w->chan);

    if (w->lead_epoch == epoch)
        return;
    if (cur.id == epoch) {
        w->lead_ready = false;
        if (fy_member_bump(w->ctx->member, w->chan->name, epoch) == 0)
            fy_klog(FY_LOG_INFO, "cluster epoch bump asked", "channel=%s epoch=%llu "
                    "reason=\"log reopened while leading\"", w->chan->name,
                    (unsigned long long)epoch);
        return;
    }
    (void)fy__chan_epoch_add(w->chan, epoch, fy_log_next_seq(w->log));
    w->lead_epoch = epoch;
    w->lead_ready = true;
    if (w->lead_hold)
        fy__writer_attach(w, fy__writer_lead_take(w));
}

bool fy__writer_lead_hold(fy__writer *w, fy__attach_req *r)
{
    fy_member_lead l;

    if (!fy__writer_not_leading(w) || w->lead_hold || fy__writer_following(w) ||
        fy_member_lead_of(w->ctx->member, w->chan->name, &l) < 0 || !l.leading)
        return false;
    w->lead_hold = r;
    return true;
}

fy__attach_req *fy__writer_lead_take(fy__writer *w)
{
    fy__attach_req *r = w->lead_hold;

    w->lead_hold = NULL;
    return r;
}

void fy__writer_follow_start(fy__writer *w)
{
    fy_actor *up;

    if (!w->follow || w->sender || w->shutting || w->store_failed || w->rewind)
        return;
    if (w->cut_to) /* the link has left: the channel closes to cut (idle_check) */
        return;
    if (w->follow->leading) { /* the replica link has left: its frames are stored */
        lead(w, w->follow->epoch);
        return;
    }
    int rc = fy__upstream_new_replica(w->ctx, w->chan, w->self, fy_log_first_seq(w->log),
                                      fy_log_next_seq(w->log), w->part_seq, w->follow, &up);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "cannot follow the channel's leader", "channel=%s err=%s",
                w->chan->name, fy_errname(rc));
        return;
    }
    w->sender = w->upstream = up;
    w->follow_epoch = w->follow->epoch;
    snprintf(w->follow_addr, sizeof w->follow_addr, "%s", w->follow->addr);
}

static void follow(fy__writer *w, fy__follow *f)
{
    free(w->follow);
    w->follow = f;
    if (!w->log || w->shutting)
        return; /* closed or closing: the next opening is told again */
    fy_klog(FY_LOG_INFO, f->leading ? "cluster channel led here" : "cluster channel followed",
            "channel=%s leader=%s addr=%s epoch=%llu next_seq=%llu", w->chan->name, f->leader,
            f->addr[0] ? f->addr : "-", (unsigned long long)f->epoch,
            (unsigned long long)fy_log_next_seq(w->log));
    if (!f->leading && w->lead_hold) /* refused now: redirected when it asks again */
        fy__writer_attach(w, fy__writer_lead_take(w));
    if (w->upstream) {
        /* The link follows another leader or epoch, or none: it leaves (at
         * once), and a new one starts when it has detached. */
        if (!f->leading && w->follow_epoch == f->epoch && !strcmp(w->follow_addr, f->addr))
            return;
        fy__msg_shutdown(w->upstream);
        return;
    }
    if (f->leading) {
        lead(w, f->epoch);
        return;
    }
    w->lead_ready = false;
    w->lead_epoch = 0;
    /* Receivers of the leader this node was reconnect and are redirected,
     * also when the fence already sent its sender away (else they stayed,
     * kept the channel open and its diverged tail uncut: test_ns_sigstop). */
    for (size_t i = 0; i < w->nfwd; i++) {
        fy__msg_shutdown(w->fwd[i]);
        fy__msg_drain_cut(w->fwd[i]);
    }
    if (w->sender) { /* a local sender of the leader this node was: it goes */
        fy__msg_shutdown(w->sender);
        return;
    }
    fy__writer_follow_start(w);
}

/* ---- the divergence cut --------------------------------------------------- */

/* The replica link found that the log holds frames the leader's history
 * does not, from seq on.  Once the link has detached (it leaves right
 * after this), the channel closes as soon as nothing else uses it -- the
 * replica manager's lease does not count -- and is cut after the log is
 * closed (fy_store_cut): recovery runs on the cut log when the manager
 * opens the channel again, and the writer of that opening follows from
 * the new end.  No client uses a follower's channel (clients are
 * redirected), so nobody sees frames go away. */
static void cut_ask(fy__writer *w, uint64_t seq, bool restart)
{
    if (!seq || w->shutting || (w->cut_to && !restart && w->cut_to <= seq))
        return;
    w->cut_to = seq;
    w->cut_restart = restart;
    fy_klog(FY_LOG_WARN, restart ? "channel closing to start its log again" : "channel closing "
            "to cut a diverged tail", "channel=%s cut_seq=%llu next_seq=%llu action=\"close, cut "
            "the log, open and follow again\"",
            w->chan->name, (unsigned long long)seq, (unsigned long long)fy_log_next_seq(w->log));
    fy__writer_idle_check(w); /* the link may have left already: nothing else would look */
}

void fy__writer_cluster_msg(fy__writer *w, fy_msg *m)
{
    if (m->type == FY_RM_FOLLOW)
        follow(w, m->ptr);
    else if (m->type == FY_RM_CUT && w->log)
        cut_ask(w, m->u64[0], m->u32 == 1);
}

size_t fy__writer_cut_leases(fy__writer *w)
{
    size_t n = 0;

    for (size_t i = 0; w->cut_to && w->follow && i < w->nlease; i++)
        n += w->lease[i] == w->follow->from;
    return n;
}

fy_actor *fy__writer_cut_closed(fy__writer *w)
{
    int rc = w->cut_restart ? fy_store_restart(w->chan->dir, w->cut_to)
                            : fy_store_cut(w->chan->dir, w->cut_to, w->ctx->conf->max_payload);
    if (rc == -ERANGE) /* the whole log lies past the cut: it starts there, empty */
        rc = fy_store_restart(w->chan->dir, w->cut_to);

    fy_klog(rc < 0 ? FY_LOG_ERROR : FY_LOG_WARN, w->cut_restart ? "log emptied to start "
            "again" : "diverged tail cut", "channel=%s cut_seq=%llu result=%s", w->chan->name,
            (unsigned long long)w->cut_to, rc < 0 ? fy_errname(rc) : rc == 1 ? "nothing-to-cut"
                                                                            : "cut");
    return w->follow ? w->follow->from : NULL;
}
