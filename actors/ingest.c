/*
 * ingest.c - a sender's stream frames into pooled buffers and batches
 * (fy_ingest; see ingest.h for the interface).
 *
 * Frames are parsed by fy_dec in header-first mode so that a big data
 * frame can be read from the socket straight into its pool buffer: once
 * its header is checked, the buffer is allocated, the bytes already read
 * are copied in and the owner's next readv() puts the rest of the payload
 * there, with only the next frame's header going to rbuf.  That saves a
 * copy of nearly every byte.  Smaller frames are packed several to a
 * buffer; the owner flushes one batch per turn.
 *
 * Every file's SHA-256 is checked by the channel's writer (writer_batch.c),
 * not here: this runs on the sender's session, on the thread that also
 * reads the socket and checks the CRCs, and with the hash as well it was
 * the pipeline's slowest stage.  Here the file-end's size is checked
 * against the bytes received; the writer hashes the payloads and refuses a
 * file-end whose digest is wrong before it is stored.  Each file-begin and
 * file-end goes into its batch with what was decoded from it (a mark:
 * name, size, digest), so the writer never decodes a frame a second time.
 *
 * A connection may continue the channel's file in progress (its sender lost
 * the connection, or the relay restarted, mid-file): conf.in_file says so,
 * and if the first stream frame is data (or file-end), the file goes on at
 * conf.file_got (the writer's hash of the file goes on as well).
 *
 * Memory is bounded twice: a frame needs a pool buffer (-FY_EPOOL) and the
 * bytes at the writer not yet credited back must stay under the budget
 * (-EAGAIN).  Either way the frame waits where it is and the owner stops
 * reading, so TCP slows the sender down; nothing queues without bound.
 */
#include "ingest.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"

/* One read; its frames become one batch.  1 MiB rather than 256 KiB: a
 * quarter of the reads, +8-10 % delivered at 1, 4 and 16 receivers
 * (docs/benchmarks.md, "Where the copies go"); 2 MiB with 4 MiB batches
 * was slower (a batch the size of the channel budget stalls the pipeline). */
#define RBUF_SIZE (1024u << 10)
#define BATCH_FRAMES 1024          /* <= IOV_MAX: one pwritev per batch */
#define BATCH_BYTES (1u << 20)     /* hand a batch over at this size even mid-turn */
/* Data frames this big are read into their own buffer when they arrive
 * split.  Not lower: with 64 KiB frames, one readv per frame cost as much
 * as the copy it saves (docs/benchmarks.md, "Relay design measurements").
 * Must not exceed RBUF_SIZE, so every smaller frame fits rbuf whole. */
#define DIRECT_MIN (128u << 10)
#define PACK_CAP (64u << 10)       /* smaller frames share buffers of up to this size */
_Static_assert(DIRECT_MIN <= RBUF_SIZE, "a frame below DIRECT_MIN must fit the read buffer");
#define DIRECT_TAIL FY_FRAME_HDR_SIZE /* read behind a direct frame: the next header */

struct fy_ingest {
    fy_ingest_conf c;
    fy_dec *dec;
    uint8_t *rbuf;
    size_t rlen, roff;  /* unprocessed input: rbuf[roff..rlen) */
    int err;            /* the fault every later call returns, or 0 */
    bool have_frame;    /* f is checked and waits for a buffer */
    fy_frame f;
    /* What check_stream decoded from the checked frame, a file-begin or
     * file-end (mark: its type; 0 for data): it goes into the batch with
     * the frame, so the writer does not decode the frame again. */
    uint8_t mark;
    fy_file_begin mb;
    fy_file_end me;
    uint64_t mhole;     /* the hole frame being batched: its length */
    uint64_t file_size, file_got;
    bool inherit;       /* conf.in_file, until the first stream frame decides */
    bool skipping;      /* conf.skip_partial, until the first file-begin */
    fy__batch *batch;
    fy_buf *pack;       /* the batch's buffer small frames are appended to, or NULL */
    fy_buf *dbuf;       /* a big data frame being read straight into its buffer */
    fy_frame_hdr dhdr;  /* its checked header */
    size_t dhave, dtotal;
    fy_ingest_info info;
    fy_ingest_fault fault;
};

