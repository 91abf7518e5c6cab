/*
 * supervisor-requests: what the HTTP threads ask of the supervisor (see
 * supervisor.h): a submit (backend, quotas, the store, admission), a
 * cancel or delete, and waiting for a task's end. Each takes sv->lock
 * briefly and leaves the rest to the supervisor thread (supervisor.c).
 */
#include "layout.h"
#include "policy-check.h"
#include "supervisor-internal.h"
#include "util/log.h"

#include <sys/eventfd.h>

/* The name of the backend a task goes to: the one it asks for, else
 * docker for a container, else the config's cmd_backend. */
static const char *backend_name(const struct supervisor *sv, const struct task *t)
{
    if (t->backend)
        return t->backend;
    return t->container ? "docker" : sv->cfg->cmd_backend;
}

/* Its backend, or NULL when that one is not running here. -EINVAL when
 * the task asked for a backend that is not configured or cannot run it:
 * the client chose, so the client hears (400). */
static int pick_backend(struct supervisor *sv, const struct task *t, struct backend **ret,
                        struct error *err)
{
    struct backend *b = supervisor_backend(sv, backend_name(sv, t));
    if (t->backend && !b)
        return error_set(err, -EINVAL, "backend: %s is not configured on this proxy", t->backend);
    if (b && !b->ops->handles(t))
        return error_set(err, -EINVAL, "backend: %s cannot run this task", b->ops->name);
    *ret = b;
    return 0;
}

/* A refusal's reason when the code is the expected one's class, else
 * what the code says: a store that failed (503/500) is the store's,
 * whatever step it happened in. */
static enum submit_refusal refusal_of(int code, enum submit_refusal expected)
{
    int status = error_http_status(code);
    if (status == 400)
        return REFUSAL_VALIDATION;
    if (status == 429)
        return REFUSAL_QUOTA;
    if (status >= 500)
        return REFUSAL_STORE;
    return expected;
}

static enum submit_refusal policy_refusal(enum policy_rule rule)
{
    switch (rule) {
    case POLICY_RULE_RUN_AS:
        return REFUSAL_POLICY_RUN_AS;
    case POLICY_RULE_NEVER:
        return REFUSAL_POLICY_NEVER;
    case POLICY_RULE_MAX:
        return REFUSAL_POLICY_MAX;
    case POLICY_RULE_IMAGE:
        return REFUSAL_POLICY_IMAGE;
    case POLICY_RULE_PORTS:
        return REFUSAL_POLICY_PORTS;
    case POLICY_RULE_MOUNTS:
    case _POLICY_RULE_MAX:
        break;
    }
    return REFUSAL_POLICY_MOUNTS;
}

/* Counts a refusal and returns its code. */
static int refused(struct supervisor *sv, enum submit_refusal why, int code)
{
    supervisor_refused(sv, why);
    return code;
}

/* The principal's quotas (quota.h): its stored bytes from the store, then
 * its active tasks, charged with this one under the lock, so that two
 * submits at once cannot both take its last place. */
static int charge(struct supervisor *sv, const struct principal *p, const struct task *t,
                  uint16_t *ret_slot, struct error *err)
{
    if (p->policy->quota.stored) {
        uint64_t stored;
        int r = store_stored_bytes(sv->store, p->name, &stored, err);
        if (r >= 0)
            r = quota_check_stored(p->name, p->policy, stored, err);
        if (r < 0)
            return r;
    }
    pthread_mutex_lock(&sv->lock);
    int r = quota_charge(&sv->quota, p->name, p->policy, t->cores, t->memory, ret_slot, err);
    pthread_mutex_unlock(&sv->lock);
    return r;
}

/* A task's stdout or stderr when it names none: in its directory, or
 * where its backend's nodes write (backend.h, output_path). */
static char *default_output(struct supervisor *sv, struct backend *b, const char *id,
                            const char *name)
{
    if (b && b->ops->output_path)
        return b->ops->output_path(b->state, id, name);
    return layout_task_file(sv->cfg->data_dir, id, name);
}

/* The host's capacity, for a task that runs on this host. */
static int check_capacity(const struct config *cfg, const struct task *t, struct error *err)
{
    char buf[32], cap[32];

    if (t->cores > cfg->capacity_cores + 1e-9)
        return error_set(err, -EINVAL, "cores: %g exceeds the host's capacity of %g %s", t->cores,
                         cfg->capacity_cores, cfg->capacity_cores == 1 ? "core" : "cores");
    if (t->memory > cfg->capacity_memory && t->memory_bare_unit) {
        /* Most likely a number meant in another unit: say how it was read. */
        _cleanup_free_ char *reading = bare_size_reading(t->memory, t->memory_bare_unit);
        return error_set(err, -EINVAL, "memory: %s; the host's capacity is %s", reading,
                         format_size_human(cfg->capacity_memory, cap));
    }
    if (t->memory > cfg->capacity_memory)
        return error_set(err, -EINVAL, "memory: %s exceeds the host's capacity of %s",
                         format_size_human(t->memory, buf),
                         format_size_human(cfg->capacity_memory, cap));
    return 0;
}

