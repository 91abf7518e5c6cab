/*
 * slurm-client: the slurmrestd calls of the Slurm backend (client.c).
 * Thread-safe: any thread may call at any time.
 */
#pragma once

#include "rest/rest.h"

#include <stdint.h>

struct slurm_client;

struct slurm_client_options {
    const char *socket, *url; /* exactly one */
    const char *key_path;     /* the cluster's JWT key: the client signs tokens; or */
    const char *token_path;   /* a file holding a token of token_user, read again on change */
    const char *token_user;   /* NULL: root */
    int abort_fd;             /* >= 0: ends every call once readable */
};

int slurm_client_new(const struct slurm_client_options *o, struct slurm_client **ret,
                     struct error *err);
struct slurm_client *slurm_client_free(struct slurm_client *c);

/* POST /job/submit as user; the new job's id. -EINVAL when Slurm
 * refused the job itself (err says why), -EREMOTEIO when it could not be
 * asked. */
int slurm_client_submit(struct slurm_client *c, const char *user, const cJSON *body,
                        uint32_t *ret_job_id, struct error *err);
/* GET /jobs?update_time=T: 1 and the "jobs" array (the caller's) when any
 * job changed at or after second T; 0 and NULL when none did (304). */
int slurm_client_jobs(struct slurm_client *c, int64_t update_time, cJSON **ret_jobs,
                      struct error *err);
/* DELETE /job/ID: with signal NULL, Slurm's cancel (SIGKILL, also of a
 * pending job); else that signal ("TERM") to the job's batch shell
 * (?signal=TERM). A job that is gone or done already is 0. */
int slurm_client_cancel(struct slurm_client *c, uint32_t job_id, const char *signal,
                        struct error *err);
/* GET /ping: 0 when slurmrestd and slurmctld both answer. */
int slurm_client_ping(struct slurm_client *c, struct error *err);
