/*
 * rt_bench.c - the actor runtime measured against plain threads.
 *
 * Three message patterns -- ping-pong, 4->1 fan-in and 1->64 fan-out -- run
 * through the Ferry runtime and through the obvious alternative, threads
 * passing malloc'd nodes through mutex + condvar queues, in the same
 * process, so the ratio means something on a noisy machine.  Both sides are
 * flow-controlled the same way the relay is (a bounded window per sender,
 * so memory stays bounded): the threads with a bounded queue, the actors
 * with credit messages from the receiver.  Then the mailbox alone (P
 * producer threads, one consumer), and the CPU an idle started runtime
 * uses over one second.  Prints a table, then one key=value line.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry/actor.h"
#include "ferry/sched.h"
#include "rt/mbox.h"

#define WINDOW 8192      /* messages a sender may have unacknowledged per receiver */
#define CREDIT_EVERY 1024
#define PER_TURN 512     /* messages a sender actor sends per turn */
#define LIMIT_NS (20ull * 1000000000ull)

enum { T_DATA = FY_MSG_USER, T_GO, T_CREDIT, T_PING };

static unsigned g_threads = 2;
static double g_scale = 1.0;
static const char *g_only; /* run one runtime pattern only (for profiling) */

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* Wait for s, at most LIMIT_NS; returns 0 or -ETIMEDOUT. */
static int wait_sem(sem_t *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(LIMIT_NS / 1000000000ull);
    while (sem_timedwait(s, &ts) < 0) {
        if (errno != EINTR)
            return -ETIMEDOUT;
    }
    return 0;
}

/* ==== the runtime side ==================================================== */

typedef struct src {
    fy_actor *self;
    fy_actor **to;
    unsigned nto, id;
    uint64_t n, sent, *acked, minack;
    int go_posted;
} src;

typedef struct snk {
    fy_actor **from; /* by sender id */
    uint64_t *count; /* by sender id */
    uint64_t got, want;
    unsigned idx; /* this sink's index, carried back in credits */
    sem_t *done;
} snk;

static void pump(src *s)
{
    unsigned k = 0;
    while (s->sent < s->n && s->sent - s->minack < WINDOW && k < PER_TURN) {
        for (unsigned j = 0; j < s->nto; j++)
            (void)fy_actor_post(s->to[j], T_DATA, s->id, s->sent, 0, NULL, NULL);
        s->sent++;
        k += s->nto;
    }
    if (s->sent < s->n && s->sent - s->minack < WINDOW && !s->go_posted) {
        s->go_posted = 1;
        (void)fy_actor_post(s->self, T_GO, 0, 0, 0, NULL, NULL);
    }
}

static int src_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)self;
    src *s = st;
    if (m->type == T_GO) {
        s->go_posted = 0;
    } else if (m->type == T_CREDIT) {
        if (m->u64[0] > s->acked[m->u32])
            s->acked[m->u32] = m->u64[0];
        uint64_t min = UINT64_MAX;
        for (unsigned j = 0; j < s->nto; j++)
            min = s->acked[j] < min ? s->acked[j] : min;
        s->minack = min;
    }
    pump(s);
    return FY_MSG_DONE;
}

static int snk_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)self;
    snk *k = st;
    if (m->type != T_DATA)
        return FY_MSG_DONE;
    uint64_t c = ++k->count[m->u32];
    if (c % CREDIT_EVERY == 0)
        (void)fy_actor_post(k->from[m->u32], T_CREDIT, k->idx, c, 0, NULL, NULL);
    if (++k->got == k->want)
        sem_post(k->done);
    return FY_MSG_DONE;
}

