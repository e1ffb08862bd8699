/*
 * test_writer_batch.c - a channel writer's batch path (actors/writer.c,
 * actors/writer_batch.c: verify -> append -> publish -> acknowledge) in
 * process, without ferryd and without sockets: the real runtime, a real
 * channel log in a temp dir, the writer and its indexer made with
 * fy__writer_new as the registry makes them, and small recording actors
 * standing in for the sender's session, a subscribed forwarder and the
 * registry.  The batches come from a real fy_ingest fed encoded frames,
 * so they are exactly what a session hands the writer.
 *
 * What is checked is what arrives where, never when or in how many
 * pieces: the log holds the stored frames byte for byte; the forwarder
 * gets every stored seq once, in order, and nothing else; the sender gets
 * a credit for every batch's buffer bytes (one per batch, in order, also
 * for a batch hashed on a hash worker: an edge's mirror counts them), an
 * ack for every stored file-end and the one error that ended its stream.  Every wait is bounded
 * in count and time (WAIT_NS, generous: acks may come after a background
 * sync), and no assertion counts LIVE messages or batches per message.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/tc.h"
#include "ferry/digest.h"
#include "ferry/err.h"
#include "ingest.h"
#include "proto/test_util.h"
#include "relay/hasher.h"
#include "relay_int.h"

#define CHAN 1u
#define WAIT_NS (60ull * 1000000000ull) /* per wait; a background sync may come first */
#define MAX_RECS 4096
#define MAX_FRAMES 512

/* Wait until cond holds (polling, at most WAIT_NS), then assert it. */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        uint64_t end_ = fy_now_ns() + WAIT_NS;                                                     \
        for (unsigned n_ = 0; !(cond) && fy_now_ns() < end_ && n_ < 1000000; n_++)                 \
            tc_sleep_ms(2);                                                                        \
        assert_true(cond);                                                                         \
    } while (0)

/* ---- recording actors -------------------------------------------------------- */

typedef struct rec {
    uint32_t type, u32;
    uint64_t u0, u1;
} rec;

/* One stand-in (session, forwarder or registry): every message it gets is
 * recorded under mu, which the test thread takes to read them. */
typedef struct probe {
    pthread_mutex_t mu;
    rec r[MAX_RECS];
    size_t n;
    fy_actor *self;
    fy_actor *writer; /* a forwarder's: where UNSUBSCRIBE goes */
    /* forwarder: the frames of its LIVE batches, back to back, and their seqs */
    uint8_t *live;
    size_t nlive, caplive;
    uint64_t seqs[MAX_FRAMES];
    size_t nseqs;
    size_t lost; /* frames not copied (no memory) */
    /* session: the last DIGEST_ERR's detail */
    fy__digest_err derr;
    bool has_derr;
    /* session: the file in progress its last ATTACHED offered */
    fy__part_info part;
    bool has_part;
} probe;

static void on_live(probe *p, fy__batch *b)
{
    for (uint32_t i = 0; i < b->n; i++) {
        size_t len = b->fr[i].iov_len;
        if (p->nlive + len > p->caplive) {
            size_t cap = p->caplive ? 2 * p->caplive : 1u << 20;
            while (cap < p->nlive + len)
                cap *= 2;
            uint8_t *n = realloc(p->live, cap);
            if (!n) { /* (no cmocka assert off the test thread: check_live sees it) */
                p->lost++;
                continue;
            }
            p->live = n;
            p->caplive = cap;
        }
        memcpy(p->live + p->nlive, b->fr[i].iov_base, len);
        p->nlive += len;
        if (p->nseqs < MAX_FRAMES)
            p->seqs[p->nseqs++] = fy__batch_seq(b, i);
        else
            p->lost++;
    }
    fy__batch_unref(b);
}

