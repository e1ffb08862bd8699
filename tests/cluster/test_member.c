/*
 * test_member.c - three cluster members in one process against a real
 * etcd-server (src/cluster/member.c): the first to serve a channel leads,
 * the leader grows the in-sync set, acks need R in sync and the lease, and
 * when the leader crashes (its lease left to expire) the most advanced
 * in-sync member takes over with epoch + 1.  A restarted member waits for
 * its old lease instead of answering for the name twice.
 */
#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/member.h"
#include "cluster/etcd_fixture.h"
#include "common/tc.h"
#include "ferry/sched.h"

#define TTL 2

typedef struct node {
    uint64_t epoch, seq; /* its progress, as the relay would report it */
    atomic_int changes;
} node;

static int setup(void **state)
{
    return ef_setup(state, "member");
}

static int teardown(void **state)
{
    return ef_teardown(state);
}

static void changed(void *arg, const fy_member_view *v)
{
    node *n = arg;
    (void)v;
    atomic_fetch_add(&n->changes, 1);
}

static void progress(void *arg, const char *chan, uint64_t *epoch, uint64_t *seq)
{
    node *n = arg;
    (void)chan;
    *epoch = n->epoch;
    *seq = n->seq;
}

static fy_member *up(ef_etcd *f, const char *name, node *n, unsigned r)
{
    fy_member_conf c = {.endpoints = f->etcd.url, .prefix = "/m", .node = name,
                        .advertise = "127.0.0.1:7420", .ttl_s = TTL, .r = r, .poll_ms = 100,
                        .changed = changed, .progress = progress, .arg = n};
    fy_member *m;

    assert_int_equal(fy_member_start(&c, &m), 0);
    return m;
}

/* Wait (at most 10 s) until m's view of chan has leader `leader` and at
 * least nisr in-sync members; the state then. */
static fy_chanstate wait_for(fy_member *m, const char *chan, const char *leader, unsigned nisr)
{
    fy_chanstate st = {0};

    for (int i = 0; i < 200; i++) {
        if (fy_member_state(m, chan, &st) == 0 && strcmp(st.leader, leader) == 0 &&
            st.nisr >= nisr)
            return st;
        tc_sleep_ms(50);
    }
    fail_msg("no leader %s with %u in sync on %s (have %s, %u)", leader, nisr, chan, st.leader,
             st.nisr);
    return st;
}

static void test_failover_to_most_advanced(void **state)
{
    EF_FIXTURE();
    node n1 = {.epoch = 1, .seq = 300}, n2 = {.epoch = 1, .seq = 100}, n3 = {.epoch = 1, .seq = 200};
    fy_member *m1 = up(f, "n1", &n1, 2), *m2, *m3;
    fy_chanstate st;
    uint64_t t0, ms;

    assert_int_equal(fy_member_serve(m1, "docs"), 0);
    st = wait_for(m1, "docs", "n1", 1);
    assert_int_equal(st.epoch, 1);
    /* One in sync of R = 2: no acks yet. */
    assert_false(fy_member_may_ack(m1, "docs", 1, fy_now_ns()));
    m2 = up(f, "n2", &n2, 2);
    m3 = up(f, "n3", &n3, 2);
    assert_int_equal(fy_member_serve(m2, "docs"), 0);
    assert_int_equal(fy_member_serve(m3, "docs"), 0);
    assert_int_equal(fy_member_set_insync(m2, "docs", "n3", true), -EPERM); /* not the leader */
    assert_int_equal(fy_member_set_insync(m1, "docs", "n2", true), 0);
    assert_int_equal(fy_member_set_insync(m1, "docs", "n3", true), 0);
    wait_for(m1, "docs", "n1", 3);
    wait_for(m3, "docs", "n1", 3);
    assert_true(fy_member_may_ack(m1, "docs", 1, fy_now_ns()));
    assert_false(fy_member_may_ack(m1, "docs", 2, fy_now_ns())); /* not its epoch */
    assert_false(fy_member_may_ack(m2, "docs", 1, fy_now_ns()));

    /* n1 crashes: nobody revokes its lease; n3 stored more than n2. */
    t0 = fy_now_ns();
    fy_member_stop(m1, true);
    st = wait_for(m3, "docs", "n3", 2);
    ms = (fy_now_ns() - t0) / 1000000;
    fprintf(stderr, "failover_ms=%llu ttl_s=%d\n", (unsigned long long)ms, TTL);
    assert_int_equal(st.epoch, 2);
    assert_true(fy_member_may_ack(m3, "docs", 2, fy_now_ns()));
    wait_for(m2, "docs", "n3", 2);
    assert_false(fy_member_may_ack(m2, "docs", 2, fy_now_ns()));
    assert_int_equal(fy_member_failovers(m3), 1);
    assert_int_equal(fy_member_failovers(m2), 0);
    assert_true(atomic_load(&n2.changes) >= 2);

    /* n1 comes back: it waits out its old lease, then follows epoch 2. */
    m1 = up(f, "n1", &n1, 2);
    assert_int_equal(fy_member_serve(m1, "docs"), 0);
    st = wait_for(m1, "docs", "n3", 2);
    assert_false(fy_member_may_ack(m1, "docs", 1, fy_now_ns()));
    assert_false(fy_chanstate_in_isr(&st, "n1"));
    fy_member_stop(m1, false);
    fy_member_stop(m2, false);
    fy_member_stop(m3, false);
}

