/*
 * shim: the long-lived parent of process tasks (see shim.h for its
 * contract).
 *
 * Event driven, in one thread: one epoll over a signalfd (SIGCHLD), the
 * daemons' connections, the listening socket, and per task the
 * exec-status pipe and the timerfds it needs (walltime, the tree-wide
 * cputime check, the kill grace period, the wait for its cgroup to
 * empty). The only other threads are spawners that each vfork() one
 * command at a time and report its pid (see spawner_main()). As a child
 * subreaper it reaps every process of every task, including ones that
 * called setsid() or double-forked. Replies never block it: what a daemon
 * is not reading yet waits in a per-connection queue.
 */
#include "shim.h"
#include "cgroup.h"
#include "confine.h"
#include "layout.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

/* The soft RLIMIT_NOFILE we found: tasks get it back (select() users break above 1024). */
static struct rlimit task_nofile;
/* We emptied our bounding set at start: tasks inherit it empty. */
static bool bounding_set_empty;

struct shim_spec {
    char *id;
    char **argv;
    char **env;
    char *workdir;
    struct confine_user user;
    char *out_path[2];
    bool out_as_user[2];
    uint64_t cputime, walltime, memory, kill_grace;
    double cores;
    struct cgroup cg;
};

static void spec_done(struct shim_spec *s)
{
    free(s->id);
    strv_free(s->argv);
    strv_free(s->env);
    free(s->workdir);
    confine_user_done(&s->user);
    free(s->out_path[0]);
    free(s->out_path[1]);
    cgroup_done(&s->cg);
}

static char **strv_from_cjson(const cJSON *a)
{
    char **v = xcalloc(cJSON_GetArraySize(a) + 1, sizeof(char *));
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (cJSON_IsString(e)) v[n++] = xstrdup(e->valuestring);
    return v;
}

/* The spec comes in a memfd with the start request: no file per task. */
static int spec_load(int fd, struct shim_spec *s)
{
    _cleanup_free_ char *data = NULL;
    if (fd < 0)
        return -EBADF;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -errno;
    int r = read_fd(fd, 64 << 20, &data, NULL);
    if (r < 0)
        return r;
    cJSON *j = cJSON_Parse(data);
    if (!j)
        return -EBADMSG;

    const cJSON *argv = cJSON_GetObjectItemCaseSensitive(j, "argv");
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(j, "env");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(j, "groups");
    const cJSON *cg = cJSON_GetObjectItemCaseSensitive(j, "cgroup");
    const char *id = json_str(j, "id"), *wd = json_str(j, "workdir");
    const char *out = json_str(j, "stdout"), *err = json_str(j, "stderr");
    r = -EBADMSG;
    if (!cJSON_IsArray(argv) || cJSON_GetArraySize(argv) < 1 || !cJSON_IsArray(env) || !id || !wd ||
        !out || !err || cgroup_from_cjson(cg, &s->cg) < 0)
        goto out;
    s->id = xstrdup(id);
    s->argv = strv_from_cjson(argv);
    s->env = strv_from_cjson(env);
    s->workdir = xstrdup(wd);
    s->out_path[0] = xstrdup(out);
    s->out_path[1] = xstrdup(err);
    s->out_as_user[0] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stdout_as_user"));
    s->out_as_user[1] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stderr_as_user"));
    s->user.change = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "change_user"));
    s->user.uid = (uid_t) json_u64(j, "uid");
    s->user.gid = (gid_t) json_u64(j, "gid");
    s->user.n_groups = cJSON_IsArray(groups) ? cJSON_GetArraySize(groups) : 0;
    s->user.groups = xcalloc(s->user.n_groups + 1, sizeof(gid_t));
    int i = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups) s->user.groups[i++] = (gid_t) g->valuedouble;
    s->cputime = json_u64(j, "cputime");
    s->walltime = json_u64(j, "walltime");
    s->memory = json_u64(j, "memory");
    s->kill_grace = json_u64(j, "kill_grace");
    const cJSON *cores = cJSON_GetObjectItemCaseSensitive(j, "cores");
    s->cores = cJSON_IsNumber(cores) && cores->valuedouble > 0 ? cores->valuedouble : 1;
    r = 0;
out:
    cJSON_Delete(j);
    return r;
}

/* ---- the task's process, between fork and exec --------------------------------------------- */

enum child_stage {
    STAGE_CGROUP,
    STAGE_RLIMIT,
    STAGE_STDIN,
    STAGE_STDOUT,
    STAGE_STDERR,
    STAGE_CONFINE,
    STAGE_WORKDIR,
    STAGE_EXEC,
};

struct child_error {
    int stage;
    int error; /* positive errno */
};

static _noreturn_ void child_fail(int fd, enum child_stage stage, int error)
{
    struct child_error e = {stage, error > 0 ? error : -error};
    (void) !write(fd, &e, sizeof(e));
    _exit(127);
}

static int open_output(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0640);
    return fd < 0 ? -errno : fd;
}

/* execvpe() searches the caller's PATH; a task's PATH is its own. */
static void exec_in_path(char **argv, char **env)
{
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int last = ENOENT;

    if (strchr(argv[0], '/')) {
        execve(argv[0], argv, env);
        return;
    }
    STRV_FOREACH (e, env)
        if (startswith(*e, "PATH="))
            path = *e + 5;
    for (const char *p = path;; p++) {
        /* No malloc here: this runs in a vfork()ed child, in the shim's memory. */
        char full[PATH_MAX];
        const char *end = strchrnul(p, ':');
        if ((size_t) snprintf(full, sizeof(full), "%.*s%s%s", (int) (end - p), p,
                              end == p ? "" : "/", argv[0]) >= sizeof(full)) {
            last = ENAMETOOLONG;
            if (!*end)
                break;
            p = end;
            continue;
        }
        execve(full, argv, env);
        if (errno != ENOENT && errno != ENOTDIR)
            last = errno;
        if (!*end)
            break;
        p = end;
    }
    errno = last;
}

