/*
 * buf.c - reference-counted packet buffers from a bounded pool (ferry/buf.h).
 *
 * Design.  A buffer is one allocation: a 64-byte header (refcount, length,
 * class, owning pool, free-list link) followed by the data.  Capacities come
 * in six classes -- 4 KiB, 64 KiB, 256 KiB, 1 MiB and 4 MiB, each plus 256
 * bytes of room for the frame header, and FY_BUF_MAX_CAP -- so a 64 KiB data
 * chunk with its 32-byte header fits the 64 KiB class.  The pool enforces its
 * byte limit on `used`, the class capacity of live buffers, with a CAS loop,
 * so an allocation past the limit fails with -FY_EPOOL and never waits or
 * grows.  Free buffers are kept for reuse in two tiers: a few pointer slots
 * per CPU per class (sched_getcpu() picks the slot row; a stale CPU number
 * only costs locality, because every slot is taken with FAS and filled with
 * CAS), then one shared ck_stack per class.  The shared stacks are pushed
 * with ck_stack_push_upmc and emptied with ck_stack_batch_pop_upmc only:
 * neither reads a node the caller does not own, so there is no ABA and a
 * popped buffer can be freed at once.  (ck_stack_pop_upmc is ABA-prone;
 * ck_stack_pop_mpmc fixes ABA with a generation count but still reads
 * head->next of a node another thread may have taken and freed.)  A batch
 * pop keeps one buffer and hands the rest back with one CAS when the stack
 * is still empty.  Memory held (live + cached) is kept near the limit: a
 * released buffer is freed instead of cached while `held` is over the limit,
 * and an allocation that pushes `held` over it trims the caches of every
 * class, so the bound is the limit plus at most one buffer per thread that
 * is allocating at that instant.  The last fy_buf_unref() returns the buffer
 * from whichever thread drops it.  Sanitizer builds (FY_POOL_MALLOC) skip
 * both caches and malloc/free every buffer, with the same accounting.
 */
#include "ferry/buf.h"

#include "ferry/err.h"

#include <assert.h>
#include <ck_pr.h>
#include <ck_stack.h>
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef FY_TSAN
/* ck's atomics are inline assembly that ThreadSanitizer cannot see; these
 * tell it where the refcount hands the buffer from one thread to another. */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_ACQUIRE(a) __tsan_acquire(a)
#define TSAN_RELEASE(a) __tsan_release(a)
#else
#define TSAN_ACQUIRE(a) ((void)(a))
#define TSAN_RELEASE(a) ((void)(a))
#endif

#define CACHELINE 64
#define HDR_SIZE 64 /* data starts one cache line into the allocation */
#define ROOM 256    /* per-class room for the frame header and a prefix */
#define NCLASS 6
#define DEPTH_MAX 8
#define NSLOTS_MAX 256

struct fy_buf {
    ck_stack_entry_t link; /* shared free-list link; meaningful only while free */
    fy_bufpool *pool;
    size_t len;
    size_t cap;
    uint32_t refs; /* ck_pr atomics only */
    uint8_t cls;
};
_Static_assert(sizeof(struct fy_buf) <= HDR_SIZE, "buffer header must fit in front of the data");

static const size_t class_cap[NCLASS] = {
    ((size_t)4 << 10) + ROOM,   ((size_t)64 << 10) + ROOM, ((size_t)256 << 10) + ROOM,
    ((size_t)1 << 20) + ROOM,   ((size_t)4 << 20) + ROOM,  FY_BUF_MAX_CAP,
};

/* One CPU's slots; rows are cache-line aligned so CPUs do not share lines. */
struct cpu_slots {
    _Alignas(CACHELINE) fy_buf *slot[NCLASS][DEPTH_MAX];
};

struct fy_bufpool {
    uint64_t limit;
    unsigned nslots;
    struct cpu_slots *cpu;
    /* Written by every allocating and releasing thread: own lines. */
    _Alignas(CACHELINE) uint64_t used; /* class capacity of live buffers */
    uint64_t live;                     /* number of live buffers */
    _Alignas(CACHELINE) uint64_t held; /* capacity of all buffers malloc'd: live + cached */
    struct {
        _Alignas(CACHELINE) ck_stack_t stack;
    } shared[NCLASS];
};

/* ---- accounting ---------------------------------------------------------- */

/* Take cap bytes of the limit, or fail without changing anything.  The CAS
 * is the only ordering needed: it makes the check and the add one step, so
 * concurrent allocators can never together pass the limit. */
static int reserve(fy_bufpool *p, uint64_t cap)
{
    uint64_t cur = ck_pr_load_64(&p->used);

    do {
        if (cap > p->limit || cur > p->limit - cap)
            return -FY_EPOOL;
    } while (!ck_pr_cas_64_value(&p->used, cur, cur + cap, &cur));
    ck_pr_inc_64(&p->live);
    return 0;
}

static void unreserve(fy_bufpool *p, uint64_t cap)
{
    ck_pr_sub_64(&p->used, cap);
    ck_pr_dec_64(&p->live);
}

static unsigned class_of(size_t cap)
{
    unsigned c = 0;

    while (class_cap[c] < cap)
        c++;
    return c;
}

