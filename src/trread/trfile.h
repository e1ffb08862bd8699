/*
 * trfile.h - reading a trace file (docs/trace-format.md) into memory.
 *
 * A trace file is untrusted input: it may be foreign, truncated by a crash
 * or a full disk, or garbage.  fy_trfile_parse() checks every length
 * against the bytes present before it uses it and answers a bad file with
 * an error text naming the byte offset and the reason; it never reads out
 * of bounds and allocates at most a small multiple of the file size.
 *
 * Both kinds of file parse the same way: a dump (fy_trace_dump: one block
 * per thread) and a streamed file (tracer.c: many blocks per thread, meta
 * records repeated).  The result is every event merged into one timeline
 * ordered by time, plus the actor table and the per-thread loss counts.
 */
#ifndef FY_TRREAD_TRFILE_H
#define FY_TRREAD_TRFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/trace.h"

typedef struct fy_trfile fy_trfile;

typedef struct fy_trfile_actor {
    uint32_t id;
    uint16_t kind;
    uint64_t created_ns;
    char label[65]; /* NUL-terminated, raw bytes as recorded */
} fy_trfile_actor;

/* A cluster event (FY_TR_META_CLUSTER): what the relay's member saw. */
typedef struct fy_trfile_cluster {
    uint64_t ts_ns;
    uint64_t epoch;
    uint32_t serial; /* the relay's count of cluster events, from 1 */
    uint16_t ev;     /* enum fy_trace_cluster */
    char text[FY_TRACE_CL_TEXT + 1]; /* key=value, NUL-terminated, as recorded */
    uint64_t pos; /* its record's index in the file */
} fy_trfile_cluster;

enum {
    /* Accept a file cut in the middle of its last record or block (a dump
     * interrupted by a crash, a streamed file still being written): use the
     * complete part and say what was cut in fy_trfile_warning(). */
    FY_TRFILE_PARTIAL = 1u << 0,
};

/* Parse len bytes (copied; data may be freed afterwards).  Returns 0, or
 * -FY_ECORRUPT (not a trace file, bad field), -FY_ETRUNC (truncated) or
 * -ENOMEM, with a one-line reason in err (any thread). */
int fy_trfile_parse(const void *data, size_t len, unsigned flags, fy_trfile **out, char *err,
                    size_t errcap);

/* Read and parse a file.  As fy_trfile_parse, plus -errno from open/read. */
int fy_trfile_open(const char *path, unsigned flags, fy_trfile **out, char *err, size_t errcap);

void fy_trfile_free(fy_trfile *f); /* NULL ignored */

const fy_trace_file_hdr *fy_trfile_hdr(const fy_trfile *f);
/* Every event (meta records excluded), ordered by time, ties in file order. */
const fy_trace_rec *fy_trfile_events(const fy_trfile *f, size_t *n);
/* Actors ordered by id; fy_trfile_actor_find() finds one (NULL when unknown). */
const fy_trfile_actor *fy_trfile_actors(const fy_trfile *f, size_t *n);
const fy_trfile_actor *fy_trfile_actor_find(const fy_trfile *f, uint32_t id);
/* Cluster events ordered by time (a serial repeated keeps the last one in
 * the file). */
const fy_trfile_cluster *fy_trfile_clusters(const fy_trfile *f, size_t *n);
/* Events lost to ring wrap-around, over all threads, and the number of
 * threads seen (highest index + 1). */
uint64_t fy_trfile_lost(const fy_trfile *f);
unsigned fy_trfile_threads(const fy_trfile *f);
uint64_t fy_trfile_thread_lost(const fy_trfile *f, unsigned thread);
/* Wall-clock ns for a monotonic timestamp of this file (from its clock
 * records), 0 when the file has no clock. */
uint64_t fy_trfile_real_ns(const fy_trfile *f, uint64_t mono_ns);
/* What FY_TRFILE_PARTIAL let through ("" when nothing). */
const char *fy_trfile_warning(const fy_trfile *f);

/* Names: "turn_end", "forwarder"; unknown values give "type<N>" /
 * "kind<N>" in a static-free way (buf, cap >= 16). */
const char *fy_trfile_type_name(uint16_t type, char *buf, size_t cap);
const char *fy_trfile_kind_name(uint16_t kind, char *buf, size_t cap);
/* "leader", "isr", "failover", "note"; else "cluster<N>". */
const char *fy_trfile_cluster_name(uint16_t ev, char *buf, size_t cap);
/* Kind by name or number ("forwarder", "6"); -EINVAL when unknown. */
int fy_trfile_kind_parse(const char *s);

#endif
