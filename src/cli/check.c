/*
 * check.c - `ferry check` (see check.h).  The verification itself is the
 * storage module's (fy_store_check); this file walks the channels and
 * reports, so the client and the relay never disagree on what is valid.
 */
#include "cli/check.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cliexit.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/store.h"

typedef struct totals {
    uint64_t channels, damaged, unreadable, frames, bytes, crc_errors, index_errors;
} totals;

static int only_dirs(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static void check_channel(const char *chdir, const char *name, size_t max_payload, FILE *out,
                          totals *t)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", chdir, name);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    fy_check_report rep = {0};
    int rc = fy_store_check(path, max_payload, &rep);
    const char *status = rc == 0 ? "ok" : rc == -FY_ECORRUPT ? "damaged" : "unreadable";
    t->channels++;
    t->damaged += rc == -FY_ECORRUPT;
    t->unreadable += rc < 0 && rc != -FY_ECORRUPT;
    t->frames += rep.frames;
    t->bytes += rep.bytes;
    t->crc_errors += rep.crc_errors;
    t->index_errors += rep.index_errors;
    fprintf(out,
            "channel=%s status=%s segments=%llu frames=%llu bytes=%llu first_seq=%llu next_seq=%llu "
            "crc_errors=%llu index_errors=%llu unindexed=%llu torn_bytes=%llu%s%s%s\n",
            name, status, (unsigned long long)rep.segments, (unsigned long long)rep.frames,
            (unsigned long long)rep.bytes, (unsigned long long)rep.first_seq,
            (unsigned long long)rep.next_seq, (unsigned long long)rep.crc_errors,
            (unsigned long long)rep.index_errors, (unsigned long long)rep.unindexed,
            (unsigned long long)rep.torn_bytes,
            rep.unindexed || rep.torn_bytes ? " note=\"crash tail: repaired when ferryd opens it\"" : "",
            rc < 0 && rc != -FY_ECORRUPT ? " err=" : "", rc < 0 && rc != -FY_ECORRUPT ? fy_errname(rc) : "");
}

int fy_cli_check_run(const char *data_dir, size_t max_payload, FILE *out)
{
    if (max_payload == 0)
        max_payload = FY_PAYLOAD_MAX_LIMIT;
    struct stat st;
    int err = stat(data_dir, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
    if (err) {
        fy_klog(FY_LOG_ERROR, "cannot open data directory", "dir=%s err=%s exit=%d", data_dir,
                fy_errname(-err), FY_CLI_EXIT_IO);
        return FY_CLI_EXIT_IO;
    }
    /* A running relay's tail is not indexed yet and its files change under
     * the reader: checking it would report damage that is not there. */
    long holder = 0;
    if (fy_store_lock_probe(data_dir, &holder) == 1) {
        fprintf(out, "check=busy pid=%ld\n", holder);
        fflush(out);
        fy_klog(FY_LOG_ERROR, "data directory in use", "dir=%s pid=%ld exit=%d "
                "action=\"stop that ferryd, then check again\"", data_dir, holder,
                FY_CLI_EXIT_NET);
        return FY_CLI_EXIT_NET;
    }
    char chdir[4096];
    snprintf(chdir, sizeof chdir, "%s/channels", data_dir);
    struct dirent **names = NULL;
    int n = scandir(chdir, &names, only_dirs, alphasort);
    if (n < 0 && errno != ENOENT) {
        fy_klog(FY_LOG_ERROR, "cannot list channels", "dir=%s err=%s exit=%d", chdir,
                fy_errname(-errno), FY_CLI_EXIT_IO);
        return FY_CLI_EXIT_IO;
    }
    totals t = {0};
    for (int i = 0; i < n; i++) {
        check_channel(chdir, names[i]->d_name, max_payload, out, &t);
        free(names[i]);
    }
    free(names);
    bool bad = t.damaged > 0;
    fprintf(out,
            "check=%s channels=%llu damaged=%llu unreadable=%llu frames=%llu bytes=%llu "
            "crc_errors=%llu index_errors=%llu\n",
            bad ? "damaged" : t.unreadable ? "unreadable" : "ok", (unsigned long long)t.channels,
            (unsigned long long)t.damaged, (unsigned long long)t.unreadable,
            (unsigned long long)t.frames, (unsigned long long)t.bytes,
            (unsigned long long)t.crc_errors, (unsigned long long)t.index_errors);
    fflush(out);
    return bad ? FY_CLI_EXIT_DAMAGE : t.unreadable ? FY_CLI_EXIT_IO : FY_CLI_EXIT_OK;
}
