/*
 * tes-parse: a TES 1.1 tesTask request body to a struct tes_task (tes.h).
 *
 * Strict where the spec is (types, required fields, absolute paths),
 * lenient where the clients in use rely on it (tes.h says which). Every
 * error names the field by its path, as task-validate.c does:
 * "executors[0].command[2]: must be a string, not a number".
 */
#include "tes.h"
#include "field-path.h"

#include <ctype.h>
#include <math.h>
#include <strings.h>

static const char *const file_type_table[_TES_FILE_TYPE_MAX] = {
    [TES_FILE] = "FILE",
    [TES_DIRECTORY] = "DIRECTORY",
};

const char *tes_file_type_to_string(enum tes_file_type t)
{
    return t >= 0 && t < _TES_FILE_TYPE_MAX ? file_type_table[t] : NULL;
}

enum tes_file_type tes_file_type_from_string(const char *s)
{
    for (int i = 0; s && i < _TES_FILE_TYPE_MAX; i++)
        if (streq(s, file_type_table[i]))
            return i;
    return _TES_FILE_TYPE_INVALID;
}

static const char *const view_table[_TES_VIEW_MAX] = {
    [TES_VIEW_MINIMAL] = "MINIMAL",
    [TES_VIEW_BASIC] = "BASIC",
    [TES_VIEW_FULL] = "FULL",
};

const char *tes_view_to_string(enum tes_view v)
{
    return v >= 0 && v < _TES_VIEW_MAX ? view_table[v] : NULL;
}

enum tes_view tes_view_from_string(const char *s)
{
    for (int i = 0; s && i < _TES_VIEW_MAX; i++)
        if (streq(s, view_table[i]))
            return i;
    return _TES_VIEW_INVALID;
}

static void executor_done(struct tes_executor *e)
{
    free(e->image);
    strv_free(e->command);
    free(e->workdir);
    free(e->stdin_path);
    free(e->stdout_path);
    free(e->stderr_path);
    task_kv_free(e->env, e->n_env);
}

static void input_done(struct tes_input *i)
{
    free(i->name);
    free(i->description);
    free(i->url);
    free(i->path);
    free(i->content);
}

static void output_done(struct tes_output *o)
{
    free(o->name);
    free(o->description);
    free(o->url);
    free(o->path);
    free(o->path_prefix);
}

struct tes_task *tes_task_free(struct tes_task *t)
{
    if (!t)
        return NULL;
    free(t->name);
    free(t->description);
    for (size_t i = 0; i < t->n_executors; i++)
        executor_done(&t->executors[i]);
    free(t->executors);
    for (size_t i = 0; i < t->n_inputs; i++)
        input_done(&t->inputs[i]);
    free(t->inputs);
    for (size_t i = 0; i < t->n_outputs; i++)
        output_done(&t->outputs[i]);
    free(t->outputs);
    strv_free(t->volumes);
    strv_free(t->resources.zones);
    task_kv_free(t->resources.backend_parameters, t->resources.n_backend_parameters);
    task_kv_free(t->tags, t->n_tags);
    strv_free(t->ignored_parameters);
    free(t);
    return NULL;
}

void tes_task_log_done(struct tes_task_log *l)
{
    for (size_t i = 0; i < l->n_logs; i++) {
        free(l->logs[i].stdout_tail);
        free(l->logs[i].stderr_tail);
    }
    free(l->logs);
    for (size_t i = 0; i < l->n_outputs; i++) {
        free(l->outputs[i].url);
        free(l->outputs[i].path);
    }
    free(l->outputs);
    strv_free(l->system_logs);
    task_kv_free(l->metadata, l->n_metadata);
    *l = (struct tes_task_log){};
}

/* ---- fields ------------------------------------------------------------------------------- */

