/*
 * process: the daemon's side of the process backend.
 *
 * start() makes the task's cgroup with its limits, writes the shim's spec
 * and hands the task to this daemon's ocps-shim (see shim.h), spawning it
 * first when there is none: one long-lived shim runs every task, so a
 * task costs one fork and one exec, as it would without us. After a
 * restart, recover() reconnects to the shims an earlier daemon started
 * (SHIM_DIR/<pid>.sock) and watches its tasks there. What the shims say
 * reaches the supervisor through process-shims.c's monitor thread.
 */
#include "process.h"
#include "confine.h"
#include "layout.h"
#include "process-internal.h"
#include "shim.h"
#include "tes.h"
#include "util/log.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

static char *find_shim(const struct config *cfg)
{
    if (cfg->shim_path)
        return xstrdup(cfg->shim_path);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        _cleanup_free_ char *p = xasprintf("%s/ocps-shim", dirname(self));
        if (access(p, X_OK) == 0)
            return TAKE_PTR(p);
    }
    return xstrdup(OCPS_LIBEXECDIR "/ocps-shim");
}

static void process_free(void *state)
{
    struct process_state *ps = state;
    if (!ps)
        return;
    if (ps->thread_started) {
        pthread_mutex_lock(&ps->lock);
        ps->stop = true;
        pthread_mutex_unlock(&ps->lock);
        process_wake(ps);
        pthread_join(ps->thread, NULL);
    }
    /* The shims keep running; a restarted daemon reconnects to them. Ours
     * sees us hang up and exits once its last task has ended. */
    while (ps->tasks) {
        struct ptask *t = ps->tasks;
        ps->tasks = t->next;
        ptask_free(t);
    }
    while (ps->shims) {
        struct shim_conn *c = ps->shims;
        ps->shims = c->next;
        close(c->fd);
        free(c);
    }
    if (ps->wake_fd >= 0)
        close(ps->wake_fd);
    cgroup_done(&ps->parent);
    free(ps->cgroup_error);
    free(ps->shim_path);
    free(ps->shim_dir);
    pthread_mutex_destroy(&ps->lock);
    free(ps);
}

static int process_init(const struct config *cfg, const struct backend_listener *l,
                        void **ret_state, struct error *err)
{
    struct process_state *ps = xcalloc(1, sizeof(*ps));
    struct error cgerr = ERROR_INIT;

    ps->cfg = cfg;
    ps->listener = *l;
    ps->wake_fd = -1;
    pthread_mutex_init(&ps->lock, NULL);
    ps->shim_path = find_shim(cfg);
    if (access(ps->shim_path, X_OK) < 0) {
        int r = error_set_errno(err, -errno, "the task shim %s is not executable", ps->shim_path);
        process_free(ps);
        return r;
    }
    ps->shim_dir = layout_shims(cfg->data_dir);
    ps->protocol = shim_protocol();
    int r = mkdir_p(ps->shim_dir, 0700);
    if (r < 0) {
        r = error_set_errno(err, r, "mkdir %s", ps->shim_dir);
        process_free(ps);
        return r;
    }
    shim_sockets_clean(ps->shim_dir);
    if (cgroup_parent_open(cfg->cgroup_name, &ps->parent, &cgerr) < 0) {
        /* Without a cgroup, memory and cores cannot be enforced: refuse tasks rather
         * than run them unconfined, but keep serving the API. */
        ps->cgroup_error = xstrdup(error_message(&cgerr));
        log_warn("process backend: no cgroups (%s); tasks will fail with SYSTEM_ERROR",
                 ps->cgroup_error);
        error_clear(&cgerr);
    } else {
        log_info("process backend: cgroup %s (%s), shim %s", ps->parent.dir[CG_MEMORY],
                 ps->parent.v2 ? "v2" : "v1", ps->shim_path);
    }
    ps->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ps->wake_fd < 0) {
        r = error_set_errno(err, -errno, "eventfd");
        process_free(ps);
        return r;
    }
    r = pthread_create(&ps->thread, NULL, process_monitor, ps);
    if (r != 0) {
        r = error_set_errno(err, -r, "start the process monitor");
        process_free(ps);
        return r;
    }
    ps->thread_started = true;
    *ret_state = ps;
    return 0;
}

static bool process_handles(const struct task *t)
{
    /* A TES task with more than one container's worth (tes.h) needs the
     * docker backend's runner, whatever else it is. */
    if (t->tes && tes_task_needs_runner(t->tes))
        return false;
    return t->container == NULL;
}

