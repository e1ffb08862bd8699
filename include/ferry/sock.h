/*
 * sock.h - socket helpers shared by the relay, the client, the swarm and the
 * baseline: address parsing, listen, connect, and the few blocking loops a
 * client needs.  The relay's actors use the non-blocking forms only.  This
 * module (src/net) is the only place that calls socket(), bind(), connect()
 * and accept4(); actors call recv()/send()/writev() through it as well so
 * every I/O system call is in one folder.
 */
#ifndef FERRY_SOCK_H
#define FERRY_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Addresses kept from one host name's lookup. */
#define FY_ADDR_MAX 16

typedef struct fy_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} fy_addr;

/* Split "HOST:PORT", "[v6]:PORT" or ":PORT" (host defaults to
 * default_host) into host (brackets removed) and port.  A bare IPv6
 * literal without brackets parses only when the last colon is the
 * port's ("::1:7420"); "[::1]:7420" is the form to write.  0 or -EINVAL. */
int fy_addr_split(const char *text, const char *default_host, char *host, size_t hcap,
                  uint16_t *port);
/* Resolve such an address: a numeric host (and "localhost" = 127.0.0.1)
 * without a lookup, else a host name through getaddrinfo (blocks: call it
 * at start-up or from a client, never from an actor's handler).  Fills
 * out[0..*n) (at most cap) in the resolver's order.  Returns 0, -EINVAL
 * (syntax, or a host with characters no name has), -ENXIO (unknown name),
 * -EAGAIN (the resolver failed for now), or -errno. */
int fy_addr_resolve(const char *text, const char *default_host, fy_addr *out, size_t cap,
                    size_t *n);
/* fy_addr_resolve's first address only (a listener binds one).  Same
 * returns. */
int fy_addr_parse(const char *text, const char *default_host, fy_addr *out);
/* Format as "HOST:PORT" / "[v6]:PORT" into buf (cap >= 64). */
void fy_addr_format(const fy_addr *a, char *buf, size_t cap);
uint16_t fy_addr_port(const fy_addr *a);

/* Non-blocking, close-on-exec listening socket with SO_REUSEADDR.  backlog
 * 0 = SOMAXCONN.  Returns fd or -errno.  *bound (may be NULL) gets the real
 * address (port 0 -> the port picked). */
int fy_sock_listen(const fy_addr *a, int backlog, fy_addr *bound);
/* accept4 non-blocking + cloexec; returns fd, -EAGAIN, or -errno. */
int fy_sock_accept(int lfd, fy_addr *peer);
/* Blocking connect with a timeout in ms (0 = none); the returned fd is
 * blocking, TCP_NODELAY set.  Returns fd or -errno (-ETIMEDOUT). */
int fy_sock_connect(const fy_addr *a, int timeout_ms);
/* fy_sock_connect to a[0], a[1], ... in order until one connects (each
 * within timeout_ms); *used (may be NULL) gets its index.  Returns fd, or
 * the last address's -errno. */
int fy_sock_connect_any(const fy_addr *a, size_t n, int timeout_ms, size_t *used);
/* Start a non-blocking connect without waiting (for many connects in
 * flight, as the swarm's storm does): returns a non-blocking fd with the
 * connect in progress (TCP_NODELAY set), or -errno.  Wait for FY writability,
 * then fy_sock_connect_result(). */
int fy_sock_connect_start(const fy_addr *a);
/* 0 once a started connect succeeded, else -errno (SO_ERROR). */
int fy_sock_connect_result(int fd);
int fy_sock_set_nonblock(int fd, int on);
int fy_sock_set_nodelay(int fd);
/* Socket buffer sizes (bytes; 0 = leave). */
int fy_sock_set_bufs(int fd, int sndbuf, int rcvbuf);

/* TCP keepalive for a peer that may vanish without a reset (power loss, a
 * dropped route): SO_KEEPALIVE with TCP_KEEPIDLE idle_s, TCP_KEEPINTVL
 * intvl_s, TCP_KEEPCNT cnt, and TCP_USER_TIMEOUT user_ms (0 = leave), which
 * bounds how long sent data may stay unacknowledged -- keepalive alone
 * never fires while the send queue is not empty.  Any thread, any TCP fd.
 * 0 or -errno (the options set before the failing one stay set). */
int fy_sock_set_keepalive(int fd, int idle_s, int intvl_s, int cnt, unsigned user_ms);

/* Bytes written to a TCP socket that its peer has not acknowledged yet,
 * sent or not (SIOCOUTQ).  Whoever owns fd.  Count or -errno. */
ssize_t fy_sock_unacked(int fd);

/* The peer closed or reset its end (FIN or RST seen), whether or not bytes
 * it sent before that are still unread: a sender killed while the relay
 * was not reading its socket.  Whoever owns fd; never blocks. */
bool fy_sock_peer_gone(int fd);

/* One recv()/writev() on a non-blocking socket: returns bytes (> 0), 0 on
 * orderly close (recv only), -EAGAIN, or -errno.  EINTR is retried. */
ssize_t fy_sock_recv(int fd, void *buf, size_t n);
/* recv(MSG_PEEK): look at what the peer sent without taking it (the
 * relay tells a TLS ClientHello from a plain Ferry frame).  Same returns. */
ssize_t fy_sock_peek(int fd, void *buf, size_t n);
/* SO_RCVTIMEO and SO_SNDTIMEO on a blocking socket (0 = none): a blocked
 * read or write then fails with -EAGAIN after ms.  0 or -errno. */
int fy_sock_set_timeout(int fd, int ms);
/* Read and drop what the peer sent, at most reads recv() calls of 4 KiB:
 * before a close, so close() does not reset the connection under the last
 * frames we wrote.  Returns -EAGAIN (nothing more for now), 0 (the peer
 * closed, or an error), or 1 (reads were used up). */
int fy_sock_drain(int fd, unsigned reads);
ssize_t fy_sock_writev(int fd, const struct iovec *iov, int iovcnt);
/* One readv() on a non-blocking socket: bytes (> 0), 0 at orderly close,
 * -EAGAIN, or -errno.  EINTR is retried. */
ssize_t fy_sock_readv(int fd, const struct iovec *iov, int iovcnt);

/* Half-close the sending side (after a final error or bye frame, so the
 * peer reads it before EOF instead of a reset).  0 or -errno. */
int fy_sock_shutdown_wr(int fd);

/* Blocking helpers for clients: write all / read exactly n bytes.
 * Return 0, -EPIPE/-ECONNRESET/... , or -ENODATA (read: EOF before n). */
int fy_sock_write_all(int fd, const void *p, size_t n);
int fy_sock_writev_all(int fd, struct iovec *iov, int iovcnt);
/* Advance *iov / *iovcnt past n bytes written (a partial write), adjusting
 * the first iovec left; the iovecs are the caller's scratch copy. */
void fy_sock_iov_advance(struct iovec **iov, int *iovcnt, size_t n);
int fy_sock_read_full(int fd, void *p, size_t n);

#endif
