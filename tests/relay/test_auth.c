/*
 * test_auth.c - the token table (src/relay/auth.c): rule matching as the
 * code defines it (a rule grants its rights to one token on the channels
 * its fnmatch(3) glob matches; a request is allowed when one rule grants
 * every right asked for), and the token file's format and errors.
 *
 * Token files are written to a temp directory (tc_tmpdir) that each test
 * removes again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/proto.h"
#include "tmpfiles.h"
#include "relay/auth.h"

#define PUB FY_AUTH_PUBLISH
#define SUB FY_AUTH_SUBSCRIBE

/* ---- fixture: a temporary directory for token files --------------------------- */

static int tmp_setup(void **state)
{
    return tmp_setup_tag(state, "auth");
}

static void auth_free(void *a)
{
    fy_auth_free(a);
}

/* Write text as a token file and load it (the teardown frees it); fails
 * the test on error. */
static fy_auth *load(struct tmp *t, const char *text)
{
    char err[256] = "";
    const char *p = tmp_write(t, "tokens", text);
    fy_auth *a = NULL;
    fy_auth_free(t->obj);
    t->obj = NULL;
    t->obj_free = auth_free;
    int rc = fy_auth_load(p, &a, err, sizeof err);
    if (rc != 0)
        fail_msg("fy_auth_load: %d %s", rc, err);
    assert_non_null(a);
    t->obj = a;
    unlink(p);
    t->n--;
    return a;
}

struct ask {
    const char *token;
    unsigned right;
    const char *channel;
    bool ok;
};

static void check_asks(const fy_auth *a, const struct ask *q, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fy_auth_allows(a, q[i].token, q[i].right, q[i].channel) != q[i].ok)
            fail_msg("ask %zu: token '%s' right %u channel '%s': expected %s", i, q[i].token,
                     q[i].right, q[i].channel, q[i].ok ? "allowed" : "denied");
}

/* ---- matching ------------------------------------------------------------------- */

static void test_no_table_allows_everyone(void **state)
{
    (void)state;
    assert_true(fy_auth_allows(NULL, "", PUB, "logs"));
    assert_true(fy_auth_allows(NULL, "anything", SUB, "x"));
    assert_true(fy_auth_allows(NULL, "", PUB | SUB, "builds-1"));
    assert_int_equal(fy_auth_rules(NULL), 0);
    fy_auth_free(NULL);
}

static void test_publish_vs_subscribe(void **state)
{
    struct tmp *t = *state;
    const fy_auth *a = load(t,
        "alice publish logs\n"
        "bob subscribe logs\n"
        "carol both logs\n");
    static const struct ask q[] = {
        {"alice", PUB, "logs", true},
        {"alice", SUB, "logs", false},
        {"bob", PUB, "logs", false},
        {"bob", SUB, "logs", true},
        {"carol", PUB, "logs", true},
        {"carol", SUB, "logs", true},
        {"carol", PUB | SUB, "logs", true},
        {"alice", PUB | SUB, "logs", false},
    };
    assert_int_equal(fy_auth_rules(a), 3);
    check_asks(a, q, sizeof q / sizeof q[0]);
}

static void test_per_channel(void **state)
{
    struct tmp *t = *state;
    const fy_auth *a = load(t,
        "alice both logs\n"
        "alice publish metrics\n");
    static const struct ask q[] = {
        {"alice", PUB, "logs", true},
        {"alice", PUB, "metrics", true},
        {"alice", SUB, "metrics", false},
        {"alice", PUB, "logs2", false}, /* a name is not a prefix */
        {"alice", PUB, "log", false},
        {"alice", PUB, "Logs", false},  /* case matters */
        {"alice", SUB, "other", false},
    };
    check_asks(a, q, sizeof q / sizeof q[0]);
}

