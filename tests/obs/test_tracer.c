/*
 * test_tracer.c - recording to a file while the scheduler runs: the
 * tracer's drains must write each event exactly once (the summary of the
 * streamed file counts exactly the scripted messages), rotation must keep
 * FILE + FILE.1 bounded and each readable on its own, a restart must keep
 * the previous run's file, and a snapshot (SIGUSR1's path) and a crash dump
 * must produce a readable file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tc.h"
#include "obs/rec.h"
#include "trread/trfile.h"
#include "relay/trsnap.h"
#include "tracer.h"
#include "trread/trchrome.h"
#include "trread/trdump.h"
#include "trread/trsum.h"
#include "cluster/cltrace.h"

typedef struct tdir {
    char dir[64];
} tdir;

static int setup(void **state)
{
    tdir *t = calloc(1, sizeof *t);
    if (!t || tc_tmpdir(t->dir, sizeof t->dir, "obs") < 0)
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tdir *t = *state;
    tc_rmtree(t->dir);
    free(t);
    return 0;
}

static uint64_t msgs_of_kind(const char *path, uint16_t kind, bool *ok, uint64_t *lost)
{
    char err[256];
    fy_trfile *f = NULL;
    *ok = false;
    if (fy_trfile_open(path, 0, &f, err, sizeof err) < 0) {
        print_error("%s: %s\n", path, err);
        return 0;
    }
    *ok = true;
    assert_true(fy_trfile_hdr(f)->flags & FY_TRACER_F_STREAM);
    fy_trsum *s = NULL;
    assert_int_equal(fy_trsum_compute(f, &s), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < s->nkind; i++)
        if (s->kind[i].kind == kind)
            n += s->kind[i].msgs;
    *lost = s->lost;
    fy_trsum_free(s);
    fy_trfile_free(f);
    return n;
}

static void test_stream_exactly_once(void **state)
{
    tdir *t = *state;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/live.trace", t->dir);
    rec_run r = {0};
    assert_int_equal(rec_start(&r, 1 << 16), 0);
    fy_actor *tr = NULL;
    fy_tracer_opts o = {.path = path, .max_bytes = 256u << 20, .period_ms = 10};
    assert_int_equal(fy_tracer_new(r.s, &o, &tr, err, sizeof err), 0);
    /* Several bursts with pauses, so many drains each see part of the run. */
    for (int k = 0; k < 10; k++) {
        assert_int_equal(rec_send(&r, (uint64_t)k * 300 + 1, 300), 0);
        rec_sleep_ms(15);
    }
    fy_actor_stop(tr);
    fy_actor_unref(tr);
    rec_stop(&r); /* joins: the tracer's dtor drained the rest */
    bool ok;
    uint64_t lost;
    uint64_t n = msgs_of_kind(path, REC_KIND_S, &ok, &lost);
    assert_true(ok);
    assert_int_equal(lost, 0);
    /* Every message once: no gap, no duplicate chunk.  The runtime counts
     * the stop message in the actor's last turn, hence the one extra. */
    assert_true(n == 3000 || n == 3001);
}

/* FY_TR_META_CLUSTER records in the file as written (the reader would
 * hide a duplicate: it keeps each serial once). */
static size_t raw_clusters(const char *path)
{
    FILE *fp = fopen(path, "rb");
    fy_trace_file_hdr h;
    fy_trace_rec r;
    size_t n = 0;
    assert_non_null(fp);
    assert_int_equal(fread(&h, sizeof h, 1, fp), 1);
    while (fread(&r, sizeof r, 1, fp) == 1) {
        n += r.type == FY_TR_META_CLUSTER;
        if (r.type == FY_TR_META_ACTOR || r.type == FY_TR_META_CLUSTER)
            fseek(fp, (long)r.b * 32, SEEK_CUR); /* label or text records */
    }
    fclose(fp);
    return n;
}

