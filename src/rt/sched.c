/*
 * sched.c - the scheduler: a fixed pool of threads that run actors.
 *
 * Run queues.  Each thread has a private FIFO of runnable actors (no atomics
 * to push or pop) and a lock-free inbox other threads push to.  An actor a
 * scheduler thread makes runnable (by a send from a handler) goes on that
 * thread's own list: a ping-pong pair stays on one core and hot in its
 * cache.  Work spreads by sharing rather than stealing: after a turn, a
 * thread with two or more actors waiting hands its oldest to a parked
 * thread's inbox and wakes it.  Sends from outside the scheduler (the
 * poller, timers, other threads) go to a parked thread if there is one,
 * else round robin.  The inbox is folded into the private list before each
 * turn, so neither starves the other.
 *
 * Parking.  An idle thread spins briefly on its inbox, then announces
 * itself parked, re-checks the inbox (after a full fence, pairing with the
 * pusher's locked CAS) and sleeps on a futex; a pusher that sees the
 * parked state flips it back and wakes it.  An idle runtime therefore sleeps
 * in futex_wait and epoll_wait only.
 *
 * Shutdown.  fy_sched_join() waits for fy_sched_exit(), stops every actor
 * and waits until every dtor ran (on the scheduler threads), then lets the
 * threads leave, stops the poller and releases whatever is still queued.
 */
#include "rt/sched.h"

#include <ck_pr.h>
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/trace.h"
#include "rt/io.h"
#include "rt/msg.h"
#include "rt/tsan.h"

#define DEFAULT_BATCH 64
#define DEFAULT_TRACE_EVENTS 65536
#define MAX_THREADS 1024
#define SPIN_BEFORE_PARK 256

_Thread_local fy__thr *fy__self;
_Thread_local fy_actor *fy__self_actor;

uint64_t fy_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- parking ------------------------------------------------------------ */

