/*
 * tls.h - TLS settings shared by many connections (fy_tls, an SSL_CTX):
 * the relay's certificate and key (and the CAs its clients' certificates
 * must chain to), or a client's CAs (and its own certificate).  A fy_tls
 * is built at startup; any thread may attach it to a connection
 * (fy_conn_tls_start, conn.h).  A server's certificate and key may be
 * replaced while connections use it (fy_tls_server_reload).
 *
 * TLS 1.2 and 1.3 only, OpenSSL's default cipher list, kernel TLS asked for
 * (SSL_OP_ENABLE_KTLS; used where the kernel and the cipher allow), no
 * session tickets (the relay keeps no resumption state).  A peer that
 * closes without close_notify is an ordinary end of stream: Ferry's own
 * frames (bye, file-end with its SHA-256) say whether a transfer is whole.
 */
#ifndef FERRY_TLS_H
#define FERRY_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "ferry/conn.h"

/* Server settings: certificate chain (PEM) and its private key (PEM);
 * client_ca (NULL or "") set: every client must present a certificate that
 * chains to it.  0, or -FY_ETLS / -ENOMEM with the reason in err (file
 * names and OpenSSL's words).  Sets SIGPIPE to ignored. */
int fy_tls_server_new(const char *cert, const char *key, const char *client_ca, fy_tls **out,
                      char *err, size_t errcap);

/* Replace a server's certificate, key and client CAs with what the files
 * hold now (ferryd's SIGHUP; one thread at a time).  Handshakes that start
 * afterwards use the new ones; connections already made keep theirs.  0, or
 * -FY_ETLS / -ENOMEM / -EINVAL (not a server's) with the reason in err, and
 * then the old ones stay in force. */
int fy_tls_server_reload(fy_tls *t, const char *cert, const char *key, const char *client_ca,
                         char *err, size_t errcap);

/* The certificate in force, for a log line: "sha256=HEX not_after=\"DATE\""
 * (the leaf's SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256`
 * shows it without colons).  Any thread. */
void fy_tls_cert_describe(fy_tls *t, char *buf, size_t cap);

/* Client settings: ca (PEM file; NULL or "" = the system's trust store)
 * verifies the relay; cert/key (both or neither) are presented when the
 * relay asks for a client certificate.  Same returns as above. */
int fy_tls_client_new(const char *ca, const char *cert, const char *key, fy_tls **out,
                      char *err, size_t errcap);

/* Any thread, once no connection uses it (connections hold their own
 * reference to the SSL_CTX, so after their fy_conn_close).  NULL is fine. */
void fy_tls_free(fy_tls *t);

/* The name a client expects in the relay's certificate when no --tls-name
 * is given: the host part of server ("HOST:PORT", "[v6]:PORT"), "127.0.0.1"
 * when it is empty.  0 or -EINVAL (does not fit). */
int fy_tls_name_from_server(const char *server, char *out, size_t cap);

/* Does the first byte a client sent start a TLS handshake record?  (A
 * Ferry frame starts with the magic "FERY"; a TLS ClientHello with 0x16.) */
static inline bool fy_tls_looks_like_hello(unsigned char first)
{
    return first == 0x16;
}

/* Does a byte the server sent start a TLS record (handshake 0x16 or alert
 * 0x15)?  For a plain client that got TLS back: "use --tls". */
static inline bool fy_tls_looks_like_record(unsigned char first)
{
    return first == 0x15 || first == 0x16;
}

#endif
