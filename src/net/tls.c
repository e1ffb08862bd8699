/*
 * tls.c - TLS with OpenSSL: the shared settings (fy_tls, include/ferry/
 * tls.h) and one connection's TLS state (fy__tls_conn, the TLS half of
 * include/ferry/conn.h; conn.c dispatches to it).
 *
 * Why a record buffer of our own: OpenSSL insists that a write which
 * wanted the socket again is retried with the same bytes, and an owner
 * that was told "-EAGAIN" may well offer different bytes next (the
 * forwarder puts control frames between stream frames).  So a write copies
 * at most one record's worth into wbuf, calls SSL_write on that, and counts
 * the bytes as taken whatever SSL_write said: a retry is this module's job
 * (tls_flush), always with wbuf and the same length.  The copy is 16 KiB
 * of memcpy per record that is encrypted anyway; kernel TLS sendfile
 * (SSL_sendfile) needs no copy at all.  wbuf lives only while a write is
 * in progress or held (with SSL_MODE_RELEASE_BUFFERS, OpenSSL's own record
 * buffers too), so 10 000 idle receivers do not hold 16 KiB each.
 *
 * A server's certificate and key can be replaced while it runs
 * (fy_tls_server_reload, ferryd's SIGHUP): a new SSL_CTX is built aside and
 * swapped in under a mutex that SSL_new also takes, so a connection starts
 * with the old context or the new one, never a freed one.  Each SSL holds
 * its own reference to its context (SSL_new takes one), so connections
 * made before the swap keep the old certificate to their end and the old
 * context is freed with the last of them.
 *
 * OpenSSL's error queue is per thread: every call clears it first, and a
 * failure's reason is kept in the connection (err) before anything else can
 * push onto the queue, so the owner's log line and the client's message
 * say what went wrong.
 */
#include "ferry/tls.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ferry/err.h"
#include "net/tls_int.h"

#define RECORD (16u << 10) /* TLS's largest plaintext record */

struct fy_tls {
    pthread_mutex_t lock; /* guards ctx: fy__tls_start reads it, reload swaps it */
    SSL_CTX *ctx;
    bool server;
};

struct fy__tls_conn {
    SSL *ssl;
    bool done, ktls_send, ktls_recv;
    uint8_t *wbuf; /* the record being written; allocated per write call, freed once out */
    size_t wcap;
    size_t wlen;   /* wbuf[0..wlen) is in an SSL_write that wanted the socket again */
    char err[200]; /* why the last call failed (-FY_ETLS) */
};

/* ---- errors ---------------------------------------------------------------- */

/* OpenSSL's oldest queued reason, as "reason (file)" when one is given. */
static void queue_text(char *buf, size_t cap, const char *what)
{
    unsigned long e = ERR_peek_error();
    char r[160];

    if (!e) {
        snprintf(buf, cap, "%s", what);
    } else {
        const char *reason = ERR_reason_error_string(e);
        if (!reason) {
            ERR_error_string_n(e, r, sizeof r);
            reason = r;
        }
        snprintf(buf, cap, "%s: %s", what, reason);
    }
    ERR_clear_error();
}

/* Keep the reason for a failed SSL call: a certificate the verifier refused
 * says which check failed, anything else OpenSSL's reason. */
