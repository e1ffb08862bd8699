/*
 * session.c - one client connection until it is either a sender or handed
 * to a forwarder (the session actor).
 *
 * The session owns the socket.  It reads, feeds the bytes to fy_dec (which
 * checks lengths and CRCs), and answers hello: it checks the token, asks
 * the registry for the channel and, for a receiver, hands the socket to a
 * new forwarder and ends.  For a sender it asks the channel's file-writer
 * for the sender slot; from then on the session is a sender, whose half of
 * the actor is sender.c (the ingest's wiring, welcome, idle and takeover).
 * A listener that speaks TLS has the handshake done here first.
 *
 * Any malformed frame or protocol violation ends only this connection:
 * the frames before it are sent to the writer, the client gets an error
 * frame (code = FY_E*, text naming the cause), and the socket is closed
 * after a short linger so the error frame is not lost to a reset.  The
 * sender slot is given back at once, not after the linger.
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
#include "relay/stats.h"
#include "relay/tlsfail.h"
#include "msg.h"
#include "session_int.h"

#define RBUF_HELLO (8u << 10)      /* before the role is known */
#define LINGER_MS 2000
#define HELLO_MS 30000            /* a connection must say hello within this */


void fy__session_drive(session *s);

/* ---- output ---------------------------------------------------------------- */

int fy__session_send_ctl(session *s, uint8_t type, uint64_t seq, const uint8_t *p, size_t n)
{
    uint8_t fr[FY_FRAME_HDR_SIZE + FY_CTL_PAYLOAD_MAX + 64];
    int len = fy__ctl_frame(type, s->chan ? s->chan->id : 0, seq, p, n, fr, sizeof fr);
    return len < 0 ? len : fy_outq_push(&s->out, &s->conn, fr, (size_t)len);
}

/* ---- ending ---------------------------------------------------------------- */

/* The connection is over: give back the sender slot, the socket and the
 * acceptor's entry, then stop. */
void fy__session_finish(session *s, const char *why)
{
    const fy_ingest_info *in = fy_ingest_info_get(s->ing);

    if (s->st == S_DONE)
        return;
    fy_ingest_stop(s->ing);
    if (s->attach_sent)
        fy__msg_detach(s->chan->writer, s->self);
    if (s->conn.fd >= 0) {
        fy_io_del(s->ctx->sched, s->conn.fd);
        fy_conn_close(&s->conn);
    }
    if (why)
        fy_klog(FY_LOG_INFO, "connection closed", "peer=%s reason=\"%s\" frames=%llu bytes=%llu",
                s->peer, why, (unsigned long long)in->frames, (unsigned long long)in->bytes);
    s->st = S_DONE;
    fy__msg_session_gone(s->ctx->acceptor, s->self, (uint32_t)s->end_code, in->bytes,
                         in->frames);
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
    fy__session_drive(s);
}

void fy__session_linger(session *s)
{
    linger(s);
}

/* End this connection with an error frame and one log line, msg. */
static void vfail_as(session *s, int code, const char *msg, const char *fmt, va_list ap)
{
    char text[512], q[600];
    uint8_t fr[FY_FRAME_HDR_SIZE + FY_CTL_PAYLOAD_MAX + 64];

    vsnprintf(text, sizeof text, fmt, ap);
    if (code < 0)
        code = -code;
    s->end_code = code;
    fy_ingest_stop(s->ing); /* frames before the bad one are kept */
    /* Nothing more goes to the writer: free the slot now, not after the
     * linger, so the sender's next connection finds it free. */
    if (s->attach_sent) {
        s->attach_sent = false;
        fy__msg_detach(s->chan->writer, s->self);
    }
    bool said_no = code == FY_EAUTH || code == FY_EBUSY || code == FY_EINUSE ||
                   code == FY_ENOCHAN || code == FY_ENOFILE ||
                   code == FY_ENOTLEADER; /* an answer, not a fault */
    fy_klog(said_no ? FY_LOG_INFO : FY_LOG_WARN, msg,
            "peer=%s channel=%s err=%s text=%s action=\"error frame, close\"", s->peer,
            s->hello.channel[0] ? s->hello.channel : "-", fy_errname(code),
            fy_klog_q(text, q, sizeof q));
    int n = fy__ctl_error(s->chan ? s->chan->id : 0, code, fr, sizeof fr, "%s", text);
    if (n > 0)
        fy_outq_push(&s->out, &s->conn, fr, (size_t)n);
    linger(s);
}

