/*
 * test_recover.c - fy_store_open as recovery: a last segment cut at every
 * byte offset of its last two frames, a corrupt last frame, an index that
 * is missing, short, damaged, longer than the data, or has a bad header
 * (each rebuilt byte for byte), recovery reading only the tail, and damage
 * recovery must refuse.  The fuzz seed corpus of fuzz_store is written by
 * store_seeds.c, not here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/seg.h"
#include "store_util.h"

typedef t_fix fix;

/* A fresh copy of the channel to damage; returns its path in out. */
static void copy_of(fix *f, char out[400])
{
    snprintf(out, 400, "%s/copy%d", f->tmp, f->n++);
    t_copydir(f->dir, out);
}

/* Open dir, check every frame below next reads back and that nothing more
 * is there; returns the recovery report. */
static fy_recovery open_verify(const char *dir, const fy_store_opts *o, size_t maxp, uint64_t next)
{
    fy_log *l;
    fy_idx *x;
    fy_logrd *r;
    fy_recovery rep;
    uint8_t *buf = malloc(FY_FRAME_HDR_SIZE + maxp);

    assert_int_equal(fy_store_open(dir, o, &l, &x, &rep), 0);
    assert_int_equal(rep.next_seq, next);
    assert_int_equal(fy_log_next_seq(l), next);
    assert_int_equal(fy_idx_next_seq(x), next);
    assert_int_equal(fy_logrd_open(dir, &r), 0);
    for (uint64_t s = rep.first_seq; s < next; s++)
        t_check_frame(r, x, fy_log_end(l), s, maxp, buf);
    fy_idx_rec rec;
    assert_int_equal(fy_idx_lookup(x, next, &rec), -FY_ENOSEQ);
    fy_logrd_close(r);
    t_close(l, x);
    free(buf);
    return rep;
}

static void assert_file_eq(const char *a, const char *b, size_t prefix)
{
    size_t la, lb;
    uint8_t *x = t_slurp(a, &la), *y = t_slurp(b, &lb);
    assert_non_null(x);
    assert_non_null(y);
    if (prefix == 0)
        prefix = la;
    assert_int_equal(lb, prefix);
    assert_true(la >= prefix);
    assert_memory_equal(x, y, prefix);
    free(x);
    free(y);
}

/* ---- a torn last segment -------------------------------------------------- */

static void test_cut_every_offset(void **state)
{
    fix *f = *state;
    fy_store_opts o = {.segment_bytes = 2048};
    const size_t maxp = 40, n = 150;

    t_make_channel(f->dir, &o, n, maxp, 0);
    fy_idx_rec last = t_rec_of(f->dir, &o, n), prev = t_rec_of(f->dir, &o, n - 1);
    uint64_t base = last.seg;
    assert_true(base > 1);
    char log[512], idx[512];
    t_path(log, f->dir, base, "log");
    t_path(idx, f->dir, base, "idx");
    off_t size = t_fsize(log);
    assert_int_equal((uint64_t)size, last.off + last.len);
    uint64_t lo = prev.seg == base ? prev.off : 0;

    /* Every cut inside the last two frames, and every cut of the file
     * header (a crash right after the roll). */
    for (uint64_t c = 0; c < (uint64_t)size; c++) {
        if (c >= 32 && c < lo)
            continue;
        char cp[400], clog[512], cidx[512];
        copy_of(f, cp);
        t_path(clog, cp, base, "log");
        t_path(cidx, cp, base, "idx");
        assert_int_equal(truncate(clog, (off_t)c), 0);
        uint64_t next = base, end = 32; /* c < 32: the segment starts again */
        if (c >= 32 && c >= last.off) {
            next = n;
            end = last.off;
        } else if (c >= 32) {
            next = n - 1;
            end = prev.off;
        }
        fy_recovery rep = open_verify(cp, &o, maxp, next);
        assert_int_equal(rep.truncated_bytes, c < 32 ? c : c - end);
        assert_int_equal(rep.index_dropped, n + 1 - next);
        assert_int_equal(rep.index_added, 0);
        assert_file_eq(idx, cidx, 32 + (next - base) * 32);
        assert_int_equal(t_fsize(clog), (off_t)end);
        t_rmrf(cp);
    }
}

