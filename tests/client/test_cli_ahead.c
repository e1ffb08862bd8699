/*
 * test_cli_ahead.c - receivers ahead of the relay's log (docs/reliability.md,
 * "A receiver ahead of the relay's log"), with the real ferryd and ferry.
 *
 * A simulated power loss: a `ferry recv --resume` gets files A and B whole
 * and part of C live, ferryd is SIGKILLed, and the channel's segment is cut
 * back to a frame inside C or B (what a power cut does to the unsynced
 * tail; recovery drops the index records past it).  ferryd restarts on the
 * same data and port.  (1) Cut inside C: the same `ferry send` (stopped
 * meanwhile) resumes after the receiver reconnected ahead: every file
 * arrives byte-identical, once, no `.part`, and the frames the sender
 * sends again are the ones the cut took (same seqs, same bytes).  (2) Cut
 * inside B, the last-but-one file: a different sender sends another file,
 * and the whole of it is in the log before the receiver (stopped
 * meanwhile) reconnects, so its resume seq is inside the new file: only
 * the log epoch tells it is ahead; it must not continue C with the new
 * file's bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "ferry/proto.h"

#define T_MS 120000
#define POLL_MS 2
#define CH "ahead"

/* The files: A and B small, then NF - 2 big ones the sender is stopped in
 * one of (which one depends on the machine's speed). */
#define NF 7
static uint64_t size_c(void) { return FY_CT_SANITIZED ? 8u << 20 : 16u << 20; }
static uint64_t size_of(int i) { return i == 0 ? 1u << 20 : i == 1 ? 2u << 20 : size_c(); }

#define TAIL_KEEP (8u << 20) /* the lost tail kept to compare with what is sent again */

typedef struct scene {
    fy_ct *t;
    uint8_t *tail;      /* the first TAIL_KEEP bytes the power cut took */
    size_t ntail;
    uint64_t cut_off;   /* where it took them from */
    char src[NF][FY_CT_PATH];
    uint8_t sha[NF][32];
    int k;              /* the file in progress at the receiver when the power went */
    char out[FY_CT_PATH], seg[FY_CT_PATH * 2];
    char journal[FY_CT_PATH]; /* set: ferryd runs with the power-loss shim */
    pid_t rx, tx;
} scene;

static const char *const names[NF] = {"A.bin", "B.bin", "C1.bin", "C2.bin", "C3.bin", "C4.bin",
                                      "C5.bin"};

static const char *out_path(scene *s, const char *name, char *buf)
{
    snprintf(buf, FY_CT_PATH * 2, "%s/%s", s->out, name);
    return buf;
}

