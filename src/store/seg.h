/*
 * seg.h - internals shared by the store's files (fy__seg_*): the 32-byte
 * file header of segment and index files, index record encoding, segment
 * names, directory listing and the frame scanner that recovery, rebuilds and
 * fy_store_check all use.  docs/storage.md is the byte layout.
 *
 * Nothing here keeps state; every function works on file descriptors its
 * caller owns, so the writer's, the indexer's and the readers' halves can
 * use it from their own threads.
 */
#ifndef FERRY_STORE_SEG_H
#define FERRY_STORE_SEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ferry/store.h"
#include "base/le.h"

#define FY__SEG_HDR_SIZE 32u   /* file header of .log and .idx files */
#define FY__IDX_REC_SIZE 32u   /* one index record on disk */
#define FY__SEG_MAGIC_LOG 0x474c5946u /* "FYLG" as a little-endian u32 */
#define FY__SEG_MAGIC_IDX 0x58495946u /* "FYIX" */
#define FY__SEG_VERSION 1u
#define FY__SEG_NAME_CAP 32u  /* "<20 digits>.log" + NUL fits */
#define FY__SEG_BYTES_DEFAULT ((uint64_t)256 << 20)

enum fy__seg_kind { FY__SEG_LOG = 0, FY__SEG_IDX = 1 };

/* "<base, 20 digits>.log" or ".idx" into out. */
void fy__seg_name(uint64_t base, int kind, char out[FY__SEG_NAME_CAP]);

/* The file header of a segment (kind FY__SEG_LOG) or index file.  A data
 * segment's header has one flag (byte 6): FY__SEG_F_OPEN while the segment
 * may not be wholly on disk (it is written with it and cleared by the seal
 * after an fdatasync), 0 once sealed.  Segments written before the flag
 * existed have 0: their writer synced every segment before rolling away. */
#define FY__SEG_F_OPEN 1u
void fy__seg_hdr_encode(int kind, uint64_t base, uint8_t out[FY__SEG_HDR_SIZE]);
void fy__seg_hdr_encode_open(uint64_t base, uint8_t out[FY__SEG_HDR_SIZE]);
/* 0 if in[] is a valid sealed header of that kind and base, 1 if it is a
 * valid open data segment header, else -FY_ECORRUPT. */
int fy__seg_hdr_check(int kind, uint64_t base, const uint8_t in[FY__SEG_HDR_SIZE]);
/* Seal data segment fd (base): fdatasync it, then clear FY__SEG_F_OPEN in
 * its header and fdatasync again, so a sealed header never reaches the disk
 * before the data it vouches for.  0 or -errno. */
int fy__seg_seal(int fd, uint64_t base);

/* Index records: seg is implied by the file, so it is not stored. */
void fy__seg_rec_encode(const fy_idx_rec *r, uint8_t out[FY__IDX_REC_SIZE]);
/* 0 if the record's own check passes (r->seg = seg), else -FY_ECORRUPT. */
int fy__seg_rec_decode(const uint8_t in[FY__IDX_REC_SIZE], uint64_t seg, fy_idx_rec *r);

/* Open <base>.<kind> relative to dirfd with flags (O_CLOEXEC added).
 * Returns an fd or -errno. */
int fy__seg_open(int dirfd, int kind, uint64_t base, int flags);
/* Create <base>.<kind> and write its header (open, for a data segment); excl refuses an existing file,
 * otherwise an existing file is truncated.  Returns an O_RDWR fd or -errno. */
int fy__seg_create(int dirfd, int kind, uint64_t base, bool excl);
/* Sorted bases of all files of that kind in dirfd (other names ignored).
 * *bases is malloc'd (NULL when *n == 0).  Returns 0 or -errno. */
int fy__seg_list(int dirfd, int kind, uint64_t **bases, size_t *n);

/* pread/pwrite until n bytes or EOF; return bytes done or -errno. */
ssize_t fy__seg_pread(int fd, void *buf, size_t n, uint64_t off);
int fy__seg_pwrite(int fd, const void *buf, size_t n, uint64_t off);

/* ---- frame scanner ------------------------------------------------------ */

/* Called for each good frame, in order; a negative return stops the scan
 * and is returned by fy__seg_scan. */
typedef int (*fy__seg_scan_fn)(void *arg, const fy_idx_rec *r);

typedef struct fy__seg_scan_res {
    uint64_t end_off;    /* end of the last good frame */
    uint64_t next_seq;   /* seq after it */
    uint64_t frames;     /* good frames seen */
    uint64_t read_bytes; /* bytes read from the file */
    int stop;            /* 0: reached limit cleanly; -FY_ETRUNC: torn frame at the
                            end; else the frame's error (-FY_ECRC, -FY_ESEQ, ...) */
} fy__seg_scan_res;

/* Read the frames of segment fd (base seg) from off up to limit, expecting
 * seq first; stop at the first frame that is torn, fails its header check or
 * CRC, or carries the wrong seq.  Reads in large chunks.  Returns 0 (see
 * res->stop) or -errno / the callback's error. */
int fy__seg_scan(int fd, uint64_t seg, uint64_t off, uint64_t limit, uint64_t seq,
                 size_t max_payload, fy__seg_scan_fn fn, void *arg, fy__seg_scan_res *res);

/* Check the frame a record points at: header, seq, len, crc, and (when
 * payload) the payload CRC.  Adds the bytes read to *read.  Returns 0,
 * -FY_ECORRUPT on mismatch, or -errno. */
int fy__seg_verify(int fd, const fy_idx_rec *r, size_t max_payload, bool payload,
                   uint64_t *read);

#endif
