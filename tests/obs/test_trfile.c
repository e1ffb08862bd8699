/*
 * test_trfile.c - the trace reader and ferry-trace's three views against a
 * scripted run (rec.h) whose figures are known: a dump round-trips through
 * the file, the summary counts exactly the messages, bytes and lag that
 * were produced, the Chrome JSON parses and has a track per actor, the
 * timeline filters, and a truncated, foreign or garbled file is refused
 * with a reason and never crashes anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tc.h"
#include "ferry/err.h"
#include "obs/json.h"
#include "obs/rec.h"
#include "trread/trchrome.h"
#include "trread/trdump.h"
#include "trread/trfile.h"
#include "trread/trsum.h"

#define N 2000

typedef struct fixture {
    char dir[64];
    char path[128];
    uint8_t *data;
    size_t len;
    uint32_t p_id, s_id;
} fixture;

static uint8_t *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    assert_non_null(b);
    assert_int_equal(read(fd, b, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

/* One recorded run, dumped to a file, shared by the tests. */
static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || tc_tmpdir(fx->dir, sizeof fx->dir, "obs") < 0)
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/run.trace", fx->dir);
    rec_run r = {0};
    if (rec_start(&r, 1 << 16) < 0 || rec_send(&r, 1, N) < 0)
        return -1;
    fx->p_id = fy_actor_id(r.p);
    fx->s_id = fy_actor_id(r.q);
    int fd = open(fx->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || fy_trace_dump(r.s, fd) < 0)
        return -1;
    close(fd);
    rec_stop(&r);
    fx->data = slurp(fx->path, &fx->len);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tc_rmtree(fx->dir);
    free(fx->data);
    free(fx);
    return 0;
}

static fy_trfile *load(const fixture *fx)
{
    char err[256];
    fy_trfile *f = NULL;
    int rc = fy_trfile_open(fx->path, 0, &f, err, sizeof err);
    if (rc < 0)
        fail_msg("open: %s", err);
    return f;
}

/* ---- round trip and summary figures -------------------------------------- */

static void test_round_trip(void **state)
{
    fixture *fx = *state;
    fy_trfile *f = load(fx);
    const fy_trace_file_hdr *h = fy_trfile_hdr(f);
    assert_int_equal(h->version, FY_TRACE_VERSION);
    assert_int_equal(h->threads, 2);
    assert_int_equal(h->pid, getpid());
    assert_int_equal(fy_trfile_lost(f), 0);
    const fy_trfile_actor *p = fy_trfile_actor_find(f, fx->p_id);
    const fy_trfile_actor *q = fy_trfile_actor_find(f, fx->s_id);
    assert_non_null(p);
    assert_non_null(q);
    assert_string_equal(p->label, "peer-1");
    assert_string_equal(q->label, "chan-a 127.0.0.1:9");
    assert_int_equal(p->kind, REC_KIND_P);
    assert_int_equal(q->kind, REC_KIND_S);
    size_t n;
    const fy_trace_rec *ev = fy_trfile_events(f, &n);
    assert_true(n > 4 * N);
    for (size_t i = 1; i < n; i++)
        assert_true(ev[i - 1].ts_ns <= ev[i].ts_ns);
    assert_true(fy_trfile_real_ns(f, ev[0].ts_ns) > 1600000000ull * 1000000000ull);
    fy_trfile_free(f);
}

