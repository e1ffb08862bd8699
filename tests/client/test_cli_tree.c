/*
 * test_cli_tree.c - directory trees, path names, sparse files, resuming
 * across runs and --on-conflict, through a real ferryd on 127.0.0.1:
 * `ferry send -r` of a tree with a 64 MiB sparse file, UTF-8 names, spaces
 * and parentheses and a nested directory arrives identical (find -printf
 * of size, mode and mtime, cmp), and stays sparse on the relay's disk and
 * at the receiver; the relay and the receiver refuse unsafe names; a send
 * interrupted with SIGINT half-way and run again is never FY_EBUSY and
 * continues from what the relay stored (at most 1.1x the file on the
 * link in all); a receiver never overwrites a different file silently; a
 * file the channel already holds is not stored again unless --force.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/conn.h"
#include "cli/tree.h"
#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/proto.h"
#include "harness.h"

#define T_MS 120000
#define MIB (1ll << 20)

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void set_mtime(const char *path, time_t sec, long nsec)
{
    struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Bytes the file system holds for path (du), or -1. */
static long long disk_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

/* du -s of a directory tree, in bytes. */
static long long du_bytes(fy_ct *t, const char *dir)
{
    char cmd[FY_CT_PATH * 8], out[FY_CT_PATH], buf[64];
    snprintf(out, sizeof out, "%s/du.txt", t->dir);
    snprintf(cmd, sizeof cmd, "du -s -B1 '%s' > '%s'", dir, out);
    assert_int_equal(system(cmd), 0);
    return atoll(fy_ct_slurp(out, buf, sizeof buf));
}

/* `find DIR -type f -printf '%P %s %m %T@\n' | sort` into file out. */
static void listing(const char *dir, const char *out)
{
    char cmd[FY_CT_PATH * 8];
    snprintf(cmd, sizeof cmd, "cd '%s' && find . -type f -printf '%%P %%s %%m %%T@\\n' | "
             "LC_ALL=C sort > '%s'", dir, out);
    assert_int_equal(system(cmd), 0);
}

static void assert_cmp(const char *a, const char *b)
{
    char cmd[FY_CT_PATH * 8];
    snprintf(cmd, sizeof cmd, "cmp '%s' '%s'", a, b);
    assert_int_equal(system(cmd), 0);
}

/* The source tree: tree/my report (v2).txt, tree/résumé.txt (0640),
 * tree/sub/y.txt (0700, an old mtime), tree/sub/deeper/sparse.img (64 MiB:
 * two 1 MiB data islands, the rest hole). */
static void make_tree(fy_ct *t, char *tree)
{
    char p[FY_CT_PATH * 2];
    fy_ct_path(t, "tree", tree);
    fy_ct_mkdir(tree);
    snprintf(p, sizeof p, "%s/sub", tree);
    fy_ct_mkdir(p);
    snprintf(p, sizeof p, "%s/sub/deeper", tree);
    fy_ct_mkdir(p);
    snprintf(p, sizeof p, "%s/my report (v2).txt", tree);
    fy_ct_make_file(p, 300000, 11, NULL);
    set_mtime(p, 1600000000, 123456789);
    snprintf(p, sizeof p, "%s/r\xc3\xa9sum\xc3\xa9.txt", tree);
    put(p, "caf\xc3\xa9\n");
    assert_int_equal(chmod(p, 0640), 0);
    snprintf(p, sizeof p, "%s/sub/y.txt", tree);
    put(p, "y\n");
    assert_int_equal(chmod(p, 0700), 0);
    set_mtime(p, 1000000000, 5);
    snprintf(p, sizeof p, "%s/sub/deeper/sparse.img", tree);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 64 * MIB), 0);
    static char island[MIB];
    memset(island, 0x5a, sizeof island);
    assert_int_equal(pwrite(fd, island, sizeof island, 8 * MIB), (ssize_t)sizeof island);
    assert_int_equal(pwrite(fd, island, sizeof island, 40 * MIB), (ssize_t)sizeof island);
    assert_int_equal(close(fd), 0);
}

