/*
 * metrics.c - the metrics actor: GET /metrics on --metrics HOST:PORT, in
 * Prometheus text format (docs/observability.md lists every family), and
 * the health checks GET /healthz and GET /readyz there too (HEAD as well).
 *
 * It owns the HTTP listener and its connections (src/metrics/httpd.c) and
 * gathers the relay's figures by message, never by reading another
 * actor's state: on a scrape it asks the registry and the acceptor
 * (src/relay/stats.h), which pass the request on to writers, forwarders and
 * sessions; every actor answers with one record.  When every announced
 * answer is in, or after GATHER_MS, it renders the text and answers every
 * scrape that waited for this gather.  The runtime's own figures (thread
 * busy time, buffer pool, mailbox depths) are racy snapshots of counters
 * their owners keep, read directly as the runtime allows.
 *
 * Counters stay monotonic although sessions and forwarders come and go:
 * bytes and frames in are the writers' (stored, per channel, for the
 * channel's life); bytes and frames out are the live forwarders' plus what
 * each writer keeps of its receivers that have left (stats.h).
 *
 * Label values are bounded: channels, error codes, actor kinds, scheduler
 * threads.  Nothing is labelled per connection (a peer address or an actor
 * id would be a new series for every receiver that ever connected):
 * receivers are counted by mode and their lag is the worst per channel;
 * ferry-trace's summary and the log name the peer.
 *
 * Health: /healthz answers 200 while the actor runs.  /readyz answers 200
 * once the relay told it the acceptor listens (FY_RM_READY) and until the
 * shutdown begins (FY_RM_SHUTDOWN), while DATA/channels is writable
 * (access(2)) and its file system has min-free bytes free (statvfs(2)); 503
 * with the reason otherwise.  Both are answered in the turn their request
 * arrives, never after a gather, and slow clients cannot take their place
 * (httpd.c).
 *
 * Per-channel stored figures cover every channel on disk, open or not, and
 * the per-channel counters survive a channel's close and reopen
 * (src/metrics/chanstat.c).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/sched.h"
#include "metrics/chanstat.h"
#include "metrics/httpd.h"
#include "metrics/procstat.h"
#include "metrics/prom.h"
#include "relay/stats.h"
#include "relay/tlsfail.h"
#include "isr_stats.h"
#include "relay_int.h"

#define GATHER_MS 500
#define SWEEP_MS 1000 /* how often connections are checked against metrics-timeout */
#define SCAN_MS 5000  /* the channel directories are read at most this often */
#define TAG_SWEEP 1ull
#define TAG_GATHER 2ull /* | scrape << 8 */
#define HTTP_TAGS (1ull << 32)
#define MSG_START (FY_STATS_REP + 1) /* self: start watching the listener */

#ifndef FY_BUILD_VERSION
#define FY_BUILD_VERSION "unknown"
#endif

typedef struct metrics {
    const fy__ctx *ctx;
    fy_actor *self;
    fy_httpd *h;
    fy_prom *prom;
    fy_chanstat *chans; /* every channel on disk; counters kept across reopens */
    uint64_t next_scrape, cur; /* cur: the gather in progress, 0 = none */
    uint32_t expect, got;
    fy_stats_rec *recs;
    size_t nrecs, caprecs;
    uint32_t waiting[FY_HTTPD_CONNS];
    bool waiting_head[FY_HTTPD_CONNS]; /* HEAD: the headers only */
    size_t nwaiting;
    bool listening, stopping;          /* for /readyz */
    uint64_t scrapes, incomplete;
} metrics;

/* ---- gathering ------------------------------------------------------------ */

static void finish(metrics *m);

static void start_gather(metrics *m)
{
    m->cur = ++m->next_scrape;
    m->expect = m->got = 0;
    m->nrecs = 0;
    if (m->ctx->registry && fy_stats_ask(m->ctx->registry, m->cur) == 0)
        m->expect++;
    if (m->ctx->acceptor && fy_stats_ask(m->ctx->acceptor, m->cur) == 0)
        m->expect++;
    if (m->expect == 0 || fy_timer_after(m->self, GATHER_MS, TAG_GATHER | m->cur << 8) < 0)
        finish(m);
}

