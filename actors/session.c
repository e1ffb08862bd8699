/*
 * session.c - one client connection until it is either a sender or handed
 * to a forwarder (the session actor).
 *
 * The session owns the socket.  It reads, feeds the bytes to fy_dec (which
 * checks lengths and CRCs), and answers hello: it checks the token, asks
 * the registry for the channel and, for a receiver, hands the socket to a
 * new forwarder and ends.  For a sender it asks the channel's file-writer
 * for the sender slot, then validates every stream frame (sequence, file
 * framing, sizes, names, channel id) and puts its raw bytes in pooled
 * fy_bufs: a big data frame is read from the socket straight into its own
 * buffer, small frames are packed several to a buffer; the writer gets one
 * batch per turn.
 *
 * Memory is bounded twice: a frame needs a pool buffer (-FY_EPOOL: stop
 * reading, retry on a short timer) and the bytes at the writer not yet
 * credited back must stay under the channel budget (wait for a credit
 * message).  While paused the session does not read its socket, so TCP
 * slows the sender down; nothing queues without bound.
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

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sock.h"
#include "ferry/trace.h"
#include "relay/stats.h"
#include "relay_int.h"

#define RBUF_HELLO (8u << 10)      /* before the role is known */
#define RBUF_SENDER (256u << 10)   /* one read; its frames become one batch */
#define OBUF_MAX (256u << 10)      /* control frames not yet written */
#define READS_PER_TURN 32          /* then yield to other actors */
#define BATCH_FRAMES 1024          /* <= IOV_MAX: one pwritev per batch */
#define BATCH_BYTES (1u << 20)     /* hand a batch over at this size even mid-turn */
/* Data frames this big are read into their own buffer when they arrive
 * split.  Not lower: with 64 KiB frames, one readv per frame cost as much
 * as the copy it saves (docs/architecture.md, "Measurements").  Must not
 * exceed RBUF_SENDER, so every smaller frame fits rbuf whole. */
#define DIRECT_MIN (128u << 10)
#define PACK_CAP (64u << 10)       /* smaller frames share buffers of up to this size */
_Static_assert(DIRECT_MIN <= RBUF_SENDER, "a frame below DIRECT_MIN must fit the read buffer");
#define DIRECT_TAIL FY_FRAME_HDR_SIZE /* read behind a direct frame: the next header */
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
    fy_dec *dec;
    uint8_t *rbuf;
    size_t rcap, rlen, roff; /* unprocessed input: rbuf[roff..rlen) */
    uint8_t *obuf;
    size_t ocap, olen, ooff;
    fy_hello hello;
    const fy__chan *chan;
    bool attach_sent, shutting, paused, timer_armed, cont_pending, wr_shut;
    /* sender state */
    bool have_frame;  /* f is validated and waits for a buffer */
    fy_frame f;
    uint64_t expect_seq;
    bool in_file;
    uint64_t file_size, file_got;
    uint64_t inflight; /* buffer capacity at the writer, not yet credited */
    fy__batch *batch;
    fy_buf *pack;      /* the batch's buffer small frames are appended to, or NULL */
    fy_buf *dbuf;      /* a big data frame being read straight into its buffer */
    fy_frame_hdr dhdr; /* its checked header */
    size_t dhave, dtotal;
    uint64_t frames, bytes;
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

static void flush_batch(session *s)
{
    s->pack = NULL; /* the writer may read it from now on: never append again */
    if (!s->batch)
        return;
    if (s->batch->n && s->chan)
        fy_actor_post(s->chan->writer, FY_RM_BATCH, 0, 0, 0, s->batch, NULL);
    else
        fy__batch_unref(s->batch);
    s->batch = NULL;
}

/* A frame cut short by the end of the connection is not stored. */
static void drop_direct(session *s)
{
    if (s->dbuf)
        fy_buf_unref(s->dbuf);
    s->dbuf = NULL;
}

/* The connection is over: give back the sender slot, the socket and the
 * acceptor's entry, then stop. */
