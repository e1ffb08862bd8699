/*
 * test_io.c - fd readiness and timers as messages.
 *
 * A socketpair stands in for a connection: the test writes into one end and
 * an actor reads the other until EAGAIN, as every Ferry actor must with
 * edge-triggered readiness.  Timers must fire in deadline order, and a
 * timer or readiness for a stopped actor must be released, not leaked; a
 * dead actor's pending timers go at once, with the references they hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <ck_pr.h>

#include "ferry/actor.h"
#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/sched.h"
#include "rt/actor.h" /* refs: a dead actor's timers must not hold it */
#include "rt/util.h"

enum { T_REG = FY_MSG_USER, T_DEL };

static fy_sched *start(void)
{
    fy_sched_opts o = {.threads = 2};
    return rt_sched_up(&o);
}

/* ---- timers ------------------------------------------------------------- */

typedef struct tstate {
    uint64_t order[16];
    _Atomic uint64_t fired;
    int bad;
} tstate;

static int timer_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)self;
    tstate *t = st;
    if (m->type != FY_MSG_TIMER) {
        t->bad++;
        return FY_MSG_DONE;
    }
    uint64_t i = atomic_load(&t->fired);
    if (i < 16)
        t->order[i] = m->u64[0];
    atomic_fetch_add(&t->fired, 1);
    return FY_MSG_DONE;
}

static void test_timers(void **st)
{
    (void)st;
    fy_sched *s = start();
    tstate t = {0};
    fy_actor_opts o = {.fn = timer_fn, .state = &t};
    fy_actor *a = NULL;
    assert_int_equal(fy_actor_new(s, &o, &a), 0);
    /* Added out of order; they must arrive by deadline. */
    assert_int_equal(fy_timer_after(a, 60, 3), 0);
    assert_int_equal(fy_timer_after(a, 1, 1), 0);
    assert_int_equal(fy_timer_after(a, 30, 2), 0);
    assert_int_equal(fy_timer_after(a, 0, 0), 0);
    assert_true(wait_u64(&t.fired, 4));
    for (int i = 0; i < 4; i++)
        assert_int_equal(t.order[i], (uint64_t)i);
    assert_int_equal(t.bad, 0);

    /* A timer for a stopped actor is dropped; one far away is freed at join. */
    fy_actor *b = NULL;
    tstate tb = {0};
    fy_actor_opts ob = {.fn = timer_fn, .state = &tb};
    assert_int_equal(fy_actor_new(s, &ob, &b), 0);
    assert_int_equal(fy_timer_after(b, 5, 9), 0);
    assert_int_equal(fy_timer_after(b, 100000, 9), 0);
    fy_actor_stop(b);
    sleep_ms(20);
    assert_int_equal(atomic_load(&tb.fired), 0);
    fy_actor_unref(b);
    fy_actor_unref(a);
    rt_sched_down(s);
}

/* Wait (bounded) until a holds only the test's reference. */
static bool only_ours(fy_actor *a)
{
    for (int i = 0; i < 400; i++) {
        if (ck_pr_load_32(&a->refs) == 1)
            return true;
        sleep_ms(5);
    }
    return false;
}

/* A dead actor's timers are unlinked from the middle of the poller's heap:
 * the actor is not kept alive until they are due (issue 21, defect 8), and
 * the other actors' timers all still fire. */
static void test_timer_cancel(void **st)
{
    (void)st;
    fy_sched *s = start();
    enum { N = 48, PER = 6 };
    fy_actor *a[N];
    tstate ts[N];
    memset(ts, 0, sizeof ts);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < N; i++) {
        fy_actor_opts o = {.fn = timer_fn, .state = &ts[i]};
        assert_int_equal(fy_actor_new(s, &o, &a[i]), 0);
        for (int k = 0; k < PER; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            /* the stopped ones far away, the others soon: mixed in one heap */
            uint32_t ms = i % 2 ? 100000 + (uint32_t)(seed % 1000) : 20 + (uint32_t)(seed % 200);
            assert_int_equal(fy_timer_after(a[i], ms, (uint64_t)k), 0);
        }
    }
    sleep_ms(10); /* the poller has them in its heap */
    for (int i = 1; i < N; i += 2)
        fy_actor_stop(a[i]);
    for (int i = 1; i < N; i += 2) {
        assert_true(only_ours(a[i])); /* not in 100 s: now */
        assert_int_equal(fy_timer_after(a[i], 1, 1), -FY_ECLOSED);
    }
    for (int i = 0; i < N; i += 2)
        assert_true(wait_u64(&ts[i].fired, PER));
    for (int i = 0; i < N; i++) {
        assert_int_equal(ts[i].bad, 0);
        if (i % 2)
            assert_int_equal(atomic_load(&ts[i].fired), 0);
        fy_actor_unref(a[i]);
    }
    rt_sched_down(s);
}

