/*
 * relay_harness.h - run the real ferryd on 127.0.0.1 (port 0) in a temp
 * data directory and speak the protocol to it over real TCP.
 *
 * Every wait is bounded: sockets have a receive/send timeout and the
 * daemon is stopped by PID (SIGTERM, then SIGKILL after a bounded wait,
 * always waitpid), also when a test fails, from the cmocka teardown.
 */
#ifndef FERRY_TESTS_RELAY_HARNESS_H
#define FERRY_TESTS_RELAY_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/tc.h"
#include "ferry/proto.h"

#define RH_IO_TIMEOUT_S 30

typedef struct rh_daemon {
    pid_t pid;
    uint16_t port;
    uint16_t metrics_port; /* when started with --metrics */
    char root[256]; /* temp dir: data/, ferryd.log, extra files */
    char data[300];
    char log[300];
    int exit_status; /* waitpid status when rh_start saw it exit early */
} rh_daemon;

/* cmocka fixtures: *state is an rh_init'd rh_daemon; the teardown stops
 * it (printing its log tail) and removes its root. */
int rh_setup(void **state);
int rh_teardown(void **state);
void rh_sleep_ms(unsigned ms);

/* Make a temp root (once per daemon struct; kept across restarts). */
int rh_init(rh_daemon *d);
/* Start ferryd with --data root/data, --listen 127.0.0.1:0 and extra args
 * (NULL-terminated, may be NULL).  Waits (bounded) for "listening=". */
int rh_start(rh_daemon *d, const char *const *extra);
/* SIGTERM, wait up to wait_ms, then SIGKILL; returns the exit status as from
 * waitpid (or -1 if none was running). */
int rh_stop(rh_daemon *d, int wait_ms);
/* Stop if running, print the log tail when dump is set, remove the root. */
void rh_cleanup(rh_daemon *d, bool dump);
/* Count lines of the daemon's log containing s. */
int rh_log_count(const rh_daemon *d, const char *s);
/* Wait (10 ms steps, at most timeout_ms) until the log has at least n lines
 * containing s: 0, or -ETIMEDOUT. */
int rh_wait_log(const rh_daemon *d, const char *s, int n, int timeout_ms);
/* Replace path's content at once (a temp file beside it, renamed): 0 or
 * -errno.  For config and token files a running ferryd reloads. */
int rh_write_file(const char *path, const char *text);

/* Connect (blocking, with timeouts).  fd or -errno. */
int rh_connect(const rh_daemon *d);

/* ---- frames ----------------------------------------------------------------- */

typedef struct rh_frame {
    fy_frame_hdr hdr;
    uint8_t *payload; /* malloc'd (len bytes), or NULL */
} rh_frame;

int rh_send_frame(int fd, uint8_t type, uint32_t chan, uint64_t seq, const void *p, size_t n);
/* Read one frame (checks header and CRC).  0, -ENODATA on EOF, -errno. */
int rh_read_frame(int fd, rh_frame *f);
void rh_frame_free(rh_frame *f);

/* hello + welcome.  Returns 0 with *w filled, or the negative FY_E* code of
 * the error frame the relay answered with (or -errno). */
int rh_hello(int fd, uint8_t role, const char *channel, const char *token, uint8_t mode,
             uint64_t resume_from, fy_welcome *w);
/* rh_hello with FY_HELLO_F_* flags (FY_HELLO_F_AHEAD not supported here). */
int rh_hello_flags(int fd, uint8_t role, const char *channel, const char *token, uint8_t mode,
                   uint64_t resume_from, uint16_t flags, fy_welcome *w);

/* Send one file as file-begin, data (chunk bytes each), file-end; *seq is the
 * next seq and is advanced.  Does not wait for the ack. */
int rh_send_file(int fd, uint32_t chan, uint64_t *seq, const char *name, const uint8_t *data,
                 size_t len, size_t chunk);
/* Read frames until ack(seq) (bounded by the socket timeout).  0 or <0. */
int rh_wait_ack(int fd, uint64_t seq);
/* Read frames until a bye; returns 0, or the error code / -errno. */
int rh_wait_bye(int fd);

/* A receiver's view: whole files, in order. */
typedef struct rh_file {
    char name[FY_NAME_MAX + 1];
    uint8_t *data;
    size_t len;
    uint64_t begin_seq, end_seq;
    bool digest_ok;
} rh_file;

typedef struct rh_rx {
    int fd;
    uint64_t next_seq; /* expected next stream seq (from welcome); 0 = the first that comes */
    uint64_t bytes;    /* payload bytes of data frames */
    rh_file files[16];
    size_t nfiles;
    /* in progress */
    bool in_file;
    rh_file cur;
    size_t cur_cap;
    int err;           /* first problem seen (gap, duplicate, error frame) */
    size_t notices;    /* FY_FT_NOTICE frames seen; the last one in notice */
    fy_notice notice;
} rh_rx;

/* Read stream frames until nfiles whole files are there, or a problem.
 * stop_after
 * stops early (returning 1) once that many payload bytes arrived (0 = never).
 * Returns 0 when done, 1 when stopped early, or a negative error. */
int rh_rx_until(rh_rx *r, size_t nfiles, uint64_t stop_after);
void rh_rx_free(rh_rx *r);

/* Random bytes (xorshift; deterministic for a seed). */
void rh_fill(uint8_t *p, size_t n, uint64_t seed);

/* Monotonic clock in seconds, for the hand-run benchmarks. */
double rh_now_s(void);

/* One receiver thread's job in the benchmarks (relay_bench, trace_bench). */
typedef struct rh_rx_job {
    int fd;
    uint64_t bytes;
    double done; /* rh_now_s() when the file was complete */
    int rc;
} rh_rx_job;

#endif
