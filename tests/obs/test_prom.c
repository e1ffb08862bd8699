/*
 * test_prom.c - the Prometheus text builder and checker, and the HTTP
 * helper served from a real actor on loopback: GET /metrics answers 200
 * with valid exposition text whose counter moves between scrapes; other
 * paths get 404, garbage gets 400, and many idle connections are swept.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ferry/io.h"
#include "ferry/sock.h"
#include "obs/http_get.h"
#include "metrics/httpd.h"
#include "metrics/prom.h"
#include "obs/rec.h"

/* ---- the builder and the checker ----------------------------------------- */

static void test_prom_text(void **state)
{
    (void)state;
    fy_prom *p;
    char err[128];
    assert_int_equal(fy_prom_new(&p), 0);
    fy_prom_family(p, "ferry_frames_total", "counter", "Frames received.\nPer channel \\ peer");
    fy_prom_u64(p, "ferry_frames_total", 42, "channel", "a\"b\\c\nd", "peer", "127.0.0.1:9", NULL);
    fy_prom_u64(p, "ferry_frames_total", 18446744073709551615ull, NULL);
    fy_prom_family(p, "ferry_busy_ratio", "gauge", "Busy.");
    fy_prom_f64(p, "ferry_busy_ratio", 0.25, "thread", "0", NULL);
    size_t len;
    const char *t = fy_prom_text(p, &len);
    assert_non_null(t);
    assert_int_equal(fy_prom_check(t, len, err, sizeof err), 0);
    assert_non_null(strstr(t, "channel=\"a\\\"b\\\\c\\nd\""));
    assert_non_null(strstr(t, "# HELP ferry_frames_total Frames received.\\nPer channel \\\\ peer\n"));
    double v;
    assert_int_equal(fy_prom_find(t, "ferry_busy_ratio", "thread=\"0\"", &v), 0);
    assert_true(v == 0.25);
    assert_int_equal(fy_prom_find(t, "ferry_frames_total", NULL, &v), 0);
    assert_int_equal(fy_prom_find(t, "nope", NULL, &v), -ENOENT);
    fy_prom_free(p);

    static const char *const bad[] = {
        "name\n", "name{a=\"b\"}\n", "1name 3\n", "name{a=b} 3\n", "name{a=\"b} 3\n",
        "name 3 x\n", "name{a=\"\\q\"} 3\n", "name three\n", "name 3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (fy_prom_check(bad[i], strlen(bad[i]), err, sizeof err) != -EINVAL)
            fail_msg("accepted bad line: %s", bad[i]);
    const char *good = "# comment\n\nn 1\nn{a=\"x\",b=\"y\"} -2.5e3\nn +Inf\nn 1 1700000000000\n";
    assert_int_equal(fy_prom_check(good, strlen(good), err, sizeof err), 0);
}

/* ---- the HTTP helper in an actor ------------------------------------------- */

typedef struct srv {
    fy_httpd *h;
    uint64_t scrapes;
    _Atomic int ready;
    char addr[64];
    char err[128];
} srv;

enum { SRV_START = FY_MSG_USER + 1, SRV_SWEEP };
#define SRV_TAGS (1ull << 32)

static void on_req(void *arg, uint32_t conn, const char *method, const char *path)
{
    srv *s = arg;
    if (strcmp(method, "GET") != 0) {
        fy_httpd_reply(s->h, conn, 405, "text/plain", "GET only\n", 9);
        return;
    }
    if (strcmp(path, "/metrics") != 0) {
        fy_httpd_reply(s->h, conn, 404, "text/plain", "not found\n", 10);
        return;
    }
    fy_prom *p;
    if (fy_prom_new(&p) < 0)
        return;
    s->scrapes++;
    fy_prom_family(p, "test_scrapes_total", "counter", "Scrapes served.");
    fy_prom_u64(p, "test_scrapes_total", s->scrapes, NULL);
    size_t len;
    const char *t = fy_prom_text(p, &len);
    fy_httpd_reply(s->h, conn, 200, FY_PROM_CTYPE, t, len);
    fy_prom_free(p);
}

static int srv_fn(fy_actor *self, void *st, fy_msg *m)
{
    srv *s = st;
    if (m->type == SRV_START) {
        int rc = fy_httpd_new(self, "127.0.0.1:0", SRV_TAGS, &s->h, s->err, sizeof s->err);
        if (rc == 0)
            rc = fy_httpd_start(s->h);
        if (rc == 0)
            fy_httpd_bound(s->h, s->addr, sizeof s->addr);
        atomic_store(&s->ready, rc == 0 ? 1 : -1);
    } else if (m->type == SRV_SWEEP) {
        fy_httpd_sweep(s->h, (unsigned)m->u64[0]);
        atomic_store(&s->ready, 2);
    } else if (s->h && fy_httpd_owns(s->h, m)) {
        fy_httpd_io(s->h, m, on_req, s);
    }
    return FY_MSG_DONE;
}

static void srv_dtor(void *st)
{
    srv *s = st;
    fy_httpd_free(s->h);
}

static void wait_ready(srv *s, int want)
{
    for (int i = 0; i < 10000 && atomic_load(&s->ready) != want; i++)
        rec_sleep_ms(1);
    assert_int_equal(atomic_load(&s->ready), want);
}

/* One blocking request; returns the whole response (malloc'd). */
static char *http(const char *addr, const char *req)
{
    return t_http(addr, req, 10);
}

static void test_http_metrics(void **state)
{
    (void)state;
    fy_sched *sc;
    fy_sched_opts so = {.threads = 2};
    assert_int_equal(fy_sched_new(&so, &sc), 0);
    assert_int_equal(fy_sched_start(sc), 0);
    srv *s = calloc(1, sizeof *s);
    fy_actor *a;
    fy_actor_opts ao = {.fn = srv_fn, .dtor = srv_dtor, .state = s, .kind = 16, .label = "metrics"};
    assert_int_equal(fy_actor_new(sc, &ao, &a), 0);
    fy_actor_post(a, SRV_START, 0, 0, 0, NULL, NULL);
    wait_ready(s, 1);

    char err[128];
    double v1 = 0, v2 = 0;
    for (int k = 0; k < 2; k++) {
        char *r = http(s->addr, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        assert_true(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0);
        assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
        char *body = strstr(r, "\r\n\r\n");
        assert_non_null(body);
        body += 4;
        assert_int_equal(fy_prom_check(body, strlen(body), err, sizeof err), 0);
        assert_int_equal(fy_prom_find(body, "test_scrapes_total", NULL, k ? &v2 : &v1), 0);
        free(r);
    }
    assert_true(v2 == v1 + 1);

    char *r = http(s->addr, "GET /other HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.0 404", 12) == 0);
    free(r);
    r = http(s->addr, "garbage\n\n");
    assert_true(strncmp(r, "HTTP/1.0 400", 12) == 0);
    free(r);
    r = http(s->addr, "POST /metrics HTTP/1.0\n\n");
    assert_true(strncmp(r, "HTTP/1.0 405", 12) == 0);
    free(r);

    /* More idle connections than slots: the extra ones are closed, a sweep
     * frees the rest, and the server still answers afterwards. */
    fy_addr ad;
    assert_int_equal(fy_addr_parse(s->addr, "127.0.0.1", &ad), 0);
    int fds[FY_HTTPD_CONNS + 8];
    for (int i = 0; i < FY_HTTPD_CONNS + 8; i++)
        fds[i] = fy_sock_connect(&ad, 5000);
    rec_sleep_ms(50);
    fy_actor_post(a, SRV_SWEEP, 0, 0, 0, NULL, NULL);
    wait_ready(s, 2);
    for (int i = 0; i < FY_HTTPD_CONNS + 8; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    r = http(s->addr, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.0 200 OK", 15) == 0);
    free(r);

    fy_actor_stop(a);
    fy_actor_unref(a);
    fy_sched_exit(sc);
    fy_sched_join(sc);
    fy_sched_free(sc);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prom_text),
        cmocka_unit_test(test_http_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
