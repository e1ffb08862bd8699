/*
 * progress.c - how far this relay has stored each channel it follows in a
 * cluster, for its member's thread (docs/cluster.md, "Membership"): the
 * member publishes it under its lease, and when a leader dies the most
 * advanced in-sync follower tries to take over first.  Written by the
 * replica links (actors/upstream_replica.c) on their actor turns, read by
 * the member's thread: one mutex, a short critical section each way.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_int.h"

typedef struct entry {
    char name[FY_NAME_MAX + 1];
    uint64_t epoch, seq;
} entry;

struct fy__progress {
    pthread_mutex_t mu;
    entry *v;
    size_t n, cap;
};

int fy__progress_new(fy__progress **out)
{
    fy__progress *p = calloc(1, sizeof *p);

    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return 0;
}

void fy__progress_free(fy__progress *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->mu);
    free(p->v);
    free(p);
}

static entry *find(fy__progress *p, const char *chan)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].name, chan) == 0)
            return &p->v[i];
    return NULL;
}

void fy__progress_set(fy__progress *p, const char *chan, uint64_t epoch, uint64_t seq)
{
    pthread_mutex_lock(&p->mu);
    entry *e = find(p, chan);
    if (!e && p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        entry *nv = realloc(p->v, cap * sizeof *nv);
        if (nv) {
            p->v = nv;
            p->cap = cap;
        }
    }
    if (!e && p->n < p->cap) {
        e = &p->v[p->n++];
        snprintf(e->name, sizeof e->name, "%s", chan);
    }
    if (e) {
        e->epoch = epoch;
        e->seq = seq;
    }
    pthread_mutex_unlock(&p->mu);
}

void fy__progress_get(fy__progress *p, const char *chan, uint64_t *epoch, uint64_t *seq)
{
    pthread_mutex_lock(&p->mu);
    const entry *e = find(p, chan);
    *epoch = e ? e->epoch : 0;
    *seq = e ? e->seq : 0;
    pthread_mutex_unlock(&p->mu);
}
