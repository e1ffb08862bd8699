/*
 * notify.c - the sd_notify(3) datagram (see notify.h).
 *
 * A plain AF_UNIX datagram rather than libsystemd: the protocol is one
 * sendto() of text, and a library dependency for that would be the only
 * one ferryd has on systemd.  This is a control message to the service
 * manager, not relay traffic, so it does not go through src/net.  The send
 * never waits (MSG_DONTWAIT): a service manager that is not reading costs
 * ferryd one failed notice, not a stuck main thread.
 */
#include "relay/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Fill *sa from NOTIFY_SOCKET's value; *len gets the address length.
 * 0 or -EINVAL / -EAFNOSUPPORT. */
static int address(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = strlen(name);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (name[0] == '@') {
        /* Abstract namespace: a leading NUL, then the name, no terminator;
         * the length says where it ends. */
        if (n < 2 || n > sizeof sa->sun_path)
            return -EINVAL;
        memcpy(sa->sun_path + 1, name + 1, n - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (name[0] != '/')
        return strchr(name, ':') ? -EAFNOSUPPORT : -EINVAL; /* e.g. vsock:CID:PORT */
    if (n >= sizeof sa->sun_path)
        return -EINVAL;
    memcpy(sa->sun_path, name, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int fy_notify_send(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t len;
    int rc;

    if (!name || !name[0])
        return 0;
    if ((rc = address(name, &sa, &len)) < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    rc = 1;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, len) < 0)
        rc = -errno;
    close(fd);
    return rc;
}
