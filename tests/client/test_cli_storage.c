/*
 * test_cli_storage.c - the relay's storage failing under a running `ferry
 * send --retry`, through the real ferryd on 127.0.0.1 (issue 21, defects 1
 * and 2; docs/reliability.md, "What each failure does"):
 *   - a disk that fills (a small tmpfs, root only, in a mount namespace of
 *     this test's own) while 300 small files are sent, and empties a few
 *     seconds later: every file acknowledged, exit 0, all identical at a
 *     receiver, and the log clean (`ferry check`);
 *   - the same with the fault injected part way through a batch
 *     (FERRY_TEST_WRITE_FAIL, no root), as ENOSPC and as EIO (which used to
 *     be FY_EINTERNAL: exit 3, never retried);
 *   - an fdatasync that fails (FERRY_TEST_SYNC_FAIL_AFTER) at a segment
 *     roll whose batch holds file-ends: those files are not acknowledged,
 *     the channel closes and cuts its log back to the last good sync, the
 *     sender comes back (FY_ESTORAGE, retried) and resends them, and a
 *     live receiver that had them is reconciled: every file once, the log
 *     clean.  (The --fsync interval case: test_relay_flow.)
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define T_MS 120000
#define NSMALL 300

/* NSMALL small files (2..14 KiB) in t->dir/src; their SHA-256s. */
static void make_small(fy_ct *t, uint8_t sha[][32], const char **argv, char (*paths)[FY_CT_PATH])
{
    char dir[FY_CT_PATH];
    fy_ct_mkdir(fy_ct_path(t, "src", dir));
    assert_true(strlen(dir) + 16 < FY_CT_PATH);
    for (int i = 0; i < NSMALL; i++) {
        snprintf(paths[i], FY_CT_PATH, "%.900s/f%03d.bin", dir, i);
        fy_ct_make_file(paths[i], 2048 + (uint64_t)(i * 7919) % 12288, 1000 + (uint64_t)i, sha[i]);
        argv[i] = paths[i];
    }
    argv[NSMALL] = NULL;
}

/* Every file of make_small at out, byte-identical, none missing. */
static void expect_all(fy_ct *t, const char *channel, uint8_t sha[][32])
{
    char out[FY_CT_PATH], p[FY_CT_PATH + 32];
    char count[16];
    snprintf(count, sizeof count, "%d", NSMALL);
    fy_ct_path(t, "out", out);
    const char *more[] = {"--from-start", "--count", count, "--quiet", NULL};
    pid_t r = fy_ct_recv(t, "recv", channel, out, more);
    fy_ct_expect_exit(t, r, "recv", T_MS, 0);
    for (int i = 0; i < NSMALL; i++) {
        snprintf(p, sizeof p, "%s/f%03d.bin", out, i);
        fy_ct_assert_same(p, sha[i]);
    }
}

/* `ferry check` of the data directory: clean. */
static void expect_clean(fy_ct *t, const char *channel)
{
    (void)channel;
    const char *argv[] = {"check", "--data", t->data, NULL};
    fy_ct_expect_exit(t, fy_ct_spawn(t, "check", argv), "check", T_MS, 0);
}

/* Fill dir's filesystem up to `leave` free bytes with one file (its path
 * into path). */
