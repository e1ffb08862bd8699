/*
 * conn.c - a blocking client connection to a relay (see conn.h).
 *
 * Why blocking: a client has one conversation at a time, and a blocked
 * read or write is exactly the backpressure it should feel; the kernel does
 * the waiting, with no event loop to get wrong.  Interruption comes from
 * cancel.c shutting the socket down, which every blocked call notices.
 */
#include "cli/conn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cliexit.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/sock.h"

#define CONN_CONNECT_TIMEOUT_MS 5000
#define CONN_RBUF (1u << 20)
#define CONN_FAIL_READ_MS 500

struct fy_cli_conn {
    fy_conn conn; /* plain or TLS */
    fy_dec *dec;
    uint8_t *rbuf;
    size_t rlen, roff;
    uint32_t channel;
    fy_cli_cancel *cancel;
    bool got_error;  /* the relay sent an error frame: err holds it */
    int resolve_err; /* the host lookup failed: fy_addr_resolve's code */
    uint64_t frames; /* whole frames decoded: 0 = the peer never spoke Ferry */
    char first[48];  /* the peer's first bytes, for "not a Ferry relay" */
    size_t nfirst;
    fy_error err;
    char server[128];
};

static int stopped_or(fy_cli_conn *k, int rc);

/* ---- opening --------------------------------------------------------------- */

int fy_cli_conn_open(const char *server, fy_cli_cancel *cancel, fy_cli_conn **out)
{
    return fy_cli_conn_open_timeout(server, CONN_CONNECT_TIMEOUT_MS, NULL, cancel, out);
}

/* The TLS handshake on the fresh blocking socket, bounded by timeout_ms. */
static int start_tls(fy_cli_conn *k, const fy_cli_tls *tls, int timeout_ms)
{
    char name[256];
    int rc = 0;

    if (tls->name && tls->name[0])
        snprintf(name, sizeof name, "%s", tls->name);
    else
        rc = fy_tls_name_from_server(k->server, name, sizeof name);
    if (rc == 0)
        rc = fy_conn_tls_start(&k->conn, tls->ctx, name);
    if (rc == 0)
        rc = fy_sock_set_timeout(k->conn.fd, timeout_ms);
    if (rc == 0)
        rc = fy_conn_handshake(&k->conn);
    if (rc == -EAGAIN)
        rc = -ETIMEDOUT;
    if (rc == 0)
        rc = fy_sock_set_timeout(k->conn.fd, 0);
    return rc;
}

int fy_cli_conn_open_timeout(const char *server, int timeout_ms, const fy_cli_tls *tls,
                             fy_cli_cancel *cancel, fy_cli_conn **out)
{
    fy_cli_conn *k = calloc(1, sizeof *k);
    if (!k) {
        *out = NULL;
        return -ENOMEM;
    }
    *out = k;
    k->conn = fy_conn_plain(-1);
    k->cancel = cancel;
    snprintf(k->server, sizeof k->server, "%s", server);
    k->rbuf = malloc(CONN_RBUF);
    /* The relay's max payload is only known after welcome; the decoder takes
     * the protocol's hard limit so any configured relay is understood. */
    int rc = k->rbuf ? fy_dec_new(FY_PAYLOAD_MAX_LIMIT, &k->dec) : -ENOMEM;
    if (rc < 0)
        return rc;
    fy_addr a[FY_ADDR_MAX];
    size_t n = 0;
    rc = fy_addr_resolve(server, "127.0.0.1", a, FY_ADDR_MAX, &n);
    if (rc < 0) {
        k->resolve_err = rc;
        return rc == -EINVAL ? -EINVAL : -ENXIO;
    }
    int fd = fy_sock_connect_any(a, n, timeout_ms > 0 ? timeout_ms : CONN_CONNECT_TIMEOUT_MS, NULL);
    if (fd < 0)
        return fd;
    k->conn = fy_conn_plain(fd);
    rc = fy_cli_cancel_add_fd(cancel, fd);
    if (rc == 0 && fy_cli_cancel_requested(cancel))
        rc = -EINTR;
    if (rc == 0 && tls && tls->ctx)
        rc = stopped_or(k, start_tls(k, tls, timeout_ms > 0 ? timeout_ms : CONN_CONNECT_TIMEOUT_MS));
    return rc;
}

