/*
 * supervisor-metrics: what an operator observes of the supervisor: its
 * Prometheus families (metrics.h) and whether its backends are ready.
 * Counters and histograms are kept as things happen (a submit, a start,
 * an end); the gauges (tasks by state, the queue, capacity) are copied
 * at the scrape, under the lock, from what the supervisor keeps anyway
 * (the active tasks' count by backend and state is kept with its map of
 * them: supervisor-internal.h).
 *
 * Tasks that ended are counted (ocps_tasks_ended_total), not gauged: the
 * store keeps them for the retention, and counting its rows by state at
 * every scrape would read all of them.
 */
#include "supervisor-internal.h"
#include "util/log.h"

static const char *const refusal_names[_REFUSAL_MAX] = {
    [REFUSAL_AUTH] = "auth",
    [REFUSAL_TOO_LARGE] = "too_large",
    [REFUSAL_MEDIA] = "media",
    [REFUSAL_VALIDATION] = "validation",
    [REFUSAL_POLICY_RUN_AS] = "policy_run_as",
    [REFUSAL_POLICY_NEVER] = "policy_never",
    [REFUSAL_POLICY_MAX] = "policy_max",
    [REFUSAL_POLICY_IMAGE] = "policy_image",
    [REFUSAL_POLICY_PORTS] = "policy_ports",
    [REFUSAL_POLICY_MOUNTS] = "policy_mounts",
    [REFUSAL_CAPACITY] = "capacity",
    [REFUSAL_BACKEND] = "backend",
    [REFUSAL_QUOTA] = "quota",
    [REFUSAL_STORE] = "store",
    [REFUSAL_NO_BACKEND] = "no_backend",
};

void sv_metrics_init(struct supervisor *sv)
{
    for (size_t i = 0; i < SV_BACKENDS_MAX; i++) {
        sv->metrics.queue_wait[i].b = &metric_buckets_task;
        sv->metrics.run_time[i].b = &metric_buckets_task;
    }
}

void sv_metrics_ended(struct supervisor *sv, unsigned b, enum task_state state, usec_t started,
                      usec_t finished)
{
    if (b >= SV_BACKENDS_MAX || state < 0 || state >= _TASK_STATE_MAX)
        return;
    metric_inc(&sv->metrics.ended[b][state]);
    if (started > 0 && finished >= started)
        metric_observe(&sv->metrics.run_time[b], (uint64_t) (finished - started));
}

void supervisor_refused(struct supervisor *sv, enum submit_refusal why)
{
    if (why >= 0 && why < _REFUSAL_MAX)
        metric_inc(&sv->metrics.refused[why]);
}

static const enum task_state active_states[] = {TASK_QUEUED, TASK_INITIALIZING, TASK_RUNNING,
                                                TASK_CANCELING};
static const enum task_state final_states[] = {TASK_COMPLETE, TASK_EXECUTOR_ERROR,
                                               TASK_SYSTEM_ERROR, TASK_CANCELED};

static void write_tasks(struct supervisor *sv, FILE *f,
                        const uint32_t n[SV_BACKENDS_MAX][_TASK_STATE_MAX])
{
    metrics_family(f, "ocps_tasks", "gauge",
                   "Active tasks (queued, initializing, running, canceling) by state and backend.");
    for (size_t b = 0; b < sv->n_backends; b++)
        for (size_t i = 0; i < ELEMENTSOF(active_states); i++)
            metrics_sample_u64(f, "ocps_tasks",
                               (const char *const[]){"state",
                                                     task_state_to_string(active_states[i]),
                                                     "backend", sv->backends[b].ops->name, NULL},
                               n[b][active_states[i]]);

    metrics_family(f, "ocps_tasks_ended_total", "counter",
                   "Tasks that ended since the daemon started, by final state and backend.");
    for (size_t b = 0; b < sv->n_backends; b++)
        for (size_t i = 0; i < ELEMENTSOF(final_states); i++)
            metrics_sample_u64(f, "ocps_tasks_ended_total",
                               (const char *const[]){"state", task_state_to_string(final_states[i]),
                                                     "backend", sv->backends[b].ops->name, NULL},
                               metric_get(&sv->metrics.ended[b][final_states[i]]));
}

