/*
 * slurm: the backend slots (backend.h) of the Slurm backend and the poller
 * that follows its jobs. slurmrestd has no event stream: one thread asks
 * for the job list with update_time (304 when no job changed since that
 * second) and compares what it gets with the tasks it follows, never one
 * call per task. The interval is short after a submit or a cancel and
 * doubles, up to POLL_MAX, while nothing changes. A list that came back
 * whole cost slurmrestd (and slurmctld, on the same lock its submits
 * take) work in proportion to every job it holds; the next poll waits at
 * least POLL_COST_FACTOR times as long as fetching it took, so that a
 * burst of submits is not slowed by a poll after each one (bench/README.md,
 * the Slurm section: 0.56 of slurmrestd's own submit rate without it).
 *
 * A job Slurm holds PENDING is reported QUEUED (listener.queued), with
 * Slurm's reason as its description ("queued in Slurm: Resources").
 *
 * The handle of a task is its Slurm job id, in decimal; "0" while it has
 * none: a submit slurmrestd did not answer (slurm.when_down: queue), or a
 * task recovered after the proxy died between its submit and the record
 * of its job id. Such a task is looked for by its job's comment (the task
 * id) in the next whole list (update_time=0), and submitted by the poller
 * only when no job carries it: nothing runs twice, nothing is lost.
 *
 * Its tasks run off this host (remote, backend.h): the host's capacity
 * does not apply, Slurm queues them. A job Slurm no longer lists, in a
 * whole list, ended while the proxy was away and was forgotten by
 * slurmctld (MinJobAge, 300 s by default, without accounting storage):
 * its outcome is unknown, and it is reported as a SYSTEM_ERROR that says
 * so.
 *
 * A cancel signals a running job's batch shell with SIGTERM and cancels
 * the job (SIGKILL) kill_grace seconds later if it is still there; a job
 * that does not run yet is cancelled at once.
 */
#include "slurm.h"
#include "account.h"
#include "layout.h"
#include "slurm-client.h"
#include "slurm-internal.h"
#include "slurm-output.h"
#include "util/hashmap.h"
#include "util/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define POLL_MIN_MS      250
#define POLL_MAX_MS      5000
#define POLL_COST_FACTOR 4
/* A submit's check trusts slurmrestd's last answer this long (when_down: reject). */
#define UP_FRESH_USEC (2 * USEC_PER_SEC)

struct stask {
    char id[37];
    char job_key[12];  /* job_id in decimal, the key of by_job */
    uint32_t job_id;   /* 0: none known (see above) */
    struct task *task; /* for the limits in the words of the outcome */
    char *user;
    cJSON *body;     /* its submit, while job_id is 0 */
    bool submitting; /* the poller submits it now, outside the lock */
    bool canceled;   /* the proxy asked */
    bool running;    /* last seen running: a cancel signals first */
    bool running_told;
    bool queued_told;
    char *pending;       /* why Slurm holds it (slurm_job_pending_description), or NULL */
    usec_t kill_at;      /* monotonic: when a cancel's SIGTERM gives way to SIGKILL; 0 none */
    uint64_t added_poll; /* s->polls when it was added */
    uint64_t seen_poll;  /* the last poll that listed its job */
};

struct slurm_state {
    const struct config *cfg;
    struct backend_listener listener;
    struct slurm_client *client;
    char *output_dir;
    int shutdown_fd;
    pthread_t poller;
    _Atomic usec_t up_at; /* monotonic: slurmrestd's last good answer */
    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t wake;
    bool stopping;
    bool full;     /* ask for every job next time (update_time=0) */
    long interval; /* ms */
    long gap;      /* ms: at least this from the end of a poll to the next (cost) */
    uint64_t polls;
    struct hashmap *tasks;  /* id -> stask */
    struct hashmap *by_job; /* job_key -> stask, for those with a job id */
};

static struct stask *stask_free(struct stask *t)
{
    if (t) {
        task_free(t->task);
        free(t->user);
        free(t->pending);
        cJSON_Delete(t->body);
        free(t);
    }
    return NULL;
}

static usec_t now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

