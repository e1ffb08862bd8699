/*
 * test_store.c - the store's normal life: append and read back across
 * reopen, segment rolls, look-ups across segments, retention by size and
 * by age, sendfile to a socket across a segment boundary, sequence checks,
 * and the offline check finding a corrupt CRC.  Real files in a temp dir
 * under /tmp, removed after each test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "store_util.h"

#define MAXP 600 /* payload sizes used by these tests: 0..MAXP */

typedef t_fix fix;

/* Every seq in [first, next) reads back through look-up + fy_logrd_read
 * with exactly the bytes that were appended. */
static void verify_all(const char *dir, fy_idx *x, fy_pos end, uint64_t first, uint64_t next)
{
    fy_logrd *r;
    uint8_t *buf = malloc(FY_FRAME_HDR_SIZE + MAXP);

    assert_int_equal(fy_logrd_open(dir, &r), 0);
    for (uint64_t s = first; s < next; s++)
        t_check_frame(r, x, end, s, MAXP, buf);
    fy_idx_rec rec;
    assert_int_equal(fy_idx_lookup(x, next, &rec), -FY_ENOSEQ);
    if (first > 1)
        assert_int_equal(fy_idx_lookup(x, first - 1, &rec), -FY_ENOSEQ);
    fy_logrd_close(r);
    free(buf);
}

static void test_append_reopen(void **state)
{
    fix *f = *state;
    fy_log *l;
    fy_idx *x;
    fy_recovery rep;

    assert_int_equal(fy_store_open(f->dir, NULL, &l, &x, &rep), 0);
    assert_int_equal(rep.next_seq, 1);
    assert_int_equal(fy_log_next_seq(l), 1);
    assert_int_equal(t_fill(l, x, 1, 1000, 16, MAXP, 0), 0);
    assert_int_equal(fy_log_next_seq(l), 1001);
    verify_all(f->dir, x, fy_log_end(l), 1, 1001); /* served partly from the buffer */
    assert_int_equal(fy_log_sync(l), 0);
    assert_int_equal(fy_idx_sync(x), 0);
    t_close(l, x);

    assert_int_equal(fy_store_open(f->dir, NULL, &l, &x, &rep), 0);
    assert_int_equal(rep.frames, 1000);
    assert_int_equal(rep.first_seq, 1);
    assert_int_equal(rep.next_seq, 1001);
    assert_int_equal(rep.truncated_bytes, 0);
    assert_int_equal(rep.index_added + rep.index_dropped, 0);
    verify_all(f->dir, x, fy_log_end(l), 1, 1001);
    /* Appending goes on after reopen. */
    assert_int_equal(t_fill(l, x, 1001, 50, 7, MAXP, 0), 0);
    verify_all(f->dir, x, fy_log_end(l), 1, 1051);
    t_close(l, x);

    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 0, &cr), 0);
    assert_int_equal(cr.frames, 1050);
    assert_int_equal(cr.next_seq, 1051);
}

/* Big batches go to the disk with O_DIRECT through the staging buffer,
 * small ones through the page cache, and the two interleave: every frame
 * reads back (before and after a reopen, across segment rolls), each file
 * ends at its last frame (recovery cuts nothing) and the offline check is
 * clean.  The same with buffered appends, for comparison. */