static _noreturn_ void run_child(struct shim_spec *s, int errfd)
{
    sigset_t all;
    int r;

    /* First let go of every other task's pipes and locks: should this child
     * block before its exec (a FIFO, a hung mount), it holds nothing of theirs. */
    if (errfd != 3) {
        errfd = dup3(errfd, 3, O_CLOEXEC);
        if (errfd < 0)
            _exit(127);
    }
    (void) close_range(4, ~0U, 0);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    (void) setrlimit(RLIMIT_NOFILE, &task_nofile);
    signal(SIGPIPE, SIG_DFL);
    (void) setsid();

    r = cgroup_enter(&s->cg, getpid());
    if (r < 0)
        child_fail(errfd, STAGE_CGROUP, r);
    if (s->cputime) {
        /* Hard above soft: SIGXCPU at the limit says "cputime"; SIGKILL one second later. */
        struct rlimit rl = {s->cputime, s->cputime + 1};
        if (setrlimit(RLIMIT_CPU, &rl) < 0)
            child_fail(errfd, STAGE_RLIMIT, errno);
    }
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0 || dup2(in, STDIN_FILENO) < 0)
        child_fail(errfd, STAGE_STDIN, errno);

    /* Outputs under the data dir are opened while privileged (the directory is
     * the daemon's); paths the user gave are opened as the user, so a request
     * cannot make us write where its user may not. */
    int fds[2] = {-1, -1};
    for (int i = 0; i < 2; i++)
        if (!s->out_as_user[i] && (fds[i] = open_output(s->out_path[i])) < 0)
            child_fail(errfd, i ? STAGE_STDERR : STAGE_STDOUT, fds[i]);

    const char *step = NULL;
    r = confine_apply(&s->user, bounding_set_empty, &step);
    if (r < 0)
        child_fail(errfd, STAGE_CONFINE, r);

    for (int i = 0; i < 2; i++)
        if (s->out_as_user[i]) {
            if (i == 1 && s->out_as_user[0] && streq(s->out_path[0], s->out_path[1]))
                fds[1] = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
            else
                fds[i] = open_output(s->out_path[i]);
            if (fds[i] < 0)
                child_fail(errfd, i ? STAGE_STDERR : STAGE_STDOUT, errno);
        }
    if (dup2(fds[0], STDOUT_FILENO) < 0)
        child_fail(errfd, STAGE_STDOUT, errno);
    if (dup2(fds[1], STDERR_FILENO) < 0)
        child_fail(errfd, STAGE_STDERR, errno);
    if (chdir(s->workdir) < 0)
        child_fail(errfd, STAGE_WORKDIR, errno);
    umask(022);
    /* Nothing of ours leaks into the task: the lock, the status pipe, the rest. */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

    exec_in_path(s->argv, s->env);
    child_fail(errfd, STAGE_EXEC, errno);
}

static char *describe_child_error(const struct shim_spec *s, const struct child_error *e,
                                  enum task_state *state)
{
    const char *what = strerror(e->error);
    *state = TASK_EXECUTOR_ERROR;
    switch ((enum child_stage) e->stage) {
    case STAGE_CGROUP:
        *state = TASK_SYSTEM_ERROR;
        return xasprintf("cannot enter the task's cgroup: %s", what);
    case STAGE_RLIMIT:
        *state = TASK_SYSTEM_ERROR;
        return xasprintf("cannot set RLIMIT_CPU: %s", what);
    case STAGE_STDIN:
        *state = TASK_SYSTEM_ERROR;
        return xasprintf("cannot open /dev/null: %s", what);
    case STAGE_STDOUT:
        return xasprintf("cannot open stdout %s: %s", s->out_path[0], what);
    case STAGE_STDERR:
        return xasprintf("cannot open stderr %s: %s", s->out_path[1], what);
    case STAGE_CONFINE:
        *state = TASK_SYSTEM_ERROR;
        return xasprintf("cannot drop privileges: %s", what);
    case STAGE_WORKDIR:
        return xasprintf("cannot enter workdir %s: %s", s->workdir, what);
    case STAGE_EXEC:
    default:
        return xasprintf("exec %s: %s", s->argv[0], what);
    }
}

/* ---- the outcome --------------------------------------------------------------------------- */

int shim_lock_set_pid(int lock_fd, pid_t pid)
{
    char line[SHIM_LOCK_STARTED_AT + 1];
    snprintf(line, sizeof(line), "pid %-*d\n", SHIM_LOCK_STARTED_AT - 5, (int) pid);
    ssize_t n = pwrite(lock_fd, line, SHIM_LOCK_STARTED_AT, 0);
    return n == SHIM_LOCK_STARTED_AT ? 0 : n < 0 ? -errno : -EIO;
}

/* The value of "<key> <number>" in text, or -ENOENT. */
static int lock_field(const char *text, const char *key, long long *ret)
{
    size_t kl = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
            *ret = strtoll(l + kl + 1, NULL, 10);
            return 0;
        }
    return -ENOENT;
}

