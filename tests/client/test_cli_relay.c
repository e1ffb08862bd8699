/*
 * test_cli_relay.c - the client against the relay's rules and its disk,
 * with a real ferryd on 127.0.0.1: a second sender on a busy channel is
 * refused (exit 3, FY_EBUSY), a wrong token is refused (exit 3, FY_EAUTH),
 * a relay restarted between files still serves the old files, and
 * `ferry check` finds a data directory clean after a run and reports a
 * flipped byte in a segment; `ferry send -` (standard input) and the output
 * switches --json, --quiet and --progress (at 50 columns).
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/conn.h"
#include "ferry/proto.h"
#include "harness.h"

#define T_MS 60000

static int send1(fy_ct *t, const char *tag, const char *channel, const char *file, const char *token)
{
    return fy_ct_wait(t,
                      fy_ct_send(t, tag, channel,
                                 (const char *[]){file, token ? "--token" : NULL, token, NULL}),
                      T_MS);
}

/* Every line of file path: a JSON object ({...}, one a line); how many. */
static int json_lines(const char *path)
{
    char buf[8192];
    fy_ct_slurp(path, buf, sizeof buf);
    int n = 0;
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
        size_t len = strlen(l);
        if (len < 2 || l[0] != '{' || l[len - 1] != '}' || strchr(l + 1, '{'))
            return -1;
        /* "key":value pairs: quotes balanced outside escapes */
        int q = 0;
        for (size_t i = 0; i < len; i++) {
            if (l[i] == '\\')
                i++;
            else if (l[i] == '"')
                q ^= 1;
        }
        if (q)
            return -1;
        n++;
    }
    return n;
}

/* `ferry send -` reads standard input (--name required), and the output
 * switches: --json (one object per file and a total), --quiet (no bar,
 * key=value lines), --progress (the bar, even into a file; no line wider
 * than $COLUMNS). */
static void test_stdin_and_output(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4], buf[8192];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "in.bin", src), 3000000, 7, sha);
    const char *addr = t->daemon.addr;

    /* - without --name, --name without -: usage errors */
    pid_t pid = fy_ct_spawn_prog(t, "s-noname", NULL, src,
                                 (const char *[]){"send", "--server", addr, "--channel", "in",
                                                  "-", NULL});
    fy_ct_expect_exit(t, pid, "s-noname", T_MS, 64);
    pid = fy_ct_spawn_prog(t, "s-nodash", NULL, NULL,
                           (const char *[]){"send", "--server", addr, "--channel", "in", "--name",
                                            "x", src, NULL});
    fy_ct_expect_exit(t, pid, "s-nodash", T_MS, 64);

    /* stdin, as JSON: one object for the file, one for the total */
    pid = fy_ct_spawn_prog(t, "s-json", NULL, src,
                           (const char *[]){"send", "--server", addr, "--channel", "in", "--json",
                                            "--name", "piped.bin", "-", NULL});
    fy_ct_expect_exit(t, pid, "s-json", T_MS, 0);
    snprintf(p, sizeof p, "%s/s-json.out", t->dir);
    assert_int_equal(json_lines(p), 2);
    fy_ct_slurp(p, buf, sizeof buf);
    assert_non_null(strstr(buf, "{\"type\":\"file\",\"file\":\"piped.bin\",\"bytes\":3000000,"));
    assert_non_null(strstr(buf, "{\"type\":\"total\",\"files\":1,\"bytes\":3000000,"));
    assert_non_null(strstr(buf, "\"status\":\"ok\"}"));

    /* --quiet: the key=value lines, no bar */
    pid = fy_ct_spawn_prog(t, "s-quiet", NULL, NULL,
                           (const char *[]){"send", "--server", addr, "--channel", "in", "--quiet",
                                            src, NULL});
    fy_ct_expect_exit(t, pid, "s-quiet", T_MS, 0);
    snprintf(p, sizeof p, "%s/s-quiet.out", t->dir);
    assert_true(fy_ct_contains(p, "file=in.bin bytes=3000000 "));
    assert_true(fy_ct_contains(p, "files=1 bytes=3000000 "));
    snprintf(p, sizeof p, "%s/s-quiet.err", t->dir);
    assert_int_equal(fy_ct_size(p), 0);

    /* --progress into a file, 50 columns: bar redraws, none wider than 49 */
    setenv("COLUMNS", "50", 1);
    pid = fy_ct_spawn_prog(t, "s-bar", NULL, NULL,
                           (const char *[]){"send", "--server", addr, "--channel", "in",
                                            "--progress", "--chunk", "4K", "--force", src,
                                            NULL}); /* --force: in.bin again, not deduped */
    unsetenv("COLUMNS");
    fy_ct_expect_exit(t, pid, "s-bar", T_MS, 0);
    snprintf(p, sizeof p, "%s/s-bar.out", t->dir);
    assert_int_equal(fy_ct_size(p), 0); /* the bar replaces the lines */
    snprintf(p, sizeof p, "%s/s-bar.err", t->dir);
    fy_ct_slurp(p, buf, sizeof buf);
    int draws = 0;
    for (char *l = strtok(buf, "\r\n"); l; l = strtok(NULL, "\r\n")) {
        char *esc = strstr(l, "\033[K");
        size_t bytes = esc ? (size_t)(esc - l) : strlen(l), len = 0;
        for (size_t i = 0; i < bytes; i++) /* columns: a cut name's ellipsis is 3 bytes, 1 column */
            len += ((unsigned char)l[i] & 0xC0) != 0x80;
        if (len > 49)
            fprintf(stderr, "bar line of %zu columns: %s\n", len, l);
        assert_true(len <= 49);
        draws += strstr(l, "in.bin") != NULL;
    }
    assert_true(draws >= 2);

    /* the received copy of stdin is the file; --json on recv too */
    fy_ct_path(t, "out", out);
    fy_ct_expect_exit(t,
                      fy_ct_recv(t, "r-json", "in", out,
                                 (const char *[]){"--from-start", "--count", "3", "--json", NULL}),
                      "r-json", T_MS, 0);
    snprintf(p, sizeof p, "%s/r-json.out", t->dir);
    assert_int_equal(json_lines(p), 4);
    snprintf(p, sizeof p, "%s/piped.bin", out);
    fy_ct_assert_same(p, sha);
    fy_ct_daemon_stop(t);
}

