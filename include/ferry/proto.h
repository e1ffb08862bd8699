/*
 * proto.h - Ferry's wire protocol: frames, their payloads, and the
 * incremental decoder.  docs/protocol.md is the reference; this header is
 * its C form.
 *
 * Every frame is a 32-byte little-endian header followed by `len` payload
 * bytes.  The header carries the CRC32C of the payload and a CRC32C of its
 * own first 28 bytes, so a corrupt length is caught before it is trusted.
 * Frames that belong to a channel's stream (file-begin, data, file-end)
 * carry consecutive sequence numbers; the relay stores them byte for byte
 * and forwards the same bytes to every receiver.
 */
#ifndef FERRY_PROTO_H
#define FERRY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define FY_PROTO_MAGIC 0x59524546u /* "FERY" read as a little-endian u32 */
#define FY_PROTO_VERSION 1u
#define FY_FRAME_HDR_SIZE 32u
#define FY_PAYLOAD_MAX_DEFAULT ((size_t)1 << 20) /* 1 MiB */
#define FY_PAYLOAD_MAX_LIMIT ((size_t)16 << 20)  /* no configuration may exceed it */
#define FY_NAME_MAX 255u    /* file and channel names, bytes */
#define FY_TOKEN_MAX 255u
#define FY_ERRTEXT_MAX 1024u
#define FY_SHA256_LEN 32u
#define FY_PING_MAX 64u     /* ping/pong payload: opaque, echoed */
/* Welcome: 24 bytes, or 52 + name with the extension (76 + name with the
 * epoch fields after it); a later version may append fields (decoders
 * ignore bytes after the ones they know), up to this. */
#define FY_WELCOME_MAX 512u
/* Largest control payload (an error frame with the longest text); a
 * max_payload below it still works but limits error texts and names. */
#define FY_CTL_PAYLOAD_MAX (8u + FY_ERRTEXT_MAX)

enum fy_frame_type {
    FY_FT_HELLO = 1,
    FY_FT_WELCOME = 2,
    FY_FT_FILE_BEGIN = 3, /* stream frame: has a sequence number */
    FY_FT_DATA = 4,       /* stream frame */
    FY_FT_FILE_END = 5,   /* stream frame */
    FY_FT_ACK = 6,
    FY_FT_ERROR = 7,
    FY_FT_PING = 8,
    FY_FT_PONG = 9,
    FY_FT_BYE = 10,
    /* Queries (docs/protocol.md, "Queries"): instead of hello, a client
     * sends one QUERY; the relay answers with QREC records, then QEND (or
     * an error frame), and closes. */
    FY_FT_QUERY = 16,
    FY_FT_QREC = 17,
    FY_FT_QEND = 18,
    /* Relay -> a receiver that set FY_HELLO_F_SKIP: the stream frames
     * [first, next) are deleted files (`ferry rm`) and are not sent; the
     * next stream frame is seq next.  Sent at a frame boundary. */
    FY_FT_SKIP = 19,
    /* stream frame: the next `len` (u64 payload) bytes of the file are
     * zeros, a hole; it stands for them in the file's size and digest */
    FY_FT_HOLE = 32,
    /* control, sender -> relay: is the channel's latest file of this name
     * (and size) still held, and what is its SHA-256?  Answer: dup-answer. */
    FY_FT_DUP_ASK = 33,
    FY_FT_DUP_ANSWER = 34, /* control, relay -> sender: the answer to dup-ask */
    /* 48-55: an edge relay's notices (docs/protocol.md, "Notices") */
    FY_FT_NOTICE = 48,    /* relay->receiver: what the relay could not deliver, and why */
    /* relay -> a receiver that said FY_HELLO_F_WAIT: its channel does not
     * exist yet; the welcome follows once a sender creates it.  Payload:
     * UTF-8 text for people (docs/protocol.md, "Receivers wait for a
     * channel"). */
    FY_FT_NOCHAN = 56,
    /* control, a cluster follower -> its channel's leader, on the follower's
     * replica connection (FY_HELLO_F_REPLICA): "I have stored every frame up
     * to seq, in cluster epoch cepoch" (docs/cluster.md, "Replication"). */
    FY_FT_REPLICA_STORED = 64,
    FY_FT_MAX_ = 64       /* the highest number; numbers in between may be unused */
};