static void test_tree_sparse(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char tree[FY_CT_PATH], out[FY_CT_PATH], a[FY_CT_PATH], b[FY_CT_PATH], p[FY_CT_PATH * 2],
        q[FY_CT_PATH * 2];
    make_tree(t, tree);
    snprintf(p, sizeof p, "%s/sub/deeper/sparse.img", tree);
    if (disk_bytes(p) > 8 * MIB) {
        fprintf(stderr, "skipped: the temp file system does not keep files sparse\n");
        fy_ct_daemon_stop(t);
        return;
    }
    pid_t tx = fy_ct_send(t, "send", "tree", (const char *[]){"-r", tree, NULL});
    fy_ct_expect_exit(t, tx, "send", T_MS, 0);
    fy_ct_path(t, "out", out);
    pid_t rx = fy_ct_recv(t, "recv", "tree", out,
                          (const char *[]){"--from-start", "--count", "4", NULL});
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);

    /* names, sizes, modes and mtimes (ns) as sent */
    snprintf(p, sizeof p, "%s/tree", out);
    listing(tree, fy_ct_path(t, "src.lst", a));
    listing(p, fy_ct_path(t, "dst.lst", b));
    char la[4096], lb[4096];
    fy_ct_slurp(a, la, sizeof la);
    fy_ct_slurp(b, lb, sizeof lb);
    fprintf(stderr, "source:\n%sreceived:\n%s", la, lb);
    assert_string_equal(la, lb);
    assert_non_null(strstr(la, "sub/deeper/sparse.img 67108864 644 "));
    assert_non_null(strstr(la, "r\xc3\xa9sum\xc3\xa9.txt 6 640 "));
    assert_non_null(strstr(la, "sub/y.txt 2 700 1000000000.0000000050"));
    static const char *const files[] = {"my report (v2).txt", "r\xc3\xa9sum\xc3\xa9.txt",
                                        "sub/y.txt", "sub/deeper/sparse.img"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", tree, files[i]);
        snprintf(q, sizeof q, "%s/tree/%s", out, files[i]);
        assert_cmp(p, q);
    }
    /* sparse on the relay's disk and at the receiver: 2 MiB of data in 64 */
    snprintf(q, sizeof q, "%s/tree/sub/deeper/sparse.img", out);
    long long relay = du_bytes(t, t->data), recv = disk_bytes(q);
    fprintf(stderr, "64 MiB sparse file: relay data dir %lld bytes, receiver's copy %lld bytes\n",
            relay, recv);
    assert_true(relay < 8 * MIB);
    assert_true(recv < 8 * MIB);
    /* --no-perms: the receiver's own mode and the arrival time */
    fy_ct_path(t, "plain", out);
    rx = fy_ct_recv(t, "recv2", "tree", out,
                    (const char *[]){"--from-start", "--count", "4", "--no-perms", NULL});
    fy_ct_expect_exit(t, rx, "recv2", T_MS, 0);
    struct stat st;
    snprintf(q, sizeof q, "%s/tree/sub/y.txt", out);
    assert_int_equal(stat(q, &st), 0);
    assert_int_equal(st.st_mode & 0111, 0);
    assert_true(st.st_mtim.tv_sec > 1000000000 + 86400);
    fy_ct_daemon_stop(t);
}

/* A sender's file-begin with a raw name: the relay refuses what is not a
 * relative path (FY_ENAME) and accepts UTF-8 with spaces. */
static int send_begin(fy_ct *t, const char *name)
{
    fy_cli_conn *k;
    fy_welcome w;
    fy_ct_hold_sender(t, "names", &k, &w);
    uint8_t pl[300] = {0}; /* an empty file: its ack says the name was taken */
    size_t nl = strlen(name);
    pl[8] = (uint8_t)nl;
    memcpy(pl + 12, name, nl);
    assert_int_equal(fy_cli_conn_send(k, FY_FT_FILE_BEGIN, w.next_seq, pl, 12 + nl), 0);
    memset(pl, 0, 8);
    assert_int_equal(fy_sha256_oneshot("", 0, pl + 8), 0);
    assert_int_equal(fy_cli_conn_send(k, FY_FT_FILE_END, w.next_seq + 1, pl, 40), 0);
    fy_frame f;
    int rc = fy_cli_conn_next(k, &f, false);
    fy_cli_conn_close(k, false);
    return rc;
}