static int process_check(void *state, const struct task *t, struct error *err)
{
    struct confine_user u;
    int r = confine_user_lookup(t->user, &u, err);
    if (r < 0)
        return r;
    confine_user_done(&u);
    return 0;
}

static void env_set(cJSON *env, const char *key, const char *value)
{
    size_t kl = strlen(key);
    cJSON *e;
    cJSON_ArrayForEach(e,
                       env) if (strncmp(e->valuestring, key, kl) == 0 && e->valuestring[kl] == '=')
    {
        cJSON_SetValuestring(e, "");
        _cleanup_free_ char *kv = xasprintf("%s=%s", key, value);
        cJSON_ReplaceItemViaPointer(env, e, cJSON_CreateString(kv));
        return;
    }
    _cleanup_free_ char *kv = xasprintf("%s=%s", key, value);
    cJSON_AddItemToArray(env, cJSON_CreateString(kv));
}

static cJSON *build_spec(struct process_state *ps, const struct backend_start *s,
                         const struct confine_user *u, const struct cgroup *cg)
{
    const struct task *t = s->task;
    cJSON *j = cJSON_CreateObject();

    cJSON_AddStringToObject(j, "id", s->id);
    cJSON *argv = cJSON_AddArrayToObject(j, "argv");
    if (t->cmd.shell) {
        cJSON_AddItemToArray(argv, cJSON_CreateString("/bin/sh"));
        cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    }
    STRV_FOREACH (a, t->cmd.argv)
        cJSON_AddItemToArray(argv, cJSON_CreateString(*a));

    /* What a login would set, then the task's own, then who we are (as Slurm does). */
    cJSON *env = cJSON_AddArrayToObject(j, "env");
    env_set(env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    env_set(env, "HOME", u->home);
    env_set(env, "USER", u->name);
    env_set(env, "LOGNAME", u->name);
    env_set(env, "SHELL", u->shell);
    for (size_t i = 0; i < t->n_env; i++)
        env_set(env, t->env[i].key, t->env[i].value);
    env_set(env, "OCPS_TASK_ID", s->id);

    const char *wd = t->workdir;
    struct stat st;
    if (!wd)
        wd = stat(u->home, &st) == 0 && S_ISDIR(st.st_mode) ? u->home : "/";
    cJSON_AddStringToObject(j, "workdir", wd);

    cJSON_AddBoolToObject(j, "change_user", u->change);
    cJSON_AddNumberToObject(j, "uid", u->uid);
    cJSON_AddNumberToObject(j, "gid", u->gid);
    cJSON *groups = cJSON_AddArrayToObject(j, "groups");
    for (int i = 0; i < u->n_groups; i++)
        cJSON_AddItemToArray(groups, cJSON_CreateNumber(u->groups[i]));

    cJSON_AddStringToObject(j, "stdout", s->stdout_path);
    cJSON_AddStringToObject(j, "stderr", s->stderr_path);
    cJSON_AddBoolToObject(j, "stdout_as_user", t->stdout_path != NULL);
    cJSON_AddBoolToObject(j, "stderr_as_user", t->stderr_path != NULL);
    cJSON_AddNumberToObject(j, "cputime", (double) t->cputime);
    cJSON_AddNumberToObject(j, "walltime", (double) t->walltime);
    cJSON_AddNumberToObject(j, "memory", (double) t->memory);
    cJSON_AddNumberToObject(j, "cores", t->cores);
    cJSON_AddNumberToObject(j, "kill_grace", ps->cfg->kill_grace);
    cJSON_AddNumberToObject(j, "output_limit", (double) s->output_limit);
    cJSON_AddNumberToObject(j, "admitted", (double) (s->admitted ? s->admitted : now_realtime()));
    cJSON_AddItemToObject(j, "cgroup", cgroup_to_cjson(cg));
    return j;
}

/* Hands the task to our shim, started first if there is none (or it died). */
static int hand_over(struct process_state *ps, const struct backend_start *s, const int fds[2],
                     char **ret_handle, struct error *err)
{
    _cleanup_free_ char *msg = xasprintf("S %s %s", s->id, s->task_dir);
    struct ptask *t = xcalloc(1, sizeof(*t));
    t->id = xstrdup(s->id);
    t->task_dir = xstrdup(s->task_dir);
    int spawned = 0, r;

    for (;;) {
        /* Only this thread makes connections; the monitor may drop one (and
         * clear ps->own) whenever we do not hold the lock. */
        pthread_mutex_lock(&ps->lock);
        struct shim_conn *c = ps->own;
        pid_t shim_pid = c ? c->pid : 0;
        pthread_mutex_unlock(&ps->lock);
        if (!c) {
            r = spawned++ < 2 ? shim_conn_spawn(ps, err)
                              : error_set(err, -EREMOTEIO, "the task shim keeps dying");
            if (r < 0)
                break;
            continue;
        }
        /* Before the lock leaves us: a daemon restarted after this finds the lock
         * held and the pid of the shim that holds it. */
        r = shim_lock_set_pid(fds[0], shim_pid);
        if (r < 0) {
            r = error_set_errno(err, r, "write %s/shim.lock", s->task_dir);
            break;
        }
        pthread_mutex_lock(&ps->lock);
        if (ps->own != c) {
            r = -EPIPE;
        } else {
            t->shim = c;
            t->next = ps->tasks;
            ps->tasks = t;
            r = shim_conn_send(c, msg, fds);
            if (r < 0) {
                ptask_unlink(ps, t);
                ps->own = NULL; /* the monitor hears it hang up */
            }
        }
        pthread_mutex_unlock(&ps->lock);
        if (r >= 0) {
            *ret_handle = xasprintf("%d", (int) shim_pid);
            return 0;
        }
        if (r == -ENAMETOOLONG) {
            r = error_set_errno(err, r, "hand the task to shim %d", (int) shim_pid);
            break;
        }
        log_warn("process backend: shim %d is gone (%s), starting another", (int) shim_pid,
                 strerror(-r));
    }
    ptask_free(t);
    return r;
}

/* Takes the task's lock and hands it to the shim with the spec. */
static int submit_to_shim(struct process_state *ps, const struct backend_start *s,
                          const struct confine_user *u, const struct cgroup *cg, char **ret_handle,
                          struct error *err)
{
    cJSON *spec = build_spec(ps, s, u, cg);
    _cleanup_free_ char *text = cJSON_PrintUnformatted(spec);
    cJSON_Delete(spec);
    /* In memory, not a file: one inode fewer per task on the data dir's disk. */
    _cleanup_close_ int spec_fd = memfd_create("ocps-spec", MFD_CLOEXEC);
    if (spec_fd < 0)
        return error_set_errno(err, -errno, "memfd_create");
    int r = loop_write(spec_fd, text, strlen(text));
    if (r < 0)
        return error_set_errno(err, r, "write the spec to a memfd");
    /* A task started again after it provably never ran (recover_unlocked) has
     * neither exit.json nor a shim.lock. */

    _cleanup_free_ char *lock_path = layout_in_task_dir(s->task_dir, LAYOUT_SHIM_LOCK);
    _cleanup_close_ int lockfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0)
        return error_set_errno(err, -errno, "open %s", lock_path);
    if (flock(lockfd, LOCK_EX | LOCK_NB) < 0)
        return error_set_errno(err, errno == EWOULDBLOCK ? -EBUSY : -errno,
                               "lock %s (is the task already running?)", lock_path);
    /* The shim now shares the locked file; ours closes on return. */
    int fds[2] = {lockfd, spec_fd};
    return hand_over(ps, s, fds, ret_handle, err);
}

