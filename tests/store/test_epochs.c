/*
 * test_epochs.c - the epochs file of a channel's log (src/store/epochs.c):
 * epochs begun one after another are kept oldest first with distinct ids
 * and survive a reload; only the last FY_EPOCHS_KEEP are kept; which seqs
 * of an epoch are still the log's own (fy_epochs_valid_below); a file
 * that does not parse loses its history, not the channel; an unwritable
 * directory is reported.  Real files in a temp dir under /tmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/err.h"
#include "store/epochs.h"

typedef struct fix {
    char dir[64];
    char path[96];
} fix;

static int setup(void **state)
{
    fix *f = calloc(1, sizeof *f);

    snprintf(f->dir, sizeof f->dir, "/tmp/ferry-epochs-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/epochs", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;

    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_begin_and_reload(void **state)
{
    fix *f = *state;
    fy_epochs t, u;

    assert_int_equal(fy_epochs_begin(f->dir, 1, &t), 0);
    assert_int_equal(t.n, 1);
    assert_int_not_equal(t.e[0].id, 0);
    assert_int_equal(t.e[0].start_seq, 1);
    assert_int_equal(fy_epochs_begin(f->dir, 100, &t), 0);
    assert_int_equal(fy_epochs_begin(f->dir, 80, &u), 0); /* a power loss cut 80..99 */
    assert_int_equal(u.n, 3);
    assert_int_equal(u.e[0].id, t.e[0].id);
    assert_int_equal(u.e[1].id, t.e[1].id);
    assert_int_equal(u.e[1].start_seq, 100);
    assert_int_equal(u.e[2].start_seq, 80);
    assert_true(u.e[2].id != u.e[1].id && u.e[2].id != u.e[0].id);

    /* frames of the first epoch are the log's below 80 (the lowest start
     * since), of the second below 80, of the current one all */
    assert_int_equal(fy_epochs_valid_below(&u, u.e[0].id), 80);
    assert_int_equal(fy_epochs_valid_below(&u, u.e[1].id), 80);
    assert_int_equal(fy_epochs_valid_below(&u, u.e[2].id), UINT64_MAX);
    assert_int_equal(fy_epochs_valid_below(&u, 0), UINT64_MAX);
    uint64_t other = u.e[0].id ^ u.e[1].id ^ u.e[2].id ^ 1;
    assert_int_equal(fy_epochs_valid_below(&u, other), UINT64_MAX);
}

/* Cluster mode: ids are cluster epochs, added by the cluster's rules. */
static void test_cluster_add(void **state)
{
    fix *f = *state;
    fy_epochs t, u;

    assert_int_equal(fy_epochs_load(f->dir, &t), 0);
    assert_int_equal(t.n, 0); /* no file: no history */
    assert_int_equal(fy_epochs_of(&t, 5), 0);
    assert_int_equal(fy_epochs_add(f->dir, &t, 1, 1), 0);
    assert_int_equal(fy_epochs_add(f->dir, &t, 1, 7), 1); /* already the last: nothing */
    assert_int_equal(fy_epochs_add(f->dir, &t, 2, 100), 0);
    assert_int_equal(fy_epochs_add(f->dir, &t, 3, 150), 0);
    assert_int_equal(fy_epochs_of(&t, 99), 1);
    assert_int_equal(fy_epochs_of(&t, 100), 2);
    assert_int_equal(fy_epochs_of(&t, 1000), 3);
    assert_int_equal(fy_epochs_valid_below(&t, 1), 100);
    assert_int_equal(fy_epochs_valid_below(&t, 2), 150);
    /* A leader's entry that begins before ours: our later entries are a
     * history the log no longer follows. */
    assert_int_equal(fy_epochs_add(f->dir, &t, 4, 120), 0);
    assert_int_equal(fy_epochs_load(f->dir, &u), 0);
    assert_int_equal(u.n, 3);
    assert_int_equal(u.e[2].id, 4);
    assert_int_equal(u.e[2].start_seq, 120);
    assert_int_equal(u.e[1].id, 2);
    assert_int_equal(fy_epochs_add(f->dir, &u, 0, 5), -EINVAL);
}

static void test_keeps_the_last(void **state)
{
    fix *f = *state;
    fy_epochs t;
    uint64_t first = 0, second = 0;

    for (unsigned i = 0; i < FY_EPOCHS_KEEP + 3; i++) {
        assert_int_equal(fy_epochs_begin(f->dir, 10 + i, &t), 0);
        if (i == 0)
            first = t.e[0].id;
        if (i == 3)
            second = t.e[3].id;
    }
    assert_int_equal(t.n, FY_EPOCHS_KEEP);
    assert_int_equal(t.e[0].start_seq, 13);
    assert_int_equal(t.e[0].id, second);
    assert_int_equal(t.e[FY_EPOCHS_KEEP - 1].start_seq, 10 + FY_EPOCHS_KEEP + 2);
    assert_int_equal(fy_epochs_valid_below(&t, first), UINT64_MAX); /* dropped: unknown */
    assert_int_equal(fy_epochs_valid_below(&t, second), 14);
}

static void test_corrupt(void **state)
{
    fix *f = *state;
    fy_epochs t;

    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("# x\n00000000000000aa 5\nnot an epoch\n", fp);
    fclose(fp);
    assert_int_equal(fy_epochs_begin(f->dir, 7, &t), -FY_ECORRUPT);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.e[0].start_seq, 7);
    assert_int_equal(fy_epochs_begin(f->dir, 9, &t), 0); /* the new file parses */
    assert_int_equal(t.n, 2);
}

static void test_unwritable(void **state)
{
    fix *f = *state;
    fy_epochs t;
    char d[128];

    snprintf(d, sizeof d, "%s/missing", f->dir);
    assert_int_equal(fy_epochs_begin(d, 3, &t), -ENOENT);
    assert_int_equal(t.n, 1); /* the epoch holds for this run */
    assert_int_equal(t.e[0].start_seq, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_begin_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keeps_the_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