/* nsrc senders each send n to every one of nsnk receivers; returns msg/s. */
static double rt_flow(unsigned nsrc, unsigned nsnk, uint64_t n, int trace)
{
    fy_sched_opts o = {.threads = g_threads, .trace_off = !trace};
    fy_sched *s;
    if (fy_sched_new(&o, &s) < 0 || fy_sched_start(s) < 0)
        return 0;
    sem_t done;
    sem_init(&done, 0, 0);
    src *srcs = calloc(nsrc, sizeof(*srcs));
    snk *snks = calloc(nsnk, sizeof(*snks));
    fy_actor **sa = calloc(nsrc, sizeof(*sa)), **ka = calloc(nsnk, sizeof(*ka));
    for (unsigned j = 0; j < nsnk; j++) {
        snks[j] = (snk){.from = sa, .count = calloc(nsrc, sizeof(uint64_t)), .want = n * nsrc, .idx = j, .done = &done};
        fy_actor_opts ok = {.fn = snk_fn, .state = &snks[j], .label = "sink"};
        fy_actor_new(s, &ok, &ka[j]);
    }
    for (unsigned i = 0; i < nsrc; i++) {
        srcs[i] = (src){.to = ka, .nto = nsnk, .id = i, .n = n, .acked = calloc(nsnk, sizeof(uint64_t))};
        fy_actor_opts os = {.fn = src_fn, .state = &srcs[i], .label = "source"};
        fy_actor_new(s, &os, &sa[i]);
        srcs[i].self = sa[i];
    }
    /* Credits travel to sender j by index, carrying the sink's index in u32. */
    for (unsigned j = 0; j < nsnk; j++)
        snks[j].from = sa;
    uint64_t t0 = fy_now_ns();
    for (unsigned i = 0; i < nsrc; i++)
        fy_actor_post(sa[i], T_GO, 0, 0, 0, NULL, NULL);
    int ok = 1;
    for (unsigned j = 0; j < nsnk; j++)
        ok &= wait_sem(&done) == 0;
    uint64_t dt = fy_now_ns() - t0;
    fy_sched_exit(s);
    fy_sched_join(s);
    fy_sched_free(s);
    for (unsigned i = 0; i < nsrc; i++) {
        fy_actor_unref(sa[i]);
        free(srcs[i].acked);
    }
    for (unsigned j = 0; j < nsnk; j++) {
        fy_actor_unref(ka[j]);
        free(snks[j].count);
    }
    free(srcs), free(snks), free(sa), free(ka);
    sem_destroy(&done);
    return ok ? (double)(n * nsrc * nsnk) / secs(dt) : 0;
}

typedef struct ppst {
    fy_actor *peer;
    uint64_t limit;
    sem_t *done;
} ppst;

static int pp_fn(fy_actor *self, void *st, fy_msg *m)
{
    (void)self;
    ppst *p = st;
    if (m->u64[0] >= p->limit) {
        sem_post(p->done);
        return FY_MSG_DONE;
    }
    m->u64[0]++;
    (void)fy_actor_send(p->peer, m);
    return FY_MSG_KEPT;
}

/* Messages per second (each hop counts as one message). */
static double rt_pingpong(uint64_t n)
{
    fy_sched_opts o = {.threads = g_threads, .trace_off = true};
    fy_sched *s;
    if (fy_sched_new(&o, &s) < 0 || fy_sched_start(s) < 0)
        return 0;
    sem_t done;
    sem_init(&done, 0, 0);
    ppst pa = {.limit = n, .done = &done}, pb = pa;
    fy_actor *a, *b;
    fy_actor_opts oa = {.fn = pp_fn, .state = &pa}, ob = {.fn = pp_fn, .state = &pb};
    fy_actor_new(s, &oa, &a);
    fy_actor_new(s, &ob, &b);
    pa.peer = b;
    pb.peer = a;
    uint64_t t0 = fy_now_ns();
    fy_actor_post(a, T_PING, 0, 0, 0, NULL, NULL);
    int ok = wait_sem(&done) == 0;
    uint64_t dt = fy_now_ns() - t0;
    fy_sched_exit(s);
    fy_sched_join(s);
    fy_sched_free(s);
    fy_actor_unref(a);
    fy_actor_unref(b);
    sem_destroy(&done);
    return ok ? (double)n / secs(dt) : 0;
}

/* ==== the mutex + condvar side ============================================ */

typedef struct node {
    struct node *next;
    uint64_t v;
} node;

typedef struct mq {
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    node *head, *tail;
    size_t n, cap;
} mq;

static void mq_init(mq *q, size_t cap)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->nonempty, NULL);
    pthread_cond_init(&q->nonfull, NULL);
    q->cap = cap;
}

static void mq_fini(mq *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->nonempty);
    pthread_cond_destroy(&q->nonfull);
}

static void mq_push(mq *q, uint64_t v)
{
    node *nd = malloc(sizeof(*nd));
    nd->next = NULL;
    nd->v = v;
    pthread_mutex_lock(&q->mu);
    while (q->n >= q->cap)
        pthread_cond_wait(&q->nonfull, &q->mu);
    if (q->tail)
        q->tail->next = nd;
    else
        q->head = nd;
    q->tail = nd;
    if (q->n++ == 0)
        pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->mu);
}

static uint64_t mq_pop(mq *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->n == 0)
        pthread_cond_wait(&q->nonempty, &q->mu);
    node *nd = q->head;
    q->head = nd->next;
    if (!q->head)
        q->tail = NULL;
    if (q->n-- == q->cap)
        pthread_cond_broadcast(&q->nonfull);
    pthread_mutex_unlock(&q->mu);
    uint64_t v = nd->v;
    free(nd);
    return v;
}

