/*
 * test_cli_damaged.c - a file damaged on the relay's disk, and `ferry recv
 * --skip-damaged`, through a real ferryd on 127.0.0.1.
 *
 * Five files are sent and the relay stopped; then, in its segment (layout:
 * docs/storage.md), one payload byte of b.bin is flipped (a payload CRC
 * error at the receiver), a header byte of c.bin's file-begin (a header
 * check error: the file cannot even be named), and one payload byte of
 * d.bin is flipped with the frame's CRC and index record made to match (it
 * passes every frame check, so only the file's SHA-256 catches it), and the
 * magic of a data frame of f.bin (checked before the header CRC, yet damage
 * all the same: exit 4, not 3).  After a restart, a --from-start receive
 * exits 4 at b.bin, one from f.bin's seq exits 4 at f.bin; with
 * --skip-damaged a receive gets a, e, g byte-identical, reports four
 * skipped files with warnings naming b.bin and d.bin, and leaves no
 * partial file.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ferry/proto.h"
#include "harness.h"

#define T_MS 120000
#define NFILES 7

static const char *const names[NFILES] = {"a.bin", "b.bin", "c.bin", "d.bin",
                                          "e.bin", "f.bin", "g.bin"};
static const uint64_t sizes[NFILES] = {200000, 3u << 20, 150000, 2u << 20, 100000, 500000, 1000};

/* The whole file at path into a malloc'd buffer (*n bytes). */
static uint8_t *slurp_all(const char *path, size_t *n)
{
    long long sz = fy_ct_size(path);
    assert_true(sz > 0);
    uint8_t *buf = malloc((size_t)sz);
    assert_non_null(buf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, (size_t)sz, 0), (ssize_t)sz);
    close(fd);
    *n = (size_t)sz;
    return buf;
}

static void put_at(const char *path, const void *p, size_t n, long long off)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
    close(fd);
}

/* Offset in seg (n bytes) of the k-th frame of `type` after the file-begin
 * of `name` (k = 0 with FY_FT_FILE_BEGIN: the file-begin itself). */
static size_t find_frame(const uint8_t *seg, size_t n, const char *name, uint8_t type, int k)
{
    bool in = false;
    for (size_t off = 32; off + FY_FRAME_HDR_SIZE <= n;) {
        fy_frame_hdr h;
        assert_int_equal(fy_frame_hdr_decode(seg + off, FY_PAYLOAD_MAX_LIMIT, &h), 0);
        if (h.type == FY_FT_FILE_BEGIN) {
            fy_file_begin fb;
            assert_int_equal(fy_file_begin_decode(seg + off + FY_FRAME_HDR_SIZE, h.len, &fb), 0);
            in = !strcmp(fb.name, name);
        }
        if (in && h.type == type && k-- == 0)
            return off;
        off += FY_FRAME_HDR_SIZE + h.len;
    }
    fail_msg("no frame %d of type %d in %s", k, type, name);
    return 0;
}

/* Damage the stored channel as the header comment says; returns the seq
 * of f.bin's file-begin. */
static uint64_t damage(fy_ct *t)
{
    char log[FY_CT_PATH + 64], idx[FY_CT_PATH + 64];
    snprintf(log, sizeof log, "%s/channels/dmg/00000000000000000001.log", t->data);
    snprintf(idx, sizeof idx, "%s/channels/dmg/00000000000000000001.idx", t->data);
    size_t n;
    uint8_t *seg = slurp_all(log, &n);
    /* b.bin: one payload byte of its second data frame; CRC left stale. */
    size_t off = find_frame(seg, n, "b.bin", FY_FT_DATA, 1) + FY_FRAME_HDR_SIZE + 100;
    uint8_t byte = seg[off] ^ 0x5a;
    put_at(log, &byte, 1, (long long)off);
    /* c.bin: a seq byte of its file-begin header; header CRC left stale. */
    off = find_frame(seg, n, "c.bin", FY_FT_FILE_BEGIN, 0) + 17;
    byte = seg[off] ^ 0x01;
    put_at(log, &byte, 1, (long long)off);
    /* d.bin: one payload byte, frame header and index record resealed. */
    off = find_frame(seg, n, "d.bin", FY_FT_DATA, 1);
    fy_frame_hdr h;
    assert_int_equal(fy_frame_hdr_decode(seg + off, FY_PAYLOAD_MAX_LIMIT, &h), 0);
    uint8_t *payload = seg + off + FY_FRAME_HDR_SIZE;
    payload[100] ^= 0x5a;
    uint8_t hdr[FY_FRAME_HDR_SIZE];
    fy_frame_seal(&h, payload, h.len, hdr);
    put_at(log, hdr, sizeof hdr, (long long)off);
    put_at(log, payload + 100, 1, (long long)(off + FY_FRAME_HDR_SIZE + 100));
    uint8_t rec[32];
    long long roff = 32 + 32 * (long long)(h.seq - 1);
    int fd = open(idx, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, rec, sizeof rec, roff), (ssize_t)sizeof rec);
    close(fd);
    for (int i = 0; i < 4; i++)
        rec[20 + i] = (uint8_t)(h.crc >> (8 * i));
    uint32_t rc = fy_crc32c(0, rec, 28);
    for (int i = 0; i < 4; i++)
        rec[28 + i] = (uint8_t)(rc >> (8 * i));
    put_at(idx, rec, sizeof rec, roff);
    /* f.bin: the first magic byte of its second data frame. */
    off = find_frame(seg, n, "f.bin", FY_FT_DATA, 1);
    byte = seg[off] ^ 0xff;
    put_at(log, &byte, 1, (long long)off);
    off = find_frame(seg, n, "f.bin", FY_FT_FILE_BEGIN, 0);
    assert_int_equal(fy_frame_hdr_decode(seg + off, FY_PAYLOAD_MAX_LIMIT, &h), 0);
    free(seg);
    return h.seq;
}

