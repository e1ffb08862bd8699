/*
 * msg.h - the relay's messages, one sender per kind.
 *
 * Every message the relay's actors exchange (enum fy__msg, relay_int.h) is
 * posted through one of these, so a reader sees what each field means at
 * the call and a handler's m->u32 / u64[0] / u64[1] / ptr / buf are
 * documented in one place, beside the function that fills them.  Each
 * returns fy_actor_post's result: 0, or -FY_ECLOSED when `to` has stopped
 * (the message, its buf reference included, was released; a heap ptr was
 * not, see relay_int.h's file comment for who may send one).
 *
 * Ownership of ptr, in each contract: "reference" - one actor reference
 * travels with the message and the receiver drops it; "compare only" - the
 * receiver only compares it with one it holds; "malloc'd" - the receiver
 * frees it; a fy__chan is owned by the registry and outlives its users.
 */
#ifndef FERRY_ACTORS_MSG_H
#define FERRY_ACTORS_MSG_H

#include <stdint.h>

#include "ferry/actor.h"
#include "ferry/buf.h"
#include "relay_int.h"

/* ---- any actor --------------------------------------------------------- */

/* Begin shutdown: leave at once. */
static inline int fy__msg_shutdown(fy_actor *to)
{
    return fy_actor_post(to, FY_RM_SHUTDOWN, 0, 0, 0, NULL, NULL);
}

/* Writer -> its upstream: upstream-linger passed with no local receiver;
 * leave at a file boundary (u32 = 1). */
static inline int fy__msg_shutdown_linger(fy_actor *to)
{
    return fy_actor_post(to, FY_RM_SHUTDOWN, 1, 0, 0, NULL, NULL);
}

/* To self: more work, handled on a later turn so others get theirs. */
static inline int fy__msg_continue(fy_actor *self)
{
    return fy_actor_post(self, FY_RM_CONTINUE, 0, 0, 0, NULL, NULL);
}

/* ---- to the acceptor --------------------------------------------------- */

/* A session ended: ptr = the session (the acceptor holds its reference;
 * compare only), u32 = the FY_E* that ended it or 0, u64 = its bytes and
 * frames in. */
static inline int fy__msg_session_gone(fy_actor *to, fy_actor *session, uint32_t err,
                                       uint64_t bytes, uint64_t frames)
{
    return fy_actor_post(to, FY_RM_SESSION_GONE, err, bytes, frames, session, NULL);
}

/* A forwarder took over a session's connection: u64 = the peer's address
 * key (fy__addr_key), under which the acceptor counts it. */
static inline int fy__msg_conn_adopt(fy_actor *to, const uint64_t addr_key[2])
{
    return fy_actor_post(to, FY_RM_CONN_ADOPT, 0, addr_key[0], addr_key[1], NULL, NULL);
}

/* A forwarder closed its connection: u64 = its address key. */
static inline int fy__msg_conn_gone(fy_actor *to, const uint64_t addr_key[2])
{
    return fy_actor_post(to, FY_RM_CONN_GONE, 0, addr_key[0], addr_key[1], NULL, NULL);
}

/* ---- to the registry --------------------------------------------------- */

/* A session asks for a channel: ptr = r (malloc'd; r->reply a reference). */
static inline int fy__msg_chan_get(fy_actor *to, fy__chan_req *r)
{
    return fy_actor_post(to, FY_RM_CHAN_GET, 0, 0, 0, r, NULL);
}

/* ch's writer closed (idle or shutdown): u64 = the bytes and frames it took
 * in, u32 = 1 when its log never held a frame (the registry removes the
 * directory). */
static inline int fy__msg_writer_done(fy_actor *to, const fy__chan *ch, uint64_t bytes,
                                      uint64_t frames, bool empty)
{
    return fy_actor_post(to, FY_RM_WRITER_DONE, empty, bytes, frames, (void *)ch, NULL);
}

/* Sent just before WRITER_DONE: u64 = the bytes and frames ch's receivers took. */
static inline int fy__msg_writer_totals(fy_actor *to, const fy__chan *ch, uint64_t bytes,
                                        uint64_t frames)
{
    return fy_actor_post(to, FY_RM_WRITER_TOTALS, 0, bytes, frames, (void *)ch, NULL);
}

