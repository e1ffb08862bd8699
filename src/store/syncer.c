/*
 * syncer.c - the sync worker (fy_syncer): one thread per relay that does
 * every fdatasync, segment seal and directory fsync of the logs that use it.
 *
 * Why a thread and not the writer: with write-behind the writer appends
 * through the page cache and hands the batch to the live forwarders at
 * once; the one thing left that waits for the device is the sync, and a
 * scheduler thread that waits for the device stalls every actor queued on
 * it.  This thread is the one place in the relay that blocks on the disk.
 *
 * The queue is a mutex and a condition variable: a job is one syscall of
 * milliseconds, queued at most once per batch, so the lock is never hot.
 * Jobs run in order, one at a time, which is what makes a log's durable
 * position a prefix: a roll's seal of the old segment finishes before any
 * later sync of the new one is reported.  Completion is reported through
 * the log's callback on this thread (the relay posts a message to the
 * writer actor, which is safe from any thread).
 */
#include "store/syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "store/seg.h"

struct fy_syncer {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued, or stop */
    pthread_cond_t idle; /* a job finished */
    fy__sync_job *head, *tail;
    const void *running; /* owner of the job being run, or NULL */
    bool stop;
    unsigned fail_after; /* test hook: jobs to run before the failure */
    int fail_err;        /* 0 = no failure armed */
    /* test hook (fy_syncer_write_fault): appends fail with wf_err after
     * wf_left more bytes, for wf_ms, from wf_until_ns - wf_ms */
    int wf_err;
    uint64_t wf_left, wf_ms, wf_until_ns;
    pthread_t th;
};

static void job_free(fy__sync_job *j)
{
    if (j->fd >= 0)
        close(j->fd);
    if (j->dirfd >= 0)
        close(j->dirfd);
    free(j);
}

static int job_run(const fy__sync_job *j)
{
    int rc = 0;

    if (j->seal)
        rc = fy__seg_seal(j->fd, j->seg);
    else if (j->fd >= 0 && fdatasync(j->fd) != 0)
        rc = -errno;
    if (rc == 0 && j->dirfd >= 0 && fsync(j->dirfd) != 0)
        rc = -errno;
    /* The pages are clean now: let them go (log.c, "Page cache") rather
     * than have the cache grow by every byte the relay ever stored.  A
     * hint: its failure changes nothing. */
    if (rc == 0 && j->fd >= 0 && j->drop_to)
        (void)posix_fadvise(j->fd, 0, (off_t)j->drop_to, POSIX_FADV_DONTNEED);
    return rc;
}

static void *worker(void *arg)
{
    fy_syncer *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->work, &s->mu);
        fy__sync_job *j = s->head;
        if (!j)
            break; /* stop, and nothing left */
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        s->running = j->owner;
        int inject = 0;
        if (s->fail_err && s->fail_after-- == 0) {
            inject = s->fail_err;
            s->fail_err = 0;
        }
        pthread_mutex_unlock(&s->mu);
        int rc = inject ? inject : job_run(j);
        /* Relaxed: fy__syncer_wait's mutex orders it for the log's owner;
         * the report (done) carries it by message otherwise. */
        if (rc < 0 && j->err)
            atomic_store_explicit(j->err, rc, memory_order_relaxed);
        j->done(j->arg, j->seq, j->bytes, rc);
        job_free(j);
        pthread_mutex_lock(&s->mu);
        s->running = NULL;
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int fy_syncer_start(fy_syncer **out)
{
    fy_syncer *s = calloc(1, sizeof *s);
    int rc;

    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->idle, NULL);
    if ((rc = pthread_create(&s->th, NULL, worker, s)) != 0) {
        pthread_cond_destroy(&s->idle);
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -rc;
    }
    *out = s;
    return 0;
}

void fy_syncer_stop(fy_syncer *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void fy_syncer_fail_after(fy_syncer *s, unsigned after, int err)
{
    pthread_mutex_lock(&s->mu);
    s->fail_after = after;
    s->fail_err = err;
    pthread_mutex_unlock(&s->mu);
}

void fy_syncer_write_fault(fy_syncer *s, int err, uint64_t after, uint64_t ms)
{
    pthread_mutex_lock(&s->mu);
    s->wf_err = err;
    s->wf_left = after;
    s->wf_ms = ms;
    s->wf_until_ns = 0;
    pthread_mutex_unlock(&s->mu);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t fy__syncer_write_allow(fy_syncer *s, uint64_t want, int *err)
{
    uint64_t ok = want;

    *err = 0;
    pthread_mutex_lock(&s->mu);
    if (s->wf_err) {
        uint64_t now = mono_ns();
        if (s->wf_until_ns && now >= s->wf_until_ns) {
            s->wf_err = 0; /* the fault is over ("space came back") */
        } else if (s->wf_until_ns) {
            ok = 0;
            *err = s->wf_err;
        } else if (want > s->wf_left) {
            ok = s->wf_left; /* may end inside a frame: a torn tail to cut */
            *err = s->wf_err;
            s->wf_until_ns = now + s->wf_ms * 1000000u;
        } else {
            s->wf_left -= want;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* The owner's last queued job, if a plain sync of seg can be merged into
 * it (nothing of the owner's queued after it). */
static fy__sync_job *mergeable(fy_syncer *s, const fy__sync_job *j)
{
    fy__sync_job *last = NULL;

    for (fy__sync_job *q = s->head; q; q = q->next)
        if (q->owner == j->owner)
            last = q;
    if (last && !last->seal && last->dirfd < 0 && last->seg == j->seg)
        return last;
    return NULL;
}

void fy__syncer_push(fy_syncer *s, fy__sync_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&s->mu);
    fy__sync_job *m = !j->seal && j->dirfd < 0 ? mergeable(s, j) : NULL;
    if (m) {
        /* The queued sync has not started: it covers j's bytes too. */
        m->seq = j->seq;
        m->bytes = j->bytes;
        m->drop_to = j->drop_to; /* and may drop what j would have dropped */
    } else if (s->tail) {
        s->tail->next = j;
        s->tail = j;
    } else {
        s->head = s->tail = j;
    }
    if (!m)
        pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    if (m)
        job_free(j);
}

static bool has_jobs(const fy_syncer *s, const void *owner)
{
    if (s->running == owner)
        return true;
    for (const fy__sync_job *q = s->head; q; q = q->next)
        if (q->owner == owner)
            return true;
    return false;
}

void fy__syncer_wait(fy_syncer *s, const void *owner)
{
    pthread_mutex_lock(&s->mu);
    while (has_jobs(s, owner))
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
}
