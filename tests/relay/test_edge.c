/*
 * test_edge.c - edge relays on loopback: an origin ferryd, edges started
 * with --upstream, receivers and senders speaking the protocol over real
 * TCP (relay_harness).  The namespace test (tests/relay/edge_netns.py)
 * does the same across network namespaces with cut links.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ferry/digest.h"
#include "ferry/err.h"
#include "relay_harness.h"

#define CHUNK (64u << 10)

typedef struct world {
    rh_daemon origin, edge, edge2;
} world;

static void wait_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start an edge of `up` with extra args after --upstream. */
static int start_edge(rh_daemon *e, const rh_daemon *up, const char *linger)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", up->port);
    const char *args[] = {"--upstream", addr, "--upstream-linger", linger, NULL};
    return rh_start(e, args);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(rh_init(&w->origin), 0);
    assert_int_equal(rh_init(&w->edge), 0);
    assert_int_equal(rh_init(&w->edge2), 0);
    assert_int_equal(rh_start(&w->origin, NULL), 0);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    bool dump = getenv("RH_DUMP") != NULL;
    rh_cleanup(&w->edge2, dump);
    rh_cleanup(&w->edge, dump);
    rh_cleanup(&w->origin, dump);
    free(w);
    return 0;
}

/* A receiver on d, from the start of channel ch. */
static void rx_open(rh_rx *r, const rh_daemon *d, const char *ch)
{
    fy_welcome w;
    memset(r, 0, sizeof *r);
    r->fd = rh_connect(d);
    assert_true(r->fd >= 0);
    assert_int_equal(rh_hello(r->fd, FY_ROLE_RECEIVER, ch, "", FY_MODE_START, 0, &w), 0);
    r->next_seq = w.next_seq;
}

/* Send one whole file into ch on d and wait for its ack. */
static void send_file(const rh_daemon *d, const char *ch, const char *name, const uint8_t *p,
                      size_t n)
{
    fy_welcome w;
    int fd = rh_connect(d);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, ch, "", 0, 0, &w), 0);
    uint64_t seq = w.next_seq;
    assert_int_equal(rh_send_file(fd, w.channel, &seq, name, p, n, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    close(fd);
}

/* A file-begin for n bytes and only the first half of its data. */
static void send_half(int fd, uint32_t chan, uint64_t *seq, const char *name, const uint8_t *p,
                      size_t n)
{
    fy_file_begin fb = {.size = n};
    uint8_t pl[FY_NAME_MAX + 32];
    size_t len;

    snprintf(fb.name, sizeof fb.name, "%s", name);
    assert_int_equal(fy_file_begin_encode(&fb, pl, sizeof pl, &len), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_BEGIN, chan, (*seq)++, pl, len), 0);
    for (size_t off = 0; off < n / 2; off += CHUNK)
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, chan, (*seq)++, p + off, CHUNK), 0);
}

/* The rest of send_half's file: the second half, then the file-end with
 * the whole file's digest, acknowledged; *seq ends past the file-end. */
static void send_rest(int fd, uint32_t chan, uint64_t *seq, const uint8_t *p, size_t n)
{
    fy_file_end fe = {.size = n};
    uint8_t pl[64];
    size_t len;

    for (size_t off = n / 2; off < n; off += CHUNK)
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, chan, (*seq)++, p + off, CHUNK), 0);
    assert_int_equal(fy_sha256_oneshot(p, n, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, pl, sizeof pl, &len), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_END, chan, *seq, pl, len), 0);
    assert_int_equal(rh_wait_ack(fd, (*seq)++), 0);
}

static void check_file(const rh_rx *r, size_t i, const char *name, const uint8_t *p, size_t n)
{
    assert_true(r->nfiles > i);
    assert_string_equal(r->files[i].name, name);
    assert_int_equal(r->files[i].len, n);
    assert_true(r->files[i].digest_ok);
    assert_memory_equal(r->files[i].data, p, n);
}

