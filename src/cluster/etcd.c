/*
 * etcd.c - the etcd v3 JSON gateway client (see etcd.h).
 *
 * One libcurl easy handle per client keeps its connection alive between
 * calls, so a lease renewal every TTL/3 costs one request on an open
 * socket.  Requests and answers are json-c objects; the gateway writes
 * int64 fields as JSON strings and leaves out fields whose value is zero
 * (proto3), so every read here has a default.
 */
#include "cluster/etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/klog.h"

#define BODY_MAX ((size_t)64 << 20) /* a list of every channel's state fits */

struct fy_etcd {
    CURL *curl;
    struct curl_slist *hdr;
    char **ep;      /* "http://HOST:PORT" */
    size_t nep;
    size_t cur;     /* the endpoint that answered last */
    int timeout_ms;
    char *body;     /* the answer being read */
    size_t len, cap;
    bool overflow;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- setup ----------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not safe to race, and has to run once per process. */
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int add_endpoint(fy_etcd *e, const char *s, size_t n)
{
    bool scheme = n >= 7 && (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0);
    char *ep = malloc(n + 8);

    if (!ep)
        return -ENOMEM;
    snprintf(ep, n + 8, "%s%.*s", scheme ? "" : "http://", (int)n, s);
    while (strlen(ep) > 0 && ep[strlen(ep) - 1] == '/')
        ep[strlen(ep) - 1] = '\0';
    e->ep[e->nep++] = ep;
    return 0;
}

static int parse_endpoints(fy_etcd *e, const char *list)
{
    size_t max = 1;

    for (const char *p = list; *p; p++)
        max += *p == ',';
    e->ep = calloc(max, sizeof *e->ep);
    if (!e->ep)
        return -ENOMEM;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n) {
            int rc = add_endpoint(e, p, n);
            if (rc < 0)
                return rc;
        }
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return e->nep ? 0 : -EINVAL;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    fy_etcd *e = arg;
    size_t add = size * n;

    if (e->len + add + 1 > e->cap) {
        size_t cap = e->cap ? e->cap : 4096;
        while (cap < e->len + add + 1)
            cap *= 2;
        char *b = cap <= BODY_MAX ? realloc(e->body, cap) : NULL;
        if (!b) {
            e->overflow = true;
            return 0; /* curl stops the transfer */
        }
        e->body = b;
        e->cap = cap;
    }
    memcpy(e->body + e->len, p, add);
    e->len += add;
    e->body[e->len] = '\0';
    return add;
}

int fy_etcd_open(const char *endpoints, int timeout_ms, fy_etcd **out)
{
    fy_etcd *e;
    int rc;

    *out = NULL;
    if (!endpoints || timeout_ms <= 0)
        return -EINVAL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return -ENOMEM;
    e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->timeout_ms = timeout_ms;
    rc = parse_endpoints(e, endpoints);
    if (rc == 0) {
        e->curl = curl_easy_init();
        e->hdr = curl_slist_append(NULL, "Content-Type: application/json");
        rc = e->curl && e->hdr ? 0 : -ENOMEM;
    }
    if (rc < 0) {
        fy_etcd_close(e);
        return rc;
    }
    curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->hdr);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM in a threaded program */
    curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, e->errbuf);
    curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    *out = e;
    return 0;
}

void fy_etcd_close(fy_etcd *e)
{
    if (!e)
        return;
    if (e->curl)
        curl_easy_cleanup(e->curl);
    curl_slist_free_all(e->hdr);
    for (size_t i = 0; i < e->nep; i++)
        free(e->ep[i]);
    free(e->ep);
    free(e->body);
    free(e);
}

const char *fy_etcd_endpoint(const fy_etcd *e)
{
    return e->ep[e->cur];
}

/* ---- base64 and numbers ------------------------------------------------------ */

static char *b64(const void *p, size_t n)
{
    char *s = malloc(4 * ((n + 2) / 3) + 1);

    if (s)
        EVP_EncodeBlock((unsigned char *)s, p, (int)n);
    return s;
}

