/*
 * redirect.h - a cluster's FY_ENOTLEADER answers as the client reads them,
 * and the cluster epochs a run has seen (docs/cluster.md, "Clients").
 *
 * A relay that does not lead a channel names its leader in the error
 * text: `leader=NODE addr=HOST:PORT epoch=E`.  A client remembers, for the
 * run, the highest epoch of each channel it was told of, and does not
 * follow a redirect that names an older one: that relay's view of the
 * cluster is stale (a deposed leader cut off from etcd, a follower that
 * has not polled since the failover), and the leader it names may be the
 * one that lost the channel.
 */
#ifndef FY_CLI_REDIRECT_H
#define FY_CLI_REDIRECT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fy_cli_redirect {
    char leader[80]; /* "" when the text names none */
    char addr[256];  /* HOST:PORT; "" when the leader is not known yet */
    uint64_t epoch;  /* 0 when the text names none */
} fy_cli_redirect;

/* Read an FY_ENOTLEADER text into *r (missing fields empty / 0).  Returns
 * 0 when it names an address to go to, -ENOENT when it does not (the
 * leader is unknown or has no address yet), -EINVAL on a malformed epoch
 * (then r->epoch is 0).  Any thread. */
int fy_cli_redirect_parse(const char *text, fy_cli_redirect *r);

/* The epoch rule: may a redirect for chan that names epoch be followed?
 * True when epoch is 0 (nothing to compare) or at least the highest epoch
 * of chan seen so far in this process, which it then becomes; false when
 * it is older.  *seen (may be NULL) gets the highest epoch of chan known
 * after the call.  The memory holds
 * FY_CLI_EPOCH_CHANNELS channels (a run uses one or a few); past that a
 * new channel is admitted without being remembered.  Any thread. */
#define FY_CLI_EPOCH_CHANNELS 32
bool fy_cli_epoch_admit(const char *chan, uint64_t epoch, uint64_t *seen);

/* Forget every epoch (tests). */
void fy_cli_epoch_reset(void);

#endif