/* ---- life ------------------------------------------------------------------ */

int fy_ingest_new(const fy_ingest_conf *c, const uint8_t *p, size_t n, fy_ingest **out)
{
    fy_ingest *g;
    int rc;

    if (n > RBUF_SIZE || !c->out || (c->in_file && c->file_got > c->file_size))
        return -EINVAL;
    if (!(g = calloc(1, sizeof *g)))
        return -ENOMEM;
    if (!(g->rbuf = malloc(RBUF_SIZE)) || (rc = fy_dec_new(c->max_payload, &g->dec)) < 0) {
        rc = g->rbuf ? rc : -ENOMEM;
        fy_dec_free(g->dec);
        free(g->rbuf);
        free(g);
        return rc;
    }
    g->c = *c;
    g->info.next_seq = c->next_seq;
    g->skipping = c->skip_partial;
    if (c->in_file) {
        g->info.in_file = g->inherit = true;
        g->file_size = c->file_size;
        g->file_got = c->file_got;
    }
    if (n)
        memcpy(g->rbuf, p, n);
    g->rlen = n;
    *out = g;
    return 0;
}

void fy_ingest_free(fy_ingest *g)
{
    if (!g)
        return;
    fy__batch_unref(g->batch);
    fy_buf_unref(g->dbuf);
    fy_dec_free(g->dec);
    free(g->rbuf);
    free(g);
}

void fy_ingest_flush(fy_ingest *g)
{
    if (!g)
        return;
    g->pack = NULL; /* the writer may read it from now on: never append again */
    if (!g->batch)
        return;
    if (g->batch->n)
        g->c.out(g->c.arg, g->batch);
    else
        fy__batch_unref(g->batch);
    g->batch = NULL;
}

void fy_ingest_stop(fy_ingest *g)
{
    if (!g)
        return;
    fy_ingest_flush(g);
    fy_buf_unref(g->dbuf); /* a frame cut short by the end of input is not stored */
    g->dbuf = NULL;
    g->have_frame = false;
}

void fy_ingest_credit(fy_ingest *g, uint64_t bytes)
{
    if (g)
        g->info.inflight -= bytes < g->info.inflight ? bytes : g->info.inflight;
}

const fy_ingest_fault *fy_ingest_fault_get(const fy_ingest *g)
{
    return &g->fault;
}

const fy_ingest_info *fy_ingest_info_get(const fy_ingest *g)
{
    static const fy_ingest_info none;

    return g ? &g->info : &none;
}

/* ---- faults ---------------------------------------------------------------- */

/* Record why the stream ends here, hand over the frames before it and
 * drop the rest.  Returns code for the caller to pass up. */
static int fault(fy_ingest *g, fy_ingest_why why, int code, const fy_frame_hdr *h)
{
    g->fault = (fy_ingest_fault){.why = why, .code = code, .expect_seq = g->info.next_seq,
                                 .file_size = g->file_size, .file_got = g->file_got};
    if (h)
        g->fault.hdr = *h;
    g->err = code;
    fy_ingest_stop(g);
    return code;
}

static int fault_alloc(fy_ingest *g, int cause, size_t need)
{
    int rc = fault(g, FY_INGEST_ALLOC, -FY_EINTERNAL, NULL);

    g->fault.cause = cause;
    g->fault.alloc = need;
    return rc;
}

/* ---- stream rules ---------------------------------------------------------- */

/* cont: the connection inherited a file in progress and this file-begin
 * is its first stream frame: the new file replaces that one. */
