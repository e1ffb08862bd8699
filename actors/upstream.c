/*
 * upstream.c - one mirrored channel's subscription to the upstream relay
 * (the upstream actor; an edge relay runs one per channel it mirrors).
 *
 * With --upstream set, a channel that a local receiver asks for and that
 * no local sender feeds is mirrored: its writer starts this actor and gives
 * it the sender slot at once (docs/architecture.md, "Scaling past one
 * machine").  The actor is an ordinary receiver of the upstream relay
 * (src/link: connect, hello role=receiver, welcome) and, once welcomed,
 * reads the socket straight into the buffers of the same fy_ingest a local
 * sender's session uses (actors/ingest.c): every frame is checked, the
 * frames are batched to the writer, which verifies every file's SHA-256,
 * stores, indexes and forwards them exactly as a local sender's (a refused
 * file-end: FY_RM_DIGEST_ERR, on_digest_err).  Nothing
 * is copied that a local sender's stream would not be.
 *
 * Sequence numbers.  The edge's log numbers its frames itself; upstream
 * seq = local seq + delta.  delta is 0 when the edge starts from the
 * upstream's first frame (the usual case) and changes only when the
 * upstream has dropped what the edge needs next (FY_ENOSEQ: retention)
 * and the edge starts again from the oldest seq upstream holds.  It is
 * kept in DIR/upstream (which also marks the channel as mirrored, so a
 * local sender is refused even while no receiver is there).  Each frame's
 * header gets the local channel id and seq (and a new header CRC) before
 * it goes to the writer; the payload and its CRC are untouched.
 *
 * Losing the link (an upstream restart, a network cut) keeps the ingest
 * and its state -- the file in progress and its bytes so far; the writer
 * keeps the file's SHA-256 so far -- and
 * reconnects with exponential backoff and jitter, resuming at the next seq
 * the ingest expects, so the log goes on with no gap and no duplicate and
 * the local receivers notice nothing but a pause.
 *
 * The writer ends the actor: at shutdown at once, and upstream-linger
 * after its last local receiver left, at the next file boundary (so the
 * log does not end inside a file the next subscription could not finish).
 */
#include <errno.h>
#include <inttypes.h>
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
#include "ferry/trace.h"
#include "ingest.h"
#include "link/link.h"
#include "pump.h"
#include "relay/stats.h"
#include "relay_int.h"
#include "store/mirror.h"

#define HBUF 64              /* handshake reads: the welcome's leftovers stay small */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_MS 10000     /* connect + hello + welcome must finish within this */
#define RING 256             /* batches in flight tracked for the lag figures */

/* Timer tags (this actor's own): the connection generation rides above. */
enum { TM_RETRY = 1, TM_RECONNECT = 2, TM_CONNECT = 3 };

enum st { U_WAIT, U_LINK, U_STREAM, U_DONE };

typedef struct upstream {
    const fy__ctx *ctx;
    fy_actor *self;
    fy_actor *writer;     /* a reference */
    uint32_t chan_id;     /* the local id, written into every header */
    char name[FY_NAME_MAX + 1];
    char dir[4500];       /* the channel's directory: its state file is there */
    fy_addr addr;
    enum st st;
    fy_link link;
    fy_ingest *ing;       /* from the first welcome on; survives reconnects */
    uint32_t gen;         /* connection generation, in io and timer tags */
    int64_t delta;        /* upstream seq - local seq */
    uint64_t local_next;  /* local seq of the next frame to come */
    uint64_t fb_local;    /* local seq of the file-begin of the file in progress, 0 = none */
    uint64_t skip_until;  /* frames below this local seq are stored already: drop them */
    bool fresh;           /* START: the local log holds nothing yet */
    bool restart;         /* after FY_ENOSEQ: START again, new delta, new ingest */
    bool rebase;          /* a new stream (fresh or restart) may begin inside a file: the
                             ingest drops frames to the first file-begin and delta is set
                             from the first frame stored, so local seqs stay contiguous */
    uint64_t rebase_local; /* the local seq that first stored frame gets */
    bool leaving;         /* linger over: leave at the next file boundary */
    fy__pump pump;        /* the read loop, shared with a sender's session */
    unsigned backoff_ms;
    uint64_t rng;         /* xorshift state for the jitter, seeded per actor */
    /* for /metrics: batches at the writer, oldest first (one CREDIT each) */
    struct { uint64_t next_seq, bytes; } fly[RING];
    unsigned fly_head, fly_n;
    uint64_t reconnects, enoseq, stored_next, origin_next, bytes_rx, bytes_fly;
    uint8_t hbuf[HBUF];
} upstream;

