/*
 * test_cli_crash.c - the crash suite: "never lose a byte".
 *
 * ferryd is SIGKILLed at random points while several `ferry send` (several
 * files each, some big enough to be mid-file at a kill) and `ferry recv
 * --resume` run with their default retrying; after each kill the test
 * starts ferryd again on the same data directory and the same port, and
 * the clients find it by themselves.  At the end, with no manual step:
 * every sender exited 0 and every file it reported acknowledged is intact
 * (ferry check is clean after a clean stop, and a --from-start receive
 * gets each one byte-identical), and every receiver's copy is
 * byte-identical to its source.
 *
 * The kill points come from a seeded PRNG; the seed is printed, and
 * FERRY_CRASH_SEED=N replays a run (the kills land at the same delays; the
 * processes' timing is the machine's).  FERRY_CRASH_KILLS=N overrides the
 * number of kills (default 6-10 from the seed).  Sizes are smaller under
 * sanitizers (FY_CT_SANITIZED) so the suite stays well inside CI's bounds.
 *
 * Also: a receiver on a quiet channel outlives more relay restarts than
 * --retries (each reconnect worked, so none is a failed attempt).
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define CRASH_CHANNELS 3
#define CRASH_FILES 4                   /* per channel (one sender each) */
#define CRASH_RECEIVERS (CRASH_CHANNELS + 1) /* one per channel, a slow one on channel 0 */
#define CRASH_CLIENT_MS 90000           /* a client's bound after the last kill */
#define CRASH_KILL_GAP_MS (FY_CT_SANITIZED ? 700 : 350) /* random delays up to this */

typedef struct crash_file {
    char path[FY_CT_PATH + 64];
    char name[32];
    uint64_t size;
    uint8_t sha[32];
} crash_file;

typedef struct crash_run {
    uint64_t rng;
    crash_file files[CRASH_CHANNELS][CRASH_FILES];
    char channel[CRASH_CHANNELS][24];
    pid_t send[CRASH_CHANNELS], recv[CRASH_RECEIVERS];
    char out[CRASH_RECEIVERS][FY_CT_PATH];
} crash_run;

static uint64_t rnd(crash_run *c)
{
    uint64_t z = (c->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rnd_in(crash_run *c, uint64_t lo, uint64_t hi)
{
    return lo + rnd(c) % (hi - lo + 1);
}

/* Channel ch's files: a small one, a medium one and two big ones, in a
 * seeded order, so kills find senders mid-file in every kind. */
static void make_files(fy_ct *t, crash_run *c, int ch)
{
    const uint64_t big = FY_CT_SANITIZED ? 8u << 20 : 40u << 20;
    uint64_t sizes[CRASH_FILES] = {rnd_in(c, 1, 256 << 10), rnd_in(c, 1 << 20, 4 << 20),
                                   rnd_in(c, big / 2, big), rnd_in(c, big / 2, big)};
    for (int i = CRASH_FILES - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(rnd(c) % (uint64_t)(i + 1));
        uint64_t s = sizes[i];
        sizes[i] = sizes[j];
        sizes[j] = s;
    }
    char dir[FY_CT_PATH], name[64], base[32];
    snprintf(name, sizeof name, "src%d", ch);
    fy_ct_mkdir(fy_ct_path(t, name, dir));
    for (int i = 0; i < CRASH_FILES; i++) {
        crash_file *f = &c->files[ch][i];
        snprintf(base, sizeof base, "c%d-f%d.bin", ch, i);
        snprintf(f->name, sizeof f->name, "%s", base);
        snprintf(f->path, sizeof f->path, "%s/%s", dir, base);
        f->size = sizes[i];
        fy_ct_make_file(f->path, f->size, rnd(c), f->sha);
    }
}

static int receiver_channel(int r)
{
    return r < CRASH_CHANNELS ? r : 0;
}

static int running(const pid_t *pids, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += fy_ct_running(pids[i]);
    return k;
}

/* Assert every file of channel ch is in dir, byte-identical. */
static void assert_dir(const crash_run *c, int ch, const char *dir)
{
    char p[FY_CT_PATH * 2];
    for (int i = 0; i < CRASH_FILES; i++) {
        const crash_file *f = &c->files[ch][i];
        snprintf(p, sizeof p, "%s/%s", dir, f->name);
        fy_ct_assert_same(p, f->sha);
    }
}

/* Lines of path that contain needle (0 when it cannot be read). */
static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* The run's seed: FERRY_CRASH_SEED, else from the clock and the PID. */
static uint64_t crash_seed(void)
{
    uint64_t seed = (uint64_t)fy_ct_env_long("FERRY_CRASH_SEED", 0);
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid()) %
               1000000000u + 1;
    }
    return seed;
}

