/*
 * progress.c - progress bar and summary lines (see progress.h).
 *
 * Drawing is rate-limited by time, not by bytes, because the byte rate
 * varies by three orders of magnitude between a throttled receiver and a
 * loopback transfer; the clock is read once per call, which the callers
 * make once per socket read or write (tens of KiB), so it stays cheap.
 */
#include "cli/progress.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ferry/digest.h"

#define DRAW_INTERVAL_S 0.1
#define TAIL_BUDGET 54 /* " 100%  999.9 MiB/999.9 MiB  9999.9 MB/s  ETA 99:59" */

double fy_cli_progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fy_cli_progress_init(fy_cli_progress *p, int mode)
{
    memset(p, 0, sizeof *p);
    if (mode == FY_CLI_PROGRESS_AUTO)
        mode = isatty(STDERR_FILENO) ? FY_CLI_PROGRESS_BAR : FY_CLI_PROGRESS_LINES;
    p->mode = mode;
    p->width = 80;
    struct winsize ws;
    if (mode == FY_CLI_PROGRESS_BAR && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        p->width = ws.ws_col;
}

static void draw(fy_cli_progress *p, double now, bool final)
{
    char line[512];
    size_t n = fy_cli_progress_format_bar(line, sizeof line, p->name, p->done, p->total,
                                          now - p->t0, p->width - 1);
    /* \r + erase-to-end: one write per redraw, so the bar never tears. */
    char out[600];
    int m = snprintf(out, sizeof out, "\r%.*s\033[K%s", (int)n, line, final ? "\n" : "");
    if (m > 0)
        (void)!write(STDERR_FILENO, out, (size_t)m < sizeof out ? (size_t)m : sizeof out - 1);
    p->last_draw = now;
}

void fy_cli_progress_begin(fy_cli_progress *p, const char *name, uint64_t total)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    p->total = total;
    p->done = 0;
    p->t0 = fy_cli_progress_now();
    p->last_draw = 0;
    if (p->mode == FY_CLI_PROGRESS_BAR)
        draw(p, p->t0, false);
}

void fy_cli_progress_add(fy_cli_progress *p, uint64_t n)
{
    p->done += n;
    if (p->mode != FY_CLI_PROGRESS_BAR)
        return;
    double now = fy_cli_progress_now();
    if (now - p->last_draw >= DRAW_INTERVAL_S)
        draw(p, now, false);
}

void fy_cli_progress_end(fy_cli_progress *p, const char *name, uint64_t bytes, double seconds,
                         const uint8_t sha256[32])
{
    double now = fy_cli_progress_now();
    if (seconds < 0)
        seconds = now - p->t0;
    if (p->mode == FY_CLI_PROGRESS_BAR) {
        snprintf(p->name, sizeof p->name, "%s", name);
        p->done = bytes;
        p->total = bytes;
        p->t0 = now - seconds;
        draw(p, now, true);
    } else if (p->mode == FY_CLI_PROGRESS_LINES) {
        char line[512];
        size_t n = fy_cli_progress_format_line(line, sizeof line, name, bytes, seconds, sha256);
        printf("%.*s\n", (int)n, line);
        fflush(stdout);
    }
}

void fy_cli_progress_abort(fy_cli_progress *p)
{
    if (p->mode == FY_CLI_PROGRESS_BAR && p->last_draw > 0)
        (void)!write(STDERR_FILENO, "\n", 1);
    p->last_draw = 0;
}

const char *fy_cli_progress_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
        return buf;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, unit[u]);
    return buf;
}

double fy_cli_progress_mbps(uint64_t bytes, double seconds)
{
    return seconds > 0 ? (double)bytes / seconds / 1e6 : 0.0;
}

static void format_eta(char *buf, size_t cap, double eta)
{
    if (eta < 0 || eta > 359999) {
        snprintf(buf, cap, "--:--");
        return;
    }
    unsigned s = (unsigned)(eta + 0.5);
    if (s >= 3600)
        snprintf(buf, cap, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%u:%02u", s / 60, s % 60);
}

size_t fy_cli_progress_format_bar(char *buf, size_t cap, const char *name, uint64_t done,
                                  uint64_t total, double seconds, int width)
{
    if (cap == 0)
        return 0;
    double frac = total ? (double)done / (double)total : 1.0;
    if (frac > 1.0)
        frac = 1.0;
    double rate = seconds > 0 ? (double)done / seconds : 0.0;
    char eta[16], d[24], t[24];
    format_eta(eta, sizeof eta, rate > 0 ? (double)(total > done ? total - done : 0) / rate : -1);
    char tail[128];
    int tl = snprintf(tail, sizeof tail, " %3d%%  %s/%s  %.1f MB/s  ETA %s", (int)(frac * 100),
                      fy_cli_progress_bytes(done, d, sizeof d),
                      fy_cli_progress_bytes(total, t, sizeof t), rate / 1e6, eta);
    if (tl < 0)
        tl = 0;
    /* The bar takes what is left after the name and a fixed budget for the
     * numbers (so it does not jitter as they change), within 10..40 cells;
     * a long name is cut rather than the numbers. */
    int namew = (int)strlen(name);
    int barw = width - (tl > TAIL_BUDGET ? tl : TAIL_BUDGET) - 4 - (namew < 24 ? namew : 24);
    if (barw > 40)
        barw = 40;
    if (barw < 10)
        barw = 10;
    int maxname = width - tl - barw - 4;
    if (maxname < 8)
        maxname = 8;
    int fill = (int)(frac * barw);
    char bar[48];
    for (int i = 0; i < barw; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[barw] = 0;
    int n = snprintf(buf, cap, "%.*s [%s]%s", namew > maxname ? maxname : namew, name, bar, tail);
    if (n < 0)
        n = 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t fy_cli_progress_format_line(char *buf, size_t cap, const char *name, uint64_t bytes,
                                   double seconds, const uint8_t sha256[32])
{
    if (cap == 0)
        return 0;
    char hex[65] = "";
    if (sha256)
        fy_sha256_hex(sha256, hex);
    int n = snprintf(buf, cap, "file=%s bytes=%llu seconds=%.3f mbps=%.1f%s%s", name,
                     (unsigned long long)bytes, seconds, fy_cli_progress_mbps(bytes, seconds),
                     sha256 ? " sha256=" : "", hex);
    if (n < 0)
        n = 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
