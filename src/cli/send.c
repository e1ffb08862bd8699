/*
 * send.c - `ferry send` (see send.h).
 *
 * Per file: file-begin(seq, size, name), data frames of `chunk` bytes,
 * file-end(seq, size, sha256).  A batch of up to 1 MiB is read from the
 * file with one read() and written with one writev() of 2 iovecs per frame,
 * so a 64 KiB chunk costs 1/16 of a read and a write.  Acks are collected
 * whenever they are already readable, so neither side's buffers fill with
 * them, and waited for only at the end.
 *
 * Reconnecting (--retry): every file keeps where its file-begin and
 * file-end went (seqs) and what its source was (dev, inode, size, mtime).
 * After a new welcome, files whose file-end is below next_seq are stored;
 * the first one that is not is sent again -- continued at the welcome's
 * part_got when the relay holds part of it (same file-begin seq, name and
 * size, source unchanged): the client re-reads that prefix from its own
 * disk only to hash it, since the file-end carries the whole file's SHA-256.
 *
 * Across runs: the first welcome names the file the relay holds part of
 * and, with FY_HELLO_F_SOURCE, its source id and the SHA-256 of the stored
 * part; a run whose first file is that file (its prefix hashes the same)
 * continues it the same way (rerun_point, continue_at).  Before sending a
 * file from its start, a dup-ask frame asks whether the channel's latest
 * file of that name has its size; if so, and its SHA-256 is ours, the file
 * is not sent (already_stored) -- the one extra read of it happens only
 * then.  Holes (sparse.h) go as hole frames, hashed as zeros.
 */
#include "cli/send.h"

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
#include "cli/dedupe.h"
#include "cli/cliexit.h"
#include "cli/progress.h"
#include "cli/retry.h"
#include "cli/sparse.h"
#include "ferry/digest.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"

#define SEND_BATCH_BYTES ((size_t)1 << 20)
#define SEND_BATCH_MAX 64 /* frames per writev: 128 iovecs, far below IOV_MAX */
#define SEND_HELLO_TIMEOUT_MS 10000
#define SEND_HOLE_MIN ((uint64_t)64 << 10) /* shorter holes go as zeros in data frames */

/* A file that was written and waits for the relay's ack of its file-end. */
typedef struct pending {
    const char *name;
    uint64_t begin_seq, end_seq, bytes; /* end_seq 0: file-end not sent */
    double t0;
    uint8_t sha[FY_SHA256_LEN];
    /* the source when the file was started, to tell a changed one */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} pending;

typedef struct sender {
    const fy_cli_send_opts *o;
    fy_cli_conn *k;
    fy_sha256 *sha;
    fy_cli_progress prog;
    size_t chunk, batch;
    uint8_t *buf;
    uint8_t (*hdrs)[FY_FRAME_HDR_SIZE];
    struct iovec *iov;
    uint64_t seq;       /* next stream seq */
    pending *pend;      /* one per file, in order */
    size_t npend, nacked; /* npend: files whose file-end was sent */
    uint64_t sent;      /* stream-frame bytes written */
    uint64_t acked_seq;
    uint64_t acked_bytes;
    const char *current; /* file being written, for the interrupt message */
    /* a rerun continuing the relay's partial file: its file-begin seq and
     * the SHA-256 of its stored prefix, which must be our file's too */
    uint64_t resume_seq;
    size_t rerun_i;             /* which of our files it is */
    uint64_t rerun_off, rerun_seq; /* its stored bytes (0: none), welcome's next_seq */
    bool check_prefix;
    uint8_t prefix_sha[FY_SHA256_LEN];
    bool dedupe;        /* ask the relay before each file (dup-ask frames) */
    uint64_t rate;      /* FERRY_TEST_SEND_RATE, bytes/s; 0 = none */
    double rate_t0;
} sender;

const char *fy_cli_send_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    return fy_path_check(base, strlen(base)) == 0 ? base : NULL;
}

