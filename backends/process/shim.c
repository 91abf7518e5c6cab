/*
 * shim: the per-task parent process (see shim.h for its contract).
 *
 * Single-threaded and event driven: one poll() over a signalfd (SIGCHLD,
 * and SIGTERM/SIGINT/SIGHUP meaning "cancel") and timerfds (walltime,
 * the tree-wide cputime check, the kill grace period). As a child
 * subreaper it reaps every process of the task, including ones that
 * called setsid() or double-forked, so "the tree is gone" is a fact it
 * observes rather than assumes.
 */
#include "shim.h"
#include "cgroup.h"
#include "confine.h"
#include "util/log.h"
#include "util/util.h"

#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

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

static uint64_t get_u64(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t) v->valuedouble : 0;
}

static const char *get_str(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int spec_load(const char *task_dir, struct shim_spec *s)
{
    _cleanup_free_ char *path = xasprintf("%s/shim.json", task_dir);
    _cleanup_free_ char *data = NULL;
    int r = read_file(path, 64 << 20, &data, NULL);
    if (r < 0)
        return r;
    cJSON *j = cJSON_Parse(data);
    if (!j)
        return -EBADMSG;

    const cJSON *argv = cJSON_GetObjectItemCaseSensitive(j, "argv");
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(j, "env");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(j, "groups");
    const cJSON *cg = cJSON_GetObjectItemCaseSensitive(j, "cgroup");
    const char *id = get_str(j, "id"), *wd = get_str(j, "workdir");
    const char *out = get_str(j, "stdout"), *err = get_str(j, "stderr");
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
    s->user.uid = (uid_t) get_u64(j, "uid");
    s->user.gid = (gid_t) get_u64(j, "gid");
    s->user.n_groups = cJSON_IsArray(groups) ? cJSON_GetArraySize(groups) : 0;
    s->user.groups = xcalloc(s->user.n_groups + 1, sizeof(gid_t));
    int i = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups) s->user.groups[i++] = (gid_t) g->valuedouble;
    s->cputime = get_u64(j, "cputime");
    s->walltime = get_u64(j, "walltime");
    s->memory = get_u64(j, "memory");
    s->kill_grace = get_u64(j, "kill_grace");
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
        const char *end = strchrnul(p, ':');
        _cleanup_free_ char *full =
            xasprintf("%.*s%s%s", (int) (end - p), p, end == p ? "" : "/", argv[0]);
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

    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
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
    r = confine_apply(&s->user, &step);
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

int shim_read_started(const char *task_dir, usec_t *ret)
{
    _cleanup_free_ char *path = xasprintf("%s/started", task_dir);
    _cleanup_free_ char *data = NULL;
    int r = read_file(path, 64, &data, NULL);
    if (r < 0)
        return r;
    *ret = (usec_t) strtoll(data, NULL, 10);
    return *ret > 0 ? 0 : -EBADMSG;
}

/* ---- the event loop ------------------------------------------------------------------------ */

struct shim {
    struct shim_spec spec;
    const char *task_dir;
    pid_t main_pid;
    int main_status;
    bool main_done;
    bool canceled, walltime_hit, cputime_hit;
    uint64_t oom_kills; /* read before the cgroup goes */
    usec_t cpu_used;
    int sigfd, wall_tfd, cpu_tfd, grace_tfd;
};

static void arm(int tfd, usec_t after)
{
    struct itimerspec its = {.it_value = {after / USEC_PER_SEC, (after % USEC_PER_SEC) * 1000}};
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    (void) timerfd_settime(tfd, 0, &its, NULL);
}

static void drain(int fd)
{
    uint64_t v;
    (void) !read(fd, &v, sizeof(v));
}

static void reap(struct shim *sh)
{
    for (;;) {
        int status;
        pid_t p = waitpid(-1, &status, WNOHANG);
        if (p <= 0)
            break;
        if (p == sh->main_pid) {
            sh->main_done = true;
            sh->main_status = status;
        }
    }
}

static void cancel(struct shim *sh)
{
    if (sh->canceled)
        return;
    sh->canceled = true;
    log_info("task %s: cancel requested, SIGTERM to the tree", sh->spec.id);
    (void) cgroup_signal(&sh->spec.cg, SIGTERM);
    /* A process stopped with SIGSTOP would never see the SIGTERM. */
    (void) cgroup_signal(&sh->spec.cg, SIGCONT);
    if (sh->spec.kill_grace == 0)
        (void) cgroup_kill(&sh->spec.cg);
    else
        arm(sh->grace_tfd, (usec_t) sh->spec.kill_grace * USEC_PER_SEC);
}

/* Next look at the tree's CPU time: it cannot grow faster than 'cores' per second. */
static void check_cputime(struct shim *sh)
{
    usec_t used = 0, limit = (usec_t) sh->spec.cputime * USEC_PER_SEC;
    if (cgroup_cpu_usage(&sh->spec.cg, &used) < 0)
        return;
    if (used >= limit) {
        if (!sh->cputime_hit) {
            sh->cputime_hit = true;
            log_info("task %s: cputime limit reached by the process tree", sh->spec.id);
            (void) cgroup_kill(&sh->spec.cg);
        }
        return;
    }
    usec_t wait = (usec_t) ((double) (limit - used) / sh->spec.cores);
    arm(sh->cpu_tfd, MAX(wait, 50 * USEC_PER_MSEC));
}

static void classify(struct shim *sh, struct task_outcome *o, char **reason)
{
    const struct shim_spec *s = &sh->spec;
    int st = sh->main_status;
    uint64_t ooms = sh->oom_kills;
    usec_t cpu = sh->cpu_used;
    _cleanup_free_ char *mem = task_outcome_bytes(s->memory);

    o->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    o->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    bool cpu_over = s->cputime && cpu >= (usec_t) s->cputime * USEC_PER_SEC * 99 / 100;

    if (sh->canceled) {
        o->state = TASK_CANCELED;
        *reason = xstrdup("cancelled by request");
    } else if (sh->walltime_hit) {
        o->state = TASK_EXECUTOR_ERROR;
        *reason = xasprintf("killed: walltime limit %" PRIu64 " s exceeded", s->walltime);
    } else if (sh->cputime_hit || o->signal == SIGXCPU || (o->signal == SIGKILL && cpu_over)) {
        o->state = TASK_EXECUTOR_ERROR;
        *reason = xasprintf("killed: cputime limit %" PRIu64 " s exceeded", s->cputime);
    } else if (o->signal == SIGKILL && ooms > 0) {
        o->state = TASK_EXECUTOR_ERROR;
        *reason = xasprintf("killed: memory limit %s exceeded (OOM)", mem);
    } else if (o->signal) {
        o->state = TASK_EXECUTOR_ERROR;
        *reason = xasprintf("killed by signal %d (%s)", o->signal,
                            sigabbrev_np(o->signal) ? sigabbrev_np(o->signal) : "?");
    } else if (o->exit_code == 0) {
        o->state = TASK_COMPLETE;
        *reason = xstrdup("exited with status 0");
    } else {
        o->state = TASK_EXECUTOR_ERROR;
        if (ooms > 0)
            *reason = xasprintf("exited with status %d: a process was killed, memory "
                                "limit %s exceeded (OOM)",
                                o->exit_code, mem);
        else
            *reason = xasprintf("exited with status %d", o->exit_code);
    }
    o->reason = *reason;
}

/* Kills what is left of the tree and reaps it all (we are its subreaper). */
static void finish_tree(struct shim *sh)
{
    if (cgroup_is_populated(&sh->spec.cg))
        (void) cgroup_kill(&sh->spec.cg);
    for (;;) {
        int status;
        pid_t p = waitpid(-1, &status, 0);
        if (p < 0 && errno == EINTR)
            continue;
        if (p < 0)
            break;
        if (p == sh->main_pid && !sh->main_done) {
            sh->main_done = true;
            sh->main_status = status;
        }
    }
    /* Reaped is not yet uncharged: give the cgroup a moment to empty. */
    for (int i = 0; i < 2000 && cgroup_is_populated(&sh->spec.cg); i++)
        usleep(1000);
    (void) cgroup_oom_kills(&sh->spec.cg, &sh->oom_kills);
    (void) cgroup_cpu_usage(&sh->spec.cg, &sh->cpu_used);
    int r = cgroup_destroy(&sh->spec.cg);
    if (r < 0)
        log_warn("task %s: cannot remove its cgroup: %s", sh->spec.id, strerror(-r));
}

static int event_loop(struct shim *sh)
{
    while (!sh->main_done) {
        struct pollfd p[4] = {
            {sh->sigfd, POLLIN, 0},
            {sh->wall_tfd, POLLIN, 0},
            {sh->cpu_tfd, POLLIN, 0},
            {sh->grace_tfd, POLLIN, 0},
        };
        if (poll(p, ELEMENTSOF(p), -1) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sh->sigfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGCHLD)
                    reap(sh);
                else
                    cancel(sh);
            }
        }
        if (p[1].revents & POLLIN) {
            drain(sh->wall_tfd);
            if (!sh->walltime_hit && !sh->canceled) {
                sh->walltime_hit = true;
                log_info("task %s: walltime limit reached", sh->spec.id);
                (void) cgroup_kill(&sh->spec.cg);
            }
        }
        if (p[2].revents & POLLIN) {
            drain(sh->cpu_tfd);
            check_cputime(sh);
        }
        if (p[3].revents & POLLIN) {
            drain(sh->grace_tfd);
            log_info("task %s: grace period over, SIGKILL to the tree", sh->spec.id);
            (void) cgroup_kill(&sh->spec.cg);
        }
    }
    return 0;
}

