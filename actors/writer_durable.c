/*
 * writer_durable.c - a channel writer's answers to its sender under
 * write-behind: which acks and credits wait for the log to be durable, and
 * the sync worker's reports that release them.
 *
 * The writer appends through the page cache and publishes each batch to
 * the live forwarders at once; it never syncs (store/syncer.c does, on its
 * own thread, and posts FY_RM_SYNCED back).  What the sender is told keeps
 * its meaning:
 *   - an ack under --fsync file-end waits until the durable position
 *     covers its file-end (the batch's end); under an interval or never it
 *     goes at once, as before (it always meant "appended" there);
 *   - a credit (the batch's buffer bytes, which reopen the sender's budget)
 *     goes at once while the log trails what was appended by less than the
 *     write-behind budget, else when the worker's progress brings it under;
 *     a batch that holds an acked file-end is credited after that ack, so
 *     a sender that waits for all its credits (shutdown) has all its acks.
 * Both queues are FIFO and released in order, acks before credits.  A sync
 * starts at each file-end (file-end policy) and whenever half the budget is
 * not durable, so dirty pages stay bounded in every mode.  A failed sync
 * fails the log (fy_log_synced): nothing waiting is acked, the credits are
 * given back, the sender hears FY_RM_STORE_ERR with the durable seq, from
 * which it resumes, and the channel closes to cut its log back to that seq
 * (writer.c, rewind) and reopens on the next hello.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/err.h"
#include "ferry/klog.h"
#include "msg.h"
#include "writer_int.h"

/* ---- the queues ------------------------------------------------------------- */

static const fy__wb_item *q_front(const fy__wb_q *q)
{
    return q->n ? &q->v[q->head] : NULL;
}

static void q_pop(fy__wb_q *q)
{
    q->head++;
    if (--q->n == 0)
        q->head = 0;
}

void fy__writer_wb_clear(fy__writer *w)
{
    w->acks.n = w->acks.head = 0;
    w->credits.n = w->credits.head = 0;
    w->acks_sent = w->acks_pushed;
    fy__isr_waiting(w, 0);
}

void fy__writer_wb_free(fy__writer *w)
{
    free(w->acks.v);
    free(w->credits.v);
}

bool fy__writer_settle(fy__writer *w)
{
    if (!w->acks.n && !w->credits.n)
        return true;
    /* An error path: the writer waits for the disk itself, its thread's
     * queue handed to the others meanwhile. */
    fy_sched_handoff();
    return fy__writer_sync_now(w) == 0;
}

/* ---- releasing -------------------------------------------------------------- */

void fy__writer_release(fy__writer *w)
{
    uint64_t d = w->log ? fy_log_durable_bytes(w->log) : UINT64_MAX;
    const fy__wb_item *it;

    fy__writer_attach_recheck(w);
    if (!w->sender) {
        fy__writer_wb_clear(w);
        return;
    }
    /* In a cluster with --acks all an ack also waits for the in-sync
     * replicas (writer_isr.c); a credit, for the acks before it. */
    while ((it = q_front(&w->acks)) && it->need <= d && fy__isr_ack_ok(w, it->val)) {
        fy__msg_ack(w->sender, it->val);
        q_pop(&w->acks);
        w->acks_sent++;
    }
    while ((it = q_front(&w->credits)) && it->need <= d && it->gate <= w->acks_sent) {
        fy__msg_credit(w->sender, it->val);
        q_pop(&w->credits);
    }
    fy__isr_waiting(w, w->acks.n);
}

/* Queue a sync when the policy or the budget asks for one. */
static void kick(fy__writer *w, bool file_end)
{
    uint64_t lag = fy_log_bytes(w->log) - fy_log_durable_bytes(w->log);
    int rc = 0;

    if (file_end || lag >= fy_conf_write_behind(w->ctx->conf) / 2)
        rc = fy_log_sync_start(w->log);
    if (rc < 0 && rc != fy_log_failed(w->log))
        fy_klog(FY_LOG_WARN, "fy_log_sync_start failed", "channel=%s err=%s "
                "action=\"try again at the next batch\"", w->chan->name, fy_errname(rc));
}

static int q_reserve(fy__wb_q *q, size_t k)
{
    while (q->cap - q->n < k) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        fy__wb_item *v = realloc(q->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        q->v = v;
        q->cap = cap;
    }
    if (q->head + q->n + k > q->cap) { /* room, but at the front: slide down */
        memmove(q->v, q->v + q->head, q->n * sizeof *q->v);
        q->head = 0;
    }
    return 0;
}

