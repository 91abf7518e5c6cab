/* process-harness: see process-harness.h. */
#include "process-harness.h"

#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

char *data_dir;
struct config cfg;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct ev evs[2048];
static size_t n_evs;
static bool gate_closed;

/* Under mu. */
static struct ev *ev_find(const char *id)
{
    for (size_t i = 0; i < n_evs; i++)
        if (streq(evs[i].id, id))
            return &evs[i];
    if (n_evs == ELEMENTSOF(evs))
        abort();
    struct ev *e = &evs[n_evs++];
    snprintf(e->id, sizeof(e->id), "%s", id);
    return e;
}

/* What the listener heard of the task, under mu, once the gate is open. */
static struct ev *ev_enter(const char *id)
{
    pthread_mutex_lock(&mu);
    while (gate_closed)
        pthread_cond_wait(&cond, &mu);
    return ev_find(id);
}

static void ev_leave(void)
{
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

static void on_running(void *ud, const char *id, usec_t started)
{
    struct ev *e = ev_enter(id);
    e->running = true;
    e->n_running++;
    e->started = started;
    ev_leave();
}

static void on_ended(void *ud, const char *id, const struct task_outcome *o)
{
    struct ev *e = ev_enter(id);
    e->ended = true;
    e->n_ended++;
    e->o = *o;
    snprintf(e->reason, sizeof(e->reason), "%s", o->reason ? o->reason : "");
    e->o.reason = e->reason;
    ev_leave();
}

const struct backend_listener listener = {on_running, on_ended, NULL};

bool wait_for(const char *id, bool want_end, int seconds, struct ev *ret)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    pthread_mutex_lock(&mu);
    struct ev *e = ev_find(id);
    while (!(want_end ? e->ended : e->running || e->ended))
        if (pthread_cond_timedwait(&cond, &mu, &deadline) != 0)
            break;
    bool done = want_end ? e->ended : e->running || e->ended;
    if (ret)
        *ret = *e, ret->o.reason = ret->reason;
    pthread_mutex_unlock(&mu);
    return done;
}

void ev_forget(const char *id, bool running, bool ended)
{
    pthread_mutex_lock(&mu);
    struct ev *e = ev_find(id);
    if (running)
        e->running = false;
    if (ended)
        e->ended = false;
    pthread_mutex_unlock(&mu);
}

void gate_set(bool closed)
{
    pthread_mutex_lock(&mu);
    gate_closed = closed;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

struct task *parse(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    struct task *t = NULL;
    struct error err = ERROR_INIT;
    if (!j || task_from_cjson(j, NULL, &t, &err) < 0) {
        diag("bad test task %s: %s", json, error_message(&err));
        abort();
    }
    cJSON_Delete(j);
    error_clear(&err);
    if (t->cores == 0)
        t->cores = 1;
    if (t->memory == 0)
        t->memory = 256ULL << 20;
    return t;
}

int start(void *state, const char *json, struct run *r, struct error *err)
{
    uuid_v4(r->id);
    r->dir = xasprintf("%s/%s", data_dir, r->id);
    mkdir(r->dir, 0700);
    r->out = xasprintf("%s/stdout", r->dir);
    r->err = xasprintf("%s/stderr", r->dir);
    r->task = parse(json);
    struct backend_start s = {r->id, r->task, r->dir, r->task->stdout_path ?: r->out,
                              r->task->stderr_path ?: r->err};
    _cleanup_free_ char *handle = NULL;
    int rc = process_backend_ops.start(state, &s, &handle, err);
    snprintf(r->handle, sizeof(r->handle), "%s", handle ? handle : "");
    return rc;
}

void run_done(struct run *r)
{
    free(r->dir);
    free(r->out);
    free(r->err);
    task_free(r->task);
}

char *slurp(const char *path)
{
    char *data = NULL;
    if (read_file(path, 1 << 20, &data, NULL) < 0)
        return xstrdup("");
    return data;
}

void *harness_init(void)
{
    if (geteuid() != 0)
        tap_skip_all("needs root (users, cgroups)");
    if (!getenv("OCPS_SHIM"))
        tap_skip_all("OCPS_SHIM is not set (run through meson test)");
    char tmpl[] = "/tmp/ocps-test-process-XXXXXX";
    data_dir = xstrdup(mkdtemp(tmpl));

    config_init(&cfg);
    free(cfg.data_dir);
    cfg.data_dir = xstrdup(data_dir);
    free(cfg.shim_path);
    cfg.shim_path = xstrdup(getenv("OCPS_SHIM"));
    free(cfg.cgroup_name);
    cfg.cgroup_name = xasprintf("ocps-test-%d", getpid());
    cfg.kill_grace = 1;

    struct error err = ERROR_INIT;
    void *state = NULL;
    if (process_backend_ops.init(&cfg, &listener, &state, &err) < 0)
        diag("init: %s", error_message(&err));
    error_clear(&err);
    return state;
}

void harness_done(void *state)
{
    if (state)
        process_backend_ops.free(state);
    rm_rf(data_dir);
    free(data_dir);
    config_done(&cfg);
}
