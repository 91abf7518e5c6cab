/*
 * process-shims: the daemon's connections to its shims.
 *
 * The daemon starts its own shim (ocps-shim, see shim.h) when it first
 * needs one, and takes its hello before it hands it a task; it connects
 * to those an earlier daemon started when it recovers their tasks. One
 * monitor thread reads every connection ("R" running, "E" ended; no
 * timers, no polling) and reports running() and ended() to the
 * supervisor. The first message on a connection says which protocol the
 * shim speaks: one we cannot follow has its tasks ended. A shim that
 * hangs up has died (its tasks end with what they recorded, or as lost)
 * or dropped us for reading too slowly: then we reconnect and ask about
 * its tasks again.
 */
#include "process-internal.h"
#include "layout.h"
#include "shim.h"
#include "util/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

struct ptask *ptask_free(struct ptask *t)
{
    if (!t)
        return NULL;
    free(t->id);
    free(t->task_dir);
    free(t);
    return NULL;
}

void process_wake(struct process_state *ps)
{
    uint64_t one = 1;
    (void) !write(ps->wake_fd, &one, sizeof(one));
}

/* Under ps->lock. */
struct ptask *ptask_find(struct process_state *ps, const char *id, struct shim_conn *shim)
{
    for (struct ptask *t = ps->tasks; t; t = t->next)
        if (streq(t->id, id) && (!shim || t->shim == shim))
            return t;
    return NULL;
}

/* Under ps->lock. */
void ptask_unlink(struct process_state *ps, struct ptask *t)
{
    for (struct ptask **p = &ps->tasks; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            return;
        }
}

/* One message to a shim, with NULL or two fds to pass along (SCM_RIGHTS).
 * Under ps->lock. */
int shim_conn_send(struct shim_conn *c, const char *text, const int fds[2])
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

/* t's end: what the shim recorded, or else reason, after making sure that
 * nothing of the task outlives it. */
static void report_end(struct process_state *ps, struct ptask *t, const char *reason)
{
    struct task_outcome o;
    int r = task_outcome_read(t->task_dir, &o);
    if (r < 0) {
        struct cgroup cg;
        cgroup_child(&ps->parent, t->id, &cg);
        if (!ps->cgroup_error)
            (void) cgroup_kill(&cg);
        cgroup_done(&cg);
        usec_t started = 0;
        (void) shim_read_started(t->task_dir, &started);
        outcome_classify(&(struct outcome_facts){.canceled = t->cancel_requested,
                                                 .system_error = reason,
                                                 .exit_code = -1,
                                                 .started = started},
                         &o);
    }
    ps->listener.ended(ps->listener.userdata, t->id, &o);
    task_outcome_done(&o);
}