static void test_names(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    static const char *const bad[] = {"../x", "/etc/passwd", "a/../b", "a//b", "a/", "./a",
                                      "a\x01" "b", "\xc3\x28", "\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = send_begin(t, bad[i]);
        fprintf(stderr, "name %zu: %d\n", i, rc);
        assert_int_equal(rc, -FY_ENAME);
    }
    assert_int_equal(send_begin(t, "d\xc3\xa9j\xc3\xa0 vu/my report (v2).txt"), 1);
    /* the receiver's own check, and no way out of --out through a symlink */
    char out[FY_CT_PATH], p[FY_CT_PATH * 2];
    fy_ct_mkdir(fy_ct_path(t, "out", out));
    snprintf(p, sizeof p, "%s/link", out);
    assert_int_equal(symlink(t->dir, p), 0);
    int dfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC), pdir = -1;
    const char *base;
    assert_true(dfd >= 0);
    assert_int_equal(fy_cli_tree_parent(dfd, "../x", &pdir, &base), -FY_ENAME);
    assert_int_equal(fy_cli_tree_parent(dfd, ".ferry-state", &pdir, &base), -FY_ENAME);
    assert_int_equal(fy_cli_tree_parent(dfd, "d/.x.part", &pdir, &base), -FY_ENAME);
    assert_int_equal(fy_cli_tree_parent(dfd, "link/x", &pdir, &base), -ENOTDIR);
    assert_int_equal(fy_cli_tree_parent(dfd, "a/b/c.txt", &pdir, &base), 0);
    assert_string_equal(base, "c.txt");
    close(pdir);
    close(dfd);
    fy_ct_daemon_stop(t);
}

/* The relay's "connection closed" lines of senders: the sum of bytes=. */
static long long relay_sender_bytes(fy_ct *t, int *conns)
{
    char p[FY_CT_PATH * 2], line[2048];
    snprintf(p, sizeof p, "%s/ferryd-0.log", t->dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    long long sum = 0;
    *conns = 0;
    while (fgets(line, sizeof line, f)) {
        const char *b = strstr(line, " bytes=");
        if (strstr(line, "msg=\"connection closed\"") && b && atoll(b + 7) > 0) {
            sum += atoll(b + 7);
            ++*conns;
        }
    }
    fclose(f);
    return sum;
}

static long long out_value(fy_ct *t, const char *tag, const char *key)
{
    char p[FY_CT_PATH * 2], buf[8192];
    snprintf(p, sizeof p, "%s/%s.out", t->dir, tag);
    const char *v = strstr(fy_ct_slurp(p, buf, sizeof buf), key);
    return v ? atoll(v + strlen(key)) : -1;
}

static void test_resume_rerun(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    const long long size = (FY_CT_SANITIZED ? 32 : 128) * MIB;
    char src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 2];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "big.bin", src), (uint64_t)size, 21, sha);
    /* 2 s for the whole file (test-only throttle) */
    char rate[32];
    snprintf(rate, sizeof rate, "%lld", size / 2);
    setenv("FERRY_TEST_SEND_RATE", rate, 1);
    pid_t tx = fy_ct_send(t, "send1", "rr", (const char *[]){src, NULL});
    unsetenv("FERRY_TEST_SEND_RATE");
    /* SIGINT once the relay holds about half of it (bounded: 20 s) */
    for (int i = 0; i < 400 && du_bytes(t, t->data) < size / 2; i++)
        fy_ct_sleep_ms(50);
    fy_ct_kill(tx, SIGINT);
    assert_int_equal(fy_ct_wait(t, tx, 10000), 130);
    /* at once, the same command: the slot is free, the file continues */
    tx = fy_ct_send(t, "send2", "rr", (const char *[]){src, "--no-retry", NULL});
    fy_ct_expect_exit(t, tx, "send2", T_MS, 0);
    snprintf(p, sizeof p, "%s/send2.err", t->dir);
    assert_true(fy_ct_contains(p, "continuing the file an earlier run left unfinished"));
    long long second = out_value(t, "send2", "bytes_sent=");
    int conns = 0;
    long long total = relay_sender_bytes(t, &conns);
    /* The relay logs a connection's close when it has seen the client go,
     * which may be just after the client exited (bounded: 5 s). */
    for (int i = 0; i < 100 && conns < 2; i++) {
        fy_ct_sleep_ms(50);
        total = relay_sender_bytes(t, &conns);
    }
    fprintf(stderr, "file %lld bytes: second run sent %lld (%.2fx), both runs %lld (%.2fx) on "
            "%d connections\n", size, second, (double)second / (double)size, total,
            (double)total / (double)size, conns);
    assert_int_equal(conns, 2);
    assert_true(second > 0 && second <= size * 6 / 10);
    assert_true(total <= size * 11 / 10);
    /* the dead partial became the continued file's prefix: stored once */
    long long du = du_bytes(t, t->data);
    fprintf(stderr, "relay data dir: %lld bytes\n", du);
    assert_true(du <= size * 11 / 10);
    fy_ct_path(t, "out", out);
    fy_ct_expect_exit(t, fy_ct_recv(t, "recv", "rr", out,
                                    (const char *[]){"--from-start", "--count", "1", NULL}),
                      "recv", T_MS, 0);
    snprintf(p, sizeof p, "%s/big.bin", out);
    fy_ct_assert_same(p, sha);
    fy_ct_daemon_stop(t);
}

