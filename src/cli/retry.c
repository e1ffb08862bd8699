/*
 * retry.c - reconnect policy of the client (see retry.h).
 *
 * Jitter: each wait is drawn from [d/2, d) where d doubles per attempt, so
 * the senders and receivers a restarted relay lost do not all come back in
 * the same millisecond.
 */
#include "cli/retry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "cli/ident.h"
#include "cli/redirect.h"

#define RETRY_SLICE_MS 50 /* sleep in slices, to notice a stop */

void fy_cli_retry_init(fy_cli_retry *r, unsigned max)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *r = (fy_cli_retry){.max = max,
                        .rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull};
}

bool fy_cli_retry_transient(int err, bool reconnecting)
{
    if (err >= 0 || err == -EINTR || err == -EINVAL || err == -ENOMEM || err == -EPROTONOSUPPORT)
        return false;
    switch (-err) {
    case FY_ESHUTDOWN:
    case FY_ENOSPACE:
    case FY_ESTORAGE: /* a failed write or sync on the relay: its next try may work */
    case FY_ENOTLEADER: /* a cluster whose leader is unknown or unreachable for now */
        return true;
    case FY_EBUSY:
        return reconnecting;
    default:
        /* every other FY_E* is a refusal or a broken stream; every other
         * errno is the network */
        return -err < 1000;
    }
}

static uint64_t next_rand(fy_cli_retry *r)
{
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Did this thread's last fy_cli_dial meet a cluster in failover (a relay
 * that answered FY_ENOTLEADER)?  Per thread, like the list's last good
 * address: each transfer thread dials and waits on its own. */
static _Thread_local bool cluster_failover;

long fy_cli_retry_cap_ms(void)
{
    return cluster_failover ? FY_CLI_RETRY_CLUSTER_MS : FY_CLI_RETRY_MAX_MS;
}

int fy_cli_retry_wait(fy_cli_retry *r, fy_cli_cancel *cancel)
{
    if (r->failed >= r->max)
        return -ETIMEDOUT;
    long d = FY_CLI_RETRY_MIN_MS;
    long cap = fy_cli_retry_cap_ms();
    for (unsigned i = 0; i < r->failed && d < cap; i++)
        d *= 2;
    d = d > cap ? cap : d;
    long ms = d / 2 + (long)(next_rand(r) % (uint64_t)(d / 2));
    r->failed++;
    r->total++;
    for (long left = ms; left > 0; left -= RETRY_SLICE_MS) {
        if (cancel && fy_cli_cancel_requested(cancel))
            return -EINTR;
        long s = left < RETRY_SLICE_MS ? left : RETRY_SLICE_MS;
        struct timespec ts = {0, s * 1000000L};
        nanosleep(&ts, NULL);
    }
    return cancel && fy_cli_cancel_requested(cancel) ? -EINTR : 0;
}

void fy_cli_retry_progress(fy_cli_retry *r)
{
    r->failed = 0;
}

/* One address: connect, hello, and the older relay's flag fallback. */
static int dial_one(const char *server, int timeout_ms, const fy_cli_tls *tls,
                    fy_cli_cancel *cancel, const fy_hello *h, fy_cli_conn **k, fy_welcome *w,
                    const char **what)
{
    fy_hello hh = *h;
    if (!hh.client[0] && fy_cli_client_name()[0]) { /* who we are, for the relay's logs */
        snprintf(hh.client, sizeof hh.client, "%s", fy_cli_client_name());
        hh.flags |= FY_HELLO_F_CLIENT;
    }
    for (int round = 0;; round++) {
        *what = "connect";
        int rc = fy_cli_conn_open_timeout(server, timeout_ms, tls, cancel, k);
        if (rc < 0)
            return rc;
        *what = "hello";
        rc = fy_cli_conn_hello(*k, &hh, timeout_ms, w);
        /* An older relay refuses a flag bit it does not know (FY_EPAYLOAD),
         * or the hello the AHEAD fields made longer than it allows.  The
         * newest flag goes first, so a relay that knows the resume flags
         * keeps them. */
        if ((rc != -FY_EPAYLOAD && rc != -FY_EOVERSIZE) || !hh.flags || round > 1)
            return rc;
        const uint16_t newer = FY_HELLO_F_NOTICE | FY_HELLO_F_CLIENT | FY_HELLO_F_SKIP;
        if (round == 0 && (hh.flags & newer) && (hh.flags & ~newer)) {
            fy_klog(FY_LOG_INFO, "relay does not know notices: saying hello without them",
                    "server=%s effect=\"an edge relay's skipped files are not reported, "
                    "deleted files are sent, the client name is not shown\"", server);
            hh.flags &= (uint16_t)~newer;
        } else {
            fy_klog(FY_LOG_INFO, "relay does not know the resume flags: saying hello without "
                    "them", "server=%s effect=\"a lost connection restarts the file in "
                    "progress; a receiver ahead of the relay's log gets FY_ENOSEQ\"", server);
            hh.flags = 0;
        }
        fy_cli_conn_close(*k, false);
        *k = NULL;
    }
}

