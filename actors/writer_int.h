/*
 * writer_int.h - what the two halves of a channel's writer share: its
 * state and the calls between them.  writer.c is the actor and its
 * lifecycle (sender slot and takeover, subscribers, leases, idle close,
 * shutdown, an edge's mirror); writer_batch.c is the batch path (verify ->
 * append -> publish -> acknowledge) and the file in progress it keeps;
 * writer_durable.c holds the acks and credits that wait for the log to be
 * durable (write-behind); writer_hash.c hands the SHA-256 of a file's body
 * to a hash worker (src/relay/hasher.c) beside the write.
 * Everything here runs on the writer's turn only.
 */
#ifndef FERRY_ACTORS_WRITER_INT_H
#define FERRY_ACTORS_WRITER_INT_H

#include "ferry/digest.h"
#include "relay/hasher.h"
#include "relay_int.h"

#define FY__RETAIN_MS 1000 /* how often the retention limits are applied */
/* The writer's own timer tag (after relay_int.h's FY__TM_*): a rewinding
 * channel's look at whether it is unused yet. */
#define FY__TM_REWIND 0x77720001u
/* writer_isr.c's timer: the in-sync set, and acks waiting for replicas. */
#define FY__TM_ISR 0x77720010u

/* What waits for the log to be durable up to need (fy_log_bytes units):
 * an ack (val = the file-end's seq) or a credit (val = buffer bytes).  A
 * credit under --acks all in a cluster also waits until the acks queued
 * before it went out (gate: their count, writer acks_pushed), so a sender
 * runs at most one budget ahead of what the replicas stored. */
typedef struct fy__wb_item {
    uint64_t need, val, gate;
} fy__wb_item;

/* A FIFO of them: v[head .. head + n). */
typedef struct fy__wb_q {
    fy__wb_item *v;
    size_t head, n, cap;
} fy__wb_q;

typedef struct fy__writer {
    const fy__ctx *ctx;
    const fy__chan *chan;
    fy_actor *self;
    fy_actor *indexer;
    fy_log *log;
    fy_actor *sender; /* a reference, or NULL */
    char sender_token[FY_TOKEN_MAX + 1];
    fy__attach_req *taker; /* a takeover waiting for the sender's answer, or NULL */
    fy__attach_req *attach_hold; /* cluster: a sender's welcome waiting for the replicas
                                  * (writer_isr.c, fy__isr_attach_ok), or NULL */
    fy_actor **fwd;   /* references */
    size_t nfwd, capfwd;
    /* the file in progress, for LIVE joiners and the "file stored" line */
    uint64_t fb_seq;
    fy_pos fb_pos;
    uint64_t fb_size;
    char fb_name[FY_NAME_MAX + 1];
    uint64_t fb_source; /* its file-begin's source id (0: none), for a sender's rerun */
    /* The same file for a sender that continues it: unlike fb_seq (which a
     * sender leaving mid-file clears, so LIVE joiners skip a dead file) it
     * lasts until the file's file-end or the next file-begin, and a restart
     * finds it again in the log (find_part). */
    uint64_t part_seq; /* its file-begin's seq, 0 = none */
    uint64_t fb_got;   /* its payload bytes stored */
    bool dirty, fsync_armed, shutting, idx_shut, idx_done;
    bool store_failed; /* the attached sender's stream broke on a store error */
    /* A sync failed: the channel closes as soon as nobody uses it, its log
     * cut back to the last good sync, and reopens on the next hello (its
     * recovery starts a new epoch).  Until then it takes no sender or
     * receiver (FY_ESHUTDOWN: try again). */
    bool rewind, rewind_armed;
    /* The SHA-256 of the file in progress, checked at its file-end before
     * the file-end is stored.  Kept across senders (the channel's stream is
     * one sequence), so a sender that continues the file needs nothing;
     * sha_ok false (a restart inside the file, a batch cut short) means the
     * stored part is hashed back from the log first (rehash). */
    fy_sha256 *sha;
    bool sha_ok;        /* sha covers the stored payload of the file part_seq (once hs is idle) */
    /* The hash worker's stream on sha (writer_hash.c): while it has jobs,
     * sha is the worker's; NULL without workers (every batch in series). */
    fy_hasher_stream *hs;
    fy_hash_op *hops; /* scratch for a job's ops */
    size_t caphops;
    /* the credits (held bytes) of the batches given to hs, in order: one
     * per batch is sent as its job finishes (an edge's mirror counts them) */
    uint64_t *hheld;
    size_t hheld_head, hheld_n, hheld_cap;
    uint64_t hheld_done; /* jobs of hs whose credit was sent */
    bool digest_failed; /* the attached sender's stream broke on a refused file-end */
    uint64_t first_seq;
    uint64_t bytes, frames, files; /* for /metrics */
    uint64_t damaged;              /* frames the scrub found damaged, for /metrics */
    uint64_t sync_failed;          /* log syncs that failed, for /metrics */
    uint64_t gone_out, gone_frames_out; /* totals of forwarders that have left */
    /* channel lifetime */
    fy_actor **lease;    /* sessions given this channel, until they stop (references) */
    size_t nlease, caplease;
    uint64_t idle_since; /* fy_now_ns() when last seen unused; 0 = in use */
    bool idle_armed, idle_told, idle_close;
    uint64_t idle_due_ns; /* when the armed idle timer fires */
    uint64_t gone_disk, gone_catchups;  /* (FY_RM_FWD_TOTALS) */
    /* edge relay (actors/upstream.c): the mirror holds the sender slot */
    fy_actor *upstream;  /* == sender while mirroring (no reference of its own) */
    bool mirrored;       /* the channel is a mirror: local senders are refused */
    bool up_linger_armed;
    uint64_t up_alone_since; /* fy_now_ns() when the last receiver left */
    /* cluster (writer_follow.c): the latest FY_RM_FOLLOW, and whom the
     * replica link in the sender slot (upstream) follows */
    fy__follow *follow;
    uint64_t follow_epoch;
    char follow_addr[FY_MEMBER_ADDR_MAX];
    uint64_t lead_epoch; /* the epoch this opening added to the epochs as leader (0: none) */
    bool lead_ready;     /* leading, and that epoch is recorded: local senders may attach */
    uint64_t cut_to;     /* the log must end below this seq: closing to cut it (0: no) */
    bool cut_restart;    /* ...or be emptied to start at cut_to (FY_ENOSEQ) */
    fy__attach_req *lead_hold; /* a local sender waiting for this leader's epoch entry */
    /* write-behind: the sender's acks and credits waiting for the sync
     * worker (writer_durable.c), released in order */
    fy__wb_q acks, credits;
    uint64_t acks_pushed, acks_sent; /* acks queued and released, ever (credit gates) */
    struct fy__isr *isr; /* cluster: followers and the in-sync set (writer_isr.c), or NULL */
    /* the latest stored file of each name (writer_names.c) */
    struct fy__wname **names;
    size_t nnames;
} fy__writer;

