/*
 * Unit tests: as-user (lib/util/as-user.c): an account's ids, work done
 * with its filesystem identity, and an open the caller gives up on (a
 * FIFO nobody opens from the other end). Needs root, and the account
 * nobody.
 */
#include "tap.h"
#include "account.h"
#include "util/as-user.h"
#include "util/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static char dir[] = "/tmp/ocps-as-user-XXXXXX";

struct args {
    const char *path;
    int flags;
};

static int try_open(void *p)
{
    struct args *a = p;
    int fd = open(a->path, a->flags | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

/* The threads of this process. */
static unsigned threads(void)
{
    _cleanup_free_ char *data = NULL;
    if (read_file("/proc/self/status", 1 << 16, &data, NULL) < 0)
        return 0;
    const char *t = strstr(data, "\nThreads:");
    return t ? (unsigned) strtoul(t + 9, NULL, 10) : 0;
}

static void test_lookup(void)
{
    struct user_ids u;
    struct passwd *pw = getpwnam("nobody");
    ok(pw && account_user_ids("nobody", &u) == 0 && u.uid == pw->pw_uid && u.gid == pw->pw_gid,
       "nobody's ids are found");
    bool primary = false;
    for (size_t i = 0; i < u.n_groups; i++)
        primary |= u.groups[i] == u.gid;
    ok(primary, "its groups include its primary group (%zu groups)", u.n_groups);
    user_ids_done(&u);
    ok(account_user_ids("no-such-account-ocps", &u) == -ENOENT, "an unknown account is -ENOENT");
}

static void test_run(const struct user_ids *nobody)
{
    _cleanup_free_ char *secret = xasprintf("%s/secret", dir);
    ok(write_file_replace(secret, "x", 1, 0600) == 0, "a file only root may read");
    struct args a = {secret, O_RDONLY};
    ok(as_user_run(nobody, try_open, &a) == -EACCES, "nobody may not open it");
    ok(as_user_run(NULL, try_open, &a) == 0, "the daemon may (no identity given)");
    ok(try_open(&a) == 0, "and the calling thread's own identity is untouched");

    _cleanup_free_ char *made = xasprintf("%s/made", dir);
    int fd = -1;
    ok(as_user_open(nobody, made, O_WRONLY | O_CREAT | O_TRUNC, 0640, NULL, 0, &fd) == 0,
       "as_user_open creates a file as nobody");
    struct stat st = {0};
    if (fd >= 0)
        (void) fstat(fd, &st);
    ok(fd >= 0 && st.st_uid == nobody->uid && st.st_gid == nobody->gid,
       "it belongs to nobody (%d:%d)", (int) st.st_uid, (int) st.st_gid);
    closep(&fd);
    fd = -1;
    int r = as_user_open(nobody, secret, O_RDONLY, 0, NULL, 0, &fd);
    ok(r == -EACCES && fd < 0, "and gives open's error for root's file (%s)", strerror(-r));
}

/* Whether a thread of ours other than the caller sits in openat(). */
static bool thread_in_open(pid_t self)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    bool found = false;
    while (d && !found && (de = readdir(d)))
        if (atoi(de->d_name) > 0 && atoi(de->d_name) != self) {
            _cleanup_free_ char *p = xasprintf("/proc/self/task/%s/syscall", de->d_name);
            _cleanup_free_ char *text = NULL;
            found = read_file(p, 256, &text, NULL) >= 0 && atoi(text) == SYS_openat;
        }
    if (d)
        closedir(d);
    return found;
}

struct aborter {
    pid_t caller;
    int fd;
    bool seen;
};

/* Gives up for the caller once its open is under way and blocked. */
static void *aborter_main(void *p)
{
    struct aborter *a = p;
    for (int i = 0; i < 1000 && !a->seen; i++)
        if (!(a->seen = thread_in_open(a->caller)))
            usleep(5000);
    (void) eventfd_write(a->fd, 1);
    return NULL;
}

static void test_abort(const struct user_ids *nobody)
{
    _cleanup_free_ char *fifo = xasprintf("%s/fifo", dir);
    ok(mkfifo(fifo, 0666) == 0 && chmod(fifo, 0666) == 0, "a FIFO nobody reads");
    int abort_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), fd = -1;
    unsigned before = threads();
    struct aborter a = {(pid_t) syscall(SYS_gettid), abort_fd, false};
    pthread_t t;
    pthread_create(&t, NULL, aborter_main, &a);
    int fds[2] = {-1, abort_fd};
    int r = as_user_open(nobody, fifo, O_WRONLY, 0, fds, 2, &fd);
    pthread_join(t, NULL);
    ok(a.seen, "the open blocked (a thread sat in openat)");
    ok(r == -ECANCELED && fd < 0, "the caller gave up on it: -ECANCELED");
    bool back = false;
    for (int i = 0; i < 500 && !back; i++, usleep(10000))
        back = threads() <= before; /* threads of earlier tests may leave meanwhile */
    ok(back, "the thread left blocked in it was interrupted and is gone (%u threads, %u before)",
       threads(), before);
    /* Had it stayed, this reader would let it go on and write nothing. */
    int rd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ok(rd >= 0, "the FIFO opens for reading");
    closep(&rd);
    close(abort_fd);
}

int main(void)
{
    if (geteuid() != 0)
        tap_skip_all("needs root (another account's identity)");
    if (!mkdtemp(dir))
        tap_skip_all("cannot make a temporary directory");
    chmod(dir, 01777); /* nobody makes files here */
    struct user_ids nobody;
    if (account_user_ids("nobody", &nobody) < 0)
        tap_skip_all("no account nobody");
    test_lookup();
    test_run(&nobody);
    test_abort(&nobody);
    user_ids_done(&nobody);
    (void) rm_rf(dir);
    return tap_done();
}
