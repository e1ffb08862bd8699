/*
 * msg.c - the message pool (fy_msg_new / fy_msg_free of ferry/actor.h).
 *
 * Messages are small fixed records allocated and freed at the rate of
 * sends, so each scheduler thread keeps a free list of up to MSG_CACHE of
 * them in front of malloc.  A message is often freed on another thread
 * than the one that allocated it (the receiver frees what the sender made);
 * it joins the freeing thread's list, as in Pony's pool.  When that list is
 * full, the whole list goes as one chunk onto the scheduler's lock-free
 * spare stack (mbox.c), and a thread whose list is empty takes the spare
 * chunks before it calls malloc, so a steady one-way flow between two
 * threads recycles messages instead of paying malloc and a cross-thread
 * free for each one.  The poller caches too: it makes every readiness and
 * timer message, which scheduler threads free, so without taking chunks
 * back it would malloc each one while the freed ones piled up as spares.
 * The spare stack is bounded (SPARE_MAX chunks; a full list beyond that
 * goes back to malloc), so a one-way flow from a thread that never takes
 * chunks (main, sync worker) cannot grow it either: each message freed
 * once cost ~150 B of RSS per /metrics request before (issue 21, defect 8).
 * Other threads use malloc/free directly, so nothing is left behind in
 * threads the runtime does not control.
 * FY_POOL_MALLOC builds (the sanitizers) always use malloc/free so ASan
 * sees every misuse.
 */
#include "rt/msg.h"

#include <ck_pr.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/buf.h"
#include "rt/mbox.h"

#define MSG_CACHE 1024 /* messages per thread list, and per spare chunk */
#define SPARE_MAX 16   /* chunks on the spare stack */

#ifndef FY_POOL_MALLOC
static _Thread_local struct {
    fy_msg *free;   /* messages linked through next */
    fy_msg *chunks; /* further chunks taken from the spare stack, through ptr */
    uint32_t n;     /* messages on the free list */
    fy_msg **spare; /* the scheduler's spare stack; NULL = no caching */
    uint32_t *spare_n; /* atomic: chunks on it (approximate while pushes race) */
} cache;
#endif

void fy__msg_cache_on(fy_msg **spare, uint32_t *spare_n)
{
#ifndef FY_POOL_MALLOC
    cache.spare = spare;
    cache.spare_n = spare_n;
#else
    (void)spare;
    (void)spare_n;
#endif
}

static void free_list(fy_msg *m)
{
    while (m) {
        fy_msg *next = m->next;
        free(m);
        m = next;
    }
}

void fy__msg_cache_off(void)
{
#ifndef FY_POOL_MALLOC
    cache.spare = NULL;
    free_list(cache.free);
    while (cache.chunks) {
        fy_msg *c = cache.chunks;
        cache.chunks = c->ptr;
        free_list(c);
    }
    cache.free = NULL;
    cache.n = 0;
#endif
}

void fy__msg_spare_free(fy_msg **spare)
{
    fy_msg *c = fy__chunks_take(spare);
    while (c) {
        fy_msg *next = c->ptr;
        free_list(c);
        c = next;
    }
}

#ifndef FY_POOL_MALLOC
/* Take every spare chunk; the count drops by the chunks taken. */
static fy_msg *take_spares(void)
{
    fy_msg *c = fy__chunks_take(cache.spare);
    uint32_t k = 0;
    for (fy_msg *x = c; x; x = x->ptr)
        k++;
    if (k)
        ck_pr_sub_32(cache.spare_n, k);
    return c;
}

static fy_msg *cache_get(void)
{
    if (!cache.free) {
        if (!cache.chunks && cache.spare)
            cache.chunks = take_spares();
        if (!cache.chunks)
            return NULL;
        cache.free = cache.chunks;
        cache.chunks = cache.chunks->ptr;
        cache.n = MSG_CACHE; /* every chunk is a full list */
    }
    fy_msg *m = cache.free;
    cache.free = m->next;
    cache.n--;
    return m;
}

/* The free list is full: a spare chunk, or back to malloc past SPARE_MAX. */
static void spill(void)
{
    if (ck_pr_faa_32(cache.spare_n, 1) < SPARE_MAX) {
        fy__chunks_push(cache.spare, cache.free);
    } else {
        ck_pr_dec_32(cache.spare_n);
        free_list(cache.free);
    }
    cache.free = NULL;
    cache.n = 0;
}
#endif

fy_msg *fy_msg_new(uint32_t type)
{
    fy_msg *m = NULL;

#ifndef FY_POOL_MALLOC
    m = cache_get();
#endif
    if (!m) {
        m = malloc(sizeof(*m));
        if (!m)
            return NULL;
    }
    memset(m, 0, sizeof(*m));
    m->type = type;
    return m;
}

void fy__msg_release_raw(fy_msg *m)
{
#ifndef FY_POOL_MALLOC
    if (cache.spare) {
        if (cache.n >= MSG_CACHE)
            spill(); /* hand the full list to whichever thread allocates next */
        m->next = cache.free;
        cache.free = m;
        cache.n++;
        return;
    }
#endif
    free(m);
}

void fy_msg_free(fy_msg *m)
{
    if (!m)
        return;
    fy_buf_unref(m->buf);
    fy__msg_release_raw(m);
}
