/*
 * test_conf.c - ferryd's settings (src/relay/conf.c): every key of the key
 * table parsed to its field, every range and validation message, the config
 * file format (comments, blank lines, malformed lines, missing files), the
 * flags-over-file order ferryd applies, and the combination checks.
 *
 * Config files are written to a temp directory (tc_tmpdir) that each test
 * removes again; docs/ferryd.conf is found from this file's own path so the
 * documented defaults are checked against fy_conf_defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/klog.h"
#include "ferry/store.h"
#include "relay/conf.h"
#include "tmpfiles.h"

/* ---- fixture: a temporary directory for config files ------------------------ */

static int tmp_setup(void **state)
{
    return tmp_setup_tag(state, "conf");
}

/* ---- every key: a good value lands in its field ------------------------------ */

/* Every key conf.c accepts; test_docs_document_every_key checks the docs list them. */
static const char *const all_keys[] = {
    "listen", "metrics", "data", "auth", "threads", "memory", "max-payload", "fsync",
    "segment-bytes", "retain-bytes", "retain-age", "window", "channel-budget", "sndbuf",
    "write-behind",
    "trace", "trace-max-bytes", "trace-events", "log-level", "idle-timeout", "takeover-grace",
    "drain-timeout", "tls-cert", "tls-key", "tls-client-ca", "upstream-ca", "upstream-tls-name",
};
#define N_KEYS (sizeof all_keys / sizeof all_keys[0])

enum width { W_STR, W_U64, W_UINT, W_INT };

struct good {
    const char *key, *val;
    size_t off;
    enum width w;
    uint64_t want;    /* numbers */
    const char *str;  /* strings */
};

#define F(f) offsetof(fy_conf, f)
static const struct good goods[] = {
    {"listen", "[::1]:9000", F(listen), W_STR, 0, "[::1]:9000"},
    {"listen", ":0", F(listen), W_STR, 0, ":0"},
    {"metrics", "127.0.0.1:9100", F(metrics), W_STR, 0, "127.0.0.1:9100"},
    {"metrics", "", F(metrics), W_STR, 0, ""},
    {"data", "/var/lib/ferry", F(data), W_STR, 0, "/var/lib/ferry"},
    {"auth", "/etc/ferry/tokens", F(auth), W_STR, 0, "/etc/ferry/tokens"},
    {"trace", "/tmp/ferryd.trace", F(trace), W_STR, 0, "/tmp/ferryd.trace"},
    {"threads", "0", F(threads), W_UINT, 0, NULL},
    {"threads", "8", F(threads), W_UINT, 8, NULL},
    {"threads", "256", F(threads), W_UINT, 256, NULL},
    {"memory", "1G", F(memory), W_U64, 1ull << 30, NULL},
    {"memory", "512MiB", F(memory), W_U64, 512ull << 20, NULL},
    {"memory", "4194304", F(memory), W_U64, 4ull << 20, NULL},
    {"memory", "1T", F(memory), W_U64, 1ull << 40, NULL},
    {"max-payload", "4K", F(max_payload), W_U64, 4096, NULL},
    {"max-payload", "16777184", F(max_payload), W_U64, (16u << 20) - 32, NULL},
    {"segment-bytes", "64K", F(segment_bytes), W_U64, 65536, NULL},
    {"segment-bytes", "1g", F(segment_bytes), W_U64, 1ull << 30, NULL},
    {"retain-bytes", "0", F(retain_bytes), W_U64, 0, NULL},
    {"retain-bytes", "10G", F(retain_bytes), W_U64, 10ull << 30, NULL},
    {"retain-bytes", "18446744073709551615", F(retain_bytes), W_U64, UINT64_MAX, NULL},
    {"retain-age", "86400", F(retain_age), W_U64, 86400, NULL},
    {"retain-age", "18446744073709551615", F(retain_age), W_U64, UINT64_MAX, NULL},
    {"window", "64K", F(window), W_U64, 65536, NULL},
    {"window", "64G", F(window), W_U64, 64ull << 30, NULL},
    {"channel-budget", "1M", F(channel_budget), W_U64, 1u << 20, NULL},
    {"channel-budget", "1T", F(channel_budget), W_U64, 1ull << 40, NULL},
    {"write-behind", "1M", F(write_behind), W_U64, 1u << 20, NULL},
    {"write-behind", "1T", F(write_behind), W_U64, 1ull << 40, NULL},
    {"sndbuf", "0", F(sndbuf), W_U64, 0, NULL},
    {"sndbuf", "64M", F(sndbuf), W_U64, 64u << 20, NULL},
    {"trace-max-bytes", "0", F(trace_max_bytes), W_U64, 0, NULL},
    {"trace-max-bytes", "128M", F(trace_max_bytes), W_U64, 128u << 20, NULL},
    {"trace-events", "0", F(trace_events), W_U64, 0, NULL},
    {"trace-events", "16777216", F(trace_events), W_U64, 1u << 24, NULL},
    {"idle-timeout", "0", F(idle_timeout), W_U64, 0, NULL},
    {"idle-timeout", "86400", F(idle_timeout), W_U64, 86400, NULL},
    {"takeover-grace", "0", F(takeover_grace), W_U64, 0, NULL},
    {"takeover-grace", "3600", F(takeover_grace), W_U64, 3600, NULL},
    {"log-level", "debug", F(log_level), W_INT, FY_LOG_DEBUG, NULL},
    {"log-level", "info", F(log_level), W_INT, FY_LOG_INFO, NULL},
    {"log-level", "warn", F(log_level), W_INT, FY_LOG_WARN, NULL},
    {"log-level", "error", F(log_level), W_INT, FY_LOG_ERROR, NULL},
    {"drain-timeout", "0", F(drain_timeout), W_U64, 0, NULL},
    {"drain-timeout", "3600", F(drain_timeout), W_U64, 3600, NULL},
    {"tls-cert", "/etc/ferry/relay.pem", F(tls_cert), W_STR, 0, "/etc/ferry/relay.pem"},
    {"tls-key", "/etc/ferry/relay.key", F(tls_key), W_STR, 0, "/etc/ferry/relay.key"},
    {"tls-client-ca", "/etc/ferry/clients.pem", F(tls_client_ca), W_STR, 0,
     "/etc/ferry/clients.pem"},
    {"upstream-ca", "/etc/ferry/ca.pem", F(upstream_ca), W_STR, 0, "/etc/ferry/ca.pem"},
    {"upstream-tls-name", "origin.example", F(upstream_tls_name), W_STR, 0, "origin.example"},
};

