/*
 * task: the Task model: its state vocabulary, its life cycle (new, copy,
 * free) and its normalised form (task_to_cjson). The one validator, which
 * turns any wire form into a task, is task-validate.c.
 */
#include "task.h"
#include "tes.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>

static const char *const task_state_table[_TASK_STATE_MAX] = {
    [TASK_QUEUED] = "QUEUED",
    [TASK_INITIALIZING] = "INITIALIZING",
    [TASK_RUNNING] = "RUNNING",
    [TASK_COMPLETE] = "COMPLETE",
    [TASK_EXECUTOR_ERROR] = "EXECUTOR_ERROR",
    [TASK_SYSTEM_ERROR] = "SYSTEM_ERROR",
    [TASK_CANCELING] = "CANCELING",
    [TASK_CANCELED] = "CANCELED",
};
DEFINE_STRING_TABLE_LOOKUP(task_state, enum task_state, task_state_table)

bool task_state_is_final(enum task_state s)
{
    return s == TASK_COMPLETE || s == TASK_EXECUTOR_ERROR || s == TASK_SYSTEM_ERROR ||
           s == TASK_CANCELED;
}

static const char *const mount_mode_table[_MOUNT_MODE_MAX] = {
    [MOUNT_RW] = "RW",
    [MOUNT_RO] = "RO",
};
DEFINE_STRING_TABLE_LOOKUP(mount_mode, enum mount_mode, mount_mode_table)

/* ---- life cycle ---------------------------------------------------------------------------- */

struct task *task_new(void)
{
    return xcalloc(1, sizeof(struct task));
}

void task_kv_free(struct task_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

struct task_container *task_container_free(struct task_container *c)
{
    if (!c)
        return NULL;
    free(c->image);
    strv_free(c->cmd.argv);
    free(c->ports);
    for (size_t i = 0; i < c->n_mounts; i++) {
        free(c->mounts[i].host);
        free(c->mounts[i].container);
    }
    free(c->mounts);
    free(c);
    return NULL;
}

struct task *task_free(struct task *t)
{
    if (!t)
        return NULL;
    free(t->user);
    free(t->name);
    strv_free(t->cmd.argv);
    task_container_free(t->container);
    free(t->stdout_path);
    free(t->stderr_path);
    free(t->workdir);
    task_kv_free(t->env, t->n_env);
    task_kv_free(t->tags, t->n_tags);
    tes_task_free(t->tes);
    free(t->backend);
    free(t);
    return NULL;
}

static char *strdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static struct task_kv *kv_copy(const struct task_kv *kv, size_t n)
{
    if (n == 0)
        return NULL;
    struct task_kv *c = xcalloc(n, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        c[i].key = xstrdup(kv[i].key);
        c[i].value = xstrdup(kv[i].value);
    }
    return c;
}

struct task *task_copy(const struct task *t)
{
    struct task *c = task_new();

    c->user = strdup_or_null(t->user);
    c->name = strdup_or_null(t->name);
    c->cmd.argv = strv_copy(t->cmd.argv);
    c->cmd.shell = t->cmd.shell;
    if (t->container) {
        const struct task_container *o = t->container;
        struct task_container *n = xcalloc(1, sizeof(*n));
        n->image = xstrdup(o->image);
        n->cmd.argv = strv_copy(o->cmd.argv);
        n->cmd.shell = o->cmd.shell;
        if (o->n_ports) {
            n->ports = xcalloc(o->n_ports, sizeof(*n->ports));
            memcpy(n->ports, o->ports, o->n_ports * sizeof(*n->ports));
        }
        n->n_ports = o->n_ports;
        if (o->n_mounts)
            n->mounts = xcalloc(o->n_mounts, sizeof(*n->mounts));
        for (size_t i = 0; i < o->n_mounts; i++) {
            n->mounts[i].host = xstrdup(o->mounts[i].host);
            n->mounts[i].container = xstrdup(o->mounts[i].container);
            n->mounts[i].mode = o->mounts[i].mode;
        }
        n->n_mounts = o->n_mounts;
        c->container = n;
    }
    c->cores = t->cores;
    c->memory = t->memory;
    c->memory_bare_unit = t->memory_bare_unit;
    c->cputime = t->cputime;
    c->walltime = t->walltime;
    c->priority = t->priority;
    c->stdout_path = strdup_or_null(t->stdout_path);
    c->stderr_path = strdup_or_null(t->stderr_path);
    c->workdir = strdup_or_null(t->workdir);
    c->env = kv_copy(t->env, t->n_env);
    c->n_env = t->n_env;
    c->tags = kv_copy(t->tags, t->n_tags);
    c->n_tags = t->n_tags;
    c->tes = t->tes ? tes_task_copy(t->tes) : NULL;
    c->backend = strdup_or_null(t->backend);
    return c;
}

/* ---- the normalised form ------------------------------------------------------------------- */

static cJSON *cmd_to_cjson(const struct task_cmd *c)
{
    if (c->shell)
        return cJSON_CreateString(c->argv[0]);
    cJSON *a = cJSON_CreateArray();
    STRV_FOREACH (s, c->argv)
        cJSON_AddItemToArray(a, cJSON_CreateString(*s));
    return a;
}

static cJSON *kv_to_cjson(const struct task_kv *kv, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++)
        cJSON_AddStringToObject(o, kv[i].key, kv[i].value);
    return o;
}

