/*
 * chan_epochs.c - a channel's epochs table in memory (fy__chan.epochs),
 * shared by its writer and upstream (which add entries in cluster mode)
 * and its forwarders (which read it for receivers ahead of the log), under
 * the channel's own mutex.
 *
 * Without --cluster the table is written once, when the registry opens the
 * log (a random id per opening: src/store/epochs.h), and never changes.
 * With --cluster the ids are cluster epochs (docs/cluster.md, "Epochs"):
 * a leader adds (E, its log's next seq) when it begins to lead in epoch E,
 * a follower adds each leader's entry it learns, and an id the table does
 * not hold is trusted only below the current epoch's start.
 */
#include <stdlib.h>
#include <string.h>

#include "ferry/klog.h"
#include "ferry/err.h"
#include "relay_int.h"

void fy__chan_epochs_init(fy__chan *ch, bool cluster)
{
    pthread_mutex_init(&ch->ep_mu, NULL);
    ch->ep_cluster = cluster;
}

void fy__chan_free(fy__chan *ch)
{
    if (!ch)
        return;
    pthread_mutex_destroy(&ch->ep_mu);
    free(ch);
}

fy_epoch fy__chan_epoch_cur(const fy__chan *cch)
{
    fy__chan *ch = (fy__chan *)cch; /* the mutex is the only thing written */
    fy_epoch e = {0};

    pthread_mutex_lock(&ch->ep_mu);
    if (ch->epochs.n)
        e = ch->epochs.e[ch->epochs.n - 1];
    pthread_mutex_unlock(&ch->ep_mu);
    return e;
}

uint64_t fy__chan_valid_below(const fy__chan *cch, uint64_t id)
{
    fy__chan *ch = (fy__chan *)cch; /* the mutex is the only thing written */
    pthread_mutex_lock(&ch->ep_mu);
    uint64_t below = fy_epochs_valid_below(&ch->epochs, id);
    bool kept = false;
    for (unsigned i = 0; i < ch->epochs.n; i++)
        kept |= ch->epochs.e[i].id == id;
    /* In a cluster another relay's history may have reused nothing of
     * ours: frames of an epoch we do not know are ours only below where
     * our current epoch began. */
    if (ch->ep_cluster && id && !kept && ch->epochs.n)
        below = ch->epochs.e[ch->epochs.n - 1].start_seq;
    pthread_mutex_unlock(&ch->ep_mu);
    return below;
}

uint64_t fy__chan_epoch_of(const fy__chan *cch, uint64_t seq)
{
    fy__chan *ch = (fy__chan *)cch; /* the mutex is the only thing written */
    pthread_mutex_lock(&ch->ep_mu);
    uint64_t id = fy_epochs_of(&ch->epochs, seq);
    pthread_mutex_unlock(&ch->ep_mu);
    return id;
}

int fy__chan_epoch_add(const fy__chan *cch, uint64_t id, uint64_t start_seq)
{
    fy__chan *ch = (fy__chan *)cch; /* the mutex is the only thing written */
    pthread_mutex_lock(&ch->ep_mu);
    int rc = fy_epochs_add(ch->dir, &ch->epochs, id, start_seq);
    pthread_mutex_unlock(&ch->ep_mu);
    if (rc == 0)
        fy_klog(FY_LOG_INFO, "cluster epoch recorded", "channel=%s epoch=%llu start_seq=%llu",
                ch->name, (unsigned long long)id, (unsigned long long)start_seq);
    else if (rc < 0)
        fy_klog(FY_LOG_ERROR, "epochs file", "channel=%s dir=%s err=%s action=\"epoch kept in "
                "memory only\"", ch->name, ch->dir, fy_errname(rc));
    return rc;
}
