/*
 * Unit tests: policy-check (what a principal may do) and quota (what its
 * tasks hold). The account rules on accounts made up here and on the
 * host's own (nobody, root); the mount rules on a directory tree made
 * here, resolved as nobody (needs root to take nobody's identity).
 */
#include "policy-check.h"
#include "quota.h"
#include "tap.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static struct config cfg;

/* The words of the last call wrapped in kept(): an ok() may read its
 * message arguments before its condition's call has set them. */
static char msg[2048];
static int kept(int r, const struct error *err)
{
    snprintf(msg, sizeof(msg), "%s", r < 0 ? error_message(err) : "");
    return r;
}

static void load(const char *yaml)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    cJSON *j = NULL;
    int r = task_yaml_parse(yaml, strlen(yaml), &j, &err);
    if (r >= 0)
        r = policy_set_load_principals(&cfg.policy, j, &err);
    cJSON_Delete(j);
    if (r < 0) {
        printf("Bail out! policy: %s\n", error_message(&err));
        exit(1);
    }
}

static struct task *task(const char *json)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct task *t = NULL;
    if (task_parse(TASK_FORMAT_JSON, json, strlen(json), NULL, &t, &err) < 0) {
        printf("Bail out! task %s: %s\n", json, error_message(&err));
        exit(1);
    }
    return t;
}

/* policy_check_task's answer for principal p and a task: its code, and
 * whether its words hold 'needle' (NULL: no words wanted). */
static bool check(const struct principal *p, const char *json, int code, const char *needle)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_task_ struct task *t = task(json);
    int r = policy_check_task(&cfg, p, t, NULL, &err);
    bool good = r == code && (!needle || strstr(error_message(&err), needle));
    if (!good)
        diag("got %d: %s", r, error_message(&err));
    return good;
}

static void test_images(void)
{
    char *pats[] = {"127.0.0.1:5000/*", "*@sha256:*", "busybox:1.*", NULL};
    char *none[] = {NULL};
    ok(policy_image_allowed(NULL, "anything/at:all"), "no patterns: any image");
    ok(!policy_image_allowed(none, "busybox"), "an empty list: no image");
    ok(policy_image_allowed(pats, "127.0.0.1:5000/ocps-test/busybox:1"),
       "a registry pattern matches its images, nested paths too");
    ok(!policy_image_allowed(pats, "docker.io/127.0.0.1:5000/x") &&
           !policy_image_allowed(pats, "evil.example/127.0.0.1:5000/x"),
       "... and nothing that merely contains it");
    ok(policy_image_allowed(pats, "ubuntu@sha256:0123abcd") &&
           !policy_image_allowed(pats, "ubuntu"),
       "a digest pattern requires a digest");
    ok(policy_image_allowed(pats, "busybox:1.36") && !policy_image_allowed(pats, "busybox:latest"),
       "a tag pattern");
}

static void test_defaults(void)
{
    _cleanup_task_ struct task *t = task("{\"user\":\"nobody\",\"cmd\":\"true\"}");
    const struct policy *small = policy_lookup(&cfg.policy, "small");
    policy_apply_defaults(&cfg, small, t);
    ok(t->cores == 0.5 && t->memory == 256ULL << 20,
       "cores and memory not given: the defaults, lowered to the maxima (%g, %llu)", t->cores,
       (unsigned long long) t->memory);
    ok(t->walltime == 3600 && t->cputime == 1800,
       "no walltime or cputime: the maxima become the limits, as Slurm's MaxTime");
    _cleanup_task_ struct task *u =
        task("{\"user\":\"nobody\",\"cmd\":\"true\",\"walltime\":\"10m\",\"cores\":0.25}");
    policy_apply_defaults(&cfg, small, u);
    ok(u->walltime == 600 && u->cores == 0.25 && u->cputime == 1800, "given values stay");
    _cleanup_task_ struct task *v = task("{\"user\":\"nobody\",\"cmd\":\"true\"}");
    policy_apply_defaults(&cfg, &cfg.policy.def, v);
    ok(v->cores == 1 && v->memory == 1ULL << 30 && v->walltime == 0 && v->cputime == 0,
       "without maxima: the config's defaults, no time limits");
}

