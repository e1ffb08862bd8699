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
 * Channel lifetime (docs/architecture.md): a channel is opened on demand,
 * within --max-channels, and closed when its writer has had no user for
 * --channel-idle: the writer says CHAN_IDLE, the registry marks the slot
 * closing and answers CLOSE; the writer either closes (sync, index, log,
 * WRITER_DONE) or, when a user came meanwhile, answers CHAN_KEEP.  A
 * request for a closing channel waits in its slot and is answered after
 * WRITER_DONE (by reopening it, recovery included) or CHAN_KEEP, so one
 * channel directory never has two writers.  Every channel handed out is
 * first announced to its writer (LEASE, with the session), so a writer
 * never closes under a session that is about to attach or subscribe.
 *
 * At the limit a request makes room (issue 21, defect 3): the writer
 * says CHAN_UNUSED when its last user leaves, and the registry closes the
 * least recently used such channel at once (CLOSE, as for an idle one)
 * while the request waits for the room (the `room` queue), so the limit
 * counts channels in use.  Only when no channel is unused and none is
 * being closed for room is a request refused (FY_ELIMIT; no directory is
 * created for it).  A channel whose log never held a frame leaves no
 * directory behind when it closes (remove_empty_dir).
 *
 * Receivers do not create channels (issue 20): a receiver that said
 * FY_HELLO_F_WAIT, asking for a name with no directory and no open
 * channel, gets CHAN(FY_ENOCHAN) at once and waits in the `named` list,
 * with nothing made on disk; the open that a sender causes answers it.
 * Older receivers get the channel opened as before (its directory goes
 * again at the close if nothing was stored), and so does every receiver of
 * an edge relay, whose channels come from the upstream.
 *
 * Shutdown: after every session is gone the acceptor sends FY_RM_SHUTDOWN;
 * the registry passes it to every writer, counts their FY_RM_WRITER_DONE
 * and then tells the main thread through the done eventfd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/analyzer.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "relay/stats.h"
#include "msg.h"
#include "query.h"
#include "relay_int.h"

/* The registry's own view of a channel (the fy__chan it points to is what
 * others see, and does not change). */
typedef struct slot {
    fy__chan *ch;
    bool closing;         /* CLOSE sent: requests wait below */
    fy__chan_req **wait;  /* requests that came while closing */
    size_t nwait, capwait;
    fy__chan_req *drop;   /* `ferry rm CHANNEL` waiting for the close (query.h) */
    bool unused;          /* the writer said CHAN_UNUSED and no one got it since */
    bool evict;           /* closing to make room (counted in registry.evicting) */
    uint64_t unused_ns;   /* when it said so: the least recent goes first */
} slot;

typedef struct registry {
    const fy__ctx *ctx;
    fy_actor *self;
    slot *slots;
    size_t n, cap;
    uint32_t next_id;
    bool shutting;
    size_t pending; /* writers still shutting down */
    fy__chan_req **room;  /* requests waiting for a channel to close at the limit */
    size_t nroom, caproom;
    size_t evicting;      /* channels closing to make room */
    fy__chan_req **named; /* receivers waiting for their channel to be created */
    size_t nnamed, capnamed;
    uint64_t opened, closed, refused, evicted;
    /* figures of the channels closed so far, so /metrics stays monotonic */
    uint64_t gone_in, gone_frames_in, gone_out, gone_frames_out;
} registry;

static slot *find_name(registry *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->slots[i].ch->name, name) == 0)
            return &r->slots[i];
    return NULL;
}

static slot *find_chan(registry *r, const fy__chan *ch)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->slots[i].ch == ch)
            return &r->slots[i];
    return NULL;
}

/* A new epoch of ch's log, which opens at next_seq (forwarders tell
 * receivers ahead of the log by it: docs/reliability.md).  A file that
 * cannot be written costs only the history: the epoch holds for this run. */
static void begin_epoch(fy__chan *ch, uint64_t next_seq)
{
    /* --cluster: the epochs are the cluster's, added by the cluster's rules
     * (chan_epochs.c), never one of our own at an opening. */
    int rc = ch->ep_cluster ? fy_epochs_load(ch->dir, &ch->epochs)
                            : fy_epochs_begin(ch->dir, next_seq, &ch->epochs);
    if (rc < 0)
        fy_klog(FY_LOG_WARN, "epochs file", "channel=%s dir=%s err=%s action=\"%s\"", ch->name,
                ch->dir, fy_errname(rc), rc == -FY_ECORRUPT ? "older epochs dropped, file rewritten"
                                                            : "epoch kept in memory only");
}

