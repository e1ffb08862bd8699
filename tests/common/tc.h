/*
 * tc.h - what every test folder shares (tests/common, library
 * fy_testcommon): temp directories and their removal, child processes
 * started and stopped by PID, the real ferryd on loopback, pseudo-random
 * bytes and files.
 *
 * Every wait here is bounded in count and in time, and every child is
 * stopped by its PID (SIGTERM, a bounded wait, SIGKILL, always reaped):
 * a hung daemon fails a test instead of hanging ctest.  Functions return 0
 * or a negative errno unless their comment says otherwise; none of them
 * asserts, so harnesses decide how a failure is reported.
 */
#ifndef FERRY_TESTS_COMMON_TC_H
#define FERRY_TESTS_COMMON_TC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- temp directories ----------------------------------------------------------- */

/* mkdtemp "BASE/ferry-TAG-XXXXXX" into out, BASE being $FERRY_TEST_TMP (e.g.
 * /dev/shm, to take the disk out), else $TMPDIR, else /tmp. */
int tc_tmpdir(char *out, size_t cap, const char *tag);
/* rm -r path (not following symlinks); 0, or the first failure's -errno.
 * One walk at a time (nftw keeps no user pointer): not for threads. */
int tc_rmtree(const char *path);
/* Remove a test's temp dir, unless $FERRY_TEST_KEEP is set (then say where
 * it is, for reading logs by hand).  Returns as tc_rmtree (0 when kept). */
int tc_tmpdir_done(const char *path);

/* ---- processes ------------------------------------------------------------------- */

void tc_sleep_ms(unsigned ms);

/* Start argv[0] (a path) with argv; stdin from `in`, stdout to `out`, stderr
 * to `err` (NULL: /dev/null; out/err are created, truncated unless `append`).
 * The child gets an empty signal mask and default SIGPIPE (both survive
 * exec, and a relay that ignores SIGTERM could not be stopped).  Returns the
 * PID or -errno. */
pid_t tc_spawn(const char *const *argv, const char *in, const char *out, const char *err,
               bool append);
/* Wait at most timeout_ms for pid.  0 with *status (waitpid's) set;
 * -ETIMEDOUT after it was SIGKILLed and reaped (*status then holds that);
 * -ECHILD when pid is not a child (or was reaped already). */
int tc_wait(pid_t pid, int timeout_ms, int *status);
/* SIGTERM, wait at most wait_ms, then SIGKILL; always reaped.  0 with
 * *status set, or -ETIMEDOUT when it had to be killed. */
int tc_stop(pid_t pid, int wait_ms, int *status);
/* Run argv with every stream on /dev/null, at most timeout_ms: tc_wait's
 * answer. */
int tc_run(const char *const *argv, int timeout_ms, int *status);
/* A wait status as one number: the exit code, 128+signal when killed. */
int tc_exit_code(int status);

/* ---- the real ferryd ------------------------------------------------------------- */

typedef struct tc_daemon {
    pid_t pid;             /* <= 0 when not running */
    char addr[64];         /* "127.0.0.1:PORT" once listening */
    uint16_t port;
    uint16_t metrics_port; /* when started with --metrics */
    int exit_status;       /* waitpid status when it exited before listening */
} tc_daemon;

/* Start `ferryd --listen 127.0.0.1:0 [--data data] extra...` (data NULL: no
 * --data; extra NULL-terminated, may be NULL; a later --listen in extra
 * wins) with stderr appended to `log`, and wait at most timeout_ms for its
 * `listening=` line (only lines written by this start count, so a restart
 * may reuse a log).  0 with addr/port set; -ECHILD when it exited first
 * (exit_status set); -ETIMEDOUT (then stopped); -E2BIG for too many args. */
int tc_daemon_start(tc_daemon *d, const char *ferryd, const char *data, const char *log,
                    const char *const *extra, int timeout_ms);
/* tc_stop on the daemon; 0 with *status, -ETIMEDOUT when SIGKILLed, -ESRCH
 * when none was running, -ECHILD when it was reaped elsewhere.  status may
 * be NULL. */
int tc_daemon_stop(tc_daemon *d, int wait_ms, int *status);
/* SIGKILL (a crash: no shutdown, no flush) and reap. */
void tc_daemon_kill9(tc_daemon *d);

/* ---- etcd (the cluster tests) --------------------------------------------------- */

typedef struct tc_etcd {
    pid_t pid;      /* <= 0 when not running */
    char url[64];   /* "http://127.0.0.1:PORT", its client URL */
} tc_etcd;

/* A free loopback TCP port (bound once and released: another process may
 * take it first, which a start then reports as its failure). */
int tc_free_port(uint16_t *port);
/* true when Debian's etcd-server is installed (tests skip otherwise). */
bool tc_etcd_available(void);
/* Start a one-member etcd with its data and log ("etcd.log") under dir, on
 * two free loopback ports; wait at most timeout_ms until it serves clients.
 * 0, -ECHILD when it exited first, -ETIMEDOUT (then stopped). */
int tc_etcd_start(tc_etcd *e, const char *dir, int timeout_ms);
/* Stop it by PID (SIGTERM, a bounded wait, SIGKILL). */
void tc_etcd_stop(tc_etcd *e);

/* ---- power loss (the shim: powerloss_shim.c) --------------------------------------- */

typedef struct tc_powerloss_stats {
    uint64_t records;    /* journal records read */
    uint64_t files_cut;  /* files made shorter */
    uint64_t bytes_lost; /* bytes cut off in all */
} tc_powerloss_stats;

/* A power cut as the shim journaled it: cut every regular file under dir
 * back to its size at its last successful fsync/fdatasync (0 when it was
 * never synced), following renames and unlinks.  Run it while the process
 * that wrote the files is dead.  0 or -errno. */
int tc_powerloss_apply(const char *journal, const char *dir, tc_powerloss_stats *st);

/* ---- pseudo-random data ---------------------------------------------------------- */

/* n deterministic bytes for a seed (xorshift). */
void tc_fill(void *p, size_t n, uint64_t seed);
/* Write `size` deterministic bytes (splitmix64 stream of `seed`) to path;
 * their SHA-256 into sha (may be NULL). */
int tc_make_file(const char *path, uint64_t size, uint64_t seed, uint8_t sha[32]);

#endif
