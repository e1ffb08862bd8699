/*
 * test_cluster_relay.c - phase 1 of docs/cluster.md end to end: a real
 * etcd-server and three real ferryd (FERRYD_PATH) on loopback, each with
 * its own data directory and port, and the real client (FERRY_PATH); all
 * started and stopped by PID.  Skipped when etcd-server is not installed.
 *
 *   - the first sender makes n1 the channel's leader; a sender pointed at
 *     n2 is redirected (FY_ENOTLEADER) and its file stored on n1 (which the
 *     followers mirror); a
 *     receiver pointed at n3 is redirected and gets both files, byte for
 *     byte;
 *   - n1 killed with SIGKILL and restarted on the same name, data and port:
 *     it waits for its old lease to expire and registers again; the channel
 *     has one leader in epoch 2: n1, which moved it on an epoch as it
 *     reopened its log, or an in-sync follower that took over
 *     (test_cluster_follow checks the takeover itself);
 *   - a sender with --server A,B,C whose A is down reaches the leader;
 *   - a second ferryd under a live node's name exits 1 after TTL + 1 s, one
 *     whose etcd does not answer exits 1 at once.
 * The times measured (redirect, re-registration) are printed for
 * docs/cluster.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/tc.h"
#include "obs/http_get.h"

#define TTL "2"
#define WAIT_MS 20000
#define CHAN "c1"

typedef struct fixture {
    char dir[64];
    tc_etcd etcd;
    tc_daemon d[3];
    char data[3][128], log[3][128];
    pid_t recv;
} fixture;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ferryd node i (n1..n3) in the cluster; listen "": any port. */
static int start_node(fixture *f, int i, const char *listen)
{
    char node[16];
    snprintf(node, sizeof node, "n%d", i + 1);
    /* --acks leader: phase 1's meaning (this test has no followers, and
     * acks all would wait for R = 2 in-sync replicas). */
    const char *extra[] = {"--cluster", f->etcd.url, "--node", node, "--cluster-ttl", TTL,
                           "--acks", "leader",
                           "--metrics", "127.0.0.1:0", "--threads", "2",
                           listen[0] ? "--listen" : NULL, listen, NULL};
    return tc_daemon_start(&f->d[i], FERRYD_PATH, f->data[i], f->log[i], extra, WAIT_MS);
}

static int setup(void **state)
{
    static fixture f;

    *state = NULL;
    if (!tc_etcd_available()) {
        fprintf(stderr, "skip: etcd-server is not installed (/usr/bin/etcd)\n");
        return 0;
    }
    if (tc_tmpdir(f.dir, sizeof f.dir, "cluster-relay") < 0 ||
        tc_etcd_start(&f.etcd, f.dir, 20000) < 0)
        return -1;
    char dir[sizeof f.dir]; /* a copy: snprintf into f from f */
    memcpy(dir, f.dir, sizeof dir);
    for (int i = 0; i < 3; i++) {
        snprintf(f.data[i], sizeof f.data[i], "%s/n%d", dir, i + 1);
        snprintf(f.log[i], sizeof f.log[i], "%s/n%d.log", dir, i + 1);
        if (start_node(&f, i, "") < 0)
            return -1;
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    if (!f)
        return 0;
    if (f->recv > 0)
        tc_stop(f->recv, 5000, &(int){0});
    for (int i = 0; i < 3; i++)
        if (f->d[i].pid > 0)
            tc_daemon_stop(&f->d[i], 10000, NULL);
    tc_etcd_stop(&f->etcd);
    tc_tmpdir_done(f->dir);
    return 0;
}

/* ferry send FILE to CHAN at server; its exit code. */
static int send_to(fixture *f, const char *server, const char *file)
{
    char log[128];
    int st = 0;
    snprintf(log, sizeof log, "%s/send.log", f->dir);
    const char *argv[] = {FERRY_PATH, "send", "--server", server, "--channel", CHAN,
                          "--retries", "6", "-v", file, NULL};
    pid_t pid = tc_spawn(argv, NULL, NULL, log, true);
    assert_true(pid > 0);
    assert_int_equal(tc_wait(pid, WAIT_MS, &st), 0);
    return tc_exit_code(st);
}

static size_t count_in(const char *path, const char *needle)
{
    char line[8192];
    size_t n = 0;
    FILE *fp = fopen(path, "r");
    while (fp && fgets(line, sizeof line, fp))
        n += strstr(line, needle) != NULL;
    if (fp)
        fclose(fp);
    return n;
}

static bool same_file(const char *a, const char *b)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/* The value of the sample `name` in node i's /metrics (-1: absent). */
static long long metric(fixture *f, int i, const char *name)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", f->d[i].metrics_port);
    char *r = t_http(addr, "GET /metrics HTTP/1.0\r\n\r\n", 5);
    const char *p = r;
    long long v = -1;
    while ((p = strstr(p, name))) {
        if ((p == r || p[-1] == '\n') && p[strlen(name)] == ' ') {
            v = atoll(p + strlen(name) + 1);
            break;
        }
        p += strlen(name);
    }
    free(r);
    return v;
}