/* The recovery's figures and the new epoch of a channel just opened. */
static void log_opened(const fy__chan *ch, const fy_recovery *rep, double ms, size_t open)
{
    fy_klog(FY_LOG_INFO, "channel opened",
            "channel=%s dir=%s segments=%llu frames=%llu first_seq=%llu next_seq=%llu "
            "truncated_bytes=%llu index_dropped=%llu index_added=%llu scanned_bytes=%llu ms=%.1f "
            "open=%zu epoch=%016llx",
            ch->name, ch->dir, (unsigned long long)rep->segments, (unsigned long long)rep->frames,
            (unsigned long long)rep->first_seq, (unsigned long long)rep->next_seq,
            (unsigned long long)rep->truncated_bytes, (unsigned long long)rep->index_dropped,
            (unsigned long long)rep->index_added, (unsigned long long)rep->scanned_bytes, ms, open,
            (unsigned long long)fy__chan_epoch_cur(ch).id);
}

static void reply(fy__chan_req *q, fy__chan *ch, int rc);

/* ---- receivers waiting for a channel to be created --------------------------- */

/* Does DATA/channels/name exist?  (Anything but a clear "no" counts as yes:
 * the open then says what is wrong.) */
static bool has_dir(const registry *r, const char *name)
{
    char path[sizeof r->ctx->chan_root + FY_NAME_MAX + 2];
    struct stat sb;

    snprintf(path, sizeof path, "%s/%s", r->ctx->chan_root, name);
    return stat(path, &sb) == 0 || errno != ENOENT;
}

/* Drop the waiting receivers whose session has ended (the client left). */
static void sweep_named(registry *r)
{
    for (size_t i = 0; i < r->nnamed;) {
        if (fy_actor_stopped(r->named[i]->reply)) {
            fy_actor_unref(r->named[i]->reply);
            free(r->named[i]);
            r->named[i] = r->named[--r->nnamed];
        } else {
            i++;
        }
    }
}

/* q waits for its channel: told FY_ENOCHAN now, answered by wake_named. */
static void park_named(registry *r, fy__chan_req *q)
{
    int rc = fy_name_check(q->name, strlen(q->name));

    if (rc < 0) {
        reply(q, NULL, rc);
        return;
    }
    sweep_named(r); /* keeps the list to the receivers still connected */
    if (r->nnamed == r->capnamed) {
        size_t cap = r->capnamed ? 2 * r->capnamed : 8;
        fy__chan_req **nq = realloc(r->named, cap * sizeof *nq);
        if (!nq) {
            reply(q, NULL, -ENOMEM);
            return;
        }
        r->named = nq;
        r->capnamed = cap;
    }
    r->named[r->nnamed++] = q;
    fy__msg_chan(q->reply, FY_ENOCHAN, NULL);
}

/* ch has just opened: the receivers waiting for its name get it. */
static void wake_named(registry *r, fy__chan *ch)
{
    for (size_t i = 0; i < r->nnamed;) {
        fy__chan_req *q = r->named[i];
        if (strcmp(q->name, ch->name) == 0) {
            r->named[i] = r->named[--r->nnamed];
            reply(q, ch, 0);
        } else {
            i++;
        }
    }
}

/* max-channels reached and no room coming: -FY_ELIMIT, logged (the first
 * and every 1000th at warn). */
static int refuse_limit(registry *r, const char *name)
{
    r->refused++;
    fy_klog(r->refused == 1 || r->refused % 1000 == 0 ? FY_LOG_WARN : FY_LOG_DEBUG,
            "channel refused", "channel=%s limit=max-channels value=%llu open=%zu "
            "refused_total=%llu action=\"error frame FY_ELIMIT\"", name,
            (unsigned long long)r->ctx->conf->max_channels, r->n,
            (unsigned long long)r->refused);
    return -FY_ELIMIT;
}

/* Open name: check it, check the limit, then (only then) create its
 * directory, recover the store and start writer + indexer.  0 with *out,
 * or -FY_ENAME / -FY_ELIMIT / -errno / -FY_E*. */