static fy_buf *os_alloc(fy_bufpool *p, unsigned c)
{
    fy_buf *b = aligned_alloc(CACHELINE, HDR_SIZE + class_cap[c]);

    if (!b)
        return NULL;
    b->pool = p;
    b->cls = (uint8_t)c;
    b->cap = class_cap[c];
    ck_pr_add_64(&p->held, class_cap[c]);
    return b;
}

static void os_free(fy_buf *b)
{
    ck_pr_sub_64(&b->pool->held, b->cap);
    free(b);
}

#ifndef FY_POOL_MALLOC
/* ---- the two cache tiers ------------------------------------------------- */

/* Per-CPU cached buffers per class: many small ones, none of the giants. */
static const unsigned class_depth[NCLASS] = {8, 4, 2, 1, 0, 0};

static struct cpu_slots *my_slots(fy_bufpool *p)
{
    int cpu = sched_getcpu();

    return &p->cpu[cpu < 0 ? 0 : (unsigned)cpu % p->nslots];
}

static fy_buf *from_entry(ck_stack_entry_t *e)
{
    return (fy_buf *)((char *)e - offsetof(fy_buf, link));
}

/* Hand a privately owned chain back to a shared stack.  The common case is
 * one CAS into an empty stack; if a push got in first, walk to the chain's
 * tail and push the whole chain like ck_stack_push_upmc pushes one node. */
static void push_chain(ck_stack_t *s, ck_stack_entry_t *first)
{
    ck_stack_entry_t *head = NULL, *tail = first;

    /* The fence orders our writes of the chain's links before it is seen. */
    ck_pr_fence_store();
    if (ck_pr_cas_ptr_value(&s->head, NULL, first, &head))
        return;
    while (tail->next)
        tail = tail->next;
    do {
        tail->next = head;
        ck_pr_fence_store(); /* the link above before the chain is published */
    } while (!ck_pr_cas_ptr_value(&s->head, head, first, &head));
}

/* Take the whole shared list of class c (ABA-free FAS), keep the first
 * buffer and give the rest back. */
static fy_buf *shared_take(fy_bufpool *p, unsigned c)
{
    ck_stack_entry_t *e = ck_stack_batch_pop_upmc(&p->shared[c].stack);

    if (!e)
        return NULL;
    if (e->next)
        push_chain(&p->shared[c].stack, e->next);
    return from_entry(e);
}

static fy_buf *cache_take(fy_bufpool *p, unsigned c)
{
    struct cpu_slots *s = my_slots(p);

    for (unsigned i = 0; i < class_depth[c]; i++) {
        /* The plain load skips empty slots without a locked instruction. */
        if (ck_pr_load_ptr(&s->slot[c][i]) == NULL)
            continue;
        fy_buf *b = ck_pr_fas_ptr(&s->slot[c][i], NULL);
        if (b) {
            /* Pairs with the release fence in cache_put: the buffer's
             * header as its last owner left it. */
            ck_pr_fence_acquire();
            return b;
        }
    }
    return shared_take(p, c);
}

static void cache_put(fy_bufpool *p, fy_buf *b)
{
    struct cpu_slots *s = my_slots(p);
    unsigned c = b->cls;

    /* Orders every access to the buffer before it becomes visible to the
     * thread that takes it from a slot or the stack. */
    ck_pr_fence_release();
    for (unsigned i = 0; i < class_depth[c]; i++) {
        if (ck_pr_load_ptr(&s->slot[c][i]) == NULL &&
            ck_pr_cas_ptr(&s->slot[c][i], NULL, b))
            return;
    }
    ck_stack_push_upmc(&p->shared[c].stack, &b->link);
}

/* Free cached buffers of every class until held <= limit.  Everything freed
 * here was taken with FAS, so no other thread can still be reading it. */
static void trim(fy_bufpool *p)
{
    for (unsigned c = NCLASS; c-- > 0;) {
        ck_stack_entry_t *e = ck_stack_batch_pop_upmc(&p->shared[c].stack);
        while (e && ck_pr_load_64(&p->held) > p->limit) {
            ck_stack_entry_t *next = e->next;
            os_free(from_entry(e));
            e = next;
        }
        if (e)
            push_chain(&p->shared[c].stack, e);
        for (unsigned n = 0; n < p->nslots; n++) {
            for (unsigned i = 0; i < class_depth[c]; i++) {
                if (ck_pr_load_64(&p->held) <= p->limit)
                    return;
                fy_buf *b = ck_pr_fas_ptr(&p->cpu[n].slot[c][i], NULL);
                if (b)
                    os_free(b);
            }
        }
    }
}

static fy_buf *get(fy_bufpool *p, unsigned c)
{
    fy_buf *b = cache_take(p, c);

    if (b)
        return b;
    b = os_alloc(p, c);
    if (b && ck_pr_load_64(&p->held) > p->limit)
        trim(p);
    return b;
}

static void put(fy_buf *b)
{
    fy_bufpool *p = b->pool;

    if (ck_pr_load_64(&p->held) > p->limit)
        os_free(b);
    else
        cache_put(p, b);
}