static void fill_fs(const char *dir, uint64_t leave, char *path, size_t cap)
{
    struct statvfs sv;
    assert_int_equal(statvfs(dir, &sv), 0);
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    snprintf(path, cap, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static uint8_t zero[1 << 16];
    for (uint64_t put = 0; avail > leave && put < avail - leave; put += sizeof zero)
        if (write(fd, zero, sizeof zero) != (ssize_t)sizeof zero)
            break;
    close(fd);
}

/* A send of NSMALL files with a retry budget that outlasts a few seconds
 * of a full disk (the harness's fy_ct_send takes fewer arguments). */
static pid_t send_small(fy_ct *t, const char *channel, const char **files)
{
    const char *argv[NSMALL + 16];
    int n = 0;
    argv[n++] = "send";
    argv[n++] = "--server";
    argv[n++] = t->daemon.addr;
    argv[n++] = "--channel";
    argv[n++] = channel;
    argv[n++] = "--retries";
    argv[n++] = "30";
    argv[n++] = "--quiet";
    for (int i = 0; files[i]; i++)
        argv[n++] = files[i];
    argv[n] = NULL;
    return fy_ct_spawn(t, "send", argv);
}

/* ---- a real full disk --------------------------------------------------------- */

/* The disk fills before the send starts and empties 3 s later: the send
 * waits (FY_ENOSPACE is "try again later"), then stores every file. */
static void test_enospc_real(void **st)
{
    fy_ct *t = *st;
    if (geteuid() != 0) {
        fprintf(stderr, "test_enospc_real: skipped, needs root to mount a tmpfs\n");
        skip();
    }
    /* A mount namespace of our own: the tmpfs goes away with this process
     * whatever happens, and nobody else sees it. */
    assert_int_equal(unshare(CLONE_NEWNS), 0);
    assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    fy_ct_mkdir(t->data);
    assert_int_equal(mount("tmpfs", t->data, "tmpfs", 0, "size=8m"), 0);

    static uint8_t sha[NSMALL][32];
    static char paths[NSMALL][FY_CT_PATH];
    const char *files[NSMALL + 1];
    make_small(t, sha, files, paths);
    fy_ct_daemon_start(t, NULL);
    char filler[FY_CT_PATH + 16];
    fill_fs(t->data, 400u << 10, filler, sizeof filler); /* room for ~50 of the files */

    pid_t s = send_small(t, "full", files);
    fy_ct_sleep_ms(3000);
    assert_true(fy_ct_running(s)); /* waiting for room, not failed */
    assert_int_equal(unlink(filler), 0);
    fy_ct_expect_exit(t, s, "send", T_MS, 0);
    char p[FY_CT_PATH];
    assert_true(fy_ct_contains(fy_ct_path(t, "send.out", p), "files=300 "));
    expect_all(t, "full", sha);
    fy_ct_daemon_stop(t);
    expect_clean(t, "full");
    umount2(t->data, MNT_DETACH);
}

/* ---- injected faults ------------------------------------------------------------- */

/* ferryd with FERRY_TEST_WRITE_FAIL=spec: appends fail with ERR after N
 * bytes (the first one part way, a torn tail) for MS milliseconds.  The
 * send gets "try again later", retries, and stores every file; the log
 * after the failure goes on cleanly. */
static void write_fault(fy_ct *t, const char *spec, const char *channel)
{
    static uint8_t sha[NSMALL][32];
    static char paths[NSMALL][FY_CT_PATH];
    const char *files[NSMALL + 1];
    make_small(t, sha, files, paths);
    setenv("FERRY_TEST_WRITE_FAIL", spec, 1);
    fy_ct_daemon_start(t, NULL);
    unsetenv("FERRY_TEST_WRITE_FAIL");
    pid_t s = send_small(t, channel, files);
    fy_ct_expect_exit(t, s, "send", T_MS, 0);
    char p[FY_CT_PATH];
    assert_true(fy_ct_contains(fy_ct_path(t, "send.out", p), "files=300 "));
    assert_true(fy_ct_contains(fy_ct_path(t, "send.err", p), "connection to relay lost: reconnecting"));
    assert_true(fy_ct_contains(fy_ct_path(t, "ferryd-0.log", p), "fy_log_append failed"));
    assert_false(fy_ct_contains(p, "file digest mismatch")); /* issue 21: it used to be */
    expect_all(t, channel, sha);
    fy_ct_daemon_stop(t);
    expect_clean(t, channel);
}

/* A full disk part way through a batch of many small files (the issue's
 * case: it used to end in FY_EDIGEST and exit 4). */
static void test_enospc_injected(void **st)
{
    write_fault(*st, "ENOSPC:600000:1500", "nospc");
}

/* An I/O error on a write: FY_ESTORAGE, exit-2 class, retried (it used to
 * be FY_EINTERNAL: exit 3 "refused", never retried). */
static void test_eio_injected(void **st)
{
    write_fault(*st, "EIO:600000:1500", "eio");
}

/* The roll's seal fails (the second sync job: the first is a.bin's
 * file-end): b.bin is not acknowledged on it, the channel closes and cuts
 * its log back to a.bin's end, and `ferry send --retry` resends b.bin from
 * there: every file identical at a receiver, the log clean. */
static void test_sync_fail_roll(void **st)
{
    fy_ct *t = *st;
    enum { N = 4 };
    uint8_t sha[N][32];
    char dir[FY_CT_PATH], paths[N][FY_CT_PATH + 16];
    fy_ct_mkdir(fy_ct_path(t, "src", dir));
    const char *argv[N + 16] = {"send", "--server", NULL, "--channel", "roll", "--quiet"};
    int n = 6;
    for (int i = 0; i < N; i++) {
        snprintf(paths[i], sizeof paths[i], "%.900s/f%03d.bin", dir, i);
        fy_ct_make_file(paths[i], 200000, 77 + (uint64_t)i, sha[i]);
        argv[n++] = paths[i];
    }
    argv[n] = NULL;
    const char *args[] = {"--max-payload", "65536", "--segment-bytes", "262144", NULL};
    setenv("FERRY_TEST_SYNC_FAIL_AFTER", "1", 1);
    fy_ct_daemon_start(t, args);
    unsetenv("FERRY_TEST_SYNC_FAIL_AFTER");
    argv[2] = t->daemon.addr;
    /* A live receiver gets frames past the durable end before the failure
     * is known; it is cut, and reconciled when it comes back (the epochs
     * rule: ahead of the log). */
    char p[FY_CT_PATH], out[2][FY_CT_PATH], f[FY_CT_PATH + 32];
    fy_ct_path(t, "live", out[0]);
    const char *live[] = {"--quiet", NULL}; /* (--count would count a file sent again twice) */
    pid_t r = fy_ct_recv(t, "live", "roll", out[0], live);
    fy_ct_sleep_ms(300); /* subscribed before the send */
    pid_t s = fy_ct_spawn(t, "send", argv);
    fy_ct_expect_exit(t, s, "send", T_MS, 0);
    assert_true(fy_ct_contains(fy_ct_path(t, "ferryd-0.log", p), "log cut back to its last good sync"));
    assert_true(fy_ct_contains(p, "err=FY_ESTORAGE"));
    bool all = false;
    for (int i = 0; i < 300 && !all; i++) { /* at most 30 s */
        all = true;
        for (int k = 0; k < N && all; k++) {
            uint8_t got[32];
            snprintf(f, sizeof f, "%.900s/f%03d.bin", out[0], k);
            all = fy_ct_sha_file(f, got) == 0 && !memcmp(got, sha[k], 32);
        }
        if (!all)
            fy_ct_sleep_ms(100);
    }
    assert_true(all);
    fy_ct_kill(r, SIGTERM);
    fy_ct_expect_exit(t, r, "live", T_MS, 130);
    fy_ct_path(t, "out", out[1]);
    const char *more[] = {"--from-start", "--count", "4", "--quiet", NULL};
    fy_ct_expect_exit(t, fy_ct_recv(t, "recv", "roll", out[1], more), "recv", T_MS, 0);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N; i++) {
            snprintf(f, sizeof f, "%.900s/f%03d.bin", out[k], i);
            fy_ct_assert_same(f, sha[i]);
        }
    fy_ct_daemon_stop(t);
    expect_clean(t, "roll");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enospc_real, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_enospc_injected, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_eio_injected, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_sync_fail_roll, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