/* The receivers (--resume; one of them slow) and the senders, spawned. */
static void start_clients(fy_ct *t, crash_run *c, const char *count)
{
    char tag[32];
    for (int r = 0; r < CRASH_RECEIVERS; r++) {
        snprintf(tag, sizeof tag, "recv%d", r);
        fy_ct_path(t, tag, c->out[r]);
        const char *slow = r == CRASH_CHANNELS ? "--rate" : NULL;
        c->recv[r] = fy_ct_recv(t, tag, c->channel[receiver_channel(r)], c->out[r],
                                (const char *[]){"--resume", "--count", count, slow,
                                                 FY_CT_SANITIZED ? "4M" : "16M", NULL});
    }
    for (int ch = 0; ch < CRASH_CHANNELS; ch++) {
        const char *argv[CRASH_FILES + 1] = {0};
        for (int i = 0; i < CRASH_FILES; i++)
            argv[i] = c->files[ch][i].path;
        snprintf(tag, sizeof tag, "send%d", ch);
        c->send[ch] = fy_ct_send(t, tag, c->channel[ch], argv);
    }
}

/* The kills: each at a random delay, the relay back at once.  Returns how
 * many found clients running. */
static int kill_and_restart(fy_ct *t, crash_run *c, int kills)
{
    int mid = 0;
    for (int k = 0; k < kills; k++) {
        fy_ct_sleep_ms((int)rnd_in(c, 30, CRASH_KILL_GAP_MS));
        int s = running(c->send, CRASH_CHANNELS), r = running(c->recv, CRASH_RECEIVERS);
        mid += s + r > 0;
        fy_ct_daemon_kill9(t);
        fprintf(stderr, "crash: kill %d/%d with senders=%d receivers=%d running\n", k + 1,
                kills, s, r);
        if (rnd(c) % 2)
            fy_ct_sleep_ms((int)rnd_in(c, 1, 300)); /* down for a while */
        fy_ct_daemon_restart(t, NULL);
    }
    return mid;
}

/* Every sender finishes by itself, with every file acknowledged; every
 * receiver gets every file of its channel, byte-identical. */
static void expect_clients_done(fy_ct *t, crash_run *c)
{
    char tag[32];
    for (int ch = 0; ch < CRASH_CHANNELS; ch++) {
        snprintf(tag, sizeof tag, "send%d", ch);
        fy_ct_expect_exit(t, c->send[ch], tag, CRASH_CLIENT_MS, 0);
        char p[FY_CT_PATH * 2], want[64];
        snprintf(p, sizeof p, "%s/%s.out", t->dir, tag);
        snprintf(want, sizeof want, "files=%d ", CRASH_FILES);
        assert_true(fy_ct_contains(p, want));
        for (int i = 0; i < CRASH_FILES; i++) {
            snprintf(want, sizeof want, "file=%s ", c->files[ch][i].name);
            assert_true(fy_ct_contains(p, want));
        }
    }
    for (int r = 0; r < CRASH_RECEIVERS; r++) {
        snprintf(tag, sizeof tag, "recv%d", r);
        fy_ct_expect_exit(t, c->recv[r], tag, CRASH_CLIENT_MS, 0);
        assert_dir(c, receiver_channel(r), c->out[r]);
    }
}

/* A clean stop: the data directory checks clean and holds every
 * acknowledged file, byte-identical. */
