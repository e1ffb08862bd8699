/*
 * swarm.c - setting up a swarm run, running it, and collecting its
 * figures (swarm.h).  The main thread builds every connection object,
 * deals them out to the workers (a channel's sender to worker c mod T,
 * receivers round-robin so one channel's receivers spread over all
 * cores), starts the workers, and after they join adds up what they saw.
 *
 * In p2p mode the main thread also makes the direct links: one loopback
 * TCP connection per (channel, receiver), made with connect + accept on a
 * listener of its own before the clock starts, so the reference pays for
 * the same kernel path as a relay's connections and nothing else.
 */
#include "swarm/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/klog.h"

#define DEFAULT_TIMEOUT 120.0

/* ---- configuration ------------------------------------------------------------ */

static int bad(char *why, size_t cap, const char *msg)
{
    snprintf(why, cap, "%s", msg);
    return -EINVAL;
}

static int check_counts(fy_swarm_cfg *c, char *why, size_t cap)
{
    if (!c->senders)
        c->senders = 1;
    if (!c->channels)
        c->channels = c->senders;
    if (!c->receivers)
        c->receivers = 1;
    if (c->senders % c->channels)
        return bad(why, cap, "--senders must be a multiple of --channels");
    if (c->channels > c->senders)
        return bad(why, cap, "--channels cannot exceed --senders");
    if (!c->packet || c->packet > FY_PAYLOAD_MAX_LIMIT)
        return bad(why, cap, "--chunk must be 1..16M");
    if (!c->files)
        c->files = 1;
    if (c->slow > c->receivers)
        return bad(why, cap, "--slow cannot exceed --receivers");
    if (c->slow && !c->slow_rate)
        return bad(why, cap, "--slow needs --slow-rate BYTES_PER_S");
    return 0;
}

static int check_mode(fy_swarm_cfg *c, char *why, size_t cap)
{
    switch (c->mode) {
    case FY_SWARM_RATE:
        if (c->rate <= 0 || c->duration <= 0)
            return bad(why, cap, "rate mode needs --msg-rate and --duration");
        c->files = 1;
        c->size = (uint64_t)c->packet * (uint64_t)(c->rate / c->channels * c->duration + 0.5);
        if (c->size < c->packet)
            c->size = c->packet;
        break;
    case FY_SWARM_STORM:
        if (c->p2p)
            return bad(why, cap, "storm needs a relay (--server HOST:PORT)");
        if (!c->connections)
            return bad(why, cap, "storm needs --connections N");
        if (c->storm_window <= 0)
            c->storm_window = 5.0;
        break;
    case FY_SWARM_CHURN:
        if (c->p2p)
            return bad(why, cap, "churn needs a relay: rejoining uses RESUME");
        if (!c->churners)
            c->churners = c->receivers / 2 ? c->receivers / 2 : 1;
        if (c->churners > c->receivers)
            return bad(why, cap, "--churners cannot exceed --receivers");
        if (!c->churn_times)
            c->churn_times = 3;
        break;
    case FY_SWARM_SLOW:
        if (!c->slow)
            return bad(why, cap, "slow mode needs --slow N --slow-rate BYTES_PER_S");
        break;
    default:
        break;
    }
    return 0;
}

int fy_swarm_cfg_check(fy_swarm_cfg *c, char *why, size_t cap)
{
    int rc = check_counts(c, why, cap);
    if (rc == 0)
        rc = check_mode(c, why, cap);
    if (rc < 0)
        return rc;
    if (c->timeout <= 0)
        c->timeout = DEFAULT_TIMEOUT;
    if (!c->threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n > 0 ? (uint32_t)n : 1;
    }
    if (c->threads > 256)
        c->threads = 256;
    if (!c->chan_prefix[0])
        snprintf(c->chan_prefix, sizeof c->chan_prefix, "swarm-%ld-%ld", (long)getpid(),
                 (long)time(NULL) % 1000000);
    if (!c->seed)
        c->seed = 0x5eedf00dull;
    return 0;
}