static int process_start(void *state, const struct backend_start *s, char **ret_handle,
                         struct error *err)
{
    struct process_state *ps = state;
    struct confine_user u;
    struct cgroup cg = {0};
    int r;

    if (ps->cgroup_error)
        return error_set(err, -EREMOTEIO,
                         "the process backend has no cgroups, so limits cannot be enforced: %s",
                         ps->cgroup_error);
    r = confine_user_lookup(s->task->user, &u, err);
    if (r < 0)
        return r;

    cgroup_child(&ps->parent, s->id, &cg);
    struct cgroup_limits lim = {s->task->memory, s->task->cores, ps->cfg->pids_limit,
                                .cpu_usage = s->task->cputime > 0};
    r = cgroup_create(&cg, &lim, err);
    if (r < 0)
        error_wrap(err, "cgroup");
    else
        r = submit_to_shim(ps, s, &u, &cg, ret_handle, err);
    if (r < 0)
        (void) cgroup_destroy(&cg);
    cgroup_done(&cg);
    confine_user_done(&u);
    return r;
}

static int process_cancel(void *state, const char *id, const char *handle, struct error *err)
{
    struct process_state *ps = state;
    int r = -ENOENT;

    pthread_mutex_lock(&ps->lock);
    struct ptask *t = ptask_find(ps, id, NULL);
    if (t) {
        t->cancel_requested = true;
        /* The shim SIGTERMs the tree, and SIGKILLs it after the grace period. */
        _cleanup_free_ char *msg = xasprintf("C %s", id);
        r = shim_conn_send(t->shim, msg, NULL);
        if (r == -EPIPE)
            r = 0; /* the shim is gone: its tasks end now, as cancelled */
    }
    pthread_mutex_unlock(&ps->lock);
    if (r == -ENOENT) /* its end has been reported (see backend.h) */
        return error_set(err, r, "task %s has ended", id);
    if (r < 0)
        return error_set_errno(err, r, "ask the shim to cancel %s", id);
    return 0;
}

