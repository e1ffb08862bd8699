/*
 * test_dec.c - the incremental decoder: any split of a stream gives the
 * same frames as feeding it whole; whole frames come back zero-copy; each
 * malformed input gives its own error, whatever the split, and the decoder
 * stays failed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <time.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "proto/test_util.h"

#define MAXP (256u * 1024u)

/* What the tests remember of a decoded frame. */
typedef struct seen {
    fy_frame_hdr hdr;
    size_t raw_len;
    uint32_t raw_crc; /* CRC32C of raw[0..raw_len) */
    size_t offset;    /* where the frame began in the stream */
} seen;

typedef struct stream {
    uint8_t *b;
    size_t len;
    size_t nframes;
    size_t *offs;
} stream;

/* Many frames of every type and of sizes from 0 to 200 KiB. */
static void make_stream(stream *s, uint64_t seed, size_t nframes)
{
    s->b = malloc(nframes * (32 + 200 * 1024));
    s->offs = malloc(nframes * sizeof *s->offs);
    assert_non_null(s->b);
    assert_non_null(s->offs);
    uint8_t *pay = malloc(200 * 1024);
    assert_non_null(pay);
    s->len = 0;
    s->nframes = nframes;
    uint64_t seq = 1;
    for (size_t i = 0; i < nframes; i++) {
        uint8_t type = tu_rand(&seed) % 3 == 0 ? FY_FT_DATA
                                                : (uint8_t)(FY_FT_HELLO + tu_rand(&seed) % FY_FT_MAX_);
        while (!strcmp(fy_frame_type_name(type), "unknown")) /* the numbers have gaps */
            type = (uint8_t)(FY_FT_HELLO + tu_rand(&seed) % FY_FT_MAX_);
        size_t max = fy_frame_payload_max(type, 200 * 1024);
        size_t len;
        switch (tu_rand(&seed) % 4) {
        case 0: len = 0; break;
        case 1: len = tu_rand(&seed) % (max < 200 ? max + 1 : 200); break;
        case 2: len = max; break;
        default: len = tu_rand(&seed) % (max + 1); break;
        }
        if (type == FY_FT_DATA && tu_rand(&seed) % 8 == 0)
            len = 64 * 1024; /* the client's usual chunk */
        for (size_t k = 0; k < len; k++)
            pay[k] = (uint8_t)tu_rand(&seed);
        s->offs[i] = s->len;
        s->len += tu_frame(s->b + s->len, type, 9, fy_frame_is_stream(type) ? seq++ : 0, pay, len);
    }
    free(pay);
}

static void free_stream(stream *s)
{
    free(s->b);
    free(s->offs);
}

/* Feed input in pieces whose sizes come from next_piece(); record frames.
 * Returns the final rc (0 when the stream ended cleanly).  Frames are
 * checked against the stream bytes at once (raw is only valid until the
 * next call). */
static int feed_all(const uint8_t *in, size_t n, size_t max_payload, uint64_t *rng, int mode,
                    seen *out, size_t cap, size_t *count)
{
    fy_dec *d;
    assert_int_equal(fy_dec_new(max_payload, &d), 0);
    size_t pos = 0, nseen = 0;
    int rc = 0;
    while (pos < n) {
        size_t piece;
        switch (mode) {
        case 0: piece = n - pos; break;                     /* whole */
        case 1: piece = 1; break;                           /* byte by byte */
        case 2: piece = 1 + tu_rand(rng) % 64; break;       /* small */
        case 3: piece = 1 + tu_rand(rng) % (1u << 20); break; /* up to 1 MiB */
        default: {                                           /* mixed */
            uint64_t r = tu_rand(rng);
            piece = (r & 3) == 0 ? 1 : (r & 3) == 1 ? 1 + (r >> 8) % 40 : 1 + (r >> 8) % 300000;
        }
        }
        if (piece > n - pos)
            piece = n - pos;
        size_t off = 0;
        for (;;) { /* bounded: every round consumes bytes or returns */
            size_t used = 99;
            fy_frame f;
            rc = fy_dec_feed(d, in + pos + off, piece - off, &used, &f);
            if (rc < 0) {
                assert_int_equal(used, 0);
                goto out;
            }
            assert_true(used <= piece - off);
            off += used;
            if (rc == 0) {
                assert_int_equal(off, piece);
                break;
            }
            assert_int_equal(rc, 1);
            assert_true(nseen < cap);
            assert_int_equal(f.raw_len, 32 + (size_t)f.hdr.len);
            assert_ptr_equal(f.payload, f.raw + 32);
            /* The frame ends exactly where the decoder consumed to. */
            size_t end = pos + off;
            assert_true(end >= f.raw_len);
            out[nseen].hdr = f.hdr;
            out[nseen].raw_len = f.raw_len;
            out[nseen].raw_crc = fy_crc32c(0, f.raw, f.raw_len);
            out[nseen].offset = end - f.raw_len;
            assert_memory_equal(f.raw, in + out[nseen].offset, f.raw_len < 4096 ? f.raw_len : 4096);
            if (mode == 0)
                assert_ptr_equal(f.raw, in + out[nseen].offset); /* zero-copy */
            nseen++;
            if (off == piece)
                break;
        }
        pos += piece;
    }
out:
    *count = nseen;
    fy_dec_free(d);
    return rc < 0 ? rc : 0;
}