/* Under ps->lock: no new task and no new message goes to c. */
static void conn_unlink(struct process_state *ps, struct shim_conn *c)
{
    c->dead = true;
    if (ps->own == c)
        ps->own = NULL;
    for (struct shim_conn **p = &ps->shims; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
}

/* Under ps->lock: t follows its task on c, and the shim is asked about it
 * ("W", and "C" again for a cancel that may have met a dropped
 * connection). Its answer, R or E, or a hang-up instead, reaches the
 * monitor like any other message. */
static void watch_on(struct shim_conn *c, struct ptask *t)
{
    _cleanup_free_ char *watch = xasprintf("W %s", t->id);
    t->shim = c;
    (void) shim_conn_send(c, watch, NULL);
    if (t->cancel_requested) {
        _cleanup_free_ char *cancel = xasprintf("C %s", t->id);
        (void) shim_conn_send(c, cancel, NULL);
    }
}

/* Every task still on c ends with what it recorded, or with reason; then c
 * is closed and freed. */
static void conn_end(struct process_state *ps, struct shim_conn *c, const char *reason)
{
    struct ptask *orphans = NULL;

    pthread_mutex_lock(&ps->lock);
    conn_unlink(ps, c);
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

    bool ended = orphans != NULL;
    if (ended)
        log_warn("process backend: shim %d is gone, or cannot be followed: ending its tasks",
                 (int) c->pid);
    while (orphans) {
        struct ptask *t = orphans;
        orphans = t->next;
        report_end(ps, t, reason);
        ptask_free(t);
    }
    if (c->child) {
        /* It closed its end: it is exiting. Unless it lives on where we could
         * not reach it, and we just ended its tasks: then it goes too. */
        if (ended && waitpid(c->pid, NULL, WNOHANG) == 0)
            (void) kill(c->pid, SIGKILL);
        (void) waitpid(c->pid, NULL, 0);
    }
    free(c);
}

/* Whether the shim behind c still runs (a child of ours that has exited is reaped). */
static bool shim_alive(struct shim_conn *c)
{
    if (!c->child)
        return kill(c->pid, 0) == 0 || errno == EPERM;
    pid_t p = waitpid(c->pid, NULL, WNOHANG);
    if (p == c->pid)
        c->child = false;
    return p == 0;
}

/* c hung up: the shim died, or it dropped us for reading too slowly (see
 * shim.h). One that lives and answers at its socket keeps its tasks: we
 * ask about each again there. */
static void shim_hung_up(struct process_state *ps, struct shim_conn *c)
{
    unsigned n = 0;

    pthread_mutex_lock(&ps->lock);
    conn_unlink(ps, c);
    for (struct ptask *t = ps->tasks; t; t = t->next)
        n += t->shim == c;
    pthread_mutex_unlock(&ps->lock);

    /* Only a shim that has spoken drops a connection (its hello comes first;
     * protocol 0 never drops): one that hangs up before a word is dying. */
    if (n > 0 && c->protocol > 0 && shim_alive(c) && shim_conn_watch(ps, c->pid, NULL) >= 0) {
        /* We are the monitor: the new connection is not read before this is done. */
        pthread_mutex_lock(&ps->lock);
        struct shim_conn *again = shim_conn_find(ps, c->pid);
        for (struct ptask *t = ps->tasks; again && t; t = t->next)
            if (t->shim == c)
                watch_on(again, t);
        if (again && c->child) {
            again->child = true;
            c->child = false;
        }
        pthread_mutex_unlock(&ps->lock);
        if (again)
            log_warn("process backend: shim %d dropped our connection (we read too slowly); "
                     "reconnected, following its %u tasks there, new tasks go to a new shim",
                     (int) c->pid, n);
    }
    conn_end(ps, c, SHIM_LOST_REASON);
}

/* The protocol a shim's first message says it speaks: that of its hello,
 * "H <protocol> <version>" (shim.h), or else 0, from before the hello. */
static int hello_protocol(const char *msg, char ret_version[static 32])
{
    int protocol = 0;
    int n = sscanf(msg, "H %d %31s", &protocol, ret_version);
    if (n < 2)
        snprintf(ret_version, 32, n < 1 ? "from before the hello" : "of no version");
    return n < 1 ? 0 : protocol;
}

/* The first message on c says what the shim speaks: its hello, or (a shim
 * from before the hello) anything else. false: it speaks what we cannot
 * follow, and c is ended and freed. */
static bool shim_met(struct process_state *ps, struct shim_conn *c, const char *msg)
{
    char version[32];
    int protocol = hello_protocol(msg, version);
    c->protocol = protocol;
    if (protocol >= SHIM_PROTOCOL_MIN && protocol <= ps->protocol) {
        if (protocol != ps->protocol)
            log_info("process backend: shim %d speaks protocol %d (ocps-shim %s), older than "
                     "ours (%d): following its tasks, giving it no new ones",
                     (int) c->pid, protocol, version, ps->protocol);
        return true;
    }
    log_error("process backend: shim %d speaks protocol %d (ocps-shim %s); this daemon speaks "
              "%d to %d: ending its tasks",
              (int) c->pid, protocol, version, SHIM_PROTOCOL_MIN, ps->protocol);
    _cleanup_free_ char *reason =
        xasprintf("the task's shim (pid %d) speaks protocol %d (ocps-shim %s), which this "
                  "daemon (protocol %d, ocps-proxyd %s) cannot follow; the task was stopped",
                  (int) c->pid, protocol, version, ps->protocol, OCPS_VERSION);
    conn_end(ps, c, reason);
    return false;
}

/* false once c is ended and freed. */
static bool handle_message(struct process_state *ps, struct shim_conn *c, char *msg)
{
    char *id = msg + 2, *arg;

    if (c->protocol < 0) {
        if (!shim_met(ps, c, msg))
            return false;
        if (msg[0] == 'H')
            return true;
    }
    if (msg[0] == 'R' && msg[1] == ' ' && (arg = strchr(id, ' '))) {
        *arg++ = '\0';
        pthread_mutex_lock(&ps->lock);
        struct ptask *t = ptask_find(ps, id, c);
        bool news = t && !t->running;
        if (news)
            t->running = true;
        pthread_mutex_unlock(&ps->lock);
        /* Only this thread removes tasks: it is still there when reported. */
        if (news)
            ps->listener.running(ps->listener.userdata, id, (usec_t) strtoll(arg, NULL, 10));
    } else if (msg[0] == 'E' && msg[1] == ' ') {
        pthread_mutex_lock(&ps->lock);
        struct ptask *t = ptask_find(ps, id, c);
        if (t)
            ptask_unlink(ps, t);
        pthread_mutex_unlock(&ps->lock);
        if (t) {
            report_end(ps, t, SHIM_LOST_REASON);
            ptask_free(t);
        }
    } else {
        log_warn("process backend: unknown message from shim %d: %.40s", (int) c->pid, msg);
    }
    return true;
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
            shim_hung_up(ps, c);
            return false;
        }
        buf[n] = '\0';
        if (!handle_message(ps, c, buf))
            return false;
    }
}

