/*
 * test_mbox.c - stress of the lock-free mailbox and stack (src/rt/mbox.c).
 *
 * P producer threads push M messages each into one mailbox while one
 * consumer takes batches, as an actor's turns do: every message must arrive
 * exactly once, each producer's messages in the order it sent them, the
 * stacked count must match, and the scheduled bit must hand the actor to
 * exactly one producer at a time.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ferry/sched.h"
#include "rt/mbox.h"
#include "rt/util.h"

enum { P = 4, M = 200000 };

typedef struct shared {
    fy__mbox mb;
    fy_msg *msgs; /* P * M, preallocated so the test measures the queue */
    _Atomic uint64_t schedules; /* producers that found the actor idle */
    _Atomic uint64_t bad_count; /* a push reported an impossible stacked count */
    _Atomic int owner_busy;     /* 1 while the consumer "runs the actor" */
    _Atomic int double_owner;
} shared;

typedef struct parg {
    shared *sh;
    unsigned id;
} parg;

static void *producer(void *p)
{
    parg *a = p;
    shared *sh = a->sh;
    for (uint64_t i = 0; i < M; i++) {
        fy_msg *m = &sh->msgs[a->id * (uint64_t)M + i];
        m->u64[0] = a->id;
        m->u64[1] = i;
        uint32_t stacked = 0;
        if (fy__mbox_push(&sh->mb, m, &stacked))
            atomic_fetch_add(&sh->schedules, 1);
        if (stacked < 1 || stacked > (uint64_t)P * M)
            atomic_fetch_add(&sh->bad_count, 1);
    }
    return NULL;
}

static void test_mbox_stress(void **st)
{
    (void)st;
    shared *sh = calloc(1, sizeof(*sh));
    assert_non_null(sh);
    sh->msgs = calloc((size_t)P * M, sizeof(fy_msg));
    assert_non_null(sh->msgs);
    pthread_t th[P];
    parg args[P];
    for (unsigned i = 0; i < P; i++) {
        args[i] = (parg){sh, i};
        assert_int_equal(pthread_create(&th[i], NULL, producer, &args[i]), 0);
    }

    uint64_t next[P] = {0}, got = 0, order_errors = 0, batches = 0;
    uint64_t end = fy_now_ns() + WAIT_LIMIT_NS;
    while (got < (uint64_t)P * M && fy_now_ns() < end) {
        fy_msg *tail;
        uint32_t n;
        fy_msg *m = fy__mbox_take(&sh->mb, &tail, &n);
        uint32_t seen = 0;
        while (m) {
            fy_msg *nx = m->next;
            unsigned id = (unsigned)m->u64[0];
            if (id >= P || m->u64[1] != next[id])
                order_errors++;
            else
                next[id]++;
            m = nx;
            seen++;
        }
        assert_int_equal(seen, n);
        got += n;
        batches += n ? 1 : 0;
    }
    for (unsigned i = 0; i < P; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(got, (uint64_t)P * M);
    assert_int_equal(order_errors, 0);
    for (unsigned i = 0; i < P; i++)
        assert_int_equal(next[i], M);
    assert_int_equal(fy__mbox_stacked(&sh->mb), 0);
    assert_int_equal(atomic_load(&sh->bad_count), 0);
    /* The consumer never gave the actor up, so only the first push found it
     * idle; now it can, and the next push schedules again. */
    assert_int_equal(atomic_load(&sh->schedules), 1);
    assert_true(fy__mbox_idle(&sh->mb));
    fy_msg extra = {0};
    uint32_t stacked = 0;
    assert_true(fy__mbox_push(&sh->mb, &extra, &stacked));
    assert_int_equal(stacked, 1);
    assert_int_equal(fy__mbox_stacked(&sh->mb), 1);
    assert_false(fy__mbox_idle(&sh->mb)); /* a message is waiting: keep it */
    fy_msg *tail;
    uint32_t n;
    assert_ptr_equal(fy__mbox_take(&sh->mb, &tail, &n), &extra);
    assert_int_equal(n, 1);
    assert_ptr_equal(tail, &extra);
    assert_true(fy__mbox_idle(&sh->mb));
    print_message("%llu messages in %llu batches, %llu idle->scheduled transitions\n",
                  (unsigned long long)got, (unsigned long long)batches,
                  (unsigned long long)atomic_load(&sh->schedules));
    free(sh->msgs);
    free(sh);
}

/* The scheduling rule itself: the producer that finds the actor idle runs
 * the consumer's turn; nobody else may run it until the turn gives it up. */
typedef struct sched_shared {
    fy__mbox mb;
    fy_msg *msgs;
    _Atomic int running;
    _Atomic uint64_t overlap, handled;
    uint64_t next[P]; /* owned by whoever holds the scheduled state */
    uint64_t order_errors;
} sched_shared;

typedef struct sarg {
    sched_shared *sh;
    unsigned id;
} sarg;

/* Run turns for as long as the count says we hold the actor. */
static void run_actor(sched_shared *sh)
{
    for (;;) {
        if (atomic_fetch_add(&sh->running, 1) != 0)
            atomic_fetch_add(&sh->overlap, 1);
        fy_msg *tail;
        uint32_t n;
        fy_msg *m = fy__mbox_take(&sh->mb, &tail, &n);
        for (; m; m = m->next) {
            unsigned id = (unsigned)m->u64[0];
            if (m->u64[1] != sh->next[id])
                sh->order_errors++;
            sh->next[id] = m->u64[1] + 1;
        }
        atomic_fetch_add(&sh->handled, n);
        atomic_fetch_sub(&sh->running, 1);
        if (fy__mbox_idle(&sh->mb))
            return;
    }
}

static void *sched_producer(void *p)
{
    sarg *a = p;
    sched_shared *sh = a->sh;
    for (uint64_t i = 0; i < M / 4; i++) {
        fy_msg *m = &sh->msgs[a->id * (uint64_t)M + i];
        m->u64[0] = a->id;
        m->u64[1] = i;
        if (fy__mbox_push(&sh->mb, m, NULL))
            run_actor(sh); /* we found it idle: we run it, like a scheduler would */
    }
    return NULL;
}

static void test_mbox_schedule_flag(void **st)
{
    (void)st;
    sched_shared *sh = calloc(1, sizeof(*sh));
    assert_non_null(sh);
    sh->msgs = calloc((size_t)P * M, sizeof(fy_msg));
    assert_non_null(sh->msgs);
    pthread_t th[P];
    sarg args[P];
    for (unsigned i = 0; i < P; i++) {
        args[i] = (sarg){sh, i};
        assert_int_equal(pthread_create(&th[i], NULL, sched_producer, &args[i]), 0);
    }
    for (unsigned i = 0; i < P; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&sh->handled), (uint64_t)P * (M / 4));
    assert_int_equal(atomic_load(&sh->overlap), 0);
    assert_int_equal(sh->order_errors, 0);
    assert_int_equal(fy__mbox_stacked(&sh->mb), 0);
    assert_int_equal(sh->mb.head, 0); /* idle and empty */
    free(sh->msgs);
    free(sh);
}

