/*
 * tes-handlers: the GA4GH TES 1.1 endpoints under /ga4gh/tes/v1 (issue
 * #13; the design is in lib/tes.h). Served on the same listeners, with
 * the same principals and the same store as the JobProxy endpoints:
 * every task, however it was made, is a TES task here (a JobProxy one
 * as a one-executor task, tes_task_from_task). Errors go out in the
 * project's {code, message} shape (TES defines no error body).
 *
 * GET /service-info, GET /tasks, GET /tasks/{id}, POST /tasks and POST
 * /tasks/{id}:cancel (the router's "*" matches "ID:cancel" as one
 * segment: a POST route on the tasks/{id} pattern that splits it).
 */
#include "http.h"
#include "layout.h"
#include "tes.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

enum MHD_Result http_tes_service_info(struct request *r)
{
    /* The config's words (config.h), else these: a reserved (RFC 2606)
     * name stands for the organization's required url. */
    static char *const storage[] = {"file:///", "http://", "https://", NULL};
    const struct config *c = r->ctx->cfg;
    const struct tes_service_info si = {
        .id = c->tes_id ? c->tes_id : "org.ocps-proxy.tes",
        .name = c->tes_name ? c->tes_name : "ocps-proxy",
        .organization_name = c->tes_organization_name ? c->tes_organization_name : "ocps-proxy",
        .organization_url =
            c->tes_organization_url ? c->tes_organization_url : "https://ocps-proxy.invalid/",
        .version = OCPS_VERSION,
        .storage = c->tes_storage ? c->tes_storage : storage,
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

/* A task its caller may see: someone else's does not exist, as far as
 * its caller knows (404). */
static int load(struct request *r, const char *id, struct task_record **ret, struct error *err)
{
    _cleanup_record_ struct task_record *rec = NULL;
    int q = store_get(r->ctx->store, id, &rec, err);
    if (q < 0)
        return q;
    if (!principal_sees(r->principal, rec->principal, rec->user))
        return error_set(err, -ENOENT, "no task %s", id);
    *ret = TAKE_PTR(rec);
    return 0;
}

/* The TES log of a task made through JobProxy: one executor, whose log
 * exists once it ended (an executor that has not ended has none). One
 * whose command could not be executed (dockerd refused to start it, its
 * image is missing: no exit code) has one too, with 127, as a shell says
 * of a command it cannot run and as the TES runner says (tes-run.c). */
static void record_log(const struct task_record *rec, struct tes_task_log *log,
                       struct tes_executor_log *xl)
{
    *log = (struct tes_task_log){.start = rec->started, .end = rec->finished};
    bool ended = task_state_is_final(rec->state) && rec->exit_code >= 0;
    bool not_run = rec->state == TASK_EXECUTOR_ERROR && rec->exit_code < 0 &&
                   (!rec->started || startswith(rec->reason ? rec->reason : "", "start failed"));
    if (ended || not_run) {
        *xl = (struct tes_executor_log){
            .start = rec->started, .end = rec->finished, .exit_code = ended ? rec->exit_code : 127};
        log->logs = xl;
        log->n_logs = 1;
    }
}

/* A JobProxy task's stdout and stderr tails for its one executor log
 * (FULL), from its output files in its directory; a file the task named
 * is its account's, not opened by the daemon here (the logs endpoint
 * serves it). */
static void record_tails(const struct request *r, const struct task_record *rec,
                         struct tes_executor_log *xl)
{
    const char *names[] = {LAYOUT_STDOUT, LAYOUT_STDERR};
    const char *named[] = {rec->stdout_path, rec->stderr_path};
    char **tails[] = {&xl->stdout_tail, &xl->stderr_tail};
    for (size_t i = 0; i < ELEMENTSOF(names); i++) {
        _cleanup_free_ char *p = layout_task_file(r->ctx->cfg->data_dir, rec->id, names[i]);
        if (named[i] && !streq(named[i], p))
            continue;
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        *tails[i] = tes_log_tail(fd, 0, st.st_size);
    }
}

/* Whether a system log line says reason already (the runner's "executor
 * 1: EXECUTOR_ERROR: <reason>"): said once is enough. */
static bool said(char **lines, const char *reason)
{
    size_t n = strlen(reason);
    STRV_FOREACH (p, lines) {
        size_t k = strlen(*p);
        if (k >= n && streq(*p + k - n, reason) &&
            (k == n || (k >= n + 2 && startswith(*p + k - n - 2, ": "))))
            return true;
    }
    return false;
}

/* The task log of a TES task: what its runner wrote (tes-log.json), with
 * the record's start and end where the file has none; a task the runner
 * has not written for (one executor, run as any container task) gets the
 * record's one executor log. The dropped backend parameters come first
 * in its system logs, the record's reason last. -errno when the file is
 * there but cannot be read (a 500: a task log is not made up). */
static int tes_record_log(const struct request *r, const struct task_record *rec,
                          const struct tes_task *tt, struct tes_task_log *ret, struct error *err)
{
    _cleanup_free_ char *dir = layout_task_dir(r->ctx->cfg->data_dir, rec->id);
    struct tes_task_log l = {};
    int q = tes_task_log_read(dir, &l);
    if (q == -ENOENT) {
        struct tes_executor_log xl;
        record_log(rec, &l, &xl);
        if (l.n_logs) {
            l.logs = xmalloc(sizeof(xl));
            l.logs[0] = xl;
        }
    } else if (q < 0)
        /* The server's fault whatever it is (a 500), never the caller's. */
        return error_set(err, -EIO, "task %s: its TES log (tes-log.json) %s", rec->id,
                         q == -EBADMSG ? "is damaged" : strerror(-q));
    if (!l.start)
        l.start = rec->started;
    if (!l.end)
        l.end = rec->finished;
    _cleanup_strv_ char **sys = NULL;
    /* The runner names them first in its log; before it ran, we do. */
    STRV_FOREACH (p, q == -ENOENT ? tt->ignored_parameters : NULL) {
        _cleanup_free_ char *m =
            xasprintf("backend parameter %s is not supported here: ignored", *p);
        strv_push(&sys, m);
    }
    STRV_FOREACH (p, l.system_logs)
        strv_push(&sys, *p);
    if (rec->reason && !said(sys, rec->reason))
        strv_push(&sys, rec->reason);
    strv_free(l.system_logs);
    l.system_logs = TAKE_PTR(sys);
    *ret = l;
    return 0;
}

/* A stored task as a tesTask in view v; tt NULL in the MINIMAL view,
 * which reads nothing but the record. For a TES task ('tes' true) the
 * task log is its own; a JobProxy task's is made from the record. */
static int record_to_cjson(const struct request *r, const struct task_record *rec,
                           const struct tes_task *tt, bool tes, enum tes_view v, cJSON **ret,
                           struct error *err)
{
    struct tes_task_log log = {};
    struct tes_executor_log xl;
    bool have_log = false;
    _cleanup_strv_ char **sys = NULL;

    if (v != TES_VIEW_MINIMAL && tes) {
        int q = tes_record_log(r, rec, tt, &log, err);
        if (q < 0)
            return q;
        have_log = log.start || log.n_logs || log.n_outputs || log.system_logs;
    } else if (v != TES_VIEW_MINIMAL) {
        record_log(rec, &log, &xl);
        if (v == TES_VIEW_FULL && log.n_logs)
            record_tails(r, rec, &xl);
        if (rec->reason)
            strv_push(&sys, rec->reason);
        log.system_logs = sys;
        have_log = rec->started || log.n_logs;
    }
    struct tes_task_view tv = {.id = rec->id,
                               .state = rec->state,
                               .created = rec->created,
                               .task = tt,
                               .log = have_log ? &log : NULL};
    *ret = tes_task_to_cjson(&tv, v);
    if (tes)
        tes_task_log_done(&log);
    else if (log.n_logs) {
        free(xl.stdout_tail);
        free(xl.stderr_tail);
    }
    return 0;
}

/* The TES form of a stored task: a TES task's own, or a JobProxy task as
 * a one-executor one. *ret_tes says which. */
static int record_tes_task(const struct task_record *rec, struct tes_task **ret, bool *ret_tes,
                           struct error *err)
{
    _cleanup_task_ struct task *t = NULL;
    int q = task_record_task(rec, &t, err);
    if (q < 0)
        return q;
    *ret_tes = t->tes;
    *ret = t->tes ? TAKE_PTR(t->tes) : tes_task_from_task(t);
    return 0;
}

static int list_one(const struct task_record *rec, void *userdata)
{
    struct tes_list *l = userdata;

    /* The store matched the filters; the spec is read for the views that
     * show more than id and state, and only for the tasks on the page. */
    if (l->n == l->want) {
        l->more = true;
        return 1;
    }
    _cleanup_tes_task_ struct tes_task *tt = NULL;
    bool tes = false;
    if (l->view != TES_VIEW_MINIMAL) {
        /* A damaged spec fails the list (500) rather than hiding a task. */
        int q = record_tes_task(rec, &tt, &tes, &l->err);
        if (q < 0)
            return q;
    }
    cJSON *j;
    int q = record_to_cjson(l->r, rec, tt, tes, l->view, &j, &l->err);
    if (q < 0)
        return q;
    cJSON_AddItemToArray(l->tasks, j);
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
    int q = http_query_count(r, "page_size", TES_MAX_PAGE_SIZE, &l->want, err);
    if (q >= 0)
        q = http_query_page_token(r, &f->after_seq, err);
    if (q < 0)
        return q;
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
    if (l->n_tags > STORE_MAX_TAG_FILTERS)
        return error_set(err, -EINVAL, "tag_key: given %zu times, at most %d", l->n_tags,
                         STORE_MAX_TAG_FILTERS);
    /* A key without a value matches any value: pad the values with "". */
    while (strv_length(l->tag_values) < l->n_tags)
        strv_push(&l->tag_values, "");
    f->name_prefix = l->name_prefix;
    f->tag_keys = l->tag_keys;
    f->tag_values = l->tag_values;
    f->n_tags = l->n_tags;

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

    /* One more than the page: whether a next page exists, without a count. */
    f.limit = l.want + 1;
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
    bool tes = false;
    cJSON *j = NULL;

    int q = view_param(r, &v, &err);
    if (q >= 0)
        q = load(r, r->param, &rec, &err);
    if (q >= 0 && v != TES_VIEW_MINIMAL)
        q = record_tes_task(rec, &tt, &tes, &err);
    if (q >= 0)
        q = record_to_cjson(r, rec, tt, tes, v, &j, &err);
    if (q < 0)
        return http_reply_error(r, &err);
    return http_reply_json(r, 200, j, NULL);
}

/* ---- CreateTask --------------------------------------------------------------------------- */

/* The account a principal's TES tasks run as (tes.h): its policy's
 * tes_user, else a unix-socket peer's own account. */
static int tes_account(const struct principal *p, const char **ret, struct error *err)
{
    if (p->policy->tes_user)
        *ret = p->policy->tes_user;
    else if (p->via == PRINCIPAL_UNIX && p->account)
        *ret = p->account;
    else
        return error_set(err, -EACCES,
                         "no account for TES tasks of principal %s: set tes_user in the policy "
                         "(principals.%s.tes_user)",
                         p->name, p->policy->name);
    return 0;
}

static int json_body(struct request *r, struct error *err)
{
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    enum task_format fmt;
    /* TES is JSON; a client that sends no Content-Type means it too. */
    if (!isempty(ct) && (task_format_from_content_type(ct, &fmt) < 0 || fmt != TASK_FORMAT_JSON))
        return error_set(err, -EMEDIUMTYPE,
                         "unsupported Content-Type \"%s\": a tesTask is application/json", ct);
    if (r->len == 0)
        return error_set(err, -EINVAL, "empty request body: a tesTask is required");
    return 0;
}

/* disk_gb: the runner's working volume is under the data dir; where it
 * cannot be size-limited, a task asking for more than that filesystem
 * has free is refused now rather than failing half-way (GB read as GiB,
 * as ram_gb is). What it asked stays recorded in its resources. */
static int check_disk(const char *data_dir, const struct tes_task *tt, struct error *err)
{
    struct statvfs st;
    double want = tt->resources.disk_gb * (double) (1ULL << 30);
    if (want <= 0)
        return 0;
    if (statvfs(data_dir, &st) < 0)
        return error_set_errno(err, -errno, "resources.disk_gb: statvfs %s", data_dir);
    uint64_t avail = (uint64_t) st.f_bavail * st.f_frsize;
    if (want > (double) avail) {
        char buf[32];
        return error_set(err, -EINVAL,
                         "resources.disk_gb: %g GB asked, %s free for task files here",
                         tt->resources.disk_gb, format_size_human(avail, buf));
    }
    return 0;
}

enum MHD_Result http_tes_create(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_tes_task_ struct tes_task *tt = NULL;
    _cleanup_task_ struct task *t = NULL;
    _cleanup_record_ struct task_record *rec = NULL;
    const char *account = NULL;

    int q = json_body(r, &err);
    if (q >= 0)
        q = tes_task_parse(r->body, r->len, &tt, &err);
    if (q >= 0)
        q = tes_account(r->principal, &account, &err);
    if (q >= 0)
        q = tes_task_to_task(tt, account, &t, &err);
    bool capacity = false;
    if (q >= 0)
        capacity = (q = check_disk(r->ctx->cfg->data_dir, tt, &err)) < 0;
    /* Refused before the supervisor sees it: counted here (it counts its own). */
    if (q < 0)
        supervisor_refused(r->ctx->sv, capacity                      ? REFUSAL_CAPACITY
                                       : error_http_status(q) == 415 ? REFUSAL_MEDIA
                                       : error_http_status(q) == 403 ? REFUSAL_POLICY_RUN_AS
                                                                     : REFUSAL_VALIDATION);
    if (q >= 0) {
        t->tes = TAKE_PTR(tt);
        q = supervisor_submit(r->ctx->sv, r->principal, t, &rec, &err);
    }
    http_audit(r, "tes-create", account, rec ? rec->id : NULL,
               q >= 0 ? "accepted"
               : rec  ? "failed"
                      : "refused",
               q < 0 ? &err : NULL);
    if (q < 0 && !rec)
        return http_reply_refused(r, &err);
    /* Stored, even when no backend runs it (then SYSTEM_ERROR, with the
     * reason in its system logs): TES accepts what it cannot fulfil and
     * fails the task, and a client finds out by polling it. Exactly 200
     * {"id"}, not 201. */
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", rec->id);
    return http_reply_json(r, 200, j, NULL);
}

/* ---- CancelTask --------------------------------------------------------------------------- */

enum MHD_Result http_tes_cancel(struct request *r)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_record_ struct task_record *rec = NULL;
    _cleanup_free_ char *id = NULL;

    /* The route's "*" is one segment, "ID:cancel" (ids hold no ':'). */
    const char *colon = strchr(r->param, ':');
    if (!colon || !streq(colon, ":cancel")) {
        /* Anything else there is the task's path, which has GET only. */
        error_set(&err, -EBADRQC,
                  "POST .../tasks/%s: the method is GET, or POST .../tasks/{id}:cancel", r->param);
        return http_reply_error_extra(
            r, &err,
            (const struct http_extra[]){{.header = true, .name = "Allow", .value = "GET"}, {}});
    }
    int q = 0;
    {
        id = xstrndup(r->param, (size_t) (colon - r->param));
        q = load(r, id, &rec, &err);
    }
    /* An ended task stays as it ended: cancel is a request, not a verdict. */
    if (q >= 0)
        q = supervisor_cancel(r->ctx->sv, id, &err);
    if (rec)
        http_audit(r, "tes-cancel", rec->user, rec->id, q >= 0 ? "cancelled" : "failed",
                   q < 0 ? &err : NULL);
    if (q < 0)
        return http_reply_error(r, &err);
    return http_reply_json(r, 200, cJSON_CreateObject(), NULL);
}
