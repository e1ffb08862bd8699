/*
 * fuzz_dec_seeds.c - writes the seed corpus of fuzz_dec (tests/fuzz/corpus/
 * dec/) with the real encoders, so the seeds are valid frames and stay
 * valid if the format changes: regenerate them rather than edit them.
 * With --hex it prints the hello and data frames used as the worked
 * example in docs/protocol.md instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/proto.h"

typedef struct out {
    uint8_t b[4096];
    size_t n;
} out;

static void frame(out *o, uint8_t type, uint32_t channel, uint64_t seq, const void *p, size_t len)
{
    fy_frame_hdr h = {.type = type, .channel = channel, .seq = seq};

    if (o->n + FY_FRAME_HDR_SIZE + len > sizeof o->b) {
        fprintf(stderr, "level=error msg=\"seed too big\" action=exit\n");
        exit(1);
    }
    if (len)
        memcpy(o->b + o->n + FY_FRAME_HDR_SIZE, p, len);
    fy_frame_seal(&h, p, len, o->b + o->n);
    o->n += FY_FRAME_HDR_SIZE + len;
}

static void hello(out *o, uint8_t role, uint8_t mode, uint64_t from, const char *ch, const char *tok)
{
    fy_hello v = {.role = role, .mode = mode, .resume_from = from};
    uint8_t p[FY_CTL_PAYLOAD_MAX];
    size_t n;
    snprintf(v.channel, sizeof v.channel, "%s", ch);
    snprintf(v.token, sizeof v.token, "%s", tok);
    if (fy_hello_encode(&v, p, sizeof p, &n) < 0)
        abort();
    frame(o, FY_FT_HELLO, 0, 0, p, n);
}

static void welcome(out *o, uint32_t id, uint64_t next, uint64_t first)
{
    fy_welcome v = {.channel = id, .next_seq = next, .first_seq = first, .max_payload = 1 << 20};
    uint8_t p[64];
    size_t n;
    if (fy_welcome_encode(&v, p, sizeof p, &n) < 0)
        abort();
    frame(o, FY_FT_WELCOME, id, 0, p, n);
}

/* file-begin, data in chunk-byte pieces, file-end; returns the next seq. */
static uint64_t file(out *o, uint32_t id, uint64_t seq, const char *name, size_t size, size_t chunk)
{
    uint8_t p[FY_CTL_PAYLOAD_MAX], data[2048];
    size_t n;
    fy_file_begin fb = {.size = size};
    snprintf(fb.name, sizeof fb.name, "%s", name);
    if (fy_file_begin_encode(&fb, p, sizeof p, &n) < 0)
        abort();
    frame(o, FY_FT_FILE_BEGIN, id, seq++, p, n);
    for (size_t i = 0; i < size && i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    for (size_t off = 0; off < size; off += chunk)
        frame(o, FY_FT_DATA, id, seq++, data + off, size - off < chunk ? size - off : chunk);
    fy_file_end fe = {.size = size};
    if (fy_sha256_oneshot(data, size, fe.sha256) < 0 || fy_file_end_encode(&fe, p, sizeof p, &n) < 0)
        abort();
    frame(o, FY_FT_FILE_END, id, seq++, p, n);
    return seq;
}

static void ack(out *o, uint32_t id, uint64_t seq)
{
    fy_ack v = {.seq = seq};
    uint8_t p[8];
    size_t n;
    fy_ack_encode(&v, p, sizeof p, &n);
    frame(o, FY_FT_ACK, id, 0, p, n);
}

static void error(out *o, uint32_t code, const char *text)
{
    fy_error v = {.code = code};
    uint8_t p[FY_CTL_PAYLOAD_MAX];
    size_t n;
    snprintf(v.text, sizeof v.text, "%s", text);
    if (fy_error_encode(&v, p, sizeof p, &n) < 0)
        abort();
    frame(o, FY_FT_ERROR, 0, 0, p, n);
}

/* Seed file = control byte, split bytes, stream. */
static void save(const char *dir, const char *name, uint8_t ctl, const uint8_t *split, size_t nsplit,
                 const out *o, size_t cut)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "level=error msg=\"fopen failed\" path=%s err=%d action=exit\n", path, errno);
        exit(1);
    }
    uint8_t c = (uint8_t)(ctl | nsplit);
    fwrite(&c, 1, 1, f);
    fwrite(split, 1, nsplit, f);
    fwrite(o->b, 1, cut ? cut : o->n, f);
    fclose(f);
}

