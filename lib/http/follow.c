/* follow: see follow.h. */
#include "follow.h"
#include "http.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

struct follow {
    struct supervisor *sv;
    char id[37];
    char *path;
    int fd;
    int inotify_fd;
    int dir_wd; /* the watch on the directory, while the file does not exist */
    int conn_fd;
    int end_fd; /* readable once the task has ended (supervisor_watch_end) */
    off_t offset;
    bool ended;
    bool task_path;  /* the task named the path: opened as its user */
    bool as_user;    /* ... whose identity is 'user' (else the daemon's own) */
    bool no_account; /* ... who has none here: nobody opens it */
    struct user_ids user;
    struct http_conn *conn; /* its place among the pool's followers (pool.c); NULL: none */
};

static void follow_free(void *cls)
{
    struct follow *f = cls;
    if (f->fd >= 0)
        close(f->fd);
    if (f->inotify_fd >= 0)
        close(f->inotify_fd);
    supervisor_unwatch(f->sv, f->end_fd);
    if (f->as_user)
        user_ids_done(&f->user);
    http_pool_unfollow(f->conn);
    free(f->path);
    free(f);
}

/* What the thread that has the task's user's identity does (as-user.h). */
struct user_open {
    struct follow *f;
    int fd;
    bool watch_dir; /* failing that, watch its directory for it to appear */
};