/* Decode s into a new NUL-terminated buffer; *n gets its length. */
static char *unb64(const char *s, size_t *n)
{
    size_t len = strlen(s), pad = 0;
    char *out = malloc(len / 4 * 3 + 1);
    int got;

    if (!out)
        return NULL;
    if (len % 4) {
        free(out);
        return NULL;
    }
    got = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
    if (got < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    pad = (len && s[len - 1] == '=') + (len > 1 && s[len - 2] == '=');
    *n = (size_t)got - pad;
    out[*n] = '\0';
    return out;
}

static void put_b64(json_object *o, const char *field, const void *p, size_t n)
{
    char *s = b64(p, n);

    json_object_object_add(o, field, json_object_new_string(s ? s : ""));
    free(s);
}

/* An int64 field (the gateway writes them as strings), 0 when left out. */
static int64_t get_i64(json_object *o, const char *field)
{
    json_object *v;

    return json_object_object_get_ex(o, field, &v) ? json_object_get_int64(v) : 0;
}

static void put_i64(json_object *o, const char *field, int64_t v)
{
    char s[24];

    snprintf(s, sizeof s, "%lld", (long long)v);
    json_object_object_add(o, field, json_object_new_string(s));
}

/* ---- one call ---------------------------------------------------------------- */

/* The gateway's error answer: {"error": "...", "code": N, "message": "..."},
 * N a gRPC status.  NOT_FOUND (5) is -ENOENT; the rest is logged. */
static int error_answer(fy_etcd *e, const char *path, long status, json_object *r)
{
    json_object *v;
    int64_t code = r ? get_i64(r, "code") : 0;
    const char *msg = r && json_object_object_get_ex(r, "message", &v) ? json_object_get_string(v)
                                                                       : e->body;

    if (code == 5)
        return -ENOENT;
    fy_klog(FY_LOG_WARN, "etcd refused a request", "endpoint=%s path=%s http=%ld code=%lld "
            "message=\"%.200s\" action=\"fail the call\"", e->ep[e->cur], path, status,
            (long long)code, msg ? msg : "");
    return -EPROTO;
}

static int curl_errno(CURLcode c)
{
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
    case CURLE_OUT_OF_MEMORY: return -ENOMEM;
    default: return -EHOSTUNREACH;
    }
}

/* POST req (consumed) to path on one endpoint; *resp gets the parsed
 * answer.  A transport failure returns its -errno (the caller tries the
 * next endpoint); an HTTP or JSON failure -EPROTO / -ENOENT. */
static int post_one(fy_etcd *e, size_t i, const char *path, const char *json, json_object **resp)
{
    char url[512];
    long status = 0;
    CURLcode c;

    snprintf(url, sizeof url, "%s%s", e->ep[i], path);
    e->len = 0;
    e->overflow = false;
    e->errbuf[0] = '\0';
    curl_easy_setopt(e->curl, CURLOPT_URL, url);
    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, json);
    c = curl_easy_perform(e->curl);
    if (e->overflow)
        return -ENOMEM;
    if (c != CURLE_OK)
        return curl_errno(c);
    e->cur = i;
    curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
    *resp = e->len ? json_tokener_parse(e->body) : NULL;
    if (status != 200) {
        int rc = error_answer(e, path, status, *resp);
        json_object_put(*resp);
        *resp = NULL;
        return rc;
    }
    if (!*resp) {
        fy_klog(FY_LOG_WARN, "etcd answer is not JSON", "endpoint=%s path=%s body=\"%.200s\"",
                e->ep[i], path, e->len ? e->body : "");
        return -EPROTO;
    }
    return 0;
}

static bool transport_error(int rc)
{
    return rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EHOSTUNREACH;
}

/* POST req (always consumed) and parse the answer into *resp, trying every
 * endpoint once, the last one that answered first. */
static int call(fy_etcd *e, const char *path, json_object *req, json_object **resp)
{
    const char *json = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    int rc = -ENOMEM;

    *resp = NULL;
    for (size_t k = 0; json && k < e->nep; k++) {
        size_t i = (e->cur + k) % e->nep;
        rc = post_one(e, i, path, json, resp);
        if (!transport_error(rc))
            break;
        fy_klog(FY_LOG_DEBUG, "etcd endpoint did not answer", "endpoint=%s path=%s err=%d "
                "detail=\"%s\"", e->ep[i], path, rc, e->errbuf);
    }
    json_object_put(req);
    return rc;
}

