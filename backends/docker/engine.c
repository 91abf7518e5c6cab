/*
 * engine: see engine.h. The HTTP (libcurl, its pools, the multi_socket
 * loop, abort fds) is the REST client's (rest/rest.c); this adds what is
 * dockerd's: where it listens ($DOCKER_HOST), the /v<version> prefix and
 * its negotiation through /_ping, the errno of each of its error
 * statuses, and the frames of a container's logs.
 */
#include "engine.h"
#include "metrics.h"
#include "util/timeutil.h"

#include <inttypes.h>

struct engine {
    struct rest *rest;
    char *socket;
    char version[16];
};

/* ---- metrics: calls by kind, their time and their errors ---- */

/* What a call does, from its method and path: a label value known in
 * advance, never the path itself (it holds container names). */
enum engine_kind {
    KIND_PING,
    KIND_CONTAINER_CREATE,
    KIND_CONTAINER_START,
    KIND_CONTAINER_STOP,
    KIND_CONTAINER_KILL,
    KIND_CONTAINER_WAIT,
    KIND_CONTAINER_INSPECT,
    KIND_CONTAINER_LIST,
    KIND_CONTAINER_LOGS,
    KIND_CONTAINER_DELETE,
    KIND_IMAGE_PULL,
    KIND_IMAGE_INSPECT,
    KIND_EVENTS,
    KIND_OTHER,
    _KIND_MAX,
};

static const char *const kind_names[_KIND_MAX] = {
    [KIND_PING] = "ping",
    [KIND_CONTAINER_CREATE] = "container_create",
    [KIND_CONTAINER_START] = "container_start",
    [KIND_CONTAINER_STOP] = "container_stop",
    [KIND_CONTAINER_KILL] = "container_kill",
    [KIND_CONTAINER_WAIT] = "container_wait",
    [KIND_CONTAINER_INSPECT] = "container_inspect",
    [KIND_CONTAINER_LIST] = "container_list",
    [KIND_CONTAINER_LOGS] = "container_logs",
    [KIND_CONTAINER_DELETE] = "container_delete",
    [KIND_IMAGE_PULL] = "image_pull",
    [KIND_IMAGE_INSPECT] = "image_inspect",
    [KIND_EVENTS] = "events",
    [KIND_OTHER] = "other",
};

static struct metric_counter calls[_KIND_MAX], call_errors[_KIND_MAX];
static struct metric_histogram call_time[_KIND_MAX] = {
    [0 ... _KIND_MAX - 1] = {.b = &metric_buckets_latency}};

/* Whether the n bytes at p are word. */
static bool is(const char *p, size_t n, const char *word)
{
    return n == strlen(word) && strncmp(p, word, n) == 0;
}

static enum engine_kind kind_of(const char *method, const char *path)
{
    size_t n = strcspn(path, "?");
    if (is(path, n, "/_ping"))
        return KIND_PING;
    if (is(path, n, "/events"))
        return KIND_EVENTS;
    if (is(path, n, "/containers/create"))
        return KIND_CONTAINER_CREATE;
    if (is(path, n, "/containers/json"))
        return KIND_CONTAINER_LIST;
    if (is(path, n, "/images/create"))
        return KIND_IMAGE_PULL;
    bool container = startswith(path, "/containers/"), image = startswith(path, "/images/");
    if (!container && !image)
        return KIND_OTHER;
    /* /containers/NAME[/ACTION]; an image's NAME may hold slashes. */
    const char *end = path + n, *last = end;
    while (last > path && last[-1] != '/')
        last--;
    size_t an = (size_t) (end - last);
    if (image)
        return is(last, an, "json") ? KIND_IMAGE_INSPECT : KIND_OTHER;
    if (last == path + STRLEN("/containers/"))
        return streq(method, "DELETE") ? KIND_CONTAINER_DELETE : KIND_OTHER;
    static const struct {
        const char *action;
        enum engine_kind kind;
    } actions[] = {
        {"start", KIND_CONTAINER_START},  {"stop", KIND_CONTAINER_STOP},
        {"kill", KIND_CONTAINER_KILL},    {"wait", KIND_CONTAINER_WAIT},
        {"json", KIND_CONTAINER_INSPECT}, {"logs", KIND_CONTAINER_LOGS},
    };
    for (size_t i = 0; i < ELEMENTSOF(actions); i++)
        if (is(last, an, actions[i].action))
            return actions[i].kind;
    return KIND_OTHER;
}