static void drive(upstream *u);
static void connect_now(upstream *u);

/* ---- the state file -------------------------------------------------------- */

/* DIR/upstream (src/store/mirror.c) holds delta and the local seq of the
 * file in progress's file-begin.  Written when delta is first known or
 * changes (synced) and at every file-begin and file-end that passes (not
 * synced), so an edge restarted inside a file knows where that file began:
 * it resumes upstream there, checks the file's frames again and drops the
 * ones it already has (the writer hashes the stored part back from its
 * log).  A failure is logged; the mirror goes on. */
static void state_save(upstream *u, bool sync)
{
    fy_mirror_state st = {.delta = u->delta, .file_begin = u->fb_local};
    int rc = fy_mirror_save(u->dir, &st, u->ctx->conf->upstream, sync);

    if (rc < 0) {
        char path[4700];
        fy_mirror_path(u->dir, path, sizeof path);
        fy_klog(FY_LOG_ERROR, "cannot write mirror state", "path=%s err=%s action=\"go on\"",
                path, fy_errname(rc));
    }
}

int fy__upstream_marked(const char *chan_dir)
{
    fy_mirror_state st;

    return fy_mirror_load(chan_dir, &st);
}

/* ---- batches to the writer, in local numbering ---------------------------------- */

/* Drop the frames below skip_until (checked again after a restart inside
 * a file, already in the log).  Returns false when none is left: the
 * batch is gone then and its buffers count as credited. */
static bool skip_stored(upstream *u, fy__batch *b)
{
    uint32_t k = 0;

    while (k < b->n && (uint64_t)((int64_t)fy__batch_seq(b, k) - u->delta) < u->skip_until)
        k++;
    if (k == b->n) {
        fy_ingest_credit(u->ing, b->held);
        fy__batch_unref(b);
        return false;
    }
    fy__batch_drop_front(b, k);
    u->skip_until = 0;
    return true;
}

/* The first frame of a new stream is stored: frames before it were the
 * rest of a file this edge cannot have (upstream's oldest seq was inside
 * it), so delta moves past them and the local log has no gap. */
static void rebase(upstream *u, uint64_t first_upstream_seq)
{
    int64_t d = (int64_t)first_upstream_seq - (int64_t)u->rebase_local;
    u->rebase = false;
    if (d == u->delta)
        return;
    fy_klog(FY_LOG_WARN, "upstream stream began inside a file", "channel=%s upstream=%s "
            "skipped_frames=%lld first_seq=%llu action=\"start at the next file\"", u->name,
            u->ctx->conf->upstream, (long long)(d - u->delta),
            (unsigned long long)first_upstream_seq);
    u->delta = d;
    state_save(u, true);
}

/* The ingest's output: give each frame the local channel id and seq (the
 * header CRC covers both), note file boundaries, then hand the batch to
 * the writer. */
