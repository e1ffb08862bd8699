/*
 * trsnap.c - flight-recorder snapshots (trsnap.h).
 *
 * The fatal-signal path keeps the scheduler and the directory in two
 * process-wide variables: a signal handler has no other way to find them.
 * They are set once by fy_trsnap_fatal_install() before the scheduler's
 * threads start and only read afterwards.  Inside the handler the file
 * name is built by hand (no snprintf/strftime, which are not
 * async-signal-safe); only fy_trace_dump() itself is not, see trsnap.h.
 */
#include "relay/trsnap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ferry/klog.h"
#include "ferry/trace.h"

static fy_sched *crash_sched;  /* set once before threads start */
static char crash_dir[4096];   /* set once before threads start */

static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

int fy_trsnap_write(fy_sched *s, const char *dir, char *path, size_t cap)
{
    char base[4200], tmp[4300];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int k = snprintf(base, sizeof base, "%s/trace-", dir);
    if (k < 0 || (size_t)k >= sizeof base - 32)
        return -ENAMETOOLONG;
    strftime(base + k, sizeof base - (size_t)k, "%Y%m%d-%H%M%S", &tm);

    for (unsigned n = 0; n < 100; n++) {
        if (n == 0)
            snprintf(path, cap, "%s.trace", base);
        else
            snprintf(path, cap, "%s-%u.trace", base, n);
        if (access(path, F_OK) == 0)
            continue;
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0) {
            if (errno == EEXIST)
                continue;
            return -errno;
        }
        int rc = fy_trace_dump(s, fd);
        if (rc == 0 && fsync(fd) < 0)
            rc = -errno;
        close(fd);
        if (rc == 0 && link(tmp, path) < 0) /* link, not rename: never replaces */
            rc = errno == EEXIST ? 1 : -errno;
        unlink(tmp);
        if (rc == 1)
            continue;
        return rc;
    }
    return -EEXIST;
}

/* ---- fatal signals -------------------------------------------------------- */

static size_t put_str(char *p, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        p[at++] = *s++;
    p[at] = 0;
    return at;
}

static size_t put_num(char *p, size_t at, size_t cap, unsigned long v, int width)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 20);
    while (n < width && n < 20)
        d[n++] = '0';
    while (n && at + 1 < cap)
        p[at++] = d[--n];
    p[at] = 0;
    return at;
}

/* Days since 1970-01-01 -> civil date (H. Hinnant's algorithm), signal-safe. */
static void civil(long z, long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long)yoe + era * 400 + (*m <= 2);
}

static void on_fatal(int sig)
{
    static volatile sig_atomic_t busy;
    int saved = errno;
    if (!busy && crash_sched) {
        busy = 1;
        alarm(5); /* a dump stuck on a lock the crashed thread held ends here */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long days = (long)(ts.tv_sec / 86400), sec = (long)(ts.tv_sec % 86400), y;
        unsigned mo, d;
        civil(days, &y, &mo, &d);
        char path[4200];
        size_t at = put_str(path, 0, sizeof path, crash_dir);
        at = put_str(path, at, sizeof path, "/trace-");
        at = put_num(path, at, sizeof path, (unsigned long)y, 4);
        at = put_num(path, at, sizeof path, mo, 2);
        at = put_num(path, at, sizeof path, d, 2);
        at = put_str(path, at, sizeof path, "-");
        at = put_num(path, at, sizeof path, (unsigned long)(sec / 3600), 2);
        at = put_num(path, at, sizeof path, (unsigned long)(sec / 60 % 60), 2);
        at = put_num(path, at, sizeof path, (unsigned long)(sec % 60), 2);
        put_str(path, at, sizeof path, "-crash.trace");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        char line[4400];
        size_t n = put_str(line, 0, sizeof line, "level=error prog=ferryd msg=\"fatal signal\" sig=");
        n = put_num(line, n, sizeof line, (unsigned long)sig, 1);
        if (fd >= 0) {
            int rc = fy_trace_dump(crash_sched, fd);
            close(fd);
            n = put_str(line, n, sizeof line, rc == 0 ? " trace=" : " trace_incomplete=");
            n = put_str(line, n, sizeof line, path);
        } else {
            n = put_str(line, n, sizeof line, " trace=none reason=open_failed");
        }
        n = put_str(line, n, sizeof line, "\n");
        ssize_t w = write(2, line, n);
        (void)w;
        alarm(0);
    }
    errno = saved;
    /* SA_RESETHAND put the default action back: die of the same signal. */
    raise(sig);
}

int fy_trsnap_fatal_install(fy_sched *s, const char *dir)
{
    if (strlen(dir) >= sizeof crash_dir - 64)
        return -ENAMETOOLONG;
    snprintf(crash_dir, sizeof crash_dir, "%s", dir);
    crash_sched = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof *fatal_sigs; i++)
        if (sigaction(fatal_sigs[i], &sa, NULL) < 0)
            return -errno;
    return 0;
}
