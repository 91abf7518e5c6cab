/*
 * shim: the long-lived parent of process tasks (see shim.h for its
 * contract): its set-up and its main loop.
 *
 * Event driven, in one thread: one epoll over a signalfd (SIGCHLD), the
 * daemons' connections (shim-conn.c), the listening socket, and per task
 * the exec-status pipe and the timerfds it needs, plus one timerfd for
 * the output cap of them all (shim-task.c). The only
 * other threads are spawners that each vfork() one command at a time and
 * report its pid (shim-task.c); the child runs shim-child.c until its
 * exec. As a child subreaper it reaps every process of every task,
 * including ones that called setsid() or double-forked.
 */
#include "shim-internal.h"
#include "util/log.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

int shim_watch_fd(struct shim *sh, int fd, uint32_t events, struct source *src)
{
    struct epoll_event ev = {.events = events, .data.ptr = src};
    return epoll_ctl(sh->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* A forked child still in its pre-exec window holds a copy of the fd, and
 * close() alone would leave it in the epoll set. */
void shim_unwatch_close(struct shim *sh, int *fd)
{
    if (*fd < 0)
        return;
    (void) epoll_ctl(sh->epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(TAKE_FD(*fd));
}

static bool source_dead(const struct source *src)
{
    switch (src->kind) {
    case SRC_SIGNAL:
    case SRC_LISTEN:
    case SRC_SPAWNED:
    case SRC_OUTPUT:
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
        client_free(c);
    }
    while (sh->dead_tasks) {
        struct stask *t = sh->dead_tasks;
        sh->dead_tasks = t->next;
        stask_free(t);
    }
}

static void dispatch(struct shim *sh, struct source *src, uint32_t events)
{
    switch (src->kind) {
    case SRC_SIGNAL: {
        struct signalfd_siginfo si;
        while (read(sh->sigfd, &si, sizeof(si)) == sizeof(si))
            ; /* SIGCHLD, or a stop signal we do not obey */
        stask_reap(sh);
        break;
    }
    case SRC_LISTEN:
        client_accept(sh);
        break;
    case SRC_SPAWNED:
        stask_read_spawned(sh);
        break;
    case SRC_OUTPUT:
        stask_check_outputs(sh);
        break;
    case SRC_CLIENT:
        client_event(sh, src->owner, events);
        break;
    case SRC_EXEC:
    case SRC_WALL:
    case SRC_CPU:
    case SRC_GRACE:
    case SRC_SETTLE:
        stask_event(sh, src->owner, src->kind);
        break;
    }
}

/* A test-only override of a limit, or the default. */
static size_t env_size(const char *name, size_t def)
{
    const char *v = getenv(name);
    return v && *v ? (size_t) strtoull(v, NULL, 10) : def;
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
    sh->protocol = shim_protocol();
    sh->queue_max = env_size("OCPS_TEST_SHIM_QUEUE_MAX", SHIM_QUEUE_MAX);
    sh->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    sh->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sh->sigfd < 0 || sh->epfd < 0)
        return -errno;
    sh->sig_src = (struct source){SRC_SIGNAL, NULL};
    int r = shim_watch_fd(sh, sh->sigfd, EPOLLIN, &sh->sig_src);
    if (r < 0)
        return r;
    r = stask_setup(sh);
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
    r = shim_watch_fd(sh, sh->listen_fd, EPOLLIN, &sh->listen_src);
    if (r < 0)
        return r;
    (void) fcntl(SHIM_CONTROL_FD, F_SETFD, FD_CLOEXEC);
    (void) fcntl(SHIM_CONTROL_FD, F_SETFL, O_NONBLOCK);
    return client_add(sh, SHIM_CONTROL_FD, true) ? 0 : -EBADF;
}

int shim_main(int argc, char **argv)
{
    struct shim sh = {.epfd = -1, .sigfd = -1, .listen_fd = -1, .out_tfd = -1};
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
    child_init();

    r = setup(&sh, argv[1]);
    if (r < 0) {
        log_error("ocps-shim: set-up failed: %s", strerror(-r));
        return 1;
    }
    (void) prctl(PR_SET_PDEATHSIG, 0);
    log_info("ocps-shim %d (protocol %d, %s): listening on %s", (int) getpid(), sh.protocol,
             OCPS_VERSION, sh.sock_path);

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
    client_close_all(&sh);
    log_info("ocps-shim %d: no daemon and no tasks left, exiting", (int) getpid());
    free(sh.sock_path);
    free(sh.early);
    return 0;
}