static void same_frames(const seen *a, size_t na, const seen *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].hdr.type, b[i].hdr.type);
        assert_int_equal(a[i].hdr.version, b[i].hdr.version);
        assert_int_equal(a[i].hdr.flags, b[i].hdr.flags);
        assert_int_equal(a[i].hdr.channel, b[i].hdr.channel);
        assert_int_equal(a[i].hdr.len, b[i].hdr.len);
        assert_int_equal(a[i].hdr.seq, b[i].hdr.seq);
        assert_int_equal(a[i].hdr.crc, b[i].hdr.crc);
        assert_int_equal(a[i].raw_len, b[i].raw_len);
        assert_int_equal(a[i].raw_crc, b[i].raw_crc);
        assert_int_equal(a[i].offset, b[i].offset);
    }
}

static void test_splits_equal_whole(void **state)
{
    (void)state;
    enum { NF = 120 };
    stream s;
    make_stream(&s, 0xfe77e5, NF);
    seen *whole = calloc(NF, sizeof *whole), *part = calloc(NF, sizeof *part);
    assert_non_null(whole);
    assert_non_null(part);
    size_t nw, np;
    uint64_t rng = 42;
    assert_int_equal(feed_all(s.b, s.len, MAXP, &rng, 0, whole, NF, &nw), 0);
    assert_int_equal(nw, NF);
    printf("stream: %zu frames, %zu bytes\n", nw, s.len);
    for (size_t i = 0; i < NF; i++)
        assert_int_equal(whole[i].offset, s.offs[i]);

    assert_int_equal(feed_all(s.b, s.len, MAXP, &rng, 1, part, NF, &np), 0);
    same_frames(whole, nw, part, np);

    /* Random splits: bounded in count and in time. */
    time_t t0 = time(NULL);
    for (int it = 0; it < 40 && time(NULL) - t0 < 8; it++) {
        rng = 1000 + (uint64_t)it;
        assert_int_equal(feed_all(s.b, s.len, MAXP, &rng, 2 + it % 3, part, NF, &np), 0);
        same_frames(whole, nw, part, np);
    }
    free(whole);
    free(part);
    free_stream(&s);
}

static void test_zero_copy_and_partial(void **state)
{
    (void)state;
    uint8_t b[3 * (32 + 100)];
    uint8_t pay[100];
    memset(pay, 7, sizeof pay);
    size_t n = 0;
    for (int i = 0; i < 3; i++)
        n += tu_frame(b + n, FY_FT_DATA, 1, (uint64_t)i + 1, pay, sizeof pay);
    fy_dec *d;
    fy_frame f;
    size_t used;
    assert_int_equal(fy_dec_new(MAXP, &d), 0);
    /* First call: one whole frame and part of the second. */
    assert_int_equal(fy_dec_feed(d, b, 200, &used, &f), 1);
    assert_int_equal(used, 132);
    assert_ptr_equal(f.raw, b);
    assert_int_equal(f.hdr.seq, 1);
    assert_int_equal(fy_dec_feed(d, b + 132, 68, &used, &f), 0);
    assert_int_equal(used, 68);
    /* The rest: the second frame comes from the decoder's buffer, the third
     * straight from the input again. */
    assert_int_equal(fy_dec_feed(d, b + 200, n - 200, &used, &f), 1);
    assert_int_equal(used, 64);
    assert_true(f.raw < b || f.raw >= b + sizeof b);
    assert_int_equal(f.hdr.seq, 2);
    assert_memory_equal(f.raw, b + 132, 132);
    assert_int_equal(fy_dec_feed(d, b + 264, n - 264, &used, &f), 1);
    assert_ptr_equal(f.raw, b + 264);
    assert_int_equal(f.hdr.seq, 3);
    assert_int_equal(used, 132);
    assert_int_equal(fy_dec_feed(d, b + n, 0, &used, &f), 0);
    assert_int_equal(used, 0);
    fy_dec_free(d);

    assert_int_equal(fy_dec_new(0, &d), -EINVAL);
    assert_int_equal(fy_dec_new(FY_PAYLOAD_MAX_LIMIT + 1, &d), -EINVAL);
    fy_dec_free(NULL);
}

