/*
 * mbox.c - the runtime's only lock-free code: mailboxes and intrusive stacks.
 *
 * Shape (chosen by measurement, see docs/runtime.md): producers push onto a
 * Treiber stack with one ck_pr_cas_ptr; the single consumer takes the whole
 * stack with one ck_pr_fas_ptr and reverses it, so it pays one atomic per
 * batch, not per message, and it never reads a node another thread may
 * still own (no ABA: nothing but the consumer ever pops).  A producer that
 * is descheduled mid-push holds nobody up -- unlike ck_ring's mpsc, whose
 * producers commit in turn, and unlike a Vyukov queue, whose consumer must
 * wait for a half-linked node.  We use ck_pr directly rather than ck_stack
 * because the link is fy_msg's own typed `next` field.
 *
 * The pending counter next to the head makes the mailbox the actor's
 * scheduling flag as well: count > 0 means "queued or running".  Only the
 * owner's fy__mbox_done() decrements it, so while a turn runs it cannot
 * reach 0 and no sender can schedule the actor a second time.  A sender
 * pushes before it counts, so the count may briefly go below 0 after a turn
 * handled a message whose sender has not counted yet; the increment that
 * brings it from 0 to 1 again schedules the actor, and by then a counted
 * message is on the stack (pushed - handled >= count).
 */
#include "rt/mbox.h"

#include <ck_pr.h>

#include "rt/tsan.h"

/* ---- message mailbox ---------------------------------------------------- */

int64_t fy__mbox_push(fy__mbox *mb, fy_msg *m)
{
    fy_msg *old = ck_pr_load_ptr(&mb->head);

    do {
        m->next = old;
        /* The link and the message body must be visible before m is. */
        ck_pr_fence_store();
        FY__TSAN_RELEASE(&mb->head);
    } while (!ck_pr_cas_ptr_value(&mb->head, old, m, &old));

    /* Counting after the push: a consumer that sees the count sees m too. */
    FY__TSAN_RELEASE(&mb->pending);
    int64_t before = (int64_t)ck_pr_faa_64((uint64_t *)&mb->pending, 1);
    FY__TSAN_ACQUIRE(&mb->pending);
    return before;
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
    if (ck_pr_load_ptr(&mb->head) == NULL)
        return NULL;
    fy_msg *lifo = ck_pr_fas_ptr(&mb->head, NULL);
    /* The nodes' links were written before they were published. */
    ck_pr_fence_acquire();
    FY__TSAN_ACQUIRE(&mb->head);
    return reverse_msgs(lifo, tail, n);
}

int64_t fy__mbox_done(fy__mbox *mb, uint32_t n)
{
    /* Release: the turn's effects on the actor's state happen before a
     * sender that finds the count at 0 schedules it on another thread. */
    FY__TSAN_RELEASE(&mb->pending);
    int64_t before = (int64_t)ck_pr_faa_64((uint64_t *)&mb->pending, (uint64_t) - (int64_t)n);
    FY__TSAN_ACQUIRE(&mb->pending);
    return before - (int64_t)n;
}

uint32_t fy__mbox_depth(const fy__mbox *mb)
{
    int64_t v = (int64_t)ck_pr_load_64((const uint64_t *)&mb->pending);
    if (v <= 0)
        return 0;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
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
