/*
 * process: the daemon's side of the process backend.
 *
 * start() makes the task's cgroup with its limits, writes the shim's spec
 * and spawns one ocps-shim, which takes <task_dir>/shim.lock first thing,
 * with PR_SET_PDEATHSIG until it has written its pid,
 * so that after a crash "lock held" always means "shim alive, pid known"
 * and "no lock file" means "never started". One monitor thread polls the
 * shims' pidfds and status pipes (no timers, no polling loops) and
 * reports running() and ended() to the supervisor. recover() reattaches
 * by pidfd to shims started by an earlier daemon.
 */
#include "process.h"
#include "cgroup.h"
#include "confine.h"
#include "shim.h"
#include "util/log.h"

#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define OCPS_P_PIDFD ((idtype_t) 3) /* <linux/wait.h>; glibc 2.36 lacks it */

struct ptask {
    char *id;
    char *task_dir;
    pid_t pid;
    int pidfd;
    int status_fd; /* -1 after a restart or once closed */
    bool child;    /* ours to reap */
    bool cancel_requested;
    struct ptask *next;
};

struct process_state {
    const struct config *cfg;
    struct backend_listener listener;
    struct cgroup parent;
    char *cgroup_error; /* why there are no cgroups (tasks are refused) */
    char *shim_path;

    pthread_mutex_t lock;
    struct ptask *tasks;
    int wake_fd;
    bool stop;
    pthread_t thread;
    bool thread_started;
};

static struct ptask *ptask_free(struct ptask *t)
{
    if (!t)
        return NULL;
    if (t->pidfd >= 0)
        close(t->pidfd);
    if (t->status_fd >= 0)
        close(t->status_fd);
    free(t->id);
    free(t->task_dir);
    free(t);
    return NULL;
}

static void wake(struct process_state *ps)
{
    uint64_t one = 1;
    (void) !write(ps->wake_fd, &one, sizeof(one));
}

static void add_task(struct process_state *ps, struct ptask *t)
{
    pthread_mutex_lock(&ps->lock);
    t->next = ps->tasks;
    ps->tasks = t;
    pthread_mutex_unlock(&ps->lock);
    wake(ps);
}

/* ---- monitor thread ------------------------------------------------------------------------ */

static void report_end(struct process_state *ps, struct ptask *t)
{
    struct task_outcome o;
    int r = task_outcome_read(t->task_dir, &o);
    if (r < 0) {
        /* The shim died without a word (killed by someone): make sure nothing of the
         * task outlives it, then say what we know. */
        struct cgroup cg;
        cgroup_child(&ps->parent, t->id, &cg);
        if (!ps->cgroup_error)
            (void) cgroup_kill(&cg);
        cgroup_done(&cg);
        usec_t started = 0;
        (void) shim_read_started(t->task_dir, &started);
        o = (struct task_outcome){
            .state = t->cancel_requested ? TASK_CANCELED : TASK_SYSTEM_ERROR,
            .exit_code = -1,
            .reason =
                xstrdup(t->cancel_requested ? "cancelled by request"
                                            : "the task's shim ended without recording an outcome "
                                              "(see its system log: logs?stream=system)"),
            .started = started,
            .finished = now_realtime(),
        };
    }
    ps->listener.ended(ps->listener.userdata, t->id, &o);
    free((char *) o.reason);
}

static void read_status(struct process_state *ps, struct ptask *t)
{
    char buf[128];
    ssize_t n = read(t->status_fd, buf, sizeof(buf) - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        close(t->status_fd);
        t->status_fd = -1;
        return;
    }
    buf[n] = '\0';
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] == 'R' && line[1] == ' ')
            ps->listener.running(ps->listener.userdata, t->id,
                                 (usec_t) strtoll(line + 2, NULL, 10));
}

