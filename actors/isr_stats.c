/*
 * isr_stats.c - the table behind isr_stats.h: rows of (channel, node)
 * with two figures, in a growing array under one mutex.  Writers put a
 * channel's rows at most a few times a second; /metrics reads them all.
 */
#include "isr_stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/proto.h"

#define ROWS_MAX 65536u

typedef struct row {
    char chan[FY_NAME_MAX + 1];
    char node[FY_CLIENT_MAX + 1]; /* "": the channel's own row */
    uint64_t a, b;
} row;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static row *rows;
static size_t nrows, caprows;

/* The row of (chan, node), made when missing; under mu.  NULL: no room. */
static row *slot(const char *chan, const char *node)
{
    for (size_t i = 0; i < nrows; i++)
        if (strcmp(rows[i].chan, chan) == 0 && strcmp(rows[i].node, node) == 0)
            return &rows[i];
    if (strlen(chan) > FY_NAME_MAX || strlen(node) > FY_CLIENT_MAX)
        return NULL;
    if (nrows == caprows) {
        size_t cap = caprows ? caprows * 2 : 16;
        row *v = cap <= ROWS_MAX ? realloc(rows, cap * sizeof *v) : NULL;
        if (!v)
            return NULL;
        rows = v;
        caprows = cap;
    }
    row *r = &rows[nrows++];
    memset(r, 0, sizeof *r);
    strcpy(r->chan, chan);
    strcpy(r->node, node);
    return r;
}

static void put(const char *chan, const char *node, uint64_t a, uint64_t b)
{
    pthread_mutex_lock(&mu);
    row *r = slot(chan, node);
    if (r) {
        r->a = a;
        r->b = b;
    }
    pthread_mutex_unlock(&mu);
}

void fy__isrst_chan(const char *chan, uint64_t acks_waiting)
{
    put(chan, "", acks_waiting, 0);
}

void fy__isrst_node(const char *chan, const char *node, uint64_t lag_frames, uint64_t lag_ms)
{
    if (node[0])
        put(chan, node, lag_frames, lag_ms);
}

void fy__isrst_drop(const char *chan)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nrows;)
        if (strcmp(rows[i].chan, chan) == 0)
            rows[i] = rows[--nrows];
        else
            i++;
    pthread_mutex_unlock(&mu);
}

void fy__isrst_each(fy__isrst_fn fn, void *arg)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nrows; i++)
        fn(arg, rows[i].chan, rows[i].node[0] ? rows[i].node : NULL, rows[i].a, rows[i].b);
    pthread_mutex_unlock(&mu);
}