/* A call of kind k that began at start (monotonic) returned r: an error
 * when dockerd could not be reached or answered 4xx/5xx. */
static void observe(enum engine_kind k, usec_t start, int r)
{
    metric_inc(&calls[k]);
    if (r < 0 || r >= 400)
        metric_inc(&call_errors[k]);
    metric_observe(&call_time[k], (uint64_t) (now_monotonic() - start));
}

static void collect(FILE *f, void *userdata)
{
    metrics_family(f, "ocps_engine_calls_total", "counter",
                   "Calls to the Docker Engine API, by kind.");
    for (size_t k = 0; k < _KIND_MAX; k++)
        metrics_sample_u64(f, "ocps_engine_calls_total",
                           (const char *const[]){"kind", kind_names[k], NULL},
                           metric_get(&calls[k]));
    metrics_family(f, "ocps_engine_call_errors_total", "counter",
                   "Calls to the Docker Engine API that failed: dockerd could not be reached, "
                   "or answered with an error status, by kind.");
    for (size_t k = 0; k < _KIND_MAX; k++)
        metrics_sample_u64(f, "ocps_engine_call_errors_total",
                           (const char *const[]){"kind", kind_names[k], NULL},
                           metric_get(&call_errors[k]));
    metrics_family(f, "ocps_engine_call_seconds", "histogram",
                   "Time of the calls to the Docker Engine API, by kind (for the streams: events, "
                   "wait, followed logs, how long they lasted).");
    /* The kinds called so far: 18 lines per histogram add up. */
    for (size_t k = 0; k < _KIND_MAX; k++)
        if (metric_get(&calls[k]))
            metrics_histogram(f, "ocps_engine_call_seconds",
                              (const char *const[]){"kind", kind_names[k], NULL}, &call_time[k]);
}

static struct metrics_collector collector = {.collect = collect};

/* dockerd's error statuses: 404 no such container or image, 409 a
 * conflict (the name is taken), 400 a request it refuses. */
static int docker_status_errno(long status)
{
    return status == 404 ? -ENOENT : status == 409 ? -EEXIST : status == 400 ? -EINVAL : -EREMOTEIO;
}

int engine_new(const char *socket, struct engine **ret, struct error *err)
{
    const char *s = socket;
    if (!s || isempty(s)) {
        const char *host = getenv("DOCKER_HOST");
        if (host && !isempty(host)) {
            if (!startswith(host, "unix://"))
                return error_set(err, -EINVAL, "DOCKER_HOST=%s: only unix:// sockets are supported",
                                 host);
            s = host;
        } else
            s = ENGINE_DEFAULT_SOCKET;
    }
    if (startswith(s, "unix://"))
        s += strlen("unix://");
    if (s[0] != '/')
        return error_set(err, -EINVAL, "docker socket \"%s\" is not an absolute path", s);
    struct rest *r = NULL;
    int ret_r = rest_new(&(struct rest_options){.name = "dockerd",
                                                .socket = s,
                                                .prefix = "/v" ENGINE_API_VERSION,
                                                .status_errno = docker_status_errno},
                         &r, err);
    if (ret_r < 0)
        return ret_r;
    metrics_register(&collector);
    struct engine *e = xcalloc(1, sizeof(*e));
    e->rest = r;
    e->socket = xstrdup(s);
    snprintf(e->version, sizeof(e->version), "%s", ENGINE_API_VERSION);
    *ret = e;
    return 0;
}

struct engine *engine_free(struct engine *e)
{
    if (e) {
        rest_free(e->rest);
        free(e->socket);
        free(e);
    }
    return NULL;
}

int engine_add_abort_fd(struct engine *e, int fd)
{
    return rest_add_abort_fd(e->rest, fd);
}

const char *engine_socket(const struct engine *e)
{
    return e->socket;
}

const char *engine_api_version(const struct engine *e)
{
    return e->version;
}

