/*
 * tracer.c - the tracer actor: periodic drains of the rings into a
 * rotating trace file (tracer.h).
 *
 * Each tick writes the dump's head (header, clock, actor table) into a
 * memfd with fy_trace_dump_head() and takes each thread's new events with
 * fy_trace_read_since() and a cursor per thread, so a tick costs the new
 * events and the actor table, not a copy of every ring (2 MiB per thread
 * with default rings).  All state is the actor's own; the file is written
 * only from its turns and its dtor.
 */
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/fd.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/trace.h"
#include "relay/kinds.h"

#define TICK_TAG 1
#define MAX_THREADS 4096
#define READ_CHUNK 4096 /* events per fy_trace_read_since() call */

typedef struct vec {
    uint8_t *p;
    size_t n, cap;
} vec;

typedef struct tracer {
    fy_sched *s;
    char path[4096], path1[4104];
    uint64_t max_file;
    unsigned period_ms;
    int fd, memfd;
    uint64_t file_bytes;
    uint64_t cursor[MAX_THREADS]; /* events of each ring consumed (read or lost) */
    uint32_t *ids;                /* actors written to the current file, sorted */
    size_t nids, capids;
    vec all_act, new_act, blocks, newids;
    vec all_cl, new_cl;  /* cluster events: every one in the head, those new to the file */
    uint32_t cl_seen;    /* the newest cluster event's serial already in the file */
    uint32_t cl_head;    /* the newest one in this tick's head */
    uint64_t events, lost, rotations, write_errs;
    bool more; /* the last drain left events in a ring: drain again at once */
} tracer;

/* ---- small helpers ------------------------------------------------------ */

/* Room for n more bytes at v->p + v->n (v->n unchanged). */
static int vec_reserve(vec *v, size_t n)
{
    if (v->n + n > v->cap) {
        size_t c = v->cap ? v->cap : 4096;
        while (c < v->n + n)
            c *= 2;
        uint8_t *q = realloc(v->p, c);
        if (!q)
            return -ENOMEM;
        v->p = q;
        v->cap = c;
    }
    return 0;
}