/* ---- clusters: address lists and redirects -------------------------------------- */

int fy_cli_redirect_follow(const char *at, const char *chan, fy_cli_conn *k, unsigned hop,
                           char *next, size_t cap, bool *stale)
{
    fy_cli_redirect r;
    uint64_t seen;

    if (fy_cli_redirect_parse(fy_cli_conn_error_text(k), &r) == -ENOENT) {
        /* The relay does not know who leads (e.g. it lost etcd and fenced
         * itself): another address of the list may be the new leader. */
        *stale = true;
        return 0;
    }
    if (hop == FY_CLI_REDIRECTS_MAX)
        return 0;
    if (!fy_cli_epoch_admit(chan, r.epoch, &seen)) {
        fy_klog(FY_LOG_WARN, "redirect from an older cluster epoch not followed",
                "server=%s channel=%s leader=%s addr=%s epoch=%llu seen_epoch=%llu "
                "action=\"next address, or back off\"", at, chan, r.leader, r.addr,
                (unsigned long long)r.epoch, (unsigned long long)seen);
        *stale = true;
        return 0;
    }
    fy_klog(FY_LOG_INFO, "redirected to the channel's leader", "server=%s leader=%s addr=%s "
            "epoch=%llu hop=%u", at, r.leader[0] ? r.leader : "?", r.addr,
            (unsigned long long)r.epoch, hop + 1);
    snprintf(next, cap, "%s", r.addr);
    return 1;
}

/* server, then the leaders its FY_ENOTLEADER answers name.  *stale: the
 * last answer was not followed, because it named an epoch older than one
 * this run has seen for the channel (redirect.h) or no leader at all; the
 * caller tries the next address of its list. */
static int dial_leader(const char *server, int timeout_ms, const fy_cli_tls *tls,
                       fy_cli_cancel *cancel, const fy_hello *h, fy_cli_conn **k, fy_welcome *w,
                       const char **what, bool *stale)
{
    char at[256];

    *stale = false;
    snprintf(at, sizeof at, "%s", server);
    for (unsigned hop = 0;; hop++) {
        int rc = dial_one(at, timeout_ms, tls, cancel, h, k, w, what);
        if (rc == -FY_ENOTLEADER)
            cluster_failover = true;
        if (rc != -FY_ENOTLEADER) {
            if (hop && rc < 0)
                *what = "hello"; /* a cluster is there: retried, not a wrong address */
            return rc;
        }
        if (fy_cli_redirect_follow(at, h->channel, *k, hop, at, sizeof at, stale) == 0)
            return rc; /* *what is "hello" */
        fy_cli_conn_close(*k, false);
        *k = NULL;
    }
}

int fy_cli_dial(const char *server, int timeout_ms, const fy_cli_tls *tls, fy_cli_cancel *cancel,
                const fy_hello *h, fy_cli_conn **k, fy_welcome *w, const char **what)
{
    /* The address of the list that welcomed this thread last: a reconnect
     * goes there first rather than through the list's dead ones again. */
    static _Thread_local char good[256];
    char item[256];
    size_t n = 0, start = 0;
    int rc = -EINVAL;
    bool stale;

    cluster_failover = false;

    if (!strchr(server, ','))
        return dial_leader(server, timeout_ms, tls, cancel, h, k, w, what, &stale);
    for (const char *p = server; *p; n++) {
        size_t len = strcspn(p, ",");
        if (good[0] && len == strlen(good) && strncmp(p, good, len) == 0)
            start = n;
        p += len + (p[len] == ',');
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = server;
        for (size_t j = (start + i) % n; j > 0; j--)
            p += strcspn(p, ",") + 1;
        snprintf(item, sizeof item, "%.*s", (int)strcspn(p, ","), p);
        if (i > 0) {
            fy_cli_conn_close(*k, false);
            *k = NULL;
        }
        rc = dial_leader(item, timeout_ms, tls, cancel, h, k, w, what, &stale);
        if (rc == 0)
            snprintf(good, sizeof good, "%s", item);
        if (rc == 0 || (strcmp(*what, "connect") != 0 && !stale) || rc == -EINTR ||
            rc == -EINVAL)
            return rc;
        if (i + 1 < n && !stale)
            fy_klog(FY_LOG_INFO, "relay unreachable: trying the next address", "server=%s err=%s "
                    "next=%d of=%zu", item, fy_errname(rc), (int)((start + i + 1) % n) + 1, n);
    }
    return rc;
}