/* A member, NULL when absent. JSON null counts as absent: generated
 * clients (py-tes, the Java and Go ones) send null for unset optionals. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(j) ? NULL : j;
}

static int get_string(const cJSON *j, const struct path *p, size_t max, char **ret,
                      struct error *err)
{
    if (!cJSON_IsString(j))
        return field_error(err, p, "must be a string, not %s", json_type_name(j));
    size_t n = strlen(j->valuestring);
    if (n > max)
        return field_error(err, p, "is too long (%zu bytes, at most %zu)", n, max);
    *ret = xstrdup(j->valuestring);
    return 0;
}

/* An optional string member: *ret stays NULL when absent. */
static int opt_string(const cJSON *obj, const struct path *parent, const char *key, size_t max,
                      char **ret, struct error *err)
{
    const cJSON *j = member(obj, key);
    struct path p = {parent, key, 0};
    return j ? get_string(j, &p, max, ret, err) : 0;
}

static int opt_bool(const cJSON *obj, const struct path *parent, const char *key, bool *ret,
                    bool *ret_given, struct error *err)
{
    const cJSON *j = member(obj, key);
    struct path p = {parent, key, 0};
    if (!j)
        return 0;
    if (!cJSON_IsBool(j))
        return field_error(err, &p, "must be a boolean, not %s", json_type_name(j));
    *ret = cJSON_IsTrue(j);
    if (ret_given)
        *ret_given = true;
    return 0;
}

static bool path_is_clean(const char *s)
{
    /* ".." would make the host mapping (tes.h) point outside the task's directory. */
    for (const char *c = s; (c = strstr(c, "..")); c += 2)
        if (c[-1] == '/' && (c[2] == '/' || c[2] == '\0'))
            return false;
    return true;
}

static int get_absolute_path(const cJSON *j, const struct path *p, char **ret, struct error *err)
{
    _cleanup_free_ char *s = NULL;
    int r = get_string(j, p, 4096, &s, err);
    if (r < 0)
        return r;
    if (s[0] != '/')
        return field_error(err, p, "must be an absolute path");
    if (!path_is_clean(s))
        return field_error(err, p, "must not contain \"..\"");
    *ret = TAKE_PTR(s);
    return 0;
}

static int opt_absolute_path(const cJSON *obj, const struct path *parent, const char *key,
                             char **ret, struct error *err)
{
    const cJSON *j = member(obj, key);
    struct path p = {parent, key, 0};
    return j ? get_absolute_path(j, &p, ret, err) : 0;
}

static int req_absolute_path(const cJSON *obj, const struct path *parent, const char *key,
                             char **ret, struct error *err)
{
    const cJSON *j = member(obj, key);
    struct path p = {parent, key, 0};
    if (!j)
        return field_error(err, &p, "is required");
    return get_absolute_path(j, &p, ret, err);
}

static int get_strv(const cJSON *j, const struct path *p, size_t max, bool absolute, char ***ret,
                    struct error *err)
{
    if (!cJSON_IsArray(j))
        return field_error(err, p, "must be a list of strings, not %s", json_type_name(j));
    int n = cJSON_GetArraySize(j);
    if ((size_t) n > max)
        return field_error(err, p, "has too many entries (%d, at most %zu)", n, max);
    _cleanup_strv_ char **v = xcalloc(n + 1, sizeof(char *));
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, j)
    {
        struct path ap = {p, NULL, i};
        int r = absolute ? get_absolute_path(a, &ap, &v[i], err)
                         : get_string(a, &ap, TASK_MAX_STRING, &v[i], err);
        if (r < 0)
            return r;
        i++;
    }
    *ret = TAKE_PTR(v);
    return 0;
}