/* A field of shim.lock, or else the file a shim before 2026-11 wrote it to. */
static int read_lock_field(const char *task_dir, const char *key, const char *old_file,
                           long long *ret)
{
    _cleanup_free_ char *lock = layout_in_task_dir(task_dir, LAYOUT_SHIM_LOCK);
    _cleanup_free_ char *old = xasprintf("%s/%s", task_dir, old_file);
    _cleanup_free_ char *data = NULL, *old_data = NULL;
    *ret = 0;
    if (read_file(lock, 4096, &data, NULL) >= 0 && lock_field(data, key, ret) >= 0)
        return 0;
    int r = read_file(old, 64, &old_data, NULL);
    if (r < 0)
        return r;
    *ret = strtoll(old_data, NULL, 10);
    return 0;
}

int shim_read_pid(const char *task_dir, pid_t *ret)
{
    long long v;
    int r = read_lock_field(task_dir, "pid", "shim.pid", &v);
    if (r < 0)
        return r;
    if (v <= 0 || v > INT_MAX)
        return -EBADMSG;
    *ret = (pid_t) v;
    return 0;
}

int shim_read_started(const char *task_dir, usec_t *ret)
{
    long long v;
    int r = read_lock_field(task_dir, "started", "started", &v);
    if (r < 0)
        return r;
    /* Present but unreadable (a crash mid-write) still means "may have run". */
    *ret = v > 0 ? (usec_t) v : 0;
    return 0;
}

/* ---- the event loop ------------------------------------------------------------------------ */

enum source_kind {
    SRC_SIGNAL,
    SRC_LISTEN,
    SRC_SPAWNED, /* spawn threads report here */
    SRC_CLIENT,
    SRC_EXEC,   /* the child's exec-status pipe */
    SRC_WALL,   /* walltime */
    SRC_CPU,    /* next cputime check */
    SRC_GRACE,  /* end of the cancel grace period */
    SRC_SETTLE, /* next look at whether the cgroup is empty */
};

struct source {
    enum source_kind kind;
    void *owner;
};

struct outmsg {
    struct outmsg *next;
    size_t len;
    char data[];
};

struct client {
    struct source src;
    int fd;
    bool owner; /* the daemon that started us */
    bool dead;  /* removed; freed after the current batch of events */
    struct outmsg *out, **out_tail;
    struct client *next;
};

enum stask_phase {
    PHASE_STARTING, /* forked, exec not yet confirmed */
    PHASE_RUNNING,
    PHASE_SETTLING, /* main process gone, waiting for the cgroup to empty */
};

struct stask {
    struct shim_spec spec;
    char *task_dir;
    int lock_fd, log_fd, exec_fd;
    int exec_w; /* the child's end of the exec-status pipe, until its spawn is reported */
    int tfd[4]; /* SRC_WALL .. SRC_SETTLE, -1 until needed */
    struct source src[5];
    enum stask_phase phase;
    pid_t main_pid;
    int main_status;
    bool main_done, canceled, walltime_hit, cputime_hit;
    bool dead; /* finished; freed after the current batch of events */
    unsigned settle_tries;
    usec_t started;
    char *fail_reason; /* the command could not be started */
    enum task_state fail_state;
    struct stask *next;
    struct stask *spawn_next; /* in the spawners' queue */
};

struct shim {
    int epfd, sigfd, listen_fd;
    int spawned[2]; /* pipe: spawn threads write struct spawn_done */
    char *sock_path;
    struct source sig_src, listen_src, spawned_src;
    unsigned spawning; /* spawn threads not yet reported */
    /* Children reaped before their spawn thread reported their pid. */
    struct reaped {
        pid_t pid;
        int status;
    } * early;
    size_t n_early, n_early_alloc;
    struct client *clients;
    struct stask *tasks;
    bool owner_gone;
    /* What events later in the same batch may still point to. */
    struct client *dead_clients;
    struct stask *dead_tasks;
};

static struct source *tsrc(struct stask *t, enum source_kind k)
{
    return &t->src[k - SRC_EXEC];
}

