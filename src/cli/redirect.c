/*
 * redirect.c - FY_ENOTLEADER texts and the epochs a run has seen
 * (redirect.h).
 *
 * The memory is a small table under a mutex rather than per thread: a
 * `ferry send` reconnects from whichever thread lost the connection, and
 * what one connection learnt must hold for the next.
 */
#include "cli/redirect.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/proto.h"

typedef struct seen_epoch {
    char chan[FY_NAME_MAX + 1];
    uint64_t epoch;
} seen_epoch;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static seen_epoch seen_tab[FY_CLI_EPOCH_CHANNELS];
static size_t nseen;

/* The value of key (e.g. "addr=") at the start of a word of text into
 * out: true when it is there and not empty. */
static bool text_field(const char *text, const char *key, char *out, size_t cap)
{
    const char *p = text;
    size_t kl = strlen(key);

    out[0] = 0;
    while ((p = strstr(p, key)) && p != text && p[-1] != ' ')
        p += kl;
    if (!p)
        return false;
    p += kl;
    size_t n = strcspn(p, " ");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    return n > 0;
}

int fy_cli_redirect_parse(const char *text, fy_cli_redirect *r)
{
    char ep[32];
    int rc = 0;

    memset(r, 0, sizeof *r);
    text_field(text, "leader=", r->leader, sizeof r->leader);
    if (text_field(text, "epoch=", ep, sizeof ep)) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(ep, &end, 10);
        if (errno || *end || ep[0] < '0' || ep[0] > '9')
            rc = -EINVAL;
        else
            r->epoch = v;
    }
    if (!text_field(text, "addr=", r->addr, sizeof r->addr))
        return -ENOENT;
    return rc;
}

bool fy_cli_epoch_admit(const char *chan, uint64_t epoch, uint64_t *seen)
{
    bool ok = true;
    size_t i;

    if (epoch == 0)
        return true;
    pthread_mutex_lock(&lock);
    for (i = 0; i < nseen && strcmp(seen_tab[i].chan, chan) != 0; i++)
        ;
    if (i < nseen) {
        if (epoch < seen_tab[i].epoch)
            ok = false;
        else
            seen_tab[i].epoch = epoch;
    } else if (nseen < FY_CLI_EPOCH_CHANNELS) {
        snprintf(seen_tab[nseen].chan, sizeof seen_tab[nseen].chan, "%s", chan);
        seen_tab[nseen++].epoch = epoch;
    }
    if (seen)
        *seen = i < nseen ? seen_tab[i].epoch : epoch;
    pthread_mutex_unlock(&lock);
    return ok;
}

void fy_cli_epoch_reset(void)
{
    pthread_mutex_lock(&lock);
    nseen = 0;
    pthread_mutex_unlock(&lock);
}
