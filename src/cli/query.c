/*
 * query.c - one query to a relay (query.h).  A query has no welcome: the
 * relay's first frame is a record, QEND or an error frame, and it closes
 * after QEND, so one connection answers one query.
 */
#include "cli/query.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cliexit.h"
#include "cli/ident.h"
#include "cli/redirect.h"
#include "cli/retry.h"
#include "ferry/err.h"
#include "ferry/klog.h"

#define QUERY_TIMEOUT_MS 10000
#define BUSY_STEP_MS 200

static int exchange(fy_cli_conn *k, const fy_query *q, fy_cli_query_fn fn, void *arg, int *cb)
{
    static uint8_t p[FY_QUERY_MAX];
    char rec[FY_QREC_MAX + 1];
    size_t n;
    int rc = fy_query_encode(q, p, sizeof p, &n);

    if (rc < 0 || (rc = fy_cli_conn_send(k, FY_FT_QUERY, 0, p, n)) < 0)
        return rc;
    for (;;) {
        fy_frame f;
        if ((rc = fy_cli_conn_next(k, &f, false)) < 0)
            return rc;
        if (f.hdr.type == FY_FT_QEND)
            return 0;
        if (f.hdr.type != FY_FT_QREC)
            return -FY_EPROTO;
        memcpy(rec, f.payload, f.hdr.len);
        rec[f.hdr.len] = 0;
        if ((*cb = fn(arg, rec)) != 0)
            return 0;
    }
}

/* The query at one address, then at the leaders its FY_ENOTLEADER
 * answers name (rm and retain on a cluster member that does not lead the
 * channel), at most FY_CLI_REDIRECTS_MAX hops; a redirect naming an epoch
 * older than one this run has seen is not followed (*stale).  *what:
 * "connect" while nothing answered at server itself. */
static int ask_leader(const fy_cli_query_opts *o, const char *server, int tmo, fy_query *q,
                      fy_cli_query_fn fn, void *arg, int *cb, fy_cli_conn **k, const char **what,
                      bool *stale)
{
    char at[300];

    *stale = false;
    snprintf(at, sizeof at, "%s", server);
    for (unsigned hop = 0;; hop++) {
        int rc = fy_cli_conn_open_timeout(at, tmo, o->tls, o->cancel, k);
        *what = hop ? "query" : "connect";
        if (rc == 0) {
            *what = "query";
            rc = exchange(*k, q, fn, arg, cb);
        }
        if (rc != -FY_ENOTLEADER ||
            fy_cli_redirect_follow(at, q->channel, *k, hop, at, sizeof at, stale) == 0)
            return rc;
        fy_cli_conn_close(*k, false);
        *k = NULL;
    }
}

/* The query at the first address of o->server ("A" or a list "A,B,C", as
 * fy_cli_dial takes) that answers, following redirects; an address that
 * cannot be connected to, or whose redirect is stale, gives way to the
 * next.  0, or the last address's error. */
static int ask_any(const fy_cli_query_opts *o, int tmo, fy_query *q, fy_cli_query_fn fn,
                   void *arg, int *cb, fy_cli_conn **k, const char **what)
{
    char one[300]; /* one HOST:PORT (a host name up to 253 bytes) */
    int rc = -EINVAL;
    bool stale;

    *what = "connect";
    for (const char *p = o->server; *p;) {
        size_t n = strcspn(p, ",");
        if (n && n < sizeof one) {
            memcpy(one, p, n);
            one[n] = 0;
            fy_cli_conn_close(*k, false);
            *k = NULL;
            rc = ask_leader(o, one, tmo, q, fn, arg, cb, k, what, &stale);
            if (rc == -EINTR || (strcmp(*what, "connect") != 0 && !stale))
                return rc;
        }
        p += n + (p[n] == ',');
    }
    return rc;
}

int fy_cli_query_run(const fy_cli_query_opts *o, fy_query *q, fy_cli_query_fn fn, void *arg)
{
    fy_cli_conn *k = NULL;
    int cb = 0, tmo = o->timeout_ms ? o->timeout_ms : QUERY_TIMEOUT_MS;

    if (!q->client[0])
        snprintf(q->client, sizeof q->client, "%s", fy_cli_client_name());
    const char *what;
    int rc;
    for (int waited = 0;; waited += BUSY_STEP_MS) {
        rc = ask_any(o, tmo, q, fn, arg, &cb, &k, &what);
        if (rc != -FY_EINUSE || waited >= o->busy_wait_ms ||
            (o->cancel && fy_cli_cancel_requested(o->cancel)))
            break;
        fy_cli_conn_close(k, false);
        k = NULL;
        nanosleep(&(struct timespec){0, BUSY_STEP_MS * 1000000L}, NULL);
    }
    if (rc < 0) {
        int code = fy_cli_conn_fail(k, rc, what);
        fy_cli_conn_close(k, false);
        return code;
    }
    fy_cli_conn_close(k, false);
    return cb;
}

/* The record's next key=value at p: key [*k, *kl), the value's raw text
 * [*v, *vl) (with its quotes when it is quoted: "..." with \" and \\
 * escapes, as the relay writes a value holding a space, quote, backslash
 * or '=').  Returns where the next pair starts, or NULL at the end. */
static const char *kv_next(const char *p, const char **k, size_t *kl, const char **v, size_t *vl)
{
    while (*p == ' ')
        p++;
    const char *eq = strchr(p, '=');
    if (!*p || !eq)
        return NULL;
    *k = p;
    *kl = (size_t)(eq - p);
    *v = eq + 1;
    const char *e = *v;
    if (*e == '"') {
        for (e++; *e && *e != '"'; e++)
            if (*e == '\\' && e[1])
                e++;
        if (*e == '"')
            e++;
    } else {
        e += strcspn(e, " ");
    }
    *vl = (size_t)(e - *v);
    return e;
}

/* A value's text without its quotes and escapes into out (cap). */
static void kv_unquote(const char *v, size_t vl, char *out, size_t cap)
{
    size_t o = 0;
    bool q = vl >= 2 && v[0] == '"' && v[vl - 1] == '"';

    for (size_t i = q, end = q ? vl - 1 : vl; i < end && o + 1 < cap; i++) {
        if (q && v[i] == '\\' && i + 1 < end)
            i++;
        out[o++] = v[i];
    }
    if (cap)
        out[o] = 0;
}

bool fy_cli_kv_get(const char *rec, const char *key, char *out, size_t cap)
{
    const char *k, *v;
    size_t kl, vl, want = strlen(key);

    for (const char *p = rec; (p = kv_next(p, &k, &kl, &v, &vl));)
        if (kl == want && strncmp(k, key, kl) == 0) {
            kv_unquote(v, vl, out, cap);
            return true;
        }
    return false;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

void fy_cli_kv_json(FILE *f, const char *rec)
{
    const char *k, *v;
    size_t kl, vl;
    bool first = true;
    char text[1024];

    fputc('{', f);
    for (const char *p = rec; (p = kv_next(p, &k, &kl, &v, &vl));) {
        fprintf(f, "%s\"%.*s\":", first ? "" : ",", (int)kl, k);
        first = false;
        if (all_digits(v, vl)) {
            fprintf(f, "%.*s", (int)vl, v);
            continue;
        }
        kv_unquote(v, vl, text, sizeof text);
        fputc('"', f);
        for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
            if (*c == '"' || *c == '\\')
                fprintf(f, "\\%c", *c);
            else if (*c < 0x20)
                fprintf(f, "\\u%04x", *c);
            else
                fputc(*c, f);
        }
        fputc('"', f);
    }
    fputs("}\n", f);
}
