/*
 * err.c - text for Ferry's error codes (include/ferry/err.h).
 *
 * strerror() is not thread-safe and the runtime logs from many threads, so
 * errno values are described with glibc's strerrordesc_np(), which returns
 * static strings.
 */
#include "ferry/err.h"

#include <string.h>

const char *fy_strerror(int err)
{
    int e = err < 0 ? -err : err;

    if (e == 0)
        return "success";
    switch (e) {
#define FY__ERR_CASE(name, num, msg) case num: return msg;
    FY_ERRORS(FY__ERR_CASE)
#undef FY__ERR_CASE
    default:
        break;
    }
    const char *s = strerrordesc_np(e);
    return s ? s : "unknown error";
}

const char *fy_errname(int err)
{
    int e = err < 0 ? -err : err;

    switch (e) {
#define FY__ERR_NAME(name, num, msg) case num: return #name;
    FY_ERRORS(FY__ERR_NAME)
#undef FY__ERR_NAME
    default:
        break;
    }
    const char *s = strerrorname_np(e);
    return s ? s : "EUNKNOWN";
}
