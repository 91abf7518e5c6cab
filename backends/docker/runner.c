/*
 * runner: the runner threads. A runner does the whole life of one task's
 * container (runners are kept and take the next task launched, see
 * runner_main):
 *
 *   image    pull by policy (image.c); create tells whether the image is
 *            there when the policy is not "always"
 *   create   name ocps-<task id>, labels org.ocps-proxy.instance/.task,
 *            every Task field mapped and enforced (create.c)
 *   wait     POST wait?condition=next-exit; once its reply headers have
 *            arrived the wait is registered, and only then
 *   start    so no exit can be missed; then logs?follow=1 into the
 *            task's stdout/stderr files (opened before the image and the
 *            create, as the task's user where it named them), live: the
 *            runner drives the wait and the logs together (an engine
 *            group), so a task costs one thread, not two. Past the
 *            task's output cap the logs stop there and the container is
 *            killed
 *   end      the wait returns (or walltime/cancel: stop with the grace
 *            period; the walltime counts from the task's admission, so a
 *            pull or an output file that blocks counts too), the die
 *            event (or inspect) gives the outcome,
 *            <task_dir>/exit.json records it, ended() is told; once the
 *            store has the end on disk, release() lets the runner remove
 *            the container. The end is fsync'd once, by the store's group
 *            commit, and the container - the other record of it - goes
 *            only after that.
 *
 * A lost connection to dockerd (dockerd stopped) does not end a task: the
 * runner waits for dockerd to answer again and then looks at what became
 * of its container. When the daemon stops, every Engine call in flight
 * ends at once (the engine watches the shutdown fd) and the runner lets
 * go of its task without an outcome: the next daemon follows it.
 */
#include "docker-internal.h"
#include "policy-check.h"
#include "util/json.h"
#include "util/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

/* ---- the outcome ---- */

/* What the container's State (or the events) and the runner saw, for
 * the one classifier (outcome.h). */
static void container_facts(struct dtask *t, const cJSON *state, struct outcome_facts *f,
                            char **ret_words)
{
    const struct task *task = t->task;
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(state, "ExitCode");
    int code = cJSON_IsNumber(ec) ? ec->valueint : -1;
    const char *error = json_str(state, "Error");
    usec_t started = docker_time(json_str(state, "StartedAt"));
    usec_t finished = docker_time(json_str(state, "FinishedAt"));

    pthread_mutex_lock(&t->ds->lock);
    bool cancel = t->cancel;
    pthread_mutex_unlock(&t->ds->lock);

    *f = (struct outcome_facts){
        .memory = task->memory,
        .cputime = task->cputime,
        .walltime = task->walltime,
        .output = t->output_limit,
        .canceled = cancel,
        .walltime_hit = t->did.walltime_hit,
        .output_hit = t->did.output_hit,
        .oom = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "OOMKilled")),
        .external_signal = t->did.external_kill,
        .external_hint = "docker stop or kill, or dockerd shutting down",
        .exit_code = code,
        /* Docker's init (tini) exits 128+N for a command killed by signal N. */
        .signal = code > 128 && code < 128 + 65 ? code - 128 : 0,
        .started = started ? started : t->started,
        .finished = finished,
    };
    if (t->did.start_error || (!started && error && *error)) {
        *ret_words = xasprintf("start failed: %s", t->did.start_error ? t->did.start_error : error);
        f->start_error = *ret_words;
    } else if (t->did.dockerd_lost) {
        *ret_words = xasprintf(
            "dockerd stopped while the task ran; its container ended with status %d", code);
        f->system_error = *ret_words;
    }
}

/* The outcome file first (a restart finds it, with the reasons the
 * container cannot tell: cancelled, walltime), then the supervisor hears.
 * Not fsync'd: the store fsyncs the end, and the container stays until
 * then (runner_main). */
void runner_report(struct dtask *t, const struct task_outcome *o)
{
    int r = task_outcome_write(t->task_dir, o, false);
    if (r < 0)
        log_error("task %s: cannot record the outcome: %s", t->id, strerror(-r));
    dtask_syslog(t, "%s: %s", task_state_to_string(o->state), o->reason);
    t->did.reported = true;
    t->ds->listener.ended(t->ds->listener.userdata, t->id, o);
}

