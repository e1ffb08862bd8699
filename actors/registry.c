/*
 * registry.c - channel name -> channel (the registry actor).
 *
 * The one place that knows every channel.  On the first request for a name
 * it checks the name, creates DATA/channels/<name>, opens the store
 * (recovery: cut a torn tail, bring the index in line; the figures are
 * logged) and starts the channel's file-writer and indexer.  Channel
 * records are immutable once published, so sessions and forwarders read
 * them without asking again.  Recovery runs on this actor: it only reads
 * data past the last good index record, so it is short, and it keeps the
 * creation of a channel strictly ordered before its first use.
 *
 * Shutdown: after every session is gone the acceptor sends FY_RM_SHUTDOWN;
 * the registry passes it to every writer, counts their FY_RM_WRITER_DONE
 * and then tells the main thread through the done eventfd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "relay/stats.h"
#include "relay_int.h"

typedef struct registry {
    const fy__ctx *ctx;
    fy_actor *self;
    fy__chan **chans;
    size_t n, cap;
    uint32_t next_id;
    bool shutting;
    size_t pending; /* writers still shutting down */
} registry;

static int open_chan(registry *r, const char *name, fy__chan **out)
{
    const fy_conf *c = r->ctx->conf;
    fy__chan *ch;
    fy_log *log;
    fy_idx *idx;
    fy_recovery rep = {0};
    int rc;

    if ((rc = fy_name_check(name, strlen(name))) < 0)
        return rc;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        fy__chan **nc = realloc(r->chans, cap * sizeof *nc);
        if (!nc)
            return -ENOMEM;
        r->chans = nc;
        r->cap = cap;
    }
    if (!(ch = calloc(1, sizeof *ch)))
        return -ENOMEM;
    snprintf(ch->name, sizeof ch->name, "%s", name);
    snprintf(ch->dir, sizeof ch->dir, "%s/%s", r->ctx->chan_root, name);
    if (mkdir(ch->dir, 0750) != 0 && errno != EEXIST) {
        rc = -errno;
        fy_klog(FY_LOG_ERROR, "mkdir failed", "path=%s err=%s action=\"refuse channel\"", ch->dir,
                fy_errname(rc));
        free(ch);
        return rc;
    }
    fy_store_opts so = {.segment_bytes = c->segment_bytes, .max_payload = c->max_payload,
                        .retain_bytes = c->retain_bytes, .retain_secs = c->retain_age};
    uint64_t t0 = fy_now_ns();
    if ((rc = fy_store_open(ch->dir, &so, &log, &idx, &rep)) < 0) {
        fy_klog(FY_LOG_ERROR, "fy_store_open failed", "dir=%s err=%s action=\"refuse channel\"",
                ch->dir, fy_errname(rc));
        free(ch);
        return rc;
    }
    fy_klog(FY_LOG_INFO, "channel opened",
            "channel=%s dir=%s segments=%llu frames=%llu first_seq=%llu next_seq=%llu "
            "truncated_bytes=%llu index_dropped=%llu index_added=%llu scanned_bytes=%llu ms=%.1f",
            name, ch->dir, (unsigned long long)rep.segments, (unsigned long long)rep.frames,
            (unsigned long long)rep.first_seq, (unsigned long long)rep.next_seq,
            (unsigned long long)rep.truncated_bytes, (unsigned long long)rep.index_dropped,
            (unsigned long long)rep.index_added, (unsigned long long)rep.scanned_bytes,
            (double)(fy_now_ns() - t0) / 1e6);
    ch->id = ++r->next_id;
    if ((rc = fy__writer_new(r->ctx, ch, log, idx, &ch->writer, &ch->indexer)) < 0) {
        fy_klog(FY_LOG_ERROR, "cannot start channel actors", "channel=%s err=%s", name,
                fy_errname(rc));
        free(ch);
        return rc;
    }
    r->chans[r->n++] = ch;
    *out = ch;
    return 0;
}

static void on_get(registry *r, fy__chan_req *q)
{
    fy__chan *ch = NULL;
    int rc = 0;

    for (size_t i = 0; i < r->n && !ch; i++)
        if (strcmp(r->chans[i]->name, q->name) == 0)
            ch = r->chans[i];
    if (!ch)
        rc = r->shutting ? -FY_ESHUTDOWN : open_chan(r, q->name, &ch);
    if (rc < 0 && rc > -1000)
        rc = -FY_EINTERNAL; /* errno values are not wire codes */
    fy_actor_post(q->reply, FY_RM_CHAN, (uint32_t)-rc, 0, 0, rc < 0 ? NULL : ch, NULL);
    fy_actor_unref(q->reply);
    free(q);
}

static void done(registry *r)
{
    uint64_t one = 1;

    fy_klog(FY_LOG_INFO, "channels closed", "channels=%zu", r->n);
    if (write(r->ctx->done_fd, &one, sizeof one) < 0)
        fy_klog(FY_LOG_ERROR, "write failed", "fd=done err=%s", fy_errname(-errno));
    fy_actor_stop(r->self);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    registry *r = state;

    (void)self;
    switch (m->type) {
    case FY_RM_CHAN_GET:
        on_get(r, m->ptr);
        break;
    case FY_RM_SHUTDOWN:
        if (r->shutting)
            break;
        r->shutting = true;
        r->pending = r->n;
        for (size_t i = 0; i < r->n; i++)
            fy_actor_post(r->chans[i]->writer, FY_RM_SHUTDOWN, 0, 0, 0, NULL, NULL);
        if (!r->pending)
            done(r);
        break;
    case FY_STATS_REQ: {
        fy_stats_rec rec = {.actor = fy_actor_id(r->self), .kind = FY_KIND_REGISTRY};
        for (size_t i = 0; i < r->n; i++)
            rec.fanout += (uint32_t)fy_stats_pass(m, r->chans[i]->writer);
        rec.depth = fy_actor_depth(r->self);
        fy_stats_answer(r->ctx->pool, r->ctx->metrics, m, &rec);
        break;
    }
    case FY_RM_DRAIN_CUT: /* to every channel's receivers (writers pass it on) */
        for (size_t i = 0; i < r->n; i++)
            fy_actor_post(r->chans[i]->writer, FY_RM_DRAIN_CUT, 0, 0, 0, NULL, NULL);
        break;
    case FY_RM_WRITER_DONE:
        if (r->pending && --r->pending == 0)
            done(r);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

int fy__registry_new(const fy__ctx *ctx, fy_actor **out, void **state)
{
    registry *r = calloc(1, sizeof *r);
    int rc;

    if (!r)
        return -ENOMEM;
    r->ctx = ctx;
    fy_actor_opts o = {.fn = handle, .dtor = NULL, .state = r, .kind = FY_KIND_REGISTRY,
                       .label = "registry"};
    if ((rc = fy_actor_new(ctx->sched, &o, &r->self)) < 0) {
        free(r);
        return rc;
    }
    *out = r->self;
    *state = r;
    return 0;
}

void fy__registry_cleanup(void *state)
{
    registry *r = state;

    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        fy_actor_unref(r->chans[i]->writer);
        fy_actor_unref(r->chans[i]->indexer);
        free(r->chans[i]);
    }
    free(r->chans);
    free(r);
}
