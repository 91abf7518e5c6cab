/*
 * tes-stage-fs: files and directory trees handled under an open directory
 * for tes-stage (tes-stage-internal.h), by a thread that has taken the
 * task's account's filesystem identity. Nothing here follows a symlink:
 * what an executor left in the mapping, or a user in a directory of
 * theirs, is copied as what it is or skipped.
 */
#include "tes-stage-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/syscall.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* Deeper trees than this are refused (a loop of bind mounts, a bomb). */
#define STAGE_MAX_DEPTH 128
#define STAGE_COPY_BUF  (1U << 16)

int stage_open(int dirfd, const char *rel, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t) (flags | O_CLOEXEC | O_NOCTTY),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve =
            RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (dirfd == AT_FDCWD ? 0 : RESOLVE_BENEATH),
    };
    for (;;) {
        long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        if (fd >= 0)
            return (int) fd;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
    }
}

int stage_mkdirs(int dirfd, const char *rel)
{
    _cleanup_close_ int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    if (cur < 0)
        return -errno;
    _cleanup_free_ char *copy = xstrdup(rel);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (streq(c, "."))
            continue;
        if (streq(c, ".."))
            return -EINVAL;
        if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST)
            return -errno;
        int next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0)
            return -errno;
        close(cur);
        cur = next;
    }
    return TAKE_FD(cur);
}

int stage_parent(int dirfd, const char *rel, const char **ret_base)
{
    const char *slash = strrchr(rel, '/');
    _cleanup_free_ char *parent = slash ? xstrndup(rel, (size_t) (slash - rel)) : xstrdup(".");
    const char *base = slash ? slash + 1 : rel;
    if (isempty(base) || streq(base, ".") || streq(base, ".."))
        return -EINVAL;
    int fd = stage_mkdirs(dirfd, parent);
    if (fd >= 0)
        *ret_base = base;
    return fd;
}

bool stage_aborted(const struct tes_stage *s)
{
    struct pollfd p[8];
    size_t n = 0;
    for (size_t i = 0; i < s->n_abort_fds && n < ELEMENTSOF(p); i++)
        if (s->abort_fds[i] >= 0)
            p[n++] = (struct pollfd){.fd = s->abort_fds[i], .events = POLLIN};
    return n > 0 && poll(p, n, 0) > 0;
}

int stage_copy_fd(const struct tes_stage *s, int in, int out, uint64_t *ret_n)
{
    /* On the heap: static TLS would grow every thread of the daemon, and
     * small-stack ones (as_user_open's) would no longer start. */
    _cleanup_free_ char *buf = xmalloc(STAGE_COPY_BUF);
    uint64_t total = 0;
    for (unsigned chunks = 0;; chunks++) {
        if (chunks % 16 == 15 && stage_aborted(s))
            return -ECANCELED;
        ssize_t k = read(in, buf, STAGE_COPY_BUF);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break;
        int r = loop_write(out, buf, (size_t) k);
        if (r < 0)
            return r;
        total += (uint64_t) k;
    }
    *ret_n = total;
    return 0;
}

static int copy_tree_at(const struct tes_stage *s, int src, int dst, const char *prefix,
                        unsigned depth, stage_copied_fn f, void *userdata)
{
    if (depth > STAGE_MAX_DEPTH)
        return -ELOOP;
    int dfd = fcntl(src, F_DUPFD_CLOEXEC, 3);
    if (dfd < 0)
        return -errno;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    rewinddir(d);
    int r = 0;
    for (struct dirent *e; r >= 0 && (e = readdir(d));) {
        if (streq(e->d_name, ".") || streq(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(src, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            r = -errno;
            break;
        }
        _cleanup_free_ char *rel =
            prefix ? xasprintf("%s/%s", prefix, e->d_name) : xstrdup(e->d_name);
        if (S_ISDIR(st.st_mode)) {
            if (mkdirat(dst, e->d_name, 0755) < 0 && errno != EEXIST) {
                r = -errno;
                break;
            }
            _cleanup_close_ int sub_src =
                openat(src, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            _cleanup_close_ int sub_dst =
                openat(dst, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub_src < 0 || sub_dst < 0) {
                r = -errno;
                break;
            }
            r = copy_tree_at(s, sub_src, sub_dst, rel, depth + 1, f, userdata);
        } else if (S_ISREG(st.st_mode)) {
            _cleanup_close_ int in =
                openat(src, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
            _cleanup_close_ int out =
                in < 0 ? -1
                       : openat(dst, e->d_name,
                                O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                                st.st_mode & 0777);
            if (in < 0 || out < 0) {
                r = -errno;
                break;
            }
            uint64_t n = 0;
            r = stage_copy_fd(s, in, out, &n);
            if (r >= 0 && f)
                f(userdata, rel, n);
        }
        /* Symlinks, FIFOs, sockets and devices: not copied. */
    }
    closedir(d);
    return r;
}

int stage_copy_tree(const struct tes_stage *s, int src, int dst, stage_copied_fn f, void *userdata)
{
    return copy_tree_at(s, src, dst, NULL, 0, f, userdata);
}

char *stage_join(const char *a, const char *b)
{
    size_t n = strlen(a);
    while (n > 0 && a[n - 1] == '/')
        n--;
    while (*b == '/')
        b++;
    return xasprintf("%.*s/%s", (int) n, a, b);
}

struct create_job {
    const struct tes_stage *s;
    const char *rel;
    int fd;
};

static int create_as(void *arg)
{
    struct create_job *j = arg;
    const char *base;
    _cleanup_close_ int pfd = stage_parent(j->s->root_fd, j->rel, &base);
    if (pfd < 0)
        return pfd;
    j->fd =
        openat(pfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
    return j->fd < 0 ? -errno : 0;
}

int stage_create_as(const struct tes_stage *s, const char *rel)
{
    struct create_job j = {.s = s, .rel = rel, .fd = -1};
    int r = as_user_run(s->user, create_as, &j);
    return r < 0 ? r : j.fd;
}