/* Origin -> edge -> edge2: receivers on both edges get every file, in
 * order, byte for byte; a local sender on a mirrored channel is refused
 * with FY_EBUSY and a text naming the upstream. */
static void test_edge_tree(void **state)
{
    world *w = *state;
    size_t n1 = 3u << 20, n2 = 1u << 20;
    uint8_t *f1 = malloc(n1), *f2 = malloc(n2);
    rh_rx a, b, c;

    rh_fill(f1, n1, 1);
    rh_fill(f2, n2, 2);
    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    assert_int_equal(start_edge(&w->edge2, &w->edge, "60s"), 0);
    rx_open(&a, &w->edge, "tree");
    rx_open(&b, &w->edge, "tree");
    rx_open(&c, &w->edge2, "tree");
    /* One connection for both: a second sender right behind a first that
     * closed may find the slot still taken (FY_EBUSY), by design. */
    fy_welcome ws;
    int sfd = rh_connect(&w->origin);
    assert_true(sfd >= 0);
    assert_int_equal(rh_hello(sfd, FY_ROLE_SENDER, "tree", "", 0, 0, &ws), 0);
    uint64_t seq = ws.next_seq;
    assert_int_equal(rh_send_file(sfd, ws.channel, &seq, "one.bin", f1, n1, CHUNK), 0);
    assert_int_equal(rh_send_file(sfd, ws.channel, &seq, "two.bin", f2, n2, CHUNK), 0);
    assert_int_equal(rh_wait_ack(sfd, seq - 1), 0);
    close(sfd);
    rh_rx *all[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rh_rx_until(all[i], 2, 0), 0);
        check_file(all[i], 0, "one.bin", f1, n1);
        check_file(all[i], 1, "two.bin", f2, n2);
    }

    /* A local sender on a mirror: refused, with a clear text. */
    fy_welcome wl;
    int fd = rh_connect(&w->edge);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, "tree", "", 0, 0, &wl), -FY_EBUSY);
    close(fd);
    assert_true(rh_log_count(&w->edge, "is mirrored from upstream 127.0.0.1:") >= 1);
    /* A channel the edge originates still takes a local sender. */
    send_file(&w->edge, "local", "two.bin", f2, n2);
    for (int i = 0; i < 3; i++)
        rh_rx_free(all[i]);
    free(f1);
    free(f2);
}

/* The origin stops mid-file and comes back on the same port: the edge
 * reconnects and resumes; its receiver sees no gap and no duplicate, the
 * partial file is discarded and the file sent again arrives whole. */
static void test_edge_origin_restart(void **state)
{
    world *w = *state;
    size_t n = 4u << 20;
    uint8_t *f = malloc(n);
    rh_rx r;
    fy_welcome wl;
    char port[32];

    rh_fill(f, n, 3);
    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    rx_open(&r, &w->edge, "rs");
    /* Half a file, then the origin goes away. */
    int fd = rh_connect(&w->origin);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, "rs", "", 0, 0, &wl), 0);
    uint64_t seq = wl.next_seq;
    send_half(fd, wl.channel, &seq, "cut.bin", f, n);
    assert_int_equal(rh_rx_until(&r, 1, n / 4), 1); /* some of it reached the edge */
    wait_ms(200);
    close(fd);
    snprintf(port, sizeof port, "127.0.0.1:%u", w->origin.port);
    rh_stop(&w->origin, 5000);
    wait_ms(300);
    const char *args[] = {"--listen", port, NULL};
    assert_int_equal(rh_start(&w->origin, args), 0);
    send_file(&w->origin, "rs", "whole.bin", f, n);
    assert_int_equal(rh_rx_until(&r, 1, 0), 0);
    check_file(&r, 0, "whole.bin", f, n);
    assert_true(rh_log_count(&w->edge, "msg=\"upstream lost\"") >= 1);
    assert_true(rh_log_count(&w->edge, "msg=\"upstream connected\"") >= 2);
    rh_rx_free(&r);
    free(f);
}

/* Cut a stopped relay's segment at the frame with seq `seq` (a power loss
 * that took everything from there on). */
