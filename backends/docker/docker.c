/*
 * docker: the Docker backend. Tasks with a container run as Docker
 * containers through the Engine API (engine.h).
 *
 * A runner thread does the whole life of one task's container (runners
 * are kept and take the next task launched, see runner_main):
 *
 *   image    inspect, pull by policy (progress into <task_dir>/system.log;
 *            a pull fails on an "error" line even after a 200)
 *   create   name ocps-<task id>, labels org.ocps-proxy.instance/.task,
 *            every Task field mapped and enforced (see build_create)
 *   wait     POST wait?condition=next-exit; once its reply headers have
 *            arrived the wait is registered, and only then
 *   start    so no exit can be missed; then logs?follow=1 into the
 *            task's stdout/stderr files, live: the runner drives the
 *            wait and the logs together (an engine group), so a task
 *            costs one thread, not two
 *   end      the wait returns (or walltime/cancel: stop with the grace
 *            period), the die event (or inspect) gives the outcome,
 *            <task_dir>/exit.json records it, ended() is told; once the
 *            store has the end on disk, release() lets the runner remove
 *            the container. The end is fsync'd once, by the store's group
 *            commit, and the container - the other record of it - goes
 *            only after that.
 *
 * A lost connection to dockerd (dockerd stopped) does not end a task: the
 * runner waits for dockerd to answer again and then looks at what became
 * of its container. When the daemon stops, every Engine call in flight
 * ends at once (the engine watches the shutdown fd) and the runner lets
 * go of its task without an outcome: the next daemon follows it. After a
 * daemon restart recover() finds each task's container by name and label
 * and follows it the same way; the outcome file makes "the container is
 * gone" unambiguous. The backend only ever touches containers that carry
 * its instance label.
 */
#include "docker.h"
#include "engine.h"
#include "layout.h"
#include "process/confine.h"
#include "util/json.h"
#include "util/log.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#define LABEL_INSTANCE "org.ocps-proxy.instance"
#define LABEL_TASK     "org.ocps-proxy.task"
#define NOBODY_ID      65534

struct dtask;

struct docker_state {
    const struct config *cfg;
    struct backend_listener listener;
    struct engine *engine;
    char *instance;
    pthread_mutex_t lock;
    struct dtask *tasks;
    int shutdown_fd; /* eventfd: the daemon is stopping; runners let go */
    atomic_bool stopping;
    pthread_cond_t back;   /* broadcast when the events stream (re)connects */
    atomic_bool connected; /* the events stream is up: dockerd answers */
    pthread_cond_t event;  /* broadcast when a die event is recorded */
    pthread_t events_thread;
    bool events_running;
    /* Runner threads (detached) and the tasks launched for them. */
    pthread_cond_t work;        /* signalled when a task is queued for a runner */
    pthread_cond_t runner_done; /* broadcast when a runner lets go of a task or ends */
    pthread_cond_t release;     /* broadcast when release() hands a task back to its runner */
    struct dtask *work_head, *work_tail;
    size_t n_work, n_idle, n_runners;
    bool root; /* running as root (asked once: two syscalls fewer per task) */
};

enum runner_mode {
    RUN_START,  /* image, create, wait, start */
    RUN_FOLLOW, /* recovered: the container runs */
    RUN_FINISH, /* recovered: the container has ended */
};

struct dtask {
    struct docker_state *ds;
    char id[37];
    char name[48];   /* container name: ocps-<id> */
    char *container; /* its Docker id, once created */
    struct task *task;
    char *task_dir;
    char *out_path, *err_path;
    struct confine_user user; /* uid:gid in the container, file access on the host */
    enum runner_mode mode;
    usec_t started;

    int cancel_fd; /* eventfd: cancel requested */
    int wall_fd;   /* timerfd: walltime, -1 without one */
    int syslog_fd; /* <task_dir>/system.log */
    bool cancel;   /* under ds->lock */
    bool walltime_hit;
    bool dockerd_lost; /* the connection broke while the container ran */
    /* What the event stream said (under ds->lock): the exit code and time
     * of the container's death, and whether the kernel OOM-killed in it. */
    bool ev_die, ev_oom;
    int ev_exit;
    int ev_kill;       /* the signal of a kill event, 0 if none */
    bool stop_sent;    /* the runner itself stopped the container */
    int external_kill; /* a signal someone else sent the container */
    bool ran;          /* started (or found running): a die event will come */
    usec_t ev_time;
    char *start_error; /* dockerd refused to start it */

    /* The wait and the logs, driven together by the runner. */
    struct engine_group *group;
    int logs_call; /* its number in the group, -1 when not following */
    int out_fd, err_fd;

    bool reported; /* the runner's: ended() was told */
    bool released; /* under ds->lock: release() came; the runner removes, then frees t */
    bool done;     /* under ds->lock: its runner has let go of it */
    struct dtask *work_next;
    struct dtask *next;
};

/* ---- helpers ---- */

static void dtask_free(struct dtask *t)
{
    if (!t)
        return;
    free(t->container);
    task_free(t->task);
    free(t->task_dir);
    free(t->out_path);
    free(t->err_path);
    free(t->start_error);
    confine_user_done(&t->user);
    closep(&t->cancel_fd);
    closep(&t->wall_fd);
    closep(&t->syslog_fd);
    closep(&t->out_fd);
    closep(&t->err_fd);
    engine_group_free(t->group);
    free(t);
}

/* What a task's long calls watch besides the engine's shutdown fd: a
 * cancel, its walltime. */
static size_t abort_fds(const struct dtask *t, int fds[static 2])
{
    fds[0] = t->cancel_fd;
    fds[1] = t->wall_fd;
    return 2;
}

/* One line of the task's system log (opened once per task, O_APPEND: the
 * runner and the events thread write whole lines). */
static void syslog_line(const struct dtask *t, const char *fmt, ...) _printf_(2, 3);
static void syslog_line(const struct dtask *t, const char *fmt, ...)
{
    char ts[32];
    va_list ap;
    if (t->syslog_fd < 0)
        return;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    _cleanup_free_ char *line =
        xasprintf("%s %s\n", format_rfc3339(now_realtime(), ts), msg ? msg : "");
    (void) loop_write(t->syslog_fd, line, strlen(line));
}

void image_ref_done(struct image_ref *r)
{
    free(r->name);
    free(r->tag);
    free(r->registry);
}

static bool ref_component_ok(const char *s, size_t n)
{
    /* [a-z0-9]+ ([._-]|__)[a-z0-9]+ ... as Docker's reference grammar */
    if (n == 0 || !(islower(s[0]) || isdigit(s[0])) || !(islower(s[n - 1]) || isdigit(s[n - 1])))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower(s[i]) || isdigit(s[i]) || strchr("._-", s[i])))
            return false;
    return true;
}

