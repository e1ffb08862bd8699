/*
 * test_payload.c - control payloads: round trips of each kind, and for
 * each way a payload can be wrong the one error code it must produce
 * (truncated, trailing bytes, bad field, bad name, buffer too small).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/proto.h"

typedef int (*dec_fn)(const uint8_t *p, size_t n, void *v);

/* Every proper prefix of a valid payload is -FY_ETRUNC; one extra byte is
 * -FY_EPAYLOAD. */
static void check_prefixes_and_trailing(const uint8_t *p, size_t n, dec_fn dec, void *scratch)
{
    uint8_t *b = malloc(n + 1);
    assert_non_null(b);
    memcpy(b, p, n);
    b[n] = 0;
    for (size_t k = 0; k < n; k++)
        assert_int_equal(dec(b, k, scratch), -FY_ETRUNC);
    assert_int_equal(dec(b, n + 1, scratch), -FY_EPAYLOAD);
    assert_int_equal(dec(b, n, scratch), 0);
    free(b);
}

static int hello_dec(const uint8_t *p, size_t n, void *v) { return fy_hello_decode(p, n, v); }
static int fend_dec(const uint8_t *p, size_t n, void *v) { return fy_file_end_decode(p, n, v); }
static int ack_dec(const uint8_t *p, size_t n, void *v) { return fy_ack_decode(p, n, v); }
static int error_dec(const uint8_t *p, size_t n, void *v) { return fy_error_decode(p, n, v); }
static int notice_dec(const uint8_t *p, size_t n, void *v) { return fy_notice_decode(p, n, v); }
static int rstored_dec(const uint8_t *p, size_t n, void *v)
{
    return fy_replica_stored_decode(p, n, v);
}

/* ---- names ---------------------------------------------------------------- */

static void test_name_check(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'a', sizeof big);
    assert_int_equal(fy_name_check("a", 1), 0);
    assert_int_equal(fy_name_check("file-1.tar.gz", 13), 0);
    assert_int_equal(fy_name_check("A_Z-09.x", 8), 0);
    assert_int_equal(fy_name_check("a..b", 4), 0);
    assert_int_equal(fy_name_check(big, 255), 0);
    assert_int_equal(fy_name_check(big, 256), -FY_ENAME);
    assert_int_equal(fy_name_check("", 0), -FY_ENAME);
    assert_int_equal(fy_name_check("..", 2), -FY_ENAME);
    assert_int_equal(fy_name_check(".", 1), -FY_ENAME);
    assert_int_equal(fy_name_check(".hidden", 7), -FY_ENAME);
    assert_int_equal(fy_name_check("a/b", 3), -FY_ENAME);
    assert_int_equal(fy_name_check("/", 1), -FY_ENAME);
    assert_int_equal(fy_name_check("a\0b", 3), -FY_ENAME);
    assert_int_equal(fy_name_check("a b", 3), -FY_ENAME);
    assert_int_equal(fy_name_check("a\\b", 3), -FY_ENAME);
    assert_int_equal(fy_name_check("caf\xc3\xa9", 5), -FY_ENAME);
    for (int c = 1; c < 256; c++) {
        char s[2] = {'x', (char)c};
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        assert_int_equal(fy_name_check(s, 2), ok ? 0 : -FY_ENAME);
    }
}

/* ---- hello ---------------------------------------------------------------- */

