/*
 * link.h - one non-blocking client connection to a relay: connect, the
 * hello/welcome handshake, a small queue of control frames, and frames
 * decoded from whatever pieces recv() hands over.
 *
 * A link is plumbing, not a loop.  It never waits: it owns no epoll set,
 * no thread and no timer, so the same code serves the swarm's worker
 * threads (which own an epoll set each) and an actor that is told about
 * readiness by messages.  The caller registers fy_link_fd() wherever it
 * waits, and calls in when the socket is ready: fy_link_connected() once
 * a started connect is writable, fy_link_flush() when writable,
 * fy_link_recv() and then fy_link_next() until it returns 0 when readable.
 * "Would block" is always an answer (-EAGAIN or 0), never a wait.
 *
 * Stream frames sent by the caller (a sender's file data) do not pass
 * through the link: the caller writes them to fy_link_fd() itself, with
 * no copy, after fy_link_flush() returned 1 so control frames go first.
 *
 * No allocation on the data path: the decoder is allocated once per
 * connection, received bytes are decoded in the caller's buffer (frames
 * wholly inside it are returned in place), and control frames are sealed
 * into a fixed array inside the link.
 *
 * The struct is visible so a caller can embed links in its own
 * per-connection objects (the swarm keeps thousands in arrays); its
 * fields are this module's, read them through the functions.  One link,
 * one thread at a time: whoever owns the connection.
 */
#ifndef FY_LINK_H
#define FY_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ferry/conn.h"
#include "ferry/proto.h"
#include "ferry/sock.h"

/* Control bytes a link can hold unwritten: a hello with the longest
 * channel name and token (558 bytes) plus a bye, ack or small pong. */
#define FY_LINK_CTL_CAP 640u

enum fy_link_state {
    FY_LINK_CLOSED = 0,  /* no socket */
    FY_LINK_CONNECTING,  /* connect in flight: wait until writable */
    FY_LINK_TLS,         /* connected, TLS handshake in flight: any readiness drives it */
    FY_LINK_HELLO,       /* connected, hello queued or sent, no welcome yet */
    FY_LINK_OPEN         /* welcomed, or no handshake asked for: frames flow */
};

typedef struct fy_link {
    fy_conn conn;           /* the socket, and its TLS state when fy_link_tls was called */
    uint8_t state;          /* enum fy_link_state */
    bool hello;             /* a hello was queued: wait for the welcome */
    int err;                /* first decode or handshake error; sticky */
    fy_dec *dec;
    const uint8_t *in;      /* last fy_link_recv's bytes (caller's buffer) */
    size_t in_len, in_off;  /* ... and how far fy_link_next has taken them */
    size_t ctl_len, ctl_off;
    fy_welcome welcome;     /* valid in FY_LINK_OPEN after a handshake */
    uint8_t ctl[FY_LINK_CTL_CAP];
} fy_link;

/* A closed link (fd -1).  Call once before any other fy_link_* call;
 * fy_link_close() brings it back to this state. */
void fy_link_init(fy_link *l);

/* Start a non-blocking connect to a, with a decoder that accepts payloads
 * up to max_payload.  Returns the socket (register it for writability and
 * reading; the link keeps it) or -errno (-ECONNREFUSED may come at once
 * on loopback); on failure the link stays closed.  The link must be
 * closed. */
int fy_link_connect(fy_link *l, const fy_addr *a, size_t max_payload);

/* Speak TLS on this link (call right after fy_link_connect): once the
 * connect succeeds the handshake runs inside fy_link_flush and
 * fy_link_recv (state FY_LINK_TLS, which wants readiness of either kind),
 * verifying the relay's certificate against t and name (conn.h).  0,
 * -ENOMEM or -FY_ETLS.  A handshake failure comes back from flush or recv
 * as -FY_ETLS; fy_link_tls_error says why. */
int fy_link_tls(fy_link *l, fy_tls *t, const char *name);
/* Why the TLS handshake or a record failed ("" when nothing to say). */
static inline const char *fy_link_tls_error(const fy_link *l)
{
    return fy_conn_tls_error(&l->conn);
}
/* The link's connection, for a caller that writes stream frames or reads
 * the stream itself (fy_conn_writev / fy_conn_readv, never the fd). */