/* A good frame, then a frame broken by edit(), then a good frame: the
 * first is delivered, the broken one fails with want whatever the split,
 * and the decoder stays failed. */
typedef void (*edit_fn)(uint8_t *frame, size_t len);

static void expect_error(edit_fn edit, uint8_t type, uint64_t seq, size_t len, size_t max_payload,
                         int want)
{
    size_t cap = 3 * (32 + len + 64);
    uint8_t *b = malloc(cap);
    uint8_t *pay = malloc(len + 64);
    assert_non_null(b);
    assert_non_null(pay);
    memset(pay, 0x3c, len + 64);
    size_t n = tu_frame(b, FY_FT_PING, 0, 0, "hi", 2);
    size_t at = n;
    n += tu_frame(b + n, type, 1, seq, pay, len);
    edit(b + at, n - at);
    n += tu_frame(b + n, FY_FT_BYE, 0, 0, NULL, 0);

    for (int mode = 0; mode < 5; mode++) {
        seen got[3];
        size_t cnt;
        uint64_t rng = 7 + (uint64_t)mode;
        int rc = feed_all(b, n, max_payload, &rng, mode, got, 3, &cnt);
        assert_int_equal(rc, want);
        assert_int_equal(cnt, 1);
        assert_int_equal(got[0].hdr.type, FY_FT_PING);
    }

    /* Stays failed: a fresh valid frame is refused with the same error. */
    fy_dec *d;
    fy_frame f;
    size_t used;
    assert_int_equal(fy_dec_new(max_payload, &d), 0);
    assert_int_equal(fy_dec_feed(d, b, n, &used, &f), 1);
    assert_int_equal(fy_dec_feed(d, b + used, n - used, &used, &f), want);
    assert_int_equal(used, 0);
    assert_int_equal(fy_dec_feed(d, b, 34, &used, &f), want);
    assert_int_equal(used, 0);
    assert_int_equal(fy_dec_feed(d, b, 1, &used, &f), want);
    fy_dec_free(d);
    free(b);
    free(pay);
}

static void ed_none(uint8_t *f, size_t n) { (void)f; (void)n; }
static void ed_magic(uint8_t *f, size_t n) { (void)n; f[3] = 'X'; }
static void ed_version(uint8_t *f, size_t n) { (void)n; f[4] = 9; tu_rehash(f); }
static void ed_hcrc(uint8_t *f, size_t n) { (void)n; f[13] ^= 0x40; } /* len, unprotected */
static void ed_type(uint8_t *f, size_t n) { (void)n; f[5] = 42; tu_rehash(f); }
static void ed_flags(uint8_t *f, size_t n) { (void)n; f[7] = 0x80; tu_rehash(f); }
static void ed_payload(uint8_t *f, size_t n) { f[n - 1] ^= 1; }
static void ed_pcrc(uint8_t *f, size_t n) { (void)n; f[24] ^= 1; tu_rehash(f); }