void fy__session_fail_as(session *s, int code, const char *msg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail_as(s, code, msg, fmt, ap);
    va_end(ap);
}

/* A refusal: "connection refused". */
void fy__session_fail(session *s, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail_as(s, code, "connection refused", fmt, ap);
    va_end(ap);
}

static void on_hello(session *s, const fy_frame *f)
{
    fy_hello *h = &s->hello;
    int rc = fy_hello_decode(f->payload, f->hdr.len, h);

    if (rc < 0) {
        fy__session_fail(s, rc, "hello: %s", fy_strerror(rc));
        return;
    }
    bool sender = h->role == FY_ROLE_SENDER;
    if (!sender && h->role != FY_ROLE_RECEIVER) {
        fy__session_fail(s, FY_EPAYLOAD, "hello: unknown role %u", h->role);
        return;
    }
    fy_klog(FY_LOG_INFO, "hello", "peer=%s role=%s channel=%s mode=%u resume_from=%llu client=%s",
            s->peer, sender ? "sender" : "receiver", h->channel, h->mode,
            (unsigned long long)h->resume_from, h->client[0] ? h->client : "-");
    /* The read section keeps a reload from freeing the table under us. */
    bool ok = fy_auth_read_begin() == 0;
    if (ok) {
        ok = fy_auth_allows(fy__auth(s->ctx), h->token,
                            sender ? FY_AUTH_PUBLISH : FY_AUTH_SUBSCRIBE, h->channel);
        fy_auth_read_end();
    }
    if (!ok) {
        fy__session_fail(s, FY_EAUTH, "token may not %s channel %s",
                         sender ? "publish to" : "subscribe to", h->channel);
        return;
    }
    if ((h->flags & FY_HELLO_F_REPLICA) && (sender || !s->ctx->member)) {
        fy__session_fail(s, FY_EPROTO, "replica hello: %s", sender ? "only a receiver replicates"
                         : "this relay is not in a cluster (ferryd --cluster)");
        return;
    }
    if (s->ctx->member)
        fy__session_lead(s); /* docs/cluster.md: only the channel's leader serves it */
    else
        fy__session_ask_chan(s);
}

void fy__session_ask_chan(session *s)
{
    fy__chan_req *r = calloc(1, sizeof *r);
    if (!r) {
        fy__session_fail(s, FY_EINTERNAL, "out of memory");
        return;
    }
    r->reply = fy_actor_ref(s->self);
    snprintf(r->name, sizeof r->name, "%s", s->hello.channel);
    r->wait = s->hello.role != FY_ROLE_SENDER && (s->hello.flags & FY_HELLO_F_WAIT);
    s->st = S_WAIT_CHAN;
    fy__msg_chan_get(s->ctx->registry, r);
}

/* ---- the read loop --------------------------------------------------------- */

/* Before the role is known: feed the bytes to fy_dec until hello.  Returns
 * 0 when all of the input is used, 1 when the session must stop reading. */
static int consume_hello(void *arg)
{
    session *s = arg;

    while (s->roff < s->rlen) {
        size_t used = 0;
        fy_frame f;
        int rc = fy_dec_feed(s->dec, s->rbuf + s->roff, s->rlen - s->roff, &used, &f);
        s->roff += used;
        if (rc == 0)
            break;
        if (rc < 0)
            fy__session_fail(s, rc, "bad frame after seq 0: %s", fy_strerror(rc));
        else if (f.hdr.type == FY_FT_QUERY)
            fy__query_frame(s, &f);
        else if (f.hdr.type != FY_FT_HELLO)
            fy__session_fail(s, FY_EPROTO, "%s before hello",
                             fy_frame_type_name(f.hdr.type));
        else
            on_hello(s, &f);
        return 1;
    }
    s->roff = s->rlen = 0;
    return 0;
}

/* Before the role is known: one read into the hello buffer. */
static ssize_t read_hello(void *arg)
{
    session *s = arg;
    ssize_t n = fy_conn_recv(&s->conn, s->rbuf, s->rcap);

    if (n > 0) {
        fy__idle_alive(&s->idle, fy_now_ns());
        s->roff = 0;
        s->rlen = (size_t)n;
    }
    return n;
}

void fy__session_closed(void *arg, ssize_t n)
{
    session *s = arg;

    fy_ingest_flush(s->ing); /* inside a file: the writer says so when we detach */
    fy__session_finish(s, n == 0 ? "peer closed" : fy_strerror((int)n));
}

