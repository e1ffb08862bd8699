/*
 * recv.c - `ferry recv` (see recv.h).
 *
 * Trust nothing from the wire: sequence numbers must be consecutive from
 * welcome's next_seq, a file may not grow past the size its file-begin
 * announced, and the file-end's size and SHA-256 must match what was
 * written.  Names are relative paths, checked by the decoder and again
 * here (fy_path_check), and opened one directory at a time under DIR's fd
 * (tree.h), so nothing is written outside DIR.  The resume state is written at most once a
 * second (and at exit), after an fsync of DIR, so it never claims a file
 * whose rename is not durable.  A file skipped with --skip-damaged does
 * not move the state: a later --resume meets it again.
 */
#include "cli/recv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/conn.h"
#include "cli/cliexit.h"
#include "cli/partfile.h"
#include "cli/outdir.h"
#include "cli/place.h"
#include "cli/progress.h"
#include "cli/retry.h"
#include "cli/state.h"
#include "cli/tree.h"
#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/fd.h"
#include "ferry/klog.h"

#define RECV_HELLO_TIMEOUT_MS 10000
#define RECV_ACK_BYTES ((uint64_t)8 << 20) /* ack progress at least this often */
#define RECV_STATE_INTERVAL_S 1.0
#define RECV_SLEEP_MAX_S 0.05 /* throttle sleeps in slices, to notice a stop */

typedef struct receiver {
    const fy_cli_recv_opts *o;
    fy_cli_conn *k;
    int dirfd;
    fy_sha256 *sha;
    fy_cli_progress prog;
    uint64_t expect;        /* next stream seq */
    /* the file being received */
    bool in_file;
    fy_cli_part pf;         /* its temp file (partfile.h), in pdir */
    int pdir;               /* the directory under --out that holds it (tree.h) */
    const char *base;       /* its last component, in name */
    fy_file_begin fb;       /* its file-begin (mode, mtime) */
    char name[FY_NAME_MAX + 1];
    uint64_t size, got;
    uint64_t part_seq;      /* its file-begin's seq */
    double t0;
    /* progress of the run */
    uint64_t files, bytes, done_seq; /* done_seq: after the last completed file-end */
    uint64_t skipped;       /* frames outside a file (joined mid-file) */
    uint64_t notices;       /* FY_FT_NOTICE frames: what the relay skipped */
    /* --skip-damaged: a skipped file is counted at its file-end (or at the
     * next file-begin when the frame before it was the damaged one), as
     * after a damaged frame we cannot tell which file the frames are of. */
    uint64_t damaged;       /* files skipped because they failed their check */
    bool skipping;          /* after damage: skip to the next file-begin */
    uint64_t bad_seq;       /* the last damaged frame's seq */
    uint64_t unacked;
    double welcome_t, last_state_t, last_end_t;
    uint64_t state_seq;     /* what the state file holds */
    uint64_t epoch;         /* the relay log's epoch our latest frames came from (0: unknown) */
    double rate_t0;
    uint64_t rate_bytes;
    fy_cli_recv_result res;
} receiver;

/* ---- local files ------------------------------------------------------------ */

static int local_fail(receiver *r, const char *call, const char *what, int err)
{
    fy_klog(FY_LOG_ERROR, "local I/O error", "call=%s file=%s dir=%s err=%s reason=\"%s\" exit=%d",
            call, what, r->o->out_dir, fy_errname(-err), fy_strerror(-err), FY_CLI_EXIT_IO);
    return FY_CLI_EXIT_IO;
}

/* On a terminal, between files: say the receiver is there and waiting,
 * so a quiet channel is not a blank screen.  The next bar replaces it. */
static void waiting(receiver *r)
{
    char t[400];
    snprintf(t, sizeof t, "connected to %s, channel %s: waiting for the next file", r->o->server,
             r->o->channel);
    fy_cli_progress_status(&r->prog, t);
}

static void discard_part(receiver *r)
{
    if (!r->in_file)
        return;
    fy_cli_part_discard(&r->pf);
    close(r->pdir);
    r->in_file = false;
    fy_cli_progress_abort(&r->prog);
}

