/*
 * cgroup: one control group per task, on cgroup v2 when the host has it
 * and on the v1 controllers otherwise (hybrid hosts keep their
 * controllers on v1).
 *
 * A struct cgroup names the directories of one task's group: on v2 a
 * single directory, on v1 one per controller (memory, cpu, pids, and
 * cpuacct when the task's CPU time must be read and the host mounts it
 * apart from cpu). The daemon creates it with the limits; the task's
 * first process joins it before dropping privileges; the shim kills
 * what is left in it and removes it. It travels between them as JSON.
 *
 * Killing a whole group needs no freezer: with pids.max at 0 no process
 * can join it (fork and clone fail with EAGAIN), so its member list only
 * shrinks and SIGKILL to each listed process empties it.
 */
#pragma once

#include "util/error.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <sys/types.h>

enum cgroup_controller {
    CG_MEMORY,
    CG_CPU,
    CG_CPUACCT,
    CG_PIDS,
    _CG_MAX,
};

struct cgroup {
    bool v2;
    char *dir[_CG_MAX]; /* v2: all the same directory */
};

struct cgroup_limits {
    uint64_t memory; /* bytes, 0 = none */
    double cores;    /* 0 = none */
    uint64_t pids;   /* 0 = none */
    bool cpu_usage;  /* the group's CPU time will be read (a cputime limit) */
};

/*
 * The parent under which task groups are made: "<our own cgroup>/<name>"
 * in every controller, created if missing. On v2 this enables the
 * controllers for it, moving the daemon into a leaf of its own first if
 * it must ("no internal processes").
 */
int cgroup_parent_open(const char *name, struct cgroup *ret, struct error *err);

/* The group of one task under the parent: "<parent>/<id>". */
void cgroup_child(const struct cgroup *parent, const char *id, struct cgroup *ret);

void cgroup_done(struct cgroup *cg);

/* mkdir every directory and write the limits. Drops a v1 cpuacct directory
 * of its own from cg when l->cpu_usage is false: nothing will read it. */
int cgroup_create(struct cgroup *cg, const struct cgroup_limits *l, struct error *err);
/* Moves a process in (writes its pid to cgroup.procs everywhere). Async-signal-safe. */
int cgroup_enter(const struct cgroup *cg, pid_t pid);
/* Stops the group from growing (cgroup.kill on v2, pids.max 0 otherwise) and
 * SIGKILLs every process in it, once: *ret_n (may be NULL) says how many
 * were signalled. Callers that cannot wait call it again until the group
 * is empty; cgroup_kill() does that itself for up to a second. */
int cgroup_kill_once(const struct cgroup *cg, unsigned *ret_n);
int cgroup_kill(const struct cgroup *cg);
/* Sends sig to every process in the group (SIGTERM on cancel). */
int cgroup_signal(const struct cgroup *cg, int sig);
/* Whether any process is still in the group. */
bool cgroup_is_populated(const struct cgroup *cg);
/* OOM kills so far. */
int cgroup_oom_kills(const struct cgroup *cg, uint64_t *ret);
/* CPU time used by the whole group (-ENOENT without cpu_usage on some v1 hosts). */
int cgroup_cpu_usage(const struct cgroup *cg, usec_t *ret);
/* rmdir everything (the group must be empty); missing directories are fine. */
int cgroup_destroy(const struct cgroup *cg);

cJSON *cgroup_to_cjson(const struct cgroup *cg);
int cgroup_from_cjson(const cJSON *j, struct cgroup *ret);
