/*
 * baseline.c - ferry-baseline: the relay Ferry replaces, rebuilt small, as a
 * benchmark baseline only (see README.md beside it).
 *
 * It keeps the old design's shape on purpose: a thread per connection; ONE
 * mutex (relay.lock) around the table of channels and their receiver sockets;
 * a sending thread takes that lock, appends the frame to the data file and
 * an index record to the index file with plain write(), then send()s the
 * frame to every live receiver with blocking sockets -- still holding the
 * lock -- so the whole relay does one send at a time and one slow receiver
 * stalls everyone.  A receiver that asks for history gets a forwarder thread
 * that copies the data file to it and then joins the live list under the lock.
 * It speaks Ferry's wire protocol (ferry/proto.h) so the same clients and
 * benchmarks drive both.  The table lives in one struct made in main() and
 * handed to every thread: "global" describes the lock's reach, not storage.
 */
#include "ferry/err.h"
#include "ferry/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHANNELS 1024
#define CATCHUP_CHUNK ((size_t)256 << 10)

/* Index record: where stream frame `seq` sits in the data file. */
struct idx_rec {
    uint64_t seq;
    uint64_t off;
    uint32_t len; /* header + payload */
    uint32_t crc; /* payload CRC32C, as in the header */
};
_Static_assert(sizeof(struct idx_rec) == 24, "index records are 24 bytes");

struct rcv {
    int fd;
    struct rcv *next;
};

struct chan {
    char name[FY_NAME_MAX + 1];
    uint32_t id;
    int dat, idx;       /* data and index files, O_APPEND */
    uint64_t size;      /* bytes in the data file */
    uint64_t next_seq;  /* seq of the next stream frame */
    bool has_sender;
    struct rcv *live;   /* receivers that get every new frame */
};

struct relay {
    pthread_mutex_t lock; /* THE lock: every chan, every receiver list, every send to a receiver */
    struct chan *ch[MAX_CHANNELS];
    unsigned nch;
    int dir; /* data directory */
    size_t max_payload;
};

struct conn {
    struct relay *r;
    int fd;
    char peer[64];
    uint8_t *buf; /* one frame: header + payload */
};

/* ---- logging and socket I/O ---------------------------------------------- */

static void logf_(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const char *level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "level=%s prog=ferry-baseline %s\n", level, line);
}

static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* 1 when n bytes arrived, 0 on EOF before the first byte, negative on error. */
static int recv_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t k = recv(fd, b + got, n - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            return got == 0 ? 0 : -FY_ETRUNC;
        got += (size_t)k;
    }
    return 1;
}

/* Read one checked frame into c->buf.  1, 0 on clean EOF, or negative. */
static int read_frame(struct conn *c, fy_frame_hdr *h)
{
    int rc = recv_all(c->fd, c->buf, FY_FRAME_HDR_SIZE);
    if (rc <= 0)
        return rc;
    rc = fy_frame_hdr_decode(c->buf, c->r->max_payload, h);
    if (rc < 0)
        return rc;
    if (h->len > 0 && (rc = recv_all(c->fd, c->buf + FY_FRAME_HDR_SIZE, h->len)) <= 0)
        return rc < 0 ? rc : -FY_ETRUNC;
    if (fy_crc32c(0, c->buf + FY_FRAME_HDR_SIZE, h->len) != h->crc)
        return -FY_ECRC;
    return 1;
}

static int send_frame(int fd, uint8_t type, uint32_t chan, uint64_t seq, const void *p, size_t n)
{
    fy_frame_hdr h = {.type = type, .channel = chan, .seq = seq};
    uint8_t hdr[FY_FRAME_HDR_SIZE];
    fy_frame_seal(&h, p, n, hdr);
    int rc = send_all(fd, hdr, sizeof(hdr));
    return rc < 0 || n == 0 ? rc : send_all(fd, p, n);
}