static int open_chan(registry *r, const char *name, fy__chan **out)
{
    const fy_conf *c = r->ctx->conf;
    fy__chan *ch;
    fy_log *log;
    fy_idx *idx;
    fy_recovery rep = {0};
    bool made = false;
    int rc;

    if ((rc = fy_name_check(name, strlen(name))) != 0)
        return rc < 0 ? rc : -FY_ENAME;
    if (r->n >= c->max_channels)
        return refuse_limit(r, name);
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        slot *ns = realloc(r->slots, cap * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        r->slots = ns;
        r->cap = cap;
    }
    if (!(ch = calloc(1, sizeof *ch)))
        return -ENOMEM;
    fy__chan_epochs_init(ch, r->ctx->member != NULL);
    snprintf(ch->name, sizeof ch->name, "%s", name);
    snprintf(ch->dir, sizeof ch->dir, "%s/%s", r->ctx->chan_root, name);
    if (mkdir(ch->dir, 0750) == 0) {
        made = true;
    } else if (errno != EEXIST) {
        rc = -errno;
        /* False positive: mkdir() failed, so errno is set and rc < 0. */
        FY_ANALYZER_ASSUME(rc < 0);
        fy_klog(FY_LOG_ERROR, "mkdir failed", "path=%s err=%s action=\"refuse channel\"", ch->dir,
                fy_errname(rc));
        fy__chan_free(ch);
        return rc;
    }
    fy_store_opts so = {.segment_bytes = c->segment_bytes, .max_payload = c->max_payload,
                        .retain_bytes = c->retain_bytes, .retain_secs = c->retain_age,
                        .buffered = c->write_mode == FY_WRITE_BUFFERED};
    uint64_t t0 = fy_now_ns();
    if ((rc = fy_store_open(ch->dir, &so, &log, &idx, &rep)) < 0) {
        fy_klog(FY_LOG_ERROR, "fy_store_open failed", "dir=%s err=%s action=\"refuse channel\"",
                ch->dir, fy_errname(rc));
        goto fail;
    }
    begin_epoch(ch, rep.next_seq);
    log_opened(ch, &rep, (double)(fy_now_ns() - t0) / 1e6, r->n + 1);
    ch->id = ++r->next_id;
    if ((rc = fy__writer_new(r->ctx, ch, log, idx, &ch->writer, &ch->indexer)) < 0) {
        fy_klog(FY_LOG_ERROR, "cannot start channel actors", "channel=%s err=%s", name,
                fy_errname(rc));
        goto fail;
    }
    r->slots[r->n++] = (slot){.ch = ch};
    r->opened++;
    *out = ch;
    wake_named(r, ch);
    return 0;
fail:
    /* A directory made for nothing would outlive the refusal: remove it if
     * it is still empty (rmdir fails otherwise, which is what we want). */
    if (made)
        (void)rmdir(ch->dir);
    fy__chan_free(ch);
    return rc;
}

/* Answer q: the channel (after announcing the session to its writer) or
 * the error rc (negative).  Frees q. */
static void reply(fy__chan_req *q, fy__chan *ch, int rc)
{
    if (rc < 0 && rc > -1000)
        rc = -FY_EINTERNAL; /* errno values are not wire codes */
    if (rc == 0) {
        /* Before CHAN: the writer hears of the session before anything the
         * session sends it, and before any CLOSE the registry sends later. */
        fy_actor *lease = fy_actor_ref(q->reply);
        if (fy__msg_lease(ch->writer, lease) < 0)
            fy_actor_unref(lease);
    }
    fy__msg_chan(q->reply, (uint32_t)-rc, rc < 0 ? NULL : ch);
    fy_actor_unref(q->reply);
    free(q);
}

/* ---- room at the limit ---------------------------------------------------------- */

/* The unused channel whose last user left longest ago, or NULL. */
static slot *lru_unused(registry *r)
{
    slot *best = NULL;

    for (size_t i = 0; i < r->n; i++) {
        slot *s = &r->slots[i];
        if (s->unused && !s->closing && (!best || s->unused_ns < best->unused_ns))
            best = s;
    }
    return best;
}

/* q waits for room: close as many unused channels as requests wait (the
 * least recently used first); requests no close will make room for are
 * refused, the newest first. */
