/*
 * recvframe.c - what `ferry recv` does with each stream frame (recv_int.h):
 * the file being received, from its file-begin to its file-end.
 *
 * Trust nothing from the wire: sequence numbers must be consecutive from
 * welcome's next_seq, a file may not grow past the size its file-begin
 * announced, and the file-end's size and SHA-256 must match what was
 * written.  Names are relative paths, checked by the decoder and again
 * here (fy_path_check), and opened one directory at a time under DIR's fd
 * (tree.h), so nothing is written outside DIR.  A file that fails its
 * check ends the run, or with --skip-damaged is discarded with a warning
 * and the frames up to the next file-begin are skipped.
 */
#include "cli/recv_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "cli/cliexit.h"
#include "cli/place.h"
#include "cli/state.h"
#include "cli/tree.h"
#include "ferry/err.h"
#include "ferry/fd.h"
#include "ferry/klog.h"

#define RECV_ACK_BYTES ((uint64_t)8 << 20) /* ack progress at least this often */
#define RECV_STATE_INTERVAL_S 1.0
#define RECV_SLEEP_MAX_S 0.05 /* throttle sleeps in slices, to notice a stop */

/* ---- the partial file ---------------------------------------------------------- */

void fy__recv_discard_part(receiver *r)
{
    if (!r->in_file)
        return;
    fy_cli_part_discard(&r->pf);
    close(r->pdir);
    r->in_file = false;
    fy_cli_progress_abort(&r->prog);
}

/* ---- stream frames ----------------------------------------------------------- */

/* .BASE.part in the name's directory under --out, made as needed and never
 * through a symlink (tree.h).  0 or an exit code (logged). */
static int open_part(receiver *r, const fy_file_begin *fb)
{
    r->fb = *fb;
    snprintf(r->name, sizeof r->name, "%s", fb->name);
    int rc = fy_cli_tree_parent(r->dirfd, r->name, &r->pdir, &r->base);
    if (rc < 0)
        return fy__recv_local_fail(r, "open (directories of the name)", r->name, rc);
    const char *call;
    if ((rc = fy_cli_part_open(&r->pf, r->pdir, r->base, &call)) < 0)
        close(r->pdir);
    return rc < 0 ? fy__recv_local_fail(r, call, r->name, rc) : 0;
}

static int on_begin(receiver *r, const fy_frame *f)
{
    fy_file_begin fb;
    int rc = fy_file_begin_decode(f->payload, f->hdr.len, &fb);
    if (rc < 0)
        return rc;
    if (r->in_file) {
        fy_klog(FY_LOG_WARN, "file-begin before file-end: the sender died mid-file",
                "file=%s received=%llu of=%llu action=\"discard partial file\"", r->name,
                (unsigned long long)r->got, (unsigned long long)r->size);
        fy__recv_discard_part(r);
    }
    if (r->skipping && f->hdr.seq == r->bad_seq + 1)
        r->damaged++; /* the damaged frame ended the skipped file */
    r->skipping = false;
    if ((rc = open_part(r, &fb)) != 0)
        return rc;
    r->in_file = true;
    r->part_seq = f->hdr.seq;
    r->size = fb.size;
    r->got = 0;
    r->t0 = fy_cli_progress_now();
    fy_sha256_reset(r->sha);
    fy_cli_progress_begin(&r->prog, r->name, r->size);
    return 0;
}

static bool skip_outside_file(receiver *r, const fy_frame *f)
{
    if (r->in_file)
        return false;
    if (r->skipping)
        return true; /* the rest of a damaged file, already reported */
    /* We joined mid-file (live, or --from-seq into a file): its start is not
     * ours to have, so wait for the next file-begin. */
    if (r->skipped++ == 0)
        fy_klog(FY_LOG_INFO, "joined mid-file: skipping to the next file-begin", "seq=%llu type=%s",
                (unsigned long long)f->hdr.seq, fy_frame_type_name(f->hdr.type));
    return true;
}

/* A failed check ends the run (error), or is skipped (warning). */
static enum fy_klog_level check_level(const receiver *r)
{
    return r->o->skip_damaged ? FY_LOG_WARN : FY_LOG_ERROR;
}

/* The file in progress failed its check with err (the caller logged the
 * details).  With --skip-damaged: warn, discard the partial file, skip to
 * the next file-begin (ended: this was its file-end, so the skip is
 * counted now) and return 0; else return err unchanged (exit 4). */
static int skip_damaged(receiver *r, int err, const char *reason, bool ended)
{
    if (!r->o->skip_damaged)
        return err;
    char q[128];
    fy_klog(FY_LOG_WARN, "damaged file skipped", "file=%s reason=%s err=%s received=%llu of=%llu "
            "action=\"discard partial file, continue with the next file\"", r->name,
            fy_klog_q(reason, q, sizeof q), fy_errname(err), (unsigned long long)r->got,
            (unsigned long long)r->size);
    fy__recv_discard_part(r);
    r->damaged += ended;
    r->skipping = !ended;
    return 0;
}

