/*
 * relay_fixture.h - what the ferryd end-to-end tests (test_relay*.c) share:
 * the per-test fixture (a daemon in a temp directory, stopped by PID in the
 * teardown, which also fails a passed test whose daemon did not exit 0 on
 * SIGTERM), sender and receiver connections, and the helpers more than one
 * of those files uses.  Header-only (static inline): each test program
 * includes it once.
 */
#ifndef FERRY_TESTS_RELAY_FIXTURE_H
#define FERRY_TESTS_RELAY_FIXTURE_H

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
#include <netinet/tcp.h>
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

static inline int setup(void **st)
{
    tstate *t = calloc(1, sizeof *t);
    if (!t || rh_init(&t->d) < 0)
        return -1;
    *st = t;
    return 0;
}

/* Also fails a passed test when the daemon did not exit 0 on SIGTERM (a
 * sanitizer report makes it exit non-zero). */
static inline int teardown(void **st)
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

static inline void start(tstate *t, const char *const *extra)
{
    int rc = rh_start(&t->d, extra);
    if (rc < 0)
        rh_cleanup(&t->d, true);
    assert_int_equal(rc, 0);
}

static inline int sender(tstate *t, const char *chan, const char *token, fy_welcome *w)
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

static inline void receiver(tstate *t, rh_rx *r, const char *chan, uint8_t mode, uint64_t from)
{
    fy_welcome w;
    memset(r, 0, sizeof *r);
    r->fd = rh_connect(&t->d);
    assert_true(r->fd >= 0);
    assert_int_equal(rh_hello(r->fd, FY_ROLE_RECEIVER, chan, "", mode, from, &w), 0);
    r->next_seq = w.next_seq;
}

static inline uint8_t *random_data(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    rh_fill(p, n, seed);
    return p;
}

static inline void check_file(const rh_file *f, const char *name, const uint8_t *data, size_t len)
{
    assert_string_equal(f->name, name);
    assert_int_equal(f->len, len);
    assert_true(f->digest_ok);
    assert_memory_equal(f->data, data, len);
}

/* Send one whole file and wait for its ack; returns the file-end seq. */
static inline uint64_t send_acked(int fd, const fy_welcome *w, uint64_t *seq, const char *name,
                           const uint8_t *data, size_t len)
{
    assert_int_equal(rh_send_file(fd, w->channel, seq, name, data, len, CHUNK), 0);
    assert_int_equal(rh_wait_ack(fd, *seq - 1), 0);
    return *seq - 1;
}

static inline void say_bye(int fd)
{
    rh_send_frame(fd, FY_FT_BYE, 0, 0, NULL, 0);
    close(fd);
}

/* Say bye and wait (bounded) until the relay has read it: everything sent
 * before it is then in the writer's mailbox, ahead of any SIGTERM's
 * shutdown.  Frames still unread at a SIGTERM are not stored (they were
 * never acknowledged), so a test that stops the relay right after
 * unacknowledged frames must wait for this first. */
static inline void say_bye_read(tstate *t, int fd)
{
    int before = rh_log_count(&t->d, "reason=\"bye\"");
    say_bye(fd);
    for (int i = 0; i < 500 && rh_log_count(&t->d, "reason=\"bye\"") <= before; i++)
        usleep(20000);
}

/* Connect a sender, retrying while the previous sender's slot is released
 * (the detach is asynchronous). */
static inline int sender_retry(tstate *t, const char *chan, fy_welcome *w)
{
    int fd = -FY_EBUSY;
    for (int i = 0; i < 200 && fd == -FY_EBUSY; i++) {
        fd = sender(t, chan, "", w);
        if (fd == -FY_EBUSY)
            usleep(20000);
    }
    return fd;
}

/* ---- shared by several test files ---------------------------------------------- */

static inline int count_fds(pid_t pid)
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

typedef struct job {
    tstate *t;
    const char *chan, *name;
    const uint8_t *data;
    size_t len;
    rh_rx rx;
    int rc;
} job;

static inline void *send_job(void *arg)
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

static inline void *recv_job(void *arg)
{
    job *j = arg;
    j->rc = rh_rx_until(&j->rx, 1, 0);
    return NULL;
}

/* Wait (bounded) until ferryd holds at most want descriptors; returns the
 * last count. */
static inline int wait_fds_at_most(pid_t pid, int want, int ms)
{
    int n = count_fds(pid);
    for (int i = 0; i < ms / 20 && n > want; i++) {
        usleep(20000);
        n = count_fds(pid);
    }
    return n;
}

#endif
