/*
 * test_writebehind.c - the store's write-behind half: the sync worker
 * (fy_syncer) reporting durable positions in order, a roll that leaves the
 * old segment to the worker, an injected failed sync failing the log for
 * good and the log then cut back to its durable end (fy_log_rewind), the
 * write-fault hook's torn append cut back, and recovery of segments whose seal never ran: an open segment
 * before the last that was torn is cut and the later segments dropped, an
 * open one that is whole is kept and sealed, a sealed one with a bad
 * frame is still refused, and a log from before the flag (its last segment
 * sealed) gets that segment opened again.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/seg.h"
#include "store_util.h"

typedef t_fix fix;

/* ---- the sync worker ------------------------------------------------------- */

/* What a log's done callback saw (on the worker's thread). */
typedef struct reports {
    pthread_mutex_t mu;
    size_t n;
    uint64_t seq[64], bytes[64];
    int rc[64];
} reports;

static void on_synced(void *arg, uint64_t seq, uint64_t bytes, int rc)
{
    reports *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->n < 64) {
        r->seq[r->n] = seq;
        r->bytes[r->n] = bytes;
        r->rc[r->n] = rc;
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
}

/* Hand every report so far to the log, as the writer actor does; returns
 * the last fy_log_synced result. */
static int deliver(fy_log *l, reports *r, size_t *from)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    for (; *from < r->n; (*from)++)
        rc = fy_log_synced(l, r->seq[*from], r->bytes[*from], r->rc[*from]);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Frames first..first+n-1 appended (not indexed), one batch each. */
static void append(fy_log *l, uint64_t first, size_t n, size_t plen)
{
    for (size_t i = 0; i < n; i++) {
        tframe f = t_frame(first + i, plen);
        struct iovec v = {f.b, f.len};
        fy_idx_rec rec;
        assert_int_equal(fy_log_append(l, &v, 1, &rec), 0);
        free(f.b);
    }
}

static void header_state(const char *dir, uint64_t base, int want)
{
    char p[512];
    size_t len;
    t_path(p, dir, base, "log");
    uint8_t *b = t_slurp(p, &len);
    assert_non_null(b);
    assert_true(len >= FY__SEG_HDR_SIZE);
    assert_int_equal(fy__seg_hdr_check(FY__SEG_LOG, base, b), want);
    free(b);
}

static void test_syncer_order(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.segment_bytes = 4096, .buffered = true};
    reports r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fy_syncer *s;
    fy_log *l;
    fy_idx *x;
    size_t from = 0;

    assert_int_equal(fy_syncer_start(&s), 0);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), 0);
    fy_log_set_syncer(l, s, on_synced, &r);
    assert_int_equal(fy_log_durable_seq(l), 1);
    append(l, 1, 40, 200); /* 232 bytes a frame: a roll every 17 frames */
    assert_true(fy_log_end(l).seg > 1);
    assert_int_equal(fy_log_sync_start(l), 0);
    assert_int_equal(fy_log_sync_start(l), 0); /* nothing new: nothing queued */
    fy_log_sync(l);                             /* waits for the worker first */
    assert_int_equal(deliver(l, &r, &from), 0);
    assert_true(r.n >= 2); /* the rolls' seals, and the sync (perhaps merged) */
    for (size_t i = 1; i < r.n; i++) {
        assert_true(r.seq[i] > r.seq[i - 1]);
        assert_true(r.bytes[i] > r.bytes[i - 1]);
    }
    assert_int_equal(r.seq[r.n - 1], 41);
    assert_int_equal(r.bytes[r.n - 1], fy_log_bytes(l));
    assert_int_equal(fy_log_durable_seq(l), 41);
    assert_int_equal(fy_log_durable_bytes(l), 40 * 232);
    /* The worker sealed every segment the log rolled away from. */
    header_state(f->dir, 1, 0);
    header_state(f->dir, fy_log_end(l).seg, 1);
    t_close(l, x);
    /* (appended without the indexer: opening rebuilds the index) */
    fy_recovery rep;
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
    assert_int_equal(rep.next_seq, 41);
    assert_int_equal(rep.truncated_bytes, 0);
    t_close(l, x);
    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 0, &cr), 0);
    fy_syncer_stop(s);
}