/* ch had no user for --channel-idle: the registry may CLOSE it. */
static inline int fy__msg_chan_idle(fy_actor *to, const fy__chan *ch)
{
    return fy_actor_post(to, FY_RM_CHAN_IDLE, 0, 0, 0, (void *)ch, NULL);
}

/* ch's last user left (the writer's idle clock starts): the registry may
 * close it at once to make room at max-channels (ptr compare only). */
static inline int fy__msg_chan_unused(fy_actor *to, const fy__chan *ch)
{
    return fy_actor_post(to, FY_RM_CHAN_UNUSED, 0, 0, 0, (void *)ch, NULL);
}

/* CLOSE came too late for ch: a user arrived, keep it. */
static inline int fy__msg_chan_keep(fy_actor *to, const fy__chan *ch)
{
    return fy_actor_post(to, FY_RM_CHAN_KEEP, 0, 0, 0, (void *)ch, NULL);
}

/* ---- to a session (some also to an upstream) --------------------------- */

/* The answer to CHAN_GET: u32 = FY_E* or 0, ptr = the channel (NULL on error). */
static inline int fy__msg_chan(fy_actor *to, uint32_t err, const fy__chan *ch)
{
    return fy_actor_post(to, FY_RM_CHAN, err, 0, 0, (void *)ch, NULL);
}

/* The answer to ATTACH: u32 = FY_E* or 0, u64 = the log's next_seq and
 * first_seq, buf = a fy__part_info (the file in progress; reference
 * consumed) or NULL. */
static inline int fy__msg_attached(fy_actor *to, uint32_t err, uint64_t next_seq,
                                   uint64_t first_seq, fy_buf *part)
{
    return fy_actor_post(to, FY_RM_ATTACHED, err, next_seq, first_seq, NULL, part);
}

/* The answer to ATTACH on an edge's mirror: no local sender, ever. */
static inline int fy__msg_attach_mirror(fy_actor *to)
{
    return fy_actor_post(to, FY_RM_ATTACH_MIRROR, 0, 0, 0, NULL, NULL);
}

/* An edge's mirror skipped frames before local seq at_seq (the record is
 * in DIR/skipped): upstream -> writer, writer -> each forwarder. */
static inline int fy__msg_notice(fy_actor *to, uint64_t at_seq)
{
    return fy_actor_post(to, FY_RM_NOTICE, 0, at_seq, 0, NULL, NULL);
}

/* u64[0] = bytes of buffer capacity the writer freed. */
static inline int fy__msg_credit(fy_actor *to, uint64_t bytes)
{
    return fy_actor_post(to, FY_RM_CREDIT, 0, bytes, 0, NULL, NULL);
}

/* u64[0] = the seq of a stored (and synced) file-end. */
static inline int fy__msg_ack(fy_actor *to, uint64_t seq)
{
    return fy_actor_post(to, FY_RM_ACK, 0, seq, 0, NULL, NULL);
}

/* An append failed: u32 = FY_E* or errno (positive), u64[0] = the next seq stored. */
static inline int fy__msg_store_err(fy_actor *to, uint32_t err, uint64_t next_seq)
{
    return fy_actor_post(to, FY_RM_STORE_ERR, err, next_seq, 0, NULL, NULL);
}

/* The writer refused a frame and stored the ones before it: u32 = 0 for a
 * file-end whose SHA-256 is wrong, else the FY_E* / errno that kept the
 * file from being hashed; u64[0] = the frame's seq (the channel's next
 * seq); buf = a fy__digest_err (reference consumed) or NULL. */
static inline int fy__msg_digest_err(fy_actor *to, uint32_t cause, uint64_t seq, fy_buf *why)
{
    return fy_actor_post(to, FY_RM_DIGEST_ERR, cause, seq, 0, NULL, why);
}

/* A sender's dup-ask frame (buf: a fy_dup_ask, reference consumed); the
 * writer answers the attached sender only. */
static inline int fy__msg_dup_ask(fy_actor *to, fy_actor *session, fy_buf *q)
{
    return fy_actor_post(to, FY_RM_DUP_ASK, 0, 0, 0, session, q);
}

/* The answer: u64[0] = the file-begin seq of the latest file of the name
 * and size (0: none held); buf = its SHA-256 (32 bytes) or NULL. */
