/* policy-check: see policy-check.h. */
#include "policy-check.h"
#include "tes-stage.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* ---- accounts ---- */

/* The gid of a group by name (the host's: account.h): -ENOENT when there is none. */
static int group_gid(const char *name, gid_t *ret)
{
    return account_group_gid(name, ret);
}

/* The privileged groups' gids, read again when /etc/group changes: ten
 * lookups (ten parses of /etc/group) per submit would cost more than the
 * rest of the policy. Compared by gid, so that a group made with
 * `groupadd -o` on a privileged gid is privileged too. */
static struct {
    pthread_mutex_t lock;
    struct stat group;
    char **names; /* the list the gids were read for */
    gid_t *gids;  /* gids[i] of names[i]; (gid_t) -1 when there is no such group */
} priv = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool strv_equal(char *const *a, char *const *b)
{
    for (; a && *a && b && *b; a++, b++)
        if (!streq(*a, *b))
            return false;
    return !(a && *a) && !(b && *b);
}

/* The name of a privileged group the account is in (caller frees), or NULL. */
static char *privileged_group_of(char *const *names, const struct account *a)
{
    struct stat st = {0};
    _cleanup_free_ char *group_file = account_host_path("/etc/group");
    (void) stat(group_file, &st);
    char *found = NULL;
    pthread_mutex_lock(&priv.lock);
    if (!priv.names || !strv_equal(priv.names, names) || st.st_ino != priv.group.st_ino ||
        st.st_dev != priv.group.st_dev || st.st_size != priv.group.st_size ||
        st.st_mtim.tv_sec != priv.group.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != priv.group.st_mtim.tv_nsec) {
        strv_free(priv.names);
        free(priv.gids);
        priv.names = strv_copy(names);
        priv.gids = xcalloc(strv_length(names) + 1, sizeof(gid_t));
        for (size_t i = 0; names && names[i]; i++)
            if (group_gid(names[i], &priv.gids[i]) < 0)
                priv.gids[i] = (gid_t) -1;
        priv.group = st;
    }
    for (size_t i = 0; priv.names && priv.names[i] && !found; i++)
        if (priv.gids[i] != (gid_t) -1 && account_in_group(a, priv.gids[i]))
            found = xstrdup(priv.names[i]);
    pthread_mutex_unlock(&priv.lock);
    return found;
}

int policy_check_account(const struct config *cfg, const struct account *a, bool listed,
                         struct error *err)
{
    if (a->uid == 0)
        return error_set(err, -EACCES, "user: %s has uid 0 (%s): tasks never run as uid 0", a->name,
                         streq(a->name, "root") ? "root" : "root under another name");
    if (account_in_group(a, 0))
        return error_set(err, -EACCES,
                         "user: %s is in the group of gid 0: tasks never run with gid 0", a->name);
    if (strv_contains(cfg->denied_users, a->name))
        return error_set(err, -EACCES, "user: %s may not run tasks on this host (denied_users)",
                         a->name);
    _cleanup_free_ char *g = privileged_group_of(cfg->policy.privileged_groups, a);
    if (g)
        return error_set(err, -EACCES,
                         "user: %s is a member of %s, a privileged group (privileged_groups): "
                         "tasks never run as its members",
                         a->name, g);
    uid_t uid_min = account_uid_min();
    if (a->uid < uid_min && !listed)
        return error_set(err, -EACCES,
                         "user: %s (uid %u) is a system account, below UID_MIN %u of "
                         "/etc/login.defs: tasks run as it only for a principal whose run_as "
                         "names it",
                         a->name, (unsigned) a->uid, (unsigned) uid_min);
    return 0;
}

static bool listed_by_name(const struct policy *pol, const char *user)
{
    STRV_FOREACH (n, pol->run_as)
        if (!startswith(*n, "group:") && streq(*n, user))
            return true;
    return false;
}

static bool in_listed_group(const struct policy *pol, const struct account *a)
{
    STRV_FOREACH (n, pol->run_as) {
        gid_t gid;
        if (startswith(*n, "group:") && group_gid(*n + STRLEN("group:"), &gid) >= 0 &&
            account_in_group(a, gid))
            return true;
    }
    return false;
}

/* "user: principal ci-bot may run as ci or members of group builders, not
 * alice (principals.ci-bot.run_as)". */
