/*
 * prom.c - Prometheus text builder and checker (prom.h).
 *
 * Escaping follows the exposition format: in label values a backslash, a
 * double quote and a newline are written as \\, \" and \n; HELP text
 * escapes backslash and newline.  Everything else passes as is (UTF-8).
 */
#include "metrics/prom.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fy_prom {
    char *p;
    size_t n, cap;
    bool oom;
};

int fy_prom_new(fy_prom **out)
{
    fy_prom *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    *out = p;
    return 0;
}

void fy_prom_free(fy_prom *p)
{
    if (!p)
        return;
    free(p->p);
    free(p);
}

void fy_prom_reset(fy_prom *p)
{
    p->n = 0;
    p->oom = false;
    if (p->p)
        p->p[0] = 0;
}

static void put(fy_prom *p, const char *s, size_t n)
{
    if (p->oom)
        return;
    if (p->n + n + 1 > p->cap) {
        size_t c = p->cap ? p->cap : 4096;
        while (c < p->n + n + 1)
            c *= 2;
        char *q = realloc(p->p, c);
        if (!q) {
            p->oom = true;
            return;
        }
        p->p = q;
        p->cap = c;
    }
    memcpy(p->p + p->n, s, n);
    p->n += n;
    p->p[p->n] = 0;
}

static void puts_(fy_prom *p, const char *s)
{
    put(p, s, strlen(s));
}

static void put_escaped(fy_prom *p, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(p, "\\\\", 2);
        else if (*s == '\n')
            put(p, "\\n", 2);
        else if (quote && *s == '"')
            put(p, "\\\"", 2);
        else
            put(p, s, 1);
    }
}

void fy_prom_family(fy_prom *p, const char *name, const char *type, const char *help)
{
    puts_(p, "# HELP ");
    puts_(p, name);
    puts_(p, " ");
    put_escaped(p, help, false);
    puts_(p, "\n# TYPE ");
    puts_(p, name);
    puts_(p, " ");
    puts_(p, type);
    puts_(p, "\n");
}

static void labels(fy_prom *p, const char *name, va_list ap)
{
    puts_(p, name);
    const char *k = va_arg(ap, const char *);
    if (!k)
        return;
    puts_(p, "{");
    for (bool first = true; k; k = va_arg(ap, const char *), first = false) {
        const char *v = va_arg(ap, const char *);
        if (!first)
            puts_(p, ",");
        puts_(p, k);
        puts_(p, "=\"");
        put_escaped(p, v ? v : "", true);
        puts_(p, "\"");
    }
    puts_(p, "}");
}

void fy_prom_u64(fy_prom *p, const char *name, uint64_t v, ...)
{
    char num[32];
    va_list ap;
    va_start(ap, v);
    labels(p, name, ap);
    va_end(ap);
    snprintf(num, sizeof num, " %" PRIu64 "\n", v);
    puts_(p, num);
}

void fy_prom_f64(fy_prom *p, const char *name, double v, ...)
{
    char num[40];
    va_list ap;
    va_start(ap, v);
    labels(p, name, ap);
    va_end(ap);
    if (isnan(v))
        snprintf(num, sizeof num, " NaN\n");
    else if (isinf(v))
        snprintf(num, sizeof num, " %sInf\n", v > 0 ? "+" : "-");
    else
        snprintf(num, sizeof num, " %.12g\n", v);
    puts_(p, num);
}

const char *fy_prom_text(const fy_prom *p, size_t *len)
{
    if (p->oom)
        return NULL;
    if (len)
        *len = p->n;
    return p->p ? p->p : "";
}

/* ---- checking ------------------------------------------------------------ */

static bool name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

static int bad(char *err, size_t cap, size_t line, const char *why)
{
    snprintf(err, cap, "line %zu: %s", line, why);
    return -EINVAL;
}

