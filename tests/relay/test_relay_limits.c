/*
 * test_relay_limits.c - ferryd end to end (see test_relay.c): /metrics, the
 * config file and bad flags, and the limits on channels and connections.
 */
/* Every header these tests use comes with the fixture. */
#include "relay_fixture.h"

/* GET /metrics while a sender and a receiver are connected. */
static void test_metrics(void **st)
{
    tstate *t = *st;
    const char *args[] = {"--metrics", "127.0.0.1:0", NULL};
    uint8_t x[200000];
    fy_welcome w;
    rh_rx rx;
    char *text = malloc(1 << 20);
    size_t len = 0;

    assert_non_null(text);
    rh_fill(x, sizeof x, 40);
    start(t, args);
    assert_true(t->d.metrics_port > 0);
    receiver(t, &rx, "m", FY_MODE_LIVE, 0);
    int fd = sender(t, "m", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "x", x, sizeof x);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);

    rh_daemon md = t->d;
    md.port = t->d.metrics_port;
    int h = rh_connect(&md);
    assert_true(h >= 0);
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    assert_int_equal(fy_sock_write_all(h, req, strlen(req)), 0);
    for (int i = 0; i < 1000 && len < (1 << 20) - 1; i++) {
        ssize_t n = read(h, text + len, (1 << 20) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    text[len] = 0;
    close(h);
    assert_non_null(strstr(text, "200"));
    assert_non_null(strstr(text, "\nferry_up 1"));
    char *b = strstr(text, "\nferry_received_bytes_total ");
    assert_non_null(b);
    assert_true(strtoull(b + strlen("\nferry_received_bytes_total "), NULL, 10) >= sizeof x);
    const char *live = "\nferry_sent_bytes_total{source=\"live\"} ";
    char *o = strstr(text, live);
    assert_non_null(o);
    assert_true(strtoull(o + strlen(live), NULL, 10) >= sizeof x);
    say_bye(fd);
    rh_rx_free(&rx);
    free(text);
    t->ok = true;
}

/* A config file sets values, flags override it; the documented default
 * config (every line commented) loads as is; a bad key is exit 64 (usage). */
static void test_config(void **st)
{
    tstate *t = *st;
    char path[400];

    snprintf(path, sizeof path, "%s/ferryd.conf", t->d.root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# test\nwindow = 2M   # per receiver\nfsync=never\nmemory = 64M\n"
               "listen = 127.0.0.1:1\n");
    fclose(f);
    const char *args[] = {"--config", path, "--window", "3M", NULL};
    start(t, args); /* --listen 127.0.0.1:0 from the harness overrides the file */
    assert_int_equal(rh_log_count(&t->d, "window=3145728"), 1);
    assert_int_equal(rh_log_count(&t->d, "fsync=never"), 1);
    assert_int_equal(rh_log_count(&t->d, "memory=67108864"), 1);
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    const char *doc[] = {"--config", FERRY_SRC_DIR "/docs/ferryd.conf", NULL};
    start(t, doc);
    assert_int_equal(rh_log_count(&t->d, "window=8388608"), 1);
    status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "windw = 2M\n");
    fclose(f);
    const char *bad[] = {FERRYD_PATH, "--config", path, NULL};
    assert_int_equal(tc_run(bad, 30000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 64);
    t->ok = true;
}

/* ---- channel lifetime and limits ------------------------------------------------ */

static bool chan_dir_exists(const tstate *t, const char *name)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/channels/%s", t->d.data, name);
    return stat(path, &sb) == 0;
}

/* Read one frame and expect an error frame; returns its code, text in text. */
static int read_error(int fd, char *text, size_t cap)
{
    rh_frame f;
    fy_error e;
    int rc = rh_read_frame(fd, &f);
    if (rc < 0)
        return rc;
    rc = -FY_EPROTO;
    if (f.hdr.type == FY_FT_ERROR && fy_error_decode(f.payload, f.hdr.len, &e) == 0) {
        rc = (int)e.code;
        snprintf(text, cap, "%.200s", e.text);
    }
    rh_frame_free(&f);
    return rc;
}

/* --max-channels: one channel too many gets FY_ELIMIT naming the limit, and
 * no directory; once an idle channel has closed, there is room again. */
static void test_max_channels(void **st)
{
    tstate *t = *st;
    rh_rx ra, rb;
    char text[256] = "";

    start(t, (const char *const[]){"--max-channels", "2", "--channel-idle", "200ms", NULL});
    receiver(t, &ra, "one", FY_MODE_LIVE, 0);
    receiver(t, &rb, "two", FY_MODE_LIVE, 0);
    int fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    fy_hello h = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_LIVE};
    uint8_t p[1024];
    size_t n;
    snprintf(h.channel, sizeof h.channel, "three");
    assert_int_equal(fy_hello_encode(&h, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_HELLO, 0, 0, p, n), 0);
    assert_int_equal(read_error(fd, text, sizeof text), FY_ELIMIT);
    fprintf(stderr, "refused: %s\n", text);
    assert_non_null(strstr(text, "max-channels 2"));
    close(fd);
    assert_false(chan_dir_exists(t, "three"));
    assert_true(chan_dir_exists(t, "one"));
    assert_true(rh_log_count(&t->d, "limit=max-channels value=2") >= 1);
    /* A sender is refused the same way. */
    fy_welcome w;
    assert_int_equal(sender(t, "four", "", &w), -FY_ELIMIT);
    assert_false(chan_dir_exists(t, "four"));
    /* An existing channel is still served. */
    rh_rx rc2;
    receiver(t, &rc2, "one", FY_MODE_LIVE, 0);
    close(rc2.fd);
    rh_rx_free(&rc2);
    /* "one" goes idle and closes: "three" fits now (bounded retry). */
    close(ra.fd);
    rh_rx_free(&ra);
    int rc = -FY_ELIMIT;
    for (int i = 0; i < 100 && rc == -FY_ELIMIT; i++) {
        int f2 = rh_connect(&t->d);
        assert_true(f2 >= 0);
        rc = rh_hello(f2, FY_ROLE_RECEIVER, "three", "", FY_MODE_LIVE, 0, &w);
        close(f2);
        if (rc == -FY_ELIMIT)
            usleep(50000);
    }
    assert_int_equal(rc, 0);
    assert_true(chan_dir_exists(t, "three"));
    close(rb.fd);
    rh_rx_free(&rb);
    t->ok = true;
}

