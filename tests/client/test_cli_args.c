/*
 * test_cli_args.c - the `ferry` command line as a user meets it: --help on
 * every command, bad flags (exit 1 with a message), an unreachable server
 * (exit 2), local errors (exit 5).  Runs the real binary; no relay needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define T_MS 20000

static void expect(fy_ct *t, const char *tag, const char *const *argv, int code,
                   const char *out_has, const char *err_has)
{
    int rc = fy_ct_run(t, tag, argv, T_MS);
    char o[FY_CT_PATH + 64], e[FY_CT_PATH + 64];
    snprintf(o, sizeof o, "%s/%s.out", t->dir, tag);
    snprintf(e, sizeof e, "%s/%s.err", t->dir, tag);
    if (rc != code || (out_has && !fy_ct_contains(o, out_has)) ||
        (err_has && !fy_ct_contains(e, err_has))) {
        fprintf(stderr, "case %s: exit %d, wanted %d\n", tag, rc, code);
        fy_ct_dump(o);
        fy_ct_dump(e);
    }
    assert_int_equal(rc, code);
    if (out_has)
        assert_true(fy_ct_contains(o, out_has));
    if (err_has)
        assert_true(fy_ct_contains(e, err_has));
}

static void test_help(void **state)
{
    fy_ct *t = *state;
    expect(t, "h0", (const char *[]){"--help", NULL}, 0, "Usage: ferry COMMAND", NULL);
    expect(t, "h1", (const char *[]){"send", "--help", NULL}, 0, "Usage: ferry send", NULL);
    expect(t, "h2", (const char *[]){"recv", "--help", NULL}, 0, "--resume", NULL);
    expect(t, "h3", (const char *[]){"check", "--help", NULL}, 0, "Usage: ferry check", NULL);
    expect(t, "h4", (const char *[]){"demo", "--help", NULL}, 0, "Usage: ferry demo", NULL);
    /* every help lists the exit codes */
    expect(t, "h5", (const char *[]){"recv", "--help", NULL}, 0, "130  interrupted", NULL);
    expect(t, "h6", (const char *[]){NULL}, 1, NULL, "Usage: ferry COMMAND");
    expect(t, "h7", (const char *[]){"recv", "--help", NULL}, 0, "--skip-damaged", NULL);
    /* a receiver's option, not a sender's */
    expect(t, "h8", (const char *[]){"send", "--skip-damaged", "--channel", "c", "x", NULL}, 1,
           NULL, "option not valid for this command");
}

static void test_bad_flags(void **state)
{
    fy_ct *t = *state;
    expect(t, "b0", (const char *[]){"fly", NULL}, 1, NULL, "unknown command");
    expect(t, "b1", (const char *[]){"send", "--bogus", "--channel", "c", "x", NULL}, 1, NULL,
           "unknown option");
    expect(t, "b2", (const char *[]){"send", "/etc/hostname", NULL}, 1, NULL, "--channel is required");
    expect(t, "b3", (const char *[]){"send", "--channel", "c", NULL}, 1, NULL, "no FILE");
    expect(t, "b4", (const char *[]){"send", "--channel", "../etc", "/etc/hostname", NULL}, 1, NULL,
           "invalid channel name");
    expect(t, "b5", (const char *[]){"send", "--channel", "c", "--chunk", "lots", "/etc/hostname", NULL},
           1, NULL, "not a number");
    expect(t, "b6", (const char *[]){"recv", "--channel", "c", NULL}, 1, NULL, "--out DIR is required");
    expect(t, "b7", (const char *[]){"recv", "--channel", "c", "--out", "/tmp", "--resume",
                                     "--from-start", NULL},
           1, NULL, "choose one of");
    expect(t, "b8", (const char *[]){"recv", "--channel", "c", "--out", "/tmp", "--chunk", "1", NULL},
           1, NULL, "not valid for this command");
    expect(t, "b9", (const char *[]){"check", NULL}, 1, NULL, "--data DIR is required");
    expect(t, "b10", (const char *[]){"recv", "--channel", NULL}, 1, NULL, "needs a value");
    expect(t, "b11", (const char *[]){"demo", "--receivers", "99", NULL}, 1, NULL, "1-32");
    expect(t, "b12", (const char *[]){"send", "--server", "nowhere", "--channel", "c",
                                      "/etc/hostname", NULL},
           1, NULL, "bad server address");
}

static void test_file_names(void **state)
{
    fy_ct *t = *state;
    char p[FY_CT_PATH];
    fy_ct_make_file(fy_ct_path(t, ".hidden", p), 10, 1, NULL);
    expect(t, "n0", (const char *[]){"send", "--channel", "c", p, NULL}, 1, NULL,
           "file name cannot be sent");
    fy_ct_path(t, "missing.bin", p);
    expect(t, "n1", (const char *[]){"send", "--channel", "c", p, NULL}, 5, NULL, "ENOENT");
    expect(t, "n2", (const char *[]){"send", "--channel", "c", t->dir, NULL}, 5, NULL, "EISDIR");
}

static void test_unreachable(void **state)
{
    fy_ct *t = *state;
    char out[FY_CT_PATH];
    fy_ct_path(t, "out", out);
    /* Port 1 on loopback: nothing listens there (connection refused). */
    expect(t, "u0", (const char *[]){"send", "--server", "127.0.0.1:1", "--channel", "c",
                                     "/etc/hostname", NULL},
           2, NULL, "cannot connect to relay");
    expect(t, "u1", (const char *[]){"recv", "--server", "127.0.0.1:1", "--channel", "c", "--out",
                                     out, "--count", "1", NULL},
           2, NULL, "ECONNREFUSED");
}

static void test_check_missing(void **state)
{
    fy_ct *t = *state;
    char p[FY_CT_PATH];
    expect(t, "c0", (const char *[]){"check", "--data", fy_ct_path(t, "nothing", p), NULL}, 5, NULL,
           "cannot open data directory");
    /* an empty data directory is clean */
    expect(t, "c1", (const char *[]){"check", "--data", t->dir, NULL}, 0, "check=ok channels=0", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_bad_flags, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_file_names, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_check_missing, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
