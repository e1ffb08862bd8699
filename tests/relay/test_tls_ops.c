/*
 * test_tls_ops.c - operating a TLS listener with the real ferryd
 * (FERRYD_PATH) and client (FERRY_PATH) on loopback:
 *
 *   - the certificate and key swapped under SIGHUP: a receiver connected
 *     with the old certificate carries on and gets the file; a client that
 *     pins the old certificate is refused (exit 6); one that pins the new
 *     one gets in; the log names the new certificate's SHA-256.  Then a
 *     certificate file that does not load: refused, logged, the pair in
 *     force stays.  `openssl s_client` checks the served certificate too.
 *   - 500 failed handshakes: the `TLS handshake failed` lines stay within
 *     the rate bound (relay/tlsfail.h), the suppressed=K counts add up, and
 *     ferry_tls_handshake_failures_total in /metrics counts all 500.
 *
 * Certificates are self-signed (SAN IP:127.0.0.1), made with the `openssl`
 * command (Debian package openssl) in the test's temp directory; each
 * serves as its own CA for the client's --ca.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/tc.h"
#include "ferry/sock.h"
#include "obs/http_get.h"

#define WAIT_MS 30000

struct fx {
    char dir[64];
    tc_daemon d;
    pid_t recv;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f || tc_tmpdir(f->dir, sizeof f->dir, "test-tls-ops") < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (f->recv > 0)
        tc_stop(f->recv, 5000, NULL);
    tc_daemon_stop(&f->d, 10000, NULL);
    int rc = tc_tmpdir_done(f->dir);
    free(f);
    return rc;
}

/* sh -c cmd in dir; asserts exit 0. */
static void sh(const char *dir, const char *cmd)
{
    char full[4096];
    snprintf(full, sizeof full, "cd '%s' && (%s) >>openssl.log 2>&1", dir, cmd);
    int rc = system(full);
    if (rc != 0)
        fail_msg("'%s' failed (%d): is the Debian package openssl installed (.ci/deps)?", cmd, rc);
}

/* A self-signed certificate NAME.pem with key NAME.key for 127.0.0.1. */
static void make_cert(const char *dir, const char *name)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout %s.key -out %s.pem -days 2 -subj /CN=%s "
             "-addext subjectAltName=IP:127.0.0.1", name, name, name);
    sh(dir, cmd);
}