static void big_batches(fix *f, bool buffered)
{
    enum { MP = 150000 }; /* payloads 0..MP: ~75 KB a frame on average */
    fy_store_opts o = {.segment_bytes = 3u << 20, .max_payload = 1u << 20, .buffered = buffered};
    const size_t batch[] = {40, 1, 3, 25, 2, 60, 5, 33, 1, 1, 50};
    uint8_t *buf = malloc(FY_FRAME_HDR_SIZE + MP);
    uint64_t seq = 1;
    fy_recovery rep;
    fy_logrd *r;
    fy_log *l;
    fy_idx *x;

    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
    if (buffered)
        assert_false(fy_log_direct(l, 1u << 20));
    else if (!fy_log_direct(l, 1u << 20))
        fprintf(stderr, "note: %s refused O_DIRECT; testing the buffered fallback\n", f->dir);
    for (size_t i = 0; i < sizeof batch / sizeof batch[0]; i++) {
        assert_int_equal(t_fill(l, x, seq, batch[i], batch[i], MP, 0), 0);
        seq += batch[i];
    }
    for (int round = 0; round < 2; round++) {
        assert_int_equal(fy_logrd_open(f->dir, &r), 0);
        for (uint64_t s = 1; s < seq; s++)
            t_check_frame(r, x, fy_log_end(l), s, MP, buf);
        fy_logrd_close(r);
        assert_int_equal(fy_log_sync(l), 0);
        assert_int_equal(fy_idx_sync(x), 0);
        t_close(l, x);
        assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
        assert_int_equal(rep.truncated_bytes, 0);
        assert_int_equal(rep.next_seq, seq);
        assert_true(rep.segments > 2);
    }
    t_close(l, x);
    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 1u << 20, &cr), 0);
    assert_int_equal(cr.frames, seq - 1);
    assert_int_equal(cr.torn_bytes + cr.unindexed, 0);
    free(buf);
}

static void test_big_batches_direct(void **state)
{
    big_batches(*state, false);
}

static void test_big_batches_buffered(void **state)
{
    big_batches(*state, true);
}

static void test_wrong_seq(void **state)
{
    fix *f = *state;
    fy_log *l;
    fy_idx *x;

    t_open_fill(f->dir, NULL, &l, &x, 1, 5, 5, MAXP);
    fy_pos end = fy_log_end(l);
    tframe a = t_frame(6, 10), b = t_frame(8, 10), c = t_frame(3, 0);
    struct iovec v[2] = {{a.b, a.len}, {b.b, b.len}};
    fy_idx_rec recs[2];
    assert_int_equal(fy_log_append(l, v, 2, recs), -FY_ESEQ); /* gap inside the batch */
    v[0] = (struct iovec){c.b, c.len};
    assert_int_equal(fy_log_append(l, v, 1, recs), -FY_ESEQ); /* going back */
    a.b[40] ^= 1; /* not a header change: payload CRC is the session's job */
    a.b[3] ^= 1;  /* bad magic */
    v[0] = (struct iovec){a.b, a.len};
    assert_int_equal(fy_log_append(l, v, 1, recs), -FY_EMAGIC);
    assert_int_equal(fy_log_next_seq(l), 6);
    assert_int_equal(fy_log_end(l).off, end.off); /* nothing was written */
    fy_idx_rec bad = {.seq = 9, .seg = 1, .off = end.off, .len = 32};
    assert_int_equal(fy_idx_append(x, &bad, 1), -FY_ESEQ);
    free(a.b);
    free(b.b);
    free(c.b);
    t_close(l, x);
}

static size_t count_files(const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d)) != NULL)
        if (strlen(e->d_name) == 24 && strcmp(e->d_name + 20, ext) == 0)
            n++;
    closedir(d);
    return n;
}

/* Total bytes of the .log segments in dir; the biggest one's into *max. */
static uint64_t log_bytes(const char *dir, uint64_t *max)
{
    uint64_t total = 0, big = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (strstr(e->d_name, ".log")) {
            uint64_t n = (uint64_t)t_fsize(p);
            total += n;
            big = n > big ? n : big;
        }
    }
    closedir(d);
    if (max)
        *max = big;
    return total;
}