static const fy__pump_fns hello_pump = {consume_hello, read_hello, fy__session_closed};

/* Parked (waiting for its channel to be created): the client says nothing
 * until the welcome, so a read is for noticing that it left.  Bytes that
 * do come are kept for the forwarder, as the hello's leftovers are. */
static void watch_parked(session *s)
{
    for (int i = 0; i < 16; i++) {
        if (s->roff && s->rlen == s->rcap) {
            memmove(s->rbuf, s->rbuf + s->roff, s->rlen - s->roff);
            s->rlen -= s->roff;
            s->roff = 0;
        }
        if (s->rlen == s->rcap) {
            fy__session_fail(s, FY_EPROTO, "%zu bytes before the welcome", s->rlen - s->roff);
            return;
        }
        ssize_t n = fy_conn_recv(&s->conn, s->rbuf + s->rlen, s->rcap - s->rlen);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            fy__session_finish(s, n == 0 ? "peer closed while waiting for the channel"
                                         : fy_strerror((int)n));
            return;
        }
        s->rlen += (size_t)n;
    }
}

void fy__session_drive(session *s)
{
    if (s->st == S_LINGER) {
        if (fy_conn_drain(&s->conn, 64) == 0)
            fy__session_finish(s, NULL);
        return;
    }
    if (s->st == S_WAIT_CHAN && s->parked) {
        watch_parked(s);
        return;
    }
    if ((s->st != S_HELLO && s->st != S_SENDER) || s->pump.paused || s->shutting)
        return;
    if (!fy__pump_run(&s->pump, s->st == S_SENDER ? &fy__sender_pump : &hello_pump, s))
        return;
    /* One batch per turn (or per 1 MiB): fewer, bigger messages. */
    if (s->st == S_SENDER || s->st == S_DONE)
        fy_ingest_flush(s->ing);
}

/* ---- TLS ---------------------------------------------------------------------- */

/* A connection that never got through TLS: one log line (at a bounded
 * rate, relay/tlsfail.h), no error frame (a TLS peer could not read it).
 * OpenSSL sent its alert: FIN after it and take what the client sent, so
 * close() does not reset under the alert. */
static void tls_fail(session *s, int rc, const char *why)
{
    const char *detail = fy_conn_tls_error(&s->conn);
    char q[300];
    uint64_t supp = 0;

    s->end_code = FY_ETLS;
    if (fy_tlsfail_note(&supp)) /* a bounded rate: tlsfail.h */
        fy_klog(FY_LOG_WARN, "TLS handshake failed", "peer=%s err=%s reason=%s action=close "
                "suppressed=%llu", s->peer, fy_errname(rc),
                fy_klog_q(detail[0] ? detail : why, q, sizeof q), (unsigned long long)supp);
    (void)fy_sock_shutdown_wr(s->conn.fd);
    (void)fy_sock_drain(s->conn.fd, 4);
    fy__session_finish(s, NULL);
}

/* The listener speaks TLS: a plaintext client gets a plaintext error frame
 * saying to use TLS (a client can show that, not a TLS alert).  The
 * handshake is driven by readiness of either kind and bounded by the hello
 * timer. */
static void tls_step(session *s)
{
    FY__OWNER(s->self);
    int rc = fy_conn_tls_accept(&s->conn, s->ctx->tls);
    char d[96];
    if (rc == -EAGAIN)
        return;
    if (rc == 1) {
        s->st = S_HELLO; /* the error frame goes out in plaintext */
        fy__session_fail_as(s, FY_ETLSREQ, "plaintext client on a TLS listener",
                            "this relay requires TLS: connect with --tls (and --ca FILE to "
                            "verify its certificate)");
    } else if (rc < 0) {
        tls_fail(s, rc, fy_strerror(rc));
    } else {
        fy_conn_tls_describe(&s->conn, d, sizeof d);
        fy_klog(FY_LOG_DEBUG, "TLS established", "peer=%s tls=\"%s\" ktls_send=%d ktls_recv=%d",
                s->peer, d, fy_conn_ktls_send(&s->conn), fy_conn_ktls_recv(&s->conn));
        s->st = S_HELLO;
        fy__session_drive(s); /* the hello may be in the same read */
    }
}

/* ---- replies from the registry and the writer ------------------------------ */

