/*
 * sender.c - the session actor as a sender (session_int.h): from the
 * writer's ATTACHED on, the session reads the socket into the buffers its
 * ingest (actors/ingest.c) names; the ingest checks the stream frames,
 * packs them into pooled fy_bufs and hands the writer one batch per turn,
 * and gives the control frames back here, which answers them.
 *
 * The read loop is actors/pump.c (shared with an edge's upstream actor):
 * when the ingest is out of pool buffers (-FY_EPOOL) the session stops
 * reading and retries on a short timer; when the channel budget is spent
 * (-EAGAIN) it waits for the writer's credit message.  While paused it
 * does not read its socket, so TCP slows the sender down.
 *
 * An idle sender is pinged, then cut (fy__idle, docs/architecture.md,
 * "Timeouts"); while the session itself does not read (a spent budget or
 * pool) that clock stands still.  When the same sender connects again, the
 * writer asks this session to give up its slot (FY_RM_TAKEOVER); it does
 * when idle for --takeover-grace or the newcomer names this stream's seq.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/sock.h"
#include "msg.h"
#include "session_int.h"

/* The ingest's output: one batch for the channel's writer. */
static void to_writer(void *arg, fy__batch *b)
{
    session *s = arg;

    fy__msg_batch(s->chan->writer, b);
}

/* The ingest refused the stream with rc: the error frame says why. */
static void fail_ingest(session *s, int rc)
{
    char text[400];

    fy_ingest_fault_text(s->ing, text, sizeof text);
    fy__session_fail(s, rc, "%s", text);
}

/* "Is this name's latest file stored?"  The frames before it go to the
 * writer first, so its answer counts the files this sender just sent. */
static int on_dup_ask(session *s, const fy_frame *f)
{
    fy_buf *b = NULL;
    fy_dup_ask q;
    int rc = fy_dup_ask_decode(f->payload, f->hdr.len, &q);
    if (rc == 0)
        rc = fy_buf_alloc(s->ctx->pool, sizeof q, &b);
    if (rc < 0 || !b) {
        rc = rc < 0 ? rc : -FY_EINTERNAL;
        fy__session_fail(s, rc == -FY_EPOOL || rc == -ENOMEM ? FY_EINTERNAL : rc, "dup-ask: %s",
                         fy_strerror(rc));
        return 1;
    }
    memcpy(fy_buf_data(b), &q, sizeof q);
    fy_buf_set_len(b, sizeof q);
    fy_ingest_flush(s->ing);
    fy__msg_dup_ask(s->chan->writer, s->self, b);
    return 0;
}

/* The writer's answer to a dup-ask: a dup-answer frame to the sender. */
void fy__sender_dup_answer(session *s, const fy_msg *m)
{
    fy_dup_answer st = {.seq = m->u64[0]};
    uint8_t p[64];
    size_t n;
    if (s->st != S_SENDER)
        return;
    if (st.seq && m->buf && fy_buf_len(m->buf) == FY_SHA256_LEN)
        memcpy(st.sha256, fy_buf_cdata(m->buf), FY_SHA256_LEN);
    else
        st.seq = 0;
    if (fy_dup_answer_encode(&st, p, sizeof p, &n) < 0 ||
        fy__session_send_ctl(s, FY_FT_DUP_ANSWER, 0, p, n) < 0)
        fy__session_fail(s, FY_EPROTO, "client does not read its control frames");
}

/* A control frame from a sender (whole, CRC-checked).  Returns 0 to go on,
 * 1 to stop consuming. */
static int on_ctl(void *arg, const fy_frame *f)
{
    session *s = arg;
    uint8_t t = f->hdr.type;

    switch (t) {
    case FY_FT_PING:
        if (fy__session_send_ctl(s, FY_FT_PONG, f->hdr.seq, f->payload, f->hdr.len) < 0) {
            fy__session_fail(s, FY_EPROTO, "client does not read its control frames");
            return 1;
        }
        return 0;
    case FY_FT_PONG: /* the answer to our ping: its bytes already count as activity */
        return 0;
    case FY_FT_BYE: /* inside a file: the writer says so when we detach */
        fy_ingest_flush(s->ing);
        fy__session_finish(s, "bye");
        return 1;
    case FY_FT_ERROR:
        fy__ctl_log_peer_error(s->peer, "client sent error", f);
        fy__session_finish(s, "client error");
        return 1;
    case FY_FT_DUP_ASK:
        return on_dup_ask(s, f);
    default:
        fy__session_fail(s, FY_EPROTO, "unexpected %s frame from a sender",
                         fy_frame_type_name(t));
        return 1;
    }
}

/* Let the ingest process a sender's input and act on what it asks for.
 * Returns 0 when it needs more input, 1 when the session must stop
 * reading (paused, or the connection ended). */
