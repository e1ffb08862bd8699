/*
 * test_cli_wait.c - `ferry recv` on a channel the relay does not have
 * (issue 20, "No silent failures"), with a real ferryd on 127.0.0.1:
 *
 *  - with --no-wait it exits 3 at once, saying "no channel 'dcos' on the
 *    relay", and the relay made no directory for the name;
 *  - without it, it says "no channel 'docs' on the relay; waiting for it",
 *    still nothing on disk, and once a sender creates the channel it
 *    receives the sender's file (--count 1, exit 0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "harness.h"

#define T_MS 60000

static bool chan_dir(fy_ct *t, const char *name)
{
    char p[FY_CT_PATH * 2];
    struct stat sb;
    snprintf(p, sizeof p, "%s/channels/%s", t->data, name);
    return stat(p, &sb) == 0;
}

static void test_no_wait(void **state)
{
    fy_ct *t = *state;
    char out[FY_CT_PATH], p[FY_CT_PATH * 4];
    fy_ct_daemon_start(t, NULL);
    fy_ct_path(t, "out", out);
    fy_ct_expect_exit(t, fy_ct_recv(t, "r", "dcos", out, (const char *[]){"--no-wait", NULL}),
                      "r", T_MS, 3);
    snprintf(p, sizeof p, "%s/r.err", t->dir);
    assert_true(fy_ct_contains(p, "msg=\"no channel 'dcos' on the relay\""));
    assert_true(fy_ct_contains(p, "exit=3"));
    assert_false(chan_dir(t, "dcos"));
    fy_ct_daemon_stop(t);
}

static void test_waits_for_sender(void **state)
{
    fy_ct *t = *state;
    char out[FY_CT_PATH], src[FY_CT_PATH], p[FY_CT_PATH * 4];
    fy_ct_daemon_start(t, NULL);
    fy_ct_path(t, "out", out);
    pid_t rx = fy_ct_recv(t, "r", "docs", out, (const char *[]){"--count", "1", NULL});
    snprintf(p, sizeof p, "%s/r.err", t->dir);
    for (int i = 0; i < 200 && !fy_ct_contains(p, "waiting for it"); i++)
        fy_ct_sleep_ms(50);
    if (!fy_ct_contains(p, "msg=\"no channel 'docs' on the relay; waiting for it\""))
        fy_ct_dump(p);
    assert_true(fy_ct_contains(p, "msg=\"no channel 'docs' on the relay; waiting for it\""));
    assert_true(fy_ct_running(rx));
    assert_false(chan_dir(t, "docs"));

    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "report.pdf", src), 300 << 10, 7, sha);
    fy_ct_expect_exit(t, fy_ct_send(t, "s", "docs", (const char *[]){src, NULL}), "s", T_MS, 0);
    fy_ct_expect_exit(t, rx, "r", T_MS, 0);
    char got[FY_CT_PATH * 2];
    snprintf(got, sizeof got, "%s/report.pdf", out);
    fy_ct_assert_same(got, sha);
    fy_ct_daemon_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_wait, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_waits_for_sender, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