int docker_image_ref_parse(const char *ref, struct image_ref *ret)
{
    if (isempty(ref) || strlen(ref) > 255)
        return -EINVAL;
    _cleanup_free_ char *s = xstrdup(ref);
    char *tag = NULL;
    char *at = strchr(s, '@');
    if (at) {
        *at = '\0';
        tag = at + 1;
        if (!startswith(tag, "sha256:") || strlen(tag) != 7 + 64 ||
            strspn(tag + 7, "0123456789abcdef") != 64)
            return -EINVAL;
    } else {
        char *slash = strrchr(s, '/');
        char *colon = strrchr(slash ? slash : s, ':');
        if (colon) {
            *colon = '\0';
            tag = colon + 1;
            size_t n = strlen(tag);
            if (n == 0 || n > 128 || !(isalnum(tag[0]) || tag[0] == '_'))
                return -EINVAL;
            for (size_t i = 0; i < n; i++)
                if (!(isalnum(tag[i]) || strchr("_.-", tag[i])))
                    return -EINVAL;
        }
    }
    /* The first component is a registry host if it looks like one. */
    const char *path = s;
    _cleanup_free_ char *registry = NULL;
    char *slash = strchr(s, '/');
    if (slash && (memchr(s, '.', slash - s) || memchr(s, ':', slash - s) ||
                  ((size_t) (slash - s) == strlen("localhost") && startswith(s, "localhost")))) {
        registry = xstrndup(s, slash - s);
        for (const char *c = registry; *c; c++)
            if (!(isalnum(*c) || strchr(".-:[]", *c)))
                return -EINVAL;
        path = slash + 1;
    }
    for (const char *c = path;;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t) (e - c) : strlen(c);
        if (!ref_component_ok(c, n))
            return -EINVAL;
        if (!e)
            break;
        c = e + 1;
    }
    *ret = (struct image_ref){
        .name = xstrdup(s),
        .tag = xstrdup(tag ? tag : "latest"),
        .registry = registry ? TAKE_PTR(registry) : xstrdup("docker.io"),
    };
    return 0;
}

/* Docker's never-set time is 0001-01-01T00:00:00Z. */
static usec_t docker_time(const char *s)
{
    usec_t t;
    if (!s || startswith(s, "0001-") || parse_rfc3339(s, &t) < 0)
        return 0;
    return t;
}

/* ---- files as the task's user ---- */

struct open_args {
    const char *path;
    int flags;
    int fd;
};

static int open_as(void *p)
{
    struct open_args *a = p;
    a->fd = open(a->path, a->flags | O_CLOEXEC | O_NOCTTY, 0640);
    return a->fd < 0 ? -errno : 0;
}

/* The task's own output paths are opened as its user (a request must not
 * write where its user may not); the defaults under the data dir as us. */
static int open_output(struct dtask *t, const char *path, bool user_path, int *ret_fd)
{
    struct open_args a = {path, O_WRONLY | O_CREAT | O_TRUNC, -1};
    int r = user_path ? confine_as_user(&t->user, open_as, &a) : open_as(&a);
    if (r < 0)
        return r;
    *ret_fd = a.fd;
    return 0;
}

struct access_args {
    const char *path;
    int mode;
};

static int access_as(void *p)
{
    struct access_args *a = p;
    return faccessat(AT_FDCWD, a->path, a->mode, AT_EACCESS) < 0 ? -errno : 0;
}

/* ---- the engine calls of a task ---- */

static char *registry_auth_header(struct docker_state *ds, const char *registry)
{
    for (size_t i = 0; i < ds->cfg->n_docker_registries; i++) {
        const struct config_registry *r = &ds->cfg->docker_registries[i];
        if (!streq(r->host, registry))
            continue;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "username", r->username);
        cJSON_AddStringToObject(j, "password", r->password);
        cJSON_AddStringToObject(j, "serveraddress", r->host);
        _cleanup_free_ char *text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        /* base64url, as the Engine API asks */
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t n = strlen(text);
        char *out = xmalloc(strlen("X-Registry-Auth: ") + (n + 2) / 3 * 4 + 1);
        char *o = stpcpy(out, "X-Registry-Auth: ");
        for (size_t k = 0; k < n; k += 3) {
            uint32_t v = (uint32_t) (unsigned char) text[k] << 16;
            if (k + 1 < n)
                v |= (uint32_t) (unsigned char) text[k + 1] << 8;
            if (k + 2 < n)
                v |= (unsigned char) text[k + 2];
            *o++ = b64[(v >> 18) & 63];
            *o++ = b64[(v >> 12) & 63];
            *o++ = k + 1 < n ? b64[(v >> 6) & 63] : '=';
            *o++ = k + 2 < n ? b64[v & 63] : '=';
        }
        *o = '\0';
        return out;
    }
    return NULL;
}

struct pull {
    struct dtask *t;
    char *error;
    char last[256];
};

static int pull_line(void *userdata, const char *line, size_t len)
{
    struct pull *p = userdata;
    cJSON *j = cJSON_ParseWithLength(line, len);
    if (!j)
        return 0;
    const char *error = json_str(j, "error");
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(j, "errorDetail");
    if (!error)
        error = json_str(detail, "message");
    if (error) {
        free(p->error);
        p->error = xstrdup(error);
        syslog_line(p->t, "pull: error: %s", error);
    } else {
        const char *status = json_str(j, "status"), *id = json_str(j, "id");
        char now[256];
        snprintf(now, sizeof(now), "%s%s%s", id ? id : "", id ? ": " : "", status ? status : "");
        /* Progress ticks repeat the status: one line per change. */
        if (status && !streq(now, p->last)) {
            syslog_line(p->t, "pull: %s", now);
            snprintf(p->last, sizeof(p->last), "%s", now);
        }
    }
    cJSON_Delete(j);
    return 0;
}

/* Pulls the task's image. -ENOENT is the task's fault (refused by the
 * registry or by dockerd), the rest the system's. */
static int pull_image(struct dtask *t, struct error *err)
{
    struct docker_state *ds = t->ds;
    const char *image = t->task->container->image;
    int st;

    struct image_ref ref;
    if (docker_image_ref_parse(image, &ref) < 0)
        return error_set(err, -EINVAL, "invalid image reference \"%s\"", image);
    _cleanup_free_ char *n = rest_escape(ref.name), *tag = rest_escape(ref.tag);
    _cleanup_free_ char *create = xasprintf("/images/create?fromImage=%s&tag=%s", n, tag);
    _cleanup_free_ char *auth = registry_auth_header(ds, ref.registry);
    image_ref_done(&ref);

    struct pull p = {.t = t};
    int fds[2];
    struct engine_stream s = {.line = pull_line,
                              .userdata = &p,
                              .abort_fds = fds,
                              .n_abort_fds = abort_fds(t, fds),
                              .header = auth};
    syslog_line(t, "pull: %s", image);
    st = engine_stream(ds->engine, "POST", create, NULL, &s, err);
    if (st < 0) {
        free(p.error);
        return st;
    }
    if (st >= 400 || p.error) {
        /* dockerd answered: the registry or the name refused the image
         * (unknown tag, no credentials), which is the task's to fix. */
        int code = -ENOENT;
        int r = error_set(err, code, "pull %s: %s", image, p.error ? p.error : error_message(err));
        free(p.error);
        return r;
    }
    syslog_line(t, "pull: %s done", image);
    return 0;
}

