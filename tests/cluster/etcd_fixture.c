/*
 * etcd_fixture.c - the cluster tests' etcd fixture (see etcd_fixture.h).
 */
#include "cluster/etcd_fixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int ef_setup(void **state, const char *tag)
{
    ef_etcd *f;

    *state = NULL;
    if (!tc_etcd_available()) {
        fprintf(stderr, "skip: etcd-server is not installed (/usr/bin/etcd)\n");
        return 0;
    }
    f = calloc(1, sizeof *f);
    if (!f || tc_tmpdir(f->dir, sizeof f->dir, tag) < 0 ||
        tc_etcd_start(&f->etcd, f->dir, 20000) < 0 || fy_etcd_open(f->etcd.url, 2000, &f->e) < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int ef_teardown(void **state)
{
    ef_etcd *f = *state;

    if (!f)
        return 0;
    if (f->etcd.pid > 0)
        kill(f->etcd.pid, SIGCONT);
    fy_etcd_close(f->e);
    tc_etcd_stop(&f->etcd);
    tc_tmpdir_done(f->dir);
    free(f);
    return 0;
}