static int vec_put(vec *v, const void *p, size_t n)
{
    int rc = vec_reserve(v, n);
    if (rc)
        return rc;
    memcpy(v->p + v->n, p, n);
    v->n += n;
    return 0;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

static bool known(const tracer *t, uint32_t id)
{
    return t->nids && bsearch(&id, t->ids, t->nids, sizeof id, cmp_u32);
}

static int remember(tracer *t, const uint32_t *ids, size_t n)
{
    if (n == 0)
        return 0;
    if (t->nids + n > t->capids) {
        size_t c = t->capids ? t->capids : 256;
        while (c < t->nids + n)
            c *= 2;
        uint32_t *p = realloc(t->ids, c * sizeof *p);
        if (!p)
            return -ENOMEM;
        t->ids = p;
        t->capids = c;
    }
    memcpy(t->ids + t->nids, ids, n * sizeof *ids);
    t->nids += n;
    qsort(t->ids, t->nids, sizeof *t->ids, cmp_u32);
    return 0;
}

/* ---- the file ----------------------------------------------------------- */

static int open_file(tracer *t)
{
    t->fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (t->fd < 0)
        return -errno;
    t->file_bytes = 0;
    return 0;
}

/* FILE -> FILE.1, a new FILE; the caller writes its header and actors. */
static int rotate(tracer *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    if (rename(t->path, t->path1) < 0 && errno != ENOENT)
        fy_klog(FY_LOG_WARN, "trace rotate failed", "call=rename from=%s to=%s err=%d "
                "action=\"overwrite %s\"", t->path, t->path1, errno, t->path);
    t->rotations++;
    t->nids = 0;
    return open_file(t);
}

/* Split one dump head (in m[0..len)) into: every actor record, the actors
 * new to this file, and the clock. */
static int split(tracer *t, const uint8_t *m, size_t len, fy_trace_file_hdr *h)
{
    t->all_act.n = t->new_act.n = t->blocks.n = t->newids.n = 0;
    t->all_cl.n = t->new_cl.n = 0;
    if (len < sizeof *h)
        return -FY_ECORRUPT;
    memcpy(h, m, sizeof *h);
    size_t nrec = (len - h->hdr_size) / 32;
    const uint8_t *r0 = m + h->hdr_size;
    for (size_t i = 0; i < nrec;) {
        fy_trace_rec r;
        memcpy(&r, r0 + i * 32, 32);
        size_t follow = r.type == FY_TR_META_ACTOR || r.type == FY_TR_META_THREAD ||
                        r.type == FY_TR_META_CLUSTER ? r.b : 0;
        if (follow > nrec - i - 1)
            return -FY_ECORRUPT;
        const uint8_t *blk = r0 + i * 32;
        int rc = 0;
        if (r.type == FY_TR_META_CLOCK) {
            rc = vec_put(&t->blocks, blk, 32);
        } else if (r.type == FY_TR_META_ACTOR) {
            rc = vec_put(&t->all_act, blk, (1 + follow) * 32);
            if (!rc && !known(t, r.actor)) {
                rc = vec_put(&t->new_act, blk, (1 + follow) * 32);
                if (!rc)
                    rc = vec_put(&t->newids, &r.actor, sizeof r.actor);
            }
        } else if (r.type == FY_TR_META_CLUSTER) {
            rc = vec_put(&t->all_cl, blk, (1 + follow) * 32);
            if (!rc && r.actor > t->cl_seen)
                rc = vec_put(&t->new_cl, blk, (1 + follow) * 32);
            if (r.actor > t->cl_head)
                t->cl_head = r.actor;
        }
        if (rc)
            return rc;
        i += 1 + follow;
    }
    return 0;
}

/* Append to t->blocks one THREAD block with the events ring th recorded
 * since the last tick (nothing if there are none and none were lost), at
 * most max_events of them: the rest stay in the ring for the next drain
 * (t->more set), so one chunk never outgrows a file.  The reads are
 * bounded: a writer faster than us cannot keep the loop going beyond one
 * ring's worth. */
static int read_thread(tracer *t, unsigned th, uint32_t ring_events, uint64_t max_events)
{
    size_t at = t->blocks.n;
    fy_trace_rec m = {.ts_ns = fy_now_ns(), .type = FY_TR_META_THREAD, .thread = (uint16_t)th};
    int rc = vec_put(&t->blocks, &m, sizeof m);
    uint64_t lost = 0, nev = 0;
    for (uint32_t k = 0; !rc && k <= ring_events / READ_CHUNK + 1; k++) {
        size_t n, want = READ_CHUNK;
        uint64_t l;
        if (nev + want > max_events)
            want = (size_t)(max_events - nev);
        if (want == 0) {
            t->more = true;
            break;
        }
        rc = vec_reserve(&t->blocks, want * sizeof m);
        if (!rc)
            rc = fy_trace_read_since(t->s, th, &t->cursor[th],
                                     (fy_trace_rec *)(void *)(t->blocks.p + t->blocks.n),
                                     want, &n, &l);
        if (rc)
            break;
        t->blocks.n += n * sizeof m;
        lost += l;
        nev += n;
        if (n + l < want) /* the read reached the head */
            break;
    }
    if (lost == 0 && nev == 0) {
        t->blocks.n = at;
        return rc;
    }
    /* Even after an error: the cursor has moved past these. */
    m.a = lost;
    m.b = nev;
    memcpy(t->blocks.p + at, &m, sizeof m);
    t->lost += lost;
    t->events += nev;
    return rc;
}

static void append(tracer *t, const fy_trace_file_hdr *dh)
{
    size_t chunk = t->new_act.n + t->blocks.n;
    int rc = 0;
    if (t->fd < 0 || t->file_bytes == 0 || t->file_bytes + chunk > t->max_file) {
        if (t->file_bytes != 0 || t->fd < 0)
            rc = rotate(t);
        if (rc == 0) {
            fy_trace_file_hdr h = *dh;
            h.flags |= FY_TRACER_F_STREAM;
            rc = fy_fd_write_all(t->fd, &h, sizeof h);
            if (!rc)
                rc = fy_fd_write_all(t->fd, t->all_act.p, t->all_act.n);
            if (!rc)
                rc = fy_fd_write_all(t->fd, t->all_cl.p, t->all_cl.n);
            t->file_bytes += sizeof h + t->all_act.n + t->all_cl.n;
            t->new_cl.n = 0; /* all of them are in the fresh file */
            t->nids = 0;
            size_t na = 0;
            uint32_t *ids = malloc((t->all_act.n / 32 + 1) * sizeof *ids);
            if (ids) {
                for (size_t i = 0; i < t->all_act.n; i += 32) {
                    fy_trace_rec r;
                    memcpy(&r, t->all_act.p + i, 32);
                    ids[na++] = r.actor;
                    i += (size_t)r.b * 32;
                }
                remember(t, ids, na);
                free(ids);
            }
            t->new_act.n = 0;
            t->newids.n = 0;
        }
    }
    if (!rc)
        rc = fy_fd_write_all(t->fd, t->new_act.p, t->new_act.n);
    if (!rc)
        rc = fy_fd_write_all(t->fd, t->new_cl.p, t->new_cl.n);
    if (!rc)
        rc = fy_fd_write_all(t->fd, t->blocks.p, t->blocks.n);
    t->cl_seen = t->cl_head; /* written, or dropped with the chunk as events are */
    if (!rc) {
        t->file_bytes += t->new_act.n + t->new_cl.n + t->blocks.n;
        remember(t, (const uint32_t *)(void *)t->newids.p, t->newids.n / sizeof(uint32_t));
    } else if (t->write_errs++ == 0) {
        fy_klog(FY_LOG_WARN, "trace write failed", "file=%s err=%s action=\"drop this chunk, "
                "keep recording\"", t->path, fy_errname(rc));
    }
}

/* One tick: the dump's head into the memfd, the new events of every ring,
 * append them. */
static void drain(tracer *t)
{
    if (t->memfd < 0)
        return;
    if (ftruncate(t->memfd, 0) < 0 || lseek(t->memfd, 0, SEEK_SET) < 0)
        return;
    int rc = fy_trace_dump_head(t->s, t->memfd);
    off_t len = lseek(t->memfd, 0, SEEK_CUR);
    if (rc < 0 || len < (off_t)sizeof(fy_trace_file_hdr)) {
        if (t->write_errs++ == 0)
            fy_klog(FY_LOG_WARN, "trace dump failed", "call=fy_trace_dump_head err=%s "
                    "action=\"skip this tick\"", fy_errname(rc));
        return;
    }
    void *m = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, t->memfd, 0);
    if (m == MAP_FAILED)
        return;
    fy_trace_file_hdr h;
    t->more = false;
    if (split(t, m, (size_t)len, &h) == 0) {
        /* A chunk's events take at most half a file, shared by the rings:
         * a fresh file (header, actor table, one chunk) then stays within
         * the bound however late this drain runs. */
        uint64_t per = h.threads ? t->max_file / 2 / 32 / h.threads : 0;
        rc = 0;
        for (unsigned i = 0; i < h.threads && i < MAX_THREADS && !rc; i++)
            rc = read_thread(t, i, h.ring_events, per > 16 ? per : 16);
        if (rc && t->write_errs++ == 0)
            fy_klog(FY_LOG_WARN, "trace read failed", "call=fy_trace_read_since err=%s "
                    "action=\"write the threads read so far\"", fy_errname(rc));
        append(t, &h); /* their cursors moved: drop nothing we read */
    }
    munmap(m, (size_t)len);
}

