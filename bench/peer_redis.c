/*
 * peer_redis.c - the suite's fan-out client for redis-server pub/sub: one
 * publisher, N subscribers, every payload byte counted at every subscriber.
 *
 * It plays the part ferry-swarm plays against ferryd in bench/run's `peers`
 * case (docs/benchmarks.md, "Peers"), with the same shape and the same
 * bookkeeping, so the two relays are compared through clients that do the
 * same work per byte:
 *
 * - Subscribers: N connections, each sends SUBSCRIBE and is dealt to one of
 *   --threads workers (epoll, non-blocking, edge-triggered, 256 KiB recv()s),
 *   round-robin, like the swarm's receivers.  The clock starts when the last
 *   subscription is confirmed (the swarm: when the last receiver is welcomed)
 *   and stops when the last subscriber has the last byte of the last message.
 * - Publisher: one connection, PUBLISH commands written with writev() straight
 *   from a pattern buffer, 64 messages a call, at most 8 MiB of commands not
 *   yet answered (redis answers each with the number of subscribers that got
 *   it; an answer other than N is counted as `short_replies`).
 * - Content: message k is an 8-byte little-endian k followed by pattern bytes
 *   at an offset that depends on k.  Each subscriber checks k (a gap counts
 *   the skipped messages as lost, an old k is a duplicate) and memcmp()s every
 *   other payload byte with the pattern, as `ferry-swarm --verify content`
 *   does.  RESP is parsed by hand: a message is six CRLF-ended lines
 *   ("*3", "$7", "message", "$n", channel, "$len") then len bytes and CRLF;
 *   a subscribe confirmation has the same six-line shape ending in ":1".
 *
 * Output: a readable line, then one key=value line (mode=redis ... with
 * bytes_expected, bytes (received), lost_bytes (negative when duplicates
 * arrived), integrity_failures = lost + duplicate + corrupt messages +
 * protocol errors + subscribers redis disconnected), the
 * form bench/lib/fbench/swarm.py parses.  Exit 0 when every subscriber got
 * every byte intact, 1 on loss, corruption or timeout, 2 on bad usage or
 * when the server cannot be reached.  Bounded by --timeout (default 120 s).
 *
 * Plain sockets, no hiredis: the two RESP shapes above are all it needs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAT_SPAN (2u << 20)      /* message offsets into the pattern repeat after this */
#define RX_BUF (256u * 1024u)    /* one recv() */
#define TX_BATCH 64u             /* PUBLISH commands per writev() */
#define TX_WINDOW (8u << 20)     /* bytes of commands sent but not yet answered */
#define MAX_THREADS 16

static const char usage[] =
    "usage: peer_redis --server HOST:PORT [--receivers N] [--size BYTES] [--chunk BYTES]\n"
    "                  [--threads T] [--channel NAME] [--timeout S]\n"
    "One publisher, N subscribers of one redis pub/sub channel; each subscriber counts and\n"
    "checks every payload byte.  --size is the payload each subscriber gets (a multiple of\n"
    "--chunk, the message size; K/M/G = 2^10/2^20/2^30; defaults 64M, 64K), --receivers 1,\n"
    "--threads 2 subscriber workers, --channel fbench, --timeout 120.\n"
    "stdout ends with one key=value line (mode=redis ...).  Exit 0: every byte arrived\n"
    "intact; 1: loss, corruption or timeout; 2: bad usage or server unreachable.\n";

/* ---- shared, read-only after start ---------------------------------------- */

static uint8_t *pat;            /* PAT_SPAN + chunk bytes of splitmix64 */
static uint64_t nmsgs, chunk;   /* messages per run, payload bytes per message */
static unsigned nrx;
static atomic_uint subscribed;  /* confirmations seen; main waits for nrx */
static atomic_uint finished;    /* subscribers done or closed */
static atomic_bool stop;        /* main -> workers: leave the loop */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Where message k's bytes 8.. come from: pat + msg_base(k) + offset. */
static uint64_t msg_base(uint64_t k)
{
    return (k * 4099u) % PAT_SPAN;
}

/* ---- subscribers ------------------------------------------------------------- */

enum { S_HDR, S_PAYLOAD, S_TRAILER };

