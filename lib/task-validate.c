/*
 * task-validate: the one validator of the Task model (task.h).
 *
 * task_from_cjson() is the only place that knows the fields, their
 * spellings ("mounts" or "volumes"), their shapes (JobProxy's JAXB
 * wrappers, its top-level cmd beside a container), their units and their
 * limits; the JSON, YAML and XML front ends only build a cJSON tree for
 * it. Every error names the field by its path, as a person would point
 * at it: "container.ports[1].host: must be an integer between 1 and
 * 65535".
 */
#include "task.h"
#include "field-path.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>

static void container_freep(struct task_container **c)
{
    task_container_free(*c);
}

/* ---- the validator ------------------------------------------------------------------------- */

/* A required member key of the object at p is missing. */
static int field_required(struct error *err, const struct path *p, const char *key)
{
    struct path mp = {p, key, 0};
    return field_error(err, &mp, "is required");
}

/* Strings: present, no NUL inside (cJSON cannot carry one), bounded, printable enough. */
static int get_string(const cJSON *j, const struct path *p, size_t max, bool allow_empty,
                      char **ret, struct error *err)
{
    if (!cJSON_IsString(j))
        return field_error(err, p, "must be a string, not %s", json_type_name(j));
    size_t n = strlen(j->valuestring);
    if (n == 0 && !allow_empty)
        return field_error(err, p, "must not be empty");
    if (n > max)
        return field_error(err, p, "is too long (%zu bytes, at most %zu)", n, max);
    *ret = xstrdup(j->valuestring);
    return 0;
}

/* A number given as a JSON number or as a numeric string (YAML, XML). */
static int get_number_text(const cJSON *j, const struct path *p, char buf[static 64],
                           const char **ret, struct error *err)
{
    if (cJSON_IsNumber(j)) {
        if (!isfinite(j->valuedouble) || j->valuedouble < 0)
            return field_error(err, p, "must not be negative");
        snprintf(buf, 64, "%.17Lg", (long double) j->valuedouble);
        *ret = buf;
        return 0;
    }
    if (cJSON_IsString(j)) {
        *ret = j->valuestring;
        return 0;
    }
    return field_error(err, p, "must be a number or a string, not %s", json_type_name(j));
}

static int get_absolute_path(const cJSON *j, const struct path *p, char **ret, struct error *err)
{
    _cleanup_free_ char *s = NULL;
    int r = get_string(j, p, 4096, false, &s, err);
    if (r < 0)
        return r;
    if (s[0] != '/')
        return field_error(err, p, "must be an absolute path");
    /* ".." would make path checks lie about where a file is. */
    for (const char *c = s; (c = strstr(c, "..")); c += 2)
        if (c[-1] == '/' && (c[2] == '/' || c[2] == '\0'))
            return field_error(err, p, "must not contain \"..\"");
    *ret = TAKE_PTR(s);
    return 0;
}

static int parse_cmd(const cJSON *j, const struct path *p, struct task_cmd *ret, struct error *err)
{
    _cleanup_strv_ char **argv = NULL;

    if (cJSON_IsString(j)) {
        char *s;
        int r = get_string(j, p, TASK_MAX_STRING, false, &s, err);
        if (r < 0)
            return r;
        argv = xcalloc(2, sizeof(char *));
        argv[0] = s;
        ret->argv = TAKE_PTR(argv);
        ret->shell = true;
        return 0;
    }
    if (!cJSON_IsArray(j))
        return field_error(err, p, "must be a string or a list of strings, not %s",
                           json_type_name(j));
    int n = cJSON_GetArraySize(j);
    if (n == 0)
        return field_error(err, p, "must not be empty");
    if (n > TASK_MAX_ARGS)
        return field_error(err, p, "has too many arguments (%d, at most %d)", n, TASK_MAX_ARGS);
    argv = xcalloc(n + 1, sizeof(char *));
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, j)
    {
        struct path ap = {p, NULL, i};
        int r = get_string(a, &ap, TASK_MAX_STRING, i > 0, &argv[i], err);
        if (r < 0)
            return r;
        i++;
    }
    ret->argv = TAKE_PTR(argv);
    ret->shell = false;
    return 0;
}

