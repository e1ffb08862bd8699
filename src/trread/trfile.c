/*
 * trfile.c - the trace file reader (trfile.h).
 *
 * One pass over the records after the header: meta records build the actor
 * table, the clock and the loss counts; event records are collected with
 * their file position, then sorted by time so that a dump's per-thread
 * blocks and a stream's many small blocks become one timeline.  Every count
 * read from the file is checked against the records that are really there
 * before it is used, so a cut or garbled file ends in an error text, never
 * in a read past the end.
 */
#include "trread/trfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/analyzer.h"
#include "ferry/err.h"
#include "relay/kinds.h"

#define MAX_THREADS 4096 /* more thread indexes than any ferryd runs: a garbled file */

struct fy_trfile {
    fy_trace_file_hdr hdr;
    fy_trace_rec *ev;
    size_t nev;
    fy_trfile_actor *act;
    size_t nact;
    fy_trfile_cluster *cl;
    size_t ncl, capcl;
    uint64_t *lost; /* per thread */
    unsigned nthr;
    uint64_t clock_mono, clock_real;
    bool has_clock;
    char warn[160];
};

/* ---- names -------------------------------------------------------------- */

static const char *const type_names[] = {
    [FY_TR_SEND] = "send",         [FY_TR_TURN_BEGIN] = "turn_begin",
    [FY_TR_TURN_END] = "turn_end", [FY_TR_SCHED] = "sched",
    [FY_TR_IDLE] = "idle",         [FY_TR_IO] = "io",
    [FY_TR_BYTES] = "bytes",       [FY_TR_ACTOR_NEW] = "actor_new",
    [FY_TR_ACTOR_STOP] = "actor_stop", [FY_TR_PARK] = "park",
    [FY_TR_UNPARK] = "unpark",     [FY_TR_LAG] = "lag",
};

/* ferryd's kinds, from its one table (relay/kinds.h). */
#define KIND_NAME(name, num, str, scrape) [num] = str,
static const char *const kind_names[] = {FY_RELAY_KINDS(KIND_NAME)};
#undef KIND_NAME

const char *fy_trfile_type_name(uint16_t type, char *buf, size_t cap)
{
    if (type < sizeof type_names / sizeof *type_names && type_names[type])
        return type_names[type];
    snprintf(buf, cap, "type%u", (unsigned)type);
    return buf;
}

const char *fy_trfile_kind_name(uint16_t kind, char *buf, size_t cap)
{
    if (kind < sizeof kind_names / sizeof *kind_names && kind_names[kind])
        return kind_names[kind];
    snprintf(buf, cap, "kind%u", (unsigned)kind);
    return buf;
}

const char *fy_trfile_cluster_name(uint16_t ev, char *buf, size_t cap)
{
    static const char *const names[] = {[FY_TR_CL_LEADER] = "leader", [FY_TR_CL_ISR] = "isr",
                                        [FY_TR_CL_FAILOVER] = "failover",
                                        [FY_TR_CL_NOTE] = "note"};
    if (ev < sizeof names / sizeof *names && names[ev])
        return names[ev];
    snprintf(buf, cap, "cluster%u", (unsigned)ev);
    return buf;
}

int fy_trfile_kind_parse(const char *s)
{
    for (size_t k = 0; k < sizeof kind_names / sizeof *kind_names; k++)
        if (kind_names[k] && strcmp(s, kind_names[k]) == 0)
            return (int)k;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > 0xFFFF)
        return -EINVAL;
    return (int)v;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct ord_rec {
    fy_trace_rec r;
    uint64_t pos;
} ord_rec;

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cap)
        vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return rc;
}

