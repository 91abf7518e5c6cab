/*
 * Unit tests: the Slurm backend's pure mappings, without a cluster: a Task
 * as slurmrestd's job submit body and its job script
 * (backends/slurm/job.c), and job records of the job list as task states
 * and outcomes (backends/slurm/state.c, through outcome_classify()). The
 * job records are shaped as Slurm 22.05's slurmrestd (v0.0.38) answered
 * on the test cluster (test/slurm/setup.sh).
 */
#include "slurm/slurm-internal.h"
#include "tap.h"

#include <signal.h>

#define ID "0f8b7d52-7bb4-4c36-8a0e-5c3a3f2e9d11"

static struct task *parse(const char *json)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct task *t = NULL;
    if (task_parse(TASK_FORMAT_JSON, json, strlen(json), NULL, &t, &err) < 0)
        diag("task %s: %s", json, error_message(&err));
    return t;
}

/* key's JSON in obj equals want exactly (NULL: absent). */
static void check_key(const char *what, const cJSON *obj, const char *key, const char *want)
{
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(obj, key);
    cJSON *w = want ? cJSON_Parse(want) : NULL;
    _cleanup_free_ char *text = got ? cJSON_PrintUnformatted(got) : NULL;
    if (want && !w)
        diag("bad expectation: %s", want);
    ok(want ? w && got && cJSON_Compare(got, w, true) : !got, "%s: %s %s (got %s)", what, key,
       want ? want : "absent", text ? text : "nothing");
    cJSON_Delete(w);
}

static void test_full(void)
{
    _cleanup_task_ struct task *t = parse(
        "{\"user\": \"alice\", \"name\": \"align\", \"cmd\": \"echo $GREETING\","
        " \"cores\": 1.5, \"memory\": \"100000000B\", \"cputime\": \"30s\", \"walltime\": \"90s\","
        " \"workdir\": \"/srv/work\", \"env\": {\"GREETING\": \"hi there\", \"PATH\": "
        "\"/opt/bin\"},"
        " \"tags\": {\"slurm.partition\": \"gpu\", \"slurm.qos\": \"\"}}");
    struct slurm_submit_config cfg = {.partition = "debug", .account = "lab", .qos = "normal"};
    _cleanup_error_ struct error err = ERROR_INIT;
    cJSON *body = t ? slurm_submit_body(t, ID, "/data/out/%j.out", "/data/err", &cfg, &err) : NULL;
    if (!ok(body, "a full task maps"))
        return;
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(body, "job");
    check_key("full", body, "script",
              "\"#!/bin/sh\\nulimit -S -t 30 && ulimit -H -t 31 || exit 125\\n"
              "echo $GREETING\\n\"");
    const struct {
        const char *key, *want;
    } rows[] = {
        {"name", "\"align\""},
        {"comment", "\"" ID "\""},
        {"current_working_directory", "\"/srv/work\""},
        {"environment",
         "{\"GREETING\": \"hi there\", \"PATH\": \"/opt/bin\", \"OCPS_TASK_ID\": \"" ID "\"}"},
        {"standard_output", "\"/data/out/%%j.out\""}, /* not Slurm's job id pattern */
        {"standard_error", "\"/data/err\""},
        {"standard_input", "\"/dev/null\""},
        {"cpus_per_task", "2"},    /* 1.5 cores, rounded up */
        {"memory_per_node", "96"}, /* 10^8 bytes = 95.4 MiB, rounded up */
        {"time_limit", "2"},       /* 90 s, rounded up to minutes */
        {"partition", "\"gpu\""},  /* the tag wins */
        {"account", "\"lab\""},    /* the config's */
        {"qos", "\"normal\""},     /* an empty tag leaves the config's */
        {"user_id", NULL},         /* the user is X-SLURM-USER-NAME's */
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        check_key("full", job, rows[i].key, rows[i].want);
    cJSON_Delete(body);
}

static void test_minimal(void)
{
    _cleanup_task_ struct task *t = parse("{\"user\": \"bob\", \"cmd\": [\"true\"]}");
    _cleanup_error_ struct error err = ERROR_INIT;
    cJSON *body = t ? slurm_submit_body(t, ID, NULL, NULL, NULL, &err) : NULL;
    if (!ok(body, "a minimal task maps"))
        return;
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(body, "job");
    check_key("minimal", body, "script", "\"#!/bin/sh\\nexec 'true'\\n\"");
    check_key("minimal", job, "name", "\"ocps\"");
    check_key("minimal", job, "environment",
              "{\"PATH\": \"" SLURM_DEFAULT_PATH "\", \"OCPS_TASK_ID\": \"" ID "\"}");
    const char *absent[] = {"current_working_directory",
                            "standard_output",
                            "standard_error",
                            "cpus_per_task",
                            "memory_per_node",
                            "time_limit",
                            "partition",
                            "account",
                            "qos"};
    for (size_t i = 0; i < ELEMENTSOF(absent); i++)
        check_key("minimal", job, absent[i], NULL);
    cJSON_Delete(body);

    /* Without a workdir the job starts in its user's home (the backend's lookup). */
    struct slurm_submit_config sc = {.workdir = "/home/bob"};
    body = t ? slurm_submit_body(t, ID, NULL, NULL, &sc, &err) : NULL;
    check_key("home", cJSON_GetObjectItemCaseSensitive(body, "job"), "current_working_directory",
              "\"/home/bob\"");
    cJSON_Delete(body);
}

/* An array is one exec, each word quoted so that nothing in it is sh syntax. */
static void test_quoting(void)
{
    _cleanup_task_ struct task *t =
        parse("{\"user\": \"bob\", \"cmd\": [\"printf\", \"%s\\n\", \"it's\", \"$HOME `id` ;|&\","
              " \"\", \"a\\nb\", \"'\"]}");
    _cleanup_free_ char *script = t ? slurm_job_script(t) : NULL;
    ok(script && streq(script, "#!/bin/sh\nexec 'printf' '%s\n' 'it'\\''s' '$HOME `id` ;|&' '' "
                               "'a\nb' ''\\'''\n"),
       "an array is exec'd with each word single-quoted (got %s)", script ? script : "nothing");

    _cleanup_task_ struct task *c =
        parse("{\"user\": \"bob\", \"container\": {\"image\": \"busybox\"}}");
    _cleanup_error_ struct error err = ERROR_INIT;
    cJSON *body = c ? slurm_submit_body(c, ID, NULL, NULL, NULL, &err) : NULL;
    ok(!body && err.code == -EINVAL, "a container task is refused (%s)", error_message(&err));
    cJSON_Delete(body);
}

/* A job record as the job list carries it (only the fields read). */
static cJSON *record(const char *state, const char *reason, int exit_code)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "job_id", 42);
    cJSON_AddStringToObject(j, "job_state", state);
    cJSON_AddStringToObject(j, "state_reason", reason);
    cJSON_AddStringToObject(j, "comment", ID);
    cJSON_AddStringToObject(j, "user_name", "alice");
    cJSON_AddNumberToObject(j, "exit_code", exit_code);
    cJSON_AddNumberToObject(j, "start_time", 1796346868);
    cJSON_AddNumberToObject(j, "end_time", 1796346870);
    return j;
}