static int watch_fd(struct shim *sh, int fd, uint32_t events, struct source *src)
{
    struct epoll_event ev = {.events = events, .data.ptr = src};
    return epoll_ctl(sh->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* Arms one of the task's timers, creating it on first use. */
static int arm(struct shim *sh, struct stask *t, enum source_kind k, usec_t after)
{
    int *fd = &t->tfd[k - SRC_WALL];
    if (*fd < 0) {
        *fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (*fd < 0 || watch_fd(sh, *fd, EPOLLIN, tsrc(t, k)) < 0) {
            log_to(t->log_fd, LOG_LEVEL_ERROR, "task %s: cannot make a timer: %m", t->spec.id);
            if (*fd >= 0)
                close(TAKE_FD(*fd));
            return -EMFILE;
        }
    }
    struct itimerspec its = {.it_value = {after / USEC_PER_SEC, (after % USEC_PER_SEC) * 1000}};
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    return timerfd_settime(*fd, 0, &its, NULL) < 0 ? -errno : 0;
}

/* Closes fd after taking it out of the epoll set: a forked child still in
 * its pre-exec window holds a copy, and close() alone would leave it in. */
static void unwatch_close(struct shim *sh, int *fd)
{
    if (*fd < 0)
        return;
    (void) epoll_ctl(sh->epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(TAKE_FD(*fd));
}

static void drain(int fd)
{
    uint64_t v;
    (void) !read(fd, &v, sizeof(v));
}

/* ---- talking to daemons -------------------------------------------------------------------- */

static void client_flush(struct client *c)
{
    while (c->out) {
        struct outmsg *m = c->out;
        if (send(c->fd, m->data, m->len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            /* Gone: its hang-up is handled by the loop; drop what it would not read. */
        }
        c->out = m->next;
        free(m);
    }
    c->out_tail = &c->out;
}

static void client_queue(struct shim *sh, struct client *c, const char *text)
{
    size_t len = strlen(text);
    struct outmsg *m = xmalloc(sizeof(*m) + len);
    m->next = NULL;
    m->len = len;
    memcpy(m->data, text, len);
    bool was_empty = !c->out;
    *c->out_tail = m;
    c->out_tail = &m->next;
    client_flush(c);
    if (c->out && was_empty) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = &c->src};
        (void) epoll_ctl(sh->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void client_send(struct shim *sh, struct client *c, const char *fmt, ...) _printf_(3, 4);
static void client_send(struct shim *sh, struct client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *text = xvasprintf(fmt, ap);
    va_end(ap);
    client_queue(sh, c, text);
}

/* To every connected daemon: normally one, two while a restarted one reconnects. */
static void broadcast(struct shim *sh, const char *fmt, ...) _printf_(2, 3);
static void broadcast(struct shim *sh, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *text = xvasprintf(fmt, ap);
    va_end(ap);
    for (struct client *c = sh->clients; c; c = c->next)
        client_queue(sh, c, text);
}

static struct client *client_add(struct shim *sh, int fd, bool owner)
{
    struct client *c = xcalloc(1, sizeof(*c));
    c->src = (struct source){SRC_CLIENT, c};
    c->fd = fd;
    c->owner = owner;
    c->out_tail = &c->out;
    if (watch_fd(sh, fd, EPOLLIN, &c->src) < 0) {
        close(fd);
        free(c);
        return NULL;
    }
    c->next = sh->clients;
    sh->clients = c;
    return c;
}

static void client_remove(struct shim *sh, struct client *c)
{
    for (struct client **p = &sh->clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    if (c->owner)
        sh->owner_gone = true;
    while (c->out) {
        struct outmsg *m = c->out;
        c->out = m->next;
        free(m);
    }
    unwatch_close(sh, &c->fd);
    c->dead = true;
    c->next = sh->dead_clients;
    sh->dead_clients = c;
}

/* ---- one task ------------------------------------------------------------------------------ */

static struct stask *task_find(struct shim *sh, const char *id)
{
    for (struct stask *t = sh->tasks; t; t = t->next)
        if (streq(t->spec.id, id))
            return t;
    return NULL;
}

/* After task_finish(), which took its fds out of the epoll set. */
static void stask_free(struct stask *t)
{
    if (t->exec_w >= 0)
        close(t->exec_w);
    if (t->log_fd >= 0)
        close(t->log_fd);
    if (t->lock_fd >= 0)
        close(t->lock_fd);
    spec_done(&t->spec);
    free(t->task_dir);
    free(t->fail_reason);
    free(t);
}

static void cancel(struct shim *sh, struct stask *t)
{
    if (t->canceled || t->phase == PHASE_SETTLING)
        return;
    t->canceled = true;
    log_to(t->log_fd, LOG_LEVEL_INFO, "task %s: cancel requested, SIGTERM to the tree", t->spec.id);
    (void) cgroup_signal(&t->spec.cg, SIGTERM);
    /* A process stopped with SIGSTOP would never see the SIGTERM. */
    (void) cgroup_signal(&t->spec.cg, SIGCONT);
    if (t->spec.kill_grace == 0)
        (void) cgroup_kill_once(&t->spec.cg, NULL);
    else
        arm(sh, t, SRC_GRACE, (usec_t) t->spec.kill_grace * USEC_PER_SEC);
}

/* Next look at the tree's CPU time: it cannot grow faster than 'cores' per second. */
static void check_cputime(struct shim *sh, struct stask *t)
{
    usec_t used = 0, limit = (usec_t) t->spec.cputime * USEC_PER_SEC;
    if (t->phase != PHASE_RUNNING || cgroup_cpu_usage(&t->spec.cg, &used) < 0)
        return;
    if (used >= limit) {
        if (!t->cputime_hit) {
            t->cputime_hit = true;
            log_to(t->log_fd, LOG_LEVEL_INFO, "task %s: cputime limit reached by the process tree",
                   t->spec.id);
            (void) cgroup_kill_once(&t->spec.cg, NULL);
        }
        return;
    }
    usec_t wait = (usec_t) ((double) (limit - used) / t->spec.cores);
    arm(sh, t, SRC_CPU, MAX(wait, 50 * USEC_PER_MSEC));
}

/* The end of a task: outcome recorded, lock released, daemons told, task forgotten. */
static void task_finish(struct shim *sh, struct stask *t)
{
    const struct shim_spec *s = &t->spec;
    int st = t->main_status;
    bool ran = !t->fail_reason;
    struct outcome_facts f = {
        .memory = s->memory,
        .cputime = s->cputime,
        .walltime = s->walltime,
        .start_error = t->fail_reason,
        .start_error_system = t->fail_state == TASK_SYSTEM_ERROR,
        .canceled = t->canceled,
        .walltime_hit = t->walltime_hit,
        .cputime_hit = t->cputime_hit,
        .exit_code = ran && WIFEXITED(st) ? WEXITSTATUS(st) : -1,
        .signal = ran && WIFSIGNALED(st) ? WTERMSIG(st) : 0,
        .started = t->started,
    };
    struct task_outcome o;

    if (t->spec.cg.dir[CG_MEMORY]) {
        /* Only what the classifier can use: OOM kills explain a failure, CPU
         * time a cputime limit. */
        uint64_t ooms = 0;
        if (ran && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
            (void) cgroup_oom_kills(&t->spec.cg, &ooms);
        f.oom = ooms > 0;
        if (ran && t->spec.cputime)
            (void) cgroup_cpu_usage(&t->spec.cg, &f.cpu_used);
        int r = cgroup_destroy(&t->spec.cg);
        if (r < 0)
            log_to(t->log_fd, LOG_LEVEL_WARN, "task %s: cannot remove its cgroup: %s", t->spec.id,
                   strerror(-r));
    }
    outcome_classify(&f, &o);
    log_to(t->log_fd, LOG_LEVEL_INFO, "task %s: %s: %s", t->spec.id, task_state_to_string(o.state),
           o.reason);
    /* Not fsync'd: the daemon's store commits the end with an fsync before
     * anyone hears of it, for many tasks at once. A power loss before that
     * leaves the task to recovery: SYSTEM_ERROR, no outcome recorded. */
    int r = task_outcome_write(t->task_dir, &o, false);
    if (r < 0)
        log_to(t->log_fd, LOG_LEVEL_ERROR, "task %s: cannot record the outcome: %s", t->spec.id,
               strerror(-r));
    /* exit.json first, then the lock: a free lock always finds the outcome written. */
    close(TAKE_FD(t->lock_fd));
    task_outcome_done(&o);
    broadcast(sh, "E %s", t->spec.id);

    for (struct stask **p = &sh->tasks; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    for (size_t i = 0; i < ELEMENTSOF(t->tfd); i++)
        unwatch_close(sh, &t->tfd[i]);
    unwatch_close(sh, &t->exec_fd);
    t->dead = true;
    t->next = sh->dead_tasks;
    sh->dead_tasks = t;
}

/* Waits (by timer, not by sleeping: other tasks go on) until the cgroup is empty. */
static void settle(struct shim *sh, struct stask *t)
{
    if (t->main_pid > 0 && cgroup_is_populated(&t->spec.cg) && t->settle_tries++ < 2000) {
        /* What the task left behind dies with it; a look every millisecond. */
        (void) cgroup_kill_once(&t->spec.cg, NULL);
        if (arm(sh, t, SRC_SETTLE, USEC_PER_MSEC) >= 0)
            return;
    }
    task_finish(sh, t);
}

static void on_running(struct shim *sh, struct stask *t)
{
    t->phase = PHASE_RUNNING;
    t->started = now_realtime();
    broadcast(sh, "R %s %" PRId64, t->spec.id, (int64_t) t->started);
    log_to(t->log_fd, LOG_LEVEL_INFO, "task %s: running as pid %d", t->spec.id, t->main_pid);
    if (t->spec.walltime)
        arm(sh, t, SRC_WALL, (usec_t) t->spec.walltime * USEC_PER_SEC);
    if (t->spec.cputime)
        check_cputime(sh, t);
}

/* The exec-status pipe: EOF means exec'd (close-on-exec), a record means it
 * failed. 'final': the child is gone, so no record now means none ever. */
static void on_exec_status(struct shim *sh, struct stask *t, bool final)
{
    struct child_error ce;
    ssize_t n;
    do
        n = read(t->exec_fd, &ce, sizeof(ce));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN && !final)
        return;
    unwatch_close(sh, &t->exec_fd);
    if (n == sizeof(ce)) {
        t->fail_reason = describe_child_error(&t->spec, &ce, &t->fail_state);
        t->phase = PHASE_SETTLING;
        return;
    }
    on_running(sh, t);
}

static void on_main_exit(struct shim *sh, struct stask *t, int status)
{
    t->main_done = true;
    t->main_status = status;
    if (t->exec_fd >= 0)
        on_exec_status(sh, t, true);
    t->phase = PHASE_SETTLING;
    settle(sh, t);
}

static void reap(struct shim *sh)
{
    for (;;) {
        int status;
        pid_t p = waitpid(-1, &status, WNOHANG);
        if (p <= 0)
            break;
        struct stask *t = sh->tasks;
        while (t && !(t->main_pid == p && !t->main_done))
            t = t->next;
        if (t)
            on_main_exit(sh, t, status);
        else if (sh->spawning > 0) {
            /* Perhaps a task whose spawn thread has not reported yet. */
            sh->early = xgrow(sh->early, &sh->n_early_alloc, sh->n_early + 1, sizeof(*sh->early));
            sh->early[sh->n_early++] = (struct reaped){p, status};
        }
    }
}

/* ---- starting a command -------------------------------------------------------------------- */

struct spawn_done {
    struct stask *t;
    pid_t pid;
    int error;
};

/*
 * vfork() in a spawner thread: the child borrows our memory until it
 * execs, so nothing is copied and we take no copy-on-write faults
 * afterwards (with one shim for every task, fork() was most of its cost);
 * and only that thread waits for the exec, so a child that blocks before
 * it (a FIFO as stdout, a hung mount, a SIGSTOP from the task's user) holds
 * up nothing else: a start finds an idle spawner or gets a new one. Idle
 * spawners beyond SPAWNERS_KEEP leave after SPAWNER_IDLE_S. run_child()
 * neither allocates nor takes locks.
 */
#define SPAWNERS_KEEP  2
#define SPAWNER_IDLE_S 10

static int spawned_fd = -1;
static struct {
    pthread_mutex_t lock;
    pthread_cond_t more;
    struct stask *head, **tail; /* starts no spawner has taken yet */
    unsigned queued, waiting, threads;
} spawners = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, &spawners.head, 0, 0, 0};

static void spawn_one(struct stask *t)
{
    pid_t pid = vfork();
    if (pid == 0)
        run_child(&t->spec, t->exec_w);
    struct spawn_done d = {t, pid, pid < 0 ? errno : 0};
    /* Smaller than PIPE_BUF: one write, never mixed with another thread's. */
    (void) !write(spawned_fd, &d, sizeof(d));
}

static void *spawner_main(void *arg)
{
    pthread_mutex_lock(&spawners.lock);
    for (;;) {
        while (!spawners.head) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += SPAWNER_IDLE_S;
            spawners.waiting++;
            int r = pthread_cond_timedwait(&spawners.more, &spawners.lock, &until);
            spawners.waiting--;
            if (r == ETIMEDOUT && !spawners.head && spawners.threads > SPAWNERS_KEEP) {
                spawners.threads--;
                pthread_mutex_unlock(&spawners.lock);
                return NULL;
            }
        }
        struct stask *t = spawners.head;
        spawners.head = t->spawn_next;
        if (!spawners.head)
            spawners.tail = &spawners.head;
        spawners.queued--;
        pthread_mutex_unlock(&spawners.lock);
        spawn_one(t);
        pthread_mutex_lock(&spawners.lock);
    }
}

/* Queues t for a spawner, starting one when every other is busy. */
static int spawners_add(struct stask *t)
{
    int r = 0;
    pthread_mutex_lock(&spawners.lock);
    t->spawn_next = NULL;
    *spawners.tail = t;
    spawners.tail = &t->spawn_next;
    spawners.queued++;
    if (spawners.waiting >= spawners.queued) {
        pthread_cond_signal(&spawners.more);
    } else {
        pthread_attr_t attr;
        pthread_t thread;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 20);
        r = -pthread_create(&thread, &attr, spawner_main, NULL);
        pthread_attr_destroy(&attr);
        if (r == 0) {
            spawners.threads++;
        } else {
            /* Take it back out (it is the last): it fails instead of waiting
             * behind starts that may never finish. */
            struct stask **p = &spawners.head;
            while (*p != t)
                p = &(*p)->spawn_next;
            *p = NULL;
            spawners.tail = p;
            spawners.queued--;
        }
    }
    pthread_mutex_unlock(&spawners.lock);
    return r;
}

static void fail_start(struct shim *sh, struct stask *t, char *reason)
{
    t->fail_reason = reason;
    t->fail_state = TASK_SYSTEM_ERROR;
    task_finish(sh, t);
}

static void spawn(struct shim *sh, struct stask *t)
{
    /* Before anything can run: a restarted daemon that finds the lock free
     * and this line in it knows the command may have run, and never starts
     * it again. Without it, we do not start it at all. */
    char buf[48];
    int n = snprintf(buf, sizeof(buf), "started %" PRId64 "\n", (int64_t) now_realtime());
    ssize_t w = pwrite(t->lock_fd, buf, n, SHIM_LOCK_STARTED_AT);
    if (w != n)
        return fail_start(sh, t,
                          xasprintf("shim: cannot write %s/shim.lock: %s", t->task_dir,
                                    w < 0 ? strerror(errno) : "short write"));

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return fail_start(sh, t, xasprintf("shim: pipe: %m"));
    t->exec_fd = pipefd[0];
    t->exec_w = pipefd[1];
    (void) fcntl(t->exec_fd, F_SETFL, O_NONBLOCK);

    int r = spawners_add(t);
    if (r < 0)
        return fail_start(sh, t, xasprintf("shim: cannot start a thread: %s", strerror(-r)));
    sh->spawning++;
}

/* A spawn thread is done: the task has its pid, and can be watched. */
static void on_spawned(struct shim *sh, const struct spawn_done *d)
{
    struct stask *t = d->t;

    sh->spawning--;
    close(TAKE_FD(t->exec_w));
    if (d->pid < 0) {
        fail_start(sh, t, xasprintf("shim: vfork: %s", strerror(d->error)));
    } else {
        t->main_pid = d->pid;
        if (t->canceled) /* asked while it was starting: it may have missed the SIGTERM */
            (void) cgroup_signal(&t->spec.cg, SIGTERM);
        if (watch_fd(sh, t->exec_fd, EPOLLIN, tsrc(t, SRC_EXEC)) < 0)
            on_exec_status(sh, t, false);
        for (size_t i = 0; i < sh->n_early; i++)
            if (sh->early[i].pid == d->pid) {
                int status = sh->early[i].status;
                sh->early[i] = sh->early[--sh->n_early];
                if (!t->main_done)
                    on_main_exit(sh, t, status);
                break;
            }
    }
    if (sh->spawning == 0)
        sh->n_early = 0; /* the rest were orphans of the tasks' trees */
}

static void read_spawned(struct shim *sh)
{
    struct spawn_done d;
    /* A task cannot end while it is being spawned: d.t is alive. */
    while (read(sh->spawned[0], &d, sizeof(d)) == sizeof(d))
        on_spawned(sh, &d);
}

/* "S <id> <task_dir>" with the locked shim.lock and the spec: start the task. */
static void task_start(struct shim *sh, const char *id, const char *task_dir, int lock_fd,
                       int spec_fd)
{
    _cleanup_close_ int spec = spec_fd;
    if (task_find(sh, id)) {
        /* The daemon locks before it asks, so this is not a second start of the same
         * task; refuse it all the same. */
        log_warn("task %s: asked to start it twice, ignored", id);
        if (lock_fd >= 0)
            close(lock_fd);
        return;
    }
    struct stask *t = xcalloc(1, sizeof(*t));
    t->task_dir = xstrdup(task_dir);
    t->lock_fd = lock_fd;
    t->exec_fd = -1;
    t->exec_w = -1;
    t->main_pid = -1;
    for (size_t i = 0; i < ELEMENTSOF(t->tfd); i++)
        t->tfd[i] = -1;
    for (int k = SRC_EXEC; k <= SRC_SETTLE; k++)
        *tsrc(t, k) = (struct source){k, t};
    _cleanup_free_ char *log_path = layout_in_task_dir(task_dir, LAYOUT_SYSLOG);
    t->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);

    int r = spec_load(spec, &t->spec);
    if (r >= 0 && !streq(t->spec.id, id))
        r = -EBADMSG;
    if (r < 0) {
        spec_done(&t->spec);
        t->spec = (struct shim_spec){.id = xstrdup(id)};
    }
    t->next = sh->tasks;
    sh->tasks = t;
    if (r < 0) {
        t->fail_reason = xasprintf("the shim cannot read the task's spec: %s", strerror(-r));
        t->fail_state = TASK_SYSTEM_ERROR;
        task_finish(sh, t);
        return;
    }

    if (lock_fd < 0)
        return fail_start(sh, t,
                          xstrdup("shim: the start request came without the task's lock "
                                  "(out of file descriptors?)"));
    spawn(sh, t);
}

/* Reads every message already queued on the other connections (see "W"). */
static void read_client(struct shim *sh, struct client *c);
static void drain_others(struct shim *sh, struct client *except)
{
    for (struct client *c = sh->clients, *next; c; c = next) {
        next = c->next;
        if (c != except)
            read_client(sh, c);
    }
}

/* fds: what came with the message (SCM_RIGHTS), -1 where nothing did. */
static void handle_message(struct shim *sh, struct client *c, char *msg, int fds[2])
{
    char *dir = msg[0] == 'S' && msg[1] == ' ' ? strchr(msg + 2, ' ') : NULL;
    if (dir && dir[1] == '/') {
        *dir++ = '\0';
        task_start(sh, msg + 2, dir, fds[0], fds[1]);
        return;
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (msg[0] == 'C' && msg[1] == ' ') {
        struct stask *t = task_find(sh, msg + 2);
        if (t)
            cancel(sh, t);
    } else if (msg[0] == 'W' && msg[1] == ' ') {
        /* A daemon that died right after a start request left it queued on its
         * old connection: take it before saying "not here". */
        struct stask *t = task_find(sh, msg + 2);
        if (!t) {
            drain_others(sh, c);
            t = task_find(sh, msg + 2);
        }
        if (c->dead)
            return;
        if (!t)
            client_send(sh, c, "E %s", msg + 2);
        else if (t->phase == PHASE_RUNNING)
            client_send(sh, c, "R %s %" PRId64, t->spec.id, (int64_t) t->started);
        /* else starting or ending: its R or E goes to every daemon */
    } else {
        log_warn("unknown message from a daemon: %.40s", msg);
    }
}

/* Reads the messages waiting on c, until none is left or it is gone. */
static void read_client(struct shim *sh, struct client *c)
{
    while (!c->dead) {
        char buf[SHIM_MSG_MAX + 1];
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(2 * sizeof(int))];
        } ctl;
        struct iovec iov = {buf, SHIM_MSG_MAX};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl)};
        ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            client_remove(sh, c);
            return;
        }
        int fds[2] = {-1, -1};
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
            if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
                h->cmsg_len >= CMSG_LEN(sizeof(int)) && h->cmsg_len <= CMSG_LEN(sizeof(fds)))
                memcpy(fds, CMSG_DATA(h), h->cmsg_len - CMSG_LEN(0));
        buf[n] = '\0';
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) || strlen(buf) != (size_t) n) {
            log_warn("dropping a malformed message from a daemon");
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            continue;
        }
        handle_message(sh, c, buf, fds);
    }
}

