/*
 * cgroup: task groups on cgroup v2 or the v1 controllers (see cgroup.h).
 * Facts this relies on are in ../shared/REFERENCE.md ("cgroups").
 */
#include "cgroup.h"
#include "util/log.h"
#include "util/util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_ROOT   "/sys/fs/cgroup"
#define CPU_PERIOD_US 100000
/* The leaf the daemon moves into on v2 when its own group must delegate. */
#define V2_LEAF "ocps-proxyd"

static const char *const controller_name[_CG_MAX] = {
    [CG_MEMORY] = "memory",
    [CG_CPU] = "cpu",
    [CG_CPUACCT] = "cpuacct",
    [CG_PIDS] = "pids",
};

void cgroup_done(struct cgroup *cg)
{
    for (int i = 0; i < _CG_MAX; i++) {
        free(cg->dir[i]);
        cg->dir[i] = NULL;
    }
}

/* Our own path in the hierarchy that holds 'controller' ("" = the v2 line). */
static int own_path(const char *controller, char **ret)
{
    _cleanup_free_ char *data = NULL;
    int r = read_file("/proc/self/cgroup", 1 << 16, &data, NULL);
    if (r < 0)
        return r;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        /* "ID:CONTROLLERS:PATH": the v2 line is "0::PATH". */
        *c1 = *c2 = '\0';
        const char *ctrls = c1 + 1;
        bool match = false;
        if (!*controller) {
            match = streq(line, "0") && !*ctrls;
        } else {
            _cleanup_free_ char *list = xstrdup(ctrls);
            char *save = NULL;
            for (char *c = strtok_r(list, ",", &save); c; c = strtok_r(NULL, ",", &save))
                if (streq(c, controller))
                    match = true;
        }
        if (match) {
            *ret = xstrdup(c2 + 1);
            return 0;
        }
    }
    return -ENOENT;
}

