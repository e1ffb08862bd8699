/*
 * test_cli_query.c - `ferry ls|info|get|rm|retain` and `recv --stored`
 * against a real ferryd holding several channels: listings (key=value and
 * --json parsed), fetching by name (latest and --seq), who is connected
 * with its client name, the admin right for rm and retain, deleting a
 * file (never listed or fetched again, its segments freed) and a channel
 * (refused while a receiver is connected), the channel's own retention;
 * a receiver catching up is never sent a deleted file (SKIP); the names
 * of a tree (paths) in get and rm.
 */
#include <dirent.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/conn.h"
#include "cli/query.h"
#include "ferry/proto.h"
#include "harness.h"

#define T_MS 30000

static const char *g_addr;

/* Run `ferry ARGS... --server ADDR` as tag; its exit code. */
static int ferry(fy_ct *t, const char *tag, const char *const *args)
{
    const char *argv[32];
    int n = 0;
    while (args[n] && n < 28) {
        argv[n] = args[n];
        n++;
    }
    argv[n++] = "--server";
    argv[n++] = g_addr;
    argv[n] = NULL;
    return fy_ct_run(t, tag, argv, T_MS);
}

static const char *out_of(fy_ct *t, const char *tag, char *buf, size_t cap)
{
    char name[64], p[FY_CT_PATH * 2];
    snprintf(name, sizeof name, "%s.out", tag);
    return fy_ct_slurp(fy_ct_path(t, name, p), buf, cap);
}

/* Lines of tag's stdout that contain needle. */
static int lines_with(fy_ct *t, const char *tag, const char *needle)
{
    char buf[65536];
    int n = 0;
    out_of(t, tag, buf, sizeof buf);
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
        n += strstr(l, needle) != NULL;
    return n;
}

/* Every line a JSON object with a "type" key; how many (-1: not JSON). */
static int json_records(fy_ct *t, const char *tag)
{
    char buf[65536];
    int n = 0;
    out_of(t, tag, buf, sizeof buf);
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
        size_t len = strlen(l);
        if (len < 2 || l[0] != '{' || l[len - 1] != '}' || strncmp(l, "{\"type\":\"", 9) != 0)
            return -1;
        n++;
    }
    return n;
}

static void send_files(fy_ct *t, const char *tag, const char *channel, const char *const *files)
{
    const char *more[16] = {"--token", "pub"};
    int n = 2;
    for (int i = 0; files[i]; i++)
        more[n++] = files[i];
    more[n] = NULL;
    fy_ct_expect_exit(t, fy_ct_send(t, tag, channel, more), tag, T_MS, 0);
}

/* A relay with tokens pub (both), adm (admin), ro (subscribe docs only),
 * channel docs holding a.bin, b.txt, a.bin (a second version) and pics
 * holding c.bin. */
static void setup_relay(fy_ct *t, const char *const *extra, uint8_t a1[32], uint8_t a2[32])
{
    char auth[FY_CT_PATH], p1[FY_CT_PATH], p2[FY_CT_PATH], p3[FY_CT_PATH], d[FY_CT_PATH];
    FILE *f = fopen(fy_ct_path(t, "auth", auth), "w");
    assert_non_null(f);
    fputs("pub both *\nadm admin *\nro subscribe docs\n", f);
    fclose(f);
    const char *argv[16] = {"--auth", auth};
    int n = 2;
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    fy_ct_daemon_start(t, argv);
    g_addr = t->daemon.addr;
    fy_ct_mkdir(fy_ct_path(t, "v1", d));
    fy_ct_mkdir(fy_ct_path(t, "v2", d));
    fy_ct_make_file(fy_ct_path(t, "v1/a.bin", p1), 200000, 1, a1);
    fy_ct_make_file(fy_ct_path(t, "b.txt", p2), 1000, 2, NULL);
    send_files(t, "s1", "docs", (const char *[]){p1, p2, NULL});
    fy_ct_make_file(fy_ct_path(t, "v2/a.bin", p1), 150000, 3, a2);
    send_files(t, "s2", "docs", (const char *[]){p1, NULL});
    fy_ct_make_file(fy_ct_path(t, "c.bin", p3), 5000, 4, NULL);
    send_files(t, "s3", "pics", (const char *[]){p3, NULL});
}

