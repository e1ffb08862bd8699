/*
 * conn.c - one connection's byte stream, plain or TLS (include/ferry/
 * conn.h): each call is the socket call for a plain connection and the
 * TLS half's (tls.c) otherwise.  Kept apart from tls.c so a plain
 * connection's path is the few lines below and nothing of OpenSSL.
 */
#include "ferry/conn.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "ferry/io.h"
#include "ferry/sock.h"
#include "ferry/tls.h"
#include "net/tls_int.h"

int fy_conn_tls_start(fy_conn *c, fy_tls *t, const char *name)
{
    if (c->fd < 0 || c->tls)
        return -EINVAL;
    return fy__tls_start(&c->tls, c->fd, t, name);
}

int fy_conn_handshake(fy_conn *c)
{
    return c->tls ? fy__tls_handshake(c->tls) : 0;
}

int fy_conn_tls_accept(fy_conn *c, fy_tls *t)
{
    if (!c->tls) {
        uint8_t b;
        ssize_t n = fy_sock_peek(c->fd, &b, 1);
        if (n <= 0)
            return n == 0 ? -ECONNRESET : (int)n;
        if (!fy_tls_looks_like_hello(b))
            return 1;
        int rc = fy_conn_tls_start(c, t, NULL);
        if (rc < 0)
            return rc;
    }
    return fy__tls_handshake(c->tls);
}

ssize_t fy_conn_recv(fy_conn *c, void *buf, size_t n)
{
    return c->tls ? fy__tls_recv(c->tls, buf, n) : fy_sock_recv(c->fd, buf, n);
}

ssize_t fy_conn_readv(fy_conn *c, const struct iovec *iov, int iovcnt)
{
    return c->tls ? fy__tls_readv(c->tls, iov, iovcnt) : fy_sock_readv(c->fd, iov, iovcnt);
}

ssize_t fy_conn_writev(fy_conn *c, const struct iovec *iov, int iovcnt)
{
    return c->tls ? fy__tls_writev(c->tls, iov, iovcnt) : fy_sock_writev(c->fd, iov, iovcnt);
}

int fy_conn_flush(fy_conn *c)
{
    return c->tls ? fy__tls_flush(c->tls) : 0;
}

ssize_t fy_conn_sendfile(fy_conn *c, int in_fd, off_t off, size_t n)
{
    if (c->tls)
        return fy__tls_sendfile(c->tls, in_fd, off, n);
    for (;;) {
        ssize_t w = sendfile(c->fd, in_fd, &off, n);
        if (w >= 0)
            return w;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

int fy_conn_drain(fy_conn *c, unsigned reads)
{
    uint8_t sink[4096];

    if (!c->tls)
        return fy_sock_drain(c->fd, reads);
    for (unsigned i = 0; i < reads; i++) {
        ssize_t n = fy__tls_recv(c->tls, sink, sizeof sink);
        if (n == -EAGAIN)
            return -EAGAIN;
        if (n <= 0)
            return 0;
    }
    return 1;
}

int fy_conn_shutdown_wr(fy_conn *c)
{
    if (c->tls)
        (void)fy__tls_shutdown(c->tls);
    return fy_sock_shutdown_wr(c->fd);
}

void fy_conn_close(fy_conn *c)
{
    fy__tls_free(c->tls);
    c->tls = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

bool fy_conn_pending(const fy_conn *c)
{
    return c->tls && fy__tls_pending(c->tls);
}

uint32_t fy_conn_io_bits(const fy_conn *c, uint32_t bits)
{
    return c->tls && bits ? bits | FY_IO_READ | FY_IO_WRITE : bits;
}

bool fy_conn_ktls_send(const fy_conn *c)
{
    return c->tls && fy__tls_ktls_send(c->tls);
}

bool fy_conn_ktls_recv(const fy_conn *c)
{
    return c->tls && fy__tls_ktls_recv(c->tls);
}

const char *fy_conn_tls_error(const fy_conn *c)
{
    return c->tls ? fy__tls_error(c->tls) : "";
}

void fy_conn_tls_describe(const fy_conn *c, char *buf, size_t cap)
{
    if (cap)
        buf[0] = '\0';
    if (c->tls)
        fy__tls_describe(c->tls, buf, cap);
}
