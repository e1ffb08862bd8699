/*
 * harness.c - test helpers (see harness.h); processes, temp dirs and
 * random files through tests/common (tc.h).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tc.h"
#include "ferry/digest.h"

void fy_ct_sleep_ms(int ms)
{
    tc_sleep_ms((unsigned)ms);
}

long fy_ct_env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

void fy_ct_mkdir(const char *path)
{
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

int fy_ct_setup(void **state)
{
    fy_ct *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    if (tc_tmpdir(t->dir, sizeof t->dir, "ct") < 0) {
        free(t);
        return -1;
    }
    snprintf(t->data, sizeof t->data, "%s/data", t->dir);
    signal(SIGPIPE, SIG_IGN);
    *state = t;
    return 0;
}

int fy_ct_teardown(void **state)
{
    fy_ct *t = *state;
    for (int i = 0; i < t->npids; i++) {
        if (t->pids[i] > 0) {
            kill(t->pids[i], SIGKILL);
            waitpid(t->pids[i], NULL, 0);
        }
    }
    tc_daemon_stop(&t->daemon, 3000, NULL);
    tc_tmpdir_done(t->dir);
    free(t);
    return 0;
}

const char *fy_ct_path(fy_ct *t, const char *name, char *buf)
{
    snprintf(buf, FY_CT_PATH, "%s/%s", t->dir, name);
    return buf;
}

const char *fy_ct_slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    size_t n = 0;
    for (int i = 0; i < 1000 && n < cap - 1; i++) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    close(fd);
    return buf;
}

bool fy_ct_contains(const char *path, const char *needle)
{
    static const size_t cap = 1 << 20;
    char *buf = malloc(cap);
    assert_non_null(buf);
    bool r = strstr(fy_ct_slurp(path, buf, cap), needle) != NULL;
    free(buf);
    return r;
}

void fy_ct_dump(const char *path)
{
    char buf[4096];
    long long sz = fy_ct_size(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (sz > (long long)sizeof buf - 1)
        lseek(fd, sz - (long long)sizeof buf + 1, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = 0;
        fprintf(stderr, "---- %s (tail) ----\n%s\n----\n", path, buf);
    }
}

/* ---- processes ---------------------------------------------------------------- */

void fy_ct_daemon_start(fy_ct *t, const char *const *extra)
{
    char log[FY_CT_PATH + 32];
    snprintf(log, sizeof log, "%s/ferryd-%d.log", t->dir, t->logs++);
    int rc = tc_daemon_start(&t->daemon, FERRYD_PATH, t->data, log, extra, 20000);
    if (rc != 0)
        fy_ct_dump(log);
    assert_int_equal(rc, 0);
}

void fy_ct_daemon_stop(fy_ct *t)
{
    int rc = tc_daemon_stop(&t->daemon, 10000, NULL);
    assert_int_not_equal(rc, -ETIMEDOUT); /* it stopped on SIGTERM */
}

void fy_ct_daemon_kill9(fy_ct *t)
{
    assert_true(t->daemon.pid > 0);
    tc_daemon_kill9(&t->daemon);
}

