/*
 * test_relay.c - end-to-end tests of ferryd: the real daemon on 127.0.0.1
 * (port 0), real TCP, the protocol spoken with fy_proto.  Each test starts
 * its own daemon in a temp directory; the teardown stops it by PID and
 * prints its log tail when the test did not finish.
 *
 * This file: the stream itself -- fan-out, late and resuming receivers, one
 * sender per channel, the data directory's lock, restarts, live receivers
 * joining mid-file, segment retention, two channels, SIGTERM, tokens.  The
 * other themes are in test_relay_integrity.c (damage and refusals),
 * test_relay_flow.c (descriptors, throttling, memory), test_relay_idle.c
 * (idle peers, takeover, idle close) and test_relay_limits.c (metrics,
 * config, flags, limits); relay_fixture.h holds what they share.
 */
/* Every header these tests use comes with the fixture. */
#include "relay_fixture.h"

static void test_fanout_three(void **st)
{
    tstate *t = *st;
    size_t len = 4u << 20;
    uint8_t *data = random_data(len, 1);
    rh_rx rx[3];
    fy_welcome w;
    const char *args[] = {"--fsync", "never", NULL};

    start(t, args);
    for (int i = 0; i < 3; i++) {
        receiver(t, &rx[i], "fan", FY_MODE_LIVE, 0);
        assert_int_equal(rx[i].next_seq, 1);
    }
    int fd = sender(t, "fan", "", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, 1);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "blob.bin", data, len);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rh_rx_until(&rx[i], 1, 0), 0);
        check_file(&rx[i].files[0], "blob.bin", data, len);
        rh_rx_free(&rx[i]);
    }
    say_bye(fd);
    free(data);
    t->ok = true;
}

static void test_late_start(void **st)
{
    tstate *t = *st;
    uint8_t *a = random_data(1u << 20, 2), *b = random_data(300000, 3);
    fy_welcome w;
    rh_rx rx;

    start(t, NULL);
    int fd = sender(t, "late", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a", a, 1u << 20);
    send_acked(fd, &w, &seq, "b", b, 300000);
    say_bye(fd);

    receiver(t, &rx, "late", FY_MODE_START, 0);
    assert_int_equal(rx.next_seq, 1);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    check_file(&rx.files[0], "a", a, 1u << 20);
    check_file(&rx.files[1], "b", b, 300000);
    rh_rx_free(&rx);
    free(a);
    free(b);
    t->ok = true;
}

static void test_resume(void **st)
{
    tstate *t = *st;
    size_t len = 200000; /* 4 data frames: a file is 6 frames */
    uint8_t *d[3];
    fy_welcome w;
    rh_rx rx;

    start(t, NULL);
    int fd = sender(t, "res", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        d[i] = random_data(len, 10 + (uint64_t)i);
        send_acked(fd, &w, &seq, name, d[i], len);
    }
    assert_int_equal(seq, 19);

    /* From the file-begin of the second file. */
    receiver(t, &rx, "res", FY_MODE_RESUME, 7);
    assert_int_equal(rx.next_seq, 7);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    assert_int_equal(rx.files[0].begin_seq, 7);
    check_file(&rx.files[0], "f1", d[1], len);
    check_file(&rx.files[1], "f2", d[2], len);
    rh_rx_free(&rx);

    /* From the middle of the second file: its rest is skipped, the third whole. */
    receiver(t, &rx, "res", FY_MODE_RESUME, 9);
    assert_int_equal(rx.next_seq, 9);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "f2", d[2], len);
    rh_rx_free(&rx);

    /* Past the end: refused. */
    int rfd = rh_connect(&t->d);
    assert_true(rfd >= 0);
    assert_int_equal(rh_hello(rfd, FY_ROLE_RECEIVER, "res", "", FY_MODE_RESUME, 100, &w),
                     -FY_ENOSEQ);
    close(rfd);

    /* Live data after a resume continues without gap. */
    receiver(t, &rx, "res", FY_MODE_RESUME, 13);
    uint8_t *e = random_data(len, 20);
    send_acked(fd, &w, &seq, "f3", e, len);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    check_file(&rx.files[0], "f2", d[2], len);
    check_file(&rx.files[1], "f3", e, len);
    rh_rx_free(&rx);
    say_bye(fd);
    for (int i = 0; i < 3; i++)
        free(d[i]);
    free(e);
    t->ok = true;
}