bool fy_cli_conn_relay_error(const fy_cli_conn *k)
{
    return k && k->got_error;
}

const char *fy_cli_conn_error_text(const fy_cli_conn *k)
{
    return k && k->got_error ? k->err.text : "";
}

const char *fy_cli_conn_server(const fy_cli_conn *k)
{
    return k->server;
}

void fy_cli_conn_close(fy_cli_conn *k, bool bye)
{
    if (!k)
        return;
    if (k->conn.fd >= 0) {
        if (bye && !k->got_error)
            (void)fy_cli_conn_send(k, FY_FT_BYE, 0, NULL, 0);
        fy_cli_cancel_remove_fd(k->cancel, k->conn.fd);
        fy_conn_close(&k->conn);
    }
    fy_dec_free(k->dec);
    free(k->rbuf);
    free(k);
}

/* ---- reading ---------------------------------------------------------------- */

/* 1 when the socket has bytes (or EOF/error) within timeout_ms, 0 if not. */
static int wait_readable(fy_cli_conn *k, int timeout_ms)
{
    struct pollfd p = {.fd = k->conn.fd, .events = POLLIN};

    if (fy_conn_pending(&k->conn))
        return 1; /* TLS holds bytes the socket will not announce again */
    for (;;) {
        int n = poll(&p, 1, timeout_ms);
        if (n >= 0)
            return n > 0;
        if (errno != EINTR)
            return -errno;
    }
}

static int stopped_or(fy_cli_conn *k, int rc)
{
    return fy_cli_cancel_requested(k->cancel) ? -EINTR : rc;
}

static int on_error_frame(fy_cli_conn *k, const fy_frame *f)
{
    k->got_error = true;
    if (fy_error_decode(f->payload, f->hdr.len, &k->err) < 0) {
        k->err.code = FY_EPROTO;
        snprintf(k->err.text, sizeof k->err.text, "undecodable error frame");
    }
    if (k->err.code < 1000)
        return -FY_EPROTO;
    return -(int)k->err.code;
}

/* Read more bytes into the empty buffer.  timeout_ms < 0 blocks. */
static int fill(fy_cli_conn *k, int timeout_ms)
{
    if (timeout_ms >= 0) {
        int r = wait_readable(k, timeout_ms);
        if (r <= 0)
            return r < 0 ? stopped_or(k, r) : (timeout_ms ? -ETIMEDOUT : 0);
    }
    ssize_t n = fy_conn_recv(&k->conn, k->rbuf, CONN_RBUF);
    if (n == 0)
        return stopped_or(k, -ENODATA);
    if (n < 0)
        return stopped_or(k, (int)n);
    k->rlen = (size_t)n;
    k->roff = 0;
    if (k->nfirst == 0 && k->frames == 0) {
        k->nfirst = (size_t)n < sizeof k->first ? (size_t)n : sizeof k->first;
        memcpy(k->first, k->rbuf, k->nfirst);
    }
    return 1;
}

static int next_frame(fy_cli_conn *k, fy_frame *f, int timeout_ms)
{
    for (;;) {
        if (k->roff == k->rlen) {
            int rc = fill(k, timeout_ms);
            if (rc <= 0)
                return rc;
        }
        size_t used = 0;
        int rc = fy_dec_feed(k->dec, k->rbuf + k->roff, k->rlen - k->roff, &used, f);
        k->roff += used;
        if (rc < 0)
            return rc;
        if (rc == 0)
            continue;
        k->frames++;
        if (f->hdr.type == FY_FT_PING) {
            rc = fy_cli_conn_send(k, FY_FT_PONG, f->hdr.seq, f->payload, f->hdr.len);
            if (rc < 0)
                return rc;
            continue;
        }
        if (f->hdr.type == FY_FT_PONG)
            continue;
        if (f->hdr.type == FY_FT_ERROR)
            return on_error_frame(k, f);
        return 1;
    }
}

int fy_cli_conn_next(fy_cli_conn *k, fy_frame *f, bool poll_only)
{
    return next_frame(k, f, poll_only ? 0 : -1);
}

int fy_cli_conn_hello(fy_cli_conn *k, const fy_hello *h, int timeout_ms, fy_welcome *w)
{
    uint8_t p[FY_CTL_PAYLOAD_MAX];
    size_t n;
    int rc = fy_hello_encode(h, p, sizeof p, &n);
    if (rc < 0)
        return rc;
    rc = fy_cli_conn_send(k, FY_FT_HELLO, 0, p, n);
    if (rc < 0)
        return rc;
    return fy_cli_conn_welcome(k, timeout_ms, w);
}