static int check_begin(fy_ingest *g, const fy_frame *f, bool cont)
{
    fy_file_begin fb;
    int rc = fy_file_begin_decode(f->payload, f->hdr.len, &fb);

    if (rc < 0)
        return fault(g, FY_INGEST_BEGIN_PAYLOAD, rc, &f->hdr);
    if (g->info.in_file && !cont)
        return fault(g, FY_INGEST_BEGIN_IN_FILE, -FY_EPROTO, &f->hdr);
    g->info.in_file = true;
    g->file_size = fb.size;
    g->file_got = 0;
    g->mark = FY_FT_FILE_BEGIN;
    g->mb = fb;
    return 0;
}

static int check_data(fy_ingest *g, const fy_frame *f)
{
    if (!g->info.in_file)
        return fault(g, FY_INGEST_DATA_OUTSIDE, -FY_EPROTO, &f->hdr);
    g->file_got += f->hdr.len;
    if (g->file_got > g->file_size)
        return fault(g, FY_INGEST_DATA_SIZE, -FY_ESIZE, &f->hdr);
    return 0;
}

/* A hole stands for its length in zeros: sized like data. */
static int check_hole(fy_ingest *g, const fy_frame *f)
{
    fy_hole ho;
    int rc = fy_hole_decode(f->payload, f->hdr.len, &ho);

    if (rc < 0)
        return fault(g, FY_INGEST_BEGIN_PAYLOAD, rc, &f->hdr);
    if (!g->info.in_file)
        return fault(g, FY_INGEST_DATA_OUTSIDE, -FY_EPROTO, &f->hdr);
    if (ho.len > g->file_size - g->file_got)
        return fault(g, FY_INGEST_DATA_SIZE, -FY_ESIZE, &f->hdr);
    g->file_got += ho.len;
    g->mark = FY_FT_HOLE;
    g->mhole = ho.len;
    return 0;
}

static int check_end(fy_ingest *g, const fy_frame *f)
{
    fy_file_end fe;
    int rc = fy_file_end_decode(f->payload, f->hdr.len, &fe);

    if (rc < 0)
        return fault(g, FY_INGEST_END_PAYLOAD, rc, &f->hdr);
    if (!g->info.in_file)
        return fault(g, FY_INGEST_END_OUTSIDE, -FY_EPROTO, &f->hdr);
    if (fe.size != g->file_got || fe.size != g->file_size) {
        rc = fault(g, FY_INGEST_END_SIZE, -FY_ESIZE, &f->hdr);
        g->fault.end_size = fe.size;
        return rc;
    }
    g->info.in_file = false; /* its digest is the writer's to check */
    g->mark = FY_FT_FILE_END;
    g->me = fe;
    return 0;
}

/* The rules a checked stream frame must follow on this channel: its id,
 * the next seq, and file-begin / data / file-end in order and in size.
 * 0 to keep the frame, 1 to drop it (skip_partial), or a fault. */
static int check_stream(fy_ingest *g, const fy_frame *f)
{
    const fy_frame_hdr *h = &f->hdr;
    int rc;

    g->mark = 0;
    if (h->channel != g->c.channel)
        return fault(g, FY_INGEST_CHANNEL, -FY_EPROTO, h);
    if (h->seq != g->info.next_seq)
        return fault(g, FY_INGEST_SEQ, -FY_ESEQ, h);
    if (g->skipping && h->type != FY_FT_FILE_BEGIN) {
        g->info.next_seq++;
        g->info.skipped++;
        return 1; /* the rest of a file whose begin is not ours: drop it */
    }
    g->skipping = false;
    bool cont = g->inherit;
    g->inherit = false;
    if (cont && h->type != FY_FT_FILE_BEGIN)
        g->info.continued = true;
    rc = h->type == FY_FT_FILE_BEGIN ? check_begin(g, f, cont)
         : h->type == FY_FT_DATA     ? check_data(g, f)
         : h->type == FY_FT_HOLE     ? check_hole(g, f)
                                     : check_end(g, f);
    if (rc == 0)
        g->info.next_seq++;
    return rc;
}

/* ---- buffers and batches --------------------------------------------------- */

/* A pool buffer of at least need bytes within the budget.  0, -EAGAIN
 * (budget spent), -FY_EPOOL (pool exhausted), or a fault. */
