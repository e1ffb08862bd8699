/*
 * member.h - a relay's membership in a cluster: its lease, its node key,
 * and, for every channel it serves, who leads (docs/cluster.md).  One
 * thread of its own does every etcd call; the relay learns of changes
 * through a callback and asks, on any thread, whether it may acknowledge.
 *
 * Failover prefers the most advanced replica: every member publishes, under
 * its lease, how far it has stored each channel (epoch, seq); when a leader
 * is gone, an in-sync member tries to take over at once only if no live
 * in-sync member has stored more (ties: the smaller name), and any in-sync
 * member tries once the leader has been gone for two polls.
 */
#ifndef FERRY_CLUSTER_MEMBER_H
#define FERRY_CLUSTER_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/chanstate.h"

typedef struct fy_member fy_member;

/* What a member knows of one channel, as of its last poll. */
typedef struct fy_member_view {
    const char *chan;
    bool leading;          /* this node leads in the current epoch */
    const fy_chanstate *st; /* leader, epoch, in-sync set, r */
    const char *leader_addr; /* the leader's advertised HOST:PORT; "" unknown */
} fy_member_view;

#define FY_MEMBER_ADDR_MAX 300 /* bytes of an advertised address, NUL included */

/* Who leads a channel, for a relay that must redirect a client (any
 * thread; a copy as of the last poll). */
typedef struct fy_member_lead {
    bool known;   /* read from etcd since the channel was served */
    bool leading; /* this node leads it */
    uint64_t epoch;
    char leader[FY_NODE_NAME_MAX + 1];
    char addr[FY_MEMBER_ADDR_MAX]; /* the leader's advertised HOST:PORT; "" unknown */
} fy_member_lead;

/* Called on the member's thread whenever a channel's leader, epoch or
 * in-sync set changes (and once when first read). */
typedef void (*fy_member_cb)(void *arg, const fy_member_view *v);
/* How far this node has stored chan: the epoch and seq of its last stored
 * frame (0, 0: nothing).  Called on the member's thread. */
typedef void (*fy_member_progress_fn)(void *arg, const char *chan, uint64_t *epoch,
                                      uint64_t *seq);

typedef struct fy_member_conf {
    const char *endpoints; /* etcd: "http://H:P[,...]" */
    const char *prefix;    /* NULL: FY_CLUSTER_PREFIX_DEFAULT */
    const char *node;      /* this relay's name */
    const char *advertise; /* HOST:PORT clients and peers reach it at */
    int ttl_s;             /* lease TTL, >= 2 */
    unsigned r;            /* replica count for channels it creates */
    unsigned poll_ms;      /* 0: ttl/8 */
    fy_member_cb changed;
    fy_member_progress_fn progress;
    void *arg;
} fy_member_conf;

/* Take a lease, register the node (waiting, up to one TTL, for a previous
 * process of the same name to lose its lease) and start polling.  The
 * strings in conf are copied.  0, -EINVAL, -EADDRINUSE (the name is held
 * by a live process), or etcd.h's errors. */
int fy_member_start(const fy_member_conf *conf, fy_member **out);
/* Stop polling; with crash, leave the lease to expire (as a kill -9 would),
 * else revoke it so others take over at once.  Joins the thread. */
void fy_member_stop(fy_member *m, bool crash);

/* Serve chan: follow its state, and lead it if it has no leader yet (any
 * thread).  0, -EINVAL, -ENOSPC (too many channels), -ENOMEM. */
int fy_member_serve(fy_member *m, const char *chan);
/* The leader puts node in (or out of) chan's in-sync set (any thread; done
 * by the next poll).  -EPERM when this node does not lead chan. */
int fy_member_set_insync(fy_member *m, const char *chan, const char *node, bool in);
/* This node leads chan in epoch and has just opened its log: move chan to
 * epoch + 1 (done by the next poll, at once; the callback then tells of the
 * new epoch).  Any thread.  0, or -EPERM when this node does not lead chan
 * in that epoch. */
int fy_member_bump(fy_member *m, const char *chan, uint64_t epoch);
/* May this node acknowledge a frame of chan in epoch, now?  It leads chan
 * in that epoch as of its last poll, its lease is held until after
 * now_ns, the in-sync set has at least r members, and no peer named a
 * newer epoch (fy_member_saw_epoch).  Any thread. */
bool fy_member_may_ack(fy_member *m, const char *chan, uint64_t epoch, uint64_t now_ns);
/* A peer named epoch for chan (a replica hello of a newer epoch than this
 * node leads in): from now on may_ack is false for every older epoch, and
 * the state is read again at once (any thread). */
void fy_member_saw_epoch(fy_member *m, const char *chan, uint64_t epoch);
/* A copy of chan's state as of the last poll: 0 or -ENOENT. */
int fy_member_state(fy_member *m, const char *chan, fy_chanstate *st);
/* Takeovers this member won, for metrics. */
uint64_t fy_member_failovers(fy_member *m);
/* chan's leader as of the last poll: 0, or -ENOENT when chan is not
 * served (then *out is zeroed).  out->known is false until the first poll
 * after fy_member_serve.  While this node leads chan but its lease has run
 * out (cut off from etcd), out->leading is false and leader/addr are empty:
 * it cannot tell who leads now. */
int fy_member_lead_of(fy_member *m, const char *chan, fy_member_lead *out);
/* The i-th served channel's name (into chan, cap bytes) and leader, for
 * metrics: 0, or -ENOENT past the last one. */
int fy_member_lead_at(fy_member *m, unsigned i, char *chan, size_t cap, fy_member_lead *out);
/* Is the lease held at now_ns (any thread)? */
bool fy_member_lease_held(fy_member *m, uint64_t now_ns);
/* This node's name (as configured). */
const char *fy_member_node(const fy_member *m);

#endif
