/*
 * tes-run: a GA4GH TES task (t->task->tes, lib/tes.h) in the Docker
 * backend, run whole by its runner thread (runner.c hands it over):
 *
 *   inputs     the host mapping <task_dir>/tes/root made, owned by the
 *              task's account, and each input put there (tes-stage.h);
 *              a failure is SYSTEM_ERROR with the words in system_logs
 *   executors  in order, each its own container ocps-<id>-<n>, made as
 *              any task's (create.c: limits, account, confinement) from
 *              the executor's image, command, env and workdir, with the
 *              mapping's binds; stdin from an in-container path through
 *              the image's /bin/sh ("exec \"$@\" < \"$0\""), the only way
 *              without attaching to the container; stdout and stderr go
 *              to the task's output files as for every task (the logs
 *              endpoint serves them whole) and, when the executor names
 *              paths for them, are copied there in the mapping once it
 *              ends, before the next one starts. The task stops at the
 *              first executor that fails unless it has ignore_error (a
 *              limit, a cancel or the walltime stop it all the same)
 *   outputs    after the last executor and after a failure too (as
 *              Funnel does), not after a cancel; a failed copy makes a
 *              task that had completed a SYSTEM_ERROR
 *   the log    <task_dir>/tes-log.json rewritten when something is new
 *              (an executor ended, outputs copied, a system log), then
 *              the one end reported as for every task
 *
 * A task with one executor and nothing to share (no inputs, outputs,
 * volumes or stdio paths) gets no mapping and no binds: its container
 * is then made exactly as a JobProxy task's.
 *
 * Executors' containers go as soon as their log is written; the last
 * one stays until the store has the end (release), as any task's.
 *
 * A daemon restart does not lose the task; the containers keep running
 * and the next daemon resumes it from <task_dir>/tes-run.json, which
 * says how far the runner got: written before executor n's container is
 * made ({"executor": n, "ended": false, the output files' sizes then})
 * and once its end is logged (the same with "ended": true and its
 * outcome). Resumed (t->tes_resume):
 *
 *   no tes-run.json   it was staging its inputs: recovery says it never
 *                     began (docker_tes_began), the supervisor starts it
 *                     again and the inputs are staged again into an
 *                     empty mapping (idempotent: the same inputs land in
 *                     the same places; an http input is fetched again)
 *   n not ended       executor n's container tells: running, it is
 *                     followed (never started again); ended, its exit is
 *                     read from dockerd; never made (or made and never
 *                     started), it is made now. Its output is read again
 *                     from dockerd's copy into the output files, cut back
 *                     to where it began, and its log written
 *   n ended           its recorded outcome; its container removed
 *
 * then the later executors and the outputs run as usual (outputs that a
 * restart interrupted are copied again, whole). tes-log.json keeps the
 * executors' logs before n (one written after tes-run.json's "ended":
 * false is dropped and made again), its start time and system logs.
 */
#include "docker-internal.h"
#include "layout.h"
#include "tes-stage.h"
#include "util/json.h"
#include "util/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

struct tes_run {
    struct dtask *t;
    const struct tes_task *tt;
    struct tes_task_log log;
    struct user_ids ids;
    bool as_user;
    char *root;
    int root_fd;
    int abort_fds[3];
    struct tes_stage stage;
    struct task_mount *binds;
    size_t n_binds;
};

static void run_done(struct tes_run *r)
{
    r->t->tes_root = NULL;
    tes_task_log_done(&r->log);
    free(r->root);
    closep(&r->root_fd);
    for (size_t i = 0; i < r->n_binds; i++) {
        free(r->binds[i].host);
        free(r->binds[i].container);
    }
    free(r->binds);
}

/* The log file, rewritten whole (tes-log.c's format). */
static void log_save(struct tes_run *r)
{
    int e = tes_task_log_write(r->t->task_dir, &r->log, false);
    if (e < 0)
        log_warn("task %s: cannot write its TES log: %s", r->t->id, strerror(-e));
}

/* ---- how far it got: tes-run.json ---- */

struct progress {
    size_t executor;             /* the executor last begun */
    bool ended;                  /* ... and its log written */
    off_t out, err;              /* the output files' sizes then */
    usec_t started;              /* the task's start, 0: not yet */
    usec_t executor_started;     /* executor's */
    struct task_outcome outcome; /* when ended */
};