static void cut_segment_at(const char *path, uint64_t seq)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    uint64_t off = 32;
    for (int i = 0; i < 100000; i++) {
        uint8_t h[FY_FRAME_HDR_SIZE];
        fy_frame_hdr fh;
        assert_int_equal(pread(fd, h, sizeof h, (off_t)off), (ssize_t)sizeof h);
        assert_int_equal(fy_frame_hdr_decode(h, FY_PAYLOAD_MAX_LIMIT, &fh), 0);
        if (fh.seq == seq)
            break;
        off += FY_FRAME_HDR_SIZE + fh.len;
    }
    assert_int_equal(ftruncate(fd, (off_t)off), 0);
    close(fd);
}

/* The origin lost, in a power cut, frames the edge had already stored: a
 * whole file's end and the first half of the next.  The edge is ahead of
 * the origin's log; it must not continue its partial file with what the
 * origin numbers from there on (another sender's file): the partial file
 * stays unfinished (its receivers drop it), and the edge goes on with the
 * origin's next file-begin.  Its receiver has a.bin (which the origin lost
 * the end of) and c.bin whole, nothing mixed. */
static void test_edge_origin_power_loss(void **state)
{
    world *w = *state;
    size_t na = 1u << 20, nb = 2u << 20;
    uint8_t *a = malloc(na), *b = malloc(nb);
    rh_rx r;
    fy_welcome wl;
    char port[32], seg[400];

    rh_fill(a, na, 7);
    rh_fill(b, nb, 8);
    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    rx_open(&r, &w->edge, "pl");
    int fd = rh_connect(&w->origin);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, "pl", "", 0, 0, &wl), 0);
    uint64_t seq = wl.next_seq;
    assert_int_equal(rh_send_file(fd, wl.channel, &seq, "a.bin", a, na, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    send_half(fd, wl.channel, &seq, "b.bin", b, nb);
    assert_int_equal(rh_rx_until(&r, 2, na + nb / 4), 1); /* a whole, b in part at the edge */
    wait_ms(300);
    close(fd);
    snprintf(port, sizeof port, "127.0.0.1:%u", w->origin.port);
    rh_stop(&w->origin, 5000);
    snprintf(seg, sizeof seg, "%s/channels/pl/%020llu.log", w->origin.data, 1ull);
    cut_segment_at(seg, 1 + (na / CHUNK) / 2); /* inside a.bin's data */
    const char *args[] = {"--listen", port, NULL};
    assert_int_equal(rh_start(&w->origin, args), 0);
    send_file(&w->origin, "pl", "c.bin", b, nb / 2);
    assert_int_equal(rh_rx_until(&r, 2, 0), 0);
    check_file(&r, 0, "a.bin", a, na);
    check_file(&r, 1, "c.bin", b, nb / 2);
    assert_int_equal(r.err, 0);
    assert_true(rh_log_count(&w->edge, "upstream's log ends before frames this edge stored") >= 1);
    assert_true(rh_log_count(&w->edge, "upstream sends other files where this edge stored") >= 1);
    assert_true(rh_log_count(&w->origin, "receiver ahead of the log") >= 1);
    rh_rx_free(&r);
    free(a);
    free(b);
}

/* The origin lost, in a power cut, two files' worth the edge had stored:
 * b.bin whole and the first half of c.bin.  The same sender sends both
 * again with the same seqs and bytes (what ferry send --retry does).  The
 * edge is ahead of the origin's log; it drops b.bin (it has it), continues
 * its partial c.bin where its log ends, and its receiver gets a, b and c
 * once each (it got b twice when the edge took the stream up again at the
 * origin's next file-begin: issue 21). */
static void test_edge_origin_power_loss_resent(void **state)
{
    world *w = *state;
    size_t n = 1u << 20;
    uint8_t *f[4];
    const char *names[] = {"a.bin", "b.bin", "c.bin", "d.bin"};
    rh_rx r;
    fy_welcome wl;
    char port[32], seg[400];

    for (int i = 0; i < 4; i++) {
        f[i] = malloc(n);
        assert_non_null(f[i]);
        rh_fill(f[i], n, 70 + (uint64_t)i);
    }
    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    rx_open(&r, &w->edge, "rp");
    int fd = rh_connect(&w->origin);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, "rp", "", 0, 0, &wl), 0);
    uint64_t seq = wl.next_seq;
    assert_int_equal(rh_send_file(fd, wl.channel, &seq, names[0], f[0], n, CHUNK), 0);
    uint64_t b_seq = seq;
    assert_int_equal(rh_send_file(fd, wl.channel, &seq, names[1], f[1], n, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    send_half(fd, wl.channel, &seq, names[2], f[2], n);
    assert_int_equal(rh_rx_until(&r, 3, 2 * n + n / 2), 1); /* a, b whole, c's half at the edge */
    wait_ms(300);
    close(fd);
    snprintf(port, sizeof port, "127.0.0.1:%u", w->origin.port);
    rh_stop(&w->origin, 5000);
    snprintf(seg, sizeof seg, "%s/channels/rp/%020llu.log", w->origin.data, 1ull);
    cut_segment_at(seg, b_seq); /* the log ends where b.bin began */
    const char *args[] = {"--listen", port, NULL};
    assert_int_equal(rh_start(&w->origin, args), 0);

    fd = rh_connect(&w->origin);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, "rp", "", 0, 0, &wl), 0);
    assert_int_equal(wl.next_seq, b_seq);
    seq = wl.next_seq;
    for (int i = 1; i < 4; i++) /* b and c again, then a new one */
        assert_int_equal(rh_send_file(fd, wl.channel, &seq, names[i], f[i], n, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    close(fd);
    assert_int_equal(rh_rx_until(&r, 4, 0), 0);
    for (int i = 0; i < 4; i++)
        check_file(&r, (size_t)i, names[i], f[i], n);
    assert_int_equal(r.err, 0);
    assert_true(rh_log_count(&w->edge, "upstream's log ends before frames this edge stored") >= 1);
    assert_true(rh_log_count(&w->edge, "files_dropped_as_resent=1 local_seq=") >= 1);
    assert_true(rh_log_count(&w->edge, "partial=continued") >= 1);
    rh_rx_free(&r);
    for (int i = 0; i < 4; i++)
        free(f[i]);
}

/* A receiver on d from the start of ch that asks for notices. */
static void rx_open_notice(rh_rx *r, const rh_daemon *d, const char *ch)
{
    fy_welcome w;
    memset(r, 0, sizeof *r);
    r->fd = rh_connect(d);
    assert_true(r->fd >= 0);
    assert_int_equal(rh_hello_flags(r->fd, FY_ROLE_RECEIVER, ch, "", FY_MODE_START, 0,
                                     FY_HELLO_F_NOTICE, &w), 0);
    r->next_seq = w.next_seq;
}

/* The notice of what the edge skipped: before the second file, the
 * origin's seqs from the one after the first file's end on. */
static void check_notice(const rh_rx *r)
{
    assert_int_equal(r->notices, 1);
    assert_int_equal(r->notice.code, FY_ESKIPPED);
    assert_int_equal(r->notice.at_seq, r->files[1].begin_seq);
    assert_int_equal(r->notice.up_from, r->files[0].end_seq + 1);
    assert_true(r->notice.up_to > r->notice.up_from);
    assert_non_null(strstr(r->notice.text, "retention"));
}

/* Does the (small) file at path hold s? */
static bool file_contains(const char *path, const char *s)
{
    char buf[16384];
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, s) != NULL;
}

