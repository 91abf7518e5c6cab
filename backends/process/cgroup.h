/*
 * cgroup: one control group per task, on cgroup v2 when the host has it
 * and on the v1 controllers otherwise (hybrid hosts keep their
 * controllers on v1).
 *
 * A struct cgroup names the directories of one task's group: on v2 a
 * single directory, on v1 one per controller (memory, cpu, cpuacct,
 * pids, freezer). The daemon creates it with the limits; the task's
 * first process joins it before dropping privileges; the shim kills
 * what is left in it and removes it. It travels between them as JSON.
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
    CG_FREEZER,
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

/* mkdir every directory and write the limits. */
int cgroup_create(const struct cgroup *cg, const struct cgroup_limits *l, struct error *err);
/* Moves a process in (writes its pid to cgroup.procs everywhere). Async-signal-safe. */
int cgroup_enter(const struct cgroup *cg, pid_t pid);
/* SIGKILLs every process in the group, freezing it first on v1 so no fork escapes. */
int cgroup_kill(const struct cgroup *cg);
/* Sends sig to every process in the group (SIGTERM on cancel). */
int cgroup_signal(const struct cgroup *cg, int sig);
/* Whether any process is still in the group. */
bool cgroup_is_populated(const struct cgroup *cg);
/* OOM kills so far. */
int cgroup_oom_kills(const struct cgroup *cg, uint64_t *ret);
/* CPU time used by the whole group. */
int cgroup_cpu_usage(const struct cgroup *cg, usec_t *ret);
/* rmdir everything (the group must be empty); missing directories are fine. */
int cgroup_destroy(const struct cgroup *cg);

cJSON *cgroup_to_cjson(const struct cgroup *cg);
int cgroup_from_cjson(const cJSON *j, struct cgroup *ret);
