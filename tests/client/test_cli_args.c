/*
 * test_cli_args.c - the `ferry` command line as a user meets it: --help on
 * every command, bad flags (exit 64 with one key=value line), an
 * unreachable server (exit 2), local errors (exit 5), a bad TLS setting
 * with standard input (no spool file left).  Runs the real
 * binary; no relay needed.  Also the usage-error contract of the other
 * programs (ferryd, ferry-trace, ferry-swarm): the same exit code 64, the
 * same one-line error, and --version on all four.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define T_MS 20000
#define USAGE 64 /* FY_EXIT_USAGE: a usage error, in every program */

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

/* Is file `path` exactly one key=value error line of a usage error? */
static bool one_usage_line(const char *path)
{
    char buf[4096];
    fy_ct_slurp(path, buf, sizeof buf);
    char *nl = strchr(buf, '\n');
    bool ok = !strncmp(buf, "ts=", 3) && nl && nl[1] == 0 && strstr(buf, " level=error ") &&
              strstr(buf, " msg=\"") && strstr(buf, " exit=64") && strstr(buf, " hint=\"");
    if (!ok)
        fprintf(stderr, "not one usage-error line: [%s]\n", buf);
    return ok;
}

/* `prog argv...` exits with code; its stdout/stderr contain out_has/err_has. */
static void expect_prog(fy_ct *t, const char *prog, const char *tag, const char *const *argv,
                        int code, const char *out_has, const char *err_has)
{
    int rc = fy_ct_wait(t, fy_ct_spawn_prog(t, tag, prog, NULL, argv), T_MS);
    char o[FY_CT_PATH + 64], e[FY_CT_PATH + 64];
    snprintf(o, sizeof o, "%s/%s.out", t->dir, tag);
    snprintf(e, sizeof e, "%s/%s.err", t->dir, tag);
    if (rc != code) {
        fprintf(stderr, "case %s (%s): exit %d, wanted %d\n", tag, prog, rc, code);
        fy_ct_dump(e);
    }
    assert_int_equal(rc, code);
    if (out_has)
        assert_true(fy_ct_contains(o, out_has));
    if (err_has)
        assert_true(fy_ct_contains(e, err_has));
    if (code == USAGE)
        assert_true(one_usage_line(e));
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
    expect(t, "h6", (const char *[]){NULL}, USAGE, NULL, "Usage: ferry COMMAND");
    expect(t, "h7", (const char *[]){"--version", NULL}, 0, "ferry ", NULL);
    expect(t, "h8", (const char *[]){"recv", "--help", NULL}, 0, "--skip-damaged", NULL);
    /* a receiver's option, not a sender's */
    expect(t, "h9", (const char *[]){"send", "--skip-damaged", "--channel", "c", "x", NULL}, USAGE,
           NULL, "option not valid for this command");
}

static void test_bad_flags(void **state)
{
    fy_ct *t = *state;
    expect(t, "b0", (const char *[]){"fly", NULL}, USAGE, NULL, "unknown command");
    expect(t, "b1", (const char *[]){"send", "--bogus", "--channel", "c", "x", NULL}, USAGE, NULL,
           "unknown option");
    expect(t, "b2", (const char *[]){"send", "/etc/hostname", NULL}, USAGE, NULL, "--channel is required");
    expect(t, "b3", (const char *[]){"send", "--channel", "c", NULL}, USAGE, NULL, "no FILE");
    expect(t, "b4", (const char *[]){"send", "--channel", "../etc", "/etc/hostname", NULL}, USAGE, NULL,
           "invalid channel name");
    expect(t, "b5", (const char *[]){"send", "--channel", "c", "--chunk", "lots", "/etc/hostname", NULL},
           USAGE, NULL, "not a number");
    expect(t, "b6", (const char *[]){"recv", "--channel", "c", NULL}, USAGE, NULL, "--out DIR is required");
    expect(t, "b7", (const char *[]){"recv", "--channel", "c", "--out", "/tmp", "--resume",
                                     "--from-start", NULL},
           USAGE, NULL, "choose one of");
    expect(t, "b8", (const char *[]){"recv", "--channel", "c", "--out", "/tmp", "--chunk", "1", NULL},
           USAGE, NULL, "not valid for this command");
    expect(t, "b9", (const char *[]){"check", NULL}, USAGE, NULL, "--data DIR is required");
    expect(t, "b10", (const char *[]){"recv", "--channel", NULL}, USAGE, NULL, "needs a value");
    expect(t, "b11", (const char *[]){"demo", "--receivers", "99", NULL}, USAGE, NULL, "1-32");
    expect(t, "b12", (const char *[]){"send", "--server", "nowhere", "--channel", "c",
                                      "/etc/hostname", NULL},
           USAGE, NULL, "bad server address");
}

