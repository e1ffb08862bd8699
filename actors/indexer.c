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
 */
#include <errno.h>
#include <stdlib.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "relay_int.h"

typedef struct indexer {
    const fy__chan *chan;
    fy_actor *self;
    fy_actor *writer;
    fy_idx *idx;
    bool failed_logged;
} indexer;

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    indexer *x = state;
    fy_idx_rec rec;
    int rc;

    (void)self;
    switch (m->type) {
    case FY_RM_RECS:
        if (x->idx && (rc = fy_idx_append(x->idx, m->ptr, m->u32)) < 0 && !x->failed_logged) {
            /* Look-ups past this point fail with FY_ENOSEQ; a restart rebuilds the index. */
            fy_klog(FY_LOG_ERROR, "fy_idx_append failed", "channel=%s n=%u err=%s "
                    "action=\"index lags until restart\"", x->chan->name, m->u32, fy_errname(rc));
            x->failed_logged = true;
        }
        free(m->ptr);
        break;
    case FY_RM_LOOKUP:
        rc = x->idx ? fy_idx_lookup(x->idx, m->u64[0], &rec) : -FY_ESHUTDOWN;
        if (rc < 0 && rc > -1000)
            rc = -FY_EINTERNAL;
        fy_actor_post(m->ptr, FY_RM_LOOKED, (uint32_t)-rc, rc ? 0 : rec.seg, rc ? 0 : rec.off,
                      NULL, NULL);
        fy_actor_unref(m->ptr);
        break;
    case FY_RM_TRIM:
        if (x->idx && (rc = fy_idx_trim(x->idx, m->u64[0])) < 0)
            fy_klog(FY_LOG_WARN, "fy_idx_trim failed", "channel=%s first_seq=%llu err=%s",
                    x->chan->name, (unsigned long long)m->u64[0], fy_errname(rc));
        break;
    case FY_RM_SHUTDOWN:
        if (x->idx) {
            if ((rc = fy_idx_sync(x->idx)) < 0)
                fy_klog(FY_LOG_WARN, "fy_idx_sync failed", "channel=%s err=%s "
                        "action=\"recovery rebuilds it\"", x->chan->name, fy_errname(rc));
            fy_idx_close(x->idx);
            x->idx = NULL;
        }
        fy_actor_post(x->writer, FY_RM_IDX_DONE, 0, 0, 0, NULL, NULL);
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
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = x, .kind = FY_KIND_INDEXER,
                       .label = chan->name};
    if ((rc = fy_actor_new(ctx->sched, &o, &x->self)) < 0) {
        fy_idx_close(idx);
        free(x);
        return rc;
    }
    *out = x->self;
    return 0;
}