/* An object of strings (env, tags, backend_parameters, metadata). */
static int get_map(const cJSON *j, const struct path *p, size_t max, bool env, struct task_kv **ret,
                   size_t *ret_n, struct error *err)
{
    if (!cJSON_IsObject(j))
        return field_error(err, p, "must be an object of names to strings, not %s",
                           json_type_name(j));
    int n = cJSON_GetArraySize(j);
    if ((size_t) n > max)
        return field_error(err, p, "has too many entries (%d, at most %zu)", n, max);
    struct task_kv *kv = n ? xcalloc(n, sizeof(*kv)) : NULL;
    size_t k = 0;
    int r = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
    {
        struct path ep = {p, e->string, 0};
        if (env ? !env_name_ok(e->string) : strlen(e->string) > TASK_MAX_NAME) {
            r = field_error(
                err, &ep, env ? "is not a valid environment variable name" : "is too long a name");
            break;
        }
        char *v;
        r = get_string(e, &ep, TASK_MAX_STRING, &v, err);
        if (r < 0)
            break;
        kv[k].key = xstrdup(e->string);
        kv[k].value = v;
        k++;
    }
    if (r < 0) {
        task_kv_free(kv, k);
        return r;
    }
    *ret = kv;
    *ret_n = k;
    return 0;
}

static int opt_file_type(const cJSON *obj, const struct path *parent, enum tes_file_type *ret,
                         bool *ret_given, struct error *err)
{
    const cJSON *j = member(obj, "type");
    struct path p = {parent, "type", 0};
    *ret = TES_FILE; /* the spec's default */
    if (!j)
        return 0;
    enum tes_file_type t =
        cJSON_IsString(j) ? tes_file_type_from_string(j->valuestring) : _TES_FILE_TYPE_INVALID;
    if (t < 0)
        return field_error(err, &p, "must be \"FILE\" or \"DIRECTORY\"");
    *ret = t;
    *ret_given = true;
    return 0;
}

/* ---- the parts of a task ------------------------------------------------------------------ */

static int parse_executor(const cJSON *j, const struct path *p, struct tes_executor *e,
                          struct error *err)
{
    if (!cJSON_IsObject(j))
        return field_error(err, p, "must be an object, not %s", json_type_name(j));

    const cJSON *image = member(j, "image");
    struct path ip = {p, "image", 0};
    if (!image)
        return field_error(err, &ip, "is required");
    int r = get_string(image, &ip, 4096, &e->image, err);
    if (r < 0)
        return r;
    if (!e->image[0])
        return field_error(err, &ip, "must not be empty");

    const cJSON *command = member(j, "command");
    struct path cp = {p, "command", 0};
    if (!command)
        return field_error(err, &cp, "is required");
    r = get_strv(command, &cp, TASK_MAX_ARGS, false, &e->command, err);
    if (r < 0)
        return r;
    if (!e->command[0])
        return field_error(err, &cp, "must not be empty");
    if (!e->command[0][0]) {
        struct path c0 = {&cp, NULL, 0};
        return field_error(err, &c0, "must not be empty (it is the program)");
    }

    if ((r = opt_absolute_path(j, p, "workdir", &e->workdir, err)) < 0 ||
        (r = opt_absolute_path(j, p, "stdin", &e->stdin_path, err)) < 0 ||
        (r = opt_absolute_path(j, p, "stdout", &e->stdout_path, err)) < 0 ||
        (r = opt_absolute_path(j, p, "stderr", &e->stderr_path, err)) < 0 ||
        (r = opt_bool(j, p, "ignore_error", &e->ignore_error, NULL, err)) < 0)
        return r;

    const cJSON *env = member(j, "env");
    struct path ep = {p, "env", 0};
    if (env && (r = get_map(env, &ep, TASK_MAX_ENV, true, &e->env, &e->n_env, err)) < 0)
        return r;
    return 0;
}