static int probe_fn(fy_actor *self, void *state, fy_msg *m)
{
    probe *p = state;

    pthread_mutex_lock(&p->mu);
    if (p->n < MAX_RECS)
        p->r[p->n++] = (rec){m->type, m->u32, m->u64[0], m->u64[1]};
    switch (m->type) {
    case FY_RM_LIVE:
        on_live(p, m->ptr);
        break;
    case FY_RM_SUBSCRIBED:
        if (m->ptr) {
            p->r[p->n - 1].u0 = ((fy__sub_info *)m->ptr)->next_seq;
            p->r[p->n - 1].u32 = ((fy__sub_info *)m->ptr)->err;
        }
        free(m->ptr);
        break;
    case FY_RM_SHUTDOWN: /* a forwarder's: leave, as a real one does */
        if (p->writer)
            fy_actor_post(p->writer, FY_RM_UNSUBSCRIBE, 0, 0, 0, self, NULL);
        break;
    case FY_RM_ATTACHED:
        p->has_part = m->buf && fy_buf_len(m->buf) == sizeof p->part;
        if (p->has_part)
            memcpy(&p->part, fy_buf_cdata(m->buf), sizeof p->part);
        break;
    case FY_RM_DIGEST_ERR:
        if (m->buf && fy_buf_len(m->buf) == sizeof p->derr) {
            memcpy(&p->derr, fy_buf_cdata(m->buf), sizeof p->derr);
            p->has_derr = true;
        }
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&p->mu);
    return FY_MSG_DONE;
}

static probe *probe_new(fy_sched *s, const char *label)
{
    probe *p = calloc(1, sizeof *p);

    assert_non_null(p);
    pthread_mutex_init(&p->mu, NULL);
    fy_actor_opts o = {.fn = probe_fn, .state = p, .kind = 1, .label = label};
    assert_int_equal(fy_actor_new(s, &o, &p->self), 0);
    return p;
}

/* After the scheduler was joined (nothing runs the handler any more). */
static void probe_free(probe *p)
{
    fy_actor_unref(p->self);
    pthread_mutex_destroy(&p->mu);
    free(p->live);
    free(p);
}

/* How many messages of type p got. */
static size_t count(probe *p, uint32_t type)
{
    size_t k = 0;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++)
        k += p->r[i].type == type;
    pthread_mutex_unlock(&p->mu);
    return k;
}

/* The sum of u64[0] over p's messages of type. */
static uint64_t sum_u0(probe *p, uint32_t type)
{
    uint64_t s = 0;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++)
        if (p->r[i].type == type)
            s += p->r[i].u0;
    pthread_mutex_unlock(&p->mu);
    return s;
}

/* The k-th message of type p got (asserted to exist). */
static rec nth(probe *p, uint32_t type, size_t k)
{
    rec out = {0};
    bool found = false;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n && !found; i++)
        if (p->r[i].type == type && k-- == 0) {
            out = p->r[i];
            found = true;
        }
    pthread_mutex_unlock(&p->mu);
    assert_true(found);
    return out;
}