static void progress_save(const struct dtask *t, const struct progress *p)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "executor", (double) p->executor);
    cJSON_AddBoolToObject(j, "ended", p->ended);
    cJSON_AddNumberToObject(j, "stdout", (double) p->out);
    cJSON_AddNumberToObject(j, "stderr", (double) p->err);
    cJSON_AddNumberToObject(j, "started", (double) p->started);
    cJSON_AddNumberToObject(j, "executor_started", (double) p->executor_started);
    if (p->ended)
        cJSON_AddItemToObject(j, "outcome", task_outcome_to_cjson(&p->outcome));
    _cleanup_free_ char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    _cleanup_free_ char *path = layout_in_task_dir(t->task_dir, LAYOUT_TES_RUN);
    /* Not fsync'd, as tes-log.json is not: it says what a daemon that was
     * killed did, not what survives the host's crash. */
    int e = write_file_replace(path, text, strlen(text), 0600);
    if (e < 0)
        log_warn("task %s: cannot write %s: %s", t->id, LAYOUT_TES_RUN, strerror(-e));
}

/* -ENOENT when there is none, -EBADMSG when it is not of that shape. */
static int progress_read(const char *task_dir, struct progress *ret)
{
    _cleanup_free_ char *path = layout_in_task_dir(task_dir, LAYOUT_TES_RUN);
    _cleanup_free_ char *data = NULL;
    int e = read_file(path, 1 << 16, &data, NULL);
    if (e < 0)
        return e;
    cJSON *j = cJSON_Parse(data);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "executor");
    const cJSON *ended = cJSON_GetObjectItemCaseSensitive(j, "ended");
    struct progress p = {
        .ended = cJSON_IsTrue(ended),
        .out = (off_t) json_u64(j, "stdout"),
        .err = (off_t) json_u64(j, "stderr"),
        .started = (usec_t) json_u64(j, "started"),
        .executor_started = (usec_t) json_u64(j, "executor_started"),
    };
    e = cJSON_IsNumber(n) && n->valuedouble >= 0 && cJSON_IsBool(ended) ? 0 : -EBADMSG;
    if (e >= 0)
        p.executor = (size_t) n->valuedouble;
    if (e >= 0 && p.ended)
        e = task_outcome_from_cjson(cJSON_GetObjectItemCaseSensitive(j, "outcome"), &p.outcome);
    cJSON_Delete(j);
    if (e < 0)
        return e;
    *ret = p;
    return 0;
}

int docker_tes_began(const char *task_dir, usec_t *ret_started)
{
    struct progress p;
    int e = progress_read(task_dir, &p);
    if (e == -ENOENT)
        return e;
    /* One that cannot be read: resumed all the same, and the runner says
     * why it cannot go on. Never started again. */
    *ret_started = e >= 0 ? p.started : 0;
    if (e >= 0)
        task_outcome_done(&p.outcome);
    return 0;
}

/* A system log line: in the task log's system_logs and the system log. */
_printf_(2, 3) static void syslog_add(struct tes_run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (!msg)
        return;
    strv_push(&r->log.system_logs, msg);
    dtask_syslog(r->t, "%s", msg);
}

/* ---- an executor ---- */

static void kv_copy(const struct task_kv *kv, size_t n, struct task_kv **ret, size_t *ret_n)
{
    *ret = n ? xcalloc(n, sizeof(**ret)) : NULL;
    for (size_t i = 0; i < n; i++)
        (*ret)[i] = (struct task_kv){xstrdup(kv[i].key), xstrdup(kv[i].value)};
    *ret_n = n;
}

/* The struct task executor e runs as: the task's limits, account and
 * tags, e's image, command, env and workdir, the mapping's binds. */
