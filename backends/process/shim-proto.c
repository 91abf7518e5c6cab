/*
 * shim-proto: what the daemon and the shim both read and write outside
 * their messages: the task's shim.lock, the shim's socket address and the
 * protocol number of the hello (see shim.h).
 */
#include "layout.h"
#include "shim.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>

int shim_protocol(void)
{
    /* Tests stand in for a daemon and a shim of another release. */
    const char *p = getenv("OCPS_TEST_SHIM_PROTOCOL");
    return p && *p ? (int) strtol(p, NULL, 10) : SHIM_PROTOCOL;
}

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