static void keep_reason(fy__tls_conn *t)
{
    long v = SSL_get_verify_result(t->ssl);

    if (v != X509_V_OK) {
        snprintf(t->err, sizeof t->err, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else {
        queue_text(t->err, sizeof t->err, "TLS error");
    }
}

/* The result of an SSL call that returned ok (> 0 bytes or 1) or not:
 * -EAGAIN when it wants the socket either way, 0 at a close_notify (and, with
 * SSL_OP_IGNORE_UNEXPECTED_EOF, a plain close), -errno or -FY_ETLS. */
static int map_err(fy__tls_conn *t, int ret)
{
    int e = SSL_get_error(t->ssl, ret), saved = errno;

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (saved == EAGAIN || saved == EWOULDBLOCK)
            return -EAGAIN; /* a blocking socket's SO_RCVTIMEO ran out */
        return saved ? -saved : -ECONNRESET;
    default:
        keep_reason(t);
        return -FY_ETLS;
    }
}

/* ---- settings ---------------------------------------------------------------- */

static SSL_CTX *ctx_new(bool server, char *err, size_t errcap)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    if (!ctx) {
        queue_text(err, errcap, "SSL_CTX_new failed");
        return NULL;
    }
    /* The socket BIO writes with write(2): a vanished peer must be an error
     * code for that connection, not a signal for the process. */
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_RENEGOTIATION);
    /* Idle connections hold no 34 KiB record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (server)
        SSL_CTX_set_num_tickets(ctx, 0);
    return ctx;
}

static int finish(SSL_CTX *ctx, bool server, fy_tls **out)
{
    fy_tls *t = calloc(1, sizeof *t);

    if (!t) {
        SSL_CTX_free(ctx);
        return -ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->ctx = ctx;
    t->server = server;
    *out = t;
    return 0;
}

static int load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errcap)
{
    char what[600];

    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(what, sizeof what, "cannot load certificate %s", cert);
        queue_text(err, errcap, what);
        return -FY_ETLS;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(what, sizeof what, "cannot load private key %s", key);
        queue_text(err, errcap, what);
        return -FY_ETLS;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof what, "private key %s does not match certificate %s", key, cert);
        queue_text(err, errcap, what);
        return -FY_ETLS;
    }
    return 0;
}

static int load_ca(SSL_CTX *ctx, const char *ca, char *err, size_t errcap)
{
    char what[600];

    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        snprintf(what, sizeof what, "cannot load CA certificates %s", ca);
        queue_text(err, errcap, what);
        return -FY_ETLS;
    }
    return 0;
}

/* A server context with cert, key and (optional) client_ca loaded: 0 with
 * *out, or -FY_ETLS with the reason in err. */
static int server_ctx(const char *cert, const char *key, const char *client_ca, SSL_CTX **out,
                      char *err, size_t errcap)
{
    SSL_CTX *ctx = ctx_new(true, err, errcap);
    int rc;

    *out = NULL;
    if (!ctx)
        return -FY_ETLS;
    if ((rc = load_pair(ctx, cert, key, err, errcap)) < 0)
        goto fail;
    if (client_ca && client_ca[0]) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (!names || load_ca(ctx, client_ca, err, errcap) < 0) {
            if (!names) {
                char what[600];
                snprintf(what, sizeof what, "cannot load client CA certificates %s", client_ca);
                queue_text(err, errcap, what);
            }
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            rc = -FY_ETLS;
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    *out = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return rc;
}

int fy_tls_server_new(const char *cert, const char *key, const char *client_ca, fy_tls **out,
                      char *err, size_t errcap)
{
    SSL_CTX *ctx;
    int rc = server_ctx(cert, key, client_ca, &ctx, err, errcap);

    *out = NULL;
    return rc < 0 ? rc : finish(ctx, true, out);
}

int fy_tls_server_reload(fy_tls *t, const char *cert, const char *key, const char *client_ca,
                         char *err, size_t errcap)
{
    SSL_CTX *ctx, *old;
    int rc;

    if (!t->server) {
        snprintf(err, errcap, "not a server's TLS settings");
        return -EINVAL;
    }
    if ((rc = server_ctx(cert, key, client_ca, &ctx, err, errcap)) < 0)
        return rc; /* the old context stays in force */
    pthread_mutex_lock(&t->lock);
    old = t->ctx;
    t->ctx = ctx;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* connections made with it hold their own references */
    return 0;
}

void fy_tls_cert_describe(fy_tls *t, char *buf, size_t cap)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1] = "", until[64] = "?";

    pthread_mutex_lock(&t->lock);
    X509 *x = SSL_CTX_get0_certificate(t->ctx);
    if (x && X509_digest(x, EVP_sha256(), md, &n) == 1) {
        for (unsigned i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        BIO *b = BIO_new(BIO_s_mem());
        if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
            int len = BIO_read(b, until, (int)sizeof until - 1);
            until[len > 0 ? len : 0] = 0;
        }
        BIO_free(b);
    }
    pthread_mutex_unlock(&t->lock);
    ERR_clear_error();
    snprintf(buf, cap, "sha256=%s not_after=\"%s\"", hex[0] ? hex : "none", until);
}