/* ---- building the run ---------------------------------------------------------- */

static uint64_t data_frames(const fy_swarm_cfg *c)
{
    if (c->mode == FY_SWARM_RATE) {
        double per = c->rate / c->channels * c->duration;
        return per < 1 ? 1 : (uint64_t)(per + 0.5);
    }
    return (c->size + c->packet - 1) / c->packet;
}

static uint64_t file_size(const fy_swarm_cfg *c)
{
    if (c->mode == FY_SWARM_RATE)
        return data_frames(c) * c->packet;
    return c->size;
}

static fy__worker *worker_of(fy__swarm *sw, uint32_t k)
{
    return &sw->w[k % sw->nw];
}

static int add_tx(fy__swarm *sw, uint32_t chan)
{
    const fy_swarm_cfg *c = sw->cfg;
    fy__tx *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    fy__worker *w = worker_of(sw, chan);
    w->tx[w->ntx++] = t;
    w->live++;
    fy__swarm_conn_init(&t->c, FY__TX, w);
    t->chan = chan;
    t->count = c->senders / c->channels;
    t->first = chan * t->count;
    t->chan_id = chan + 1;
    t->base_seq = 1;
    t->ndata = data_frames(c);
    t->fsize = file_size(c);
    t->total = (t->ndata + 2) * c->files;
    t->interval = c->mode == FY_SWARM_RATE ? sw->interval_ns : 0;
    t->nouts = c->p2p ? c->receivers : 1;
    t->outs = calloc(t->nouts, sizeof *t->outs);
    t->begin = calloc(c->files, sizeof *t->begin);
    if (!t->outs || !t->begin)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->nouts; i++)
        t->outs[i] = (fy__out){.tag = FY__TAG_OUT, .conn = NULL, .own = fy_conn_plain(-1), .c = &t->c};
    return 0;
}

static void leave_points(fy__rx *r, const fy_swarm_cfg *c, uint64_t frames)
{
    uint64_t s = c->seed ^ ((uint64_t)r->id * 0x9e3779b97f4a7c15ull);
    for (uint32_t i = 0; i < r->nleave; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        r->leave_at[i] = 1 + (s >> 33) % (frames > 1 ? frames - 1 : 1);
    }
    for (uint32_t i = 1; i < r->nleave; i++) /* sort, few elements */
        for (uint32_t j = i; j > 0 && r->leave_at[j - 1] > r->leave_at[j]; j--) {
            uint64_t x = r->leave_at[j];
            r->leave_at[j] = r->leave_at[j - 1];
            r->leave_at[j - 1] = x;
        }
}

static int add_rx(fy__swarm *sw, uint32_t chan, uint32_t idx)
{
    const fy_swarm_cfg *c = sw->cfg;
    fy__rx *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    uint32_t id = chan * c->receivers + idx;
    fy__worker *w = worker_of(sw, id + 1);
    w->rx[w->nrx++] = r;
    w->live++;
    fy__swarm_conn_init(&r->c, FY__RX, w);
    r->id = id;
    r->chan = chan;
    r->idx = idx;
    r->slow = idx >= c->receivers - c->slow;
    r->files_expected = (uint64_t)(c->senders / c->channels) * c->files;
    fy_rxchk_cfg kc = {.pat = sw->pat, .hash = c->verify == FY_VERIFY_SHA,
                       .sha = (const uint8_t(*)[32])sw->sha, .nsenders = c->senders};
    int rc = fy_rxchk_new(&kc, &r->chk);
    if (rc < 0)
        return rc;
    if (c->mode == FY_SWARM_CHURN && idx >= c->receivers - c->churners) {
        r->churner = true;
        r->nleave = c->churn_times;
        r->leave_at = calloc(r->nleave, sizeof *r->leave_at);
        if (!r->leave_at)
            return -ENOMEM;
        leave_points(r, c, r->files_expected * (data_frames(c) + 2));
    }
    return 0;
}

/* One direct loopback link per (channel, receiver): sender end to the
 * channel's fy__out, receiver end to the fy__rx. */