static int run_as_refused(const struct principal *p, const char *user, struct error *err)
{
    const struct policy *pol = p->policy;
    _cleanup_strv_ char **items = NULL;
    if (p->via == PRINCIPAL_UNIX && p->account) {
        _cleanup_free_ char *self = xasprintf("itself (%s)", p->account);
        strv_push(&items, self);
    }
    STRV_FOREACH (n, pol->run_as) {
        _cleanup_free_ char *item = startswith(*n, "group:")
                                        ? xasprintf("members of group %s", *n + STRLEN("group:"))
                                        : xstrdup(*n);
        strv_push(&items, item);
    }
    size_t n = strv_length(items);
    if (n == 0)
        return error_set(err, -EACCES,
                         "user: principal %s may run tasks as no account, so not as %s "
                         "(principals.%s.run_as is empty)",
                         p->name, user, pol->name);
    _cleanup_free_ char *list = xstrdup(items[0]);
    for (size_t i = 1; i < n; i++) {
        char *l = xasprintf("%s%s%s", list, i + 1 == n ? " or " : ", ", items[i]);
        free(list);
        list = l;
    }
    return error_set(err, -EACCES,
                     "user: principal %s may run as %s%s, not %s (principals.%s.run_as)", p->name,
                     list, n == 1 && !pol->run_as ? " only" : "", user, pol->name);
}

/* Who the task may run as, resolved into *ret (an account of this host,
 * or nobody for a container whose account this host does not have). */
static int check_run_as(const struct config *cfg, const struct principal *p, const struct task *t,
                        struct account *ret, enum policy_rule *rule, struct error *err)
{
    const struct policy *pol = p->policy;
    struct account a = {0};
    int r = account_lookup(t->user, &a, err);
    if (r < 0 && r != -EINVAL)
        return r;
    bool exists = r >= 0;
    if (!exists)
        error_clear(err);
    bool listed = listed_by_name(pol, t->user);
    /* An account that does not exist is in no group: the answer to a
     * principal that may not use it is the same whether it exists or not. */
    bool allowed = p->admin || listed ||
                   (p->via == PRINCIPAL_UNIX && streq_ptr(p->account, t->user)) ||
                   (exists && in_listed_group(pol, &a));
    if (!allowed) {
        account_done(&a);
        return run_as_refused(p, t->user, err);
    }
    if (!exists && !t->container)
        return error_set(err, -EINVAL, "user: no account named \"%s\" on this host", t->user);
    if (!exists)
        /* A container's user need not exist here (a cluster's account):
         * its container runs as nobody, with no groups. */
        a = (struct account){
            .name = xstrdup(t->user), .uid = POLICY_NOBODY_ID, .gid = POLICY_NOBODY_ID};
    *rule = POLICY_RULE_NEVER;
    r = policy_check_account(cfg, &a, listed, err);
    if (r < 0) {
        account_done(&a);
        return r;
    }
    *ret = a;
    return 0;
}

/* ---- maxima ---- */

static int check_max(const struct principal *p, const struct task *t, struct error *err)
{
    const struct policy *pol = p->policy;
    const struct policy_max *m = &pol->max;
    char a[32], b[32];
    if (m->cores > 0 && t->cores > m->cores + 1e-9)
        return error_set(err, -EACCES,
                         "cores: %g is above the maximum of %g for principal %s "
                         "(principals.%s.max.cores)",
                         t->cores, m->cores, p->name, pol->name);
    if (m->memory && t->memory > m->memory)
        return error_set(err, -EACCES,
                         "memory: %s is above the maximum of %s for principal %s "
                         "(principals.%s.max.memory)",
                         format_size_human(t->memory, a), format_size_human(m->memory, b), p->name,
                         pol->name);
    if (m->cputime && t->cputime > m->cputime)
        return error_set(err, -EACCES,
                         "cputime: %s is above the maximum of %s for principal %s "
                         "(principals.%s.max.cputime)",
                         format_duration(t->cputime, a), format_duration(m->cputime, b), p->name,
                         pol->name);
    if (m->walltime && t->walltime > m->walltime)
        return error_set(err, -EACCES,
                         "walltime: %s is above the maximum of %s for principal %s "
                         "(principals.%s.max.walltime)",
                         format_duration(t->walltime, a), format_duration(m->walltime, b), p->name,
                         pol->name);
    return 0;
}

