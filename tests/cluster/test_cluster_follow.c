/*
 * test_cluster_follow.c - cluster followers end to end (docs/cluster.md,
 * "Followers"): a real etcd-server and three real ferryd (FERRYD_PATH,
 * --cluster-ttl 2, R = 2) on loopback, the real client (FERRY_PATH); all
 * started and stopped by PID.  Skipped when etcd-server is not installed.
 *
 *   - files sent to the leader appear on both followers with identical
 *     seqs and bytes: each node's log is read segment by segment and every
 *     frame's (seq, type, payload) compared (the channel id in a header is
 *     the node's own, so raw bytes may differ there);
 *   - a follower killed with SIGKILL mid-stream and restarted catches up
 *     with no gap and no duplicate;
 *   - the leader killed with SIGKILL: a follower takes over in epoch 2, a
 *     sender with --retries and a --server list finishes there, and both
 *     live nodes hold identical logs;
 *   - every node killed, the leader restarted first: it reopened its log
 *     while named leader, so it moves the channel to the next epoch first;
 *     with a follower back, files are acknowledged and mirrored again;
 *   - a follower holding a file its new leader lacks (the leader named in
 *     etcd) cuts that tail back and follows: both logs identical;
 *   - a follower behind its leader's retention (FY_ENOSEQ) starts its log
 *     again at the first file-begin the leader holds and follows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/etcd.h"
#include "common/tc.h"
#include "ferry/proto.h"
#include "obs/http_get.h"

#define TTL "2"
#define WAIT_MS 20000
#define CHAN "c1"
#define MAX_PAYLOAD (16u << 20)

typedef struct fixture {
    char dir[64];
    tc_etcd etcd;
    tc_daemon d[3];
    char data[3][128], log[3][128];
} fixture;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Node i (n1..n3); listen "": any port; retain: --segment-bytes 4 MiB
 * --retain-bytes 8 MiB (old segments go). */
static int start_node_r(fixture *f, int i, const char *listen, bool retain)
{
    char node[16];
    snprintf(node, sizeof node, "n%d", i + 1);
    const char *extra[] = {"--cluster", f->etcd.url, "--node", node, "--cluster-ttl", TTL,
                           "--replicas", "2", "--metrics", "127.0.0.1:0", "--threads", "2",
                           "--listen", listen[0] ? listen : "127.0.0.1:0",
                           retain ? "--segment-bytes" : NULL, "4194304", "--retain-bytes",
                           "8388608", NULL};
    return tc_daemon_start(&f->d[i], FERRYD_PATH, f->data[i], f->log[i], extra, WAIT_MS);
}

static int start_node(fixture *f, int i, const char *listen)
{
    return start_node_r(f, i, listen, false);
}

static int setup(void **state)
{
    static fixture f;

    *state = NULL;
    if (!tc_etcd_available()) {
        fprintf(stderr, "skip: etcd-server is not installed (/usr/bin/etcd)\n");
        return 0;
    }
    if (tc_tmpdir(f.dir, sizeof f.dir, "cluster-follow") < 0 ||
        tc_etcd_start(&f.etcd, f.dir, 20000) < 0)
        return -1;
    char dir[sizeof f.dir];
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
    for (int i = 0; i < 3; i++)
        if (f->d[i].pid > 0)
            tc_daemon_stop(&f->d[i], 10000, NULL);
    tc_etcd_stop(&f->etcd);
    tc_tmpdir_done(f->dir);
    return 0;
}

/* ---- a node's log, frame by frame ---------------------------------------------- */

typedef struct logsum {
    uint64_t frames, first_seq, next_seq, hash; /* hash over (seq, type, payload) */
    bool gap;                                   /* seqs not consecutive */
} logsum;

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 0x100000001b3ull;
}

static void sum_segment(const char *path, logsum *s, uint8_t *buf, uint64_t from)
{
    FILE *fp = fopen(path, "rb");
    uint8_t raw[FY_FRAME_HDR_SIZE];
    fy_frame_hdr h;

    /* Each segment opens with a file header of a frame header's size. */
    if (fp && fread(raw, 1, sizeof raw, fp) != sizeof raw) {
        fclose(fp);
        return;
    }
    while (fp && fread(raw, 1, sizeof raw, fp) == sizeof raw &&
           fy_frame_hdr_decode(raw, MAX_PAYLOAD, &h) == 0 &&
           fread(buf, 1, h.len, fp) == h.len) {
        if (h.seq < from)
            continue;
        if (s->frames && h.seq != s->next_seq)
            s->gap = true;
        if (!s->frames)
            s->first_seq = h.seq;
        s->frames++;
        s->next_seq = h.seq + 1;
        fnv(&s->hash, &h.seq, sizeof h.seq);
        fnv(&s->hash, &h.type, sizeof h.type);
        fnv(&s->hash, buf, h.len);
    }
    if (fp)
        fclose(fp);
}

