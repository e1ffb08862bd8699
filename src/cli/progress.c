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
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ferry/digest.h"

#define DRAW_INTERVAL_S 0.1
#define BAR_MIN 6   /* fewer cells than this: no bar */
#define BAR_MAX 40
#define NAME_MIN 8  /* the numbers give way before the name gets shorter than this */
#define NAME_MAX 24 /* the name column while the bar is narrower than BAR_MAX */
#define NAME_WIDE 64 /* the name column at most, on a wide terminal */

double fy_cli_progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Columns of the terminal on stderr; else $COLUMNS (a redirected or
 * forced bar); else 80. */
static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *env = getenv("COLUMNS");
    char *end;
    long c = env ? strtol(env, &end, 10) : 0;
    if (env && end != env && *end == 0 && c > 0 && c <= 1000)
        return (int)c;
    return 80;
}

void fy_cli_progress_init(fy_cli_progress *p, int mode, bool json)
{
    memset(p, 0, sizeof *p);
    if (mode == FY_CLI_PROGRESS_AUTO)
        mode = isatty(STDERR_FILENO) ? FY_CLI_PROGRESS_BAR : FY_CLI_PROGRESS_LINES;
    p->mode = mode;
    p->json = json && mode != FY_CLI_PROGRESS_QUIET;
    p->width = mode == FY_CLI_PROGRESS_BAR ? term_width() : 80;
    p->run_t0 = fy_cli_progress_now();
}

