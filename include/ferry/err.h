/*
 * err.h - Ferry's one error type.
 *
 * Every function that can fail returns 0 (or a count) on success and a
 * negative number on failure: either a negated errno (-EAGAIN means "would
 * block, call again") or a negated FY_E* code from the table below.  The
 * FY_E* numbers start at 1000 so they never collide with errno values, and
 * they double as the error codes carried in the wire protocol's error frame
 * (docs/protocol.md), so a peer sees the same number the log line shows.
 */
#ifndef FERRY_ERR_H
#define FERRY_ERR_H

/* X(name, number, message): the one place that defines Ferry's own codes. */
#define FY_ERRORS(X)                                                        \
    X(FY_EMAGIC,     1001, "bad frame magic")                               \
    X(FY_EVERSION,   1002, "unsupported protocol version")                  \
    X(FY_ETYPE,      1003, "unknown frame type")                            \
    X(FY_EOVERSIZE,  1004, "payload larger than the frame size limit")      \
    X(FY_EHDRCHECK,  1005, "frame header check failed")                     \
    X(FY_ECRC,       1006, "payload CRC32C mismatch")                       \
    X(FY_ETRUNC,     1007, "truncated control payload")                     \
    X(FY_ENAME,      1008, "invalid channel or file name")                  \
    X(FY_EFLAGS,     1009, "unknown frame flags")                           \
    X(FY_EPAYLOAD,   1010, "malformed control payload")                     \
    X(FY_EPROTO,     1011, "protocol violation")                            \
    X(FY_ESEQ,       1012, "unexpected sequence number")                    \
    X(FY_EAUTH,      1013, "token refused")                                 \
    X(FY_EBUSY,      1014, "channel already has a sender")                  \
    X(FY_ENOSEQ,     1015, "sequence number not available")                 \
    X(FY_EDIGEST,    1016, "file SHA-256 mismatch")                         \
    X(FY_ESIZE,      1017, "file size mismatch")                            \
    X(FY_EPOOL,      1018, "buffer pool exhausted")                         \
    X(FY_ECLOSED,    1019, "actor stopped")                                 \
    X(FY_ECORRUPT,   1020, "corrupt data on disk")                          \
    X(FY_ESHUTDOWN,  1021, "relay shutting down")                           \
    X(FY_EINTERNAL,  1022, "internal error")                                \
    X(FY_ENOSPACE,   1023, "relay storage full")                            \
    X(FY_ELIMIT,     1024, "relay limit reached")                           \
    X(FY_ETIMEOUT,   1025, "peer idle too long")                            \
    X(FY_ETLS,       1026, "TLS failed (handshake, certificate or record)") \
    X(FY_ETLSREQ,    1027, "this relay requires TLS")                        \
    X(FY_ESTORAGE,   1030, "relay storage failed, try again later")          \
    X(FY_ENOFILE,    1050, "no such file on the channel")                   \
    X(FY_ENOCHAN,    1051, "no such channel on the relay")                  \
    X(FY_EINUSE,     1052, "channel in use")                                \
    X(FY_ESKIPPED,   1070, "files skipped: the upstream relay no longer held them") \
    X(FY_ENOTLEADER, 1080, "this relay does not lead the channel")         \
    X(FY_ESTALE,     1081, "stale cluster epoch")

enum fy_err {
#define FY__ERR_ENUM(name, num, msg) name = num,
    FY_ERRORS(FY__ERR_ENUM)
#undef FY__ERR_ENUM
};

/* Text for an error code (negative or positive, FY_E* or errno); any thread. */
const char *fy_strerror(int err);

/* The symbolic name ("FY_ECRC", "EAGAIN" when known, else "E<num>"); any thread. */
const char *fy_errname(int err);

#endif