static void check_good(const fy_conf *c, const struct good *g)
{
    const char *p = (const char *)c + g->off;
    uint64_t u64;
    unsigned u;
    int i;

    switch (g->w) {
    case W_STR: assert_string_equal(p, g->str); break;
    case W_U64: memcpy(&u64, p, sizeof u64); assert_int_equal(u64, g->want); break;
    case W_UINT: memcpy(&u, p, sizeof u); assert_int_equal(u, g->want); break;
    case W_INT: memcpy(&i, p, sizeof i); assert_int_equal(i, (int)g->want); break;
    }
}

static void test_set_every_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        fy_conf c;
        char err[256] = "";
        fy_conf_defaults(&c);
        assert_int_equal(fy_conf_set(&c, goods[i].key, goods[i].val, err, sizeof err), 0);
        assert_string_equal(err, "");
        check_good(&c, &goods[i]);
    }
    /* The table above covers every key but fsync (two fields: test_fsync). */
    for (size_t k = 0; k < N_KEYS; k++) {
        bool seen = strcmp(all_keys[k], "fsync") == 0;
        for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++)
            seen |= strcmp(goods[i].key, all_keys[k]) == 0;
        assert_true(seen);
    }
}

static void test_defaults(void **state)
{
    (void)state;
    fy_conf c;
    char err[256] = "";
    fy_conf_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:7420");
    assert_string_equal(c.data, "./ferry-data");
    assert_string_equal(c.auth, "");
    assert_string_equal(c.metrics, "");
    assert_string_equal(c.trace, "");
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.memory, 256u << 20);
    assert_int_equal(c.max_payload, 1u << 20);
    assert_int_equal(c.fsync_mode, FY_FSYNC_FILE_END);
    assert_int_equal(c.segment_bytes, 256u << 20);
    assert_int_equal(c.retain_bytes, 0);
    assert_int_equal(c.retain_age, 0);
    assert_int_equal(c.window, 8u << 20);
    assert_int_equal(c.channel_budget, 4u << 20);
    assert_int_equal(c.write_behind, 0);
    assert_int_equal(fy_conf_write_behind(&c), 64u << 20); /* memory 256M: 64M */
    assert_int_equal(c.sndbuf, 0);
    assert_int_equal(c.trace_max_bytes, 0);
    assert_int_equal(c.trace_events, 65536);
    assert_int_equal(c.log_level, FY_LOG_INFO);
    assert_int_equal(c.idle_timeout, 60);
    assert_int_equal(c.takeover_grace, 2);
    assert_int_equal(fy_conf_check(&c, err, sizeof err), 0);
}

static void test_underscore_alias(void **state)
{
    (void)state;
    fy_conf c;
    char err[256];
    fy_conf_defaults(&c);
    assert_int_equal(fy_conf_set(&c, "max_payload", "64K", err, sizeof err), 0);
    assert_int_equal(c.max_payload, 65536);
    assert_int_equal(fy_conf_set(&c, "log_level", "warn", err, sizeof err), 0);
    assert_int_equal(c.log_level, FY_LOG_WARN);
    assert_int_equal(fy_conf_set(&c, "trace_max_bytes", "1M", err, sizeof err), 0);
    assert_int_equal(c.trace_max_bytes, 1u << 20);
    for (size_t k = 0; k < N_KEYS; k++) {
        char alias[64];
        snprintf(alias, sizeof alias, "%s", all_keys[k]);
        for (char *p = alias; *p; p++)
            if (*p == '-')
                *p = '_';
        assert_true(fy_conf_known(all_keys[k]));
        assert_true(fy_conf_known(alias));
    }
}