void policy_apply_defaults(const struct config *cfg, const struct policy *pol, struct task *t)
{
    if (t->cores <= 0)
        t->cores =
            pol->max.cores > 0 ? MIN(cfg->default_cores, pol->max.cores) : cfg->default_cores;
    if (t->memory == 0)
        t->memory =
            pol->max.memory ? MIN(cfg->default_memory, pol->max.memory) : cfg->default_memory;
    /* Slurm's way with a partition's MaxTime: a task that names no limit
     * gets the maximum as its limit, rather than a refusal. */
    if (!t->cputime)
        t->cputime = pol->max.cputime;
    if (!t->walltime)
        t->walltime = pol->max.walltime;
}

/* ---- containers ---- */

bool policy_image_allowed(char *const *patterns, const char *image)
{
    if (!patterns)
        return true;
    STRV_FOREACH (p, patterns)
        if (fnmatch(*p, image, 0) == 0)
            return true;
    return false;
}

static char *join(char *const *l, const char *sep)
{
    _cleanup_free_ char *s = xstrdup("");
    STRV_FOREACH (i, l) {
        char *n = xasprintf("%s%s%s", s, *s ? sep : "", *i);
        free(s);
        s = n;
    }
    return TAKE_PTR(s);
}

static int check_ports(const struct principal *p, const struct task_container *c, struct error *err)
{
    const struct policy *pol = p->policy;
    for (size_t i = 0; i < c->n_ports; i++) {
        unsigned port = c->ports[i].host;
        if (pol->port_min == 0)
            return error_set(err, -EACCES,
                             "container.ports[%zu].host: principal %s may not publish host "
                             "ports (principals.%s.ports is not set)",
                             i, p->name, pol->name);
        if (port < pol->port_min || port > pol->port_max)
            return error_set(err, -EACCES,
                             "container.ports[%zu].host: %u is outside principal %s's range "
                             "%u-%u (principals.%s.ports.range)",
                             i, port, p->name, (unsigned) pol->port_min, (unsigned) pol->port_max,
                             pol->name);
    }
    return 0;
}

static int check_container(const struct config *cfg, const struct principal *p,
                           const struct account *a, struct task *t, enum policy_rule *rule,
                           struct error *err)
{
    const struct policy *pol = p->policy;
    struct task_container *c = t->container;
    *rule = POLICY_RULE_IMAGE;
    if (!p->admin && !policy_image_allowed(pol->images, c->image)) {
        _cleanup_free_ char *list = join(pol->images, ", ");
        return error_set(err, -EACCES,
                         "container.image: principal %s may not run %s; its images are %s "
                         "(principals.%s.images)",
                         p->name, c->image, *list ? list : "none", pol->name);
    }
    *rule = POLICY_RULE_PORTS;
    int r = p->admin ? 0 : check_ports(p, c, err);
    if (r >= 0)
        *rule = POLICY_RULE_MOUNTS;
    for (size_t i = 0; r >= 0 && i < c->n_mounts; i++) {
        char *resolved = NULL;
        r = policy_check_mount(cfg, a, p->name, p->admin ? NULL : pol, &c->mounts[i], i, &resolved,
                               err);
        if (r >= 0) {
            /* What is stored, checked again at start, and mounted. */
            free(c->mounts[i].host);
            c->mounts[i].host = resolved;
        }
    }
    return r;
}

/* A mount check's words for a TES field: "inputs[0].url: ..." instead
 * of the "container.mounts[0].host: ..." policy_check_mount says. */
static int tes_words(struct error *err, int r, const char *field, size_t i)
{
    const char *msg = error_message(err), *colon = strstr(msg, ".host: ");
    _cleanup_free_ char *rest =
        xstrdup(startswith(msg, "container.mounts[") && colon ? colon + strlen(".host: ") : msg);
    return error_set(err, r, "%s[%zu].url: %s", field, i, rest);
}

struct ancestor {
    const char *path;
    char *found;
};

/* The deepest directory of a->path that exists, as the account sees it
 * (so that what it may not search answers as if missing). */
static int ancestor_as(void *arg)
{
    struct ancestor *a = arg;
    _cleanup_free_ char *p = xstrdup(a->path);
    for (;;) {
        char *slash = strrchr(p, '/');
        if (!slash)
            return -ENOENT;
        if (slash == p)
            slash[1] = '\0';
        else
            *slash = '\0';
        struct stat st;
        if (lstat(p, &st) >= 0 || errno != ENOENT || streq(p, "/")) {
            a->found = TAKE_PTR(p);
            return 0;
        }
    }
}

