/*
 * test_relay_idle.c - ferryd end to end (see test_relay.c): idle senders and
 * receivers, pings that keep a peer alive, sender takeover, and the idle
 * close of a channel (also racing a new sender).
 */
/* Every header these tests use comes with the fixture. */
#include "relay_fixture.h"

static double now_s(void)
{
    return rh_now_s();
}

/* Read frames (answering nothing) until an error frame; pings, pongs and
 * acks are skipped.  Returns its code (the text must contain `want` when
 * given), then checks that the relay closes.  Bounded by count and by the
 * socket timeout. */
static int read_error_close(int fd, const char *want)
{
    for (int i = 0; i < 100000; i++) {
        rh_frame f;
        int rc = rh_read_frame(fd, &f);
        if (rc < 0)
            return rc;
        uint8_t type = f.hdr.type;
        if (fy_frame_is_stream(type) || type == FY_FT_PING || type == FY_FT_PONG ||
            type == FY_FT_ACK) {
            rh_frame_free(&f);
            continue;
        }
        fy_error e = {0};
        rc = type == FY_FT_ERROR ? fy_error_decode(f.payload, f.hdr.len, &e) : -FY_EPROTO;
        rh_frame_free(&f);
        if (rc < 0)
            return rc;
        if (want && !strstr(e.text, want)) {
            fprintf(stderr, "error text \"%s\" lacks \"%s\"\n", e.text, want);
            return -EINVAL;
        }
        rc = rh_read_frame(fd, &f);
        rh_frame_free(&f);
        return rc == -ENODATA || rc == -ECONNRESET ? (int)e.code : -EPROTO;
    }
    return -ETIMEDOUT;
}

/* For ms milliseconds, read what comes and answer every ping with a pong.
 * Returns the pings answered, or a negative error (an error frame's code,
 * EOF). */
static int answer_pings(int fd, int ms)
{
    int pings = 0;
    double end = now_s() + ms / 1000.0;
    for (int i = 0; i < 10000 && now_s() < end; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)((end - now_s()) * 1000) + 1;
        if (poll(&p, 1, left) <= 0)
            continue;
        rh_frame f;
        int rc = rh_read_frame(fd, &f);
        if (rc < 0)
            return rc;
        if (f.hdr.type == FY_FT_ERROR) {
            fy_error e = {0};
            fy_error_decode(f.payload, f.hdr.len, &e);
            fprintf(stderr, "answer_pings: relay error %u: %s\n", e.code, e.text);
            rh_frame_free(&f);
            return -(int)e.code;
        }
        if (f.hdr.type == FY_FT_PING) {
            pings++;
            rc = rh_send_frame(fd, FY_FT_PONG, f.hdr.channel, f.hdr.seq, f.payload, f.hdr.len);
        }
        rh_frame_free(&f);
        if (rc < 0)
            return rc;
    }
    return pings;
}

/* Wait (bounded) until the daemon's log has n lines with s. */
static int wait_log(tstate *t, const char *s, int n, int max_ms)
{
    int got = 0;
    for (int i = 0; i <= max_ms / 20 && (got = rh_log_count(&t->d, s)) < n; i++)
        usleep(20000);
    return got;
}

/* A sender that goes silent after hello is pinged at half the timeout and
 * cut with FY_ETIMEOUT at the timeout (one log line); its channel then
 * takes a new sender. */
static void test_idle_sender(void **st)
{
    tstate *t = *st;
    const char *args[] = {"--idle-timeout", "1", NULL};
    fy_welcome w;

    start(t, args);
    int fd = sender(t, "quiet", "", &w);
    assert_true(fd >= 0);
    double t0 = now_s();
    rh_frame f;
    assert_int_equal(rh_read_frame(fd, &f), 0); /* the ping, unanswered */
    assert_int_equal(f.hdr.type, FY_FT_PING);
    rh_frame_free(&f);
    assert_int_equal(read_error_close(fd, "idle"), FY_ETIMEOUT);
    double took = now_s() - t0;
    assert_true(took >= 0.9 && took < 5.0);
    close(fd);
    assert_int_equal(wait_log(t, "idle timeout", 1, 2000), 1);

    int c = sender_retry(t, "quiet", &w);
    assert_true(c >= 0);
    uint8_t x[3000];
    rh_fill(x, sizeof x, 60);
    uint64_t seq = w.next_seq;
    send_acked(c, &w, &seq, "after", x, sizeof x);
    say_bye(c);
    t->ok = true;
}

/* A sender and a receiver that answer pings outlive the timeout several
 * times over while nothing flows, and the channel works afterwards. */
