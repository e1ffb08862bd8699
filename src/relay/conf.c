/*
 * conf.c - ferryd's settings (fy_conf): one table of keys shared by the
 * config file and the command line, with strict parsing and messages that
 * name the key and what is wrong with its value.
 */
#include "relay/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/buf.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sock.h"
#include "ferry/store.h"
#include "ferry/tls.h"
#include "ferry/units.h"

/* ---- values ---------------------------------------------------------------- */


static void say(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && cap)
        vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

void fy_conf_defaults(fy_conf *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:7420");
    snprintf(c->data, sizeof c->data, "./ferry-data");
    c->memory = 256ull << 20;
    c->max_payload = FY_PAYLOAD_MAX_DEFAULT;
    c->fsync_mode = FY_FSYNC_FILE_END;
    c->segment_bytes = 256ull << 20;
    c->window = 8ull << 20;
    c->live_send = FY_LIVE_SEND_BUFFERS;
    c->write_mode = FY_WRITE_BUFFERED;
    c->channel_budget = 4ull << 20;
    c->log_level = FY_LOG_INFO;
    c->trace_events = 65536;
    c->scrub_interval = 86400;
    c->scrub_rate = 64ull << 20;
    c->channel_idle_ms = 30000;
    c->max_channels = 1024;
    c->max_connections = 4096;
    c->max_conns_per_ip = 256;
    c->idle_timeout = 60;
    c->takeover_grace = 2;
    c->drain_timeout = 5;
    c->upstream_linger_ms = 60000;
    c->metrics_timeout_ms = 5000;
    c->min_free = 64ull << 20;
    snprintf(c->cluster_prefix, sizeof c->cluster_prefix, "/ferry");
    c->cluster_ttl = 5;
    c->replicas = 2;
    c->acks = FY_ACKS_UNSET;
}


/* "30" (seconds), "30s", "500ms", "2m" -> milliseconds.  0 or -EINVAL. */
static int parse_ms(const char *val, uint64_t *out)
{
    size_t nd = strspn(val, "0123456789");
    uint64_t mul;

    if (nd == 0 || nd > 9) /* at most 999 999 999 of any unit: no overflow */
        return -EINVAL;
    const char *u = val + nd;
    if (strcmp(u, "ms") == 0)
        mul = 1;
    else if (strcmp(u, "") == 0 || strcmp(u, "s") == 0)
        mul = 1000;
    else if (strcmp(u, "m") == 0)
        mul = 60000;
    else
        return -EINVAL;
    *out = strtoull(val, NULL, 10) * mul;
    return 0;
}

/* ---- the key table ---------------------------------------------------------- */

enum kind { K_STR, K_PATH, K_SIZE, K_UINT, K_FSYNC, K_LEVEL, K_MS, K_ENUM };

struct key {
    const char *name;
    enum kind kind;
    size_t off;
    uint64_t min, max;
    const char *const *names; /* K_ENUM: the value's names, indexed by the enum; NULL-ended */
};

/* K_ENUM fields are stored as an int. */
_Static_assert(sizeof(enum fy_live_send) == sizeof(int), "live-send is an int");
_Static_assert(sizeof(enum fy_write_mode) == sizeof(int), "write-mode is an int");
_Static_assert(sizeof(enum fy_acks) == sizeof(int), "acks is an int");

/* In the order the error message lists them ("is not file or buffers"). */
static const char *const live_send_names[] = {
    [FY_LIVE_SEND_FILE] = "file", [FY_LIVE_SEND_BUFFERS] = "buffers", NULL};
static const char *const write_mode_names[] = {
    [FY_WRITE_DIRECT] = "direct", [FY_WRITE_BUFFERED] = "buffered", NULL};
static const char *const acks_names[] = {[FY_ACKS_ALL] = "all", [FY_ACKS_LEADER] = "leader", NULL};

