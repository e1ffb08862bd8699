/*
 * test_notify.c - the sd_notify datagram (src/relay/notify.c) and ferryd's
 * use of it: a unix datagram socket stands in for systemd, NOTIFY_SOCKET
 * names it, and the test reads what arrives.
 *
 * The last test runs the real ferryd (FERRYD_PATH) on 127.0.0.1:0 and
 * checks READY=1 comes once it listens and STOPPING=1 once SIGTERM starts
 * the shutdown (started and stopped through tests/common); the watchdog
 * test runs it with WATCHDOG_USEC set and checks WATCHDOG=1 comes while the
 * schedulers run and stops while the test hook stalls them.  Sockets and
 * data live in a temp directory (tc_tmpdir) that each test removes again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/tc.h"
#include "relay/notify.h"

#define WAIT_MS 20000 /* generous: sanitizer builds start ferryd slowly */

/* ---- fixture: a temporary directory and a bound datagram socket ---------------- */

struct tmp {
    char dir[64];
    char sock[128];
    int fd;
    tc_daemon d; /* ferryd, when a test started it */
};

static int tmp_setup(void **state)
{
    struct tmp *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->fd = -1;
    if (tc_tmpdir(t->dir, sizeof t->dir, "test-notify") < 0) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    if (t->fd >= 0)
        close(t->fd);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("FERRY_TEST_WATCHDOG_STALL_MS");
    tc_daemon_stop(&t->d, 10000, NULL);
    int rc = tc_rmtree(t->dir);
    free(t);
    return rc;
}

/* Bind a datagram socket at NAME (a path, or '@name' for the abstract
 * namespace) and point NOTIFY_SOCKET at it. */
static void listen_at(struct tmp *t, const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;
    size_t n = strlen(name);
    assert_true(n < sizeof sa.sun_path);
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@') {
        sa.sun_path[0] = 0;
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    t->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(t->fd >= 0);
    assert_int_equal(bind(t->fd, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
}

/* The next datagram, NUL-terminated, within ms; asserts one arrives. */
static void next_msg(int fd, char *buf, size_t cap, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, ms), 1);
    ssize_t n = recv(fd, buf, cap - 1, 0);
    assert_true(n >= 0);
    buf[n] = 0;
}

/* ---- the datagram ------------------------------------------------------------- */