static inline fy_conn *fy_link_conn(fy_link *l)
{
    return &l->conn;
}

/* Adopt fd, already connected and non-blocking, with no handshake: the
 * link is FY_LINK_OPEN at once (the swarm's p2p links).  0 or -errno
 * (-EINVAL, -ENOMEM); the link owns fd only on success. */
int fy_link_attach(fy_link *l, int fd, size_t max_payload);

/* After a started connect reported writable (or error / hang-up): 0 when
 * it succeeded -- the link moves to FY_LINK_HELLO if a hello is queued,
 * else to FY_LINK_OPEN -- or -errno (-ECONNREFUSED, ...; the caller
 * closes).  0 in any state other than FY_LINK_CONNECTING. */
int fy_link_connected(fy_link *l);

/* Queue a hello frame for h and expect a welcome before any stream frame.
 * Call while connecting or open.  0, or an encode error (-FY_ENAME,
 * -EINVAL), or -ENOBUFS when the queue is full. */
int fy_link_hello(fy_link *l, const fy_hello *h);

/* Queue one sealed control frame (bye, ack, pong...) with payload pl[0..len).
 * 0 or -ENOBUFS (queue full; nothing queued).  Any state but closed. */
int fy_link_ctl(fy_link *l, uint8_t type, uint32_t channel, uint64_t seq, const void *pl,
                size_t len);

/* Write queued control bytes (and a TLS record the connection holds).  1
 * when the queue is empty (now or already), 0 when the socket is full (or
 * still connecting or in the TLS handshake: call again when ready), -errno
 * when the connection broke. */
int fy_link_flush(fy_link *l);

/* Control bytes queued and not yet written. */
static inline size_t fy_link_ctl_pending(const fy_link *l)
{
    return l->ctl_len - l->ctl_off;
}

/* One recv() of up to cap bytes into buf, which becomes the input of
 * fy_link_next().  Returns bytes (> 0), 0 at orderly close, -EAGAIN
 * (nothing there, or still connecting), -EBADF on a closed link, or
 * -errno.  Bytes of the previous
 * recv that fy_link_next() had not taken are dropped, so take them all
 * (or close) first unless the rest of the stream no longer matters.  buf
 * may be shared by many links: frames point into it until the next
 * recv into it. */
ssize_t fy_link_recv(fy_link *l, uint8_t *buf, size_t cap);

/* The next whole frame from the received bytes: 1 with *f filled (valid
 * until the next fy_link_* call on this link or the next recv into the
 * same buffer), 0 when the bytes are used up (recv again), or a negative
 * error after which the link only returns that error (close it):
 *   decoder errors (fy_dec_feed: -FY_EMAGIC, -FY_ECRC, ...);
 *   -FY_EPROTO for a welcome nobody waits for or a stream frame before
 *   the welcome; a welcome payload's decode error (-FY_ETRUNC, ...).
 * A welcome is returned like any frame after the link took it: read it
 * with fy_link_welcome(). */
int fy_link_next(fy_link *l, fy_frame *f);

/* The received bytes fy_link_next() has not taken yet: *len bytes at the
 * returned pointer (NULL, 0 when none), valid until the next recv into
 * the same buffer.  For a caller that takes the stream over after the
 * welcome and reads the socket itself (an edge relay's ingest). */
const uint8_t *fy_link_rest(const fy_link *l, size_t *len);

/* The relay's welcome once the handshake is done, else NULL. */
const fy_welcome *fy_link_welcome(const fy_link *l);

static inline int fy_link_fd(const fy_link *l)
{
    return l->conn.fd;
}

static inline enum fy_link_state fy_link_state(const fy_link *l)
{
    return (enum fy_link_state)l->state;
}

/* Close the socket (which also leaves any epoll set), free the decoder,
 * drop queued and received bytes: the link is as after fy_link_init()
 * and may connect again.  Safe on a closed link. */
void fy_link_close(fy_link *l);

#endif
