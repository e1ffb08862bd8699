/*
 * relay_int.h - what the relay's actors share: the read-only context, the
 * channel record, the message types they exchange and the batch of frames
 * that travels session -> file-writer -> forwarders.
 *
 * Nothing here is mutable shared state.  The context and the channel
 * records are written once before they are published (through fy_actor_new
 * or a message, both of which order the writes before the reader's turn)
 * and never change afterwards.  A batch is handed from one owner to the
 * next by message; once the writer shares it with forwarders it is
 * read-only and only its reference count moves.
 *
 * Message shapes (u32 / u64[0] / u64[1] / ptr / buf) are in msg.h, one
 * function per kind.
 * A message sent to a stopped actor is freed without its m->ptr, so
 * messages that carry a heap pointer are only sent to an actor that cannot
 * stop before it has handled them.  docs/architecture.md, "Lifetimes", says
 * who holds which actor reference, who stops whom and why each such message
 * is safe, and names the one exception (LOOKUP to an indexer that the
 * writer's shutdown may already have stopped).
 */
#ifndef FERRY_ACTORS_RELAY_INT_H
#define FERRY_ACTORS_RELAY_INT_H

#include <assert.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ferry/actor.h"
#include "ferry/buf.h"
#include "ferry/conn.h"
#include "ferry/sock.h"
#include "ferry/tls.h"
#include "store/epochs.h"
#include "ferry/proto.h"
#include "ferry/sched.h"
#include "ferry/sock.h"
#include "ferry/store.h"
#include "cluster/member.h"
#include "relay/auth.h"
#include "relay/conf.h"
#include "relay/kinds.h" /* the actor kinds: FY_KIND_* */


/* Owner-only code (socket I/O, the log, an actor's private state) states its
 * contract with this: free in release builds, checked in debug and
 * sanitizer builds, where the tests run. */
#define FY__OWNER(actor) assert(fy_actor_running_here(actor))

/* The idle rule sessions and forwarders share (docs/architecture.md,
 * "Timeouts"): a peer with no sign of life for half of --idle-timeout is
 * pinged once; for all of it, cut.  The check runs four times per
 * timeout, so a ping goes out between 1/2 and 3/4 of it and the cut comes
 * between 1 and 1.25 times it. */
typedef struct fy__idle {
    uint64_t alive_ns; /* the last sign of life */
    bool ping_out;     /* a ping went out since */
} fy__idle;

enum fy__idle_do { FY__IDLE_WAIT, FY__IDLE_PING, FY__IDLE_CUT };

static inline void fy__idle_alive(fy__idle *i, uint64_t now_ns)
{
    i->alive_ns = now_ns;
    i->ping_out = false;
}

/* What to do now; PING is answered once (ping_out is set here). */
static inline enum fy__idle_do fy__idle_check(fy__idle *i, uint64_t now_ns, uint64_t timeout_s)
{
    uint64_t limit = timeout_s * 1000000000ull, idle = now_ns - i->alive_ns;
    if (idle >= limit)
        return FY__IDLE_CUT;
    if (idle < limit / 2 || i->ping_out)
        return FY__IDLE_WAIT;
    i->ping_out = true;
    return FY__IDLE_PING;
}

static inline uint32_t fy__idle_tick_ms(uint64_t timeout_s)
{
    return (uint32_t)(timeout_s * 1000 / 4);
}

/* What may change while the relay runs (SIGHUP): kept out of the read-only
 * context, which only points at it.  The token table in force is an
 * immutable fy_auth published whole through an atomic pointer: the main
 * thread stores a new one (release, after fy_auth_load wrote it), a session
 * loads it at hello time (acquire, fy__auth) inside an epoch read section
 * (fy_auth_read_begin/end) and uses it only there.  A replaced table is
 * freed after the grace period that waits for those sections
 * (fy_auth_retire; docs/architecture.md, "Reloading").  C11 atomics for
 * the pointer rather than ck so ThreadSanitizer sees the pair. */
typedef struct fy__live {
    _Atomic(const fy_auth *) auth; /* NULL: everyone may publish and subscribe */
} fy__live;

