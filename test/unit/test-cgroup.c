/*
 * test-cgroup: task groups on this host's real cgroups (v2 or v1): limits
 * written, a process moved in, the whole group killed, stats read, the
 * group removed. Needs root; skipped otherwise.
 */
#include "process/cgroup.h"
#include "tap.h"
#include "util/util.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

static bool file_has(const char *dir, const char *file, const char *want)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
    _cleanup_free_ char *data = NULL;
    if (read_file(p, 4096, &data, NULL) < 0)
        return false;
    return strstr(data, want) != NULL;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

int main(void)
{
    struct error err = ERROR_INIT;
    struct cgroup parent = {0}, cg = {0};
    _cleanup_free_ char *name = xasprintf("ocps-test-%d", getpid());

    if (geteuid() != 0)
        tap_skip_all("needs root to create cgroups");
    if (cgroup_parent_open(name, &parent, &err) < 0)
        tap_skip_all(error_message(&err));
    diag("cgroup %s (%s)", parent.dir[CG_MEMORY], parent.v2 ? "v2" : "v1");

    cgroup_child(&parent, "task1", &cg);
    struct cgroup_limits l = {.memory = 64ULL << 20, .cores = 0.5, .pids = 100, .cpu_usage = true};
    ok(cgroup_create(&cg, &l, &err) == 0, "create with limits: %s", error_message(&err));
    if (cg.v2) {
        ok(file_has(cg.dir[CG_MEMORY], "memory.max", "67108864"), "memory.max is 64 MiB");
        ok(file_has(cg.dir[CG_CPU], "cpu.max", "50000 100000"), "cpu.max is half a CPU");
    } else {
        ok(file_has(cg.dir[CG_MEMORY], "memory.limit_in_bytes", "67108864"),
           "memory.limit_in_bytes is 64 MiB");
        ok(file_has(cg.dir[CG_CPU], "cpu.cfs_quota_us", "50000") &&
               file_has(cg.dir[CG_CPU], "cpu.cfs_period_us", "100000"),
           "CFS quota is half a CPU (of the default 100 ms period)");
    }
    ok(file_has(cg.dir[CG_PIDS], "pids.max", "100"), "pids.max is 100");
    ok(!cgroup_is_populated(&cg), "a new group is empty");

    /* A process that forks a child which starts its own session: both must die. */
    int pipefd[2];
    ok(pipe(pipefd) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        if (cgroup_enter(&cg, getpid()) < 0)
            _exit(1);
        if (fork() == 0) {
            setsid();
            (void) !write(pipefd[1], "x", 1);
            for (;;)
                pause();
        }
        for (;;)
            pause();
    }
    close(pipefd[1]);
    char c;
    ok(read(pipefd[0], &c, 1) == 1, "the child and its setsid'd grandchild run in the group");
    close(pipefd[0]);
    ok(cgroup_is_populated(&cg), "the group is populated");
    uint64_t ooms = 99;
    int r = cgroup_oom_kills(&cg, &ooms);
    ok(r == 0 && ooms == 0, "no OOM kills yet (%llu)", (unsigned long long) ooms);
    usec_t cpu = -1;
    r = cgroup_cpu_usage(&cg, &cpu);
    ok(r == 0 && cpu >= 0, "CPU usage is readable (%lld us)", (long long) cpu);
    ok(cgroup_destroy(&cg) < 0, "a populated group cannot be removed");

    ok(cgroup_kill(&cg) == 0, "kill the group");
    int status = 0;
    ok(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
       "the child was SIGKILLed");
    for (int i = 0; i < 2000 && cgroup_is_populated(&cg); i++)
        usleep(1000);
    ok(!cgroup_is_populated(&cg), "the grandchild in its own session is gone too");

    /* A tree that forks as fast as it can: nothing escapes the kill, and
     * no freezer is needed for that. */
    struct cgroup bomb = {0};
    cgroup_child(&parent, "bomb", &bomb);
    ok(cgroup_create(&bomb, &l, &err) == 0, "create a group for a fork bomb: %s",
       error_message(&err));
    pid = fork();
    if (pid == 0) {
        if (cgroup_enter(&bomb, getpid()) < 0)
            _exit(1);
        /* A shell, not a copy of this (perhaps sanitized, so heavy) program. */
        execl("/bin/sh", "sh", "-c", "while :; do sleep 1000 & done 2>/dev/null", (char *) NULL);
        _exit(127);
    }
    long current = 0;
    for (int i = 0; i < 10000 && current < 95; i++) {
        _cleanup_free_ char *p = xasprintf("%s/pids.current", bomb.dir[CG_PIDS]);
        _cleanup_free_ char *v = NULL;
        if (read_file(p, 64, &v, NULL) >= 0)
            current = strtol(v, NULL, 10);
        usleep(1000);
    }
    ok(current >= 95, "the fork bomb filled its group (%ld of 100)", current);
    ok(cgroup_kill(&bomb) == 0, "kill the fork bomb");
    ok(waitpid(pid, &status, 0) == pid, "its first process is gone");
    for (int i = 0; i < 2000 && cgroup_is_populated(&bomb); i++)
        usleep(1000);
    ok(!cgroup_is_populated(&bomb), "nothing of it is left");
    if (!bomb.v2)
        ok(file_has(bomb.dir[CG_PIDS], "pids.max", "0"), "the group can no longer grow");
    ok(cgroup_destroy(&bomb) == 0, "remove its group");
    cgroup_done(&bomb);

    struct cgroup nocpu = {0};
    cgroup_child(&parent, "task2", &nocpu);
    struct cgroup_limits l2 = {.memory = 64ULL << 20, .pids = 10};
    ok(cgroup_create(&nocpu, &l2, &err) == 0, "create without cpu_usage: %s", error_message(&err));
    bool apart = !nocpu.v2 && cg.dir[CG_CPUACCT] && !streq(cg.dir[CG_CPUACCT], cg.dir[CG_CPU]);
    if (apart)
        ok(!nocpu.dir[CG_CPUACCT] && cgroup_cpu_usage(&nocpu, &cpu) == -ENOENT,
           "no cpuacct group of its own when nothing reads it");
    else
        ok(cgroup_cpu_usage(&nocpu, &cpu) == 0, "CPU usage comes with the cpu controller here");
    ok(cgroup_destroy(&nocpu) == 0, "remove it");
    cgroup_done(&nocpu);

    cJSON *j = cgroup_to_cjson(&cg);
    struct cgroup back = {0};
    ok(cgroup_from_cjson(j, &back) == 0 && back.v2 == cg.v2 &&
           streq(back.dir[CG_MEMORY], cg.dir[CG_MEMORY]) &&
           streq(back.dir[CG_PIDS], cg.dir[CG_PIDS]),
       "the group survives a JSON round trip");
    cJSON_Delete(j);
    cgroup_done(&back);
    cJSON *bad = cJSON_Parse("{\"v2\":false,\"memory\":\"relative\"}");
    ok(cgroup_from_cjson(bad, &back) == -EINVAL, "a group with bad paths is refused");
    cJSON_Delete(bad);

    ok(cgroup_destroy(&cg) == 0, "remove the empty group");
    ok(!exists(cg.dir[CG_MEMORY]), "its directory is gone");
    ok(cgroup_destroy(&cg) == 0, "removing it again is fine");

    cgroup_done(&cg);
    ok(cgroup_destroy(&parent) == 0, "remove the test parent");
    cgroup_done(&parent);
    error_clear(&err);
    return tap_done();
}