static void futex_wait(int *addr, int val)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(int *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Any thread, after pushing to t's inbox. */
static void wake(fy__thr *t)
{
    if (ck_pr_load_int(&t->park) == FY__PARKED && ck_pr_fas_int(&t->park, FY__RUNNING) == FY__PARKED)
        futex_wake(&t->park);
}

static void park(fy__thr *t)
{
    fy_sched *s = t->s;

    for (int i = 0; i < SPIN_BEFORE_PARK; i++) {
        if (fy__lifo_nonempty(&t->inbox))
            return;
        ck_pr_stall();
    }
    ck_pr_store_int(&t->park, FY__PARKED);
    ck_pr_inc_32(&s->nparked);
    /* Order the announcement before the re-check; pairs with the pusher's
     * locked CAS before it reads t->park. */
    ck_pr_fence_memory();
    if (!fy__lifo_nonempty(&t->inbox) && !ck_pr_load_32(&s->quit)) {
        fy_trace_emit(FY_TR_PARK, 0, 0, 0);
        while (ck_pr_load_int(&t->park) == FY__PARKED)
            futex_wait(&t->park, FY__PARKED);
        fy_trace_emit(FY_TR_UNPARK, 0, 0, 0);
    }
    ck_pr_store_int(&t->park, FY__RUNNING);
    ck_pr_dec_32(&s->nparked);
}

/* ---- run queues --------------------------------------------------------- */

static void local_append(fy__thr *t, fy__link *first)
{
    while (first) {
        fy__link *next = first->next;
        first->next = NULL;
        if (t->lq_tail)
            t->lq_tail->next = first;
        else
            t->lq_head = first;
        t->lq_tail = first;
        t->lq_n++;
        first = next;
    }
}

static fy_actor *local_pop(fy__thr *t)
{
    fy__link *l = t->lq_head;
    if (!l)
        return NULL;
    t->lq_head = l->next;
    if (!t->lq_head)
        t->lq_tail = NULL;
    t->lq_n--;
    l->next = NULL;
    return fy__container_of(l, fy_actor, rq);
}

static void push_to(fy__thr *t, fy_actor *a)
{
    fy__lifo_push(&t->inbox, &a->rq);
    wake(t);
}

static fy__thr *find_parked(fy_sched *s, unsigned from)
{
    for (unsigned i = 0; i < s->n; i++) {
        fy__thr *t = &s->thr[(from + i) % s->n];
        if (ck_pr_load_int(&t->park) == FY__PARKED)
            return t;
    }
    return NULL;
}

/* After a turn: give the oldest waiting actor to a parked thread. */
static void share(fy__thr *t)
{
    fy_sched *s = t->s;
    if (t->lq_n < 2 || ck_pr_load_32(&s->nparked) == 0)
        return;
    fy__thr *p = find_parked(s, t->idx + 1);
    if (p && p != t)
        push_to(p, local_pop(t));
}

void fy__sched_schedule(fy_sched *s, fy_actor *a)
{
    fy__thr *t = fy__self;

    if (t && t->s == s) {
        a->rq.next = NULL;
        local_append(t, &a->rq);
        return;
    }
    fy__thr *p = ck_pr_load_32(&s->nparked) ? find_parked(s, 0) : NULL;
    if (!p)
        p = &s->thr[ck_pr_faa_32(&s->rr, 1) % s->n];
    push_to(p, a);
}

void fy_sched_handoff(void)
{
    fy__thr *t = fy__self;
    fy_actor *a;

    if (!t || t->s->n < 2)
        return;
    /* Parked threads first; otherwise spread over the others' inboxes,
     * which they fold in before their next turn. */
    for (unsigned k = 0; (a = local_pop(t)); k++) {
        fy__thr *p = find_parked(t->s, t->idx + 1);
        if (!p || p == t)
            p = &t->s->thr[(t->idx + 1 + k % (t->s->n - 1)) % t->s->n];
        push_to(p, a);
    }
}

/* ---- threads ------------------------------------------------------------ */

static void *thr_main(void *arg)
{
    fy__thr *t = arg;
    fy_sched *s = t->s;

    fy__self = t;
    fy__msg_cache_on(&s->msg_spare, &s->msg_spare_n);
    /* One clock read per turn for busy_ns: a turn's end is the next one's
     * start, unless the thread ran out of work in between. */
    uint64_t t0 = fy_now_ns();
    for (;;) {
        if (fy__lifo_nonempty(&t->inbox))
            local_append(t, fy__lifo_take(&t->inbox));
        fy_actor *a = local_pop(t);
        if (!a) {
            if (ck_pr_load_32(&s->quit))
                break;
            park(t);
            t0 = fy_now_ns();
            continue;
        }
        bool again = fy__actor_turn(a, s->batch);
        uint64_t t1 = fy_now_ns();
        ck_pr_store_64(&t->busy_ns, t->busy_ns + (t1 - t0));
        t0 = t1;
        ck_pr_store_64(&t->turns, t->turns + 1);
        if (again) {
            fy_trace_emit(FY_TR_SCHED, a->id, 0, 0);
            local_append(t, &a->rq);
        }
        share(t);
    }
    fy__msg_cache_off();
    fy__self = NULL;
    return NULL;
}

/* ---- actor registry ----------------------------------------------------- */

void fy__sched_actor_add(fy_sched *s, fy_actor *a)
{
    a->id = ck_pr_faa_32(&s->next_id, 1);
    pthread_mutex_lock(&s->lock);
    a->all_next = s->actors;
    if (s->actors)
        s->actors->all_prev = a;
    s->actors = a;
    s->nactors++;
    if (s->tab) {
        fy__trace_actor *e = &s->tab[s->tab_n++ % FY__TRACE_ACTORS];
        memset(e, 0, sizeof(*e));
        e->created_ns = fy_now_ns();
        e->id = a->id;
        e->kind = a->kind;
        memcpy(e->label, a->label, sizeof(e->label));
    }
    int closing = s->closing;
    pthread_mutex_unlock(&s->lock);
    if (closing)
        pthread_cond_broadcast(&s->cond); /* join stops it */
}

void fy__sched_actor_gone(fy_sched *s, fy_actor *a)
{
    pthread_mutex_lock(&s->lock);
    if (a->all_prev)
        a->all_prev->all_next = a->all_next;
    else
        s->actors = a->all_next;
    if (a->all_next)
        a->all_next->all_prev = a->all_prev;
    a->all_prev = a->all_next = NULL;
    s->nactors--;
    if (s->closing)
        pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* ---- public API --------------------------------------------------------- */

int fy_sched_new(const fy_sched_opts *o, fy_sched **out)
{
    fy_sched_opts d = {0};
    if (!o)
        o = &d;
    unsigned n = o->threads;
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (unsigned)c : 1;
    }
    if (n > MAX_THREADS)
        return -EINVAL;

    fy_sched *s = aligned_alloc(FY__CACHELINE, sizeof(*s));
    if (!s)
        return -ENOMEM;
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->batch = o->batch ? o->batch : DEFAULT_BATCH;
    s->next_id = 1;
    s->trace_on = FY_TRACE && !o->trace_off;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);

    int err = -ENOMEM;
    s->thr = aligned_alloc(FY__CACHELINE, n * sizeof(*s->thr));
    if (!s->thr)
        goto fail;
    memset(s->thr, 0, n * sizeof(*s->thr));
    size_t events = FY_TRACE ? (o->trace_events ? o->trace_events : DEFAULT_TRACE_EVENTS) : 0;
    for (unsigned i = 0; i < n; i++) {
        s->thr[i].idx = i;
        s->thr[i].s = s;
        if (fy__ring_init(&s->thr[i].ring, events) < 0)
            goto fail;
    }
    s->tab = calloc(FY__TRACE_ACTORS, sizeof(*s->tab));
    s->cl = events ? calloc(FY__TRACE_CLUSTER, sizeof(*s->cl)) : NULL;
    if (!s->tab || (events && !s->cl))
        goto fail;
    if ((err = fy__io_new(s, &s->io)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    s->joined = 1;
    fy_sched_free(s);
    return err;
}

int fy_sched_start(fy_sched *s)
{
    if (s->started)
        return -EINVAL;
    int err = fy__io_start(s->io);
    if (err)
        return err;
    s->started = 1;
    for (unsigned i = 0; i < s->n; i++) {
        int e = pthread_create(&s->thr[i].tid, NULL, thr_main, &s->thr[i]);
        if (e) {
            /* Run with the threads we have; the rest are never pushed to. */
            s->n = i ? i : 1;
            if (i == 0)
                return -e;
            break;
        }
    }
    return 0;
}

void fy_sched_exit(fy_sched *s)
{
    pthread_mutex_lock(&s->lock);
    s->exit_req = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Stop every actor and wait until each ran its dtor. */
static void stop_all(fy_sched *s)
{
    pthread_mutex_lock(&s->lock);
    s->closing = 1;
    while (s->actors) {
        for (fy_actor *a = s->actors; a; a = a->all_next)
            fy_actor_stop(a);
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Single-threaded: release whatever is still queued on the run queues. */
static void abandon_queued(fy_sched *s)
{
    for (int round = 0; round < 1000; round++) {
        int any = 0;
        for (unsigned i = 0; i < s->n; i++) {
            fy__thr *t = &s->thr[i];
            local_append(t, fy__lifo_take(&t->inbox));
            fy_actor *a;
            while ((a = local_pop(t)) != NULL) {
                fy__actor_abandon(a);
                any = 1;
            }
        }
        if (!any)
            break;
    }
}

void fy_sched_join(fy_sched *s)
{
    if (s->joined)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        while (!s->exit_req)
            pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
        stop_all(s);
        ck_pr_store_32(&s->quit, 1);
        for (unsigned i = 0; i < s->n; i++)
            wake(&s->thr[i]);
        for (unsigned i = 0; i < s->n; i++)
            pthread_join(s->thr[i].tid, NULL);
        fy__io_stop(s->io);
    } else {
        /* Never started: stopping queues every actor; release them here. */
        pthread_mutex_lock(&s->lock);
        for (fy_actor *a = s->actors; a; a = a->all_next)
            fy_actor_stop(a);
        pthread_mutex_unlock(&s->lock);
    }
    abandon_queued(s);
    fy__io_free(s->io);
    s->io = NULL;
    abandon_queued(s); /* timers' and registrations' last references */
    s->joined = 1;
}

void fy_sched_free(fy_sched *s)
{
    if (!s)
        return;
    fy_sched_join(s);
    if (s->thr) {
        for (unsigned i = 0; i < s->n; i++)
            fy__ring_fini(&s->thr[i].ring);
    }
    fy__msg_spare_free(&s->msg_spare);
    free(s->thr);
    free(s->tab);
    free(s->cl);
    fy__io_free(s->io);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

unsigned fy_sched_threads(const fy_sched *s)
{
    return s->n;
}

int fy_sched_thread_index(void)
{
    return fy__self ? (int)fy__self->idx : -1;
}

int fy_sched_thread_stats(const fy_sched *s, unsigned idx, uint64_t *busy_ns, uint64_t *turns)
{
    if (idx >= s->n)
        return -EINVAL;
    if (busy_ns)
        *busy_ns = ck_pr_load_64(&s->thr[idx].busy_ns);
    if (turns)
        *turns = ck_pr_load_64(&s->thr[idx].turns);
    return 0;
}