#define OFF(f) offsetof(fy_conf, f)
static const struct key keys[] = {
    {"listen", K_STR, OFF(listen), 0, 0, NULL},
    {"metrics", K_STR, OFF(metrics), 0, 0, NULL},
    {"metrics-timeout", K_MS, OFF(metrics_timeout_ms), 500, 300000, NULL},
    {"min-free", K_SIZE, OFF(min_free), 0, 1ull << 50, NULL},
    {"data", K_PATH, OFF(data), 0, 0, NULL},
    {"auth", K_PATH, OFF(auth), 0, 0, NULL},
    {"threads", K_UINT, OFF(threads), 0, 256, NULL},
    {"memory", K_SIZE, OFF(memory), 4ull << 20, 1ull << 40, NULL},
    /* A frame (payload + header) must fit the pool's largest buffer. */
    {"max-payload", K_SIZE, OFF(max_payload), 4096, FY_BUF_MAX_CAP - FY_FRAME_HDR_SIZE, NULL},
    {"fsync", K_FSYNC, 0, 0, 0, NULL},
    {"segment-bytes", K_SIZE, OFF(segment_bytes), 1ull << 16, 1ull << 40, NULL},
    {"retain-bytes", K_SIZE, OFF(retain_bytes), 0, UINT64_MAX, NULL},
    {"retain-age", K_UINT, OFF(retain_age), 0, UINT64_MAX, NULL},
    {"scrub-interval", K_UINT, OFF(scrub_interval), 0, 365ull * 86400, NULL},
    {"scrub-rate", K_SIZE, OFF(scrub_rate), 1ull << 20, 1ull << 40, NULL},
    {"window", K_SIZE, OFF(window), 64ull << 10, 1ull << 36, NULL},
    {"live-send", K_ENUM, OFF(live_send), 0, 0, live_send_names},
    {"write-mode", K_ENUM, OFF(write_mode), 0, 0, write_mode_names},
    {"channel-budget", K_SIZE, OFF(channel_budget), 1ull << 20, 1ull << 40, NULL},
    {"write-behind", K_SIZE, OFF(write_behind), 1ull << 20, 1ull << 40, NULL},
    {"sndbuf", K_SIZE, OFF(sndbuf), 0, 64ull << 20, NULL},
    {"idle-timeout", K_UINT, OFF(idle_timeout), 0, 86400, NULL},
    {"takeover-grace", K_UINT, OFF(takeover_grace), 0, 3600, NULL},
    {"trace", K_PATH, OFF(trace), 0, 0, NULL},
    {"trace-max-bytes", K_SIZE, OFF(trace_max_bytes), 0, 1ull << 40, NULL},
    {"trace-events", K_UINT, OFF(trace_events), 0, 1ull << 24, NULL},
    {"log-level", K_LEVEL, OFF(log_level), 0, 0, NULL},
    /* A duration: seconds, or with a suffix ms / s / m; stored in ms. */
    {"channel-idle", K_MS, OFF(channel_idle_ms), 10, 86400000, NULL},
    {"max-channels", K_UINT, OFF(max_channels), 1, 1u << 20, NULL},
    {"max-connections", K_UINT, OFF(max_connections), 1, 1u << 24, NULL},
    {"max-connections-per-ip", K_UINT, OFF(max_conns_per_ip), 1, 1u << 24, NULL},
    {"drain-timeout", K_UINT, OFF(drain_timeout), 0, 3600, NULL},
    {"upstream", K_STR, OFF(upstream), 0, 0, NULL},
    {"upstream-token", K_STR, OFF(upstream_token), 0, 0, NULL},
    {"upstream-linger", K_MS, OFF(upstream_linger_ms), 0, 86400000, NULL},
    {"tls-cert", K_PATH, OFF(tls_cert), 0, 0, NULL},
    {"tls-key", K_PATH, OFF(tls_key), 0, 0, NULL},
    {"tls-client-ca", K_PATH, OFF(tls_client_ca), 0, 0, NULL},
    {"upstream-ca", K_PATH, OFF(upstream_ca), 0, 0, NULL},
    {"upstream-tls-name", K_STR, OFF(upstream_tls_name), 0, 0, NULL},
    {"cluster", K_STR, OFF(cluster), 0, 0, NULL},
    {"node", K_STR, OFF(node), 0, 0, NULL},
    {"advertise", K_STR, OFF(advertise), 0, 0, NULL},
    {"cluster-prefix", K_STR, OFF(cluster_prefix), 0, 0, NULL},
    {"cluster-ttl", K_UINT, OFF(cluster_ttl), 2, 3600, NULL},
    {"replicas", K_UINT, OFF(replicas), 1, 16, NULL},
    {"acks", K_ENUM, OFF(acks), 0, 0, acks_names},
    {"replica-lag", K_MS, OFF(replica_lag_ms), 100, 3600000, NULL},
};

