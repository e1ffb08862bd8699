/*
 * test_cli_qtable.c - query records as tables (src/cli/qtable.c) and the
 * record helpers (src/cli/query.c): one table per record type with a
 * header of the keys, columns aligned, digests shortened; key lookup and
 * the JSON form (numbers as numbers, strings escaped).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/qtable.h"
#include "cli/query.h"

static void test_table(void **state)
{
    (void)state;
    fy_cli_qtable *t = fy_cli_qtable_new();
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    assert_non_null(t);
    assert_int_equal(fy_cli_qtable_add(t, "type=channel channel=docs files=2"), 0);
    assert_int_equal(fy_cli_qtable_add(t, "type=file channel=docs name=a.bin sha256="
                                          "0123456789abcdef0123456789abcdef size=5"), 0);
    assert_int_equal(fy_cli_qtable_add(t, "type=file channel=docs name=longer-name.txt sha256="
                                          "fedcba9876543210fedcba9876543210 size=123456"), 0);
    fy_cli_qtable_print(t, f);
    fy_cli_qtable_free(t);
    fclose(f);
    assert_string_equal(out,
                        "CHANNEL  FILES\n"
                        "docs     2\n"
                        "\n"
                        "CHANNEL  NAME             SHA256           SIZE\n"
                        "docs     a.bin            0123456789ab...  5\n"
                        "docs     longer-name.txt  fedcba987654...  123456\n");
    free(out);
}

static void test_kv(void **state)
{
    (void)state;
    char v[64], *out = NULL;
    size_t len = 0;
    const char *rec = "type=file name=x\"y size=42 seq=007 sha256=ab";

    assert_true(fy_cli_kv_get(rec, "size", v, sizeof v));
    assert_string_equal(v, "42");
    assert_true(fy_cli_kv_get(rec, "type", v, sizeof v));
    assert_string_equal(v, "file");
    assert_false(fy_cli_kv_get(rec, "siz", v, sizeof v));
    FILE *f = open_memstream(&out, &len);
    fy_cli_kv_json(f, rec);
    fclose(f);
    assert_string_equal(out, "{\"type\":\"file\",\"name\":\"x\\\"y\",\"size\":42,\"seq\":\"007\","
                             "\"sha256\":\"ab\"}\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_kv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
