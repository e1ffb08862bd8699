/*
 * pattern.c - deterministic file content for the swarm (see pattern.h).
 *
 * The bytes come from splitmix64 so they are incompressible and differ
 * from chunk to chunk; a relay that repeats, drops or mixes up packets
 * shows up as a content mismatch even when its CRCs are right.
 */
#include "swarm/pattern.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/digest.h"
#include "ferry/proto.h"

#define PATTERN_BYTES ((size_t)2 << 20)
#define STRIDE 7919u /* prime: senders start at well-separated chunks */

struct fy_pattern {
    size_t packet;
    size_t k; /* chunks */
    uint8_t *bytes;
    uint32_t *crc; /* CRC32C of each full chunk */
};

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int fy_pattern_new(size_t packet, uint64_t seed, fy_pattern **out)
{
    if (packet == 0)
        return -EINVAL;
    fy_pattern *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->packet = packet;
    p->k = (PATTERN_BYTES + packet - 1) / packet;
    if (p->k < 2)
        p->k = 2;
    size_t total = p->k * packet;
    p->bytes = malloc(total + 8);
    p->crc = malloc(p->k * sizeof *p->crc);
    if (!p->bytes || !p->crc) {
        fy_pattern_free(p);
        return -ENOMEM;
    }
    uint64_t s = seed;
    for (size_t i = 0; i < total; i += 8) {
        uint64_t v = splitmix64(&s);
        memcpy(p->bytes + i, &v, 8);
    }
    for (size_t i = 0; i < p->k; i++)
        p->crc[i] = fy_crc32c(0, p->bytes + i * packet, packet);
    *out = p;
    return 0;
}

void fy_pattern_free(fy_pattern *p)
{
    if (!p)
        return;
    free(p->bytes);
    free(p->crc);
    free(p);
}

size_t fy_pattern_packet(const fy_pattern *p)
{
    return p->packet;
}

static size_t chunk_of(const fy_pattern *p, uint32_t sender, uint64_t off)
{
    return (size_t)(((uint64_t)sender * STRIDE + off / p->packet) % p->k);
}

const uint8_t *fy_pattern_frame(const fy_pattern *p, uint32_t sender, uint64_t off,
                                uint64_t size, size_t *len)
{
    uint64_t left = size > off ? size - off : 0;
    *len = left < p->packet ? (size_t)left : p->packet;
    return p->bytes + chunk_of(p, sender, off) * p->packet;
}

uint32_t fy_pattern_frame_crc(const fy_pattern *p, uint32_t sender, uint64_t off, size_t len)
{
    size_t c = chunk_of(p, sender, off);
    if (len == p->packet)
        return p->crc[c];
    return fy_crc32c(0, p->bytes + c * p->packet, len);
}

int fy_pattern_cmp(const fy_pattern *p, uint32_t sender, uint64_t off, const uint8_t *data,
                   size_t n)
{
    while (n > 0) {
        size_t in = (size_t)(off % p->packet);
        size_t k = p->packet - in;
        if (k > n)
            k = n;
        const uint8_t *want = p->bytes + chunk_of(p, sender, off) * p->packet + in;
        if (memcmp(want, data, k) != 0)
            return 1;
        off += k;
        data += k;
        n -= k;
    }
    return 0;
}

int fy_pattern_sha256(const fy_pattern *p, uint32_t sender, uint64_t size, uint8_t out[32])
{
    fy_sha256 *h;
    int rc = fy_sha256_new(&h);
    if (rc < 0)
        return rc;
    for (uint64_t off = 0; off < size; off += p->packet) {
        size_t len;
        const uint8_t *b = fy_pattern_frame(p, sender, off, size, &len);
        fy_sha256_update(h, b, len);
    }
    fy_sha256_final(h, out);
    fy_sha256_free(h);
    return 0;
}