/* One member view of channel c1 into the cluster tracer. */
static void view(fy_cltrace *ct, const char *leader, uint64_t epoch, const char *isr, bool me)
{
    fy_chanstate st = {.epoch = epoch, .r = 2};
    snprintf(st.leader, sizeof st.leader, "%s", leader);
    for (const char *p = isr; *p && st.nisr < FY_CLUSTER_NODES_MAX;) {
        size_t l = strcspn(p, ",");
        snprintf(st.isr[st.nisr++], sizeof st.isr[0], "%.*s", (int)l, p);
        p += l + (p[l] == ',');
    }
    fy_member_view v = {.chan = "c1", .leading = me, .st = &st, .leader_addr = "127.0.0.1:1"};
    fy_cltrace_view(ct, &v);
}

/* Cluster events (the member's views, told apart by cltrace.c, and a
 * relay's own note) go into the streamed file once each, across ticks and
 * rotations, and ferry-trace's dump and summary show and count them. */
static void test_stream_cluster_events(void **state)
{
    tdir *t = *state;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/cl.trace", t->dir);
    rec_run r = {0};
    assert_int_equal(rec_start(&r, 1 << 16), 0);
    fy_actor *tr = NULL;
    fy_tracer_opts o = {.path = path, .max_bytes = 64 * 1024, .period_ms = 5};
    assert_int_equal(fy_tracer_new(r.s, &o, &tr, err, sizeof err), 0);
    fy_cltrace *ct = NULL;
    assert_int_equal(fy_cltrace_new(r.s, &ct), 0);
    view(ct, "n1", 1, "n1", false);            /* first seen: leader */
    view(ct, "n1", 1, "n1", false);            /* nothing changed: no event */
    rec_sleep_ms(12);
    view(ct, "n1", 1, "n1,n2,n3", false);      /* isr */
    for (int k = 0; k < 10; k++) {             /* rotations in between */
        assert_int_equal(rec_send(&r, (uint64_t)k * 200 + 1, 200), 0);
        rec_sleep_ms(6);
    }
    view(ct, "n2", 2, "n2,n3", true);          /* n1 gone: failover */
    fy_cltrace_isr_ask(r.s, "c1", 2, "n3", false, "lag");
    fy_actor_stop(tr);
    fy_actor_unref(tr);
    rec_stop(&r);
    fy_cltrace_free(ct);

    char path1[140];
    struct stat st;
    snprintf(path1, sizeof path1, "%s.1", path);
    assert_int_equal(stat(path1, &st), 0); /* it rotated */
    assert_int_equal(raw_clusters(path), 4); /* FILE: all of them once, none twice */
    fy_trfile *f = NULL;
    assert_int_equal(fy_trfile_open(path, 0, &f, err, sizeof err), 0);
    size_t n;
    const fy_trfile_cluster *c = fy_trfile_clusters(f, &n);
    assert_int_equal(n, 4);
    assert_int_equal(c[0].ev, FY_TR_CL_LEADER);
    assert_int_equal(c[0].epoch, 1);
    assert_string_equal(c[0].text, "channel=c1 leader=n1 old_epoch=0 isr=n1 r=2 leading=no");
    assert_int_equal(c[1].ev, FY_TR_CL_ISR);
    assert_string_equal(c[1].text, "channel=c1 isr=n1,n2,n3 old_isr=n1 r=2 leading=no");
    assert_int_equal(c[2].ev, FY_TR_CL_FAILOVER);
    assert_int_equal(c[2].epoch, 2);
    assert_string_equal(c[2].text,
                        "channel=c1 leader=n2 old_leader=n1 old_epoch=1 isr=n2,n3 leading=yes");
    assert_int_equal(c[3].ev, FY_TR_CL_NOTE);
    for (size_t i = 1; i < n; i++)
        assert_true(c[i - 1].serial < c[i].serial);

    char *txt = NULL;
    size_t tl = 0;
    FILE *out = open_memstream(&txt, &tl);
    fy_trdump_filter all = {.kind = -1, .until = UINT64_MAX};
    assert_true(fy_trdump_print(out, "cl.trace", f, &all) >= 4);
    fy_trsum *sum = NULL;
    assert_int_equal(fy_trsum_compute(f, &sum), 0);
    assert_int_equal(fy_trsum_print(out, "cl.trace", f, sum, 50), 0);
    assert_int_equal(fy_trchrome_write(out, f), 0);
    fclose(out);
    assert_non_null(strstr(txt, "\"name\":\"cluster failover\""));
    assert_non_null(strstr(txt, " cluster    failover epoch=2 channel=c1 leader=n2 old_leader=n1"));
    assert_non_null(strstr(txt, "cluster events: 4 (leader=1 isr=1 failover=1 note=1 other=0)"));
    assert_non_null(strstr(txt, "note     epoch=2 channel=c1 node=n3 isr=out why=lag"));
    free(txt);
    /* An actor or kind filter leaves the cluster lines out (they belong to no actor). */
    txt = NULL;
    out = open_memstream(&txt, &tl);
    fy_trdump_filter kind = {.kind = REC_KIND_S, .until = UINT64_MAX};
    assert_true(fy_trdump_print(out, "cl.trace", f, &kind) > 0);
    fclose(out);
    assert_null(strstr(txt, "--  cluster"));
    free(txt);
    fy_trsum_free(sum);
    fy_trfile_free(f);
}

