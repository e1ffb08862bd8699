/*
 * test_tls.c - fy_conn over TLS (src/net/conn.c, tls.c) on a non-blocking
 * socketpair with small buffers, so writes keep hitting "the socket is
 * full": the handshake driven by both ends in turn, a stream written in
 * pieces of changing size (after -EAGAIN the writer offers a different
 * length, as the forwarder does when a control frame goes next), records
 * held in the connection and sent by fy_conn_flush, and fy_conn_sendfile's
 * user-space path (pread + SSL_write).  The reader must see exactly the
 * bytes the writer was told were taken, in order.  The certificate is made
 * here with the OpenSSL API.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/tc.h"
#include "ferry/conn.h"
#include "ferry/err.h"
#include "ferry/sock.h"
#include "ferry/tls.h"

#define TOTAL (3u << 20)

static char dir[64];
static char cert_path[128], key_path[128], data_path[128];

/* A self-signed P-256 certificate for DNS:ferry-test, written as PEM. */
static void make_cert(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ferry-test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_CTX v;
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, NID_subject_alt_name, "DNS:ferry-test");
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    e = X509V3_EXT_conf_nid(NULL, &v, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

static uint8_t at(size_t i)
{
    return (uint8_t)(i * 2654435761u >> 13);
}

/* Read what is there into got (bounded by TOTAL).  Returns bytes read. */
static size_t pump_reader(fy_conn *r, uint8_t *got, size_t *have)
{
    size_t n0 = *have;
    for (;;) {
        ssize_t n = fy_conn_recv(r, got + *have, TOTAL + 1 - *have);
        if (n == -EAGAIN)
            break;
        assert_true(n > 0);
        *have += (size_t)n;
    }
    return *have - n0;
}

/* Both ends' handshakes, stepped in turn until done (bounded). */
static void handshake_both(fy_conn *w, fy_conn *r)
{
    int hw = -EAGAIN, hr = -EAGAIN;
    for (int i = 0; i < 1000 && (hw || hr); i++) {
        if (hw)
            hw = fy_conn_handshake(w);
        if (hr)
            hr = fy_conn_handshake(r);
        assert_true(hw == 0 || hw == -EAGAIN);
        assert_true(hr == 0 || hr == -EAGAIN);
    }
    assert_int_equal(hw, 0);
    assert_int_equal(hr, 0);
}

/* The file that fy_conn_sendfile sends from: the stream's bytes at the
 * same offsets, so the reader checks one pattern throughout.  src gets
 * them too; returns the file, open for reading. */
static int write_source(uint8_t *src)
{
    for (size_t i = 0; i < TOTAL; i++)
        src[i] = at(i);
    FILE *f = fopen(data_path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(src, 1, TOTAL, f), TOTAL);
    fclose(f);
    int dfd = open(data_path, O_RDONLY);
    assert_true(dfd >= 0);
    return dfd;
}

static void test_stream_through_full_socket(void **state)
{
    (void)state;
    int sv[2];
    char err[512];
    fy_tls *srv, *cli;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(fy_sock_set_bufs(sv[0], 4096, 4096), 0);
    assert_int_equal(fy_sock_set_bufs(sv[1], 4096, 4096), 0);
    assert_int_equal(fy_tls_server_new(cert_path, key_path, NULL, &srv, err, sizeof err), 0);
    assert_int_equal(fy_tls_client_new(cert_path, NULL, NULL, &cli, err, sizeof err), 0);
    fy_conn w = fy_conn_plain(sv[0]), r = fy_conn_plain(sv[1]);
    assert_int_equal(fy_conn_tls_start(&w, srv, NULL), 0);
    assert_int_equal(fy_conn_tls_start(&r, cli, "ferry-test"), 0);
    handshake_both(&w, &r);

    uint8_t *src = malloc(TOTAL), *got = malloc(TOTAL + 1);
    assert_non_null(src);
    assert_non_null(got);
    int dfd = write_source(src);

    size_t taken = 0, have = 0, eagains = 0;
    unsigned seed = 1;
    while (taken < TOTAL) {
        seed = seed * 1103515245u + 12345u;
        size_t want = 1 + (seed >> 8) % 70000; /* a different length every call */
        if (want > TOTAL - taken)
            want = TOTAL - taken;
        ssize_t n;
        if ((seed >> 4) % 4 == 0) {
            n = fy_conn_sendfile(&w, dfd, (off_t)taken, want);
        } else {
            struct iovec iov[2] = {{src + taken, want / 2}, {src + taken + want / 2,
                                                            want - want / 2}};
            n = want / 2 ? fy_conn_writev(&w, iov, 2) : fy_conn_writev(&w, iov + 1, 1);
        }
        if (n == -EAGAIN) {
            eagains++;
            pump_reader(&r, got, &have);
            continue;
        }
        assert_true(n > 0);
        taken += (size_t)n;
    }
    /* The last record may still be held: flush until out, reading meanwhile. */
    int rc;
    while ((rc = fy_conn_flush(&w)) == -EAGAIN)
        pump_reader(&r, got, &have);
    assert_int_equal(rc, 0);
    for (int i = 0; i < 100 && have < TOTAL; i++)
        pump_reader(&r, got, &have);
    assert_int_equal(have, TOTAL);
    assert_memory_equal(got, src, TOTAL);
    assert_true(eagains > 0); /* the small buffers did make it wait */

    /* An orderly end: close_notify, then the reader sees 0. */
    assert_int_equal(fy_conn_shutdown_wr(&w), 0);
    ssize_t e = -EAGAIN;
    for (int i = 0; i < 100 && e == -EAGAIN; i++)
        e = fy_conn_recv(&r, got, 16);
    assert_int_equal(e, 0);

    close(dfd);
    fy_conn_close(&w);
    fy_conn_close(&r);
    fy_tls_free(srv);
    fy_tls_free(cli);
    free(src);
    free(got);
}

/* A client that trusts another certificate fails with -FY_ETLS and says why. */
static void test_verify_fails(void **state)
{
    (void)state;
    int sv[2];
    char err[512];
    fy_tls *srv, *cli;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(fy_tls_server_new(cert_path, key_path, NULL, &srv, err, sizeof err), 0);
    assert_int_equal(fy_tls_client_new(cert_path, NULL, NULL, &cli, err, sizeof err), 0);
    fy_conn w = fy_conn_plain(sv[0]), r = fy_conn_plain(sv[1]);
    assert_int_equal(fy_conn_tls_start(&w, srv, NULL), 0);
    assert_int_equal(fy_conn_tls_start(&r, cli, "not-ferry-test"), 0); /* wrong name */
    int hw = -EAGAIN, hr = -EAGAIN;
    for (int i = 0; i < 1000 && (hw == -EAGAIN || hr == -EAGAIN); i++) {
        if (hw == -EAGAIN)
            hw = fy_conn_handshake(&w);
        if (hr == -EAGAIN)
            hr = fy_conn_handshake(&r);
    }
    assert_int_equal(hr, -FY_ETLS);
    assert_non_null(strstr(fy_conn_tls_error(&r), "hostname mismatch"));
    assert_true(hw < 0);
    fy_conn_close(&w);
    fy_conn_close(&r);
    fy_tls_free(srv);
    fy_tls_free(cli);
    /* Bad settings are reported by file name. */
    assert_int_equal(fy_tls_server_new("/nonexistent.pem", key_path, NULL, &srv, err, sizeof err),
                     -FY_ETLS);
    assert_non_null(strstr(err, "/nonexistent.pem"));
    assert_null(srv);
}

static void test_name_from_server(void **state)
{
    (void)state;
    char b[64];
    assert_int_equal(fy_tls_name_from_server("relay.example:7420", b, sizeof b), 0);
    assert_string_equal(b, "relay.example");
    assert_int_equal(fy_tls_name_from_server("[::1]:7420", b, sizeof b), 0);
    assert_string_equal(b, "::1");
    assert_int_equal(fy_tls_name_from_server(":7420", b, sizeof b), 0);
    assert_string_equal(b, "127.0.0.1");
}

static int setup(void **state)
{
    (void)state;
    if (tc_tmpdir(dir, sizeof dir, "tls") < 0)
        return -1;
    snprintf(cert_path, sizeof cert_path, "%s/c.pem", dir);
    snprintf(key_path, sizeof key_path, "%s/k.pem", dir);
    snprintf(data_path, sizeof data_path, "%s/data", dir);
    make_cert();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tc_rmtree(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_through_full_socket),
        cmocka_unit_test(test_verify_fails),
        cmocka_unit_test(test_name_from_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
