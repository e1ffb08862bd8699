/*
 * test_units.c - the shared byte-count parser and the error-code table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/units.h"

static void test_bytes_ok(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(fy_units_bytes("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(fy_units_bytes("64K", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(fy_units_bytes("1MiB", &v), 0);
    assert_int_equal(v, 1u << 20);
    assert_int_equal(fy_units_bytes("2GB", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(fy_units_bytes("1t", &v), 0);
    assert_int_equal(v, 1ull << 40);
    assert_int_equal(fy_units_bytes("0", &v), 0);
    assert_int_equal(v, 0);
}

static void test_bytes_bad(void **state)
{
    (void)state;
    uint64_t v = 7;
    const char *bad[] = {"", "-1", " 1", "1X", "1KK", "K", "1.5M", "1Mi", "1 M", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(fy_units_bytes(bad[i], &v), -EINVAL);
    assert_int_equal(fy_units_bytes("99999999999999999999", &v), -ERANGE);
    assert_int_equal(fy_units_bytes("17179869184G", &v), -ERANGE);
    assert_int_equal(fy_units_bytes(NULL, &v), -EINVAL);
    assert_int_equal(v, 7);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(fy_strerror(-FY_ECRC), "payload CRC32C mismatch");
    assert_string_equal(fy_errname(-FY_EBUSY), "FY_EBUSY");
    assert_string_equal(fy_errname(-EAGAIN), "EAGAIN");
    assert_string_equal(fy_strerror(0), "success");
    assert_non_null(fy_strerror(-99999));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_ok),
        cmocka_unit_test(test_bytes_bad),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
