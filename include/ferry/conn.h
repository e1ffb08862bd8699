/*
 * conn.h - one connection's byte stream, plain or TLS (fy_conn): the calls
 * actors and clients make instead of fy_sock_recv/readv/writev/sendfile, so
 * none of them knows whether a connection is encrypted.
 *
 * A plain fy_conn is its fd and nothing else: every call is the fy_sock_*
 * call (sendfile(2) for fy_conn_sendfile) and costs what it did before.
 * With TLS attached (fy_conn_tls_start) the calls go through OpenSSL:
 *
 *   kernel TLS   when the kernel took the session keys after the handshake
 *                (SSL_OP_ENABLE_KTLS; fy_conn_ktls_send says so), writes
 *                are plain socket writes of plaintext and fy_conn_sendfile
 *                is SSL_sendfile: the catch-up path stays zero-copy.
 *   user space   otherwise (a kernel without CONFIG_TLS, or a cipher it
 *                cannot offload): SSL_read / SSL_write, and
 *                fy_conn_sendfile preads the file into the connection's
 *                16 KiB record buffer and SSL_writes it.
 *
 * Writes follow the socket's rules, with one addition.  A write returns
 * the bytes the connection took (> 0), -EAGAIN or -errno, and the caller
 * advances by the count, as with writev(2).  Under TLS a taken record may
 * still sit in the connection (OpenSSL wanted the socket writable again):
 * it goes out with the next write, or with fy_conn_flush(), which an owner
 * whose queue is empty calls when the socket turns writable.  So an owner
 * never has to offer the same bytes twice, and may write other bytes next
 * (a control frame between stream frames) without breaking a record.
 *
 * Readiness: a TLS read may need the socket writable and a TLS write may
 * need it readable (handshake, key updates), and both come back as -EAGAIN.
 * fy_conn_io_bits() widens a readiness message's bits accordingly, so an
 * owner that retries reads on FY_IO_READ and writes on FY_IO_WRITE retries
 * both on either under TLS.  Reads must go on until -EAGAIN as on a plain
 * edge-triggered socket: TLS may hold decrypted bytes that no new
 * readiness will announce (fy_conn_pending says so for a blocking client
 * about to poll).
 *
 * One owner per connection (the actor or thread that has it), no locking.
 * OpenSSL writes to the socket with write(2): a program that uses TLS must
 * ignore SIGPIPE (fy_tls_*_new do that for the process).
 */
#ifndef FERRY_CONN_H
#define FERRY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct fy_tls fy_tls;                 /* settings shared by many connections (tls.h) */
typedef struct fy__tls_conn fy__tls_conn;     /* one connection's TLS state (tls.c) */

typedef struct fy_conn {
    int fd;            /* -1: none */
    fy__tls_conn *tls; /* NULL: plain */
} fy_conn;

/* A plain connection on fd (which may be -1).  No allocation. */
static inline fy_conn fy_conn_plain(int fd)
{
    return (fy_conn){.fd = fd, .tls = NULL};
}

static inline bool fy_conn_is_tls(const fy_conn *c)
{
    return c->tls != NULL;
}

/* Attach TLS to c's socket (connected; blocking or not) with settings t:
 * the server side when t is a server context, else the client side, which
 * verifies the server's certificate against t's CAs and against name (a
 * DNS name or an IP address; NULL or "" skips the name check -- only
 * fy_tls_client_new with verify off allows that).  Nothing is sent until
 * fy_conn_handshake.  0, -ENOMEM or -FY_ETLS. */
int fy_conn_tls_start(fy_conn *c, fy_tls *t, const char *name);

/* Drive the TLS handshake: 0 once done (at once for a plain connection),
 * -EAGAIN (call again on readiness, either kind), -FY_ETLS (the peer's
 * certificate or the negotiation failed: fy_conn_tls_error says why), 0-byte
 * close or a socket error as -ECONNRESET / -errno. */
int fy_conn_handshake(fy_conn *c);

/* The server side of a listener that speaks TLS, step by step on
 * readiness: peek at the client's first byte; a TLS ClientHello attaches
 * TLS with t and drives the handshake.  0 once done, -EAGAIN (call again
 * on readiness), 1 when the client speaks plaintext Ferry instead (c is
 * untouched: answer it in plaintext), -ECONNRESET when it closed first,
 * or the errors of fy_conn_tls_start / fy_conn_handshake. */
int fy_conn_tls_accept(fy_conn *c, fy_tls *t);

/* One read: bytes (> 0), 0 at the peer's orderly close, -EAGAIN or -errno
 * (-FY_ETLS for a bad record or an alert).  EINTR is retried. */
ssize_t fy_conn_recv(fy_conn *c, void *buf, size_t n);
/* The same into several buffers (filled in order). */
ssize_t fy_conn_readv(fy_conn *c, const struct iovec *iov, int iovcnt);
/* Bytes taken (> 0), -EAGAIN (nothing taken) or -errno; see the file
 * comment for what "taken" means under TLS.  No SIGPIPE (plain). */
ssize_t fy_conn_writev(fy_conn *c, const struct iovec *iov, int iovcnt);
/* Send what a TLS write left in the connection: 0 when nothing is left
 * (always, plain), -EAGAIN or -errno. */
int fy_conn_flush(fy_conn *c);
/* Send n bytes of in_fd from offset off: sendfile(2), SSL_sendfile under
 * kernel TLS, else pread + SSL_write of one record.  Bytes taken (> 0),
 * -EAGAIN, 0 when in_fd has nothing at off, or -errno. */
ssize_t fy_conn_sendfile(fy_conn *c, int in_fd, off_t off, size_t n);
/* Read and drop at most reads chunks of what the peer sent; returns as
 * fy_sock_drain (-EAGAIN, 0 at close or error, 1 when reads ran out). */
int fy_conn_drain(fy_conn *c, unsigned reads);
/* Half-close the sending side: under TLS a close_notify first (best
 * effort), then shutdown(SHUT_WR).  0 or -errno. */
int fy_conn_shutdown_wr(fy_conn *c);
/* Free the TLS state and close the fd (if any); c becomes plain, fd -1. */
void fy_conn_close(fy_conn *c);

/* Decrypted or received-but-undecoded bytes held inside the connection
 * (always false, plain): a blocking reader checks this before poll(). */
bool fy_conn_pending(const fy_conn *c);

/* A readiness message's FY_IO_* bits as the owner should act on them:
 * under TLS any readiness retries both directions (see above). */
uint32_t fy_conn_io_bits(const fy_conn *c, uint32_t bits);

/* Is the kernel doing the TLS record layer for sending (receiving)?  False
 * for a plain connection.  Known once the handshake is done. */
bool fy_conn_ktls_send(const fy_conn *c);
bool fy_conn_ktls_recv(const fy_conn *c);

/* After a -FY_ETLS: one line saying why ("certificate verify failed:
 * unable to get local issuer certificate", "tlsv13 alert certificate
 * required", ...).  "" when there is nothing to say. */
const char *fy_conn_tls_error(const fy_conn *c);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done, "" plain. */
void fy_conn_tls_describe(const fy_conn *c, char *buf, size_t cap);

#endif
