/*
 * progress.h - what send and recv tell the user while they work.
 *
 * On a terminal (stderr is a tty) a one-line progress bar per file (bytes,
 * rate, ETA), redrawn at most ten times a second so drawing never costs
 * throughput.  Otherwise one key=value summary line per file on stdout,
 * for scripts and logs:
 *   file=NAME bytes=N seconds=S mbps=R sha256=HEX
 * Rates are MB/s (10^6 bytes per second).  The format functions are pure,
 * so tests check them without a terminal.
 */
#ifndef FY_CLI_PROGRESS_H
#define FY_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

enum fy_cli_progress_mode {
    FY_CLI_PROGRESS_AUTO = 0,  /* BAR if stderr is a terminal, else LINES */
    FY_CLI_PROGRESS_BAR = 1,
    FY_CLI_PROGRESS_LINES = 2,
    FY_CLI_PROGRESS_QUIET = 3  /* nothing (the demo prints its own summary) */
};

typedef struct fy_cli_progress {
    int mode;
    char name[256];
    uint64_t total, done;
    double t0, last_draw;
    int width; /* terminal columns */
} fy_cli_progress;

/* Seconds on the monotonic clock.  Any thread. */
double fy_cli_progress_now(void);

/* Resolve AUTO (isatty(stderr)) and the terminal width.  Owner thread. */
void fy_cli_progress_init(fy_cli_progress *p, int mode);
/* A file starts: total bytes expected. */
void fy_cli_progress_begin(fy_cli_progress *p, const char *name, uint64_t total);
/* n more bytes moved; redraws the bar when >= 0.1 s passed since the last. */
void fy_cli_progress_add(fy_cli_progress *p, uint64_t n);
/* The file is complete: final bar + newline, or the summary line on stdout.
 * seconds < 0 means "since begin". */
void fy_cli_progress_end(fy_cli_progress *p, const char *name, uint64_t bytes, double seconds,
                         const uint8_t sha256[32]);
/* Leave the terminal tidy after an error (ends a half-drawn bar). */
void fy_cli_progress_abort(fy_cli_progress *p);

/* "12.3 MiB" style (binary units, one decimal from KiB up).  Returns buf. */
const char *fy_cli_progress_bytes(uint64_t n, char *buf, size_t cap);
/* The bar line without newline, fit into `width` columns when possible:
 * NAME [#####-----]  45%  115.2 MiB/256.0 MiB  812.3 MB/s  ETA 0:02
 * total 0 with done 0 shows 100%.  Returns the length written. */
size_t fy_cli_progress_format_bar(char *buf, size_t cap, const char *name, uint64_t done,
                                  uint64_t total, double seconds, int width);
/* The summary line without newline: file=.. bytes=.. seconds=.. mbps=..
 * sha256=.. (sha256 omitted when NULL).  Returns the length written. */
size_t fy_cli_progress_format_line(char *buf, size_t cap, const char *name, uint64_t bytes,
                                   double seconds, const uint8_t sha256[32]);
/* MB/s for bytes over seconds (0 when seconds is 0). */
double fy_cli_progress_mbps(uint64_t bytes, double seconds);

#endif