/* Under s->lock: poll soon. */
static void poll_soon(struct slurm_state *s)
{
    s->interval = POLL_MIN_MS;
    pthread_cond_signal(&s->wake);
}

/* Under s->lock. */
static void set_job(struct slurm_state *s, struct stask *t, uint32_t job_id)
{
    t->job_id = job_id;
    snprintf(t->job_key, sizeof(t->job_key), "%" PRIu32, job_id);
    hashmap_put(s->by_job, t->job_key, t);
    cJSON_Delete(t->body);
    t->body = NULL;
}

/* Under s->lock. */
static void drop(struct slurm_state *s, struct stask *t)
{
    hashmap_remove(s->tasks, t->id);
    if (t->job_id)
        hashmap_remove(s->by_job, t->job_key);
    stask_free(t);
}

/* Follows a task: its job, or (job_id 0) its submit body, to be found or submitted. */
static void add(struct slurm_state *s, const char *id, uint32_t job_id, const struct task *task,
                cJSON *body)
{
    struct stask *t = xcalloc(1, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    t->task = task_copy(task);
    t->user = xstrdup(task->user);
    t->body = body;
    pthread_mutex_lock(&s->lock);
    t->added_poll = s->polls;
    hashmap_put(s->tasks, t->id, t);
    if (job_id)
        set_job(s, t, job_id);
    else
        s->full = true;
    poll_soon(s);
    pthread_mutex_unlock(&s->lock);
}

struct note {
    char id[37];
    usec_t started;
    bool ended;
    bool queued;
    struct task_outcome outcome;
};

struct notes {
    struct note *v;
    size_t n, alloc;
};

static struct note *note_add(struct notes *ns, const char *id)
{
    ns->v = xgrow(ns->v, &ns->alloc, ns->n + 1, sizeof(*ns->v));
    struct note *n = &ns->v[ns->n++];
    *n = (struct note){0};
    snprintf(n->id, sizeof(n->id), "%s", id);
    return n;
}

/* An end the proxy decided itself (a refused submit, a forgotten job). */
static void note_end(struct notes *ns, const char *id, const struct outcome_facts *f)
{
    struct note *n = note_add(ns, id);
    n->ended = true;
    outcome_classify(f, &n->outcome);
}

/* The listener is told outside the lock: it may call back. */
static void tell(struct slurm_state *s, struct notes *ns)
{
    for (size_t i = 0; i < ns->n; i++) {
        if (ns->v[i].ended) {
            s->listener.ended(s->listener.userdata, ns->v[i].id, &ns->v[i].outcome);
            task_outcome_done(&ns->v[i].outcome);
        } else if (ns->v[i].queued) {
            if (s->listener.queued)
                s->listener.queued(s->listener.userdata, ns->v[i].id);
        } else
            s->listener.running(s->listener.userdata, ns->v[i].id, ns->v[i].started);
    }
    free(ns->v);
    *ns = (struct notes){0};
}

/* Under s->lock: one job of the list, against the task that follows it. */
static void compare_job(struct slurm_state *s, const struct slurm_job *job, uint64_t poll,
                        struct notes *ns)
{
    char key[12];
    snprintf(key, sizeof(key), "%" PRIu32, job->job_id);
    struct stask *t = hashmap_get(s->by_job, key);
    if (!t && job->comment) {
        /* A submit whose job id the proxy never heard or never recorded. */
        struct stask *c = hashmap_get(s->tasks, job->comment);
        if (c && !c->job_id && !c->submitting) {
            log_info("slurm: task %s is job %" PRIu32 " (found by its comment)", c->id,
                     job->job_id);
            set_job(s, c, job->job_id);
            t = c;
        }
    }
    if (!t)
        return; /* not ours, or not followed */
    t->seen_poll = poll;
    enum task_state phase = slurm_job_phase(job);
    if (phase == _TASK_STATE_INVALID) {
        log_warn("slurm: job %" PRIu32 " of task %s is in state %s, unknown here", job->job_id,
                 t->id, job->state);
        return;
    }
    t->running = phase == TASK_RUNNING;
    free(t->pending);
    t->pending = slurm_job_pending_description(job);
    if (phase == TASK_QUEUED && !t->queued_told && !t->running_told) {
        note_add(ns, t->id)->queued = true;
        t->queued_told = true;
    }
    bool started = phase == TASK_RUNNING || phase == TASK_COMPLETE;
    if (started && !t->running_told && job->start_time > 0) {
        note_add(ns, t->id)->started = (usec_t) job->start_time * USEC_PER_SEC;
        t->running_told = true;
    }
    if (phase == TASK_COMPLETE) {
        struct outcome_facts f;
        slurm_job_facts(job, t->task, t->canceled, &f);
        struct note *n = note_add(ns, t->id);
        n->ended = true;
        outcome_classify(&f, &n->outcome);
        drop(s, t);
    }
}

struct sweep {
    struct slurm_state *s;
    uint64_t poll;
    bool whole; /* the list was every job */
    usec_t now;
    struct stask **gone, **submit, **kill;
    size_t n_gone, n_submit, n_kill, a_gone, a_submit, a_kill;
};

static void push(struct stask ***v, size_t *n, size_t *a, struct stask *t)
{
    *v = xgrow(*v, a, *n + 1, sizeof(**v));
    (*v)[(*n)++] = t;
}

/* What a whole list says by leaving a job out, and the kills that are due. */
static void sweep_one(void *value, void *userdata)
{
    struct stask *t = value;
    struct sweep *w = userdata;
    if (t->kill_at && w->now >= t->kill_at && t->job_id)
        push(&w->kill, &w->n_kill, &w->a_kill, t);
    /* Only tasks followed before the list was asked for: a job submitted
     * meanwhile may be missing from it. */
    if (!w->whole || t->added_poll >= w->poll || t->seen_poll == w->poll || t->submitting)
        return;
    if (t->job_id)
        push(&w->gone, &w->n_gone, &w->a_gone, t);
    else {
        /* Kept alive for submit_waiting(): a cancel meanwhile only marks it. */
        t->submitting = true;
        push(&w->submit, &w->n_submit, &w->a_submit, t);
    }
}

static void end_refused(struct notes *ns, const char *id, const struct error *err)
{
    _cleanup_free_ char *why = xasprintf("%s", error_message(err));
    note_end(ns, id, &(struct outcome_facts){.start_error = why, .exit_code = -1});
}

/* The poller: submits what no job carries (one by one, outside the lock). */
static void submit_waiting(struct slurm_state *s, struct stask **v, size_t n, struct notes *ns)
{
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&s->lock);
        struct stask *t = v[i];
        _cleanup_free_ char *user = xstrdup(t->user);
        cJSON *body = cJSON_Duplicate(t->body, true);
        pthread_mutex_unlock(&s->lock);

        _cleanup_error_ struct error err = ERROR_INIT;
        uint32_t job_id = 0;
        int r = slurm_client_submit(s->client, user, body, &job_id, &err);
        cJSON_Delete(body);

        pthread_mutex_lock(&s->lock);
        t->submitting = false;
        if (r >= 0) {
            atomic_store(&s->up_at, now_mono());
            log_info("slurm: task %s submitted as job %" PRIu32, t->id, job_id);
            set_job(s, t, job_id);
            if (t->canceled) /* cancelled while it was being submitted */
                t->kill_at = 1;
            poll_soon(s);
        } else if (r == -EINVAL) {
            end_refused(ns, t->id, &err);
            drop(s, t);
        } else if (t->canceled) {
            note_end(ns, t->id, &(struct outcome_facts){.canceled = true, .exit_code = -1});
            drop(s, t);
        } else {
            log_warn("slurm: task %s: submit: %s (tried again)", t->id, error_message(&err));
            s->full = true;
        }
        pthread_mutex_unlock(&s->lock);
    }
}

