/*
 * state.c - the resume state file (format in state.h and docs/client.md).
 *
 * Parsed strictly: unknown keys or a bad number make the file "corrupt",
 * because resuming from a guessed position could skip a file silently.
 */
#include "cli/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"

#define STATE_TMP ".ferry-state.tmp"

static int parse_line(char *line, char *channel, size_t cap, uint64_t *next_seq, int *seen)
{
    if (line[0] == '#' || line[0] == 0)
        return 0;
    char *eq = strchr(line, '=');
    if (!eq)
        return -FY_ECORRUPT;
    *eq = 0;
    const char *val = eq + 1;
    if (strcmp(line, "channel") == 0) {
        size_t n = strlen(val);
        if (fy_name_check(val, n) != 0 || n >= cap)
            return -FY_ECORRUPT;
        memcpy(channel, val, n + 1);
        *seen |= 1;
    } else if (strcmp(line, "next_seq") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (errno || end == val || *end || val[0] == '-' || v == 0)
            return -FY_ECORRUPT;
        *next_seq = v;
        *seen |= 2;
    } else {
        return -FY_ECORRUPT;
    }
    return 0;
}

int fy_cli_state_load(int dirfd, char *channel, size_t cap, uint64_t *next_seq)
{
    int fd = openat(dirfd, FY_CLI_STATE_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int err = errno;
    close(fd);
    if (n < 0)
        return -err;
    if ((size_t)n == sizeof buf - 1)
        return -FY_ECORRUPT; /* far longer than any valid state */
    buf[n] = 0;
    int seen = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int rc = parse_line(line, channel, cap, next_seq, &seen);
        if (rc < 0)
            return rc;
    }
    return seen == 3 ? 0 : -FY_ECORRUPT;
}

int fy_cli_state_save(int dirfd, const char *channel, uint64_t next_seq)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "# ferry recv state: resume with `ferry recv --resume`\n"
                     "channel=%s\nnext_seq=%llu\n",
                     channel, (unsigned long long)next_seq);
    if (n < 0 || (size_t)n >= sizeof buf)
        return -ENAMETOOLONG;
    int fd = openat(dirfd, STATE_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, buf, (size_t)n);
    int err = w < 0 ? errno : (w != n ? EIO : 0);
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && renameat(dirfd, STATE_TMP, dirfd, FY_CLI_STATE_FILE) != 0)
        err = errno;
    if (err)
        unlinkat(dirfd, STATE_TMP, 0);
    return -err;
}