static size_t live_frames(probe *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->nseqs;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* ---- the writer, its log and the stand-ins ---------------------------------- */

typedef struct rig {
    char root[512];
    fy_conf conf;
    fy__live live;
    fy__ctx ctx;
    fy__chan chan;
    fy_store_opts so;
    fy_sched *sched;
    probe *reg;       /* the registry's stand-in */
    probe *fwd;       /* the running writer's subscribed forwarder */
    probe *fwds[4];   /* every writer start's (freed after the join) */
    fy_actor *refs[8]; /* the registry's references to writers and indexers */
    size_t starts, nrefs;
    uint64_t held;    /* buffer bytes of every batch handed to the writer */
    size_t batches;
} rig;

/* Open the channel's log and start its writer and indexer as the registry
 * does (actors/registry.c: open_chan), with a receiver subscribed before
 * any batch. */
static void writer_start(rig *g)
{
    fy_log *log;
    fy_idx *idx;

    assert_true(g->starts < 4);
    assert_int_equal(fy_store_open(g->chan.dir, &g->so, &log, &idx, NULL), 0);
    assert_int_equal(fy__writer_new(&g->ctx, &g->chan, log, idx, &g->chan.writer,
                                    &g->chan.indexer), 0);
    g->refs[g->nrefs++] = g->chan.writer;
    g->refs[g->nrefs++] = g->chan.indexer;
    g->fwd = g->fwds[g->starts++] = probe_new(g->sched, "forwarder");
    g->fwd->writer = g->chan.writer;
    fy_actor_post(g->chan.writer, FY_RM_SUBSCRIBE, 0, 0, 0, fy_actor_ref(g->fwd->self), NULL);
    WAIT_FOR(count(g->fwd, FY_RM_SUBSCRIBED) == 1);
    assert_int_equal(nth(g->fwd, FY_RM_SUBSCRIBED, 0).u32, 0);
}

/* Shut the writer down as the registry does: it syncs and closes the log
 * once its forwarder and its indexer have gone, then says WRITER_DONE. */
static void writer_stop(rig *g)
{
    fy_actor_post(g->chan.writer, FY_RM_SHUTDOWN, 0, 0, 0, NULL, NULL);
    WAIT_FOR(count(g->reg, FY_RM_WRITER_DONE) == g->starts);
    /* The forwarder's UNSUBSCRIBED is sent before WRITER_DONE, but the two
     * probes run on different threads: wait for it too. */
    WAIT_FOR(count(g->fwd, FY_RM_UNSUBSCRIBED) >= 1);
    assert_int_equal(count(g->fwd, FY_RM_UNSUBSCRIBED), 1);
}

static void rig_open(rig *g, int fsync_mode)
{
    memset(g, 0, sizeof *g);
    assert_int_equal(tc_tmpdir(g->root, sizeof g->root, "wbatch"), 0);
    fy_conf_defaults(&g->conf);
    g->conf.fsync_mode = fsync_mode;
    g->conf.fsync_ms = 20;
    atomic_init(&g->live.auth, NULL);
    fy_sched_opts so = {.threads = 2};
    assert_int_equal(fy_sched_new(&so, &g->sched), 0);
    assert_int_equal(fy_sched_start(g->sched), 0);
    g->reg = probe_new(g->sched, "registry");
    g->ctx.conf = &g->conf;
    g->ctx.live = &g->live;
    g->ctx.sched = g->sched;
    g->ctx.registry = g->reg->self;
    g->ctx.done_fd = -1;
    assert_int_equal(fy_bufpool_new(64u << 20, &g->ctx.pool), 0);
    assert_int_equal(fy_syncer_start(&g->ctx.syncer), 0); /* as fy_relay_new: write-behind */
    assert_int_equal(fy_hasher_start(2, &g->ctx.hasher), 0); /* and the hash beside it */
    snprintf(g->ctx.chan_root, sizeof g->ctx.chan_root, "%s", g->root);
    g->chan.id = CHAN;
    snprintf(g->chan.name, sizeof g->chan.name, "c");
    snprintf(g->chan.dir, sizeof g->chan.dir, "%s/c", g->root);
    assert_int_equal(mkdir(g->chan.dir, 0750), 0);
    g->so = (fy_store_opts){.segment_bytes = g->conf.segment_bytes,
                            .max_payload = g->conf.max_payload,
                            .buffered = g->conf.write_mode == FY_WRITE_BUFFERED};
    writer_start(g);
}

/* The writer, then the runtime (which stops the stand-ins). */
static void rig_close(rig *g)
{
    writer_stop(g);
    fy_sched_exit(g->sched);
    fy_sched_join(g->sched);
    for (size_t i = 0; i < g->nrefs; i++)
        fy_actor_unref(g->refs[i]);
    fy_sched_free(g->sched);
    fy_syncer_stop(g->ctx.syncer); /* after the writer closed its log */
    fy_hasher_stop(g->ctx.hasher);  /* and its hash stream */
    fy_bufpool_free(g->ctx.pool); /* every buffer came back */
}

static void rig_done(rig *g)
{
    probe_free(g->reg);
    for (size_t i = 0; i < g->starts; i++)
        probe_free(g->fwds[i]);
    assert_int_equal(tc_tmpdir_done(g->root), 0);
}

/* A session asks for the sender slot; returns the channel's next seq. */
static uint64_t attach(rig *g, probe *s)
{
    fy__attach_req *r = calloc(1, sizeof *r);

    assert_non_null(r);
    r->session = fy_actor_ref(s->self);
    snprintf(r->token, sizeof r->token, "t");
    size_t before = count(s, FY_RM_ATTACHED);
    fy_actor_post(g->chan.writer, FY_RM_ATTACH, 0, 0, 0, r, NULL);
    WAIT_FOR(count(s, FY_RM_ATTACHED) == before + 1);
    rec a = nth(s, FY_RM_ATTACHED, before);
    assert_int_equal(a.u32, 0);
    return a.u0;
}

/* ---- the sender's stream ------------------------------------------------------ */

typedef struct stream {
    uint8_t *b;
    size_t len, cap;
    size_t nf;                   /* frames */
    size_t off[MAX_FRAMES + 1];  /* frame i is b[off[i], off[i + 1]) */
    uint64_t seq[MAX_FRAMES];
    uint64_t next;               /* seq of the next frame */
} stream;

static void add(stream *s, uint8_t type, const void *p, size_t n)
{
    assert_true(s->nf < MAX_FRAMES);
    if (s->len + FY_FRAME_HDR_SIZE + n > s->cap) {
        s->cap = 2 * (s->len + FY_FRAME_HDR_SIZE + n);
        s->b = realloc(s->b, s->cap);
        assert_non_null(s->b);
    }
    s->off[s->nf] = s->len;
    s->seq[s->nf] = s->next;
    s->len += tu_frame(s->b + s->len, type, CHAN, s->next++, p, n);
    s->off[++s->nf] = s->len;
}

/* A file of `size` bytes of seed's data in data frames of varied sizes
 * (some above 64 KiB, which the ingest gives a buffer of their own); its
 * file-end carries the right digest, or a wrong one with bad_digest.
 * Returns the file-end's frame index; *sha gets the right digest. */
static size_t add_file(stream *s, const char *name, size_t size, uint64_t seed, bool bad_digest,
                       uint8_t sha[32])
{
    static const size_t piece[] = {1000, 70000, 300, 200000, 4096};
    uint8_t p[512], *data = malloc(size ? size : 1);
    fy_file_begin fb = {.size = size};
    fy_file_end fe = {.size = size};
    size_t n;

    assert_non_null(data);
    tc_fill(data, size, seed);
    snprintf(fb.name, sizeof fb.name, "%s", name);
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    add(s, FY_FT_FILE_BEGIN, p, n);
    for (size_t off = 0, i = 0; off < size; i++) {
        size_t k = piece[i % 5] < size - off ? piece[i % 5] : size - off;
        add(s, FY_FT_DATA, data + off, k);
        off += k;
    }
    assert_int_equal(fy_sha256_oneshot(data, size, fe.sha256), 0);
    memcpy(sha, fe.sha256, 32);
    if (bad_digest)
        fe.sha256[5] ^= 0x40;
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    add(s, FY_FT_FILE_END, p, n);
    free(data);
    return s->nf - 1;
}

static void post_batch(void *arg, fy__batch *b)
{
    rig *g = arg;

    g->held += b->held; /* b is the writer's once posted */
    g->batches++;
    assert_int_equal(fy_actor_post(g->chan.writer, FY_RM_BATCH, 0, 0, 0, b, NULL), 0);
}

/* A sender's connection: one ingest for its whole stream, as a session
 * has, starting at frame `from` of s; with part (what ATTACHED offered),
 * continuing the channel's file in progress. */
typedef struct conn {
    fy_ingest *in;
    const stream *s;
    size_t pos; /* bytes of s fed */
} conn;

static void conn_open(rig *g, conn *c, const stream *s, size_t from, const fy__part_info *part)
{
    fy_ingest_conf ic = {.pool = g->ctx.pool, .max_payload = g->conf.max_payload,
                         .budget = 48u << 20, .channel = CHAN, .next_seq = s->seq[from],
                         .out = post_batch, .arg = g, .in_file = part != NULL,
                         .file_size = part ? part->size : 0, .file_got = part ? part->got : 0};

    *c = (conn){.s = s, .pos = s->off[from]};
    assert_int_equal(fy_ingest_new(&ic, NULL, 0, &c->in), 0);
}

/* Feed the frames up to frame `to` (exclusive) and flush: one batch, or
 * more where the ingest fills one, goes to the writer. */
static void conn_send(conn *c, size_t to)
{
    size_t end = c->s->off[to];
    fy_frame f;

    while (c->pos < end) {
        struct iovec iov[2];
        int niov = fy_ingest_iov(c->in, iov);
        size_t got = 0;
        for (int i = 0; i < niov && c->pos + got < end; i++) {
            size_t n = end - c->pos - got;
            n = iov[i].iov_len < n ? iov[i].iov_len : n;
            memcpy(iov[i].iov_base, c->s->b + c->pos + got, n);
            got += n;
        }
        assert_true(got > 0);
        fy_ingest_got(c->in, got);
        c->pos += got;
        assert_int_equal(fy_ingest_next(c->in, &f), 0); /* no control frame, no fault */
    }
    fy_ingest_flush(c->in);
    assert_int_equal(fy_ingest_info_get(c->in)->next_seq, c->s->seq[to - 1] + 1);
}

static void conn_close(conn *c)
{
    fy_ingest_free(c->in);
}

/* A whole stream from its first frame, in batches cut before the frames
 * listed (ascending, the last one s->nf). */
static void send_all(rig *g, const stream *s, const size_t *cuts, size_t ncuts)
{
    conn c;

    conn_open(g, &c, s, 0, NULL);
    for (size_t i = 0; i < ncuts; i++)
        conn_send(&c, cuts[i]);
    conn_close(&c);
}

/* ---- checks ----------------------------------------------------------------- */

/* The closed channel log holds exactly the bytes want[0, n) (whole frames,
 * seqs from first), checked frame by frame and byte for byte. */
static void check_log(rig *g, uint64_t first, const uint8_t *want, size_t n, uint64_t frames)
{
    fy_log *log;
    fy_idx *idx;
    fy_recovery rep;
    fy_check_report cr;
    fy_logrd *rd;
    fy_idx_rec r;
    size_t len = 0;
    uint8_t *got = malloc(n + (2u << 20));

    assert_non_null(got);
    assert_int_equal(fy_store_check(g->chan.dir, g->conf.max_payload, &cr), 0);
    assert_int_equal(cr.frames, frames);
    assert_int_equal(cr.crc_errors + cr.index_errors + cr.unindexed + cr.torn_bytes, 0);
    assert_int_equal(fy_store_open(g->chan.dir, &g->so, &log, &idx, &rep), 0);
    assert_int_equal(rep.truncated_bytes, 0);
    assert_int_equal(rep.next_seq, first + frames);
    if (frames) {
        assert_int_equal(fy_idx_lookup(idx, first, &r), 0);
        assert_int_equal(fy_logrd_open(g->chan.dir, &rd), 0);
        assert_int_equal(fy_logrd_seek(rd, (fy_pos){r.seg, r.off}), 0);
        assert_int_equal(fy_logrd_read(rd, fy_log_end(log), got, n + (2u << 20), &len), 0);
        fy_logrd_close(rd);
    }
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
    fy_log_close(log);
    fy_idx_close(idx);
    free(got);
}

/* The forwarder got exactly frames [from, to) of s live: every seq once,
 * in order, byte for byte (checked after it left, so nothing more can
 * come). */
static void check_live(probe *f, const stream *s, size_t from, size_t to)
{
    size_t n = s->off[to] - s->off[from];

    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->lost, 0);
    assert_int_equal(f->nseqs, to - from);
    for (size_t i = 0; i < to - from; i++)
        assert_int_equal(f->seqs[i], s->seq[from + i]);
    assert_int_equal(f->nlive, n);
    assert_memory_equal(f->live, s->b + s->off[from], n);
    pthread_mutex_unlock(&f->mu);
}

