/*
 * timer.c - one-shot timers that arrive as FY_MSG_TIMER messages.
 *
 * fy_timer_after() may be called from any thread, so a new timer goes onto
 * a lock-free stack and the poller is woken only when that stack was empty.
 * The poller owns the heap: a pairing heap linked through the timers
 * themselves, so inserting never allocates and can never fail inside the
 * poller.  A timer holds a reference to its actor until it fires, is
 * cancelled, or is dropped at shutdown.
 *
 * When an actor dies its pending timers go at once (issue 21, defect 8: a
 * session's 30 s hello timer kept each closed connection's actor, ~1.2 KB,
 * for 30 s): the dying actor pushes its preallocated cancel link onto a
 * second lock-free stack, and the poller unlinks every timer on the actor's
 * own list (poller-only, like the heap) from the heap.  Removal from the
 * middle of a pairing heap needs one more link per node, prev: the parent
 * for a first child, else the left sibling.
 */
#include "rt/timer.h"

#include <ck_pr.h>
#include <errno.h>
#include <stdlib.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/sched.h"
#include "rt/actor.h"
#include "rt/io.h"
#include "rt/sched.h"

struct fy__timer {
    fy__link link;                /* add-queue link */
    fy__timer *child, *sib, *prev; /* pairing heap; prev: parent or left sibling */
    fy__timer *anext, *aprev;     /* the actor's timers (poller only) */
    uint64_t due_ns;
    fy_actor *a;
    uint64_t tag;
};

static fy__timer *meld(fy__timer *x, fy__timer *y)
{
    if (!x)
        return y;
    if (!y)
        return x;
    if (y->due_ns < x->due_ns) {
        fy__timer *t = x;
        x = y;
        y = t;
    }
    y->sib = x->child;
    if (x->child)
        x->child->prev = y;
    y->prev = x;
    x->child = y;
    return x;
}

/* The classic two-pass merge of a removed root's children, iteratively. */
static fy__timer *merge_pairs(fy__timer *l)
{
    fy__timer *acc = NULL;

    while (l) {
        fy__timer *x = l, *y = l->sib;
        l = y ? y->sib : NULL;
        x->sib = NULL;
        if (y)
            y->sib = NULL;
        fy__timer *m = meld(x, y);
        m->sib = acc;
        acc = m;
    }
    fy__timer *r = NULL;
    while (acc) {
        fy__timer *next = acc->sib;
        acc->sib = NULL;
        r = meld(r, acc);
        acc = next;
    }
    if (r)
        r->prev = NULL;
    return r;
}

int fy__timer_add(fy__timers *t, fy_actor *a, uint32_t ms, uint64_t tag, int *wake)
{
    if (fy_actor_stopped(a))
        return -FY_ECLOSED; /* it would only be dropped */
    fy__timer *tm = calloc(1, sizeof(*tm));
    if (!tm)
        return -ENOMEM;
    ck_pr_store_32(&a->timed, 1); /* so that its death cancels (fy__timer_cancel) */
    tm->due_ns = fy_now_ns() + (uint64_t)ms * 1000000u;
    tm->a = fy_actor_ref(a);
    tm->tag = tag;
    *wake = fy__lifo_push(&t->adds, &tm->link);
    return 0;
}

/* Poller: take tm out of the heap and its actor's list; the caller frees it. */
static void unlink_timer(fy__timers *t, fy__timer *tm)
{
    if (tm == t->heap) {
        t->heap = merge_pairs(tm->child);
    } else {
        if (tm->prev->child == tm)
            tm->prev->child = tm->sib;
        else
            tm->prev->sib = tm->sib;
        if (tm->sib)
            tm->sib->prev = tm->prev;
        tm->sib = tm->prev = NULL;
        t->heap = meld(t->heap, merge_pairs(tm->child));
    }
    tm->child = NULL;
    t->n--;
    if (tm->aprev)
        tm->aprev->anext = tm->anext;
    else
        tm->a->timers = tm->anext;
    if (tm->anext)
        tm->anext->aprev = tm->aprev;
}

void fy__timer_collect(fy__timers *t)
{
    fy__link *l = fy__lifo_take(&t->adds);
    while (l) {
        fy__timer *tm = fy__container_of(l, fy__timer, link);
        l = l->next;
        if (tm->a->timers_gone) { /* added as it died, collected after the cancel */
            fy_actor_unref(tm->a);
            free(tm);
            continue;
        }
        t->heap = meld(t->heap, tm);
        t->n++;
        tm->anext = tm->a->timers;
        if (tm->anext)
            tm->anext->aprev = tm;
        tm->a->timers = tm;
    }
    /* After the adds: a timer added before the actor died is in its list. */
    l = fy__lifo_take(&t->cancels);
    while (l) {
        fy_actor *a = fy__container_of(l, fy_actor, tcancel);
        l = l->next;
        a->timers_gone = true;
        while (a->timers) {
            fy__timer *tm = a->timers;
            unlink_timer(t, tm);
            fy__actor_unref_not_last(a); /* the cancel's reference is still held */
            free(tm);
        }
        fy_actor_unref(a); /* the cancel's: may free a */
    }
}

void fy__timer_cancel(fy_actor *a)
{
    if (!ck_pr_load_32(&a->timed))
        return; /* never had a timer: nothing to ask the poller */
    fy__io *io = fy_actor_sched(a)->io;
    fy_actor_ref(a); /* until the poller has dropped the timers */
    if (fy__lifo_push(&fy__io_timers(io)->cancels, &a->tcancel))
        fy__io_wake(io); /* so the memory goes now, not at the next timer */
}

int fy__timer_timeout_ms(const fy__timers *t, uint64_t now_ns)
{
    if (!t->heap)
        return -1;
    if (t->heap->due_ns <= now_ns)
        return 0;
    uint64_t ms = (t->heap->due_ns - now_ns + 999999u) / 1000000u;
    return ms > 60000 ? 60000 : (int)ms;
}

static fy__timer *pop_min(fy__timers *t)
{
    fy__timer *r = t->heap;
    unlink_timer(t, r);
    return r;
}

void fy__timer_fire(fy__timers *t, uint64_t now_ns)
{
    while (t->heap && t->heap->due_ns <= now_ns) {
        fy__timer *tm = pop_min(t);
        /* -FY_ECLOSED for a stopped actor: the message is released, as promised. */
        (void)fy_actor_post(tm->a, FY_MSG_TIMER, 0, tm->tag, 0, NULL, NULL);
        fy_actor_unref(tm->a);
        free(tm);
    }
}

void fy__timer_clear(fy__timers *t)
{
    fy__timer_collect(t);
    while (t->heap) {
        fy__timer *tm = pop_min(t);
        fy_actor_unref(tm->a);
        free(tm);
    }
}

int fy_timer_after(fy_actor *a, uint32_t ms, uint64_t tag)
{
    fy__io *io = fy_actor_sched(a)->io;
    int wake = 0;
    int r = fy__timer_add(fy__io_timers(io), a, ms, tag, &wake);

    if (r == 0 && wake)
        fy__io_wake(io);
    return r;
}