_Static_assert(sizeof keys / sizeof keys[0] <= FY_CONF_KEYS_MAX, "fy_conf.line holds every key");

static const struct key *find(const char *key)
{
    char k[64];
    size_t n = strlen(key);

    if (n >= sizeof k)
        return NULL;
    for (size_t i = 0; i <= n; i++) /* "max_payload" is accepted for "max-payload" */
        k[i] = key[i] == '_' ? '-' : key[i];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, k) == 0)
            return &keys[i];
    return NULL;
}

int fy_conf_known(const char *key)
{
    return find(key) != NULL;
}

/* A K_ENUM value: its index in k->names.  "KEY: 'VAL' is not A or B". */
static int set_enum(const struct key *k, const char *val, int *out, char *err, size_t errcap)
{
    char names[128] = "";
    size_t n = 0, len = 0;

    for (; k->names[n]; n++)
        if (strcmp(val, k->names[n]) == 0) {
            *out = (int)n;
            return 0;
        }
    for (size_t i = 0; i < n && len < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s",
                                i == 0 ? "" : i + 1 == n ? " or " : ", ", k->names[i]);
    say(err, errcap, "%s: '%s' is not %s", k->name, val, names);
    return -EINVAL;
}

/* The cluster keys' forms (docs/cluster.md): each etcd endpoint
 * [http://]HOST:PORT, a node name of 1-63 bytes of [A-Za-z0-9._-], an
 * advertised HOST:PORT with a port, a prefix "/..." without a trailing
 * '/'.  0, or -EINVAL with the reason. */
static int cluster_form(const struct key *k, const char *key, const char *val, char *err,
                        size_t errcap)
{
    char host[256], item[256];
    uint16_t port = 0;
    size_t n = strlen(val);
    bool ok = true;

    if (k->off == OFF(cluster)) {
        for (const char *p = val; ok && *p; p += *p == ',') {
            size_t len = strcspn(p, ",");
            snprintf(item, sizeof item, "%.*s", (int)len, p);
            const char *hp = strncmp(item, "http://", 7) == 0 ? item + 7 : item;
            ok = fy_addr_split(hp, NULL, host, sizeof host, &port) == 0 && host[0] && port;
            p += len;
        }
        if (!ok)
            say(err, errcap, "%s: '%s' is not a list of etcd endpoints "
                "[http://]HOST:PORT[,...]", key, val);
    } else if (k->off == OFF(node)) {
        ok = n == 0 || (n <= 63 && strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                               "0123456789._-") == n);
        if (!ok)
            say(err, errcap, "%s: '%s' is not a node name (1-63 of A-Z a-z 0-9 . _ -)", key, val);
    } else if (k->off == OFF(advertise)) {
        ok = n == 0 || (fy_addr_split(val, NULL, host, sizeof host, &port) == 0 && host[0] && port);
        if (!ok)
            say(err, errcap, "%s: '%s' is not HOST:PORT (a port other than 0), or empty for "
                "the listening address", key, val);
    } else if (k->off == OFF(cluster_prefix)) {
        ok = n >= 2 && n < 128 && val[0] == '/' && val[n - 1] != '/' && !strpbrk(val, " \t");
        if (!ok)
            say(err, errcap, "%s: '%s' is not a key prefix such as /ferry (1-127 bytes, starting "
                "with '/', not ending with one)", key, val);
    }
    return ok ? 0 : -EINVAL;
}

/* listen, metrics, upstream, upstream-token, upstream-tls-name: 256 bytes;
 * paths FY_CONF_PATH_MAX.  Messages name the key as the caller spelt it
 * ("max_payload").  The two listening addresses are checked here for their
 * form (fy_addr_split: no lookup), so a malformed one is a settings error
 * with its file and line; a host name that does not resolve fails the
 * bind at start (exit 1, "cannot resolve"), as DNS may come back. */