static void to_writer(void *arg, fy__batch *b)
{
    upstream *u = arg;
    bool boundary = false;

    if (u->skip_until && !skip_stored(u, b))
        return;
    if (u->rebase && b->n)
        rebase(u, fy__batch_seq(b, 0));
    for (uint32_t i = 0; i < b->n; i++) {
        uint64_t seq = (uint64_t)((int64_t)fy__batch_seq(b, i) - u->delta);
        fy_frame_restamp(b->fr[i].iov_base, u->chan_id, seq);
    }
    for (uint32_t k = 0; k < b->nmarks; k++) {
        const fy__file_mark *mk = &b->marks[k];
        u->fb_local = mk->type == FY_FT_FILE_BEGIN ? fy__batch_seq(b, mk->frame) : 0;
        boundary = true;
    }
    if (boundary)
        state_save(u, false);
    if (b->n && u->fly_n < RING) {
        unsigned i = (u->fly_head + u->fly_n++) % RING;
        u->fly[i].next_seq = fy__batch_seq(b, b->n - 1) + 1;
        u->fly[i].bytes = b->bytes;
        u->bytes_fly += b->bytes;
    }
    fy_actor_post(u->writer, FY_RM_BATCH, 0, 0, 0, b, NULL);
}

/* ---- the link ---------------------------------------------------------------- */

static void link_down(upstream *u)
{
    if (fy_link_fd(&u->link) >= 0)
        fy_io_del(u->ctx->sched, fy_link_fd(&u->link));
    fy_link_close(&u->link);
    u->gen++;
}

/* Leave: the writer gets its sender slot back, and this actor stops. */
static void finish(upstream *u, const char *why)
{
    if (u->st == U_DONE)
        return;
    fy_ingest_stop(u->ing);
    link_down(u);
    fy_klog(FY_LOG_INFO, "upstream unsubscribed", "channel=%s upstream=%s reason=\"%s\" "
            "next_seq=%llu", u->name, u->ctx->conf->upstream, why,
            (unsigned long long)u->local_next);
    u->st = U_DONE;
    fy_actor_post(u->writer, FY_RM_DETACH, 0, 0, 0, u->self, NULL);
    fy_actor_stop(u->self);
}

/* The link is gone: keep the stream state, try again after a backoff
 * (doubling up to BACKOFF_MAX_MS, each wait drawn from its upper half so
 * many edges do not come back in step). */
static void lost(upstream *u, int level, const char *why)
{
    fy_ingest_flush(u->ing);
    if (u->st == U_STREAM)
        u->reconnects++;
    link_down(u);
    if (u->leaving) {
        finish(u, "linger over, link lost");
        return;
    }
    u->st = U_WAIT;
    u->rng ^= u->rng << 13;
    u->rng ^= u->rng >> 7;
    u->rng ^= u->rng << 17;
    unsigned ms = u->backoff_ms / 2 + (unsigned)(u->rng % (u->backoff_ms / 2 + 1));
    fy_klog(level, "upstream lost", "channel=%s upstream=%s reason=\"%s\" next_seq=%llu "
            "action=\"reconnect in %u ms\"", u->name, u->ctx->conf->upstream, why,
            (unsigned long long)u->local_next, ms);
    u->backoff_ms = u->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : u->backoff_ms * 2;
    fy_timer_after(u->self, ms, (uint64_t)u->gen << 8 | TM_RECONNECT);
}

static void connect_now(upstream *u)
{
    fy_hello h = {.role = FY_ROLE_RECEIVER};
    int fd, rc;

    h.mode = u->fresh || u->restart ? FY_MODE_START : FY_MODE_RESUME;
    h.resume_from = h.mode == FY_MODE_RESUME ? (uint64_t)((int64_t)u->local_next + u->delta) : 0;
    snprintf(h.channel, sizeof h.channel, "%s", u->name);
    snprintf(h.token, sizeof h.token, "%s", u->ctx->conf->upstream_token);
    u->gen++;
    if ((fd = fy_link_connect(&u->link, &u->addr, u->ctx->conf->max_payload)) < 0) {
        lost(u, FY_LOG_WARN, fy_strerror(fd));
        return;
    }
    if (u->ctx->up_tls) { /* upstream-ca: TLS, verified against it */
        const fy_conf *c = u->ctx->conf;
        char name[256];
        if (c->upstream_tls_name[0])
            snprintf(name, sizeof name, "%s", c->upstream_tls_name);
        else if (fy_tls_name_from_server(c->upstream, name, sizeof name) < 0)
            name[0] = '\0';
        if ((rc = fy_link_tls(&u->link, u->ctx->up_tls, name)) < 0) {
            fy_link_close(&u->link);
            lost(u, FY_LOG_ERROR, fy_strerror(rc));
            return;
        }
    }
    if ((rc = fy_link_hello(&u->link, &h)) < 0 ||
        (rc = fy_io_add(u->self, fd, FY_IO_READ | FY_IO_WRITE, u->gen)) < 0) {
        fy_link_close(&u->link);
        lost(u, FY_LOG_ERROR, fy_strerror(rc));
        return;
    }
    u->st = U_LINK;
    fy_timer_after(u->self, CONNECT_MS, (uint64_t)u->gen << 8 | TM_CONNECT);
    fy_klog(FY_LOG_DEBUG, "upstream connecting", "channel=%s upstream=%s mode=%s resume_from=%llu",
            u->name, u->ctx->conf->upstream, h.mode == FY_MODE_START ? "start" : "resume",
            (unsigned long long)h.resume_from);
}

