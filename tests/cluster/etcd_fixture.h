/*
 * etcd_fixture.h - the cluster tests' cmocka group fixture: one real
 * etcd-server on loopback for the whole group (tests/common tc_etcd_*),
 * stopped by PID at the end, and one client handle to it.  Without
 * Debian's etcd-server the group's tests skip with a message.
 */
#ifndef FERRY_TESTS_CLUSTER_ETCD_FIXTURE_H
#define FERRY_TESTS_CLUSTER_ETCD_FIXTURE_H

#include "cluster/etcd.h"
#include "common/tc.h"

typedef struct ef_etcd {
    char dir[512];
    tc_etcd etcd;
    fy_etcd *e; /* a handle to it, 2 s per request */
} ef_etcd;

/* Group setup: *state gets the fixture, or NULL (skip) without etcd. */
int ef_setup(void **state, const char *tag);
/* Group teardown (also resumes an etcd a test left stopped). */
int ef_teardown(void **state);

/* At the top of a test: f, or skip the test when there is no etcd. */
#define EF_FIXTURE()       \
    ef_etcd *f = *state;   \
    if (!f) {              \
        skip();            \
        return;            \
    }

#endif