static void test_errors(void **state)
{
    (void)state;
    expect_error(ed_none, FY_FT_DATA, 0, 10, MAXP, -FY_ESEQ);
    expect_error(ed_none, FY_FT_FILE_BEGIN, 0, 20, MAXP, -FY_ESEQ);
    expect_error(ed_magic, FY_FT_DATA, 1, 10, MAXP, -FY_EMAGIC);
    expect_error(ed_version, FY_FT_DATA, 1, 10, MAXP, -FY_EVERSION);
    expect_error(ed_hcrc, FY_FT_DATA, 1, 10, MAXP, -FY_EHDRCHECK);
    expect_error(ed_type, FY_FT_DATA, 1, 10, MAXP, -FY_ETYPE);
    expect_error(ed_flags, FY_FT_DATA, 1, 10, MAXP, -FY_EFLAGS);
    expect_error(ed_none, FY_FT_DATA, 1, 1025, 1024, -FY_EOVERSIZE);
    expect_error(ed_none, FY_FT_ACK, 0, 9, MAXP, -FY_EOVERSIZE);
    expect_error(ed_none, FY_FT_BYE, 0, 1, MAXP, -FY_EOVERSIZE);
    expect_error(ed_none, FY_FT_PING, 0, 65, MAXP, -FY_EOVERSIZE);
    expect_error(ed_payload, FY_FT_DATA, 1, 5000, MAXP, -FY_ECRC);
    expect_error(ed_pcrc, FY_FT_DATA, 1, 0, MAXP, -FY_ECRC);
    expect_error(ed_payload, FY_FT_HELLO, 0, 30, MAXP, -FY_ECRC);
}

/* ---- header-first mode ----------------------------------------------------- */

/* A good frame: the header is checked from its first 32 bytes alone, the
 * payload wherever the caller put the frame; nothing is copied. */
static void test_head_good(void **state)
{
    (void)state;
    uint8_t b[32 + 300], own[32 + 300], pay[300];
    fy_dec *d;
    fy_frame_hdr h;
    fy_frame f;

    for (size_t i = 0; i < sizeof pay; i++)
        pay[i] = (uint8_t)(i * 7);
    size_t n = tu_frame(b, FY_FT_DATA, 5, 3, pay, sizeof pay);
    assert_int_equal(fy_dec_new(MAXP, &d), 0);
    /* Whole frame in the input: checked in place. */
    assert_int_equal(fy_dec_head(d, b, n, &h), 1);
    assert_int_equal(h.type, FY_FT_DATA);
    assert_int_equal(h.channel, 5);
    assert_int_equal(h.seq, 3);
    assert_int_equal(h.len, sizeof pay);
    assert_int_equal(fy_dec_body(d, &h, b, &f), 0);
    assert_ptr_equal(f.raw, b);
    assert_ptr_equal(f.payload, b + 32);
    assert_int_equal(f.raw_len, n);
    assert_int_equal(f.hdr.seq, 3);
    /* Only the header at hand: the caller assembles the frame elsewhere. */
    assert_int_equal(fy_dec_head(d, b, 32, &h), 1);
    assert_int_equal(h.len, sizeof pay);
    memcpy(own, b, n);
    assert_int_equal(fy_dec_body(d, &h, own, &f), 0);
    assert_ptr_equal(f.raw, own);
    /* An empty control frame, then back to fy_dec_feed between frames. */
    n = tu_frame(b, FY_FT_BYE, 0, 0, NULL, 0);
    assert_int_equal(fy_dec_head(d, b, n, &h), 1);
    assert_int_equal(fy_dec_body(d, &h, b, &f), 0);
    assert_int_equal(f.raw_len, 32);
    size_t used;
    assert_int_equal(fy_dec_feed(d, b, n, &used, &f), 1);
    assert_int_equal(used, n);
    fy_dec_free(d);
}

/* Fewer than 32 bytes: "need more", and no harm done. */
static void test_head_torn(void **state)
{
    (void)state;
    uint8_t b[32 + 10];
    fy_dec *d;
    fy_frame_hdr h;
    fy_frame f;
    size_t n = tu_frame(b, FY_FT_FILE_BEGIN, 1, 1, "0123456789", 10);

    assert_int_equal(fy_dec_new(MAXP, &d), 0);
    for (size_t k = 0; k < 32; k++)
        assert_int_equal(fy_dec_head(d, b, k, &h), 0);
    /* Even a torn header that will turn out bad is not judged early. */
    b[0] ^= 0xff;
    assert_int_equal(fy_dec_head(d, b, 31, &h), 0);
    b[0] ^= 0xff;
    assert_int_equal(fy_dec_head(d, b, n, &h), 1);
    assert_int_equal(fy_dec_body(d, &h, b, &f), 0);
    assert_int_equal(f.hdr.type, FY_FT_FILE_BEGIN);
    fy_dec_free(d);
}

