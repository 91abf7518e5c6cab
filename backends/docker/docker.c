/*
 * docker: the Docker backend's slots (backend.h). Tasks with a container
 * run as Docker containers through the Engine API (engine.h); the parts
 * are listed in docker-internal.h. Here: checking a task at submit,
 * handing it to a runner thread (runner.c) at start, cancel, recovery
 * after a daemon restart, release, and the task record they share.
 *
 * After a daemon restart recover() finds each task's container by name
 * and label and a runner follows it as it would have; the outcome file
 * makes "the container is gone" unambiguous. The backend only ever
 * touches containers that carry its instance label.
 */
#include "docker.h"
#include "docker-internal.h"
#include "layout.h"
#include "tes.h"
#include "util/json.h"
#include "util/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

/* ---- the task record ---- */

void dtask_free(struct dtask *t)
{
    if (!t)
        return;
    free(t->container);
    task_free(t->task);
    free(t->task_dir);
    free(t->out_path);
    free(t->err_path);
    free(t->port_address);
    free(t->did.start_error);
    confine_user_done(&t->user);
    closep(&t->cancel_fd);
    closep(&t->wall_fd);
    closep(&t->syslog_fd);
    closep(&t->out_fd);
    closep(&t->err_fd);
    engine_group_free(t->group);
    free(t);
}

struct dtask *docker_find(struct docker_state *ds, const char *id)
{
    for (struct dtask *t = ds->tasks; t; t = t->next)
        if (streq(t->id, id))
            return t;
    return NULL;
}

void dtask_syslog(const struct dtask *t, const char *fmt, ...)
{
    char ts[32];
    va_list ap;
    if (t->syslog_fd < 0)
        return;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    _cleanup_free_ char *line =
        xasprintf("%s %s\n", format_rfc3339(now_realtime(), ts), msg ? msg : "");
    (void) loop_write(t->syslog_fd, line, strlen(line));
}

usec_t docker_time(const char *s)
{
    usec_t t;
    if (!s || startswith(s, "0001-") || parse_rfc3339(s, &t) < 0)
        return 0;
    return t;
}

int docker_delete_container(struct docker_state *ds, const char *container, struct error *err)
{
    _cleanup_free_ char *path = xasprintf("/containers/%s?force=1&v=1", container);
    return engine_call(ds->engine, "DELETE", path, NULL, NULL, err);
}

int docker_delete_task_containers(struct docker_state *ds, const char *id)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *filter = xasprintf("{\"label\":[\"%s=%s\",\"%s=%s\"]}", LABEL_INSTANCE,
                                            ds->instance, LABEL_TASK, id);
    _cleanup_free_ char *esc = rest_escape(filter);
    _cleanup_free_ char *path = xasprintf("/containers/json?all=1&filters=%s", esc);
    cJSON *list = NULL;
    int st = engine_call(ds->engine, "GET", path, NULL, &list, &err);
    int last = st == 200 ? 404 : st;
    if (st == 200) {
        const cJSON *c;
        cJSON_ArrayForEach(c, list)
        {
            const char *cid = json_str(c, "Id");
            if (cid)
                last = docker_delete_container(ds, cid, &err);
        }
    }
    cJSON_Delete(list);
    return last;
}

int docker_delete_recorded(struct docker_state *ds, const char *task_dir, const char *id)
{
    _cleanup_free_ char *outcome = layout_in_task_dir(task_dir, LAYOUT_OUTCOME);
    int r = fsync_path(outcome);
    if (r < 0 || ds->cfg->docker_keep_containers)
        return r < 0 ? r : 0; /* kept */
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *name = xasprintf("ocps-%s", id);
    int st = docker_delete_container(ds, name, &err);
    /* A TES task's containers are ocps-<id>-<n>: found by their label. */
    return st == 404 ? docker_delete_task_containers(ds, id) : st;
}

/* ---- files as the task's user ---- */

