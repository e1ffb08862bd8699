/*
 * notify.h - readiness and shutdown notices to the service manager, the
 * sd_notify(3) protocol without libsystemd: one datagram of `KEY=value`
 * lines to the AF_UNIX socket named by $NOTIFY_SOCKET.
 *
 * systemd sets NOTIFY_SOCKET for a Type=notify service and then counts the
 * service as started only when READY=1 arrives (packaging/ferryd.service).
 * Anywhere else the variable is unset and every call here does nothing.
 */
#ifndef FERRY_RELAY_NOTIFY_H
#define FERRY_RELAY_NOTIFY_H

/* Send STATE, newline-separated assignments such as "READY=1\nSTATUS=...",
 * as one datagram to $NOTIFY_SOCKET: an absolute path, or '@' then a name
 * in the abstract namespace.  Returns 1 when sent, 0 when NOTIFY_SOCKET is
 * unset or empty (no service manager is listening: nothing to do), or
 * -EINVAL (the variable is neither a path nor '@', or too long),
 * -EAFNOSUPPORT, or -errno from socket()/sendto() (-ENOENT, -ECONNREFUSED:
 * nobody bound there; -EAGAIN: the receiver's queue is full).  Never
 * blocks.  Any thread. */
int fy_notify_send(const char *state);

#endif
