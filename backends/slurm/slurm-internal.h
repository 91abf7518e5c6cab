/*
 * slurm-internal: what the parts of the Slurm backend share. The backend
 * submits tasks as Slurm jobs through slurmrestd's REST API (openapi
 * v0.0.38, Slurm 22.05) with the REST client in lib/rest/. Split by
 * concern, as the Docker backend is:
 *
 *   job.c      a Task as the body of POST /slurm/v0.0.38/job/submit (its
 *              job script included): a pure function of the task and the
 *              config, tested without a cluster (test/unit/test-slurm-map.c)
 *   state.c    a job record of GET /slurm/v0.0.38/jobs as our state and,
 *              at its end, as outcome facts (outcome.h): pure as well
 *   jwt.c      the HS256 token (SlurmUser's) slurmrestd's auth/jwt takes,
 *              signed with the cluster's JWT key
 *   client.c   the slurmrestd calls (slurm-client.h)
 *   output.c   the directory of the jobs' default output files (slurm-output.h)
 *   slurm.c    the backend slots and the poller that follows the job list
 */
#pragma once

#include "outcome.h"
#include "task.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* The API version of Slurm 22.05's slurmrestd (-s openapi/v0.0.38). */
#define SLURM_API_PREFIX "/slurm/v0.0.38"

/* Task tags that choose where a job goes; they win over the config's. */
#define SLURM_TAG_PARTITION "slurm.partition"
#define SLURM_TAG_ACCOUNT   "slurm.account"
#define SLURM_TAG_QOS       "slurm.qos"

/* PATH of a job whose task sets none: Slurm's batch environment is
 * exactly what the submit names, so without it the script finds nothing. */
#define SLURM_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* What the submit body takes from the config; NULL: the cluster's default. */
struct slurm_submit_config {
    const char *partition;
    const char *account;
    const char *qos;
    const char *workdir; /* of a task that names none: its user's home */
};

/* The job script: "#!/bin/sh", the CPU-time ulimit when the task has a
 * cputime, then the command (a string as the script's body; an array
 * exec'd, each word single-quoted). Allocated. */
char *slurm_job_script(const struct task *t);

/*
 * The body of POST .../job/submit: {"script": ..., "job": {...}}. The
 * output paths are the files the job writes (a '%' in them is doubled:
 * Slurm expands %j and friends in these names). Returns NULL (err set,
 * -EINVAL) for what Slurm cannot take: a container task.
 */
cJSON *slurm_submit_body(const struct task *t, const char *task_id, const char *stdout_path,
                         const char *stderr_path, const struct slurm_submit_config *cfg,
                         struct error *err);

/* The fields of a job record the backend reads. Strings point into the
 * cJSON they were read from. */
struct slurm_job {
    uint32_t job_id;
    const char *state;   /* job_state: "PENDING", "RUNNING", "COMPLETED", ... */
    const char *reason;  /* state_reason: "Resources", "NonZeroExitCode", "None" */
    const char *comment; /* the task id, for jobs the proxy submitted */
    const char *user_name;
    int exit_code;                /* exit_code: a raw wait status (code << 8 | signal) */
    int64_t start_time, end_time; /* seconds since the epoch; 0 when not yet */
};

/* One element of the "jobs" array. -EBADMSG when job_id or job_state is missing. */
int slurm_job_from_cjson(const cJSON *j, struct slurm_job *ret);

/* Where a job is: QUEUED, INITIALIZING, RUNNING, CANCELING (COMPLETING
 * after a cancel is still running) or, once it ended, COMPLETE (read the
 * outcome with slurm_job_facts); _TASK_STATE_INVALID for a state this
 * code does not know (treat as still there, log it). */
enum task_state slurm_job_phase(const struct slurm_job *j);

/* The description of a pending job ("waiting for Resources"), or NULL
 * when it has none worth telling. Allocated. */
char *slurm_job_pending_description(const struct slurm_job *j);

/*
 * The facts of an ended job, for outcome_classify(). canceled: the proxy
 * asked for the cancel (a CANCELLED job it did not cancel is a
 * SYSTEM_ERROR). t gives the limits for the words. The strings in *f are
 * static or point into j.
 */
void slurm_job_facts(const struct slurm_job *j, const struct task *t, bool canceled,
                     struct outcome_facts *f);

/*
 * A JWT slurmrestd's auth/jwt accepts: HS256 over key (the cluster's
 * jwt_hs256.key, as read), claims {"exp", "iat", "sun"} as `scontrol
 * token` makes them, valid from iat for lifespan seconds. Allocated.
 */
char *slurm_jwt_sign(const uint8_t *key, size_t key_len, const char *user, int64_t iat,
                     int64_t lifespan);
