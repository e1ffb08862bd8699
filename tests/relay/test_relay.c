/*
 * test_relay.c - end-to-end tests of ferryd: the real daemon on 127.0.0.1
 * (port 0), real TCP, the protocol spoken with fy_proto.  Each test starts
 * its own daemon in a temp directory; the teardown stops it by PID and
 * prints its log tail when the test did not finish.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/digest.h"
#include "ferry/sock.h"
#include "ferry/store.h"
#include "relay_harness.h"

#define CHUNK (64u << 10)

typedef struct tstate {
    rh_daemon d;
    bool ok;
    bool mounted; /* a tmpfs on d.data (root only), unmounted in teardown */
} tstate;

static int setup(void **st)
{
    tstate *t = calloc(1, sizeof *t);
    if (!t || rh_init(&t->d) < 0)
        return -1;
    *st = t;
    return 0;
}

/* Also fails a passed test when the daemon did not exit 0 on SIGTERM (a
 * sanitizer report makes it exit non-zero). */
static int teardown(void **st)
{
    tstate *t = *st;
    int rc = 0;
    if (t->d.pid > 0) {
        int status = rh_stop(&t->d, 10000);
        if (t->ok && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            fprintf(stderr, "ferryd did not exit 0 on SIGTERM (status 0x%x)\n", status);
            t->ok = false;
            rc = -1;
        }
    }
    if (t->mounted)
        umount2(t->d.data, MNT_DETACH);
    rh_cleanup(&t->d, !t->ok);
    free(t);
    return rc;
}

static void start(tstate *t, const char *const *extra)
{
    int rc = rh_start(&t->d, extra);
    if (rc < 0)
        rh_cleanup(&t->d, true);
    assert_int_equal(rc, 0);
}

static int sender(tstate *t, const char *chan, const char *token, fy_welcome *w)
{
    int fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    int rc = rh_hello(fd, FY_ROLE_SENDER, chan, token, 0, 0, w);
    if (rc < 0) {
        if (rc != -FY_EBUSY && rc != -FY_EAUTH)
            fprintf(stderr, "sender hello on %s: %s\n", chan, fy_errname(rc));
        close(fd);
        return rc;
    }
    return fd;
}

static void receiver(tstate *t, rh_rx *r, const char *chan, uint8_t mode, uint64_t from)
{
    fy_welcome w;
    memset(r, 0, sizeof *r);
    r->fd = rh_connect(&t->d);
    assert_true(r->fd >= 0);
    assert_int_equal(rh_hello(r->fd, FY_ROLE_RECEIVER, chan, "", mode, from, &w), 0);
    r->next_seq = w.next_seq;
}

static uint8_t *random_data(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    rh_fill(p, n, seed);
    return p;
}

static void check_file(const rh_file *f, const char *name, const uint8_t *data, size_t len)
{
    assert_string_equal(f->name, name);
    assert_int_equal(f->len, len);
    assert_true(f->digest_ok);
    assert_memory_equal(f->data, data, len);
}

/* Send one whole file and wait for its ack; returns the file-end seq. */
static uint64_t send_acked(int fd, const fy_welcome *w, uint64_t *seq, const char *name,
                           const uint8_t *data, size_t len)
{
    assert_int_equal(rh_send_file(fd, w->channel, seq, name, data, len, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, *seq - 1), 0);
    return *seq - 1;
}

static void say_bye(int fd)
{
    rh_send_frame(fd, FY_FT_BYE, 0, 0, NULL, 0);
    close(fd);
}

/* Connect a sender, retrying while the previous sender's slot is released
 * (the detach is asynchronous). */
static int sender_retry(tstate *t, const char *chan, fy_welcome *w)
{
    int fd = -FY_EBUSY;
    for (int i = 0; i < 200 && fd == -FY_EBUSY; i++) {
        fd = sender(t, chan, "", w);
        if (fd == -FY_EBUSY)
            usleep(20000);
    }
    return fd;
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_fanout_three(void **st)
{
    tstate *t = *st;
    size_t len = 4u << 20;
    uint8_t *data = random_data(len, 1);
    rh_rx rx[3];
    fy_welcome w;
    const char *args[] = {"--fsync", "never", NULL};

    start(t, args);
    for (int i = 0; i < 3; i++) {
        receiver(t, &rx[i], "fan", FY_MODE_LIVE, 0);
        assert_int_equal(rx[i].next_seq, 1);
    }
    int fd = sender(t, "fan", "", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, 1);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "blob.bin", data, len);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rh_rx_until(&rx[i], 1, 0), 0);
        check_file(&rx[i].files[0], "blob.bin", data, len);
        rh_rx_free(&rx[i]);
    }
    say_bye(fd);
    free(data);
    t->ok = true;
}

static void test_late_start(void **st)
{
    tstate *t = *st;
    uint8_t *a = random_data(1u << 20, 2), *b = random_data(300000, 3);
    fy_welcome w;
    rh_rx rx;

    start(t, NULL);
    int fd = sender(t, "late", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a", a, 1u << 20);
    send_acked(fd, &w, &seq, "b", b, 300000);
    say_bye(fd);

    receiver(t, &rx, "late", FY_MODE_START, 0);
    assert_int_equal(rx.next_seq, 1);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    check_file(&rx.files[0], "a", a, 1u << 20);
    check_file(&rx.files[1], "b", b, 300000);
    rh_rx_free(&rx);
    free(a);
    free(b);
    t->ok = true;
}

static void test_resume(void **st)
{
    tstate *t = *st;
    size_t len = 200000; /* 4 data frames: a file is 6 frames */
    uint8_t *d[3];
    fy_welcome w;
    rh_rx rx;

    start(t, NULL);
    int fd = sender(t, "res", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        d[i] = random_data(len, 10 + (uint64_t)i);
        send_acked(fd, &w, &seq, name, d[i], len);
    }
    assert_int_equal(seq, 19);

    /* From the file-begin of the second file. */
    receiver(t, &rx, "res", FY_MODE_RESUME, 7);
    assert_int_equal(rx.next_seq, 7);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    assert_int_equal(rx.files[0].begin_seq, 7);
    check_file(&rx.files[0], "f1", d[1], len);
    check_file(&rx.files[1], "f2", d[2], len);
    rh_rx_free(&rx);

    /* From the middle of the second file: its rest is skipped, the third whole. */
    receiver(t, &rx, "res", FY_MODE_RESUME, 9);
    assert_int_equal(rx.next_seq, 9);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "f2", d[2], len);
    rh_rx_free(&rx);

    /* Past the end: refused. */
    int rfd = rh_connect(&t->d);
    assert_true(rfd >= 0);
    assert_int_equal(rh_hello(rfd, FY_ROLE_RECEIVER, "res", "", FY_MODE_RESUME, 100, &w),
                     -FY_ENOSEQ);
    close(rfd);

    /* Live data after a resume continues without gap. */
    receiver(t, &rx, "res", FY_MODE_RESUME, 13);
    uint8_t *e = random_data(len, 20);
    send_acked(fd, &w, &seq, "f3", e, len);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    check_file(&rx.files[0], "f2", d[2], len);
    check_file(&rx.files[1], "f3", e, len);
    rh_rx_free(&rx);
    say_bye(fd);
    for (int i = 0; i < 3; i++)
        free(d[i]);
    free(e);
    t->ok = true;
}

static void test_busy(void **st)
{
    tstate *t = *st;
    fy_welcome w, w2;

    start(t, NULL);
    int a = sender(t, "busy", "", &w);
    assert_true(a >= 0);
    assert_int_equal(sender(t, "busy", "", &w2), -FY_EBUSY);
    uint8_t x[1000];
    rh_fill(x, sizeof x, 5);
    uint64_t seq = w.next_seq;
    send_acked(a, &w, &seq, "x", x, sizeof x);
    say_bye(a);
    int c = sender_retry(t, "busy", &w2);
    assert_true(c >= 0);
    assert_int_equal(w2.next_seq, seq);
    say_bye(c);
    t->ok = true;
}

/* One ferryd per data directory: a second one on the same --data exits 1
 * naming the directory and the holder's PID, before it touches anything;
 * the first one goes on serving. */
static void test_data_dir_lock(void **st)
{
    tstate *t = *st;
    fy_welcome w;

    start(t, NULL);
    rh_daemon d2;
    memset(&d2, 0, sizeof d2);
    assert_int_equal(rh_init(&d2), 0);
    snprintf(d2.data, sizeof d2.data, "%s", t->d.data);
    assert_int_equal(rh_start(&d2, NULL), -ECHILD);
    assert_true(WIFEXITED(d2.exit_status) && WEXITSTATUS(d2.exit_status) == 1);
    char want[64];
    snprintf(want, sizeof want, "in use by another ferryd (pid %ld,", (long)t->d.pid);
    assert_int_equal(rh_log_count(&d2, want), 1);
    assert_int_equal(rh_log_count(&d2, t->d.data), 1);
    rh_cleanup(&d2, false);

    int a = sender(t, "locked", "", &w);
    assert_true(a >= 0);
    uint8_t x[1000];
    rh_fill(x, sizeof x, 6);
    uint64_t seq = w.next_seq;
    send_acked(a, &w, &seq, "x", x, sizeof x);
    say_bye(a);
    t->ok = true;
}

