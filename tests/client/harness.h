/*
 * harness.h - helpers for the client's end-to-end tests: temp directories,
 * child processes (ferry, ferryd) that are always stopped by PID, files of
 * pseudo-random bytes and their SHA-256.
 *
 * Every wait is bounded in time; every child a test starts is recorded so
 * fy_ct_cleanup() (the cmocka teardown) kills and reaps it even when an
 * assertion failed half-way.
 */
#ifndef FY_CT_HARNESS_H
#define FY_CT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/conn.h"
#include "common/tc.h"
#include "ferry/proto.h"

#ifndef FERRY_PATH
#define FERRY_PATH "ferry"
#endif
#ifndef FERRYD_PATH
#define FERRYD_PATH "ferryd"
#endif

#define FY_CT_PATH 1024

typedef struct fy_ct {
    char dir[512];        /* this test's temp directory */
    pid_t pids[32];
    int npids;
    tc_daemon daemon;
    char data[FY_CT_PATH]; /* the daemon's --data */
    int logs;              /* counter for log file names */
} fy_ct;

/* cmocka setup/teardown: a fresh temp dir / kill every child, remove dir
 * (kept when the test failed and FERRY_TEST_KEEP is set). */
int fy_ct_setup(void **state);
int fy_ct_teardown(void **state);

/* Start ferryd on 127.0.0.1:0 with data dir t->data (extra args may be
 * NULL); asserts it listens within 20 s. */
void fy_ct_daemon_start(fy_ct *t, const char *const *extra);
/* Stop it by PID (SIGTERM, bounded wait, SIGKILL). */
void fy_ct_daemon_stop(fy_ct *t);
/* SIGKILL it (a crash: no shutdown, no flush) and reap it. */
void fy_ct_daemon_kill9(fy_ct *t);
/* Start ferryd again on the same data dir and the same address as the
 * last start (clients reconnect to it by themselves).  The port can be
 * briefly unbindable (another socket took it meanwhile): tries for at most
 * 10 s, then fails the test. */
void fy_ct_daemon_restart(fy_ct *t, const char *const *extra);

/* Start `ferry argv...` with stdout/stderr to files out/err in t->dir named
 * after `tag` (TAG.out, TAG.err).  Returns the PID (recorded). */
pid_t fy_ct_spawn(fy_ct *t, const char *tag, const char *const *argv);
/* fy_ct_spawn for another program (prog: its path; NULL = ferry) with
 * standard input from file `in` (NULL = /dev/null). */
pid_t fy_ct_spawn_prog(fy_ct *t, const char *tag, const char *prog, const char *in,
                       const char *const *argv);
/* Wait at most timeout_ms for pid; returns its exit code (128+sig when
 * killed by a signal), or -1 on timeout (the child is then killed). */
int fy_ct_wait(fy_ct *t, pid_t pid, int timeout_ms);
/* true if pid has not exited yet (does not reap). */
bool fy_ct_running(pid_t pid);
/* spawn + wait. */
int fy_ct_run(fy_ct *t, const char *tag, const char *const *argv, int timeout_ms);
/* Send a signal to a recorded child. */
void fy_ct_kill(pid_t pid, int sig);
/* Wait for pid (as fy_ct_wait) and assert it exits with `code`; on a
 * mismatch first prints TAG.err and the first daemon log for the reader. */
void fy_ct_expect_exit(fy_ct *t, pid_t pid, const char *tag, int timeout_ms, int code);
/* Spawn `ferry send --server ADDR --channel CH more...` (more: NULL-terminated,
 * files and options; a NULL inside ends it early). */
pid_t fy_ct_send(fy_ct *t, const char *tag, const char *channel, const char *const *more);
/* Spawn `ferry recv --server ADDR --channel CH --out OUT more...` (more may be NULL). */
pid_t fy_ct_recv(fy_ct *t, const char *tag, const char *channel, const char *out,
                 const char *const *more);
/* Connect to the daemon as a sender of `channel` and assert it is welcomed:
 * the channel is then busy until fy_cli_conn_close(*k, ...). */
void fy_ct_hold_sender(fy_ct *t, const char *channel, fy_cli_conn **k, fy_welcome *w);

/* Path helpers: t->dir/name into buf. */
const char *fy_ct_path(fy_ct *t, const char *name, char *buf);
/* Read a small file (at most cap-1 bytes) into buf, NUL-terminated; "" if absent. */
const char *fy_ct_slurp(const char *path, char *buf, size_t cap);
/* Does file `path` contain needle? */
bool fy_ct_contains(const char *path, const char *needle);
/* Print the tail of a log (on failure, for the reader). */
void fy_ct_dump(const char *path);

/* Write `size` pseudo-random bytes (seeded) to path; sha256 into out (may be NULL). */
void fy_ct_make_file(const char *path, uint64_t size, uint64_t seed, uint8_t out[32]);
/* SHA-256 of a file; returns 0 or -errno. */
int fy_ct_sha_file(const char *path, uint8_t out[32]);
/* Assert that file `path` has SHA-256 `want`. */
void fy_ct_assert_same(const char *path, const uint8_t want[32]);
/* Size of a file, or -1. */
long long fy_ct_size(const char *path);
/* Sleep ms milliseconds. */
void fy_ct_sleep_ms(int ms);
/* Environment integer with a default. */
long fy_ct_env_long(const char *name, long def);
/* mkdir -p one level, asserted. */
void fy_ct_mkdir(const char *path);

#endif