static void test_roll(void **state)
{
    fix *f = *state;
    fy_store_opts o = {.segment_bytes = 4096};
    fy_log *l;
    fy_idx *x;
    fy_recovery rep;

    t_open_fill(f->dir, &o, &l, &x, 1, 400, 9, MAXP);
    fy_pos end = fy_log_end(l);
    assert_true(end.seg > 1);
    verify_all(f->dir, x, end, 1, 401);
    t_close(l, x);

    size_t nseg = count_files(f->dir, ".log");
    assert_true(nseg > 10);
    assert_int_equal(count_files(f->dir, ".idx"), nseg);
    /* No segment passes segment_bytes (no single frame is bigger). */
    uint64_t biggest;
    log_bytes(f->dir, &biggest);
    assert_true(biggest <= 4096);

    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
    assert_int_equal(rep.segments, nseg);
    assert_int_equal(rep.next_seq, 401);
    assert_int_equal(rep.index_added + rep.index_dropped + rep.truncated_bytes, 0);
    /* The O(1) checks of sealed segments read one header each, the last
     * segment's tail one frame: far less than the channel. */
    assert_true(rep.scanned_bytes < 32 * nseg + 4096);
    verify_all(f->dir, x, fy_log_end(l), 1, 401);
    /* A frame bigger than a whole segment gets one of its own. */
    tframe big = t_frame(401, 5000);
    struct iovec v = {big.b, big.len};
    fy_idx_rec rec;
    assert_int_equal(fy_log_append(l, &v, 1, &rec), 0);
    assert_int_equal(rec.seg, 401);
    assert_int_equal(rec.off, 32);
    free(big.b);
    t_close(l, x);
    fy_check_report cr;
    /* 401 is not indexed (no index file yet): in the last segment that is
     * the tail a crash leaves and opening repairs, not damage. */
    assert_int_equal(fy_store_check(f->dir, 0, &cr), 0);
    assert_int_equal(cr.unindexed, 1);
    assert_int_equal(cr.index_errors + cr.crc_errors, 0);
}

static void test_retain_size(void **state)
{
    fix *f = *state;
    fy_store_opts o = {.segment_bytes = 4096, .retain_bytes = 5 * 4096};
    fy_log *l;
    fy_idx *x;
    uint64_t first;

    t_open_fill(f->dir, &o, &l, &x, 1, 400, 9, MAXP);
    size_t before = count_files(f->dir, ".log");
    int removed = fy_log_retain(l, (uint64_t)time(NULL), &first);
    assert_true(removed > 0);
    assert_int_equal(count_files(f->dir, ".log"), before - (size_t)removed);
    assert_int_equal(fy_log_first_seq(l), first);
    assert_int_equal(fy_idx_trim(x, first), removed);
    assert_int_equal(count_files(f->dir, ".idx"), before - (size_t)removed);
    assert_int_equal(fy_idx_first_seq(x), first);
    /* What is left is within the limit (the current segment always stays). */
    assert_true(log_bytes(f->dir, NULL) <= 5 * 4096);
    verify_all(f->dir, x, fy_log_end(l), first, 401);
    t_close(l, x);

    fy_recovery rep;
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
    assert_int_equal(rep.first_seq, first);
    assert_int_equal(rep.next_seq, 401);
    verify_all(f->dir, x, fy_log_end(l), first, 401);
    t_close(l, x);
}