static void send_error(struct conn *c, int err, const char *text)
{
    fy_error e = {.code = (uint32_t)(err < 0 ? -err : err)};
    uint8_t p[FY_ERRTEXT_MAX + 16];
    size_t n;
    snprintf(e.text, sizeof(e.text), "%s", text);
    if (fy_error_encode(&e, p, sizeof(p), &n) == 0)
        send_frame(c->fd, FY_FT_ERROR, 0, 0, p, n);
    logf_("warn", "msg=\"closing connection\" peer=%s err=%s text=\"%s\"", c->peer,
          fy_errname(err), text);
}

static int send_welcome(int fd, const struct chan *ch, uint64_t next, size_t max_payload)
{
    fy_welcome w = {.channel = ch->id, .next_seq = next, .first_seq = 1,
                    .max_payload = (uint32_t)max_payload};
    uint8_t p[64];
    size_t n;
    int rc = fy_welcome_encode(&w, p, sizeof(p), &n);
    return rc < 0 ? rc : send_frame(fd, FY_FT_WELCOME, ch->id, 0, p, n);
}

/* ---- the channel table (caller holds r->lock) ----------------------------- */

static int chan_get(struct relay *r, const char *name, struct chan **out)
{
    for (unsigned i = 0; i < r->nch; i++) {
        if (strcmp(r->ch[i]->name, name) == 0) {
            *out = r->ch[i];
            return 0;
        }
    }
    if (r->nch == MAX_CHANNELS)
        return -ENOSPC;
    struct chan *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    char path[FY_NAME_MAX + 8];
    snprintf(ch->name, sizeof(ch->name), "%s", name);
    snprintf(path, sizeof(path), "%s.dat", name);
    /* Every run starts empty: the baseline has no recovery. */
    ch->dat = openat(r->dir, path, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    snprintf(path, sizeof(path), "%s.idx", name);
    ch->idx = openat(r->dir, path, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (ch->dat < 0 || ch->idx < 0) {
        int e = -errno;
        logf_("error", "msg=\"openat failed\" file=%s err=%s action=\"refuse client\"", path,
              fy_errname(e));
        if (ch->dat >= 0)
            close(ch->dat);
        free(ch);
        return e;
    }
    ch->id = r->nch + 1;
    ch->next_seq = 1;
    r->ch[r->nch++] = ch;
    *out = ch;
    logf_("info", "msg=\"channel created\" channel=%s id=%u", name, ch->id);
    return 0;
}

static void live_remove(struct chan *ch, int fd)
{
    for (struct rcv **pp = &ch->live; *pp; pp = &(*pp)->next) {
        if ((*pp)->fd == fd) {
            struct rcv *dead = *pp;
            *pp = dead->next;
            free(dead);
            return;
        }
    }
}

static int live_add(struct chan *ch, int fd)
{
    struct rcv *x = malloc(sizeof(*x));
    if (!x)
        return -ENOMEM;
    *x = (struct rcv){.fd = fd, .next = ch->live};
    ch->live = x;
    return 0;
}

/* ---- sender -------------------------------------------------------------- */

/* Store one stream frame and send it to every live receiver, all under the
 * one lock -- the old design's bottleneck, reproduced on purpose. */
static int store_and_forward(struct relay *r, struct chan *ch, const uint8_t *raw,
                             const fy_frame_hdr *h)
{
    size_t n = FY_FRAME_HDR_SIZE + h->len;
    int rc = 0;

    pthread_mutex_lock(&r->lock);
    if (h->seq != ch->next_seq) {
        rc = -FY_ESEQ;
        goto out;
    }
    struct idx_rec rec = {.seq = h->seq, .off = ch->size, .len = (uint32_t)n, .crc = h->crc};
    if (write(ch->dat, raw, n) != (ssize_t)n || write(ch->idx, &rec, sizeof(rec)) != sizeof(rec)) {
        logf_("error", "msg=\"write failed\" channel=%s err=%s action=\"end sender\"", ch->name,
              fy_errname(-errno));
        rc = -FY_EINTERNAL;
        goto out;
    }
    ch->size += n;
    ch->next_seq++;
    for (struct rcv **pp = &ch->live; *pp;) {
        struct rcv *x = *pp;
        int e = send_all(x->fd, raw, n); /* blocking, with the lock held */
        if (e < 0) {
            logf_("info", "msg=\"send to receiver failed\" fd=%d err=%s action=\"drop receiver\"",
                  x->fd, fy_errname(e));
            shutdown(x->fd, SHUT_RDWR); /* its own thread sees EOF and closes it */
            *pp = x->next;
            free(x);
        } else {
            pp = &x->next;
        }
    }
out:
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void run_sender(struct conn *c, struct chan *ch)
{
    fy_frame_hdr h;
    int rc;

    while ((rc = read_frame(c, &h)) == 1) {
        if (fy_frame_is_stream(h.type)) {
            rc = store_and_forward(c->r, ch, c->buf, &h);
            if (rc == -FY_ESEQ) {
                send_error(c, rc, "sequence number is not the channel's next");
                break;
            }
            if (rc < 0) {
                send_error(c, rc, "relay could not store the frame");
                break;
            }
            if (h.type == FY_FT_FILE_END) {
                fy_ack a = {.seq = h.seq};
                uint8_t p[16];
                size_t n;
                fy_ack_encode(&a, p, sizeof(p), &n);
                if (send_frame(c->fd, FY_FT_ACK, ch->id, h.seq, p, n) < 0)
                    break;
            }
        } else if (h.type == FY_FT_PING) {
            if (send_frame(c->fd, FY_FT_PONG, ch->id, h.seq, c->buf + FY_FRAME_HDR_SIZE, h.len) < 0)
                break;
        } else if (h.type == FY_FT_BYE) {
            rc = 0;
            break;
        } else if (h.type != FY_FT_ACK) {
            send_error(c, -FY_EPROTO, "unexpected frame from a sender");
            break;
        }
    }
    if (rc < 0 && rc != -FY_ESEQ && rc != -FY_EINTERNAL)
        send_error(c, rc, fy_strerror(rc));
    pthread_mutex_lock(&c->r->lock);
    ch->has_sender = false;
    pthread_mutex_unlock(&c->r->lock);
}

/* ---- receiver ------------------------------------------------------------ */

struct fwd {
    struct relay *r;
    struct chan *ch;
    int fd;
    uint64_t pos; /* next byte of the data file to send */
    int rc;
};

/* Forwarder thread: copy the data file from pos, then join the live list
 * under the lock once nothing is left to copy. */
static void *forwarder_main(void *arg)
{
    struct fwd *f = arg;
    uint8_t *buf = malloc(CATCHUP_CHUNK);

    f->rc = buf ? 0 : -ENOMEM;
    while (f->rc == 0) {
        pthread_mutex_lock(&f->r->lock);
        uint64_t end = f->ch->size;
        if (f->pos >= end) {
            f->rc = live_add(f->ch, f->fd);
            pthread_mutex_unlock(&f->r->lock);
            break;
        }
        pthread_mutex_unlock(&f->r->lock);
        size_t want = end - f->pos < CATCHUP_CHUNK ? (size_t)(end - f->pos) : CATCHUP_CHUNK;
        ssize_t n = pread(f->ch->dat, buf, want, (off_t)f->pos);
        if (n <= 0) {
            f->rc = n < 0 ? -errno : -FY_ECORRUPT;
            break;
        }
        f->rc = send_all(f->fd, buf, (size_t)n);
        f->pos += (uint64_t)n;
    }
    free(buf);
    return NULL;
}

/* Where history for `from` starts in the data file (caller holds the lock). */
static int history_pos(struct chan *ch, uint64_t from, uint64_t *pos)
{
    if (from == ch->next_seq) {
        *pos = ch->size;
        return 0;
    }
    struct idx_rec rec;
    if (from < 1 || from > ch->next_seq ||
        pread(ch->idx, &rec, sizeof(rec), (off_t)((from - 1) * sizeof(rec))) != sizeof(rec))
        return -FY_ENOSEQ;
    *pos = rec.off;
    return 0;
}

static void run_receiver(struct conn *c, struct chan *ch, const fy_hello *hi)
{
    struct relay *r = c->r;
    struct fwd f = {.r = r, .ch = ch, .fd = c->fd};
    uint64_t from;
    int rc;

    uint64_t catchup = 0;
    pthread_mutex_lock(&r->lock);
    from = hi->mode == FY_MODE_LIVE ? ch->next_seq : hi->mode == FY_MODE_START ? 1 : hi->resume_from;
    rc = history_pos(ch, from, &f.pos);
    if (rc == 0)
        rc = send_welcome(c->fd, ch, from, r->max_payload);
    if (rc == 0) {
        catchup = ch->size - f.pos;
        if (catchup == 0)
            rc = live_add(ch, c->fd); /* nothing to catch up: live at once */
    }
    pthread_mutex_unlock(&r->lock);
    if (rc < 0) {
        send_error(c, rc, rc == -FY_ENOSEQ ? "resume point not held" : "cannot subscribe");
        return;
    }
    logf_("info", "msg=\"receiver joined\" peer=%s channel=%s from_seq=%llu catchup_bytes=%llu",
          c->peer, ch->name, (unsigned long long)from, (unsigned long long)catchup);
    if (catchup > 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, forwarder_main, &f) != 0)
            return;
        /* The reader waits for its forwarder, so a pong never lands inside
         * a catch-up chunk; acks and pings wait in the socket meanwhile. */
        pthread_join(t, NULL);
        if (f.rc < 0)
            return;
    }
    fy_frame_hdr h;
    while (read_frame(c, &h) == 1 && h.type != FY_FT_BYE) {
        if (h.type == FY_FT_PING) {
            pthread_mutex_lock(&r->lock); /* senders write this socket too */
            int e = send_frame(c->fd, FY_FT_PONG, ch->id, h.seq, c->buf + FY_FRAME_HDR_SIZE, h.len);
            pthread_mutex_unlock(&r->lock);
            if (e < 0)
                break;
        }
    }
    pthread_mutex_lock(&r->lock);
    live_remove(ch, c->fd);
    pthread_mutex_unlock(&r->lock);
}

/* ---- connections --------------------------------------------------------- */

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    fy_frame_hdr h;
    fy_hello hi;
    struct chan *ch = NULL;
    int rc = read_frame(c, &h);

    if (rc == 1 && h.type != FY_FT_HELLO)
        rc = -FY_EPROTO;
    if (rc == 1)
        rc = fy_hello_decode(c->buf + FY_FRAME_HDR_SIZE, h.len, &hi);
    if (rc == 0 && ((hi.role != FY_ROLE_SENDER && hi.role != FY_ROLE_RECEIVER) ||
                    hi.mode > FY_MODE_RESUME))
        rc = -FY_EPAYLOAD;
    if (rc == 0) {
        pthread_mutex_lock(&c->r->lock);
        rc = chan_get(c->r, hi.channel, &ch);
        if (rc == 0 && hi.role == FY_ROLE_SENDER) {
            if (ch->has_sender) {
                rc = -FY_EBUSY;
            } else {
                rc = send_welcome(c->fd, ch, ch->next_seq, c->r->max_payload);
                ch->has_sender = rc == 0;
            }
        }
        pthread_mutex_unlock(&c->r->lock);
        if (rc == 0 && hi.role == FY_ROLE_SENDER) {
            logf_("info", "msg=\"sender joined\" peer=%s channel=%s", c->peer, ch->name);
            run_sender(c, ch);
        } else if (rc == 0) {
            run_receiver(c, ch, &hi);
        }
    }
    if (rc < 0)
        send_error(c, rc, fy_strerror(rc));
    logf_("info", "msg=\"connection closed\" peer=%s", c->peer);
    close(c->fd);
    free(c->buf);
    free(c);
    return NULL;
}

