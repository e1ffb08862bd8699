/*
 * test_etcd.c - the etcd gateway client (src/cluster/etcd.c) against a
 * real etcd-server on loopback: keys with binary values, prefix lists,
 * compare-and-swap, leases that are renewed, revoked and left to expire,
 * and an endpoint list whose first member is down.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cluster/etcd.h"
#include "cluster/etcd_fixture.h"
#include "common/tc.h"

static int setup(void **state)
{
    return ef_setup(state, "etcd");
}

static int teardown(void **state)
{
    return ef_teardown(state);
}

static void test_put_get_binary(void **state)
{
    EF_FIXTURE();
    const char val[] = {'a', 0, (char)0xff, '"', '\\', '\n', 'z'};
    fy_etcd_kv kv;

    assert_int_equal(fy_etcd_put(f->e, "/t/bin key é", val, sizeof val, 0), 0);
    assert_int_equal(fy_etcd_get(f->e, "/t/bin key é", &kv), 0);
    assert_string_equal(kv.key, "/t/bin key é");
    assert_int_equal(kv.value_len, sizeof val);
    assert_memory_equal(kv.value, val, sizeof val);
    assert_true(kv.mod_rev > 0);
    assert_int_equal(kv.lease, 0);
    fy_etcd_kv_free(&kv);
    assert_int_equal(fy_etcd_get(f->e, "/t/absent", &kv), -ENOENT);
    assert_int_equal(fy_etcd_delete(f->e, "/t/bin key é"), 0);
    assert_int_equal(fy_etcd_get(f->e, "/t/bin key é", &kv), -ENOENT);
    assert_int_equal(fy_etcd_delete(f->e, "/t/bin key é"), 0); /* absent is fine */
}

static void test_cas(void **state)
{
    EF_FIXTURE();
    fy_etcd_kv kv;
    int64_t rev;

    assert_int_equal(fy_etcd_cas(f->e, "/t/cas", 0, "e1", 2, 0), 0);
    assert_int_equal(fy_etcd_cas(f->e, "/t/cas", 0, "e1'", 3, 0), -ESTALE);
    assert_int_equal(fy_etcd_get(f->e, "/t/cas", &kv), 0);
    rev = kv.mod_rev;
    fy_etcd_kv_free(&kv);
    assert_int_equal(fy_etcd_cas(f->e, "/t/cas", rev, "e2", 2, 0), 0);
    /* The revision read before the last write is stale now. */
    assert_int_equal(fy_etcd_cas(f->e, "/t/cas", rev, "e3", 2, 0), -ESTALE);
    assert_int_equal(fy_etcd_get(f->e, "/t/cas", &kv), 0);
    assert_int_equal(kv.value_len, 2);
    assert_memory_equal(kv.value, "e2", 2);
    fy_etcd_kv_free(&kv);
}

static void test_list_prefix(void **state)
{
    EF_FIXTURE();
    fy_etcd_kv *kvs;
    size_t n;

    assert_int_equal(fy_etcd_put(f->e, "/l/a/2", "2", 1, 0), 0);
    assert_int_equal(fy_etcd_put(f->e, "/l/a/1", "1", 1, 0), 0);
    assert_int_equal(fy_etcd_put(f->e, "/l/b/1", "x", 1, 0), 0);
    assert_int_equal(fy_etcd_put(f->e, "/l/a", "not under /l/a/", 15, 0), 0);
    assert_int_equal(fy_etcd_list(f->e, "/l/a/", &kvs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(kvs[0].key, "/l/a/1");
    assert_string_equal(kvs[1].key, "/l/a/2");
    for (size_t i = 0; i < n; i++)
        fy_etcd_kv_free(&kvs[i]);
    free(kvs);
    assert_int_equal(fy_etcd_list(f->e, "/l/none/", &kvs, &n), 0);
    assert_int_equal(n, 0);
    free(kvs);
}

static void test_lease_revoke(void **state)
{
    EF_FIXTURE();
    int64_t id;
    int ttl = 0;
    fy_etcd_kv kv;

    assert_int_equal(fy_etcd_lease_grant(f->e, 10, &id), 0);
    assert_int_equal(fy_etcd_put(f->e, "/t/leased", "n1", 2, id), 0);
    assert_int_equal(fy_etcd_get(f->e, "/t/leased", &kv), 0);
    assert_true(kv.lease == id);
    fy_etcd_kv_free(&kv);
    assert_int_equal(fy_etcd_lease_keepalive(f->e, id, &ttl), 0);
    assert_true(ttl > 0 && ttl <= 10);
    assert_int_equal(fy_etcd_lease_revoke(f->e, id), 0);
    assert_int_equal(fy_etcd_get(f->e, "/t/leased", &kv), -ENOENT);
    assert_int_equal(fy_etcd_lease_keepalive(f->e, id, &ttl), -ENOENT);
    assert_int_equal(fy_etcd_lease_revoke(f->e, id), -ENOENT);
    /* A put under a lease that is gone is refused, not stored. */
    assert_int_equal(fy_etcd_put(f->e, "/t/leased", "n1", 2, id), -ENOENT);
}

static void test_lease_expires(void **state)
{
    EF_FIXTURE();
    int64_t id;
    fy_etcd_kv kv;
    int rc = 0;

    assert_int_equal(fy_etcd_lease_grant(f->e, 2, &id), 0);
    assert_int_equal(fy_etcd_cas(f->e, "/t/expiring", 0, "n1", 2, id), 0);
    /* etcd may round a short TTL up (its minimum is about 1.5 election
     * timeouts); wait at most 10 s in 100 ms steps. */
    for (int i = 0; i < 100 && (rc = fy_etcd_get(f->e, "/t/expiring", &kv)) == 0; i++) {
        fy_etcd_kv_free(&kv);
        tc_sleep_ms(100);
    }
    assert_int_equal(rc, -ENOENT);
    /* The key is free again for whoever asks next. */
    assert_int_equal(fy_etcd_cas(f->e, "/t/expiring", 0, "n2", 2, 0), 0);
}

static void test_endpoint_list(void **state)
{
    EF_FIXTURE();
    char list[256];
    uint16_t dead;
    fy_etcd *e;
    fy_etcd_kv kv;

    assert_int_equal(tc_free_port(&dead), 0);
    snprintf(list, sizeof list, "127.0.0.1:%u, %s/", dead, f->etcd.url);
    assert_int_equal(fy_etcd_open(list, 1000, &e), 0);
    assert_int_equal(fy_etcd_put(e, "/t/ep", "v", 1, 0), 0);
    assert_string_equal(fy_etcd_endpoint(e), f->etcd.url);
    assert_int_equal(fy_etcd_get(e, "/t/ep", &kv), 0);
    fy_etcd_kv_free(&kv);
    fy_etcd_close(e);

    snprintf(list, sizeof list, "http://127.0.0.1:%u", dead);
    assert_int_equal(fy_etcd_open(list, 500, &e), 0);
    assert_int_equal(fy_etcd_put(e, "/t/ep", "v", 1, 0), -ECONNREFUSED);
    fy_etcd_close(e);
    assert_int_equal(fy_etcd_open(" , ", 500, &e), -EINVAL);
    assert_null(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_binary), cmocka_unit_test(test_cas),
        cmocka_unit_test(test_list_prefix),    cmocka_unit_test(test_lease_revoke),
        cmocka_unit_test(test_lease_expires),  cmocka_unit_test(test_endpoint_list),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