/* NAME.pem's SHA-256 fingerprint as ferryd logs it: lower-case hex. */
static void fingerprint(const char *dir, const char *name, char *out, size_t cap)
{
    char cmd[512], path[128], line[256];
    snprintf(path, sizeof path, "%s/%s.fp", dir, name);
    snprintf(cmd, sizeof cmd, "openssl x509 -noout -fingerprint -sha256 -in %s.pem > %s.fp",
             name, name);
    sh(dir, cmd);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    size_t n = 0;
    for (const char *p = strchr(line, '=') + 1; *p && *p != '\n' && n + 1 < cap; p++)
        if (*p != ':')
            out[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    out[n] = 0;
}

/* How many lines of path contain needle. */
static unsigned grep_count(const char *path, const char *needle)
{
    char line[4096];
    unsigned n = 0;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    while (fgets(line, sizeof line, fp))
        n += strstr(line, needle) != NULL;
    fclose(fp);
    return n;
}

/* Wait (bounded) until path has at least want lines with needle. */
static void wait_lines(const char *path, const char *needle, unsigned want)
{
    for (int i = 0; i < WAIT_MS / 20 && grep_count(path, needle) < want; i++)
        tc_sleep_ms(20);
    if (grep_count(path, needle) < want)
        fail_msg("%s: no %u lines with '%s'", path, want, needle);
}

/* ferry send --ca CA FILE to channel; its exit code. */
static int send_with(struct fx *f, const char *ca, const char *channel, const char *file)
{
    char log[128];
    int st = 0;
    snprintf(log, sizeof log, "%s/send.log", f->dir);
    const char *argv[] = {FERRY_PATH, "send", "--server", f->d.addr, "--ca", ca, "--no-retry",
                          "--channel", channel, file, NULL};
    pid_t pid = tc_spawn(argv, NULL, NULL, log, true);
    assert_true(pid > 0);
    assert_int_equal(tc_wait(pid, WAIT_MS, &st), 0);
    return tc_exit_code(st);
}

static void copy_pair(const char *dir, const char *from)
{
    char cmd[512];
    /* rename: the relay never reads a half-written file */
    snprintf(cmd, sizeof cmd, "cp %s.pem tmp.pem && cp %s.key tmp.key && mv tmp.key relay.key "
             "&& mv tmp.pem relay.pem", from, from);
    sh(dir, cmd);
}

static void test_cert_swapped_under_sighup(void **state)
{
    struct fx *f = *state;
    char data[128], log[128], file[128], out[128], a_pem[128], b_pem[128], cert[128], key[128];
    char fp[128], needle[200], cmd[512];
    snprintf(data, sizeof data, "%s/data", f->dir);
    snprintf(log, sizeof log, "%s/ferryd.log", f->dir);
    snprintf(file, sizeof file, "%s/payload.bin", f->dir);
    snprintf(out, sizeof out, "%s/out", f->dir);
    snprintf(a_pem, sizeof a_pem, "%s/a.pem", f->dir);
    snprintf(b_pem, sizeof b_pem, "%s/b.pem", f->dir);
    snprintf(cert, sizeof cert, "%s/relay.pem", f->dir);
    snprintf(key, sizeof key, "%s/relay.key", f->dir);
    make_cert(f->dir, "a");
    make_cert(f->dir, "b");
    copy_pair(f->dir, "a");
    assert_int_equal(tc_make_file(file, 300 * 1024, 7, NULL), 0);

    const char *extra[] = {"--threads", "2", "--tls-cert", cert, "--tls-key", key,
                           "--log-level", "debug", NULL};
    assert_int_equal(tc_daemon_start(&f->d, FERRYD_PATH, data, log, extra, WAIT_MS), 0);

    /* A receiver on a connection made with certificate a, waiting. */
    char rlog[128];
    snprintf(rlog, sizeof rlog, "%s/recv.log", f->dir);
    const char *rargv[] = {FERRY_PATH, "recv", "--server", f->d.addr, "--ca", a_pem,
                           "--channel", "swap", "--out", out, "--count", "1", NULL};
    f->recv = tc_spawn(rargv, NULL, NULL, rlog, false);
    assert_true(f->recv > 0);
    wait_lines(log, "msg=\"TLS established\"", 1);
    wait_lines(log, "msg=\"receiver waits for its channel\"", 1); /* none yet: parked */

    copy_pair(f->dir, "b");
    assert_int_equal(kill(f->d.pid, SIGHUP), 0);
    fingerprint(f->dir, "b", fp, sizeof fp);
    snprintf(needle, sizeof needle, "msg=\"reload: TLS certificate\" sha256=%s", fp);
    wait_lines(log, needle, 1);

    /* The certificate served now, as openssl s_client sees it, is b. */
    snprintf(cmd, sizeof cmd, "timeout 20 openssl s_client -connect %s </dev/null 2>/dev/null | "
             "openssl x509 -noout -fingerprint -sha256 > served.fp && cmp served.fp b.fp",
             f->d.addr);
    sh(f->dir, cmd);
    assert_int_equal(send_with(f, a_pem, "other", file), 6); /* pins the old certificate */
    assert_int_equal(send_with(f, b_pem, "swap", file), 0);  /* the new one */
    int st = 0;
    assert_int_equal(tc_wait(f->recv, WAIT_MS, &st), 0);
    f->recv = 0;
    assert_int_equal(tc_exit_code(st), 0); /* the old connection carried on */
    snprintf(cmd, sizeof cmd, "cmp payload.bin out/payload.bin");
    sh(f->dir, cmd);

    /* A certificate file that does not load: refused, the pair b stays. */
    sh(f->dir, "echo 'not a certificate' > tmp.pem && mv tmp.pem relay.pem");
    assert_int_equal(kill(f->d.pid, SIGHUP), 0);
    wait_lines(log, "msg=\"reload: TLS certificate refused\"", 1);
    assert_int_equal(grep_count(log, "action=\"keep the old certificate and key\""), 1);
    assert_int_equal(send_with(f, b_pem, "after", file), 0);
    assert_int_equal(tc_daemon_stop(&f->d, WAIT_MS, &st), 0); /* still running: SIGTERM */
    assert_int_equal(tc_exit_code(st), 0); /* (and a sanitizer found nothing) */
}

/* One connection that opens a handshake with a record OpenSSL refuses. */
static void bad_handshake(const fy_addr *a)
{
    static const unsigned char junk[] = {0x16, 0x03, 0x01, 0x00, 0x08, 'n', 'o', 't', 'a',
                                         'h', 'e', 'l', 'o'};
    int fd = fy_sock_connect(a, 5000);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    shutdown(fd, SHUT_WR);
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
}

/* The sum of suppressed=K over the log's lines with msg. */
static uint64_t suppressed_sum(const char *path, const char *msg)
{
    char line[4096];
    uint64_t sum = 0;
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp)) {
        const char *s = strstr(line, msg) ? strstr(line, "suppressed=") : NULL;
        if (s)
            sum += strtoull(s + strlen("suppressed="), NULL, 10);
    }
    fclose(fp);
    return sum;
}

