/*
 * metrics-process: what the daemon's process holds, read from /proc/self
 * at each scrape, under the names every Prometheus client library's
 * process collector uses (process_resident_memory_bytes,
 * process_open_fds, ...), so that the dashboards and alerts written for
 * them apply as they are.
 */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <sys/resource.h>
#include <time.h>

/* /proc/self/stat's fields after the command (which may hold blanks and
 * parentheses: the last ')' ends it): utime, stime (clock ticks),
 * num_threads, starttime (ticks after boot), vsize (bytes), rss (pages). */
struct proc_stat {
    unsigned long long utime, stime, starttime, vsize;
    long threads, rss;
};

static int read_stat(struct proc_stat *ret)
{
    char buf[1024];
    _cleanup_fclose_ FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p)
        return -EIO;
    /* After ") ": state (3), then fields 4..; utime is 14, stime 15,
     * num_threads 20, starttime 22, vsize 23, rss 24. */
    struct proc_stat s = {0};
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld "
                     "%*d %llu %llu %ld",
                     &s.utime, &s.stime, &s.threads, &s.starttime, &s.vsize, &s.rss);
    if (got != 6)
        return -EIO;
    *ret = s;
    return 0;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

/* When the system booted, from the realtime and boottime clocks. */
static double boot_time(void)
{
    struct timespec rt, bt;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_BOOTTIME, &bt);
    return (double) (rt.tv_sec - bt.tv_sec) + (double) (rt.tv_nsec - bt.tv_nsec) / 1e9;
}

void metrics_process(FILE *f)
{
    struct proc_stat s;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (read_stat(&s) >= 0 && tick > 0 && page > 0) {
        metrics_family(f, "process_cpu_seconds_total", "counter",
                       "CPU time the daemon used, user and system, in seconds.");
        metrics_sample(f, "process_cpu_seconds_total", NULL,
                       (double) (s.utime + s.stime) / (double) tick);
        metrics_family(f, "process_resident_memory_bytes", "gauge",
                       "Resident memory of the daemon, in bytes.");
        metrics_sample(f, "process_resident_memory_bytes", NULL, (double) s.rss * (double) page);
        metrics_family(f, "process_virtual_memory_bytes", "gauge",
                       "Virtual memory of the daemon, in bytes.");
        metrics_sample(f, "process_virtual_memory_bytes", NULL, (double) s.vsize);
        metrics_family(f, "process_threads", "gauge", "Threads of the daemon.");
        metrics_sample(f, "process_threads", NULL, (double) s.threads);
        metrics_family(f, "process_start_time_seconds", "gauge",
                       "When the daemon started, in seconds since the Unix epoch.");
        metrics_sample(f, "process_start_time_seconds", NULL,
                       boot_time() + (double) s.starttime / (double) tick);
    }
    long fds = open_fds();
    if (fds >= 0) {
        metrics_family(f, "process_open_fds", "gauge", "Open file descriptors of the daemon.");
        metrics_sample(f, "process_open_fds", NULL, (double) fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        metrics_family(f, "process_max_fds", "gauge",
                       "The daemon's limit of open file descriptors (RLIMIT_NOFILE).");
        metrics_sample(f, "process_max_fds", NULL,
                       rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double) rl.rlim_cur);
    }
}
