/*
 * The Slurm backend's slots against a real one-node cluster
 * (test/slurm/setup.sh; skipped, with the reason, when it does not run):
 * a task submitted as another account runs as that account with its env,
 * workdir and output file, and is reported running then COMPLETE; a
 * non-zero exit is EXECUTOR_ERROR with its status; a cancel ends in
 * CANCELED. The slots are driven here as the supervisor would (the
 * daemon's own tests are test_slurm.py).
 */
#include "slurm/slurm.h"
#include "tap.h"
#include "util/util.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

#define MAX_TASKS 8
static struct seen {
    char id[64];
    bool running, ended, ended_before_running;
    struct task_outcome o;
} seen[MAX_TASKS];

static struct seen *slot(const char *id)
{
    for (size_t i = 0; i < MAX_TASKS; i++)
        if (streq(seen[i].id, id) || !seen[i].id[0]) {
            snprintf(seen[i].id, sizeof(seen[i].id), "%s", id);
            return &seen[i];
        }
    abort();
}

static void on_running(void *u, const char *id, usec_t started)
{
    pthread_mutex_lock(&lock);
    slot(id)->running = true;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_ended(void *u, const char *id, const struct task_outcome *o)
{
    pthread_mutex_lock(&lock);
    struct seen *s = slot(id);
    s->ended = true;
    s->o = *o;
    s->o.reason = xstrdup(o->reason);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Waits (120 s at most: the cluster drains a job a second or so) for
 * the task's running (what = 'r') or end ('e'). */
static struct seen *wait_for(const char *id, char what)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 120;
    pthread_mutex_lock(&lock);
    struct seen *s = slot(id);
    int r = 0;
    while (!(what == 'r' ? s->running : s->ended) && r == 0)
        r = pthread_cond_timedwait(&changed, &lock, &until);
    pthread_mutex_unlock(&lock);
    return (what == 'r' ? s->running : s->ended) ? s : NULL;
}

static struct task *parse(const char *json)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct task *t = NULL;
    if (task_parse(TASK_FORMAT_JSON, json, strlen(json), NULL, &t, &err) < 0)
        diag("task %s: %s", json, error_message(&err));
    return t;
}

static int start(struct backend *b, const char *id, const struct task *t, const char *out,
                 char **ret_handle)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct backend_start bs = {
        .id = id, .task = t, .task_dir = "/nonexistent", .stdout_path = out, .stderr_path = out};
    int r = backend_start(b, &bs, ret_handle, &err);
    if (r < 0)
        diag("start %s: %s", id, error_message(&err));
    return r;
}