/* Decoded header. On the wire (little-endian, packed):
 *   0 magic u32 | 4 version u8 | 5 type u8 | 6 flags u16 | 8 channel u32 |
 *  12 len u32 | 16 seq u64 | 24 crc u32 (payload CRC32C) |
 *  28 hcrc u32 (CRC32C of bytes 0..27) */
typedef struct fy_frame_hdr {
    uint8_t type;
    uint8_t version;
    uint16_t flags;   /* must be 0 in version 1 */
    uint32_t channel; /* channel id from welcome; 0 before it */
    uint32_t len;     /* payload bytes */
    uint64_t seq;     /* stream frames: sequence number; others 0 or echo */
    uint32_t crc;     /* CRC32C of the payload */
} fy_frame_hdr;

static inline bool fy_frame_is_stream(uint8_t type)
{
    return type == FY_FT_FILE_BEGIN || type == FY_FT_DATA || type == FY_FT_FILE_END ||
           type == FY_FT_HOLE;
}

/* Roles and receiver modes in hello. */
enum fy_role { FY_ROLE_SENDER = 1, FY_ROLE_RECEIVER = 2 };
enum fy_mode {
    FY_MODE_LIVE = 0,   /* from the next packet on */
    FY_MODE_START = 1,  /* from the first packet the relay still holds */
    FY_MODE_RESUME = 2  /* from resume_from */
};

/* Hello flags (the u16 at payload offset 6, reserved = 0 before them).  A
 * relay refuses a bit it does not know with FY_EPAYLOAD, so a client that
 * sets one and meets an older relay says hello again without it. */
#define FY_HELLO_F_RESUME 0x0001u /* "send me the welcome's file-in-progress fields" */
/* A receiver that reconciles when it is ahead of the relay's log: the hello
 * carries 16 more bytes (epoch, part_seq, after the token) and the welcome
 * the extension and the epoch fields (docs/protocol.md, "A receiver ahead
 * of the log"). */
#define FY_HELLO_F_AHEAD 0x0002u
/* The hello ends with the client's name (u8 length + bytes; shown in the
 * relay's logs and `ferry info`). */
#define FY_HELLO_F_CLIENT 0x0010u
/* A receiver that understands FY_FT_SKIP: deleted files are skipped, not
 * sent (a receiver without it gets them from the log as they are). */
#define FY_HELLO_F_SKIP 0x0020u
/* A sender: "send me the source fields of the file in progress" (welcome:
 * after the extension and the epoch fields; docs/protocol.md, "Trees,
 * sparse files and resuming across runs").  Needs FY_HELLO_F_RESUME. */
#define FY_HELLO_F_SOURCE 0x0100u
/* A sender: "I may send dup-ask frames" (dedupe; docs/protocol.md, "Trees,
 * sparse files and resuming across runs"). */
#define FY_HELLO_F_DEDUPE 0x0200u
/* A receiver that takes notice frames (FY_FT_NOTICE): files an edge relay
 * skipped and why.  Without it the relay sends none. */
#define FY_HELLO_F_NOTICE 0x4000u
/* A receiver that waits for a channel that does not exist yet: the relay
 * creates nothing for it, answers FY_FT_NOCHAN and welcomes it once a
 * sender has created the channel. */
#define FY_HELLO_F_WAIT 0x1000u
/* A receiver that is a cluster follower mirroring the channel (its node
 * name is the client name, so FY_HELLO_F_CLIENT is required): the hello
 * ends with the replica fields (cepoch, last_epoch, log_next) and the
 * welcome carries the leader's (docs/cluster.md, "Replication"). */