static void test_hello(void **state)
{
    (void)state;
    uint8_t b[600];
    size_t n;
    fy_hello v = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_RESUME, .resume_from = 0x0102030405060708ull};
    fy_hello g;
    strcpy(v.channel, "news.feed-1");
    strcpy(v.token, "s3cret token!");
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 16 + 11 + 13);
    assert_int_equal(b[0], FY_ROLE_RECEIVER);
    assert_int_equal(b[1], FY_MODE_RESUME);
    assert_int_equal(b[2], 11);
    assert_int_equal(b[4], 13);
    assert_int_equal(b[8], 8);
    assert_memory_equal(b + 16, "news.feed-1s3cret token!", 24);
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_hello_decode(b, n, &g), 0);
    assert_int_equal(g.role, v.role);
    assert_int_equal(g.mode, v.mode);
    assert_int_equal(g.resume_from, v.resume_from);
    assert_string_equal(g.channel, v.channel);
    assert_string_equal(g.token, v.token);
    check_prefixes_and_trailing(b, n, hello_dec, &g);

    /* Longest name and token; empty token; sender role. */
    memset(v.channel, 'c', FY_NAME_MAX);
    v.channel[FY_NAME_MAX] = 0;
    memset(v.token, 't', FY_TOKEN_MAX);
    v.token[FY_TOKEN_MAX] = 0;
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 16 + FY_NAME_MAX + FY_TOKEN_MAX); /* the AHEAD fields add 16 (FY_HELLO_MAX) */
    assert_int_equal(fy_hello_decode(b, n, &g), 0);
    assert_string_equal(g.channel, v.channel);
    assert_string_equal(g.token, v.token);
    assert_int_equal(fy_hello_encode(&v, b, n - 1, &n), -ENOBUFS);
    v.role = FY_ROLE_SENDER;
    v.mode = FY_MODE_LIVE;
    v.resume_from = 0;
    strcpy(v.channel, "c");
    v.token[0] = 0;
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 17);
    assert_int_equal(fy_hello_decode(b, n, &g), 0);
    assert_int_equal(g.role, FY_ROLE_SENDER);
    assert_string_equal(g.token, "");
    check_prefixes_and_trailing(b, n, hello_dec, &g);

    /* Encoder refuses what the decoder would refuse. */
    fy_hello e = v;
    strcpy(e.channel, "../etc");
    assert_int_equal(fy_hello_encode(&e, b, sizeof b, &n), -FY_ENAME);
    e.channel[0] = 0;
    assert_int_equal(fy_hello_encode(&e, b, sizeof b, &n), -FY_ENAME);
    e = v;
    memset(e.channel, 'x', sizeof e.channel); /* no terminator */
    assert_int_equal(fy_hello_encode(&e, b, sizeof b, &n), -FY_ENAME);
    e = v;
    memset(e.token, 'x', sizeof e.token);
    assert_int_equal(fy_hello_encode(&e, b, sizeof b, &n), -EINVAL);
    e = v;
    e.role = 3;
    assert_int_equal(fy_hello_encode(&e, b, sizeof b, &n), -EINVAL);
    e = v;
    e.mode = 3;
    assert_int_equal(fy_hello_encode(&e, b, sizeof b, &n), -EINVAL);
    e = v;
    e.flags = 0x8000; /* a bit this version does not know */
    assert_int_equal(fy_hello_encode(&e, b, sizeof b, &n), -EINVAL);

    /* The resume flag goes through; an unknown bit is refused. */
    e = v;
    e.flags = FY_HELLO_F_RESUME;
    assert_int_equal(fy_hello_encode(&e, b, sizeof b, &n), 0);
    assert_int_equal(fy_hello_decode(b, n, &g), 0);
    assert_int_equal(g.flags, FY_HELLO_F_RESUME);
    b[7] = 0x80;
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_EPAYLOAD);
}

static void hello_bytes(uint8_t *b, size_t *n, const char *name, size_t nl, const char *tok,
                        size_t tl)
{
    memset(b, 0, 16);
    b[0] = FY_ROLE_RECEIVER;
    b[2] = (uint8_t)nl;
    b[3] = (uint8_t)(nl >> 8);
    b[4] = (uint8_t)tl;
    b[5] = (uint8_t)(tl >> 8);
    memcpy(b + 16, name, nl);
    memcpy(b + 16 + nl, tok, tl);
    *n = 16 + nl + tl;
}

static void test_hello_bad(void **state)
{
    (void)state;
    uint8_t b[1200];
    size_t n;
    fy_hello g;
    char big[600];
    memset(big, 'a', sizeof big);

    hello_bytes(b, &n, "ok", 2, "t", 1);
    assert_int_equal(fy_hello_decode(b, n, &g), 0);
    b[0] = 0;
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_EPAYLOAD);
    b[0] = 3;
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_EPAYLOAD);
    b[0] = FY_ROLE_SENDER;
    b[1] = 3;
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_EPAYLOAD);
    b[1] = 0;
    b[6] = 0x04; /* a flag this version does not know */
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_EPAYLOAD);

    const struct {
        const char *s;
        size_t n;
    } bad[] = {{"", 0}, {"..", 2}, {"a/b", 3}, {".x", 2}, {"a\0b", 3}, {big, 256}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hello_bytes(b, &n, bad[i].s, bad[i].n, "t", 1);
        assert_int_equal(fy_hello_decode(b, n, &g), -FY_ENAME);
    }
    hello_bytes(b, &n, "ok", 2, "t\0t", 3);
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_EPAYLOAD);
    hello_bytes(b, &n, "ok", 2, big, 256);
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_EPAYLOAD);
    /* Lengths that point past the payload: truncated, never an overread. */
    hello_bytes(b, &n, "ok", 2, "t", 1);
    b[2] = 0xff;
    b[3] = 0xff;
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_ETRUNC);
}

/* ---- welcome -------------------------------------------------------------- */

static void test_welcome(void **state)
{
    (void)state;
    uint8_t b[64];
    size_t n;
    fy_welcome v = {.channel = 42, .next_seq = 1001, .first_seq = 17, .max_payload = 1 << 20}, g;
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 24);
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_welcome_decode(b, n, &g), 0);
    assert_int_equal(g.channel, 42);
    assert_int_equal(g.next_seq, 1001);
    assert_int_equal(g.first_seq, 17);
    assert_int_equal(g.max_payload, 1 << 20);
    assert_false(g.ext);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(fy_welcome_decode(b, k, &g), -FY_ETRUNC);
    /* a byte more is a torn extension */
    assert_int_equal(fy_welcome_decode(b, n + 1, &g), -FY_ETRUNC);
    assert_int_equal(fy_welcome_encode(&v, b, 23, &n), -ENOBUFS);

    fy_welcome e = v;
    e.max_payload = 0;
    assert_int_equal(fy_welcome_encode(&e, b, sizeof b, &n), -EINVAL);
    e.max_payload = (uint32_t)FY_PAYLOAD_MAX_LIMIT + 1;
    assert_int_equal(fy_welcome_encode(&e, b, sizeof b, &n), -EINVAL);
    e = v;
    e.next_seq = 0;
    assert_int_equal(fy_welcome_encode(&e, b, sizeof b, &n), -EINVAL);

    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    memset(b + 4, 0, 4);
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
    memset(b + 4, 0xff, 4);
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    memset(b + 8, 0, 8);
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
}

