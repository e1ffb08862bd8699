/*
 * outq.c - bytes waiting for a non-blocking connection (outq.h).
 */
#include "net/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>


#define OUTQ_MAX_DEFAULT (256u << 10)

int fy_outq_flush(fy_outq *q, fy_conn *c)
{
    while (q->off < q->len) {
        struct iovec iov = {q->b + q->off, q->len - q->off};
        ssize_t n = fy_conn_writev(c, &iov, 1);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EAGAIN;
        q->off += (size_t)n;
    }
    q->off = q->len = 0;
    return fy_conn_flush(c);
}

int fy_outq_push(fy_outq *q, fy_conn *c, const void *p, size_t n)
{
    size_t max = q->max ? q->max : OUTQ_MAX_DEFAULT;

    if (q->off && q->off == q->len)
        q->off = q->len = 0;
    if (q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + n)
            cap *= 2;
        if (cap > max)
            return -ENOBUFS;
        uint8_t *nb = realloc(q->b, cap);
        if (!nb)
            return -ENOMEM;
        q->b = nb;
        q->cap = cap;
    }
    memcpy(q->b + q->len, p, n);
    q->len += n;
    int rc = fy_outq_flush(q, c);
    return rc == -EAGAIN ? 0 : rc;
}

void fy_outq_free(fy_outq *q)
{
    free(q->b);
    *q = (fy_outq){.max = q->max};
}