int engine_ping(struct engine *e, struct error *err)
{
    char version[16] = "";
    struct rest_request q = {.method = "GET",
                             .path = "/_ping",
                             .unprefixed = true,
                             .reply_header = "Api-Version",
                             .reply_value = version,
                             .reply_value_size = sizeof(version)};
    usec_t start = now_monotonic();
    int st = rest_call(e->rest, &q, NULL, err);
    observe(KIND_PING, start, st);
    if (st < 0)
        return st;
    if (st != 200)
        return error_set(err, -EREMOTEIO, "dockerd at %s answered /_ping with HTTP %d", e->socket,
                         st);
    unsigned maj, min, pmaj, pmin;
    if (sscanf(version, "%u.%u", &maj, &min) == 2 &&
        sscanf(ENGINE_API_VERSION, "%u.%u", &pmaj, &pmin) == 2 &&
        (maj < pmaj || (maj == pmaj && min < pmin))) {
        snprintf(e->version, sizeof(e->version), "%u.%u", maj, min);
        _cleanup_free_ char *prefix = xasprintf("/v%u.%u", maj, min);
        rest_set_prefix(e->rest, prefix);
    }
    return 0;
}

int engine_call(struct engine *e, const char *method, const char *path, const cJSON *body,
                cJSON **ret_json, struct error *err)
{
    struct rest_request q = {.method = method, .path = path, .body = body};
    usec_t start = now_monotonic();
    int r = rest_call(e->rest, &q, ret_json, err);
    observe(kind_of(method, path), start, r);
    return r;
}

static void stream_split(const char *method, const char *path, const cJSON *body,
                         const struct engine_stream *s, struct rest_request *ret_q,
                         struct rest_stream *ret_s)
{
    *ret_q = (struct rest_request){.method = method,
                                   .path = path,
                                   .body = body,
                                   .header = s->header,
                                   .abort_fds = s->abort_fds,
                                   .n_abort_fds = s->n_abort_fds};
    *ret_s = (struct rest_stream){
        .line = s->line, .headers_done = s->headers_done, .userdata = s->userdata};
}

int engine_stream(struct engine *e, const char *method, const char *path, const cJSON *body,
                  const struct engine_stream *s, struct error *err)
{
    struct rest_request q;
    struct rest_stream rs;
    stream_split(method, path, body, s, &q, &rs);
    usec_t start = now_monotonic();
    int r = rest_stream(e->rest, &q, &rs, err);
    observe(kind_of(method, path), start, r);
    return r;
}

/* ---- logs ---- */

void engine_demux_init(struct engine_demux *d, int out_fd, int err_fd)
{
    *d = (struct engine_demux){.fds = {-1, out_fd, err_fd}};
}

void engine_demux_feed(struct engine_demux *d, const char *buf, size_t len)
{
    while (len > 0 && !d->error) {
        if (d->left == 0) {
            size_t take = MIN(len, sizeof(d->header) - d->have);
            memcpy(d->header + d->have, buf, take);
            d->have += take;
            buf += take;
            len -= take;
            if (d->have < sizeof(d->header))
                return;
            d->have = 0;
            d->stream = d->header[0];
            d->left = (size_t) d->header[4] << 24 | (size_t) d->header[5] << 16 |
                      (size_t) d->header[6] << 8 | d->header[7];
            continue;
        }
        size_t take = MIN(len, d->left);
        bool over = d->limit && take > d->limit - d->written;
        if (over)
            take = (size_t) (d->limit - d->written); /* up to the limit, and no further */
        /* 1 stdout, 2 stderr; 0 (stdin) and 3 (the daemon's own error) go to stderr. */
        int fd = d->stream == 1 ? d->fds[1] : d->fds[2];
        if (fd >= 0 && take > 0) {
            int r = loop_write(fd, buf, take);
            if (r < 0)
                d->error = r;
        }
        d->written += take;
        if (over && !d->error)
            d->error = -EFBIG;
        d->left -= take;
        buf += take;
        len -= take;
    }
}

/* One logs call: its frames' decoder, and what its errors name. */
struct logs {
    struct engine_demux demux;
    char *id;
    char *path;
};

static struct logs *logs_free(struct logs *l)
{
    if (l) {
        free(l->id);
        free(l->path);
        free(l);
    }
    return NULL;
}

static int logs_data(void *userdata, const char *buf, size_t len)
{
    struct engine_demux *d = userdata;
    engine_demux_feed(d, buf, len);
    return d->error; /* non-zero stops the call */
}

