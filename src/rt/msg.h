/*
 * msg.h - the message pool's internal hooks (msg.c).
 *
 * Scheduler threads and the poller keep a bounded free list of messages in
 * front of malloc; these calls switch it on when a thread starts and give
 * its memory back when the thread ends.  Other threads always use
 * malloc/free.
 */
#ifndef FY_RT_MSG_H
#define FY_RT_MSG_H

#include <stdint.h>

#include "ferry/actor.h"

/* Calling thread only: start caching freed messages; full lists go to
 * (and empty ones refill from) the scheduler's spare stack *spare, which
 * holds *spare_n chunks (atomic; bounded, the rest is freed). */
void fy__msg_cache_on(fy_msg **spare, uint32_t *spare_n);
/* Calling thread only: free the cached messages and stop caching. */
void fy__msg_cache_off(void);
/* Teardown, after every scheduler thread ended: free the spare chunks. */
void fy__msg_spare_free(fy_msg **spare);
/* Free m without looking at m->buf (the caller dealt with it). */
void fy__msg_release_raw(fy_msg *m);

#endif
