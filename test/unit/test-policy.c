/* Unit tests: policy (the principals section of the config) and principal. */
#include "principal.h"
#include "tap.h"
#include "task.h"

static int load(struct policy_set *s, const char *yaml, struct error *err)
{
    cJSON *j = NULL;
    int r = task_yaml_parse(yaml, strlen(yaml), &j, err);
    if (r >= 0)
        r = policy_set_load_principals(s, j, err);
    cJSON_Delete(j);
    return r;
}

static void test_defaults(void)
{
    struct policy_set s;
    policy_set_init(&s);
    const struct policy *p = policy_lookup(&s, "anyone");
    ok(p == &s.def && streq(p->name, "default") && !p->admin && !p->run_as && p->weight == 1 &&
           p->max.output == 1073741824 && p->max.cores == 0 && p->quota.queued == 0,
       "without a config: the default entry, no run_as, no limits but the 1 GiB output cap");
    /* The list, each by name: root in all but name. */
    static const char *const privileged[] = {"root", "sudo",   "adm", "disk",    "shadow",
                                             "kmem", "docker", "lxd", "libvirt", "systemd-journal"};
    bool all = strv_length(s.privileged_groups) == ELEMENTSOF(privileged);
    for (size_t i = 0; i < ELEMENTSOF(privileged); i++)
        all = all && strv_contains(s.privileged_groups, privileged[i]);
    ok(all, "the privileged groups by default: root, sudo, adm, disk, shadow, kmem, docker, lxd, "
            "libvirt, systemd-journal");
    policy_set_done(&s);
}

static void test_load(void)
{
    struct policy_set s;
    _cleanup_error_ struct error err = ERROR_INIT;
    policy_set_init(&s);
    int r = load(&s,
                 "default: {run_as: [nobody], max: {memory: 2G, walltime: 1d}}\n"
                 "ci-bot:\n"
                 "  run_as: [ci, 'group:builders']\n"
                 "  max: {cores: 2, memory: 512M, cputime: 90m, output: 10M}\n"
                 "  quota: {queued: 100, running: 4, cores: 4, memory: 8G, stored: 1G}\n"
                 "  weight: 3\n"
                 "  images: ['registry.example.org/*', '*@sha256:*']\n"
                 "  mounts: {ro: [/data, /ref], rw: [/scratch]}\n"
                 "  ports: {range: 20000-20100, address: 127.0.0.2}\n"
                 "ops@example.org: {admin: true}\n",
                 &err);
    ok(r == 0, "a full principals section loads (%s)", error_message(&err));
    const struct policy *d = policy_lookup(&s, "somebody");
    ok(streq(d->name, "default") && strv_contains(d->run_as, "nobody") &&
           d->max.memory == 2ULL << 30 && d->max.walltime == 86400 && d->max.output == 1073741824,
       "the default entry is replaced, the output cap kept");
    const struct policy *c = policy_lookup(&s, "ci-bot");
    ok(streq(c->name, "ci-bot") && strv_length(c->run_as) == 2 &&
           strv_contains(c->run_as, "group:builders"),
       "run_as: names and group:NAME");
    ok(c->max.cores == 2 && c->max.memory == 512ULL << 20 && c->max.cputime == 5400 &&
           c->max.output == 10ULL << 20,
       "max: cores, memory, cputime, output in their units");
    ok(c->quota.queued == 100 && c->quota.running == 4 && c->quota.cores == 4 &&
           c->quota.memory == 8ULL << 30 && c->quota.stored == 1ULL << 30,
       "quota: counts, cores and sizes");
    ok(c->weight == 3 && strv_length(c->images) == 2 && strv_length(c->mounts_ro) == 2 &&
           streq(c->mounts_rw[0], "/scratch") && c->port_min == 20000 && c->port_max == 20100 &&
           streq(c->port_address, "127.0.0.2"),
       "weight, images, mounts, ports");
    ok(policy_lookup(&s, "ops@example.org")->admin, "admin: true");
    policy_set_done(&s);
    policy_set_init(&s);
    ok(load(&s, "wf: {tes_user: runner, run_as: [ci]}\nself: {tes_user: ci, run_as: [ci]}\n",
            &err) == 0,
       "tes_user loads (%s)", error_message(&err));
    const struct policy *wf = policy_lookup(&s, "wf"), *self = policy_lookup(&s, "self");
    ok(streq_ptr(wf->tes_user, "runner") && strv_contains(wf->run_as, "runner") &&
           strv_contains(wf->run_as, "ci") && strv_length(self->run_as) == 1 &&
           !policy_lookup(&s, "any")->tes_user,
       "tes_user: the principal may run as it (in run_as, once); none by default");
    policy_set_done(&s);
    policy_set_init(&s);
    ok(load(&s, "none: {images: []}\n", &err) == 0 && policy_lookup(&s, "none")->images &&
           !policy_lookup(&s, "none")->images[0] && !policy_lookup(&s, "any")->images,
       "images: [] allows none (an empty list), a missing list any (NULL)");
    policy_set_done(&s);
}