static int p2p_links(fy__swarm *sw)
{
    fy_addr any, bound;
    int rc = fy_addr_parse("127.0.0.1:0", "127.0.0.1", &any);
    int lfd = rc < 0 ? rc : fy_sock_listen(&any, 0, &bound);
    if (lfd < 0)
        return lfd;
    for (uint32_t k = 0; k < sw->nw && rc == 0; k++) {
        fy__worker *w = &sw->w[k];
        for (uint32_t i = 0; i < w->ntx && rc == 0; i++) {
            fy__tx *t = w->tx[i];
            for (uint32_t j = 0; j < t->nouts && rc == 0; j++) {
                int a = fy_sock_connect(&bound, 5000);
                int b = a < 0 ? a : fy_sock_accept(lfd, NULL);
                if (a < 0 || b < 0) {
                    rc = a < 0 ? a : b;
                    if (a >= 0)
                        close(a);
                    break;
                }
                fy_sock_set_nonblock(a, 1);
                fy_sock_set_nodelay(b);
                t->outs[j].own = fy_conn_plain(a);
                t->outs[j].conn = &t->outs[j].own;
                uint32_t id = t->chan * sw->cfg->receivers + j;
                fy__worker *rw = worker_of(sw, id + 1);
                fy__rx *r = NULL;
                for (uint32_t m = 0; m < rw->nrx; m++)
                    if (rw->rx[m]->id == id)
                        r = rw->rx[m];
                rc = r ? fy_link_attach(&r->c.link, b, fy__rx_dec_max(sw->cfg)) : -ENOENT;
                if (rc < 0) {
                    close(b);
                    break;
                }
                rc = fy__swarm_conn_watch(w, a, &t->outs[j]);
            }
        }
    }
    close(lfd);
    return rc;
}

static int build(fy__swarm *sw)
{
    const fy_swarm_cfg *c = sw->cfg;
    bool storm = c->mode == FY_SWARM_STORM;
    uint32_t nrx = storm ? 0 : c->channels * c->receivers;
    fy_pattern *pat; /* not &sw->pat: the analyser would then forget all of *sw (sw->nw) */
    int rc = fy_pattern_new(c->packet, c->seed, &pat);
    if (rc < 0)
        return rc;
    sw->pat = pat;
    sw->sha = calloc(c->senders, 32);
    sw->sender_t0 = calloc(c->senders, sizeof *sw->sender_t0);
    if (!sw->sha || !sw->sender_t0)
        return -ENOMEM;
    sw->total_rx = nrx;
    for (uint32_t k = 0; k < sw->nw; k++) {
        fy__worker *w = &sw->w[k];
        w->id = (int)k;
        w->sw = sw;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->rbuf = malloc(FY__RBUF);
        w->tx = calloc(storm ? 1 : c->channels, sizeof *w->tx);
        w->rx = calloc(nrx ? nrx : 1, sizeof *w->rx);
        w->nstorm = storm ? c->connections / sw->nw + (k < c->connections % sw->nw) : 0;
        w->storm = calloc(w->nstorm ? w->nstorm : 1, sizeof *w->storm);
        if (w->ep < 0 || !w->rbuf || !w->tx || !w->rx || !w->storm)
            return w->ep < 0 ? -errno : -ENOMEM;
        if ((rc = fy_lhist_new(&w->storm_lat)) < 0)
            return rc;
        if (c->mode == FY_SWARM_RATE && (rc = fy_lhist_new(&w->lat)) < 0)
            return rc;
        for (uint32_t i = 0; i < w->nstorm; i++)
            fy__swarm_conn_init(&w->storm[i].c, FY__STORM, w);
    }
    if (storm)
        return 0;
    for (uint32_t ch = 0; ch < c->channels; ch++) {
        if ((rc = add_tx(sw, ch)) < 0)
            return rc;
        for (uint32_t j = 0; j < c->receivers; j++)
            if ((rc = add_rx(sw, ch, j)) < 0)
                return rc;
    }
    return c->p2p ? p2p_links(sw) : 0;
}