static void test_fsync(void **state)
{
    (void)state;
    fy_conf c;
    char err[256];
    fy_conf_defaults(&c);
    assert_int_equal(fy_conf_set(&c, "fsync", "250", err, sizeof err), 0);
    assert_int_equal(c.fsync_mode, FY_FSYNC_INTERVAL);
    assert_int_equal(c.fsync_ms, 250);
    assert_int_equal(fy_conf_set(&c, "fsync", "never", err, sizeof err), 0);
    assert_int_equal(c.fsync_mode, FY_FSYNC_NEVER);
    assert_int_equal(fy_conf_set(&c, "fsync", "1", err, sizeof err), 0);
    assert_int_equal(c.fsync_mode, FY_FSYNC_INTERVAL);
    assert_int_equal(c.fsync_ms, 1);
    assert_int_equal(fy_conf_set(&c, "fsync", "file-end", err, sizeof err), 0);
    assert_int_equal(c.fsync_mode, FY_FSYNC_FILE_END);
    assert_int_equal(fy_conf_set(&c, "fsync", "3600000", err, sizeof err), 0);
    assert_int_equal(c.fsync_mode, FY_FSYNC_INTERVAL);
    assert_int_equal(c.fsync_ms, 3600000);

    /* Out of 1..3600000, suffixed, signed, spaced, or another word. */
    const char *bad[] = {"0", "3600001", "1K", "100ms", "-5", " 5", "", "always", "File-End", NULL};
    for (int i = 0; bad[i]; i++) {
        char want[256];
        fy_conf_defaults(&c);
        snprintf(want, sizeof want,
                 "fsync: '%s' is not never, file-end or a number of ms (1..3600000)", bad[i]);
        assert_int_equal(fy_conf_set(&c, "fsync", bad[i], err, sizeof err), -EINVAL);
        assert_string_equal(err, want);
        assert_int_equal(c.fsync_mode, FY_FSYNC_FILE_END);
        assert_int_equal(c.fsync_ms, 0);
    }
}

static void test_log_level_bad(void **state)
{
    (void)state;
    const char *bad[] = {"verbose", "INFO", "warning", "", "0", NULL};
    for (int i = 0; bad[i]; i++) {
        fy_conf c;
        char err[256], want[256];
        fy_conf_defaults(&c);
        snprintf(want, sizeof want, "log-level: '%s' is not debug, info, warn or error", bad[i]);
        assert_int_equal(fy_conf_set(&c, "log-level", bad[i], err, sizeof err), -EINVAL);
        assert_string_equal(err, want);
        assert_int_equal(c.log_level, FY_LOG_INFO);
    }
}

/* ---- range and parse errors ---------------------------------------------------- */

struct bad {
    const char *key, *val, *msg;
};

static const struct bad ranges[] = {
    {"threads", "257", "threads: 257 is out of range 0..256"},
    {"memory", "4194303", "memory: 4194303 is out of range 4194304..1099511627776"},
    {"memory", "1099511627777", "memory: 1099511627777 is out of range 4194304..1099511627776"},
    {"max-payload", "4095", "max-payload: 4095 is out of range 4096..16777184"},
    /* docs/ferryd.conf says "4K .. 16M": a frame's 32-byte header must fit too. */
    {"max-payload", "16M", "max-payload: 16777216 is out of range 4096..16777184"},
    {"segment-bytes", "65535", "segment-bytes: 65535 is out of range 65536..1099511627776"},
    {"segment-bytes", "2T", "segment-bytes: 2199023255552 is out of range 65536..1099511627776"},
    {"window", "65535", "window: 65535 is out of range 65536..68719476736"},
    {"window", "68719476737", "window: 68719476737 is out of range 65536..68719476736"},
    {"channel-budget", "1048575", "channel-budget: 1048575 is out of range 1048576..1099511627776"},
    {"channel-budget", "1025G", "channel-budget: 1100585369600 is out of range 1048576..1099511627776"},
    {"sndbuf", "67108865", "sndbuf: 67108865 is out of range 0..67108864"},
    {"trace-max-bytes", "1099511627777", "trace-max-bytes: 1099511627777 is out of range 0..1099511627776"},
    {"trace-events", "16777217", "trace-events: 16777217 is out of range 0..16777216"},
    {"idle-timeout", "86401", "idle-timeout: 86401 is out of range 0..86400"},
    {"takeover-grace", "3601", "takeover-grace: 3601 is out of range 0..3600"},
    /* The message names the key as it was given. */
    {"max_payload", "1K", "max_payload: 1024 is out of range 4096..16777184"},
};