/* `ferry recv` of n files from the start of ch on d, into a new directory
 * under d's root; its stderr in *err.  Asserts exit 0. */
static void ferry_recv(const rh_daemon *d, const char *ch, int n, char *err, size_t cap)
{
    char addr[32], out[600], count[16];
    int st;
    snprintf(addr, sizeof addr, "127.0.0.1:%u", d->port);
    snprintf(out, sizeof out, "%s/recv-%s", d->root, ch);
    snprintf(err, cap, "%s/recv-%s.err", d->root, ch);
    snprintf(count, sizeof count, "%d", n);
    const char *argv[] = {FERRY_PATH, "recv", "--server", addr, "--channel", ch, "--out", out,
                          "--from-start", "--count", count, "--quiet", NULL};
    pid_t pid = tc_spawn(argv, NULL, NULL, err, false);
    assert_true(pid > 0);
    assert_int_equal(tc_wait(pid, 60000, &st), 0);
    assert_int_equal(tc_exit_code(st), 0);
}

/* As above, with the edge restarted too (both lost power): it reads the
 * files it completed back from its log and still drops the ones the
 * origin sends again; the sender resends before the edge is back, so only
 * the origin's epoch, which the edge kept in its state file, shows it is
 * ahead.  A receiver from the start gets a, b, c, d once each. */
