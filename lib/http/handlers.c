/*
 * handlers: the JobProxy endpoints under /v1/jobproxy. Each handler gets
 * a request whose route, reply format and body the router has settled,
 * and answers errors through http_reply_error() or, with a header or a
 * field more, http_reply_error_extra(): never with a status of its own.
 */
#include "account.h"
#include "follow.h"
#include "http.h"
#include "layout.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pwd.h>

#define LIST_DEFAULT_LIMIT 256
#define LIST_MAX_LIMIT     2048
#define TAIL_MAX_LINES     1000000

static bool valid_id(const char *id)
{
    if (!id || strlen(id) != 36)
        return false;
    for (const char *p = id; *p; p++)
        if (!(('0' <= *p && *p <= '9') || ('a' <= *p && *p <= 'f') || *p == '-'))
            return false;
    return true;
}

static const char *query(struct request *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

static void add_time(cJSON *j, const char *key, usec_t t)
{
    char buf[32];
    if (t > 0)
        cJSON_AddStringToObject(j, key, format_rfc3339(t, buf));
    else
        cJSON_AddNullToObject(j, key);
}

static const char *const state_words[_TASK_STATE_MAX] = {
    [TASK_QUEUED] = "queued",
    [TASK_INITIALIZING] = "starting",
    [TASK_RUNNING] = "running",
    [TASK_COMPLETE] = "completed",
    [TASK_EXECUTOR_ERROR] = "failed",
    [TASK_SYSTEM_ERROR] = "failed in the proxy or its backend",
    [TASK_CANCELING] = "being cancelled",
    [TASK_CANCELED] = "cancelled",
};

/* JobProxy's State {id, code, description, stdout, stderr} and our additions. */
static cJSON *state_json(struct request *r, const struct task_record *rec)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", rec->id);
    cJSON_AddStringToObject(j, "code", task_state_to_string(rec->state));
    _cleanup_free_ char *queued =
        rec->state == TASK_QUEUED ? supervisor_describe(r->ctx->sv, rec->id) : NULL;
    cJSON_AddStringToObject(j, "description",
                            rec->reason ? rec->reason
                            : queued    ? queued
                                        : state_words[rec->state]);
    cJSON_AddStringToObject(j, "stdout", rec->stdout_path ? rec->stdout_path : "");
    cJSON_AddStringToObject(j, "stderr", rec->stderr_path ? rec->stderr_path : "");
    if (rec->exit_code >= 0)
        cJSON_AddNumberToObject(j, "exit_code", rec->exit_code);
    else
        cJSON_AddNullToObject(j, "exit_code");
    if (rec->reason)
        cJSON_AddStringToObject(j, "reason", rec->reason);
    else
        cJSON_AddNullToObject(j, "reason");
    cJSON_AddStringToObject(j, "user", rec->user);
    if (rec->name)
        cJSON_AddStringToObject(j, "name", rec->name);
    cJSON_AddStringToObject(j, "backend", rec->backend);
    add_time(j, "created", rec->created);
    add_time(j, "started", rec->started);
    add_time(j, "finished", rec->finished);
    return j;
}

static int load(struct request *r, struct task_record **ret, struct error *err)
{
    if (!valid_id(r->param))
        return error_set(err, -ENOENT, "no task %s", r->param);
    _cleanup_record_ struct task_record *rec = NULL;
    int q = store_get(r->ctx->store, r->param, &rec, err);
    if (q < 0)
        return q;
    /* Someone else's task does not exist, as far as its caller knows. */
    if (!principal_sees(r->principal, rec->principal, rec->user))
        return error_set(err, -ENOENT, "no task %s", r->param);
    *ret = TAKE_PTR(rec);
    return 0;
}

static enum MHD_Result h_ping(struct request *r)
{
    char ts[32];
    char *text = xasprintf("alive (%s)\n", format_rfc3339(now_realtime(), ts));
    return http_reply_text(r, 200, "text/plain; charset=utf-8", text, strlen(text));
}

