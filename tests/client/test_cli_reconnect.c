/*
 * test_cli_reconnect.c - `ferry send` and `ferry recv` that lose their
 * relay and come back by themselves (--retry, the default), through a real
 * ferryd on 127.0.0.1 and a small TCP proxy in this test that counts the
 * bytes a sender puts on the wire and can hold or cut its connection:
 * a send cut at 90 % of a file sends only the rest after reconnecting; send
 * and recv both survive a relay killed and restarted mid-file; a source
 * that changed meanwhile is sent again from its start; tokens come from
 * FERRY_TOKEN and --token-file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define T_MS 120000

/* ---- the proxy ----------------------------------------------------------------- */

/* One client connection at a time (a new one replaces the old).  Client to
 * upstream bytes are counted per connection; with hold_after set, the first
 * connection that reaches it stops being forwarded there (held) until the
 * test cuts it, and later connections are forwarded freely. */
typedef struct proxy {
    int lfd, port;
    pthread_t th;
    pthread_mutex_t mu;
    int up_port;                /* guarded by mu */
    uint64_t hold_after;        /* guarded by mu; 0 = none */
    atomic_bool held, cut, stop;
    atomic_uint_fast64_t bytes[16]; /* client -> upstream, per connection */
    atomic_int nconn;
} proxy;

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static bool pump(int from, int to, size_t max, uint64_t *count)
{
    static __thread uint8_t buf[65536];
    ssize_t n = read(from, buf, max < sizeof buf ? max : sizeof buf);
    if (n <= 0)
        return false;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return false;
        off += w;
    }
    if (count)
        *count += (uint64_t)n;
    return true;
}

static void *proxy_main(void *arg)
{
    proxy *p = arg;
    int c = -1, u = -1, k = -1;
    uint64_t count = 0, hold = 0;
    while (!atomic_load(&p->stop)) {
        struct pollfd pf[3] = {{p->lfd, POLLIN, 0}, {c, POLLIN, 0}, {u, POLLIN, 0}};
        bool holding = c >= 0 && hold && count >= hold;
        if (holding)
            pf[1].fd = -1, atomic_store(&p->held, true);
        bool close_now = false;
        if (atomic_exchange(&p->cut, false))
            close_now = true;
        else if (poll(pf, 3, 20) > 0) {
            if (pf[0].revents & POLLIN) {
                int nc = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (nc >= 0) {
                    if (c >= 0)
                        close(c), close(u);
                    pthread_mutex_lock(&p->mu);
                    int port = p->up_port;
                    hold = p->hold_after;
                    pthread_mutex_unlock(&p->mu);
                    c = nc;
                    u = dial(port);
                    count = 0;
                    k = atomic_fetch_add(&p->nconn, 1);
                    if (u < 0)
                        close_now = true;
                }
            }
            if (!close_now && c >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
                size_t max = hold ? (size_t)(hold - count) : SIZE_MAX;
                close_now = !pump(c, u, max, &count);
                if (k >= 0 && k < 16)
                    atomic_store(&p->bytes[k], count);
            }
            if (!close_now && u >= 0 && (pf[2].revents & (POLLIN | POLLHUP | POLLERR)))
                close_now = !pump(u, c, SIZE_MAX, NULL);
        }
        if (close_now && c >= 0) {
            close(c);
            if (u >= 0)
                close(u);
            c = u = -1;
            if (hold && count >= hold) { /* the hold was one-shot */
                pthread_mutex_lock(&p->mu);
                p->hold_after = 0;
                pthread_mutex_unlock(&p->mu);
            }
            hold = 0;
        }
    }
    if (c >= 0)
        close(c);
    if (u >= 0)
        close(u);
    return NULL;
}

static void proxy_start(proxy *p, int up_port, uint64_t hold_after)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->up_port = up_port;
    p->hold_after = hold_after;
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t al = sizeof a;
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(p->lfd, 16), 0);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &al), 0);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->th, NULL, proxy_main, p), 0);
}

static void proxy_stop(proxy *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->th, NULL);
    close(p->lfd);
    pthread_mutex_destroy(&p->mu);
}

static void proxy_upstream(proxy *p, int port)
{
    pthread_mutex_lock(&p->mu);
    p->up_port = port;
    pthread_mutex_unlock(&p->mu);
}

static void wait_held(proxy *p)
{
    for (int i = 0; i < 6000 && !atomic_load(&p->held); i++)
        fy_ct_sleep_ms(10);
    assert_true(atomic_load(&p->held));
}

static int daemon_port(fy_ct *t)
{
    const char *colon = strrchr(t->daemon.addr, ':');
    assert_non_null(colon);
    return atoi(colon + 1);
}

static pid_t send_via(fy_ct *t, proxy *p, const char *tag, const char *channel, const char *file)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", p->port);
    return fy_ct_spawn(t, tag, (const char *[]){"send", "--server", addr, "--channel", channel,
                                                file, NULL});
}

/* ---- tests ----------------------------------------------------------------------- */

