/*
 * test_relay_flow.c - ferryd end to end (see test_relay.c): descriptors held
 * by live receivers, throttled (slow) receivers, memory pressure; for both
 * live-send modes where the relay has them; write-behind: a sender paced
 * by a small budget in every write mode and fsync policy, and a failed
 * sync (injected: at a file-end, at a segment roll, at an --fsync
 * interval, just before a stop) that is never acknowledged nor kept: the
 * log is cut back to its last good sync and a sender resumes there.
 */
/* Every header these tests use comes with the fixture. */
#include "relay_fixture.h"

/* A live receiver holds its socket only: the data file is opened when it
 * has to catch up from disk or follow live frames, and closed a second
 * after nothing more came (it used to hold two more descriptors for the
 * whole connection, so a 10 000-receiver storm ran out of descriptors). */
static void live_receiver_fds(tstate *t, const char *live_send)
{
    enum { NR = 24 };
    const char *args[] = {"--live-send", live_send, NULL};
    rh_rx rx[NR + 1];
    fy_welcome w;
    size_t len = 300000;
    uint8_t *data = random_data(len, 5);

    start(t, args);
    receiver(t, &rx[0], "fds", FY_MODE_LIVE, 0); /* creates the channel */
    int fd = sender(t, "fds", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a.bin", data, len);
    assert_int_equal(rh_rx_until(&rx[0], 1, 0), 0);
    int base = count_fds(t->d.pid);
    assert_true(base > 0);
    /* START receivers catch up from disk, then go live. */
    for (int i = 1; i <= NR; i++) {
        receiver(t, &rx[i], "fds", FY_MODE_START, 0);
        assert_int_equal(rh_rx_until(&rx[i], 1, 0), 0);
        check_file(&rx[i].files[0], "a.bin", data, len);
    }
    /* One more file reaches everyone live. */
    send_acked(fd, &w, &seq, "b.bin", data, len);
    for (int i = 0; i <= NR; i++) {
        assert_int_equal(rh_rx_until(&rx[i], i ? 2 : 2, 0), 0);
        check_file(&rx[i].files[rx[i].nfiles - 1], "b.bin", data, len);
    }
    int now = count_fds(t->d.pid);
    for (int i = 0; i < 40 && now - base > NR + 2; i++) { /* the readers linger 1 s */
        usleep(100000);
        now = count_fds(t->d.pid);
    }
    fprintf(stderr, "fds: %d with 1 receiver, %d with %d\n", base, now, NR + 1);
    assert_true(now - base <= NR + 2); /* one socket each (+ slack) */
    for (int i = 0; i <= NR; i++) {
        close(rx[i].fd);
        rh_rx_free(&rx[i]);
    }
    say_bye(fd);
    free(data);
    t->ok = true;
}

static void test_live_receiver_fds(void **st)
{
    live_receiver_fds(*st, "buffers");
}

static void test_live_receiver_fds_follow(void **st)
{
    live_receiver_fds(*st, "file");
}

/* One receiver stops reading: the other two get the file at once, and the
 * slow one gets it intact when it reads again.  With --live-send buffers (the
 * default) its forwarder overflows its window and catches up from disk;
 * following the file, it holds no buffer at all and simply lags. */
static void throttled(tstate *t, const char *live_send)
{
    size_t len = 16u << 20;
    uint8_t *data = random_data(len, 13);
    const char *args[] = {"--window", "1M", "--live-send", live_send, NULL};
    job snd = {.t = t, .chan = "slow", .name = "big", .data = data, .len = len};
    job fast[2] = {{.t = t}, {.t = t}};
    rh_rx slow;
    pthread_t th[3];

    start(t, args);
    receiver(t, &slow, "slow", FY_MODE_LIVE, 0);
    for (int i = 0; i < 2; i++)
        receiver(t, &fast[i].rx, "slow", FY_MODE_LIVE, 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, recv_job, &fast[i]), 0);
    assert_int_equal(pthread_create(&th[2], NULL, send_job, &snd), 0);

    /* The slow receiver reads 1 MiB, then nothing until the others are done. */
    assert_int_equal(rh_rx_until(&slow, 1, 1u << 20), 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(snd.rc, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fast[i].rc, 0);
        check_file(&fast[i].rx.files[0], "big", data, len);
        rh_rx_free(&fast[i].rx);
    }
    assert_true(slow.bytes < len);
    /* Now the slow one catches up from disk and completes intact. */
    assert_int_equal(rh_rx_until(&slow, 1, 0), 0);
    check_file(&slow.files[0], "big", data, len);
    rh_rx_free(&slow);
    if (strcmp(live_send, "buffers") == 0)
        assert_true(rh_log_count(&t->d, "catching up from disk") >= 1);
    else
        assert_int_equal(rh_log_count(&t->d, "catching up from disk"), 0);
    free(data);
    t->ok = true;
}