static void test_corrupt_last_frame(void **state)
{
    fix *f = *state;
    size_t n = 300, maxp = 200;
    while (t_size(n, maxp) == 0)
        n++;
    t_make_channel(f->dir, NULL, n, maxp, 0);
    fy_idx_rec last = t_rec_of(f->dir, NULL, n);
    char cp[400], p[512];

    /* Payload byte: the CRC fails, the frame is cut. */
    copy_of(f, cp);
    t_path(p, cp, 1, "log");
    size_t len;
    uint8_t *b = t_slurp(p, &len);
    b[last.off + 32 + last.len / 2 - 16] ^= 1;
    t_spit(p, b, len);
    fy_recovery rep = open_verify(cp, NULL, maxp, n);
    assert_int_equal(rep.truncated_bytes, last.len);
    assert_int_equal(rep.index_dropped, 1);

    /* Header byte (the length): the header check fails, the frame is cut. */
    b[last.off + 32 + last.len / 2 - 16] ^= 1;
    b[last.off + 12] ^= 0x10;
    copy_of(f, cp);
    t_path(p, cp, 1, "log");
    t_spit(p, b, len);
    rep = open_verify(cp, NULL, maxp, n);
    assert_int_equal(rep.truncated_bytes, last.len);
    free(b);
}

/* ---- a damaged index is rebuilt byte for byte -------------------------------- */

typedef void (*damage_fn)(const char *idx_path);

static void dmg_delete(const char *p)
{
    assert_int_equal(unlink(p), 0);
}
static void dmg_short(const char *p)
{
    assert_int_equal(truncate(p, 32 + 100 * 32 + 13), 0);
}
static void dmg_empty(const char *p)
{
    assert_int_equal(truncate(p, 0), 0);
}
static void dmg_flip(const char *p, off_t at)
{
    size_t len;
    uint8_t *b = t_slurp(p, &len);
    assert_true((size_t)at < len);
    b[at] ^= 0x08;
    t_spit(p, b, len);
    free(b);
}
static void dmg_record(const char *p)
{
    dmg_flip(p, 32 + 57 * 32 + 20); /* record 57's crc field */
}
static void dmg_last_record(const char *p)
{
    dmg_flip(p, t_fsize(p) - 32 + 8); /* the last record's offset */
}
static void dmg_header(const char *p)
{
    dmg_flip(p, 9);
}
static void dmg_longer(const char *p)
{
    /* Well-formed records for frames that are not there, then junk. */
    size_t len;
    uint8_t *b = t_slurp(p, &len);
    fy_idx_rec r;
    assert_int_equal(fy__seg_rec_decode(b + len - 32, 1, &r), 0);
    b = realloc(b, len + 11 * 32 + 7);
    for (int i = 0; i < 10; i++) {
        r.off += r.len;
        r.seq++;
        fy__seg_rec_encode(&r, b + len);
        len += 32;
    }
    memset(b + len, 0xa5, 39);
    t_spit(p, b, len + 39);
    free(b);
}

static void run_damage(fix *f, const fy_store_opts *o, uint64_t base, uint64_t next, damage_fn fn,
                       const char *what)
{
    char cp[400], orig[512], p[512];
    t_path(orig, f->dir, base, "idx");
    copy_of(f, cp);
    t_path(p, cp, base, "idx");
    fn(p);
    fy_recovery rep = open_verify(cp, o, 200, next);
    print_message("damage=%s base=%" PRIu64 " dropped=%" PRIu64 " added=%" PRIu64
                  " scanned=%" PRIu64 "\n",
                  what, base, rep.index_dropped, rep.index_added, rep.scanned_bytes);
    assert_int_equal(rep.truncated_bytes, 0);
    assert_true(rep.index_added + rep.index_dropped > 0);
    assert_file_eq(orig, p, 0);
    t_rmrf(cp);
}

static void test_index_rebuild(void **state)
{
    fix *f = *state;
    const size_t n = 2000;
    const fy_store_opts big = {.segment_bytes = 1 << 20};
    static const struct {
        damage_fn fn;
        const char *what;
    } dmg[] = {
        {dmg_delete, "delete"},   {dmg_short, "short"},       {dmg_empty, "empty"},
        {dmg_record, "record"},   {dmg_last_record, "last"}, {dmg_header, "header"},
        {dmg_longer, "longer"},
    };

    t_make_channel(f->dir, &big, n, 200, 0);
    for (size_t i = 0; i < sizeof dmg / sizeof dmg[0]; i++)
        run_damage(f, &big, 1, n + 1, dmg[i].fn, dmg[i].what);
}

