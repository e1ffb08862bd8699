/*
 * test_swarm_rxchk.c - the receiver-side checker against crafted streams:
 * a clean file passes, and a missing, duplicate, out-of-order or corrupt
 * packet (bad CRC, or a right CRC over wrong content), a wrong digest and
 * a file cut short are each counted under their own name.  Frames go
 * through the real encoder and decoder (fy_proto), as on a socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "swarm/pattern.h"
#include "swarm/rxchk.h"

#define PACKET 1000u
#define SIZE 4500u /* 5 data frames, the last one short */

struct stream {
    uint8_t *bytes;
    size_t len, cap;
};

struct fx {
    fy_pattern *pat;
    uint8_t sha[1][32];
    fy_rxchk *chk;
    fy_dec *dec;
    struct stream s;
};

static void put(struct stream *s, uint8_t type, uint64_t seq, const uint8_t *pl, size_t n)
{
    if (s->len + FY_FRAME_HDR_SIZE + n > s->cap) {
        s->cap = (s->len + FY_FRAME_HDR_SIZE + n) * 2;
        s->bytes = realloc(s->bytes, s->cap);
        assert_non_null(s->bytes);
    }
    fy_frame_hdr h = {.type = type, .channel = 1, .seq = seq};
    fy_frame_seal(&h, pl, n, s->bytes + s->len);
    memcpy(s->bytes + s->len + FY_FRAME_HDR_SIZE, pl, n);
    s->len += FY_FRAME_HDR_SIZE + n;
}

static void put_begin(struct fx *x, uint64_t seq, const char *name)
{
    fy_file_begin b = {.size = SIZE};
    uint8_t pl[300];
    size_t n;
    strcpy(b.name, name);
    assert_int_equal(fy_file_begin_encode(&b, pl, sizeof pl, &n), 0);
    put(&x->s, FY_FT_FILE_BEGIN, seq, pl, n);
}

static void put_data(struct fx *x, uint64_t seq, unsigned i)
{
    size_t len;
    const uint8_t *p = fy_pattern_frame(x->pat, 0, (uint64_t)i * PACKET, SIZE, &len);
    put(&x->s, FY_FT_DATA, seq, p, len);
}

static void put_end(struct fx *x, uint64_t seq, const uint8_t sha[32])
{
    fy_file_end e = {.size = SIZE};
    uint8_t pl[64];
    size_t n;
    memcpy(e.sha256, sha, 32);
    assert_int_equal(fy_file_end_encode(&e, pl, sizeof pl, &n), 0);
    put(&x->s, FY_FT_FILE_END, seq, pl, n);
}

/* A whole good file: seqs first .. first+6. */
static void put_file(struct fx *x, uint64_t first)
{
    put_begin(x, first, "s0-f0");
    for (unsigned i = 0; i < 5; i++)
        put_data(x, first + 1 + i, i);
    put_end(x, first + 6, x->sha[0]);
}

/* Decode the whole stream in odd-sized pieces, as recv() would hand it. */
static int run(struct fx *x)
{
    size_t at = 0;
    while (at < x->s.len) {
        size_t piece = x->s.len - at < 777 ? x->s.len - at : 777;
        size_t off = 0;
        while (off < piece) {
            fy_frame f;
            size_t used;
            int rc = fy_dec_feed(x->dec, x->s.bytes + at + off, piece - off, &used, &f);
            if (rc < 0) {
                fy_rxchk_stream_error(x->chk, rc);
                return rc;
            }
            off += used;
            if (rc == 0)
                break;
            fy_rxchk_ev ev;
            fy_rxchk_frame(x->chk, &f, &ev);
        }
        at += piece;
    }
    return 0;
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    assert_int_equal(fy_pattern_new(PACKET, 42, &x->pat), 0);
    assert_int_equal(fy_pattern_sha256(x->pat, 0, SIZE, x->sha[0]), 0);
    fy_rxchk_cfg cfg = {.pat = x->pat, .hash = true, .sha = x->sha, .nsenders = 1};
    assert_int_equal(fy_rxchk_new(&cfg, &x->chk), 0);
    assert_int_equal(fy_dec_new(FY_PAYLOAD_MAX_DEFAULT, &x->dec), 0);
    fy_rxchk_expect(x->chk, 1);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    fy_rxchk_free(x->chk);
    fy_dec_free(x->dec);
    fy_pattern_free(x->pat);
    free(x->s.bytes);
    free(x);
    return 0;
}

static const fy_rxchk_counts *counts(struct fx *x)
{
    return fy_rxchk_counts_get(x->chk);
}