void runner_fail(struct dtask *t, struct outcome_facts *f, struct task_outcome *ret)
{
    f->memory = t->task->memory;
    f->cputime = t->task->cputime;
    f->walltime = t->task->walltime;
    f->output = t->output_limit;
    f->started = t->started;
    outcome_classify(f, ret);
}

bool runner_given_up(struct dtask *t, struct task_outcome *ret)
{
    if (atomic_load(&t->ds->stopping))
        return false;
    uint64_t v;
    bool wall = t->wall_fd >= 0 && eventfd_read(t->wall_fd, &v) == 0;
    pthread_mutex_lock(&t->ds->lock);
    bool cancel = t->cancel;
    pthread_mutex_unlock(&t->ds->lock);
    if (wall)
        dtask_syslog(t, "walltime limit %" PRIu64 " s reached before the container started",
                     t->task->walltime);
    runner_fail(
        t,
        &(struct outcome_facts){.canceled = cancel || !wall, .walltime_hit = wall, .exit_code = -1},
        ret);
    return true;
}

/* ---- the output ---- */

/* The task's stdout and stderr files, opened (truncated) once; a file the
 * task named as its user, which may block (a FIFO nobody reads) until the
 * task is cancelled or out of walltime (-ECANCELED). Says why not in
 * *ret_why (NULL: syslog only). */
static int open_outputs(struct dtask *t, char **ret_why)
{
    for (int i = 0; i < 2; i++) {
        int *fd = i ? &t->err_fd : &t->out_fd;
        const char *path = i ? t->err_path : t->out_path;
        if (*fd >= 0)
            continue;
        int r = dtask_open_output(t, path,
                                  (i ? t->task->stderr_path : t->task->stdout_path) != NULL, fd);
        if (r == -ECANCELED)
            return r;
        if (r < 0) {
            _cleanup_free_ char *why =
                xasprintf("cannot open %s %s: %s", i ? "stderr" : "stdout", path, strerror(-r));
            dtask_syslog(t, "%s", why);
            if (ret_why)
                *ret_why = TAKE_PTR(why);
            return r;
        }
    }
    return 0;
}

/* Past the output cap: the logs stopped there; the container is killed at
 * once (no grace: it would only write more). */
static void kill_for_output(struct dtask *t)
{
    pthread_mutex_lock(&t->ds->lock);
    bool sent = t->did.stop_sent;
    t->did.stop_sent = true;
    pthread_mutex_unlock(&t->ds->lock);
    if (sent || !t->container)
        return;
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *path = xasprintf("/containers/%s/kill", t->container);
    int st = engine_call(t->ds->engine, "POST", path, NULL, NULL, &err);
    if ((st < 0 && st != -ECANCELED) || (st >= 400 && st != 404 && st != 409))
        log_warn("task %s: kill: %s", t->id, error_message(&err));
}

static void logs_ended(struct dtask *t, int r, const struct error *err)
{
    t->logs_call = -1;
    if (r == -EFBIG) {
        char lim[32];
        t->did.output_hit = true;
        dtask_syslog(t, "output limit %s reached: the rest is not kept, the container is killed",
                     format_size_human(t->output_limit, lim));
    } else if (r < 0 || r >= 400)
        dtask_syslog(t, "logs: %s", error_message(err));
}

/* The container's output, whole, when it ended while we were away. */
static void collect_logs(struct dtask *t)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    if (open_outputs(t, NULL) < 0)
        return;
    int r = engine_logs(t->ds->engine, t->container, false, t->out_fd, t->err_fd, t->output_limit,
                        -1, &err);
    logs_ended(t, r, &err);
}

/* logs?follow=1 into the output files, driven with the wait by the runner. */
static void start_logs(struct dtask *t)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    if (open_outputs(t, NULL) < 0)
        return;
    int n = engine_group_logs(t->group, t->container, t->out_fd, t->err_fd, t->output_limit, &err);
    if (n < 0)
        logs_ended(t, n, &err);
    else
        t->logs_call = n;
}

