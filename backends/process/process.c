/*
 * process: the daemon's side of the process backend.
 *
 * start() makes the task's cgroup with its limits, writes the shim's spec
 * and hands the task to this daemon's ocps-shim (see shim.h), spawning it
 * first when there is none: one long-lived shim runs every task, so a
 * task costs one fork and one exec, as it would without us. One monitor
 * thread reads the shims' messages ("R" running, "E" ended; no timers, no
 * polling) and reports running() and ended() to the supervisor. After a
 * restart, recover() reconnects to the shims an earlier daemon started
 * (SHIM_DIR/<pid>.sock) and watches its tasks there.
 */
#include "process.h"
#include "cgroup.h"
#include "confine.h"
#include "layout.h"
#include "shim.h"
#include "util/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* A task whose shim ended (killed from outside) before it wrote exit.json. */
#define SHIM_LOST_REASON                                                                           \
    "the task's shim ended without recording an outcome (see its system log: "                     \
    "logs?stream=system)"

/* One connection to a shim. */
struct shim_conn {
    pid_t pid;
    int fd;
    bool child; /* we spawned it: ours to reap */
    bool dead;  /* hung up; the monitor frees it */
    struct shim_conn *next;
};

struct ptask {
    char *id;
    char *task_dir;
    struct shim_conn *shim;
    bool cancel_requested;
    struct ptask *next;
};

struct process_state {
    const struct config *cfg;
    struct backend_listener listener;
    struct cgroup parent;
    char *cgroup_error; /* why there are no cgroups (tasks are refused) */
    char *shim_path;
    char *shim_dir; /* <data_dir>/shims: the shims' sockets and log */

    pthread_mutex_t lock; /* tasks, shims, own, stop; sends to shims */
    struct ptask *tasks;
    struct shim_conn *shims;
    struct shim_conn *own; /* where new tasks go; NULL until needed, or after it died */
    int wake_fd;
    bool stop;
    pthread_t thread;
    bool thread_started;
};