/* The upstream refused us with an error frame. */
static void on_error_frame(upstream *u, const fy_frame *f)
{
    fy_error e = {0};
    char q[FY_ERRTEXT_MAX + 8];

    (void)fy_error_decode(f->payload, f->hdr.len, &e);
    if (e.code == FY_ENOSEQ && u->st == U_LINK) {
        u->enoseq++;
        if (u->skip_until) { /* the new delta counts from the log's end */
            u->local_next = u->skip_until;
            u->skip_until = u->fb_local = 0;
        }
        u->restart = true;
        fy_klog(FY_LOG_ERROR, "upstream no longer holds the next seq", "channel=%s upstream=%s "
                "want_seq=%llu text=%s action=\"start again from the oldest seq upstream "
                "holds; frames in between are lost on this edge\"", u->name,
                u->ctx->conf->upstream,
                (unsigned long long)((int64_t)u->local_next + u->delta),
                fy_klog_q(e.text, q, sizeof q));
        u->backoff_ms = BACKOFF_MIN_MS;
        link_down(u);
        connect_now(u);
        return;
    }
    char why[FY_ERRTEXT_MAX + 64];
    snprintf(why, sizeof why, "upstream error %s: %.900s", fy_errname((int)e.code), e.text);
    lost(u, FY_LOG_WARN, why);
}

/* Welcomed: from here on the socket's bytes go to the ingest. */
static void on_welcome(upstream *u)
{
    const fy_welcome *w = fy_link_welcome(&u->link);
    size_t n;
    const uint8_t *rest = fy_link_rest(&u->link, &n);
    int rc;

    if (u->fresh || u->restart) {
        int64_t d = (int64_t)w->next_seq - (int64_t)u->local_next;
        if (u->restart)
            fy_klog(FY_LOG_WARN, "upstream restarted from its oldest seq", "channel=%s "
                    "upstream=%s upstream_seq=%llu local_seq=%llu delta=%" PRId64, u->name,
                    u->ctx->conf->upstream, (unsigned long long)w->next_seq,
                    (unsigned long long)u->local_next, d);
        if (d != u->delta || u->fresh)
            u->delta = d, state_save(u, true);
        u->rebase = true;
        u->rebase_local = u->local_next;
        if (u->restart) {
            fy_ingest_stop(u->ing); /* its stream is over; in-flight credit is forgotten */
            fy_ingest_free(u->ing);
            u->ing = NULL;
        }
        u->fresh = u->restart = false;
    }
    if (!u->ing) {
        fy_ingest_conf c = {.pool = u->ctx->pool, .max_payload = u->ctx->conf->max_payload,
                            .budget = u->ctx->conf->channel_budget, .channel = w->channel,
                            .next_seq = (uint64_t)((int64_t)u->local_next + u->delta),
                            .out = to_writer, .arg = u, .skip_partial = u->rebase};
        rc = fy_ingest_new(&c, rest, n, &u->ing);
    } else {
        rc = fy_ingest_restart(u->ing, w->channel, rest, n);
    }
    if (rc < 0) {
        lost(u, FY_LOG_ERROR, fy_strerror(rc));
        return;
    }
    u->st = U_STREAM;
    u->backoff_ms = BACKOFF_MIN_MS;
    if (w->next_seq + 0 > u->origin_next)
        u->origin_next = w->next_seq;
    fy_klog(FY_LOG_INFO, "upstream connected", "channel=%s upstream=%s upstream_channel=%u "
            "from_seq=%llu upstream_first_seq=%llu local_next_seq=%llu reconnects=%llu",
            u->name, u->ctx->conf->upstream, w->channel, (unsigned long long)w->next_seq,
            (unsigned long long)w->first_seq, (unsigned long long)u->local_next,
            (unsigned long long)u->reconnects);
}