static int parse_input(const cJSON *j, const struct path *p, struct tes_input *in,
                       struct error *err)
{
    int r;
    if (!cJSON_IsObject(j))
        return field_error(err, p, "must be an object, not %s", json_type_name(j));
    if ((r = opt_string(j, p, "name", TASK_MAX_NAME, &in->name, err)) < 0 ||
        (r = opt_string(j, p, "description", TASK_MAX_STRING, &in->description, err)) < 0 ||
        (r = req_absolute_path(j, p, "path", &in->path, err)) < 0 ||
        (r = opt_string(j, p, "content", TES_MAX_CONTENT, &in->content, err)) < 0 ||
        (r = opt_file_type(j, p, &in->type, &in->type_given, err)) < 0 ||
        (r = opt_bool(j, p, "streamable", &in->streamable, NULL, err)) < 0)
        return r;
    if (in->content && in->content[0]) {
        /* "If content is not empty, url must be ignored", but its type still is checked. */
        const cJSON *url = member(j, "url");
        struct path up = {p, "url", 0};
        if (url && !cJSON_IsString(url))
            return field_error(err, &up, "must be a string, not %s", json_type_name(url));
        if (in->type_given && in->type == TES_DIRECTORY)
            return field_error(err, p, "content makes a FILE, not a DIRECTORY");
        return 0;
    }
    /* Any scheme is accepted here: one we have no storage for fails the task later. */
    if ((r = opt_string(j, p, "url", 4096, &in->url, err)) < 0)
        return r;
    if (!in->url || !in->url[0]) {
        if (in->content) /* "content": "" is an empty file */
            return 0;
        struct path up = {p, "url", 0};
        return field_error(err, &up, "is required unless content is given");
    }
    return 0;
}

static bool has_wildcard(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static int parse_output(const cJSON *j, const struct path *p, struct tes_output *o,
                        struct error *err)
{
    int r;
    if (!cJSON_IsObject(j))
        return field_error(err, p, "must be an object, not %s", json_type_name(j));
    if ((r = opt_string(j, p, "name", TASK_MAX_NAME, &o->name, err)) < 0 ||
        (r = opt_string(j, p, "description", TASK_MAX_STRING, &o->description, err)) < 0 ||
        (r = req_absolute_path(j, p, "path", &o->path, err)) < 0 ||
        (r = opt_file_type(j, p, &o->type, &o->type_given, err)) < 0)
        return r;
    const cJSON *url = member(j, "url");
    struct path up = {p, "url", 0};
    if (!url)
        return field_error(err, &up, "is required");
    if ((r = get_string(url, &up, 4096, &o->url, err)) < 0)
        return r;
    if (!o->url[0])
        return field_error(err, &up, "must not be empty");
    if (has_wildcard(o->path)) {
        struct path pp = {p, "path_prefix", 0};
        if ((r = opt_absolute_path(j, p, "path_prefix", &o->path_prefix, err)) < 0)
            return r;
        if (!o->path_prefix)
            return field_error(err, &pp, "is required when path has wildcards");
        if (!startswith(o->path, o->path_prefix))
            return field_error(err, &pp, "must be a prefix of path");
    }
    /* Without wildcards the spec says path_prefix is ignored: not even read. */
    return 0;
}

static bool parameter_supported(const char *key)
{
    static const char *const supported[] = {TES_BACKEND_PARAMETERS};
    for (size_t i = 0; i < ELEMENTSOF(supported); i++)
        if (strcaseeq(key, supported[i]))
            return true;
    return false;
}

/* A supported parameter's value, checked now so a bad one is 400 at create. */
static int check_parameter(const char *key, const char *value, const struct path *p,
                           struct error *err)
{
    uint64_t u;
    if (strcaseeq(key, "priority")) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < TASK_MIN_PRIORITY || v > TASK_MAX_PRIORITY)
            return field_error(err, p, "must be an integer between %d and %d", TASK_MIN_PRIORITY,
                               TASK_MAX_PRIORITY);
        return 0;
    }
    /* walltime, cputime: with a unit ("2h"), or seconds when bare. */
    if (parse_duration(value, 1, &u) < 0 || u == 0 || u > TASK_MAX_DURATION)
        return field_error(err, p, "must be a duration such as \"90s\", \"15m\" or \"2h\"");
    return 0;
}

static int parse_resources(const cJSON *j, const struct path *p, struct tes_task *t,
                           struct error *err)
{
    struct tes_resources *res = &t->resources;
    int r;

    if (!cJSON_IsObject(j))
        return field_error(err, p, "must be an object, not %s", json_type_name(j));
    res->given = true;

