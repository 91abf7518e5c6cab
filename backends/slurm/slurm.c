/*
 * slurm: the backend slots (backend.h) of the Slurm backend and the poller
 * that follows its jobs. slurmrestd has no event stream: one thread asks
 * for the job list with update_time (304 when no job changed since that
 * second) and compares what it gets with the tasks it follows, never one
 * call per task. The interval is short after a submit or a cancel and
 * doubles, up to POLL_MAX, while nothing changes.
 *
 * The handle of a task is its Slurm job id, in decimal.
 *
 * Still missing (issue #14): the default output directory both the nodes
 * and the proxy see, a submit the cluster refuses reported as the task's
 * own error (EXECUTOR_ERROR) rather than the backend's, cputime reported
 * from the job's accounting, when_down, the walltime counted from the
 * proxy's admission, ready(), jobs purged from slurmctld's memory
 * (MinJobAge) while the proxy was away.
 */
#include "slurm.h"
#include "slurm-client.h"
#include "slurm-internal.h"
#include "util/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define POLL_MIN_MS 250
#define POLL_MAX_MS 5000

struct stask {
    struct stask *next;
    char *id;
    uint32_t job_id;
    struct task *task; /* for the limits in the words of the outcome */
    bool canceled;     /* the proxy asked */
    bool running_told;
};

struct slurm_state {
    const struct config *cfg;
    struct backend_listener listener;
    struct slurm_client *client;
    int shutdown_fd;
    pthread_t poller;
    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t wake;
    bool stopping;
    bool full;     /* ask for every job next time (a task was recovered) */
    long interval; /* ms */
    struct stask *tasks;
};

static struct stask *stask_free(struct stask *t)
{
    if (t) {
        free(t->id);
        task_free(t->task);
        free(t);
    }
    return NULL;
}

static struct stask *find(struct slurm_state *s, const char *id)
{
    for (struct stask *t = s->tasks; t; t = t->next)
        if (streq(t->id, id))
            return t;
    return NULL;
}

/* Under s->lock: poll soon. */
static void poll_soon(struct slurm_state *s)
{
    s->interval = POLL_MIN_MS;
    pthread_cond_signal(&s->wake);
}

static void add(struct slurm_state *s, const char *id, uint32_t job_id, const struct task *t)
{
    struct stask *st = xcalloc(1, sizeof(*st));
    st->id = xstrdup(id);
    st->job_id = job_id;
    st->task = task_copy(t);
    pthread_mutex_lock(&s->lock);
    st->next = s->tasks;
    s->tasks = st;
    poll_soon(s);
    pthread_mutex_unlock(&s->lock);
}

struct note {
    char *id;
    usec_t started;
    bool ended;
    struct task_outcome outcome;
};

/* Under s->lock: the notes for what changed in jobs (a "jobs" array). */
static size_t compare(struct slurm_state *s, const cJSON *jobs, struct note **notes)
{
    size_t n = 0, alloc = 0;
    const cJSON *j;
    cJSON_ArrayForEach(j, jobs)
    {
        struct slurm_job job;
        if (slurm_job_from_cjson(j, &job) < 0)
            continue;
        struct stask **p = &s->tasks;
        while (*p && (*p)->job_id != job.job_id)
            p = &(*p)->next;
        struct stask *t = *p;
        if (!t)
            continue; /* not ours, or not followed */
        enum task_state phase = slurm_job_phase(&job);
        if (phase == _TASK_STATE_INVALID) {
            log_warn("slurm: job %" PRIu32 " of task %s is in state %s, unknown here", job.job_id,
                     t->id, job.state);
            continue;
        }
        bool started = phase == TASK_RUNNING || phase == TASK_COMPLETE;
        if (started && !t->running_told && job.start_time > 0) {
            *notes = xgrow(*notes, &alloc, n + 1, sizeof(**notes));
            (*notes)[n++] = (struct note){.id = xstrdup(t->id),
                                          .started = (usec_t) job.start_time * USEC_PER_SEC};
            t->running_told = true;
        }
        if (phase == TASK_COMPLETE) {
            struct outcome_facts f;
            *notes = xgrow(*notes, &alloc, n + 1, sizeof(**notes));
            struct note *nt = &(*notes)[n++];
            *nt = (struct note){.id = xstrdup(t->id), .ended = true};
            slurm_job_facts(&job, t->task, t->canceled, &f);
            outcome_classify(&f, &nt->outcome);
            *p = t->next;
            stask_free(t);
        }
    }
    return n;
}