static void test_stream_rotates(void **state)
{
    tdir *t = *state;
    char path[128], path1[140], err[256];
    snprintf(path, sizeof path, "%s/rot.trace", t->dir);
    snprintf(path1, sizeof path1, "%s.1", path);
    /* A previous run's file becomes FILE.1 at start. */
    FILE *old = fopen(path, "w");
    fputs("previous run", old);
    fclose(old);
    rec_run r = {0};
    assert_int_equal(rec_start(&r, 1 << 16), 0);
    fy_actor *tr = NULL;
    const uint64_t max = 64 * 1024;
    fy_tracer_opts o = {.path = path, .max_bytes = max, .period_ms = 5};
    assert_int_equal(fy_tracer_new(r.s, &o, &tr, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path1, &st), 0);
    assert_int_equal(st.st_size, 12); /* "previous run" kept */
    for (int k = 0; k < 20; k++) {
        assert_int_equal(rec_send(&r, (uint64_t)k * 200 + 1, 200), 0);
        rec_sleep_ms(6);
    }
    fy_actor_stop(tr);
    fy_actor_unref(tr);
    rec_stop(&r);
    /* Both files readable, both bounded (a chunk may overshoot by itself). */
    bool ok0, ok1;
    uint64_t lost;
    uint64_t n0 = msgs_of_kind(path, REC_KIND_S, &ok0, &lost);
    uint64_t n1 = msgs_of_kind(path1, REC_KIND_S, &ok1, &lost);
    assert_true(ok0 && ok1);
    /* The oldest went with the rotations; FILE may hold only the last
     * drain's few events when a rotation came just before the stop. */
    assert_true(n0 + n1 > 0 && n0 + n1 < 4000);
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size <= max);
    /* A rotated file starts with the actor table: labels still known. */
    char e2[256];
    fy_trfile *f = NULL;
    assert_int_equal(fy_trfile_open(path, 0, &f, e2, sizeof e2), 0);
    size_t na;
    const fy_trfile_actor *a = fy_trfile_actors(f, &na);
    bool lab = false;
    for (size_t i = 0; i < na; i++)
        lab |= strcmp(a[i].label, "chan-a 127.0.0.1:9") == 0;
    assert_true(lab);
    fy_trfile_free(f);
}

/* A drain that comes late (a loaded machine: here, a burst far larger
 * than a file between two ticks) still writes files within the bound:
 * the burst goes out in several chunks, rotating between them. */