static int set_text(fy_conf *c, const struct key *k, const char *key, const char *val,
                    char *err, size_t errcap)
{
    size_t cap = k->kind == K_STR ? sizeof c->listen : FY_CONF_PATH_MAX;
    bool addr = k->off == OFF(listen) || k->off == OFF(metrics);
    char host[256];
    uint16_t port;

    if (strlen(val) >= cap) {
        say(err, errcap, "%s: value too long (max %zu bytes)", key, cap - 1);
        return -EINVAL;
    }
    if (addr && (val[0] || k->off == OFF(listen)) &&
        fy_addr_split(val, "127.0.0.1", host, sizeof host, &port) < 0) {
        say(err, errcap, "%s: '%s' is not HOST:PORT, [IPv6]:PORT or :PORT (port 0-65535)%s",
            key, val, k->off == OFF(metrics) ? ", or empty for off" : "");
        return -EINVAL;
    }
    if (cluster_form(k, key, val, err, errcap) < 0)
        return -EINVAL;
    memcpy((char *)c + k->off, val, strlen(val) + 1);
    return 0;
}

/* "never", "file-end" or a whole number of ms (an interval). */
static int set_fsync(fy_conf *c, const char *val, char *err, size_t errcap)
{
    uint64_t v = 0;

    if (strcmp(val, "never") == 0) {
        c->fsync_mode = FY_FSYNC_NEVER;
    } else if (strcmp(val, "file-end") == 0) {
        c->fsync_mode = FY_FSYNC_FILE_END;
    } else if (fy_units_bytes(val, &v) == 0 && v >= 1 && v <= 3600000 &&
               strspn(val, "0123456789") == strlen(val)) {
        c->fsync_mode = FY_FSYNC_INTERVAL;
        c->fsync_ms = (uint32_t)v;
    } else {
        say(err, errcap, "fsync: '%s' is not never, file-end or a number of ms (1..3600000)", val);
        return -EINVAL;
    }
    return 0;
}

static int set_level(fy_conf *c, const char *val, char *err, size_t errcap)
{
    int rc = fy_klog_level_parse(val);

    if (rc < 0) {
        say(err, errcap, "log-level: '%s' is not debug, info, warn or error", val);
        return -EINVAL;
    }
    c->log_level = rc;
    return 0;
}

static int set_ms(fy_conf *c, const struct key *k, const char *key, const char *val,
                  char *err, size_t errcap)
{
    uint64_t v = 0;

    if (parse_ms(val, &v) < 0) {
        say(err, errcap, "%s: '%s' is not a duration (seconds, or a number with ms, s or m)",
            key, val);
        return -EINVAL;
    }
    if (v < k->min || v > k->max) {
        say(err, errcap, "%s: %llu ms is out of range %llu..%llu ms", key,
            (unsigned long long)v, (unsigned long long)k->min, (unsigned long long)k->max);
        return -EINVAL;
    }
    memcpy((char *)c + k->off, &v, sizeof v);
    return 0;
}

/* A size (suffix K/M/G) or a whole number, within [min, max]. */
static int set_number(fy_conf *c, const struct key *k, const char *key, const char *val,
                      char *err, size_t errcap)
{
    uint64_t v = 0;
    int rc = k->kind == K_SIZE ? fy_units_bytes(val, &v) : -EINVAL;

    if (k->kind == K_UINT && val[0] && strspn(val, "0123456789") == strlen(val)) {
        errno = 0;
        v = strtoull(val, NULL, 10);
        rc = errno ? -ERANGE : 0;
    }
    if (rc < 0) {
        say(err, errcap, "%s: '%s' is not a %s", key, val,
            k->kind == K_SIZE ? "size (bytes, suffix K/M/G allowed)" : "whole number");
        return -EINVAL;
    }
    if (v < k->min || v > k->max) {
        say(err, errcap, "%s: %llu is out of range %llu..%llu", key, (unsigned long long)v,
            (unsigned long long)k->min, (unsigned long long)k->max);
        return -EINVAL;
    }
    if (k->off == OFF(threads))
        c->threads = (unsigned)v;
    else
        memcpy((char *)c + k->off, &v, sizeof v);
    return 0;
}

