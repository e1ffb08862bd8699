/*
 * test_swarm_run.c - ferry-swarm end to end: the real binary, real
 * sockets on loopback.  p2p runs need nothing else; with FERRYD_BIN the
 * group also starts a real ferryd on 127.0.0.1:0 with a temporary data
 * directory (through tests/common) and runs bulk, rate, storm and churn
 * against it.  Every process started here is stopped by its PID (group teardown, also after
 * a failure; PR_SET_PDEATHSIG if this test itself dies).  No timing
 * assertions: only exit status, integrity and the key=value contract.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tc.h"

#ifndef FERRY_SWARM_BIN
#error "FERRY_SWARM_BIN must name the ferry-swarm binary"
#endif

#define OUT_CAP (64 * 1024)

struct relay {
    tc_daemon d;
    char dir[64];
};

/* Wait for pid at most timeout_ms; kill it if it overstays.  Exit status,
 * or -1 when it was killed or died of a signal. */
static int wait_bounded(pid_t pid, int timeout_ms)
{
    int st = 0;
    if (tc_wait(pid, timeout_ms, &st) < 0) {
        fprintf(stderr, "pid %d overstayed %d ms: killed\n", (int)pid, timeout_ms);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t spawn(char *const argv[], int out_fd, int err_fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (out_fd >= 0)
            dup2(out_fd, 1);
        if (err_fd >= 0)
            dup2(err_fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Run ferry-swarm with args (NULL-terminated); its stdout into out. */
static int swarm(char *out, const char *first, ...)
{
    char *argv[48] = {FERRY_SWARM_BIN};
    int n = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 46; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    pid_t pid = spawn(argv, fileno(tmp), -1);
    assert_true(pid > 0);
    int rc = wait_bounded(pid, 60000);
    rewind(tmp);
    size_t got = fread(out, 1, OUT_CAP - 1, tmp);
    out[got] = '\0';
    fclose(tmp);
    fputs(out, stdout);
    return rc;
}

/* The last line of out (the key=value line). */
static const char *last_line(const char *out)
{
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '\n')
        n--;
    while (n > 0 && out[n - 1] != '\n')
        n--;
    return out + n;
}

/* Value of key in a key=value line, copied into v; false if absent. */
static bool kv(const char *line, const char *key, char *v, size_t cap)
{
    size_t k = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += k) {
        if ((p == line || p[-1] == ' ') && p[k] == '=') {
            size_t i = 0;
            for (p += k + 1; *p && *p != ' ' && *p != '\n' && i + 1 < cap; p++)
                v[i++] = *p;
            v[i] = '\0';
            return true;
        }
    }
    return false;
}

static void expect(const char *line, const char *key, const char *want)
{
    char v[128];
    if (!kv(line, key, v, sizeof v))
        fail_msg("key %s missing from: %s", key, line);
    if (want && strcmp(v, want) != 0)
        fail_msg("%s=%s, expected %s", key, v, want);
}

static void expect_contract(const char *line)
{
    static const char *const keys[] = {"mode", "target", "senders", "channels", "receivers",
                                       "bytes", "seconds", "mbps_aggregate",
                                       "mbps_per_receiver", "msgs_per_s", "integrity_failures"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        expect(line, keys[i], NULL);
    expect(line, "integrity_failures", "0");
}

/* ---- p2p --------------------------------------------------------------------- */

static void test_help(void **state)
{
    (void)state;
    static char out[OUT_CAP];
    assert_int_equal(swarm(out, "--help", NULL), 0);
    assert_non_null(strstr(out, "--mode"));
    assert_int_equal(swarm(out, "--mode", "nonsense", NULL), 64); /* FY_EXIT_USAGE */
    assert_int_equal(swarm(out, "--chunk", "0", NULL), 64);       /* fy_swarm_cfg_check */
    assert_int_equal(swarm(out, "--packet", "0", NULL), 64);      /* old name, same flag */
    assert_int_equal(swarm(out, "--help", NULL), 0);
    assert_non_null(strstr(out, "--server"));
    assert_non_null(strstr(out, "--msg-rate"));
    assert_non_null(strstr(out, "--connect-timeout"));
}

static void test_p2p_bulk(void **state)
{
    (void)state;
    static char out[OUT_CAP];
    int rc = swarm(out, "--server", "p2p", "--senders", "2", "--receivers", "3", "--size", "4M",
                   "--timeout", "30", NULL);
    assert_int_equal(rc, 0);
    const char *l = last_line(out);
    expect_contract(l);
    expect(l, "mode", "bulk");
    expect(l, "target", "p2p");
    expect(l, "senders", "2");
    expect(l, "channels", "2");
    expect(l, "receivers", "3");
    expect(l, "bytes", "25165824"); /* 2 channels x 3 receivers x 4 MiB */
}

static void test_p2p_rate_and_slow(void **state)
{
    (void)state;
    static char out[OUT_CAP];
    int rc = swarm(out, "--server", "p2p", "--mode", "rate", "--msg-rate", "4000", "--duration",
                   "0.5", "--chunk", "1K", "--receivers", "2", "--timeout", "30", NULL);
    assert_int_equal(rc, 0);
    const char *l = last_line(out);
    expect_contract(l);
    expect(l, "latency_samples", "4000"); /* 2000 frames x 2 receivers */
    expect(l, "p50_us", NULL);
    expect(l, "p99_us", NULL);
    expect(l, "p999_us", NULL);
    expect(l, "max_us", NULL);

    rc = swarm(out, "--server", "p2p", "--mode", "slow", "--receivers", "3", "--slow", "1",
               "--slow-rate", "16M", "--size", "2M", "--chunk", "16K", "--files", "2",
               "--verify", "content", "--timeout", "30", NULL);
    assert_int_equal(rc, 0);
    l = last_line(out);
    expect_contract(l);
    expect(l, "fast_seconds", NULL);
    expect(l, "slow_seconds", NULL);
}

/* ---- a real ferryd ------------------------------------------------------------- */

#ifdef FERRYD_BIN
static void relay_stop(struct relay *r)
{
    int st = 0;
    if (r->d.pid > 0) {
        int rc = tc_daemon_stop(&r->d, 5000, &st);
        if (rc < 0 || !WIFEXITED(st))
            fprintf(stderr, "ferryd did not exit cleanly\n");
    }
    if (r->dir[0])
        tc_rmtree(r->dir);
}

static int relay_setup(void **state)
{
    struct relay *r = calloc(1, sizeof *r);
    assert_non_null(r);
    *state = r;
    if (tc_tmpdir(r->dir, sizeof r->dir, "swarm-test") < 0)
        return -1;
    char data[96], log[96];
    snprintf(data, sizeof data, "%s/data", r->dir);
    snprintf(log, sizeof log, "%s/ferryd.log", r->dir);
    /* at most 10 s for its listening= line */
    if (tc_daemon_start(&r->d, FERRYD_BIN, data, log, NULL, 10000) < 0) {
        fprintf(stderr, "ferryd did not report listening= (log %s)\n", log);
        return -1;
    }
    return 0;
}

static int relay_teardown(void **state)
{
    struct relay *r = *state;
    relay_stop(r);
    free(r);
    return 0;
}

static void test_relay_bulk(void **state)
{
    struct relay *r = *state;
    static char out[OUT_CAP];
    int rc = swarm(out, "--server", r->d.addr, "--senders", "2", "--receivers", "3", "--size",
                   "4M", "--timeout", "40", NULL);
    assert_int_equal(rc, 0);
    const char *l = last_line(out);
    expect_contract(l);
    expect(l, "bytes", "25165824");
}

static void test_relay_rate(void **state)
{
    struct relay *r = *state;
    static char out[OUT_CAP];
    /* the old spellings (--target, --rate, --packet) still work */
    int rc = swarm(out, "--target", r->d.addr, "--mode", "rate", "--rate", "2000", "--duration",
                   "1", "--packet", "1K", "--receivers", "2", "--timeout", "40", NULL);
    assert_int_equal(rc, 0);
    const char *l = last_line(out);
    expect_contract(l);
    expect(l, "p99_us", NULL);
    expect(l, "latency_samples", "4000");
}

static void test_relay_storm(void **state)
{
    struct relay *r = *state;
    static char out[OUT_CAP];
    int rc = swarm(out, "--server", r->d.addr, "--mode", "storm", "--connections", "200",
                   "--connect-timeout", "5", "--timeout", "40", NULL);
    assert_int_equal(rc, 0);
    const char *l = last_line(out);
    expect(l, "storm", "200");
    expect(l, "served", "200");
    /* --window: the old name of --connect-timeout */
    rc = swarm(out, "--server", r->d.addr, "--mode", "storm", "--connections", "50", "--window",
               "5", "--timeout", "40", NULL);
    assert_int_equal(rc, 0);
    l = last_line(out);
    expect(l, "served", "50");
}

static void test_relay_churn(void **state)
{
    struct relay *r = *state;
    static char out[OUT_CAP];
    int rc = swarm(out, "--server", r->d.addr, "--mode", "churn", "--receivers", "3", "--size",
                   "8M", "--chunk", "16K", "--timeout", "40", NULL);
    assert_int_equal(rc, 0);
    const char *l = last_line(out);
    expect_contract(l);
    expect(l, "reconnects", "3");
}
#endif

int main(void)
{
    const struct CMUnitTest p2p[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_p2p_bulk),
        cmocka_unit_test(test_p2p_rate_and_slow),
    };
    int failed = cmocka_run_group_tests_name("p2p", p2p, NULL, NULL);
#ifdef FERRYD_BIN
    const struct CMUnitTest relay[] = {
        cmocka_unit_test(test_relay_bulk),
        cmocka_unit_test(test_relay_rate),
        cmocka_unit_test(test_relay_storm),
        cmocka_unit_test(test_relay_churn),
    };
    failed += cmocka_run_group_tests_name("ferryd", relay, relay_setup, relay_teardown);
#endif
    return failed;
}
