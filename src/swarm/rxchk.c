/*
 * rxchk.c - sequence, content and file checks of one receiver (rxchk.h).
 *
 * Sequence rules: the next seq must be `expect`.  A larger one means the
 * seqs in between are missing: they are counted and remembered as a gap,
 * so if one turns up later it counts as out of order (and no longer as
 * missing) rather than as a duplicate.  A smaller seq outside every gap
 * is a duplicate.  Gaps are kept in a small table; when it is full the
 * oldest is forgotten, so a very late fill of a very old gap counts as a
 * duplicate -- still a failure, just under another name.
 *
 * A file with a defect (gap, corrupt payload) is marked broken: its later
 * size and digest checks are skipped so one defect is counted once.
 */
#include "swarm/rxchk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/digest.h"
#include "ferry/err.h"

#define MAX_GAPS 32

struct gap {
    uint64_t lo, hi; /* missing seqs [lo, hi) */
};

struct fy_rxchk {
    fy_rxchk_cfg cfg;
    fy_rxchk_counts n;
    uint64_t expect; /* 0: not started */
    struct gap gaps[MAX_GAPS];
    unsigned ngaps;
    /* the open file */
    bool open, broken, known_sender;
    uint32_t sender;
    uint64_t begin_seq, declared, got;
    fy_sha256 *sha;
};

int fy_rxchk_new(const fy_rxchk_cfg *cfg, fy_rxchk **out)
{
    fy_rxchk *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->cfg = *cfg;
    if (cfg->hash) {
        int rc = fy_sha256_new(&c->sha);
        if (rc < 0) {
            free(c);
            return rc;
        }
    }
    *out = c;
    return 0;
}

void fy_rxchk_free(fy_rxchk *c)
{
    if (!c)
        return;
    fy_sha256_free(c->sha);
    free(c);
}

void fy_rxchk_expect(fy_rxchk *c, uint64_t seq)
{
    if (c->expect == 0)
        c->expect = seq;
}

uint64_t fy_rxchk_next(const fy_rxchk *c)
{
    return c->expect;
}

const fy_rxchk_counts *fy_rxchk_counts_get(const fy_rxchk *c)
{
    return &c->n;
}

uint64_t fy_rxchk_files_done(const fy_rxchk *c)
{
    return c->n.files_ok + c->n.files_bad;
}

uint64_t fy_rxchk_failures(const fy_rxchk_counts *n)
{
    return n->missing + n->duplicate + n->out_of_order + n->corrupt + n->digest_mismatch +
           n->size_mismatch + n->partial_files + n->proto_errors;
}

/* ---- sequence ------------------------------------------------------------ */

static void gap_add(fy_rxchk *c, uint64_t lo, uint64_t hi)
{
    if (c->ngaps == MAX_GAPS) {
        memmove(&c->gaps[0], &c->gaps[1], (MAX_GAPS - 1) * sizeof c->gaps[0]);
        c->ngaps--;
    }
    c->gaps[c->ngaps++] = (struct gap){lo, hi};
}

/* Remove seq from the gap holding it; false when no gap holds it. */
static bool gap_fill(fy_rxchk *c, uint64_t seq)
{
    for (unsigned i = 0; i < c->ngaps; i++) {
        struct gap *g = &c->gaps[i];
        if (seq < g->lo || seq >= g->hi)
            continue;
        if (seq == g->lo) {
            g->lo++;
        } else if (seq == g->hi - 1) {
            g->hi--;
        } else { /* split: the upper part becomes a new gap */
            uint64_t hi = g->hi;
            g->hi = seq;
            gap_add(c, seq + 1, hi);
            return true;
        }
        if (g->lo >= g->hi) {
            memmove(&c->gaps[i], &c->gaps[i + 1], (c->ngaps - i - 1) * sizeof c->gaps[0]);
            c->ngaps--;
        }
        return true;
    }
    return false;
}

/* true when the frame is the next in the stream (possibly after a gap) and
 * its content should be looked at. */
static bool take_seq(fy_rxchk *c, uint64_t seq)
{
    if (c->expect == 0)
        c->expect = seq;
    if (seq < c->expect) {
        if (gap_fill(c, seq)) {
            c->n.out_of_order++;
            c->n.missing--;
        } else {
            c->n.duplicate++;
        }
        return false;
    }
    if (seq > c->expect) {
        c->n.missing += seq - c->expect;
        gap_add(c, c->expect, seq);
        c->broken = true; /* harmless when no file is open: begin resets it */
    }
    c->expect = seq + 1;
    return true;
}

