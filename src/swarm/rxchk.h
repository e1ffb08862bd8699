/*
 * rxchk.h - the receiver-side checker: every stream frame a swarm
 * receiver gets goes through it.
 *
 * It checks the sequence (each seq exactly once, in order), the content
 * of every data payload against the deterministic pattern (pattern.h),
 * and every file: declared size, received size, and SHA-256 (computed
 * incrementally from the received bytes, compared with file-end's digest
 * and with the digest the sender computed).  The payload CRC is checked
 * by the decoder; a decoder error is reported here with
 * fy_rxchk_stream_error so it is counted as well.  One checker belongs to
 * one receiver (one thread); it survives reconnects, so a receiver that
 * resumes carries on where it stopped.
 */
#ifndef FY_SWARM_RXCHK_H
#define FY_SWARM_RXCHK_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry/proto.h"
#include "swarm/pattern.h"

typedef struct fy_rxchk fy_rxchk;

typedef struct fy_rxchk_cfg {
    const fy_pattern *pat;     /* content to compare with; NULL: no content check */
    bool hash;                 /* hash every file's received bytes */
    const uint8_t (*sha)[32];  /* [nsenders] digests the senders computed; NULL: none */
    uint32_t nsenders;         /* file names are "s<sender>-f<file>", sender < nsenders */
} fy_rxchk_cfg;

typedef struct fy_rxchk_counts {
    uint64_t frames;      /* stream frames taken */
    uint64_t data_frames; /* data frames taken in order */
    uint64_t data_bytes;  /* their payload bytes */
    uint64_t files_ok, files_bad;
    /* defects, each counted once: */
    uint64_t missing;      /* seqs skipped (gap) and never filled */
    uint64_t duplicate;    /* a seq seen twice */
    uint64_t out_of_order; /* a seq that filled an earlier gap */
    uint64_t corrupt;      /* payload CRC (decoder) or content mismatch */
    uint64_t digest_mismatch, size_mismatch;
    uint64_t partial_files; /* a file-begin before the previous file-end */
    uint64_t proto_errors;  /* bad control payload, data outside a file, ... */
} fy_rxchk_counts;

enum fy_rxchk_kind { FY_RXCHK_NONE = 0, FY_RXCHK_DATA = 1, FY_RXCHK_FILE_END = 2 };

/* What the frame was, for the caller's timing (latency of data frames,
 * completion of files). */
typedef struct fy_rxchk_ev {
    int kind;       /* enum fy_rxchk_kind */
    uint32_t sender; /* sender of the file the frame belongs to */
    uint64_t index; /* DATA: 0-based index of the data frame in its file */
} fy_rxchk_ev;

/* 0, -ENOMEM or -FY_EINTERNAL (no SHA-256).  cfg is copied; what it points
 * to must outlive the checker. */
int fy_rxchk_new(const fy_rxchk_cfg *cfg, fy_rxchk **out);
void fy_rxchk_free(fy_rxchk *c);

/* The first seq the receiver will get (welcome's next_seq).  Only the
 * first call counts; later (resume) welcomes are checked by the stream
 * itself. */
void fy_rxchk_expect(fy_rxchk *c, uint64_t seq);
/* Next seq wanted (for RESUME); 0 before anything was expected. */
uint64_t fy_rxchk_next(const fy_rxchk *c);

/* Take one stream frame (file-begin, data, file-end) whose header and
 * CRC the decoder checked.  Fills *ev.  Never fails: defects are counted. */
void fy_rxchk_frame(fy_rxchk *c, const fy_frame *f, fy_rxchk_ev *ev);

/* The decoder failed on this receiver's stream (err < 0): -FY_ECRC counts
 * as corrupt, anything else as a protocol error; an open file is lost. */
void fy_rxchk_stream_error(fy_rxchk *c, int err);

const fy_rxchk_counts *fy_rxchk_counts_get(const fy_rxchk *c);
/* Files finished, good or bad. */
uint64_t fy_rxchk_files_done(const fy_rxchk *c);
/* Sum of all defects (0 = a clean stream). */
uint64_t fy_rxchk_failures(const fy_rxchk_counts *n);

#endif
