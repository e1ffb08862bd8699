/*
 * test_actor.c - actors and the scheduler: delivery, exclusivity, fairness,
 * ping-pong, fan-in, fan-out, stopping under load, lifetime.
 *
 * Every wait is bounded (rt_util.h); no assertion depends on timing.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ferry/actor.h"
#include "ferry/buf.h"
#include "ferry/err.h"
#include "ferry/sched.h"
#include "rt/util.h"

enum { T_COUNT = FY_MSG_USER, T_PING, T_GO, T_DONE };

static fy_sched *start(unsigned threads, unsigned batch)
{
    fy_sched_opts o = {.threads = threads, .batch = batch};
    return rt_sched_up(&o);
}

/* ---- counting actor: exclusivity and per-sender order ------------------- */

#define MAX_SENDERS 8
typedef struct counter {
    _Atomic uint64_t handled;
    _Atomic int inside;       /* handlers running right now: must stay <= 1 */
    _Atomic int overlap;      /* times a second thread entered */
    _Atomic int dtor_runs;
    int order_errors;         /* owned by the handler */
    uint64_t next[MAX_SENDERS];
    fy_actor *self;
    int wrong_thread;
} counter;

static int count_fn(fy_actor *self, void *st, fy_msg *m)
{
    counter *c = st;
    if (atomic_fetch_add(&c->inside, 1) != 0)
        atomic_fetch_add(&c->overlap, 1);
    if (!fy_actor_running_here(self) || fy_sched_thread_index() < 0)
        c->wrong_thread++;
    if (m->type == T_COUNT && m->u64[0] < MAX_SENDERS) {
        if (m->u64[1] != c->next[m->u64[0]])
            c->order_errors++;
        c->next[m->u64[0]] = m->u64[1] + 1;
    }
    atomic_fetch_sub(&c->inside, 1);
    atomic_fetch_add(&c->handled, 1);
    return FY_MSG_DONE;
}

static void count_dtor(void *st)
{
    counter *c = st;
    atomic_fetch_add(&c->dtor_runs, 1);
}

static fy_actor *new_counter(fy_sched *s, counter *c)
{
    memset(c, 0, sizeof(*c));
    fy_actor_opts o = {.fn = count_fn, .dtor = count_dtor, .state = c, .kind = 1, .label = "counter"};
    fy_actor *a = NULL;
    assert_int_equal(fy_actor_new(s, &o, &a), 0);
    c->self = a;
    return a;
}

static void test_basic(void **st)
{
    (void)st;
    fy_sched *s = start(2, 0);
    counter c;
    fy_actor *a = new_counter(s, &c);
    assert_false(fy_actor_running_here(a));
    for (uint64_t i = 0; i < 10000; i++)
        assert_int_equal(fy_actor_post(a, T_COUNT, 0, 0, i, NULL, NULL), 0);
    assert_true(wait_u64(&c.handled, 10000));
    assert_int_equal(c.order_errors, 0);
    assert_int_equal(c.wrong_thread, 0);
    fy_actor_stop(a);
    fy_actor_stop(a); /* idempotent */
    assert_true(fy_actor_stopped(a));
    assert_int_equal(fy_actor_post(a, T_COUNT, 0, 0, 0, NULL, NULL), -FY_ECLOSED);
    rt_sched_down(s);
    assert_int_equal(atomic_load(&c.dtor_runs), 1);
    fy_actor_unref(a);
}

/* ---- exclusivity under many senders ------------------------------------ */

typedef struct sender_arg {
    fy_actor *to;
    unsigned id;
    uint64_t n;
    fy_bufpool *pool;
    _Atomic uint64_t *closed_seen;
    _Atomic uint64_t sent_ok;
} sender_arg;

static void *sender_thread(void *p)
{
    sender_arg *a = p;
    uint64_t end = fy_now_ns() + WAIT_LIMIT_NS;
    for (uint64_t i = 0; i < a->n && fy_now_ns() < end; i++) {
        fy_buf *b = NULL;
        if (a->pool && fy_buf_alloc(a->pool, 100, &b) < 0)
            b = NULL;
        int r = fy_actor_post(a->to, T_COUNT, 0, a->id, i, NULL, b);
        if (r == -FY_ECLOSED) {
            if (a->closed_seen)
                atomic_fetch_add(a->closed_seen, 1);
            break;
        }
        if (r == 0)
            atomic_fetch_add(&a->sent_ok, 1);
    }
    return NULL;
}

