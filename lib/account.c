/* account: see account.h. */
#include "account.h"
#include "util/as-user.h"
#include "util/timeutil.h"
#include "util/util.h"

#include <ctype.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define LOGIN_DEFS      "/etc/login.defs"
#define UID_MIN_DEFAULT 1000

static char *root; /* account_set_root() */

void account_set_root(const char *r)
{
    free(root);
    root = r && !streq(r, "/") ? xstrdup(r) : NULL;
}

const char *account_root(void)
{
    return root;
}

char *account_host_path(const char *path)
{
    return root ? xasprintf("%s%s", root, path) : xstrdup(path);
}

/* The entry of a passwd file (the root's etc/passwd) by name or uid, as
 * getpw*_r() answer: 0 and *res NULL when there is none. */
static int passwd_file_find(const char *name, uid_t uid, bool by_uid, struct passwd *pw, char *buf,
                            size_t size, struct passwd **res)
{
    _cleanup_free_ char *path = account_host_path("/etc/passwd");
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    *res = NULL;
    if (!f)
        return errno;
    for (;;) {
        struct passwd *e;
        int r = fgetpwent_r(f, pw, buf, size, &e);
        if (r == ENOENT)
            return 0;
        if (r != 0)
            return r;
        if (by_uid ? e->pw_uid == uid : streq(e->pw_name, name)) {
            *res = e;
            return 0;
        }
    }
}

static int find_passwd(const char *name, uid_t uid, bool by_uid, struct passwd *pw, char *buf,
                       size_t size, struct passwd **res)
{
    if (root)
        return passwd_file_find(name, uid, by_uid, pw, buf, size, res);
    return by_uid ? getpwuid_r(uid, pw, buf, size, res) : getpwnam_r(name, pw, buf, size, res);
}