static cJSON *build_create(struct dtask *t)
{
    struct docker_state *ds = t->ds;
    const struct task *task = t->task;
    const struct task_container *c = task->container;
    char buf[64];

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "Image", c->image);
    if (c->cmd.argv) {
        cJSON *cmd = cJSON_AddArrayToObject(j, "Cmd");
        if (c->cmd.shell) {
            cJSON_AddItemToArray(cmd, cJSON_CreateString("/bin/sh"));
            cJSON_AddItemToArray(cmd, cJSON_CreateString("-c"));
        }
        for (char **a = c->cmd.argv; *a; a++)
            cJSON_AddItemToArray(cmd, cJSON_CreateString(*a));
    }
    cJSON *env = cJSON_AddArrayToObject(j, "Env");
    for (size_t i = 0; i < task->n_env; i++) {
        _cleanup_free_ char *kv = xasprintf("%s=%s", task->env[i].key, task->env[i].value);
        cJSON_AddItemToArray(env, cJSON_CreateString(kv));
    }
    _cleanup_free_ char *idenv = xasprintf("OCPS_TASK_ID=%s", t->id);
    cJSON_AddItemToArray(env, cJSON_CreateString(idenv));
    if (task->workdir)
        cJSON_AddStringToObject(j, "WorkingDir", task->workdir);
    snprintf(buf, sizeof(buf), "%u:%u", (unsigned) t->user.uid, (unsigned) t->user.gid);
    cJSON_AddStringToObject(j, "User", buf);
    cJSON_AddBoolToObject(j, "Tty", false);
    cJSON_AddBoolToObject(j, "AttachStdin", false);
    cJSON_AddBoolToObject(j, "OpenStdin", false);
    cJSON *labels = cJSON_AddObjectToObject(j, "Labels");
    cJSON_AddStringToObject(labels, LABEL_INSTANCE, ds->instance);
    cJSON_AddStringToObject(labels, LABEL_TASK, t->id);
    for (size_t i = 0; i < task->n_tags; i++) {
        _cleanup_free_ char *k = xasprintf("org.ocps-proxy.tag.%s", task->tags[i].key);
        cJSON_AddStringToObject(labels, k, task->tags[i].value);
    }

    cJSON *hc = cJSON_AddObjectToObject(j, "HostConfig");
    if (c->n_ports) {
        cJSON *exposed = cJSON_AddObjectToObject(j, "ExposedPorts");
        cJSON *bindings = cJSON_AddObjectToObject(hc, "PortBindings");
        for (size_t i = 0; i < c->n_ports; i++) {
            snprintf(buf, sizeof(buf), "%u/tcp", (unsigned) c->ports[i].container);
            if (!cJSON_GetObjectItemCaseSensitive(exposed, buf))
                cJSON_AddObjectToObject(exposed, buf);
            cJSON *list = cJSON_GetObjectItemCaseSensitive(bindings, buf);
            if (!list)
                list = cJSON_AddArrayToObject(bindings, buf);
            cJSON *b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "HostIp", ds->cfg->docker_port_address);
            char port[16];
            snprintf(port, sizeof(port), "%u", (unsigned) c->ports[i].host);
            cJSON_AddStringToObject(b, "HostPort", port);
            cJSON_AddItemToArray(list, b);
        }
    }
    if (c->n_mounts) {
        /* Mounts, not Binds: a missing source is an error, never a new directory. */
        cJSON *mounts = cJSON_AddArrayToObject(hc, "Mounts");
        for (size_t i = 0; i < c->n_mounts; i++) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "Type", "bind");
            cJSON_AddStringToObject(m, "Source", c->mounts[i].host);
            cJSON_AddStringToObject(m, "Target", c->mounts[i].container);
            cJSON_AddBoolToObject(m, "ReadOnly", c->mounts[i].mode == MOUNT_RO);
            cJSON_AddItemToArray(mounts, m);
        }
    }
    if (ds->cfg->docker_network)
        cJSON_AddStringToObject(hc, "NetworkMode", ds->cfg->docker_network);
    cJSON_AddNumberToObject(hc, "NanoCpus", (double) (int64_t) (task->cores * 1e9 + 0.5));
    cJSON_AddNumberToObject(hc, "Memory", (double) task->memory);
    cJSON_AddNumberToObject(hc, "MemorySwap", (double) task->memory); /* no hidden swap */
    if (ds->cfg->pids_limit)
        cJSON_AddNumberToObject(hc, "PidsLimit", (double) ds->cfg->pids_limit);
    if (task->cputime) {
        /* Soft below hard: SIGXCPU (exit 152) at the limit names the cause. */
        cJSON *ul = cJSON_AddArrayToObject(hc, "Ulimits");
        cJSON *cpu = cJSON_CreateObject();
        cJSON_AddStringToObject(cpu, "Name", "cpu");
        cJSON_AddNumberToObject(cpu, "Soft", (double) task->cputime);
        cJSON_AddNumberToObject(cpu, "Hard", (double) task->cputime + 1);
        cJSON_AddItemToArray(ul, cpu);
    }
    if (t->user.n_groups > 0) {
        cJSON *ga = cJSON_AddArrayToObject(hc, "GroupAdd");
        for (int i = 0; i < t->user.n_groups; i++) {
            snprintf(buf, sizeof(buf), "%u", (unsigned) t->user.groups[i]);
            cJSON_AddItemToArray(ga, cJSON_CreateString(buf));
        }
    }
    cJSON *capdrop = cJSON_AddArrayToObject(hc, "CapDrop");
    cJSON_AddItemToArray(capdrop, cJSON_CreateString("ALL"));
    cJSON *secopt = cJSON_AddArrayToObject(hc, "SecurityOpt");
    cJSON_AddItemToArray(secopt, cJSON_CreateString("no-new-privileges"));
    cJSON_AddBoolToObject(hc, "Init", true);
    cJSON_AddBoolToObject(hc, "AutoRemove", false);
    return j;
}

/* ---- outcome ---- */

/* What the container's State (or the events) and the runner saw, for
 * the one classifier (outcome.h). */
static void container_facts(struct dtask *t, const cJSON *state, struct outcome_facts *f,
                            char **ret_words)
{
    const struct task *task = t->task;
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(state, "ExitCode");
    int code = cJSON_IsNumber(ec) ? ec->valueint : -1;
    const char *error = json_str(state, "Error");
    usec_t started = docker_time(json_str(state, "StartedAt"));
    usec_t finished = docker_time(json_str(state, "FinishedAt"));

    pthread_mutex_lock(&t->ds->lock);
    bool cancel = t->cancel;
    pthread_mutex_unlock(&t->ds->lock);

    *f = (struct outcome_facts){
        .memory = task->memory,
        .cputime = task->cputime,
        .walltime = task->walltime,
        .canceled = cancel,
        .walltime_hit = t->walltime_hit,
        .oom = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "OOMKilled")),
        .external_signal = t->external_kill,
        .external_hint = "docker stop or kill, or dockerd shutting down",
        .exit_code = code,
        /* Docker's init (tini) exits 128+N for a command killed by signal N. */
        .signal = code > 128 && code < 128 + 65 ? code - 128 : 0,
        .started = started ? started : t->started,
        .finished = finished,
    };
    if (t->start_error || (!started && error && *error)) {
        *ret_words = xasprintf("start failed: %s", t->start_error ? t->start_error : error);
        f->start_error = *ret_words;
    } else if (t->dockerd_lost) {
        *ret_words = xasprintf(
            "dockerd stopped while the task ran; its container ended with status %d", code);
        f->system_error = *ret_words;
    }
}

