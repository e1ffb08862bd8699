/*
 * test_chanstate.c - the channel state's JSON form (src/cluster/chanstate.c):
 * round trips, and values another writer could have left in etcd refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/chanstate.h"

static void test_round_trip(void **state)
{
    (void)state;
    fy_chanstate st = {.epoch = 7, .r = 2}, back;
    char buf[512];
    int n;

    strcpy(st.leader, "relay-2.eu");
    assert_int_equal(fy_chanstate_isr_add(&st, "relay-2.eu"), 0);
    assert_int_equal(fy_chanstate_isr_add(&st, "relay_3"), 0);
    assert_int_equal(fy_chanstate_isr_add(&st, "relay_3"), -EEXIST);
    n = fy_chanstate_encode(&st, buf, sizeof buf);
    assert_true(n > 0);
    assert_string_equal(buf, "{\"leader\":\"relay-2.eu\",\"epoch\":7,"
                             "\"isr\":[\"relay-2.eu\",\"relay_3\"],\"r\":2}");
    assert_int_equal(fy_chanstate_decode(buf, (size_t)n, &back), 0);
    assert_string_equal(back.leader, "relay-2.eu");
    assert_int_equal(back.epoch, 7);
    assert_int_equal(back.r, 2);
    assert_int_equal(back.nisr, 2);
    assert_true(fy_chanstate_in_isr(&back, "relay_3"));
    assert_int_equal(fy_chanstate_isr_remove(&back, "relay-2.eu"), 0);
    assert_int_equal(fy_chanstate_isr_remove(&back, "relay-2.eu"), -ENOENT);
    assert_string_equal(back.isr[0], "relay_3");
    assert_string_equal(back.isr[1], ""); /* cleared: a removal is a change (member.c) */
    /* Removing the last member changes the set as memcmp sees it. */
    fy_chanstate two = st;
    assert_int_equal(fy_chanstate_isr_remove(&two, "relay_3"), 0);
    assert_true(memcmp(two.isr, st.isr, sizeof two.isr) != 0);
    assert_int_equal(fy_chanstate_encode(&st, buf, 20), -ENOSPC);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "[]",
        "{\"leader\":\"a\",\"epoch\":0,\"isr\":[\"a\"],\"r\":1}",        /* epoch 0 */
        "{\"leader\":\"a\",\"epoch\":1,\"isr\":[\"a\"],\"r\":0}",        /* r 0 */
        "{\"leader\":\"a\",\"epoch\":1,\"isr\":[\"a\"],\"r\":99}",       /* r too big */
        "{\"leader\":\"a\",\"epoch\":-3,\"isr\":[\"a\"],\"r\":1}",
        "{\"leader\":\"a\",\"epoch\":\"1\",\"isr\":[\"a\"],\"r\":1}",    /* a string */
        "{\"leader\":\"a/b\",\"epoch\":1,\"isr\":[\"a/b\"],\"r\":1}",    /* bad name */
        "{\"leader\":\"\",\"epoch\":1,\"isr\":[],\"r\":1}",
        "{\"leader\":\"a\",\"epoch\":1,\"isr\":[\"b\"],\"r\":1}",        /* leader not in isr */
        "{\"leader\":\"a\",\"epoch\":1,\"isr\":[\"a\",\"a\"],\"r\":1}",  /* repeated */
        "{\"leader\":\"a\",\"epoch\":1,\"isr\":\"a\",\"r\":1}",
        "{\"leader\":\"a\",\"epoch\":1,\"isr\":[\"a\"],\"r\":1} x",      /* trailing bytes */
        "{\"leader\":\"a\",\"epoch\":1,\"isr\":[\"a\"]}",                /* no r */
    };
    fy_chanstate st;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fy_chanstate_decode(bad[i], strlen(bad[i]), &st) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(st.epoch, 0);
    }
    assert_false(fy_node_name_ok("0123456789012345678901234567890123456789012345678901234567890123"));
    assert_true(fy_node_name_ok("012345678901234567890123456789012345678901234567890123456789012"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip),
                                       cmocka_unit_test(test_refused)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