static int grab(fy_ingest *g, size_t need, fy_buf **out)
{
    if (g->info.inflight && g->info.inflight + need > g->c.budget)
        return -EAGAIN;
    int rc = fy_buf_alloc(g->c.pool, need, out);
    if (rc < 0 && rc != -FY_EPOOL)
        return fault_alloc(g, rc, need);
    return rc;
}

/* Make room in the batch for one more frame (its buffer, its mark). */
static int batch_room(fy_ingest *g)
{
    if (g->batch && g->batch->n == g->batch->cap)
        fy_ingest_flush(g);
    if (!g->batch && !(g->batch = fy__batch_new(BATCH_FRAMES)))
        return fault_alloc(g, -ENOMEM, 0);
    if (g->mark && fy__batch_mark_room(g->batch, g->mark == FY_FT_FILE_BEGIN
                                                     ? strlen(g->mb.name) : 0) < 0)
        return fault_alloc(g, -ENOMEM, 0);
    return 0;
}

/* The batch takes the buffer's reference; the budget counts it. */
static void batch_buf(fy_ingest *g, fy_buf *b)
{
    g->batch->bufs[g->batch->nbufs++] = b;
    g->batch->held += fy_buf_cap(b);
    g->info.inflight += fy_buf_cap(b);
}

static void batch_frame(fy_ingest *g, uint8_t *p, size_t len)
{
    uint32_t i = g->batch->n++;

    g->batch->fr[i] = (struct iovec){p, len};
    if (g->mark == FY_FT_FILE_BEGIN)
        fy__batch_mark_begin(g->batch, i, &g->mb);
    else if (g->mark == FY_FT_FILE_END)
        fy__batch_mark_end(g->batch, i, &g->me);
    else if (g->mark == FY_FT_HOLE)
        fy__batch_mark_hole(g->batch, i, g->mhole);
    g->mark = 0;
    g->batch->bytes += len;
    g->info.frames++;
    g->info.bytes += len;
    if (g->batch->bytes >= BATCH_BYTES)
        fy_ingest_flush(g);
}

/* Copy the checked frame at rbuf+roff into the batch: a small one is
 * appended to the batch's pack buffer (a new one sized for what this read
 * still holds, up to PACK_CAP), a big one gets a buffer of its own.
 * Returns 0, or what grab() returned (the frame stays where it is). */
static int store_frame(fy_ingest *g)
{
    size_t need = g->f.raw_len;
    fy_buf *b;
    int rc;

    if ((rc = batch_room(g)) < 0)
        return rc;
    if (need <= PACK_CAP) {
        if (!g->pack || fy_buf_cap(g->pack) - fy_buf_len(g->pack) < need) {
            size_t want = g->rlen - g->roff;
            want = want > PACK_CAP ? PACK_CAP : want < need ? need : want;
            if ((rc = grab(g, want, &b)) < 0)
                return rc;
            fy_buf_set_len(b, 0);
            batch_buf(g, b);
            g->pack = b;
        }
        b = g->pack;
    } else {
        if ((rc = grab(g, need, &b)) < 0)
            return rc;
        fy_buf_set_len(b, 0);
        batch_buf(g, b);
        g->pack = NULL;
    }
    uint8_t *dst = fy_buf_data(b) + fy_buf_len(b);
    memcpy(dst, g->f.raw, need);
    fy_buf_set_len(b, fy_buf_len(b) + need);
    g->roff += need;
    g->have_frame = false;
    batch_frame(g, dst, need);
    return 0;
}

/* ---- frames ---------------------------------------------------------------- */

/* Keep an incomplete frame at the start of rbuf for the next read. */
static void keep_partial(fy_ingest *g)
{
    size_t left = g->rlen - g->roff;

    if (left && g->roff)
        memmove(g->rbuf, g->rbuf + g->roff, left);
    g->roff = 0;
    g->rlen = left;
}