static void notify_running(const char *task_dir, usec_t started)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, (int64_t) started);
    _cleanup_free_ char *path = xasprintf("%s/started", task_dir);
    if (write_file_replace(path, buf, n, 0600) < 0)
        log_warn("cannot write %s", path);
    n = snprintf(buf, sizeof(buf), "R %" PRId64 "\n", (int64_t) started);
    (void) !write(SHIM_STATUS_FD, buf, n);
}

int shim_main(int argc, char **argv)
{
    struct shim sh = {.main_pid = -1, .sigfd = -1, .wall_tfd = -1, .cpu_tfd = -1, .grace_tfd = -1};
    struct task_outcome o = {.state = TASK_SYSTEM_ERROR, .exit_code = -1};
    _cleanup_free_ char *reason = NULL;
    int errpipe[2] = {-1, -1};
    sigset_t mask;
    int r;

    if (argc != 3 || argv[1][0] != '/') {
        fprintf(stderr,
                "usage: ocps-shim TASK_DIR PARENT_PID (started by ocps-proxyd, not by hand)\n");
        return 2;
    }
    sh.task_dir = argv[1];
    /* Until shim.pid exists a dying daemon takes us with it; if it died
     * before this line, our parent is no longer the pid it gave us. */
    (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t) strtol(argv[2], NULL, 10))
        return 1;
    signal(SIGPIPE, SIG_IGN); /* the daemon may be gone */
    (void) setsid();

    /* Refuse to run twice: one shim per task directory holds shim.lock. */
    if (flock(SHIM_LOCK_FD, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, "ocps-shim: cannot lock %s/shim.lock: %m\n", sh.task_dir);
        return 1;
    }
    /* A restarted daemon that finds the lock held always finds our pid. */
    char pidbuf[24];
    int pidlen = snprintf(pidbuf, sizeof(pidbuf), "%d", getpid());
    _cleanup_free_ char *pidpath = xasprintf("%s/shim.pid", sh.task_dir);
    if (write_file_replace(pidpath, pidbuf, pidlen, 0600) < 0) {
        fprintf(stderr, "ocps-shim: cannot write %s: %m\n", pidpath);
        return 1;
    }
    (void) prctl(PR_SET_PDEATHSIG, 0);
    (void) fcntl(SHIM_LOCK_FD, F_SETFD, FD_CLOEXEC);
    (void) fcntl(SHIM_STATUS_FD, F_SETFD, FD_CLOEXEC);

    r = spec_load(sh.task_dir, &sh.spec);
    if (r < 0) {
        reason = xasprintf("the shim cannot read its spec: %s", strerror(-r));
        o.reason = reason;
        o.finished = now_realtime();
        (void) task_outcome_write(sh.task_dir, &o);
        return 1;
    }
    (void) prctl(PR_SET_CHILD_SUBREAPER, 1);

    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sh.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    sh.wall_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    sh.cpu_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    sh.grace_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (sh.sigfd < 0 || sh.wall_tfd < 0 || sh.cpu_tfd < 0 || sh.grace_tfd < 0 ||
        pipe2(errpipe, O_CLOEXEC) < 0) {
        reason = xasprintf("shim set-up failed: %m");
        goto done;
    }

    sh.main_pid = fork();
    if (sh.main_pid < 0) {
        reason = xasprintf("fork: %m");
        goto done;
    }
    if (sh.main_pid == 0) {
        close(errpipe[0]);
        run_child(&sh.spec, errpipe[1]);
    }
    close(errpipe[1]);

    struct child_error ce;
    ssize_t n;
    do
        n = read(errpipe[0], &ce, sizeof(ce));
    while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == sizeof(ce)) {
        reason = describe_child_error(&sh.spec, &ce, &o.state);
        finish_tree(&sh);
        goto done;
    }

    o.started = now_realtime();
    notify_running(sh.task_dir, o.started);
    log_info("task %s: running as pid %d", sh.spec.id, sh.main_pid);
    if (sh.spec.walltime)
        arm(sh.wall_tfd, (usec_t) sh.spec.walltime * USEC_PER_SEC);
    if (sh.spec.cputime)
        check_cputime(&sh);

    r = event_loop(&sh);
    if (r < 0) {
        reason = xasprintf("shim event loop: %s", strerror(-r));
        (void) cgroup_kill(&sh.spec.cg);
        finish_tree(&sh);
        goto done;
    }
    finish_tree(&sh);
    classify(&sh, &o, &reason);

done:
    o.reason = reason ? reason : "shim failed";
    o.finished = now_realtime();
    log_info("task %s: %s: %s", sh.spec.id, task_state_to_string(o.state), o.reason);
    r = task_outcome_write(sh.task_dir, &o);
    if (r < 0)
        log_error("task %s: cannot record the outcome: %s", sh.spec.id, strerror(-r));
    spec_done(&sh.spec);
    return r < 0 ? 1 : 0;
}