static void set_mtime(const char *dir, uint64_t base, time_t t)
{
    char p[512];
    struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
    t_path(p, dir, base, "log");
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void test_retain_age(void **state)
{
    fix *f = *state;
    fy_store_opts o = {.segment_bytes = 4096, .retain_secs = 3600};
    fy_log *l;
    fy_idx *x;
    uint64_t first, bases[64];
    size_t nb = 0;

    t_open_fill(f->dir, &o, &l, &x, 1, 200, 5, MAXP);
    for (uint64_t s = 1; s < 201 && nb < 64; s++) {
        fy_idx_rec rec;
        assert_int_equal(fy_idx_lookup(x, s, &rec), 0);
        if (rec.seg == s)
            bases[nb++] = s;
    }
    assert_true(nb > 5);
    time_t now = time(NULL);
    /* The three oldest are old, the fifth too (but it is behind a young
     * one, so it stays: retention only removes from the front), and the
     * current one is old but is never removed. */
    set_mtime(f->dir, bases[0], now - 10000);
    set_mtime(f->dir, bases[1], now - 9000);
    set_mtime(f->dir, bases[2], now - 3601);
    set_mtime(f->dir, bases[4], now - 9000);
    set_mtime(f->dir, bases[nb - 1], now - 9000);
    assert_int_equal(fy_log_retain(l, (uint64_t)now, &first), 3);
    assert_int_equal(first, bases[3]);
    assert_int_equal(fy_idx_trim(x, first), 3);
    verify_all(f->dir, x, fy_log_end(l), first, 201);

    /* Everything but the current one is old now. */
    for (size_t i = 3; i < nb; i++)
        set_mtime(f->dir, bases[i], now - 7200);
    assert_int_equal(fy_log_retain(l, (uint64_t)now, &first), (int)(nb - 4));
    assert_int_equal(first, bases[nb - 1]);
    assert_int_equal(fy_idx_trim(x, first), (int)(nb - 4));
    assert_int_equal(count_files(f->dir, ".log"), 1);
    assert_int_equal(count_files(f->dir, ".idx"), 1);
    verify_all(f->dir, x, fy_log_end(l), first, 201);
    t_close(l, x);
}

/* sendfile() from the log to a socket: crosses segment boundaries, stops
 * exactly at the published end, copes with a full socket (-EAGAIN). */
static void test_sendfile(void **state)
{
    fix *f = *state;
    fy_store_opts o = {.segment_bytes = 4096};
    fy_log *l;
    fy_idx *x;
    int sv[2];

    t_open_fill(f->dir, &o, &l, &x, 1, 60, 4, MAXP);
    fy_pos end = fy_log_end(l); /* published after 60 frames */
    assert_true(end.seg > 1);
    assert_int_equal(t_fill(l, x, 61, 40, 4, MAXP, 0), 0); /* written, not published */

    size_t want_len = 0;
    for (uint64_t s = 1; s <= 60; s++)
        want_len += FY_FRAME_HDR_SIZE + t_size(s, MAXP);
    uint8_t *want = malloc(want_len), *got = malloc(want_len + 4096);
    for (uint64_t s = 1, at = 0; s <= 60; s++) {
        tframe t = t_frame(s, t_size(s, MAXP));
        memcpy(want + at, t.b, t.len);
        at += t.len;
        free(t.b);
    }

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    fy_logrd *r;
    fy_idx_rec rec;
    assert_int_equal(fy_logrd_open(f->dir, &r), 0);
    assert_int_equal(fy_idx_lookup(x, 1, &rec), 0);
    assert_int_equal(fy_logrd_seek(r, (fy_pos){rec.seg, rec.off}), 0);
    size_t have = 0, total_sent = 0;
    int eagain = 0;
    for (int round = 0; round < 100000; round++) {
        size_t sent;
        int rc = fy_logrd_sendfile(r, sv[0], end, 3000, &sent);
        total_sent += sent;
        if (rc == -EAGAIN)
            eagain++;
        else
            assert_int_equal(rc, 0);
        ssize_t n;
        while ((n = recv(sv[1], got + have, want_len + 4096 - have, 0)) > 0)
            have += (size_t)n;
        if (rc == 0 && sent == 0)
            break;
    }
    assert_int_equal(total_sent, want_len);
    assert_int_equal(have, want_len);
    assert_memory_equal(got, want, want_len);
    fy_pos p = fy_logrd_pos(r);
    assert_int_equal(p.seg, end.seg);
    assert_int_equal(p.off, end.off);
    /* More is published later: the reader carries on from where it was. */
    fy_pos end2 = fy_log_end(l);
    size_t sent;
    for (int round = 0; round < 100000; round++) {
        int rc = fy_logrd_sendfile(r, sv[0], end2, 1 << 20, &sent);
        assert_true(rc == 0 || rc == -EAGAIN);
        while (recv(sv[1], got, 4096, 0) > 0)
            ;
        if (rc == 0 && sent == 0)
            break;
    }
    assert_int_equal(fy_logrd_pos(r).off, end2.off);
    assert_int_equal(fy_logrd_pos(r).seg, end2.seg);
    (void)eagain;
    fy_logrd_close(r);
    close(sv[0]);
    close(sv[1]);
    free(want);
    free(got);
    t_close(l, x);
}

/* fy_logrd_read across segments with a buffer that holds several frames. */
static void test_read_stream(void **state)
{
    fix *f = *state;
    fy_store_opts o = {.segment_bytes = 8192};
    fy_log *l;
    fy_idx *x;
    fy_logrd *r;

    t_open_fill(f->dir, &o, &l, &x, 1, 300, 16, MAXP);
    assert_int_equal(fy_logrd_open(f->dir, &r), 0);
    assert_int_equal(fy_logrd_seek(r, (fy_pos){1, 32}), 0);
    uint8_t buf[3000];
    uint64_t s = 1;
    for (int round = 0; round < 10000 && s <= 300; round++) {
        size_t len;
        assert_int_equal(fy_logrd_read(r, fy_log_end(l), buf, sizeof buf, &len), 0);
        assert_true(len > 0);
        for (size_t at = 0; at < len; s++) {
            tframe t = t_frame(s, t_size(s, MAXP));
            assert_true(at + t.len <= len);
            assert_memory_equal(buf + at, t.b, t.len);
            at += t.len;
            free(t.b);
        }
    }
    assert_int_equal(s, 301);
    size_t len;
    assert_int_equal(fy_logrd_read(r, fy_log_end(l), buf, sizeof buf, &len), 0);
    assert_int_equal(len, 0);
    /* A buffer too small for the next frame says so. */
    fy_idx_rec rec;
    assert_int_equal(fy_idx_lookup(x, 2, &rec), 0);
    assert_int_equal(fy_logrd_seek(r, (fy_pos){rec.seg, rec.off}), 0);
    assert_int_equal(fy_logrd_read(r, fy_log_end(l), buf, rec.len - 1, &len), -ENOBUFS);
    fy_logrd_close(r);
    t_close(l, x);
}

static void flip(const char *path, off_t at)
{
    size_t len;
    uint8_t *b = t_slurp(path, &len);
    assert_true((size_t)at < len);
    b[at] ^= 0x40;
    t_spit(path, b, len);
    free(b);
}

static void test_check_finds_crc(void **state)
{
    fix *f = *state;
    fy_store_opts o = {.segment_bytes = 4096};
    fy_log *l;
    fy_idx *x;
    fy_idx_rec rec;

    t_open_fill(f->dir, &o, &l, &x, 1, 100, 4, MAXP);
    uint64_t s = 10;
    while (fy_idx_lookup(x, s, &rec) == 0 && rec.len <= 40)
        s++; /* a frame with a payload */
    t_close(l, x);

    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 0, &cr), 0);
    assert_int_equal(cr.frames, 100);
    assert_int_equal(cr.crc_errors + cr.index_errors, 0);

    char p[512];
    t_path(p, f->dir, rec.seg, "log");
    flip(p, (off_t)(rec.off + 36));
    assert_int_equal(fy_store_check(f->dir, 0, &cr), -FY_ECORRUPT);
    /* One bad payload byte is one error: the frames after it are still
     * checked, and their intact index records are not errors. */
    assert_int_equal(cr.crc_errors, 1);
    assert_int_equal(cr.index_errors, 0);
    assert_int_equal(cr.frames, 100);
    flip(p, (off_t)(rec.off + 36));
    /* A damaged index record is an index error. */
    t_path(p, f->dir, rec.seg, "idx");
    flip(p, (off_t)(32 + (rec.seq - rec.seg) * 32 + 20));
    assert_int_equal(fy_store_check(f->dir, 0, &cr), -FY_ECORRUPT);
    assert_int_equal(cr.crc_errors, 0);
    assert_int_equal(cr.index_errors, 1);
}

