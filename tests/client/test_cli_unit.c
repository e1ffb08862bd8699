/*
 * test_cli_unit.c - the client's pure parts: progress formatting, the
 * resume state file, file-name rules, exit-code mapping, the signal
 * watcher.  No relay needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cancel.h"
#include "cli/cliconf.h"
#include "cli/cliexit.h"
#include "cli/progress.h"
#include "cli/retry.h"
#include "cli/send.h"
#include "cli/state.h"
#include "ferry/err.h"
#include "harness.h"

static void test_bytes(void **state)
{
    (void)state;
    char b[32];
    /* binary K/M/G as in BYTES options, at most 5 characters */
    assert_string_equal(fy_cli_progress_bytes(0, b, sizeof b), "0B");
    assert_string_equal(fy_cli_progress_bytes(1023, b, sizeof b), "1023B");
    assert_string_equal(fy_cli_progress_bytes(1024, b, sizeof b), "1.00K");
    assert_string_equal(fy_cli_progress_bytes(256ull << 20, b, sizeof b), "256M");
    assert_string_equal(fy_cli_progress_bytes(3ull << 29, b, sizeof b), "1.50G");
    assert_string_equal(fy_cli_progress_bytes((1ull << 20) * 99.97, b, sizeof b), "100M");
    assert_string_equal(fy_cli_progress_bytes((1ull << 30) - 1, b, sizeof b), "1024M");
    for (uint64_t n = 1; n < (1ull << 62); n = n * 3 + 7)
        assert_true(strlen(fy_cli_progress_bytes(n, b, sizeof b)) <= 5);
}

/* Columns of UTF-8 text. */
static int ucols(const char *s)
{
    int c = 0;
    for (; *s; s++)
        c += ((unsigned char)*s & 0xC0) != 0x80;
    return c;
}

static void test_bar(void **state)
{
    (void)state;
    char b[256];
    /* half of 200 MiB in 1 s: 50 %, 100 MiB/s, ETA 0:01 */
    size_t n = fy_cli_progress_format_bar(b, sizeof b, "big.bin", 100ull << 20, 200ull << 20, 1.0, 80);
    assert_int_equal(n, strlen(b));
    assert_true(n <= 80);
    assert_non_null(strstr(b, "big.bin "));
    assert_non_null(strstr(b, " ["));
    assert_non_null(strstr(b, " 50%"));
    assert_non_null(strstr(b, " 100M/200M "));
    assert_non_null(strstr(b, " 100MiB/s"));
    assert_non_null(strstr(b, "ETA 0:01"));
    char *lb = strchr(b, '['), *rb = strchr(b, ']');
    assert_true(rb - lb - 1 >= 10);
    int fill = 0;
    for (char *p = lb + 1; p < rb; p++)
        fill += *p == '#';
    assert_int_equal(fill, (rb - lb - 1) / 2);
    /* an empty file is complete at once; no rate yet means no ETA */
    fy_cli_progress_format_bar(b, sizeof b, "empty", 0, 0, 0.0, 80);
    assert_non_null(strstr(b, "100%"));
    assert_non_null(strstr(b, "ETA --:--"));
    /* a long name is cut, the numbers are kept, narrow terminals still fit numbers */
    char name[256];
    memset(name, 'n', 255);
    name[255] = 0;
    fy_cli_progress_format_bar(b, sizeof b, name, 1, 2, 10.0, 80);
    assert_true(ucols(b) <= 80);
    assert_non_null(strstr(b, "ETA"));
    /* long ETAs use hours */
    fy_cli_progress_format_bar(b, sizeof b, "slow", 1000, 1000 + 3600 * 1000, 1.0, 100);
    assert_non_null(strstr(b, "ETA 1:00:00"));
    /* a tiny buffer truncates safely */
    n = fy_cli_progress_format_bar(b, 8, "x", 1, 2, 1.0, 80);
    assert_int_equal(n, 7);
    assert_int_equal(strlen(b), 7);
}

static void test_line(void **state)
{
    (void)state;
    char b[256];
    uint8_t sha[32];
    memset(sha, 0xab, sizeof sha);
    fy_cli_progress_format_line(b, sizeof b, "a.txt", 2000000, 2.0, sha);
    assert_string_equal(b, "file=a.txt bytes=2000000 seconds=2.000 mbps=1.0 sha256="
                           "abababababababababababababababababababababababababababababababab");
    fy_cli_progress_format_line(b, sizeof b, "a.txt", 5, 0.0, NULL);
    assert_string_equal(b, "file=a.txt bytes=5 seconds=0.000 mbps=0.0");
    assert_true(fy_cli_progress_mbps(3000000, 1.5) == 2.0);
}