static void test_summary_figures(void **state)
{
    fixture *fx = *state;
    fy_trfile *f = load(fx);
    fy_trsum *s = NULL;
    assert_int_equal(fy_trsum_compute(f, &s), 0);
    const fy_trsum_actor *p = fy_trsum_actor_find(s, fx->p_id);
    const fy_trsum_actor *q = fy_trsum_actor_find(s, fx->s_id);
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal(p->msgs, N);
    assert_int_equal(q->msgs, N);
    assert_int_equal(q->sends, N); /* P sent from a scheduler thread */
    assert_int_equal(p->sends, 0); /* main thread sends are not traced */
    assert_int_equal(p->bytes[0], 100 * N);
    assert_int_equal(q->bytes[1], 100 * N);
    assert_true(q->has_lag);
    assert_int_equal(q->lag_peak_pkts, N);
    assert_int_equal(q->lag_peak_bytes, 100 * N);
    assert_int_equal(q->lag_last_pkts, N); /* one producer: FIFO */
    assert_true(q->peak_depth >= 1);
    assert_true(q->turn.n >= 1 && q->turn.n <= N);
    assert_true(q->turn.p50 <= q->turn.p99 && q->turn.p99 <= q->turn.max);
    assert_int_equal(q->wait.n, q->turn.n);
    /* per kind */
    bool saw = false;
    for (size_t i = 0; i < s->nkind; i++)
        if (s->kind[i].kind == REC_KIND_S) {
            assert_int_equal(s->kind[i].msgs, N);
            assert_int_equal(s->kind[i].actors, 1);
            assert_int_equal(s->kind[i].bytes[1], 100 * N);
            saw = true;
        }
    assert_true(saw);

    /* The printed summary: lagging receivers first, with S on top. */
    char *txt = NULL;
    size_t tl = 0;
    FILE *o = open_memstream(&txt, &tl);
    assert_int_equal(fy_trsum_print(o, "run.trace", f, s, 0), 0);
    fclose(o);
    const char *lag = strstr(txt, "most lagging receivers");
    const char *slow = strstr(txt, "slowest actors");
    const char *kind = strstr(txt, "per kind");
    assert_non_null(lag);
    assert_non_null(slow);
    assert_non_null(kind);
    assert_true(lag < slow && slow < kind);
    assert_non_null(strstr(lag, "chan-a"));
    assert_non_null(strstr(kind, "forwarder"));
    char want[64];
    snprintf(want, sizeof want, " %u ", N);
    assert_non_null(strstr(kind, want));
    free(txt);
    fy_trsum_free(s);
    fy_trfile_free(f);
}

/* ---- chrome -------------------------------------------------------------- */

static void test_chrome_json(void **state)
{
    fixture *fx = *state;
    fy_trfile *f = load(fx);
    char *txt = NULL;
    size_t tl = 0;
    FILE *o = open_memstream(&txt, &tl);
    assert_int_equal(fy_trchrome_write(o, f), 0);
    fclose(o);
    jval *doc = jparse(txt, tl);
    if (!doc)
        fail_msg("chrome output is not JSON (%zu bytes)", tl);
    jval *evs = jget(doc, "traceEvents");
    assert_non_null(evs);
    assert_int_equal(evs->t, J_ARR);
    unsigned p_track = 0, s_track = 0, s_slices = 0, flow_s = 0, flow_f = 0, depth = 0, lag = 0;
    uint64_t s_msgs = 0;
    for (size_t i = 0; i < evs->n; i++) {
        const jval *e = evs->kids[i];
        const char *ph = jgets(e, "ph");
        assert_non_null(ph);
        double tid = jgetn(e, "tid", -1);
        if (!strcmp(ph, "M") && !strcmp(jgets(e, "name"), "thread_name")) {
            const char *nm = jgets(jget(e, "args"), "name");
            if (tid == fx->p_id && strstr(nm, "session") && strstr(nm, "peer-1"))
                p_track++;
            if (tid == fx->s_id && strstr(nm, "forwarder") && strstr(nm, "chan-a"))
                s_track++;
        } else if (!strcmp(ph, "X") && tid == fx->s_id) {
            s_slices++;
            s_msgs += (uint64_t)jgetn(jget(e, "args"), "msgs", 0);
            assert_true(jgetn(e, "dur", -1) >= 0);
        } else if (!strcmp(ph, "s")) {
            flow_s++;
        } else if (!strcmp(ph, "f")) {
            flow_f++;
            assert_string_equal(jgets(e, "bp"), "e");
        } else if (!strcmp(ph, "C")) {
            const char *nm = jgets(e, "name");
            depth += !strncmp(nm, "depth ", 6);
            lag += !strncmp(nm, "lag ", 4);
        }
    }
    assert_int_equal(p_track, 1);
    assert_int_equal(s_track, 1);
    assert_true(s_slices >= 1);
    assert_int_equal(s_msgs, N);
    assert_int_equal(flow_s, N); /* every traced send gets an arrow to a turn */
    assert_int_equal(flow_f, N);
    assert_true(depth >= N);
    assert_int_equal(lag, N);
    jfree(doc);
    free(txt);
    fy_trfile_free(f);
}

