/*
 * fwd_replica.c - the leader's side of a cluster replica link, minimal:
 * a replica hello (FY_HELLO_F_REPLICA) is served as a receiver's, its
 * welcome carries the replica fields (the leader's cluster epoch as the
 * member last read it, trunc_seq 0: no cut is asked for), and the
 * follower's stored reports are checked, and the first one of the
 * leader's epoch puts the follower in the in-sync set (so it may take over
 * when the leader dies; nothing takes it out again here).
 * The leader's real side (holding acks for the in-sync replicas, trunc_seq
 * from the epochs, fencing) replaces this file (issue 19, h-acks).
 */
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "forwarder_int.h"

void fy__fwd_replica_welcome(fwd *f, fy_welcome *w)
{
    fy_member_lead l;

    if (!f->ctx->member || fy_member_lead_of(f->ctx->member, f->chan->name, &l) < 0 ||
        !l.epoch)
        return; /* not in a cluster: a receiver's welcome */
    w->ext4 = true;
    w->cepoch = l.epoch;
    w->trunc_seq = 0;
}

int fy__fwd_replica_stored(fwd *f, const fy_frame *fr)
{
    fy_replica_stored r;

    if (!(f->hflags & FY_HELLO_F_REPLICA) || fy_replica_stored_decode(fr->payload, fr->hdr.len,
                                                                      &r) < 0) {
        fy__fwd_fail(f, FY_EPROTO, "replica-stored frame on a connection that is no replica's");
        return 1;
    }
    fy_member_lead l;
    if (!f->replica_in && f->ctx->member && f->client[0] &&
        fy_member_lead_of(f->ctx->member, f->chan->name, &l) == 0 && l.leading &&
        l.epoch == r.cepoch && fy_member_set_insync(f->ctx->member, f->chan->name, f->client,
                                                    true) == 0)
        f->replica_in = true;
    fy_klog(FY_LOG_DEBUG, "replica stored", "channel=%s replica=%s cepoch=%llu seq=%llu",
            f->chan->name, f->client, (unsigned long long)r.cepoch, (unsigned long long)r.seq);
    return 0;
}
