/*
 * test_link.c - the non-blocking client connection (src/link): connect to
 * a loopback listener and to a closed port, the hello/welcome handshake
 * and its violations, control frames queued while the socket is full and
 * flushed when it drains, frames decoded across reads cut anywhere, and a
 * broken stream giving a sticky error.
 *
 * The test plays the relay itself, on a loopback listener it opens or on
 * a socketpair, so it checks the link against bytes it wrote by hand.
 * Nothing here blocks: every wait is a poll() with a timeout, and every
 * loop stops after a fixed count or deadline, whichever comes first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/sock.h"
#include "link/link.h"

#define WAIT_MS 2000 /* longest any single wait may take */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* poll() once for ev on fd, at most ms; returns revents (0: timed out). */
static short wait_fd(int fd, short ev, int ms)
{
    struct pollfd p = {.fd = fd, .events = ev};
    return poll(&p, 1, ms) == 1 ? p.revents : 0;
}

static int listen_loopback(fy_addr *bound)
{
    fy_addr a;
    assert_int_equal(fy_addr_parse("127.0.0.1:0", NULL, &a), 0);
    int lfd = fy_sock_listen(&a, 0, bound);
    assert_true(lfd >= 0);
    return lfd;
}

static int accept_one(int lfd)
{
    assert_true(wait_fd(lfd, POLLIN, WAIT_MS) & POLLIN);
    int s = fy_sock_accept(lfd, NULL);
    assert_true(s >= 0);
    return s;
}

/* A non-blocking socketpair: sv[0] for the link, sv[1] plays the relay. */
static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* Seal one frame into out; returns its length. */
static size_t mk_frame(uint8_t *out, uint8_t type, uint32_t chan, uint64_t seq, const void *pl,
                       size_t len)
{
    fy_frame_hdr h = {.type = type, .channel = chan, .seq = seq};
    fy_frame_seal(&h, pl, len, out);
    if (len)
        memcpy(out + FY_FRAME_HDR_SIZE, pl, len);
    return FY_FRAME_HDR_SIZE + len;
}

static void put_all(int fd, const uint8_t *p, size_t n)
{
    assert_int_equal(fy_sock_write_all(fd, p, n), 0);
}

/* Read exactly n bytes from a non-blocking fd within WAIT_MS. */
static void get_exact(int fd, uint8_t *p, size_t n)
{
    size_t have = 0;
    uint64_t end = now_ms() + WAIT_MS;
    for (int i = 0; i < 100000 && have < n && now_ms() < end; i++) {
        ssize_t r = fy_sock_recv(fd, p + have, n - have);
        if (r == -EAGAIN) {
            wait_fd(fd, POLLIN, 50);
            continue;
        }
        assert_true(r > 0);
        have += (size_t)r;
    }
    assert_int_equal(have, n);
}

/* Wait until the link has a frame (receiving as needed), into *f.
 * Returns what fy_link_next returned last: 1, or an error (<0). */
static int next_frame(fy_link *l, uint8_t *buf, size_t cap, fy_frame *f)
{
    uint64_t end = now_ms() + WAIT_MS;
    for (int i = 0; i < 100000 && now_ms() < end; i++) {
        int rc = fy_link_next(l, f);
        if (rc != 0)
            return rc;
        ssize_t n = fy_link_recv(l, buf, cap);
        if (n == -EAGAIN) {
            wait_fd(fy_link_fd(l), POLLIN, 50);
            continue;
        }
        assert_true(n > 0);
    }
    fail_msg("no frame within %d ms", WAIT_MS);
    return 0;
}

/* ---- connect ---------------------------------------------------------------- */

