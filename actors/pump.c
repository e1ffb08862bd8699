/*
 * pump.c - the read loop that feeds a socket to an fy_ingest (fy__pump;
 * see pump.h), written once for a sender's session and an edge's upstream.
 */
#include "pump.h"

#include <errno.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/trace.h"
#include "msg.h"
#include "relay_int.h"

int fy__pump_ingest(fy__pump *p, fy_ingest *ing, int (*ctl)(void *arg, const fy_frame *f),
                    void *arg)
{
    fy_frame f;
    int rc;

    while ((rc = fy_ingest_next(ing, &f)) == 1)
        if (ctl(arg, &f))
            return FY__PUMP_STOP;
    if (rc == 0)
        return FY__PUMP_MORE;
    if (rc == -EAGAIN) {
        p->paused = true; /* the writer's credit resumes */
    } else if (rc == -FY_EPOOL) {
        p->paused = true;
        if (!p->timer_armed) {
            p->timer_armed = true;
            fy_timer_after(p->self, FY__PUMP_RETRY_MS, p->retry_tag);
        }
    } else {
        return rc;
    }
    return FY__PUMP_PAUSED;
}

bool fy__pump_run(fy__pump *p, const fy__pump_fns *fns, void *arg)
{
    int reads = 0;

    for (;;) {
        if (fns->consume(arg))
            return true;
        if (reads++ == FY__PUMP_READS) {
            if (!p->cont_pending) {
                p->cont_pending = true;
                fy__msg_continue(p->self);
            }
            return true;
        }
        ssize_t n = fns->read(arg);
        if (n == -EAGAIN)
            return true;
        if (n <= 0) {
            fns->closed(arg, n);
            return false;
        }
        fy_trace_emit(FY_TR_BYTES, fy_actor_id(p->self), (uint64_t)n, 0);
    }
}
