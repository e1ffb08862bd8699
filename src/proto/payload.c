/*
 * payload.c - control-frame payloads (hello, welcome, file-begin, file-end,
 * ack, error) and the name rule.
 *
 * Each payload is a fixed little-endian part followed by its variable
 * strings, with explicit lengths and no terminators; layouts are in
 * docs/protocol.md and beside each codec below.  Decoding is strict: a
 * short payload is -FY_ETRUNC, anything left over or any reserved byte
 * that is not zero is -FY_EPAYLOAD, and a name that could not be used as a
 * single path component is -FY_ENAME.  Strictness costs nothing here and
 * keeps room for later versions to give those bytes a meaning.  The one
 * exceptions are welcome and file-begin, which grew optional trailing
 * fields: their decoders ignore bytes after the fields they know (see
 * their layouts below).  File names are relative paths (fy_path_check).
 */
#include "ferry/proto.h"

#include <errno.h>
#include <string.h>

#include "ferry/err.h"
#include "base/le.h"

#define HELLO_FIXED 16u
#define WELCOME_SIZE 24u
#define WELCOME_EXT_FIXED 52u
#define WELCOME_EPOCH_SIZE 24u
#define WELCOME_SRC_SIZE (16u + FY_SHA256_LEN)
#define HELLO_AHEAD_SIZE 16u
#define HELLO_REPLICA_SIZE 24u
#define WELCOME_REPLICA_SIZE 16u
#define FBEGIN_FIXED 12u
#define FEND_SIZE (8u + FY_SHA256_LEN)
#define ACK_SIZE 8u
#define ERROR_FIXED 8u

int fy_name_check(const char *name, size_t len)
{
    if (len == 0 || len > FY_NAME_MAX || name[0] == '.')
        return -FY_ENAME;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return -FY_ENAME;
    }
    return 0;
}

/* Length of the UTF-8 sequence at p[0..n) (shortest form, no surrogates,
 * at most U+10FFFF), or 0 when it is not valid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || /* overlong, surrogate */
        (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))  /* overlong, > U+10FFFF */
        return 0;
    return len;
}

int fy_path_check(const char *path, size_t len)
{
    const unsigned char *p = (const unsigned char *)path;
    size_t comp = 0; /* start of the current component */

    if (len == 0 || len > FY_NAME_MAX)
        return -FY_ENAME;
    for (size_t i = 0; i <= len;) {
        if (i == len || p[i] == '/') {
            size_t cl = i - comp;
            if (cl == 0 || (cl == 1 && p[comp] == '.') ||
                (cl == 2 && p[comp] == '.' && p[comp + 1] == '.'))
                return -FY_ENAME; /* empty (leading, trailing, "//"), "." or ".." */
            comp = ++i;
            continue;
        }
        if (p[i] < 0x20 || p[i] == 0x7f)
            return -FY_ENAME;
        size_t u = utf8_len(p + i, len - i);
        if (u == 0)
            return -FY_ENAME;
        i += u;
    }
    return 0;
}

/* Length of a NUL-terminated field of an array of cap+1 bytes; cap+1 when
 * the array holds no terminator (the encoder then refuses it). */
static size_t field_len(const char *s, size_t cap)
{
    return strnlen(s, cap + 1);
}