/* A failed sync is never retried and called durable. */
static void test_syncer_failure(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.buffered = true};
    reports r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fy_syncer *s;
    fy_log *l;
    fy_idx *x;
    size_t from = 0;

    assert_int_equal(fy_syncer_start(&s), 0);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), 0);
    fy_log_set_syncer(l, s, on_synced, &r);
    append(l, 1, 5, 100);
    assert_int_equal(fy_log_sync_start(l), 0);
    fy_log_close(l); /* waits for the job */
    fy_idx_close(x);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), 0);
    fy_log_set_syncer(l, s, on_synced, &r);
    assert_int_equal(deliver(l, &r, &from), 0);
    fy_syncer_fail_after(s, 0, -EIO);
    append(l, 6, 5, 100);
    assert_int_equal(fy_log_sync_start(l), 0);
    /* fy_log_sync waits for the job and sees it failed before its report
     * is delivered: it must not sync again and call that durable. */
    assert_int_equal(fy_log_sync(l), -EIO);
    assert_int_equal(fy_log_durable_seq(l), 6);
    assert_int_equal(deliver(l, &r, &from), -EIO);
    assert_int_equal(fy_log_failed(l), -EIO);
    assert_int_equal(fy_log_durable_seq(l), 6);
    tframe fr = t_frame(11, 10);
    struct iovec v = {fr.b, fr.len};
    fy_idx_rec rec;
    assert_int_equal(fy_log_append(l, &v, 1, &rec), -EIO);
    free(fr.b);
    /* A later good report does not move it either. */
    assert_int_equal(fy_log_synced(l, 11, fy_log_bytes(l), 0), -EIO);
    assert_int_equal(fy_log_durable_seq(l), 6);
    assert_int_equal(fy_log_sync_start(l), -EIO);
    t_close(l, x);
    fy_syncer_stop(s);
}

static size_t nsegs(const char *dir);

/* After a failed sync the log is cut back to its durable end
 * (fy_log_rewind): in the current segment, and across a roll whose seal
 * is the job that failed (the later segments go; a later sync that
 * succeeded changes nothing).  Reopened, the log ends there. */
static void test_rewind(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.segment_bytes = 4096, .buffered = true};
    reports r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fy_syncer *s;
    fy_log *l;
    fy_idx *x;
    size_t from = 0;
    uint64_t dropped;

    assert_int_equal(fy_syncer_start(&s), 0);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), 0);
    fy_log_set_syncer(l, s, on_synced, &r);
    append(l, 1, 10, 200); /* 232 bytes a frame: a roll every 17 frames */
    assert_int_equal(fy_log_sync_start(l), 0);
    assert_int_equal(fy_log_rewind(l, &dropped), 0); /* not failed: nothing to cut */
    assert_int_equal(dropped, 0);
    assert_int_equal(deliver(l, &r, &from), 0);
    assert_int_equal(fy_log_durable_seq(l), 11);
    fy_syncer_fail_after(s, 0, -EIO); /* the next job: the seal of the roll at 18 */
    append(l, 11, 30, 200);           /* rolls at 18 and 35 */
    assert_int_equal(nsegs(f->dir), 3);
    assert_int_equal(fy_log_sync_start(l), 0); /* this one succeeds */
    assert_int_equal(fy_log_sync(l), -EIO);
    assert_int_equal(deliver(l, &r, &from), -EIO);
    assert_int_equal(fy_log_durable_seq(l), 11);
    assert_int_equal(fy_log_rewind(l, &dropped), 0);
    assert_int_equal(dropped, 30 * 232);
    assert_int_equal(fy_log_next_seq(l), 11);
    assert_int_equal(nsegs(f->dir), 1);
    header_state(f->dir, 1, 1); /* the current segment again: open */
    t_close(l, x);
    fy_recovery rep;
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
    assert_int_equal(rep.next_seq, 11);
    assert_int_equal(rep.truncated_bytes, 0);
    /* And inside the current segment, nothing durable since the open. */
    fy_log_set_syncer(l, s, on_synced, &r);
    fy_syncer_fail_after(s, 0, -EIO);
    append(l, 11, 3, 200);
    assert_int_equal(fy_log_sync_start(l), 0);
    assert_int_equal(fy_log_sync(l), -EIO);
    assert_int_equal(fy_log_rewind(l, &dropped), 0);
    assert_int_equal(dropped, 3 * 232);
    t_close(l, x);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
    assert_int_equal(rep.next_seq, 11);
    t_close(l, x);
    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 0, &cr), 0);
    fy_syncer_stop(s);
}

