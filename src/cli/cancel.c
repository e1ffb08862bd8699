/*
 * cancel.c - signal watcher thread and the sockets it wakes (see cancel.h).
 *
 * The state is small and touched rarely (once per read at most), so one
 * mutex guards it; a sanitizer sees every access.  Shutting a socket down
 * (rather than closing it) keeps the fd number owned by its user until
 * that user closes it, so no other thread can race on a reused number.
 */
#include "cli/cancel.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#define CANCEL_FDS_MAX 64

struct fy_cli_cancel {
    pthread_mutex_t mu;
    pthread_t watcher;
    bool requested;
    bool stopping; /* fy_cli_cancel_free: the next signal ends the watcher */
    int signo;
    int fds[CANCEL_FDS_MAX];
    int nfds;
};

static void stop_locked(fy_cli_cancel *c, int signo)
{
    c->requested = true;
    c->signo = signo;
    for (int i = 0; i < c->nfds; i++)
        shutdown(c->fds[i], SHUT_RDWR);
}

static void *watch(void *arg)
{
    fy_cli_cancel *c = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    for (;;) {
        int signo = 0;
        if (sigwait(&set, &signo) != 0)
            continue;
        pthread_mutex_lock(&c->mu);
        bool stopping = c->stopping;
        if (!stopping)
            stop_locked(c, signo);
        pthread_mutex_unlock(&c->mu);
        if (stopping)
            return NULL;
    }
}

int fy_cli_cancel_new(fy_cli_cancel **out)
{
    fy_cli_cancel *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc == 0)
        rc = pthread_create(&c->watcher, NULL, watch, c);
    if (rc != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return -rc;
    }
    *out = c;
    return 0;
}

void fy_cli_cancel_free(fy_cli_cancel *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
    /* SIGTERM is blocked everywhere, so it stays pending until the watcher's
     * sigwait takes it, sees `stopping` and returns. */
    pthread_kill(c->watcher, SIGTERM);
    pthread_join(c->watcher, NULL);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

bool fy_cli_cancel_requested(fy_cli_cancel *c)
{
    if (!c)
        return false;
    pthread_mutex_lock(&c->mu);
    bool r = c->requested;
    pthread_mutex_unlock(&c->mu);
    return r;
}

int fy_cli_cancel_signal(fy_cli_cancel *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    int s = c->signo;
    pthread_mutex_unlock(&c->mu);
    return s;
}

void fy_cli_cancel_trigger(fy_cli_cancel *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    stop_locked(c, 0);
    pthread_mutex_unlock(&c->mu);
}

int fy_cli_cancel_add_fd(fy_cli_cancel *c, int fd)
{
    if (!c)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    if (c->nfds == CANCEL_FDS_MAX)
        rc = -ENOSPC;
    else
        c->fds[c->nfds++] = fd;
    /* A stop that came before this socket existed still has to reach it. */
    if (rc == 0 && c->requested)
        shutdown(fd, SHUT_RDWR);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void fy_cli_cancel_remove_fd(fy_cli_cancel *c, int fd)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nfds; i++) {
        if (c->fds[i] == fd) {
            c->fds[i] = c->fds[--c->nfds];
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
}