static void expect_clean_data(fy_ct *t, crash_run *c, const char *count)
{
    char tag[32];
    fy_ct_daemon_stop(t);
    fy_ct_expect_exit(t, fy_ct_spawn(t, "check", (const char *[]){"check", "--data", t->data, NULL}),
                      "check", CRASH_CLIENT_MS, 0);
    char p[FY_CT_PATH * 2];
    assert_true(fy_ct_contains(fy_ct_path(t, "check.out", p), "check=ok"));
    fy_ct_daemon_restart(t, NULL);
    for (int ch = 0; ch < CRASH_CHANNELS; ch++) {
        char dir[FY_CT_PATH];
        snprintf(tag, sizeof tag, "again%d", ch);
        fy_ct_path(t, tag, dir);
        pid_t rx = fy_ct_recv(t, tag, c->channel[ch], dir,
                              (const char *[]){"--from-start", "--count", count, NULL});
        fy_ct_expect_exit(t, rx, tag, CRASH_CLIENT_MS, 0);
        assert_dir(c, ch, dir);
    }
    fy_ct_daemon_stop(t);
}

static void test_kill9_while_transferring(void **state)
{
    fy_ct *t = *state;
    static crash_run run; /* ~70 KB; static, so a failed assertion leaks nothing */
    crash_run *c = &run;
    memset(c, 0, sizeof *c);
    uint64_t seed = crash_seed();
    c->rng = seed;
    int kills = (int)fy_ct_env_long("FERRY_CRASH_KILLS", (long)rnd_in(c, 6, 10));
    fprintf(stderr, "crash: seed=%" PRIu64 " kills=%d (replay: FERRY_CRASH_SEED=%" PRIu64 ")\n",
            seed, kills, seed);
    for (int ch = 0; ch < CRASH_CHANNELS; ch++) {
        snprintf(c->channel[ch], sizeof c->channel[ch], "crash%d", ch);
        make_files(t, c, ch);
    }

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fy_ct_daemon_start(t, NULL);
    char count[16];
    snprintf(count, sizeof count, "%d", CRASH_FILES);
    start_clients(t, c, count);

    /* Every client's first hello reaches the relay before the first kill:
     * a client whose very first connect is refused exits at once by design
     * (a wrong address fails fast), and sanitizer builds start slowly. */
    char log0[FY_CT_PATH + 32];
    snprintf(log0, sizeof log0, "%s/ferryd-0.log", t->dir);
    for (int i = 0; i < 2000 && count_lines(log0, "msg=\"hello\"") <
                                    CRASH_RECEIVERS + CRASH_CHANNELS; i++)
        fy_ct_sleep_ms(10);

    int mid = kill_and_restart(t, c, kills);
    expect_clients_done(t, c);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "crash: seed=%" PRIu64 " survived %d kills (%d with clients running) in "
            "%.1f s\n", seed, kills, mid, secs);
    assert_true(mid >= 1);
    expect_clean_data(t, c, count);
}

/* A receiver waiting on a quiet channel sees more relay restarts than
 * --retries, each far apart: every reconnect works, so it never gives up,
 * and it gets the file sent afterwards. */
static void test_idle_receiver_outlives_restarts(void **state)
{
    fy_ct *t = *state;
    char src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 2];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "late.bin", src), 300000, 77, sha);
    fy_ct_daemon_start(t, NULL);
    fy_ct_path(t, "out", out);
    pid_t rx = fy_ct_recv(t, "recv", "quiet", out, (const char *[]){"--retries", "2", "--count",
                                                                    "1", NULL});
    for (int k = 0; k < 4; k++) {
        fy_ct_sleep_ms(1500); /* up long enough to count as working */
        assert_true(fy_ct_running(rx));
        fy_ct_daemon_kill9(t);
        fy_ct_daemon_restart(t, NULL);
    }
    fy_ct_sleep_ms(1500); /* reconnected */
    fy_ct_expect_exit(t, fy_ct_send(t, "send", "quiet", (const char *[]){src, NULL}), "send",
                      CRASH_CLIENT_MS, 0);
    fy_ct_expect_exit(t, rx, "recv", CRASH_CLIENT_MS, 0);
    snprintf(p, sizeof p, "%s/late.bin", out);
    fy_ct_assert_same(p, sha);
    fy_ct_daemon_stop(t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_while_transferring, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_idle_receiver_outlives_restarts, fy_ct_setup,
                                        fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
