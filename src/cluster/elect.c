/*
 * elect.c - membership and leadership transactions (see elect.h).
 *
 * Every change of a channel's state compares its mod revision with the one
 * the caller read, so two nodes that race never both win; a takeover also
 * compares the old leader's node key with "absent", so a leader whose lease
 * is still alive is never replaced however its followers see it.
 */
#include "cluster/elect.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define KEY_MAX 512
#define STATE_MAX 2048

static int key(char *out, const char *prefix, const char *kind, const char *name)
{
    int n = snprintf(out, KEY_MAX, "%s/%s/%s", prefix, kind, name);

    return n > 0 && n < KEY_MAX ? 0 : -ENAMETOOLONG;
}

int fy_elect_register(fy_etcd *e, const char *prefix, const char *node, const char *advertise,
                      int64_t lease)
{
    char k[KEY_MAX], v[600];
    fy_etcd_kv kv;
    int rc = key(k, prefix, "nodes", node);

    if (rc < 0 || !fy_node_name_ok(node))
        return rc < 0 ? rc : -EINVAL;
    snprintf(v, sizeof v, "{\"advertise\":\"%s\"}", advertise);
    rc = fy_etcd_cas(e, k, 0, v, strlen(v), lease);
    if (rc != -ESTALE)
        return rc;
    /* The key exists: ours (a second registration) or another holder's. */
    rc = fy_etcd_get(e, k, &kv);
    if (rc == -ENOENT) /* it expired between the two calls */
        return fy_etcd_cas(e, k, 0, v, strlen(v), lease);
    if (rc < 0)
        return rc;
    rc = kv.lease == lease ? fy_etcd_cas(e, k, kv.mod_rev, v, strlen(v), lease) : -EADDRINUSE;
    fy_etcd_kv_free(&kv);
    return rc;
}

int fy_elect_read(fy_etcd *e, const char *prefix, const char *chan, fy_chanstate *st)
{
    char k[KEY_MAX];
    fy_etcd_kv kv;
    int rc = key(k, prefix, "channels", chan);

    if (rc == 0)
        rc = fy_etcd_get(e, k, &kv);
    if (rc < 0)
        return rc;
    rc = fy_chanstate_decode(kv.value, kv.value_len, st);
    st->mod_rev = kv.mod_rev;
    fy_etcd_kv_free(&kv);
    return rc < 0 ? -EPROTO : 0;
}

int fy_elect_alive(fy_etcd *e, const char *prefix, const char *node)
{
    return fy_elect_node(e, prefix, node, NULL, 0);
}

int fy_elect_node(fy_etcd *e, const char *prefix, const char *node, char *addr, size_t cap)
{
    char k[KEY_MAX];
    fy_etcd_kv kv;
    int rc = key(k, prefix, "nodes", node);

    if (cap)
        addr[0] = 0;
    if (rc == 0)
        rc = fy_etcd_get(e, k, &kv);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    /* {"advertise":"HOST:PORT"} as fy_elect_register wrote it */
    const char *a = strstr(kv.value, "\"advertise\":\"");
    if (a && cap) {
        a += strlen("\"advertise\":\"");
        size_t n = strcspn(a, "\"");
        snprintf(addr, cap, "%.*s", (int)(n < cap ? n : cap - 1), a);
    }
    fy_etcd_kv_free(&kv);
    return 1;
}

/* Write next over the state read as st (mod_rev 0: none), if the state
 * and, when dead is set, the node key of dead are as they were read. */
static int write_state(fy_etcd *e, const char *prefix, const char *chan, const fy_chanstate *st,
                       fy_chanstate *next, const char *dead)
{
    char k[KEY_MAX], dk[KEY_MAX], v[STATE_MAX];
    fy_etcd_cmp cmp[2] = {{k, st->mod_rev}, {dk, 0}};
    int len, rc = key(k, prefix, "channels", chan);

    if (rc == 0 && dead)
        rc = key(dk, prefix, "nodes", dead);
    if (rc < 0)
        return rc;
    len = fy_chanstate_encode(next, v, sizeof v);
    if (len < 0)
        return len;
    fy_etcd_op op = {k, v, (size_t)len, 0};
    rc = fy_etcd_txn(e, cmp, dead ? 2 : 1, &op, 1);
    if (rc == 0) {
        fy_chanstate got;
        /* The new revision: read back (a txn answer would need parsing of
         * its responses; this is not a hot path). */
        rc = fy_elect_read(e, prefix, chan, &got);
        if (rc == 0 && got.epoch == next->epoch && strcmp(got.leader, next->leader) == 0)
            next->mod_rev = got.mod_rev;
        else if (rc == 0)
            rc = -ESTALE;
    }
    return rc;
}

static int first_leader(fy_etcd *e, const char *prefix, const char *chan, const char *node,
                        unsigned r, fy_chanstate *st)
{
    fy_chanstate none = {0}, next = {0};

    snprintf(next.leader, sizeof next.leader, "%s", node);
    next.epoch = 1;
    next.r = r;
    fy_chanstate_isr_add(&next, node);
    int rc = write_state(e, prefix, chan, &none, &next, NULL);
    if (rc == 0)
        *st = next;
    return rc;
}

int fy_elect_try(fy_etcd *e, const char *prefix, const char *chan, const char *node, unsigned r,
                 fy_chanstate *st)
{
    fy_chanstate next;
    int rc;

    if (!fy_node_name_ok(node) || r == 0 || r > FY_CLUSTER_NODES_MAX)
        return -EINVAL;
    rc = fy_elect_read(e, prefix, chan, st);
    if (rc == -ENOENT)
        return first_leader(e, prefix, chan, node, r, st);
    if (rc < 0)
        return rc;
    if (strcmp(st->leader, node) == 0)
        return 0;
    rc = fy_elect_alive(e, prefix, st->leader);
    if (rc != 0)
        return rc < 0 ? rc : -EBUSY;
    if (!fy_chanstate_in_isr(st, node))
        return -EPERM;
    next = *st;
    fy_chanstate_isr_remove(&next, st->leader);
    snprintf(next.leader, sizeof next.leader, "%s", node);
    next.epoch = st->epoch + 1;
    rc = write_state(e, prefix, chan, st, &next, st->leader);
    if (rc == 0)
        *st = next;
    return rc;
}

int fy_elect_set_isr(fy_etcd *e, const char *prefix, const char *chan, const char *node,
                     fy_chanstate *st)
{
    fy_chanstate next = *st;

    if (strcmp(st->leader, node) != 0 || !fy_chanstate_in_isr(st, node))
        return -EPERM;
    int rc = write_state(e, prefix, chan, st, &next, NULL);
    if (rc == 0)
        *st = next;
    return rc;
}

int fy_elect_bump(fy_etcd *e, const char *prefix, const char *chan, const char *node,
                  fy_chanstate *st)
{
    fy_chanstate next = *st;

    if (strcmp(st->leader, node) != 0)
        return -EPERM;
    next.epoch++;
    int rc = write_state(e, prefix, chan, st, &next, NULL);
    if (rc == 0)
        *st = next;
    return rc;
}
