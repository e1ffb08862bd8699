/*
 * conn.h - one blocking client connection to a relay: connect, hello and
 * welcome, then frames in both directions.
 *
 * Reads go through a large buffer and the protocol's incremental decoder,
 * which checks every header and payload CRC, so callers only ever see
 * whole, checked frames.  Pings are answered here.  An error frame from the
 * relay becomes a negative FY_E* return with the relay's code and text kept
 * for the message (fy_cli_conn_fail).  Writes are writev of header +
 * payload: the payload is never copied.  One thread owns a connection.
 */
#ifndef FY_CLI_CONN_H
#define FY_CLI_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cli/cancel.h"
#include "ferry/proto.h"
#include "ferry/tls.h"

typedef struct fy_cli_conn fy_cli_conn;

/* How to reach the relay over TLS (ferry --tls): ctx NULL = plaintext. */
typedef struct fy_cli_tls {
    fy_tls *ctx;      /* client settings: the CAs (--ca), our certificate */
    const char *name; /* expected in the relay's certificate; NULL: --server's host */
} fy_cli_tls;

/* Connect to server ("HOST:PORT", "[v6]:PORT"; HOST a name, looked up
 * here, or an IP), trying each address of the name in turn, with a connect
 * timeout each.  Always sets *out (free it with fy_cli_conn_close), so
 * fy_cli_conn_fail can describe a failure.  Returns 0, -EINVAL (address
 * syntax), -ENXIO (the name did not resolve), or -errno from the last
 * connect. */
int fy_cli_conn_open(const char *server, fy_cli_cancel *cancel, fy_cli_conn **out);
/* The same with a connect timeout of timeout_ms (> 0); -ETIMEDOUT when it
 * passes.  fy_cli_conn_open uses 5 s.  With tls (NULL or ctx NULL: plain)
 * the TLS handshake follows within the same timeout: -FY_ETLS when it
 * fails (fy_cli_conn_fail says why). */
int fy_cli_conn_open_timeout(const char *server, int timeout_ms, const fy_cli_tls *tls,
                             fy_cli_cancel *cancel, fy_cli_conn **out);

/* Send hello and wait (at most timeout_ms) for welcome, which is copied to
 * *w.  Returns 0, -FY_E* (the relay's error frame, or a protocol error),
 * -EPROTONOSUPPORT (the first bytes back were not a Ferry frame: not a
 * relay), or -errno (-ENODATA: the peer closed; -ETIMEDOUT: no answer). */
int fy_cli_conn_hello(fy_cli_conn *k, const fy_hello *h, int timeout_ms, fy_welcome *w);
/* The welcome after a hello (timeout_ms < 0: no limit).  As
 * fy_cli_conn_hello, and -FY_ENOCHAN when the relay said its channel does
 * not exist yet (a hello with FY_HELLO_F_WAIT): call again to wait for
 * the welcome that comes once a sender has created it. */
int fy_cli_conn_welcome(fy_cli_conn *k, int timeout_ms, fy_welcome *w);

/* The next frame other than ping (answered) and pong (ignored).  Blocks;
 * with poll_only, returns 0 at once when no whole frame is buffered or
 * readable.  Returns 1 with *f set (valid until the next call), -FY_E*
 * (an error frame, or the decoder's verdict on a bad frame), -ENODATA on
 * EOF, -EINTR when a stop was requested, or -errno. */
int fy_cli_conn_next(fy_cli_conn *k, fy_frame *f, bool poll_only);

/* Send one frame (type, seq, payload), header + payload in one writev.
 * Returns 0, -EINTR when a stop was requested, or -errno. */
int fy_cli_conn_send(fy_cli_conn *k, uint8_t type, uint64_t seq, const void *p, size_t n);

/* Send prepared iovecs (header and payload pairs); iov is consumed.  Same
 * returns as fy_cli_conn_send. */
int fy_cli_conn_sendv(fy_cli_conn *k, struct iovec *iov, int iovcnt);

/* Fill a frame header for this connection (channel id from welcome) and
 * seal it over p[0..n) into out.  For callers batching their own writev. */
void fy_cli_conn_seal(fy_cli_conn *k, uint8_t type, uint64_t seq, const void *p, size_t n,
                      uint8_t out[FY_FRAME_HDR_SIZE]);

/* After a failure rc of a call on k during `what` ("connect", "send",
 * ...): if the relay sent an error frame not yet read, read it (briefly);
 * log one clear line and return the exit code (exit.h). */
int fy_cli_conn_fail(fy_cli_conn *k, int rc, const char *what);

/* Did the relay send an error frame (so a -FY_E* return is its verdict on
 * us, not the decoder's on its bytes)? */
bool fy_cli_conn_relay_error(const fy_cli_conn *k);

/* The text of the relay's error frame ("" when none came). */
const char *fy_cli_conn_error_text(const fy_cli_conn *k);

/* The server address as given, for messages. */
const char *fy_cli_conn_server(const fy_cli_conn *k);

/* Send bye when `bye` (best effort), close, free.  NULL is allowed. */
void fy_cli_conn_close(fy_cli_conn *k, bool bye);

#endif
