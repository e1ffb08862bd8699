/*
 * watchdog.c - WATCHDOG=1 only while the runtime makes progress (see
 * watchdog.h): the notifier thread, the heartbeat actor, and the test hook
 * that stalls every scheduler thread.
 *
 * Why a round trip through the runtime rather than a timer in the notifier:
 * a thread of its own keeps ticking when every scheduler thread is stuck in
 * a handler (a deadlock, a loop), which is exactly when systemd should
 * restart the relay.  So the notifier only sends WATCHDOG=1 after the
 * heartbeat it asked for one tick ago came back through a scheduler thread,
 * the poller's timer heap and a scheduler thread again.  The notifier asks
 * for one heartbeat at a time, so a stuck relay's mailbox does not grow.
 *
 * The ticks are a quarter of $WATCHDOG_USEC: a heartbeat late by one tick
 * withholds one WATCHDOG=1 and still leaves systemd's deadline two ticks
 * away; a runtime stuck for the whole WatchdogSec misses it.
 *
 * Uses the sd_notify datagram of notify.c (no libsystemd: notify.c says
 * why).
 */
#include "relay/watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/sched.h"
#include "relay/kinds.h"
#include "relay/notify.h"

enum { MSG_BEAT = FY_MSG_USER + 1, MSG_STALL = FY_MSG_USER + 2 };

/* What the notifier and the heartbeat actor share: freed by whichever of
 * the two lets go last (refs). */
struct beat {
    uint64_t answered; /* atomic: the last heartbeat that came back; the actor writes */
    uint32_t refs;     /* atomic */
};

struct fy_watchdog {
    struct beat *beat;
    fy_actor *hb;
    uint64_t tick_ns;
    uint64_t asked; /* notifier only: the last heartbeat asked for */
    pthread_t thr;
    pthread_mutex_t lock; /* guards quit, for the cond */
    pthread_cond_t cond;
    bool quit;
};

static void beat_unref(struct beat *b)
{
    if (ck_pr_faa_32(&b->refs, (uint32_t)-1) == 1)
        free(b);
}

/* ---- the actors: heartbeat and stall ------------------------------------------- */

/* Heartbeat: a beat arms a 1 ms timer, the timer answers.  Stall (the test
 * hook): sleep until the deadline in u64[0] (CLOCK_MONOTONIC ns), then stop. */
