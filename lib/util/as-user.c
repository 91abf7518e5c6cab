/* as-user: see as-user.h. */
#include "as-user.h"
#include "util.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

int user_ids_groups(const char *name, gid_t gid, gid_t **ret, size_t *ret_n)
{
    int n = 32;
    gid_t *groups = NULL;
    for (;;) {
        groups = xrealloc(groups, n * sizeof(gid_t));
        int got = n;
        if (getgrouplist(name, gid, groups, &got) >= 0) {
            *ret = groups;
            *ret_n = (size_t) got;
            return 0;
        }
        if (got <= n || got > 65536) {
            free(groups);
            return -EIO;
        }
        n = got;
    }
}

int user_ids_groups_in(const char *group_file, const char *name, gid_t gid, gid_t **ret,
                       size_t *ret_n)
{
    if (!group_file)
        return user_ids_groups(name, gid, ret, ret_n);
    _cleanup_fclose_ FILE *f = fopen(group_file, "re");
    if (!f)
        return -EIO;
    /* getgrouplist()'s answer: the primary group first, then each group
     * that lists the account, once. */
    gid_t *groups = xmalloc(sizeof(gid_t));
    size_t n = 0;
    groups[n++] = gid;
    size_t size = 1 << 16;
    _cleanup_free_ char *buf = xmalloc(size);
    for (;;) {
        struct group gr, *e;
        int r = fgetgrent_r(f, &gr, buf, size, &e);
        if (r == ENOENT)
            break;
        if (r == ERANGE && size < (16u << 20)) {
            /* The long line is lost to this pass: start again. */
            buf = xrealloc(buf, size *= 4);
            rewind(f);
            n = 1;
            continue;
        }
        if (r != 0) {
            free(groups);
            return -EIO;
        }
        bool member = false;
        for (char **m = e->gr_mem; m && *m && !member; m++)
            member = streq(*m, name);
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = groups[i] == e->gr_gid;
        if (member && !known) {
            groups = xrealloc(groups, (n + 1) * sizeof(gid_t));
            groups[n++] = e->gr_gid;
        }
    }
    *ret = groups;
    *ret_n = n;
    return 0;
}

void user_ids_done(struct user_ids *u)
{
    free(u->groups);
    *u = (struct user_ids){0};
}

void user_ids_copy(const struct user_ids *u, struct user_ids *ret)
{
    *ret = *u;
    ret->groups = xmalloc((u->n_groups + 1) * sizeof(gid_t));
    if (u->n_groups)
        memcpy(ret->groups, u->groups, u->n_groups * sizeof(gid_t));
}

/* The calling thread's filesystem identity becomes u's (see as-user.h). */
static int take_ids(const struct user_ids *u)
{
    if (syscall(SYS_setgroups, u->n_groups, u->groups) < 0)
        return -errno;
    (void) syscall(SYS_setfsgid, u->gid);
    (void) syscall(SYS_setfsuid, u->uid);
    /* setfs*id() say nothing of failure: ask for the value now in force. */
    if ((uid_t) syscall(SYS_setfsuid, (uid_t) -1) != u->uid ||
        (gid_t) syscall(SYS_setfsgid, (gid_t) -1) != u->gid)
        return -EPERM;
    return 0;
}

struct run {
    const struct user_ids *u;
    int (*f)(void *arg);
    void *arg;
    int r;
};

static void *run_main(void *p)
{
    struct run *a = p;
    a->r = take_ids(a->u);
    if (a->r >= 0)
        a->r = a->f(a->arg);
    return NULL;
}

int as_user_run(const struct user_ids *u, int (*f)(void *arg), void *arg)
{
    if (!u)
        return f(arg);
    struct run a = {u, f, arg, 0};
    pthread_t t;
    int r = pthread_create(&t, NULL, run_main, &a);
    if (r != 0)
        return -r;
    pthread_join(t, NULL);
    return a.r;
}

/* ---- an open that can be given up ---- */