static struct task *executor_task(struct task *base, const struct tes_executor *e,
                                  const struct task_mount *binds, size_t n_binds)
{
    struct tes_task *keep = base->tes; /* not needed in the copy */
    base->tes = NULL;
    struct task *x = task_copy(base);
    base->tes = keep;

    task_container_free(x->container);
    struct task_container *c = xcalloc(1, sizeof(*c));
    c->image = xstrdup(e->image);
    char **argv = NULL;
    if (e->stdin_path) {
        /* $0 is the path, "$@" the command as given: no quoting to get wrong. */
        strv_push(&argv, "/bin/sh");
        strv_push(&argv, "-c");
        strv_push(&argv, "exec \"$@\" < \"$0\"");
        strv_push(&argv, e->stdin_path);
    }
    STRV_FOREACH (a, e->command)
        strv_push(&argv, *a);
    c->cmd = (struct task_cmd){.argv = argv, .shell = false};
    c->mounts = n_binds ? xcalloc(n_binds, sizeof(*c->mounts)) : NULL;
    for (size_t i = 0; i < n_binds; i++)
        c->mounts[i] = (struct task_mount){.host = xstrdup(binds[i].host),
                                           .container = xstrdup(binds[i].container),
                                           .mode = binds[i].mode};
    c->n_mounts = n_binds;
    x->container = c;

    task_kv_free(x->env, x->n_env);
    kv_copy(e->env, e->n_env, &x->env, &x->n_env);
    free(x->workdir);
    x->workdir = e->workdir ? xstrdup(e->workdir) : NULL;
    return x;
}

/* Where t's output file is now (its end: the logs write in order). */
static off_t output_offset(int fd)
{
    off_t o = fd < 0 ? -1 : lseek(fd, 0, SEEK_CUR);
    return o < 0 ? 0 : o;
}

/* The output file fd opened again for reading (it is open write-only). */
static int reopen_ro(int fd)
{
    char proc[48];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    int r = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    return r < 0 ? -errno : r;
}

/* Executor n's part of an output file copied to the path it named in the
 * mapping (as the account). */
static void copy_stream(struct tes_run *r, const char *which, const char *cpath, int rfd,
                        off_t from, off_t to, size_t n)
{
    if (!cpath)
        return;
    _cleanup_error_ struct error err = ERROR_INIT;
    if (rfd < 0 || tes_stage_write_range(&r->stage, cpath, rfd, from, MAX(to, from), &err) < 0)
        syslog_add(r, "executors[%zu].%s: cannot write %s: %s", n, which, cpath,
                   rfd < 0 ? "its output is not a file" : error_message(&err));
}

/* A new container for the next executor: what the last one did is
 * forgotten (its events too, under the lock the events thread takes). */
static void next_container(struct dtask *t, size_t n)
{
    free(t->container);
    t->container = NULL;
    free(t->did.start_error);
    t->did = (struct dtask_runner){};
    pthread_mutex_lock(&t->ds->lock);
    t->ev = (struct dtask_events){};
    snprintf(t->name, sizeof(t->name), "ocps-%s-%zu", t->id, n);
    pthread_mutex_unlock(&t->ds->lock);
}

/* What became of executor n's container (t->name), which a daemon
 * before this one began: RUN_FOLLOW (it runs: t->container set),
 * RUN_FINISH (it ended, or cannot be asked: finish() says so) or
 * RUN_START (there is none of ours, or it never started: made anew). */
static enum runner_mode find_container(struct dtask *t)
{
    struct docker_state *ds = t->ds;
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *path = xasprintf("/containers/%s/json", t->name);
    cJSON *info = NULL;
    int st = engine_call(ds->engine, "GET", path, NULL, &info, &err);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(info, "Config"), "Labels");
    const char *inst = json_str(labels, LABEL_INSTANCE), *tid = json_str(labels, LABEL_TASK);
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(info, "State");
    const char *status = json_str(state, "Status");
    enum runner_mode how = RUN_FINISH;
    if (st == 404 ||
        (st == 200 && (!inst || !streq(inst, ds->instance) || !tid || !streq(tid, t->id))))
        how = RUN_START;
    else if (st == 200 && status && streq(status, "created")) {
        /* Made, never started: nothing of it ran. */
        (void) docker_delete_container(ds, t->name, &err);
        how = RUN_START;
    } else if (st == 200) {
        const char *id = json_str(info, "Id");
        t->container = xstrdup(id ? id : t->name);
        if (!t->started) {
            /* The task began with this container: its walltime too. */
            t->started = docker_time(json_str(state, "StartedAt"));
            dtask_arm_walltime(t, t->started);
        }
        if (streq(status ? status : "", "running") || streq(status ? status : "", "paused") ||
            streq(status ? status : "", "restarting"))
            how = RUN_FOLLOW;
    } else
        t->container = xstrdup(t->name); /* finish() inspects it again, or fails the task */
    cJSON_Delete(info);
    return how;
}

