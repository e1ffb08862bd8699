/*
 * sock.c - socket helpers (include/ferry/sock.h).
 *
 * Addresses may be numeric, "[v6]" literals or host names.  A name is
 * looked up with getaddrinfo (so /etc/hosts and DNS as nsswitch.conf says)
 * once, when a program starts or a client (re)connects: the relay's event
 * loop never waits on a resolver.  A client tries every address returned,
 * in order (fy_sock_connect_any).
 * Every fd is close-on-exec so a daemon's children never inherit sockets.
 */
#include "ferry/sock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- addresses ---------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *port)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* A numeric host (or "localhost", kept as 127.0.0.1 so a default relay on
 * 127.0.0.1 is reached without trying ::1 first): 0, or -EINVAL when it is
 * not numeric (a name for getaddrinfo). */
static int fill_numeric(const char *host, uint16_t port, fy_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        out->len = sizeof(*v4);
        return 0;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        out->len = sizeof(*v6);
        return 0;
    }
    return -EINVAL;
}

/* Letters, digits, '-', '_' and '.': anything else is a typo, refused
 * before it costs a DNS query. */
static bool name_ok(const char *h)
{
    if (!*h || strlen(h) > 253)
        return false;
    for (const char *c = h; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            return false;
    return true;
}

/* The getaddrinfo answer for host, in the resolver's order, at most cap. */
static int lookup(const char *host, uint16_t port, fy_addr *out, size_t cap, size_t *n)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_protocol = IPPROTO_TCP}, *res = NULL;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g != 0) {
        switch (g) {
        case EAI_AGAIN: return -EAGAIN;
        case EAI_MEMORY: return -ENOMEM;
        case EAI_SYSTEM: return errno ? -errno : -ENXIO;
        default: return -ENXIO; /* EAI_NONAME, EAI_NODATA, EAI_FAIL, ... */
        }
    }
    *n = 0;
    for (struct addrinfo *ai = res; ai && *n < cap; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof out->ss)
            continue;
        fy_addr *a = &out[(*n)++];
        memset(a, 0, sizeof *a);
        memcpy(&a->ss, ai->ai_addr, ai->ai_addrlen);
        a->len = ai->ai_addrlen;
        if (ai->ai_family == AF_INET)
            ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
    }
    freeaddrinfo(res);
    return *n ? 0 : -ENXIO;
}

int fy_addr_split(const char *text, const char *default_host, char *host, size_t hcap,
                  uint16_t *port)
{
    const char *colon;

    if (!text || !host || hcap == 0)
        return -EINVAL;
    if (text[0] == '[') { /* [v6]:port */
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= hcap)
            return -EINVAL;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= hcap)
            return -EINVAL;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        if (host[0] == '\0') {
            if (!default_host || strlen(default_host) >= hcap)
                return -EINVAL;
            strcpy(host, default_host);
        }
    }
    return parse_port(colon + 1, port);
}

int fy_addr_resolve(const char *text, const char *default_host, fy_addr *out, size_t cap,
                    size_t *n)
{
    char host[256];
    uint16_t port;

    if (!out || !n || cap == 0)
        return -EINVAL;
    *n = 0;
    int rc = fy_addr_split(text, default_host, host, sizeof host, &port);
    if (rc < 0)
        return rc;
    if (fill_numeric(host, port, out) == 0) {
        *n = 1;
        return 0;
    }
    if (text[0] == '[' || !name_ok(host))
        return -EINVAL;
    return lookup(host, port, out, cap, n);
}

int fy_addr_parse(const char *text, const char *default_host, fy_addr *out)
{
    size_t n;
    return fy_addr_resolve(text, default_host, out, 1, &n);
}

void fy_addr_format(const fy_addr *a, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
        snprintf(buf, cap, "[%s]:%u", host, ntohs(v6->sin6_port));
    } else {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        snprintf(buf, cap, "%s:%u", host, ntohs(v4->sin_port));
    }
}