    const cJSON *c = member(j, "cpu_cores");
    struct path cp = {p, "cpu_cores", 0};
    if (c) {
        /* int32 in the spec: a fraction is a type error, not something to round. */
        if (!cJSON_IsNumber(c))
            return field_error(err, &cp, "must be an integer, not %s", json_type_name(c));
        /* The range first: casting a huge double to an integer is undefined. */
        if (!(c->valuedouble >= 0 && c->valuedouble <= TASK_MAX_CORES))
            return field_error(err, &cp, "must be between 0 and %g", TASK_MAX_CORES);
        if (c->valuedouble != (double) (int) c->valuedouble)
            return field_error(err, &cp, "must be an integer, not a fraction");
        res->cpu_cores = (int) c->valuedouble;
    }
    static const struct {
        const char *key;
        size_t offset;
    } doubles[] = {
        {"ram_gb", offsetof(struct tes_resources, ram_gb)},
        {"disk_gb", offsetof(struct tes_resources, disk_gb)},
    };
    for (size_t i = 0; i < ELEMENTSOF(doubles); i++) {
        const cJSON *d = member(j, doubles[i].key);
        struct path dp = {p, doubles[i].key, 0};
        if (!d)
            continue;
        if (!cJSON_IsNumber(d))
            return field_error(err, &dp, "must be a number, not %s", json_type_name(d));
        if (!isfinite(d->valuedouble) || d->valuedouble < 0 ||
            d->valuedouble > (double) (TASK_MAX_MEMORY >> 30))
            return field_error(err, &dp, "must be a number of GB between 0 and %llu",
                               TASK_MAX_MEMORY >> 30);
        *(double *) ((char *) res + doubles[i].offset) = d->valuedouble;
    }
    if ((r = opt_bool(j, p, "preemptible", &res->preemptible, &res->preemptible_given, err)) < 0 ||
        (r = opt_bool(j, p, "backend_parameters_strict", &res->backend_parameters_strict, NULL,
                      err)) < 0)
        return r;

    const cJSON *z = member(j, "zones");
    struct path zp = {p, "zones", 0};
    if (z && (r = get_strv(z, &zp, TES_MAX_FILES, false, &res->zones, err)) < 0)
        return r;

    const cJSON *bp = member(j, "backend_parameters");
    struct path bpp = {p, "backend_parameters", 0};
    if (!bp)
        return 0;
    struct task_kv *kv = NULL;
    size_t n = 0;
    if ((r = get_map(bp, &bpp, TASK_MAX_TAGS, false, &kv, &n, err)) < 0)
        return r;
    for (size_t i = 0; i < n && r >= 0; i++) {
        struct path kp = {&bpp, kv[i].key, 0};
        if (!parameter_supported(kv[i].key)) {
            if (res->backend_parameters_strict)
                r = field_error(err, &kp,
                                "is not a backend parameter this server supports (it supports "
                                "walltime, cputime and priority) and backend_parameters_strict "
                                "is set");
            else
                strv_push(&t->ignored_parameters, kv[i].key);
            continue;
        }
        r = check_parameter(kv[i].key, kv[i].value, &kp, err);
        if (r < 0)
            break;
        /* Keys are case-insensitive: stored lower-cased, one of each. */
        for (char *s = kv[i].key; *s; s++)
            *s = (char) tolower((unsigned char) *s);
        for (size_t k = 0; k < res->n_backend_parameters; k++)
            if (streq(res->backend_parameters[k].key, kv[i].key))
                r = field_error(err, &kp, "is given twice (keys are case-insensitive)");
        if (r < 0)
            break;
        res->backend_parameters = xrealloc(
            res->backend_parameters, (res->n_backend_parameters + 1) * sizeof(struct task_kv));
        res->backend_parameters[res->n_backend_parameters++] = kv[i];
        kv[i] = (struct task_kv){};
    }
    task_kv_free(kv, n);
    return r < 0 ? r : 0;
}

