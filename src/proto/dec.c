/*
 * dec.c - the incremental frame decoder: bytes from a socket in, checked
 * frames out.
 *
 * A reader gets its bytes in whatever pieces recv() hands it, so the
 * decoder must give the same frames for any split of the same stream.
 * The fast path costs no copy: when a whole frame lies inside the caller's
 * input, the frame points into that input.  Only a frame cut by the end of
 * an input is assembled in the decoder's own buffer, which grows on demand
 * up to 32 + max_payload bytes -- and only after the header CRC has vouched
 * for the length, so a peer cannot make the decoder allocate with a lie.
 * The first error is final: the stream has lost its framing and nothing
 * after it can be trusted, so every later call returns the same error.
 *
 * Checks beyond the header (fy_frame_hdr_decode) that need no connection
 * state: the payload CRC (-FY_ECRC) and a stream frame with seq 0
 * (-FY_ESEQ; sequence numbers start at 1).
 *
 * Header-first mode (fy_dec_head, fy_dec_body) runs the same checks for a
 * reader that assembles frames itself: the relay's ingest reads a big
 * payload from the socket straight into its pool buffer, so the frame must
 * never pass through the decoder's buffer.  Both modes share check_hdr,
 * emit and the sticky error, so there is one set of rules, not two.
 */
#include "ferry/proto.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"

struct fy_dec {
    size_t max_payload;
    int err;          /* 0, or the error every later call returns */
    uint8_t *buf;     /* partial frame being assembled */
    size_t cap;       /* bytes allocated at buf */
    size_t have;      /* bytes of the partial frame in buf */
    fy_frame_hdr hdr; /* valid once have >= FY_FRAME_HDR_SIZE */
};

/* The first buffer holds a header and a small control payload; it grows to
 * the frame size when a longer frame is split. */
#define DEC_FIRST_CAP 4096u

int fy_dec_new(size_t max_payload, fy_dec **out)
{
    if (max_payload == 0 || max_payload > FY_PAYLOAD_MAX_LIMIT)
        return -EINVAL;
    fy_dec *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->max_payload = max_payload;
    *out = d;
    return 0;
}

void fy_dec_free(fy_dec *d)
{
    if (!d)
        return;
    free(d->buf);
    free(d);
}

static int fail(fy_dec *d, int err)
{
    d->err = err;
    return err;
}

static int check_hdr(fy_dec *d, const uint8_t *raw, fy_frame_hdr *h)
{
    int rc = fy_frame_hdr_decode(raw, d->max_payload, h);

    if (rc < 0)
        return rc;
    if (fy_frame_is_stream(h->type) && h->seq == 0)
        return -FY_ESEQ;
    return 0;
}

/* Fill f from a complete frame at raw whose header is h; checks the CRC. */
static int emit(const fy_frame_hdr *h, const uint8_t *raw, fy_frame *f)
{
    const uint8_t *payload = raw + FY_FRAME_HDR_SIZE;

    if (fy_crc32c(0, payload, h->len) != h->crc)
        return -FY_ECRC;
    f->hdr = *h;
    f->raw = raw;
    f->raw_len = FY_FRAME_HDR_SIZE + (size_t)h->len;
    f->payload = payload;
    return 1;
}

static int reserve(fy_dec *d, size_t need)
{
    if (need <= d->cap)
        return 0;
    size_t cap = need > DEC_FIRST_CAP ? need : DEC_FIRST_CAP;
    uint8_t *b = realloc(d->buf, cap);
    if (!b)
        return -ENOMEM;
    d->buf = b;
    d->cap = cap;
    return 0;
}

/* Move up to want - have bytes from p into the partial frame. */
static size_t take(fy_dec *d, const uint8_t *p, size_t n, size_t want)
{
    size_t k = want - d->have;

    if (k > n)
        k = n;
    memcpy(d->buf + d->have, p, k);
    d->have += k;
    return k;
}

/* Continue a frame that is partly in d->buf. */
static int feed_partial(fy_dec *d, const uint8_t *p, size_t n, size_t *used, fy_frame *f)
{
    size_t k = 0;
    int rc;

    if (d->have < FY_FRAME_HDR_SIZE) {
        k = take(d, p, n, FY_FRAME_HDR_SIZE);
        if (d->have < FY_FRAME_HDR_SIZE) {
            *used = k;
            return 0;
        }
        if ((rc = check_hdr(d, d->buf, &d->hdr)) < 0)
            return fail(d, rc);
        if ((rc = reserve(d, FY_FRAME_HDR_SIZE + (size_t)d->hdr.len)) < 0)
            return fail(d, rc);
    }
    size_t total = FY_FRAME_HDR_SIZE + (size_t)d->hdr.len;
    k += take(d, p + k, n - k, total);
    *used = k;
    if (d->have < total)
        return 0;
    d->have = 0;
    rc = emit(&d->hdr, d->buf, f);
    return rc < 0 ? fail(d, rc) : rc;
}

static int feed(fy_dec *d, const uint8_t *p, size_t n, size_t *used, fy_frame *f)
{
    fy_frame_hdr h;
    int rc;

    *used = 0;
    if (d->err)
        return d->err;
    if (d->have > 0)
        return feed_partial(d, p, n, used, f);
    if (n == 0)
        return 0;
    if (n < FY_FRAME_HDR_SIZE) {
        if ((rc = reserve(d, DEC_FIRST_CAP)) < 0)
            return fail(d, rc);
        *used = take(d, p, n, FY_FRAME_HDR_SIZE);
        return 0;
    }
    if ((rc = check_hdr(d, p, &h)) < 0)
        return fail(d, rc);
    size_t total = FY_FRAME_HDR_SIZE + (size_t)h.len;
    if (n >= total) { /* fast path: the whole frame is in the input */
        *used = total;
        rc = emit(&h, p, f);
        return rc < 0 ? fail(d, rc) : rc;
    }
    if ((rc = reserve(d, total)) < 0)
        return fail(d, rc);
    d->hdr = h;
    *used = take(d, p, n, total);
    return 0;
}

int fy_dec_feed(fy_dec *d, const uint8_t *p, size_t n, size_t *used, fy_frame *f)
{
    int rc = feed(d, p, n, used, f);

    if (rc < 0)
        *used = 0; /* the stream is dead; nothing the caller should account */
    return rc;
}

/* ---- header-first mode ---------------------------------------------------- */

int fy_dec_head(fy_dec *d, const uint8_t *p, size_t n, fy_frame_hdr *h)
{
    assert(d->have == 0); /* not in the middle of a frame fed to fy_dec_feed */
    if (d->err)
        return d->err;
    if (n < FY_FRAME_HDR_SIZE)
        return 0;
    int rc = check_hdr(d, p, h);
    return rc < 0 ? fail(d, rc) : 1;
}

int fy_dec_body(fy_dec *d, const fy_frame_hdr *h, const uint8_t *raw, fy_frame *f)
{
    if (d->err)
        return d->err;
    int rc = emit(h, raw, f);
    return rc < 0 ? fail(d, rc) : 0;
}
