/*
 * test_net.c - address parsing, the blocking helpers over a real loopback
 * connection, and log-value quoting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ferry/klog.h"
#include "ferry/sock.h"

/* Connect to bound and accept it on lfd (bounded: 2 s): the accepted fd,
 * *c the connected one. */
static int accept_pair(int lfd, const fy_addr *bound, fy_addr *peer, int *c)
{
    *c = fy_sock_connect(bound, 2000);
    assert_true(*c >= 0);
    int s = -1;
    for (int i = 0; i < 200 && s < 0; i++) {
        s = fy_sock_accept(lfd, peer);
        if (s == -EAGAIN)
            usleep(10000);
    }
    assert_true(s >= 0);
    return s;
}

static void test_addr_parse(void **state)
{
    (void)state;
    fy_addr a;
    char buf[64];

    assert_int_equal(fy_addr_parse("127.0.0.1:7420", NULL, &a), 0);
    fy_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:7420");
    assert_int_equal(fy_addr_parse(":99", "127.0.0.1", &a), 0);
    assert_int_equal(fy_addr_port(&a), 99);
    assert_int_equal(fy_addr_parse("[::1]:8", NULL, &a), 0);
    fy_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "[::1]:8");
    assert_int_equal(fy_addr_parse("localhost:1", NULL, &a), 0);
    assert_int_equal(fy_addr_parse("127.0.0.1", NULL, &a), -EINVAL);
    assert_int_equal(fy_addr_parse("127.0.0.1:70000", NULL, &a), -EINVAL);
    assert_int_equal(fy_addr_parse("127.0.0.1:", NULL, &a), -EINVAL);
    /* host names are looked up; a host no name can be is refused without one */
    assert_int_equal(fy_addr_parse("bad host!:80", NULL, &a), -EINVAL);
    assert_int_equal(fy_addr_parse("[relay.example]:80", NULL, &a), -EINVAL);
    char host[64];
    uint16_t port;
    assert_int_equal(fy_addr_split("[::1]:7420", NULL, host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7420);
    assert_int_equal(fy_addr_split("relay.example.net:7420", NULL, host, sizeof host, &port), 0);
    assert_string_equal(host, "relay.example.net");
    assert_int_equal(fy_addr_parse("[::1:80", NULL, &a), -EINVAL);
}

static void test_loopback_roundtrip(void **state)
{
    (void)state;
    fy_addr a, bound, peer;
    uint8_t out[100000], in[sizeof(out)];

    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (uint8_t)(i * 7);
    assert_int_equal(fy_addr_parse("127.0.0.1:0", NULL, &a), 0);
    int lfd = fy_sock_listen(&a, 0, &bound);
    assert_true(lfd >= 0);
    assert_true(fy_addr_port(&bound) != 0);
    assert_int_equal(fy_sock_accept(lfd, &peer), -EAGAIN);
    int c, s = accept_pair(lfd, &bound, &peer, &c);
    assert_int_equal(fy_sock_set_nonblock(s, 0), 0);
    /* The writer blocks once the socket buffers fill, so write from a child. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fy_sock_write_all(c, out, sizeof(out)) == 0 ? 0 : 1);
    assert_int_equal(fy_sock_read_full(s, in, sizeof(in)), 0);
    assert_memory_equal(in, out, sizeof(out));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(c);
    assert_int_equal(fy_sock_read_full(s, in, 1), -ENODATA);
    close(s);
    close(lfd);
}

static void test_connect_refused(void **state)
{
    (void)state;
    fy_addr a, bound;
    assert_int_equal(fy_addr_parse("127.0.0.1:0", NULL, &a), 0);
    int lfd = fy_sock_listen(&a, 0, &bound);
    assert_true(lfd >= 0);
    close(lfd); /* nothing listens there now */
    assert_int_equal(fy_sock_connect(&bound, 2000), -ECONNREFUSED);
}

/* Keepalive and the user timeout are set as asked on an accepted socket
 * (the relay's case) and on a connected one; a non-socket is refused. */
static void test_keepalive(void **state)
{
    (void)state;
    fy_addr a, bound, peer;
    assert_int_equal(fy_addr_parse("127.0.0.1:0", NULL, &a), 0);
    int lfd = fy_sock_listen(&a, 0, &bound);
    assert_true(lfd >= 0);
    int c, s = accept_pair(lfd, &bound, &peer, &c);
    int fds[2] = {s, c};
    for (int k = 0; k < 2; k++) {
        int v = -1;
        unsigned u = 0;
        socklen_t len = sizeof v;
        assert_int_equal(getsockopt(fds[k], SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
        assert_int_equal(v, 0); /* off until asked */
        assert_int_equal(fy_sock_set_keepalive(fds[k], 30, 10, 3, 60000), 0);
        len = sizeof v;
        assert_int_equal(getsockopt(fds[k], SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
        assert_int_equal(v, 1);
        len = sizeof v;
        assert_int_equal(getsockopt(fds[k], IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
        assert_int_equal(v, 30);
        len = sizeof v;
        assert_int_equal(getsockopt(fds[k], IPPROTO_TCP, TCP_KEEPINTVL, &v, &len), 0);
        assert_int_equal(v, 10);
        len = sizeof v;
        assert_int_equal(getsockopt(fds[k], IPPROTO_TCP, TCP_KEEPCNT, &v, &len), 0);
        assert_int_equal(v, 3);
        len = sizeof u;
        assert_int_equal(getsockopt(fds[k], IPPROTO_TCP, TCP_USER_TIMEOUT, &u, &len), 0);
        assert_int_equal(u, 60000);
    }
    /* user_ms 0 leaves the user timeout alone. */
    assert_int_equal(fy_sock_set_keepalive(s, 5, 1, 2, 0), 0);
    unsigned u = 1;
    socklen_t len = sizeof u;
    assert_int_equal(getsockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT, &u, &len), 0);
    assert_int_equal(u, 60000);
    assert_int_equal(fy_sock_set_keepalive(s, 0, 10, 3, 0), -EINVAL); /* idle 0 is refused */
    int devnull = open("/dev/null", O_RDONLY);
    assert_true(devnull >= 0);
    assert_int_equal(fy_sock_set_keepalive(devnull, 30, 10, 3, 60000), -ENOTSOCK);
    close(devnull);
    close(c);
    close(s);
    close(lfd);
}

static void test_klog_quote(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(fy_klog_q("a b", buf, sizeof(buf)), "\"a b\"");
    assert_string_equal(fy_klog_q("q\"\\\n", buf, sizeof(buf)), "\"q\\\"\\\\\\x0a\"");
    assert_int_equal(fy_klog_level_parse("warn"), FY_LOG_WARN);
    assert_int_equal(fy_klog_level_parse("loud"), -EINVAL);
    fy_klog_q("a very long value that will not fit in the buffer at all", buf, sizeof(buf));
    assert_true(strlen(buf) < sizeof(buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_loopback_roundtrip),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_klog_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
