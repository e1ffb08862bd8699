/*
 * auth.c - the token table (fy_auth): loaded once, read-only afterwards.
 *
 * Tokens are compared in constant time (CRYPTO_memcmp over the longest
 * token) so the time an answer takes does not tell how much of a guess was
 * right; the rule list is short, so a linear scan is the whole lookup.
 */
#include "relay/auth.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ferry/proto.h"

struct rule {
    char token[FY_TOKEN_MAX + 1];
    unsigned rights;
    char glob[FY_NAME_MAX + 1];
};

struct fy_auth {
    struct rule *r;
    size_t n;
};

static bool token_eq(const char *a, const char *b)
{
    char x[FY_TOKEN_MAX + 1] = {0}, y[FY_TOKEN_MAX + 1] = {0};
    size_t la = strnlen(a, FY_TOKEN_MAX), lb = strnlen(b, FY_TOKEN_MAX);

    memcpy(x, a, la);
    memcpy(y, b, lb);
    return (CRYPTO_memcmp(x, y, sizeof x) == 0) & (la == lb);
}

bool fy_auth_allows(const fy_auth *a, const char *token, unsigned right, const char *channel)
{
    bool ok = false;

    if (!a)
        return true;
    for (size_t i = 0; i < a->n; i++)
        if (token_eq(a->r[i].token, token) && (a->r[i].rights & right) == right &&
            fnmatch(a->r[i].glob, channel, 0) == 0)
            ok = true;
    return ok;
}

size_t fy_auth_rules(const fy_auth *a)
{
    return a ? a->n : 0;
}

void fy_auth_free(fy_auth *a)
{
    if (!a)
        return;
    free(a->r);
    free(a);
}

static int parse_line(char *s, struct rule *r)
{
    char *tok = strtok(s, " \t\r\n");
    char *what = strtok(NULL, " \t\r\n");
    char *glob = strtok(NULL, " \t\r\n");

    if (!tok || !what || !glob || strtok(NULL, " \t\r\n"))
        return -EINVAL;
    if (strlen(tok) > FY_TOKEN_MAX || strlen(glob) > FY_NAME_MAX)
        return -E2BIG;
    if (strcmp(what, "publish") == 0)
        r->rights = FY_AUTH_PUBLISH;
    else if (strcmp(what, "subscribe") == 0)
        r->rights = FY_AUTH_SUBSCRIBE;
    else if (strcmp(what, "both") == 0)
        r->rights = FY_AUTH_PUBLISH | FY_AUTH_SUBSCRIBE;
    else if (strcmp(what, "admin") == 0) /* rm and retain; seeing what it deletes too */
        r->rights = FY_AUTH_ADMIN | FY_AUTH_SUBSCRIBE;
    else
        return -EINVAL;
    snprintf(r->token, sizeof r->token, "%s", tok);
    snprintf(r->glob, sizeof r->glob, "%s", glob);
    return 0;
}

int fy_auth_load(const char *path, fy_auth **out, char *err, size_t errcap)
{
    FILE *f = fopen(path, "re");
    fy_auth *a = calloc(1, sizeof *a);
    char line[1024];
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;

    if (!f || !a) {
        rc = f ? -ENOMEM : -errno;
        snprintf(err, errcap, "%s: cannot open: %s", path, strerror(-rc));
        goto fail;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        /* A longer line would come back in pieces, its tail read as a rule. */
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && getc(f) != EOF) {
            snprintf(err, errcap, "%s:%u: line too long (max %zu bytes)", path, lineno,
                     sizeof line - 2);
            rc = -EINVAL;
            goto fail;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            continue;
        if (a->n == cap) {
            cap = cap ? 2 * cap : 8;
            struct rule *nr = realloc(a->r, cap * sizeof *nr);
            if (!nr) {
                rc = -ENOMEM;
                goto fail;
            }
            a->r = nr;
        }
        if ((rc = parse_line(s, &a->r[a->n])) < 0) {
            snprintf(err, errcap, "%s:%u: expected 'TOKEN publish|subscribe|both|admin CHANNEL-GLOB'",
                     path, lineno);
            goto fail;
        }
        a->n++;
    }
    if (ferror(f)) { /* e.g. EISDIR: not an empty table */
        rc = errno ? -errno : -EIO;
        snprintf(err, errcap, "%s: cannot read: %s", path, strerror(-rc));
        goto fail;
    }
    fclose(f);
    *out = a;
    return 0;
fail:
    if (f)
        fclose(f);
    fy_auth_free(a);
    return rc;
}