static int consume(void *arg)
{
    session *s = arg;
    int rc = fy__pump_ingest(&s->pump, s->ing, on_ctl, s);

    if (rc < 0)
        fail_ingest(s, rc);
    return rc != FY__PUMP_MORE;
}

/* One read for a sender, where the ingest wants it.  Bytes read, 0 at EOF,
 * -EAGAIN or -errno. */
static ssize_t read_more(void *arg)
{
    session *s = arg;
    struct iovec iov[2];
    ssize_t n = fy_conn_readv(&s->conn, iov, fy_ingest_iov(s->ing, iov));

    if (n > 0) {
        fy_ingest_got(s->ing, (size_t)n);
        fy__idle_alive(&s->idle, fy_now_ns());
    }
    return n;
}

const fy__pump_fns fy__sender_pump = {consume, read_more, fy__session_closed};

void fy__sender_mirrored(session *s)
{
    char up[256];

    if (s->st != S_WAIT_ATTACH)
        return;
    if (s->ctx->conf->upstream[0]) {
        fy__session_fail(s, FY_EBUSY, "channel %s is mirrored from upstream %s", s->chan->name,
                         s->ctx->conf->upstream);
        return;
    }
    /* An edge restarted without --upstream: the channel is still a mirror. */
    fy__upstream_recorded(s->chan->dir, up, sizeof up);
    fy__session_fail(s, FY_EBUSY, "channel %s is mirrored from upstream %s; this relay runs "
                     "without --upstream and takes no local sender there: send to %s",
                     s->chan->name, up[0] ? up : "(unknown)", up[0] ? up : "the origin");
}

void fy__sender_attached(session *s, fy_msg *m)
{
    if (s->st != S_WAIT_ATTACH)
        return;
    if (m->u32) {
        fy__session_fail(s, (int)m->u32, m->u32 == FY_ESHUTDOWN ? "channel %s is closing; "
                         "connect again" : "channel %s already has a sender", s->chan->name);
        return;
    }
    fy_welcome w = {.channel = s->chan->id, .next_seq = m->u64[0], .first_seq = m->u64[1],
                    .max_payload = (uint32_t)s->ctx->conf->max_payload,
                    .ext = (s->hello.flags & FY_HELLO_F_RESUME) != 0};
    /* the source fields sit after the epoch fields (zero for a sender) */
    w.ext3 = w.ext2 = w.ext && (s->hello.flags & FY_HELLO_F_SOURCE) != 0;
    if (m->buf && fy_buf_len(m->buf) == sizeof s->part) {
        memcpy(&s->part, fy_buf_cdata(m->buf), sizeof s->part);
        s->has_part = true;
    }
    uint8_t fr[FY_FRAME_HDR_SIZE + FY_WELCOME_MAX];
    int n = fy__ctl_welcome(&w, s->has_part ? &s->part : NULL, fr, sizeof fr);
    if (n < 0 || fy_outq_push(&s->out, &s->conn, fr, (size_t)n) < 0) {
        fy__session_finish(s, "cannot write welcome");
        return;
    }
    /* The bytes that followed hello are the ingest's first input. */
    fy_ingest_conf c = {.pool = s->ctx->pool, .max_payload = s->ctx->conf->max_payload,
                        .budget = s->ctx->conf->channel_budget, .channel = s->chan->id,
                        .next_seq = m->u64[0], .out = to_writer, .arg = s,
                        .in_file = s->has_part, .file_size = s->part.size,
                        .file_got = s->part.got};
    if (fy_ingest_new(&c, s->rbuf + s->roff, s->rlen - s->roff, &s->ing) < 0) {
        fy__session_fail(s, FY_EINTERNAL, "out of memory");
        return;
    }
    free(s->rbuf); /* the hello reader is done */
    s->rbuf = NULL;
    s->rcap = s->rlen = s->roff = 0;
    s->st = S_SENDER;
    fy__idle_alive(&s->idle, fy_now_ns());
    if (s->ctx->conf->idle_timeout)
        fy_timer_after(s->self, fy__idle_tick_ms(s->ctx->conf->idle_timeout), FY__TM_IDLE);
    fy__session_drive(s);
}

/* The writer could not store the stream (it logged the details once):
 * tell the sender what it can act on.  Every storage error is "try again
 * later" (a client retries it, ferry exits 2, never 3 "refused"): a full
 * disk has its own code, so a client knows to wait for room; any other
 * failed write or sync is FY_ESTORAGE.  next_seq: where the stored (after a
 * failed sync: the durable) log ends, from which the sender resumes. */