static void test_accounts(void)
{
    gid_t disk = 6;
    struct group *g = getgrnam("disk");
    if (g)
        disk = g->gr_gid;
    gid_t plain_groups[] = {1500, 1501};
    gid_t zero_groups[] = {1500, 0};
    gid_t disk_groups[] = {1500, disk};
    struct account plain = {.name = "plain", .uid = 1500, .gid = 1500, plain_groups, 2};
    struct account alias = {.name = "toor", .uid = 0, .gid = 1500, plain_groups, 2};
    struct account gid0 = {.name = "g0", .uid = 1500, .gid = 1500, zero_groups, 2};
    struct account prim0 = {.name = "p0", .uid = 1500, .gid = 0, plain_groups, 2};
    struct account member = {.name = "dk", .uid = 1500, .gid = 1500, disk_groups, 2};
    struct account sys = {.name = "sys", .uid = 100, .gid = 100, NULL, 0};
    _cleanup_error_ struct error err = ERROR_INIT;

    ok(kept(policy_check_account(&cfg, &plain, false, &err), &err) == 0,
       "an ordinary account may be run as");
    ok(kept(policy_check_account(&cfg, &alias, true, &err), &err) == -EACCES &&
           strstr(msg, "toor has uid 0 (root under another name)"),
       "uid 0 under another name is refused, listed or not: %s", msg);
    ok(kept(policy_check_account(&cfg, &gid0, true, &err), &err) == -EACCES && strstr(msg, "gid 0"),
       "a supplementary gid 0 is refused: %s", msg);
    ok(kept(policy_check_account(&cfg, &prim0, true, &err), &err) == -EACCES &&
           strstr(msg, "gid 0"),
       "a primary gid 0 is refused");
    if (g)
        ok(kept(policy_check_account(&cfg, &member, true, &err), &err) == -EACCES &&
               strstr(msg, "member of disk, a privileged group (privileged_groups)"),
           "a member of a privileged group is refused, listed or not: %s", msg);
    else
        skip("no group disk on this host");
    ok(kept(policy_check_account(&cfg, &sys, false, &err), &err) == -EACCES &&
           strstr(msg, "below UID_MIN 1000 of /etc/login.defs"),
       "a system account is refused: %s", msg);
    ok(kept(policy_check_account(&cfg, &sys, true, &err), &err) == 0,
       "... unless the principal's run_as names it");
    strv_push(&cfg.denied_users, "plain");
    ok(kept(policy_check_account(&cfg, &plain, false, &err), &err) == -EACCES &&
           strstr(msg, "(denied_users)"),
       "denied_users adds names of its own");
    cfg.denied_users = strv_free(cfg.denied_users);
}