static int set_value(fy_conf *c, const struct key *k, const char *key, const char *val,
                     char *err, size_t errcap)
{
    switch (k->kind) {
    case K_STR:
    case K_PATH:
        return set_text(c, k, key, val, err, errcap);
    case K_FSYNC:
        return set_fsync(c, val, err, errcap);
    case K_LEVEL:
        return set_level(c, val, err, errcap);
    case K_MS:
        return set_ms(c, k, key, val, err, errcap);
    case K_SIZE:
    case K_UINT:
        return set_number(c, k, key, val, err, errcap);
    case K_ENUM:
        return set_enum(k, val, (int *)(void *)((char *)c + k->off), err, errcap);
    }
    return -EINVAL;
}

int fy_conf_set(fy_conf *c, const char *key, const char *val, char *err, size_t errcap)
{
    const struct key *k = find(key);
    int rc;

    if (!k) {
        say(err, errcap, "unknown key '%s'", key);
        return -ENOENT;
    }
    if ((rc = set_value(c, k, key, val, err, errcap)) == 0)
        c->line[k - keys] = 0; /* a flag (fy_conf_load sets its own line after) */
    return rc;
}

void fy_conf_where(const fy_conf *c, const char *key, char *buf, size_t cap)
{
    const struct key *k = find(key);

    if (k && c->line[k - keys] && c->file[0])
        snprintf(buf, cap, "%s:%u: ", c->file, (unsigned)c->line[k - keys]);
    else if (cap)
        buf[0] = 0;
}

/* ---- reloading ----------------------------------------------------------------- */

/* What ferryd applies on SIGHUP.  Only values read at the moment they are
 * used, with no state built from them: the token table (looked up at each
 * hello), the log threshold (at each line), the drain timeout (read at
 * shutdown).  scrub-* and retain-* look reloadable but are not: a channel
 * arms its scrub and retention timers from them when it opens, so a change
 * from or to 0 would need the channels' actors told. */
static const char *const reloadable[] = {"auth", "log-level", "drain-timeout"};

const char *fy_conf_token_file(const fy_conf *c)
{
    return c->auth[0] && strcmp(c->auth, "off") != 0 ? c->auth : NULL;
}

bool fy_conf_reloadable(const char *key)
{
    const struct key *k = find(key);
    for (size_t i = 0; k && i < sizeof reloadable / sizeof *reloadable; i++)
        if (strcmp(k->name, reloadable[i]) == 0)
            return true;
    return false;
}

static void format_key(const fy_conf *c, const struct key *k, char *buf, size_t cap)
{
    const char *p = (const char *)c + k->off;
    uint64_t v;

    switch (k->kind) {
    case K_STR:
    case K_PATH:
        snprintf(buf, cap, "%s", p);
        return;
    case K_FSYNC:
        if (c->fsync_mode == FY_FSYNC_INTERVAL)
            snprintf(buf, cap, "%u", (unsigned)c->fsync_ms);
        else
            snprintf(buf, cap, "%s", c->fsync_mode == FY_FSYNC_NEVER ? "never" : "file-end");
        return;
    case K_LEVEL:
        snprintf(buf, cap, "%s", fy_klog_level_name((enum fy_klog_level)c->log_level));
        return;
    case K_ENUM: {
        int e;
        memcpy(&e, p, sizeof e);
        if (k->off == OFF(acks)) /* the default, shown as what it means */
            e = fy_conf_acks_all(c) ? FY_ACKS_ALL : FY_ACKS_LEADER;
        snprintf(buf, cap, "%s", k->names[e]);
        return;
    }
    case K_MS:
        memcpy(&v, p, sizeof v);
        if (k->off == OFF(replica_lag_ms))
            v = fy_conf_replica_lag_ms(c);
        snprintf(buf, cap, "%llums", (unsigned long long)v);
        return;
    case K_SIZE:
    case K_UINT:
        if (k->off == OFF(threads))
            v = c->threads;
        else
            memcpy(&v, p, sizeof v);
        snprintf(buf, cap, "%llu", (unsigned long long)v);
        return;
    }
    snprintf(buf, cap, "?");
}