/* Shared by the caller and the opening thread; the last to let go frees it. */
struct open_job {
    pthread_mutex_t lock;
    unsigned refs;
    bool finished;  /* the thread is past its open (or was cancelled in it) */
    bool abandoned; /* the caller gave up: what the open gives is closed */
    bool as_user;
    struct user_ids u;
    char *path;
    int flags;
    mode_t mode;
    int done_fd; /* eventfd: the result is there */
    int fd, error;
};

static void job_unref(struct open_job *j)
{
    pthread_mutex_lock(&j->lock);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last)
        return;
    closep(&j->done_fd);
    if (j->as_user)
        user_ids_done(&j->u);
    free(j->path);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

/* The thread was cancelled in its open: nothing was opened. */
static void open_cancelled(void *p)
{
    struct open_job *j = p;
    pthread_mutex_lock(&j->lock);
    j->finished = true;
    pthread_mutex_unlock(&j->lock);
    job_unref(j);
}

static void *open_main(void *p)
{
    struct open_job *j = p;
    int fd = -1, e = j->as_user ? -take_ids(&j->u) : 0;

    if (e == 0) {
        /* open() is the one cancellation point: a caller that gives up
         * interrupts it there (a FIFO's wait for its other end). */
        pthread_cleanup_push(open_cancelled, j);
        fd = open(j->path, j->flags, j->mode);
        e = fd < 0 ? errno : 0;
        (void) pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        pthread_cleanup_pop(0);
    }
    pthread_mutex_lock(&j->lock);
    j->finished = true;
    if (j->abandoned) {
        if (fd >= 0)
            close(fd);
    } else {
        j->fd = fd;
        j->error = e;
        (void) eventfd_write(j->done_fd, 1);
    }
    pthread_mutex_unlock(&j->lock);
    job_unref(j);
    return NULL;
}

int as_user_open(const struct user_ids *u, const char *path, int flags, mode_t mode,
                 const int *abort_fds, size_t n_abort_fds, int *ret_fd)
{
    struct pollfd p[5];
    size_t n = 0;

    if (n_abort_fds > ELEMENTSOF(p) - 1)
        return -EINVAL;
    struct open_job *j = xcalloc(1, sizeof(*j));
    pthread_mutex_init(&j->lock, NULL);
    j->refs = 2;
    j->as_user = u != NULL;
    if (u)
        user_ids_copy(u, &j->u);
    j->path = xstrdup(path);
    j->flags = flags | O_CLOEXEC | O_NOCTTY;
    j->mode = mode;
    j->fd = -1;
    j->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (j->done_fd < 0) {
        int r = -errno;
        j->refs = 1;
        job_unref(j);
        return r;
    }

    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int r = -pthread_create(&thread, &attr, open_main, j);
    pthread_attr_destroy(&attr);
    if (r < 0) {
        j->refs = 1;
        job_unref(j);
        return r;
    }

    p[n++] = (struct pollfd){.fd = j->done_fd, .events = POLLIN};
    for (size_t i = 0; i < n_abort_fds; i++)
        if (abort_fds[i] >= 0)
            p[n++] = (struct pollfd){.fd = abort_fds[i], .events = POLLIN};
    bool done = false;
    for (;;) {
        int k = poll(p, n, -1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = -errno;
            break;
        }
        done = p[0].revents & POLLIN;
        bool aborted = false;
        for (size_t i = 1; i < n; i++)
            aborted |= p[i].revents != 0;
        if (done || aborted) {
            r = done && !aborted ? 0 : -ECANCELED;
            break;
        }
    }

    pthread_mutex_lock(&j->lock);
    if (r == 0) {
        r = j->error ? -j->error : 0;
        if (r == 0)
            *ret_fd = TAKE_FD(j->fd);
    } else if (j->finished) {
        closep(&j->fd); /* done, but given up all the same */
    } else {
        /* Still in its open (or not there yet): interrupted if it can be,
         * and left to close whatever it gets. A thread stuck for good (a
         * hung mount) stays stuck; the caller goes on. */
        j->abandoned = true;
        (void) pthread_cancel(thread);
    }
    pthread_mutex_unlock(&j->lock);
    job_unref(j);
    return r;
}