/* A connection from 127.0.0.2 (loopback has the whole /8). */
static int connect_from(const tstate *t, const char *src)
{
    struct sockaddr_in sa = {.sin_family = AF_INET}, da = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = RH_IO_TIMEOUT_S};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    inet_pton(AF_INET, src, &sa.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &da.sin_addr);
    da.sin_port = htons(t->d.port);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        connect(fd, (struct sockaddr *)&da, sizeof da) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* --max-connections counts every client connection, receivers included;
 * the one past it gets an FY_ELIMIT error frame naming the limit. */
static void test_max_connections(void **st)
{
    tstate *t = *st;
    rh_rx rx;
    char text[256] = "";

    start(t, (const char *const[]){"--max-connections", "3", NULL});
    receiver(t, &rx, "c", FY_MODE_LIVE, 0); /* a forwarder's connection */
    int a = rh_connect(&t->d), b = rh_connect(&t->d);
    assert_true(a >= 0 && b >= 0);
    fy_welcome w;
    /* A 4th connection, whatever it says: refused (counted at accept). */
    assert_int_equal(sender(t, "c", "", &w), -FY_ELIMIT);
    int fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    assert_int_equal(read_error(fd, text, sizeof text), FY_ELIMIT);
    fprintf(stderr, "refused: %s\n", text);
    assert_non_null(strstr(text, "max-connections 3"));
    close(fd);
    assert_true(rh_log_count(&t->d, "limit=max-connections") >= 1);
    /* The receiver leaves: there is room for one (bounded retry). */
    close(rx.fd);
    rh_rx_free(&rx);
    int rc = -FY_ELIMIT;
    for (int i = 0; i < 100 && rc == -FY_ELIMIT; i++) {
        rc = sender(t, "c", "", &w);
        if (rc == -FY_ELIMIT)
            usleep(20000);
    }
    assert_true(rc >= 0);
    say_bye(rc);
    close(a);
    close(b);
    t->ok = true;
}

static void test_max_connections_per_ip(void **st)
{
    tstate *t = *st;
    char text[256] = "";

    start(t, (const char *const[]){"--max-connections-per-ip", "2", NULL});
    int a = rh_connect(&t->d), b = rh_connect(&t->d);
    assert_true(a >= 0 && b >= 0);
    int fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    assert_int_equal(read_error(fd, text, sizeof text), FY_ELIMIT);
    fprintf(stderr, "refused: %s\n", text);
    assert_non_null(strstr(text, "max-connections-per-ip 2"));
    close(fd);
    /* Another address is not affected. */
    int o = connect_from(t, "127.0.0.2");
    assert_true(o >= 0);
    fy_welcome w;
    assert_int_equal(rh_hello(o, FY_ROLE_RECEIVER, "x", "", FY_MODE_LIVE, 0, &w), 0);
    close(o);
    assert_true(rh_log_count(&t->d, "limit=max-connections-per-ip") >= 1);
    close(a);
    close(b);
    t->ok = true;
}

/* Many receiver-created channels with a short --channel-idle: descriptors
 * stay bounded and go back to where they started. */
static void test_many_channels(void **st)
{
    tstate *t = *st;
    enum { N = 2500 };
    int peak = 0, refused = 0;

    start(t, (const char *const[]){"--channel-idle", "100ms", "--log-level", "warn", NULL});
    int base = count_fds(t->d.pid);
    double t0 = rh_now_s();
    for (int i = 0; i < N && rh_now_s() - t0 < 120; i++) {
        char name[32];
        fy_welcome w;
        snprintf(name, sizeof name, "many%05d", i);
        int fd = rh_connect(&t->d);
        assert_true(fd >= 0);
        int rc = rh_hello(fd, FY_ROLE_RECEIVER, name, "", FY_MODE_LIVE, 0, &w);
        assert_true(rc == 0 || rc == -FY_ELIMIT);
        refused += rc == -FY_ELIMIT;
        close(fd);
        if (i % 100 == 0) {
            int n = count_fds(t->d.pid);
            peak = n > peak ? n : peak;
        }
    }
    int end = wait_fds_at_most(t->d.pid, base, 10000);
    fprintf(stderr, "fds: base %d, peak %d, end %d; refused %d of %d\n", base, peak, end,
            refused, N);
    /* Unbounded, this was 4 per channel: ~10 000. */
    assert_true(peak < base + 4 * 1024 + 64);
    assert_true(end <= base);
    t->ok = true;
}

static void test_bad_flags(void **st)
{
    tstate *t = *st;
    const char *cases[][4] = {
        {"--bogus", "1", NULL},
        {"--memory", "lots", NULL},
        {"--fsync", "sometimes", NULL},
        {"--window", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[6] = {FERRYD_PATH};
        for (int k = 0; k < 3 && cases[i][k]; k++)
            argv[k + 1] = cases[i][k];
        int status;
        assert_int_equal(tc_run(argv, 30000, &status), 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 64); /* FY_EXIT_USAGE, as in every program */
    }
    t->ok = true;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections_per_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_channels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
