/*
 * units.h - the one parser for byte counts on command lines and in config
 * files ("4096", "64K", "1M", "2G", "1T"; binary multiples; "KiB"/"KB"
 * spellings accepted), so ferryd, ferry and ferry-swarm agree on what a
 * size means.
 */
#ifndef FERRY_UNITS_H
#define FERRY_UNITS_H

#include <stdint.h>

/* Parse s into *out.  Returns 0, -EINVAL for anything but digits with an
 * optional unit, or -ERANGE past UINT64_MAX.  *out is untouched on error. */
int fy_units_bytes(const char *s, uint64_t *out);

#endif