static const struct bad parses[] = {
    {"threads", "four", "threads: 'four' is not a whole number"},
    {"threads", "4K", "threads: '4K' is not a whole number"}, /* counts take no suffix */
    {"threads", "-1", "threads: '-1' is not a whole number"},
    {"threads", "+4", "threads: '+4' is not a whole number"},
    {"threads", "", "threads: '' is not a whole number"},
    {"threads", " 4", "threads: ' 4' is not a whole number"},
    {"retain-age", "1d", "retain-age: '1d' is not a whole number"},
    {"retain-age", "18446744073709551616", "retain-age: '18446744073709551616' is not a whole number"},
    {"trace-events", "64K", "trace-events: '64K' is not a whole number"},
    {"memory", "lots", "memory: 'lots' is not a size (bytes, suffix K/M/G allowed)"},
    {"memory", "1.5G", "memory: '1.5G' is not a size (bytes, suffix K/M/G allowed)"},
    {"memory", "-1", "memory: '-1' is not a size (bytes, suffix K/M/G allowed)"},
    {"memory", "", "memory: '' is not a size (bytes, suffix K/M/G allowed)"},
    {"memory", "1 G", "memory: '1 G' is not a size (bytes, suffix K/M/G allowed)"},
    {"window", "8X", "window: '8X' is not a size (bytes, suffix K/M/G allowed)"},
    {"retain-bytes", "18446744073709551616",
     "retain-bytes: '18446744073709551616' is not a size (bytes, suffix K/M/G allowed)"},
    {"retain-bytes", "17179869184G",
     "retain-bytes: '17179869184G' is not a size (bytes, suffix K/M/G allowed)"},
};

static void check_bads(const struct bad *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fy_conf c, before;
        char err[256] = "";
        fy_conf_defaults(&c);
        before = c;
        assert_int_equal(fy_conf_set(&c, b[i].key, b[i].val, err, sizeof err), -EINVAL);
        assert_string_equal(err, b[i].msg);
        /* A rejected value leaves the settings as they were. */
        assert_memory_equal(&c, &before, sizeof c);
    }
}

static void test_range_errors(void **state)
{
    (void)state;
    check_bads(ranges, sizeof ranges / sizeof ranges[0]);
}

static void test_parse_errors(void **state)
{
    (void)state;
    check_bads(parses, sizeof parses / sizeof parses[0]);
}

