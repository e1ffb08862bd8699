/*
 * etcd.h - a small blocking client for etcd v3's JSON gateway (HTTP/1.1
 * POSTs to /v3/...), the coordination service of a Ferry cluster
 * (docs/cluster.md).  Debian has no C client for etcd v3; the gateway is
 * etcd's documented HTTP form of the same gRPC calls, spoken here with
 * libcurl and json-c.
 *
 * A handle is used by one thread at a time: the cluster's own thread, never
 * a scheduler thread (every call may block up to the handle's timeout per
 * endpoint).  Each call tries the endpoints in order, starting with the last
 * one that answered, and fails only when none does.  Keys and values are
 * bytes; the gateway's base64 is done here.
 *
 * Errors: -ETIMEDOUT / -ECONNREFUSED / -EHOSTUNREACH when no endpoint
 * answered, -EPROTO for an answer that is not what etcd sends (logged with
 * its text), -ENOENT for a key or lease that does not exist, -ESTALE for a
 * compare-and-swap whose compare failed, -ENOMEM.
 */
#ifndef FERRY_CLUSTER_ETCD_H
#define FERRY_CLUSTER_ETCD_H

#include <stddef.h>
#include <stdint.h>

typedef struct fy_etcd fy_etcd;

/* endpoints: "http://HOST:PORT[,http://HOST:PORT...]" (the scheme may be
 * left out); timeout_ms bounds each request to one endpoint.  0 or
 * -EINVAL (an empty or unparsable list), -ENOMEM. */
int fy_etcd_open(const char *endpoints, int timeout_ms, fy_etcd **out);
void fy_etcd_close(fy_etcd *e);
/* The endpoint that answered last ("http://HOST:PORT"), for log lines. */
const char *fy_etcd_endpoint(const fy_etcd *e);

/* ---- leases ---------------------------------------------------------------- */

/* A new lease of ttl_s seconds; *id gets its id (never 0). */
int fy_etcd_lease_grant(fy_etcd *e, int ttl_s, int64_t *id);
/* One renewal; *ttl_s gets the TTL etcd granted from now.  -ENOENT when the
 * lease has expired or was revoked.  The caller counts the lease's
 * deadline from when it sent this call, not from the answer. */
int fy_etcd_lease_keepalive(fy_etcd *e, int64_t id, int *ttl_s);
/* Revoke: every key attached to the lease goes at once. */
int fy_etcd_lease_revoke(fy_etcd *e, int64_t id);

/* ---- keys ------------------------------------------------------------------ */

typedef struct fy_etcd_kv {
    char *key;          /* NUL-terminated copies, owned by the caller: */
    char *value;        /* free with fy_etcd_kv_free */
    size_t value_len;
    int64_t mod_rev;    /* the revision of the last change */
    int64_t create_rev;
    int64_t lease;      /* 0: none */
} fy_etcd_kv;

void fy_etcd_kv_free(fy_etcd_kv *kv);

/* Read one key.  -ENOENT when absent (kv untouched). */
int fy_etcd_get(fy_etcd *e, const char *key, fy_etcd_kv *kv);
/* Every key that starts with prefix, in key order: *kvs gets an array of *n
 * (free each with fy_etcd_kv_free, then the array with free()). */
int fy_etcd_list(fy_etcd *e, const char *prefix, fy_etcd_kv **kvs, size_t *n);
/* Write unconditionally, attached to lease (0: none). */
int fy_etcd_put(fy_etcd *e, const char *key, const void *val, size_t len, int64_t lease);
/* Compare-and-swap in one transaction: write only if the key's mod
 * revision is still mod_rev (0: only if the key does not exist).
 * -ESTALE when the compare failed (someone else wrote first). */
int fy_etcd_cas(fy_etcd *e, const char *key, int64_t mod_rev, const void *val, size_t len,
                int64_t lease);
/* Delete one key (absent is not an error). */
int fy_etcd_delete(fy_etcd *e, const char *key);

/* ---- transactions ------------------------------------------------------------ */

/* One compare of a transaction: the key's mod revision equals mod_rev, or
 * with mod_rev 0 the key does not exist. */
typedef struct fy_etcd_cmp {
    const char *key;
    int64_t mod_rev;
} fy_etcd_cmp;

/* One write of a transaction: put (value non-NULL, under lease unless 0)
 * or delete (value NULL). */
typedef struct fy_etcd_op {
    const char *key;
    const void *value;
    size_t len;
    int64_t lease;
} fy_etcd_op;

/* All the writes if every compare holds, else none: 0, or -ESTALE when a
 * compare failed. */
int fy_etcd_txn(fy_etcd *e, const fy_etcd_cmp *cmp, size_t ncmp, const fy_etcd_op *op,
                size_t nop);

#endif
