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

#include "ferry/actor.h"
#include "relay/auth.h"
#include "relay/conf.h"

typedef struct fy_relay fy_relay;

/* Create the data directories, the pool and the scheduler, and bind.
 * conf and auth (may be NULL) must outlive the relay; fy_relay_set_auth
 * replaces auth later.  Returns 0, or
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

/* Orderly shutdown.  When it is not done after timeout_ms, receivers still
 * being sent are cut at their next frame boundary and sent a bye, and up to
 * 1 s later every actor is stopped.  Returns 0 (also when the cut let it
 * finish), or -ETIMEDOUT when it had to force (actors still busy were
 * stopped). */
int fy_relay_stop(fy_relay *r, unsigned timeout_ms);

/* Replace the token table (SIGHUP): hellos read from now on are checked
 * against a (NULL: everyone may publish and subscribe); connections that
 * passed their hello keep going.  The relay takes a.  A table it replaces
 * that it took earlier is freed once no session can be reading it
 * (fy_auth_retire: this call waits for that grace period, a few
 * microseconds); the one given to fy_relay_new stays the caller's.  Main
 * thread, after fy_relay_start.  Returns 0. */
int fy_relay_set_auth(fy_relay *r, fy_auth *a);

/* The token table in force (main thread). */
const fy_auth *fy_relay_auth(const fy_relay *r);

/* How many replaced tables are still allocated: 1 when the caller's table
 * (fy_relay_new's) was replaced, else 0 (for the log). */
size_t fy_relay_auth_generations(const fy_relay *r);

/* How many replaced tables the relay has freed so far (for the log). */
size_t fy_relay_auth_freed(const fy_relay *r);

/* Write the flight recorder (the scheduler's trace rings) to
 * DATA/trace-<UTC time>.trace; path gets the name.  Any time after start
 * (main thread, not a signal handler); 0 or -errno. */
int fy_relay_trace(fy_relay *r, char *path, size_t cap);

/* The relay's scheduler (for ferryd's watchdog heartbeat), after
 * fy_relay_new. */
fy_sched *fy_relay_sched(fy_relay *r);

/* SIGHUP: read the listener's certificate, key and client CAs again from
 * the files the relay started with (tls-cert, tls-key, tls-client-ca; new
 * paths need a restart).  New handshakes use them; connections already
 * made keep the old ones.  1 with the new certificate in desc
 * ("sha256=... not_after=..."), 0 when the listener has no TLS, or a
 * negative error with the reason in err and the old ones kept.  Main
 * thread, after fy_relay_start. */
int fy_relay_reload_tls(fy_relay *r, char *desc, size_t desccap, char *err, size_t errcap);

/* --cluster: the relay takes m (ferryd started it once the relay was
 * bound) and gives it to its actors; fy_relay_stop stops it after them,
 * revoking its lease so other relays know at once.  Main thread, between
 * fy_relay_new and fy_relay_start. */
struct fy_member;
void fy_relay_set_member(fy_relay *r, struct fy_member *m);

/* --cluster: a channel's leader, epoch or in-sync set changed (the
 * member's callback; any thread): the replica manager reads the member's
 * table again and tells each writer to lead or whom to follow. */
void fy_relay_cluster_changed(fy_relay *r);

/* --cluster: how far this relay has stored chan as a follower (the epoch
 * and seq of its last stored frame; 0, 0: nothing known), for the member's
 * progress callback (any thread). */
void fy_relay_progress(fy_relay *r, const char *chan, uint64_t *epoch, uint64_t *seq);

/* Free a stopped (or never started) relay. */
void fy_relay_free(fy_relay *r);

#endif