/* The extension: the file in progress, for a hello with FY_HELLO_F_RESUME. */
static void test_welcome_ext(void **state)
{
    (void)state;
    uint8_t b[600];
    size_t n;
    fy_welcome v = {.channel = 3, .next_seq = 90, .first_seq = 1, .max_payload = 65536,
                    .ext = true, .part_seq = 40, .part_size = 1000, .part_got = 640}, g;
    snprintf(v.part_name, sizeof v.part_name, "big.iso");
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 52 + 7);
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_welcome_decode(b, n, &g), 0);
    assert_true(g.ext);
    assert_int_equal(g.next_seq, 90);
    assert_int_equal(g.part_seq, 40);
    assert_int_equal(g.part_size, 1000);
    assert_int_equal(g.part_got, 640);
    assert_string_equal(g.part_name, "big.iso");
    for (size_t k = 25; k < n; k++)
        assert_int_equal(fy_welcome_decode(b, k, &g), -FY_ETRUNC);
    /* the epoch fields follow the extension (test_welcome_epoch): torn ones
     * are truncated, and fields after them are ignored */
    memset(b + n, 0, 24 + 16);
    assert_int_equal(fy_welcome_decode(b, n + 16, &g), -FY_ETRUNC);
    memset(b + n + 24, 0x5a, 16);
    assert_int_equal(fy_welcome_decode(b, n + 24 + 16, &g), 0);
    assert_string_equal(g.part_name, "big.iso");
    assert_true(g.ext2);
    assert_int_equal(fy_welcome_encode(&v, b, n - 1, &n), -ENOBUFS);

    /* no file in progress: 52 bytes, zeros */
    fy_welcome none = {.channel = 3, .next_seq = 90, .max_payload = 65536, .ext = true};
    assert_int_equal(fy_welcome_encode(&none, b, sizeof b, &n), 0);
    assert_int_equal(n, 52);
    assert_int_equal(fy_welcome_decode(b, n, &g), 0);
    assert_true(g.ext);
    assert_int_equal(g.part_seq, 0);
    assert_string_equal(g.part_name, "");

    /* bad fields */
    fy_welcome e = v;
    e.part_got = 1001;
    assert_int_equal(fy_welcome_encode(&e, b, sizeof b, &n), -EINVAL);
    e = v;
    snprintf(e.part_name, sizeof e.part_name, "a//x");
    assert_int_equal(fy_welcome_encode(&e, b, sizeof b, &n), -FY_ENAME);
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    b[50] = 1; /* reserved */
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    b[40] = 0xff; /* got > size */
    b[41] = 0xff;
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    b[52] = '/';
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_ENAME);
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    b[48] = 0xff; /* name past the payload */
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_ETRUNC);
}

/* The epoch fields: only after the extension, for a hello with
 * FY_HELLO_F_AHEAD (a receiver that reconciles when it is ahead). */
static void test_welcome_epoch(void **state)
{
    (void)state;
    uint8_t b[600];
    size_t n;
    fy_welcome v = {.channel = 3, .next_seq = 70, .first_seq = 1, .max_payload = 65536,
                    .ext = true, .ext2 = true, .epoch = 0x1122334455667788ull,
                    .epoch_seq = 70, .wflags = FY_WELCOME_F_AHEAD}, g;
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 52 + 24);
    assert_int_equal(b[52], 0x88); /* little-endian epoch right after the (empty) name */
    assert_int_equal(b[60], 70);
    assert_int_equal(b[68], FY_WELCOME_F_AHEAD);
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_welcome_decode(b, n, &g), 0);
    assert_true(g.ext && g.ext2);
    assert_int_equal(g.epoch, 0x1122334455667788ull);
    assert_int_equal(g.epoch_seq, 70);
    assert_int_equal(g.wflags, FY_WELCOME_F_AHEAD);
    assert_int_equal(g.next_seq, 70);
    for (size_t k = 53; k < n; k++)
        assert_int_equal(fy_welcome_decode(b, k, &g), -FY_ETRUNC);
    assert_int_equal(fy_welcome_encode(&v, b, n - 1, &n), -ENOBUFS);

    /* after a part name; no flag */
    v.part_seq = 40;
    v.part_size = 10;
    v.part_got = 5;
    v.wflags = 0;
    snprintf(v.part_name, sizeof v.part_name, "a.bin");
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 52 + 5 + 24);
    assert_int_equal(fy_welcome_decode(b, n, &g), 0);
    assert_string_equal(g.part_name, "a.bin");
    assert_int_equal(g.wflags, 0);
    assert_int_equal(g.epoch_seq, 70);

    /* an old client's decoder (no ext2 asked): the relay sends none, and a
     * 24-byte or extension-only welcome still decodes without it */
    fy_welcome old = v;
    old.ext2 = false;
    assert_int_equal(fy_welcome_encode(&old, b, sizeof b, &n), 0);
    assert_int_equal(n, 52 + 5);
    assert_int_equal(fy_welcome_decode(b, n, &g), 0);
    assert_false(g.ext2);
    assert_int_equal(g.wflags, 0);

    /* bad fields: the epoch fields need the extension, unknown flags, reserved */
    fy_welcome e = v;
    e.ext = false;
    assert_int_equal(fy_welcome_encode(&e, b, sizeof b, &n), -EINVAL);
    e = v;
    e.wflags = 0x80;
    assert_int_equal(fy_welcome_encode(&e, b, sizeof b, &n), -EINVAL);
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    b[52 + 5 + 17] = 1; /* a flag this version does not know */
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    b[52 + 5 + 20] = 1; /* reserved */
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
}

