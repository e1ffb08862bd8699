/*
 * klog.c - key=value log lines on stderr (include/ferry/klog.h).
 *
 * A line is built in a stack buffer and written with one write(2): lines
 * from different threads never interleave, and no lock is needed.  The
 * program name and level threshold are the only process-wide settings; the
 * name is written once by fy_klog_setup() before any thread starts and only
 * read afterwards.  The threshold is the exception: ferryd changes it on SIGHUP
 * while every thread logs, so it is an atomic int.  Relaxed loads and
 * stores: it orders nothing else, and a line formatted during the change may
 * go by either threshold.
 */
#include "ferry/klog.h"

#include "ferry/exit.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_prog = "ferry";
static atomic_int g_min = FY_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The last warn/error line's msg, for a client's --json error record.
 * A spin flag, not a mutex: taken for one short copy, and klog stays
 * async-signal-tolerant as before. */
static atomic_flag g_last_lock = ATOMIC_FLAG_INIT;
static char g_last[512];

static void remember(enum fy_klog_level lvl, const char *msg)
{
    if (lvl < FY_LOG_WARN)
        return;
    while (atomic_flag_test_and_set_explicit(&g_last_lock, memory_order_acquire))
        ; /* acquire: the copy below happens after the last holder's */
    snprintf(g_last, sizeof g_last, "%s", msg);
    atomic_flag_clear_explicit(&g_last_lock, memory_order_release); /* publishes the copy */
}

void fy_klog_last(char *buf, size_t cap)
{
    while (atomic_flag_test_and_set_explicit(&g_last_lock, memory_order_acquire))
        ;
    snprintf(buf, cap, "%s", g_last);
    atomic_flag_clear_explicit(&g_last_lock, memory_order_release);
}

void fy_klog_setup(const char *prog, enum fy_klog_level min_level)
{
    g_prog = prog;
    fy_klog_set_level(min_level);
}

void fy_klog_set_level(enum fy_klog_level min_level)
{
    atomic_store_explicit(&g_min, (int)min_level, memory_order_relaxed);
}

enum fy_klog_level fy_klog_level(void)
{
    return (enum fy_klog_level)atomic_load_explicit(&g_min, memory_order_relaxed);
}

const char *fy_klog_level_name(enum fy_klog_level lvl)
{
    return (unsigned)lvl < 4 ? level_names[lvl] : "?";
}

int fy_klog_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -EINVAL;
}

const char *fy_klog_q(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap < 3) {
        if (cap)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; s && *s && o + 6 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void fy_klog(enum fy_klog_level lvl, const char *msg, const char *fmt, ...)
{
    char line[2048], qmsg[512];
    struct timespec ts;
    struct tm tm;

    remember(lvl, msg);
    if ((int)lvl < atomic_load_explicit(&g_min, memory_order_relaxed))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s prog=%s msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl], g_prog,
                     fy_klog_q(msg, qmsg, sizeof(qmsg)));
    if (fmt && fmt[0] && n > 0 && (size_t)n < sizeof(line) - 2) {
        va_list ap;
        line[n++] = ' ';
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m < (int)(sizeof(line) - (size_t)n - 1) ? m : (int)(sizeof(line) - (size_t)n - 2);
    }
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* stderr is unbuffered; one write keeps the line whole.  A failed log
     * write has nowhere better to be reported. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void fy_klog_usage(const char *msg, const char *arg, const char *help)
{
    char qa[600];
    if (arg)
        fy_klog(FY_LOG_ERROR, msg, "arg=%s hint=\"%s --help\" exit=%d", fy_klog_q(arg, qa, sizeof qa),
                help ? help : g_prog, FY_EXIT_USAGE);
    else
        fy_klog(FY_LOG_ERROR, msg, "hint=\"%s --help\" exit=%d", help ? help : g_prog,
                FY_EXIT_USAGE);
}
