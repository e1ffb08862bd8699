/*
 * relay.h - the relay as one object: what ferryd (and tests) start and stop.
 *
 * fy_relay_new() binds the listening socket and prepares the buffer pool
 * and the scheduler; fy_relay_start() starts the threads and the acceptor
 * and registry actors; fy_relay_stop() runs the orderly shutdown (stop
 * accepting, let sessions flush and say bye, sync every channel's log,
 * let forwarders finish and say bye) and joins the threads.  Call all four
 * from one thread, in that order.
 */
#ifndef FERRY_ACTORS_RELAY_H
#define FERRY_ACTORS_RELAY_H

#include <stddef.h>

#include "relay/auth.h"
#include "relay/conf.h"

typedef struct fy_relay fy_relay;

/* Create the data directories, the pool and the scheduler, and bind.
 * conf and auth (may be NULL) must outlive the relay.  Returns 0, or
 * -errno with a message in err. */
int fy_relay_new(const fy_conf *conf, const fy_auth *auth, fy_relay **out, char *err,
                 size_t errcap);

/* The bound address as "HOST:PORT" (port 0 resolved). */
void fy_relay_bound(const fy_relay *r, char *buf, size_t cap);

/* Start the scheduler threads and begin accepting (and serving /metrics
 * when conf->metrics is set).  0 or -errno with a message in err. */
int fy_relay_start(fy_relay *r, char *err, size_t errcap);

/* "HOST:PORT" of the /metrics listener once started, or NULL when off. */
const char *fy_relay_metrics_bound(const fy_relay *r);

/* Orderly shutdown, forced after timeout_ms.  Returns 0, or -ETIMEDOUT when
 * it had to force (actors still busy were stopped). */
int fy_relay_stop(fy_relay *r, unsigned timeout_ms);

/* Write the flight recorder (the scheduler's trace rings) to
 * DATA/trace-<UTC time>.trace; path gets the name.  Any time after start
 * (main thread, not a signal handler); 0 or -errno. */
int fy_relay_trace(fy_relay *r, char *path, size_t cap);

/* Free a stopped (or never started) relay. */
void fy_relay_free(fy_relay *r);

#endif
