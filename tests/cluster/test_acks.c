/*
 * test_acks.c - a cluster leader's side of replication (docs/cluster.md,
 * "Acknowledgements"), against a real etcd-server and a real ferryd
 * --cluster on loopback, with fake followers written here: raw TCP
 * clients that send a replica hello (FY_HELLO_F_REPLICA), read the stream
 * frames and answer replica-stored frames when the test says so.  A raw
 * sender (relay_harness) sends small files and watches for their acks.
 *
 *   - a file-end is not acked until the in-sync follower reports it, then
 *     is (the follower is put in the in-sync set when it catches up);
 *   - a report of another epoch is ignored;
 *   - with two followers in sync and R = 2, one that stops reporting is
 *     taken out after --replica-lag and acks resume; the last one taken
 *     out stops acks (in-sync set below R) until it reports again;
 *   - a replica hello naming a newer epoch gets FY_ESTALE; the welcome of
 *     a follower ahead of the log names where to cut it (trunc_seq);
 *   - --acks leader acks at once; without --cluster a replica hello is
 *     FY_EPROTO.
 * Skipped when etcd-server is not installed.  Every process is stopped by
 * PID; every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/etcd.h"
#include "ferry/err.h"
#include "obs/http_get.h"
#include "relay/relay_harness.h"

#define LAG_MS 1500     /* --replica-lag */
#define QUIET_MS 700    /* "not acked": nothing within this long */
#define SOON_MS 15000   /* "acked": within this long (a member poll or two, a lag; an
                         * in-sync change took over 8 s once in CI, beside the other
                         * cluster tests on 2 cores) */

typedef struct fixture {
    char dir[64];
    tc_etcd etcd;
    rh_daemon d;
    rh_daemon peer[2]; /* real followers (test_real_followers) */
} fixture;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int start(fixture *f, const char *node, const char *acks)
{
    const char *extra[] = {"--cluster", f->etcd.url, "--node", node, "--cluster-ttl", "2",
                           "--replicas", "2", "--replica-lag", "1500ms", "--acks", acks,
                           "--metrics", "127.0.0.1:0", NULL};
    if (rh_init(&f->d) < 0)
        return -1;
    return rh_start(&f->d, extra);
}

static int setup(void **state)
{
    static fixture f;

    *state = NULL;
    if (!tc_etcd_available()) {
        fprintf(stderr, "skip: etcd-server is not installed (/usr/bin/etcd)\n");
        return 0;
    }
    memset(&f, 0, sizeof f);
    if (tc_tmpdir(f.dir, sizeof f.dir, "cluster-acks") < 0 ||
        tc_etcd_start(&f.etcd, f.dir, 20000) < 0 || start(&f, "n1", "all") < 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    if (!f)
        return 0;
    rh_cleanup(&f->d, true);
    for (int i = 0; i < 2; i++)
        if (f->peer[i].pid > 0) {
            kill(f->peer[i].pid, SIGCONT);
            rh_cleanup(&f->peer[i], true);
        }
    tc_etcd_stop(&f->etcd);
    tc_tmpdir_done(f->dir);
    return 0;
}

/* ---- the fake follower and the raw sender ------------------------------------ */

/* A replica hello for chan as node; 0 with *w, or -FY_E* / -errno. */
static int replica_hello(int fd, const char *chan, const char *node, uint64_t cepoch,
                         uint64_t last_epoch, uint64_t log_next, fy_welcome *w)
{
    fy_hello h = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_RESUME, .resume_from = log_next,
                  .flags = FY_HELLO_F_RESUME | FY_HELLO_F_CLIENT | FY_HELLO_F_REPLICA |
                           FY_HELLO_F_AHEAD,
                  .epoch = last_epoch, .cepoch = cepoch, .last_epoch = last_epoch,
                  .log_next = log_next};
    uint8_t p[1024];
    size_t n;
    rh_frame fr;
    int rc;

    snprintf(h.channel, sizeof h.channel, "%s", chan);
    snprintf(h.client, sizeof h.client, "%s", node);
    if ((rc = fy_hello_encode(&h, p, sizeof p, &n)) < 0 ||
        (rc = rh_send_frame(fd, FY_FT_HELLO, 0, 0, p, n)) < 0 || (rc = rh_read_frame(fd, &fr)) < 0)
        return rc;
    if (fr.hdr.type == FY_FT_ERROR) {
        fy_error e;
        rc = fy_error_decode(fr.payload, fr.hdr.len, &e) < 0 ? -FY_EPAYLOAD : -(int)e.code;
        if (rc != -FY_EPAYLOAD)
            fprintf(stderr, "replica hello refused: %s\n", e.text);
    } else {
        rc = fr.hdr.type == FY_FT_WELCOME ? fy_welcome_decode(fr.payload, fr.hdr.len, w)
                                          : -FY_EPROTO;
    }
    rh_frame_free(&fr);
    return rc;
}