static int parse_map(const cJSON *j, const struct path *p, size_t max, bool env,
                     struct task_kv **ret, size_t *ret_n, struct error *err)
{
    if (!cJSON_IsObject(j))
        return field_error(err, p, "must be an object of names to strings, not %s",
                           json_type_name(j));
    int n = cJSON_GetArraySize(j);
    if ((size_t) n > max)
        return field_error(err, p, "has too many entries (%d, at most %zu)", n, max);

    struct task_kv *kv = n ? xcalloc(n, sizeof(*kv)) : NULL;
    size_t k = 0;
    const cJSON *e;
    int r = 0;
    cJSON_ArrayForEach(e, j)
    {
        struct path ep = {p, e->string, 0};
        char buf[64];
        if (env ? !env_name_ok(e->string) : (!*e->string || strlen(e->string) > TASK_MAX_NAME)) {
            r = field_error(err, &ep,
                            env ? "is not a valid environment variable name"
                                : "is not a valid tag name");
            break;
        }
        for (size_t i = 0; i < k; i++)
            if (streq(kv[i].key, e->string)) {
                r = field_error(err, &ep, "is given twice");
                goto out;
            }
        char *value;
        if (cJSON_IsNumber(e)) {
            const char *txt;
            r = get_number_text(e, &ep, buf, &txt, err);
            if (r < 0)
                break;
            value = xstrdup(txt);
        } else if (cJSON_IsBool(e)) {
            value = xstrdup(cJSON_IsTrue(e) ? "true" : "false");
        } else {
            r = get_string(e, &ep, TASK_MAX_STRING, true, &value, err);
            if (r < 0)
                break;
        }
        kv[k].key = xstrdup(e->string);
        kv[k].value = value;
        k++;
    }
out:
    if (r < 0) {
        task_kv_free(kv, k);
        return r;
    }
    *ret = kv;
    *ret_n = k;
    return 0;
}

static int parse_port_number(const cJSON *j, const struct path *p, uint16_t *ret, struct error *err)
{
    char buf[64];
    const char *txt;
    int r = get_number_text(j, p, buf, &txt, err);
    if (r < 0)
        return field_error(err, p, "must be an integer between 1 and 65535");
    char *end;
    errno = 0;
    unsigned long v = isdigit((unsigned char) txt[0]) ? strtoul(txt, &end, 10) : 0;
    if (v < 1 || v > 65535 || errno || *end)
        return field_error(err, p, "must be an integer between 1 and 65535");
    *ret = (uint16_t) v;
    return 0;
}

/* Walks an object's members, refusing unknown keys and skipping nulls. */
#define FOREACH_FIELD(m, obj)                                                                      \
    for (const cJSON *m = (obj)->child; m; m = m->next)                                            \
        if (!cJSON_IsNull(m))

/*
 * A list field (ports, mounts, volumes) in every shape it arrives in.
 * JobProxy's JSON is JAXB's mapping of its XML, where each entry sits in
 * an element named for the item, so beside the flat list [item, ...] come
 * {"mount": item}, {"mount": [item, ...]} and [{"mount": item}, ...]; the
 * YAML and XML readers hand over the same trees. This is the one place
 * that unwraps them: each item reaches fn with the path it was found at
 * ("container.mounts[0].mount.host"), into an array sized for all of them.
 */
typedef int (*list_item_fn)(const cJSON *item, const struct path *p, void *userdata,
                            struct error *err);

struct list_walk {
    const char *wrapper; /* "mount" */
    list_item_fn fn;     /* NULL: only count */
    void *userdata;
    size_t n;
};

static int walk_item(struct list_walk *w, const cJSON *item, const struct path *p,
                     struct error *err)
{
    w->n++;
    return w->fn ? w->fn(item, p, w->userdata, err) : 0;
}