/* The relay-wide, read-only context every actor gets a pointer to. */
typedef struct fy__ctx {
    const fy_conf *conf;
    fy__live *live;      /* the reloadable part, see fy__live */
    fy_bufpool *pool;
    fy_sched *sched;
    fy_actor *registry;  /* set before the first session exists */
    fy_actor *acceptor;
    fy_actor *metrics;   /* the stats collector (actors/metrics.c), or NULL */
    fy_actor *query;     /* `ferry info`'s collector (actors/qinfo.c) */
    int done_fd;         /* eventfd: the registry signals "shutdown complete" */
    fy_tls *tls;         /* the listener's TLS settings, or NULL: plaintext */
    fy_tls *up_tls;      /* TLS to the upstream (upstream-ca), or NULL: plaintext */
    fy_addr up_addr[FY_ADDR_MAX]; /* the upstream's addresses, resolved once at start */
    size_t up_naddr;     /* 0: no upstream */
    fy_syncer *syncer;   /* the sync worker every channel's log uses (store/syncer.c) */
    char chan_root[4200];/* DATA/channels */
    /* --cluster: this relay's membership (src/cluster/member.h), or NULL.
     * Actors only call its non-blocking side (serve, lead_of: a mutex held
     * for a copy), never etcd: that is the member's own thread. */
    fy_member *member;
    /* --cluster: how far each followed channel is stored (actors/progress.c) */
    struct fy__progress *progress;
} fy__ctx;

/* ---- progress.c: the stored (epoch, seq) of each followed channel ------- */
typedef struct fy__progress fy__progress;
int fy__progress_new(fy__progress **out);
void fy__progress_free(fy__progress *p); /* NULL ignored */
/* Any thread: chan is stored up to seq (inclusive), its frame of epoch. */
void fy__progress_set(fy__progress *p, const char *chan, uint64_t epoch, uint64_t seq);
/* Any thread: 0, 0 when chan was never set. */
void fy__progress_get(fy__progress *p, const char *chan, uint64_t *epoch, uint64_t *seq);

/* The token table in force (any actor; use it only inside
 * fy_auth_read_begin/end). */
static inline const fy_auth *fy__auth(const fy__ctx *ctx)
{
    /* acquire: pairs with fy_relay_set_auth's release store, so the table's
     * rules are visible before its pointer */
    return atomic_load_explicit(&ctx->live->auth, memory_order_acquire);
}

/* One channel: created by the registry, immutable afterwards, freed by the
 * registry when its writer reports WRITER_DONE (an idle close or shutdown;
 * docs/architecture.md, "Channel lifetime"), or by fy__registry_cleanup
 * after the scheduler is joined.  Whoever the registry hands it to (a
 * session, through the writer's lease list, and the forwarder the session
 * starts) may use it until it has sent the writer its last message
 * (DETACH, UNSUBSCRIBE). */
typedef struct fy__chan {
    uint32_t id;
    char name[FY_NAME_MAX + 1];
    char dir[4500];
    fy_actor *writer;  /* registry's reference */
    fy_actor *indexer; /* registry's reference */
    fy_epochs epochs;  /* the log's epochs, this opening's last (forwarders: receivers
                          ahead); under ep_mu, through chan_epochs.c */
    pthread_mutex_t ep_mu;
    bool ep_cluster;   /* ids are cluster epochs (--cluster) */
} fy__chan;

/* ---- chan_epochs.c: the table under the channel's mutex (any thread) ---- */
void fy__chan_epochs_init(fy__chan *ch, bool cluster);
void fy__chan_free(fy__chan *ch); /* NULL ignored */
/* The current (last) epoch; id 0 when there is none yet (cluster mode). */
fy_epoch fy__chan_epoch_cur(const fy__chan *ch);
/* fy_epochs_valid_below, and in cluster mode an unknown id counts only
 * below the current epoch's start. */
uint64_t fy__chan_valid_below(const fy__chan *ch, uint64_t id);
/* The epoch id seq belongs to, 0 when none. */
uint64_t fy__chan_epoch_of(const fy__chan *ch, uint64_t seq);
/* fy_epochs_add on the table and the file, logged.  0, 1 (already), -errno. */
int fy__chan_epoch_add(const fy__chan *ch, uint64_t id, uint64_t start_seq);

/* A file-begin or file-end of a batch as the ingest decoded it: the
 * writer takes the file's name, size and digest from here and never
 * decodes a frame again. */
typedef struct fy__file_mark {
    uint32_t frame;                /* its index in fr[] */
    uint8_t type;                  /* FY_FT_FILE_BEGIN, FY_FT_FILE_END or FY_FT_HOLE */
    uint32_t name;                 /* file-begin: its name at names + name */
    uint64_t size;                 /* the file's size, from either frame; a hole's length */
    uint64_t source;               /* file-begin: its source id (0: none) */
    uint8_t sha256[FY_SHA256_LEN]; /* file-end: the digest it carries */
} fy__file_mark;

