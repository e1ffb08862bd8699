/*
 * test_buf.c - the packet buffer pool (src/rt/buf.c): refcounts, the byte
 * limit, size classes, and buffers shared and released across threads.
 * Every loop is bounded in count and in time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry/buf.h"
#include "ferry/err.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_refcount(void **state)
{
    (void)state;
    fy_bufpool *p;
    fy_buf *b;

    assert_int_equal(fy_bufpool_new(MIB, &p), 0);
    assert_int_equal(fy_buf_alloc(p, 100, &b), 0);
    assert_int_equal(fy_buf_refs(b), 1);
    assert_int_equal(fy_buf_len(b), 0);
    assert_true(fy_buf_ref(b) == b);
    fy_buf_ref(b);
    assert_int_equal(fy_buf_refs(b), 3);
    memset(fy_buf_data(b), 0xab, 100);
    fy_buf_set_len(b, 100);
    assert_int_equal(fy_buf_len(b), 100);
    assert_int_equal(fy_buf_cdata(b)[99], 0xab);
    fy_buf_unref(b);
    fy_buf_unref(b);
    /* Still alive: only the last reference frees it. */
    assert_int_equal(fy_bufpool_live(p), 1);
    assert_int_equal(fy_buf_refs(b), 1);
    fy_buf_unref(b);
    assert_int_equal(fy_bufpool_live(p), 0);
    assert_int_equal(fy_bufpool_used(p), 0);
    fy_buf_unref(NULL);
    fy_bufpool_free(p);
}

static void test_limit_and_refill(void **state)
{
    (void)state;
    enum { N = 64 };
    fy_bufpool *p;
    fy_buf *b[N + 1];
    fy_buf *one;

    /* Learn the 4 KiB class's capacity, then make a pool of exactly N. */
    assert_int_equal(fy_bufpool_new(MIB, &p), 0);
    assert_int_equal(fy_buf_alloc(p, 4 * KIB, &one), 0);
    size_t cap = fy_buf_cap(one);
    fy_buf_unref(one);
    fy_bufpool_free(p);

    assert_int_equal(fy_bufpool_new(N * cap, &p), 0);
    assert_int_equal(fy_bufpool_limit(p), N * cap);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            assert_int_equal(fy_buf_alloc(p, 4 * KIB, &b[i]), 0);
        assert_int_equal(fy_bufpool_used(p), N * cap);
        assert_int_equal(fy_bufpool_live(p), N);
        assert_int_equal(fy_buf_alloc(p, 1, &b[N]), -FY_EPOOL);
        /* A failed allocation changes nothing. */
        assert_int_equal(fy_bufpool_used(p), N * cap);
        for (int i = 0; i < N; i++)
            fy_buf_unref(b[i]);
        assert_int_equal(fy_bufpool_used(p), 0);
        assert_int_equal(fy_bufpool_live(p), 0);
    }
    fy_bufpool_free(p);
}

static void test_bad_args(void **state)
{
    (void)state;
    fy_bufpool *p;
    fy_buf *b;

    assert_int_equal(fy_bufpool_new(0, &p), -EINVAL);
    assert_int_equal(fy_bufpool_new(MIB, &p), 0);
    assert_int_equal(fy_buf_alloc(p, FY_BUF_MAX_CAP + 1, &b), -EINVAL);
    /* Within the maximum but past this pool's limit. */
    assert_int_equal(fy_buf_alloc(p, 2 * MIB, &b), -FY_EPOOL);
    assert_int_equal(fy_bufpool_used(p), 0);
    fy_bufpool_free(p);
}

static void test_size_classes(void **state)
{
    (void)state;
    static const size_t asks[] = {0,          1,          4 * KIB,         4 * KIB + 32,
                                  64 * KIB,   64 * KIB + 32, 256 * KIB + 32, MIB,
                                  MIB + 32,   4 * MIB + 32,  FY_BUF_MAX_CAP};
    fy_bufpool *p;
    size_t prev = 0;

    assert_int_equal(fy_bufpool_new(2 * FY_BUF_MAX_CAP, &p), 0);
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        fy_buf *b;
        assert_int_equal(fy_buf_alloc(p, asks[i], &b), 0);
        size_t cap = fy_buf_cap(b);
        assert_true(cap >= asks[i]);
        assert_true(cap >= prev); /* classes grow with the request */
        prev = cap;
        assert_int_equal(fy_bufpool_used(p), cap);
        assert_int_equal((uintptr_t)fy_buf_data(b) % 16, 0);
        /* Touch the whole capacity: ASan checks the bound. */
        memset(fy_buf_data(b), (int)i, cap);
        fy_buf_set_len(b, cap);
        fy_buf_unref(b);
    }
    fy_buf *b;
    /* A header plus a 64 KiB chunk stays in the 64 KiB class, not 256 KiB. */
    assert_int_equal(fy_buf_alloc(p, 64 * KIB + 32, &b), 0);
    assert_true(fy_buf_cap(b) < 128 * KIB);
    fy_buf_unref(b);
    /* A header plus a 1 MiB payload stays near 1 MiB. */
    assert_int_equal(fy_buf_alloc(p, MIB + 32, &b), 0);
    assert_true(fy_buf_cap(b) < 2 * MIB);
    fy_buf_unref(b);
    assert_int_equal(fy_buf_alloc(p, FY_BUF_MAX_CAP, &b), 0);
    assert_int_equal(fy_buf_cap(b), FY_BUF_MAX_CAP);
    fy_buf_unref(b);
    fy_bufpool_free(p);
}

