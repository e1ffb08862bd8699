/*
 * units.c - byte-count parsing (include/ferry/units.h), shared by every
 * program's option and config parsing.
 */
#include "ferry/units.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

/* Binary shift for a unit letter, or 0 for none. */
static unsigned unit_shift(char c)
{
    switch (c) {
    case 'k': case 'K': return 10;
    case 'm': case 'M': return 20;
    case 'g': case 'G': return 30;
    case 't': case 'T': return 40;
    default: return 0;
    }
}

int fy_units_bytes(const char *s, uint64_t *out)
{
    char *end;

    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -ERANGE;
    unsigned shift = unit_shift(*end);
    if (shift)
        end++;
    if (shift && *end == 'i' && end[1] == 'B')
        end += 2;
    else if (*end == 'B')
        end++;
    if (*end)
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = (uint64_t)v << shift;
    return 0;
}
