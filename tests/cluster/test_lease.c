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
#include "cluster/etcd_fixture.h"
#include "common/tc.h"
#include "ferry/sched.h"

static int setup(void **state)
{
    return ef_setup(state, "lease");
}

static int teardown(void **state)
{
    return ef_teardown(state);
}

static bool etcd_has(ef_etcd *f, int64_t id)
{
    int ttl;

    return fy_etcd_lease_keepalive(f->e, id, &ttl) == 0;
}

static void test_renewed_then_revoked(void **state)
{
    EF_FIXTURE();
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
    EF_FIXTURE();
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
    EF_FIXTURE();
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