static void *monitor(void *userdata)
{
    struct process_state *ps = userdata;
    (void) pthread_setname_np(pthread_self(), "ocps-proc-mon");
    _cleanup_free_ struct pollfd *pfd = NULL;
    _cleanup_free_ struct ptask **owner = NULL;
    size_t n_alloc = 0;

    for (;;) {
        size_t n = 0;

        pthread_mutex_lock(&ps->lock);
        if (ps->stop) {
            pthread_mutex_unlock(&ps->lock);
            break;
        }
        size_t need = 1;
        for (struct ptask *t = ps->tasks; t; t = t->next)
            need += 2;
        if (need > n_alloc) {
            size_t a = n_alloc;
            pfd = xgrow(pfd, &a, need, sizeof(*pfd));
            owner = xgrow(owner, &n_alloc, need, sizeof(*owner));
        }
        pfd[n] = (struct pollfd){ps->wake_fd, POLLIN, 0};
        owner[n++] = NULL;
        /* Status pipes first, so "running" is reported before "ended". */
        for (struct ptask *t = ps->tasks; t; t = t->next)
            if (t->status_fd >= 0) {
                pfd[n] = (struct pollfd){t->status_fd, POLLIN, 0};
                owner[n++] = t;
            }
        size_t first_pidfd = n;
        for (struct ptask *t = ps->tasks; t; t = t->next) {
            pfd[n] = (struct pollfd){t->pidfd, POLLIN, 0};
            owner[n++] = t;
        }
        pthread_mutex_unlock(&ps->lock);

        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("process backend: poll: %m");
            break;
        }
        if (pfd[0].revents) {
            uint64_t v;
            (void) !read(ps->wake_fd, &v, sizeof(v));
        }
        /* Only this thread removes tasks, so the pointers stay valid. */
        for (size_t i = 1; i < first_pidfd; i++)
            if (pfd[i].revents)
                read_status(ps, owner[i]);
        for (size_t i = first_pidfd; i < n; i++) {
            struct ptask *t = owner[i];
            if (!pfd[i].revents)
                continue;
            if (t->status_fd >= 0) /* a last "running" may still be in the pipe */
                read_status(ps, t);
            if (t->child) {
                siginfo_t si;
                (void) waitid(OCPS_P_PIDFD, (id_t) t->pidfd, &si, WEXITED);
            }
            pthread_mutex_lock(&ps->lock);
            for (struct ptask **p = &ps->tasks; *p; p = &(*p)->next)
                if (*p == t) {
                    *p = t->next;
                    break;
                }
            pthread_mutex_unlock(&ps->lock);
            report_end(ps, t);
            ptask_free(t);
        }
    }
    return NULL;
}

/* ---- backend slots ------------------------------------------------------------------------- */

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
        wake(ps);
        pthread_join(ps->thread, NULL);
    }
    /* The shims keep running; a restarted daemon recovers them. */
    while (ps->tasks) {
        struct ptask *t = ps->tasks;
        ps->tasks = t->next;
        ptask_free(t);
    }
    if (ps->wake_fd >= 0)
        close(ps->wake_fd);
    cgroup_done(&ps->parent);
    free(ps->cgroup_error);
    free(ps->shim_path);
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
        int r = error_set_errno(err, -errno, "eventfd");
        process_free(ps);
        return r;
    }
    int r = pthread_create(&ps->thread, NULL, monitor, ps);
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
    return t->container == NULL;
}

static int process_check(void *state, const struct task *t, struct error *err)
{
    struct process_state *ps = state;
    struct confine_user u;
    int r = confine_user_lookup(t->user, ps->cfg->allow_root, ps->cfg->denied_users, &u, err);
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
    cJSON_AddItemToObject(j, "cgroup", cgroup_to_cjson(cg));
    return j;
}

static void unlink_in(const char *dir, const char *name)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
    (void) unlink(p);
}

/* Writes the spec and spawns the shim; the task is then the monitor's. */
static int spawn_shim(struct process_state *ps, const struct backend_start *s,
                      const struct confine_user *u, const struct cgroup *cg, char **ret_handle,
                      struct error *err)
{
    cJSON *spec = build_spec(ps, s, u, cg);
    _cleanup_free_ char *text = cJSON_PrintUnformatted(spec);
    cJSON_Delete(spec);
    _cleanup_free_ char *spec_path = xasprintf("%s/shim.json", s->task_dir);
    int r = write_file_replace(spec_path, text, strlen(text), 0600);
    if (r < 0)
        return error_set_errno(err, r, "write %s", spec_path);
    /* A task restarted after it provably never ran leaves no traces to confuse us. */
    unlink_in(s->task_dir, "exit.json");
    unlink_in(s->task_dir, "started");
    unlink_in(s->task_dir, "shim.pid");

    _cleanup_free_ char *lock_path = xasprintf("%s/shim.lock", s->task_dir);
    _cleanup_free_ char *log_path = xasprintf("%s/system.log", s->task_dir);
    _cleanup_close_ int lockfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    _cleanup_close_ int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    _cleanup_close_ int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int status_r = -1;
    _cleanup_close_ int status_w = -1;
    int status[2];
    if (lockfd < 0 || logfd < 0 || nullfd < 0 || pipe2(status, O_CLOEXEC) < 0)
        return error_set_errno(err, -errno, "prepare the shim's files in %s", s->task_dir);
    status_r = status[0];
    status_w = status[1];
    char parent[24];
    snprintf(parent, sizeof(parent), "%d", (int) getpid());
    char *const argv[] = {"ocps-shim", (char *) s->task_dir, parent, NULL};

