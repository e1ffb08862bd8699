/*
 * place.c - mode, mtime and --on-conflict for a received file (place.h).
 *
 * The comparison reads the existing file once (only when one of the same
 * name and size is there); renames never replace a name they did not
 * decide to replace (renameat2 with RENAME_NOREPLACE), so a file that
 * appears meanwhile is not lost either.
 */
#include "cli/place.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/digest.h"
#include "ferry/klog.h"

#define PLACE_RENAME_MAX 1000 /* NAME.1 .. NAME.1000 */

int fy_cli_conflict_parse(const char *s)
{
    return !strcmp(s, "rename") ? FY_CLI_CONFLICT_RENAME
           : !strcmp(s, "keep") ? FY_CLI_CONFLICT_KEEP
           : !strcmp(s, "replace") ? FY_CLI_CONFLICT_REPLACE : -1;
}

int fy_cli_place_meta(int fd, const fy_file_begin *fb)
{
    if (!fb->ext || !(fb->fflags & FY_FB_F_META))
        return 0;
    if (fchmod(fd, (mode_t)(fb->mode & 01777)) != 0)
        return -errno;
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                             {.tv_sec = (time_t)(fb->mtime_ns / 1000000000),
                              .tv_nsec = (long)(fb->mtime_ns % 1000000000)}};
    if (ts[1].tv_nsec < 0) { /* before 1970 */
        ts[1].tv_sec--;
        ts[1].tv_nsec += 1000000000;
    }
    return futimens(fd, ts) == 0 ? 0 : -errno;
}

/* Does base in pdir hold exactly these bytes?  1 yes, 0 no (or unreadable). */
static int same_file(int pdir, const char *base, const struct stat *st,
                     const uint8_t sha[FY_SHA256_LEN], uint64_t size)
{
    if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size != size)
        return 0;
    int fd = openat(pdir, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    fy_sha256 *h = NULL;
    if (fd < 0 || fy_sha256_new(&h) < 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    uint8_t buf[64 << 10], got[FY_SHA256_LEN];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        fy_sha256_update(h, buf, (size_t)n);
    fy_sha256_final(h, got);
    fy_sha256_free(h);
    close(fd);
    return n == 0 && memcmp(got, sha, sizeof got) == 0;
}

static int rename_free(int pdir, const char *part, const char *base, char *final, size_t cap)
{
    for (int k = 1; k <= PLACE_RENAME_MAX; k++) {
        if (snprintf(final, cap, "%s.%d", base, k) >= (int)cap)
            return -ENAMETOOLONG;
        if (renameat2(pdir, part, pdir, final, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

int fy_cli_place(int pdir, const char *part, const char *base, int policy,
                 const uint8_t sha[FY_SHA256_LEN], uint64_t size, int *placed, char *final,
                 size_t cap)
{
    snprintf(final, cap, "%s", base);
    *placed = FY_CLI_PLACED_NEW;
    if (renameat2(pdir, part, pdir, base, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    struct stat st;
    if (fstatat(pdir, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    if (same_file(pdir, base, &st, sha, size)) {
        *placed = FY_CLI_PLACED_SAME;
        return unlinkat(pdir, part, 0) == 0 ? 0 : -errno;
    }
    if (policy == FY_CLI_CONFLICT_KEEP) {
        *placed = FY_CLI_PLACED_KEPT;
        return unlinkat(pdir, part, 0) == 0 ? 0 : -errno;
    }
    if (policy == FY_CLI_CONFLICT_REPLACE && S_ISREG(st.st_mode)) {
        *placed = FY_CLI_PLACED_REPLACED;
        return renameat(pdir, part, pdir, base) == 0 ? 0 : -errno;
    }
    *placed = FY_CLI_PLACED_RENAMED; /* also: replace, but the name is not a file */
    return rename_free(pdir, part, base, final, cap);
}

static const char *policy_name(int p)
{
    return p == FY_CLI_CONFLICT_KEEP ? "keep" : p == FY_CLI_CONFLICT_REPLACE ? "replace" : "rename";
}

static void log_placed(const fy_cli_place_req *q, int placed, const char *final)
{
    static const char *const what[] = {
        "new", "identical file already there: new copy dropped",
        "a different file has the name: saved under another name",
        "a different file has the name: kept it, new copy dropped",
        "a different file had the name: replaced"};
    char a[600], b[600];
    if (placed != FY_CLI_PLACED_NEW)
        fy_klog(placed == FY_CLI_PLACED_SAME ? FY_LOG_INFO : FY_LOG_WARN, what[placed],
                "file=%s saved_as=%s on_conflict=%s", fy_klog_q(q->name, a, sizeof a),
                placed == FY_CLI_PLACED_RENAMED || placed == FY_CLI_PLACED_REPLACED
                    ? fy_klog_q(final, b, sizeof b) : "-", policy_name(q->policy));
}

int fy_cli_place_finish(const fy_cli_place_req *q, const char **call)
{
    char final[FY_NAME_MAX + 16];
    int placed = FY_CLI_PLACED_NEW, rc = 0;
    *call = "ftruncate";
    if (ftruncate(q->fd, (off_t)q->size) != 0)
        rc = -errno;
    if (rc == 0 && q->fb && (rc = fy_cli_place_meta(q->fd, q->fb)) < 0)
        *call = "fchmod/futimens";
    if (rc == 0 && fsync(q->fd) != 0) {
        *call = "fsync";
        rc = -errno;
    }
    if (close(q->fd) != 0 && rc == 0) {
        *call = "close";
        rc = -errno;
    }
    if (rc == 0) {
        *call = "renameat";
        rc = fy_cli_place(q->pdir, q->part, q->base, q->policy, q->sha, q->size, &placed, final,
                          sizeof final);
    }
    if (rc < 0)
        unlinkat(q->pdir, q->part, 0);
    close(q->pdir);
    if (rc == 0)
        log_placed(q, placed, final);
    return rc;
}
