/*
 * test_cli_resume.c - receivers that stop, lag or lose their sender,
 * through a real ferryd on 127.0.0.1: a receiver killed mid-file (SIGKILL)
 * resumes with --resume and ends complete and intact; a throttled receiver
 * does not hold back the others and completes later; SIGINT removes the
 * partial file and exits 130; a sender that dies mid-file makes receivers
 * discard that file and carry on with the next.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/conn.h"
#include "ferry/proto.h"
#include "harness.h"

#define T_MS 120000

/* Wait (bounded) until `path` holds at least `bytes`. */
static void wait_size(const char *path, long long bytes)
{
    for (int i = 0; i < 3000 && fy_ct_size(path) < bytes; i++)
        fy_ct_sleep_ms(10);
    assert_true(fy_ct_size(path) >= bytes);
}

static void send_files(fy_ct *t, const char *tag, const char *channel, const char *f1,
                       const char *f2)
{
    pid_t tx = fy_ct_send(t, tag, channel, (const char *[]){f1, f2, NULL});
    fy_ct_expect_exit(t, tx, tag, T_MS, 0);
}

static void test_kill_and_resume(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char a[FY_CT_PATH], b[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sa[32], sb[32];
    fy_ct_make_file(fy_ct_path(t, "a.bin", a), 200000, 1, sa);
    fy_ct_make_file(fy_ct_path(t, "b.bin", b), 24 << 20, 2, sb);
    send_files(t, "send", "res", a, b);
    fy_ct_path(t, "out", out);
    /* Slow enough to be caught in the middle of b.bin. */
    pid_t rx =
        fy_ct_recv(t, "recv1", "res", out, (const char *[]){"--from-start", "--rate", "4M", NULL});
    snprintf(p, sizeof p, "%s/.b.bin.part", out);
    wait_size(p, 2 << 20);
    fy_ct_kill(rx, SIGKILL);
    assert_int_equal(fy_ct_wait(t, rx, 10000), 128 + SIGKILL);
    /* a.bin was complete and the state file says where to go on */
    snprintf(p, sizeof p, "%s/a.bin", out);
    fy_ct_assert_same(p, sa);
    snprintf(p, sizeof p, "%s/.ferry-state", out);
    assert_true(fy_ct_contains(p, "channel=res\n"));
    snprintf(p, sizeof p, "%s/b.bin", out);
    assert_int_equal(fy_ct_size(p), -1);

    fy_ct_expect_exit(t,
                      fy_ct_recv(t, "recv2", "res", out,
                                 (const char *[]){"--resume", "--count", "1", NULL}),
                "recv2", T_MS, 0);
    snprintf(p, sizeof p, "%s/b.bin", out);
    fy_ct_assert_same(p, sb);
    snprintf(p, sizeof p, "%s/a.bin", out);
    fy_ct_assert_same(p, sa);
    snprintf(p, sizeof p, "%s/.b.bin.part", out);
    assert_int_equal(fy_ct_size(p), -1);
    /* the resumed run received b.bin only */
    snprintf(p, sizeof p, "%s/recv2.out", t->dir);
    assert_true(fy_ct_contains(p, "file=b.bin "));
    assert_false(fy_ct_contains(p, "file=a.bin "));
    /* a second --resume has nothing left before new files: it waits (live) */
    fy_ct_daemon_stop(t);
}

static void test_slow_receiver(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    const long long size = 24 << 20;
    char src[FY_CT_PATH], out[3][FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "f.bin", src), (uint64_t)size, 3, sha);
    pid_t rx[3];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "r%d", i);
        fy_ct_path(t, p, out[i]);
        /* r0 reads at 4 MB/s: 6 s for the file */
        rx[i] = fy_ct_recv(t, p, "slow", out[i],
                           (const char *[]){"--from-start", "--count", "1",
                                            i == 0 ? "--rate" : NULL, "4M", NULL});
    }
    send_files(t, "send", "slow", src, NULL);
    fy_ct_expect_exit(t, rx[1], "r1", T_MS, 0);
    fy_ct_expect_exit(t, rx[2], "r2", T_MS, 0);
    /* The fast ones are done; the slow one is still far behind, and it did
     * not hold them (or the sender) back. */
    assert_true(fy_ct_running(rx[0]));
    snprintf(p, sizeof p, "%s/.f.bin.part", out[0]);
    long long part = fy_ct_size(p);
    fprintf(stderr, "slow receiver had %lld of %lld bytes when the fast ones finished\n", part, size);
    assert_true(part < size / 2);
    fy_ct_expect_exit(t, rx[0], "r0", T_MS, 0);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/f.bin", out[i]);
        fy_ct_assert_same(p, sha);
    }
    fy_ct_daemon_stop(t);
}