/* (a) Cut at 90 %: after reconnecting, only the rest goes on the wire. */
static void test_cut_at_90(void **state)
{
    fy_ct *t = *state;
    const uint64_t size = FY_CT_SANITIZED ? 16u << 20 : 64u << 20;
    char src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "big.bin", src), size, 11, sha);
    fy_ct_daemon_start(t, NULL);
    proxy px;
    proxy_start(&px, daemon_port(t), size / 10 * 9);
    fy_ct_path(t, "out", out);
    pid_t rx = fy_ct_recv(t, "recv", "cut", out, (const char *[]){"--from-start", "--count", "1", NULL});
    pid_t tx = send_via(t, &px, "send", "cut", src);
    wait_held(&px);
    fy_ct_sleep_ms(200); /* the relay stores what it got */
    atomic_store(&px.cut, true);
    fy_ct_expect_exit(t, tx, "send", T_MS, 0);
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    int n = atomic_load(&px.nconn);
    uint64_t first = atomic_load(&px.bytes[0]), after = 0;
    for (int i = 1; i < n && i < 16; i++)
        after += atomic_load(&px.bytes[i]);
    proxy_stop(&px);
    fprintf(stderr, "cut at %llu of %llu bytes; %d connections; %llu bytes on the wire after "
            "reconnecting (%.2f %% of the file)\n", (unsigned long long)first,
            (unsigned long long)size, n, (unsigned long long)after, 100.0 * (double)after / (double)size);
    assert_true(n >= 2);
    assert_true(after > 0);
    assert_true(after <= size / 10 + (1u << 20) + (64u << 10));
    snprintf(p, sizeof p, "%s/big.bin", out);
    fy_ct_assert_same(p, sha);
    snprintf(p, sizeof p, "%s/send.err", t->dir);
    assert_true(fy_ct_contains(p, "reconnected: continuing the file"));
    snprintf(p, sizeof p, "%s/send.out", t->dir);
    assert_true(fy_ct_contains(p, "status=ok"));
    assert_false(fy_ct_contains(p, "reconnects=0 "));
    fy_ct_daemon_stop(t);
}

/* (b) The relay is killed mid-file and restarted on the same data: both
 * ends come back by themselves and the file arrives intact. */
static void test_relay_restart_midfile(void **state)
{
    fy_ct *t = *state;
    const uint64_t size = FY_CT_SANITIZED ? 16u << 20 : 48u << 20;
    char src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4], addr[64];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "r.bin", src), size, 12, sha);
    fy_ct_daemon_start(t, NULL);
    proxy ps, pr;
    proxy_start(&ps, daemon_port(t), size / 2);
    proxy_start(&pr, daemon_port(t), 0);
    fy_ct_path(t, "out", out);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", pr.port);
    pid_t rx = fy_ct_spawn(t, "recv", (const char *[]){"recv", "--server", addr, "--channel", "rs",
                                                       "--out", out, "--from-start", "--count",
                                                       "1", NULL});
    pid_t tx = send_via(t, &ps, "send", "rs", src);
    wait_held(&ps);
    fy_ct_sleep_ms(300);
    fy_ct_daemon_kill9(t);
    fy_ct_daemon_start(t, NULL); /* same --data, new port */
    proxy_upstream(&ps, daemon_port(t));
    proxy_upstream(&pr, daemon_port(t));
    atomic_store(&ps.cut, true);
    fy_ct_expect_exit(t, tx, "send", T_MS, 0);
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    proxy_stop(&ps);
    proxy_stop(&pr);
    snprintf(p, sizeof p, "%s/r.bin", out);
    fy_ct_assert_same(p, sha);
    snprintf(p, sizeof p, "%s/send.err", t->dir);
    assert_true(fy_ct_contains(p, "reconnected: continuing the file"));
    snprintf(p, sizeof p, "%s/recv.err", t->dir);
    assert_true(fy_ct_contains(p, "reconnecting"));
    assert_false(fy_ct_contains(p, "discard"));
    snprintf(p, sizeof p, "%s/ferryd-1.log", t->dir);
    assert_true(fy_ct_contains(p, "file in progress found"));
    assert_true(fy_ct_contains(p, "sender continues a file"));
    fy_ct_daemon_stop(t);
}

/* (c) The source changed while the link was down: sent again from its
 * start, receivers drop the partial one and get the new bytes. */
