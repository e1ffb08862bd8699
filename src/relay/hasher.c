/*
 * hasher.c - the hash workers (fy_hasher): threads that hash the payload
 * of stored batches beside the channel writers (hasher.h).
 *
 * Why threads and not an actor: hashing is pure CPU on bytes already in
 * memory, and a job is a whole batch (up to 1 MiB, ~0.5 ms at 1.8 GB/s).
 * An actor would run on a scheduler thread, where it competes with the
 * sessions and forwarders queued there and may land on the writer's own
 * thread; a thread of its own is scheduled by the kernel on whichever core
 * is idle (at 1 -> 1 the second core was).  The queue is a mutex and a
 * condition variable, taken once per job (per batch), like the sync
 * worker's (store/syncer.c).
 *
 * Each stream is pinned to one worker, so its jobs run in push order and
 * one at a time: the stream's fy_sha256 sees the file's bytes in order.
 * A job's end is published by `done` (release), which the owner reads with
 * acquire before it touches the fy_sha256 again.
 */
#include "relay/hasher.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
    struct job *next;
    fy_hasher_stream *s;
    void (*release)(void *ref);
    void *ref;
    uint64_t credit;
    size_t n;
    fy_hash_op ops[];
} job;

typedef struct worker {
    unsigned delay_ms; /* fy_hasher_delay */
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued, or stop */
    pthread_cond_t idle; /* a job finished */
    job *head, *tail;
    bool stop;
    bool inited, started;
    pthread_t th;
} worker;

struct fy_hasher {
    unsigned n;
    atomic_uint next; /* round robin for fy_hasher_open */
    worker *w;
};

struct fy_hasher_stream {
    worker *w;
    fy_sha256 *sha;
    fy_hasher_notify_fn *fn;
    void *arg;
    uint64_t pushed;          /* owner only */
    uint64_t waits, wait_ns;  /* owner only */
    /* Written by the worker.  done: release after the job's hashing and
     * its credit, so an acquire load that sees it sees both; settled:
     * after its notification too (the worker is done with the stream). */
    atomic_uint_fast64_t done, settled;
    atomic_uint_fast64_t credit;
    atomic_int err;
    /* A notification is out and not yet taken (exchanged both ways, so
     * the take that clears it also acquires the credits added before). */
    atomic_bool notified;
};

static void run(job *j)
{
    fy_hasher_stream *s = j->s;

    for (size_t i = 0; i < j->n; i++) {
        const fy_hash_op *op = &j->ops[i];
        if (op->kind == FY_HASH_DATA) {
            fy_sha256_update(s->sha, op->p, (size_t)op->len);
        } else if (op->kind == FY_HASH_ZEROS) {
            fy_sha256_zeros(s->sha, op->len);
        } else {
            int rc = fy_sha256_reset(s->sha), none = 0;
            if (rc < 0) /* relaxed: take()'s exchange of notified orders it */
                atomic_compare_exchange_strong_explicit(&s->err, &none, rc,
                                                        memory_order_relaxed,
                                                        memory_order_relaxed);
        }
    }
    if (j->release)
        j->release(j->ref);
    atomic_fetch_add_explicit(&s->credit, j->credit, memory_order_relaxed);
    /* release: the sha's state, the credit and err before it */
    atomic_fetch_add_explicit(&s->done, 1, memory_order_release);
    /* After done: a take that clears the flag sees this job as done (the
     * exchanges are acq_rel), or the flag was clear and we notify anew. */
    if (!atomic_exchange_explicit(&s->notified, true, memory_order_acq_rel) && s->fn)
        s->fn(s->arg);
}

static void *worker_main(void *arg)
{
    worker *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->work, &w->mu);
        job *j = w->head;
        if (!j)
            break; /* stop, and nothing left */
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        unsigned d = w->delay_ms;
        pthread_mutex_unlock(&w->mu);
        if (d)
            nanosleep(&(struct timespec){d / 1000, (long)(d % 1000) * 1000000L}, NULL);
        run(j);
        pthread_mutex_lock(&w->mu);
        /* Under the lock, so a waiter cannot miss the broadcast; after
         * this the stream may be freed (fy_hasher_close), so nothing below
         * touches it. */
        atomic_fetch_add_explicit(&j->s->settled, 1, memory_order_release);
        pthread_cond_broadcast(&w->idle);
        free(j);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int fy_hasher_start(unsigned n, fy_hasher **out)
{
    fy_hasher *h = calloc(1, sizeof *h);

    if (!h)
        return -ENOMEM;
    h->n = n ? n : 1;
    if (!(h->w = calloc(h->n, sizeof *h->w))) {
        free(h);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < h->n; i++) {
        worker *w = &h->w[i];
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->work, NULL);
        pthread_cond_init(&w->idle, NULL);
        w->inited = true;
        int rc = pthread_create(&w->th, NULL, worker_main, w);
        if (rc != 0) {
            fy_hasher_stop(h);
            return -rc;
        }
        w->started = true;
        /* Seen in top -H and perf per thread; a failure changes nothing. */
        (void)pthread_setname_np(w->th, "ferryd-hash");
    }
    *out = h;
    return 0;
}

