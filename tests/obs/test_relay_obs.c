/*
 * test_relay_obs.c - observability of the real ferryd on loopback.
 *
 *  - /metrics (--metrics 127.0.0.1:0) is valid Prometheus text and its
 *    figures move as a transfer runs: bytes in, frames of the channel,
 *    receivers, bytes out (live and from disk); no label names a peer.
 *  - /healthz and /readyz answer, HEAD is answered without a body for all
 *    three paths, and ferry_build_info carries the version.
 *  - SIGUSR1 writes the flight recorder to DATA/trace-*.trace, and the
 *    summary of that file names the slow receiver as the most lagging one
 *    (the operator's question this whole feature answers).
 *  - --trace FILE records a transfer: the file parses, has the relay's actor
 *    kinds, and the forwarders' bytes out cover what the receivers got.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ferry/sock.h"
#include "obs/http_get.h"
#include "metrics/prom.h"
#include "trread/trfile.h"
#include "trread/trsum.h"
#include "relay_harness.h"

#define KIND_SESSION 2
#define KIND_WRITER 4
#define KIND_FORWARDER 6


/* The value after key= on the last log line that has it ("" if none). */
static void log_value(const rh_daemon *d, const char *key, char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen(d->log, "r");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, key);
        if (!p)
            continue;
        p += strlen(key);
        size_t n = strcspn(p, " \n\"");
        if (n >= cap)
            n = cap - 1;
        memcpy(out, p, n);
        out[n] = 0;
    }
    fclose(f);
}

/* GET /metrics: the body (malloc'd), checked to be valid exposition text. */
static char *scrape(const char *addr)
{
    char *buf = t_http(addr, "GET /metrics HTTP/1.0\r\n\r\n", RH_IO_TIMEOUT_S);
    assert_true(strncmp(buf, "HTTP/1.0 200 OK\r\n", 17) == 0);
    char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    char err[160];
    if (fy_prom_check(body, strlen(body), err, sizeof err) != 0)
        fail_msg("/metrics is not valid Prometheus text: %s", err);
    char *copy = strdup(body);
    free(buf);
    return copy;
}

static double metric(const char *text, const char *name, const char *labels)
{
    double v = -1;
    if (fy_prom_find(text, name, labels, &v) < 0)
        fail_msg("no sample %s{%s} in:\n%s", name, labels ? labels : "", text);
    return v;
}

static int receiver(const rh_daemon *d, const char *chan, int rcvbuf)
{
    int fd = rh_connect(d);
    assert_true(fd >= 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    fy_welcome w;
    assert_int_equal(rh_hello(fd, FY_ROLE_RECEIVER, chan, "", FY_MODE_START, 0, &w), 0);
    return fd;
}

/* Sender: one file of len bytes, waits for the ack, says bye. */
static void send_file(const rh_daemon *d, const char *chan, const uint8_t *data, size_t len)
{
    int fd = rh_connect(d);
    assert_true(fd >= 0);
    fy_welcome w;
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, chan, "", 0, 0, &w), 0);
    uint64_t seq = w.next_seq;
    assert_int_equal(rh_send_file(fd, w.channel, &seq, "f.bin", data, len, 64 << 10), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    rh_send_frame(fd, FY_FT_BYE, w.channel, 0, NULL, 0);
    close(fd);
}

/* The metrics address from the log (bounded wait). */
static void metrics_addr(const rh_daemon *d, char *addr, size_t cap)
{
    addr[0] = 0;
    for (int i = 0; i < 500 && !addr[0]; i++) {
        log_value(d, "metrics=", addr, cap);
        if (!addr[0])
            rh_sleep_ms(10);
    }
    assert_true(addr[0]);
}

/* Status line, then headers; *body points past them (into the returned
 * buffer, malloc'd). */