/* A run of frames.  The ingest fills fr[] (frame i: its raw bytes, header
 * and payload, inside one of the batch's buffers), bufs[] (one reference
 * each; a buffer may hold several small frames back to back, or one big
 * frame received straight into it) and marks[] (its file-begins and
 * file-ends, in frame order); the writer fills recs[], end and next_seq,
 * then shares the batch with every forwarder: refs counts the holders, the
 * last fy__batch_unref() releases the buffers.  C11 atomics rather than ck
 * here because ThreadSanitizer must see the release/acquire pair that
 * guards the free. */
typedef struct fy__batch {
    atomic_uint refs;
    uint32_t n, cap;   /* frames; cap also bounds nbufs */
    uint32_t nbufs;    /* buffers held */
    uint64_t bytes;    /* sum of frame lengths (header + payload) */
    uint64_t held;     /* sum of buffer capacities (what the pool counts) */
    fy_pos end;        /* log end after the last frame (writer sets) */
    uint64_t next_seq; /* seq after the last frame (writer sets) */
    struct iovec *fr;  /* frame i's bytes (fy_log_append takes them as they are) */
    fy_buf **bufs;
    fy_idx_rec *recs;
    fy__file_mark *marks; /* grown on demand (fy__batch_mark_room) */
    uint32_t nmarks, capmarks;
    char *names;          /* the file-begins' names, NUL-terminated, back to back */
    uint32_t lnames, capnames;
} fy__batch;

fy__batch *fy__batch_new(uint32_t cap);
void fy__batch_unref(fy__batch *b);
/* Frame i's type and header seq (its header was checked: fy_frame_raw_*). */
uint8_t fy__batch_type(const fy__batch *b, uint32_t i);
uint64_t fy__batch_seq(const fy__batch *b, uint32_t i);
/* Room for one more mark and a name of name_len bytes: 0 or -ENOMEM.  The
 * ingest makes room before it stores the frame, so adding cannot fail. */
int fy__batch_mark_room(fy__batch *b, size_t name_len);
/* Mark frame `frame` (the last one added) as a file-begin or file-end. */
void fy__batch_mark_begin(fy__batch *b, uint32_t frame, const fy_file_begin *fb);
void fy__batch_mark_end(fy__batch *b, uint32_t frame, const fy_file_end *fe);
void fy__batch_mark_hole(fy__batch *b, uint32_t frame, uint64_t len);
static inline const char *fy__batch_name(const fy__batch *b, const fy__file_mark *m)
{
    return b->names + m->name;
}
/* Keep frames [0, n) only (their marks too); bytes follows. */
void fy__batch_cut(fy__batch *b, uint32_t n);
/* Drop the first k < n frames (their marks too); bytes follows.  The
 * buffers stay (they may hold later frames). */
void fy__batch_drop_front(fy__batch *b, uint32_t k);

/* What a forwarder learns when it subscribes (writer -> forwarder, malloc'd). */
typedef struct fy__sub_info {
    uint32_t err;       /* 0 or FY_E* (shutting down) */
    fy_pos end;
    uint64_t next_seq;  /* seq at end */
    uint64_t first_seq;
    uint64_t fb_seq;    /* file-begin of the file in progress, 0 = none */
    fy_pos fb_pos;
} fy__sub_info;

/* The file in progress on a channel: its file-begin is in the log, its
 * file-end is not (its sender left, or the relay restarted, mid-file).
 * Writer -> session in ATTACHED's m->buf (a pool buffer, so the runtime
 * releases it even if the session stopped meanwhile), for a sender that
 * continues it (docs/protocol.md, "Continuing a file"). */
typedef struct fy__part_info {
    uint64_t seq;      /* its file-begin's seq */
    fy_pos pos;        /* where that file-begin is */
    fy_pos end;        /* the log's end when ATTACHED was sent: the stored part ends here */
    uint64_t size;     /* from its file-begin */
    uint64_t got;      /* payload bytes stored (holes count their length) */
    char name[FY_NAME_MAX + 1];
    uint64_t source;   /* its file-begin's source id, 0: none */
    bool prefix_ok;    /* prefix_sha is the SHA-256 of the got stored bytes */
    uint8_t prefix_sha[FY_SHA256_LEN];
} fy__part_info;