static void test_failed_handshakes_logged_at_a_bounded_rate(void **state)
{
    struct fx *f = *state;
    char data[128], log[128], cert[128], key[128], metrics_addr[64];
    snprintf(data, sizeof data, "%s/data", f->dir);
    snprintf(log, sizeof log, "%s/ferryd.log", f->dir);
    snprintf(cert, sizeof cert, "%s/relay.pem", f->dir);
    snprintf(key, sizeof key, "%s/relay.key", f->dir);
    make_cert(f->dir, "relay");
    const char *extra[] = {"--threads", "2", "--tls-cert", cert, "--tls-key", key, "--metrics",
                           "127.0.0.1:0", NULL};
    assert_int_equal(tc_daemon_start(&f->d, FERRYD_PATH, data, log, extra, WAIT_MS), 0);
    fy_addr a;
    assert_int_equal(fy_addr_parse(f->d.addr, NULL, &a), 0);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 500; i++)
        bad_handshake(&a);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    snprintf(metrics_addr, sizeof metrics_addr, "127.0.0.1:%u", f->d.metrics_port);
    char *body = NULL;
    for (int i = 0; i < 100; i++) { /* the last sessions may still be closing */
        free(body);
        body = t_http(metrics_addr, "GET /metrics HTTP/1.0\r\n\r\n", 10);
        if (strstr(body, "\nferry_tls_handshake_failures_total 500\n"))
            break;
        tc_sleep_ms(50);
    }
    bool counted = strstr(body, "\nferry_tls_handshake_failures_total 500\n") != NULL;
    free(body);
    assert_true(counted);
    unsigned lines = grep_count(log, "msg=\"TLS handshake failed\"");
    /* What the burst left unlogged is said within a second or two after. */
    wait_lines(log, "msg=\"TLS handshake failures not logged\"", 1);
    uint64_t supp = suppressed_sum(log, "msg=\"TLS handshake failed\"");
    uint64_t later = suppressed_sum(log, "msg=\"TLS handshake failures not logged\"");
    print_message("500 bad handshakes in %.2f s: %u log lines, suppressed=%llu on them, "
                  "%llu after\n", secs, lines, (unsigned long long)supp,
                  (unsigned long long)later);
    /* 10 a second (FY_TLSFAIL_LINES), over the seconds the run touched. */
    assert_true(lines >= 1);
    assert_true(lines <= 10u * (unsigned)(secs + 2));
    /* Every failure is told once: logged, or counted in a suppressed=K. */
    assert_int_equal(lines + supp + later, 500);
    int st = 0;
    assert_int_equal(tc_daemon_stop(&f->d, WAIT_MS, &st), 0);
    assert_int_equal(tc_exit_code(st), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cert_swapped_under_sighup),
        T(test_failed_handshakes_logged_at_a_bounded_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