/* Runs the followed logs to their end (the container has stopped). */
static void finish_logs(struct dtask *t)
{
    while (t->logs_call >= 0) {
        _cleanup_error_ struct error err = ERROR_INIT;
        int r = 0;
        int n = engine_group_run(t->group, NULL, 0, &r, &err);
        if (n == t->logs_call)
            logs_ended(t, r, &err);
        else if (n < 0) {
            logs_ended(t, n, &err);
            break;
        }
    }
}

/* ---- the container ---- */

static void running(struct dtask *t)
{
    t->did.ran = true;
    if (!t->started)
        t->started = now_realtime();
    /* Once a task: a TES task's next executors run in the same state. */
    if (t->told_running)
        return;
    t->told_running = true;
    t->ds->listener.running(t->ds->listener.userdata, t->id, t->started);
}

struct waiter {
    struct dtask *t;
    bool start; /* start the container once the wait is registered */
    bool started;
    long exit_code;
    bool have_exit;
};

static int wait_line(void *userdata, const char *line, size_t len)
{
    struct waiter *w = userdata;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "StatusCode");
    if (cJSON_IsNumber(c)) {
        w->exit_code = (long) c->valuedouble;
        w->have_exit = true;
    }
    cJSON_Delete(j);
    return 0;
}

/* The wait's headers are in: it is registered, so starting now cannot
 * lose the exit. (A second easy handle inside a callback of the first is
 * fine: they share nothing.) */
static void wait_registered(void *userdata, long status)
{
    struct waiter *w = userdata;
    struct dtask *t = w->t;
    if (!w->start || w->started)
        return;
    w->started = true;
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *path = xasprintf("/containers/%s/start", t->container);
    int st = engine_call(t->ds->engine, "POST", path, NULL, NULL, &err);
    if (st == 204 || st == 304) {
        running(t);
        start_logs(t);
        return;
    }
    /* Nothing will exit: stop waiting. */
    t->did.start_error = xstrdup(error_message(&err));
    (void) eventfd_write(t->cancel_fd, 1);
}

static int stop_container(struct dtask *t)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *path =
        xasprintf("/containers/%s/stop?t=%u", t->container, t->ds->cfg->kill_grace);
    int st = engine_call(t->ds->engine, "POST", path, NULL, NULL, &err);
    if ((st < 0 && st != -ECANCELED) || (st >= 400 && st != 404))
        log_warn("task %s: stop: %s", t->id, error_message(&err));
    return st;
}