static int save_state(receiver *r)
{
    if (r->done_seq == 0 || r->done_seq == r->state_seq)
        return 0;
    /* The renames the state vouches for must be on disk before it is. */
    if (fsync(r->dirfd) != 0)
        return -errno;
    int rc = fy_cli_state_save(r->dirfd, r->o->channel, r->done_seq);
    if (rc == 0) {
        r->state_seq = r->done_seq;
        r->last_state_t = fy_cli_progress_now();
    }
    return rc;
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
        return local_fail(r, "open (directories of the name)", r->name, rc);
    const char *call;
    if ((rc = fy_cli_part_open(&r->pf, r->pdir, r->base, &call)) < 0)
        close(r->pdir);
    return rc < 0 ? local_fail(r, call, r->name, rc) : 0;
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
        discard_part(r);
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
    discard_part(r);
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
        return local_fail(r, hole ? "lseek" : "write", r->pf.tmp, rc);
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
    return rc < 0 ? local_fail(r, call, r->name, rc) : 0;
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
    waiting(r);
    if (r->files == 1 || now - r->last_state_t >= RECV_STATE_INTERVAL_S) {
        rc = save_state(r);
        if (rc < 0)
            return local_fail(r, "state save", FY_CLI_STATE_FILE, rc);
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
        discard_part(r);
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
static int on_frame(receiver *r, const fy_frame *f)
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

static int start_hello(receiver *r, fy_hello *h)
{
    const fy_cli_recv_opts *o = r->o;
    h->role = FY_ROLE_RECEIVER;
    /* Ahead of the log is for a stream we had (a reconnect, our state
     * file); a --from-seq past the end stays FY_ENOSEQ.  An older relay
     * refuses the flag: fy_cli_dial drops it. */
    h->flags = o->start == FY_CLI_RECV_FROM_SEQ ? 0 : FY_HELLO_F_AHEAD;
    h->flags |= FY_HELLO_F_NOTICE; /* an edge relay tells us what it skipped */
    h->flags |= FY_HELLO_F_SKIP; /* deleted files are left out, not sent */
    h->flags |= FY_HELLO_F_WAIT; /* a channel that does not exist yet: told, and we wait */
    snprintf(h->channel, sizeof h->channel, "%s", o->channel);
    snprintf(h->token, sizeof h->token, "%s", o->token ? o->token : "");
    h->mode = o->start == FY_CLI_RECV_LIVE ? FY_MODE_LIVE : FY_MODE_START;
    if (o->start == FY_CLI_RECV_FROM_SEQ) {
        h->mode = FY_MODE_RESUME;
        h->resume_from = o->from_seq;
    }
    if (o->start != FY_CLI_RECV_RESUME)
        return FY_CLI_EXIT_OK;
    char ch[FY_NAME_MAX + 1];
    uint64_t seq = 0;
    int rc = fy_cli_state_load(r->dirfd, ch, sizeof ch, &seq);
    if (rc == -ENOENT) {
        fy_klog(FY_LOG_INFO, "no resume state: starting from the first file the relay holds",
                "dir=%s", o->out_dir);
        return FY_CLI_EXIT_OK;
    }
    if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "cannot read resume state", "file=%s/%s err=%s exit=%d", o->out_dir,
                FY_CLI_STATE_FILE, fy_errname(rc), FY_CLI_EXIT_IO);
        return FY_CLI_EXIT_IO;
    }
    if (strcmp(ch, o->channel) != 0) {
        fy_klog(FY_LOG_ERROR, "resume state belongs to another channel", "dir=%s state_channel=%s channel=%s exit=%d",
                o->out_dir, ch, o->channel, FY_CLI_EXIT_USAGE);
        return FY_CLI_EXIT_USAGE;
    }
    h->mode = FY_MODE_RESUME;
    h->resume_from = seq;
    r->state_seq = seq;
    fy_klog(FY_LOG_INFO, "resuming", "channel=%s from_seq=%llu", ch, (unsigned long long)seq);
    return FY_CLI_EXIT_OK;
}

static int open_dir(receiver *r)
{
    if (mkdir(r->o->out_dir, 0755) != 0 && errno != EEXIST)
        return local_fail(r, "mkdir", r->o->out_dir, -errno);
    r->dirfd = open(r->o->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->dirfd < 0)
        return local_fail(r, "open", r->o->out_dir, -errno);
    if (fy_sha256_new(&r->sha) < 0)
        return local_fail(r, "sha256", "-", -ENOMEM);
    return fy_cli_outdir_writable(r->dirfd, r->o->out_dir);
}

/* The welcome w of a connection that resumed at r->expect (a reconnect). */
static void on_rewelcome(receiver *r, const fy_welcome *w)
{
    if (w->next_seq == r->expect)
        return;
    fy_klog(FY_LOG_WARN, "the relay no longer holds where we stopped: frames were lost to "
            "retention", "wanted_seq=%llu first_seq=%llu action=\"discard the partial file\"",
            (unsigned long long)r->expect, (unsigned long long)w->next_seq);
    discard_part(r);
    r->expect = w->next_seq;
}

