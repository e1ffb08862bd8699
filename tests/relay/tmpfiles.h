/*
 * tmpfiles.h - a cmocka fixture for tests that write small files: a
 * temp directory (tc_tmpdir), files written into it by name, and a
 * teardown that removes them and fails when a test left anything else
 * behind.  Header-only: each test program includes it once.
 */
#ifndef FERRY_TESTS_RELAY_TMPFILES_H
#define FERRY_TESTS_RELAY_TMPFILES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tc.h"

struct tmp {
    char dir[64];
    char path[16][128];
    int n;
    void *obj;                /* a test's object, released by the teardown */
    void (*obj_free)(void *); /* how (NULL: nothing to release) */
};

/* Setup: name the directory after the test program (tag). */
static inline int tmp_setup_tag(void **state, const char *tag)
{
    struct tmp *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    char name[32];
    snprintf(name, sizeof name, "test-%s", tag);
    if (tc_tmpdir(t->dir, sizeof t->dir, name) < 0) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static inline int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    int rc = 0;
    if (t->obj_free && t->obj)
        t->obj_free(t->obj);
    for (int i = 0; i < t->n; i++)
        if (unlink(t->path[i]) < 0)
            rc = -1;
    if (rmdir(t->dir) < 0) /* fails if a test left a file behind */
        rc = -1;
    free(t);
    return rc;
}

/* Write text to DIR/name and return its path (owned by the fixture). */
static inline const char *tmp_write(struct tmp *t, const char *name, const char *text)
{
    assert_true(t->n < 16);
    char *p = t->path[t->n++], buf[sizeof t->path[0]];
    snprintf(buf, sizeof buf, "%s/%s", t->dir, name);
    memcpy(p, buf, sizeof buf);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return p;
}

#endif
