/*
 * acceptor.c - the listening socket (the acceptor actor).
 *
 * Accepts until EAGAIN on every readiness message and starts one session
 * per connection.  When accept4 fails for lack of descriptors (EMFILE,
 * ENFILE) or memory, it stops accepting and retries on a timer, so a full
 * descriptor table degrades into a pause instead of a busy loop; the
 * kernel's backlog holds the waiting connections meanwhile.
 *
 * It also keeps the list of live sessions: at shutdown it tells each one,
 * and only when the last has gone does it pass the shutdown on to the
 * registry, so every batch a session sent is in its writer's mailbox before
 * the writer hears of the shutdown.
 *
 * And it enforces the connection limits: every client connection counts,
 * a session's until it ends, a receiver's (handed from its session to a
 * forwarder, which reports CONN_ADOPT before the session reports gone)
 * until the forwarder closes it (CONN_GONE).  A connection past
 * --max-connections or --max-connections-per-ip gets an FY_ELIMIT error
 * frame naming the limit, a FIN and a close.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sock.h"
#include "relay/stats.h"
#include "msg.h"
#include "relay_int.h"

#define ACCEPTS_PER_TURN 64
#define BACKOFF_MS 100
#define REFUSE_LOG_NS 1000000000ull /* at most one "connection refused" line a second */

/* One address's connections (a short array, scanned: it holds at most one
 * entry per connected address, and the limits bound those). */
typedef struct ipcount {
    uint64_t key[2];
    uint32_t n;
} ipcount;

/* A live session and its address key. */
typedef struct sref {
    fy_actor *a; /* a reference */
    uint64_t key[2];
} sref;

/* A peer gone without a reset (power cut, dropped route, a NAT that
 * forgot us) is found by TCP itself: keepalive probes after 30 s of
 * silence, every 10 s, 3 unanswered ones end it (60 s); TCP_USER_TIMEOUT
 * gives the same bound while sent data stays unacknowledged, where
 * keepalive never probes.  The idle timeout (session.c, forwarder.c) is
 * the application's own check on top (docs/architecture.md, "Timeouts"). */
#define KEEPIDLE_S 30
#define KEEPINTVL_S 10
#define KEEPCNT 3
#define USER_TIMEOUT_MS ((KEEPIDLE_S + KEEPINTVL_S * KEEPCNT) * 1000u)

typedef struct acceptor {
    const fy__ctx *ctx;
    fy_actor *self;
    int lfd;
    bool paused, shutting, cont_pending;
    sref *sess;
    size_t n, cap;
    uint64_t accepted;
    size_t conns;       /* client connections: sessions + receivers */
    ipcount *ips;
    size_t nips, capips;
    uint64_t refused, refused_unlogged, refused_logged_ns;
    /* For /metrics: how sessions ended (error codes) and, in v[BYTES_IN] and
     * v[FRAMES_IN], the totals of the sessions that have ended, so a
     * collector can keep counters monotonic without having seen them. */
    fy_stats_rec ends;
} acceptor;

static void maybe_done(acceptor *a)
{
    if (a->shutting && a->n == 0 && a->lfd < 0) {
        a->lfd = -2; /* once */
        fy_klog(FY_LOG_INFO, "sessions closed", "accepted=%llu", (unsigned long long)a->accepted);
        fy__msg_shutdown(a->ctx->registry);
        fy_actor_stop(a->self);
    }
}

/* ---- connection limits -------------------------------------------------------- */

