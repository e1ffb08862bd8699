/*
 * writer.c - one channel's file-writer: the actor, its sender slot, its
 * subscriber list and its lifecycle (the writer actor).  What it does with
 * each batch -- verify, append, publish, acknowledge -- is writer_batch.c;
 * the state both halves share is writer_int.h.
 *
 * The writer enforces one sender per channel (FY_EBUSY) and answers
 * subscriptions with the current end, so a late receiver knows exactly up
 * to where to read history from disk before switching to live batches.
 *
 * It decides when its channel is idle: no sender, no forwarder and no
 * session the registry has given the channel to that is still running
 * (the lease list; a session that got the channel but never attached, e.g.
 * because its client vanished, ends its lease by stopping).  After
 * --channel-idle of that it asks the registry to close it (CHAN_IDLE); on
 * the registry's CLOSE it checks once more and either closes exactly as at
 * shutdown (fdatasync, index synced and closed, log closed: nothing
 * acknowledged or received is lost) or answers CHAN_KEEP.
 *
 * A second connection with the attached sender's token is a takeover
 * candidate: it waits while the attached session decides (FY_RM_TAKEOVER,
 * see session.c) and gets the slot when that one detaches, or FY_EBUSY
 * when it answers FY_RM_KEEP.
 *
 * On an edge relay (--upstream) a channel with receivers and no sender is
 * mirrored: the writer starts an upstream actor (actors/upstream.c) and
 * gives it the sender slot, and ends it upstream-linger after the last
 * receiver left.  The mirror's state file marks the channel for good: a
 * local sender is refused there, with or without --upstream.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "relay/stats.h"
#include "msg.h"
#include "writer_int.h"

/* ---- idleness ------------------------------------------------------------------ */

/* After a failed sync, how often the channel looks whether the sessions
 * still holding it have gone (they are ending: each was told). */
#define REWIND_LOOK_MS 20

/* Has anyone a use for the channel?  Drops the leases of sessions that have
 * stopped: everything such a session sent here (ATTACH, SUBSCRIBE for its
 * forwarder, DETACH) was queued before it stopped, so it is handled before
 * any CLOSE the registry sends in answer to a CHAN_IDLE sent after this. */
static bool in_use(fy__writer *w)
{
    for (size_t i = 0; i < w->nlease;) {
        if (fy_actor_stopped(w->lease[i])) {
            fy_actor_unref(w->lease[i]);
            w->lease[i] = w->lease[--w->nlease];
        } else {
            i++;
        }
    }
    /* (fy_actor_stopped is an acquire: the session's sends before its stop
     * happened before the CHAN_IDLE this may lead to.) */
    return w->sender || w->nfwd || w->nlease > fy__writer_cut_leases(w);
}

/* A shorter wait than the armed one arms another timer (a timer cannot be
 * moved; the later one then finds nothing to do): a cut or a failed sync
 * asks to close at once while an idle wait of channel-idle is pending. */
static void idle_arm(fy__writer *w, uint64_t ms)
{
    uint64_t due = fy_now_ns() + (ms ? ms : 1) * 1000000ull;

    if (w->idle_armed && due >= w->idle_due_ns)
        return;
    w->idle_armed = true;
    w->idle_due_ns = due;
    fy_timer_after(w->self, (uint32_t)(ms ? ms : 1), FY__TM_IDLE);
}

static void idle_check(fy__writer *w);

void fy__writer_idle_check(fy__writer *w)
{
    idle_check(w);
}

/* Called whenever a user may have left, and on the idle timer. */
static void idle_check(fy__writer *w)
{
    uint64_t idle_ms = w->ctx->conf->channel_idle_ms, now = fy_now_ns();

    if (w->shutting || w->idle_told || !w->log)
        return;
    if (w->rewind || w->cut_to)
        idle_ms = 0; /* close as soon as nobody uses it */
    if (in_use(w)) {
        w->idle_since = 0;
        if (w->rewind && !w->rewind_armed) { /* look again soon: each user was told */
            w->rewind_armed = true;
            fy_timer_after(w->self, REWIND_LOOK_MS, FY__TM_REWIND);
        } else if (!w->sender && !w->nfwd) { /* only leases: look when they may have ended */
            idle_arm(w, idle_ms);
        }
        return;
    }
    if (!w->idle_since) {
        w->idle_since = now;
        fy__msg_chan_unused(w->ctx->registry, w->chan); /* a candidate for eviction */
    }
    uint64_t el = (now - w->idle_since) / 1000000;
    if (el >= idle_ms) {
        w->idle_told = true;
        fy__msg_chan_idle(w->ctx->registry, w->chan);
        return;
    }
    idle_arm(w, idle_ms - el);
}

