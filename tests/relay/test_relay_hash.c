/*
 * test_relay_hash.c - ferryd end to end (see test_relay.c): the SHA-256
 * beside the write (actors/writer_hash.c).  A file's body is appended and
 * forwarded at once and hashed on a hash worker; its file-end waits for
 * the verdict.  FERRY_TEST_HASH_DELAY_MS slows every hash job, so the hash
 * lags many batches behind the append: a wrong digest is still refused
 * with the file-end neither stored nor acknowledged, a right one is
 * acknowledged, and a stop while jobs are in flight loses nothing.
 */
/* Every header these tests use comes with the fixture. */
#include "relay_fixture.h"

/* Start ferryd with every hash job delayed by ms. */
static void start_slow_hash(tstate *t, const char *ms)
{
    setenv("FERRY_TEST_HASH_DELAY_MS", ms, 1);
    start(t, NULL);
    unsetenv("FERRY_TEST_HASH_DELAY_MS");
    assert_int_equal(rh_log_count(&t->d, "FERRY_TEST_HASH_DELAY_MS"), 1);
}

static void send_begin(int fd, const fy_welcome *w, uint64_t *seq, const char *name, size_t len)
{
    uint8_t p[512];
    size_t n;
    fy_file_begin fb = {.size = len};

    snprintf(fb.name, sizeof fb.name, "%s", name);
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_BEGIN, w->channel, (*seq)++, p, n), 0);
}

/* data[from, to) in CHUNK frames, a short pause after each so that most
 * become batches of their own. */
static void send_body(int fd, const fy_welcome *w, uint64_t *seq, const uint8_t *data,
                      size_t from, size_t to)
{
    for (size_t off = from; off < to; off += CHUNK) {
        size_t k = to - off < CHUNK ? to - off : CHUNK;
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, w->channel, (*seq)++, data + off, k), 0);
        rh_sleep_ms(2);
    }
}

/* A file-end for len bytes carrying the SHA-256 of digest_of. */
static void send_end(int fd, const fy_welcome *w, uint64_t *seq, const uint8_t *digest_of,
                     size_t len)
{
    uint8_t p[512];
    size_t n;
    fy_file_end fe = {.size = len};

    assert_int_equal(fy_sha256_oneshot(digest_of, len, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_END, w->channel, (*seq)++, p, n), 0);
}

/* The number after key= on the last log line holding what, or -1. */
static long long log_value(const tstate *t, const char *what, const char *key)
{
    FILE *f = fopen(t->d.log, "r");
    char line[2048];
    long long v = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        const char *k;
        if (strstr(line, what) && (k = strstr(line, key)))
            v = strtoll(k + strlen(key), NULL, 10);
    }
    fclose(f);
    return v;
}

/* A file whose hash lags many batches behind the append: its body reaches
 * a live receiver before the file-end is even sent, the wrong digest is
 * refused (FY_EDIGEST, the file-end not stored, no ack), the receivers
 * discard the file, and the same file with the right digest after it is
 * acknowledged and received whole. */
static void test_lagging_mismatch(void **st)
{
    tstate *t = *st;
    enum { N = 24 * CHUNK + 1000 };
    uint8_t *x = random_data(N, 81), *y = random_data(N, 82);
    fy_welcome w;
    rh_rx live, all;

    start_slow_hash(t, "25");
    receiver(t, &live, "lag", FY_MODE_LIVE, 0);
    int fd = sender(t, "lag", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_begin(fd, &w, &seq, "x", N);
    send_body(fd, &w, &seq, x, 0, N);
    /* Published before the verdict: the body arrives while it is hashed. */
    assert_int_equal(rh_rx_until(&live, 1, N - CHUNK), 1);
    send_end(fd, &w, &seq, y, N); /* another file's digest */
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_EDIGEST);
    close(fd);
    assert_int_equal(rh_log_count(&t->d, "file digest mismatch"), 1);

    fd = sender_retry(t, "lag", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq - 1); /* the bad file-end was not stored */
    seq = w.next_seq;
    send_begin(fd, &w, &seq, "x", N);
    send_body(fd, &w, &seq, x, 0, N);
    send_end(fd, &w, &seq, x, N);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    say_bye(fd);

    assert_int_equal(rh_rx_until(&live, 1, 0), 0);
    check_file(&live.files[0], "x", x, N);
    receiver(t, &all, "lag", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&all, 1, 0), 0);
    check_file(&all.files[0], "x", x, N);
    assert_int_equal(all.files[0].begin_seq, live.files[0].begin_seq);
    rh_rx_free(&live);
    rh_rx_free(&all);

    /* The bodies went to the worker, batch after batch. */
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(log_value(t, "hash stream closed", "batches_behind=") >= 8);
    free(x);
    free(y);
    t->ok = true;
}

/* Small files, each in one batch with its file-end, are checked on the
 * writer's turn as before: a wrong digest between right ones is refused
 * and only the files before it are acknowledged. */
static void test_small_mismatch(void **st)
{
    tstate *t = *st;
    enum { N = 3000 };
    uint8_t *a = random_data(N, 83), *b = random_data(N, 84);
    fy_welcome w;

    start_slow_hash(t, "25");
    int fd = sender(t, "small", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a", a, N);
    send_begin(fd, &w, &seq, "b", N);
    assert_int_equal(rh_send_frame(fd, FY_FT_DATA, w.channel, seq++, b, N), 0);
    send_end(fd, &w, &seq, a, N);
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_EDIGEST);
    close(fd);
    fd = sender_retry(t, "small", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq - 1);
    say_bye(fd);
    free(a);
    free(b);
    t->ok = true;
}

/* SIGTERM while a file's body is still being hashed: ferryd waits for its
 * hash jobs, stores everything it read and exits 0; after the restart the
 * sender continues the file (the stored part is hashed back from the
 * log), a wrong digest is still refused, the right one acknowledged. */
static void test_stop_while_hashing(void **st)
{
    tstate *t = *st;
    enum { N = 16 * CHUNK };
    uint8_t *x = random_data(N, 85), *y = random_data(N, 86);
    fy_welcome w;

    start_slow_hash(t, "100");
    int fd = sender(t, "stop", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_begin(fd, &w, &seq, "x", N);
    send_body(fd, &w, &seq, x, 0, N / 2);
    say_bye_read(t, fd);
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(log_value(t, "hash stream closed", "batches_behind=") >= 1);

    start(t, NULL);
    fd = sender(t, "stop", "", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq); /* every frame read before the stop is stored */
    send_body(fd, &w, &seq, x, N / 2, N);
    send_end(fd, &w, &seq, y, N);
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_EDIGEST);
    close(fd);
    fd = sender_retry(t, "stop", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq - 1);
    seq = w.next_seq;
    send_end(fd, &w, &seq, x, N);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    say_bye(fd);
    assert_true(rh_log_count(&t->d, "sender continues a file") >= 1);

    rh_rx all;
    receiver(t, &all, "stop", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&all, 1, 0), 0);
    check_file(&all.files[0], "x", x, N);
    rh_rx_free(&all);
    free(x);
    free(y);
    t->ok = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lagging_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_hashing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