static void test_connect_loopback(void **state)
{
    (void)state;
    fy_addr bound;
    fy_link l;
    fy_frame f;
    uint8_t buf[256], fr[64];
    int lfd = listen_loopback(&bound);

    fy_link_init(&l);
    assert_int_equal(fy_link_state(&l), FY_LINK_CLOSED);
    assert_int_equal(fy_link_fd(&l), -1);
    int fd = fy_link_connect(&l, &bound, FY_PAYLOAD_MAX_DEFAULT);
    assert_true(fd >= 0);
    /* connecting: nothing to read or write yet, and no system call fails */
    assert_int_equal(fy_link_state(&l), FY_LINK_CONNECTING);
    assert_int_equal(fy_link_recv(&l, buf, sizeof buf), -EAGAIN);
    assert_int_equal(fy_link_flush(&l), 1);
    assert_true(wait_fd(fd, POLLOUT, WAIT_MS) & POLLOUT);
    assert_int_equal(fy_link_connected(&l), 0);
    assert_int_equal(fy_link_state(&l), FY_LINK_OPEN); /* no hello: no handshake */
    assert_null(fy_link_welcome(&l));
    assert_int_equal(fy_link_connected(&l), 0); /* a second call changes nothing */

    int s = accept_one(lfd);
    put_all(s, fr, mk_frame(fr, FY_FT_PING, 0, 5, "hi", 2));
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), 1);
    assert_int_equal(f.hdr.type, FY_FT_PING);
    assert_int_equal(f.hdr.seq, 5);
    assert_memory_equal(f.payload, "hi", 2);
    assert_int_equal(fy_link_next(&l, &f), 0);

    /* the peer hangs up: an orderly close reads as 0 */
    close(s);
    assert_true(wait_fd(fd, POLLIN, WAIT_MS) & (POLLIN | POLLHUP));
    assert_int_equal(fy_link_recv(&l, buf, sizeof buf), 0);

    fy_link_close(&l);
    assert_int_equal(fy_link_state(&l), FY_LINK_CLOSED);
    assert_int_equal(fy_link_fd(&l), -1);
    assert_int_equal(fy_link_recv(&l, buf, sizeof buf), -EBADF);
    fy_link_close(&l); /* safe twice */
    close(lfd);
}

static void test_connect_refused(void **state)
{
    (void)state;
    fy_addr bound;
    fy_link l;
    int lfd = listen_loopback(&bound);
    close(lfd); /* the port is now closed: nobody listens there */

    fy_link_init(&l);
    int fd = fy_link_connect(&l, &bound, FY_PAYLOAD_MAX_DEFAULT);
    if (fd < 0) { /* refused at once: the link stays closed */
        assert_int_equal(fd, -ECONNREFUSED);
        assert_int_equal(fy_link_state(&l), FY_LINK_CLOSED);
        assert_int_equal(fy_link_fd(&l), -1);
        return;
    }
    short ev = wait_fd(fd, POLLOUT, WAIT_MS);
    assert_true(ev & (POLLOUT | POLLERR | POLLHUP));
    assert_int_equal(fy_link_connected(&l), -ECONNREFUSED);
    fy_link_close(&l);
    assert_int_equal(fy_link_state(&l), FY_LINK_CLOSED);
}

/* ---- handshake ---------------------------------------------------------------- */

static void test_hello_welcome(void **state)
{
    (void)state;
    fy_addr bound;
    fy_link l;
    fy_frame f;
    uint8_t buf[4096], fr[256], pl[FY_CTL_PAYLOAD_MAX];
    size_t len;
    int lfd = listen_loopback(&bound);

    fy_link_init(&l);
    int fd = fy_link_connect(&l, &bound, FY_PAYLOAD_MAX_DEFAULT);
    assert_true(fd >= 0);
    fy_hello h = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_RESUME, .resume_from = 77};
    strcpy(h.channel, "news-1");
    strcpy(h.token, "secret");
    assert_int_equal(fy_link_hello(&l, &h), 0); /* queued while connecting */
    assert_true(fy_link_ctl_pending(&l) > FY_FRAME_HDR_SIZE);
    assert_int_equal(fy_link_flush(&l), 0);     /* not connected yet */
    assert_true(wait_fd(fd, POLLOUT, WAIT_MS) & POLLOUT);
    assert_int_equal(fy_link_connected(&l), 0);
    assert_int_equal(fy_link_state(&l), FY_LINK_HELLO);
    assert_int_equal(fy_link_flush(&l), 1);
    assert_int_equal(fy_link_ctl_pending(&l), 0);
    assert_null(fy_link_welcome(&l));

    /* the relay's side: the hello arrives intact */
    int s = accept_one(lfd);
    fy_frame_hdr rh;
    fy_hello got;
    get_exact(s, fr, FY_FRAME_HDR_SIZE);
    assert_int_equal(fy_frame_hdr_decode(fr, FY_PAYLOAD_MAX_DEFAULT, &rh), 0);
    assert_int_equal(rh.type, FY_FT_HELLO);
    get_exact(s, pl, rh.len);
    assert_int_equal(fy_crc32c(0, pl, rh.len), rh.crc);
    assert_int_equal(fy_hello_decode(pl, rh.len, &got), 0);
    assert_int_equal(got.role, FY_ROLE_RECEIVER);
    assert_int_equal(got.mode, FY_MODE_RESUME);
    assert_int_equal(got.resume_from, 77);
    assert_string_equal(got.channel, "news-1");
    assert_string_equal(got.token, "secret");

    /* welcome, then a stream frame in the same write */
    fy_welcome w = {.channel = 9, .next_seq = 77, .first_seq = 3, .max_payload = 65536};
    assert_int_equal(fy_welcome_encode(&w, pl, sizeof pl, &len), 0);
    size_t n = mk_frame(fr, FY_FT_WELCOME, 0, 0, pl, len);
    n += mk_frame(fr + n, FY_FT_DATA, 9, 77, "abc", 3);
    put_all(s, fr, n);

    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), 1);
    assert_int_equal(f.hdr.type, FY_FT_WELCOME);
    assert_int_equal(fy_link_state(&l), FY_LINK_OPEN);
    const fy_welcome *lw = fy_link_welcome(&l);
    assert_non_null(lw);
    assert_int_equal(lw->channel, 9);
    assert_int_equal(lw->next_seq, 77);
    assert_int_equal(lw->first_seq, 3);
    assert_int_equal(lw->max_payload, 65536);
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), 1);
    assert_int_equal(f.hdr.type, FY_FT_DATA);
    assert_int_equal(f.hdr.seq, 77);
    assert_memory_equal(f.payload, "abc", 3);

    close(s);
    fy_link_close(&l);
    close(lfd);
}

