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
 * after a short linger so the error frame is not lost to a reset.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sock.h"
#include "ferry/trace.h"
#include "ingest.h"
#include "relay/stats.h"
#include "relay_int.h"

#define RBUF_HELLO (8u << 10)      /* before the role is known */
#define OBUF_MAX (256u << 10)      /* control frames not yet written */
#define READS_PER_TURN 32          /* then yield to other actors */
#define RETRY_MS 5                 /* pool exhausted: retry after */
#define LINGER_MS 2000
#define HELLO_MS 30000            /* a connection must say hello within this */

enum st { S_HELLO, S_WAIT_CHAN, S_WAIT_ATTACH, S_SENDER, S_LINGER, S_DONE };

typedef struct session {
    const fy__ctx *ctx;
    fy_actor *self;
    int fd;
    enum st st;
    char peer[64];
    fy_dec *dec;   /* until hello */
    uint8_t *rbuf; /* until hello; then the ingest has its own */
    size_t rcap, rlen, roff; /* unprocessed input: rbuf[roff..rlen) */
    uint8_t *obuf;
    size_t ocap, olen, ooff;
    fy_hello hello;
    const fy__chan *chan;
    bool attach_sent, shutting, paused, timer_armed, cont_pending, wr_shut;
    fy_ingest *ing; /* a sender's frames, from attach on */
    int end_code; /* FY_E* that ended the connection, 0 = none */
} session;

static void drive(session *s);

/* ---- output ---------------------------------------------------------------- */

static int out_flush(session *s)
{
    while (s->ooff < s->olen) {
        struct iovec iov = {s->obuf + s->ooff, s->olen - s->ooff};
        ssize_t n = fy_sock_writev(s->fd, &iov, 1);
        if (n < 0)
            return (int)n;
        s->ooff += (size_t)n;
    }
    s->ooff = s->olen = 0;
    return 0;
}

/* Queue a frame for the client and try to write it.  -ENOBUFS if the client
 * does not read its control frames (the caller ends the connection). */
static int out_push(session *s, const uint8_t *p, size_t n)
{
    if (s->ooff && s->ooff == s->olen)
        s->ooff = s->olen = 0;
    if (s->olen + n > s->ocap) {
        size_t cap = s->ocap ? s->ocap : 4096;
        while (cap < s->olen + n)
            cap *= 2;
        if (cap > OBUF_MAX)
            return -ENOBUFS;
        uint8_t *nb = realloc(s->obuf, cap);
        if (!nb)
            return -ENOMEM;
        s->obuf = nb;
        s->ocap = cap;
    }
    memcpy(s->obuf + s->olen, p, n);
    s->olen += n;
    int rc = out_flush(s);
    return rc == -EAGAIN ? 0 : rc;
}

static int send_ctl(session *s, uint8_t type, uint64_t seq, const uint8_t *p, size_t n)
{
    uint8_t fr[FY_FRAME_HDR_SIZE + FY_CTL_PAYLOAD_MAX + 64];
    int len = fy__ctl_frame(type, s->chan ? s->chan->id : 0, seq, p, n, fr, sizeof fr);
    return len < 0 ? len : out_push(s, fr, (size_t)len);
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
    if (s->fd >= 0) {
        fy_io_del(s->ctx->sched, s->fd);
        close(s->fd);
        s->fd = -1;
    }
    if (why)
        fy_klog(FY_LOG_INFO, "connection closed", "peer=%s reason=\"%s\" frames=%llu bytes=%llu",
                s->peer, why, (unsigned long long)in->frames, (unsigned long long)in->bytes);
    s->st = S_DONE;
    fy_actor_post(s->ctx->acceptor, FY_RM_SESSION_GONE, (uint32_t)s->end_code, in->bytes,
                  in->frames, s->self, NULL);
    fy_actor_stop(s->self);
}

/* Half-close once the last control frame is out, then read and drop what
 * the client still sends until it closes or the linger timer fires. */
static void linger(session *s)
{
    s->st = S_LINGER;
    if (s->olen == s->ooff && !s->wr_shut) {
        (void)fy_sock_shutdown_wr(s->fd);
        s->wr_shut = true;
    }
    fy_timer_after(s->self, LINGER_MS, FY__TM_LINGER);
    drive(s);
}

/* End this connection with an error frame and a log line. */
static void fail(session *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(session *s, int code, const char *fmt, ...)
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
    fy_klog(code == FY_EAUTH || code == FY_EBUSY ? FY_LOG_INFO : FY_LOG_WARN, "connection refused",
            "peer=%s channel=%s err=%s text=%s action=\"error frame, close\"", s->peer,
            s->hello.channel[0] ? s->hello.channel : "-", fy_errname(code),
            fy_klog_q(text, q, sizeof q));
    int n = fy__ctl_error(s->chan ? s->chan->id : 0, code, fr, sizeof fr, "%s", text);
    if (n > 0)
        out_push(s, fr, (size_t)n);
    linger(s);
}

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