static void test_string_too_long(void **state)
{
    (void)state;
    static char v[FY_CONF_PATH_MAX + 1];
    fy_conf c;
    char err[256];

    fy_conf_defaults(&c);
    memset(v, 'h', 255);
    v[255] = 0;
    /* 255 fits (listen's value must also be an address: upstream-token is any text) */
    assert_int_equal(fy_conf_set(&c, "upstream-token", v, err, sizeof err), 0);
    assert_int_equal(strlen(c.upstream_token), 255);
    v[255] = 'h';
    v[256] = 0;
    assert_int_equal(fy_conf_set(&c, "metrics", v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "metrics: value too long (max 255 bytes)");
    assert_int_equal(fy_conf_set(&c, "listen", v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "listen: value too long (max 255 bytes)");

    memset(v, 'd', FY_CONF_PATH_MAX);
    v[FY_CONF_PATH_MAX - 1] = 0;
    assert_int_equal(fy_conf_set(&c, "data", v, err, sizeof err), 0); /* 4095 fits */
    assert_int_equal(strlen(c.data), FY_CONF_PATH_MAX - 1);
    v[FY_CONF_PATH_MAX - 1] = 'd';
    v[FY_CONF_PATH_MAX] = 0;
    const char *paths[] = {"data", "auth", "trace"};
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s: value too long (max 4095 bytes)", paths[i]);
        assert_int_equal(fy_conf_set(&c, paths[i], v, err, sizeof err), -EINVAL);
        assert_string_equal(err, want);
    }
    assert_int_equal(strlen(c.data), FY_CONF_PATH_MAX - 1);
    assert_string_equal(c.auth, "");
}

static void test_unknown_key(void **state)
{
    (void)state;
    fy_conf c, before;
    char err[256];
    char longkey[100];

    fy_conf_defaults(&c);
    before = c;
    assert_int_equal(fy_conf_set(&c, "colour", "blue", err, sizeof err), -ENOENT);
    assert_string_equal(err, "unknown key 'colour'");
    assert_int_equal(fy_conf_set(&c, "Threads", "4", err, sizeof err), -ENOENT);
    assert_string_equal(err, "unknown key 'Threads'");
    assert_int_equal(fy_conf_set(&c, "", "4", err, sizeof err), -ENOENT);
    assert_string_equal(err, "unknown key ''");
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    assert_int_equal(fy_conf_set(&c, longkey, "4", err, sizeof err), -ENOENT);
    assert_memory_equal(&c, &before, sizeof c);

    /* "config" is ferryd's own flag, not a key of the table. */
    const char *unknown[] = {"config", "colour", "", "max--payload", "-threads", "threads ", longkey};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_false(fy_conf_known(unknown[i]));
}

static void test_err_buffer(void **state)
{
    (void)state;
    fy_conf c;
    char err[8];

    fy_conf_defaults(&c);
    /* No buffer at all: still the right code. */
    assert_int_equal(fy_conf_set(&c, "colour", "x", NULL, 0), -ENOENT);
    assert_int_equal(fy_conf_set(&c, "threads", "x", NULL, 0), -EINVAL);
    /* A short buffer gets a truncated, terminated message. */
    memset(err, 'Z', sizeof err);
    assert_int_equal(fy_conf_set(&c, "threads", "999", err, sizeof err), -EINVAL);
    assert_string_equal(err, "threads");
}

/* ---- config files --------------------------------------------------------------- */

static void test_load_every_kind(void **state)
{
    struct tmp *t = *state;
    const char *p = tmp_write(t, "all.conf",
        "listen = 0.0.0.0:7000\n"
        "metrics=127.0.0.1:9100\n"            /* no spaces */
        "\tdata\t=\t/srv/ferry  \n"           /* tabs, trailing blanks */
        "auth = /etc/ferry/tokens # tokens\n" /* trailing comment */
        "threads = 3\n"
        "memory = 2G\n"
        "max_payload = 256K\n"                /* underscore spelling */
        "fsync = 100\n"
        "segment-bytes = 64M\n"
        "retain-bytes = 1T\n"
        "retain-age = 3600\n"
        "window = 16M\n"
        "channel-budget = 32M\n"
        "sndbuf = 1M\n"
        "trace = /tmp/x=y.trace\n"            /* '=' inside a value */
        "trace-max-bytes = 8M\n"
        "trace-events = 1024\n"
        "log-level = debug\r\n");             /* CRLF */
    fy_conf c;
    char err[256] = "";

    fy_conf_defaults(&c);
    assert_int_equal(fy_conf_load(&c, p, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(c.listen, "0.0.0.0:7000");
    assert_string_equal(c.metrics, "127.0.0.1:9100");
    assert_string_equal(c.data, "/srv/ferry");
    assert_string_equal(c.auth, "/etc/ferry/tokens");
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.memory, 2ull << 30);
    assert_int_equal(c.max_payload, 256u << 10);
    assert_int_equal(c.fsync_mode, FY_FSYNC_INTERVAL);
    assert_int_equal(c.fsync_ms, 100);
    assert_int_equal(c.segment_bytes, 64u << 20);
    assert_int_equal(c.retain_bytes, 1ull << 40);
    assert_int_equal(c.retain_age, 3600);
    assert_int_equal(c.window, 16u << 20);
    assert_int_equal(c.channel_budget, 32u << 20);
    assert_int_equal(c.sndbuf, 1u << 20);
    assert_string_equal(c.trace, "/tmp/x=y.trace");
    assert_int_equal(c.trace_max_bytes, 8u << 20);
    assert_int_equal(c.trace_events, 1024);
    assert_int_equal(c.log_level, FY_LOG_DEBUG);
    assert_int_equal(fy_conf_check(&c, err, sizeof err), 0);
}

static void test_load_comments_and_blank_lines(void **state)
{
    struct tmp *t = *state;
    const char *only = tmp_write(t, "only.conf",
        "# nothing but comments\n"
        "\n"
        "   \t  \n"
        "    # indented comment with threads = 9\n"
        "#threads = 9\n"
        "\r\n");
    const char *empty = tmp_write(t, "empty.conf", "");
    const char *mixed = tmp_write(t, "mixed.conf",
        "\n# a comment\nthreads = 2 # not 3\n\n  # threads = 4\nwindow = 1M\n# end, no newline");
    fy_conf c, d;
    char err[256] = "";

    fy_conf_defaults(&d);
    fy_conf_defaults(&c);
    assert_int_equal(fy_conf_load(&c, only, err, sizeof err), 0);
    assert_memory_equal(&c, &d, sizeof c);
    assert_int_equal(fy_conf_load(&c, empty, err, sizeof err), 0);
    assert_memory_equal(&c, &d, sizeof c);
    assert_int_equal(fy_conf_load(&c, mixed, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.window, 1u << 20);
}

static void test_load_last_line_without_newline(void **state)
{
    struct tmp *t = *state;
    const char *p = tmp_write(t, "nonl.conf", "threads = 5\nmemory = 1G");
    fy_conf c;
    char err[256];

    fy_conf_defaults(&c);
    assert_int_equal(fy_conf_load(&c, p, err, sizeof err), 0);
    assert_int_equal(c.threads, 5);
    assert_int_equal(c.memory, 1ull << 30);
}

static void test_load_empty_value(void **state)
{
    struct tmp *t = *state;
    const char *ok = tmp_write(t, "ok.conf", "metrics = 1.2.3.4:5\nmetrics =\n");
    const char *bad = tmp_write(t, "bad.conf", "threads =   \n");
    fy_conf c;
    char err[256], want[256];

    fy_conf_defaults(&c);
    assert_int_equal(fy_conf_load(&c, ok, err, sizeof err), 0);
    assert_string_equal(c.metrics, ""); /* an empty value switches metrics off */
    assert_int_equal(fy_conf_load(&c, bad, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:1: threads: '' is not a whole number", bad);
    assert_string_equal(err, want);
}

/* Each malformed file: its error names the file and the first bad line, and
 * the lines after it are not applied. */
static void test_load_malformed(void **state)
{
    struct tmp *t = *state;
    static const struct {
        const char *text;
        unsigned line;
        const char *why;
    } cases[] = {
        {"threads 4\nmemory = 1G\n", 1, "expected 'key = value'"},
        {"# ok\n\nthreads = 2\nlisten\nmemory = 1G\n", 4, "expected 'key = value'"},
        {"[ferryd]\nmemory = 1G\n", 1, "expected 'key = value'"},
        {"= 4\nmemory = 1G\n", 1, "unknown key ''"},
        {"colour = blue\nmemory = 1G\n", 1, "unknown key 'colour'"},
        {"--threads = 4\nmemory = 1G\n", 1, "unknown key '--threads'"},
        {"threads = 2\nmax-payload = 2K\nmemory = 1G\n", 2,
         "max-payload: 2048 is out of range 4096..16777184"},
        {"window = 8M\n\n\nwindow = 1MB!\nmemory = 1G\n", 4,
         "window: '1MB!' is not a size (bytes, suffix K/M/G allowed)"},
        {"fsync = sometimes\nmemory = 1G\n", 1,
         "fsync: 'sometimes' is not never, file-end or a number of ms (1..3600000)"},
        {"log-level = loud\nmemory = 1G\n", 1, "log-level: 'loud' is not debug, info, warn or error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], err[512] = "", want[512];
        snprintf(name, sizeof name, "bad%zu.conf", i);
        const char *p = tmp_write(t, name, cases[i].text);
        fy_conf c;
        fy_conf_defaults(&c);
        assert_int_equal(fy_conf_load(&c, p, err, sizeof err), -EINVAL);
        snprintf(want, sizeof want, "%s:%u: %s", p, cases[i].line, cases[i].why);
        assert_string_equal(err, want);
        assert_int_equal(c.memory, 256u << 20); /* the line after the error was not read */
    }
}

/* A line longer than the reader's buffer is an error, not two lines: the
 * tail of a long comment must not be read as a setting. */
static void test_load_overlong_line(void **state)
{
    struct tmp *t = *state;
    /* '#' and 8190 more bytes fill the reader's buffer; the rest of the
     * comment looks like a setting. */
    char *text = malloc(8191 + 32);
    assert_non_null(text);
    text[0] = '#';
    memset(text + 1, 'c', 8190);
    snprintf(text + 8191, 32, " threads = 7\n");
    const char *p = tmp_write(t, "long.conf", text);
    free(text);

    fy_conf c;
    char err[512], want[512];
    fy_conf_defaults(&c);
    assert_int_equal(fy_conf_load(&c, p, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:1: line too long (max 8190 bytes)", p);
    assert_string_equal(err, want);
    assert_int_equal(c.threads, 0);

    /* 8190 bytes and a newline still fit; so does a last line of 8191 and no newline. */
    text = malloc(2 * 8192 + 32);
    assert_non_null(text);
    text[0] = '#';
    memset(text + 1, 'c', 8189);
    snprintf(text + 8190, 2 * 8192 + 32 - 8190, "\nthreads = 3\n#");
    memset(text + 8204, 'c', 8190);
    text[8204 + 8190] = 0;
    p = tmp_write(t, "max.conf", text);
    free(text);
    assert_int_equal(fy_conf_load(&c, p, err, sizeof err), 0);
    assert_int_equal(c.threads, 3);
}

static void test_load_not_found(void **state)
{
    struct tmp *t = *state;
    char p[128], err[256], want[256];
    fy_conf c, d;

    snprintf(p, sizeof p, "%s/missing.conf", t->dir);
    fy_conf_defaults(&c);
    d = c;
    assert_int_equal(fy_conf_load(&c, p, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
    assert_string_equal(err, want);
    assert_memory_equal(&c, &d, sizeof c);
}

/* A directory opens, but cannot be read: an error, not an empty config. */
static void test_load_directory(void **state)
{
    struct tmp *t = *state;
    char err[256] = "", want[256];
    fy_conf c;

    fy_conf_defaults(&c);
    assert_int_equal(fy_conf_load(&c, t->dir, err, sizeof err), -EISDIR);
    snprintf(want, sizeof want, "%s: cannot read: Is a directory", t->dir);
    assert_string_equal(err, want);
}

/* ferryd: defaults, then --config FILE, then the other flags (fy_conf_set).
 * Within a file, the last line for a key wins. */
static void test_flags_override_file(void **state)
{
    struct tmp *t = *state;
    const char *p = tmp_write(t, "prec.conf",
        "threads = 4\nmemory = 1G\nlog-level = warn\nthreads = 6\n");
    fy_conf c;
    char err[256];

    fy_conf_defaults(&c);
    assert_int_equal(fy_conf_load(&c, p, err, sizeof err), 0);
    assert_int_equal(c.threads, 6);
    assert_int_equal(fy_conf_set(&c, "threads", "8", err, sizeof err), 0);
    assert_int_equal(fy_conf_set(&c, "log_level", "error", err, sizeof err), 0);
    assert_int_equal(c.threads, 8);
    assert_int_equal(c.log_level, FY_LOG_ERROR);
    assert_int_equal(c.memory, 1ull << 30); /* not overridden: the file's value */
    assert_int_equal(c.window, 8u << 20);   /* in neither: the default */
}

/* ---- docs/ferryd.conf ----------------------------------------------------------- */

/* Path of docs/ferryd.conf, from this source file's path. */
static void docs_path(char *out, size_t cap)
{
    const char *me = __FILE__, *tail = strstr(me, "tests/relay/test_conf.c");
    assert_non_null(tail);
    snprintf(out, cap, "%.*sdocs/ferryd.conf", (int)(tail - me), me);
}

/* docs/ferryd.conf with each `#key = value` line uncommented, into dst. */
static const char *docs_uncommented(struct tmp *t, char *buf, size_t cap)
{
    char path[4096], line[1024];
    size_t o = 0;
    docs_path(path, sizeof path);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z') {
            size_t n = strlen(line + 1);
            assert_true(o + n < cap);
            memcpy(buf + o, line + 1, n + 1);
            o += n;
        }
    fclose(f);
    return tmp_write(t, "docs.conf", buf);
}

static void test_docs_as_shipped(void **state)
{
    (void)state;
    char path[4096], err[256] = "";
    fy_conf c, d;

    docs_path(path, sizeof path);
    fy_conf_defaults(&c);
    d = c;
    assert_int_equal(fy_conf_load(&c, path, err, sizeof err), 0);
    assert_memory_equal(&c, &d, sizeof c); /* every line is commented out */
}

/* The commented values in the docs are the defaults (auth's is an example;
 * trace-max-bytes 0 means 64M), and every key is documented. */
static void test_docs_document_every_key(void **state)
{
    struct tmp *t = *state;
    static char text[8192];
    char err[256] = "";
    fy_conf c, d;

    const char *p = docs_uncommented(t, text, sizeof text);
    memset(&c, 0xA5, sizeof c); /* every field the file sets changes */
    fy_conf_defaults(&d);
    assert_int_equal(fy_conf_load(&c, p, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(c.listen, d.listen);
    assert_string_equal(c.metrics, d.metrics);
    assert_string_equal(c.data, d.data);
    assert_string_equal(c.auth, "/etc/ferry/tokens");
    assert_string_equal(c.trace, d.trace);
    assert_int_equal(c.trace_max_bytes, 64u << 20);
    assert_int_equal(c.trace_events, d.trace_events);
    assert_int_equal(c.threads, d.threads);
    assert_int_equal(c.memory, d.memory);
    assert_int_equal(c.max_payload, d.max_payload);
    assert_int_equal(c.fsync_mode, d.fsync_mode);
    assert_int_equal(c.segment_bytes, d.segment_bytes);
    assert_int_equal(c.retain_bytes, d.retain_bytes);
    assert_int_equal(c.retain_age, d.retain_age);
    assert_int_equal(c.window, d.window);
    assert_int_equal(c.channel_budget, d.channel_budget);
    assert_int_equal(c.sndbuf, d.sndbuf);
    assert_int_equal(c.log_level, d.log_level);

    for (size_t k = 0; k < N_KEYS; k++) {
        char want[64];
        snprintf(want, sizeof want, "\n%s =", all_keys[k]);
        if (strncmp(text, want + 1, strlen(want + 1)) != 0 && !strstr(text, want))
            fail_msg("docs/ferryd.conf does not document '%s'", all_keys[k]);
    }
}

/* ---- fy_conf_check: the combination of values ------------------------------------ */

struct combo {
    const char *set[3][2]; /* key, value pairs applied to the defaults */
    const char *msg;       /* NULL: passes */
};

static const struct combo combos[] = {
    {{{"trace", "/tmp/t.trace"}, {"trace-events", "0"}}, "trace: recording to a file needs trace-events > 0"},
    {{{"trace", "/tmp/t.trace"}, {"trace-events", "1"}}, NULL},
    {{{"trace-events", "0"}}, NULL}, /* no ring and no file: fine */
    {{{"tls-cert", "/c.pem"}}, "tls-cert and tls-key go together: set both or neither"},
    {{{"tls-key", "/k.pem"}}, "tls-cert and tls-key go together: set both or neither"},
    {{{"tls-cert", "/c.pem"}, {"tls-key", "/k.pem"}}, NULL},
    {{{"tls-client-ca", "/ca.pem"}}, "tls-client-ca needs tls-cert and tls-key (client "
                                     "certificates are asked for in a TLS handshake)"},
    {{{"tls-cert", "/c.pem"}, {"tls-key", "/k.pem"}, {"tls-client-ca", "/ca.pem"}}, NULL},
    {{{"max-payload", "16777184"}},
     "channel-budget (4194304) must be at least 2 frames (33554432)"},
    /* 512K - 32 + a 32-byte header: two frames are exactly 1M. */
    {{{"channel-budget", "1M"}, {"max-payload", "524256"}}, NULL},
    {{{"write-behind", "300M"}}, "write-behind (314572800) must be at least 2 frames (2097216) "
                                 "and at most memory (268435456)"},
    {{{"write-behind", "256M"}}, NULL},
    {{{"write-behind", "1M"}}, "write-behind (1048576) must be at least 2 frames (2097216) "
                               "and at most memory (268435456)"},
    {{{"channel-budget", "1M"}, {"max-payload", "524257"}},
     "channel-budget (1048576) must be at least 2 frames (1048578)"},
    /* 4M + 8M + (1M + 32) = 13631520 */
    {{{"memory", "13631520"}}, NULL},
    {{{"memory", "13631519"}},
     "memory (13631519) must be at least channel-budget + window + one frame (13631520)"},
    {{{"memory", "4M"}}, "memory (4194304) must be at least channel-budget + window + one frame (13631520)"},
    {{{"segment-bytes", "2097216"}}, NULL},
    {{{"segment-bytes", "1M"}}, "segment-bytes (1048576) must hold at least 2 frames (2097216)"},
    {{{"data", ""}}, "data: empty directory name"},
};

static void test_check(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) {
        fy_conf c;
        char err[256] = "";
        fy_conf_defaults(&c);
        for (int j = 0; j < 3 && combos[i].set[j][0]; j++)
            assert_int_equal(fy_conf_set(&c, combos[i].set[j][0], combos[i].set[j][1], err, sizeof err), 0);
        if (!combos[i].msg) {
            assert_int_equal(fy_conf_check(&c, err, sizeof err), 0);
            continue;
        }
        assert_int_equal(fy_conf_check(&c, err, sizeof err), -EINVAL);
        assert_string_equal(err, combos[i].msg);
    }
}

/* ---- reloading: which keys, and what changed -------------------------------- */

struct seen {
    char keys[8][32], old_val[8][64], new_val[8][64];
    size_t n;
};

static void note(void *arg, const char *key, const char *o, const char *n)
{
    struct seen *s = arg;
    if (s->n < 8) {
        snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
        snprintf(s->old_val[s->n], sizeof s->old_val[0], "%s", o);
        snprintf(s->new_val[s->n], sizeof s->new_val[0], "%s", n);
    }
    s->n++;
}

static void test_reload_diff(void **state)
{
    (void)state;
    assert_true(fy_conf_reloadable("auth"));
    assert_true(fy_conf_reloadable("log-level"));
    assert_true(fy_conf_reloadable("log_level"));
    assert_true(fy_conf_reloadable("drain-timeout"));
    assert_false(fy_conf_reloadable("window"));
    assert_false(fy_conf_reloadable("listen"));
    assert_false(fy_conf_reloadable("no-such-key"));

    fy_conf a, b;
    char err[256], v[64];
    fy_conf_defaults(&a);
    fy_conf_defaults(&b);
    struct seen s = {0};
    assert_int_equal(fy_conf_diff(&a, &b, note, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(fy_conf_set(&b, "log-level", "debug", err, sizeof err), 0);
    assert_int_equal(fy_conf_set(&b, "fsync", "250", err, sizeof err), 0);
    assert_int_equal(fy_conf_set(&b, "threads", "3", err, sizeof err), 0);
    assert_int_equal(fy_conf_diff(&a, &b, note, &s), 3);
    assert_string_equal(s.keys[0], "threads"); /* the table's order */
    assert_string_equal(s.old_val[0], "0");
    assert_string_equal(s.new_val[0], "3");
    assert_string_equal(s.keys[1], "fsync");
    assert_string_equal(s.old_val[1], "file-end");
    assert_string_equal(s.new_val[1], "250");
    assert_string_equal(s.keys[2], "log-level");
    assert_string_equal(s.old_val[2], "info");
    assert_string_equal(s.new_val[2], "debug");
    fy_conf_format(&a, "drain-timeout", v, sizeof v);
    assert_string_equal(v, "5");
    fy_conf_format(&a, "no-such-key", v, sizeof v);
    assert_string_equal(v, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set_every_key),
        cmocka_unit_test(test_underscore_alias),
        cmocka_unit_test(test_fsync),
        cmocka_unit_test(test_log_level_bad),
        cmocka_unit_test(test_range_errors),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_string_too_long),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_err_buffer),
        cmocka_unit_test_setup_teardown(test_load_every_kind, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_comments_and_blank_lines, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_last_line_without_newline, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_empty_value, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_malformed, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_overlong_line, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_not_found, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_directory, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_flags_override_file, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_docs_as_shipped),
        cmocka_unit_test_setup_teardown(test_docs_document_every_key, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_reload_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
