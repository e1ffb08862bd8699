/*
 * session.c - one client connection until it is either a sender or handed
 * to a forwarder (the session actor).
 *
 * The session owns the socket.  It reads, feeds the bytes to fy_dec (which
 * checks lengths and CRCs), and answers hello: it checks the token, asks
 * the registry for the channel and, for a receiver, hands the socket to a
 * new forwarder and ends.  For a sender it asks the channel's file-writer
 * for the sender slot, then reads the socket into the buffers its ingest
 * (actors/ingest.c) names: the ingest checks the stream frames, packs them
 * into pooled fy_bufs and hands the writer one batch per turn, and gives
 * the control frames back to the session, which answers them.
 *
 * When the ingest is out of pool buffers (-FY_EPOOL) the session stops
 * reading and retries on a short timer; when the channel budget is spent
 * (-EAGAIN) it waits for the writer's credit message.  While paused it
 * does not read its socket, so TCP slows the sender down.
 *
 * Any malformed frame or protocol violation ends only this connection:
 * the frames before it are sent to the writer, the client gets an error
 * frame (code = FY_E*, text naming the cause), and the socket is closed
 * after a short linger so the error frame is not lost to a reset.  The
 * sender slot is given back at once, not after the linger.
 *
 * An idle sender is pinged, then cut (fy__idle, docs/architecture.md,
 * "Timeouts"); while the session itself does not read (a spent budget or
 * pool) that clock stands still.  When the same sender connects again, the
 * writer asks this session to give up its slot (FY_RM_TAKEOVER); it does
 * when idle for --takeover-grace or the newcomer names this stream's seq.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sock.h"
#include "ferry/tls.h"
#include "ferry/trace.h"
#include "ingest.h"
#include "net/outq.h"
#include "relay/stats.h"
#include "relay_int.h"

#define RBUF_HELLO (8u << 10)      /* before the role is known */
#define READS_PER_TURN 32          /* then yield to other actors */
#define RETRY_MS 5                 /* pool exhausted: retry after */
#define LINGER_MS 2000
#define HELLO_MS 30000            /* a connection must say hello within this */

enum st { S_TLS, S_HELLO, S_WAIT_CHAN, S_WAIT_ATTACH, S_SENDER, S_LINGER, S_DONE };

typedef struct session {
    const fy__ctx *ctx;
    fy_actor *self;
    fy_conn conn;  /* TLS attached once the client's first byte says ClientHello */
    enum st st;
    char peer[64];
    fy_dec *dec;   /* until hello */
    uint8_t *rbuf; /* until hello; then the ingest has its own */
    size_t rcap, rlen, roff; /* unprocessed input: rbuf[roff..rlen) */
    fy_outq out;   /* control frames for the client */
    fy_hello hello;
    const fy__chan *chan;
    bool attach_sent, shutting, paused, timer_armed, cont_pending, wr_shut;
    fy_ingest *ing; /* a sender's frames, from attach on */
    bool has_part;  /* the channel had a file in progress at attach: part */
    fy__part_info part;
    int end_code; /* FY_E* that ended the connection, 0 = none */
    fy__idle idle;       /* a sender: its last byte, and our ping */
} session;

static void drive(session *s);

/* ---- output ---------------------------------------------------------------- */

static int send_ctl(session *s, uint8_t type, uint64_t seq, const uint8_t *p, size_t n)
{
    uint8_t fr[FY_FRAME_HDR_SIZE + FY_CTL_PAYLOAD_MAX + 64];
    int len = fy__ctl_frame(type, s->chan ? s->chan->id : 0, seq, p, n, fr, sizeof fr);
    return len < 0 ? len : fy_outq_push(&s->out, &s->conn, fr, (size_t)len);
}

/* ---- ending ---------------------------------------------------------------- */

/* The connection is over: give back the sender slot, the socket and the
 * acceptor's entry, then stop. */