static void teardown(fy__swarm *sw)
{
    for (uint32_t k = 0; k < sw->nw; k++) {
        fy__worker *w = &sw->w[k];
        for (uint32_t i = 0; i < w->ntx; i++)
            fy__tx_free(w->tx[i]);
        for (uint32_t i = 0; i < w->nrx; i++)
            fy__rx_free(w->rx[i]);
        for (uint32_t i = 0; i < w->nstorm; i++)
            fy__swarm_conn_close(&w->storm[i].c);
        if (w->ep >= 0)
            close(w->ep);
        free(w->tx);
        free(w->rx);
        free(w->storm);
        free(w->rbuf);
        fy_lhist_free(w->lat);
        fy_lhist_free(w->storm_lat);
    }
    free(sw->w);
    free(sw->sha);
    free((void *)sw->sender_t0);
    fy_pattern_free(sw->pat);
}

/* ---- results -------------------------------------------------------------------- */

static void add_counts(fy_rxchk_counts *d, const fy_rxchk_counts *s)
{
    const uint64_t *a = (const uint64_t *)s;
    uint64_t *b = (uint64_t *)d;
    for (size_t i = 0; i < sizeof *s / sizeof(uint64_t); i++)
        b[i] += a[i];
}

static void collect_rx(fy__swarm *sw, fy__rx *r, uint64_t go, uint64_t end, fy_swarm_result *res)
{
    const fy_rxchk_counts *n = fy_rxchk_counts_get(r->chk);
    fy_swarm_rx *o = &res->rx[r->id];
    o->channel = r->chan;
    o->index = r->idx;
    o->slow = r->slow;
    o->churner = r->churner;
    o->complete = r->complete;
    o->seconds = (double)((r->complete ? r->done_ns : end) - go) / 1e9;
    o->bytes = n->data_bytes;
    o->frames = n->data_frames;
    o->failures = fy_rxchk_failures(n);
    o->reconnects = r->reconnects;
    o->error = r->error;
    add_counts(&res->chk, n);
    res->bytes_delivered += n->data_bytes;
    res->frames_delivered += n->data_frames;
    res->reconnects += r->reconnects;
    res->incomplete += !r->complete;
    double *slot = r->slow ? &res->slow_seconds : &res->fast_seconds;
    if (o->seconds > *slot)
        *slot = o->seconds;
    (void)sw;
}

static int collect(fy__swarm *sw, uint64_t end, fy_swarm_result *res)
{
    const fy_swarm_cfg *c = sw->cfg;
    uint64_t go = atomic_load(&sw->go_ns);
    if (!go)
        go = end;
    res->nrx = sw->total_rx;
    res->rx = calloc(res->nrx ? res->nrx : 1, sizeof *res->rx);
    int rc = fy_lhist_new(&res->storm_lat);
    if (rc == 0) /* always: CSV rows have the latency columns in every mode */
        rc = fy_lhist_new(&res->lat);
    if (!res->rx || rc < 0)
        return -ENOMEM;
    res->files_expected = (uint64_t)(c->senders / c->channels) * c->files;
    res->timed_out = atomic_load(&sw->timed_out);
    for (uint32_t k = 0; k < sw->nw; k++) {
        fy__worker *w = &sw->w[k];
        for (uint32_t i = 0; i < w->nrx; i++)
            collect_rx(sw, w->rx[i], go, end, res);
        for (uint32_t i = 0; i < w->ntx; i++) {
            res->bytes_sent += w->tx[i]->bytes_sent;
            res->frames_sent += w->tx[i]->frames_sent;
        }
        if (w->lat)
            fy_lhist_merge(res->lat, w->lat);
        fy_lhist_merge(res->storm_lat, w->storm_lat);
        res->errors += w->errors;
        res->served += w->served;
        res->refused += w->refused;
        res->connect_failed += w->connect_failed;
    }
    res->seconds = res->fast_seconds > res->slow_seconds ? res->fast_seconds : res->slow_seconds;
    if (c->mode == FY_SWARM_STORM) {
        res->storm = c->connections;
        res->unanswered = res->storm - res->served - res->refused - res->connect_failed;
        res->seconds = (double)(end - go) / 1e9;
    }
    res->integrity_failures = fy_rxchk_failures(&res->chk) + res->incomplete;
    return 0;
}

