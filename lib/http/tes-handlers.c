/*
 * tes-handlers: the GA4GH TES 1.1 endpoints under /ga4gh/tes/v1 (issue
 * #13; the design is in lib/tes.h). Served on the same listeners, with
 * the same principals and the same store as the JobProxy endpoints:
 * every task, however it was made, is a TES task here (a JobProxy one
 * as a one-executor task, tes_task_from_task). Errors go out in the
 * project's {code, message} shape (TES defines no error body).
 *
 * So far: GET /service-info, GET /tasks and GET /tasks/{id}. [next]
 * POST /tasks, POST /tasks/{id}:cancel (the router's "*" matches
 * "ID:cancel" as one segment: a POST route on the tasks/{id} pattern
 * that splits it).
 */
#include "http.h"
#include "tes.h"

#include <inttypes.h>

enum MHD_Result http_tes_service_info(struct request *r)
{
    /* [next] id, name and organization from the config (a tes: section);
     * until then a reserved (RFC 2606) placeholder for the required url. */
    static char *const storage[] = {"file:///", NULL};
    const struct tes_service_info si = {
        .id = "org.ocps-proxy.tes",
        .name = "ocps-proxy",
        .organization_name = "ocps-proxy",
        .organization_url = "https://ocps-proxy.invalid/",
        .version = OCPS_VERSION,
        .storage = storage,
    };
    return http_reply_json(r, 200, tes_service_info_to_cjson(&si), NULL);
}

/* ---- ListTasks ---------------------------------------------------------------------------- */

struct tes_list {
    struct request *r;
    const char *name_prefix;
    char **tag_keys, **tag_values; /* paired by position; a value "" matches any */
    size_t n_tags;
    bool no_state; /* a TES state we never produce (UNKNOWN, PAUSED, PREEMPTED) */
    enum tes_view view;
    size_t want;
    cJSON *tasks;
    size_t n;
    int64_t last_seq;
    bool more;
    struct error err;
};

static enum MHD_Result collect_tag(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct tes_list *l = cls;
    char ***v = streq(key, "tag_key")     ? &l->tag_keys
                : streq(key, "tag_value") ? &l->tag_values
                                          : NULL;
    if (v)
        strv_push(v, value ? value : "");
    return MHD_YES;
}

static bool tags_match(const struct tes_list *l, const struct tes_task *t)
{
    for (size_t i = 0; i < l->n_tags; i++) {
        const char *want = l->tag_values && i < strv_length(l->tag_values) ? l->tag_values[i] : "";
        bool found = false;
        for (size_t k = 0; k < t->n_tags && !found; k++)
            found =
                streq(t->tags[k].key, l->tag_keys[i]) && (!*want || streq(t->tags[k].value, want));
        if (!found)
            return false;
    }
    return true;
}

/* The TES log of a task made through JobProxy: one executor, whose log
 * exists once it ended (an executor that has not ended has none). */
static void record_log(const struct task_record *rec, struct tes_task_log *log,
                       struct tes_executor_log *xl)
{
    *log = (struct tes_task_log){.start = rec->started, .end = rec->finished};
    if (task_state_is_final(rec->state) && rec->exit_code >= 0) {
        *xl = (struct tes_executor_log){
            .start = rec->started, .end = rec->finished, .exit_code = rec->exit_code};
        log->logs = xl;
        log->n_logs = 1;
    }
}

/* A stored task as a tesTask in view v; spec NULL when the view and the
 * filters need none (MINIMAL). */
static cJSON *record_to_cjson(const struct task_record *rec, const struct tes_task *tt,
                              enum tes_view v)
{
    struct tes_task_log log;
    struct tes_executor_log xl;
    record_log(rec, &log, &xl);
    _cleanup_strv_ char **sys = NULL;
    if (rec->reason)
        strv_push(&sys, rec->reason);
    log.system_logs = sys;
    struct tes_task_view tv = {.id = rec->id,
                               .state = rec->state,
                               .created = rec->created,
                               .task = tt,
                               .log = rec->started ? &log : NULL};
    return tes_task_to_cjson(&tv, v);
}

/* The TES form of a stored task (for now every stored task is a JobProxy
 * one: [next] a spec with a "tes" part is read back as that). */
static int record_tes_task(const struct task_record *rec, struct tes_task **ret, struct error *err)
{
    _cleanup_task_ struct task *t = NULL;
    int q = task_record_task(rec, &t, err);
    if (q < 0)
        return q;
    *ret = tes_task_from_task(t);
    return 0;
}

static int list_one(const struct task_record *rec, void *userdata)
{
    struct tes_list *l = userdata;

    if (l->name_prefix && !startswith(rec->name ? rec->name : "", l->name_prefix))
        return 0;
    _cleanup_tes_task_ struct tes_task *tt = NULL;
    if (l->n_tags || l->view != TES_VIEW_MINIMAL) {
        /* A damaged spec fails the list (500) rather than hiding a task. */
        int q = record_tes_task(rec, &tt, &l->err);
        if (q < 0)
            return q;
        if (!tags_match(l, tt))
            return 0;
    }
    if (l->n == l->want) {
        l->more = true;
        return 1;
    }
    cJSON_AddItemToArray(l->tasks, record_to_cjson(rec, tt, l->view));
    l->n++;
    l->last_seq = rec->seq;
    return 0;
}