/* Fill the file system of dir until about `leave` bytes are free. */
static void fill_fs(const char *dir, uint64_t leave, char *path, size_t cap)
{
    struct statvfs sv;
    assert_int_equal(statvfs(dir, &sv), 0);
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    snprintf(path, cap, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static uint8_t zero[1 << 16];
    for (uint64_t put = 0; avail > leave && put < avail - leave; put += sizeof zero)
        if (write(fd, zero, sizeof zero) != (ssize_t)sizeof zero)
            break;
    close(fd);
}

/* A full disk mid-file: the sender gets FY_ENOSPACE; what was stored stays
 * indexed and delivered; log, index and receivers stay at the same frame;
 * once space returns the channel goes on without a restart, and a clean
 * stop leaves a clean log.  Needs root for the small tmpfs. */
static void test_disk_full(void **st)
{
    tstate *t = *st;
    if (geteuid() != 0) {
        fprintf(stderr, "test_disk_full: skipped, needs root to mount a tmpfs\n");
        t->ok = true;
        skip();
    }
    mkdir(t->d.data, 0750);
    assert_int_equal(mount("tmpfs", t->d.data, "tmpfs", 0, "size=8m"), 0);
    t->mounted = true;
    start(t, NULL);

    enum { A = 1 << 20, B = 4 << 20, C = 1 << 20 };
    uint8_t *a = random_data(A, 51), *b = random_data(B, 52), *c = random_data(C, 53);
    rh_rx live;
    receiver(t, &live, "full", FY_MODE_LIVE, 0);
    fy_welcome w;
    int fd = sender(t, "full", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a", a, A);

    char filler[400];
    fill_fs(t->d.data, 1536u << 10, filler, sizeof filler);
    (void)rh_send_file(fd, w.channel, &seq, "b", b, B, CHUNK);
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_ENOSPACE);
    close(fd);
    assert_int_equal(rh_log_count(&t->d, "fy_log_append failed"), 1);
    assert_int_equal(rh_log_count(&t->d, "level=error"), 1); /* one failure, one error line */

    assert_int_equal(unlink(filler), 0);
    fd = sender_retry(t, "full", &w); /* once the failed one has gone; resumes at what was stored */
    assert_true(fd >= 0);
    seq = w.next_seq;
    send_acked(fd, &w, &seq, "c", c, C);
    say_bye(fd);

    /* Live and from-start receivers: a and c whole, b discarded, no gap. */
    assert_int_equal(rh_rx_until(&live, 2, 0), 0);
    check_file(&live.files[0], "a", a, A);
    check_file(&live.files[1], "c", c, C);
    rh_rx all;
    receiver(t, &all, "full", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&all, 2, 0), 0);
    check_file(&all.files[0], "a", a, A);
    check_file(&all.files[1], "c", c, C);
    rh_rx_free(&live);
    rh_rx_free(&all);

    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char ch[600];
    snprintf(ch, sizeof ch, "%s/channels/full", t->d.data);
    fy_check_report cr;
    assert_int_equal(fy_store_check(ch, 0, &cr), 0);
    assert_int_equal(cr.unindexed + cr.torn_bytes, 0);
    free(a);
    free(b);
    free(c);
    t->ok = true;
}

/* A file whose bytes do not match its file-end's SHA-256 is refused with
 * FY_EDIGEST and never acknowledged; receivers (live and from the start)
 * discard it and get the good file after it. */
static void test_bad_digest(void **st)
{
    tstate *t = *st;
    enum { N = 300000 };
    uint8_t *x = random_data(N, 61), *y = random_data(N, 62);
    fy_welcome w;
    rh_rx live, all;

    start(t, NULL);
    receiver(t, &live, "dg", FY_MODE_LIVE, 0);
    int fd = sender(t, "dg", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    uint8_t p[512];
    size_t n;
    fy_file_begin fb = {.size = N};
    snprintf(fb.name, sizeof fb.name, "bad");
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_BEGIN, w.channel, seq++, p, n), 0);
    for (size_t off = 0; off < N; off += CHUNK) {
        size_t k = N - off < CHUNK ? N - off : CHUNK;
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, w.channel, seq++, x + off, k), 0);
    }
    fy_file_end fe = {.size = N};
    assert_int_equal(fy_sha256_oneshot(y, N, fe.sha256), 0); /* another file's digest */
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_END, w.channel, seq++, p, n), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_EDIGEST);
    close(fd);

    fd = sender_retry(t, "dg", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq - 1); /* the bad file-end was not stored */
    seq = w.next_seq;
    send_acked(fd, &w, &seq, "good", y, N);
    say_bye(fd);

    assert_int_equal(rh_rx_until(&live, 1, 0), 0);
    check_file(&live.files[0], "good", y, N);
    receiver(t, &all, "dg", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&all, 1, 0), 0);
    check_file(&all.files[0], "good", y, N);
    rh_rx_free(&live);
    rh_rx_free(&all);
    free(x);
    free(y);
    t->ok = true;
}

/* ---- continuing a file: the digest covers both connections' parts ---------------- */

/* A file-begin and the first half of the file's data. */
static void send_half(int fd, const fy_welcome *w, uint64_t *seq, const char *name,
                      const uint8_t *data, size_t len)
{
    uint8_t p[512];
    size_t n;
    fy_file_begin fb = {.size = len};

    snprintf(fb.name, sizeof fb.name, "%s", name);
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_BEGIN, w->channel, (*seq)++, p, n), 0);
    for (size_t off = 0; off < len / 2; off += CHUNK) {
        size_t k = len / 2 - off < CHUNK ? len / 2 - off : CHUNK;
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, w->channel, (*seq)++, data + off, k), 0);
    }
}

/* A file-end for a file of len bytes carrying the SHA-256 of digest_of. */
static void send_end(int fd, const fy_welcome *w, uint64_t *seq, const uint8_t *digest_of,
                     size_t len)
{
    uint8_t p[512];
    size_t n;
    fy_file_end fe = {.size = len};

    assert_int_equal(fy_sha256_oneshot(digest_of, len, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_END, w->channel, (*seq)++, p, n), 0);
}

/* The second half of the file's data (a continuation: no file-begin), then
 * a file-end with the SHA-256 of digest_of. */
static void send_rest(int fd, const fy_welcome *w, uint64_t *seq, const uint8_t *data,
                      const uint8_t *digest_of, size_t len)
{
    for (size_t off = len / 2; off < len; off += CHUNK) {
        size_t k = len - off < CHUNK ? len - off : CHUNK;
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, w->channel, (*seq)++, data + off, k), 0);
    }
    send_end(fd, w, seq, digest_of, len);
}

/* A file sent half by one connection and half by the next (the first one
 * lost): the relay checks the file-end's SHA-256 over both parts and
 * refuses a wrong one with FY_EDIGEST, whether it still has the hash of the
 * first part (the writer keeps it across senders), has lost it (after a
 * refused file-end), or never had it (a restart inside the file: the
 * stored part is hashed back from the log). */
static void test_continue_digest(void **st)
{
    tstate *t = *st;
    enum { N = 300000 };
    uint8_t *x = random_data(N, 71), *y = random_data(N, 72), *z = random_data(N, 73);
    fy_welcome w;
    rh_rx rx;

    start(t, NULL);
    int fd = sender(t, "cd", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;

    /* One: continued with the right digest; nothing is read back. */
    send_half(fd, &w, &seq, "one", x, N);
    close(fd); /* lost, no bye */
    fd = sender_retry(t, "cd", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq); /* the first part is stored */
    send_rest(fd, &w, &seq, x, x, N);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    assert_int_equal(rh_log_count(&t->d, "sender continues a file"), 0);

    /* Two: continued with another file's digest, refused; the file-end
     * sent again with the right one is taken (the stored part is hashed
     * back: the refused file-end used up the writer's hash). */
    send_half(fd, &w, &seq, "two", y, N);
    close(fd);
    fd = sender_retry(t, "cd", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq);
    send_rest(fd, &w, &seq, y, x, N);
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_EDIGEST);
    close(fd);
    fd = sender_retry(t, "cd", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq - 1); /* the bad file-end was not stored */
    seq = w.next_seq;
    send_end(fd, &w, &seq, y, N);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    assert_int_equal(rh_log_count(&t->d, "sender continues a file"), 1);

    /* Three: the relay restarts inside the file; its continuation is
     * checked over the part stored before the restart. */
    send_half(fd, &w, &seq, "three", z, N);
    say_bye(fd);
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    start(t, NULL);
    fd = sender(t, "cd", "", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq);
    send_rest(fd, &w, &seq, z, y, N);
    assert_int_equal(rh_wait_ack(fd, seq - 1), -FY_EDIGEST);
    close(fd);
    fd = sender_retry(t, "cd", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq - 1);
    seq = w.next_seq;
    send_end(fd, &w, &seq, z, N);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    say_bye(fd);
    assert_true(rh_log_count(&t->d, "file in progress found") >= 1);

    /* Receivers get the three files whole. */
    receiver(t, &rx, "cd", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&rx, 3, 0), 0);
    check_file(&rx.files[0], "one", x, N);
    check_file(&rx.files[1], "two", y, N);
    check_file(&rx.files[2], "three", z, N);
    rh_rx_free(&rx);
    free(x);
    free(y);
    free(z);
    t->ok = true;
}

/* A bad client gets an error frame with `code`, then the connection ends. */
static void expect_error_close(int fd, int code)
{
    rh_frame f;
    assert_int_equal(rh_read_frame(fd, &f), 0);
    assert_int_equal(f.hdr.type, FY_FT_ERROR);
    fy_error e;
    assert_int_equal(fy_error_decode(f.payload, f.hdr.len, &e), 0);
    assert_int_equal(e.code, code);
    assert_true(strlen(e.text) > 0);
    rh_frame_free(&f);
    int rc = rh_read_frame(fd, &f);
    assert_true(rc == -ENODATA || rc == -ECONNRESET);
    close(fd);
}