static struct ptask *ptask_free(struct ptask *t)
{
    if (!t)
        return NULL;
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

/* Under ps->lock. */
static struct ptask *task_find(struct process_state *ps, const char *id, struct shim_conn *shim)
{
    for (struct ptask *t = ps->tasks; t; t = t->next)
        if (streq(t->id, id) && (!shim || t->shim == shim))
            return t;
    return NULL;
}

/* Under ps->lock. */
static void task_unlink(struct process_state *ps, struct ptask *t)
{
    for (struct ptask **p = &ps->tasks; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            return;
        }
}

/* One message to a shim, with NULL or two fds to pass along (SCM_RIGHTS).
 * Under ps->lock. */
static int shim_send(struct shim_conn *c, const char *text, const int fds[2])
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl = {0};
    struct iovec iov = {(void *) text, strlen(text)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (c->dead)
        return -EPIPE;
    if (iov.iov_len > SHIM_MSG_MAX)
        return -ENAMETOOLONG;
    if (fds) {
        mh.msg_control = &ctl;
        mh.msg_controllen = sizeof(ctl);
        struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(2 * sizeof(int));
        memcpy(CMSG_DATA(h), fds, 2 * sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
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
        outcome_classify(&(struct outcome_facts){.canceled = t->cancel_requested,
                                                 .system_error = SHIM_LOST_REASON,
                                                 .exit_code = -1,
                                                 .started = started},
                         &o);
    }
    ps->listener.ended(ps->listener.userdata, t->id, &o);
    task_outcome_done(&o);
}

/* The shim is gone: every task it had ends with what it recorded, or as lost. */
static void shim_lost(struct process_state *ps, struct shim_conn *c)
{
    struct ptask *orphans = NULL;

    pthread_mutex_lock(&ps->lock);
    c->dead = true;
    if (ps->own == c)
        ps->own = NULL;
    for (struct shim_conn **p = &ps->shims; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    for (struct ptask **p = &ps->tasks; *p;)
        if ((*p)->shim == c) {
            struct ptask *t = *p;
            *p = t->next;
            t->next = orphans;
            orphans = t;
        } else {
            p = &(*p)->next;
        }
    close(c->fd);
    pthread_mutex_unlock(&ps->lock);

    if (c->child) /* it has closed its end: it is exiting */
        (void) waitpid(c->pid, NULL, 0);
    if (orphans)
        log_warn("process backend: shim %d is gone", (int) c->pid);
    while (orphans) {
        struct ptask *t = orphans;
        orphans = t->next;
        report_end(ps, t);
        ptask_free(t);
    }
    free(c);
}

static void handle_message(struct process_state *ps, struct shim_conn *c, char *msg)
{
    char *id = msg + 2, *arg;

    if (msg[0] == 'R' && msg[1] == ' ' && (arg = strchr(id, ' '))) {
        *arg++ = '\0';
        pthread_mutex_lock(&ps->lock);
        bool known = task_find(ps, id, c) != NULL;
        pthread_mutex_unlock(&ps->lock);
        /* Only this thread removes tasks: it is still there when reported. */
        if (known)
            ps->listener.running(ps->listener.userdata, id, (usec_t) strtoll(arg, NULL, 10));
    } else if (msg[0] == 'E' && msg[1] == ' ') {
        pthread_mutex_lock(&ps->lock);
        struct ptask *t = task_find(ps, id, c);
        if (t)
            task_unlink(ps, t);
        pthread_mutex_unlock(&ps->lock);
        if (t) {
            report_end(ps, t);
            ptask_free(t);
        }
    } else {
        log_warn("process backend: unknown message from shim %d: %.40s", (int) c->pid, msg);
    }
}

/* Reads what the shim has said; false once it has hung up (and is freed). */
static bool read_shim(struct process_state *ps, struct shim_conn *c)
{
    for (;;) {
        char buf[SHIM_MSG_MAX + 1];
        ssize_t n = recv(c->fd, buf, SHIM_MSG_MAX, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0) {
            shim_lost(ps, c);
            return false;
        }
        buf[n] = '\0';
        handle_message(ps, c, buf);
    }
}

static void *monitor(void *userdata)
{
    struct process_state *ps = userdata;
    (void) pthread_setname_np(pthread_self(), "ocps-proc-mon");
    _cleanup_free_ struct pollfd *pfd = NULL;
    _cleanup_free_ struct shim_conn **owner = NULL;
    size_t n_alloc = 0;

    for (;;) {
        size_t n = 0;

        pthread_mutex_lock(&ps->lock);
        if (ps->stop) {
            pthread_mutex_unlock(&ps->lock);
            break;
        }
        size_t need = 1;
        for (struct shim_conn *c = ps->shims; c; c = c->next)
            need++;
        if (need > n_alloc) {
            size_t a = n_alloc;
            pfd = xgrow(pfd, &a, need, sizeof(*pfd));
            owner = xgrow(owner, &n_alloc, need, sizeof(*owner));
        }
        pfd[n] = (struct pollfd){ps->wake_fd, POLLIN, 0};
        owner[n++] = NULL;
        for (struct shim_conn *c = ps->shims; c; c = c->next) {
            pfd[n] = (struct pollfd){c->fd, POLLIN, 0};
            owner[n++] = c;
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
        /* Only this thread frees connections, so the pointers stay valid. */
        for (size_t i = 1; i < n; i++)
            if (pfd[i].revents)
                (void) read_shim(ps, owner[i]);
    }
    return NULL;
}

/* ---- the shims ----------------------------------------------------------------------------- */

static void conn_add(struct process_state *ps, pid_t pid, int fd, bool child)
{
    struct shim_conn *c = xcalloc(1, sizeof(*c));
    /* Sends happen under ps->lock: a shim that stops reading (stuck in D
     * state) must not stop the supervisor and the monitor with it. A start
     * that times out goes to a new shim; nothing was sent, the lock is ours. */
    struct timeval tv = {.tv_sec = 5};
    (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    c->pid = pid;
    c->fd = fd;
    c->child = child;
    pthread_mutex_lock(&ps->lock);
    c->next = ps->shims;
    ps->shims = c;
    if (child)
        ps->own = c;
    pthread_mutex_unlock(&ps->lock);
    wake(ps);
}

/* Starts this daemon's shim (ps->own). */
static int spawn_shim(struct process_state *ps, struct error *err)
{
    _cleanup_free_ char *log_path = xasprintf("%s/shim.log", ps->shim_dir);
    _cleanup_close_ int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    _cleanup_close_ int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int mine = -1;
    _cleanup_close_ int theirs = -1;
    int sp[2];
    if (logfd < 0 || nullfd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return error_set_errno(err, -errno, "prepare the shim's files in %s", ps->shim_dir);
    mine = sp[0];
    theirs = sp[1];
    char parent[24];
    snprintf(parent, sizeof(parent), "%d", (int) getpid());
    char *const argv[] = {"ocps-shim", ps->shim_dir, parent, NULL};

    /* posix_spawn (clone with CLONE_VM|CLONE_VFORK in glibc): a fork of the
     * threaded daemon would copy its page tables. The shim sets its own
     * PDEATHSIG and checks that `parent` is still its parent. */
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
    posix_spawn_file_actions_adddup2(&fa, theirs, SHIM_CONTROL_FD);
    posix_spawn_file_actions_addclosefrom_np(&fa, SHIM_CONTROL_FD + 1);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &ignored);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int r = -posix_spawn(&pid, ps->shim_path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r < 0)
        return error_set_errno(err, r, "spawn %s", ps->shim_path);
    log_info("process backend: shim %d started", (int) pid);
    conn_add(ps, pid, TAKE_FD(mine), true);
    return 0;
}

/* Under ps->lock. */
static struct shim_conn *conn_find(struct process_state *ps, pid_t pid)
{
    for (struct shim_conn *c = ps->shims; c; c = c->next)
        if (c->pid == pid && !c->dead)
            return c;
    return NULL;
}

/* Connects to a shim an earlier daemon started, unless we already are. */
static int connect_shim(struct process_state *ps, pid_t pid)
{
    pthread_mutex_lock(&ps->lock);
    bool connected = conn_find(ps, pid) != NULL;
    pthread_mutex_unlock(&ps->lock);
    if (connected)
        return 0;

    _cleanup_free_ char *path = xasprintf("%s/%d.sock", ps->shim_dir, (int) pid);
    _cleanup_close_ int dirfd = -1;
    struct sockaddr_un sa;
    int r = shim_sockaddr(path, &sa, &dirfd);
    if (r < 0)
        return r;
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
        return -errno;
    log_info("process backend: reconnected to shim %d", (int) pid);
    conn_add(ps, pid, TAKE_FD(fd), false);
    return 0;
}

/* Sockets of shims killed from outside: nothing answers there any more. */
static void remove_stale_sockets(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < STRLEN(".sock") || !streq(de->d_name + len - STRLEN(".sock"), ".sock"))
            continue;
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, de->d_name);
        _cleanup_close_ int dirfd = -1;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_un sa;
        if (fd >= 0 && shim_sockaddr(path, &sa, &dirfd) == 0 &&
            connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno == ECONNREFUSED) {
            log_info("process backend: removing %s (its shim is gone)", path);
            (void) unlink(path);
        }
    }
    if (d)
        closedir(d);
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
    int r = mkdir_p(ps->shim_dir, 0700);
    if (r < 0) {
        r = error_set_errno(err, r, "mkdir %s", ps->shim_dir);
        process_free(ps);
        return r;
    }
    remove_stale_sockets(ps->shim_dir);
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
    r = pthread_create(&ps->thread, NULL, monitor, ps);
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
            r = spawned++ < 2 ? spawn_shim(ps, err)
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
            r = shim_send(c, msg, fds);
            if (r < 0) {
                task_unlink(ps, t);
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
    r = confine_user_lookup(s->task->user, ps->cfg->allow_root, ps->cfg->denied_users, &u, err);
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
    struct ptask *t = task_find(ps, id, NULL);
    if (t) {
        t->cancel_requested = true;
        /* The shim SIGTERMs the tree, and SIGKILLs it after the grace period. */
        _cleanup_free_ char *msg = xasprintf("C %s", id);
        r = shim_send(t->shim, msg, NULL);
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
    r = connect_shim(ps, pid);

    _cleanup_free_ char *msg = xasprintf("W %s", s->id);
    struct ptask *t = xcalloc(1, sizeof(*t));
    t->id = xstrdup(s->id);
    t->task_dir = xstrdup(s->task_dir);
    pthread_mutex_lock(&ps->lock);
    t->shim = r >= 0 ? conn_find(ps, pid) : NULL;
    if (t->shim) {
        t->next = ps->tasks;
        ps->tasks = t;
        /* Answered "R" (running) or "E" (ended); a shim that hangs up instead
         * leaves the task to report_end(). Either way the monitor reports it. */
        (void) shim_send(t->shim, msg, NULL);
    }
    pthread_mutex_unlock(&ps->lock);
    if (t->shim)
        return 0;
    ptask_free(t);
    /* It may have ended the task and exited in between. */
    if (flock(lockfd, LOCK_EX | LOCK_NB) == 0)
        return recover_unlocked(ps, s, lock_path);
    return error_set_errno(err, r < 0 ? r : -ECONNRESET, "connect to shim %d", (int) pid);
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