cJSON *task_to_cjson(const struct task *t)
{
    cJSON *o = cJSON_CreateObject();
    char buf[32];

    if (!o)
        abort();
    cJSON_AddStringToObject(o, "user", t->user);
    if (t->name)
        cJSON_AddStringToObject(o, "name", t->name);
    if (t->cmd.argv)
        cJSON_AddItemToObject(o, "cmd", cmd_to_cjson(&t->cmd));
    if (t->container) {
        const struct task_container *c = t->container;
        cJSON *co = cJSON_AddObjectToObject(o, "container");
        cJSON_AddStringToObject(co, "image", c->image);
        if (c->cmd.argv)
            cJSON_AddItemToObject(co, "cmd", cmd_to_cjson(&c->cmd));
        if (c->n_ports) {
            cJSON *a = cJSON_AddArrayToObject(co, "ports");
            for (size_t i = 0; i < c->n_ports; i++) {
                cJSON *p = cJSON_CreateObject();
                cJSON_AddNumberToObject(p, "host", c->ports[i].host);
                cJSON_AddNumberToObject(p, "container", c->ports[i].container);
                cJSON_AddItemToArray(a, p);
            }
        }
        if (c->n_mounts) {
            cJSON *a = cJSON_AddArrayToObject(co, "mounts");
            for (size_t i = 0; i < c->n_mounts; i++) {
                cJSON *m = cJSON_CreateObject();
                cJSON_AddStringToObject(m, "host", c->mounts[i].host);
                cJSON_AddStringToObject(m, "container", c->mounts[i].container);
                cJSON_AddStringToObject(m, "mode", mount_mode_to_string(c->mounts[i].mode));
                cJSON_AddItemToArray(a, m);
            }
        }
    }
    if (t->cores > 0)
        cJSON_AddNumberToObject(o, "cores", t->cores);
    if (t->memory)
        cJSON_AddStringToObject(o, "memory", format_size(t->memory, buf));
    if (t->cputime)
        cJSON_AddStringToObject(o, "cputime", format_duration(t->cputime, buf));
    if (t->walltime)
        cJSON_AddStringToObject(o, "walltime", format_duration(t->walltime, buf));
    if (t->priority)
        cJSON_AddNumberToObject(o, "priority", t->priority);
    if (t->stdout_path)
        cJSON_AddStringToObject(o, "stdout", t->stdout_path);
    if (t->stderr_path)
        cJSON_AddStringToObject(o, "stderr", t->stderr_path);
    if (t->workdir)
        cJSON_AddStringToObject(o, "workdir", t->workdir);
    if (t->n_env)
        cJSON_AddItemToObject(o, "env", kv_to_cjson(t->env, t->n_env));
    if (t->n_tags)
        cJSON_AddItemToObject(o, "tags", kv_to_cjson(t->tags, t->n_tags));
    if (t->backend)
        cJSON_AddStringToObject(o, "backend", t->backend);
    return o;
}
