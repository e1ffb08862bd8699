/*
 * relay_bench.c - throughput of the real ferryd on loopback: one sender,
 * N receivers (default 1 and 3), one file of --mib MiB in 64 KiB frames.
 * The reference, measured in the same run, is one plain TCP stream of the
 * same bytes over loopback (no relay, no framing), so the relay's figure is
 * reported as a ratio too.  Prints a table, then one key=value line.
 *
 *   relay_bench [--mib 200] [--receivers 1,3] [--fsync never|file-end]
 */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ferry/proto.h"
#include "ferry/sock.h"
#include "relay_harness.h"

#define CHUNK (64u << 10)


/* A receiver as a real client would be: big reads, frames decoded (and
 * CRC-checked) by fy_dec. */
static void *rx_main(void *arg)
{
    rh_rx_job *j = arg;
    size_t cap = 1u << 20;
    uint8_t *buf = malloc(cap);
    fy_dec *dec;
    bool end = false;

    if (!buf || fy_dec_new(FY_PAYLOAD_MAX_DEFAULT, &dec) < 0) {
        j->rc = -ENOMEM;
        free(buf);
        return NULL;
    }
    for (long i = 0; i < 100000000 && !end; i++) {
        ssize_t n = recv(j->fd, buf, cap, 0);
        if (n <= 0) {
            j->rc = n == 0 ? -ENODATA : -errno;
            break;
        }
        const uint8_t *p = buf;
        size_t left = (size_t)n;
        while (left && !end) {
            size_t used = 0;
            fy_frame f;
            int rc = fy_dec_feed(dec, p, left, &used, &f);
            p += used;
            left -= used;
            if (rc < 0) {
                j->rc = rc;
                end = true;
            } else if (rc == 0) {
                break;
            } else if (f.hdr.type == FY_FT_DATA) {
                j->bytes += f.hdr.len;
            } else if (f.hdr.type == FY_FT_FILE_END || f.hdr.type == FY_FT_ERROR) {
                end = true;
            }
        }
    }
    j->done = rh_now_s();
    fy_dec_free(dec);
    free(buf);
    return NULL;
}

