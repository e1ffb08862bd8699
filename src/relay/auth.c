/*
 * auth.c - the token table (fy_auth): loaded once, read-only afterwards,
 * and freed after a reload only when no reader can still hold it.
 *
 * Tokens are compared in constant time (CRYPTO_memcmp over the longest
 * token) so the time an answer takes does not tell how much of a guess was
 * right; the rule list is short, so a linear scan is the whole lookup.
 *
 * Reclamation (ck_epoch): a reader brackets its use of the published table
 * with fy_auth_read_begin/end, which mark its thread's epoch record active;
 * the reloading thread publishes the new table and then fy_auth_retire()
 * waits for a grace period (every record that was active has left its
 * section) before it frees the old one.  Readers never wait and never
 * write shared state except their own record.
 */
#include "relay/auth.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <ck_epoch.h>
#include <openssl/crypto.h>

#include "ferry/proto.h"
#include "rt/tsan.h"

struct rule {
    char token[FY_TOKEN_MAX + 1];
    unsigned rights;
    char glob[FY_NAME_MAX + 1];
};

struct fy_auth {
    struct rule *r;
    size_t n;
    bool deny_all; /* the file said `deny-all`: no rules, on purpose */
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

bool fy_auth_deny_all(const fy_auth *a)
{
    return a && a->deny_all;
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
        if (strncmp(s, "deny-all", 8) == 0 && !*(s + 8 + strspn(s + 8, " \t\r\n"))) {
            a->deny_all = true;
            continue;
        }
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
    if (a->deny_all && a->n) {
        snprintf(err, errcap, "%s: deny-all in a file with %zu rules (it means: no rules)", path,
                 a->n);
        f = NULL;
        rc = -EINVAL;
        goto fail;
    }
    *out = a;
    return 0;
fail:
    if (f)
        fclose(f);
    fy_auth_free(a);
    return rc;
}

/* ---- reclamation (ck_epoch) ------------------------------------------------------ */

/* One epoch for every table of the process (a relay has one table in force;
 * tests may run several relays).  Each thread that reads gets a record the
 * first time, kept in a thread-specific slot and given back for reuse
 * (ck_epoch_unregister, then ck_epoch_recycle) when the thread exits. */
static ck_epoch_t epoch;
static pthread_key_t rec_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void thread_gone(void *rec)
{
    ck_epoch_unregister(rec);
}

static void init_once(void)
{
    ck_epoch_init(&epoch);
    if (pthread_key_create(&rec_key, thread_gone) != 0)
        abort(); /* only with PTHREAD_KEYS_MAX keys taken: not a state to run in */
}

static ck_epoch_record_t *my_record(void)
{
    ck_epoch_record_t *r;

    pthread_once(&once, init_once);
    if ((r = pthread_getspecific(rec_key)))
        return r;
    if (!(r = ck_epoch_recycle(&epoch, NULL))) {
        if (!(r = malloc(sizeof *r)))
            return NULL;
        ck_epoch_register(&epoch, r, NULL);
    }
    if (pthread_setspecific(rec_key, r) != 0) {
        ck_epoch_unregister(r); /* recycled by the next thread that asks */
        return NULL;
    }
    return r;
}

int fy_auth_read_begin(void)
{
    ck_epoch_record_t *r = my_record();

    if (!r)
        return -ENOMEM;
    ck_epoch_begin(r, NULL);
    return 0;
}

void fy_auth_read_end(void)
{
    ck_epoch_record_t *r = pthread_getspecific(rec_key);

    /* TSan cannot see ck's atomics: this release pairs with the acquire in
     * fy_auth_retire, after the grace period that waited for this end. */
    FY__TSAN_RELEASE(&epoch);
    ck_epoch_end(r, NULL);
}

void fy_auth_retire(fy_auth *a)
{
    if (!a)
        return;
    pthread_once(&once, init_once);
    /* Every section active when this started has ended on return (ck's
     * fences order their reads of the table before that end). */
    ck_epoch_synchronize_wait(&epoch, NULL, NULL);
    FY__TSAN_ACQUIRE(&epoch);
    fy_auth_free(a);
}