/* A writer's counters into the channel table (chanstat.c). */
static void feed_chan(metrics *m, const fy_stats_rec *r)
{
    uint64_t v[FY_CS_N] = {
        [FY_CS_BYTES] = r->v[FY_ST_BYTES_IN], [FY_CS_FRAMES] = r->v[FY_ST_FRAMES_IN],
        [FY_CS_FILES] = r->v[FY_ST_FILES], [FY_CS_DAMAGED] = r->v[FY_ST_DAMAGED],
        [FY_CS_SYNC_FAILED] = r->v[FY_ST_SYNC_FAILED]};
    (void)fy_chanstat_writer(m->chans, r->channel, r->actor, v);
}

/* A closing writer's last counts (scrape id 0): into the channel table. */
static void on_final(metrics *m, const fy_msg *msg)
{
    fy_stats_rec r;
    if (!msg->buf || fy_buf_len(msg->buf) != sizeof r)
        return;
    memcpy(&r, fy_buf_cdata(msg->buf), sizeof r);
    r.channel[sizeof r.channel - 1] = 0;
    if (r.kind == FY_KIND_WRITER)
        feed_chan(m, &r);
}

static void on_rep(metrics *m, fy_msg *msg)
{
    if (msg->u64[0] == 0) {
        on_final(m, msg);
        return;
    }
    if (msg->u64[0] != m->cur || !m->cur || !msg->buf ||
        fy_buf_len(msg->buf) != sizeof(fy_stats_rec))
        return; /* a late answer to a gather already rendered */
    if (m->nrecs == m->caprecs) {
        size_t c = m->caprecs ? m->caprecs * 2 : 64;
        fy_stats_rec *p = realloc(m->recs, c * sizeof *p);
        if (!p)
            return;
        m->recs = p;
        m->caprecs = c;
    }
    fy_stats_rec *r = &m->recs[m->nrecs++];
    memcpy(r, fy_buf_cdata(msg->buf), sizeof *r);
    r->channel[sizeof r->channel - 1] = 0;
    r->peer[sizeof r->peer - 1] = 0;
    r->mode[sizeof r->mode - 1] = 0;
    m->expect += r->fanout;
    if (++m->got >= m->expect)
        finish(m);
}

/* ---- rendering ------------------------------------------------------------ */

/* The kinds that answer a scrape, and their names (relay/kinds.h). */
#define SCRAPED(name, num, str, scrape) {num, str, scrape},
static const struct {
    uint16_t kind;
    const char *name;
    bool scraped;
} kinds[] = {FY_RELAY_KINDS(SCRAPED)};
#undef SCRAPED

static void render_runtime(metrics *m, fy_prom *p)
{
    fy_sched *s = m->ctx->sched;
    char t[16];
    fy_prom_family(p, "ferry_sched_busy_seconds_total", "counter",
                   "Time each scheduler thread spent running actor handlers.");
    for (unsigned i = 0; i < fy_sched_threads(s); i++) {
        uint64_t busy = 0, turns = 0;
        fy_sched_thread_stats(s, i, &busy, &turns);
        snprintf(t, sizeof t, "%u", i);
        fy_prom_f64(p, "ferry_sched_busy_seconds_total", (double)busy / 1e9, "thread", t, NULL);
    }
    fy_prom_family(p, "ferry_sched_turns_total", "counter", "Actor turns run per thread.");
    for (unsigned i = 0; i < fy_sched_threads(s); i++) {
        uint64_t busy = 0, turns = 0;
        fy_sched_thread_stats(s, i, &busy, &turns);
        snprintf(t, sizeof t, "%u", i);
        fy_prom_u64(p, "ferry_sched_turns_total", turns, "thread", t, NULL);
    }
    fy_prom_family(p, "ferry_bufpool_used_bytes", "gauge",
                   "Packet buffer pool: bytes of buffers in use.");
    fy_prom_u64(p, "ferry_bufpool_used_bytes", fy_bufpool_used(m->ctx->pool), NULL);
    fy_prom_family(p, "ferry_bufpool_limit_bytes", "gauge", "Packet buffer pool: byte limit.");
    fy_prom_u64(p, "ferry_bufpool_limit_bytes", fy_bufpool_limit(m->ctx->pool), NULL);
    fy_prom_family(p, "ferry_bufpool_buffers", "gauge", "Packet buffers in use.");
    fy_prom_u64(p, "ferry_bufpool_buffers", fy_bufpool_live(m->ctx->pool), NULL);
}