static void test_edge_power_loss_both(void **state)
{
    world *w = *state;
    size_t n = 1u << 20;
    uint8_t *f[4];
    const char *names[] = {"a.bin", "b.bin", "c.bin", "d.bin"};
    rh_rx r;
    fy_welcome wl;
    char port[32], seg[400];

    for (int i = 0; i < 4; i++) {
        f[i] = malloc(n);
        assert_non_null(f[i]);
        rh_fill(f[i], n, 80 + (uint64_t)i);
    }
    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    rx_open(&r, &w->edge, "pb");
    int fd = rh_connect(&w->origin);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, "pb", "", 0, 0, &wl), 0);
    uint64_t seq = wl.next_seq;
    assert_int_equal(rh_send_file(fd, wl.channel, &seq, names[0], f[0], n, CHUNK), 0);
    uint64_t b_seq = seq;
    assert_int_equal(rh_send_file(fd, wl.channel, &seq, names[1], f[1], n, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    send_half(fd, wl.channel, &seq, names[2], f[2], n);
    assert_int_equal(rh_rx_until(&r, 3, 2 * n + n / 2), 1);
    wait_ms(300);
    close(fd);
    rh_rx_free(&r);
    rh_stop(&w->edge, 5000);
    snprintf(port, sizeof port, "127.0.0.1:%u", w->origin.port);
    rh_stop(&w->origin, 5000);
    snprintf(seg, sizeof seg, "%s/channels/pb/%020llu.log", w->origin.data, 1ull);
    cut_segment_at(seg, b_seq);
    const char *args[] = {"--listen", port, NULL};
    assert_int_equal(rh_start(&w->origin, args), 0);
    fd = rh_connect(&w->origin);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, "pb", "", 0, 0, &wl), 0);
    assert_int_equal(wl.next_seq, b_seq);
    seq = wl.next_seq;
    for (int i = 1; i < 4; i++)
        assert_int_equal(rh_send_file(fd, wl.channel, &seq, names[i], f[i], n, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    close(fd);

    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    rx_open(&r, &w->edge, "pb");
    assert_int_equal(rh_rx_until(&r, 4, 0), 0);
    for (int i = 0; i < 4; i++)
        check_file(&r, (size_t)i, names[i], f[i], n);
    assert_int_equal(r.err, 0);
    assert_true(rh_log_count(&w->edge, "files read back from the log") >= 1);
    assert_true(rh_log_count(&w->edge, "files_dropped_as_resent=1 local_seq=") >= 1);
    rh_rx_free(&r);
    for (int i = 0; i < 4; i++)
        free(f[i]);
}

/* The origin's retention dropped what the edge needs next, and its oldest
 * frame lies inside a file: the edge starts again at the next file-begin
 * (FY_ENOSEQ logged), its log stays gap-free, and a receiver gets the file
 * the edge had and then whole files, the last one included.  Receivers
 * that ask for notices are told what was skipped and why (FY_FT_NOTICE
 * FY_ESKIPPED), live and later; `ferry recv` logs it (issue 21: only the
 * edge logged it). */
static void test_edge_enoseq_mid_file(void **state)
{
    world *w = *state;
    enum { N = 300000, K = 6 };
    const char *small[] = {"--max-payload", "64K", "--segment-bytes", "256K", "--retain-bytes",
                           "600K", NULL};
    uint8_t *f[K];
    char name[K][16], addr[32];
    rh_rx r;

    for (int i = 0; i < K; i++) {
        f[i] = malloc(N);
        assert_non_null(f[i]);
        rh_fill(f[i], N, 40 + (uint64_t)i);
        snprintf(name[i], sizeof name[i], "f%d", i);
    }
    rh_stop(&w->origin, 5000);
    assert_int_equal(rh_start(&w->origin, small), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", w->origin.port);
    const char *eargs[] = {"--upstream", addr, "--max-payload", "64K", NULL};
    assert_int_equal(rh_start(&w->edge, eargs), 0);
    rx_open(&r, &w->edge, "rt");
    send_file(&w->origin, "rt", name[0], f[0], N);
    assert_int_equal(rh_rx_until(&r, 1, 0), 0);
    rh_rx_free(&r);
    rh_stop(&w->edge, 5000);
    for (int i = 1; i < K; i++) /* retention drops the segments the edge needs next */
        send_file(&w->origin, "rt", name[i], f[i], N);

    assert_int_equal(rh_start(&w->edge, eargs), 0);
    rh_rx live;
    rx_open_notice(&live, &w->edge, "rt");
    rx_open(&r, &w->edge, "rt");
    for (size_t n = 2; n <= K; n++) {
        assert_int_equal(rh_rx_until(&r, n, 0), 0);
        if (strcmp(r.files[n - 1].name, name[K - 1]) == 0)
            break;
    }
    check_file(&r, 0, name[0], f[0], N);
    for (size_t i = 1; i < r.nfiles; i++) { /* each one whole, in order */
        int k = atoi(r.files[i].name + 1);
        assert_true(k > 0 && k < K && k > atoi(r.files[i - 1].name + 1));
        check_file(&r, i, name[k], f[k], N);
    }
    assert_string_equal(r.files[r.nfiles - 1].name, name[K - 1]);
    assert_true(rh_log_count(&w->edge, "upstream no longer holds the next seq") >= 1);
    assert_int_equal(r.notices, 0); /* not asked for */
    assert_int_equal(rh_rx_until(&live, 2, 0), 0);
    check_notice(&live);
    rh_rx late;
    rx_open_notice(&late, &w->edge, "rt");
    assert_int_equal(rh_rx_until(&late, 2, 0), 0);
    check_notice(&late);
    char err[700];
    ferry_recv(&w->edge, "rt", 2, err, sizeof err);
    assert_true(file_contains(err, "msg=\"the relay skipped files it never had\" "
                                      "code=FY_ESKIPPED"));
    assert_true(rh_log_count(&w->edge, "files skipped: the upstream's retention removed them") == 1);
    rh_rx_free(&late);
    rh_rx_free(&live);
    rh_rx_free(&r);
    for (int i = 0; i < K; i++)
        free(f[i]);
}

/* A sender on the origin sends the first half of `name` on chan; once the
 * edge (with a receiver) holds it, the edge stops.  Returns the sender's
 * socket; *wl and *seq say where it goes on. */
static int half_then_stop_edge(world *w, const char *chan, const char *name, const uint8_t *f,
                               size_t n, fy_welcome *wl, uint64_t *seq)
{
    rh_rx r;

    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    rx_open(&r, &w->edge, chan);
    int fd = rh_connect(&w->origin);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, chan, "", 0, 0, wl), 0);
    *seq = wl->next_seq;
    send_half(fd, wl->channel, seq, name, f, n);
    assert_int_equal(rh_rx_until(&r, 1, n / 2), 1); /* the edge holds the first half */
    rh_rx_free(&r);
    rh_stop(&w->edge, 5000);
    return fd;
}

