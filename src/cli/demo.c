/*
 * demo.c - `ferry demo` (see demo.h).
 *
 * The receivers are threads calling fy_cli_recv_run, i.e. exactly the code
 * of `ferry recv`, each with its own connection and directory; they
 * subscribe from the start of the (fresh) channel and the file is sent
 * only once all of them are welcomed, so the run shows live fan-out.
 * Verification re-reads each received file from disk and hashes it: the
 * demo trusts nothing the client said about itself.
 */
#include "cli/demo.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/daemon.h"
#include "cli/cliexit.h"
#include "cli/progress.h"
#include "cli/recv.h"
#include "cli/send.h"
#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/klog.h"

#define DEMO_CHANNEL "demo"
#define DEMO_FILE "demo.bin"
#define DEMO_BLOCK ((size_t)1 << 20)
#define DEMO_START_MS 10000
#define DEMO_STOP_MS 5000
#define DEMO_WELCOME_S 10

typedef struct demo_rx {
    struct demo *d;
    pthread_t thread;
    bool started;
    fy_cli_recv_opts o;
    fy_cli_recv_result res;
    char dir[4096];
    int code;
    double done_t;
    bool verified;
} demo_rx;

typedef struct demo {
    const fy_cli_demo_opts *o;
    char root[2048], src[4096];
    fy_cli_daemon daemon;
    uint8_t src_sha[32];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int welcomed, finished;
    demo_rx rx[FY_CLI_DEMO_RECEIVERS_MAX];
} demo;

