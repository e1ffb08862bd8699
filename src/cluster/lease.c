/*
 * lease.c - the lease keeper's thread (see lease.h).
 *
 * Its state is read on scheduler threads (may the leader ack?) and written
 * here, through C11 atomics rather than ck_pr: ThreadSanitizer sees C11
 * atomics, and these few words are not on a hot path.  The thread sleeps on
 * a condition variable so that a stop wakes it at once.
 */
#include "cluster/lease.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cluster/etcd.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/sched.h"

#define NS 1000000000ull

struct fy_lease {
    fy_etcd *etcd;
    int64_t id;
    int ttl_s;
    _Atomic uint64_t deadline;
    _Atomic uint64_t renewals;
    atomic_bool lost;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;       /* under mu */
};

/* Wait up to ns or until stopped: true when stopped. */
static bool nap(fy_lease *l, uint64_t ns)
{
    struct timespec ts;
    bool stop;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ns / NS);
    ts.tv_nsec += (long)(ns % NS);
    if (ts.tv_nsec >= (long)NS) {
        ts.tv_sec++;
        ts.tv_nsec -= (long)NS;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
        ;
    stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    return stop;
}

/* One renewal: 0, -ENOENT (lost), or a transport error (retry soon). */
static int renew(fy_lease *l)
{
    uint64_t sent = fy_now_ns();
    int ttl = 0, rc = fy_etcd_lease_keepalive(l->etcd, l->id, &ttl);

    if (rc == 0) {
        atomic_store(&l->deadline, sent + (uint64_t)ttl * NS);
        atomic_fetch_add(&l->renewals, 1);
    }
    return rc;
}

static void *run(void *arg)
{
    fy_lease *l = arg;
    uint64_t every = (uint64_t)l->ttl_s * NS / 3, retry = (uint64_t)l->ttl_s * NS / 10;
    uint64_t wait = every;

    while (!nap(l, wait)) {
        int rc = renew(l);
        if (rc == -ENOENT) {
            atomic_store(&l->lost, true);
            fy_klog(FY_LOG_ERROR, "cluster lease lost", "lease=%lld endpoint=%s action=\"stop "
                    "acknowledging; rejoin with a new lease\"", (long long)l->id,
                    fy_etcd_endpoint(l->etcd));
            break;
        }
        if (rc < 0 && wait != retry)
            fy_klog(FY_LOG_WARN, "cluster lease not renewed", "lease=%lld err=%s action=\"retry "
                    "every %llu ms until the deadline\"", (long long)l->id, fy_errname(rc),
                    (unsigned long long)(retry / 1000000));
        wait = rc == 0 ? every : retry;
    }
    return NULL;
}

int fy_lease_start(const char *endpoints, int ttl_s, fy_lease **out)
{
    fy_lease *l;
    uint64_t sent = fy_now_ns();
    int rc;

    *out = NULL;
    if (ttl_s < 2)
        return -EINVAL;
    l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->ttl_s = ttl_s;
    pthread_mutex_init(&l->mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&l->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    /* Each request waits at most a third of the TTL: a renewal that takes
     * longer is worth less than the next try. */
    rc = fy_etcd_open(endpoints, ttl_s * 1000 / 3, &l->etcd);
    if (rc == 0)
        rc = fy_etcd_lease_grant(l->etcd, ttl_s, &l->id);
    if (rc == 0) {
        atomic_store(&l->deadline, sent + (uint64_t)ttl_s * NS);
        rc = -pthread_create(&l->thread, NULL, run, l);
    }
    if (rc < 0) {
        fy_etcd_close(l->etcd);
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void fy_lease_stop(fy_lease *l, bool revoke)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    if (revoke && !atomic_load(&l->lost))
        fy_etcd_lease_revoke(l->etcd, l->id);
    fy_etcd_close(l->etcd);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int64_t fy_lease_id(const fy_lease *l)
{
    return l->id;
}

uint64_t fy_lease_deadline_ns(const fy_lease *l)
{
    return atomic_load(&((fy_lease *)l)->deadline);
}

bool fy_lease_held(const fy_lease *l, uint64_t now_ns)
{
    return !fy_lease_lost(l) && now_ns < fy_lease_deadline_ns(l);
}

bool fy_lease_lost(const fy_lease *l)
{
    return atomic_load(&((fy_lease *)l)->lost);
}

uint64_t fy_lease_renewals(const fy_lease *l)
{
    return atomic_load(&((fy_lease *)l)->renewals);
}
