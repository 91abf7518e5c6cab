/*
 * shim-task: one task's life in the shim.
 *
 * stask_start() loads the spec, writes the `started` line into the
 * task's shim.lock and queues the task for a spawner thread, which
 * vfork()s child_run() and reports the pid. From there the task's own
 * sources drive it: the exec-status pipe (the command runs, or the child
 * says why not), the walltime timer, the tree-wide cputime check, the
 * grace period of a cancel, and once its main process is reaped the wait
 * for its cgroup to empty. stask_finish() then classifies the outcome
 * (outcome_classify), writes exit.json, releases the lock and tells every
 * daemon.
 */
#include "layout.h"
#include "shim-internal.h"
#include "util/json.h"
#include "util/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

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

/* ---- timers -------------------------------------------------------------------------------- */

static struct source *tsrc(struct stask *t, enum source_kind k)
{
    return &t->src[k - SRC_EXEC];
}

/* Arms one of the task's timers, creating it on first use. */
static int arm(struct shim *sh, struct stask *t, enum source_kind k, usec_t after)
{
    int *fd = &t->tfd[k - SRC_WALL];
    if (*fd < 0) {
        *fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (*fd < 0 || shim_watch_fd(sh, *fd, EPOLLIN, tsrc(t, k)) < 0) {
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

/* ---- one task ------------------------------------------------------------------------------ */

struct stask *stask_find(struct shim *sh, const char *id)
{
    for (struct stask *t = sh->tasks; t; t = t->next)
        if (streq(t->spec.id, id))
            return t;
    return NULL;
}

/* After stask_finish(), which took its fds out of the epoll set. */
void stask_free(struct stask *t)
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

/* A limit reached, or a cancel's grace period over: SIGKILL to the whole tree. */
static void kill_tree(struct stask *t, const char *why)
{
    log_to(t->log_fd, LOG_LEVEL_INFO, "task %s: %s", t->spec.id, why);
    (void) cgroup_kill_once(&t->spec.cg, NULL);
}

void stask_cancel(struct shim *sh, struct stask *t)
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
            kill_tree(t, "cputime limit reached by the process tree");
        }
        return;
    }
    usec_t wait = (usec_t) ((double) (limit - used) / t->spec.cores);
    arm(sh, t, SRC_CPU, MAX(wait, 50 * USEC_PER_MSEC));
}

/* The end of a task: outcome recorded, lock released, daemons told, task forgotten. */
static void stask_finish(struct shim *sh, struct stask *t)
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
    client_broadcast(sh, "E %s", t->spec.id);

    for (struct stask **p = &sh->tasks; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    for (size_t i = 0; i < ELEMENTSOF(t->tfd); i++)
        shim_unwatch_close(sh, &t->tfd[i]);
    shim_unwatch_close(sh, &t->exec_fd);
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
    stask_finish(sh, t);
}

static void on_running(struct shim *sh, struct stask *t)
{
    t->phase = PHASE_RUNNING;
    t->started = now_realtime();
    client_broadcast(sh, "R %s %" PRId64, t->spec.id, (int64_t) t->started);
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
    shim_unwatch_close(sh, &t->exec_fd);
    if (n == sizeof(ce)) {
        t->fail_reason = child_error_describe(&t->spec, &ce, &t->fail_state);
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

void stask_reap(struct shim *sh)
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
 * spawners beyond SPAWNERS_KEEP leave after SPAWNER_IDLE_S. child_run()
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
        child_run(&t->spec, t->exec_w);
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
    stask_finish(sh, t);
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
        if (shim_watch_fd(sh, t->exec_fd, EPOLLIN, tsrc(t, SRC_EXEC)) < 0)
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

void stask_read_spawned(struct shim *sh)
{
    struct spawn_done d;
    /* A task cannot end while it is being spawned: d.t is alive. */
    while (read(sh->spawned[0], &d, sizeof(d)) == sizeof(d))
        on_spawned(sh, &d);
}

/* "S <id> <task_dir>" with the locked shim.lock and the spec: start the task. */
void stask_start(struct shim *sh, const char *id, const char *task_dir, int lock_fd, int spec_fd)
{
    _cleanup_close_ int spec = spec_fd;
    if (stask_find(sh, id)) {
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
        stask_finish(sh, t);
        return;
    }

    if (lock_fd < 0)
        return fail_start(sh, t,
                          xstrdup("shim: the start request came without the task's lock "
                                  "(out of file descriptors?)"));
    spawn(sh, t);
}

void stask_event(struct shim *sh, struct stask *t, enum source_kind k)
{
    if (k >= SRC_WALL) { /* a timer: take its expiry */
        uint64_t expirations;
        (void) !read(t->tfd[k - SRC_WALL], &expirations, sizeof(expirations));
    }
    switch (k) {
    case SRC_EXEC:
        /* Already read when the child's exit came first in this batch. On failure
         * the child _exit()s right after: its SIGCHLD finishes the task. */
        if (t->exec_fd >= 0)
            on_exec_status(sh, t, false);
        break;
    case SRC_WALL:
        if (!t->walltime_hit && !t->canceled && t->phase == PHASE_RUNNING) {
            t->walltime_hit = true;
            kill_tree(t, "walltime limit reached");
        }
        break;
    case SRC_CPU:
        check_cputime(sh, t);
        break;
    case SRC_GRACE:
        if (t->phase != PHASE_SETTLING)
            kill_tree(t, "grace period over, SIGKILL to the tree");
        break;
    case SRC_SETTLE:
        settle(sh, t);
        break;
    case SRC_SIGNAL:
    case SRC_LISTEN:
    case SRC_SPAWNED:
    case SRC_CLIENT:
        break; /* not a task's */
    }
}

int stask_setup(struct shim *sh)
{
    if (pipe2(sh->spawned, O_CLOEXEC) < 0)
        return -errno;
    (void) fcntl(sh->spawned[0], F_SETFL, O_NONBLOCK); /* the threads' end blocks */
    spawned_fd = sh->spawned[1];
    sh->spawned_src = (struct source){SRC_SPAWNED, NULL};
    return shim_watch_fd(sh, sh->spawned[0], EPOLLIN, &sh->spawned_src);
}