static void test_exclusive(void **st)
{
    (void)st;
    fy_sched *s = start(2, 8);
    counter c;
    fy_actor *a = new_counter(s, &c);
    enum { P = 4, N = 50000 };
    pthread_t th[P];
    sender_arg args[P];
    for (unsigned i = 0; i < P; i++) {
        args[i] = (sender_arg){.to = a, .id = i, .n = N};
        assert_int_equal(pthread_create(&th[i], NULL, sender_thread, &args[i]), 0);
    }
    for (unsigned i = 0; i < P; i++)
        pthread_join(th[i], NULL);
    assert_true(wait_u64(&c.handled, (uint64_t)P * N));
    assert_int_equal(atomic_load(&c.overlap), 0);
    assert_int_equal(c.order_errors, 0);
    for (unsigned i = 0; i < P; i++)
        assert_int_equal(c.next[i], N);
    fy_actor_unref(a);
    rt_sched_down(s);
    assert_int_equal(atomic_load(&c.dtor_runs), 1);
}

/* ---- fairness: a flooded actor does not stop another -------------------- */

typedef struct flood {
    _Atomic uint64_t handled;
    _Atomic int quit;
} flood;

static int flood_fn(fy_actor *self, void *st, fy_msg *m)
{
    flood *f = st;
    atomic_fetch_add(&f->handled, 1);
    /* Re-post itself forever (until told to quit): its mailbox never empties. */
    if (!atomic_load(&f->quit) && atomic_load(&f->handled) < 50000000)
        (void)fy_actor_post(self, m->type, 0, 0, 0, NULL, NULL);
    return FY_MSG_DONE;
}

static void test_fairness(void **st)
{
    (void)st;
    /* One thread: the only way the victim progresses is the batch limit. */
    fy_sched *s = start(1, 16);
    flood f = {0};
    fy_actor_opts o = {.fn = flood_fn, .state = &f};
    fy_actor *fa = NULL;
    assert_int_equal(fy_actor_new(s, &o, &fa), 0);
    for (int i = 0; i < 100; i++) /* 100 messages in flight, each re-posted */
        assert_int_equal(fy_actor_post(fa, T_PING, 0, 0, 0, NULL, NULL), 0);
    counter c;
    fy_actor *victim = new_counter(s, &c);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(fy_actor_post(victim, T_COUNT, 0, 1, i, NULL, NULL), 0);
    assert_true(wait_u64(&c.handled, 1000));
    assert_true(atomic_load(&f.handled) > 0);
    atomic_store(&f.quit, 1);
    fy_actor_unref(fa);
    fy_actor_unref(victim);
    rt_sched_down(s);
}

/* ---- ping-pong ---------------------------------------------------------- */

typedef struct pp {
    fy_actor *peer;
    uint64_t limit;
    _Atomic uint64_t *done;
} pp;

static int pp_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)self;
    pp *p = st;
    if (m->u64[0] >= p->limit) {
        atomic_store(p->done, m->u64[0]);
        return FY_MSG_DONE;
    }
    m->u64[0]++;
    (void)fy_actor_send(p->peer, m); /* reuse the message */
    return FY_MSG_KEPT;
}

static void test_pingpong(void **st)
{
    (void)st;
    fy_sched *s = start(2, 0);
    _Atomic uint64_t done = 0;
    pp pa = {.limit = 100000, .done = &done}, pb = pa;
    fy_actor *a = NULL, *b = NULL;
    fy_actor_opts oa = {.fn = pp_fn, .state = &pa}, ob = {.fn = pp_fn, .state = &pb};
    assert_int_equal(fy_actor_new(s, &oa, &a), 0);
    assert_int_equal(fy_actor_new(s, &ob, &b), 0);
    pa.peer = b;
    pb.peer = a;
    assert_int_equal(fy_actor_post(a, T_PING, 0, 0, 0, NULL, NULL), 0);
    assert_true(wait_u64(&done, 100000));
    assert_int_equal(atomic_load(&done), 100000);
    fy_actor_unref(a);
    fy_actor_unref(b);
    rt_sched_down(s);
}

/* ---- fan-in and fan-out between actors ---------------------------------- */

typedef struct burst {
    fy_actor **to;
    unsigned nto;
    unsigned id;
    uint64_t n, sent;
} burst;

/* Sends a burst of 32 to each target per turn, then re-posts itself. */
static int burst_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)m;
    burst *b = st;
    for (int k = 0; k < 32 && b->sent < b->n; k++, b->sent++)
        for (unsigned j = 0; j < b->nto; j++)
            (void)fy_actor_post(b->to[j], T_COUNT, 0, b->id, b->sent, NULL, NULL);
    if (b->sent < b->n)
        (void)fy_actor_post(self, T_GO, 0, 0, 0, NULL, NULL);
    return FY_MSG_DONE;
}

