/*
 * tls_int.h - the TLS half of fy_conn (tls.c), for conn.c only.  Each call
 * has the contract of the fy_conn_* call of the same name (conn.h).
 */
#ifndef FERRY_NET_TLS_INT_H
#define FERRY_NET_TLS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ferry/conn.h"

int fy__tls_start(fy__tls_conn **out, int fd, fy_tls *tls, const char *name);
void fy__tls_free(fy__tls_conn *t);
int fy__tls_handshake(fy__tls_conn *t);
int fy__tls_flush(fy__tls_conn *t);
ssize_t fy__tls_recv(fy__tls_conn *t, void *buf, size_t n);
ssize_t fy__tls_readv(fy__tls_conn *t, const struct iovec *iov, int iovcnt);
ssize_t fy__tls_writev(fy__tls_conn *t, const struct iovec *iov, int iovcnt);
ssize_t fy__tls_sendfile(fy__tls_conn *t, int in_fd, off_t off, size_t n);
int fy__tls_shutdown(fy__tls_conn *t);
bool fy__tls_pending(const fy__tls_conn *t);
bool fy__tls_ktls_send(const fy__tls_conn *t);
bool fy__tls_ktls_recv(const fy__tls_conn *t);
const char *fy__tls_error(const fy__tls_conn *t);
void fy__tls_describe(const fy__tls_conn *t, char *buf, size_t cap);

#endif