static void test_phases(void)
{
    const struct {
        const char *state;
        enum task_state want;
    } rows[] = {
        {"PENDING", TASK_QUEUED},     {"CONFIGURING", TASK_INITIALIZING},
        {"RUNNING", TASK_RUNNING},    {"COMPLETING", TASK_RUNNING},
        {"SUSPENDED", TASK_QUEUED},   {"COMPLETED", TASK_COMPLETE},
        {"FAILED", TASK_COMPLETE},    {"OUT_OF_MEMORY", TASK_COMPLETE},
        {"TIMEOUT", TASK_COMPLETE},   {"CANCELLED", TASK_COMPLETE},
        {"NODE_FAIL", TASK_COMPLETE}, {"BOOT_FAIL", TASK_COMPLETE},
        {"PREEMPTED", TASK_COMPLETE}, {"SOMETHING_NEW", _TASK_STATE_INVALID},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        cJSON *j = record(rows[i].state, "None", 0);
        struct slurm_job job;
        int r = slurm_job_from_cjson(j, &job);
        ok(r == 0 && job.job_id == 42 && streq(job.comment, ID) &&
               slurm_job_phase(&job) == rows[i].want,
           "%s is %s", rows[i].state,
           rows[i].want >= 0 ? task_state_to_string(rows[i].want) : "unknown");
        cJSON_Delete(j);
    }

    cJSON *j = record("PENDING", "Resources", 0);
    struct slurm_job job;
    _cleanup_free_ char *d =
        slurm_job_from_cjson(j, &job) == 0 ? slurm_job_pending_description(&job) : NULL;
    ok(d && streq(d, "queued in Slurm: Resources"), "a pending job tells its reason (%s)",
       d ? d : "nothing");
    cJSON_Delete(j);

    j = cJSON_Parse("{\"job_state\": \"RUNNING\"}");
    ok(slurm_job_from_cjson(j, &job) == -EBADMSG, "a record without job_id is refused");
    cJSON_Delete(j);
}