/* The task's own output paths are opened as its user (a request must not
 * write where its user may not); the defaults under the data dir by us,
 * and given to the user (the directory stays ours). */
static int open_output(struct dtask *t, const char *path, bool user_path, int flags, int *ret_fd)
{
    if (user_path) {
        struct user_ids ids;
        int fds[3];
        size_t n = dtask_abort_fds(t, fds);
        fds[n++] = t->ds->shutdown_fd;
        return as_user_open(confine_ids(&t->user, &ids), path, flags, 0640, fds, n, ret_fd);
    }
    int fd = open(path, flags | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        return -errno;
    if (t->ds->root && fchown(fd, t->user.uid, t->user.gid) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    *ret_fd = fd;
    return 0;
}

int dtask_open_output(struct dtask *t, const char *path, bool user_path, int *ret_fd)
{
    return open_output(t, path, user_path, O_WRONLY | O_CREAT | O_TRUNC, ret_fd);
}

int dtask_reopen_output(struct dtask *t, const char *path, bool user_path, off_t keep, int *ret_fd)
{
    int fd = -1;
    int r = open_output(t, path, user_path, O_WRONLY | O_CREAT, &fd);
    if (r < 0)
        return r;
    /* What the executor that was running wrote is written again whole
     * from dockerd's copy: cut back to where it began. */
    if (ftruncate(fd, keep) < 0 || lseek(fd, keep, SEEK_SET) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    *ret_fd = fd;
    return 0;
}

/* ---- backend slots ---- */

static int docker_init(const struct config *cfg, const struct backend_listener *l, void **ret_state,
                       struct error *err)
{
    struct docker_state *ds = xcalloc(1, sizeof(*ds));
    ds->cfg = cfg;
    ds->listener = *l;
    ds->root = geteuid() == 0;
    pthread_mutex_init(&ds->lock, NULL);
    pthread_cond_init(&ds->back, NULL);
    pthread_cond_init(&ds->event, NULL);
    pthread_cond_init(&ds->work, NULL);
    pthread_cond_init(&ds->runner_done, NULL);
    pthread_cond_init(&ds->release, NULL);
    ds->shutdown_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ds->shutdown_fd < 0) {
        int r = error_set_errno(err, -errno, "eventfd");
        free(ds);
        return r;
    }
    int r = engine_new(cfg->docker_socket, &ds->engine, err);
    if (r < 0) {
        close(ds->shutdown_fd);
        free(ds);
        return r;
    }
    /* Every Engine call, short or long, ends when the daemon stops. */
    (void) engine_add_abort_fd(ds->engine, ds->shutdown_fd);
    if (cfg->docker_instance)
        ds->instance = xstrdup(cfg->docker_instance);
    else {
        /* Stable per data dir: two proxies on one host never share containers. */
        uint64_t h = 1469598103934665603ULL;
        for (const char *c = cfg->data_dir; *c; c++)
            h = (h ^ (unsigned char) *c) * 1099511628211ULL;
        ds->instance = xasprintf("%016" PRIx64, h);
    }
    log_info("docker backend: dockerd at %s, instance %s (connects on the first container task)",
             engine_socket(ds->engine), ds->instance);
    *ret_state = ds;
    return 0;
}

static void docker_free(void *state)
{
    struct docker_state *ds = state;
    if (!ds)
        return;
    /* Runners let go of their containers (which keep running and are
     * recovered by the next daemon) and end; the shutdown fd cuts their
     * Engine calls short. */
    atomic_store(&ds->stopping, true);
    (void) eventfd_write(ds->shutdown_fd, 1);
    pthread_mutex_lock(&ds->lock);
    struct dtask *list = ds->tasks;
    ds->tasks = NULL;
    pthread_cond_broadcast(&ds->back);
    pthread_cond_broadcast(&ds->event);
    pthread_cond_broadcast(&ds->work);
    pthread_cond_broadcast(&ds->release);
    while (ds->n_runners > 0)
        pthread_cond_wait(&ds->runner_done, &ds->lock);
    pthread_mutex_unlock(&ds->lock);
    if (ds->events_running)
        pthread_join(ds->events_thread, NULL);
    for (struct dtask *t = list, *n; t; t = n) {
        n = t->next;
        dtask_free(t);
    }
    closep(&ds->shutdown_fd);
    engine_free(ds->engine);
    free(ds->instance);
    pthread_cond_destroy(&ds->back);
    pthread_cond_destroy(&ds->event);
    pthread_cond_destroy(&ds->work);
    pthread_cond_destroy(&ds->runner_done);
    pthread_cond_destroy(&ds->release);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
}

static bool docker_handles(const struct task *t)
{
    return t->container != NULL;
}

static int lookup_user(struct docker_state *ds, const char *name, struct confine_user *ret,
                       struct error *err)
{
    /* Found accounts are kept a moment (lib/account.c): the policy's and
     * this check at submit, and the start, look it up once. */
    int r = confine_account_lookup(name, ret, err);
    if (r == -EINVAL) {
        /* No such account here: the container runs as nobody. */
        error_clear(err);
        *ret = (struct confine_user){.uid = NOBODY_ID, .gid = NOBODY_ID, .name = xstrdup(name)};
        r = 0;
    }
    /* change: host file access is checked as this account (needs root). */
    if (r >= 0)
        ret->change = ds->root;
    return r;
}

static int docker_check(void *state, const struct task *t, struct error *err)
{
    struct docker_state *ds = state;
    docker_events_connect(ds);
    struct image_ref ref;
    if (docker_image_ref_parse(t->container->image, &ref) < 0)
        return error_set(err, -EINVAL, "container.image: \"%s\" is not a valid image reference",
                         t->container->image);
    image_ref_done(&ref);
    /* A TES task's first executor is its container; the others too. */
    for (size_t i = 1; t->tes && i < t->tes->n_executors; i++) {
        const char *image = t->tes->executors[i].image;
        if (docker_image_ref_parse(image, &ref) < 0)
            return error_set(err, -EINVAL,
                             "executors[%zu].image: \"%s\" is not a valid image reference", i,
                             image);
        image_ref_done(&ref);
    }

    /* Who may be run as, and what may be mounted, the policy decided
     * (policy-check.h); this is the last line: never uid 0 or gid 0. */
    struct confine_user u;
    int r = lookup_user(ds, t->user, &u, err);
    if (r < 0)
        return r;
    confine_user_done(&u);

    /* A connected event stream says dockerd answers; otherwise ask it. */
    _cleanup_error_ struct error perr = ERROR_INIT;
    if (!ds->cfg->docker_queue_when_down && !atomic_load(&ds->connected) &&
        engine_ping(ds->engine, &perr) < 0)
        return error_set(err, -EREMOTEIO, "the container backend is unavailable: %s",
                         error_message(&perr));
    return 0;
}

static struct dtask *dtask_new(struct docker_state *ds, const struct backend_start *s,
                               enum runner_mode mode, struct error *err)
{
    struct dtask *t = xcalloc(1, sizeof(*t));
    t->ds = ds;
    t->cancel_fd = t->wall_fd = -1;
    t->out_fd = t->err_fd = -1;
    t->logs_call = -1;
    t->group = engine_group_new(ds->engine); /* its wait and logs calls, when it runs */
    snprintf(t->id, sizeof(t->id), "%s", s->id);
    snprintf(t->name, sizeof(t->name), "ocps-%s", s->id);
    t->task = task_copy(s->task);
    t->task_dir = xstrdup(s->task_dir);
    t->out_path = xstrdup(s->stdout_path);
    t->err_path = xstrdup(s->stderr_path);
    t->port_address = s->port_address ? xstrdup(s->port_address) : NULL;
    t->mode = mode;
    t->output_limit = s->output_limit;
    if (lookup_user(ds, s->task->user, &t->user, err) < 0) {
        dtask_free(t);
        return NULL;
    }
    /* The default output files (in the task's directory, the user's) exist
     * from the start, so that a client following the logs finds its file
     * at once instead of watching the directory for it. A file the task
     * named is opened by the runner, as its user. They come first: a
     * client that asked before the task started watches the directory, and
     * the first file made there is then the one it waits for, not the
     * system log (each file made there is a wake-up for it). */
    if (mode == RUN_START && !s->task->stdout_path)
        (void) dtask_open_output(t, t->out_path, false, &t->out_fd);
    if (mode == RUN_START && !s->task->stderr_path)
        (void) dtask_open_output(t, t->err_path, false, &t->err_fd);
    _cleanup_free_ char *log_path = layout_in_task_dir(s->task_dir, LAYOUT_SYSLOG);
    t->syslog_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    t->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->cancel_fd >= 0 && s->task->walltime)
        t->wall_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (t->cancel_fd < 0 || (s->task->walltime && t->wall_fd < 0)) {
        error_set_errno(err, -errno, "task %s: eventfd/timerfd", s->id);
        dtask_free(t);
        return NULL;
    }
    return t;
}

void dtask_arm_walltime(struct dtask *t, usec_t started)
{
    if (!t->task->walltime)
        return;
    usec_t limit = (usec_t) t->task->walltime * USEC_PER_SEC;
    usec_t used = started ? MAX(now_realtime() - started, 0) : 0;
    usec_t left = MAX(limit - used, 1);
    struct itimerspec its = {.it_value = {left / USEC_PER_SEC, (left % USEC_PER_SEC) * 1000}};
    (void) timerfd_settime(t->wall_fd, 0, &its, NULL);
}

static int docker_start(void *state, const struct backend_start *s, char **ret_handle,
                        struct error *err)
{
    struct docker_state *ds = state;
    docker_events_connect(ds);
    struct dtask *t = dtask_new(ds, s, RUN_START, err);
    if (!t)
        return err->code;
    /* From its admission: a pull, or an output file that blocks, counts. */
    dtask_arm_walltime(t, s->admitted);
    char *handle = xstrdup(t->name);
    int r = docker_runner_launch(ds, t, err);
    if (r < 0) {
        free(handle);
        return r;
    }
    *ret_handle = handle;
    return 0;
}

static int docker_cancel(void *state, const char *id, const char *handle, struct error *err)
{
    struct docker_state *ds = state;
    pthread_mutex_lock(&ds->lock);
    struct dtask *t = docker_find(ds, id);
    if (t) {
        t->cancel = true;
        (void) eventfd_write(t->cancel_fd, 1);
    }
    pthread_mutex_unlock(&ds->lock);
    if (!t)
        return error_set(err, -ENOENT, "task %s has no runner", id);
    return 0;
}

static int docker_recover(void *state, const struct backend_start *s, const char *handle,
                          struct error *err)
{
    struct docker_state *ds = state;
    docker_events_connect(ds);
    struct task_outcome o;

    /* Reported before the daemon went: the outcome stands. It is made
     * durable here, as the container, its other record, goes now. */
    if (task_outcome_read(s->task_dir, &o) >= 0) {
        ds->listener.ended(ds->listener.userdata, s->id, &o);
        task_outcome_done(&o);
        (void) docker_delete_recorded(ds, s->task_dir, s->id);
        return 0;
    }
    usec_t tes_started = 0;
    if (s->task->tes && docker_tes_began(s->task_dir, &tes_started) == -ENOENT)
        return -ENOENT; /* staging its inputs: it starts over */
    int r = engine_ping(ds->engine, err);
    if (r < 0)
        return error_wrap(err, "recover");
    if (s->task->tes) {
        /* Its runner finds where it was: tes-run.json, tes-log.json and
         * the executor's container (ocps-<id>-<n>). */
        struct dtask *t = dtask_new(ds, s, RUN_FOLLOW, err);
        if (!t)
            return err->code;
        t->tes_resume = true;
        t->started = tes_started;
        dtask_arm_walltime(t, tes_started);
        log_info("task %s: TES task resumed", s->id);
        return docker_runner_launch(ds, t, err);
    }

    struct dtask *t = dtask_new(ds, s, RUN_FOLLOW, err);
    if (!t)
        return err->code;
    cJSON *info = NULL;
    _cleanup_free_ char *path = xasprintf("/containers/%s/json", t->name);
    int st = engine_call(ds->engine, "GET", path, NULL, &info, err);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(info, "Config"), "Labels");
    const char *inst = json_str(labels, LABEL_INSTANCE), *tid = json_str(labels, LABEL_TASK);
    if (st == 404 ||
        (st == 200 && (!inst || !streq(inst, ds->instance) || !tid || !streq(tid, s->id)))) {
        /* No container of ours: it was never created (the image was being
         * pulled), so it never ran. */
        cJSON_Delete(info);
        dtask_free(t);
        error_clear(err);
        return -ENOENT;
    }
    if (st != 200) {
        cJSON_Delete(info);
        dtask_free(t);
        return st < 0 ? st : error_set(err, -EREMOTEIO, "inspect %s", path);
    }
    const char *cid = json_str(info, "Id");
    t->container = xstrdup(cid ? cid : t->name);
    const cJSON *cstate = cJSON_GetObjectItemCaseSensitive(info, "State");
    _cleanup_free_ char *status =
        json_str(cstate, "Status") ? xstrdup(json_str(cstate, "Status")) : NULL;
    t->started = docker_time(json_str(cstate, "StartedAt"));
    cJSON_Delete(info);

    if (status && streq(status, "created")) {
        /* Created but never started: safe to start from scratch. */
        (void) docker_delete_container(ds, t->container, err);
        error_clear(err);
        dtask_free(t);
        return -ENOENT;
    }
    bool live = status && (streq(status, "running") || streq(status, "paused") ||
                           streq(status, "restarting"));
    t->mode = live ? RUN_FOLLOW : RUN_FINISH;
    if (live)
        dtask_arm_walltime(t, t->started);
    log_info("task %s: container %.12s is %s", s->id, t->container, status ? status : "?");
    return docker_runner_launch(ds, t, err);
}

