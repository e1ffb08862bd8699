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
 */
#include "ferry/proto.h"

#include <isa-l/crc.h>

#define CRC_PIECE ((size_t)1 << 30)

uint32_t fy_crc32c(uint32_t crc, const void *p, size_t n)
{
    /* crc32_iscsi() reads through a non-const pointer but never writes. */
    unsigned char *b = (unsigned char *)(uintptr_t)p;
    uint32_t raw = ~crc;

    while (n > 0) {
        size_t k = n < CRC_PIECE ? n : CRC_PIECE;

        raw = crc32_iscsi(b, (int)k, raw);
        b += k;
        n -= k;
    }
    return ~raw;
}