static int replica_connect(const fixture *f, const char *chan, const char *node, uint64_t cepoch)
{
    fy_welcome w;
    int fd = rh_connect(&f->d);
    assert_true(fd >= 0);
    assert_int_equal(replica_hello(fd, chan, node, cepoch, 0, 1, &w), 0);
    assert_true(w.ext4);
    assert_int_equal(w.cepoch, cepoch);
    assert_int_equal(w.trunc_seq, 0);
    return fd;
}

/* Is there something to read within ms? */
static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* The follower reads stream frames until it holds seq. */
static void replica_read_to(int fd, uint64_t seq)
{
    double t0 = now_s();
    for (uint64_t got = 0; got < seq;) {
        assert_true(now_s() - t0 < SOON_MS / 1e3);
        rh_frame fr;
        assert_int_equal(rh_read_frame(fd, &fr), 0);
        assert_int_not_equal(fr.hdr.type, FY_FT_ERROR);
        if (fy_frame_is_stream(fr.hdr.type))
            got = fr.hdr.seq;
        rh_frame_free(&fr);
    }
}

static void replica_report(int fd, uint64_t cepoch, uint64_t seq)
{
    fy_replica_stored r = {.cepoch = cepoch, .seq = seq};
    uint8_t p[FY_REPLICA_STORED_SIZE];
    size_t n;
    assert_int_equal(fy_replica_stored_encode(&r, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_REPLICA_STORED, 0, 0, p, n), 0);
}

/* The sender's ack of seq within ms: 0, -ETIMEDOUT, or another error. */
static int ack_within(int fd, uint64_t seq, int ms)
{
    double end = now_s() + ms / 1e3;
    for (;;) {
        int left = (int)((end - now_s()) * 1e3);
        if (left <= 0 || !readable(fd, left))
            return -ETIMEDOUT;
        rh_frame fr;
        int rc = rh_read_frame(fd, &fr);
        if (rc < 0)
            return rc;
        fy_ack a = {0};
        fy_error e;
        if (fr.hdr.type == FY_FT_ERROR)
            rc = fy_error_decode(fr.payload, fr.hdr.len, &e) < 0 ? -FY_EPAYLOAD : -(int)e.code;
        else if (fr.hdr.type == FY_FT_ACK)
            fy_ack_decode(fr.payload, fr.hdr.len, &a);
        rh_frame_free(&fr);
        if (rc < 0)
            return rc;
        if (a.seq == seq)
            return 0;
    }
}

/* One small file: its file-end's seq. */
static uint64_t send_one(int fd, uint32_t chan, uint64_t *seq, const char *name)
{
    uint8_t data[3000];
    rh_fill(data, sizeof data, *seq);
    assert_int_equal(rh_send_file(fd, chan, seq, name, data, sizeof data, 1000), 0);
    return *seq - 1;
}

/* A sender on chan.  FY_ESHUTDOWN ("connect again") is retried, as ferry
 * send does: a new channel's writer takes local senders only once the
 * replica manager has told it that this node leads (writer_follow.c). */
static int sender_connect(const fixture *f, const char *chan, fy_welcome *w)
{
    for (int i = 0; i < 100; i++) {
        int fd = rh_connect(&f->d);
        assert_true(fd >= 0);
        int rc = rh_hello(fd, FY_ROLE_SENDER, chan, "", 0, 0, w);
        if (rc == 0)
            return fd;
        close(fd);
        assert_int_equal(rc, -FY_ESHUTDOWN);
        usleep(50 * 1000);
    }
    fail_msg("no welcome for a sender on %s", chan);
    return -1;
}

/* The value of the sample `name` (labels included) in /metrics (-1: absent). */
static double metric(const fixture *f, const char *name)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", f->d.metrics_port);
    char *r = t_http(addr, "GET /metrics HTTP/1.0\r\n\r\n", 5);
    const char *p = r;
    double v = -1;
    while ((p = strstr(p, name))) {
        if ((p == r || p[-1] == '\n') && p[strlen(name)] == ' ') {
            v = atof(p + strlen(name) + 1);
            break;
        }
        p += strlen(name);
    }
    free(r);
    return v;
}

/* ---- the tests ------------------------------------------------------------------ */

/* (a), (c), (b): acks held for the in-sync followers, reports of another
 * epoch ignored, the set shrinking and growing. */