/* ---- (1) files from an attached sender --------------------------------------- */

/* Two files, the first's frames over several batches and its file-end in
 * the batch that also holds the whole second file: every frame is stored
 * and sent live, every batch credited, both file-ends acked in order. */
static void test_files(void **state)
{
    int mode = *(int *)*state;
    stream s = {.next = 1};
    uint8_t sha[32];
    rig g;

    rig_open(&g, mode);
    probe *snd = probe_new(g.sched, "sender");
    assert_int_equal(attach(&g, snd), 1);
    size_t end1 = add_file(&s, "one.bin", 900000, 1, false, sha);
    size_t end2 = add_file(&s, "two.bin", 5000, 2, false, sha);
    size_t cuts[] = {2, 5, 6, end1, s.nf};
    send_all(&g, &s, cuts, sizeof cuts / sizeof *cuts);
    assert_true(g.batches >= 5);

    WAIT_FOR(count(snd, FY_RM_CREDIT) == g.batches && sum_u0(snd, FY_RM_CREDIT) == g.held);
    WAIT_FOR(count(snd, FY_RM_ACK) == 2);
    assert_int_equal(nth(snd, FY_RM_ACK, 0).u0, s.seq[end1]);
    assert_int_equal(nth(snd, FY_RM_ACK, 1).u0, s.seq[end2]);
    WAIT_FOR(live_frames(g.fwd) == s.nf);
    rig_close(&g);

    assert_int_equal(count(snd, FY_RM_CREDIT), g.batches);
    assert_int_equal(count(snd, FY_RM_ACK), 2);
    assert_int_equal(count(snd, FY_RM_DIGEST_ERR) + count(snd, FY_RM_STORE_ERR), 0);
    check_live(g.fwd, &s, 0, s.nf);
    check_log(&g, 1, s.b, s.len, s.nf);
    rig_done(&g);
    probe_free(snd);
    free(s.b);
}