static void test_malformed(void **st)
{
    tstate *t = *st;
    size_t len = 2u << 20;
    uint8_t *data = random_data(len, 7);
    fy_welcome w, bw;
    rh_rx rx;
    uint8_t p[1024], hb[FY_FRAME_HDR_SIZE];
    size_t n;

    start(t, NULL);
    receiver(t, &rx, "good", FY_MODE_LIVE, 0);
    int good = sender(t, "good", "", &w);
    assert_true(good >= 0);
    /* The first half of a file, by hand. */
    uint64_t seq = w.next_seq;
    fy_file_begin fb = {.size = len};
    snprintf(fb.name, sizeof fb.name, "good.bin");
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(good, FY_FT_FILE_BEGIN, w.channel, seq++, p, n), 0);
    for (size_t off = 0; off < len / 2; off += CHUNK)
        assert_int_equal(rh_send_frame(good, FY_FT_DATA, w.channel, seq++, data + off, CHUNK), 0);

    /* Bad magic. */
    int b = sender(t, "bad1", "", &bw);
    assert_true(b >= 0);
    fy_frame_hdr h = {.type = FY_FT_DATA, .channel = bw.channel, .seq = bw.next_seq};
    fy_frame_seal(&h, "x", 1, hb);
    hb[0] ^= 0xff;
    assert_int_equal(fy_sock_write_all(b, hb, sizeof hb), 0);
    expect_error_close(b, FY_EMAGIC);

    /* Bad payload CRC, after a good file-begin that must be kept. */
    b = sender(t, "bad2", "", &bw);
    assert_true(b >= 0);
    fy_file_begin fb2 = {.size = 10};
    snprintf(fb2.name, sizeof fb2.name, "kept");
    assert_int_equal(fy_file_begin_encode(&fb2, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(b, FY_FT_FILE_BEGIN, bw.channel, bw.next_seq, p, n), 0);
    uint8_t pay[10] = "0123456789";
    h = (fy_frame_hdr){.type = FY_FT_DATA, .channel = bw.channel, .seq = bw.next_seq + 1};
    fy_frame_seal(&h, pay, sizeof pay, hb);
    pay[3] ^= 1;
    assert_int_equal(fy_sock_write_all(b, hb, sizeof hb), 0);
    assert_int_equal(fy_sock_write_all(b, pay, sizeof pay), 0);
    expect_error_close(b, FY_ECRC);

    /* Wrong sequence number. */
    b = sender(t, "bad3", "", &bw);
    assert_true(b >= 0);
    assert_int_equal(rh_send_frame(b, FY_FT_FILE_BEGIN, bw.channel, bw.next_seq + 5, p, n), 0);
    expect_error_close(b, FY_ESEQ);

    /* Oversize: a header announcing 2 MiB (over the 1 MiB default). */
    b = sender(t, "bad4", "", &bw);
    assert_true(b >= 0);
    h = (fy_frame_hdr){.type = FY_FT_DATA, .channel = bw.channel, .seq = bw.next_seq,
                       .len = 2u << 20};
    fy_frame_hdr_encode(&h, hb);
    assert_int_equal(fy_sock_write_all(b, hb, sizeof hb), 0);
    expect_error_close(b, FY_EOVERSIZE);

    /* Data outside a file. */
    b = sender(t, "bad5", "", &bw);
    assert_true(b >= 0);
    assert_int_equal(rh_send_frame(b, FY_FT_DATA, bw.channel, bw.next_seq, "abc", 3), 0);
    expect_error_close(b, FY_EPROTO);

    /* The good transfer carries on. */
    for (size_t off = len / 2; off < len; off += CHUNK)
        assert_int_equal(rh_send_frame(good, FY_FT_DATA, w.channel, seq++, data + off, CHUNK), 0);
    fy_file_end fe = {.size = len};
    assert_int_equal(fy_sha256_oneshot(data, len, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(good, FY_FT_FILE_END, w.channel, seq, p, n), 0);
    assert_int_equal(rh_wait_ack(good, seq), 0);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "good.bin", data, len);
    rh_rx_free(&rx);
    say_bye(good);

    /* The frame before the bad CRC was stored: the next sender continues after it. */
    b = sender_retry(t, "bad2", &bw);
    assert_true(b >= 0);
    assert_int_equal(bw.next_seq, 2);
    say_bye(b);
    assert_true(rh_log_count(&t->d, "err=FY_ECRC") >= 1);
    free(data);
    t->ok = true;
}

/* Frames of every size class, written in uneven pieces, so that frame
 * boundaries, the 64 KiB pack buffer and the 128 KiB "read straight into
 * the buffer" threshold fall
 * everywhere in the session's reads; then a big data frame whose payload
 * arrives after its header and fails its CRC (the direct path's check). */