static void finish(session *s, const char *why)
{
    const fy_ingest_info *in = fy_ingest_info_get(s->ing);

    if (s->st == S_DONE)
        return;
    fy_ingest_stop(s->ing);
    if (s->attach_sent)
        fy_actor_post(s->chan->writer, FY_RM_DETACH, 0, 0, 0, s->self, NULL);
    if (s->conn.fd >= 0) {
        fy_io_del(s->ctx->sched, s->conn.fd);
        fy_conn_close(&s->conn);
    }
    if (why)
        fy_klog(FY_LOG_INFO, "connection closed", "peer=%s reason=\"%s\" frames=%llu bytes=%llu",
                s->peer, why, (unsigned long long)in->frames, (unsigned long long)in->bytes);
    s->st = S_DONE;
    fy_actor_post(s->ctx->acceptor, FY_RM_SESSION_GONE, (uint32_t)s->end_code, in->bytes,
                  in->frames, s->self, NULL);
    fy_actor_stop(s->self);
}

/* Lingering: half-close once the last control frame is out. */
static void maybe_half_close(session *s)
{
    if (s->st == S_LINGER && fy_outq_empty(&s->out) && !s->wr_shut &&
        fy_conn_flush(&s->conn) == 0) {
        (void)fy_conn_shutdown_wr(&s->conn);
        s->wr_shut = true;
    }
}

/* Half-close once the last control frame is out, then read and drop what
 * the client still sends until it closes or the linger timer fires. */
static void linger(session *s)
{
    s->st = S_LINGER;
    maybe_half_close(s);
    fy_timer_after(s->self, LINGER_MS, FY__TM_LINGER);
    drive(s);
}

/* End this connection with an error frame and one log line, msg (fail: a
 * refusal). */