/* ---- (2) a file-end with a wrong digest -------------------------------------- */

/* File A is good; file B's file-end carries a wrong SHA-256 and sits in a
 * batch with frames of file C after it.  A and B up to its file-end are
 * stored and sent live; the sender hears DIGEST_ERR for that seq (with
 * what B hashes to and what its file-end said), gets A's ack only, and
 * its next batch is dropped with a credit.  After DIGEST_RESET (an
 * upstream starting its stream again) a new file from the channel's next
 * seq is stored. */
static void test_bad_digest(void **state)
{
    (void)state;
    stream s = {.next = 1}, t;
    uint8_t sha_a[32], sha_b[32], sha_c[32], sha_d[32];
    rig g;

    rig_open(&g, FY_FSYNC_FILE_END);
    probe *snd = probe_new(g.sched, "sender");
    assert_int_equal(attach(&g, snd), 1);
    size_t end_a = add_file(&s, "a.bin", 3000, 3, false, sha_a);
    size_t end_b = add_file(&s, "b.bin", 300000, 4, true, sha_b);
    size_t end_c = add_file(&s, "c.bin", 100000, 5, false, sha_c);
    conn c;
    conn_open(&g, &c, &s, 0, NULL);
    conn_send(&c, end_a + 3);
    conn_send(&c, end_b + 3); /* the bad file-end inside this batch, file C's start after it */
    WAIT_FOR(count(snd, FY_RM_DIGEST_ERR) == 1);
    rec d = nth(snd, FY_RM_DIGEST_ERR, 0);
    assert_int_equal(d.u32, 0); /* a wrong digest, not a failure to hash */
    assert_int_equal(d.u0, s.seq[end_b]);
    pthread_mutex_lock(&snd->mu);
    assert_true(snd->has_derr);
    assert_memory_equal(snd->derr.got, sha_b, 32);
    assert_memory_not_equal(snd->derr.want, sha_b, 32);
    pthread_mutex_unlock(&snd->mu);

    /* its next batch (the rest of file C) is dropped, and credited */
    size_t b0 = g.batches;
    conn_send(&c, end_c + 1);
    conn_close(&c);
    assert_true(g.batches > b0);
    WAIT_FOR(count(snd, FY_RM_CREDIT) == g.batches && sum_u0(snd, FY_RM_CREDIT) == g.held);
    WAIT_FOR(count(snd, FY_RM_ACK) == 1);
    assert_int_equal(nth(snd, FY_RM_ACK, 0).u0, s.seq[end_a]);

    /* the stream starts again at the channel's next seq: a new file is stored */
    fy_actor_post(g.chan.writer, FY_RM_DIGEST_RESET, 0, 0, 0, snd->self, NULL);
    t = (stream){.next = s.seq[end_b]};
    size_t end_d = add_file(&t, "d.bin", 20000, 6, false, sha_d);
    size_t all[] = {t.nf};
    send_all(&g, &t, all, 1);
    WAIT_FOR(count(snd, FY_RM_ACK) == 2);
    assert_int_equal(nth(snd, FY_RM_ACK, 1).u0, t.seq[end_d]);
    WAIT_FOR(live_frames(g.fwd) == end_b + t.nf);
    rig_close(&g);

    assert_int_equal(count(snd, FY_RM_DIGEST_ERR), 1);
    assert_int_equal(count(snd, FY_RM_ACK), 2);
    assert_int_equal(count(snd, FY_RM_STORE_ERR), 0);
    assert_int_equal(sum_u0(snd, FY_RM_CREDIT), g.held);
    /* stored and live: A, B without its file-end, then D */
    size_t n = s.off[end_b];
    uint8_t *want = malloc(n + t.len);
    assert_non_null(want);
    memcpy(want, s.b, n);
    memcpy(want + n, t.b, t.len);
    check_log(&g, 1, want, n + t.len, end_b + t.nf);
    pthread_mutex_lock(&g.fwd->mu);
    assert_int_equal(g.fwd->lost, 0);
    assert_int_equal(g.fwd->nseqs, end_b + t.nf);
    for (size_t i = 0; i < g.fwd->nseqs; i++)
        assert_int_equal(g.fwd->seqs[i], 1 + i);
    assert_int_equal(g.fwd->nlive, n + t.len);
    assert_memory_equal(g.fwd->live, want, n + t.len);
    pthread_mutex_unlock(&g.fwd->mu);
    free(want);
    rig_done(&g);
    probe_free(snd);
    free(s.b);
    free(t.b);
}

