/*
 * tes-task: a TES task and the one task model (task.h), both ways.
 *
 * tes_task_to_task() makes the struct task the supervisor, the policy
 * and the backends see of a TES task, through the one validator
 * (task_from_cjson), so a TES task meets every limit a JobProxy one
 * does; tes_task_from_task() shows a JobProxy task as a one-executor TES
 * task. tes.h says what maps to what, and why.
 */
#include "tes.h"

#include <inttypes.h>

/* A JobProxy task as a TES task. */
struct tes_task *tes_task_from_task(const struct task *t)
{
    struct tes_task *tt = xcalloc(1, sizeof(*tt));
    const struct task_cmd *cmd = t->container ? &t->container->cmd : &t->cmd;

    tt->name = t->name ? xstrdup(t->name) : NULL;
    tt->executors = xcalloc(1, sizeof(struct tes_executor));
    tt->n_executors = 1;
    struct tes_executor *e = &tt->executors[0];
    e->image = xstrdup(t->container ? t->container->image : "");
    if (cmd->argv && cmd->shell) {
        e->command = xcalloc(4, sizeof(char *));
        e->command[0] = xstrdup("/bin/sh");
        e->command[1] = xstrdup("-c");
        e->command[2] = xstrdup(cmd->argv[0]);
    } else if (cmd->argv)
        e->command = strv_copy(cmd->argv);
    else
        e->command = xcalloc(1, sizeof(char *)); /* the image's default: [] */
    e->workdir = t->workdir ? xstrdup(t->workdir) : NULL;
    if (t->n_env) {
        e->env = xcalloc(t->n_env, sizeof(struct task_kv));
        for (size_t i = 0; i < t->n_env; i++)
            e->env[i] = (struct task_kv){xstrdup(t->env[i].key), xstrdup(t->env[i].value)};
        e->n_env = t->n_env;
    }
    if (t->cores > 0 || t->memory > 0) {
        tt->resources.given = true;
        /* Rounded up: TES's cpu_cores is whole, and a half is not none. */
        int cores = (int) t->cores;
        tt->resources.cpu_cores = cores + ((double) cores < t->cores);
        tt->resources.ram_gb = (double) t->memory / (double) (1ULL << 30);
    }
    if (t->n_tags) {
        tt->tags = xcalloc(t->n_tags, sizeof(struct task_kv));
        for (size_t i = 0; i < t->n_tags; i++)
            tt->tags[i] = (struct task_kv){xstrdup(t->tags[i].key), xstrdup(t->tags[i].value)};
        tt->n_tags = t->n_tags;
    }
    return tt;
}

/* A backend parameter's value, by its lower-cased key; NULL when not given. */
static const char *parameter(const struct tes_resources *r, const char *key)
{
    for (size_t i = 0; i < r->n_backend_parameters; i++)
        if (streq(r->backend_parameters[i].key, key))
            return r->backend_parameters[i].value;
    return NULL;
}

static cJSON *map_to_cjson(const struct task_kv *kv, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++)
        cJSON_AddStringToObject(o, kv[i].key, kv[i].value);
    return o;
}

int tes_task_to_task(const struct tes_task *tt, const char *account, struct task **ret,
                     struct error *err)
{
    const struct tes_executor *x = &tt->executors[0];
    const struct tes_resources *res = &tt->resources;
    cJSON *j = cJSON_CreateObject();
    char buf[64];