/* Data, or a hole: the file stays sparse (the offset moves; its size is
 * set at its end) and the digest takes the zeros the hole stands for. */
static int on_data(receiver *r, const fy_frame *f)
{
    bool hole = f->hdr.type == FY_FT_HOLE;
    fy_hole h = {.len = f->hdr.len};
    int rc = hole ? fy_hole_decode(f->payload, f->hdr.len, &h) : 0;
    if (rc < 0)
        return rc;
    if (skip_outside_file(r, f))
        return 0;
    if (h.len > r->size - r->got) {
        fy_klog(check_level(r), "file is longer than its file-begin said", "file=%s size=%llu",
                r->name, (unsigned long long)r->size);
        return skip_damaged(r, -FY_ESIZE, "file is longer than its file-begin said", false);
    }
    if (hole) {
        rc = lseek(r->pf.fd, (off_t)h.len, SEEK_CUR) < 0 ? -errno : 0;
        fy_sha256_zeros(r->sha, h.len);
    } else {
        rc = fy_fd_write_all(r->pf.fd, f->payload, f->hdr.len);
        fy_sha256_update(r->sha, f->payload, f->hdr.len);
        r->unacked += h.len;
    }
    if (rc < 0)
        return fy__recv_local_fail(r, hole ? "lseek" : "write", r->pf.tmp, rc);
    r->got += h.len;
    fy_cli_progress_add(&r->prog, h.len);
    return 0;
}

static int place_part(receiver *r, const uint8_t sha[FY_SHA256_LEN]) /* place.h */
{
    const char *call = "close";
    fy_cli_place_req q = {.fd = r->pf.fd, .pdir = r->pdir, .part = r->pf.tmp, .base = r->base,
                          .name = r->name, .fb = r->o->no_perms ? NULL : &r->fb,
                          .policy = r->o->on_conflict, .size = r->size, .sha = sha};
    int rc = fy_cli_place_finish(&q, &call);
    fy_cli_part_init(&r->pf); /* place_finish closed the fd (and removed the file on failure) */
    r->in_file = false; /* fd and pdir are closed, the temp file gone on failure */
    return rc < 0 ? fy__recv_local_fail(r, call, r->name, rc) : 0;
}

static int on_end(receiver *r, const fy_frame *f)
{
    if (!r->in_file && r->skipping) {
        r->damaged++; /* the end of a skipped file */
        r->skipping = false;
        return 0;
    }
    if (skip_outside_file(r, f))
        return 0;
    fy_file_end fe;
    int rc = fy_file_end_decode(f->payload, f->hdr.len, &fe);
    if (rc < 0)
        return rc;
    uint8_t sha[FY_SHA256_LEN];
    fy_sha256_final(r->sha, sha);
    if (fe.size != r->size || r->got != r->size) {
        fy_klog(check_level(r), "file size mismatch", "file=%s begin_size=%llu end_size=%llu "
                "received=%llu", r->name, (unsigned long long)r->size, (unsigned long long)fe.size,
                (unsigned long long)r->got);
        return skip_damaged(r, -FY_ESIZE, "file size mismatch", true);
    }
    if (memcmp(sha, fe.sha256, sizeof sha) != 0) {
        char want[65], got[65];
        fy_sha256_hex(fe.sha256, want);
        fy_sha256_hex(sha, got);
        fy_klog(check_level(r), "file SHA-256 mismatch", "file=%s expected=%s received=%s", r->name,
                want, got);
        return skip_damaged(r, -FY_EDIGEST, "file SHA-256 mismatch", true);
    }
    if ((rc = place_part(r, sha)) != 0)
        return rc;
    double now = fy_cli_progress_now();
    r->files++;
    r->bytes += r->size;
    r->done_seq = f->hdr.seq + 1;
    r->last_end_t = now;
    snprintf(r->res.last_name, sizeof r->res.last_name, "%s", r->name);
    memcpy(r->res.last_sha256, sha, sizeof sha);
    fy_cli_progress_end(&r->prog, r->name, r->size, now - r->t0, sha);
    fy__recv_waiting(r);
    if (r->files == 1 || now - r->last_state_t >= RECV_STATE_INTERVAL_S) {
        rc = fy__recv_save_state(r);
        if (rc < 0)
            return fy__recv_local_fail(r, "state save", FY_CLI_STATE_FILE, rc);
    }
    fy_ack a = {.seq = f->hdr.seq};
    uint8_t p[16];
    size_t n;
    r->unacked = 0;
    if (fy_ack_encode(&a, p, sizeof p, &n) == 0)
        return fy_cli_conn_send(r->k, FY_FT_ACK, 0, p, n);
    return 0;
}

/* ---- the read loop ------------------------------------------------------------ */

