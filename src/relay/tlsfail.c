/*
 * tlsfail.c - the count of failed TLS handshakes and the log rate bound
 * (see tlsfail.h).
 *
 * Process-wide and lock-free: sessions on every scheduler thread call in.
 * The window is one second of CLOCK_MONOTONIC, packed with the lines
 * logged in it into one word so a single compare-and-swap moves both.
 */
#include "relay/tlsfail.h"

#include <time.h>

#include <ck_pr.h>

static uint64_t window;     /* atomic: second << 16 | lines logged in that second */
static uint64_t suppressed; /* atomic: failures not logged since the last line */
static uint64_t total;      /* atomic: every failure */

static uint64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

bool fy_tlsfail_note(uint64_t *supp)
{
    uint64_t sec = now_s(), w, next;

    ck_pr_inc_64(&total);
    do {
        w = ck_pr_load_64(&window);
        if (w >> 16 != sec) {
            next = sec << 16 | 1;
        } else if ((w & 0xffff) >= FY_TLSFAIL_LINES) {
            ck_pr_inc_64(&suppressed);
            return false;
        } else {
            next = w + 1;
        }
    } while (!ck_pr_cas_64(&window, w, next));
    /* A failure counted as suppressed while this one won its slot is
     * reported by this line or the next: none is lost, none told twice. */
    *supp = ck_pr_fas_64(&suppressed, 0);
    return true;
}

uint64_t fy_tlsfail_take(void)
{
    return ck_pr_load_64(&suppressed) ? ck_pr_fas_64(&suppressed, 0) : 0;
}

uint64_t fy_tlsfail_total(void)
{
    return ck_pr_load_64(&total);
}