static void finish(session *s, const char *why)
{
    if (s->st == S_DONE)
        return;
    flush_batch(s);
    drop_direct(s);
    if (s->attach_sent)
        fy_actor_post(s->chan->writer, FY_RM_DETACH, 0, 0, 0, s->self, NULL);
    if (s->fd >= 0) {
        fy_io_del(s->ctx->sched, s->fd);
        close(s->fd);
        s->fd = -1;
    }
    if (why)
        fy_klog(FY_LOG_INFO, "connection closed", "peer=%s reason=\"%s\" frames=%llu bytes=%llu",
                s->peer, why, (unsigned long long)s->frames, (unsigned long long)s->bytes);
    s->st = S_DONE;
    fy_actor_post(s->ctx->acceptor, FY_RM_SESSION_GONE, (uint32_t)s->end_code, s->bytes,
                  s->frames, s->self, NULL);
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
    flush_batch(s); /* frames before the bad one are kept */
    drop_direct(s);
    s->have_frame = false;
    fy_klog(code == FY_EAUTH || code == FY_EBUSY ? FY_LOG_INFO : FY_LOG_WARN, "connection refused",
            "peer=%s channel=%s err=%s text=%s action=\"error frame, close\"", s->peer,
            s->hello.channel[0] ? s->hello.channel : "-", fy_errname(code),
            fy_klog_q(text, q, sizeof q));
    int n = fy__ctl_error(s->chan ? s->chan->id : 0, code, fr, sizeof fr, "%s", text);
    if (n > 0)
        out_push(s, fr, (size_t)n);
    linger(s);
}

/* ---- frames from a sender -------------------------------------------------- */

static int check_stream(session *s, const fy_frame *f)
{
    const fy_frame_hdr *h = &f->hdr;

    if (h->channel != s->chan->id) {
        fail(s, FY_EPROTO, "%s seq %llu: header channel %u, expected %u", fy_frame_type_name(h->type),
             (unsigned long long)h->seq, h->channel, s->chan->id);
        return -1;
    }
    if (h->seq != s->expect_seq) {
        fail(s, FY_ESEQ, "%s: seq %llu, expected %llu", fy_frame_type_name(h->type),
             (unsigned long long)h->seq, (unsigned long long)s->expect_seq);
        return -1;
    }
    if (h->type == FY_FT_FILE_BEGIN) {
        fy_file_begin fb;
        int rc = fy_file_begin_decode(f->payload, h->len, &fb);
        if (rc < 0) {
            fail(s, rc, "file-begin seq %llu: %s", (unsigned long long)h->seq, fy_strerror(rc));
            return -1;
        }
        if (s->in_file) {
            fail(s, FY_EPROTO, "file-begin seq %llu inside a file (no file-end before it)",
                 (unsigned long long)h->seq);
            return -1;
        }
        s->in_file = true;
        s->file_size = fb.size;
        s->file_got = 0;
    } else if (h->type == FY_FT_DATA) {
        if (!s->in_file) {
            fail(s, FY_EPROTO, "data seq %llu outside a file (no file-begin)",
                 (unsigned long long)h->seq);
            return -1;
        }
        s->file_got += h->len;
        if (s->file_got > s->file_size) {
            fail(s, FY_ESIZE, "data seq %llu: %llu bytes so far, file-begin said %llu",
                 (unsigned long long)h->seq, (unsigned long long)s->file_got,
                 (unsigned long long)s->file_size);
            return -1;
        }
    } else {
        fy_file_end fe;
        int rc = fy_file_end_decode(f->payload, h->len, &fe);
        if (rc < 0) {
            fail(s, rc, "file-end seq %llu: %s", (unsigned long long)h->seq, fy_strerror(rc));
            return -1;
        }
        if (!s->in_file) {
            fail(s, FY_EPROTO, "file-end seq %llu outside a file", (unsigned long long)h->seq);
            return -1;
        }
        if (fe.size != s->file_got || fe.size != s->file_size) {
            fail(s, FY_ESIZE, "file-end seq %llu: size %llu, received %llu, file-begin said %llu",
                 (unsigned long long)h->seq, (unsigned long long)fe.size,
                 (unsigned long long)s->file_got, (unsigned long long)s->file_size);
            return -1;
        }
        s->in_file = false;
    }
    s->expect_seq++;
    return 0;
}

/* A pool buffer of at least need bytes within the channel budget.  0, or
 * -EAGAIN when paused (budget spent: a credit resumes; pool exhausted: a
 * timer retries), or another error after the connection was failed. */
static int grab(session *s, size_t need, fy_buf **out)
{
    if (s->inflight && s->inflight + need > s->ctx->conf->channel_budget) {
        s->paused = true; /* a credit message resumes */
        return -EAGAIN;
    }
    int rc = fy_buf_alloc(s->ctx->pool, need, out);
    if (rc == -FY_EPOOL) {
        s->paused = true;
        if (!s->timer_armed) {
            s->timer_armed = true;
            fy_timer_after(s->self, RETRY_MS, FY__TM_RETRY);
        }
        return -EAGAIN;
    }
    if (rc < 0)
        fail(s, FY_EINTERNAL, "fy_buf_alloc(%zu) failed: %s", need, fy_strerror(rc));
    return rc;
}

