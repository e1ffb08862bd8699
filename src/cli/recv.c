/*
 * recv.c - `ferry recv` (see recv.h): the run -- the out directory, the
 * resume state, the hello, connections and reconnects.  What each stream
 * frame does to the file being received is recvframe.c (recv_int.h).
 *
 * The resume state is written at most once a second (and at exit), after
 * an fsync of DIR, so it never claims a file whose rename is not durable.
 * A file skipped with --skip-damaged does not move the state: a later
 * --resume meets it again.  A reconnect continues the stream at the next
 * seq it needs, and every welcome is checked against what we hold.
 */
#include "cli/recv_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cliexit.h"
#include "cli/outdir.h"
#include "cli/retry.h"
#include "cli/state.h"
#include "ferry/err.h"
#include "ferry/klog.h"

#define RECV_HELLO_TIMEOUT_MS 10000


/* ---- local files ------------------------------------------------------------ */

int fy__recv_local_fail(receiver *r, const char *call, const char *what, int err)
{
    fy_klog(FY_LOG_ERROR, "local I/O error", "call=%s file=%s dir=%s err=%s reason=\"%s\" exit=%d",
            call, what, r->o->out_dir, fy_errname(-err), fy_strerror(-err), FY_CLI_EXIT_IO);
    return FY_CLI_EXIT_IO;
}

/* On a terminal, between files: say the receiver is there and waiting,
 * so a quiet channel is not a blank screen.  The next bar replaces it. */
void fy__recv_waiting(receiver *r)
{
    char t[400];
    snprintf(t, sizeof t, "connected to %s, channel %s: waiting for the next file", r->o->server,
             r->o->channel);
    fy_cli_progress_status(&r->prog, t);
}

int fy__recv_save_state(receiver *r)
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
        return fy__recv_local_fail(r, "mkdir", r->o->out_dir, -errno);
    r->dirfd = open(r->o->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->dirfd < 0)
        return fy__recv_local_fail(r, "open", r->o->out_dir, -errno);
    if (fy_sha256_new(&r->sha) < 0)
        return fy__recv_local_fail(r, "sha256", "-", -ENOMEM);
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
    fy__recv_discard_part(r);
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
    fy__recv_discard_part(r);
    r->skipping = false;
    r->expect = w->next_seq;
    uint64_t held = r->done_seq ? r->done_seq : r->state_seq;
    if (held <= w->next_seq)
        return 0;
    r->done_seq = w->next_seq;
    int rc = fy__recv_save_state(r);
    return rc < 0 ? fy__recv_local_fail(r, "state save", FY_CLI_STATE_FILE, rc) : 0;
}

/* Has the run received (or skipped) the files --count asked for? */
static bool count_done(const receiver *r)
{
    uint64_t done = r->done_seq > r->state_seq ? r->done_seq : r->state_seq;
    return (r->o->count != 0 && r->files + r->damaged >= r->o->count) ||
           (r->o->until_seq != 0 && done >= r->o->until_seq);
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
    bool reached;     /* a relay accepted a connection of this run */
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
    if (strcmp(d->what, "connect") != 0)
        d->reached = true;
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
        fy__recv_waiting(r);
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
            rc = fy__recv_frame(r, &f);
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

/* Is rc a lost connection to try again?  Before the first welcome, only
 * once a relay has accepted a connection of this run (it is there: a hello
 * it cut, or a connect it refuses now, means it is restarting); a refused
 * first connect still exits at once, so a wrong address fails fast. */
static bool retryable(const dialer *d, int rc)
{
    /* a first hello nothing answered: not a Ferry relay, most likely */
    bool first_silent = !d->welcomed && !d->told && rc == -ETIMEDOUT;
    return rc < 0 && (d->welcomed || d->told || (d->reached && !first_silent)) &&
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
            if (fy__recv_skip_bad_frame(r, rc)) {
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
    fy__recv_discard_part(&r);
    int src = r.dirfd >= 0 ? fy__recv_save_state(&r) : 0;
    if (src < 0 && code == FY_CLI_EXIT_OK)
        code = fy__recv_local_fail(&r, "state save", FY_CLI_STATE_FILE, src);
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
