/*
 * test_digest.c - SHA-256 through include/ferry/digest.h: FIPS 180-2 test
 * vectors, incremental updates equal one shot, reset for the next file,
 * and the hex form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ferry/digest.h"
#include "proto/test_util.h"

static const char *hex_of(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    assert_int_equal(fy_sha256_oneshot(p, n, d), 0);
    fy_sha256_hex(d, out);
    return out;
}

static void test_vectors(void **state)
{
    (void)state;
    char h[65];
    assert_string_equal(hex_of("", 0, h),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(hex_of("abc", 3, h),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_string_equal(hex_of(m, strlen(m), h),
                        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_incremental(void **state)
{
    (void)state;
    enum { N = 300000 };
    uint8_t *b = malloc(N);
    assert_non_null(b);
    uint64_t s = 5;
    for (size_t i = 0; i < N; i++)
        b[i] = (uint8_t)tu_rand(&s);
    uint8_t want[32], got[32];
    assert_int_equal(fy_sha256_oneshot(b, N, want), 0);

    fy_sha256 *h;
    assert_int_equal(fy_sha256_new(&h), 0);
    for (int round = 0; round < 3; round++) {
        size_t pos = 0;
        fy_sha256_update(h, NULL, 0);
        while (pos < N) {
            size_t k = 1 + tu_rand(&s) % 70000;
            if (k > N - pos)
                k = N - pos;
            fy_sha256_update(h, b + pos, k);
            pos += k;
        }
        fy_sha256_final(h, got);
        assert_memory_equal(got, want, 32);
        assert_int_equal(fy_sha256_reset(h), 0);
    }
    fy_sha256_free(h);

    /* final may be followed by free alone. */
    assert_int_equal(fy_sha256_new(&h), 0);
    fy_sha256_final(h, got);
    fy_sha256_free(h);
    fy_sha256_free(NULL);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
