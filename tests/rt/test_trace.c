/*
 * test_trace.c - per-thread trace rings, wrap-around, and the trace file.
 *
 * A scheduler with a tiny ring records far more events than it holds; the
 * dump must then hold exactly the newest ones, oldest first, with the count
 * of lost ones, behind a header and an actor table that parse back as
 * docs/trace-format.md says.  fy_trace_read_since() must return exactly the
 * events after a cursor, in order, count the ones a wrap overwrote, and
 * never return a torn event while the thread keeps writing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "ferry/actor.h"
#include "ferry/sched.h"
#include "ferry/trace.h"
#include "rt/util.h"

typedef struct sink {
    _Atomic uint64_t handled;
} sink;

static int sink_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)self, (void)m;
    atomic_fetch_add(&((sink *)st)->handled, 1);
    return FY_MSG_DONE;
}

/* Relays each message to the sink, so sends happen on a scheduler thread. */
static int relay_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)self;
    fy_actor *to = st;
    (void)fy_actor_post(to, FY_MSG_USER, 0, m->u64[0], 0, NULL, NULL);
    return FY_MSG_DONE;
}

typedef struct parsed {
    fy_trace_file_hdr h;
    unsigned actors, threads;
    uint64_t lost, events, type_counts[16];
    int label_ok, order_ok, clock_ok;
} parsed;

static void parse(int fd, parsed *p, const char *want_label)
{
    memset(p, 0, sizeof(*p));
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size >= 64 && (size - 64) % 32 == 0);
    uint8_t *buf = malloc((size_t)size);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
    memcpy(&p->h, buf, sizeof(p->h));
    assert_memory_equal(p->h.magic, FY_TRACE_MAGIC, 8);
    assert_int_equal(p->h.version, FY_TRACE_VERSION);
    assert_int_equal(p->h.hdr_size, 64);
    assert_int_equal(p->h.rec_size, 32);
    p->order_ok = 1;

    size_t n = (size_t)(size - 64) / 32;
    const fy_trace_rec *r = (const fy_trace_rec *)(buf + 64);
    uint64_t last_ts = 0;
    for (size_t i = 0; i < n; i++) {
        switch (r[i].type) {
        case FY_TR_META_CLOCK:
            p->clock_ok = r[i].ts_ns > 0 && r[i].a > r[i].ts_ns;
            break;
        case FY_TR_META_ACTOR: {
            char label[65] = {0};
            assert_true(r[i].a <= 63);
            assert_true(i + r[i].b < n);
            memcpy(label, &r[i + 1], (size_t)r[i].b * 32 < 64 ? (size_t)r[i].b * 32 : 64);
            if (want_label && strcmp(label, want_label) == 0 && r[i].thread == 7)
                p->label_ok = 1;
            p->actors++;
            i += r[i].b;
            break;
        }
        case FY_TR_META_THREAD:
            p->threads++;
            p->lost += r[i].a;
            last_ts = 0;
            break;
        default:
            assert_true(r[i].type < FY_TR_META);
            if (r[i].ts_ns < last_ts)
                p->order_ok = 0;
            last_ts = r[i].ts_ns;
            p->events++;
            if (r[i].type < 16)
                p->type_counts[r[i].type]++;
            break;
        }
    }
    free(buf);
}

/* Dump the scheduler's trace to a memfd and parse it (asserted). */
static void dump_parse(fy_sched *s, parsed *p, const char *want_label)
{
    int fd = memfd_create("trace", 0);
    assert_true(fd >= 0);
    assert_int_equal(fy_trace_dump(s, fd), 0);
    parse(fd, p, want_label);
    close(fd);
}