static void test_split_frames(void **st)
{
    tstate *t = *st;
    static const size_t sizes[] = {1, 127, 128, 4064, 4065, 65503, 65504, 65505, 65536, 1u << 20,
                                   3, 40000, 131039, 131040, 131041, 200000, 77};
    size_t nsz = sizeof sizes / sizeof sizes[0], len = 0;
    for (size_t i = 0; i < 3 * nsz; i++)
        len += sizes[i % nsz];
    uint8_t *data = random_data(len, 11);
    fy_welcome w, bw;
    rh_rx rx;
    uint8_t p[1024], hb[FY_FRAME_HDR_SIZE];
    size_t n;

    start(t, NULL);
    int fd = sender(t, "split", "", &w);
    assert_true(fd >= 0);
    /* The whole stream in one buffer, then written in pieces of 1 byte to
     * 300 KiB with a short pause now and then, so reads end mid-frame. */
    size_t cap = len + 3 * nsz * FY_FRAME_HDR_SIZE + 4096, sl = 0;
    uint8_t *s = malloc(cap);
    assert_non_null(s);
    uint64_t seq = w.next_seq;
    fy_file_begin fb = {.size = len};
    snprintf(fb.name, sizeof fb.name, "split.bin");
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    fy_frame_hdr h = {.type = FY_FT_FILE_BEGIN, .channel = w.channel, .seq = seq++};
    fy_frame_seal(&h, p, n, s + sl);
    memcpy(s + sl + FY_FRAME_HDR_SIZE, p, n);
    sl += FY_FRAME_HDR_SIZE + n;
    for (size_t i = 0, off = 0; i < 3 * nsz; off += sizes[i % nsz], i++) {
        h = (fy_frame_hdr){.type = FY_FT_DATA, .channel = w.channel, .seq = seq++};
        fy_frame_seal(&h, data + off, sizes[i % nsz], s + sl);
        memcpy(s + sl + FY_FRAME_HDR_SIZE, data + off, sizes[i % nsz]);
        sl += FY_FRAME_HDR_SIZE + sizes[i % nsz];
    }
    fy_file_end fe = {.size = len};
    assert_int_equal(fy_sha256_oneshot(data, len, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    h = (fy_frame_hdr){.type = FY_FT_FILE_END, .channel = w.channel, .seq = seq};
    fy_frame_seal(&h, p, n, s + sl);
    memcpy(s + sl + FY_FRAME_HDR_SIZE, p, n);
    sl += FY_FRAME_HDR_SIZE + n;
    assert_true(sl <= cap);
    uint64_t r = 12345;
    for (size_t off = 0, k = 0; off < sl; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        size_t piece = k % 3 == 0 ? 1 + r % 40 : 1 + r % (300u << 10);
        if (piece > sl - off)
            piece = sl - off;
        assert_int_equal(fy_sock_write_all(fd, s + off, piece), 0);
        off += piece;
        if (k % 8 == 0)
            usleep(1000);
    }
    assert_int_equal(rh_wait_ack(fd, seq), 0);
    receiver(t, &rx, "split", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "split.bin", data, len);
    rh_rx_free(&rx);
    say_bye(fd);

    /* A 256 KiB data frame: header and part of the payload first, the rest
     * (one byte flipped) later, so it is read into its own buffer. */
    int b = sender(t, "splitbad", "", &bw);
    assert_true(b >= 0);
    fb.size = 1u << 18;
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(b, FY_FT_FILE_BEGIN, bw.channel, bw.next_seq, p, n), 0);
    h = (fy_frame_hdr){.type = FY_FT_DATA, .channel = bw.channel, .seq = bw.next_seq + 1};
    fy_frame_seal(&h, data, 1u << 18, hb);
    assert_int_equal(fy_sock_write_all(b, hb, sizeof hb), 0);
    assert_int_equal(fy_sock_write_all(b, data, 1000), 0);
    usleep(20000);
    data[30000] ^= 1;
    assert_int_equal(fy_sock_write_all(b, data + 1000, (1u << 18) - 1000), 0);
    expect_error_close(b, FY_ECRC);
    /* The file-begin before it was stored. */
    b = sender_retry(t, "splitbad", &bw);
    assert_true(b >= 0);
    assert_int_equal(bw.next_seq, 2);
    say_bye(b);
    free(s);
    free(data);
    t->ok = true;
}

static int count_fds(pid_t pid)
{
    char path[64];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A live receiver holds its socket only: the data file is opened when it
 * has to catch up from disk or follow live frames, and closed a second
 * after nothing more came (it used to hold two more descriptors for the
 * whole connection, so a 10 000-receiver storm ran out of descriptors). */
static void live_receiver_fds(tstate *t, const char *live_send)
{
    enum { NR = 24 };
    const char *args[] = {"--live-send", live_send, NULL};
    rh_rx rx[NR + 1];
    fy_welcome w;
    size_t len = 300000;
    uint8_t *data = random_data(len, 5);

    start(t, args);
    receiver(t, &rx[0], "fds", FY_MODE_LIVE, 0); /* creates the channel */
    int fd = sender(t, "fds", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a.bin", data, len);
    assert_int_equal(rh_rx_until(&rx[0], 1, 0), 0);
    int base = count_fds(t->d.pid);
    assert_true(base > 0);
    /* START receivers catch up from disk, then go live. */
    for (int i = 1; i <= NR; i++) {
        receiver(t, &rx[i], "fds", FY_MODE_START, 0);
        assert_int_equal(rh_rx_until(&rx[i], 1, 0), 0);
        check_file(&rx[i].files[0], "a.bin", data, len);
    }
    /* One more file reaches everyone live. */
    send_acked(fd, &w, &seq, "b.bin", data, len);
    for (int i = 0; i <= NR; i++) {
        assert_int_equal(rh_rx_until(&rx[i], i ? 2 : 2, 0), 0);
        check_file(&rx[i].files[rx[i].nfiles - 1], "b.bin", data, len);
    }
    int now = count_fds(t->d.pid);
    for (int i = 0; i < 40 && now - base > NR + 2; i++) { /* the readers linger 1 s */
        usleep(100000);
        now = count_fds(t->d.pid);
    }
    fprintf(stderr, "fds: %d with 1 receiver, %d with %d\n", base, now, NR + 1);
    assert_true(now - base <= NR + 2); /* one socket each (+ slack) */
    for (int i = 0; i <= NR; i++) {
        close(rx[i].fd);
        rh_rx_free(&rx[i]);
    }
    say_bye(fd);
    free(data);
    t->ok = true;
}

static void test_live_receiver_fds(void **st)
{
    live_receiver_fds(*st, "buffers");
}

static void test_live_receiver_fds_follow(void **st)
{
    live_receiver_fds(*st, "file");
}

static void test_auth(void **st)
{
    tstate *t = *st;
    char path[400];
    fy_welcome w;

    snprintf(path, sizeof path, "%s/tokens", t->d.root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# test tokens\npub1 publish up*\nsub1 subscribe up*\nall1 both *\n");
    fclose(f);
    const char *args[] = {"--auth", path, NULL};
    start(t, args);

    assert_int_equal(sender(t, "upload", "wrong", &w), -FY_EAUTH);
    assert_int_equal(sender(t, "upload", "sub1", &w), -FY_EAUTH);
    assert_int_equal(sender(t, "other", "pub1", &w), -FY_EAUTH);
    int fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_RECEIVER, "upload", "pub1", FY_MODE_LIVE, 0, &w),
                     -FY_EAUTH);
    close(fd);

    int s = sender(t, "upload", "pub1", &w);
    assert_true(s >= 0);
    uint8_t x[5000];
    rh_fill(x, sizeof x, 9);
    uint64_t seq = w.next_seq;
    send_acked(s, &w, &seq, "x", x, sizeof x);
    say_bye(s);
    fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    assert_int_equal(rh_hello(fd, FY_ROLE_RECEIVER, "upload", "sub1", FY_MODE_START, 0, &w), 0);
    close(fd);
    assert_true(rh_log_count(&t->d, "err=FY_EAUTH") >= 4);
    t->ok = true;
}

static void test_restart(void **st)
{
    tstate *t = *st;
    uint8_t *a = random_data(1u << 20, 11), *b = random_data(500000, 12);
    fy_welcome w;
    rh_rx rx;

    start(t, NULL);
    int fd = sender(t, "keep", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a", a, 1u << 20);
    say_bye(fd);
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    start(t, NULL);
    receiver(t, &rx, "keep", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "a", a, 1u << 20);
    fd = sender(t, "keep", "", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq);
    send_acked(fd, &w, &seq, "b", b, 500000);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    check_file(&rx.files[1], "b", b, 500000);
    rh_rx_free(&rx);
    say_bye(fd);
    free(a);
    free(b);
    t->ok = true;
}

/* A LIVE receiver that joins mid-file gets that file from its file-begin. */
static void test_live_midfile(void **st)
{
    tstate *t = *st;
    size_t len = 1u << 20;
    uint8_t *data = random_data(len, 21);
    uint8_t p[1024];
    size_t n;
    fy_welcome w;
    rh_rx rx;

    start(t, NULL);
    int fd = sender(t, "mid", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    uint8_t x[3000];
    rh_fill(x, sizeof x, 22);
    send_acked(fd, &w, &seq, "before", x, sizeof x);
    uint64_t begin = seq;
    fy_file_begin fb = {.size = len};
    snprintf(fb.name, sizeof fb.name, "during");
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_BEGIN, w.channel, seq++, p, n), 0);
    for (size_t off = 0; off < len / 2; off += CHUNK)
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, w.channel, seq++, data + off, CHUNK), 0);
    /* A ping is answered in order: once it is back, the frames before it are stored. */
    assert_int_equal(rh_send_frame(fd, FY_FT_PING, 0, 0, "sync", 4), 0);
    rh_frame f;
    assert_int_equal(rh_read_frame(fd, &f), 0);
    assert_int_equal(f.hdr.type, FY_FT_PONG);
    assert_memory_equal(f.payload, "sync", 4);
    rh_frame_free(&f);
    /* The pong proves the frames were read, not stored: wait (bounded) until a
     * LIVE receiver is told the file-begin. */
    for (int i = 0; i < 200; i++) {
        receiver(t, &rx, "mid", FY_MODE_LIVE, 0);
        if (rx.next_seq == begin)
            break;
        rh_rx_free(&rx);
        usleep(10000);
    }
    assert_int_equal(rx.next_seq, begin);
    for (size_t off = len / 2; off < len; off += CHUNK)
        assert_int_equal(rh_send_frame(fd, FY_FT_DATA, w.channel, seq++, data + off, CHUNK), 0);
    fy_file_end fe = {.size = len};
    assert_int_equal(fy_sha256_oneshot(data, len, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_FILE_END, w.channel, seq, p, n), 0);
    assert_int_equal(rh_wait_ack(fd, seq), 0);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "during", data, len);
    rh_rx_free(&rx);
    say_bye(fd);

    /* SIGUSR1 writes the flight recorder and names the file in the log. */
    kill(t->d.pid, SIGUSR1);
    for (int i = 0; i < 500 && rh_log_count(&t->d, "trace snapshot written") < 1; i++)
        usleep(10000);
    assert_int_equal(rh_log_count(&t->d, "trace snapshot written"), 1);
    assert_int_equal(rh_log_count(&t->d, "/trace-"), 1);
    free(data);
    t->ok = true;
}

/* Small segments and retention: a live receiver crosses segments, a late
 * START receiver gets what is still held, from its first whole file on. */
static void test_segments_retention(void **st)
{
    tstate *t = *st;
    const char *args[] = {"--max-payload", "64K", "--segment-bytes", "256K", "--retain-bytes",
                          "600K", "--channel-budget", "1M", "--window", "1M", "--memory", "8M",
                          NULL};
    size_t len = 100000;
    uint8_t *d[10];
    fy_welcome w;
    rh_rx live, late;

    start(t, args);
    receiver(t, &live, "ret", FY_MODE_LIVE, 0);
    int fd = sender(t, "ret", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        d[i] = random_data(len, 30 + (uint64_t)i);
        send_acked(fd, &w, &seq, name, d[i], len);
    }
    say_bye(fd);
    assert_int_equal(rh_rx_until(&live, 10, 0), 0);
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        check_file(&live.files[i], name, d[i], len);
    }
    rh_rx_free(&live);

    memset(&late, 0, sizeof late);
    late.fd = rh_connect(&t->d);
    assert_true(late.fd >= 0);
    assert_int_equal(rh_hello(late.fd, FY_ROLE_RECEIVER, "ret", "", FY_MODE_START, 0, &w), 0);
    assert_true(w.first_seq > 1);
    assert_int_equal(w.next_seq, w.first_seq);
    late.next_seq = w.next_seq;
    /* Files are 4 frames each (seqs 4k+1..4k+4): the first whole one held. */
    size_t first = (size_t)((w.first_seq - 1 + 3) / 4);
    assert_true(first >= 1 && first <= 8);
    assert_int_equal(rh_rx_until(&late, 10 - first, 0), 0);
    for (size_t i = first; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%zu", i);
        check_file(&late.files[i - first], name, d[i], len);
    }
    rh_rx_free(&late);
    assert_true(rh_log_count(&t->d, "old segments removed") >= 1);
    for (int i = 0; i < 10; i++)
        free(d[i]);
    t->ok = true;
}

/* ---- threads for the concurrent tests ----------------------------------------------- */

typedef struct job {
    tstate *t;
    const char *chan, *name;
    const uint8_t *data;
    size_t len;
    rh_rx rx;
    int rc;
} job;