/* A tree interrupted in its second file: run again, the first file is
 * already stored (not sent) and the second continues. */
static void test_resume_tree(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    const long long size = (FY_CT_SANITIZED ? 16 : 64) * MIB;
    char dir[FY_CT_PATH], p[FY_CT_PATH * 2], out[FY_CT_PATH];
    uint8_t sha[32];
    fy_ct_mkdir(fy_ct_path(t, "tr", dir));
    snprintf(p, sizeof p, "%s/a.bin", dir);
    fy_ct_make_file(p, 1 << 20, 31, NULL);
    snprintf(p, sizeof p, "%s/b.bin", dir);
    fy_ct_make_file(p, (uint64_t)size, 32, sha);
    char rate[32];
    snprintf(rate, sizeof rate, "%lld", size / 2);
    setenv("FERRY_TEST_SEND_RATE", rate, 1);
    pid_t tx = fy_ct_send(t, "t1", "rt", (const char *[]){"-r", dir, NULL});
    unsetenv("FERRY_TEST_SEND_RATE");
    for (int i = 0; i < 400 && du_bytes(t, t->data) < MIB + size / 2; i++)
        fy_ct_sleep_ms(50);
    fy_ct_kill(tx, SIGINT);
    assert_int_equal(fy_ct_wait(t, tx, 10000), 130);
    tx = fy_ct_send(t, "t2", "rt", (const char *[]){"-r", dir, NULL});
    fy_ct_expect_exit(t, tx, "t2", T_MS, 0);
    snprintf(p, sizeof p, "%s/t2.err", t->dir);
    assert_true(fy_ct_contains(p, "already stored on the relay: not sent again"));
    assert_true(fy_ct_contains(p, "continuing the file an earlier run left unfinished"));
    long long second = out_value(t, "t2", "bytes_sent=");
    fprintf(stderr, "tree of 1 MiB + %lld bytes: the second run sent %lld bytes\n", size, second);
    assert_true(second > 0 && second <= size * 6 / 10);
    fy_ct_path(t, "out", out);
    fy_ct_expect_exit(t, fy_ct_recv(t, "r", "rt", out,
                                    (const char *[]){"--from-start", "--count", "2", NULL}),
                      "r", T_MS, 0);
    snprintf(p, sizeof p, "%s/tr/b.bin", out);
    fy_ct_assert_same(p, sha);
    fy_ct_daemon_stop(t);
}

/* Ctrl-C and the same command at once, while the relay is behind (a slow
 * fsync keeps the sender's session from reading): never FY_EBUSY. */
static void test_slot_free_at_once(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, (const char *[]){"--fsync", "1", NULL});
    char src[FY_CT_PATH];
    fy_ct_make_file(fy_ct_path(t, "f.bin", src), (uint64_t)(FY_CT_SANITIZED ? 32 : 256) * MIB, 5,
                    NULL);
    for (int i = 0; i < 3; i++) {
        pid_t tx = fy_ct_send(t, "a", "busy", (const char *[]){src, "--chunk", "16K", "--force", NULL});
        fy_ct_sleep_ms(300);
        fy_ct_kill(tx, SIGINT);
        int rc = fy_ct_wait(t, tx, 20000);
        assert_true(rc == 130 || rc == 0);
        tx = fy_ct_send(t, "b", "busy", (const char *[]){src, "--no-retry", "--force", NULL});
        fy_ct_expect_exit(t, tx, "b", T_MS, 0);
    }
    fy_ct_daemon_stop(t);
}

static void send_text(fy_ct *t, const char *dir, const char *text)
{
    char p[FY_CT_PATH * 2];
    fy_ct_mkdir(dir);
    snprintf(p, sizeof p, "%s/a.txt", dir);
    put(p, text);
    pid_t tx = fy_ct_send(t, "send", "cf", (const char *[]){p, NULL});
    fy_ct_expect_exit(t, tx, "send", T_MS, 0);
}