#define FY_HELLO_F_REPLICA 0x0004u
#define FY_HELLO_F_KNOWN (FY_HELLO_F_RESUME | FY_HELLO_F_AHEAD | FY_HELLO_F_CLIENT | \
                          FY_HELLO_F_SKIP | FY_HELLO_F_SOURCE | FY_HELLO_F_DEDUPE | \
                          FY_HELLO_F_WAIT | FY_HELLO_F_NOTICE | FY_HELLO_F_REPLICA)
#define FY_CLIENT_MAX 64u   /* a client's name, bytes */
#define FY_HELLO_MAX (16u + FY_NAME_MAX + FY_TOKEN_MAX + 16u + 1u + FY_CLIENT_MAX + 24u)

/* Welcome flags (the epoch fields' u32). */
#define FY_WELCOME_F_AHEAD 0x0001u /* the resume point was beyond what the log holds */
#define FY_WELCOME_F_KNOWN FY_WELCOME_F_AHEAD

typedef struct fy_hello {
    uint8_t role;
    uint8_t mode;
    uint16_t flags;       /* FY_HELLO_F_* */
    uint64_t resume_from;
    char channel[FY_NAME_MAX + 1];
    char token[FY_TOKEN_MAX + 1];
    /* With FY_HELLO_F_AHEAD (a receiver): the epoch of the relay log its
     * frames came from (0: none or unknown) and the seq of the file-begin of
     * its partial file (0: none). */
    uint64_t epoch;
    uint64_t part_seq;
    /* With FY_HELLO_F_CLIENT: who the client says it is ("user@host"). */
    char client[FY_CLIENT_MAX + 1];
    /* With FY_HELLO_F_REPLICA: the newest cluster epoch of the channel the
     * follower has seen (it refuses a leader of an older one), the cluster
     * epoch of its log's last frame (0: empty log) and its log's next seq. */
    uint64_t cepoch;
    uint64_t last_epoch;
    uint64_t log_next;
} fy_hello;

typedef struct fy_welcome {
    uint32_t channel;   /* id to put in later headers */
    uint64_t next_seq;  /* sender: seq of its first stream frame; receiver: first seq it will get */
    uint64_t first_seq; /* oldest seq the relay still holds (retention) */
    uint32_t max_payload;
    /* The extension a relay sends only to a hello with FY_HELLO_F_RESUME:
     * the file in progress on the channel (its file-begin is stored, its
     * file-end is not), so a sender that lost its connection continues it
     * instead of starting over (docs/protocol.md, "Continuing a file"). */
    bool ext;             /* the extension is present (encode: write it) */
    uint64_t part_seq;    /* seq of that file's file-begin; 0 = no file in progress */
    uint64_t part_size;   /* its size from the file-begin */
    uint64_t part_got;    /* payload bytes of it the relay has stored */
    char part_name[FY_NAME_MAX + 1];
    /* After the extension, only to a hello with FY_HELLO_F_AHEAD: the log's
     * epoch (a nonzero id the relay picks each time it opens the channel's
     * log) and epoch_seq (the log's next seq at that opening: frames below
     * it were stored before this epoch began), and FY_WELCOME_F_* flags. */
    bool ext2;            /* the epoch fields are present (encode: write them; needs ext) */
    uint64_t epoch;
    uint64_t epoch_seq;
    uint32_t wflags;
    /* After the epoch fields, only to a hello with FY_HELLO_F_SOURCE: the
     * source id its file-begin carried (0: none) and, when
     * FY_WELCOME_SRC_F_PREFIX, the SHA-256 of its part_got stored bytes. */
    bool ext3;            /* the source fields are present (encode: needs ext2) */
    uint64_t part_source;
    uint32_t src_flags;
    uint8_t part_prefix_sha[FY_SHA256_LEN];
    /* After the source fields (written as zeros when ext3 is not set), only
     * to a hello with FY_HELLO_F_REPLICA: the leader's cluster epoch (the
     * connection belongs to it) and trunc_seq, where the follower's log must
     * end before it follows: the seq where the follower's last_epoch ends on
     * the leader's log, if the follower holds frames at or past it (0: keep
     * everything, no cut). */
    bool ext4;            /* the replica fields are present (encode: needs ext2) */
    uint64_t cepoch;
    uint64_t trunc_seq;
} fy_welcome;