/* The same damage to a segment that is not the last one. */
static void test_index_rebuild_sealed(void **state)
{
    fix *f = *state;
    const size_t n = 3000;
    const fy_store_opts o = {.segment_bytes = 64 << 10};

    t_make_channel(f->dir, &o, n, 200, 0);
    fy_idx_rec last = t_rec_of(f->dir, &o, n);
    assert_true(last.seg > 1000);
    run_damage(f, &o, 1, n + 1, dmg_delete, "sealed-delete");
    run_damage(f, &o, 1, n + 1, dmg_short, "sealed-short");
    run_damage(f, &o, 1, n + 1, dmg_last_record, "sealed-last");
    run_damage(f, &o, 1, n + 1, dmg_header, "sealed-header");
    run_damage(f, &o, 1, n + 1, dmg_longer, "sealed-longer");
}

/* ---- recovery reads only the tail ------------------------------------------- */

static void test_scan_bounded(void **state)
{
    fix *f = *state;
    const size_t n = 20000, tail = 20, maxp = 600;

    t_make_channel(f->dir, NULL, n, maxp, tail);
    char p[512];
    t_path(p, f->dir, 1, "log");
    uint64_t total = (uint64_t)t_fsize(p), tail_bytes = 0;
    for (uint64_t s = n - tail; s <= n; s++) /* the unindexed tail + one verified frame */
        tail_bytes += 32 + t_size(s, maxp);

    char cp[400];
    copy_of(f, cp);
    fy_recovery rep = open_verify(cp, NULL, maxp, n + 1);
    print_message("total=%" PRIu64 " tail=%" PRIu64 " scanned=%" PRIu64 "\n", total, tail_bytes,
                  rep.scanned_bytes);
    assert_int_equal(rep.index_added, tail);
    assert_int_equal(rep.index_dropped, 0);
    assert_true(rep.scanned_bytes <= tail_bytes);
    assert_true(rep.scanned_bytes * 100 < total);

    /* Reopening the repaired channel reads one frame. */
    rep = open_verify(cp, NULL, maxp, n + 1);
    assert_int_equal(rep.index_added, 0);
    assert_true(rep.scanned_bytes <= 32 + maxp);
}

/* ---- damage recovery must not paper over ------------------------------------- */

static void test_sealed_corrupt(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.segment_bytes = 4096};
    fy_log *l;
    fy_idx *x;

    t_make_channel(f->dir, &o, 300, 200, 0);
    uint64_t s = 5;
    fy_idx_rec rec = t_rec_of(f->dir, &o, s);
    while (rec.len < 40)
        rec = t_rec_of(f->dir, &o, ++s);
    assert_int_equal(rec.seg, 1);
    char p[512];
    t_path(p, f->dir, 1, "log");
    dmg_flip(p, (off_t)(rec.off + 34));
    /* The O(1) check of a sealed segment does not read its middle... */
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), 0);
    t_close(l, x);
    /* ...but a rebuild of its index does, and refuses to cut it. */
    t_path(p, f->dir, 1, "idx");
    unlink(p);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), -FY_ECORRUPT);
    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 0, &cr), -FY_ECORRUPT);
    assert_true(cr.crc_errors >= 1);
}

static void test_gap(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.segment_bytes = 4096};
    fy_log *l;
    fy_idx *x;

    t_make_channel(f->dir, &o, 300, 200, 0);
    fy_idx_rec last = t_rec_of(f->dir, &o, 300);
    fy_idx_rec mid = t_rec_of(f->dir, &o, last.seg - 1);
    assert_true(mid.seg > 1);
    char p[512];
    t_path(p, f->dir, mid.seg, "log");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), -FY_ECORRUPT);
}

/* Left-overs: an index without data is removed; a last segment that is all
 * zeros (created, never written before a power cut) starts again. */
static void test_leftovers(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.segment_bytes = 4096};

    t_make_channel(f->dir, &o, 100, 200, 0);
    char p[512];
    t_path(p, f->dir, 99999, "idx");
    t_spit(p, (const uint8_t *)"junk", 4);
    uint8_t zeros[100] = {0};
    t_path(p, f->dir, 101, "log");
    t_spit(p, zeros, sizeof zeros);
    fy_recovery rep = open_verify(f->dir, &o, 200, 101);
    assert_int_equal(rep.truncated_bytes, 100);
    t_path(p, f->dir, 99999, "idx");
    assert_int_equal(t_fsize(p), -1);
    t_path(p, f->dir, 101, "log");
    assert_int_equal(t_fsize(p), 32);
    /* And appending carries on in it. */
    fy_log *l;
    fy_idx *x;
    t_open_fill(f->dir, &o, &l, &x, 101, 10, 3, 200);
    t_close(l, x);
    open_verify(f->dir, &o, 200, 111);
    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 200, &cr), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cut_every_offset, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_last_frame, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_index_rebuild, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_index_rebuild_sealed, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_scan_bounded, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sealed_corrupt, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_gap, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_leftovers, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