static void remove_container(struct dtask *t);

/* The outcome file first (a restart finds it, with the reasons the
 * container cannot tell: cancelled, walltime), then the supervisor hears.
 * Not fsync'd: the store fsyncs the end, and the container stays until
 * then (runner_main). */
static void report(struct dtask *t, const struct task_outcome *o)
{
    int r = task_outcome_write(t->task_dir, o, false);
    if (r < 0)
        log_error("task %s: cannot record the outcome: %s", t->id, strerror(-r));
    syslog_line(t, "%s: %s", task_state_to_string(o->state), o->reason);
    t->reported = true;
    t->ds->listener.ended(t->ds->listener.userdata, t->id, o);
}

/* It ended before its container ran (cancelled, or the image or the
 * container could not be made), or the container was lost. */
static void fail(struct dtask *t, struct outcome_facts *f)
{
    struct task_outcome o;
    f->memory = t->task->memory;
    f->cputime = t->task->cputime;
    f->walltime = t->task->walltime;
    f->started = t->started;
    outcome_classify(f, &o);
    report(t, &o);
    task_outcome_done(&o);
}

/* ---- the runner ---- */

/* The task's stdout and stderr files, opened (truncated) once. */
static int open_outputs(struct dtask *t)
{
    int r = 0;
    if (t->out_fd < 0)
        r = open_output(t, t->out_path, t->task->stdout_path != NULL, &t->out_fd);
    if (r >= 0 && t->err_fd < 0)
        r = open_output(t, t->err_path, t->task->stderr_path != NULL, &t->err_fd);
    if (r < 0)
        syslog_line(t, "cannot open the output files: %s", strerror(-r));
    return r;
}

static void logs_ended(struct dtask *t, int r, const struct error *err)
{
    t->logs_call = -1;
    if (r < 0 || r >= 400)
        syslog_line(t, "logs: %s", error_message(err));
}

/* The container's output, whole, when it ended while we were away. */
static void collect_logs(struct dtask *t)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    if (open_outputs(t) < 0)
        return;
    int r = engine_logs(t->ds->engine, t->container, false, t->out_fd, t->err_fd, -1, &err);
    logs_ended(t, r, &err);
}

/* logs?follow=1 into the output files, driven with the wait by the runner. */
static void start_logs(struct dtask *t)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    if (open_outputs(t) < 0)
        return;
    int n = engine_group_logs(t->group, t->container, t->out_fd, t->err_fd, &err);
    if (n < 0)
        logs_ended(t, n, &err);
    else
        t->logs_call = n;
}

/* Runs the followed logs to their end (the container has stopped). */
static void finish_logs(struct dtask *t)
{
    while (t->logs_call >= 0) {
        _cleanup_error_ struct error err = ERROR_INIT;
        int r = 0;
        int n = engine_group_run(t->group, NULL, 0, &r, &err);
        if (n == t->logs_call)
            logs_ended(t, r, &err);
        else if (n < 0) {
            logs_ended(t, n, &err);
            break;
        }
    }
}

static void running(struct dtask *t)
{
    t->ran = true;
    if (!t->started)
        t->started = now_realtime();
    t->ds->listener.running(t->ds->listener.userdata, t->id, t->started);
}

struct waiter {
    struct dtask *t;
    bool start; /* start the container once the wait is registered */
    bool started;
    long exit_code;
    bool have_exit;
};

static int wait_line(void *userdata, const char *line, size_t len)
{
    struct waiter *w = userdata;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "StatusCode");
    if (cJSON_IsNumber(c)) {
        w->exit_code = (long) c->valuedouble;
        w->have_exit = true;
    }
    cJSON_Delete(j);
    return 0;
}

/* The wait's headers are in: it is registered, so starting now cannot
 * lose the exit. (A second easy handle inside a callback of the first is
 * fine: they share nothing.) */
static void wait_registered(void *userdata, long status)
{
    struct waiter *w = userdata;
    struct dtask *t = w->t;
    if (!w->start || w->started)
        return;
    w->started = true;
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *path = xasprintf("/containers/%s/start", t->container);
    int st = engine_call(t->ds->engine, "POST", path, NULL, NULL, &err);
    if (st == 204 || st == 304) {
        running(t);
        start_logs(t);
        return;
    }
    /* Nothing will exit: stop waiting. */
    t->start_error = xstrdup(st < 0 ? error_message(&err) : error_message(&err));
    (void) eventfd_write(t->cancel_fd, 1);
}

static int stop_container(struct dtask *t)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *path =
        xasprintf("/containers/%s/stop?t=%u", t->container, t->ds->cfg->kill_grace);
    int st = engine_call(t->ds->engine, "POST", path, NULL, NULL, &err);
    if ((st < 0 && st != -ECANCELED) || (st >= 400 && st != 404))
        log_warn("task %s: stop: %s", t->id, error_message(&err));
    return st;
}

/* Until dockerd answers again (true) or the daemon stops (false). A
 * cancel waits too: only dockerd can stop the container. */