int main(void)
{
    const char *state = getenv("OCPS_SLURM_STATE") ?: "/tmp/ocps-slurm";
    _cleanup_free_ char *sock = xasprintf("%s/rest/slurmrestd.socket", state);
    _cleanup_free_ char *key = xasprintf("%s/jwt_hs256.key", state);
    if (access(sock, F_OK) < 0 || access(key, R_OK) < 0)
        tap_skip_all("no test cluster: run test/slurm/setup.sh as root");

    struct config cfg;
    config_init(&cfg);
    cfg.slurm_socket = xstrdup(sock);
    cfg.slurm_jwt_key = xstrdup(key);

    /* The jobs' output: a directory the job's account (nobody) may write. */
    char dir[] = "/tmp/ocps-slurm-test-XXXXXX";
    if (!mkdtemp(dir) || chmod(dir, 0777) < 0)
        tap_skip_all("mkdtemp");

    cfg.slurm_output_dir = xasprintf("%s/output", dir);

    struct backend_listener l = {.running = on_running, .ended = on_ended};
    struct backend b = {.ops = &slurm_backend_ops};
    _cleanup_error_ struct error err = ERROR_INIT;
    if (!ok(b.ops->init(&cfg, &l, &b.state, &err) == 0, "init (%s)", error_message(&err)))
        return tap_done();

    /* 1. Runs as its account, with its env and workdir; running, then COMPLETE. */
    _cleanup_task_ struct task *t1 =
        parse("{\"user\": \"nobody\", \"cmd\": \"id -un; echo \\\"$GREETING\\\"; pwd\","
              " \"env\": {\"GREETING\": \"hi there\"}, \"workdir\": \"/tmp\","
              " \"memory\": \"64Mi\", \"walltime\": \"2m\"}");
    _cleanup_free_ char *out1 = xasprintf("%s/t1.out", dir);
    _cleanup_free_ char *h1 = NULL;
    bool submitted = t1 && start(&b, "task-1", t1, out1, &h1) == 0 && h1;
    ok(submitted, "a task is submitted (job %s)", h1 ? h1 : "none");
    struct seen *s = wait_for("task-1", 'e');
    ok(s && s->running, "its running was reported before its end");
    ok(s && s->o.state == TASK_COMPLETE && s->o.exit_code == 0, "it ended COMPLETE (%s)",
       s ? s->o.reason : "no end");
    _cleanup_free_ char *text = NULL;
    size_t len;
    bool read = read_file(out1, 4096, &text, &len) == 0;
    ok(read && streq(text, "nobody\nhi there\n/tmp\n"),
       "it ran as nobody, with its env and workdir (wrote \"%s\")", text ? text : "nothing");

    /* 2. A non-zero exit. */
    _cleanup_task_ struct task *t2 = parse("{\"user\": \"nobody\", \"cmd\": [\"sh\", \"-c\", "
                                           "\"exit 3\"]}");
    _cleanup_free_ char *out2 = xasprintf("%s/t2.out", dir);
    _cleanup_free_ char *h2 = NULL;
    ok(t2 && start(&b, "task-2", t2, out2, &h2) == 0, "a failing task is submitted");
    s = wait_for("task-2", 'e');
    ok(s && s->o.state == TASK_EXECUTOR_ERROR && s->o.exit_code == 3 &&
           streq(s->o.reason, "exited with status 3"),
       "it ended EXECUTOR_ERROR, status 3 (%s)", s ? s->o.reason : "no end");

    /* 3. Cancel a running job. */
    _cleanup_task_ struct task *t3 = parse("{\"user\": \"nobody\", \"cmd\": [\"sleep\", \"300\"]}");
    _cleanup_free_ char *out3 = xasprintf("%s/t3.out", dir);
    _cleanup_free_ char *h3 = NULL;
    ok(t3 && start(&b, "task-3", t3, out3, &h3) == 0, "a long task is submitted");
    s = wait_for("task-3", 'r');
    ok(s, "it runs");
    error_clear(&err);
    ok(backend_cancel(&b, "task-3", h3, &err) == 0, "cancel (%s)", error_message(&err));
    s = wait_for("task-3", 'e');
    ok(s && s->o.state == TASK_CANCELED && streq(s->o.reason, "cancelled by request"),
       "it ended CANCELED (%s)", s ? s->o.reason : "no end");
    error_clear(&err);
    ok(backend_cancel(&b, "task-3", h3, &err) == -ENOENT, "a second cancel is -ENOENT");

    /* 4. cputime: the script's ulimit, for an array (exec'd) and a string
     * (a child of the script's shell). */
    const char *cpu_tasks[] = {
        "{\"user\": \"nobody\", \"cputime\": \"1s\", \"cmd\": [\"sh\", \"-c\", \"while :; do :; "
        "done\"]}",
        "{\"user\": \"nobody\", \"cputime\": \"1s\", \"cmd\": \"sh -c 'while :; do :; done'\"}",
    };
    for (size_t i = 0; i < ELEMENTSOF(cpu_tasks); i++) {
        _cleanup_task_ struct task *t = parse(cpu_tasks[i]);
        _cleanup_free_ char *id = xasprintf("task-cpu-%zu", i);
        _cleanup_free_ char *out = xasprintf("%s/%s.out", dir, id);
        _cleanup_free_ char *h = NULL;
        ok(t && start(&b, id, t, out, &h) == 0, "%s is submitted", id);
        s = wait_for(id, 'e');
        ok(s && s->o.state == TASK_EXECUTOR_ERROR &&
               streq(s->o.reason, "killed: cputime limit 1 s exceeded"),
           "%s: the cputime reason (%s)", id, s ? s->o.reason : "no end");
    }

    /* 5. memory: Slurm's cgroup kills it. */
    _cleanup_task_ struct task *t5 =
        parse("{\"user\": \"nobody\", \"memory\": \"32Mi\", \"cmd\": \"head -c 200m /dev/zero | "
              "tail\"}");
    _cleanup_free_ char *out5 = xasprintf("%s/t5.out", dir);
    _cleanup_free_ char *h5 = NULL;
    ok(t5 && start(&b, "task-5", t5, out5, &h5) == 0, "a task over its memory is submitted");
    s = wait_for("task-5", 'e');
    ok(s && s->o.state == TASK_EXECUTOR_ERROR &&
           streq(s->o.reason, "killed: memory limit 32 MiB exceeded (OOM)"),
       "it ended with the memory reason (%s)", s ? s->o.reason : "no end");

    b.ops->free(b.state);
    for (size_t i = 0; i < MAX_TASKS; i++)
        task_outcome_done(&seen[i].o);
    config_done(&cfg);
    rm_rf(dir);
    return tap_done();
}