/* The frame with header h lies whole at rbuf+roff: a control frame goes
 * to the owner (1), a stream frame is checked and waits for a buffer. */
static int take_whole(fy_ingest *g, const fy_frame_hdr *h, fy_frame *ctl)
{
    fy_frame f;
    int rc = fy_dec_body(g->dec, h, g->rbuf + g->roff, &f);

    if (rc < 0)
        return fault(g, FY_INGEST_BAD_FRAME, rc, NULL);
    if (!fy_frame_is_stream(h->type)) {
        *ctl = f;
        g->roff += f.raw_len;
        return 1;
    }
    if ((rc = check_stream(g, &f)) != 0) {
        if (rc > 0)
            g->roff += f.raw_len; /* dropped */
        return rc < 0 ? rc : 0;
    }
    g->f = f;
    g->have_frame = true;
    return 0;
}

/* A big data frame has only partly arrived: give it its own buffer and
 * let the next reads fill it.  0, or what grab() returned (the bytes wait
 * in rbuf). */
static int start_direct(fy_ingest *g, const fy_frame_hdr *h, size_t total)
{
    size_t avail = g->rlen - g->roff;
    fy_buf *b;
    int rc = grab(g, total, &b);

    if (rc < 0)
        return rc;
    memcpy(fy_buf_data(b), g->rbuf + g->roff, avail);
    g->dbuf = b;
    g->dhdr = *h;
    g->dhave = avail;
    g->dtotal = total;
    g->roff = g->rlen = 0;
    return 0;
}

/* The direct frame is complete: check its CRC and the stream rules, then
 * hand its buffer to the batch as it is. */
static int finish_direct(fy_ingest *g)
{
    fy_buf *b = g->dbuf;
    uint8_t *raw = fy_buf_data(b);
    fy_frame f;
    int rc;

    g->dbuf = NULL;
    if ((rc = fy_dec_body(g->dec, &g->dhdr, raw, &f)) < 0)
        rc = fault(g, FY_INGEST_BAD_FRAME, rc, NULL);
    else if ((rc = check_stream(g, &f)) == 0)
        rc = batch_room(g);
    if (rc != 0) { /* a fault, or a frame dropped (1) */
        fy_buf_unref(b);
        return rc < 0 ? rc : 0;
    }
    fy_buf_set_len(b, g->dtotal);
    batch_buf(g, b);
    g->pack = NULL;
    batch_frame(g, raw, g->dtotal);
    return 0;
}

int fy_ingest_next(fy_ingest *g, fy_frame *ctl)
{
    fy_frame_hdr h;
    int rc;

    if (g->err)
        return g->err;
    for (;;) {
        if (g->dbuf) {
            if (g->dhave < g->dtotal)
                return 0;
            if ((rc = finish_direct(g)) < 0)
                return rc;
        }
        if (g->have_frame) {
            if ((rc = store_frame(g)) < 0)
                return rc;
            continue;
        }
        size_t avail = g->rlen - g->roff;
        rc = fy_dec_head(g->dec, g->rbuf + g->roff, avail, &h);
        if (rc < 0)
            return fault(g, FY_INGEST_BAD_FRAME, rc, NULL);
        size_t total = rc ? FY_FRAME_HDR_SIZE + (size_t)h.len : SIZE_MAX;
        if (avail >= total) {
            if ((rc = take_whole(g, &h, ctl)) != 0)
                return rc;
            continue;
        }
        /* A torn header or a small frame waits in rbuf for the next read. */
        if (total == SIZE_MAX || h.type != FY_FT_DATA || total < DIRECT_MIN) {
            keep_partial(g);
            return 0;
        }
        return start_direct(g, &h, total);
    }
}

/* ---- input ----------------------------------------------------------------- */

int fy_ingest_iov(fy_ingest *g, struct iovec iov[2])
{
    size_t room = RBUF_SIZE - g->rlen;
    int k = 0;

    if (g->dbuf)
        iov[k++] = (struct iovec){fy_buf_data(g->dbuf) + g->dhave, g->dtotal - g->dhave};
    if (g->dbuf && room > DIRECT_TAIL)
        room = DIRECT_TAIL;
    iov[k++] = (struct iovec){g->rbuf + g->rlen, room};
    return k;
}