static void render_conns(metrics *m, fy_prom *p, const fy_stats_rec *acc)
{
    uint64_t senders = 0, pending = 0, live = 0, catchup = 0, in = 0, out = 0, disk = 0, fin = 0,
             fout = 0, catchups = 0;
    for (size_t i = 0; i < m->nrecs; i++) {
        const fy_stats_rec *r = &m->recs[i];
        if (r->kind == FY_KIND_SESSION) {
            senders += r->role == 1;
            pending += r->role == 0;
        } else if (r->kind == FY_KIND_FORWARDER || r->kind == FY_KIND_WRITER ||
                   r->kind == FY_KIND_REGISTRY) {
            if (r->kind == FY_KIND_FORWARDER && strcmp(r->mode, "live") == 0)
                live++;
            else if (r->kind == FY_KIND_FORWARDER)
                catchup++;
            /* writers; the registry: what the channels closed so far had */
            in += r->v[FY_ST_BYTES_IN];
            fin += r->v[FY_ST_FRAMES_IN];
            /* a writer's: its receivers that have left */
            out += r->v[FY_ST_BYTES_OUT];
            disk += r->v[FY_ST_BYTES_DISK];
            fout += r->v[FY_ST_FRAMES_OUT];
            catchups += r->v[FY_ST_CATCHUPS];
        }
    }
    fy_prom_family(p, "ferry_connections", "gauge",
                   "Open client connections by role (handshake = hello not yet done).");
    fy_prom_u64(p, "ferry_connections", senders, "role", "sender", NULL);
    fy_prom_u64(p, "ferry_connections", live + catchup, "role", "receiver", NULL);
    fy_prom_u64(p, "ferry_connections", pending, "role", "handshake", NULL);
    fy_prom_family(p, "ferry_connections_accepted_total", "counter", "Connections accepted.");
    fy_prom_u64(p, "ferry_connections_accepted_total", acc ? acc->v[FY_ST_ACCEPTED] : 0, NULL);
    fy_prom_family(p, "ferry_connections_refused_total", "counter",
                   "Connections refused at --max-connections or --max-connections-per-ip.");
    fy_prom_u64(p, "ferry_connections_refused_total", acc ? acc->v[FY_ST_REFUSED] : 0, NULL);
    fy_prom_family(p, "ferry_tls_handshake_failures_total", "counter",
                   "TLS handshakes that failed (logged at a bounded rate, relay/tlsfail.h).");
    fy_prom_u64(p, "ferry_tls_handshake_failures_total", fy_tlsfail_total(), NULL);
    fy_prom_family(p, "ferry_receivers", "gauge",
                   "Receivers by mode: live (sent from memory) or catch-up (sent from the file).");
    fy_prom_u64(p, "ferry_receivers", live, "mode", "live", NULL);
    fy_prom_u64(p, "ferry_receivers", catchup, "mode", "catch-up", NULL);
    fy_prom_family(p, "ferry_received_bytes_total", "counter",
                   "Frame bytes received from senders and stored (all channels).");
    fy_prom_u64(p, "ferry_received_bytes_total", in, NULL);
    fy_prom_family(p, "ferry_received_frames_total", "counter",
                   "Frames received from senders and stored (all channels).");
    fy_prom_u64(p, "ferry_received_frames_total", fin, NULL);
    fy_prom_family(p, "ferry_sent_bytes_total", "counter",
                   "Bytes sent to receivers, by source: live (from memory) or disk (catch-up).");
    fy_prom_u64(p, "ferry_sent_bytes_total", out - disk, "source", "live", NULL);
    fy_prom_u64(p, "ferry_sent_bytes_total", disk, "source", "disk", NULL);
    fy_prom_family(p, "ferry_sent_live_frames_total", "counter",
                   "Frames sent to receivers from memory (catch-up sends file bytes, not frames).");
    fy_prom_u64(p, "ferry_sent_live_frames_total", fout, NULL);
    fy_prom_family(p, "ferry_receiver_catchups_total", "counter",
                   "Times a receiver fell behind its window and was sent from the file.");
    fy_prom_u64(p, "ferry_receiver_catchups_total", catchups, NULL);
    fy_prom_family(p, "ferry_errors_total", "counter",
                   "Connections ended by an error, by error code (fy_errname).");
    if (acc)
        for (int i = 0; i < FY_STATS_ERRS; i++)
            if (acc->err_n[i])
                fy_prom_u64(p, "ferry_errors_total", acc->err_n[i], "code",
                            acc->err_code[i] ? fy_errname(-(int)acc->err_code[i]) : "other",
                            NULL);
}