#define FY_WELCOME_SRC_F_PREFIX 0x0001u /* part_prefix_sha is valid */

typedef struct fy_file_begin {
    uint64_t size;
    char name[FY_NAME_MAX + 1]; /* a relative path: fy_path_check */
    /* The optional trailer (24 bytes after the name; decoders ignore bytes
     * after it): fflags FY_FB_F_*, then what they say is valid. */
    bool ext;           /* the trailer is present (encode: write it) */
    uint32_t fflags;
    uint32_t mode;      /* FY_FB_F_META: permission bits (07777) */
    int64_t mtime_ns;   /* FY_FB_F_META: modification time, ns since the epoch */
    uint64_t source;    /* FY_FB_F_SOURCE: the sender's id of its source file */
} fy_file_begin;

#define FY_FB_F_META 0x0001u   /* mode and mtime_ns are the source's */
#define FY_FB_F_SOURCE 0x0002u /* source is set (resuming across runs) */
#define FY_FB_F_KNOWN (FY_FB_F_META | FY_FB_F_SOURCE)
#define FY_FILE_BEGIN_EXT 24u
/* The header limit: fixed part, longest name, trailer, and room for later
 * trailer fields (which today's decoders ignore). */
#define FY_FILE_BEGIN_MAX (12u + FY_NAME_MAX + 64u)

/* Dup-ask (FY_FT_DUP_ASK): 12 + name, the layout of a file-begin without
 * the trailer.  Dup-answer (FY_FT_DUP_ANSWER): 40 bytes. */
typedef struct fy_dup_ask {
    uint64_t size;
    char name[FY_NAME_MAX + 1];
} fy_dup_ask;

typedef struct fy_dup_answer {
    uint64_t seq; /* file-begin seq of the latest file of that name and size; 0: none */
    uint8_t sha256[FY_SHA256_LEN];
} fy_dup_answer;

/* Hole (FY_FT_HOLE): 8 bytes, the hole's length, 1 .. 2^62. */
typedef struct fy_hole {
    uint64_t len;
} fy_hole;

typedef struct fy_file_end {
    uint64_t size;
    uint8_t sha256[FY_SHA256_LEN];
} fy_file_end;

typedef struct fy_ack {
    uint64_t seq; /* relay->sender: stored through seq; receiver->relay: received through seq */
} fy_ack;

typedef struct fy_error {
    uint32_t code; /* FY_E* number (err.h) */
    char text[FY_ERRTEXT_MAX + 1];
} fy_error;

/* A notice (relay->receiver, to a hello with FY_HELLO_F_NOTICE): before the
 * stream frame at_seq, the relay skipped what its upstream numbered
 * [up_from, up_to) -- files it never had, for the reason code says
 * (FY_ESKIPPED: the upstream's retention removed them first). */
#define FY_NOTICE_TEXT_MAX 512u
typedef struct fy_notice {
    uint32_t code;      /* FY_E* number: why */
    uint64_t at_seq;    /* the first stream seq after what was skipped */
    uint64_t up_from, up_to;
    char text[FY_NOTICE_TEXT_MAX + 1];
} fy_notice;

/* ---- headers ------------------------------------------------------------ */

/* Fill out[0..31] from h; computes hcrc (h->crc must already be set).
 * Writes FY_PROTO_VERSION when h->version is 0.  Any thread. */
void fy_frame_hdr_encode(const fy_frame_hdr *h, uint8_t out[FY_FRAME_HDR_SIZE]);