static void test_ls_get(void **state)
{
    fy_ct *t = *state;
    uint8_t a1[32], a2[32];
    char p[FY_CT_PATH], buf[4096];
    setup_relay(t, NULL, a1, a2);

    assert_int_equal(ferry(t, "ls", (const char *[]){"ls", "--token", "pub", NULL}), 0);
    assert_int_equal(lines_with(t, "ls", "type=channel "), 2);
    assert_int_equal(lines_with(t, "ls", "channel=docs files=3 "), 1);
    assert_int_equal(lines_with(t, "ls", "channel=pics files=1 "), 1);
    /* a token that may receive docs only sees docs */
    assert_int_equal(ferry(t, "ls-ro", (const char *[]){"ls", "--token", "ro", NULL}), 0);
    assert_int_equal(lines_with(t, "ls-ro", "type=channel "), 1);
    assert_int_equal(lines_with(t, "ls-ro", "channel=docs"), 1);
    /* one channel, as JSON */
    assert_int_equal(ferry(t, "lsj", (const char *[]){"ls", "docs", "--json", "--token", "pub",
                                                       NULL}), 0);
    assert_int_equal(json_records(t, "lsj"), 4);
    assert_int_equal(lines_with(t, "lsj", "\"type\":\"file\",\"channel\":\"docs\",\"name\":\"a.bin\""), 2);
    assert_int_equal(lines_with(t, "lsj", "\"size\":150000"), 1);
    /* the latest a.bin, then the first one by its seq */
    fy_ct_path(t, "got", p);
    assert_int_equal(ferry(t, "get", (const char *[]){"get", "docs", "a.bin", "b.txt", "--out", p,
                                                       "--token", "pub", "--quiet", NULL}), 0);
    fy_ct_assert_same(fy_ct_path(t, "got/a.bin", p), a2);
    assert_true(fy_ct_size(fy_ct_path(t, "got/b.txt", p)) == 1000);
    assert_true(fy_ct_size(fy_ct_path(t, "got/.ferry-state", p)) < 0); /* no state left behind */
    assert_int_equal(ferry(t, "get1", (const char *[]){"get", "docs", "a.bin", "--seq", "1", "--out",
                                                        fy_ct_path(t, "got1", p), "--token", "pub",
                                                        "--quiet", NULL}), 0);
    fy_ct_assert_same(fy_ct_path(t, "got1/a.bin", p), a1);
    /* a name the channel does not hold: exit 3, nothing fetched */
    assert_int_equal(ferry(t, "get-no", (const char *[]){"get", "docs", "b.txt", "nope.bin", "--out",
                                                          fy_ct_path(t, "got2", p), "--token",
                                                          "pub", NULL}), 3);
    assert_true(fy_ct_contains(fy_ct_path(t, "get-no.err", buf), "name=nope.bin"));
    assert_true(fy_ct_size(fy_ct_path(t, "got2/b.txt", p)) < 0);
    /* a channel the relay does not have */
    assert_int_equal(ferry(t, "ls-no", (const char *[]){"ls", "dcos", "--token", "pub", NULL}), 3);
    assert_true(fy_ct_contains(fy_ct_path(t, "ls-no.err", buf), "FY_ENOCHAN"));

    /* names of a tree (send -r) are paths: get and rm take them */
    uint8_t c1[32];
    char d[FY_CT_PATH];
    fy_ct_mkdir(fy_ct_path(t, "tree", d));
    fy_ct_mkdir(fy_ct_path(t, "tree/sub", d));
    fy_ct_make_file(fy_ct_path(t, "tree/sub/c.bin", p), 3000, 5, c1);
    fy_ct_make_file(fy_ct_path(t, "tree/top.txt", p), 100, 6, NULL);
    send_files(t, "s-tree", "trees", (const char *[]){"-r", fy_ct_path(t, "tree", d), NULL});
    assert_int_equal(ferry(t, "get-tree", (const char *[]){"get", "trees", "tree/sub/c.bin",
                                                            "--out", fy_ct_path(t, "gt", d),
                                                            "--token", "pub", "-q", NULL}), 0);
    fy_ct_assert_same(fy_ct_path(t, "gt/tree/sub/c.bin", p), c1);
    assert_int_equal(ferry(t, "rm-tree", (const char *[]){"rm", "trees", "tree/sub/c.bin",
                                                           "--token", "adm", NULL}), 0);
    assert_int_equal(lines_with(t, "rm-tree", "type=deleted channel=trees name=tree/sub/c.bin "), 1);
    assert_int_equal(ferry(t, "ls-tree", (const char *[]){"ls", "trees", "--token", "pub", NULL}), 0);
    assert_int_equal(lines_with(t, "ls-tree", "name=tree/sub/c.bin "), 0);
    assert_int_equal(lines_with(t, "ls-tree", "name=tree/top.txt "), 1);
    /* a name that is not a relative path: a usage error before any connection */
    assert_int_equal(ferry(t, "rm-bad", (const char *[]){"rm", "trees", "../x", "--token", "adm",
                                                          NULL}), 64);
}

