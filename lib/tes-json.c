/*
 * tes-json: TES 1.1 replies - a tesTask in the MINIMAL, BASIC and FULL
 * views, and service-info.
 *
 * Exactly the spec's fields and nothing else (py-tes, used by Snakemake,
 * Toil and cwl-tes, refuses a reply with any other), optional ones left
 * out when unset, required ones always there: "executors" in BASIC and
 * FULL, "logs" and "outputs" in every task log, "exit_code" in every
 * executor log. size_bytes is a string (the spec's int64-as-string);
 * times are RFC 3339 (format_rfc3339).
 */
#include "tes.h"

#include <inttypes.h>

static void add_str(cJSON *o, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, key, v);
}

static void add_time(cJSON *o, const char *key, usec_t t)
{
    char buf[32];
    if (t > 0)
        cJSON_AddStringToObject(o, key, format_rfc3339(t, buf));
}

static cJSON *map_to_cjson(const struct task_kv *kv, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++)
        cJSON_AddStringToObject(o, kv[i].key, kv[i].value);
    return o;
}

static cJSON *strv_to_cjson(char *const *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; v && v[i]; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *executor_to_cjson(const struct tes_executor *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image", e->image);
    cJSON_AddItemToObject(o, "command", strv_to_cjson(e->command));
    add_str(o, "workdir", e->workdir);
    add_str(o, "stdin", e->stdin_path);
    add_str(o, "stdout", e->stdout_path);
    add_str(o, "stderr", e->stderr_path);
    if (e->n_env)
        cJSON_AddItemToObject(o, "env", map_to_cjson(e->env, e->n_env));
    if (e->ignore_error)
        cJSON_AddBoolToObject(o, "ignore_error", true);
    return o;
}

static cJSON *input_to_cjson(const struct tes_input *in, enum tes_view v)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "name", in->name);
    add_str(o, "description", in->description);
    add_str(o, "url", in->url);
    cJSON_AddStringToObject(o, "path", in->path);
    /* Left out unless the client gave it or content makes it a FILE: the
     * server fills it in once it knows (at staging, tes.h [next]). */
    if (in->type_given || in->content)
        cJSON_AddStringToObject(o, "type", tes_file_type_to_string(in->type));
    if (in->content && v == TES_VIEW_FULL)
        cJSON_AddStringToObject(o, "content", in->content);
    if (in->streamable)
        cJSON_AddBoolToObject(o, "streamable", true);
    return o;
}

static cJSON *output_to_cjson(const struct tes_output *out)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "name", out->name);
    add_str(o, "description", out->description);
    cJSON_AddStringToObject(o, "url", out->url);
    cJSON_AddStringToObject(o, "path", out->path);
    add_str(o, "path_prefix", out->path_prefix);
    if (out->type_given)
        cJSON_AddStringToObject(o, "type", tes_file_type_to_string(out->type));
    return o;
}

static cJSON *resources_to_cjson(const struct tes_resources *r)
{
    cJSON *o = cJSON_CreateObject();
    if (r->cpu_cores > 0)
        cJSON_AddNumberToObject(o, "cpu_cores", r->cpu_cores);
    if (r->preemptible_given)
        cJSON_AddBoolToObject(o, "preemptible", r->preemptible);
    if (r->ram_gb > 0)
        cJSON_AddNumberToObject(o, "ram_gb", r->ram_gb);
    if (r->disk_gb > 0)
        cJSON_AddNumberToObject(o, "disk_gb", r->disk_gb);
    if (r->zones)
        cJSON_AddItemToObject(o, "zones", strv_to_cjson(r->zones));
    if (r->n_backend_parameters)
        cJSON_AddItemToObject(o, "backend_parameters",
                              map_to_cjson(r->backend_parameters, r->n_backend_parameters));
    if (r->backend_parameters_strict)
        cJSON_AddBoolToObject(o, "backend_parameters_strict", true);
    return o;
}

static cJSON *executor_log_to_cjson(const struct tes_executor_log *l, enum tes_view v)
{
    cJSON *o = cJSON_CreateObject();
    add_time(o, "start_time", l->start);
    add_time(o, "end_time", l->end);
    if (v == TES_VIEW_FULL) {
        cJSON_AddStringToObject(o, "stdout", l->stdout_tail ? l->stdout_tail : "");
        cJSON_AddStringToObject(o, "stderr", l->stderr_tail ? l->stderr_tail : "");
    }
    cJSON_AddNumberToObject(o, "exit_code", l->exit_code);
    return o;
}

