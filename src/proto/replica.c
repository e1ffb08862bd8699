/*
 * replica.c - the replica-stored payload (frame type 64,
 * FY_FT_REPLICA_STORED): a cluster follower tells its channel's leader how
 * far it has stored the channel (docs/cluster.md, "Replication").  Same
 * rules as the other control payloads (payload.c): fixed size, no
 * trailing bytes.
 *
 *  0 cepoch u64 (!= 0) | 8 seq u64
 */
#include "ferry/proto.h"

#include <errno.h>

#include "ferry/err.h"
#include "base/le.h"

int fy_replica_stored_encode(const fy_replica_stored *v, uint8_t *out, size_t cap, size_t *len)
{
    if (v->cepoch == 0)
        return -EINVAL;
    if (cap < FY_REPLICA_STORED_SIZE)
        return -ENOBUFS;
    fy__st64(out, v->cepoch);
    fy__st64(out + 8, v->seq);
    *len = FY_REPLICA_STORED_SIZE;
    return 0;
}

int fy_replica_stored_decode(const uint8_t *p, size_t n, fy_replica_stored *v)
{
    if (n < FY_REPLICA_STORED_SIZE)
        return -FY_ETRUNC;
    if (n > FY_REPLICA_STORED_SIZE || fy__ld64(p) == 0)
        return -FY_EPAYLOAD;
    v->cepoch = fy__ld64(p);
    v->seq = fy__ld64(p + 8);
    return 0;
}
