/*
 * trace_bench.c - what recording the trace costs the relay: 1 sender -> 4
 * receivers through the real ferryd on loopback, one file of --mib MiB in
 * 64 KiB frames, with the daemon started three ways, interleaved round by
 * round so that the machine's drift hits every mode alike:
 *
 *   off      ferryd --trace-events 0       (no recording at all: reference)
 *   ring     ferryd                        (flight recorder only, the default)
 *   file     ferryd --trace FILE           (streamed to a rotating file)
 *
 * Not a test (no timing is asserted).  Prints a table of the median
 * aggregate delivered MB/s per mode and its ratio to "off", then one line
 * of key=value pairs.  Run in a release build:
 *
 *   trace_bench [--mib 256] [--rounds 5] [--receivers 4]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ferry/proto.h"
#include "relay_harness.h"

#define CHUNK (64u << 10)
#define MAXRX 16
#define MAXROUNDS 15


static void *rx_main(void *arg)
{
    rh_rx_job *j = arg;
    for (long i = 0; i < 100000000; i++) {
        rh_frame f;
        int rc = rh_read_frame(j->fd, &f);
        if (rc < 0) {
            j->rc = rc;
            return NULL;
        }
        uint8_t t = f.hdr.type;
        if (t == FY_FT_DATA)
            j->bytes += f.hdr.len;
        rh_frame_free(&f);
        if (t == FY_FT_FILE_END || t == FY_FT_ERROR)
            break;
    }
    j->done = rh_now_s();
    return NULL;
}

/* One transfer; returns aggregate delivered MB/s, or -1. */
static double run_once(rh_daemon *d, int nrx, const uint8_t *data, size_t len)
{
    rh_rx_job rx[MAXRX] = {0};
    pthread_t th[MAXRX];
    fy_welcome w;
    for (int i = 0; i < nrx; i++) {
        rx[i].fd = rh_connect(d);
        if (rx[i].fd < 0 || rh_hello(rx[i].fd, FY_ROLE_RECEIVER, "bench", "", FY_MODE_LIVE, 0, &w) < 0)
            return -1;
    }
    int fd = rh_connect(d);
    if (fd < 0 || rh_hello(fd, FY_ROLE_SENDER, "bench", "", 0, 0, &w) < 0)
        return -1;
    for (int i = 0; i < nrx; i++)
        pthread_create(&th[i], NULL, rx_main, &rx[i]);
    double t0 = rh_now_s();
    uint64_t seq = w.next_seq;
    int rc = rh_send_file(fd, w.channel, &seq, "bench.bin", data, len, CHUNK);
    if (rc == 0)
        rc = rh_wait_ack(fd, seq - 1);
    double last = rh_now_s();
    for (int i = 0; i < nrx; i++) {
        pthread_join(th[i], NULL);
        if (rx[i].rc < 0 || rx[i].bytes != len)
            rc = -1;
        if (rx[i].done > last)
            last = rx[i].done;
        close(rx[i].fd);
    }
    close(fd);
    return rc < 0 ? -1 : (double)len * nrx / (last - t0) / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int mib = 256, rounds = 5, nrx = 4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            puts("usage: trace_bench [--mib 256] [--rounds 5] [--receivers 4]\n"
                 "1->N throughput of ferryd with tracing off, flight recorder only, and\n"
                 "streamed to a file (--trace), interleaved; medians and ratios vs off.");
            return 0;
        }
        if (i + 1 < argc && !strcmp(argv[i], "--mib"))
            mib = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--receivers"))
            nrx = atoi(argv[++i]);
        else {
            fprintf(stderr, "trace_bench: unknown argument %s (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (mib < 1 || rounds < 1 || rounds > MAXROUNDS || nrx < 1 || nrx > MAXRX) {
        fprintf(stderr, "trace_bench: --mib >= 1, --rounds 1..%d, --receivers 1..%d\n",
                MAXROUNDS, MAXRX);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    size_t len = (size_t)mib << 20;
    uint8_t *data = malloc(len);
    rh_fill(data, len, 1);
    static const char *const names[] = {"off", "ring", "file"};
    double res[3][MAXROUNDS];
    long long trace_bytes = 0;
    int ok = 1;
    for (int r = 0; r < rounds; r++) {
        for (int m = 0; m < 3; m++) {
            rh_daemon d = {0};
            char tpath[400];
            if (rh_init(&d) < 0)
                return 1;
            snprintf(tpath, sizeof tpath, "%s/bench.trace", d.root);
            const char *off[] = {"--trace-events", "0", "--fsync", "never", NULL};
            const char *ring[] = {"--fsync", "never", NULL};
            const char *file[] = {"--trace", tpath, "--fsync", "never", NULL};
            const char *const *extra = m == 0 ? off : m == 1 ? ring : file;
            if (rh_start(&d, extra) < 0) {
                fprintf(stderr, "trace_bench: ferryd did not start (mode %s)\n", names[m]);
                rh_cleanup(&d, true);
                return 1;
            }
            res[m][r] = run_once(&d, nrx, data, len);
            if (res[m][r] < 0)
                ok = 0;
            rh_stop(&d, 10000);
            struct stat st;
            if (m == 2 && stat(tpath, &st) == 0)
                trace_bytes = st.st_size;
            rh_cleanup(&d, res[m][r] < 0);
        }
    }
    double med[3];
    printf("| mode | what ferryd records | median MB/s (1->%d, aggregate) | vs off |\n"
           "|---|---|---:|---:|\n", nrx);
    static const char *const what[] = {"nothing (--trace-events 0)", "flight recorder rings (default)",
                                       "rings streamed to --trace FILE"};
    for (int m = 0; m < 3; m++) {
        double v[MAXROUNDS];
        memcpy(v, res[m], sizeof v);
        med[m] = median(v, rounds);
        printf("| %s | %s | %.0f | %.3f |\n", names[m], what[m], med[m], med[m] / med[0]);
    }
    printf("rounds=%d mib=%d receivers=%d off_mbps=%.0f ring_mbps=%.0f file_mbps=%.0f "
           "ring_ratio=%.3f file_ratio=%.3f file_slowdown_pct=%.1f trace_file_bytes=%lld ok=%d\n",
           rounds, mib, nrx, med[0], med[1], med[2], med[1] / med[0], med[2] / med[0],
           (1 - med[2] / med[0]) * 100, trace_bytes, ok);
    free(data);
    return ok ? 0 : 1;
}
