/*
 * tc_etcd.c - a real etcd-server (Debian's etcd-server) on loopback for the
 * cluster tests (see tc.h).  Each start gets its own data directory and two
 * free ports, and is stopped by its PID like every other child.
 */
#include "tc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_MS 20
#define ETCD_BIN "/usr/bin/etcd"

int tc_free_port(uint16_t *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0;

    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0)
        *port = ntohs(sa.sin_port);
    return rc;
}

bool tc_etcd_available(void)
{
    return access(ETCD_BIN, X_OK) == 0;
}

/* true once etcd's log says it serves clients. */
static bool ready(const char *log)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen(log, "r");

    if (!f)
        return false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "ready to serve client requests") != NULL;
    fclose(f);
    return found;
}

int tc_etcd_start(tc_etcd *e, const char *dir, int timeout_ms)
{
    char data[600], log[600], client[64], peer[64], cluster[96];
    uint16_t cp, pp;
    int rc = tc_free_port(&cp);

    if (rc == 0)
        rc = tc_free_port(&pp);
    if (rc < 0)
        return rc;
    snprintf(data, sizeof data, "%s/etcd", dir);
    snprintf(log, sizeof log, "%s/etcd.log", dir);
    snprintf(client, sizeof client, "http://127.0.0.1:%u", cp);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%u", pp);
    snprintf(cluster, sizeof cluster, "tc=%s", peer);
    const char *argv[] = {ETCD_BIN, "--name", "tc", "--data-dir", data,
                          "--listen-client-urls", client, "--advertise-client-urls", client,
                          "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                          "--initial-cluster", cluster, NULL};
    e->pid = tc_spawn(argv, NULL, NULL, log, false);
    if (e->pid < 0)
        return (int)e->pid;
    snprintf(e->url, sizeof e->url, "%s", client);
    for (int waited = 0; waited < timeout_ms; waited += POLL_MS) {
        int status;
        if (ready(log))
            return 0;
        if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
            e->pid = -1;
            return -ECHILD;
        }
        tc_sleep_ms(POLL_MS);
    }
    tc_etcd_stop(e);
    return -ETIMEDOUT;
}

void tc_etcd_stop(tc_etcd *e)
{
    int status;

    if (e->pid > 0)
        tc_stop(e->pid, 5000, &status);
    e->pid = -1;
}