/* ---- the actor ---------------------------------------------------------- */

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    tracer *t = state;
    if (m->type == FY_MSG_TIMER && m->u64[0] == TICK_TAG) {
        drain(t);
        (void)fy_timer_after(self, t->more ? 1 : t->period_ms, TICK_TAG);
    }
    return FY_MSG_DONE;
}

static void tracer_free(tracer *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->memfd >= 0)
        close(t->memfd);
    free(t->ids);
    free(t->all_act.p);
    free(t->new_act.p);
    free(t->blocks.p);
    free(t->newids.p);
    free(t->all_cl.p);
    free(t->new_cl.p);
    free(t);
}

static void dtor(void *state)
{
    tracer *t = state;
    /* The last events before the stop, a bounded number of chunks. */
    for (int i = 0; i < 64 && (i == 0 || t->more); i++)
        drain(t);
    fy_klog(FY_LOG_INFO, "trace closed", "file=%s events=%llu lost=%llu rotations=%llu "
            "bytes=%llu", t->path, (unsigned long long)t->events, (unsigned long long)t->lost,
            (unsigned long long)t->rotations, (unsigned long long)t->file_bytes);
    tracer_free(t);
}

int fy_tracer_new(fy_sched *s, const fy_tracer_opts *o, fy_actor **out, char *err,
                    size_t errcap)
{
    tracer *t = calloc(1, sizeof *t);
    int rc;
    if (!t)
        return -ENOMEM;
    t->s = s;
    t->fd = t->memfd = -1;
    if (strlen(o->path) >= sizeof t->path) {
        snprintf(err, errcap, "trace file name too long");
        free(t);
        return -ENAMETOOLONG;
    }
    snprintf(t->path, sizeof t->path, "%s", o->path);
    snprintf(t->path1, sizeof t->path1, "%s.1", o->path);
    uint64_t max = o->max_bytes ? o->max_bytes : FY_TRACER_DEFAULT_MAX;
    t->max_file = max / 2 > 4096 ? max / 2 : 4096;
    t->period_ms = o->period_ms ? o->period_ms : 100;
    t->memfd = memfd_create("ferry-trace", MFD_CLOEXEC);
    if (t->memfd < 0) {
        rc = -errno;
        snprintf(err, errcap, "memfd_create: %s", strerror(errno));
        goto fail;
    }
    /* A previous run's trace (maybe the one that crashed) becomes FILE.1. */
    if (access(t->path, F_OK) == 0 && rename(t->path, t->path1) < 0) {
        rc = -errno;
        snprintf(err, errcap, "rename %s to %s: %s", t->path, t->path1, strerror(errno));
        goto fail;
    }
    if ((rc = open_file(t)) < 0) {
        snprintf(err, errcap, "open %s: %s", t->path, strerror(-rc));
        goto fail;
    }
    char label[64];
    snprintf(label, sizeof label, "trace %s", o->path);
    fy_actor_opts ao = {.fn = handle, .dtor = dtor, .state = t, .kind = FY_KIND_TRACER,
                        .label = label};
    if ((rc = fy_actor_new(s, &ao, out)) < 0) {
        snprintf(err, errcap, "tracer actor: %s", fy_strerror(rc));
        goto fail;
    }
    if ((rc = fy_timer_after(*out, t->period_ms, TICK_TAG)) < 0) {
        snprintf(err, errcap, "tracer timer: %s", fy_strerror(rc));
        fy_actor_stop(*out); /* the dtor frees t */
        fy_actor_unref(*out);
        *out = NULL;
        return rc;
    }
    return 0;
fail:
    tracer_free(t);
    return rc;
}
