/*
 * shim-task: one task's life in the shim.
 *
 * stask_start() loads the spec, arms the walltime (it counts from the
 * task's admission, so a child that blocks before its exec is ended by it
 * too), opens the default output files for the user (the child gets them
 * as its stdout and stderr), writes the `started` line into the task's
 * shim.lock and queues the task for a spawner thread, which vfork()s
 * child_run() and reports the pid. From there the task's own sources
 * drive it: the exec-status pipe (the command runs, or the child says why
 * not), the walltime timer, the tree-wide cputime check, the grace period
 * of a cancel, and once its main process is reaped the wait for its
 * cgroup to empty. One timer for all tasks looks at the sizes of their
 * outputs (the output cap). stask_finish() then classifies the outcome
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
#include <sys/stat.h>
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
    s->out_fd[0] = s->out_fd[1] = -1;
    s->cputime = json_u64(j, "cputime");
    s->walltime = json_u64(j, "walltime");
    s->memory = json_u64(j, "memory");
    s->kill_grace = json_u64(j, "kill_grace");
    s->output_limit = json_u64(j, "output_limit");
    s->admitted = (usec_t) json_u64(j, "admitted");
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
    closep(&t->out_fd[0]);
    closep(&t->out_fd[1]);
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

/* A limit has killed the tree already: another one firing meanwhile is not why it ends. */
static bool limit_killed(const struct stask *t)
{
    return t->walltime_hit || t->cputime_hit || t->output_hit;
}

/* Next look at the tree's CPU time: it cannot grow faster than 'cores' per second. */
static void check_cputime(struct shim *sh, struct stask *t)
{
    usec_t used = 0, limit = (usec_t) t->spec.cputime * USEC_PER_SEC;
    if (t->phase != PHASE_RUNNING || cgroup_cpu_usage(&t->spec.cg, &used) < 0)
        return;
    if (used >= limit) {
        if (!limit_killed(t)) {
            t->cputime_hit = true;
            kill_tree(t, "cputime limit reached by the process tree");
        }
        return;
    }
    usec_t wait = (usec_t) ((double) (limit - used) / t->spec.cores);
    arm(sh, t, SRC_CPU, MAX(wait, 50 * USEC_PER_MSEC));
}

/* ---- the output cap ------------------------------------------------------------------------ */

/*
 * The task writes its stdout and stderr itself, so the shim looks at their
 * sizes: through the fds it keeps (the default files, which it opened, and
 * the task's own files through /proc/<pid>/fd at its exec), on one timer
 * for every task, and once more at the end. A task is looked at again
 * when it could have filled what is left of its cap at OUTPUT_RATE_MAX
 * (the page cache's speed here), between OUTPUT_CHECK_MIN and
 * OUTPUT_CHECK_MAX from now: a quiet task costs two looks a second under
 * the 1 GiB default, and one near its cap is caught within 10 ms of
 * writing (what it writes meanwhile stays in its file).
 */
#define OUTPUT_RATE_MAX  (2ULL << 30) /* bytes per second */
#define OUTPUT_CHECK_MIN (10 * USEC_PER_MSEC)
#define OUTPUT_CHECK_MAX (1 * USEC_PER_SEC)

/* Bytes in the task's outputs: regular files only, one file named twice counted once. */
static uint64_t output_size(const struct stask *t)
{
    struct stat st[2];
    uint64_t n = 0;
    for (int i = 0; i < 2; i++) {
        if (t->out_fd[i] < 0 || fstat(t->out_fd[i], &st[i]) < 0 || !S_ISREG(st[i].st_mode)) {
            st[i].st_ino = 0;
            continue;
        }
        if (i == 1 && st[0].st_ino == st[1].st_ino && st[0].st_dev == st[1].st_dev)
            continue;
        n += (uint64_t) st[i].st_size;
    }
    return n;
}