static void *poller(void *arg)
{
    struct slurm_state *s = arg;
    int64_t since = 0;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stopping && !s->tasks)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->stopping)
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += s->interval / 1000;
        until.tv_nsec += (s->interval % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        long asked = s->interval;
        while (!s->stopping && s->interval == asked &&
               pthread_cond_timedwait(&s->wake, &s->lock, &until) == 0)
            ;
        if (s->stopping)
            break;
        if (s->full) {
            since = 0;
            s->full = false;
        }
        pthread_mutex_unlock(&s->lock);

        /* The second this poll starts is a safe update_time for the next:
         * a change in it is "at or after" it. */
        int64_t now = time(NULL);
        _cleanup_error_ struct error err = ERROR_INIT;
        cJSON *jobs = NULL;
        int r = slurm_client_jobs(s->client, since, &jobs, &err);
        if (r < 0 && r != -ECANCELED)
            log_warn("slurm: %s", error_message(&err));

        struct note *notes = NULL;
        size_t n = 0;
        pthread_mutex_lock(&s->lock);
        if (r > 0) {
            since = now;
            n = compare(s, jobs, &notes);
            s->interval = POLL_MIN_MS;
        } else if (s->interval < POLL_MAX_MS)
            s->interval = s->interval * 2 > POLL_MAX_MS ? POLL_MAX_MS : s->interval * 2;
        pthread_mutex_unlock(&s->lock);
        cJSON_Delete(jobs);

        /* The listener is told outside the lock: it may call back. */
        for (size_t i = 0; i < n; i++) {
            if (notes[i].ended) {
                s->listener.ended(s->listener.userdata, notes[i].id, &notes[i].outcome);
                task_outcome_done(&notes[i].outcome);
            } else
                s->listener.running(s->listener.userdata, notes[i].id, notes[i].started);
            free(notes[i].id);
        }
        free(notes);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
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
    while (s->tasks) {
        struct stask *t = s->tasks;
        s->tasks = t->next;
        stask_free(t);
    }
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
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return error_set_errno(err, -errno, "eventfd");
    struct slurm_client *client = NULL;
    int r = slurm_client_new(cfg->slurm_socket, cfg->slurm_socket ? NULL : cfg->slurm_url,
                             cfg->slurm_jwt_key, cfg->slurm_token_user, fd, &client, err);
    if (r < 0) {
        close(fd);
        return r;
    }

    struct slurm_state *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->listener = *l;
    s->client = client;
    s->shutdown_fd = fd;
    s->interval = POLL_MIN_MS;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    r = -pthread_create(&s->poller, NULL, poller, s);
    if (r < 0) {
        slurm_client_free(s->client);
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
    if (t->container)
        return error_set(err, -EINVAL, "the slurm backend runs commands, not containers");
    if (!t->cmd.argv)
        return error_set(err, -EINVAL, "cmd: required");
    return 0;
}

static int slurm_start(void *state, const struct backend_start *bs, char **ret_handle,
                       struct error *err)
{
    struct slurm_state *s = state;
    struct slurm_submit_config sc = {
        .partition = s->cfg->slurm_partition,
        .account = s->cfg->slurm_account,
        .qos = s->cfg->slurm_qos,
    };
    cJSON *body = slurm_submit_body(bs->task, bs->id, bs->stdout_path, bs->stderr_path, &sc, err);
    if (!body)
        return err->code;
    uint32_t job_id;
    int r = slurm_client_submit(s->client, bs->task->user, body, &job_id, err);
    cJSON_Delete(body);
    if (r < 0)
        return error_wrap(err, "slurm: submit");
    add(s, bs->id, job_id, bs->task);
    *ret_handle = xasprintf("%" PRIu32, job_id);
    return 0;
}

static int slurm_cancel(void *state, const char *id, const char *handle, struct error *err)
{
    struct slurm_state *s = state;
    pthread_mutex_lock(&s->lock);
    struct stask *t = find(s, id);
    uint32_t job_id = t ? t->job_id : 0;
    if (t)
        t->canceled = true;
    pthread_mutex_unlock(&s->lock);
    if (!t)
        return -ENOENT; /* its end was reported already */
    int r = slurm_client_cancel(s->client, job_id, err);
    pthread_mutex_lock(&s->lock);
    poll_soon(s);
    pthread_mutex_unlock(&s->lock);
    return r < 0 ? error_wrap(err, "slurm: cancel job %" PRIu32, job_id) : 0;
}

/* The job whose comment is the task's id: a submit whose job id was never
 * recorded (the proxy died between the two). 0 when there is none. */
static int find_by_comment(struct slurm_state *s, const char *id, uint32_t *ret, struct error *err)
{
    cJSON *jobs = NULL;
    int r = slurm_client_jobs(s->client, 0, &jobs, err);
    if (r < 0)
        return r;
    const cJSON *j;
    *ret = 0;
    cJSON_ArrayForEach(j, jobs)
    {
        struct slurm_job job;
        if (slurm_job_from_cjson(j, &job) == 0 && streq_ptr(job.comment, id))
            *ret = job.job_id;
    }
    cJSON_Delete(jobs);
    return 0;
}

static int slurm_recover(void *state, const struct backend_start *bs, const char *handle,
                         struct error *err)
{
    struct slurm_state *s = state;
    uint32_t job_id = 0;
    char *end;
    if (handle) {
        unsigned long v = strtoul(handle, &end, 10);
        if (*end == '\0' && v > 0 && v <= UINT32_MAX)
            job_id = (uint32_t) v;
    }
    if (!job_id) {
        int r = find_by_comment(s, bs->id, &job_id, err);
        if (r < 0)
            return error_wrap(err, "slurm: recover");
        if (!job_id)
            return -ENOENT; /* never submitted: the supervisor starts it */
    }
    add(s, bs->id, job_id, bs->task);
    pthread_mutex_lock(&s->lock);
    s->full = true; /* its end may be older than the last poll */
    pthread_mutex_unlock(&s->lock);
    return 0;
}

const struct backend_ops slurm_backend_ops = {
    .name = "slurm",
    .init = slurm_init,
    .free = slurm_free,
    .handles = slurm_handles,
    .check = slurm_check,
    .start = slurm_start,
    .cancel = slurm_cancel,
    .recover = slurm_recover,
};
