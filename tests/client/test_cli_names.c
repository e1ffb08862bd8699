/*
 * test_cli_names.c - a receiver's temp files (src/cli/partfile.c): file
 * names of 250-255 bytes are received (".NAME.part" would not fit), and a
 * symlink planted at the temp name or at the final name is never followed.
 * The unit half calls fy_cli_part_* on a temp directory; the end-to-end
 * half runs the real ferry and ferryd on 127.0.0.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/partfile.h"
#include "harness.h"

#define T_MS 60000

/* A valid file name of n bytes (n <= 255). */
static void long_name(char *out, size_t n, char fill)
{
    memset(out, fill, n);
    memcpy(out, "long-", 5);
    out[n] = 0;
}

static int open_dir(fy_ct *t, const char *name, char *path)
{
    fy_ct_mkdir(fy_ct_path(t, name, path));
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* Temp names always fit, stay the same for the same name, and differ for
 * two long names that share their first 200 bytes. */
static void test_part_names(void **state)
{
    (void)state;
    char n1[256], n2[256], t1[FY_CLI_PART_NAME_CAP], t2[FY_CLI_PART_NAME_CAP];

    assert_int_equal(fy_cli_part_name("a.bin", t1, sizeof t1), 0);
    assert_string_equal(t1, ".a.bin.part");
    long_name(n1, 249, 'x');
    assert_int_equal(fy_cli_part_name(n1, t1, sizeof t1), 0);
    assert_int_equal(strlen(t1), 255); /* ".NAME.part" still fits */
    for (size_t n = 250; n <= 255; n++) {
        long_name(n1, n, 'y');
        long_name(n2, n, 'y');
        n2[n - 1] = 'z';
        assert_int_equal(fy_cli_part_name(n1, t1, sizeof t1), 0);
        assert_int_equal(fy_cli_part_name(n2, t2, sizeof t2), 0);
        assert_true(strlen(t1) <= 255);
        assert_true(t1[0] == '.' && strstr(t1, "~") && strstr(t1, ".part"));
        assert_string_not_equal(t1, t2);
        assert_int_equal(fy_cli_part_name(n1, t2, sizeof t2), 0);
        assert_string_equal(t1, t2);
    }
    /* A UTF-8 character is never cut in two at the prefix's end. */
    memset(n1, 'a', 255);
    n1[255] = 0;
    memcpy(n1 + 199, "\xc3\xa9", 2); /* bytes 199-200: one character */
    assert_int_equal(fy_cli_part_name(n1, t1, sizeof t1), 0);
    assert_int_equal(strchr(t1, '~') - t1, 1 + 199);
    assert_int_equal(fy_cli_part_name("", t1, sizeof t1), -EINVAL);
}

/* Symlinks, FIFOs and hard links at the temp name are replaced or
 * refused, never written through; commit replaces a symlink at the final
 * name instead of following it. */
static void test_part_planted(void **state)
{
    fy_ct *t = *state;
    char dir[FY_CT_PATH], victim[FY_CT_PATH], p[FY_CT_PATH * 2];
    const char *call;
    fy_cli_part pf;
    uint64_t size;

    int dfd = open_dir(t, "d", dir);
    fy_ct_path(t, "victim", victim);
    int v = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(v >= 0 && write(v, "keep", 4) == 4);
    close(v);

    fy_cli_part_init(&pf);
    snprintf(p, sizeof p, "%s/.a.bin.part", dir);
    assert_int_equal(symlink(victim, p), 0);
    assert_int_equal(fy_cli_part_reopen(&pf, dfd, "a.bin", &size), -ELOOP);
    assert_false(fy_cli_part_active(&pf));
    assert_int_equal(fy_cli_part_open(&pf, dfd, "a.bin", &call), 0);
    assert_int_equal(write(pf.fd, "new!", 4), 4);
    /* A symlink at the final name is replaced by the file. */
    snprintf(p, sizeof p, "%s/a.bin", dir);
    assert_int_equal(symlink(victim, p), 0);
    assert_int_equal(fy_cli_part_commit(&pf, &call), 0);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 4);
    char buf[16];
    assert_string_equal(fy_ct_slurp(victim, buf, sizeof buf), "keep");

    /* A hard link to another file and a FIFO: refused by reopen. */
    snprintf(p, sizeof p, "%s/.h.bin.part", dir);
    assert_int_equal(link(victim, p), 0);
    assert_int_equal(fy_cli_part_reopen(&pf, dfd, "h.bin", &size), -EINVAL);
    snprintf(p, sizeof p, "%s/.f.bin.part", dir);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_true(fy_cli_part_reopen(&pf, dfd, "f.bin", &size) < 0);
    assert_int_equal(fy_cli_part_open(&pf, dfd, "f.bin", &call), 0);
    fy_cli_part_discard(&pf);
    assert_int_equal(fy_ct_size(p), -1);
    assert_string_equal(fy_ct_slurp(victim, buf, sizeof buf), "keep");

    /* Our own partial file of a long name is found again after a restart. */
    char n[256];
    long_name(n, 255, 'q');
    assert_int_equal(fy_cli_part_open(&pf, dfd, n, &call), 0);
    assert_int_equal(write(pf.fd, "12345", 5), 5);
    close(pf.fd); /* a crash: the temp file stays */
    fy_cli_part_init(&pf);
    assert_int_equal(fy_cli_part_reopen(&pf, dfd, n, &size), 0);
    assert_int_equal(size, 5);
    assert_int_equal(write(pf.fd, "6", 1), 1);
    assert_int_equal(fy_cli_part_commit(&pf, &call), 0);
    snprintf(p, sizeof p, "%s/%s", dir, n);
    assert_int_equal(fy_ct_size(p), 6);
    close(dfd);
}