static void test_throttled(void **st)
{
    throttled(*st, "buffers");
}

static void test_throttled_follow(void **st)
{
    throttled(*st, "file");
}

/* Two channels, each with a receiver that does not read, and a pool smaller
 * than both windows together: neither sender waits for those receivers. */
static void test_memory_pressure(void **st)
{
    tstate *t = *st;
    size_t len = 11u << 18; /* 2.75 MiB: under one window, over half the pool */
    uint8_t *da = random_data(len, 17), *db = random_data(len, 18);
    const char *args[] = {"--max-payload", "64K", "--channel-budget", "1M", "--window", "3M",
                          "--memory", "5M", "--sndbuf", "32K", "--live-send", "buffers", NULL};
    job s[2] = {{.t = t, .chan = "pa", .name = "a", .data = da, .len = len},
                {.t = t, .chan = "pb", .name = "b", .data = db, .len = len}};
    rh_rx stuck[2];

    start(t, args);
    for (int i = 0; i < 2; i++) {
        receiver(t, &stuck[i], i ? "pb" : "pa", FY_MODE_LIVE, 0);
        int small = 32 << 10;
        setsockopt(stuck[i].fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    send_job(&s[0]);
    assert_int_equal(s[0].rc, 0);
    send_job(&s[1]);
    assert_int_equal(s[1].rc, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rh_rx_until(&stuck[i], 1, 0), 0);
        check_file(&stuck[i].files[0], i ? "b" : "a", i ? db : da, len);
        rh_rx_free(&stuck[i]);
    }
    assert_true(rh_log_count(&t->d, "why=pool_pressure") >= 1);
    free(da);
    free(db);
    t->ok = true;
}

/* ---- write-behind ------------------------------------------------------------ */

/* A budget of 1 MiB against 9 MiB of files: the writer holds credits and
 * releases them as the sync worker reports, so the sender is paced, and
 * every file still arrives whole, live and from disk, and is acked. */
static void paced(tstate *t, const char *mode, const char *fsync)
{
    enum { NF = 3 };
    const char *args[] = {"--max-payload", "64K", "--channel-budget", "1M", "--write-behind",
                          "1M", "--write-mode", mode, "--fsync", fsync, NULL};
    size_t len = 3u << 20;
    uint8_t *data[NF];
    rh_rx live, late;
    fy_welcome w;

    start(t, args);
    receiver(t, &live, "wb", FY_MODE_LIVE, 0);
    int fd = sender(t, "wb", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    for (int i = 0; i < NF; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d.bin", i);
        data[i] = random_data(len, 40 + (uint64_t)i);
        send_acked(fd, &w, &seq, name, data[i], len);
    }
    assert_int_equal(rh_rx_until(&live, NF, 0), 0);
    receiver(t, &late, "wb", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&late, NF, 0), 0);
    for (int i = 0; i < NF; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d.bin", i);
        check_file(&live.files[i], name, data[i], len);
        check_file(&late.files[i], name, data[i], len);
        free(data[i]);
    }
    close(live.fd);
    close(late.fd);
    rh_rx_free(&live);
    rh_rx_free(&late);
    say_bye(fd);
    t->ok = true;
}

static void test_write_behind_paced(void **st)
{
    paced(*st, "buffered", "file-end");
}

static void test_write_behind_paced_direct(void **st)
{
    paced(*st, "direct", "file-end");
}

static void test_write_behind_paced_never(void **st)
{
    paced(*st, "buffered", "never");
}

/* The sync worker's first job fails (the test hook): the file-end it was
 * to make durable is never acknowledged, the sender is told instead, the
 * relay says so once, and a later sender is refused rather than acked. */
/* A sender back after a failed sync: the channel refuses (FY_ESHUTDOWN)
 * while it closes to cut its log back, then welcomes at the durable end. */
static int sender_back(tstate *t, const char *chan, fy_welcome *w)
{
    int fd = -FY_EBUSY;
    for (int i = 0; i < 250 && (fd == -FY_EBUSY || fd == -FY_ESHUTDOWN); i++) {
        fd = sender(t, chan, "", w);
        if (fd < 0)
            usleep(20000);
    }
    return fd;
}

/* Wait (bounded) for a log line. */
static void wait_log(tstate *t, const char *s, int n)
{
    for (int i = 0; i < 500 && rh_log_count(&t->d, s) < n; i++)
        usleep(10000);
    assert_int_equal(rh_log_count(&t->d, s), n);
}

/* From the start, a receiver gets exactly the files named (each `len`
 * bytes of data), in order. */
static void expect_files(tstate *t, const char *chan, const char *const *names, size_t n,
                         const uint8_t *data, size_t len)
{
    rh_rx all;
    receiver(t, &all, chan, FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&all, n, 0), 0);
    assert_int_equal(all.nfiles, n);
    for (size_t i = 0; i < n; i++)
        check_file(&all.files[i], names[i], data, len);
    rh_rx_free(&all);
}

