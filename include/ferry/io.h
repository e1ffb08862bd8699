/*
 * io.h - file-descriptor readiness and timers as actor messages.
 *
 * A registered fd is watched edge-triggered by the scheduler's epoll poller.
 * Readiness arrives as an FY_MSG_IO message (u32 = FY_IO_* bits, u64[0] =
 * the tag given at registration) to the actor that registered it; only that
 * actor reads or writes the fd.  Because it is edge-triggered, the actor
 * must do I/O until EAGAIN before it can count on another message; while one
 * readiness message for a registration is still queued, further readiness is
 * merged into it instead of queueing more, so a registration costs at most
 * one message in the mailbox.
 */
#ifndef FERRY_IO_H
#define FERRY_IO_H

#include <stdint.h>

#include "ferry/actor.h"

enum fy_io_bits {
    FY_IO_READ = 1u << 0,
    FY_IO_WRITE = 1u << 1,
    FY_IO_HUP = 1u << 2, /* peer closed or error: read/write to learn which */
};

/* Watch fd for events (FY_IO_READ and/or FY_IO_WRITE) on behalf of a
 * (any thread).  The registration holds a reference to a.  Returns 0 or
 * -errno from epoll_ctl. */
int fy_io_add(fy_actor *a, int fd, uint32_t events, uint64_t tag);

/* Stop watching fd.  Any thread may call it, but the guarantee below holds
 * only when the registering actor calls it from its own handler or dtor, as
 * every caller in the tree does.  Call before close(fd).
 * The registration leaves the fd table and the epoll set at once and is
 * marked deleted; the poller drops the epoll set's reference to it later,
 * once no event it already took from epoll_wait can point at it (a queued
 * message keeps the record, not its delivery, alive).  After fy_io_del() returns, the actor gets
 * no FY_MSG_IO for this registration: a readiness message already queued, or
 * one the poller queues while racing with the delete, is dropped by the turn
 * loop when it reaches it (the handler never sees it, so neither its bits nor
 * its tag are delivered).  Called from another thread while the actor runs, a
 * message the running turn has already taken past that check is still
 * delivered.  fd may be registered again at once (fy_io_add, by this or
 * another actor): only the new registration's readiness arrives.  Returns 0; -ENOENT if fd is not
 * registered; or -errno from epoll_ctl(EPOLL_CTL_DEL) other than EBADF/ENOENT,
 * in which case the registration is removed and marked deleted all the same. */
int fy_io_del(fy_sched *s, int fd);

/* Deliver FY_MSG_TIMER with u64[0] = tag to a after ms milliseconds (any
 * thread).  The timer holds a reference to a until it fires; when a dies
 * (its dtor ran) its pending timers are dropped at once, with their
 * references.  Returns 0, -ENOMEM, or -FY_ECLOSED when a is stopped. */
int fy_timer_after(fy_actor *a, uint32_t ms, uint64_t tag);

#endif