static void test_wrap_and_dump(void **st)
{
    (void)st;
    fy_sched_opts o = {.threads = 1, .trace_events = 64};
    fy_sched *s = rt_sched_up(&o);

    sink k = {0};
    fy_actor *a = NULL, *r = NULL;
    fy_actor_opts oa = {.fn = sink_fn, .state = &k, .kind = 7, .label = "demo 127.0.0.1:7420"};
    assert_int_equal(fy_actor_new(s, &oa, &a), 0);
    fy_actor_opts orl = {.fn = relay_fn, .state = a, .kind = 8, .label = "relay"};
    assert_int_equal(fy_actor_new(s, &orl, &r), 0);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(fy_actor_post(r, FY_MSG_USER, 0, i, 0, NULL, NULL), 0);
    assert_true(wait_u64(&k.handled, 1000));

    parsed p;
    dump_parse(s, &p, "demo 127.0.0.1:7420");
    assert_int_equal(p.h.threads, 1);
    assert_int_equal(p.h.ring_events, FY_TRACE ? 64 : 0);
    assert_int_equal(p.threads, 1);
    assert_int_equal(p.actors, 2);
    assert_true(p.label_ok);
    assert_true(p.clock_ok);
    assert_true(p.order_ok);
#if FY_TRACE
    assert_true(p.events > 0 && p.events <= 64);
    assert_true(p.lost > 0);           /* it wrapped */
    assert_true(p.type_counts[FY_TR_SEND] > 0);
    assert_true(p.events + p.lost > 1000);

    /* Switched off: nothing new is recorded. */
    fy_trace_enable(s, false);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(fy_actor_post(r, FY_MSG_USER, 0, i, 0, NULL, NULL), 0);
    assert_true(wait_u64(&k.handled, 1100));
    parsed q;
    dump_parse(s, &q, NULL);
    assert_int_equal(q.events + q.lost, p.events + p.lost);
#else
    assert_int_equal(p.events, 0);
#endif
    fy_actor_unref(a);
    fy_actor_unref(r);
    rt_sched_down(s);
}

static int nop_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)self, (void)st, (void)m;
    return FY_MSG_DONE;
}

/* The actor table keeps only the most recent actors. */
static void test_actor_table_bounded(void **st)
{
    (void)st;
    fy_sched_opts o = {.threads = 1, .trace_events = 64};
    fy_sched *s = rt_sched_up(&o);
    for (int i = 0; i < 5000; i++) {
        fy_actor *a = NULL;
        fy_actor_opts oa = {.fn = nop_fn, .kind = 7, .label = "x"};
        assert_int_equal(fy_actor_new(s, &oa, &a), 0);
        fy_actor_stop(a);
        fy_actor_unref(a);
    }
    parsed p;
    dump_parse(s, &p, NULL);
    assert_int_equal(p.actors, 4096);
    rt_sched_down(s);
}

/* Dumps taken while the threads keep recording hold only whole events. */
typedef struct spin {
    _Atomic uint64_t handled;
    _Atomic int quit;
} spin;

static int spin_fn(fy_actor *self, void *st, fy_msg *m)
{
    spin *p = st;
    if (!atomic_load(&p->quit) && atomic_fetch_add(&p->handled, 1) < 20000000)
        (void)fy_actor_post(self, m->type, 0, 0, 0, NULL, NULL);
    return FY_MSG_DONE;
}

/* Two actors on a 2-thread scheduler with 256-event rings, each keeping
 * four messages in flight through fn until p->quit; returns once they run. */
static fy_sched *spinners_up(spin *p, fy_actor_fn fn, fy_actor *a[2])
{
    fy_sched_opts o = {.threads = 2, .trace_events = 256};
    fy_sched *s = rt_sched_up(&o);
    for (int i = 0; i < 2; i++) {
        fy_actor_opts oa = {.fn = fn, .state = p, .label = "spin"};
        assert_int_equal(fy_actor_new(s, &oa, &a[i]), 0);
        for (int j = 0; j < 4; j++)
            assert_int_equal(fy_actor_post(a[i], FY_MSG_USER, 0, 0, 0, NULL, NULL), 0);
    }
    assert_true(wait_u64(&p->handled, 1000));
    return s;
}

static void test_dump_while_running(void **st)
{
    (void)st;
    spin p = {0};
    fy_actor *a[2];
    fy_sched *s = spinners_up(&p, spin_fn, a);
    for (int k = 0; k < 5; k++) {
        parsed q;
        dump_parse(s, &q, NULL);
        assert_int_equal(q.threads, 2);
        assert_true(q.order_ok);
        assert_true(q.events <= 512);
    }
    atomic_store(&p.quit, 1);
    for (int i = 0; i < 2; i++)
        fy_actor_unref(a[i]);
    rt_sched_down(s);
}

/* Read thread th since *cursor in chunks of cap until nothing is new;
 * appends to out (room for max) and returns the count; adds to *lost. */