typedef struct sub {
    int fd;
    int state;
    char hdr[256];            /* the six header lines, accumulated */
    unsigned hlen, lines;
    uint64_t plen, poff;      /* current payload length, bytes of it seen */
    uint8_t seqb[8];
    uint64_t k;               /* current message's number (valid once poff >= 8) */
    bool bad;                 /* current message failed its memcmp */
    unsigned trail;           /* CRLF bytes after the payload seen */
    uint64_t next;            /* next message number expected */
    uint64_t bytes, msgs, lost, dup, corrupt, proto_err;
    uint64_t done_ns;
    bool done, closed;
} sub;

/* Owner: the one worker whose epoll set holds s.  Marks s finished once. */
static void sub_finish(sub *s, bool closed)
{
    if (s->done || s->closed)
        return;
    if (closed)
        s->closed = true;
    else {
        s->done = true;
        s->done_ns = now_ns();
    }
    atomic_fetch_add(&finished, 1);
}

/* A complete six-line header is in s->hdr: a subscribe confirmation (no
 * payload) or a message (payload follows).  Returns false on anything else. */
static bool sub_header(sub *s)
{
    char *line[6];
    char *p = s->hdr;
    for (unsigned i = 0; i < 6; i++) {
        line[i] = p;
        char *e = strstr(p, "\r\n");
        if (!e)
            return false;
        *e = 0;
        p = e + 2;
    }
    if (strcmp(line[2], "subscribe") == 0) {
        atomic_fetch_add(&subscribed, 1);
        return true;
    }
    if (strcmp(line[2], "message") != 0 || line[5][0] != '$')
        return false;
    s->plen = strtoull(line[5] + 1, NULL, 10);
    if (s->plen != chunk)
        return false;
    s->poff = 0;
    s->bad = false;
    s->state = S_PAYLOAD;
    return true;
}

/* Owner only.  Consume n received bytes: headers, payload (counted and
 * checked), CRLFs.  A malformed header finishes s as closed. */
static void sub_feed(sub *s, const uint8_t *b, size_t n)
{
    while (n && !s->closed) {
        if (s->state == S_HDR) {
            uint8_t c = *b++;
            n--;
            if (s->hlen + 1 >= sizeof s->hdr) {
                s->proto_err++;
                sub_finish(s, true);
                return;
            }
            s->hdr[s->hlen++] = (char)c;
            if (c == '\n' && ++s->lines == 6) {
                s->hdr[s->hlen] = 0;
                s->hlen = s->lines = 0;
                if (!sub_header(s)) {
                    s->proto_err++;
                    sub_finish(s, true);
                    return;
                }
            }
        } else if (s->state == S_PAYLOAD) {
            size_t take = (size_t)(s->plen - s->poff) < n ? (size_t)(s->plen - s->poff) : n;
            size_t used = 0;
            while (s->poff < 8 && used < take)
                s->seqb[s->poff++] = b[used++];
            if (s->poff == 8 && used) { /* the number is complete now */
                uint64_t k = 0;
                for (int i = 7; i >= 0; i--)
                    k = (k << 8) | s->seqb[i];
                s->k = k;
                if (k < s->next)
                    s->dup++;
                else {
                    s->lost += k - s->next;
                    s->next = k + 1;
                }
            }
            if (take > used) {
                if (memcmp(b + used, pat + msg_base(s->k) + s->poff, take - used) != 0)
                    s->bad = true;
                s->poff += take - used;
            }
            s->bytes += take;
            b += take;
            n -= take;
            if (s->poff == s->plen) {
                s->corrupt += s->bad ? 1 : 0;
                s->msgs++;
                s->state = S_TRAILER;
                s->trail = 0;
            }
        } else {
            b++, n--;
            if (++s->trail == 2) {
                s->state = S_HDR;
                if (s->next >= nmsgs)
                    sub_finish(s, false);
            }
        }
    }
}

typedef struct worker {
    pthread_t th;
    int ep;
    sub **subs;
    unsigned n;
} worker;

/* One subscriber worker: drains its epoll set until main sets `stop`.  A
 * connection redis closes is finished as closed (its missing bytes are lost). */