    cJSON_AddStringToObject(j, "user", account);
    if (tt->name)
        cJSON_AddStringToObject(j, "name", tt->name);
    cJSON *c = cJSON_AddObjectToObject(j, "container");
    cJSON_AddStringToObject(c, "image", x->image);
    cJSON *cmd = cJSON_AddArrayToObject(c, "cmd");
    for (size_t i = 0; x->command[i]; i++)
        cJSON_AddItemToArray(cmd, cJSON_CreateString(x->command[i]));
    if (x->workdir)
        cJSON_AddStringToObject(j, "workdir", x->workdir);
    if (x->n_env)
        cJSON_AddItemToObject(j, "env", map_to_cjson(x->env, x->n_env));
    if (tt->n_tags)
        cJSON_AddItemToObject(j, "tags", map_to_cjson(tt->tags, tt->n_tags));
    if (res->cpu_cores > 0)
        cJSON_AddNumberToObject(j, "cores", res->cpu_cores);
    if (res->ram_gb > 0) {
        /* GB read as GiB (tes.h), rounded up to a whole byte: never less than asked. */
        double want = res->ram_gb * (double) (1ULL << 30); /* <= 2^50: the parser's bound */
        uint64_t bytes = (uint64_t) want;
        snprintf(buf, sizeof(buf), "%" PRIu64 "B", bytes + ((double) bytes < want));
        cJSON_AddStringToObject(j, "memory", buf);
    }
    /* The parser checked these; seconds when bare, as service-info says. */
    static const char *const durations[] = {"walltime", "cputime"};
    for (size_t i = 0; i < ELEMENTSOF(durations); i++) {
        const char *v = parameter(res, durations[i]);
        uint64_t s;
        if (v && parse_duration(v, 1, &s) >= 0) {
            snprintf(buf, sizeof(buf), "%" PRIu64 "s", s);
            cJSON_AddStringToObject(j, durations[i], buf);
        }
    }
    const char *prio = parameter(res, "priority");
    if (prio)
        cJSON_AddNumberToObject(j, "priority", strtol(prio, NULL, 10));

    int r = task_from_cjson(j, NULL, ret, err);
    cJSON_Delete(j);
    if (r < 0)
        return error_wrap(err, "as a task of this server");
    return 0;
}

/* The spec's tesTask fields, FULL, without the read-only ones: what the
 * client asked for, as the parser reads it back. */
cJSON *tes_task_to_spec_cjson(const struct tes_task *tt)
{
    const struct tes_task_view tv = {.id = "", .task = tt};
    cJSON *o = tes_task_to_cjson(&tv, TES_VIEW_FULL);
    static const char *const read_only[] = {"id", "state", "logs", "creation_time"};
    for (size_t i = 0; i < ELEMENTSOF(read_only); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, read_only[i]);
    /* Dropped parameters are not stored as parameters (the spec), but the
     * task log names them, so they are kept apart. */
    if (tt->ignored_parameters) {
        cJSON *a = cJSON_AddArrayToObject(o, "ignored_parameters");
        STRV_FOREACH (p, tt->ignored_parameters)
            cJSON_AddItemToArray(a, cJSON_CreateString(*p));
    }
    return o;
}

int tes_task_from_spec_cjson(const cJSON *j, struct tes_task **ret, struct error *err)
{
    _cleanup_tes_task_ struct tes_task *tt = NULL;
    int r = tes_task_from_cjson(j, &tt, err);
    if (r < 0)
        return r;
    const cJSON *ign = cJSON_GetObjectItemCaseSensitive(j, "ignored_parameters"), *p;
    if (ign && !cJSON_IsArray(ign))
        return error_set(err, -EINVAL, "ignored_parameters: must be an array");
    cJSON_ArrayForEach(p, ign)
    {
        if (!cJSON_IsString(p))
            return error_set(err, -EINVAL, "ignored_parameters: must hold strings");
        strv_push(&tt->ignored_parameters, p->valuestring);
    }
    *ret = TAKE_PTR(tt);
    return 0;
}

struct tes_task *tes_task_copy(const struct tes_task *tt)
{
    /* Simple beats clever: through the stored form, which the parser
     * reads back whole (test-tes.c checks the round trip). */
    _cleanup_error_ struct error err = ERROR_INIT;
    struct tes_task *c = NULL;
    cJSON *j = tes_task_to_spec_cjson(tt);
    int r = tes_task_from_spec_cjson(j, &c, &err);
    cJSON_Delete(j);
    if (r < 0)
        abort(); /* what the parser made, it reads back */
    return c;
}

bool tes_task_needs_runner(const struct tes_task *tt)
{
    if (tt->n_executors != 1 || tt->n_inputs || tt->n_outputs || tt->volumes)
        return true;
    const struct tes_executor *x = &tt->executors[0];
    return x->stdin_path || x->stdout_path || x->stderr_path;
}