/* Plain loopback TCP: the reference. */
typedef struct plain { int fd; size_t len; } plain;
static void *plain_rx(void *arg)
{
    plain *p = arg;
    uint8_t *buf = malloc(1u << 20);
    size_t got = 0;
    while (got < p->len) {
        ssize_t n = recv(p->fd, buf, 1u << 20, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    free(buf);
    return NULL;
}

static double plain_mbs(const uint8_t *data, size_t len)
{
    fy_addr a, b;
    fy_addr_parse("127.0.0.1:0", NULL, &a);
    int l = fy_sock_listen(&a, 0, &b);
    char text[64];
    fy_addr_format(&b, text, sizeof text);
    int c = fy_sock_connect(&b, 2000);
    int s = -1;
    for (int i = 0; i < 1000 && s < 0; i++) {
        s = fy_sock_accept(l, NULL);
        if (s < 0)
            usleep(1000);
    }
    fy_sock_set_nonblock(s, 0);
    plain p = {s, len};
    pthread_t th;
    double t0 = rh_now_s();
    pthread_create(&th, NULL, plain_rx, &p);
    for (size_t off = 0; off < len; off += CHUNK)
        fy_sock_write_all(c, data + off, len - off < CHUNK ? len - off : CHUNK);
    pthread_join(th, NULL);
    double dt = rh_now_s() - t0;
    close(c);
    close(s);
    close(l);
    return (double)len / dt / 1e6;
}

static double relay_mbs(rh_daemon *d, int nrx, const uint8_t *data, size_t len, int *ok)
{
    rh_rx_job rx[16] = {0};
    pthread_t th[16];
    fy_welcome w;
    char chan[32];

    snprintf(chan, sizeof chan, "bench%d", nrx);
    for (int i = 0; i < nrx; i++) {
        rx[i].fd = rh_connect(d);
        if (rh_hello(rx[i].fd, FY_ROLE_RECEIVER, chan, "", FY_MODE_LIVE, 0, &w) < 0)
            return -1;
    }
    int fd = rh_connect(d);
    if (rh_hello(fd, FY_ROLE_SENDER, chan, "", 0, 0, &w) < 0)
        return -1;
    for (int i = 0; i < nrx; i++)
        pthread_create(&th[i], NULL, rx_main, &rx[i]);
    double t0 = rh_now_s();
    uint64_t seq = w.next_seq;
    int rc = rh_send_file(fd, w.channel, &seq, "bench.bin", data, len, CHUNK);
    if (rc == 0)
        rc = rh_wait_ack(fd, seq - 1);
    double tack = rh_now_s();
    double last = tack;
    *ok = rc == 0;
    for (int i = 0; i < nrx; i++) {
        pthread_join(th[i], NULL);
        if (rx[i].rc < 0 || rx[i].bytes != len)
            *ok = 0;
        if (rx[i].done > last)
            last = rx[i].done;
        close(rx[i].fd);
    }
    rh_send_frame(fd, FY_FT_BYE, 0, 0, NULL, 0);
    close(fd);
    printf("  receivers=%d  sender acked after %.3f s, last receiver done after %.3f s\n", nrx,
           tack - t0, last - t0);
    return (double)len / (last - t0) / 1e6;
}

int main(int argc, char **argv)
{
    size_t mib = 200;
    const char *fsync = "never";
    int counts[8] = {1, 3}, ncounts = 2, port = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: relay_bench [--mib N] [--receivers 1,3] [--fsync never|file-end] [--port P]\n");
            return 0;
        } else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
            mib = (size_t)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]); /* use a running ferryd on 127.0.0.1:PORT */
        } else if (strcmp(argv[i], "--fsync") == 0 && i + 1 < argc) {
            fsync = argv[++i];
        } else if (strcmp(argv[i], "--receivers") == 0 && i + 1 < argc) {
            ncounts = 0;
            for (char *p = strtok(argv[++i], ","); p && ncounts < 8; p = strtok(NULL, ","))
                counts[ncounts++] = atoi(p);
        } else {
            fprintf(stderr, "relay_bench: bad argument '%s'\n", argv[i]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    size_t len = mib << 20;
    uint8_t *data = malloc(len);
    rh_fill(data, len, 42);

    double ref = plain_mbs(data, len);
    rh_daemon d;
    rh_init(&d);
    const char *args[] = {"--fsync", fsync, NULL};
    if (port)
        d.port = (uint16_t)port;
    else if (rh_start(&d, args) < 0) {
        fprintf(stderr, "relay_bench: cannot start ferryd\n");
        return 1;
    }
    printf("relay_bench: %zu MiB file, 64 KiB frames, fsync=%s, loopback\n", mib, fsync);
    printf("  %-28s %10.0f MB/s\n", "plain TCP stream (reference)", ref);
    double r[8];
    int all_ok = 1;
    for (int i = 0; i < ncounts; i++) {
        int ok = 0;
        r[i] = relay_mbs(&d, counts[i], data, len, &ok);
        all_ok &= ok;
        printf("  %-28s %10.0f MB/s per receiver (%.0f MB/s delivered), %.2f x reference%s\n",
               i ? "relay, 1 sender -> N" : "relay, 1 sender -> N", r[i], r[i] * counts[i],
               r[i] / ref, ok ? "" : "  (INCOMPLETE)");
    }
    int st = rh_stop(&d, 10000);
    rh_cleanup(&d, !all_ok);
    printf("mib=%zu plain_mbs=%.0f", mib, ref);
    for (int i = 0; i < ncounts; i++)
        printf(" rx%d_mbs=%.0f rx%d_ratio=%.2f", counts[i], r[i], counts[i], r[i] / ref);
    printf(" ok=%d exit=%d\n", all_ok, st);
    free(data);
    return all_ok ? 0 : 1;
}