uint16_t fy_addr_port(const fy_addr *a)
{
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

/* ---- listen / accept / connect ------------------------------------------ */

int fy_sock_listen(const fy_addr *a, int backlog, fy_addr *bound)
{
    int one = 1;
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
        listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (bound) {
        bound->len = sizeof(bound->ss);
        if (getsockname(fd, (struct sockaddr *)&bound->ss, &bound->len) < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
    }
    return fd;
}

int fy_sock_accept(int lfd, fy_addr *peer)
{
    fy_addr tmp;
    fy_addr *p = peer ? peer : &tmp;
    for (;;) {
        p->len = sizeof(p->ss);
        int fd = accept4(lfd, (struct sockaddr *)&p->ss, &p->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/* Wait for a non-blocking connect to finish within timeout_ms. */
static int connect_wait(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n;
    do {
        n = poll(&p, 1, timeout_ms > 0 ? timeout_ms : -1);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ETIMEDOUT;
    return fy_sock_connect_result(fd);
}

int fy_sock_connect(const fy_addr *a, int timeout_ms)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
        rc = errno == EINPROGRESS ? connect_wait(fd, timeout_ms) : -errno;
    if (rc == 0)
        rc = fy_sock_set_nonblock(fd, 0);
    if (rc == 0)
        rc = fy_sock_set_nodelay(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int fy_sock_connect_any(const fy_addr *a, size_t n, int timeout_ms, size_t *used)
{
    int rc = -EINVAL;
    for (size_t i = 0; i < n; i++) {
        rc = fy_sock_connect(&a[i], timeout_ms);
        if (rc >= 0) {
            if (used)
                *used = i;
            return rc;
        }
    }
    return rc;
}

int fy_sock_connect_start(const fy_addr *a)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    (void)fy_sock_set_nodelay(fd); /* best effort: latency only */
    return fd;
}

int fy_sock_connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

int fy_sock_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int fy_sock_set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ? -errno : 0;
}

int fy_sock_set_bufs(int fd, int sndbuf, int rcvbuf)
{
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
        return -errno;
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
        return -errno;
    return 0;
}

int fy_sock_set_keepalive(int fd, int idle_s, int intvl_s, int cnt, unsigned user_ms)
{
    int one = 1;

    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s, sizeof(intvl_s)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
        return -errno;
    if (user_ms && setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms)) < 0)
        return -errno;
    return 0;
}

ssize_t fy_sock_unacked(int fd)
{
    int v = 0;
    return ioctl(fd, SIOCOUTQ, &v) < 0 ? -errno : (ssize_t)v;
}

bool fy_sock_peer_gone(int fd)
{
    /* POLLRDHUP is set once the FIN arrived, even with unread bytes still
     * queued before it, which is the case this answers. */
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* ---- data --------------------------------------------------------------- */

ssize_t fy_sock_recv(int fd, void *buf, size_t n)
{
    for (;;) {
        ssize_t r = recv(fd, buf, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

ssize_t fy_sock_peek(int fd, void *buf, size_t n)
{
    for (;;) {
        ssize_t r = recv(fd, buf, n, MSG_PEEK);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

int fy_sock_set_timeout(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return -errno;
    return 0;
}

int fy_sock_drain(int fd, unsigned reads)
{
    uint8_t sink[4096];

    for (unsigned i = 0; i < reads; i++) {
        ssize_t n = fy_sock_recv(fd, sink, sizeof sink);
        if (n == -EAGAIN)
            return -EAGAIN;
        if (n <= 0)
            return 0;
    }
    return 1;
}

ssize_t fy_sock_readv(int fd, const struct iovec *iov, int iovcnt)
{
    for (;;) {
        ssize_t r = readv(fd, iov, iovcnt);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

ssize_t fy_sock_writev(int fd, const struct iovec *iov, int iovcnt)
{
    /* sendmsg with MSG_NOSIGNAL: a peer that went away must give EPIPE to
     * the one connection, not SIGPIPE to the whole relay. */
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    for (;;) {
        ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

int fy_sock_shutdown_wr(int fd)
{
    return shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
}

int fy_sock_write_all(int fd, const void *p, size_t n)
{
    struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
    return fy_sock_writev_all(fd, &iov, 1);
}

void fy_sock_iov_advance(struct iovec **iov, int *iovcnt, size_t n)
{
    while (*iovcnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*iovcnt)--;
    }
    if (*iovcnt > 0) {
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

int fy_sock_writev_all(int fd, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        ssize_t w = fy_sock_writev(fd, iov, iovcnt > IOV_MAX ? IOV_MAX : iovcnt);
        if (w < 0)
            return (int)w;
        fy_sock_iov_advance(&iov, &iovcnt, (size_t)w);
    }
    return 0;
}

int fy_sock_read_full(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = fy_sock_recv(fd, b, n);
        if (r == 0)
            return -ENODATA;
        if (r < 0)
            return (int)r;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}