void fy_ingest_got(fy_ingest *g, size_t n)
{
    if (g->dbuf) {
        size_t d = g->dtotal - g->dhave;
        d = n < d ? n : d;
        g->dhave += d;
        n -= d;
    }
    g->rlen += n;
}

/* ---- faults in words -------------------------------------------------------- */

void fy_ingest_fault_text(const fy_ingest *g, char *buf, size_t cap)
{
    const fy_ingest_fault *x = &g->fault;
    const char *tn = fy_frame_type_name(x->hdr.type);
    unsigned long long seq = x->hdr.seq, exp = x->expect_seq, got = x->file_got,
                       size = x->file_size;
    switch (x->why) {
    case FY_INGEST_BAD_FRAME:
        snprintf(buf, cap, "bad frame after seq %llu: %s", exp ? exp - 1 : 0, fy_strerror(x->code));
        break;
    case FY_INGEST_CHANNEL:
        snprintf(buf, cap, "%s seq %llu: header channel %u, expected %u", tn, seq,
                 x->hdr.channel, g->c.channel);
        break;
    case FY_INGEST_SEQ:
        snprintf(buf, cap, "%s: seq %llu, expected %llu", tn, seq, exp);
        break;
    case FY_INGEST_BEGIN_PAYLOAD:
    case FY_INGEST_END_PAYLOAD:
        snprintf(buf, cap, "%s seq %llu: %s", tn, seq, fy_strerror(x->code));
        break;
    case FY_INGEST_BEGIN_IN_FILE:
        snprintf(buf, cap, "file-begin seq %llu inside a file (no file-end before it)", seq);
        break;
    case FY_INGEST_DATA_OUTSIDE:
        snprintf(buf, cap, "data seq %llu outside a file (no file-begin)", seq);
        break;
    case FY_INGEST_DATA_SIZE:
        snprintf(buf, cap, "data seq %llu: %llu bytes so far, file-begin said %llu", seq, got, size);
        break;
    case FY_INGEST_END_OUTSIDE:
        snprintf(buf, cap, "file-end seq %llu outside a file", seq);
        break;
    case FY_INGEST_END_SIZE:
        snprintf(buf, cap, "file-end seq %llu: size %llu, received %llu, file-begin said %llu",
                 seq, (unsigned long long)x->end_size, got, size);
        break;
    case FY_INGEST_ALLOC:
        if (x->alloc)
            snprintf(buf, cap, "fy_buf_alloc(%zu) failed: %s", x->alloc, fy_strerror(x->cause));
        else
            snprintf(buf, cap, "out of memory for a batch");
        break;
    default:
        snprintf(buf, cap, "%s", fy_strerror(x->code));
        break;
    }
}

/* ---- a new connection ------------------------------------------------------ */

int fy_ingest_restart(fy_ingest *g, uint32_t channel, const uint8_t *p, size_t n)
{
    size_t keep = 0;

    if (g->err)
        return g->err;
    /* A direct frame not yet whole was not checked: the stream resumes at
     * its seq.  A checked frame waiting for a buffer was counted (next_seq,
     * file size), so it stays; it is at most PACK_CAP or DIRECT_MIN bytes. */
    fy_buf_unref(g->dbuf);
    g->dbuf = NULL;
    if (g->have_frame) {
        keep = g->f.raw_len;
        memmove(g->rbuf, g->f.raw, keep);
        g->f.raw = g->rbuf;
        g->f.payload = g->rbuf + FY_FRAME_HDR_SIZE;
    }
    if (keep + n > RBUF_SIZE)
        return -ENOBUFS;
    if (n)
        memcpy(g->rbuf + keep, p, n);
    g->roff = 0;
    g->rlen = keep + n;
    g->c.channel = channel;
    return 0;
}
