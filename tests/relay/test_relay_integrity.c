/*
 * test_relay_integrity.c - ferryd end to end (see test_relay.c): what the
 * relay refuses or reports -- a full disk, bad and continued digests, acks
 * beyond the stream, malformed and split frames, scrub finding damage.
 */
/* Every header these tests use comes with the fixture. */
#include "relay_fixture.h"

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
    say_bye_read(t, fd); /* else SIGTERM may come before the half is read */
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

/* Five senders that each break the protocol once (bad magic, a bad payload
 * CRC after a good file-begin, a wrong seq, an oversize header, data outside
 * a file): each gets its error and is closed. */
static void malformed_senders(tstate *t)
{
    fy_welcome bw;
    uint8_t p[1024], hb[FY_FRAME_HDR_SIZE];
    size_t n;

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
}

static void test_malformed(void **st)
{
    tstate *t = *st;
    size_t len = 2u << 20;
    uint8_t *data = random_data(len, 7);
    fy_welcome w, bw;
    rh_rx rx;
    uint8_t p[1024];
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

    malformed_senders(t);

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
    int b = sender_retry(t, "bad2", &bw);
    assert_true(b >= 0);
    assert_int_equal(bw.next_seq, 2);
    say_bye(b);
    assert_true(rh_log_count(&t->d, "err=FY_ECRC") >= 1);
    free(data);
    t->ok = true;
}

/* One sealed frame (header, then payload) at s + at; returns the new end. */
static size_t put_frame(uint8_t *s, size_t at, uint8_t type, uint32_t chan, uint64_t seq,
                        const void *p, size_t n)
{
    fy_frame_hdr h = {.type = type, .channel = chan, .seq = seq};
    fy_frame_seal(&h, p, n, s + at);
    memcpy(s + at + FY_FRAME_HDR_SIZE, p, n);
    return at + FY_FRAME_HDR_SIZE + n;
}

/* fb encoded into p (asserted); returns its length. */
static size_t begin_payload(const fy_file_begin *fb, uint8_t *p, size_t cap)
{
    size_t n;
    assert_int_equal(fy_file_begin_encode(fb, p, cap, &n), 0);
    return n;
}

/* Write s[0..sl) in pieces of 1 byte to 300 KiB (a fixed xorshift
 * sequence), pausing 1 ms every eighth piece, so reads end mid-frame. */
static void write_in_pieces(int fd, const uint8_t *s, size_t sl)
{
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
    sl = put_frame(s, sl, FY_FT_FILE_BEGIN, w.channel, seq++, p, begin_payload(&fb, p, sizeof p));
    for (size_t i = 0, off = 0; i < 3 * nsz; off += sizes[i % nsz], i++)
        sl = put_frame(s, sl, FY_FT_DATA, w.channel, seq++, data + off, sizes[i % nsz]);
    fy_file_end fe = {.size = len};
    assert_int_equal(fy_sha256_oneshot(data, len, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof p, &n), 0);
    sl = put_frame(s, sl, FY_FT_FILE_END, w.channel, seq, p, n);
    assert_true(sl <= cap);
    write_in_pieces(fd, s, sl);
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
    fy_frame_hdr h = {.type = FY_FT_DATA, .channel = bw.channel, .seq = bw.next_seq + 1};
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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_continue_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_beyond, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scrub_finds_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_frames, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