/* Memory cached for one class must not starve another: fill the pool with
 * small buffers, free them, then fill it with large ones. */
static void test_classes_share_limit(void **state)
{
    (void)state;
    enum { NSMALL = 256 };
    fy_bufpool *p;
    fy_buf *b[NSMALL];
    size_t limit = 4 * MIB;

    assert_int_equal(fy_bufpool_new(limit, &p), 0);
    int n = 0;
    while (n < NSMALL && fy_buf_alloc(p, 4 * KIB, &b[n]) == 0)
        n++;
    assert_true(n > 200);
    for (int i = 0; i < n; i++)
        fy_buf_unref(b[i]);
    int m = 0;
    while (m < 4 && fy_buf_alloc(p, MIB, &b[m]) == 0)
        m++;
    assert_int_equal(m, 3); /* 1 MiB + header room: three fit, a fourth does not */
    for (int i = 0; i < m; i++)
        fy_buf_unref(b[i]);
    assert_int_equal(fy_bufpool_used(p), 0);
    fy_bufpool_free(p);
}

/* ---- one producer shares every buffer with NCONS consumers ---------------- */

enum { NCONS = 3, QCAP = 32, NPKT = 20000 };

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fy_buf *item[QCAP];
    unsigned head, tail; /* tail - head = items queued */
};

struct share {
    struct queue q[NCONS];
    size_t bad;
    double deadline;
};