/* What kill -9 leaves (frames past the index, a torn last frame, a torn
 * index record) is reported as repairable, not as damage; opening repairs
 * it and the check is clean after. */
static void test_check_crash_tail(void **state)
{
    fix *f = *state;
    fy_store_opts o = {0};
    fy_log *l;
    fy_idx *x;
    fy_idx_rec rec;

    t_open_fill(f->dir, &o, &l, &x, 1, 50, 5, MAXP);
    assert_int_equal(fy_idx_lookup(x, 1, &rec), 0);
    t_close(l, x);
    char lp[512], ip[512];
    t_path(lp, f->dir, rec.seg, "log");
    t_path(ip, f->dir, rec.seg, "idx");
    struct stat st;
    assert_int_equal(stat(ip, &st), 0);
    assert_int_equal(truncate(ip, st.st_size - 10 * 32 - 7), 0); /* 10 records + a torn one */
    assert_int_equal(stat(lp, &st), 0);
    assert_int_equal(truncate(lp, st.st_size - 3), 0); /* the last frame torn */

    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 0, &cr), 0);
    assert_int_equal(cr.crc_errors + cr.index_errors, 0);
    assert_int_equal(cr.frames, 49);
    assert_int_equal(cr.unindexed, 10); /* 40..49 (50 is torn) */
    assert_true(cr.torn_bytes > 32 - 7); /* the torn record's 25 bytes + the frame's */
    assert_int_equal(cr.next_seq, 50);

    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), 0);
    t_close(l, x);
    assert_int_equal(fy_store_check(f->dir, 0, &cr), 0);
    assert_int_equal(cr.frames, 49);
    assert_int_equal(cr.unindexed + cr.torn_bytes, 0);
}