static void test_unset_is_a_no_op(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(fy_notify_send("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(fy_notify_send("READY=1"), 0);
}

static void test_path_socket(void **state)
{
    struct tmp *t = *state;
    char buf[256];
    snprintf(t->sock, sizeof t->sock, "%s/notify", t->dir);
    listen_at(t, t->sock);
    assert_int_equal(fy_notify_send("READY=1\nSTATUS=listening on 127.0.0.1:7420"), 1);
    next_msg(t->fd, buf, sizeof buf, 1000);
    assert_string_equal(buf, "READY=1\nSTATUS=listening on 127.0.0.1:7420");
    assert_int_equal(fy_notify_send("STOPPING=1"), 1);
    next_msg(t->fd, buf, sizeof buf, 1000);
    assert_string_equal(buf, "STOPPING=1");
}

static void test_abstract_socket(void **state)
{
    struct tmp *t = *state;
    char buf[256];
    snprintf(t->sock, sizeof t->sock, "@ferry-test-notify-%ld", (long)getpid());
    listen_at(t, t->sock);
    assert_int_equal(fy_notify_send("READY=1"), 1);
    next_msg(t->fd, buf, sizeof buf, 1000);
    assert_string_equal(buf, "READY=1");
}

static void test_bad_addresses(void **state)
{
    struct tmp *t = *state;
    char longer[200];
    memset(longer, 'x', sizeof longer - 1);
    longer[0] = '/';
    longer[sizeof longer - 1] = 0;

    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(fy_notify_send("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", "@", 1);
    assert_int_equal(fy_notify_send("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", longer, 1);
    assert_int_equal(fy_notify_send("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    assert_int_equal(fy_notify_send("READY=1"), -EAFNOSUPPORT);
    /* A path nobody bound. */
    snprintf(t->sock, sizeof t->sock, "%s/nobody", t->dir);
    setenv("NOTIFY_SOCKET", t->sock, 1);
    assert_int_equal(fy_notify_send("READY=1"), -ENOENT);
}

/* ---- ferryd ------------------------------------------------------------------- */

static void test_ferryd_ready_and_stopping(void **state)
{
    struct tmp *t = *state;
    char buf[512], data[128], log[128];
    snprintf(t->sock, sizeof t->sock, "%s/notify", t->dir);
    snprintf(data, sizeof data, "%s/data", t->dir);
    snprintf(log, sizeof log, "%s/ferryd.log", t->dir);
    listen_at(t, t->sock);

    const char *extra[] = {"--threads", "1", "--log-level", "error", NULL};
    assert_int_equal(tc_daemon_start(&t->d, FERRYD_PATH, data, log, extra, WAIT_MS), 0);
    pid_t pid = t->d.pid;
    next_msg(t->fd, buf, sizeof buf, WAIT_MS);
    const char ready[] = "READY=1\nSTATUS=listening on 127.0.0.1:";
    if (strncmp(buf, ready, sizeof ready - 1) != 0) {
        tc_daemon_kill9(&t->d);
        fail_msg("first notice: '%s'", buf);
    }
    assert_int_equal(kill(pid, SIGTERM), 0);
    next_msg(t->fd, buf, sizeof buf, WAIT_MS);
    assert_string_equal(buf, "STOPPING=1\nSTATUS=draining");
    int st = 0;
    assert_int_equal(tc_wait(pid, WAIT_MS, &st), 0);
    t->d.pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* How many datagrams equal to want arrive within ms (others are ignored). */
static unsigned count_msgs(int fd, const char *want, int ms)
{
    uint64_t end = (uint64_t)now_ms() + (uint64_t)ms;
    unsigned n = 0;
    for (;;) {
        int64_t left = (int64_t)(end - (uint64_t)now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            return n;
        char buf[256];
        ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
        if (r < 0)
            return n;
        buf[r] = 0;
        n += strcmp(buf, want) == 0;
    }
}

/* WATCHDOG_USEC 200 ms: WATCHDOG=1 every 50 ms while the schedulers run;
 * none while every scheduler thread is stalled (2 s, the test hook); then
 * again. */
static void test_ferryd_watchdog(void **state)
{
    struct tmp *t = *state;
    char buf[512], data[128], log[128];
    snprintf(t->sock, sizeof t->sock, "%s/notify", t->dir);
    snprintf(data, sizeof data, "%s/data", t->dir);
    snprintf(log, sizeof log, "%s/ferryd.log", t->dir);
    listen_at(t, t->sock);
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("FERRY_TEST_WATCHDOG_STALL_MS", "2000", 1);

    const char *extra[] = {"--threads", "2", NULL};
    assert_int_equal(tc_daemon_start(&t->d, FERRYD_PATH, data, log, extra, WAIT_MS), 0);
    next_msg(t->fd, buf, sizeof buf, WAIT_MS);
    assert_true(strncmp(buf, "READY=1", 7) == 0);
    unsigned running = count_msgs(t->fd, "WATCHDOG=1", 1000);
    print_message("WATCHDOG=1 in 1 s while running: %u\n", running);
    assert_true(running >= 5);

    assert_int_equal(kill(t->d.pid, SIGUSR2), 0);
    (void)count_msgs(t->fd, "WATCHDOG=1", 300); /* one may have been on its way */
    unsigned stalled = count_msgs(t->fd, "WATCHDOG=1", 1200);
    print_message("WATCHDOG=1 in 1.2 s while stalled: %u\n", stalled);
    assert_int_equal(stalled, 0);

    unsigned again = count_msgs(t->fd, "WATCHDOG=1", 3000);
    print_message("WATCHDOG=1 in the 3 s after: %u\n", again);
    assert_true(again >= 5);
    int st = 0;
    assert_int_equal(tc_daemon_stop(&t->d, WAIT_MS, &st), 0);
    assert_int_equal(tc_exit_code(st), 0);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[2048];
    bool warned = false, back = false;
    while (fgets(line, sizeof line, f)) {
        warned |= strstr(line, "msg=\"watchdog: no progress from the schedulers\"") != NULL;
        back |= strstr(line, "msg=\"watchdog: the schedulers progress again\"") != NULL;
    }
    fclose(f);
    assert_true(warned && back);
}

/* Without WATCHDOG_USEC: READY=1, and no WATCHDOG=1 ever. */
static void test_ferryd_no_watchdog_unasked(void **state)
{
    struct tmp *t = *state;
    char buf[512], data[128], log[128];
    snprintf(t->sock, sizeof t->sock, "%s/notify", t->dir);
    snprintf(data, sizeof data, "%s/data", t->dir);
    snprintf(log, sizeof log, "%s/ferryd.log", t->dir);
    listen_at(t, t->sock);
    unsetenv("WATCHDOG_USEC");
    const char *extra[] = {"--threads", "1", NULL};
    assert_int_equal(tc_daemon_start(&t->d, FERRYD_PATH, data, log, extra, WAIT_MS), 0);
    next_msg(t->fd, buf, sizeof buf, WAIT_MS);
    assert_true(strncmp(buf, "READY=1", 7) == 0);
    assert_int_equal(count_msgs(t->fd, "WATCHDOG=1", 500), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_is_a_no_op),
        T(test_path_socket),
        T(test_abstract_socket),
        T(test_bad_addresses),
        T(test_ferryd_ready_and_stopping),
        T(test_ferryd_watchdog),
        T(test_ferryd_no_watchdog_unasked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