static int view_param(struct request *r, enum tes_view *ret, struct error *err)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "view");
    *ret = TES_VIEW_MINIMAL;
    if (!v)
        return 0;
    *ret = tes_view_from_string(v);
    if (*ret < 0)
        return error_set(err, -EINVAL, "view: must be MINIMAL, BASIC or FULL, not \"%s\"", v);
    return 0;
}

static int list_params(struct request *r, struct tes_list *l, struct store_filter *f,
                       struct error *err)
{
    const char *v;

    if (view_param(r, &l->view, err) < 0)
        return err->code;
    l->want = TES_DEFAULT_PAGE_SIZE;
    if ((v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "page_size"))) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < 1 || n > TES_MAX_PAGE_SIZE)
            return error_set(err, -EINVAL, "page_size: must be an integer from 1 to %d, not \"%s\"",
                             TES_MAX_PAGE_SIZE, v);
        l->want = (size_t) n;
    }
    if ((v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "page_token")) && *v) {
        char *end;
        errno = 0;
        long long seq = v[0] == 's' ? strtoll(v + 1, &end, 10) : -1;
        if (seq < 0 || errno || *end || end == v + 1)
            return error_set(err, -EINVAL, "page_token: \"%s\" is not a token this server gave", v);
        f->after_seq = seq;
    }
    if ((v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "state"))) {
        static const char *const never[] = {"UNKNOWN", "PAUSED", "PREEMPTED"};
        bool known = false;
        for (size_t i = 0; i < ELEMENTSOF(never); i++)
            if (streq(v, never[i]))
                known = l->no_state = true;
        for (int s = 0; s < _TASK_STATE_MAX && !known; s++)
            if (streq(v, task_state_to_string(s))) {
                f->state = s;
                known = true;
            }
        if (!known)
            return error_set(err, -EINVAL, "state: \"%s\" is not a TES state", v);
    }
    l->name_prefix = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "name_prefix");
    (void) MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_tag, l);
    l->n_tags = strv_length(l->tag_keys);
    if (strv_length(l->tag_values) > l->n_tags)
        return error_set(err, -EINVAL, "tag_value: given %zu times, tag_key only %zu",
                         strv_length(l->tag_values), l->n_tags);
    for (size_t i = 0; i < l->n_tags; i++)
        if (!*l->tag_keys[i])
            return error_set(err, -EINVAL, "tag_key: must not be empty");

    /* A caller lists the tasks it sees only, as in the JobProxy list. */
    const struct principal *p = r->principal;
    if (!p->admin) {
        f->principal = p->name;
        f->or_user = p->via == PRINCIPAL_UNIX ? p->account : NULL;
    }
    return 0;
}

enum MHD_Result http_tes_list(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct tes_list l = {.r = r};
    struct store_filter f = {.state = -1};
    int q = list_params(r, &l, &f, &err);

    /* [next] name_prefix and tags are matched here, over every task the
     * caller sees: an index (name, tags) in the store before the
     * benchmark's 100,000 tasks. */
    if (q >= 0 && !l.no_state) {
        l.tasks = cJSON_CreateArray();
        q = store_list(r->ctx->store, &f, list_one, &l, &err);
        if (q == 1)
            q = 0;
        else if (q < 0 && l.err.code)
            q = error_set(&err, l.err.code, "%s", error_message(&l.err));
    }
    strv_free(l.tag_keys);
    strv_free(l.tag_values);
    error_clear(&l.err);
    if (q < 0) {
        cJSON_Delete(l.tasks);
        return http_reply_error(r, &err);
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "tasks", l.tasks ? l.tasks : cJSON_CreateArray());
    if (l.more) {
        char tok[32];
        snprintf(tok, sizeof(tok), "s%" PRId64, l.last_seq);
        cJSON_AddStringToObject(j, "next_page_token", tok);
    }
    return http_reply_json(r, 200, j, NULL);
}

/* ---- GetTask ------------------------------------------------------------------------------ */

enum MHD_Result http_tes_get(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_record_ struct task_record *rec = NULL;
    _cleanup_tes_task_ struct tes_task *tt = NULL;
    enum tes_view v;

    int q = view_param(r, &v, &err);
    if (q >= 0)
        q = store_get(r->ctx->store, r->param, &rec, &err);
    /* Someone else's task does not exist, as far as its caller knows. */
    if (q >= 0 && !principal_sees(r->principal, rec->principal, rec->user))
        q = error_set(&err, -ENOENT, "no task %s", r->param);
    if (q >= 0 && v != TES_VIEW_MINIMAL)
        q = record_tes_task(rec, &tt, &err);
    if (q < 0)
        return http_reply_error(r, &err);
    return http_reply_json(r, 200, record_to_cjson(rec, tt, v), NULL);
}