static void serve(struct relay *r, int lfd)
{
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED)
                continue;
            logf_("warn", "msg=\"accept4 failed\" err=%s action=\"pause 100ms\"", fy_errname(-e));
            nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
            continue;
        }
        struct conn *c = calloc(1, sizeof(*c));
        uint8_t *buf = malloc(FY_FRAME_HDR_SIZE + r->max_payload);
        pthread_t t;
        if (!c || !buf) {
            free(c);
            free(buf);
            close(fd);
            continue;
        }
        *c = (struct conn){.r = r, .fd = fd, .buf = buf};
        char host[48] = "?", port[8] = "?";
        getnameinfo((struct sockaddr *)&sa, sl, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
        if (pthread_create(&t, NULL, conn_main, c) != 0) {
            logf_("warn", "msg=\"pthread_create failed\" peer=%s action=\"close\"", c->peer);
            close(fd);
            free(buf);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
}

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferry-baseline [--listen HOST:PORT] [--data DIR] [--backlog N]\n"
            "The OLD relay design, rebuilt as a benchmark baseline only: a thread per\n"
            "connection and one global lock held across blocking sends.  Speaks Ferry's\n"
            "wire protocol.  Prints listening=HOST:PORT on stdout once it accepts.\n"
            "  --listen HOST:PORT  address to listen on (default 127.0.0.1:7421; port 0 = any)\n"
            "  --data DIR          directory for <channel>.dat/.idx (default ./baseline-data)\n"
            "  --backlog N         listen() backlog (default 10, as the old relay)\n"
            "  --help              this text\n");
}