/* Why the writer refused a file-end: writer -> sender in DIGEST_ERR's m->buf
 * (a pool buffer, so the runtime releases it even if the sender stopped
 * meanwhile). */
typedef struct fy__digest_err {
    uint8_t got[32];  /* what the file's payload hashes to */
    uint8_t want[32]; /* what its file-end carries */
} fy__digest_err;

/* Session -> registry request (malloc'd). */
typedef struct fy__chan_req {
    fy_actor *reply; /* a reference, dropped by the registry */
    char name[FY_NAME_MAX + 1];
    /* A receiver that said FY_HELLO_F_WAIT: for a channel with no directory
     * the registry creates nothing, answers CHAN(FY_ENOCHAN) at once and
     * CHAN(the channel) once a sender has created it. */
    bool wait;
} fy__chan_req;

/* Session -> writer: a sender asks for the channel's sender slot
 * (malloc'd; the writer frees it).  The token and resume point let the
 * writer tell "the same sender again" from another one (takeover,
 * docs/protocol.md "Same sender"). */
typedef struct fy__attach_req {
    fy_actor *session; /* a reference, kept by the writer while attached or waiting */
    uint64_t resume_from;
    char token[FY_TOKEN_MAX + 1];
} fy__attach_req;

/* Replica -> writer (FY_RM_FOLLOW, malloc'd; the writer keeps the latest):
 * lead the channel in epoch, or follow leader at addr (to: resolved). */
typedef struct fy__follow {
    bool leading;
    uint64_t epoch;
    char leader[FY_NODE_NAME_MAX + 1];
    char addr[FY_MEMBER_ADDR_MAX];
    fy_addr to;
    fy_actor *from; /* the replica manager (no reference: it outlives the writers) */
} fy__follow;

/* Forwarder start-up parameters (moved into the forwarder's state). */
typedef struct fy__fwd_init {
    const fy__ctx *ctx;
    const fy__chan *chan;
    fy_conn conn;      /* the forwarder owns it from a successful fy__forwarder_new on */
    uint8_t mode;
    uint64_t resume_from;
    uint16_t hflags;       /* the hello's FY_HELLO_F_* */
    uint64_t r_epoch;      /* with FY_HELLO_F_AHEAD: the epoch the receiver's frames came from */
    uint64_t r_part;       /* and its partial file's file-begin seq (0: none) */
    /* FY_HELLO_F_REPLICA (a cluster follower): the epoch this relay leads
     * the channel in (the welcome's cepoch), and the follower's last_epoch
     * and log_next from its hello (for the welcome's trunc_seq). */
    uint64_t rep_cepoch, rep_last_epoch, rep_log_next;
    char peer[64];
    char client[FY_CLIENT_MAX + 1]; /* the client's name from hello, "" = none */
    uint64_t addr_key[2];   /* the peer's address key (fy__addr_key), as the acceptor counts it */
    const uint8_t *pending; /* bytes read past the hello; copied */
    size_t npending;
} fy__fwd_init;

/* The message kinds; each is posted through its function in msg.h, whose
 * contract says what the fields mean and who owns ptr and buf. */