static void test_skip_damaged(void **state)
{
    fy_ct *t = *state;
    char src[NFILES][FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 2];
    uint8_t sha[NFILES][32];
    const char *argv[NFILES + 1] = {0};
    for (int i = 0; i < NFILES; i++) {
        fy_ct_make_file(fy_ct_path(t, names[i], src[i]), sizes[i], 40 + (uint64_t)i, sha[i]);
        argv[i] = src[i];
    }
    fy_ct_daemon_start(t, NULL);
    fy_ct_expect_exit(t, fy_ct_send(t, "send", "dmg", argv), "send", T_MS, 0);
    fy_ct_daemon_stop(t);
    uint64_t f_seq = damage(t);
    fy_ct_daemon_start(t, NULL);

    /* Without the flag: exit 4 at b.bin, a.bin kept. */
    fy_ct_path(t, "out1", out);
    pid_t rx = fy_ct_recv(t, "recv1", "dmg", out, (const char *[]){"--from-start", "--count", "7", NULL});
    fy_ct_expect_exit(t, rx, "recv1", T_MS, 4);
    snprintf(p, sizeof p, "%s/a.bin", out);
    fy_ct_assert_same(p, sha[0]);
    snprintf(p, sizeof p, "%s/b.bin", out);
    assert_true(fy_ct_size(p) < 0);
    snprintf(p, sizeof p, "%s/.b.bin.part", out);
    assert_true(fy_ct_size(p) < 0);
    assert_true(fy_ct_contains(fy_ct_path(t, "recv1.err", p), "FY_ECRC"));
    /* A damaged magic is damage too (exit 4, not 3). */
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)f_seq);
    fy_ct_path(t, "out3", out);
    rx = fy_ct_recv(t, "recv3", "dmg", out, (const char *[]){"--from-seq", seq, "--count", "2", NULL});
    fy_ct_expect_exit(t, rx, "recv3", T_MS, 4);
    assert_true(fy_ct_contains(fy_ct_path(t, "recv3.err", p), "err=FY_EHDRCHECK"));

    /* With it: the others arrive, the damaged ones are skipped and said so. */
    fy_ct_path(t, "out2", out);
    rx = fy_ct_recv(t, "recv2", "dmg", out,
                    (const char *[]){"--from-start", "--count", "7", "--skip-damaged", NULL});
    fy_ct_expect_exit(t, rx, "recv2", T_MS, 0);
    snprintf(p, sizeof p, "%s/a.bin", out);
    fy_ct_assert_same(p, sha[0]);
    snprintf(p, sizeof p, "%s/e.bin", out);
    fy_ct_assert_same(p, sha[4]);
    snprintf(p, sizeof p, "%s/g.bin", out);
    fy_ct_assert_same(p, sha[6]);
    for (int i = 1; i <= 5; i += i == 3 ? 2 : 1) { /* b, c, d, f */
        snprintf(p, sizeof p, "%s/%s", out, names[i]);
        assert_true(fy_ct_size(p) < 0);
        snprintf(p, sizeof p, "%s/.%s.part", out, names[i]);
        assert_true(fy_ct_size(p) < 0);
    }
    fy_ct_path(t, "recv2.out", p);
    assert_true(fy_ct_contains(p, "files=3 "));
    assert_true(fy_ct_contains(p, "skipped=4 "));
    fy_ct_path(t, "recv2.err", p);
    assert_true(fy_ct_contains(p, "msg=\"damaged file skipped\" file=b.bin reason=\"damaged frame"));
    assert_true(fy_ct_contains(p, "msg=\"damaged file skipped\" file=d.bin reason=\"file SHA-256 mismatch\""));
    assert_true(fy_ct_contains(p, "err=FY_EHDRCHECK"));
    assert_true(fy_ct_contains(p, "msg=\"damaged file skipped\" file=f.bin"));
    fy_ct_daemon_stop(t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_skip_damaged, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
