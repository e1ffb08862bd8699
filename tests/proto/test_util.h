/*
 * test_util.h - helpers shared by the protocol tests: a seeded PRNG (so a
 * failure can be replayed) and a frame builder that writes header and
 * payload into one buffer.
 */
#ifndef FY_TEST_PROTO_UTIL_H
#define FY_TEST_PROTO_UTIL_H

#include <stdint.h>
#include <string.h>

#include "ferry/proto.h"

static inline uint64_t tu_rand(uint64_t *s)
{
    /* xorshift64*: small, fast, good enough to pick splits and sizes. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Write a sealed frame (header + payload copy) at out; returns its size. */
static inline size_t tu_frame(uint8_t *out, uint8_t type, uint32_t channel, uint64_t seq,
                              const void *payload, size_t len)
{
    fy_frame_hdr h = {.type = type, .channel = channel, .seq = seq};

    if (len)
        memcpy(out + FY_FRAME_HDR_SIZE, payload, len);
    fy_frame_seal(&h, out + FY_FRAME_HDR_SIZE, len, out);
    return FY_FRAME_HDR_SIZE + len;
}

/* Recompute the header CRC after a test edited header bytes on purpose. */
static inline void tu_rehash(uint8_t *hdr)
{
    uint32_t c = fy_crc32c(0, hdr, 28);

    for (int i = 0; i < 4; i++)
        hdr[28 + i] = (uint8_t)(c >> (8 * i));
}

#endif
