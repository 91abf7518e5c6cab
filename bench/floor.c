/*
 * floor: the benchmark's floor for trivial tasks. Does what the process
 * backend does for a task, without HTTP, store or shim: make a cgroup
 * per task in each v1 controller (memory, cpu, pids) or one v2 cgroup,
 * write the limits, fork, join the cgroup, exec /bin/true, wait, remove
 * the cgroup. Keeps `parallel` tasks in flight and prints tasks/second.
 * With "vfork" it starts the process as the proxy's shim does, the
 * cheapest way there is: the stricter floor.
 *
 *   floor N PARALLEL [fork|vfork]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

static const char *v1_controllers[] = {"memory", "cpu", "pids"};
static int v2, use_vfork;

static void put(const char *dir, const char *file, const char *val)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, val, strlen(val)) < 0) {
        perror(p);
        exit(1);
    }
    close(fd);
}

static void cg_dir(char *buf, size_t n, int ctl, int i)
{
    if (v2)
        snprintf(buf, n, "/sys/fs/cgroup/ocps-floor/t%d", i);
    else
        snprintf(buf, n, "/sys/fs/cgroup/%s/ocps-floor/t%d", v1_controllers[ctl], i);
}

static pid_t start(int i)
{
    char d[256];
    int nctl = v2 ? 1 : 3;
    for (int c = 0; c < nctl; c++) {
        cg_dir(d, sizeof(d), c, i);
        if (mkdir(d, 0755) < 0 && errno != EEXIST) {
            perror(d);
            exit(1);
        }
        if (v2) {
            put(d, "memory.max", "67108864");
            put(d, "cpu.max", "10000 100000");
            put(d, "pids.max", "4096");
        } else if (c == 0)
            put(d, "memory.limit_in_bytes", "67108864");
        else if (c == 1) {
            put(d, "cpu.cfs_period_us", "100000");
            put(d, "cpu.cfs_quota_us", "10000");
        } else
            put(d, "pids.max", "4096");
    }
    pid_t pid = use_vfork ? vfork() : fork();
    if (pid == 0) {
        char me[32], p[512];
        snprintf(me, sizeof(me), "%d", (int) getpid());
        for (int c = 0; c < nctl; c++) {
            cg_dir(d, sizeof(d), c, i);
            snprintf(p, sizeof(p), "%s/cgroup.procs", d);
            int fd = open(p, O_WRONLY | O_CLOEXEC);
            if (fd < 0 || write(fd, me, strlen(me)) < 0)
                _exit(126);
            close(fd);
        }
        execl("/bin/true", "true", (char *) NULL);
        _exit(127);
    }
    return pid;
}

static void finish(int i)
{
    char d[256];
    for (int c = 0; c < (v2 ? 1 : 3); c++) {
        cg_dir(d, sizeof(d), c, i);
        while (rmdir(d) < 0 && errno == EBUSY)
            ;
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int par = argc > 2 ? atoi(argv[2]) : 1;
    use_vfork = argc > 3 && strcmp(argv[3], "vfork") == 0;
    struct statfs sf;
    v2 = statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
    char d[256];
    for (int c = 0; c < (v2 ? 1 : 3); c++) {
        if (v2)
            snprintf(d, sizeof(d), "/sys/fs/cgroup/ocps-floor");
        else
            snprintf(d, sizeof(d), "/sys/fs/cgroup/%s/ocps-floor", v1_controllers[c]);
        mkdir(d, 0755);
    }
    if (v2) {
        /* Each level gives the controllers to the next: the root to
         * ocps-floor, ocps-floor to the task groups. */
        put("/sys/fs/cgroup", "cgroup.subtree_control", "+memory +cpu +pids");
        put("/sys/fs/cgroup/ocps-floor", "cgroup.subtree_control", "+memory +cpu +pids");
    }

    pid_t *pids = calloc((size_t) n, sizeof(pid_t));
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int started = 0, done = 0, inflight = 0;
    while (done < n) {
        while (inflight < par && started < n) {
            pids[started] = start(started);
            started++;
            inflight++;
        }
        int st;
        pid_t p = wait(&st);
        for (int i = 0; i < started; i++)
            if (pids[i] == p) {
                finish(i);
                break;
            }
        inflight--;
        done++;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double) (b.tv_sec - a.tv_sec) + (double) (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%.1f\n", n / s);
    for (int c = 0; c < (v2 ? 1 : 3); c++) {
        if (v2)
            snprintf(d, sizeof(d), "/sys/fs/cgroup/ocps-floor");
        else
            snprintf(d, sizeof(d), "/sys/fs/cgroup/%s/ocps-floor", v1_controllers[c]);
        rmdir(d);
    }
    return 0;
}