static void on_lease(fy__writer *w, fy_actor *s)
{
    if (w->nlease == w->caplease) {
        size_t cap = w->caplease ? 2 * w->caplease : 4;
        fy_actor **nl = realloc(w->lease, cap * sizeof *nl);
        if (!nl) {
            /* Without the lease the channel could close under the session:
             * keep it open instead (it closes at shutdown). */
            fy_klog(FY_LOG_ERROR, "malloc failed", "what=lease channel=%s action=\"keep the "
                    "channel open\"", w->chan->name);
            w->idle_told = true;
            fy_actor_unref(s);
            return;
        }
        w->lease = nl;
        w->caplease = cap;
    }
    w->lease[w->nlease++] = s;
    idle_check(w);
}

static void on_shutdown(fy__writer *w);

/* The registry agrees the channel is idle; requests for it wait meanwhile. */
static void on_close(fy__writer *w)
{
    if (w->shutting)
        return; /* a shutdown got here first: its WRITER_DONE answers */
    w->idle_told = false;
    if (in_use(w)) {
        w->idle_since = 0;
        fy__msg_chan_keep(w->ctx->registry, w->chan);
        idle_check(w);
        return;
    }
    if (w->rewind)
        fy_klog(FY_LOG_WARN, "channel closing after a failed sync", "channel=%s durable_seq=%llu "
                "next_seq=%llu action=\"cut the log back to durable_seq, reopen on the next "
                "hello\"", w->chan->name, (unsigned long long)fy_log_durable_seq(w->log),
                (unsigned long long)fy_log_next_seq(w->log));
    else
        fy_klog(FY_LOG_INFO, "channel idle, closing", "channel=%s idle_ms=%llu next_seq=%llu",
                w->chan->name, (unsigned long long)w->ctx->conf->channel_idle_ms,
                (unsigned long long)fy_log_next_seq(w->log));
    w->idle_close = true;
    on_shutdown(w);
}

/* ---- an edge relay's mirror ------------------------------------------------------ */

/* A receiver is here and nobody sends: mirror the channel from upstream,
 * unless a local sender's frames are in the log (then it is ours). */
static void mirror_start(fy__writer *w)
{
    bool empty = fy_log_next_seq(w->log) == fy_log_first_seq(w->log);
    fy_actor *up;

    if (!w->ctx->conf->upstream[0] || w->sender || w->shutting || w->store_failed || w->rewind ||
        (!empty && !w->mirrored))
        return;
    int rc = fy__upstream_new(w->ctx, w->chan, w->self, fy_log_next_seq(w->log), empty, &up);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "cannot start the mirror", "channel=%s err=%s", w->chan->name,
                fy_errname(rc));
        return;
    }
    w->sender = w->upstream = up;
    w->mirrored = true;
}

/* The last receiver left: upstream-linger later, the mirror leaves. */
static void mirror_linger(fy__writer *w)
{
    uint64_t ms = w->ctx->conf->upstream_linger_ms, now = fy_now_ns();

    if (!w->upstream || w->nfwd || w->shutting)
        return;
    if (!w->up_alone_since)
        w->up_alone_since = now;
    uint64_t el = (now - w->up_alone_since) / 1000000;
    if (el >= ms) {
        fy__msg_shutdown_linger(w->upstream);
    } else if (!w->up_linger_armed) {
        w->up_linger_armed = true;
        fy_timer_after(w->self, (uint32_t)(ms - el), FY__TM_UPLINGER);
    }
}

/* ---- subscribers and the sender slot ------------------------------------------- */

static void on_subscribe(fy__writer *w, fy_actor *f)
{
    fy__sub_info *si = calloc(1, sizeof *si);

    if (w->nfwd == w->capfwd) {
        size_t cap = w->capfwd ? 2 * w->capfwd : 8;
        fy_actor **nf = realloc(w->fwd, cap * sizeof *nf);
        if (nf)
            w->fwd = nf, w->capfwd = cap;
    }
    if (!si || w->nfwd == w->capfwd) {
        /* Cannot track it: the forwarder will see the error and unsubscribe. */
        free(si);
        fy_klog(FY_LOG_ERROR, "malloc failed", "what=subscriber channel=%s", w->chan->name);
        fy__msg_subscribed(f, NULL);
        fy_actor_unref(f);
        return;
    }
    w->fwd[w->nfwd++] = f;
    si->err = w->shutting || w->rewind ? FY_ESHUTDOWN : 0;
    si->end = fy_log_end(w->log);
    si->next_seq = fy_log_next_seq(w->log);
    si->first_seq = fy_log_first_seq(w->log);
    si->fb_seq = w->fb_seq;
    si->fb_pos = w->fb_pos;
    if (fy__msg_subscribed(f, si) < 0)
        free(si);
    w->up_alone_since = 0;
    mirror_start(w);
}