static void test_globs(void **state)
{
    struct tmp *t = *state;
    const fy_auth *a = load(t,
        "ci publish builds-*\n"
        "dash subscribe *\n"
        "one subscribe log?\n"
        "set both [ab]-*\n"
        "neg both [!x]*\n"
        "lit both a\\*b\n");
    static const struct ask q[] = {
        {"ci", PUB, "builds-1", true},
        {"ci", PUB, "builds-", true},  /* '*' matches nothing too */
        {"ci", PUB, "builds", false},
        {"ci", PUB, "build-1", false},
        {"ci", PUB, "xbuilds-1", false}, /* globs are anchored */
        {"ci", SUB, "builds-1", false},
        {"dash", SUB, "anything", true},
        {"dash", SUB, ".hidden", true}, /* fnmatch flags 0: '*' matches a leading '.' */
        {"dash", PUB, "anything", false},
        {"one", SUB, "logs", true},
        {"one", SUB, "log", false},
        {"one", SUB, "logs1", false},
        {"set", PUB, "a-1", true},
        {"set", SUB, "b-2", true},
        {"set", PUB, "c-1", false},
        {"neg", PUB, "yes", true},
        {"neg", PUB, "xno", false},
        {"lit", PUB, "a*b", true},   /* a backslash quotes */
        {"lit", PUB, "axxb", false},
    };
    check_asks(a, q, sizeof q / sizeof q[0]);
}

static void test_wrong_token(void **state)
{
    struct tmp *t = *state;
    const fy_auth *a = load(t, "s3cret both *\n");
    static const struct ask q[] = {
        {"s3cret", PUB, "logs", true},
        {"s3cre", PUB, "logs", false},   /* a prefix */
        {"s3cret2", PUB, "logs", false}, /* longer */
        {"S3CRET", PUB, "logs", false},  /* case */
        {"s3cret ", PUB, "logs", false},
        {"x3cret", SUB, "logs", false},
        {"*", PUB, "logs", false},       /* tokens are not globs */
    };
    check_asks(a, q, sizeof q / sizeof q[0]);
}

/* A client without a token sends "": no rule has an empty token. */
static void test_no_token(void **state)
{
    struct tmp *t = *state;
    const fy_auth *a = load(t, "alice both *\nbob publish *\n");
    assert_false(fy_auth_allows(a, "", PUB, "logs"));
    assert_false(fy_auth_allows(a, "", SUB, "logs"));
}

/* Rights add up across rules only one right at a time: asking for both
 * needs one rule that grants both. */
static void test_rules_of_one_token(void **state)
{
    struct tmp *t = *state;
    const fy_auth *a = load(t,
        "dev publish dev-*\n"
        "dev subscribe *\n"
        "split publish x\n"
        "split subscribe x\n");
    static const struct ask q[] = {
        {"dev", PUB, "dev-1", true},
        {"dev", SUB, "dev-1", true},
        {"dev", PUB, "prod", false},
        {"dev", SUB, "prod", true},
        {"dev", PUB | SUB, "prod", false},
        {"split", PUB, "x", true},
        {"split", SUB, "x", true},
        {"split", PUB | SUB, "x", false},
    };
    check_asks(a, q, sizeof q / sizeof q[0]);
}

/* Tokens and globs up to the protocol's limits (255 bytes) load and match. */
static void test_longest_token_and_glob(void **state)
{
    struct tmp *t = *state;
    char tok[FY_TOKEN_MAX + 1], glob[FY_NAME_MAX + 1], text[1024];
    memset(tok, 't', FY_TOKEN_MAX);
    tok[FY_TOKEN_MAX] = 0;
    memset(glob, 'g', FY_NAME_MAX);
    glob[FY_NAME_MAX] = 0;
    snprintf(text, sizeof text, "%s both %s\n", tok, glob);
    const fy_auth *a = load(t, text);
    assert_int_equal(fy_auth_rules(a), 1);
    assert_true(fy_auth_allows(a, tok, PUB, glob));
    tok[FY_TOKEN_MAX - 1] = 0;
    assert_false(fy_auth_allows(a, tok, PUB, glob));
}

/* ---- the file ---------------------------------------------------------------------- */

