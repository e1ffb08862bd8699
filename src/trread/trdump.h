/*
 * trdump.h - a readable timeline of a trace (ferry-trace dump): one line
 * per event, oldest first, times relative to the first event, filtered by
 * actor, kind and time window.
 */
#ifndef FY_TRREAD_TRDUMP_H
#define FY_TRREAD_TRDUMP_H

#include <stdint.h>
#include <stdio.h>

#include "trread/trfile.h"

typedef struct fy_trdump_filter {
    uint32_t actor; /* 0 = every actor; else its events and the sends it made */
    int kind;       /* -1 = every kind */
    uint64_t since; /* ns after the first event (0 = from the start) */
    uint64_t until; /* ns after the first event (UINT64_MAX = to the end) */
} fy_trdump_filter;

/* Print the events of f that pass flt.  Returns the number of lines
 * printed, or -EIO when the stream failed. */
long fy_trdump_print(FILE *o, const char *name, const fy_trfile *f, const fy_trdump_filter *flt);

/* "1.5" (seconds), "250ms", "40us", "100ns", "2s" -> ns.  0 or -EINVAL. */
int fy_trdump_parse_time(const char *s, uint64_t *ns);

#endif