static int heartbeat(fy_actor *self, void *state, fy_msg *m)
{
    struct beat *b = state;

    switch (m->type) {
    case MSG_BEAT:
        if (fy_timer_after(self, 1, m->u64[0]) < 0)
            ck_pr_store_64(&b->answered, m->u64[0]); /* no memory is not a stall */
        break;
    case FY_MSG_TIMER:
        ck_pr_store_64(&b->answered, m->u64[0]);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void heartbeat_dtor(void *state)
{
    beat_unref(state);
}

static int stall(fy_actor *self, void *state, fy_msg *m)
{
    (void)state;
    if (m->type == MSG_STALL) {
        uint64_t until = m->u64[0], now;
        while ((now = fy_now_ns()) < until) {
            uint64_t left = until - now;
            struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                                  .tv_nsec = (long)(left % 1000000000u)};
            nanosleep(&ts, NULL);
        }
        fy_actor_stop(self);
    }
    return FY_MSG_DONE;
}

int fy_watchdog_stall(fy_watchdog *w, fy_sched *s, unsigned ms)
{
    /* Two per thread: senders from outside the runtime reach parked
     * threads first, then go round robin, so 2n of them reach every one of
     * n threads, busy or not.  One deadline: a thread that runs two waits
     * no longer. */
    unsigned n = 2 * fy_sched_threads(s);
    uint64_t until = fy_now_ns() + (uint64_t)ms * 1000000u;

    (void)w;
    fy_klog(FY_LOG_WARN, "test hook: stalling every scheduler thread", "threads=%u ms=%u",
            fy_sched_threads(s), ms);
    for (unsigned i = 0; i < n; i++) {
        fy_actor *a = NULL;
        fy_actor_opts o = {.fn = stall, .kind = FY_KIND_WATCHDOG, .label = "stall"};
        if (fy_actor_new(s, &o, &a) < 0)
            return -ENOMEM;
        int rc = fy_actor_post(a, MSG_STALL, 0, until, 0, NULL, NULL);
        fy_actor_unref(a);
        if (rc < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---- the notifier thread ---------------------------------------------------------- */

/* One tick: WATCHDOG=1 if the last heartbeat came back, then ask for the
 * next.  *late counts the ticks since one came back (for the log). */
static void tick(fy_watchdog *w, unsigned *late)
{
    uint64_t got = ck_pr_load_64(&w->beat->answered);

    if (got != w->asked) {
        if ((*late)++ == 0)
            fy_klog(FY_LOG_WARN, "watchdog: no progress from the schedulers",
                    "tick_ms=%llu action=\"withhold WATCHDOG=1 until a heartbeat comes "
                    "back; systemd restarts ferryd after WatchdogSec\"",
                    (unsigned long long)(w->tick_ns / 1000000u));
        return;
    }
    if (*late) {
        fy_klog(FY_LOG_WARN, "watchdog: the schedulers progress again", "late_ticks=%u "
                "action=\"send WATCHDOG=1 again\"", *late);
        *late = 0;
    }
    int rc = fy_notify_send("WATCHDOG=1");
    if (rc < 0)
        fy_klog(FY_LOG_WARN, "sendto($NOTIFY_SOCKET) failed", "state=WATCHDOG=1 err=%s "
                "action=\"try again next tick\"", fy_errname(rc));
    if (fy_actor_post(w->hb, MSG_BEAT, 0, w->asked + 1, 0, NULL, NULL) == 0)
        w->asked++;
}

static void *notifier(void *arg)
{
    fy_watchdog *w = arg;
    unsigned late = 0;
    struct timespec at;

    clock_gettime(CLOCK_MONOTONIC, &at);
    pthread_mutex_lock(&w->lock);
    while (!w->quit) {
        pthread_mutex_unlock(&w->lock);
        tick(w, &late);
        pthread_mutex_lock(&w->lock);
        uint64_t ns = (uint64_t)at.tv_nsec + w->tick_ns;
        at.tv_sec += (time_t)(ns / 1000000000u);
        at.tv_nsec = (long)(ns % 1000000000u);
        while (!w->quit && pthread_cond_timedwait(&w->cond, &w->lock, &at) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- start / stop --------------------------------------------------------------------- */

/* $WATCHDOG_USEC when the watchdog is meant for this process (sd_watchdog_enabled's
 * rules), else 0. */
static unsigned long long wanted_usec(void)
{
    const char *u = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
    char *end;

    if (!u || !*u)
        return 0;
    if (p && *p) {
        unsigned long pid = strtoul(p, &end, 10);
        if (*end || pid != (unsigned long)getpid())
            return 0;
    }
    unsigned long long usec = strtoull(u, &end, 10);
    return *end ? 0 : usec;
}

static int make(fy_sched *s, unsigned long long usec, fy_watchdog *w, char *err, size_t errcap)
{
    pthread_condattr_t ca;

    w->tick_ns = usec / 4 * 1000u;
    if (w->tick_ns < 1000000u)
        w->tick_ns = 1000000u;
    if (!(w->beat = calloc(1, sizeof *w->beat)))
        return -ENOMEM;
    w->beat->refs = 2; /* the notifier's, the actor's (its dtor) */
    fy_actor_opts o = {.fn = heartbeat, .dtor = heartbeat_dtor, .state = w->beat,
                       .kind = FY_KIND_WATCHDOG, .label = "heartbeat"};
    int rc = fy_actor_new(s, &o, &w->hb);
    if (rc < 0) {
        free(w->beat);
        w->beat = NULL;
        snprintf(err, errcap, "watchdog: heartbeat actor: %s", fy_strerror(rc));
        return rc;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    if ((rc = pthread_create(&w->thr, NULL, notifier, w)) != 0) {
        snprintf(err, errcap, "watchdog: pthread_create: %s", strerror(rc));
        return -rc;
    }
    return 0;
}

int fy_watchdog_start(fy_sched *s, fy_watchdog **out, char *err, size_t errcap)
{
    unsigned long long usec = wanted_usec();
    fy_watchdog *w;

    *out = NULL;
    if (!usec)
        return 0;
    if (!(w = calloc(1, sizeof *w)))
        return -ENOMEM;
    int rc = make(s, usec, w, err, errcap);
    if (rc < 0) {
        if (w->hb) {
            fy_actor_stop(w->hb);
            fy_actor_unref(w->hb);
            beat_unref(w->beat);
            pthread_cond_destroy(&w->cond);
            pthread_mutex_destroy(&w->lock);
        }
        free(w);
        return rc;
    }
    fy_klog(FY_LOG_INFO, "watchdog on", "watchdog_usec=%llu tick_ms=%llu", usec,
            (unsigned long long)(w->tick_ns / 1000000u));
    *out = w;
    return 0;
}

unsigned long long fy_watchdog_tick_usec(const fy_watchdog *w)
{
    return w ? w->tick_ns / 1000u : 0;
}

void fy_watchdog_stop(fy_watchdog *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thr, NULL);
    fy_actor_stop(w->hb);
    fy_actor_unref(w->hb);
    beat_unref(w->beat);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
