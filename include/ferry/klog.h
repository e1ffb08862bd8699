/*
 * klog.h - one-line key=value logs on stderr, with levels.
 *
 * Every line: `ts=2026-11-22T12:00:00.123Z level=info prog=ferryd msg="..."
 * key=value ...`.  The caller writes the key=value tail with printf-style
 * formatting; values with spaces must be quoted by the caller (fy_klog_q
 * helps).  One write(2) per line, so lines from many threads never
 * interleave.  The program name is set once at startup, before any thread
 * starts; the level threshold too, and fy_klog_set_level() may change it
 * later from any thread (ferryd's SIGHUP reload).
 */
#ifndef FERRY_KLOG_H
#define FERRY_KLOG_H

#include <stdarg.h>
#include <stddef.h>

enum fy_klog_level { FY_LOG_DEBUG = 0, FY_LOG_INFO = 1, FY_LOG_WARN = 2, FY_LOG_ERROR = 3 };

/* Call once at startup, before threads start. */
void fy_klog_setup(const char *prog, enum fy_klog_level min_level);
/* Change the threshold (any thread, any time): lines already being
 * formatted by other threads may still use the old one. */
void fy_klog_set_level(enum fy_klog_level min_level);
/* The current threshold (any thread). */
enum fy_klog_level fy_klog_level(void);
/* Name of a level ("debug", "info", "warn", "error"). */
const char *fy_klog_level_name(enum fy_klog_level lvl);
/* Parse "debug|info|warn|error"; returns level or -EINVAL. */
int fy_klog_level_parse(const char *s);

/* fy_klog(FY_LOG_WARN, "accept4 failed", "err=%s action=\"pause 100ms\"", fy_errname(rc)); */
void fy_klog(enum fy_klog_level lvl, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The msg of the last warn or error line logged (even one under the
 * threshold), "" when none: a client's --json error record quotes it.
 * Any thread. */
void fy_klog_last(char *buf, size_t cap);

/* A usage error, as every program reports one: an error line
 * `msg="..." arg="..." hint="HELP --help" exit=64` (FY_EXIT_USAGE, exit.h).
 * arg may be NULL (left out); help is the command whose --help to try, NULL
 * for the program name.  The caller then exits with FY_EXIT_USAGE. */
void fy_klog_usage(const char *msg, const char *arg, const char *help);

/* Quote s for a value: copies into buf with surrounding quotes and \" \\
 * escapes (non-printable bytes as \xNN), truncating to cap; returns buf. */
const char *fy_klog_q(const char *s, char *buf, size_t cap);

#endif
