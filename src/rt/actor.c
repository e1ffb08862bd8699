/*
 * actor.c - actors: creation, sending, stopping, lifetime and the turn loop.
 *
 * An actor is scheduled while its mailbox's scheduled bit is set (mbox.c):
 * the sender whose push sets it queues the actor, and only the turn that
 * finds nothing left clears it.  The scheduled state holds one reference,
 * so a queued or running actor is never freed under the thread that runs
 * it.  Other references: the creator's, one "life" reference dropped after
 * the dtor ran, and one per I/O registration and pending timer (a dying
 * actor's timers are cancelled, timer.c).  The memory goes when the last one goes, so a sender holding a reference can
 * always send: after fy_actor_stop() the send releases the message and
 * returns -FY_ECLOSED, and a message that slips in while the actor stops is
 * released by the next turn, which no longer calls the handler.
 *
 * fy_actor_stop() pushes a message allocated at creation, so stopping
 * cannot fail for lack of memory; the turn that meets it drains the mailbox
 * and runs the dtor, on a scheduler thread, exactly once.
 */
#include "rt/actor.h"

#include <assert.h>
#include <ck_pr.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/trace.h"
#include "rt/io.h"
#include "rt/msg.h"
#include "rt/tsan.h"
#include "rt/sched.h"
#include "rt/timer.h"

/* ---- lifetime ----------------------------------------------------------- */

int fy_actor_new(fy_sched *s, const fy_actor_opts *o, fy_actor **out)
{
    if (!s || !o || !o->fn || !out)
        return -EINVAL;
    fy_actor *a = aligned_alloc(FY__CACHELINE, sizeof(*a));
    if (!a)
        return -ENOMEM;
    memset(a, 0, sizeof(*a));
    a->stop_msg = fy_msg_new(FY__MSG_STOP);
    if (!a->stop_msg) {
        free(a);
        return -ENOMEM;
    }
    a->s = s;
    a->fn = o->fn;
    a->dtor = o->dtor;
    a->state = o->state;
    a->kind = o->kind;
    if (o->label) {
        strncpy(a->label, o->label, sizeof(a->label) - 1);
    }
    a->refs = 2; /* the caller's and the life reference */
    fy__sched_actor_add(s, a);
    fy_trace_emit(FY_TR_ACTOR_NEW, a->id, a->kind, 0);
    *out = a;
    return 0;
}

fy_actor *fy_actor_ref(fy_actor *a)
{
    ck_pr_inc_32(&a->refs);
    return a;
}

void fy_actor_unref(fy_actor *a)
{
    if (!a)
        return;
    /* Release our uses of a before the last holder frees it. */
    FY__TSAN_RELEASE(&a->refs);
    if (ck_pr_faa_32(&a->refs, (uint32_t)-1) != 1)
        return;
    FY__TSAN_ACQUIRE(&a->refs);
    assert(a->dead && !a->q_head);
    free(a);
}

/* ---- sending ------------------------------------------------------------ */

/* The caller's push found a idle: it owns a's scheduled state now. */
static void schedule(fy_actor *a)
{
    fy_actor_ref(a); /* the scheduled reference */
    fy__sched_schedule(a->s, a);
}

void fy__actor_push(fy_actor *a, fy_msg *m)
{
    if (fy__mbox_push(&a->mb, m, NULL))
        schedule(a);
}

/* Messages queued: on the stack plus taken and not yet handled (as of the
 * owner's last take or turn end, so up to one batch high mid-turn). */
static uint32_t depth(const fy_actor *a, uint32_t stacked)
{
    return stacked + ck_pr_load_32((uint32_t *)&a->taken);
}