int account_uid_name(uid_t uid, char **ret)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (find_passwd(NULL, uid, true, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return -ENOENT;
    *ret = xstrdup(res->pw_name);
    return 0;
}

int account_group_gid(const char *name, gid_t *ret)
{
    _cleanup_free_ char *path = root ? account_host_path("/etc/group") : NULL;
    _cleanup_fclose_ FILE *f = path ? fopen(path, "re") : NULL;
    if (path && !f)
        return -errno;
    for (size_t size = 16384;; size *= 4) {
        _cleanup_free_ char *buf = xmalloc(size);
        struct group gr, *res = NULL;
        int r;
        if (f) {
            /* A line too long for buf is skipped by fgetgrent_r: read it
             * again from the start with a larger one. */
            rewind(f);
            while ((r = fgetgrent_r(f, &gr, buf, size, &res)) == 0 && !streq(res->gr_name, name))
                ;
            if (r == ENOENT)
                r = 0, res = NULL;
        } else
            r = getgrnam_r(name, &gr, buf, size, &res);
        if (r == ERANGE && size < (16u << 20))
            continue;
        if (r != 0)
            return -r;
        if (!res)
            return -ENOENT;
        *ret = res->gr_gid;
        return 0;
    }
}

void account_done(struct account *a)
{
    free(a->name);
    free(a->groups);
    free(a->home);
    free(a->shell);
    *a = (struct account){0};
}

void account_copy(const struct account *a, struct account *ret)
{
    *ret = *a;
    ret->groups = NULL;
    if (a->n_groups > 0) {
        ret->groups = xmalloc((size_t) a->n_groups * sizeof(gid_t));
        memcpy(ret->groups, a->groups, (size_t) a->n_groups * sizeof(gid_t));
    }
    ret->name = a->name ? xstrdup(a->name) : NULL;
    ret->home = a->home ? xstrdup(a->home) : NULL;
    ret->shell = a->shell ? xstrdup(a->shell) : NULL;
}

bool account_in_group(const struct account *a, gid_t gid)
{
    if (a->gid == gid)
        return true;
    for (int i = 0; i < a->n_groups; i++)
        if (a->groups[i] == gid)
            return true;
    return false;
}

static int lookup(const char *name, uid_t uid, bool by_uid, struct account *ret, struct error *err)
{
    struct passwd pw, *res = NULL;
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    if (size < 16384)
        size = 16384;
    _cleanup_free_ char *buf = xmalloc(size);
    int r = find_passwd(name, uid, by_uid, &pw, buf, size, &res);
    if (r != 0)
        return error_set_errno(err, -r, "look up account %s", name ? name : "(self)");
    if (!res)
        return error_set(err, -EINVAL, "user: no account named \"%s\" on this host",
                         name ? name : "(self)");

    gid_t *groups = NULL;
    size_t n = 0;
    _cleanup_free_ char *group_file = root ? account_host_path("/etc/group") : NULL;
    if (user_ids_groups_in(group_file, pw.pw_name, pw.pw_gid, &groups, &n) < 0)
        return error_set(err, -EIO, "cannot list the groups of %s", pw.pw_name);
    *ret = (struct account){
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

int account_lookup_uid(uid_t uid, struct account *ret, struct error *err)
{
    return lookup(NULL, uid, true, ret, err);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Accounts found in the last CACHE_USEC while /etc/passwd and /etc/group (the
 * first source NSS asks here) are unchanged: a task's account is looked up at
 * submit (the policy, the backend's check) and again at start, each a dozen
 * syscalls and two file parses. Only found accounts are kept. */
#define CACHE_USEC    (2 * USEC_PER_SEC)
#define CACHE_ENTRIES 8
static struct {
    pthread_mutex_t lock;
    struct cache_entry {
        char *name;
        struct account account;
        usec_t at;
        struct stat passwd, group;
    } e[CACHE_ENTRIES];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

int account_lookup(const char *name, struct account *ret, struct error *err)
{
    struct stat pw, gr;
    _cleanup_free_ char *passwd_path = account_host_path("/etc/passwd");
    _cleanup_free_ char *group_path = account_host_path("/etc/group");
    if (stat(passwd_path, &pw) < 0 || stat(group_path, &gr) < 0)
        return lookup(name, 0, false, ret, err);
    usec_t now = now_monotonic();
    struct cache_entry *oldest = &cache.e[0];
    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
        struct cache_entry *e = &cache.e[i];
        if (e->name && streq(e->name, name) && now - e->at < CACHE_USEC &&
            same_file(&e->passwd, &pw) && same_file(&e->group, &gr)) {
            account_copy(&e->account, ret);
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
    account_done(&oldest->account);
    oldest->name = xstrdup(name);
    account_copy(ret, &oldest->account);
    oldest->at = now;
    oldest->passwd = pw;
    oldest->group = gr;
    pthread_mutex_unlock(&cache.lock);
    return 0;
}

/* "UID_MIN<blanks>NUMBER" lines (the last one counts, as login.defs(5)
 * readers take it); a comment or anything else is ignored. */
static uid_t parse_uid_min(char *text)
{
    uid_t uid_min = UID_MIN_DEFAULT;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned long n;
        char after = 0;
        int got = sscanf(line, " UID_MIN%*[ \t]%lu%c", &n, &after);
        if ((got == 1 || (got == 2 && isspace((unsigned char) after))) && n < (uid_t) -1)
            uid_min = (uid_t) n;
    }
    return uid_min;
}

static struct {
    pthread_mutex_t lock;
    struct stat st;
    bool read;
    uid_t uid_min;
} login_defs = {.lock = PTHREAD_MUTEX_INITIALIZER, .uid_min = UID_MIN_DEFAULT};

uid_t account_uid_min(void)
{
    struct stat st;
    _cleanup_free_ char *path = account_host_path(LOGIN_DEFS);
    if (stat(path, &st) < 0)
        return UID_MIN_DEFAULT;
    pthread_mutex_lock(&login_defs.lock);
    if (!login_defs.read || !same_file(&login_defs.st, &st)) {
        _cleanup_free_ char *text = NULL;
        login_defs.uid_min =
            read_file(path, 1 << 20, &text, NULL) >= 0 ? parse_uid_min(text) : UID_MIN_DEFAULT;
        login_defs.st = st;
        login_defs.read = true;
    }
    uid_t r = login_defs.uid_min;
    pthread_mutex_unlock(&login_defs.lock);
    return r;
}

int account_user_ids(const char *name, struct user_ids *ret)
{
    struct account a;
    struct error err = ERROR_INIT;
    int r = account_lookup(name, &a, &err);
    error_clear(&err);
    if (r < 0)
        return r == -EINVAL ? -ENOENT : r;
    struct user_ids borrowed = {a.uid, a.gid, a.groups, (size_t) a.n_groups};
    user_ids_copy(&borrowed, ret);
    account_done(&a);
    return 0;
}

int account_as(uid_t uid, gid_t gid, const gid_t *groups, int n_groups, int (*f)(void *arg),
               void *arg)
{
    if (geteuid() != 0)
        return f(arg);
    struct user_ids ids = {uid, gid, (gid_t *) groups, (size_t) n_groups};
    return as_user_run(&ids, f, arg);
}