/* The channel's only segment (256 MiB default: all of it in one). */
static void find_segment(scene *s)
{
    char dir[FY_CT_PATH + 32];
    snprintf(dir, sizeof dir, "%s/channels/" CH, s->t->data);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".log")) {
            snprintf(s->seg, sizeof s->seg, "%s/%s", dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    assert_int_equal(n, 1);
}

/* Wait (bounded) until f(arg) holds. */
static bool wait_until(bool (*f)(scene *), scene *s, int ms)
{
    for (int i = 0; i < ms / POLL_MS; i++) {
        if (f(s))
            return true;
        fy_ct_sleep_ms(POLL_MS);
    }
    return f(s);
}

/* The file the receiver has a .part of, or -1; *bytes its size. */
static int partial(scene *s, long long *bytes)
{
    char p[FY_CT_PATH * 2], n[FY_NAME_MAX + 8];
    for (int i = 0; i < NF; i++) {
        snprintf(n, sizeof n, ".%s.part", names[i]);
        long long b = fy_ct_size(out_path(s, n, p));
        if (b >= 0) {
            *bytes = b;
            return i;
        }
    }
    *bytes = 0;
    return -1;
}

/* The receiver holds everything the log has: what it wrote has stopped
 * growing for 400 ms. */
static void wait_caught_up(scene *s)
{
    char p[FY_CT_PATH * 2];
    long long last = -1;
    int still = 0;
    for (int i = 0; i < 3000 && still < 20; i++) {
        long long n = 0, b;
        for (int j = 0; j < NF; j++)
            n += (b = fy_ct_size(out_path(s, names[j], p))) > 0 ? b : 0;
        partial(s, &b);
        n += b;
        still = n == last ? still + 1 : 0;
        last = n;
        fy_ct_sleep_ms(20);
    }
    assert_true(still >= 20);
}

/* Around a start of ferryd: with s->journal set, preload the power-loss
 * shim (tests/common/powerloss_shim.c) into it and only it. */
static void shim(scene *s, bool on)
{
#ifdef FY_POWERLOSS_SHIM
    if (!s->journal[0])
        return;
    if (on) {
        setenv("LD_PRELOAD", FY_POWERLOSS_SHIM, 1);
        setenv("FERRY_POWERLOSS_JOURNAL", s->journal, 1);
        /* The sanitizers' runtimes want to be first; the shim only wraps
         * five libc calls and is built without them. */
        setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
    } else {
        unsetenv("LD_PRELOAD");
        unsetenv("FERRY_POWERLOSS_JOURNAL");
        unsetenv("ASAN_OPTIONS");
    }
#else
    (void)s;
    (void)on;
#endif
}

/* Start ferryd, the receiver and the sender of the NF files, and let the
 * sender run only in short bursts (SIGCONT, 3 ms, SIGSTOP) until the
 * receiver, caught up with the log, holds A and B whole and part of a
 * later file (s->k): however loaded the machine, the sender is stopped
 * inside some file after B. */
static void play_until_partial(scene *s)
{
    fy_ct *t = s->t;
    for (int i = 0; i < NF; i++)
        fy_ct_make_file(fy_ct_path(t, names[i], s->src[i]), size_of(i), (uint64_t)(40 + i),
                        s->sha[i]);
    shim(s, true);
    fy_ct_daemon_start(t, NULL);
    shim(s, false);
    fy_ct_path(t, "out", s->out);
    s->rx = fy_ct_recv(t, "recv", CH, s->out, (const char *[]){"--resume", "--count", "7", NULL});
    fy_ct_sleep_ms(300); /* subscribed before the first frame: it gets A live */
    const char *argv[NF + 1] = {0};
    for (int i = 0; i < NF; i++)
        argv[i] = s->src[i];
    s->tx = fy_ct_send(t, "send", CH, argv);
    fy_ct_kill(s->tx, SIGSTOP);
    long long got = 0;
    s->k = -1;
    for (int i = 0; i < 4000; i++) {
        if ((s->k = partial(s, &got)) >= 2 && got >= (512 << 10)) {
            wait_caught_up(s);
            if ((s->k = partial(s, &got)) >= 2 && got >= (512 << 10))
                break;
        }
        fy_ct_kill(s->tx, SIGCONT);
        fy_ct_sleep_ms(3);
        fy_ct_kill(s->tx, SIGSTOP);
        fy_ct_sleep_ms(15);
    }
    assert_true(s->k >= 2 && s->k < NF);
    char p[FY_CT_PATH * 2];
    for (int i = 0; i < s->k; i++)
        fy_ct_assert_same(out_path(s, names[i], p), s->sha[i]);
}

/* The power cut: cut the segment at the frame half-way through the data
 * the log holds of its nth file (1-based; B is 2, C is 3) and keep the
 * start of what it took (s->tail).  Returns that frame's seq (the log's
 * end after recovery); *begin gets the file's file-begin seq. */
static uint64_t cut_inside(scene *s, int nth, uint64_t *begin)
{
    find_segment(s);
    int fd = open(s->seg, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    uint64_t off = 32, f_begin = 0, f_last = 0, cut_off = 0;
    int begins = 0;
    /* Walk the frame headers (a few thousand frames). */
    for (int i = 0; i < 100000; i++) {
        uint8_t h[FY_FRAME_HDR_SIZE];
        if (pread(fd, h, sizeof h, (off_t)off) != (ssize_t)sizeof h)
            break;
        fy_frame_hdr fh;
        assert_int_equal(fy_frame_hdr_decode(h, FY_PAYLOAD_MAX_LIMIT, &fh), 0);
        if (fh.type == FY_FT_FILE_BEGIN && ++begins == nth)
            f_begin = fh.seq;
        if (begins == nth)
            f_last = fh.seq;
        off += FY_FRAME_HDR_SIZE + fh.len;
    }
    assert_true(f_begin > 0 && f_last > f_begin + 4);
    uint64_t cut_seq = f_begin + (f_last - f_begin) / 2;
    off = 32;
    for (uint64_t seq = 0; seq < cut_seq;) {
        uint8_t h[FY_FRAME_HDR_SIZE];
        assert_int_equal(pread(fd, h, sizeof h, (off_t)off), (ssize_t)sizeof h);
        fy_frame_hdr fh;
        assert_int_equal(fy_frame_hdr_decode(h, FY_PAYLOAD_MAX_LIMIT, &fh), 0);
        seq = fh.seq;
        if (seq == cut_seq)
            cut_off = off;
        else
            off += FY_FRAME_HDR_SIZE + fh.len;
    }
    assert_true(cut_off > 32);
    s->tail = malloc(TAIL_KEEP);
    assert_non_null(s->tail);
    ssize_t got = pread(fd, s->tail, TAIL_KEEP, (off_t)cut_off);
    assert_true(got > 0);
    s->ntail = (size_t)got;
    s->cut_off = cut_off;
    assert_int_equal(ftruncate(fd, (off_t)cut_off), 0);
    close(fd);
    print_message("ahead: log cut at seq %llu (file %d: %llu..%llu in the log)\n",
                  (unsigned long long)cut_seq, nth, (unsigned long long)f_begin,
                  (unsigned long long)f_last);
    *begin = f_begin;
    return cut_seq;
}

/* The frames sent again after the cut are the ones the cut took: the same
 * seq, type, length, payload CRC and payload at the same offsets; only the
 * channel field (the connection's id) and so the header CRC may differ. */
static void assert_same_frames_again(scene *s)
{
    int fd = open(s->seg, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    uint8_t *now = malloc(s->ntail);
    assert_non_null(now);
    assert_int_equal(pread(fd, now, s->ntail, (off_t)s->cut_off), (ssize_t)s->ntail);
    close(fd);
    size_t off = 0;
    int frames = 0;
    while (off + FY_FRAME_HDR_SIZE <= s->ntail) {
        fy_frame_hdr fh;
        assert_int_equal(fy_frame_hdr_decode(s->tail + off, FY_PAYLOAD_MAX_LIMIT, &fh), 0);
        size_t len = FY_FRAME_HDR_SIZE + fh.len;
        if (off + len > s->ntail)
            break; /* the kept tail ends inside this frame */
        assert_memory_equal(s->tail + off, now + off, 8);
        assert_memory_equal(s->tail + off + 12, now + off + 12, 16);
        assert_memory_equal(s->tail + off + FY_FRAME_HDR_SIZE, now + off + FY_FRAME_HDR_SIZE,
                            fh.len);
        off += len;
        frames++;
    }
    assert_true(frames > 8);
    free(now);
    free(s->tail);
    s->tail = NULL;
}

/* The output directory holds exactly these files (and the state file). */
static void assert_only(scene *s, const char *const *want, int n)
{
    DIR *d = opendir(s->out);
    assert_non_null(d);
    int seen = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, ".ferry-state"))
            continue;
        bool ok = false;
        for (int i = 0; i < n; i++)
            ok = ok || !strcmp(e->d_name, want[i]);
        if (!ok)
            print_error("unexpected file in the output: %s\n", e->d_name);
        assert_true(ok);
        seen++;
    }
    closedir(d);
    assert_int_equal(seen, n);
}

