/*
 * powerloss_shim.c - an LD_PRELOAD library for the power-loss tests: it
 * journals what a process made durable, so a test can later cut every
 * file back to exactly that (tc_powerloss_apply, tc.h) and so simulate a
 * power cut rather than a chosen one.
 *
 * With $FERRY_POWERLOSS_JOURNAL set, every successful fsync/fdatasync of a
 * regular file appends "S<TAB>path<TAB>size" (the size before the call:
 * what was written before the sync began is on the device after it
 * returns), every rename "R<TAB>old<TAB>new" and every unlink
 * "U<TAB>path".  Directory syncs are not journaled: renames and new names
 * are treated as durable at once (the model is "the data after the last
 * fdatasync is lost", not a full crash-consistency checker).  One write(2)
 * with O_APPEND per record keeps records whole across threads and
 * processes.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Declared here: the shim is loaded into programs, not linked with them. */
int fsync(int fd);
int fdatasync(int fd);
int rename(const char *oldpath, const char *newpath);
int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
int unlink(const char *path);
int unlinkat(int dirfd, const char *path, int flags);

static void journal(const char *line, size_t n)
{
    const char *path = getenv("FERRY_POWERLOSS_JOURNAL");
    int fd;

    if (!path || !*path)
        return;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, n) < 0) {
        /* nothing to do: the test sees a record missing and cuts more */
    }
    close(fd);
}

/* The absolute path of name relative to dirfd (AT_FDCWD: the cwd). */
static int abs_path(int dirfd, const char *name, char *out, size_t cap)
{
    char base[PATH_MAX], link[64];
    ssize_t n;

    if (name[0] == '/')
        return snprintf(out, cap, "%s", name) < (int)cap ? 0 : -1;
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base))
            return -1;
    } else {
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        n = readlink(link, base, sizeof base - 1);
        if (n < 0)
            return -1;
        base[n] = '\0';
    }
    return snprintf(out, cap, "%s/%s", base, name) < (int)cap ? 0 : -1;
}

static void *next(const char *sym)
{
    return dlsym(RTLD_NEXT, sym);
}

/* Run the real sync; journal the file's size from before it on success. */
static int synced(int fd, int (*real)(int))
{
    char link[64], path[PATH_MAX], line[PATH_MAX + 64];
    struct stat st;
    ssize_t n;
    bool file;
    int rc, len;

    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    file = n > 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    rc = real(fd);
    if (rc == 0 && file) {
        path[n] = '\0';
        len = snprintf(line, sizeof line, "S\t%s\t%lld\n", path, (long long)st.st_size);
        if (len > 0 && len < (int)sizeof line)
            journal(line, (size_t)len);
    }
    return rc;
}

int fsync(int fd)
{
    return synced(fd, (int (*)(int))next("fsync"));
}

int fdatasync(int fd)
{
    return synced(fd, (int (*)(int))next("fdatasync"));
}

static void journal_rename(int od, const char *o, int nd, const char *n)
{
    char a[PATH_MAX], b[PATH_MAX], line[2 * PATH_MAX + 8];
    int len;

    if (abs_path(od, o, a, sizeof a) < 0 || abs_path(nd, n, b, sizeof b) < 0)
        return;
    len = snprintf(line, sizeof line, "R\t%s\t%s\n", a, b);
    if (len > 0 && len < (int)sizeof line)
        journal(line, (size_t)len);
}

static void journal_unlink(int d, const char *p)
{
    char a[PATH_MAX], line[PATH_MAX + 8];
    int len;

    if (abs_path(d, p, a, sizeof a) < 0)
        return;
    len = snprintf(line, sizeof line, "U\t%s\n", a);
    if (len > 0 && len < (int)sizeof line)
        journal(line, (size_t)len);
}

int rename(const char *oldpath, const char *newpath)
{
    int (*real)(const char *, const char *) = (int (*)(const char *, const char *))next("rename");
    int rc = real(oldpath, newpath);

    if (rc == 0)
        journal_rename(AT_FDCWD, oldpath, AT_FDCWD, newpath);
    return rc;
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    int (*real)(int, const char *, int, const char *) =
        (int (*)(int, const char *, int, const char *))next("renameat");
    int rc = real(olddirfd, oldpath, newdirfd, newpath);

    if (rc == 0)
        journal_rename(olddirfd, oldpath, newdirfd, newpath);
    return rc;
}

int unlink(const char *path)
{
    int (*real)(const char *) = (int (*)(const char *))next("unlink");
    int rc = real(path);

    if (rc == 0)
        journal_unlink(AT_FDCWD, path);
    return rc;
}

int unlinkat(int dirfd, const char *path, int flags)
{
    int (*real)(int, const char *, int) = (int (*)(int, const char *, int))next("unlinkat");
    int rc = real(dirfd, path, flags);

    if (rc == 0 && !(flags & AT_REMOVEDIR))
        journal_unlink(dirfd, path);
    return rc;
}