static void test_idle_pings_keep_alive(void **st)
{
    tstate *t = *st;
    const char *args[] = {"--idle-timeout", "2", NULL};
    fy_welcome w;
    rh_rx rx;

    start(t, args);
    receiver(t, &rx, "ka", FY_MODE_LIVE, 0);
    int fd = sender(t, "ka", "", &w);
    assert_true(fd >= 0);
    /* Both idle for 2.5 timeouts, answering pings, each within 100 ms (a
     * ping comes at 1..1.5 s of silence, the cut would at 2..2.5 s). */
    int ps = 0, pr = 0;
    for (int round = 0; round < 25; round++) {
        int a = answer_pings(fd, 100), b = answer_pings(rx.fd, 100);
        assert_true(a >= 0 && b >= 0);
        ps += a;
        pr += b;
    }
    assert_true(ps >= 2);
    assert_true(pr >= 2);
    uint8_t x[200000];
    rh_fill(x, sizeof x, 61);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "late", x, sizeof x);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "late", x, sizeof x);
    say_bye(fd);
    rh_rx_free(&rx);
    assert_int_equal(rh_log_count(&t->d, "idle timeout"), 0);
    t->ok = true;
}

typedef struct slow_job {
    rh_rx rx;
    int rc;
    double took;
} slow_job;

/* A receiver that reads one frame every 40 ms (about 1.6 MB/s). */
static void *slow_reader(void *arg)
{
    slow_job *j = arg;
    double t0 = now_s();
    for (int i = 0; i < 10000 && j->rx.nfiles < 1; i++) {
        j->rc = rh_rx_until(&j->rx, 1, j->rx.bytes + 1);
        if (j->rc < 0)
            break;
        usleep(40000);
    }
    j->took = now_s() - t0;
    return NULL;
}

/* With a 2 s timeout: a receiver that stops reading entirely is cut (data
 * pending, no progress); one that reads slowly, for longer than the
 * timeout, gets the whole file. */