static void test_errors(void)
{
    static const struct {
        const char *yaml, *message;
    } rows[] = {
        {"[a, b]", "principals: must be a mapping"},
        {"bob: {runas: [x]}", "unknown setting \"principals.bob.runas\""},
        {"bob: {max: {memory: lots}}", "principals.bob.max.memory: invalid size \"lots\""},
        {"bob: {max: {gpus: 1}}", "unknown setting \"principals.bob.max.gpus\""},
        {"bob: {quota: {running: -1}}", "principals.bob.quota.running: must be a whole number"},
        {"bob: {weight: 0}", "principals.bob.weight: must be from 1 to 1000"},
        {"bob: {mounts: {rw: [relative]}}", "\"relative\" is not a normalised absolute path"},
        {"bob: {mounts: {ro: [/data/../etc]}}", "\"/data/../etc\" is not a normalised"},
        {"bob: {mounts: {ro: [/data/]}}", "\"/data/\" is not a normalised"},
        {"bob: {ports: {range: 80}}", "principals.bob.ports.range: must be LOW-HIGH"},
        {"bob: {ports: {range: 2000-1000}}", "must be LOW-HIGH within 1-65535"},
        {"'bad name': {}", "a principal's name is 1 to 64"},
        {"bob: {admin: maybe}", "principals.bob.admin: must be true or false"},
        {"bob: {run_as: ['group:']}", "principals.bob.run_as: \"group:\" names no group"},
        {"bob: {tes_user: ''}", "principals.bob.tes_user: must not be empty"},
        {"bob: {tes_user: 'group:x'}", "principals.bob.tes_user: must name one account"},
        {"bob: {tes_user: [a]}", "principals.bob.tes_user"},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        struct policy_set s;
        _cleanup_error_ struct error err = ERROR_INIT;
        policy_set_init(&s);
        int r = load(&s, rows[i].yaml, &err);
        ok(r == -EINVAL && strstr(error_message(&err), rows[i].message), "%s -> %s (%s)",
           rows[i].yaml, rows[i].message, error_message(&err));
        policy_set_done(&s);
    }
}

static void test_principal(void)
{
    struct policy_set s;
    _cleanup_error_ struct error err = ERROR_INIT;
    policy_set_init(&s);
    ok(load(&s, "ops: {admin: true}\n", &err) == 0, "a policy with an admin");
    _cleanup_(principal_freep) struct principal *ops =
        principal_new(&s, "ops", PRINCIPAL_TOKEN, false);
    _cleanup_(principal_freep) struct principal *bot =
        principal_new(&s, "bot", PRINCIPAL_TOKEN, false);
    _cleanup_(principal_freep) struct principal *first =
        principal_new(&s, "admin", PRINCIPAL_TOKEN, true);
    ok(ops->admin && !bot->admin && first->admin && bot->policy == &s.def,
       "admin from the policy or from the caller; the default policy for a name without one");
    ok(principal_sees(ops, "bot", "x") && principal_sees(bot, "bot", "x") &&
           !principal_sees(bot, "other", "x") && !principal_sees(bot, "other", "bot"),
       "a principal sees what it submitted, an admin everything");
    struct principal *root = NULL;
    ok(principal_new_unix(&s, 0, &root, &err) == 0 && root->admin && streq(root->account, "root") &&
           root->uid == 0 && root->via == PRINCIPAL_UNIX,
       "root on the unix socket is an admin");
    principal_free(root);
    struct principal *nobody = NULL;
    ok(principal_new_unix(&s, 65534, &nobody, &err) == 0 && !nobody->admin &&
           principal_sees(nobody, "somebody-else", "nobody") &&
           !principal_sees(nobody, "somebody-else", "daemon"),
       "a unix peer also sees the tasks that run as its own account");
    principal_free(nobody);
    struct principal *ghost = NULL;
    error_clear(&err);
    ok(principal_new_unix(&s, 4000000, &ghost, &err) == -EACCES && !ghost &&
           strstr(error_message(&err), "has no account"),
       "a peer whose uid has no account is refused (fail closed)");
    policy_set_done(&s);
}

int main(void)
{
    test_defaults();
    test_load();
    test_errors();
    test_principal();
    return tap_done();
}