static void test_fanin(void **st)
{
    (void)st;
    fy_sched *s = start(2, 0);
    counter c;
    fy_actor *sink = new_counter(s, &c);
    enum { P = 4, N = 20000 };
    burst b[P];
    fy_actor *src[P];
    for (unsigned i = 0; i < P; i++) {
        b[i] = (burst){.to = &sink, .nto = 1, .id = i, .n = N};
        fy_actor_opts o = {.fn = burst_fn, .state = &b[i]};
        assert_int_equal(fy_actor_new(s, &o, &src[i]), 0);
    }
    for (unsigned i = 0; i < P; i++)
        assert_int_equal(fy_actor_post(src[i], T_GO, 0, 0, 0, NULL, NULL), 0);
    assert_true(wait_u64(&c.handled, (uint64_t)P * N));
    assert_int_equal(c.order_errors, 0);
    assert_int_equal(atomic_load(&c.overlap), 0);
    for (unsigned i = 0; i < P; i++) {
        assert_int_equal(c.next[i], N);
        fy_actor_unref(src[i]);
    }
    fy_actor_unref(sink);
    rt_sched_down(s);
}

static void test_fanout(void **st)
{
    (void)st;
    fy_sched *s = start(2, 0);
    enum { K = 64, N = 2000 };
    counter *c = calloc(K, sizeof(*c));
    fy_actor **sinks = calloc(K, sizeof(*sinks));
    assert_non_null(c);
    assert_non_null(sinks);
    for (unsigned i = 0; i < K; i++)
        sinks[i] = new_counter(s, &c[i]);
    burst b = {.to = sinks, .nto = K, .id = 2, .n = N};
    fy_actor *src = NULL;
    fy_actor_opts o = {.fn = burst_fn, .state = &b};
    assert_int_equal(fy_actor_new(s, &o, &src), 0);
    assert_int_equal(fy_actor_post(src, T_GO, 0, 0, 0, NULL, NULL), 0);
    for (unsigned i = 0; i < K; i++) {
        assert_true(wait_u64(&c[i].handled, N));
        assert_int_equal(c[i].order_errors, 0);
    }
    fy_actor_unref(src);
    for (unsigned i = 0; i < K; i++)
        fy_actor_unref(sinks[i]);
    rt_sched_down(s);
    for (unsigned i = 0; i < K; i++)
        assert_int_equal(atomic_load(&c[i].dtor_runs), 1);
    free(c);
    free(sinks);
}

/* ---- stopping under load: every buffer comes back ----------------------- */

typedef struct keeper {
    _Atomic uint64_t handled;
} keeper;

/* Takes every third buffer itself and keeps every fifth message. */
static int keep_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)self;
    keeper *k = st;
    uint64_t n = atomic_fetch_add(&k->handled, 1);
    if (n % 3 == 0 && m->buf) {
        fy_buf *b = m->buf;
        m->buf = NULL;
        fy_buf_unref(b);
    }
    if (n % 5 == 0) {
        fy_msg_free(m);
        return FY_MSG_KEPT;
    }
    return FY_MSG_DONE;
}

static void test_stop_under_load(void **st)
{
    (void)st;
    fy_bufpool *pool = NULL;
    assert_int_equal(fy_bufpool_new(64u << 20, &pool), 0);
    fy_sched *s = start(2, 0);
    keeper k = {0};
    fy_actor_opts o = {.fn = keep_fn, .state = &k};
    fy_actor *a = NULL;
    assert_int_equal(fy_actor_new(s, &o, &a), 0);

    enum { P = 4 };
    pthread_t th[P];
    sender_arg args[P];
    _Atomic uint64_t closed = 0;
    for (unsigned i = 0; i < P; i++) {
        args[i] = (sender_arg){.to = a, .id = i, .n = 10000000, .pool = pool, .closed_seen = &closed};
        assert_int_equal(pthread_create(&th[i], NULL, sender_thread, &args[i]), 0);
    }
    assert_true(wait_u64(&k.handled, 20000));
    fy_actor_stop(a);
    for (unsigned i = 0; i < P; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&closed), P); /* every sender saw the stop */
    fy_actor_unref(a);
    rt_sched_down(s);
    assert_int_equal(fy_bufpool_live(pool), 0);
    fy_bufpool_free(pool);
}

/* ---- lifetime: actors left running are stopped by join ------------------ */

static void test_join_stops_all(void **st)
{
    (void)st;
    fy_bufpool *pool = NULL;
    assert_int_equal(fy_bufpool_new(8u << 20, &pool), 0);
    fy_sched *s = start(2, 0);
    counter c[8];
    for (int i = 0; i < 8; i++) {
        fy_actor *a = new_counter(s, &c[i]);
        for (int j = 0; j < 100; j++) {
            fy_buf *b = NULL;
            assert_int_equal(fy_buf_alloc(pool, 64, &b), 0);
            assert_int_equal(fy_actor_post(a, T_PING, 0, 0, 0, NULL, b), 0);
        }
        fy_actor_unref(a); /* the runtime still holds it */
    }
    rt_sched_down(s);
    for (int i = 0; i < 8; i++)
        assert_int_equal(atomic_load(&c[i].dtor_runs), 1);
    assert_int_equal(fy_bufpool_live(pool), 0);
    fy_bufpool_free(pool);
}