static inline int fy__msg_dup_answer(fy_actor *to, uint64_t seq, fy_buf *sha)
{
    return fy_actor_post(to, FY_RM_DUP_ANSWER, 0, seq, 0, NULL, sha);
}

/* The same sender asks for the slot: u64[0] = its resume_from; the
 * attached session answers KEEP or gives up (DETACH). */
static inline int fy__msg_takeover(fy_actor *to, uint64_t resume_from)
{
    return fy_actor_post(to, FY_RM_TAKEOVER, 0, resume_from, 0, NULL, NULL);
}

/* ---- to a writer ------------------------------------------------------- */

/* A sender asks for the slot: ptr = r (malloc'd; r->session a reference). */
static inline int fy__msg_attach(fy_actor *to, fy__attach_req *r)
{
    return fy_actor_post(to, FY_RM_ATTACH, 0, 0, 0, r, NULL);
}

/* The sender leaves the slot: ptr = it (compare only). */
static inline int fy__msg_detach(fy_actor *to, fy_actor *sender)
{
    return fy_actor_post(to, FY_RM_DETACH, 0, 0, 0, sender, NULL);
}

/* The attached session is active, refuse the takeover: ptr = it (compare only). */
static inline int fy__msg_keep(fy_actor *to, fy_actor *session)
{
    return fy_actor_post(to, FY_RM_KEEP, 0, 0, 0, session, NULL);
}

/* After DIGEST_ERR the sender's stream starts again (an upstream
 * reconnecting): store its batches from here on.  ptr = it (compare only). */
static inline int fy__msg_digest_reset(fy_actor *to, fy_actor *sender)
{
    return fy_actor_post(to, FY_RM_DIGEST_RESET, 0, 0, 0, sender, NULL);
}

/* ptr = b (its one reference passes to the writer). */
static inline int fy__msg_batch(fy_actor *to, fy__batch *b)
{
    return fy_actor_post(to, FY_RM_BATCH, 0, 0, 0, b, NULL);
}

/* ptr = the forwarder (a reference, kept by the writer until UNSUBSCRIBED). */
static inline int fy__msg_subscribe(fy_actor *to, fy_actor *forwarder)
{
    return fy_actor_post(to, FY_RM_SUBSCRIBE, 0, 0, 0, forwarder, NULL);
}

/* ptr = the forwarder (compare only), u64 = the bytes it sent and the
 * frames it sent live. */
static inline int fy__msg_unsubscribe(fy_actor *to, fy_actor *forwarder, uint64_t bytes,
                                      uint64_t frames)
{
    return fy_actor_post(to, FY_RM_UNSUBSCRIBE, 0, bytes, frames, forwarder, NULL);
}

/* Forwarder -> writer, just before UNSUBSCRIBE: u32 = its catch-ups
 * (saturated), u64[0] = the bytes it sent from the file. */
static inline int fy__msg_fwd_totals(fy_actor *to, uint32_t catchups, uint64_t bytes_disk)
{
    return fy_actor_post(to, FY_RM_FWD_TOTALS, catchups, bytes_disk, 0, NULL, NULL);
}

/* The indexer closed. */
static inline int fy__msg_idx_done(fy_actor *to)
{
    return fy_actor_post(to, FY_RM_IDX_DONE, 0, 0, 0, NULL, NULL);
}

/* u64[0] = frames the scrubber found damaged. */
static inline int fy__msg_damaged(fy_actor *to, uint64_t frames)
{
    return fy_actor_post(to, FY_RM_DAMAGED, 0, frames, 0, NULL, NULL);
}

/* ptr = the session given this channel (a reference). */
static inline int fy__msg_lease(fy_actor *to, fy_actor *session)
{
    return fy_actor_post(to, FY_RM_LEASE, 0, 0, 0, session, NULL);
}

/* The sync worker (its thread, store/syncer.c) -> writer: a job of the
 * writer's log finished.  u32 = -rc (0, or the errno of a failed sync),
 * u64 = the seq and fy_log_bytes position it made durable. */
static inline int fy__msg_synced(fy_actor *to, int rc, uint64_t seq, uint64_t bytes)
{
    return fy_actor_post(to, FY_RM_SYNCED, (uint32_t)-rc, seq, bytes, NULL, NULL);
}

