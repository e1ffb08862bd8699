/*
 * upstream_recon.c - an edge that is ahead of its upstream's log takes the
 * upstream's stream up again without duplicating a file to its receivers
 * (docs/reliability.md, "An edge ahead of its upstream").
 *
 * The upstream lost frames after this edge had stored them (a power loss
 * took its unsynced tail) and starts us earlier, at S (FY_WELCOME_F_AHEAD).
 * What it numbers from S on is usually what it had before -- the same
 * sender resends the files it got no ack for, with the same seqs and bytes
 * (reliability.md, "Resent frames are identical") -- and sometimes other
 * files (another sender came first).  This edge cannot cut its own log back
 * (its receivers have those frames), so it compares instead: while the
 * upstream's seqs are below this edge's end, each file the upstream sends
 * is matched against the files this edge stored at the same seqs (a ring
 * of the last RECON_RING files it completed: seqs, name, size, SHA-256; and
 * its partial file).  A match is the same file again and is dropped; the
 * edge's partial file matched at its file-begin is continued at the edge's
 * end in the old numbering (the writer's SHA-256 check at its file-end is
 * the backstop).  The first file that does not match is new: it and all
 * after it get local seqs from the edge's end on (a new delta, as after
 * FY_ENOSEQ), and the partial file, if any, stays unfinished (receivers drop
 * it at that file-begin).  A file whose file-begin matched and whose
 * file-end does not is one the edge already gave its receivers under that
 * name with other bytes: it is skipped and logged.
 *
 * The ring lives in memory; an edge restarted meanwhile reads it back from
 * the tail of its own log when it first needs it (rebuild: its last two
 * segments, a pread per frame, on this actor's turn: rare, and bounded).
 * Everything here runs on the upstream actor's turn.
 */
#include <inttypes.h>
#include <string.h>

#include "ferry/klog.h"
#include "ferry/proto.h"
#include "store/mirror.h"
#include "upstream_int.h"

/* FNV-1a: enough to tell two names apart in a match that also needs the
 * same seq, size and (at the file-end) SHA-256. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* ---- the files that passed ---------------------------------------------------- */

void fy__upstream_note_marks(upstream *u, const fy__batch *b)
{
    for (uint32_t k = 0; k < b->nmarks; k++) {
        const fy__file_mark *mk = &b->marks[k];
        uint64_t q = fy__batch_seq(b, mk->frame); /* upstream numbering: before the restamp */
        if (mk->type == FY_FT_FILE_BEGIN) {
            u->cur = (up_file){.begin = q, .size = mk->size,
                               .name_h = name_hash(fy__batch_name(b, mk))};
            continue;
        }
        if (u->cur.begin && mk->size == u->cur.size) {
            u->cur.end = q;
            memcpy(u->cur.sha, mk->sha256, sizeof u->cur.sha);
            u->done[u->done_head] = u->cur;
            u->done_head = (u->done_head + 1) % RECON_RING;
            if (u->done_n < RECON_RING)
                u->done_n++;
        }
        u->cur.begin = 0;
    }
}

/* The completed file this edge stored with its file-begin at upstream seq
 * q, named and sized as mk says; NULL when none. */
static const up_file *find_done(const upstream *u, uint64_t q, const fy__file_mark *mk,
                                uint64_t nh)
{
    for (unsigned i = 0; i < u->done_n; i++) {
        const up_file *f = &u->done[i];
        if (f->begin == q && f->size == mk->size && f->name_h == nh)
            return f;
    }
    return NULL;
}

/* Files at or after upstream seq q are numbered anew upstream: forget them. */
static void forget_from(upstream *u, uint64_t q)
{
    for (unsigned i = 0; i < u->done_n; i++)
        if (u->done[i].begin >= q)
            u->done[i].begin = 0;
}

/* An edge restarted meanwhile remembers no file: read them back from its
 * log's tail (src/store/mirror.c), numbered with today's delta (a file
 * stored under an older one then matches nothing, and is stored again). */
static void rebuild(upstream *u)
{
    fy_mirror_file f[RECON_RING], part;
    int n = fy_mirror_tail_files(u->dir, f, RECON_RING, &part);

    for (int i = 0; i < n; i++) {
        u->done[u->done_head] = (up_file){.begin = (uint64_t)((int64_t)f[i].begin + u->delta),
                                          .end = (uint64_t)((int64_t)f[i].end + u->delta),
                                          .size = f[i].size, .name_h = name_hash(f[i].name)};
        memcpy(u->done[u->done_head].sha, f[i].sha256, FY_SHA256_LEN);
        u->done_head = (u->done_head + 1) % RECON_RING;
        u->done_n += u->done_n < RECON_RING;
    }
    if (part.begin && !u->cur.begin)
        u->cur = (up_file){.begin = (uint64_t)((int64_t)part.begin + u->delta),
                           .size = part.size, .name_h = name_hash(part.name)};
    fy_klog(FY_LOG_INFO, "files read back from the log", "channel=%s files=%d partial=%s%s",
            u->name, n, part.begin ? "yes" : "no", n < 0 ? " (failed)" : "");
}

/* ---- reconciling -------------------------------------------------------------- */

