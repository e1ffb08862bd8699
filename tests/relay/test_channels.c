/*
 * test_channels.c - ferryd end to end (see test_relay.c): a flood of channel
 * names never blocks a new channel (issue 21, defect 3) and receivers do
 * not create channels (issue 20, "No silent failures").
 *
 *  - 200 one-shot receiver hellos on distinct names with --max-channels 8:
 *    every one is served (the least recently used unused channel is closed
 *    to make room), a sender on a fresh channel then gets in at once,
 *    descriptors stay bounded, and no directory of a channel that never
 *    stored a file stays behind.
 *  - A receiver that says FY_HELLO_F_WAIT on a name with no directory gets
 *    FY_FT_NOCHAN and nothing is made on disk (200 of them that leave at
 *    once leave nothing either); a sender creating the channel wakes the
 *    one still waiting, which gets the welcome and the sender's first file.
 *  - An older receiver (no flag) is welcomed at once as before, and the
 *    channel's directory goes when the idle channel closes.
 */
/* Every header these tests use comes with the fixture. */
#include "relay_fixture.h"

#include <dirent.h>

/* How many entries DATA/channels holds. */
static int chan_dirs(const tstate *t)
{
    char path[512];
    snprintf(path, sizeof path, "%s/channels", t->d.data);
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static bool chan_dir_exists(const tstate *t, const char *name)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/channels/%s", t->d.data, name);
    return stat(path, &sb) == 0;
}

static void test_name_flood(void **st)
{
    tstate *t = *st;
    enum { N = 200, LIMIT = 8 };
    int refused = 0, peak = 0;

    start(t, (const char *const[]){"--max-channels", "8", "--channel-idle", "60s", NULL});
    int base = count_fds(t->d.pid);
    double t0 = rh_now_s();
    for (int i = 0; i < N && rh_now_s() - t0 < 60; i++) {
        char name[32];
        fy_welcome w;
        snprintf(name, sizeof name, "flood%04d", i);
        int fd = rh_connect(&t->d);
        assert_true(fd >= 0);
        int rc = rh_hello(fd, FY_ROLE_RECEIVER, name, "", FY_MODE_LIVE, 0, &w);
        assert_true(rc == 0 || rc == -FY_ELIMIT);
        refused += rc == -FY_ELIMIT;
        close(fd);
        if (i % 20 == 0) {
            int n = count_fds(t->d.pid);
            peak = n > peak ? n : peak;
        }
    }
    double flood_s = rh_now_s() - t0;
    /* A sender on a fresh channel: in at once, not after --channel-idle. */
    fy_welcome w;
    t0 = rh_now_s();
    int fd = sender(t, "fresh", "", &w);
    double in_s = rh_now_s() - t0;
    fprintf(stderr, "flood of %d in %.2f s: refused %d; fds base %d peak %d; sender in %.3f s; "
            "%d channel dirs\n", N, flood_s, refused, base, peak, in_s, chan_dirs(t));
    assert_true(fd >= 0);
    assert_true(in_s < 2.0);
    assert_int_equal(refused, 0);
    /* At most LIMIT channels open, each ~4 descriptors. */
    assert_true(peak < base + 4 * LIMIT + 16);
    /* Closed channels that never stored a file left no directory. */
    assert_true(chan_dirs(t) <= LIMIT);
    assert_false(chan_dir_exists(t, "flood0000"));
    assert_true(rh_log_count(&t->d, "msg=\"empty channel removed\"") >= N - LIMIT);
    uint8_t x[1000];
    rh_fill(x, sizeof x, 5);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "x", x, sizeof x);
    say_bye(fd);
    /* At shutdown every channel closes: only the one with a file stays. */
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(chan_dirs(t), 1);
    assert_true(chan_dir_exists(t, "fresh"));
    t->ok = true;
}

/* Say a receiver hello with FY_HELLO_F_WAIT; 0 with the first frame's
 * type in *type (the frame is freed). */
static int hello_wait(int fd, const char *chan, uint8_t *type, char *text, size_t cap)
{
    fy_hello h = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_LIVE, .flags = FY_HELLO_F_WAIT};
    uint8_t p[1024];
    size_t n;
    rh_frame f;
    snprintf(h.channel, sizeof h.channel, "%s", chan);
    int rc = fy_hello_encode(&h, p, sizeof p, &n);
    if (rc == 0)
        rc = rh_send_frame(fd, FY_FT_HELLO, 0, 0, p, n);
    if (rc == 0)
        rc = rh_read_frame(fd, &f);
    if (rc < 0)
        return rc;
    *type = f.hdr.type;
    if (text)
        snprintf(text, cap, "%.*s", (int)f.hdr.len, f.payload ? (char *)f.payload : "");
    rh_frame_free(&f);
    return 0;
}

static void test_receiver_waits(void **st)
{
    tstate *t = *st;
    char text[256];
    uint8_t type = 0;

    start(t, NULL);
    /* 200 receivers on names that do not exist, gone at once. */
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "typo%03d", i);
        int fd = rh_connect(&t->d);
        assert_true(fd >= 0);
        assert_int_equal(hello_wait(fd, name, &type, NULL, 0), 0);
        assert_int_equal(type, FY_FT_NOCHAN);
        close(fd);
    }
    /* One that stays. */
    int rx = rh_connect(&t->d);
    assert_true(rx >= 0);
    assert_int_equal(hello_wait(rx, "dcos", &type, text, sizeof text), 0);
    assert_int_equal(type, FY_FT_NOCHAN);
    assert_string_equal(text, "no channel 'dcos' on the relay; waiting for it");
    assert_int_equal(chan_dirs(t), 0);
    assert_true(rh_log_count(&t->d, "msg=\"receiver waits for its channel\"") >= 201);

    /* A sender creates it and sends at once: the waiting receiver gets the
     * welcome and that first file. */
    fy_welcome w;
    int fd = sender(t, "dcos", "", &w);
    assert_true(fd >= 0);
    uint8_t *x = random_data(70000, 9);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "first", x, 70000);
    rh_frame f;
    assert_int_equal(rh_read_frame(rx, &f), 0);
    assert_int_equal(f.hdr.type, FY_FT_WELCOME);
    fy_welcome rw;
    assert_int_equal(fy_welcome_decode(f.payload, f.hdr.len, &rw), 0);
    rh_frame_free(&f);
    rh_rx r = {.fd = rx, .next_seq = rw.next_seq};
    assert_int_equal(rh_rx_until(&r, 1, 0), 0);
    check_file(&r.files[0], "first", x, 70000);
    say_bye(fd);
    rh_rx_free(&r);
    free(x);
    assert_int_equal(chan_dirs(t), 1);
    t->ok = true;
}

/* An older receiver is welcomed at once, as before; its channel's
 * directory goes with the idle close, since nothing was stored. */
static void test_old_receiver(void **st)
{
    tstate *t = *st;
    start(t, (const char *const[]){"--channel-idle", "200ms", NULL});
    rh_rx r;
    receiver(t, &r, "older", FY_MODE_LIVE, 0);
    assert_true(chan_dir_exists(t, "older"));
    close(r.fd);
    rh_rx_free(&r);
    for (int i = 0; i < 100 && chan_dir_exists(t, "older"); i++)
        rh_sleep_ms(50);
    assert_false(chan_dir_exists(t, "older"));
    t->ok = true;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_name_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_receiver, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