/* Make room in the batch for one more frame (and its buffer). */
static int batch_room(session *s)
{
    if (s->batch && s->batch->n == s->batch->cap)
        flush_batch(s);
    if (!s->batch && !(s->batch = fy__batch_new(BATCH_FRAMES))) {
        fail(s, FY_EINTERNAL, "out of memory for a batch");
        return -ENOMEM;
    }
    return 0;
}

/* The batch takes the buffer's reference; the channel budget counts it. */
static void batch_buf(session *s, fy_buf *b)
{
    s->batch->bufs[s->batch->nbufs++] = b;
    s->batch->held += fy_buf_cap(b);
    s->inflight += fy_buf_cap(b);
}

static void batch_frame(session *s, uint8_t *p, size_t len)
{
    s->batch->fr[s->batch->n++] = (struct iovec){p, len};
    s->batch->bytes += len;
    s->frames++;
    s->bytes += len;
    if (s->batch->bytes >= BATCH_BYTES)
        flush_batch(s);
}

/* Copy the validated frame at rbuf+roff into the batch: a small one is
 * appended to the batch's pack buffer (a new one sized for what this read
 * still holds, up to PACK_CAP), a big one gets a buffer of its own.
 * Returns 0, or -EAGAIN when paused (the frame stays where it is). */
