/*
 * mbox.c - the runtime's lock-free queues: mailboxes and intrusive stacks.
 *
 * Not the only atomics in the runtime: buf.c has its own lock-free free
 * lists (per-CPU slots, ck_stack) and enforces the pool limit and the buffer
 * refcounts with atomics; io.c keeps each registration's refcount, merged
 * readiness bits and queued/deleted flags atomic; actor.c, sched.c and
 * trace.c use single atomic words (refcount and stop flag, park word,
 * ring head).  docs/runtime.md lists them.
 *
 * Shape (chosen by measurement: docs/runtime.md, and docs/benchmarks.md,
 * "Runtime measurements"): producers push onto a Treiber stack with one
 * ck_pr_cas_64; the single consumer takes the whole stack with one
 * ck_pr_fas_64 and reverses it, so it pays one atomic per batch, not per
 * message, and it never reads a node another thread may still own (no ABA:
 * nothing but the consumer ever pops, and a push only links to the value
 * its CAS compares).  A producer that is descheduled
 * mid-push holds nobody up -- unlike ck_ring's mpsc, whose producers commit
 * in turn, and unlike a Vyukov/Pony queue, whose consumer must wait for a
 * half-linked node.  We use ck_pr directly rather than ck_stack because
 * the link is fy_msg's own typed `next` field and the head word carries
 * more than a pointer.
 *
 * The head word: bits 0..47 the newest message (fy_msg is 8-aligned, so
 * bit 0 is free), bit 0 the actor's scheduled bit, bits 48..63 the number
 * of messages on the stack.  So a send is ONE locked instruction that
 * pushes, counts, and tells the sender whether it found the actor idle
 * (the bit clear) and must schedule it -- Pony's "idle bit in the head"
 * -- and the depth stays exact for metrics and the trace.  The consumer's
 * take swaps in "scheduled, empty" (it keeps the actor); when it has
 * handled everything it gives the actor up with a CAS from exactly
 * "scheduled, empty" to 0, which fails if anything was pushed meanwhile.
 * The previous design (a separate pending counter, XADD per send) cost two
 * locked instructions per send on the same line.
 */
#include "rt/mbox.h"

#include <ck_pr.h>
#include <stdlib.h>

#include "rt/tsan.h"

/* ---- message mailbox ---------------------------------------------------- */

_Static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "the head word is 64 bits");
_Static_assert(_Alignof(fy_msg) >= 2, "bit 0 of a message pointer is free");

#define PTR_MASK ((((uintptr_t)1 << FY__MBOX_CNT_SHIFT) - 1) & ~FY__MBOX_SCHED)

bool fy__mbox_push(fy__mbox *mb, fy_msg *m, uint32_t *stacked)
{
    uintptr_t p = (uintptr_t)m;
    /* x86-64 and arm64 user space pointers fit in 48 bits; fail loudly
     * rather than corrupt the word on a platform where they do not. */
    if (p >> FY__MBOX_CNT_SHIFT)
        abort();
    uint64_t old = ck_pr_load_64(&mb->head), upd;

    do {
        uint64_t cnt = old >> FY__MBOX_CNT_SHIFT;
        cnt += cnt < FY__MBOX_CNT_MAX;
        m->next = (fy_msg *)(old & PTR_MASK);
        upd = p | cnt << FY__MBOX_CNT_SHIFT | FY__MBOX_SCHED;
        /* The link and the message body must be visible before m is
         * (the CAS is a full barrier on x86; the fence says so elsewhere). */
        ck_pr_fence_store_atomic();
        FY__TSAN_RELEASE(&mb->head);
    } while (!ck_pr_cas_64_value(&mb->head, old, upd, &old));

    if (stacked)
        *stacked = (uint32_t)(upd >> FY__MBOX_CNT_SHIFT);
    if (old & FY__MBOX_SCHED)
        return false;
    /* We set the bit: the actor's state as its last owner left it (before
     * the CAS in fy__mbox_idle that cleared the bit) is ours to read. */
    ck_pr_fence_acquire();
    FY__TSAN_ACQUIRE(&mb->head);
    return true;
}