/* FY_HELLO_F_AHEAD: 16 more bytes after the token (epoch, part_seq). */
static void test_hello_ahead(void **state)
{
    (void)state;
    uint8_t b[FY_HELLO_MAX];
    size_t n;
    fy_hello v = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_RESUME, .resume_from = 500,
                  .flags = FY_HELLO_F_AHEAD, .epoch = 0xa1a2a3a4a5a6a7a8ull, .part_seq = 321};
    fy_hello g;
    strcpy(v.channel, "ch");
    strcpy(v.token, "tok");
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 16 + 2 + 3 + 16);
    assert_int_equal(b[6], FY_HELLO_F_AHEAD);
    assert_int_equal(b[21], 0xa8);
    assert_int_equal(b[29], 0x41); /* 321 = 0x141 */
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_hello_decode(b, n, &g), 0);
    assert_int_equal(g.flags, FY_HELLO_F_AHEAD);
    assert_int_equal(g.epoch, v.epoch);
    assert_int_equal(g.part_seq, 321);
    assert_string_equal(g.token, "tok");
    check_prefixes_and_trailing(b, n, hello_dec, &g);
    assert_int_equal(fy_hello_encode(&v, b, n - 1, &n), -ENOBUFS);

    /* both flags; without AHEAD the fields are neither sent nor decoded */
    v.flags = FY_HELLO_F_AHEAD | FY_HELLO_F_RESUME;
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(fy_hello_decode(b, n, &g), 0);
    assert_int_equal(g.flags, FY_HELLO_F_AHEAD | FY_HELLO_F_RESUME);
    v.flags = FY_HELLO_F_RESUME;
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 16 + 2 + 3);
    assert_int_equal(fy_hello_decode(b, n, &g), 0);
    assert_int_equal(g.epoch, 0);
    assert_int_equal(g.part_seq, 0);

    /* the longest hello fits the frame limit */
    memset(v.channel, 'c', FY_NAME_MAX);
    v.channel[FY_NAME_MAX] = 0;
    memset(v.token, 't', FY_TOKEN_MAX);
    v.token[FY_TOKEN_MAX] = 0;
    memset(v.client, 'k', FY_CLIENT_MAX);
    v.client[FY_CLIENT_MAX] = 0;
    v.flags = FY_HELLO_F_AHEAD | FY_HELLO_F_CLIENT | FY_HELLO_F_REPLICA;
    v.cepoch = v.log_next = 1;
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, FY_HELLO_MAX);
    assert_int_equal(n, fy_frame_payload_max(FY_FT_HELLO, FY_PAYLOAD_MAX_DEFAULT));
}

/* ---- file-begin / file-end ------------------------------------------------ */

static void test_file_begin(void **state)
{
    (void)state;
    uint8_t b[300];
    size_t n;
    fy_file_begin v = {.size = 0x123456789abull}, g;
    strcpy(v.name, "report-2024.pdf");
    assert_int_equal(fy_file_begin_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 12 + 15);
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_file_begin_decode(b, n, &g), 0);
    assert_int_equal(g.size, v.size);
    assert_string_equal(g.name, v.name);
    assert_false(g.ext);
    /* a payload that ends after the name is the old form; 1..23 bytes
     * more are a cut trailer */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(fy_file_begin_decode(b, k, &g), -FY_ETRUNC);
    b[n] = 0;
    assert_int_equal(fy_file_begin_decode(b, n + 1, &g), -FY_ETRUNC);
    assert_int_equal(fy_file_begin_encode(&v, b, n - 1, &n), -ENOBUFS);

    memset(v.name, 'n', FY_NAME_MAX);
    v.name[FY_NAME_MAX] = 0;
    assert_int_equal(fy_file_begin_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 12 + FY_NAME_MAX);
    assert_true(n + FY_FILE_BEGIN_EXT <= fy_frame_payload_max(FY_FT_FILE_BEGIN, FY_PAYLOAD_MAX_DEFAULT));
    assert_int_equal(fy_file_begin_decode(b, n, &g), 0);
    assert_string_equal(g.name, v.name);

    const char *bad[] = {"", "..", "/a", "a//b", "a/", "x\ty"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(v.name, bad[i]);
        assert_int_equal(fy_file_begin_encode(&v, b, sizeof b, &n), -FY_ENAME);
        /* Hand-made payload with the same name. */
        size_t nl = strlen(bad[i]);
        memset(b, 0, 12);
        b[8] = (uint8_t)nl;
        memcpy(b + 12, bad[i], nl);
        assert_int_equal(fy_file_begin_decode(b, 12 + nl, &g), -FY_ENAME);
    }
    memset(v.name, 'n', sizeof v.name);
    assert_int_equal(fy_file_begin_encode(&v, b, sizeof b, &n), -FY_ENAME);

    strcpy(v.name, "ok");
    assert_int_equal(fy_file_begin_encode(&v, b, sizeof b, &n), 0);
    b[11] = 1;
    assert_int_equal(fy_file_begin_decode(b, n, &g), -FY_EPAYLOAD);
}

