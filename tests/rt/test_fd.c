/*
 * test_fd.c - fy_fd_write_all (src/base/fd.c): whole writes to a file,
 * whole writes to a pipe whose writer is interrupted by signals (short
 * writes and EINTR), and the errors it passes up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "ferry/fd.h"

#define FILE_BYTES ((size_t)1 << 20)
#define PIPE_BYTES ((size_t)8 << 20)
#define READ_CHUNK 1000

static uint8_t pattern_at(size_t i)
{
    return (uint8_t)(i * 131u + (i >> 12));
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = pattern_at(i);
    return p;
}

static void test_file_whole(void **state)
{
    (void)state;
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/ferry-test-fd-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);

    uint8_t *p = pattern(FILE_BYTES);
    assert_int_equal(fy_fd_write_all(fd, p, 0), 0);
    assert_int_equal(fy_fd_write_all(fd, p, FILE_BYTES), 0);
    assert_int_equal(fy_fd_write_all(fd, p, 7), 0);

    uint8_t *back = malloc(FILE_BYTES + 8);
    assert_non_null(back);
    assert_int_equal(pread(fd, back, FILE_BYTES + 8, 0), (ssize_t)(FILE_BYTES + 7));
    assert_memory_equal(back, p, FILE_BYTES);
    assert_memory_equal(back + FILE_BYTES, p, 7);
    free(back);
    free(p);
    close(fd);
}

/* ---- a pipe whose writer keeps being interrupted -------------------------- */

static _Atomic unsigned alarms;

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add(&alarms, 1);
}

/* The reader drains the pipe in small pieces, checking every byte, so the
 * writer blocks often and the signals land mid-write. */
static void *drain(void *arg)
{
    int fd = *(int *)arg;
    uint8_t buf[READ_CHUNK];
    size_t at = 0, bad = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            bad += buf[i] != pattern_at(at + (size_t)i);
        at += (size_t)r;
    }
    return (void *)(uintptr_t)(bad ? SIZE_MAX : at);
}

static void test_pipe_interrupted(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    (void)fcntl(p[1], F_SETPIPE_SZ, 4096); /* more blocking, more short writes */

    /* The reader never sees SIGALRM: it is blocked before the thread starts. */
    sigset_t alrm, old;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &alrm, &old), 0);
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, drain, &p[0]), 0);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);

    /* No SA_RESTART: an interrupted write returns EINTR or a short count. */
    struct sigaction sa = {.sa_handler = on_alarm}, prev;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &prev), 0);
    struct itimerval every = {{0, 200}, {0, 200}}, off = {{0, 0}, {0, 0}};
    assert_int_equal(setitimer(ITIMER_REAL, &every, NULL), 0);

    uint8_t *data = pattern(PIPE_BYTES);
    int rc = fy_fd_write_all(p[1], data, PIPE_BYTES);

    assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
    assert_int_equal(sigaction(SIGALRM, &prev, NULL), 0);
    close(p[1]);
    void *got;
    assert_int_equal(pthread_join(reader, &got), 0);
    close(p[0]);
    free(data);

    assert_int_equal(rc, 0);
    assert_int_equal((uintptr_t)got, PIPE_BYTES);
    assert_true(atomic_load(&alarms) > 0);
}

static void test_errors(void **state)
{
    (void)state;
    uint8_t b[16] = {0};
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[1]);
    assert_int_equal(fy_fd_write_all(p[1], b, sizeof b), -EBADF);

    assert_int_equal(pipe(p), 0);
    close(p[0]);
    struct sigaction ign = {.sa_handler = SIG_IGN}, prev;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &ign, &prev), 0);
    assert_int_equal(fy_fd_write_all(p[1], b, sizeof b), -EPIPE);
    assert_int_equal(sigaction(SIGPIPE, &prev, NULL), 0);
    close(p[1]);

    int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    assert_int_equal(fy_fd_write_all(ro, b, sizeof b), -EBADF);
    close(ro);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_whole),
        cmocka_unit_test(test_pipe_interrupted),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