static void test_run_as(void)
{
    _cleanup_(principal_freep) struct principal *bot =
        principal_new(&cfg.policy, "bot", PRINCIPAL_TOKEN, false);
    _cleanup_(principal_freep) struct principal *grp =
        principal_new(&cfg.policy, "grp", PRINCIPAL_TOKEN, false);
    _cleanup_(principal_freep) struct principal *none =
        principal_new(&cfg.policy, "stranger", PRINCIPAL_TOKEN, false);
    _cleanup_(principal_freep) struct principal *admin =
        principal_new(&cfg.policy, "ops", PRINCIPAL_TOKEN, false);
    struct principal *peer = NULL;
    _cleanup_error_ struct error err = ERROR_INIT;
    if (principal_new_unix(&cfg.policy, 65534, &peer, &err) < 0) {
        printf("Bail out! %s\n", error_message(&err));
        exit(1);
    }

    ok(check(bot, "{\"user\":\"nobody\",\"cmd\":\"true\"}", 0, NULL), "run_as by name");
    ok(check(bot, "{\"user\":\"daemon\",\"cmd\":\"true\"}", -EACCES,
             "user: principal bot may run as nobody, ci-ghost or members of group ocps-nogroup, "
             "not daemon (principals.bot.run_as)"),
       "another account: 403 naming the rule");
    ok(check(bot, "{\"user\":\"no-such-acct\",\"cmd\":\"true\"}", -EACCES,
             "not no-such-acct (principals.bot.run_as)"),
       "an account that does not exist: the same 403 (its existence is not told)");
    ok(check(bot, "{\"user\":\"ci-ghost\",\"cmd\":\"true\"}", -EINVAL, "no account named"),
       "a listed account this host lacks: 400 for a command");
    ok(check(bot, "{\"user\":\"ci-ghost\",\"container\":{\"image\":\"busybox\"}}", 0, NULL),
       "... and nobody's container for a container task");
    ok(check(grp, "{\"user\":\"nobody\",\"cmd\":\"true\"}", 0, NULL),
       "run_as by group: nobody is in nogroup");
    ok(check(none, "{\"user\":\"nobody\",\"cmd\":\"true\"}", -EACCES,
             "user: principal stranger may run tasks as no account, so not as nobody "
             "(principals.default.run_as is empty)"),
       "the default entry names no account");
    ok(check(peer, "{\"user\":\"nobody\",\"cmd\":\"true\"}", 0, NULL),
       "a unix peer may run as itself");
    ok(check(peer, "{\"user\":\"daemon\",\"cmd\":\"true\"}", -EACCES,
             "user: principal nobody may run as itself (nobody) only, not daemon"),
       "... and only as itself");
    ok(check(admin, "{\"user\":\"nobody\",\"cmd\":\"true\"}", 0, NULL) &&
           check(admin, "{\"user\":\"root\",\"cmd\":\"true\"}", -EACCES, "uid 0") &&
           check(admin, "{\"user\":\"daemon\",\"cmd\":\"true\"}", -EACCES, "system account"),
       "an admin may run as any account the never-list allows, not root or a system account");
    ok(check(admin, "{\"user\":\"no-such-acct\",\"cmd\":\"true\"}", -EINVAL,
             "user: no account named \"no-such-acct\""),
       "an admin naming an account that does not exist: 400");
    principal_free(peer);
}

static void test_max(void)
{
    _cleanup_(principal_freep) struct principal *s =
        principal_new(&cfg.policy, "small", PRINCIPAL_TOKEN, false);
    ok(check(s, "{\"user\":\"nobody\",\"cmd\":\"true\",\"cores\":1}", -EACCES,
             "cores: 1 is above the maximum of 0.5 for principal small "
             "(principals.small.max.cores)"),
       "cores above the maximum: 403 naming it");
    ok(check(s, "{\"user\":\"nobody\",\"cmd\":\"true\",\"memory\":\"1G\"}", -EACCES,
             "memory: 1 GiB is above the maximum of 256 MiB for principal small "
             "(principals.small.max.memory)"),
       "memory above the maximum");
    ok(check(s, "{\"user\":\"nobody\",\"cmd\":\"true\",\"walltime\":\"2h\"}", -EACCES,
             "(principals.small.max.walltime)"),
       "walltime above the maximum");
    ok(check(s, "{\"user\":\"nobody\",\"cmd\":\"true\",\"cputime\":\"1h\"}", -EACCES,
             "(principals.small.max.cputime)"),
       "cputime above the maximum");
    ok(check(s, "{\"user\":\"nobody\",\"cmd\":\"true\",\"cores\":0.5,\"memory\":\"256M\"}", 0,
             NULL),
       "at the maxima: allowed");
}