static void *worker_main(void *arg)
{
    worker *w = arg;
    uint8_t *buf = malloc(RX_BUF);
    struct epoll_event ev[64];
    if (!buf)
        return NULL;
    while (!atomic_load(&stop)) {
        int k = epoll_wait(w->ep, ev, 64, 100);
        for (int i = 0; i < k; i++) {
            sub *s = ev[i].data.ptr;
            for (;;) { /* edge-triggered: read until EAGAIN */
                ssize_t r = recv(s->fd, buf, RX_BUF, 0);
                if (r > 0) {
                    sub_feed(s, buf, (size_t)r);
                    continue;
                }
                if (r < 0 && errno == EINTR)
                    continue;
                if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                    epoll_ctl(w->ep, EPOLL_CTL_DEL, s->fd, NULL);
                    sub_finish(s, true); /* redis closed it: what is missing is lost */
                }
                break;
            }
        }
    }
    free(buf);
    return NULL;
}

/* ---- publisher ------------------------------------------------------------------- */

typedef struct pub {
    int fd;
    uint64_t sent, replies, short_replies;
    char hdr[128];
    size_t hlen;
    struct iovec iov[TX_BATCH * 4];
    unsigned niov, iov_at;
    uint8_t seqs[TX_BATCH][8];
    uint64_t reply_val;
    bool in_reply;
} pub;

/* Publisher only: the next up to TX_BATCH PUBLISH commands as iovecs, no more
 * than window_msgs unanswered.  May build none (window full, or all sent). */
static void pub_batch(pub *p, uint64_t window_msgs)
{
    p->niov = p->iov_at = 0;
    for (unsigned i = 0; i < TX_BATCH && p->sent < nmsgs && p->sent - p->replies < window_msgs;
         i++, p->sent++) {
        uint64_t k = p->sent;
        for (int j = 0; j < 8; j++)
            p->seqs[i][j] = (uint8_t)(k >> (8 * j));
        p->iov[p->niov++] = (struct iovec){p->hdr, p->hlen};
        p->iov[p->niov++] = (struct iovec){p->seqs[i], 8};
        p->iov[p->niov++] = (struct iovec){pat + msg_base(k) + 8, chunk - 8};
        p->iov[p->niov++] = (struct iovec){(void *)"\r\n", 2};
    }
}

/* Answers are ":<count>\r\n"; anything else ends the run as a protocol error. */
static int pub_replies(pub *p, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!p->in_reply) {
            if (c != ':')
                return -EPROTO;
            p->in_reply = true;
            p->reply_val = 0;
        } else if (c >= '0' && c <= '9')
            p->reply_val = p->reply_val * 10 + (uint64_t)(c - '0');
        else if (c == '\n') {
            p->in_reply = false;
            p->replies++;
            p->short_replies += p->reply_val != nrx;
        }
    }
    return 0;
}

/* Publish every message; returns 0, -ETIMEDOUT past deadline, or -errno. */
static int pub_run(pub *p, uint64_t deadline)
{
    uint64_t window = TX_WINDOW / (chunk + p->hlen + 10);
    char rb[4096];
    if (window < 1)
        window = 1;
    while (p->replies < nmsgs) {
        if (now_ns() > deadline)
            return -ETIMEDOUT;
        if (p->iov_at == p->niov)
            pub_batch(p, window);
        struct pollfd pf = {p->fd, POLLIN | (p->iov_at < p->niov ? POLLOUT : 0), 0};
        if (poll(&pf, 1, 100) < 0 && errno != EINTR)
            return -errno;
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(p->fd, rb, sizeof rb, 0);
            if (r == 0)
                return -ECONNRESET;
            if (r < 0 && errno != EAGAIN && errno != EINTR)
                return -errno;
            if (r > 0 && pub_replies(p, rb, (size_t)r) < 0)
                return -EPROTO;
        }
        if (p->iov_at < p->niov && (pf.revents & POLLOUT)) {
            unsigned cnt = p->niov - p->iov_at;
            ssize_t w = writev(p->fd, p->iov + p->iov_at, (int)(cnt > 1024 ? 1024 : cnt));
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                return -errno;
            for (size_t left = w > 0 ? (size_t)w : 0; left;) { /* advance past what went */
                struct iovec *v = &p->iov[p->iov_at];
                if (left >= v->iov_len) {
                    left -= v->iov_len;
                    p->iov_at++;
                } else {
                    v->iov_base = (char *)v->iov_base + left;
                    v->iov_len -= left;
                    left = 0;
                }
            }
        }
    }
    return 0;
}

