/*
 * state: a job record of slurmrestd's job list as the task's state and,
 * once the job ended, as outcome facts for outcome_classify() (the one
 * classifier, outcome.h). Pure: tested without a cluster
 * (test/unit/test-slurm-map.c).
 *
 * The job states of Slurm 22.05 and what they become:
 *   PENDING, REQUEUED*, SUSPENDED, RESV_DEL_HOLD     QUEUED (the reason told)
 *   CONFIGURING                   INITIALIZING (nodes booting)
 *   RUNNING, COMPLETING, STAGE_OUT, SIGNALING, RESIZING   RUNNING
 *   COMPLETED                     COMPLETE, exit 0
 *   FAILED                        EXECUTOR_ERROR with the exit code or signal;
 *                                 without either, Slurm could not launch it
 *   OUT_OF_MEMORY                 the memory reason
 *   TIMEOUT, DEADLINE             the walltime reason
 *   CANCELLED                     CANCELED when the proxy asked, else
 *                                 SYSTEM_ERROR (stopped from outside)
 *   NODE_FAIL, BOOT_FAIL, PREEMPTED, REVOKED, SPECIAL_EXIT   SYSTEM_ERROR
 * exit_code is a raw wait status: code (v >> 8) & 0xff, signal v & 0x7f;
 * an OOM kill leaves 253 there (Slurm's SIG_OOM, not a signal).
 */
#include "slurm-internal.h"

#include <signal.h>

static const char *str(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool num(const cJSON *j, const char *key, double *ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v))
        return false;
    *ret = v->valuedouble;
    return true;
}

int slurm_job_from_cjson(const cJSON *j, struct slurm_job *ret)
{
    double id, v;
    struct slurm_job job = {0};

    if (!num(j, "job_id", &id) || id < 1 || id > UINT32_MAX || !(job.state = str(j, "job_state")))
        return -EBADMSG;
    job.job_id = (uint32_t) id;
    job.reason = str(j, "state_reason");
    job.comment = str(j, "comment");
    job.user_name = str(j, "user_name");
    if (num(j, "exit_code", &v))
        job.exit_code = (int) v;
    if (num(j, "start_time", &v))
        job.start_time = (int64_t) v;
    if (num(j, "end_time", &v))
        job.end_time = (int64_t) v;
    *ret = job;
    return 0;
}

enum task_state slurm_job_phase(const struct slurm_job *j)
{
    static const struct {
        const char *name;
        enum task_state state;
    } table[] = {
        {"PENDING", TASK_QUEUED},           {"REQUEUED", TASK_QUEUED},
        {"REQUEUE_FED", TASK_QUEUED},       {"REQUEUE_HOLD", TASK_QUEUED},
        {"RESV_DEL_HOLD", TASK_QUEUED},     {"SUSPENDED", TASK_QUEUED},
        {"CONFIGURING", TASK_INITIALIZING}, {"RUNNING", TASK_RUNNING},
        {"COMPLETING", TASK_RUNNING},       {"STAGE_OUT", TASK_RUNNING},
        {"SIGNALING", TASK_RUNNING},        {"RESIZING", TASK_RUNNING},
        {"COMPLETED", TASK_COMPLETE},       {"FAILED", TASK_COMPLETE},
        {"OUT_OF_MEMORY", TASK_COMPLETE},   {"TIMEOUT", TASK_COMPLETE},
        {"DEADLINE", TASK_COMPLETE},        {"CANCELLED", TASK_COMPLETE},
        {"NODE_FAIL", TASK_COMPLETE},       {"BOOT_FAIL", TASK_COMPLETE},
        {"PREEMPTED", TASK_COMPLETE},       {"REVOKED", TASK_COMPLETE},
        {"SPECIAL_EXIT", TASK_COMPLETE},
    };
    for (size_t i = 0; i < ELEMENTSOF(table); i++)
        if (streq(j->state, table[i].name))
            return table[i].state;
    return _TASK_STATE_INVALID;
}

char *slurm_job_pending_description(const struct slurm_job *j)
{
    if (slurm_job_phase(j) != TASK_QUEUED)
        return NULL;
    if (isempty(j->reason) || streq(j->reason, "None"))
        return xasprintf("queued in Slurm (%s)", j->state);
    return xasprintf("queued in Slurm: %s", j->reason);
}

void slurm_job_facts(const struct slurm_job *j, const struct task *t, bool canceled,
                     struct outcome_facts *f)
{
    int code = (j->exit_code >> 8) & 0xff, sig = j->exit_code & 0x7f;

    *f = (struct outcome_facts){
        .memory = t->memory,
        .cputime = t->cputime,
        .walltime = t->walltime,
        .exit_code = sig ? -1 : code,
        .signal = sig,
        .started = j->start_time > 0 ? (usec_t) j->start_time * USEC_PER_SEC : 0,
        .finished = j->end_time > 0 ? (usec_t) j->end_time * USEC_PER_SEC : 0,
    };
    /* A command string runs under the script's shell, which reports a
     * child's SIGXCPU as its exit status 128 + SIGXCPU. */
    if (t->cputime && !sig && code == 128 + SIGXCPU) {
        f->exit_code = -1;
        f->signal = SIGXCPU;
    }

    /* Whatever a cancel made of it (a job whose batch shell died of the
     * SIGTERM ends FAILED, not CANCELLED), the proxy asked. */
    if (canceled && !streq(j->state, "COMPLETED"))
        f->canceled = true;
    if (streq(j->state, "COMPLETED") || streq(j->state, "FAILED")) {
        if (streq(j->state, "FAILED") && !sig && code == 0)
            f->start_error = streq_ptr(j->reason, "JobLaunchFailure")
                                 ? "Slurm could not launch the job (JobLaunchFailure)"
                                 : "Slurm reports the job FAILED without an exit status";
    } else if (streq(j->state, "OUT_OF_MEMORY")) {
        /* Slurm's cgroup killed it; its status is Slurm's SIG_OOM (253),
         * no signal of the kernel's. */
        f->oom = true;
        f->exit_code = -1;
        f->signal = SIGKILL;
    } else if (streq(j->state, "TIMEOUT") || streq(j->state, "DEADLINE")) {
        f->walltime_hit = true;
    } else if (streq(j->state, "CANCELLED")) {
        if (canceled)
            f->canceled = true;
        else {
            f->external_signal = sig ? sig : SIGTERM;
            f->external_hint = "the job was cancelled in Slurm (scancel or an administrator)";
        }
    } else if (streq(j->state, "NODE_FAIL")) {
        f->system_error = "Slurm: the job's node failed (NODE_FAIL)";
    } else if (streq(j->state, "BOOT_FAIL")) {
        f->system_error = "Slurm: the job's node failed to boot (BOOT_FAIL)";
    } else if (streq(j->state, "PREEMPTED")) {
        f->system_error = "Slurm: the job was preempted (PREEMPTED)";
    } else {
        f->system_error = "Slurm: the job ended in a state the proxy does not know";
    }
}