int supervisor_submit(struct supervisor *sv, const struct principal *p, struct task *t,
                      struct task_record **ret, struct error *err)
{
    const struct config *cfg = sv->cfg;

    enum policy_rule rule;
    int r = policy_check_task(cfg, p, t, &rule, err);
    if (r < 0)
        return refused(sv, r == -EACCES ? policy_refusal(rule) : refusal_of(r, REFUSAL_VALIDATION),
                       r);
    policy_apply_defaults(cfg, p->policy, t);
    struct backend *b = NULL;
    r = pick_backend(sv, t, &b, err);
    if (r < 0)
        return refused(sv, REFUSAL_BACKEND, r);
    /* A remote backend's cluster has its own capacity and scheduler. */
    r = b && b->ops->remote ? 0 : check_capacity(cfg, t, err);
    if (r < 0)
        return refused(sv, REFUSAL_CAPACITY, r);

    if (b) {
        r = backend_check(b, t, err);
        if (r < 0)
            return refused(sv, REFUSAL_BACKEND, r);
    }
    uint16_t slot = 0;
    if (b) {
        r = charge(sv, p, t, &slot, err);
        if (r < 0)
            return refused(sv, refusal_of(r, REFUSAL_QUOTA), r);
    }

    _cleanup_record_ struct task_record *rec = xcalloc(1, sizeof(*rec));
    uuid_v4(rec->id);
    rec->user = xstrdup(t->user);
    rec->principal = xstrdup(p->name);
    rec->name = t->name ? xstrdup(t->name) : NULL;
    /* No backend takes it: a container task in a build without Docker, or
     * a task of a backend the config's backends leave out (the sidecar's
     * command tasks). */
    rec->backend = xstrdup(b ? b->ops->name : backend_name(sv, t));
    rec->state = b ? TASK_QUEUED : TASK_SYSTEM_ERROR;
    rec->exit_code = -1;
    rec->reason = b              ? NULL
                  : t->container ? xstrdup("no container backend configured")
                                 : xasprintf("no %s backend configured: this proxy runs "
                                             "containers only (backends in its config)",
                                             backend_name(sv, t));
    rec->created = now_realtime();
    if (!b)
        rec->finished = rec->created;
    rec->spec = task_record_spec(t);
    rec->stdout_path =
        t->stdout_path ? xstrdup(t->stdout_path) : default_output(sv, b, rec->id, LAYOUT_STDOUT);
    rec->stderr_path =
        t->stderr_path ? xstrdup(t->stderr_path) : default_output(sv, b, rec->id, LAYOUT_STDERR);

    r = store_insert(sv->store, rec, err);
    if (r < 0) {
        pthread_mutex_lock(&sv->lock);
        quota_dequeued(&sv->quota, slot);
        quota_release(&sv->quota, slot, t->cores, t->memory);
        pthread_mutex_unlock(&sv->lock);
        return refused(sv, refusal_of(r, REFUSAL_STORE), r);
    }

    if (!b) {
        supervisor_refused(sv, REFUSAL_NO_BACKEND);
        log_info("task %s SYSTEM_ERROR: %s", rec->id, rec->reason);
        sv_retain(sv, rec->finished);
        error_set(err, -ENOSYS, "%s", rec->reason);
        *ret = TAKE_PTR(rec);
        return -ENOSYS;
    }

    struct sv_task *st = xcalloc(1, sizeof(*st));
    memcpy(st->id, rec->id, sizeof(st->id));
    st->q.seq = rec->seq;
    st->state = TASK_QUEUED;
    st->principal = slot;
    st->q.cores = admission_cores(t->cores);
    st->q.memory = t->memory;
    st->q.priority = (int16_t) t->priority;
    st->q.uncounted = b->ops->remote;
    st->backend = (uint8_t) (b - sv->backends);
    sv_task_keep_ready(st, t, rec);
    pthread_mutex_lock(&sv->lock);
    sv_active_add(sv, st);
    admission_enqueue(&sv->adm, &st->q, p->name, p->policy->weight);
    pthread_mutex_unlock(&sv->lock);
    metric_inc(&sv->metrics.submits[st->backend]);
    LOG_CONTEXT_TASK(rec->id, p->name);
    log_info("task %s QUEUED (principal %s, user %s, %s)", rec->id, rec->principal, rec->user,
             b->ops->name);
    sv_post_schedule(sv);
    *ret = TAKE_PTR(rec);
    return 0;
}