static void test_clean_stop_hands_over(void **state)
{
    EF_FIXTURE();
    node a = {.epoch = 0}, b = {.epoch = 0};
    fy_member *ma = up(f, "a", &a, 1), *mb = up(f, "b", &b, 1);

    assert_int_equal(fy_member_serve(ma, "logs"), 0);
    wait_for(ma, "logs", "a", 1);
    assert_true(fy_member_may_ack(ma, "logs", 1, fy_now_ns())); /* R = 1 */
    assert_int_equal(fy_member_serve(mb, "logs"), 0);
    assert_int_equal(fy_member_set_insync(ma, "logs", "b", true), 0);
    wait_for(mb, "logs", "a", 2);
    /* What a relay redirects with: the leader, its advertised address. */
    fy_member_lead l;
    char chan[64];
    assert_int_equal(fy_member_lead_of(mb, "logs", &l), 0);
    assert_true(l.known && !l.leading && l.epoch == 1);
    assert_string_equal(l.leader, "a");
    assert_string_equal(l.addr, "127.0.0.1:7420");
    assert_int_equal(fy_member_lead_of(ma, "logs", &l), 0);
    assert_true(l.known && l.leading);
    assert_int_equal(fy_member_lead_of(ma, "nope", &l), -ENOENT);
    /* Every channel listed in etcd is served, asked for or not: "logs",
     * and "docs" of the test before (found by the poll). */
    bool logs = false, docs = false;
    unsigned i = 0;
    for (; fy_member_lead_at(ma, i, chan, sizeof chan, &l) == 0; i++) {
        logs |= strcmp(chan, "logs") == 0;
        docs |= strcmp(chan, "docs") == 0;
    }
    assert_true(logs && docs && i == 2);
    assert_int_equal(fy_member_lead_of(mb, "docs", &l), 0);
    assert_true(fy_member_lease_held(ma, fy_now_ns()));
    assert_string_equal(fy_member_node(ma), "a");
    fy_member_stop(ma, false); /* revoked: b needs no TTL to take over */
    wait_for(mb, "logs", "b", 1);
    fy_member_stop(mb, false);
}

/* A leader cut off from etcd (etcd stopped here) past its lease deadline
 * no longer says it leads, nor names anyone: its relay fences the channel
 * and sends clients on to another relay.  Before, lead_of kept saying
 * "leading" from the last poll, so a cut-off leader kept its senders
 * (test_ns_cutoff).  With etcd back it leads again. */
static void test_lease_out_leads_nothing(void **state)
{
    EF_FIXTURE();
    node n = {0};
    fy_member *m = up(f, "solo", &n, 1);
    fy_member_lead l;
    bool out = false;

    assert_int_equal(fy_member_serve(m, "cut"), 0);
    wait_for(m, "cut", "solo", 1);
    assert_int_equal(fy_member_lead_of(m, "cut", &l), 0);
    assert_true(l.leading && strcmp(l.leader, "solo") == 0);
    assert_int_equal(kill(f->etcd.pid, SIGSTOP), 0);
    for (int i = 0; i < 100 && !out; i++) { /* TTL 2 s: at most 5 s */
        tc_sleep_ms(50);
        assert_int_equal(fy_member_lead_of(m, "cut", &l), 0);
        out = !l.leading;
    }
    assert_int_equal(kill(f->etcd.pid, SIGCONT), 0);
    assert_true(out);
    assert_true(l.known && l.leader[0] == 0 && l.addr[0] == 0);
    assert_false(fy_member_may_ack(m, "cut", l.epoch, fy_now_ns()));
    for (int i = 0; i < 200 && !l.leading; i++) { /* rejoined: leads again */
        tc_sleep_ms(50);
        assert_int_equal(fy_member_lead_of(m, "cut", &l), 0);
    }
    assert_true(l.leading);
    fy_member_stop(m, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_failover_to_most_advanced),
                                       cmocka_unit_test(test_clean_stop_hands_over),
                                       cmocka_unit_test(test_lease_out_leads_nothing)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
