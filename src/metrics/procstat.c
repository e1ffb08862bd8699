/*
 * procstat.c - process and file-system figures for /metrics (procstat.h).
 *
 * The names and meanings are Prometheus's own (client libraries export the
 * same families), so dashboards made for any exporter work: CPU and start
 * time come from /proc/self/stat (ticks since boot, plus the boot time of
 * /proc/stat, as the Go client does), memory from the same line, open
 * descriptors by counting /proc/self/fd.
 */
#include "metrics/procstat.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Boot time, seconds since the epoch (read once: it does not change). */
static double boot_seconds(void)
{
    static double boot = -1;
    if (boot >= 0)
        return boot;
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    unsigned long long b = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &b) == 1)
            break;
    if (f)
        fclose(f);
    boot = (double)b;
    return boot;
}

/* Fields 14-15 (utime, stime), 22 (starttime), 23 (vsize), 24 (rss pages)
 * of /proc/self/stat; the comm field may hold spaces, so count after ')'. */
static int read_stat(fy_procstat *o)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    unsigned long long ut, st, start, vsize;
    long long rss;
    /* after ") ": state is field 3; skip fields 3..13 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                      "%*d %*d %llu %llu %lld",
               &ut, &st, &start, &vsize, &rss) != 5)
        return -EINVAL;
    double tck = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    o->cpu_seconds = (double)(ut + st) / tck;
    o->start_seconds = boot_seconds() + (double)start / tck;
    o->vm_bytes = vsize;
    o->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
    return 0;
}

static int count_fds(uint64_t *n)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    uint64_t k = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        k += e->d_name[0] != '.';
    closedir(d);
    *n = k > 0 ? k - 1 : 0; /* not the descriptor opendir itself holds */
    return 0;
}

int fy_procstat_read(fy_procstat *out)
{
    memset(out, 0, sizeof *out);
    int rc = read_stat(out);
    int rc2 = count_fds(&out->open_fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
    return rc < 0 ? rc : rc2;
}

void fy_procstat_render(fy_prom *p)
{
    fy_procstat s;
    (void)fy_procstat_read(&s);
    fy_prom_family(p, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.");
    fy_prom_f64(p, "process_cpu_seconds_total", s.cpu_seconds, NULL);
    fy_prom_family(p, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    fy_prom_u64(p, "process_resident_memory_bytes", s.rss_bytes, NULL);
    fy_prom_family(p, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    fy_prom_u64(p, "process_virtual_memory_bytes", s.vm_bytes, NULL);
    fy_prom_family(p, "process_open_fds", "gauge", "Number of open file descriptors.");
    fy_prom_u64(p, "process_open_fds", s.open_fds, NULL);
    fy_prom_family(p, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    fy_prom_u64(p, "process_max_fds", s.max_fds, NULL);
    fy_prom_family(p, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
    fy_prom_f64(p, "process_start_time_seconds", s.start_seconds, NULL);
}

int fy_procstat_disk(const char *dir, uint64_t *free_bytes, uint64_t *size_bytes)
{
    struct statvfs v;
    if (statvfs(dir, &v) < 0)
        return -errno;
    *free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
    *size_bytes = (uint64_t)v.f_blocks * v.f_frsize;
    return 0;
}
