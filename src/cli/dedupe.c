/*
 * dedupe.c - the dup-ask / dup-answer exchange (see dedupe.h).
 *
 * The sender pipelines files, so acks of earlier files may come before
 * the answer; they are handed back rather than dropped.
 */
#include "cli/dedupe.h"

#include <errno.h>
#include <string.h>

#include "ferry/err.h"

#define DEDUPE_FRAMES_MAX 1000000 /* acks before the answer: bounded */

int fy_cli_dedupe_ask(fy_cli_conn *k, const fy_file_begin *fb, void (*on_ack)(void *, uint64_t),
                      void *arg, fy_dup_answer *st)
{
    fy_dup_ask q = {.size = fb->size};
    uint8_t pl[FY_CTL_PAYLOAD_MAX];
    size_t n;
    memcpy(q.name, fb->name, sizeof q.name);
    int rc = fy_dup_ask_encode(&q, pl, sizeof pl, &n);
    if (rc == 0)
        rc = fy_cli_conn_send(k, FY_FT_DUP_ASK, 0, pl, n);
    for (int i = 0; rc == 0 && i < DEDUPE_FRAMES_MAX; i++) {
        fy_frame f;
        fy_ack a;
        if ((rc = fy_cli_conn_next(k, &f, false)) < 0)
            return rc;
        if (rc == 0 || (f.hdr.type == FY_FT_ACK && fy_ack_decode(f.payload, f.hdr.len, &a) == 0)) {
            if (rc > 0)
                on_ack(arg, a.seq);
            rc = 0;
            continue;
        }
        if (f.hdr.type == FY_FT_BYE)
            return -ENODATA; /* the relay is going away */
        if (f.hdr.type != FY_FT_DUP_ANSWER)
            return -FY_EPROTO;
        return fy_dup_answer_decode(f.payload, f.hdr.len, st);
    }
    return rc < 0 ? rc : -FY_EPROTO;
}