/* Node i's channel log from seq `from` on, summed (frames 0: none yet). */
static logsum sum_log_from(fixture *f, int i, uint64_t from)
{
    char dir[200], path[600];
    struct dirent **ents;
    logsum s = {.hash = 0xcbf29ce484222325ull};
    uint8_t *buf = malloc(MAX_PAYLOAD);

    snprintf(dir, sizeof dir, "%s/channels/" CHAN, f->data[i]);
    int n = scandir(dir, &ents, NULL, by_name);
    for (int k = 0; k < n; k++) {
        size_t l = strlen(ents[k]->d_name);
        if (l > 4 && strcmp(ents[k]->d_name + l - 4, ".log") == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, ents[k]->d_name);
            sum_segment(path, &s, buf, from);
        }
        free(ents[k]);
    }
    if (n >= 0)
        free(ents);
    free(buf);
    return s;
}

static logsum sum_log(fixture *f, int i)
{
    return sum_log_from(f, i, 0);
}

/* Wait (bounded) until node b's log equals node a's; true when it does. */
static bool wait_same(fixture *f, int a, int b, double *took)
{
    double t0 = now_s();
    for (int k = 0; k < 400; k++) {
        logsum x = sum_log(f, a), y = sum_log(f, b);
        if (x.frames && x.frames == y.frames && x.next_seq == y.next_seq && x.hash == y.hash &&
            !x.gap && !y.gap) {
            if (took)
                *took = now_s() - t0;
            return true;
        }
        nap_ms(25);
    }
    logsum x = sum_log(f, a), y = sum_log(f, b);
    fprintf(stderr, "logs differ: n%d frames=%llu next=%llu gap=%d, n%d frames=%llu next=%llu "
            "gap=%d\n", a + 1, (unsigned long long)x.frames, (unsigned long long)x.next_seq,
            x.gap, b + 1, (unsigned long long)y.frames, (unsigned long long)y.next_seq, y.gap);
    return false;
}

/* ---- clients and figures --------------------------------------------------------- */

static pid_t spawn_send(const char *server, const char *file, const char *log)
{
    const char *argv[] = {FERRY_PATH, "send", "--server", server, "--channel", CHAN,
                          "--retries", "20", "-v", file, NULL};
    return tc_spawn(argv, NULL, NULL, log, true);
}

static int send_to(fixture *f, const char *server, const char *file)
{
    char log[128];
    int st = 0;
    snprintf(log, sizeof log, "%s/send.log", f->dir);
    pid_t pid = spawn_send(server, file, log);
    assert_true(pid > 0);
    assert_int_equal(tc_wait(pid, WAIT_MS, &st), 0);
    return tc_exit_code(st);
}

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

#define LEADER "ferry_cluster_leader{channel=\"" CHAN "\"}"
#define EPOCH "ferry_cluster_epoch{channel=\"" CHAN "\"}"

static void test_followers_mirror(void **state)
{
    FIXTURE();
    char file[2][128];
    for (int i = 0; i < 2; i++) {
        snprintf(file[i], sizeof file[i], "%s/a%d.bin", f->dir, i);
        assert_int_equal(tc_make_file(file[i], i ? 64u << 10 : 3u << 20, 10 + i, NULL), 0);
    }
    assert_int_equal(send_to(f, f->d[0].addr, file[0]), 0); /* n1 leads */
    assert_int_equal(send_to(f, f->d[0].addr, file[1]), 0);
    assert_int_equal(metric(f, 0, LEADER), 1);
    double t1 = 0, t2 = 0;
    assert_true(wait_same(f, 0, 1, &t1));
    assert_true(wait_same(f, 0, 2, &t2));
    assert_int_equal(metric(f, 1, LEADER), 0);
    assert_int_equal(metric(f, 2, LEADER), 0);
    logsum s = sum_log(f, 0);
    assert_true(s.frames >= 8); /* two files: begin, data..., end each */
    fprintf(stderr, "measured: followers identical (%llu frames, seqs %llu..%llu) %.3f s / "
            "%.3f s after the send\n", (unsigned long long)s.frames,
            (unsigned long long)s.first_seq, (unsigned long long)s.next_seq - 1, t1, t2);
}

