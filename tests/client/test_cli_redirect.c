/*
 * test_cli_redirect.c - the client's side of a cluster's redirects
 * (src/cli/redirect.c, fy_cli_dial in src/cli/retry.c): FY_ENOTLEADER
 * texts parsed, and the epoch rule: a redirect naming a cluster epoch
 * older than one the run has seen for the channel is not followed; the
 * list's next address is tried instead, and with a single address the
 * dial ends as "hello" (the caller's backoff).  Relays are fakes in
 * threads on 127.0.0.1 that answer every hello from a script and count
 * their connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/conn.h"
#include "cli/redirect.h"
#include "cli/retry.h"
#include "ferry/err.h"
#include "ferry/proto.h"

/* ---- the pure parts ---------------------------------------------------- */

static void test_parse(void **state)
{
    (void)state;
    fy_cli_redirect r;
    assert_int_equal(fy_cli_redirect_parse("leader=n2 addr=127.0.0.1:7420 epoch=3", &r), 0);
    assert_string_equal(r.leader, "n2");
    assert_string_equal(r.addr, "127.0.0.1:7420");
    assert_int_equal(r.epoch, 3);
    /* Order does not matter; a key inside another word is not the key. */
    assert_int_equal(fy_cli_redirect_parse("epoch=12 xaddr=no addr=[::1]:9 leader=a.b", &r), 0);
    assert_string_equal(r.addr, "[::1]:9");
    assert_string_equal(r.leader, "a.b");
    assert_int_equal(r.epoch, 12);
    /* The relay's "leader unknown": empty fields. */
    assert_int_equal(fy_cli_redirect_parse("leader= addr= epoch=0", &r), -ENOENT);
    assert_string_equal(r.addr, "");
    assert_int_equal(r.epoch, 0);
    assert_int_equal(fy_cli_redirect_parse("", &r), -ENOENT);
    /* A malformed epoch is no epoch (the redirect is still usable). */
    assert_int_equal(fy_cli_redirect_parse("leader=n1 addr=h:1 epoch=3x", &r), -EINVAL);
    assert_string_equal(r.addr, "h:1");
    assert_int_equal(r.epoch, 0);
    assert_int_equal(fy_cli_redirect_parse("leader=n1 addr=h:1 epoch=-1", &r), -EINVAL);
    assert_int_equal(r.epoch, 0);
}

static void test_epoch_rule(void **state)
{
    (void)state;
    uint64_t seen = 0;
    fy_cli_epoch_reset();
    assert_true(fy_cli_epoch_admit("c1", 0, &seen)); /* no epoch: nothing to compare */
    assert_true(fy_cli_epoch_admit("c1", 3, &seen));
    assert_int_equal(seen, 3);
    assert_true(fy_cli_epoch_admit("c1", 3, &seen)); /* the same epoch: followed */
    assert_false(fy_cli_epoch_admit("c1", 2, &seen)); /* older: not followed */
    assert_int_equal(seen, 3);
    assert_true(fy_cli_epoch_admit("c2", 1, &seen)); /* per channel */
    assert_int_equal(seen, 1);
    assert_true(fy_cli_epoch_admit("c1", 5, NULL));
    assert_false(fy_cli_epoch_admit("c1", 4, &seen));
    assert_int_equal(seen, 5);
    /* A full table admits a new channel without remembering it. */
    fy_cli_epoch_reset();
    char ch[16];
    for (int i = 0; i < FY_CLI_EPOCH_CHANNELS; i++) {
        snprintf(ch, sizeof ch, "k%d", i);
        assert_true(fy_cli_epoch_admit(ch, 9, NULL));
    }
    assert_true(fy_cli_epoch_admit("extra", 9, NULL));
    assert_true(fy_cli_epoch_admit("extra", 1, NULL));
    assert_false(fy_cli_epoch_admit("k0", 8, NULL));
    fy_cli_epoch_reset();
}

/* ---- fake relays ---------------------------------------------------------- */

typedef struct fake {
    int lfd;
    char port[32];      /* "127.0.0.1:PORT" */
    const char *refuse; /* an FY_ENOTLEADER text to answer, or NULL: welcome */
    int conns;          /* hellos seen */
    pthread_t t;
} fake;