int fy_tls_client_new(const char *ca, const char *cert, const char *key, fy_tls **out,
                      char *err, size_t errcap)
{
    SSL_CTX *ctx = ctx_new(false, err, errcap);
    int rc = 0;

    *out = NULL;
    if (!ctx)
        return -FY_ETLS;
    if ((cert && cert[0]) != (key && key[0])) {
        snprintf(err, errcap, "a client certificate needs both a certificate and a key file");
        rc = -FY_ETLS;
        goto fail;
    }
    if (cert && cert[0] && (rc = load_pair(ctx, cert, key, err, errcap)) < 0)
        goto fail;
    if (ca && ca[0]) {
        if ((rc = load_ca(ctx, ca, err, errcap)) < 0)
            goto fail;
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        queue_text(err, errcap, "cannot load the system's trust store");
        rc = -FY_ETLS;
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return finish(ctx, false, out);
fail:
    SSL_CTX_free(ctx);
    return rc;
}

void fy_tls_free(fy_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int fy_tls_name_from_server(const char *server, char *out, size_t cap)
{
    const char *b = server, *e;

    if (server[0] == '[') {
        b = server + 1;
        e = strchr(b, ']');
    } else {
        e = strrchr(server, ':');
    }
    if (!e)
        e = server + strlen(server);
    size_t n = (size_t)(e - b);
    if (n == 0) {
        b = "127.0.0.1";
        n = strlen(b);
    }
    if (n >= cap)
        return -EINVAL;
    memcpy(out, b, n);
    out[n] = '\0';
    return 0;
}

/* ---- one connection ------------------------------------------------------------ */

static bool is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

int fy__tls_start(fy__tls_conn **out, int fd, fy_tls *tls, const char *name)
{
    fy__tls_conn *t = calloc(1, sizeof *t);

    *out = NULL;
    if (!t)
        return -ENOMEM;
    ERR_clear_error();
    pthread_mutex_lock(&tls->lock); /* a reload may be swapping ctx */
    t->ssl = SSL_new(tls->ctx);
    pthread_mutex_unlock(&tls->lock);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1)
        goto fail;
    if (tls->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (name && name[0]) {
            /* The address the client dialled (or --tls-name) must be in the
             * certificate: an IP in its IP SANs, a name in its DNS SANs. */
            if (is_ip(name)) {
                if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1)
                    goto fail;
            } else if (SSL_set1_host(t->ssl, name) != 1 ||
                       SSL_set_tlsext_host_name(t->ssl, name) != 1) {
                goto fail;
            }
        }
    }
    *out = t;
    return 0;
fail:
    ERR_clear_error();
    SSL_free(t->ssl);
    free(t);
    return -FY_ETLS;
}

void fy__tls_free(fy__tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t->wbuf);
    free(t);
}

/* Room for an n-byte record in wbuf (nothing held).  0 or -ENOMEM. */
static int wbuf_reserve(fy__tls_conn *t, size_t n)
{
    if (t->wcap >= n)
        return 0;
    uint8_t *b = realloc(t->wbuf, n);
    if (!b)
        return -ENOMEM;
    t->wbuf = b;
    t->wcap = n;
    return 0;
}

/* Nothing held: give the record buffer back. */
static void wbuf_release(fy__tls_conn *t)
{
    if (t->wlen)
        return;
    free(t->wbuf);
    t->wbuf = NULL;
    t->wcap = 0;
}

int fy__tls_handshake(fy__tls_conn *t)
{
    if (t->done)
        return 0;
    ERR_clear_error();
    int ret = SSL_do_handshake(t->ssl);
    if (ret == 1) {
        t->done = true;
        t->ktls_send = BIO_get_ktls_send(SSL_get_wbio(t->ssl)) > 0;
        t->ktls_recv = BIO_get_ktls_recv(SSL_get_rbio(t->ssl)) > 0;
        return 0;
    }
    int rc = map_err(t, ret);
    if (rc == 0) { /* closed during the handshake */
        snprintf(t->err, sizeof t->err, "peer closed during the TLS handshake");
        return -ECONNRESET;
    }
    return rc;
}

/* Send the record in wbuf: 0 when it is out (or there is none), -EAGAIN,
 * -errno or -FY_ETLS.  Keeps wbuf (a write call may fill it again). */