static struct logs *logs_new(const char *id, bool follow, int out_fd, int err_fd, uint64_t limit,
                             struct rest_request *ret_q, struct rest_stream *ret_s)
{
    struct logs *l = xcalloc(1, sizeof(*l));
    engine_demux_init(&l->demux, out_fd, err_fd);
    l->demux.limit = limit;
    l->id = xstrdup(id);
    l->path = xasprintf("/containers/%s/logs?stdout=1&stderr=1%s", id, follow ? "&follow=1" : "");
    *ret_q = (struct rest_request){.method = "GET", .path = l->path};
    *ret_s = (struct rest_stream){.data = logs_data, .userdata = &l->demux};
    return l;
}

/* A logs call's result, as engine_logs returns it, from the stream's. */
static int logs_result(const struct logs *l, int r, struct error *err)
{
    if (r < 0 && l->demux.error == -EFBIG)
        return error_set(err, -EFBIG, "more output than the limit of %" PRIu64 " bytes",
                         l->demux.limit);
    if (r < 0 && l->demux.error)
        return error_set_errno(err, l->demux.error, "GET %s: write the output", l->path);
    if (r >= 400)
        return error_set(err, r == 404 ? -ENOENT : -EREMOTEIO, "logs of container %s: HTTP %d",
                         l->id, r);
    return r;
}

int engine_logs(struct engine *e, const char *id, bool follow, int out_fd, int err_fd,
                uint64_t limit, int abort_fd, struct error *err)
{
    struct rest_request q;
    struct rest_stream s;
    struct logs *l = logs_new(id, follow, out_fd, err_fd, limit, &q, &s);
    q.abort_fds = &abort_fd;
    q.n_abort_fds = 1;
    usec_t start = now_monotonic();
    int r = logs_result(l, rest_stream(e->rest, &q, &s, err), err);
    observe(KIND_CONTAINER_LOGS, start, r);
    logs_free(l);
    return r;
}

/* ---- groups ---- */

struct engine_group {
    struct rest_group *g;
    struct logs *logs[REST_GROUP_MAX]; /* by call number: the logs calls' */
    /* By call number: when it was added, and its kind, for the metrics. */
    usec_t started[REST_GROUP_MAX];
    uint8_t kind[REST_GROUP_MAX];
};

/* Call n was added (n < 0: it was not). */
static int group_added(struct engine_group *g, int n, enum engine_kind k)
{
    if (n >= 0 && n < REST_GROUP_MAX) {
        g->started[n] = now_monotonic();
        g->kind[n] = (uint8_t) k;
    }
    return n;
}

struct engine_group *engine_group_new(struct engine *e)
{
    struct engine_group *g = xcalloc(1, sizeof(*g));
    g->g = rest_group_new(e->rest);
    return g;
}

struct engine_group *engine_group_free(struct engine_group *g)
{
    if (!g)
        return NULL;
    rest_group_free(g->g);
    for (size_t n = 0; n < ELEMENTSOF(g->logs); n++)
        logs_free(g->logs[n]);
    free(g);
    return NULL;
}

void engine_group_cancel(struct engine_group *g, int n)
{
    rest_group_cancel(g->g, n);
    if (n >= 0 && n < REST_GROUP_MAX)
        g->logs[n] = logs_free(g->logs[n]);
}

int engine_group_stream(struct engine_group *g, const char *method, const char *path,
                        const cJSON *body, const struct engine_stream *s, struct error *err)
{
    struct rest_request q;
    struct rest_stream rs;
    stream_split(method, path, body, s, &q, &rs);
    return group_added(g, rest_group_add(g->g, &q, &rs, err), kind_of(method, path));
}

int engine_group_logs(struct engine_group *g, const char *id, int out_fd, int err_fd,
                      uint64_t limit, struct error *err)
{
    struct rest_request q;
    struct rest_stream s;
    struct logs *l = logs_new(id, true, out_fd, err_fd, limit, &q, &s);
    int n = rest_group_add(g->g, &q, &s, err);
    if (n < 0)
        logs_free(l);
    else
        g->logs[n] = l;
    return group_added(g, n, KIND_CONTAINER_LOGS);
}

int engine_group_run(struct engine_group *g, const int *abort_fds, size_t n_abort, int *ret_result,
                     struct error *err)
{
    int n = rest_group_run(g->g, abort_fds, n_abort, ret_result, err);
    if (n >= 0 && g->logs[n]) {
        *ret_result = logs_result(g->logs[n], *ret_result, err);
        g->logs[n] = logs_free(g->logs[n]);
    }
    if (n >= 0 && n < REST_GROUP_MAX)
        observe(g->kind[n], g->started[n], *ret_result);
    return n;
}
