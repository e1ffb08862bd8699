/*
 * link.c - a non-blocking client connection to a relay (src/link/link.h).
 *
 * Why a module of its own: every client that talks to a relay without
 * blocking -- the swarm's senders, receivers and storm connections today,
 * an edge relay's upstream link later -- needs the same few steps, and
 * each copy of them was a place for the handshake rules to drift.  What
 * stays with the caller is everything that differs between them: where
 * readiness comes from, what a frame means, and how much to read per turn
 * (the swarm meters slow readers and shares one receive buffer per
 * thread).
 *
 * The handshake is checked here so no caller can forget it: a welcome is
 * accepted only while one is awaited, and no stream frame may come before
 * it.  Errors are sticky like the decoder's: once the stream broke,
 * nothing after it can be trusted.
 */
#include "link/link.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ferry/err.h"

_Static_assert(FY_LINK_CTL_CAP >= FY_FRAME_HDR_SIZE + 16u + FY_NAME_MAX + FY_TOKEN_MAX,
               "the control queue must hold the longest hello frame");

void fy_link_init(fy_link *l)
{
    memset(l, 0, offsetof(fy_link, ctl)); /* the queue's bytes need no clearing */
    l->conn = fy_conn_plain(-1);
}

static void drop_input(fy_link *l)
{
    l->in = NULL;
    l->in_len = l->in_off = 0;
}

void fy_link_close(fy_link *l)
{
    fy_conn_close(&l->conn); /* closing also takes it out of any epoll set */
    fy_dec_free(l->dec);
    fy_link_init(l);
}

/* ---- connecting ------------------------------------------------------- */

int fy_link_connect(fy_link *l, const fy_addr *a, size_t max_payload)
{
    assert(l->conn.fd < 0 && !l->dec); /* a live link would leak its socket */
    fy_dec *d;
    int rc = fy_dec_new(max_payload, &d);
    if (rc < 0)
        return rc;
    int fd = fy_sock_connect_start(a);
    if (fd < 0) {
        fy_dec_free(d);
        return fd;
    }
    fy_link_init(l);
    l->conn = fy_conn_plain(fd);
    l->dec = d;
    l->state = FY_LINK_CONNECTING;
    return fd;
}

int fy_link_tls(fy_link *l, fy_tls *t, const char *name)
{
    if (l->state != FY_LINK_CONNECTING)
        return -EINVAL;
    return fy_conn_tls_start(&l->conn, t, name);
}

/* The TLS handshake, driven from flush and recv: 1 once done (the link
 * moves on as a plain connect would), 0 while it waits, or an error. */
static int handshake(fy_link *l)
{
    int rc = fy_conn_handshake(&l->conn);
    if (rc == -EAGAIN)
        return 0;
    if (rc < 0)
        return rc;
    l->state = l->hello ? FY_LINK_HELLO : FY_LINK_OPEN;
    return 1;
}

int fy_link_attach(fy_link *l, int fd, size_t max_payload)
{
    assert(l->conn.fd < 0 && !l->dec);
    if (fd < 0)
        return -EINVAL;
    fy_dec *d;
    int rc = fy_dec_new(max_payload, &d);
    if (rc < 0)
        return rc;
    fy_link_init(l);
    l->conn = fy_conn_plain(fd);
    l->dec = d;
    l->state = FY_LINK_OPEN;
    return 0;
}

int fy_link_connected(fy_link *l)
{
    if (l->state != FY_LINK_CONNECTING)
        return 0;
    int rc = fy_sock_connect_result(l->conn.fd);
    if (rc < 0)
        return rc;
    if (fy_conn_is_tls(&l->conn)) {
        l->state = FY_LINK_TLS;
        rc = handshake(l);
        return rc < 0 ? rc : 0;
    }
    l->state = l->hello ? FY_LINK_HELLO : FY_LINK_OPEN;
    return 0;
}

/* ---- control frames out ------------------------------------------------- */

int fy_link_ctl(fy_link *l, uint8_t type, uint32_t channel, uint64_t seq, const void *pl,
                size_t len)
{
    if (l->ctl_off == l->ctl_len) /* all written: reuse the queue from its start */
        l->ctl_off = l->ctl_len = 0;
    if (len > sizeof l->ctl || l->ctl_len + FY_FRAME_HDR_SIZE + len > sizeof l->ctl)
        return -ENOBUFS;
    fy_frame_hdr h = {.type = type, .channel = channel, .seq = seq};
    uint8_t *at = l->ctl + l->ctl_len;
    fy_frame_seal(&h, pl, len, at);
    if (len)
        memcpy(at + FY_FRAME_HDR_SIZE, pl, len);
    l->ctl_len += FY_FRAME_HDR_SIZE + len;
    return 0;
}

