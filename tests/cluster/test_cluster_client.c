/*
 * test_cluster_client.c - a three-relay cluster on a three-member etcd
 * cluster, all real processes on loopback (Debian's etcd-server, ferryd
 * FERRYD_PATH, the client FERRY_PATH), each started and stopped by PID;
 * skipped when etcd-server is not installed.  docs/cluster.md, "Running a
 * three-relay cluster", quotes the commands this test runs.
 *
 *   - every ferryd gets `--cluster URL1,URL2,URL3`; a file sent to n1 makes
 *     it the channel's leader;
 *   - the query commands with `--server` lists: `ferry rm` and `ferry
 *     retain` at a member that does not lead the channel are redirected
 *     (FY_ENOTLEADER) to the leader and run there; `ferry ls` takes a list
 *     whose first address is down;
 *   - the etcd member the relays talk to (the first endpoint: etcd.c tries
 *     them in order) is killed: every relay keeps its lease past two TTLs
 *     (ferry_cluster_lease_held stays 1, no "cluster lease lost"), and a new
 *     channel still gets a leader and takes a file;
 *   - the clients' epoch rule against real relays: a receiver redirected in
 *     epoch 5 does not follow a later redirect that names epoch 3 (a stale
 *     view, made here by writing the channel's state in etcd back to an
 *     older epoch), and never says hello to the relay it names.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster/etcd.h"
#include "common/tc.h"
#include "obs/http_get.h"

#define TTL "2"
#define WAIT_MS 20000
#define ETCD_BIN "/usr/bin/etcd"

typedef struct fixture {
    char dir[64];
    pid_t etcd[3];
    char eurl[3][40], ecl[140]; /* client URLs; URL1,URL2,URL3 */
    tc_daemon d[3];
    char data[3][128], log[3][128];
} fixture;

static bool etcd_ready(const char *log)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen(log, "r");

    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "ready to serve client requests") != NULL;
    if (f)
        fclose(f);
    return found;
}

/* Three etcd members e1..e3, each on two free loopback ports, as one
 * cluster (--initial-cluster); waits until all three serve clients. */
static int etcd3_start(fixture *f)
{
    uint16_t cp[3], pp[3];
    char peer[3][40], ic[200], data[3][128], log[3][128];
    for (int i = 0; i < 3; i++)
        if (tc_free_port(&cp[i]) < 0 || tc_free_port(&pp[i]) < 0)
            return -1;
    for (int i = 0; i < 3; i++) {
        snprintf(f->eurl[i], sizeof f->eurl[i], "http://127.0.0.1:%u", cp[i]);
        snprintf(peer[i], sizeof peer[i], "http://127.0.0.1:%u", pp[i]);
    }
    snprintf(ic, sizeof ic, "e1=%s,e2=%s,e3=%s", peer[0], peer[1], peer[2]);
    snprintf(f->ecl, sizeof f->ecl, "%s,%s,%s", f->eurl[0], f->eurl[1], f->eurl[2]);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "e%d", i + 1);
        snprintf(data[i], sizeof data[i], "%s/%s", f->dir, name);
        snprintf(log[i], sizeof log[i], "%s/%s.log", f->dir, name);
        const char *argv[] = {ETCD_BIN, "--name", name, "--data-dir", data[i],
                              "--listen-client-urls", f->eurl[i],
                              "--advertise-client-urls", f->eurl[i],
                              "--listen-peer-urls", peer[i],
                              "--initial-advertise-peer-urls", peer[i],
                              "--initial-cluster", ic, "--initial-cluster-token", "ferry-test",
                              "--initial-cluster-state", "new", NULL};
        if ((f->etcd[i] = tc_spawn(argv, NULL, NULL, log[i], false)) < 0)
            return -1;
    }
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        int ready = 0;
        for (int i = 0; i < 3; i++)
            ready += etcd_ready(log[i]);
        if (ready == 3)
            return 0;
        tc_sleep_ms(50);
    }
    fprintf(stderr, "etcd cluster not ready within %d ms\n", WAIT_MS);
    return -1;
}