/* The log failed a sync: cut it back to its durable end before it is
 * closed, so neither the reopen nor a restart's recovery takes the frames
 * after it as stored (the kernel may have dropped their pages; a later
 * sync that succeeds says nothing about them).  Runs with the indexer
 * stopped (fy_log_rewind). */
static void cut_back(fy__writer *w)
{
    uint64_t dropped = 0;
    int rc = fy_log_rewind(w->log, &dropped);

    fy_klog(rc < 0 ? FY_LOG_ERROR : FY_LOG_WARN, "log cut back to its last good sync",
            "channel=%s next_seq=%llu dropped_bytes=%llu err=%s action=\"%s\"", w->chan->name,
            (unsigned long long)fy_log_next_seq(w->log), (unsigned long long)dropped,
            rc < 0 ? fy_errname(rc) : "none", rc < 0 ? "recovery repairs what it can at the "
            "next open" : "senders resume from next_seq");
}

static void on_stats(fy__writer *w, const fy_msg *m);

static void maybe_done(fy__writer *w)
{
    if (!w->shutting || w->nfwd || w->upstream)
        return;
    /* The indexer stops only after the last forwarder has gone: one that
     * subscribed just before the shutdown may still ask it for a look-up,
     * and an answer that never comes would leave it waiting. */
    if (!w->idx_shut) {
        w->idx_shut = true;
        fy__msg_shutdown(w->indexer);
    }
    if (!w->idx_done || !w->log)
        return;
    fy__writer_hash_close(w); /* its last credits go into what the sync releases */
    int rc = fy__writer_sync_now(w);
    bool empty = fy_log_next_seq(w->log) <= 1 && !w->cut_to; /* never held a frame */
    if (rc < 0)
        cut_back(w);
    fy_log_close(w->log); /* waits for the log's jobs on the sync worker */
    w->log = NULL;
    fy_klog(rc < 0 ? FY_LOG_ERROR : FY_LOG_INFO, "channel closed", "channel=%s reason=%s sync=%s",
            w->chan->name, w->rewind && w->idle_close ? "sync-failed" : w->cut_to ? "diverged" :
            w->idle_close ? "idle" : "shutdown", rc < 0 ? fy_errname(rc) : "ok");
    /* The last messages: the registry frees the channel record on
     * WRITER_DONE, so nothing here may touch w->chan after it. */
    on_stats(w, NULL); /* its last counts: /metrics keeps them over a reopen */
    /* A cluster follower's diverged tail, now the log is closed. */
    fy_actor *cut_tell = w->cut_to ? fy__writer_cut_closed(w) : NULL;
    const void *ch = w->chan; /* only compared by the manager: never read */
    fy__msg_writer_totals(w->ctx->registry, w->chan, w->gone_out, w->gone_frames_out);
    fy__msg_writer_done(w->ctx->registry, w->chan, w->bytes, w->frames, empty && rc == 0);
    if (cut_tell)
        fy_actor_post(cut_tell, FY_RM_CHAN_CUT, 0, 0, 0, (void *)ch, NULL);
    fy_actor_stop(w->self);
}

static void on_unsubscribe(fy__writer *w, fy_actor *f, const fy_msg *m)
{
    fy_actor *ref = NULL;

    w->gone_out += m->u64[0];
    w->gone_frames_out += m->u64[1];

    for (size_t i = 0; i < w->nfwd && !ref; i++)
        if (w->fwd[i] == f) {
            ref = f;
            w->fwd[i] = w->fwd[--w->nfwd];
        }
    /* The forwarder waits for this reply before it stops, so the pointer is
     * good even without a reference; it is the last message we send it. */
    fy__msg_unsubscribed(f);
    fy__isr_gone(w, f);
    fy_actor_unref(ref);
    maybe_done(w);
    mirror_linger(w);
    idle_check(w);
}


