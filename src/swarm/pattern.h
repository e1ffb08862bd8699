/*
 * pattern.h - the deterministic content every swarm file is made of.
 *
 * A file's bytes are a function of (sender, offset): the pattern is K
 * chunks of `packet` pseudo-random bytes, and the sender's data frame i is
 * chunk (sender * STRIDE + i) mod K.  So a sender writes its payloads
 * straight from the pattern with writev (no copy, no generation in the
 * hot loop), the CRC32C of each full chunk is computed once, and a
 * receiver can check any received byte range with memcmp.  The pattern
 * is built once before the worker threads start and is read-only after.
 */
#ifndef FY_SWARM_PATTERN_H
#define FY_SWARM_PATTERN_H

#include <stddef.h>
#include <stdint.h>

typedef struct fy_pattern fy_pattern;

/* Build a pattern for data frames of `packet` bytes from `seed` (about
 * 2 MiB of content, at least two chunks).  0, -EINVAL (packet 0) or
 * -ENOMEM.  Call before threads share it. */
int fy_pattern_new(size_t packet, uint64_t seed, fy_pattern **out);
void fy_pattern_free(fy_pattern *p);

size_t fy_pattern_packet(const fy_pattern *p);

/* Payload of the data frame that starts at file offset `off` (a multiple
 * of the packet size) of `sender`'s files: *len = min(packet, size - off).
 * Returns a pointer into the pattern.  Any thread. */
const uint8_t *fy_pattern_frame(const fy_pattern *p, uint32_t sender, uint64_t off,
                                uint64_t size, size_t *len);
/* CRC32C of that payload (table look-up for full chunks).  Any thread. */
uint32_t fy_pattern_frame_crc(const fy_pattern *p, uint32_t sender, uint64_t off, size_t len);

/* Compare data[0..n) with sender's content at file offset off (any
 * offset, any length).  0 when equal, 1 when different.  Any thread. */
int fy_pattern_cmp(const fy_pattern *p, uint32_t sender, uint64_t off, const uint8_t *data,
                   size_t n);

/* SHA-256 of sender's file of `size` bytes.  0 or -ENOMEM/-FY_EINTERNAL. */
int fy_pattern_sha256(const fy_pattern *p, uint32_t sender, uint64_t size, uint8_t out[32]);

#endif