static void q_push(fy__wb_q *q, uint64_t need, uint64_t val, uint64_t gate)
{
    q->v[q->head + q->n++] = (fy__wb_item){.need = need, .val = val, .gate = gate};
}

/* No memory to queue what waits: sync here instead (as before write-behind)
 * and answer everything at once. */
static void answer_now(fy__writer *w, fy_actor *to, uint64_t held, const uint64_t *acks,
                       size_t nacks)
{
    fy_klog(FY_LOG_WARN, "malloc failed", "what=ack_queue channel=%s action=\"sync on the "
            "writer's thread\"", w->chan->name);
    fy_sched_handoff();
    if (fy__writer_sync_now(w) < 0)
        return; /* failed: the sender was told, nothing is acked */
    for (size_t i = 0; i < nacks && !fy__isr_gating(w); i++) /* else never: it resends */
        fy__msg_ack(to, acks[i]);
    fy__msg_credit(to, held);
}

void fy__writer_answer(fy__writer *w, fy_actor *to, uint64_t held, const uint64_t *acks,
                       size_t nacks)
{
    uint64_t end = fy_log_bytes(w->log), budget = fy_conf_write_behind(w->ctx->conf);
    bool fe = w->ctx->conf->fsync_mode == FY_FSYNC_FILE_END;
    /* Credited once the log trails by less than the budget again, or, when
     * the batch holds an ack that waits for the disk, with that ack. */
    uint64_t need = fe && nacks ? end : end > budget ? end - budget : 0;

    if (!to)
        return;
    if (q_reserve(&w->acks, nacks) < 0 || q_reserve(&w->credits, 1) < 0) {
        answer_now(w, to, held, acks, nacks);
        return;
    }
    for (size_t i = 0; i < nacks; i++)
        q_push(&w->acks, fe ? end : 0, acks[i], 0);
    w->acks_pushed += nacks;
    q_push(&w->credits, need, held, fy__isr_gating(w) ? w->acks_pushed : 0);
    kick(w, fe && nacks);
    fy__writer_release(w);
}

/* ---- the sync worker's reports ------------------------------------------------ */

/* The log failed (a sync did): nothing waiting is acknowledged, the
 * credits go back, and the sender hears where the durable log ends. */
static void failed(fy__writer *w, int rc)
{
    fy_klog(FY_LOG_ERROR, "log sync failed", "channel=%s err=%s durable_seq=%llu next_seq=%llu "
            "action=\"acknowledge nothing more, end the sender's stream, close the channel and cut "
            "its log back to durable_seq\"", w->chan->name,
            fy_errname(rc), (unsigned long long)fy_log_durable_seq(w->log),
            (unsigned long long)fy_log_next_seq(w->log));
    w->sync_failed++;
    w->acks.n = w->acks.head = 0;
    const fy__wb_item *it;
    while (w->sender && (it = q_front(&w->credits))) {
        fy__msg_credit(w->sender, it->val);
        q_pop(&w->credits);
    }
    fy__writer_wb_clear(w);
    w->store_failed = true;
    if (w->sender)
        fy__msg_store_err(w->sender, (uint32_t)-rc, fy_log_durable_seq(w->log));
    fy__writer_rewind_start(w);
}

void fy__writer_synced(fy__writer *w, uint64_t seq, uint64_t bytes, int rc)
{
    if (!w->log)
        return; /* closed: fy_log_sync made it all durable, or failed */
    bool was = fy_log_failed(w->log) != 0;
    rc = fy_log_synced(w->log, seq, bytes, rc);
    if (rc < 0) {
        if (!was)
            failed(w, rc);
        return;
    }
    fy__writer_release(w);
}

int fy__writer_sync_now(fy__writer *w)
{
    bool was = fy_log_failed(w->log) != 0;
    int rc = fy_log_sync(w->log);

    if (rc < 0 && !was)
        failed(w, rc);
    else if (rc == 0)
        fy__writer_release(w);
    return rc;
}

/* Runs on the sync worker's thread: only a message to the writer. */
void fy__writer_synced_cb(void *arg, uint64_t seq, uint64_t bytes, int rc)
{
    fy__msg_synced(arg, rc, seq, bytes);
}
