/* policy: see policy.h. The set's parsing and lookup; what a policy
 * allows is decided where it is enforced (policy-check.c). */
#include "policy.h"
#include "config-values.h"
#include "task.h"

#include <ctype.h>

static const char *const default_privileged[] = {
    "root", "sudo", "adm", "disk", "shadow", "kmem", "docker", "lxd", "libvirt", "systemd-journal",
};

static void policy_done(struct policy *p)
{
    free(p->name);
    strv_free(p->run_as);
    free(p->tes_user);
    strv_free(p->images);
    strv_free(p->mounts_ro);
    strv_free(p->mounts_rw);
    free(p->port_address);
    *p = (struct policy){0};
}

static void policy_init(struct policy *p, const char *name)
{
    *p = (struct policy){
        .name = xstrdup(name),
        .weight = 1,
        .max = {.output = POLICY_DEFAULT_OUTPUT},
    };
}

void policy_set_init(struct policy_set *s)
{
    *s = (struct policy_set){0};
    policy_init(&s->def, POLICY_DEFAULT_NAME);
    for (size_t i = 0; i < ELEMENTSOF(default_privileged); i++)
        strv_push(&s->privileged_groups, default_privileged[i]);
}

void policy_set_done(struct policy_set *s)
{
    for (size_t i = 0; i < s->n_entries; i++)
        policy_done(&s->entries[i]);
    free(s->entries);
    policy_done(&s->def);
    strv_free(s->privileged_groups);
    *s = (struct policy_set){0};
}

const struct policy *policy_lookup(const struct policy_set *s, const char *name)
{
    for (size_t i = 0; name && i < s->n_entries; i++)
        if (streq(s->entries[i].name, name))
            return &s->entries[i];
    return &s->def;
}

/* Principal names: what a token, a certificate's subject or an account may be called. */
static bool name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > POLICY_NAME_MAX)
        return false;
    for (const char *c = n; *c; c++)
        if (!isalnum((unsigned char) *c) && !strchr("._@-", *c))
            return false;
    return true;
}

bool policy_name_valid(const char *name)
{
    return name_ok(name);
}

static int load_max(struct policy_max *m, const char *key, const cJSON *obj, struct error *err)
{
    int r = config_expect_object(obj, key, err);
    const cJSON *v;
    cJSON_ArrayForEach(v, obj)
    {
        if (r < 0)
            break;
        _cleanup_free_ char *k = xasprintf("%s.%s", key, v->string);
        if (streq(v->string, "cores"))
            r = config_get_cores(v, k, &m->cores, err);
        else if (streq(v->string, "memory"))
            r = config_get_size(v, k, 1ULL << 30, &m->memory, err);
        else if (streq(v->string, "cputime"))
            r = config_get_duration(v, k, 3600, &m->cputime, err);
        else if (streq(v->string, "walltime"))
            r = config_get_duration(v, k, 3600, &m->walltime, err);
        else if (streq(v->string, "output"))
            r = config_get_size(v, k, 1ULL << 30, &m->output, err);
        else
            r = error_set(err, -EINVAL, "unknown setting \"%s\"", k);
    }
    return r;
}

static int get_count(const cJSON *v, const char *key, uint64_t *dst, struct error *err)
{
    char buf[64];
    const char *s;
    int r = config_scalar(v, key, buf, &s, err);
    if (r < 0)
        return r;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return error_set(err, -EINVAL, "%s: must be a whole number, not \"%s\"", key, s);
    *dst = n;
    return 0;
}

static int load_quota(struct policy_quota *q, const char *key, const cJSON *obj, struct error *err)
{
    int r = config_expect_object(obj, key, err);
    const cJSON *v;
    cJSON_ArrayForEach(v, obj)
    {
        if (r < 0)
            break;
        _cleanup_free_ char *k = xasprintf("%s.%s", key, v->string);
        if (streq(v->string, "queued"))
            r = get_count(v, k, &q->queued, err);
        else if (streq(v->string, "running"))
            r = get_count(v, k, &q->running, err);
        else if (streq(v->string, "cores"))
            r = config_get_cores(v, k, &q->cores, err);
        else if (streq(v->string, "memory"))
            r = config_get_size(v, k, 1ULL << 30, &q->memory, err);
        else if (streq(v->string, "stored"))
            r = config_get_size(v, k, 1ULL << 30, &q->stored, err);
        else
            r = error_set(err, -EINVAL, "unknown setting \"%s\"", k);
    }
    return r;
}

/* Host path prefixes: absolute, normalised (no "..", no "//", no trailing "/"). */
static int get_prefixes(const cJSON *v, const char *key, char ***dst, struct error *err)
{
    _cleanup_strv_ char **l = NULL;
    int r = config_get_strv(v, key, &l, err);
    if (r < 0)
        return r;
    STRV_FOREACH (p, l) {
        size_t n = strlen(*p);
        if ((*p)[0] != '/' || strstr(*p, "//") || strstr(*p, "/./") || strstr(*p, "/../") ||
            (n >= 3 && streq(*p + n - 3, "/..")) || (n >= 2 && streq(*p + n - 2, "/.")) ||
            (n > 1 && (*p)[n - 1] == '/'))
            return error_set(err, -EINVAL,
                             "%s: \"%s\" is not a normalised absolute path (no \"..\", \".\", "
                             "\"//\" or trailing \"/\")",
                             key, *p);
    }
    strv_free(*dst);
    *dst = TAKE_PTR(l);
    return 0;
}