/* A stream call's answer comes wrapped: {"result": {...}}. */
static json_object *unwrap(json_object *r)
{
    json_object *v;

    return json_object_object_get_ex(r, "result", &v) ? v : r;
}

/* ---- leases ---------------------------------------------------------------- */

int fy_etcd_lease_grant(fy_etcd *e, int ttl_s, int64_t *id)
{
    json_object *req = json_object_new_object(), *r;
    int rc;

    json_object_object_add(req, "TTL", json_object_new_int(ttl_s));
    rc = call(e, "/v3/lease/grant", req, &r);
    if (rc < 0)
        return rc;
    *id = get_i64(r, "ID");
    json_object_put(r);
    return *id ? 0 : -EPROTO;
}

int fy_etcd_lease_keepalive(fy_etcd *e, int64_t id, int *ttl_s)
{
    json_object *req = json_object_new_object(), *r;
    int64_t ttl;
    int rc;

    put_i64(req, "ID", id);
    rc = call(e, "/v3/lease/keepalive", req, &r);
    if (rc < 0)
        return rc;
    /* An expired lease is answered with TTL 0 (left out), not an error. */
    ttl = get_i64(unwrap(r), "TTL");
    json_object_put(r);
    if (ttl <= 0)
        return -ENOENT;
    *ttl_s = ttl > INT32_MAX ? INT32_MAX : (int)ttl;
    return 0;
}

int fy_etcd_lease_revoke(fy_etcd *e, int64_t id)
{
    json_object *req = json_object_new_object(), *r;
    int rc;

    put_i64(req, "ID", id);
    rc = call(e, "/v3/lease/revoke", req, &r);
    json_object_put(r);
    return rc;
}

/* ---- keys ------------------------------------------------------------------ */

void fy_etcd_kv_free(fy_etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

/* One element of a range answer's "kvs" into *kv. */
static int read_kv(json_object *o, fy_etcd_kv *kv)
{
    json_object *k, *v;
    size_t klen = 0;

    memset(kv, 0, sizeof *kv);
    if (!json_object_object_get_ex(o, "key", &k))
        return -EPROTO;
    kv->key = unb64(json_object_get_string(k), &klen);
    kv->value = json_object_object_get_ex(o, "value", &v)
                    ? unb64(json_object_get_string(v), &kv->value_len)
                    : unb64("", &kv->value_len);
    if (!kv->key || !kv->value) {
        fy_etcd_kv_free(kv);
        return -EPROTO;
    }
    kv->mod_rev = get_i64(o, "mod_revision");
    kv->create_rev = get_i64(o, "create_revision");
    kv->lease = get_i64(o, "lease");
    return 0;
}

/* The smallest key greater than every key that starts with prefix: the
 * prefix with its last byte below 0xff incremented (etcd's range_end). */
static size_t prefix_end(const char *prefix, char *out, size_t cap)
{
    size_t n = strlen(prefix);

    if (n >= cap)
        return 0;
    memcpy(out, prefix, n);
    while (n && (unsigned char)out[n - 1] == 0xff)
        n--;
    if (n)
        out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
    return n;
}

static int range(fy_etcd *e, const char *key, bool prefix, fy_etcd_kv **kvs, size_t *n)
{
    json_object *req = json_object_new_object(), *r, *arr;
    char end[1024];
    size_t m;
    int rc;

    *kvs = NULL;
    *n = 0;
    put_b64(req, "key", key, strlen(key));
    if (prefix) {
        size_t elen = prefix_end(key, end, sizeof end);
        /* "\0" as range_end: every key from key on (a prefix of all 0xff). */
        put_b64(req, "range_end", elen ? end : "", elen ? elen : 1);
    }
    rc = call(e, "/v3/kv/range", req, &r);
    if (rc < 0)
        return rc;
    m = json_object_object_get_ex(r, "kvs", &arr) ? json_object_array_length(arr) : 0;
    if (m && !(*kvs = calloc(m, sizeof **kvs)))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < m; i++) {
        rc = read_kv(json_object_array_get_idx(arr, i), &(*kvs)[i]);
        *n += rc == 0;
    }
    json_object_put(r);
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++)
            fy_etcd_kv_free(&(*kvs)[i]);
        free(*kvs);
        *kvs = NULL;
        *n = 0;
    }
    return rc;
}

