/*
 * test_channels.c - ferryd end to end (see test_relay.c): a flood of channel
 * names never blocks a new channel (issue 21, defect 3) and receivers do
 * not create channels (issue 20, "No silent failures").
 *
 *  - 300 one-shot receiver hellos on distinct names with --max-channels 8:
 *    every one is served (the least recently used unused channel is closed
 *    to make room), a sender on a fresh channel then gets in at once,
 *    descriptors stay bounded, and no directory of a channel that never
 *    stored a file stays behind.
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
    enum { N = 300, LIMIT = 8 };
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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_name_flood, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