/* Parse and check a header, in this order: magic, version, header CRC,
 * type, flags, and len <= fy_frame_payload_max(type, max_payload) (so a
 * length is never trusted before the header CRC vouched for it).  Returns
 * 0 or -FY_EMAGIC, -FY_EVERSION, -FY_EHDRCHECK, -FY_ETYPE, -FY_EFLAGS,
 * -FY_EOVERSIZE.  Does not look at the payload.  Any thread. */
int fy_frame_hdr_decode(const uint8_t in[FY_FRAME_HDR_SIZE], size_t max_payload, fy_frame_hdr *h);

/* Largest payload a frame of `type` may carry under max_payload: the
 * control types have fixed limits (docs/protocol.md), data frames have
 * max_payload.  0 for an unknown type.  Any thread. */
size_t fy_frame_payload_max(uint8_t type, size_t max_payload);

/* "hello", "data", ... for logs; "unknown" for other values.  Any thread. */
const char *fy_frame_type_name(uint8_t type);

/* Build a complete header for payload p (sets len and crc in h).  For
 * writev: iov[0] = the header bytes, iov[1] = the payload, no copy. */
void fy_frame_seal(fy_frame_hdr *h, const void *p, size_t len, uint8_t out[FY_FRAME_HDR_SIZE]);

/* Fields of a raw header that fy_frame_hdr_decode already accepted (raw:
 * its first byte, any alignment): for code that holds checked frames and
 * must not decode them again (the relay's batches, an edge's re-stamping,
 * the swarm's checker).  Any thread. */
uint8_t fy_frame_raw_type(const uint8_t *raw);
uint32_t fy_frame_raw_channel(const uint8_t *raw);
uint64_t fy_frame_raw_seq(const uint8_t *raw);

/* Give a checked frame another channel id and seq and recompute the header
 * CRC, which covers both (the payload CRC does not, so the payload stays as
 * it is).  An edge relay uses it to put mirrored frames into its own
 * channel's numbering.  Any thread. */
void fy_frame_restamp(uint8_t *raw, uint32_t channel, uint64_t seq);

/* ---- control payloads ---------------------------------------------------- */
/* encode: write into out (cap bytes), set *len; -ENOBUFS if cap is too small,
 *         -FY_ENAME / -EINVAL for a field that is out of range.
 * decode: -FY_ETRUNC for a short payload, -FY_EPAYLOAD for trailing bytes or
 *         a bad field, -FY_ENAME for a name that fails fy_name_check. */
int fy_hello_encode(const fy_hello *v, uint8_t *out, size_t cap, size_t *len);
int fy_hello_decode(const uint8_t *p, size_t n, fy_hello *v);
int fy_welcome_encode(const fy_welcome *v, uint8_t *out, size_t cap, size_t *len);
int fy_welcome_decode(const uint8_t *p, size_t n, fy_welcome *v);
int fy_file_begin_encode(const fy_file_begin *v, uint8_t *out, size_t cap, size_t *len);
int fy_file_begin_decode(const uint8_t *p, size_t n, fy_file_begin *v);
int fy_file_end_encode(const fy_file_end *v, uint8_t *out, size_t cap, size_t *len);
int fy_file_end_decode(const uint8_t *p, size_t n, fy_file_end *v);
int fy_ack_encode(const fy_ack *v, uint8_t *out, size_t cap, size_t *len);
int fy_ack_decode(const uint8_t *p, size_t n, fy_ack *v);
int fy_error_encode(const fy_error *v, uint8_t *out, size_t cap, size_t *len);
int fy_error_decode(const uint8_t *p, size_t n, fy_error *v);
int fy_notice_encode(const fy_notice *v, uint8_t *out, size_t cap, size_t *len);
int fy_notice_decode(const uint8_t *p, size_t n, fy_notice *v);

