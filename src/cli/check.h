/*
 * check.h - `ferry check`: verify a relay's data directory offline.
 *
 * Every channel under DATA/channels/ is checked with fy_store_check
 * (every frame's header and payload CRC32C, every index record), read-only,
 * so it is safe to run beside a live relay (it may then report the frame
 * being written at the tail).  Output on stdout, one key=value line per
 * channel and one summary line:
 *   channel=NAME status=ok segments=1 frames=3203 bytes=209818624 ...
 *   check=ok channels=1 damaged=0 frames=3203 bytes=209818624 crc_errors=0 index_errors=0
 */
#ifndef FY_CLI_CHECK_H
#define FY_CLI_CHECK_H

#include <stddef.h>
#include <stdio.h>

/* Check data_dir; max_payload 0 = the protocol's limit (16 MiB), which
 * accepts any relay configuration.  Returns 0 clean, 1 damage found, 5 the
 * directory could not be read (exit.h). */
int fy_cli_check_run(const char *data_dir, size_t max_payload, FILE *out);

#endif
