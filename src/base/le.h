/*
 * le.h - the one little-endian codec: loads and stores for src/proto (the
 * wire format) and src/store (the file formats).  Nothing above those two
 * floors reads a field by hand: actors and clients use src/proto's header
 * helpers (fy_frame_raw_*, fy_frame_restamp) instead.
 *
 * Both formats are little-endian and fields sit at any alignment, so every
 * field goes through memcpy (which compilers turn into one plain load or
 * store on x86) and a byte swap on big-endian hosts.
 */
#ifndef FY_BASE_LE_H
#define FY_BASE_LE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FY__LE16(x) __builtin_bswap16(x)
#define FY__LE32(x) __builtin_bswap32(x)
#define FY__LE64(x) __builtin_bswap64(x)
#else
#define FY__LE16(x) (x)
#define FY__LE32(x) (x)
#define FY__LE64(x) (x)
#endif

static inline uint16_t fy__ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return FY__LE16(v);
}

static inline uint32_t fy__ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return FY__LE32(v);
}

static inline uint64_t fy__ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return FY__LE64(v);
}

static inline void fy__st16(uint8_t *p, uint16_t v)
{
    v = FY__LE16(v);
    memcpy(p, &v, sizeof v);
}

static inline void fy__st32(uint8_t *p, uint32_t v)
{
    v = FY__LE32(v);
    memcpy(p, &v, sizeof v);
}

static inline void fy__st64(uint8_t *p, uint64_t v)
{
    v = FY__LE64(v);
    memcpy(p, &v, sizeof v);
}

#endif
