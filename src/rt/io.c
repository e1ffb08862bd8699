/*
 * io.c - the poller: fd readiness from epoll and timers, as messages.
 *
 * One poller thread per scheduler blocks in epoll_wait (edge-triggered)
 * with the nearest timer as its timeout, so an idle runtime sleeps.  Each
 * registration is a small refcounted record: the epoll set holds one
 * reference and every queued readiness message one more.  Readiness is
 * merged: the poller ORs the bits into the record and sends a message only
 * if none is queued, so a registration costs at most one message in its
 * actor's mailbox however busy the fd is.
 *
 * fy_io_del() can race with an event the poller already took out of
 * epoll_wait, so it never frees the record: it marks it deleted and queues
 * it for the poller, which drops the epoll set's reference at the top of its
 * next loop, when no event of the old batch can still point at it.  A
 * readiness message that is still queued for a deleted registration is
 * dropped instead of delivered, so the actor never hears about an fd it
 * already let go (and maybe closed and reused).
 */
#include "rt/io.h"

#include <ck_pr.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/trace.h"
#include "rt/actor.h"
#include "rt/mbox.h"
#include "rt/msg.h"
#include "rt/sched.h"
#include "rt/timer.h"
#include "rt/tsan.h"

typedef struct fy__ioreg {
    fy__link gc; /* deleted registrations queued for the poller */
    fy_actor *a;
    int fd;
    uint64_t tag;
    uint32_t refs;    /* atomic */
    uint32_t bits;    /* atomic: FY_IO_* not yet delivered */
    uint32_t queued;  /* atomic: a readiness message is in the mailbox */
    uint32_t deleted; /* atomic flag */
} fy__ioreg;

struct fy__io {
    fy_sched *s;
    int ep;
    int evfd;
    pthread_t tid;
    int running;
    uint32_t quit; /* atomic */
    fy__lifo gc;
    fy__timers timers;
    pthread_mutex_t lock; /* guards byfd: add/del only, never the event path */
    fy__ioreg **byfd;
    size_t nfd;
};

/* ---- registrations ------------------------------------------------------ */

static void reg_unref(fy__ioreg *r)
{
    FY__TSAN_RELEASE(&r->refs);
    if (ck_pr_faa_32(&r->refs, (uint32_t)-1) != 1)
        return;
    FY__TSAN_ACQUIRE(&r->refs);
    fy_actor_unref(r->a);
    free(r);
}

static int grow(fy__io *io, int fd)
{
    if ((size_t)fd < io->nfd)
        return 0;
    size_t n = io->nfd ? io->nfd : 64;
    while (n <= (size_t)fd)
        n *= 2;
    fy__ioreg **t = realloc(io->byfd, n * sizeof(*t));
    if (!t)
        return -ENOMEM;
    memset(t + io->nfd, 0, (n - io->nfd) * sizeof(*t));
    io->byfd = t;
    io->nfd = n;
    return 0;
}