static void test_info_and_stored(void **state)
{
    fy_ct *t = *state;
    uint8_t a1[32], a2[32];
    char p[FY_CT_PATH], p2[FY_CT_PATH], ch[FY_CT_PATH * 2];
    setup_relay(t, NULL, a1, a2);

    /* a live receiver with a client name shows in info, and in ferryd's log */
    pid_t r = fy_ct_recv(t, "live", "docs", fy_ct_path(t, "live", p),
                         (const char *[]){"--token", "pub", "--client-name", "bob@lab", "--quiet",
                                          NULL});
    int found = 0;
    for (int i = 0; i < 100 && !found; i++) {
        assert_int_equal(ferry(t, "info", (const char *[]){"info", "docs", "--token", "ro", NULL}), 0);
        found = lines_with(t, "info", "type=receiver channel=docs client=bob@lab ");
        if (!found)
            fy_ct_sleep_ms(100);
    }
    assert_int_equal(found, 1);
    assert_int_equal(lines_with(t, "info", "type=retain channel=docs retain_bytes=0 "), 1);
    assert_int_equal(lines_with(t, "info", "lag_frames="), 1);
    char log[FY_CT_PATH];
    snprintf(log, sizeof log, "%s/ferryd-0.log", t->dir);
    assert_true(fy_ct_contains(log, "client=bob@lab"));
    fy_ct_kill(r, SIGTERM);
    fy_ct_wait(t, r, T_MS);

    /* a sender, with its name in the hello: shown by info; its channel is
     * not deleted while it is connected */
    fy_cli_conn *k = NULL;
    fy_welcome w;
    fy_hello h = {.role = FY_ROLE_SENDER, .flags = FY_HELLO_F_CLIENT};
    strcpy(h.channel, "pics");
    strcpy(h.token, "pub");
    strcpy(h.client, "carol@ci");
    assert_int_equal(fy_cli_conn_open(g_addr, NULL, &k), 0);
    assert_int_equal(fy_cli_conn_hello(k, &h, 10000, &w), 0);
    assert_int_equal(ferry(t, "info-s", (const char *[]){"info", "pics", "--token", "pub", NULL}), 0);
    assert_int_equal(lines_with(t, "info-s", "type=sender channel=pics client=carol@ci "), 1);
    assert_int_equal(ferry(t, "rm-s", (const char *[]){"rm", "pics", "--token", "adm", NULL}), 3);
    assert_true(fy_ct_contains(fy_ct_path(t, "rm-s.err", p), "FY_EINUSE"));
    fy_cli_conn_close(k, true);

    /* recv --stored: what is stored, then exit 0 */
    pid_t s = fy_ct_recv(t, "stored", "docs", fy_ct_path(t, "st", p2),
                         (const char *[]){"--stored", "--token", "pub", "--quiet", NULL});
    fy_ct_expect_exit(t, s, "stored", T_MS, 0);
    /* both versions of a.bin are stored: the second, a different file of
     * the same name, is kept beside the first (--on-conflict rename) */
    fy_ct_assert_same(fy_ct_path(t, "st/a.bin", p2), a1);
    fy_ct_assert_same(fy_ct_path(t, "st/a.bin.1", p2), a2);
    /* a channel the relay does not have: exit 3, and none is made */
    s = fy_ct_recv(t, "stored-no", "dcos", fy_ct_path(t, "st2", p2),
                   (const char *[]){"--stored", "--token", "pub", NULL});
    fy_ct_expect_exit(t, s, "stored-no", T_MS, 3);
    snprintf(ch, sizeof ch, "%s/channels/dcos", t->data);
    struct stat st;
    assert_true(stat(ch, &st) != 0);

    /* a receiver that starts inside a deleted file, or before one, is not
     * sent it: b.txt deleted, --from-seq its first seq gets a.bin v2 */
    assert_int_equal(ferry(t, "ls-b", (const char *[]){"ls", "docs", "--token", "pub", NULL}), 0);
    char out[8192], seq[24] = "";
    out_of(t, "ls-b", out, sizeof out);
    for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"))
        if (strstr(l, "name=b.txt"))
            fy_cli_kv_get(l, "seq_first", seq, sizeof seq);
    assert_true(seq[0] != 0);
    assert_int_equal(ferry(t, "rm-b", (const char *[]){"rm", "docs", "b.txt", "--token", "adm", NULL}), 0);
    s = fy_ct_recv(t, "from-b", "docs", fy_ct_path(t, "fb", p2),
                   (const char *[]){"--from-seq", seq, "--count", "1", "--token", "pub", "--quiet",
                                    NULL});
    fy_ct_expect_exit(t, s, "from-b", T_MS, 0);
    fy_ct_assert_same(fy_ct_path(t, "fb/a.bin", p2), a2);
    assert_true(fy_ct_size(fy_ct_path(t, "fb/b.txt", p2)) < 0);
    s = fy_ct_recv(t, "from-1", "docs", fy_ct_path(t, "f1", p2),
                   (const char *[]){"--from-start", "--count", "2", "--token", "pub", "--quiet",
                                    NULL});
    fy_ct_expect_exit(t, s, "from-1", T_MS, 0);
    assert_int_equal(lines_with(t, "from-1", "file=a.bin"), 2);
    assert_int_equal(lines_with(t, "from-1", "file=b.txt"), 0);
}