static void test_busy(void **st)
{
    tstate *t = *st;
    fy_welcome w, w2;

    start(t, NULL);
    int a = sender(t, "busy", "", &w);
    assert_true(a >= 0);
    assert_int_equal(sender(t, "busy", "", &w2), -FY_EBUSY);
    uint8_t x[1000];
    rh_fill(x, sizeof x, 5);
    uint64_t seq = w.next_seq;
    send_acked(a, &w, &seq, "x", x, sizeof x);
    say_bye(a);
    int c = sender_retry(t, "busy", &w2);
    assert_true(c >= 0);
    assert_int_equal(w2.next_seq, seq);
    say_bye(c);
    t->ok = true;
}

/* One ferryd per data directory: a second one on the same --data exits 1
 * naming the directory and the holder's PID, before it touches anything;
 * the first one goes on serving. */
static void test_data_dir_lock(void **st)
{
    tstate *t = *st;
    fy_welcome w;

    start(t, NULL);
    rh_daemon d2;
    memset(&d2, 0, sizeof d2);
    assert_int_equal(rh_init(&d2), 0);
    snprintf(d2.data, sizeof d2.data, "%s", t->d.data);
    assert_int_equal(rh_start(&d2, NULL), -ECHILD);
    assert_true(WIFEXITED(d2.exit_status) && WEXITSTATUS(d2.exit_status) == 1);
    char want[64];
    snprintf(want, sizeof want, "in use by another ferryd (pid %ld,", (long)t->d.pid);
    assert_int_equal(rh_log_count(&d2, want), 1);
    assert_int_equal(rh_log_count(&d2, t->d.data), 1);
    rh_cleanup(&d2, false);

    int a = sender(t, "locked", "", &w);
    assert_true(a >= 0);
    uint8_t x[1000];
    rh_fill(x, sizeof x, 6);
    uint64_t seq = w.next_seq;
    send_acked(a, &w, &seq, "x", x, sizeof x);
    say_bye(a);
    t->ok = true;
}

static void test_auth(void **st)
{
    tstate *t = *st;
    char path[400];
    fy_welcome w;

    snprintf(path, sizeof path, "%s/tokens", t->d.root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# test tokens\npub1 publish up*\nsub1 subscribe up*\nall1 both *\n");
    fclose(f);
    const char *args[] = {"--auth", path, NULL};
    start(t, args);

    assert_int_equal(sender(t, "upload", "wrong", &w), -FY_EAUTH);
    assert_int_equal(sender(t, "upload", "sub1", &w), -FY_EAUTH);
    assert_int_equal(sender(t, "other", "pub1", &w), -FY_EAUTH);
    int fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_RECEIVER, "upload", "pub1", FY_MODE_LIVE, 0, &w),
                     -FY_EAUTH);
    close(fd);

    int s = sender(t, "upload", "pub1", &w);
    assert_true(s >= 0);
    uint8_t x[5000];
    rh_fill(x, sizeof x, 9);
    uint64_t seq = w.next_seq;
    send_acked(s, &w, &seq, "x", x, sizeof x);
    say_bye(s);
    fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_RECEIVER, "upload", "sub1", FY_MODE_START, 0, &w), 0);
    close(fd);
    assert_true(rh_log_count(&t->d, "err=FY_EAUTH") >= 4);
    t->ok = true;
}

