/*
 * test_mirror.c - an edge relay's mirror state file (src/store/mirror.c):
 * save and load round-trip, an absent file, an old file with a delta only,
 * a file that is not a state file, replacing a file whole, and a failure
 * reported as -errno.  Real files in a temp dir under /tmp, removed after
 * each test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/mirror.h"

typedef struct fix {
    char dir[64];
} fix;

static int setup(void **state)
{
    fix *f = calloc(1, sizeof *f);

    snprintf(f->dir, sizeof f->dir, "/tmp/ferry-mirror-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    char p[128];

    fy_mirror_path(f->dir, p, sizeof p);
    unlink(p);
    strcat(p, ".tmp");
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_text(const fix *f, const char *text)
{
    char p[128];

    fy_mirror_path(f->dir, p, sizeof p);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void read_text(const fix *f, char *buf, size_t cap)
{
    char p[128];

    fy_mirror_path(f->dir, p, sizeof p);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

static void test_absent(void **state)
{
    fix *f = *state;
    fy_mirror_state st = {.delta = 9, .file_begin = 9};

    assert_int_equal(fy_mirror_load(f->dir, &st), 0);
    assert_true(st.delta == 0 && st.file_begin == 0);
}

static void test_round_trip(void **state)
{
    fix *f = *state;
    fy_mirror_state in = {.delta = -12345678901ll, .file_begin = 77}, out;
    char text[256], p[128];

    assert_int_equal(fy_mirror_save(f->dir, &in, "10.0.0.1:7000", true), 0);
    assert_int_equal(fy_mirror_load(f->dir, &out), 1);
    assert_true(out.delta == in.delta);
    assert_true(out.file_begin == 77);
    /* the format an operator reads, unchanged from before the module */
    read_text(f, text, sizeof text);
    assert_string_equal(text, "delta=-12345678901 file_begin=77 upstream=10.0.0.1:7000\n");
    /* no temporary file is left behind */
    fy_mirror_path(f->dir, p, sizeof p);
    strcat(p, ".tmp");
    assert_int_equal(access(p, F_OK), -1);
}

/* The upstream's epoch, once known, follows the upstream; loads give the
 * upstream back (an edge restarted without --upstream names it). */
static void test_epoch_upstream(void **state)
{
    fix *f = *state;
    fy_mirror_state in = {.delta = 2, .file_begin = 9, .epoch = 0xabcdef0123ull}, out;
    char text[256];

    assert_int_equal(fy_mirror_save(f->dir, &in, "127.0.0.1:7000", false), 0);
    read_text(f, text, sizeof text);
    assert_string_equal(text, "delta=2 file_begin=9 upstream=127.0.0.1:7000 epoch=737894400291\n");
    assert_int_equal(fy_mirror_load(f->dir, &out), 1);
    assert_true(out.delta == 2 && out.file_begin == 9 && out.epoch == 0xabcdef0123ull);
    assert_string_equal(out.upstream, "127.0.0.1:7000");
    in.epoch = 0;
    assert_int_equal(fy_mirror_save(f->dir, &in, "h:1", false), 0);
    assert_int_equal(fy_mirror_load(f->dir, &out), 1);
    assert_true(out.epoch == 0);
    assert_string_equal(out.upstream, "h:1");
}

/* Skip records: added durably, loaded from a seq on, the newest 64 kept. */
static void test_skips(void **state)
{
    fix *f = *state;
    fy_mirror_skip out[4], s = {.at_seq = 10, .up_from = 100, .up_to = 150, .code = 1070};
    char p[128];

    assert_int_equal(fy_mirror_skip_load(f->dir, 1, out, 4), 0); /* no file */
    assert_int_equal(fy_mirror_skip_add(f->dir, &s), 0);
    s.at_seq = 20, s.up_from = 200, s.up_to = 260;
    assert_int_equal(fy_mirror_skip_add(f->dir, &s), 0);
    assert_int_equal(fy_mirror_skip_load(f->dir, 1, out, 4), 2);
    assert_true(out[0].at_seq == 10 && out[0].up_from == 100 && out[0].up_to == 150 &&
                out[0].code == 1070 && out[1].at_seq == 20);
    assert_int_equal(fy_mirror_skip_load(f->dir, 11, out, 4), 1);
    assert_true(out[0].at_seq == 20 && out[0].up_to == 260);
    assert_int_equal(fy_mirror_skip_load(f->dir, 21, out, 4), 0);
    for (uint64_t i = 0; i < 70; i++) {
        s.at_seq = 100 + i;
        assert_int_equal(fy_mirror_skip_add(f->dir, &s), 0);
    }
    assert_int_equal(fy_mirror_skip_load(f->dir, 1, out, 4), 4); /* the newest 4 */
    assert_true(out[0].at_seq == 166 && out[3].at_seq == 169);
    fy_mirror_skip all[FY_MIRROR_SKIPS_MAX];
    assert_int_equal(fy_mirror_skip_load(f->dir, 1, all, FY_MIRROR_SKIPS_MAX), FY_MIRROR_SKIPS_MAX);
    assert_true(all[0].at_seq == 106);
    snprintf(p, sizeof p, "%s/skipped", f->dir);
    unlink(p);
}

static void test_replace(void **state)
{
    fix *f = *state;
    fy_mirror_state a = {.delta = 5, .file_begin = 100}, b = {.delta = 5, .file_begin = 0}, out;

    assert_int_equal(fy_mirror_save(f->dir, &a, "h:1", false), 0);
    assert_int_equal(fy_mirror_save(f->dir, &b, "h:1", false), 0);
    assert_int_equal(fy_mirror_load(f->dir, &out), 1);
    assert_true(out.delta == 5 && out.file_begin == 0);
}

static void test_delta_only(void **state)
{
    fix *f = *state;
    fy_mirror_state out;

    write_text(f, "delta=3\n");
    assert_int_equal(fy_mirror_load(f->dir, &out), 1);
    assert_true(out.delta == 3 && out.file_begin == 0);
}

static void test_not_a_state_file(void **state)
{
    fix *f = *state;
    fy_mirror_state out;

    write_text(f, "hello\n");
    assert_int_equal(fy_mirror_load(f->dir, &out), 0);
}

static void test_save_fails(void **state)
{
    fix *f = *state;
    fy_mirror_state st = {.delta = 1};
    char dir[128];

    snprintf(dir, sizeof dir, "%s/missing", f->dir);
    assert_int_equal(fy_mirror_save(dir, &st, "h:1", true), -ENOENT);
    assert_int_equal(fy_mirror_load(dir, &st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epoch_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delta_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_state_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
