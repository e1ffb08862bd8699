/*
 * internal.h - what the swarm's files share: the run, its workers and the
 * connection objects.  Not a public header; fy__ names only.
 *
 * Ownership: a worker thread owns its epoll fd and every connection in its
 * lists, and nobody else touches them while it runs.  Threads meet only at
 * the atomics in struct fy__swarm (start signal, welcome count, sender
 * start times, storm tally, abort) and at one pthread barrier after setup.
 */
#ifndef FY_SWARM_INTERNAL_H
#define FY_SWARM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ferry/proto.h"
#include "link/link.h"
#include "swarm/pattern.h"
#include "swarm/rxchk.h"
#include "swarm/swarm.h"

#define FY__IOV_FRAMES 128           /* frames per writev */
#define FY__RBUF (512u * 1024u)      /* a worker's receive buffer */
#define FY__TURN_BYTES (4u << 20)    /* I/O per connection per turn (fairness) */

struct fy__worker;
struct fy__swarm_conn;

/* The first field of everything registered with epoll. */
enum fy__tag { FY__TAG_CONN = 1, FY__TAG_OUT = 2 };
enum fy__kind { FY__TX = 1, FY__RX = 2, FY__STORM = 3 };

/* One outgoing frame stream to one socket: the sender's single relay
 * connection, or one of its p2p links to a receiver. */
typedef struct fy__out {
    int tag; /* FY__TAG_OUT */
    fy_conn *conn;  /* the relay link's connection, or &own (p2p); NULL: none */
    fy_conn own;    /* p2p: the socket itself */
    struct fy__swarm_conn *c;
    uint64_t next;  /* next frame index in the current sender's stream */
    size_t off;     /* bytes of frame `next` already written */
    bool blocked;   /* last write hit EAGAIN: wait for EPOLLOUT */
    bool dead;
} fy__out;

/* One client connection (src/link) and what the worker keeps about it. */
typedef struct fy__swarm_conn {
    int tag; /* FY__TAG_CONN */
    int kind;
    int state;          /* the sender's or storm's own; the handshake's is in link */
    struct fy__worker *w;
    uint64_t wake_at;   /* ns; 0: no timer */
    bool pending;       /* on the worker's pending list (work left) */
    bool done;
    struct fy__swarm_conn *next_pending;
    fy_link link;       /* socket, handshake, control queue, decoder */
} fy__swarm_conn;

/* Per-file control payloads of the current sender. */
typedef struct fy__ctlpl {
    uint8_t b[FY_NAME_MAX + 16];
    size_t len;
    uint32_t crc;
} fy__ctlpl;

/* A channel's sender side: plays the channel's senders one after another. */
typedef struct fy__tx {
    fy__swarm_conn c;
    uint32_t chan;
    uint32_t first, count, cur; /* global sender ids first..first+count-1 */
    uint32_t chan_id;           /* header channel (welcome's id) */
    uint64_t base_seq;          /* seq of frame 0 of the current sender */
    uint64_t ndata;             /* data frames per file */
    uint64_t fsize;             /* bytes per file */
    uint64_t total;             /* frames in one sender's stream */
    uint64_t t0;                /* current sender's start, ns */
    uint64_t interval;          /* rate mode: ns between data frames; 0 = bulk */
    uint64_t last_end_seq, acked;
    fy__ctlpl *begin;           /* [files] */
    fy__ctlpl end;
    fy__out *outs;
    uint32_t nouts;
    uint64_t bytes_sent, frames_sent;
} fy__tx;

typedef struct fy__rx {
    fy__swarm_conn c;
    uint32_t id, chan, idx;
    bool slow, churner, welcomed_once, complete;
    fy_rxchk *chk;
    uint64_t files_expected;
    uint64_t done_ns;
    double tokens; /* slow: bytes it may read now */
    uint64_t refill_ns;
    uint64_t *leave_at; /* churn: frame counts at which it leaves */
    uint32_t nleave, ileave, reconnects;
    int error;
} fy__rx;

typedef struct fy__storm {
    fy__swarm_conn c;
    uint64_t t_start;
} fy__storm;