/* The ingest refused the stream with rc: word the error frame. */
static void fail_ingest(session *s, int rc)
{
    const fy_ingest_fault *x = fy_ingest_fault_get(s->ing);
    const char *tn = fy_frame_type_name(x->hdr.type);
    unsigned long long seq = x->hdr.seq, exp = x->expect_seq, got = x->file_got,
                       size = x->file_size;

    switch (x->why) {
    case FY_INGEST_BAD_FRAME:
        fail(s, rc, "bad frame after seq %llu: %s", exp ? exp - 1 : 0, fy_strerror(rc));
        break;
    case FY_INGEST_CHANNEL:
        fail(s, rc, "%s seq %llu: header channel %u, expected %u", tn, seq, x->hdr.channel,
             s->chan->id);
        break;
    case FY_INGEST_SEQ:
        fail(s, rc, "%s: seq %llu, expected %llu", tn, seq, exp);
        break;
    case FY_INGEST_BEGIN_PAYLOAD:
    case FY_INGEST_END_PAYLOAD:
        fail(s, rc, "%s seq %llu: %s", tn, seq, fy_strerror(rc));
        break;
    case FY_INGEST_BEGIN_IN_FILE:
        fail(s, rc, "file-begin seq %llu inside a file (no file-end before it)", seq);
        break;
    case FY_INGEST_DATA_OUTSIDE:
        fail(s, rc, "data seq %llu outside a file (no file-begin)", seq);
        break;
    case FY_INGEST_DATA_SIZE:
        fail(s, rc, "data seq %llu: %llu bytes so far, file-begin said %llu", seq, got, size);
        break;
    case FY_INGEST_END_OUTSIDE:
        fail(s, rc, "file-end seq %llu outside a file", seq);
        break;
    case FY_INGEST_END_SIZE:
        fail(s, rc, "file-end seq %llu: size %llu, received %llu, file-begin said %llu", seq,
             (unsigned long long)x->end_size, got, size);
        break;
    case FY_INGEST_END_DIGEST: {
        char hex[65];
        fy_sha256_hex(x->digest, hex);
        fail(s, rc, "file-end seq %llu: the file's data hashes to SHA-256 %s, not the digest the "
             "file-end carries; the file is not stored (receivers discard it)", seq, hex);
        break;
    }
    case FY_INGEST_ALLOC:
        if (x->alloc)
            fail(s, rc, "fy_buf_alloc(%zu) failed: %s", x->alloc, fy_strerror(x->cause));
        else
            fail(s, rc, "out of memory for a batch");
        break;
    }
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
    if (!fy_auth_allows(s->ctx->auth, h->token, sender ? FY_AUTH_PUBLISH : FY_AUTH_SUBSCRIBE,
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
    case FY_FT_BYE:
        fy_ingest_flush(s->ing);
        if (fy_ingest_info_get(s->ing)->in_file)
            fy_klog(FY_LOG_WARN, "sender said bye inside a file", "peer=%s channel=%s seq=%llu",
                    s->peer, s->chan->name,
                    (unsigned long long)fy_ingest_info_get(s->ing)->next_seq);
        finish(s, "bye");
        return 1;
    case FY_FT_ERROR: {
        fy_error e;
        char q[FY_ERRTEXT_MAX + 8];
        if (fy_error_decode(f->payload, f->hdr.len, &e) == 0)
            fy_klog(FY_LOG_WARN, "client sent error", "peer=%s code=%u text=%s", s->peer, e.code,
                    fy_klog_q(e.text, q, sizeof q));
        finish(s, "client error");
        return 1;
    }
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
    ssize_t n = fy_sock_readv(s->fd, iov, fy_ingest_iov(s->ing, iov));

    if (n > 0)
        fy_ingest_got(s->ing, (size_t)n);
    return n;
}

static void drive(session *s)
{
    int reads = 0;

    if (s->st == S_LINGER) {
        uint8_t sink[4096];
        for (int i = 0; i < 64; i++) {
            ssize_t n = fy_sock_recv(s->fd, sink, sizeof sink);
            if (n == -EAGAIN)
                return;
            if (n <= 0) {
                finish(s, NULL);
                return;
            }
        }
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
        ssize_t n = sender ? read_sender(s) : fy_sock_recv(s->fd, s->rbuf, s->rcap);
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            const fy_ingest_info *in = fy_ingest_info_get(s->ing);
            fy_ingest_flush(s->ing);
            if (n == 0 && in->in_file)
                fy_klog(FY_LOG_WARN, "sender closed inside a file", "peer=%s channel=%s seq=%llu",
                        s->peer, s->chan ? s->chan->name : "-", (unsigned long long)in->next_seq);
            finish(s, n == 0 ? "peer closed" : fy_strerror((int)n));
            return;
        }
        fy_trace_emit(FY_TR_BYTES, fy_actor_id(s->self), (uint64_t)n, 0);
        if (!sender) {
            s->roff = 0;
            s->rlen = (size_t)n;
        }
    }
    /* One batch per turn (or per 1 MiB): fewer, bigger messages. */
    if (s->st == S_SENDER || s->st == S_DONE)
        fy_ingest_flush(s->ing);
}

/* ---- replies from the registry and the writer ------------------------------ */

static void handoff(session *s)
{
    fy__fwd_init in = {
        .ctx = s->ctx, .chan = s->chan, .fd = s->fd, .mode = s->hello.mode,
        .resume_from = s->hello.resume_from,
        .pending = s->rbuf + s->roff, .npending = s->rlen - s->roff,
    };
    fy_actor *fwd;

    snprintf(in.peer, sizeof in.peer, "%s", s->peer);
    fy_io_del(s->ctx->sched, s->fd);
    int rc = fy__forwarder_new(&in, &fwd);
    if (rc < 0) {
        fy_io_add(s->self, s->fd, FY_IO_READ | FY_IO_WRITE, 0);
        fail(s, FY_EINTERNAL, "cannot start a forwarder: %s", fy_strerror(rc));
        return;
    }
    s->fd = -1; /* the forwarder owns it now */
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
    s->st = S_WAIT_ATTACH;
    s->attach_sent = true;
    fy_actor_post(s->chan->writer, FY_RM_ATTACH, 0, 0, 0, fy_actor_ref(s->self), NULL);
}

static void on_attached(session *s, fy_msg *m)
{
    if (s->st != S_WAIT_ATTACH)
        return;
    if (m->u32 == FY_EBUSY && m->u64[1] == UINT64_MAX) {
        fail(s, FY_EBUSY, "channel %s is mirrored from upstream %s", s->chan->name,
             s->ctx->conf->upstream);
        return;
    }
    if (m->u32) {
        fail(s, (int)m->u32, "channel %s already has a sender", s->chan->name);
        return;
    }
    fy_welcome w = {.channel = s->chan->id, .next_seq = m->u64[0], .first_seq = m->u64[1],
                    .max_payload = (uint32_t)s->ctx->conf->max_payload};
    uint8_t p[64];
    size_t n;
    fy_welcome_encode(&w, p, sizeof p, &n);
    if (send_ctl(s, FY_FT_WELCOME, 0, p, n) < 0) {
        finish(s, "cannot write welcome");
        return;
    }
    /* The bytes that followed hello are the ingest's first input. */
    fy_ingest_conf c = {.pool = s->ctx->pool, .max_payload = s->ctx->conf->max_payload,
                        .budget = s->ctx->conf->channel_budget, .channel = s->chan->id,
                        .next_seq = m->u64[0], .out = to_writer, .arg = s};
    if (fy_ingest_new(&c, s->rbuf + s->roff, s->rlen - s->roff, &s->ing) < 0) {
        fail(s, FY_EINTERNAL, "out of memory");
        return;
    }
    free(s->rbuf); /* the hello reader is done */
    s->rbuf = NULL;
    s->rcap = s->rlen = s->roff = 0;
    s->st = S_SENDER;
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
        if (s->st != S_LINGER)
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
    case FY_MSG_IO:
        if (m->u32 & FY_IO_WRITE) {
            int rc = out_flush(s);
            if (rc == 0 && s->st == S_LINGER && !s->wr_shut) {
                (void)fy_sock_shutdown_wr(s->fd);
                s->wr_shut = true;
            }
        }
        if (m->u32 & (FY_IO_READ | FY_IO_HUP))
            drive(s);
        break;
    case FY_MSG_TIMER:
        if (m->u64[0] == FY__TM_LINGER) {
            finish(s, NULL);
        } else if (m->u64[0] == FY__TM_HELLO) {
            if (s->st == S_HELLO)
                fail(s, FY_EPROTO, "no hello within %d ms", HELLO_MS);
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
    case FY_RM_CREDIT:
        fy_ingest_credit(s->ing, m->u64[0]);
        if (s->paused && !s->timer_armed) {
            s->paused = false;
            drive(s);
        }
        maybe_bye_on_shutdown(s);
        break;
    case FY_RM_ACK: {
        fy_ack a = {.seq = m->u64[0]};
        uint8_t p[16];
        size_t n;
        fy_ack_encode(&a, p, sizeof p, &n);
        if (send_ctl(s, FY_FT_ACK, 0, p, n) < 0)
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

    if (s->fd >= 0)
        close(s->fd);
    fy_ingest_free(s->ing);
    fy_dec_free(s->dec);
    free(s->rbuf);
    free(s->obuf);
    free(s);
}

int fy__session_new(const fy__ctx *ctx, int fd, const char *peer, fy_actor **out)
{
    session *s = calloc(1, sizeof *s);
    int rc = -ENOMEM;

    if (!s)
        return rc;
    s->ctx = ctx;
    s->fd = fd;
    s->rcap = RBUF_HELLO;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    if (!(s->rbuf = malloc(s->rcap)) || (rc = fy_dec_new(ctx->conf->max_payload, &s->dec)) < 0) {
        free(s->rbuf);
        free(s);
        return rc;
    }
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = s, .kind = FY_KIND_SESSION,
                       .label = peer};
    if ((rc = fy_actor_new(ctx->sched, &o, &s->self)) < 0) {
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
        s->fd = -1; /* not registered: no handler can run before the timer; the caller closes fd */
        fy_actor_stop(self);
        fy_actor_unref(self);
        *out = NULL;
        return rc;
    }
    return 0;
}