/* The trailer: mode, mtime, source id; later bytes and flags ignored. */
static void test_file_begin_trailer(void **state)
{
    (void)state;
    uint8_t b[400];
    size_t n;
    fy_file_begin v = {.size = 99, .ext = true, .fflags = FY_FB_F_META | FY_FB_F_SOURCE,
                       .mode = 0640, .mtime_ns = -1500000000, .source = 0x1122334455667788ull},
                  g;
    strcpy(v.name, "d\xc3\xa9j\xc3\xa0 vu/my report (v2).txt");
    assert_int_equal(fy_file_begin_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 12 + strlen(v.name) + FY_FILE_BEGIN_EXT);
    assert_int_equal(fy_file_begin_decode(b, n, &g), 0);
    assert_true(g.ext);
    assert_int_equal(g.fflags, v.fflags);
    assert_int_equal(g.mode, 0640);
    assert_int_equal(g.mtime_ns, -1500000000);
    assert_int_equal(g.source, v.source);
    assert_string_equal(g.name, v.name);
    /* Bytes after the trailer, an unknown flag and mode bits above 07777 are
     * refused: what is taken must re-encode to the same bytes (fuzz_dec's
     * contract; it found all three). */
    memset(b + n, 0xab, 8);
    assert_int_equal(fy_file_begin_decode(b, n + 8, &g), -FY_EPAYLOAD);
    b[n - FY_FILE_BEGIN_EXT] |= 0x80;
    assert_int_equal(fy_file_begin_decode(b, n, &g), -FY_EPAYLOAD);
    b[n - FY_FILE_BEGIN_EXT] &= (uint8_t)~0x80;
    b[n - FY_FILE_BEGIN_EXT + 5] |= 0x10; /* mode bit 12 */
    assert_int_equal(fy_file_begin_decode(b, n, &g), -FY_EPAYLOAD);
    b[n - FY_FILE_BEGIN_EXT + 5] &= (uint8_t)~0x10;
    assert_int_equal(fy_file_begin_decode(b, n, &g), 0);
    v.fflags = 0x80;
    assert_int_equal(fy_file_begin_encode(&v, b, sizeof b, &n), -EINVAL);
}

