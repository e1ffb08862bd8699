/*
 * test_ops.c - operating the real ferryd: SIGHUP reloads and the drain
 * timeout, on loopback with the relay harness (bounded waits, the daemon
 * stopped by PID).
 *
 *  - SIGHUP with a changed token file: the new token gets in, the removed
 *    one is refused, a receiver connected before keeps receiving, and the
 *    daemon keeps running; a token file that does not parse is refused with
 *    a log line and the old rules stay.
 *  - SIGHUP with a changed log-level in the config file takes effect.
 *  - --drain-timeout: a receiver still reading when it passes gets a bye at
 *    a frame boundary, ferryd exits 0 soon after (not at once, not 5 s
 *    later), and /readyz answers 503 during the drain while /healthz is 200.
 */
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

#include "ferry/err.h"
#include "obs/http_get.h"
#include "relay_harness.h"


/* Replace path's content at once (the harness's tmp + rename). */
static void write_file(const char *path, const char *text)
{
    assert_int_equal(rh_write_file(path, text), 0);
}

/* Wait (bounded, 10 s) until the log has at least n lines containing s. */
static void wait_log(const rh_daemon *d, const char *s, int n)
{
    if (rh_wait_log(d, s, n, 10000) < 0)
        fail_msg("no %d log lines with '%s' after 10 s", n, s);
}

static void assert_running(const rh_daemon *d)
{
    int st;
    assert_true(d->pid > 0);
    assert_int_equal(waitpid(d->pid, &st, WNOHANG), 0);
}

static int hello_as(const rh_daemon *d, uint8_t role, const char *chan, const char *token,
                    int *fd_out)
{
    int fd = rh_connect(d);
    assert_true(fd >= 0);
    fy_welcome w;
    int rc = rh_hello(fd, role, chan, token, FY_MODE_START, 0, &w);
    if (fd_out && rc == 0)
        *fd_out = fd;
    else
        close(fd);
    return rc;
}

/* Sender with a token: one file, waits for the ack, says bye. */
static void send_file(const rh_daemon *d, const char *chan, const char *token,
                      const uint8_t *data, size_t len)
{
    int fd = rh_connect(d);
    assert_true(fd >= 0);
    fy_welcome w;
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, chan, token, 0, 0, &w), 0);
    uint64_t seq = w.next_seq;
    assert_int_equal(rh_send_file(fd, w.channel, &seq, "f.bin", data, len, 64 << 10), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    rh_send_frame(fd, FY_FT_BYE, w.channel, 0, NULL, 0);
    close(fd);
}

