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

/* Stop watching fd; call before close(fd).  A readiness message already
 * queued may still arrive.  Returns 0 or -errno (-ENOENT if not registered). */
int fy_io_del(fy_sched *s, int fd);

/* Deliver FY_MSG_TIMER with u64[0] = tag to a after ms milliseconds (any
 * thread).  The timer holds a reference to a; a stopped actor's timer is
 * dropped.  Returns 0 or -ENOMEM. */
int fy_timer_after(fy_actor *a, uint32_t ms, uint64_t tag);

#endif
