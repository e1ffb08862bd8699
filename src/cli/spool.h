/*
 * spool.h - `ferry send -`: standard input copied to a temp file first.
 *
 * A file-begin frame carries the file's size (protocol.md), which a pipe
 * does not know up front, and a reconnect continues a file by re-reading
 * its prefix; so the bytes of standard input are first copied to a file in
 * $TMPDIR (else /tmp), bounded by that disk, which is then sent like any
 * other file and removed afterwards.
 */
#ifndef FY_CLI_SPOOL_H
#define FY_CLI_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "cli/cancel.h"

/* Copy fd (standard input) to a new file $TMPDIR/ferry-stdin-XXXXXX until
 * end of input; its path into path (cap bytes), its size into *bytes.
 * Stops early when cancel asks (-EINTR).  Returns 0, or a negative errno
 * with the file already removed; *call names the call that failed.  The
 * caller removes the file (unlink) when done.  One thread. */
int fy_cli_spool(int fd, fy_cli_cancel *cancel, char *path, size_t cap, uint64_t *bytes,
                 const char **call);

#endif