static void render_registry(fy_prom *p, const fy_stats_rec *reg)
{
    fy_prom_family(p, "ferry_channels_open", "gauge", "Channels open (each holds its log files).");
    fy_prom_u64(p, "ferry_channels_open", reg ? reg->v[FY_ST_CHANNELS] : 0, NULL);
    fy_prom_family(p, "ferry_channels_closed_total", "counter",
                   "Channels closed after --channel-idle without sender or receiver.");
    fy_prom_u64(p, "ferry_channels_closed_total", reg ? reg->v[FY_ST_CHANNELS_CLOSED] : 0, NULL);
}

static void render_channels(metrics *m, fy_prom *p)
{
    static const struct {
        const char *name, *type, *help;
        int st;
    } fam[] = {
        {"ferry_channel_receivers", "gauge", "Receivers subscribed to the open channel.", FY_ST_RECEIVERS},
        {"ferry_channel_next_seq", "gauge", "Next sequence number of the open channel.", FY_ST_NEXT_SEQ},
    };
    /* Stored figures and counters: every channel on disk, kept across reopens. */
    fy_chanstat_begin(m->chans);
    for (size_t i = 0; i < m->nrecs; i++)
        if (m->recs[i].kind == FY_KIND_WRITER)
            feed_chan(m, &m->recs[i]);
    (void)fy_chanstat_scan(m->chans, m->ctx->chan_root, fy_now_ns() / 1000000u, SCAN_MS);
    fy_chanstat_render(m->chans, p);
    for (size_t f = 0; f < sizeof fam / sizeof *fam; f++) {
        fy_prom_family(p, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < m->nrecs; i++)
            if (m->recs[i].kind == FY_KIND_WRITER)
                fy_prom_u64(p, fam[f].name, m->recs[i].v[fam[f].st], "channel",
                            m->recs[i].channel, NULL);
    }
}

/* Records sorted by channel, then kind: a writer is followed by its channel's
 * forwarders (FY_KIND_WRITER < FY_KIND_FORWARDER). */
static int by_channel(const void *a, const void *b)
{
    const fy_stats_rec *x = a, *y = b;
    int c = strcmp(x->channel, y->channel);
    return c ? c : (int)x->kind - (int)y->kind;
}

/* Per channel, over its receivers: the worst lag, the live buffers held. */
static void render_receivers(metrics *m, fy_prom *p)
{
    static const struct {
        const char *name, *help;
        int st;
        bool sum;
    } fam[] = {
        {"ferry_channel_receiver_max_lag_frames",
         "Frames the channel's furthest-behind receiver is behind its end.", FY_ST_LAG_PKTS, false},
        {"ferry_channel_receiver_max_lag_bytes",
         "Bytes the channel's furthest-behind receiver is behind its end.", FY_ST_LAG_BYTES, false},
        {"ferry_channel_receiver_queued_bytes",
         "Live buffer bytes held for the channel's receivers.", FY_ST_QUEUED_BYTES, true},
    };
    for (size_t f = 0; f < sizeof fam / sizeof *fam; f++) {
        fy_prom_family(p, fam[f].name, "gauge", fam[f].help);
        for (size_t i = 0; i < m->nrecs; i++) {
            if (m->recs[i].kind != FY_KIND_WRITER)
                continue;
            uint64_t v = 0;
            for (size_t j = i + 1; j < m->nrecs &&
                                   strcmp(m->recs[j].channel, m->recs[i].channel) == 0; j++) {
                uint64_t x = m->recs[j].v[fam[f].st];
                if (m->recs[j].kind != FY_KIND_FORWARDER)
                    continue;
                v = fam[f].sum ? v + x : x > v ? x : v;
            }
            fy_prom_u64(p, fam[f].name, v, "channel", m->recs[i].channel, NULL);
        }
    }
}