/* Replica-stored (FY_FT_REPLICA_STORED, 16 bytes: cepoch u64 != 0 | seq u64):
 * a follower has stored every frame up to seq (0: none) in cluster epoch
 * cepoch.  src/proto/replica.c. */
typedef struct fy_replica_stored {
    uint64_t cepoch;
    uint64_t seq;
} fy_replica_stored;
#define FY_REPLICA_STORED_SIZE 16u
int fy_replica_stored_encode(const fy_replica_stored *v, uint8_t *out, size_t cap, size_t *len);
int fy_replica_stored_decode(const uint8_t *p, size_t n, fy_replica_stored *v);

/* ---- queries (query.c) ------------------------------------------------------ */

enum fy_query_op {
    FY_QOP_LS = 1,     /* channel "": every channel on disk; else that channel's files */
    FY_QOP_INFO = 2,   /* one channel: store, retention, who is connected */
    FY_QOP_RM = 3,     /* names: delete those files; none: delete the channel */
    FY_QOP_RETAIN = 4, /* set the channel's own retention (FY_QF_BYTES / FY_QF_AGE) */
};
#define FY_QF_BYTES 0x0001u /* retain: arg1 is the byte limit (0 = none) */
#define FY_QF_AGE 0x0002u   /* retain: arg2 is the age limit in seconds (0 = none) */
#define FY_QF_KNOWN (FY_QF_BYTES | FY_QF_AGE)
#define FY_QUERY_NAMES_MAX 64u /* names in one query */

typedef struct fy_query {
    uint8_t op;     /* enum fy_query_op */
    uint16_t flags; /* FY_QF_* */
    uint64_t arg1, arg2;
    char token[FY_TOKEN_MAX + 1];
    char channel[FY_NAME_MAX + 1];  /* "" only for FY_QOP_LS */
    char client[FY_CLIENT_MAX + 1]; /* may be "" */
    uint16_t nnames;
    char names[FY_QUERY_NAMES_MAX][FY_NAME_MAX + 1];
} fy_query;

/* QEND: the status of the query and how many QREC records came before. */
typedef struct fy_qend {
    uint32_t code;  /* 0 */
    uint32_t count;
} fy_qend;

#define FY_QUERY_MAX (32u + FY_TOKEN_MAX + FY_NAME_MAX + FY_CLIENT_MAX + \
                      FY_QUERY_NAMES_MAX * (1u + FY_NAME_MAX))
#define FY_QREC_MAX 4096u /* one record: a key=value line, no newline */

int fy_query_encode(const fy_query *v, uint8_t *out, size_t cap, size_t *len);
int fy_query_decode(const uint8_t *p, size_t n, fy_query *v);
int fy_qend_encode(const fy_qend *v, uint8_t *out, size_t cap, size_t *len);
int fy_qend_decode(const uint8_t *p, size_t n, fy_qend *v);

/* SKIP: 0 first u64 | 8 next u64 (first < next). */
typedef struct fy_skip {
    uint64_t first, next;
} fy_skip;
int fy_skip_encode(const fy_skip *v, uint8_t *out, size_t cap, size_t *len);
int fy_skip_decode(const uint8_t *p, size_t n, fy_skip *v);

/* A client name: 1..FY_CLIENT_MAX bytes of [A-Za-z0-9._@+:-].  0 or
 * -FY_ENAME.  Any thread. */
int fy_client_name_check(const char *name, size_t len);

int fy_hole_encode(const fy_hole *v, uint8_t *out, size_t cap, size_t *len);
int fy_hole_decode(const uint8_t *p, size_t n, fy_hole *v);
int fy_dup_ask_encode(const fy_dup_ask *v, uint8_t *out, size_t cap, size_t *len);
int fy_dup_ask_decode(const uint8_t *p, size_t n, fy_dup_ask *v);
int fy_dup_answer_encode(const fy_dup_answer *v, uint8_t *out, size_t cap, size_t *len);
int fy_dup_answer_decode(const uint8_t *p, size_t n, fy_dup_answer *v);