/* The write-fault hook: an append that fails part way (inside a frame)
 * keeps the whole frames before it and cuts the torn rest; once the fault
 * is over appends go on from there. */
static void test_write_fault(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.buffered = true};
    reports r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fy_syncer *s;
    fy_log *l;
    fy_idx *x;
    tframe fr[5];
    struct iovec v[5];
    fy_idx_rec rec[5];

    assert_int_equal(fy_syncer_start(&s), 0);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), 0);
    fy_log_set_syncer(l, s, on_synced, &r);
    fy_syncer_write_fault(s, -ENOSPC, 2 * 232 + 100, 0);
    for (int i = 0; i < 5; i++) {
        fr[i] = t_frame(1 + (uint64_t)i, 200);
        v[i] = (struct iovec){fr[i].b, fr[i].len};
    }
    assert_int_equal(fy_log_append(l, v, 5, rec), -ENOSPC);
    assert_int_equal(fy_log_next_seq(l), 3);
    assert_int_equal(fy_log_end(l).off, 32 + 2 * 232);
    assert_int_equal(fy_log_append(l, v + 2, 3, rec), 0); /* the fault is over */
    assert_int_equal(fy_log_next_seq(l), 6);
    for (int i = 0; i < 5; i++)
        free(fr[i].b);
    t_close(l, x);
    fy_recovery rep;
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
    assert_int_equal(rep.next_seq, 6);
    assert_int_equal(rep.truncated_bytes, 0);
    t_close(l, x);
    fy_syncer_stop(s);
}

/* ---- recovery of segments whose seal never ran ------------------------------- */

static size_t nsegs(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    uint64_t *b;
    size_t n;
    assert_true(dfd >= 0);
    assert_int_equal(fy__seg_list(dfd, FY__SEG_LOG, &b, &n), 0);
    close(dfd);
    free(b);
    return n;
}

/* Rewrite segment base's header as open, as if the worker never sealed it. */
static void unseal(const char *dir, uint64_t base)
{
    char p[512];
    uint8_t hb[FY__SEG_HDR_SIZE];
    t_path(p, dir, base, "log");
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    fy__seg_hdr_encode_open(base, hb);
    assert_int_equal(pwrite(fd, hb, sizeof hb, 0), (ssize_t)sizeof hb);
    close(fd);
}

/* Frames 1..300 in 4 KiB segments; *mid = the segment holding frame 100,
 * which must have at least two segments after it. */
static void make(fix *f, const fy_store_opts *o, fy_idx_rec *mid)
{
    t_make_channel(f->dir, o, 300, 200, 0);
    *mid = t_rec_of(f->dir, o, 100);
    fy_idx_rec last = t_rec_of(f->dir, o, 300);
    assert_true(last.seg > mid->seg);
    assert_true(nsegs(f->dir) >= 4);
    header_state(f->dir, mid->seg, 0); /* rolled without a worker: sealed at once */
    header_state(f->dir, last.seg, 1); /* the current one is open */
}

