/*
 * tlsfail.h - failed TLS handshakes: a relay-wide count, and the bound on
 * how many of them are logged.
 *
 * Anyone can open connections and abandon the handshake, so one log line
 * per failure lets a scanner fill the journal.  At most FY_TLSFAIL_LINES
 * failures a second get their `TLS handshake failed` line; the others are
 * counted, and the next line that is logged says how many were left out
 * (suppressed=K); when no line follows, ferryd's main thread says it once a
 * second (fy_tlsfail_take, "TLS handshake failures not logged").  Every failure is counted for /metrics
 * (ferry_tls_handshake_failures_total).
 */
#ifndef FERRY_RELAY_TLSFAIL_H
#define FERRY_RELAY_TLSFAIL_H

#include <stdbool.h>
#include <stdint.h>

#define FY_TLSFAIL_LINES 10 /* log lines per second, at most */

/* Any thread: count one failed handshake.  True when it may be logged;
 * then *suppressed gets the failures not logged since the last line. */
bool fy_tlsfail_note(uint64_t *suppressed);

/* Any thread: the failures not logged since the last line (0 if none),
 * which the caller now reports; each is reported once. */
uint64_t fy_tlsfail_take(void);

/* Any thread: failed handshakes since the process started. */
uint64_t fy_tlsfail_total(void);

#endif