/* The relay's log ends before frames we received (w: FY_WELCOME_F_AHEAD):
 * it lost its unsynced tail (a power loss) after sending it to us.  What we
 * hold past w->next_seq may be sent differently now, so nothing of it is
 * continued: the partial file goes (the relay starts us at its file-begin
 * when it still holds it), completed files stay (they passed their
 * SHA-256), and the resume state moves back to where the relay starts us,
 * so a later --resume does not skip what the relay sends from there. */
static int on_ahead(receiver *r, const fy_welcome *w, uint64_t wanted)
{
    fy_klog(FY_LOG_WARN, "ahead of the relay's log: it lost frames we received",
            "wanted_seq=%llu from_seq=%llu epoch_seq=%llu partial=%s "
            "action=\"discard the partial file, keep completed files, continue from from_seq\"",
            (unsigned long long)wanted, (unsigned long long)w->next_seq,
            (unsigned long long)w->epoch_seq, r->in_file ? r->pf.tmp : "none");
    discard_part(r);
    r->skipping = false;
    r->expect = w->next_seq;
    uint64_t held = r->done_seq ? r->done_seq : r->state_seq;
    if (held <= w->next_seq)
        return 0;
    r->done_seq = w->next_seq;
    int rc = save_state(r);
    return rc < 0 ? local_fail(r, "state save", FY_CLI_STATE_FILE, rc) : 0;
}

/* Has the run received (or skipped) the files --count asked for? */
static bool count_done(const receiver *r)
{
    uint64_t done = r->done_seq > r->state_seq ? r->done_seq : r->state_seq;
    return (r->o->count != 0 && r->files + r->damaged >= r->o->count) ||
           (r->o->until_seq != 0 && done >= r->o->until_seq);
}

/* The decoder rejected the next frame with err.  With --skip-damaged and a
 * damaged frame (CRC, header check), the frame is the seq we expected (every
 * earlier one was taken in order): skip the file it belongs to, move past
 * it and return true (the caller reconnects there: the connection's
 * framing is lost).  Else false. */
static bool skip_bad_frame(receiver *r, int err)
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

/* ---- the session: connections, reconnects ------------------------------------ */

/* The hello said on every connection of the run, and where the last
 * connection stands. */
typedef struct dialer {
    fy_hello h;
    fy_welcome w;
    fy_cli_retry rt;
    int tmo;
    const char *what; /* "connect", "hello" or "receive", for fy_cli_conn_fail */
    bool welcomed;    /* a relay has welcomed the run (the stream's start is fixed) */
    bool told;        /* a relay said it has no such channel (we waited for it) */
} dialer;

/* The relay has no channel of our name (FY_FT_NOCHAN): say so, then wait
 * for the welcome without a time limit (a sender creates the channel), or
 * with --no-wait exit 3.  Returns 0, an exit code, or -errno / -FY_E*. */
static int wait_channel(receiver *r, dialer *d)
{
    const fy_cli_recv_opts *o = r->o;
    char msg[FY_NAME_MAX + 64];
    if (o->no_wait) {
        snprintf(msg, sizeof msg, "no channel '%s' on the relay", o->channel);
        fy_klog(FY_LOG_ERROR, msg, "server=%s channel=%s no_wait=yes exit=%d", o->server,
                o->channel, FY_CLI_EXIT_REFUSED);
        return FY_CLI_EXIT_REFUSED;
    }
    snprintf(msg, sizeof msg, "no channel '%s' on the relay; waiting for it", o->channel);
    fy_klog(FY_LOG_WARN, msg, "server=%s channel=%s", o->server, o->channel);
    d->told = true; /* the relay is there: a lost connection is retried as after a welcome */
    if (o->on_waiting)
        o->on_waiting(o->arg);
    double t0 = fy_cli_progress_now();
    int rc = fy_cli_conn_welcome(r->k, -1, &d->w);
    if (rc == 0)
        fy_klog(FY_LOG_INFO, "channel created: receiving", "server=%s channel=%s", o->server,
                o->channel);
    else if (fy_cli_progress_now() - t0 >= FY_CLI_RETRY_UP_MS / 1000.0)
        fy_cli_retry_progress(&d->rt); /* it was up: not a failed attempt */
    return rc;
}

static int dial(receiver *r, dialer *d)
{
    const fy_cli_recv_opts *o = r->o;
    int rc = fy_cli_dial(o->server, d->tmo, o->tls, o->cancel, &d->h, &r->k, &d->w, &d->what);
    return rc == -FY_ENOCHAN ? wait_channel(r, d) : rc;
}

/* Later hellos ask for the stream from the next seq we need, saying which
 * log epoch our frames came from and where our partial file began (for
 * the relay's check that we are not ahead of its log). */