static void q_push(struct queue *q, fy_buf *b)
{
    pthread_mutex_lock(&q->mu);
    while (q->tail - q->head == QCAP)
        pthread_cond_wait(&q->cv, &q->mu);
    q->item[q->tail++ % QCAP] = b;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static fy_buf *q_pop(struct queue *q, int *done)
{
    pthread_mutex_lock(&q->mu);
    while (q->tail == q->head)
        pthread_cond_wait(&q->cv, &q->mu);
    fy_buf *b = q->item[q->head++ % QCAP];
    *done = b == NULL;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return b;
}

struct consumer {
    struct share *s;
    int idx;
    size_t bad;
};

static void *consumer_main(void *arg)
{
    struct consumer *c = arg;
    int done = 0;

    for (long n = 0; n <= NPKT && !done; n++) {
        fy_buf *b = q_pop(&c->s->q[c->idx], &done);
        if (done)
            break;
        const uint8_t *d = fy_buf_cdata(b);
        size_t len = fy_buf_len(b);
        if (len < 2 || d[0] != d[len - 1])
            c->bad++;
        fy_buf_unref(b); /* whichever consumer is last frees it */
    }
    return NULL;
}

static void test_share_across_threads(void **state)
{
    (void)state;
    fy_bufpool *p;
    struct share s = {.deadline = now_s() + 8.0};
    struct consumer cons[NCONS];
    pthread_t th[NCONS];

    assert_int_equal(fy_bufpool_new(2 * MIB, &p), 0);
    for (int i = 0; i < NCONS; i++) {
        pthread_mutex_init(&s.q[i].mu, NULL);
        pthread_cond_init(&s.q[i].cv, NULL);
        cons[i] = (struct consumer){.s = &s, .idx = i};
        assert_int_equal(pthread_create(&th[i], NULL, consumer_main, &cons[i]), 0);
    }
    size_t sent = 0, full = 0;
    for (int i = 0; i < NPKT && now_s() < s.deadline; i++) {
        fy_buf *b;
        size_t len = (i % 7 == 0) ? 60 * KIB : 1000 + (size_t)(i % 3000);
        int rc = fy_buf_alloc(p, len, &b);
        if (rc == -FY_EPOOL) { /* consumers are behind: let them run */
            full++;
            sched_yield();
            continue;
        }
        assert_int_equal(rc, 0);
        memset(fy_buf_data(b), i & 0xff, len);
        fy_buf_set_len(b, len);
        for (int k = 0; k < NCONS; k++)
            q_push(&s.q[k], fy_buf_ref(b));
        fy_buf_unref(b); /* the producer's own reference */
        sent++;
    }
    for (int k = 0; k < NCONS; k++)
        q_push(&s.q[k], NULL);
    for (int k = 0; k < NCONS; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(cons[k].bad, 0);
        pthread_mutex_destroy(&s.q[k].mu);
        pthread_cond_destroy(&s.q[k].cv);
    }
    print_message("share: sent=%zu pool_full=%zu\n", sent, full);
    assert_true(sent > 0);
    assert_int_equal(fy_bufpool_used(p), 0);
    assert_int_equal(fy_bufpool_live(p), 0);
    fy_bufpool_free(p);
}

/* ---- every thread allocates, shares with a neighbour, and releases --------- */

enum { NTHR = 4, ITERS = 20000, HOLD = 4 };

struct churn {
    fy_bufpool *p;
    fy_buf *volatile *mailbox; /* one slot per thread, exchanged atomically */
    int idx;
    double deadline;
    size_t allocs, full, over;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    fy_buf *held[HOLD] = {0};
    unsigned seed = (unsigned)c->idx * 7919u + 1;

    for (int i = 0; i < ITERS && now_s() < c->deadline; i++) {
        unsigned r = (unsigned)rand_r(&seed);
        unsigned slot = r % HOLD;
        fy_buf_unref(held[slot]);
        held[slot] = NULL;
        fy_buf *b;
        size_t ask = (r & 0x100) ? 64 * KIB + 32 : 1 + (r % (4 * KIB));
        int rc = fy_buf_alloc(c->p, ask, &b);
        if (rc == -FY_EPOOL) {
            c->full++;
            continue;
        }
        if (rc != 0)
            break;
        c->allocs++;
        if (fy_bufpool_used(c->p) > fy_bufpool_limit(c->p))
            c->over++;
        fy_buf_data(b)[0] = (uint8_t)i;
        held[slot] = b;
        /* Give a reference to the next thread's mailbox; drop what was there
         * (a buffer some other thread allocated). */
        fy_buf *old = __atomic_exchange_n(&c->mailbox[(c->idx + 1) % NTHR], fy_buf_ref(b),
                                          __ATOMIC_ACQ_REL);
        fy_buf_unref(old);
        if ((r & 0xf) == 0) {
            old = __atomic_exchange_n(&c->mailbox[c->idx], NULL, __ATOMIC_ACQ_REL);
            fy_buf_unref(old);
        }
    }
    for (int k = 0; k < HOLD; k++)
        fy_buf_unref(held[k]);
    return NULL;
}

static void test_churn(void **state)
{
    (void)state;
    fy_bufpool *p;
    fy_buf *volatile mailbox[NTHR] = {0};
    struct churn c[NTHR];
    pthread_t th[NTHR];
    double deadline = now_s() + 8.0;

    /* Small enough that the threads run into the limit now and then. */
    assert_int_equal(fy_bufpool_new(600 * KIB, &p), 0);
    for (int i = 0; i < NTHR; i++) {
        c[i] = (struct churn){.p = p, .mailbox = mailbox, .idx = i, .deadline = deadline};
        assert_int_equal(pthread_create(&th[i], NULL, churn_main, &c[i]), 0);
    }
    size_t allocs = 0, full = 0;
    for (int i = 0; i < NTHR; i++) {
        pthread_join(th[i], NULL);
        allocs += c[i].allocs;
        full += c[i].full;
        assert_int_equal(c[i].over, 0);
    }
    for (int i = 0; i < NTHR; i++)
        fy_buf_unref(mailbox[i]);
    print_message("churn: allocs=%zu pool_full=%zu\n", allocs, full);
    assert_true(allocs > 0);
    assert_int_equal(fy_bufpool_used(p), 0);
    assert_int_equal(fy_bufpool_live(p), 0);
    /* After the run the whole limit is available again. */
    fy_buf *b[8];
    int n = 0;
    while (n < 8 && fy_buf_alloc(p, 64 * KIB + 32, &b[n]) == 0)
        n++;
    assert_int_equal(n, 8);
    for (int i = 0; i < n; i++)
        fy_buf_unref(b[i]);
    fy_bufpool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_limit_and_refill),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_size_classes),
        cmocka_unit_test(test_classes_share_limit),
        cmocka_unit_test(test_share_across_threads),
        cmocka_unit_test(test_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
