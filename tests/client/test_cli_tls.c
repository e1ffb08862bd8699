/*
 * test_cli_tls.c - `ferry` and `ferryd` over TLS on 127.0.0.1, with keys and
 * certificates the test makes with the `openssl` command in its temp dir:
 * a CA, the relay's certificate (IP 127.0.0.1 and DNS localhost), a client
 * certificate, and an unrelated self-signed CA.
 *
 * This machine's kernel (and most CI kernels) have no kernel TLS, so these
 * runs take the user-space path: SSL_write of the live buffers and, for the
 * receiver that joins late, pread + SSL_write of the log (catch-up).  The
 * copies are compared by SHA-256; the failure cases check the exit code
 * (6, TLS), the client's message and the relay's one log line.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cliexit.h"
#include "harness.h"

#define T_MS 60000

/* Run `sh -c cmd` in dir, at most timeout_ms; stopped by PID after that.
 * Returns its exit status (or -1). */
static int sh(const char *dir, const char *cmd, int timeout_ms)
{
    size_t cap = strlen(dir) + strlen(cmd) + 32;
    char *line = malloc(cap), err[FY_CT_PATH + 16];
    assert_non_null(line);
    snprintf(line, cap, "cd '%s' || exit 127; %s", dir, cmd);
    snprintf(err, sizeof err, "%s/sh.err", dir);
    const char *argv[] = {"/bin/sh", "-c", line, NULL};
    pid_t pid = tc_spawn(argv, NULL, NULL, err, false);
    free(line);
    assert_true(pid >= 0);
    int st = 0;
    if (tc_wait(pid, timeout_ms, &st) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The PKI in t->dir: ca.pem/key, srv.pem/key (signed by ca), cli.pem/key
 * (signed by ca), other.pem (a stranger's self-signed CA). */
static void make_pki(fy_ct *t)
{
    static const char script[] =
        "set -e; K='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes';"
        "openssl req -x509 $K -keyout ca.key -out ca.pem -days 2 -subj /CN=ferry-test-ca;"
        "openssl req $K -keyout srv.key -out srv.csr -subj /CN=relay;"
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > srv.ext;"
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "  -extfile srv.ext -out srv.pem;"
        "openssl req $K -keyout cli.key -out cli.csr -subj /CN=client;"
        "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "  -out cli.pem;"
        "openssl req -x509 $K -keyout other.key -out other.pem -days 2 -subj /CN=stranger"
        " 2>/dev/null";
    int rc = sh(t->dir, script, 30000);
    if (rc != 0)
        fail_msg("openssl could not make the test certificates (rc=%d): install the Debian "
                 "package 'openssl' (.ci/deps)", rc);
}

static void start_tls_daemon(fy_ct *t, bool client_ca)
{
    char cert[FY_CT_PATH], key[FY_CT_PATH], ca[FY_CT_PATH];
    fy_ct_path(t, "srv.pem", cert);
    fy_ct_path(t, "srv.key", key);
    fy_ct_path(t, "ca.pem", ca);
    const char *plain[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    const char *with_ca[] = {"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca, NULL};
    fy_ct_daemon_start(t, client_ca ? with_ca : plain);
}

static int daemon_log_count(fy_ct *t, const char *needle)
{
    char path[FY_CT_PATH + 32], buf[1 << 16];
    int n = 0;
    snprintf(path, sizeof path, "%s/ferryd-%d.log", t->dir, t->logs - 1);
    for (const char *p = fy_ct_slurp(path, buf, sizeof buf); (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static long size_mib(void)
{
    return fy_ct_env_long("FERRY_TEST_TLS_MIB", FY_CT_SANITIZED ? 8 : 48);
}

/* One sender, a live receiver (started before it) and a late one that
 * catches up from the log after the sender finished: byte-identical. */
static void test_tls_live_and_catchup(void **state)
{
    fy_ct *t = *state;
    make_pki(t);
    start_tls_daemon(t, false);
    char src[FY_CT_PATH], ca[FY_CT_PATH], live[FY_CT_PATH], late[FY_CT_PATH], p[FY_CT_PATH * 2];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "f.bin", src), (uint64_t)size_mib() << 20, 11, sha);
    fy_ct_path(t, "ca.pem", ca);
    pid_t rx = fy_ct_recv(t, "live", "tls", fy_ct_path(t, "live", live),
                          (const char *[]){"--ca", ca, "--from-start", "--count", "1", NULL});
    pid_t tx = fy_ct_send(t, "send", "tls", (const char *[]){"--tls", "--ca", ca, src, NULL});
    fy_ct_expect_exit(t, tx, "send", T_MS, 0);
    fy_ct_expect_exit(t, rx, "live", T_MS, 0);
    /* by name this time: the certificate's DNS SAN, not the dialled IP */
    pid_t rx2 = fy_ct_recv(t, "late", "tls", fy_ct_path(t, "late", late),
                           (const char *[]){"--tls", "--ca", ca, "--tls-name", "localhost",
                                            "--from-start", "--count", "1", NULL});
    fy_ct_expect_exit(t, rx2, "late", T_MS, 0);
    snprintf(p, sizeof p, "%s/f.bin", live);
    fy_ct_assert_same(p, sha);
    snprintf(p, sizeof p, "%s/f.bin", late);
    fy_ct_assert_same(p, sha);
    fy_ct_daemon_stop(t);
    assert_int_equal(daemon_log_count(t, "TLS handshake failed"), 0);
    assert_int_equal(daemon_log_count(t, "msg=\"TLS on the listener\""), 1);
}

/* A plaintext client on a TLS listener: exit 6 with the relay's reason;
 * the relay logs one line. */
static void test_tls_plain_client_refused(void **state)
{
    fy_ct *t = *state;
    make_pki(t);
    start_tls_daemon(t, false);
    char src[FY_CT_PATH], p[FY_CT_PATH + 32];
    fy_ct_make_file(fy_ct_path(t, "f.bin", src), 1000, 3, NULL);
    pid_t tx = fy_ct_send(t, "plain", "tls", (const char *[]){"--no-retry", src, NULL});
    fy_ct_expect_exit(t, tx, "plain", T_MS, FY_CLI_EXIT_TLS);
    snprintf(p, sizeof p, "%s/plain.err", t->dir);
    assert_true(fy_ct_contains(p, "this relay requires TLS"));
    assert_true(fy_ct_contains(p, "FY_ETLSREQ"));
    fy_ct_daemon_stop(t);
    assert_int_equal(daemon_log_count(t, "plaintext client on a TLS listener"), 1);
}

/* The relay's certificate does not chain to the client's --ca; and one
 * that does, for a name it does not carry. */
static void test_tls_wrong_ca_or_name(void **state)
{
    fy_ct *t = *state;
    make_pki(t);
    start_tls_daemon(t, false);
    char src[FY_CT_PATH], other[FY_CT_PATH], ca[FY_CT_PATH], p[FY_CT_PATH + 32];
    fy_ct_make_file(fy_ct_path(t, "f.bin", src), 1000, 3, NULL);
    fy_ct_path(t, "other.pem", other);
    fy_ct_path(t, "ca.pem", ca);
    pid_t tx = fy_ct_send(t, "wrongca", "tls",
                          (const char *[]){"--no-retry", "--ca", other, src, NULL});
    fy_ct_expect_exit(t, tx, "wrongca", T_MS, FY_CLI_EXIT_TLS);
    snprintf(p, sizeof p, "%s/wrongca.err", t->dir);
    assert_true(fy_ct_contains(p, "certificate verify failed"));
    assert_true(fy_ct_contains(p, "--ca"));
    tx = fy_ct_send(t, "wrongname", "tls", (const char *[]){"--no-retry", "--ca", ca,
                                                            "--tls-name", "relay.example", src,
                                                            NULL});
    fy_ct_expect_exit(t, tx, "wrongname", T_MS, FY_CLI_EXIT_TLS);
    snprintf(p, sizeof p, "%s/wrongname.err", t->dir);
    assert_true(fy_ct_contains(p, "hostname mismatch"));
    fy_ct_daemon_stop(t);
    assert_int_equal(daemon_log_count(t, "TLS handshake failed"), 2);
}

/* --tls-client-ca: no client certificate, no service; with one, a transfer. */
static void test_tls_client_cert_required(void **state)
{
    fy_ct *t = *state;
    make_pki(t);
    start_tls_daemon(t, true);
    char src[FY_CT_PATH], ca[FY_CT_PATH], cert[FY_CT_PATH], key[FY_CT_PATH], out[FY_CT_PATH];
    char p[FY_CT_PATH * 2];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "f.bin", src), 100000, 5, sha);
    fy_ct_path(t, "ca.pem", ca);
    fy_ct_path(t, "cli.pem", cert);
    fy_ct_path(t, "cli.key", key);
    pid_t tx = fy_ct_send(t, "nocert", "tls", (const char *[]){"--no-retry", "--ca", ca, src,
                                                               NULL});
    fy_ct_expect_exit(t, tx, "nocert", T_MS, FY_CLI_EXIT_TLS);
    snprintf(p, sizeof p, "%s/nocert.err", t->dir);
    assert_true(fy_ct_contains(p, "certificate required"));
    assert_int_equal(daemon_log_count(t, "TLS handshake failed"), 1);
    tx = fy_ct_send(t, "cert", "tls", (const char *[]){"--ca", ca, "--tls-cert", cert,
                                                       "--tls-key", key, src, NULL});
    fy_ct_expect_exit(t, tx, "cert", T_MS, 0);
    pid_t rx = fy_ct_recv(t, "rx", "tls", fy_ct_path(t, "out", out),
                          (const char *[]){"--ca", ca, "--tls-cert", cert, "--tls-key", key,
                                           "--from-start", "--count", "1", NULL});
    fy_ct_expect_exit(t, rx, "rx", T_MS, 0);
    snprintf(p, sizeof p, "%s/f.bin", out);
    fy_ct_assert_same(p, sha);
    fy_ct_daemon_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tls_live_and_catchup, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_tls_plain_client_refused, fy_ct_setup,
                                        fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_tls_wrong_ca_or_name, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_tls_client_cert_required, fy_ct_setup,
                                        fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