static void on_detach(fy__writer *w, fy_actor *s)
{
    if (w->taker && w->taker->session == s) { /* the candidate gave up waiting */
        fy_actor_unref(s);
        free(w->taker);
        w->taker = NULL;
        return;
    }
    if (w->attach_hold && w->attach_hold->session == s) { /* gave up waiting for replicas */
        fy_actor_unref(s);
        free(w->attach_hold);
        w->attach_hold = NULL;
        return;
    }
    if (w->sender != s)
        return;
    if (w->fb_seq) {
        fy_klog(FY_LOG_WARN, "sender left inside a file", "channel=%s name=%s file_begin_seq=%llu "
                "next_seq=%llu action=\"kept for a sender that continues it; receivers discard it "
                "if the next sender starts another file\"", w->chan->name,
                w->fb_name, (unsigned long long)w->fb_seq,
                (unsigned long long)fy_log_next_seq(w->log));
        w->fb_seq = 0;
    }
    fy__writer_hash_own(w); /* the credits of its batches still being hashed */
    fy_actor_unref(w->sender);
    w->sender = NULL;
    fy__writer_wb_clear(w); /* its acks and credits waiting for the disk: nobody to tell */
    if (w->upstream == s) {
        /* A receiver that came while the mirror was leaving needs a new one
         * (not after a store error: the next subscription tries again). */
        w->upstream = NULL;
        if (!w->store_failed && w->nfwd)
            mirror_start(w);
        maybe_done(w);
    }
    /* its batches came before this: the next sender starts clean */
    w->store_failed = w->digest_failed = false;
    if (w->taker) { /* a takeover: the slot passes to the waiting connection */
        fy_klog(FY_LOG_INFO, "sender taken over", "channel=%s next_seq=%llu", w->chan->name,
                (unsigned long long)fy_log_next_seq(w->log));
        fy__writer_answer_attach(w, w->taker, w->shutting ? FY_ESHUTDOWN : 0);
        w->taker = NULL;
    }
    fy__writer_follow_start(w); /* cluster: a replica link for the new leader */
    idle_check(w);
}

void fy__writer_rewind_start(fy__writer *w)
{
    if (w->rewind)
        return;
    w->rewind = true;
    if (w->shutting)
        return; /* closing anyway: maybe_done cuts the log back */
    /* Receivers may hold frames past the durable end: they end here (at a
     * frame boundary, with bye) and, reconnecting after the reopen, are
     * reconciled by the epochs rule (a receiver ahead of the log). */
    for (size_t i = 0; i < w->nfwd; i++) {
        fy__msg_shutdown(w->fwd[i]);
        fy__msg_drain_cut(w->fwd[i]);
    }
    idle_check(w); /* the sender (an edge's mirror too) heard STORE_ERR: it detaches */
}

static void on_shutdown(fy__writer *w)
{
    if (w->shutting)
        return;
    w->shutting = true;
    fy__writer_attach_recheck(w); /* a held welcome hears FY_ESHUTDOWN */
    if (w->taker) {
        fy__writer_answer_attach(w, w->taker, FY_ESHUTDOWN);
        w->taker = NULL;
    }
    if (w->lead_hold) /* on_attach answers it: shutting */
        fy__writer_attach(w, fy__writer_lead_take(w));
    /* Everything received is on disk before anything else happens, so a
     * shutdown that has to be forced (a receiver that does not read) loses
     * nothing. */
    fy__writer_hash_own(w);
    int rc = fy__writer_sync_now(w); /* also answers the sender's acks and credits */
    if (rc < 0)
        fy_klog(FY_LOG_ERROR, "fy_log_sync failed", "channel=%s err=%s", w->chan->name,
                fy_errname(rc));
    for (size_t i = 0; i < w->nfwd; i++)
        fy__msg_shutdown(w->fwd[i]);
    if (w->upstream) /* it detaches at once; maybe_done waits for that */
        fy__msg_shutdown(w->upstream);
    maybe_done(w);
}

/* Stats: one record for the channel, and the request to every forwarder;
 * m NULL: the record alone, unasked, as the channel closes. */