static void test_acks_wait_for_isr(void **state)
{
    fixture *f = *state;
    fy_welcome w;
    if (!f)
        skip();
    int s = sender_connect(f, "a1", &w);
    uint64_t seq = w.next_seq;
    int r1 = replica_connect(f, "a1", "f1", 1);

    /* (a) not acked until f1 reports it, then acked */
    uint64_t fe = send_one(s, w.channel, &seq, "one");
    replica_read_to(r1, fe);
    assert_int_equal(ack_within(s, fe, QUIET_MS), -ETIMEDOUT);
    double t0 = now_s();
    replica_report(r1, 1, fe);
    assert_int_equal(ack_within(s, fe, SOON_MS), 0);
    printf("report to ack (f1 put in sync): %.3f s\n", now_s() - t0);
    assert_int_equal(rh_wait_log(&f->d, "msg=\"cluster in-sync set\" channel=a1 node=f1 in=yes "
                                        "reason=caught-up", 1, 2000), 0);

    /* (c) a report of another epoch is ignored */
    fe = send_one(s, w.channel, &seq, "two");
    replica_read_to(r1, fe);
    replica_report(r1, 7, fe);
    assert_int_equal(ack_within(s, fe, QUIET_MS), -ETIMEDOUT);
    assert_int_equal(rh_wait_log(&f->d, "cluster replica report of another epoch", 1, 2000), 0);
    replica_report(r1, 1, fe);
    assert_int_equal(ack_within(s, fe, SOON_MS), 0);

    /* (b) f2 in sync too; it stops reporting: out after the lag, acks go on */
    int r2 = replica_connect(f, "a1", "f2", 1);
    replica_read_to(r2, fe);
    replica_report(r2, 1, fe);
    assert_int_equal(rh_wait_log(&f->d, "channel=a1 node=f2 in=yes", 1, SOON_MS), 0);
    fe = send_one(s, w.channel, &seq, "three");
    replica_read_to(r1, fe);
    replica_report(r1, 1, fe);
    assert_int_equal(ack_within(s, fe, QUIET_MS), -ETIMEDOUT); /* f2 is in sync */
    assert_true(metric(f, "ferry_cluster_isr_size{channel=\"a1\"}") == 3);
    assert_true(metric(f, "ferry_cluster_acks_waiting{channel=\"a1\"}") == 1);
    assert_true(metric(f, "ferry_cluster_replica_lag_frames{channel=\"a1\",node=\"f2\"}") == 5);
    assert_true(metric(f, "ferry_cluster_replica_lag_frames{channel=\"a1\",node=\"f1\"}") == 0);
    assert_true(metric(f, "ferry_cluster_replica_lag_seconds{channel=\"a1\",node=\"f2\"}") > 0.3);
    assert_true(metric(f, "ferry_cluster_failovers_total") == 0);
    t0 = now_s();
    assert_int_equal(ack_within(s, fe, SOON_MS), 0);
    printf("f2 silent: acked again after %.3f s (replica-lag %d ms)\n", now_s() - t0 + QUIET_MS / 1e3,
           LAG_MS);
    assert_int_equal(rh_wait_log(&f->d, "channel=a1 node=f2 in=no reason=lagging", 1, 2000), 0);

    /* f1 silent too: the set is below R, nothing is acked until it reports */
    fe = send_one(s, w.channel, &seq, "four");
    replica_read_to(r1, fe);
    assert_int_equal(rh_wait_log(&f->d, "channel=a1 node=f1 in=no reason=lagging", 1, SOON_MS), 0);
    assert_int_equal(ack_within(s, fe, QUIET_MS), -ETIMEDOUT);
    replica_report(r1, 1, fe);
    assert_int_equal(ack_within(s, fe, SOON_MS), 0);
    assert_int_equal(rh_wait_log(&f->d, "channel=a1 node=f1 in=yes", 2, 2000), 0);
    close(r2);
    close(r1);
    close(s);
}

/* (d) a replica hello naming a newer epoch: FY_ESTALE.  A follower whose
 * log runs past the leader's: trunc_seq is the leader's end. */
