/*
 * prom.h - building a Prometheus text exposition (format 0.0.4).
 *
 * A family is announced once (# HELP, # TYPE) and its samples follow it
 * directly; label values are escaped here, so callers pass raw channel
 * names and peer addresses.  The builder owns one growing buffer; an
 * allocation failure is remembered and reported by fy_prom_text(), so
 * callers need not check every call.  fy_prom_check() is the other side:
 * a strict line checker for tests and for the server's own self-check.
 */
#ifndef FY_METRICS_PROM_H
#define FY_METRICS_PROM_H

#include <stddef.h>
#include <stdint.h>

typedef struct fy_prom fy_prom;

#define FY_PROM_CTYPE "text/plain; version=0.0.4; charset=utf-8"

int fy_prom_new(fy_prom **out); /* 0 or -ENOMEM */
void fy_prom_free(fy_prom *p);  /* NULL ignored */
void fy_prom_reset(fy_prom *p); /* empty, keep the buffer */

/* Announce a family: type is "counter", "gauge" or "untyped". */
void fy_prom_family(fy_prom *p, const char *name, const char *type, const char *help);
/* One sample of the family just announced: labels are key, value pairs
 * ending with NULL (values escaped here; keys must be valid names). */
void fy_prom_u64(fy_prom *p, const char *name, uint64_t v, ...);
void fy_prom_f64(fy_prom *p, const char *name, double v, ...);

/* The text so far, NUL-terminated; NULL when an allocation failed. */
const char *fy_prom_text(const fy_prom *p, size_t *len);

/* Check text line by line: each line empty, a comment, or
 * `name{k="v",...} value` with a valid name, well-escaped labels and a
 * number.  0, or -EINVAL with "line N: reason" in err. */
int fy_prom_check(const char *text, size_t len, char *err, size_t errcap);

/* Find the value of the first sample whose name and label text match
 * exactly, e.g. fy_prom_find(t, "ferry_frames_total", "channel=\"a\"", &v)
 * (labels NULL = no labels).  0 or -ENOENT.  For tests and tools. */
int fy_prom_find(const char *text, const char *name, const char *labels, double *v);

#endif