/*
 * A TES task (tes.h): every executor's image is held to the principal's
 * images, as the first one's (its container) is; its inputs' and
 * outputs' host paths (file:// URLs and absolute paths) to its mount
 * prefixes, as mounts are - an input as a read-only mount, an output's
 * deepest existing directory as a read-write one - so that what a
 * principal may not mount it may not copy in or out either. The URLs
 * stay as given: lib/tes-stage.c resolves them again, as the account,
 * and refuses what is never mountable, when it copies.
 */
static int check_tes(const struct config *cfg, const struct principal *p, const struct account *a,
                     const struct task *t, enum policy_rule *rule, struct error *err)
{
    const struct tes_task *tt = t->tes;
    const struct policy *pol = p->admin ? NULL : p->policy;
    *rule = POLICY_RULE_IMAGE;
    for (size_t i = 1; pol && i < tt->n_executors; i++)
        if (!policy_image_allowed(pol->images, tt->executors[i].image)) {
            _cleanup_free_ char *list = join(pol->images, ", ");
            return error_set(err, -EACCES,
                             "executors[%zu].image: principal %s may not run %s; its images are "
                             "%s (principals.%s.images)",
                             i, p->name, tt->executors[i].image, *list ? list : "none", pol->name);
        }
    *rule = POLICY_RULE_MOUNTS;
    for (size_t i = 0; i < tt->n_inputs + tt->n_outputs; i++) {
        bool in = i < tt->n_inputs;
        size_t k = in ? i : i - tt->n_inputs;
        const char *url = in ? tt->inputs[k].url : tt->outputs[k].url;
        if (in && tt->inputs[k].content)
            continue;
        _cleanup_free_ char *path = url ? tes_file_url_path(url) : NULL;
        if (!path)
            continue; /* another storage's, or none: tes-stage says so */
        if (cfg->host_root)
            return error_set(err, -EINVAL,
                             "%s[%zu].url: this proxy runs beside the host (host_root %s) and "
                             "copies no file of the host's",
                             in ? "inputs" : "outputs", k, cfg->host_root);
        struct ancestor anc = {.path = path};
        if (!in) {
            int r = account_as(a->uid, a->gid, a->groups, a->n_groups, ancestor_as, &anc);
            if (r < 0)
                return error_set_errno(err, r == -ENOENT ? -EINVAL : r, "outputs[%zu].url: %s", k,
                                       url);
        }
        _cleanup_free_ char *found = anc.found;
        struct task_mount m = {.host = in ? path : found,
                               .container = in ? tt->inputs[k].path : tt->outputs[k].path,
                               .mode = in ? MOUNT_RO : MOUNT_RW};
        char *resolved = NULL;
        int r = policy_check_mount(cfg, a, p->name, pol, &m, k, &resolved, err);
        free(resolved);
        if (r < 0)
            return tes_words(err, r, in ? "inputs" : "outputs", k);
    }
    return 0;
}

int policy_check_task(const struct config *cfg, const struct principal *p, struct task *t,
                      enum policy_rule *ret_rule, struct error *err)
{
    /* The host's files are seen read-only from beside it: output goes to
     * the task's files under the data dir, read through the logs endpoint. */
    if (cfg->host_root && (t->stdout_path || t->stderr_path))
        return error_set(err, -EINVAL,
                         "%s: this proxy runs beside the host (host_root %s) and writes no file "
                         "of the host's; leave it out and read the output at "
                         "/v1/jobproxy/logs/{id}",
                         t->stdout_path ? "stdout" : "stderr", cfg->host_root);
    struct account a = {0};
    enum policy_rule rule = POLICY_RULE_RUN_AS;
    int r = check_run_as(cfg, p, t, &a, &rule, err);
    if (r >= 0) {
        rule = POLICY_RULE_MAX;
        r = check_max(p, t, err);
    }
    if (r >= 0 && t->container)
        r = check_container(cfg, p, &a, t, &rule, err);
    if (r >= 0 && t->tes)
        r = check_tes(cfg, p, &a, t, &rule, err);
    account_done(&a);
    if (r < 0 && ret_rule)
        *ret_rule = rule;
    return r;
}

/* ---- mounts ---- */

/* realpath(path) as the host sees it: with a host root (account.h),
 * resolved beneath it as if it were / (an absolute symlink of the host's
 * stays on the host), and the answer is the host's path. */