/* Each way a relay can break the handshake, and a hello that cannot be
 * encoded. */
static void test_handshake_violations(void **state)
{
    (void)state;
    fy_link l;
    fy_frame f;
    uint8_t buf[512], fr[256], pl[64];
    size_t len;
    int sv[2];
    fy_hello h = {.role = FY_ROLE_SENDER};
    strcpy(h.channel, "c");
    fy_welcome w = {.channel = 1, .next_seq = 1, .first_seq = 1, .max_payload = 4096};
    assert_int_equal(fy_welcome_encode(&w, pl, sizeof pl, &len), 0);

    /* a stream frame before the welcome */
    pair(sv);
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, sv[0], 4096), 0);
    assert_int_equal(fy_link_state(&l), FY_LINK_OPEN);
    assert_int_equal(fy_link_hello(&l, &h), 0);
    assert_int_equal(fy_link_state(&l), FY_LINK_HELLO);
    put_all(sv[1], fr, mk_frame(fr, FY_FT_DATA, 1, 1, "x", 1));
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), -FY_EPROTO);
    assert_int_equal(fy_link_next(&l, &f), -FY_EPROTO); /* sticky */
    fy_link_close(&l);
    close(sv[1]);

    /* a welcome nobody asked for, and then a second one */
    pair(sv);
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, sv[0], 4096), 0);
    put_all(sv[1], fr, mk_frame(fr, FY_FT_WELCOME, 0, 0, pl, len));
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), -FY_EPROTO);
    fy_link_close(&l);
    close(sv[1]);

    pair(sv);
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, sv[0], 4096), 0);
    assert_int_equal(fy_link_hello(&l, &h), 0);
    size_t n = mk_frame(fr, FY_FT_WELCOME, 0, 0, pl, len);
    n += mk_frame(fr + n, FY_FT_WELCOME, 0, 0, pl, len);
    put_all(sv[1], fr, n);
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), 1);
    assert_non_null(fy_link_welcome(&l));
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), -FY_EPROTO);
    fy_link_close(&l);
    close(sv[1]);

    /* a welcome too short to decode */
    pair(sv);
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, sv[0], 4096), 0);
    assert_int_equal(fy_link_hello(&l, &h), 0);
    put_all(sv[1], fr, mk_frame(fr, FY_FT_WELCOME, 0, 0, pl, 3));
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), -FY_ETRUNC);
    assert_null(fy_link_welcome(&l));
    fy_link_close(&l);
    close(sv[1]);

    /* a hello with a bad channel name is refused and queues nothing */
    pair(sv);
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, sv[0], 4096), 0);
    strcpy(h.channel, "../etc");
    assert_int_equal(fy_link_hello(&l, &h), -FY_ENAME);
    assert_int_equal(fy_link_ctl_pending(&l), 0);
    assert_int_equal(fy_link_state(&l), FY_LINK_OPEN);
    fy_link_close(&l);
    close(sv[1]);

    /* attach refuses a bad fd or decoder size and keeps the link closed */
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, -1, 4096), -EINVAL);
    pair(sv);
    assert_int_equal(fy_link_attach(&l, sv[0], 0), -EINVAL);
    assert_int_equal(fy_link_fd(&l), -1);
    close(sv[0]);
    close(sv[1]);
}

/* ---- control frames under back-pressure ------------------------------------------ */

