/*
 * lease.h - a relay's lease in etcd, kept alive by a thread of its own
 * (docs/cluster.md).  The lease is what makes a relay a member: its node key
 * lives under it, and a leader may acknowledge only while it holds it.
 *
 * The holder's deadline is counted from when a renewal was SENT plus the
 * TTL etcd granted, never from when the answer came: a renewal answered
 * late can only make the relay believe it has less time than etcd gives
 * it, never more.  Renewals go every TTL/3; a failed one is retried every
 * TTL/10 until etcd answers.  When etcd answers that the lease is gone, it
 * is lost for good (a new member needs a new lease).
 */
#ifndef FERRY_CLUSTER_LEASE_H
#define FERRY_CLUSTER_LEASE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fy_lease fy_lease;

/* Grant a lease of ttl_s seconds (>= 2) on the etcd at endpoints and start
 * renewing it.  0, -EINVAL, or etcd.h's errors (nothing started). */
int fy_lease_start(const char *endpoints, int ttl_s, fy_lease **out);
/* Stop renewing; revoke it (its keys go at once) unless a crash is being
 * simulated.  Joins the thread. */
void fy_lease_stop(fy_lease *l, bool revoke);

/* Any thread. */
int64_t fy_lease_id(const fy_lease *l);
/* The deadline (fy_now_ns clock) up to which the lease is surely held. */
uint64_t fy_lease_deadline_ns(const fy_lease *l);
/* now_ns < deadline and not lost: may a leader acknowledge at now_ns? */
bool fy_lease_held(const fy_lease *l, uint64_t now_ns);
/* etcd answered that the lease is gone. */
bool fy_lease_lost(const fy_lease *l);
/* Renewals that etcd answered, for metrics and tests. */
uint64_t fy_lease_renewals(const fy_lease *l);

#endif
