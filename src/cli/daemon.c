/*
 * daemon.c - a ferryd child process (see daemon.h).
 *
 * The child's signal mask is cleared before exec: the client blocks
 * SIGINT/SIGTERM in every thread (cancel.c) and a mask survives exec, so
 * without this the relay would ignore the SIGTERM that stops it.
 */
#include "cli/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DAEMON_ARGS_MAX 32
#define DAEMON_POLL_NS 10000000L /* 10 ms */

int fy_cli_daemon_find(char *buf, size_t cap)
{
    const char *env = getenv("FERRYD");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return access(buf, X_OK) == 0 ? 0 : -ENOENT;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -ENOENT;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return -ENOENT;
    *slash = 0;
    snprintf(buf, cap, "%s/ferryd", self);
    if (access(buf, X_OK) == 0)
        return 0;
    /* Installed: ferry in PREFIX/bin, the daemon in PREFIX/sbin. */
    snprintf(buf, cap, "%s/../sbin/ferryd", self);
    return access(buf, X_OK) == 0 ? 0 : -ENOENT;
}

static void nap(void)
{
    struct timespec ts = {0, DAEMON_POLL_NS};
    nanosleep(&ts, NULL);
}

/* Look for "listening=ADDR" in the log. 1 found, 0 not yet. */
static int read_listening(const char *log, char *addr, size_t cap)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *p = strstr(line, "listening=");
        if (!p)
            continue;
        p += strlen("listening=");
        size_t n = strcspn(p, " \t\r\n\"");
        if (n > 0 && n < cap) {
            memcpy(addr, p, n);
            addr[n] = 0;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static void child(const char *path, const char *const *argv, const char *log_path)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    int nul = open("/dev/null", O_RDWR);
    if (fd < 0 || nul < 0)
        _exit(127);
    dup2(nul, STDIN_FILENO);
    dup2(nul, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execv(path, (char *const *)argv);
    _exit(127);
}

int fy_cli_daemon_start(const char *path, const char *data_dir, const char *log_path,
                        const char *const *extra, int timeout_ms, fy_cli_daemon *d)
{
    const char *argv[DAEMON_ARGS_MAX] = {path, "--listen", "127.0.0.1:0", "--data", data_dir};
    int argc = 5;
    for (int i = 0; extra && extra[i]; i++) {
        if (argc == DAEMON_ARGS_MAX - 1)
            return -E2BIG;
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    memset(d, 0, sizeof *d);
    snprintf(d->log, sizeof d->log, "%s", log_path);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        child(path, argv, log_path);
    d->pid = pid;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (read_listening(log_path, d->addr, sizeof d->addr))
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            d->pid = 0;
            return -ECHILD;
        }
        nap();
    }
    fy_cli_daemon_stop(d, 1000);
    return -ETIMEDOUT;
}

int fy_cli_daemon_stop(fy_cli_daemon *d, int timeout_ms)
{
    if (d->pid <= 0)
        return 0;
    kill(d->pid, SIGTERM);
    int st = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r == d->pid || (r < 0 && errno == ECHILD)) {
            d->pid = 0;
            return st;
        }
        nap();
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return -1;
}