/* Fill the socket until it pushes back; returns the bytes written. */
static size_t fill_until_full(int fd)
{
    uint8_t fill[16384];
    size_t filled = 0;
    memset(fill, 0x5a, sizeof fill);
    for (int i = 0; i < 1000; i++) {
        ssize_t n = write(fd, fill, sizeof fill);
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        filled += (size_t)n;
    }
    return filled;
}

/* After the filler at got[at..have): the three acks and the bye, whole and
 * in order. */
static void expect_acks_and_bye(const uint8_t *got, size_t at, size_t have)
{
    fy_dec *d;
    fy_frame f;
    size_t used;
    assert_int_equal(fy_dec_new(4096, &d), 0);
    for (uint64_t i = 1; i <= 4; i++) {
        assert_int_equal(fy_dec_feed(d, got + at, have - at, &used, &f), 1);
        at += used;
        assert_int_equal(f.hdr.channel, 4);
        if (i == 4) {
            assert_int_equal(f.hdr.type, FY_FT_BYE);
            break;
        }
        fy_ack a;
        assert_int_equal(f.hdr.type, FY_FT_ACK);
        assert_int_equal(fy_ack_decode(f.payload, f.hdr.len, &a), 0);
        assert_int_equal(a.seq, i * 100);
    }
    assert_int_equal(at, have);
    fy_dec_free(d);
}

static void test_ctl_queued_and_flushed(void **state)
{
    (void)state;
    static uint8_t got[4u << 20];
    uint8_t pl[16];
    size_t filled = 0, have = 0, ctl_bytes = 0, len;
    fy_link l;
    int sv[2];

    pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, sv[0], 4096), 0);

    /* fill the socket until it pushes back */
    filled = fill_until_full(sv[0]);
    assert_true(filled > 0 && filled < sizeof got / 2);

    /* frames queue while the socket is full, in order, until the queue is */
    for (uint64_t i = 1; i <= 3; i++) {
        fy_ack a = {.seq = i * 100};
        assert_int_equal(fy_ack_encode(&a, pl, sizeof pl, &len), 0);
        assert_int_equal(fy_link_ctl(&l, FY_FT_ACK, 4, 0, pl, len), 0);
        ctl_bytes += FY_FRAME_HDR_SIZE + len;
    }
    assert_int_equal(fy_link_ctl(&l, FY_FT_BYE, 4, 0, NULL, 0), 0);
    ctl_bytes += FY_FRAME_HDR_SIZE;
    assert_int_equal(fy_link_ctl_pending(&l), ctl_bytes);
    assert_int_equal(fy_link_flush(&l), 0); /* EAGAIN: still queued */
    assert_int_equal(fy_link_ctl_pending(&l), ctl_bytes);
    uint8_t big[FY_LINK_CTL_CAP];
    memset(big, 0, sizeof big);
    assert_int_equal(fy_link_ctl(&l, FY_FT_PONG, 0, 0, big, sizeof big - FY_FRAME_HDR_SIZE),
                     -ENOBUFS);
    assert_int_equal(fy_link_ctl_pending(&l), ctl_bytes); /* nothing half-queued */

    /* the peer drains; each time it made room, flush again */
    int flushed = 0;
    uint64_t end = now_ms() + WAIT_MS;
    for (int i = 0; i < 100000 && now_ms() < end; i++) {
        if (!flushed)
            flushed = fy_link_flush(&l);
        assert_true(flushed >= 0);
        if (flushed && have == filled + ctl_bytes)
            break;
        ssize_t n = fy_sock_recv(sv[1], got + have, sizeof got - have);
        if (n == -EAGAIN) {
            wait_fd(sv[1], POLLIN, 20);
            continue;
        }
        assert_true(n > 0);
        have += (size_t)n;
    }
    assert_int_equal(flushed, 1);
    assert_int_equal(fy_link_ctl_pending(&l), 0);
    assert_int_equal(have, filled + ctl_bytes);

    expect_acks_and_bye(got, filled, have);

    /* an empty queue starts over: the whole capacity is usable again */
    assert_int_equal(fy_link_ctl(&l, FY_FT_PONG, 0, 0, big, 500), 0);
    assert_int_equal(fy_link_flush(&l), 1);
    fy_link_close(&l);
    close(sv[1]);
}

/* ---- decoding across reads ------------------------------------------------------- */

#define NFR 40

/* A stream of NFR frames of every kind the link passes on, payload
 * lengths 0..~3000; lens[i] and the stream length are returned. */
