/*
 * fwd_replica.c - a forwarder whose receiver is a cluster follower (hello
 * flag FY_HELLO_F_REPLICA, docs/cluster.md "Replication"): the welcome's
 * replica fields, the follower's replica-stored reports handed to the
 * channel's writer (actors/writer_isr.c counts them toward acks), and the
 * end of the connection when this relay stops leading the channel.
 * Everything here runs on the forwarder's turn.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "forwarder_int.h"
#include "msg.h"

/* Where the follower's log must end before it follows (COMMON decision 3):
 * where its last epoch ends in this log's history, capped by the log's
 * end; 0 when it holds nothing at or past that (or nothing at all). */
static uint64_t replica_trunc(const fwd *f)
{
    if (!f->rep_last_epoch)
        return 0;
    uint64_t limit = fy__chan_valid_below(f->chan, f->rep_last_epoch);
    if (limit > f->end_seq)
        limit = f->end_seq;
    return f->rep_log_next > limit ? limit : 0;
}

void fy__fwd_welcome_ext(const fwd *f, fy_welcome *w)
{
    if (f->hflags & (FY_HELLO_F_AHEAD | FY_HELLO_F_REPLICA)) {
        fy_epoch cur = fy__chan_epoch_cur(f->chan);
        w->ext = w->ext2 = true;
        w->epoch = cur.id;
        w->epoch_seq = cur.start_seq;
        w->wflags = f->wflags;
    }
    if (f->hflags & FY_HELLO_F_REPLICA) {
        w->ext4 = true;
        w->cepoch = f->rep_cepoch;
        w->trunc_seq = replica_trunc(f);
    }
}

void fy__fwd_replica_join(fwd *f)
{
    if (!(f->hflags & FY_HELLO_F_REPLICA))
        return;
    fy__replica_join *j = calloc(1, sizeof *j);
    if (!j) {
        fy_klog(FY_LOG_WARN, "malloc failed", "what=replica_join peer=%s channel=%s "
                "action=\"its reports count for nothing: it never joins the in-sync set\"",
                f->peer, f->chan->name);
        return;
    }
    j->fwd = f->self;
    j->cepoch = f->rep_cepoch;
    snprintf(j->node, sizeof j->node, "%s", f->client);
    if (fy__msg_replica_join(f->chan->writer, j) < 0)
        free(j);
}

int fy__fwd_replica_stored(fwd *f, const fy_frame *fr)
{
    fy_replica_stored r;
    bool replica = f->hflags & FY_HELLO_F_REPLICA;

    if (!replica || fy_replica_stored_decode(fr->payload, fr->hdr.len, &r) < 0) {
        fy__fwd_fail(f, FY_EPROTO, "replica-stored frame %s",
                     replica ? "malformed" : "from a receiver that is not a replica");
        return 1;
    }
    /* The writer checks the epoch (another one's report is dropped) and
     * the seq against what it stored. */
    fy__msg_replica_stored(f->chan->writer, f->self, r.cepoch, r.seq);
    return 0;
}

void fy__fwd_fence(fwd *f, int code)
{
    fy_member_lead l = {0};

    if (f->st == F_CLOSING)
        return;
    if (f->ctx->member)
        (void)fy_member_lead_of(f->ctx->member, f->chan->name, &l);
    f->st = f->st == F_SUBSCRIBING || f->st == F_LOOKUP ? F_LIVE : f->st;
    fy__fwd_fail(f, code, "leader=%s addr=%s epoch=%llu", l.leading ? "" : l.leader,
                 l.leading ? "" : l.addr, (unsigned long long)l.epoch);
}