/* Cancels an active task: 1 when it was active, 0 when it was not (it
 * ended, or never was), negative when the store failed. */
static int cancel_active(struct supervisor *sv, const char *id)
{
    pthread_mutex_lock(&sv->lock);
    struct sv_task *t = hashmap_get(sv->active, id);
    if (t && t->state == TASK_QUEUED) {
        /* Never started: cancelled on the spot. */
        admission_remove(&sv->adm, &t->q);
        quota_dequeued(&sv->quota, t->principal);
        quota_release(&sv->quota, t->principal, sv_task_cores(t), t->q.memory);
        sv_active_remove(sv, t);
        pthread_mutex_unlock(&sv->lock);
        struct task_outcome o;
        outcome_classify(&(struct outcome_facts){.canceled = true, .exit_code = -1}, &o);
        sv_metrics_ended(sv, t->backend, o.state, 0, o.finished);
        log_info("task %s %s: %s (was queued)", id, task_state_to_string(o.state), o.reason);
        store_update_state(sv->store, id, o.state, o.exit_code, o.reason, 0, o.finished, true);
        sv_retain(sv, o.finished);
        task_outcome_done(&o);
        sv_task_free(t);
        int r = store_sync(sv->store);
        return r < 0 ? r : 1;
    }
    if (t) {
        bool first = t->state != TASK_CANCELING;
        if (first) {
            sv_set_state(sv, t, TASK_CANCELING);
            t->cancel_pending = true;
        }
        pthread_mutex_unlock(&sv->lock);
        if (first) {
            log_info("task %s CANCELING", id);
            store_update_state(sv->store, id, TASK_CANCELING, -1, NULL, 0, 0, false);
            sv_post_kind(sv, EV_CANCEL, id);
        }
        int r = store_sync(sv->store);
        return r < 0 ? r : 1;
    }
    pthread_mutex_unlock(&sv->lock);
    return 0;
}

int supervisor_cancel(struct supervisor *sv, const char *id, struct error *err)
{
    int r = cancel_active(sv, id);
    if (r < 0)
        return error_set_errno(err, r, "cancel task %s", id);
    return 0;
}

int supervisor_delete(struct supervisor *sv, const char *id, struct error *err)
{
    int r = cancel_active(sv, id);
    if (r < 0)
        return error_set_errno(err, r, "cancel task %s", id);
    if (r > 0)
        return 0;

    /* Ended (or unknown): remove the record, then its files. */
    r = store_delete(sv->store, id, err);
    if (r < 0)
        return r;
    sv_remove_files(sv, id);
    log_info("task %s deleted", id);
    return 0;
}

bool supervisor_is_active(struct supervisor *sv, const char *id)
{
    pthread_mutex_lock(&sv->lock);
    bool r = hashmap_get(sv->active, id) != NULL;
    pthread_mutex_unlock(&sv->lock);
    return r;
}

int supervisor_watch_end(struct supervisor *sv, const char *id)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct watch *w = xcalloc(1, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%s", id);
    w->fd = fd;
    pthread_mutex_lock(&sv->lock);
    bool active = hashmap_get(sv->active, id) != NULL;
    w->next = sv->watches;
    sv->watches = w;
    pthread_mutex_unlock(&sv->lock);
    if (!active) {
        /* Ended already; its last update may still be queued. */
        (void) store_sync(sv->store);
        (void) eventfd_write(fd, 1);
    }
    return fd;
}

void supervisor_unwatch(struct supervisor *sv, int fd)
{
    if (fd < 0)
        return;
    pthread_mutex_lock(&sv->lock);
    for (struct watch **p = &sv->watches; *p; p = &(*p)->next)
        if ((*p)->fd == fd) {
            struct watch *w = *p;
            *p = w->next;
            free(w);
            break;
        }
    pthread_mutex_unlock(&sv->lock);
    close(fd);
}

char *supervisor_describe(struct supervisor *sv, const char *id)
{
    char *s = NULL;
    struct backend *b = NULL;
    pthread_mutex_lock(&sv->lock);
    struct sv_task *t = hashmap_get(sv->active, id);
    if (t && t->state == TASK_QUEUED)
        s = admission_describe(&sv->adm, &t->q);
    else if (t)
        b = sv_backend(sv, t);
    pthread_mutex_unlock(&sv->lock);
    /* Started, and queued in its backend's own queue (EV_QUEUED). */
    if (b && b->ops->describe)
        s = b->ops->describe(b->state, id);
    return s;
}
