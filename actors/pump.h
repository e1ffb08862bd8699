/*
 * pump.h - the read loop that feeds a socket to an fy_ingest (fy__pump),
 * shared by the two owners of an ingest: a sender's session (sender.c,
 * session.c) and an edge relay's upstream actor (upstream.c).
 *
 * One turn reads at most FY__PUMP_READS times, then queues FY_RM_CONTINUE
 * to the owner so other actors on the thread get their turn.  The ingest
 * stops the loop when the channel budget is spent (-EAGAIN: the writer's
 * credit resumes it) or the pool is empty (-FY_EPOOL: a short timer
 * resumes it); while paused the owner does not read its socket, so TCP
 * slows the sender down.  What the owner reads, how it answers control
 * frames and how it ends are its own (callbacks).  All functions: the
 * owner's turn only.
 */
#ifndef FERRY_ACTORS_PUMP_H
#define FERRY_ACTORS_PUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ferry/actor.h"
#include "ingest.h"

#define FY__PUMP_READS 32   /* reads per turn, then yield to other actors */
#define FY__PUMP_RETRY_MS 5 /* pool exhausted: retry after */

typedef struct fy__pump {
    fy_actor *self;     /* the owner: CONTINUE and the retry timer go to it */
    uint64_t retry_tag; /* the retry timer's tag (the owner's handler calls fy__pump_retry) */
    bool paused;        /* not reading: budget spent or pool empty */
    bool timer_armed;   /* the pool retry timer is set */
    bool cont_pending;  /* a CONTINUE is queued */
} fy__pump;

/* What fy__pump_ingest saw. */
enum { FY__PUMP_MORE = 0,   /* the ingest needs more input */
       FY__PUMP_STOP = 1,   /* ctl said stop */
       FY__PUMP_PAUSED = 2  /* budget or pool: wait for a credit or the timer */ };

/* Run the ingest over what was read; each control frame goes to ctl (0 to
 * go on, 1 to stop).  FY__PUMP_MORE, _STOP, _PAUSED, or the ingest's fault
 * (negative; fy_ingest_fault_get says why), which the owner acts on. */
int fy__pump_ingest(fy__pump *p, fy_ingest *ing, int (*ctl)(void *arg, const fy_frame *f),
                    void *arg);

/* The owner's half of the loop. */
typedef struct fy__pump_fns {
    /* Process the input so far: 0 when more is needed, 1 to stop reading. */
    int (*consume)(void *arg);
    /* One read, handed to whoever processes it: bytes, 0 at EOF, -EAGAIN
     * or -errno. */
    ssize_t (*read)(void *arg);
    /* The read gave 0 or -errno: the owner ends the connection. */
    void (*closed)(void *arg, ssize_t n);
} fy__pump_fns;

/* consume, read, consume, ... until consume stops, the socket has nothing
 * more (-EAGAIN) or FY__PUMP_READS reads were made (then CONTINUE is
 * queued).  Returns false when closed was called. */
bool fy__pump_run(fy__pump *p, const fy__pump_fns *fns, void *arg);

/* A credit came (the owner has given it to the ingest): true when a pause
 * for the budget ended and the owner should drive now. */
static inline bool fy__pump_credit(fy__pump *p)
{
    if (!p->paused || p->timer_armed)
        return false;
    p->paused = false;
    return true;
}

/* The retry timer fired: drive now. */
static inline void fy__pump_retry(fy__pump *p)
{
    p->timer_armed = false;
    p->paused = false;
}

/* The CONTINUE arrived: drive now. */
static inline void fy__pump_continued(fy__pump *p)
{
    p->cont_pending = false;
}

#endif