/* Receive the channel's latest file into out with `policy` (NULL: default). */
static void recv_last(fy_ct *t, const char *out, const char *policy, uint64_t seq)
{
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)seq);
    pid_t rx = fy_ct_recv(t, "recv", "cf", out,
                          (const char *[]){"--from-seq", s, "--count", "1",
                                           policy ? "--on-conflict" : NULL, policy, NULL});
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
}

static void test_on_conflict(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char d1[FY_CT_PATH], d2[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 2], buf[64];
    send_text(t, fy_ct_path(t, "v1", d1), "one\n");  /* seqs 1..3 */
    send_text(t, fy_ct_path(t, "v2", d2), "two\n");  /* seqs 4..6 */
    fy_ct_mkdir(fy_ct_path(t, "out", out));
    recv_last(t, out, NULL, 1);
    recv_last(t, out, NULL, 1); /* identical: nothing new */
    snprintf(p, sizeof p, "%s/a.txt.1", out);
    assert_int_equal(fy_ct_size(p), -1);
    recv_last(t, out, NULL, 4); /* default rename: a.txt.1 */
    assert_string_equal(fy_ct_slurp(p, buf, sizeof buf), "two\n");
    snprintf(p, sizeof p, "%s/a.txt", out);
    assert_string_equal(fy_ct_slurp(p, buf, sizeof buf), "one\n");
    recv_last(t, out, "keep", 4);
    assert_string_equal(fy_ct_slurp(p, buf, sizeof buf), "one\n");
    snprintf(p, sizeof p, "%s/recv.err", t->dir);
    assert_true(fy_ct_contains(p, "kept it, new copy dropped"));
    snprintf(p, sizeof p, "%s/a.txt.2", out);
    assert_int_equal(fy_ct_size(p), -1);
    recv_last(t, out, "replace", 4);
    snprintf(p, sizeof p, "%s/a.txt", out);
    assert_string_equal(fy_ct_slurp(p, buf, sizeof buf), "two\n");
    fy_ct_daemon_stop(t);
}

static int count_lines(fy_ct *t, const char *needle)
{
    char p[FY_CT_PATH * 2], line[2048];
    snprintf(p, sizeof p, "%s/ferryd-0.log", t->dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* The same file twice is stored once (the second run is told and exits 0);
 * --force stores it again; other bytes under the name are stored. */
static void test_dedupe(void **state)
{
    fy_ct *t = *state;
    fy_ct_daemon_start(t, NULL);
    char a[FY_CT_PATH], p[FY_CT_PATH * 2];
    fy_ct_make_file(fy_ct_path(t, "d.bin", a), 3 << 20, 7, NULL);
    fy_ct_expect_exit(t, fy_ct_send(t, "s1", "dd", (const char *[]){a, NULL}), "s1", T_MS, 0);
    fy_ct_expect_exit(t, fy_ct_send(t, "s2", "dd", (const char *[]){a, NULL}), "s2", T_MS, 0);
    snprintf(p, sizeof p, "%s/s2.err", t->dir);
    assert_true(fy_ct_contains(p, "already stored on the relay: not sent again"));
    snprintf(p, sizeof p, "%s/s2.out", t->dir);
    assert_true(fy_ct_contains(p, "file=d.bin bytes=3145728 "));
    assert_true(out_value(t, "s2", "bytes_sent=") == 0);
    assert_int_equal(count_lines(t, "msg=\"file stored\" channel=dd name=d.bin"), 1);
    fy_ct_expect_exit(t, fy_ct_send(t, "s3", "dd", (const char *[]){a, "--force", NULL}), "s3",
                      T_MS, 0);
    assert_int_equal(count_lines(t, "msg=\"file stored\" channel=dd name=d.bin"), 2);
    fy_ct_make_file(a, 3 << 20, 8, NULL); /* other bytes, same name and size */
    fy_ct_expect_exit(t, fy_ct_send(t, "s4", "dd", (const char *[]){a, NULL}), "s4", T_MS, 0);
    assert_int_equal(count_lines(t, "msg=\"file stored\" channel=dd name=d.bin"), 3);
    fy_ct_daemon_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tree_sparse, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_names, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_resume_rerun, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_resume_tree, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_slot_free_at_once, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_on_conflict, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_dedupe, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