/* The edge itself restarts while its log ends inside a file: it fetches
 * the file again from its file-begin (so its digest is checked whole),
 * keeps the frames it has, and a receiver gets the file once, whole. */
static void test_edge_restart_mid_file(void **state)
{
    world *w = *state;
    size_t n = 4u << 20;
    uint8_t *f = malloc(n);
    rh_rx r;
    fy_welcome wl;

    rh_fill(f, n, 6);
    uint64_t seq;
    int fd = half_then_stop_edge(w, "mid", "mid.bin", f, n, &wl, &seq);
    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    rx_open(&r, &w->edge, "mid");
    send_rest(fd, wl.channel, &seq, f, n);
    assert_int_equal(rh_rx_until(&r, 1, 0), 0);
    check_file(&r, 0, "mid.bin", f, n);
    assert_true(rh_log_count(&w->edge, "resume_at_file_begin=1") >= 1);
    assert_int_equal(rh_log_count(&w->edge, "upstream stream refused"), 0);
    close(fd);
    rh_rx_free(&r);
    free(f);
}

/* Flip one byte of the n bytes at p where they lie in a log segment of dir
 * (the payload CRC then fails).  Returns 0 when found. */
static int damage_log(const char *dir, const uint8_t *p, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = -ENOENT;

    assert_non_null(d);
    while (rc < 0 && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 4, ".log") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r+b");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        uint8_t *b = malloc((size_t)size);
        assert_non_null(b);
        fseek(f, 0, SEEK_SET);
        assert_int_equal(fread(b, 1, (size_t)size, f), (size_t)size);
        for (long i = 0; rc < 0 && i + (long)n <= size; i++) {
            if (memcmp(b + i, p, n) != 0)
                continue;
            uint8_t c = (uint8_t)(b[i] ^ 0x5a);
            fseek(f, i, SEEK_SET);
            assert_int_equal(fwrite(&c, 1, 1, f), 1);
            rc = 0;
        }
        free(b);
        fclose(f);
    }
    closedir(d);
    return rc;
}

