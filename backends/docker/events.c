/*
 * events: dockerd's event stream, followed by one thread from the first
 * container task on. It tells what a runner cannot ask for without an
 * extra call: a container's exit code and time (die), an OOM kill in it
 * (oom), and a signal someone sent it (kill), filed on the task under
 * ds->lock for the runner's outcome. Each (re)connection reconciles: one
 * list call says which of our containers exist, wakes the runners that
 * wait for dockerd, and removes the ended containers whose outcome is
 * already recorded.
 */
#include "docker-internal.h"
#include "layout.h"
#include "util/json.h"
#include "util/log.h"

static int event_line(void *userdata, const char *line, size_t len)
{
    struct docker_state *ds = userdata;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const char *action = json_str(j, "Action");
    const cJSON *actor = cJSON_GetObjectItemCaseSensitive(j, "Actor");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(actor, "Attributes");
    const char *tid = json_str(attrs, LABEL_TASK);
    /* The runner logs what it does; dockerd's word matters for what
     * happens to the container: its exit, an OOM, a kill from outside. */
    if (action && tid && (streq(action, "die") || streq(action, "oom") || streq(action, "kill"))) {
        const char *code = json_str(attrs, "exitCode");
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(j, "timeNano");
        pthread_mutex_lock(&ds->lock);
        struct dtask *t = docker_find(ds, tid);
        /* A TES task's containers share its label; the one running now
         * is t->name (a late event of the one before must not count). */
        const char *name = json_str(attrs, "name");
        if (t && name && !streq(name, t->name))
            t = NULL;
        if (t) {
            dtask_syslog(t, "event: %s%s%s", action, code ? ", exit code " : "", code ? code : "");
            if (streq(action, "oom"))
                t->ev.oom = true;
            const char *sig = json_str(attrs, "signal");
            if (streq(action, "kill") && sig)
                t->ev.kill_signal = atoi(sig);
            if (streq(action, "die") && code) {
                t->ev.die = true;
                t->ev.exit_code = atoi(code);
                t->ev.time =
                    cJSON_IsNumber(tn) ? (usec_t) (tn->valuedouble / 1000) : now_realtime();
                pthread_cond_broadcast(&ds->event);
            }
        }
        pthread_mutex_unlock(&ds->lock);
    }
    cJSON_Delete(j);
    return 0;
}

/* An id from a label, fit to name a task directory. */
static bool task_id_ok(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n < 37 && strspn(id, "0123456789abcdefABCDEF-") == n;
}

/* Run at every (re)connection of the events stream: one list call says
 * which of our containers exist; runners waiting for dockerd look again
 * now rather than at their next backoff. A container of ours that no
 * runner owns is left alone - its task may be one the supervisor has yet
 * to recover - unless it has stopped and its task's outcome file exists:
 * that end was reported (a daemon stopped between the store's commit and
 * the removal), so it is removed once the file is surely on disk - unless
 * the config keeps finished containers. */
static void reconcile(struct docker_state *ds)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *label = xasprintf("{\"label\":[\"%s=%s\"]}", LABEL_INSTANCE, ds->instance);
    _cleanup_free_ char *esc = rest_escape(label);
    _cleanup_free_ char *path = xasprintf("/containers/json?all=1&filters=%s", esc);
    cJSON *list = NULL;
    int st = engine_call(ds->engine, "GET", path, NULL, &list, &err);
    if (st == 200) {
        size_t n = 0, owned = 0, stale = 0;
        char **gone = NULL; /* stopped, unowned: their task ids */
        const cJSON *c;
        pthread_mutex_lock(&ds->lock);
        cJSON_ArrayForEach(c, list)
        {
            const char *tid = json_str(cJSON_GetObjectItemCaseSensitive(c, "Labels"), LABEL_TASK);
            const char *state = json_str(c, "State");
            n++;
            if (tid && docker_find(ds, tid))
                owned++;
            else if (tid && task_id_ok(tid) && state &&
                     (streq(state, "exited") || streq(state, "dead")))
                strv_push(&gone, tid);
        }
        pthread_cond_broadcast(&ds->back);
        pthread_mutex_unlock(&ds->lock);
        STRV_FOREACH (tid, gone) {
            _cleanup_free_ char *dir = layout_task_dir(ds->cfg->data_dir, *tid);
            stale += docker_delete_recorded(ds, dir, *tid) == 204;
        }
        strv_free(gone);
        log_debug("docker backend: %zu containers of ours, %zu followed, %zu ended ones removed", n,
                  owned, stale);
    }
    cJSON_Delete(list);
}

static void events_connected(void *userdata, long status)
{
    struct docker_state *ds = userdata;
    atomic_store(&ds->connected, true);
    reconcile(ds);
}

static void *events_main(void *arg)
{
    struct docker_state *ds = arg;
    (void) pthread_setname_np(pthread_self(), "ocps-dk-events");
    _cleanup_free_ char *filters =
        xasprintf("{\"type\":[\"container\"],\"event\":[\"die\",\"oom\",\"kill\"],"
                  "\"label\":[\"%s=%s\"]}",
                  LABEL_INSTANCE, ds->instance);
    _cleanup_free_ char *esc = rest_escape(filters);
    _cleanup_free_ char *path = xasprintf("/events?filters=%s", esc);
    bool lost = false;
    while (!atomic_load(&ds->stopping)) {
        _cleanup_error_ struct error err = ERROR_INIT;
        /* The engine's shutdown fd ends it. */
        struct engine_stream s = {
            .line = event_line, .headers_done = events_connected, .userdata = ds};
        if (lost)
            log_info("docker backend: dockerd answers again");
        lost = false;
        (void) engine_stream(ds->engine, "GET", path, NULL, &s, &err);
        atomic_store(&ds->connected, false);
        if (atomic_load(&ds->stopping))
            break;
        log_warn("docker backend: lost dockerd's event stream (%s)", error_message(&err));
        lost = true;
        if (!dockerd_wait(ds))
            break;
    }
    return NULL;
}

void docker_events_connect(struct docker_state *ds)
{
    pthread_mutex_lock(&ds->lock);
    bool first = !ds->events_running && !atomic_load(&ds->stopping);
    if (first) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        ds->events_running = pthread_create(&ds->events_thread, &a, events_main, ds) == 0;
        pthread_attr_destroy(&a);
    }
    pthread_mutex_unlock(&ds->lock);
    if (!first)
        return;
    _cleanup_error_ struct error err = ERROR_INIT;
    if (engine_ping(ds->engine, &err) < 0)
        log_warn("docker backend: %s", error_message(&err));
    else
        log_info("docker backend: dockerd answers, API %s", engine_api_version(ds->engine));
}