static void test_changed_source(void **state)
{
    fy_ct *t = *state;
    const uint64_t size = 8u << 20;
    char src[FY_CT_PATH], tmp[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sha2[32];
    fy_ct_make_file(fy_ct_path(t, "c.bin", src), size, 13, NULL);
    fy_ct_daemon_start(t, NULL);
    proxy px;
    proxy_start(&px, daemon_port(t), size / 2);
    fy_ct_path(t, "out", out);
    pid_t rx = fy_ct_recv(t, "recv", "chg", out, (const char *[]){"--from-start", "--count", "1", NULL});
    pid_t tx = send_via(t, &px, "send", "chg", src);
    wait_held(&px);
    fy_ct_make_file(fy_ct_path(t, "c.new", tmp), size, 14, sha2);
    assert_int_equal(rename(tmp, src), 0); /* same size, new inode and content */
    atomic_store(&px.cut, true);
    fy_ct_expect_exit(t, tx, "send", T_MS, 0);
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    proxy_stop(&px);
    snprintf(p, sizeof p, "%s/c.bin", out);
    fy_ct_assert_same(p, sha2);
    snprintf(p, sizeof p, "%s/send.err", t->dir);
    assert_true(fy_ct_contains(p, "source changed"));
    snprintf(p, sizeof p, "%s/recv.err", t->dir);
    assert_true(fy_ct_contains(p, "sender died mid-file"));
    fy_ct_daemon_stop(t);
}

/* (d) Tokens from FERRY_TOKEN and --token-file. */
static void test_token_sources(void **state)
{
    fy_ct *t = *state;
    char auth[FY_CT_PATH], tokf[FY_CT_PATH], src[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 4];
    uint8_t sha[32];
    FILE *f = fopen(fy_ct_path(t, "auth", auth), "w");
    assert_non_null(f);
    fputs("pub-secret publish tok*\nsub-secret subscribe tok*\n", f);
    fclose(f);
    f = fopen(fy_ct_path(t, "sub.token", tokf), "w");
    assert_non_null(f);
    fputs("sub-secret\n", f);
    fclose(f);
    fy_ct_make_file(fy_ct_path(t, "t.bin", src), 100000, 15, sha);
    fy_ct_daemon_start(t, (const char *[]){"--auth", auth, NULL});
    fy_ct_path(t, "out", out);
    /* no token at all: refused */
    unsetenv("FERRY_TOKEN");
    fy_ct_expect_exit(t, fy_ct_send(t, "s0", "tok", (const char *[]){src, NULL}), "s0", T_MS, 3);
    /* FERRY_TOKEN, inherited by the child */
    setenv("FERRY_TOKEN", "pub-secret", 1);
    fy_ct_expect_exit(t, fy_ct_send(t, "s1", "tok", (const char *[]){src, NULL}), "s1", T_MS, 0);
    /* --token-file wins over FERRY_TOKEN (which cannot subscribe) */
    fy_ct_expect_exit(t,
                      fy_ct_recv(t, "r1", "tok", out,
                                 (const char *[]){"--token-file", tokf, "--from-start", "--count",
                                                  "1", NULL}),
                      "r1", T_MS, 0);
    /* --token wins over both */
    fy_ct_expect_exit(t,
                      fy_ct_send(t, "s2", "tok",
                                 (const char *[]){"--token", "guess", "--token-file", tokf, src, NULL}),
                      "s2", T_MS, 3);
    unsetenv("FERRY_TOKEN");
    /* an unreadable token file is a local error */
    fy_ct_expect_exit(t,
                      fy_ct_send(t, "s3", "tok",
                                 (const char *[]){"--token-file", "/nonexistent/tok", src, NULL}),
                      "s3", T_MS, 5);
    snprintf(p, sizeof p, "%s/t.bin", out);
    fy_ct_assert_same(p, sha);
    fy_ct_daemon_stop(t);
}

/* A relay that accepts a receiver's connection and dies before its
 * welcome, then refuses connections while it restarts: the receiver has
 * reached a relay, so it keeps trying (before, the refused reconnect
 * exited 2 at once, as for a wrong address; test_cli_crash hit it). */
static void *accept_and_die(void *arg)
{
    int lfd = *(int *)arg, c = accept(lfd, NULL, NULL);
    if (c >= 0) {
        char buf[512];
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 10000) > 0)
            (void)read(c, buf, sizeof buf); /* the hello, never answered */
        close(c);
    }
    close(lfd); /* now: connection refused */
    return NULL;
}

static void test_cut_before_welcome_then_refused(void **state)
{
    fy_ct *t = *state;
    char src[FY_CT_PATH], out[FY_CT_PATH], got[FY_CT_PATH * 2], addr[64];
    uint8_t sha[32];
    uint16_t port;
    assert_int_equal(tc_free_port(&port), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 4), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, accept_and_die, &lfd), 0);

    fy_ct_make_file(fy_ct_path(t, "one.bin", src), 200000, 21, sha);
    const char *argv[] = {"recv", "--server", addr, "--channel", "cut", "--out",
                          fy_ct_path(t, "out", out), "--from-start", "--count", "1", NULL};
    pid_t rx = fy_ct_spawn(t, "recv", argv);
    assert_int_equal(pthread_join(th, NULL), 0);
    fy_ct_sleep_ms(700); /* its reconnects meet a refused port meanwhile */
    assert_true(fy_ct_running(rx));
    fy_ct_daemon_start(t, (const char *const[]){"--listen", addr, NULL});
    const char *send[] = {"send", "--server", addr, "--channel", "cut", src, NULL};
    assert_int_equal(fy_ct_run(t, "send", send, T_MS), 0);
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    snprintf(got, sizeof got, "%s/one.bin", out);
    fy_ct_assert_same(got, sha);
    fy_ct_daemon_stop(t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cut_at_90, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_relay_restart_midfile, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_changed_source, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_token_sources, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_cut_before_welcome_then_refused, fy_ct_setup,
                                        fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