void fy__upstream_recon_start(upstream *u, uint64_t from_seq)
{
    uint64_t end = u->skip_until ? u->skip_until : u->local_next;

    if (u->done_n == 0)
        rebuild(u);
    u->recon_part = u->fb_local ? (uint64_t)((int64_t)u->fb_local + u->delta) : 0;
    u->recon_pf = u->cur.begin == u->recon_part ? u->cur : (up_file){0};
    u->skip_until = end;
    u->recon = true;
    u->seek_begin = false;
    u->recon_match = RM_NONE;
    u->recon_dups = 0;
    u->local_next = (uint64_t)((int64_t)from_seq - u->delta);
}

/* Stop reconciling: nothing more is dropped. */
static void recon_end(upstream *u)
{
    u->recon = u->seek_begin = false;
    u->skip_until = 0;
}

/* The upstream's file at q is not one this edge has: from it on, frames
 * take local seqs from the edge's end (a new delta, set by rebase()). */
static void diverge(upstream *u, uint64_t q)
{
    fy_klog(FY_LOG_WARN, "upstream sends other files where this edge stored frames",
            "channel=%s upstream=%s upstream_seq=%llu local_seq=%llu files_dropped_as_resent=%llu "
            "action=\"store them from the edge's end on; the partial file stays unfinished\"",
            u->name, u->peer, (unsigned long long)q,
            (unsigned long long)u->skip_until, (unsigned long long)u->recon_dups);
    forget_from(u, q);
    u->rebase = u->rebase_quiet = true;
    u->rebase_local = u->skip_until;
    recon_end(u);
}

/* The file-begin at q, as mk says: the same file as one this edge has
 * (dropped), or the first new one (kept). */
static bool on_begin(upstream *u, const fy__batch *b, uint64_t q, const fy__file_mark *mk)
{
    uint64_t nh = name_hash(fy__batch_name(b, mk));
    const up_file *f = find_done(u, q, mk, nh);

    if (f) {
        u->recon_match = RM_DONE;
        u->recon_file = *f;
        return false;
    }
    if (q == u->recon_part && (!u->recon_pf.begin ||
                               (u->recon_pf.size == mk->size && u->recon_pf.name_h == nh))) {
        u->recon_match = RM_PART;
        return false;
    }
    diverge(u, q);
    return true;
}

/* The frame of type t at upstream seq q below the edge's end (mk: its mark
 * or NULL): false to drop it, true to keep it and what follows. */
static bool below_end(upstream *u, const fy__batch *b, uint64_t q, uint8_t t,
                      const fy__file_mark *mk)
{
    if (t == FY_FT_FILE_BEGIN && mk)
        return on_begin(u, b, q, mk);
    if (u->recon_match != RM_DONE)
        return false; /* the partial's frames, or the rest of a file that began before S */
    const up_file *f = &u->recon_file;
    bool same = t == FY_FT_FILE_END ? q == f->end && mk && !memcmp(mk->sha256, f->sha, sizeof f->sha)
                                    : q < f->end;
    if (!same) {
        /* The same name at the same seq with other bytes: the edge's
         * receivers have the old ones under that name; the new ones cannot
         * follow without their file-begin. */
        fy_klog(FY_LOG_WARN, "upstream file skipped: the edge holds other bytes under its name",
                "channel=%s upstream=%s upstream_seq=%llu file_begin_seq=%llu "
                "action=\"skip to the next file-begin\"", u->name, u->peer,
                (unsigned long long)q, (unsigned long long)f->begin);
        u->seek_begin = true;
        u->recon_match = RM_NONE;
    } else if (t == FY_FT_FILE_END) {
        u->recon_dups++;
        u->recon_match = RM_NONE;
    }
    return false;
}

/* One frame while reconciling: false to drop it, true to keep it and all
 * after it. */
static bool recon_frame(upstream *u, const fy__batch *b, uint32_t i, const fy__file_mark *mk)
{
    uint64_t q = fy__batch_seq(b, i);
    uint8_t t = fy__batch_type(b, i);
    uint64_t end = (uint64_t)((int64_t)u->skip_until + u->delta);

    if (u->seek_begin) {
        if (t != FY_FT_FILE_BEGIN)
            return false;
        diverge(u, q);
        return true;
    }
    if (q < end)
        return below_end(u, b, q, t, mk);
    if (t == FY_FT_FILE_BEGIN || u->recon_match == RM_PART) {
        /* The upstream's stream reached our end where ours stops: at a file
         * boundary, or inside our partial file, which it continues. */
        fy_klog(FY_LOG_INFO, "edge reconciled with its upstream", "channel=%s upstream=%s "
                "files_dropped_as_resent=%llu local_seq=%llu partial=%s", u->name,
                u->peer, (unsigned long long)u->recon_dups,
                (unsigned long long)u->skip_until,
                u->recon_match == RM_PART ? "continued" : "none");
        recon_end(u);
        return true;
    }
    u->seek_begin = true; /* another file's middle at our end: wait for a file-begin */
    return false;
}

bool fy__upstream_recon(upstream *u, fy__batch *b)
{
    uint32_t k = 0, m = 0;

    for (; k < b->n; k++) {
        while (m < b->nmarks && b->marks[m].frame < k)
            m++;
        const fy__file_mark *mk = m < b->nmarks && b->marks[m].frame == k ? &b->marks[m] : NULL;
        if (recon_frame(u, b, k, mk))
            break;
    }
    if (k == b->n) {
        fy_ingest_credit(u->ing, b->held);
        fy__batch_unref(b);
        return false;
    }
    fy__batch_drop_front(b, k);
    return true;
}
