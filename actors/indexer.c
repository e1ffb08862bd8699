/*
 * indexer.c - one channel's index: seq -> (segment, offset, length, crc)
 * (the indexer actor).
 *
 * It owns the fy_idx half of the store.  The writer sends it the records of
 * every appended batch; forwarders ask it where a sequence number is when a
 * receiver starts from the beginning or resumes.  A look-up always comes
 * after the records it needs: the writer sent them before it answered the
 * forwarder's subscription, and the forwarder asks only after that answer.
 * Keeping the index on its own actor keeps the writer's turn to the append
 * alone and lets look-ups proceed while the writer is busy.
 *
 * When the index cannot be written (a full disk), the records it could not
 * take wait here, in order, and are offered again on a timer; look-ups
 * find them meanwhile, so receivers resume as before and nothing waits for
 * a restart.  The backlog is bounded by the log: a disk too full for the
 * index soon refuses the data too, and the writer stops the sender.
 *
 * It also scrubs the channel's sealed segments (fy_scrub) on a timer, a
 * step every SCRUB_TICK_MS at the configured rate, because receivers
 * catching up are sent the log with sendfile and nobody else would see a
 * frame damaged on disk.  It logs each damaged frame (the first few of a
 * pass) and tells the writer, which counts them for /metrics.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "msg.h"
#include "relay_int.h"

typedef struct indexer {
    const fy__chan *chan;
    fy_actor *self;
    fy_actor *writer;
    fy_idx *idx;
    fy_idx_rec *back; /* records fy_idx_append has not taken yet, in order */
    size_t nback, capback;
    bool retry_armed;
    const fy_conf *conf;
    fy_scrub *scrub;
    uint64_t pass_bytes, pass_damaged, pass_t0;
} indexer;

#define RETRY_MS 1000
#define SCRUB_TICK_MS 100
#define SCRUB_FIRST_S 60  /* the first pass, after a channel opens (at most) */
#define SCRUB_LOG_MAX 10  /* damaged frames logged one by one per pass */

/* Offer the backlog again; what is taken leaves it. */
static int drain_backlog(indexer *x)
{
    if (!x->nback)
        return 0;
    uint64_t first = x->back[0].seq;
    int rc = fy_idx_append(x->idx, x->back, x->nback);
    size_t took = (size_t)(fy_idx_next_seq(x->idx) - first);
    took = took > x->nback ? x->nback : took;
    memmove(x->back, x->back + took, (x->nback - took) * sizeof *x->back);
    x->nback -= took;
    if (!x->nback)
        fy_klog(FY_LOG_INFO, "index caught up", "channel=%s next_seq=%llu", x->chan->name,
                (unsigned long long)fy_idx_next_seq(x->idx));
    return rc;
}

/* Records the index did not take: keep them (in order) and retry later. */
static void keep_back(indexer *x, const fy_idx_rec *r, size_t n, int why)
{
    if (x->nback + n > x->capback) {
        size_t cap = x->capback ? x->capback : 256;
        while (cap < x->nback + n)
            cap *= 2;
        fy_idx_rec *nb = realloc(x->back, cap * sizeof *nb);
        if (!nb) {
            /* Look-ups past here fail with FY_ENOSEQ; opening rebuilds the index. */
            fy_klog(FY_LOG_ERROR, "malloc failed", "what=index_backlog channel=%s n=%zu "
                    "action=\"index lags until restart\"", x->chan->name, x->nback + n);
            return;
        }
        x->back = nb;
        x->capback = cap;
    }
    if (!x->nback)
        fy_klog(FY_LOG_ERROR, "fy_idx_append failed", "channel=%s next_seq=%llu err=%s "
                "action=\"keep the records, retry every %d ms\"", x->chan->name,
                (unsigned long long)r->seq, fy_errname(why), RETRY_MS);
    memcpy(x->back + x->nback, r, n * sizeof *r);
    x->nback += n;
    if (!x->retry_armed && fy_timer_after(x->self, RETRY_MS, FY__TM_RETRY) == 0)
        x->retry_armed = true;
}

static void on_recs(indexer *x, const fy_idx_rec *r, size_t n)
{
    if (!x->idx)
        return;
    if (x->nback && drain_backlog(x) < 0 && x->nback) {
        keep_back(x, r, n, 0);
        return;
    }
    uint64_t first = r[0].seq;
    int rc = fy_idx_append(x->idx, r, n);
    if (rc < 0) {
        size_t took = (size_t)(fy_idx_next_seq(x->idx) - first);
        took = took > n ? n : took;
        if (rc == -FY_ESEQ || rc == -EINVAL) /* not a full disk: a bug; say it once */
            fy_klog(FY_LOG_ERROR, "fy_idx_append refused", "channel=%s seq=%llu err=%s",
                    x->chan->name, (unsigned long long)first, fy_errname(rc));
        else
            keep_back(x, r + took, n - took, rc);
    }
}

/* ---- scrubbing ---------------------------------------------------------------- */

static void scrub_arm(indexer *x, uint64_t ms)
{
    (void)fy_timer_after(x->self, ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms, FY__TM_SCRUB);
}

static void scrub_hit(indexer *x, const fy_scrub_hit *h)
{
    if (++x->pass_damaged <= SCRUB_LOG_MAX)
        fy_klog(FY_LOG_ERROR, "damaged frame on disk", "channel=%s segment=%llu offset=%llu "
                "seq=%llu err=%s action=\"count it; receivers that reach it see the CRC fail\"",
                x->chan->name, (unsigned long long)h->seg, (unsigned long long)h->off,
                (unsigned long long)h->seq, fy_errname(h->err));
    fy__msg_damaged(x->writer, 1);
}