static enum MHD_Result h_submit(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_task_ struct task *t = NULL;
    _cleanup_record_ struct task_record *rec = NULL;
    enum task_format fmt;

    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    int q = task_format_from_content_type(ct, &fmt);
    if (q < 0)
        q = error_set(&err, q,
                      isempty(ct) ? "missing Content-Type: use application/json, "
                                    "application/xml or application/yaml%s"
                                  : "unsupported Content-Type \"%s\": use application/json, "
                                    "application/xml or application/yaml",
                      isempty(ct) ? "" : ct);
    if (q >= 0 && r->len == 0)
        q = error_set(&err, -EINVAL, "empty request body: a task is required");
    if (q >= 0)
        q = task_parse(fmt, r->body, r->len, &r->ctx->cfg->bare_units, &t, &err);
    /* Refused before the supervisor sees it: counted here (it counts its own). */
    if (q < 0)
        supervisor_refused(r->ctx->sv, error_http_status(q) == 415   ? REFUSAL_MEDIA
                                       : error_http_status(q) == 413 ? REFUSAL_TOO_LARGE
                                                                     : REFUSAL_VALIDATION);
    /* What the principal may do (run_as, the never-lists, maxima, quotas,
     * containers) is decided there, before the task is stored. */
    if (q >= 0)
        q = supervisor_submit(r->ctx->sv, r->principal, t, &rec, &err);
    http_audit(r, "submit", t ? t->user : NULL, rec ? rec->id : NULL,
               q >= 0 ? "accepted"
               : rec  ? "failed"
                      : "refused",
               q < 0 ? &err : NULL);
    if (q < 0 && !rec)
        return http_reply_refused(r, &err);

    _cleanup_free_ char *location = xasprintf("/v1/jobproxy/state/%s", rec->id);
    if (q < 0)
        /* Stored but not runnable here (a container task without Docker):
         * the error, and where the stored task is. */
        return http_reply_error_extra(
            r, &err,
            (const struct http_extra[]){
                {.header = true, .name = MHD_HTTP_HEADER_LOCATION, .value = location},
                {.name = "id", .value = rec->id},
                {}});

    char *text;
    const char *type;
    if (r->out == MEDIA_TEXT) {
        /* JobProxy's own reply: the id alone. */
        text = xasprintf("%s\n", rec->id);
        type = "text/plain; charset=utf-8";
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", rec->id);
        cJSON_AddStringToObject(j, "state", task_state_to_string(rec->state));
        text = http_format(r->out, j, "task", &type);
    }
    return http_reply(
        r, 200, type, text, strlen(text),
        (const struct http_extra[]){
            {.header = true, .name = MHD_HTTP_HEADER_LOCATION, .value = location}, {}});
}

static enum MHD_Result h_state(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_record_ struct task_record *rec = NULL;
    if (load(r, &rec, &err) < 0)
        return http_reply_error(r, &err);
    return http_reply_json(r, 200, state_json(r, rec), "state");
}

struct list_ctx {
    struct request *r;
    cJSON *states; /* XML: the page as a tree */
    FILE *out;     /* JSON: the states printed one by one */
    size_t n, limit;
    int64_t last_seq;
    bool more;
};

static int list_one(const struct task_record *rec, void *userdata)
{
    struct list_ctx *c = userdata;
    if (c->n == c->limit) {
        c->more = true;
        return 1;
    }
    cJSON *s = state_json(c->r, rec);
    if (c->out) {
        /* A page of 2048 states as one cJSON tree took ~4 MB at its peak;
         * printed as they come, one state's tree at a time. */
        char *text = cJSON_PrintUnformatted(s);
        if (!text)
            abort();
        fprintf(c->out, "%s%s", c->n ? "," : "", text);
        free(text);
        cJSON_Delete(s);
    } else {
        cJSON_AddItemToArray(c->states, s);
    }
    c->n++;
    c->last_seq = rec->seq;
    return 0;
}

/* The filter from the query: code, user, limit and page_token. */
static int list_filter(struct request *r, struct store_filter *f, struct error *err)
{
    const char *code = query(r, "code");
    if (code) {
        f->state = task_state_from_string(code);
        if (f->state < 0)
            return error_set(err, -EINVAL,
                             "code: unknown state \"%s\" (QUEUED, INITIALIZING, RUNNING, "
                             "COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELING, CANCELED)",
                             code);
    }
    const char *user = query(r, "user");
    if (user && isempty(user))
        return error_set(err, -EINVAL, "user: must not be empty");
    /* A caller lists the tasks it sees only (principal_sees), unless it is
     * an admin; a unix-socket peer may not ask for another account's. */
    const struct principal *p = r->principal;
    if (!p->admin) {
        f->principal = p->name;
        f->or_user = p->via == PRINCIPAL_UNIX ? p->account : NULL;
        if (user && p->via == PRINCIPAL_UNIX && !streq(user, p->account))
            return error_set(err, -EACCES, "user %s may not list the tasks of %s", p->account,
                             user);
    }

    int q = http_query_count(r, "limit", LIST_MAX_LIMIT, &f->limit, err);
    if (q >= 0)
        q = http_query_page_token(r, &f->after_seq, err);
    if (q < 0)
        return q;
    f->user = user ? xstrdup(user) : NULL;
    return 0;
}

