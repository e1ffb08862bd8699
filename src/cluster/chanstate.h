/*
 * chanstate.h - a channel's replication state as the cluster keeps it in
 * etcd (docs/cluster.md, "Keys"): its leader, the leader's epoch, the
 * in-sync replicas and the replica count R, as one JSON value
 *   {"leader":"n1","epoch":3,"isr":["n1","n2"],"r":2}
 * Only a compare-and-swap changes it (elect.h).  Pure functions: any
 * thread.
 */
#ifndef FERRY_CLUSTER_CHANSTATE_H
#define FERRY_CLUSTER_CHANSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FY_NODE_NAME_MAX 63u /* bytes of a node name: [A-Za-z0-9._-] */
#define FY_CLUSTER_NODES_MAX 16u

typedef struct fy_chanstate {
    char leader[FY_NODE_NAME_MAX + 1];
    uint64_t epoch; /* 1 for the first leader, + 1 at every change of leader */
    char isr[FY_CLUSTER_NODES_MAX][FY_NODE_NAME_MAX + 1];
    unsigned nisr;
    unsigned r;     /* replicas that must store a file before it is acknowledged */
    int64_t mod_rev; /* etcd's revision of the value read (0: not from etcd) */
} fy_chanstate;

/* A node name is 1-63 bytes of [A-Za-z0-9._-]. */
bool fy_node_name_ok(const char *name);
/* The JSON text of st into out (cap bytes): its length, or -ENOSPC. */
int fy_chanstate_encode(const fy_chanstate *st, char *out, size_t cap);
/* Parse len bytes of JSON into *st (mod_rev left 0): 0 or -EINVAL for
 * anything that is not a valid state (bad names, epoch 0, r 0, too many
 * or repeated replicas, a leader missing from a non-empty isr). */
int fy_chanstate_decode(const char *json, size_t len, fy_chanstate *st);
bool fy_chanstate_in_isr(const fy_chanstate *st, const char *node);
/* Add or remove node in the in-sync set: 0, -EEXIST / -ENOENT, -ENOSPC. */
int fy_chanstate_isr_add(fy_chanstate *st, const char *node);
int fy_chanstate_isr_remove(fy_chanstate *st, const char *node);

#endif