bool dockerd_wait(struct docker_state *ds)
{
    for (unsigned delay = 200;; delay = MIN(delay * 2, 5000)) {
        _cleanup_error_ struct error err = ERROR_INIT;
        if (atomic_load(&ds->stopping))
            return false;
        if (engine_ping(ds->engine, &err) >= 0)
            return true;
        /* Woken early when the events stream reconnects or at shutdown. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += delay / 1000;
        until.tv_nsec += (long) (delay % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&ds->lock);
        if (!atomic_load(&ds->stopping))
            (void) pthread_cond_timedwait(&ds->back, &ds->lock, &until);
        pthread_mutex_unlock(&ds->lock);
    }
}

/* dockerd did not answer (err): waits until it does (true) or the daemon
 * stops (false: the next daemon follows the task). Only dockerd can stop
 * the container, so a cancel waits too. */
static bool lost_dockerd(struct dtask *t, const struct error *err)
{
    if (atomic_load(&t->ds->stopping))
        return false;
    if (!t->did.dockerd_lost)
        dtask_syslog(t, "lost dockerd (%s); waiting for it", error_message(err));
    t->did.dockerd_lost = true;
    if (!dockerd_wait(t->ds))
        return false;
    dtask_syslog(t, "dockerd answers again");
    return true;
}

static int inspect(struct dtask *t, cJSON **ret, struct error *err)
{
    _cleanup_free_ char *path = xasprintf("/containers/%s/json", t->container);
    return engine_call(t->ds->engine, "GET", path, NULL, ret, err);
}

void runner_remove_container(struct dtask *t)
{
    if (t->ds->cfg->docker_keep_containers || !t->container)
        return;
    _cleanup_error_ struct error err = ERROR_INIT;
    int st = docker_delete_container(t->ds, t->container, &err);
    /* Cancelled: the daemon stops, and the next one's reconcile removes it. */
    if ((st < 0 && st != -ECANCELED) || (st >= 400 && st != 404))
        log_warn("task %s: remove container %s: %s", t->id, t->container, error_message(&err));
}

/* Each mount again, just before the container is made: its host path,
 * resolved at submit, must still resolve (as the task's user) to itself
 * and pass the never-list, so a symlink swapped in while the task waited
 * gets nothing. -EACCES or -EINVAL: the task's fault. */
static int recheck_mounts(struct dtask *t, struct error *err)
{
    const struct task_container *c = t->task->container;
    const struct confine_user *u = &t->user;
    struct account a = {.name = u->name,
                        .uid = u->uid,
                        .gid = u->gid,
                        .groups = u->groups,
                        .n_groups = u->n_groups};
    for (size_t i = 0; i < c->n_mounts; i++) {
        /* A TES task's mapping is the daemon's own, not a client's path. */
        if (t->tes_root && startswith(c->mounts[i].host, t->tes_root) &&
            c->mounts[i].host[strlen(t->tes_root)] == '/')
            continue;
        int r = policy_recheck_mount(t->ds->cfg, &a, &c->mounts[i], i, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Creates the container. Returns 0, or a negative errno with err set:
 * -ENXIO when the image is not there, -ENOENT, -EINVAL and -EACCES are
 * the task's fault. */
static int create_container(struct dtask *t, struct error *err)
{
    struct docker_state *ds = t->ds;
    int r = recheck_mounts(t, err);
    if (r < 0)
        return r;
    cJSON *body = docker_create_body(
        t->task, t->id, &t->user,
        &(struct docker_create_config){
            .instance = ds->instance,
            .port_address = t->port_address ? t->port_address : ds->cfg->docker_port_address,
            .network = ds->cfg->docker_network,
            .pids_limit = ds->cfg->pids_limit,
        });
    _cleanup_free_ char *path = xasprintf("/containers/create?name=%s", t->name);
    cJSON *reply = NULL;
    int st = engine_call(ds->engine, "POST", path, body, &reply, err);
    if (st == 409) {
        /* Left over from an attempt that provably never ran (recover). */
        (void) docker_delete_container(ds, t->name, err);
        st = engine_call(ds->engine, "POST", path, body, &reply, err);
    }
    cJSON_Delete(body);
    if (st < 0)
        return st;
    if (st != 201) {
        cJSON_Delete(reply);
        /* 404 is "No such image": the caller pulls by the policy. */
        return error_set(err,
                         st == 404   ? -ENXIO
                         : st == 400 ? -EINVAL
                                     : -EREMOTEIO,
                         "create: %s", error_message(err));
    }
    const char *id = json_str(reply, "Id");
    t->container = xstrdup(id ? id : t->name);
    cJSON_Delete(reply);
    dtask_syslog(t, "container %s created", t->container);
    return 0;
}

/* Follows the container to its end: a wait (next-exit when we start it,
 * not-running otherwise), walltime and cancel through the abort fds, dockerd
 * going away and coming back. False when the daemon stops first. */
static bool follow(struct dtask *t, bool start)
{
    struct waiter w = {.t = t, .start = start};
    int fds[2];
    size_t n_fds = dtask_abort_fds(t, fds);
    for (;;) {
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_free_ char *path = xasprintf("/containers/%s/wait?condition=%s", t->container,
                                              w.start && !w.started ? "next-exit" : "not-running");
        struct engine_stream s = {
            .line = wait_line, .headers_done = wait_registered, .userdata = &w};
        int st = engine_group_stream(t->group, "POST", path, NULL, &s, &err);
        /* The logs (started with the container) may end first. */
        for (int wait_call = st; wait_call >= 0;) {
            int r = 0;
            error_clear(&err);
            int n = engine_group_run(t->group, fds, n_fds, &r, &err);
            if (n >= 0 && n == t->logs_call) {
                logs_ended(t, r, &err);
                if (t->did.output_hit)
                    kill_for_output(t);
                continue;
            }
            if (n < 0)
                engine_group_cancel(t->group, wait_call);
            st = n == wait_call ? r : n;
            break;
        }
        if (st >= 200 && st < 300 && w.have_exit)
            return true;
        if (atomic_load(&t->ds->stopping))
            return false; /* the container runs on; the next daemon follows it */
        if (st == -ECANCELED) {
            if (t->did.start_error)
                return true;
            uint64_t v;
            if ((t->wall_fd >= 0 && eventfd_read(t->wall_fd, &v) == 0) || t->did.walltime_hit) {
                /* Killed for its output already: that is why it ends. */
                if (!t->did.output_hit)
                    t->did.walltime_hit = true;
                dtask_syslog(t, "walltime limit %" PRIu64 " s reached: stopping",
                             t->task->walltime);
            } else
                dtask_syslog(t, "cancelled: stopping (grace %u s)", t->ds->cfg->kill_grace);
            pthread_mutex_lock(&t->ds->lock);
            t->did.stop_sent = true;
            pthread_mutex_unlock(&t->ds->lock);
            if (stop_container(t) >= 0)
                return true;
            /* dockerd is gone: fall through to wait for it */
        } else if (st == 404) {
            return true; /* removed behind our back: inspect will say so */
        } else if (st >= 0) {
            log_warn("task %s: wait: HTTP %d %s", t->id, st, error_message(&err));
        }
        /* The connection broke: dockerd stopped or restarted. */
        if (!lost_dockerd(t, &err))
            return false;
        cJSON *info = NULL;
        int ist = inspect(t, &info, &err);
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(info, "State");
        bool live = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "Running"));
        cJSON_Delete(info);
        if (ist == 404 || (ist == 200 && !live))
            return true;
        if (ist == 200 && live) {
            t->did.dockerd_lost = false; /* it survived (live-restore): follow on */
            w.start = false;
        }
    }
}

/* Docker's init (tini, HostConfig.Init) runs the command, so an exec that
 * fails is its exit 127 with "[FATAL tini (N)] exec X failed: why" as the
 * first line of stderr, not an error from start: read it back as one. */
static char *init_exec_error(struct dtask *t, int exit_code)
{
    struct stat st;
    if (exit_code != 127 || t->err_fd < 0 || fstat(t->err_fd, &st) < 0 || !S_ISREG(st.st_mode))
        return NULL;
    /* Through the file we wrote, not its path: a path the task named is
     * not ours to open (the fd was opened as its user, for writing). */
    char proc[48], data[4096];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->err_fd);
    _cleanup_close_ int fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    ssize_t n = fd < 0 ? -1 : pread(fd, data, sizeof(data) - 1, 0);
    if (n <= 0)
        return NULL;
    data[n] = '\0';
    if (!startswith(data, "[FATAL tini ("))
        return NULL;
    const char *msg = strstr(data, "] ");
    if (!msg)
        return NULL;
    msg += 2;
    return xstrndup(msg, strcspn(msg, "\n"));
}

/* Waits (briefly) for the container's die event, which the wait's reply
 * races; false when the stream is down or it does not come. */
static bool die_event(struct dtask *t)
{
    struct docker_state *ds = t->ds;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    pthread_mutex_lock(&ds->lock);
    while (!t->ev.die && atomic_load(&ds->connected) && !atomic_load(&ds->stopping))
        if (pthread_cond_timedwait(&ds->event, &ds->lock, &until) == ETIMEDOUT)
            break;
    bool seen = t->ev.die;
    pthread_mutex_unlock(&ds->lock);
    return seen;
}

/* The container's State as the events told it (under ds->lock); the
 * outcome then needs no inspect call. */
static cJSON *state_from_events(struct dtask *t)
{
    cJSON *info = cJSON_CreateObject();
    cJSON *state = cJSON_AddObjectToObject(info, "State");
    cJSON_AddNumberToObject(state, "ExitCode", t->ev.exit_code);
    cJSON_AddBoolToObject(state, "OOMKilled", t->ev.oom);
    char ts[32];
    cJSON_AddStringToObject(state, "FinishedAt", format_rfc3339(t->ev.time, ts));
    if (t->ev.kill_signal && !t->did.stop_sent)
        t->did.external_kill = t->ev.kill_signal;
    return info;
}

/* The container has ended: its outcome, from the die event (and an oom
 * event before it) or from inspect, in *ret. False when the daemon stops
 * first (no outcome: the next daemon finishes the task). */
static bool finish(struct dtask *t, struct task_outcome *ret)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    finish_logs(t);
    cJSON *info = NULL;
    int st = 0;
    if (t->did.ran && !t->did.start_error && !t->did.dockerd_lost && die_event(t)) {
        pthread_mutex_lock(&t->ds->lock);
        info = state_from_events(t);
        pthread_mutex_unlock(&t->ds->lock);
        st = 200;
        if (t->did.external_kill) {
            /* Killed, not by us: if dockerd is going away, that is why;
             * its container is removed once it is back. */
            _cleanup_error_ struct error perr = ERROR_INIT;
            if (engine_ping(t->ds->engine, &perr) < 0 && !lost_dockerd(t, &perr)) {
                cJSON_Delete(info);
                return false;
            }
        }
    } else
        st = inspect(t, &info, &err);
    if (st == -EREMOTEIO) {
        /* dockerd went away as the container ended: it stopped it. */
        if (!lost_dockerd(t, &err))
            return false;
        st = inspect(t, &info, &err);
    }
    if (st < 0 && atomic_load(&t->ds->stopping))
        return false; /* the call was cut short: the next daemon finishes it */
    if (st == 404 || st < 0 || st >= 400) {
        cJSON_Delete(info);
        _cleanup_free_ char *reason =
            st == 404 ? xstrdup("its container disappeared (removed outside the proxy)")
                      : xasprintf("cannot inspect its container: %s", error_message(&err));
        runner_fail(t, &(struct outcome_facts){.system_error = reason, .exit_code = -1}, ret);
        return true;
    }
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(info, "State");
    if (t->mode == RUN_FINISH)
        collect_logs(t); /* ended while we were away: the files whole from dockerd's copy */
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(state, "ExitCode");
    if (!t->did.start_error)
        t->did.start_error = init_exec_error(t, cJSON_IsNumber(ec) ? ec->valueint : -1);
    struct outcome_facts f;
    _cleanup_free_ char *words = NULL;
    container_facts(t, state, &f, &words);
    outcome_classify(&f, ret);
    cJSON_Delete(info);
    return true;
}

/* Image and create by the pull policy: "always" pulls first; otherwise
 * create tells whether the image is there (one call fewer per task than
 * asking). */
static int make_container(struct dtask *t, struct error *err)
{
    enum docker_pull policy = t->ds->cfg->docker_pull;
    int r = policy == DOCKER_PULL_ALWAYS ? docker_pull_image(t, err) : 0;
    if (r >= 0)
        r = create_container(t, err);
    if (r == -ENXIO && policy == DOCKER_PULL_NEVER)
        return error_set(err, -ENOENT,
                         "image %s is not present on this host and the pull policy is never",
                         t->task->container->image);
    if (r == -ENXIO) {
        r = docker_pull_image(t, err);
        if (r >= 0)
            r = create_container(t, err);
    }
    return r;
}

bool runner_container(struct dtask *t, struct task_outcome *ret)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *why = NULL;
    int r = open_outputs(t, &why);
    if (r >= 0)
        r = make_container(t, &err);
    else if (r != -ECANCELED) {
        runner_fail(t, &(struct outcome_facts){.start_error = why, .exit_code = -1}, ret);
        return true;
    }
    if (r == -ECANCELED)
        return runner_given_up(t, ret);
    if (r < 0) {
        bool task_fault = r == -ENOENT || r == -EINVAL || r == -EACCES;
        _cleanup_free_ char *reason = xstrdup(error_message(&err));
        log_warn("task %s: %s", t->id, reason);
        runner_fail(
            t, &(struct outcome_facts){.start_error = reason, .start_error_system = !task_fault},
            ret);
        return true;
    }
    return follow(t, true) && finish(t, ret);
}

