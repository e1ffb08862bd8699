/*
 * outdir.c - checks on a receiving command's --out directory (outdir.h).
 *
 * A probe file rather than access(2): access answers for the real uid and
 * says nothing of a read-only mount seen by root, a full disk or quota.
 */
#include "cli/outdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cliexit.h"
#include "ferry/err.h"
#include "ferry/klog.h"

int fy_cli_outdir_writable(int dirfd, const char *dir)
{
    char probe[64], q[1100];
    snprintf(probe, sizeof probe, ".ferry-probe.%ld", (long)getpid());
    int fd = openat(dirfd, probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;
        fy_klog(FY_LOG_ERROR, "the --out directory is not writable", "dir=%s call=openat err=%s "
                "reason=\"%s\" exit=%d", fy_klog_q(dir, q, sizeof q), fy_errname(-err),
                strerror(err), FY_CLI_EXIT_IO);
        return FY_CLI_EXIT_IO;
    }
    close(fd);
    unlinkat(dirfd, probe, 0);
    return FY_CLI_EXIT_OK;
}