static void kill_due(struct slurm_state *s, uint32_t *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        _cleanup_error_ struct error err = ERROR_INIT;
        if (slurm_client_cancel(s->client, jobs[i], NULL, &err) < 0)
            log_warn("slurm: cancel job %" PRIu32 ": %s", jobs[i], error_message(&err));
    }
}

static void *poller(void *arg)
{
    struct slurm_state *s = arg;
    int64_t since = 0;
    usec_t last_end = 0;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stopping && hashmap_size(s->tasks) == 0)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->stopping)
            break;
        /* Wait the interval from the last poll's end (and at least its
         * cost); a submit or cancel shortening the interval wakes this. */
        for (;;) {
            usec_t due = last_end + MAX(s->interval, s->gap) * USEC_PER_MSEC;
            usec_t now_us = now_mono();
            if (s->stopping || now_us >= due)
                break;
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            usec_t left = due - now_us;
            until.tv_sec += left / USEC_PER_SEC;
            until.tv_nsec += (left % USEC_PER_SEC) * 1000;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->wake, &s->lock, &until);
        }
        if (s->stopping)
            break;
        bool whole = s->full;
        if (whole) {
            since = 0;
            s->full = false;
        }
        uint64_t poll = ++s->polls;
        pthread_mutex_unlock(&s->lock);

        /* The second this poll starts is a safe update_time for the next:
         * a change in it is "at or after" it. */
        int64_t now = time(NULL);
        _cleanup_error_ struct error err = ERROR_INIT;
        cJSON *jobs = NULL;
        usec_t began = now_mono();
        int r = slurm_client_jobs(s->client, since, &jobs, &err);
        last_end = now_mono();
        if (r < 0 && r != -ECANCELED)
            log_warn("slurm: %s", error_message(&err));
        if (r >= 0)
            atomic_store(&s->up_at, now_mono());

        struct notes ns = {0};
        struct sweep w = {.s = s, .poll = poll, .whole = whole && r > 0, .now = now_mono()};
        _cleanup_free_ uint32_t *kills = NULL;
        pthread_mutex_lock(&s->lock);
        if (r > 0) {
            since = now;
            const cJSON *j;
            cJSON_ArrayForEach(j, jobs)
            {
                struct slurm_job job;
                if (slurm_job_from_cjson(j, &job) == 0)
                    compare_job(s, &job, poll, &ns);
            }
        }
        if (r < 0 && whole)
            s->full = true; /* not answered: ask for every job again */
        s->gap = r > 0 ? (long) ((last_end - began) / USEC_PER_MSEC) * POLL_COST_FACTOR : 0;
        /* A change: soon again. A whole list says nothing of change, and
         * is asked for again while a submit waits: it backs off too. */
        if (r > 0 && !whole)
            s->interval = POLL_MIN_MS;
        else if (s->interval < POLL_MAX_MS)
            s->interval = MIN(s->interval * 2, POLL_MAX_MS);
        hashmap_foreach(s->tasks, sweep_one, &w);
        for (size_t i = 0; i < w.n_gone; i++) {
            struct stask *t = w.gone[i];
            _cleanup_free_ char *why = xasprintf(
                "Slurm no longer knows job %" PRIu32 ": it ended while the proxy was away and "
                "slurmctld has forgotten it (MinJobAge); its outcome is unknown",
                t->job_id);
            note_end(&ns, t->id,
                     &(struct outcome_facts){
                         .canceled = t->canceled, .system_error = why, .exit_code = -1});
            drop(s, t);
        }
        kills = w.n_kill ? xcalloc(w.n_kill, sizeof(*kills)) : NULL;
        for (size_t i = 0; i < w.n_kill; i++) {
            kills[i] = w.kill[i]->job_id;
            w.kill[i]->kill_at = 0;
        }
        pthread_mutex_unlock(&s->lock);
        cJSON_Delete(jobs);

        kill_due(s, kills, w.n_kill);
        submit_waiting(s, w.submit, w.n_submit, &ns);
        free(w.gone);
        free(w.submit);
        free(w.kill);
        tell(s, &ns);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void free_stask(void *value, void *userdata)
{
    stask_free(value);
}

