/*
 * test_ingest.c - the sender's ingest (actors/ingest.c) without sockets or
 * actors: bytes go in through the iovecs it names, in pieces of any size,
 * and the batches it hands out must hold the stream frames byte for byte,
 * in order, with a big data frame received straight into its own buffer.
 * Control frames come back to the caller; a broken stream ends with the
 * right fault after the frames before it were handed out; the budget and
 * the pool pause it without losing anything.  File digests are not the
 * ingest's to check (the writer does, test_relay_integrity.c: test_bad_digest,
 * test_continue_digest): a file-end with a wrong SHA-256 passes here.
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

#include "ferry/digest.h"
#include "ferry/err.h"
#include "ingest.h"
#include "proto/test_util.h"

#define CHAN 7u
#define BIG (200u << 10) /* above the direct-read threshold */

typedef struct sink {
    fy__batch *b[256];
    size_t n;
} sink;

static void out(void *arg, fy__batch *b)
{
    sink *k = arg;

    assert_true(k->n < 256);
    k->b[k->n++] = b;
}

/* Reads that went straight into a big frame's own buffer. */
static size_t direct_reads;

typedef struct stream {
    uint8_t *b;
    size_t len;
    size_t stored; /* bytes of stream frames (what the batches must hold) */
    uint64_t seq;  /* next seq */
} stream;

static void add(stream *s, uint8_t type, uint64_t seq, const void *p, size_t n)
{
    size_t k = tu_frame(s->b + s->len, type, CHAN, seq, p, n);

    s->len += k;
    if (fy_frame_is_stream(type))
        s->stored += k;
}