static char *request(const char *addr, const char *method, const char *path, int *status,
                     char **body)
{
    char req[128];
    snprintf(req, sizeof req, "%s %s HTTP/1.0\r\n\r\n", method, path);
    char *buf = t_http(addr, req, RH_IO_TIMEOUT_S);
    *status = 0;
    sscanf(buf, "HTTP/1.0 %d", status);
    char *b = strstr(buf, "\r\n\r\n");
    assert_non_null(b);
    *body = b + 4;
    return buf;
}

static void test_health(void **state)
{
    rh_daemon *d = *state;
    const char *extra[] = {"--metrics", "127.0.0.1:0", NULL};
    assert_int_equal(rh_start(d, extra), 0);
    char addr[128];
    metrics_addr(d, addr, sizeof addr);
    int st;
    char *body, *buf;

    buf = request(addr, "GET", "/healthz", &st, &body);
    assert_int_equal(st, 200);
    assert_string_equal(body, "ok\n");
    free(buf);
    /* ready: listening (rh_start saw listening=), data writable, running */
    buf = request(addr, "GET", "/readyz", &st, &body);
    assert_int_equal(st, 200);
    free(buf);
    static const char *const paths[] = {"/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < 3; i++) {
        buf = request(addr, "HEAD", paths[i], &st, &body);
        assert_int_equal(st, 200);
        assert_string_equal(body, ""); /* headers only */
        assert_non_null(strstr(buf, "Content-Length: "));
        assert_null(strstr(buf, "Content-Length: 0\r\n"));
        free(buf);
    }
    buf = request(addr, "POST", "/healthz", &st, &body);
    assert_int_equal(st, 405);
    free(buf);

    char *m = scrape(addr);
    char *bi = strstr(m, "\nferry_build_info{version=\"");
    assert_non_null(bi);
    assert_non_null(strstr(bi, "\"} 1\n"));
    assert_null(strstr(m, "version=\"unknown\""));
    free(m);
    assert_int_equal(rh_stop(d, 10000), 0);
}

static void test_metrics_move(void **state)
{
    rh_daemon *d = *state;
    const char *extra[] = {"--metrics", "127.0.0.1:0", NULL};
    assert_int_equal(rh_start(d, extra), 0);
    char addr[128] = "";
    for (int i = 0; i < 500 && !addr[0]; i++) {
        log_value(d, "metrics=", addr, sizeof addr);
        if (!addr[0])
            rh_sleep_ms(10);
    }
    assert_true(addr[0]);

    char *m0 = scrape(addr);
    assert_true(metric(m0, "ferry_up", NULL) == 1);
    double in0 = metric(m0, "ferry_received_bytes_total", NULL);

    int rx = receiver(d, "obs", 0);
    size_t len = 4u << 20;
    uint8_t *data = malloc(len);
    rh_fill(data, len, 7);
    send_file(d, "obs", data, len);
    rh_rx r = {.fd = rx};
    assert_int_equal(rh_rx_until(&r, 1, 0), 0);

    /* A second receiver that joins after the file is stored: sent from disk. */
    int late = receiver(d, "obs", 0);
    rh_rx rl = {.fd = late};
    assert_int_equal(rh_rx_until(&rl, 1, 0), 0);

    char *m1 = scrape(addr);
    assert_true(metric(m1, "ferry_received_bytes_total", NULL) >= in0 + (double)len);
    assert_true(metric(m1, "ferry_received_frames_total", NULL) >= 66);
    assert_true(metric(m1, "ferry_channel_frames_total", "channel=\"obs\"") >= 66);
    assert_true(metric(m1, "ferry_channel_files_total", "channel=\"obs\"") == 1);
    assert_true(metric(m1, "ferry_channel_receivers", "channel=\"obs\"") == 2);
    assert_true(metric(m1, "ferry_sent_bytes_total", "source=\"live\"") >= (double)len);
    assert_true(metric(m1, "ferry_sent_bytes_total", "source=\"disk\"") >= (double)len);
    assert_true(metric(m1, "ferry_receivers", "mode=\"live\"") +
                    metric(m1, "ferry_receivers", "mode=\"catch-up\"") == 2);
    assert_true(metric(m1, "ferry_channel_receiver_max_lag_bytes", "channel=\"obs\"") >= 0);
    assert_true(metric(m1, "ferry_channel_receiver_queued_bytes", "channel=\"obs\"") >= 0);
    assert_true(metric(m1, "ferry_receiver_catchups_total", NULL) >= 0);
    assert_true(metric(m1, "ferry_sent_live_frames_total", NULL) >= 66);
    assert_true(metric(m1, "ferry_bufpool_limit_bytes", NULL) > 0);
    assert_true(metric(m1, "ferry_sched_turns_total", "thread=\"0\"") +
                    metric(m1, "ferry_sched_turns_total", "thread=\"1\"") > 0);
    /* No per-connection label: a series per receiver would never end. */
    assert_null(strstr(m1, "peer=\""));
    assert_null(strstr(m1, "actor=\""));
    rh_rx_free(&rl);
    /* Counters stay monotonic when receivers leave (the writer keeps theirs). */
    rh_sleep_ms(200);
    char *m2 = scrape(addr);
    assert_true(metric(m2, "ferry_sent_bytes_total", "source=\"disk\"") >=
                metric(m1, "ferry_sent_bytes_total", "source=\"disk\""));
    free(m2);
    rh_rx_free(&r);
    close(rx);
    free(m0);
    free(m1);
    free(data);
    assert_int_equal(rh_stop(d, 10000), 0);
}

