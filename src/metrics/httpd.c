/*
 * httpd.c - the HTTP/1.0 helper (httpd.h).
 *
 * Each connection is a slot with a generation number; its I/O tag and the
 * id handed to the owner both carry slot and generation, so a readiness
 * message or a late reply for a connection that was closed and whose slot
 * was reused is recognised and dropped.  Registration is edge-triggered
 * (io.h): every read and write goes on until EAGAIN.
 *
 * Slow clients cannot lock the health checks out (issue 21, defect 7: 200
 * slowloris connections, /readyz answered 3 of 40 probes).  When every
 * slot is taken, a new connection evicts the oldest one still reading its
 * request (a scrape being gathered or an answer being written is not
 * idle); a new connection's request is read at once, in the turn that
 * accepted it, so a probe that sent its request is answered before later
 * arrivals can evict it; and the sweep closes a connection that has not
 * finished within the owner's limit, however slowly it trickles bytes.
 */
#include "metrics/httpd.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/sched.h"
#include "ferry/sock.h"

#define REQ_MAX 8192

enum { C_FREE = 0, C_READ, C_WAIT, C_WRITE };

typedef struct conn {
    int fd;
    int state;
    uint32_t gen;
    uint64_t since_ns;
    size_t nin;
    char in[REQ_MAX + 1];
    char *out;
    size_t nout, off;
} conn;

struct fy_httpd {
    fy_actor *owner;
    fy_sched *s;
    uint64_t tag_base;
    int lfd;
    fy_addr bound;
    uint64_t served, evicted, refused;
    conn c[FY_HTTPD_CONNS];
};

static uint64_t tag_of(const fy_httpd *h, unsigned slot, uint32_t gen)
{
    /* slot 0 is the listener; connections are slot + 1 */
    return h->tag_base | ((uint64_t)(gen & 0xFFFFFF) << 8) | slot;
}

static uint32_t id_of(unsigned slot, uint32_t gen)
{
    return ((gen & 0xFFFFFF) << 8) | (slot + 1);
}

int fy_httpd_new(fy_actor *owner, const char *addr, uint64_t tag_base, fy_httpd **out,
                 char *err, size_t errcap)
{
    fy_addr a;
    int rc;
    if ((rc = fy_addr_parse(addr, "127.0.0.1", &a)) < 0) {
        snprintf(err, errcap, "metrics address '%s': want HOST:PORT (a host name, an IP, or "
                 "[IPv6]): %s", addr, rc == -EINVAL ? "cannot parse it" : "cannot resolve the host");
        return rc;
    }
    fy_httpd *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->owner = owner;
    h->s = fy_actor_sched(owner);
    h->tag_base = tag_base & ~FY_HTTPD_TAG_MASK;
    for (unsigned i = 0; i < FY_HTTPD_CONNS; i++)
        h->c[i].fd = -1;
    /* A deep backlog: a burst of slow clients must not fill the kernel's
     * queue, where a probe's SYN would be dropped and retried after 1 s. */
    if ((rc = fy_sock_listen(&a, 512, &h->bound)) < 0) {
        snprintf(err, errcap, "listen on %s: %s", addr, strerror(-rc));
        free(h);
        return rc;
    }
    h->lfd = rc;
    *out = h;
    return 0;
}

int fy_httpd_start(fy_httpd *h)
{
    assert(fy_actor_running_here(h->owner)); /* the owner's handler only */
    return fy_io_add(h->owner, h->lfd, FY_IO_READ, tag_of(h, 0, 0));
}

void fy_httpd_bound(const fy_httpd *h, char *buf, size_t cap)
{
    fy_addr_format(&h->bound, buf, cap);
}

bool fy_httpd_owns(const fy_httpd *h, const fy_msg *m)
{
    return m->type == FY_MSG_IO && (m->u64[0] & ~FY_HTTPD_TAG_MASK) == h->tag_base;
}

uint64_t fy_httpd_served(const fy_httpd *h)
{
    return h->served;
}

void fy_httpd_counts(const fy_httpd *h, uint64_t *evicted, uint64_t *refused)
{
    *evicted = h->evicted;
    *refused = h->refused;
}