static int read_all(int fd, uint8_t *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, p + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void answer(int c, uint8_t type, const uint8_t *p, size_t n)
{
    fy_frame_hdr h = {.type = type};
    uint8_t hdr[FY_FRAME_HDR_SIZE];
    fy_frame_seal(&h, p, n, hdr);
    if (write(c, hdr, sizeof hdr) != (ssize_t)sizeof hdr || write(c, p, n) != (ssize_t)n)
        return;
}

static void *serve(void *arg)
{
    fake *fk = arg;
    for (int i = 0; i < 16; i++) {
        int c = accept(fk->lfd, NULL, NULL);
        if (c < 0)
            break;
        uint8_t hb[FY_FRAME_HDR_SIZE], p[FY_HELLO_MAX], out[FY_WELCOME_MAX];
        fy_frame_hdr h;
        fy_hello hello;
        size_t n;
        if (read_all(c, hb, sizeof hb) < 0 || fy_frame_hdr_decode(hb, sizeof p, &h) < 0 ||
            read_all(c, p, h.len) < 0 || fy_hello_decode(p, h.len, &hello) < 0) {
            close(c);
            continue;
        }
        __atomic_add_fetch(&fk->conns, 1, __ATOMIC_SEQ_CST);
        const char *refuse = __atomic_load_n(&fk->refuse, __ATOMIC_SEQ_CST);
        if (refuse) {
            fy_error e = {.code = FY_ENOTLEADER};
            snprintf(e.text, sizeof e.text, "%s", refuse);
            if (fy_error_encode(&e, out, sizeof out, &n) == 0)
                answer(c, FY_FT_ERROR, out, n);
        } else {
            fy_welcome w = {.channel = 1, .next_seq = 1, .first_seq = 1, .max_payload = 1 << 20};
            if (fy_welcome_encode(&w, out, sizeof out, &n) == 0)
                answer(c, FY_FT_WELCOME, out, n);
        }
        usleep(20000); /* let the client read it before the close */
        close(c);
    }
    return NULL;
}

static void fake_start(fake *fk, const char *refuse)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    memset(fk, 0, sizeof *fk);
    fk->refuse = refuse;
    fk->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fk->lfd >= 0);
    assert_int_equal(bind(fk->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fk->lfd, 8), 0);
    assert_int_equal(getsockname(fk->lfd, (struct sockaddr *)&a, &al), 0);
    snprintf(fk->port, sizeof fk->port, "127.0.0.1:%u", ntohs(a.sin_port));
    assert_int_equal(pthread_create(&fk->t, NULL, serve, fk), 0);
}

static int fake_stop(fake *fk)
{
    shutdown(fk->lfd, SHUT_RDWR); /* ends the accept loop */
    pthread_join(fk->t, NULL);
    close(fk->lfd);
    return fk->conns;
}

static int dial(const char *server, const char **what)
{
    fy_hello h = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_START};
    snprintf(h.channel, sizeof h.channel, "ch");
    fy_cli_conn *k = NULL;
    fy_welcome w;
    int rc = fy_cli_dial(server, 5000, NULL, NULL, &h, &k, &w, what);
    fy_cli_conn_close(k, false);
    return rc;
}

/* A redirect of epoch 3 is followed; later, one of epoch 2 is not: with a
 * list the next address serves, alone the dial ends as "hello". */
static void test_stale_redirect(void **state)
{
    (void)state;
    fake leader, trap, fresh, stale;
    char text[96], list[80];
    const char *what;

    fy_cli_epoch_reset();
    fake_start(&leader, NULL);
    fake_start(&trap, NULL); /* the deposed leader a stale relay still names */
    snprintf(text, sizeof text, "leader=n2 addr=%s epoch=3", leader.port);
    fake_start(&fresh, text);
    char stale_text[96];
    snprintf(stale_text, sizeof stale_text, "leader=n1 addr=%s epoch=2", trap.port);
    fake_start(&stale, stale_text);

    assert_int_equal(dial(fresh.port, &what), 0); /* epoch 3 seen, followed */
    snprintf(list, sizeof list, "%s,%s", stale.port, leader.port);
    assert_int_equal(dial(list, &what), 0); /* stale one skipped, the next welcomes */
    assert_int_equal(dial(stale.port, &what), -FY_ENOTLEADER);
    assert_string_equal(what, "hello"); /* a cluster is there: backoff, not exit */

    assert_int_equal(fake_stop(&fresh), 1);
    assert_int_equal(fake_stop(&stale), 2);
    assert_int_equal(fake_stop(&trap), 0); /* never followed */
    assert_int_equal(fake_stop(&leader), 2);
    fy_cli_epoch_reset();
}

/* A relay that does not know who leads (a leader cut off from etcd fences
 * itself and answers empty fields) is passed over for the next address of
 * the list, even when it is the one that welcomed this thread last; alone
 * the dial ends as "hello" (backoff).  Before, the client backed off and
 * came back to the same relay, never reaching the new leader. */
static void test_unknown_leader_next(void **state)
{
    (void)state;
    fake cut, leader;
    char list[80];
    const char *what;

    fy_cli_epoch_reset();
    fake_start(&cut, NULL);
    fake_start(&leader, NULL);
    snprintf(list, sizeof list, "%s,%s", cut.port, leader.port);
    assert_int_equal(dial(list, &what), 0); /* cut welcomes: it is the one remembered */
    __atomic_store_n(&cut.refuse, "leader= addr= epoch=0", __ATOMIC_SEQ_CST);
    assert_int_equal(dial(list, &what), 0); /* cut knows no leader: the next one serves */
    assert_int_equal(dial(cut.port, &what), -FY_ENOTLEADER);
    assert_string_equal(what, "hello");
    /* A cluster in failover: the backoff stays short (it grew to 10 s). */
    assert_int_equal(fy_cli_retry_cap_ms(), FY_CLI_RETRY_CLUSTER_MS);
    assert_int_equal(dial(leader.port, &what), 0);
    assert_int_equal(fy_cli_retry_cap_ms(), FY_CLI_RETRY_MAX_MS);
    assert_int_equal(fake_stop(&cut), 3);
    assert_int_equal(fake_stop(&leader), 2);
    fy_cli_epoch_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_epoch_rule),
        cmocka_unit_test(test_stale_redirect),
        cmocka_unit_test(test_unknown_leader_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
