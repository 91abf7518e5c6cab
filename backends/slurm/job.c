/*
 * job: a Task as the body of slurmrestd's POST /slurm/v0.0.38/job/submit.
 * A pure function of the task, its id, its output paths and the config:
 * no cluster, no backend state, so every mapping is unit-tested
 * (test/unit/test-slurm-map.c).
 *
 * Slurm enforces memory (memory_per_node, MiB, through its cgroups), cores
 * (cpus_per_task) and walltime (time_limit, whole minutes: rounded up, so
 * a limit of 90 s allows up to 2 min). It has no per-job CPU-time limit:
 * the script sets RLIMIT_CPU itself, soft at the limit and hard one second
 * later, as the Docker backend does, so the command gets SIGXCPU first.
 * RLIMIT_CPU is per process: a command string that forks counts each
 * process on its own.
 */
#include "slurm-internal.h"

#include <inttypes.h>
#include <stdio.h>

/* s in single quotes, each ' as '\'': nothing in it is special to sh. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

char *slurm_job_script(const struct task *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort(); /* out of memory, as xmalloc */

    fputs("#!/bin/sh\n", f);
    /* Soft first: below an unlimited soft limit a hard one is EINVAL. */
    if (t->cputime)
        fprintf(f, "ulimit -S -t %" PRIu64 " && ulimit -H -t %" PRIu64 " || exit 125\n", t->cputime,
                t->cputime + 1);
    if (t->cmd.shell) {
        /* The string is the script, as a user of sbatch writes one. */
        for (char **arg = t->cmd.argv; arg && *arg; arg++)
            fprintf(f, "%s\n", *arg);
    } else if (t->cmd.argv) {
        fputs("exec", f);
        for (char **arg = t->cmd.argv; *arg; arg++) {
            fputc(' ', f);
            put_quoted(f, *arg);
        }
        fputc('\n', f);
    }
    if (fclose(f) != 0)
        abort();
    return buf;
}

/* A path for Slurm's filename patterns: '%' doubled ("%%" is a '%'). */
static char *pattern_escape(const char *path)
{
    size_t n = 0;
    for (const char *p = path; *p; p++)
        n += *p == '%' ? 2 : 1;
    char *out = xmalloc(n + 1), *o = out;
    for (const char *p = path; *p; p++) {
        *o++ = *p;
        if (*p == '%')
            *o++ = '%';
    }
    *o = '\0';
    return out;
}

static const char *tag(const struct task *t, const char *key)
{
    for (size_t i = 0; i < t->n_tags; i++)
        if (streq(t->tags[i].key, key))
            return t->tags[i].value;
    return NULL;
}

static void add_placement(cJSON *job, const struct task *t, const struct slurm_submit_config *cfg)
{
    const struct {
        const char *key, *tag, *config;
    } fields[] = {
        {"partition", SLURM_TAG_PARTITION, cfg ? cfg->partition : NULL},
        {"account", SLURM_TAG_ACCOUNT, cfg ? cfg->account : NULL},
        {"qos", SLURM_TAG_QOS, cfg ? cfg->qos : NULL},
    };
    for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
        const char *v = tag(t, fields[i].tag);
        if (isempty(v))
            v = fields[i].config;
        if (!isempty(v))
            cJSON_AddStringToObject(job, fields[i].key, v);
    }
}

static void add_env(cJSON *job, const struct task *t, const char *task_id)
{
    cJSON *env = cJSON_AddObjectToObject(job, "environment");
    bool path = false;
    for (size_t i = 0; i < t->n_env; i++) {
        cJSON_AddStringToObject(env, t->env[i].key, t->env[i].value);
        path = path || streq(t->env[i].key, "PATH");
    }
    if (!path)
        cJSON_AddStringToObject(env, "PATH", SLURM_DEFAULT_PATH);
    cJSON_AddStringToObject(env, "OCPS_TASK_ID", task_id);
}

cJSON *slurm_submit_body(const struct task *t, const char *task_id, const char *stdout_path,
                         const char *stderr_path, const struct slurm_submit_config *cfg,
                         struct error *err)
{
    if (t->container) {
        error_set(err, -EINVAL, "the slurm backend runs commands, not containers");
        return NULL;
    }
    if (!t->cmd.argv) {
        error_set(err, -EINVAL, "the task has no command");
        return NULL;
    }

    cJSON *body = cJSON_CreateObject();
    _cleanup_free_ char *script = slurm_job_script(t);
    cJSON_AddStringToObject(body, "script", script);

    cJSON *job = cJSON_AddObjectToObject(body, "job");
    cJSON_AddStringToObject(job, "name", !isempty(t->name) ? t->name : "ocps");
    /* How a job is found again after a restart between submit and record. */
    cJSON_AddStringToObject(job, "comment", task_id);
    const char *workdir = t->workdir ? t->workdir : cfg ? cfg->workdir : NULL;
    if (workdir)
        cJSON_AddStringToObject(job, "current_working_directory", workdir);
    add_env(job, t, task_id);
    if (stdout_path) {
        _cleanup_free_ char *p = pattern_escape(stdout_path);
        cJSON_AddStringToObject(job, "standard_output", p);
    }
    if (stderr_path) {
        _cleanup_free_ char *p = pattern_escape(stderr_path);
        cJSON_AddStringToObject(job, "standard_error", p);
    }
    cJSON_AddStringToObject(job, "standard_input", "/dev/null");
    if (t->cores > 0) {
        uint64_t cpus = (uint64_t) t->cores; /* whole CPUs, rounded up */
        cJSON_AddNumberToObject(job, "cpus_per_task", (double) (cpus + (cpus < t->cores)));
    }
    if (t->memory)
        cJSON_AddNumberToObject(job, "memory_per_node",
                                (double) ((t->memory + (1ULL << 20) - 1) >> 20));
    if (t->walltime)
        cJSON_AddNumberToObject(job, "time_limit", (double) ((t->walltime + 59) / 60));
    add_placement(job, t, cfg);
    return body;
}