/* Runs executor n - or, resumed (p), follows or reads the end of the one
 * the last daemon began; false when the daemon stops (no outcome). *ret
 * is its outcome; its log is added. */
static bool run_executor(struct tes_run *r, size_t n, const struct progress *resumed,
                         struct task_outcome *ret)
{
    struct dtask *t = r->t;
    const struct tes_executor *e = &r->tt->executors[n];
    struct task *base = t->task;
    next_container(t, n);
    t->task = executor_task(base, e, r->binds, r->n_binds);
    off_t out0 = output_offset(t->out_fd), err0 = output_offset(t->err_fd);
    usec_t start = resumed ? resumed->executor_started : now_realtime();
    enum runner_mode how = resumed ? find_container(t) : RUN_START;
    if (how == RUN_START) {
        /* Before its container exists: a restart then knows it began. */
        progress_save(t, &(struct progress){.executor = n,
                                            .out = out0,
                                            .err = err0,
                                            .started = t->started,
                                            .executor_started = start});
        dtask_syslog(t, "executor %zu: image %s", n, e->image);
    } else
        dtask_syslog(t, "executor %zu: container %.12s %s", n, t->container,
                     how == RUN_FOLLOW ? "followed" : "ended while the daemon was away");
    bool have =
        how == RUN_START ? runner_container(t, ret) : runner_follow(t, how == RUN_FOLLOW, ret);
    task_free(t->task);
    t->task = base;
    if (!have)
        return false;
    off_t out1 = output_offset(t->out_fd), err1 = output_offset(t->err_fd);
    _cleanup_close_ int out_r = t->out_fd >= 0 ? reopen_ro(t->out_fd) : -1;
    _cleanup_close_ int err_r = t->err_fd >= 0 ? reopen_ro(t->err_fd) : -1;
    copy_stream(r, "stdout", e->stdout_path, out_r, out0, out1, n);
    copy_stream(r, "stderr", e->stderr_path, err_r, err0, err1, n);

    struct tes_executor_log el = {
        .start = t->did.ran ? start : 0,
        .end = ret->finished ? ret->finished : now_realtime(),
        /* One that never ran still says how it ended: 127, as a shell
         * says of a command it cannot run. */
        .exit_code = ret->exit_code >= 0 ? ret->exit_code
                     : ret->signal       ? 128 + ret->signal
                                         : 127,
        .stdout_tail = tes_log_tail(out_r, out0, out1),
        .stderr_tail = tes_log_tail(err_r, err0, err1),
    };
    if (!el.start)
        el.start = start;
    r->log.logs = xrealloc(r->log.logs, (r->log.n_logs + 1) * sizeof(*r->log.logs));
    r->log.logs[r->log.n_logs++] = el;
    if (ret->state != TASK_COMPLETE)
        syslog_add(r, "executor %zu: %s: %s", n, task_state_to_string(ret->state), ret->reason);
    log_save(r);
    progress_save(t, &(struct progress){.executor = n,
                                        .ended = true,
                                        .out = out1,
                                        .err = err1,
                                        .started = t->started,
                                        .executor_started = start,
                                        .outcome = *ret});
    return true;
}

/* ---- the task ---- */

/* What may go on past an executor that failed: its own non-zero exit,
 * with ignore_error; never a cancel, a limit or the system. */
static bool may_go_on(const struct dtask *t, const struct tes_executor *e,
                      const struct task_outcome *o)
{
    if (o->state == TASK_COMPLETE)
        return true;
    return e->ignore_error && o->state == TASK_EXECUTOR_ERROR && o->exit_code > 0 &&
           !t->did.walltime_hit && !t->did.output_hit && !t->did.start_error;
}

static void finish_task(struct tes_run *r, struct task_outcome *o)
{
    r->log.end = now_realtime();
    log_save(r);
    runner_report(r->t, o);
    task_outcome_done(o);
}

/* Staging failed (err): the daemon stops (nothing reported), the task
 * was cancelled or ran out of walltime, or it is the system's error. */