#define FIXTURE()        \
    fixture *f = *state; \
    if (!f) {            \
        skip();          \
        return;          \
    }

static void test_redirect_restart_and_lists(void **state)
{
    FIXTURE();
    char file[4][128], out[128], got[160], rlog[128];
    for (int i = 0; i < 4; i++) {
        snprintf(file[i], sizeof file[i], "%s/f%d.bin", f->dir, i);
        assert_int_equal(tc_make_file(file[i], i == 1 ? 3u << 20 : 64u << 10, 40 + i, NULL), 0);
    }
    snprintf(out, sizeof out, "%s/out", f->dir);
    snprintf(rlog, sizeof rlog, "%s/recv.log", f->dir);

    /* The first hello makes n1 the leader; the same small send, redirected
     * from n2, measures the redirect. */
    double t0 = now_s();
    assert_int_equal(send_to(f, f->d[0].addr, file[0]), 0);
    double direct = now_s() - t0;
    const char *rargv[] = {FERRY_PATH, "recv", "--server", f->d[2].addr, "--channel", CHAN,
                           "--out", out, "--from-start", "--count", "4", "--retries", "12",
                           "-v", NULL};
    f->recv = tc_spawn(rargv, NULL, NULL, rlog, false);
    assert_true(f->recv > 0);
    t0 = now_s();
    assert_int_equal(send_to(f, f->d[1].addr, file[1]), 0);
    double redirected = now_s() - t0;
    char send_log[128];
    snprintf(send_log, sizeof send_log, "%s/send.log", f->dir);
    assert_true(count_in(send_log, "msg=\"redirected to the channel's leader\"") >= 1);
    assert_true(count_in(f->log[1], "err=FY_ENOTLEADER") >= 1);
    /* Stored on the leader (and mirrored by the followers: test_cluster_follow). */
    char cdir[200];
    struct stat sb;
    snprintf(cdir, sizeof cdir, "%s/channels/" CHAN, f->data[0]);
    assert_int_equal(stat(cdir, &sb), 0);
    assert_int_equal(metric(f, 0, "ferry_cluster_leader{channel=\"" CHAN "\"}"), 1);
    assert_int_equal(metric(f, 0, "ferry_cluster_epoch{channel=\"" CHAN "\"}"), 1);
    assert_int_equal(metric(f, 1, "ferry_cluster_leader{channel=\"" CHAN "\"}"), 0);
    assert_int_equal(metric(f, 0, "ferry_cluster_lease_held"), 1);

    /* A second process under a live name waits TTL + 1 s, then exits 1;
     * started now, it waits while n1 is down. */
    char dup_data[128], dup_log[128];
    snprintf(dup_data, sizeof dup_data, "%s/dup", f->dir);
    snprintf(dup_log, sizeof dup_log, "%s/dup.log", f->dir);
    const char *dargv[] = {FERRYD_PATH, "--listen", "127.0.0.1:0", "--data", dup_data,
                           "--cluster", f->etcd.url, "--node", "n2", "--cluster-ttl", TTL, NULL};
    double dup_t0 = now_s();
    pid_t dup = tc_spawn(dargv, NULL, NULL, dup_log, false);
    assert_true(dup > 0);

    /* n1 killed and restarted on its name, data and port. */
    char listen[64];
    snprintf(listen, sizeof listen, "%s", f->d[0].addr);
    t0 = now_s();
    tc_daemon_kill9(&f->d[0]);
    assert_int_equal(start_node(f, 0, listen), 0);
    double rejoin = now_s() - t0;
    assert_true(rejoin < 2 + 1.5 + 2);
    /* Epoch 2: led by n1 still, which reopened its log and so moved the
     * channel on an epoch, or (its followers were in sync and its lease
     * ran out first) by one of them; a send to n1 gets there. */
    assert_int_equal(send_to(f, f->d[0].addr, file[2]), 0);
    int leaders = 0;
    for (int i = 0; i < 3; i++) {
        if (metric(f, i, "ferry_cluster_leader{channel=\"" CHAN "\"}") != 1)
            continue;
        leaders++;
        assert_int_equal(metric(f, i, "ferry_cluster_epoch{channel=\"" CHAN "\"}"), 2);
        assert_true(count_in(f->log[i], i ? "msg=\"cluster leader taken over\""
                                          : "msg=\"cluster epoch moved on\"") == 1);
    }
    assert_int_equal(leaders, 1);

    int st = 0;
    assert_int_equal(tc_wait(dup, WAIT_MS, &st), 0);
    double dup_s = now_s() - dup_t0;
    assert_int_equal(tc_exit_code(st), 1);
    assert_true(count_in(dup_log, "node name is held by a live relay") == 1);
    assert_true(dup_s >= 2.5 && dup_s < 6);

    /* A list whose first address is down. */
    uint16_t port;
    char list[200];
    assert_int_equal(tc_free_port(&port), 0);
    snprintf(list, sizeof list, "127.0.0.1:%u,%s,%s", port, f->d[1].addr, f->d[2].addr);
    assert_int_equal(send_to(f, list, file[3]), 0);
    assert_true(count_in(send_log, "msg=\"relay unreachable: trying the next address\"") >= 1);

    /* The receiver pointed at n3 got all four, through n1's restart. */
    assert_int_equal(tc_wait(f->recv, WAIT_MS, &st), 0);
    f->recv = -1;
    assert_int_equal(tc_exit_code(st), 0);
    assert_true(count_in(rlog, "msg=\"redirected to the channel's leader\"") >= 1);
    for (int i = 0; i < 4; i++) {
        snprintf(got, sizeof got, "%s/f%d.bin", out, i);
        assert_true(same_file(file[i], got));
    }
    /* etcd unreachable: exit 1 at once, naming the endpoints. */
    char bad[64];
    snprintf(bad, sizeof bad, "http://127.0.0.1:%u", port);
    const char *bargv[] = {FERRYD_PATH, "--listen", "127.0.0.1:0", "--data", dup_data,
                           "--cluster", bad, "--node", "n9", "--cluster-ttl", TTL, NULL};
    pid_t b = tc_spawn(bargv, NULL, NULL, dup_log, false);
    assert_true(b > 0);
    assert_int_equal(tc_wait(b, WAIT_MS, &st), 0);
    assert_int_equal(tc_exit_code(st), 1);
    assert_true(count_in(dup_log, "etcd did not answer") == 1);
    assert_true(count_in(dup_log, bad) >= 1);
    /* SIGTERM: the member leaves after the drain, revoking its lease. */
    assert_int_equal(tc_daemon_stop(&f->d[2], 10000, &st), 0);
    assert_int_equal(tc_exit_code(st), 0);
    assert_int_equal(count_in(f->log[2], "msg=\"cluster left\" lease=revoked"), 1);
    fprintf(stderr, "measured: send direct %.3f s, redirected %.3f s; kill -9 to listening "
            "again %.3f s (ttl " TTL " s); name held: exit after %.3f s\n", direct, redirected,
            rejoin, dup_s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redirect_restart_and_lists),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
