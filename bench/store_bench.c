/*
 * store_bench.c - how fast the store appends, looks up and recovers,
 * against plain write() of the same bytes to the same disk in the same run.
 *
 * Append: 64 KiB frames, 16 per fy_log_append (plus the index records per
 * fy_idx_append), 1 GiB, one fy_log_sync + fy_idx_sync at the end.  The
 * reference writes the same frame buffers with one write() each to one
 * file in the same directory and fdatasyncs once.  The two alternate, three
 * times each; medians are reported.  Then random look-ups on the channel
 * just written, and the time fy_store_open takes on it: clean, with the
 * first segment's index deleted (a full scan of that segment), and on a
 * channel of 1 M small frames.  Files go to a temp dir under
 * $FERRY_BENCH_DIR (default /tmp), removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/store.h"

#define REPS 3

typedef struct cfg {
    const char *base;
    uint64_t total_mib;
    size_t frame_kib;
    size_t batch;
} cfg;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "level=error msg=\"%s failed\" err=%s\n", what, fy_strerror(rc));
    exit(1);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rmrf(const char *p)
{
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* batch frame buffers (header + payload each), payload CRC computed once. */
typedef struct frames {
    uint8_t **b;
    struct iovec *iov;
    uint32_t *crc; /* payload CRC of each buffer, computed once */
    size_t n, plen;
} frames;

static void frames_init(frames *f, size_t n, size_t plen)
{
    f->n = n;
    f->plen = plen;
    f->b = calloc(n, sizeof *f->b);
    f->iov = calloc(n, sizeof *f->iov);
    f->crc = calloc(n, sizeof *f->crc);
    for (size_t i = 0; i < n; i++) {
        f->b[i] = malloc(FY_FRAME_HDR_SIZE + plen);
        for (size_t j = 0; j < plen; j++)
            f->b[i][FY_FRAME_HDR_SIZE + j] = (uint8_t)(j * 131 + i);
        f->iov[i] = (struct iovec){f->b[i], FY_FRAME_HDR_SIZE + plen};
        f->crc[i] = fy_crc32c(0, f->b[i] + FY_FRAME_HDR_SIZE, plen);
    }
}

/* Give the batch the seqs from seq on (headers only; payloads unchanged). */
static void frames_seq(frames *f, uint64_t seq)
{
    for (size_t i = 0; i < f->n; i++) {
        fy_frame_hdr h = {.type = FY_FT_DATA, .channel = 1, .seq = seq + i, .len = (uint32_t)f->plen,
                          .crc = f->crc[i]};
        fy_frame_hdr_encode(&h, f->b[i]);
    }
}

/* One append run into dir; returns seconds (append + final syncs). */
static double run_append(const char *dir, const cfg *c, frames *f)
{
    fy_log *l;
    fy_idx *x;
    uint64_t frames_total = (c->total_mib << 20) / (c->frame_kib << 10);
    fy_idx_rec *recs = calloc(f->n, sizeof *recs);
    int rc;

    if ((rc = fy_store_open(dir, NULL, &l, &x, NULL)) < 0)
        die("fy_store_open", rc);
    double t0 = now_s();
    for (uint64_t s = 1; s <= frames_total; s += f->n) {
        frames_seq(f, s); /* headers only: a real writer gets sealed frames */
        if ((rc = fy_log_append(l, f->iov, f->n, recs)) < 0)
            die("fy_log_append", rc);
        if ((rc = fy_idx_append(x, recs, f->n)) < 0)
            die("fy_idx_append", rc);
    }
    if ((rc = fy_log_sync(l)) < 0 || (rc = fy_idx_sync(x)) < 0)
        die("sync", rc);
    double t = now_s() - t0;
    fy_log_close(l);
    fy_idx_close(x);
    free(recs);
    return t;
}