/* ---- fd readiness ------------------------------------------------------- */

typedef struct reader {
    int fd;
    _Atomic uint64_t bytes;
    _Atomic uint64_t msgs;
    _Atomic uint64_t hup;
    int bad_tag;
} reader;

static int reader_fn(fy_actor *self, void *st, fy_msg *m)
{
    reader *r = st;
    if (m->type == T_REG) {
        if (fy_io_add(self, r->fd, FY_IO_READ, 77) != 0)
            r->bad_tag++;
        return FY_MSG_DONE;
    }
    if (m->type == T_DEL) {
        (void)fy_io_del(fy_actor_sched(self), r->fd);
        return FY_MSG_DONE;
    }
    if (m->type != FY_MSG_IO)
        return FY_MSG_DONE;
    if (m->u64[0] != 77)
        r->bad_tag++;
    atomic_fetch_add(&r->msgs, 1);
    char buf[4096];
    for (int i = 0; i < 10000; i++) { /* edge-triggered: read to EAGAIN */
        ssize_t n = read(r->fd, buf, sizeof(buf));
        if (n > 0) {
            atomic_fetch_add(&r->bytes, (uint64_t)n);
            continue;
        }
        if (n == 0)
            atomic_store(&r->hup, 1);
        break;
    }
    return FY_MSG_DONE;
}

/* A non-blocking socketpair sv and a reader actor on sv[0] (not yet
 * registered for readiness). */
static fy_actor *reader_on_pair(fy_sched *s, int sv[2], reader *r)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    memset(r, 0, sizeof *r);
    r->fd = sv[0];
    fy_actor_opts o = {.fn = reader_fn, .state = r};
    fy_actor *a = NULL;
    assert_int_equal(fy_actor_new(s, &o, &a), 0);
    return a;
}

static void test_fd_ready(void **st)
{
    (void)st;
    fy_sched *s = start();
    int sv[2];
    reader r;
    fy_actor *a = reader_on_pair(s, sv, &r);
    assert_int_equal(fy_actor_post(a, T_REG, 0, 0, 0, NULL, NULL), 0);

    /* Many small writes: readiness merges, every byte arrives. */
    char chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    uint64_t total = 0;
    uint64_t end = fy_now_ns() + WAIT_LIMIT_NS;
    for (int i = 0; i < 2000 && fy_now_ns() < end; i++) {
        ssize_t n = write(sv[1], chunk, sizeof(chunk));
        if (n > 0)
            total += (uint64_t)n;
        else
            sleep_ms(1); /* socket buffer full: let the actor drain */
    }
    assert_true(total > 0);
    assert_true(wait_u64(&r.bytes, total));
    assert_int_equal(atomic_load(&r.bytes), total);
    assert_true(atomic_load(&r.msgs) <= total / sizeof(chunk) + 1);

    /* Peer closes: the actor learns it from a read of 0. */
    close(sv[1]);
    assert_true(wait_u64(&r.hup, 1));
    assert_int_equal(r.bad_tag, 0);

    assert_int_equal(fy_actor_post(a, T_DEL, 0, 0, 0, NULL, NULL), 0);
    sleep_ms(5);
    assert_int_equal(fy_io_del(s, sv[0]), -ENOENT); /* already gone */
    close(sv[0]);
    fy_actor_unref(a);
    rt_sched_down(s);
}

/* Registrations left at shutdown and for a stopped actor are released. */
static void test_io_teardown(void **st)
{
    (void)st;
    fy_sched *s = start();
    int sv[2];
    reader r;
    fy_actor *a = reader_on_pair(s, sv, &r);
    assert_int_equal(fy_io_add(a, sv[0], FY_IO_READ | FY_IO_WRITE, 77), 0);
    assert_int_equal(fy_io_add(a, sv[0], FY_IO_READ, 77), -EEXIST);
    assert_true(wait_u64(&r.msgs, 1)); /* writable at once */
    fy_actor_stop(a);
    assert_int_equal(write(sv[1], "abc", 3), 3); /* readiness for a stopped actor */
    sleep_ms(10);
    fy_actor_unref(a);
    rt_sched_down(s); /* frees the registration (ASan checks) */
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers),
        cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_fd_ready),
        cmocka_unit_test(test_io_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