/* From ferryd's "receiver ahead of the log" line: was the receiver's
 * resume seq below the log's end (so that only the epoch showed it)? */
static bool ahead_below_end(const char *log)
{
    static char buf[1 << 20];
    fy_ct_slurp(log, buf, sizeof buf);
    const char *l = strstr(buf, "msg=\"receiver ahead of the log\"");
    const char *r = l ? strstr(l, "resume_from=") : NULL;
    const char *e = l ? strstr(l, "end_seq=") : NULL;
    assert_non_null(r);
    assert_non_null(e);
    return strtoull(r + 12, NULL, 10) < strtoull(e + 8, NULL, 10);
}

static bool recv_reconciled(scene *s)
{
    char p[FY_CT_PATH * 2];
    snprintf(p, sizeof p, "%s/recv.err", s->t->dir);
    return fy_ct_contains(p, "ahead of the relay's log");
}

/* (1) Power loss inside the file in progress (K); the receiver reconnects
 * first, then the same sender resumes: it continues K where the log ends
 * (same seqs, same bytes).  The relay starts the receiver at K's
 * file-begin, which its log still holds: the receiver drops its part of K
 * and gets K whole, and the files after it. */
static void test_power_loss_same_sender(void **state)
{
    scene s = {.t = *state};
    char p[FY_CT_PATH * 2];
    uint64_t c_begin;
    play_until_partial(&s);
    fy_ct_daemon_kill9(s.t);
    cut_inside(&s, s.k + 1, &c_begin);
    fy_ct_daemon_restart(s.t, NULL);
    assert_true(wait_until(recv_reconciled, &s, 60000));
    fy_ct_kill(s.tx, SIGCONT);
    fy_ct_expect_exit(s.t, s.tx, "send", T_MS, 0);
    fy_ct_expect_exit(s.t, s.rx, "recv", T_MS, 0);
    for (int i = 0; i < NF; i++)
        fy_ct_assert_same(out_path(&s, names[i], p), s.sha[i]);
    assert_only(&s, names, NF);
    snprintf(p, sizeof p, "%s/send.err", s.t->dir);
    assert_true(fy_ct_contains(p, "reconnected: continuing the file"));
    char want[64];
    snprintf(want, sizeof want, "from_seq=%llu", (unsigned long long)c_begin);
    snprintf(p, sizeof p, "%s/recv.err", s.t->dir);
    assert_true(fy_ct_contains(p, want));
    snprintf(p, sizeof p, "%s/ferryd-1.log", s.t->dir);
    assert_true(fy_ct_contains(p, "receiver ahead of the log"));
    assert_true(fy_ct_contains(p, "start at its partial file's begin"));
    fy_ct_daemon_stop(s.t);
    assert_same_frames_again(&s);
}