static void test_replica_hello_checks(void **state)
{
    fixture *f = *state;
    fy_welcome w;
    if (!f)
        skip();
    int s = sender_connect(f, "d1", &w);
    uint64_t seq = w.next_seq;
    (void)send_one(s, w.channel, &seq, "one");
    assert_int_equal(rh_wait_log(&f->d, "msg=\"file stored\" channel=d1", 1, SOON_MS), 0);

    /* ahead of the log in the leader's epoch: cut at the log's end */
    int fd = rh_connect(&f->d);
    assert_int_equal(replica_hello(fd, "d1", "f9", 1, 1, seq + 50, &w), 0);
    assert_true(w.ext4);
    assert_int_equal(w.trunc_seq, seq);
    close(fd);
    /* an epoch the leader does not know: trusted below its epoch's start only */
    fd = rh_connect(&f->d);
    assert_int_equal(replica_hello(fd, "d1", "f9", 1, 999, seq, &w), 0);
    assert_int_equal(w.trunc_seq, 1);
    close(fd);
    /* nothing past the leader's history: no cut */
    fd = rh_connect(&f->d);
    assert_int_equal(replica_hello(fd, "d1", "f9", 1, 1, seq, &w), 0);
    assert_int_equal(w.trunc_seq, 0);
    close(fd);

    fd = rh_connect(&f->d);
    assert_int_equal(replica_hello(fd, "d1", "f9", 5, 0, 1, &w), -FY_ESTALE);
    assert_int_equal(rh_wait_log(&f->d, "cluster replica names a newer epoch", 1, 2000), 0);
    close(fd);
    close(s);
}

/* The next error frame on fd within ms: -FY_E*, or -ETIMEDOUT. */
static int error_within(int fd, int ms)
{
    double end = now_s() + ms / 1e3;
    for (;;) {
        int left = (int)((end - now_s()) * 1e3);
        if (left <= 0 || !readable(fd, left))
            return -ETIMEDOUT;
        rh_frame fr;
        int rc = rh_read_frame(fd, &fr);
        if (rc < 0)
            return rc;
        fy_error e;
        if (fr.hdr.type == FY_FT_ERROR)
            rc = fy_error_decode(fr.payload, fr.hdr.len, &e) < 0 ? -FY_EPAYLOAD : -(int)e.code;
        rh_frame_free(&fr);
        if (rc < 0)
            return rc;
    }
}

/* Fencing: another node leads the channel in a newer epoch (written to
 * etcd here, as a takeover would): the file waiting for its ack is never
 * acked, the sender and the replica connection get FY_ENOTLEADER (new
 * hellos are redirected: phase 1, test_cluster_relay). */
static void test_fenced(void **state)
{
    fixture *f = *state;
    fy_welcome w;
    if (!f)
        skip();
    int s = sender_connect(f, "x1", &w);
    uint64_t seq = w.next_seq;
    int r1 = replica_connect(f, "x1", "f1", 1);
    uint64_t fe = send_one(s, w.channel, &seq, "one");
    replica_read_to(r1, fe);
    replica_report(r1, 1, fe);
    assert_int_equal(ack_within(s, fe, SOON_MS), 0);

    fe = send_one(s, w.channel, &seq, "two"); /* f1 does not report it */
    replica_read_to(r1, fe);
    fy_etcd *e;
    const char *st = "{\"leader\":\"f1\",\"epoch\":2,\"isr\":[\"f1\"],\"r\":2}";
    assert_int_equal(fy_etcd_open(f->etcd.url, 2000, &e), 0);
    assert_int_equal(fy_etcd_put(e, "/ferry/channels/x1", st, strlen(st), 0), 0);
    fy_etcd_close(e);
    double t0 = now_s();
    assert_int_equal(ack_within(s, fe, SOON_MS), -FY_ENOTLEADER);
    printf("etcd names another leader -> sender told FY_ENOTLEADER: %.3f s\n", now_s() - t0);
    assert_int_equal(error_within(r1, SOON_MS), -FY_ENOTLEADER);
    assert_int_equal(rh_wait_log(&f->d, "msg=\"cluster leader fenced\" channel=x1 epoch=1 "
                                        "leader=f1 leader_epoch=2", 1, 2000), 0);
    close(r1);
    close(s);
}

/* ferryd `node` in a cluster of its own prefix (real followers). */
static int start_real(fixture *f, rh_daemon *d, const char *node)
{
    const char *extra[] = {"--cluster", f->etcd.url, "--node", node, "--cluster-ttl", "2",
                           "--cluster-prefix", "/real", "--replicas", "2", "--replica-lag",
                           "1500ms", "--metrics", "127.0.0.1:0", NULL};
    if (rh_init(d) < 0)
        return -1;
    return rh_start(d, extra);
}

/* Below R on a new channel: a sender that never waits is paced by its
 * credits (they wait for the acks before them), so the relay holds at most
 * about the channel budget of it (4 MiB), not all it would send. */