/* Data segments in DATA/channels/ch. */
static int segments(fy_ct *t, const char *ch)
{
    char d[FY_CT_PATH * 2];
    snprintf(d, sizeof d, "%s/channels/%s", t->data, ch);
    DIR *dir = opendir(d);
    int n = 0;
    struct dirent *e;
    if (!dir)
        return -1;
    while ((e = readdir(dir)))
        n += strlen(e->d_name) > 4 && !strcmp(e->d_name + strlen(e->d_name) - 4, ".log");
    closedir(dir);
    return n;
}

static void test_rm_retain(void **state)
{
    fy_ct *t = *state;
    uint8_t a1[32], a2[32];
    char p[FY_CT_PATH], d[FY_CT_PATH * 2];
    /* small segments, so deleting the first files frees whole ones */
    setup_relay(t, (const char *[]){"--max-payload", "16K", "--segment-bytes", "64K", NULL}, a1, a2);

    /* rm needs the admin right */
    assert_int_equal(ferry(t, "rm-pub", (const char *[]){"rm", "docs", "a.bin", "--token", "pub",
                                                          NULL}), 3);
    assert_true(fy_ct_contains(fy_ct_path(t, "rm-pub.err", p), "FY_EAUTH"));
    int segs0 = segments(t, "docs");
    assert_true(segs0 >= 4);
    assert_int_equal(ferry(t, "rm", (const char *[]){"rm", "docs", "a.bin", "--token", "adm",
                                                      "--json", NULL}), 0);
    assert_int_equal(json_records(t, "rm"), 2);
    assert_int_equal(lines_with(t, "rm", "\"type\":\"deleted\""), 2);
    assert_int_equal(ferry(t, "ls-after", (const char *[]){"ls", "docs", "--token", "pub", NULL}), 0);
    assert_int_equal(lines_with(t, "ls-after", "name=a.bin"), 0);
    assert_int_equal(lines_with(t, "ls-after", "name=b.txt"), 1);
    assert_int_equal(ferry(t, "get-rm", (const char *[]){"get", "docs", "a.bin", "--out",
                                                          fy_ct_path(t, "g", p), "--token", "pub",
                                                          NULL}), 3);
    /* catch-up leaves deleted files out: only b.txt arrives */
    pid_t s = fy_ct_recv(t, "stored", "docs", fy_ct_path(t, "st", p),
                         (const char *[]){"--stored", "--token", "pub", "--quiet", NULL});
    fy_ct_expect_exit(t, s, "stored", T_MS, 0);
    assert_true(fy_ct_size(fy_ct_path(t, "st/b.txt", p)) == 1000);
    assert_true(fy_ct_size(fy_ct_path(t, "st/a.bin", p)) < 0);
    assert_int_equal(lines_with(t, "stored", "file="), 1);
    /* a.bin (v1) fills the first segments alone: the retention pass frees them */
    int segs = segs0;
    for (int i = 0; i < 50 && segs == segs0; i++) {
        fy_ct_sleep_ms(100);
        segs = segments(t, "docs");
    }
    assert_true(segs < segs0);
    /* deleting a name the channel does not hold: exit 3 */
    assert_int_equal(ferry(t, "rm-no", (const char *[]){"rm", "docs", "a.bin", "--token", "adm",
                                                         NULL}), 3);

    /* retention of the channel's own */
    assert_int_equal(ferry(t, "ret-pub", (const char *[]){"retain", "docs", "--bytes", "1M",
                                                           "--token", "pub", NULL}), 3);
    assert_int_equal(ferry(t, "ret", (const char *[]){"retain", "docs", "--bytes", "1M", "--age",
                                                       "2h", "--token", "adm", NULL}), 0);
    assert_int_equal(ferry(t, "info", (const char *[]){"info", "docs", "--json", "--token", "pub",
                                                        NULL}), 0);
    assert_int_equal(lines_with(t, "info", "\"retain_bytes\":1048576,\"retain_age_s\":7200,"
                                           "\"source\":\"channel\""), 1);
    snprintf(d, sizeof d, "%s/channels/docs/retain", t->data);
    assert_true(fy_ct_size(d) > 0);
    /* the channel's own byte limit is applied to it, within a few passes */
    assert_int_equal(ferry(t, "ret2", (const char *[]){"retain", "docs", "--bytes", "64K",
                                                        "--token", "adm", NULL}), 0);
    segs0 = segments(t, "docs");
    assert_true(segs0 > 2);
    for (int i = 0; i < 50 && (segs = segments(t, "docs")) > 2; i++)
        fy_ct_sleep_ms(100);
    assert_true(segs <= 2);

    /* a channel with a receiver is not deleted; without one it is */
    pid_t r = fy_ct_recv(t, "live", "pics", fy_ct_path(t, "live", p),
                         (const char *[]){"--token", "pub", "--quiet", NULL});
    int found = 0;
    for (int i = 0; i < 100 && !found; i++) {
        assert_int_equal(ferry(t, "info-p", (const char *[]){"info", "pics", "--token", "pub",
                                                              NULL}), 0);
        found = lines_with(t, "info-p", "type=receiver");
        if (!found)
            fy_ct_sleep_ms(100);
    }
    assert_int_equal(found, 1);
    assert_int_equal(ferry(t, "rm-busy", (const char *[]){"rm", "pics", "--token", "adm", NULL}), 3);
    assert_true(fy_ct_contains(fy_ct_path(t, "rm-busy.err", p), "FY_EINUSE"));
    fy_ct_kill(r, SIGTERM);
    fy_ct_wait(t, r, T_MS);
    int rc = 3;
    for (int i = 0; i < 100 && rc == 3; i++) { /* the receiver's goodbye reaches the writer */
        rc = ferry(t, "rm-ch", (const char *[]){"rm", "pics", "--token", "adm", NULL});
        if (rc == 3)
            fy_ct_sleep_ms(50);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(lines_with(t, "rm-ch", "type=removed channel=pics"), 1);
    snprintf(d, sizeof d, "%s/channels/pics", t->data);
    struct stat st;
    assert_true(stat(d, &st) != 0);
    assert_int_equal(ferry(t, "ls-end", (const char *[]){"ls", "--token", "pub", NULL}), 0);
    assert_int_equal(lines_with(t, "ls-end", "type=channel "), 1);
    assert_int_equal(ferry(t, "rm-gone", (const char *[]){"rm", "pics", "--token", "adm", NULL}), 3);
}

/* A file name with spaces, parentheses, quotes and UTF-8 (allowed since
 * trees): ls writes it quoted, --json and get read it back whole, rm
 * finds it. */
static void test_names_with_spaces(void **state)
{
    fy_ct *t = *state;
    uint8_t a1[32], a2[32], sha[32];
    char d[FY_CT_PATH], p[FY_CT_PATH * 2], got[FY_CT_PATH * 3];
    static const char name[] = "my \"report\" (v2) r\xc3\xa9sum\xc3\xa9.txt";
    setup_relay(t, NULL, a1, a2);
    fy_ct_mkdir(fy_ct_path(t, "sp", d));
    snprintf(p, sizeof p, "%s/%s", d, name);
    fy_ct_make_file(p, 3000, 9, sha);
    send_files(t, "s-sp", "notes", (const char *[]){p, NULL});
    assert_int_equal(ferry(t, "ls-sp", (const char *[]){"ls", "notes", "--token", "pub", NULL}), 0);
    assert_int_equal(lines_with(t, "ls-sp", "name=\"my \\\"report\\\" (v2) r\xc3\xa9sum\xc3\xa9.txt\" size=3000 "), 1);
    assert_int_equal(ferry(t, "ls-spj", (const char *[]){"ls", "notes", "--json", "--token", "pub", NULL}), 0);
    assert_int_equal(lines_with(t, "ls-spj", "\"name\":\"my \\\"report\\\" (v2) r\xc3\xa9sum\xc3\xa9.txt\",\"size\":3000,"), 1);
    assert_int_equal(ferry(t, "get-sp", (const char *[]){"get", "notes", name, "--out",
                                                          fy_ct_path(t, "gsp", p), "--token", "pub",
                                                          NULL}), 0);
    snprintf(got, sizeof got, "%s/%s", p, name);
    fy_ct_assert_same(got, sha);
    assert_int_equal(ferry(t, "rm-sp", (const char *[]){"rm", "notes", name, "--token", "adm", NULL}), 0);
    assert_int_equal(lines_with(t, "rm-sp", "type=deleted channel=notes name=\"my "), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ls_get, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_info_and_stored, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_rm_retain, fy_ct_setup, fy_ct_teardown),
        cmocka_unit_test_setup_teardown(test_names_with_spaces, fy_ct_setup, fy_ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
