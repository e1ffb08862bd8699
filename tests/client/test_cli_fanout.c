/*
 * test_cli_fanout.c - `ferry send` and `ferry recv` through a real ferryd on
 * 127.0.0.1: one big file to three receivers, a thousand small files, an
 * empty file, a receiver that joins after the sender finished, and two
 * channels at once.  Every copy is compared by SHA-256 with its source.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ferry/digest.h"
#include "harness.h"

#define BIG_MS 240000
#define T_MS 60000

static long big_mib(void)
{
    return fy_ct_env_long("FERRY_TEST_BIG_MIB", FY_CT_SANITIZED ? 32 : 200);
}

static pid_t start_recv(fy_ct *t, const char *tag, const char *channel, const char *out,
                        const char *count)
{
    return fy_ct_recv(t, tag, channel, out,
                      (const char *[]){"--from-start", "--count", count, NULL});
}

static void test_big_to_three(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char src[FY_CT_PATH], p[FY_CT_PATH * 4], out[3][FY_CT_PATH], hex[65];
    uint8_t sha[32];
    uint64_t size = (uint64_t)big_mib() << 20;
    fy_ct_make_file(fy_ct_path(t, "big.bin", src), size, 7, sha);
    fy_sha256_hex(sha, hex);
    pid_t rx[3];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "r%d", i);
        fy_ct_path(t, p, out[i]);
        rx[i] = start_recv(t, p, "big", out[i], "1");
    }
    pid_t tx = fy_ct_send(t, "send", "big", (const char *[]){src, NULL});
    fy_ct_expect_exit(t, tx, "send", BIG_MS, 0);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "r%d", i);
        fy_ct_expect_exit(t, rx[i], p, BIG_MS, 0);
        snprintf(p, sizeof p, "%s/big.bin", out[i]);
        fy_ct_assert_same(p, sha);
        /* the key=value summary line names the file, its size and digest */
        char line[256];
        snprintf(line, sizeof line, "file=big.bin bytes=%llu ", (unsigned long long)size);
        snprintf(p, sizeof p, "%s/r%d.out", t->dir, i);
        assert_true(fy_ct_contains(p, line));
        assert_true(fy_ct_contains(p, hex));
        assert_true(fy_ct_contains(p, "files=1 "));
        snprintf(p, sizeof p, "%s/.big.bin.part", out[i]);
        assert_int_equal(fy_ct_size(p), -1);
    }
    snprintf(p, sizeof p, "%s/send.out", t->dir);
    assert_true(fy_ct_contains(p, "files=1 "));
    assert_true(fy_ct_contains(p, hex));
    fy_ct_daemon_stop(t);
}

static void test_thousand_small(void **state)
{
    fy_ct *t = *state;
    enum { N = 1000 };
    fy_ct_daemon_start(t, NULL);
    char src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    fy_ct_mkdir(fy_ct_path(t, "src", src));
    fy_ct_path(t, "out", out);
    uint8_t(*sha)[32] = calloc(N, sizeof *sha);
    assert_non_null(sha);
    const char **argv = calloc(N + 8, sizeof *argv);
    char(*names)[FY_CT_PATH + 32] = calloc(N, sizeof *names);
    assert_non_null(argv);
    assert_non_null(names);
    int a = 0;
    argv[a++] = "send";
    argv[a++] = "--server";
    argv[a++] = t->daemon.addr;
    argv[a++] = "--channel";
    argv[a++] = "small";
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "%s/f%04d.dat", src, i);
        /* 0 bytes (i = 0) up to ~9 KiB: frames from none to a couple */
        fy_ct_make_file(names[i], (uint64_t)(i * 37 % 9000), (uint64_t)i, sha[i]);
        argv[a++] = names[i];
    }
    argv[a] = NULL;
    pid_t rx = start_recv(t, "recv", "small", out, "1000");
    pid_t tx = fy_ct_spawn(t, "send", argv);
    fy_ct_expect_exit(t, tx, "send", T_MS, 0);
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "%s/f%04d.dat", out, i);
        fy_ct_assert_same(p, sha[i]);
    }
    snprintf(p, sizeof p, "%s/send.out", t->dir);
    assert_true(fy_ct_contains(p, "files=1000 "));
    free(argv);
    free(names);
    free(sha);
    fy_ct_daemon_stop(t);
}

static void test_empty_file(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "empty", src), 0, 1, sha);
    fy_ct_path(t, "out", out);
    pid_t rx = start_recv(t, "recv", "e", out, "1");
    fy_ct_expect_exit(t, fy_ct_send(t, "send", "e", (const char *[]){src, NULL}),
                      "send", T_MS, 0);
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    snprintf(p, sizeof p, "%s/empty", out);
    assert_int_equal(fy_ct_size(p), 0);
    fy_ct_assert_same(p, sha);
    fy_ct_daemon_stop(t);
}

static void test_late_receiver(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char a[FY_CT_PATH], b[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sa[32], sb[32];
    fy_ct_make_file(fy_ct_path(t, "a.bin", a), 3 << 20, 1, sa);
    fy_ct_make_file(fy_ct_path(t, "b.bin", b), 100000, 2, sb);
    /* The sender is done and gone before the receiver exists. */
    fy_ct_expect_exit(t, fy_ct_send(t, "send", "late", (const char *[]){a, b, NULL}),
                      "send", T_MS, 0);
    fy_ct_path(t, "out", out);
    fy_ct_expect_exit(t, start_recv(t, "recv", "late", out, "2"), "recv", T_MS, 0);
    snprintf(p, sizeof p, "%s/a.bin", out);
    fy_ct_assert_same(p, sa);
    snprintf(p, sizeof p, "%s/b.bin", out);
    fy_ct_assert_same(p, sb);
    fy_ct_daemon_stop(t);
}

static void test_two_channels(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char a[FY_CT_PATH], b[FY_CT_PATH], oa[FY_CT_PATH], ob[FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sa[32], sb[32];
    fy_ct_make_file(fy_ct_path(t, "one.bin", a), 8 << 20, 11, sa);
    fy_ct_make_file(fy_ct_path(t, "two.bin", b), 6 << 20, 12, sb);
    fy_ct_path(t, "oa", oa);
    fy_ct_path(t, "ob", ob);
    pid_t ra = start_recv(t, "ra", "chan-a", oa, "1");
    pid_t rb = start_recv(t, "rb", "chan-b", ob, "1");
    pid_t ta = fy_ct_send(t, "sa", "chan-a", (const char *[]){a, NULL});
    pid_t tb = fy_ct_send(t, "sb", "chan-b", (const char *[]){"--chunk", "16K", b, NULL});
    fy_ct_expect_exit(t, ta, "sa", T_MS, 0);
    fy_ct_expect_exit(t, tb, "sb", T_MS, 0);
    fy_ct_expect_exit(t, ra, "ra", T_MS, 0);
    fy_ct_expect_exit(t, rb, "rb", T_MS, 0);
    snprintf(p, sizeof p, "%s/one.bin", oa);
    fy_ct_assert_same(p, sa);
    snprintf(p, sizeof p, "%s/two.bin", ob);
    fy_ct_assert_same(p, sb);
    /* each channel got only its own file */
    snprintf(p, sizeof p, "%s/two.bin", oa);
    assert_int_equal(fy_ct_size(p), -1);
    snprintf(p, sizeof p, "%s/one.bin", ob);
    assert_int_equal(fy_ct_size(p), -1);
    fy_ct_daemon_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_big_to_three, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_thousand_small, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_late_receiver, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_two_channels, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