void fy_conf_format(const fy_conf *c, const char *key, char *buf, size_t cap)
{
    const struct key *k = find(key);
    if (!k)
        snprintf(buf, cap, "%s", "");
    else
        format_key(c, k, buf, cap);
}

size_t fy_conf_diff(const fy_conf *a, const fy_conf *b, fy_conf_diff_fn fn, void *arg)
{
    char va[FY_CONF_PATH_MAX], vb[FY_CONF_PATH_MAX];
    size_t n = 0;

    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        format_key(a, &keys[i], va, sizeof va);
        format_key(b, &keys[i], vb, sizeof vb);
        if (strcmp(va, vb) == 0)
            continue;
        n++;
        if (fn)
            fn(arg, keys[i].name, va, vb);
    }
    return n;
}

/* ---- files -------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int fy_conf_load(fy_conf *c, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "re");
    char line[8192], why[256];
    unsigned lineno = 0;
    int rc = 0;

    if (!f) {
        rc = -errno;
        say(err, errcap, "%s: cannot open: %s", path, strerror(-rc));
        return rc;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        /* A longer line would come back in pieces, its tail read as a line. */
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && getc(f) != EOF) {
            say(err, errcap, "%s:%u: line too long (max %zu bytes)", path, lineno, sizeof line - 2);
            rc = -EINVAL;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            say(err, errcap, "%s:%u: expected 'key = value'", path, lineno);
            rc = -EINVAL;
            break;
        }
        *eq = 0;
        char *k = trim(s), *v = trim(eq + 1);
        if (fy_conf_set(c, k, v, why, sizeof why) < 0) {
            say(err, errcap, "%s:%u: %s", path, lineno, why);
            rc = -EINVAL;
            break;
        }
        c->line[find(k) - keys] = lineno;
        snprintf(c->file, sizeof c->file, "%s", path); /* only once it set something */
    }
    if (rc == 0 && ferror(f)) { /* e.g. EISDIR: not an empty file */
        rc = errno ? -errno : -EIO;
        say(err, errcap, "%s: cannot read: %s", path, strerror(-rc));
    }
    fclose(f);
    return rc;
}

uint64_t fy_conf_write_behind(const fy_conf *c)
{
    uint64_t d = c->memory / 4 < (64ull << 20) ? c->memory / 4 : 64ull << 20;
    uint64_t two = 2 * (c->max_payload + FY_FRAME_HDR_SIZE);

    if (c->write_behind)
        return c->write_behind;
    return d > two ? d : two; /* a small memory still lets two frames go unsynced */
}

/* A combination error: the message, after "FILE:LINE: " of the first key
 * in keys (space-separated) that the config file set, so the line to edit
 * is named whichever of them it was.  Returns -EINVAL. */
