/*
 * store_seeds.c - writes the seed corpus of the store's fuzz target
 * (tests/fuzz/fuzz_store.c) into DIR: a clean channel with an unindexed
 * tail, a torn frame, a partial index, a flipped byte, no index, a second
 * segment.  A generator, not a test: ctest does not run it (see
 * tests/fuzz/CMakeLists.txt for the command).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/seg.h"
#include "store_util.h"

/* The fuzz input format (tests/fuzz/fuzz_store.c): u32 LE log length, u64
 * LE base, the log bytes, then the index bytes. */
static void write_seed(const char *out, const char *name, const char *dir, uint64_t base,
                       size_t log_cut, size_t idx_cut, long flip_at)
{
    char lp[512], xp[512], op[700];
    size_t ll, xl;
    t_path(lp, dir, base, "log");
    t_path(xp, dir, base, "idx");
    uint8_t *lb = t_slurp(lp, &ll), *xb = t_slurp(xp, &xl);
    if (log_cut && log_cut < ll)
        ll = log_cut;
    if (idx_cut && idx_cut < xl)
        xl = idx_cut;
    if (flip_at >= 0 && (size_t)flip_at < ll)
        lb[flip_at] ^= 0x20;
    uint8_t *s = malloc(12 + ll + xl);
    fy__st32(s, (uint32_t)ll);
    fy__st64(s + 4, base - 1); /* the fuzzer adds 1 */
    memcpy(s + 12, lb, ll);
    if (xl)
        memcpy(s + 12 + ll, xb, xl);
    snprintf(op, sizeof op, "%s/%s", out, name);
    t_spit(op, s, 12 + ll + xl);
    free(s);
    free(lb);
    free(xb);
}

static const char *out_dir; /* argv[1] */

static void write_corpus(void **state)
{
    t_fix *f = *state;
    t_make_channel(f->dir, NULL, 40, 120, 5);
    write_seed(out_dir, "clean-tail5", f->dir, 1, 0, 0, -1);
    write_seed(out_dir, "torn", f->dir, 1, 2000, 0, -1);
    write_seed(out_dir, "idx-partial", f->dir, 1, 0, 32 + 10 * 32 + 5, -1);
    write_seed(out_dir, "flip", f->dir, 1, 0, 0, 700);
    write_seed(out_dir, "no-idx", f->dir, 1, 0, 1, -1);
    fy_store_opts o = {.segment_bytes = 1024};
    char d2[400];
    snprintf(d2, sizeof d2, "%s/b", f->tmp);
    t_make_channel(d2, &o, 40, 60, 0);
    write_seed(out_dir, "seg2", d2, t_rec_of(d2, &o, 40).seg, 0, 0, -1);
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: store_seeds DIR  (writes fuzz_store's seed corpus into DIR)\n");
        return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 64;
    }
    out_dir = argv[1];
    const struct CMUnitTest run[] = {
        cmocka_unit_test_setup_teardown(write_corpus, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(run, NULL, NULL);
}
