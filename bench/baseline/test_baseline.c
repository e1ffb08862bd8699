/*
 * test_baseline.c - smoke test of ferry-baseline: start it on a free
 * loopback port, send a small file from a sender socket, and check that a
 * live receiver and a catch-up (START) receiver both get it byte for byte;
 * a second sender is refused with FY_EBUSY.  The process is stopped by PID
 * in the group teardown, which also runs when a check fails.  Every socket
 * has a receive/send timeout, and every loop a count bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/proto.h"

#define CHUNK 4096
#define MAXP (64 * 1024)

struct fixture {
    pid_t pid;
    int out; /* the child's stdout */
    int port;
    char dir[64];
};

static int stop_baseline(void **state);

static int start_failed(void **state)
{
    stop_baseline(state);
    *state = NULL;
    return -1;
}

static int start_baseline(void **state)
{
    static struct fixture fx;
    int pfd[2];

    fx = (struct fixture){.pid = -1, .out = -1};
    *state = NULL;
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/fy-baseline-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    *state = &fx;
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return start_failed(state);
    fx.pid = fork();
    if (fx.pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        execl(FERRY_BASELINE_PATH, "ferry-baseline", "--listen", "127.0.0.1:0", "--data", fx.dir,
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    fx.out = pfd[0];
    if (fx.pid < 0)
        return start_failed(state);
    /* Read "listening=127.0.0.1:PORT\n", at most 10 s. */
    char line[128] = "";
    size_t n = 0;
    for (int i = 0; i < 100 && !strchr(line, '\n') && n < sizeof(line) - 1; i++) {
        struct pollfd p = {.fd = fx.out, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = read(fx.out, line + n, sizeof(line) - 1 - n);
        if (k <= 0)
            return start_failed(state);
        n += (size_t)k;
        line[n] = '\0';
    }
    char *colon = strrchr(line, ':');
    if (strncmp(line, "listening=", 10) != 0 || !colon)
        return start_failed(state);
    fx.port = atoi(colon + 1);
    return fx.port > 0 ? 0 : start_failed(state);
}

static int stop_baseline(void **state)
{
    struct fixture *fx = *state;
    if (!fx)
        return 0;
    if (fx->pid > 0) {
        int st;
        kill(fx->pid, SIGTERM);
        for (int i = 0; i < 50 && waitpid(fx->pid, &st, WNOHANG) == 0; i++)
            nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
        if (kill(fx->pid, 0) == 0) {
            kill(fx->pid, SIGKILL);
            waitpid(fx->pid, &st, 0);
        }
    }
    if (fx->out >= 0)
        close(fx->out);
    DIR *d = opendir(fx->dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);
    rmdir(fx->dir);
    return 0;
}

/* ---- a tiny blocking client ----------------------------------------------- */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 10};
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void put_frame(int fd, uint8_t type, uint32_t chan, uint64_t seq, const void *p, size_t n)
{
    fy_frame_hdr h = {.type = type, .channel = chan, .seq = seq};
    uint8_t hdr[FY_FRAME_HDR_SIZE];
    fy_frame_seal(&h, p, n, hdr);
    assert_int_equal(send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL), (ssize_t)sizeof(hdr));
    if (n > 0)
        assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void get_frame(int fd, fy_frame_hdr *h, uint8_t *p)
{
    uint8_t hdr[FY_FRAME_HDR_SIZE];
    assert_int_equal(recv(fd, hdr, sizeof(hdr), MSG_WAITALL), (ssize_t)sizeof(hdr));
    assert_int_equal(fy_frame_hdr_decode(hdr, MAXP, h), 0);
    if (h->len > 0)
        assert_int_equal(recv(fd, p, h->len, MSG_WAITALL), (ssize_t)h->len);
    assert_int_equal(fy_crc32c(0, p, h->len), h->crc);
}

/* Say hello; return the welcome (or the error code in *err when err != NULL). */
static int hello(int fd, uint8_t role, uint8_t mode, fy_welcome *w, uint32_t *err)
{
    fy_hello hi = {.role = role, .mode = mode};
    uint8_t p[MAXP];
    size_t n;
    fy_frame_hdr h;
    strcpy(hi.channel, "smoke");
    strcpy(hi.token, "t");
    assert_int_equal(fy_hello_encode(&hi, p, sizeof(p), &n), 0);
    put_frame(fd, FY_FT_HELLO, 0, 0, p, n);
    get_frame(fd, &h, p);
    if (h.type == FY_FT_ERROR && err) {
        fy_error e;
        assert_int_equal(fy_error_decode(p, h.len, &e), 0);
        *err = e.code;
        return -1;
    }
    assert_int_equal(h.type, FY_FT_WELCOME);
    assert_int_equal(fy_welcome_decode(p, h.len, w), 0);
    return 0;
}

/* Receive one whole file starting at seq and compare it with want. */
static void expect_file(int fd, uint64_t seq, const uint8_t *want, size_t size)
{
    static uint8_t p[MAXP];
    uint8_t *got = calloc(1, size);
    size_t off = 0;
    fy_frame_hdr h;
    fy_sha256 *sha;
    uint8_t d[32];

    assert_non_null(got);
    assert_int_equal(fy_sha256_new(&sha), 0);
    get_frame(fd, &h, p);
    assert_int_equal(h.type, FY_FT_FILE_BEGIN);
    assert_int_equal(h.seq, seq);
    for (size_t i = 0; i < size / CHUNK + 2; i++) {
        get_frame(fd, &h, p);
        assert_int_equal(h.seq, ++seq);
        if (h.type != FY_FT_DATA)
            break;
        assert_true(off + h.len <= size);
        memcpy(got + off, p, h.len);
        fy_sha256_update(sha, p, h.len);
        off += h.len;
    }
    assert_int_equal(h.type, FY_FT_FILE_END);
    fy_file_end fe;
    assert_int_equal(fy_file_end_decode(p, h.len, &fe), 0);
    fy_sha256_final(sha, d);
    fy_sha256_free(sha);
    assert_int_equal(fe.size, size);
    assert_int_equal(off, size);
    assert_memory_equal(fe.sha256, d, 32);
    assert_memory_equal(got, want, size);
    free(got);
}

/* Send one file from seq on; returns the next seq after waiting for the ack. */
static uint64_t send_file(int fd, uint32_t chan, uint64_t seq, const uint8_t *data, size_t size)
{
    static uint8_t p[MAXP];
    size_t n;
    fy_file_begin fb = {.size = size};
    fy_file_end fe = {.size = size};
    fy_frame_hdr h;

    strcpy(fb.name, "smoke.bin");
    assert_int_equal(fy_file_begin_encode(&fb, p, sizeof(p), &n), 0);
    put_frame(fd, FY_FT_FILE_BEGIN, chan, seq++, p, n);
    for (size_t off = 0; off < size; off += CHUNK)
        put_frame(fd, FY_FT_DATA, chan, seq++, data + off, size - off < CHUNK ? size - off : CHUNK);
    assert_int_equal(fy_sha256_oneshot(data, size, fe.sha256), 0);
    assert_int_equal(fy_file_end_encode(&fe, p, sizeof(p), &n), 0);
    uint64_t end_seq = seq++;
    put_frame(fd, FY_FT_FILE_END, chan, end_seq, p, n);
    get_frame(fd, &h, p);
    assert_int_equal(h.type, FY_FT_ACK);
    fy_ack a;
    assert_int_equal(fy_ack_decode(p, h.len, &a), 0);
    assert_int_equal(a.seq, end_seq);
    return seq;
}

static void test_relay_file(void **state)
{
    struct fixture *fx = *state;
    enum { SIZE = 50000 };
    static uint8_t data[SIZE], data2[SIZE / 3];
    fy_welcome w, ws;
    uint32_t err = 0;

    for (size_t i = 0; i < SIZE; i++)
        data[i] = (uint8_t)(i * 131u + (i >> 9));
    for (size_t i = 0; i < sizeof(data2); i++)
        data2[i] = (uint8_t)(i * 7u + 3);

    int live = dial(fx->port);
    assert_int_equal(hello(live, FY_ROLE_RECEIVER, FY_MODE_LIVE, &w, NULL), 0);
    assert_int_equal(w.next_seq, 1);

    int snd = dial(fx->port);
    assert_int_equal(hello(snd, FY_ROLE_SENDER, 0, &ws, NULL), 0);
    assert_int_equal(ws.next_seq, 1);
    int snd2 = dial(fx->port);
    assert_int_equal(hello(snd2, FY_ROLE_SENDER, 0, &w, &err), -1);
    assert_int_equal(err, FY_EBUSY);
    close(snd2);

    uint64_t next = send_file(snd, ws.channel, ws.next_seq, data, SIZE);
    expect_file(live, 1, data, SIZE);

    /* A late receiver catches up from the data file, then goes live. */
    int late = dial(fx->port);
    assert_int_equal(hello(late, FY_ROLE_RECEIVER, FY_MODE_START, &w, NULL), 0);
    assert_int_equal(w.next_seq, 1);
    expect_file(late, 1, data, SIZE);
    uint64_t second = next;
    next = send_file(snd, ws.channel, next, data2, sizeof(data2));
    expect_file(live, second, data2, sizeof(data2));
    expect_file(late, second, data2, sizeof(data2));

    put_frame(snd, FY_FT_BYE, ws.channel, 0, NULL, 0);
    put_frame(live, FY_FT_BYE, ws.channel, 0, NULL, 0);
    put_frame(late, FY_FT_BYE, ws.channel, 0, NULL, 0);
    close(snd);
    close(live);
    close(late);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_file),
    };
    return cmocka_run_group_tests(tests, start_baseline, stop_baseline);
}