/* The lock is free: the task ended (or never ran) while no daemon watched. */
static int recover_unlocked(struct process_state *ps, const struct backend_start *s,
                            const char *lock_path)
{
    struct task_outcome o;
    if (task_outcome_read(s->task_dir, &o) >= 0) {
        ps->listener.ended(ps->listener.userdata, s->id, &o);
        task_outcome_done(&o);
        return 0;
    }
    usec_t started;
    struct cgroup cg;
    cgroup_child(&ps->parent, s->id, &cg);
    if (!ps->cgroup_error) {
        (void) cgroup_kill(&cg);
        (void) cgroup_destroy(&cg);
    }
    cgroup_done(&cg);
    if (shim_read_started(s->task_dir, &started) == -ENOENT) {
        /* Its command never ran (the daemon died before the shim had the lock): safe
         * to start again. */
        unlink(lock_path);
        return -ENOENT;
    }
    outcome_classify(&(struct outcome_facts){.system_error = SHIM_LOST_REASON,
                                             .exit_code = -1,
                                             .started = started},
                     &o);
    ps->listener.ended(ps->listener.userdata, s->id, &o);
    task_outcome_done(&o);
    return 0;
}

static int process_recover(void *state, const struct backend_start *s, const char *handle,
                           struct error *err)
{
    struct process_state *ps = state;
    _cleanup_free_ char *lock_path = layout_in_task_dir(s->task_dir, LAYOUT_SHIM_LOCK);
    _cleanup_close_ int lockfd = open(lock_path, O_RDWR | O_CLOEXEC);

    if (lockfd < 0) {
        if (errno == ENOENT)
            return -ENOENT; /* no shim was ever asked */
        return error_set_errno(err, -errno, "open %s", lock_path);
    }
    if (flock(lockfd, LOCK_EX | LOCK_NB) == 0)
        return recover_unlocked(ps, s, lock_path);
    if (errno != EWOULDBLOCK)
        return error_set_errno(err, -errno, "flock %s", lock_path);

    /* Held: by a live shim, whose pid was written before it got the lock. */
    pid_t pid = 0;
    int r = shim_read_pid(s->task_dir, &pid);
    if (r < 0)
        return error_set_errno(err, r, "read the shim's pid from %s", lock_path);
    struct ptask *t = xcalloc(1, sizeof(*t));
    t->id = xstrdup(s->id);
    t->task_dir = xstrdup(s->task_dir);
    r = shim_conn_watch(ps, pid, t);
    if (r >= 0)
        return 0;
    ptask_free(t);
    /* It may have ended the task and exited in between. */
    if (flock(lockfd, LOCK_EX | LOCK_NB) == 0)
        return recover_unlocked(ps, s, lock_path);
    return error_set_errno(err, r, "connect to shim %d", (int) pid);
}

static void process_release(void *state, const char *id, const char *handle)
{
    struct process_state *ps = state;
    struct cgroup cg;

    if (ps->cgroup_error)
        return;
    cgroup_child(&ps->parent, id, &cg);
    /* Normally the shim has removed it, memory first (its rmdir succeeds only
     * once the group is empty in every hierarchy): one look, not five rmdirs
     * per task. What a lost shim or an unreadable spec left is removed here. */
    if (cg.dir[CG_MEMORY] && access(cg.dir[CG_MEMORY], F_OK) < 0 && errno == ENOENT) {
        cgroup_done(&cg);
        return;
    }
    if (cgroup_destroy(&cg) == -EBUSY) {
        (void) cgroup_kill(&cg);
        (void) cgroup_destroy(&cg);
    }
    cgroup_done(&cg);
}

const struct backend_ops process_backend_ops = {
    .name = "process",
    .init = process_init,
    .free = process_free,
    .handles = process_handles,
    .check = process_check,
    .start = process_start,
    .cancel = process_cancel,
    .recover = process_recover,
    .release = process_release,
};
