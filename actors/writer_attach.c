/*
 * writer_attach.c - who gets a channel writer's sender slot: a request
 * answered at once, refused (busy, shutting, not the leader), handed over
 * to the same sender's new connection (takeover), or, in a cluster, held
 * until the files before the sender's resume point are stored on every
 * in-sync replica (a welcome counts them acknowledged: writer_isr.c,
 * fy__isr_attach_ok).
 */
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "msg.h"
#include "writer_int.h"

/* Hold a sender's welcome until fy__isr_attach_ok (one held at a time: a
 * newer request replaces an older one, which hears FY_EBUSY and retries). */
static void hold_attach(fy__writer *w, fy__attach_req *r)
{
    fy__attach_req *old = w->attach_hold;

    w->attach_hold = r;
    if (old)
        fy__writer_answer_attach(w, old, FY_EBUSY);
    fy__isr_watch(w);
}

void fy__writer_attach_recheck(fy__writer *w)
{
    fy__attach_req *r = w->attach_hold;

    if (!r)
        return;
    bool gone = w->shutting || w->rewind || fy__writer_not_leading(w);
    if (!gone && !fy__isr_attach_ok(w))
        return;
    w->attach_hold = NULL;
    fy__writer_answer_attach(w, r, gone ? FY_ESHUTDOWN : 0);
}

/* Answer a request for the slot: err, or the slot with the log's end and
 * the file in progress. */
void fy__writer_answer_attach(fy__writer *w, fy__attach_req *r, int err)
{
    if (!err && r != w->attach_hold && !fy__isr_attach_ok(w)) {
        hold_attach(w, r);
        return;
    }
    fy__msg_attached(r->session, (uint32_t)err, fy_log_next_seq(w->log), fy_log_first_seq(w->log),
                     err ? NULL : fy__writer_part_buf(w));
    if (err) {
        fy_actor_unref(r->session);
    } else {
        w->sender = r->session;
        memcpy(w->sender_token, r->token, sizeof w->sender_token);
        fy__isr_watch(w); /* cluster: its acks wait for the replicas, and a fence ends it */
    }
    free(r);
}

static void on_attach(fy__writer *w, fy__attach_req *r)
{
    if (w->mirrored && !w->shutting) { /* an edge's mirror: no local sender, ever */
        fy__msg_attach_mirror(r->session);
        fy_actor_unref(r->session);
        free(r);
        return;
    }
    if (!w->shutting && !w->rewind && fy__writer_lead_hold(w, r))
        return; /* this node leads: answered once its epoch is recorded */
    if (w->shutting || w->rewind || !w->sender || fy__writer_not_leading(w)) {
        fy__writer_answer_attach(w, r, w->shutting || w->rewind || fy__writer_not_leading(w) ? FY_ESHUTDOWN
                                                                                   : 0);
        return;
    }
    /* Occupied: only the same sender (same token) may take over, one at a time. */
    if (w->taker || strcmp(r->token, w->sender_token) != 0) {
        fy__writer_answer_attach(w, r, FY_EBUSY);
        return;
    }
    w->taker = r;
    fy__msg_takeover(w->sender, r->resume_from);
}

void fy__writer_attach(fy__writer *w, fy__attach_req *r)
{
    on_attach(w, r);
}

/* The attached sender is active: the takeover candidate is refused. */
void fy__writer_on_keep(fy__writer *w, fy_actor *s)
{
    if (w->sender != s || !w->taker)
        return;
    fy__writer_answer_attach(w, w->taker, FY_EBUSY);
    w->taker = NULL;
}