void fy_hasher_stop(fy_hasher *h)
{
    if (!h)
        return;
    for (unsigned i = 0; i < h->n; i++) {
        worker *w = &h->w[i];
        if (!w->inited)
            break;
        if (w->started) {
            pthread_mutex_lock(&w->mu);
            w->stop = true;
            pthread_cond_signal(&w->work);
            pthread_mutex_unlock(&w->mu);
            pthread_join(w->th, NULL);
        }
        pthread_cond_destroy(&w->idle);
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->mu);
    }
    free(h->w);
    free(h);
}

void fy_hasher_delay(fy_hasher *h, unsigned ms)
{
    for (unsigned i = 0; i < h->n; i++) {
        pthread_mutex_lock(&h->w[i].mu);
        h->w[i].delay_ms = ms;
        pthread_mutex_unlock(&h->w[i].mu);
    }
}

int fy_hasher_open(fy_hasher *h, fy_sha256 *sha, fy_hasher_notify_fn *fn, void *arg,
                   fy_hasher_stream **out)
{
    fy_hasher_stream *s = calloc(1, sizeof *s);

    if (!s)
        return -ENOMEM;
    /* relaxed: only spreads the streams over the workers */
    s->w = &h->w[atomic_fetch_add_explicit(&h->next, 1, memory_order_relaxed) % h->n];
    s->sha = sha;
    s->fn = fn;
    s->arg = arg;
    atomic_init(&s->done, 0);
    atomic_init(&s->settled, 0);
    atomic_init(&s->credit, 0);
    atomic_init(&s->err, 0);
    atomic_init(&s->notified, false);
    *out = s;
    return 0;
}

/* Block until count (done or settled) reaches what was pushed.  The worker
 * bumps done before the lock and settled under it, then broadcasts: a
 * waiter that saw either short is woken after it moved. */
static void wait_for(fy_hasher_stream *s, atomic_uint_fast64_t *count)
{
    worker *w = s->w;

    pthread_mutex_lock(&w->mu);
    while (atomic_load_explicit(count, memory_order_acquire) != s->pushed)
        pthread_cond_wait(&w->idle, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void fy_hasher_close(fy_hasher_stream *s)
{
    if (!s)
        return;
    wait_for(s, &s->settled);
    free(s);
}

int fy_hasher_push(fy_hasher_stream *s, const fy_hash_op *ops, size_t n, uint64_t credit,
                   void (*release)(void *ref), void *ref)
{
    job *j = malloc(sizeof *j + n * sizeof *ops);
    worker *w = s->w;

    if (!j)
        return -ENOMEM;
    *j = (job){.s = s, .release = release, .ref = ref, .credit = credit, .n = n};
    if (n)
        memcpy(j->ops, ops, n * sizeof *ops);
    s->pushed++;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

bool fy_hasher_idle(const fy_hasher_stream *s)
{
    return atomic_load_explicit(&s->done, memory_order_acquire) == s->pushed;
}

uint64_t fy_hasher_done(const fy_hasher_stream *s)
{
    return atomic_load_explicit(&s->done, memory_order_acquire);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void fy_hasher_wait(fy_hasher_stream *s)
{
    if (fy_hasher_idle(s))
        return;
    uint64_t t0 = mono_ns();
    wait_for(s, &s->done);
    s->waits++;
    s->wait_ns += mono_ns() - t0;
}

uint64_t fy_hasher_take(fy_hasher_stream *s, int *err)
{
    /* acq_rel: pairs with the worker's exchange in run(), so the credits
     * and err added before a notification we clear are seen below; a job
     * that finishes after this sees false and notifies again. */
    atomic_exchange_explicit(&s->notified, false, memory_order_acq_rel);
    if (err)
        *err = atomic_exchange_explicit(&s->err, 0, memory_order_relaxed);
    return atomic_exchange_explicit(&s->credit, 0, memory_order_relaxed);
}

void fy_hasher_counts(const fy_hasher_stream *s, uint64_t *jobs, uint64_t *waits,
                      uint64_t *wait_ns)
{
    *jobs = s->pushed;
    *waits = s->waits;
    *wait_ns = s->wait_ns;
}