static void slurm_free(void *state)
{
    struct slurm_state *s = state;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    uint64_t one = 1;
    (void) !write(s->shutdown_fd, &one, sizeof(one));
    pthread_join(s->poller, NULL);
    slurm_client_free(s->client);
    hashmap_foreach(s->tasks, free_stask, NULL);
    hashmap_free(s->tasks);
    hashmap_free(s->by_job);
    free(s->output_dir);
    close(s->shutdown_fd);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int slurm_init(const struct config *cfg, const struct backend_listener *l, void **ret_state,
                      struct error *err)
{
    if (!cfg->slurm_socket && !cfg->slurm_url)
        return error_set(err, -EINVAL, "slurm: neither slurm.socket nor slurm.url is set");
    _cleanup_free_ char *out = cfg->slurm_output_dir ? xstrdup(cfg->slurm_output_dir)
                                                     : xasprintf("%s/slurm-output", cfg->data_dir);
    int r = slurm_output_dir_setup(out, err);
    if (r < 0)
        return r;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return error_set_errno(err, -errno, "eventfd");
    struct slurm_client *client = NULL;
    r = slurm_client_new(
        &(struct slurm_client_options){.socket = cfg->slurm_socket,
                                       .url = cfg->slurm_socket ? NULL : cfg->slurm_url,
                                       .key_path = cfg->slurm_jwt_key,
                                       .token_path = cfg->slurm_token_file,
                                       .token_user = cfg->slurm_token_user,
                                       .abort_fd = fd},
        &client, err);
    if (r < 0) {
        close(fd);
        return r;
    }

    struct slurm_state *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->listener = *l;
    s->client = client;
    s->output_dir = TAKE_PTR(out);
    s->shutdown_fd = fd;
    s->interval = POLL_MIN_MS;
    s->tasks = hashmap_new();
    s->by_job = hashmap_new();
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    r = -pthread_create(&s->poller, NULL, poller, s);
    if (r < 0) {
        slurm_client_free(s->client);
        hashmap_free(s->tasks);
        hashmap_free(s->by_job);
        free(s->output_dir);
        close(fd);
        free(s);
        return error_set_errno(err, r, "slurm: poller thread");
    }
    *ret_state = s;
    return 0;
}

static bool slurm_handles(const struct task *t)
{
    return !t->container;
}

static int slurm_check(void *state, const struct task *t, struct error *err)
{
    struct slurm_state *s = state;
    if (t->container)
        return error_set(err, -EINVAL, "the slurm backend runs commands, not containers");
    if (!t->cmd.argv)
        return error_set(err, -EINVAL, "cmd: required");
    if (s->cfg->slurm_queue_when_down || now_mono() - atomic_load(&s->up_at) < UP_FRESH_USEC)
        return 0;
    _cleanup_error_ struct error perr = ERROR_INIT;
    if (slurm_client_ping(s->client, &perr) < 0)
        return error_set(err, -EREMOTEIO, "the slurm backend is unavailable: %s",
                         error_message(&perr));
    atomic_store(&s->up_at, now_mono());
    return 0;
}

/* The submit of a task: its default output files under the output dir
 * (made for its user), its workdir its home when it names none. */
static cJSON *submit_body(struct slurm_state *s, const struct backend_start *bs, struct error *err)
{
    const struct task *t = bs->task;
    struct account a = {0};
    int r = account_lookup(t->user, &a, err);
    if (r >= 0 && (!t->stdout_path || !t->stderr_path))
        r = slurm_output_task_dir(s->output_dir, bs->id, a.uid, a.gid, err);
    if (r < 0) {
        account_done(&a);
        return NULL;
    }
    struct slurm_submit_config sc = {
        .partition = s->cfg->slurm_partition,
        .account = s->cfg->slurm_account,
        .qos = s->cfg->slurm_qos,
        .workdir = a.home,
    };
    cJSON *body = slurm_submit_body(t, bs->id, bs->stdout_path, bs->stderr_path, &sc, err);
    account_done(&a);
    return body;
}

static int slurm_start(void *state, const struct backend_start *bs, char **ret_handle,
                       struct error *err)
{
    struct slurm_state *s = state;
    cJSON *body = submit_body(s, bs, err);
    if (!body)
        return error_wrap(err, "slurm");
    uint32_t job_id = 0;
    int r = slurm_client_submit(s->client, bs->task->user, body, &job_id, err);
    if (r == -EINVAL) {
        /* The task's own fault (its partition, account, size): its end. */
        cJSON_Delete(body);
        struct notes ns = {0};
        end_refused(&ns, bs->id, err);
        error_clear(err);
        tell(s, &ns);
        *ret_handle = xstrdup("0");
        return 0;
    }
    if (r < 0 && !s->cfg->slurm_queue_when_down) {
        cJSON_Delete(body);
        return error_wrap(err, "slurm: submit");
    }
    if (r < 0) {
        log_warn("task %s: slurm: submit: %s (queued until slurmrestd answers)", bs->id,
                 error_message(err));
        error_clear(err);
    } else
        atomic_store(&s->up_at, now_mono());
    add(s, bs->id, job_id, bs->task, job_id ? NULL : body);
    if (job_id)
        cJSON_Delete(body);
    *ret_handle = xasprintf("%" PRIu32, job_id);
    return 0;
}

static int slurm_cancel(void *state, const char *id, const char *handle, struct error *err)
{
    struct slurm_state *s = state;
    pthread_mutex_lock(&s->lock);
    struct stask *t = hashmap_get(s->tasks, id);
    if (!t) {
        pthread_mutex_unlock(&s->lock);
        return -ENOENT; /* its end was reported already */
    }
    t->canceled = true;
    uint32_t job_id = t->job_id;
    bool running = t->running;
    if (!job_id && !t->submitting) {
        /* Never submitted: nothing runs; it ends here. */
        drop(s, t);
        pthread_mutex_unlock(&s->lock);
        struct notes ns = {0};
        note_end(&ns, id, &(struct outcome_facts){.canceled = true, .exit_code = -1});
        tell(s, &ns);
        return 0;
    }
    if (job_id && running)
        t->kill_at = now_mono() + (usec_t) s->cfg->kill_grace * USEC_PER_SEC;
    poll_soon(s);
    pthread_mutex_unlock(&s->lock);
    if (!job_id)
        return 0; /* being submitted: the poller cancels the job it gets */
    /* SIGTERM to a running job's batch shell first; a pending one goes at once. */
    int r =
        slurm_client_cancel(s->client, job_id, running && s->cfg->kill_grace ? "TERM" : NULL, err);
    return r < 0 ? error_wrap(err, "slurm: cancel job %" PRIu32, job_id) : 0;
}

static int slurm_recover(void *state, const struct backend_start *bs, const char *handle,
                         struct error *err)
{
    struct slurm_state *s = state;
    uint32_t job_id = 0;
    char *end;
    if (handle) {
        unsigned long v = strtoul(handle, &end, 10);
        if (*end == '\0' && v <= UINT32_MAX)
            job_id = (uint32_t) v;
    }
    cJSON *body = NULL;
    if (!job_id) {
        /* Found by its comment in the next whole list, or submitted then. */
        body = submit_body(s, bs, err);
        if (!body)
            return error_wrap(err, "slurm: recover");
    }
    add(s, bs->id, job_id, bs->task, body);
    pthread_mutex_lock(&s->lock);
    s->full = true; /* its end may be older than the last poll */
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int slurm_ready(void *state, struct error *err)
{
    struct slurm_state *s = state;
    int r = slurm_client_ping(s->client, err);
    if (r >= 0)
        atomic_store(&s->up_at, now_mono());
    return r;
}

static char *slurm_describe(void *state, const char *id)
{
    struct slurm_state *s = state;
    char *d = NULL;
    pthread_mutex_lock(&s->lock);
    struct stask *t = hashmap_get(s->tasks, id);
    if (t && t->pending)
        d = xasprintf("%s (job %" PRIu32 ")", t->pending, t->job_id);
    pthread_mutex_unlock(&s->lock);
    return d;
}

static char *slurm_output_path(void *state, const char *id, const char *name)
{
    struct slurm_state *s = state;
    return xasprintf("%s/%s/%s", s->output_dir, id, name);
}

const struct backend_ops slurm_backend_ops = {
    .name = "slurm",
    .remote = true,
    .init = slurm_init,
    .free = slurm_free,
    .handles = slurm_handles,
    .check = slurm_check,
    .start = slurm_start,
    .cancel = slurm_cancel,
    .recover = slurm_recover,
    .ready = slurm_ready,
    .describe = slurm_describe,
    .output_path = slurm_output_path,
};