static void test_idle_receivers(void **st)
{
    tstate *t = *st;
    size_t len = 6u << 20;
    uint8_t *data = random_data(len, 62);
    const char *args[] = {"--idle-timeout", "2", "--fsync", "never", NULL};
    fy_welcome w;
    rh_rx stuck;
    slow_job slow;
    pthread_t th;

    start(t, args);
    receiver(t, &stuck, "rx", FY_MODE_LIVE, 0);
    receiver(t, &slow.rx, "rx", FY_MODE_LIVE, 0);
    int small = 64 << 10;
    setsockopt(stuck.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(slow.rx.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    assert_int_equal(pthread_create(&th, NULL, slow_reader, &slow), 0);
    int fd = sender(t, "rx", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "big", data, len);
    say_bye(fd);
    pthread_join(th, NULL);
    assert_int_equal(slow.rc, 0);
    check_file(&slow.rx.files[0], "big", data, len);
    assert_true(slow.took > 2.5); /* longer than the timeout, and not cut */
    rh_rx_free(&slow.rx);         /* before it idles in turn */
    /* The stuck one: cut once it has read nothing for the timeout.  Its
     * socket is full, so the error frame may not fit: the data, then
     * (maybe) the error, then the end. */
    assert_int_equal(wait_log(t, "read nothing for", 1, 8000), 1);
    assert_int_equal(rh_log_count(&t->d, "idle timeout"), 1);
    int rc = read_error_close(stuck.fd, "read nothing");
    assert_true(rc == FY_ETIMEOUT || rc == -ENODATA || rc == -ECONNRESET);
    rh_rx_free(&stuck);
    free(data);
    t->ok = true;
}

/* A sender whose connection went quiet (here a raw socket that stops
 * sending; a SIGSTOPped client looks the same to the relay) is replaced by
 * a new connection with the same token: at once when the newcomer resumes
 * at the channel's next seq, after the grace otherwise.  Another token, or
 * a sender active within the grace, gets FY_EBUSY. */
static void test_takeover(void **st)
{
    tstate *t = *st;
    char path[400];
    fy_welcome w, w2;
    uint8_t x[50000];

    snprintf(path, sizeof path, "%s/tokens", t->d.root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "tokA both *\ntokB both *\n");
    fclose(f);
    const char *args[] = {"--auth", path, "--idle-timeout", "60", "--takeover-grace", "2", NULL};
    start(t, args);
    rh_fill(x, sizeof x, 63);

    int a = sender(t, "tk", "tokA", &w);
    assert_true(a >= 0);
    uint64_t seq = w.next_seq;
    send_acked(a, &w, &seq, "one", x, sizeof x);
    /* a goes quiet.  Same token, resuming at the next seq: at once. */
    double t0 = now_s();
    int b = rh_connect(&t->d);
    assert_true(b >= 0);
    assert_int_equal(rh_hello(b, FY_ROLE_SENDER, "tk", "tokA", 0, seq, &w2), 0);
    assert_true(now_s() - t0 < 1.5);
    assert_int_equal(w2.next_seq, seq);
    assert_int_equal(read_error_close(a, "replaced by a new connection of the same sender"),
                     FY_EBUSY);
    close(a);
    send_acked(b, &w2, &seq, "two", x, sizeof x);

    /* Another token: busy, however quiet b is. */
    assert_int_equal(sender(t, "tk", "tokB", &w), -FY_EBUSY);
    /* Same token, no resume point, b active within the grace: busy. */
    assert_int_equal(sender(t, "tk", "tokA", &w), -FY_EBUSY);
    /* ... and once b has been quiet for the grace, replaced. */
    usleep(2300000);
    int c = sender(t, "tk", "tokA", &w);
    assert_true(c >= 0);
    assert_int_equal(w.next_seq, seq);
    assert_int_equal(read_error_close(b, "replaced"), FY_EBUSY);
    close(b);
    send_acked(c, &w, &seq, "three", x, sizeof x);
    say_bye(c);

    rh_rx rx;
    memset(&rx, 0, sizeof rx);
    rx.fd = rh_connect(&t->d);
    assert_true(rx.fd >= 0);
    assert_int_equal(rh_hello(rx.fd, FY_ROLE_RECEIVER, "tk", "tokB", FY_MODE_START, 0, &w), 0);
    rx.next_seq = w.next_seq;
    assert_int_equal(rh_rx_until(&rx, 3, 0), 0);
    check_file(&rx.files[0], "one", x, sizeof x);
    check_file(&rx.files[1], "two", x, sizeof x);
    check_file(&rx.files[2], "three", x, sizeof x);
    rh_rx_free(&rx);
    assert_int_equal(rh_log_count(&t->d, "sender replaced"), 2);
    t->ok = true;
}

/* An idle channel is closed (its descriptors go back), and reopened on
 * demand with everything it held: START and RESUME see every frame once,
 * a new sender continues at the next seq. */
static void test_idle_close(void **st)
{
    tstate *t = *st;
    size_t len = 200000; /* 6 frames a file */
    uint8_t *a = random_data(len, 31), *b = random_data(len, 32), *c = random_data(len, 33);
    fy_welcome w;
    rh_rx rx;

    start(t, (const char *const[]){"--channel-idle", "300ms", NULL});
    int base = count_fds(t->d.pid);
    assert_true(base > 0);
    int fd = sender(t, "idle", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a", a, len);
    send_acked(fd, &w, &seq, "b", b, len);
    assert_true(count_fds(t->d.pid) >= base + 4); /* socket + the channel's files */
    say_bye(fd);
    int now = wait_fds_at_most(t->d.pid, base, 5000);
    fprintf(stderr, "fds: %d before the channel, %d after it closed\n", base, now);
    assert_true(now <= base);
    assert_int_equal(rh_log_count(&t->d, "channel idle, closing"), 1);
    assert_int_equal(rh_log_count(&t->d, "reason=idle"), 1);

    /* Reopened by a receiver: everything from the start, then live. */
    receiver(t, &rx, "idle", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    check_file(&rx.files[0], "a", a, len);
    check_file(&rx.files[1], "b", b, len);
    /* A sender after the reopen continues the sequence without gap. */
    fd = sender_retry(t, "idle", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq);
    send_acked(fd, &w, &seq, "c", c, len);
    assert_int_equal(rh_rx_until(&rx, 3, 0), 0);
    check_file(&rx.files[2], "c", c, len);
    assert_int_equal(rx.err, 0);
    close(rx.fd);
    rh_rx_free(&rx);
    say_bye(fd);

    /* Closed again; a RESUME from the middle of b reopens it and gets c. */
    assert_true(wait_fds_at_most(t->d.pid, base, 5000) <= base);
    receiver(t, &rx, "idle", FY_MODE_RESUME, 9);
    assert_int_equal(rx.next_seq, 9);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "c", c, len);
    close(rx.fd);
    rh_rx_free(&rx);
    assert_true(rh_log_count(&t->d, "channel idle, closing") >= 2);
    free(a);
    free(b);
    free(c);
    t->ok = true;
}

/* Close and reopen as fast as the relay can (10 ms idle) while senders and
 * receivers come and go: every receiver gets every file, in order, once. */
static void test_idle_close_race(void **st)
{
    tstate *t = *st;
    enum { N = 12 };
    size_t len = 70000;
    uint8_t *d[N];
    fy_welcome w;
    rh_rx rx;

    start(t, (const char *const[]){"--channel-idle", "10ms", NULL});
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        d[i] = random_data(len, 40 + (uint64_t)i);
        int fd = sender_retry(t, "race", &w);
        assert_true(fd >= 0);
        uint64_t seq = w.next_seq;
        assert_int_equal(seq, 1 + (uint64_t)i * 4); /* 4 frames a file */
        send_acked(fd, &w, &seq, name, d[i], len);
        say_bye(fd);
        usleep((useconds_t)(i % 4) * 5000); /* before, around and after the close */
        receiver(t, &rx, "race", FY_MODE_START, 0);
        assert_int_equal(rh_rx_until(&rx, (size_t)i + 1, 0), 0);
        assert_int_equal(rx.err, 0);
        for (int j = 0; j <= i; j++) {
            snprintf(name, sizeof name, "f%d", j);
            check_file(&rx.files[j], name, d[j], len);
        }
        close(rx.fd);
        rh_rx_free(&rx);
    }
    fprintf(stderr, "idle closes: %d\n", rh_log_count(&t->d, "channel idle, closing"));
    assert_true(rh_log_count(&t->d, "channel idle, closing") >= 1);
    for (int i = 0; i < N; i++)
        free(d[i]);
    t->ok = true;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_pings_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_receivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_close_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