    /* posix_spawn (clone with CLONE_VM|CLONE_VFORK in glibc): a fork of the
     * threaded daemon would copy its page tables and then fault on every
     * page it touches, which costs more than the whole exec. The shim sets
     * its own PDEATHSIG, checks that `parent` is still its parent and takes
     * the lock on fd 4 before anything else. */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, ignored;
    sigemptyset(&none);
    sigemptyset(&ignored);
    sigaddset(&ignored, SIGPIPE); /* the daemon's only ignored signal; glibc resets handled ones */
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, nullfd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, logfd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, logfd, STDERR_FILENO);
    posix_spawn_file_actions_adddup2(&fa, status_w, SHIM_STATUS_FD);
    posix_spawn_file_actions_adddup2(&fa, lockfd, SHIM_LOCK_FD);
    posix_spawn_file_actions_addclosefrom_np(&fa, SHIM_LOCK_FD + 1);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &ignored);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    r = -posix_spawn(&pid, ps->shim_path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r < 0)
        return error_set_errno(err, r, "spawn %s", ps->shim_path);

    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0) {
        /* Cannot happen for our own unreaped child short of fd exhaustion. */
        r = error_set_errno(err, -errno, "pidfd_open");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return r;
    }
    struct ptask *t = xcalloc(1, sizeof(*t));
    t->id = xstrdup(s->id);
    t->task_dir = xstrdup(s->task_dir);
    t->pid = pid;
    t->pidfd = pidfd;
    t->child = true;
    t->status_fd = TAKE_FD(status_r);
    (void) fcntl(t->status_fd, F_SETFL, O_NONBLOCK);
    add_task(ps, t);
    *ret_handle = xasprintf("%d", pid);
    return 0;
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
    r = confine_user_lookup(s->task->user, ps->cfg->allow_root, ps->cfg->denied_users, &u, err);
    if (r < 0)
        return r;

    cgroup_child(&ps->parent, s->id, &cg);
    struct cgroup_limits lim = {s->task->memory, s->task->cores, ps->cfg->pids_limit};
    r = cgroup_create(&cg, &lim, err);
    if (r < 0)
        error_wrap(err, "cgroup");
    else
        r = spawn_shim(ps, s, &u, &cg, ret_handle, err);
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
    for (struct ptask *t = ps->tasks; t; t = t->next)
        if (streq(t->id, id)) {
            t->cancel_requested = true;
            /* The shim turns SIGTERM into "SIGTERM the tree, SIGKILL after the grace". */
            if (pidfd_send_signal(t->pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
                r = -errno;
            else
                r = 0;
            break;
        }
    pthread_mutex_unlock(&ps->lock);
    if (r == -ENOENT)
        return error_set(err, r, "task %s has no shim", id);
    if (r < 0)
        return error_set_errno(err, r, "signal the shim of %s", id);
    return 0;
}

static int process_recover(void *state, const struct backend_start *s, const char *handle,
                           struct error *err)
{
    struct process_state *ps = state;
    _cleanup_free_ char *lock_path = xasprintf("%s/shim.lock", s->task_dir);
    _cleanup_close_ int lockfd = open(lock_path, O_RDWR | O_CLOEXEC);

    if (lockfd < 0) {
        if (errno == ENOENT)
            return -ENOENT; /* no shim was ever started */
        return error_set_errno(err, -errno, "open %s", lock_path);
    }
    if (flock(lockfd, LOCK_EX | LOCK_NB) == 0) {
        /* Nobody holds it: the shim is gone. */
        struct task_outcome o;
        if (task_outcome_read(s->task_dir, &o) >= 0) {
            ps->listener.ended(ps->listener.userdata, s->id, &o);
            free((char *) o.reason);
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
        if (shim_read_started(s->task_dir, &started) < 0) {
            /* Its command never ran (the shim died before exec): safe to start again. */
            unlink(lock_path);
            return -ENOENT;
        }
        o = (struct task_outcome){
            .state = TASK_SYSTEM_ERROR,
            .exit_code = -1,
            .reason = "the task's shim ended without recording an outcome",
            .started = started,
            .finished = now_realtime(),
        };
        ps->listener.ended(ps->listener.userdata, s->id, &o);
        return 0;
    }
    if (errno != EWOULDBLOCK)
        return error_set_errno(err, -errno, "flock %s", lock_path);

    /* Held: a live shim, which wrote its pid before it could outlive its daemon. */
    _cleanup_free_ char *pid_path = xasprintf("%s/shim.pid", s->task_dir);
    _cleanup_free_ char *data = NULL;
    int r = -ENOENT;
    /* The shim writes it right after it starts; the daemon's death may have met it there. */
    for (int i = 0; i < 200 && r == -ENOENT; i++) {
        r = read_file(pid_path, 32, &data, NULL);
        if (r == -ENOENT)
            usleep(10000);
    }
    if (r < 0)
        return error_set_errno(err, r, "read %s", pid_path);
    pid_t pid = (pid_t) strtol(data, NULL, 10);
    int pidfd = pid > 0 ? pidfd_open(pid, 0) : -1;
    if (pidfd < 0)
        return error_set_errno(err, -errno, "pidfd_open %d", pid);

    struct ptask *t = xcalloc(1, sizeof(*t));
    t->id = xstrdup(s->id);
    t->task_dir = xstrdup(s->task_dir);
    t->pid = pid;
    t->pidfd = pidfd;
    t->status_fd = -1;
    t->child = false;
    usec_t started;
    if (shim_read_started(s->task_dir, &started) >= 0)
        ps->listener.running(ps->listener.userdata, s->id, started);
    add_task(ps, t);
    return 0;
}

static void process_release(void *state, const char *id, const char *handle)
{
    struct process_state *ps = state;
    struct cgroup cg;

    if (ps->cgroup_error)
        return;
    cgroup_child(&ps->parent, id, &cg);
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