static void handoff(session *s)
{
    fy__fwd_init in = {
        .ctx = s->ctx, .chan = s->chan, .conn = s->conn, .mode = s->hello.mode,
        .resume_from = s->hello.resume_from, .hflags = s->hello.flags,
        .r_epoch = s->hello.epoch, .r_part = s->hello.part_seq,
        .rep_cepoch = s->rep_cepoch, .rep_last_epoch = s->hello.last_epoch,
        .rep_log_next = s->hello.log_next,
        .pending = s->rbuf + s->roff, .npending = s->rlen - s->roff,
    };
    fy_actor *fwd;

    snprintf(in.peer, sizeof in.peer, "%s", s->peer);
    snprintf(in.client, sizeof in.client, "%s", s->hello.client);
    memcpy(in.addr_key, s->addr_key, sizeof in.addr_key);
    fy_io_del(s->ctx->sched, s->conn.fd);
    int rc = fy__forwarder_new(&in, &fwd);
    if (rc < 0) {
        fy_io_add(s->self, s->conn.fd, FY_IO_READ | FY_IO_WRITE, 0);
        fy__session_fail(s, FY_EINTERNAL, "cannot start a forwarder: %s", fy_strerror(rc));
        return;
    }
    s->conn = fy_conn_plain(-1); /* the forwarder owns it now, TLS state and all */
    /* Subscribe on the forwarder's behalf, before this session reports gone,
     * so the writer hears of it before any shutdown can reach it. */
    fy__msg_subscribe(s->chan->writer, fwd);
    fy__session_finish(s, NULL);
}

/* The receiver's channel does not exist yet: say so (FY_FT_NOCHAN) and
 * wait for the registry's CHAN, watching the socket meanwhile. */
static void park(session *s)
{
    char text[FY_NAME_MAX + 64];
    int n = snprintf(text, sizeof text, "no channel '%s' on the relay; waiting for it",
                     s->hello.channel);

    s->parked = true;
    fy_klog(FY_LOG_INFO, "receiver waits for its channel", "peer=%s channel=%s "
            "reason=\"no channel directory and no sender\"", s->peer, s->hello.channel);
    if (fy__session_send_ctl(s, FY_FT_NOCHAN, 0, (const uint8_t *)text, (size_t)n) < 0) {
        fy__session_finish(s, "cannot queue the no-channel notice");
        return;
    }
    watch_parked(s); /* the client may have gone already */
}

static void on_chan(session *s, fy_msg *m)
{
    if (s->st != S_WAIT_CHAN)
        return;
    if (m->u32 == FY_ENOCHAN) { /* the registry keeps the request: CHAN comes later */
        park(s);
        return;
    }
    /* Woken: the channel is new, so all of it is news to this receiver
     * (LIVE could miss the first file to the race with the sender's attach). */
    if (s->parked && s->hello.mode == FY_MODE_LIVE)
        s->hello.mode = FY_MODE_START;
    s->parked = false;
    if (m->u32 == FY_ELIMIT) {
        fy__session_fail(s, FY_ELIMIT, "channel %s refused: max-channels %llu reached",
                         s->hello.channel, (unsigned long long)s->ctx->conf->max_channels);
        return;
    }
    if (m->u32) {
        fy__session_fail(s, (int)m->u32, "channel %s unavailable: %s", s->hello.channel,
                         fy_strerror((int)m->u32));
        return;
    }
    s->chan = m->ptr;
    if (s->hello.role == FY_ROLE_RECEIVER) {
        handoff(s);
        return;
    }
    fy__attach_req *r = calloc(1, sizeof *r);
    if (!r) {
        fy__session_fail(s, FY_EINTERNAL, "out of memory");
        return;
    }
    r->session = fy_actor_ref(s->self);
    r->resume_from = s->hello.resume_from;
    memcpy(r->token, s->hello.token, sizeof r->token);
    s->st = S_WAIT_ATTACH;
    s->attach_sent = true;
    fy__msg_attach(s->chan->writer, r);
}