/* ---- the intrusive stack ------------------------------------------------- */

typedef struct node {
    fy__link link;
    unsigned id;
    uint64_t seq;
} node;

typedef struct lifo_shared {
    fy__lifo l;
    node *nodes;
} lifo_shared;

typedef struct larg {
    lifo_shared *sh;
    unsigned id;
} larg;

static void *lifo_producer(void *p)
{
    larg *a = p;
    for (uint64_t i = 0; i < M; i++) {
        node *n = &a->sh->nodes[a->id * (uint64_t)M + i];
        n->id = a->id;
        n->seq = i;
        (void)fy__lifo_push(&a->sh->l, &n->link);
    }
    return NULL;
}

static void test_lifo_stress(void **st)
{
    (void)st;
    lifo_shared sh = {0};
    sh.nodes = calloc((size_t)P * M, sizeof(node));
    assert_non_null(sh.nodes);
    pthread_t th[P];
    larg args[P];
    for (unsigned i = 0; i < P; i++) {
        args[i] = (larg){&sh, i};
        assert_int_equal(pthread_create(&th[i], NULL, lifo_producer, &args[i]), 0);
    }
    uint64_t next[P] = {0}, got = 0, errors = 0;
    uint64_t end = fy_now_ns() + WAIT_LIMIT_NS;
    while (got < (uint64_t)P * M && fy_now_ns() < end) {
        for (fy__link *l = fy__lifo_take(&sh.l); l; l = l->next) {
            node *n = fy__container_of(l, node, link);
            if (n->seq != next[n->id])
                errors++;
            next[n->id] = n->seq + 1;
            got++;
        }
    }
    for (unsigned i = 0; i < P; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(got, (uint64_t)P * M);
    assert_int_equal(errors, 0);
    assert_false(fy__lifo_nonempty(&sh.l));
    free(sh.nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mbox_stress),
        cmocka_unit_test(test_mbox_schedule_flag),
        cmocka_unit_test(test_lifo_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