/* ---- running -------------------------------------------------------------------- */

static int start_workers(fy__swarm *sw, uint32_t *started)
{
    for (*started = 0; *started < sw->nw; (*started)++) {
        fy__worker *w = &sw->w[*started];
        int rc = pthread_create(&w->thread, NULL, fy__worker_main, w);
        if (rc != 0)
            return -rc;
    }
    return 0;
}

static int run(fy__swarm *sw, fy_swarm_result *res)
{
    const fy_swarm_cfg *c = sw->cfg;
    uint64_t t_setup = fy__swarm_now_ns();
    sw->deadline_ns = t_setup + (uint64_t)(c->timeout * 1e9);
    if (c->mode == FY_SWARM_RATE)
        sw->interval_ns = (uint64_t)(1e9 * c->channels / c->rate);
    int rc = build(sw);
    if (rc < 0)
        return rc;
    if (pthread_barrier_init(&sw->barrier, NULL, sw->nw + 1) != 0)
        return -ENOMEM;
    uint32_t started;
    rc = start_workers(sw, &started);
    if (rc < 0) { /* cannot meet the barrier: nothing sane to do but stop */
        fy_klog(FY_LOG_ERROR, "pthread_create failed", "err=%s action=exit", fy_errname(rc));
        exit(2);
    }
    pthread_barrier_wait(&sw->barrier); /* every worker prepared its senders */
    for (uint32_t k = 0; k < sw->nw; k++)
        if (sw->w[k].setup_err && !rc)
            rc = sw->w[k].setup_err;
    if (rc < 0)
        atomic_store(&sw->abort, 1);
    uint64_t now = fy__swarm_now_ns();
    res->setup_seconds = (double)(now - t_setup) / 1e9;
    if (c->p2p || c->mode == FY_SWARM_STORM) /* nobody to wait for */
        atomic_store(&sw->go_ns, now);
    sw->storm_end_ns = now + (uint64_t)(c->storm_window * 1e9);
    pthread_barrier_wait(&sw->barrier);
    for (uint32_t k = 0; k < sw->nw; k++)
        pthread_join(sw->w[k].thread, NULL);
    pthread_barrier_destroy(&sw->barrier);
    if (rc < 0)
        return rc;
    return collect(sw, fy__swarm_now_ns(), res);
}

int fy_swarm_run(const fy_swarm_cfg *cfg, fy_swarm_result *res)
{
    fy__swarm sw = {.cfg = cfg};
    memset(res, 0, sizeof *res);
    uint32_t conns = cfg->mode == FY_SWARM_STORM ? cfg->connections
                                                  : cfg->channels * (cfg->receivers + 1);
    sw.nw = cfg->threads < conns ? cfg->threads : conns;
    if (!sw.nw)
        sw.nw = 1;
    res->threads = sw.nw;
    sw.w = calloc(sw.nw, sizeof *sw.w);
    if (!sw.w)
        return -ENOMEM;
    for (uint32_t k = 0; k < sw.nw; k++)
        sw.w[k].ep = -1;
    int rc = run(&sw, res);
    teardown(&sw);
    return rc;
}

void fy_swarm_result_free(fy_swarm_result *res)
{
    fy_lhist_free(res->lat);
    fy_lhist_free(res->storm_lat);
    free(res->rx);
    memset(res, 0, sizeof *res);
}

bool fy_swarm_result_ok(const fy_swarm_cfg *cfg, const fy_swarm_result *res)
{
    if (cfg->mode == FY_SWARM_STORM && res->served == 0)
        return false; /* nothing reached a relay: not a measurement */
    return !res->timed_out && res->integrity_failures == 0 && res->errors == 0;
}