typedef struct mt_arg {
    mq *in, *out; /* out: array of nout queues */
    unsigned nout;
    uint64_t n;
} mt_arg;

static void *mt_producer(void *p)
{
    mt_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++)
        for (unsigned j = 0; j < a->nout; j++)
            mq_push(&a->out[j], i);
    return NULL;
}

static void *mt_consumer(void *p)
{
    mt_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++)
        (void)mq_pop(a->in);
    return NULL;
}

static double mt_flow(unsigned nsrc, unsigned nsnk, uint64_t n)
{
    mq *qs = calloc(nsnk, sizeof(*qs));
    pthread_t *th = calloc(nsrc + nsnk, sizeof(*th));
    mt_arg *args = calloc(nsrc + nsnk, sizeof(*args));
    for (unsigned j = 0; j < nsnk; j++)
        mq_init(&qs[j], (size_t)WINDOW * nsrc);
    uint64_t t0 = fy_now_ns();
    for (unsigned j = 0; j < nsnk; j++) {
        args[j] = (mt_arg){.in = &qs[j], .n = n * nsrc};
        pthread_create(&th[j], NULL, mt_consumer, &args[j]);
    }
    for (unsigned i = 0; i < nsrc; i++) {
        args[nsnk + i] = (mt_arg){.out = qs, .nout = nsnk, .n = n};
        pthread_create(&th[nsnk + i], NULL, mt_producer, &args[nsnk + i]);
    }
    for (unsigned i = 0; i < nsrc + nsnk; i++)
        pthread_join(th[i], NULL);
    uint64_t dt = fy_now_ns() - t0;
    for (unsigned j = 0; j < nsnk; j++)
        mq_fini(&qs[j]);
    free(qs), free(th), free(args);
    return (double)(n * nsrc * nsnk) / secs(dt);
}

typedef struct mt_pp {
    mq *in, *out;
    uint64_t limit;
    int first;
} mt_pp;

static void *mt_pp_main(void *p)
{
    mt_pp *a = p;
    if (a->first)
        mq_push(a->out, 0);
    for (;;) {
        uint64_t v = mq_pop(a->in);
        if (v >= a->limit) {
            if (v == a->limit)
                mq_push(a->out, v + 1); /* let the other side leave too */
            return NULL;
        }
        mq_push(a->out, v + 1);
    }
}

static double mt_pingpong(uint64_t n)
{
    mq q1, q2;
    mq_init(&q1, 4);
    mq_init(&q2, 4);
    mt_pp a = {.in = &q1, .out = &q2, .limit = n, .first = 1};
    mt_pp b = {.in = &q2, .out = &q1, .limit = n};
    pthread_t ta, tb;
    uint64_t t0 = fy_now_ns();
    pthread_create(&ta, NULL, mt_pp_main, &a);
    pthread_create(&tb, NULL, mt_pp_main, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    uint64_t dt = fy_now_ns() - t0;
    while (q1.head) /* the stray last message */
        (void)mq_pop(&q1);
    while (q2.head)
        (void)mq_pop(&q2);
    mq_fini(&q1);
    mq_fini(&q2);
    return (double)n / secs(dt);
}

/* ==== the mailbox alone =================================================== */

typedef struct mb_arg {
    fy__mbox *mb;
    fy_msg *msgs;
    uint64_t n;
} mb_arg;

static void *mb_producer(void *p)
{
    mb_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++)
        (void)fy__mbox_push(a->mb, &a->msgs[i], NULL);
    return NULL;
}

/* P producer threads push n each; the calling thread consumes.  msg/s. */
static double mbox_rate(unsigned P, uint64_t n)
{
    fy__mbox *mb = aligned_alloc(64, 64);
    memset(mb, 0, 64);
    fy_msg *msgs = calloc((size_t)P * n, sizeof(fy_msg));
    pthread_t th[16];
    mb_arg args[16];
    uint64_t t0 = fy_now_ns(), got = 0, end = t0 + LIMIT_NS;
    for (unsigned i = 0; i < P; i++) {
        args[i] = (mb_arg){mb, msgs + (size_t)i * n, n};
        pthread_create(&th[i], NULL, mb_producer, &args[i]);
    }
    while (got < P * n && fy_now_ns() < end) {
        fy_msg *tail;
        uint32_t k;
        (void)fy__mbox_take(mb, &tail, &k);
        got += k;
    }
    uint64_t dt = fy_now_ns() - t0;
    for (unsigned i = 0; i < P; i++)
        pthread_join(th[i], NULL);
    free(msgs);
    free(mb);
    return (double)got / secs(dt);
}

/* ==== idle CPU ============================================================ */

