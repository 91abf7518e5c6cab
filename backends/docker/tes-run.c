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
 * one stays until the store has the end (release), as any task's. A
 * daemon restart does not resume a TES task: recovery ends it with
 * SYSTEM_ERROR and removes its containers (docker_tes_recover).
 */
#include "docker-internal.h"
#include "layout.h"
#include "tes-stage.h"
#include "util/json.h"
#include "util/log.h"

#include <fcntl.h>
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

/* Bytes that are not UTF-8 become '?': the tail goes into JSON. */
static void utf8_scrub(char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char) s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool good = len > 0 && i + len <= n;
        for (size_t k = 1; good && k < len; k++)
            good = ((unsigned char) s[i + k] >> 6) == 2;
        if (c == 0)
            good = false;
        if (!good) {
            s[i++] = '?';
            continue;
        }
        i += len;
    }
}

/* The last TES_LOG_TAIL bytes of [from, to) of the output file rfd. */
static char *tail(int rfd, off_t from, off_t to)
{
    if (rfd < 0 || to <= from)
        return NULL;
    off_t start = to - from > (off_t) TES_LOG_TAIL ? to - (off_t) TES_LOG_TAIL : from;
    size_t n = (size_t) (to - start);
    char *buf = xmalloc(n + 1);
    ssize_t k = pread(rfd, buf, n, start);
    if (k <= 0) {
        free(buf);
        return NULL;
    }
    size_t skip = 0;
    /* Not from the middle of a character. */
    while (start > from && skip < (size_t) k && ((unsigned char) buf[skip] >> 6) == 2)
        skip++;
    memmove(buf, buf + skip, (size_t) k - skip);
    buf[(size_t) k - skip] = '\0';
    utf8_scrub(buf, (size_t) k - skip);
    return buf;
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

/* Runs executor n; false when the daemon stops (no outcome). *ret is its
 * outcome; its log is added. */
static bool run_executor(struct tes_run *r, size_t n, struct task_outcome *ret)
{
    struct dtask *t = r->t;
    const struct tes_executor *e = &r->tt->executors[n];
    struct task *base = t->task;
    next_container(t, n);
    t->task = executor_task(base, e, r->binds, r->n_binds);
    off_t out0 = output_offset(t->out_fd), err0 = output_offset(t->err_fd);
    usec_t start = now_realtime();
    dtask_syslog(t, "executor %zu: image %s", n, e->image);
    bool have = runner_container(t, ret);
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
        .stdout_tail = tail(out_r, out0, out1),
        .stderr_tail = tail(err_r, err0, err1),
    };
    if (!el.start)
        el.start = start;
    r->log.logs = xrealloc(r->log.logs, (r->log.n_logs + 1) * sizeof(*r->log.logs));
    r->log.logs[r->log.n_logs++] = el;
    if (ret->state != TASK_COMPLETE)
        syslog_add(r, "executor %zu: %s: %s", n, task_state_to_string(ret->state), ret->reason);
    log_save(r);
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

void docker_tes_run(struct dtask *t)
{
    struct docker_state *ds = t->ds;
    struct tes_run r = {.t = t, .tt = t->task->tes, .root_fd = -1};
    _cleanup_error_ struct error err = ERROR_INIT;
    r.log.start = now_realtime();
    STRV_FOREACH (p, r.tt->ignored_parameters)
        syslog_add(&r, "backend parameter %s is not supported here and was ignored", *p);

    /* Written before anything runs: recovery knows by it that the task
     * began (docker_tes_recover). */
    log_save(&r);
    const struct user_ids *ids = confine_ids(&t->user, &r.ids);
    size_t n_abort = dtask_abort_fds(t, r.abort_fds);
    r.abort_fds[n_abort++] = ds->shutdown_fd;
    r.stage = (struct tes_stage){.cfg = ds->cfg,
                                 .root_fd = -1,
                                 .user = ids,
                                 .account = t->user.name,
                                 .abort_fds = r.abort_fds,
                                 .n_abort_fds = n_abort};
    /* A task with nothing to share needs no mapping: its one container
     * is then made as a JobProxy task's, and costs no more. */
    int e = 0;
    if (tes_task_needs_runner(r.tt)) {
        e = tes_stage_root(t->task_dir, ids, &r.root, &r.root_fd, &err);
        r.stage.root_fd = r.root_fd;
        r.stage.root = r.root;
        t->tes_root = r.root;
        if (e >= 0)
            e = tes_stage_inputs(&r.stage, r.tt, &r.binds, &r.n_binds, &err);
        if (e >= 0)
            e = tes_stage_binds(&r.stage, r.tt, &r.binds, &r.n_binds, &err);
    }
    if (e < 0) {
        staging_failed(&r, e, &err);
        run_done(&r);
        return;
    }

    struct task_outcome o = {};
    bool have = false;
    for (size_t n = 0; n < r.tt->n_executors; n++) {
        if (have) {
            /* Its log is written: the container has told all it will. */
            runner_remove_container(t);
            task_outcome_done(&o);
        }
        have = run_executor(&r, n, &o);
        if (!have) {
            run_done(&r); /* the daemon stops: the next one ends the task */
            return;
        }
        if (!may_go_on(t, &r.tt->executors[n], &o))
            break;
        if (o.state != TASK_COMPLETE && n + 1 == r.tt->n_executors) {
            /* The last one failed and said ignore_error: the task did
             * what it was asked. */
            task_outcome_done(&o);
            runner_fail(t, &(struct outcome_facts){.exit_code = 0, .finished = now_realtime()}, &o);
        }
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

/* ---- recovery ---- */

int docker_tes_recover(struct docker_state *ds, const struct backend_start *s, struct error *err)
{
    _cleanup_free_ char *path = layout_in_task_dir(s->task_dir, LAYOUT_TES_LOG);
    struct stat st;
    if (lstat(path, &st) < 0 && errno == ENOENT)
        return -ENOENT; /* written before anything: it never began */
    int r = engine_ping(ds->engine, err);
    if (r < 0)
        return error_wrap(err, "recover");
    if (!ds->cfg->docker_keep_containers)
        (void) docker_delete_task_containers(ds, s->id);

    struct tes_task_log log = {};
    if (tes_task_log_read(s->task_dir, &log) < 0)
        tes_task_log_done(&log);
    const char *why = "the daemon restarted while the TES task ran: its executors are not resumed";
    strv_push(&log.system_logs, why);
    log.end = now_realtime();
    (void) tes_task_log_write(s->task_dir, &log, false);
    tes_task_log_done(&log);

    struct task_outcome o;
    outcome_classify(&(struct outcome_facts){.system_error = why, .exit_code = -1}, &o);
    r = task_outcome_write(s->task_dir, &o, false);
    if (r < 0)
        log_error("task %s: cannot record the outcome: %s", s->id, strerror(-r));
    ds->listener.ended(ds->listener.userdata, s->id, &o);
    task_outcome_done(&o);
    return 0;
}