bool runner_follow(struct dtask *t, bool live, struct task_outcome *ret)
{
    enum runner_mode mode = t->mode;
    t->mode = live ? RUN_FOLLOW : RUN_FINISH;
    bool have;
    if (live) {
        running(t);
        /* Given up (cancel, walltime): follow() stops the container. */
        if (open_outputs(t, NULL) >= 0)
            start_logs(t);
        have = follow(t, false) && finish(t, ret);
    } else
        have = finish(t, ret);
    t->mode = mode;
    return have;
}

static void run_task(struct dtask *t)
{
    struct task_outcome o;
    bool have = false;
    if (t->task->tes && (t->mode == RUN_START || t->tes_resume)) {
        docker_tes_run(t);
        return;
    }
    if (t->mode == RUN_START)
        have = runner_container(t, &o);
    else
        have = runner_follow(t, t->mode == RUN_FOLLOW, &o);
    if (!have)
        return;
    runner_report(t, &o);
    task_outcome_done(&o);
}

/* ---- the threads ---- */

/* Runner threads outlive their task and take the next one launched, up
 * to RUNNERS_IDLE_MAX of them idle: a thread's start and exit cost more
 * than most of what it does for a short task. */
#define RUNNERS_IDLE_MAX 8

static void *runner_main(void *arg)
{
    struct docker_state *ds = arg;
    (void) pthread_setname_np(pthread_self(), "ocps-dk-runner");
    pthread_mutex_lock(&ds->lock);
    for (;;) {
        while (!ds->work_head && !atomic_load(&ds->stopping)) {
            ds->n_idle++;
            pthread_cond_wait(&ds->work, &ds->lock);
            ds->n_idle--;
        }
        if (atomic_load(&ds->stopping))
            break; /* what is queued never started: the next daemon starts it */
        struct dtask *t = ds->work_head;
        ds->work_head = t->work_next;
        if (!ds->work_head)
            ds->work_tail = NULL;
        ds->n_work--;
        pthread_mutex_unlock(&ds->lock);
        run_task(t);
        pthread_mutex_lock(&ds->lock);
        /* Its end reported, the container waits for the store to have it
         * (release); a stopping daemon leaves it to the next one. */
        while (t->did.reported && !t->released && !atomic_load(&ds->stopping))
            pthread_cond_wait(&ds->release, &ds->lock);
        if (t->released) {
            /* release() unlinked it: it is the runner's alone. */
            pthread_mutex_unlock(&ds->lock);
            if (t->did.reported)
                runner_remove_container(t);
            dtask_free(t);
            pthread_mutex_lock(&ds->lock);
        } else {
            t->done = true;
            pthread_cond_broadcast(&ds->runner_done);
        }
        if (ds->n_idle >= RUNNERS_IDLE_MAX)
            break;
    }
    ds->n_runners--;
    pthread_cond_broadcast(&ds->runner_done);
    pthread_mutex_unlock(&ds->lock);
    return NULL;
}

int docker_runner_launch(struct docker_state *ds, struct dtask *t, struct error *err)
{
    pthread_mutex_lock(&ds->lock);
    /* A new runner when every idle one has work already. It cannot take
     * anything before we let go of the lock, so t is queued after it exists
     * and a failure has nothing to undo. */
    bool spawn = ds->n_work + 1 > ds->n_idle;
    if (spawn) {
        pthread_attr_t a;
        pthread_t thread;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&thread, &a, runner_main, ds);
        pthread_attr_destroy(&a);
        if (r != 0) {
            pthread_mutex_unlock(&ds->lock);
            dtask_free(t);
            return error_set_errno(err, -r, "cannot start a runner thread");
        }
        ds->n_runners++;
    }
    t->next = ds->tasks;
    ds->tasks = t;
    if (ds->work_tail)
        ds->work_tail->work_next = t;
    else
        ds->work_head = t;
    ds->work_tail = t;
    ds->n_work++;
    if (!spawn)
        pthread_cond_signal(&ds->work);
    pthread_mutex_unlock(&ds->lock);
    return 0;
}