/* The shared timer fires no later than 'when' (CLOCK_MONOTONIC). */
static void output_timer_at(struct shim *sh, usec_t when)
{
    if (sh->out_armed && sh->out_armed <= when)
        return;
    struct itimerspec its = {.it_value = {when / USEC_PER_SEC, (when % USEC_PER_SEC) * 1000}};
    if (timerfd_settime(sh->out_tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        sh->out_armed = when;
}

/* Past the cap: killed. Otherwise looked at again in time (see above). */
static void check_output(struct shim *sh, struct stask *t, usec_t now)
{
    uint64_t size = output_size(t), limit = t->spec.output_limit;
    t->out_next = 0;
    if (size > limit) {
        if (!limit_killed(t) && !t->canceled) {
            t->output_hit = true;
            char lim[32];
            _cleanup_free_ char *why =
                xasprintf("output limit %s reached (%" PRIu64 " bytes of stdout and stderr)",
                          format_size_human(limit, lim), size);
            kill_tree(t, why);
        }
        return;
    }
    usec_t wait = (usec_t) ((limit - size) / (OUTPUT_RATE_MAX / USEC_PER_SEC));
    t->out_next = now + MIN(MAX(wait, OUTPUT_CHECK_MIN), OUTPUT_CHECK_MAX);
    output_timer_at(sh, t->out_next);
}

/* The command runs: a handle on each output the task opened itself, and the first look. */
static void watch_outputs(struct shim *sh, struct stask *t)
{
    if (!t->spec.output_limit)
        return;
    for (int i = 0; i < 2; i++)
        if (t->out_fd[i] < 0) {
            /* Its own file, as it is open in the task: no path is resolved, as
             * root or otherwise. Gone already (the task ended): the end's look
             * goes without. */
            char proc[48];
            snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", (int) t->main_pid, 1 + i);
            t->out_fd[i] = open(proc, O_PATH | O_CLOEXEC);
        }
    check_output(sh, t, now_monotonic());
}

void stask_check_outputs(struct shim *sh)
{
    uint64_t expirations;
    (void) !read(sh->out_tfd, &expirations, sizeof(expirations));
    usec_t now = now_monotonic(), next = 0;
    sh->out_armed = 0;
    for (struct stask *t = sh->tasks; t; t = t->next) {
        if (t->phase != PHASE_RUNNING || !t->out_next)
            continue;
        if (t->out_next <= now)
            check_output(sh, t, now);
        if (t->out_next && (!next || t->out_next < next))
            next = t->out_next;
    }
    if (next)
        output_timer_at(sh, next);
}

/* The end of a task: outcome recorded, lock released, daemons told, task forgotten. */
static void stask_finish(struct shim *sh, struct stask *t)
{
    const struct shim_spec *s = &t->spec;
    int st = t->main_status;
    bool ran = !t->fail_reason;
    /* The last look: what it wrote since the one before counts too. */
    if (ran && s->output_limit && !t->output_hit && output_size(t) > s->output_limit)
        t->output_hit = true;
    struct outcome_facts f = {
        .memory = s->memory,
        .cputime = s->cputime,
        .walltime = s->walltime,
        .output = s->output_limit,
        .start_error = t->fail_reason,
        .start_error_system = t->fail_state == TASK_SYSTEM_ERROR,
        .canceled = t->canceled,
        .walltime_hit = t->walltime_hit,
        .cputime_hit = t->cputime_hit,
        .output_hit = t->output_hit,
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
    if (t->spec.cputime)
        check_cputime(sh, t);
    watch_outputs(sh, t);
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

/*
 * The default output files (in the task's directory, which is the
 * daemon's) are the shim's to make, and the task's user's to own: it may
 * be handed them. The shim keeps them open, for their sizes. A file the
 * task named is opened by the child, as the user (shim-child.c).
 */
static char *open_default_outputs(struct stask *t)
{
    const struct shim_spec *s = &t->spec;
    for (int i = 0; i < 2; i++) {
        if (s->out_as_user[i])
            continue;
        int fd = open(s->out_path[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0 || (s->user.change && fchown(fd, s->user.uid, s->user.gid) < 0)) {
            char *why =
                xasprintf("shim: cannot make %s %s: %m", i ? "stderr" : "stdout", s->out_path[i]);
            if (fd >= 0)
                close(fd);
            return why;
        }
        t->out_fd[i] = t->spec.out_fd[i] = fd;
    }
    return NULL;
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

    char *why = open_default_outputs(t);
    if (why)
        return fail_start(sh, t, why);

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
        if (t->walltime_hit) /* ... or the kill of its walltime */
            (void) cgroup_kill_once(&t->spec.cg, NULL);
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
    t->out_fd[0] = t->out_fd[1] = -1;
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
    if (t->spec.walltime) {
        /* From its admission, not its exec: whatever holds it up before its
         * command runs (a FIFO as stdout, a hung mount) counts. */
        usec_t limit = (usec_t) t->spec.walltime * USEC_PER_SEC;
        usec_t used = t->spec.admitted ? MAX(now_realtime() - t->spec.admitted, 0) : 0;
        arm(sh, t, SRC_WALL, limit > used ? limit - used : 1);
    }
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
        if (t->phase == PHASE_SETTLING || t->canceled || (!t->walltime_hit && limit_killed(t)))
            break;
        if (!t->walltime_hit) {
            t->walltime_hit = true;
            kill_tree(t, t->phase == PHASE_STARTING
                             ? "walltime limit reached before the command started"
                             : "walltime limit reached");
        } else {
            (void) cgroup_kill_once(&t->spec.cg, NULL);
        }
        /* A child not yet in its cgroup (still queued for a spawner, or just
         * forked) escapes a kill: again until it is gone. */
        if (t->phase == PHASE_STARTING)
            arm(sh, t, SRC_WALL, 100 * USEC_PER_MSEC);
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
    case SRC_OUTPUT:
        break; /* not a task's */
    }
}

int stask_setup(struct shim *sh)
{
    sh->out_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (sh->out_tfd < 0)
        return -errno;
    sh->out_src = (struct source){SRC_OUTPUT, NULL};
    int r = shim_watch_fd(sh, sh->out_tfd, EPOLLIN, &sh->out_src);
    if (r < 0)
        return r;
    if (pipe2(sh->spawned, O_CLOEXEC) < 0)
        return -errno;
    (void) fcntl(sh->spawned[0], F_SETFL, O_NONBLOCK); /* the threads' end blocks */
    spawned_fd = sh->spawned[1];
    sh->spawned_src = (struct source){SRC_SPAWNED, NULL};
    return shim_watch_fd(sh, sh->spawned[0], EPOLLIN, &sh->spawned_src);
}
