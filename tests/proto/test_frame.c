/*
 * test_frame.c - CRC32C and the 32-byte frame header: check values,
 * chaining, round trips of every frame type, and one specific error for
 * each kind of bad header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "proto/test_util.h"

static void test_crc_check_value(void **state)
{
    (void)state;
    assert_int_equal(fy_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(fy_crc32c(0, "", 0), 0);
    assert_int_equal(fy_crc32c(0, NULL, 0), 0);
    /* 32 zero bytes: RFC 3720 B.4 test vector. */
    uint8_t z[32] = {0};
    assert_int_equal(fy_crc32c(0, z, sizeof z), 0x8A9136AAu);
    uint8_t ff[32];
    memset(ff, 0xff, sizeof ff);
    assert_int_equal(fy_crc32c(0, ff, sizeof ff), 0x62A8AB43u);
}

static void test_crc_chaining(void **state)
{
    (void)state;
    enum { N = 5000 };
    uint8_t *b = malloc(N);
    uint64_t s = 0x1234;
    assert_non_null(b);
    for (int i = 0; i < N; i++)
        b[i] = (uint8_t)tu_rand(&s);
    uint32_t whole = fy_crc32c(0, b, N);
    assert_int_equal(fy_crc32c(fy_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    for (int it = 0; it < 200; it++) {
        size_t cut1 = tu_rand(&s) % (N + 1);
        size_t cut2 = cut1 + tu_rand(&s) % (N - cut1 + 1);
        uint32_t c = fy_crc32c(0, b, cut1);
        c = fy_crc32c(c, b + cut1, cut2 - cut1);
        c = fy_crc32c(c, b + cut2, N - cut2);
        assert_int_equal(c, whole);
    }
    free(b);
}

/* Bit by bit, straight from the polynomial: the reference for every length
 * on both sides of the short-input path's threshold. */
static uint32_t crc_ref(const uint8_t *b, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= b[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void test_crc_every_length(void **state)
{
    (void)state;
    enum { N = 1100 };
    uint8_t b[N + 8];
    uint64_t s = 0x5eed;
    for (int i = 0; i < N + 8; i++)
        b[i] = (uint8_t)tu_rand(&s);
    for (size_t off = 0; off < 8; off += 3) /* unaligned starts too */
        for (size_t n = 0; n <= N; n++)
            assert_int_equal(fy_crc32c(0, b + off, n), crc_ref(b + off, n));
}

static void test_hdr_layout(void **state)
{
    (void)state;
    fy_frame_hdr h = {.type = FY_FT_DATA, .channel = 0x04030201u, .len = 0x08070605u,
                      .seq = 0x100f0e0d0c0b0a09ull, .crc = 0x14131211u};
    uint8_t b[32];
    fy_frame_hdr_encode(&h, b);
    const uint8_t want[28] = {'F', 'E', 'R', 'Y', 1, 4, 0, 0, 1, 2, 3, 4, 5, 6,
                              7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x11, 0x12, 0x13, 0x14};
    assert_memory_equal(b, want, sizeof want);
    uint32_t hc = (uint32_t)b[28] | (uint32_t)b[29] << 8 | (uint32_t)b[30] << 16 |
                  (uint32_t)b[31] << 24;
    assert_int_equal(hc, fy_crc32c(0, b, 28));
}

/* The raw accessors read what encode wrote; restamp changes channel and
 * seq, keeps everything else, and leaves a header that decodes again. */
static void test_hdr_raw_and_restamp(void **state)
{
    (void)state;
    const uint8_t payload[5] = {1, 2, 3, 4, 5};
    fy_frame_hdr h = {.type = FY_FT_DATA, .channel = 7, .seq = 0x0102030405060708ull};
    uint8_t b[32], before[32];
    fy_frame_seal(&h, payload, sizeof payload, b);
    assert_int_equal(fy_frame_raw_type(b), FY_FT_DATA);
    assert_int_equal(fy_frame_raw_channel(b), 7);
    assert_true(fy_frame_raw_seq(b) == 0x0102030405060708ull);

    memcpy(before, b, sizeof b);
    fy_frame_restamp(b, 0xa0b0c0d0u, 42);
    assert_int_equal(fy_frame_raw_channel(b), 0xa0b0c0d0u);
    assert_true(fy_frame_raw_seq(b) == 42);
    assert_memory_equal(b, before, 8);            /* magic, version, type, flags */
    assert_memory_equal(b + 12, before + 12, 4);  /* len */
    assert_memory_equal(b + 24, before + 24, 4);  /* payload CRC */
    fy_frame_hdr g;
    assert_int_equal(fy_frame_hdr_decode(b, FY_PAYLOAD_MAX_DEFAULT, &g), 0);
    assert_int_equal(g.channel, 0xa0b0c0d0u);
    assert_true(g.seq == 42);
    assert_int_equal(g.crc, fy_crc32c(0, payload, sizeof payload));
}

static void test_hdr_round_trip_every_type(void **state)
{
    (void)state;
    uint8_t payload[FY_CTL_PAYLOAD_MAX];
    memset(payload, 0x5a, sizeof payload);
    for (uint8_t t = FY_FT_HELLO; t <= FY_FT_MAX_; t++) {
        if (strcmp(fy_frame_type_name(t), "unknown") == 0)
            continue; /* a gap between the number ranges */
        size_t max = fy_frame_payload_max(t, FY_PAYLOAD_MAX_DEFAULT);
        size_t lens[] = {0, max / 2, max};
        for (size_t i = 0; i < 3; i++) {
            size_t len = lens[i] > sizeof payload ? sizeof payload : lens[i];
            fy_frame_hdr h = {.type = t, .channel = 7, .seq = fy_frame_is_stream(t) ? 99 : 0};
            uint8_t b[32];
            fy_frame_seal(&h, payload, len, b);
            assert_int_equal(h.len, len);
            assert_int_equal(h.crc, fy_crc32c(0, payload, len));
            fy_frame_hdr g;
            memset(&g, 0xee, sizeof g);
            assert_int_equal(fy_frame_hdr_decode(b, FY_PAYLOAD_MAX_DEFAULT, &g), 0);
            assert_int_equal(g.type, t);
            assert_int_equal(g.version, FY_PROTO_VERSION);
            assert_int_equal(g.flags, 0);
            assert_int_equal(g.channel, 7);
            assert_int_equal(g.len, len);
            assert_int_equal(g.seq, h.seq);
            assert_int_equal(g.crc, h.crc);
        }
        assert_string_not_equal(fy_frame_type_name(t), "unknown");
    }
    assert_string_equal(fy_frame_type_name(0), "unknown");
    assert_string_equal(fy_frame_type_name(11), "unknown");
    assert_string_equal(fy_frame_type_name(FY_FT_FILE_BEGIN), "file-begin");
}

static void test_payload_max(void **state)
{
    (void)state;
    assert_int_equal(fy_frame_payload_max(FY_FT_DATA, 65536), 65536);
    assert_int_equal(fy_frame_payload_max(FY_FT_HELLO, 1 << 20), 16 + 255 + 255 + 16 + 1 + 64 + 24);
    assert_int_equal(fy_frame_payload_max(FY_FT_HELLO, 100), 100);
    assert_int_equal(fy_frame_payload_max(FY_FT_WELCOME, 1 << 20), FY_WELCOME_MAX);
    assert_int_equal(fy_frame_payload_max(FY_FT_FILE_BEGIN, 1 << 20), 12 + 255 + 64);
    assert_int_equal(fy_frame_payload_max(FY_FT_HOLE, 1 << 20), 8);
    assert_int_equal(fy_frame_payload_max(FY_FT_FILE_END, 1 << 20), 40);
    assert_int_equal(fy_frame_payload_max(FY_FT_ACK, 1 << 20), 8);
    assert_int_equal(fy_frame_payload_max(FY_FT_ERROR, 1 << 20), 8 + 1024);
    assert_int_equal(fy_frame_payload_max(FY_FT_PING, 1 << 20), 64);
    assert_int_equal(fy_frame_payload_max(FY_FT_PONG, 1 << 20), 64);
    assert_int_equal(fy_frame_payload_max(FY_FT_BYE, 1 << 20), 0);
    assert_int_equal(fy_frame_payload_max(0, 1 << 20), 0);
    assert_int_equal(fy_frame_payload_max(200, 1 << 20), 0);
}

/* A valid data header with len bytes of payload claimed. */
static void good_hdr(uint8_t b[32], uint8_t type, uint32_t len)
{
    fy_frame_hdr h = {.type = type, .channel = 3, .seq = 5, .len = len, .crc = 0x11223344};
    fy_frame_hdr_encode(&h, b);
}

static void test_hdr_errors(void **state)
{
    (void)state;
    uint8_t b[32];
    fy_frame_hdr h;

    good_hdr(b, FY_FT_DATA, 100);
    assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), 0);

    b[0] ^= 1; /* magic is checked before anything else, even the CRC */
    assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), -FY_EMAGIC);

    good_hdr(b, FY_FT_DATA, 100);
    b[4] = 2;
    assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), -FY_EVERSION);
    b[4] = 0;
    assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), -FY_EVERSION);
    tu_rehash(b); /* a version-2 header with a good CRC is still version 2 */
    assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), -FY_EVERSION);

    /* A flipped bit anywhere in bytes 5..31 fails the header check. */
    for (int byte = 5; byte < 32; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            good_hdr(b, FY_FT_DATA, 100);
            b[byte] ^= (uint8_t)(1u << bit);
            assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), -FY_EHDRCHECK);
        }
    }

    const uint8_t bad_types[] = {0, 11, 12, 127, 255};
    for (size_t i = 0; i < sizeof bad_types; i++) {
        good_hdr(b, FY_FT_DATA, 100);
        b[5] = bad_types[i];
        tu_rehash(b);
        assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), -FY_ETYPE);
    }

    for (int bit = 0; bit < 16; bit++) {
        good_hdr(b, FY_FT_DATA, 100);
        b[6 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tu_rehash(b);
        assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), -FY_EFLAGS);
    }

    good_hdr(b, FY_FT_DATA, 1024);
    assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), 0);
    good_hdr(b, FY_FT_DATA, 1025);
    assert_int_equal(fy_frame_hdr_decode(b, 1024, &h), -FY_EOVERSIZE);
    good_hdr(b, FY_FT_DATA, UINT32_MAX);
    assert_int_equal(fy_frame_hdr_decode(b, FY_PAYLOAD_MAX_LIMIT, &h), -FY_EOVERSIZE);

    /* Control frames have their own, smaller limits. */
    for (uint8_t t = FY_FT_HELLO; t <= FY_FT_MAX_; t++) {
        if (t == FY_FT_DATA || strcmp(fy_frame_type_name(t), "unknown") == 0)
            continue;
        uint32_t max = (uint32_t)fy_frame_payload_max(t, FY_PAYLOAD_MAX_DEFAULT);
        good_hdr(b, t, max);
        assert_int_equal(fy_frame_hdr_decode(b, FY_PAYLOAD_MAX_DEFAULT, &h), 0);
        good_hdr(b, t, max + 1);
        assert_int_equal(fy_frame_hdr_decode(b, FY_PAYLOAD_MAX_DEFAULT, &h), -FY_EOVERSIZE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_check_value),
        cmocka_unit_test(test_crc_chaining),
        cmocka_unit_test(test_crc_every_length),
        cmocka_unit_test(test_hdr_layout),
        cmocka_unit_test(test_hdr_round_trip_every_type),
        cmocka_unit_test(test_hdr_raw_and_restamp),
        cmocka_unit_test(test_payload_max),
        cmocka_unit_test(test_hdr_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