static void test_interrupt(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    fy_ct_make_file(fy_ct_path(t, "i.bin", src), 16 << 20, 4, NULL);
    send_files(t, "send", "intr", src, NULL);
    fy_ct_path(t, "out", out);
    pid_t rx =
        fy_ct_recv(t, "recv", "intr", out, (const char *[]){"--from-start", "--rate", "2M", NULL});
    snprintf(p, sizeof p, "%s/.i.bin.part", out);
    wait_size(p, 1 << 20);
    fy_ct_kill(rx, SIGINT);
    fy_ct_expect_exit(t, rx, "recv", 20000, 130);
    assert_int_equal(fy_ct_size(p), -1); /* the partial file is gone */
    snprintf(p, sizeof p, "%s/recv.err", t->dir);
    assert_true(fy_ct_contains(p, "interrupted"));
    assert_true(fy_ct_contains(p, "partial_removed=.i.bin.part"));
    fy_ct_daemon_stop(t);
}

/* A sender that dies after part of a file: the relay keeps what it stored,
 * the next sender's file-begin follows, receivers drop the partial file. */
static void test_sender_dies_midfile(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    fy_cli_conn *k;
    fy_welcome w;
    fy_ct_hold_sender(t, "dies", &k, &w);
    uint64_t seq = w.next_seq;
    fy_file_begin fb = {.size = 1 << 20};
    snprintf(fb.name, sizeof fb.name, "dead.bin");
    uint8_t pl[FY_CTL_PAYLOAD_MAX];
    size_t n;
    assert_int_equal(fy_file_begin_encode(&fb, pl, sizeof pl, &n), 0);
    assert_int_equal(fy_cli_conn_send(k, FY_FT_FILE_BEGIN, seq++, pl, n), 0);
    static const uint8_t zeros[65536];
    for (int i = 0; i < 4; i++)
        assert_int_equal(fy_cli_conn_send(k, FY_FT_DATA, seq++, zeros, sizeof zeros), 0);
    fy_cli_conn_close(k, false); /* gone without file-end or bye */

    char src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "next.bin", src), 300000, 5, sha);
    fy_ct_path(t, "out", out);
    pid_t rx =
        fy_ct_recv(t, "recv", "dies", out, (const char *[]){"--from-start", "--count", "1", NULL});
    /* The relay may need a moment to notice the first sender is gone. */
    int rc = -1;
    for (int i = 0; i < 50 && rc != 0; i++) {
        rc = fy_ct_wait(t, fy_ct_send(t, "send", "dies", (const char *[]){src, NULL}), T_MS);
        if (rc == 3)
            fy_ct_sleep_ms(100);
        else
            break;
    }
    assert_int_equal(rc, 0);
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    snprintf(p, sizeof p, "%s/next.bin", out);
    fy_ct_assert_same(p, sha);
    snprintf(p, sizeof p, "%s/dead.bin", out);
    assert_int_equal(fy_ct_size(p), -1);
    snprintf(p, sizeof p, "%s/.dead.bin.part", out);
    assert_int_equal(fy_ct_size(p), -1);
    snprintf(p, sizeof p, "%s/recv.err", t->dir);
    assert_true(fy_ct_contains(p, "sender died mid-file"));
    fy_ct_daemon_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_and_resume, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_slow_receiver, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_interrupt, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_sender_dies_midfile, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
