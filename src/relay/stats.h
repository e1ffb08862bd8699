/*
 * stats.h - actors' figures gathered by message, for /metrics.
 *
 * No figure is shared memory: the metrics actor (the collector) sends
 * FY_STATS_REQ to the actors it knows (registry, acceptor); each answers
 * with one record in a pool buffer (FY_STATS_REP) and may pass the request
 * on to the actors it owns (registry -> writers, writer -> forwarders,
 * acceptor -> sessions), saying in its record how many it passed it to, so
 * the collector knows how many answers to expect.  A buffer, not a heap
 * pointer, carries the record so that an answer to a collector that has
 * stopped is released by the runtime like any message.
 *
 * The collector is found through the relay's read-only context (a
 * reference the context holds until the relay is freed), not through the
 * request, so a request released unhandled by a stopping actor loses
 * nothing.
 *
 * REQ: u64[0] = scrape id.
 * REP: u64[0] = scrape id, buf = one fy_stats_rec.
 */
#ifndef FY_RELAY_STATS_H
#define FY_RELAY_STATS_H

#include <stdint.h>

#include "ferry/actor.h"
#include "ferry/buf.h"
#include "ferry/proto.h"

enum fy_stats_msg {
    FY_STATS_REQ = FY_MSG_USER + 0x7F00, /* far above the relay's own types */
    FY_STATS_REP = FY_MSG_USER + 0x7F01,
};

enum fy_stat_id {
    FY_ST_BYTES_IN,     /* session: bytes read; writer: bytes appended to the log */
    FY_ST_BYTES_OUT,    /* forwarder: bytes sent (live and disk); writer: sent by its receivers
                           that left */
    FY_ST_FRAMES_IN,    /* session / writer: frames */
    FY_ST_FRAMES_OUT,   /* forwarder: frames sent; writer: by its receivers that left */
    FY_ST_FILES,        /* writer: files stored */
    FY_ST_LAG_PKTS,     /* forwarder: packets behind the channel's end */
    FY_ST_LAG_BYTES,    /* forwarder: bytes behind */
    FY_ST_CATCHUPS,     /* forwarder: times it fell back to the file; writer: its receivers
                           that left */
    FY_ST_QUEUED_BYTES, /* forwarder: live buffers held; session: in flight */
    FY_ST_RECEIVERS,    /* writer: subscribed forwarders */
    FY_ST_NEXT_SEQ,     /* writer: next sequence number */
    FY_ST_ACCEPTED,     /* acceptor: connections accepted */
    FY_ST_DAMAGED,      /* writer: frames its channel's scrub found damaged on disk */
    FY_ST_CHANNELS,     /* registry: channels open */
    FY_ST_CHANNELS_CLOSED, /* registry: channels closed while idle */
    FY_ST_BYTES_DISK,   /* forwarder: of BYTES_OUT, those sent from the file (catch-up);
                           writer: its receivers that left */
    FY_ST_UP_CONNECTED, /* upstream: 1 while its link to the upstream relay streams */
    FY_ST_RECONNECTS,   /* upstream: links lost and made again */
    FY_ST_ENOSEQ,       /* upstream: times upstream no longer held the next seq */
    FY_ST_REFUSED,      /* acceptor: connections refused at a limit (FY_ELIMIT) */
    FY_ST_TLS_FAILED,   /* acceptor: sessions that ended in a failed TLS handshake */
    FY_ST_SYNC_FAILED,  /* writer: syncs of its log that failed (nothing acknowledged) */
    FY_ST_N
};

#define FY_STATS_ERRS 8

typedef struct fy_stats_rec {
    uint32_t actor;  /* fy_actor_id of the one answering */
    uint16_t kind;   /* its actor kind */
    uint16_t role;   /* session: 1 sender, 2 receiver, 0 not yet known */
    uint32_t fanout; /* requests it passed on: answers still to come */
    uint32_t depth;  /* its mailbox depth as it answered */
    char channel[72];
    char peer[64];
    char mode[16];   /* forwarder: "live" or "catch-up" */
    char client[FY_CLIENT_MAX + 1]; /* session, forwarder: the client's name from hello */
    uint64_t v[FY_ST_N];
    /* errors by code (FY_E* or errno), e.g. the acceptor's tally of how
     * sessions ended */
    uint32_t err_code[FY_STATS_ERRS];
    uint64_t err_n[FY_STATS_ERRS];
} fy_stats_rec;

/* Collector: ask `who` (any thread).  0 or -FY_ECLOSED / -ENOMEM. */
int fy_stats_ask(fy_actor *who, uint64_t scrape);
/* The same for a collector other than the context's (`ferry info`'s,
 * actors/qinfo.c): the request carries it (u64[1], no reference: such a
 * collector lives as long as the relay), and every answer to this scrape
 * goes to it instead. */
int fy_stats_ask_to(fy_actor *who, uint64_t scrape, fy_actor *collector);

/* Handler of a REQ: pass it on to `to`.  Returns 1 when sent (count it in
 * fanout), 0 when `to` is stopped or out of memory (do not count it). */
int fy_stats_pass(const fy_msg *req, fy_actor *to);

/* Handler of a REQ: send the record r (copied into a buffer of pool) to the
 * collector.  Call once per REQ.  0, or a negative error (the collector
 * then stops waiting at its deadline).  collector NULL: nothing to do.
 * req NULL: an unasked record (scrape id 0), a closing writer's last
 * counts, which the collector keeps for the channel's next writer. */
int fy_stats_answer(fy_bufpool *pool, fy_actor *collector, const fy_msg *req,
                    const fy_stats_rec *r);

/* Add n to the count of err in r's error table (the last slot takes what
 * does not fit). */
void fy_stats_err(fy_stats_rec *r, uint32_t err, uint64_t n);

#endif