static int setup(void **state)
{
    static fixture f;

    *state = NULL;
    if (!tc_etcd_available()) {
        fprintf(stderr, "skip: etcd-server is not installed (/usr/bin/etcd)\n");
        return 0;
    }
    if (tc_tmpdir(f.dir, sizeof f.dir, "cluster-client") < 0 || etcd3_start(&f) < 0)
        return -1;
    char dir[sizeof f.dir]; /* a copy: snprintf into f from f */
    memcpy(dir, f.dir, sizeof dir);
    for (int i = 0; i < 3; i++) {
        char node[16];
        snprintf(node, sizeof node, "n%d", i + 1);
        snprintf(f.data[i], sizeof f.data[i], "%s/n%d", dir, i + 1);
        snprintf(f.log[i], sizeof f.log[i], "%s/n%d.log", dir, i + 1);
        char trace[140];
        snprintf(trace, sizeof trace, "%s/n%d.trace", dir, i + 1);
        const char *extra[] = {"--cluster", f.ecl, "--node", node, "--cluster-ttl", TTL,
                               "--metrics", "127.0.0.1:0", "--threads", "2", "--trace", trace,
                               NULL};
        if (tc_daemon_start(&f.d[i], FERRYD_PATH, f.data[i], f.log[i], extra, WAIT_MS) < 0)
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
    for (int i = 0; i < 3; i++)
        if (f->d[i].pid > 0)
            tc_daemon_stop(&f->d[i], 10000, NULL);
    for (int i = 0; i < 3; i++)
        if (f->etcd[i] > 0)
            tc_stop(f->etcd[i], 5000, &(int){0});
    tc_tmpdir_done(f->dir);
    return 0;
}

/* Run `ferry ARGS...` (NULL-terminated), stdout to out (may be NULL;
 * emptied first), stderr to DIR/client.log (appended); its exit code. */
static int ferry(fixture *f, const char *out, ...)
{
    const char *argv[24] = {FERRY_PATH};
    char log[128];
    int n = 1, st = 0;
    va_list ap;

    va_start(ap, out);
    while (n < 22 && (argv[n] = va_arg(ap, const char *)))
        n++;
    va_end(ap);
    argv[n++] = "-v";
    argv[n] = NULL;
    snprintf(log, sizeof log, "%s/client.log", f->dir);
    if (out)
        truncate(out, 0);
    pid_t pid = tc_spawn(argv, NULL, out, log, true);
    assert_true(pid > 0);
    assert_int_equal(tc_wait(pid, WAIT_MS, &st), 0);
    return tc_exit_code(st);
}

/* Lines of path holding needle (and also needle2 when not NULL). */
static size_t count_in2(const char *path, const char *needle, const char *needle2)
{
    char line[8192];
    size_t n = 0;
    FILE *fp = fopen(path, "r");
    while (fp && fgets(line, sizeof line, fp))
        n += strstr(line, needle) != NULL && (!needle2 || strstr(line, needle2) != NULL);
    if (fp)
        fclose(fp);
    return n;
}

static size_t count_in(const char *path, const char *needle)
{
    return count_in2(path, needle, NULL);
}

/* The value of the sample `name` in node i's /metrics (-1: absent). */
static long long metric(fixture *f, int i, const char *name)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", f->d[i].metrics_port);
    char *r = t_http(addr, "GET /metrics HTTP/1.0\r\n\r\n", 5);
    const char *p = r;
    long long v = -1;
    while (p && (p = strstr(p, name))) {
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

/* rm and retain at followers go to the leader; ls takes a list. */
static void test_queries_follow_the_leader(void **state)
{
    FIXTURE();
    char a[128], b[128], out[128], clog[128], list[160];
    snprintf(a, sizeof a, "%s/a.bin", f->dir);
    snprintf(b, sizeof b, "%s/b.bin", f->dir);
    snprintf(out, sizeof out, "%s/q.out", f->dir);
    snprintf(clog, sizeof clog, "%s/client.log", f->dir);
    assert_int_equal(tc_make_file(a, 64u << 10, 7, NULL), 0);
    assert_int_equal(tc_make_file(b, 64u << 10, 8, NULL), 0);
    assert_int_equal(ferry(f, NULL, "send", "--server", f->d[0].addr, "--channel", "q1", a, b,
                           NULL), 0);

    size_t before = count_in(clog, "msg=\"redirected to the channel's leader\"");
    assert_int_equal(ferry(f, out, "rm", "--server", f->d[1].addr, "q1", "a.bin", NULL), 0);
    assert_int_equal(count_in(out, "type=deleted channel=q1 name=a.bin"), 1);
    assert_int_equal(count_in(f->log[1], "query redirected to the channel's leader"), 1);
    assert_int_equal(count_in(f->log[0], "msg=\"file deleted\" channel=q1 name=a.bin"), 1);
    assert_int_equal(ferry(f, out, "retain", "--server", f->d[2].addr, "q1", "--bytes", "1G",
                           NULL), 0);
    assert_int_equal(count_in(out, "type=retain channel=q1"), 1);
    assert_int_equal(count_in(f->log[0], "msg=\"channel retention set\" channel=q1"), 1);
    assert_int_equal(count_in(clog, "msg=\"redirected to the channel's leader\"") - before, 2);

    /* ls answers where it is asked; the first address of the list is down. */
    uint16_t port;
    assert_int_equal(tc_free_port(&port), 0);
    snprintf(list, sizeof list, "127.0.0.1:%u,%s", port, f->d[0].addr);
    assert_int_equal(ferry(f, out, "ls", "--server", list, "q1", NULL), 0);
    assert_int_equal(count_in(out, "name=b.bin"), 1);
    assert_int_equal(count_in(out, "name=a.bin"), 0);
}

/* The etcd member the relays talk to dies: leases held, a new channel led. */
static void test_etcd_member_killed(void **state)
{
    FIXTURE();
    char c[128];
    snprintf(c, sizeof c, "%s/c.bin", f->dir);
    assert_int_equal(tc_make_file(c, 64u << 10, 9, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(metric(f, i, "ferry_cluster_lease_held"), 1);

    tc_stop(f->etcd[0], 5000, &(int){0});
    f->etcd[0] = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tc_sleep_ms(2 * 2000 + 500); /* two TTLs: a lease not renewed would be gone */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(metric(f, i, "ferry_cluster_lease_held"), 1);
        assert_int_equal(count_in(f->log[i], "cluster member rejoined"), 0);
    }
    assert_int_equal(ferry(f, NULL, "send", "--server", f->d[1].addr, "--channel", "k2", c,
                           NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(metric(f, 1, "ferry_cluster_leader{channel=\"k2\"}"), 1);
    /* The old channel still answers at its leader, which n3 still names. */
    assert_int_equal(ferry(f, NULL, "send", "--server", f->d[2].addr, "--channel", "q1", c,
                           NULL), 0);
    /* n2's trace shows the channels' leaders (ferry-trace, cluster events). */
    char trace[140], dump[140];
    snprintf(trace, sizeof trace, "%s/n2.trace", f->dir);
    snprintf(dump, sizeof dump, "%s/n2.dump", f->dir);
    tc_sleep_ms(300); /* the tracer's next tick */
    const char *targv[] = {FERRY_TRACE_PATH, "summary", trace, "--partial", NULL};
    int st = 0;
    pid_t tp = tc_spawn(targv, NULL, dump, NULL, false);
    assert_true(tp > 0);
    assert_int_equal(tc_wait(tp, WAIT_MS, &st), 0);
    assert_int_equal(tc_exit_code(st), 0);
    assert_int_equal(count_in(dump, "leader   epoch=1 channel=q1 leader=n1 old_epoch=0"), 1);
    assert_int_equal(count_in(dump, "leader   epoch=1 channel=k2 leader=n2 old_epoch=0"), 1);
    fprintf(stderr, "measured: etcd member killed, leases held, new channel led after %.3f s\n",
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* Poll (bounded) until node i's ferry_cluster_epoch of chan is want. */
static bool epoch_becomes(fixture *f, int i, const char *chan, long long want)
{
    char name[96];
    snprintf(name, sizeof name, "ferry_cluster_epoch{channel=\"%s\"}", chan);
    for (int k = 0; k < 200; k++) {
        if (metric(f, i, name) == want)
            return true;
        tc_sleep_ms(25);
    }
    return false;
}

static void put_state(fy_etcd *e, const char *chan, const char *json)
{
    char key[96];
    snprintf(key, sizeof key, "/ferry/channels/%s", chan);
    assert_int_equal(fy_etcd_put(e, key, json, strlen(json), 0), 0);
}

static void test_stale_epoch_not_followed(void **state)
{
    FIXTURE();
    char x[128], out[128], rout[128], rlog[128];
    snprintf(x, sizeof x, "%s/x1.bin", f->dir);
    snprintf(out, sizeof out, "%s/sout", f->dir);
    snprintf(rout, sizeof rout, "%s/recv.out", f->dir);
    snprintf(rlog, sizeof rlog, "%s/recv.log", f->dir);
    assert_int_equal(tc_make_file(x, 64u << 10, 11, NULL), 0);
    assert_int_equal(ferry(f, NULL, "send", "--server", f->d[0].addr, "--channel", "s1", x,
                           NULL), 0);
    fy_etcd *e = NULL;
    assert_int_equal(fy_etcd_open(f->ecl, 2000, &e), 0);
    put_state(e, "s1", "{\"leader\":\"n1\",\"epoch\":5,\"isr\":[\"n1\"],\"r\":2}");
    assert_true(epoch_becomes(f, 0, "s1", 5));
    assert_true(epoch_becomes(f, 1, "s1", 5)); /* n2 redirects with the epoch it read last */

    /* Redirected by n2 in epoch 5, it gets x1 from n1. */
    const char *rargv[] = {FERRY_PATH, "recv", "--server", f->d[1].addr, "--channel", "s1",
                           "--out", out, "--from-start", "--count", "2", "--retries", "2", "-v",
                           NULL};
    pid_t r = tc_spawn(rargv, NULL, rout, rlog, false);
    assert_true(r > 0);
    int k = 0;
    for (; k < 400 && count_in(rout, "file=x1.bin") == 0; k++)
        tc_sleep_ms(25);
    assert_true(k < 400);
    assert_int_equal(count_in(rlog, "msg=\"redirected to the channel's leader\""), 1);

    /* n2 now names n3 in epoch 3; n1 dies: the receiver does not go to n3. */
    put_state(e, "s1", "{\"leader\":\"n3\",\"epoch\":3,\"isr\":[\"n3\"],\"r\":2}");
    assert_true(epoch_becomes(f, 1, "s1", 3));
    tc_daemon_kill9(&f->d[0]);
    int st = 0;
    if (tc_wait(r, WAIT_MS, &st) != 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "tail -n 30 %s >&2", rlog);
        (void)!system(cmd);
        fail_msg("the receiver did not end");
    }
    assert_int_equal(tc_exit_code(st), 2);
    assert_true(count_in(rlog, "msg=\"redirect from an older cluster epoch not followed\"") >= 1);
    assert_true(count_in(rlog, "epoch=3 seen_epoch=5") >= 1);
    /* The receiver never said hello at n3 (its followers, n1 and n2, do:
     * their client names are their node names). */
    assert_int_equal(count_in2(f->log[2], "msg=\"hello\"", "channel=s1") -
                         count_in2(f->log[2], "channel=s1 mode=2 resume_from", "client=n"),
                     0);
    fy_etcd_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queries_follow_the_leader),
        cmocka_unit_test(test_etcd_member_killed),
        cmocka_unit_test(test_stale_epoch_not_followed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
