/*
 * notice.c - the notice payload (frame type 48, FY_FT_NOTICE): an edge
 * relay tells a receiver what it skipped and why (docs/protocol.md,
 * "Notices").  Same rules as the other control payloads (payload.c):
 * reserved fields zero, no trailing bytes, text without NUL.
 *
 *  0 code u32 (!= 0) | 4 text_len u16 (<= 512) | 6 reserved u16 = 0 |
 *  8 at_seq u64 (!= 0) | 16 up_from u64 | 24 up_to u64 (>= up_from) | 32 text
 */
#include "ferry/proto.h"

#include <errno.h>
#include <string.h>

#include "ferry/err.h"
#include "base/le.h"

#define NOTICE_FIXED 32u

int fy_notice_encode(const fy_notice *v, uint8_t *out, size_t cap, size_t *len)
{
    size_t tl = strnlen(v->text, FY_NOTICE_TEXT_MAX + 1);

    if (v->code == 0 || v->at_seq == 0 || v->up_to < v->up_from || tl > FY_NOTICE_TEXT_MAX)
        return -EINVAL;
    if (cap < NOTICE_FIXED + tl)
        return -ENOBUFS;
    fy__st32(out, v->code);
    fy__st16(out + 4, (uint16_t)tl);
    fy__st16(out + 6, 0);
    fy__st64(out + 8, v->at_seq);
    fy__st64(out + 16, v->up_from);
    fy__st64(out + 24, v->up_to);
    memcpy(out + NOTICE_FIXED, v->text, tl);
    *len = NOTICE_FIXED + tl;
    return 0;
}

int fy_notice_decode(const uint8_t *p, size_t n, fy_notice *v)
{
    if (n < NOTICE_FIXED)
        return -FY_ETRUNC;
    size_t tl = fy__ld16(p + 4);
    uint64_t at = fy__ld64(p + 8), from = fy__ld64(p + 16), to = fy__ld64(p + 24);
    if (fy__ld32(p) == 0 || tl > FY_NOTICE_TEXT_MAX || fy__ld16(p + 6) != 0 || at == 0 ||
        to < from)
        return -FY_EPAYLOAD;
    if (n < NOTICE_FIXED + tl)
        return -FY_ETRUNC;
    if (n > NOTICE_FIXED + tl || (tl && memchr(p + NOTICE_FIXED, 0, tl)))
        return -FY_EPAYLOAD;
    v->code = fy__ld32(p);
    v->at_seq = at;
    v->up_from = from;
    v->up_to = to;
    memcpy(v->text, p + NOTICE_FIXED, tl);
    v->text[tl] = '\0';
    return 0;
}