static void test_busy_channel(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    /* The first sender holds the channel (connected, welcomed, idle). */
    fy_cli_conn *k;
    fy_welcome w;
    fy_ct_hold_sender(t, "busy", &k, &w);
    char src[FY_CT_PATH], p[FY_CT_PATH * 4];
    fy_ct_make_file(fy_ct_path(t, "x.bin", src), 1000, 1, NULL);
    int rc = send1(t, "send", "busy", src, NULL);
    snprintf(p, sizeof p, "%s/send.err", t->dir);
    if (rc != 3)
        fy_ct_dump(p);
    assert_int_equal(rc, 3);
    assert_true(fy_ct_contains(p, "code=FY_EBUSY"));
    assert_true(fy_ct_contains(p, "refused by relay"));
    fy_cli_conn_close(k, true);
    fy_ct_daemon_stop(t);
}

static void test_wrong_token(void **state)
{
    fy_ct *t = *state;
    char auth[FY_CT_PATH], src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    FILE *f = fopen(fy_ct_path(t, "auth", auth), "w");
    assert_non_null(f);
    fputs("# test tokens\npub-secret publish sec*\nsub-secret subscribe sec*\n", f);
    fclose(f);
    fy_ct_daemon_start(t, (const char *[]){"--auth", auth, NULL});
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "t.bin", src), 5000, 1, sha);
    assert_int_equal(send1(t, "s-bad", "secure", src, "wrong"), 3);
    snprintf(p, sizeof p, "%s/s-bad.err", t->dir);
    assert_true(fy_ct_contains(p, "code=FY_EAUTH"));
    assert_int_equal(send1(t, "s-none", "secure", src, NULL), 3);
    /* a subscribe token cannot publish */
    assert_int_equal(send1(t, "s-sub", "secure", src, "sub-secret"), 3);
    fy_ct_path(t, "out", out);
    fy_ct_expect_exit(t,
                      fy_ct_recv(t, "r-bad", "secure", out,
                                 (const char *[]){"--token", "pub-secret", NULL}),
                "r-bad", T_MS, 3);
    /* the right tokens work */
    assert_int_equal(send1(t, "s-ok", "secure", src, "pub-secret"), 0);
    fy_ct_expect_exit(t,
                      fy_ct_recv(t, "r-ok", "secure", out,
                                 (const char *[]){"--token", "sub-secret", "--from-start",
                                                  "--count", "1", NULL}),
                "r-ok", T_MS, 0);
    snprintf(p, sizeof p, "%s/t.bin", out);
    fy_ct_assert_same(p, sha);
    fy_ct_daemon_stop(t);
}