static size_t read_all(fy_sched *s, unsigned th, uint64_t *cursor, size_t cap, fy_trace_rec *out,
                       size_t max, uint64_t *lost)
{
    size_t got = 0;
    for (int k = 0; k < 100000; k++) {
        size_t n;
        uint64_t l, before = *cursor;
        assert_true(got + cap <= max);
        assert_int_equal(fy_trace_read_since(s, th, cursor, out + got, cap, &n, &l), 0);
        assert_true(n <= cap);
        assert_int_equal(*cursor - before, n + l);
        got += n;
        *lost += l;
        if (n + l == 0)
            break;
    }
    return got;
}

static void check_events(const fy_trace_rec *r, size_t n, unsigned th, uint64_t *last_ts)
{
    for (size_t i = 0; i < n; i++) {
        assert_true(r[i].type > 0 && r[i].type < FY_TR_META);
        assert_int_equal(r[i].thread, th);
        assert_true(r[i].ts_ns >= *last_ts);
        *last_ts = r[i].ts_ns;
        if (r[i].type == FY_TR_USER)
            assert_true(r[i].b == ~r[i].a); /* a torn slot would mix two events */
    }
}

static void test_read_since(void **st)
{
    (void)st;
    fy_sched_opts o = {.threads = 1, .trace_events = 4096};
    fy_sched *s = rt_sched_up(&o);
    sink k = {0};
    fy_actor *a = NULL, *r = NULL;
    fy_actor_opts oa = {.fn = sink_fn, .state = &k, .label = "sink"};
    assert_int_equal(fy_actor_new(s, &oa, &a), 0);
    fy_actor_opts orl = {.fn = relay_fn, .state = a, .label = "relay"};
    assert_int_equal(fy_actor_new(s, &orl, &r), 0);
    for (uint64_t i = 0; i < 50; i++)
        assert_int_equal(fy_actor_post(r, FY_MSG_USER, 0, i, 0, NULL, NULL), 0);
    assert_true(wait_u64(&k.handled, 50));

    size_t max = 8192;
    fy_trace_rec *small = calloc(max, sizeof *small), *big = calloc(max, sizeof *big);
    assert_non_null(small);
    assert_non_null(big);
    uint64_t c_small = 0, lost = 0, last_ts = 0;
    size_t n_small = read_all(s, 0, &c_small, 3, small, max, &lost);
    assert_int_equal(lost, 0);
#if FY_TRACE
    assert_true(n_small >= 50); /* the relay's SEND per message at least */
    check_events(small, n_small, 0, &last_ts);
    /* One big read from 0 returns the same events first (maybe more). */
    uint64_t c_big = 0, lost_big = 0;
    size_t n_big = read_all(s, 0, &c_big, 4096, big, max, &lost_big);
    assert_int_equal(lost_big, 0);
    assert_true(n_big >= n_small);
    assert_memory_equal(big, small, n_small * sizeof *big);

    /* More traffic: only the new events come back. */
    uint64_t sends_before = 0, sends_after = 0;
    for (size_t i = 0; i < n_big; i++)
        sends_before += big[i].type == FY_TR_SEND;
    for (uint64_t i = 0; i < 30; i++)
        assert_int_equal(fy_actor_post(r, FY_MSG_USER, 0, i, 0, NULL, NULL), 0);
    assert_true(wait_u64(&k.handled, 80));
    uint64_t c_new = c_big;
    size_t n_new = read_all(s, 0, &c_new, 7, small, max, &lost);
    assert_int_equal(lost, 0);
    last_ts = big[n_big - 1].ts_ns;
    check_events(small, n_new, 0, &last_ts);
    for (size_t i = 0; i < n_new; i++)
        sends_after += small[i].type == FY_TR_SEND;
    assert_int_equal(sends_after, 30); /* the relay's sends to the sink */
    (void)sends_before;
#else
    assert_int_equal(n_small, 0);
    assert_int_equal(c_small, 0);
#endif
    /* Bad arguments. */
    size_t n;
    uint64_t l, c = 0;
    assert_int_equal(fy_trace_read_since(s, 1, &c, big, 8, &n, &l), -EINVAL);
#if FY_TRACE
    c = UINT64_MAX / 2;
    assert_int_equal(fy_trace_read_since(s, 0, &c, big, 8, &n, &l), -EINVAL);
    assert_int_equal(c, UINT64_MAX / 2);
#endif
    free(small);
    free(big);
    fy_actor_unref(a);
    fy_actor_unref(r);
    rt_sched_down(s);
}