int fy_etcd_get(fy_etcd *e, const char *key, fy_etcd_kv *kv)
{
    fy_etcd_kv *kvs;
    size_t n;
    int rc = range(e, key, false, &kvs, &n);

    if (rc < 0)
        return rc;
    if (n == 0) {
        free(kvs);
        return -ENOENT;
    }
    *kv = kvs[0];
    for (size_t i = 1; i < n; i++)
        fy_etcd_kv_free(&kvs[i]);
    free(kvs);
    return 0;
}

int fy_etcd_list(fy_etcd *e, const char *prefix, fy_etcd_kv **kvs, size_t *n)
{
    return range(e, prefix, true, kvs, n);
}

static json_object *put_request(const char *key, const void *val, size_t len, int64_t lease)
{
    json_object *p = json_object_new_object();

    put_b64(p, "key", key, strlen(key));
    put_b64(p, "value", val, len);
    if (lease)
        put_i64(p, "lease", lease);
    return p;
}

int fy_etcd_put(fy_etcd *e, const char *key, const void *val, size_t len, int64_t lease)
{
    json_object *r;
    int rc = call(e, "/v3/kv/put", put_request(key, val, len, lease), &r);

    json_object_put(r);
    return rc;
}

/* Absent means "created at revision 0"; else the last change must be the
 * one the caller read. */
static json_object *compare(const fy_etcd_cmp *c)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "target", json_object_new_string(c->mod_rev ? "MOD" : "CREATE"));
    json_object_object_add(o, "result", json_object_new_string("EQUAL"));
    put_b64(o, "key", c->key, strlen(c->key));
    put_i64(o, c->mod_rev ? "mod_revision" : "create_revision", c->mod_rev);
    return o;
}

static json_object *operation(const fy_etcd_op *op)
{
    json_object *o = json_object_new_object(), *d;

    if (op->value) {
        json_object_object_add(o, "request_put", put_request(op->key, op->value, op->len,
                                                             op->lease));
    } else {
        d = json_object_new_object();
        put_b64(d, "key", op->key, strlen(op->key));
        json_object_object_add(o, "request_delete_range", d);
    }
    return o;
}

int fy_etcd_txn(fy_etcd *e, const fy_etcd_cmp *cmp, size_t ncmp, const fy_etcd_op *op,
                size_t nop)
{
    json_object *req = json_object_new_object(), *cmps = json_object_new_array();
    json_object *ops = json_object_new_array(), *r, *v;
    int rc;

    for (size_t i = 0; i < ncmp; i++)
        json_object_array_add(cmps, compare(&cmp[i]));
    for (size_t i = 0; i < nop; i++)
        json_object_array_add(ops, operation(&op[i]));
    json_object_object_add(req, "compare", cmps);
    json_object_object_add(req, "success", ops);
    rc = call(e, "/v3/kv/txn", req, &r);
    if (rc < 0)
        return rc;
    rc = json_object_object_get_ex(r, "succeeded", &v) && json_object_get_boolean(v) ? 0 : -ESTALE;
    json_object_put(r);
    return rc;
}

int fy_etcd_cas(fy_etcd *e, const char *key, int64_t mod_rev, const void *val, size_t len,
                int64_t lease)
{
    fy_etcd_cmp c = {key, mod_rev};
    fy_etcd_op op = {key, val, len, lease};

    return fy_etcd_txn(e, &c, 1, &op, 1);
}

int fy_etcd_delete(fy_etcd *e, const char *key)
{
    json_object *req = json_object_new_object(), *r;
    int rc;

    put_b64(req, "key", key, strlen(key));
    rc = call(e, "/v3/kv/deleterange", req, &r);
    json_object_put(r);
    return rc;
}
