/*
 * test_conf_exit.c - a bad value for every key of ferryd's config file
 * makes the real ferryd (FERRYD_PATH) exit 64 with one error line that
 * names FILE:LINE of the offending line: values parsed by the key table,
 * addresses (listen, metrics), combinations (fy_conf_check), and the files
 * keys name (TLS certificate, key and CAs, the token file).
 *
 * Each config puts comments and blank lines first, so a message that named
 * line 1 by accident would fail.  The table must cover every key that
 * docs/ferryd.conf documents (test_every_key_has_a_case): a new key needs
 * a bad value here too.  ferryd exits before it binds or creates anything,
 * so each run takes milliseconds; its stderr goes to a temp file.
 * @NOTPEM@ in a case stands for a readable file that is not PEM (made in
 * the temp directory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/tc.h"

#define LONG300                                                                            \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

/* key: the key the case is for; lines: the config after the two-line
 * preamble; line: the line of the file the error must name. */
struct bad {
    const char *key;
    const char *lines;
    unsigned line;
};

/* The preamble (a comment, and data in the test's directory in case a
 * config were taken) takes lines 1-2: the first line of `lines` is line 3. */
static const char preamble[] = "# a config with a mistake\ndata = %s/data\n";

static const struct bad bads[] = {
    {"listen", "listen = nonsense\n", 3},
    {"listen", "threads = 2\nlisten = 127.0.0.1:70000\n", 4},
    {"listen", "listen = 127.0.0.1\n", 3},
    {"metrics", "metrics = 127.0.0.1:99999\n", 3},
    {"metrics", "metrics = 127.0.0.1\n", 3},
    {"metrics-timeout", "metrics-timeout = soon\n", 3},
    {"min-free", "min-free = lots\n", 3},
    {"data", "data =\n", 3},
    {"auth", "auth = /nonexistent/ferry-tokens\n", 3},
    {"threads", "threads = many\n", 3},
    {"memory", "memory = 1K\n", 3},
    {"max-payload", "max-payload = 0\n", 3},
    {"fsync", "fsync = sometimes\n", 3},
    {"segment-bytes", "segment-bytes = 1\n", 3},
    {"segment-bytes", "max-payload = 8M\nchannel-budget = 64M\nmemory = 1G\n"
                      "segment-bytes = 64K\n", 6},
    {"retain-bytes", "retain-bytes = -1\n", 3},
    {"retain-age", "retain-age = 1d\n", 3},
    {"scrub-interval", "scrub-interval = 99999999999\n", 3},
    {"scrub-rate", "scrub-rate = 1\n", 3},
    {"window", "window = 1\n", 3},
    {"live-send", "live-send = pigeon\n", 3},
    {"write-mode", "write-mode = async\n", 3},
    {"channel-budget", "channel-budget = 1\n", 3},
    {"channel-budget", "channel-budget = 1M\n", 3}, /* < 2 frames of the default 1M */
    {"write-behind", "write-behind = 1\n", 3},
    {"write-behind", "memory = 64M\nwrite-behind = 1G\n", 4},
    {"sndbuf", "sndbuf = 1G\n", 3},
    {"idle-timeout", "idle-timeout = forever\n", 3},
    {"takeover-grace", "takeover-grace = 99999\n", 3},
    {"trace", "trace-events = 0\n\ntrace = /tmp/ferry.trace\n", 3},
    {"trace-max-bytes", "trace-max-bytes = lots\n", 3},
    {"trace-events", "trace-events = -5\n", 3},
    {"log-level", "log-level = loud\n", 3},
    {"channel-idle", "channel-idle = 5h\n", 3},
    {"max-channels", "max-channels = 0\n", 3},
    {"max-connections", "max-connections = 0\n", 3},
    {"max-connections-per-ip", "max-connections-per-ip = 0\n", 3},
    {"drain-timeout", "drain-timeout = 9999\n", 3},
    {"upstream", "upstream = nocolon\n", 3},
    {"upstream-token", "upstream-token = " LONG300 "\n", 3},
    {"upstream-linger", "upstream-linger = 2d\n", 3},
    {"tls-cert", "tls-cert = /nonexistent/relay.pem\ntls-key = @NOTPEM@\n", 3},
    {"tls-cert", "tls-cert = @NOTPEM@\ntls-key = @NOTPEM@\n", 3}, /* not PEM */
    {"tls-cert", "tls-cert = @NOTPEM@\n", 3}, /* without tls-key */
    {"tls-key", "tls-cert = @NOTPEM@\ntls-key = /nonexistent/relay.key\n", 4},
    {"tls-client-ca", "tls-client-ca = @NOTPEM@\n", 3}, /* without tls-cert */
    {"tls-client-ca", "tls-cert = @NOTPEM@\ntls-key = @NOTPEM@\n"
                      "tls-client-ca = /nonexistent/ca.pem\n", 5},
    {"upstream-ca", "upstream-ca = /nonexistent/ca.pem\n", 3},
    {"upstream-ca", "upstream-ca = @NOTPEM@\n", 3}, /* not PEM */
    {"upstream-tls-name", "upstream-tls-name = " LONG300 "\n", 3},
    {"cluster", "cluster = nonsense\n", 3},
    {"cluster", "cluster = http://127.0.0.1:2379,:0\n", 3},
    {"cluster", "cluster = http://127.0.0.1:2379\n", 3}, /* without node */
    {"cluster", "node = n1\nupstream = 127.0.0.1:7000\ncluster = 127.0.0.1:2379\n", 5},
    {"node", "node = bad/name\n", 3},
    {"advertise", "advertise = 127.0.0.1:0\n", 3},
    {"cluster-prefix", "cluster-prefix = ferry/\n", 3},
    {"cluster-ttl", "cluster-ttl = 1\n", 3},
    {"replicas", "replicas = 0\n", 3},
    {"acks", "acks = some\n", 3},
    {"acks", "acks = all\n", 3}, /* without cluster */
    {"replica-lag", "replica-lag = 10ms\n", 3},
    {"unknown keys", "threads = 1\nno-such-key = 1\n", 4},
    {"malformed lines", "threads 1\n", 3},
};
#define N_BADS (sizeof bads / sizeof bads[0])

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
}