/* An edge relay's mirrors (actors/upstream.c), one series per channel. */
static void render_upstreams(metrics *m, fy_prom *p)
{
    static const struct {
        const char *name, *type, *help;
        int st;
    } fam[] = {
        {"ferry_upstream_connected", "gauge", "1 while the mirror's link to the upstream relay streams.", FY_ST_UP_CONNECTED},
        {"ferry_upstream_lag_packets", "gauge", "Frames upstream is known to hold that this edge has not stored.", FY_ST_LAG_PKTS},
        {"ferry_upstream_lag_bytes", "gauge", "Bytes received from upstream, not yet stored.", FY_ST_LAG_BYTES},
        {"ferry_upstream_reconnects_total", "counter", "Upstream links lost and made again.", FY_ST_RECONNECTS},
        {"ferry_upstream_enoseq_total", "counter", "Times upstream no longer held the next seq (FY_ENOSEQ).", FY_ST_ENOSEQ},
        {"ferry_upstream_bytes_total", "counter", "Bytes received from upstream.", FY_ST_BYTES_IN},
    };
    for (size_t f = 0; f < sizeof fam / sizeof *fam; f++) {
        fy_prom_family(p, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < m->nrecs; i++)
            if (m->recs[i].kind == FY_KIND_UPSTREAM)
                fy_prom_u64(p, fam[f].name, m->recs[i].v[fam[f].st], "channel",
                            m->recs[i].channel, "upstream", m->recs[i].peer, NULL);
    }
}

static void render_depths(metrics *m, fy_prom *p)
{
    fy_prom_family(p, "ferry_mailbox_depth_max", "gauge",
                   "Deepest mailbox among the actors of a kind, as they answered this scrape.");
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        if (!kinds[k].scraped)
            continue;
        uint64_t mx = 0;
        for (size_t i = 0; i < m->nrecs; i++)
            if (m->recs[i].kind == kinds[k].kind && m->recs[i].depth > mx)
                mx = m->recs[i].depth;
        fy_prom_u64(p, "ferry_mailbox_depth_max", mx, "kind", kinds[k].name, NULL);
    }
    /* Not ..._depth_sum: a _sum suffix belongs to histograms and summaries. */
    fy_prom_family(p, "ferry_mailbox_queued_messages", "gauge",
                   "Messages queued in the mailboxes of a kind's actors.");
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        if (!kinds[k].scraped)
            continue;
        uint64_t sum = 0;
        for (size_t i = 0; i < m->nrecs; i++)
            if (m->recs[i].kind == kinds[k].kind)
                sum += m->recs[i].depth;
        fy_prom_u64(p, "ferry_mailbox_queued_messages", sum, "kind", kinds[k].name, NULL);
    }
}

/* The process_* families and the data directory's file system. */
static void render_process(metrics *m, fy_prom *p)
{
    uint64_t free_b = 0, size_b = 0;
    fy_procstat_render(p);
    (void)fy_procstat_disk(m->ctx->chan_root, &free_b, &size_b);
    fy_prom_family(p, "ferry_data_free_bytes", "gauge",
                   "Free bytes of the data directory's file system (statvfs f_bavail).");
    fy_prom_u64(p, "ferry_data_free_bytes", free_b, NULL);
    fy_prom_family(p, "ferry_data_size_bytes", "gauge",
                   "Size of the data directory's file system.");
    fy_prom_u64(p, "ferry_data_size_bytes", size_b, NULL);
    fy_prom_family(p, "ferry_data_min_free_bytes", "gauge",
                   "The min-free setting: /readyz fails below it (0 = off).");
    fy_prom_u64(p, "ferry_data_min_free_bytes", m->ctx->conf->min_free, NULL);
}

/* One family of the replication table's rows (isr_stats.h). */
typedef struct isr_pick {
    fy_prom *p;
    const char *name;
    int which; /* 0: a channel's acks waiting, 1: lag frames, 2: lag seconds */
} isr_pick;

