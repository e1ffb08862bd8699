/*
 * progress.h - what send and recv tell the user while they work.
 *
 * Two independent outputs:
 *  - the bar: on stderr, one line per file (bytes, rate, ETA) redrawn at
 *    most ten times a second so drawing never costs throughput, cut to the
 *    terminal's width (TIOCGWINSZ on stderr, else $COLUMNS, else 80); a
 *    finished file's line keeps the time it took, a total line ends the
 *    run, and a status line ("waiting for the next file") may stand where
 *    the next bar goes.  On when stderr is a terminal; --progress forces it
 *    on, --quiet off.
 *  - the result: on stdout, per file and a total at the end, for scripts:
 *      file=NAME bytes=N seconds=S mbps=R sha256=HEX
 *    or, with --json, the same keys as one JSON object per line, with a
 *    "type" (file, total; error from fy_cli_progress_json_error).  Key=value
 *    lines are printed when there is no bar (as without a terminal); JSON
 *    whenever it was asked for.
 * Units: the bar shows bytes with K/M/G suffixes meaning powers of 1024
 * (KiB, MiB, GiB), as the suffixes of every size option (fy_units_bytes),
 * and its rate as MiB/s; the result's `mbps` keys are 10^6 bytes/s, a contract
 * kept from before.  The format functions are pure, so tests check them
 * without a terminal.
 */
#ifndef FY_CLI_PROGRESS_H
#define FY_CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fy_cli_progress_mode {
    FY_CLI_PROGRESS_AUTO = 0,  /* BAR if stderr is a terminal, else LINES */
    FY_CLI_PROGRESS_BAR = 1,   /* --progress: the bar, no key=value lines */
    FY_CLI_PROGRESS_LINES = 2, /* --quiet: no bar, key=value lines */
    FY_CLI_PROGRESS_QUIET = 3  /* nothing (the demo prints its own summary) */
};

typedef struct fy_cli_progress {
    int mode;  /* BAR, LINES or QUIET once resolved */
    bool json; /* results as JSON objects on stdout (in any mode but QUIET) */
    char name[256];
    uint64_t total, done;
    double t0, last_draw;
    int width; /* terminal columns */
    double run_t0;       /* init: for the total line */
    uint64_t files, bytes; /* files done so far, their bytes */
} fy_cli_progress;

/* Seconds on the monotonic clock.  Any thread. */
double fy_cli_progress_now(void);

/* Resolve AUTO (isatty(stderr)) and the terminal width; json: results as
 * JSON.  Owner thread. */
void fy_cli_progress_init(fy_cli_progress *p, int mode, bool json);
/* A file starts: total bytes expected. */
void fy_cli_progress_begin(fy_cli_progress *p, const char *name, uint64_t total);
/* n more bytes moved; redraws the bar when >= 0.1 s passed since the last. */
void fy_cli_progress_add(fy_cli_progress *p, uint64_t n);
/* The file is complete: fy_cli_progress_done and fy_cli_progress_result.
 * seconds < 0 means "since begin". */
void fy_cli_progress_end(fy_cli_progress *p, const char *name, uint64_t bytes, double seconds,
                         const uint8_t sha256[32]);
/* The file's bytes are all moved: final bar + newline (nothing without a bar). */
void fy_cli_progress_done(fy_cli_progress *p, const char *name, uint64_t bytes, double seconds);
/* The file's result on stdout: the key=value line (no bar) and/or its JSON
 * object (json).  send calls it when the relay acknowledged the file. */
void fy_cli_progress_result(fy_cli_progress *p, const char *name, uint64_t bytes, double seconds,
                            const uint8_t sha256[32]);
/* The run's total on stdout, given as a key=value line ("files=2 bytes=..
 * status=ok"): printed as is without a bar, as a JSON object with json
 * ("type":"total").  With a bar, a last bar line for the whole run too:
 * "total: N files [####] 100% ... in M:SS". */
void fy_cli_progress_total(fy_cli_progress *p, const char *kv);
/* --json's record of a failure or an interrupt, on stdout:
 * {"type":"error","exit":N,"error":"<exit code's meaning>","message":"<the
 * error log line's msg>"}.  Any thread, once, at the end of a run. */
void fy_cli_progress_json_error(int code, const char *error, const char *message);
/* With a bar only: a status line (cut to the width) where the bar goes,
 * e.g. a receiver "waiting for the next file"; the next bar replaces it. */
void fy_cli_progress_status(fy_cli_progress *p, const char *text);
/* Leave the terminal tidy after an error (ends a half-drawn bar). */
void fy_cli_progress_abort(fy_cli_progress *p);

/* Bytes in at most 5 characters with a binary K/M/G/T suffix, as sizes are
 * typed: "0B", "1023B", "1.00K", "12.3M", "256M", "1.50G".  Returns buf. */
const char *fy_cli_progress_bytes(uint64_t n, char *buf, size_t cap);
/* The bar line without newline, never wider than `width` columns:
 * NAME     [#####-----]  45%  115M/256M  12.3MiB/s ETA 0:02
 * The numbers have fixed widths and the name a column whose width depends
 * on `width` only, so the bars of successive files line up; when the width
 * is short, the ETA, then the rate, then the sizes are left out (the
 * percentage stays), the bar shrinks and goes; a name longer than its
 * column is cut with an ellipsis (U+2026, one column, three bytes).  total
 * 0 with done 0 shows 100%.  Returns the length written (bytes). */
size_t fy_cli_progress_format_bar(char *buf, size_t cap, const char *name, uint64_t done,
                                  uint64_t total, double seconds, int width);
/* The bar of a file that is done, as fy_cli_progress_format_bar at 100 %
 * but with the time it took ("in 0:02") where the ETA was. */
size_t fy_cli_progress_format_done(char *buf, size_t cap, const char *name, uint64_t bytes,
                                   double seconds, int width);
/* The run's last bar line: "total: N files" as the name, all bytes, the
 * time the run took. */
size_t fy_cli_progress_format_total(char *buf, size_t cap, uint64_t files, uint64_t bytes,
                                    double seconds, int width);
/* The summary line without newline: file=.. bytes=.. seconds=.. mbps=..
 * sha256=.. (sha256 omitted when NULL).  Returns the length written. */
size_t fy_cli_progress_format_line(char *buf, size_t cap, const char *name, uint64_t bytes,
                                   double seconds, const uint8_t sha256[32]);
/* A key=value line ("file=a bytes=5 status=ok") as one JSON object
 * ({"file":"a","bytes":5,"status":"ok"}), without newline: values that are
 * decimal numbers become JSON numbers, except under the keys file, sha256
 * and status, which are always strings; strings are escaped.  Values must
 * not contain spaces.  Returns the length written (truncated to cap-1). */
size_t fy_cli_progress_json(char *buf, size_t cap, const char *kv);
/* MB/s for bytes over seconds (0 when seconds is 0). */
double fy_cli_progress_mbps(uint64_t bytes, double seconds);

#endif