/* ---- (3) a sender whose stream broke on a store error ------------------------ */

/* A batch that does not follow the log's end (the append refuses it,
 * -FY_ESEQ) stores nothing: the sender gets its credit and STORE_ERR with
 * the log's next seq, and its later batches are dropped with their
 * credits even where they would fit.  Once it detaches, the next sender
 * starts clean: its file is stored, sent live and acked to it alone. */
static void test_store_failed(void **state)
{
    (void)state;
    stream bad = {.next = 11}, s = {.next = 1};
    uint8_t sha[32];
    rig g;

    rig_open(&g, FY_FSYNC_FILE_END);
    probe *s1 = probe_new(g.sched, "sender-1");
    assert_int_equal(attach(&g, s1), 1);
    add_file(&bad, "gap.bin", 8000, 7, false, sha);
    size_t all_bad[] = {bad.nf};
    send_all(&g, &bad, all_bad, 1);
    WAIT_FOR(count(s1, FY_RM_STORE_ERR) == 1);
    rec e = nth(s1, FY_RM_STORE_ERR, 0);
    assert_int_equal(e.u32, FY_ESEQ);
    assert_int_equal(e.u0, 1);

    /* in sequence, but after the break: dropped */
    size_t end = add_file(&s, "ok.bin", 150000, 8, false, sha);
    size_t all[] = {s.nf};
    send_all(&g, &s, all, 1);
    WAIT_FOR(count(s1, FY_RM_CREDIT) == g.batches && sum_u0(s1, FY_RM_CREDIT) == g.held);
    uint64_t held1 = g.held;
    size_t batches1 = g.batches;

    /* the next sender */
    fy_actor_post(g.chan.writer, FY_RM_DETACH, 0, 0, 0, s1->self, NULL);
    probe *s2 = probe_new(g.sched, "sender-2");
    assert_int_equal(attach(&g, s2), 1);
    g.held = 0;
    g.batches = 0;
    send_all(&g, &s, all, 1);
    WAIT_FOR(count(s2, FY_RM_CREDIT) == g.batches && sum_u0(s2, FY_RM_CREDIT) == g.held);
    WAIT_FOR(count(s2, FY_RM_ACK) == 1);
    assert_int_equal(nth(s2, FY_RM_ACK, 0).u0, s.seq[end]);
    WAIT_FOR(live_frames(g.fwd) == s.nf);
    rig_close(&g);

    assert_int_equal(count(s1, FY_RM_CREDIT), batches1);
    assert_int_equal(sum_u0(s1, FY_RM_CREDIT), held1);
    assert_int_equal(count(s1, FY_RM_STORE_ERR), 1);
    assert_int_equal(count(s1, FY_RM_ACK) + count(s1, FY_RM_DIGEST_ERR), 0);
    assert_int_equal(count(s2, FY_RM_STORE_ERR) + count(s2, FY_RM_DIGEST_ERR), 0);
    check_live(g.fwd, &s, 0, s.nf);
    check_log(&g, 1, s.b, s.len, s.nf);
    rig_done(&g);
    probe_free(s1);
    probe_free(s2);
    free(bad.b);
    free(s.b);
}

