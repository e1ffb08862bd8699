/*
 * upstream_replica.c - a cluster follower's replica link: the upstream
 * actor pointed at the channel's leader (docs/cluster.md, "Followers").
 *
 * A follower mirrors the leader with the edge's machinery (upstream.c, the
 * ingest, the writer's checks) and three differences.  Its seq delta is
 * pinned to 0: a follower's log holds the leader's frames at the leader's
 * seqs, so clients that move to it after a failover resume where they were.
 * Its hello says who it is (FY_HELLO_F_REPLICA, CLIENT = the node name) and
 * what it holds (cepoch, last_epoch, log_next), and a welcome of a leader
 * whose cluster epoch is older than one it has seen is refused (fencing).
 * And it tells the leader what it has stored (FY_FT_REPLICA_STORED) each
 * time the writer credits a batch -- a credit comes when the batch is as
 * durable as --fsync asks (writer_durable.c) -- and every REPORT_MS while
 * connected, so the leader can hold acks for it and measure its lag.
 * Everything here runs on the upstream actor's turn.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sched.h"
#include "upstream_int.h"

void fy__upstream_replica_hello(upstream *u, fy_hello *h)
{
    h->mode = FY_MODE_RESUME;
    h->resume_from = u->local_next;
    h->flags = FY_HELLO_F_AHEAD | FY_HELLO_F_REPLICA | FY_HELLO_F_CLIENT;
    snprintf(h->client, sizeof h->client, "%s", fy_member_node(u->ctx->member));
    h->cepoch = u->cepoch;
    /* The cluster epoch of the log's last frame, from the epochs table
     * (leaders' entries this node recorded, its own as a leader). */
    uint64_t end = u->skip_until ? u->skip_until : u->local_next;
    /* 0: an empty log, or one about to be emptied (replica_seek) */
    h->last_epoch = end > u->first_seq && !u->replica_seek ? fy__chan_epoch_of(u->chan, end - 1)
                                                             : 0;
    h->log_next = end ? end : 1;
    h->epoch = h->last_epoch; /* the receiver-ahead rule reads it (cluster epochs) */
}

bool fy__upstream_replica_welcome(upstream *u, const fy_welcome *w)
{
    if (w->ext4 && w->cepoch < u->cepoch) {
        char why[128];
        snprintf(why, sizeof why, "leader of cluster epoch %llu, older than %llu",
                 (unsigned long long)w->cepoch, (unsigned long long)u->cepoch);
        fy__upstream_lost(u, FY_LOG_WARN, why);
        return false;
    }
    if (w->ext4)
        u->cepoch = w->cepoch;
    uint64_t end = u->skip_until ? u->skip_until : u->local_next;
    bool ahead = w->ext2 && (w->wflags & FY_WELCOME_F_AHEAD);
    uint64_t cut = w->ext4 && w->trunc_seq && w->trunc_seq < end ? w->trunc_seq
                   : ahead ? w->next_seq : 0;
    if (cut) {
        /* The log holds frames the leader's history does not: they are cut
         * before this node follows (KIP-101: to the leader's history, never
         * to a locally cached commit point). */
        fy_klog(FY_LOG_WARN, "replica log diverged from the leader's history", "channel=%s "
                "leader=%s cut_seq=%llu next_seq=%llu cepoch=%llu action=\"cut the log back, "
                "then follow\"", u->name, u->peer, (unsigned long long)cut,
                (unsigned long long)end, (unsigned long long)u->cepoch);
        /* The writer cuts once this link has detached (the mailbox keeps
         * the order): it closes the channel, cuts, and it is opened again. */
        fy_actor_post(u->writer, FY_RM_CUT, 0, cut, 0, NULL, NULL);
        fy__upstream_finish(u, "log diverged: cut back");
        return false;
    }
    /* The leader's current epoch began at epoch_seq on its log, which this
     * log copies: the same entry here (a history it may lead one day). */
    if (w->ext2 && w->epoch)
        (void)fy__chan_epoch_add(u->chan, w->epoch, w->epoch_seq);
    return true;
}