static void on_shutdown(session *s)
{
    s->shutting = true;
    switch (s->st) {
    case S_SENDER:
        fy_ingest_stop(s->ing); /* then wait for the writer to credit everything */
        fy__sender_bye_on_shutdown(s);
        break;
    case S_DONE:
        break;
    default:
        if (s->st != S_LINGER && s->st != S_TLS)
            fy__session_send_ctl(s, FY_FT_BYE, 0, NULL, 0);
        fy__session_finish(s, "relay shutdown");
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
    snprintf(r.client, sizeof r.client, "%s", s->hello.client);
    r.v[FY_ST_BYTES_IN] = in->bytes;
    r.v[FY_ST_FRAMES_IN] = in->frames;
    r.v[FY_ST_QUEUED_BYTES] = in->inflight;
    fy_stats_answer(s->ctx->pool, s->ctx->metrics, m, &r);
}

static void on_io(session *s, uint32_t events)
{
    uint32_t bits = fy_conn_io_bits(&s->conn, events);

    if (s->st == S_TLS) {
        tls_step(s);
        return;
    }
    if ((bits & FY_IO_WRITE) && fy_outq_flush(&s->out, &s->conn) == 0)
        maybe_half_close(s);
    if (bits & (FY_IO_READ | FY_IO_HUP))
        fy__session_drive(s);
}

static void on_timer(session *s, uint64_t tag)
{
    if (tag == FY__TM_LINGER) {
        fy__session_finish(s, NULL);
    } else if (tag == FY__TM_HELLO) {
        if (s->st == S_TLS)
            tls_fail(s, -ETIMEDOUT, "no TLS handshake within the hello timeout");
        else if (s->st == S_HELLO)
            fy__session_fail(s, FY_EPROTO, "no hello within %d ms", HELLO_MS);
        else if (s->st == S_QUERY) /* an answer that never came (a full pool) */
            fy__session_fail(s, FY_EINTERNAL, "query not answered within %d ms", HELLO_MS);
    } else if (tag == FY__TM_IDLE) {
        fy__sender_idle_tick(s);
    } else if (tag == FY__TM_LEAD && s->st == S_WAIT_LEAD) {
        fy__session_lead(s);
    } else if (tag == FY__TM_RETRY) {
        fy__pump_retry(&s->pump);
        fy__session_drive(s);
    }
}

/* The writer freed buffer bytes (FY_RM_CREDIT). */
static void on_credit(session *s, uint64_t bytes)
{
    fy_ingest_credit(s->ing, bytes);
    if (fy__pump_credit(&s->pump))
        fy__session_drive(s);
    fy__sender_bye_on_shutdown(s);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    session *s = state;

    (void)self;
    if (s->st == S_DONE)
        return FY_MSG_DONE;
    switch (m->type) {
    case FY_MSG_IO:
        on_io(s, m->u32);
        break;
    case FY_MSG_TIMER:
        on_timer(s, m->u64[0]);
        break;
    case FY_RM_CONTINUE:
        fy__pump_continued(&s->pump);
        fy__session_drive(s);
        break;
    case FY_RM_CHAN:
        on_chan(s, m);
        break;
    case FY_RM_ATTACHED:
        fy__sender_attached(s, m);
        break;
    case FY_RM_ATTACH_MIRROR:
        fy__sender_mirrored(s);
        break;
    case FY_RM_TAKEOVER:
        fy__sender_takeover(s, m->u64[0]);
        break;
    case FY_RM_DUP_ANSWER:
        fy__sender_dup_answer(s, m);
        break;
    case FY_RM_CREDIT:
        on_credit(s, m->u64[0]);
        break;
    case FY_RM_ACK: {
        uint8_t fr[FY_FRAME_HDR_SIZE + 16];
        int n = fy__ctl_ack(s->chan->id, m->u64[0], fr, sizeof fr);
        if (n < 0 || fy_outq_push(&s->out, &s->conn, fr, (size_t)n) < 0)
            fy__session_fail(s, FY_EPROTO, "client does not read its acks");
        break;
    }
    case FY_RM_STORE_ERR:
        fy__sender_store_err(s, (int)m->u32, m->u64[0]);
        break;
    case FY_RM_DIGEST_ERR:
        fy__sender_digest_err(s, m);
        break;
    case FY_RM_SHUTDOWN:
        on_shutdown(s);
        break;
    case FY_STATS_REQ:
        on_stats(s, m);
        break;
    case FY_RM_QREPLY:
        fy__query_reply(s, m);
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
    free(s->query);
    free(s);
}

int fy__session_new(const fy__ctx *ctx, int fd, const char *peer, const uint64_t addr_key[2],
                    fy_actor **out)
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
    memcpy(s->addr_key, addr_key, sizeof s->addr_key);
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
    s->pump = (fy__pump){.self = self, .retry_tag = FY__TM_RETRY};
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