static void draw(fy_cli_progress *p, double now, bool final)
{
    char line[512];
    /* width - 1: a line as wide as the terminal wraps on some terminals, and
     * then \r no longer returns to its start (a new line per redraw). */
    size_t n = final ? fy_cli_progress_format_done(line, sizeof line, p->name, p->done,
                                                   now - p->t0, p->width - 1)
                     : fy_cli_progress_format_bar(line, sizeof line, p->name, p->done, p->total,
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

void fy_cli_progress_done(fy_cli_progress *p, const char *name, uint64_t bytes, double seconds)
{
    double now = fy_cli_progress_now();
    if (seconds < 0)
        seconds = now - p->t0;
    p->files++;
    p->bytes += bytes;
    if (p->mode != FY_CLI_PROGRESS_BAR)
        return;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->done = bytes;
    p->total = bytes;
    p->t0 = now - seconds;
    draw(p, now, true);
}

/* One result line on stdout: kv as is without a bar, as JSON with json
 * (its first key "type": file or total). */
static void put_result(fy_cli_progress *p, const char *type, const char *kv)
{
    if (p->json) {
        char js[1024], typed[1024];
        snprintf(typed, sizeof typed, "type=%s %s", type, kv);
        size_t n = fy_cli_progress_json(js, sizeof js, typed);
        printf("%.*s\n", (int)n, js);
    } else if (p->mode == FY_CLI_PROGRESS_LINES) {
        printf("%s\n", kv);
    } else {
        return;
    }
    fflush(stdout);
}

void fy_cli_progress_result(fy_cli_progress *p, const char *name, uint64_t bytes, double seconds,
                            const uint8_t sha256[32])
{
    if (seconds < 0)
        seconds = fy_cli_progress_now() - p->t0;
    char line[512];
    fy_cli_progress_format_line(line, sizeof line, name, bytes, seconds, sha256);
    put_result(p, "file", line);
}

void fy_cli_progress_total(fy_cli_progress *p, const char *kv)
{
    if (p->mode == FY_CLI_PROGRESS_BAR) {
        char line[512], out[600];
        size_t n = fy_cli_progress_format_total(line, sizeof line, p->files, p->bytes,
                                                fy_cli_progress_now() - p->run_t0, p->width - 1);
        int m = snprintf(out, sizeof out, "\r%.*s\033[K\n", (int)n, line);
        if (m > 0)
            (void)!write(STDERR_FILENO, out, (size_t)m < sizeof out ? (size_t)m : sizeof out - 1);
    }
    put_result(p, "total", kv);
}

/* JSON string value: quotes, \" \\ and \u00XX escapes. */
static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

void fy_cli_progress_json_error(int code, const char *error, const char *message)
{
    printf("{\"type\":\"error\",\"exit\":%d,\"error\":", code);
    put_json_string(stdout, error ? error : "");
    printf(",\"message\":");
    put_json_string(stdout, message ? message : "");
    printf("}\n");
    fflush(stdout);
}

void fy_cli_progress_end(fy_cli_progress *p, const char *name, uint64_t bytes, double seconds,
                         const uint8_t sha256[32])
{
    if (seconds < 0)
        seconds = fy_cli_progress_now() - p->t0;
    fy_cli_progress_done(p, name, bytes, seconds);
    fy_cli_progress_result(p, name, bytes, seconds, sha256);
}

void fy_cli_progress_status(fy_cli_progress *p, const char *text)
{
    if (p->mode != FY_CLI_PROGRESS_BAR)
        return;
    char out[600];
    int w = p->width - 1 > 0 ? p->width - 1 : 1;
    int m = snprintf(out, sizeof out, "\r%.*s\033[K", w, text);
    if (m > 0)
        (void)!write(STDERR_FILENO, out, (size_t)m < sizeof out ? (size_t)m : sizeof out - 1);
}

void fy_cli_progress_abort(fy_cli_progress *p)
{
    if (p->mode == FY_CLI_PROGRESS_BAR && p->last_draw > 0)
        (void)!write(STDERR_FILENO, "\n", 1);
    p->last_draw = 0;
}

const char *fy_cli_progress_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char unit[] = "BKMGTPE";
    if (n < 1024) {
        snprintf(buf, cap, "%lluB", (unsigned long long)n);
        return buf;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    /* 3 significant digits at most: 5 characters whatever the size; a value
     * that rounds up to the next precision takes the coarser format. */
    if (v < 9.995)
        snprintf(buf, cap, "%.2f%c", v, unit[u]);
    else if (v < 99.95)
        snprintf(buf, cap, "%.1f%c", v, unit[u]);
    else
        snprintf(buf, cap, "%.0f%c", v, unit[u]);
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

/* The numbers after the bar, at fixed widths; `level` says how many:
 * 0 the percentage, 1 + sizes, 2 + rate, 3 + ETA (or, once the file is
 * done, the time it took: a finished file never shows a stale ETA). */
static int format_tail(char *buf, size_t cap, int level, double frac, uint64_t done,
                       uint64_t total, double rate, const char *eta, bool final)
{
    char d[16], t[16], r[16];
    int n = snprintf(buf, cap, " %3d%%", (int)(frac * 100));
    if (level >= 1)
        n += snprintf(buf + n, cap - (size_t)n, " %5s/%-5s", fy_cli_progress_bytes(done, d, sizeof d),
                      fy_cli_progress_bytes(total, t, sizeof t));
    if (level >= 2) {
        fy_cli_progress_bytes((uint64_t)rate, r, sizeof r);
        size_t rl = strlen(r);
        bool bytes = rl && r[rl - 1] == 'B';
        if (bytes)
            r[rl - 1] = 0; /* "512B" -> "512" + "B/s" */
        n += snprintf(buf + n, cap - (size_t)n, " %5s%-4s", r, bytes ? "B/s" : "iB/s");
    }
    if (level >= 3)
        n += snprintf(buf + n, cap - (size_t)n, final ? " in  %-5s" : " ETA %-5s", eta);
    return n;
}

/* Columns of UTF-8 text (continuation bytes take none). */
static int cols(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n && s[i]; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* name in exactly `w` columns: padded with spaces, or cut at a character
 * boundary with an ellipsis.  Returns bytes written. */
static size_t put_name(char *out, size_t cap, const char *name, int w)
{
    size_t o = 0, len = strlen(name);
    if (w <= 0 || cap < (size_t)w + 4)
        return 0;
    if (cols(name, len) <= w) {
        memcpy(out, name, len);
        o = len;
        for (int c = cols(name, len); c < w; c++)
            out[o++] = ' ';
    } else {
        int c = 0;
        while (o < len && c < w - 1) { /* w - 1 characters, then the ellipsis */
            size_t k = 1;
            while (o + k < len && ((unsigned char)name[o + k] & 0xC0) == 0x80)
                k++;
            memcpy(out + o, name + o, k);
            o += k;
            c++;
        }
        memcpy(out + o, "\xE2\x80\xA6", 3); /* U+2026 HORIZONTAL ELLIPSIS */
        o += 3;
    }
    out[o] = 0;
    return o;
}

/* The layout depends on the width only, never on the name, so the bars of
 * successive files line up: the numbers first, as many as leave NAME_MIN
 * columns (the percentage always); a name column of NAME_MIN..NAME_WIDE;
 * the bar takes the rest up to BAR_MAX, or nothing when that is under
 * BAR_MIN. */
static size_t format_bar(char *buf, size_t cap, const char *name, uint64_t done, uint64_t total,
                         double seconds, int width, bool final)
{
    if (cap == 0)
        return 0;
    double frac = total ? (double)done / (double)total : 1.0;
    if (frac > 1.0)
        frac = 1.0;
    double rate = seconds > 0 ? (double)done / seconds : 0.0;
    char eta[16];
    if (final)
        format_eta(eta, sizeof eta, seconds);
    else
        format_eta(eta, sizeof eta, rate > 0 ? (double)(total > done ? total - done : 0) / rate : -1);
    char tail[96];
    int tl = 0;
    for (int level = 3; level >= 0; level--) {
        tl = format_tail(tail, sizeof tail, level, frac, done, total, rate, eta, final);
        if (width - tl >= NAME_MIN)
            break;
    }
    int room = width - tl > 0 ? width - tl : 0; /* for the name and " [bar]" */
    int namew = room - 3 - BAR_MAX;             /* wide: the bar is full, the name gets the rest */
    if (namew > NAME_WIDE)
        namew = NAME_WIDE;
    if (namew < NAME_MAX)
        namew = room - 3 - BAR_MIN >= NAME_MAX ? NAME_MAX : room - 3 - BAR_MIN;
    int barw = 0;
    if (namew >= NAME_MIN) {
        barw = room - namew - 3 > BAR_MAX ? BAR_MAX : room - namew - 3;
    } else {
        namew = room; /* no bar: the name takes the room */
    }
    char nm[4 * NAME_WIDE + 8] = "";
    if (namew > 0 && (size_t)namew < sizeof nm / 4)
        put_name(nm, sizeof nm, name, namew);
    int fill = (int)(frac * barw);
    char bar[BAR_MAX + 4] = "";
    if (barw) {
        bar[0] = ' ';
        bar[1] = '[';
        for (int i = 0; i < barw; i++)
            bar[2 + i] = i < fill ? '#' : '-';
        bar[2 + barw] = ']';
        bar[3 + barw] = 0;
    }
    /* With no name shown, the tail's leading space goes too. */
    const char *tp = !nm[0] && !barw ? tail + 1 : tail;
    int n = snprintf(buf, cap, "%s%s%s", nm, bar, tp);
    if (n < 0)
        n = 0;
    if ((size_t)n >= cap) { /* truncated: never end inside a character */
        n = (int)cap - 1;
        while (n > 0 && ((unsigned char)buf[n] & 0xC0) == 0x80)
            n--;
        buf[n] = 0;
    }
    return (size_t)n;
}

size_t fy_cli_progress_format_bar(char *buf, size_t cap, const char *name, uint64_t done,
                                  uint64_t total, double seconds, int width)
{
    return format_bar(buf, cap, name, done, total, seconds, width, false);
}

size_t fy_cli_progress_format_done(char *buf, size_t cap, const char *name, uint64_t bytes,
                                   double seconds, int width)
{
    return format_bar(buf, cap, name, bytes, bytes, seconds, width, true);
}

size_t fy_cli_progress_format_total(char *buf, size_t cap, uint64_t files, uint64_t bytes,
                                    double seconds, int width)
{
    char name[64], b[16];
    snprintf(name, sizeof name, "total: %llu file%s", (unsigned long long)files,
             files == 1 ? "" : "s");
    (void)b;
    return format_bar(buf, cap, name, bytes, bytes, seconds, width, true);
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

size_t fy_cli_progress_json(char *buf, size_t cap, const char *kv)
{
    static const char *const text_keys[] = {"type", "file", "sha256", "status"};
    size_t o = 0;
#define PUT(c)                      \
    do {                            \
        if (o + 1 < cap)            \
            buf[o++] = (char)(c);   \
    } while (0)
    if (cap == 0)
        return 0;
    PUT('{');
    bool first = true;
    for (const char *p = kv; *p;) {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '='), *end = p + strcspn(p, " ");
        if (!*p)
            break;
        if (!eq || eq > end) { /* not key=value: skipped */
            p = end;
            continue;
        }
        if (!first)
            PUT(',');
        first = false;
        PUT('"');
        for (const char *k = p; k < eq; k++)
            PUT(*k);
        PUT('"');
        PUT(':');
        const char *v = eq + 1;
        size_t klen = (size_t)(eq - p), vlen = (size_t)(end - v);
        bool text = vlen == 0;
        for (size_t i = 0; i < sizeof text_keys / sizeof text_keys[0]; i++)
            if (strlen(text_keys[i]) == klen && !memcmp(text_keys[i], p, klen))
                text = true;
        /* a JSON number: digits, one optional fraction, no sign or exponent */
        size_t digits = strspn(v, "0123456789");
        if (!text && digits > 0 && digits < vlen)
            text = v[digits] != '.' || digits + 1 + strspn(v + digits + 1, "0123456789") != vlen ||
                   digits + 1 == vlen;
        if (!text && digits > 1 && v[0] == '0' && v[1] != '.')
            text = true; /* a leading zero is not JSON */
        if (!text && digits == 0)
            text = true;
        if (text)
            PUT('"');
        for (const char *c = v; c < end; c++) {
            unsigned char ch = (unsigned char)*c;
            if (text && (ch == '"' || ch == '\\')) {
                PUT('\\');
                PUT(ch);
            } else if (text && (ch < 0x20 || ch >= 0x7f)) {
                char u[8];
                snprintf(u, sizeof u, "\\u%04x", ch);
                for (int i = 0; u[i]; i++)
                    PUT(u[i]);
            } else {
                PUT(ch);
            }
        }
        if (text)
            PUT('"');
        p = end;
    }
    PUT('}');
#undef PUT
    buf[o] = 0;
    return o;
}