/* ---- dump ---------------------------------------------------------------- */

static long dump_lines(const fy_trfile *f, const fy_trdump_filter *flt, char **txt)
{
    size_t tl = 0;
    FILE *o = open_memstream(txt, &tl);
    long n = fy_trdump_print(o, "run.trace", f, flt);
    fclose(o);
    return n;
}

static void test_dump_filters(void **state)
{
    fixture *fx = *state;
    fy_trfile *f = load(fx);
    size_t nev;
    fy_trfile_events(f, &nev);
    char *txt = NULL;
    fy_trdump_filter all = {.kind = -1, .until = UINT64_MAX};
    assert_int_equal(dump_lines(f, &all, &txt), (long)nev);
    assert_non_null(strstr(txt, "turn_end"));
    free(txt);

    fy_trdump_filter kind = {.kind = REC_KIND_S, .until = UINT64_MAX};
    long nk = dump_lines(f, &kind, &txt);
    assert_true(nk > 2 * N);
    char subj[64];
    snprintf(subj, sizeof subj, " a%u(session", fx->p_id);
    assert_null(strstr(txt, subj)); /* P only as a sender, never as the subject */
    assert_non_null(strstr(txt, "lag"));
    free(txt);

    fy_trdump_filter act = {.actor = fx->p_id, .kind = -1, .until = UINT64_MAX};
    long na = dump_lines(f, &act, &txt);
    assert_true(na > N); /* P's turns plus its sends to S */
    assert_non_null(strstr(txt, "from=a"));
    free(txt);

    fy_trdump_filter none = {.kind = -1, .since = 0, .until = 0};
    assert_true(dump_lines(f, &none, &txt) <= 2); /* only events at t = 0 */
    free(txt);

    uint64_t ns;
    assert_int_equal(fy_trdump_parse_time("250ms", &ns), 0);
    assert_int_equal(ns, 250000000);
    assert_int_equal(fy_trdump_parse_time("1.5", &ns), 0);
    assert_int_equal(ns, 1500000000);
    assert_int_equal(fy_trdump_parse_time("40us", &ns), 0);
    assert_int_equal(ns, 40000);
    assert_int_equal(fy_trdump_parse_time("3 weeks", &ns), -EINVAL);
    assert_int_equal(fy_trdump_parse_time("-1", &ns), -EINVAL);
    fy_trfile_free(f);
}

/* ---- bad input ----------------------------------------------------------- */

/* Every view on a parsed file, output thrown away: none may crash. */
static void all_views(const fy_trfile *f)
{
    FILE *o = fopen("/dev/null", "w");
    assert_non_null(o);
    fy_trsum *s = NULL;
    if (fy_trsum_compute(f, &s) == 0)
        fy_trsum_print(o, "x", f, s, 5);
    fy_trsum_free(s);
    fy_trchrome_write(o, f);
    fy_trdump_filter all = {.kind = -1, .until = UINT64_MAX};
    fy_trdump_print(o, "x", f, &all);
    fclose(o);
}

static void test_truncated(void **state)
{
    fixture *fx = *state;
    char err[256];
    fy_trfile *f = NULL;
    /* Cut inside the last record: refused, with the reason. */
    assert_int_equal(fy_trfile_parse(fx->data, fx->len - 5, 0, &f, err, sizeof err), -FY_ETRUNC);
    assert_non_null(strstr(err, "truncated"));
    /* Cut inside the header. */
    assert_int_equal(fy_trfile_parse(fx->data, 40, 0, &f, err, sizeof err), -FY_ETRUNC);
    assert_non_null(strstr(err, "header"));
    /* Cut at a record boundary inside the last thread block. */
    assert_int_equal(fy_trfile_parse(fx->data, fx->len - 32 * 7, 0, &f, err, sizeof err),
                     -FY_ETRUNC);
    assert_non_null(strstr(err, "announces"));
    /* --partial reads what is there and says what was cut. */
    assert_int_equal(fy_trfile_parse(fx->data, fx->len - 32 * 7 - 3, FY_TRFILE_PARTIAL, &f, err,
                                     sizeof err),
                     0);
    assert_true(strlen(fy_trfile_warning(f)) > 0);
    all_views(f);
    fy_trfile_free(f);
    /* Every cut length near the start, then a stride through the file. */
    for (size_t cut = 0; cut < fx->len; cut += cut < 2048 ? 1 : 997) {
        for (unsigned fl = 0; fl < 2; fl++) {
            f = NULL;
            int rc = fy_trfile_parse(fx->data, cut, fl, &f, err, sizeof err);
            if (rc == 0) {
                all_views(f);
                fy_trfile_free(f);
            } else {
                assert_true(strlen(err) > 0);
            }
        }
    }
}

