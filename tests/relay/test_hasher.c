/*
 * test_hasher.c - the hash workers (src/relay/hasher.c) on their own:
 * jobs of one stream run in order (the digest is the one-shot digest of
 * the bytes pushed), several streams share the workers, every job's
 * reference is released once and its credit handed back once, and a
 * notification comes for finished jobs.  Under TSan this is the check that
 * the sha state moves between the worker and its owner cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ferry/digest.h"
#include "relay/hasher.h"

static atomic_int released, notified;

static void release(void *ref)
{
    (void)ref;
    atomic_fetch_add(&released, 1);
}

static void notify(void *arg)
{
    (void)arg;
    atomic_fetch_add(&notified, 1);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

enum { STREAMS = 5, JOBS = 40, PIECE = 3000 };

/* Five streams over two workers, forty jobs each, with a reset, data and
 * a zero run per job: each stream's digest is that of its own bytes. */
static void test_order_and_credit(void **st)
{
    (void)st;
    fy_hasher *h;
    fy_sha256 *sha[STREAMS];
    fy_hasher_stream *s[STREAMS];
    static uint8_t data[STREAMS][JOBS * PIECE];
    uint64_t credit[STREAMS] = {0};

    atomic_store(&released, 0);
    atomic_store(&notified, 0);
    assert_int_equal(fy_hasher_start(2, &h), 0);
    for (int k = 0; k < STREAMS; k++) {
        fill(data[k], sizeof data[k], (uint32_t)k + 1);
        assert_int_equal(fy_sha256_new(&sha[k]), 0);
        assert_int_equal(fy_hasher_open(h, sha[k], notify, NULL, &s[k]), 0);
        /* a first file, thrown away by the reset in the first job */
        fy_sha256_update(sha[k], "junk", 4);
    }
    for (int j = 0; j < JOBS; j++)
        for (int k = 0; k < STREAMS; k++) {
            fy_hash_op ops[3];
            size_t n = 0;
            if (j == 0)
                ops[n++] = (fy_hash_op){.kind = FY_HASH_RESET};
            ops[n++] = (fy_hash_op){.kind = FY_HASH_DATA, .p = data[k] + j * PIECE,
                                    .len = PIECE - 100};
            ops[n++] = (fy_hash_op){.kind = FY_HASH_ZEROS, .len = 100};
            memset(data[k] + j * PIECE + PIECE - 100, 0, 100);
            assert_int_equal(fy_hasher_push(s[k], ops, n, 7, release, NULL), 0);
        }
    for (int k = 0; k < STREAMS; k++) {
        int err = -1;
        fy_hasher_wait(s[k]);
        assert_true(fy_hasher_idle(s[k]));
        credit[k] = fy_hasher_take(s[k], &err);
        assert_int_equal(err, 0);
        assert_int_equal(credit[k], 7 * JOBS);
        assert_int_equal(fy_hasher_take(s[k], NULL), 0); /* handed back once */
        uint8_t got[32], want[32];
        fy_sha256_final(sha[k], got);
        assert_int_equal(fy_sha256_oneshot(data[k], sizeof data[k], want), 0);
        assert_memory_equal(got, want, 32);
        uint64_t jobs, waits, ns;
        fy_hasher_counts(s[k], &jobs, &waits, &ns);
        assert_int_equal(jobs, JOBS);
        fy_hasher_close(s[k]);
        fy_sha256_free(sha[k]);
    }
    assert_int_equal(atomic_load(&released), STREAMS * JOBS);
    assert_true(atomic_load(&notified) >= STREAMS);
    fy_hasher_stop(h);
}

/* A stream closed with jobs still queued waits for them (their references
 * are released); a delayed worker still runs them all. */
static void test_close_waits(void **st)
{
    (void)st;
    fy_hasher *h;
    fy_sha256 *sha;
    fy_hasher_stream *s;
    static uint8_t buf[1 << 16];

    atomic_store(&released, 0);
    assert_int_equal(fy_hasher_start(1, &h), 0);
    fy_hasher_delay(h, 5);
    assert_int_equal(fy_sha256_new(&sha), 0);
    assert_int_equal(fy_hasher_open(h, sha, NULL, NULL, &s), 0);
    for (int j = 0; j < 10; j++) {
        fy_hash_op op = {.kind = FY_HASH_DATA, .p = buf, .len = sizeof buf};
        assert_int_equal(fy_hasher_push(s, &op, 1, 1, release, NULL), 0);
    }
    assert_false(fy_hasher_idle(s));
    fy_hasher_close(s);
    assert_int_equal(atomic_load(&released), 10);
    fy_sha256_free(sha);
    fy_hasher_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_credit),
        cmocka_unit_test(test_close_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