static void test_restart(void **st)
{
    tstate *t = *st;
    uint8_t *a = random_data(1u << 20, 11), *b = random_data(500000, 12);
    fy_welcome w;
    rh_rx rx;

    start(t, NULL);
    int fd = sender(t, "keep", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a", a, 1u << 20);
    say_bye(fd);
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    start(t, NULL);
    receiver(t, &rx, "keep", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "a", a, 1u << 20);
    fd = sender(t, "keep", "", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq);
    send_acked(fd, &w, &seq, "b", b, 500000);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    check_file(&rx.files[1], "b", b, 500000);
    rh_rx_free(&rx);
    say_bye(fd);
    free(a);
    free(b);
    t->ok = true;
}

/* A LIVE receiver that joins mid-file gets that file from its file-begin. */
static void test_live_midfile(void **st)
{
    tstate *t = *st;
    size_t len = 1u << 20;
    uint8_t *data = random_data(len, 21);
    uint8_t p[1024];
    size_t n;
    fy_welcome w;
    rh_rx rx;

    start(t, NULL);
    int fd = sender(t, "mid", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    uint8_t x[3000];
    rh_fill(x, sizeof x, 22);
    send_acked(fd, &w, &seq, "before", x, sizeof x);
    uint64_t begin = seq;
    fy_file_begin fb = {.size = len};
    snprintf(fb.name, sizeof fb.name, "during");
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_BEGIN, w.channel, seq++, p, n), 0);
    for (size_t off = 0; off < len / 2; off += CHUNK)
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, w.channel, seq++, data + off, CHUNK), 0);
    /* A ping is answered in order: once it is back, the frames before it are stored. */
    assert_int_equal(rh_send_frame(fd, FY_FT_PING, 0, 0, "sync", 4), 0);
    rh_frame f;
    assert_int_equal(rh_read_frame(fd, &f), 0);
    assert_int_equal(f.hdr.type, FY_FT_PONG);
    assert_memory_equal(f.payload, "sync", 4);
    rh_frame_free(&f);
    /* The pong proves the frames were read, not stored: wait (bounded) until a
     * LIVE receiver is told the file-begin. */
    for (int i = 0; i < 200; i++) {
        receiver(t, &rx, "mid", FY_MODE_LIVE, 0);
        if (rx.next_seq == begin)
            break;
        rh_rx_free(&rx);
        usleep(10000);
    }
    assert_int_equal(rx.next_seq, begin);
    for (size_t off = len / 2; off < len; off += CHUNK)
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, w.channel, seq++, data + off, CHUNK), 0);
    fy_file_end fe = {.size = len};
    assert_int_equal(fy_sha256_oneshot(data, len, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_END, w.channel, seq, p, n), 0);
    assert_int_equal(rh_wait_ack(fd, seq), 0);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "during", data, len);
    rh_rx_free(&rx);
    say_bye(fd);

    /* SIGUSR1 writes the flight recorder and names the file in the log. */
    kill(t->d.pid, SIGUSR1);
    for (int i = 0; i < 500 && rh_log_count(&t->d, "trace snapshot written") < 1; i++)
        usleep(10000);
    assert_int_equal(rh_log_count(&t->d, "trace snapshot written"), 1);
    assert_int_equal(rh_log_count(&t->d, "/trace-"), 1);
    free(data);
    t->ok = true;
}

/* Small segments and retention: a live receiver crosses segments, a late
 * START receiver gets what is still held, from its first whole file on. */
static void test_segments_retention(void **st)
{
    tstate *t = *st;
    const char *args[] = {"--max-payload", "64K", "--segment-bytes", "256K", "--retain-bytes",
                          "600K", "--channel-budget", "1M", "--window", "1M", "--memory", "8M",
                          NULL};
    size_t len = 100000;
    uint8_t *d[10];
    fy_welcome w;
    rh_rx live, late;

    start(t, args);
    receiver(t, &live, "ret", FY_MODE_LIVE, 0);
    int fd = sender(t, "ret", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        d[i] = random_data(len, 30 + (uint64_t)i);
        send_acked(fd, &w, &seq, name, d[i], len);
    }
    say_bye(fd);
    assert_int_equal(rh_rx_until(&live, 10, 0), 0);
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        check_file(&live.files[i], name, d[i], len);
    }
    rh_rx_free(&live);

    memset(&late, 0, sizeof late);
    late.fd = rh_connect(&t->d);
    assert_true(late.fd >= 0);
    assert_int_equal(rh_hello(late.fd, FY_ROLE_RECEIVER, "ret", "", FY_MODE_START, 0, &w), 0);
    assert_true(w.first_seq > 1);
    assert_int_equal(w.next_seq, w.first_seq);
    late.next_seq = w.next_seq;
    /* Files are 4 frames each (seqs 4k+1..4k+4): the first whole one held. */
    size_t first = (size_t)((w.first_seq - 1 + 3) / 4);
    assert_true(first >= 1 && first <= 8);
    assert_int_equal(rh_rx_until(&late, 10 - first, 0), 0);
    for (size_t i = first; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%zu", i);
        check_file(&late.files[i - first], name, d[i], len);
    }
    rh_rx_free(&late);
    assert_true(rh_log_count(&t->d, "old segments removed") >= 1);
    for (int i = 0; i < 10; i++)
        free(d[i]);
    t->ok = true;
}

/* ---- threads for the concurrent tests ----------------------------------------------- */

