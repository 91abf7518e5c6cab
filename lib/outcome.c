/* outcome: see outcome.h. */
#include "outcome.h"
#include "layout.h"
#include "util/json.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>

void task_outcome_done(struct task_outcome *o)
{
    free((char *) o->reason);
    o->reason = NULL;
}

static const char *sig_name(int sig)
{
    const char *n = sigabbrev_np(sig);
    return n ? n : "?";
}

void outcome_classify(const struct outcome_facts *f, struct task_outcome *o)
{
    char mem[32], out[32];
    bool killed = f->signal == SIGKILL;
    bool cpu_over = f->cputime && f->cpu_used >= (usec_t) f->cputime * USEC_PER_SEC * 99 / 100;
    char *reason;

    *o = (struct task_outcome){
        .state = TASK_EXECUTOR_ERROR,
        .exit_code = f->exit_code,
        .signal = f->signal,
        .started = f->started,
        .finished = f->finished ? f->finished : now_realtime(),
    };
    format_size_human(f->memory, mem);

    if (f->start_error) {
        o->state = f->start_error_system ? TASK_SYSTEM_ERROR : TASK_EXECUTOR_ERROR;
        o->exit_code = -1;
        o->signal = 0;
        reason = xstrdup(f->start_error);
    } else if (f->canceled) {
        o->state = TASK_CANCELED;
        reason = xstrdup("cancelled by request");
    } else if (f->walltime_hit) {
        reason = xasprintf("killed: walltime limit %" PRIu64 " s exceeded", f->walltime);
    } else if (f->cputime &&
               (f->cputime_hit || f->signal == SIGXCPU || (killed && cpu_over && !f->oom))) {
        reason = xasprintf("killed: cputime limit %" PRIu64 " s exceeded", f->cputime);
    } else if (f->output_hit) {
        reason = xasprintf("killed: output limit %s exceeded", format_size_human(f->output, out));
    } else if (f->oom && killed) {
        reason = xasprintf("killed: memory limit %s exceeded (OOM)", mem);
    } else if (f->system_error) {
        o->state = TASK_SYSTEM_ERROR;
        reason = xstrdup(f->system_error);
    } else if (f->external_signal) {
        o->state = TASK_SYSTEM_ERROR;
        reason = xasprintf("stopped from outside the proxy by signal %d (%s)%s%s; exit status %d",
                           f->external_signal, sig_name(f->external_signal),
                           f->external_hint ? ": " : "", f->external_hint ? f->external_hint : "",
                           f->exit_code);
    } else if (f->signal) {
        reason = xasprintf("killed by signal %d (%s)", f->signal, sig_name(f->signal));
    } else if (f->exit_code == 0) {
        o->state = TASK_COMPLETE;
        reason = xstrdup("exited with status 0");
    } else if (f->oom) {
        reason = xasprintf("exited with status %d: a process was killed, memory limit %s "
                           "exceeded (OOM)",
                           f->exit_code, mem);
    } else {
        reason = xasprintf("exited with status %d", f->exit_code);
    }
    o->reason = reason;
}

cJSON *task_outcome_to_cjson(const struct task_outcome *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "state", task_state_to_string(o->state));
    cJSON_AddNumberToObject(j, "exit_code", o->exit_code);
    cJSON_AddNumberToObject(j, "signal", o->signal);
    cJSON_AddStringToObject(j, "reason", o->reason ? o->reason : "");
    cJSON_AddNumberToObject(j, "started", (double) o->started);
    cJSON_AddNumberToObject(j, "finished", (double) o->finished);
    return j;
}

int task_outcome_from_cjson(const cJSON *j, struct task_outcome *o)
{
    const char *st = json_str(j, "state"), *rs = json_str(j, "reason");
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(j, "exit_code");
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(j, "signal");
    int state = st ? task_state_from_string(st) : -EINVAL;
    if (state < 0 || !task_state_is_final(state) || !cJSON_IsNumber(ec))
        return -EBADMSG;
    *o = (struct task_outcome){
        .state = state,
        .exit_code = ec->valueint,
        .signal = cJSON_IsNumber(sg) ? sg->valueint : 0,
        .reason = xstrdup(rs ? rs : ""),
        .started = (usec_t) json_u64(j, "started"),
        .finished = (usec_t) json_u64(j, "finished"),
    };
    return 0;
}

int task_outcome_write(const char *task_dir, const struct task_outcome *o, bool sync)
{
    cJSON *j = task_outcome_to_cjson(o);
    _cleanup_free_ char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    _cleanup_free_ char *path = layout_in_task_dir(task_dir, LAYOUT_OUTCOME);
    return sync ? write_file_atomic(path, text, strlen(text), 0600)
                : write_file_replace(path, text, strlen(text), 0600);
}

int task_outcome_read(const char *task_dir, struct task_outcome *o)
{
    _cleanup_free_ char *path = layout_in_task_dir(task_dir, LAYOUT_OUTCOME);
    _cleanup_free_ char *data = NULL;
    int r = read_file(path, 1 << 20, &data, NULL);
    if (r < 0)
        return r;
    cJSON *j = cJSON_Parse(data);
    if (!j)
        return -EBADMSG;
    r = task_outcome_from_cjson(j, o);
    cJSON_Delete(j);
    return r;
}
