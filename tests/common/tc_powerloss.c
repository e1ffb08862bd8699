/*
 * tc_powerloss.c - a simulated power cut from the shim's journal (see
 * powerloss_shim.c and tc.h): every regular file under a directory is cut
 * back to the size it had at its last journaled sync, and a file never
 * synced is cut to nothing.
 */
#define _XOPEN_SOURCE 700
#include "tc.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENTRIES_MAX 8192

typedef struct entry {
    char *path;
    long long size;
} entry;

/* nftw keeps no user pointer: one cut at a time (tests are one thread). */
static struct {
    entry e[ENTRIES_MAX];
    size_t n;
    tc_powerloss_stats *st;
    int err;
} cut;

static entry *lookup(const char *path)
{
    for (size_t i = 0; i < cut.n; i++)
        if (strcmp(cut.e[i].path, path) == 0)
            return &cut.e[i];
    return NULL;
}

static void forget(const char *path)
{
    entry *e = lookup(path);

    if (e) {
        free(e->path);
        *e = cut.e[--cut.n];
    }
}

static int record(char *line)
{
    char *kind = strtok(line, "\t\n"), *a = strtok(NULL, "\t\n"), *b = strtok(NULL, "\t\n");
    entry *e;

    if (!kind || !a)
        return 0; /* a torn last line (the process was killed mid-write) */
    if (kind[0] == 'S' && b) {
        e = lookup(a);
        if (!e) {
            if (cut.n == ENTRIES_MAX)
                return -ENOSPC;
            e = &cut.e[cut.n++];
            e->path = strdup(a);
            if (!e->path)
                return -ENOMEM;
        }
        e->size = atoll(b);
    } else if (kind[0] == 'R' && b) {
        forget(b);
        e = lookup(a);
        if (e) {
            char *p = strdup(b);
            if (!p)
                return -ENOMEM;
            free(e->path);
            e->path = p;
        }
    } else if (kind[0] == 'U') {
        forget(a);
    }
    return 0;
}

static int visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(sb->st_mode))
        return 0;
    entry *e = lookup(path);
    long long keep = e ? e->size : 0;
    if (sb->st_size <= keep)
        return 0;
    if (truncate(path, keep) != 0) {
        cut.err = -errno;
        return 1;
    }
    cut.st->files_cut++;
    cut.st->bytes_lost += (uint64_t)(sb->st_size - keep);
    return 0;
}

int tc_powerloss_apply(const char *journal, const char *dir, tc_powerloss_stats *st)
{
    char line[2 * PATH_MAX + 16];
    FILE *f = fopen(journal, "r");
    int rc = 0;

    memset(st, 0, sizeof *st);
    cut.n = 0;
    cut.err = 0;
    cut.st = st;
    if (!f && errno != ENOENT)
        return -errno;
    while (f && rc == 0 && fgets(line, sizeof line, f)) {
        rc = record(line);
        st->records++;
    }
    if (f)
        fclose(f);
    if (rc == 0 && nftw(dir, visit, 16, FTW_PHYS) != 0)
        rc = cut.err ? cut.err : -EIO;
    for (size_t i = 0; i < cut.n; i++)
        free(cut.e[i].path);
    cut.n = 0;
    return rc;
}