/* Copy a length-prefixed string out of a payload into a C string. */
static void take_str(char *dst, const uint8_t *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Opaque strings (token, error text) become C strings, so they may not
 * hold a NUL byte: it would silently cut them short. */
static bool has_nul(const uint8_t *p, size_t n)
{
    return n > 0 && memchr(p, 0, n) != NULL;
}

/* ---- hello --------------------------------------------------------------
 *  0 role u8 | 1 mode u8 | 2 name_len u16 | 4 token_len u16 |
 *  6 flags u16 (FY_HELLO_F_*; unknown bits refused) | 8 resume_from u64 |
 *  16 name | 16+name_len token
 * and, only with FY_HELLO_F_AHEAD, after the token:
 *  +0 epoch u64 | +8 part_seq u64
 * and, only with FY_HELLO_F_CLIENT:
 *  +0 client_len u8 | +1 client (fy_client_name_check)
 * and, only with FY_HELLO_F_REPLICA (which needs FY_HELLO_F_CLIENT), last:
 *  +0 cepoch u64 (!= 0) | +8 last_epoch u64 | +16 log_next u64 (!= 0) */

static bool replica_flags_ok(uint16_t fl)
{
    return !(fl & FY_HELLO_F_REPLICA) || (fl & FY_HELLO_F_CLIENT);
}

int fy_hello_encode(const fy_hello *v, uint8_t *out, size_t cap, size_t *len)
{
    size_t nl = field_len(v->channel, FY_NAME_MAX);
    size_t tl = field_len(v->token, FY_TOKEN_MAX);

    if (fy_name_check(v->channel, nl) < 0)
        return -FY_ENAME;
    if (tl > FY_TOKEN_MAX || (v->role != FY_ROLE_SENDER && v->role != FY_ROLE_RECEIVER) ||
        v->mode > FY_MODE_RESUME || (v->flags & ~FY_HELLO_F_KNOWN))
        return -EINVAL;
    size_t ah = (v->flags & FY_HELLO_F_AHEAD) ? HELLO_AHEAD_SIZE : 0;
    size_t cl = field_len(v->client, FY_CLIENT_MAX);
    size_t ch = (v->flags & FY_HELLO_F_CLIENT) ? 1 + cl : 0;
    if (ch && fy_client_name_check(v->client, cl) < 0)
        return -EINVAL;
    size_t rp = (v->flags & FY_HELLO_F_REPLICA) ? HELLO_REPLICA_SIZE : 0;
    if (!replica_flags_ok(v->flags) || (rp && (v->cepoch == 0 || v->log_next == 0)))
        return -EINVAL;
    if (cap < HELLO_FIXED + nl + tl + ah + ch + rp)
        return -ENOBUFS;
    out[0] = v->role;
    out[1] = v->mode;
    fy__st16(out + 2, (uint16_t)nl);
    fy__st16(out + 4, (uint16_t)tl);
    fy__st16(out + 6, v->flags);
    fy__st64(out + 8, v->resume_from);
    memcpy(out + HELLO_FIXED, v->channel, nl);
    memcpy(out + HELLO_FIXED + nl, v->token, tl);
    if (ah) {
        fy__st64(out + HELLO_FIXED + nl + tl, v->epoch);
        fy__st64(out + HELLO_FIXED + nl + tl + 8, v->part_seq);
    }
    if (ch) {
        out[HELLO_FIXED + nl + tl + ah] = (uint8_t)cl;
        memcpy(out + HELLO_FIXED + nl + tl + ah + 1, v->client, cl);
    }
    if (rp) {
        uint8_t *r = out + HELLO_FIXED + nl + tl + ah + ch;
        fy__st64(r, v->cepoch);
        fy__st64(r + 8, v->last_epoch);
        fy__st64(r + 16, v->log_next);
    }
    *len = HELLO_FIXED + nl + tl + ah + ch + rp;
    return 0;
}

int fy_hello_decode(const uint8_t *p, size_t n, fy_hello *v)
{
    if (n < HELLO_FIXED)
        return -FY_ETRUNC;
    if ((p[0] != FY_ROLE_SENDER && p[0] != FY_ROLE_RECEIVER) || p[1] > FY_MODE_RESUME ||
        (fy__ld16(p + 6) & ~FY_HELLO_F_KNOWN) || !replica_flags_ok(fy__ld16(p + 6)))
        return -FY_EPAYLOAD;
    size_t nl = fy__ld16(p + 2), tl = fy__ld16(p + 4);
    size_t ah = (fy__ld16(p + 6) & FY_HELLO_F_AHEAD) ? HELLO_AHEAD_SIZE : 0;
    size_t ch = 0, at = HELLO_FIXED + nl + tl + ah;
    if (fy__ld16(p + 6) & FY_HELLO_F_CLIENT) {
        if (n <= at || n < at + 1 + (size_t)p[at])
            return -FY_ETRUNC;
        if (fy_client_name_check((const char *)p + at + 1, p[at]) < 0)
            return -FY_EPAYLOAD;
        ch = 1 + (size_t)p[at];
    }
    size_t rp = (fy__ld16(p + 6) & FY_HELLO_F_REPLICA) ? HELLO_REPLICA_SIZE : 0;
    if (n < at + ch + rp)
        return -FY_ETRUNC;
    if (n > at + ch + rp || (rp && (fy__ld64(p + at + ch) == 0 || fy__ld64(p + at + ch + 16) == 0)))
        return -FY_EPAYLOAD;
    const uint8_t *name = p + HELLO_FIXED, *tok = name + nl;
    if (fy_name_check((const char *)name, nl) < 0)
        return -FY_ENAME;
    if (tl > FY_TOKEN_MAX || has_nul(tok, tl))
        return -FY_EPAYLOAD;
    v->role = p[0];
    v->mode = p[1];
    v->flags = fy__ld16(p + 6);
    v->resume_from = fy__ld64(p + 8);
    take_str(v->channel, name, nl);
    take_str(v->token, tok, tl);
    v->epoch = ah ? fy__ld64(tok + tl) : 0;
    v->part_seq = ah ? fy__ld64(tok + tl + 8) : 0;
    v->client[0] = 0;
    if (ch)
        take_str(v->client, p + at + 1, ch - 1);
    v->cepoch = rp ? fy__ld64(p + at + ch) : 0;
    v->last_epoch = rp ? fy__ld64(p + at + ch + 8) : 0;
    v->log_next = rp ? fy__ld64(p + at + ch + 16) : 0;
    return 0;
}

/* ---- welcome ------------------------------------------------------------
 *  0 channel u32 | 4 max_payload u32 | 8 next_seq u64 | 16 first_seq u64
 * and, only to a hello with FY_HELLO_F_RESUME, the extension:
 *  24 part_seq u64 | 32 part_size u64 | 40 part_got u64 | 48 name_len u16 |
 *  50 reserved u16 = 0 | 52 part name
 * part_seq 0 means no file in progress (then name_len, size and got are 0).
 * Then, only to a hello with FY_HELLO_F_AHEAD, the epoch fields:
 *  52+name_len epoch u64 | +8 epoch_seq u64 | +16 flags u32 (FY_WELCOME_F_*;
 *  unknown bits refused) | +20 reserved u32 = 0
 * Then, only to a hello with FY_HELLO_F_SOURCE (which gets the epoch fields
 * too), the source fields:
 *  +24 part_source u64 | +8 flags u32 (FY_WELCOME_SRC_F_*) | +12 reserved u32 |
 *  +16 prefix SHA-256 [32]
 * Then, only to a hello with FY_HELLO_F_REPLICA (after the source fields,
 * zeros when that hello did not ask for them), the replica fields:
 *  +48 cepoch u64 (!= 0) | +8 trunc_seq u64
 * Unlike the other payloads, bytes after the fields a decoder knows are
 * ignored: a later relay may append fields for the clients that ask. */

int fy_welcome_encode(const fy_welcome *v, uint8_t *out, size_t cap, size_t *len)
{
    size_t nl = v->ext && v->part_seq ? field_len(v->part_name, FY_NAME_MAX) : 0;

    if (v->max_payload == 0 || v->max_payload > FY_PAYLOAD_MAX_LIMIT || v->next_seq == 0)
        return -EINVAL;
    if (v->ext && v->part_seq && fy_path_check(v->part_name, nl) < 0)
        return -FY_ENAME;
    if (v->ext && (v->part_got > v->part_size || (!v->part_seq && (v->part_size || v->part_got))))
        return -EINVAL;
    if (v->ext2 && (!v->ext || (v->wflags & ~FY_WELCOME_F_KNOWN)))
        return -EINVAL;
    if (v->ext3 && (!v->ext2 || (v->src_flags & ~FY_WELCOME_SRC_F_PREFIX)))
        return -EINVAL;
    if (v->ext4 && (!v->ext2 || v->cepoch == 0))
        return -EINVAL;
    size_t e2 = (v->ext2 ? WELCOME_EPOCH_SIZE : 0) + (v->ext3 || v->ext4 ? WELCOME_SRC_SIZE : 0) +
                (v->ext4 ? WELCOME_REPLICA_SIZE : 0);
    if (cap < (v->ext ? WELCOME_EXT_FIXED + nl + e2 : WELCOME_SIZE))
        return -ENOBUFS;
    fy__st32(out + 0, v->channel);
    fy__st32(out + 4, v->max_payload);
    fy__st64(out + 8, v->next_seq);
    fy__st64(out + 16, v->first_seq);
    *len = WELCOME_SIZE;
    if (!v->ext)
        return 0;
    fy__st64(out + 24, v->part_seq);
    fy__st64(out + 32, v->part_size);
    fy__st64(out + 40, v->part_got);
    fy__st16(out + 48, (uint16_t)nl);
    fy__st16(out + 50, 0);
    memcpy(out + WELCOME_EXT_FIXED, v->part_name, nl);
    *len = WELCOME_EXT_FIXED + nl;
    if (!v->ext2)
        return 0;
    uint8_t *e = out + WELCOME_EXT_FIXED + nl;
    fy__st64(e, v->epoch);
    fy__st64(e + 8, v->epoch_seq);
    fy__st32(e + 16, v->wflags);
    fy__st32(e + 20, 0);
    *len += WELCOME_EPOCH_SIZE;
    if (!v->ext3 && !v->ext4)
        return 0;
    e += WELCOME_EPOCH_SIZE;
    memset(e, 0, WELCOME_SRC_SIZE);
    if (v->ext3) {
        fy__st64(e, v->part_source);
        fy__st32(e + 8, v->src_flags);
        memcpy(e + 16, v->part_prefix_sha, FY_SHA256_LEN);
    }
    *len += WELCOME_SRC_SIZE;
    if (!v->ext4)
        return 0;
    e += WELCOME_SRC_SIZE;
    fy__st64(e, v->cepoch);
    fy__st64(e + 8, v->trunc_seq);
    *len += WELCOME_REPLICA_SIZE;
    return 0;
}

/* The replica fields at e (n bytes from there on; 0: none) into *w. */
static int welcome_replica_decode(const uint8_t *e, size_t n, fy_welcome *w)
{
    if (n < WELCOME_REPLICA_SIZE)
        return 0; /* bytes after the known fields are ignored */
    if (fy__ld64(e) == 0)
        return -FY_EPAYLOAD;
    w->ext4 = true;
    w->cepoch = fy__ld64(e);
    w->trunc_seq = fy__ld64(e + 8);
    return 0;
}

/* The source fields at e (n bytes from there on; 0: none) into *w. */
static int welcome_src_decode(const uint8_t *e, size_t n, fy_welcome *w)
{
    if (n < WELCOME_SRC_SIZE)
        return 0; /* not ours: bytes after the known fields are ignored */
    uint32_t fl = fy__ld32(e + 8);
    /* As the epoch fields: unknown flag bits or a reserved word that is not
     * 0 are refused, so what is taken re-encodes to the same bytes. */
    if ((fl & ~FY_WELCOME_SRC_F_PREFIX) || fy__ld32(e + 12) != 0)
        return -FY_EPAYLOAD;
    w->ext3 = true;
    w->part_source = fy__ld64(e);
    w->src_flags = fl;
    memcpy(w->part_prefix_sha, e + 16, FY_SHA256_LEN);
    return welcome_replica_decode(e + WELCOME_SRC_SIZE, n - WELCOME_SRC_SIZE, w);
}

/* The epoch fields at e (n bytes from there on) into *w. */
static int welcome_epoch_decode(const uint8_t *e, size_t n, fy_welcome *w)
{
    if (n < WELCOME_EPOCH_SIZE)
        return -FY_ETRUNC;
    uint32_t fl = fy__ld32(e + 16);
    if ((fl & ~FY_WELCOME_F_KNOWN) || fy__ld32(e + 20) != 0)
        return -FY_EPAYLOAD;
    w->ext2 = true;
    w->epoch = fy__ld64(e);
    w->epoch_seq = fy__ld64(e + 8);
    w->wflags = fl;
    return welcome_src_decode(e + WELCOME_EPOCH_SIZE, n - WELCOME_EPOCH_SIZE, w);
}

int fy_welcome_decode(const uint8_t *p, size_t n, fy_welcome *v)
{
    if (n < WELCOME_SIZE)
        return -FY_ETRUNC;
    uint32_t maxp = fy__ld32(p + 4);
    uint64_t next = fy__ld64(p + 8);
    if (maxp == 0 || maxp > FY_PAYLOAD_MAX_LIMIT || next == 0)
        return -FY_EPAYLOAD;
    fy_welcome w = {.channel = fy__ld32(p), .max_payload = maxp, .next_seq = next,
                    .first_seq = fy__ld64(p + 16)};
    if (n > WELCOME_SIZE) {
        if (n < WELCOME_EXT_FIXED)
            return -FY_ETRUNC;
        w.ext = true;
        w.part_seq = fy__ld64(p + 24);
        w.part_size = fy__ld64(p + 32);
        w.part_got = fy__ld64(p + 40);
        size_t nl = fy__ld16(p + 48);
        if (fy__ld16(p + 50) != 0 || w.part_got > w.part_size ||
            (!w.part_seq && (nl || w.part_size || w.part_got)))
            return -FY_EPAYLOAD;
        if (n < WELCOME_EXT_FIXED + nl)
            return -FY_ETRUNC;
        if (w.part_seq && fy_path_check((const char *)p + WELCOME_EXT_FIXED, nl) < 0)
            return -FY_ENAME;
        take_str(w.part_name, p + WELCOME_EXT_FIXED, nl);
        if (n > WELCOME_EXT_FIXED + nl) {
            int rc = welcome_epoch_decode(p + WELCOME_EXT_FIXED + nl, n - WELCOME_EXT_FIXED - nl, &w);
            if (rc < 0)
                return rc;
        }
    }
    *v = w;
    return 0;
}

/* ---- file-begin ---------------------------------------------------------
 *  0 size u64 | 8 name_len u16 | 10 reserved u16 = 0 | 12 name
 * and optionally the trailer:
 *  12+name_len flags u32 | +4 mode u32 | +8 mtime_ns i64 | +16 source u64 */

int fy_file_begin_encode(const fy_file_begin *v, uint8_t *out, size_t cap, size_t *len)
{
    size_t nl = field_len(v->name, FY_NAME_MAX);
    size_t ext = v->ext ? FY_FILE_BEGIN_EXT : 0;

    if (fy_path_check(v->name, nl) < 0)
        return -FY_ENAME;
    if (v->ext && (v->fflags & ~FY_FB_F_KNOWN))
        return -EINVAL;
    if (cap < FBEGIN_FIXED + nl + ext)
        return -ENOBUFS;
    fy__st64(out, v->size);
    fy__st16(out + 8, (uint16_t)nl);
    fy__st16(out + 10, 0);
    memcpy(out + FBEGIN_FIXED, v->name, nl);
    *len = FBEGIN_FIXED + nl + ext;
    if (!ext)
        return 0;
    uint8_t *e = out + FBEGIN_FIXED + nl;
    fy__st32(e, v->fflags);
    fy__st32(e + 4, v->mode);
    fy__st64(e + 8, (uint64_t)v->mtime_ns);
    fy__st64(e + 16, v->source);
    return 0;
}

/* The trailer after the name: bytes after the 24 known ones are ignored
 * (later fields); unknown flag bits too, so a later sender's trailer
 * still decodes (its fields are then not used). */
int fy_file_begin_decode(const uint8_t *p, size_t n, fy_file_begin *v)
{
    if (n < FBEGIN_FIXED)
        return -FY_ETRUNC;
    if (fy__ld16(p + 10) != 0)
        return -FY_EPAYLOAD;
    size_t nl = fy__ld16(p + 8);
    if (n < FBEGIN_FIXED + nl)
        return -FY_ETRUNC;
    size_t ext = n - FBEGIN_FIXED - nl;
    if (ext && ext < FY_FILE_BEGIN_EXT)
        return -FY_ETRUNC;
    /* The trailer is exact: a later field comes with a flag bit of its own
     * (FY_FB_F_*), so what is taken here re-encodes to the same bytes. */
    if (ext > FY_FILE_BEGIN_EXT)
        return -FY_EPAYLOAD;
    if (fy_path_check((const char *)p + FBEGIN_FIXED, nl) < 0)
        return -FY_ENAME;
    *v = (fy_file_begin){.size = fy__ld64(p), .ext = ext != 0};
    take_str(v->name, p + FBEGIN_FIXED, nl);
    if (ext) {
        const uint8_t *e = p + FBEGIN_FIXED + nl;
        if ((fy__ld32(e) & ~FY_FB_F_KNOWN) || (fy__ld32(e + 4) & ~07777u))
            return -FY_EPAYLOAD;
        v->fflags = fy__ld32(e);
        v->mode = fy__ld32(e + 4);
        v->mtime_ns = (int64_t)fy__ld64(e + 8);
        v->source = fy__ld64(e + 16);
    }
    return 0;
}

/* ---- dup-ask, dup-answer ------------------------------------------------
 * dup-ask:    0 size u64 | 8 name_len u16 | 10 reserved u16 = 0 | 12 name
 * dup-answer: 0 seq u64 | 8 sha256[32] */

int fy_dup_ask_encode(const fy_dup_ask *v, uint8_t *out, size_t cap, size_t *len)
{
    fy_file_begin fb = {.size = v->size};
    memcpy(fb.name, v->name, sizeof fb.name);
    return fy_file_begin_encode(&fb, out, cap, len);
}

int fy_dup_ask_decode(const uint8_t *p, size_t n, fy_dup_ask *v)
{
    fy_file_begin fb;
    int rc = n >= FBEGIN_FIXED && n > FBEGIN_FIXED + fy__ld16(p + 8) ? -FY_EPAYLOAD
             : fy_file_begin_decode(p, n, &fb);
    if (rc < 0)
        return rc;
    v->size = fb.size;
    memcpy(v->name, fb.name, sizeof v->name);
    return 0;
}

int fy_dup_answer_encode(const fy_dup_answer *v, uint8_t *out, size_t cap, size_t *len)
{
    fy_file_end fe = {.size = v->seq};
    memcpy(fe.sha256, v->sha256, sizeof fe.sha256);
    return fy_file_end_encode(&fe, out, cap, len);
}

int fy_dup_answer_decode(const uint8_t *p, size_t n, fy_dup_answer *v)
{
    fy_file_end fe;
    int rc = fy_file_end_decode(p, n, &fe);
    if (rc < 0)
        return rc;
    v->seq = fe.size;
    memcpy(v->sha256, fe.sha256, sizeof v->sha256);
    return 0;
}

/* ---- hole ---------------------------------------------------------------
 *  0 len u64 (1 .. 2^62) */

#define HOLE_SIZE 8u
#define HOLE_MAX ((uint64_t)1 << 62)

int fy_hole_encode(const fy_hole *v, uint8_t *out, size_t cap, size_t *len)
{
    if (v->len == 0 || v->len > HOLE_MAX)
        return -EINVAL;
    if (cap < HOLE_SIZE)
        return -ENOBUFS;
    fy__st64(out, v->len);
    *len = HOLE_SIZE;
    return 0;
}

int fy_hole_decode(const uint8_t *p, size_t n, fy_hole *v)
{
    if (n < HOLE_SIZE)
        return -FY_ETRUNC;
    if (n > HOLE_SIZE)
        return -FY_EPAYLOAD;
    uint64_t l = fy__ld64(p);
    if (l == 0 || l > HOLE_MAX)
        return -FY_EPAYLOAD;
    v->len = l;
    return 0;
}

/* ---- file-end -----------------------------------------------------------
 *  0 size u64 | 8 sha256[32] */

int fy_file_end_encode(const fy_file_end *v, uint8_t *out, size_t cap, size_t *len)
{
    if (cap < FEND_SIZE)
        return -ENOBUFS;
    fy__st64(out, v->size);
    memcpy(out + 8, v->sha256, FY_SHA256_LEN);
    *len = FEND_SIZE;
    return 0;
}

int fy_file_end_decode(const uint8_t *p, size_t n, fy_file_end *v)
{
    if (n < FEND_SIZE)
        return -FY_ETRUNC;
    if (n > FEND_SIZE)
        return -FY_EPAYLOAD;
    v->size = fy__ld64(p);
    memcpy(v->sha256, p + 8, FY_SHA256_LEN);
    return 0;
}

/* ---- ack ----------------------------------------------------------------
 *  0 seq u64 */

int fy_ack_encode(const fy_ack *v, uint8_t *out, size_t cap, size_t *len)
{
    if (cap < ACK_SIZE)
        return -ENOBUFS;
    fy__st64(out, v->seq);
    *len = ACK_SIZE;
    return 0;
}

int fy_ack_decode(const uint8_t *p, size_t n, fy_ack *v)
{
    if (n < ACK_SIZE)
        return -FY_ETRUNC;
    if (n > ACK_SIZE)
        return -FY_EPAYLOAD;
    v->seq = fy__ld64(p);
    return 0;
}

/* ---- error --------------------------------------------------------------
 *  0 code u32 (!= 0) | 4 text_len u16 (<= 1024) | 6 reserved u16 = 0 | 8 text */

int fy_error_encode(const fy_error *v, uint8_t *out, size_t cap, size_t *len)
{
    size_t tl = field_len(v->text, FY_ERRTEXT_MAX);

    if (v->code == 0 || tl > FY_ERRTEXT_MAX)
        return -EINVAL;
    if (cap < ERROR_FIXED + tl)
        return -ENOBUFS;
    fy__st32(out, v->code);
    fy__st16(out + 4, (uint16_t)tl);
    fy__st16(out + 6, 0);
    memcpy(out + ERROR_FIXED, v->text, tl);
    *len = ERROR_FIXED + tl;
    return 0;
}

int fy_error_decode(const uint8_t *p, size_t n, fy_error *v)
{
    if (n < ERROR_FIXED)
        return -FY_ETRUNC;
    uint32_t code = fy__ld32(p);
    size_t tl = fy__ld16(p + 4);
    if (code == 0 || tl > FY_ERRTEXT_MAX || fy__ld16(p + 6) != 0)
        return -FY_EPAYLOAD;
    if (n < ERROR_FIXED + tl)
        return -FY_ETRUNC;
    if (n > ERROR_FIXED + tl || has_nul(p + ERROR_FIXED, tl))
        return -FY_EPAYLOAD;
    v->code = code;
    take_str(v->text, p + ERROR_FIXED, tl);
    return 0;
}