static void test_two_channels(void **st)
{
    tstate *t = *st;
    size_t len = 3u << 20;
    uint8_t *da = random_data(len, 14), *db = random_data(len, 15);
    job s[2] = {{.t = t, .chan = "alpha", .name = "a", .data = da, .len = len},
                {.t = t, .chan = "beta", .name = "b", .data = db, .len = len}};
    job r[2] = {{.t = t}, {.t = t}};
    pthread_t th[4];
    const char *args[] = {"--fsync", "20", NULL}; /* the interval policy */

    start(t, args);
    receiver(t, &r[0].rx, "alpha", FY_MODE_LIVE, 0);
    receiver(t, &r[1].rx, "beta", FY_MODE_LIVE, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, recv_job, &r[i]), 0);
        assert_int_equal(pthread_create(&th[2 + i], NULL, send_job, &s[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].rc, 0);
        assert_int_equal(r[i].rc, 0);
        check_file(&r[i].rx.files[0], i ? "b" : "a", i ? db : da, len);
        rh_rx_free(&r[i].rx);
    }
    free(da);
    free(db);
    t->ok = true;
}

static void test_sigterm(void **st)
{
    tstate *t = *st;
    uint8_t x[100000];
    fy_welcome w;
    rh_rx rx;

    rh_fill(x, sizeof x, 16);
    start(t, NULL);
    receiver(t, &rx, "term", FY_MODE_LIVE, 0);
    int fd = sender(t, "term", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "x", x, sizeof x);
    int idle = rh_connect(&t->d); /* connected, no hello yet */
    assert_true(idle >= 0);

    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(rh_wait_bye(fd), 0);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "x", x, sizeof x);
    assert_int_equal(rh_wait_bye(rx.fd), 0);
    assert_int_equal(rh_wait_bye(idle), 0);
    rh_rx_free(&rx);
    close(fd);
    close(idle);
    assert_true(rh_log_count(&t->d, "msg=\"exit\"") == 1);
    t->ok = true;
}

/* Receivers that resume mid-channel (their forwarders need the indexer for
 * a look-up) while SIGTERM arrives: the indexer must outlive them, or a
 * forwarder waits for an answer that never comes and the drain has to be
 * forced.  A thread keeps subscribing while the daemon is stopped, so some
 * subscriptions land in the window; every loop is bounded. */
typedef struct lk_job {
    const rh_daemon *d;
    atomic_bool stop;
    int fds[400];
    int n;
} lk_job;

static void *lk_subscribe(void *arg)
{
    lk_job *j = arg;
    fy_hello h = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_RESUME, .resume_from = 3};
    snprintf(h.channel, sizeof h.channel, "lk");
    uint8_t p[1024];
    size_t n;
    if (fy_hello_encode(&h, p, sizeof p, &n) < 0)
        return NULL;
    while (!atomic_load(&j->stop) && j->n < 400) {
        int fd = rh_connect(j->d);
        if (fd < 0)
            break;
        j->fds[j->n++] = fd;
        if (rh_send_frame(fd, FY_FT_HELLO, 0, 0, p, n) < 0)
            break;
    }
    return NULL;
}

static void test_sigterm_lookup(void **st)
{
    tstate *t = *st;
    uint8_t x[20000];
    fy_welcome w;

    rh_fill(x, sizeof x, 17);
    for (int round = 0; round < 4; round++) {
        start(t, NULL);
        if (round == 0) {
            int fd = sender(t, "lk", "", &w);
            assert_true(fd >= 0);
            uint64_t seq = w.next_seq;
            for (int i = 0; i < 4; i++) {
                char name[16];
                snprintf(name, sizeof name, "f%d", i);
                send_acked(fd, &w, &seq, name, x, sizeof x);
            }
            say_bye(fd);
        }
        lk_job *j = calloc(1, sizeof *j);
        assert_non_null(j);
        j->d = &t->d;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, lk_subscribe, j), 0);
        struct timespec ts = {0, (20 + 15 * round) * 1000000L};
        nanosleep(&ts, NULL);
        int status = rh_stop(&t->d, 10000);
        atomic_store(&j->stop, true);
        pthread_join(th, NULL);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        for (int i = 0; i < j->n; i++)
            close(j->fds[i]);
        free(j);
        assert_int_equal(rh_log_count(&t->d, "shutdown incomplete"), 0);
    }
    t->ok = true;
}

/* ---- idle peers and takeover ------------------------------------------------------ */

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fanout_three, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_dir_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_midfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_lookup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