static bool number(const char *s, const char *e)
{
    size_t n = (size_t)(e - s);
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (!strcmp(buf, "NaN") || !strcmp(buf, "+Inf") || !strcmp(buf, "-Inf"))
        return true;
    char *end;
    errno = 0;
    (void)strtod(buf, &end);
    return *end == 0 && end != buf && (isdigit((unsigned char)buf[0]) || buf[0] == '-' ||
                                       buf[0] == '+' || buf[0] == '.');
}

static int check_line(const char *s, const char *e, size_t ln, char *err, size_t cap)
{
    if (s == e)
        return 0;
    if (*s == '#') {
        if (e - s >= 7 && (!strncmp(s, "# HELP ", 7) || !strncmp(s, "# TYPE ", 7))) {
            const char *q = s + 7;
            if (q >= e || !name_start(*q))
                return bad(err, cap, ln, "HELP/TYPE without a metric name");
        }
        return 0;
    }
    const char *q = s;
    if (!name_start(*q))
        return bad(err, cap, ln, "sample does not start with a metric name");
    while (q < e && name_char(*q))
        q++;
    if (q < e && *q == '{') {
        q++;
        while (q < e && *q != '}') {
            if (!name_start(*q))
                return bad(err, cap, ln, "bad label name");
            while (q < e && name_char(*q))
                q++;
            if (q + 1 >= e || q[0] != '=' || q[1] != '"')
                return bad(err, cap, ln, "label without =\"value\"");
            q += 2;
            while (q < e && *q != '"') {
                if (*q == '\\') {
                    if (q + 1 >= e || (q[1] != '\\' && q[1] != '"' && q[1] != 'n'))
                        return bad(err, cap, ln, "bad escape in label value");
                    q++;
                }
                q++;
            }
            if (q >= e)
                return bad(err, cap, ln, "unterminated label value");
            q++;
            if (q < e && *q == ',')
                q++;
        }
        if (q >= e)
            return bad(err, cap, ln, "unterminated label set");
        q++;
    }
    if (q >= e || *q != ' ')
        return bad(err, cap, ln, "no space before the value");
    q++;
    const char *v = q;
    while (q < e && *q != ' ')
        q++;
    if (!number(v, q))
        return bad(err, cap, ln, "value is not a number");
    if (q < e) { /* optional timestamp */
        q++;
        const char *t = q;
        while (q < e && (isdigit((unsigned char)*q) || *q == '-'))
            q++;
        if (q != e || t == q)
            return bad(err, cap, ln, "junk after the value");
    }
    return 0;
}

int fy_prom_check(const char *text, size_t len, char *err, size_t errcap)
{
    size_t ln = 0;
    const char *s = text, *end = text + len;
    if (len && text[len - 1] != '\n')
        return bad(err, errcap, 0, "text does not end with a newline");
    while (s < end) {
        const char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e)
            e = end;
        ln++;
        if (memchr(s, 0, (size_t)(e - s)))
            return bad(err, errcap, ln, "NUL byte");
        int rc = check_line(s, e, ln, err, errcap);
        if (rc)
            return rc;
        s = e + 1;
    }
    return 0;
}

int fy_prom_find(const char *text, const char *name, const char *labels_, double *v)
{
    size_t nl = strlen(name), ll = labels_ ? strlen(labels_) : 0;
    for (const char *s = text; *s;) {
        const char *e = strchr(s, '\n');
        if (!e)
            e = s + strlen(s);
        if (*s != '#' && (size_t)(e - s) > nl && !strncmp(s, name, nl)) {
            const char *q = s + nl;
            bool ok;
            if (ll)
                ok = *q == '{' && (size_t)(e - q) > ll + 2 && !strncmp(q + 1, labels_, ll) &&
                     q[1 + ll] == '}' && q[2 + ll] == ' ';
            else
                ok = *q == ' ';
            if (ok) {
                const char *sp = ll ? q + ll + 3 : q + 1;
                *v = strtod(sp, NULL);
                return 0;
            }
        }
        s = *e ? e + 1 : e;
    }
    return -ENOENT;
}
