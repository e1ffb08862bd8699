/*
 * test_cli_dial_flags.c - a client's hello against relays that know fewer
 * hello flags (src/cli/retry.c, fy_cli_dial): a relay older than notices
 * (FY_HELLO_F_NOTICE) refuses the bit with FY_EPAYLOAD, and the client says
 * hello again without that bit only, keeping FY_HELLO_F_AHEAD; a relay that
 * knows neither gets a hello without flags.  The relays are a fake one in a
 * thread on 127.0.0.1 that answers each hello from a script.
 */
#include <arpa/inet.h>
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
#include "cli/retry.h"
#include "ferry/err.h"
#include "ferry/proto.h"

typedef struct fake {
    int lfd;
    uint16_t refuse;     /* a hello with any of these bits gets FY_EPAYLOAD */
    uint16_t seen[4];    /* the flags of each hello */
    int n;
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

/* Each connection: read the hello, refuse or welcome it, close. */
static void *serve(void *arg)
{
    fake *fk = arg;
    for (int i = 0; i < 4; i++) {
        int c = accept(fk->lfd, NULL, NULL);
        if (c < 0)
            break;
        uint8_t hb[FY_FRAME_HDR_SIZE], p[FY_HELLO_MAX];
        fy_frame_hdr h;
        fy_hello hello;
        if (read_all(c, hb, sizeof hb) < 0 || fy_frame_hdr_decode(hb, sizeof p, &h) < 0 ||
            read_all(c, p, h.len) < 0 || fy_hello_decode(p, h.len, &hello) < 0) {
            close(c);
            break;
        }
        fk->seen[fk->n++] = hello.flags;
        uint8_t out[FY_WELCOME_MAX];
        size_t n;
        if (hello.flags & fk->refuse) {
            fy_error e = {.code = FY_EPAYLOAD};
            snprintf(e.text, sizeof e.text, "bad hello");
            if (fy_error_encode(&e, out, sizeof out, &n) == 0)
                answer(c, FY_FT_ERROR, out, n);
        } else {
            fy_welcome w = {.channel = 1, .next_seq = 1, .first_seq = 1, .max_payload = 1 << 20};
            if (fy_welcome_encode(&w, out, sizeof out, &n) == 0)
                answer(c, FY_FT_WELCOME, out, n);
        }
        usleep(50000); /* let the client read it before the close */
        close(c);
    }
    return NULL;
}

/* Dial a fake relay refusing `refuse` with a hello of `flags`; the flags
 * of each hello it saw into fk. */
static int dial(fake *fk, uint16_t refuse, uint16_t flags)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    memset(fk, 0, sizeof *fk);
    fk->refuse = refuse;
    fk->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fk->lfd >= 0);
    assert_int_equal(bind(fk->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fk->lfd, 4), 0);
    assert_int_equal(getsockname(fk->lfd, (struct sockaddr *)&a, &al), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve, fk), 0);

    char server[32];
    snprintf(server, sizeof server, "127.0.0.1:%u", ntohs(a.sin_port));
    fy_hello h = {.role = FY_ROLE_RECEIVER, .mode = FY_MODE_START, .flags = flags};
    snprintf(h.channel, sizeof h.channel, "ch");
    fy_cli_conn *k = NULL;
    fy_welcome w;
    const char *what;
    int rc = fy_cli_dial(server, 5000, NULL, NULL, &h, &k, &w, &what);
    fy_cli_conn_close(k, false);
    shutdown(fk->lfd, SHUT_RDWR); /* ends the accept loop */
    pthread_join(t, NULL);
    close(fk->lfd);
    return rc;
}

static void test_drop_notice_only(void **state)
{
    (void)state;
    fake fk;
    assert_int_equal(dial(&fk, FY_HELLO_F_NOTICE, FY_HELLO_F_AHEAD | FY_HELLO_F_NOTICE), 0);
    assert_int_equal(fk.n, 2);
    assert_int_equal(fk.seen[0] & ~FY_HELLO_F_CLIENT, FY_HELLO_F_AHEAD | FY_HELLO_F_NOTICE);
    assert_int_equal(fk.seen[1], FY_HELLO_F_AHEAD); /* the resume flag is kept */
}

static void test_drop_all(void **state)
{
    (void)state;
    fake fk;
    assert_int_equal(dial(&fk, FY_HELLO_F_NOTICE | FY_HELLO_F_AHEAD,
                          FY_HELLO_F_AHEAD | FY_HELLO_F_NOTICE), 0);
    assert_int_equal(fk.n, 3);
    assert_int_equal(fk.seen[1], FY_HELLO_F_AHEAD);
    assert_int_equal(fk.seen[2], 0);
    /* A hello with the notice flag alone goes straight to none. */
    assert_int_equal(dial(&fk, FY_HELLO_F_NOTICE, FY_HELLO_F_NOTICE), 0);
    assert_int_equal(fk.n, 2);
    assert_int_equal(fk.seen[1], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_notice_only),
        cmocka_unit_test(test_drop_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