static int cmp_ord(const void *x, const void *y)
{
    const ord_rec *a = x, *b = y;
    if (a->r.ts_ns != b->r.ts_ns)
        return a->r.ts_ns < b->r.ts_ns ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

typedef struct ord_act {
    fy_trfile_actor a;
    size_t pos;
} ord_act;

static int cmp_ord_act(const void *x, const void *y)
{
    const ord_act *a = x, *b = y;
    if (a->a.id != b->a.id)
        return a->a.id < b->a.id ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int cmp_act(const void *x, const void *y)
{
    const fy_trfile_actor *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int check_hdr(const uint8_t *p, size_t len, fy_trace_file_hdr *h, char *err, size_t cap)
{
    if (len < 8 || memcmp(p, FY_TRACE_MAGIC, 8) != 0) {
        if (len >= 8 || memcmp(p, FY_TRACE_MAGIC, len) != 0)
            return fail(err, cap, -FY_ECORRUPT,
                        "not a Ferry trace file: it does not start with \"" FY_TRACE_MAGIC "\"");
        return fail(err, cap, -FY_ETRUNC, "truncated: %zu bytes, the header needs 64", len);
    }
    if (len < sizeof *h)
        return fail(err, cap, -FY_ETRUNC, "truncated: %zu bytes, the header needs 64", len);
    memcpy(h, p, sizeof *h);
    if (h->version != FY_TRACE_VERSION)
        return fail(err, cap, -FY_ECORRUPT,
                    "trace format version %u, this ferry-trace reads version %u", h->version,
                    FY_TRACE_VERSION);
    if (h->rec_size != sizeof(fy_trace_rec))
        return fail(err, cap, -FY_ECORRUPT, "record size %u in the header, expected 32",
                    h->rec_size);
    if (h->hdr_size < sizeof *h || h->hdr_size > (1u << 20))
        return fail(err, cap, -FY_ECORRUPT, "header size %u is not plausible (64..1 MiB)",
                    h->hdr_size);
    if (h->hdr_size > len)
        return fail(err, cap, -FY_ETRUNC, "truncated: %zu bytes, the header says records start at %u",
                    len, h->hdr_size);
    return 0;
}

/* Grow *arr (of *cap elements of size sz) to hold at least need.  A NULL
 * array never has room (so the analyser sees it allocated). */
static int grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (*arr && need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * sz);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

static int add_actor(fy_trfile *f, size_t *cap, const fy_trace_rec *m, const uint8_t *label,
                     size_t avail)
{
    if (grow((void **)&f->act, cap, f->nact + 1, sizeof *f->act) < 0)
        return -ENOMEM;
    fy_trfile_actor *a = &f->act[f->nact++];
    memset(a, 0, sizeof *a);
    a->id = m->actor;
    a->kind = m->thread;
    a->created_ns = m->ts_ns;
    size_t len = m->a < avail ? (size_t)m->a : avail;
    if (len > sizeof a->label - 1)
        len = sizeof a->label - 1;
    memcpy(a->label, label, len);
    a->label[strnlen(a->label, len)] = 0;
    return 0;
}

static int add_cluster(fy_trfile *f, const fy_trace_rec *m, uint64_t pos, const uint8_t *text,
                       size_t avail)
{
    if (grow((void **)&f->cl, &f->capcl, f->ncl + 1, sizeof *f->cl) < 0)
        return -ENOMEM;
    fy_trfile_cluster *c = &f->cl[f->ncl++];
    memset(c, 0, sizeof *c);
    c->ts_ns = m->ts_ns;
    c->epoch = m->a;
    c->serial = m->actor;
    c->ev = m->thread;
    c->pos = pos;
    size_t len = avail < sizeof c->text - 1 ? avail : sizeof c->text - 1;
    memcpy(c->text, text, len);
    c->text[strnlen(c->text, len)] = 0;
    return 0;
}

static int note_thread(fy_trfile *f, unsigned t, uint64_t lost)
{
    if (t >= f->nthr) {
        uint64_t *p = realloc(f->lost, (t + 1) * sizeof *p);
        if (!p)
            return -ENOMEM;
        memset(p + f->nthr, 0, (t + 1 - f->nthr) * sizeof *p);
        f->lost = p;
        f->nthr = t + 1;
    }
    f->lost[t] += lost;
    return 0;
}

/* A meta record's own fields: the clock, loss counts, checks; *follow
 * gets the records it announces.  0, or fail()'s error. */
static int meta_rec(fy_trfile *f, const fy_trace_rec *m, uint64_t off, uint64_t *follow,
                    char *err, size_t cap)
{
    switch (m->type) {
    case FY_TR_META_CLOCK:
        f->clock_mono = m->ts_ns;
        f->clock_real = m->a;
        f->has_clock = true;
        break;
    case FY_TR_META_ACTOR:
        *follow = m->b;
        if (m->b > 64 || m->a > m->b * 32)
            return fail(err, cap, -FY_ECORRUPT,
                        "actor record at byte %llu: label of %llu bytes in %llu records",
                        (unsigned long long)off, (unsigned long long)m->a,
                        (unsigned long long)m->b);
        break;
    case FY_TR_META_CLUSTER:
        *follow = m->b;
        if (m->b > 64)
            return fail(err, cap, -FY_ECORRUPT, "cluster record at byte %llu: %llu text records",
                        (unsigned long long)off, (unsigned long long)m->b);
        break;
    case FY_TR_META_THREAD:
        *follow = m->b;
        if (m->thread >= MAX_THREADS)
            return fail(err, cap, -FY_ECORRUPT, "thread record at byte %llu: thread index %u",
                        (unsigned long long)off, m->thread);
        if (note_thread(f, m->thread, m->a) < 0)
            return -ENOMEM;
        break;
    default:
        break; /* a meta record of a later minor revision: one record, skipped */
    }
    return 0;
}

/* Walk the records; events go to *ev (with their position). */
static int walk(fy_trfile *f, const uint8_t *base, size_t nrec, unsigned flags, ord_rec **ev,
                size_t *evcap, char *err, size_t cap)
{
    size_t actcap = 0;
    const uint64_t hs = f->hdr.hdr_size;
    for (size_t i = 0; i < nrec;) {
        fy_trace_rec r;
        memcpy(&r, base + i * 32, 32);
        uint64_t off = hs + (uint64_t)i * 32;
        if (r.type < FY_TR_META) {
            if (grow((void **)ev, evcap, f->nev + 1, sizeof **ev) < 0)
                return -ENOMEM;
            (*ev)[f->nev].r = r;
            (*ev)[f->nev].pos = i;
            f->nev++;
            i++;
            continue;
        }
        uint64_t follow = 0;
        int rc = meta_rec(f, &r, off, &follow, err, cap);
        if (rc < 0)
            return rc;
        if (follow > nrec - i - 1) {
            if (!(flags & FY_TRFILE_PARTIAL))
                return fail(err, cap, -FY_ETRUNC,
                            "truncated: the %s record at byte %llu announces %llu records, "
                            "the file holds %zu more",
                            r.type == FY_TR_META_ACTOR     ? "actor"
                            : r.type == FY_TR_META_CLUSTER ? "cluster"
                                                           : "thread",
                            (unsigned long long)off, (unsigned long long)follow, nrec - i - 1);
            snprintf(f->warn, sizeof f->warn,
                     "file cut at byte %llu: %llu of %llu announced records present",
                     (unsigned long long)(hs + (uint64_t)nrec * 32),
                     (unsigned long long)(nrec - i - 1), (unsigned long long)follow);
            follow = nrec - i - 1;
            if (r.type == FY_TR_META_ACTOR || r.type == FY_TR_META_CLUSTER)
                break; /* a label or text cut short is no actor or event */
        }
        if (r.type == FY_TR_META_CLUSTER &&
            add_cluster(f, &r, i, base + (i + 1) * 32, (size_t)follow * 32) < 0)
            return -ENOMEM;
        if (r.type == FY_TR_META_ACTOR &&
            add_actor(f, &actcap, &r, base + (i + 1) * 32, (size_t)follow * 32) < 0)
            return -ENOMEM;
        if (r.type == FY_TR_META_THREAD) {
            /* The block's events: those of a valid block are events, not meta. */
            for (uint64_t k = 0; k < follow; k++) {
                fy_trace_rec e;
                memcpy(&e, base + (i + 1 + k) * 32, 32);
                if (e.type >= FY_TR_META)
                    return fail(err, cap, -FY_ECORRUPT,
                                "thread block at byte %llu: record %llu is a meta record",
                                (unsigned long long)off, (unsigned long long)k);
            }
            i += 1;
            continue; /* its events are taken by the loop as plain events */
        }
        i += 1 + (size_t)follow;
    }
    return 0;
}

static int cmp_cl_serial(const void *x, const void *y)
{
    const fy_trfile_cluster *a = x, *b = y;
    if (a->serial != b->serial)
        return a->serial < b->serial ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int cmp_cl_time(const void *x, const void *y)
{
    const fy_trfile_cluster *a = x, *b = y;
    if (a->ts_ns != b->ts_ns)
        return a->ts_ns < b->ts_ns ? -1 : 1;
    return a->serial < b->serial ? -1 : a->serial > b->serial;
}

/* Cluster events by time, each serial once: of a serial repeated (a head
 * written again), the one read last. */
static void finish_clusters(fy_trfile *f)
{
    if (f->ncl < 2)
        return;
    qsort(f->cl, f->ncl, sizeof *f->cl, cmp_cl_serial);
    size_t k = 0;
    for (size_t i = 0; i < f->ncl; i++) {
        if (i + 1 < f->ncl && f->cl[i + 1].serial == f->cl[i].serial)
            continue;
        f->cl[k++] = f->cl[i];
    }
    f->ncl = k;
    qsort(f->cl, f->ncl, sizeof *f->cl, cmp_cl_time);
}

static int finish(fy_trfile *f, ord_rec *ev)
{
    finish_clusters(f);
    FY_ANALYZER_ASSUME(ev || !f->nev); /* as in fy_trfile_parse: walk filled ev */
    if (f->nev)
        qsort(ev, f->nev, sizeof *ev, cmp_ord);
    f->ev = malloc((f->nev ? f->nev : 1) * sizeof *f->ev);
    if (!f->ev)
        return -ENOMEM;
    for (size_t i = 0; i < f->nev; i++)
        f->ev[i] = ev[i].r;
    /* Actors: by id; a repeated id (a streamed file repeats the table)
     * keeps the record that came last in the file. */
    if (f->nact) {
        ord_act *tmp = malloc(f->nact * sizeof *tmp);
        if (!tmp)
            return -ENOMEM;
        for (size_t i = 0; i < f->nact; i++) {
            tmp[i].a = f->act[i];
            tmp[i].pos = i;
        }
        qsort(tmp, f->nact, sizeof *tmp, cmp_ord_act);
        size_t k = 0;
        for (size_t i = 0; i < f->nact; i++) {
            if (i + 1 < f->nact && tmp[i + 1].a.id == tmp[i].a.id)
                continue;
            f->act[k++] = tmp[i].a;
        }
        f->nact = k;
        free(tmp);
    }
    return 0;
}

int fy_trfile_parse(const void *data, size_t len, unsigned flags, fy_trfile **out, char *err,
                    size_t errcap)
{
    const uint8_t *p = data;
    fy_trfile *f = calloc(1, sizeof *f);
    ord_rec *ev = NULL;
    size_t evcap = 0;
    int rc;

    if (errcap)
        err[0] = 0;
    if (!f)
        return -ENOMEM;
    if ((rc = check_hdr(p, len, &f->hdr, err, errcap)) < 0)
        goto out;
    size_t body = len - f->hdr.hdr_size;
    if (body % 32) {
        if (!(flags & FY_TRFILE_PARTIAL)) {
            rc = fail(err, errcap, -FY_ETRUNC,
                      "truncated: %zu bytes after the header is not a whole number of "
                      "32-byte records (the last one has %zu bytes)",
                      body, body % 32);
            goto out;
        }
        snprintf(f->warn, sizeof f->warn, "file cut inside a record: last %zu bytes ignored",
                 body % 32);
    }
    if ((rc = walk(f, p + f->hdr.hdr_size, body / 32, flags, &ev, &evcap, err, errcap)) < 0)
        goto out;
    /* False positive: walk's events are in ev; the analyser does not see fail() return < 0. */
    FY_ANALYZER_ASSUME(ev || !f->nev);
    if (!f->has_clock && f->hdr.mono_ns && f->hdr.real_ns) {
        f->clock_mono = f->hdr.mono_ns;
        f->clock_real = f->hdr.real_ns;
        f->has_clock = true;
    }
    rc = finish(f, ev);
out:
    free(ev);
    if (rc == -ENOMEM && errcap)
        snprintf(err, errcap, "out of memory reading %zu bytes of trace", len);
    if (rc < 0) {
        fy_trfile_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int fy_trfile_open(const char *path, unsigned flags, fy_trfile **out, char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errcap, -errno, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno ? errno : EINVAL;
        close(fd);
        return fail(err, errcap, -e, "%s is not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return fail(err, errcap, -ENOMEM, "out of memory for %zu bytes", len);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t k = read(fd, buf + got, len - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return fail(err, errcap, -e, "read %s: %s", path, strerror(e));
        }
        if (k == 0)
            break; /* shrank while we read: parse what we have */
        got += (size_t)k;
    }
    close(fd);
    int rc = fy_trfile_parse(buf, got, flags, out, err, errcap);
    free(buf);
    return rc;
}

void fy_trfile_free(fy_trfile *f)
{
    if (!f)
        return;
    free(f->ev);
    free(f->act);
    free(f->cl);
    free(f->lost);
    free(f);
}

/* ---- accessors ---------------------------------------------------------- */

const fy_trace_file_hdr *fy_trfile_hdr(const fy_trfile *f)
{
    return &f->hdr;
}

const fy_trace_rec *fy_trfile_events(const fy_trfile *f, size_t *n)
{
    *n = f->nev;
    return f->ev;
}

const fy_trfile_actor *fy_trfile_actors(const fy_trfile *f, size_t *n)
{
    *n = f->nact;
    return f->act;
}

const fy_trfile_actor *fy_trfile_actor_find(const fy_trfile *f, uint32_t id)
{
    fy_trfile_actor key = {.id = id};
    return f->nact ? bsearch(&key, f->act, f->nact, sizeof key, cmp_act) : NULL;
}

const fy_trfile_cluster *fy_trfile_clusters(const fy_trfile *f, size_t *n)
{
    *n = f->ncl;
    return f->cl;
}

uint64_t fy_trfile_lost(const fy_trfile *f)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < f->nthr; i++)
        t += f->lost[i];
    return t;
}

unsigned fy_trfile_threads(const fy_trfile *f)
{
    return f->nthr;
}

uint64_t fy_trfile_thread_lost(const fy_trfile *f, unsigned thread)
{
    return thread < f->nthr ? f->lost[thread] : 0;
}

uint64_t fy_trfile_real_ns(const fy_trfile *f, uint64_t mono_ns)
{
    if (!f->has_clock)
        return 0;
    return f->clock_real + (mono_ns - f->clock_mono);
}

const char *fy_trfile_warning(const fy_trfile *f)
{
    return f->warn;
}
