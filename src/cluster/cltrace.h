/*
 * cltrace.h - a relay's view of the cluster, as events in its actor trace
 * (docs/trace-format.md, FY_TR_META_CLUSTER; ferry-trace shows them).
 *
 * The member's callback (member.h, fy_member_cb) hands every view of a
 * channel here; this module remembers the last one per channel and turns
 * the difference into one event: the channel first seen or its leader or
 * epoch changed (LEADER), a new leader that took over from another in a
 * newer epoch (FAILOVER), or only the in-sync set changed (ISR).  Other
 * parts of the relay record their own cluster decisions directly with
 * fy_trace_cluster(sched, FY_TR_CL_NOTE, epoch, "channel=C ...").
 */
#ifndef FERRY_CLUSTER_CLTRACE_H
#define FERRY_CLUSTER_CLTRACE_H

#include "cluster/member.h"
#include "ferry/trace.h"

typedef struct fy_cltrace fy_cltrace;

/* Events go to s's trace.  0 or -ENOMEM. */
int fy_cltrace_new(fy_sched *s, fy_cltrace **out);
/* NULL ignored.  After the member that calls fy_cltrace_view stopped. */
void fy_cltrace_free(fy_cltrace *t);

/* A member's view of one channel (the member's thread only; t NULL:
 * nothing).  Records at most one event; none when nothing this module
 * tracks changed. */
void fy_cltrace_view(fy_cltrace *t, const fy_member_view *v);

/* The leader's own in-sync decision, for the relay code that makes it
 * (the replica lag check, before fy_member_set_insync): one NOTE event
 * `channel=C node=N isr=in|out why=W` in epoch.  The member's view of the
 * change follows as an ISR event once etcd holds it.  Any thread; s NULL
 * or why NULL allowed. */
void fy_cltrace_isr_ask(fy_sched *s, const char *chan, uint64_t epoch, const char *node, bool in,
                        const char *why);

#endif