static void isr_row(void *arg, const char *chan, const char *node, uint64_t a, uint64_t b)
{
    const isr_pick *k = arg;
    if (k->which == 0 && !node)
        fy_prom_u64(k->p, k->name, a, "channel", chan, NULL);
    else if (k->which == 1 && node)
        fy_prom_u64(k->p, k->name, a, "channel", chan, "node", node, NULL);
    else if (k->which == 2 && node)
        fy_prom_f64(k->p, k->name, (double)b / 1e3, "channel", chan, "node", node, NULL);
}

/* --cluster: the in-sync set of each channel, and, on a leader, what its
 * followers lag and the acks that wait for them (actors/writer_isr.c). */
static void render_isr(fy_member *mb, fy_prom *p)
{
    static const char *const names[] = {"ferry_cluster_acks_waiting",
                                        "ferry_cluster_replica_lag_frames",
                                        "ferry_cluster_replica_lag_seconds"};
    static const char *const helps[] = {
        "Acks of the channel's file-ends held for the disk or the in-sync replicas.",
        "Frames the follower's reports trail the leader's log by.",
        "Seconds since the follower was last known caught up with the leader's log."};
    char chan[FY_NAME_MAX + 1];
    fy_member_lead l;
    fy_chanstate st;

    fy_prom_family(p, "ferry_cluster_isr_size", "gauge", "Members of the channel's in-sync set.");
    for (unsigned i = 0; fy_member_lead_at(mb, i, chan, sizeof chan, &l) == 0; i++)
        if (l.known && fy_member_state(mb, chan, &st) == 0)
            fy_prom_u64(p, "ferry_cluster_isr_size", st.nisr, "channel", chan, NULL);
    for (int k = 0; k < 3; k++) {
        isr_pick pick = {p, names[k], k};
        fy_prom_family(p, names[k], "gauge", helps[k]);
        fy__isrst_each(isr_row, &pick);
    }
    fy_prom_family(p, "ferry_cluster_failovers_total", "counter",
                   "Takeovers of a channel whose leader was gone, won by this relay.");
    fy_prom_u64(p, "ferry_cluster_failovers_total", fy_member_failovers(mb), NULL);
}

/* --cluster: the lease, and who leads each channel this relay serves. */
static void render_cluster(metrics *m, fy_prom *p)
{
    fy_member *mb = m->ctx->member;
    char chan[FY_NAME_MAX + 1];
    fy_member_lead l;

    if (!mb)
        return;
    fy_prom_family(p, "ferry_cluster_lease_held", "gauge",
                   "1 while this relay holds its cluster lease.");
    fy_prom_u64(p, "ferry_cluster_lease_held", fy_member_lease_held(mb, fy_now_ns()), NULL);
    fy_prom_family(p, "ferry_cluster_leader", "gauge", "1 when this relay leads the channel.");
    for (unsigned i = 0; fy_member_lead_at(mb, i, chan, sizeof chan, &l) == 0; i++)
        if (l.known)
            fy_prom_u64(p, "ferry_cluster_leader", l.leading, "channel", chan, NULL);
    fy_prom_family(p, "ferry_cluster_epoch", "gauge", "The channel's leader epoch.");
    for (unsigned i = 0; fy_member_lead_at(mb, i, chan, sizeof chan, &l) == 0; i++)
        if (l.known)
            fy_prom_u64(p, "ferry_cluster_epoch", l.epoch, "channel", chan, NULL);
    render_isr(mb, p);
}