static void staging_failed(struct tes_run *r, int e, const struct error *err)
{
    struct task_outcome o;
    if (e == -ECANCELED) {
        if (!runner_given_up(r->t, &o))
            return;
    } else {
        syslog_add(r, "%s", error_message(err));
        runner_fail(r->t,
                    &(struct outcome_facts){.start_error = error_message(err),
                                            .start_error_system = true,
                                            .exit_code = -1},
                    &o);
    }
    finish_task(r, &o);
}

/* The mapping, the inputs and the binds of a task that begins. */
static int begin(struct tes_run *r, struct error *err)
{
    struct dtask *t = r->t;
    STRV_FOREACH (p, r->tt->ignored_parameters)
        syslog_add(r, "backend parameter %s is not supported here and was ignored", *p);
    /* Written before anything runs: recovery knows by it that the task
     * began. */
    log_save(r);
    /* A task with nothing to share needs no mapping: its one container
     * is then made as a JobProxy task's, and costs no more. */
    if (!tes_task_needs_runner(r->tt))
        return 0;
    int e = tes_stage_root(t->task_dir, r->stage.user, &r->root, &r->root_fd, err);
    r->stage.root_fd = r->root_fd;
    r->stage.root = r->root;
    t->tes_root = r->root;
    if (e >= 0)
        e = tes_stage_inputs(&r->stage, r->tt, false, &r->binds, &r->n_binds, err);
    if (e >= 0)
        e = tes_stage_binds(&r->stage, r->tt, &r->binds, &r->n_binds, err);
    return e;
}

/* The output files opened again where the progress says. */
static void reopen_outputs(struct dtask *t, const struct progress *p)
{
    for (int i = 0; i < 2; i++) {
        int *fd = i ? &t->err_fd : &t->out_fd;
        const char *path = i ? t->err_path : t->out_path;
        closep(fd);
        int e = dtask_reopen_output(t, path, (i ? t->task->stderr_path : t->task->stdout_path),
                                    i ? p->err : p->out, fd);
        if (e < 0)
            dtask_syslog(t, "cannot open %s again: %s", path, strerror(-e));
    }
}

/* A task the last daemon left (tes-run.json, tes-log.json, the executor's
 * container; see the top): 0 with *ret_next the executor to go on from
 * and *ret_o the outcome of the one before it, 1 when the daemon stops
 * first, or a negative errno with err set (the task cannot go on). */
static int resume(struct tes_run *r, size_t *ret_next, struct task_outcome *ret_o,
                  struct error *err)
{
    struct dtask *t = r->t;
    struct progress p;
    int e = progress_read(t->task_dir, &p);
    if (e >= 0 && p.executor >= r->tt->n_executors) {
        task_outcome_done(&p.outcome);
        e = -EBADMSG;
    }
    if (e < 0)
        return error_set(err, e, "cannot resume after a restart: %s: %s", LAYOUT_TES_RUN,
                         strerror(-e));
    tes_task_log_done(&r->log);
    e = tes_task_log_read(t->task_dir, &r->log);
    if (e < 0) {
        task_outcome_done(&p.outcome);
        return error_set(err, e, "cannot resume after a restart: %s: %s", LAYOUT_TES_LOG,
                         strerror(-e));
    }
    /* A log written after the progress said "begun" is made again. */
    size_t logged = p.executor + p.ended;
    while (r->log.n_logs > logged) {
        struct tes_executor_log *l = &r->log.logs[--r->log.n_logs];
        free(l->stdout_tail);
        free(l->stderr_tail);
    }
    /* Outputs a restart interrupted are copied again, whole. */
    for (size_t i = 0; i < r->log.n_outputs; i++) {
        free(r->log.outputs[i].url);
        free(r->log.outputs[i].path);
    }
    free(r->log.outputs);
    r->log.outputs = NULL;
    r->log.n_outputs = 0;
    r->log.end = 0;
    syslog_add(r, "the daemon restarted: executor %zu %s", p.executor,
               p.ended ? "had ended; the task goes on" : "had begun and is followed, not rerun");
    if (tes_task_needs_runner(r->tt)) {
        e = tes_stage_root_open(t->task_dir, &r->root, &r->root_fd, err);
        r->stage.root_fd = r->root_fd;
        r->stage.root = r->root;
        t->tes_root = r->root;
        if (e >= 0)
            e = tes_stage_inputs(&r->stage, r->tt, true, &r->binds, &r->n_binds, err);
        if (e >= 0)
            e = tes_stage_binds(&r->stage, r->tt, &r->binds, &r->n_binds, err);
        if (e < 0) {
            task_outcome_done(&p.outcome);
            return e;
        }
    }
    reopen_outputs(t, &p);
    log_save(r);
    if (p.ended) {
        /* Its log is written: its container has told all it will. */
        *ret_o = p.outcome;
        next_container(t, p.executor);
        if (!t->ds->cfg->docker_keep_containers)
            (void) docker_delete_container(t->ds, t->name, err);
        error_clear(err);
        *ret_next = p.executor + 1;
        return 0;
    }
    if (!run_executor(r, p.executor, &p, ret_o))
        return 1;
    *ret_next = p.executor + 1;
    return 0;
}