int fy_actor_send(fy_actor *a, fy_msg *m)
{
    if (ck_pr_load_32(&a->stopped)) {
        fy_msg_free(m);
        return -FY_ECLOSED;
    }
#if FY_TRACE
    fy__thr *t = fy__self;
    if (t && ck_pr_load_int(&t->s->trace_on)) {
        /* A handler's first send reads the clock; its further sends reuse
         * that reading (kvm-clock costs more than the rest of a send), so
         * a stamp is early by at most the time the handler spent since its
         * first send.  fy_trace_emit() refreshes the reading too. */
        uint64_t ts = t->clock_ns;
        if (!ts)
            ts = t->clock_ns = fy_now_ns();
        m->sent_ns = ts;
        uint32_t stacked;
        bool idle = fy__mbox_push(&a->mb, m, &stacked);
        /* a may run on another thread now; our reference keeps it. */
        fy__trace_emit_ts(t, ts, FY_TR_SEND, a->id, fy__self_actor ? fy__self_actor->id : 0,
                          depth(a, stacked));
        if (idle)
            schedule(a);
        return 0;
    }
    if (!t && ck_pr_load_int(&a->s->trace_on))
        m->sent_ns = fy_now_ns(); /* off the scheduler (poller, timers): no SEND event */
#endif
    fy__actor_push(a, m);
    return 0;
}

int fy_actor_post(fy_actor *a, uint32_t type, uint32_t u32, uint64_t u0, uint64_t u1, void *ptr,
                  fy_buf *buf)
{
    fy_msg *m = fy_msg_new(type);
    if (!m) {
        fy_buf_unref(buf);
        return -ENOMEM;
    }
    m->u32 = u32;
    m->u64[0] = u0;
    m->u64[1] = u1;
    m->ptr = ptr;
    m->buf = buf;
    return fy_actor_send(a, m);
}

void fy_actor_stop(fy_actor *a)
{
    /* What the caller did before stopping a (e.g. its last sends) is seen
     * by whoever then sees fy_actor_stopped(a) (ThreadSanitizer cannot see
     * ck's fas: say so). */
    FY__TSAN_RELEASE(&a->stopped);
    if (ck_pr_fas_32(&a->stopped, 1))
        return;
    fy_trace_emit(FY_TR_ACTOR_STOP, a->id, 0, 0);
    fy__actor_push(a, a->stop_msg);
}

/* ---- accessors ---------------------------------------------------------- */

uint32_t fy_actor_id(const fy_actor *a)
{
    return a->id;
}

fy_sched *fy_actor_sched(const fy_actor *a)
{
    return a->s;
}

bool fy_actor_stopped(const fy_actor *a)
{
    bool stopped = ck_pr_load_32(&a->stopped) != 0;
    ck_pr_fence_acquire(); /* pairs with fy_actor_stop's fas: its caller's earlier writes */
    if (stopped)
        FY__TSAN_ACQUIRE(&a->stopped);
    return stopped;
}

bool fy_actor_running_here(const fy_actor *a)
{
    return a && fy__self_actor == a;
}

uint32_t fy_actor_depth(const fy_actor *a)
{
    return depth(a, fy__mbox_stacked(&a->mb));
}

/* ---- the turn ----------------------------------------------------------- */

/* Owner only: next message, refilling the private FIFO from the mailbox. */
static fy_msg *pop(fy_actor *a)
{
    if (!a->q_head) {
        fy_msg *tail;
        uint32_t n;
        a->q_head = fy__mbox_take(&a->mb, &tail, &n);
        a->q_tail = tail;
        a->q_n = n;
        ck_pr_store_32(&a->taken, n); /* for depth(), any thread */
        if (!a->q_head)
            return NULL;
    }
    fy_msg *m = a->q_head;
    a->q_head = m->next;
    if (!a->q_head)
        a->q_tail = NULL;
    a->q_n--;
    m->next = NULL;
    return m;
}

/* Free a message that will not be handled, with everything it holds. */
static void release(fy_msg *m)
{
    if (m->type == FY__MSG_IOREG)
        fy__io_msg_drop(m);
    if (m->type == FY__MSG_STOP)
        fy__msg_release_raw(m);
    else
        fy_msg_free(m);
}