static void drain(fy_bufpool *p)
{
    for (unsigned c = 0; c < NCLASS; c++) {
        ck_stack_entry_t *e = ck_stack_batch_pop_upmc(&p->shared[c].stack);
        while (e) {
            ck_stack_entry_t *next = e->next;
            os_free(from_entry(e));
            e = next;
        }
        for (unsigned n = 0; n < p->nslots; n++)
            for (unsigned i = 0; i < class_depth[c]; i++)
                if (p->cpu[n].slot[c][i])
                    os_free(p->cpu[n].slot[c][i]);
    }
}

#else /* FY_POOL_MALLOC: one malloc per buffer so ASan sees every misuse */

static fy_buf *get(fy_bufpool *p, unsigned c)
{
    return os_alloc(p, c);
}

static void put(fy_buf *b)
{
    os_free(b);
}

static void drain(fy_bufpool *p)
{
    (void)p;
}

#endif

/* ---- public API ---------------------------------------------------------- */

int fy_bufpool_new(size_t max_bytes, fy_bufpool **out)
{
    if (!out || max_bytes == 0)
        return -EINVAL;
    fy_bufpool *p = aligned_alloc(CACHELINE, sizeof(*p));
    if (!p)
        return -ENOMEM;
    *p = (fy_bufpool){.limit = max_bytes};
    long n = sysconf(_SC_NPROCESSORS_CONF);
    p->nslots = n < 1 ? 1 : n > NSLOTS_MAX ? NSLOTS_MAX : (unsigned)n;
    p->cpu = aligned_alloc(CACHELINE, sizeof(*p->cpu) * p->nslots);
    if (!p->cpu) {
        free(p);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < p->nslots; i++)
        p->cpu[i] = (struct cpu_slots){0};
    for (unsigned c = 0; c < NCLASS; c++)
        ck_stack_init(&p->shared[c].stack);
    *out = p;
    return 0;
}

void fy_bufpool_free(fy_bufpool *p)
{
    if (!p)
        return;
    /* Pairs with the releases of the last unrefs: all buffers are home. */
    ck_pr_fence_acquire();
    TSAN_ACQUIRE(p);
    assert(ck_pr_load_64(&p->live) == 0 && "fy_bufpool_free with live buffers");
    drain(p);
    assert(ck_pr_load_64(&p->held) == 0);
    free(p->cpu);
    free(p);
}

int fy_buf_alloc(fy_bufpool *p, size_t cap, fy_buf **out)
{
    if (cap > FY_BUF_MAX_CAP)
        return -EINVAL;
    unsigned c = class_of(cap);
    int rc = reserve(p, class_cap[c]);
    if (rc < 0)
        return rc;
    fy_buf *b = get(p, c);
    if (!b) {
        unreserve(p, class_cap[c]);
        return -ENOMEM;
    }
    b->len = 0;
    ck_pr_store_32(&b->refs, 1);
    *out = b;
    return 0;
}

fy_buf *fy_buf_ref(fy_buf *b)
{
    /* No ordering: the caller already holds a reference, so the buffer
     * cannot be freed under it; only the count must not lose updates. */
    ck_pr_inc_32(&b->refs);
    return b;
}

void fy_buf_unref(fy_buf *b)
{
    bool zero;

    if (!b)
        return;
    assert(ck_pr_load_32(&b->refs) > 0);
    /* Release: our reads and writes of the data happen before the count
     * drops, so the thread that sees zero may reuse the bytes. */
    TSAN_RELEASE(&b->refs);
    ck_pr_fence_release();
    ck_pr_dec_32_zero(&b->refs, &zero);
    if (!zero)
        return;
    /* Acquire: every other holder's accesses (released above on their side)
     * happen before we recycle the buffer. */
    ck_pr_fence_acquire();
    TSAN_ACQUIRE(&b->refs);
    fy_bufpool *p = b->pool;
    uint64_t cap = b->cap;
    put(b);
    TSAN_RELEASE(p); /* for fy_bufpool_free on another thread */
    unreserve(p, cap);
}

uint8_t *fy_buf_data(fy_buf *b)
{
    return (uint8_t *)b + HDR_SIZE;
}

const uint8_t *fy_buf_cdata(const fy_buf *b)
{
    return (const uint8_t *)b + HDR_SIZE;
}

size_t fy_buf_len(const fy_buf *b)
{
    return b->len;
}

size_t fy_buf_cap(const fy_buf *b)
{
    return b->cap;
}

void fy_buf_set_len(fy_buf *b, size_t len)
{
    assert(len <= b->cap);
    b->len = len;
}

uint32_t fy_buf_refs(const fy_buf *b)
{
    return ck_pr_load_32((uint32_t *)&b->refs);
}

size_t fy_bufpool_used(const fy_bufpool *p)
{
    return (size_t)ck_pr_load_64((uint64_t *)&p->used);
}

size_t fy_bufpool_limit(const fy_bufpool *p)
{
    return (size_t)p->limit;
}

size_t fy_bufpool_live(const fy_bufpool *p)
{
    return (size_t)ck_pr_load_64((uint64_t *)&p->live);
}