static void test_comments_blank_lines_whitespace(void **state)
{
    struct tmp *t = *state;
    const fy_auth *a = load(t,
        "# token rules\n"
        "\n"
        "   \t\n"
        "  # indented comment: nobody both *\n"
        "alice publish logs # trailing comment\n"
        "\tbob \t subscribe\t  logs  \n"
        "carol both metrics\r\n"
        "#dave both *\n"
        "erin both last"); /* no newline at the end */
    static const struct ask q[] = {
        {"alice", PUB, "logs", true},
        {"bob", SUB, "logs", true},
        {"carol", SUB, "metrics", true},
        {"erin", PUB, "last", true},
        {"nobody", PUB, "logs", false},
        {"dave", PUB, "logs", false},
    };
    assert_int_equal(fy_auth_rules(a), 4);
    check_asks(a, q, sizeof q / sizeof q[0]);
}

/* A token file without rules lets nobody in (unlike having no file). */
static void test_empty_file(void **state)
{
    struct tmp *t = *state;
    const fy_auth *a = load(t, "");
    assert_int_equal(fy_auth_rules(a), 0);
    assert_false(fy_auth_allows(a, "", PUB, "logs"));
    assert_false(fy_auth_allows(a, "alice", SUB, "logs"));

    a = load(t, "# all commented out\n#alice both *\n\n");
    assert_int_equal(fy_auth_rules(a), 0);
    assert_false(fy_auth_allows(a, "alice", PUB, "logs"));
}

/* `deny-all`: no rules, on purpose (a reload to it is taken); with rules
 * beside it, an error. */
static void test_deny_all(void **state)
{
    struct tmp *t = *state;
    const fy_auth *a = load(t, "# maintenance\n  deny-all  \n");
    assert_int_equal(fy_auth_rules(a), 0);
    assert_true(fy_auth_deny_all(a));
    assert_false(fy_auth_allows(a, "", PUB, "logs"));
    a = load(t, "alice both *\n");
    assert_false(fy_auth_deny_all(a));

    char err[256] = "";
    fy_auth *b = NULL;
    const char *p = tmp_write(t, "mixed", "deny-all\nalice both *\n");
    assert_int_equal(fy_auth_load(p, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "deny-all in a file with 1 rules"));
    assert_null(b);
}

/* A table freed by fy_auth_retire while no one reads it (readers'
 * sections are exercised by the relay tests, under TSan too). */
static void test_retire(void **state)
{
    struct tmp *t = *state;
    char err[256] = "";
    fy_auth *a = NULL;
    const char *p = tmp_write(t, "r", "alice both *\n");
    assert_int_equal(fy_auth_load(p, &a, err, sizeof err), 0);
    assert_int_equal(fy_auth_read_begin(), 0);
    assert_true(fy_auth_allows(a, "alice", PUB, "logs"));
    fy_auth_read_end();
    fy_auth_retire(a);
    fy_auth_retire(NULL);
}

static void test_many_rules(void **state)
{
    struct tmp *t = *state;
    char text[4096], tok[32], ch[32];
    size_t o = 0;
    for (int i = 0; i < 40; i++) /* past the first few reallocations */
        o += (size_t)snprintf(text + o, sizeof text - o, "tok%d %s ch%d\n", i,
                              i % 2 ? "subscribe" : "publish", i);
    const fy_auth *a = load(t, text);
    assert_int_equal(fy_auth_rules(a), 40);
    for (int i = 0; i < 40; i++) {
        snprintf(tok, sizeof tok, "tok%d", i);
        snprintf(ch, sizeof ch, "ch%d", i);
        assert_true(fy_auth_allows(a, tok, i % 2 ? SUB : PUB, ch));
        assert_false(fy_auth_allows(a, tok, i % 2 ? PUB : SUB, ch));
        snprintf(ch, sizeof ch, "ch%d", (i + 1) % 40);
        assert_false(fy_auth_allows(a, tok, PUB, ch));
        assert_false(fy_auth_allows(a, tok, SUB, ch));
    }
}