/* Release everything queued now; returns how many. */
static uint32_t drain(fy_actor *a)
{
    uint32_t n = 0;
    fy_msg *m;

    while ((m = pop(a)) != NULL) {
        release(m);
        n++;
    }
    return n;
}

/*
 * Drops a reference that cannot be the last because the caller holds
 * another for the whole call.  Not fy_actor_unref: the static analyser
 * cannot see ck's atomic count, so it would take that call for a free and
 * report the caller's next use of a.
 */
void fy__actor_unref_not_last(fy_actor *a)
{
    FY__TSAN_RELEASE(&a->refs); /* as in fy_actor_unref: for the last holder's free */
    uint32_t was = ck_pr_faa_32(&a->refs, (uint32_t)-1);
    assert(was > 1);
    (void)was;
}

static void die(fy_actor *a)
{
    a->dead = true;
    if (a->dtor)
        a->dtor(a->state);
    a->state = NULL;
    fy__sched_actor_gone(a->s, a);
    fy__timer_cancel(a); /* its timers' references must not keep it ~30 s */
    fy__actor_unref_not_last(a); /* the life reference; the scheduled one is still held */
}

/* Handle one message; returns extra messages consumed (by a drain). */
static uint32_t deliver(fy_actor *a, fy_msg *m)
{
    if (m->type == FY__MSG_STOP) {
        fy__msg_release_raw(m);
        uint32_t n = drain(a);
        if (!a->dead)
            die(a);
        return n;
    }
    if (a->dead || ck_pr_load_32(&a->stopped)) {
        release(m);
        return 0;
    }
    if (m->type == FY__MSG_IOREG && !fy__io_msg_ready(a, m)) {
        fy_msg_free(m);
        return 0;
    }
    if (a->fn(a, a->state, m) == FY_MSG_DONE)
        fy_msg_free(m);
    return 0;
}

bool fy__actor_turn(fy_actor *a, unsigned batch)
{
    uint32_t n = 0;
    uint32_t id = a->id;
#if FY_TRACE
    fy__thr *t = fy__self;
    int tr = ck_pr_load_int(&a->s->trace_on);
    uint64_t t0 = tr ? fy_now_ns() : 0;
#endif

    fy__self_actor = a;
    while (n < batch) {
        fy_msg *m = pop(a);
        if (!m)
            break;
#if FY_TRACE
        if (tr) {
            if (n == 0)
                fy__trace_emit_ts(t, t0, FY_TR_TURN_BEGIN, id,
                                  m->sent_ns && m->sent_ns < t0 ? t0 - m->sent_ns : 0, 0);
            t->clock_ns = 0; /* this message's first send reads the clock */
        }
#endif
        n++;
        n += deliver(a, m);
    }
    fy__self_actor = NULL;
#if FY_TRACE
    t->clock_ns = 0; /* also if tracing was switched on during the turn */
    if (tr)
        fy_trace_emit(FY_TR_TURN_END, id, n, fy_now_ns() - t0);
#endif

    if (a->taken != a->q_n)
        ck_pr_store_32(&a->taken, a->q_n);
    if (a->q_head || !fy__mbox_idle(&a->mb))
        return true; /* more to do: we keep it scheduled */
    /* Given up: another thread may own a from here on. */
    fy_trace_emit(FY_TR_IDLE, id, 0, 0);
    fy_actor_unref(a);
    return false;
}

void fy__actor_abandon(fy_actor *a)
{
    for (int rounds = 0; rounds < 1000; rounds++) {
        (void)drain(a);
        if (ck_pr_load_32(&a->stopped) && !a->dead)
            die(a);
        if (fy__mbox_idle(&a->mb))
            break;
    }
    ck_pr_store_32(&a->taken, 0);
    fy_actor_unref(a);
}
