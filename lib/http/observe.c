/*
 * observe: what an operator asks of the daemon over HTTP. GET /metrics
 * (the Prometheus text format: metrics.h), GET /healthz (the process
 * answers) and GET /readyz (the store takes writes and every backend can
 * run tasks); and the HTTP layer's own metrics, every request counted by
 * its route (the route table's pattern, never the path a client sent:
 * ids and junk would make a label value per request) and its status,
 * with its time from its head to its answer sent.
 */
#include "http.h"
#include "metrics.h"
#include "util/log.h"

/* Routes past this many share the unmatched slot (a table this long
 * would be a mistake: the static assert below says when). */
#define ROUTES_MAX 32
/* The statuses the daemon answers with; any other is counted as "other". */
static const unsigned statuses[] = {200, 204, 400, 401, 403, 404, 405, 406,
                                    409, 413, 415, 429, 500, 501, 502, 503};
#define STATUS_OTHER ELEMENTSOF(statuses)

/* By route index (ROUTES_MAX: no route matched) and status index. */
static struct metric_counter requests[ROUTES_MAX + 1][STATUS_OTHER + 1];
static struct metric_histogram durations[ROUTES_MAX + 1] = {
    [0 ... ROUTES_MAX] = {.b = &metric_buckets_latency}};
static size_t n_routes;

static size_t status_index(unsigned status)
{
    for (size_t i = 0; i < ELEMENTSOF(statuses); i++)
        if (statuses[i] == status)
            return i;
    return STATUS_OTHER;
}

/* The submit route's refusals the router made (401, 413, 406), counted
 * with the handler's and the supervisor's (supervisor.h). */
static void count_refused_submit(const struct request *r)
{
    if (!r->route || !r->refused.code || !streq(r->route->path, "/v1/jobproxy/submit"))
        return;
    int status = error_http_status(r->refused.code);
    enum submit_refusal why = status == 413                    ? REFUSAL_TOO_LARGE
                              : status == 406 || status == 415 ? REFUSAL_MEDIA
                              : status == 401 || status == 403 ? REFUSAL_AUTH
                                                               : REFUSAL_VALIDATION;
    supervisor_refused(r->ctx->sv, why);
}

void http_metrics_request(const struct request *r)
{
    if (!r->status)
        return;
    size_t route = r->route ? (size_t) (r->route - http_routes) : ROUTES_MAX;
    if (route > ROUTES_MAX)
        route = ROUTES_MAX;
    metric_inc(&requests[route][status_index(r->status)]);
    metric_observe(&durations[route], (uint64_t) (now_monotonic() - r->started));
    count_refused_submit(r);
}

/* The route's pattern as its label: "/v1/jobproxy/state/{id}". */
static char *route_label(const struct route *rt)
{
    size_t n = strlen(rt->path);
    if (n > 0 && rt->path[n - 1] == '*')
        return xasprintf("%.*s{id}", (int) (n - 1), rt->path);
    return xstrdup(rt->path);
}

static void collect(FILE *f, void *userdata)
{
    _cleanup_strv_ char **labels = NULL;
    for (size_t i = 0; i < n_routes; i++) {
        _cleanup_free_ char *l = route_label(&http_routes[i]);
        strv_push(&labels, l);
    }
    metrics_family(f, "ocps_http_requests_total", "counter",
                   "HTTP requests answered, by method and route (the route table's pattern; "
                   "\"unmatched\": no route) and status code.");
    for (size_t i = 0; i <= ROUTES_MAX; i++) {
        if (i >= n_routes && i != ROUTES_MAX)
            continue;
        const char *method = i == ROUTES_MAX ? "other" : http_routes[i].method;
        const char *route = i == ROUTES_MAX ? "unmatched" : labels[i];
        for (size_t s = 0; s <= STATUS_OTHER; s++) {
            uint64_t v = metric_get(&requests[i][s]);
            /* A status once seen: which ones a route answers is not known before. */
            if (!v)
                continue;
            char code[16];
            snprintf(code, sizeof(code), "%u", statuses[MIN(s, STATUS_OTHER - 1)]);
            metrics_sample_u64(f, "ocps_http_requests_total",
                               (const char *const[]){"method", method, "route", route, "code",
                                                     s == STATUS_OTHER ? "other" : code, NULL},
                               v);
        }
    }
    metrics_family(f, "ocps_http_request_duration_seconds", "histogram",
                   "Time from a request's head to its answer sent, by method and route.");
    for (size_t i = 0; i <= ROUTES_MAX; i++) {
        /* The routes called so far: 18 lines per histogram add up. */
        uint64_t n = 0;
        for (size_t s = 0; s <= STATUS_OTHER; s++)
            n += metric_get(&requests[i][s]);
        if (!n)
            continue;
        metrics_histogram(
            f, "ocps_http_request_duration_seconds",
            (const char *const[]){"method", i == ROUTES_MAX ? "other" : http_routes[i].method,
                                  "route", i == ROUTES_MAX ? "unmatched" : labels[i], NULL},
            &durations[i]);
    }
}

static struct metrics_collector collector = {.collect = collect};

void http_metrics_init(void)
{
    size_t n = 0;
    while (http_routes[n].method)
        n++;
    /* A route past the arrays would be counted as unmatched: say so at once. */
    if (n > ROUTES_MAX)
        abort();
    n_routes = n;
    metrics_register(&collector);
}

/* ---- the endpoints ---- */

enum MHD_Result http_metrics(struct request *r)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort();
    supervisor_metrics(r->ctx->sv, f);
    metrics_collect(f);
    metrics_process(f);
    fclose(f);
    return http_reply(
        r, 200, METRICS_CONTENT_TYPE, TAKE_PTR(text), len,
        (const struct http_extra[]){
            {.header = true, .name = MHD_HTTP_HEADER_CACHE_CONTROL, .value = "no-store"}, {}});
}

enum MHD_Result http_healthz(struct request *r)
{
    return http_reply_text(r, 200, "text/plain; charset=utf-8", xstrdup("ok\n"), 3);
}

/* Names what is not ready, never why: the answer is open to anyone who
 * reaches a listener, and the daemon's log has the reasons. */
enum MHD_Result http_readyz(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *failing = NULL;
    if (store_check_writable(r->ctx->store, &err) < 0) {
        log_warn("not ready: store: %s", error_message(&err));
        failing = xstrdup("store");
        error_clear(&err);
    }
    _cleanup_free_ char *backends = supervisor_unready(r->ctx->sv);
    if (backends) {
        char *l = xasprintf("%s%s%s", failing ? failing : "", failing ? ", " : "", backends);
        free(failing);
        failing = l;
    }
    if (!failing)
        return http_reply_text(r, 200, "text/plain; charset=utf-8", xstrdup("ready\n"), 6);
    error_set(&err, -EAGAIN, "not ready: %s", failing);
    return http_reply_error_extra(
        r, &err,
        (const struct http_extra[]){
            {.header = true, .name = MHD_HTTP_HEADER_RETRY_AFTER, .value = HTTP_RETRY_AFTER}, {}});
}
