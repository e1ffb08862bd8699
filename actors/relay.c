/*
 * relay.c - wiring: the buffer pool, the scheduler, the listening socket
 * and the first two actors (registry, acceptor), and the orderly shutdown
 * (fy_relay).  Everything after start-up happens in the actors; this file
 * only waits for the registry's "all channels closed" on an eventfd.
 */
#include "relay.h"

#include <errno.h>
#include <stdatomic.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/sock.h"
#include "ferry/trace.h"
#include "msg.h"
#include "relay/trsnap.h"
#include "tracer.h"
#include "relay_int.h"


/* After the drain timeout, forwarders are told to stop at a frame boundary
 * and say bye; this long more is theirs to do it, then every actor stops. */
#define CUT_GRACE_MS 1000

struct fy_relay {
    fy__ctx ctx;
    fy_conf conf;     /* the caller's, with the limits fitted to RLIMIT_NOFILE */
    fy__live live;
    size_t nfreed_auth; /* tables replaced by fy_relay_set_auth and freed since */
    bool caller_auth_replaced; /* fy_relay_new's table is no longer in force */
    fy_auth *own_auth;  /* the table in force when fy_relay_set_auth gave it */
    fy_addr bound;
    int lfd;
    bool started;
    void *reg_state;
    char metrics_bound[128];
    fy_actor *tracer; /* --trace: the streaming trace recorder, or NULL */
    /* --cluster: the replica manager (actors/replica.c); the member's thread
     * loads it to post, so it is published with a release store. */
    _Atomic(fy_actor *) replica;
    int lock_fd;      /* DATA/ferryd.lock, held until fy_relay_free */
};

static int mkdir_p(const char *path)
{
    char tmp[FY_CONF_PATH_MAX + 16];

    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Descriptors ferryd needs beyond connections and channels: listener,
 * epoll, eventfds, timers, lock, metrics listener and its clients, logs. */
#define FDS_SPARE 64
#define FDS_PER_CHANNEL 4 /* data segment, index, and the directory fds of both */
/* The socket; with --live-send file also a live forwarder's segment reader
 * (catch-up readers are short-lived and not counted, as before). */
static uint64_t fds_per_conn(const fy_conf *c)
{
    return c->live_send == FY_LIVE_SEND_FILE ? 2 : 1;
}

/* Fit max-connections and max-channels to the descriptor limit: raise the
 * soft limit towards the hard one if that is short, and if even the hard
 * limit is short, lower both limits (with a warning) so the relay refuses
 * with FY_ELIMIT instead of failing on EMFILE. */
static void fit_nofile(fy_conf *c)
{
    struct rlimit rl;
    uint64_t need = fds_per_conn(c) * c->max_connections + FDS_PER_CHANNEL * c->max_channels +
                    FDS_SPARE;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? (rlim_t)need : rl.rlim_max;
    if (want > rl.rlim_cur) {
        struct rlimit nr = {want, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &nr) == 0)
            rl.rlim_cur = want;
        else
            fy_klog(FY_LOG_WARN, "setrlimit failed", "resource=RLIMIT_NOFILE want=%llu err=%s",
                    (unsigned long long)want, fy_errname(-errno));
    }
    if (rl.rlim_cur >= need)
        return;
    uint64_t avail = rl.rlim_cur > 2 * FDS_SPARE ? rl.rlim_cur - FDS_SPARE : FDS_SPARE;
    uint64_t chans = c->max_channels, conns = c->max_connections;
    if (FDS_PER_CHANNEL * chans > avail / 2) /* channels get at most half */
        chans = avail / 2 / FDS_PER_CHANNEL ? avail / 2 / FDS_PER_CHANNEL : 1;
    if (conns > (avail - FDS_PER_CHANNEL * chans) / fds_per_conn(c))
        conns = (avail - FDS_PER_CHANNEL * chans) / fds_per_conn(c);
    fy_klog(FY_LOG_WARN, "descriptor limit too low for the configured limits",
            "rlimit_nofile=%llu need=%llu max_connections=%llu->%llu max_channels=%llu->%llu "
            "action=\"lower the limits (raise ulimit -n to keep them)\"",
            (unsigned long long)rl.rlim_cur, (unsigned long long)need,
            (unsigned long long)c->max_connections, (unsigned long long)conns,
            (unsigned long long)c->max_channels, (unsigned long long)chans);
    c->max_connections = conns ? conns : 1;
    c->max_channels = chans;
}