/* The first sync fails (fsync file-end): the file is not acknowledged, the
 * sender hears FY_ESTORAGE ("try again later"), the channel closes and
 * cuts its log back to the last good sync (nothing), and a sender that
 * comes back is welcomed there and stored. */
static void test_sync_failure(void **st)
{
    tstate *t = *st;
    size_t len = 100000;
    uint8_t *data = random_data(len, 61);
    fy_welcome w;

    setenv("FERRY_TEST_SYNC_FAIL_AFTER", "0", 1);
    start(t, NULL);
    unsetenv("FERRY_TEST_SYNC_FAIL_AFTER");
    int fd = sender(t, "sf", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    assert_int_equal(rh_send_file(fd, w.channel, &seq, "a.bin", data, len, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_ESTORAGE);
    close(fd);
    assert_int_equal(rh_log_count(&t->d, "log sync failed"), 1);
    /* Back at the durable end (the start): the file again, acknowledged. */
    fd = sender_back(t, "sf", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, 1);
    assert_int_equal(rh_log_count(&t->d, "log cut back to its last good sync"), 1);
    seq = w.next_seq;
    send_acked(fd, &w, &seq, "a.bin", data, len);
    say_bye(fd);
    const char *names[] = {"a.bin"};
    expect_files(t, "sf", names, 1, data, len);
    free(data);
    t->ok = true;
}

/* Issue 21 defect 1: a segment roll whose seal (its fdatasync) fails, and
 * a later sync of the next segment that succeeds, in the order the sync
 * worker runs them (a's sync, the roll's seal, b's file-end).  b is never
 * acknowledged (it used to be: the later sync covered it), the rolled-to
 * segment is dropped, and b sent again lands after a. */
static void test_sync_failure_roll(void **st)
{
    tstate *t = *st;
    size_t len = 200000; /* 4 frames; a and b do not fit one segment */
    uint8_t *data = random_data(len, 62);
    const char *args[] = {"--max-payload", "65536", "--segment-bytes", "262144", NULL};
    fy_welcome w;

    setenv("FERRY_TEST_SYNC_FAIL_AFTER", "1", 1);
    start(t, args);
    unsetenv("FERRY_TEST_SYNC_FAIL_AFTER");
    int fd = sender(t, "sr", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    uint64_t a_end = send_acked(fd, &w, &seq, "a.bin", data, len);
    /* b's frames in one push, so the relay reads them, roll and file-end,
     * as one batch (as a rule; either way b must not be acknowledged). */
    int one = 1, zero = 0;
    assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one), 0);
    assert_int_equal(rh_send_file(fd, w.channel, &seq, "b.bin", data, len, CHUNK), 0);
    assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_ESTORAGE);
    close(fd);
    fd = sender_back(t, "sr", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, a_end + 1); /* the durable end: after a */
    seq = w.next_seq;
    send_acked(fd, &w, &seq, "b.bin", data, len);
    say_bye(fd);
    const char *names[] = {"a.bin", "b.bin"};
    expect_files(t, "sr", names, 2, data, len);
    /* The failure came at the roll: b's frames were past the durable end. */
    assert_int_equal(rh_log_count(&t->d, "durable_seq=7 "), 2);
    assert_int_equal(rh_log_count(&t->d, "log sync failed"), 1);
    assert_int_equal(rh_stop(&t->d, 10000), 0);
    char ch[600];
    snprintf(ch, sizeof ch, "%s/channels/sr", t->d.data);
    fy_check_report cr;
    assert_int_equal(fy_store_check(ch, 65536, &cr), 0);
    assert_int_equal(cr.unindexed + cr.torn_bytes, 0);
    free(data);
    t->ok = true;
}

