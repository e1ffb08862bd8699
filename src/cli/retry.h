/*
 * retry.h - when and how long `ferry send` and `ferry recv` wait before
 * they reconnect to a relay they lost (--retry, --retries N).
 *
 * Only a connection that was welcomed and then lost is retried: a relay
 * that restarts, a cut link, a relay shutting down (FY_ESHUTDOWN), out of
 * storage (FY_ENOSPACE) or whose storage failed (FY_ESTORAGE), and, while
 * reconnecting, a relay that still holds our old connection (FY_EBUSY).  The first connect of a run is not retried,
 * so a wrong address fails at once.  Waits grow exponentially with jitter,
 * 0.2 s .. 10 s, and a run gives up after `max` attempts in a row that made
 * no progress (exit 2 then, as before).  Progress: a file acknowledged or
 * bytes stored (send), frames received (recv), or a connection that stayed
 * up FY_CLI_RETRY_UP_MS (recv: a quiet channel sends nothing).
 */
#ifndef FY_CLI_RETRY_H
#define FY_CLI_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/cancel.h"
#include "cli/conn.h"
#include "ferry/proto.h"

#define FY_CLI_RETRIES_DEFAULT 8u
#define FY_CLI_RETRY_MIN_MS 200
#define FY_CLI_RETRY_MAX_MS 10000
/* The longest wait after a dial that met a cluster in failover (a relay
 * answered FY_ENOTLEADER): the new leader is elected within the cluster's
 * TTL, and a backoff grown to seconds meanwhile would add them to every
 * failover (bench/run's failover_s: 10.6 s at TTL 5 before this). */
#define FY_CLI_RETRY_CLUSTER_MS 500
/* A connection that stayed up this long was not a failed attempt, even if
 * nothing came over it (a receiver on a quiet channel). */
#define FY_CLI_RETRY_UP_MS 1000

typedef struct fy_cli_retry {
    unsigned max;      /* attempts in a row without progress; 0 = never retry */
    unsigned failed;   /* attempts in a row so far */
    unsigned total;    /* reconnects made (for the summary line) */
    uint64_t rng;      /* jitter state */
} fy_cli_retry;

/* A policy of `max` attempts (0 disables). */
void fy_cli_retry_init(fy_cli_retry *r, unsigned max);

/* Is err (negative errno or FY_E*) a lost connection worth another
 * attempt?  reconnecting: the error came while reconnecting (then
 * FY_EBUSY, our own old connection not yet gone, counts too). */
bool fy_cli_retry_transient(int err, bool reconnecting);

/* Wait before the next attempt.  Returns 0, -ETIMEDOUT when the attempts
 * are used up (nothing waited), or -EINTR when a stop was requested. */
int fy_cli_retry_wait(fy_cli_retry *r, fy_cli_cancel *cancel);

/* The connection made progress: the next loss starts a fresh count. */
void fy_cli_retry_progress(fy_cli_retry *r);

/* Connect to server (within timeout_ms) and say hello h (its welcome
 * within timeout_ms too).  A hello with FY_HELLO_F_RESUME that a relay
 * older than the flag refuses (FY_EPAYLOAD) is said again without it on a
 * new connection, so *w then has no extension.  Always sets *k (close it
 * with fy_cli_conn_close) and *what ("connect" or "hello", for
 * fy_cli_conn_fail).  tls: NULL (or its ctx NULL) = plaintext.  Returns 0
 * or what fy_cli_conn_open_timeout/hello returned.
 *
 * A cluster (docs/cluster.md): server may be a list "A,B,C", tried in
 * order while an address cannot be connected to (starting, in this
 * thread, with the one that welcomed it last); a relay that answers
 * FY_ENOTLEADER is left for the leader its error names, at once and at
 * most FY_CLI_REDIRECTS_MAX times in a row.  A redirect that leads
 * nowhere (no address, a leader that cannot be connected to, too many
 * hops) returns with *what "hello", so callers retry it as a relay that
 * is there but not ready (fy_cli_retry_transient).  A redirect naming a
 * cluster epoch older than one this run has seen for the channel is not
 * followed (redirect.h): the list's next address is tried instead, and
 * after the last one the caller's backoff.  A dial that met FY_ENOTLEADER
 * keeps this thread's next fy_cli_retry_wait at most
 * FY_CLI_RETRY_CLUSTER_MS. */
#define FY_CLI_REDIRECTS_MAX 4
/* After an FY_ENOTLEADER answer on chan from the relay at `at` (k holds
 * its error frame), hop redirects in: 1, and the leader's address in next
 * (cap bytes; may be at itself), when it is to be followed (logged); 0
 * when not -- *stale is then set when the next address of a list should
 * be tried instead (a redirect of an older epoch than one seen for chan,
 * or one that names no leader), not set after FY_CLI_REDIRECTS_MAX hops. */
int fy_cli_redirect_follow(const char *at, const char *chan, fy_cli_conn *k, unsigned hop,
                           char *next, size_t cap, bool *stale);
/* The longest wait fy_cli_retry_wait may take now, in this thread. */
long fy_cli_retry_cap_ms(void);
int fy_cli_dial(const char *server, int timeout_ms, const fy_cli_tls *tls, fy_cli_cancel *cancel,
                const fy_hello *h, fy_cli_conn **k, fy_welcome *w, const char **what);

#endif
