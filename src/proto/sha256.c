/*
 * sha256.c - SHA-256 on OpenSSL's EVP interface (include/ferry/digest.h).
 *
 * The state is an EVP_MD_CTX behind Ferry's own opaque type, so callers
 * never see OpenSSL.  EVP_DigestUpdate/Final only fail on a context that
 * was never initialised -- a programming error, not bad input -- so those
 * paths abort with a log line instead of returning a code nobody checks.
 */
#include "ferry/digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#include "ferry/err.h"

struct fy_sha256 {
    EVP_MD_CTX *ctx;
};

static void die(const char *call)
{
    fprintf(stderr, "level=fatal msg=\"%s failed\" action=abort\n", call);
    abort();
}

int fy_sha256_new(fy_sha256 **out)
{
    fy_sha256 *h = malloc(sizeof *h);

    if (!h)
        return -ENOMEM;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx) {
        free(h);
        return -ENOMEM;
    }
    if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        fy_sha256_free(h);
        return -FY_EINTERNAL;
    }
    *out = h;
    return 0;
}

void fy_sha256_update(fy_sha256 *h, const void *p, size_t n)
{
    if (n > 0 && EVP_DigestUpdate(h->ctx, p, n) != 1)
        die("EVP_DigestUpdate");
}

void fy_sha256_final(fy_sha256 *h, uint8_t out[32])
{
    unsigned int len = 0;

    if (EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != 32)
        die("EVP_DigestFinal_ex");
}

int fy_sha256_reset(fy_sha256 *h)
{
    return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -FY_EINTERNAL;
}

void fy_sha256_free(fy_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int fy_sha256_oneshot(const void *p, size_t n, uint8_t out[32])
{
    fy_sha256 *h;
    int rc = fy_sha256_new(&h);

    if (rc < 0)
        return rc;
    fy_sha256_update(h, p, n);
    fy_sha256_final(h, out);
    fy_sha256_free(h);
    return 0;
}

void fy_sha256_hex(const uint8_t d[32], char out[65])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[64] = '\0';
}

int fy_sha256_peek(const fy_sha256 *h, uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;

    if (!c)
        return -ENOMEM;
    int ok = EVP_MD_CTX_copy_ex(c, h->ctx) == 1 && EVP_DigestFinal_ex(c, out, &n) == 1;
    EVP_MD_CTX_free(c);
    return ok ? 0 : -ENOMEM;
}

void fy_sha256_zeros(fy_sha256 *h, uint64_t n)
{
    static const uint8_t zero[64 << 10];

    while (n > 0) {
        size_t k = n < sizeof zero ? (size_t)n : sizeof zero;
        fy_sha256_update(h, zero, k);
        n -= k;
    }
}