/* --fsync MS: acks go at once (they mean "appended" under an interval);
 * the interval's sync fails.  It is not retried at the next interval and
 * called durable: the channel closes, its log is cut back to the last good
 * sync (a, acknowledged within the interval, is lost as to a power cut),
 * and a sender that comes back is welcomed there and stored. */
static void test_sync_failure_interval(void **st)
{
    tstate *t = *st;
    size_t len = 100000;
    uint8_t *data = random_data(len, 63);
    const char *args[] = {"--fsync", "50", NULL};
    fy_welcome w;

    setenv("FERRY_TEST_SYNC_FAIL_AFTER", "0", 1);
    start(t, args);
    unsetenv("FERRY_TEST_SYNC_FAIL_AFTER");
    int fd = sender(t, "si", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a.bin", data, len);
    wait_log(t, "log sync failed", 1);
    assert_int_equal(rh_wait_ack(fd, seq), -FY_ESTORAGE);
    close(fd);
    fd = sender_back(t, "si", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, 1);
    seq = w.next_seq;
    send_acked(fd, &w, &seq, "b.bin", data, len);
    usleep(200000); /* an interval or more: b's sync ran, and succeeded */
    say_bye(fd);
    const char *names[] = {"b.bin"};
    expect_files(t, "si", names, 1, data, len);
    assert_int_equal(rh_log_count(&t->d, "log sync failed"), 1);
    free(data);
    t->ok = true;
}

/* A failed sync and then a stop (SIGTERM) at once: the stop cuts the log
 * back too, so the restarted relay does not take the unsynced tail from
 * the page cache as stored (its recovery would: the frames look whole). */
static void test_sync_failure_stop(void **st)
{
    tstate *t = *st;
    size_t len = 100000;
    uint8_t *data = random_data(len, 64);
    fy_welcome w;

    setenv("FERRY_TEST_SYNC_FAIL_AFTER", "1", 1);
    start(t, NULL);
    unsetenv("FERRY_TEST_SYNC_FAIL_AFTER");
    int fd = sender(t, "ss", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    uint64_t a_end = send_acked(fd, &w, &seq, "a.bin", data, len);
    assert_int_equal(rh_send_file(fd, w.channel, &seq, "b.bin", data, len, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_ESTORAGE);
    close(fd);
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(rh_log_count(&t->d, "log cut back to its last good sync"), 1);
    start(t, NULL);
    fd = sender(t, "ss", "", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, a_end + 1);
    seq = w.next_seq;
    send_acked(fd, &w, &seq, "b.bin", data, len);
    say_bye(fd);
    const char *names[] = {"a.bin", "b.bin"};
    expect_files(t, "ss", names, 2, data, len);
    free(data);
    t->ok = true;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_live_receiver_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_receiver_fds_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_pressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_behind_paced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_behind_paced_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_behind_paced_never, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