/* Run ferryd --config conf; its exit code (-1: it started), stderr in out. */
static int run_ferryd(const char *dir, const char *conf, char *out, size_t cap)
{
    char err[128];
    int st = 0;
    snprintf(err, sizeof err, "%s/stderr", dir);
    const char *argv[] = {FERRYD_PATH, "--config", conf, NULL};
    pid_t pid = tc_spawn(argv, NULL, NULL, err, false);
    assert_true(pid > 0);
    if (tc_wait(pid, 10000, &st) < 0) { /* it started: killed, a failed case */
        slurp(err, out, cap);
        unlink(err);
        return -1;
    }
    slurp(err, out, cap);
    unlink(err);
    return tc_exit_code(st);
}

static void test_every_bad_value_exits_64_at_its_line(void **state)
{
    (void)state;
    char dir[64], conf[128], out[4096], want[192];
    assert_int_equal(tc_tmpdir(dir, sizeof dir, "test-conf-exit"), 0);
    snprintf(conf, sizeof conf, "%s/ferryd.conf", dir);
    char notpem[128];
    snprintf(notpem, sizeof notpem, "%s/notpem.txt", dir);
    FILE *np = fopen(notpem, "w");
    assert_non_null(np);
    fputs("not a PEM file\n", np);
    fclose(np);
    size_t failed = 0;
    for (size_t i = 0; i < N_BADS; i++) {
        FILE *f = fopen(conf, "w");
        assert_non_null(f);
        fprintf(f, preamble, dir);
        for (const char *p = bads[i].lines; *p; p++) {
            if (strncmp(p, "@NOTPEM@", 8) == 0) {
                fputs(notpem, f);
                p += 7;
            } else {
                fputc(*p, f);
            }
        }
        fclose(f);
        int code = run_ferryd(dir, conf, out, sizeof out);
        snprintf(want, sizeof want, "msg=\"%s:%u: ", conf, bads[i].line);
        bool ok = code == 64 && strstr(out, want) && strstr(out, "level=error") &&
                  strchr(out, '\n') == out + strlen(out) - 1; /* one line */
        if (!ok) {
            failed++;
            print_message("case %zu (%s): exit %d, want 64 and '%s...'; stderr: %s\n", i,
                          bads[i].key, code, want, out);
        }
    }
    assert_int_equal(tc_rmtree(dir), 0);
    assert_int_equal(failed, 0);
}

/* A flag's bad value has no file line, and still exits 64. */
static void test_bad_flag_exits_64(void **state)
{
    (void)state;
    char dir[64], out[4096], err[128];
    int st = 0;
    assert_int_equal(tc_tmpdir(dir, sizeof dir, "test-conf-exit"), 0);
    snprintf(err, sizeof err, "%s/stderr", dir);
    const char *argv[] = {FERRYD_PATH, "--metrics", "localhost", "--data", dir, NULL};
    pid_t pid = tc_spawn(argv, NULL, NULL, err, false);
    assert_true(pid > 0);
    assert_int_equal(tc_wait(pid, 20000, &st), 0);
    slurp(err, out, sizeof out);
    unlink(err);
    assert_int_equal(tc_rmtree(dir), 0);
    assert_int_equal(tc_exit_code(st), 64);
    assert_non_null(strstr(out, "msg=\"metrics: 'localhost' is not HOST:PORT"));
}

/* Every key docs/ferryd.conf documents (a "#key =" line) has a case above. */
static void test_every_key_has_a_case(void **state)
{
    (void)state;
    char line[8192];
    FILE *f = fopen(FERRY_SRC_DIR "/docs/ferryd.conf", "r");
    size_t keys = 0;
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        char key[64];
        if (sscanf(line, "#%63[a-z-] =", key) != 1 || !strstr(line, " ="))
            continue;
        bool found = false;
        for (size_t i = 0; i < N_BADS && !found; i++)
            found = strcmp(bads[i].key, key) == 0;
        if (!found)
            print_message("docs/ferryd.conf documents '%s': add a bad value for it\n", key);
        assert_true(found);
        keys++;
    }
    fclose(f);
    assert_true(keys >= 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_has_a_case),
        cmocka_unit_test(test_every_bad_value_exits_64_at_its_line),
        cmocka_unit_test(test_bad_flag_exits_64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
