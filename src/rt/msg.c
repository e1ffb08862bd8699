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
 * free for each one.  The pool never holds more messages than were live
 * at one time.  Threads off the scheduler use malloc/free directly, so
 * nothing is left behind in threads the runtime does not control.
 * FY_POOL_MALLOC builds (the sanitizers) always use malloc/free so ASan
 * sees every misuse.
 */
#include "rt/msg.h"

#include <stdlib.h>
#include <string.h>

#include "ferry/buf.h"
#include "rt/mbox.h"

#define MSG_CACHE 1024

#ifndef FY_POOL_MALLOC
static _Thread_local struct {
    fy_msg *free;   /* messages linked through next */
    fy_msg *chunks; /* further chunks taken from the spare stack, through ptr */
    uint32_t n;
    fy_msg **spare; /* the scheduler's spare stack; NULL = no caching */
} cache;
#endif

void fy__msg_cache_on(fy_msg **spare)
{
#ifndef FY_POOL_MALLOC
    cache.spare = spare;
#else
    (void)spare;
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
static fy_msg *cache_get(void)
{
    if (!cache.free) {
        if (!cache.chunks && cache.spare)
            cache.chunks = fy__chunks_take(cache.spare);
        if (!cache.chunks)
            return NULL;
        cache.free = cache.chunks;
        cache.chunks = cache.chunks->ptr;
        cache.n = 0; /* counts only what this thread freed into its list */
    }
    fy_msg *m = cache.free;
    cache.free = m->next;
    if (cache.n)
        cache.n--;
    return m;
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
        if (cache.n >= MSG_CACHE) {
            /* Hand the full list to whichever thread allocates next. */
            fy__chunks_push(cache.spare, cache.free);
            cache.free = NULL;
            cache.n = 0;
        }
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