static void watch_dir(struct follow *f)
{
    _cleanup_free_ char *dir = xstrdup(f->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    f->dir_wd = inotify_add_watch(f->inotify_fd, dir, IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE);
}

/* A path the task named, as its user: looked at first (O_PATH: no open of
 * a FIFO, which would let a blocked writer go on), then opened through
 * what was looked at, so that nothing can be swapped in between. */
static int user_open(void *p)
{
    struct user_open *a = p;
    struct follow *f = a->f;
    _cleanup_close_ int path_fd = open(f->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    int r = path_fd < 0 ? -errno : fstat(path_fd, &st) < 0 ? -errno : 0;
    if (r >= 0 && !S_ISREG(st.st_mode))
        r = -ENOENT;
    if (r >= 0) {
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", path_fd);
        a->fd = open(proc, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        r = a->fd < 0 ? -errno : 0;
    }
    if (r < 0 && a->watch_dir && f->inotify_fd >= 0 && f->dir_wd < 0)
        watch_dir(f);
    return r;
}

/* Opens an output file for reading without letting a task point us
 * elsewhere; with watch_dir, a path the task named that cannot be opened
 * has its directory watched (as the user) for it to appear. */
static int open_output(struct follow *f, bool want_watch, struct error *err)
{
    if (f->task_path) {
        if (f->no_account)
            return error_set(err, -ENOENT, "no account to read %s as", f->path);
        struct user_open a = {f, -1, want_watch};
        int r = as_user_run(f->as_user ? &f->user : NULL, user_open, &a);
        if (r >= 0)
            return a.fd;
        /* Missing, forbidden, a symlink, not a file: one answer (follow.h). */
        switch (-r) {
        case ENOENT:
        case EACCES:
        case EPERM:
        case ELOOP:
        case ENOTDIR:
        case ENAMETOOLONG:
        case EISDIR:
        case ENXIO:
        case ENODEV:
            return error_set(err, -ENOENT, "%s: not there", f->path);
        default:
            return error_set_errno(err, r, "open %s", f->path);
        }
    }
    _cleanup_close_ int fd =
        open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return error_set_errno(err, -errno, "open %s", f->path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return error_set_errno(err, -errno, "stat %s", f->path);
    if (!S_ISREG(st.st_mode))
        return error_set(err, -EACCES, "%s is not a regular file", f->path);
    return TAKE_FD(fd);
}

/* Once the followed file is open, only its own changes wake the reader:
 * the task's directory sees many more (the system log, the backend's
 * files), each of which would cost a wake-up for nothing. */
static void follow_watch(struct follow *f)
{
    if (f->inotify_fd < 0)
        return;
    if (f->fd >= 0) {
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", f->fd);
        if (inotify_add_watch(f->inotify_fd, proc, IN_MODIFY) >= 0) {
            if (f->dir_wd >= 0)
                (void) inotify_rm_watch(f->inotify_fd, f->dir_wd);
            f->dir_wd = -1;
            return;
        }
    }
    /* For the file to appear (or, failing a watch of its own, grow). A
     * task's own path was watched as its user when it could not be opened. */
    if (f->dir_wd < 0 && !f->task_path)
        watch_dir(f);
}

static ssize_t follow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct follow *f = cls;
    for (;;) {
        if (f->fd < 0) {
            struct error err = ERROR_INIT;
            f->fd = open_output(f, true, &err);
            if (f->fd < 0 && err.code != -ENOENT) {
                error_clear(&err);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            error_clear(&err);
            /* Watched before the first read: no write can slip between. */
            if (f->fd >= 0)
                follow_watch(f);
        }
        if (f->fd >= 0) {
            ssize_t n = pread(f->fd, buf, max, f->offset);
            if (n > 0) {
                f->offset += n;
                return n;
            }
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (f->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (f->end_fd < 0 && !supervisor_is_active(f->sv, f->id)) {
            /* One more read after the end, for what was written last. */
            f->ended = true;
            continue;
        }
        /* Wait for output, the task's end, or the client hanging up. The
         * end fd is polled, not read first: it stays readable once the
         * task has ended, and a read that finds nothing is a syscall. */
        struct pollfd p[3] = {
            {.fd = f->inotify_fd, .events = POLLIN},
            {.fd = f->end_fd, .events = POLLIN},
            {.fd = f->conn_fd, .events = POLLRDHUP},
        };
        int n = poll(p, 3, f->end_fd >= 0 ? -1 : 1000);
        if (n > 0 && (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (n > 0 && (p[1].revents & POLLIN))
            f->ended = true; /* one more read after the end, for what was written last */
        if (n > 0 && (p[0].revents & POLLIN)) {
            char ev[4096];
            while (read(f->inotify_fd, ev, sizeof(ev)) > 0)
                ;
        }
    }
}

/* Where the last n lines of fd start. */
static off_t tail_offset(int fd, long lines)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size == 0)
        return 0;
    off_t end = st.st_size, pos = end;
    char buf[8192];
    long seen = 0;
    /* A final newline ends the last line; it does not start another. */
    bool skip_last = true;
    while (pos > 0) {
        size_t n = (size_t) MIN((off_t) sizeof(buf), pos);
        pos -= (off_t) n;
        if (pread(fd, buf, n, pos) != (ssize_t) n)
            return 0;
        for (size_t i = n; i-- > 0;) {
            if (buf[i] != '\n')
                continue;
            if (skip_last && pos + (off_t) i == end - 1) {
                skip_last = false;
                continue;
            }
            if (++seen == lines)
                return pos + (off_t) i + 1;
        }
    }
    return 0;
}

/* What is there now, from the offset to the current end. Takes f. */
static struct MHD_Response *snapshot(struct follow *f)
{
    struct MHD_Response *resp;
    if (f->fd < 0)
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    else {
        struct stat st;
        if (fstat(f->fd, &st) < 0)
            st.st_size = f->offset;
        resp = MHD_create_response_from_fd_at_offset64((uint64_t) (st.st_size - f->offset),
                                                       TAKE_FD(f->fd), (uint64_t) f->offset);
    }
    follow_free(f);
    return resp;
}

int follow_response(const struct follow_spec *spec, struct MHD_Response **ret, struct error *err)
{
    struct follow *f = xcalloc(1, sizeof(*f));
    f->sv = spec->sv;
    snprintf(f->id, sizeof(f->id), "%s", spec->id);
    f->path = xstrdup(spec->path);
    f->task_path = spec->task_path;
    f->no_account = spec->no_account;
    f->as_user = spec->task_path && spec->user;
    if (f->as_user)
        user_ids_copy(spec->user, &f->user);
    f->inotify_fd = -1;
    f->dir_wd = -1;
    f->conn_fd = -1;
    f->end_fd = -1;
    if (spec->follow) /* before the first open: a path that is not there gets its watch then */
        f->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    f->fd = open_output(f, spec->follow, err);
    if (f->fd < 0 && err->code != -ENOENT) {
        int r = f->fd;
        follow_free(f);
        return r;
    }
    if (f->fd < 0 && f->task_path && !supervisor_is_active(f->sv, f->id)) {
        /* Ended: it will not appear. The same words whatever the reason. */
        int r = error_set(err, -ENOENT, "%s: no such file, or not one the task's user may read",
                          f->path);
        follow_free(f);
        return r;
    }
    error_clear(err);
    if (f->fd >= 0 && spec->tail >= 0)
        f->offset = spec->tail == 0 ? lseek(f->fd, 0, SEEK_END) : tail_offset(f->fd, spec->tail);

    if (!spec->follow) {
        *ret = snapshot(f);
        return 0;
    }
    /* A follow may last hours: it takes a follower's share of the pool,
     * not one of the connections that serve ordinary requests. */
    if (http_pool_follow(spec->conn_fd, &f->conn, err) < 0) {
        int r = err->code;
        follow_free(f);
        return r;
    }
    /* Watch the file's directory for it to appear, then the file to grow. */
    follow_watch(f);
    f->conn_fd = spec->conn_fd;
    f->end_fd = supervisor_watch_end(f->sv, f->id);
    /* MHD reads a chunked reply (HTTP/1.1) straight into the connection's
     * own buffer; this block is zeroed at every follow and used only for
     * HTTP/1.0 clients. 32 KiB of it cost ~8 page faults per follow. */
    *ret = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, follow_read, f, follow_free);
    if (!*ret)
        follow_free(f);
    else
        /* The follower's share is held until the connection closes: a
         * client asks its next request on a connection of its own. */
        (void) MHD_add_response_header(*ret, MHD_HTTP_HEADER_CONNECTION, "close");
    return 0;
}