static size_t build_stream(uint8_t *out, size_t lens[NFR])
{
    static const uint8_t types[] = {FY_FT_DATA, FY_FT_PING, FY_FT_DATA, FY_FT_ACK, FY_FT_DATA};
    uint8_t pl[4096];
    size_t n = 0;
    for (int i = 0; i < NFR; i++) {
        uint8_t type = types[i % sizeof types];
        size_t len = type == FY_FT_DATA ? (size_t)(i * 73 % 3001) : 8;
        for (size_t k = 0; k < len; k++)
            pl[k] = (uint8_t)(i * 31 + k);
        lens[i] = len;
        n += mk_frame(out + n, type, 2, (uint64_t)i + 1, pl, len);
    }
    return n;
}

static void test_frames_across_partial_reads(void **state)
{
    (void)state;
    static uint8_t stream[NFR * (FY_FRAME_HDR_SIZE + 3001)];
    static const size_t caps[] = {1, 3, 31, 32, 33, 100, 1000, 4097, 65536};
    size_t lens[NFR];
    size_t total = build_stream(stream, lens);

    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        uint8_t buf[65536];
        fy_link l;
        fy_frame f;
        int sv[2], got = 0, in_place = 0;

        pair(sv);
        fy_link_init(&l);
        assert_int_equal(fy_link_attach(&l, sv[0], 4096), 0);
        put_all(sv[1], stream, total);
        uint64_t end = now_ms() + WAIT_MS;
        for (int i = 0; i < 1000000 && got < NFR && now_ms() < end; i++) {
            int rc = fy_link_next(&l, &f);
            assert_true(rc >= 0);
            if (rc == 0) {
                ssize_t n = fy_link_recv(&l, buf, caps[c]);
                if (n == -EAGAIN)
                    wait_fd(sv[0], POLLIN, 20);
                else
                    assert_true(n > 0);
                continue;
            }
            assert_int_equal(f.hdr.seq, (uint64_t)got + 1);
            assert_int_equal(f.hdr.len, lens[got]);
            for (size_t k = 0; k < f.hdr.len; k++)
                if (f.payload[k] != (uint8_t)(got * 31 + k))
                    fail_msg("cap %zu frame %d byte %zu differs", caps[c], got, k);
            /* a frame wholly inside one read is not copied */
            in_place += f.raw >= buf && f.raw < buf + sizeof buf;
            got++;
        }
        assert_int_equal(got, NFR);
        assert_int_equal(fy_link_next(&l, &f), 0);
        if (caps[c] >= 65536)
            assert_true(in_place > 0);
        if (caps[c] < FY_FRAME_HDR_SIZE)
            assert_int_equal(in_place, 0);
        fy_link_close(&l);
        close(sv[1]);
    }
}

/* ---- broken streams ------------------------------------------------------------------ */

static void test_bad_frames(void **state)
{
    (void)state;
    uint8_t buf[512], fr[256];
    fy_link l;
    fy_frame f;
    int sv[2];

    /* garbage where a header should be */
    pair(sv);
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, sv[0], 4096), 0);
    memset(fr, 0xab, FY_FRAME_HDR_SIZE);
    put_all(sv[1], fr, FY_FRAME_HDR_SIZE);
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), -FY_EMAGIC);
    assert_int_equal(fy_link_next(&l, &f), -FY_EMAGIC);
    fy_link_close(&l);
    close(sv[1]);

    /* a good frame, then one whose payload was damaged on the way */
    pair(sv);
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, sv[0], 4096), 0);
    size_t n = mk_frame(fr, FY_FT_DATA, 1, 1, "good", 4);
    size_t m = mk_frame(fr + n, FY_FT_DATA, 1, 2, "fine", 4);
    fr[n + m - 1] ^= 1;
    put_all(sv[1], fr, n + m);
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), 1);
    assert_int_equal(f.hdr.seq, 1);
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), -FY_ECRC);
    fy_link_close(&l);
    close(sv[1]);

    /* a frame larger than the decoder takes */
    pair(sv);
    fy_link_init(&l);
    assert_int_equal(fy_link_attach(&l, sv[0], 16), 0);
    uint8_t pl[64] = {0};
    put_all(sv[1], fr, mk_frame(fr, FY_FT_DATA, 1, 1, pl, sizeof pl));
    assert_int_equal(next_frame(&l, buf, sizeof buf, &f), -FY_EOVERSIZE);
    fy_link_close(&l);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_loopback),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_hello_welcome),
        cmocka_unit_test(test_handshake_violations),
        cmocka_unit_test(test_ctl_queued_and_flushed),
        cmocka_unit_test(test_frames_across_partial_reads),
        cmocka_unit_test(test_bad_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