/* Run scrub passes until one completes (bounded); count hits. */
static int scrub_pass(fy_scrub *s, uint64_t budget, fy_scrub_hit *last, uint64_t *bytes)
{
    int hits = 0;
    *bytes = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t n;
        fy_scrub_hit h;
        int rc = fy_scrub_step(s, budget, &n, &h);
        assert_true(rc >= 0);
        *bytes += n;
        if (h.found) {
            hits++;
            *last = h;
        }
        if (rc == 1)
            return hits;
    }
    fail_msg("scrub pass did not end");
    return -1;
}

/* The scrubber checks sealed segments only, in small steps, and reports
 * one damaged payload once (the frames after it are still checked). */
static void test_scrub(void **state)
{
    fix *f = *state;
    fy_store_opts o = {.segment_bytes = 4096};
    fy_log *l;
    fy_idx *x;
    fy_idx_rec rec;

    t_open_fill(f->dir, &o, &l, &x, 1, 200, 4, MAXP);
    uint64_t s = 10;
    while (fy_idx_lookup(x, s, &rec) == 0 && rec.len <= 40)
        s++; /* a frame with a payload, in an early (sealed) segment */
    fy_pos end = fy_log_end(l);
    t_close(l, x);

    fy_scrub *sc;
    fy_scrub_hit h = {0};
    uint64_t bytes;
    assert_int_equal(fy_scrub_open(f->dir, 0, &sc), 0);
    assert_int_equal(scrub_pass(sc, 100, &h, &bytes), 0);
    assert_true(bytes > 0);
    char p[512];
    struct stat st;
    t_path(p, f->dir, rec.seg, "log");
    flip(p, (off_t)(rec.off + 36));
    assert_int_equal(scrub_pass(sc, 100, &h, &bytes), 1);
    assert_int_equal(h.seq, rec.seq);
    assert_int_equal(h.seg, rec.seg);
    assert_int_equal(h.off, rec.off);
    assert_int_equal(h.err, -FY_ECRC);
    /* the pass covered every frame of every segment but the newest */
    uint64_t sealed = 0;
    for (uint64_t seg = 1; seg < end.seg; seg++) {
        t_path(p, f->dir, seg, "log");
        if (stat(p, &st) == 0)
            sealed += (uint64_t)st.st_size - 32;
    }
    assert_int_equal(bytes + rec.len, sealed); /* the bad frame is stepped over */
    fy_scrub_close(sc);
}