/* Each bad line is an error naming the file and line; nothing is returned. */
static void test_bad_lines(void **state)
{
    struct tmp *t = *state;
    static char longtok[FY_TOKEN_MAX + 2], longglob[FY_NAME_MAX + 2];
    memset(longtok, 't', FY_TOKEN_MAX + 1);
    memset(longglob, 'g', FY_NAME_MAX + 1);
    char toolong_tok[400], toolong_glob[400];
    snprintf(toolong_tok, sizeof toolong_tok, "%s both x", longtok);
    snprintf(toolong_glob, sizeof toolong_glob, "alice both %s", longglob);

    const struct {
        const char *line;
        int rc;
    } cases[] = {
        {"alice", -EINVAL},
        {"alice publish", -EINVAL},
        {"alice publish logs extra", -EINVAL},
        {"alice write logs", -EINVAL},
        {"alice PUBLISH logs", -EINVAL},
        {"alice pub logs", -EINVAL},
        {"alice both logs # fine # still a comment", 0},
        {toolong_tok, -E2BIG},
        {toolong_glob, -E2BIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024], name[32], err[512] = "", want[512];
        static char sentinel;
        fy_auth *a = (fy_auth *)&sentinel; /* must not change on failure */
        snprintf(name, sizeof name, "bad%zu", i);
        snprintf(text, sizeof text, "# rules\ngood both *\n%s\ngood2 both *\n", cases[i].line);
        const char *p = tmp_write(t, name, text);
        int rc = fy_auth_load(p, &a, err, sizeof err);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(fy_auth_rules(a), 3);
            fy_auth_free(a);
            continue;
        }
        snprintf(want, sizeof want, "%s:3: expected 'TOKEN publish|subscribe|both|admin CHANNEL-GLOB'", p);
        assert_string_equal(err, want);
        assert_ptr_equal(a, (fy_auth *)&sentinel);
    }
}

/* A line longer than the reader's buffer is an error, not two lines: the
 * tail of a long comment must not become a rule. */
static void test_overlong_line(void **state)
{
    struct tmp *t = *state;
    char text[1100], err[512] = "", want[512];
    fy_auth *a = NULL;

    text[0] = '#'; /* '#' and 1022 more bytes fill the reader's buffer */
    memset(text + 1, 'c', 1022);
    snprintf(text + 1023, sizeof text - 1023, " mallory both *\n");
    const char *p = tmp_write(t, "long", text);
    assert_int_equal(fy_auth_load(p, &a, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:1: line too long (max 1022 bytes)", p);
    assert_string_equal(err, want);
    assert_null(a);

    /* 1022 bytes and a newline still fit. */
    memset(text + 1, 'c', 1021);
    snprintf(text + 1022, sizeof text - 1022, "\nalice both *\n");
    a = load(t, text);
    assert_int_equal(fy_auth_rules(a), 1);
    assert_false(fy_auth_allows(a, "mallory", PUB, "logs"));
}

static void test_not_found(void **state)
{
    struct tmp *t = *state;
    char p[128], err[256], want[256];
    fy_auth *a = NULL;

    snprintf(p, sizeof p, "%s/missing", t->dir);
    assert_int_equal(fy_auth_load(p, &a, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
    assert_string_equal(err, want);
    assert_null(a);
}

/* A directory opens but cannot be read: an error, not an empty table
 * (which would turn every client away with no word why). */
static void test_directory(void **state)
{
    struct tmp *t = *state;
    char err[256] = "", want[256];
    fy_auth *a = NULL;

    assert_int_equal(fy_auth_load(t->dir, &a, err, sizeof err), -EISDIR);
    snprintf(want, sizeof want, "%s: cannot read: Is a directory", t->dir);
    assert_string_equal(err, want);
    assert_null(a);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_table_allows_everyone),
        T(test_publish_vs_subscribe),
        T(test_per_channel),
        T(test_globs),
        T(test_wrong_token),
        T(test_no_token),
        T(test_rules_of_one_token),
        T(test_longest_token_and_glob),
        T(test_comments_blank_lines_whitespace),
        T(test_empty_file),
        T(test_deny_all),
        T(test_retire),
        T(test_many_rules),
        T(test_bad_lines),
        T(test_overlong_line),
        T(test_not_found),
        T(test_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
