/*
 * outq.h - bytes waiting for a non-blocking socket (fy_outq): control
 * frames an actor answers with (acks, pongs, errors, bye) while the peer's
 * receive window is full.  Bounded, so a peer that never reads its
 * control frames is told apart (-ENOBUFS) instead of growing a buffer.
 *
 * The struct is visible so owners can embed it; its fields are this
 * module's.  One owner, no locking.
 */
#ifndef FERRY_NET_OUTQ_H
#define FERRY_NET_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/conn.h"

typedef struct fy_outq {
    uint8_t *b;
    size_t cap, len, off; /* unsent: b[off..len) */
    size_t max;           /* the most it may hold (0: 256 KiB) */
} fy_outq;

/* Write what is queued to c, and what c itself holds (a TLS record,
 * fy_conn_flush).  0 when all is out, -EAGAIN when the socket is full
 * (wait for writability), or -errno. */
int fy_outq_flush(fy_outq *q, fy_conn *c);
/* Queue n bytes and try to write them.  0 (written or queued), -ENOBUFS
 * when the queue would pass max, -ENOMEM, or a write error (-errno). */
int fy_outq_push(fy_outq *q, fy_conn *c, const void *p, size_t n);
static inline bool fy_outq_empty(const fy_outq *q)
{
    return q->off == q->len;
}
void fy_outq_free(fy_outq *q);

#endif