static void test_foreign(void **state)
{
    (void)state;
    char err[256];
    fy_trfile *f = NULL;
    const char *txt = "hello, this is not a trace file at all\n";
    assert_int_equal(fy_trfile_parse(txt, strlen(txt), 0, &f, err, sizeof err), -FY_ECORRUPT);
    assert_non_null(strstr(err, "not a Ferry trace file"));
    assert_int_equal(fy_trfile_parse("", 0, 0, &f, err, sizeof err), -FY_ETRUNC);
    assert_int_equal(fy_trfile_parse("FERRY", 5, 0, &f, err, sizeof err), -FY_ETRUNC);
    /* Right magic, wrong version / record size. */
    fy_trace_file_hdr h = {.version = 9, .hdr_size = 64, .rec_size = 32};
    memcpy(h.magic, FY_TRACE_MAGIC, 8);
    assert_int_equal(fy_trfile_parse(&h, sizeof h, 0, &f, err, sizeof err), -FY_ECORRUPT);
    assert_non_null(strstr(err, "version 9"));
    h.version = FY_TRACE_VERSION;
    h.rec_size = 48;
    assert_int_equal(fy_trfile_parse(&h, sizeof h, 0, &f, err, sizeof err), -FY_ECORRUPT);
    h.rec_size = 32;
    h.hdr_size = 0xFFFFFFFF;
    assert_int_equal(fy_trfile_parse(&h, sizeof h, 0, &f, err, sizeof err), -FY_ECORRUPT);
    /* An empty but valid file: no events, every view still works. */
    h.hdr_size = 64;
    assert_int_equal(fy_trfile_parse(&h, sizeof h, 0, &f, err, sizeof err), 0);
    all_views(f);
    fy_trfile_free(f);
    /* A missing file. */
    assert_true(fy_trfile_open("/nonexistent/x.trace", 0, &f, err, sizeof err) < 0);
    assert_non_null(strstr(err, "cannot open"));
}

/* Random files and random damage to a real one: errors or a parse, never
 * a crash (ASan/UBSan builds check the "never"). */
static void test_garbage(void **state)
{
    fixture *fx = *state;
    char err[256];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    uint8_t *buf = malloc(fx->len);
    assert_non_null(buf);
    for (int round = 0; round < 300; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = fx->len;
        memcpy(buf, fx->data, len);
        if (round < 100) {
            /* pure garbage after a valid header half the time */
            len = 64 + (x % 4096);
            for (size_t i = 0; i < len; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[i] = (uint8_t)x;
            }
            if (round % 2)
                memcpy(buf, fx->data, 64);
        } else {
            /* flip a few bytes of the real file, counts and types included */
            for (int k = 0; k < 1 + round % 16; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[64 + x % (len - 64)] = (uint8_t)(x >> 32);
            }
            len -= (round % 3 == 0) ? (x % 200) : 0;
        }
        for (unsigned fl = 0; fl < 2; fl++) {
            fy_trfile *f = NULL;
            if (fy_trfile_parse(buf, len, fl, &f, err, sizeof err) == 0) {
                if (round % 10 == 0)
                    all_views(f);
                fy_trfile_free(f);
            }
        }
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_summary_figures),
        cmocka_unit_test(test_chrome_json),  cmocka_unit_test(test_dump_filters),
        cmocka_unit_test(test_truncated),    cmocka_unit_test(test_foreign),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