static void accept_client(struct shim *sh)
{
    int fd = accept4(sh->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    /* The directory is the daemon's (0700); the daemon's uid only, all the same. */
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.uid != geteuid()) {
        close(fd);
        return;
    }
    (void) client_add(sh, fd, false);
}

static bool source_dead(const struct source *src)
{
    switch (src->kind) {
    case SRC_SIGNAL:
    case SRC_LISTEN:
    case SRC_SPAWNED:
        return false;
    case SRC_CLIENT:
        return ((const struct client *) src->owner)->dead;
    case SRC_EXEC:
    case SRC_WALL:
    case SRC_CPU:
    case SRC_GRACE:
    case SRC_SETTLE:
        break;
    }
    return ((const struct stask *) src->owner)->dead;
}

static void free_dead(struct shim *sh)
{
    while (sh->dead_clients) {
        struct client *c = sh->dead_clients;
        sh->dead_clients = c->next;
        free(c);
    }
    while (sh->dead_tasks) {
        struct stask *t = sh->dead_tasks;
        sh->dead_tasks = t->next;
        stask_free(t);
    }
}

static void dispatch(struct shim *sh, struct source *src, uint32_t events)
{
    struct stask *t = src->owner;
    if (src->kind >= SRC_WALL) /* a timer: take its expiry */
        drain(t->tfd[src->kind - SRC_WALL]);
    switch (src->kind) {
    case SRC_SIGNAL: {
        struct signalfd_siginfo si;
        while (read(sh->sigfd, &si, sizeof(si)) == sizeof(si))
            ; /* SIGCHLD, or a stop signal we do not obey */
        reap(sh);
        break;
    }
    case SRC_LISTEN:
        accept_client(sh);
        break;
    case SRC_SPAWNED:
        read_spawned(sh);
        break;
    case SRC_CLIENT: {
        struct client *c = src->owner;
        if (events & EPOLLOUT) {
            client_flush(c);
            if (!c->out) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->src};
                (void) epoll_ctl(sh->epfd, EPOLL_CTL_MOD, c->fd, &ev);
            }
        }
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            read_client(sh, c);
        break;
    }
    case SRC_EXEC:
        /* Already read when the child's exit came first in this batch. On failure
         * the child _exit()s right after: its SIGCHLD finishes the task. */
        if (t->exec_fd >= 0)
            on_exec_status(sh, t, false);
        break;
    case SRC_WALL:
        if (!t->walltime_hit && !t->canceled && t->phase == PHASE_RUNNING) {
            t->walltime_hit = true;
            log_to(t->log_fd, LOG_LEVEL_INFO, "task %s: walltime limit reached", t->spec.id);
            (void) cgroup_kill_once(&t->spec.cg, NULL);
        }
        break;
    case SRC_CPU:
        check_cputime(sh, t);
        break;
    case SRC_GRACE:
        if (t->phase != PHASE_SETTLING) {
            log_to(t->log_fd, LOG_LEVEL_INFO, "task %s: grace period over, SIGKILL to the tree",
                   t->spec.id);
            (void) cgroup_kill_once(&t->spec.cg, NULL);
        }
        break;
    case SRC_SETTLE:
        settle(sh, t);
        break;
    }
}