/* A frame broken by edit(): header-first mode fails with want -- at the
 * header or, for the payload CRC, at the body -- exactly as fy_dec_feed
 * does, and stays failed. */
static void expect_head_error(edit_fn edit, uint8_t type, uint64_t seq, size_t len,
                              size_t max_payload, int want, bool at_body)
{
    uint8_t *b = malloc(32 + len), *pay = calloc(1, len + 1), good[32];
    fy_dec *d;
    fy_frame_hdr h;
    fy_frame f;
    size_t used;

    assert_non_null(b);
    assert_non_null(pay);
    size_t n = tu_frame(b, type, 1, seq, pay, len);
    edit(b, n);
    assert_int_equal(fy_dec_new(max_payload, &d), 0);
    assert_int_equal(fy_dec_feed(d, b, n, &used, &f), want); /* the same rules */
    fy_dec_free(d);

    assert_int_equal(fy_dec_new(max_payload, &d), 0);
    int rc = fy_dec_head(d, b, 32, &h); /* the header alone decides */
    if (at_body) {
        assert_int_equal(rc, 1);
        assert_int_equal(fy_dec_body(d, &h, b, &f), want);
    } else {
        assert_int_equal(rc, want);
    }
    size_t gn = tu_frame(good, FY_FT_BYE, 0, 0, NULL, 0);
    assert_int_equal(fy_dec_head(d, good, gn, &h), want);
    assert_int_equal(fy_dec_head(d, good, 3, &h), want);
    assert_int_equal(fy_dec_body(d, &h, good, &f), want);
    assert_int_equal(fy_dec_feed(d, good, gn, &used, &f), want);
    fy_dec_free(d);
    free(b);
    free(pay);
}

static void test_head_errors(void **state)
{
    (void)state;
    expect_head_error(ed_magic, FY_FT_DATA, 1, 10, MAXP, -FY_EMAGIC, false);
    expect_head_error(ed_version, FY_FT_DATA, 1, 10, MAXP, -FY_EVERSION, false);
    expect_head_error(ed_hcrc, FY_FT_DATA, 1, 10, MAXP, -FY_EHDRCHECK, false);
    expect_head_error(ed_type, FY_FT_DATA, 1, 10, MAXP, -FY_ETYPE, false);
    expect_head_error(ed_flags, FY_FT_DATA, 1, 10, MAXP, -FY_EFLAGS, false);
    expect_head_error(ed_none, FY_FT_DATA, 1, 1025, 1024, -FY_EOVERSIZE, false);
    expect_head_error(ed_none, FY_FT_ACK, 0, 9, MAXP, -FY_EOVERSIZE, false);
    expect_head_error(ed_none, FY_FT_PING, 0, 65, MAXP, -FY_EOVERSIZE, false);
    expect_head_error(ed_none, FY_FT_DATA, 0, 10, MAXP, -FY_ESEQ, false);
    expect_head_error(ed_none, FY_FT_FILE_END, 0, 40, MAXP, -FY_ESEQ, false);
    expect_head_error(ed_payload, FY_FT_DATA, 1, 5000, MAXP, -FY_ECRC, true);
    expect_head_error(ed_pcrc, FY_FT_DATA, 1, 0, MAXP, -FY_ECRC, true);
    expect_head_error(ed_payload, FY_FT_HELLO, 0, 30, MAXP, -FY_ECRC, true);
}

/* Random garbage never crashes and either decodes or fails for good. */
static void test_garbage(void **state)
{
    (void)state;
    uint64_t rng = 99;
    uint8_t b[4096];
    for (int it = 0; it < 300; it++) {
        size_t n = 1 + tu_rand(&rng) % sizeof b;
        for (size_t i = 0; i < n; i++)
            b[i] = (uint8_t)tu_rand(&rng);
        if (it % 2) { /* a valid header with a random length */
            fy_frame_hdr h = {.type = FY_FT_DATA, .seq = 1, .len = (uint32_t)tu_rand(&rng)};
            fy_frame_hdr_encode(&h, b);
        }
        seen got[200];
        size_t cnt;
        int rc = feed_all(b, n, MAXP, &rng, it % 5, got, 200, &cnt);
        assert_true(rc <= 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_copy_and_partial),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_head_good),
        cmocka_unit_test(test_head_torn),
        cmocka_unit_test(test_head_errors),
        cmocka_unit_test(test_splits_equal_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
