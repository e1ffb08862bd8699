/*
 * test_swarm_lhist.c - the swarm's latency histogram: percentiles of
 * known data come out within the histogram's stated precision (0.8 %),
 * never below the true value, and merging equals recording in one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "swarm/lhist.h"

/* v within [want, want * 1.008]: a bucket's highest value, never lower. */
static void near(uint64_t v, uint64_t want)
{
    assert_true(v >= want);
    assert_true((double)v <= (double)want * 1.008 + 1);
}

static void test_uniform(void **state)
{
    (void)state;
    fy_lhist *h;
    assert_int_equal(fy_lhist_new(&h), 0);
    for (uint64_t v = 1; v <= 100000; v++)
        fy_lhist_record(h, v * 1000); /* 1 us .. 100 ms in ns */
    assert_int_equal(fy_lhist_count(h), 100000);
    assert_int_equal(fy_lhist_min(h), 1000);
    assert_int_equal(fy_lhist_max(h), 100000000);
    near(fy_lhist_percentile(h, 50), 50000000);
    near(fy_lhist_percentile(h, 90), 90000000);
    near(fy_lhist_percentile(h, 99), 99000000);
    near(fy_lhist_percentile(h, 99.9), 99900000);
    assert_int_equal(fy_lhist_percentile(h, 100), 100000000);
    assert_true(fy_lhist_mean(h) > 50000000.0 && fy_lhist_mean(h) < 50001000.0);
    fy_lhist_free(h);
}

static void test_small_values_exact(void **state)
{
    (void)state;
    fy_lhist *h;
    assert_int_equal(fy_lhist_new(&h), 0);
    assert_int_equal(fy_lhist_percentile(h, 50), 0); /* empty */
    for (uint64_t v = 0; v < 200; v++)
        fy_lhist_record(h, v);
    assert_int_equal(fy_lhist_percentile(h, 50), 99);
    assert_int_equal(fy_lhist_percentile(h, 1), 1);
    assert_int_equal(fy_lhist_percentile(h, 100), 199);
    fy_lhist_free(h);
}

static void test_outlier_tail(void **state)
{
    (void)state;
    fy_lhist *h;
    assert_int_equal(fy_lhist_new(&h), 0);
    for (int i = 0; i < 999; i++)
        fy_lhist_record(h, 10000);
    fy_lhist_record(h, 5000000000ull); /* one 5 s stall */
    near(fy_lhist_percentile(h, 99), 10000);
    near(fy_lhist_percentile(h, 99.9), 10000);
    assert_int_equal(fy_lhist_percentile(h, 99.95), 5000000000ull);
    assert_int_equal(fy_lhist_max(h), 5000000000ull);
    fy_lhist_record(h, UINT64_MAX); /* saturates, does not crash */
    assert_int_equal(fy_lhist_max(h), UINT64_MAX);
    fy_lhist_free(h);
}

static void test_merge(void **state)
{
    (void)state;
    fy_lhist *a, *b, *all;
    assert_int_equal(fy_lhist_new(&a), 0);
    assert_int_equal(fy_lhist_new(&b), 0);
    assert_int_equal(fy_lhist_new(&all), 0);
    for (uint64_t v = 1; v <= 5000; v++) {
        fy_lhist_record(v % 2 ? a : b, v * 7919);
        fy_lhist_record(all, v * 7919);
    }
    fy_lhist_merge(a, b);
    assert_int_equal(fy_lhist_count(a), fy_lhist_count(all));
    assert_int_equal(fy_lhist_min(a), fy_lhist_min(all));
    assert_int_equal(fy_lhist_max(a), fy_lhist_max(all));
    for (double p = 1; p <= 100; p += 0.7)
        assert_int_equal(fy_lhist_percentile(a, p), fy_lhist_percentile(all, p));
    fy_lhist_free(a);
    fy_lhist_free(b);
    fy_lhist_free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_outlier_tail),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