static void conn_close(fy_httpd *h, conn *c)
{
    if (c->fd >= 0) {
        (void)fy_io_del(h->s, c->fd);
        close(c->fd);
    }
    free(c->out);
    c->out = NULL;
    c->fd = -1;
    c->state = C_FREE;
    c->gen++;
}

/* A free slot, or the one the oldest connection still reading its request
 * held (closed now: it is the likeliest slow client); FY_HTTPD_CONNS when
 * every connection is past its request. */
static unsigned free_slot(fy_httpd *h)
{
    unsigned old = FY_HTTPD_CONNS;
    for (unsigned i = 0; i < FY_HTTPD_CONNS; i++) {
        if (h->c[i].state == C_FREE)
            return i;
        if (h->c[i].state == C_READ &&
            (old == FY_HTTPD_CONNS || h->c[i].since_ns < h->c[old].since_ns))
            old = i;
    }
    if (old < FY_HTTPD_CONNS) {
        conn_close(h, &h->c[old]);
        h->evicted++;
    }
    return old;
}

static void on_conn(fy_httpd *h, unsigned i, uint32_t bits, fy_httpd_req_fn fn, void *arg);

static void accept_all(fy_httpd *h, fy_httpd_req_fn fn, void *arg)
{
    for (;;) {
        fy_addr peer;
        int fd = fy_sock_accept(h->lfd, &peer);
        if (fd == -EAGAIN)
            return;
        if (fd < 0) {
            fy_klog(FY_LOG_WARN, "metrics accept failed", "call=accept4 err=%d "
                    "action=\"wait for the next connection\"", -fd);
            return;
        }
        unsigned i = free_slot(h);
        if (i == FY_HTTPD_CONNS) {
            close(fd); /* every slot past its request: the client retries */
            h->refused++;
            continue;
        }
        conn *c = &h->c[i];
        c->fd = fd;
        c->state = C_READ;
        c->nin = 0;
        c->since_ns = fy_now_ns();
        if (fy_io_add(h->owner, fd, FY_IO_READ | FY_IO_WRITE, tag_of(h, i + 1, c->gen)) < 0) {
            conn_close(h, c);
            continue;
        }
        /* The request may be here already: answer it before a later
         * arrival in this loop could evict it. */
        on_conn(h, i, FY_IO_READ, fn, arg);
    }
}

/* Request line "GET /path HTTP/1.x"; headers are read and ignored. */
static void parse(fy_httpd *h, unsigned i, fy_httpd_req_fn fn, void *arg)
{
    conn *c = &h->c[i];
    char *sp1 = strchr(c->in, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    char *eol = strpbrk(c->in, "\r\n");
    if (!sp1 || !sp2 || !eol || sp2 > eol || strncmp(sp2 + 1, "HTTP/", 5) != 0) {
        c->state = C_WAIT;
        fy_httpd_reply(h, id_of(i, c->gen), 400, "text/plain", "bad request\n", 12);
        return;
    }
    *sp1 = 0;
    *sp2 = 0;
    c->state = C_WAIT;
    fn(arg, id_of(i, c->gen), c->in, sp1 + 1);
}

static void flush_out(fy_httpd *h, conn *c)
{
    while (c->off < c->nout) {
        struct iovec iov = {c->out + c->off, c->nout - c->off};
        ssize_t k = fy_sock_writev(c->fd, &iov, 1);
        if (k == -EAGAIN)
            return;
        if (k < 0)
            break;
        c->off += (size_t)k;
    }
    if (c->off >= c->nout)
        h->served++;
    conn_close(h, c);
}

static void on_conn(fy_httpd *h, unsigned i, uint32_t bits, fy_httpd_req_fn fn, void *arg)
{
    conn *c = &h->c[i];
    if (c->state == C_WRITE && (bits & (FY_IO_WRITE | FY_IO_HUP))) {
        flush_out(h, c);
        return;
    }
    if (c->state != C_READ && c->state != C_WAIT)
        return;
    for (;;) {
        char tmp[1024];
        char *dst = c->state == C_READ ? c->in + c->nin : tmp;
        size_t room = c->state == C_READ ? REQ_MAX - c->nin : sizeof tmp;
        if (room == 0) {
            c->state = C_WAIT;
            fy_httpd_reply(h, id_of(i, c->gen), 431, "text/plain", "request too large\n", 18);
            return;
        }
        ssize_t k = fy_sock_recv(c->fd, dst, room);
        if (k == -EAGAIN)
            return;
        if (k == 0 && c->state == C_WAIT)
            return; /* the client only shut its sending side: the answer still goes out */
        if (k <= 0) { /* closed or error: a pending answer has no one to go to */
            conn_close(h, c);
            return;
        }
        if (c->state != C_READ)
            continue; /* bytes after the request: ignored */
        c->nin += (size_t)k;
        c->in[c->nin] = 0;
        if (memchr(dst, 0, (size_t)k)) { /* no request has a NUL: a Ferry hello, say so now */
            c->state = C_WAIT;
            fy_httpd_reply(h, id_of(i, c->gen), 400, "text/plain", "bad request\n", 12);
            return;
        }
        if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n")) {
            parse(h, i, fn, arg);
            if (c->state != C_WAIT)
                return; /* answered and maybe closed already */
        }
    }
}