static void write_histograms(struct supervisor *sv, FILE *f, const char *name, const char *help,
                             const struct metric_histogram *h)
{
    metrics_family(f, name, "histogram", help);
    for (size_t b = 0; b < sv->n_backends; b++)
        metrics_histogram(f, name,
                          (const char *const[]){"backend", sv->backends[b].ops->name, NULL}, &h[b]);
}

void supervisor_metrics(struct supervisor *sv, FILE *f)
{
    uint32_t n[SV_BACKENDS_MAX][_TASK_STATE_MAX];
    pthread_mutex_lock(&sv->lock);
    memcpy(n, sv->n_active, sizeof(n));
    uint64_t queued = sv->adm.n_queued;
    uint64_t used_cores = sv->adm.used_cores, cap_cores = sv->adm.cap_cores;
    uint64_t used_memory = sv->adm.used_memory, cap_memory = sv->adm.cap_memory;
    pthread_mutex_unlock(&sv->lock);

    write_tasks(sv, f, n);

    metrics_family(f, "ocps_queue_length", "gauge", "Tasks waiting in the queue for capacity.");
    metrics_sample_u64(f, "ocps_queue_length", NULL, queued);
    write_histograms(sv, f, "ocps_queue_wait_seconds",
                     "Time from a task's submit to its start (leaving the queue), by backend.",
                     sv->metrics.queue_wait);
    write_histograms(sv, f, "ocps_task_run_seconds",
                     "Run time of the tasks that ended, from their start to their end, by backend.",
                     sv->metrics.run_time);

    metrics_family(f, "ocps_capacity_cores", "gauge", "The host's capacity for tasks, in cores.");
    metrics_sample(f, "ocps_capacity_cores", NULL, (double) cap_cores / ADMISSION_CORE);
    metrics_family(
        f, "ocps_capacity_used_cores", "gauge",
        "Cores held by the tasks that hold capacity (initializing, running, canceling).");
    metrics_sample(f, "ocps_capacity_used_cores", NULL, (double) used_cores / ADMISSION_CORE);
    metrics_family(f, "ocps_capacity_memory_bytes", "gauge",
                   "The host's capacity for tasks, memory in bytes.");
    metrics_sample_u64(f, "ocps_capacity_memory_bytes", NULL, cap_memory);
    metrics_family(f, "ocps_capacity_used_memory_bytes", "gauge",
                   "Memory held by the tasks that hold capacity, in bytes.");
    metrics_sample_u64(f, "ocps_capacity_used_memory_bytes", NULL, used_memory);

    metrics_family(f, "ocps_submits_total", "counter",
                   "Tasks accepted (stored and queued) since the daemon started, by backend.");
    for (size_t b = 0; b < sv->n_backends; b++)
        metrics_sample_u64(f, "ocps_submits_total",
                           (const char *const[]){"backend", sv->backends[b].ops->name, NULL},
                           metric_get(&sv->metrics.submits[b]));
    metrics_family(f, "ocps_submit_refusals_total", "counter",
                   "Submits refused since the daemon started, by reason.");
    for (size_t i = 0; i < _REFUSAL_MAX; i++)
        metrics_sample_u64(f, "ocps_submit_refusals_total",
                           (const char *const[]){"reason", refusal_names[i], NULL},
                           metric_get(&sv->metrics.refused[i]));
}

/* ---- readiness ---- */

char *supervisor_unready(struct supervisor *sv)
{
    char *list = NULL;
    for (size_t i = 0; i < sv->n_backends; i++) {
        _cleanup_error_ struct error err = ERROR_INIT;
        struct backend *b = &sv->backends[i];
        if (backend_ready(b, &err) >= 0)
            continue;
        /* The reply names the part only; why, the daemon's log says. */
        log_warn("not ready: backend %s: %s", b->ops->name, error_message(&err));
        char *l = xasprintf("%s%sbackend %s", list ? list : "", list ? ", " : "", b->ops->name);
        free(list);
        list = l;
    }
    return list;
}