static void want_room(registry *r, fy__chan_req *q)
{
    if (r->nroom == r->caproom) {
        size_t cap = r->caproom ? 2 * r->caproom : 8;
        fy__chan_req **nq = realloc(r->room, cap * sizeof *nq);
        if (!nq) {
            reply(q, NULL, -ENOMEM);
            return;
        }
        r->room = nq;
        r->caproom = cap;
    }
    r->room[r->nroom++] = q;
    /* Room is coming from every channel closing for room, and from every
     * channel closing for idleness that no request waits to reopen. */
    size_t coming = r->evicting;
    for (size_t i = 0; i < r->n; i++)
        coming += r->slots[i].closing && !r->slots[i].evict && !r->slots[i].nwait;
    slot *v;
    while (coming < r->nroom && (v = lru_unused(r))) {
        v->closing = v->evict = true;
        v->unused = false;
        r->evicting++;
        coming++;
        r->evicted++;
        fy_klog(FY_LOG_DEBUG, "channel closed for room", "channel=%s for=%s limit=max-channels "
                "value=%llu unused_ms=%llu evicted_total=%llu", v->ch->name, q->name,
                (unsigned long long)r->ctx->conf->max_channels,
                (unsigned long long)((fy_now_ns() - v->unused_ns) / 1000000),
                (unsigned long long)r->evicted);
        fy__msg_close(v->ch->writer);
    }
    while (r->nroom > coming) {
        fy__chan_req *last = r->room[--r->nroom];
        reply(last, NULL, refuse_limit(r, last->name));
    }
}

static void on_get(registry *r, fy__chan_req *q);

/* A slot closed or was kept: the requests waiting for room ask again. */
static void retry_room(registry *r)
{
    fy__chan_req **q = r->room;
    size_t n = r->nroom;

    if (!n)
        return;
    r->room = NULL;
    r->nroom = r->caproom = 0;
    for (size_t i = 0; i < n; i++)
        on_get(r, q[i]);
    free(q);
}

/* Remove the directory of a channel whose log never held a frame: only
 * the files the store makes there (segments, the epochs file), then the
 * directory, which stays when anything else is in it. */