void fy_httpd_io(fy_httpd *h, const fy_msg *m, fy_httpd_req_fn fn, void *arg)
{
    assert(fy_actor_running_here(h->owner)); /* the owner's handler only */
    uint64_t low = m->u64[0] & FY_HTTPD_TAG_MASK;
    unsigned slot = (unsigned)(low & 0xFF);
    uint32_t gen = (uint32_t)(low >> 8);
    if (slot == 0) {
        accept_all(h, fn, arg);
        return;
    }
    if (slot > FY_HTTPD_CONNS)
        return;
    conn *c = &h->c[slot - 1];
    if (c->state == C_FREE || (c->gen & 0xFFFFFF) != gen)
        return; /* readiness of a connection already closed */
    on_conn(h, slot - 1, m->u32, fn, arg);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

int fy_httpd_reply(fy_httpd *h, uint32_t id, int status, const char *ctype, const char *body,
                   size_t len)
{
    return fy_httpd_answer(h, id, status, ctype, body, len, false);
}

int fy_httpd_answer(fy_httpd *h, uint32_t id, int status, const char *ctype, const char *body,
                    size_t len, bool head_only)
{
    assert(fy_actor_running_here(h->owner));
    unsigned slot = id & 0xFF;
    if (slot == 0 || slot > FY_HTTPD_CONNS)
        return -ENOENT;
    conn *c = &h->c[slot - 1];
    if (c->state != C_WAIT || (c->gen & 0xFFFFFF) != (id >> 8))
        return -ENOENT;
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, reason(status), ctype, len);
    c->out = malloc((size_t)hn + len);
    if (!c->out) {
        conn_close(h, c);
        return -ENOMEM;
    }
    memcpy(c->out, head, (size_t)hn);
    if (head_only)
        len = 0;
    memcpy(c->out + hn, body, len);
    c->nout = (size_t)hn + len;
    c->off = 0;
    c->state = C_WRITE;
    flush_out(h, c);
    return 0;
}

void fy_httpd_sweep(fy_httpd *h, unsigned idle_ms)
{
    assert(fy_actor_running_here(h->owner)); /* the owner's handler only */
    uint64_t now = fy_now_ns();
    for (unsigned i = 0; i < FY_HTTPD_CONNS; i++)
        if (h->c[i].state != C_FREE && now - h->c[i].since_ns > (uint64_t)idle_ms * 1000000u)
            conn_close(h, &h->c[i]);
}

void fy_httpd_free(fy_httpd *h)
{
    if (!h)
        return;
    for (unsigned i = 0; i < FY_HTTPD_CONNS; i++)
        if (h->c[i].state != C_FREE)
            conn_close(h, &h->c[i]);
    (void)fy_io_del(h->s, h->lfd); /* -ENOENT when never started */
    close(h->lfd);
    free(h);
}