static void test_path_check(void **state)
{
    (void)state;
    const char *good[] = {"a", "a/b", "tree/sub/y.txt", "my report (v2).txt", "r\xc3\xa9sum\xc3\xa9.txt",
                          ".profile", "a/.hidden/b", "a..b", "\xf0\x9f\x93\x81/x", "a\\b"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(fy_path_check(good[i], strlen(good[i])), 0);
    const char *bad[] = {"", "/", "/a", "a/", "a//b", ".", "..", "../a", "a/..", "a/./b",
                         "a\x01", "a\x7f", "\xc3", "\xc3\x28", "\xc0\xaf", "\xe0\x80\xaf",
                         "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(fy_path_check(bad[i], strlen(bad[i])), -FY_ENAME);
    assert_int_equal(fy_path_check("a\0b", 3), -FY_ENAME);
    char big[FY_NAME_MAX + 2];
    memset(big, 'x', sizeof big);
    big[100] = '/';
    assert_int_equal(fy_path_check(big, FY_NAME_MAX), 0);
    assert_int_equal(fy_path_check(big, FY_NAME_MAX + 1), -FY_ENAME);
    /* every channel-style name is a path */
    assert_int_equal(fy_path_check("file-1.tar.gz", 13), 0);
}

static void test_hole(void **state)
{
    (void)state;
    uint8_t b[16];
    size_t n;
    fy_hole v = {.len = 64ull << 20}, g;
    assert_int_equal(fy_hole_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(fy_hole_decode(b, n, &g), 0);
    assert_int_equal(g.len, v.len);
    assert_int_equal(fy_hole_decode(b, 7, &g), -FY_ETRUNC);
    assert_int_equal(fy_hole_decode(b, 9, &g), -FY_EPAYLOAD);
    v.len = 0;
    assert_int_equal(fy_hole_encode(&v, b, sizeof b, &n), -EINVAL);
    memset(b, 0, 8);
    assert_int_equal(fy_hole_decode(b, 8, &g), -FY_EPAYLOAD);
    assert_true(fy_frame_is_stream(FY_FT_HOLE));
    assert_string_equal(fy_frame_type_name(FY_FT_HOLE), "hole");
    assert_int_equal(fy_frame_payload_max(FY_FT_HOLE, FY_PAYLOAD_MAX_DEFAULT), 8);
    assert_int_equal(fy_frame_payload_max(20, FY_PAYLOAD_MAX_DEFAULT), 0); /* a gap: unknown */
}

/* The source fields after the epoch fields (hello flag 0x0100). */
static void test_welcome_source(void **state)
{
    (void)state;
    uint8_t b[FY_WELCOME_MAX];
    size_t n;
    fy_welcome v = {.channel = 3, .max_payload = 1 << 20, .next_seq = 50, .first_seq = 1,
                    .ext = true, .part_seq = 10, .part_size = 1000, .part_got = 500,
                    .ext2 = true, .ext3 = true, .part_source = 77,
                    .src_flags = FY_WELCOME_SRC_F_PREFIX},
               g;
    strcpy(v.part_name, "tree/a b.txt");
    memset(v.part_prefix_sha, 0x42, sizeof v.part_prefix_sha);
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 52 + strlen(v.part_name) + 24 + 48);
    assert_int_equal(fy_welcome_decode(b, n, &g), 0);
    assert_true(g.ext3);
    assert_int_equal(g.part_source, 77);
    assert_int_equal(g.src_flags, FY_WELCOME_SRC_F_PREFIX);
    assert_memory_equal(g.part_prefix_sha, v.part_prefix_sha, 32);
    assert_string_equal(g.part_name, "tree/a b.txt");
    assert_int_equal(fy_welcome_decode(b, n - 1, &g), 0); /* torn: ignored, as later fields */
    assert_false(g.ext3);
    assert_int_equal(fy_welcome_decode(b, n - 48, &g), 0);
    assert_false(g.ext3);
    /* An unknown source flag or a reserved word that is not 0 is refused:
     * taking it would re-encode to other bytes (the fuzz contract). */
    size_t src = n - 48;
    b[src + 8] |= 0x02;
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
    b[src + 8] &= (uint8_t)~0x02;
    b[src + 12] = 1;
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
    b[src + 12] = 0;
    assert_int_equal(fy_welcome_decode(b, n, &g), 0);
    v.ext2 = false;
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), -EINVAL);
}

static void test_dup_ask_answer(void **state)
{
    (void)state;
    uint8_t b[400];
    size_t n;
    fy_dup_ask q = {.size = 12345}, gq;
    strcpy(q.name, "photos/b/c.jpg");
    assert_int_equal(fy_dup_ask_encode(&q, b, sizeof b, &n), 0);
    assert_int_equal(n, 12 + strlen(q.name));
    assert_int_equal(fy_dup_ask_decode(b, n, &gq), 0);
    assert_int_equal(gq.size, 12345);
    assert_string_equal(gq.name, q.name);
    assert_int_equal(fy_dup_ask_decode(b, n - 1, &gq), -FY_ETRUNC);
    b[n] = 0;
    assert_int_equal(fy_dup_ask_decode(b, n + 1, &gq), -FY_EPAYLOAD); /* no trailer */
    strcpy(q.name, "../x");
    assert_int_equal(fy_dup_ask_encode(&q, b, sizeof b, &n), -FY_ENAME);

    fy_dup_answer st = {.seq = 77}, gs;
    memset(st.sha256, 0x11, sizeof st.sha256);
    assert_int_equal(fy_dup_answer_encode(&st, b, sizeof b, &n), 0);
    assert_int_equal(n, 40);
    assert_int_equal(fy_dup_answer_decode(b, n, &gs), 0);
    assert_int_equal(gs.seq, 77);
    assert_memory_equal(gs.sha256, st.sha256, 32);
    assert_int_equal(fy_dup_answer_decode(b, 39, &gs), -FY_ETRUNC);
    assert_int_equal(fy_dup_answer_decode(b, 41, &gs), -FY_EPAYLOAD);
    assert_false(fy_frame_is_stream(FY_FT_DUP_ASK));
    assert_string_equal(fy_frame_type_name(FY_FT_DUP_ANSWER), "dup-answer");
}

static void test_file_end(void **state)
{
    (void)state;
    uint8_t b[64];
    size_t n;
    fy_file_end v = {.size = 77}, g;
    for (int i = 0; i < 32; i++)
        v.sha256[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(fy_file_end_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 40);
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_file_end_decode(b, n, &g), 0);
    assert_int_equal(g.size, 77);
    assert_memory_equal(g.sha256, v.sha256, 32);
    check_prefixes_and_trailing(b, n, fend_dec, &g);
    assert_int_equal(fy_file_end_encode(&v, b, 39, &n), -ENOBUFS);
}

/* ---- ack / error ---------------------------------------------------------- */

