/*
 * mbox.h - the runtime's lock-free queues (internal).
 *
 * Every lock-free operation of the runtime lives in mbox.c, behind the two
 * shapes declared here:
 *
 *  - fy__mbox: an actor's multi-producer single-consumer mailbox of
 *    fy_msg, plus the "pending" counter that doubles as the actor's
 *    scheduled flag: the sender whose increment finds it at 0 is the one
 *    that schedules the actor, so an actor is queued at most once.
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

/* The mailbox: head and pending share one cache line, so a send moves one
 * line between cores.  The consumer's private FIFO lives in the actor, on an
 * owner-only line. */
typedef struct fy__mbox {
    fy_msg *head;    /* LIFO of pushed messages (newest first) */
    int64_t pending; /* pushed-and-counted minus handled; > 0 = scheduled */
} fy__mbox;

/* Any thread: push m and count it.  Returns the count before this message;
 * 0 means the caller must schedule the actor. */
int64_t fy__mbox_push(fy__mbox *mb, fy_msg *m);

/* Consumer only: take every pushed message, oldest first (NULL if none);
 * *tail receives the last one, *n the number taken. */
fy_msg *fy__mbox_take(fy__mbox *mb, fy_msg **tail, uint32_t *n);

/* Consumer only, at the end of a turn: n messages were handled.  Returns
 * the count still pending; > 0 means the consumer keeps the actor scheduled
 * and must run it again, <= 0 means it gave the actor up. */
int64_t fy__mbox_done(fy__mbox *mb, uint32_t n);

/* Any thread: messages queued (racy snapshot, never negative). */
uint32_t fy__mbox_depth(const fy__mbox *mb);

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
