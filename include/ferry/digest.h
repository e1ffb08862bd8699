/*
 * digest.h - SHA-256 of whole files, for file-end frames.
 *
 * A thin, opaque wrapper over OpenSSL's EVP interface (libcrypto picks the
 * SHA-NI / AVX2 code path at run time), so no module includes OpenSSL
 * headers and the hash can change in one place.  One fy_sha256 belongs to
 * one thread at a time; different objects may be used concurrently.
 */
#ifndef FERRY_DIGEST_H
#define FERRY_DIGEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct fy_sha256 fy_sha256;

/* Start a hash.  Returns 0 with *out set, or -ENOMEM / -FY_EINTERNAL (the
 * library refused to initialise SHA-256). */
int fy_sha256_new(fy_sha256 **out);

/* Add n bytes (n may be 0; p may be NULL then).  Must not follow final. */
void fy_sha256_update(fy_sha256 *h, const void *p, size_t n);

/* Write the 32-byte digest.  After final the object may only be freed or
 * restarted with fy_sha256_reset(). */
void fy_sha256_final(fy_sha256 *h, uint8_t out[32]);

/* Start over for the next file, reusing the object.  0 or -FY_EINTERNAL. */
int fy_sha256_reset(fy_sha256 *h);

/* Release h (NULL is allowed), whether or not final was called. */
void fy_sha256_free(fy_sha256 *h);

/* The digest of what h has taken so far, without ending h (a copy is
 * finalised): the SHA-256 of a file's stored prefix.  0 or -ENOMEM. */
int fy_sha256_peek(const fy_sha256 *h, uint8_t out[32]);

/* Take n zero bytes (a hole of a sparse file: FY_FT_HOLE). */
void fy_sha256_zeros(fy_sha256 *h, uint64_t n);

/* One-shot digest of p[0..n).  0 or -ENOMEM / -FY_EINTERNAL. */
int fy_sha256_oneshot(const void *p, size_t n, uint8_t out[32]);

/* Lowercase hex of a digest, NUL-terminated (64 digits + NUL).  Any thread. */
void fy_sha256_hex(const uint8_t d[32], char out[65]);

#endif