/* ---- writer_batch.c ------------------------------------------------------- */

/* A sender's batch (FY_RM_BATCH): verified, appended, published to the
 * indexer and the forwarders, acknowledged to the sender; the batch's
 * reference is consumed. */
void fy__writer_batch(fy__writer *w, fy__batch *b);
/* Apply the retention limits; the indexer hears of a new first seq. */
void fy__writer_retain(fy__writer *w);
/* The fsync-interval timer: sync what was appended since the last one. */
void fy__writer_sync_due(fy__writer *w);
/* The file in progress as a pool buffer for ATTACHED, or NULL (none, or
 * no buffer: then the sender starts the file over, which is always safe). */
fy_buf *fy__writer_part_buf(fy__writer *w);
/* At open: find the file in progress in the log (before the indexer owns idx). */
void fy__writer_find_part(fy__writer *w, fy_idx *idx);

/* ---- writer_hash.c -------------------------------------------------------- */

/* At open: the channel's stream on the hash workers (none without them).
 * 0 or -ENOMEM. */
int fy__writer_hash_open(fy__writer *w);
/* Wait for the stream, give the sender its last credits, free the stream. */
void fy__writer_hash_close(fy__writer *w);
/* True when b may be hashed behind the append: it holds no file-end and
 * needs no rehash (the writer holds the hash of the file it continues, or
 * b starts a file). */
bool fy__writer_hash_behind(const fy__writer *w, const fy__batch *b);
/* Queue b's payload (b just appended) to the stream.  True: the worker
 * took the reference the caller counted for it in b->refs and will
 * credit held; false: b was hashed here (the caller drops that reference
 * and credits held itself). */
bool fy__writer_hash_push(fy__writer *w, fy__batch *b, uint64_t held);
/* Make sha the writer's again: wait for the worker (its thread's queue
 * handed to the others meanwhile), then credit the sender what it finished. */
void fy__writer_hash_own(fy__writer *w);
/* FY_RM_HASHED: credit the sender what the worker finished. */
void fy__writer_hashed(fy__writer *w);

/* ---- writer.c --------------------------------------------------------------- */

/* The log failed a sync: receivers are cut, and the channel closes (the
 * log cut back to what is durable) once nobody uses it (rewind). */
void fy__writer_rewind_start(fy__writer *w);

/* ---- writer_follow.c ------------------------------------------------------ */

/* FY_RM_FOLLOW (lead the channel or follow its leader; takes the
 * fy__follow) and FY_RM_CUT (the replica link found the log diverged). */
void fy__writer_cluster_msg(fy__writer *w, fy_msg *m);
/* A local sender asks while this node is about to lead (the member says
 * so, its epoch not recorded yet): hold r, true; false otherwise. */
bool fy__writer_lead_hold(fy__writer *w, fy__attach_req *r);
/* The held request, taken (NULL: none). */
fy__attach_req *fy__writer_lead_take(fy__writer *w);
/* writer.c: a sender's request for the slot, handled (again). */
void fy__writer_attach(fy__writer *w, fy__attach_req *r);
/* Leases in_use() does not count: the replica manager's, while cutting. */
size_t fy__writer_cut_leases(fy__writer *w);
/* The log is closed: cut it (cut_to).  Returns the replica manager, to be
 * told FY_RM_CHAN_CUT after WRITER_DONE (so it asks for the channel only
 * once the registry knows it closed), or NULL. */