/* The link failed with rc: a TLS failure says why (copied: closing the
 * link frees the text). */
static void link_lost(upstream *u, int rc)
{
    char why[256];

    snprintf(why, sizeof why, "%s", rc == -FY_ETLS && fy_link_tls_error(&u->link)[0]
                                        ? fy_link_tls_error(&u->link) : fy_strerror(rc));
    lost(u, FY_LOG_WARN, why);
}

/* Connecting, in the TLS handshake, or waiting for the welcome. */
static void drive_link(upstream *u, uint32_t bits)
{
    fy_frame f;
    int rc;

    if (fy_link_state(&u->link) == FY_LINK_CONNECTING && (bits & (FY_IO_WRITE | FY_IO_HUP))) {
        if ((rc = fy_link_connected(&u->link)) < 0) {
            link_lost(u, rc);
            return;
        }
    }
    if ((rc = fy_link_flush(&u->link)) < 0) {
        link_lost(u, rc);
        return;
    }
    if (fy_link_state(&u->link) == FY_LINK_CONNECTING)
        return;
    for (;;) {
        ssize_t n = fy_link_recv(&u->link, u->hbuf, sizeof u->hbuf);
        if (n == -EAGAIN)
            return;
        if (n < 0) {
            link_lost(u, (int)n);
            return;
        }
        if (n == 0) {
            lost(u, FY_LOG_WARN, "closed before welcome");
            return;
        }
        while ((rc = fy_link_next(&u->link, &f)) == 1) {
            if (f.hdr.type == FY_FT_WELCOME) {
                on_welcome(u);
                if (u->st == U_STREAM)
                    drive(u);
                return;
            }
            if (f.hdr.type == FY_FT_ERROR) {
                on_error_frame(u, &f);
                return;
            }
            if (f.hdr.type == FY_FT_BYE) {
                lost(u, FY_LOG_INFO, "upstream said bye");
                return;
            }
        }
        if (rc < 0) {
            link_lost(u, rc);
            return;
        }
    }
}

/* ---- the stream ---------------------------------------------------------------- */

/* A control frame inside the stream.  0 to go on, 1 to stop reading. */
static int on_ctl(void *arg, const fy_frame *f)
{
    upstream *u = arg;

    switch (f->hdr.type) {
    case FY_FT_PING:
        if (fy_link_ctl(&u->link, FY_FT_PONG, f->hdr.channel, f->hdr.seq, f->payload,
                        f->hdr.len) == 0)
            (void)fy_link_flush(&u->link);
        return 0;
    case FY_FT_BYE:
        lost(u, FY_LOG_INFO, "upstream said bye");
        return 1;
    case FY_FT_ERROR:
        on_error_frame(u, f);
        return 1;
    default:
        return 0; /* acks, pongs: nothing to do */
    }
}

