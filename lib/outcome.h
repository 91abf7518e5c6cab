/*
 * outcome: how a task ended, in the words every backend uses.
 *
 * The reasons are part of the API (clients match on them), so they are
 * made in one place: a backend gathers the facts it observed (struct
 * outcome_facts) and outcome_classify() turns them into a state and a
 * reason. The precedence, first match wins:
 *
 *   1. start_error      it never ran (exec, workdir, image pull, create,
 *                       the proxy's own start): EXECUTOR_ERROR, or
 *                       SYSTEM_ERROR with start_error_system
 *   2. canceled         CANCELED, "cancelled by request"
 *   3. walltime_hit     "killed: walltime limit N s exceeded"
 *   4. cputime          the backend's tree-wide check killed it
 *                       (cputime_hit), SIGXCPU with a cputime limit, or
 *                       SIGKILL once the tree's CPU time reached the limit
 *                       (the rlimit's hard kill) and no OOM kill was seen:
 *                       "killed: cputime limit N s exceeded"
 *   5. output_hit       stdout plus stderr grew past the output cap (the
 *                       backend killed the task, or found it past the cap
 *                       at its end): "killed: output limit 1 GiB exceeded"
 *   6. oom + a kill     "killed: memory limit 64 MiB exceeded (OOM)"
 *   7. system_error     the backend lost the task (dockerd stopped, the
 *                       shim died): SYSTEM_ERROR with the backend's words
 *   8. external_signal  stopped from outside the proxy: SYSTEM_ERROR
 *   9. signal           "killed by signal 9 (KILL)"
 *  10. exit 0           COMPLETE, "exited with status 0"
 *  11. exit N           "exited with status 3", with ": a process was
 *                       killed, memory limit ... exceeded (OOM)" after an
 *                       OOM kill of a process other than the main one
 *
 * The outcome is also a file: <task_dir>/exit.json, where a backend
 * records it (atomically renamed into place, fsync'd when 'sync') before
 * it lets go of the task, so a daemon restarted at any moment finds it.
 * An end is on disk before anyone is told of it: the store fsyncs it with
 * its state (a group commit), and only then release() (backend.h) lets
 * the backend remove its own evidence (docker's container).
 */
#pragma once

#include "task.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>

struct task_outcome {
    enum task_state state; /* COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR or CANCELED */
    int exit_code;         /* -1 when there is none (signal, never started) */
    int signal;            /* the signal that ended it, 0 if none */
    const char *reason;    /* see above */
    usec_t started;        /* 0 if it never ran */
    usec_t finished;
};

/* Frees what outcome_classify() and task_outcome_read() allocated (the reason). */
void task_outcome_done(struct task_outcome *o);

struct outcome_facts {
    /* The task's limits, for the words (0 = none); output in bytes. */
    uint64_t memory, cputime, walltime, output;

    const char *start_error;   /* it never ran: why */
    bool start_error_system;   /* ... and that is the system's fault, not the task's */
    bool canceled;             /* the proxy was asked to cancel it */
    bool walltime_hit;         /* the walltime timer fired and the backend killed it */
    bool cputime_hit;          /* the backend killed the tree over its CPU time */
    bool output_hit;           /* stdout plus stderr grew past the output cap */
    usec_t cpu_used;           /* the tree's CPU time, 0 when unknown */
    bool oom;                  /* the kernel OOM-killed a process of the task */
    const char *system_error;  /* the backend lost the task: its words */
    int external_signal;       /* a signal someone outside the proxy sent it */
    const char *external_hint; /* who may have sent it ("docker stop or kill, ...") */

    /* The main process's end: an exit code (-1 none) or a signal (0 none). */
    int exit_code;
    int signal;
    usec_t started, finished;
};

/* The state and reason for the facts; o->reason is allocated (task_outcome_done). */
void outcome_classify(const struct outcome_facts *f, struct task_outcome *o);

/* exit.json in task_dir. read: -ENOENT when none was written, -EBADMSG
 * when it cannot be read; o->reason is allocated. */
int task_outcome_write(const char *task_dir, const struct task_outcome *o, bool sync);
int task_outcome_read(const char *task_dir, struct task_outcome *o);

/* The same object as JSON (exit.json's shape), for a file that keeps an
 * outcome among other things (a TES task's tes-run.json). from: -EBADMSG
 * when j is not of that shape, *o untouched; o->reason is allocated. */
cJSON *task_outcome_to_cjson(const struct task_outcome *o);
int task_outcome_from_cjson(const cJSON *j, struct task_outcome *o);