static void test_containers(void)
{
    _cleanup_(principal_freep) struct principal *c =
        principal_new(&cfg.policy, "ctr", PRINCIPAL_TOKEN, false);
    _cleanup_(principal_freep) struct principal *admin =
        principal_new(&cfg.policy, "ops", PRINCIPAL_TOKEN, false);
    ok(check(c, "{\"user\":\"nobody\",\"container\":{\"image\":\"127.0.0.1:5000/x:1\"}}", 0, NULL),
       "an allowed image");
    ok(check(c, "{\"user\":\"nobody\",\"container\":{\"image\":\"busybox\"}}", -EACCES,
             "container.image: principal ctr may not run busybox; its images are "
             "127.0.0.1:5000/* (principals.ctr.images)"),
       "another image: 403 naming the patterns");
    ok(check(admin, "{\"user\":\"nobody\",\"container\":{\"image\":\"busybox\"}}", 0, NULL),
       "an admin is held to no image list");
    ok(check(c,
             "{\"user\":\"nobody\",\"container\":{\"image\":\"127.0.0.1:5000/x\","
             "\"ports\":[{\"host\":20050,\"container\":80}]}}",
             0, NULL),
       "a host port in the range");
    ok(check(c,
             "{\"user\":\"nobody\",\"container\":{\"image\":\"127.0.0.1:5000/x\","
             "\"ports\":[{\"host\":20050,\"container\":80},{\"host\":80,\"container\":81}]}}",
             -EACCES,
             "container.ports[1].host: 80 is outside principal ctr's range 20000-20100 "
             "(principals.ctr.ports.range)"),
       "a host port outside it");
    _cleanup_(principal_freep) struct principal *bot =
        principal_new(&cfg.policy, "bot", PRINCIPAL_TOKEN, false);
    ok(check(bot,
             "{\"user\":\"nobody\",\"container\":{\"image\":\"x\",\"ports\":[{\"host\":8080,"
             "\"container\":80}]}}",
             -EACCES, "principal bot may not publish host ports (principals.bot.ports is not set)"),
       "no port range: no host ports");
    ok(check(bot,
             "{\"user\":\"nobody\",\"container\":{\"image\":\"x\",\"mounts\":[{\"host\":\"/tmp\","
             "\"container\":\"/x\",\"mode\":\"RO\"}]}}",
             -EACCES, "principal bot may not mount host paths (principals.bot.mounts is not set)"),
       "no prefixes: no mounts");
}

static void test_never_mountable(const char *dir)
{
    char *w = NULL;
    ok(policy_never_mountable(&cfg, "/", S_IFDIR, &w) && strstr(w, "root directory"), "/ itself");
    free(w);
    ok(!policy_never_mountable(&cfg, "/tmp", S_IFDIR, NULL),
       "... but not what is under / (that is what the prefixes are for)");
    const char *never[] = {
        "/etc",  "/etc/ssl/certs", "/proc/1",          "/sys/fs",  "/dev/shm",
        "/boot", "/root/.ssh",     "/run/docker.sock", "/var/run", "/var/lib/docker/volumes"};
    for (size_t i = 0; i < ELEMENTSOF(never); i++)
        ok(policy_never_mountable(&cfg, never[i], S_IFDIR, NULL), "%s is never mountable",
           never[i]);
    ok(!policy_never_mountable(&cfg, "/etcetera", S_IFDIR, NULL) &&
           !policy_never_mountable(&cfg, "/devices", S_IFDIR, NULL),
       "a prefix is a whole path component");
    _cleanup_free_ char *inside = xasprintf("%s/tasks/x", cfg.data_dir);
    ok(policy_never_mountable(&cfg, cfg.data_dir, S_IFDIR, &w) && strstr(w, "data directory") &&
           policy_never_mountable(&cfg, inside, S_IFDIR, NULL),
       "the data dir and what is under it");
    free(w);
    _cleanup_free_ char *sock = xasprintf("%s/any.sock", dir);
    ok(policy_never_mountable(&cfg, sock, S_IFSOCK, &w) && strstr(w, "socket"),
       "a socket anywhere");
    free(w);
    ok(policy_never_mountable(&cfg, sock, S_IFCHR, NULL) &&
           policy_never_mountable(&cfg, sock, S_IFBLK, NULL),
       "a device node anywhere");
}