static void docker_release(void *state, const char *id, const char *handle)
{
    struct docker_state *ds = state;
    pthread_mutex_lock(&ds->lock);
    struct dtask *t = NULL;
    for (struct dtask **p = &ds->tasks; *p; p = &(*p)->next)
        if (streq((*p)->id, id)) {
            t = *p;
            *p = t->next;
            break;
        }
    /* The end is on disk: the runner removes the container (a call to
     * dockerd, not made on the supervisor's thread) and frees t. */
    bool gone = t && t->done;
    if (t && !gone) {
        t->released = true;
        pthread_cond_broadcast(&ds->release);
    }
    pthread_mutex_unlock(&ds->lock);
    if (gone)
        dtask_free(t);
}

/* dockerd answers /_ping (any thread: the engine's calls are). A host
 * without Docker, where nothing named a socket (docker.socket,
 * $DOCKER_HOST) and the default one does not exist, runs command tasks
 * only and is ready: the backend is not in use there. */
static int docker_ready(void *state, struct error *err)
{
    struct docker_state *ds = state;
    bool named = ds->cfg->docker_socket || !isempty(getenv("DOCKER_HOST"));
    if (!named && access(engine_socket(ds->engine), F_OK) < 0 && errno == ENOENT)
        return 0;
    return engine_ping(ds->engine, err);
}

const struct backend_ops docker_backend_ops = {
    .name = "docker",
    .init = docker_init,
    .free = docker_free,
    .handles = docker_handles,
    .check = docker_check,
    .start = docker_start,
    .cancel = docker_cancel,
    .recover = docker_recover,
    .release = docker_release,
    .ready = docker_ready,
};