static int load_mounts(struct policy *p, const char *key, const cJSON *obj, struct error *err)
{
    int r = config_expect_object(obj, key, err);
    const cJSON *v;
    cJSON_ArrayForEach(v, obj)
    {
        if (r < 0)
            break;
        _cleanup_free_ char *k = xasprintf("%s.%s", key, v->string);
        if (streq(v->string, "ro"))
            r = get_prefixes(v, k, &p->mounts_ro, err);
        else if (streq(v->string, "rw"))
            r = get_prefixes(v, k, &p->mounts_rw, err);
        else
            r = error_set(err, -EINVAL, "unknown setting \"%s\"", k);
    }
    return r;
}

static int load_ports(struct policy *p, const char *key, const cJSON *obj, struct error *err)
{
    int r = config_expect_object(obj, key, err);
    const cJSON *v;
    cJSON_ArrayForEach(v, obj)
    {
        if (r < 0)
            break;
        _cleanup_free_ char *k = xasprintf("%s.%s", key, v->string);
        if (streq(v->string, "range")) {
            char buf[64];
            const char *s;
            unsigned lo, hi;
            char extra;
            r = config_scalar(v, k, buf, &s, err);
            if (r >= 0 &&
                (sscanf(s, "%u-%u%c", &lo, &hi, &extra) != 2 || lo < 1 || hi > 65535 || lo > hi))
                r = error_set(err, -EINVAL, "%s: must be LOW-HIGH within 1-65535, not \"%s\"", k,
                              s);
            if (r >= 0) {
                p->port_min = (uint16_t) lo;
                p->port_max = (uint16_t) hi;
            }
        } else if (streq(v->string, "address"))
            r = config_get_string(v, k, &p->port_address, err);
        else
            r = error_set(err, -EINVAL, "unknown setting \"%s\"", k);
    }
    return r;
}

static int load_entry(struct policy *p, const char *key, const cJSON *obj, struct error *err)
{
    int r = config_expect_object(obj, key, err);
    const cJSON *v;
    cJSON_ArrayForEach(v, obj)
    {
        if (r < 0)
            break;
        _cleanup_free_ char *k = xasprintf("%s.%s", key, v->string);
        if (streq(v->string, "admin"))
            r = config_get_bool(v, k, &p->admin, err);
        else if (streq(v->string, "run_as")) {
            r = config_get_strv(v, k, &p->run_as, err);
            STRV_FOREACH (n, p->run_as)
                if (r >= 0 && streq(*n, "group:"))
                    r = error_set(err, -EINVAL, "%s: \"group:\" names no group", k);
        } else if (streq(v->string, "tes_user")) {
            r = config_get_string(v, k, &p->tes_user, err);
            if (r >= 0 && (isempty(p->tes_user) || startswith(p->tes_user, "group:")))
                r = error_set(err, -EINVAL, "%s: must name one account", k);
        } else if (streq(v->string, "max"))
            r = load_max(&p->max, k, v, err);
        else if (streq(v->string, "quota"))
            r = load_quota(&p->quota, k, v, err);
        else if (streq(v->string, "weight")) {
            uint64_t w;
            r = get_count(v, k, &w, err);
            if (r >= 0 && (w < 1 || w > 1000))
                r = error_set(err, -EINVAL, "%s: must be from 1 to 1000", k);
            if (r >= 0)
                p->weight = (unsigned) w;
        } else if (streq(v->string, "images")) {
            r = config_get_strv(v, k, &p->images, err);
            /* An empty list allows no image; only a missing one allows any. */
            if (r >= 0 && !p->images && cJSON_IsArray(v))
                p->images = xcalloc(1, sizeof(char *));
        } else if (streq(v->string, "mounts"))
            r = load_mounts(p, k, v, err);
        else if (streq(v->string, "ports"))
            r = load_ports(p, k, v, err);
        else
            r = error_set(err, -EINVAL, "unknown setting \"%s\"", k);
    }
    return r;
}

int policy_set_load_principals(struct policy_set *s, const cJSON *principals, struct error *err)
{
    int r = config_expect_object(principals, "principals", err);
    if (r < 0)
        return r;
    const cJSON *v;
    cJSON_ArrayForEach(v, principals)
    {
        _cleanup_free_ char *key = xasprintf("principals.%s", v->string);
        if (!name_ok(v->string))
            return error_set(err, -EINVAL,
                             "%s: a principal's name is 1 to %d letters, digits and ._@-", key,
                             POLICY_NAME_MAX);
        struct policy p;
        policy_init(&p, v->string);
        r = load_entry(&p, key, v, err);
        if (r < 0) {
            policy_done(&p);
            return r;
        }
        /* The account it names for TES is one it may use: an operator who
         * wrote tes_user meant it, and saying it twice helps nobody. */
        if (p.tes_user && !strv_contains(p.run_as, p.tes_user))
            strv_push(&p.run_as, p.tes_user);
        if (streq(v->string, POLICY_DEFAULT_NAME)) {
            policy_done(&s->def);
            s->def = p;
            continue;
        }
        /* The YAML reader refuses a key given twice: each name comes once. */
        s->entries = xrealloc(s->entries, (s->n_entries + 1) * sizeof(*s->entries));
        s->entries[s->n_entries++] = p;
    }
    return 0;
}

int policy_set_load_privileged(struct policy_set *s, const cJSON *groups, struct error *err)
{
    return config_get_strv(groups, "privileged_groups", &s->privileged_groups, err);
}