static char *resolve(const char *path)
{
    const char *root = account_root();
    if (!root)
        return realpath(path, NULL);
    _cleanup_close_ int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        return NULL;
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    _cleanup_close_ int fd = (int) syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
    if (fd < 0)
        return NULL;
    /* Where it is in our view, which is the host's path under the root. */
    char link[64], buf[PATH_MAX + 1];
    snprintf(link, sizeof(link), "/proc/thread-self/fd/%d", fd);
    ssize_t n = readlink(link, buf, sizeof(buf) - 1);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    size_t k = strlen(root);
    while (k > 1 && root[k - 1] == '/')
        k--;
    if (strncmp(buf, root, k) != 0 || (buf[k] != '/' && buf[k] != '\0')) {
        errno = EXDEV; /* not beneath the root (cannot happen: RESOLVE_IN_ROOT) */
        return NULL;
    }
    return xstrdup(buf[k] ? buf + k : "/");
}

/* What a path is to an account: resolved (realpath as the account, every
 * symlink followed, where the host sees it), its type, and whether the
 * account may use it. */
struct probe {
    const char *path;
    bool rw;
    char *resolved;
    struct stat st;
    int access; /* 0, or the -errno of the access check */
};

static int probe_as(void *arg)
{
    struct probe *p = arg;
    p->resolved = resolve(p->path);
    if (!p->resolved)
        return -errno;
    _cleanup_free_ char *seen = account_host_path(p->resolved);
    if (lstat(seen, &p->st) < 0)
        return -errno;
    int mode = R_OK | (S_ISDIR(p->st.st_mode) ? X_OK : 0) | (p->rw ? W_OK : 0);
    p->access = faccessat(AT_FDCWD, seen, mode, AT_EACCESS) < 0 ? -errno : 0;
    /* Our view of the host is a read-only bind: the kernel answers EROFS
     * only once the permission bits have said yes, and the host's own
     * mount is what the container will get. */
    if (p->access == -EROFS && account_root())
        p->access = 0;
    return 0;
}

static const char *verb(const struct task_mount *m)
{
    return m->mode == MOUNT_RW ? "read and write" : "read";
}

/* Resolves mount i's host path as account a. A path a cannot search is
 * "may not read", whether it exists or not (resolving as a, the kernel
 * answers EACCES before it looks). */
static int probe(const struct account *a, const struct task_mount *m, size_t i, struct probe *p,
                 struct error *err)
{
    *p = (struct probe){.path = m->host, .rw = m->mode == MOUNT_RW};
    int r = account_as(a->uid, a->gid, a->groups, a->n_groups, probe_as, p);
    if (r >= 0)
        return 0;
    free(p->resolved);
    p->resolved = NULL;
    if (r == -EACCES || r == -EPERM)
        return error_set(err, -EACCES, "container.mounts[%zu].host: user %s may not %s %s", i,
                         a->name, verb(m), m->host);
    if (r == -ENOENT)
        return error_set(err, -EINVAL, "container.mounts[%zu].host: %s does not exist", i, m->host);
    return error_set_errno(err, r == -ENOTDIR || r == -ELOOP || r == -ENAMETOOLONG ? -EINVAL : r,
                           "container.mounts[%zu].host: %s", i, m->host);
}