static void pace_below_r(fixture *f)
{
    static uint8_t data[64 << 10];
    fy_welcome w;
    int s = sender_connect(f, "r2", &w);
    struct timeval tv = {0, 300000};
    uint64_t seq = w.next_seq, sent = 0;
    char name[32];

    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    rh_fill(data, sizeof data, 7);
    for (int i = 0; sent < (128u << 20); i++) {
        snprintf(name, sizeof name, "p%d", i);
        if (rh_send_file(s, w.channel, &seq, name, data, sizeof data, 16 << 10) < 0)
            break;
        sent += sizeof data;
    }
    printf("below R: the sender was paced after %llu KiB\n", (unsigned long long)(sent >> 10));
    assert_true(sent < (32u << 20));
    assert_true(metric(f, "ferry_cluster_acks_waiting{channel=\"r2\"}") >= 1);
    close(s);
}

/* Real followers (actors/upstream_replica.c): n1 leads, n2 and n3 follow.
 * A file is acked once they are in sync; both stopped (SIGSTOP), they
 * leave the in-sync set after the lag and nothing is acked (below R);
 * one continued catches up, is put back, and the file is acked. */
static void test_real_followers(void **state)
{
    fixture *f = *state;
    fy_welcome w;
    if (!f)
        skip();
    rh_cleanup(&f->d, false);
    assert_int_equal(start_real(f, &f->d, "n1"), 0);
    assert_int_equal(start_real(f, &f->peer[0], "n2"), 0);
    assert_int_equal(start_real(f, &f->peer[1], "n3"), 0);
    int s = sender_connect(f, "r1", &w); /* the first hello: n1 leads */
    uint64_t seq = w.next_seq;
    double t0 = now_s();
    uint64_t fe = send_one(s, w.channel, &seq, "one");
    assert_int_equal(ack_within(s, fe, SOON_MS), 0);
    printf("real followers: first file acked after %.3f s (followers found and put in sync)\n",
           now_s() - t0);
    assert_int_equal(rh_wait_log(&f->d, "channel=r1 node=n2 in=yes", 1, SOON_MS), 0);
    assert_int_equal(rh_wait_log(&f->d, "channel=r1 node=n3 in=yes", 1, SOON_MS), 0);
    t0 = now_s();
    fe = send_one(s, w.channel, &seq, "two");
    assert_int_equal(ack_within(s, fe, SOON_MS), 0);
    printf("real followers in sync: file acked after %.3f s\n", now_s() - t0);

    kill(f->peer[0].pid, SIGSTOP);
    kill(f->peer[1].pid, SIGSTOP);
    fe = send_one(s, w.channel, &seq, "three");
    assert_int_equal(ack_within(s, fe, QUIET_MS), -ETIMEDOUT);
    assert_int_equal(rh_wait_log(&f->d, "channel=r1 node=n2 in=no", 1, SOON_MS), 0);
    assert_int_equal(rh_wait_log(&f->d, "channel=r1 node=n3 in=no", 1, SOON_MS), 0);
    assert_int_equal(ack_within(s, fe, QUIET_MS), -ETIMEDOUT); /* below R */
    pace_below_r(f);
    t0 = now_s();
    kill(f->peer[1].pid, SIGCONT);
    assert_int_equal(ack_within(s, fe, 3 * SOON_MS), 0);
    printf("a follower continued: acked %.3f s later\n", now_s() - t0);
    assert_int_equal(rh_wait_log(&f->d, "channel=r1 node=n3 in=yes", 2, 2000), 0);
    kill(f->peer[0].pid, SIGCONT);
    close(s);
    for (int i = 0; i < 2; i++)
        rh_cleanup(&f->peer[i], false);
}

/* (e) --acks leader acks at once; without --cluster a replica hello is
 * refused FY_EPROTO. */
static void test_acks_leader(void **state)
{
    fixture *f = *state;
    fy_welcome w;
    if (!f)
        skip();
    rh_cleanup(&f->d, false);
    assert_int_equal(start(f, "n2", "leader"), 0);
    int s = sender_connect(f, "e1", &w);
    uint64_t seq = w.next_seq;
    uint64_t fe = send_one(s, w.channel, &seq, "one");
    assert_int_equal(ack_within(s, fe, 3000), 0);
    close(s);

    rh_cleanup(&f->d, false);
    assert_int_equal(rh_init(&f->d), 0);
    assert_int_equal(rh_start(&f->d, NULL), 0);
    int fd = rh_connect(&f->d);
    assert_int_equal(replica_hello(fd, "e1", "f1", 1, 0, 1, &w), -FY_EPROTO);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acks_wait_for_isr),
        cmocka_unit_test(test_replica_hello_checks),
        cmocka_unit_test(test_fenced),
        cmocka_unit_test(test_real_followers),
        cmocka_unit_test(test_acks_leader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
