/*
 * test_query.c - the query payloads (QUERY, QEND), the hello's client name
 * (FY_HELLO_F_CLIENT), SKIP and the query frame types: round trips, every proper
 * prefix truncated, a trailing byte refused, each bad field's error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ferry/err.h"
#include "ferry/proto.h"

static uint8_t buf[FY_QUERY_MAX + 1];

static void test_query_round_trip(void **state)
{
    (void)state;
    fy_query *q = calloc(1, sizeof *q), *r = calloc(1, sizeof *r);
    size_t n;
    q->op = FY_QOP_RETAIN;
    q->flags = FY_QF_BYTES | FY_QF_AGE;
    q->arg1 = 1ull << 40;
    q->arg2 = 7200;
    strcpy(q->token, "secret token");
    strcpy(q->channel, "docs");
    strcpy(q->client, "alice@lab-1");
    q->nnames = 2;
    strcpy(q->names[0], "a.bin");
    strcpy(q->names[1], "b.txt");
    assert_int_equal(fy_query_encode(q, buf, sizeof buf, &n), 0);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(fy_query_decode(buf, k, r), -FY_ETRUNC);
    buf[n] = 0;
    assert_int_equal(fy_query_decode(buf, n + 1, r), -FY_EPAYLOAD);
    assert_int_equal(fy_query_decode(buf, n, r), 0);
    assert_int_equal(r->op, q->op);
    assert_int_equal(r->flags, q->flags);
    assert_true(r->arg1 == q->arg1 && r->arg2 == q->arg2);
    assert_string_equal(r->token, q->token);
    assert_string_equal(r->channel, "docs");
    assert_string_equal(r->client, "alice@lab-1");
    assert_int_equal(r->nnames, 2);
    assert_string_equal(r->names[1], "b.txt");
    /* file names are relative paths (UTF-8, directories), as in file-begin */
    strcpy(q->names[0], "photos/b/c.jpg");
    strcpy(q->names[1], "r\xc3\xa9sum\xc3\xa9 (v2).txt");
    assert_int_equal(fy_query_encode(q, buf, sizeof buf, &n), 0);
    assert_int_equal(fy_query_decode(buf, n, r), 0);
    assert_string_equal(r->names[0], "photos/b/c.jpg");
    assert_string_equal(r->names[1], "r\xc3\xa9sum\xc3\xa9 (v2).txt");
    strcpy(q->names[1], "../x");
    assert_int_equal(fy_query_encode(q, buf, sizeof buf, &n), -FY_ENAME);
    /* ls of every channel: no channel */
    memset(q, 0, sizeof *q);
    q->op = FY_QOP_LS;
    assert_int_equal(fy_query_encode(q, buf, sizeof buf, &n), 0);
    assert_int_equal(fy_query_decode(buf, n, r), 0);
    assert_string_equal(r->channel, "");
    /* every other op needs one */
    q->op = FY_QOP_RM;
    assert_int_equal(fy_query_encode(q, buf, sizeof buf, &n), -FY_ENAME);
    free(q);
    free(r);
}

