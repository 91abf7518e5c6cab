/*
 * supervisor: see supervisor.h.
 *
 * Locking: sv->lock guards the active map, the queues, the capacity
 * counters, the event list and the retention's next due time. HTTP
 * threads take it briefly to admit or cancel; backend threads only append
 * events under it. Backend slots are called by the supervisor thread
 * without the lock held (backend.h).
 */
#include "layout.h"
#include "policy-check.h"
#include "supervisor-internal.h"
#include "util/log.h"

#include <inttypes.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#define SV_READY_MAX 256
static unsigned n_ready; /* atomic: tasks holding a struct sv_ready */

static struct sv_task *sv_task_of(struct admission_entry *e)
{
    return e ? (struct sv_task *) ((char *) e - offsetof(struct sv_task, q)) : NULL;
}

static void sv_ready_free(struct sv_ready *r)
{
    if (!r)
        return;
    task_free(r->task);
    free(r->stdout_path);
    free(r->stderr_path);
    free(r);
    __atomic_sub_fetch(&n_ready, 1, __ATOMIC_RELAXED);
}

static void sv_ready_freep(struct sv_ready **r)
{
    sv_ready_free(*r);
}

struct sv_task *sv_task_free(struct sv_task *t)
{
    if (t) {
        sv_ready_free(t->ready);
        free(t->handle);
        free(t);
    }
    return NULL;
}

void sv_task_keep_ready(struct sv_task *st, const struct task *t, const struct task_record *rec)
{
    if (__atomic_add_fetch(&n_ready, 1, __ATOMIC_RELAXED) > SV_READY_MAX) {
        __atomic_sub_fetch(&n_ready, 1, __ATOMIC_RELAXED);
        return;
    }
    st->ready = xmalloc(sizeof(*st->ready));
    *st->ready = (struct sv_ready){
        .created = rec->created,
        .task = task_copy(t),
        .stdout_path = xstrdup(rec->stdout_path),
        .stderr_path = xstrdup(rec->stderr_path),
    };
}

char *sv_task_dir(const struct supervisor *sv, const char *id)
{
    return layout_task_dir(sv->cfg->data_dir, id);
}

void sv_remove_files(struct supervisor *sv, const char *id)
{
    _cleanup_free_ char *dir = sv_task_dir(sv, id);
    int r = rm_rf(dir);
    if (r < 0)
        log_warn("task %s: remove %s: %s", id, dir, strerror(-r));
    /* Its output's directory where a backend's nodes wrote it: the
     * task's user's, removed without following anything in it (rm_rf). */
    for (size_t i = 0; i < sv->n_backends; i++) {
        struct backend *b = &sv->backends[i];
        if (!b->ops->output_path)
            continue;
        _cleanup_free_ char *out = b->ops->output_path(b->state, id, LAYOUT_STDOUT);
        char *slash = strrchr(out, '/');
        if (slash)
            *slash = '\0';
        r = rm_rf(out);
        if (r < 0)
            log_warn("task %s: remove %s: %s", id, out, strerror(-r));
    }
}

/* ---- events (any thread) ---- */

static void post(struct supervisor *sv, struct event *e)
{
    pthread_mutex_lock(&sv->lock);
    if (sv->ev_tail)
        sv->ev_tail->next = e;
    else
        sv->ev_head = e;
    sv->ev_tail = e;
    pthread_cond_signal(&sv->wake);
    pthread_mutex_unlock(&sv->lock);
}

/* A request to look at the queue: a flag, not an event per submit. */
void sv_post_schedule(struct supervisor *sv)
{
    pthread_mutex_lock(&sv->lock);
    if (!sv->schedule_pending) {
        sv->schedule_pending = true;
        pthread_cond_signal(&sv->wake);
    }
    pthread_mutex_unlock(&sv->lock);
}

void sv_post_kind(struct supervisor *sv, enum event_kind k, const char *id)
{
    struct event *e = xcalloc(1, sizeof(*e));
    e->kind = k;
    if (id)
        snprintf(e->id, sizeof(e->id), "%s", id);
    post(sv, e);
}