enum fy__msg {
    /* to the acceptor */
    FY_RM_SHUTDOWN = FY_MSG_USER + 1, /* to any actor: begin shutdown */
    FY_RM_SESSION_GONE,               /* a session ended */
    FY_RM_CONN_ADOPT,                 /* a forwarder took over a session's connection */
    FY_RM_CONN_GONE,                  /* a forwarder closed its connection */
    /* to the registry */
    FY_RM_CHAN_GET,                   /* a session asks for a channel */
    FY_RM_WRITER_DONE,                /* a writer closed (idle or shutdown) */
    FY_RM_WRITER_TOTALS,              /* what its receivers took, just before WRITER_DONE */
    FY_RM_CHAN_IDLE,                  /* no user for --channel-idle */
    FY_RM_CHAN_KEEP,                  /* CLOSE came too late, a user arrived */
    FY_RM_CHAN_UNUSED,                /* a writer's last user left (LRU hint) */
    /* to a session */
    FY_RM_CHAN,                       /* the answer to CHAN_GET */
    FY_RM_ATTACHED,                   /* the answer to ATTACH: the slot, or why not */
    FY_RM_CREDIT,                     /* buffer capacity freed */
    FY_RM_ACK,                        /* a file-end stored */
    FY_RM_STORE_ERR,                  /* an append failed */
    FY_RM_DIGEST_ERR,                 /* (also to an upstream) the writer refused a frame */
    FY_RM_CONTINUE,                   /* self: more work, next turn */
    FY_RM_TAKEOVER,                   /* the same sender asks for the slot */
    /* to a writer */
    FY_RM_ATTACH,                     /* a sender asks for the slot */
    FY_RM_DETACH,                     /* the sender leaves the slot */
    FY_RM_KEEP,                       /* the sender is active: refuse the takeover */
    FY_RM_DIGEST_RESET,               /* after DIGEST_ERR, the sender's stream starts again */
    FY_RM_BATCH,                      /* frames to store */
    FY_RM_SUBSCRIBE,                  /* a forwarder wants the channel */
    FY_RM_UNSUBSCRIBE,                /* a forwarder leaves */
    FY_RM_IDX_DONE,                   /* indexer closed */
    FY_RM_DAMAGED,                    /* the scrubber found damaged frames */
    FY_RM_SYNCED,                     /* the sync worker finished a job of the writer's log */
    FY_RM_LEASE,                      /* a session was given this channel */
    FY_RM_CLOSE,                      /* registry: close if still unused, else CHAN_KEEP */
    /* to an indexer */
    FY_RM_RECS,                       /* index records to write */
    FY_RM_LOOKUP,                     /* where is this seq */
    FY_RM_TRIM,                       /* the log's first seq moved */
    FY_RM_IDX_SYNC,
    /* to a forwarder */
    FY_RM_SUBSCRIBED,                 /* the answer to SUBSCRIBE */
    FY_RM_LIVE,                       /* a stored batch to send */
    FY_RM_LOOKED,                     /* the answer to LOOKUP */
    FY_RM_UNSUBSCRIBED,               /* the writer let go of it */
    /* drain and health */
    FY_RM_DRAIN_CUT,                  /* the drain timeout passed: stop at a frame boundary */
    FY_RM_FWD_TOTALS,                 /* forwarder -> writer, just before UNSUBSCRIBE */
    FY_RM_READY,                      /* relay -> metrics: the acceptor listens */
    /* to a session (last, so the kinds above keep their numbers in traces) */
    FY_RM_ATTACH_MIRROR,              /* the answer to ATTACH on an edge's mirror */
    /* upstream -> writer -> forwarders (appended: the numbers above stay) */
    FY_RM_NOTICE,                     /* a mirror skipped frames: DIR/skipped has it */
    /* queries (actors/query.h) */
    FY_RM_QREPLY,                     /* to a session: records or an error for its query */
    FY_RM_QINFO,                      /* to the query collector: who is on a channel */
    FY_RM_CHAN_DROP,                  /* to the registry: delete a channel */
    FY_RM_DUP_ASK,                      /* session -> writer: a sender's dup-ask frame */
    FY_RM_DUP_ANSWER,                     /* writer -> session: the answer to QUERY */
    /* cluster (actors/replica.c) */
    FY_RM_CLUSTER,                    /* member thread -> replica: a channel's leader changed */
    FY_RM_FOLLOW,                     /* replica -> writer: lead or follow (a fy__follow) */
    FY_RM_CUT,                        /* replica link -> writer: cut the log back below u64 */
    FY_RM_CHAN_CUT,                   /* writer -> replica: closed for a cut, ask again */
    /* cluster replication (actors/writer_isr.c; appended) */
    FY_RM_REPLICA_JOIN,               /* forwarder -> writer: a follower's replica connection */
    FY_RM_REPLICA_STORED,             /* forwarder -> writer: the follower's replica-stored */
    FY_RM_FENCE,                      /* writer -> forwarder: not the leader any more, close */
};

/* A follower's replica connection, announced to the channel's writer
 * (FY_RM_REPLICA_JOIN, malloc'd: the writer frees it). */
typedef struct fy__replica_join {
    fy_actor *fwd;                  /* the forwarder (compare only) */
    uint64_t cepoch;                /* the epoch the connection belongs to */
    char node[FY_CLIENT_MAX + 1];   /* the follower's node name */
} fy__replica_join;

/* Timer tags. */
enum { FY__TM_RETRY = 1, FY__TM_LINGER = 2, FY__TM_FSYNC = 3, FY__TM_RETAIN = 4, FY__TM_ACCEPT = 5,
       FY__TM_HELLO = 6, FY__TM_SCRUB = 7, FY__TM_IDLE = 8, FY__TM_UPLINGER = 9,
       FY__TM_LEAD = 10 };

/* ---- the actors' constructors (one file each) ---------------------------- */