int fy_cli_conn_welcome(fy_cli_conn *k, int timeout_ms, fy_welcome *w)
{
    fy_frame f;
    int rc = next_frame(k, &f, timeout_ms);
    /* Bytes that are not a Ferry frame before any frame: another protocol
     * (an HTTP server, the metrics port, ssh) answered, not a relay. */
    if (rc < 0 && -rc >= 1000 && !k->got_error && k->frames == 0 &&
        k->nfirst > 0)
        return -EPROTONOSUPPORT;
    if (rc < 0)
        return rc;
    if (rc == 0)
        return -ETIMEDOUT;
    if (f.hdr.type == FY_FT_NOCHAN)
        return -FY_ENOCHAN; /* FY_HELLO_F_WAIT: the welcome comes when the channel does */
    if (f.hdr.type == FY_FT_BYE)
        return -FY_ESHUTDOWN; /* the relay stops before it welcomed us: try again later */
    if (f.hdr.type != FY_FT_WELCOME)
        return -FY_EPROTO;
    rc = fy_welcome_decode(f.payload, f.hdr.len, w);
    if (rc < 0)
        return rc;
    k->channel = w->channel;
    return 0;
}

/* ---- writing ---------------------------------------------------------------- */

void fy_cli_conn_seal(fy_cli_conn *k, uint8_t type, uint64_t seq, const void *p, size_t n,
                      uint8_t out[FY_FRAME_HDR_SIZE])
{
    fy_frame_hdr h = {.type = type, .channel = k->channel, .seq = seq};
    fy_frame_seal(&h, p, n, out);
}

int fy_cli_conn_sendv(fy_cli_conn *k, struct iovec *iov, int iovcnt)
{
    int rc = 0;

    while (iovcnt > 0 && rc == 0) {
        ssize_t w = fy_conn_writev(&k->conn, iov, iovcnt > IOV_MAX ? IOV_MAX : iovcnt);
        if (w < 0) {
            rc = (int)w;
            break;
        }
        fy_sock_iov_advance(&iov, &iovcnt, (size_t)w);
    }
    if (rc == 0)
        rc = fy_conn_flush(&k->conn); /* blocking: returns once the record is out */
    return rc < 0 ? stopped_or(k, rc) : 0;
}

int fy_cli_conn_send(fy_cli_conn *k, uint8_t type, uint64_t seq, const void *p, size_t n)
{
    uint8_t hdr[FY_FRAME_HDR_SIZE];
    fy_cli_conn_seal(k, type, seq, p, n, hdr);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)p, n}};
    return fy_cli_conn_sendv(k, iov, n ? 2 : 1);
}

/* ---- failures --------------------------------------------------------------- */

/* The peer answered hello with bytes that are not a Ferry frame: name it
 * as such, quoting what it said (printable bytes only). */
static int not_a_relay(fy_cli_conn *k, const char *what)
{
    char said[sizeof k->first + 1], q[128];
    size_t n = 0;
    for (size_t i = 0; i < k->nfirst && k->first[i] != '\r' && k->first[i] != '\n'; i++)
        said[n++] = k->first[i] >= 0x20 && k->first[i] < 0x7f ? k->first[i] : '.';
    said[n] = 0;
    fy_klog(FY_LOG_ERROR, "not a Ferry relay: the server answered in another protocol",
            "server=%s during=%s answer=%s hint=\"check the port: ferryd prints listening=HOST:PORT, "
            "not its metrics=HOST:PORT\" exit=%d", k->server, what, fy_klog_q(said, q, sizeof q),
            FY_CLI_EXIT_NET);
    return FY_CLI_EXIT_NET;
}