static void *send_job(void *arg)
{
    job *j = arg;
    fy_welcome w;
    int fd = rh_connect(&j->t->d);
    j->rc = fd < 0 ? fd : rh_hello(fd, FY_ROLE_SENDER, j->chan, "", 0, 0, &w);
    if (j->rc == 0) {
        uint64_t seq = w.next_seq;
        j->rc = rh_send_file(fd, w.channel, &seq, j->name, j->data, j->len, CHUNK);
        if (j->rc == 0)
            j->rc = rh_wait_ack(fd, seq - 1);
        rh_send_frame(fd, FY_FT_BYE, 0, 0, NULL, 0);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void *recv_job(void *arg)
{
    job *j = arg;
    j->rc = rh_rx_until(&j->rx, 1, 0);
    return NULL;
}

/* One receiver stops reading: the other two get the file at once, and the
 * slow one gets it intact when it reads again.  With --live-send buffers (the
 * default) its forwarder overflows its window and catches up from disk;
 * following the file, it holds no buffer at all and simply lags. */
static void throttled(tstate *t, const char *live_send)
{
    size_t len = 16u << 20;
    uint8_t *data = random_data(len, 13);
    const char *args[] = {"--window", "1M", "--live-send", live_send, NULL};
    job snd = {.t = t, .chan = "slow", .name = "big", .data = data, .len = len};
    job fast[2] = {{.t = t}, {.t = t}};
    rh_rx slow;
    pthread_t th[3];

    start(t, args);
    receiver(t, &slow, "slow", FY_MODE_LIVE, 0);
    for (int i = 0; i < 2; i++)
        receiver(t, &fast[i].rx, "slow", FY_MODE_LIVE, 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, recv_job, &fast[i]), 0);
    assert_int_equal(pthread_create(&th[2], NULL, send_job, &snd), 0);

    /* The slow receiver reads 1 MiB, then nothing until the others are done. */
    assert_int_equal(rh_rx_until(&slow, 1, 1u << 20), 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(snd.rc, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fast[i].rc, 0);
        check_file(&fast[i].rx.files[0], "big", data, len);
        rh_rx_free(&fast[i].rx);
    }
    assert_true(slow.bytes < len);
    /* Now the slow one catches up from disk and completes intact. */
    assert_int_equal(rh_rx_until(&slow, 1, 0), 0);
    check_file(&slow.files[0], "big", data, len);
    rh_rx_free(&slow);
    if (strcmp(live_send, "buffers") == 0)
        assert_true(rh_log_count(&t->d, "catching up from disk") >= 1);
    else
        assert_int_equal(rh_log_count(&t->d, "catching up from disk"), 0);
    free(data);
    t->ok = true;
}

static void test_throttled(void **st)
{
    throttled(*st, "buffers");
}

static void test_throttled_follow(void **st)
{
    throttled(*st, "file");
}

/* Two channels, each with a receiver that does not read, and a pool smaller
 * than both windows together: neither sender waits for those receivers. */
static void test_memory_pressure(void **st)
{
    tstate *t = *st;
    size_t len = 11u << 18; /* 2.75 MiB: under one window, over half the pool */
    uint8_t *da = random_data(len, 17), *db = random_data(len, 18);
    const char *args[] = {"--max-payload", "64K", "--channel-budget", "1M", "--window", "3M",
                          "--memory", "5M", "--sndbuf", "32K", "--live-send", "buffers", NULL};
    job s[2] = {{.t = t, .chan = "pa", .name = "a", .data = da, .len = len},
                {.t = t, .chan = "pb", .name = "b", .data = db, .len = len}};
    rh_rx stuck[2];

    start(t, args);
    for (int i = 0; i < 2; i++) {
        receiver(t, &stuck[i], i ? "pb" : "pa", FY_MODE_LIVE, 0);
        int small = 32 << 10;
        setsockopt(stuck[i].fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    send_job(&s[0]);
    assert_int_equal(s[0].rc, 0);
    send_job(&s[1]);
    assert_int_equal(s[1].rc, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rh_rx_until(&stuck[i], 1, 0), 0);
        check_file(&stuck[i].files[0], i ? "b" : "a", i ? db : da, len);
        rh_rx_free(&stuck[i]);
    }
    assert_true(rh_log_count(&t->d, "why=pool_pressure") >= 1);
    free(da);
    free(db);
    t->ok = true;
}

static void test_two_channels(void **st)
{
    tstate *t = *st;
    size_t len = 3u << 20;
    uint8_t *da = random_data(len, 14), *db = random_data(len, 15);
    job s[2] = {{.t = t, .chan = "alpha", .name = "a", .data = da, .len = len},
                {.t = t, .chan = "beta", .name = "b", .data = db, .len = len}};
    job r[2] = {{.t = t}, {.t = t}};
    pthread_t th[4];
    const char *args[] = {"--fsync", "20", NULL}; /* the interval policy */

    start(t, args);
    receiver(t, &r[0].rx, "alpha", FY_MODE_LIVE, 0);
    receiver(t, &r[1].rx, "beta", FY_MODE_LIVE, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, recv_job, &r[i]), 0);
        assert_int_equal(pthread_create(&th[2 + i], NULL, send_job, &s[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].rc, 0);
        assert_int_equal(r[i].rc, 0);
        check_file(&r[i].rx.files[0], i ? "b" : "a", i ? db : da, len);
        rh_rx_free(&r[i].rx);
    }
    free(da);
    free(db);
    t->ok = true;
}

static void test_sigterm(void **st)
{
    tstate *t = *st;
    uint8_t x[100000];
    fy_welcome w;
    rh_rx rx;

    rh_fill(x, sizeof x, 16);
    start(t, NULL);
    receiver(t, &rx, "term", FY_MODE_LIVE, 0);
    int fd = sender(t, "term", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "x", x, sizeof x);
    int idle = rh_connect(&t->d); /* connected, no hello yet */
    assert_true(idle >= 0);

    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(rh_wait_bye(fd), 0);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "x", x, sizeof x);
    assert_int_equal(rh_wait_bye(rx.fd), 0);
    assert_int_equal(rh_wait_bye(idle), 0);
    rh_rx_free(&rx);
    close(fd);
    close(idle);
    assert_true(rh_log_count(&t->d, "msg=\"exit\"") == 1);
    t->ok = true;
}

/* A payload byte flipped on disk in a sealed segment: the background
 * scrub finds it, logs it once with its seq, and the pass says so. */
static void test_scrub_finds_damage(void **st)
{
    tstate *t = *st;
    const char *args[] = {"--max-payload", "16K", "--segment-bytes", "64K", "--scrub-interval", "1",
                          NULL};
    enum { N = 200000 };
    uint8_t *x = random_data(N, 81);
    fy_welcome w;

    start(t, args);
    int fd = sender(t, "sc", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    assert_int_equal(rh_send_file(fd, w.channel, &seq, "x", x, N, 16000), 0);
    assert_int_equal(rh_wait_ack(fd, seq - 1), 0);
    say_bye(fd);
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* The first segment starts at seq 1: file-begin, then data frames. */
    char p[700];
    snprintf(p, sizeof p, "%s/channels/sc/%020llu.log", t->d.data, 1ull);
    int lfd = open(p, O_RDWR);
    assert_true(lfd >= 0);
    uint8_t hdr[32];
    assert_int_equal(pread(lfd, hdr, 32, 32), 32); /* the file-begin's header */
    uint32_t blen = (uint32_t)hdr[12] | (uint32_t)hdr[13] << 8 | (uint32_t)hdr[14] << 16 |
                    (uint32_t)hdr[15] << 24; /* header offset 12: payload length */
    off_t at = 32 + 32 + (off_t)blen + 32 + 100; /* 100 bytes into seq 2's payload */
    uint8_t byte;
    assert_int_equal(pread(lfd, &byte, 1, at), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(lfd, &byte, 1, at), 1);
    close(lfd);

    start(t, args);
    rh_rx rx;
    receiver(t, &rx, "sc", FY_MODE_LIVE, 0); /* opens the channel */
    for (int i = 0; i < 300 && rh_log_count(&t->d, "scrub pass done") == 0; i++) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rh_log_count(&t->d, "msg=\"damaged frame on disk\" channel=sc"), 1);
    assert_int_equal(rh_log_count(&t->d, "seq=2 err=FY_ECRC"), 1);
    assert_int_equal(rh_log_count(&t->d, "damaged=1"), 1);
    rh_rx_free(&rx);
    free(x);
    t->ok = true;
}

/* A receiver that acknowledges seqs that were never sent is refused. */
static void test_ack_beyond(void **st)
{
    tstate *t = *st;
    uint8_t x[5000];
    fy_welcome w;
    rh_rx rx;

    rh_fill(x, sizeof x, 71);
    start(t, NULL);
    int fd = sender(t, "ak", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "x", x, sizeof x);
    receiver(t, &rx, "ak", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    uint8_t p[64];
    size_t n;
    fy_ack a = {.seq = seq - 1}; /* the last frame: fine */
    assert_int_equal(fy_ack_encode(&a, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(rx.fd, FY_FT_ACK, w.channel, 0, p, n), 0);
    a.seq = seq + 1000;
    assert_int_equal(fy_ack_encode(&a, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(rx.fd, FY_FT_ACK, w.channel, 0, p, n), 0);
    expect_error_close(rx.fd, FY_EPROTO);
    rh_rx_free(&rx);
    say_bye(fd);
    t->ok = true;
}

/* Receivers that resume mid-channel (their forwarders need the indexer for
 * a look-up) while SIGTERM arrives: the indexer must outlive them, or a
 * forwarder waits for an answer that never comes and the drain has to be
 * forced.  A thread keeps subscribing while the daemon is stopped, so some
 * subscriptions land in the window; every loop is bounded. */
typedef struct lk_job {
    const rh_daemon *d;
    atomic_bool stop;
    int fds[400];
    int n;
} lk_job;

static void *lk_subscribe(void *arg)
{
    lk_job *j = arg;
    fy_hello h = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_RESUME, .resume_from = 3};
    snprintf(h.channel, sizeof h.channel, "lk");
    uint8_t p[1024];
    size_t n;
    if (fy_hello_encode(&h, p, sizeof p, &n) < 0)
        return NULL;
    while (!atomic_load(&j->stop) && j->n < 400) {
        int fd = rh_connect(j->d);
        if (fd < 0)
            break;
        j->fds[j->n++] = fd;
        if (rh_send_frame(fd, FY_FT_HELLO, 0, 0, p, n) < 0)
            break;
    }
    return NULL;
}

static void test_sigterm_lookup(void **st)
{
    tstate *t = *st;
    uint8_t x[20000];
    fy_welcome w;

    rh_fill(x, sizeof x, 17);
    for (int round = 0; round < 4; round++) {
        start(t, NULL);
        if (round == 0) {
            int fd = sender(t, "lk", "", &w);
            assert_true(fd >= 0);
            uint64_t seq = w.next_seq;
            for (int i = 0; i < 4; i++) {
                char name[16];
                snprintf(name, sizeof name, "f%d", i);
                send_acked(fd, &w, &seq, name, x, sizeof x);
            }
            say_bye(fd);
        }
        lk_job *j = calloc(1, sizeof *j);
        assert_non_null(j);
        j->d = &t->d;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, lk_subscribe, j), 0);
        struct timespec ts = {0, (20 + 15 * round) * 1000000L};
        nanosleep(&ts, NULL);
        int status = rh_stop(&t->d, 10000);
        atomic_store(&j->stop, true);
        pthread_join(th, NULL);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        for (int i = 0; i < j->n; i++)
            close(j->fds[i]);
        free(j);
        assert_int_equal(rh_log_count(&t->d, "shutdown incomplete"), 0);
    }
    t->ok = true;
}