/* One step of the pass; the next is armed here. */
static void scrub_tick(indexer *x)
{
    int rc = 0;
    if (!x->scrub && (rc = fy_scrub_open(x->chan->dir, x->conf->max_payload, &x->scrub)) == 0)
        x->pass_t0 = fy_now_ns();
    uint64_t n = 0;
    fy_scrub_hit h = {0};
    if (rc == 0)
        rc = fy_scrub_step(x->scrub, x->conf->scrub_rate / (1000 / SCRUB_TICK_MS), &n, &h);
    x->pass_bytes += n;
    if (h.found)
        scrub_hit(x, &h);
    if (rc == 0) {
        scrub_arm(x, SCRUB_TICK_MS);
        return;
    }
    if (rc < 0)
        fy_klog(FY_LOG_WARN, "scrub failed", "channel=%s err=%s action=\"try again next pass\"",
                x->chan->name, fy_errname(rc));
    else
        fy_klog(x->pass_damaged ? FY_LOG_ERROR : FY_LOG_INFO, "scrub pass done",
                "channel=%s bytes=%llu damaged=%llu ms=%llu", x->chan->name,
                (unsigned long long)x->pass_bytes, (unsigned long long)x->pass_damaged,
                (unsigned long long)((fy_now_ns() - x->pass_t0) / 1000000));
    fy_scrub_close(x->scrub);
    x->scrub = NULL;
    x->pass_bytes = x->pass_damaged = 0;
    scrub_arm(x, x->conf->scrub_interval * 1000);
}

/* A look-up the backlog can answer (the index file does not have it yet). */
static bool backlog_find(const indexer *x, uint64_t seq, fy_idx_rec *out)
{
    if (!x->nback || seq < x->back[0].seq || seq >= x->back[0].seq + x->nback)
        return false;
    *out = x->back[seq - x->back[0].seq];
    return true;
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    indexer *x = state;
    fy_idx_rec rec;
    int rc;

    (void)self;
    switch (m->type) {
    case FY_RM_RECS:
        if (m->u32)
            on_recs(x, m->ptr, m->u32);
        free(m->ptr);
        break;
    case FY_MSG_TIMER:
        if (m->u64[0] == FY__TM_SCRUB) {
            if (x->idx) /* not once shut down */
                scrub_tick(x);
            break;
        }
        x->retry_armed = false;
        if (x->idx && drain_backlog(x) < 0 && x->nback &&
            fy_timer_after(x->self, RETRY_MS, FY__TM_RETRY) == 0)
            x->retry_armed = true;
        break;
    case FY_RM_LOOKUP:
        rc = !x->idx ? -FY_ESHUTDOWN : backlog_find(x, m->u64[0], &rec) ? 0
                     : fy_idx_lookup(x->idx, m->u64[0], &rec);
        if (rc < 0 && rc > -1000)
            rc = -FY_EINTERNAL;
        fy__msg_looked(m->ptr, (uint32_t)-rc, rc ? 0 : rec.seg, rc ? 0 : rec.off);
        fy_actor_unref(m->ptr);
        break;
    case FY_RM_TRIM:
        if (x->idx && (rc = fy_idx_trim(x->idx, m->u64[0])) < 0)
            fy_klog(FY_LOG_WARN, "fy_idx_trim failed", "channel=%s first_seq=%llu err=%s",
                    x->chan->name, (unsigned long long)m->u64[0], fy_errname(rc));
        break;
    case FY_RM_SHUTDOWN:
        if (x->idx) {
            if (x->nback && drain_backlog(x) < 0 && x->nback)
                fy_klog(FY_LOG_WARN, "index behind at close", "channel=%s records=%zu "
                        "action=\"recovery rebuilds them from the data\"", x->chan->name,
                        x->nback);
            if ((rc = fy_idx_sync(x->idx)) < 0)
                fy_klog(FY_LOG_WARN, "fy_idx_sync failed", "channel=%s err=%s "
                        "action=\"recovery rebuilds it\"", x->chan->name, fy_errname(rc));
            fy_idx_close(x->idx);
            x->idx = NULL;
        }
        fy__msg_idx_done(x->writer);
        fy_actor_stop(x->self);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    indexer *x = state;

    if (x->idx) {
        fy_idx_sync(x->idx);
        fy_idx_close(x->idx);
    }
    fy_scrub_close(x->scrub);
    free(x->back);
    free(x);
}

int fy__indexer_new(const fy__ctx *ctx, const fy__chan *chan, fy_idx *idx, fy_actor *writer,
                    fy_actor **out)
{
    indexer *x = calloc(1, sizeof *x);
    int rc;

    if (!x) {
        fy_idx_close(idx);
        return -ENOMEM;
    }
    x->chan = chan;
    x->idx = idx;
    x->writer = writer;
    x->conf = ctx->conf;
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = x, .kind = FY_KIND_INDEXER,
                       .label = chan->name};
    if ((rc = fy_actor_new(ctx->sched, &o, &x->self)) < 0) {
        fy_idx_close(idx);
        free(x);
        return rc;
    }
    if (ctx->conf->scrub_interval) {
        uint64_t s = ctx->conf->scrub_interval < SCRUB_FIRST_S ? ctx->conf->scrub_interval
                                                               : SCRUB_FIRST_S;
        scrub_arm(x, s * 1000);
    }
    *out = x->self;
    return 0;
}
