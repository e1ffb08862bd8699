/*
 * outdir.h - checks on a receiving command's --out directory.
 *
 * Kept apart from recv.c so every command that writes into a directory
 * (recv, and later ones) checks it the same way, at start.
 */
#ifndef FY_CLI_OUTDIR_H
#define FY_CLI_OUTDIR_H

/* Can we create files in the directory open as dirfd (named dir, for the
 * message)?  A directory we cannot write to (permissions, a read-only
 * mount, a full disk) fails at start, not when the first file arrives,
 * perhaps hours later: a probe file is created and removed.  Returns
 * FY_CLI_EXIT_OK, or FY_CLI_EXIT_IO after one error line
 * (msg="the --out directory is not writable"). */
int fy_cli_outdir_writable(int dirfd, const char *dir);

#endif