static double idle_cpu_pct(void)
{
    fy_sched_opts o = {.threads = g_threads};
    fy_sched *s;
    if (fy_sched_new(&o, &s) < 0 || fy_sched_start(s) < 0)
        return -1;
    struct timespec pause = {0, 100000000}; /* let the threads park */
    nanosleep(&pause, NULL);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    uint64_t w0 = fy_now_ns();
    struct timespec one = {1, 0};
    nanosleep(&one, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    uint64_t w1 = fy_now_ns();
    fy_sched_exit(s);
    fy_sched_join(s);
    fy_sched_free(s);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
    return 100.0 * cpu / (double)(w1 - w0);
}

static void usage(void)
{
    printf("usage: rt_bench [--threads N] [--scale F]\n"
           "  Measures the Ferry actor runtime against mutex+condvar queues:\n"
           "  ping-pong, 4->1 fan-in, 1->64 fan-out, the mailbox alone and the\n"
           "  CPU of an idle runtime.  --threads: scheduler threads (default 2);\n"
           "  --scale: multiply message counts (default 1.0).\n"
           "  --only pingpong|fanin|fanin-trace|fanout: run one runtime pattern (for\n"
           "  profiling); prints <pattern>_msgs_per_s.\n"
           "  Ends with one line of key=value pairs.\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            g_threads = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            g_only = argv[++i];
        } else if (!strcmp(argv[i], "--scale") && i + 1 < argc) {
            g_scale = atof(argv[++i]);
        } else {
            fprintf(stderr, "level=error msg=\"unknown argument\" arg=\"%s\"\n", argv[i]);
            usage();
            return 2;
        }
    }
    uint64_t k = (uint64_t)(1000000 * g_scale);
    if (k < 1000)
        k = 1000;

    if (g_only) { /* for perf: one runtime pattern, no reference */
        double r = !strcmp(g_only, "pingpong") ? rt_pingpong(2 * k)
                   : !strcmp(g_only, "fanin")  ? rt_flow(4, 1, 2 * k, 0)
                   : !strcmp(g_only, "fanin-trace") ? rt_flow(4, 1, 2 * k, 1)
                   : !strcmp(g_only, "fanout") ? rt_flow(1, 64, k / 8, 0)
                                               : -1;
        printf("%s_msgs_per_s=%.0f\n", g_only, r);
        return r < 0 ? 2 : 0;
    }
    double idle = idle_cpu_pct();
    double pp_rt = rt_pingpong(2 * k), pp_mt = mt_pingpong(k / 5);
    double fi_rt = rt_flow(4, 1, 2 * k, 0), fi_mt = mt_flow(4, 1, k / 2);
    double fi_tr = rt_flow(4, 1, 2 * k, 1);
    double fo_rt = rt_flow(1, 64, k / 8, 0), fo_mt = mt_flow(1, 64, k / 400);
    double mb1 = mbox_rate(1, 4 * k), mb4 = mbox_rate(4, k);

    printf("%-22s %14s %14s %8s\n", "pattern", "ferry msg/s", "mutex msg/s", "ratio");
    printf("%-22s %14.0f %14.0f %8.2f\n", "ping-pong", pp_rt, pp_mt, pp_rt / pp_mt);
    printf("%-22s %14.0f %14.0f %8.2f\n", "fan-in 4->1", fi_rt, fi_mt, fi_rt / fi_mt);
    printf("%-22s %14.0f %14s %8.2f\n", "fan-in 4->1, trace on", fi_tr, "", fi_tr / fi_mt);
    printf("%-22s %14.0f %14.0f %8.2f\n", "fan-out 1->64", fo_rt, fo_mt, fo_rt / fo_mt);
    printf("%-22s %14.0f\n", "mailbox 1 producer", mb1);
    printf("%-22s %14.0f\n", "mailbox 4 producers", mb4);
    printf("%-22s %14.3f %%\n", "idle runtime CPU", idle);
    printf("threads=%u pingpong_msgs_per_s=%.0f pingpong_ratio_vs_mutex=%.2f fanin_msgs_per_s=%.0f "
           "fanin_ratio_vs_mutex=%.2f fanin_trace_msgs_per_s=%.0f fanout_msgs_per_s=%.0f "
           "fanout_ratio_vs_mutex=%.2f mbox_1p_msgs_per_s=%.0f mbox_4p_msgs_per_s=%.0f idle_cpu_pct=%.3f\n",
           g_threads, pp_rt, pp_rt / pp_mt, fi_rt, fi_rt / fi_mt, fi_tr, fo_rt, fo_rt / fo_mt, mb1, mb4,
           idle);
    return 0;
}
