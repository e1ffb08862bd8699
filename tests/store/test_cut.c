/*
 * test_cut.c - fy_store_cut (src/store/cut.c): a closed channel's log cut
 * back below a seq, in the middle of a segment, at a segment's first frame
 * and across segments; the next open's recovery finds the log ending there
 * with its index rebuilt, appends go on at that seq, and every frame kept
 * reads back unchanged.  Nothing to cut and a seq before the log are said.
 * fy_store_restart: a log emptied to start at a later seq.
 */
#include "store/store_util.h"

enum { MP = 60000 };

static const fy_store_opts opts = {.segment_bytes = 1u << 20, .max_payload = 1u << 20,
                                   .buffered = true};

/* Open dir: the log's next seq and the number of segments. */
static uint64_t reopen_next(const char *dir, uint64_t *segments)
{
    fy_recovery rep;
    fy_log *l;
    fy_idx *x;

    assert_int_equal(fy_store_open(dir, &opts, &l, &x, &rep), 0);
    uint64_t next = fy_log_next_seq(l);
    assert_int_equal(fy_idx_next_seq(x), next);
    if (segments)
        *segments = rep.segments;
    t_close(l, x);
    return next;
}

/* Every frame below end reads back as written; append from end goes on. */
static void check_then_append(const char *dir, uint64_t end)
{
    uint8_t *buf = malloc(FY_FRAME_HDR_SIZE + MP);
    fy_logrd *r;
    fy_log *l;
    fy_idx *x;

    assert_int_equal(fy_store_open(dir, &opts, &l, &x, NULL), 0);
    assert_int_equal(fy_log_next_seq(l), end);
    assert_int_equal(fy_logrd_open(dir, &r), 0);
    for (uint64_t s = 1; s < end; s++)
        t_check_frame(r, x, fy_log_end(l), s, MP, buf);
    fy_logrd_close(r);
    assert_int_equal(t_fill(l, x, end, 5, 5, MP, 0), 0);
    assert_int_equal(fy_log_next_seq(l), end + 5);
    t_close(l, x);
    free(buf);
}

static void test_cut_points(void **state)
{
    t_fix *f = *state;
    fy_log *l;
    fy_idx *x;
    uint64_t segs = 0, segs_after = 0;

    t_open_fill(f->dir, &opts, &l, &x, 1, 120, 10, MP);
    assert_int_equal(fy_log_sync(l), 0);
    t_close(l, x);
    assert_int_equal(reopen_next(f->dir, &segs), 121);
    assert_true(segs >= 3); /* ~30 KB a frame, 1 MiB segments */

    /* Nothing past the end; a seq before the log. */
    assert_int_equal(fy_store_cut(f->dir, 121, 1u << 20), 1);
    assert_int_equal(fy_store_cut(f->dir, 500, 1u << 20), 1);
    assert_int_equal(fy_store_cut(f->dir, 0, 1u << 20), -ERANGE);
    assert_int_equal(reopen_next(f->dir, NULL), 121);

    /* Inside the last segment, then across segments (later ones go). */
    assert_int_equal(fy_store_cut(f->dir, 115, 1u << 20), 0);
    assert_int_equal(reopen_next(f->dir, NULL), 115);
    assert_int_equal(fy_store_cut(f->dir, 40, 1u << 20), 0);
    assert_int_equal(reopen_next(f->dir, &segs_after), 40);
    assert_true(segs_after < segs);
    check_then_append(f->dir, 40);

    /* At the first frame: the segment stays, empty, at that base. */
    assert_int_equal(fy_store_cut(f->dir, 1, 1u << 20), 0);
    assert_int_equal(reopen_next(f->dir, NULL), 1);
    check_then_append(f->dir, 1);
}

static void test_cut_at_segment_base(void **state)
{
    t_fix *f = *state;
    fy_log *l;
    fy_idx *x;
    uint64_t *bases = NULL;
    size_t n = 0;

    t_open_fill(f->dir, &opts, &l, &x, 1, 90, 9, MP);
    assert_int_equal(fy_log_sync(l), 0);
    t_close(l, x);
    /* The second segment's base: find it by name. */
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned long long b;
        char ext[8];
        if (sscanf(e->d_name, "%20llu.%3s", &b, ext) == 2 && strcmp(ext, "log") == 0) {
            bases = realloc(bases, (n + 1) * sizeof *bases);
            bases[n++] = b;
        }
    }
    if (d)
        closedir(d);
    assert_true(n >= 2);
    uint64_t second = bases[0] > bases[1] ? bases[0] : bases[1];
    for (size_t i = 0; i < n; i++)
        if (bases[i] > 1 && bases[i] < second)
            second = bases[i];
    assert_int_equal(fy_store_cut(f->dir, second, 1u << 20), 0);
    assert_int_equal(reopen_next(f->dir, NULL), second);
    check_then_append(f->dir, second);
    free(bases);
}

/* A log emptied to start at a later seq (a follower behind its leader's
 * retention): the next open ends there, empty, and appends go on. */
static void test_restart_later(void **state)
{
    t_fix *f = *state;
    fy_log *l;
    fy_idx *x;

    t_open_fill(f->dir, &opts, &l, &x, 1, 50, 10, MP);
    assert_int_equal(fy_log_sync(l), 0);
    t_close(l, x);
    assert_int_equal(fy_store_restart(f->dir, 0), -EINVAL);
    assert_int_equal(fy_store_restart(f->dir, 400), 0);
    uint64_t segs = 0;
    assert_int_equal(reopen_next(f->dir, &segs), 400);
    assert_int_equal(segs, 1);
    assert_int_equal(fy_store_open(f->dir, &opts, &l, &x, NULL), 0);
    assert_int_equal(fy_log_first_seq(l), 400);
    assert_int_equal(t_fill(l, x, 400, 5, 5, MP, 0), 0);
    t_close(l, x);
    assert_int_equal(reopen_next(f->dir, NULL), 405);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cut_points, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_cut_at_segment_base, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_restart_later, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