static void on_running(void *userdata, const char *id, usec_t started)
{
    struct event *e = xcalloc(1, sizeof(*e));
    e->kind = EV_RUNNING;
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->started = started;
    post(userdata, e);
}

static void on_queued(void *userdata, const char *id)
{
    sv_post_kind(userdata, EV_QUEUED, id);
}

static void on_ended(void *userdata, const char *id, const struct task_outcome *o)
{
    struct event *e = xcalloc(1, sizeof(*e));
    e->kind = EV_ENDED;
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->outcome = *o;
    e->outcome.reason = o->reason ? xstrdup(o->reason) : NULL;
    post(userdata, e);
}

/* ---- the supervisor thread ---- */

static int load_task(struct supervisor *sv, const char *id, struct task_record **ret_rec,
                     struct task **ret_task, struct error *err)
{
    _cleanup_record_ struct task_record *rec = NULL;
    int r = store_get(sv->store, id, &rec, err);
    if (r < 0)
        return r;
    r = task_record_task(rec, ret_task, err);
    if (r < 0)
        return r;
    *ret_rec = TAKE_PTR(rec);
    return 0;
}

/* An end is fsync'd with its state (a group commit with whatever else
 * is queued). The task's capacity is free at once; its backend's release
 * and its watchers wait for the commit (committed()). */