static bool dockerd_wait(struct docker_state *ds)
{
    for (unsigned delay = 200;; delay = MIN(delay * 2, 5000)) {
        _cleanup_error_ struct error err = ERROR_INIT;
        if (atomic_load(&ds->stopping))
            return false;
        if (engine_ping(ds->engine, &err) >= 0)
            return true;
        /* Woken early when the events stream reconnects or at shutdown. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += delay / 1000;
        until.tv_nsec += (long) (delay % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&ds->lock);
        if (!atomic_load(&ds->stopping))
            (void) pthread_cond_timedwait(&ds->back, &ds->lock, &until);
        pthread_mutex_unlock(&ds->lock);
    }
}

static bool wait_for_dockerd(struct dtask *t)
{
    return dockerd_wait(t->ds);
}

static int inspect(struct dtask *t, cJSON **ret, struct error *err)
{
    _cleanup_free_ char *path = xasprintf("/containers/%s/json", t->container);
    return engine_call(t->ds->engine, "GET", path, NULL, ret, err);
}

/* DELETE of a container (by id or name) and its anonymous volumes. */
static int delete_container(struct docker_state *ds, const char *container, struct error *err)
{
    _cleanup_free_ char *path = xasprintf("/containers/%s?force=1&v=1", container);
    return engine_call(ds->engine, "DELETE", path, NULL, NULL, err);
}

/* The container of a task whose end was reported by an earlier daemon:
 * removed once that outcome file is surely on disk, as the container
 * is the end's other record (unless the config keeps containers).
 * Returns the DELETE's status, 0 when kept, or a negative errno. */
static int delete_recorded(struct docker_state *ds, const char *task_dir, const char *id)
{
    _cleanup_free_ char *outcome = layout_in_task_dir(task_dir, LAYOUT_OUTCOME);
    int r = fsync_path(outcome);
    if (r < 0 || ds->cfg->docker_keep_containers)
        return r < 0 ? r : 0; /* kept */
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *name = xasprintf("ocps-%s", id);
    return delete_container(ds, name, &err);
}

static void remove_container(struct dtask *t)
{
    if (t->ds->cfg->docker_keep_containers || !t->container)
        return;
    _cleanup_error_ struct error err = ERROR_INIT;
    int st = delete_container(t->ds, t->container, &err);
    /* Cancelled: the daemon stops, and the next one's reconcile removes it. */
    if ((st < 0 && st != -ECANCELED) || (st >= 400 && st != 404))
        log_warn("task %s: remove container %s: %s", t->id, t->container, error_message(&err));
}

/* Create, then wait-and-start. Returns 0 with the container started and
 * the wait done (or aborted), or a negative errno with err set: -ENOENT
 * and -EINVAL are the task's fault. */
static int create_container(struct dtask *t, struct error *err)
{
    cJSON *body = build_create(t);
    _cleanup_free_ char *path = xasprintf("/containers/create?name=%s", t->name);
    cJSON *reply = NULL;
    int st = engine_call(t->ds->engine, "POST", path, body, &reply, err);
    if (st == 409) {
        /* Left over from an attempt that provably never ran (recover). */
        (void) delete_container(t->ds, t->name, err);
        st = engine_call(t->ds->engine, "POST", path, body, &reply, err);
    }
    cJSON_Delete(body);
    if (st < 0)
        return st;
    if (st != 201) {
        cJSON_Delete(reply);
        /* 404 is "No such image": the caller pulls by the policy. */
        return error_set(err,
                         st == 404   ? -ENXIO
                         : st == 400 ? -EINVAL
                                     : -EREMOTEIO,
                         "create: %s", error_message(err));
    }
    const char *id = json_str(reply, "Id");
    t->container = xstrdup(id ? id : t->name);
    cJSON_Delete(reply);
    syslog_line(t, "container %s created", t->container);
    return 0;
}

/* Follows the container to its end: a wait (next-exit when we start it,
 * not-running otherwise), walltime and cancel through the abort fds, dockerd
 * going away and coming back. */
static bool follow(struct dtask *t, bool start)
{
    struct waiter w = {.t = t, .start = start};
    int fds[2];
    size_t n_fds = abort_fds(t, fds);
    for (;;) {
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_free_ char *path = xasprintf("/containers/%s/wait?condition=%s", t->container,
                                              w.start && !w.started ? "next-exit" : "not-running");
        struct engine_stream s = {
            .line = wait_line, .headers_done = wait_registered, .userdata = &w};
        int st = engine_group_stream(t->group, "POST", path, NULL, &s, &err);
        /* The logs (started with the container) may end first. */
        for (int wait_call = st; wait_call >= 0;) {
            int r = 0;
            error_clear(&err);
            int n = engine_group_run(t->group, fds, n_fds, &r, &err);
            if (n >= 0 && n == t->logs_call) {
                logs_ended(t, r, &err);
                continue;
            }
            if (n < 0)
                engine_group_cancel(t->group, wait_call);
            st = n == wait_call ? r : n;
            break;
        }
        if (st >= 200 && st < 300 && w.have_exit)
            return true;
        if (atomic_load(&t->ds->stopping))
            return false; /* the container runs on; the next daemon follows it */
        if (st == -ECANCELED) {
            if (t->start_error)
                return true;
            uint64_t v;
            if ((t->wall_fd >= 0 && eventfd_read(t->wall_fd, &v) == 0) || t->walltime_hit) {
                t->walltime_hit = true;
                syslog_line(t, "walltime limit %" PRIu64 " s reached: stopping", t->task->walltime);
            } else
                syslog_line(t, "cancelled: stopping (grace %u s)", t->ds->cfg->kill_grace);
            pthread_mutex_lock(&t->ds->lock);
            t->stop_sent = true;
            pthread_mutex_unlock(&t->ds->lock);
            if (stop_container(t) >= 0)
                return true;
            /* dockerd is gone: fall through to wait for it */
        } else if (st == 404) {
            return true; /* removed behind our back: inspect will say so */
        } else if (st >= 0) {
            log_warn("task %s: wait: HTTP %d %s", t->id, st, error_message(&err));
        }
        /* The connection broke: dockerd stopped or restarted. */
        if (!t->dockerd_lost)
            syslog_line(t, "lost dockerd (%s); waiting for it", error_message(&err));
        t->dockerd_lost = true;
        if (!wait_for_dockerd(t))
            return false;
        syslog_line(t, "dockerd answers again");
        cJSON *info = NULL;
        int ist = inspect(t, &info, &err);
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(info, "State");
        bool live = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "Running"));
        cJSON_Delete(info);
        if (ist == 404 || (ist == 200 && !live))
            return true;
        if (ist == 200 && live) {
            t->dockerd_lost = false; /* it survived (live-restore): follow on */
            w.start = false;
        }
    }
}

/* Docker's init (tini, HostConfig.Init) runs the command, so an exec that
 * fails is its exit 127 with "[FATAL tini (N)] exec X failed: why" as the
 * first line of stderr, not an error from start: read it back as one. */
static char *init_exec_error(struct dtask *t, int exit_code)
{
    if (exit_code != 127)
        return NULL;
    _cleanup_free_ char *data = NULL;
    if (read_file(t->err_path, 4096, &data, NULL) < 0 && !data)
        return NULL;
    if (!data || !startswith(data, "[FATAL tini ("))
        return NULL;
    const char *msg = strstr(data, "] ");
    if (!msg)
        return NULL;
    msg += 2;
    return xstrndup(msg, strcspn(msg, "\n"));
}

/* Waits (briefly) for the container's die event, which the wait's reply
 * races; false when the stream is down or it does not come. */
static bool die_event(struct dtask *t)
{
    struct docker_state *ds = t->ds;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    pthread_mutex_lock(&ds->lock);
    while (!t->ev_die && atomic_load(&ds->connected) && !atomic_load(&ds->stopping))
        if (pthread_cond_timedwait(&ds->event, &ds->lock, &until) == ETIMEDOUT)
            break;
    bool seen = t->ev_die;
    pthread_mutex_unlock(&ds->lock);
    return seen;
}