void *process_monitor(void *userdata)
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

/* Sends (and connects) happen under ps->lock: a shim that stops reading
 * (stuck in D state) must not stop the supervisor and the monitor with it.
 * A start that times out goes to a new shim; nothing was sent, the lock is
 * ours. */
static void set_send_timeout(int fd)
{
    struct timeval tv = {.tv_sec = 5};
    (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Under ps->lock; the monitor is to be woken to read it. */
static struct shim_conn *conn_link(struct process_state *ps, pid_t pid, int fd, bool child,
                                   int protocol)
{
    struct shim_conn *c = xcalloc(1, sizeof(*c));
    c->pid = pid;
    c->fd = fd;
    c->child = child;
    c->protocol = protocol;
    c->next = ps->shims;
    ps->shims = c;
    if (child)
        ps->own = c;
    return c;
}

/* The first word of a shim we started: only one of our own protocol gets
 * tasks (shim.h). */
static int check_hello(struct process_state *ps, int fd, struct error *err)
{
    /* A shim from before the hello says nothing until asked: ask what every
     * shim answers ("E -", no such task). Ours says its hello first. */
    struct timeval tv = {.tv_sec = 10};
    (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[SHIM_MSG_MAX + 1];
    ssize_t n = send(fd, "W -", STRLEN("W -"), MSG_NOSIGNAL);
    if (n >= 0)
        do
            n = recv(fd, buf, SHIM_MSG_MAX, 0);
        while (n < 0 && errno == EINTR);
    if (n <= 0)
        return error_set_errno(err, n < 0 ? -errno : -ECONNRESET,
                               "the task shim %s did not say what it speaks", ps->shim_path);
    buf[n] = '\0';
    char version[32];
    int protocol = hello_protocol(buf, version);
    if (protocol != ps->protocol)
        return error_set(err, -EREMOTEIO,
                         "the task shim %s speaks protocol %d (ocps-shim %s), this daemon "
                         "protocol %d (ocps-proxyd %s): restart the daemon after an upgrade",
                         ps->shim_path, protocol, version, ps->protocol, OCPS_VERSION);
    return 0;
}

/* Starts this daemon's shim (ps->own). */
int shim_conn_spawn(struct process_state *ps, struct error *err)
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
    r = check_hello(ps, mine, err);
    if (r < 0) {
        /* Ours, and it has no task: it goes. */
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        return r;
    }
    log_info("process backend: shim %d started (protocol %d)", (int) pid, ps->protocol);
    set_send_timeout(mine);
    pthread_mutex_lock(&ps->lock);
    (void) conn_link(ps, pid, TAKE_FD(mine), true, ps->protocol);
    pthread_mutex_unlock(&ps->lock);
    process_wake(ps);
    return 0;
}

/* Under ps->lock. */
struct shim_conn *shim_conn_find(struct process_state *ps, pid_t pid)
{
    for (struct shim_conn *c = ps->shims; c; c = c->next)
        if (c->pid == pid && !c->dead)
            return c;
    return NULL;
}

static int connect_fd(struct process_state *ps, pid_t pid)
{
    _cleanup_free_ char *path = xasprintf("%s/%d.sock", ps->shim_dir, (int) pid);
    _cleanup_close_ int dirfd = -1;
    struct sockaddr_un sa;
    int r = shim_sockaddr(path, &sa, &dirfd);
    if (r < 0)
        return r;
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    set_send_timeout(fd);
    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
        return -errno;
    return TAKE_FD(fd);
}

int shim_conn_watch(struct process_state *ps, pid_t pid, struct ptask *t)
{
    _cleanup_close_ int fd = -1;
    pthread_mutex_lock(&ps->lock);
    bool connected = shim_conn_find(ps, pid) != NULL;
    pthread_mutex_unlock(&ps->lock);
    if (!connected) {
        fd = connect_fd(ps, pid);
        if (fd < 0)
            return fd;
        log_info("process backend: reconnected to shim %d", (int) pid);
    }

    /* One lock from the connection's first appearance to t's: the monitor
     * reads it only after, so what the shim says first (its hello, which
     * may be one we refuse) finds t there. */
    pthread_mutex_lock(&ps->lock);
    struct shim_conn *c = shim_conn_find(ps, pid);
    if (!c && fd >= 0)
        c = conn_link(ps, pid, TAKE_FD(fd), false, -1);
    if (c && t) {
        t->next = ps->tasks;
        ps->tasks = t;
        watch_on(c, t);
    }
    pthread_mutex_unlock(&ps->lock);
    process_wake(ps);
    return c ? 0 : -ECONNRESET;
}

/* Sockets of shims killed from outside: nothing answers there any more. */
void shim_sockets_clean(const char *dir)
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