static void on_stats(fy__writer *w, const fy_msg *m)
{
    fy_stats_rec r = {.actor = fy_actor_id(w->self), .kind = FY_KIND_WRITER};

    for (size_t i = 0; m && i < w->nfwd; i++)
        r.fanout += (uint32_t)fy_stats_pass(m, w->fwd[i]);
    if (m && w->upstream)
        r.fanout += (uint32_t)fy_stats_pass(m, w->upstream);
    r.depth = fy_actor_depth(w->self);
    snprintf(r.channel, sizeof r.channel, "%.71s", w->chan->name);
    r.v[FY_ST_BYTES_IN] = w->bytes;
    r.v[FY_ST_FRAMES_IN] = w->frames;
    r.v[FY_ST_FILES] = w->files;
    r.v[FY_ST_DAMAGED] = w->damaged;
    r.v[FY_ST_SYNC_FAILED] = w->sync_failed;
    r.v[FY_ST_RECEIVERS] = w->nfwd;
    r.v[FY_ST_NEXT_SEQ] = w->log ? fy_log_next_seq(w->log) : 0;
    /* Forwarders that have left (live ones answer for themselves). */
    r.v[FY_ST_BYTES_OUT] = w->gone_out;
    r.v[FY_ST_FRAMES_OUT] = w->gone_frames_out;
    r.v[FY_ST_BYTES_DISK] = w->gone_disk;
    r.v[FY_ST_CATCHUPS] = w->gone_catchups;
    fy_stats_answer(w->ctx->pool, w->ctx->metrics, m, &r);
}

/* The timers: fsync interval, mirror linger, idle check, retention. */
static void on_timer(fy__writer *w, uint64_t tag)
{
    if (tag == FY__TM_FSYNC) {
        fy__writer_sync_due(w);
    } else if (tag == FY__TM_UPLINGER) {
        w->up_linger_armed = false;
        mirror_linger(w);
    } else if (tag == FY__TM_IDLE || tag == FY__TM_REWIND) {
        *(tag == FY__TM_IDLE ? &w->idle_armed : &w->rewind_armed) = false;
        idle_check(w);
    } else if (tag == FY__TM_ISR) {
        fy__isr_tick(w);
    } else if (tag == FY__TM_RETAIN) {
        fy__writer_retain(w);
        fy_timer_after(w->self, FY__RETAIN_MS, FY__TM_RETAIN);
    }
}

/* A message that came after the log was closed: release what it carries. */
static void drop_late(fy_msg *m)
{
    if (m->type == FY_RM_BATCH)
        fy__batch_unref(m->ptr);
    if (m->type == FY_RM_ATTACH) {
        fy__attach_req *r = m->ptr;
        fy_actor_unref(r->session);
        free(r);
    }
    if (m->type == FY_RM_LEASE)
        fy_actor_unref(m->ptr);
    if (m->type == FY_RM_REPLICA_JOIN)
        free(m->ptr);
}