/* After executor n's end (o): whether the next one runs. A last one that
 * failed with ignore_error leaves the task COMPLETE. */
static bool go_on(struct tes_run *r, size_t n, struct task_outcome *o)
{
    if (!may_go_on(r->t, &r->tt->executors[n], o))
        return false;
    if (o->state != TASK_COMPLETE && n + 1 == r->tt->n_executors) {
        /* The last one failed and said ignore_error: the task did what
         * it was asked. */
        task_outcome_done(o);
        runner_fail(r->t, &(struct outcome_facts){.exit_code = 0, .finished = now_realtime()}, o);
    }
    return true;
}

void docker_tes_run(struct dtask *t)
{
    struct docker_state *ds = t->ds;
    struct tes_run r = {.t = t, .tt = t->task->tes, .root_fd = -1};
    _cleanup_error_ struct error err = ERROR_INIT;
    r.log.start = now_realtime();
    const struct user_ids *ids = confine_ids(&t->user, &r.ids);
    size_t n_abort = dtask_abort_fds(t, r.abort_fds);
    r.abort_fds[n_abort++] = ds->shutdown_fd;
    r.stage = (struct tes_stage){.cfg = ds->cfg,
                                 .root_fd = -1,
                                 .user = ids,
                                 .account = t->user.name,
                                 .abort_fds = r.abort_fds,
                                 .n_abort_fds = n_abort};

    struct task_outcome o = {};
    size_t next = 0;
    int e = t->tes_resume ? resume(&r, &next, &o, &err) : begin(&r, &err);
    if (e == 1) {
        run_done(&r); /* the daemon stops: the next one goes on */
        return;
    }
    if (e < 0) {
        /* A task that cannot be resumed ends here; a container a daemon
         * before this one left running would run on unfollowed. */
        if (t->tes_resume && !ds->cfg->docker_keep_containers)
            (void) docker_delete_task_containers(ds, t->id);
        staging_failed(&r, e, &err);
        run_done(&r);
        return;
    }

    bool have = next > 0;
    bool go = !have || go_on(&r, next - 1, &o);
    for (size_t n = next; go && n < r.tt->n_executors; n++) {
        if (have) {
            /* Its log is written: the container has told all it will. */
            runner_remove_container(t);
            task_outcome_done(&o);
        }
        have = run_executor(&r, n, NULL, &o);
        if (!have) {
            run_done(&r); /* the daemon stops: the next one goes on */
            return;
        }
        go = go_on(&r, n, &o);
    }

    if (o.state != TASK_CANCELED) {
        struct tes_stage_copied copied = {};
        error_clear(&err);
        e = tes_stage_outputs(&r.stage, r.tt, &copied, &err);
        r.log.outputs = copied.files;
        r.log.n_outputs = copied.n_files;
        if (e == -ECANCELED) {
            /* Cancelled or out of walltime while copying (or the daemon
             * stops: nothing to report). */
            task_outcome_done(&o);
            if (!runner_given_up(t, &o)) {
                run_done(&r);
                return;
            }
        } else if (e < 0) {
            syslog_add(&r, "%s", error_message(&err));
            if (o.state == TASK_COMPLETE) {
                _cleanup_free_ char *why = xasprintf("outputs: %s", error_message(&err));
                usec_t started = o.started, finished = o.finished;
                task_outcome_done(&o);
                runner_fail(t,
                            &(struct outcome_facts){
                                .system_error = why, .exit_code = -1, .finished = finished},
                            &o);
                o.started = started;
            }
        }
    }
    finish_task(&r, &o);
    run_done(&r);
}