static void fail_ingest(upstream *u, int rc)
{
    const fy_ingest_fault *x = fy_ingest_fault_get(u->ing);

    if (x->why == FY_INGEST_BEGIN_IN_FILE) {
        /* Upstream's log holds a file its sender abandoned (a sender or an
         * origin that died mid-file, then a new file): receivers discard
         * such a file, and so does this edge's log.  Go on at the new
         * file-begin with a fresh ingest. */
        fy_klog(FY_LOG_INFO, "upstream file abandoned", "channel=%s upstream=%s "
                "file_begin_seq=%llu action=\"resume at the new file\"", u->name,
                u->ctx->conf->upstream, (unsigned long long)x->hdr.seq);
        u->local_next = (uint64_t)((int64_t)x->hdr.seq - u->delta);
        fy_ingest_free(u->ing);
        u->ing = NULL;
        link_down(u);
        connect_now(u);
        return;
    }

    /* The upstream sent what its own ingest checked: a fault here is damage
     * on its disk or the wire, or a log that ended inside a file.  Keep what
     * was stored; try again from there with a fresh ingest. */
    fy_klog(FY_LOG_ERROR, "upstream stream refused", "channel=%s upstream=%s why=%d err=%s "
            "seq=%llu expect_seq=%llu action=\"reconnect, resume from the last good frame\"",
            u->name, u->ctx->conf->upstream, (int)x->why, fy_errname(rc),
            (unsigned long long)x->hdr.seq, (unsigned long long)x->expect_seq);
    u->local_next = (uint64_t)((int64_t)fy_ingest_info_get(u->ing)->next_seq - u->delta);
    fy_ingest_free(u->ing);
    u->ing = NULL;
    lost(u, FY_LOG_ERROR, fy_strerror(rc));
}

/* The writer refused the frame at local seq `seq` (a file-end whose
 * SHA-256 is wrong, or a file it could not hash: damage on upstream's disk
 * or in this edge's log) and stored the frames before it; it drops the
 * batches sent since.  Sending that file again would not mend the part
 * already stored, so the stream starts again at seq with a fresh ingest
 * that drops the rest of the file up to the next file-begin, which then
 * takes seq (rebase): receivers discard the broken file as one whose
 * sender died, and get the next. */
static void on_digest_err(upstream *u, const fy_msg *m)
{
    uint64_t seq = m->u64[0];

    fy_klog(FY_LOG_ERROR, "upstream file refused", "channel=%s upstream=%s seq=%llu err=%s "
            "action=\"reconnect, resume at the next file\"", u->name, u->ctx->conf->upstream,
            (unsigned long long)seq, m->u32 ? fy_errname(-(int)m->u32) : "FY_EDIGEST");
    fy_ingest_stop(u->ing); /* its stream is over; in-flight credit is forgotten */
    fy_ingest_free(u->ing);
    u->ing = NULL;
    u->local_next = u->rebase_local = seq;
    u->skip_until = 0;
    u->rebase = true;
    /* After the batches the writer drops (the mailbox keeps our order). */
    fy_actor_post(u->writer, FY_RM_DIGEST_RESET, 0, 0, 0, u->self, NULL);
    if (u->st == U_STREAM || u->st == U_LINK)
        lost(u, FY_LOG_WARN, "file refused by the writer");
}

/* The read loop's half (fy__pump_run): 0 when the ingest needs more
 * input, 1 to stop reading. */
static int consume(void *arg)
{
    upstream *u = arg;
    int rc = fy__pump_ingest(&u->pump, u->ing, on_ctl, u);

    if (rc == FY__PUMP_STOP)
        return 1;
    const fy_ingest_info *in = fy_ingest_info_get(u->ing);
    u->local_next = (uint64_t)((int64_t)in->next_seq - u->delta);
    if (in->next_seq > u->origin_next)
        u->origin_next = in->next_seq;
    if (rc < 0)
        fail_ingest(u, rc);
    return rc != FY__PUMP_MORE;
}

static ssize_t read_more(void *arg)
{
    upstream *u = arg;
    struct iovec iov[2];
    ssize_t n = fy_conn_readv(fy_link_conn(&u->link), iov, fy_ingest_iov(u->ing, iov));

    if (n > 0) {
        fy_ingest_got(u->ing, (size_t)n);
        u->bytes_rx += (uint64_t)n;
    }
    return n;
}

