/*
 * crc32c.c - CRC32C (Castagnoli) for frame headers and payloads.
 *
 * ISA-L's crc32_iscsi() does the work (it picks the SSE4.2/PCLMUL kernel at
 * run time).  Its convention is the raw register: no inversion on the way
 * in or out.  The standard CRC32C (check value 0xE3069283 for "123456789")
 * inverts both, so fy_crc32c() inverts around the call; that also makes
 * chaining work, because the inverted result fed back in restores the raw
 * register.  crc32_iscsi() takes an int length, so huge buffers go through
 * in 1 GiB pieces.
 *
 * Short inputs (headers, 128-byte payloads) skip ISA-L: its folding kernel
 * has a setup cost that dominated a 128-byte frame -- the swarm's
 * receivers spent 15 % of all CPU in it at 16 x 128-byte messages -- while
 * the SSE4.2 crc32 instruction does 8 bytes a step with none (measured in
 * docs/benchmarks.md, "Where the copies go").  Same polynomial, same raw
 * register, so the two mix freely.
 */
#include "ferry/proto.h"

#include <isa-l/crc.h>
#include <string.h>

#define CRC_PIECE ((size_t)1 << 30)
#define CRC_SHORT 512 /* below this, the crc32 instruction */

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_short(uint32_t raw, const unsigned char *b,
                                                             size_t n)
{
    uint64_t r = raw;
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t v;
        memcpy(&v, b, sizeof v);
        r = __builtin_ia32_crc32di(r, v);
    }
    raw = (uint32_t)r;
    for (; n; n--, b++)
        raw = __builtin_ia32_crc32qi(raw, *b);
    return raw;
}

static int have_short(void)
{
    return __builtin_cpu_supports("sse4.2");
}
#else
static uint32_t crc_short(uint32_t raw, const unsigned char *b, size_t n)
{
    return crc32_iscsi((unsigned char *)(uintptr_t)b, (int)n, raw);
}

static int have_short(void)
{
    return 1;
}
#endif

uint32_t fy_crc32c(uint32_t crc, const void *p, size_t n)
{
    /* crc32_iscsi() reads through a non-const pointer but never writes. */
    unsigned char *b = (unsigned char *)(uintptr_t)p;
    uint32_t raw = ~crc;

    if (n < CRC_SHORT && have_short())
        return ~crc_short(raw, b, n);
    while (n > 0) {
        size_t k = n < CRC_PIECE ? n : CRC_PIECE;

        raw = crc32_iscsi(b, (int)k, raw);
        b += k;
        n -= k;
    }
    return ~raw;
}