/* ---- idle peers and takeover ------------------------------------------------------ */

static double now_s(void)
{
    return rh_now_s();
}

/* Read frames (answering nothing) until an error frame; pings, pongs and
 * acks are skipped.  Returns its code (the text must contain `want` when
 * given), then checks that the relay closes.  Bounded by count and by the
 * socket timeout. */
static int read_error_close(int fd, const char *want)
{
    for (int i = 0; i < 100000; i++) {
        rh_frame f;
        int rc = rh_read_frame(fd, &f);
        if (rc < 0)
            return rc;
        uint8_t type = f.hdr.type;
        if (fy_frame_is_stream(type) || type == FY_FT_PING || type == FY_FT_PONG ||
            type == FY_FT_ACK) {
            rh_frame_free(&f);
            continue;
        }
        fy_error e = {0};
        rc = type == FY_FT_ERROR ? fy_error_decode(f.payload, f.hdr.len, &e) : -FY_EPROTO;
        rh_frame_free(&f);
        if (rc < 0)
            return rc;
        if (want && !strstr(e.text, want)) {
            fprintf(stderr, "error text \"%s\" lacks \"%s\"\n", e.text, want);
            return -EINVAL;
        }
        rc = rh_read_frame(fd, &f);
        rh_frame_free(&f);
        return rc == -ENODATA || rc == -ECONNRESET ? (int)e.code : -EPROTO;
    }
    return -ETIMEDOUT;
}

/* For ms milliseconds, read what comes and answer every ping with a pong.
 * Returns the pings answered, or a negative error (an error frame's code,
 * EOF). */
static int answer_pings(int fd, int ms)
{
    int pings = 0;
    double end = now_s() + ms / 1000.0;
    for (int i = 0; i < 10000 && now_s() < end; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)((end - now_s()) * 1000) + 1;
        if (poll(&p, 1, left) <= 0)
            continue;
        rh_frame f;
        int rc = rh_read_frame(fd, &f);
        if (rc < 0)
            return rc;
        if (f.hdr.type == FY_FT_ERROR) {
            fy_error e = {0};
            fy_error_decode(f.payload, f.hdr.len, &e);
            fprintf(stderr, "answer_pings: relay error %u: %s\n", e.code, e.text);
            rh_frame_free(&f);
            return -(int)e.code;
        }
        if (f.hdr.type == FY_FT_PING) {
            pings++;
            rc = rh_send_frame(fd, FY_FT_PONG, f.hdr.channel, f.hdr.seq, f.payload, f.hdr.len);
        }
        rh_frame_free(&f);
        if (rc < 0)
            return rc;
    }
    return pings;
}

/* Wait (bounded) until the daemon's log has n lines with s. */
static int wait_log(tstate *t, const char *s, int n, int max_ms)
{
    int got = 0;
    for (int i = 0; i <= max_ms / 20 && (got = rh_log_count(&t->d, s)) < n; i++)
        usleep(20000);
    return got;
}

/* A sender that goes silent after hello is pinged at half the timeout and
 * cut with FY_ETIMEOUT at the timeout (one log line); its channel then
 * takes a new sender. */
static void test_idle_sender(void **st)
{
    tstate *t = *st;
    const char *args[] = {"--idle-timeout", "1", NULL};
    fy_welcome w;

    start(t, args);
    int fd = sender(t, "quiet", "", &w);
    assert_true(fd >= 0);
    double t0 = now_s();
    rh_frame f;
    assert_int_equal(rh_read_frame(fd, &f), 0); /* the ping, unanswered */
    assert_int_equal(f.hdr.type, FY_FT_PING);
    rh_frame_free(&f);
    assert_int_equal(read_error_close(fd, "idle"), FY_ETIMEOUT);
    double took = now_s() - t0;
    assert_true(took >= 0.9 && took < 5.0);
    close(fd);
    assert_int_equal(wait_log(t, "idle timeout", 1, 2000), 1);

    int c = sender_retry(t, "quiet", &w);
    assert_true(c >= 0);
    uint8_t x[3000];
    rh_fill(x, sizeof x, 60);
    uint64_t seq = w.next_seq;
    send_acked(c, &w, &seq, "after", x, sizeof x);
    say_bye(c);
    t->ok = true;
}

/* A sender and a receiver that answer pings outlive the timeout several
 * times over while nothing flows, and the channel works afterwards. */
static void test_idle_pings_keep_alive(void **st)
{
    tstate *t = *st;
    const char *args[] = {"--idle-timeout", "2", NULL};
    fy_welcome w;
    rh_rx rx;

    start(t, args);
    receiver(t, &rx, "ka", FY_MODE_LIVE, 0);
    int fd = sender(t, "ka", "", &w);
    assert_true(fd >= 0);
    /* Both idle for 2.5 timeouts, answering pings, each within 100 ms (a
     * ping comes at 1..1.5 s of silence, the cut would at 2..2.5 s). */
    int ps = 0, pr = 0;
    for (int round = 0; round < 25; round++) {
        int a = answer_pings(fd, 100), b = answer_pings(rx.fd, 100);
        assert_true(a >= 0 && b >= 0);
        ps += a;
        pr += b;
    }
    assert_true(ps >= 2);
    assert_true(pr >= 2);
    uint8_t x[200000];
    rh_fill(x, sizeof x, 61);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "late", x, sizeof x);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "late", x, sizeof x);
    say_bye(fd);
    rh_rx_free(&rx);
    assert_int_equal(rh_log_count(&t->d, "idle timeout"), 0);
    t->ok = true;
}

typedef struct slow_job {
    rh_rx rx;
    int rc;
    double took;
} slow_job;

/* A receiver that reads one frame every 40 ms (about 1.6 MB/s). */
static void *slow_reader(void *arg)
{
    slow_job *j = arg;
    double t0 = now_s();
    for (int i = 0; i < 10000 && j->rx.nfiles < 1; i++) {
        j->rc = rh_rx_until(&j->rx, 1, j->rx.bytes + 1);
        if (j->rc < 0)
            break;
        usleep(40000);
    }
    j->took = now_s() - t0;
    return NULL;
}

/* With a 2 s timeout: a receiver that stops reading entirely is cut (data
 * pending, no progress); one that reads slowly, for longer than the
 * timeout, gets the whole file. */
