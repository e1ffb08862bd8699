/*
 * session_int.h - what the session actor's two files share: its state and
 * the few calls the sender half (sender.c) makes into the connection half
 * (session.c).  Not for other actors: they reach a session by message.
 * All of it runs on the session's own turn.
 */
#ifndef FERRY_ACTORS_SESSION_INT_H
#define FERRY_ACTORS_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/conn.h"
#include "ferry/proto.h"
#include "ingest.h"
#include "net/outq.h"
#include "pump.h"
#include "relay_int.h"

enum st { S_TLS, S_HELLO, S_WAIT_CHAN, S_WAIT_ATTACH, S_SENDER, S_LINGER, S_DONE, S_QUERY,
          S_WAIT_LEAD };

typedef struct session {
    const fy__ctx *ctx;
    fy_actor *self;
    fy_conn conn;  /* TLS attached once the client's first byte says ClientHello */
    enum st st;
    char peer[64];
    uint64_t addr_key[2]; /* fy__addr_key of the peer, for a forwarder */
    fy_dec *dec;   /* until hello */
    uint8_t *rbuf; /* until hello; then the ingest has its own */
    size_t rcap, rlen, roff; /* unprocessed input: rbuf[roff..rlen) */
    fy_outq out;   /* control frames for the client */
    fy_hello hello;
    const fy__chan *chan;
    bool attach_sent, shutting, wr_shut;
    fy__pump pump;  /* the read loop (the hello's, then the ingest's) */
    fy_ingest *ing; /* a sender's frames, from attach on */
    bool has_part;  /* the channel had a file in progress at attach: part */
    fy__part_info part;
    int end_code; /* FY_E* that ended the connection, 0 = none */
    fy__idle idle;       /* a sender: its last byte, and our ping */
    struct fy_query *query; /* a query connection's query (actors/query.c) */
    uint32_t qrecs;         /* records sent for it */
    bool parked;         /* S_WAIT_CHAN, told no-channel: waiting for a sender to create it */
    uint64_t lead_t0;    /* --cluster: when the hello asked who leads its channel (0: not yet) */
    uint64_t rep_cepoch; /* a replica hello: the epoch this relay leads its channel in */
} session;

/* ---- session.c, for sender.c ------------------------------------------------ */

/* Queue a control frame for the client.  0, or a negative error (the
 * client does not read its control frames). */
int fy__session_send_ctl(session *s, uint8_t type, uint64_t seq, const uint8_t *p, size_t n);
/* End with an error frame (code, printf-style text) and one log line msg;
 * fy__session_fail logs "connection refused". */
void fy__session_fail_as(session *s, int code, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fy__session_fail(session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The connection is over (why: logged when not NULL); the actor stops. */
void fy__session_finish(session *s, const char *why);
/* Read and process what the socket has, as far as the state allows. */
void fy__session_drive(session *s);
/* The socket gave EOF (0) or -errno: the connection is over. */
void fy__session_closed(void *arg, ssize_t n);
/* The last frame is queued: close once it is out (a short linger). */
void fy__session_linger(session *s);
/* The hello passed its checks: ask the registry for the channel. */
void fy__session_ask_chan(session *s);

/* ---- session_lead.c: --cluster ------------------------------------------------------ */

/* The hello passed its checks: go on (fy__session_ask_chan) when this relay
 * leads the channel, answer FY_ENOTLEADER naming the leader when another
 * does, or wait for the member's first poll (FY__TM_LEAD, S_WAIT_LEAD). */
void fy__session_lead(session *s);

/* ---- query.c: a query connection (FY_FT_QUERY instead of hello) ------------------ */

void fy__query_frame(session *s, const fy_frame *f);
/* FY_RM_QREPLY: the collector's or the registry's part of the answer. */
void fy__query_reply(session *s, fy_msg *m);

/* ---- sender.c: the session as a sender ----------------------------------------- */

/* The read loop's half for a sender (fy__pump_run): the ingest processes
 * the input, reads go where it wants them. */
extern const fy__pump_fns fy__sender_pump;
/* The writer's answer to ATTACH: the welcome, and the ingest from here. */
void fy__sender_attached(session *s, fy_msg *m);
/* ATTACH_MIRROR: the channel is an edge's mirror, no local sender. */
void fy__sender_mirrored(session *s);
/* The writer could not store the stream (u32 err, u64 the next seq stored). */
void fy__sender_store_err(session *s, int err, uint64_t next_seq);
/* The writer refused a frame: a file-end whose SHA-256 is wrong, or a file
 * it could not hash (FY_RM_DIGEST_ERR). */
void fy__sender_digest_err(session *s, const fy_msg *m);
void fy__sender_idle_tick(session *s);
/* The same sender wants the slot (resume_from of its hello). */
void fy__sender_takeover(session *s, uint64_t resume_from);
/* The writer's answer to a dup-ask frame (FY_RM_DUP_ANSWER): a dup-answer frame. */
void fy__sender_dup_answer(session *s, const fy_msg *m);
/* Shutting down: bye once the writer has credited everything. */
void fy__sender_bye_on_shutdown(session *s);

#endif