static void finish(struct dtask *t)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    finish_logs(t);
    cJSON *info = NULL;
    int st = 0;
    if (t->ran && !t->start_error && !t->dockerd_lost && die_event(t)) {
        /* dockerd's die event told the exit (and an oom event before it
         * the OOM kill): the outcome needs no inspect call. */
        pthread_mutex_lock(&t->ds->lock);
        info = cJSON_CreateObject();
        cJSON *state = cJSON_AddObjectToObject(info, "State");
        cJSON_AddNumberToObject(state, "ExitCode", t->ev_exit);
        cJSON_AddBoolToObject(state, "OOMKilled", t->ev_oom);
        char ts[32];
        cJSON_AddStringToObject(state, "FinishedAt", format_rfc3339(t->ev_time, ts));
        if (t->ev_kill && !t->stop_sent)
            t->external_kill = t->ev_kill;
        pthread_mutex_unlock(&t->ds->lock);
        st = 200;
        if (t->external_kill) {
            /* Killed, not by us: if dockerd is going away, that is why;
             * its container is removed once it is back. */
            _cleanup_error_ struct error perr = ERROR_INIT;
            if (engine_ping(t->ds->engine, &perr) < 0) {
                t->dockerd_lost = true;
                syslog_line(t, "lost dockerd (%s); waiting for it", error_message(&perr));
                if (!wait_for_dockerd(t)) {
                    cJSON_Delete(info);
                    return;
                }
            }
        }
    } else
        st = inspect(t, &info, &err);
    if (st == -EREMOTEIO) {
        /* dockerd went away as the container ended: it stopped it. */
        t->dockerd_lost = true;
        syslog_line(t, "lost dockerd (%s); waiting for it", error_message(&err));
        if (!wait_for_dockerd(t))
            return;
        st = inspect(t, &info, &err);
    }
    if (st < 0 && atomic_load(&t->ds->stopping))
        return; /* the call was cut short: the next daemon finishes it */
    if (st == 404 || st < 0 || st >= 400) {
        cJSON_Delete(info);
        _cleanup_free_ char *reason =
            st == 404 ? xstrdup("its container disappeared (removed outside the proxy)")
                      : xasprintf("cannot inspect its container: %s", error_message(&err));
        fail(t, &(struct outcome_facts){.system_error = reason, .exit_code = -1});
        return;
    }
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(info, "State");
    if (t->mode == RUN_FINISH)
        collect_logs(t); /* ended while we were away: the files whole from dockerd's copy */
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(state, "ExitCode");
    if (!t->start_error)
        t->start_error = init_exec_error(t, cJSON_IsNumber(ec) ? ec->valueint : -1);
    struct outcome_facts f;
    struct task_outcome o;
    _cleanup_free_ char *words = NULL;
    container_facts(t, state, &f, &words);
    outcome_classify(&f, &o);
    cJSON_Delete(info);
    report(t, &o);
    task_outcome_done(&o);
}

static void run_task(struct dtask *t)
{
    _cleanup_error_ struct error err = ERROR_INIT;

    if (t->mode == RUN_START) {
        /* The image by the pull policy: always pulls first; otherwise create
         * tells whether it is there (one call fewer per task than asking). */
        enum docker_pull policy = t->ds->cfg->docker_pull;
        int r = policy == DOCKER_PULL_ALWAYS ? pull_image(t, &err) : 0;
        if (r >= 0)
            r = create_container(t, &err);
        if (r == -ENXIO && policy == DOCKER_PULL_NEVER)
            r = error_set(&err, -ENOENT,
                          "image %s is not present on this host and the pull policy is never",
                          t->task->container->image);
        else if (r == -ENXIO) {
            r = pull_image(t, &err);
            if (r >= 0)
                r = create_container(t, &err);
        }
        if (r == -ECANCELED && atomic_load(&t->ds->stopping))
            return; /* no container yet: the next daemon starts it afresh */
        if (r == -ECANCELED) {
            fail(t, &(struct outcome_facts){.canceled = true, .exit_code = -1});
            return;
        }
        if (r < 0) {
            bool task_fault = r == -ENOENT || r == -EINVAL;
            _cleanup_free_ char *reason = xstrdup(error_message(&err));
            log_warn("task %s: %s", t->id, reason);
            fail(t,
                 &(struct outcome_facts){.start_error = reason, .start_error_system = !task_fault});
            return;
        }
        if (!follow(t, true))
            return;
    } else if (t->mode == RUN_FOLLOW) {
        running(t);
        start_logs(t);
        if (!follow(t, false))
            return;
    }
    finish(t);
}

/* Runner threads outlive their task and take the next one launched, up
 * to RUNNERS_IDLE_MAX of them idle: a thread's start and exit cost more
 * than most of what it does for a short task. */
#define RUNNERS_IDLE_MAX 8

static void *runner_main(void *arg)
{
    struct docker_state *ds = arg;
    (void) pthread_setname_np(pthread_self(), "ocps-dk-runner");
    pthread_mutex_lock(&ds->lock);
    for (;;) {
        while (!ds->work_head && !atomic_load(&ds->stopping)) {
            ds->n_idle++;
            pthread_cond_wait(&ds->work, &ds->lock);
            ds->n_idle--;
        }
        if (atomic_load(&ds->stopping))
            break; /* what is queued never started: the next daemon starts it */
        struct dtask *t = ds->work_head;
        ds->work_head = t->work_next;
        if (!ds->work_head)
            ds->work_tail = NULL;
        ds->n_work--;
        pthread_mutex_unlock(&ds->lock);
        run_task(t);
        pthread_mutex_lock(&ds->lock);
        /* Its end reported, the container waits for the store to have it
         * (release); a stopping daemon leaves it to the next one. */
        while (t->reported && !t->released && !atomic_load(&ds->stopping))
            pthread_cond_wait(&ds->release, &ds->lock);
        if (t->released) {
            /* release() unlinked it: it is the runner's alone. */
            pthread_mutex_unlock(&ds->lock);
            if (t->reported)
                remove_container(t);
            dtask_free(t);
            pthread_mutex_lock(&ds->lock);
        } else {
            t->done = true;
            pthread_cond_broadcast(&ds->runner_done);
        }
        if (ds->n_idle >= RUNNERS_IDLE_MAX)
            break;
    }
    ds->n_runners--;
    pthread_cond_broadcast(&ds->runner_done);
    pthread_mutex_unlock(&ds->lock);
    return NULL;
}

/* ---- the events stream ---- */