void fy_ct_daemon_restart(fy_ct *t, const char *const *extra)
{
    enum { MAX_EXTRA = 16, ATTEMPTS = 50 };
    char addr[sizeof t->daemon.addr], log[FY_CT_PATH + 32];
    snprintf(addr, sizeof addr, "%s", t->daemon.addr);
    assert_true(addr[0] != 0);
    /* A later --listen wins over tc_daemon_start's 127.0.0.1:0. */
    const char *argv[MAX_EXTRA + 3] = {"--listen", addr};
    int n = 2;
    for (int i = 0; extra && extra[i]; i++) {
        assert_true(n < MAX_EXTRA + 2);
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    int rc = -1;
    for (int i = 0; i < ATTEMPTS && rc != 0; i++) {
        if (i > 0)
            fy_ct_sleep_ms(200);
        snprintf(log, sizeof log, "%s/ferryd-%d.log", t->dir, t->logs++);
        rc = tc_daemon_start(&t->daemon, FERRYD_PATH, t->data, log, argv, 20000);
    }
    if (rc != 0)
        fy_ct_dump(log);
    assert_int_equal(rc, 0);
    assert_string_equal(t->daemon.addr, addr);
}

pid_t fy_ct_spawn(fy_ct *t, const char *tag, const char *const *argv)
{
    return fy_ct_spawn_prog(t, tag, NULL, NULL, argv);
}

pid_t fy_ct_spawn_prog(fy_ct *t, const char *tag, const char *prog, const char *in,
                       const char *const *argv)
{
    if (!prog)
        prog = FERRY_PATH;
    char out[FY_CT_PATH + 64], err[FY_CT_PATH + 64];
    snprintf(out, sizeof out, "%s/%s.out", t->dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", t->dir, tag);
    int argc = 0;
    while (argv[argc])
        argc++;
    const char **args = calloc((size_t)argc + 2, sizeof *args);
    assert_non_null(args);
    args[0] = prog;
    memcpy(args + 1, argv, (size_t)argc * sizeof *args);
    assert_true(t->npids < (int)(sizeof t->pids / sizeof t->pids[0]));
    pid_t pid = tc_spawn(args, in, out, err, false);
    assert_true(pid >= 0);
    free(args);
    t->pids[t->npids++] = pid;
    return pid;
}

static void forget(fy_ct *t, pid_t pid)
{
    for (int i = 0; i < t->npids; i++)
        if (t->pids[i] == pid)
            t->pids[i] = 0;
}

int fy_ct_wait(fy_ct *t, pid_t pid, int timeout_ms)
{
    int st = 0;
    int rc = tc_wait(pid, timeout_ms, &st);
    forget(t, pid);
    return rc == 0 ? tc_exit_code(st) : -1;
}

bool fy_ct_running(pid_t pid)
{
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return false;
    return si.si_pid == 0;
}

int fy_ct_run(fy_ct *t, const char *tag, const char *const *argv, int timeout_ms)
{
    return fy_ct_wait(t, fy_ct_spawn(t, tag, argv), timeout_ms);
}

void fy_ct_kill(pid_t pid, int sig)
{
    kill(pid, sig);
}

void fy_ct_expect_exit(fy_ct *t, pid_t pid, const char *tag, int timeout_ms, int code)
{
    int rc = fy_ct_wait(t, pid, timeout_ms);
    if (rc != code) {
        char p[FY_CT_PATH * 4];
        fprintf(stderr, "%s: exit %d, wanted %d\n", tag, rc, code);
        snprintf(p, sizeof p, "%s/%s.err", t->dir, tag);
        fy_ct_dump(p);
        snprintf(p, sizeof p, "%s/ferryd-0.log", t->dir);
        fy_ct_dump(p);
    }
    assert_int_equal(rc, code);
}

/* `cmd` followed by the head arguments, then `more` up to its first NULL. */
static pid_t spawn_with(fy_ct *t, const char *tag, const char *const *head, int nhead,
                        const char *const *more)
{
    enum { MAX = 64 };
    const char *argv[MAX + 1];
    int n = 0;
    for (; n < nhead; n++)
        argv[n] = head[n];
    for (int i = 0; more && more[i]; i++) {
        assert_true(n < MAX);
        argv[n++] = more[i];
    }
    argv[n] = NULL;
    return fy_ct_spawn(t, tag, argv);
}

pid_t fy_ct_send(fy_ct *t, const char *tag, const char *channel, const char *const *more)
{
    const char *head[] = {"send", "--server", t->daemon.addr, "--channel", channel};
    return spawn_with(t, tag, head, 5, more);
}

pid_t fy_ct_recv(fy_ct *t, const char *tag, const char *channel, const char *out,
                 const char *const *more)
{
    const char *head[] = {"recv", "--server", t->daemon.addr, "--channel", channel, "--out", out};
    return spawn_with(t, tag, head, 7, more);
}

void fy_ct_hold_sender(fy_ct *t, const char *channel, fy_cli_conn **k, fy_welcome *w)
{
    *k = NULL;
    assert_int_equal(fy_cli_conn_open(t->daemon.addr, NULL, k), 0);
    fy_hello h = {.role = FY_ROLE_SENDER};
    snprintf(h.channel, sizeof h.channel, "%s", channel);
    assert_int_equal(fy_cli_conn_hello(*k, &h, 10000, w), 0);
}

/* ---- files ---------------------------------------------------------------------- */

void fy_ct_make_file(const char *path, uint64_t size, uint64_t seed, uint8_t out[32])
{
    assert_int_equal(tc_make_file(path, size, seed, out), 0);
}

int fy_ct_sha_file(const char *path, uint8_t out[32])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    enum { BLK = 1 << 20 };
    uint8_t *buf = malloc(BLK);
    fy_sha256 *h;
    if (!buf || fy_sha256_new(&h) != 0) {
        free(buf);
        close(fd);
        return -ENOMEM;
    }
    ssize_t n;
    while ((n = read(fd, buf, BLK)) > 0)
        fy_sha256_update(h, buf, (size_t)n);
    fy_sha256_final(h, out);
    fy_sha256_free(h);
    free(buf);
    close(fd);
    return n < 0 ? -EIO : 0;
}

void fy_ct_assert_same(const char *path, const uint8_t want[32])
{
    uint8_t got[32];
    int rc = fy_ct_sha_file(path, got);
    if (rc != 0)
        fprintf(stderr, "cannot read %s\n", path);
    assert_int_equal(rc, 0);
    assert_memory_equal(got, want, 32);
}

long long fy_ct_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}