/* The edge restarts inside a file whose stored part is damaged: its writer
 * cannot hash that part back, refuses the continuation (FY_RM_DIGEST_ERR
 * to the mirror) and the mirror starts again at the next file, so the
 * broken file never completes on the edge and a receiver gets the next
 * file whole. */
static void test_edge_refused_file(void **state)
{
    world *w = *state;
    size_t n = 1u << 20;
    uint8_t *f = malloc(n), *g = malloc(n);
    char dir[600];
    rh_rx r;
    fy_welcome wl;

    assert_non_null(f);
    assert_non_null(g);
    rh_fill(f, n, 8);
    rh_fill(g, n, 9);
    uint64_t seq;
    int fd = half_then_stop_edge(w, "ref", "ref.bin", f, n, &wl, &seq);
    snprintf(dir, sizeof dir, "%s/channels/ref", w->edge.data);
    assert_int_equal(damage_log(dir, f + 1000, 64), 0);

    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    memset(&r, 0, sizeof r);
    r.fd = rh_connect(&w->edge);
    assert_true(r.fd >= 0);
    fy_welcome rw;
    assert_int_equal(rh_hello(r.fd, FY_ROLE_RECEIVER, "ref", "", FY_MODE_LIVE, 0, &rw), 0);
    r.next_seq = rw.next_seq;
    send_rest(fd, wl.channel, &seq, f, n); /* the origin has it whole */
    assert_int_equal(rh_send_file(fd, wl.channel, &seq, "next.bin", g, n, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);

    assert_int_equal(rh_rx_until(&r, 1, 0), 0);
    check_file(&r, 0, "next.bin", g, n);
    assert_true(rh_log_count(&w->edge, "file not hashed") >= 1);
    assert_true(rh_log_count(&w->edge, "upstream file refused") >= 1);
    close(fd);
    rh_rx_free(&r);
    free(f);
    free(g);
}

/* An edge restarted without --upstream still knows a channel is a mirror
 * (its state file): a local sender is refused with a text naming the
 * upstream, receivers get what it holds; with --upstream back, a receiver
 * from the start gets the origin's files once each and nothing else (it
 * got a foreign file and every later file twice when the local sender
 * was let in: issue 21). */
static void test_edge_mirror_remembered(void **state)
{
    world *w = *state;
    size_t n = 256u << 10;
    uint8_t *f[3];
    const char *names[] = {"a.bin", "b.bin", "c.bin"};
    rh_rx r;
    fy_welcome wl;

    for (int i = 0; i < 3; i++) {
        f[i] = malloc(n);
        assert_non_null(f[i]);
        rh_fill(f[i], n, 60 + (uint64_t)i);
    }
    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    rx_open(&r, &w->edge, "mm");
    send_file(&w->origin, "mm", names[0], f[0], n);
    assert_int_equal(rh_rx_until(&r, 1, 0), 0);
    rh_rx_free(&r);
    rh_stop(&w->edge, 5000);

    assert_int_equal(rh_start(&w->edge, NULL), 0); /* no --upstream */
    int fd = rh_connect(&w->edge);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_SENDER, "mm", "", 0, 0, &wl), -FY_EBUSY);
    close(fd);
    assert_true(rh_log_count(&w->edge, "runs without --upstream and takes no local sender") >= 1);
    assert_true(rh_log_count(&w->edge, "mirrored channel opened without --upstream") >= 1);
    rx_open(&r, &w->edge, "mm"); /* what it holds is served */
    assert_int_equal(rh_rx_until(&r, 1, 0), 0);
    check_file(&r, 0, names[0], f[0], n);
    rh_rx_free(&r);
    rh_stop(&w->edge, 5000);

    assert_int_equal(start_edge(&w->edge, &w->origin, "60s"), 0);
    rx_open(&r, &w->edge, "mm");
    send_file(&w->origin, "mm", names[1], f[1], n);
    send_file(&w->origin, "mm", names[2], f[2], n);
    assert_int_equal(rh_rx_until(&r, 3, 0), 0);
    for (int i = 0; i < 3; i++)
        check_file(&r, (size_t)i, names[i], f[i], n);
    assert_int_equal(r.err, 0);
    rh_rx_free(&r);
    for (int i = 0; i < 3; i++)
        free(f[i]);
}

