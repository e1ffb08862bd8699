/*
 * cliconf.c - the client's settings file (see cliconf.h).
 *
 * Kept apart from ferryd's conf.c on purpose: the client knows a handful of
 * keys and must not link the relay's settings.  The line syntax is the
 * same so a person who wrote one file can write the other.
 */
#include "cli/cliconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fy_cli_conf_path(char *path, size_t cap)
{
    const char *e = getenv("FERRY_CONFIG"), *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
    int n;
    if (e && *e)
        n = snprintf(path, cap, "%s", e);
    else if (x && *x)
        n = snprintf(path, cap, "%s/ferry/config", x);
    else if (h && *h)
        n = snprintf(path, cap, "%s/.config/ferry/config", h);
    else
        return -ENOENT;
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* One key: 0, or -EINVAL with the reason in why. */
static int set(fy_cli_conf *c, const char *k, const char *v, char *why, size_t cap)
{
    struct { const char *key; char *dst; size_t cap; } text[] = {
        {"server", c->server, sizeof c->server},     {"token-file", c->token_file, sizeof c->token_file},
        {"ca", c->ca, sizeof c->ca},                 {"tls-name", c->tls_name, sizeof c->tls_name},
        {"tls-cert", c->tls_cert, sizeof c->tls_cert}, {"tls-key", c->tls_key, sizeof c->tls_key}};
    if (!strcmp(k, "tls")) {
        if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
            c->tls = true;
        else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
            c->tls = false;
        else {
            snprintf(why, cap, "tls: expected yes or no, got '%s'", v);
            return -EINVAL;
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        if (strcmp(k, text[i].key))
            continue;
        if (!*v || strlen(v) >= text[i].cap) {
            snprintf(why, cap, "%s: %s value", k, *v ? "too long a" : "empty");
            return -EINVAL;
        }
        snprintf(text[i].dst, text[i].cap, "%s", v);
        if (!strcmp(k, "ca"))
            c->tls = true; /* as --ca implies --tls */
        return 0;
    }
    snprintf(why, cap, "unknown key '%s' (known: server, token-file, tls, ca, tls-name, "
             "tls-cert, tls-key)", k);
    return -EINVAL;
}

int fy_cli_conf_load(fy_cli_conf *c, char *err, size_t errcap)
{
    char line[2048], why[256];
    unsigned lineno = 0;
    int rc = 0;

    memset(c, 0, sizeof *c);
    char path[sizeof c->path];
    if (fy_cli_conf_path(path, sizeof path) < 0)
        return 0;
    FILE *f = fopen(path, "re");
    if (!f) {
        rc = -errno;
        if (rc == -ENOENT)
            return 0;
        snprintf(err, errcap, "%s: cannot open: %s", path, strerror(-rc));
        return rc;
    }
    snprintf(c->path, sizeof c->path, "%s", path);
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line), *eq = strchr(s, '=');
        if (!*s)
            continue;
        if (!eq) {
            snprintf(err, errcap, "%s:%u: expected 'key = value'", path, lineno);
            rc = -EINVAL;
            break;
        }
        *eq = 0;
        if (set(c, trim(s), trim(eq + 1), why, sizeof why) < 0) {
            snprintf(err, errcap, "%s:%u: %s", path, lineno, why);
            rc = -EINVAL;
        }
    }
    if (rc == 0 && ferror(f)) {
        rc = errno ? -errno : -EIO;
        snprintf(err, errcap, "%s: cannot read: %s", path, strerror(-rc));
    }
    fclose(f);
    return rc;
}
