/*
 * query.h - the messages of a query connection (docs/protocol.md,
 * "Queries") between its session, the query collector (qinfo.c) and the
 * registry, and the registry's half of deleting a channel.
 *
 * QREPLY (to a session): u32 = 0 or FY_E*, buf = text: with 0, QREC
 *   records, one a line; else the error's text.  A pool buffer, so a reply
 *   to a session that has gone is released by the runtime.
 * QINFO (to the collector): ptr = fy__qinfo_req (malloc'd; the collector
 *   frees it and drops its session reference).  The collector lives as
 *   long as the relay, so the pointer is never lost.
 * CHAN_DROP (to the registry): ptr = fy__chan_req (reply: the session);
 *   answered with QREPLY.
 */
#ifndef FERRY_ACTORS_QUERY_H
#define FERRY_ACTORS_QUERY_H

#include "relay_int.h"

typedef struct fy__qinfo_req {
    fy_actor *reply; /* a reference, dropped by the collector */
    char channel[FY_NAME_MAX + 1];
} fy__qinfo_req;

/* Post QREPLY to `to` with code and printf-style text (any actor).  0 or
 * a negative error. */
int fy__query_post(const fy__ctx *ctx, fy_actor *to, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int fy__msg_qinfo(fy_actor *to, fy__qinfo_req *q)
{
    return fy_actor_post(to, FY_RM_QINFO, 0, 0, 0, q, NULL);
}

static inline int fy__msg_chan_drop(fy_actor *to, fy__chan_req *q)
{
    return fy_actor_post(to, FY_RM_CHAN_DROP, 0, 0, 0, q, NULL);
}

/* The registry, for CHAN_DROP q: delete the channel q->name, which no
 * writer has open (the registry's turn keeps it so until this returns),
 * and answer q->reply.  Frees q. */
void fy__query_drop_now(const fy__ctx *ctx, fy__chan_req *q);
/* The registry: refuse CHAN_DROP q with code (FY_E*) and why.  Frees q. */
void fy__query_drop_refuse(const fy__ctx *ctx, fy__chan_req *q, uint32_t code, const char *why);

#endif
