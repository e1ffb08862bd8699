/*
 * chanstate.c - a channel's replication state and its JSON form (see
 * chanstate.h).  The decoder trusts nothing in etcd: a value another
 * program or an older relay wrote is checked field by field.
 */
#include "cluster/chanstate.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

bool fy_node_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > FY_NODE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int fy_chanstate_encode(const fy_chanstate *st, char *out, size_t cap)
{
    size_t n;
    int k = snprintf(out, cap, "{\"leader\":\"%s\",\"epoch\":%llu,\"isr\":[", st->leader,
                     (unsigned long long)st->epoch);

    /* Names are [A-Za-z0-9._-] (fy_node_name_ok): nothing to escape. */
    for (unsigned i = 0; k >= 0 && (size_t)k < cap && i < st->nisr; i++)
        k += snprintf(out + k, cap - (size_t)k, "%s\"%s\"", i ? "," : "", st->isr[i]);
    if (k < 0 || (size_t)k >= cap)
        return -ENOSPC;
    n = (size_t)k;
    k = snprintf(out + n, cap - n, "],\"r\":%u}", st->r);
    if (k < 0 || n + (size_t)k >= cap)
        return -ENOSPC;
    return (int)(n + (size_t)k);
}

static int copy_name(char *dst, json_object *v)
{
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

    if (!s || !fy_node_name_ok(s))
        return -EINVAL;
    strcpy(dst, s);
    return 0;
}

/* A positive integer field that fits max. */
static int get_count(json_object *o, const char *field, uint64_t max, uint64_t *out)
{
    json_object *v;
    int64_t x;

    if (!json_object_object_get_ex(o, field, &v) || !json_object_is_type(v, json_type_int))
        return -EINVAL;
    x = json_object_get_int64(v);
    if (x <= 0 || (uint64_t)x > max)
        return -EINVAL;
    *out = (uint64_t)x;
    return 0;
}

static int decode_isr(json_object *o, fy_chanstate *st)
{
    json_object *arr;
    size_t n;

    if (!json_object_object_get_ex(o, "isr", &arr) || !json_object_is_type(arr, json_type_array))
        return -EINVAL;
    n = json_object_array_length(arr);
    if (n > FY_CLUSTER_NODES_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char name[FY_NODE_NAME_MAX + 1];
        if (copy_name(name, json_object_array_get_idx(arr, i)) < 0 ||
            fy_chanstate_isr_add(st, name) < 0)
            return -EINVAL; /* a bad or repeated name */
    }
    return 0;
}

int fy_chanstate_decode(const char *json, size_t len, fy_chanstate *st)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, json, (int)len) : NULL, *v;
    uint64_t r = 0;
    int rc = -EINVAL;

    memset(st, 0, sizeof *st);
    if (o && json_object_is_type(o, json_type_object) &&
        json_tokener_get_parse_end(tok) == len &&
        json_object_object_get_ex(o, "leader", &v) && copy_name(st->leader, v) == 0 &&
        get_count(o, "epoch", INT64_MAX, &st->epoch) == 0 &&
        get_count(o, "r", FY_CLUSTER_NODES_MAX, &r) == 0 && decode_isr(o, st) == 0 &&
        (st->nisr == 0 || fy_chanstate_in_isr(st, st->leader)))
        rc = 0;
    st->r = (unsigned)r;
    json_object_put(o);
    if (tok)
        json_tokener_free(tok);
    if (rc < 0)
        memset(st, 0, sizeof *st);
    return rc;
}

static int find(const fy_chanstate *st, const char *node)
{
    for (unsigned i = 0; i < st->nisr; i++)
        if (strcmp(st->isr[i], node) == 0)
            return (int)i;
    return -1;
}

bool fy_chanstate_in_isr(const fy_chanstate *st, const char *node)
{
    return find(st, node) >= 0;
}

int fy_chanstate_isr_add(fy_chanstate *st, const char *node)
{
    if (!fy_node_name_ok(node))
        return -EINVAL;
    if (find(st, node) >= 0)
        return -EEXIST;
    if (st->nisr == FY_CLUSTER_NODES_MAX)
        return -ENOSPC;
    strcpy(st->isr[st->nisr++], node);
    return 0;
}

int fy_chanstate_isr_remove(fy_chanstate *st, const char *node)
{
    int i = find(st, node);

    if (i < 0)
        return -ENOENT;
    memmove(st->isr[i], st->isr[i + 1], (st->nisr - (unsigned)i - 1) * sizeof st->isr[0]);
    st->nisr--;
    /* The slot let go is cleared: states are compared whole (member.c's
     * apply_isr), and a stale name there made a removal of the last
     * member look like no change. */
    memset(st->isr[st->nisr], 0, sizeof st->isr[0]);
    return 0;
}