static int setup(struct shim *sh, const char *dir)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    /* Not ours to obey: the tasks would lose their parent. The daemon cancels by message. */
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sh->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    sh->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sh->sigfd < 0 || sh->epfd < 0)
        return -errno;
    sh->sig_src = (struct source){SRC_SIGNAL, NULL};
    int r = watch_fd(sh, sh->sigfd, EPOLLIN, &sh->sig_src);
    if (r < 0)
        return r;
    if (pipe2(sh->spawned, O_CLOEXEC) < 0)
        return -errno;
    (void) fcntl(sh->spawned[0], F_SETFL, O_NONBLOCK); /* the threads' end blocks */
    spawned_fd = sh->spawned[1];
    sh->spawned_src = (struct source){SRC_SPAWNED, NULL};
    r = watch_fd(sh, sh->spawned[0], EPOLLIN, &sh->spawned_src);
    if (r < 0)
        return r;

    sh->sock_path = xasprintf("%s/%d.sock", dir, (int) getpid());
    struct sockaddr_un sa;
    _cleanup_close_ int dirfd = -1;
    r = shim_sockaddr(sh->sock_path, &sa, &dirfd);
    if (r < 0)
        return r;
    sh->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (sh->listen_fd < 0)
        return -errno;
    (void) unlink(sh->sock_path);
    if (bind(sh->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
        listen(sh->listen_fd, 16) < 0)
        return -errno;
    sh->listen_src = (struct source){SRC_LISTEN, NULL};
    r = watch_fd(sh, sh->listen_fd, EPOLLIN, &sh->listen_src);
    if (r < 0)
        return r;
    (void) fcntl(SHIM_CONTROL_FD, F_SETFD, FD_CLOEXEC);
    (void) fcntl(SHIM_CONTROL_FD, F_SETFL, O_NONBLOCK);
    return client_add(sh, SHIM_CONTROL_FD, true) ? 0 : -EBADF;
}