static void hex(const char *title, const uint8_t *b, size_t n)
{
    printf("%s (%zu bytes)\n", title, n);
    for (size_t i = 0; i < n; i += 16) {
        printf("%04zx ", i);
        for (size_t j = i; j < i + 16 && j < n; j++)
            printf(" %02x", b[j]);
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0) {
        printf("usage: fuzz_dec_seeds DIR   write fuzz_dec's seed corpus into DIR\n"
               "       fuzz_dec_seeds --hex print the worked example of docs/protocol.md\n");
        return argc == 2 ? 0 : 2;
    }
    if (strcmp(argv[1], "--hex") == 0) {
        out o = {.n = 0};
        hello(&o, FY_ROLE_SENDER, FY_MODE_LIVE, 0, "news", "s3cret");
        hex("hello: sender, channel \"news\", token \"s3cret\"", o.b, o.n);
        out d = {.n = 0};
        frame(&d, FY_FT_DATA, 7, 42, "hello, ferry", 12);
        hex("data: channel 7, seq 42, payload \"hello, ferry\"", d.b, d.n);
        return 0;
    }
    const char *dir = argv[1];
    const uint8_t split3[] = {4, 0x81, 30};
    const uint8_t split1[] = {0};

    out o = {.n = 0};
    hello(&o, FY_ROLE_SENDER, FY_MODE_LIVE, 0, "news", "s3cret");
    welcome(&o, 7, 1, 1);
    uint64_t seq = file(&o, 7, 1, "report.pdf", 1500, 512);
    ack(&o, 7, seq - 1);
    frame(&o, FY_FT_BYE, 7, 0, NULL, 0);
    save(dir, "sender-session", 0, split3, sizeof split3, &o, 0);
    save(dir, "sender-session-torn", 8, split1, sizeof split1, &o, o.n - 100);

    o.n = 0;
    hello(&o, FY_ROLE_RECEIVER, FY_MODE_RESUME, 17, "video-feed_2", "");
    welcome(&o, 3, 17, 5);
    seq = file(&o, 3, 17, "a", 0, 1);
    seq = file(&o, 3, seq, "b.bin", 100, 40);
    frame(&o, FY_FT_PING, 3, 0, "12345678", 8);
    frame(&o, FY_FT_PONG, 3, 0, "12345678", 8);
    ack(&o, 3, seq - 1);
    save(dir, "receiver-session", 0, NULL, 0, &o, 0);

    o.n = 0;
    error(&o, FY_EBUSY, "channel news already has a sender");
    error(&o, FY_EAUTH, "");
    save(dir, "errors", 8, split1, sizeof split1, &o, 0);

    o.n = 0;
    frame(&o, FY_FT_DATA, 1, 1, "x", 1);
    o.b[FY_FRAME_HDR_SIZE] ^= 1; /* payload CRC mismatch */
    save(dir, "bad-crc", 0, NULL, 0, &o, 0);

    /* Raw payloads for the direct payload decoders. */
    o.n = 0;
    hello(&o, FY_ROLE_RECEIVER, FY_MODE_START, 0, "ch", "tok");
    memmove(o.b, o.b + FY_FRAME_HDR_SIZE, o.n - FY_FRAME_HDR_SIZE);
    o.n -= FY_FRAME_HDR_SIZE;
    save(dir, "raw-hello-payload", 0, NULL, 0, &o, 0);
    o.n = 0;
    error(&o, FY_ENAME, "bad name");
    memmove(o.b, o.b + FY_FRAME_HDR_SIZE, o.n - FY_FRAME_HDR_SIZE);
    o.n -= FY_FRAME_HDR_SIZE;
    save(dir, "raw-error-payload", 0, NULL, 0, &o, 0);
    return 0;
}