/* Is a the loopback address (127/8, ::1)? */
static bool is_loopback(const fy_addr *a)
{
    if (a->ss.ss_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(v6) ||
               (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
    }
    return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
}

/* The upstream's addresses; the listener's and the upstream link's TLS
 * settings, and the warnings for a listener that other machines reach
 * without TLS or tokens. */
static int setup_tls(fy_relay *r, char *err, size_t errcap)
{
    const fy_conf *c = &r->conf;
    char e[512] = "", where[64];
    int rc;

    if (c->tls_cert[0] &&
        (rc = fy_tls_server_new(c->tls_cert, c->tls_key, c->tls_client_ca, &r->ctx.tls, e,
                                sizeof e)) < 0) {
        snprintf(err, errcap, "TLS: %s", e);
        return rc;
    }
    /* The upstream's name is looked up here, once: actors never wait on a
     * resolver.  Its links try the addresses in turn (upstream_link.c). */
    if (c->upstream[0] &&
        (rc = fy_addr_resolve(c->upstream, "127.0.0.1", r->ctx.up_addr, FY_ADDR_MAX,
                              &r->ctx.up_naddr)) < 0) {
        snprintf(err, errcap, "upstream: %s '%s' (HOST:PORT: a host name, an IP, or [IPv6])",
                 rc == -EINVAL ? "cannot parse" : "cannot resolve the host of", c->upstream);
        return rc;
    }
    if (c->upstream_ca[0] &&
        (rc = fy_tls_client_new(c->upstream_ca, NULL, NULL, &r->ctx.up_tls, e, sizeof e)) < 0) {
        snprintf(err, errcap, "upstream TLS: %s", e);
        return rc;
    }
    fy_addr_format(&r->bound, where, sizeof where);
    if (r->ctx.tls)
        fy_klog(FY_LOG_INFO, "TLS on the listener", "listen=%s cert=%s client_certs=%s "
                "ktls=\"when the kernel offers it\"", where, c->tls_cert,
                c->tls_client_ca[0] ? "required" : "no");
    if (!is_loopback(&r->bound)) {
        if (!r->ctx.tls)
            fy_klog(FY_LOG_WARN, "listening on a non-loopback address without TLS",
                    "listen=%s action=\"serve plaintext; set tls-cert and tls-key "
                    "(docs/operations.md, TLS)\"", where);
        if (!fy_conf_token_file(c) && !fy__auth(&r->ctx))
            fy_klog(FY_LOG_WARN, "listening on a non-loopback address without --auth",
                    "listen=%s action=\"anyone who reaches the port may publish and "
                    "subscribe\"", where);
    }
    return 0;
}

/* Test hook (tests/relay, docs/development.md): FERRY_TEST_SYNC_FAIL_AFTER=N
 * makes the sync worker's job after the next N fail with EIO, as a failed
 * fdatasync would, so the relay's answer to it can be tested end to end. */
static void sync_fail_hook(fy_syncer *s)
{
    const char *v = getenv("FERRY_TEST_SYNC_FAIL_AFTER");
    char *end;

    if (!v || !*v)
        return;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || n > UINT32_MAX)
        return;
    fy_klog(FY_LOG_WARN, "test hook", "FERRY_TEST_SYNC_FAIL_AFTER=%lu action=\"a sync will "
            "fail with EIO\"", n);
    fy_syncer_fail_after(s, (unsigned)n, -EIO);
}

/* Test hook (tests/client/test_cli_storage.c): FERRY_TEST_WRITE_FAIL=ERR:N:MS
 * (ERR one of ENOSPC, EDQUOT, EIO) makes appends fail with ERR once N more
 * bytes were appended, for MS milliseconds (the first one part way). */
