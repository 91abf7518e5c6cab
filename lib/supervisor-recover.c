/*
 * supervisor-recover: after a restart, the supervisor reattaches to every
 * task the store says is active (QUEUED, INITIALIZING, RUNNING,
 * CANCELING): queued ones go back in their principal's queue in their
 * place (by priority, then seq: the order they had), the others
 * are handed to their backend's recover(), which reports how they end.
 * Nothing runs twice: a task a backend proves never started is queued
 * again; one that may have run is never started again.
 */
#include "supervisor-internal.h"
#include "util/log.h"

struct recover_ctx {
    struct task_record **recs;
    size_t n, alloc;
};

static int collect(const struct task_record *r, void *userdata)
{
    struct recover_ctx *c = userdata;
    c->recs = xgrow(c->recs, &c->alloc, c->n + 1, sizeof(*c->recs));
    c->recs[c->n++] = task_record_copy(r);
    return 0;
}

/* Whether a task fits the host at all: the capacity may have shrunk in
 * the config since it was admitted, and one that can never start would
 * end up holding every other task back (admission.h, the bound). */
static bool fits_host(const struct supervisor *sv, const struct sv_task *t)
{
    return t->q.uncounted || (t->q.cores <= sv->adm.cap_cores && t->q.memory <= sv->adm.cap_memory);
}

/* Reattaches to one task the store says is active. */
static void recover_one(struct supervisor *sv, struct task_record *rec)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct sv_task *t = xcalloc(1, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", rec->id);
    t->q.seq = rec->seq;
    t->state = rec->state;
    t->handle = rec->handle ? xstrdup(rec->handle) : NULL;
    struct backend *b = supervisor_backend(sv, rec->backend);
    t->backend = b ? (uint8_t) (b - sv->backends) : 0;
    t->q.uncounted = b && b->ops->remote;
    const char *principal = rec->principal ? rec->principal : "";
    const struct policy *pol = policy_lookup(&sv->cfg->policy, principal);

    _cleanup_task_ struct task *task = NULL;
    int r = task_record_task(rec, &task, &err);
    if (r >= 0) {
        t->q.cores = admission_cores(task->cores);
        t->q.memory = task->memory;
        t->q.priority = (int16_t) task->priority;
    }
    /* Counted against its principal again, as it was before the restart. */
    pthread_mutex_lock(&sv->lock);
    sv_active_add(sv, t);
    t->principal = quota_count(&sv->quota, rec->principal, sv_task_cores(t), t->q.memory);
    pthread_mutex_unlock(&sv->lock);

    if (r < 0) {
        _cleanup_free_ char *reason = xasprintf("cannot recover: %s", error_message(&err));
        pthread_mutex_lock(&sv->lock);
        sv_set_state(sv, t, TASK_QUEUED); /* holds no capacity */
        pthread_mutex_unlock(&sv->lock);
        sv_fail_task(sv, t, reason);
        return;
    }
    if (!b) {
        _cleanup_free_ char *reason =
            xasprintf("cannot recover: backend %s is not available", rec->backend);
        pthread_mutex_lock(&sv->lock);
        sv_set_state(sv, t, TASK_QUEUED);
        pthread_mutex_unlock(&sv->lock);
        sv_fail_task(sv, t, reason);
        return;
    }

    _cleanup_free_ char *dir = sv_task_dir(sv, t->id);
    struct backend_start s = {
        .id = t->id,
        .task = task,
        .task_dir = dir,
        .stdout_path = rec->stdout_path,
        .stderr_path = rec->stderr_path,
        .output_limit = pol->max.output,
    };
    r = backend_recover(b, &s, t->handle, &err);
    if (r == -ENOENT) {
        /* It never started: it goes back in the queue, in its place. */
        if (rec->state != TASK_QUEUED) {
            log_info("task %s never started; queued again", t->id);
            store_update_state(sv->store, t->id, TASK_QUEUED, -1, NULL, 0, 0, false);
        }
        pthread_mutex_lock(&sv->lock);
        sv_set_state(sv, t, TASK_QUEUED);
        pthread_mutex_unlock(&sv->lock);
        free(t->handle); /* of a start that never happened; the next start makes its own */
        t->handle = NULL;
        if (rec->state == TASK_CANCELING) {
            sv_fail_task(sv, t, NULL); /* cancelled */
            return;
        }
        if (!fits_host(sv, t)) {
            char want[32], cap[32];
            double cores = (double) t->q.cores / ADMISSION_CORE,
                   cap_cores = (double) sv->adm.cap_cores / ADMISSION_CORE;
            _cleanup_free_ char *reason = xasprintf(
                "cannot start: needs %g %s and %s, more than the host's capacity of %g %s and %s",
                cores, cores == 1 ? "core" : "cores", format_size_human(t->q.memory, want),
                cap_cores, cap_cores == 1 ? "core" : "cores",
                format_size_human(sv->adm.cap_memory, cap));
            log_error("task %s: %s", t->id, reason);
            sv_fail_task(sv, t, reason);
            return;
        }
        pthread_mutex_lock(&sv->lock);
        sv_set_state(sv, t, TASK_QUEUED);
        admission_enqueue(&sv->adm, &t->q, principal, pol->weight);
        quota_queued(&sv->quota, t->principal);
        pthread_mutex_unlock(&sv->lock);
        return;
    }
    pthread_mutex_lock(&sv->lock);
    if (t->state == TASK_QUEUED)
        sv_set_state(sv, t, TASK_INITIALIZING);
    admission_hold(&sv->adm, &t->q, principal, pol->weight);
    pthread_mutex_unlock(&sv->lock);
    if (r < 0) {
        _cleanup_free_ char *reason = xasprintf("cannot recover: %s", error_message(&err));
        log_error("task %s: %s", t->id, reason);
        sv_fail_task(sv, t, reason);
        return;
    }
    log_info("task %s recovered (%s)", t->id, task_state_to_string(t->state));
    if (t->state == TASK_CANCELING)
        sv_post_kind(sv, EV_CANCEL, t->id);
}

int sv_recover(struct supervisor *sv, struct error *err)
{
    struct recover_ctx c = {0};
    struct store_filter f = {.state = -1, .active_only = true};
    int r = store_list(sv->store, &f, collect, &c, err);
    if (r >= 0)
        for (size_t i = 0; i < c.n; i++)
            recover_one(sv, c.recs[i]);
    for (size_t i = 0; i < c.n; i++)
        task_record_free(c.recs[i]);
    free(c.recs);
    return r;
}