static int flush_record(fy__tls_conn *t)
{
    size_t w = 0;

    if (!t->wlen)
        return 0;
    ERR_clear_error();
    if (SSL_write_ex(t->ssl, t->wbuf, t->wlen, &w) == 1) {
        t->wlen = 0; /* without partial writes, ok means all of it */
        return 0;
    }
    int rc = map_err(t, 0);
    return rc == 0 ? -EPIPE : rc;
}

int fy__tls_flush(fy__tls_conn *t)
{
    int rc = flush_record(t);
    if (rc == 0)
        wbuf_release(t);
    return rc;
}

ssize_t fy__tls_recv(fy__tls_conn *t, void *buf, size_t n)
{
    size_t got = 0;

    ERR_clear_error();
    if (SSL_read_ex(t->ssl, buf, n, &got) == 1)
        return (ssize_t)got;
    return map_err(t, 0);
}

ssize_t fy__tls_readv(fy__tls_conn *t, const struct iovec *iov, int iovcnt)
{
    size_t tot = 0;

    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_len)
            continue;
        ssize_t r = fy__tls_recv(t, iov[i].iov_base, iov[i].iov_len);
        if (r <= 0)
            return tot ? (ssize_t)tot : r;
        tot += (size_t)r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return (ssize_t)tot;
}

ssize_t fy__tls_writev(fy__tls_conn *t, const struct iovec *iov, int iovcnt)
{
    size_t taken = 0, ioff = 0;
    int i = 0, rc;

    if ((rc = flush_record(t)) < 0)
        return rc;
    size_t all = 0;
    for (int k = 0; k < iovcnt && all < RECORD; k++)
        all += iov[k].iov_len;
    if (wbuf_reserve(t, all < RECORD ? all : RECORD) < 0)
        return -ENOMEM;
    while (i < iovcnt) {
        size_t n = 0;
        while (i < iovcnt && n < RECORD) {
            size_t k = iov[i].iov_len - ioff;
            if (k > RECORD - n)
                k = RECORD - n;
            memcpy(t->wbuf + n, (const uint8_t *)iov[i].iov_base + ioff, k);
            n += k;
            ioff += k;
            if (ioff == iov[i].iov_len) {
                i++;
                ioff = 0;
            }
        }
        if (!n)
            break;
        t->wlen = n;
        taken += n; /* ours now: a retry is tls_flush's job */
        if (flush_record(t) < 0)
            break; /* -EAGAIN, or an error the next call reports */
    }
    wbuf_release(t);
    return (ssize_t)taken;
}

ssize_t fy__tls_sendfile(fy__tls_conn *t, int in_fd, off_t off, size_t n)
{
    int rc;

    if ((rc = flush_record(t)) < 0)
        return rc;
    if (t->ktls_send) {
        ERR_clear_error();
        ossl_ssize_t w = SSL_sendfile(t->ssl, in_fd, off, n, 0);
        if (w >= 0)
            return (ssize_t)w;
        rc = map_err(t, (int)w);
        return rc == 0 ? -EPIPE : rc;
    }
    if (n > RECORD)
        n = RECORD;
    if (wbuf_reserve(t, RECORD) < 0)
        return -ENOMEM;
    ssize_t r;
    do {
        r = pread(in_fd, t->wbuf, n, off);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        rc = r < 0 ? -errno : 0;
        wbuf_release(t);
        return rc;
    }
    t->wlen = (size_t)r;
    (void)flush_record(t); /* -EAGAIN or an error: the next call says */
    wbuf_release(t);
    return r;
}

int fy__tls_shutdown(fy__tls_conn *t)
{
    if (t->done && !t->wlen) {
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl); /* close_notify, best effort */
        ERR_clear_error();
    }
    return 0;
}

bool fy__tls_pending(const fy__tls_conn *t)
{
    return SSL_has_pending(t->ssl) == 1;
}

bool fy__tls_ktls_send(const fy__tls_conn *t)
{
    return t->ktls_send;
}

bool fy__tls_ktls_recv(const fy__tls_conn *t)
{
    return t->ktls_recv;
}

const char *fy__tls_error(const fy__tls_conn *t)
{
    return t->err;
}

void fy__tls_describe(const fy__tls_conn *t, char *buf, size_t cap)
{
    if (!t->done) {
        snprintf(buf, cap, "handshake");
        return;
    }
    snprintf(buf, cap, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}