static void test_outcomes(void)
{
    _cleanup_task_ struct task *t =
        parse("{\"user\": \"alice\", \"cmd\": \"x\", \"memory\": \"64Mi\", \"cputime\": \"30s\","
              " \"walltime\": \"1m\"}");
    const struct {
        const char *state, *reason;
        int exit_code; /* the raw wait status */
        bool canceled;
        enum task_state want;
        int want_exit, want_signal;
        const char *want_reason;
    } rows[] = {
        {"COMPLETED", "None", 0, false, TASK_COMPLETE, 0, 0, "exited with status 0"},
        /* seen: `exit 3` is 768, FAILED/NonZeroExitCode */
        {"FAILED", "NonZeroExitCode", 768, false, TASK_EXECUTOR_ERROR, 3, 0,
         "exited with status 3"},
        {"FAILED", "JobLaunchFailure", 9, false, TASK_EXECUTOR_ERROR, -1, 9,
         "killed by signal 9 (KILL)"},
        {"OUT_OF_MEMORY", "OutOfMemory", 0, false, TASK_EXECUTOR_ERROR, -1, SIGKILL,
         "killed: memory limit 64 MiB exceeded (OOM)"},
        {"FAILED", "JobLaunchFailure", 0, false, TASK_EXECUTOR_ERROR, -1, 0,
         "Slurm could not launch the job (JobLaunchFailure)"},
        /* seen: 253, Slurm's SIG_OOM */
        {"OUT_OF_MEMORY", "OutOfMemory", 253, false, TASK_EXECUTOR_ERROR, -1, SIGKILL,
         "killed: memory limit 64 MiB exceeded (OOM)"},
        {"TIMEOUT", "TimeLimit", 15, false, TASK_EXECUTOR_ERROR, -1, 15,
         "killed: walltime limit 60 s exceeded"},
        /* seen, the array case: the command itself got SIGXCPU (JobLaunchFailure) */
        {"FAILED", "JobLaunchFailure", SIGXCPU, false, TASK_EXECUTOR_ERROR, -1, SIGXCPU,
         "killed: cputime limit 30 s exceeded"},
        /* seen, the string case: its shell reports the child's SIGXCPU as 152 */
        {"FAILED", "NonZeroExitCode", (128 + SIGXCPU) << 8, false, TASK_EXECUTOR_ERROR, -1, SIGXCPU,
         "killed: cputime limit 30 s exceeded"},
        /* seen: a cancel (DELETE .../job/ID) leaves exit_code 15 */
        {"CANCELLED", "None", 15, true, TASK_CANCELED, -1, 15, "cancelled by request"},
        /* seen: SIGTERM first (?signal=TERM) kills an exec'd command, the job FAILED */
        {"FAILED", "NonZeroExitCode", 15, true, TASK_CANCELED, -1, 15, "cancelled by request"},
        {"TIMEOUT", "TimeLimit", 15, true, TASK_CANCELED, -1, 15, "cancelled by request"},
        /* done before the cancel took: its own end stands */
        {"COMPLETED", "None", 0, true, TASK_COMPLETE, 0, 0, "exited with status 0"},
        {"CANCELLED", "None", 15, false, TASK_SYSTEM_ERROR, -1, 15,
         "stopped from outside the proxy by signal 15 (TERM): the job was cancelled in Slurm "
         "(scancel or an administrator); exit status -1"},
        {"NODE_FAIL", "None", 0, false, TASK_SYSTEM_ERROR, 0, 0,
         "Slurm: the job's node failed (NODE_FAIL)"},
        {"BOOT_FAIL", "None", 0, false, TASK_SYSTEM_ERROR, 0, 0,
         "Slurm: the job's node failed to boot (BOOT_FAIL)"},
        {"PREEMPTED", "None", 0, false, TASK_SYSTEM_ERROR, 0, 0,
         "Slurm: the job was preempted (PREEMPTED)"},
    };
    for (size_t i = 0; t && i < ELEMENTSOF(rows); i++) {
        cJSON *j = record(rows[i].state, rows[i].reason, rows[i].exit_code);
        struct slurm_job job;
        struct outcome_facts f;
        struct task_outcome o = {0};
        if (slurm_job_from_cjson(j, &job) == 0) {
            slurm_job_facts(&job, t, rows[i].canceled, &f);
            outcome_classify(&f, &o);
        }
        ok(o.reason && o.state == rows[i].want && o.exit_code == rows[i].want_exit &&
               o.signal == rows[i].want_signal && streq(o.reason, rows[i].want_reason) &&
               o.started == 1796346868 * USEC_PER_SEC && o.finished == 1796346870 * USEC_PER_SEC,
           "%s/%s %d%s: %s, exit %d, signal %d, \"%s\"", rows[i].state, rows[i].reason,
           rows[i].exit_code, rows[i].canceled ? " (cancelled by the proxy)" : "",
           task_state_to_string(o.state), o.exit_code, o.signal, o.reason ? o.reason : "");
        task_outcome_done(&o);
        cJSON_Delete(j);
    }
}

int main(void)
{
    test_full();
    test_minimal();
    test_quoting();
    test_phases();
    test_outcomes();
    return tap_done();
}