/* Registry -> writer: close if still unused, else answer CHAN_KEEP. */
static inline int fy__msg_close(fy_actor *to)
{
    return fy_actor_post(to, FY_RM_CLOSE, 0, 0, 0, NULL, NULL);
}

/* ---- to an indexer ----------------------------------------------------- */

/* u32 = n, ptr = recs[n] (malloc'd). */
static inline int fy__msg_recs(fy_actor *to, uint32_t n, fy_idx_rec *recs)
{
    return fy_actor_post(to, FY_RM_RECS, n, 0, 0, recs, NULL);
}

/* Where is seq: u64[0] = seq, ptr = the forwarder to answer (a reference). */
static inline int fy__msg_lookup(fy_actor *to, uint64_t seq, fy_actor *forwarder)
{
    return fy_actor_post(to, FY_RM_LOOKUP, 0, seq, 0, forwarder, NULL);
}

/* u64[0] = the log's new first seq. */
static inline int fy__msg_trim(fy_actor *to, uint64_t first_seq)
{
    return fy_actor_post(to, FY_RM_TRIM, 0, first_seq, 0, NULL, NULL);
}

/* ---- to a forwarder ---------------------------------------------------- */

/* The answer to SUBSCRIBE: ptr = si (malloc'd), or NULL: the writer could
 * not track the forwarder (out of memory). */
static inline int fy__msg_subscribed(fy_actor *to, fy__sub_info *si)
{
    return fy_actor_post(to, FY_RM_SUBSCRIBED, 0, 0, 0, si, NULL);
}

/* ptr = b (one reference passes to the forwarder). */
static inline int fy__msg_live(fy_actor *to, fy__batch *b)
{
    return fy_actor_post(to, FY_RM_LIVE, 0, 0, 0, b, NULL);
}

/* The answer to LOOKUP: u32 = FY_E* or 0, u64 = the frame's seg, off (0, 0 on error). */
static inline int fy__msg_looked(fy_actor *to, uint32_t err, uint64_t seg, uint64_t off)
{
    return fy_actor_post(to, FY_RM_LOOKED, err, seg, off, NULL, NULL);
}

/* The writer dropped the forwarder's reference: it may stop. */
static inline int fy__msg_unsubscribed(fy_actor *to)
{
    return fy_actor_post(to, FY_RM_UNSUBSCRIBED, 0, 0, 0, NULL, NULL);
}

/* ---- cluster replication (actors/writer_isr.c) ------------------------- */

/* Forwarder -> writer: a follower's replica connection (ptr = j,
 * malloc'd: the writer frees it; on a failed post the sender does). */
static inline int fy__msg_replica_join(fy_actor *to, fy__replica_join *j)
{
    return fy_actor_post(to, FY_RM_REPLICA_JOIN, 0, 0, 0, j, NULL);
}

/* Forwarder -> writer: its follower's replica-stored frame.  ptr = the
 * forwarder (compare only), u64 = the report's cepoch and seq. */
static inline int fy__msg_replica_stored(fy_actor *to, fy_actor *forwarder, uint64_t cepoch,
                                         uint64_t seq)
{
    return fy_actor_post(to, FY_RM_REPLICA_STORED, 0, cepoch, seq, forwarder, NULL);
}

/* Writer -> a replica forwarder: this relay no longer leads the channel in
 * the connection's epoch; end it with an error frame (u32 = FY_E*). */
static inline int fy__msg_fence(fy_actor *to, uint32_t code)
{
    return fy_actor_post(to, FY_RM_FENCE, code, 0, 0, NULL, NULL);
}

/* ---- drain and health -------------------------------------------------- */

/* Relay -> registry -> writers -> forwarders: the drain timeout passed;
 * stop at a frame boundary, say bye. */
static inline int fy__msg_drain_cut(fy_actor *to)
{
    return fy_actor_post(to, FY_RM_DRAIN_CUT, 0, 0, 0, NULL, NULL);
}

/* Relay -> metrics: the acceptor listens. */
static inline int fy__msg_ready(fy_actor *to)
{
    return fy_actor_post(to, FY_RM_READY, 0, 0, 0, NULL, NULL);
}

#endif