/* (2) Power loss inside the last-but-one file (K-1), then a different
 * sender sends X, larger than what the receiver holds past the cut, and
 * small files Y to make up the receiver's count, before the receiver
 * reconnects: its resume seq is inside X, below the log's end.  The log
 * epoch shows it is ahead; it gets X whole from its file-begin and never a
 * K made of K and X; it keeps K-1 whole (the log lost its end). */
static void test_power_loss_other_sender(void **state)
{
    scene s = {.t = *state};
    char p[FY_CT_PATH * 2], x[FY_CT_PATH], want[64], ys[NF][FY_CT_PATH], yn[NF][24];
    uint8_t shax[32], shay[NF][32];
    uint64_t b_begin;
    play_until_partial(&s);
    fy_ct_kill(s.rx, SIGSTOP);
    fy_ct_daemon_kill9(s.t);
    fy_ct_kill(s.tx, SIGKILL); /* this sender is gone for good */
    fy_ct_wait(s.t, s.tx, T_MS);
    uint64_t cut = cut_inside(&s, s.k, &b_begin);
    fy_ct_daemon_restart(s.t, NULL);
    /* X has more frames than K-1's lost half and K: the log then ends past
     * the receiver's resume seq */
    fy_ct_make_file(fy_ct_path(s.t, "X.bin", x), 2 * size_c() + (4u << 20), 77, shax);
    const char *argv[NF + 2] = {x};
    const char *want_names[NF + 1];
    int ny = NF - s.k - 1, nw = 0;
    for (int i = 0; i < s.k; i++)
        want_names[nw++] = names[i];
    want_names[nw++] = "X.bin";
    for (int i = 0; i < ny; i++) {
        snprintf(yn[i], sizeof yn[i], "Y%d.bin", i);
        fy_ct_make_file(fy_ct_path(s.t, yn[i], ys[i]), 100000, 80 + (uint64_t)i, shay[i]);
        argv[1 + i] = ys[i];
        want_names[nw++] = yn[i];
    }
    pid_t tx2 = fy_ct_send(s.t, "send2", CH, argv);
    fy_ct_expect_exit(s.t, tx2, "send2", T_MS, 0);
    fy_ct_kill(s.rx, SIGCONT);
    fy_ct_expect_exit(s.t, s.rx, "recv", T_MS, 0);
    for (int i = 0; i < s.k; i++)
        fy_ct_assert_same(out_path(&s, names[i], p), s.sha[i]);
    fy_ct_assert_same(out_path(&s, "X.bin", p), shax);
    for (int i = 0; i < ny; i++)
        fy_ct_assert_same(out_path(&s, yn[i], p), shay[i]);
    assert_only(&s, want_names, nw);
    snprintf(p, sizeof p, "%s/recv.err", s.t->dir);
    assert_true(fy_ct_contains(p, "ahead of the relay's log"));
    assert_false(fy_ct_contains(p, "mismatch"));
    snprintf(want, sizeof want, "from_seq=%llu", (unsigned long long)cut);
    assert_true(fy_ct_contains(p, want));
    snprintf(p, sizeof p, "%s/ferryd-1.log", s.t->dir);
    assert_true(ahead_below_end(p));
    fy_ct_daemon_stop(s.t);
    free(s.tail);
}