static void test_never_started(void **st)
{
    (void)st;
    fy_sched *s = NULL;
    assert_int_equal(fy_sched_new(NULL, &s), 0);
    assert_true(fy_sched_threads(s) >= 1);
    counter c;
    fy_actor *a = new_counter(s, &c);
    assert_int_equal(fy_actor_post(a, T_PING, 0, 0, 0, NULL, NULL), 0);
    assert_int_equal(fy_actor_depth(a), 1);
    fy_sched_free(s);
    assert_int_equal(atomic_load(&c.dtor_runs), 1);
    assert_int_equal(atomic_load(&c.handled), 0);
    fy_actor_unref(a);
}

/* ---- a handler may stop the scheduler ----------------------------------- */

static int exit_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)st, (void)m;
    fy_sched_exit(fy_actor_sched(self));
    fy_actor_stop(self);
    return FY_MSG_DONE;
}

static void test_exit_from_handler(void **st)
{
    (void)st;
    fy_sched *s = start(2, 0);
    fy_actor_opts o = {.fn = exit_fn};
    fy_actor *a = NULL;
    assert_int_equal(fy_actor_new(s, &o, &a), 0);
    assert_int_equal(fy_actor_post(a, T_PING, 0, 0, 0, NULL, NULL), 0);
    fy_sched_join(s);
    uint64_t busy, turns;
    assert_int_equal(fy_sched_thread_stats(s, 0, &busy, &turns), 0);
    assert_int_equal(fy_sched_thread_stats(s, 99, &busy, &turns), -EINVAL);
    fy_sched_free(s);
    fy_actor_unref(a);
}

/* ---- a handler about to block hands its thread's queue over ------------ */

typedef struct blocker {
    fy_actor *peer;
    bool handoff;
    _Atomic uint64_t peer_ran, blocked_done;
    _Atomic uint64_t ran_during; /* the peer ran while the blocker slept */
} blocker;

static int peer_fn(fy_actor *self, void *st, fy_msg *m)
{
    blocker *b = st;
    (void)self, (void)m;
    atomic_store(&b->peer_ran, 1);
    return FY_MSG_DONE;
}

/* Posts to the peer (which lands on this thread's own queue), then blocks
 * for 300 ms as an fdatasync would. */
static int blocker_fn(fy_actor *self, void *st, fy_msg *m)
{
    blocker *b = st;
    (void)self, (void)m;
    fy_actor_post(b->peer, T_PING, 0, 0, 0, NULL, NULL);
    if (b->handoff)
        fy_sched_handoff();
    for (int i = 0; i < 300 && !atomic_load(&b->peer_ran); i++)
        sleep_ms(1);
    atomic_store(&b->ran_during, atomic_load(&b->peer_ran));
    atomic_store(&b->blocked_done, 1);
    return FY_MSG_DONE;
}

static uint64_t blocked_run(bool handoff)
{
    fy_sched *s = start(2, 0);
    blocker b = {.handoff = handoff};
    fy_actor_opts po = {.fn = peer_fn, .state = &b}, bo = {.fn = blocker_fn, .state = &b};
    fy_actor *blk = NULL;
    assert_int_equal(fy_actor_new(s, &po, &b.peer), 0);
    assert_int_equal(fy_actor_new(s, &bo, &blk), 0);
    assert_int_equal(fy_actor_post(blk, T_GO, 0, 0, 0, NULL, NULL), 0);
    assert_true(wait_u64(&b.blocked_done, 1));
    assert_true(wait_u64(&b.peer_ran, 1));
    rt_sched_down(s);
    fy_actor_unref(blk);
    fy_actor_unref(b.peer);
    return atomic_load(&b.ran_during);
}

static void test_handoff_before_blocking(void **st)
{
    (void)st;
    /* Without the handoff the peer waits in the blocked thread's queue (the
     * other thread is parked and nobody wakes it): the reason ferryd's
     * forwarders waited out a writer's fdatasync. */
    assert_int_equal(blocked_run(false), 0);
    assert_int_equal(blocked_run(true), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),          cmocka_unit_test(test_exclusive),
        cmocka_unit_test(test_fairness),       cmocka_unit_test(test_pingpong),
        cmocka_unit_test(test_fanin),          cmocka_unit_test(test_fanout),
        cmocka_unit_test(test_stop_under_load), cmocka_unit_test(test_join_stops_all),
        cmocka_unit_test(test_never_started),  cmocka_unit_test(test_exit_from_handler),
        cmocka_unit_test(test_handoff_before_blocking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