static void test_follower_restart_midstream(void **state)
{
    FIXTURE();
    char file[128], log[128], listen[64];
    int st = 0;
    snprintf(file, sizeof file, "%s/b.bin", f->dir);
    snprintf(log, sizeof log, "%s/send-b.log", f->dir);
    assert_int_equal(tc_make_file(file, 24u << 20, 20, NULL), 0);
    pid_t s = spawn_send(f->d[0].addr, file, log);
    assert_true(s > 0);
    /* Kill n2 once it holds part of the file. */
    uint64_t before = sum_log(f, 1).frames;
    for (int k = 0; k < 400 && sum_log(f, 1).frames < before + 4; k++)
        nap_ms(5);
    snprintf(listen, sizeof listen, "%s", f->d[1].addr);
    tc_daemon_kill9(&f->d[1]);
    assert_int_equal(start_node(f, 1, listen), 0);
    assert_int_equal(tc_wait(s, WAIT_MS, &st), 0);
    assert_int_equal(tc_exit_code(st), 0);
    assert_true(wait_same(f, 0, 1, NULL));
    assert_true(wait_same(f, 0, 2, NULL));
}

static void test_leader_kill9_failover(void **state)
{
    FIXTURE();
    char file[128], list[300];
    snprintf(file, sizeof file, "%s/c.bin", f->dir);
    assert_int_equal(tc_make_file(file, 1u << 20, 30, NULL), 0);
    /* Give the followers a moment to report (the leader puts them in sync). */
    nap_ms(700);
    snprintf(list, sizeof list, "%s,%s,%s", f->d[0].addr, f->d[1].addr, f->d[2].addr);
    double t0 = now_s();
    tc_daemon_kill9(&f->d[0]);
    assert_int_equal(send_to(f, list, file), 0);
    double took = now_s() - t0;
    int lead = metric(f, 1, LEADER) == 1 ? 1 : 2;
    assert_int_equal(metric(f, lead, LEADER), 1);
    assert_int_equal(metric(f, lead, EPOCH), 2);
    assert_true(wait_same(f, lead, 3 - lead, NULL));
    logsum s = sum_log(f, lead);
    assert_false(s.gap);
    fprintf(stderr, "measured: kill -9 of the leader to the next file acked by n%d: %.3f s "
            "(ttl " TTL " s)\n", lead + 1, took);
}

/* Lines of path holding needle. */
static int count_in(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    int n = 0;
    while (fp && fgets(line, sizeof line, fp))
        n += strstr(line, needle) != NULL;
    if (fp)
        fclose(fp);
    return n;
}

/* Every node down, the leader restarted first: still named leader (no
 * live follower to take over), it reopened its log, so it moves the
 * channel to the next epoch before it takes a file (docs/cluster.md,
 * "Followers").  A follower restarted next lets acks (R = 2) go on. */
static void test_reopened_leader_moves_epoch(void **state)
{
    FIXTURE();
    char file[128], listen[2][64];
    int lead = metric(f, 1, LEADER) == 1 ? 1 : 2, other = 3 - lead;
    long long e = metric(f, lead, EPOCH);
    snprintf(file, sizeof file, "%s/d.bin", f->dir);
    assert_int_equal(tc_make_file(file, 256u << 10, 40, NULL), 0);
    snprintf(listen[0], sizeof listen[0], "%s", f->d[lead].addr);
    snprintf(listen[1], sizeof listen[1], "%s", f->d[other].addr);
    for (int i = 0; i < 3; i++)
        if (f->d[i].pid > 0)
            tc_daemon_kill9(&f->d[i]);
    assert_int_equal(start_node(f, lead, listen[0]), 0);
    for (int k = 0; k < 400 && !count_in(f->log[lead], "msg=\"cluster epoch moved on\""); k++)
        nap_ms(25);
    assert_int_equal(count_in(f->log[lead], "msg=\"cluster epoch moved on\""), 1);
    assert_int_equal(metric(f, lead, EPOCH), e + 1);
    assert_int_equal(start_node(f, other, listen[1]), 0);
    assert_int_equal(send_to(f, f->d[lead].addr, file), 0);
    assert_int_equal(metric(f, lead, LEADER), 1);
    assert_int_equal(metric(f, lead, EPOCH), e + 1);
    assert_true(wait_same(f, lead, other, NULL));
}

/* Divergence: a follower holds a file its new leader never got (the
 * leader's state is set in etcd as an operator or a race could leave it):
 * it cuts that tail back to where its epoch ends on the new leader, then
 * follows; both logs end up identical. */