/* ---- (4) a file continued by the next sender --------------------------------- */

/* The file in progress as ATTACHED offered it to p (asserted to be there). */
static fy__part_info offered(probe *p)
{
    pthread_mutex_lock(&p->mu);
    fy__part_info part = p->part;
    bool has = p->has_part;
    pthread_mutex_unlock(&p->mu);
    assert_true(has);
    return part;
}

/* Sender 1 sends a file's begin and first data frames and leaves; sender 2
 * is offered the file in progress and sends more of it and leaves; then
 * the writer restarts, so it has no hash of the stored part and hashes it
 * back from the log; sender 3 sends the rest and the file-end, whose
 * digest covers all three parts.  The file is stored once, whole, and its
 * file-end acked to sender 3. */
static void test_continue(void **state)
{
    (void)state;
    stream s = {.next = 1};
    uint8_t sha[32];
    probe *snd[3];
    rig g;
    conn c;

    rig_open(&g, FY_FSYNC_FILE_END);
    size_t end = add_file(&s, "long.bin", 1200000, 9, false, sha);
    size_t at[] = {0, 4, 9, end + 1}; /* sender i sends frames [at[i], at[i + 1]) */
    for (size_t i = 0; i < 3; i++) {
        if (i == 2) {
            writer_stop(&g);
            writer_start(&g);
        }
        snd[i] = probe_new(g.sched, "sender");
        assert_int_equal(attach(&g, snd[i]), s.seq[at[i]]);
        fy__part_info part = {0};
        if (i) {
            part = offered(snd[i]);
            assert_int_equal(part.seq, s.seq[0]);
            assert_int_equal(part.size, 1200000);
            assert_int_equal(part.got, s.off[at[i]] - s.off[1] - (at[i] - 1) * FY_FRAME_HDR_SIZE);
            assert_string_equal(part.name, "long.bin");
        }
        g.held = 0;
        g.batches = 0;
        conn_open(&g, &c, &s, at[i], i ? &part : NULL);
        conn_send(&c, at[i] + 2);
        conn_send(&c, at[i + 1]);
        conn_close(&c);
        WAIT_FOR(count(snd[i], FY_RM_CREDIT) == g.batches &&
                 sum_u0(snd[i], FY_RM_CREDIT) == g.held);
        if (i < 2)
            fy_actor_post(g.chan.writer, FY_RM_DETACH, 0, 0, 0, snd[i]->self, NULL);
    }
    WAIT_FOR(count(snd[2], FY_RM_ACK) == 1);
    assert_int_equal(nth(snd[2], FY_RM_ACK, 0).u0, s.seq[end]);
    WAIT_FOR(live_frames(g.fwd) == s.nf - at[2]);
    rig_close(&g);

    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(count(snd[i], FY_RM_ACK), i == 2);
        assert_int_equal(count(snd[i], FY_RM_DIGEST_ERR) + count(snd[i], FY_RM_STORE_ERR), 0);
    }
    check_live(g.fwds[0], &s, 0, at[2]); /* the first writer's receiver */
    check_live(g.fwds[1], &s, at[2], s.nf); /* the restarted one's */
    check_log(&g, 1, s.b, s.len, s.nf);
    rig_done(&g);
    for (size_t i = 0; i < 3; i++)
        probe_free(snd[i]);
    free(s.b);
}

static int file_end = FY_FSYNC_FILE_END, interval = FY_FSYNC_INTERVAL, never = FY_FSYNC_NEVER;

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_files, &file_end),
        cmocka_unit_test_prestate(test_files, &interval),
        cmocka_unit_test_prestate(test_files, &never),
        cmocka_unit_test(test_bad_digest),
        cmocka_unit_test(test_store_failed),
        cmocka_unit_test(test_continue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
