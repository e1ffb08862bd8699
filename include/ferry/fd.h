/*
 * fd.h - blocking writes to plain file descriptors (files, pipes, standard
 * output) that must land whole: the trace files, the client's spool file
 * and received files.  Sockets go through src/net (fy_sock_write_all), which
 * also maps would-block and keeps SIGPIPE off.
 */
#ifndef FERRY_FD_H
#define FERRY_FD_H

#include <stddef.h>

/* Write all n bytes of p to fd with write(2), retrying after EINTR and
 * short writes; any thread.  Returns 0, or the first failing write's
 * -errno (-EIO if write reports no progress); on failure an unknown prefix
 * of p may already be written. */
int fy_fd_write_all(int fd, const void *p, size_t n);

#endif
