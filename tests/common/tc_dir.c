/*
 * tc_dir.c - a test's temp directory and its removal (see tc.h).
 */
#include "tc.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int tc_tmpdir(char *out, size_t cap, const char *tag)
{
    const char *base = getenv("FERRY_TEST_TMP");
    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(out, cap, "%s/ferry-%s-XXXXXX", base, tag);
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            out[0] = 0;
        return -ENAMETOOLONG;
    }
    if (!mkdtemp(out)) {
        int e = errno;
        out[0] = 0;
        return -e;
    }
    return 0;
}

/* nftw has no user pointer: the first failure of the walk in progress. */
static int rm_err;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    if (remove(path) < 0 && rm_err == 0)
        rm_err = -errno;
    return 0; /* go on: remove what can be removed */
}

int tc_rmtree(const char *path)
{
    rm_err = 0;
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
        return -errno;
    return rm_err;
}

int tc_tmpdir_done(const char *path)
{
    if (!path || !path[0])
        return 0;
    if (getenv("FERRY_TEST_KEEP")) {
        fprintf(stderr, "tests: kept %s\n", path);
        return 0;
    }
    return tc_rmtree(path);
}