int fy_io_add(fy_actor *a, int fd, uint32_t events, uint64_t tag)
{
    if (!a || fd < 0 || !(events & (FY_IO_READ | FY_IO_WRITE)))
        return -EINVAL;
    fy__io *io = fy_actor_sched(a)->io;
    fy__ioreg *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->a = fy_actor_ref(a);
    r->fd = fd;
    r->tag = tag;
    r->refs = 1; /* the epoll set's */

    struct epoll_event ev = {.events = EPOLLET | EPOLLRDHUP, .data.ptr = r};
    if (events & FY_IO_READ)
        ev.events |= EPOLLIN;
    if (events & FY_IO_WRITE)
        ev.events |= EPOLLOUT;

    int err = 0;
    bool added = false; /* r is freed unless epoll holds it, whatever errno says */
    pthread_mutex_lock(&io->lock);
    if ((err = grow(io, fd)) == 0 && io->byfd[fd])
        err = -EEXIST;
    if (err == 0) {
        FY__TSAN_RELEASE(r); /* the poller reads r once epoll hands it over */
        if (epoll_ctl(io->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            err = -errno;
        } else {
            io->byfd[fd] = r;
            added = true;
        }
    }
    pthread_mutex_unlock(&io->lock);
    if (!added) {
        fy_actor_unref(a);
        free(r);
    }
    return err;
}

int fy_io_del(fy_sched *s, int fd)
{
    fy__io *io = s->io;
    fy__ioreg *r = NULL;
    int err = 0;

    pthread_mutex_lock(&io->lock);
    if (fd >= 0 && (size_t)fd < io->nfd)
        r = io->byfd[fd];
    if (r) {
        io->byfd[fd] = NULL;
        /* EBADF/ENOENT: the fd was closed first; it left the set then. */
        if (epoll_ctl(io->ep, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF && errno != ENOENT)
            err = -errno;
    }
    pthread_mutex_unlock(&io->lock);
    if (!r)
        return -ENOENT;
    ck_pr_store_32(&r->deleted, 1);
    if (fy__lifo_push(&io->gc, &r->gc))
        fy__io_wake(io);
    return err;
}

/* ---- delivery ----------------------------------------------------------- */

static uint32_t bits_of(uint32_t ev)
{
    uint32_t b = 0;
    if (ev & EPOLLIN)
        b |= FY_IO_READ;
    if (ev & EPOLLOUT)
        b |= FY_IO_WRITE;
    if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        b |= FY_IO_HUP | FY_IO_READ;
    return b;
}

/* Poller: merge readiness into r and send a message if none is queued. */
static void ready(fy__ioreg *r, uint32_t ev)
{
    FY__TSAN_ACQUIRE(r);
    if (ck_pr_load_32(&r->deleted))
        return;
    FY__TSAN_RELEASE(&r->bits);
    ck_pr_or_32(&r->bits, bits_of(ev));
    /* The OR is ordered before the flag test by the locked FAS. */
    if (ck_pr_fas_32(&r->queued, 1) != 0)
        return; /* the queued message will pick these bits up */
    fy_msg *m = fy_msg_new(FY__MSG_IOREG);
    if (!m) {
        ck_pr_store_32(&r->queued, 0); /* retried on the next edge */
        return;
    }
    ck_pr_inc_32(&r->refs);
    m->ptr = r;
    if (fy_actor_send(r->a, m) < 0)
        reg_unref(r); /* actor stopped: the send freed m */
}

bool fy__io_msg_ready(fy_actor *a, fy_msg *m)
{
    fy__ioreg *r = m->ptr;

    m->ptr = NULL;
    /* Clear the flag before taking the bits: an edge that lands after the
     * take finds the flag clear and queues a fresh message. */
    ck_pr_fas_32(&r->queued, 0);
    uint32_t bits = ck_pr_fas_32(&r->bits, 0);
    FY__TSAN_ACQUIRE(&r->bits);
    int deleted = (int)ck_pr_load_32(&r->deleted);
    uint64_t tag = r->tag;
    int fd = r->fd;
    reg_unref(r);
    if (deleted || bits == 0)
        return false;
    m->type = FY_MSG_IO;
    m->u32 = bits;
    m->u64[0] = tag;
    fy_trace_emit(FY_TR_IO, fy_actor_id(a), (uint64_t)fd, bits);
    return true;
}

void fy__io_msg_drop(fy_msg *m)
{
    if (m->ptr)
        reg_unref(m->ptr);
    m->ptr = NULL;
}

/* ---- the poller thread -------------------------------------------------- */

void fy__io_wake(fy__io *io)
{
    uint64_t one = 1;
    /* EAGAIN: the counter is saturated, so the poller is awake anyway. */
    ssize_t n = write(io->evfd, &one, sizeof(one));
    (void)n;
}

struct fy__timers *fy__io_timers(fy__io *io)
{
    return &io->timers;
}

static void collect_gc(fy__io *io)
{
    fy__link *l = fy__lifo_take(&io->gc);
    while (l) {
        fy__ioreg *r = fy__container_of(l, fy__ioreg, gc);
        l = l->next;
        reg_unref(r);
    }
}

static void *poller_main(void *arg)
{
    fy__io *io = arg;
    struct epoll_event evs[64];

    /* Readiness and timer messages are made here and freed on scheduler
     * threads: take their spare chunks back (msg.c). */
    fy__msg_cache_on(&io->s->msg_spare, &io->s->msg_spare_n);
    for (;;) {
        /* Every event of the previous batch is handled: deleted
         * registrations can lose the epoll set's reference now. */
        collect_gc(io);
        fy__timer_collect(&io->timers);
        if (ck_pr_load_32(&io->quit))
            break;
        int n = epoll_wait(io->ep, evs, 64, fy__timer_timeout_ms(&io->timers, fy_now_ns()));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                ssize_t k = read(io->evfd, &v, sizeof(v));
                (void)k;
            } else {
                ready(evs[i].data.ptr, evs[i].events);
            }
        }
        fy__timer_fire(&io->timers, fy_now_ns());
    }
    fy__msg_cache_off();
    return NULL;
}

int fy__io_new(fy_sched *s, fy__io **out)
{
    fy__io *io = calloc(1, sizeof(*io));
    if (!io)
        return -ENOMEM;
    io->s = s;
    io->ep = epoll_create1(EPOLL_CLOEXEC);
    io->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int err = 0;
    if (io->ep < 0 || io->evfd < 0) {
        err = -errno;
    } else {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(io->ep, EPOLL_CTL_ADD, io->evfd, &ev) < 0)
            err = -errno;
    }
    if (err) {
        if (io->ep >= 0)
            close(io->ep);
        if (io->evfd >= 0)
            close(io->evfd);
        free(io);
        return err;
    }
    pthread_mutex_init(&io->lock, NULL);
    *out = io;
    return 0;
}

int fy__io_start(fy__io *io)
{
    int err = pthread_create(&io->tid, NULL, poller_main, io);
    if (err)
        return -err;
    io->running = 1;
    return 0;
}

void fy__io_stop(fy__io *io)
{
    if (!io->running)
        return;
    ck_pr_store_32(&io->quit, 1);
    fy__io_wake(io);
    pthread_join(io->tid, NULL);
    io->running = 0;
}

void fy__io_free(fy__io *io)
{
    if (!io)
        return;
    fy__io_stop(io);
    collect_gc(io);
    for (size_t fd = 0; fd < io->nfd; fd++) {
        if (io->byfd[fd]) {
            epoll_ctl(io->ep, EPOLL_CTL_DEL, (int)fd, NULL);
            reg_unref(io->byfd[fd]);
        }
    }
    free(io->byfd);
    fy__timer_clear(&io->timers);
    close(io->ep);
    close(io->evfd);
    pthread_mutex_destroy(&io->lock);
    free(io);
}