/* (3) A new `ferry recv --resume` process whose state file is past the
 * log's end (its relay lost what it had): no epoch to name, the log's end
 * alone shows it is ahead; it is started there, its state moves back, and
 * the next file comes whole.  A `--from-seq` past the end, asked for
 * explicitly, is still refused with FY_ENOSEQ (exit 3). */
static void test_state_past_end(void **state)
{
    fy_ct *t = *state;
    char a[FY_CT_PATH], b[FY_CT_PATH], out[FY_CT_PATH], p[FY_CT_PATH * 2];
    uint8_t sha[32];
    fy_ct_make_file(fy_ct_path(t, "one.bin", a), 100000, 5, NULL);
    fy_ct_make_file(fy_ct_path(t, "two.bin", b), 300000, 6, sha);
    fy_ct_daemon_start(t, NULL);
    fy_ct_expect_exit(t, fy_ct_send(t, "send1", CH, (const char *[]){a, NULL}), "send1", T_MS, 0);
    pid_t rx = fy_ct_recv(t, "seq", CH, fy_ct_path(t, "o1", out),
                          (const char *[]){"--from-seq", "1000", "--no-retry", NULL});
    fy_ct_expect_exit(t, rx, "seq", T_MS, 3);
    snprintf(p, sizeof p, "%s/seq.err", t->dir);
    assert_true(fy_ct_contains(p, "FY_ENOSEQ"));

    fy_ct_mkdir(fy_ct_path(t, "o2", out));
    snprintf(p, sizeof p, "%s/.ferry-state", out);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "channel=" CH "\nnext_seq=1000\n");
    fclose(f);
    rx = fy_ct_recv(t, "recv", CH, out, (const char *[]){"--resume", "--count", "1", NULL});
    snprintf(p, sizeof p, "%s/recv.err", t->dir);
    for (int i = 0; i < 1000 && !fy_ct_contains(p, "ahead of the relay's log"); i++)
        fy_ct_sleep_ms(10);
    assert_true(fy_ct_contains(p, "from_seq=5")); /* one.bin is seqs 1..4 */
    fy_ct_expect_exit(t, fy_ct_send(t, "send2", CH, (const char *[]){b, NULL}), "send2", T_MS, 0);
    fy_ct_expect_exit(t, rx, "recv", T_MS, 0);
    snprintf(p, sizeof p, "%s/two.bin", out);
    fy_ct_assert_same(p, sha);
    char st[256];
    snprintf(p, sizeof p, "%s/.ferry-state", out);
    assert_non_null(strstr(fy_ct_slurp(p, st, sizeof st), "next_seq=12\n")); /* after two.bin: 5..11 */
    fy_ct_daemon_stop(t);
}

