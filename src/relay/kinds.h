/*
 * kinds.h - ferryd's actor kinds: the one table of them.
 *
 * A kind is the number each actor is created with (fy_actor_opts.kind); the
 * trace records it, so trace files, ferry-trace and /metrics all name actors
 * by these numbers.  Numbers are part of the trace format: never reuse or
 * renumber one, only add.  Each user expands FY_RELAY_KINDS with its own X:
 *   X(NAME, number, "name", answers_scrapes)
 * answers_scrapes: the kind answers the metrics actor's FY_STATS_REQ, so it
 * has mailbox figures in /metrics.
 */
#ifndef FY_RELAY_KINDS_H
#define FY_RELAY_KINDS_H

#define FY_RELAY_KINDS(X)                       \
    X(ACCEPTOR, 1, "acceptor", 1)   /* actors/acceptor.c */  \
    X(SESSION, 2, "session", 1)     /* actors/session.c */   \
    X(REGISTRY, 3, "registry", 1)   /* actors/registry.c */  \
    X(WRITER, 4, "writer", 1)       /* actors/writer.c */    \
    X(INDEXER, 5, "indexer", 1)     /* actors/indexer.c */   \
    X(FORWARDER, 6, "forwarder", 1) /* actors/forwarder.c */ \
    X(UPSTREAM, 7, "upstream", 1)   /* actors/upstream.c */  \
    X(REPLICA, 8, "replica", 0)     /* actors/replica.c */   \
    X(METRICS, 16, "metrics", 0)    /* actors/metrics.c */   \
    X(TRACER, 17, "tracer", 0)      /* actors/tracer.c */    \
    X(QUERY, 18, "query", 0)        /* actors/qinfo.c */     \
    X(WATCHDOG, 20, "watchdog", 0)  /* src/relay/watchdog.c */

#define FY__KIND_ENUM(name, num, str, scrape) FY_KIND_##name = num,
enum fy_relay_kind { FY_RELAY_KINDS(FY__KIND_ENUM) };
#undef FY__KIND_ENUM

#endif