/* A reader that falls behind a ring's worth is told how many it missed. */
static void test_read_since_wrap(void **st)
{
    (void)st;
    fy_sched_opts o = {.threads = 1, .trace_events = 64};
    fy_sched *s = rt_sched_up(&o);
    sink k = {0};
    fy_actor *a = NULL, *r = NULL;
    fy_actor_opts oa = {.fn = sink_fn, .state = &k, .label = "sink"};
    assert_int_equal(fy_actor_new(s, &oa, &a), 0);
    fy_actor_opts orl = {.fn = relay_fn, .state = a, .label = "relay"};
    assert_int_equal(fy_actor_new(s, &orl, &r), 0);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(fy_actor_post(r, FY_MSG_USER, 0, i, 0, NULL, NULL), 0);
    assert_true(wait_u64(&k.handled, 1000));
    fy_trace_enable(s, false);

    fy_trace_rec buf[256];
    uint64_t c = 0, lost = 0, last_ts = 0;
    size_t n = read_all(s, 0, &c, 16, buf, 256, &lost);
#if FY_TRACE
    assert_true(n > 0 && n <= 64);
    assert_true(lost > 0);
    assert_true(n + lost > 1000);
    assert_int_equal(c, n + lost);
    check_events(buf, n, 0, &last_ts);
    /* Switched off: nothing new, nothing lost, the cursor stays. */
    size_t n2;
    uint64_t l2, c2 = c;
    assert_int_equal(fy_trace_read_since(s, 0, &c2, buf, 256, &n2, &l2), 0);
    assert_int_equal(n2 + l2, 0);
    assert_int_equal(c2, c);
#else
    assert_int_equal(n + lost, 0);
#endif
    fy_actor_unref(a);
    fy_actor_unref(r);
    rt_sched_down(s);
}

/* Spins like spin_fn and records a USER event whose b is ~a. */
static int spin_user_fn(fy_actor *self, void *st, fy_msg *m)
{
    spin *p = st;
    uint64_t i = atomic_fetch_add(&p->handled, 1);
    fy_trace_emit(FY_TR_USER, 0, i, ~i);
    if (!atomic_load(&p->quit) && i < 20000000)
        (void)fy_actor_post(self, m->type, 0, 0, 0, NULL, NULL);
    return FY_MSG_DONE;
}

/* Reads while both threads keep writing into small rings: every event is
 * whole, in order, and the cursor accounts for every event read or lost. */
static void test_read_since_concurrent(void **st)
{
    (void)st;
    spin p = {0};
    fy_actor *a[2];
    fy_sched *s = spinners_up(&p, spin_user_fn, a);
    fy_trace_rec buf[64];
    uint64_t cur[2] = {0}, lost[2] = {0}, got[2] = {0}, last_ts[2] = {0};
    uint64_t end = fy_now_ns() + 300000000ull;
    for (int k = 0; k < 20000 && fy_now_ns() < end; k++) {
        unsigned th = (unsigned)k & 1;
        size_t n;
        uint64_t l, before = cur[th];
        assert_int_equal(fy_trace_read_since(s, th, &cur[th], buf, 64, &n, &l), 0);
        assert_int_equal(cur[th] - before, n + l);
        check_events(buf, n, th, &last_ts[th]);
        got[th] += n;
        lost[th] += l;
    }
    atomic_store(&p.quit, 1);
#if FY_TRACE
    assert_true(got[0] + got[1] > 0);
#endif
    for (int i = 0; i < 2; i++)
        assert_int_equal(cur[i], got[i] + lost[i]);
    for (int i = 0; i < 2; i++)
        fy_actor_unref(a[i]);
    rt_sched_down(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_and_dump),
        cmocka_unit_test(test_actor_table_bounded),
        cmocka_unit_test(test_dump_while_running),
        cmocka_unit_test(test_read_since),
        cmocka_unit_test(test_read_since_wrap),
        cmocka_unit_test(test_read_since_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