static void test_diverged_follower_cuts(void **state)
{
    FIXTURE();
    int lead = metric(f, 1, LEADER) == 1 ? 1 : 2, ahead = 3 - lead, behind = 0;
    long long e = metric(f, lead, EPOCH);
    char x[128], y[128], v[160];
    snprintf(x, sizeof x, "%s/x.bin", f->dir);
    snprintf(y, sizeof y, "%s/y.bin", f->dir);
    assert_int_equal(tc_make_file(x, 512u << 10, 50, NULL), 0);
    assert_int_equal(tc_make_file(y, 128u << 10, 51, NULL), 0);
    assert_true(f->d[behind].pid <= 0); /* down since the test before */
    assert_int_equal(send_to(f, f->d[lead].addr, x), 0);
    assert_true(wait_same(f, lead, ahead, NULL));
    logsum before = sum_log(f, ahead), old = sum_log(f, behind);
    assert_true(before.next_seq > old.next_seq);

    /* The leader dies; etcd names the node that lacks x. */
    tc_daemon_kill9(&f->d[lead]);
    fy_etcd *ec;
    assert_int_equal(fy_etcd_open(f->etcd.url, 2000, &ec), 0);
    snprintf(v, sizeof v, "{\"leader\":\"n%d\",\"epoch\":%lld,\"isr\":[\"n%d\",\"n%d\"],"
             "\"r\":2}", behind + 1, e + 1, behind + 1, ahead + 1);
    assert_int_equal(fy_etcd_put(ec, "/ferry/channels/" CHAN, v, strlen(v), 0), 0);
    fy_etcd_close(ec);
    assert_int_equal(start_node(f, behind, ""), 0);
    assert_int_equal(send_to(f, f->d[behind].addr, y), 0);
    assert_int_equal(metric(f, behind, LEADER), 1);
    assert_int_equal(metric(f, behind, EPOCH), e + 1);
    assert_true(wait_same(f, behind, ahead, NULL));
    assert_int_equal(count_in(f->log[ahead], "msg=\"diverged tail cut\""), 1);
    logsum now = sum_log(f, ahead);
    assert_false(now.gap);
    fprintf(stderr, "measured: diverged follower n%d cut from next_seq %llu back to %llu, "
            "now at %llu\n", ahead + 1, (unsigned long long)before.next_seq,
            (unsigned long long)old.next_seq, (unsigned long long)now.next_seq);
}

/* A follower down while its leader's retention removed what it needs
 * next: the leader answers FY_ENOSEQ, and the follower empties its log to
 * start again at the leader's first seq, then follows. */
static void test_follower_behind_retention(void **state)
{
    FIXTURE();
    int L = -1, F = -1, D = -1;
    char listen[64], file[128];
    for (int i = 0; i < 3; i++) {
        if (f->d[i].pid <= 0)
            D = i;
        else if (metric(f, i, LEADER) == 1)
            L = i;
        else
            F = i;
    }
    assert_true(L >= 0 && F >= 0 && D >= 0);
    logsum old = sum_log(f, F);
    assert_int_equal(tc_daemon_stop(&f->d[F], 10000, NULL), 0);
    snprintf(listen, sizeof listen, "%s", f->d[L].addr);
    assert_int_equal(tc_daemon_stop(&f->d[L], 10000, NULL), 0);
    assert_int_equal(start_node_r(f, L, listen, true), 0);
    assert_int_equal(start_node(f, D, ""), 0);
    for (int k = 0; k < 6; k++) {
        snprintf(file, sizeof file, "%s/r%d.bin", f->dir, k);
        assert_int_equal(tc_make_file(file, 3u << 20, 60 + k, NULL), 0);
        assert_int_equal(send_to(f, f->d[L].addr, file), 0);
    }
    for (int k = 0; k < 200 && sum_log(f, L).first_seq <= old.next_seq; k++)
        nap_ms(25);
    logsum lead = sum_log(f, L);
    assert_true(lead.first_seq > old.next_seq);
    assert_int_equal(start_node(f, F, ""), 0);
    /* Its log starts at the first file-begin the leader holds (the frames
     * before it are the rest of a file) and is the leader's from there. */
    logsum a = {0}, b = {0};
    for (int k = 0; k < 400; k++) {
        b = sum_log(f, F);
        a = sum_log_from(f, L, b.first_seq);
        if (b.frames && a.hash == b.hash && a.next_seq == b.next_seq && !b.gap)
            break;
        nap_ms(25);
    }
    assert_true(b.frames && a.hash == b.hash && a.frames == b.frames && !b.gap);
    assert_true(b.first_seq >= lead.first_seq && b.first_seq < lead.next_seq);
    assert_int_equal(count_in(f->log[F], "msg=\"log emptied to start again\""), 1);
    fprintf(stderr, "measured: follower at next_seq %llu started again at seq %llu (the "
            "leader's first seq %llu; its first file-begin)\n", (unsigned long long)old.next_seq,
            (unsigned long long)b.first_seq, (unsigned long long)lead.first_seq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_followers_mirror),
        cmocka_unit_test(test_follower_restart_midstream),
        cmocka_unit_test(test_leader_kill9_failover),
        cmocka_unit_test(test_reopened_leader_moves_epoch),
        cmocka_unit_test(test_diverged_follower_cuts),
        cmocka_unit_test(test_follower_behind_retention),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