static void test_idle_receivers(void **st)
{
    tstate *t = *st;
    size_t len = 6u << 20;
    uint8_t *data = random_data(len, 62);
    const char *args[] = {"--idle-timeout", "2", "--fsync", "never", NULL};
    fy_welcome w;
    rh_rx stuck;
    slow_job slow;
    pthread_t th;

    start(t, args);
    receiver(t, &stuck, "rx", FY_MODE_LIVE, 0);
    receiver(t, &slow.rx, "rx", FY_MODE_LIVE, 0);
    int small = 64 << 10;
    setsockopt(stuck.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(slow.rx.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    assert_int_equal(pthread_create(&th, NULL, slow_reader, &slow), 0);
    int fd = sender(t, "rx", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "big", data, len);
    say_bye(fd);
    pthread_join(th, NULL);
    assert_int_equal(slow.rc, 0);
    check_file(&slow.rx.files[0], "big", data, len);
    assert_true(slow.took > 2.5); /* longer than the timeout, and not cut */
    rh_rx_free(&slow.rx);         /* before it idles in turn */
    /* The stuck one: cut once it has read nothing for the timeout.  Its
     * socket is full, so the error frame may not fit: the data, then
     * (maybe) the error, then the end. */
    assert_int_equal(wait_log(t, "read nothing for", 1, 8000), 1);
    assert_int_equal(rh_log_count(&t->d, "idle timeout"), 1);
    int rc = read_error_close(stuck.fd, "read nothing");
    assert_true(rc == FY_ETIMEOUT || rc == -ENODATA || rc == -ECONNRESET);
    rh_rx_free(&stuck);
    free(data);
    t->ok = true;
}

/* A sender whose connection went quiet (here a raw socket that stops
 * sending; a SIGSTOPped client looks the same to the relay) is replaced by
 * a new connection with the same token: at once when the newcomer resumes
 * at the channel's next seq, after the grace otherwise.  Another token, or
 * a sender active within the grace, gets FY_EBUSY. */
static void test_takeover(void **st)
{
    tstate *t = *st;
    char path[400];
    fy_welcome w, w2;
    uint8_t x[50000];

    snprintf(path, sizeof path, "%s/tokens", t->d.root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "tokA both *\ntokB both *\n");
    fclose(f);
    const char *args[] = {"--auth", path, "--idle-timeout", "60", "--takeover-grace", "2", NULL};
    start(t, args);
    rh_fill(x, sizeof x, 63);

    int a = sender(t, "tk", "tokA", &w);
    assert_true(a >= 0);
    uint64_t seq = w.next_seq;
    send_acked(a, &w, &seq, "one", x, sizeof x);
    /* a goes quiet.  Same token, resuming at the next seq: at once. */
    double t0 = now_s();
    int b = rh_connect(&t->d);
    assert_true(b >= 0);
    assert_int_equal(rh_hello(b, FY_ROLE_SENDER, "tk", "tokA", 0, seq, &w2), 0);
    assert_true(now_s() - t0 < 1.5);
    assert_int_equal(w2.next_seq, seq);
    assert_int_equal(read_error_close(a, "replaced by a new connection of the same sender"),
                     FY_EBUSY);
    close(a);
    send_acked(b, &w2, &seq, "two", x, sizeof x);

    /* Another token: busy, however quiet b is. */
    assert_int_equal(sender(t, "tk", "tokB", &w), -FY_EBUSY);
    /* Same token, no resume point, b active within the grace: busy. */
    assert_int_equal(sender(t, "tk", "tokA", &w), -FY_EBUSY);
    /* ... and once b has been quiet for the grace, replaced. */
    usleep(2300000);
    int c = sender(t, "tk", "tokA", &w);
    assert_true(c >= 0);
    assert_int_equal(w.next_seq, seq);
    assert_int_equal(read_error_close(b, "replaced"), FY_EBUSY);
    close(b);
    send_acked(c, &w, &seq, "three", x, sizeof x);
    say_bye(c);

    rh_rx rx;
    memset(&rx, 0, sizeof rx);
    rx.fd = rh_connect(&t->d);
    assert_true(rx.fd >= 0);
    assert_int_equal(rh_hello(rx.fd, FY_ROLE_RECEIVER, "tk", "tokB", FY_MODE_START, 0, &w), 0);
    rx.next_seq = w.next_seq;
    assert_int_equal(rh_rx_until(&rx, 3, 0), 0);
    check_file(&rx.files[0], "one", x, sizeof x);
    check_file(&rx.files[1], "two", x, sizeof x);
    check_file(&rx.files[2], "three", x, sizeof x);
    rh_rx_free(&rx);
    assert_int_equal(rh_log_count(&t->d, "sender replaced"), 2);
    t->ok = true;
}

/* GET /metrics while a sender and a receiver are connected. */
static void test_metrics(void **st)
{
    tstate *t = *st;
    const char *args[] = {"--metrics", "127.0.0.1:0", NULL};
    uint8_t x[200000];
    fy_welcome w;
    rh_rx rx;
    char *text = malloc(1 << 20);
    size_t len = 0;

    assert_non_null(text);
    rh_fill(x, sizeof x, 40);
    start(t, args);
    assert_true(t->d.metrics_port > 0);
    receiver(t, &rx, "m", FY_MODE_LIVE, 0);
    int fd = sender(t, "m", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "x", x, sizeof x);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);

    rh_daemon md = t->d;
    md.port = t->d.metrics_port;
    int h = rh_connect(&md);
    assert_true(h >= 0);
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    assert_int_equal(fy_sock_write_all(h, req, strlen(req)), 0);
    for (int i = 0; i < 1000 && len < (1 << 20) - 1; i++) {
        ssize_t n = read(h, text + len, (1 << 20) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    text[len] = 0;
    close(h);
    assert_non_null(strstr(text, "200"));
    assert_non_null(strstr(text, "\nferry_up 1"));
    char *b = strstr(text, "\nferry_received_bytes_total ");
    assert_non_null(b);
    assert_true(strtoull(b + strlen("\nferry_received_bytes_total "), NULL, 10) >= sizeof x);
    const char *live = "\nferry_sent_bytes_total{source=\"live\"} ";
    char *o = strstr(text, live);
    assert_non_null(o);
    assert_true(strtoull(o + strlen(live), NULL, 10) >= sizeof x);
    say_bye(fd);
    rh_rx_free(&rx);
    free(text);
    t->ok = true;
}

/* A config file sets values, flags override it; the documented default
 * config (every line commented) loads as is; a bad key is exit 64 (usage). */
static void test_config(void **st)
{
    tstate *t = *st;
    char path[400];

    snprintf(path, sizeof path, "%s/ferryd.conf", t->d.root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# test\nwindow = 2M   # per receiver\nfsync=never\nmemory = 64M\n"
               "listen = 127.0.0.1:1\n");
    fclose(f);
    const char *args[] = {"--config", path, "--window", "3M", NULL};
    start(t, args); /* --listen 127.0.0.1:0 from the harness overrides the file */
    assert_int_equal(rh_log_count(&t->d, "window=3145728"), 1);
    assert_int_equal(rh_log_count(&t->d, "fsync=never"), 1);
    assert_int_equal(rh_log_count(&t->d, "memory=67108864"), 1);
    int status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    const char *doc[] = {"--config", FERRY_SRC_DIR "/docs/ferryd.conf", NULL};
    start(t, doc);
    assert_int_equal(rh_log_count(&t->d, "window=8388608"), 1);
    status = rh_stop(&t->d, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "windw = 2M\n");
    fclose(f);
    const char *bad[] = {FERRYD_PATH, "--config", path, NULL};
    assert_int_equal(tc_run(bad, 30000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 64);
    t->ok = true;
}

/* ---- channel lifetime and limits ------------------------------------------------ */

/* Wait (bounded) until ferryd holds at most want descriptors; returns the
 * last count. */
static int wait_fds_at_most(pid_t pid, int want, int ms)
{
    int n = count_fds(pid);
    for (int i = 0; i < ms / 20 && n > want; i++) {
        usleep(20000);
        n = count_fds(pid);
    }
    return n;
}

static bool chan_dir_exists(const tstate *t, const char *name)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/channels/%s", t->d.data, name);
    return stat(path, &sb) == 0;
}

/* Read one frame and expect an error frame; returns its code, text in text. */
static int read_error(int fd, char *text, size_t cap)
{
    rh_frame f;
    fy_error e;
    int rc = rh_read_frame(fd, &f);
    if (rc < 0)
        return rc;
    rc = -FY_EPROTO;
    if (f.hdr.type == FY_FT_ERROR && fy_error_decode(f.payload, f.hdr.len, &e) == 0) {
        rc = (int)e.code;
        snprintf(text, cap, "%.200s", e.text);
    }
    rh_frame_free(&f);
    return rc;
}

/* An idle channel is closed (its descriptors go back), and reopened on
 * demand with everything it held: START and RESUME see every frame once,
 * a new sender continues at the next seq. */
static void test_idle_close(void **st)
{
    tstate *t = *st;
    size_t len = 200000; /* 6 frames a file */
    uint8_t *a = random_data(len, 31), *b = random_data(len, 32), *c = random_data(len, 33);
    fy_welcome w;
    rh_rx rx;

    start(t, (const char *const[]){"--channel-idle", "300ms", NULL});
    int base = count_fds(t->d.pid);
    assert_true(base > 0);
    int fd = sender(t, "idle", "", &w);
    assert_true(fd >= 0);
    uint64_t seq = w.next_seq;
    send_acked(fd, &w, &seq, "a", a, len);
    send_acked(fd, &w, &seq, "b", b, len);
    assert_true(count_fds(t->d.pid) >= base + 4); /* socket + the channel's files */
    say_bye(fd);
    int now = wait_fds_at_most(t->d.pid, base, 5000);
    fprintf(stderr, "fds: %d before the channel, %d after it closed\n", base, now);
    assert_true(now <= base);
    assert_int_equal(rh_log_count(&t->d, "channel idle, closing"), 1);
    assert_int_equal(rh_log_count(&t->d, "reason=idle"), 1);

    /* Reopened by a receiver: everything from the start, then live. */
    receiver(t, &rx, "idle", FY_MODE_START, 0);
    assert_int_equal(rh_rx_until(&rx, 2, 0), 0);
    check_file(&rx.files[0], "a", a, len);
    check_file(&rx.files[1], "b", b, len);
    /* A sender after the reopen continues the sequence without gap. */
    fd = sender_retry(t, "idle", &w);
    assert_true(fd >= 0);
    assert_int_equal(w.next_seq, seq);
    send_acked(fd, &w, &seq, "c", c, len);
    assert_int_equal(rh_rx_until(&rx, 3, 0), 0);
    check_file(&rx.files[2], "c", c, len);
    assert_int_equal(rx.err, 0);
    close(rx.fd);
    rh_rx_free(&rx);
    say_bye(fd);

    /* Closed again; a RESUME from the middle of b reopens it and gets c. */
    assert_true(wait_fds_at_most(t->d.pid, base, 5000) <= base);
    receiver(t, &rx, "idle", FY_MODE_RESUME, 9);
    assert_int_equal(rx.next_seq, 9);
    assert_int_equal(rh_rx_until(&rx, 1, 0), 0);
    check_file(&rx.files[0], "c", c, len);
    close(rx.fd);
    rh_rx_free(&rx);
    assert_true(rh_log_count(&t->d, "channel idle, closing") >= 2);
    free(a);
    free(b);
    free(c);
    t->ok = true;
}

/* Close and reopen as fast as the relay can (10 ms idle) while senders and
 * receivers come and go: every receiver gets every file, in order, once. */
static void test_idle_close_race(void **st)
{
    tstate *t = *st;
    enum { N = 12 };
    size_t len = 70000;
    uint8_t *d[N];
    fy_welcome w;
    rh_rx rx;

    start(t, (const char *const[]){"--channel-idle", "10ms", NULL});
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        d[i] = random_data(len, 40 + (uint64_t)i);
        int fd = sender_retry(t, "race", &w);
        assert_true(fd >= 0);
        uint64_t seq = w.next_seq;
        assert_int_equal(seq, 1 + (uint64_t)i * 4); /* 4 frames a file */
        send_acked(fd, &w, &seq, name, d[i], len);
        say_bye(fd);
        usleep((useconds_t)(i % 4) * 5000); /* before, around and after the close */
        receiver(t, &rx, "race", FY_MODE_START, 0);
        assert_int_equal(rh_rx_until(&rx, (size_t)i + 1, 0), 0);
        assert_int_equal(rx.err, 0);
        for (int j = 0; j <= i; j++) {
            snprintf(name, sizeof name, "f%d", j);
            check_file(&rx.files[j], name, d[j], len);
        }
        close(rx.fd);
        rh_rx_free(&rx);
    }
    fprintf(stderr, "idle closes: %d\n", rh_log_count(&t->d, "channel idle, closing"));
    assert_true(rh_log_count(&t->d, "channel idle, closing") >= 1);
    for (int i = 0; i < N; i++)
        free(d[i]);
    t->ok = true;
}

/* --max-channels: one channel too many gets FY_ELIMIT naming the limit, and
 * no directory; once an idle channel has closed, there is room again. */
static void test_max_channels(void **st)
{
    tstate *t = *st;
    rh_rx ra, rb;
    char text[256] = "";

    start(t, (const char *const[]){"--max-channels", "2", "--channel-idle", "200ms", NULL});
    receiver(t, &ra, "one", FY_MODE_LIVE, 0);
    receiver(t, &rb, "two", FY_MODE_LIVE, 0);
    int fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    fy_hello h = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_LIVE};
    uint8_t p[1024];
    size_t n;
    snprintf(h.channel, sizeof h.channel, "three");
    assert_int_equal(fy_hello_encode(&h, p, sizeof p, &n), 0);
    assert_int_equal(rh_send_frame(fd, FY_FT_HELLO, 0, 0, p, n), 0);
    assert_int_equal(read_error(fd, text, sizeof text), FY_ELIMIT);
    fprintf(stderr, "refused: %s\n", text);
    assert_non_null(strstr(text, "max-channels 2"));
    close(fd);
    assert_false(chan_dir_exists(t, "three"));
    assert_true(chan_dir_exists(t, "one"));
    assert_true(rh_log_count(&t->d, "limit=max-channels value=2") >= 1);
    /* A sender is refused the same way. */
    fy_welcome w;
    assert_int_equal(sender(t, "four", "", &w), -FY_ELIMIT);
    assert_false(chan_dir_exists(t, "four"));
    /* An existing channel is still served. */
    rh_rx rc2;
    receiver(t, &rc2, "one", FY_MODE_LIVE, 0);
    close(rc2.fd);
    rh_rx_free(&rc2);
    /* "one" goes idle and closes: "three" fits now (bounded retry). */
    close(ra.fd);
    rh_rx_free(&ra);
    int rc = -FY_ELIMIT;
    for (int i = 0; i < 100 && rc == -FY_ELIMIT; i++) {
        int f2 = rh_connect(&t->d);
        assert_true(f2 >= 0);
        rc = rh_hello(f2, FY_ROLE_RECEIVER, "three", "", FY_MODE_LIVE, 0, &w);
        close(f2);
        if (rc == -FY_ELIMIT)
            usleep(50000);
    }
    assert_int_equal(rc, 0);
    assert_true(chan_dir_exists(t, "three"));
    close(rb.fd);
    rh_rx_free(&rb);
    t->ok = true;
}

/* A connection from 127.0.0.2 (loopback has the whole /8). */
static int connect_from(const tstate *t, const char *src)
{
    struct sockaddr_in sa = {.sin_family = AF_INET}, da = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = RH_IO_TIMEOUT_S};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    inet_pton(AF_INET, src, &sa.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &da.sin_addr);
    da.sin_port = htons(t->d.port);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        connect(fd, (struct sockaddr *)&da, sizeof da) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* --max-connections counts every client connection, receivers included;
 * the one past it gets an FY_ELIMIT error frame naming the limit. */
static void test_max_connections(void **st)
{
    tstate *t = *st;
    rh_rx rx;
    char text[256] = "";

    start(t, (const char *const[]){"--max-connections", "3", NULL});
    receiver(t, &rx, "c", FY_MODE_LIVE, 0); /* a forwarder's connection */
    int a = rh_connect(&t->d), b = rh_connect(&t->d);
    assert_true(a >= 0 && b >= 0);
    fy_welcome w;
    /* A 4th connection, whatever it says: refused (counted at accept). */
    assert_int_equal(sender(t, "c", "", &w), -FY_ELIMIT);
    int fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    assert_int_equal(read_error(fd, text, sizeof text), FY_ELIMIT);
    fprintf(stderr, "refused: %s\n", text);
    assert_non_null(strstr(text, "max-connections 3"));
    close(fd);
    assert_true(rh_log_count(&t->d, "limit=max-connections") >= 1);
    /* The receiver leaves: there is room for one (bounded retry). */
    close(rx.fd);
    rh_rx_free(&rx);
    int rc = -FY_ELIMIT;
    for (int i = 0; i < 100 && rc == -FY_ELIMIT; i++) {
        rc = sender(t, "c", "", &w);
        if (rc == -FY_ELIMIT)
            usleep(20000);
    }
    assert_true(rc >= 0);
    say_bye(rc);
    close(a);
    close(b);
    t->ok = true;
}

static void test_max_connections_per_ip(void **st)
{
    tstate *t = *st;
    char text[256] = "";

    start(t, (const char *const[]){"--max-connections-per-ip", "2", NULL});
    int a = rh_connect(&t->d), b = rh_connect(&t->d);
    assert_true(a >= 0 && b >= 0);
    int fd = rh_connect(&t->d);
    assert_true(fd >= 0);
    assert_int_equal(read_error(fd, text, sizeof text), FY_ELIMIT);
    fprintf(stderr, "refused: %s\n", text);
    assert_non_null(strstr(text, "max-connections-per-ip 2"));
    close(fd);
    /* Another address is not affected. */
    int o = connect_from(t, "127.0.0.2");
    assert_true(o >= 0);
    fy_welcome w;
    assert_int_equal(rh_hello(o, FY_ROLE_RECEIVER, "x", "", FY_MODE_LIVE, 0, &w), 0);
    close(o);
    assert_true(rh_log_count(&t->d, "limit=max-connections-per-ip") >= 1);
    close(a);
    close(b);
    t->ok = true;
}

/* Many receiver-created channels with a short --channel-idle: descriptors
 * stay bounded and go back to where they started. */
static void test_many_channels(void **st)
{
    tstate *t = *st;
    enum { N = 2500 };
    int peak = 0, refused = 0;

    start(t, (const char *const[]){"--channel-idle", "100ms", "--log-level", "warn", NULL});
    int base = count_fds(t->d.pid);
    double t0 = rh_now_s();
    for (int i = 0; i < N && rh_now_s() - t0 < 120; i++) {
        char name[32];
        fy_welcome w;
        snprintf(name, sizeof name, "many%05d", i);
        int fd = rh_connect(&t->d);
        assert_true(fd >= 0);
        int rc = rh_hello(fd, FY_ROLE_RECEIVER, name, "", FY_MODE_LIVE, 0, &w);
        assert_true(rc == 0 || rc == -FY_ELIMIT);
        refused += rc == -FY_ELIMIT;
        close(fd);
        if (i % 100 == 0) {
            int n = count_fds(t->d.pid);
            peak = n > peak ? n : peak;
        }
    }
    int end = wait_fds_at_most(t->d.pid, base, 10000);
    fprintf(stderr, "fds: base %d, peak %d, end %d; refused %d of %d\n", base, peak, end,
            refused, N);
    /* Unbounded, this was 4 per channel: ~10 000. */
    assert_true(peak < base + 4 * 1024 + 64);
    assert_true(end <= base);
    t->ok = true;
}

static void test_bad_flags(void **st)
{
    tstate *t = *st;
    const char *cases[][4] = {
        {"--bogus", "1", NULL},
        {"--memory", "lots", NULL},
        {"--fsync", "sometimes", NULL},
        {"--window", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[6] = {FERRYD_PATH};
        for (int k = 0; k < 3 && cases[i][k]; k++)
            argv[k + 1] = cases[i][k];
        int status;
        assert_int_equal(tc_run(argv, 30000, &status), 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 64); /* FY_EXIT_USAGE, as in every program */
    }
    t->ok = true;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fanout_three, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_dir_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_continue_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_beyond, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scrub_finds_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_receiver_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_receiver_fds_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_midfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_pressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_pings_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_receivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_close_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections_per_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_channels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