static void hello_resume(receiver *r, dialer *d)
{
    d->h.mode = FY_MODE_RESUME;
    d->h.resume_from = r->expect;
    d->h.flags |= FY_HELLO_F_AHEAD;
    d->h.epoch = r->epoch;
    d->h.part_seq = r->in_file ? r->part_seq : 0;
}

/* A connection said welcome: the first fixes where the stream starts, a
 * later one (a reconnect) must continue it; either may say we are ahead
 * of the relay's log.  Returns 0 or an exit code (a local failure). */
static int on_welcome(receiver *r, dialer *d)
{
    const fy_cli_recv_opts *o = r->o;
    bool ahead = d->w.ext2 && (d->w.wflags & FY_WELCOME_F_AHEAD);
    int code = 0;
    if (d->w.ext2)
        r->epoch = d->w.epoch;
    if (ahead)
        code = on_ahead(r, &d->w, d->h.resume_from);
    if (d->welcomed) {
        if (!ahead)
            on_rewelcome(r, &d->w);
    } else {
        if (!ahead && d->h.mode == FY_MODE_RESUME && d->w.next_seq > d->h.resume_from)
            fy_klog(FY_LOG_WARN, "the relay no longer holds where we stopped: files were lost to retention",
                    "wanted_seq=%llu first_seq=%llu", (unsigned long long)d->h.resume_from,
                    (unsigned long long)d->w.next_seq);
        r->expect = d->w.next_seq;
        r->welcome_t = r->rate_t0 = fy_cli_progress_now();
        r->rate_bytes = 0;
        if (o->on_welcome)
            o->on_welcome(o->arg, &d->w);
        d->welcomed = true;
    }
    d->what = "receive";
    if (!r->in_file)
        waiting(r);
    return code;
}

/* Frames until the connection or a frame fails, or --count is met. */
static int receive(receiver *r)
{
    int rc = 0;
    while (rc == 0 && !count_done(r)) {
        fy_frame f;
        rc = fy_cli_conn_next(r->k, &f, false);
        if (rc == 1)
            rc = on_frame(r, &f);
    }
    return rc;
}

/* Did the error come from the bytes of a stream a relay welcomed us to
 * (not from the relay's own error frame, nor from connecting)? */
static bool stream_error(const receiver *r, const dialer *d)
{
    return d->welcomed && !strcmp(d->what, "receive") && !fy_cli_conn_relay_error(r->k);
}

/* skip_bad_frame moved past a damaged frame: not a lost connection, so
 * reconnect after it at once.  False when --count is met (*rc = 0). */
static bool redial_after_bad_frame(receiver *r, dialer *d, int *rc)
{
    fy_cli_conn_close(r->k, false);
    r->k = NULL;
    if (count_done(r)) {
        *rc = 0;
        return false;
    }
    hello_resume(r, d);
    *rc = dial(r, d);
    return true;
}

/* Is rc a lost connection to try again?  Before the first welcome only a
 * connection lost during the hello is (the relay is there: it was
 * restarting); a refused connect still exits at once, so a wrong address
 * fails fast. */
static bool retryable(const dialer *d, int rc)
{
    /* a first hello nothing answered: not a Ferry relay, most likely */
    bool first_silent = !d->welcomed && !d->told && rc == -ETIMEDOUT;
    return rc < 0 &&
           (d->welcomed || d->told || (strcmp(d->what, "hello") == 0 && !first_silent)) &&
           fy_cli_retry_transient(rc, strcmp(d->what, "receive") != 0);
}

/* Lost with *rc: say hello again from the next seq we need, keeping the
 * partial file (the rest of it continues it), after the retry policy's
 * wait.  The connection made progress when it got frames (r->expect moved
 * past expect0) or stayed up long enough since up_t.  False when the wait
 * gives up (*rc: -EINTR on a stop, else unchanged). */
static bool redial_lost(receiver *r, dialer *d, int *rc, uint64_t expect0, double up_t)
{
    const fy_cli_recv_opts *o = r->o;
    if (r->expect > expect0 || fy_cli_progress_now() - up_t >= FY_CLI_RETRY_UP_MS / 1000.0)
        fy_cli_retry_progress(&d->rt); /* it got frames, or it was up: not a failed attempt */
    char q[FY_ERRTEXT_MAX + 8];
    fy_klog(FY_LOG_WARN, "connection to relay lost: reconnecting", "server=%s during=%s "
            "err=%s reason=%s resume_seq=%llu partial=%s attempt=%u of=%u", o->server, d->what,
            fy_errname(*rc), fy_klog_q(fy_strerror(*rc), q, sizeof q),
            (unsigned long long)r->expect, r->in_file ? r->pf.tmp : "none", d->rt.failed + 1,
            d->rt.max);
    fy_cli_conn_close(r->k, false);
    r->k = NULL;
    int wr = fy_cli_retry_wait(&d->rt, o->cancel);
    if (wr < 0) {
        *rc = wr == -EINTR ? wr : *rc;
        return false;
    }
    if (d->welcomed) /* else the first hello again, as asked */
        hello_resume(r, d);
    *rc = dial(r, d);
    return true;
}