static void test_open_torn_cut(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.segment_bytes = 4096};
    fy_idx_rec mid;
    fy_log *l;
    fy_idx *x;
    fy_recovery rep;
    char p[512];

    make(f, &o, &mid);
    size_t before = nsegs(f->dir);
    uint64_t k = mid.seg;
    /* Power lost after the roll, before the seal: the segment's last pages
     * never reached the disk, the next segments' names (and some data) did. */
    unseal(f->dir, k);
    t_path(p, f->dir, k, "log");
    assert_int_equal(truncate(p, (off_t)(mid.off + 10)), 0);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
    assert_int_equal(rep.next_seq, 100);
    assert_int_equal(fy_log_next_seq(l), 100);
    assert_true(rep.segments_dropped >= 2);
    assert_int_equal(fy_log_end(l).seg, k); /* the cut segment is the last one now */
    t_close(l, x);
    assert_int_equal(nsegs(f->dir), before - rep.segments_dropped);
    assert_int_equal(t_fsize(p), (off_t)mid.off); /* cut at the torn frame */
    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 200, &cr), 0);
    assert_int_equal(cr.next_seq, 100);
    /* And the log goes on from there. */
    t_open_fill(f->dir, &o, &l, &x, 100, 20, 3, 200);
    t_close(l, x);
    assert_int_equal(fy_store_check(f->dir, 200, &cr), 0);
    assert_int_equal(cr.next_seq, 120);
}

/* An open segment that is whole (only its seal was lost) is kept, and
 * sealed by recovery. */
static void test_open_whole_kept(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.segment_bytes = 4096};
    fy_idx_rec mid;
    fy_log *l;
    fy_idx *x;
    fy_recovery rep;

    make(f, &o, &mid);
    size_t before = nsegs(f->dir);
    unseal(f->dir, mid.seg);
    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 200, &cr), 0);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, &rep), 0);
    assert_int_equal(rep.next_seq, 301);
    assert_int_equal(rep.segments_dropped, 0);
    t_close(l, x);
    assert_int_equal(nsegs(f->dir), before);
    header_state(f->dir, mid.seg, 0);
    assert_int_equal(fy_store_check(f->dir, 200, &cr), 0);
}

/* A sealed segment was wholly on disk: a bad frame in it is damage, not a
 * torn write, and is still refused. */
static void test_sealed_torn_refused(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.segment_bytes = 4096};
    fy_idx_rec mid;
    fy_log *l;
    fy_idx *x;
    char p[512];

    make(f, &o, &mid);
    size_t before = nsegs(f->dir);
    t_path(p, f->dir, mid.seg, "log");
    assert_int_equal(truncate(p, (off_t)(mid.off + 10)), 0);
    assert_int_equal(fy_store_open(f->dir, &o, &l, &x, NULL), -FY_ECORRUPT);
    assert_int_equal(nsegs(f->dir), before); /* nothing dropped */
    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 200, &cr), -FY_ECORRUPT);
}

/* A log written before the flag: every header sealed, the last one too.
 * Opening it marks the last segment open again before anything is
 * appended, so a later roll's lost seal cannot leave a sealed torn one. */
static void test_legacy_last_reopened(void **state)
{
    fix *f = *state;
    const fy_store_opts o = {.segment_bytes = 4096};
    fy_idx_rec mid;
    fy_log *l;
    fy_idx *x;
    char p[512];
    uint8_t hb[FY__SEG_HDR_SIZE];

    make(f, &o, &mid);
    fy_idx_rec last = t_rec_of(f->dir, &o, 300);
    t_path(p, f->dir, last.seg, "log");
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    fy__seg_hdr_encode(FY__SEG_LOG, last.seg, hb);
    assert_int_equal(pwrite(fd, hb, sizeof hb, 0), (ssize_t)sizeof hb);
    close(fd);
    header_state(f->dir, last.seg, 0);
    t_open_fill(f->dir, &o, &l, &x, 301, 5, 2, 200);
    header_state(f->dir, last.seg, 1);
    t_close(l, x);
    fy_check_report cr;
    assert_int_equal(fy_store_check(f->dir, 200, &cr), 0);
    assert_int_equal(cr.next_seq, 306);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_syncer_order, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_syncer_failure, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_rewind, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_write_fault, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_open_torn_cut, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_open_whole_kept, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sealed_torn_refused, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_legacy_last_reopened, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