static void end_task(struct supervisor *sv, struct sv_task *t, const struct task_outcome *o)
{
    usec_t finished = o->finished ? o->finished : now_realtime();
    sv_metrics_ended(sv, t->backend, o->state, o->started, finished);
    log_info("task %s %s: %s", t->id, task_state_to_string(o->state), o->reason ? o->reason : "");
    /* What its files keep under the data dir, for its principal's
     * stored-bytes quota (its output ended with it); queued first, so
     * that whoever sees the end sees these bytes counted. */
    _cleanup_free_ char *dir = sv_task_dir(sv, t->id);
    store_update_stored(sv->store, t->id, quota_dir_bytes(dir));
    store_update_state(sv->store, t->id, o->state, o->exit_code, o->reason, o->started, finished,
                       true);
    struct ended *e = xcalloc(1, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", t->id);
    e->backend = sv_backend(sv, t);
    e->handle = TAKE_PTR(t->handle);
    e->next = sv->ended;
    sv->ended = e;
    sv_retain(sv, finished);
    pthread_mutex_lock(&sv->lock);
    if (t->state != TASK_QUEUED)
        admission_release(&sv->adm, &t->q);
    quota_release(&sv->quota, t->principal, sv_task_cores(t), t->q.memory);
    sv_active_remove(sv, t);
    pthread_mutex_unlock(&sv->lock);
    sv_task_free(t);
}

/* What a commit callback needs of the supervisor, and outlives it: a
 * commit that failed at a shutdown is retried, and called back, until
 * the store closes, after supervisor_free. */
struct sv_hub {
    pthread_mutex_t lock;
    struct supervisor *sv; /* NULL once the supervisor is gone */
    unsigned refs;         /* the supervisor's, and one per commit handed over */
};

static void hub_unref(struct sv_hub *h)
{
    pthread_mutex_lock(&h->lock);
    bool last = --h->refs == 0;
    pthread_mutex_unlock(&h->lock);
    if (last) {
        pthread_mutex_destroy(&h->lock);
        free(h);
    }
}

struct committed {
    struct sv_hub *hub;
    struct ended *ended;
};

static void ended_free(struct ended *list)
{
    for (struct ended *x = list, *n; x; x = n) {
        n = x->next;
        free(x->handle);
        free(x);
    }
}

/* The store's writer thread: the ends handed over are on disk. */
static void on_committed(void *userdata, int result)
{
    struct committed *c = userdata;
    struct event *e = xcalloc(1, sizeof(*e));
    e->kind = EV_COMMITTED;
    e->ended = c->ended;
    /* The store closed first: nothing is released, a restart recovers these. */
    if (result < 0)
        for (struct ended *x = e->ended; x; x = x->next)
            x->backend = NULL;
    pthread_mutex_lock(&c->hub->lock);
    bool posted = c->hub->sv != NULL;
    if (posted)
        post(c->hub->sv, e);
    pthread_mutex_unlock(&c->hub->lock);
    if (!posted) {
        ended_free(e->ended);
        free(e);
    }
    hub_unref(c->hub);
    free(c);
}

/* After a batch of events: the ends it recorded, handed to the store's
 * next commit (one fsync for all of them and whatever else is queued). */
static void commit_ends(struct supervisor *sv)
{
    if (!sv->ended)
        return;
    struct committed *c = xmalloc(sizeof(*c));
    c->hub = sv->hub;
    c->ended = TAKE_PTR(sv->ended);
    pthread_mutex_lock(&sv->hub->lock);
    sv->hub->refs++;
    pthread_mutex_unlock(&sv->hub->lock);
    store_when_committed(sv->store, on_committed, c);
}

/* The ends are on disk: what the backends keep of those tasks goes, and
 * their watchers hear. */
static void committed(struct supervisor *sv, struct ended *list)
{
    for (struct ended *x = list; x; x = x->next)
        if (x->backend)
            backend_release(x->backend, x->id, x->handle);
    pthread_mutex_lock(&sv->lock);
    for (struct watch *w = sv->watches; w; w = w->next)
        for (struct ended *x = list; x; x = x->next)
            if (streq(w->id, x->id))
                (void) eventfd_write(w->fd, 1);
    pthread_mutex_unlock(&sv->lock);
}

/* Ended by the supervisor itself: it could not start or recover the task
 * (a system error, with the reason), or it was cancelled before it ran. */
void sv_fail_task(struct supervisor *sv, struct sv_task *t, const char *reason)
{
    struct task_outcome o;
    outcome_classify(
        &(struct outcome_facts){.canceled = !reason, .system_error = reason, .exit_code = -1}, &o);
    end_task(sv, t, &o);
    task_outcome_done(&o);
}

static void start_one(struct supervisor *sv, struct sv_task *t)
{
    LOG_CONTEXT_TASK(t->id, t->q.principal ? t->q.principal->name : NULL);
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_record_ struct task_record *rec = NULL;
    _cleanup_task_ struct task *task = NULL;
    _cleanup_free_ char *dir = sv_task_dir(sv, t->id);
    _cleanup_free_ char *handle = NULL;
    /* Only this thread touches a dequeued task's ready. */
    _cleanup_(sv_ready_freep) struct sv_ready *ready = TAKE_PTR(t->ready);
    const char *out_path = NULL, *err_path = NULL;
    usec_t created = 0;
    int r = 0;

    if (ready) {
        task = TAKE_PTR(ready->task);
        out_path = ready->stdout_path;
        err_path = ready->stderr_path;
        created = ready->created;
    } else {
        r = load_task(sv, t->id, &rec, &task, &err);
        if (r >= 0) {
            out_path = rec->stdout_path;
            err_path = rec->stderr_path;
            created = rec->created;
        }
    }
    usec_t now = now_realtime();
    if (r >= 0 && created > 0 && now >= created)
        metric_observe(&sv->metrics.queue_wait[t->backend], (uint64_t) (now - created));
    if (r == -ENOENT) {
        /* Deleted meanwhile: nothing to run. */
        pthread_mutex_lock(&sv->lock);
        admission_release(&sv->adm, &t->q);
        quota_release(&sv->quota, t->principal, sv_task_cores(t), t->q.memory);
        sv_active_remove(sv, t);
        pthread_mutex_unlock(&sv->lock);
        sv_task_free(t);
        return;
    }
    if (r >= 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
        r = error_set_errno(&err, -errno, "mkdir %s", dir);
    if (r >= 0) {
        /* The admission entry names its principal: no lock needed to read it. */
        const struct policy *pol =
            policy_lookup(&sv->cfg->policy, t->q.principal ? t->q.principal->name : NULL);
        struct backend_start s = {
            .id = t->id,
            .task = task,
            .task_dir = dir,
            .stdout_path = out_path,
            .stderr_path = err_path,
            .port_address = pol->port_address,
            /* Its walltime counts from here, whatever holds it up before its command runs. */
            .admitted = now,
            .output_limit = pol->max.output,
        };
        r = backend_start(sv_backend(sv, t), &s, &handle, &err);
    }
    if (r < 0) {
        log_error("task %s: start: %s", t->id, error_message(&err));
        _cleanup_free_ char *reason = xasprintf("start failed: %s", error_message(&err));
        sv_fail_task(sv, t, reason);
        return;
    }
    log_info("task %s INITIALIZING on %s (principal %s, cores %g, memory %" PRIu64 " bytes)", t->id,
             sv_backend(sv, t)->ops->name, t->q.principal->name,
             (double) t->q.cores / ADMISSION_CORE, t->q.memory);
    /* One update for both: a crash before it lands leaves the task QUEUED
     * in the store, and recovery asks the backend, which knows. */
    store_update_started(sv->store, t->id, handle);
    pthread_mutex_lock(&sv->lock);
    t->handle = TAKE_PTR(handle);
    pthread_mutex_unlock(&sv->lock);
}

static void schedule(struct supervisor *sv)
{
    for (;;) {
        pthread_mutex_lock(&sv->lock);
        struct sv_task *t = sv->stopping ? NULL : sv_task_of(admission_next(&sv->adm));
        if (t) {
            sv_set_state(sv, t, TASK_INITIALIZING);
            quota_dequeued(&sv->quota, t->principal);
        }
        pthread_mutex_unlock(&sv->lock);
        if (!t)
            return;
        start_one(sv, t);
    }
}

static void handle_event(struct supervisor *sv, struct event *e)
{
    pthread_mutex_lock(&sv->lock);
    struct sv_task *t = hashmap_get(sv->active, e->id);
    LOG_CONTEXT_TASK(e->id, t && t->q.principal ? t->q.principal->name : NULL);
    pthread_mutex_unlock(&sv->lock);

    switch (e->kind) {
    case EV_SCHEDULE:
        break;
    case EV_RUNNING:
        if (!t)
            break;
        pthread_mutex_lock(&sv->lock);
        bool canceling = t->state == TASK_CANCELING;
        if (!canceling)
            sv_set_state(sv, t, TASK_RUNNING);
        pthread_mutex_unlock(&sv->lock);
        store_update_state(sv->store, t->id, canceling ? TASK_CANCELING : TASK_RUNNING, -1, NULL,
                           e->started, 0, false);
        if (!canceling)
            log_info("task %s RUNNING", t->id);
        break;
    case EV_QUEUED:
        /* Its store record says QUEUED; here it stays started (it holds
         * its place in the backend, and a cancel goes to the backend). */
        if (!t)
            break;
        pthread_mutex_lock(&sv->lock);
        bool initializing = t->state == TASK_INITIALIZING;
        pthread_mutex_unlock(&sv->lock);
        if (initializing) {
            store_update_state(sv->store, t->id, TASK_QUEUED, -1, NULL, 0, 0, false);
            log_info("task %s QUEUED in backend %s", t->id, sv_backend(sv, t)->ops->name);
        }
        break;
    case EV_COMMITTED:
        committed(sv, e->ended);
        break;
    case EV_ENDED:
        if (!t) {
            log_warn("task %s: end reported for a task that is not active", e->id);
            break;
        }
        end_task(sv, t, &e->outcome);
        break;
    case EV_CANCEL: {
        if (!t)
            break;
        _cleanup_error_ struct error err = ERROR_INIT;
        pthread_mutex_lock(&sv->lock);
        t->cancel_pending = false;
        _cleanup_free_ char *handle = t->handle ? xstrdup(t->handle) : NULL;
        pthread_mutex_unlock(&sv->lock);
        int r = backend_cancel(sv_backend(sv, t), t->id, handle, &err);
        if (r == -ENOENT) {
            /* It ended as we asked: that end is queued behind us and stands. */
            log_debug("task %s: cancel: %s", t->id, error_message(&err));
        } else if (r < 0) {
            log_error("task %s: cancel: %s", t->id, error_message(&err));
            /* The backend lost it: say so rather than leave it CANCELING forever. */
            _cleanup_free_ char *reason = xasprintf("cancel failed: %s", error_message(&err));
            sv_fail_task(sv, t, reason);
        }
        break;
    }
    }
    free((char *) e->outcome.reason);
    ended_free(e->ended);
    free(e);
}

static void *supervisor_main(void *arg)
{
    struct supervisor *sv = arg;
    (void) pthread_setname_np(pthread_self(), "ocps-supervise");
    pthread_mutex_lock(&sv->lock);
    while (!sv->stopping) {
        sv->rounds++;
        pthread_cond_broadcast(&sv->round);
        bool sweep = sv->sweep_at <= now_realtime();
        if (!sv->ev_head && !sv->schedule_pending && !sweep) {
            /* No polling: the next event, or the retention's next due time. */
            if (sv->sweep_at == USEC_INFINITY)
                pthread_cond_wait(&sv->wake, &sv->lock);
            else {
                struct timespec ts = {.tv_sec = (time_t) (sv->sweep_at / USEC_PER_SEC),
                                      .tv_nsec = (long) (sv->sweep_at % USEC_PER_SEC) * 1000};
                pthread_cond_timedwait(&sv->wake, &sv->lock, &ts);
            }
            continue;
        }
        struct event *list = sv->ev_head;
        sv->ev_head = sv->ev_tail = NULL;
        sv->schedule_pending = false;
        pthread_mutex_unlock(&sv->lock);
        store_hold(sv->store);
        for (struct event *e = list, *n; e; e = n) {
            n = e->next;
            handle_event(sv, e);
        }
        commit_ends(sv);
        store_flush(sv->store);
        schedule(sv);
        if (sweep)
            sv_sweep(sv);
        pthread_mutex_lock(&sv->lock);
    }
    pthread_mutex_unlock(&sv->lock);
    return NULL;
}

/* ---- public ---- */

int supervisor_new(const struct config *cfg, struct store *store,
                   const struct backend_ops *const *table, struct supervisor **ret,
                   struct error *err)
{
    struct supervisor *sv = xcalloc(1, sizeof(*sv));
    sv->cfg = cfg;
    sv->store = store;
    sv->listener = (struct backend_listener){
        .running = on_running, .ended = on_ended, .queued = on_queued, .userdata = sv};
    pthread_mutex_init(&sv->lock, NULL);
    pthread_cond_init(&sv->wake, NULL);
    pthread_cond_init(&sv->round, NULL);
    sv->active = hashmap_new();
    admission_init(&sv->adm, cfg->capacity_cores, cfg->capacity_memory);
    quota_init(&sv->quota);
    sv->sweep_at = USEC_INFINITY;
    sv->hub = xcalloc(1, sizeof(*sv->hub));
    pthread_mutex_init(&sv->hub->lock, NULL);
    sv->hub->sv = sv;
    sv->hub->refs = 1;

    size_t n = 0;
    while (table[n])
        n++;
    /* A task keeps its backend's index in 3 bits (struct sv_task). */
    if (n > SV_BACKENDS_MAX) {
        supervisor_free(sv);
        return error_set(err, -E2BIG, "%zu backends: at most 8", n);
    }
    sv->backends = xcalloc(n, sizeof(struct backend));
    sv_metrics_init(sv);
    for (size_t i = 0; i < n; i++) {
        const struct backend_ops *ops = table[i];
        void *state = NULL;
        if (!config_backend_enabled(cfg, ops->name))
            continue;
        int r = ops->init(cfg, &sv->listener, &state, err);
        if (r < 0) {
            error_wrap(err, "backend %s", ops->name);
            supervisor_free(sv);
            return r;
        }
        sv->backends[sv->n_backends++] = (struct backend){ops, state};
    }
    /* A proxy told to send commands to a backend it does not run would
     * fail every command task: it does not start. (cmd_backend process
     * left out of backends is the sidecar's: it runs containers only.) */
    if (!streq(cfg->cmd_backend, "process") && !supervisor_backend(sv, cfg->cmd_backend)) {
        supervisor_free(sv);
        return error_set(err, -EINVAL,
                         "cmd_backend: %s, but that backend is not enabled (its config section "
                         "and the backends list)",
                         cfg->cmd_backend);
    }
    *ret = sv;
    return 0;
}

static void free_active(void *value, void *userdata)
{
    sv_task_free(value);
}

/* At the end: the events still queued are dropped, but with 'release'
 * committed ends are released first. */
static void drain_events(struct supervisor *sv, bool release)
{
    pthread_mutex_lock(&sv->lock);
    struct event *list = sv->ev_head;
    sv->ev_head = sv->ev_tail = NULL;
    pthread_mutex_unlock(&sv->lock);
    for (struct event *e = list, *n; e; e = n) {
        n = e->next;
        if (release && e->kind == EV_COMMITTED)
            committed(sv, e->ended);
        free((char *) e->outcome.reason);
        ended_free(e->ended);
        free(e);
    }
}

void supervisor_free(struct supervisor *sv)
{
    if (!sv)
        return;
    if (sv->started) {
        pthread_mutex_lock(&sv->lock);
        sv->stopping = true;
        pthread_cond_signal(&sv->wake);
        pthread_mutex_unlock(&sv->lock);
        pthread_join(sv->thread, NULL);
    }
    /* Ends already handed to the store: once committed, their backends
     * release them (a container is removed) before the backends stop.
     * Other events are dropped: a restart recovers those tasks. */
    commit_ends(sv);
    (void) store_sync(sv->store);
    drain_events(sv, true);
    for (size_t i = 0; i < sv->n_backends; i++)
        sv->backends[i].ops->free(sv->backends[i].state);
    free(sv->backends);
    /* Commits still pending (the disk refused them) call back into nothing. */
    pthread_mutex_lock(&sv->hub->lock);
    sv->hub->sv = NULL;
    pthread_mutex_unlock(&sv->hub->lock);
    hub_unref(sv->hub);
    drain_events(sv, false);
    for (struct watch *w = sv->watches, *n; w; w = n) {
        n = w->next;
        free(w); /* their fds belong to the readers */
    }
    hashmap_foreach(sv->active, free_active, NULL);
    hashmap_free(sv->active);
    quota_done(&sv->quota);
    admission_done(&sv->adm);
    pthread_mutex_destroy(&sv->lock);
    pthread_cond_destroy(&sv->wake);
    pthread_cond_destroy(&sv->round);
    free(sv);
}

int supervisor_alive(struct supervisor *sv, usec_t timeout)
{
    usec_t deadline = now_realtime() + timeout; /* the condition's clock */
    struct timespec ts = {.tv_sec = (time_t) (deadline / USEC_PER_SEC),
                          .tv_nsec = (long) (deadline % USEC_PER_SEC) * 1000};
    pthread_mutex_lock(&sv->lock);
    if (!sv->started) {
        pthread_mutex_unlock(&sv->lock);
        return -ESRCH;
    }
    uint64_t seen = sv->rounds;
    pthread_cond_signal(&sv->wake);
    int r = 0;
    while (sv->rounds == seen && r != ETIMEDOUT)
        r = pthread_cond_timedwait(&sv->round, &sv->lock, &ts);
    bool came_round = sv->rounds != seen;
    pthread_mutex_unlock(&sv->lock);
    return came_round ? 0 : -ETIMEDOUT;
}

struct backend *supervisor_backend(struct supervisor *sv, const char *name)
{
    for (size_t i = 0; i < sv->n_backends; i++)
        if (streq(sv->backends[i].ops->name, name))
            return &sv->backends[i];
    return NULL;
}

int supervisor_start(struct supervisor *sv, struct error *err)
{
    int r = sv_recover(sv, err);
    commit_ends(sv); /* of tasks that ended while the daemon was away */
    if (r < 0)
        return error_wrap(err, "recover");
    sv_sweep_init(sv);
    if (pthread_create(&sv->thread, NULL, supervisor_main, sv) != 0)
        return error_set(err, -EAGAIN, "cannot start the supervisor thread");
    sv->started = true;
    sv_post_schedule(sv);
    return 0;
}