/* ---- files ------------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path); /* best effort: keep going */
    return 0;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* splitmix64: fast, and different bytes every run (seeded from the clock),
 * so nothing along the way can get away with caching or compressing. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int make_source(demo *d, uint64_t size)
{
    int fd = open(d->src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uint64_t *buf = malloc(DEMO_BLOCK);
    fy_sha256 *h = NULL;
    int rc = fd < 0 ? -errno : !buf ? -ENOMEM : fy_sha256_new(&h);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid();
    for (uint64_t left = size; rc == 0 && left > 0;) {
        size_t n = left < DEMO_BLOCK ? (size_t)left : DEMO_BLOCK;
        for (size_t i = 0; i < DEMO_BLOCK / 8; i++)
            buf[i] = splitmix64(&seed);
        fy_sha256_update(h, buf, n);
        if (write(fd, buf, n) != (ssize_t)n)
            rc = errno ? -errno : -EIO;
        left -= n;
    }
    if (rc == 0)
        fy_sha256_final(h, d->src_sha);
    fy_sha256_free(h);
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int hash_file(const char *path, uint8_t out[32])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint8_t *buf = malloc(DEMO_BLOCK);
    fy_sha256 *h = NULL;
    int rc = !buf ? -ENOMEM : fy_sha256_new(&h);
    ssize_t n;
    while (rc == 0 && (n = read(fd, buf, DEMO_BLOCK)) != 0) {
        if (n < 0)
            rc = -errno;
        else
            fy_sha256_update(h, buf, (size_t)n);
    }
    if (rc == 0)
        fy_sha256_final(h, out);
    fy_sha256_free(h);
    free(buf);
    close(fd);
    return rc;
}

/* ---- receivers ---------------------------------------------------------------- */

static void on_welcome(void *arg, const fy_welcome *w)
{
    (void)w;
    demo *d = arg;
    pthread_mutex_lock(&d->mu);
    d->welcomed++;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* The relay has no channel yet and keeps the receiver waiting: once the
 * sender creates it, the receiver gets all of it, as if welcomed now. */
static void on_waiting(void *arg)
{
    on_welcome(arg, NULL);
}

static void *rx_main(void *arg)
{
    demo_rx *x = arg;
    x->code = fy_cli_recv_run(&x->o, &x->res);
    pthread_mutex_lock(&x->d->mu);
    x->done_t = fy_cli_progress_now();
    x->d->finished++;
    pthread_cond_broadcast(&x->d->cv);
    pthread_mutex_unlock(&x->d->mu);
    return NULL;
}

/* Wait until every receiver is welcomed (or one has already given up). */
static bool wait_welcomed(demo *d, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DEMO_WELCOME_S;
    pthread_mutex_lock(&d->mu);
    while (d->welcomed < n && d->finished == 0)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT)
            break;
    bool ok = d->welcomed >= n;
    pthread_mutex_unlock(&d->mu);
    return ok;
}

static int start_receivers(demo *d, int n)
{
    for (int i = 0; i < n; i++) {
        demo_rx *x = &d->rx[i];
        x->d = d;
        snprintf(x->dir, sizeof x->dir, "%s/recv%d", d->root, i + 1);
        x->o = (fy_cli_recv_opts){.server = d->daemon.addr, .channel = DEMO_CHANNEL,
                                  .out_dir = x->dir, .start = FY_CLI_RECV_START, .count = 1,
                                  .progress = FY_CLI_PROGRESS_QUIET, .cancel = d->o->cancel,
                                  .on_welcome = on_welcome, .on_waiting = on_waiting,
                                  .arg = d};
        if (pthread_create(&x->thread, NULL, rx_main, x) != 0)
            return -EAGAIN;
        x->started = true;
    }
    return wait_welcomed(d, n) ? 0 : -ETIMEDOUT;
}

/* ---- the run ------------------------------------------------------------------- */

static void print_summary(demo *d, int n, uint64_t size, double t0, double send_s)
{
    char hex[65], b[32];
    fy_sha256_hex(d->src_sha, hex);
    double last = t0;
    int verified = 0;
    printf("Ferry demo: 1 sender -> %d receivers through ferryd at %s\n", n, d->daemon.addr);
    printf("  file        %s of pseudo-random bytes, sha256 %.16s...\n",
           fy_cli_progress_bytes(size, b, sizeof b), hex);
    printf("  sender      %.3f s until the relay acknowledged the file (stored on disk)\n", send_s);
    for (int i = 0; i < n; i++) {
        demo_rx *x = &d->rx[i];
        double s = x->done_t - t0;
        if (x->done_t > last)
            last = x->done_t;
        verified += x->verified;
        char r[16];
        printf("  receiver %-2d %.3f s  %5s/s  %s\n", i + 1, s,
               fy_cli_progress_bytes(s > 0 ? (uint64_t)((double)size / s) : 0, r, sizeof r),
               x->verified ? "sha256 verified" : x->code ? fy_cli_exit_text(x->code) : "sha256 MISMATCH");
    }
    double secs = last - t0;
    char all[16];
    printf("  all         %.3f s; %s/s delivered in total (K/M/G: powers of 1024)\n", secs,
           fy_cli_progress_bytes(secs > 0 ? (uint64_t)((double)size * n / secs) : 0, all,
                                 sizeof all));
    printf("demo=%s bytes=%llu receivers=%d seconds=%.3f mbps_per_receiver=%.1f verified=%d\n",
           verified == n ? "ok" : "failed", (unsigned long long)size, n, secs,
           fy_cli_progress_mbps(size, secs), verified);
    fflush(stdout);
}

static int run(demo *d, int n, uint64_t size)
{
    char ferryd[2048], path[8192];
    if (fy_cli_daemon_find(ferryd, sizeof ferryd) < 0) {
        fy_klog(FY_LOG_ERROR,
                "ferryd not found next to ferry or in ../sbin; set FERRYD=/path/to/ferryd",
                "exit=%d", FY_CLI_EXIT_USAGE);
        return FY_CLI_EXIT_USAGE;
    }
    snprintf(d->src, sizeof d->src, "%s/%s", d->root, DEMO_FILE);
    int rc = make_source(d, size);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "cannot write the demo file", "file=%s err=%s exit=%d", d->src,
                fy_errname(rc), FY_CLI_EXIT_IO);
        return FY_CLI_EXIT_IO;
    }
    char data[4096], log[4096];
    snprintf(data, sizeof data, "%s/data", d->root);
    snprintf(log, sizeof log, "%s/ferryd.log", d->root);
    rc = fy_cli_daemon_start(ferryd, data, log, NULL, DEMO_START_MS, &d->daemon);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "ferryd did not start", "ferryd=%s log=%s err=%s exit=%d", ferryd, log,
                fy_errname(rc), FY_CLI_EXIT_NET);
        return FY_CLI_EXIT_NET;
    }
    rc = start_receivers(d, n);
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "receivers did not subscribe", "err=%s log=%s", fy_errname(rc), log);
        fy_cli_cancel_trigger(d->o->cancel);
        return FY_CLI_EXIT_NET;
    }
    const char *files[1] = {d->src};
    fy_cli_send_opts so = {.server = d->daemon.addr, .channel = DEMO_CHANNEL, .files = files,
                           .nfiles = 1, .progress = FY_CLI_PROGRESS_QUIET, .cancel = d->o->cancel};
    double t0 = fy_cli_progress_now();
    int code = fy_cli_send_run(&so, NULL);
    double send_s = fy_cli_progress_now() - t0;
    if (code != FY_CLI_EXIT_OK) {
        fy_cli_cancel_trigger(d->o->cancel); /* wakes the receivers */
        return code;
    }
    for (int i = 0; i < n; i++) {
        pthread_join(d->rx[i].thread, NULL);
        d->rx[i].started = false;
        uint8_t got[32];
        snprintf(path, sizeof path, "%s/%s", d->rx[i].dir, DEMO_FILE);
        d->rx[i].verified = d->rx[i].code == FY_CLI_EXIT_OK && hash_file(path, got) == 0 &&
                            memcmp(got, d->src_sha, 32) == 0;
        if (!d->rx[i].verified && code == FY_CLI_EXIT_OK)
            code = d->rx[i].code ? d->rx[i].code : FY_CLI_EXIT_CHECKSUM;
    }
    print_summary(d, n, size, t0, send_s);
    return code;
}

int fy_cli_demo_run(const fy_cli_demo_opts *o)
{
    demo *d = calloc(1, sizeof *d);
    if (!d)
        return FY_CLI_EXIT_IO;
    d->o = o;
    int n = o->receivers ? o->receivers : 3;
    uint64_t size = o->size ? o->size : FY_CLI_DEMO_SIZE_DEFAULT;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    const char *tmp = getenv("TMPDIR");
    snprintf(d->root, sizeof d->root, "%s/ferry-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int code = FY_CLI_EXIT_IO;
    if (mkdtemp(d->root))
        code = run(d, n, size);
    else
        fy_klog(FY_LOG_ERROR, "cannot create temp directory", "dir=%s err=%s", d->root,
                fy_errname(-errno));
    for (int i = 0; i < n; i++)
        if (d->rx[i].started)
            pthread_join(d->rx[i].thread, NULL);
    int st = fy_cli_daemon_stop(&d->daemon, DEMO_STOP_MS);
    if (st == -1)
        fy_klog(FY_LOG_WARN, "ferryd did not stop on SIGTERM", "action=SIGKILL");
    if (fy_cli_cancel_requested(o->cancel))
        code = FY_CLI_EXIT_INTR;
    if (o->keep)
        fprintf(stderr, "kept: %s (source, ferryd data and log, receiver directories)\n", d->root);
    else
        rm_tree(d->root);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
    return code;
}