void fy__addr_key(const fy_addr *a, uint64_t key[2])
{
    uint8_t b[16] = {0};

    if (a->ss.ss_family == AF_INET6) {
        memcpy(b, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
    } else if (a->ss.ss_family == AF_INET) {
        b[10] = b[11] = 0xff; /* ::ffff:a.b.c.d, as the kernel maps it */
        memcpy(b + 12, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
    }
    memcpy(key, b, 16);
}

static ipcount *ip_find(acceptor *a, const uint64_t key[2])
{
    for (size_t i = 0; i < a->nips; i++)
        if (a->ips[i].key[0] == key[0] && a->ips[i].key[1] == key[1])
            return &a->ips[i];
    return NULL;
}

/* Count one more connection from key.  0, or -ENOMEM (then it is not counted). */
static int conn_add(acceptor *a, const uint64_t key[2])
{
    ipcount *c = ip_find(a, key);

    if (!c) {
        if (a->nips == a->capips) {
            size_t cap = a->capips ? 2 * a->capips : 64;
            ipcount *ni = realloc(a->ips, cap * sizeof *ni);
            if (!ni)
                return -ENOMEM;
            a->ips = ni;
            a->capips = cap;
        }
        c = &a->ips[a->nips++];
        *c = (ipcount){.key = {key[0], key[1]}};
    }
    c->n++;
    a->conns++;
    return 0;
}

static void conn_del(acceptor *a, const uint64_t key[2])
{
    ipcount *c = ip_find(a, key);

    if (!c || !a->conns)
        return;
    a->conns--;
    if (--c->n == 0)
        *c = a->ips[--a->nips];
}

/* Which limit would one more connection from key pass?  NULL: none. */
static const char *over_limit(acceptor *a, const uint64_t key[2], uint64_t *value)
{
    const fy_conf *c = a->ctx->conf;
    const ipcount *ic = ip_find(a, key);

    if (a->conns >= c->max_connections) {
        *value = c->max_connections;
        return "max-connections";
    }
    if (ic && ic->n >= c->max_conns_per_ip) {
        *value = c->max_conns_per_ip;
        return "max-connections-per-ip";
    }
    return NULL;
}

/* Refuse fd: an FY_ELIMIT error frame, FIN, read what the client already
 * sent (so close() does not reset the connection under the frame), close. */
static void refuse(acceptor *a, int fd, const char *peer, const char *limit, uint64_t value)
{
    uint8_t fr[FY_FRAME_HDR_SIZE + 256];
    int n = fy__ctl_error(0, FY_ELIMIT, fr, sizeof fr, "connection refused: %s %llu reached",
                          limit, (unsigned long long)value);

    if (n > 0) {
        struct iovec iov = {fr, (size_t)n};
        (void)fy_sock_writev(fd, &iov, 1); /* a fresh socket's buffer takes it whole */
    }
    (void)fy_sock_shutdown_wr(fd);
    (void)fy_sock_drain(fd, 4);
    close(fd);
    a->refused++;
    fy_stats_err(&a->ends, FY_ELIMIT, 1);
    uint64_t now = fy_now_ns();
    if (now - a->refused_logged_ns >= REFUSE_LOG_NS) {
        fy_klog(FY_LOG_WARN, "connection refused", "peer=%s limit=%s value=%llu connections=%zu "
                "refused_total=%llu suppressed=%llu action=\"error frame FY_ELIMIT, close\"",
                peer, limit, (unsigned long long)value, a->conns, (unsigned long long)a->refused,
                (unsigned long long)a->refused_unlogged);
        a->refused_logged_ns = now;
        a->refused_unlogged = 0;
    } else {
        a->refused_unlogged++;
    }
}

/* ---- accepting ---------------------------------------------------------------- */

static void accept_some(acceptor *a)
{
    FY__OWNER(a->self);
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
        fy_addr peer;
        char ps[64];
        int fd = fy_sock_accept(a->lfd, &peer);
        if (fd == -EAGAIN)
            return;
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                fy_klog(FY_LOG_WARN, "accept4 failed", "err=%s action=\"pause %dms\"",
                        fy_errname(fd), BACKOFF_MS);
                a->paused = true;
                fy_timer_after(a->self, BACKOFF_MS, FY__TM_ACCEPT);
                return;
            }
            /* ECONNABORTED and friends: that one connection is gone. */
            fy_klog(FY_LOG_DEBUG, "accept4 failed", "err=%s action=\"skip\"", fy_errname(fd));
            continue;
        }
        fy_addr_format(&peer, ps, sizeof ps);
        uint64_t key[2], value = 0;
        fy__addr_key(&peer, key);
        const char *limit = over_limit(a, key, &value);
        if (limit) {
            refuse(a, fd, ps, limit, value);
            continue;
        }
        fy_sock_set_nodelay(fd);
        int krc = fy_sock_set_keepalive(fd, KEEPIDLE_S, KEEPINTVL_S, KEEPCNT, USER_TIMEOUT_MS);
        if (krc < 0)
            fy_klog(FY_LOG_WARN, "setsockopt failed", "call=fy_sock_set_keepalive peer=%s err=%s "
                    "action=\"serve without keepalive\"", ps, fy_errname(krc));
        if (a->n == a->cap) {
            size_t cap = a->cap ? 2 * a->cap : 64;
            sref *ns = realloc(a->sess, cap * sizeof *ns);
            if (!ns) {
                fy_klog(FY_LOG_ERROR, "malloc failed", "what=session_list peer=%s "
                        "action=\"close connection\"", ps);
                close(fd);
                continue;
            }
            a->sess = ns;
            a->cap = cap;
        }
        if (conn_add(a, key) < 0) {
            fy_klog(FY_LOG_ERROR, "malloc failed", "what=address_list peer=%s "
                    "action=\"close connection\"", ps);
            close(fd);
            continue;
        }
        fy_actor *s;
        fy_klog(FY_LOG_INFO, "connect", "peer=%s sessions=%zu connections=%zu", ps, a->n + 1,
                a->conns);
        int rc = fy__session_new(a->ctx, fd, ps, key, &s);
        if (rc < 0) {
            fy_klog(FY_LOG_ERROR, "cannot start session", "peer=%s err=%s action=\"close "
                    "connection\"", ps, fy_errname(rc));
            conn_del(a, key);
            close(fd);
            continue;
        }
        a->sess[a->n++] = (sref){.a = s, .key = {key[0], key[1]}};
        a->accepted++;
    }
    if (!a->cont_pending) { /* more may be waiting: next turn, after others ran */
        a->cont_pending = true;
        fy__msg_continue(a->self);
    }
}

