/*
 * swarm.h - ferry-swarm's engine: many protocol clients in one process.
 *
 * One process drives every connection of a stress run: per channel a
 * sender (several senders of one channel take turns, since a channel has
 * one sender at a time), R receivers per channel, or N bare connections
 * for a connect storm.  Worker threads (one per core by default) each own
 * an epoll set and the connections given to them; they share only atomic
 * counters and read-only data (the pattern, the senders' digests).
 * docs/swarm.md describes the modes, the checks and the output.
 */
#ifndef FY_SWARM_SWARM_H
#define FY_SWARM_SWARM_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry/sock.h"
#include "ferry/tls.h"
#include "swarm/lhist.h"
#include "swarm/rxchk.h"

enum fy_swarm_mode {
    FY_SWARM_BULK = 0,
    FY_SWARM_RATE,
    FY_SWARM_STORM,
    FY_SWARM_CHURN,
    FY_SWARM_SLOW
};

enum fy_swarm_verify {
    FY_VERIFY_SHA = 0, /* every receiver hashes every file (default) */
    FY_VERIFY_CONTENT  /* memcmp against the pattern + the sender's digest */
};

typedef struct fy_swarm_cfg {
    int mode;                /* enum fy_swarm_mode */
    bool p2p;                /* no relay: senders write to the receivers directly */
    fy_addr target;          /* relay address unless p2p */
    char target_text[80];    /* as given, for reports */
    uint32_t senders;        /* total; a multiple of channels */
    uint32_t channels;
    uint32_t receivers;      /* per channel */
    uint64_t size;           /* bytes per file (bulk, churn, slow) */
    uint32_t files;          /* files per sender */
    uint32_t packet;         /* payload bytes per data frame */
    double rate;             /* rate mode: data frames per second, all channels together */
    double duration;         /* rate mode: seconds of sending */
    uint32_t connections;    /* storm */
    double storm_window;     /* storm: seconds a welcome may take to count */
    uint32_t slow;           /* slow receivers per channel */
    uint64_t slow_rate;      /* their read cap, bytes per second */
    uint32_t churners;       /* churn: receivers per channel that leave and rejoin */
    uint32_t churn_times;    /* how often each of them leaves */
    uint32_t threads;
    char token[256];
    double timeout;          /* hard bound on the run, seconds */
    int verify;              /* enum fy_swarm_verify */
    uint64_t seed;
    char chan_prefix[64];    /* channel names are <prefix>-c<k> */
    fy_tls *tls;             /* --tls: client TLS settings for relay connections; NULL = plain */
    char tls_name[256];      /* name expected in the relay's certificate */
} fy_swarm_cfg;

/* One receiver's outcome. */
typedef struct fy_swarm_rx {
    uint32_t channel, index;
    bool slow, churner, complete;
    double seconds;      /* from the start until its last file ended */
    uint64_t bytes;      /* file payload bytes taken in order */
    uint64_t frames;     /* data frames */
    uint64_t failures;   /* checker defects */
    uint32_t reconnects;
    int error;           /* last connection error (negative), 0 if none */
} fy_swarm_rx;

typedef struct fy_swarm_result {
    double seconds;           /* start to last receiver done (bulk...) / window (storm) */
    double setup_seconds;     /* connections, digests, before the clock starts */
    uint64_t bytes_sent, frames_sent;
    uint64_t bytes_delivered, frames_delivered; /* summed over receivers, data frames */
    uint64_t files_expected;  /* per receiver */
    fy_rxchk_counts chk;      /* summed over receivers */
    uint64_t incomplete;      /* receivers that did not get every file */
    uint64_t integrity_failures; /* checker defects + incomplete receivers */
    uint64_t errors;          /* error frames, refused or broken connections */
    bool timed_out;
    uint32_t reconnects;
    double fast_seconds, slow_seconds; /* slowest fast / slow receiver */
    fy_lhist *lat;            /* rate: ns from intended send time to arrival */
    /* storm */
    uint64_t storm, served, refused, connect_failed, unanswered;
    fy_lhist *storm_lat;      /* ns from connect() to welcome */
    fy_swarm_rx *rx;          /* [nrx] */
    uint32_t nrx;
    uint32_t threads;
} fy_swarm_result;

/* Check a configuration; on error writes a reason into why and returns
 * -EINVAL.  Fills in defaults left at 0 (threads, channels ...). */
int fy_swarm_cfg_check(fy_swarm_cfg *cfg, char *why, size_t cap);

/* Run one swarm to the end (every receiver has every file, the storm
 * window passed, or the timeout).  Main thread only; starts and joins its
 * own worker threads.  Returns 0 when the run took place (its figures,
 * including failures, are in *res; free with fy_swarm_result_free), or a
 * negative errno when it could not be set up (sockets, memory). */
int fy_swarm_run(const fy_swarm_cfg *cfg, fy_swarm_result *res);
void fy_swarm_result_free(fy_swarm_result *res);

/* True when the run passed: no integrity failure, no error, no timeout. */
bool fy_swarm_result_ok(const fy_swarm_cfg *cfg, const fy_swarm_result *res);

#endif
