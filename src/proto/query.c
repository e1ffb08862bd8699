/*
 * query.c - the payloads of the query frames (QUERY, QEND) and the client
 * name check.  docs/protocol.md, "Queries", is the byte layout; QREC's
 * payload is a key=value text line and needs no codec.
 *
 * QUERY:
 *  0 op u8 | 1 reserved u8 (0) | 2 flags u16 (FY_QF_*) | 4 nnames u16 |
 *  6 reserved u16 (0) | 8 arg1 u64 | 16 arg2 u64 | 24 token_len u8 |
 *  25 channel_len u8 | 26 client_len u8 | 27 reserved u8 (0) |
 *  28 token | channel | client | nnames x (len u8 | name)
 * QEND: 0 code u32 | 4 count u32
 * SKIP: 0 first u64 | 8 next u64 (a receiver's frame, kept here with the
 * other frames of deleting: docs/protocol.md, "Deleted files")
 */
#include <errno.h>
#include <string.h>

#include "base/le.h"
#include "ferry/err.h"
#include "ferry/proto.h"

#define QUERY_FIXED 28u

int fy_client_name_check(const char *name, size_t len)
{
    if (len == 0 || len > FY_CLIENT_MAX)
        return -FY_ENAME;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._@+:-", c)) || c == 0)
            return -FY_ENAME;
    }
    return 0;
}

static int put(uint8_t *out, size_t cap, size_t *at, const void *p, size_t n)
{
    if (*at + n > cap)
        return -ENOBUFS;
    memcpy(out + *at, p, n);
    *at += n;
    return 0;
}

int fy_query_encode(const fy_query *v, uint8_t *out, size_t cap, size_t *len)
{
    size_t tl = strnlen(v->token, FY_TOKEN_MAX + 1), cl = strnlen(v->channel, FY_NAME_MAX + 1);
    size_t kl = strnlen(v->client, FY_CLIENT_MAX + 1), at = QUERY_FIXED;
    int rc = 0;

    if (tl > FY_TOKEN_MAX || v->op < FY_QOP_LS || v->op > FY_QOP_RETAIN ||
        (v->flags & ~FY_QF_KNOWN) || v->nnames > FY_QUERY_NAMES_MAX)
        return -EINVAL;
    if ((cl || v->op != FY_QOP_LS) && fy_name_check(v->channel, cl) < 0)
        return -FY_ENAME;
    if (kl && fy_client_name_check(v->client, kl) < 0)
        return -FY_ENAME;
    if (cap < QUERY_FIXED)
        return -ENOBUFS;
    memset(out, 0, QUERY_FIXED);
    out[0] = v->op;
    fy__st16(out + 2, v->flags);
    fy__st16(out + 4, v->nnames);
    fy__st64(out + 8, v->arg1);
    fy__st64(out + 16, v->arg2);
    out[24] = (uint8_t)tl;
    out[25] = (uint8_t)cl;
    out[26] = (uint8_t)kl;
    if ((rc = put(out, cap, &at, v->token, tl)) < 0 || (rc = put(out, cap, &at, v->channel, cl)) < 0 ||
        (rc = put(out, cap, &at, v->client, kl)) < 0)
        return rc;
    for (uint16_t i = 0; i < v->nnames; i++) {
        size_t nl = strnlen(v->names[i], FY_NAME_MAX + 1);
        uint8_t b = (uint8_t)nl;
        if (fy_path_check(v->names[i], nl) < 0) /* file names: relative paths (§12) */
            return -FY_ENAME;
        if ((rc = put(out, cap, &at, &b, 1)) < 0 || (rc = put(out, cap, &at, v->names[i], nl)) < 0)
            return rc;
    }
    *len = at;
    return 0;
}

/* Take a length-prefixed string of n bytes at p[*at]; -FY_ETRUNC if short. */
static int take(const uint8_t *p, size_t n, size_t *at, size_t len, char *dst)
{
    if (len > n - *at)
        return -FY_ETRUNC;
    memcpy(dst, p + *at, len);
    dst[len] = 0;
    *at += len;
    return 0;
}

int fy_query_decode(const uint8_t *p, size_t n, fy_query *v)
{
    size_t at = QUERY_FIXED;
    int rc;

    if (n < QUERY_FIXED)
        return -FY_ETRUNC;
    memset(v, 0, sizeof *v);
    v->op = p[0];
    v->flags = fy__ld16(p + 2);
    v->nnames = fy__ld16(p + 4);
    v->arg1 = fy__ld64(p + 8);
    v->arg2 = fy__ld64(p + 16);
    if (v->op < FY_QOP_LS || v->op > FY_QOP_RETAIN || p[1] || fy__ld16(p + 6) || p[27] ||
        (v->flags & ~FY_QF_KNOWN) || v->nnames > FY_QUERY_NAMES_MAX || p[26] > FY_CLIENT_MAX)
        return -FY_EPAYLOAD;
    if ((rc = take(p, n, &at, p[24], v->token)) < 0 || (rc = take(p, n, &at, p[25], v->channel)) < 0 ||
        (rc = take(p, n, &at, p[26], v->client)) < 0)
        return rc;
    if (strlen(v->token) != p[24] || (p[26] && fy_client_name_check(v->client, p[26]) < 0))
        return -FY_EPAYLOAD;
    if ((p[25] || v->op != FY_QOP_LS) && fy_name_check(v->channel, p[25]) < 0)
        return -FY_ENAME;
    for (uint16_t i = 0; i < v->nnames; i++) {
        if (at >= n)
            return -FY_ETRUNC;
        size_t nl = p[at++];
        if ((rc = take(p, n, &at, nl, v->names[i])) < 0)
            return rc;
        if (fy_path_check(v->names[i], nl) < 0) /* file names: relative paths (§12) */
            return -FY_ENAME;
    }
    return at == n ? 0 : -FY_EPAYLOAD;
}

int fy_qend_encode(const fy_qend *v, uint8_t *out, size_t cap, size_t *len)
{
    if (cap < 8)
        return -ENOBUFS;
    fy__st32(out, v->code);
    fy__st32(out + 4, v->count);
    *len = 8;
    return 0;
}

int fy_qend_decode(const uint8_t *p, size_t n, fy_qend *v)
{
    if (n < 8)
        return -FY_ETRUNC;
    if (n > 8)
        return -FY_EPAYLOAD;
    v->code = fy__ld32(p);
    v->count = fy__ld32(p + 4);
    return 0;
}

int fy_skip_encode(const fy_skip *v, uint8_t *out, size_t cap, size_t *len)
{
    if (v->first == 0 || v->next <= v->first)
        return -EINVAL;
    if (cap < 16)
        return -ENOBUFS;
    fy__st64(out, v->first);
    fy__st64(out + 8, v->next);
    *len = 16;
    return 0;
}

int fy_skip_decode(const uint8_t *p, size_t n, fy_skip *v)
{
    if (n < 16)
        return -FY_ETRUNC;
    if (n > 16)
        return -FY_EPAYLOAD;
    v->first = fy__ld64(p);
    v->next = fy__ld64(p + 8);
    return v->first && v->next > v->first ? 0 : -FY_EPAYLOAD;
}
