/*
 * outcome: a task's outcome as a file, and the words every backend uses
 * for it (see backend.h). Apart from backend.c so that ocps-shim links
 * it without the backend table (and libcurl behind it).
 */
#include "backend.h"
#include "util/json.h"

#include <inttypes.h>

char *task_outcome_bytes(uint64_t b)
{
    if (b % (1ULL << 30) == 0)
        return xasprintf("%" PRIu64 " GiB", b >> 30);
    if (b % (1ULL << 20) == 0)
        return xasprintf("%" PRIu64 " MiB", b >> 20);
    if (b % (1ULL << 10) == 0)
        return xasprintf("%" PRIu64 " KiB", b >> 10);
    return xasprintf("%" PRIu64 " bytes", b);
}

int task_outcome_write(const char *task_dir, const struct task_outcome *o, bool sync)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "state", task_state_to_string(o->state));
    cJSON_AddNumberToObject(j, "exit_code", o->exit_code);
    cJSON_AddNumberToObject(j, "signal", o->signal);
    cJSON_AddStringToObject(j, "reason", o->reason ? o->reason : "");
    cJSON_AddNumberToObject(j, "started", (double) o->started);
    cJSON_AddNumberToObject(j, "finished", (double) o->finished);
    _cleanup_free_ char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    _cleanup_free_ char *path = xasprintf("%s/exit.json", task_dir);
    return sync ? write_file_atomic(path, text, strlen(text), 0600)
                : write_file_replace(path, text, strlen(text), 0600);
}

int task_outcome_read(const char *task_dir, struct task_outcome *o)
{
    _cleanup_free_ char *path = xasprintf("%s/exit.json", task_dir);
    _cleanup_free_ char *data = NULL;
    int r = read_file(path, 1 << 20, &data, NULL);
    if (r < 0)
        return r;
    cJSON *j = cJSON_Parse(data);
    if (!j)
        return -EBADMSG;
    const char *st = json_str(j, "state"), *rs = json_str(j, "reason");
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(j, "exit_code");
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(j, "signal");
    int state = st ? task_state_from_string(st) : -EINVAL;
    if (state < 0 || !task_state_is_final(state) || !cJSON_IsNumber(ec)) {
        cJSON_Delete(j);
        return -EBADMSG;
    }
    *o = (struct task_outcome){
        .state = state,
        .exit_code = ec->valueint,
        .signal = cJSON_IsNumber(sg) ? sg->valueint : 0,
        .reason = xstrdup(rs ? rs : ""),
        .started = (usec_t) json_u64(j, "started"),
        .finished = (usec_t) json_u64(j, "finished"),
    };
    cJSON_Delete(j);
    return 0;
}