/* The last receiver leaves: after upstream-linger the edge unsubscribes;
 * the next receiver gets the old files from the edge's log and the new
 * ones after the edge resumes upstream. */
static void test_edge_linger(void **state)
{
    world *w = *state;
    size_t n = 1u << 20;
    uint8_t *f1 = malloc(n), *f2 = malloc(n);
    rh_rx r;

    rh_fill(f1, n, 4);
    rh_fill(f2, n, 5);
    assert_int_equal(start_edge(&w->edge, &w->origin, "100ms"), 0);
    rx_open(&r, &w->edge, "lg");
    send_file(&w->origin, "lg", "a.bin", f1, n);
    assert_int_equal(rh_rx_until(&r, 1, 0), 0);
    rh_rx_free(&r);
    for (int i = 0; i < 100 && rh_log_count(&w->edge, "msg=\"upstream unsubscribed\"") == 0; i++)
        wait_ms(50);
    assert_int_equal(rh_log_count(&w->edge, "msg=\"upstream unsubscribed\""), 1);
    send_file(&w->origin, "lg", "b.bin", f2, n);
    rx_open(&r, &w->edge, "lg");
    assert_int_equal(rh_rx_until(&r, 2, 0), 0);
    check_file(&r, 0, "a.bin", f1, n);
    check_file(&r, 1, "b.bin", f2, n);
    assert_true(rh_log_count(&w->edge, "mode=resume") >= 1);
    rh_rx_free(&r);
    free(f1);
    free(f2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_edge_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_origin_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_origin_power_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_origin_power_loss_resent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_power_loss_both, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_restart_mid_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_enoseq_mid_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_refused_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_linger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_mirror_remembered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
