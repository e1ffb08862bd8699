/*
 * fuzz_dec.c - libFuzzer target for src/proto: the incremental decoder and
 * the control-payload decoders.
 *
 * Input layout: byte 0 picks how many of the next bytes (0..7) describe the
 * split; the rest is the byte stream.  The stream is decoded twice -- once
 * in one piece, once in the pieces the split bytes describe (1..128 bytes,
 * or times 4096 when the top bit is set) -- and the two runs must give the
 * same frames and the same final error: that is the decoder's contract.
 * Each control frame's payload goes through its decoder, and what decodes
 * must encode back to the same bytes.  The payload decoders also get the
 * raw stream bytes directly, since a mutated frame rarely passes the CRCs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES 4096

/* No padding, so records compare with memcmp. */
typedef struct rec {
    uint64_t seq;
    uint32_t type, channel, len, crc, raw_crc, spare;
} rec;
_Static_assert(sizeof(rec) == 32, "rec has no padding");

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_dec: contract broken: %s\n", what);
        abort();
    }
}

/* Decode a control payload and, when it decodes, check it re-encodes to
 * the same bytes. */
static void payload_round_trip(uint8_t type, const uint8_t *p, size_t n)
{
    uint8_t out[FY_CTL_PAYLOAD_MAX + 16];
    size_t len = 0;
    int rc, erc = -1;

    switch (type) {
    case FY_FT_HELLO: {
        fy_hello v;
        if ((rc = fy_hello_decode(p, n, &v)) == 0)
            erc = fy_hello_encode(&v, out, sizeof out, &len);
        break;
    }
    case FY_FT_WELCOME: {
        fy_welcome v;
        if ((rc = fy_welcome_decode(p, n, &v)) == 0)
            erc = fy_welcome_encode(&v, out, sizeof out, &len);
        break;
    }
    case FY_FT_FILE_BEGIN: {
        fy_file_begin v;
        if ((rc = fy_file_begin_decode(p, n, &v)) == 0)
            erc = fy_file_begin_encode(&v, out, sizeof out, &len);
        break;
    }
    case FY_FT_FILE_END: {
        fy_file_end v;
        if ((rc = fy_file_end_decode(p, n, &v)) == 0)
            erc = fy_file_end_encode(&v, out, sizeof out, &len);
        break;
    }
    case FY_FT_ACK: {
        fy_ack v;
        if ((rc = fy_ack_decode(p, n, &v)) == 0)
            erc = fy_ack_encode(&v, out, sizeof out, &len);
        break;
    }
    case FY_FT_ERROR: {
        fy_error v;
        if ((rc = fy_error_decode(p, n, &v)) == 0)
            erc = fy_error_encode(&v, out, sizeof out, &len);
        break;
    }
    case FY_FT_NOTICE: {
        fy_notice v;
        if ((rc = fy_notice_decode(p, n, &v)) == 0)
            erc = fy_notice_encode(&v, out, sizeof out, &len);
        break;
    }
    default:
        return;
    }
    check(rc == 0 || rc == -FY_ETRUNC || rc == -FY_EPAYLOAD || rc == -FY_ENAME,
          "payload decode error code");
    if (rc == 0) {
        check(erc == 0, "decoded payload re-encodes");
        /* A welcome's decoder ignores fields it does not know after its
         * own (so later additions need no new flag): its re-encoding is the
         * input up to them.  Every other payload round-trips exactly. */
        bool same = type == FY_FT_WELCOME ? len <= n && memcmp(out, p, len) == 0
                                          : len == n && memcmp(out, p, n) == 0;
        if (!same) /* which type, for the reader of the crash report */
            fprintf(stderr, "fuzz_dec: type %s, %zu bytes in, %zu out\n",
                    fy_frame_type_name(type), n, len);
        check(same, type == FY_FT_WELCOME ? "re-encoded welcome is the input's prefix"
                                          : "re-encoded payload is identical");
        check(len <= fy_frame_payload_max(type, FY_PAYLOAD_MAX_LIMIT), "payload within type limit");
    }
}

/* Feed stream[0..n) to a decoder in pieces; piece sizes come from split
 * (nsplit bytes, 0 = one piece).  Returns the final rc, fills recs. */
static int run(const uint8_t *stream, size_t n, size_t max_payload, const uint8_t *split,
               size_t nsplit, rec *recs, size_t *nrec)
{
    fy_dec *d;
    if (fy_dec_new(max_payload, &d) != 0)
        abort();
    size_t pos = 0, k = 0, i = 0;
    int rc = 0;
    while (pos < n && rc >= 0) {
        size_t piece = n - pos;
        if (nsplit) {
            uint8_t s = split[i++ % nsplit];
            size_t want = (size_t)(s & 0x7f) + 1;
            if (s & 0x80)
                want *= 4096;
            if (want < piece)
                piece = want;
        }
        size_t off = 0;
        for (;;) { /* each round consumes bytes, or returns 0 or an error */
            size_t used;
            fy_frame f;
            rc = fy_dec_feed(d, stream + pos + off, piece - off, &used, &f);
            if (rc < 0)
                break;
            check(used <= piece - off, "used within input");
            off += used;
            if (rc == 0) {
                check(off == piece, "0 means all taken");
                break;
            }
            check(f.raw_len == FY_FRAME_HDR_SIZE + f.hdr.len, "raw_len");
            check(f.hdr.len <= fy_frame_payload_max(f.hdr.type, max_payload), "len checked");
            check(fy_crc32c(0, f.payload, f.hdr.len) == f.hdr.crc, "crc checked");
            if (k < MAX_FRAMES) {
                recs[k] = (rec){f.hdr.seq, f.hdr.type, f.hdr.channel, f.hdr.len, f.hdr.crc,
                                fy_crc32c(0, f.raw, f.raw_len), 0};
                k++;
            }
            payload_round_trip(f.hdr.type, f.payload, f.hdr.len);
            if (off == piece)
                break;
        }
        pos += piece;
    }
    if (rc >= 0)
        rc = 0;
    *nrec = k;
    fy_dec_free(d);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rec a[MAX_FRAMES], b[MAX_FRAMES]; /* fuzz harness only: one thread */

    if (size < 1)
        return 0;
    size_t nsplit = data[0] & 7;
    if (1 + nsplit > size)
        return 0;
    const uint8_t *split = data + 1;
    const uint8_t *stream = data + 1 + nsplit;
    size_t n = size - 1 - nsplit;
    /* A small limit reaches the oversize paths; bit 3 picks the default. */
    size_t maxp = (data[0] & 8) ? FY_PAYLOAD_MAX_DEFAULT : 4096;

    size_t na, nb;
    int ra = run(stream, n, maxp, split, 0, a, &na);
    int rb = run(stream, n, maxp, split, nsplit, b, &nb);
    check(ra == rb, "same final result for any split");
    check(na == nb, "same frame count for any split");
    check(memcmp(a, b, na * sizeof a[0]) == 0, "same frames for any split");

    for (uint8_t t = FY_FT_HELLO; t <= FY_FT_MAX_; t++)
        payload_round_trip(t, stream, n < 2048 ? n : 2048);

    fy_frame_hdr h;
    if (n >= FY_FRAME_HDR_SIZE && fy_frame_hdr_decode(stream, maxp, &h) == 0) {
        uint8_t re[FY_FRAME_HDR_SIZE];
        fy_frame_hdr_encode(&h, re);
        check(memcmp(re, stream, FY_FRAME_HDR_SIZE) == 0, "header re-encodes identically");
    }
    return 0;
}