fy_actor *fy__writer_cut_closed(fy__writer *w);
/* Start the replica link when this node follows and the slot is free. */
void fy__writer_follow_start(fy__writer *w);
/* This node follows the channel (its replica link may have the slot). */
bool fy__writer_following(const fy__writer *w);
/* In a cluster, this node does not lead the channel (yet): local senders
 * are refused (FY_ESHUTDOWN: they try again and are redirected). */
bool fy__writer_not_leading(const fy__writer *w);

/* ---- writer_names.c ------------------------------------------------------- */

/* A file-end was stored: name's latest file is this one. */
void fy__writer_names_note(fy__writer *w, const char *name, uint64_t size, uint64_t begin_seq,
                           const uint8_t sha[FY_SHA256_LEN]);
/* FY_RM_DUP_ASK from session `from` (q: a fy_dup_ask): answer FY_RM_DUP_ANSWER. */
void fy__writer_names_ask(fy__writer *w, fy_actor *from, const fy_buf *q);
void fy__writer_names_free(fy__writer *w);

/* ---- writer_durable.c ----------------------------------------------------- */

/* The acknowledge stage's answers to the sender `to` (NULL: none) for a
 * batch just appended: its credit (held bytes) and its acks, each sent now
 * or queued until the log is durable enough; starts a sync when the policy
 * or the write-behind budget asks for one. */
void fy__writer_answer(fy__writer *w, fy_actor *to, uint64_t held, const uint64_t *acks,
                       size_t nacks);
/* Send what the durable position now allows, in order (acks first). */
void fy__writer_release(fy__writer *w);
/* FY_RM_SYNCED: a sync worker's report for the log. */
void fy__writer_synced(fy__writer *w, uint64_t seq, uint64_t bytes, int rc);
/* fdatasync on this thread (shutdown, close, error paths): afterwards
 * everything waiting is released, or the log failed and the sender was
 * told.  0 or the error. */
int fy__writer_sync_now(fy__writer *w);
/* Before the sender hears of an error: answer everything waiting, syncing
 * on this thread if something does.  False when that sync failed (the
 * sender was told of that instead). */
bool fy__writer_settle(fy__writer *w);
/* The sender left: what waited for it is dropped. */
void fy__writer_wb_clear(fy__writer *w);
void fy__writer_wb_free(fy__writer *w);
/* The log's fy_log_synced_fn (arg = the writer actor): runs on the sync
 * worker's thread and only posts FY_RM_SYNCED. */
void fy__writer_synced_cb(void *arg, uint64_t seq, uint64_t bytes, int rc);

/* ---- writer_isr.c: cluster followers and the in-sync set ---------------------- */

/* Do this writer's acks wait for the in-sync replicas (cluster, --acks all,
 * a local sender's channel)? */
bool fy__isr_gating(const fy__writer *w);
/* May the ack of the file-end at seq go out now?  (True when not gating.) */
bool fy__isr_ack_ok(fy__writer *w, uint64_t seq);
/* May a sender be welcomed now?  A welcome tells the sender that every
 * file before its resume point is acknowledged, so in a cluster it waits,
 * as an ack would, until those files are durable here and stored on every
 * in-sync replica (a new leader's log may hold files a lagging in-sync
 * follower does not have yet).  True when not gating. */
bool fy__isr_attach_ok(fy__writer *w);
/* Look now whether the channel may close (writer.c): after something that
 * shortens the wait, e.g. a cut asked for (writer_follow.c). */
void fy__writer_idle_check(fy__writer *w);

/* ---- writer_attach.c: the sender slot ---------------------------------------- */

/* Answer a held sender's welcome if it may go now. */
void fy__writer_attach_recheck(fy__writer *w);
/* Answer a request for the slot: err, or the slot with the log's end and
 * the file in progress (held first while fy__isr_attach_ok says no). */
void fy__writer_answer_attach(fy__writer *w, fy__attach_req *r, int err);
/* The attached sender is active: a takeover candidate is refused. */
void fy__writer_on_keep(fy__writer *w, fy_actor *s);
/* After a release: n acks still wait (for metrics; arms the timer). */
void fy__isr_waiting(fy__writer *w, uint64_t n);
/* Arm the timer (FY__TM_ISR) unless it is. */
void fy__isr_watch(fy__writer *w);
/* FY_RM_REPLICA_JOIN (frees j), FY_RM_REPLICA_STORED, and a forwarder's
 * unsubscribe (its replica connection is gone). */
void fy__isr_join(fy__writer *w, fy__replica_join *j);
void fy__isr_stored(fy__writer *w, fy_actor *fwd, uint64_t cepoch, uint64_t seq);
void fy__isr_gone(fy__writer *w, fy_actor *fwd);
/* The writer's other messages: JOIN and STORED are handled, the rest ignored. */
void fy__isr_msg(fy__writer *w, fy_msg *m);
/* FY__TM_ISR. */
void fy__isr_tick(fy__writer *w);
void fy__isr_free(fy__writer *w);

#endif