/* The reference: the same frame buffers, one write() each, one file. */
static double run_write(const char *path, const cfg *c, frames *f)
{
    uint64_t frames_total = (c->total_mib << 20) / (c->frame_kib << 10);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        die("open", -errno);
    double t0 = now_s();
    for (uint64_t s = 0; s < frames_total; s += f->n)
        for (size_t i = 0; i < f->n; i++) {
            size_t done = 0;
            while (done < f->iov[i].iov_len) {
                ssize_t w = write(fd, f->b[i] + done, f->iov[i].iov_len - done);
                if (w < 0 && errno != EINTR)
                    die("write", -errno);
                done += w > 0 ? (size_t)w : 0;
            }
        }
    if (fdatasync(fd) != 0)
        die("fdatasync", -errno);
    double t = now_s() - t0;
    close(fd);
    return t;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static double open_time(const char *dir, fy_recovery *rep)
{
    fy_log *l;
    fy_idx *x;
    double t0 = now_s();
    int rc = fy_store_open(dir, NULL, &l, &x, rep);
    double t = now_s() - t0;
    if (rc < 0)
        die("fy_store_open", rc);
    fy_log_close(l);
    fy_idx_close(x);
    return t;
}

static void usage(void)
{
    printf("usage: store_bench [--mib N] [--frame-kib N] [--batch N]\n"
           "  Append throughput of the store vs plain write() of the same bytes (same dir,\n"
           "  same fdatasync), index look-ups/s and recovery time.  Files go under\n"
           "  $FERRY_BENCH_DIR (default /tmp) and are removed.  Defaults: --mib 1024\n"
           "  --frame-kib 64 --batch 16.  Prints a table and one key=value line.\n");
}

int main(int argc, char **argv)
{
    cfg c = {.total_mib = 1024, .frame_kib = 64, .batch = 16};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        } else if (i + 1 < argc && !strcmp(argv[i], "--mib"))
            c.total_mib = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--frame-kib"))
            c.frame_kib = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--batch"))
            c.batch = strtoull(argv[++i], NULL, 10);
        else {
            usage();
            return 2;
        }
    }
    if (!c.total_mib || !c.frame_kib || c.frame_kib > 1024 || !c.batch || c.batch > 1024) {
        usage();
        return 2;
    }
    const char *base = getenv("FERRY_BENCH_DIR");
    char tmp[512], dir[600], ref[600], small[600];
    snprintf(tmp, sizeof tmp, "%s/fy-store-bench-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp))
        die("mkdtemp", -errno);
    snprintf(ref, sizeof ref, "%s/ref.bin", tmp);

    frames f;
    frames_init(&f, c.batch, (c.frame_kib << 10) - FY_FRAME_HDR_SIZE);
    frames_seq(&f, 1);
    double ta[REPS], tw[REPS];
    double bytes = (double)((c.total_mib << 20) / (c.frame_kib << 10)) * (double)(c.frame_kib << 10);
    printf("%-8s %4s %10s %10s\n", "run", "rep", "seconds", "GB/s");
    for (int r = 0; r < REPS; r++) {
        snprintf(dir, sizeof dir, "%s/ch%d", tmp, r);
        ta[r] = run_append(dir, &c, &f);
        printf("%-8s %4d %10.3f %10.3f\n", "append", r, ta[r], bytes / ta[r] / 1e9);
        if (r + 1 < REPS)
            rmrf(dir); /* the last channel is kept for look-ups and recovery */
        tw[r] = run_write(ref, &c, &f);
        printf("%-8s %4d %10.3f %10.3f\n", "write", r, tw[r], bytes / tw[r] / 1e9);
        unlink(ref);
    }
    double a = bytes / median(ta, REPS) / 1e9, w = bytes / median(tw, REPS) / 1e9;

    /* Look-ups: random seqs over the whole channel. */
    fy_log *l;
    fy_idx *x;
    fy_recovery rep;
    int rc = fy_store_open(dir, NULL, &l, &x, &rep);
    if (rc < 0)
        die("fy_store_open", rc);
    uint64_t n = rep.frames, state = 88172645463325252ull, sum = 0;
    const uint64_t looks = 1000000;
    double t0 = now_s();
    for (uint64_t i = 0; i < looks; i++) {
        fy_idx_rec rec;
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        if ((rc = fy_idx_lookup(x, 1 + state % n, &rec)) < 0)
            die("fy_idx_lookup", rc);
        sum += rec.off;
    }
    double lps = (double)looks / (now_s() - t0);
    fy_log_close(l);
    fy_idx_close(x);

    /* Recovery: clean, then with the first (full, sealed) segment's index
     * gone, which costs a scan of that whole segment. */
    double open_clean = open_time(dir, &rep);
    uint64_t segs = rep.segments, scanned_clean = rep.scanned_bytes;
    char idx[700];
    snprintf(idx, sizeof idx, "%s/%020" PRIu64 ".idx", dir, (uint64_t)1);
    unlink(idx);
    double open_rebuild = open_time(dir, &rep);
    uint64_t scanned_rebuild = rep.scanned_bytes;
    rmrf(dir);

    /* A channel of 1 M small frames (100-byte payloads) in one segment. */
    snprintf(small, sizeof small, "%s/small", tmp);
    frames sf;
    frames_init(&sf, 256, 100);
    if ((rc = fy_store_open(small, NULL, &l, &x, NULL)) < 0)
        die("fy_store_open", rc);
    fy_idx_rec *recs = calloc(256, sizeof *recs);
    for (uint64_t s = 1; s <= 1000000; s += 256) {
        frames_seq(&sf, s);
        if ((rc = fy_log_append(l, sf.iov, 256, recs)) < 0 || (rc = fy_idx_append(x, recs, 256)) < 0)
            die("append small", rc);
    }
    fy_log_close(l);
    fy_idx_close(x);
    double open_small = open_time(small, &rep);
    uint64_t small_frames = rep.frames, small_scanned = rep.scanned_bytes;
    rmrf(tmp);

    printf("\n%-34s %12s\n", "measure", "value");
    printf("%-34s %12.3f\n", "append GB/s (median of 3)", a);
    printf("%-34s %12.3f\n", "write() GB/s (median of 3)", w);
    printf("%-34s %12.3f\n", "append / write", a / w);
    printf("%-34s %12.0f\n", "index look-ups/s (random)", lps);
    printf("%-34s %12.2f  (%" PRIu64 " segments, %" PRIu64 " bytes read)\n", "open clean 1 GiB channel, ms",
           open_clean * 1e3, segs, scanned_clean);
    printf("%-34s %12.2f  (%" PRIu64 " bytes read)\n", "open, 1st segment index gone, ms", open_rebuild * 1e3,
           scanned_rebuild);
    printf("%-34s %12.2f  (%" PRIu64 " frames, %" PRIu64 " bytes read)\n", "open clean 1M small frames, ms",
           open_small * 1e3, small_frames, small_scanned);
    printf("store_bench frame_kib=%zu batch=%zu mib=%" PRIu64 " append_gbps=%.3f write_gbps=%.3f "
           "append_ratio_vs_write=%.3f lookup_per_s=%.0f open_clean_ms=%.2f open_rebuild_seg_ms=%.2f "
           "open_small_1m_ms=%.2f checksum=%" PRIu64 "\n",
           c.frame_kib, c.batch, c.total_mib, a, w, a / w, lps, open_clean * 1e3, open_rebuild * 1e3,
           open_small * 1e3, sum % 1000);
    return 0;
}