static void closed(void *arg, ssize_t n)
{
    lost(arg, FY_LOG_WARN, n == 0 ? "upstream closed" : fy_strerror((int)n));
}

static const fy__pump_fns pump_fns = {consume, read_more, closed};

static void drive(upstream *u)
{
    if (u->st != U_STREAM || u->pump.paused)
        return;
    if (!fy__pump_run(&u->pump, &pump_fns, u))
        return;
    if (u->st == U_STREAM)
        fy_ingest_flush(u->ing);
    if (u->leaving && u->st == U_STREAM && !fy_ingest_info_get(u->ing)->in_file)
        finish(u, "no local receiver for upstream-linger");
}

/* ---- messages ------------------------------------------------------------------- */

static void on_stats(upstream *u, const fy_msg *m)
{
    fy_stats_rec r = {.actor = fy_actor_id(u->self), .kind = FY_KIND_UPSTREAM};
    const fy_ingest_info *in = fy_ingest_info_get(u->ing);
    /* Upstream's end as far as this edge can know it: the welcome and what
     * has arrived.  Stored: the end of the last batch the writer credited. */
    uint64_t end = u->origin_next > in->next_seq ? u->origin_next : in->next_seq;
    uint64_t stored = (uint64_t)((int64_t)u->stored_next + u->delta);

    r.depth = fy_actor_depth(u->self);
    snprintf(r.channel, sizeof r.channel, "%.71s", u->name);
    snprintf(r.peer, sizeof r.peer, "%.63s", u->ctx->conf->upstream);
    r.v[FY_ST_UP_CONNECTED] = u->st == U_STREAM;
    r.v[FY_ST_RECONNECTS] = u->reconnects;
    r.v[FY_ST_ENOSEQ] = u->enoseq;
    r.v[FY_ST_LAG_PKTS] = u->stored_next && end > stored ? end - stored : 0;
    r.v[FY_ST_LAG_BYTES] = u->bytes_fly;
    r.v[FY_ST_BYTES_IN] = u->bytes_rx;
    r.v[FY_ST_FRAMES_IN] = in->frames;
    r.v[FY_ST_QUEUED_BYTES] = in->inflight;
    fy_stats_answer(u->ctx->pool, u->ctx->metrics, m, &r);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    upstream *u = state;
    uint64_t tag = m->u64[0];

    (void)self;
    if (u->st == U_DONE)
        return FY_MSG_DONE;
    switch (m->type) {
    case FY_MSG_IO:
        if (tag != u->gen)
            break;
        if (u->st == U_LINK)
            drive_link(u, m->u32);
        else if (u->st == U_STREAM) {
            uint32_t bits = fy_conn_io_bits(fy_link_conn(&u->link), m->u32);
            if (bits & FY_IO_WRITE)
                (void)fy_link_flush(&u->link); /* a pong, or a TLS record held back */
            if (bits & (FY_IO_READ | FY_IO_HUP))
                drive(u);
        }
        break;
    case FY_MSG_TIMER:
        if ((tag & 0xff) == TM_RETRY) {
            fy__pump_retry(&u->pump);
            drive(u);
        } else if ((tag & 0xff) == TM_RECONNECT && tag >> 8 == u->gen && u->st == U_WAIT) {
            connect_now(u);
        } else if ((tag & 0xff) == TM_CONNECT && tag >> 8 == u->gen && u->st == U_LINK) {
            lost(u, FY_LOG_WARN, "no welcome in time");
        }
        break;
    case FY_RM_CONTINUE:
        fy__pump_continued(&u->pump);
        drive(u);
        break;
    case FY_RM_CREDIT:
        if (u->fly_n) {
            u->stored_next = u->fly[u->fly_head].next_seq; /* local numbering */
            u->bytes_fly -= u->fly[u->fly_head].bytes;
            u->fly_head = (u->fly_head + 1) % RING;
            u->fly_n--;
        }
        fy_ingest_credit(u->ing, m->u64[0]);
        if (fy__pump_credit(&u->pump))
            drive(u);
        break;
    case FY_RM_ACK: /* a file-end is stored: nothing to tell upstream, a receiver */
        break;
    case FY_RM_STORE_ERR:
        fy_klog(FY_LOG_ERROR, "mirror cannot store", "channel=%s err=%s next_seq=%llu "
                "action=\"unsubscribe; the next receiver tries again\"", u->name,
                fy_errname(-(int)m->u32), (unsigned long long)m->u64[0]);
        finish(u, "store failed");
        break;
    case FY_RM_DIGEST_ERR:
        on_digest_err(u, m);
        break;
    case FY_RM_SHUTDOWN:
        /* u32 = 1: linger over (leave at a file boundary), else at once. */
        if (m->u32 && u->st == U_STREAM && fy_ingest_info_get(u->ing)->in_file) {
            u->leaving = true;
            break;
        }
        finish(u, m->u32 ? "no local receiver for upstream-linger" : "relay shutdown");
        break;
    case FY_STATS_REQ:
        on_stats(u, m);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    upstream *u = state;

    if (fy_link_fd(&u->link) >= 0)
        fy_io_del(u->ctx->sched, fy_link_fd(&u->link));
    fy_link_close(&u->link);
    fy_ingest_free(u->ing);
    fy_actor_unref(u->writer);
    free(u);
}

int fy__upstream_new(const fy__ctx *ctx, const fy__chan *chan, fy_actor *writer,
                     uint64_t next_seq, bool empty, fy_actor **out)
{
    upstream *u = calloc(1, sizeof *u);
    int rc;

    if (!u)
        return -ENOMEM;
    u->ctx = ctx;
    u->chan_id = chan->id;
    snprintf(u->name, sizeof u->name, "%s", chan->name);
    snprintf(u->dir, sizeof u->dir, "%s", chan->dir);
    u->local_next = next_seq;
    u->backoff_ms = BACKOFF_MIN_MS;
    /* Edges started together must not retry in step: time, process, actor. */
    u->rng = (fy_now_ns() ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)u) | 1;
    fy_link_init(&u->link);
    if ((rc = fy_addr_parse(ctx->conf->upstream, "127.0.0.1", &u->addr)) < 0) {
        fy_klog(FY_LOG_ERROR, "bad upstream address", "upstream=%s", ctx->conf->upstream);
        free(u);
        return rc;
    }
    /* A log with frames and no state file came from a local sender: never
     * mirror over it (the writer checks this before starting us). */
    fy_mirror_state st;
    u->fresh = !fy_mirror_load(u->dir, &st);
    u->delta = st.delta;
    u->fb_local = st.file_begin;
    if (u->fresh && !empty) {
        free(u);
        return -FY_EBUSY;
    }
    if (u->fb_local && u->fb_local < next_seq) {
        /* The log ends inside a file: fetch it again from its file-begin so
         * the ingest checks all of it; the frames we have are dropped. */
        u->skip_until = next_seq;
        u->local_next = u->fb_local;
    } else {
        u->fb_local = 0;
    }
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = u, .kind = FY_KIND_UPSTREAM,
                       .label = chan->name};
    if ((rc = fy_actor_new(ctx->sched, &o, &u->self)) < 0) {
        free(u);
        return rc;
    }
    u->writer = fy_actor_ref(writer);
    u->pump = (fy__pump){.self = u->self, .retry_tag = TM_RETRY};
    fy_klog(FY_LOG_INFO, "mirroring channel", "channel=%s upstream=%s local_next_seq=%llu "
            "mode=%s resume_at_file_begin=%llu", u->name, ctx->conf->upstream,
            (unsigned long long)next_seq, u->fresh ? "start" : "resume",
            (unsigned long long)(u->skip_until ? u->fb_local : 0));
    /* The first connect runs on the actor's own turn (a timer of 0 ms). */
    fy_timer_after(u->self, 0, (uint64_t)u->gen << 8 | TM_RECONNECT);
    *out = u->self;
    return 0;
}