static bool is_cgroup2(const char *path)
{
    struct statfs fs;
    return statfs(path, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

static int file_write(const char *dir, const char *file, const char *value)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
    return write_string_file(p, value);
}

/* The controllers of 'enable' that base's parent does not give it ("" when all are given). */
static char *v2_missing(const char *base, const char *const *want)
{
    _cleanup_free_ char *p = xasprintf("%s/cgroup.controllers", base);
    _cleanup_free_ char *have = NULL;
    if (read_file(p, 4096, &have, NULL) < 0)
        have = xstrdup("");
    _cleanup_free_ char *missing = xstrdup("");
    for (; *want; want++) {
        bool found = false;
        _cleanup_free_ char *list = xstrdup(have);
        char *save = NULL;
        for (char *c = strtok_r(list, " \n", &save); c; c = strtok_r(NULL, " \n", &save))
            found = found || streq(c, *want);
        if (!found) {
            char *m = xasprintf("%s%s%s", missing, *missing ? ", " : "", *want);
            free(missing);
            missing = m;
        }
    }
    return TAKE_PTR(missing);
}

static int v2_parent_open(const char *name, struct cgroup *ret, struct error *err)
{
    static const char *const want[] = {"cpu", "memory", "pids", NULL};
    _cleanup_free_ char *own = NULL;
    int r = own_path("", &own);
    if (r < 0)
        return error_set_errno(err, r, "cannot find our cgroup v2 path");
    /* Our own leaf (V2_LEAF below) already: a restart in it, placed there by
     * a service manager that cannot place us in the delegated group any more
     * (it holds controllers now), uses the same group as before rather than
     * one nested deeper at each restart. */
    char *slash = strrchr(own, '/');
    if (slash && slash != own && streq(slash + 1, V2_LEAF))
        *slash = '\0';
    _cleanup_free_ char *base = xasprintf(CGROUP_ROOT "%s", streq(own, "/") ? "" : own);
    const char *enable = "+cpu +memory +pids";

    _cleanup_free_ char *missing = v2_missing(base, want);
    if (*missing && !streq(base, CGROUP_ROOT))
        return error_set(err, -EPERM,
                         "cgroup controllers %s are not delegated to %s (a systemd service needs "
                         "Delegate=yes)",
                         missing, base);
    r = file_write(base, "cgroup.subtree_control", enable);
    if (r == -EBUSY) {
        /* We hold processes, so the group cannot delegate: move into a leaf. */
        _cleanup_free_ char *leaf = xasprintf("%s/" V2_LEAF, base);
        if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
            return error_set_errno(err, -errno, "mkdir %s", leaf);
        _cleanup_free_ char *pid = xasprintf("%d", getpid());
        r = file_write(leaf, "cgroup.procs", pid);
        if (r < 0)
            return error_set_errno(err, r, "move the daemon into %s", leaf);
        r = file_write(base, "cgroup.subtree_control", enable);
    }
    if (r < 0)
        return error_set_errno(err, r, "enable cpu, memory and pids controllers in %s", base);

    _cleanup_free_ char *dir = xasprintf("%s/%s", base, name);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return error_set_errno(err, -errno, "mkdir %s", dir);
    r = file_write(dir, "cgroup.subtree_control", enable);
    if (r < 0)
        return error_set_errno(err, r, "enable controllers in %s", dir);
    ret->v2 = true;
    for (int i = 0; i < _CG_MAX; i++)
        ret->dir[i] = xstrdup(dir);
    return 0;
}

static int v1_parent_open(const char *name, struct cgroup *ret, struct error *err)
{
    struct cgroup cg = {.v2 = false};
    for (int i = 0; i < _CG_MAX; i++) {
        _cleanup_free_ char *own = NULL;
        _cleanup_free_ char *mnt = xasprintf(CGROUP_ROOT "/%s", controller_name[i]);
        if (access(mnt, F_OK) < 0 || own_path(controller_name[i], &own) < 0) {
            cgroup_done(&cg);
            return error_set(err, -ENOTSUP, "cgroup v1 controller %s is not mounted",
                             controller_name[i]);
        }
        cg.dir[i] = xasprintf("%s%s/%s", mnt, streq(own, "/") ? "" : own, name);
        if (mkdir(cg.dir[i], 0755) < 0 && errno != EEXIST) {
            int r = error_set_errno(err, -errno, "mkdir %s", cg.dir[i]);
            cgroup_done(&cg);
            return r;
        }
    }
    *ret = cg;
    return 0;
}

int cgroup_parent_open(const char *name, struct cgroup *ret, struct error *err)
{
    if (is_cgroup2(CGROUP_ROOT))
        return v2_parent_open(name, ret, err);
    return v1_parent_open(name, ret, err);
}

void cgroup_child(const struct cgroup *parent, const char *id, struct cgroup *ret)
{
    ret->v2 = parent->v2;
    for (int i = 0; i < _CG_MAX; i++)
        ret->dir[i] = parent->dir[i] ? xasprintf("%s/%s", parent->dir[i], id) : NULL;
}

/* The directories to act on once each (v2 and co-mounted v1 controllers share). */
static bool first_of(const struct cgroup *cg, int i)
{
    if (!cg->dir[i])
        return false;
    for (int j = 0; j < i; j++)
        if (cg->dir[j] && streq(cg->dir[j], cg->dir[i]))
            return false;
    return true;
}

int cgroup_create(struct cgroup *cg, const struct cgroup_limits *l, struct error *err)
{
    char buf[64];
    int r;

    /* A v1 cpuacct hierarchy of its own costs a mkdir, a join and an rmdir
     * per task; only a cputime limit reads it. */
    if (!cg->v2 && !l->cpu_usage && cg->dir[CG_CPUACCT] && first_of(cg, CG_CPUACCT)) {
        free(cg->dir[CG_CPUACCT]);
        cg->dir[CG_CPUACCT] = NULL;
    }

    for (int i = 0; i < _CG_MAX; i++)
        if (first_of(cg, i) && mkdir(cg->dir[i], 0755) < 0 && errno != EEXIST)
            return error_set_errno(err, -errno, "mkdir %s", cg->dir[i]);

    if (l->memory) {
        snprintf(buf, sizeof(buf), "%" PRIu64, l->memory);
        if (cg->v2) {
            r = file_write(cg->dir[CG_MEMORY], "memory.max", buf);
            /* No swap: a limit that can be dodged by swapping is no limit. */
            if (r >= 0 && file_write(cg->dir[CG_MEMORY], "memory.swap.max", "0") < 0)
                log_debug("memory.swap.max not available");
        } else {
            r = file_write(cg->dir[CG_MEMORY], "memory.limit_in_bytes", buf);
            /* No swap either, where the kernel accounts it (swapaccount=1). */
            if (r >= 0) {
                int q = file_write(cg->dir[CG_MEMORY], "memory.memsw.limit_in_bytes", buf);
                if (q != -ENOENT)
                    r = q;
            }
        }
        if (r < 0)
            return error_set_errno(err, r, "set the memory limit in %s", cg->dir[CG_MEMORY]);
    }
    if (l->cores > 0) {
        uint64_t quota = (uint64_t) (l->cores * CPU_PERIOD_US + 0.5);
        if (quota < 1000)
            quota = 1000;
        if (cg->v2) {
            snprintf(buf, sizeof(buf), "%" PRIu64 " %d", quota, CPU_PERIOD_US);
            r = file_write(cg->dir[CG_CPU], "cpu.max", buf);
        } else {
            /* A new group's cfs_period_us is the kernel's default, CPU_PERIOD_US. */
            snprintf(buf, sizeof(buf), "%" PRIu64, quota);
            r = file_write(cg->dir[CG_CPU], "cpu.cfs_quota_us", buf);
        }
        if (r < 0)
            return error_set_errno(err, r, "set the CPU quota in %s", cg->dir[CG_CPU]);
    }
    if (l->pids) {
        snprintf(buf, sizeof(buf), "%" PRIu64, l->pids);
        r = file_write(cg->dir[CG_PIDS], "pids.max", buf);
        if (r < 0)
            return error_set_errno(err, r, "set the pids limit in %s", cg->dir[CG_PIDS]);
    }
    return 0;
}

/* Async-signal-safe: runs in a forked child of a threaded process. */
int cgroup_enter(const struct cgroup *cg, pid_t pid)
{
    char num[24], path[4096];
    int n = 0;
    char tmp[24];
    unsigned v = (unsigned) pid;

    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        num[i] = tmp[n - 1 - i];
    num[n] = '\0';

    for (int i = 0; i < _CG_MAX; i++) {
        if (!first_of(cg, i))
            continue;
        size_t dl = strlen(cg->dir[i]);
        if (dl + sizeof("/cgroup.procs") > sizeof(path))
            return -ENAMETOOLONG;
        memcpy(path, cg->dir[i], dl);
        memcpy(path + dl, "/cgroup.procs", sizeof("/cgroup.procs"));
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        ssize_t w = write(fd, num, n);
        int e = errno;
        close(fd);
        if (w != n)
            return w < 0 ? -e : -EIO;
    }
    return 0;
}

/* The directory whose cgroup.procs lists the members (all controllers hold the same). */
static const char *procs_dir(const struct cgroup *cg)
{
    return cg->dir[CG_MEMORY] ? cg->dir[CG_MEMORY] : cg->dir[CG_PIDS];
}

static int signal_all(const struct cgroup *cg, int sig, unsigned *ret_n)
{
    _cleanup_free_ char *p = xasprintf("%s/cgroup.procs", procs_dir(cg));
    _cleanup_free_ char *data = NULL;
    unsigned n = 0;
    int r = read_file(p, 16 << 20, &data, NULL);
    if (r < 0)
        return r;
    for (char *s = data; *s;) {
        char *end;
        long pid = strtol(s, &end, 10);
        if (end == s)
            break;
        if (pid > 0 && kill((pid_t) pid, sig) == 0)
            n++;
        s = end;
        while (*s == '\n')
            s++;
    }
    if (ret_n)
        *ret_n = n;
    return 0;
}

int cgroup_signal(const struct cgroup *cg, int sig)
{
    return signal_all(cg, sig, NULL);
}

int cgroup_kill_once(const struct cgroup *cg, unsigned *ret_n)
{
    if (ret_n)
        *ret_n = 0;
    if (cg->v2) {
        int r = file_write(cg->dir[CG_MEMORY], "cgroup.kill", "1");
        if (r != -ENOENT)
            return r; /* the kernel kills every member, and any it forks meanwhile */
        /* Before 5.14: as on v1. */
    }
    /* No process can join a group whose pids.max is 0, so what is listed is
     * all there will ever be: no fork escapes between reading and killing. */
    if (cg->dir[CG_PIDS])
        (void) file_write(cg->dir[CG_PIDS], "pids.max", "0");
    int r = signal_all(cg, SIGKILL, ret_n);
    return r == -ENOENT ? 0 : r;
}

int cgroup_kill(const struct cgroup *cg)
{
    for (int i = 0; i < 1000; i++) {
        unsigned n = 0;
        int r = cgroup_kill_once(cg, &n);
        if (r < 0 || n == 0)
            return r;
        /* A fork that had passed its pids check before the limit was set can
         * still add one member: look again. */
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    return -EBUSY;
}

bool cgroup_is_populated(const struct cgroup *cg)
{
    _cleanup_free_ char *data = NULL;
    if (cg->v2) {
        _cleanup_free_ char *p = xasprintf("%s/cgroup.events", cg->dir[CG_MEMORY]);
        if (read_file(p, 4096, &data, NULL) < 0)
            return false;
        return strstr(data, "populated 1") != NULL;
    }
    _cleanup_free_ char *p = xasprintf("%s/cgroup.procs", procs_dir(cg));
    if (read_file(p, 1 << 20, &data, NULL) < 0)
        return false;
    return data[0] != '\0';
}

/* "key value" lines: the value of key, or -ENOENT. */
static int read_keyed(const char *dir, const char *file, const char *key, uint64_t *ret)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
    _cleanup_free_ char *data = NULL;
    int r = read_file(p, 1 << 16, &data, NULL);
    if (r < 0)
        return r;
    size_t kl = strlen(key);
    for (char *line = data; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            *ret = strtoull(line + kl + 1, NULL, 10);
            return 0;
        }
    return -ENOENT;
}

int cgroup_oom_kills(const struct cgroup *cg, uint64_t *ret)
{
    if (cg->v2)
        return read_keyed(cg->dir[CG_MEMORY], "memory.events", "oom_kill", ret);
    return read_keyed(cg->dir[CG_MEMORY], "memory.oom_control", "oom_kill", ret);
}

int cgroup_cpu_usage(const struct cgroup *cg, usec_t *ret)
{
    uint64_t v;
    int r;

    if (cg->v2) {
        r = read_keyed(cg->dir[CG_CPU], "cpu.stat", "usage_usec", &v);
        if (r >= 0)
            *ret = (usec_t) v;
        return r;
    }
    if (!cg->dir[CG_CPUACCT])
        return -ENOENT;
    _cleanup_free_ char *p = xasprintf("%s/cpuacct.usage", cg->dir[CG_CPUACCT]);
    _cleanup_free_ char *data = NULL;
    r = read_file(p, 64, &data, NULL);
    if (r < 0)
        return r;
    *ret = (usec_t) (strtoull(data, NULL, 10) / 1000);
    return 0;
}

int cgroup_destroy(const struct cgroup *cg)
{
    int ret = 0;
    for (int i = 0; i < _CG_MAX; i++) {
        if (!first_of(cg, i))
            continue;
        if (rmdir(cg->dir[i]) < 0 && errno != ENOENT && ret == 0)
            ret = -errno;
    }
    return ret;
}

cJSON *cgroup_to_cjson(const struct cgroup *cg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "v2", cg->v2);
    for (int i = 0; i < _CG_MAX; i++)
        if (cg->dir[i])
            cJSON_AddStringToObject(o, controller_name[i], cg->dir[i]);
    return o;
}

int cgroup_from_cjson(const cJSON *j, struct cgroup *ret)
{
    struct cgroup cg = {.v2 = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "v2"))};
    for (int i = 0; i < _CG_MAX; i++) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, controller_name[i]);
        if (cJSON_IsString(d) && d->valuestring[0] == '/')
            cg.dir[i] = xstrdup(d->valuestring);
    }
    if (!cg.dir[CG_MEMORY] || !cg.dir[CG_CPU] || !cg.dir[CG_PIDS]) {
        cgroup_done(&cg);
        return -EINVAL;
    }
    *ret = cg;
    return 0;
}
