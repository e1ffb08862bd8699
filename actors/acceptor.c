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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sock.h"
#include "relay/stats.h"
#include "relay_int.h"

#define ACCEPTS_PER_TURN 64
#define BACKOFF_MS 100
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
    fy_actor **sess; /* references */
    size_t n, cap;
    uint64_t accepted;
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
        fy_actor_post(a->ctx->registry, FY_RM_SHUTDOWN, 0, 0, 0, NULL, NULL);
        fy_actor_stop(a->self);
    }
}

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
        fy_sock_set_nodelay(fd);
        int krc = fy_sock_set_keepalive(fd, KEEPIDLE_S, KEEPINTVL_S, KEEPCNT, USER_TIMEOUT_MS);
        if (krc < 0)
            fy_klog(FY_LOG_WARN, "setsockopt failed", "call=fy_sock_set_keepalive peer=%s err=%s "
                    "action=\"serve without keepalive\"", ps, fy_errname(krc));
        if (a->n == a->cap) {
            size_t cap = a->cap ? 2 * a->cap : 64;
            fy_actor **ns = realloc(a->sess, cap * sizeof *ns);
            if (!ns) {
                fy_klog(FY_LOG_ERROR, "malloc failed", "what=session_list peer=%s "
                        "action=\"close connection\"", ps);
                close(fd);
                continue;
            }
            a->sess = ns;
            a->cap = cap;
        }
        fy_actor *s;
        fy_klog(FY_LOG_INFO, "connect", "peer=%s sessions=%zu", ps, a->n + 1);
        int rc = fy__session_new(a->ctx, fd, ps, &s);
        if (rc < 0) {
            fy_klog(FY_LOG_ERROR, "cannot start session", "peer=%s err=%s action=\"close "
                    "connection\"", ps, fy_errname(rc));
            close(fd);
            continue;
        }
        a->sess[a->n++] = s;
        a->accepted++;
    }
    if (!a->cont_pending) { /* more may be waiting: next turn, after others ran */
        a->cont_pending = true;
        fy_actor_post(a->self, FY_RM_CONTINUE, 0, 0, 0, NULL, NULL);
    }
}

static void on_gone(acceptor *a, fy_actor *s, const fy_msg *m)
{
    if (m->u32)
        fy_stats_err(&a->ends, m->u32, 1);
    a->ends.v[FY_ST_BYTES_IN] += m->u64[0];
    a->ends.v[FY_ST_FRAMES_IN] += m->u64[1];
    for (size_t i = 0; i < a->n; i++)
        if (a->sess[i] == s) {
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
        r.fanout += (uint32_t)fy_stats_pass(m, a->sess[i]);
    r.depth = fy_actor_depth(a->self);
    r.v[FY_ST_ACCEPTED] = a->accepted;
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
        fy_actor_post(a->sess[i], FY_RM_SHUTDOWN, 0, 0, 0, NULL, NULL);
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
        fy_actor_unref(a->sess[i]);
    if (a->lfd >= 0)
        close(a->lfd);
    free(a->sess);
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
