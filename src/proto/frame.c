/*
 * frame.c - the 32-byte frame header: encode, decode-and-check, seal.
 *
 * The header is the only thing a peer can use to lie about sizes, so
 * decoding checks it in a fixed order and trusts `len` only after the
 * header CRC matched: a flipped bit in the length can then never make a
 * reader wait for (or allocate) a payload that was never sent.  Sealing
 * computes the payload CRC in place, so a sender can writev() the header
 * and its payload without copying the payload.
 */
#include "ferry/proto.h"

#include <assert.h>

#include "ferry/err.h"
#include "base/le.h"

_Static_assert(FY_FRAME_HDR_SIZE == 32, "wire header is 32 bytes");
_Static_assert(FY_PAYLOAD_MAX_LIMIT <= UINT32_MAX, "len is a u32 on the wire");

/* Fixed payload limits of the control frames (layouts in payload.c and
 * docs/protocol.md).  Data frames are limited by max_payload only. */
static const uint32_t type_max[FY_FT_MAX_ + 1] = {
    [FY_FT_HELLO] = FY_HELLO_MAX,
    [FY_FT_WELCOME] = FY_WELCOME_MAX,
    [FY_FT_FILE_BEGIN] = FY_FILE_BEGIN_MAX,
    [FY_FT_DATA] = UINT32_MAX,
    [FY_FT_FILE_END] = 8 + FY_SHA256_LEN,
    [FY_FT_ACK] = 8,
    [FY_FT_ERROR] = FY_CTL_PAYLOAD_MAX,
    [FY_FT_PING] = FY_PING_MAX,
    [FY_FT_PONG] = FY_PING_MAX,
    [FY_FT_BYE] = 0,
    [FY_FT_QUERY] = FY_QUERY_MAX,
    [FY_FT_QREC] = FY_QREC_MAX,
    [FY_FT_QEND] = 8,
    [FY_FT_SKIP] = 16,
    [FY_FT_NOTICE] = 32 + FY_NOTICE_TEXT_MAX,
    [FY_FT_HOLE] = 8,
    [FY_FT_DUP_ASK] = 12 + FY_NAME_MAX,
    [FY_FT_DUP_ANSWER] = 8 + FY_SHA256_LEN,
    [FY_FT_NOCHAN] = FY_CTL_PAYLOAD_MAX,
    [FY_FT_REPLICA_STORED] = FY_REPLICA_STORED_SIZE,
};

static const char *const type_name[FY_FT_MAX_ + 1] = {
    [FY_FT_HELLO] = "hello",     [FY_FT_WELCOME] = "welcome", [FY_FT_FILE_BEGIN] = "file-begin",
    [FY_FT_DATA] = "data",       [FY_FT_FILE_END] = "file-end", [FY_FT_ACK] = "ack",
    [FY_FT_ERROR] = "error",     [FY_FT_PING] = "ping",       [FY_FT_PONG] = "pong",
    [FY_FT_BYE] = "bye",         [FY_FT_QUERY] = "query",     [FY_FT_QREC] = "qrec",
    [FY_FT_QEND] = "qend",       [FY_FT_SKIP] = "skip",       [FY_FT_HOLE] = "hole",
    [FY_FT_DUP_ASK] = "dup-ask", [FY_FT_DUP_ANSWER] = "dup-answer", [FY_FT_NOTICE] = "notice",
    [FY_FT_NOCHAN] = "no-channel", [FY_FT_REPLICA_STORED] = "replica-stored",
};

/* The numbers are ranges now (docs/protocol.md): a gap is unknown. */
static bool type_known(uint8_t type)
{
    return type >= FY_FT_HELLO && type <= FY_FT_MAX_ && type_name[type];
}

size_t fy_frame_payload_max(uint8_t type, size_t max_payload)
{
    if (!type_known(type))
        return 0;
    return type_max[type] < max_payload ? type_max[type] : max_payload;
}

const char *fy_frame_type_name(uint8_t type)
{
    return type_known(type) ? type_name[type] : "unknown";
}

void fy_frame_hdr_encode(const fy_frame_hdr *h, uint8_t out[FY_FRAME_HDR_SIZE])
{
    fy__st32(out + 0, FY_PROTO_MAGIC);
    out[4] = h->version ? h->version : (uint8_t)FY_PROTO_VERSION;
    out[5] = h->type;
    fy__st16(out + 6, h->flags);
    fy__st32(out + 8, h->channel);
    fy__st32(out + 12, h->len);
    fy__st64(out + 16, h->seq);
    fy__st32(out + 24, h->crc);
    fy__st32(out + 28, fy_crc32c(0, out, 28));
}

uint8_t fy_frame_raw_type(const uint8_t *raw)
{
    return raw[5];
}

uint32_t fy_frame_raw_channel(const uint8_t *raw)
{
    return fy__ld32(raw + 8);
}

uint64_t fy_frame_raw_seq(const uint8_t *raw)
{
    return fy__ld64(raw + 16);
}

void fy_frame_restamp(uint8_t *raw, uint32_t channel, uint64_t seq)
{
    fy__st32(raw + 8, channel);
    fy__st64(raw + 16, seq);
    fy__st32(raw + 28, fy_crc32c(0, raw, 28));
}

int fy_frame_hdr_decode(const uint8_t in[FY_FRAME_HDR_SIZE], size_t max_payload, fy_frame_hdr *h)
{
    if (fy__ld32(in) != FY_PROTO_MAGIC)
        return -FY_EMAGIC;
    if (in[4] != FY_PROTO_VERSION)
        return -FY_EVERSION;
    if (fy__ld32(in + 28) != fy_crc32c(0, in, 28))
        return -FY_EHDRCHECK;
    if (!type_known(in[5]))
        return -FY_ETYPE;
    if (fy__ld16(in + 6) != 0)
        return -FY_EFLAGS;
    uint32_t len = fy__ld32(in + 12);
    if (len > fy_frame_payload_max(in[5], max_payload))
        return -FY_EOVERSIZE;

    h->version = in[4];
    h->type = in[5];
    h->flags = 0;
    h->channel = fy__ld32(in + 8);
    h->len = len;
    h->seq = fy__ld64(in + 16);
    h->crc = fy__ld32(in + 24);
    return 0;
}

void fy_frame_seal(fy_frame_hdr *h, const void *p, size_t len, uint8_t out[FY_FRAME_HDR_SIZE])
{
    assert(len <= UINT32_MAX);
    h->len = (uint32_t)len;
    h->crc = fy_crc32c(0, p, len);
    fy_frame_hdr_encode(h, out);
}
