/*
 * io.h - the poller's hooks for the scheduler and the turn loop (internal;
 * io.c).  The poller is one thread per scheduler that blocks in epoll_wait
 * with the nearest timer as its timeout.
 */
#ifndef FY_RT_IO_H
#define FY_RT_IO_H

#include <stdbool.h>

#include "ferry/io.h"

typedef struct fy__io fy__io;

/* Create the epoll set, the wake-up eventfd and the timer heap. */
int fy__io_new(fy_sched *s, fy__io **out);
/* Start the poller thread.  Returns 0 or -errno. */
int fy__io_start(fy__io *io);
/* Stop and join the poller thread (no-op if it is not running). */
void fy__io_stop(fy__io *io);
/* After fy__io_stop and after every queued message was released: drop
 * every registration and pending timer (and their actor references). */
void fy__io_free(fy__io *io);
/* Any thread: make the poller look at its queues. */
void fy__io_wake(fy__io *io);
/* The poller's timer queue (timer.c adds to it from any thread). */
struct fy__timers *fy__io_timers(fy__io *io);

/* Turn loop, for an FY__MSG_IOREG message: turn it into FY_MSG_IO with the
 * merged readiness bits.  Returns false if there is nothing to deliver
 * (registration deleted meanwhile, or bits already delivered): then the
 * caller frees m. */
bool fy__io_msg_ready(fy_actor *a, fy_msg *m);
/* An FY__MSG_IOREG message released unhandled: drop its registration ref. */
void fy__io_msg_drop(fy_msg *m);

#endif