/* Sleep until `bytes` more fit under --rate.  -EINTR on a stop. */
static int throttle(receiver *r, uint64_t bytes)
{
    if (!r->o->rate)
        return 0;
    r->rate_bytes += bytes;
    for (int i = 0; i < 1000000; i++) {
        double ahead = r->rate_t0 + (double)r->rate_bytes / (double)r->o->rate - fy_cli_progress_now();
        if (ahead <= 0)
            return 0;
        if (fy_cli_cancel_requested(r->o->cancel))
            return -EINTR;
        double s = ahead < RECV_SLEEP_MAX_S ? ahead : RECV_SLEEP_MAX_S;
        struct timespec ts = {0, (long)(s * 1e9)};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* An edge relay skipped what its upstream no longer held: say so (the
 * files are not missing by our fault, and no other receiver of that relay
 * has them either). */
static int on_notice(receiver *r, const fy_frame *f)
{
    fy_notice v;
    char q[FY_NOTICE_TEXT_MAX + 8];
    int rc = fy_notice_decode(f->payload, f->hdr.len, &v);
    if (rc < 0)
        return rc;
    r->notices++;
    fy_klog(FY_LOG_WARN, "the relay skipped files it never had", "code=%s before_seq=%llu "
            "upstream_from=%llu upstream_to=%llu text=%s", fy_errname((int)v.code),
            (unsigned long long)v.at_seq, (unsigned long long)v.up_from,
            (unsigned long long)v.up_to, fy_klog_q(v.text, q, sizeof q));
    return 0;
}

/* SKIP: the relay leaves out deleted files (`ferry rm`); the stream goes on
 * at s.next, and nothing of them is ours to have or to resume from. */
static int on_skip(receiver *r, const fy_frame *f)
{
    fy_skip s;
    int rc = fy_skip_decode(f->payload, f->hdr.len, &s);
    if (rc < 0)
        return rc;
    if (s.first > r->expect || s.next < r->expect)
        return -FY_ESEQ;
    if (r->in_file) {
        fy_klog(FY_LOG_WARN, "deleted files after a partial file: the sender died mid-file",
                "file=%s action=\"discard partial file\"", r->name);
        fy__recv_discard_part(r);
    }
    r->skipping = false;
    fy_klog(FY_LOG_DEBUG, "deleted files skipped", "first_seq=%llu next_seq=%llu",
            (unsigned long long)s.first, (unsigned long long)s.next);
    r->expect = s.next;
    r->done_seq = s.next;
    return 0;
}

/* Handle one frame; returns 0, a negative error (connection-level, mapped by
 * fy_cli_conn_fail) or a positive exit code (local failure, logged). */
int fy__recv_frame(receiver *r, const fy_frame *f)
{
    if (fy_frame_is_stream(f->hdr.type)) {
        if (f->hdr.seq != r->expect) {
            fy_klog(FY_LOG_ERROR, "sequence gap from relay", "expected=%llu got=%llu",
                    (unsigned long long)r->expect, (unsigned long long)f->hdr.seq);
            return -FY_ESEQ;
        }
        r->expect++;
    }
    int rc;
    switch (f->hdr.type) {
    case FY_FT_FILE_BEGIN:
        rc = on_begin(r, f);
        break;
    case FY_FT_DATA:
    case FY_FT_HOLE:
        rc = on_data(r, f);
        break;
    case FY_FT_FILE_END:
        rc = on_end(r, f);
        break;
    case FY_FT_NOTICE:
        return on_notice(r, f);
    case FY_FT_SKIP:
        rc = on_skip(r, f);
        break;
    case FY_FT_BYE:
        return -ENODATA; /* the relay ended the session */
    default:
        fy_klog(FY_LOG_ERROR, "unexpected frame from relay", "type=%s",
                fy_frame_type_name(f->hdr.type));
        return -FY_EPROTO;
    }
    if (rc == 0 && r->unacked >= RECV_ACK_BYTES) {
        fy_ack a = {.seq = f->hdr.seq};
        uint8_t p[16];
        size_t n;
        r->unacked = 0;
        if (fy_ack_encode(&a, p, sizeof p, &n) == 0)
            rc = fy_cli_conn_send(r->k, FY_FT_ACK, 0, p, n);
    }
    if (rc == 0)
        rc = throttle(r, f->raw_len);
    return rc;
}

/* The decoder rejected the next frame with err.  With --skip-damaged and a
 * damaged frame (CRC, header check), the frame is the seq we expected (every
 * earlier one was taken in order): skip the file it belongs to, move past
 * it and return true (the caller reconnects there: the connection's
 * framing is lost).  Else false. */
bool fy__recv_skip_bad_frame(receiver *r, int err)
{
    if (!r->o->skip_damaged || (err != -FY_ECRC && err != -FY_EHDRCHECK))
        return false;
    fy_klog(FY_LOG_WARN, "damaged frame from relay", "seq=%llu err=%s reason=\"%s\" file=%s "
            "action=\"skip the file, resume at seq+1\"", (unsigned long long)r->expect,
            fy_errname(err), fy_strerror(err),
            r->in_file ? r->name : "unknown");
    if (r->in_file)
        skip_damaged(r, err, "damaged frame", false);
    r->skipping = true; /* outside a file: a damaged file-begin, or more of a skipped file */
    r->bad_seq = r->expect++;
    return true;
}