/* A channel or file name: 1..FY_NAME_MAX bytes of [A-Za-z0-9._-], not
 * starting with '.', so it is always safe as one path component.
 * Returns 0 or -FY_ENAME. */
int fy_name_check(const char *name, size_t len);

/* A file name: a relative path of 1..FY_NAME_MAX bytes of valid UTF-8
 * (shortest forms, no surrogates), '/'-separated components that are
 * neither empty, "." nor "..", no NUL or other control character (< 0x20,
 * 0x7f), not starting or ending with '/'.  Every fy_name_check name passes.
 * Receivers join it under their directory (never outside it).
 * Returns 0 or -FY_ENAME.  Any thread. */
int fy_path_check(const char *path, size_t len);

/* ---- incremental decoder ------------------------------------------------- */

typedef struct fy_dec fy_dec;

/* A decoded frame.  raw points at the header and payload, contiguous
 * (raw_len = 32 + hdr.len), valid until the next fy_dec_* call. */
typedef struct fy_frame {
    fy_frame_hdr hdr;
    const uint8_t *raw;
    size_t raw_len;
    const uint8_t *payload;
} fy_frame;

/* max_payload: 1..FY_PAYLOAD_MAX_LIMIT, else -EINVAL; -ENOMEM. */
int fy_dec_new(size_t max_payload, fy_dec **out);
void fy_dec_free(fy_dec *d);

/* Feed bytes.  Consumes from p[0..n) and sets *used to how many bytes were
 * taken.  Returns 1 with *f filled when a whole frame (header checked,
 * payload CRC checked) is ready -- call again with the rest of the input;
 * 0 when all n bytes were taken and more are needed; or a negative FY_E*
 * error, after which the decoder stays failed (the connection must end).
 * Any split of the same byte stream yields the same frames.
 * Errors: those of fy_frame_hdr_decode, -FY_ESEQ for a stream frame with
 * seq 0, -FY_ECRC for a payload CRC mismatch, -ENOMEM; *used is 0 then.
 * A frame wholly inside p is returned in place (f->raw points into p);
 * one cut by the end of an input is assembled in the decoder's buffer
 * (at most 32 + max_payload bytes).  One decoder, one thread at a time. */
int fy_dec_feed(fy_dec *d, const uint8_t *p, size_t n, size_t *used, fy_frame *f);

/* Header-first mode, for a reader that places each frame's bytes itself
 * (a big payload read from the socket straight into a buffer of its own),
 * so the decoder must not copy or keep any input.  The checks, their order
 * and their errors are fy_dec_feed's, and the first error is final here
 * too.  Between frames a decoder may switch between fy_dec_feed and this
 * mode; not inside one.  One decoder, one thread at a time.
 *
 * fy_dec_head: check the header at the start of p[0..n).  Returns 1 with
 * *h filled (the frame is 32 + h->len bytes); 0 when n < 32, a torn header
 * (call again with these bytes and more); or a negative FY_E* error (those
 * of fy_frame_hdr_decode, -FY_ESEQ for a stream frame with seq 0).
 * Consumes nothing: the caller keeps or moves the bytes.
 *
 * fy_dec_body: raw holds the frame whose header fy_dec_head returned as h,
 * header and payload contiguous.  Checks the payload CRC and fills *f
 * pointing into raw.  Returns 0, or -FY_ECRC (final). */
int fy_dec_head(fy_dec *d, const uint8_t *p, size_t n, fy_frame_hdr *h);
int fy_dec_body(fy_dec *d, const fy_frame_hdr *h, const uint8_t *raw, fy_frame *f);

/* ---- checksums ----------------------------------------------------------- */

/* CRC32C (Castagnoli), hardware-accelerated where the CPU has it.  Start
 * with crc = 0; chaining calls over pieces gives the CRC of the whole. */
uint32_t fy_crc32c(uint32_t crc, const void *p, size_t n);

#endif