static void remove_empty_dir(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int removed = 0;

    if (!d)
        return;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        bool seg = len == 24 && strspn(e->d_name, "0123456789") == 20 &&
                   (strcmp(e->d_name + 20, ".log") == 0 || strcmp(e->d_name + 20, ".idx") == 0);
        if ((seg || strcmp(e->d_name, "epochs") == 0) && unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    int rc = rmdir(dir) < 0 ? -errno : 0;
    fy_klog(rc < 0 ? FY_LOG_WARN : FY_LOG_INFO, "empty channel removed", "channel=%s dir=%s "
            "files=%d err=%s", name, dir, removed, rc < 0 ? fy_errname(rc) : "none");
}

static void on_unused(registry *r, const fy__chan *ch)
{
    slot *s = find_chan(r, ch);

    if (s && !s->closing) {
        s->unused = true;
        s->unused_ns = fy_now_ns();
    }
}

/* ---- requests ------------------------------------------------------------------- */

static void on_get(registry *r, fy__chan_req *q)
{
    slot *s = find_name(r, q->name);
    fy__chan *ch = NULL;
    int rc;

    if (s && s->closing) {
        if (s->nwait == s->capwait) {
            size_t cap = s->capwait ? 2 * s->capwait : 4;
            fy__chan_req **nw = realloc(s->wait, cap * sizeof *nw);
            if (!nw) {
                reply(q, NULL, -ENOMEM);
                return;
            }
            s->wait = nw;
            s->capwait = cap;
        }
        s->wait[s->nwait++] = q; /* answered at WRITER_DONE or CHAN_KEEP */
        return;
    }
    if (r->shutting) { /* (no session is left by then; a writer may have stopped) */
        reply(q, NULL, -FY_ESHUTDOWN);
    } else if (s) {
        s->unused = false;
        reply(q, s->ch, 0);
    } else if (q->wait && !r->ctx->conf->upstream[0] && !has_dir(r, q->name)) {
        park_named(r, q);
    } else if (r->n >= r->ctx->conf->max_channels &&
               fy_name_check(q->name, strlen(q->name)) == 0) {
        want_room(r, q);
    } else if ((rc = open_chan(r, q->name, &ch)) < 0 || !ch) {
        reply(q, NULL, rc < 0 ? rc : -FY_EINTERNAL);
    } else {
        reply(q, ch, 0);
    }
}

/* `ferry rm CHANNEL`: a channel no writer has open is deleted now; an open
 * one is closed first the way an idle one is (CLOSE), which its writer
 * refuses while it has a user (CHAN_KEEP: refused) and otherwise does
 * (WRITER_DONE: deleted). */
static void on_drop(registry *r, fy__chan_req *q)
{
    slot *s = find_name(r, q->name);

    if (r->shutting)
        fy__query_drop_refuse(r->ctx, q, FY_ESHUTDOWN, "the relay is shutting down");
    else if (!s)
        fy__query_drop_now(r->ctx, q);
    else if (s->closing)
        fy__query_drop_refuse(r->ctx, q, FY_EINUSE, "it is closing or being deleted: try again");
    else {
        s->drop = q;
        s->closing = true;
        fy__msg_close(s->ch->writer);
    }
}

static void done(registry *r)
{
    uint64_t one = 1;

    fy_klog(FY_LOG_INFO, "channels closed", "opened=%llu closed_idle=%llu refused=%llu "
            "closed_for_room=%llu", (unsigned long long)r->opened, (unsigned long long)r->closed,
            (unsigned long long)r->refused, (unsigned long long)r->evicted);
    if (write(r->ctx->done_fd, &one, sizeof one) < 0)
        fy_klog(FY_LOG_ERROR, "write failed", "fd=done err=%s", fy_errname(-errno));
    fy_actor_stop(r->self);
}

/* A writer asks to close its idle channel: from now on requests for it
 * wait, and the writer gets the last word (it may have a user by now). */
static void on_idle(registry *r, const fy__chan *ch)
{
    slot *s = find_chan(r, ch);

    if (!s || s->closing || r->shutting) /* shutting: SHUTDOWN closes it anyway */
        return;
    s->closing = true;
    fy__msg_close(s->ch->writer);
}

static void on_keep(registry *r, const fy__chan *ch)
{
    slot *s = find_chan(r, ch);

    if (!s)
        return;
    s->closing = false;
    if (s->drop) { /* the writer has a sender, receivers or a session about to be one */
        fy__query_drop_refuse(r->ctx, s->drop, FY_EINUSE, "a sender or receivers are connected");
        s->drop = NULL;
    }
    if (s->evict) {
        s->evict = false;
        r->evicting--;
    }
    for (size_t i = 0; i < s->nwait; i++)
        reply(s->wait[i], r->shutting ? NULL : s->ch, r->shutting ? -FY_ESHUTDOWN : 0);
    s->nwait = 0;
    if (!r->shutting)
        retry_room(r); /* another channel may be unused by now */
}

/* A writer has closed (idle or shutdown): forget the channel, then answer
 * the requests that waited for the close by opening it again. */
static void on_writer_done(registry *r, const fy_msg *m)
{
    slot *s = find_chan(r, m->ptr);

    if (!s)
        return;
    fy__chan *ch = s->ch;
    fy__chan_req **wait = s->wait, *drop = s->drop;
    size_t nwait = s->nwait;
    char name[FY_NAME_MAX + 1];

    snprintf(name, sizeof name, "%s", ch->name);
    r->gone_in += m->u64[0];
    r->gone_frames_in += m->u64[1];
    if (s->evict)
        r->evicting--;
    *s = r->slots[--r->n];
    /* The vacated last slot holds nothing (s itself when it was the last):
     * its wait array is freed below. */
    memset(&r->slots[r->n], 0, sizeof r->slots[0]);
    if (m->u32) /* before a waiting request opens it again */
        remove_empty_dir(ch->dir, name);
    /* Both have stopped (the indexer before the writer's IDX_DONE): these
     * are the last references the registry holds. */
    fy_actor_unref(ch->writer);
    fy_actor_unref(ch->indexer);
    fy__chan_free(ch);
    if (r->shutting) {
        if (drop)
            fy__query_drop_refuse(r->ctx, drop, FY_ESHUTDOWN, "the relay is shutting down");
        for (size_t i = 0; i < nwait; i++)
            reply(wait[i], NULL, -FY_ESHUTDOWN);
        free(wait);
        if (r->pending && --r->pending == 0)
            done(r);
        return;
    }
    r->closed++;
    if (drop) /* closed for `ferry rm`: before a waiting session reopens it (empty) */
        fy__query_drop_now(r->ctx, drop);
    if (nwait) {
        fy__chan *nch = NULL;
        int rc = open_chan(r, name, &nch);
        fy_klog(rc < 0 ? FY_LOG_ERROR : FY_LOG_INFO, "channel reopened", "channel=%s waiting=%zu "
                "err=%s", name, nwait, rc < 0 ? fy_errname(rc) : "none");
        for (size_t i = 0; i < nwait; i++)
            reply(wait[i], nch, rc);
    }
    free(wait);
    retry_room(r);
}

static void on_shutdown(registry *r)
{
    if (r->shutting)
        return;
    r->shutting = true;
    for (size_t i = 0; i < r->nroom; i++)
        reply(r->room[i], NULL, -FY_ESHUTDOWN);
    r->nroom = 0;
    for (size_t i = 0; i < r->nnamed; i++)
        reply(r->named[i], NULL, -FY_ESHUTDOWN);
    r->nnamed = 0;
    /* Closing channels too: each slot ends in exactly one WRITER_DONE. */
    r->pending = r->n;
    for (size_t i = 0; i < r->n; i++)
        fy__msg_shutdown(r->slots[i].ch->writer);
    if (!r->pending)
        done(r);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    registry *r = state;

    (void)self;
    switch (m->type) {
    case FY_RM_CHAN_GET:
        on_get(r, m->ptr);
        break;
    case FY_RM_CHAN_DROP:
        on_drop(r, m->ptr);
        break;
    case FY_RM_SHUTDOWN:
        on_shutdown(r);
        break;
    case FY_STATS_REQ: {
        fy_stats_rec rec = {.actor = fy_actor_id(r->self), .kind = FY_KIND_REGISTRY};
        for (size_t i = 0; i < r->n; i++)
            rec.fanout += (uint32_t)fy_stats_pass(m, r->slots[i].ch->writer);
        rec.depth = fy_actor_depth(r->self);
        rec.v[FY_ST_CHANNELS] = r->n;
        rec.v[FY_ST_CHANNELS_CLOSED] = r->closed;
        rec.v[FY_ST_BYTES_IN] = r->gone_in;
        rec.v[FY_ST_FRAMES_IN] = r->gone_frames_in;
        rec.v[FY_ST_BYTES_OUT] = r->gone_out;
        rec.v[FY_ST_FRAMES_OUT] = r->gone_frames_out;
        fy_stats_answer(r->ctx->pool, r->ctx->metrics, m, &rec);
        break;
    }
    case FY_RM_CHAN_IDLE:
        on_idle(r, m->ptr);
        break;
    case FY_RM_CHAN_KEEP:
        on_keep(r, m->ptr);
        break;
    case FY_RM_CHAN_UNUSED:
        on_unused(r, m->ptr);
        break;
    case FY_RM_WRITER_TOTALS:
        r->gone_out += m->u64[0];
        r->gone_frames_out += m->u64[1];
        break;
    case FY_RM_DRAIN_CUT: /* to every channel's receivers (writers pass it on) */
        for (size_t i = 0; i < r->n; i++)
            fy__msg_drain_cut(r->slots[i].ch->writer);
        break;
    case FY_RM_WRITER_DONE:
        on_writer_done(r, m);
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
        slot *s = &r->slots[i];
        fy_actor_unref(s->ch->writer);
        fy_actor_unref(s->ch->indexer);
        fy__chan_free(s->ch);
        for (size_t j = 0; j < s->nwait; j++) {
            fy_actor_unref(s->wait[j]->reply);
            free(s->wait[j]);
        }
        free(s->wait);
    }
    for (size_t j = 0; j < r->nroom; j++) {
        fy_actor_unref(r->room[j]->reply);
        free(r->room[j]);
    }
    free(r->room);
    for (size_t j = 0; j < r->nnamed; j++) {
        fy_actor_unref(r->named[j]->reply);
        free(r->named[j]);
    }
    free(r->named);
    free(r->slots);
    free(r);
}