static void test_ack(void **state)
{
    (void)state;
    uint8_t b[16];
    size_t n;
    fy_ack v = {.seq = UINT64_MAX - 1}, g = {0};
    assert_int_equal(fy_ack_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(fy_ack_decode(b, n, &g), 0);
    assert_int_equal(g.seq, v.seq);
    check_prefixes_and_trailing(b, n, ack_dec, &g);
    assert_int_equal(fy_ack_encode(&v, b, 7, &n), -ENOBUFS);
}

static void test_error(void **state)
{
    (void)state;
    uint8_t b[1100];
    size_t n;
    fy_error v = {.code = FY_EBUSY}, g;
    strcpy(v.text, "channel \"news\" already has a sender");
    assert_int_equal(fy_error_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 8 + strlen(v.text));
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_error_decode(b, n, &g), 0);
    assert_int_equal(g.code, FY_EBUSY);
    assert_string_equal(g.text, v.text);
    check_prefixes_and_trailing(b, n, error_dec, &g);

    v.text[0] = 0; /* empty text is allowed */
    assert_int_equal(fy_error_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(fy_error_decode(b, n, &g), 0);
    assert_string_equal(g.text, "");

    memset(v.text, 'e', FY_ERRTEXT_MAX);
    v.text[FY_ERRTEXT_MAX] = 0;
    assert_int_equal(fy_error_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, FY_CTL_PAYLOAD_MAX);
    assert_int_equal(fy_error_decode(b, n, &g), 0);
    assert_string_equal(g.text, v.text);
    assert_int_equal(fy_error_encode(&v, b, n - 1, &n), -ENOBUFS);
    memset(v.text, 'e', sizeof v.text);
    assert_int_equal(fy_error_encode(&v, b, sizeof b, &n), -EINVAL);
    v.text[0] = 0;
    v.code = 0;
    assert_int_equal(fy_error_encode(&v, b, sizeof b, &n), -EINVAL);

    v.code = FY_EAUTH;
    strcpy(v.text, "abc");
    assert_int_equal(fy_error_encode(&v, b, sizeof b, &n), 0);
    memset(b, 0, 4); /* code 0 */
    assert_int_equal(fy_error_decode(b, n, &g), -FY_EPAYLOAD);
    assert_int_equal(fy_error_encode(&v, b, sizeof b, &n), 0);
    b[6] = 1; /* reserved */
    assert_int_equal(fy_error_decode(b, n, &g), -FY_EPAYLOAD);
    assert_int_equal(fy_error_encode(&v, b, sizeof b, &n), 0);
    b[9] = 0; /* NUL inside the text */
    assert_int_equal(fy_error_decode(b, n, &g), -FY_EPAYLOAD);
    assert_int_equal(fy_error_encode(&v, b, sizeof b, &n), 0);
    b[4] = 0x01; /* text_len 1025 */
    b[5] = 0x04;
    assert_int_equal(fy_error_decode(b, sizeof b, &g), -FY_EPAYLOAD);
}

/* An edge's notice: the fields round-trip; a reversed range, seq 0, a NUL
 * in the text and a reserved bit are refused. */
static void test_notice(void **state)
{
    (void)state;
    uint8_t b[32 + FY_NOTICE_TEXT_MAX];
    size_t n;
    fy_notice v = {.code = FY_ESKIPPED, .at_seq = 19, .up_from = 100, .up_to = 250}, g;
    strcpy(v.text, "removed by the upstream's retention");
    assert_int_equal(fy_notice_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 32 + strlen(v.text));
    assert_int_equal(fy_frame_payload_max(FY_FT_NOTICE, FY_PAYLOAD_MAX_DEFAULT), sizeof b);
    assert_string_equal(fy_frame_type_name(FY_FT_NOTICE), "notice");
    assert_string_equal(fy_frame_type_name(47), "unknown");
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_notice_decode(b, n, &g), 0);
    assert_true(g.code == FY_ESKIPPED && g.at_seq == 19 && g.up_from == 100 && g.up_to == 250);
    assert_string_equal(g.text, v.text);
    check_prefixes_and_trailing(b, n, notice_dec, &g);
    assert_int_equal(fy_notice_encode(&v, b, n - 1, &n), -ENOBUFS);
    v.up_to = 99;
    assert_int_equal(fy_notice_encode(&v, b, sizeof b, &n), -EINVAL);
    v.up_to = 250;
    assert_int_equal(fy_notice_encode(&v, b, sizeof b, &n), 0);
    b[6] = 1; /* reserved */
    assert_int_equal(fy_notice_decode(b, n, &g), -FY_EPAYLOAD);
    b[6] = 0;
    b[32] = 0; /* a NUL in the text */
    assert_int_equal(fy_notice_decode(b, n, &g), -FY_EPAYLOAD);
    memset(b + 8, 0, 8); /* at_seq 0 */
    assert_int_equal(fy_notice_decode(b, n, &g), -FY_EPAYLOAD);
}

/* A follower's hello: the replica fields round-trip after the client
 * name; without FY_HELLO_F_CLIENT, or with cepoch or log_next 0, it is
 * refused both ways. */
