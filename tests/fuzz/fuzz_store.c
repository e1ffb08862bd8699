/*
 * fuzz_store.c - libFuzzer target for src/store: recovery and the offline
 * check on arbitrary segment and index files.
 *
 * Input layout: u32 LE length L of the data segment, u64 LE base (reduced
 * to 1..1000000), then L bytes of the segment file <base>.log and the rest
 * as the index file <base>.idx (absent when empty).  Both go into a fresh
 * directory (mkdtemp on /dev/shm when it exists, so fdatasync is cheap;
 * else /tmp), removed after each run.
 *
 * The contract checked: fy_store_check on the raw files and fy_store_open
 * never crash, leak or hang; when open succeeds, every seq it reports
 * reads back through the index as one whole frame with a valid CRC (or,
 * for damage inside the indexed part, which recovery by design does not
 * read, the reader and fy_store_check both report -FY_ECORRUPT), one more
 * frame can be appended and read back, and fy_store_check then finds the
 * channel clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tc.h"
#include "ferry/err.h"
#include "ferry/proto.h"
#include "ferry/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXP 4096 /* max_payload the fuzzed channel is opened with */

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_store: contract broken: %s\n", what);
        abort();
    }
}

static uint64_t ld(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put(const char *dir, uint64_t base, const char *ext, const uint8_t *b, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%020llu.%s", dir, (unsigned long long)base, ext);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    check(fd >= 0, "create input file");
    check(write(fd, b, n) == (ssize_t)n, "write input file");
    close(fd);
}


/* Reads every seq below next through the index; returns how many did not
 * read back as the whole, good frame their record describes. */
static uint64_t read_all(const char *dir, fy_idx *x, fy_pos end, uint64_t first, uint64_t next)
{
    static uint8_t buf[FY_FRAME_HDR_SIZE + MAXP];
    fy_logrd *r;
    uint64_t bad = 0;

    check(fy_logrd_open(dir, &r) == 0, "logrd open");
    for (uint64_t s = first; s < next; s++) {
        fy_idx_rec rec;
        fy_frame_hdr h;
        size_t len = 0;
        check(fy_idx_lookup(x, s, &rec) == 0, "indexed seq looks up");
        check(rec.seq == s && rec.len >= FY_FRAME_HDR_SIZE && rec.len <= sizeof buf, "record sane");
        check(fy_logrd_seek(r, (fy_pos){rec.seg, rec.off}) == 0, "seek");
        /* A good frame is whole, checks out, and is the one the record
         * describes; anything else is damage the caller must see. */
        int rc = fy_logrd_read(r, end, buf, rec.len, &len);
        /* -ENOBUFS: the frame there is longer than its record says */
        check(rc == 0 || rc == -FY_ECORRUPT || rc == -ENOBUFS, "read fails only with FY_ECORRUPT");
        if (rc != 0 || len != rec.len || fy_frame_hdr_decode(buf, MAXP, &h) != 0 || h.seq != s ||
            h.crc != rec.crc || fy_crc32c(0, buf + FY_FRAME_HDR_SIZE, h.len) != h.crc)
            bad++;
    }
    fy_logrd_close(r);
    return bad;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 12)
        return 0;
    size_t ll = (size_t)ld(data, 4), rest = size - 12;
    uint64_t base = ld(data + 4, 8) % 1000000 + 1;
    if (ll > rest)
        ll = rest;

    char tmp[64], dir[80];
    snprintf(tmp, sizeof tmp, "%s/fy-fuzz-store-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    check(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(dir, sizeof dir, "%s/ch", tmp);
    check(mkdir(dir, 0700) == 0, "mkdir");
    put(dir, base, "log", data + 12, ll);
    if (rest > ll)
        put(dir, base, "idx", data + 12 + ll, rest - ll);

    fy_check_report cr;
    int crc = fy_store_check(dir, MAXP, &cr);
    check(crc == 0 || crc == -FY_ECORRUPT, "check of raw files");

    fy_store_opts o = {.max_payload = MAXP, .segment_bytes = 1 << 16};
    fy_log *l;
    fy_idx *x;
    fy_recovery rep;
    int rc = fy_store_open(dir, &o, &l, &x, &rep);
    check(rc == 0 || rc == -FY_ECORRUPT, "open fails only with FY_ECORRUPT");
    if (rc == 0) {
        check(rep.next_seq >= rep.first_seq && rep.first_seq == base, "report sane");
        /* Clean: nothing to repair.  A crash tail (unindexed frames, a torn
         * frame or record at the end) is not damage, and opening repairs it. */
        check(crc != 0 || cr.unindexed || cr.torn_bytes ||
                  (rep.truncated_bytes == 0 && rep.index_added == 0 && rep.index_dropped == 0),
              "a clean channel needs no repair");
        /* Recovery reads only the tail (docs/storage.md), so a frame
         * damaged inside the indexed part can survive it -- but never
         * silently: the reader refuses it and fy_store_check reports it,
         * before and after recovery. */
        uint64_t bad = read_all(dir, x, fy_log_end(l), rep.first_seq, rep.next_seq);
        check(bad == 0 || crc != 0, "damage the raw check did not see");

        uint8_t frame[FY_FRAME_HDR_SIZE + 3] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3};
        fy_frame_hdr h = {.type = FY_FT_DATA, .seq = rep.next_seq};
        fy_frame_seal(&h, frame + FY_FRAME_HDR_SIZE, 3, frame);
        struct iovec v = {frame, sizeof frame};
        fy_idx_rec rec;
        check(fy_log_append(l, &v, 1, &rec) == 0, "append after recovery");
        check(fy_idx_append(x, &rec, 1) == 0, "index append after recovery");
        check(read_all(dir, x, fy_log_end(l), rep.next_seq, rep.next_seq + 1) == 0, "new frame");
        fy_log_close(l);
        fy_idx_close(x);
        int after = fy_store_check(dir, MAXP, &cr);
        check(bad ? after == -FY_ECORRUPT : after == 0, "check after recovery");
        check(bad || cr.frames == rep.frames + 1, "check counts every frame");
    }
    tc_rmtree(tmp);
    return 0;
}