/* ferry recv gets files named with 250 and 255 bytes (it exited 5 on
 * them: ".NAME.part" too long), through a symlink planted at a temp name
 * that writes nothing outside DIR. */
static void test_recv_long_names(void **state)
{
    fy_ct *t = *state;
    char n250[256], n255[256], src[2][FY_CT_PATH], out[FY_CT_PATH], victim[FY_CT_PATH];
    char p[FY_CT_PATH * 2], tmp[FY_CLI_PART_NAME_CAP], buf[16];
    uint8_t sha[2][32];

    fy_ct_daemon_start(t, NULL);
    long_name(n250, 250, 'm');
    long_name(n255, 255, 'n');
    fy_ct_make_file(fy_ct_path(t, n250, src[0]), 300000, 1, sha[0]);
    fy_ct_make_file(fy_ct_path(t, n255, src[1]), 200000, 2, sha[1]);
    fy_ct_mkdir(fy_ct_path(t, "out", out));
    fy_ct_path(t, "victim", victim);
    int v = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(v >= 0 && write(v, "keep", 4) == 4);
    close(v);
    assert_int_equal(fy_cli_part_name(n255, tmp, sizeof tmp), 0);
    snprintf(p, sizeof p, "%s/%s", out, tmp);
    assert_int_equal(symlink(victim, p), 0);

    pid_t tx = fy_ct_send(t, "send", "names", (const char *[]){src[0], src[1], NULL});
    fy_ct_expect_exit(t, tx, "send", T_MS, 0);
    pid_t rx = fy_ct_recv(t, "recv", "names", out,
                          (const char *[]){"--from-start", "--count", "2", NULL});
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    snprintf(p, sizeof p, "%s/%s", out, n250);
    fy_ct_assert_same(p, sha[0]);
    snprintf(p, sizeof p, "%s/%s", out, n255);
    fy_ct_assert_same(p, sha[1]);
    assert_string_equal(fy_ct_slurp(victim, buf, sizeof buf), "keep");
    snprintf(p, sizeof p, "%s/%s", out, tmp);
    struct stat st;
    assert_int_equal(lstat(p, &st), -1); /* the planted link went with the temp file */
    fy_ct_daemon_stop(t);
}

/* A symlink planted at DIR/.NAME.part (the old name scheme's temp name,
 * still used for short names) is not followed by a live receiver. */
static void test_recv_planted_part(void **state)
{
    fy_ct *t = *state;
    char src[FY_CT_PATH], out[FY_CT_PATH], victim[FY_CT_PATH], p[FY_CT_PATH * 2], buf[16];
    uint8_t sha[32];

    fy_ct_daemon_start(t, NULL);
    fy_ct_make_file(fy_ct_path(t, "b.bin", src), 500000, 3, sha);
    fy_ct_mkdir(fy_ct_path(t, "out", out));
    fy_ct_path(t, "victim", victim);
    int v = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(v >= 0 && write(v, "keep", 4) == 4);
    close(v);
    snprintf(p, sizeof p, "%s/.b.bin.part", out);
    assert_int_equal(symlink(victim, p), 0);
    pid_t tx = fy_ct_send(t, "send", "plant", (const char *[]){src, NULL});
    fy_ct_expect_exit(t, tx, "send", T_MS, 0);
    pid_t rx = fy_ct_recv(t, "recv", "plant", out,
                          (const char *[]){"--from-start", "--count", "1", NULL});
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    snprintf(p, sizeof p, "%s/b.bin", out);
    fy_ct_assert_same(p, sha);
    assert_string_equal(fy_ct_slurp(victim, buf, sizeof buf), "keep");
    assert_int_equal(fy_ct_size(victim), 4);
    fy_ct_daemon_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_part_names),
        cmocka_unit_test_setup_teardown(test_part_planted, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_recv_long_names, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_recv_planted_part, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
