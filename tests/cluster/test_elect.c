/*
 * test_elect.c - membership and leadership on a real etcd-server
 * (src/cluster/elect.c): one leader per channel however nodes race, a
 * live leader never replaced, a dead one replaced only by an in-sync
 * node with epoch + 1, and a deposed leader fenced from changing the
 * in-sync set.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/elect.h"
#include "cluster/etcd_fixture.h"
#include "common/tc.h"

#define P "/t"

static int setup(void **state)
{
    return ef_setup(state, "elect");
}

static int teardown(void **state)
{
    return ef_teardown(state);
}

/* A node: a lease and its registration. */
static int64_t node_up(ef_etcd *f, const char *name)
{
    int64_t lease;

    assert_int_equal(fy_etcd_lease_grant(f->e, 30, &lease), 0);
    assert_int_equal(fy_elect_register(f->e, P, name, "127.0.0.1:1", lease), 0);
    return lease;
}

static void test_register_once(void **state)
{
    EF_FIXTURE();
    int64_t a = node_up(f, "reg"), b;

    /* The same lease again is a refresh; another lease is a second process. */
    assert_int_equal(fy_elect_register(f->e, P, "reg", "127.0.0.1:2", a), 0);
    assert_int_equal(fy_etcd_lease_grant(f->e, 30, &b), 0);
    assert_int_equal(fy_elect_register(f->e, P, "reg", "127.0.0.1:3", b), -EADDRINUSE);
    assert_int_equal(fy_elect_alive(f->e, P, "reg"), 1);
    assert_int_equal(fy_etcd_lease_revoke(f->e, a), 0);
    assert_int_equal(fy_elect_alive(f->e, P, "reg"), 0);
    assert_int_equal(fy_elect_register(f->e, P, "reg", "127.0.0.1:3", b), 0);
    assert_int_equal(fy_elect_register(f->e, P, "bad/name", "127.0.0.1:3", b), -EINVAL);
    fy_etcd_lease_revoke(f->e, b);
}

static void test_failover(void **state)
{
    EF_FIXTURE();
    int64_t la = node_up(f, "a"), lb = node_up(f, "b"), lc = node_up(f, "c");
    fy_chanstate sa, sb, sc;

    /* The first to ask leads, epoch 1; the others see a live leader. */
    assert_int_equal(fy_elect_try(f->e, P, "docs", "a", 2, &sa), 0);
    assert_string_equal(sa.leader, "a");
    assert_int_equal(sa.epoch, 1);
    assert_int_equal(fy_elect_try(f->e, P, "docs", "b", 2, &sb), -EBUSY);
    assert_int_equal(fy_elect_try(f->e, P, "docs", "a", 2, &sa), 0); /* already */

    /* The leader takes b into the in-sync set. */
    assert_int_equal(fy_chanstate_isr_add(&sa, "b"), 0);
    assert_int_equal(fy_elect_set_isr(f->e, P, "docs", "a", &sa), 0);

    /* The leader moves the channel on an epoch (its log reopened); a
     * stale state or another node cannot. */
    fy_chanstate old = sa;
    assert_int_equal(fy_elect_bump(f->e, P, "docs", "b", &sa), -EPERM);
    assert_int_equal(fy_elect_bump(f->e, P, "docs", "a", &sa), 0);
    assert_int_equal(sa.epoch, 2);
    assert_int_equal(sa.nisr, 2);
    assert_int_equal(fy_elect_bump(f->e, P, "docs", "a", &old), -ESTALE);
    assert_int_equal(fy_elect_read(f->e, P, "docs", &sa), 0);
    assert_int_equal(sa.epoch, 2);
    assert_string_equal(sa.leader, "a");

    /* a dies: c is not in sync and may not take over; b may, epoch 3. */
    assert_int_equal(fy_etcd_lease_revoke(f->e, la), 0);
    assert_int_equal(fy_elect_try(f->e, P, "docs", "c", 2, &sc), -EPERM);
    assert_int_equal(fy_elect_try(f->e, P, "docs", "b", 2, &sb), 0);
    assert_string_equal(sb.leader, "b");
    assert_int_equal(sb.epoch, 3);
    assert_int_equal(sb.nisr, 1);
    assert_string_equal(sb.isr[0], "b");

    /* a comes back with its old state: fenced, it cannot write. */
    la = node_up(f, "a");
    assert_int_equal(fy_elect_bump(f->e, P, "docs", "a", &sa), -ESTALE);
    assert_int_equal(fy_chanstate_isr_add(&sa, "c"), 0);
    assert_int_equal(fy_elect_set_isr(f->e, P, "docs", "a", &sa), -ESTALE);
    assert_int_equal(fy_elect_try(f->e, P, "docs", "a", 2, &sa), -EBUSY);
    assert_string_equal(sa.leader, "b");
    assert_int_equal(sa.epoch, 3);
    assert_int_equal(fy_elect_set_isr(f->e, P, "docs", "a", &sa), -EPERM);
    fy_etcd_lease_revoke(f->e, la);
    fy_etcd_lease_revoke(f->e, lb);
    fy_etcd_lease_revoke(f->e, lc);
}

static void test_race(void **state)
{
    EF_FIXTURE();
    int64_t la = node_up(f, "r1"), lb = node_up(f, "r2");
    fy_chanstate s1, s2, stale;

    assert_int_equal(fy_elect_try(f->e, P, "race", "r1", 2, &s1), 0);
    assert_int_equal(fy_chanstate_isr_add(&s1, "r2"), 0);
    assert_int_equal(fy_elect_set_isr(f->e, P, "race", "r1", &s1), 0);
    stale = s1;
    /* The leader changes the state after r2 read it: r2's takeover, which
     * compares with what it read, fails even though the leader is dead. */
    assert_int_equal(fy_chanstate_isr_remove(&s1, "r2"), 0);
    assert_int_equal(fy_chanstate_isr_add(&s1, "r2"), 0);
    assert_int_equal(fy_elect_set_isr(f->e, P, "race", "r1", &s1), 0);
    assert_int_equal(fy_etcd_lease_revoke(f->e, la), 0);
    assert_int_equal(fy_elect_set_isr(f->e, P, "race", "r1", &stale), -ESTALE);
    assert_int_equal(fy_elect_try(f->e, P, "race", "r2", 2, &s2), 0);
    assert_int_equal(s2.epoch, 2);
    fy_etcd_lease_revoke(f->e, lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_register_once),
                                       cmocka_unit_test(test_failover),
                                       cmocka_unit_test(test_race)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