/* Every width from 1 to 120 columns: the line never exceeds it, the
 * percentage is always there, and the numbers go before the name does. */
static void test_bar_width(void **state)
{
    (void)state;
    char b[512], name[256];
    memset(name, 'n', 255);
    name[255] = 0;
    const char *names[] = {"a", "report.bin", name};
    for (size_t k = 0; k < 3; k++) {
        for (int w = 1; w <= 120; w++) {
            size_t n = fy_cli_progress_format_bar(b, sizeof b, names[k], 3ull << 30, 7ull << 30,
                                                  4000.0, w);
            assert_int_equal(n, strlen(b));
            if (w >= 5)
                assert_true(ucols(b) <= w);
            assert_non_null(strstr(b, "%"));
        }
    }
    /* 50 columns: all the numbers and a name of 8 */
    fy_cli_progress_format_bar(b, sizeof b, "report.bin", 1ull << 20, 2ull << 20, 1.0, 49);
    assert_true(ucols(b) <= 49);
    assert_non_null(strstr(b, "report.b"));
    assert_non_null(strstr(b, "ETA"));
    /* 80 columns: a bar too */
    fy_cli_progress_format_bar(b, sizeof b, "report.bin", 1ull << 20, 2ull << 20, 1.0, 79);
    assert_non_null(strstr(b, "report.bin "));
    assert_non_null(strstr(b, " ["));
}

/* Bars of files with different names line up (the layout depends on the
 * width only); a long name is cut with an ellipsis; a finished file shows
 * the time it took, not "ETA 0:00"; the total line. */
static void test_bar_aligned(void **state)
{
    (void)state;
    char a[512], b[512], name[256];
    memset(name, 'n', 255);
    name[255] = 0;
    const int widths[] = {39, 79, 159};
    for (size_t i = 0; i < 3; i++) {
        int w = widths[i];
        fy_cli_progress_format_bar(a, sizeof a, "a", 1ull << 20, 2ull << 20, 1.0, w);
        fy_cli_progress_format_bar(b, sizeof b, name, 1ull << 20, 2ull << 20, 1.0, w);
        assert_int_equal(ucols(a), ucols(b));
        assert_true(ucols(b) <= w);
        assert_non_null(strstr(b, "\xE2\x80\xA6")); /* the cut name ends in an ellipsis */
        if (strchr(a, '['))
            assert_int_equal(strchr(a, '[') - a, strchr(b, '[') - b - 2); /* 2: the ellipsis' extra bytes */
        fy_cli_progress_format_done(a, sizeof a, "a", 2ull << 20, 2.0, w);
        assert_null(strstr(a, "ETA"));
        fy_cli_progress_format_total(a, sizeof a, 3, 6ull << 20, 3.0, w);
        assert_non_null(strstr(a, "total"));
        assert_true(ucols(a) <= w);
    }
    fy_cli_progress_format_done(a, sizeof a, "a", 2ull << 20, 2.0, 79);
    assert_non_null(strstr(a, "in  0:02"));
}

static void test_json(void **state)
{
    (void)state;
    char b[512];
    fy_cli_progress_json(b, sizeof b, "file=a.txt bytes=5 seconds=0.000 mbps=1.5 sha256=0123 status=ok");
    assert_string_equal(b, "{\"file\":\"a.txt\",\"bytes\":5,\"seconds\":0.000,\"mbps\":1.5,"
                           "\"sha256\":\"0123\",\"status\":\"ok\"}");
    /* names that look like numbers stay strings; odd values are strings, escaped */
    fy_cli_progress_json(b, sizeof b, "file=123 x=1.2.3 y=01 z=a\"b\\c w= v=-1 u=1.");
    assert_string_equal(b, "{\"file\":\"123\",\"x\":\"1.2.3\",\"y\":\"01\",\"z\":\"a\\\"b\\\\c\","
                           "\"w\":\"\",\"v\":\"-1\",\"u\":\"1.\"}");
    fy_cli_progress_json(b, sizeof b, "k=\x01");
    assert_string_equal(b, "{\"k\":\"\\u0001\"}");
    assert_int_equal(fy_cli_progress_json(b, 1, "a=1"), 0);
}