/* The local address of fd as text (how the relay names that peer). */
static void local_addr(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    fy_addr sa = {.ss = ss, .len = sl};
    fy_addr_format(&sa, out, cap);
}

/* SIGUSR1, then the snapshot's path from the log (bounded wait). */
static void usr1_snapshot(rh_daemon *d, char *path, size_t cap)
{
    assert_int_equal(kill(d->pid, SIGUSR1), 0);
    path[0] = 0;
    for (int i = 0; i < 1000 && !path[0]; i++) {
        log_value(d, " trace=", path, cap);
        if (!path[0])
            rh_sleep_ms(10);
    }
}

/* The forwarder with the largest last lag, or NULL. */
static const fy_trsum_actor *most_lagging_forwarder(const fy_trsum *s)
{
    const fy_trsum_actor *top = NULL;
    for (size_t i = 0; i < s->nact; i++) {
        const fy_trsum_actor *a = &s->act[i];
        if (a->kind == KIND_FORWARDER && a->has_lag &&
            (!top || a->lag_last_bytes > top->lag_last_bytes))
            top = a;
    }
    return top;
}

/* Two receivers; one reads nothing until the sender is done, so its
 * forwarder falls behind its window: SIGUSR1, and the summary must show
 * that receiver's forwarder first among the lagging. */
