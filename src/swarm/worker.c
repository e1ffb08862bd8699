/*
 * worker.c - one swarm worker thread: its epoll loop, timers, fairness,
 * and the small connection helpers every kind of connection uses.
 *
 * Sockets are non-blocking and edge-triggered, so a connection handles
 * an event by reading or writing until EAGAIN.  To keep one fast stream
 * from starving the rest of the thread, a connection moves at most
 * FY__TURN_BYTES per turn; if it had more to do it goes on the pending
 * list and the loop polls epoll without sleeping until the list is empty.
 * Timers (rate pacing, slow readers' token refill, churn rejoin) are a
 * wake_at per connection, scanned each turn: runs have at most a few
 * thousand of them and the scan is cheap next to the system calls.
 * Each connection's socket, handshake and control queue is a link
 * (src/link); the worker only decides when to call it.
 */
#include "swarm/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/klog.h"

uint64_t fy__swarm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void fy__chan_name(const fy_swarm_cfg *cfg, uint32_t chan, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-c%u", cfg->chan_prefix, chan);
}

/* ---- connection helpers ----------------------------------------------- */

void fy__swarm_conn_init(fy__swarm_conn *c, int kind, fy__worker *w)
{
    *c = (fy__swarm_conn){.tag = FY__TAG_CONN, .kind = kind, .w = w};
    fy_link_init(&c->link);
}

/* Register fd edge-triggered for reading and writing; item is the
 * fy__swarm_conn or fy__out that handles its events. */
int fy__swarm_conn_watch(fy__worker *w, int fd, void *item)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = item};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    return 0;
}

int fy__swarm_conn_connect(fy__swarm_conn *c, size_t max_payload)
{
    const fy_swarm_cfg *cfg = c->w->sw->cfg;
    int fd = fy_link_connect(&c->link, &cfg->target, max_payload);
    if (fd < 0)
        return fd;
    int rc = cfg->tls ? fy_link_tls(&c->link, cfg->tls, cfg->tls_name) : 0;
    if (rc == 0)
        rc = fy__swarm_conn_watch(c->w, fd, c);
    if (rc < 0)
        fy_link_close(&c->link);
    return rc;
}

int fy__swarm_conn_hello(fy__swarm_conn *c, uint8_t role, uint32_t chan, uint8_t mode,
                         uint64_t from)
{
    const fy_swarm_cfg *cfg = c->w->sw->cfg;
    fy_hello h = {.role = role, .mode = mode, .resume_from = from};

    fy__chan_name(cfg, chan, h.channel, sizeof h.channel);
    snprintf(h.token, sizeof h.token, "%s", cfg->token);
    return fy_link_hello(&c->link, &h);
}

void fy__swarm_conn_close(fy__swarm_conn *c)
{
    fy_link_close(&c->link);
}

/* The connection has nothing more to do in this run. */
void fy__swarm_conn_finish(fy__swarm_conn *c)
{
    if (c->done)
        return;
    fy__swarm_conn_close(c);
    c->done = true;
    c->wake_at = 0;
    c->w->live--;
}

void fy__swarm_conn_pend(fy__swarm_conn *c)
{
    if (c->pending || c->done)
        return;
    c->pending = true;
    c->next_pending = c->w->pending;
    c->w->pending = c;
}

/* ---- the loop ------------------------------------------------------------ */

static void dispatch(void *item, uint32_t events)
{
    if (*(int *)item == FY__TAG_OUT) {
        fy__out *o = item;
        fy__tx_io((fy__tx *)o->c, o, events);
        return;
    }
    fy__swarm_conn *c = item;
    if (c->done)
        return;
    switch (c->kind) {
    case FY__TX:
        fy__tx_io((fy__tx *)c, NULL, events);
        break;
    case FY__RX:
        fy__rx_io((fy__rx *)c, events);
        break;
    case FY__STORM:
        fy__storm_io((fy__storm *)c, events);
        break;
    }
}

