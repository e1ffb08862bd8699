/*
 * mbox.h - the runtime's lock-free queues (internal).
 *
 * The runtime's message queues live in mbox.c, behind the two shapes
 * declared here (buf.c's free lists and io.c's registration records use
 * atomics of their own, described in those files):
 *
 *  - fy__mbox: an actor's multi-producer single-consumer mailbox of
 *    fy_msg.  Its one word holds the stack of pushed messages, how many
 *    there are, and the actor's "scheduled" bit: the sender whose push
 *    finds the bit clear is the one that schedules the actor, so an actor
 *    is queued at most once.
 *  - fy__lifo: an intrusive multi-producer stack of fy__link nodes, emptied
 *    all at once by one consumer (in arrival order); used for the
 *    scheduler threads' inboxes, the poller's timer and garbage queues.
 *
 * Who may call what is in each name's comment.
 */
#ifndef FY_RT_MBOX_H
#define FY_RT_MBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/actor.h"

#define FY__CACHELINE 64

typedef struct fy__link {
    struct fy__link *next;
} fy__link;

#define fy__container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* The mailbox: one word, so a send is one locked instruction on one line.
 * The consumer's private FIFO lives in the actor, on an owner-only line. */
typedef struct fy__mbox {
    uintptr_t head; /* newest pushed fy_msg | count << FY__MBOX_CNT_SHIFT | FY__MBOX_SCHED */
} fy__mbox;

#define FY__MBOX_SCHED ((uintptr_t)1)  /* queued or running */
#define FY__MBOX_CNT_SHIFT 48          /* user pointers fit in 48 bits */
#define FY__MBOX_CNT_MAX 0xFFFFu       /* the stacked count saturates here */

/* Any thread: push m.  Returns true when the push found the actor idle and
 * set its scheduled bit: the caller must then schedule it.  *stacked (may be
 * NULL) receives the number of messages on the stack after the push (not
 * counting those the consumer already took; saturates at FY__MBOX_CNT_MAX). */
bool fy__mbox_push(fy__mbox *mb, fy_msg *m, uint32_t *stacked);

/* Consumer only (the holder of the scheduled bit): take every pushed
 * message, oldest first (NULL if none); *tail receives the last one, *n the
 * number taken.  The actor stays scheduled. */
fy_msg *fy__mbox_take(fy__mbox *mb, fy_msg **tail, uint32_t *n);

/* Consumer only, with every taken message handled: give the actor up.
 * Returns true if it is now idle (the next push schedules it; the caller
 * must not touch it any more as its owner), false if messages arrived
 * meanwhile (it stays scheduled: run it again). */
bool fy__mbox_idle(fy__mbox *mb);

/* Any thread: messages pushed and not yet taken (racy snapshot). */
uint32_t fy__mbox_stacked(const fy__mbox *mb);

/* Chunks of spare messages, linked through the chunk head's ptr field (the
 * messages inside a chunk are linked through next).  Any thread pushes a
 * chunk; takers take every chunk at once, so there is no ABA. */
void fy__chunks_push(fy_msg **head, fy_msg *chunk);
fy_msg *fy__chunks_take(fy_msg **head);

typedef struct fy__lifo {
    fy__link *head;
} fy__lifo;

/* Any thread: push n.  Returns true when the stack was empty before. */
bool fy__lifo_push(fy__lifo *l, fy__link *n);

/* The one consumer: take everything, oldest first (NULL if empty). */
fy__link *fy__lifo_take(fy__lifo *l);

/* Any thread: true if something is queued (racy; a hint for parking). */
bool fy__lifo_nonempty(const fy__lifo *l);

#endif