static void test_usr1_names_slow_receiver(void **state)
{
    rh_daemon *d = *state;
    /* Small kernel send buffers, so the lag is the relay's (not hidden in
     * socket queues), and a flight recorder that holds the whole transfer. */
    const char *extra[] = {"--window", "1M", "--sndbuf", "64K", "--trace-events", "1048576", NULL};
    assert_int_equal(rh_start(d, extra), 0);
    int fast = receiver(d, "slowtest", 0);
    int slow = receiver(d, "slowtest", 0); /* slow: not read until the end */
    char slow_peer[64];
    local_addr(slow, slow_peer, sizeof slow_peer);

    size_t len = 24u << 20;
    uint8_t *data = malloc(len);
    rh_fill(data, len, 9);
    rh_rx rf = {.fd = fast};
    /* the sender runs in a child while this process reads the fast one */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        rh_daemon copy = *d;
        send_file(&copy, "slowtest", data, len);
        _exit(0);
    }
    assert_int_equal(rh_rx_until(&rf, 1, 0), 0);
    int st = 0;
    waitpid(child, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    char path[512] = "";
    usr1_snapshot(d, path, sizeof path);
    assert_true(path[0]);
    assert_non_null(strstr(path, "/trace-"));

    char err[256];
    fy_trfile *f = NULL;
    assert_int_equal(fy_trfile_open(path, 0, &f, err, sizeof err), 0);
    fy_trsum *s = NULL;
    assert_int_equal(fy_trsum_compute(f, &s), 0);
    const fy_trsum_actor *top = most_lagging_forwarder(s);
    assert_non_null(top);
    if (!strstr(top->label, slow_peer))
        fail_msg("most lagging forwarder is '%s', the slow receiver is %s", top->label, slow_peer);
    /* and the printed summary puts it in the first table */
    char *txt = NULL;
    size_t tl = 0;
    FILE *o = open_memstream(&txt, &tl);
    fy_trsum_print(o, path, f, s, 0);
    fclose(o);
    char *lag = strstr(txt, "most lagging receivers");
    char *slowest = strstr(txt, "slowest actors");
    char *at = strstr(lag, slow_peer);
    assert_true(at && at < slowest);
    free(txt);
    fy_trsum_free(s);
    fy_trfile_free(f);

    rh_rx rs = {.fd = slow};
    assert_int_equal(rh_rx_until(&rs, 1, 0), 0); /* it still gets everything */
    rh_rx_free(&rs);
    rh_rx_free(&rf);
    close(fast);
    close(slow);
    free(data);
    assert_int_equal(rh_stop(d, 10000), 0);
}

static void test_trace_file(void **state)
{
    rh_daemon *d = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/live.trace", d->root);
    const char *extra[] = {"--trace", path, "--trace-max-bytes", "256M", NULL};
    assert_int_equal(rh_start(d, extra), 0);
    int rx1 = receiver(d, "traced", 0), rx2 = receiver(d, "traced", 0);
    size_t len = 8u << 20;
    uint8_t *data = malloc(len);
    rh_fill(data, len, 3);
    send_file(d, "traced", data, len);
    rh_rx r1 = {.fd = rx1}, r2 = {.fd = rx2};
    assert_int_equal(rh_rx_until(&r1, 1, 0), 0);
    assert_int_equal(rh_rx_until(&r2, 1, 0), 0);
    rh_rx_free(&r1);
    rh_rx_free(&r2);
    close(rx1);
    close(rx2);
    assert_int_equal(rh_stop(d, 10000), 0); /* the tracer's last drain */

    char err[256];
    fy_trfile *f = NULL;
    assert_int_equal(fy_trfile_open(path, 0, &f, err, sizeof err), 0);
    assert_true(fy_trfile_hdr(f)->flags & 1);
    fy_trsum *s = NULL;
    assert_int_equal(fy_trsum_compute(f, &s), 0);
    uint64_t out = 0, disk = 0;
    bool ses = false, wr = false;
    for (size_t i = 0; i < s->nkind; i++) {
        ses |= s->kind[i].kind == KIND_SESSION && s->kind[i].msgs > 0;
        wr |= s->kind[i].kind == KIND_WRITER && s->kind[i].msgs > 0;
        if (s->kind[i].kind == KIND_FORWARDER)
            out = s->kind[i].bytes[1];
        if (s->kind[i].kind == KIND_WRITER)
            disk = s->kind[i].bytes[2];
    }
    assert_true(ses && wr);
    assert_true(out >= 2 * len); /* both receivers' bytes, headers on top */
    assert_true(disk >= len);
    fy_trsum_free(s);
    fy_trfile_free(f);
    free(data);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_move, rh_setup, rh_teardown),
        cmocka_unit_test_setup_teardown(test_health, rh_setup, rh_teardown),
        cmocka_unit_test_setup_teardown(test_usr1_names_slow_receiver, rh_setup, rh_teardown),
        cmocka_unit_test_setup_teardown(test_trace_file, rh_setup, rh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
