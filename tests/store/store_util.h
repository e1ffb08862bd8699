/*
 * store_util.h - helpers for the store tests: temp directories, frames
 * with known contents, file copies and byte comparisons.  Header-only
 * (static functions) so each test executable gets its own copy.
 */
#ifndef FERRY_TESTS_STORE_UTIL_H
#define FERRY_TESTS_STORE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tc.h"
#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/store.h"

/* A frame held in memory: header + payload, contiguous. */
typedef struct tframe {
    uint8_t *b;
    size_t len;
} tframe;

/* Payload size for frame seq under a deterministic pattern: mixed sizes,
 * every 7th frame empty, never above maxp. */
static inline size_t t_size(uint64_t seq, size_t maxp)
{
    uint64_t x = seq * 2654435761u;
    if (seq % 7 == 0)
        return 0;
    return (size_t)((x >> 7) % (maxp + 1));
}

static inline tframe t_frame(uint64_t seq, size_t plen)
{
    tframe f = {.b = malloc(FY_FRAME_HDR_SIZE + plen + 1), .len = FY_FRAME_HDR_SIZE + plen};
    fy_frame_hdr h = {.type = FY_FT_DATA, .version = FY_PROTO_VERSION, .channel = 7, .seq = seq};

    for (size_t i = 0; i < plen; i++)
        f.b[FY_FRAME_HDR_SIZE + i] = (uint8_t)(seq * 31 + i * 7);
    fy_frame_seal(&h, f.b + FY_FRAME_HDR_SIZE, plen, f.b);
    return f;
}

static inline void t_rmrf(const char *dir)
{
    tc_rmtree(dir);
}

/* A fresh temp dir (tc_tmpdir); out gets its path. */
static inline void t_tmpdir(char out[256])
{
    int rc = tc_tmpdir(out, 256, "store");
    if (rc < 0) {
        fprintf(stderr, "tc_tmpdir: %d\n", rc);
        abort();
    }
}

/* Append frames first..first+n-1 (sizes from t_size) in batches, and index
 * all but the last `unindexed` of them. */
static inline int t_fill(fy_log *l, fy_idx *x, uint64_t first, size_t n, size_t batch, size_t maxp,
                         size_t unindexed)
{
    tframe *fs = calloc(batch, sizeof *fs);
    struct iovec *iov = calloc(batch, sizeof *iov);
    fy_idx_rec *recs = calloc(batch, sizeof *recs);
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i += batch) {
        size_t k = n - i < batch ? n - i : batch;
        for (size_t j = 0; j < k; j++) {
            fs[j] = t_frame(first + i + j, t_size(first + i + j, maxp));
            iov[j] = (struct iovec){.iov_base = fs[j].b, .iov_len = fs[j].len};
        }
        rc = fy_log_append(l, iov, k, recs);
        size_t idx_k = k;
        if (i + k > n - unindexed)
            idx_k = n - unindexed > i ? n - unindexed - i : 0;
        if (rc == 0 && idx_k)
            rc = fy_idx_append(x, recs, idx_k);
        for (size_t j = 0; j < k; j++)
            free(fs[j].b);
    }
    free(fs);
    free(iov);
    free(recs);
    return rc;
}

/* Read a whole file; returns malloc'd bytes (NULL + *len = 0 if missing). */
static inline uint8_t *t_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b = NULL;
    *len = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static inline void t_spit(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        abort();
    }
    fwrite(b, 1, len, f);
    fclose(f);
}

static inline void t_path(char out[512], const char *dir, uint64_t base, const char *ext)
{
    snprintf(out, 512, "%s/%020" PRIu64 ".%s", dir, base, ext);
}

/* Copy the flat directory src into a new directory dst. */
static inline void t_copydir(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    struct dirent *e;

    if (!d || mkdir(dst, 0750) != 0)
        abort();
    while ((e = readdir(d)) != NULL) {
        char a[512], b[512];
        size_t len;
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(a, sizeof a, "%s/%s", src, e->d_name) >= (int)sizeof a ||
            snprintf(b, sizeof b, "%s/%s", dst, e->d_name) >= (int)sizeof b)
            abort(); /* test paths are short; a cut one is a test bug */
        uint8_t *bytes = t_slurp(a, &len);
        t_spit(b, bytes, len);
        free(bytes);
    }
    closedir(d);
}

static inline off_t t_fsize(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The cmocka fixture: a temp dir (removed by t_teardown) and the channel
 * directory dir inside it. */
typedef struct t_fix {
    char tmp[256];
    char dir[300];
    int n; /* copies made (test_recover) */
} t_fix;

static inline int t_setup(void **state)
{
    t_fix *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    t_tmpdir(f->tmp);
    snprintf(f->dir, sizeof f->dir, "%s/ch", f->tmp);
    *state = f;
    return 0;
}

static inline int t_teardown(void **state)
{
    t_fix *f = *state;
    t_rmrf(f->tmp);
    free(f);
    return 0;
}

/* Open the channel in dir (asserted) and append+index frames
 * first..first+n-1 in batches (t_fill, asserted). */
static inline void t_open_fill(const char *dir, const fy_store_opts *o, fy_log **l, fy_idx **x,
                               uint64_t first, size_t n, size_t batch, size_t maxp)
{
    assert_int_equal(fy_store_open(dir, o, l, x, NULL), 0);
    assert_int_equal(t_fill(*l, *x, first, n, batch, maxp, 0), 0);
}

static inline void t_close(fy_log *l, fy_idx *x)
{
    fy_log_close(l);
    fy_idx_close(x);
}

/* Frame seq reads back through look-up + seek + fy_logrd_read (buf holds
 * a frame of maxp payload) with exactly the bytes t_frame makes. */
static inline void t_check_frame(fy_logrd *r, fy_idx *x, fy_pos end, uint64_t s, size_t maxp,
                                 uint8_t *buf)
{
    fy_idx_rec rec;
    size_t len;
    assert_int_equal(fy_idx_lookup(x, s, &rec), 0);
    assert_int_equal(rec.seq, s);
    assert_int_equal(fy_logrd_seek(r, (fy_pos){rec.seg, rec.off}), 0);
    assert_int_equal(fy_logrd_read(r, end, buf, rec.len, &len), 0);
    assert_int_equal(len, rec.len);
    tframe want = t_frame(s, t_size(s, maxp));
    assert_int_equal(want.len, len);
    assert_memory_equal(want.b, buf, len);
    free(want.b);
}

/* A channel in dir with frames 1..n (payloads up to maxp), the last
 * `unindexed` of them not indexed. */
static inline void t_make_channel(const char *dir, const fy_store_opts *o, size_t n, size_t maxp,
                                  size_t unindexed)
{
    fy_log *l;
    fy_idx *x;
    assert_int_equal(fy_store_open(dir, o, &l, &x, NULL), 0);
    assert_int_equal(t_fill(l, x, 1, n, 8, maxp, unindexed), 0);
    t_close(l, x);
}

/* Lookup of seq in a (recovered, clean) channel. */
static inline fy_idx_rec t_rec_of(const char *dir, const fy_store_opts *o, uint64_t seq)
{
    fy_log *l;
    fy_idx *x;
    fy_idx_rec rec;
    assert_int_equal(fy_store_open(dir, o, &l, &x, NULL), 0);
    assert_int_equal(fy_idx_lookup(x, seq, &rec), 0);
    t_close(l, x);
    return rec;
}

#endif