static void finish(metrics *m)
{
    if (m->got < m->expect)
        m->incomplete++;
    m->cur = 0;
    m->scrapes++;
    if (m->nrecs)
        qsort(m->recs, m->nrecs, sizeof *m->recs, by_channel);
    const fy_stats_rec *acc = NULL, *reg = NULL;
    for (size_t i = 0; i < m->nrecs; i++) {
        if (m->recs[i].kind == FY_KIND_ACCEPTOR)
            acc = &m->recs[i];
        else if (m->recs[i].kind == FY_KIND_REGISTRY)
            reg = &m->recs[i];
    }
    fy_prom *p = m->prom;
    fy_prom_reset(p);
    fy_prom_family(p, "ferry_up", "gauge", "1 while the relay runs.");
    fy_prom_u64(p, "ferry_up", 1, NULL);
    fy_prom_family(p, "ferry_build_info", "gauge", "1, labelled with the ferryd version.");
    fy_prom_u64(p, "ferry_build_info", 1, "version", FY_BUILD_VERSION, NULL);
    render_conns(m, p, acc);
    render_registry(p, reg);
    render_channels(m, p);
    render_receivers(m, p);
    render_upstreams(m, p);
    render_cluster(m, p);
    render_depths(m, p);
    render_runtime(m, p);
    render_process(m, p);
    fy_prom_family(p, "ferry_metrics_scrapes_total", "counter", "Gathers run for /metrics.");
    fy_prom_u64(p, "ferry_metrics_scrapes_total", m->scrapes, NULL);
    fy_prom_family(p, "ferry_metrics_incomplete_total", "counter",
                   "Gathers rendered at the deadline with answers missing.");
    fy_prom_u64(p, "ferry_metrics_incomplete_total", m->incomplete, NULL);
    uint64_t evicted, refused;
    fy_httpd_counts(m->h, &evicted, &refused);
    fy_prom_family(p, "ferry_metrics_http_evicted_total", "counter",
                   "Metrics-port connections still sending their request, closed to make room.");
    fy_prom_u64(p, "ferry_metrics_http_evicted_total", evicted, NULL);
    fy_prom_family(p, "ferry_metrics_http_refused_total", "counter",
                   "Metrics-port connections closed at once: every slot was answering.");
    fy_prom_u64(p, "ferry_metrics_http_refused_total", refused, NULL);
    size_t len;
    const char *text = fy_prom_text(p, &len);
    for (size_t i = 0; i < m->nwaiting; i++) {
        if (text)
            fy_httpd_answer(m->h, m->waiting[i], 200, FY_PROM_CTYPE, text, len,
                            m->waiting_head[i]);
        else
            fy_httpd_answer(m->h, m->waiting[i], 503, "text/plain", "out of memory\n", 14,
                            m->waiting_head[i]);
    }
    m->nwaiting = 0;
}

/* ---- the actor ------------------------------------------------------------- */

/* /readyz: 0 when ready, else the reason in why. */
static int readiness(const metrics *m, char *why, size_t cap)
{
    if (m->stopping) {
        snprintf(why, cap, "not ready: shutting down\n");
        return -1;
    }
    if (!m->listening) {
        snprintf(why, cap, "not ready: not listening yet\n");
        return -1;
    }
    if (access(m->ctx->chan_root, W_OK) != 0) {
        snprintf(why, cap, "not ready: data directory %s not writable: %s\n",
                 m->ctx->chan_root, strerror(errno));
        return -1;
    }
    uint64_t free_b, size_b, min = m->ctx->conf->min_free;
    if (min && fy_procstat_disk(m->ctx->chan_root, &free_b, &size_b) == 0 && free_b < min) {
        snprintf(why, cap, "not ready: data directory %s has %llu bytes free, below min-free "
                 "%llu\n", m->ctx->chan_root, (unsigned long long)free_b,
                 (unsigned long long)min);
        return -1;
    }
    snprintf(why, cap, "ready\n");
    return 0;
}

static void on_req(void *arg, uint32_t conn, const char *method, const char *path)
{
    metrics *m = arg;
    bool head = strcmp(method, "HEAD") == 0;
    char why[sizeof m->ctx->chan_root + 256];
    if (!head && strcmp(method, "GET") != 0) {
        fy_httpd_reply(m->h, conn, 405, "text/plain", "GET or HEAD only\n", 17);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        fy_httpd_answer(m->h, conn, 200, "text/plain", "ok\n", 3, head);
        return;
    }
    if (strcmp(path, "/readyz") == 0) {
        int st = readiness(m, why, sizeof why) == 0 ? 200 : 503;
        fy_httpd_answer(m->h, conn, st, "text/plain", why, strlen(why), head);
        return;
    }
    if (strcmp(path, "/metrics") != 0) {
        static const char idx[] = "ferryd: metrics at /metrics (Prometheus text format), "
                                  "health at /healthz and /readyz\n";
        fy_httpd_answer(m->h, conn, strcmp(path, "/") ? 404 : 200, "text/plain", idx,
                        sizeof idx - 1, head);
        return;
    }
    if (m->nwaiting == FY_HTTPD_CONNS) {
        fy_httpd_answer(m->h, conn, 503, "text/plain", "busy\n", 5, head);
        return;
    }
    m->waiting_head[m->nwaiting] = head;
    m->waiting[m->nwaiting++] = conn;
    if (!m->cur)
        start_gather(m); /* scrapes arriving meanwhile share this gather */
}