static void on_gone(acceptor *a, fy_actor *s, const fy_msg *m)
{
    if (m->u32)
        fy_stats_err(&a->ends, m->u32, 1);
    a->ends.v[FY_ST_TLS_FAILED] += m->u32 == FY_ETLS; /* its own series: alerts need it */
    a->ends.v[FY_ST_BYTES_IN] += m->u64[0];
    a->ends.v[FY_ST_FRAMES_IN] += m->u64[1];
    for (size_t i = 0; i < a->n; i++)
        if (a->sess[i].a == s) {
            conn_del(a, a->sess[i].key);
            a->sess[i] = a->sess[--a->n];
            fy_actor_unref(s);
            break;
        }
    maybe_done(a);
}

/* Stats: answer for the acceptor and pass the request to every session. */
static void on_stats(acceptor *a, const fy_msg *m)
{
    fy_stats_rec r = a->ends;

    r.actor = fy_actor_id(a->self);
    r.kind = FY_KIND_ACCEPTOR;

    for (size_t i = 0; i < a->n; i++)
        r.fanout += (uint32_t)fy_stats_pass(m, a->sess[i].a);
    r.depth = fy_actor_depth(a->self);
    r.v[FY_ST_ACCEPTED] = a->accepted;
    r.v[FY_ST_REFUSED] = a->refused;
    fy_stats_answer(a->ctx->pool, a->ctx->metrics, m, &r);
}

static void on_shutdown(acceptor *a)
{
    if (a->shutting)
        return;
    a->shutting = true;
    if (a->lfd >= 0) {
        /* Connections still in the backlog get a bye rather than a reset. */
        uint8_t bye[FY_FRAME_HDR_SIZE];
        int n = fy__ctl_frame(FY_FT_BYE, 0, 0, NULL, 0, bye, sizeof bye);
        for (int i = 0; i < 1024; i++) {
            int fd = fy_sock_accept(a->lfd, NULL);
            if (fd < 0)
                break;
            struct iovec iov = {bye, (size_t)n};
            fy_sock_writev(fd, &iov, 1);
            close(fd);
            a->accepted++;
        }
        fy_io_del(a->ctx->sched, a->lfd);
        close(a->lfd);
        a->lfd = -1;
    }
    fy_klog(FY_LOG_INFO, "shutdown: stopped accepting", "sessions=%zu", a->n);
    for (size_t i = 0; i < a->n; i++)
        fy__msg_shutdown(a->sess[i].a);
    maybe_done(a);
}

static int handle(fy_actor *self, void *state, fy_msg *m)
{
    acceptor *a = state;

    (void)self;
    switch (m->type) {
    case FY_MSG_IO:
        if (!a->paused && !a->shutting)
            accept_some(a);
        break;
    case FY_RM_CONTINUE:
        a->cont_pending = false;
        if (!a->paused && !a->shutting)
            accept_some(a);
        break;
    case FY_MSG_TIMER:
        a->paused = false;
        if (!a->shutting)
            accept_some(a);
        break;
    case FY_RM_SESSION_GONE:
        on_gone(a, m->ptr, m);
        break;
    case FY_RM_CONN_ADOPT:
        if (conn_add(a, m->u64) < 0)
            fy_klog(FY_LOG_ERROR, "malloc failed", "what=address_list action=\"receiver not "
                    "counted\"");
        break;
    case FY_RM_CONN_GONE:
        conn_del(a, m->u64);
        break;
    case FY_RM_SHUTDOWN:
        on_shutdown(a);
        break;
    case FY_STATS_REQ:
        on_stats(a, m);
        break;
    default:
        break;
    }
    return FY_MSG_DONE;
}

static void dtor(void *state)
{
    acceptor *a = state;

    for (size_t i = 0; i < a->n; i++)
        fy_actor_unref(a->sess[i].a);
    if (a->lfd >= 0)
        close(a->lfd);
    free(a->sess);
    free(a->ips);
    free(a);
}

int fy__acceptor_new(const fy__ctx *ctx, int lfd, fy_actor **out)
{
    acceptor *a = calloc(1, sizeof *a);
    int rc;

    if (!a)
        return -ENOMEM;
    a->ctx = ctx;
    a->lfd = lfd;
    fy_actor_opts o = {.fn = handle, .dtor = dtor, .state = a, .kind = FY_KIND_ACCEPTOR,
                       .label = "acceptor"};
    if ((rc = fy_actor_new(ctx->sched, &o, &a->self)) < 0) {
        free(a);
        return rc;
    }
    *out = a->self;
    return 0;
}

/* Start watching the listening socket (after the registry exists). */
int fy__acceptor_listen(fy_actor *a, int lfd)
{
    return fy_io_add(a, lfd, FY_IO_READ, 0);
}