static void test_stream_burst_bounded(void **state)
{
    tdir *t = *state;
    char path[128], path1[140], err[256];
    snprintf(path, sizeof path, "%s/burst.trace", t->dir);
    snprintf(path1, sizeof path1, "%s.1", path);
    rec_run r = {0};
    assert_int_equal(rec_start(&r, 1 << 16), 0);
    fy_actor *tr = NULL;
    const uint64_t max = 64 * 1024;
    fy_tracer_opts o = {.path = path, .max_bytes = max, .period_ms = 200};
    assert_int_equal(fy_tracer_new(r.s, &o, &tr, err, sizeof err), 0);
    /* 6 000 events (192 KB of records) before the first tick. */
    assert_int_equal(rec_send(&r, 1, 6000), 0);
    rec_sleep_ms(400);
    fy_actor_stop(tr);
    fy_actor_unref(tr);
    rec_stop(&r);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size <= max);
    assert_int_equal(stat(path1, &st), 0);
    assert_true((uint64_t)st.st_size <= max);
    bool ok0, ok1;
    uint64_t lost;
    assert_true(msgs_of_kind(path, REC_KIND_S, &ok0, &lost) +
                msgs_of_kind(path1, REC_KIND_S, &ok1, &lost) > 0);
    assert_true(ok0 && ok1);
}

static void test_snapshot(void **state)
{
    tdir *t = *state;
    rec_run r = {0};
    assert_int_equal(rec_start(&r, 1 << 16), 0);
    assert_int_equal(rec_send(&r, 1, 500), 0);
    char p1[256], p2[256], err[256];
    assert_int_equal(fy_trsnap_write(r.s, t->dir, p1, sizeof p1), 0);
    assert_int_equal(fy_trsnap_write(r.s, t->dir, p2, sizeof p2), 0);
    rec_stop(&r);
    assert_non_null(strstr(p1, "/trace-"));
    assert_string_not_equal(p1, p2); /* same second: a -N suffix, never overwritten */
    fy_trfile *f = NULL;
    assert_int_equal(fy_trfile_open(p1, 0, &f, err, sizeof err), 0);
    fy_trsum *s = NULL;
    assert_int_equal(fy_trsum_compute(f, &s), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < s->nkind; i++)
        if (s->kind[i].kind == REC_KIND_S)
            n = s->kind[i].msgs;
    assert_int_equal(n, 500);
    fy_trsum_free(s);
    fy_trfile_free(f);
    assert_int_equal(fy_trsnap_write(NULL, "/nonexistent-dir", p1, sizeof p1), -ENOENT);
}

/* A child records, then aborts: its handler must leave a readable dump. */
static void test_crash_dump(void **state)
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__) || defined(FY_TSAN)
    (void)state;
    skip(); /* the sanitizers own the fatal signals in their builds */
#else
    tdir *t = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rec_run r = {0};
        if (rec_start(&r, 1 << 14) < 0 || fy_trsnap_fatal_install(r.s, t->dir) < 0)
            _exit(3);
        if (rec_send(&r, 1, 200) < 0)
            _exit(4);
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2); /* keep the test log clean */
        abort();
    }
    int st = 0;
    uint64_t end = fy_now_ns() + 30000000000ull;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (fy_now_ns() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("crashing child did not die within 30 s");
        }
        rec_sleep_ms(10);
    }
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    DIR *d = opendir(t->dir);
    struct dirent *e;
    char found[512] = "";
    while ((e = readdir(d)))
        if (strstr(e->d_name, "-crash.trace"))
            snprintf(found, sizeof found, "%s/%s", t->dir, e->d_name);
    closedir(d);
    assert_true(found[0]);
    char err[256];
    fy_trfile *f = NULL;
    assert_int_equal(fy_trfile_open(found, 0, &f, err, sizeof err), 0);
    size_t n;
    fy_trfile_events(f, &n);
    assert_true(n > 200);
    fy_trfile_free(f);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_rotates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_cluster_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_burst_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_dump, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