static void test_clean(void **state)
{
    struct fx *x = *state;
    put_file(x, 1);
    put_file(x, 8);
    assert_int_equal(run(x), 0);
    assert_int_equal(counts(x)->files_ok, 2);
    assert_int_equal(counts(x)->data_bytes, 2 * SIZE);
    assert_int_equal(fy_rxchk_failures(counts(x)), 0);
    assert_int_equal(fy_rxchk_next(x->chk), 15);
}

static void test_missing(void **state)
{
    struct fx *x = *state;
    put_begin(x, 1, "s0-f0");
    put_data(x, 2, 0);
    put_data(x, 4, 2); /* seq 3 never comes */
    put_data(x, 5, 3);
    put_data(x, 6, 4);
    put_end(x, 7, x->sha[0]);
    assert_int_equal(run(x), 0);
    assert_int_equal(counts(x)->missing, 1);
    assert_int_equal(counts(x)->files_bad, 1);
    assert_int_equal(fy_rxchk_failures(counts(x)), 1);
}

static void test_duplicate(void **state)
{
    struct fx *x = *state;
    put_begin(x, 1, "s0-f0");
    put_data(x, 2, 0);
    put_data(x, 3, 1);
    put_data(x, 3, 1); /* again */
    put_data(x, 4, 2);
    put_data(x, 5, 3);
    put_data(x, 6, 4);
    put_end(x, 7, x->sha[0]);
    assert_int_equal(run(x), 0);
    assert_int_equal(counts(x)->duplicate, 1);
    assert_int_equal(counts(x)->files_ok, 1); /* the repeat was not taken in */
    assert_int_equal(fy_rxchk_failures(counts(x)), 1);
}

static void test_out_of_order(void **state)
{
    struct fx *x = *state;
    put_begin(x, 1, "s0-f0");
    put_data(x, 2, 0);
    put_data(x, 4, 2);
    put_data(x, 3, 1); /* late: fills the gap */
    put_data(x, 5, 3);
    put_data(x, 6, 4);
    put_end(x, 7, x->sha[0]);
    assert_int_equal(run(x), 0);
    assert_int_equal(counts(x)->out_of_order, 1);
    assert_int_equal(counts(x)->missing, 0);
    assert_int_equal(counts(x)->duplicate, 0);
    assert_int_equal(counts(x)->files_bad, 1);
    assert_int_equal(fy_rxchk_failures(counts(x)), 1);
}

static void test_corrupt_crc(void **state)
{
    struct fx *x = *state;
    put_begin(x, 1, "s0-f0");
    put_data(x, 2, 0);
    put_data(x, 3, 1);
    x->s.bytes[x->s.len - 1] ^= 0x40; /* last payload byte of seq 3 */
    put_data(x, 4, 2);
    assert_int_equal(run(x), -FY_ECRC);
    assert_int_equal(counts(x)->corrupt, 1);
    assert_int_equal(fy_rxchk_failures(counts(x)), 1);
}

static void test_corrupt_content(void **state)
{
    struct fx *x = *state;
    uint8_t wrong[PACKET];
    size_t len;
    memcpy(wrong, fy_pattern_frame(x->pat, 0, PACKET, SIZE, &len), PACKET);
    wrong[10] ^= 1; /* sealed with a right CRC: only the content check sees it */
    put_begin(x, 1, "s0-f0");
    put_data(x, 2, 0);
    put(&x->s, FY_FT_DATA, 3, wrong, PACKET);
    put_data(x, 4, 2);
    put_data(x, 5, 3);
    put_data(x, 6, 4);
    put_end(x, 7, x->sha[0]);
    assert_int_equal(run(x), 0);
    assert_int_equal(counts(x)->corrupt, 1);
    assert_int_equal(counts(x)->digest_mismatch, 0); /* counted once */
    assert_int_equal(counts(x)->files_bad, 1);
    assert_int_equal(fy_rxchk_failures(counts(x)), 1);
}

static void test_digest(void **state)
{
    struct fx *x = *state;
    uint8_t bad[32];
    memcpy(bad, x->sha[0], 32);
    bad[0] ^= 0xff;
    put_begin(x, 1, "s0-f0");
    for (unsigned i = 0; i < 5; i++)
        put_data(x, 2 + i, i);
    put_end(x, 7, bad);
    assert_int_equal(run(x), 0);
    assert_int_equal(counts(x)->digest_mismatch, 1);
    assert_int_equal(fy_rxchk_failures(counts(x)), 1);
}

static void test_partial(void **state)
{
    struct fx *x = *state;
    put_begin(x, 1, "s0-f0");
    put_data(x, 2, 0); /* the sender vanished here */
    put_file(x, 3);
    assert_int_equal(run(x), 0);
    assert_int_equal(counts(x)->partial_files, 1);
    assert_int_equal(counts(x)->files_ok, 1);
    assert_int_equal(fy_rxchk_failures(counts(x)), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