static int listen_on(const char *spec, int backlog)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof(host))
        return -EINVAL;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') { /* [::1]:port */
        h[strlen(h) - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai;
    if (getaddrinfo(h, colon + 1, &hints, &ai) != 0)
        return -EINVAL;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, rc = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0)
        rc = -errno;
    freeaddrinfo(ai);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'}, {"data", required_argument, NULL, 'd'},
        {"backlog", required_argument, NULL, 'b'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *listen_spec = "127.0.0.1:7421", *data = "baseline-data";
    int backlog = 10, o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'l': listen_spec = optarg; break;
        case 'd': data = optarg; break;
        case 'b': backlog = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || backlog < 1) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    static struct relay r; /* lives for the whole process; threads get &r */
    r.max_payload = FY_PAYLOAD_MAX_DEFAULT;
    pthread_mutex_init(&r.lock, NULL);
    if (mkdir(data, 0755) < 0 && errno != EEXIST) {
        logf_("error", "msg=\"mkdir failed\" dir=%s err=%s action=exit", data, fy_errname(-errno));
        return 1;
    }
    r.dir = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int lfd = r.dir < 0 ? -errno : listen_on(listen_spec, backlog);
    if (lfd < 0) {
        logf_("error", "msg=\"listen failed\" addr=%s data=%s err=%s action=exit", listen_spec,
              data, fy_errname(lfd));
        return 1;
    }
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    char host[48], port[8];
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    getnameinfo((struct sockaddr *)&sa, sl, host, sizeof(host), port, sizeof(port),
                NI_NUMERICHOST | NI_NUMERICSERV);
    char addr[64];
    if (sa.ss_family == AF_INET6)
        snprintf(addr, sizeof(addr), "[%s]:%s", host, port);
    else
        snprintf(addr, sizeof(addr), "%s:%s", host, port);
    logf_("info", "msg=listening listening=%s backlog=%d data=%s", addr, backlog, data);
    printf("listening=%s\n", addr);
    fflush(stdout);
    serve(&r, lfd);
    return 0;
}
