/*
 * test_batch_marks.c - what the ingest hands the writer beside each
 * file-begin and file-end (fy__batch marks, actors/batch.c), so that the
 * writer never decodes a frame again: every file-begin and file-end of a
 * stream has one mark, in frame order, with the name, size and digest its
 * payload carries; cutting a batch (fy__batch_cut, the writer after a
 * refused or partly stored batch) and dropping its head
 * (fy__batch_drop_front, an edge skipping frames it already has) keep the
 * marks on the frames that remain, also in a batch that has none.  No
 * sockets, no actors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ferry/digest.h"
#include "ingest.h"
#include "proto/test_util.h"

#define CHAN 9u
#define FILES 40

typedef struct sink {
    fy__batch *b[64];
    size_t n;
} sink;

static void out(void *arg, fy__batch *b)
{
    sink *k = arg;

    assert_true(k->n < 64);
    k->b[k->n++] = b;
}

/* FILES small files (begin, two data frames, end); file i is named
 * "file-i" and holds 100 + i bytes of value i. */
static size_t make_stream(uint8_t *buf)
{
    size_t len = 0, n;
    uint64_t seq = 1;
    uint8_t p[512], data[200];

    for (int i = 0; i < FILES; i++) {
        size_t size = 100 + (size_t)i;
        fy_file_begin fb = {.size = size};
        fy_file_end fe = {.size = size};
        snprintf(fb.name, sizeof fb.name, "file-%d", i);
        memset(data, i, size);
        assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
        len += tu_frame(buf + len, FY_FT_FILE_BEGIN, CHAN, seq++, p, n);
        len += tu_frame(buf + len, FY_FT_DATA, CHAN, seq++, data, 50);
        len += tu_frame(buf + len, FY_FT_DATA, CHAN, seq++, data + 50, size - 50);
        assert_int_equal(fy_sha256_oneshot(data, size, fe.sha256), 0);
        assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
        len += tu_frame(buf + len, FY_FT_FILE_END, CHAN, seq++, p, n);
    }
    return len;
}

/* Ingest the whole stream; the batches land in k. */
static void ingest_all(fy_bufpool *pool, sink *k)
{
    static uint8_t buf[FILES * 1024];
    size_t len = make_stream(buf);
    fy_ingest_conf c = {.pool = pool, .max_payload = 1 << 20, .budget = 64u << 20,
                        .channel = CHAN, .next_seq = 1, .out = out, .arg = k};
    fy_ingest *g;
    fy_frame f;

    assert_int_equal(fy_ingest_new(&c, buf, len, &g), 0);
    assert_int_equal(fy_ingest_next(g, &f), 0);
    fy_ingest_stop(g);
    fy_ingest_free(g);
}

/* Every mark names a file-begin or file-end frame of its batch, in order,
 * with what its payload says; every such frame has a mark. */
static void check_marks(const fy__batch *b)
{
    uint32_t k = 0;

    for (uint32_t i = 0; i < b->n; i++) {
        uint8_t t = fy__batch_type(b, i);
        if (t == FY_FT_DATA)
            continue;
        assert_true(k < b->nmarks);
        const fy__file_mark *m = &b->marks[k++];
        assert_int_equal(m->frame, i);
        assert_int_equal(m->type, t);
        int file = (int)((fy__batch_seq(b, i) - 1) / 4); /* four frames a file */
        char name[32];
        uint8_t data[200], sha[32];
        assert_int_equal(m->size, 100 + file);
        if (t == FY_FT_FILE_BEGIN) {
            snprintf(name, sizeof name, "file-%d", file);
            assert_string_equal(fy__batch_name(b, m), name);
        } else {
            memset(data, file, m->size);
            assert_int_equal(fy_sha256_oneshot(data, m->size, sha), 0);
            assert_memory_equal(m->sha256, sha, 32);
        }
    }
    assert_int_equal(k, b->nmarks);
}

static void test_marks(void **state)
{
    fy_bufpool *pool;
    sink k = {0};
    uint32_t frames = 0, marks = 0;

    (void)state;
    assert_int_equal(fy_bufpool_new(8u << 20, &pool), 0);
    ingest_all(pool, &k);
    assert_true(k.n >= 1);
    for (size_t i = 0; i < k.n; i++) {
        check_marks(k.b[i]);
        frames += k.b[i]->n;
        marks += k.b[i]->nmarks;
        fy__batch_unref(k.b[i]);
    }
    assert_int_equal(frames, 4 * FILES);
    assert_int_equal(marks, 2 * FILES);
    fy_bufpool_free(pool);
}

static void test_cut_and_drop(void **state)
{
    fy_bufpool *pool;
    sink k = {0};

    (void)state;
    assert_int_equal(fy_bufpool_new(8u << 20, &pool), 0);
    ingest_all(pool, &k);
    assert_int_equal(k.n, 1); /* all of it fits one batch */
    fy__batch *b = k.b[0];
    uint64_t bytes = 0, first;

    /* Cut inside file 2 (after its begin and one data frame). */
    fy__batch_cut(b, 10);
    assert_int_equal(b->n, 10);
    assert_int_equal(b->nmarks, 5); /* files 0 and 1, the begin of 2 */
    check_marks(b);
    /* Drop file 0 and the begin of file 1: the marks move with the frames. */
    for (uint32_t i = 0; i < b->n; i++)
        bytes += b->fr[i].iov_len;
    first = b->fr[0].iov_len + b->fr[1].iov_len + b->fr[2].iov_len + b->fr[3].iov_len +
            b->fr[4].iov_len;
    fy__batch_drop_front(b, 5);
    assert_int_equal(b->n, 5);
    assert_true(b->bytes == bytes - first);
    assert_int_equal(b->nmarks, 2); /* the end of file 1, the begin of 2 */
    assert_true(fy__batch_seq(b, 0) == 6);
    check_marks(b);
    /* Down to one data frame: no mark left. */
    fy__batch_drop_front(b, 4);
    assert_int_equal(b->nmarks, 0);
    assert_true(fy__batch_seq(b, 0) == 10);
    fy__batch_cut(b, 1);
    check_marks(b);
    fy__batch_unref(b);
    fy_bufpool_free(pool);
}

/* A batch that never had a mark (marks is NULL) is cut and dropped too. */
static void test_no_marks(void **state)
{
    uint8_t raw[3][64];
    fy__batch *b = fy__batch_new(4);

    (void)state;
    assert_non_null(b);
    for (int i = 0; i < 3; i++) {
        size_t n = tu_frame(raw[i], FY_FT_DATA, CHAN, 20 + (uint64_t)i, "abcd", 4);
        b->fr[b->n++] = (struct iovec){raw[i], n};
        b->bytes += n;
    }
    fy__batch_drop_front(b, 1);
    assert_int_equal(b->n, 2);
    assert_true(fy__batch_seq(b, 0) == 21);
    fy__batch_cut(b, 1);
    assert_int_equal(b->n, 1);
    assert_true(b->bytes == b->fr[0].iov_len);
    assert_int_equal(b->nmarks, 0);
    fy__batch_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marks),
        cmocka_unit_test(test_cut_and_drop),
        cmocka_unit_test(test_no_marks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
