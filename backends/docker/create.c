/*
 * create: a Task as the body of the Engine API's POST /containers/create.
 * A pure function of the task, its id, its resolved user and the config:
 * no dockerd, no backend state, so every mapping is unit-tested
 * (test/unit/test-docker-create.c).
 *
 * Beyond the Task's own fields the container is confined the same way
 * for every task: all capabilities dropped, no new privileges, Docker's
 * init as PID 1 (it reaps, and passes signals on), memory without extra
 * swap, and labels that say whose container it is.
 */
#include "docker-internal.h"

static void add_cmd(cJSON *j, const struct task_cmd *cmd)
{
    if (!cmd->argv)
        return; /* the image's own CMD */
    cJSON *a = cJSON_AddArrayToObject(j, "Cmd");
    if (cmd->shell) {
        cJSON_AddItemToArray(a, cJSON_CreateString("/bin/sh"));
        cJSON_AddItemToArray(a, cJSON_CreateString("-c"));
    }
    for (char **arg = cmd->argv; *arg; arg++)
        cJSON_AddItemToArray(a, cJSON_CreateString(*arg));
}

static void add_env(cJSON *j, const struct task *task, const char *task_id)
{
    cJSON *env = cJSON_AddArrayToObject(j, "Env");
    for (size_t i = 0; i < task->n_env; i++) {
        _cleanup_free_ char *kv = xasprintf("%s=%s", task->env[i].key, task->env[i].value);
        cJSON_AddItemToArray(env, cJSON_CreateString(kv));
    }
    _cleanup_free_ char *id = xasprintf("OCPS_TASK_ID=%s", task_id);
    cJSON_AddItemToArray(env, cJSON_CreateString(id));
}

static void add_labels(cJSON *j, const struct task *task, const char *task_id, const char *instance)
{
    cJSON *labels = cJSON_AddObjectToObject(j, "Labels");
    cJSON_AddStringToObject(labels, LABEL_INSTANCE, instance);
    cJSON_AddStringToObject(labels, LABEL_TASK, task_id);
    for (size_t i = 0; i < task->n_tags; i++) {
        _cleanup_free_ char *k = xasprintf(LABEL_TAG_PREFIX "%s", task->tags[i].key);
        cJSON_AddStringToObject(labels, k, task->tags[i].value);
    }
}

/* ExposedPorts {"80/tcp": {}} and PortBindings {"80/tcp": [{HostIp,
 * HostPort}]}, a container port bound once per host port. */
static void add_ports(cJSON *j, cJSON *hc, const struct task_container *c, const char *address)
{
    if (!c->n_ports)
        return;
    cJSON *exposed = cJSON_AddObjectToObject(j, "ExposedPorts");
    cJSON *bindings = cJSON_AddObjectToObject(hc, "PortBindings");
    for (size_t i = 0; i < c->n_ports; i++) {
        char key[16], port[16];
        snprintf(key, sizeof(key), "%u/tcp", (unsigned) c->ports[i].container);
        if (!cJSON_GetObjectItemCaseSensitive(exposed, key))
            cJSON_AddObjectToObject(exposed, key);
        cJSON *list = cJSON_GetObjectItemCaseSensitive(bindings, key);
        if (!list)
            list = cJSON_AddArrayToObject(bindings, key);
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "HostIp", address);
        snprintf(port, sizeof(port), "%u", (unsigned) c->ports[i].host);
        cJSON_AddStringToObject(b, "HostPort", port);
        cJSON_AddItemToArray(list, b);
    }
}

static void add_mounts(cJSON *hc, const struct task_container *c)
{
    if (!c->n_mounts)
        return;
    /* Mounts, not Binds: a missing source is an error, never a new directory. */
    cJSON *mounts = cJSON_AddArrayToObject(hc, "Mounts");
    for (size_t i = 0; i < c->n_mounts; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "Type", "bind");
        cJSON_AddStringToObject(m, "Source", c->mounts[i].host);
        cJSON_AddStringToObject(m, "Target", c->mounts[i].container);
        cJSON_AddBoolToObject(m, "ReadOnly", c->mounts[i].mode == MOUNT_RO);
        cJSON_AddItemToArray(mounts, m);
    }
}

static void add_limits(cJSON *hc, const struct task *task, uint64_t pids_limit)
{
    cJSON_AddNumberToObject(hc, "NanoCpus", (double) (int64_t) (task->cores * 1e9 + 0.5));
    cJSON_AddNumberToObject(hc, "Memory", (double) task->memory);
    cJSON_AddNumberToObject(hc, "MemorySwap", (double) task->memory); /* no hidden swap */
    if (pids_limit)
        cJSON_AddNumberToObject(hc, "PidsLimit", (double) pids_limit);
    if (task->cputime) {
        /* Soft below hard: SIGXCPU (exit 152) at the limit names the cause. */
        cJSON *ul = cJSON_AddArrayToObject(hc, "Ulimits");
        cJSON *cpu = cJSON_CreateObject();
        cJSON_AddStringToObject(cpu, "Name", "cpu");
        cJSON_AddNumberToObject(cpu, "Soft", (double) task->cputime);
        cJSON_AddNumberToObject(cpu, "Hard", (double) task->cputime + 1);
        cJSON_AddItemToArray(ul, cpu);
    }
}

cJSON *docker_create_body(const struct task *task, const char *task_id,
                          const struct confine_user *user, const struct docker_create_config *cfg)
{
    const struct task_container *c = task->container;
    char buf[32];

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "Image", c->image);
    add_cmd(j, &c->cmd);
    add_env(j, task, task_id);
    if (task->workdir)
        cJSON_AddStringToObject(j, "WorkingDir", task->workdir);
    snprintf(buf, sizeof(buf), "%u:%u", (unsigned) user->uid, (unsigned) user->gid);
    cJSON_AddStringToObject(j, "User", buf);
    cJSON_AddBoolToObject(j, "Tty", false);
    cJSON_AddBoolToObject(j, "AttachStdin", false);
    cJSON_AddBoolToObject(j, "OpenStdin", false);
    add_labels(j, task, task_id, cfg->instance);

    cJSON *hc = cJSON_AddObjectToObject(j, "HostConfig");
    add_ports(j, hc, c, cfg->port_address);
    add_mounts(hc, c);
    if (cfg->network)
        cJSON_AddStringToObject(hc, "NetworkMode", cfg->network);
    add_limits(hc, task, cfg->pids_limit);
    if (user->n_groups > 0) {
        cJSON *ga = cJSON_AddArrayToObject(hc, "GroupAdd");
        for (int i = 0; i < user->n_groups; i++) {
            snprintf(buf, sizeof(buf), "%u", (unsigned) user->groups[i]);
            cJSON_AddItemToArray(ga, cJSON_CreateString(buf));
        }
    }
    cJSON *capdrop = cJSON_AddArrayToObject(hc, "CapDrop");
    cJSON_AddItemToArray(capdrop, cJSON_CreateString("ALL"));
    cJSON *secopt = cJSON_AddArrayToObject(hc, "SecurityOpt");
    cJSON_AddItemToArray(secopt, cJSON_CreateString("no-new-privileges"));
    cJSON_AddBoolToObject(hc, "Init", true);
    cJSON_AddBoolToObject(hc, "AutoRemove", false);
    return j;
}