/* An array member of objects, each parsed by fn into an element of size 'size'. */
static int parse_list(const cJSON *root, const char *key, size_t max, size_t size,
                      int (*fn)(const cJSON *j, const struct path *p, void *elem,
                                struct error *err),
                      void **ret, size_t *ret_n, struct error *err)
{
    const cJSON *j = member(root, key);
    struct path p = {NULL, key, 0};
    if (!j)
        return 0;
    if (!cJSON_IsArray(j))
        return field_error(err, &p, "must be a list, not %s", json_type_name(j));
    int n = cJSON_GetArraySize(j);
    if ((size_t) n > max)
        return field_error(err, &p, "has too many entries (%d, at most %zu)", n, max);
    /* The caller's free walks *ret_n elements, so the list is handed over as it is filled. */
    *ret = n ? xcalloc(n, size) : NULL;
    *ret_n = 0;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
    {
        struct path ep = {&p, NULL, i};
        (*ret_n)++;
        int r = fn(e, &ep, (char *) *ret + (size_t) i * size, err);
        if (r < 0)
            return r;
        i++;
    }
    return 0;
}

static int executor_fn(const cJSON *j, const struct path *p, void *e, struct error *err)
{
    return parse_executor(j, p, e, err);
}
static int input_fn(const cJSON *j, const struct path *p, void *e, struct error *err)
{
    return parse_input(j, p, e, err);
}
static int output_fn(const cJSON *j, const struct path *p, void *e, struct error *err)
{
    return parse_output(j, p, e, err);
}

int tes_task_from_cjson(const cJSON *root, struct tes_task **ret, struct error *err)
{
    _cleanup_tes_task_ struct tes_task *t = xcalloc(1, sizeof(*t));
    int r;

    if (!cJSON_IsObject(root))
        return error_set(err, -EINVAL, "task: must be an object, not %s", json_type_name(root));
    /* id, state, logs and creation_time are read-only: a client that sends
     * a task it fetched back is not refused for them, they are ignored.
     * So are members the spec does not define (OpenAPI objects are open). */
    if ((r = opt_string(root, NULL, "name", TASK_MAX_NAME, &t->name, err)) < 0 ||
        (r = opt_string(root, NULL, "description", TASK_MAX_STRING, &t->description, err)) < 0)
        return r;

    struct path xp = {NULL, "executors", 0};
    if (!member(root, "executors"))
        return field_error(err, &xp, "is required");
    if ((r = parse_list(root, "executors", TES_MAX_EXECUTORS, sizeof(struct tes_executor),
                        executor_fn, (void **) &t->executors, &t->n_executors, err)) < 0)
        return r;
    if (t->n_executors == 0)
        return field_error(err, &xp, "must not be empty");
    if ((r = parse_list(root, "inputs", TES_MAX_FILES, sizeof(struct tes_input), input_fn,
                        (void **) &t->inputs, &t->n_inputs, err)) < 0 ||
        (r = parse_list(root, "outputs", TES_MAX_FILES, sizeof(struct tes_output), output_fn,
                        (void **) &t->outputs, &t->n_outputs, err)) < 0)
        return r;

    const cJSON *v = member(root, "volumes");
    struct path vp = {NULL, "volumes", 0};
    if (v && (r = get_strv(v, &vp, TES_MAX_FILES, true, &t->volumes, err)) < 0)
        return r;

    const cJSON *res = member(root, "resources");
    struct path rp = {NULL, "resources", 0};
    if (res && (r = parse_resources(res, &rp, t, err)) < 0)
        return r;

    const cJSON *tags = member(root, "tags");
    struct path tp = {NULL, "tags", 0};
    if (tags && (r = get_map(tags, &tp, TASK_MAX_TAGS, false, &t->tags, &t->n_tags, err)) < 0)
        return r;

    *ret = TAKE_PTR(t);
    return 0;
}

int tes_task_parse(const char *buf, size_t len, struct tes_task **ret, struct error *err)
{
    cJSON *root = NULL;
    int r = task_json_parse(buf, len, &root, err);
    if (r < 0)
        return r;
    r = tes_task_from_cjson(root, ret, err);
    cJSON_Delete(root);
    return r;
}
