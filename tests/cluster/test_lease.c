/*
 * test_lease.c - the lease keeper (src/cluster/lease.c) against a real
 * etcd-server: a lease renewed past its TTL, revoked on a clean stop, left
 * to expire on a crash, and not held once etcd stops answering (SIGSTOP):
 * the deadline runs out on its own.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/etcd.h"
#include "cluster/lease.h"
#include "common/tc.h"
#include "ferry/sched.h"

typedef struct fixture {
    char dir[512];
    tc_etcd etcd;
    fy_etcd *e;
} fixture;

static int setup(void **state)
{
    static fixture f;

    *state = NULL;
    if (!tc_etcd_available()) {
        fprintf(stderr, "skip: etcd-server is not installed (/usr/bin/etcd)\n");
        return 0;
    }
    if (tc_tmpdir(f.dir, sizeof f.dir, "lease") < 0 || tc_etcd_start(&f.etcd, f.dir, 20000) < 0 ||
        fy_etcd_open(f.etcd.url, 2000, &f.e) < 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    if (f) {
        kill(f->etcd.pid, SIGCONT);
        fy_etcd_close(f->e);
        tc_etcd_stop(&f->etcd);
        tc_tmpdir_done(f->dir);
    }
    return 0;
}

#define FIXTURE()        \
    fixture *f = *state; \
    if (!f) {            \
        skip();          \
        return;          \
    }

static bool etcd_has(fixture *f, int64_t id)
{
    int ttl;

    return fy_etcd_lease_keepalive(f->e, id, &ttl) == 0;
}

static void test_renewed_then_revoked(void **state)
{
    FIXTURE();
    fy_lease *l;
    int64_t id;

    assert_int_equal(fy_lease_start(f->etcd.url, 1, &l), -EINVAL);
    assert_int_equal(fy_lease_start(f->etcd.url, 2, &l), 0);
    id = fy_lease_id(l);
    assert_true(fy_lease_held(l, fy_now_ns()));
    tc_sleep_ms(3500); /* past the TTL: only renewals keep it */
    assert_true(fy_lease_held(l, fy_now_ns()));
    assert_true(fy_lease_renewals(l) >= 3);
    assert_false(fy_lease_held(l, fy_lease_deadline_ns(l)));
    fy_lease_stop(l, true);
    assert_false(etcd_has(f, id));
}

static void test_crash_expires(void **state)
{
    FIXTURE();
    fy_lease *l;
    int64_t id;

    assert_int_equal(fy_lease_start(f->etcd.url, 2, &l), 0);
    id = fy_lease_id(l);
    fy_lease_stop(l, false); /* a crash: nobody revokes */
    assert_true(etcd_has(f, id)); /* (this renews it once more) */
    tc_sleep_ms(4500); /* TTL 2 s, rounded up by etcd at most to its minimum */
    assert_false(etcd_has(f, id));
}

static void test_unanswered_deadline(void **state)
{
    FIXTURE();
    fy_lease *l;
    uint64_t t0;
    bool held = true;

    assert_int_equal(fy_lease_start(f->etcd.url, 2, &l), 0);
    t0 = fy_now_ns();
    kill(f->etcd.pid, SIGSTOP);
    for (int i = 0; i < 60 && held; i++) {
        tc_sleep_ms(100);
        held = fy_lease_held(l, fy_now_ns());
    }
    kill(f->etcd.pid, SIGCONT);
    assert_false(held);
    /* Not held for longer than one TTL after the last renewal was sent. */
    assert_true(fy_now_ns() - t0 <= 2600000000ull);
    assert_false(fy_lease_lost(l) && fy_lease_held(l, fy_now_ns()));
    fy_lease_stop(l, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_renewed_then_revoked),
                                       cmocka_unit_test(test_crash_expires),
                                       cmocka_unit_test(test_unanswered_deadline)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
