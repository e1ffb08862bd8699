/*
 * tc_rand.c - deterministic pseudo-random bytes and files (see tc.h): the
 * same seed gives the same bytes, so a failed run can be replayed.
 */
#include "tc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "ferry/digest.h"

void tc_fill(void *p, size_t n, uint64_t seed)
{
    uint8_t *b = p;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)(x >> 32);
    }
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Write all of buf (a short write is retried, bounded by its length). */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tc_make_file(const char *path, uint64_t size, uint64_t seed, uint8_t sha[32])
{
    enum { BLK = 1 << 20 };
    uint64_t *buf = malloc(BLK);
    fy_sha256 *h = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : !buf ? -ENOMEM : fy_sha256_new(&h);
    for (uint64_t left = size; rc == 0 && left > 0;) {
        size_t n = left < BLK ? (size_t)left : BLK;
        for (size_t i = 0; i < (n + 7) / 8; i++)
            buf[i] = splitmix64(&seed);
        fy_sha256_update(h, buf, n);
        rc = write_all(fd, (const uint8_t *)buf, n);
        left -= n;
    }
    if (h) {
        uint8_t d[32];
        fy_sha256_final(h, d);
        if (sha && rc == 0)
            for (int i = 0; i < 32; i++)
                sha[i] = d[i];
        fy_sha256_free(h);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}