/* ---- files --------------------------------------------------------------- */

static void file_close(fy_rxchk *c, bool ok)
{
    if (ok)
        c->n.files_ok++;
    else
        c->n.files_bad++;
    c->open = false;
    if (c->sha)
        fy_sha256_reset(c->sha);
}

static bool parse_sender(const char *name, uint32_t nsenders, uint32_t *sender)
{
    unsigned s, f;
    char tail;
    if (sscanf(name, "s%u-f%u%c", &s, &f, &tail) != 2 || s >= nsenders)
        return false;
    *sender = s;
    return true;
}

static void on_begin(fy_rxchk *c, const fy_frame *f)
{
    fy_file_begin b;

    if (c->open) { /* the previous file never ended: it is lost */
        if (!c->broken) /* a gap already counted it */
            c->n.partial_files++;
        file_close(c, false);
    }
    if (fy_file_begin_decode(f->payload, f->hdr.len, &b) < 0) {
        c->n.proto_errors++;
        return;
    }
    c->open = true;
    c->broken = false;
    c->known_sender = parse_sender(b.name, c->cfg.nsenders, &c->sender);
    if (!c->known_sender)
        c->n.proto_errors++;
    c->begin_seq = f->hdr.seq;
    c->declared = b.size;
    c->got = 0;
}

static void on_data(fy_rxchk *c, const fy_frame *f, fy_rxchk_ev *ev)
{
    if (!c->open) {
        c->n.proto_errors++;
        return;
    }
    c->n.data_frames++;
    c->n.data_bytes += f->hdr.len;
    ev->kind = FY_RXCHK_DATA;
    ev->sender = c->sender;
    ev->index = f->hdr.seq - c->begin_seq - 1;
    if (!c->broken && c->known_sender && c->cfg.pat &&
        fy_pattern_cmp(c->cfg.pat, c->sender, c->got, f->payload, f->hdr.len) != 0) {
        c->n.corrupt++;
        c->broken = true;
    }
    if (c->sha && !c->broken)
        fy_sha256_update(c->sha, f->payload, f->hdr.len);
    c->got += f->hdr.len;
}

static void on_end(fy_rxchk *c, const fy_frame *f, fy_rxchk_ev *ev)
{
    fy_file_end e;

    if (!c->open) {
        c->n.proto_errors++;
        return;
    }
    ev->kind = FY_RXCHK_FILE_END;
    ev->sender = c->sender;
    if (fy_file_end_decode(f->payload, f->hdr.len, &e) < 0) {
        c->n.proto_errors++;
        file_close(c, false);
        return;
    }
    if (c->broken) {
        file_close(c, false);
        return;
    }
    bool ok = true;
    if (e.size != c->got || c->declared != c->got) {
        c->n.size_mismatch++;
        ok = false;
    }
    bool dig_ok = true;
    if (c->sha) {
        uint8_t d[32];
        fy_sha256_final(c->sha, d);
        dig_ok = memcmp(d, e.sha256, 32) == 0;
    }
    if (c->cfg.sha && c->known_sender && memcmp(c->cfg.sha[c->sender], e.sha256, 32) != 0)
        dig_ok = false;
    if (ok && !dig_ok) {
        c->n.digest_mismatch++;
        ok = false;
    }
    file_close(c, ok && c->known_sender);
}

void fy_rxchk_frame(fy_rxchk *c, const fy_frame *f, fy_rxchk_ev *ev)
{
    ev->kind = FY_RXCHK_NONE;
    if (!take_seq(c, f->hdr.seq))
        return;
    c->n.frames++;
    switch (f->hdr.type) {
    case FY_FT_FILE_BEGIN:
        on_begin(c, f);
        break;
    case FY_FT_DATA:
        on_data(c, f, ev);
        break;
    case FY_FT_FILE_END:
        on_end(c, f, ev);
        break;
    default:
        c->n.proto_errors++;
    }
}

void fy_rxchk_stream_error(fy_rxchk *c, int err)
{
    if (err == -FY_ECRC)
        c->n.corrupt++;
    else
        c->n.proto_errors++;
    c->broken = true;
}