static enum MHD_Result h_list(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct store_filter f = {.state = -1, .limit = LIST_DEFAULT_LIMIT};

    if (list_filter(r, &f, &err) < 0)
        return http_reply_error(r, &err);
    _cleanup_free_ char *owned_user = (char *) f.user;

    struct list_ctx c = {.r = r, .limit = f.limit};
    _cleanup_free_ char *printed = NULL;
    size_t printed_len = 0;
    if (r->out == MEDIA_XML)
        c.states = cJSON_CreateArray();
    else if (!(c.out = open_memstream(&printed, &printed_len)))
        abort();
    else
        fputs("{\"state\":[", c.out); /* the page is printed once, into the reply */
    size_t want = f.limit;
    f.limit = want + 1; /* one more, to know whether a next page exists */
    int q = store_list(r->ctx->store, &f, list_one, &c, &err);
    char tok[32] = "";
    if (c.more)
        snprintf(tok, sizeof(tok), "s%" PRId64, c.last_seq);
    if (c.out) {
        fprintf(c.out, "],\"count\":%zu,\"next_page_token\":%s%s%s}\n", c.n, *tok ? "\"" : "",
                *tok ? tok : "null", *tok ? "\"" : "");
        fclose(c.out);
    }
    if (q < 0) {
        cJSON_Delete(c.states);
        return http_reply_error(r, &err);
    }
    if (!c.states)
        return http_reply_text(r, 200, "application/json", TAKE_PTR(printed), printed_len);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "count", (double) c.n);
    cJSON_AddItemToObject(j, "state", c.states);
    if (*tok)
        cJSON_AddStringToObject(j, "next_page_token", tok);
    else
        cJSON_AddNullToObject(j, "next_page_token");
    return http_reply_json(r, 200, j, "states");
}

static enum MHD_Result h_delete(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_record_ struct task_record *rec = NULL;
    if (load(r, &rec, &err) < 0) {
        /* Unknown, or someone else's: which, the caller is not told. */
        http_audit(r, "delete", NULL, valid_id(r->param) ? r->param : NULL, "refused", &err);
        return http_reply_error(r, &err);
    }
    /* An active task is cancelled, an ended one deleted (supervisor.h). */
    bool ended = task_state_is_final(rec->state);
    int q = supervisor_delete(r->ctx->sv, rec->id, &err);
    http_audit(r, ended ? "delete" : "cancel", rec->user, rec->id,
               q < 0   ? "refused"
               : ended ? "deleted"
                       : "cancelled",
               q < 0 ? &err : NULL);
    if (q < 0)
        return http_reply_error(r, &err);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    return http_queue(r, 204, resp);
}

static enum MHD_Result h_task(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_record_ struct task_record *rec = NULL;
    if (load(r, &rec, &err) < 0)
        return http_reply_error(r, &err);
    _cleanup_task_ struct task *t = NULL;
    if (task_record_task(rec, &t, &err) < 0)
        return http_reply_error(r, &err);
    cJSON *j = task_to_cjson(t);
    /* The id first, then the normalised task, then its State. */
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "id", rec->id);
    while (j->child) {
        cJSON *item = cJSON_DetachItemViaPointer(j, j->child);
        cJSON_AddItemToObject(out, item->string, item);
    }
    cJSON_Delete(j);
    cJSON_AddItemToObject(out, "state", state_json(r, rec));
    return http_reply_json(r, 200, out, "task");
}

/* ---- logs ---- */

/* Who reads a task's output file: the daemon its own files (the defaults,
 * in the task's directory), the task's user a path the task named, so
 * that the logs endpoint never opens, as root, what a client named, nor
 * reads what the user could not (follow.h). *ret_user is filled when
 * that needs another identity; an account this host lacks reads nothing. */
static void output_reader(const struct task_record *rec, const char *path, const char *own,
                          struct follow_spec *spec, struct user_ids *ret_user)
{
    spec->task_path = !streq(path, own);
    if (!spec->task_path || geteuid() != 0)
        return; /* a daemon that is not root runs every task as itself */
    if (account_user_ids(rec->user, ret_user) < 0)
        spec->no_account = true;
    else
        spec->user = ret_user;
}