static void test_query_bad(void **state)
{
    (void)state;
    fy_query *q = calloc(1, sizeof *q), *r = calloc(1, sizeof *r);
    size_t n;
    q->op = FY_QOP_RM;
    strcpy(q->channel, "docs");
    q->nnames = 1;
    strcpy(q->names[0], "x");
    assert_int_equal(fy_query_encode(q, buf, sizeof buf, &n), 0);
    buf[0] = 9; /* unknown op */
    assert_int_equal(fy_query_decode(buf, n, r), -FY_EPAYLOAD);
    buf[0] = FY_QOP_RM;
    buf[2] = 0x80; /* unknown flag */
    assert_int_equal(fy_query_decode(buf, n, r), -FY_EPAYLOAD);
    buf[2] = 0;
    buf[n - 1] = '/'; /* a file name that is not a relative path */
    assert_int_equal(fy_query_decode(buf, n, r), -FY_ENAME);
    strcpy(q->client, "a b");
    assert_int_equal(fy_query_encode(q, buf, sizeof buf, &n), -FY_ENAME);
    assert_int_equal(fy_query_encode(q, buf, 10, &n), -FY_ENAME);
    q->client[0] = 0;
    assert_int_equal(fy_query_encode(q, buf, 10, &n), -ENOBUFS);
    fy_qend e = {.code = 0, .count = 7}, e2;
    assert_int_equal(fy_qend_encode(&e, buf, sizeof buf, &n), 0);
    assert_int_equal(fy_qend_decode(buf, 7, &e2), -FY_ETRUNC);
    assert_int_equal(fy_qend_decode(buf, 9, &e2), -FY_EPAYLOAD);
    assert_int_equal(fy_qend_decode(buf, 8, &e2), 0);
    assert_int_equal(e2.count, 7);
    fy_skip k = {.first = 5, .next = 9}, k2;
    assert_int_equal(fy_skip_encode(&k, buf, sizeof buf, &n), 0);
    assert_int_equal(fy_skip_decode(buf, 15, &k2), -FY_ETRUNC);
    assert_int_equal(fy_skip_decode(buf, 17, &k2), -FY_EPAYLOAD);
    assert_int_equal(fy_skip_decode(buf, 16, &k2), 0);
    assert_true(k2.first == 5 && k2.next == 9);
    k.next = 5; /* an empty range says nothing */
    assert_int_equal(fy_skip_encode(&k, buf, sizeof buf, &n), -EINVAL);
    buf[8] = 5;
    assert_int_equal(fy_skip_decode(buf, 16, &k2), -FY_EPAYLOAD);
    free(q);
    free(r);
}

static void test_hello_client(void **state)
{
    (void)state;
    fy_hello h = {.role = FY_ROLE_RECEIVER, .flags = FY_HELLO_F_CLIENT | FY_HELLO_F_AHEAD}, r;
    size_t n;
    strcpy(h.channel, "docs");
    strcpy(h.client, "bob@host.example");
    assert_int_equal(fy_hello_encode(&h, buf, sizeof buf, &n), 0);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(fy_hello_decode(buf, k, &r), -FY_ETRUNC);
    buf[n] = 0;
    assert_int_equal(fy_hello_decode(buf, n + 1, &r), -FY_EPAYLOAD);
    assert_int_equal(fy_hello_decode(buf, n, &r), 0);
    assert_string_equal(r.client, "bob@host.example");
    buf[n - 1] = ' '; /* not a client name */
    assert_int_equal(fy_hello_decode(buf, n, &r), -FY_EPAYLOAD);
    /* without the flag nothing follows and the name is empty */
    h.flags = 0;
    assert_int_equal(fy_hello_encode(&h, buf, sizeof buf, &n), 0);
    assert_int_equal(fy_hello_decode(buf, n, &r), 0);
    assert_string_equal(r.client, "");
    assert_int_equal(fy_client_name_check("x", 1), 0);
    assert_int_equal(fy_client_name_check("", 0), -FY_ENAME);
    assert_int_equal(fy_client_name_check("a/b", 3), -FY_ENAME);
}

/* 16-18 are frame types; the hole before them is not. */
static void test_types(void **state)
{
    (void)state;
    assert_string_equal(fy_frame_type_name(FY_FT_QUERY), "query");
    assert_string_equal(fy_frame_type_name(FY_FT_QEND), "qend");
    assert_string_equal(fy_frame_type_name(12), "unknown");
    assert_int_equal(fy_frame_payload_max(12, 1 << 20), 0);
    assert_true(fy_frame_payload_max(FY_FT_QREC, 1 << 20) == FY_QREC_MAX);
    uint8_t hdr[FY_FRAME_HDR_SIZE];
    fy_frame_hdr h = {.type = 12}, d;
    fy_frame_seal(&h, NULL, 0, hdr);
    assert_int_equal(fy_frame_hdr_decode(hdr, 1 << 20, &d), -FY_ETYPE);
    h.type = FY_FT_QEND;
    fy_frame_seal(&h, "12345678", 8, hdr);
    assert_int_equal(fy_frame_hdr_decode(hdr, 1 << 20, &d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_round_trip),
        cmocka_unit_test(test_query_bad),
        cmocka_unit_test(test_hello_client),
        cmocka_unit_test(test_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