cJSON *tes_task_log_to_cjson(const struct tes_task_log *l, enum tes_view v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *logs = cJSON_AddArrayToObject(o, "logs");
    for (size_t i = 0; i < l->n_logs; i++)
        cJSON_AddItemToArray(logs, executor_log_to_cjson(&l->logs[i], v));
    if (l->n_metadata)
        cJSON_AddItemToObject(o, "metadata", map_to_cjson(l->metadata, l->n_metadata));
    add_time(o, "start_time", l->start);
    add_time(o, "end_time", l->end);
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    for (size_t i = 0; i < l->n_outputs; i++) {
        cJSON *f = cJSON_CreateObject();
        char size[24];
        cJSON_AddStringToObject(f, "url", l->outputs[i].url);
        cJSON_AddStringToObject(f, "path", l->outputs[i].path);
        snprintf(size, sizeof(size), "%" PRIu64, l->outputs[i].size_bytes);
        cJSON_AddStringToObject(f, "size_bytes", size);
        cJSON_AddItemToArray(outputs, f);
    }
    if (v == TES_VIEW_FULL && l->system_logs)
        cJSON_AddItemToObject(o, "system_logs", strv_to_cjson(l->system_logs));
    return o;
}

cJSON *tes_task_to_cjson(const struct tes_task_view *tv, enum tes_view v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", tv->id);
    cJSON_AddStringToObject(o, "state", task_state_to_string(tv->state));
    if (v == TES_VIEW_MINIMAL)
        return o;

    const struct tes_task *t = tv->task;
    add_str(o, "name", t->name);
    add_str(o, "description", t->description);
    if (t->n_inputs) {
        cJSON *a = cJSON_AddArrayToObject(o, "inputs");
        for (size_t i = 0; i < t->n_inputs; i++)
            cJSON_AddItemToArray(a, input_to_cjson(&t->inputs[i], v));
    }
    if (t->n_outputs) {
        cJSON *a = cJSON_AddArrayToObject(o, "outputs");
        for (size_t i = 0; i < t->n_outputs; i++)
            cJSON_AddItemToArray(a, output_to_cjson(&t->outputs[i]));
    }
    if (t->resources.given)
        cJSON_AddItemToObject(o, "resources", resources_to_cjson(&t->resources));
    cJSON *x = cJSON_AddArrayToObject(o, "executors");
    for (size_t i = 0; i < t->n_executors; i++)
        cJSON_AddItemToArray(x, executor_to_cjson(&t->executors[i]));
    if (t->volumes)
        cJSON_AddItemToObject(o, "volumes", strv_to_cjson(t->volumes));
    if (t->n_tags)
        cJSON_AddItemToObject(o, "tags", map_to_cjson(t->tags, t->n_tags));
    cJSON *logs = cJSON_AddArrayToObject(o, "logs");
    if (tv->log)
        cJSON_AddItemToArray(logs, tes_task_log_to_cjson(tv->log, v));
    add_time(o, "creation_time", tv->created);
    return o;
}

cJSON *tes_service_info_to_cjson(const struct tes_service_info *si)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", si->id);
    cJSON_AddStringToObject(o, "name", si->name);
    cJSON *type = cJSON_AddObjectToObject(o, "type");
    cJSON_AddStringToObject(type, "group", "org.ga4gh");
    cJSON_AddStringToObject(type, "artifact", "tes");
    cJSON_AddStringToObject(type, "version", "1.1.0");
    cJSON *org = cJSON_AddObjectToObject(o, "organization");
    cJSON_AddStringToObject(org, "name", si->organization_name);
    cJSON_AddStringToObject(org, "url", si->organization_url);
    cJSON_AddStringToObject(o, "version", si->version);
    cJSON_AddItemToObject(o, "storage", strv_to_cjson(si->storage));
    static char *const parameters[] = {TES_BACKEND_PARAMETERS, NULL};
    cJSON_AddItemToObject(o, "tesResources_backend_parameters", strv_to_cjson(parameters));
    return o;
}