void fy__sender_store_err(session *s, int err, uint64_t next_seq)
{
    fy_member_lead l = {0};

    if (err == FY_ENOTLEADER) { /* fenced (writer_isr.c): the client is redirected */
        (void)fy_member_lead_of(s->ctx->member, s->hello.channel, &l);
        fy__session_fail_as(s, FY_ENOTLEADER, "cluster: no longer the channel's leader",
                            "leader=%s addr=%s epoch=%llu", l.leading ? "" : l.leader,
                            l.leading ? "" : l.addr, (unsigned long long)l.epoch);
    } else if (err == ENOSPC || err == EDQUOT || err == EFBIG)
        fy__session_fail(s, FY_ENOSPACE, "relay storage full (%s): stored up to seq %llu; "
                         "send again once the relay has room", fy_errname(-err),
                         (unsigned long long)next_seq);
    else
        fy__session_fail(s, FY_ESTORAGE, "storing the channel's frames failed (%s): stored up "
                         "to seq %llu; send again later", fy_errname(-err),
                         (unsigned long long)next_seq);
}

/* The writer refused a frame of this stream and stored the ones before it
 * (their acks came first).  Same words as when the session itself checked
 * the digest: the sender cannot tell where the check runs. */
void fy__sender_digest_err(session *s, const fy_msg *m)
{
    unsigned long long seq = m->u64[0];
    char hex[65] = "unknown";

    if (s->st != S_SENDER)
        return; /* ending anyway */
    if (m->u32) {
        fy__session_fail(s, FY_EINTERNAL, "seq %llu: cannot check the SHA-256 of the file in "
                         "progress: hashing its stored part failed: %s", seq,
                         fy_strerror(-(int)m->u32));
        return;
    }
    if (m->buf && fy_buf_len(m->buf) == sizeof(fy__digest_err))
        fy_sha256_hex(((const fy__digest_err *)(const void *)fy_buf_cdata(m->buf))->got, hex);
    fy__session_fail(s, FY_EDIGEST, "file-end seq %llu: the file's data hashes to SHA-256 %s, "
                     "not the digest the file-end carries; the file is not stored (receivers "
                     "discard it)", seq, hex);
}

void fy__sender_idle_tick(session *s)
{
    if (s->st != S_SENDER)
        return; /* ending: no more ticks */
    uint64_t now = fy_now_ns(), t = s->ctx->conf->idle_timeout;
    if (s->pump.paused || s->shutting)
        fy__idle_alive(&s->idle, now); /* we are not reading: not the sender's silence */
    enum fy__idle_do act = fy__idle_check(&s->idle, now, t);
    if (act == FY__IDLE_CUT) {
        fy__session_fail_as(s, FY_ETIMEOUT, "idle timeout", "peer idle too long: no bytes from "
                            "the sender for %llu ms, no pong to our ping (idle-timeout %llu s)",
                            (unsigned long long)((now - s->idle.alive_ns) / 1000000),
                            (unsigned long long)t);
        return;
    }
    uint8_t p[8];
    memcpy(p, &now, sizeof p); /* opaque to the peer; echoed in the pong */
    if (act == FY__IDLE_PING && fy__session_send_ctl(s, FY_FT_PING, 0, p, sizeof p) < 0) {
        fy__session_fail(s, FY_EPROTO, "client does not read its control frames");
        return;
    }
    fy_timer_after(s->self, fy__idle_tick_ms(t), FY__TM_IDLE);
}

/* The writer has a new connection with this sender's token waiting for
 * the slot.  Give the slot up when this one has been silent for the grace
 * or the newcomer resumes exactly where this stream stands (it knows what
 * we stored: it is this sender again); else keep it and the newcomer gets
 * FY_EBUSY.  Not a sender any more: our DETACH is already on its way. */
void fy__sender_takeover(session *s, uint64_t resume_from)
{
    if (s->st != S_SENDER)
        return;
    uint64_t idle = fy_now_ns() - s->idle.alive_ns;
    uint64_t next = fy_ingest_info_get(s->ing)->next_seq;
    bool stale = !s->pump.paused && idle >= s->ctx->conf->takeover_grace * 1000000000ull;
    /* A sender interrupted while we were not reading (paused) has closed
     * its end: it is gone, whatever the clock says (Ctrl-C, run again). */
    bool gone = s->conn.fd >= 0 && fy_sock_peer_gone(s->conn.fd);
    if (s->shutting || (!stale && !gone && (resume_from == 0 || resume_from != next))) {
        fy__msg_keep(s->chan->writer, s->self);
        return;
    }
    fy__session_fail_as(s, FY_EBUSY, "sender replaced", "replaced by a new connection of the "
                        "same sender (this one %s, idle %llu ms; the new one resumes at seq %llu, "
                        "the channel is at %llu)", gone ? "closed by its peer" : "open",
                        (unsigned long long)(idle / 1000000),
                        (unsigned long long)resume_from, (unsigned long long)next);
}

void fy__sender_bye_on_shutdown(session *s)
{
    if (!s->shutting || s->st != S_SENDER || fy_ingest_info_get(s->ing)->inflight)
        return;
    fy__session_send_ctl(s, FY_FT_BYE, 0, NULL, 0);
    fy__session_finish(s, "relay shutdown");
}