static void test_sighup_tokens(void **state)
{
    rh_daemon *d = *state;
    char tokens[400];
    snprintf(tokens, sizeof tokens, "%s/tokens", d->root);
    write_file(tokens, "old-token both *\n");
    const char *extra[] = {"--auth", tokens, NULL};
    assert_int_equal(rh_start(d, extra), 0);

    /* A receiver admitted by the old rules, connected across the reload. */
    int rx = -1;
    assert_int_equal(hello_as(d, FY_ROLE_RECEIVER, "hup", "old-token", &rx), 0);
    assert_int_equal(hello_as(d, FY_ROLE_SENDER, "hup", "new-token", NULL), -FY_EAUTH);

    write_file(tokens, "new-token both *\n");
    assert_int_equal(kill(d->pid, SIGHUP), 0);
    wait_log(d, "msg=\"reload done\"", 1);
    assert_running(d);
    assert_int_equal(rh_log_count(d, "auth_rules=1->1"), 1);

    assert_int_equal(hello_as(d, FY_ROLE_SENDER, "hup", "old-token", NULL), -FY_EAUTH);
    size_t len = 300000;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    rh_fill(data, len, 11);
    send_file(d, "hup", "new-token", data, len);
    rh_rx r = {.fd = rx};
    assert_int_equal(rh_rx_until(&r, 1, 0), 0); /* the old connection goes on */
    assert_true(r.files[0].digest_ok && r.files[0].len == len);

    /* A file that does not parse: refused, logged, the rules stay. */
    write_file(tokens, "new-token both *\nthis is not a rule at all\n");
    assert_int_equal(kill(d->pid, SIGHUP), 0);
    wait_log(d, "msg=\"reload refused\"", 1);
    assert_int_equal(rh_log_count(d, "tokens:2: expected"), 1);
    assert_running(d);
    assert_int_equal(hello_as(d, FY_ROLE_RECEIVER, "hup", "new-token", NULL), 0);
    assert_int_equal(hello_as(d, FY_ROLE_RECEIVER, "hup", "old-token", NULL), -FY_EAUTH);

    /* Two more rules: the count moves. */
    write_file(tokens, "new-token both *\nthird publish a-*\nfourth subscribe b-*\n");
    assert_int_equal(kill(d->pid, SIGHUP), 0);
    wait_log(d, "auth_rules=1->3", 1);
    assert_int_equal(hello_as(d, FY_ROLE_SENDER, "a-1", "third", NULL), 0);
    assert_int_equal(hello_as(d, FY_ROLE_SENDER, "b-1", "third", NULL), -FY_EAUTH);

    rh_rx_free(&r);
    free(data);
    int st = rh_stop(d, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_sighup_log_level(void **state)
{
    rh_daemon *d = *state;
    char conf[400];
    snprintf(conf, sizeof conf, "%s/ferryd.conf", d->root);
    write_file(conf, "log-level = warn\n");
    const char *extra[] = {"--config", conf, NULL};
    assert_int_equal(rh_start(d, extra), 0);
    assert_int_equal(hello_as(d, FY_ROLE_RECEIVER, "lvl", "", NULL), 0);
    rh_sleep_ms(100);
    assert_int_equal(rh_log_count(d, "msg=\"hello\""), 0); /* info: below warn */

    /* And a key that needs a restart: logged, kept. */
    write_file(conf, "log-level = info\nwindow = 16M\n");
    assert_int_equal(kill(d->pid, SIGHUP), 0);
    wait_log(d, "msg=\"reload done\"", 1);
    assert_int_equal(rh_log_count(d, "log-level=warn->info"), 1);
    assert_int_equal(rh_log_count(d, "msg=\"reload: setting needs a restart, kept\" key=window"),
                     1);
    assert_int_equal(hello_as(d, FY_ROLE_RECEIVER, "lvl", "", NULL), 0);
    wait_log(d, "msg=\"hello\"", 1);

    /* Back to warn: the change itself is still logged. */
    write_file(conf, "log-level = warn\n");
    assert_int_equal(kill(d->pid, SIGHUP), 0);
    wait_log(d, "log-level=info->warn", 1);
    assert_int_equal(hello_as(d, FY_ROLE_RECEIVER, "lvl", "", NULL), 0);
    rh_sleep_ms(100);
    assert_int_equal(rh_log_count(d, "msg=\"hello\""), 1);
    assert_running(d);
    int st = rh_stop(d, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static double now_s(void)
{
    return rh_now_s();
}

/* HTTP status of GET path on the metrics address. */
static int http_status(const rh_daemon *d, const char *path, char *body, size_t cap)
{
    char addr[64], req[128];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", d->metrics_port);
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    char *buf = t_http(addr, req, 5);
    int st = 0;
    sscanf(buf, "HTTP/1.0 %d", &st);
    char *b = strstr(buf, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    free(buf);
    return st;
}

/* A receiver of chan from the start, with a 64 KiB receive buffer. */
static int small_receiver(rh_daemon *d, const char *chan, fy_welcome *w)
{
    int fd = rh_connect(d);
    assert_true(fd >= 0);
    int rcvbuf = 64 << 10;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    assert_int_equal(rh_hello(fd, FY_ROLE_RECEIVER, chan, "", FY_MODE_START, 0, w), 0);
    return fd;
}

/* Watch (at most 5 s) for ferryd to exit by itself: true with its wait
 * status and the time it was seen gone. */
static bool wait_exit(rh_daemon *d, int *st, double *t_exit)
{
    for (int i = 0; i < 500; i++) {
        if (waitpid(d->pid, st, WNOHANG) == d->pid) {
            *t_exit = now_s();
            d->pid = -1;
            return true;
        }
        rh_sleep_ms(10);
    }
    return false;
}

/* A receiver catching up from disk, slowly, while ferryd drains with
 * --drain-timeout 1: it must get a bye at a frame boundary (every frame
 * before it whole and in order), and ferryd must exit about a second
 * after SIGTERM (the timeout, plus at most the second the cut has). */
static void test_drain_timeout(void **state)
{
    rh_daemon *d = *state;
    const char *extra[] = {"--drain-timeout", "1", "--sndbuf", "64K", "--metrics", "127.0.0.1:0",
                           NULL};
    assert_int_equal(rh_start(d, extra), 0);
    assert_true(d->metrics_port > 0);
    char body[512];
    assert_int_equal(http_status(d, "/readyz", body, sizeof body), 200);

    size_t len = 48u << 20;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    rh_fill(data, len, 5);
    send_file(d, "drain", "", data, len);

    fy_welcome w;
    int fd = small_receiver(d, "drain", &w);

    uint64_t next = w.next_seq, got = 0;
    bool bye = false, exited = false, checked = false;
    double t0 = 0, t_exit = 0;
    int st = -1;
    for (long i = 0; i < 100000 && !bye; i++) {
        rh_frame f;
        int rc = rh_read_frame(fd, &f);
        if (rc < 0)
            fail_msg("receiver read failed (%d) after %llu bytes, before any bye", rc,
                     (unsigned long long)got);
        if (f.hdr.type == FY_FT_BYE) {
            bye = true;
        } else if (fy_frame_is_stream(f.hdr.type)) {
            if (f.hdr.seq != next)
                fail_msg("seq %llu, expected %llu", (unsigned long long)f.hdr.seq,
                         (unsigned long long)next);
            next++;
            got += f.hdr.len;
        } else {
            fail_msg("unexpected frame type %u", f.hdr.type);
        }
        rh_frame_free(&f);
        if (!t0 && got >= (1u << 20)) {
            assert_int_equal(kill(d->pid, SIGTERM), 0);
            t0 = now_s();
        }
        if (t0 && !checked && now_s() - t0 > 0.3) {
            /* draining: alive, not ready */
            checked = true;
            assert_int_equal(http_status(d, "/readyz", body, sizeof body), 503);
            assert_non_null(strstr(body, "shutting down"));
            assert_int_equal(http_status(d, "/healthz", body, sizeof body), 200);
        }
        rh_sleep_ms(10); /* ~6 MB/s: 48 MiB would take 8 s */
    }
    assert_true(bye);
    assert_true(checked);
    assert_true(got < len); /* it was cut, not finished */
    /* After the bye: the relay closes; then it exits. */
    exited = wait_exit(d, &st, &t_exit);
    assert_true(exited);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    double took = t_exit - t0;
    if (took < 0.9 || took > 3.5)
        fail_msg("ferryd exited %.2f s after SIGTERM; --drain-timeout 1 wants 1..2 s", took);
    assert_int_equal(rh_log_count(d, "msg=\"drain timeout\""), 1);
    assert_int_equal(rh_log_count(d, "msg=\"drain timeout: receiver cut\""), 1);
    rh_frame f;
    assert_true(rh_read_frame(fd, &f) < 0); /* closed after the bye */
    close(fd);
    free(data);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sighup_tokens, rh_setup, rh_teardown),
        cmocka_unit_test_setup_teardown(test_sighup_log_level, rh_setup, rh_teardown),
        cmocka_unit_test_setup_teardown(test_drain_timeout, rh_setup, rh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
