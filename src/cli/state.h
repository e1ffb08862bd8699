/*
 * state.h - the resume state file `ferry recv --resume` keeps in its
 * output directory.
 *
 * DIR/.ferry-state is three lines of text (docs/client.md):
 *   # ferry recv state: resume with `ferry recv --resume`
 *   channel=NAME
 *   next_seq=N
 * next_seq is the sequence number after the last file-end of a file that
 * was completely written (fsync'd and renamed into place), so a resume
 * starts at a file-begin and a half-received file is received again.  The
 * name starts with '.', which no received file name may, so a sender can
 * never overwrite it.
 */
#ifndef FY_CLI_STATE_H
#define FY_CLI_STATE_H

#include <stddef.h>
#include <stdint.h>

#define FY_CLI_STATE_FILE ".ferry-state"

/* Read DIR's state (dirfd open on DIR).  Returns 0, -ENOENT when there is
 * none, -FY_ECORRUPT for a file that does not parse, or -errno. */
int fy_cli_state_load(int dirfd, char *channel, size_t cap, uint64_t *next_seq);

/* Replace DIR's state atomically (write a temp file, rename over).  Not
 * fsync'd: the file data it vouches for already is, and a state that is
 * lost in a crash is only behind (files are received again, never lost).
 * Returns 0 or -errno. */
int fy_cli_state_save(int dirfd, const char *channel, uint64_t next_seq);

#endif
