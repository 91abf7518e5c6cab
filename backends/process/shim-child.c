/*
 * shim-child: the task's process between fork and exec.
 *
 * child_run() runs in a child that a spawner thread vfork()ed: it borrows
 * the shim's memory until it execs, so it neither allocates nor takes
 * locks. It joins the task's cgroup, sets the task's limits, takes its
 * outputs (the default files the shim opened for it; the paths the task
 * named it opens itself, as the task's user and never as root), drops to
 * the task's user and execs the command; a failure on
 * the way is written to the exec-status pipe as a struct child_error
 * (the stage and the errno), which child_error_describe() turns into the
 * task's reason.
 */
#include "shim-internal.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* The soft RLIMIT_NOFILE we found: tasks get it back (select() users break above 1024). */
static struct rlimit task_nofile;
/* We emptied our bounding set at start: tasks inherit it empty. */
static bool bounding_set_empty;

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

void child_init(void)
{
    (void) getrlimit(RLIMIT_NOFILE, &task_nofile);
    struct rlimit most = {task_nofile.rlim_max, task_nofile.rlim_max};
    (void) setrlimit(RLIMIT_NOFILE, &most); /* a few fds per task */
    /* Once here rather than ~40 credential changes in every task. */
    bounding_set_empty = confine_drop_bounding_set() == 0;
}

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

_noreturn_ void child_run(struct shim_spec *s, int errfd)
{
    sigset_t all;
    int r;

    /* The status pipe goes to 3, the default outputs the shim opened to 1
     * and 2; none of them is below 4 unless the shim's own stdio was
     * closed, in which case it is moved out of the way first. (Local
     * copies: s is the shim's own memory.) */
    int out[2] = {s->out_fd[0], s->out_fd[1]};
    for (int i = 0; i < 2; i++)
        if (out[i] >= 0 && out[i] < 4 && (out[i] = fcntl(out[i], F_DUPFD, 4)) < 0)
            _exit(127);
    if (errfd != 3) {
        errfd = dup3(errfd, 3, O_CLOEXEC);
        if (errfd < 0)
            _exit(127);
    }
    for (int i = 0; i < 2; i++)
        if (out[i] >= 0 && dup2(out[i], 1 + i) < 0)
            child_fail(errfd, i ? STAGE_STDERR : STAGE_STDOUT, errno);
    /* Then let go of every other task's pipes and locks: should this child
     * block before its exec (a FIFO, a hung mount), it holds nothing of theirs. */
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

    const char *step = NULL;
    r = confine_apply(&s->user, bounding_set_empty, &step);
    if (r < 0)
        child_fail(errfd, STAGE_CONFINE, r);

    /* Paths the task named, opened as its user (all of its groups, after
     * the drop): a request cannot make us write where its user may not. */
    for (int i = 0; i < 2; i++) {
        if (!s->out_as_user[i])
            continue;
        int fd = i == 1 && s->out_as_user[0] && streq(s->out_path[0], s->out_path[1])
                     ? STDOUT_FILENO
                     : open_output(s->out_path[i]);
        /* dup2() onto itself would leave its close-on-exec flag set. */
        if (fd < 0 || (fd == 1 + i ? fcntl(fd, F_SETFD, 0) : dup2(fd, 1 + i)) < 0)
            child_fail(errfd, i ? STAGE_STDERR : STAGE_STDOUT, fd < 0 ? fd : -errno);
    }
    if (chdir(s->workdir) < 0)
        child_fail(errfd, STAGE_WORKDIR, errno);
    umask(022);
    /* Nothing of ours leaks into the task: the lock, the status pipe, the rest. */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

    exec_in_path(s->argv, s->env);
    child_fail(errfd, STAGE_EXEC, errno);
}

char *child_error_describe(const struct shim_spec *s, const struct child_error *e,
                           enum task_state *ret_state)
{
    const char *what = strerror(e->error);
    *ret_state = TASK_EXECUTOR_ERROR;
    switch ((enum child_stage) e->stage) {
    case STAGE_CGROUP:
        *ret_state = TASK_SYSTEM_ERROR;
        return xasprintf("cannot enter the task's cgroup: %s", what);
    case STAGE_RLIMIT:
        *ret_state = TASK_SYSTEM_ERROR;
        return xasprintf("cannot set RLIMIT_CPU: %s", what);
    case STAGE_STDIN:
        *ret_state = TASK_SYSTEM_ERROR;
        return xasprintf("cannot open /dev/null: %s", what);
    case STAGE_STDOUT:
        return xasprintf("cannot open stdout %s: %s", s->out_path[0], what);
    case STAGE_STDERR:
        return xasprintf("cannot open stderr %s: %s", s->out_path[1], what);
    case STAGE_CONFINE:
        *ret_state = TASK_SYSTEM_ERROR;
        return xasprintf("cannot drop privileges: %s", what);
    case STAGE_WORKDIR:
        return xasprintf("cannot enter workdir %s: %s", s->workdir, what);
    case STAGE_EXEC:
    default:
        return xasprintf("exec %s: %s", s->argv[0], what);
    }
}