int shim_sockaddr(const char *path, struct sockaddr_un *ret, int *ret_dirfd)
{
    *ret = (struct sockaddr_un){.sun_family = AF_UNIX};
    *ret_dirfd = -1;
    if (strlen(path) < sizeof(ret->sun_path)) {
        strcpy(ret->sun_path, path);
        return 0;
    }
    /* A long data dir: reach the socket through its directory's fd. */
    const char *slash = strrchr(path, '/');
    _cleanup_free_ char *dir = xstrndup(path, (size_t) (slash - path));
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if ((size_t) snprintf(ret->sun_path, sizeof(ret->sun_path), "/proc/self/fd/%d/%s", fd,
                          slash + 1) >= sizeof(ret->sun_path)) {
        close(fd);
        return -ENAMETOOLONG;
    }
    *ret_dirfd = fd;
    return 0;
}

int shim_main(int argc, char **argv)
{
    struct shim sh = {.epfd = -1, .sigfd = -1, .listen_fd = -1};
    int r;

    if (argc != 3 || argv[1][0] != '/') {
        fprintf(stderr,
                "usage: ocps-shim SHIM_DIR PARENT_PID (started by ocps-proxyd, not by hand)\n");
        return 2;
    }
    /* Until we listen, a dying daemon takes us with it (it has nothing to give
     * us yet); if it died before this line, our parent is no longer the pid
     * it gave us. */
    (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t) strtol(argv[2], NULL, 10))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    (void) setsid();
    (void) prctl(PR_SET_CHILD_SUBREAPER, 1);
    (void) getrlimit(RLIMIT_NOFILE, &task_nofile);
    struct rlimit most = {task_nofile.rlim_max, task_nofile.rlim_max};
    (void) setrlimit(RLIMIT_NOFILE, &most); /* a few fds per task */
    /* Once here rather than ~40 credential changes in every task. */
    bounding_set_empty = confine_drop_bounding_set() == 0;

    r = setup(&sh, argv[1]);
    if (r < 0) {
        log_error("ocps-shim: set-up failed: %s", strerror(-r));
        return 1;
    }
    (void) prctl(PR_SET_PDEATHSIG, 0);
    log_info("ocps-shim %d: listening on %s", (int) getpid(), sh.sock_path);

    while (!(sh.owner_gone && !sh.tasks)) {
        struct epoll_event ev[64];
        int n = epoll_wait(sh.epfd, ev, ELEMENTSOF(ev), -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            log_error("ocps-shim: epoll_wait: %m");
            break;
        }
        /* An event may end what a later one in the batch points to (a client
         * gone, a task finished): those are kept, marked dead, until the batch is done. */
        for (int i = 0; i < n; i++)
            if (!source_dead(ev[i].data.ptr))
                dispatch(&sh, ev[i].data.ptr, ev[i].events);
        free_dead(&sh);
    }
    (void) unlink(sh.sock_path);
    log_info("ocps-shim %d: no daemon and no tasks left, exiting", (int) getpid());
    free(sh.sock_path);
    free(sh.early);
    return 0;
}
