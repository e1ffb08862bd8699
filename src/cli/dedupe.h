/*
 * dedupe.h - ask the relay whether the channel's latest file of a name is
 * still held (dup-ask frame, docs/protocol.md §9), for `ferry send`.
 *
 * One round trip per file; the sender then compares the answer's SHA-256
 * with its own file's and does not send a file the channel already has.
 */
#ifndef FY_CLI_DEDUPE_H
#define FY_CLI_DEDUPE_H

#include <stdint.h>

#include "cli/conn.h"
#include "ferry/proto.h"

/* Send a dup-ask for fb's name and size on k and wait for the dup-answer frame
 * into *st (st->seq 0: not held).  Acks that arrive first go to on_ack.
 * 0, or a negative connection error (-FY_EPROTO for another frame).  The
 * relay must have taken FY_HELLO_F_DEDUPE.  One thread. */
int fy_cli_dedupe_ask(fy_cli_conn *k, const fy_file_begin *fb, void (*on_ack)(void *, uint64_t),
                      void *arg, fy_dup_answer *st);

#endif