/* The files the sender reported acknowledged (its stdout's file= lines,
 * flushed one by one; they come in order). */
static int acked(scene *s)
{
    static char buf[1 << 16];
    char p[FY_CT_PATH * 2];
    int n = 0;
    snprintf(p, sizeof p, "%s/send.out", s->t->dir);
    fy_ct_slurp(p, buf, sizeof buf);
    for (const char *q = buf; (q = strstr(q, "file=")); q += 5)
        n++;
    return n;
}

/* (4) A power cut as it happens, not at a chosen frame: ferryd runs with
 * the shim that journals its syncs, is SIGKILLed, and every file of its
 * data directory is cut back to its size at its last fdatasync (files
 * never synced to nothing).  Every file the sender had acknowledged is
 * still in the log; then the sender and the receiver, which got more
 * live than the log kept, go on: every file arrives identical, once. */
static void test_power_loss_unsynced_tail(void **state)
{
    scene s = {.t = *state};
    char p[FY_CT_PATH * 2], chk[FY_CT_PATH], count[16];
    tc_powerloss_stats st;
#ifndef FY_POWERLOSS_SHIM
    skip();
#endif
    snprintf(s.journal, sizeof s.journal, "%s/sync.journal", s.t->dir);
    play_until_partial(&s);
    int nacked = acked(&s);
    /* The power goes while the sender runs: what the relay appended in
     * the last milliseconds is in its page cache (and at the receiver),
     * not yet on the device. */
    fy_ct_kill(s.tx, SIGCONT);
    fy_ct_sleep_ms(4);
    fy_ct_daemon_kill9(s.t);
    fy_ct_kill(s.tx, SIGSTOP);
    assert_int_equal(tc_powerloss_apply(s.journal, s.t->data, &st), 0);
    print_message("power cut: %llu sync records, %llu files cut, %llu bytes lost, %d files "
                  "acknowledged, receiver inside file %d\n", (unsigned long long)st.records,
                  (unsigned long long)st.files_cut, (unsigned long long)st.bytes_lost, nacked,
                  s.k + 1);
    assert_true(st.records > 0);
    shim(&s, true);
    fy_ct_daemon_restart(s.t, NULL);
    shim(&s, false);
    if (nacked > 0) {
        /* What was acknowledged survived the cut. */
        snprintf(count, sizeof count, "%d", nacked);
        pid_t rx = fy_ct_recv(s.t, "check", CH, fy_ct_path(s.t, "check", chk),
                              (const char *[]){"--from-start", "--count", count, NULL});
        fy_ct_expect_exit(s.t, rx, "check", 60000, 0);
        for (int i = 0; i < nacked; i++) {
            snprintf(p, sizeof p, "%s/%s", chk, names[i]);
            fy_ct_assert_same(p, s.sha[i]);
        }
    }
    fy_ct_kill(s.tx, SIGCONT);
    fy_ct_expect_exit(s.t, s.tx, "send", T_MS, 0);
    fy_ct_expect_exit(s.t, s.rx, "recv", T_MS, 0);
    for (int i = 0; i < NF; i++)
        fy_ct_assert_same(out_path(&s, names[i], p), s.sha[i]);
    assert_only(&s, names, NF);
    fy_ct_daemon_stop(s.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_power_loss_same_sender, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_power_loss_other_sender, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_state_past_end, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_power_loss_unsynced_tail, fy_ct_setup,
                                        fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