static struct dtask *find(struct docker_state *ds, const char *id);

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
        struct dtask *t = find(ds, tid);
        if (t) {
            syslog_line(t, "event: %s%s%s", action, code ? ", exit code " : "", code ? code : "");
            if (streq(action, "oom"))
                t->ev_oom = true;
            const char *sig = json_str(attrs, "signal");
            if (streq(action, "kill") && sig)
                t->ev_kill = atoi(sig);
            if (streq(action, "die") && code) {
                t->ev_die = true;
                t->ev_exit = atoi(code);
                t->ev_time =
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
            if (tid && find(ds, tid))
                owned++;
            else if (tid && task_id_ok(tid) && state &&
                     (streq(state, "exited") || streq(state, "dead")))
                strv_push(&gone, tid);
        }
        pthread_cond_broadcast(&ds->back);
        pthread_mutex_unlock(&ds->lock);
        STRV_FOREACH (tid, gone) {
            _cleanup_free_ char *dir = layout_task_dir(ds->cfg->data_dir, *tid);
            stale += delete_recorded(ds, dir, *tid) == 204;
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

/* The first container task (submitted or recovered) connects: libcurl is
 * loaded, dockerd asked, and its event stream followed from then on. */
static void connect_once(struct docker_state *ds)
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

/* ---- backend slots ---- */

static struct dtask *find(struct docker_state *ds, const char *id)
{
    for (struct dtask *t = ds->tasks; t; t = t->next)
        if (streq(t->id, id))
            return t;
    return NULL;
}

static int docker_init(const struct config *cfg, const struct backend_listener *l, void **ret_state,
                       struct error *err)
{
    struct docker_state *ds = xcalloc(1, sizeof(*ds));
    ds->cfg = cfg;
    ds->listener = *l;
    ds->root = geteuid() == 0;
    pthread_mutex_init(&ds->lock, NULL);
    pthread_cond_init(&ds->back, NULL);
    pthread_cond_init(&ds->event, NULL);
    pthread_cond_init(&ds->work, NULL);
    pthread_cond_init(&ds->runner_done, NULL);
    pthread_cond_init(&ds->release, NULL);
    ds->shutdown_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ds->shutdown_fd < 0) {
        int r = error_set_errno(err, -errno, "eventfd");
        free(ds);
        return r;
    }
    int r = engine_new(cfg->docker_socket, &ds->engine, err);
    if (r < 0) {
        close(ds->shutdown_fd);
        free(ds);
        return r;
    }
    /* Every Engine call, short or long, ends when the daemon stops. */
    (void) engine_add_abort_fd(ds->engine, ds->shutdown_fd);
    if (cfg->docker_instance)
        ds->instance = xstrdup(cfg->docker_instance);
    else {
        /* Stable per data dir: two proxies on one host never share containers. */
        uint64_t h = 1469598103934665603ULL;
        for (const char *c = cfg->data_dir; *c; c++)
            h = (h ^ (unsigned char) *c) * 1099511628211ULL;
        ds->instance = xasprintf("%016" PRIx64, h);
    }
    log_info("docker backend: dockerd at %s, instance %s (connects on the first container task)",
             engine_socket(ds->engine), ds->instance);
    *ret_state = ds;
    return 0;
}

static void docker_free(void *state)
{
    struct docker_state *ds = state;
    if (!ds)
        return;
    /* Runners let go of their containers (which keep running and are
     * recovered by the next daemon) and end; the shutdown fd cuts their
     * Engine calls short. */
    atomic_store(&ds->stopping, true);
    (void) eventfd_write(ds->shutdown_fd, 1);
    pthread_mutex_lock(&ds->lock);
    struct dtask *list = ds->tasks;
    ds->tasks = NULL;
    pthread_cond_broadcast(&ds->back);
    pthread_cond_broadcast(&ds->event);
    pthread_cond_broadcast(&ds->work);
    pthread_cond_broadcast(&ds->release);
    while (ds->n_runners > 0)
        pthread_cond_wait(&ds->runner_done, &ds->lock);
    pthread_mutex_unlock(&ds->lock);
    if (ds->events_running)
        pthread_join(ds->events_thread, NULL);
    for (struct dtask *t = list, *n; t; t = n) {
        n = t->next;
        dtask_free(t);
    }
    closep(&ds->shutdown_fd);
    engine_free(ds->engine);
    free(ds->instance);
    pthread_cond_destroy(&ds->back);
    pthread_cond_destroy(&ds->event);
    pthread_cond_destroy(&ds->work);
    pthread_cond_destroy(&ds->runner_done);
    pthread_cond_destroy(&ds->release);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
}

static bool docker_handles(const struct task *t)
{
    return t->container != NULL;
}

static int lookup_user(struct docker_state *ds, const char *name, struct confine_user *ret,
                       struct error *err)
{
    /* Found accounts are kept a moment (confine.c): one at submit, one at start. */
    int r = confine_account_lookup(name, ds->cfg->allow_root, ds->cfg->denied_users, ret, err);
    if (r == -EINVAL) {
        /* No such account here: the container runs as nobody. */
        error_clear(err);
        *ret = (struct confine_user){.uid = NOBODY_ID, .gid = NOBODY_ID, .name = xstrdup(name)};
        r = 0;
    }
    /* change: host file access is checked as this account (needs root). */
    if (r >= 0)
        ret->change = ds->root;
    return r;
}

static int docker_check(void *state, const struct task *t, struct error *err)
{
    struct docker_state *ds = state;
    connect_once(ds);
    struct image_ref ref;
    if (docker_image_ref_parse(t->container->image, &ref) < 0)
        return error_set(err, -EINVAL, "container.image: \"%s\" is not a valid image reference",
                         t->container->image);
    image_ref_done(&ref);

    struct confine_user u;
    int r = lookup_user(ds, t->user, &u, err);
    if (r < 0)
        return r;
    /* A mount shows the container what its user could reach on the host,
     * nothing more: checked as that user, path and all. */
    for (size_t i = 0; i < t->container->n_mounts && r >= 0; i++) {
        const struct task_mount *m = &t->container->mounts[i];
        struct stat st;
        if (stat(m->host, &st) < 0) {
            r = error_set_errno(err, -errno == -ENOENT ? -EINVAL : -errno,
                                "container.mounts[%zu].host: %s", i, m->host);
            break;
        }
        int mode = R_OK | (S_ISDIR(st.st_mode) ? X_OK : 0) | (m->mode == MOUNT_RW ? W_OK : 0);
        struct access_args a = {m->host, mode};
        int ar = confine_as_user(&u, access_as, &a);
        if (ar < 0)
            r = error_set(err, -EACCES, "container.mounts[%zu].host: user %s may not %s %s", i,
                          t->user, m->mode == MOUNT_RW ? "read and write" : "read", m->host);
    }
    confine_user_done(&u);
    if (r < 0)
        return r;

    /* A connected event stream says dockerd answers; otherwise ask it. */
    _cleanup_error_ struct error perr = ERROR_INIT;
    if (!ds->cfg->docker_queue_when_down && !atomic_load(&ds->connected) &&
        engine_ping(ds->engine, &perr) < 0)
        return error_set(err, -EREMOTEIO, "the container backend is unavailable: %s",
                         error_message(&perr));
    return 0;
}

static struct dtask *dtask_new(struct docker_state *ds, const struct backend_start *s,
                               enum runner_mode mode, struct error *err)
{
    struct dtask *t = xcalloc(1, sizeof(*t));
    t->ds = ds;
    t->cancel_fd = t->wall_fd = -1;
    t->out_fd = t->err_fd = -1;
    t->logs_call = -1;
    t->group = engine_group_new(ds->engine); /* its wait and logs calls, when it runs */
    snprintf(t->id, sizeof(t->id), "%s", s->id);
    snprintf(t->name, sizeof(t->name), "ocps-%s", s->id);
    t->task = task_copy(s->task);
    t->task_dir = xstrdup(s->task_dir);
    t->out_path = xstrdup(s->stdout_path);
    t->err_path = xstrdup(s->stderr_path);
    t->mode = mode;
    /* The default output files (the daemon's own, in the task's directory)
     * exist from the start, so that a client following the logs finds its
     * file at once instead of watching the directory for it. A file the
     * task named is opened by the runner, as its user. They come first: a
     * client that asked before the task started watches the directory, and
     * the first file made there is then the one it waits for, not the
     * system log (each file made there is a wake-up for it). */
    if (mode == RUN_START && !s->task->stdout_path)
        (void) open_output(t, t->out_path, false, &t->out_fd);
    if (mode == RUN_START && !s->task->stderr_path)
        (void) open_output(t, t->err_path, false, &t->err_fd);
    _cleanup_free_ char *log_path = layout_in_task_dir(s->task_dir, LAYOUT_SYSLOG);
    t->syslog_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (lookup_user(ds, s->task->user, &t->user, err) < 0) {
        dtask_free(t);
        return NULL;
    }
    t->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->cancel_fd >= 0 && s->task->walltime)
        t->wall_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (t->cancel_fd < 0 || (s->task->walltime && t->wall_fd < 0)) {
        error_set_errno(err, -errno, "task %s: eventfd/timerfd", s->id);
        dtask_free(t);
        return NULL;
    }
    return t;
}