static bool under(const char *path, const char *dir)
{
    if (streq(dir, "/"))
        return true;
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Whether path is dir or under it, dir as written or resolved (as the
 * daemon: /var/run is /run here). */
static bool under_resolved(const char *path, const char *dir)
{
    if (under(path, dir))
        return true;
    _cleanup_free_ char *real = resolve(dir);
    return real && under(path, real);
}

static bool under_any(const char *path, char *const *dirs)
{
    STRV_FOREACH (d, dirs)
        if (under_resolved(path, *d))
            return true;
    return false;
}

/* The Docker socket the backend talks to (engine.c's choice). */
static const char *docker_socket(const struct config *cfg)
{
    const char *s = cfg->docker_socket;
    if (isempty(s)) {
        const char *host = getenv("DOCKER_HOST");
        s = host && startswith(host, "unix://") ? host : "/var/run/docker.sock";
    }
    return startswith(s, "unix://") ? s + STRLEN("unix://") : s;
}

static const char *const never_dirs[] = {
    "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/run", "/var/run", "/var/lib/docker",
};

bool policy_never_mountable(const struct config *cfg, const char *path, mode_t type,
                            char **ret_words)
{
    char *w = NULL;
    if (S_ISSOCK(type))
        w = xstrdup("is a socket, and no socket or device node is ever mounted");
    else if (S_ISCHR(type) || S_ISBLK(type))
        w = xstrdup("is a device node, and no socket or device node is ever mounted");
    else if (streq(path, "/"))
        w = xstrdup("is the host's root directory, which is never mounted");
    for (size_t i = 0; !w && i < ELEMENTSOF(never_dirs); i++)
        if (under_resolved(path, never_dirs[i]))
            w = xasprintf("is %s%s, which is never mounted",
                          streq(path, never_dirs[i]) ? "" : "under ", never_dirs[i]);
    if (!w && !streq(cfg->data_dir, "/") && under_resolved(path, cfg->data_dir))
        w = xasprintf("is in the proxy's data directory %s, which is never mounted", cfg->data_dir);
    if (!w) {
        /* The socket's directory shows the socket. */
        _cleanup_free_ char *dir = xstrdup(docker_socket(cfg));
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (under_resolved(path, dir))
                w = xasprintf("is in %s, the Docker socket's directory, which is never mounted",
                              dir);
        }
    }
    if (ret_words)
        *ret_words = w;
    else
        free(w);
    return w != NULL;
}

static int never_refused(const struct config *cfg, const struct task_mount *m, size_t i,
                         const struct probe *p, struct error *err)
{
    _cleanup_free_ char *words = NULL;
    if (!policy_never_mountable(cfg, p->resolved, p->st.st_mode, &words))
        return 0;
    if (streq(p->resolved, m->host))
        return error_set(err, -EACCES, "container.mounts[%zu].host: %s %s", i, m->host, words);
    return error_set(err, -EACCES, "container.mounts[%zu].host: %s (that is, %s) %s", i, m->host,
                     p->resolved, words);
}

static int check_prefixes(const char *principal, const struct policy *pol,
                          const struct task_mount *m, size_t i, const char *resolved,
                          struct error *err)
{
    if (!pol->mounts_ro && !pol->mounts_rw)
        return error_set(err, -EACCES,
                         "container.mounts[%zu].host: principal %s may not mount host paths "
                         "(principals.%s.mounts is not set)",
                         i, principal, pol->name);
    if (under_any(resolved, pol->mounts_rw))
        return 0;
    bool ro = under_any(resolved, pol->mounts_ro);
    if (ro && m->mode == MOUNT_RO)
        return 0;
    if (ro)
        return error_set(err, -EACCES,
                         "container.mounts[%zu].host: %s is under a read-only prefix of principal "
                         "%s (principals.%s.mounts.ro): mount it RO",
                         i, resolved, principal, pol->name);
    return error_set(err, -EACCES,
                     "container.mounts[%zu].host: %s is outside the %s prefixes of principal %s "
                     "(principals.%s.mounts)",
                     i, resolved, m->mode == MOUNT_RW ? "rw" : "ro and rw", principal, pol->name);
}

int policy_check_mount(const struct config *cfg, const struct account *a, const char *principal,
                       const struct policy *pol, const struct task_mount *m, size_t i,
                       char **ret_resolved, struct error *err)
{
    struct probe p;
    int r = probe(a, m, i, &p, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *resolved = p.resolved;
    r = never_refused(cfg, m, i, &p, err);
    if (r >= 0 && pol)
        r = check_prefixes(principal, pol, m, i, resolved, err);
    if (r >= 0 && p.access < 0)
        r = error_set(err, -EACCES, "container.mounts[%zu].host: user %s may not %s %s", i, a->name,
                      verb(m), m->host);
    if (r < 0)
        return r;
    *ret_resolved = TAKE_PTR(resolved);
    return 0;
}

int policy_recheck_mount(const struct config *cfg, const struct account *a,
                         const struct task_mount *m, size_t i, struct error *err)
{
    struct probe p;
    int r = probe(a, m, i, &p, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *resolved = p.resolved;
    if (!streq(resolved, m->host))
        return error_set(err, -EACCES,
                         "container.mounts[%zu].host: %s now resolves to %s: it changed after "
                         "the task was submitted, and is not mounted",
                         i, m->host, resolved);
    r = never_refused(cfg, m, i, &p, err);
    if (r >= 0 && p.access < 0)
        r = error_set(err, -EACCES, "container.mounts[%zu].host: user %s may not %s %s", i, a->name,
                      verb(m), m->host);
    return r;
}