/* One entry of the list: an item, or the wrapper of one item or of a list. */
static int walk_entry(struct list_walk *w, const cJSON *e, const struct path *p, struct error *err)
{
    const cJSON *inner = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, w->wrapper) : NULL;
    struct path ip = {p, w->wrapper, 0};
    int i = 0, r;

    if (!inner)
        return walk_item(w, e, p, err);
    FOREACH_FIELD(m, e)
    {
        if (m != inner) {
            struct path mp = {p, m->string, 0};
            return field_error(err, &mp, "unknown field beside \"%s\"", w->wrapper);
        }
    }
    if (cJSON_IsNull(inner))
        return 0;
    if (!cJSON_IsArray(inner))
        return walk_item(w, inner, &ip, err);
    const cJSON *x;
    cJSON_ArrayForEach(x, inner)
    {
        struct path xp = {&ip, NULL, i++};
        r = walk_item(w, x, &xp, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int walk_list(struct list_walk *w, const cJSON *j, const struct path *p, struct error *err)
{
    int i = 0, r;

    w->n = 0;
    if (cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, w->wrapper))
        return walk_entry(w, j, p, err);
    if (!cJSON_IsArray(j))
        return field_error(err, p, "must be a list or {\"%s\": ...}, not %s", w->wrapper,
                           json_type_name(j));
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
    {
        struct path ep = {p, NULL, i++};
        r = walk_entry(w, e, &ep, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Counts the items, allocates *array for them, then hands each to fn. */
static int parse_list(const cJSON *j, const struct path *p, const char *wrapper, size_t max,
                      size_t item_size, void **array, list_item_fn fn, void *userdata,
                      struct error *err)
{
    struct list_walk w = {wrapper, NULL, NULL, 0};
    int r = walk_list(&w, j, p, err);
    if (r < 0)
        return r;
    if (w.n > max)
        return field_error(err, p, "has too many entries (%zu, at most %zu)", w.n, max);
    *array = w.n ? xcalloc(w.n, item_size) : NULL;
    w.fn = fn;
    w.userdata = userdata;
    return walk_list(&w, j, p, err);
}

static int parse_port(const cJSON *e, const struct path *ep, void *userdata, struct error *err)
{
    struct task_container *c = userdata;
    struct task_port *port = &c->ports[c->n_ports];
    bool host = false, cont = false;
    int r;

    if (!cJSON_IsObject(e))
        return field_error(err, ep, "must be an object {host, container}, not %s",
                           json_type_name(e));
    FOREACH_FIELD(m, e)
    {
        struct path mp = {ep, m->string, 0};
        if (streq(m->string, "host")) {
            r = parse_port_number(m, &mp, &port->host, err);
            host = true;
        } else if (streq(m->string, "container")) {
            r = parse_port_number(m, &mp, &port->container, err);
            cont = true;
        } else {
            r = field_error(err, &mp, "unknown field");
        }
        if (r < 0)
            return r;
    }
    if (!cont)
        return field_required(err, ep, "container");
    if (!host)
        port->host = port->container; /* Docker's -p 80 publishes the same number */
    for (size_t i = 0; i < c->n_ports; i++)
        if (c->ports[i].host == port->host) {
            struct path mp = {ep, "host", 0};
            return field_error(err, &mp, "port %u is published twice", port->host);
        }
    c->n_ports++;
    return 0;
}

static int parse_mount(const cJSON *e, const struct path *ep, void *userdata, struct error *err)
{
    struct task_container *c = userdata;
    struct task_mount *mnt = &c->mounts[c->n_mounts];
    int r;

    if (!cJSON_IsObject(e))
        return field_error(err, ep, "must be an object {host, container, mode}, not %s",
                           json_type_name(e));
    /* Counted before filling so that task_free() releases partial entries. */
    c->n_mounts++;
    mnt->mode = MOUNT_RW;
    FOREACH_FIELD(m, e)
    {
        struct path mp = {ep, m->string, 0};
        if (streq(m->string, "host")) {
            free(mnt->host), mnt->host = NULL;
            r = get_absolute_path(m, &mp, &mnt->host, err);
        } else if (streq(m->string, "container")) {
            free(mnt->container), mnt->container = NULL;
            r = get_absolute_path(m, &mp, &mnt->container, err);
        } else if (streq(m->string, "mode")) {
            r = cJSON_IsString(m) ? mount_mode_from_string(m->valuestring) : -EINVAL;
            if (r < 0)
                r = field_error(err, &mp, "must be RW or RO");
            else
                mnt->mode = r;
        } else {
            r = field_error(err, &mp, "unknown field");
        }
        if (r < 0)
            return r;
    }
    if (!mnt->host)
        return field_required(err, ep, "host");
    if (!mnt->container)
        return field_required(err, ep, "container");
    for (size_t i = 0; i + 1 < c->n_mounts; i++)
        if (streq(c->mounts[i].container, mnt->container)) {
            struct path mp = {ep, "container", 0};
            return field_error(err, &mp, "%s is mounted twice", mnt->container);
        }
    return 0;
}

static int parse_container(const cJSON *j, const struct path *p, struct task_container **ret,
                           struct error *err)
{
    _cleanup_(container_freep) struct task_container *c = NULL;
    bool have_mounts = false;
    int r;

    if (!cJSON_IsObject(j))
        return field_error(err, p, "must be an object, not %s", json_type_name(j));
    c = xcalloc(1, sizeof(*c));
    FOREACH_FIELD(m, j)
    {
        struct path mp = {p, m->string, 0};
        if (streq(m->string, "image")) {
            r = get_string(m, &mp, 1024, false, &c->image, err);
            if (r >= 0 && strpbrk(c->image, " \t\n\r"))
                r = field_error(err, &mp, "must not contain white space");
        } else if (streq(m->string, "cmd")) {
            r = parse_cmd(m, &mp, &c->cmd, err);
        } else if (streq(m->string, "ports")) {
            r = parse_list(m, &mp, "port", TASK_MAX_PORTS, sizeof(*c->ports), (void **) &c->ports,
                           parse_port, c, err);
        } else if (streq(m->string, "mounts") || streq(m->string, "volumes")) {
            if (have_mounts)
                return field_error(err, &mp, "give either mounts or volumes, not both");
            have_mounts = true;
            /* The item is named for its list: <mounts><mount>, <volumes><volume>. */
            r = parse_list(m, &mp, streq(m->string, "mounts") ? "mount" : "volume", TASK_MAX_MOUNTS,
                           sizeof(*c->mounts), (void **) &c->mounts, parse_mount, c, err);
        } else {
            r = field_error(err, &mp, "unknown field");
        }
        if (r < 0)
            return r;
    }
    if (!c->image)
        return field_required(err, p, "image");
    *ret = TAKE_PTR(c);
    return 0;
}

static int parse_cores(const cJSON *j, const struct path *p, double *ret, struct error *err)
{
    char buf[64], *end;
    const char *txt;
    int r = get_number_text(j, p, buf, &txt, err);
    if (r < 0)
        return r;
    errno = 0;
    double v = isdigit((unsigned char) txt[0]) || txt[0] == '.' ? strtod(txt, &end) : NAN;
    if (errno || isnan(v) || *end)
        return field_error(err, p, "must be a number of CPUs such as 2 or 0.5");
    if (v <= 0 || v > TASK_MAX_CORES)
        return field_error(err, p, "must be more than 0 and at most %g", TASK_MAX_CORES);
    if (v < 0.01)
        return field_error(err, p, "must be at least 0.01");
    *ret = v;
    return 0;
}

/* A refusal of a value: how a bare number was read, then what is wrong with it. */
_printf_(4, 5) static int value_error(struct error *err, const struct path *p, const char *reading,
                                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    _cleanup_free_ char *what = xvasprintf(fmt, ap);
    va_end(ap);
    if (reading)
        return field_error(err, p, "%s; %s", reading, what);
    return field_error(err, p, "%s", what);
}

static int parse_memory(const cJSON *j, const struct path *p, uint64_t unit, uint64_t *ret,
                        uint64_t *ret_bare_unit, struct error *err)
{
    char buf[64], words[64], b1[32], b2[32];
    const char *txt;
    uint64_t v;
    int r = get_number_text(j, p, buf, &txt, err);
    if (r < 0)
        return r;
    bool bare = is_bare_number(txt);
    r = parse_size(txt, unit, &v);
    if (r < 0 && r != -ERANGE)
        return field_error(err, p,
                           "must be a size such as \"256M\" or \"1.5G\" (a bare number is in %s)",
                           bare_size_unit(unit, words));
    _cleanup_free_ char *reading = bare && r >= 0 && v > 0 ? bare_size_reading(v, unit) : NULL;
    if (r == -ERANGE || v > TASK_MAX_MEMORY)
        return value_error(err, p, reading, "%s (at most %s)",
                           reading ? "that is too large" : "is too large",
                           format_size_human(TASK_MAX_MEMORY, b1));
    if (v < TASK_MIN_MEMORY)
        return value_error(err, p, reading, "%s is too small (at least %s)",
                           reading ? "that" : format_size_human(v, b2),
                           format_size_human(TASK_MIN_MEMORY, b1));
    *ret = v;
    *ret_bare_unit = bare ? unit : 0;
    return 0;
}

static int parse_time(const cJSON *j, const struct path *p, uint64_t unit, uint64_t *ret,
                      struct error *err)
{
    char buf[64], words[64];
    const char *txt;
    uint64_t v;
    int r = get_number_text(j, p, buf, &txt, err);
    if (r < 0)
        return r;
    r = parse_duration(txt, unit, &v);
    if (r < 0 && r != -ERANGE)
        return field_error(err, p,
                           "must be a duration such as \"90s\", \"15m\" or \"2h\" "
                           "(a bare number is in %s)",
                           bare_duration_unit(unit, words));
    _cleanup_free_ char *reading =
        is_bare_number(txt) && r >= 0 && v > 0 ? bare_duration_reading(v, unit) : NULL;
    if (r == -ERANGE || v > TASK_MAX_DURATION)
        return value_error(err, p, reading, "%s (at most 366 days)",
                           reading ? "that is too long" : "is too long");
    if (v == 0)
        return field_error(err, p, "must be more than 0");
    *ret = v;
    return 0;
}

/* An integer, as a JSON number or a numeric string (YAML, XML); negative allowed. */
static int parse_priority(const cJSON *j, const struct path *p, int *ret, struct error *err)
{
    const char *txt = NULL;
    char buf[64], *end;
    long v = 0;
    bool ok;

    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        ok = isfinite(d) && d >= TASK_MIN_PRIORITY && d <= TASK_MAX_PRIORITY &&
             d == (double) (long) d;
        v = ok ? (long) d : 0;
    } else if (cJSON_IsString(j)) {
        snprintf(buf, sizeof(buf), "%s", j->valuestring);
        txt = buf;
        while (isspace((unsigned char) *txt))
            txt++;
        errno = 0;
        v = strtol(txt, &end, 10);
        while (isspace((unsigned char) *end))
            end++;
        ok = !errno && end != txt && !*end && strlen(j->valuestring) < sizeof(buf) &&
             v >= TASK_MIN_PRIORITY && v <= TASK_MAX_PRIORITY;
    } else {
        return field_error(err, p, "must be an integer or a string, not %s", json_type_name(j));
    }
    if (!ok)
        return field_error(err, p, "must be an integer between %d and %d", TASK_MIN_PRIORITY,
                           TASK_MAX_PRIORITY);
    *ret = (int) v;
    return 0;
}

/* One of TASK_BACKENDS. */
static int parse_backend(const cJSON *j, const struct path *p, char **ret, struct error *err)
{
    static const char *const names[] = {TASK_BACKENDS};
    _cleanup_free_ char *s = NULL;
    int r = get_string(j, p, 32, false, &s, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < ELEMENTSOF(names); i++)
        if (streq(s, names[i])) {
            *ret = TAKE_PTR(s);
            return 0;
        }
    return field_error(err, p, "must be process, docker or slurm, not \"%s\"", s);
}

static bool user_name_ok(const char *s)
{
    /* POSIX portable names plus what useradd accepts by default. */
    if (!*s || *s == '-' || strlen(s) > TASK_MAX_USER)
        return false;
    for (const char *c = s; *c; c++)
        if (!isalnum((unsigned char) *c) && !strchr("._-", *c) && !(c[1] == '\0' && *c == '$'))
            return false;
    return !streq(s, ".") && !streq(s, "..");
}

int task_from_cjson(const cJSON *root, const struct task_units *units, struct task **ret,
                    struct error *err)
{
    _cleanup_task_ struct task *t = NULL;
    bool have_cmd = false;
    int r;

    if (!units)
        units = &task_units_jobproxy;
    if (!cJSON_IsObject(root))
        return error_set(err, -EINVAL, "task: must be an object, not %s", json_type_name(root));

    t = task_new();
    FOREACH_FIELD(m, root)
    {
        struct path mp = {NULL, m->string, 0};
        const char *k = m->string;

        if (streq(k, "user")) {
            r = get_string(m, &mp, TASK_MAX_USER, false, &t->user, err);
            if (r >= 0 && !user_name_ok(t->user))
                r = field_error(err, &mp, "is not a valid user name");
        } else if (streq(k, "name")) {
            r = get_string(m, &mp, TASK_MAX_NAME, true, &t->name, err);
        } else if (streq(k, "cmd")) {
            r = parse_cmd(m, &mp, &t->cmd, err);
            have_cmd = true;
        } else if (streq(k, "container")) {
            r = parse_container(m, &mp, &t->container, err);
        } else if (streq(k, "cores")) {
            r = parse_cores(m, &mp, &t->cores, err);
        } else if (streq(k, "memory")) {
            r = parse_memory(m, &mp, units->memory, &t->memory, &t->memory_bare_unit, err);
        } else if (streq(k, "cputime")) {
            r = parse_time(m, &mp, units->time, &t->cputime, err);
        } else if (streq(k, "walltime")) {
            r = parse_time(m, &mp, units->time, &t->walltime, err);
        } else if (streq(k, "priority")) {
            r = parse_priority(m, &mp, &t->priority, err);
        } else if (streq(k, "stdout")) {
            r = get_absolute_path(m, &mp, &t->stdout_path, err);
        } else if (streq(k, "stderr")) {
            r = get_absolute_path(m, &mp, &t->stderr_path, err);
        } else if (streq(k, "workdir")) {
            r = get_absolute_path(m, &mp, &t->workdir, err);
        } else if (streq(k, "env")) {
            r = parse_map(m, &mp, TASK_MAX_ENV, true, &t->env, &t->n_env, err);
        } else if (streq(k, "tags")) {
            r = parse_map(m, &mp, TASK_MAX_TAGS, false, &t->tags, &t->n_tags, err);
        } else if (streq(k, "backend")) {
            r = parse_backend(m, &mp, &t->backend, err);
        } else {
            r = field_error(err, &mp, "unknown field");
        }
        if (r < 0)
            return r;
    }

    if (!t->user)
        return error_set(err, -EINVAL, "user: is required");
    if (have_cmd && t->container) {
        if (t->container->cmd.argv)
            return error_set(err, -EINVAL,
                             "cmd: give the command in cmd or in container.cmd, not both");
        /* JobProxy's backends run a task's cmd in its container when it has
         * one (and its own test task says so): from here on there is one
         * shape, for the store, GET /task and the Docker backend alike. */
        t->container->cmd = t->cmd;
        t->cmd = (struct task_cmd){};
    }
    if (!have_cmd && !t->container)
        return error_set(err, -EINVAL, "cmd: one of cmd or container is required");
    /* Known now, without a config: which kind of task a backend runs. */
    if (t->backend && t->container && !task_backend_runs_containers(t->backend))
        return error_set(err, -EINVAL,
                         "backend: %s runs commands, not containers; a container task runs on "
                         "docker",
                         t->backend);
    if (t->backend && !t->container && task_backend_runs_containers(t->backend))
        return error_set(err, -EINVAL,
                         "backend: %s runs container tasks only; this task has no container",
                         t->backend);
    *ret = TAKE_PTR(t);
    return 0;
}