static void test_state(void **state)
{
    fy_ct *t = *state;
    int dfd = open(t->dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    char ch[256];
    uint64_t seq = 0;
    assert_int_equal(fy_cli_state_load(dfd, ch, sizeof ch, &seq), -ENOENT);
    assert_int_equal(fy_cli_state_save(dfd, "news", 42), 0);
    assert_int_equal(fy_cli_state_load(dfd, ch, sizeof ch, &seq), 0);
    assert_string_equal(ch, "news");
    assert_int_equal(seq, 42);
    assert_int_equal(fy_cli_state_save(dfd, "news", 18446744073709551615ull), 0);
    assert_int_equal(fy_cli_state_load(dfd, ch, sizeof ch, &seq), 0);
    assert_true(seq == 18446744073709551615ull);
    char p[FY_CT_PATH], buf[512];
    fy_ct_slurp(fy_ct_path(t, FY_CLI_STATE_FILE, p), buf, sizeof buf);
    assert_non_null(strstr(buf, "channel=news\nnext_seq=18446744073709551615\n"));
    /* no temp file is left behind */
    assert_int_equal(fy_ct_size(fy_ct_path(t, ".ferry-state.tmp", p)), -1);
    static const char *const bad[] = {
        "channel=news\n",                      /* no next_seq */
        "next_seq=3\n",                        /* no channel */
        "channel=news\nnext_seq=abc\n",        /* not a number */
        "channel=news\nnext_seq=0\n",          /* 0 is "none" */
        "channel=news\nnext_seq=-1\n",
        "channel=../x\nnext_seq=3\n",          /* not a valid name */
        "channel=news\nnext_seq=3\nextra=1\n", /* unknown key */
        "garbage\n",
    };
    fy_ct_path(t, FY_CLI_STATE_FILE, p);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        if (fy_cli_state_load(dfd, ch, sizeof ch, &seq) != -FY_ECORRUPT)
            fail_msg("state accepted: %s", bad[i]);
    }
    close(dfd);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(fy_cli_send_name("/a/b/report-2024.tar.gz"), "report-2024.tar.gz");
    assert_string_equal(fy_cli_send_name("plain"), "plain");
    /* names are UTF-8 path components now (fy_path_check) */
    assert_string_equal(fy_cli_send_name("/a/b/.hidden"), ".hidden");
    assert_null(fy_cli_send_name("dir/"));
    assert_string_equal(fy_cli_send_name("my report (v2).txt"), "my report (v2).txt");
    assert_string_equal(fy_cli_send_name("caf\xc3\xa9"), "caf\xc3\xa9");
    assert_null(fy_cli_send_name("caf\xc3"));
    assert_null(fy_cli_send_name("tab\there"));
    assert_null(fy_cli_send_name(".."));
    char longname[300];
    memset(longname, 'x', 256);
    longname[256] = 0;
    assert_null(fy_cli_send_name(longname));
    longname[255] = 0;
    assert_non_null(fy_cli_send_name(longname));
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(fy_cli_exit_for(0), FY_CLI_EXIT_OK);
    assert_int_equal(fy_cli_exit_for(-ECONNREFUSED), FY_CLI_EXIT_NET);
    assert_int_equal(fy_cli_exit_for(-ECONNRESET), FY_CLI_EXIT_NET);
    assert_int_equal(fy_cli_exit_for(-ENODATA), FY_CLI_EXIT_NET);
    assert_int_equal(fy_cli_exit_for(-ETIMEDOUT), FY_CLI_EXIT_NET);
    assert_int_equal(fy_cli_exit_for(-FY_ESHUTDOWN), FY_CLI_EXIT_NET);
    assert_int_equal(fy_cli_exit_for(-FY_ETIMEOUT), FY_CLI_EXIT_NET);
    /* Storage errors on the relay are "try again later": exit 2, retried. */
    assert_int_equal(fy_cli_exit_for(-FY_ENOSPACE), FY_CLI_EXIT_NET);
    assert_int_equal(fy_cli_exit_for(-FY_ESTORAGE), FY_CLI_EXIT_NET);
    assert_true(fy_cli_retry_transient(-FY_ENOSPACE, false));
    assert_true(fy_cli_retry_transient(-FY_ESTORAGE, false));
    assert_false(fy_cli_retry_transient(-FY_EAUTH, false));
    assert_int_equal(fy_cli_exit_for(-FY_EAUTH), FY_CLI_EXIT_REFUSED);
    assert_int_equal(fy_cli_exit_for(-FY_EBUSY), FY_CLI_EXIT_REFUSED);
    assert_int_equal(fy_cli_exit_for(-FY_EMAGIC), FY_CLI_EXIT_REFUSED);
    assert_int_equal(fy_cli_exit_for(-FY_ECRC), FY_CLI_EXIT_CHECKSUM);
    assert_int_equal(fy_cli_exit_for(-FY_EDIGEST), FY_CLI_EXIT_CHECKSUM);
    assert_int_equal(fy_cli_exit_for(-FY_ESIZE), FY_CLI_EXIT_CHECKSUM);
    assert_int_equal(fy_cli_exit_for(-ENOSPC), FY_CLI_EXIT_IO);
    assert_int_equal(fy_cli_exit_for(-EINTR), FY_CLI_EXIT_INTR);
    assert_int_equal(fy_cli_exit_for(-EINVAL), FY_CLI_EXIT_USAGE);
    assert_non_null(strstr(fy_cli_exit_help(), "130"));
    assert_string_equal(fy_cli_exit_text(FY_CLI_EXIT_CHECKSUM), "checksum or size mismatch");
}