/* One file of small and big data frames, with a ping in the middle. */
static void make_file(stream *s, const uint8_t *data, size_t size)
{
    uint8_t p[512];
    size_t n;
    fy_file_begin fb = {.size = size};
    fy_file_end fe = {.size = size};

    snprintf(fb.name, sizeof fb.name, "f.bin");
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    add(s, FY_FT_FILE_BEGIN, s->seq++, p, n);
    for (size_t off = 0, i = 0; off < size; i++) {
        size_t k = i % 3 == 2 ? BIG : 1000 + 37 * i;
        k = k > size - off ? size - off : k;
        add(s, FY_FT_DATA, s->seq++, data + off, k);
        off += k;
        if (i == 1)
            add(s, FY_FT_PING, 0, "hi", 2);
    }
    assert_int_equal(fy_sha256_oneshot(data, size, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    add(s, FY_FT_FILE_END, s->seq++, p, n);
}

/* Feed s[*pos..) in reads of at most piece bytes, as readv() would fill
 * the iovecs; count control frames.  Returns what fy_ingest_next returned
 * last (0 once everything was taken). */
static int feed(fy_ingest *g, const stream *s, size_t *pos, size_t piece, int *ctls)
{
    fy_frame f;
    int rc;

    while ((rc = fy_ingest_next(g, &f)) == 1)
        ++*ctls;
    while (rc == 0 && *pos < s->len) {
        struct iovec iov[2];
        int k = fy_ingest_iov(g, iov);
        if (k == 2) { /* rest of a big frame, then only the next header */
            assert_true(iov[1].iov_len <= FY_FRAME_HDR_SIZE);
            direct_reads++;
        }
        size_t got = 0, want = s->len - *pos < piece ? s->len - *pos : piece;
        for (int i = 0; i < k && got < want; i++) {
            size_t c = iov[i].iov_len < want - got ? iov[i].iov_len : want - got;
            memcpy(iov[i].iov_base, s->b + *pos + got, c);
            got += c;
        }
        assert_true(got > 0);
        fy_ingest_got(g, got);
        *pos += got;
        while ((rc = fy_ingest_next(g, &f)) == 1) {
            assert_int_equal(f.hdr.type, FY_FT_PING);
            ++*ctls;
        }
    }
    return rc;
}

/* The batches hold exactly the stream frames of s, in order; returns how
 * many frames of at least BIG bytes filled a buffer of their own. */
static size_t check_out(sink *k, const stream *s, size_t upto)
{
    size_t off = 0, at = 0, direct = 0;

    for (size_t i = 0; i < k->n; i++) {
        fy__batch *b = k->b[i];
        for (uint32_t j = 0; j < b->n; j++) {
            fy_frame_hdr h;
            /* skip control frames in the source stream */
            while (fy_frame_hdr_decode(s->b + at, 1u << 20, &h) == 0 && !fy_frame_is_stream(h.type))
                at += 32 + h.len;
            assert_int_equal(b->fr[j].iov_len, 32 + h.len);
            assert_memory_equal(b->fr[j].iov_base, s->b + at, b->fr[j].iov_len);
            for (uint32_t q = 0; q < b->nbufs; q++)
                if (b->fr[j].iov_base == fy_buf_data(b->bufs[q]) && h.len >= BIG)
                    direct++;
            at += b->fr[j].iov_len;
            off += b->fr[j].iov_len;
        }
        fy__batch_unref(b);
    }
    k->n = 0;
    assert_int_equal(off, upto);
    return direct;
}

static fy_ingest *start(fy_bufpool *pool, sink *k, uint64_t budget)
{
    fy_ingest_conf c = {.pool = pool, .max_payload = 1u << 20, .budget = budget,
                        .channel = CHAN, .next_seq = 1, .out = out, .arg = k};
    fy_ingest *g;

    assert_int_equal(fy_ingest_new(&c, NULL, 0, &g), 0);
    return g;
}

static void test_stream(void **state)
{
    (void)state;
    size_t size = 3 * BIG + 12345;
    uint8_t *data = malloc(size);
    stream s = {.b = malloc(size + 64 * 1024), .seq = 1};
    fy_bufpool *pool;
    size_t pieces[] = {1u << 30, 256u << 10, 65536, 4097, 31};

    assert_non_null(data);
    assert_non_null(s.b);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(i * 131 + 7);
    make_file(&s, data, size);
    assert_int_equal(fy_bufpool_new(64u << 20, &pool), 0);
    for (size_t t = 0; t < sizeof pieces / sizeof *pieces; t++) {
        sink k = {.n = 0};
        fy_ingest *g = start(pool, &k, 64u << 20);
        size_t pos = 0;
        int ctls = 0;
        direct_reads = 0;
        assert_int_equal(feed(g, &s, &pos, pieces[t], &ctls), 0);
        fy_ingest_flush(g);
        const fy_ingest_info *in = fy_ingest_info_get(g);
        assert_int_equal(ctls, 1);
        assert_int_equal(in->next_seq, s.seq);
        assert_false(in->in_file);
        assert_int_equal(in->bytes, s.stored);
        assert_true(in->inflight >= s.stored);
        /* Big frames sit alone in their buffers; split ones were read
         * straight into them, not through the read buffer. */
        assert_int_equal(check_out(&k, &s, s.stored), 3);
        if (pieces[t] < BIG)
            assert_true(direct_reads > 0);
        fy_ingest_free(g);
        assert_int_equal(fy_bufpool_used(pool), 0);
    }
    assert_int_equal(fy_ingest_info_get(NULL)->frames, 0);
    fy_bufpool_free(pool);
    free(s.b);
    free(data);
}

/* The whole stream is taken and handed out. */
static void expect_pass(stream *s)
{
    fy_bufpool *pool;
    sink k = {.n = 0};
    size_t pos = 0;
    int ctls = 0;

    assert_int_equal(fy_bufpool_new(16u << 20, &pool), 0);
    fy_ingest *g = start(pool, &k, 16u << 20);
    assert_int_equal(feed(g, s, &pos, 100, &ctls), 0);
    fy_ingest_flush(g);
    assert_false(fy_ingest_info_get(g)->in_file);
    check_out(&k, s, s->stored);
    fy_ingest_free(g);
    assert_int_equal(fy_bufpool_used(pool), 0);
    fy_bufpool_free(pool);
}

/* A fault ends the stream after handing out the frames before it. */
static void expect_fault(stream *s, size_t good, int want, fy_ingest_why why)
{
    fy_bufpool *pool;
    sink k = {.n = 0};
    size_t pos = 0;
    int ctls = 0;
    fy_frame f;

    assert_int_equal(fy_bufpool_new(16u << 20, &pool), 0);
    fy_ingest *g = start(pool, &k, 16u << 20);
    assert_int_equal(feed(g, s, &pos, 100, &ctls), want);
    assert_int_equal(fy_ingest_fault_get(g)->why, why);
    assert_int_equal(fy_ingest_fault_get(g)->code, want);
    assert_int_equal(fy_ingest_next(g, &f), want); /* for good */
    check_out(&k, s, good);
    fy_ingest_free(g);
    assert_int_equal(fy_bufpool_used(pool), 0);
    fy_bufpool_free(pool);
}

static void test_faults(void **state)
{
    (void)state;
    uint8_t b[4096], p[512];
    size_t n;
    fy_file_begin fb = {.size = 10};
    stream s = {.b = b, .seq = 1};

    snprintf(fb.name, sizeof fb.name, "x");
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    add(&s, FY_FT_FILE_BEGIN, 1, p, n);
    size_t good = s.stored, len0 = s.len;

    add(&s, FY_FT_DATA, 3, "abc", 3); /* seq 2 expected */
    expect_fault(&s, good, -FY_ESEQ, FY_INGEST_SEQ);
    s.len = len0;
    add(&s, FY_FT_DATA, 2, "0123456789ab", 12); /* more than file-begin said */
    expect_fault(&s, good, -FY_ESIZE, FY_INGEST_DATA_SIZE);
    s.len = len0;
    add(&s, FY_FT_FILE_BEGIN, 2, p, n); /* inside a file */
    expect_fault(&s, good, -FY_EPROTO, FY_INGEST_BEGIN_IN_FILE);
    s.len = len0;
    add(&s, FY_FT_DATA, 2, "abc", 3);
    b[s.len - 1] ^= 1; /* payload CRC */
    expect_fault(&s, good, -FY_ECRC, FY_INGEST_BAD_FRAME);
    s.len = len0;
    add(&s, FY_FT_DATA, 2, "abc", 3);
    b[len0] ^= 0xff; /* magic */
    expect_fault(&s, good, -FY_EMAGIC, FY_INGEST_BAD_FRAME);
    s.len = 0;
    add(&s, FY_FT_DATA, 1, "abc", 3);
    expect_fault(&s, 0, -FY_EPROTO, FY_INGEST_DATA_OUTSIDE);

    /* The file-end's size must be what was received; its digest is the
     * writer's to check, so a wrong one goes on with the file-end. */
    s.len = s.stored = 0;
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    add(&s, FY_FT_FILE_BEGIN, 1, p, n);
    add(&s, FY_FT_DATA, 2, "0123456789", 10);
    size_t data_good = s.stored, len_data = s.len;
    fy_file_end fe = {.size = 9};
    assert_int_equal(fy_sha256_oneshot("0123456789", 10, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    add(&s, FY_FT_FILE_END, 3, p, n);
    expect_fault(&s, data_good, -FY_ESIZE, FY_INGEST_END_SIZE);
    s.len = len_data;
    s.stored = data_good;
    fe.size = 10;
    fe.sha256[7] ^= 1;
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    add(&s, FY_FT_FILE_END, 3, p, n);
    expect_pass(&s);
}

/* A spent budget pauses (-EAGAIN) until a credit; nothing is lost. */
static void test_budget(void **state)
{
    (void)state;
    size_t size = 4 * BIG;
    uint8_t *data = calloc(1, size);
    stream s = {.b = malloc(size + 4096), .seq = 1};
    fy_bufpool *pool;
    sink k = {.n = 0};
    size_t pos = 0;
    int ctls = 0, pauses = 0, rc;

    assert_non_null(data);
    assert_non_null(s.b);
    make_file(&s, data, size);
    assert_int_equal(fy_bufpool_new(64u << 20, &pool), 0);
    fy_ingest *g = start(pool, &k, BIG);
    while ((rc = feed(g, &s, &pos, 8192, &ctls)) == -EAGAIN) {
        pauses++;
        fy_ingest_flush(g);
        fy_ingest_credit(g, fy_ingest_info_get(g)->inflight); /* the writer caught up */
    }
    assert_int_equal(rc, 0);
    assert_true(pauses >= 3);
    fy_ingest_flush(g);
    check_out(&k, &s, s.stored);
    fy_ingest_free(g);
    fy_bufpool_free(pool);
    free(s.b);
    free(data);
}

/* ---- continuing the channel's file in progress ------------------------------ */

/* The batches of a continuation go to a sink. */
typedef struct cont_ctx {
    sink k;
} cont_ctx;

static void cont_out(void *arg, fy__batch *b)
{
    out(&((cont_ctx *)arg)->k, b);
}

/* Feed a whole stream to an ingest that inherited a file of `size` bytes
 * with `got` stored; returns the last fy_ingest_next result. */
static int run_cont(cont_ctx *cx, const stream *s, uint64_t next_seq, uint64_t size, uint64_t got,
                    fy_bufpool *pool, fy_ingest **gp)
{
    fy_ingest_conf c = {.pool = pool, .max_payload = 1u << 20, .budget = 64u << 20,
                        .channel = CHAN, .next_seq = next_seq, .out = cont_out, .arg = cx,
                        .in_file = true, .file_size = size, .file_got = got};
    size_t pos = 0;
    int ctls = 0;

    assert_int_equal(fy_ingest_new(&c, NULL, 0, gp), 0);
    return feed(*gp, s, &pos, 4097, &ctls);
}

/* A file-begin as the first frame starts another file: the inherited one
 * is dropped, and after that file-begin another one is the usual protocol
 * error. */
static void continue_then_begin(fy_bufpool *pool, size_t size, size_t got)
{
    uint8_t p[512];
    size_t n;
    fy_ingest *g;
    stream t = {.b = malloc(8192), .seq = 50};
    assert_non_null(t.b);
    fy_file_begin fb = {.size = 3};
    snprintf(fb.name, sizeof fb.name, "new.bin");
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    add(&t, FY_FT_FILE_BEGIN, t.seq++, p, n);
    add(&t, FY_FT_DATA, t.seq++, "abc", 3);
    fy_file_end fe3 = {.size = 3};
    assert_int_equal(fy_sha256_oneshot("abc", 3, fe3.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe3, p, sizeof p, &n), 0);
    add(&t, FY_FT_FILE_END, t.seq++, p, n);
    size_t good = t.stored;
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    add(&t, FY_FT_FILE_BEGIN, t.seq++, p, n);
    add(&t, FY_FT_FILE_BEGIN, t.seq++, p, n);
    cont_ctx cx = {.k = {.n = 0}};
    assert_int_equal(run_cont(&cx, &t, 50, size, got, pool, &g), -FY_EPROTO);
    assert_int_equal(fy_ingest_fault_get(g)->why, FY_INGEST_BEGIN_IN_FILE);
    assert_false(fy_ingest_info_get(g)->continued);
    check_out(&cx.k, &t, good + (t.stored - good) / 2);
    fy_ingest_free(g);
    free(t.b);
}

static void test_continue(void **state)
{
    (void)state;
    const size_t size = 100000, got = 60000;
    uint8_t *data = malloc(size), p[512];
    stream s = {.b = malloc(size + 8192), .seq = 50};
    fy_file_end fe = {.size = size};
    fy_bufpool *pool;
    fy_ingest *g;
    size_t n;

    assert_non_null(data);
    assert_non_null(s.b);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(fy_bufpool_new(64u << 20, &pool), 0);
    assert_int_equal(fy_sha256_oneshot(data, size, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);

    /* The rest of the file as data frames with no file-begin, then the
     * file-end: accepted (its digest over the whole file is the writer's
     * to check, test_relay_integrity.c: test_continue_digest). */
    add(&s, FY_FT_DATA, s.seq++, data + got, 30000);
    add(&s, FY_FT_DATA, s.seq++, data + got + 30000, size - got - 30000);
    size_t len_data = s.len;
    add(&s, FY_FT_FILE_END, s.seq++, p, n);
    cont_ctx cx = {.k = {.n = 0}};
    assert_int_equal(run_cont(&cx, &s, 50, size, got, pool, &g), 0);
    fy_ingest_flush(g);
    assert_true(fy_ingest_info_get(g)->continued);
    assert_false(fy_ingest_info_get(g)->in_file);
    check_out(&cx.k, &s, s.stored);
    fy_ingest_free(g);

    /* Only the stored part counts: a continuation that claims more bytes
     * than the file has is refused like any oversized file. */
    cx = (cont_ctx){.k = {.n = 0}};
    assert_int_equal(run_cont(&cx, &s, 50, size, got + 1, pool, &g), -FY_ESIZE);
    fy_ingest_free(g);
    for (size_t i = 0; i < cx.k.n; i++)
        fy__batch_unref(cx.k.b[i]);

    continue_then_begin(pool, size, got);

    /* Without an inherited file, data first is still refused. */
    s.len = len_data;
    sink k = {.n = 0};
    g = start(pool, &k, 64u << 20);
    fy_ingest_free(g);
    fy_ingest_conf bad = {.pool = pool, .max_payload = 1u << 20, .budget = 1u << 20,
                          .channel = CHAN, .next_seq = 1, .out = out, .arg = &k, .in_file = true,
                          .file_size = 1, .file_got = 2};
    assert_int_equal(fy_ingest_new(&bad, NULL, 0, &g), -EINVAL); /* more stored than the file has */

    assert_int_equal(fy_bufpool_used(pool), 0);
    fy_bufpool_free(pool);
    free(s.b);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_continue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