static void write_fail_hook(fy_syncer *s)
{
    static const struct { const char *name; int err; } errs[] = {
        {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EIO", EIO}};
    const char *v = getenv("FERRY_TEST_WRITE_FAIL");
    unsigned long long after, ms;
    char name[8], end;

    if (!v || sscanf(v, "%7[A-Z]:%llu:%llu%c", name, &after, &ms, &end) != 3)
        return;
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        if (!strcmp(name, errs[i].name)) {
            fy_klog(FY_LOG_WARN, "test hook", "FERRY_TEST_WRITE_FAIL=%s action=\"appends will "
                    "fail with %s after %llu bytes, for %llu ms\"", v, name, after, ms);
            fy_syncer_write_fault(s, -errs[i].err, after, ms);
        }
}

/* The data directory's lock (one ferryd per directory): r->lock_fd.  0 or
 * -errno with err set. */
static int lock_data(fy_relay *r, char *err, size_t errcap)
{
    const char *data = r->ctx.conf->data;
    long holder = 0;
    int rc = fy_store_lock(data, &holder);

    if (rc == -EBUSY)
        snprintf(err, errcap, "data directory %s is in use by another ferryd (pid %ld, "
                 "lock %s/" FY_STORE_LOCK_NAME "): one ferryd per data directory", data,
                 holder, data);
    else if (rc < 0)
        snprintf(err, errcap, "cannot lock %s/" FY_STORE_LOCK_NAME ": %s", data, strerror(-rc));
    else
        r->lock_fd = rc;
    return rc < 0 ? rc : 0;
}

int fy_relay_new(const fy_conf *conf, const fy_auth *auth, fy_relay **out, char *err,
                 size_t errcap)
{
    fy_relay *r = calloc(1, sizeof *r);
    fy_addr a;
    int rc;

    if (!r)
        return -ENOMEM;
    r->lfd = -1;
    r->lock_fd = -1;
    r->ctx.done_fd = -1;
    r->conf = *conf;
    fit_nofile(&r->conf);
    conf = r->ctx.conf = &r->conf;
    r->ctx.live = &r->live;
    atomic_init(&r->live.auth, auth);
    /* The lock before anything else in the directory is touched. */
    if ((rc = mkdir_p(conf->data)) < 0) {
        snprintf(err, errcap, "cannot create %s: %s", conf->data, strerror(-rc));
        goto fail;
    }
    if ((rc = lock_data(r, err, errcap)) < 0)
        goto fail;
    if (conf->cluster[0] && (rc = fy__progress_new(&r->ctx.progress)) < 0) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    snprintf(r->ctx.chan_root, sizeof r->ctx.chan_root, "%s/channels", conf->data);
    if ((rc = mkdir_p(r->ctx.chan_root)) < 0) {
        snprintf(err, errcap, "cannot create %s: %s", r->ctx.chan_root, strerror(-rc));
        goto fail;
    }
    if ((rc = fy_addr_parse(conf->listen, "127.0.0.1", &a)) < 0) {
        snprintf(err, errcap, "listen: %s '%s' (HOST:PORT: a host name, an IP, or [IPv6])",
                 rc == -EINVAL ? "cannot parse" : "cannot resolve the host of", conf->listen);
        goto fail;
    }
    if ((rc = fy_sock_listen(&a, 0, &r->bound)) < 0) {
        snprintf(err, errcap, "listen on %s: %s", conf->listen, strerror(-rc));
        goto fail;
    }
    r->lfd = rc;
    if ((rc = setup_tls(r, err, errcap)) < 0)
        goto fail;
    if ((rc = fy_bufpool_new(conf->memory, &r->ctx.pool)) < 0) {
        snprintf(err, errcap, "buffer pool of %llu bytes: %s", (unsigned long long)conf->memory,
                 fy_strerror(rc));
        goto fail;
    }
    /* trace-events 0: no recording at all (no flight recorder, no dumps). */
    fy_sched_opts so = {.threads = conf->threads, .trace_events = conf->trace_events,
                        .trace_off = conf->trace_events == 0};
    if ((rc = fy_sched_new(&so, &r->ctx.sched)) < 0) {
        snprintf(err, errcap, "scheduler: %s", fy_strerror(rc));
        goto fail;
    }
    if ((r->ctx.done_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(err, errcap, "eventfd: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = fy_syncer_start(&r->ctx.syncer)) < 0) {
        snprintf(err, errcap, "sync worker thread: %s", fy_strerror(rc));
        goto fail;
    }
    sync_fail_hook(r->ctx.syncer);
    write_fail_hook(r->ctx.syncer);
    *out = r;
    return 0;
fail:
    fy_relay_free(r);
    return rc;
}

void fy_relay_bound(const fy_relay *r, char *buf, size_t cap)
{
    fy_addr_format(&r->bound, buf, cap);
}

const char *fy_relay_metrics_bound(const fy_relay *r)
{
    return r->metrics_bound[0] ? r->metrics_bound : NULL;
}

int fy_relay_start(fy_relay *r, char *err, size_t errcap)
{
    int rc;

    if (r->ctx.conf->trace[0]) {
        fy_tracer_opts to = {.path = r->ctx.conf->trace,
                               .max_bytes = r->ctx.conf->trace_max_bytes};
        if ((rc = fy_tracer_new(r->ctx.sched, &to, &r->tracer, err, errcap)) < 0)
            return rc;
    }
    /* Best effort: a fatal signal writes DATA/trace-<time>-crash.trace. */
    if (r->ctx.conf->trace_events &&
        (rc = fy_trsnap_fatal_install(r->ctx.sched, r->ctx.conf->data)) < 0)
        fy_klog(FY_LOG_WARN, "crash trace not armed", "call=sigaction err=%s "
                "action=\"run without it\"", fy_errname(rc));
    if ((rc = fy_sched_start(r->ctx.sched)) < 0)
        return rc;
    r->started = true;
    if ((rc = fy__registry_new(&r->ctx, &r->ctx.registry, &r->reg_state)) < 0)
        return rc;
    if ((rc = fy__acceptor_new(&r->ctx, r->lfd, &r->ctx.acceptor)) < 0)
        return rc;
    /* After registry and acceptor, which it asks; before any scrape can
     * reach a session (its listener is watched from its first turn). */
    if (r->ctx.conf->metrics[0] &&
        (rc = fy__metrics_new(&r->ctx, r->ctx.conf->metrics, &r->ctx.metrics, r->metrics_bound,
                              sizeof r->metrics_bound, err, errcap)) < 0)
        return rc;
    if ((rc = fy__qinfo_new(&r->ctx, &r->ctx.query)) < 0) /* `ferry info` asks both */
        return rc;
    if (r->ctx.member) {
        fy_actor *rep;
        if ((rc = fy__replica_new(&r->ctx, &rep)) < 0)
            return rc;
        atomic_store_explicit(&r->replica, rep, memory_order_release);
    }
    int lfd = r->lfd;
    r->lfd = -1; /* the acceptor owns it now */
    /* ctx is complete: from here on it is only read. */
    if ((rc = fy__acceptor_listen(r->ctx.acceptor, lfd)) < 0)
        return rc;
    if (r->ctx.metrics) /* /readyz: ready from now on */
        fy__msg_ready(r->ctx.metrics);
    return 0;
}

int fy_relay_set_auth(fy_relay *r, fy_auth *a)
{
    fy_auth *old = r->own_auth;

    if (!old && fy_relay_auth(r))
        r->caller_auth_replaced = true;
    r->own_auth = a;
    /* release: fy_auth_load's writes of the table happen before a session
     * that loads this pointer (fy__auth, acquire) reads them */
    atomic_store_explicit(&r->live.auth, a, memory_order_release);
    /* A session may have loaded the old table this very turn: freed after
     * the grace period that waits for its read section to end. */
    if (old) {
        fy_auth_retire(old);
        r->nfreed_auth++;
    }
    return 0;
}

const fy_auth *fy_relay_auth(const fy_relay *r)
{
    return atomic_load_explicit(&r->live.auth, memory_order_relaxed); /* its only writer */
}

size_t fy_relay_auth_generations(const fy_relay *r)
{
    return r->caller_auth_replaced ? 1 : 0;
}

size_t fy_relay_auth_freed(const fy_relay *r)
{
    return r->nfreed_auth;
}

/* Wait up to ms for the registry's "all channels closed".  0 or -errno. */
static int wait_done(fy_relay *r, unsigned ms)
{
    uint64_t t0 = fy_now_ns();
    struct pollfd p = {.fd = r->ctx.done_fd, .events = POLLIN};
    for (;;) {
        uint64_t el = (fy_now_ns() - t0) / 1000000;
        if (el >= ms)
            return -ETIMEDOUT;
        int n = poll(&p, 1, (int)(ms - el));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int fy_relay_stop(fy_relay *r, unsigned timeout_ms)
{
    int rc;

    if (!r->started)
        return 0;
    if (r->ctx.metrics) /* /readyz: 503 from now on */
        fy__msg_shutdown(r->ctx.metrics);
    fy_actor *rep = atomic_load_explicit(&r->replica, memory_order_relaxed);
    if (rep) /* it opens channels no more, and its leases end */
        fy__msg_shutdown(rep);
    fy__msg_shutdown(r->ctx.acceptor);
    if ((rc = wait_done(r, timeout_ms)) == -ETIMEDOUT) {
        /* Receivers still being sent the log are cut at their next frame
         * boundary and told bye, rather than losing the connection in the
         * middle of a frame when the actors stop. */
        fy_klog(FY_LOG_WARN, "drain timeout", "waited_ms=%u action=\"cut receivers at a frame "
                "boundary, bye, then stop all actors within %u ms\"", timeout_ms, CUT_GRACE_MS);
        fy__msg_drain_cut(r->ctx.registry);
        if (wait_done(r, CUT_GRACE_MS) == 0)
            rc = 0;
    }
    if (rc < 0)
        fy_klog(FY_LOG_WARN, "shutdown incomplete", "waited_ms=%u err=%s action=\"stop all actors\"",
                timeout_ms + (rc == -ETIMEDOUT ? CUT_GRACE_MS : 0), fy_errname(rc));
    fy_sched_exit(r->ctx.sched);
    fy_sched_join(r->ctx.sched);
    r->started = false;
    /* No actor runs now: leave the cluster, revoking the lease so that
     * the others see this node gone at once, not a TTL later. */
    if (r->ctx.member) {
        fy_member_stop(r->ctx.member, false);
        fy_klog(FY_LOG_INFO, "cluster left", "lease=revoked");
    }
    r->ctx.member = NULL;
    return rc;
}

void fy_relay_set_member(fy_relay *r, struct fy_member *m)
{
    r->ctx.member = m;
}

void fy_relay_progress(fy_relay *r, const char *chan, uint64_t *epoch, uint64_t *seq)
{
    *epoch = *seq = 0;
    if (r->ctx.progress)
        fy__progress_get(r->ctx.progress, chan, epoch, seq);
}

void fy_relay_cluster_changed(fy_relay *r)
{
    /* acquire: pairs with fy_relay_start's release, the actor is whole */
    fy_actor *rep = atomic_load_explicit(&r->replica, memory_order_acquire);
    if (rep)
        (void)fy_actor_post(rep, FY_RM_CLUSTER, 0, 0, 0, NULL, NULL);
}

fy_sched *fy_relay_sched(fy_relay *r)
{
    return r->ctx.sched;
}

int fy_relay_reload_tls(fy_relay *r, char *desc, size_t desccap, char *err, size_t errcap)
{
    const fy_conf *c = &r->conf;
    int rc;

    if (desccap)
        desc[0] = 0;
    if (!r->ctx.tls)
        return 0;
    if ((rc = fy_tls_server_reload(r->ctx.tls, c->tls_cert, c->tls_key, c->tls_client_ca, err,
                                   errcap)) < 0)
        return rc;
    fy_tls_cert_describe(r->ctx.tls, desc, desccap);
    return 1;
}

int fy_relay_trace(fy_relay *r, char *path, size_t cap)
{
    return fy_trsnap_write(r->ctx.sched, r->ctx.conf->data, path, cap);
}

void fy_relay_free(fy_relay *r)
{
    if (!r)
        return;
    fy_member_stop(r->ctx.member, false); /* a relay freed without a stop */
    fy_actor_unref(r->tracer); /* stopped (after a last drain) by the join */
    fy_actor_unref(r->ctx.metrics);
    fy_actor_unref(r->ctx.query);
    fy_actor_unref(atomic_load_explicit(&r->replica, memory_order_relaxed));
    fy__progress_free(r->ctx.progress); /* the member, its reader, is stopped */
    fy_actor_unref(r->ctx.acceptor);
    fy_actor_unref(r->ctx.registry);
    fy__registry_cleanup(r->reg_state);
    if (r->ctx.sched)
        fy_sched_free(r->ctx.sched);
    /* After every writer's log is closed (their dtors wait for its jobs). */
    fy_syncer_stop(r->ctx.syncer);
    /* A forced stop may leave buffers referenced from released messages;
     * then the pool is left to process exit rather than asserting. */
    if (r->ctx.pool && fy_bufpool_live(r->ctx.pool) == 0)
        fy_bufpool_free(r->ctx.pool);
    if (r->lfd >= 0)
        close(r->lfd);
    fy_tls_free(r->ctx.tls); /* every connection is closed: the scheduler is joined */
    fy_tls_free(r->ctx.up_tls);
    if (r->ctx.done_fd >= 0)
        close(r->ctx.done_fd);
    if (r->lock_fd >= 0)
        close(r->lock_fd); /* the next ferryd may have the directory */
    fy_auth_free(r->own_auth);
    free(r);
}