/* A stop shuts down registered sockets, so a blocked reader wakes. */
static void test_cancel(void **state)
{
    (void)state;
    fy_cli_cancel *c;
    assert_int_equal(fy_cli_cancel_new(&c), 0);
    assert_false(fy_cli_cancel_requested(c));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fy_cli_cancel_add_fd(c, sv[0]), 0);
    assert_int_equal(kill(getpid(), SIGINT), 0); /* the watcher takes it */
    char b;
    assert_int_equal(read(sv[0], &b, 1), 0); /* EOF: shut down */
    assert_true(fy_cli_cancel_requested(c));
    assert_int_equal(fy_cli_cancel_signal(c), SIGINT);
    fy_cli_cancel_remove_fd(c, sv[0]);
    close(sv[0]);
    close(sv[1]);
    fy_cli_cancel_free(c);
    assert_false(fy_cli_cancel_requested(NULL));
}

/* The settings file: where it is, comments and blanks, every key, and the
 * errors that name the file and line. */
static void test_cliconf(void **state)
{
    (void)state;
    char path[] = "/tmp/ferry-cliconf-XXXXXX", err[1200], where[1100];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char good[] = "# settings\n\n server = relay.example:7420 # the relay\n"
                        "token-file=/t\nca = /ca.pem\ntls-name = r\ntls-cert = /c\ntls-key = /k\n";
    assert_int_equal(write(fd, good, sizeof good - 1), (ssize_t)(sizeof good - 1));
    close(fd);
    setenv("FERRY_CONFIG", path, 1);
    assert_int_equal(fy_cli_conf_path(where, sizeof where), 0);
    assert_string_equal(where, path);
    fy_cli_conf c;
    assert_int_equal(fy_cli_conf_load(&c, err, sizeof err), 0);
    assert_string_equal(c.server, "relay.example:7420");
    assert_string_equal(c.token_file, "/t");
    assert_string_equal(c.tls_name, "r");
    assert_true(c.tls); /* ca implies tls */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("server = a:1\ntls = maybe\n", f);
    fclose(f);
    assert_int_equal(fy_cli_conf_load(&c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":2: tls: expected yes or no"));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("just words\n", f);
    fclose(f);
    assert_int_equal(fy_cli_conf_load(&c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":1: expected 'key = value'"));
    unlink(path);
    assert_int_equal(fy_cli_conf_load(&c, err, sizeof err), 0); /* missing: no settings */
    assert_string_equal(c.server, "");
    unsetenv("FERRY_CONFIG");
    setenv("XDG_CONFIG_HOME", "/x", 1);
    assert_int_equal(fy_cli_conf_path(where, sizeof where), 0);
    assert_string_equal(where, "/x/ferry/config");
    unsetenv("XDG_CONFIG_HOME");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_bar),
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_bar_width),
        cmocka_unit_test(test_bar_aligned),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_cliconf),
        cmocka_unit_test_setup_teardown(test_state, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
