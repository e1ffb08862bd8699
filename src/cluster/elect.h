/*
 * elect.h - membership and per-channel leadership of a Ferry cluster, as
 * compare-and-swap transactions on etcd (docs/cluster.md).  Keys, under a
 * prefix (default "/ferry"):
 *   PREFIX/nodes/NODE      {"advertise":"HOST:PORT"}, under the node's lease:
 *                          it exists exactly while the node is alive
 *   PREFIX/channels/CHAN   the channel's state (chanstate.h), no lease: it
 *                          outlives every node
 * A leader is alive while its node key exists, so a failover needs no
 * second ephemeral key: an in-sync follower takes over with one
 * transaction that checks the state is the one it read and the old
 * leader's node key is gone.
 *
 * Blocking calls on the cluster's own thread (etcd.h).  Errors as etcd.h,
 * plus the ones each function names.
 */
#ifndef FERRY_CLUSTER_ELECT_H
#define FERRY_CLUSTER_ELECT_H

#include <stdint.h>

#include "cluster/chanstate.h"
#include "cluster/etcd.h"

#define FY_CLUSTER_PREFIX_DEFAULT "/ferry"

/* Announce node (advertised at advertise) under lease.  -EADDRINUSE when a
 * live process already holds the name under another lease (a restarted
 * node waits for its old lease to run out: never two at once). */
int fy_elect_register(fy_etcd *e, const char *prefix, const char *node, const char *advertise,
                      int64_t lease);
/* The channel's state (st->mod_rev set); -ENOENT when it has none yet. */
int fy_elect_read(fy_etcd *e, const char *prefix, const char *chan, fy_chanstate *st);
/* Is node's key there (the node alive)?  1, 0, or an error. */
int fy_elect_alive(fy_etcd *e, const char *prefix, const char *node);
/* The same, and when alive its advertised HOST:PORT into addr (cap bytes;
 * "" when its value has none). */
int fy_elect_node(fy_etcd *e, const char *prefix, const char *node, char *addr, size_t cap);
/* Try to lead chan as node.  A channel without state gets its first leader
 * (epoch 1, isr {node}, r); a dead leader is replaced by an in-sync node
 * (epoch + 1, isr without the old leader).  *st gets the state after.
 * 0: node leads (now or already); -EBUSY: another node leads and is alive;
 * -EPERM: the leader is dead but node is not in sync (it may not take
 * over: it could lack acknowledged files); -ESTALE: someone else changed
 * the state first (read again). */
int fy_elect_try(fy_etcd *e, const char *prefix, const char *chan, const char *node, unsigned r,
                 fy_chanstate *st);
/* The leader changes the in-sync set: *st is the state it read, with its
 * isr edited.  Written only if unchanged in etcd since it was read and
 * node still leads in it: 0 (st->mod_rev updated), -ESTALE (read again:
 * a newer epoch may mean node is fenced), -EPERM (node does not lead). */
int fy_elect_set_isr(fy_etcd *e, const char *prefix, const char *chan, const char *node,
                     fy_chanstate *st);
/* The leader moves chan to epoch + 1, same leader and in-sync set (a
 * leader that reopened the channel's log: one epoch id never spans two
 * log openings, docs/cluster.md).  *st is the state it read; written only
 * if unchanged since: 0 (*st the new state), -ESTALE, -EPERM. */
int fy_elect_bump(fy_etcd *e, const char *prefix, const char *chan, const char *node,
                  fy_chanstate *st);

#endif