static int store_frame(session *s)
{
    size_t need = s->f.raw_len;
    fy_buf *b;
    int rc;

    if ((rc = batch_room(s)) < 0)
        return rc;
    if (need <= PACK_CAP) {
        if (!s->pack || fy_buf_cap(s->pack) - fy_buf_len(s->pack) < need) {
            size_t want = s->rlen - s->roff;
            want = want > PACK_CAP ? PACK_CAP : want < need ? need : want;
            if ((rc = grab(s, want, &b)) < 0)
                return rc;
            fy_buf_set_len(b, 0);
            batch_buf(s, b);
            s->pack = b;
        }
        b = s->pack;
    } else {
        if ((rc = grab(s, need, &b)) < 0)
            return rc;
        fy_buf_set_len(b, 0);
        batch_buf(s, b);
        s->pack = NULL;
    }
    uint8_t *dst = fy_buf_data(b) + fy_buf_len(b);
    memcpy(dst, s->f.raw, need);
    fy_buf_set_len(b, fy_buf_len(b) + need);
    s->roff += need;
    s->have_frame = false;
    batch_frame(s, dst, need);
    return 0;
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

/* A whole, CRC-checked frame.  Returns 0 to go on, 1 to stop consuming. */
static int on_frame(session *s, const fy_frame *f)
{
    uint8_t t = f->hdr.type;

    if (s->st == S_HELLO) {
        if (t != FY_FT_HELLO)
            fail(s, FY_EPROTO, "%s before hello", fy_frame_type_name(t));
        else
            on_hello(s, f);
        return 1;
    }
    if (fy_frame_is_stream(t)) {
        if (check_stream(s, f) < 0)
            return 1;
        s->f = *f;
        s->have_frame = true;
        return 0;
    }
    switch (t) {
    case FY_FT_PING:
        if (send_ctl(s, FY_FT_PONG, f->hdr.seq, f->payload, f->hdr.len) < 0) {
            fail(s, FY_EPROTO, "client does not read its control frames");
            return 1;
        }
        return 0;
    case FY_FT_BYE:
        flush_batch(s);
        if (s->in_file)
            fy_klog(FY_LOG_WARN, "sender said bye inside a file", "peer=%s channel=%s seq=%llu",
                    s->peer, s->chan->name, (unsigned long long)s->expect_seq);
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

/* Process buffered input.  Returns 0 when all of it is used, 1 when the
 * session must stop reading (paused, waiting, or ended). */
static int consume(session *s)
{
    while (s->have_frame || s->roff < s->rlen) {
        if (!s->have_frame) {
            size_t used = 0;
            int rc = fy_dec_feed(s->dec, s->rbuf + s->roff, s->rlen - s->roff, &used, &s->f);
            s->roff += used;
            if (rc == 0)
                break;
            if (rc < 0) {
                fail(s, rc, "bad frame after seq %llu: %s",
                     (unsigned long long)(s->expect_seq ? s->expect_seq - 1 : 0), fy_strerror(rc));
                return 1;
            }
            fy_frame f = s->f;
            if (on_frame(s, &f))
                return 1;
        }
        if (s->have_frame && store_frame(s) < 0)
            return 1;
    }
    s->roff = s->rlen = 0;
    return 0;
}

/* ---- the sender's read path -------------------------------------------------
 * A sender's frames are parsed here rather than by fy_dec, so that a big
 * data frame is read from the socket straight into its pool buffer: once
 * its header is checked, the buffer is allocated, the bytes already read
 * are copied in and readv() puts the rest of the payload there, with only
 * the next frame's header going to rbuf.  That saves a copy of nearly
 * every byte.  The checks are fy_dec's, in its order and with its error
 * codes: fy_frame_hdr_decode (magic, version, header CRC, type, flags,
 * length), seq 0 on a stream frame (-FY_ESEQ), payload CRC (-FY_ECRC). */

static void bad_frame(session *s, int rc)
{
    fail(s, rc, "bad frame after seq %llu: %s",
         (unsigned long long)(s->expect_seq ? s->expect_seq - 1 : 0), fy_strerror(rc));
}

static int sender_hdr(session *s, const uint8_t *raw, fy_frame_hdr *h)
{
    int rc = fy_frame_hdr_decode(raw, s->ctx->conf->max_payload, h);

    if (rc == 0 && fy_frame_is_stream(h->type) && h->seq == 0)
        rc = -FY_ESEQ;
    return rc;
}

/* Keep an incomplete frame at the start of rbuf for the next read. */
static void keep_partial(session *s)
{
    size_t left = s->rlen - s->roff;

    if (left && s->roff)
        memmove(s->rbuf, s->rbuf + s->roff, left);
    s->roff = 0;
    s->rlen = left;
}

/* The direct frame is complete: check its CRC and the stream rules, then
 * hand its buffer to the batch as it is.  0 or 1 (ended). */
static int finish_direct(session *s)
{
    fy_buf *b = s->dbuf;
    uint8_t *raw = fy_buf_data(b);
    fy_frame f = {.hdr = s->dhdr, .raw = raw, .raw_len = s->dtotal,
                  .payload = raw + FY_FRAME_HDR_SIZE};

    s->dbuf = NULL;
    if (fy_crc32c(0, f.payload, f.hdr.len) != f.hdr.crc) {
        fy_buf_unref(b);
        bad_frame(s, -FY_ECRC);
        return 1;
    }
    if (on_frame(s, &f) || batch_room(s) < 0) {
        fy_buf_unref(b);
        return 1;
    }
    s->have_frame = false;
    fy_buf_set_len(b, s->dtotal);
    batch_buf(s, b);
    s->pack = NULL;
    batch_frame(s, raw, s->dtotal);
    return 0;
}

/* Process buffered sender input.  Returns 0 when more input is needed (a
 * partial frame is kept at the start of rbuf, or a direct frame waits for
 * its payload), 1 when the session must stop reading. */
static int consume_sender(session *s)
{
    for (;;) {
        if (s->dbuf) {
            if (s->dhave < s->dtotal)
                return 0;
            if (finish_direct(s))
                return 1;
        }
        if (s->have_frame) { /* validated, waits for a buffer */
            if (store_frame(s) < 0)
                return 1;
            continue;
        }
        size_t avail = s->rlen - s->roff;
        if (avail < FY_FRAME_HDR_SIZE) {
            keep_partial(s);
            return 0;
        }
        fy_frame_hdr h;
        int rc = sender_hdr(s, s->rbuf + s->roff, &h);
        if (rc < 0) {
            bad_frame(s, rc);
            return 1;
        }
        size_t total = FY_FRAME_HDR_SIZE + (size_t)h.len;
        if (avail >= total) {
            const uint8_t *raw = s->rbuf + s->roff;
            fy_frame f = {.hdr = h, .raw = raw, .raw_len = total,
                          .payload = raw + FY_FRAME_HDR_SIZE};
            if (fy_crc32c(0, f.payload, h.len) != h.crc) {
                bad_frame(s, -FY_ECRC);
                return 1;
            }
            if (on_frame(s, &f))
                return 1;
            if (!s->have_frame) /* a control frame, answered */
                s->roff += total;
            continue;
        }
        if (h.type != FY_FT_DATA || total < DIRECT_MIN) {
            keep_partial(s);
            return 0;
        }
        fy_buf *b;
        if (grab(s, total, &b) < 0) /* paused: the bytes wait in rbuf */
            return 1;
        memcpy(fy_buf_data(b), s->rbuf + s->roff, avail);
        s->dbuf = b;
        s->dhdr = h;
        s->dhave = avail;
        s->dtotal = total;
        s->roff = s->rlen = 0;
        return 0;
    }
}

/* One read for a sender: the rest of a direct frame plus the next header,
 * or as much as rbuf holds.  Bytes read, 0 at EOF, -EAGAIN or -errno. */
static ssize_t read_sender(session *s)
{
    struct iovec iov[2];
    int k = 0;

    if (s->dbuf)
        iov[k++] = (struct iovec){fy_buf_data(s->dbuf) + s->dhave, s->dtotal - s->dhave};
    size_t room = s->rcap - s->rlen;
    iov[k++] = (struct iovec){s->rbuf + s->rlen, s->dbuf && room > DIRECT_TAIL ? DIRECT_TAIL : room};
    ssize_t n = fy_sock_readv(s->fd, iov, k);
    if (n <= 0)
        return n;
    size_t got = (size_t)n;
    if (s->dbuf) {
        size_t d = s->dtotal - s->dhave;
        d = got < d ? got : d;
        s->dhave += d;
        got -= d;
    }
    s->rlen += got;
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
        if (s->st == S_SENDER ? consume_sender(s) : consume(s))
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
            flush_batch(s);
            if (n == 0 && s->in_file)
                fy_klog(FY_LOG_WARN, "sender closed inside a file", "peer=%s channel=%s seq=%llu",
                        s->peer, s->chan ? s->chan->name : "-", (unsigned long long)s->expect_seq);
            finish(s, n == 0 ? "peer closed" : fy_strerror((int)n));
            return;
        }
        fy_trace_emit(FY_TR_BYTES, fy_actor_id(s->self), (uint64_t)n, 0);
        if (!sender) {
            s->roff = 0;
            s->rlen = (size_t)n;
        }
    }
    /* One batch per turn (or per BATCH_BYTES): fewer, bigger messages. */
    if (s->st == S_SENDER || s->st == S_DONE)
        flush_batch(s);
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
    if (m->u32) {
        fail(s, (int)m->u32, "channel %s already has a sender", s->chan->name);
        return;
    }
    s->expect_seq = m->u64[0];
    fy_welcome w = {.channel = s->chan->id, .next_seq = m->u64[0], .first_seq = m->u64[1],
                    .max_payload = (uint32_t)s->ctx->conf->max_payload};
    uint8_t p[64];
    size_t n;
    fy_welcome_encode(&w, p, sizeof p, &n);
    if (send_ctl(s, FY_FT_WELCOME, 0, p, n) < 0) {
        finish(s, "cannot write welcome");
        return;
    }
    /* Keep the bytes that followed hello, in a buffer big enough for a batch. */
    size_t left = s->rlen - s->roff;
    memmove(s->rbuf, s->rbuf + s->roff, left);
    uint8_t *nb = realloc(s->rbuf, RBUF_SENDER);
    if (!nb) {
        fail(s, FY_EINTERNAL, "out of memory");
        return;
    }
    s->rbuf = nb;
    s->rcap = RBUF_SENDER;
    s->roff = 0;
    s->rlen = left;
    s->st = S_SENDER;
    drive(s);
}

static void maybe_bye_on_shutdown(session *s)
{
    if (!s->shutting || s->st != S_SENDER || s->inflight)
        return;
    send_ctl(s, FY_FT_BYE, 0, NULL, 0);
    finish(s, "relay shutdown");
}

static void on_shutdown(session *s)
{
    s->shutting = true;
    switch (s->st) {
    case S_SENDER:
        flush_batch(s); /* then wait for the writer to credit everything */
        drop_direct(s); /* a frame not yet whole is not stored */
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

    r.role = s->st == S_HELLO || s->st == S_WAIT_CHAN ? 0 : s->hello.role;
    r.depth = fy_actor_depth(s->self);
    snprintf(r.channel, sizeof r.channel, "%.71s", s->hello.channel);
    snprintf(r.peer, sizeof r.peer, "%s", s->peer);
    r.v[FY_ST_BYTES_IN] = s->bytes;
    r.v[FY_ST_FRAMES_IN] = s->frames;
    r.v[FY_ST_QUEUED_BYTES] = s->inflight;
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
        s->inflight -= m->u64[0] < s->inflight ? m->u64[0] : s->inflight;
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
        fail(s, FY_EINTERNAL, "storing the channel's frames failed: %s", fy_strerror(-(int)m->u32));
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
    fy__batch_unref(s->batch);
    drop_direct(s);
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