static void test_hello_replica(void **state)
{
    (void)state;
    uint8_t b[FY_HELLO_MAX];
    size_t n;
    fy_hello v = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_RESUME, .resume_from = 42,
                  .flags = FY_HELLO_F_CLIENT | FY_HELLO_F_REPLICA, .cepoch = 7,
                  .last_epoch = 6, .log_next = 43},
             g;
    strcpy(v.channel, "c1");
    strcpy(v.client, "n2");
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 16 + 2 + 1 + 2 + 24);
    memset(&g, 0xee, sizeof g);
    assert_int_equal(fy_hello_decode(b, n, &g), 0);
    assert_true(g.cepoch == 7 && g.last_epoch == 6 && g.log_next == 43 && g.resume_from == 42);
    assert_string_equal(g.client, "n2");
    check_prefixes_and_trailing(b, n, hello_dec, &g);
    memset(b + n - 24, 0, 8); /* cepoch 0 */
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_EPAYLOAD);
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), 0);
    b[6] &= (uint8_t)~FY_HELLO_F_CLIENT; /* replica without a name */
    assert_int_equal(fy_hello_decode(b, n, &g), -FY_EPAYLOAD);
    v.flags = FY_HELLO_F_REPLICA;
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), -EINVAL);
    v.flags = FY_HELLO_F_CLIENT | FY_HELLO_F_REPLICA;
    v.log_next = 0;
    assert_int_equal(fy_hello_encode(&v, b, sizeof b, &n), -EINVAL);
    v.log_next = 1;
    assert_int_equal(fy_hello_encode(&v, b, n - 1, &n), -ENOBUFS);
}

/* The leader's welcome to a follower: the replica fields come after the
 * source fields (zeros when not asked for) and round-trip; cepoch 0 is
 * refused; a decoder that stops before them still reads the rest. */
static void test_welcome_replica(void **state)
{
    (void)state;
    uint8_t b[FY_WELCOME_MAX];
    size_t n;
    fy_welcome v = {.channel = 3, .next_seq = 10, .first_seq = 1, .max_payload = 65536,
                    .ext = true, .ext2 = true, .epoch = 5, .epoch_seq = 4, .ext4 = true,
                    .cepoch = 5, .trunc_seq = 9},
               g;
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 52 + 24 + 48 + 16);
    memset(&g, 0, sizeof g);
    assert_int_equal(fy_welcome_decode(b, n, &g), 0);
    assert_true(g.ext4 && g.cepoch == 5 && g.trunc_seq == 9 && g.epoch == 5 && g.ext3);
    assert_true(g.part_source == 0 && g.src_flags == 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(fy_welcome_decode(b, n - 16, &g), 0);
    assert_false(g.ext4);
    memset(b + n - 16, 0, 8);
    assert_int_equal(fy_welcome_decode(b, n, &g), -FY_EPAYLOAD);
    v.cepoch = 0;
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), -EINVAL);
    v.cepoch = 5;
    v.ext2 = false;
    assert_int_equal(fy_welcome_encode(&v, b, sizeof b, &n), -EINVAL);
}

/* Replica-stored: 16 bytes round-trip; cepoch 0 is refused. */
static void test_replica_stored(void **state)
{
    (void)state;
    uint8_t b[FY_REPLICA_STORED_SIZE];
    size_t n;
    fy_replica_stored v = {.cepoch = 2, .seq = 1234}, g;
    assert_int_equal(fy_replica_stored_encode(&v, b, sizeof b, &n), 0);
    assert_int_equal(n, 16);
    assert_int_equal(fy_frame_payload_max(FY_FT_REPLICA_STORED, FY_PAYLOAD_MAX_DEFAULT), 16);
    assert_string_equal(fy_frame_type_name(FY_FT_REPLICA_STORED), "replica-stored");
    assert_int_equal(fy_replica_stored_decode(b, n, &g), 0);
    assert_true(g.cepoch == 2 && g.seq == 1234);
    check_prefixes_and_trailing(b, n, rstored_dec, &g);
    assert_int_equal(fy_replica_stored_encode(&v, b, n - 1, &n), -ENOBUFS);
    v.cepoch = 0;
    assert_int_equal(fy_replica_stored_encode(&v, b, sizeof b, &n), -EINVAL);
    memset(b, 0, 8);
    assert_int_equal(fy_replica_stored_decode(b, 16, &g), -FY_EPAYLOAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_check), cmocka_unit_test(test_hello),
        cmocka_unit_test(test_notice), cmocka_unit_test(test_hello_replica),
        cmocka_unit_test(test_welcome_replica), cmocka_unit_test(test_replica_stored),
        cmocka_unit_test(test_hello_bad),  cmocka_unit_test(test_welcome),
        cmocka_unit_test(test_welcome_ext), cmocka_unit_test(test_welcome_epoch),
        cmocka_unit_test(test_hello_ahead),
        cmocka_unit_test(test_file_begin), cmocka_unit_test(test_file_end),
        cmocka_unit_test(test_file_begin_trailer), cmocka_unit_test(test_path_check),
        cmocka_unit_test(test_hole), cmocka_unit_test(test_welcome_source),
        cmocka_unit_test(test_dup_ask_answer),
        cmocka_unit_test(test_ack),        cmocka_unit_test(test_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
