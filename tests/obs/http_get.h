/*
 * http_get.h - one blocking HTTP request over loopback for the metrics
 * tests (the in-process HTTP helper and the real ferryd's /metrics): send
 * the request as given, read until the server closes, return it all.
 * Header-only (static) so each test executable gets its own copy; the
 * receive timeout bounds every read.
 */
#ifndef FY_TEST_OBS_HTTP_GET_H
#define FY_TEST_OBS_HTTP_GET_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ferry/sock.h"

/* Connect to addr (host:port, default host 127.0.0.1), write req, read the
 * whole response with reads bounded by timeout_s each; returns it
 * NUL-terminated (malloc'd).  Asserts the connect and the write. */
static inline char *t_http(const char *addr, const char *req, int timeout_s)
{
    fy_addr a;
    assert_int_equal(fy_addr_parse(addr, "127.0.0.1", &a), 0);
    int fd = fy_sock_connect(&a, 5000);
    assert_true(fd >= 0);
    struct timeval tv = {timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(fy_sock_write_all(fd, req, strlen(req)), 0);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - n - 1);
        if (k <= 0)
            break;
        n += (size_t)k;
        if (n + 1 == cap) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
    }
    buf[n] = 0;
    close(fd);
    return buf;
}

#endif