/* One exit code and one error-line shape for usage errors in every program. */
static void test_usage_everywhere(void **state)
{
    fy_ct *t = *state;
    /* ferry: the line, not only the code */
    expect_prog(t, FERRY_PATH, "f0", (const char *[]){"send", "--bogus", NULL}, USAGE, NULL,
                "hint=\"ferry send --help\"");
    expect_prog(t, FERRY_PATH, "f1", (const char *[]){"recv", "--channel", NULL}, USAGE, NULL,
                "needs a value");
    expect_prog(t, FERRYD_PATH, "d0", (const char *[]){"--bogus", "1", NULL}, USAGE, NULL,
                "unknown option");
    expect_prog(t, FERRYD_PATH, "d1", (const char *[]){"--listen", NULL}, USAGE, NULL,
                "needs a value");
    expect_prog(t, FERRYD_PATH, "d2", (const char *[]){"--version", NULL}, 0, "ferryd ", NULL);
    expect_prog(t, FERRY_TRACE_PATH, "t0", (const char *[]){"dump", "x", "--bogus", NULL}, USAGE,
                NULL, "unknown option");
    expect_prog(t, FERRY_TRACE_PATH, "t1", (const char *[]){NULL}, USAGE, NULL, "no command");
    expect_prog(t, FERRY_TRACE_PATH, "t2", (const char *[]){"info", "x", "--top", "many", NULL},
                USAGE, NULL, "--top wants a count");
    expect_prog(t, FERRY_TRACE_PATH, "t3", (const char *[]){"--version", NULL}, 0, "ferry-trace ",
                NULL);
#ifdef FERRY_SWARM_PATH
    expect_prog(t, FERRY_SWARM_PATH, "s0", (const char *[]){"--bogus", NULL}, USAGE, NULL,
                "unknown option");
    expect_prog(t, FERRY_SWARM_PATH, "s1", (const char *[]){"--size", "lots", NULL}, USAGE, NULL,
                "bad value for --size");
    expect_prog(t, FERRY_SWARM_PATH, "s2", (const char *[]){"--server", NULL}, USAGE, NULL,
                "needs a value");
    expect_prog(t, FERRY_SWARM_PATH, "s4", (const char *[]){"--chunk", "0", NULL}, USAGE, NULL,
                "--chunk must be");
    /* a renamed flag's old spelling: accepted, with a warning naming the new one */
    int rc = fy_ct_wait(t, fy_ct_spawn_prog(t, "s5", FERRY_SWARM_PATH, NULL,
                                            (const char *[]){"--packet", "0", NULL}), T_MS);
    assert_int_equal(rc, USAGE);
    char e[FY_CT_PATH + 64];
    snprintf(e, sizeof e, "%s/s5.err", t->dir);
    assert_true(fy_ct_contains(e, "flag=--packet new=--chunk"));
    assert_true(fy_ct_contains(e, "--chunk must be"));
    expect_prog(t, FERRY_SWARM_PATH, "s3", (const char *[]){"--version", NULL}, 0, "ferry-swarm ",
                NULL);
#endif
}

static void test_file_names(void **state)
{
    fy_ct *t = *state;
    char p[FY_CT_PATH];
    fy_ct_make_file(fy_ct_path(t, "ctl\x01name", p), 10, 1, NULL); /* a control character */
    expect(t, "n0", (const char *[]){"send", "--channel", "c", p, NULL}, USAGE, NULL,
           "file name cannot be sent");
    fy_ct_path(t, "missing.bin", p);
    expect(t, "n1", (const char *[]){"send", "--channel", "c", p, NULL}, 5, NULL, "ENOENT");
    expect(t, "n2", (const char *[]){"send", "--channel", "c", t->dir, NULL}, 5, NULL, "EISDIR");
    expect(t, "n3", (const char *[]){"send", "--channel", "c", "-r", ".", NULL}, USAGE, NULL,
           "-r needs a directory with a name");
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

/* A TLS setting that fails (a CA file that does not exist) fails `ferry
 * send -` before standard input is read: exit 64, and no spool temp file
 * left in $TMPDIR. */
static void test_send_stdin_bad_tls(void **state)
{
    fy_ct *t = *state;
    char in[FY_CT_PATH], tmp[FY_CT_PATH], ca[FY_CT_PATH];
    fy_ct_make_file(fy_ct_path(t, "in.bin", in), 100000, 3, NULL);
    fy_ct_mkdir(fy_ct_path(t, "tmp", tmp));
    setenv("TMPDIR", tmp, 1);
    int rc = fy_ct_wait(t, fy_ct_spawn_prog(t, "tls0", NULL, in,
                                            (const char *[]){"send", "--server", "127.0.0.1:1",
                                                             "--channel", "c", "--ca",
                                                             fy_ct_path(t, "no-ca.pem", ca),
                                                             "--name", "x", "-", NULL}),
                        T_MS);
    unsetenv("TMPDIR");
    char e[FY_CT_PATH + 64];
    snprintf(e, sizeof e, "%s/tls0.err", t->dir);
    if (rc != USAGE)
        fy_ct_dump(e);
    assert_int_equal(rc, USAGE);
    assert_true(fy_ct_contains(e, "cannot set up TLS"));
    DIR *d = opendir(tmp);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        assert_null(strstr(de->d_name, "ferry-stdin-"));
    closedir(d);
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
        cmocka_unit_test_setup_teardown(test_usage_everywhere, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_file_names, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_check_missing, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_send_stdin_bad_tls, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