/* The exit code for how the session ended. */
static int session_code(receiver *r, const dialer *d, int rc)
{
    if (rc > 0)
        return rc; /* a local failure, already logged */
    if (rc < 0) {
        int code = fy_cli_conn_fail(r->k, rc, d->what);
        if (code == FY_CLI_EXIT_CHECKSUM && r->in_file)
            fy_klog(FY_LOG_ERROR, "file discarded", "file=%s", r->name);
        return code;
    }
    return FY_CLI_EXIT_OK;
}

static int session(receiver *r)
{
    dialer d = {.tmo = r->o->timeout_ms ? r->o->timeout_ms : RECV_HELLO_TIMEOUT_MS,
                .what = "connect"};
    int code = start_hello(r, &d.h);
    if (code != FY_CLI_EXIT_OK)
        return code;
    fy_cli_retry_init(&d.rt, r->o->retries);
    int rc = dial(r, &d);
    for (;;) {
        if (rc == 0 && (code = on_welcome(r, &d)) != 0)
            return code;
        uint64_t expect0 = r->expect;
        double up_t = fy_cli_progress_now();
        if (rc == 0)
            rc = receive(r);
        if (rc < 0 && stream_error(r, &d)) {
            /* Magic and version are checked before the header CRC, which
             * covers them: from a relay that welcomed us, they are a
             * damaged header (exit 4), not another protocol (exit 3). */
            if (rc == -FY_EMAGIC || rc == -FY_EVERSION)
                rc = -FY_EHDRCHECK;
            if (skip_bad_frame(r, rc)) {
                if (!redial_after_bad_frame(r, &d, &rc))
                    break;
                continue;
            }
        }
        if (!retryable(&d, rc) || !redial_lost(r, &d, &rc, expect0, up_t))
            break;
    }
    return session_code(r, &d, rc);
}

int fy_cli_recv_run(const fy_cli_recv_opts *o, fy_cli_recv_result *res)
{
    receiver r = {.o = o, .dirfd = -1};
    fy_cli_part_init(&r.pf);
    fy_cli_progress_init(&r.prog, o->progress, o->json);
    int code = open_dir(&r);
    if (code == FY_CLI_EXIT_OK)
        code = session(&r);
    bool had_part = r.in_file;
    discard_part(&r);
    int src = r.dirfd >= 0 ? save_state(&r) : 0;
    if (src < 0 && code == FY_CLI_EXIT_OK)
        code = local_fail(&r, "state save", FY_CLI_STATE_FILE, src);
    if (code == FY_CLI_EXIT_INTR)
        fy_klog(FY_LOG_WARN, "interrupted: the files received so far are complete",
                "files_completed=%llu skipped=%llu last_completed=%s partial_removed=%s "
                "resume_seq=%llu exit=%d", (unsigned long long)r.files,
                (unsigned long long)r.damaged, r.files ? r.res.last_name : "none",
                had_part ? r.pf.tmp : "none", (unsigned long long)r.done_seq, code);
    double secs = (r.last_end_t > 0 ? r.last_end_t : fy_cli_progress_now()) - r.welcome_t;
    if (r.welcome_t == 0)
        secs = 0;
    if (code == FY_CLI_EXIT_OK) {
        char kv[200];
        snprintf(kv, sizeof kv, "files=%llu bytes=%llu seconds=%.3f mbps=%.1f skipped=%llu status=ok",
                 (unsigned long long)r.files, (unsigned long long)r.bytes, secs,
                 fy_cli_progress_mbps(r.bytes, secs), (unsigned long long)r.damaged);
        fy_cli_progress_total(&r.prog, kv);
    }
    if (res) {
        r.res.files = r.files;
        r.res.bytes = r.bytes;
        r.res.skipped = r.damaged;
        r.res.seconds = secs;
        r.res.next_seq = r.done_seq;
        r.res.notices = r.notices;
        *res = r.res;
    }
    fy_cli_conn_close(r.k, code == FY_CLI_EXIT_OK);
    fy_sha256_free(r.sha);
    if (r.dirfd >= 0)
        close(r.dirfd);
    return code;
}