static void arm_walltime(struct dtask *t, usec_t started)
{
    if (!t->task->walltime)
        return;
    usec_t limit = (usec_t) t->task->walltime * USEC_PER_SEC;
    usec_t used = started ? MAX(now_realtime() - started, 0) : 0;
    usec_t left = MAX(limit - used, 1);
    struct itimerspec its = {.it_value = {left / USEC_PER_SEC, (left % USEC_PER_SEC) * 1000}};
    (void) timerfd_settime(t->wall_fd, 0, &its, NULL);
}

/* A runner owns t from here; release() unlinks it. An idle runner takes
 * it, or a new one is started when every idle one is spoken for. */
static int launch(struct docker_state *ds, struct dtask *t, struct error *err)
{
    pthread_mutex_lock(&ds->lock);
    /* A new runner when every idle one has work already. It cannot take
     * anything before we let go of the lock, so t is queued after it exists
     * and a failure has nothing to undo. */
    bool spawn = ds->n_work + 1 > ds->n_idle;
    if (spawn) {
        pthread_attr_t a;
        pthread_t thread;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&thread, &a, runner_main, ds);
        pthread_attr_destroy(&a);
        if (r != 0) {
            pthread_mutex_unlock(&ds->lock);
            dtask_free(t);
            return error_set_errno(err, -r, "cannot start a runner thread");
        }
        ds->n_runners++;
    }
    t->next = ds->tasks;
    ds->tasks = t;
    if (ds->work_tail)
        ds->work_tail->work_next = t;
    else
        ds->work_head = t;
    ds->work_tail = t;
    ds->n_work++;
    if (!spawn)
        pthread_cond_signal(&ds->work);
    pthread_mutex_unlock(&ds->lock);
    return 0;
}

static int docker_start(void *state, const struct backend_start *s, char **ret_handle,
                        struct error *err)
{
    struct docker_state *ds = state;
    connect_once(ds);
    struct dtask *t = dtask_new(ds, s, RUN_START, err);
    if (!t)
        return err->code;
    arm_walltime(t, 0);
    char *handle = xstrdup(t->name);
    int r = launch(ds, t, err);
    if (r < 0) {
        free(handle);
        return r;
    }
    *ret_handle = handle;
    return 0;
}

static int docker_cancel(void *state, const char *id, const char *handle, struct error *err)
{
    struct docker_state *ds = state;
    pthread_mutex_lock(&ds->lock);
    struct dtask *t = find(ds, id);
    if (t) {
        t->cancel = true;
        (void) eventfd_write(t->cancel_fd, 1);
    }
    pthread_mutex_unlock(&ds->lock);
    if (!t)
        return error_set(err, -ENOENT, "task %s has no runner", id);
    return 0;
}

static int docker_recover(void *state, const struct backend_start *s, const char *handle,
                          struct error *err)
{
    struct docker_state *ds = state;
    connect_once(ds);
    struct task_outcome o;

    /* Reported before the daemon went: the outcome stands. It is made
     * durable here, as the container, its other record, goes now. */
    if (task_outcome_read(s->task_dir, &o) >= 0) {
        ds->listener.ended(ds->listener.userdata, s->id, &o);
        task_outcome_done(&o);
        (void) delete_recorded(ds, s->task_dir, s->id);
        return 0;
    }
    int r = engine_ping(ds->engine, err);
    if (r < 0)
        return error_wrap(err, "recover");

    struct dtask *t = dtask_new(ds, s, RUN_FOLLOW, err);
    if (!t)
        return err->code;
    cJSON *info = NULL;
    _cleanup_free_ char *path = xasprintf("/containers/%s/json", t->name);
    int st = engine_call(ds->engine, "GET", path, NULL, &info, err);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(info, "Config"), "Labels");
    const char *inst = json_str(labels, LABEL_INSTANCE), *tid = json_str(labels, LABEL_TASK);
    if (st == 404 ||
        (st == 200 && (!inst || !streq(inst, ds->instance) || !tid || !streq(tid, s->id)))) {
        /* No container of ours: it was never created (the image was being
         * pulled), so it never ran. */
        cJSON_Delete(info);
        dtask_free(t);
        error_clear(err);
        return -ENOENT;
    }
    if (st != 200) {
        cJSON_Delete(info);
        dtask_free(t);
        return st < 0 ? st : error_set(err, -EREMOTEIO, "inspect %s", path);
    }
    const char *cid = json_str(info, "Id");
    t->container = xstrdup(cid ? cid : t->name);
    const cJSON *cstate = cJSON_GetObjectItemCaseSensitive(info, "State");
    _cleanup_free_ char *status =
        json_str(cstate, "Status") ? xstrdup(json_str(cstate, "Status")) : NULL;
    t->started = docker_time(json_str(cstate, "StartedAt"));
    cJSON_Delete(info);

    if (status && streq(status, "created")) {
        /* Created but never started: safe to start from scratch. */
        (void) delete_container(ds, t->container, err);
        error_clear(err);
        dtask_free(t);
        return -ENOENT;
    }
    bool live = status && (streq(status, "running") || streq(status, "paused") ||
                           streq(status, "restarting"));
    t->mode = live ? RUN_FOLLOW : RUN_FINISH;
    if (live)
        arm_walltime(t, t->started);
    log_info("task %s: container %.12s is %s", s->id, t->container, status ? status : "?");
    return launch(ds, t, err);
}

static void docker_release(void *state, const char *id, const char *handle)
{
    struct docker_state *ds = state;
    pthread_mutex_lock(&ds->lock);
    struct dtask *t = NULL;
    for (struct dtask **p = &ds->tasks; *p; p = &(*p)->next)
        if (streq((*p)->id, id)) {
            t = *p;
            *p = t->next;
            break;
        }
    /* The end is on disk: the runner removes the container (a call to
     * dockerd, not made on the supervisor's thread) and frees t. */
    bool gone = t && t->done;
    if (t && !gone) {
        t->released = true;
        pthread_cond_broadcast(&ds->release);
    }
    pthread_mutex_unlock(&ds->lock);
    if (gone)
        dtask_free(t);
}

const struct backend_ops docker_backend_ops = {
    .name = "docker",
    .init = docker_init,
    .free = docker_free,
    .handles = docker_handles,
    .check = docker_check,
    .start = docker_start,
    .cancel = docker_cancel,
    .recover = docker_recover,
    .release = docker_release,
};