/* The halves on their own threads, as the actors run them: the writer
 * appends and passes records to the indexer and end positions to a reader
 * through pipes (messages); nothing else is shared. */
typedef struct tmsg {
    size_t n;
    fy_pos end;
    fy_idx_rec recs[8];
} tmsg;

typedef struct tctx {
    const char *dir;
    fy_idx *x;
    int fd; /* read end of this thread's pipe */
    uint64_t got;
} tctx;

static void *indexer_main(void *arg)
{
    tctx *c = arg;
    tmsg m;
    while (read(c->fd, &m, sizeof m) == (ssize_t)sizeof m) {
        fy_idx_rec rec;
        if (fy_idx_append(c->x, m.recs, m.n) != 0 || fy_idx_lookup(c->x, m.recs[0].seq, &rec) != 0 ||
            rec.off != m.recs[0].off)
            return (void *)1;
        c->got += m.n;
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    tctx *c = arg;
    tmsg m;
    fy_logrd *r;
    uint8_t buf[4096];
    uint64_t s = 1;
    if (fy_logrd_open(c->dir, &r) != 0 || fy_logrd_seek(r, (fy_pos){1, 32}) != 0)
        return (void *)1;
    while (read(c->fd, &m, sizeof m) == (ssize_t)sizeof m) {
        size_t len = 1;
        for (int round = 0; round < 1000 && len > 0; round++) {
            if (fy_logrd_read(r, m.end, buf, sizeof buf, &len) != 0)
                return (void *)2;
            for (size_t at = 0; at < len; s++) {
                tframe t = t_frame(s, t_size(s, MAXP));
                int same = at + t.len <= len && memcmp(buf + at, t.b, t.len) == 0;
                at += t.len;
                free(t.b);
                if (!same)
                    return (void *)3;
            }
        }
    }
    c->got = s - 1;
    fy_logrd_close(r);
    return NULL;
}

static void test_threads(void **state)
{
    fix *f = *state;
    fy_store_opts o = {.segment_bytes = 8192};
    fy_log *l;
    fy_idx *x;
    int pi[2], pr[2];
    pthread_t ti, tr;

    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), 0);
    assert_int_equal(pipe(pi), 0);
    assert_int_equal(pipe(pr), 0);
    tctx ci = {.dir = f->dir, .x = x, .fd = pi[0]}, cr = {.dir = f->dir, .fd = pr[0]};
    assert_int_equal(pthread_create(&ti, NULL, indexer_main, &ci), 0);
    assert_int_equal(pthread_create(&tr, NULL, reader_main, &cr), 0);
    uint64_t seq = 1;
    for (int b = 0; b < 200; b++) {
        tmsg m = {.n = 1 + (size_t)b % 8};
        tframe fr[8];
        struct iovec v[8];
        for (size_t i = 0; i < m.n; i++) {
            fr[i] = t_frame(seq + i, t_size(seq + i, MAXP));
            v[i] = (struct iovec){fr[i].b, fr[i].len};
        }
        assert_int_equal(fy_log_append(l, v, m.n, m.recs), 0);
        for (size_t i = 0; i < m.n; i++)
            free(fr[i].b);
        seq += m.n;
        m.end = fy_log_end(l);
        assert_int_equal(write(pi[1], &m, sizeof m), (ssize_t)sizeof m);
        assert_int_equal(write(pr[1], &m, sizeof m), (ssize_t)sizeof m);
    }
    close(pi[1]);
    close(pr[1]);
    void *ri, *rr;
    pthread_join(ti, &ri);
    pthread_join(tr, &rr);
    close(pi[0]);
    close(pr[0]);
    assert_null(ri);
    assert_null(rr);
    assert_int_equal(ci.got, seq - 1);
    assert_int_equal(cr.got, seq - 1);
    t_close(l, x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_reopen, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_seq, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_big_batches_direct, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_big_batches_buffered, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_roll, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_retain_size, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_retain_age, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sendfile, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_read_stream, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_crc, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_check_crash_tail, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_scrub, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_threads, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
