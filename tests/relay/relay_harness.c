/*
 * relay_harness.c - the real ferryd (started and stopped through
 * tests/common's tc_daemon_*, its log in the temp root) and its protocol
 * spoken by hand (see relay_harness.h).
 */
#include "relay_harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/sock.h"

#ifndef FERRYD_PATH
#error "FERRYD_PATH must name the ferryd binary"
#endif

void rh_sleep_ms(unsigned ms)
{
    tc_sleep_ms(ms);
}

int rh_setup(void **state)
{
    rh_daemon *d = calloc(1, sizeof *d);
    if (!d || rh_init(d) < 0) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

int rh_teardown(void **state)
{
    rh_cleanup(*state, true);
    free(*state);
    return 0;
}

int rh_init(rh_daemon *d)
{
    memset(d, 0, sizeof *d);
    d->pid = -1;
    int rc = tc_tmpdir(d->root, sizeof d->root, "relay");
    if (rc < 0)
        return rc;
    snprintf(d->data, sizeof d->data, "%s/data", d->root);
    snprintf(d->log, sizeof d->log, "%s/ferryd.log", d->root);
    return 0;
}

int rh_start(rh_daemon *d, const char *const *extra)
{
    const char *argv[48] = {"--threads", "2"};
    int n = 2;
    tc_daemon td;

    for (int i = 0; extra && extra[i] && n < 46; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    /* 30 s: sanitizer builds start slowly.  The log is appended to, so a
     * restarted daemon's log follows the first one's. */
    int rc = tc_daemon_start(&td, FERRYD_PATH, d->data, d->log, argv, 30000);
    d->pid = td.pid > 0 ? td.pid : -1;
    d->port = td.port;
    d->metrics_port = td.metrics_port;
    d->exit_status = td.exit_status;
    return rc;
}

int rh_stop(rh_daemon *d, int wait_ms)
{
    tc_daemon td = {.pid = d->pid};
    int st = -1;

    if (d->pid <= 0)
        return -1;
    tc_daemon_stop(&td, wait_ms, &st);
    d->pid = -1;
    return st;
}

void rh_cleanup(rh_daemon *d, bool dump)
{
    if (d->pid > 0)
        rh_stop(d, 10000);
    if (dump && d->log[0]) {
        char cmd[400];
        fprintf(stderr, "---- tail of %s ----\n", d->log);
        snprintf(cmd, sizeof cmd, "tail -n 40 '%s' >&2", d->log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
    }
    tc_tmpdir_done(d->root);
    d->root[0] = 0;
}

int rh_log_count(const rh_daemon *d, const char *s)
{
    FILE *f = fopen(d->log, "r");
    char line[4096];
    int n = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strstr(line, s))
            n++;
    fclose(f);
    return n;
}

int rh_wait_log(const rh_daemon *d, const char *s, int n, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (rh_log_count(d, s) >= n)
            return 0;
        rh_sleep_ms(10);
    }
    return -ETIMEDOUT;
}

int rh_write_file(const char *path, const char *text)
{
    char tmp[4200];
    int rc = 0;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    if (fputs(text, f) < 0)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int rh_connect(const rh_daemon *d)
{
    fy_addr a;
    char text[64];

    snprintf(text, sizeof text, "127.0.0.1:%u", d->port);
    if (fy_addr_parse(text, "127.0.0.1", &a) < 0)
        return -EINVAL;
    int fd = fy_sock_connect(&a, 5000);
    if (fd < 0)
        return fd;
    struct timeval tv = {RH_IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* ---- frames ------------------------------------------------------------------- */

int rh_send_frame(int fd, uint8_t type, uint32_t chan, uint64_t seq, const void *p, size_t n)
{
    fy_frame_hdr h = {.type = type, .channel = chan, .seq = seq};
    uint8_t hb[FY_FRAME_HDR_SIZE];
    struct iovec iov[2] = {{hb, sizeof hb}, {(void *)p, n}};

    fy_frame_seal(&h, p, n, hb);
    return fy_sock_writev_all(fd, iov, n ? 2 : 1);
}

int rh_read_frame(int fd, rh_frame *f)
{
    uint8_t hb[FY_FRAME_HDR_SIZE];
    int rc;

    memset(f, 0, sizeof *f);
    if ((rc = fy_sock_read_full(fd, hb, sizeof hb)) < 0)
        return rc;
    if ((rc = fy_frame_hdr_decode(hb, FY_PAYLOAD_MAX_LIMIT, &f->hdr)) < 0)
        return rc;
    if (f->hdr.len) {
        if (!(f->payload = malloc(f->hdr.len)))
            return -ENOMEM;
        if ((rc = fy_sock_read_full(fd, f->payload, f->hdr.len)) < 0) {
            rh_frame_free(f);
            return rc;
        }
    }
    if (fy_crc32c(0, f->payload, f->hdr.len) != f->hdr.crc) {
        rh_frame_free(f);
        return -FY_ECRC;
    }
    return 0;
}

void rh_frame_free(rh_frame *f)
{
    free(f->payload);
    f->payload = NULL;
}

static int error_code(const rh_frame *f)
{
    fy_error e;
    if (fy_error_decode(f->payload, f->hdr.len, &e) < 0)
        return -FY_EPAYLOAD;
    fprintf(stderr, "harness: relay error %u (%s): %s\n", e.code, fy_errname((int)e.code), e.text);
    return -(int)e.code;
}

int rh_hello(int fd, uint8_t role, const char *channel, const char *token, uint8_t mode,
             uint64_t resume_from, fy_welcome *w)
{
    return rh_hello_flags(fd, role, channel, token, mode, resume_from, 0, w);
}

int rh_hello_flags(int fd, uint8_t role, const char *channel, const char *token, uint8_t mode,
                   uint64_t resume_from, uint16_t flags, fy_welcome *w)
{
    fy_hello h = {.role = role, .mode = mode, .resume_from = resume_from, .flags = flags};
    uint8_t p[1024];
    size_t n;
    rh_frame f;
    int rc;

    snprintf(h.channel, sizeof h.channel, "%s", channel);
    snprintf(h.token, sizeof h.token, "%s", token ? token : "");
    if ((rc = fy_hello_encode(&h, p, sizeof p, &n)) < 0)
        return rc;
    if ((rc = rh_send_frame(fd, FY_FT_HELLO, 0, 0, p, n)) < 0)
        return rc;
    if ((rc = rh_read_frame(fd, &f)) < 0)
        return rc;
    if (f.hdr.type == FY_FT_ERROR)
        rc = error_code(&f);
    else if (f.hdr.type != FY_FT_WELCOME)
        rc = -FY_EPROTO;
    else
        rc = fy_welcome_decode(f.payload, f.hdr.len, w);
    rh_frame_free(&f);
    return rc;
}

int rh_send_file(int fd, uint32_t chan, uint64_t *seq, const char *name, const uint8_t *data,
                 size_t len, size_t chunk)
{
    uint8_t p[1024];
    size_t n;
    int rc;
    fy_file_begin fb = {.size = len};
    fy_file_end fe = {.size = len};

    snprintf(fb.name, sizeof fb.name, "%s", name);
    if ((rc = fy_file_begin_encode(&fb, p, sizeof p, &n)) < 0 ||
        (rc = rh_send_frame(fd, FY_FT_FILE_BEGIN, chan, (*seq)++, p, n)) < 0)
        return rc;
    for (size_t off = 0; off < len; off += chunk) {
        size_t k = len - off < chunk ? len - off : chunk;
        if ((rc = rh_send_frame(fd, FY_FT_DATA, chan, (*seq)++, data + off, k)) < 0)
            return rc;
    }
    if ((rc = fy_sha256_oneshot(data, len, fe.sha256)) < 0 ||
        (rc = fy_file_end_encode(&fe, p, sizeof p, &n)) < 0)
        return rc;
    return rh_send_frame(fd, FY_FT_FILE_END, chan, (*seq)++, p, n);
}

int rh_wait_ack(int fd, uint64_t seq)
{
    for (int i = 0; i < 100000; i++) {
        rh_frame f;
        int rc = rh_read_frame(fd, &f);
        if (rc < 0)
            return rc;
        if (f.hdr.type == FY_FT_ERROR) {
            rc = error_code(&f);
            rh_frame_free(&f);
            return rc;
        }
        fy_ack a = {0};
        if (f.hdr.type == FY_FT_ACK)
            fy_ack_decode(f.payload, f.hdr.len, &a);
        rh_frame_free(&f);
        if (a.seq == seq)
            return 0;
        if (a.seq > seq)
            return -FY_ESEQ;
    }
    return -ETIMEDOUT;
}

int rh_wait_bye(int fd)
{
    for (int i = 0; i < 1000000; i++) {
        rh_frame f;
        int rc = rh_read_frame(fd, &f);
        if (rc < 0)
            return rc;
        uint8_t t = f.hdr.type;
        rc = t == FY_FT_ERROR ? error_code(&f) : 0;
        rh_frame_free(&f);
        if (t == FY_FT_BYE)
            return 0;
        if (rc)
            return rc;
    }
    return -ETIMEDOUT;
}

/* ---- a receiver ---------------------------------------------------------------- */

static int rx_frame(rh_rx *r, rh_frame *f)
{
    const fy_frame_hdr *h = &f->hdr;

    if (!fy_frame_is_stream(h->type)) {
        if (h->type == FY_FT_ERROR)
            return r->err = error_code(f);
        if (h->type == FY_FT_BYE)
            return r->err = -EPIPE;
        if (h->type == FY_FT_NOTICE) {
            if (fy_notice_decode(f->payload, h->len, &r->notice) < 0)
                return r->err = -FY_EPAYLOAD;
            r->notices++;
        }
        return 0; /* pong etc. */
    }
    if (r->next_seq == 0) /* not told a welcome: take the first as it comes */
        r->next_seq = h->seq;
    if (h->seq != r->next_seq) {
        fprintf(stderr, "harness: receiver got seq %llu, expected %llu\n",
                (unsigned long long)h->seq, (unsigned long long)r->next_seq);
        return r->err = -FY_ESEQ;
    }
    r->next_seq++;
    if (h->type == FY_FT_FILE_BEGIN) {
        fy_file_begin fb;
        if (fy_file_begin_decode(f->payload, h->len, &fb) < 0)
            return r->err = -FY_EPAYLOAD;
        free(r->cur.data); /* a partial file is discarded */
        memset(&r->cur, 0, sizeof r->cur);
        snprintf(r->cur.name, sizeof r->cur.name, "%s", fb.name);
        r->cur.begin_seq = h->seq;
        r->cur_cap = fb.size ? fb.size : 1;
        if (!(r->cur.data = malloc(r->cur_cap)))
            return r->err = -ENOMEM;
        r->in_file = true;
    } else if (h->type == FY_FT_DATA) {
        if (!r->in_file)
            return 0; /* joined mid-file */
        if (r->cur.len + h->len > r->cur_cap)
            return r->err = -FY_ESIZE;
        memcpy(r->cur.data + r->cur.len, f->payload, h->len);
        r->cur.len += h->len;
        r->bytes += h->len;
    } else {
        fy_file_end fe;
        uint8_t d[32];
        if (!r->in_file)
            return 0;
        if (fy_file_end_decode(f->payload, h->len, &fe) < 0)
            return r->err = -FY_EPAYLOAD;
        fy_sha256_oneshot(r->cur.data, r->cur.len, d);
        r->cur.digest_ok = fe.size == r->cur.len && memcmp(d, fe.sha256, 32) == 0;
        r->cur.end_seq = h->seq;
        if (r->nfiles == sizeof r->files / sizeof r->files[0])
            return r->err = -E2BIG;
        r->files[r->nfiles++] = r->cur;
        memset(&r->cur, 0, sizeof r->cur);
        r->in_file = false;
    }
    return 0;
}

int rh_rx_until(rh_rx *r, size_t nfiles, uint64_t stop_after)
{
    for (long i = 0; i < 10000000 && r->nfiles < nfiles; i++) {
        if (stop_after && r->bytes >= stop_after)
            return 1;
        rh_frame f;
        int rc = rh_read_frame(r->fd, &f);
        if (rc < 0)
            return r->err = rc;
        rc = rx_frame(r, &f);
        rh_frame_free(&f);
        if (rc < 0)
            return rc;
    }
    return r->nfiles >= nfiles ? 0 : -ETIMEDOUT;
}

void rh_rx_free(rh_rx *r)
{
    for (size_t i = 0; i < r->nfiles; i++)
        free(r->files[i].data);
    free(r->cur.data);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

void rh_fill(uint8_t *p, size_t n, uint64_t seed)
{
    tc_fill(p, n, seed);
}

double rh_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