static fy_msg *reverse_msgs(fy_msg *lifo, fy_msg **tail, uint32_t *n)
{
    fy_msg *fifo = NULL;
    uint32_t k = 0;

    *tail = lifo;
    while (lifo) {
        fy_msg *next = lifo->next;
        lifo->next = fifo;
        fifo = lifo;
        lifo = next;
        k++;
    }
    *n = k;
    return fifo;
}

fy_msg *fy__mbox_take(fy__mbox *mb, fy_msg **tail, uint32_t *n)
{
    *n = 0;
    *tail = NULL;
    /* A plain load first: an empty mailbox costs no locked instruction. */
    if ((ck_pr_load_64(&mb->head) & PTR_MASK) == 0)
        return NULL;
    /* Take the stack and its count; the scheduled bit stays set (ours). */
    uint64_t w = ck_pr_fas_64(&mb->head, FY__MBOX_SCHED);
    /* The nodes' links were written before they were published. */
    ck_pr_fence_acquire();
    FY__TSAN_ACQUIRE(&mb->head);
    return reverse_msgs((fy_msg *)(w & PTR_MASK), tail, n);
}

bool fy__mbox_idle(fy__mbox *mb)
{
    if (ck_pr_load_64(&mb->head) != FY__MBOX_SCHED)
        return false; /* something was pushed: keep the actor */
    /* Release: the turn's effects on the actor's state happen before a
     * sender that finds the bit clear schedules it on another thread. */
    ck_pr_fence_release();
    FY__TSAN_RELEASE(&mb->head);
    return ck_pr_cas_64(&mb->head, FY__MBOX_SCHED, 0);
}

uint32_t fy__mbox_stacked(const fy__mbox *mb)
{
    return (uint32_t)(ck_pr_load_64((const uint64_t *)&mb->head) >> FY__MBOX_CNT_SHIFT);
}

/* ---- spare message chunks ---------------------------------------------- */

void fy__chunks_push(fy_msg **head, fy_msg *chunk)
{
    fy_msg *old = ck_pr_load_ptr(head);
    do {
        chunk->ptr = old;
        ck_pr_fence_store(); /* the chunk's links before the chunk */
        FY__TSAN_RELEASE(head);
    } while (!ck_pr_cas_ptr_value(head, old, chunk, &old));
}

fy_msg *fy__chunks_take(fy_msg **head)
{
    if (ck_pr_load_ptr(head) == NULL)
        return NULL;
    fy_msg *l = ck_pr_fas_ptr(head, NULL);
    ck_pr_fence_acquire(); /* pairs with the pushers' store fence */
    FY__TSAN_ACQUIRE(head);
    return l;
}

/* ---- intrusive stack ---------------------------------------------------- */

bool fy__lifo_push(fy__lifo *l, fy__link *n)
{
    fy__link *old = ck_pr_load_ptr(&l->head);

    do {
        n->next = old;
        ck_pr_fence_store(); /* n's contents before n is published */
        FY__TSAN_RELEASE(&l->head);
    } while (!ck_pr_cas_ptr_value(&l->head, old, n, &old));
    return old == NULL;
}

fy__link *fy__lifo_take(fy__lifo *l)
{
    if (ck_pr_load_ptr(&l->head) == NULL)
        return NULL;
    fy__link *lifo = ck_pr_fas_ptr(&l->head, NULL);
    ck_pr_fence_acquire(); /* pairs with the pushers' store fence */
    FY__TSAN_ACQUIRE(&l->head);

    fy__link *fifo = NULL;
    while (lifo) {
        fy__link *next = lifo->next;
        lifo->next = fifo;
        fifo = lifo;
        lifo = next;
    }
    return fifo;
}

bool fy__lifo_nonempty(const fy__lifo *l)
{
    return ck_pr_load_ptr(&l->head) != NULL;
}