static int refuse(const fy_conf *c, const char *keys_named, char *err, size_t errcap,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int refuse(const fy_conf *c, const char *keys_named, char *err, size_t errcap,
                  const char *fmt, ...)
{
    char where[FY_CONF_PATH_MAX + 16] = "", key[64], msg[512];
    const char *p = keys_named;
    va_list ap;

    while (*p && !where[0]) {
        size_t n = strcspn(p, " ");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        fy_conf_where(c, key, where, sizeof where);
        p += n + (p[n] == ' ');
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say(err, errcap, "%s%s", where, msg);
    return -EINVAL;
}

int fy_conf_check(const fy_conf *c, char *err, size_t errcap)
{
    if (c->trace[0] && c->trace_events == 0) {
        return refuse(c, "trace-events trace", err, errcap,
                      "trace: recording to a file needs trace-events > 0");
    }
    /* A frame must fit a pooled buffer, and the budgets must hold a frame or
     * a sender could never make progress. */
    uint64_t frame = c->max_payload + FY_FRAME_HDR_SIZE;
    if (c->channel_budget < 2 * frame) {
        return refuse(c, "channel-budget max-payload", err, errcap,
                      "channel-budget (%llu) must be at least 2 frames (%llu)",
                      (unsigned long long)c->channel_budget, (unsigned long long)(2 * frame));
    }
    /* One channel must be able to run with a stuck receiver holding a full
     * window, or its sender would wait for that receiver. */
    if (c->memory < c->channel_budget + c->window + frame) {
        return refuse(c, "memory channel-budget window max-payload", err, errcap,
                      "memory (%llu) must be at least channel-budget + window + one frame "
                      "(%llu)", (unsigned long long)c->memory,
                      (unsigned long long)(c->channel_budget + c->window + frame));
    }
    /* The log may trail the live edge by write-behind bytes of dirty page
     * cache per channel: like the pool, it must fit in memory, and hold
     * two frames or every frame would wait for a sync. */
    if (c->write_behind && (c->write_behind > c->memory || c->write_behind < 2 * frame)) {
        return refuse(c, "write-behind memory max-payload", err, errcap,
                      "write-behind (%llu) must be at least 2 frames (%llu) and at most "
                      "memory (%llu)", (unsigned long long)c->write_behind,
                      (unsigned long long)(2 * frame), (unsigned long long)c->memory);
    }
    if (c->segment_bytes < 2 * frame) {
        return refuse(c, "segment-bytes max-payload", err, errcap,
                      "segment-bytes (%llu) must hold at least 2 frames (%llu)",
                      (unsigned long long)c->segment_bytes, (unsigned long long)(2 * frame));
    }
    if (!c->data[0]) {
        return refuse(c, "data", err, errcap, "data: empty directory name");
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        return refuse(c, "tls-cert tls-key", err, errcap,
                      "tls-cert and tls-key go together: set both or neither");
    }
    if (c->tls_client_ca[0] && !c->tls_cert[0]) {
        return refuse(c, "tls-client-ca", err, errcap,
                      "tls-client-ca needs tls-cert and tls-key (client certificates are "
                      "asked for in a TLS handshake)");
    }
    if (c->upstream[0] && !strrchr(c->upstream, ':')) {
        return refuse(c, "upstream", err, errcap, "upstream: '%s' is not HOST:PORT",
                      c->upstream);
    }
    if (c->cluster[0] && !c->node[0])
        return refuse(c, "cluster", err, errcap, "cluster: needs node (this relay's name)");
    if (c->cluster[0] && c->upstream[0]) {
        return refuse(c, "cluster upstream", err, errcap,
                      "cluster and upstream: an edge relay is not a cluster member");
    }
    if (!c->cluster[0] && c->acks == FY_ACKS_ALL)
        return refuse(c, "acks", err, errcap, "acks: all needs cluster (without it only leader: "
                      "an acknowledgement means this relay's disk)");
    return 0;
}

/* One path key's file: readable by us now.  0 or -EINVAL with the reason. */
static int readable(const fy_conf *c, const char *key, const char *path, char *err,
                    size_t errcap)
{
    FILE *f = path[0] ? fopen(path, "re") : NULL;

    if (!path[0])
        return 0;
    if (!f)
        return refuse(c, key, err, errcap, "%s: cannot open %s: %s", key, path, strerror(errno));
    fclose(f);
    return 0;
}

int fy_conf_check_files(const fy_conf *c, char *err, size_t errcap)
{
    static const char *const names[] = {"tls-cert", "tls-key", "tls-client-ca", "upstream-ca"};
    const char *paths[] = {c->tls_cert, c->tls_key, c->tls_client_ca, c->upstream_ca};
    char e[600] = "";
    fy_tls *t = NULL;

    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (readable(c, names[i], paths[i], err, errcap) < 0)
            return -EINVAL;
    /* The contents: built and dropped again, as the relay builds them at
     * start (and on SIGHUP, for the listener's). */
    if (c->tls_cert[0] && fy_tls_server_new(c->tls_cert, c->tls_key, c->tls_client_ca, &t, e,
                                            sizeof e) < 0)
        return refuse(c, "tls-cert tls-key tls-client-ca", err, errcap, "TLS: %s", e);
    fy_tls_free(t);
    t = NULL;
    if (c->upstream_ca[0] && fy_tls_client_new(c->upstream_ca, NULL, NULL, &t, e, sizeof e) < 0)
        return refuse(c, "upstream-ca", err, errcap, "upstream TLS: %s", e);
    fy_tls_free(t);
    return 0;
}