int fy_link_hello(fy_link *l, const fy_hello *h)
{
    uint8_t pl[FY_LINK_CTL_CAP];
    size_t len;
    int rc = fy_hello_encode(h, pl, sizeof pl, &len);
    if (rc == 0)
        rc = fy_link_ctl(l, FY_FT_HELLO, 0, 0, pl, len);
    if (rc < 0)
        return rc;
    l->hello = true;
    if (l->state == FY_LINK_OPEN)
        l->state = FY_LINK_HELLO;
    return 0;
}

int fy_link_flush(fy_link *l)
{
    int rc;

    if (l->state == FY_LINK_CONNECTING)
        return l->ctl_off == l->ctl_len; /* a write now would fail: wait for writability */
    if (l->state == FY_LINK_TLS && (rc = handshake(l)) <= 0)
        return rc;
    if ((rc = fy_conn_flush(&l->conn)) < 0)
        return rc == -EAGAIN ? 0 : rc;
    while (l->ctl_off < l->ctl_len) {
        struct iovec v = {l->ctl + l->ctl_off, l->ctl_len - l->ctl_off};
        ssize_t n = fy_conn_writev(&l->conn, &v, 1);
        if (n == -EAGAIN || n == 0)
            return 0;
        if (n < 0)
            return (int)n;
        l->ctl_off += (size_t)n;
    }
    l->ctl_len = l->ctl_off = 0;
    if ((rc = fy_conn_flush(&l->conn)) < 0)
        return rc == -EAGAIN ? 0 : rc;
    return 1;
}

/* ---- frames in -------------------------------------------------------------- */

ssize_t fy_link_recv(fy_link *l, uint8_t *buf, size_t cap)
{
    drop_input(l);
    if (l->conn.fd < 0)
        return -EBADF;
    if (l->state == FY_LINK_CONNECTING)
        return -EAGAIN;
    if (l->state == FY_LINK_TLS) {
        int rc = handshake(l);
        if (rc <= 0)
            return rc == 0 ? -EAGAIN : rc;
    }
    ssize_t n = fy_conn_recv(&l->conn, buf, cap);
    if (n > 0) {
        l->in = buf;
        l->in_len = (size_t)n;
    }
    return n;
}

static int fail(fy_link *l, int err)
{
    l->err = err;
    drop_input(l);
    return err;
}

/* The handshake's part of a frame the decoder passed. */
static int take_welcome(fy_link *l, const fy_frame *f)
{
    if (l->state != FY_LINK_HELLO)
        return -FY_EPROTO;
    int rc = fy_welcome_decode(f->payload, f->hdr.len, &l->welcome);
    if (rc < 0)
        return rc;
    l->state = FY_LINK_OPEN;
    return 0;
}

int fy_link_next(fy_link *l, fy_frame *f)
{
    if (l->err)
        return l->err;
    if (l->in_off >= l->in_len) {
        drop_input(l);
        return 0;
    }
    size_t used;
    int rc = fy_dec_feed(l->dec, l->in + l->in_off, l->in_len - l->in_off, &used, f);
    if (rc < 0)
        return fail(l, rc);
    l->in_off += used;
    if (rc == 0) {
        drop_input(l);
        return 0;
    }
    if (l->state != FY_LINK_OPEN) {
        if (f->hdr.type == FY_FT_WELCOME)
            rc = take_welcome(l, f);
        else if (fy_frame_is_stream(f->hdr.type))
            rc = -FY_EPROTO; /* nothing may stream before the welcome */
        else
            rc = 0;
    } else if (f->hdr.type == FY_FT_WELCOME) {
        rc = -FY_EPROTO; /* a second welcome, or one nobody asked for */
    }
    return rc < 0 ? fail(l, rc) : 1;
}

const uint8_t *fy_link_rest(const fy_link *l, size_t *len)
{
    *len = l->in && l->in_off < l->in_len ? l->in_len - l->in_off : 0;
    return *len ? l->in + l->in_off : NULL;
}

const fy_welcome *fy_link_welcome(const fy_link *l)
{
    return l->state == FY_LINK_OPEN && l->hello ? &l->welcome : NULL;
}