static enum MHD_Result h_logs(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_record_ struct task_record *rec = NULL;
    if (load(r, &rec, &err) < 0)
        return http_reply_error(r, &err);

    const char *stream = query(r, "stream");
    if (stream && !streq(stream, "stdout") && !streq(stream, "stderr") &&
        !streq(stream, "system")) {
        error_set(&err, -EINVAL, "stream: must be stdout, stderr or system, not \"%s\"", stream);
        return http_reply_error(r, &err);
    }
    /* system: what the proxy and backend did for the task (image pulls,
     * container events, the shim's messages), kept in its directory. */
    bool out = !stream || streq(stream, "stdout"), err_stream = stream && streq(stream, "stderr");
    _cleanup_free_ char *own = layout_task_file(r->ctx->cfg->data_dir, rec->id,
                                                out          ? LAYOUT_STDOUT
                                                : err_stream ? LAYOUT_STDERR
                                                             : LAYOUT_SYSLOG);
    struct follow_spec spec = {
        .sv = r->ctx->sv,
        .id = rec->id,
        .path = out          ? rec->stdout_path
                : err_stream ? rec->stderr_path
                             : own,
        .tail = -1,
    };

    const char *t = query(r, "tail");
    if (t) {
        char *end;
        errno = 0;
        spec.tail = strtol(t, &end, 10);
        if (errno || end == t || *end || spec.tail < 0 || spec.tail > TAIL_MAX_LINES) {
            error_set(&err, -EINVAL, "tail: must be an integer from 0 to %d, not \"%s\"",
                      TAIL_MAX_LINES, t);
            return http_reply_error(r, &err);
        }
    }
    const char *fl = query(r, "follow");
    spec.follow = fl && (streq(fl, "1") || streq(fl, "true"));
    if (fl && !spec.follow && !streq(fl, "0") && !streq(fl, "false")) {
        error_set(&err, -EINVAL, "follow: must be 1 or 0, not \"%s\"", fl);
        return http_reply_error(r, &err);
    }
    _cleanup_(user_ids_done) struct user_ids user = {0};
    output_reader(rec, spec.path, own, &spec, &user);

    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    spec.conn_fd = ci ? ci->connect_fd : -1;
    struct MHD_Response *resp = NULL;
    if (follow_response(&spec, &resp, &err) < 0)
        return http_reply_error(r, &err);
    if (!resp)
        return MHD_NO;
    /* A followed log may be silent for hours: the idle timeout that closes
     * dead connections must not cut it (follow.c notices the client
     * hanging up). */
    if (spec.follow)
        (void) MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned) 0);
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return http_queue(r, 200, resp);
}

/* ---- the API contract ---- */

static enum MHD_Result serve_static(struct request *r, const char *data, size_t len,
                                    const char *content_type)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *) data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return http_queue(r, 200, resp);
}

static enum MHD_Result h_openapi_yaml(struct request *r)
{
    /* application/yaml unless the client named text/plain (to view it). */
    const char *accept =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    bool text = r->out == MEDIA_TEXT && accept &&
                (strstr(accept, "text/plain") || strstr(accept, "text/*"));
    return serve_static(r, openapi_yaml, openapi_yaml_len,
                        text ? "text/plain; charset=utf-8" : "application/yaml");
}

static enum MHD_Result h_openapi_json(struct request *r)
{
    return serve_static(r, openapi_json, openapi_json_len, "application/json");
}

const struct route http_routes[] = {
    /* Open (the sixth field): answered without credentials (http.h). */
    {"GET", "/v1/openapi.yaml", h_openapi_yaml, MEDIA_YAML | MEDIA_TEXT, false, true},
    {"GET", "/v1/openapi.json", h_openapi_json, MEDIA_JSON, false, true},
    {"GET", "/v1/jobproxy/ping", h_ping, MEDIA_TEXT, false, true},
    /* The operator's (observe.c): liveness and readiness tell nothing of
     * tasks; the metrics follow the listener's metrics setting. */
    {"GET", "/healthz", http_healthz, MEDIA_TEXT, false, true},
    {"GET", "/readyz", http_readyz, MEDIA_TEXT, false, true},
    {"GET", "/metrics", http_metrics, MEDIA_TEXT, false, false, true},
    {"POST", "/v1/jobproxy/submit", h_submit, MEDIA_JSON | MEDIA_XML | MEDIA_TEXT, true},
    {"GET", "/v1/jobproxy/state", h_list, MEDIA_JSON | MEDIA_XML, false},
    {"GET", "/v1/jobproxy/state/*", h_state, MEDIA_JSON | MEDIA_XML, false},
    {"DELETE", "/v1/jobproxy/delete/*", h_delete, MEDIA_JSON | MEDIA_XML, false},
    {"GET", "/v1/jobproxy/task/*", h_task, MEDIA_JSON | MEDIA_XML, false},
    {"GET", "/v1/jobproxy/logs/*", h_logs, MEDIA_TEXT, false},
    /* GA4GH TES 1.1 (tes-handlers.c): service-info is open, as the
     * API's contract is; JSON only, as TES is. */
    {"GET", "/ga4gh/tes/v1/service-info", http_tes_service_info, MEDIA_JSON, false, true},
    {"GET", "/ga4gh/tes/v1/tasks", http_tes_list, MEDIA_JSON, false},
    {"GET", "/ga4gh/tes/v1/tasks/*", http_tes_get, MEDIA_JSON, false},
    {"POST", "/ga4gh/tes/v1/tasks", http_tes_create, MEDIA_JSON, true},
    {"POST", "/ga4gh/tes/v1/tasks/*", http_tes_cancel, MEDIA_JSON, false},
    {},
};