typedef struct fy__worker {
    int id;
    int ep;
    struct fy__swarm *sw;
    fy__tx **tx;
    uint32_t ntx;
    fy__rx **rx;
    uint32_t nrx;
    fy__storm *storm;
    uint32_t nstorm;
    uint32_t live;       /* connections not done */
    bool started;        /* senders started after the go signal */
    fy__swarm_conn *pending;   /* connections with work left over from their turn */
    uint8_t *rbuf;
    fy_lhist *lat, *storm_lat;
    uint64_t errors, served, refused, connect_failed;
    int setup_err;
    pthread_t thread;
} fy__worker;

typedef struct fy__swarm {
    const fy_swarm_cfg *cfg;
    fy_pattern *pat;
    uint8_t (*sha)[32];            /* [senders], written before the barrier */
    _Atomic uint64_t *sender_t0;   /* [senders] ns, rate latency origin */
    _Atomic uint64_t go_ns;        /* 0 until every receiver is subscribed */
    _Atomic uint32_t welcomed;
    uint32_t total_rx;
    _Atomic uint32_t storm_resolved;
    _Atomic int abort;
    _Atomic int timed_out;
    uint64_t deadline_ns;
    uint64_t storm_end_ns;
    uint64_t interval_ns;          /* rate: ns between one sender's data frames */
    pthread_barrier_t barrier;
    fy__worker *w;
    uint32_t nw;
} fy__swarm;

/* CLOCK_MONOTONIC in ns, as src/rt's fy_now_ns (the swarm does not link the
 * runtime).  Any thread. */
uint64_t fy__swarm_now_ns(void);
/* Channel chan's name ("<prefix>-c<chan>").  Any thread. */
void fy__chan_name(const fy_swarm_cfg *cfg, uint32_t chan, char *buf, size_t cap);

/* ---- connection plumbing (worker.c); the owning worker's thread only ---- */
/* A closed connection of kind k on worker w. */
void fy__swarm_conn_init(fy__swarm_conn *c, int kind, fy__worker *w);
/* Add fd to w's epoll set, edge-triggered, events to item.  0 or -errno. */
int fy__swarm_conn_watch(fy__worker *w, int fd, void *item);
/* Connect c's link to the target and watch it (events to c).  0 or -errno;
 * on failure the link is closed. */
int fy__swarm_conn_connect(fy__swarm_conn *c, size_t max_payload);
/* Queue the hello of a `role` on channel chan (mode/from: receivers).
 * 0 or an encode error. */
int fy__swarm_conn_hello(fy__swarm_conn *c, uint8_t role, uint32_t chan, uint8_t mode,
                         uint64_t from);
/* Close the link (may reconnect). */
void fy__swarm_conn_close(fy__swarm_conn *c);
/* Close for good: the connection no longer keeps its worker running. */
void fy__swarm_conn_finish(fy__swarm_conn *c);
/* It has work left after its turn: run it again before the next sleep. */
void fy__swarm_conn_pend(fy__swarm_conn *c);
/* Thread body of one worker (arg: its fy__worker). */
void *fy__worker_main(void *arg);

/* ---- senders (tx.c); the owning worker's thread only ------------------- */
/* Before the barrier: the digests of the channel's senders.  0 or -errno. */
int fy__tx_prepare(fy__tx *t);
/* After the go signal: start the channel's first sender. */
void fy__tx_start(fy__tx *t);
/* An event on the relay connection (o NULL) or on p2p link o; events 0
 * means "continue your turn". */
void fy__tx_io(fy__tx *t, fy__out *o, uint32_t events);
/* wake_at passed (rate pacing). */
void fy__tx_timer(fy__tx *t, uint64_t now);
/* Main thread, after the workers joined. */
void fy__tx_free(fy__tx *t);

/* ---- receivers and storm connections (rx.c); owning worker only -------- */
/* Largest payload a receiver's decoder accepts.  Any thread. */
size_t fy__rx_dec_max(const fy_swarm_cfg *cfg);
/* Subscribe (relay) or start reading the p2p link (attached by swarm.c). */
void fy__rx_start(fy__rx *r);
/* An event (or 0: continue the turn). */
void fy__rx_io(fy__rx *r, uint32_t events);
/* wake_at passed: slow reader's tokens refilled, or a churner rejoins. */
void fy__rx_timer(fy__rx *r, uint64_t now);
/* Main thread, after the workers joined. */
void fy__rx_free(fy__rx *r);
/* Connect and send the hello. */
void fy__storm_start(fy__storm *s);
void fy__storm_io(fy__storm *s, uint32_t events);

#endif