/* The name file i is sent under: names[i] if given (a tree's relative
 * path), else its base name; NULL when that name is not valid
 * (fy_path_check). */
static const char *file_name(const fy_cli_send_opts *o, size_t i)
{
    const char *n = o->names ? o->names[i] : NULL;
    if (!n)
        return fy_cli_send_name(o->files[i]);
    return fy_path_check(n, strlen(n)) == 0 ? n : NULL;
}

/* The id of a source file a rerun compares with the relay's partial file:
 * device, inode, size and mtime, hashed (nonzero). */
static uint64_t source_id(const struct stat *st)
{
    uint64_t v[5] = {(uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
                     (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec};
    uint8_t d[FY_SHA256_LEN];
    uint64_t id = 0;
    if (fy_sha256_oneshot(v, sizeof v, d) == 0)
        memcpy(&id, d, sizeof id);
    return id ? id : 1;
}

/* ---- acks ------------------------------------------------------------------ */

static void on_ack(sender *s, uint64_t seq)
{
    if (seq > s->acked_seq)
        s->acked_seq = seq;
    while (s->nacked < s->npend && s->pend[s->nacked].end_seq <= s->acked_seq) {
        pending *p = &s->pend[s->nacked++];
        s->acked_bytes += p->bytes;
        fy_cli_progress_result(&s->prog, p->name, p->bytes, fy_cli_progress_now() - p->t0, p->sha);
    }
}

/* Take the frames the relay sent us: acks (any other frame is a protocol
 * error).  poll_only: only what is readable now. */
static int take_acks(sender *s, bool poll_only)
{
    for (;;) {
        fy_frame f;
        int rc = fy_cli_conn_next(s->k, &f, poll_only);
        if (rc <= 0)
            return rc;
        if (f.hdr.type == FY_FT_BYE)
            return -ENODATA; /* the relay is going away (shutdown): the connection is lost */
        if (f.hdr.type != FY_FT_ACK) {
            fy_klog(FY_LOG_ERROR, "unexpected frame from relay", "type=%s",
                    fy_frame_type_name(f.hdr.type));
            return -FY_EPROTO;
        }
        fy_ack a;
        rc = fy_ack_decode(f.payload, f.hdr.len, &a);
        if (rc < 0)
            return rc;
        on_ack(s, a.seq);
        if (!poll_only)
            return 1;
    }
}

/* ---- one file --------------------------------------------------------------- */

static int send_ctl(sender *s, uint8_t type, const void *v)
{
    uint8_t p[FY_CTL_PAYLOAD_MAX];
    size_t n = 0;
    int rc = type == FY_FT_FILE_BEGIN ? fy_file_begin_encode(v, p, sizeof p, &n)
             : type == FY_FT_HOLE     ? fy_hole_encode(v, p, sizeof p, &n)
                                      : fy_file_end_encode(v, p, sizeof p, &n);
    if (rc < 0)
        return rc;
    s->sent += FY_FRAME_HDR_SIZE + n;
    return fy_cli_conn_send(s->k, type, s->seq++, p, n);
}

/* Write `n` bytes of buf as data frames in one writev. */
static int send_batch(sender *s, size_t n)
{
    int cnt = 0;
    for (size_t off = 0; off < n; off += s->chunk, cnt++) {
        size_t len = n - off < s->chunk ? n - off : s->chunk;
        fy_cli_conn_seal(s->k, FY_FT_DATA, s->seq++, s->buf + off, len, s->hdrs[cnt]);
        s->iov[2 * cnt] = (struct iovec){s->hdrs[cnt], FY_FRAME_HDR_SIZE};
        s->iov[2 * cnt + 1] = (struct iovec){s->buf + off, len};
        s->sent += FY_FRAME_HDR_SIZE + len;
    }
    return fy_cli_conn_sendv(s->k, s->iov, 2 * cnt);
}

static int io_fail(const char *call, const char *path, int err)
{
    char q[600];
    fy_klog(FY_LOG_ERROR, "cannot read file", "call=%s file=%s err=%s reason=\"%s\" exit=%d", call,
            fy_klog_q(path, q, sizeof q), fy_errname(-err), fy_strerror(-err), FY_CLI_EXIT_IO);
    return FY_CLI_EXIT_IO;
}

static bool same_source(const pending *p, const struct stat *st)
{
    return p->dev == st->st_dev && p->ino == st->st_ino && p->size == st->st_size &&
           p->mtime.tv_sec == st->st_mtim.tv_sec && p->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Hash the first off bytes of fd (the part the relay already stored) into
 * s->sha; leaves fd positioned at off.  0 or -errno. */
static int hash_prefix(sender *s, int fd, uint64_t off)
{
    while (off > 0) {
        size_t want = off < s->batch ? (size_t)off : s->batch;
        ssize_t n = read(fd, s->buf, want);
        if (n <= 0)
            return n < 0 ? -errno : -ENODATA;
        fy_sha256_update(s->sha, s->buf, (size_t)n);
        off -= (uint64_t)n;
    }
    return 0;
}

/* FERRY_TEST_SEND_RATE (bytes/s, tests only): sleep until what was sent
 * fits under it, so a test can interrupt a send half-way on loopback. */
static void test_throttle(sender *s)
{
    if (!s->rate)
        return;
    double ahead = s->rate_t0 + (double)s->sent / (double)s->rate - fy_cli_progress_now();
    if (ahead > 0) {
        struct timespec ts = {(time_t)ahead, (long)((ahead - (double)(time_t)ahead) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* Send bytes pos..size of fd: data frames for data, a hole frame for each
 * hole (hashed as the zeros it stands for).  0, a positive exit code (a
 * local failure, logged), or a negative connection error. */
static int send_body(sender *s, int fd, const char *path, uint64_t pos, uint64_t size)
{
    int rc = 0;
    while (rc == 0 && pos < size) {
        bool hole = false;
        uint64_t end = size;
        if (!s->o->no_sparse && (rc = fy_cli_sparse_extent(fd, pos, size, SEND_HOLE_MIN, &hole,
                                                            &end)) < 0)
            return io_fail("lseek (SEEK_DATA/SEEK_HOLE)", path, -rc);
        if (hole) {
            fy_hole h = {.len = end - pos};
            fy_sha256_zeros(s->sha, h.len);
            rc = send_ctl(s, FY_FT_HOLE, &h);
            fy_cli_progress_add(&s->prog, h.len);
            pos = end;
            continue;
        }
        while (rc == 0 && pos < end) {
            size_t want = end - pos < s->batch ? (size_t)(end - pos) : s->batch;
            ssize_t n = pread(fd, s->buf, want, (off_t)pos);
            if (n <= 0) /* n == 0: the file shrank while we sent it */
                return io_fail(n < 0 ? "read" : "read (file shrank)", path, n < 0 ? errno : ENODATA);
            fy_sha256_update(s->sha, s->buf, (size_t)n);
            rc = send_batch(s, (size_t)n);
            pos += (uint64_t)n;
            fy_cli_progress_add(&s->prog, (uint64_t)n);
            test_throttle(s);
        }
    }
    return rc;
}

/* Continuing at off: hash the stored prefix from our own file; when the
 * relay told us its prefix's SHA-256 (a rerun), it must be ours too.
 * Returns 0 to continue, 1 to start the file over, or an exit code. */
static int continue_at(sender *s, int fd, const char *path, uint64_t off)
{
    _Static_assert(FY_CLI_EXIT_IO > 1, "1 means: start over");
    int err = -hash_prefix(s, fd, off);
    if (err)
        return io_fail("read (prefix to hash)", path, err);
    if (!s->check_prefix)
        return 0;
    s->check_prefix = false;
    uint8_t mine[FY_SHA256_LEN];
    if (fy_sha256_peek(s->sha, mine) == 0 && memcmp(mine, s->prefix_sha, sizeof mine) == 0)
        return 0;
    char q[600];
    fy_klog(FY_LOG_WARN, "the relay's partial file is not a prefix of this file: sending it from "
            "its start", "file=%s stored=%llu", fy_klog_q(path, q, sizeof q),
            (unsigned long long)off);
    fy_sha256_reset(s->sha);
    return 1;
}

static void ack_cb(void *arg, uint64_t seq)
{
    on_ack(arg, seq);
}

/* Dedupe: is the channel's latest file of this name this very file (same
 * size and SHA-256)?  Then it is not sent again and counts as done (its
 * result line comes once the files before it are acknowledged).  Returns
 * 1 (done), 0 (send it), a positive exit code, or a negative connection
 * error. */
static int already_stored(sender *s, size_t i, int fd, const fy_file_begin *fb, const char *path)
{
    fy_dup_answer st = {0};
    int rc = fy_cli_dedupe_ask(s->k, fb, ack_cb, s, &st);
    if (rc < 0 || st.seq == 0)
        return rc;
    fy_sha256_reset(s->sha); /* (a start-over after continue_at read a prefix) */
    int err = lseek(fd, 0, SEEK_SET) != 0 ? errno : -hash_prefix(s, fd, fb->size);
    if (err)
        return io_fail("read (to compare with the stored file)", path, err);
    uint8_t mine[FY_SHA256_LEN];
    fy_sha256_final(s->sha, mine);
    fy_sha256_reset(s->sha);
    if (memcmp(mine, st.sha256, sizeof mine) != 0)
        return 0; /* send_body reads with pread: fd's offset does not matter */
    char qq[600];
    fy_klog(FY_LOG_INFO, "already stored on the relay: not sent again (--force sends it)",
            "file=%s name=%s seq=%llu", fy_klog_q(path, qq, sizeof qq), fb->name,
            (unsigned long long)st.seq);
    s->pend[i] = (pending){.name = file_name(s->o, i), .bytes = fb->size,
                           .t0 = fy_cli_progress_now(), .end_seq = 0};
    memcpy(s->pend[i].sha, mine, sizeof mine);
    s->npend = i + 1;
    on_ack(s, s->acked_seq); /* counted now if every file before it is */
    return 1;
}

/* Send file i: from its start (off 0: file-begin, data, file-end) or, after
 * a reconnect or in a rerun, from byte off of it (data from off, file-end),
 * continuing the file the relay holds part of.  Returns an exit code; net
 * errors are turned into one by the caller: *net_rc gets the negative error
 * and the result is -1. */
static int send_file(sender *s, size_t i, uint64_t off, int *net_rc)
{
    const char *path = s->o->files[i];
    const char *name = file_name(s->o, i);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail("open", path, errno);
    struct stat st;
    int err = fstat(fd, &st) != 0 ? errno : !S_ISREG(st.st_mode) ? EISDIR : 0;
    if (err) {
        close(fd);
        return io_fail("fstat", path, err);
    }
    s->current = name;
    pending *p = &s->pend[i];
    fy_file_begin fb = {.size = (uint64_t)st.st_size, .ext = true, .fflags = FY_FB_F_SOURCE,
                        .source = source_id(&st)};
    if (!s->o->no_perms) {
        fb.fflags |= FY_FB_F_META;
        fb.mode = (uint32_t)st.st_mode & 07777;
        fb.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    snprintf(fb.name, sizeof fb.name, "%s", name);
    fy_sha256_reset(s->sha);
    int rc = 0;
    if (off > 0 && (rc = continue_at(s, fd, path, off)) > 1) {
        close(fd);
        return rc;
    }
    if (off > 0 && rc == 0) {
        if (!p->name) /* a rerun: this run did not start the file */
            *p = (pending){.name = name, .bytes = fb.size, .t0 = fy_cli_progress_now(),
                           .begin_seq = s->resume_seq, .dev = st.st_dev, .ino = st.st_ino,
                           .size = st.st_size, .mtime = st.st_mtim};
        p->end_seq = 0;
        fy_cli_progress_begin(&s->prog, name, fb.size);
        fy_cli_progress_add(&s->prog, off);
    } else if (s->dedupe && (rc = already_stored(s, i, fd, &fb, path)) != 0) {
        close(fd);
        if (rc > 0)
            return rc == 1 ? FY_CLI_EXIT_OK : rc;
        *net_rc = rc;
        return -1;
    } else {
        off = 0;
        *p = (pending){.name = name, .bytes = (uint64_t)st.st_size, .t0 = fy_cli_progress_now(),
                       .begin_seq = s->seq, .dev = st.st_dev, .ino = st.st_ino,
                       .size = st.st_size, .mtime = st.st_mtim};
        fy_cli_progress_begin(&s->prog, name, fb.size);
        rc = send_ctl(s, FY_FT_FILE_BEGIN, &fb);
    }
    if (rc == 0)
        rc = send_body(s, fd, path, off, fb.size);
    close(fd);
    if (rc > 0) {
        fy_cli_progress_abort(&s->prog);
        return rc;
    }
    if (rc == 0) {
        fy_file_end fe = {.size = fb.size};
        fy_sha256_final(s->sha, fe.sha256);
        memcpy(p->sha, fe.sha256, sizeof p->sha);
        p->end_seq = s->seq;
        rc = send_ctl(s, FY_FT_FILE_END, &fe);
    }
    if (rc == 0) {
        s->npend = i + 1;
        fy_cli_progress_done(&s->prog, name, fb.size, -1);
        rc = take_acks(s, true);
    }
    if (rc < 0) {
        fy_cli_progress_abort(&s->prog);
        *net_rc = rc;
        return -1;
    }
    return FY_CLI_EXIT_OK;
}

/* ---- the run ---------------------------------------------------------------- */

static int check_files(const fy_cli_send_opts *o)
{
    char q[600];
    for (size_t i = 0; i < o->nfiles; i++) {
        if (!file_name(o, i)) {
            const char *n = o->names && o->names[i] ? o->names[i] : o->files[i];
            fy_klog(FY_LOG_ERROR,
                    "file name cannot be sent: names are relative paths of 1-255 bytes of "
                    "UTF-8, no '.', '..' or empty component, no control character",
                    "file=%s exit=%d", fy_klog_q(n, q, sizeof q), FY_CLI_EXIT_USAGE);
            return FY_CLI_EXIT_USAGE;
        }
        struct stat st;
        if (stat(o->files[i], &st) != 0)
            return io_fail("stat", o->files[i], errno);
        if (!S_ISREG(st.st_mode))
            return io_fail("stat (not a regular file)", o->files[i], EISDIR);
    }
    return FY_CLI_EXIT_OK;
}

static int setup(sender *s, const fy_welcome *w)
{
    s->chunk = s->o->chunk ? s->o->chunk : FY_CLI_CHUNK_DEFAULT;
    if (w->max_payload && s->chunk > w->max_payload)
        s->chunk = w->max_payload;
    size_t frames = SEND_BATCH_BYTES / s->chunk;
    frames = frames < 1 ? 1 : frames > SEND_BATCH_MAX ? SEND_BATCH_MAX : frames;
    s->batch = frames * s->chunk;
    s->buf = malloc(s->batch);
    s->hdrs = malloc(frames * sizeof *s->hdrs);
    s->iov = malloc(2 * frames * sizeof *s->iov);
    s->pend = calloc(s->o->nfiles ? s->o->nfiles : 1, sizeof *s->pend);
    s->seq = w->next_seq;
    const char *rate = getenv("FERRY_TEST_SEND_RATE");
    s->rate = rate ? strtoull(rate, NULL, 10) : 0;
    s->rate_t0 = fy_cli_progress_now();
    if (!s->buf || !s->hdrs || !s->iov || !s->pend)
        return -ENOMEM;
    return fy_sha256_new(&s->sha);
}

static void report_interrupt(sender *s)
{
    const char *open = s->nacked < s->npend ? s->pend[s->nacked].name : s->current;
    fy_klog(FY_LOG_WARN, "interrupted: the files the relay acknowledged are complete",
            "files_acknowledged=%zu files_total=%zu last_acknowledged=%s first_incomplete=%s exit=%d",
            s->nacked, s->o->nfiles, s->nacked ? s->pend[s->nacked - 1].name : "none",
            open ? open : "none", FY_CLI_EXIT_INTR);
}

/* ---- reconnecting ------------------------------------------------------------ */

/* A new connection's welcome w: which file to send next (*next) and from
 * which byte (*off).  Files whose file-end the relay holds are delivered
 * (their ack was lost with the connection).  If the relay's log went past
 * what we sent (another sender wrote meanwhile), nothing is assumed stored
 * that was not acknowledged: those files are sent again. */
static void resume_point(sender *s, const fy_welcome *w, size_t *next, uint64_t *off)
{
    s->dedupe = !s->o->force && w->ext;
    s->rerun_off = 0; /* a rerun's part: decided on the first welcome only */
    s->check_prefix = false;
    bool ours = w->next_seq <= s->seq;
    if (ours && w->next_seq > 0)
        on_ack(s, w->next_seq - 1);
    size_t i = s->nacked; /* the files before it are acknowledged, none after it */
    *next = i;
    *off = 0;
    s->npend = i < s->npend ? i : s->npend;
    s->seq = w->next_seq;
    if (i >= s->o->nfiles)
        return;
    pending *p = &s->pend[i];
    const char *path = s->o->files[i];
    char q[600];
    if (!(ours && w->ext && w->part_seq && w->part_seq == p->begin_seq && p->begin_seq &&
          !strcmp(w->part_name, p->name) && w->part_size == p->bytes)) {
        fy_klog(FY_LOG_INFO, "reconnected: sending the file from its start", "file=%s next_seq=%llu "
                "relay_part=%s", fy_klog_q(path, q, sizeof q), (unsigned long long)w->next_seq,
                w->ext ? (w->part_seq ? w->part_name : "none") : "unknown");
        return;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !same_source(p, &st)) {
        fy_klog(FY_LOG_WARN, "source changed since the file was started: sending it again from "
                "its start", "file=%s stored=%llu action=\"new file-begin; receivers discard "
                "the partial file\"", fy_klog_q(path, q, sizeof q),
                (unsigned long long)w->part_got);
        return;
    }
    *off = w->part_got;
    fy_klog(FY_LOG_INFO, "reconnected: continuing the file", "file=%s stored=%llu size=%llu "
            "next_seq=%llu", fy_klog_q(path, q, sizeof q), (unsigned long long)w->part_got,
            (unsigned long long)p->bytes, (unsigned long long)w->next_seq);
}

/* The first welcome of a run: the relay holds part of a file of this
 * channel (an earlier run was interrupted).  If that is one of our files
 * -- same name and size, and the same source (device, inode, size, mtime)
 * or a stored prefix whose SHA-256 the relay told us -- it is continued at
 * part_got when the run gets to it with nothing sent before it (the files
 * before it already stored: dedupe), after send_file checked the prefix
 * against our file; else it is sent from its start (receivers then
 * discard the partial one). */
static void rerun_point(sender *s, const fy_welcome *w)
{
    size_t i = 0;
    struct stat st;
    char q[600];
    s->dedupe = !s->o->force && w->ext; /* w->ext: the relay took our hello flags */
    while (i < s->o->nfiles && w->ext && w->part_seq && strcmp(w->part_name, file_name(s->o, i)))
        i++;
    if (i >= s->o->nfiles || !w->ext || !w->part_seq || !w->part_got ||
        stat(s->o->files[i], &st) != 0 || w->part_size != (uint64_t)st.st_size)
        return;
    bool same_src = w->ext3 && w->part_source == source_id(&st);
    s->check_prefix = w->ext3 && (w->src_flags & FY_WELCOME_SRC_F_PREFIX);
    if (!same_src && !s->check_prefix) {
        fy_klog(FY_LOG_INFO, "the relay holds part of a file of this name from another source: "
                "sending it from its start", "file=%s stored=%llu",
                fy_klog_q(s->o->files[i], q, sizeof q), (unsigned long long)w->part_got);
        return;
    }
    memcpy(s->prefix_sha, w->part_prefix_sha, sizeof s->prefix_sha);
    s->resume_seq = w->part_seq;
    s->rerun_i = i;
    s->rerun_off = w->part_got;
    s->rerun_seq = w->next_seq;
    fy_klog(FY_LOG_INFO, "continuing the file an earlier run left unfinished", "file=%s "
            "stored=%llu size=%llu same_source=%s prefix_checked=%s",
            fy_klog_q(s->o->files[i], q, sizeof q), (unsigned long long)w->part_got,
            (unsigned long long)w->part_size, same_src ? "yes" : "no",
            s->check_prefix ? "yes" : "no");
}

/* Where file i starts: a reconnect's offset (i == next), the rerun's file
 * at the relay's part when no frame went out since the welcome (else the
 * relay's part is gone: a file-begin came after it), or 0. */
static uint64_t start_at(sender *s, size_t i, size_t next, uint64_t off)
{
    if (i == next && off)
        return off;
    if (!s->rerun_off || i != s->rerun_i)
        return 0;
    uint64_t at = s->seq == s->rerun_seq ? s->rerun_off : 0;
    s->rerun_off = 0;
    if (!at) {
        s->check_prefix = false;
        fy_klog(FY_LOG_INFO, "a file before it was sent: sending the unfinished file from its "
                "start", "file=%s", s->o->files[i]);
    }
    return at;
}

/* The connection broke with rc: reconnect with backoff until a welcome, as
 * long as the policy allows.  Returns 0 (s->k is the new connection) or
 * the error to report (*what says during what). */
static int reconnect(sender *s, const fy_hello *h, fy_cli_retry *rt, int rc, const char **what,
                     fy_welcome *w)
{
    bool again = false;
    while (fy_cli_retry_transient(rc, again)) {
        char q[FY_ERRTEXT_MAX + 8];
        fy_klog(FY_LOG_WARN, "connection to relay lost: reconnecting", "server=%s during=%s "
                "err=%s reason=%s attempt=%u of=%u", s->o->server, *what, fy_errname(rc),
                fy_klog_q(fy_strerror(rc), q, sizeof q), rt->failed + 1, rt->max);
        fy_cli_conn_close(s->k, false);
        s->k = NULL;
        int wr = fy_cli_retry_wait(rt, s->o->cancel);
        if (wr < 0)
            return wr == -EINTR ? wr : rc;
        again = true;
        rc = fy_cli_dial(s->o->server,
                         s->o->timeout_ms ? s->o->timeout_ms : SEND_HELLO_TIMEOUT_MS, s->o->tls,
                         s->o->cancel, h, &s->k, w, what);
        if (rc == 0)
            return 0;
    }
    return rc;
}

int fy_cli_send_run(const fy_cli_send_opts *o, fy_cli_send_result *r)
{
    int code = check_files(o);
    if (code != FY_CLI_EXIT_OK)
        return code;
    sender s = {.o = o};
    fy_cli_retry rt;
    fy_cli_retry_init(&rt, o->retries);
    fy_cli_progress_init(&s.prog, o->progress, o->json);
    double t0 = fy_cli_progress_now();
    const char *what = "connect";
    fy_welcome w = {0};
    /* the part fields and their source: a reconnect or a rerun continues a file */
    fy_hello h = {.role = FY_ROLE_SENDER,
                  .flags = FY_HELLO_F_RESUME | FY_HELLO_F_SOURCE | FY_HELLO_F_DEDUPE};
    snprintf(h.channel, sizeof h.channel, "%s", o->channel);
    snprintf(h.token, sizeof h.token, "%s", o->token ? o->token : "");
    int rc = fy_cli_dial(o->server, o->timeout_ms ? o->timeout_ms : SEND_HELLO_TIMEOUT_MS, o->tls,
                         o->cancel, &h, &s.k, &w, &what);
    /* Connected but lost during the hello: the relay is there (restarting),
     * so that is retried; a refused connect exits at once (a wrong address
     * fails fast), and so does a first hello nothing answered (a server
     * that is not a Ferry relay: fy_cli_conn_fail says so). */
    if (rc < 0 && o->retries && strcmp(what, "hello") == 0 && rc != -ETIMEDOUT)
        rc = reconnect(&s, &h, &rt, rc, &what, &w);
    if (rc == 0 && (rc = setup(&s, &w)) < 0) {
        fy_klog(FY_LOG_ERROR, "out of memory", "err=%s", fy_errname(rc));
        code = FY_CLI_EXIT_IO;
    }
    size_t next = 0;
    uint64_t off = 0;
    if (rc == 0 && code == FY_CLI_EXIT_OK)
        rerun_point(&s, &w);
    while (code == FY_CLI_EXIT_OK) {
        for (size_t i = next; rc == 0 && code == FY_CLI_EXIT_OK && i < o->nfiles; i++) {
            what = "send";
            code = send_file(&s, i, start_at(&s, i, next, off), &rc);
            if (code < 0)
                code = FY_CLI_EXIT_OK; /* rc carries the connection's error */
        }
        while (rc >= 0 && code == FY_CLI_EXIT_OK && s.nacked < s.npend) {
            what = "wait for ack";
            rc = take_acks(&s, false);
        }
        if (rc >= 0 || code != FY_CLI_EXIT_OK || !o->retries || !s.buf)
            break;
        /* Progress on the lost connection (a file acknowledged, or bytes
         * stored) gives the next loss a fresh count. */
        uint64_t acked0 = s.nacked, seq0 = w.next_seq;
        rc = reconnect(&s, &h, &rt, rc, &what, &w);
        if (rc < 0)
            break;
        resume_point(&s, &w, &next, &off);
        if (s.nacked > acked0 || w.next_seq > seq0)
            fy_cli_retry_progress(&rt);
    }
    if (rc < 0) {
        code = fy_cli_conn_fail(s.k, rc, what);
        if (code == FY_CLI_EXIT_INTR)
            report_interrupt(&s);
    }
    double secs = fy_cli_progress_now() - t0;
    if (code == FY_CLI_EXIT_OK) {
        char kv[256];
        snprintf(kv, sizeof kv, "files=%zu bytes=%llu seconds=%.3f mbps=%.1f bytes_sent=%llu "
                 "reconnects=%u status=ok", s.nacked, (unsigned long long)s.acked_bytes, secs,
                 fy_cli_progress_mbps(s.acked_bytes, secs), (unsigned long long)s.sent, rt.total);
        fy_cli_progress_total(&s.prog, kv);
    }
    if (r)
        *r = (fy_cli_send_result){s.nacked, s.acked_bytes, secs, s.sent, rt.total};
    fy_cli_conn_close(s.k, code == FY_CLI_EXIT_OK);
    fy_sha256_free(s.sha);
    free(s.buf);
    free(s.hdrs);
    free(s.iov);
    free(s.pend);
    return code;
}