static int handle(fy_actor *self, void *state, fy_msg *msg)
{
    metrics *m = state;
    (void)self;
    switch (msg->type) {
    case FY_MSG_IO:
        if (fy_httpd_owns(m->h, msg))
            fy_httpd_io(m->h, msg, on_req, m);
        break;
    case FY_STATS_REP:
        on_rep(m, msg);
        break;
    case FY_RM_READY:
        m->listening = true;
        break;
    case FY_RM_SHUTDOWN:
        m->stopping = true;
        break;
    case MSG_START:
        if (fy_httpd_start(m->h) < 0)
            fy_klog(FY_LOG_ERROR, "metrics listener not watched", "call=fy_io_add "
                    "action=\"serve no metrics\"");
        (void)fy_timer_after(m->self, SWEEP_MS, TAG_SWEEP);
        break;
    case FY_MSG_TIMER:
        if (msg->u64[0] == TAG_SWEEP) {
            fy_httpd_sweep(m->h, (unsigned)m->ctx->conf->metrics_timeout_ms);
            (void)fy_timer_after(m->self, SWEEP_MS, TAG_SWEEP);
        } else if ((msg->u64[0] & 0xFF) == TAG_GATHER && m->cur && msg->u64[0] >> 8 == m->cur) {
            finish(m);
        }
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    metrics *m = state;
    fy_httpd_free(m->h);
    fy_prom_free(m->prom);
    fy_chanstat_free(m->chans);
    free(m->recs);
    free(m);
}

/* The metrics actor's one private message (its numbers are not
 * enum fy__msg's, so it is not in msg.h): start watching the listener. */
static int post_start(fy_actor *self)
{
    return fy_actor_post(self, MSG_START, 0, 0, 0, NULL, NULL);
}

int fy__metrics_new(const fy__ctx *ctx, const char *addr, fy_actor **out, char *bound,
                    size_t boundcap, char *err, size_t errcap)
{
    metrics *m = calloc(1, sizeof *m);
    int rc;
    if (!m || fy_prom_new(&m->prom) < 0 || fy_chanstat_new(&m->chans) < 0) {
        if (m)
            fy_prom_free(m->prom);
        free(m);
        snprintf(err, errcap, "out of memory");
        return -ENOMEM;
    }
    m->ctx = ctx;
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = m, .kind = FY_KIND_METRICS,
                       .label = "metrics"};
    if ((rc = fy_actor_new(ctx->sched, &o, &m->self)) < 0) {
        fy_prom_free(m->prom);
        fy_chanstat_free(m->chans);
        free(m);
        snprintf(err, errcap, "metrics actor: %s", fy_strerror(rc));
        return rc;
    }
    /* *out may be the context's collector slot, which the actors asked
     * read: written before MSG_START, so before any scrape can ask them. */
    *out = m->self;
    /* Bound here, so a bad address fails start-up; watched from the first
     * turn (MSG_START), so no readiness message can race with m->h. */
    if ((rc = fy_httpd_new(m->self, addr, HTTP_TAGS, &m->h, err, errcap)) < 0) {
        fy_actor_stop(m->self); /* dtor frees m; fy_httpd_free(NULL) is fine */
        fy_actor_unref(m->self);
        *out = NULL;
        return rc;
    }
    fy_httpd_bound(m->h, bound, boundcap);
    if ((rc = post_start(m->self)) < 0) {
        fy_actor_stop(m->self);
        fy_actor_unref(m->self);
        *out = NULL;
        snprintf(err, errcap, "metrics actor: %s", fy_strerror(rc));
        return rc;
    }
    return 0;
}
