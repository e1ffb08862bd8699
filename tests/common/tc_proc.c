/*
 * tc_proc.c - child processes started and stopped by PID, every wait
 * bounded (see tc.h).
 */
#include "tc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_MS 5

void tc_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int open_or_null(const char *path, int flags)
{
    if (!path)
        return open("/dev/null", O_RDWR);
    return open(path, flags, 0644);
}

/* In the child: streams in place, a clean signal state, exec; never returns. */
static void child(const char *const *argv, const char *in, const char *out, const char *err,
                  bool append)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int wr = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
    int i = open_or_null(in, O_RDONLY);
    int o = open_or_null(out, wr);
    int e = open_or_null(err, wr);
    if (i < 0 || o < 0 || e < 0)
        _exit(126);
    dup2(i, 0);
    dup2(o, 1);
    dup2(e, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

pid_t tc_spawn(const char *const *argv, const char *in, const char *out, const char *err,
               bool append)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        child(argv, in, out, err, append);
    return pid;
}

int tc_wait(pid_t pid, int timeout_ms, int *status)
{
    int st = 0;
    for (int waited = 0; waited <= timeout_ms; waited += POLL_MS) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status)
                *status = st;
            return 0;
        }
        if (r < 0 && errno == ECHILD)
            return -ECHILD; /* not ours, or reaped already */
        tc_sleep_ms(POLL_MS);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    if (status)
        *status = st;
    return -ETIMEDOUT;
}

int tc_stop(pid_t pid, int wait_ms, int *status)
{
    kill(pid, SIGTERM);
    return tc_wait(pid, wait_ms, status);
}

int tc_run(const char *const *argv, int timeout_ms, int *status)
{
    pid_t pid = tc_spawn(argv, NULL, NULL, NULL, false);
    if (pid < 0)
        return pid;
    return tc_wait(pid, timeout_ms, status);
}

int tc_exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
