/*
 * stats.c - the request/answer helpers of the stats protocol (stats.h).
 */
#include "relay/stats.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ferry/err.h"

int fy_stats_ask(fy_actor *who, uint64_t scrape)
{
    return fy_actor_post(who, FY_STATS_REQ, 0, scrape, 0, NULL, NULL);
}

int fy_stats_ask_to(fy_actor *who, uint64_t scrape, fy_actor *collector)
{
    return fy_actor_post(who, FY_STATS_REQ, 0, scrape, (uint64_t)(uintptr_t)collector, NULL, NULL);
}

int fy_stats_pass(const fy_msg *req, fy_actor *to)
{
    return fy_actor_post(to, FY_STATS_REQ, 0, req->u64[0], req->u64[1], NULL, NULL) == 0;
}

int fy_stats_answer(fy_bufpool *pool, fy_actor *collector, const fy_msg *req,
                    const fy_stats_rec *r)
{
    fy_buf *b = NULL;
    if (req && req->u64[1]) /* a scrape for another collector (fy_stats_ask_to) */
        collector = (fy_actor *)(uintptr_t)req->u64[1];
    if (!collector)
        return 0;
    int rc = fy_buf_alloc(pool, sizeof *r, &b);
    if (rc < 0)
        return rc;
    memcpy(fy_buf_data(b), r, sizeof *r);
    fy_buf_set_len(b, sizeof *r);
    return fy_actor_post(collector, FY_STATS_REP, 0, req ? req->u64[0] : 0, 0, NULL, b);
}

void fy_stats_err(fy_stats_rec *r, uint32_t err, uint64_t n)
{
    int i = 0;
    while (i < FY_STATS_ERRS - 1 && r->err_n[i] && r->err_code[i] != err)
        i++;
    if (r->err_n[i] && r->err_code[i] != err)
        r->err_code[i] = 0; /* the last slot: "other" */
    else
        r->err_code[i] = err;
    r->err_n[i] += n;
}
