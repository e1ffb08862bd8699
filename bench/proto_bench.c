/*
 * proto_bench.c - how fast src/proto decodes and seals frames, measured
 * against memcpy of the same bytes in the same run (the machine is shared
 * and noisy, so only the ratio travels).
 *
 * decode: a stream of sealed frames is fed to fy_dec_feed in 256 KiB
 *         pieces, as a socket reader would; every header and payload CRC is
 *         checked; frames cut by a piece boundary go through the decoder's
 *         buffer.  GB/s counts stream bytes.
 * encode: fy_frame_seal over each payload (payload CRC + header), the work
 *         a sender does before writev.  GB/s counts payload bytes.
 * memcpy: the same stream copied in 256 KiB pieces.
 * Each figure is the best of several timed rounds, each bounded in count
 * and time; the whole run stays under about 15 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry/proto.h"

#define CHUNK (256u * 1024u)
#define STREAM_BYTES (32u << 20)
#define ROUNDS 5
#define ROUND_SECONDS 0.4

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct bench {
    size_t payload;   /* bytes per frame */
    size_t nframes;
    uint8_t *stream;  /* sealed frames back to back */
    size_t len;
    uint8_t *copy;    /* memcpy target */
} bench;

static volatile uint64_t sink; /* keeps results alive */

static void setup(bench *b, size_t payload)
{
    b->payload = payload;
    b->nframes = STREAM_BYTES / (FY_FRAME_HDR_SIZE + payload);
    b->len = b->nframes * (FY_FRAME_HDR_SIZE + payload);
    b->stream = malloc(b->len);
    b->copy = malloc(b->len);
    if (!b->stream || !b->copy) {
        fprintf(stderr, "level=error msg=\"malloc failed\" bytes=%zu action=exit\n", b->len);
        exit(1);
    }
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < b->len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b->stream[i] = (uint8_t)x;
    }
    memset(b->copy, 0, b->len);
    for (size_t i = 0; i < b->nframes; i++) {
        uint8_t *f = b->stream + i * (FY_FRAME_HDR_SIZE + payload);
        fy_frame_hdr h = {.type = FY_FT_DATA, .channel = 1, .seq = i + 1};
        fy_frame_seal(&h, f + FY_FRAME_HDR_SIZE, payload, f);
    }
}

/* One pass of each kind; returns the bytes it counts. */
static size_t pass_decode(bench *b, fy_dec *d)
{
    size_t frames = 0;
    for (size_t pos = 0; pos < b->len; pos += CHUNK) {
        size_t n = b->len - pos < CHUNK ? b->len - pos : CHUNK, off = 0;
        for (;;) {
            size_t used;
            fy_frame f;
            int rc = fy_dec_feed(d, b->stream + pos + off, n - off, &used, &f);
            off += used;
            if (rc < 0) {
                fprintf(stderr, "level=error msg=\"fy_dec_feed failed\" rc=%d action=exit\n", rc);
                exit(1);
            }
            if (rc == 0)
                break;
            frames++;
        }
    }
    if (frames != b->nframes) {
        fprintf(stderr, "level=error msg=\"frame count\" got=%zu want=%zu\n", frames, b->nframes);
        exit(1);
    }
    return b->len;
}

static size_t pass_encode(bench *b)
{
    uint8_t hdr[FY_FRAME_HDR_SIZE];
    uint64_t acc = 0;
    for (size_t i = 0; i < b->nframes; i++) {
        const uint8_t *p = b->stream + i * (FY_FRAME_HDR_SIZE + b->payload) + FY_FRAME_HDR_SIZE;
        fy_frame_hdr h = {.type = FY_FT_DATA, .channel = 1, .seq = i + 1};
        fy_frame_seal(&h, p, b->payload, hdr);
        acc += hdr[28];
    }
    sink += acc;
    return b->nframes * b->payload;
}

static size_t pass_memcpy(bench *b)
{
    for (size_t pos = 0; pos < b->len; pos += CHUNK) {
        size_t n = b->len - pos < CHUNK ? b->len - pos : CHUNK;
        memcpy(b->copy + pos, b->stream + pos, n);
    }
    sink += b->copy[b->len / 2];
    return b->len;
}

enum kind { K_DECODE, K_ENCODE, K_MEMCPY };

/* Best rate in bytes/s over ROUNDS rounds of at least ROUND_SECONDS. */
static double measure(bench *b, enum kind k)
{
    double best = 0;
    fy_dec *d = NULL;
    if (k == K_DECODE && fy_dec_new(FY_PAYLOAD_MAX_DEFAULT, &d) != 0)
        exit(1);
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now(), t;
        size_t bytes = 0;
        int passes = 0;
        do {
            bytes += k == K_DECODE ? pass_decode(b, d) : k == K_ENCODE ? pass_encode(b) : pass_memcpy(b);
            passes++;
            t = now() - t0;
        } while (t < ROUND_SECONDS && passes < 1000);
        double rate = (double)bytes / t;
        if (rate > best)
            best = rate;
    }
    fy_dec_free(d);
    return best;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        printf("usage: proto_bench\n"
               "Decode (fy_dec_feed, 256 KiB pieces, CRCs checked) and seal (fy_frame_seal)\n"
               "throughput for 64 KiB and 128 B data frames, against memcpy of the same bytes.\n"
               "Prints a table, then one key=value line.  Build it in a release build.\n");
        return strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    const size_t sizes[2] = {64 * 1024, 128};
    double dec[2], enc[2], cpy[2];
    printf("%-10s %10s %12s %12s %12s %10s %10s\n", "payload", "frames", "decode GB/s", "seal GB/s",
           "memcpy GB/s", "dec/memcpy", "Mframes/s");
    for (int i = 0; i < 2; i++) {
        bench b;
        setup(&b, sizes[i]);
        cpy[i] = measure(&b, K_MEMCPY);
        dec[i] = measure(&b, K_DECODE);
        enc[i] = measure(&b, K_ENCODE);
        double fps = dec[i] / (double)(FY_FRAME_HDR_SIZE + sizes[i]);
        printf("%-10zu %10zu %12.2f %12.2f %12.2f %10.2f %10.2f\n", sizes[i], b.nframes, dec[i] / 1e9,
               enc[i] / 1e9, cpy[i] / 1e9, dec[i] / cpy[i], fps / 1e6);
        free(b.stream);
        free(b.copy);
    }
    double fps128 = dec[1] / (double)(FY_FRAME_HDR_SIZE + 128);
    double efps128 = enc[1] / 128.0;
    printf("decode_gbps=%.2f encode_gbps=%.2f memcpy_gbps=%.2f decode_vs_memcpy=%.2f "
           "encode_vs_memcpy=%.2f decode128_gbps=%.2f encode128_gbps=%.2f decode128_fps=%.0f "
           "encode128_fps=%.0f memcpy128_gbps=%.2f\n",
           dec[0] / 1e9, enc[0] / 1e9, cpy[0] / 1e9, dec[0] / cpy[0], enc[0] / cpy[0], dec[1] / 1e9,
           enc[1] / 1e9, fps128, efps128, cpy[1] / 1e9);
    return 0;
}
