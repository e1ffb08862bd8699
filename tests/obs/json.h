/*
 * json.h - a small strict JSON parser for the tests (RFC 8259 grammar:
 * objects, arrays, strings with escapes, numbers, true/false/null), so a
 * test can say "this output is JSON" without a library the build does not
 * otherwise need.  Builds a tree; lookups by key and index.
 */
#ifndef FY_TEST_OBS_JSON_H
#define FY_TEST_OBS_JSON_H

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype t;
    double num;
    char *str;          /* J_STR; the key's text for object members too */
    struct jval **kids; /* J_ARR / J_OBJ members */
    char **keys;        /* J_OBJ */
    size_t n, cap;
} jval;

typedef struct jparser {
    const char *p, *e;
    int depth;
} jparser;

static inline void jfree(jval *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        jfree(v->kids[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->kids);
    free(v->keys);
    free(v->str);
    free(v);
}

static inline void jws(jparser *j)
{
    while (j->p < j->e && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static inline char *jstring(jparser *j)
{
    if (j->p >= j->e || *j->p != '"')
        return NULL;
    j->p++;
    size_t cap = 16, n = 0;
    char *s = malloc(cap);
    while (j->p < j->e && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20) {
            free(s);
            return NULL;
        }
        if (c == '\\') {
            if (j->p >= j->e) {
                free(s);
                return NULL;
            }
            char x = *j->p++;
            if (x == 'u') {
                if (j->e - j->p < 4) {
                    free(s);
                    return NULL;
                }
                for (int k = 0; k < 4; k++)
                    if (!isxdigit((unsigned char)j->p[k])) {
                        free(s);
                        return NULL;
                    }
                char h[5] = {j->p[0], j->p[1], j->p[2], j->p[3], 0};
                c = (unsigned char)(strtoul(h, NULL, 16) & 0xFF);
                j->p += 4;
            } else if (strchr("\"\\/bfnrt", x)) {
                c = (unsigned char)(x == 'n' ? '\n' : x == 't' ? '\t' : x == 'r' ? '\r' : x == 'b' ? '\b' : x == 'f' ? '\f' : x);
            } else {
                free(s);
                return NULL;
            }
        }
        if (n + 2 > cap)
            s = realloc(s, cap *= 2);
        s[n++] = (char)c;
    }
    if (j->p >= j->e) {
        free(s);
        return NULL;
    }
    j->p++;
    s[n] = 0;
    return s;
}

static inline jval *jvalue(jparser *j);

static inline bool jadd(jval *v, jval *kid, char *key)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->kids = realloc(v->kids, v->cap * sizeof *v->kids);
        if (v->t == J_OBJ)
            v->keys = realloc(v->keys, v->cap * sizeof *v->keys);
    }
    v->kids[v->n] = kid;
    if (v->t == J_OBJ)
        v->keys[v->n] = key;
    v->n++;
    return true;
}

static inline jval *jcontainer(jparser *j, jtype t)
{
    char close = t == J_ARR ? ']' : '}';
    jval *v = calloc(1, sizeof *v);
    v->t = t;
    j->p++;
    jws(j);
    if (j->p < j->e && *j->p == close) {
        j->p++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        jws(j);
        if (t == J_OBJ) {
            key = jstring(j);
            jws(j);
            if (!key || j->p >= j->e || *j->p != ':') {
                free(key);
                jfree(v);
                return NULL;
            }
            j->p++;
        }
        jval *kid = jvalue(j);
        if (!kid) {
            free(key);
            jfree(v);
            return NULL;
        }
        jadd(v, kid, key);
        jws(j);
        if (j->p < j->e && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->e && *j->p == close) {
            j->p++;
            return v;
        }
        jfree(v);
        return NULL;
    }
}

static inline jval *jvalue(jparser *j)
{
    jws(j);
    if (j->p >= j->e || ++j->depth > 64)
        return NULL;
    jval *v = NULL;
    char c = *j->p;
    if (c == '{' || c == '[') {
        v = jcontainer(j, c == '{' ? J_OBJ : J_ARR);
    } else if (c == '"') {
        char *s = jstring(j);
        if (s) {
            v = calloc(1, sizeof *v);
            v->t = J_STR;
            v->str = s;
        }
    } else if (c == '-' || isdigit((unsigned char)c)) {
        const char *s = j->p;
        if (*j->p == '-')
            j->p++;
        if (j->p >= j->e || !isdigit((unsigned char)*j->p))
            return NULL;
        if (*j->p == '0' && j->p + 1 < j->e && isdigit((unsigned char)j->p[1]))
            return NULL; /* no leading zeros */
        while (j->p < j->e && isdigit((unsigned char)*j->p))
            j->p++;
        if (j->p < j->e && *j->p == '.') {
            j->p++;
            if (j->p >= j->e || !isdigit((unsigned char)*j->p))
                return NULL;
            while (j->p < j->e && isdigit((unsigned char)*j->p))
                j->p++;
        }
        if (j->p < j->e && (*j->p == 'e' || *j->p == 'E')) {
            j->p++;
            if (j->p < j->e && (*j->p == '+' || *j->p == '-'))
                j->p++;
            if (j->p >= j->e || !isdigit((unsigned char)*j->p))
                return NULL;
            while (j->p < j->e && isdigit((unsigned char)*j->p))
                j->p++;
        }
        v = calloc(1, sizeof *v);
        v->t = J_NUM;
        char buf[64];
        size_t n = (size_t)(j->p - s) < 63 ? (size_t)(j->p - s) : 63;
        memcpy(buf, s, n);
        buf[n] = 0;
        v->num = strtod(buf, NULL);
    } else {
        static const char *const lit[] = {"true", "false", "null"};
        for (int k = 0; k < 3; k++) {
            size_t n = strlen(lit[k]);
            if ((size_t)(j->e - j->p) >= n && !strncmp(j->p, lit[k], n)) {
                j->p += n;
                v = calloc(1, sizeof *v);
                v->t = k == 2 ? J_NULL : J_BOOL;
                v->num = k == 0;
                break;
            }
        }
    }
    j->depth--;
    return v;
}

/* The whole text must be one value (whitespace around it allowed). */
static inline jval *jparse(const char *text, size_t len)
{
    jparser j = {text, text + len, 0};
    jval *v = jvalue(&j);
    jws(&j);
    if (v && j.p != j.e) {
        jfree(v);
        return NULL;
    }
    return v;
}

static inline jval *jget(const jval *o, const char *key)
{
    if (!o || o->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key))
            return o->kids[i];
    return NULL;
}

static inline const char *jgets(const jval *o, const char *key)
{
    jval *v = jget(o, key);
    return v && v->t == J_STR ? v->str : NULL;
}

static inline double jgetn(const jval *o, const char *key, double dflt)
{
    jval *v = jget(o, key);
    return v && v->t == J_NUM ? v->num : dflt;
}

#endif