static void fail_as(session *s, int code, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_as(session *s, int code, const char *msg, const char *fmt, ...)
{
    char text[512], q[600];
    uint8_t fr[FY_FRAME_HDR_SIZE + FY_CTL_PAYLOAD_MAX + 64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (code < 0)
        code = -code;
    s->end_code = code;
    fy_ingest_stop(s->ing); /* frames before the bad one are kept */
    /* Nothing more goes to the writer: free the slot now, not after the
     * linger, so the sender's next connection finds it free. */
    if (s->attach_sent) {
        s->attach_sent = false;
        fy_actor_post(s->chan->writer, FY_RM_DETACH, 0, 0, 0, s->self, NULL);
    }
    fy_klog(code == FY_EAUTH || code == FY_EBUSY ? FY_LOG_INFO : FY_LOG_WARN, msg,
            "peer=%s channel=%s err=%s text=%s action=\"error frame, close\"", s->peer,
            s->hello.channel[0] ? s->hello.channel : "-", fy_errname(code),
            fy_klog_q(text, q, sizeof q));
    int n = fy__ctl_error(s->chan ? s->chan->id : 0, code, fr, sizeof fr, "%s", text);
    if (n > 0)
        fy_outq_push(&s->out, &s->conn, fr, (size_t)n);
    linger(s);
}
#define fail(s, code, ...) fail_as(s, code, "connection refused", __VA_ARGS__)

/* The writer could not store the stream (it logged the details once):
 * tell the sender what it can act on.  A full disk has its own code, so a
 * client knows to try again once the relay has room; frames before the
 * failure were stored and acknowledged as usual. */
static void on_store_err(session *s, int err, uint64_t next_seq)
{
    if (err == ENOSPC || err == EDQUOT || err == EFBIG)
        fail(s, FY_ENOSPACE, "relay storage full (%s): stored up to seq %llu; send again "
             "once the relay has room", fy_errname(-err), (unsigned long long)next_seq);
    else
        fail(s, FY_EINTERNAL, "storing the channel's frames failed: %s", fy_strerror(-err));
}

/* ---- frames from a sender -------------------------------------------------- */

/* The ingest refused the stream with rc: the error frame says why. */
static void fail_ingest(session *s, int rc)
{
    char text[400];

    fy_ingest_fault_text(s->ing, text, sizeof text);
    fail(s, rc, "%s", text);
}

/* The ingest's prefix callback: the sender continues the channel's file in
 * progress, so the SHA-256 its file-end is checked against must cover the
 * part stored before, read back from the log up to the end the writer
 * published at attach.  On the session's turn: G stored bytes cost one
 * read and hash of G bytes (docs/protocol.md, "Continuing a file"). */
static int hash_part(void *arg, fy_sha256 *sha)
{
    session *s = arg;
    uint64_t t0 = fy_now_ns(), got = 0;
    int rc = fy_logrd_hash_file(s->chan->dir, s->part.pos, s->part.end, s->part.seq,
                                s->ctx->conf->max_payload, sha, &got);

    if (rc == 0 && got != s->part.got)
        rc = -FY_ECORRUPT;
    fy_klog(rc < 0 ? FY_LOG_ERROR : FY_LOG_INFO, "sender continues a file", "peer=%s channel=%s "
            "name=%s size=%llu stored=%llu rehashed=%llu seconds=%.3f err=%s", s->peer,
            s->chan->name, s->part.name, (unsigned long long)s->part.size,
            (unsigned long long)s->part.got, (unsigned long long)got, (double)(fy_now_ns() - t0) / 1e9,
            rc < 0 ? fy_errname(rc) : "none");
    return rc;
}

/* The ingest's output: one batch for the channel's writer. */
static void to_writer(void *arg, fy__batch *b)
{
    session *s = arg;

    fy_actor_post(s->chan->writer, FY_RM_BATCH, 0, 0, 0, b, NULL);
}

static void on_hello(session *s, const fy_frame *f)
{
    fy_hello *h = &s->hello;
    int rc = fy_hello_decode(f->payload, f->hdr.len, h);

    if (rc < 0) {
        fail(s, rc, "hello: %s", fy_strerror(rc));
        return;
    }
    bool sender = h->role == FY_ROLE_SENDER;
    if (!sender && h->role != FY_ROLE_RECEIVER) {
        fail(s, FY_EPAYLOAD, "hello: unknown role %u", h->role);
        return;
    }
    fy_klog(FY_LOG_INFO, "hello", "peer=%s role=%s channel=%s mode=%u resume_from=%llu", s->peer,
            sender ? "sender" : "receiver", h->channel, h->mode,
            (unsigned long long)h->resume_from);
    if (!fy_auth_allows(fy__auth(s->ctx), h->token, sender ? FY_AUTH_PUBLISH : FY_AUTH_SUBSCRIBE,
                        h->channel)) {
        fail(s, FY_EAUTH, "token may not %s channel %s", sender ? "publish to" : "subscribe to",
             h->channel);
        return;
    }
    fy__chan_req *r = calloc(1, sizeof *r);
    if (!r) {
        fail(s, FY_EINTERNAL, "out of memory");
        return;
    }
    r->reply = fy_actor_ref(s->self);
    snprintf(r->name, sizeof r->name, "%s", h->channel);
    s->st = S_WAIT_CHAN;
    fy_actor_post(s->ctx->registry, FY_RM_CHAN_GET, 0, 0, 0, r, NULL);
}

/* A control frame from a sender (whole, CRC-checked).  Returns 0 to go on,
 * 1 to stop consuming. */
static int on_ctl(session *s, const fy_frame *f)
{
    uint8_t t = f->hdr.type;

    switch (t) {
    case FY_FT_PING:
        if (send_ctl(s, FY_FT_PONG, f->hdr.seq, f->payload, f->hdr.len) < 0) {
            fail(s, FY_EPROTO, "client does not read its control frames");
            return 1;
        }
        return 0;
    case FY_FT_PONG: /* the answer to our ping: its bytes already count as activity */
        return 0;
    case FY_FT_BYE: /* inside a file: the writer says so when we detach */
        fy_ingest_flush(s->ing);
        finish(s, "bye");
        return 1;
    case FY_FT_ERROR:
        fy__ctl_log_peer_error(s->peer, "client sent error", f);
        finish(s, "client error");
        return 1;
    default:
        fail(s, FY_EPROTO, "unexpected %s frame from a sender", fy_frame_type_name(t));
        return 1;
    }
}

/* ---- the read loop --------------------------------------------------------- */

/* Before the role is known: feed the bytes to fy_dec until hello.  Returns
 * 0 when all of the input is used, 1 when the session must stop reading. */
static int consume_hello(session *s)
{
    while (s->roff < s->rlen) {
        size_t used = 0;
        fy_frame f;
        int rc = fy_dec_feed(s->dec, s->rbuf + s->roff, s->rlen - s->roff, &used, &f);
        s->roff += used;
        if (rc == 0)
            break;
        if (rc < 0)
            fail(s, rc, "bad frame after seq 0: %s", fy_strerror(rc));
        else if (f.hdr.type != FY_FT_HELLO)
            fail(s, FY_EPROTO, "%s before hello", fy_frame_type_name(f.hdr.type));
        else
            on_hello(s, &f);
        return 1;
    }
    s->roff = s->rlen = 0;
    return 0;
}

/* Let the ingest process a sender's input and act on what it asks for.
 * Returns 0 when it needs more input, 1 when the session must stop
 * reading (paused, or the connection ended). */
static int consume_sender(session *s)
{
    fy_frame f;
    int rc;

    while ((rc = fy_ingest_next(s->ing, &f)) == 1)
        if (on_ctl(s, &f))
            return 1;
    if (rc == 0)
        return 0;
    if (rc == -EAGAIN) {
        s->paused = true; /* a credit message resumes */
    } else if (rc == -FY_EPOOL) {
        s->paused = true;
        if (!s->timer_armed) {
            s->timer_armed = true;
            fy_timer_after(s->self, RETRY_MS, FY__TM_RETRY);
        }
    } else {
        fail_ingest(s, rc);
    }
    return 1;
}

/* One read for a sender, where the ingest wants it.  Bytes read, 0 at EOF,
 * -EAGAIN or -errno. */
static ssize_t read_sender(session *s)
{
    struct iovec iov[2];
    ssize_t n = fy_conn_readv(&s->conn, iov, fy_ingest_iov(s->ing, iov));

    if (n > 0)
        fy_ingest_got(s->ing, (size_t)n);
    return n;
}

static void drive(session *s)
{
    int reads = 0;

    if (s->st == S_LINGER) {
        if (fy_conn_drain(&s->conn, 64) == 0)
            finish(s, NULL);
        return;
    }
    if ((s->st != S_HELLO && s->st != S_SENDER) || s->paused || s->shutting)
        return;
    for (;;) {
        if (s->st == S_SENDER ? consume_sender(s) : consume_hello(s))
            break;
        if (reads++ == READS_PER_TURN) {
            if (!s->cont_pending) {
                s->cont_pending = true;
                fy_actor_post(s->self, FY_RM_CONTINUE, 0, 0, 0, NULL, NULL);
            }
            break;
        }
        bool sender = s->st == S_SENDER;
        ssize_t n = sender ? read_sender(s) : fy_conn_recv(&s->conn, s->rbuf, s->rcap);
        if (n == -EAGAIN)
            break;
        if (n <= 0) { /* inside a file: the writer says so when we detach */
            fy_ingest_flush(s->ing);
            finish(s, n == 0 ? "peer closed" : fy_strerror((int)n));
            return;
        }
        fy_trace_emit(FY_TR_BYTES, fy_actor_id(s->self), (uint64_t)n, 0);
        fy__idle_alive(&s->idle, fy_now_ns());
        if (!sender) {
            s->roff = 0;
            s->rlen = (size_t)n;
        }
    }
    /* One batch per turn (or per 1 MiB): fewer, bigger messages. */
    if (s->st == S_SENDER || s->st == S_DONE)
        fy_ingest_flush(s->ing);
}

/* ---- TLS: telling TLS from plaintext, and the handshake ---------------------- */

/* One log line for a connection that never got through TLS, then close.
 * (No error frame: a TLS peer could not read it; a plaintext one got it
 * from tls_step.) */
static void tls_fail(session *s, int rc, const char *why)
{
    const char *detail = fy_conn_tls_error(&s->conn);
    char q[300];

    s->end_code = FY_ETLS;
    fy_klog(FY_LOG_WARN, "TLS handshake failed", "peer=%s err=%s reason=%s action=close",
            s->peer, fy_errname(rc), fy_klog_q(detail[0] ? detail : why, q, sizeof q));
    /* OpenSSL sent its alert: FIN after it, and take what the client already
     * sent, so close() does not reset the connection under the alert. */
    (void)fy_sock_shutdown_wr(s->conn.fd);
    (void)fy_sock_drain(s->conn.fd, 4);
    finish(s, NULL);
}

/* The listener speaks TLS.  A client's first byte tells a ClientHello from
 * a plaintext Ferry frame: the latter gets a plaintext error frame that
 * says to use TLS (a client can show that; it could not show a TLS alert),
 * then the linger.  The handshake is driven by readiness of either kind
 * and bounded by the hello timer armed at creation. */
static void tls_step(session *s)
{
    FY__OWNER(s->self);
    if (!s->conn.tls) {
        uint8_t b;
        ssize_t n = fy_sock_peek(s->conn.fd, &b, 1);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            finish(s, n == 0 ? "peer closed before TLS" : fy_strerror((int)n));
            return;
        }
        if (!fy_tls_looks_like_hello(b)) {
            s->st = S_HELLO; /* the error frame goes out in plaintext */
            fail_as(s, FY_ETLSREQ, "plaintext client on a TLS listener", "this relay requires "
                    "TLS: connect with --tls (and --ca FILE to verify its certificate)");
            return;
        }
        int rc = fy_conn_tls_start(&s->conn, s->ctx->tls, NULL);
        if (rc < 0) {
            tls_fail(s, rc, "cannot set up TLS");
            return;
        }
    }
    int rc = fy_conn_handshake(&s->conn);
    if (rc == -EAGAIN)
        return;
    if (rc < 0) {
        tls_fail(s, rc, fy_strerror(rc));
        return;
    }
    char d[96];
    fy_conn_tls_describe(&s->conn, d, sizeof d);
    fy_klog(FY_LOG_DEBUG, "TLS established", "peer=%s tls=\"%s\" ktls_send=%d ktls_recv=%d",
            s->peer, d, fy_conn_ktls_send(&s->conn), fy_conn_ktls_recv(&s->conn));
    s->st = S_HELLO;
    drive(s); /* the hello may be in the same read */
}

/* ---- replies from the registry and the writer ------------------------------ */

static void handoff(session *s)
{
    fy__fwd_init in = {
        .ctx = s->ctx, .chan = s->chan, .conn = s->conn, .mode = s->hello.mode,
        .resume_from = s->hello.resume_from,
        .pending = s->rbuf + s->roff, .npending = s->rlen - s->roff,
    };
    fy_actor *fwd;

    snprintf(in.peer, sizeof in.peer, "%s", s->peer);
    fy_io_del(s->ctx->sched, s->conn.fd);
    int rc = fy__forwarder_new(&in, &fwd);
    if (rc < 0) {
        fy_io_add(s->self, s->conn.fd, FY_IO_READ | FY_IO_WRITE, 0);
        fail(s, FY_EINTERNAL, "cannot start a forwarder: %s", fy_strerror(rc));
        return;
    }
    s->conn = fy_conn_plain(-1); /* the forwarder owns it now, TLS state and all */
    /* Subscribe on the forwarder's behalf, before this session reports gone,
     * so the writer hears of it before any shutdown can reach it. */
    fy_actor_post(s->chan->writer, FY_RM_SUBSCRIBE, 0, 0, 0, fwd, NULL);
    finish(s, NULL);
}

static void on_chan(session *s, fy_msg *m)
{
    if (s->st != S_WAIT_CHAN)
        return;
    if (m->u32 == FY_ELIMIT) {
        fail(s, FY_ELIMIT, "channel %s refused: max-channels %llu reached", s->hello.channel,
             (unsigned long long)s->ctx->conf->max_channels);
        return;
    }
    if (m->u32) {
        fail(s, (int)m->u32, "channel %s unavailable: %s", s->hello.channel, fy_strerror((int)m->u32));
        return;
    }
    s->chan = m->ptr;
    if (s->hello.role == FY_ROLE_RECEIVER) {
        handoff(s);
        return;
    }
    fy__attach_req *r = calloc(1, sizeof *r);
    if (!r) {
        fail(s, FY_EINTERNAL, "out of memory");
        return;
    }
    r->session = fy_actor_ref(s->self);
    r->resume_from = s->hello.resume_from;
    memcpy(r->token, s->hello.token, sizeof r->token);
    s->st = S_WAIT_ATTACH;
    s->attach_sent = true;
    fy_actor_post(s->chan->writer, FY_RM_ATTACH, 0, 0, 0, r, NULL);
}

/* ---- idle senders and takeover ---------------------------------------------- */

static void on_idle_tick(session *s)
{
    if (s->st != S_SENDER)
        return; /* ending: no more ticks */
    uint64_t now = fy_now_ns(), t = s->ctx->conf->idle_timeout;
    if (s->paused || s->shutting)
        fy__idle_alive(&s->idle, now); /* we are not reading: not the sender's silence */
    enum fy__idle_do act = fy__idle_check(&s->idle, now, t);
    if (act == FY__IDLE_CUT) {
        fail_as(s, FY_ETIMEOUT, "idle timeout", "peer idle too long: no bytes from the sender "
                "for %llu ms, no pong to our ping (idle-timeout %llu s)",
                (unsigned long long)((now - s->idle.alive_ns) / 1000000), (unsigned long long)t);
        return;
    }
    uint8_t p[8];
    memcpy(p, &now, sizeof p); /* opaque to the peer; echoed in the pong */
    if (act == FY__IDLE_PING && send_ctl(s, FY_FT_PING, 0, p, sizeof p) < 0) {
        fail(s, FY_EPROTO, "client does not read its control frames");
        return;
    }
    fy_timer_after(s->self, fy__idle_tick_ms(t), FY__TM_IDLE);
}

/* The writer has a new connection with this sender's token waiting for
 * the slot.  Give the slot up when this one has been silent for the grace
 * or the newcomer resumes exactly where this stream stands (it knows what
 * we stored: it is this sender again); else keep it and the newcomer gets
 * FY_EBUSY.  Not a sender any more: our DETACH is already on its way. */
static void on_takeover(session *s, uint64_t resume_from)
{
    if (s->st != S_SENDER)
        return;
    uint64_t idle = fy_now_ns() - s->idle.alive_ns;
    uint64_t next = fy_ingest_info_get(s->ing)->next_seq;
    bool stale = !s->paused && idle >= s->ctx->conf->takeover_grace * 1000000000ull;
    if (s->shutting || (!stale && (resume_from == 0 || resume_from != next))) {
        fy_actor_post(s->chan->writer, FY_RM_KEEP, 0, 0, 0, s->self, NULL);
        return;
    }
    fail_as(s, FY_EBUSY, "sender replaced", "replaced by a new connection of the same sender "
            "(this one idle %llu ms; the new one resumes at seq %llu, the channel is at %llu)",
            (unsigned long long)(idle / 1000000), (unsigned long long)resume_from,
            (unsigned long long)next);
}

static void on_attached(session *s, fy_msg *m)
{
    if (s->st != S_WAIT_ATTACH)
        return;
    if (m->u32) { /* FY_EBUSY with first seq UINT64_MAX: an edge's mirror */
        fail(s, (int)m->u32, "channel %s %s%s", s->chan->name, m->u64[1] == UINT64_MAX ?
             "is mirrored from upstream " : "already has a sender",
             m->u64[1] == UINT64_MAX ? s->ctx->conf->upstream : "");
        return;
    }
    fy_welcome w = {.channel = s->chan->id, .next_seq = m->u64[0], .first_seq = m->u64[1],
                    .max_payload = (uint32_t)s->ctx->conf->max_payload,
                    .ext = (s->hello.flags & FY_HELLO_F_RESUME) != 0};
    if (m->buf && fy_buf_len(m->buf) == sizeof s->part) {
        memcpy(&s->part, fy_buf_cdata(m->buf), sizeof s->part);
        s->has_part = true;
    }
    uint8_t fr[FY_FRAME_HDR_SIZE + FY_WELCOME_MAX];
    int n = fy__ctl_welcome(&w, s->has_part ? &s->part : NULL, fr, sizeof fr);
    if (n < 0 || fy_outq_push(&s->out, &s->conn, fr, (size_t)n) < 0) {
        finish(s, "cannot write welcome");
        return;
    }
    /* The bytes that followed hello are the ingest's first input. */
    fy_ingest_conf c = {.pool = s->ctx->pool, .max_payload = s->ctx->conf->max_payload,
                        .budget = s->ctx->conf->channel_budget, .channel = s->chan->id,
                        .next_seq = m->u64[0], .out = to_writer, .arg = s,
                        .in_file = s->has_part, .file_size = s->part.size,
                        .file_got = s->part.got, .prefix = hash_part};
    if (fy_ingest_new(&c, s->rbuf + s->roff, s->rlen - s->roff, &s->ing) < 0) {
        fail(s, FY_EINTERNAL, "out of memory");
        return;
    }
    free(s->rbuf); /* the hello reader is done */
    s->rbuf = NULL;
    s->rcap = s->rlen = s->roff = 0;
    s->st = S_SENDER;
    fy__idle_alive(&s->idle, fy_now_ns());
    if (s->ctx->conf->idle_timeout)
        fy_timer_after(s->self, fy__idle_tick_ms(s->ctx->conf->idle_timeout), FY__TM_IDLE);
    drive(s);
}

static void maybe_bye_on_shutdown(session *s)
{
    if (!s->shutting || s->st != S_SENDER || fy_ingest_info_get(s->ing)->inflight)
        return;
    send_ctl(s, FY_FT_BYE, 0, NULL, 0);
    finish(s, "relay shutdown");
}

static void on_shutdown(session *s)
{
    s->shutting = true;
    switch (s->st) {
    case S_SENDER:
        fy_ingest_stop(s->ing); /* then wait for the writer to credit everything */
        maybe_bye_on_shutdown(s);
        break;
    case S_DONE:
        break;
    default:
        if (s->st != S_LINGER && s->st != S_TLS)
            send_ctl(s, FY_FT_BYE, 0, NULL, 0);
        finish(s, "relay shutdown");
        break;
    }
}

static void on_stats(session *s, const fy_msg *m)
{
    fy_stats_rec r = {.actor = fy_actor_id(s->self), .kind = FY_KIND_SESSION};
    const fy_ingest_info *in = fy_ingest_info_get(s->ing);

    r.role = s->st == S_HELLO || s->st == S_WAIT_CHAN ? 0 : s->hello.role;
    r.depth = fy_actor_depth(s->self);
    snprintf(r.channel, sizeof r.channel, "%.71s", s->hello.channel);
    snprintf(r.peer, sizeof r.peer, "%s", s->peer);
    r.v[FY_ST_BYTES_IN] = in->bytes;
    r.v[FY_ST_FRAMES_IN] = in->frames;
    r.v[FY_ST_QUEUED_BYTES] = in->inflight;
    fy_stats_answer(s->ctx->pool, s->ctx->metrics, m, &r);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    session *s = state;

    (void)self;
    if (s->st == S_DONE)
        return FY_MSG_DONE;
    switch (m->type) {
    case FY_MSG_IO: {
        uint32_t bits = fy_conn_io_bits(&s->conn, m->u32);
        if (s->st == S_TLS) {
            tls_step(s);
            break;
        }
        if ((bits & FY_IO_WRITE) && fy_outq_flush(&s->out, &s->conn) == 0)
            maybe_half_close(s);
        if (bits & (FY_IO_READ | FY_IO_HUP))
            drive(s);
        break;
    }
    case FY_MSG_TIMER:
        if (m->u64[0] == FY__TM_LINGER) {
            finish(s, NULL);
        } else if (m->u64[0] == FY__TM_HELLO) {
            if (s->st == S_TLS)
                tls_fail(s, -ETIMEDOUT, "no TLS handshake within the hello timeout");
            else if (s->st == S_HELLO)
                fail(s, FY_EPROTO, "no hello within %d ms", HELLO_MS);
        } else if (m->u64[0] == FY__TM_IDLE) {
            on_idle_tick(s);
        } else if (m->u64[0] == FY__TM_RETRY) {
            s->timer_armed = false;
            s->paused = false;
            drive(s);
        }
        break;
    case FY_RM_CONTINUE:
        s->cont_pending = false;
        drive(s);
        break;
    case FY_RM_CHAN:
        on_chan(s, m);
        break;
    case FY_RM_ATTACHED:
        on_attached(s, m);
        break;
    case FY_RM_TAKEOVER:
        on_takeover(s, m->u64[0]);
        break;
    case FY_RM_CREDIT:
        fy_ingest_credit(s->ing, m->u64[0]);
        if (s->paused && !s->timer_armed) {
            s->paused = false;
            drive(s);
        }
        maybe_bye_on_shutdown(s);
        break;
    case FY_RM_ACK: {
        uint8_t fr[FY_FRAME_HDR_SIZE + 16];
        int n = fy__ctl_ack(s->chan->id, m->u64[0], fr, sizeof fr);
        if (n < 0 || fy_outq_push(&s->out, &s->conn, fr, (size_t)n) < 0)
            fail(s, FY_EPROTO, "client does not read its acks");
        break;
    }
    case FY_RM_STORE_ERR:
        on_store_err(s, (int)m->u32, m->u64[0]);
        break;
    case FY_RM_SHUTDOWN:
        on_shutdown(s);
        break;
    case FY_STATS_REQ:
        on_stats(s, m);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    session *s = state;

    fy_conn_close(&s->conn);
    fy_ingest_free(s->ing);
    fy_dec_free(s->dec);
    free(s->rbuf);
    fy_outq_free(&s->out);
    free(s);
}

int fy__session_new(const fy__ctx *ctx, int fd, const char *peer, fy_actor **out)
{
    session *s = calloc(1, sizeof *s);
    int rc = -ENOMEM;

    if (!s)
        return rc;
    s->ctx = ctx;
    s->conn = fy_conn_plain(fd);
    s->st = ctx->tls ? S_TLS : S_HELLO;
    s->rcap = RBUF_HELLO;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = s, .kind = FY_KIND_SESSION,
                       .label = peer};
    if (!(s->rbuf = malloc(s->rcap)) || (rc = fy_dec_new(ctx->conf->max_payload, &s->dec)) < 0 ||
        (rc = fy_actor_new(ctx->sched, &o, &s->self)) < 0) {
        fy_dec_free(s->dec);
        free(s->rbuf);
        free(s);
        return rc;
    }
    /* *out is the creator's reference.  Once the fd is registered the
     * session may run, finish and free its state at once, so nothing here
     * touches s after fy_io_add. */
    fy_actor *self = s->self;
    *out = self;
    fy_timer_after(self, HELLO_MS, FY__TM_HELLO);
    if ((rc = fy_io_add(self, fd, FY_IO_READ | FY_IO_WRITE, 0)) < 0) {
        s->conn.fd = -1; /* not registered: no handler can run before the timer; the caller closes fd */
        fy_actor_stop(self);
        fy_actor_unref(self);
        *out = NULL;
        return rc;
    }
    return 0;
}