static void run_pending(fy__worker *w)
{
    fy__swarm_conn *list = w->pending;
    w->pending = NULL;
    while (list) {
        fy__swarm_conn *c = list;
        list = c->next_pending;
        c->pending = false;
        dispatch(c, 0);
    }
}

/* Fire due timers; returns the earliest future wake time (0: none). */
static uint64_t run_timers(fy__worker *w, uint64_t now)
{
    uint64_t next = 0;
    for (uint32_t i = 0; i < w->ntx; i++) {
        fy__tx *t = w->tx[i];
        if (t->c.wake_at && t->c.wake_at <= now) {
            t->c.wake_at = 0;
            fy__tx_timer(t, now);
        }
        if (t->c.wake_at && (!next || t->c.wake_at < next))
            next = t->c.wake_at;
    }
    for (uint32_t i = 0; i < w->nrx; i++) {
        fy__rx *r = w->rx[i];
        if (r->c.wake_at && r->c.wake_at <= now) {
            r->c.wake_at = 0;
            fy__rx_timer(r, now);
        }
        if (r->c.wake_at && (!next || r->c.wake_at < next))
            next = r->c.wake_at;
    }
    return next;
}

static bool storm_over(fy__worker *w, uint64_t now)
{
    fy__swarm *sw = w->sw;
    if (sw->cfg->mode != FY_SWARM_STORM)
        return w->live == 0;
    /* hold every served connection until the whole storm is resolved or
     * the window closed, so the relay carries all of them at once */
    return now >= sw->storm_end_ns ||
           atomic_load_explicit(&sw->storm_resolved, memory_order_acquire) >=
               sw->cfg->connections;
}

static void start_senders(fy__worker *w)
{
    w->started = true;
    for (uint32_t i = 0; i < w->ntx; i++)
        fy__tx_start(w->tx[i]);
}

static void loop(fy__worker *w)
{
    fy__swarm *sw = w->sw;
    struct epoll_event ev[256];

    for (;;) {
        uint64_t now = fy__swarm_now_ns();
        if (atomic_load_explicit(&sw->abort, memory_order_relaxed))
            break;
        if (now >= sw->deadline_ns) {
            atomic_store(&sw->timed_out, 1);
            atomic_store(&sw->abort, 1);
            break;
        }
        if (storm_over(w, now))
            break;
        if (!w->started && atomic_load_explicit(&sw->go_ns, memory_order_acquire))
            start_senders(w);
        uint64_t wake = run_timers(w, now);
        uint64_t limit = now + 50000000ull; /* re-check abort and deadline */
        if (!w->started && w->ntx)
            limit = now + 200000ull; /* waiting for the last subscriber */
        if (wake && wake < limit)
            limit = wake;
        if (limit > sw->deadline_ns)
            limit = sw->deadline_ns;
        uint64_t d = w->pending ? 0 : (limit > now ? limit - now : 0);
        struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
        int n = epoll_pwait2(w->ep, ev, 256, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            fy_klog(FY_LOG_ERROR, "epoll_pwait2 failed", "worker=%d err=%s action=abort", w->id,
                    fy_errname(-errno));
            atomic_store(&sw->abort, 1);
            break;
        }
        for (int i = 0; i < n; i++)
            dispatch(ev[i].data.ptr, ev[i].events);
        run_pending(w);
    }
}

static void setup_conns(fy__worker *w)
{
    for (uint32_t i = 0; i < w->ntx && !w->setup_err; i++)
        w->setup_err = fy__tx_prepare(w->tx[i]);
}

void *fy__worker_main(void *arg)
{
    fy__worker *w = arg;
    fy__swarm *sw = w->sw;

    setup_conns(w); /* senders' digests: other threads read them after the barrier */
    pthread_barrier_wait(&sw->barrier);
    pthread_barrier_wait(&sw->barrier); /* main checked every setup_err */
    if (atomic_load(&sw->abort))
        return NULL;
    for (uint32_t i = 0; i < w->nrx; i++)
        fy__rx_start(w->rx[i]);
    for (uint32_t i = 0; i < w->nstorm; i++)
        fy__storm_start(&w->storm[i]);
    loop(w);
    return NULL;
}