int fy_cli_conn_fail(fy_cli_conn *k, int rc, const char *what)
{
    char q[FY_ERRTEXT_MAX + 8];
    if (rc == -EINTR) {
        fy_klog(FY_LOG_WARN, "interrupted", "during=%s", what);
        return FY_CLI_EXIT_INTR;
    }
    if (rc == -EINVAL && k && k->conn.fd < 0) {
        fy_klog(FY_LOG_ERROR, "bad server address: expected HOST:PORT ([::1]:PORT for IPv6)",
                "server=%s exit=%d", fy_klog_q(k->server, q, sizeof q), FY_CLI_EXIT_USAGE);
        return FY_CLI_EXIT_USAGE;
    }
    if (rc == -ENXIO && k && k->resolve_err) {
        fy_klog(FY_LOG_ERROR, "cannot resolve the relay's host name", "server=%s err=%s "
                "reason=%s exit=%d", fy_klog_q(k->server, q, sizeof q), fy_errname(k->resolve_err),
                k->resolve_err == -ENXIO ? "\"unknown host name\"" : "\"resolver failed\"",
                FY_CLI_EXIT_NET);
        return FY_CLI_EXIT_NET;
    }
    if (rc == -EPROTONOSUPPORT && k)
        return not_a_relay(k, what);
    if (rc == -ETIMEDOUT && k && k->conn.fd >= 0 && k->frames == 0 && k->nfirst == 0 &&
        !strcmp(what, "hello")) {
        fy_klog(FY_LOG_ERROR, "no answer to the hello: is this a Ferry relay?", "server=%s "
                "during=hello err=ETIMEDOUT hint=\"a relay answers at once; check the address and "
                "port, or raise --connect-timeout\" exit=%d", k->server, FY_CLI_EXIT_NET);
        return FY_CLI_EXIT_NET;
    }
    /* A write that failed because the relay closed on us usually has the
     * relay's reason waiting in our receive buffer: fetch it to say why. */
    if (k && k->conn.fd >= 0 && !k->got_error && -rc < 1000) {
        fy_frame f;
        for (int i = 0; i < 64 && !k->got_error; i++)
            if (next_frame(k, &f, CONN_FAIL_READ_MS) <= 0)
                break;
    }
    if (k && k->got_error) {
        int code = fy_cli_exit_for(-(int)k->err.code);
        if (code == FY_CLI_EXIT_NET || code == FY_CLI_EXIT_OK || code == FY_CLI_EXIT_USAGE)
            code = FY_CLI_EXIT_REFUSED;
        if (k->err.code == FY_ESHUTDOWN || k->err.code == FY_ETIMEOUT ||
            k->err.code == FY_ENOTLEADER) /* a cluster without a reachable leader */
            code = FY_CLI_EXIT_NET;
        fy_klog(FY_LOG_ERROR, "refused by relay", "server=%s during=%s code=%s text=%s exit=%d",
                k->server, what, fy_errname((int)k->err.code), fy_klog_q(k->err.text, q, sizeof q),
                code);
        return code;
    }
    int code = fy_cli_exit_for(rc);
    if (rc == -FY_ETLS && k) {
        const char *why = fy_conn_tls_error(&k->conn);
        const char *hint = "";
        if (strstr(why, "wrong version number") || strstr(why, "packet length too long"))
            hint = " (the relay answered in plaintext: it does not speak TLS; drop --tls, or "
                   "give ferryd --tls-cert and --tls-key)";
        else if (strstr(why, "certificate verify failed"))
            hint = " (check --ca, and --tls-name if the certificate names the relay differently "
                   "from --server)";
        else if (strstr(why, "certificate required"))
            hint = " (the relay requires a client certificate: --tls-cert and --tls-key)";
        char r[400];
        snprintf(r, sizeof r, "%s%s", why[0] ? why : "TLS failed", hint);
        fy_klog(FY_LOG_ERROR, "TLS with relay failed", "server=%s during=%s err=%s reason=%s "
                "exit=%d", k->server, what, fy_errname(rc), fy_klog_q(r, q, sizeof q), code);
        return code;
    }
    const char *msg = "connection to relay lost";
    if (-rc >= 1000)
        msg = rc == -FY_EDIGEST || rc == -FY_ESIZE ? "received file failed its check"
              : code == FY_CLI_EXIT_CHECKSUM     ? "corrupt frame from relay"
                                                 : "protocol error from relay";
    else if (rc == -ENODATA)
        msg = "connection to relay lost: the relay closed it";
    else if (!strcmp(what, "connect"))
        msg = "cannot connect to relay";
    fy_klog(FY_LOG_ERROR, msg, "server=%s during=%s err=%s reason=%s exit=%d",
            k ? k->server : "?", what, fy_errname(rc), fy_klog_q(fy_strerror(rc), q, sizeof q), code);
    return code;
}