/* A tree under dir: ro/ (RO prefix), rw/ (RW prefix), rw/etc -> /etc,
 * closed/ (0700), other/; mounts resolved as nobody. */
static void test_mounts(const char *dir)
{
    if (geteuid() != 0) {
        skip("mounts as another account: needs root");
        return;
    }
    _cleanup_free_ char *ro = xasprintf("%s/ro", dir), *rw = xasprintf("%s/rw", dir),
                        *closed = xasprintf("%s/closed", dir), *other = xasprintf("%s/other", dir),
                        *link = xasprintf("%s/rw/etc", dir), *data = xasprintf("%s/ro/data", dir),
                        *mine = xasprintf("%s/rw/mine", dir),
                        *secret = xasprintf("%s/closed/secret", dir);
    if (mkdir(ro, 0755) < 0 || mkdir(rw, 0755) < 0 || mkdir(closed, 0700) < 0 ||
        mkdir(other, 0755) < 0 || mkdir(data, 0755) < 0 || mkdir(mine, 0755) < 0 ||
        mkdir(secret, 0755) < 0 || symlink("/etc", link) < 0 || chown(mine, 65534, 65534) < 0) {
        printf("Bail out! make the tree: %s\n", strerror(errno));
        exit(1);
    }
    _cleanup_free_ char *yaml = xasprintf("mnt: {mounts: {ro: [%s], rw: [%s]}}\n", ro, rw);
    load(yaml);
    const struct policy *pol = policy_lookup(&cfg.policy, "mnt");
    _cleanup_error_ struct error err = ERROR_INIT;
    struct account a = {0};
    if (account_lookup("nobody", &a, &err) < 0) {
        printf("Bail out! %s\n", msg);
        exit(1);
    }
#define MOUNT(h, m) (&(struct task_mount){.host = (char *) (h), .container = "/x", .mode = (m)})
    char *res = NULL;
    ok(kept(policy_check_mount(&cfg, &a, "mnt", pol, MOUNT(data, MOUNT_RO), 0, &res, &err), &err) ==
               0 &&
           streq(res, data),
       "RO under the ro prefix: %s", msg);
    free(res), res = NULL;
    ok(kept(policy_check_mount(&cfg, &a, "mnt", pol, MOUNT(data, MOUNT_RW), 0, &res, &err), &err) ==
               -EACCES &&
           strstr(msg, "is under a read-only prefix of principal mnt (principals.mnt.mounts.ro)"),
       "RW under the ro prefix is refused: %s", msg);
    ok(kept(policy_check_mount(&cfg, &a, "mnt", pol, MOUNT(mine, MOUNT_RW), 0, &res, &err), &err) ==
           0,
       "RW under the rw prefix, writable by the user: %s", msg);
    free(res), res = NULL;
    ok(kept(policy_check_mount(&cfg, &a, "mnt", pol, MOUNT(rw, MOUNT_RW), 0, &res, &err), &err) ==
               -EACCES &&
           strstr(msg, "user nobody may not read and write"),
       "RW where the user may not write: %s", msg);
    ok(kept(policy_check_mount(&cfg, &a, "mnt", pol, MOUNT(other, MOUNT_RO), 0, &res, &err),
            &err) == -EACCES &&
           strstr(msg, "is outside the ro and rw prefixes of principal mnt"),
       "outside the prefixes: %s", msg);
    ok(kept(policy_check_mount(&cfg, &a, "mnt", pol, MOUNT(link, MOUNT_RO), 0, &res, &err), &err) ==
               -EACCES &&
           strstr(msg, "(that is, /etc) is /etc, which is never mounted"),
       "a symlink under a prefix to /etc: checked resolved: %s", msg);
    ok(kept(policy_check_mount(&cfg, &a, "ops", NULL, MOUNT("/proc/self/root", MOUNT_RO), 0, &res,
                               &err),
            &err) == -EACCES,
       "/proc/self/root (/ by another name), even for an admin: %s", msg);

    _cleanup_free_ char *exists = xasprintf("%s/secret", closed),
                        *absent = xasprintf("%s/absent", closed);
    _cleanup_error_ struct error e1 = ERROR_INIT, e2 = ERROR_INIT;
    int r1 = policy_check_mount(&cfg, &a, "ops", NULL, MOUNT(exists, MOUNT_RO), 0, &res, &e1);
    int r2 = policy_check_mount(&cfg, &a, "ops", NULL, MOUNT(absent, MOUNT_RO), 0, &res, &e2);
    _cleanup_free_ char *m2 = xstrdup(error_message(&e2));
    char *at = strstr(m2, "/absent");
    if (at)
        memcpy(at, "/secret", STRLEN("/secret"));
    ok(r1 == -EACCES && r1 == r2 && streq(error_message(&e1), m2),
       "behind a closed directory: the same answer whether the path exists or not (%s | %s)",
       error_message(&e1), error_message(&e2));

    /* At start: the path resolved at submit must resolve to itself still. */
    ok(kept(policy_recheck_mount(&cfg, &a, MOUNT(mine, MOUNT_RW), 0, &err), &err) == 0,
       "recheck: unchanged: %s", msg);
    if (rmdir(mine) < 0 || symlink("/etc", mine) < 0) {
        printf("Bail out! swap: %s\n", strerror(errno));
        exit(1);
    }
    ok(kept(policy_recheck_mount(&cfg, &a, MOUNT(mine, MOUNT_RW), 0, &err), &err) == -EACCES &&
           strstr(msg, "now resolves to /etc: it changed after the task was submitted"),
       "recheck: a symlink swapped in is refused: %s", msg);
    (void) unlink(mine);
    account_done(&a);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        printf("Bail out! write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* host_root (the sidecar): accounts from the host's files, mounts resolved
 * beneath the host's root as the host resolves them, and the answer is
 * the host's path. The "host" is a tree made here, with accounts and
 * groups this machine does not have. */
static void test_host_root(const char *dir)
{
    if (geteuid() != 0) {
        skip("mounts as another account: needs root");
        return;
    }
    _cleanup_free_ char *root = xasprintf("%s/host", dir);
    _cleanup_free_ char *mk = xasprintf(
        "mkdir -p %1$s/etc %1$s/srv/data %1$s/srv/closed/x && chmod 0700 %1$s/srv/closed && "
        "chown 4242:4242 %1$s/srv/data && ln -s /srv/data %1$s/srv/link && "
        "ln -s /etc %1$s/srv/esc && ln -s ../../.. %1$s/srv/data/up",
        root);
    if (system(mk) != 0) {
        printf("Bail out! make the host tree\n");
        exit(1);
    }
    _cleanup_free_ char *passwd = xasprintf("%s/etc/passwd", root),
                        *group = xasprintf("%s/etc/group", root),
                        *defs = xasprintf("%s/etc/login.defs", root);
    write_text(passwd, "root:x:0:0:root:/root:/bin/sh\n"
                       "hostuser:x:4242:4242::/home/hostuser:/bin/sh\n"
                       "hostdocker:x:4243:4243::/home/hostdocker:/bin/sh\n");
    write_text(group, "root:x:0:\nhostuser:x:4242:\nhostdocker:x:4243:\n"
                      "builders:x:4300:hostuser,other\ndocker:x:4400:hostdocker\n");
    write_text(defs, "# the host's\nUID_MIN 2000\n");

    account_set_root(root);
    _cleanup_error_ struct error err = ERROR_INIT;
    struct account a = {0}, d = {0}, none = {0};
    int r = kept(account_lookup("hostuser", &a, &err), &err);
    ok(r == 0 && a.uid == 4242 && a.gid == 4242 && a.n_groups == 2 && a.groups[0] == 4242 &&
           a.groups[1] == 4300 && streq(a.home, "/home/hostuser"),
       "an account of the host's passwd, its groups from the host's group file: %s", msg);
    ok(kept(account_lookup("nobody", &none, &err), &err) == -EINVAL,
       "an account of this machine's only is no account of the host: %s", msg);
    _cleanup_free_ char *name = NULL;
    ok(account_uid_name(4242, &name) == 0 && streq(name, "hostuser"),
       "a uid's name from the host's passwd (a unix peer)");
    gid_t gid = 0;
    ok(account_group_gid("builders", &gid) == 0 && gid == 4300, "a group's gid from the host's");
    ok(account_uid_min() == 2000, "UID_MIN from the host's login.defs");
    ok(account_lookup("hostdocker", &d, &err) == 0 &&
           kept(policy_check_account(&cfg, &d, true, &err), &err) == -EACCES &&
           strstr(msg, "member of docker"),
       "a member of the host's docker group is refused: %s", msg);

    load("hmnt: {mounts: {rw: [/srv]}}\n");
    const struct policy *pol = policy_lookup(&cfg.policy, "hmnt");
    char *res = NULL;
    ok(kept(policy_check_mount(&cfg, &a, "hmnt", pol, MOUNT("/srv/link", MOUNT_RW), 0, &res, &err),
            &err) == 0 &&
           streq(res, "/srv/data"),
       "an absolute symlink of the host's resolves on the host, to the host's path: %s (%s)",
       res ? res : "-", msg);
    free(res), res = NULL;
    ok(kept(policy_check_mount(&cfg, &a, "hmnt", pol, MOUNT("/srv/esc", MOUNT_RO), 0, &res, &err),
            &err) == -EACCES &&
           strstr(msg, "(that is, /etc) is /etc, which is never mounted"),
       "a symlink to the host's /etc: %s", msg);
    ok(kept(policy_check_mount(&cfg, &a, "hmnt", pol, MOUNT("/srv/data/up/etc", MOUNT_RO), 0, &res,
                               &err),
            &err) == -EACCES &&
           strstr(msg, "(that is, /etc) is /etc"),
       "\"..\" stops at the host's root: %s", msg);
    ok(kept(policy_check_mount(&cfg, &a, "hmnt", pol, MOUNT("/srv/closed/x", MOUNT_RO), 0, &res,
                               &err),
            &err) == -EACCES &&
           strstr(msg, "user hostuser may not read /srv/closed/x"),
       "a directory the host's account cannot search: %s", msg);
    ok(kept(policy_check_mount(&cfg, &a, "ops", NULL, MOUNT(dir, MOUNT_RO), 0, &res, &err), &err) ==
               -EINVAL &&
           strstr(msg, "does not exist"),
       "a path of this machine's that the host has not: %s", msg);
    ok(kept(policy_recheck_mount(&cfg, &a, MOUNT("/srv/data", MOUNT_RW), 0, &err), &err) == 0,
       "recheck at start, under the root too: %s", msg);

    _cleanup_(principal_freep) struct principal *ops =
        principal_new(&cfg.policy, "ops", PRINCIPAL_TOKEN, true);
    cfg.host_root = root;
    ok(check(ops,
             "{\"user\": \"hostuser\", \"stdout\": \"/srv/data/out\", \"container\": "
             "{\"image\": \"x\"}}",
             -EINVAL, "writes no file of the host's"),
       "a task's own stdout path is refused beside the host");
    cfg.host_root = NULL;
    account_set_root(NULL);
    account_done(&a);
    account_done(&d);
}

static void test_quota(void)
{
    struct quota_table q;
    quota_init(&q);
    _cleanup_error_ struct error err = ERROR_INIT;
    const struct policy *pol = policy_lookup(&cfg.policy, "quota");
    uint16_t s1 = 0, s2 = 0, s3 = 0;
    ok(kept(quota_charge(&q, "quota", pol, 1, 1 << 20, &s1, &err), &err) == 0 && s1 > 0,
       "a first task");
    ok(kept(quota_charge(&q, "quota", pol, 1, 1 << 20, &s2, &err), &err) == 0 && s2 == s1,
       "a second");
    ok(kept(quota_charge(&q, "quota", pol, 0.5, 1 << 20, &s3, &err), &err) == -EUSERS &&
           strstr(msg, "has 2 tasks queued, its quota (principals.quota.quota.queued)"),
       "a third while two wait: over the queued quota: %s", msg);
    quota_dequeued(&q, s1); /* it started */
    ok(kept(quota_charge(&q, "quota", pol, 1.5, 1 << 20, &s3, &err), &err) == -EUSERS &&
           strstr(msg, "hold 2 cores; 1.5 more would pass its quota of 3"),
       "over the cores quota: %s", msg);
    ok(kept(quota_charge(&q, "quota", pol, 1, 1 << 20, &s3, &err), &err) == 0, "within it");
    ok(kept(quota_charge(&q, "quota", pol, 0, 1 << 20, &s3, &err), &err) == -EUSERS &&
           strstr(msg, "has 3 tasks queued or running, its quota of running tasks"),
       "over the running quota: %s", msg);
    struct quota_usage u = quota_usage_of(&q, "quota");
    ok(u.tasks == 3 && u.queued == 2 && u.cores == 3 && u.memory == 3 << 20,
       "the counts: 3 tasks, 2 queued, 3 cores, 3 MiB");
    ok(kept(quota_charge(&q, "other", pol, 1, 1 << 20, &s2, &err), &err) == 0 && s2 != s1,
       "another principal counts apart");
    quota_release(&q, s1, 1, 1 << 20);
    quota_dequeued(&q, s1);
    quota_release(&q, s1, 1, 1 << 20);
    quota_dequeued(&q, s1);
    quota_release(&q, s1, 1, 1 << 20);
    u = quota_usage_of(&q, "quota");
    ok(u.tasks == 0 && u.queued == 0 && u.cores == 0 && u.memory == 0 && quota_name(&q, s2) &&
           streq(quota_name(&q, s2), "other"),
       "all ended: nothing held, the slot freed");
    ok(quota_count(&q, "again", 2, 0) == s1, "a freed slot is used again");
    ok(kept(quota_check_stored("quota", pol, 999, &err), &err) == 0 &&
           kept(quota_check_stored("quota", pol, 1000, &err), &err) == -EUSERS &&
           strstr(msg, "keep 1000 bytes under the data directory, its quota of 1000 bytes"),
       "stored bytes: at the quota, refused: %s", msg);
    quota_done(&q);
}

int main(void)
{
    char dir[] = "/tmp/ocps-test-policy-check-XXXXXX";
    if (!mkdtemp(dir) || chmod(dir, 0755) < 0)
        abort();
    config_init(&cfg);
    free(cfg.data_dir);
    cfg.data_dir = xasprintf("%s/data", dir);
    (void) mkdir(cfg.data_dir, 0700);
    cfg.default_cores = 1;
    cfg.default_memory = 1ULL << 30;
    load("bot: {run_as: [nobody, ci-ghost, 'group:ocps-nogroup']}\n"
         "grp: {run_as: ['group:nogroup']}\n"
         "small: {run_as: [nobody], max: {cores: 0.5, memory: 256M, walltime: 1h, cputime: 30m}}\n"
         "ctr: {run_as: [nobody], images: ['127.0.0.1:5000/*'], ports: {range: 20000-20100}}\n"
         "ops: {admin: true}\n"
         "quota: {quota: {queued: 2, running: 3, cores: 3, stored: 1000B}}\n");

    test_images();
    test_defaults();
    test_accounts();
    test_run_as();
    test_max();
    test_containers();
    test_never_mountable(dir);
    test_mounts(dir);
    test_host_root(dir);
    test_quota();

    config_done(&cfg);
    _cleanup_free_ char *rm = xasprintf("rm -rf %s", dir);
    (void) !system(rm);
    return tap_done();
}