static void test_restart_between_files(void **state)
{
    fy_ct *t = *state;
    char a[FY_CT_PATH], b[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sa[32], sb[32];
    fy_ct_make_file(fy_ct_path(t, "a.bin", a), 5 << 20, 1, sa);
    fy_ct_make_file(fy_ct_path(t, "b.bin", b), 123457, 2, sb);
    fy_ct_daemon_start(t, NULL);
    assert_int_equal(send1(t, "s1", "keep", a, NULL), 0);
    fy_ct_daemon_stop(t);
    fy_ct_daemon_start(t, NULL); /* same data directory, new port */
    assert_int_equal(send1(t, "s2", "keep", b, NULL), 0);
    fy_ct_path(t, "out", out);
    fy_ct_expect_exit(t,
                      fy_ct_recv(t, "recv", "keep", out,
                                 (const char *[]){"--from-start", "--count", "2", NULL}),
                "recv", T_MS, 0);
    snprintf(p, sizeof p, "%s/a.bin", out);
    fy_ct_assert_same(p, sa);
    snprintf(p, sizeof p, "%s/b.bin", out);
    fy_ct_assert_same(p, sb);
    fy_ct_daemon_stop(t);
}

/* The first .log segment of channel `ch` in the data dir. */
static void first_segment(fy_ct *t, const char *ch, char *out)
{
    char dir[FY_CT_PATH + 64];
    snprintf(dir, sizeof dir, "%s/channels/%s", t->data, ch);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    out[0] = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".log") && (!out[0] || strcmp(e->d_name, out) < 0))
            snprintf(out, 256, "%s", e->d_name);
    }
    closedir(d);
    assert_true(out[0] != 0);
}

static void test_check(void **state)
{
    fy_ct *t = *state;
    char src[FY_CT_PATH], p[FY_CT_PATH * 4], seg[256], path[FY_CT_PATH + 400];
    fy_ct_make_file(fy_ct_path(t, "c.bin", src), 3 << 20, 1, NULL);
    fy_ct_daemon_start(t, NULL);
    assert_int_equal(send1(t, "send", "chk", src, NULL), 0);
    assert_int_equal(send1(t, "send2", "other", src, NULL), 0);
    /* While ferryd holds the directory, check says so and checks nothing. */
    fy_ct_expect_exit(t,
                      fy_ct_spawn(t, "check0", (const char *[]){"check", "--data", t->data, NULL}),
                      "check0", T_MS, 2);
    snprintf(p, sizeof p, "%s/check0.out", t->dir);
    assert_true(fy_ct_contains(p, "check=busy pid="));
    assert_false(fy_ct_contains(p, "channel="));
    fy_ct_daemon_stop(t);

    fy_ct_expect_exit(t,
                      fy_ct_spawn(t, "check1", (const char *[]){"check", "--data", t->data, NULL}),
                      "check1", T_MS, 0);
    snprintf(p, sizeof p, "%s/check1.out", t->dir);
    assert_true(fy_ct_contains(p, "channel=chk status=ok"));
    assert_true(fy_ct_contains(p, "channel=other status=ok"));
    assert_true(fy_ct_contains(p, "check=ok channels=2 damaged=0"));

    /* Flip one byte in the middle of the data (a payload byte of a data frame). */
    first_segment(t, "chk", seg);
    snprintf(path, sizeof path, "%s/channels/chk/%s", t->data, seg);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = (off_t)(fy_ct_size(path) / 2);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x5a;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
    fy_ct_expect_exit(t,
                      fy_ct_spawn(t, "check2", (const char *[]){"check", "--data", t->data, NULL}),
                      "check2", T_MS, 1);
    snprintf(p, sizeof p, "%s/check2.out", t->dir);
    assert_true(fy_ct_contains(p, "channel=chk status=damaged"));
    assert_true(fy_ct_contains(p, "channel=other status=ok"));
    assert_true(fy_ct_contains(p, "check=damaged channels=2 damaged=1"));
    /* the damaged channel's line counts the error */
    char buf[4096];
    fy_ct_slurp(p, buf, sizeof buf);
    char *line = strstr(buf, "channel=chk ");
    char *eol = line ? strchr(line, '\n') : NULL;
    assert_non_null(eol);
    *eol = 0;
    assert_null(strstr(line, "crc_errors=0 index_errors=0"));
}

/* `ferry demo` end to end, small: its receivers are threads, so this is
 * also the ThreadSanitizer run of the client's threaded code. */
static void test_demo(void **state)
{
    fy_ct *t = *state;
    char p[FY_CT_PATH * 4];
    setenv("FERRYD", FERRYD_PATH, 1);
    setenv("TMPDIR", t->dir, 1);
    int rc = fy_ct_run(t, "demo", (const char *[]){"demo", "--size", "8M", NULL}, T_MS);
    unsetenv("TMPDIR");
    snprintf(p, sizeof p, "%s/demo.out", t->dir);
    if (rc != 0) {
        fy_ct_dump(p);
        snprintf(p, sizeof p, "%s/demo.err", t->dir);
        fy_ct_dump(p);
    }
    assert_int_equal(rc, 0);
    assert_true(fy_ct_contains(p, "demo=ok bytes=8388608 receivers=3 "));
    assert_true(fy_ct_contains(p, " verified=3\n"));
    /* it removed its temp directory: only our own files are left in t->dir */
    snprintf(p, sizeof p, "%s", t->dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        assert_null(strstr(e->d_name, "ferry-demo-"));
    closedir(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stdin_and_output, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_busy_channel, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_token, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_restart_between_files, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_check, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_demo, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
