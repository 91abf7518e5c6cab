/*
 * confine: account lookup and the privilege drop before exec (confine.h).
 * The order of the steps is the one REFERENCE.md records as working:
 * no_new_privs, bounding set (needs CAP_SETPCAP, so while still root),
 * ambient, groups, gid, uid, then whatever capabilities remain.
 */
#include "confine.h"
#include "util/timeutil.h"
#include "util/util.h"

#include <grp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <pwd.h>
#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>

void confine_user_done(struct confine_user *u)
{
    free(u->groups);
    free(u->name);
    free(u->home);
    free(u->shell);
    *u = (struct confine_user){0};
}

static int lookup(const char *name, uid_t uid, bool by_uid, struct confine_user *ret,
                  struct error *err)
{
    struct passwd pw, *res = NULL;
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    if (size < 16384)
        size = 16384;
    _cleanup_free_ char *buf = xmalloc(size);
    int r = by_uid ? getpwuid_r(uid, &pw, buf, size, &res) : getpwnam_r(name, &pw, buf, size, &res);
    if (r != 0)
        return error_set_errno(err, -r, "look up account %s", name ? name : "(self)");
    if (!res)
        return error_set(err, -EINVAL, "user: no account named \"%s\" on this host",
                         name ? name : "(self)");

    gid_t *groups = NULL;
    size_t n = 0;
    if (user_ids_groups(pw.pw_name, pw.pw_gid, &groups, &n) < 0)
        return error_set(err, -EIO, "cannot list the groups of %s", pw.pw_name);
    *ret = (struct confine_user){
        .uid = pw.pw_uid,
        .gid = pw.pw_gid,
        .groups = groups,
        .n_groups = (int) n,
        .name = xstrdup(pw.pw_name),
        .home = xstrdup(pw.pw_dir && *pw.pw_dir ? pw.pw_dir : "/"),
        .shell = xstrdup(pw.pw_shell && *pw.pw_shell ? pw.pw_shell : "/bin/sh"),
    };
    return 0;
}

static void user_copy(const struct confine_user *u, struct confine_user *ret)
{
    *ret = *u;
    ret->groups = NULL;
    if (u->n_groups > 0) {
        ret->groups = xmalloc((size_t) u->n_groups * sizeof(gid_t));
        memcpy(ret->groups, u->groups, (size_t) u->n_groups * sizeof(gid_t));
    }
    ret->name = u->name ? xstrdup(u->name) : NULL;
    ret->home = u->home ? xstrdup(u->home) : NULL;
    ret->shell = u->shell ? xstrdup(u->shell) : NULL;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Accounts found in the last CACHE_USEC while /etc/passwd and /etc/group (the
 * first source NSS asks here) are unchanged: a task's account is looked up at
 * submit and again at start, each a dozen syscalls and two file parses.
 * Only found accounts are kept; the policy (root, denied) is applied to
 * every answer. */
#define CACHE_USEC    (2 * USEC_PER_SEC)
#define CACHE_ENTRIES 8
static struct {
    pthread_mutex_t lock;
    struct cache_entry {
        char *name;
        struct confine_user user;
        usec_t at;
        struct stat passwd, group;
    } e[CACHE_ENTRIES];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int lookup_cached(const char *name, struct confine_user *ret, struct error *err)
{
    struct stat pw, gr;
    if (stat("/etc/passwd", &pw) < 0 || stat("/etc/group", &gr) < 0)
        return lookup(name, 0, false, ret, err);
    usec_t now = now_monotonic();
    struct cache_entry *oldest = &cache.e[0];
    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
        struct cache_entry *e = &cache.e[i];
        if (e->name && streq(e->name, name) && now - e->at < CACHE_USEC &&
            same_file(&e->passwd, &pw) && same_file(&e->group, &gr)) {
            user_copy(&e->user, ret);
            pthread_mutex_unlock(&cache.lock);
            return 0;
        }
        if (e->at < oldest->at)
            oldest = e;
    }
    pthread_mutex_unlock(&cache.lock);

    int r = lookup(name, 0, false, ret, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&cache.lock);
    free(oldest->name);
    confine_user_done(&oldest->user);
    oldest->name = xstrdup(name);
    user_copy(ret, &oldest->user);
    oldest->at = now;
    oldest->passwd = pw;
    oldest->group = gr;
    pthread_mutex_unlock(&cache.lock);
    return 0;
}

int confine_account_lookup(const char *name, bool allow_root, char *const *denied,
                           struct confine_user *ret, struct error *err)
{
    struct confine_user u;

    if (strv_contains(denied, name))
        return error_set(err, -EACCES, "user: %s may not run tasks on this host", name);
    int r = lookup_cached(name, &u, err);
    if (r < 0)
        return r;
    if (u.uid == 0 && !allow_root) {
        confine_user_done(&u);
        return error_set(err, -EACCES,
                         "user: tasks may not run as root here (set allow_root in the config)");
    }
    if (strv_contains(denied, u.name)) {
        confine_user_done(&u);
        return error_set(err, -EACCES, "user: %s may not run tasks on this host", name);
    }
    u.change = true;
    *ret = u;
    return 0;
}

int confine_user_lookup(const char *name, bool allow_root, char *const *denied,
                        struct confine_user *ret, struct error *err)
{
    if (geteuid() != 0) {
        /* Unprivileged daemon: everything runs as us; "user" only records the owner. */
        struct confine_user u;
        int r = lookup(NULL, geteuid(), true, &u, err);
        if (r < 0)
            return r;
        u.change = false;
        *ret = u;
        return 0;
    }
    return confine_account_lookup(name, allow_root, denied, ret, err);
}

int confine_drop_bounding_set(void)
{
    /* Every capability the kernel has, not only those our headers name: it
     * answers EINVAL past its last one. One call each (each makes new
     * credentials), no CAP_IS_SUPPORTED probe first. */
    for (cap_value_t c = 0;; c++) {
        if (cap_drop_bound(c) == 0)
            continue;
        if (errno == EINVAL)
            return 0;
        return -errno;
    }
}

int confine_apply(const struct confine_user *u, bool bounding_set_empty, const char **ret_step)
{
    const char *step = "";
    int r = 0;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        step = "set no_new_privs";
        goto fail;
    }
    if (!bounding_set_empty) {
        r = confine_drop_bounding_set();
        if (r == -EPERM && geteuid() != 0)
            r = 0; /* unprivileged: nothing to drop that we could use */
        if (r < 0) {
            errno = -r;
            step = "drop the capability bounding set";
            goto fail;
        }
    }
    /* One call; libcap's cap_reset_ambient() first reads every capability. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
        step = "clear ambient capabilities";
        goto fail;
    }
    /* Raw system calls from here: glibc's wrappers would broadcast the change
     * to every thread they believe we have, and in a vfork()ed child those
     * are the shim's. capset() rather than cap_init(): no malloc. */
    if (u->change) {
        if (syscall(SYS_setgroups, (size_t) u->n_groups, u->groups) < 0) {
            step = "setgroups";
            goto fail;
        }
        if (syscall(SYS_setresgid, u->gid, u->gid, u->gid) < 0) {
            step = "setresgid";
            goto fail;
        }
        if (syscall(SYS_setresuid, u->uid, u->uid, u->uid) < 0) {
            step = "setresuid";
            goto fail;
        }
    }
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3] = {{0}};
    if (syscall(SYS_capset, &hdr, none) < 0) {
        step = "clear capabilities";
        goto fail;
    }
    return 0;
fail:
    r = -errno;
    if (ret_step)
        *ret_step = step;
    return r ? r : -EPERM;
}
