/*
 * httpd.h - a tiny HTTP/1.0 server owned by one actor (ferryd --metrics).
 *
 * Not an actor itself: the state belongs to the actor that created it and
 * every call is made from that actor's handler (or its dtor), so the
 * listening socket and the connections have one owner, as every fd in
 * Ferry does.  The owner passes its FY_MSG_IO messages in; a complete
 * request comes out through a callback with a connection id, and the owner
 * answers it with fy_httpd_reply() -- at once or later, after it gathered
 * the figures by message.  One request per connection (HTTP/1.0, then
 * close); at most FY_HTTPD_CONNS connections, a new one evicting the
 * oldest that is still reading its request when all are taken; a request
 * over 8 KiB or a connection older than the sweep limit is closed.
 */
#ifndef FY_METRICS_HTTPD_H
#define FY_METRICS_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/actor.h"

typedef struct fy_httpd fy_httpd;

#define FY_HTTPD_CONNS 32
/* I/O tags the server uses are tag_base | low 32 bits (tag_base: a
 * multiple of 2^32); the owner must use no other I/O tag in that range. */
#define FY_HTTPD_TAG_MASK 0xFFFFFFFFull

/* A complete request: conn identifies it for fy_httpd_reply(). */
typedef void (*fy_httpd_req_fn)(void *arg, uint32_t conn, const char *method, const char *path);

/* Bind and listen on "HOST:PORT" for owner (any thread, so a bad address
 * is reported at start-up).  Nothing is watched until fy_httpd_start().
 * 0 or -errno, reason in err. */
int fy_httpd_new(fy_actor *owner, const char *addr, uint64_t tag_base, fy_httpd **out,
                 char *err, size_t errcap);
/* Start watching the listener: from the owner's handler, so that the
 * owner's state is complete before the first readiness message.  0 or -errno. */
int fy_httpd_start(fy_httpd *h);
void fy_httpd_bound(const fy_httpd *h, char *buf, size_t cap); /* "HOST:PORT" */

/* Does this I/O message belong to the server? */
bool fy_httpd_owns(const fy_httpd *h, const fy_msg *m);
/* Handle it: accept, read, call fn for each complete request, continue
 * writing answers, close what is finished. */
void fy_httpd_io(fy_httpd *h, const fy_msg *m, fy_httpd_req_fn fn, void *arg);

/* Answer request conn (body copied).  -ENOENT when the client went away
 * meanwhile (nothing to do), -ENOMEM.  The connection closes once sent. */
int fy_httpd_reply(fy_httpd *h, uint32_t conn, int status, const char *ctype, const char *body,
                   size_t len);

/* The same, for a HEAD request when head is set: the headers (with the
 * Content-Length the body would have), no body. */
int fy_httpd_answer(fy_httpd *h, uint32_t conn, int status, const char *ctype, const char *body,
                    size_t len, bool head);

/* Close connections accepted more than idle_ms ago, whatever they are
 * doing (call from the owner's timer; the limit bounds a slow request). */
void fy_httpd_sweep(fy_httpd *h, unsigned idle_ms);

/* Requests answered so far (for the server's own metric). */
uint64_t fy_httpd_served(const fy_httpd *h);
/* Connections evicted to make room, and refused (every slot busy past its
 * request), so far. */
void fy_httpd_counts(const fy_httpd *h, uint64_t *evicted, uint64_t *refused);

/* Close everything (owner's handler or dtor).  NULL ignored. */
void fy_httpd_free(fy_httpd *h);

#endif