/* DRAIN_CUT and NOTICE go on to every forwarder. */
static void tell_forwarders(fy__writer *w, const fy_msg *m)
{
    for (size_t i = 0; i < w->nfwd; i++)
        if (m->type == FY_RM_DRAIN_CUT)
            fy__msg_drain_cut(w->fwd[i]);
        else
            fy__msg_notice(w->fwd[i], m->u64[0]);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    fy__writer *w = state;

    (void)self;
    if (m->type == FY_STATS_REQ || m->type == FY_RM_FOLLOW || m->type == FY_RM_CUT) {
        m->type == FY_STATS_REQ ? on_stats(w, m) : fy__writer_cluster_msg(w, m);
        return FY_MSG_DONE;
    }
    if (!w->log) {
        drop_late(m);
        return FY_MSG_DONE;
    }
    switch (m->type) {
    case FY_RM_BATCH:
        fy__writer_batch(w, m->ptr);
        break;
    case FY_RM_ATTACH:
        fy__writer_attach(w, m->ptr);
        break;
    case FY_RM_DETACH:
        on_detach(w, m->ptr);
        break;
    case FY_RM_KEEP:
        fy__writer_on_keep(w, m->ptr);
        break;
    case FY_RM_DUP_ASK:
        fy__writer_names_ask(w, m->ptr, m->buf);
        break;
    case FY_RM_DIGEST_RESET: /* its batches before this were dropped */
        if (w->sender == m->ptr)
            w->digest_failed = false;
        break;
    case FY_RM_SUBSCRIBE:
        on_subscribe(w, m->ptr);
        break;
    case FY_RM_UNSUBSCRIBE:
        on_unsubscribe(w, m->ptr, m);
        break;
    case FY_RM_FWD_TOTALS:
        w->gone_catchups += m->u32;
        w->gone_disk += m->u64[0];
        break;
    case FY_RM_SHUTDOWN:
        on_shutdown(w);
        break;
    case FY_RM_DAMAGED:
        w->damaged += m->u64[0];
        break;
    case FY_RM_DRAIN_CUT:
    case FY_RM_NOTICE: /* before the batch that holds at_seq: the mailbox keeps the order */
        tell_forwarders(w, m);
        break;
    case FY_RM_SYNCED:
        fy__writer_synced(w, m->u64[0], m->u64[1], -(int)m->u32);
        break;
    case FY_RM_HASHED:
        fy__writer_hashed(w);
        break;
    case FY_RM_IDX_DONE:
        w->idx_done = true;
        maybe_done(w);
        break;
    case FY_RM_LEASE:
        on_lease(w, m->ptr);
        break;
    case FY_RM_CLOSE:
        on_close(w);
        break;
    case FY_MSG_TIMER:
        on_timer(w, m->u64[0]);
        break;
    default:
        fy__isr_msg(w, m); /* cluster replication's messages */
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    fy__writer *w = state;

    /* Only reached with the log still open on a forced shutdown.  A failed
     * log is cut back here too (the indexer may still run: recovery drops
     * the index records and files it leaves past the cut). */
    if (w->log) {
        uint64_t dropped;
        if (fy_log_sync(w->log) < 0)
            (void)fy_log_rewind(w->log, &dropped);
        fy_log_close(w->log);
    }
    for (size_t i = 0; i < w->nfwd; i++)
        fy_actor_unref(w->fwd[i]);
    fy_actor_unref(w->sender);
    for (size_t i = 0; i < w->nlease; i++)
        fy_actor_unref(w->lease[i]);
    free(w->lease);
    if (w->taker) {
        fy_actor_unref(w->taker->session);
        free(w->taker);
    }
    if (w->attach_hold) {
        fy_actor_unref(w->attach_hold->session);
        free(w->attach_hold);
    }
    free(w->fwd);
    fy_hasher_close(w->hs); /* a forced stop: its jobs release their batches */
    free(w->hops);
    free(w->hheld);
    fy_sha256_free(w->sha);
    fy__writer_names_free(w);
    free(w->follow);
    if (w->lead_hold) { /* a forced shutdown: nobody answers it now */
        fy_actor_unref(w->lead_hold->session);
        free(w->lead_hold);
    }
    fy__writer_wb_free(w);
    fy__isr_free(w);
    free(w);
}

int fy__writer_new(const fy__ctx *ctx, const fy__chan *chan, fy_log *log, fy_idx *idx,
                   fy_actor **out, fy_actor **indexer)
{
    fy__writer *w = calloc(1, sizeof *w);
    int rc;

    if (!w) {
        fy_log_close(log);
        fy_idx_close(idx);
        return -ENOMEM;
    }
    if ((rc = fy_sha256_new(&w->sha)) < 0) {
        fy_log_close(log);
        fy_idx_close(idx);
        free(w);
        return rc;
    }
    w->ctx = ctx;
    w->chan = chan;
    w->log = log;
    w->first_seq = fy_log_first_seq(log);
    fy__writer_find_part(w, idx);
    /* A mirror stays one without --upstream: a local sender's frames in it
     * would reach its receivers between the origin's (issue 21). */
    w->mirrored = fy__upstream_marked(chan->dir);
    if (w->mirrored && !ctx->conf->upstream[0])
        fy_klog(FY_LOG_WARN, "mirrored channel opened without --upstream", "channel=%s "
                "action=\"serve what it holds, refuse local senders\"", chan->name);
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = w, .kind = FY_KIND_WRITER,
                       .label = chan->name};
    if ((rc = fy_actor_new(ctx->sched, &o, &w->self)) < 0) {
        fy_log_close(log);
        fy_idx_close(idx);
        fy_sha256_free(w->sha);
        free(w);
        return rc;
    }
    /* Write-behind: the log's syncs run on the relay's sync worker, whose
     * reports come back as FY_RM_SYNCED (writer_durable.c). */
    fy_log_set_syncer(log, ctx->syncer, fy__writer_synced_cb, w->self);
    if ((rc = fy__writer_hash_open(w)) < 0)
        fy_idx_close(idx);
    if (rc < 0 || (rc = fy__indexer_new(ctx, chan, idx, w->self, &w->indexer)) < 0) {
        fy_actor_stop(w->self); /* the dtor closes the log */
        fy_actor_unref(w->self);
        return rc;
    }
    /* Always: a channel may have limits of its own, or deleted files
     * (`ferry retain`, `ferry rm`: store/catalog.h), set while it is open. */
    fy_timer_after(w->self, FY__RETAIN_MS, FY__TM_RETAIN);
    *out = w->self;
    *indexer = w->indexer;
    return 0;
}