bool fy__upstream_replica_enoseq(upstream *u, const char *text)
{
    const char *p = strstr(text, "holds ");
    unsigned long long first = 0, last = 0;

    if (!p || sscanf(p, "holds %llu..%llu", &first, &last) != 2 || first <= u->local_next)
        return false;
    fy_klog(FY_LOG_ERROR, "leader no longer holds what this replica needs", "channel=%s "
            "leader=%s want_seq=%llu leader_first_seq=%llu action=\"empty the log, start again "
            "at the first file the leader holds\"", u->name, u->peer,
            (unsigned long long)u->local_next, first);
    u->enoseq++;
    /* Read from there to the first file-begin (the leader's oldest frames
     * may be the rest of a file): the log starts at that seq. */
    fy_ingest_stop(u->ing);
    fy_ingest_free(u->ing);
    u->ing = NULL;
    u->local_next = first;
    u->skip_until = u->fb_local = 0;
    u->replica_seek = true;
    u->backoff_ms = BACKOFF_MIN_MS;
    fy__upstream_link_down(u);
    fy__upstream_connect(u);
    return true;
}

void fy__upstream_replica_seek(upstream *u, fy__batch *b)
{
    uint64_t at = b->n ? fy__batch_seq(b, 0) : 0;

    fy_ingest_credit(u->ing, b->held);
    fy__batch_unref(b);
    if (!at || u->seek_found)
        return;
    u->seek_found = true;
    fy_actor_post(u->writer, FY_RM_CUT, 1, at, 0, NULL, NULL); /* u32 1: start the log there */
}

void fy__upstream_replica_report(upstream *u, bool force)
{
    uint64_t now = fy_now_ns(), seq = u->stored_next ? u->stored_next - 1 : 0;
    fy_replica_stored r = {.cepoch = u->cepoch, .seq = seq};
    uint8_t p[FY_REPLICA_STORED_SIZE];
    size_t n;

    if (seq && seq != u->prog_seq && u->ctx->progress) { /* for the member's takeovers */
        fy__progress_set(u->ctx->progress, u->name, fy__chan_epoch_of(u->chan, seq), seq);
        u->prog_seq = seq;
    }
    if (u->st != U_STREAM || !u->cepoch || (seq == u->rep_seq && !force) ||
        (seq == u->rep_seq && now - u->rep_ns < REPORT_MS * 1000000ull))
        return;
    if (fy_replica_stored_encode(&r, p, sizeof p, &n) < 0 ||
        fy_link_ctl(&u->link, FY_FT_REPLICA_STORED, fy_link_welcome(&u->link)->channel, 0, p, n) < 0)
        return; /* the control queue is full: the next credit or tick tries again */
    (void)fy_link_flush(&u->link);
    u->rep_seq = seq;
    u->rep_ns = now;
}

int fy__upstream_new_replica(const fy__ctx *ctx, const fy__chan *chan, fy_actor *writer,
                             uint64_t first_seq, uint64_t next_seq, uint64_t part_seq,
                             const fy__follow *f, fy_actor **out)
{
    upstream *u = calloc(1, sizeof *u);

    if (!u)
        return -ENOMEM;
    u->ctx = ctx;
    u->replica = true;
    u->chan = chan;
    u->chan_id = chan->id;
    snprintf(u->name, sizeof u->name, "%s", chan->name);
    snprintf(u->dir, sizeof u->dir, "%s", chan->dir);
    snprintf(u->peer, sizeof u->peer, "%s", f->addr);
    u->addr = f->to;
    u->cepoch = f->epoch;
    u->local_next = u->stored_next = next_seq;
    u->first_seq = first_seq;
    u->backoff_ms = BACKOFF_MIN_MS;
    u->rng = (fy_now_ns() ^ (uint64_t)(uintptr_t)u) | 1;
    fy_link_init(&u->link);
    if (part_seq && part_seq < next_seq) {
        /* The log ends inside a file: fetch it again from its file-begin so
         * the ingest checks all of it; the frames we have are dropped. */
        u->skip_until = next_seq;
        u->local_next = u->fb_local = part_seq;
    }
    fy_klog(FY_LOG_INFO, "following the channel's leader", "channel=%s leader=%s addr=%s "
            "epoch=%llu local_next_seq=%llu resume_at_file_begin=%llu", u->name, f->leader,
            f->addr, (unsigned long long)f->epoch, (unsigned long long)next_seq,
            (unsigned long long)(u->skip_until ? part_seq : 0));
    return fy__upstream_launch(u, chan, writer, out);
}