/* Each returns 0 with *out holding one reference, or -errno. */
int fy__acceptor_new(const fy__ctx *ctx, int lfd, fy_actor **out);
/* Start watching the listening socket (once ctx->registry is set). */
int fy__acceptor_listen(fy_actor *a, int lfd);
/* peer: the address as text (logs, labels); addr_key: its fy__addr_key,
 * passed on to a forwarder so the acceptor's count is released under it. */
int fy__session_new(const fy__ctx *ctx, int fd, const char *peer, const uint64_t addr_key[2],
                    fy_actor **out);
/* The registry's state outlives the actor: fy__registry_cleanup() frees the
 * channel records after the scheduler is joined, when nothing can use them. */
int fy__registry_new(const fy__ctx *ctx, fy_actor **out, void **state);
void fy__registry_cleanup(void *state);
/* Takes log; creates the indexer from idx (*indexer gets a reference). */
int fy__writer_new(const fy__ctx *ctx, const fy__chan *chan, fy_log *log, fy_idx *idx,
                   fy_actor **out, fy_actor **indexer);
int fy__indexer_new(const fy__ctx *ctx, const fy__chan *chan, fy_idx *idx, fy_actor *writer,
                    fy_actor **out);
int fy__forwarder_new(const fy__fwd_init *in, fy_actor **out);
/* An edge relay's mirror of chan from conf->upstream (actors/upstream.c),
 * started by chan's writer, which gives it the sender slot: *out is that
 * reference.  next_seq is the log's next seq; empty says it holds no
 * frame.  -FY_EBUSY when the log has frames and is not a mirror. */
int fy__upstream_new(const fy__ctx *ctx, const fy__chan *chan, fy_actor *writer,
                     uint64_t next_seq, bool empty, fy_actor **out);
/* A cluster follower's replica link to chan's leader (upstream_replica.c),
 * started by chan's writer as for a mirror; first_seq and next_seq are the
 * log's, part_seq the file-begin of its file in progress (0: none). */
int fy__upstream_new_replica(const fy__ctx *ctx, const fy__chan *chan, fy_actor *writer,
                             uint64_t first_seq, uint64_t next_seq, uint64_t part_seq,
                             const fy__follow *f, fy_actor **out);
/* The cluster's replica manager (actors/replica.c), one per relay with
 * --cluster: it opens every channel the member serves and tells each
 * writer whether to lead or whom to follow. */
int fy__replica_new(const fy__ctx *ctx, fy_actor **out);
/* 1 when the channel directory holds a mirror's state (any thread). */
int fy__upstream_marked(const char *chan_dir);
/* The upstream a mirror's state file names into up ("" when none). */
void fy__upstream_recorded(const char *chan_dir, char *up, size_t cap);

/* The 16-byte key the connection limits count by: the peer's IP address
 * (IPv4 as ::ffff:a.b.c.d), port left out (any thread).  The acceptor makes
 * it once; sessions and forwarders carry it as data. */
void fy__addr_key(const fy_addr *a, uint64_t key[2]);

/* `ferry info`'s collector (actors/qinfo.c), one per relay. */
int fy__qinfo_new(const fy__ctx *ctx, fy_actor **out);

/* The metrics actor: GET /metrics on addr (actors/metrics.c).  *bound gets
 * the address it listens on.  0 or -errno with a message in err. */
int fy__metrics_new(const fy__ctx *ctx, const char *addr, fy_actor **out, char *bound,
                    size_t boundcap, char *err, size_t errcap);

/* Encode a control frame (hdr seq 0 unless given) into out; returns its
 * length or a negative error.  Used by session and forwarder. */
int fy__ctl_frame(uint8_t type, uint32_t channel, uint64_t seq, const uint8_t *payload,
                  size_t len, uint8_t *out, size_t cap);
/* A welcome frame; part (may be NULL) fills its extension's file in
 * progress.  Length or a negative error. */
int fy__ctl_welcome(const fy_welcome *w, const fy__part_info *part, uint8_t *out, size_t cap);
/* An ack frame for seq.  Length or a negative error. */
int fy__ctl_ack(uint32_t channel, uint64_t seq, uint8_t *out, size_t cap);
/* Log the error frame a peer sent (who: the log message). */
void fy__ctl_log_peer_error(const char *peer, const char *who, const fy_frame *f);
/* An error frame with code and printf-style text. */
int fy__ctl_error(uint32_t channel, int code, uint8_t *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