/* ---- setup and main -------------------------------------------------------------- */

/* A blocking TCP connection with TCP_NODELAY; the fd, or -errno. */
static int dial(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* All of b on a blocking fd; 0 or -errno. */
static int send_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -errno;
        b += w, n -= (size_t)w;
    }
    return 0;
}

/* "64K" -> 65536 (K/M/G are powers of 1024, as ferry's own flags). */
static uint64_t parse_bytes(const char *s)
{
    char *e;
    uint64_t v = strtoull(s, &e, 10);
    switch (*e) {
    case 'K': case 'k': return v << 10;
    case 'M': case 'm': return v << 20;
    case 'G': case 'g': return v << 30;
    default: return v;
    }
}

static void die_usage(const char *why)
{
    fprintf(stderr, "peer_redis: %s\n%s", why, usage);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *server = NULL, *channel = "fbench";
    uint64_t size = 64u << 20;
    unsigned threads = 2;
    double timeout = 120;
    chunk = 64u << 10;
    nrx = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!v)
            die_usage("missing value");
        i++;
        if (!strcmp(a, "--server")) server = v;
        else if (!strcmp(a, "--receivers")) nrx = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--size")) size = parse_bytes(v);
        else if (!strcmp(a, "--chunk")) chunk = parse_bytes(v);
        else if (!strcmp(a, "--threads")) threads = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--channel")) channel = v;
        else if (!strcmp(a, "--timeout")) timeout = strtod(v, NULL);
        else die_usage("unknown option");
    }
    if (!server || nrx < 1 || chunk < 16 || chunk > (64u << 20) || size < chunk ||
        size % chunk || threads < 1 || threads > MAX_THREADS || timeout <= 0 ||
        strlen(channel) > 64)
        die_usage("need --server HOST:PORT; --size a multiple of --chunk (>= 16)");
    nmsgs = size / chunk;

    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64];
    const char *colon = strrchr(server, ':');
    if (!colon || (size_t)(colon - server) >= sizeof host)
        die_usage("--server HOST:PORT");
    memcpy(host, server, (size_t)(colon - server));
    host[colon - server] = 0;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die_usage("--server wants an IPv4 address");

    pat = malloc(PAT_SPAN + chunk);
    if (!pat) {
        fprintf(stderr, "level=error msg=\"malloc failed\" bytes=%llu action=exit\n",
                (unsigned long long)(PAT_SPAN + chunk));
        return 2;
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < PAT_SPAN + chunk; i++) { /* splitmix64, one byte per step */
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        pat[i] = (uint8_t)(z ^ (z >> 31));
    }

    uint64_t t_setup = now_ns(), deadline = t_setup + (uint64_t)(timeout * 1e9);
    sub *subs = calloc(nrx, sizeof *subs);
    worker w[MAX_THREADS] = {0};
    char cmd[160];
    int clen = snprintf(cmd, sizeof cmd, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                        strlen(channel), channel);
    for (unsigned t = 0; t < threads; t++) {
        w[t].ep = epoll_create1(EPOLL_CLOEXEC);
        w[t].subs = calloc(nrx, sizeof(sub *));
    }
    for (unsigned g = 0; g < nrx; g++) {
        int fd = dial(&sa);
        if (fd < 0 || send_all(fd, cmd, (size_t)clen) < 0) {
            fprintf(stderr, "level=error msg=\"connect() or SUBSCRIBE failed\" server=%s "
                    "err=\"%s\" action=exit\n", server, strerror(fd < 0 ? -fd : errno));
            return 2;
        }
        int fl = 1;
        ioctl(fd, FIONBIO, &fl); /* the workers read until EAGAIN */
        subs[g].fd = fd;
        worker *wk = &w[(g + 1) % threads]; /* as the swarm deals its receivers */
        wk->subs[wk->n++] = &subs[g];
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &subs[g]};
        epoll_ctl(wk->ep, EPOLL_CTL_ADD, fd, &ev);
    }
    for (unsigned t = 0; t < threads; t++)
        pthread_create(&w[t].th, NULL, worker_main, &w[t]);
    while (atomic_load(&subscribed) < nrx && now_ns() < deadline &&
           atomic_load(&finished) == 0)
        usleep(200);

    pub p = {0};
    p.hlen = (size_t)snprintf(p.hdr, sizeof p.hdr, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%llu\r\n",
                              strlen(channel), channel, (unsigned long long)chunk);
    uint64_t t0 = now_ns();
    int prc = -ETIMEDOUT; /* not every subscription was confirmed in time */
    if (atomic_load(&subscribed) == nrx) {
        p.fd = dial(&sa);
        prc = p.fd;
        if (p.fd >= 0) {
            int fl = 1;
            ioctl(p.fd, FIONBIO, &fl);
            prc = pub_run(&p, deadline);
        }
    }
    if (prc < 0)
        fprintf(stderr, "level=error msg=\"publisher stopped\" err=\"%s\" sent=%llu "
                "answered=%llu action=\"count what arrived\"\n", strerror(-prc),
                (unsigned long long)p.sent, (unsigned long long)p.replies);
    while (atomic_load(&finished) < nrx && now_ns() < deadline)
        usleep(200);
    bool timed_out = atomic_load(&finished) < nrx || prc == -ETIMEDOUT;
    atomic_store(&stop, true);
    for (unsigned t = 0; t < threads; t++)
        pthread_join(w[t].th, NULL);

    uint64_t bytes = 0, lost = 0, dup = 0, corrupt = 0, perr = 0, closed = 0, t_end = t0;
    for (unsigned g = 0; g < nrx; g++) {
        sub *s = &subs[g];
        bytes += s->bytes;
        lost += s->lost + (s->done ? 0 : nmsgs - (s->next < nmsgs ? s->next : nmsgs));
        dup += s->dup;
        corrupt += s->corrupt;
        perr += s->proto_err;
        closed += s->closed;
        if (s->done && s->done_ns > t_end)
            t_end = s->done_ns;
        close(s->fd);
    }
    if (timed_out || t_end == t0) /* nobody finished whole: time to the end of the run */
        t_end = now_ns();
    if (p.fd > 0)
        close(p.fd);
    for (unsigned t = 0; t < threads; t++) {
        close(w[t].ep);
        free(w[t].subs);
    }
    free(subs);
    free(pat);
    uint64_t expected = (uint64_t)nrx * size;
    double secs = (double)(t_end - t0) / 1e9;
    uint64_t fails = lost + dup + corrupt + perr + closed + (prc < 0 ? 1 : 0);
    printf("redis pub/sub %s: 1 -> %u, %llu x %llu bytes, %.3f s, %.1f MB/s aggregate, "
           "%llu of %llu bytes received, %llu integrity failures\n", server, nrx,
           (unsigned long long)nmsgs, (unsigned long long)chunk, secs, bytes / secs / 1e6,
           (unsigned long long)bytes, (unsigned long long)expected, (unsigned long long)fails);
    printf("mode=redis target=%s senders=1 receivers=%u size=%llu packet=%llu messages=%llu "
           "threads=%u bytes_expected=%llu bytes=%llu lost_bytes=%lld seconds=%.6f "
           "mbps_aggregate=%.1f mbps_per_receiver=%.1f msgs_per_s=%.0f lost_msgs=%llu "
           "duplicate=%llu corrupt=%llu proto_errors=%llu disconnected=%llu short_replies=%llu "
           "integrity_failures=%llu timeout=%d setup_seconds=%.3f\n",
           server, nrx, (unsigned long long)size, (unsigned long long)chunk,
           (unsigned long long)nmsgs, threads, (unsigned long long)expected,
           (unsigned long long)bytes, (long long)expected - (long long)bytes, secs,
           bytes / secs / 1e6, bytes / secs / 1e6 / nrx,
           (double)bytes / (double)chunk / secs, (unsigned long long)lost,
           (unsigned long long)dup, (unsigned long long)corrupt, (unsigned long long)perr,
           (unsigned long long)closed, (unsigned long long)p.short_replies,
           (unsigned long long)fails, timed_out ? 1 : 0, (double)(t0 - t_setup) / 1e9);
    return fails || timed_out ? 1 : 0;
}
