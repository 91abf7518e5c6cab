/*
 * rest: see rest.h. libcurl (curl-loop.h), over CURLOPT_UNIX_SOCKET_PATH
 * with http://localhost URLs or over TCP, every call driven through the
 * multi interface: a blocking call runs a multi handle of its own, a
 * group runs several calls in one. Either way the client polls libcurl's
 * sockets together with the abort fds (rest_multi_wait) instead of a
 * progress callback checking them at every turn of libcurl's loop, which
 * cost a poll() of its own each time.
 */
#include "rest.h"
#include "curl-loop.h"

#include <pthread.h>
#include <sys/stat.h>

struct rest {
    char *name;
    char *socket; /* NULL over TCP */
    char *base;   /* "http://localhost" or "http://HOST:PORT" */
    char *where;  /* the socket or the URL, for errors */
    int (*status_errno)(long status);
    char **headers;
    int abort_fds[REST_MAX_ABORT_FDS];
    size_t n_abort_fds;
    pthread_mutex_t prefix_lock;
    char *prefix;
};

static void aborts_init(struct rest_aborts *a, const struct rest *r, const int *fds, size_t n)
{
    a->n = 0;
    for (size_t i = 0; i < r->n_abort_fds; i++)
        a->fds[a->n++] = r->abort_fds[i];
    for (size_t i = 0; i < n && i < REST_MAX_ABORT_FDS; i++)
        if (fds[i] >= 0)
            a->fds[a->n++] = fds[i];
}

static int curl_ready(const struct rest *r, struct error *err)
{
    /* Without libcurl no service can be reached, whatever it is. */
    if (rest_curl_load(err) < 0)
        return error_set(err, -EREMOTEIO, "cannot reach %s: %s", r->name, error_message(err));
    return 0;
}

int rest_new(const struct rest_options *o, struct rest **ret, struct error *err)
{
    const char *name = o->name ? o->name : "the service";
    if (!o->socket == !o->url)
        return error_set(err, -EINVAL, "%s: give a unix socket or a URL", name);
    if (o->socket && o->socket[0] != '/')
        return error_set(err, -EINVAL, "%s: socket \"%s\" is not an absolute path", name,
                         o->socket);
    /* https:// for a service met on the network (a TES input's server). */
    const char *host = !o->url                          ? NULL
                       : startswith(o->url, "http://")  ? o->url + strlen("http://")
                       : startswith(o->url, "https://") ? o->url + strlen("https://")
                                                        : NULL;
    if (o->url && (!host || host[0] == '\0' || host[0] == '/'))
        return error_set(err, -EINVAL, "%s: URL \"%s\" is not http://HOST:PORT", name, o->url);
    struct rest *r = xcalloc(1, sizeof(*r));
    r->name = xstrdup(name);
    r->status_errno = o->status_errno;
    if (o->socket) {
        r->socket = xstrdup(o->socket);
        r->base = xstrdup("http://localhost");
        r->where = xstrdup(o->socket);
    } else {
        size_t n = strlen(o->url);
        while (o->url[n - 1] == '/') /* paths bring their own */
            n--;
        r->base = xstrndup(o->url, n);
        r->where = xstrdup(o->url);
    }
    r->prefix = xstrdup(o->prefix ? o->prefix : "");
    pthread_mutex_init(&r->prefix_lock, NULL);
    *ret = r;
    return 0;
}

struct rest *rest_free(struct rest *r)
{
    if (!r)
        return NULL;
    free(r->name);
    free(r->socket);
    free(r->base);
    free(r->where);
    strv_free(r->headers);
    pthread_mutex_destroy(&r->prefix_lock);
    free(r->prefix);
    free(r);
    return NULL;
}

void rest_add_header(struct rest *r, const char *header)
{
    strv_push(&r->headers, header);
}

int rest_add_abort_fd(struct rest *r, int fd)
{
    if (r->n_abort_fds == REST_MAX_ABORT_FDS)
        return -EBUSY;
    r->abort_fds[r->n_abort_fds++] = fd;
    return 0;
}

void rest_set_prefix(struct rest *r, const char *prefix)
{
    char *p = xstrdup(prefix), *old;
    pthread_mutex_lock(&r->prefix_lock);
    old = r->prefix;
    r->prefix = p;
    pthread_mutex_unlock(&r->prefix_lock);
    free(old);
}

const char *rest_where(const struct rest *r)
{
    return r->where;
}

char *rest_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *p = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c))
            *p++ = (char) c;
        else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

/* ---- one request ---- */

struct call {
    struct rest *r;
    char *method, *path; /* for error messages */
    CURL *h;
    struct curl_slist *hdrs;
    char *url, *json;
    char errbuf[CURL_ERROR_SIZE];
    struct rest_aborts aborts;
    /* a reply header kept (rest_request.reply_header) */
    const char *want_header;
    char *header_value;
    size_t header_value_size;
    /* the reply body, unless streamed */
    char *body;
    size_t len, alloc;
    bool too_big;
    /* streaming */
    struct rest_stream stream;
    bool streaming;
    char *line;
    size_t line_len, line_alloc;
    int stopped; /* the line or data callback's non-zero result */
    bool headers_seen;
    /* in a group */
    bool added, done;
    int result;
    struct error err;
};

static void append(char **buf, size_t *len, size_t *alloc, const char *data, size_t n)
{
    if (*len + n + 1 > *alloc) {
        size_t a = MAX(*alloc * 2, *len + n + 1);
        *buf = xrealloc(*buf, MAX(a, 256));
        *alloc = MAX(a, 256);
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static int flush_lines(struct call *c)
{
    char *start = c->line, *nl;
    while (c->stopped == 0 && (nl = memchr(start, '\n', c->line_len - (start - c->line)))) {
        *nl = '\0';
        size_t l = (size_t) (nl - start);
        if (l > 0 && start[l - 1] == '\r')
            start[--l] = '\0';
        if (l > 0)
            c->stopped = c->stream.line(c->stream.userdata, start, l);
        start = nl + 1;
    }
    size_t rest = c->line_len - (size_t) (start - c->line);
    memmove(c->line, start, rest);
    c->line_len = rest;
    return c->stopped;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;
    size_t len = size * n;
    if (c->streaming && c->stream.data) {
        c->stopped = c->stream.data(c->stream.userdata, data, len);
        return c->stopped ? 0 : len; /* 0 stops the transfer */
    }
    if (c->streaming && c->stream.line) {
        append(&c->line, &c->line_len, &c->line_alloc, data, len);
        if (flush_lines(c))
            return 0;
        if (c->line_len > REST_MAX_REPLY)
            return 0;
        return len;
    }
    if (c->len + len > REST_MAX_REPLY) {
        c->too_big = true;
        return 0;
    }
    append(&c->body, &c->len, &c->alloc, data, len);
    return len;
}

/* libcurl calls the header callback once more with an empty line at the
 * end of the headers: that is when a call is known to be registered. */
static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;
    size_t len = size * n;
    if (!c->headers_seen && (len == 2 && data[0] == '\r' && data[1] == '\n')) {
        c->headers_seen = true;
        if (c->streaming && c->stream.headers_done) {
            long status = 0;
            (void) curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
            c->stream.headers_done(c->stream.userdata, status);
        }
    }
    size_t k = c->want_header ? strlen(c->want_header) : 0;
    if (k > 0 && len > k && data[k] == ':' && strncasecmp(data, c->want_header, k) == 0) {
        const char *v = data + k + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t l = strcspn(v, "\r\n");
        snprintf(c->header_value, c->header_value_size, "%.*s",
                 (int) MIN(l, c->header_value_size - 1), v);
    }
    return len;
}

/* Frees what the call holds but its result: handle, headers, buffers. */
static void call_done(struct call *c)
{
    if (c->h)
        rest_handle_put(c->h);
    c->h = NULL;
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    free(c->url);
    free(c->json);
    free(c->method);
    free(c->path);
    free(c->body);
    free(c->line);
    c->url = c->json = c->method = c->path = c->body = c->line = NULL;
}

/* Takes an easy handle and sets the request up; c->streaming and
 * c->stream are set by the caller. */
static int call_setup(struct rest *r, const struct rest_request *q, struct call *c,
                      struct error *err)
{
    int ret = curl_ready(r, err);
    if (ret < 0)
        return ret;
    CURL *h = rest_handle_get();
    if (!h)
        return error_set(err, -ENOMEM, "curl_easy_init failed");
    c->r = r;
    c->h = h;
    c->method = xstrdup(q->method);
    c->path = xstrdup(q->path);
    aborts_init(&c->aborts, r, q->abort_fds, q->n_abort_fds);
    if (q->reply_header && q->reply_value && q->reply_value_size > 0) {
        c->want_header = q->reply_header;
        c->header_value = q->reply_value;
        c->header_value_size = q->reply_value_size;
    }
    if (q->unprefixed)
        c->url = xasprintf("%s%s", r->base, q->path);
    else {
        pthread_mutex_lock(&r->prefix_lock);
        c->url = xasprintf("%s%s%s", r->base, r->prefix, q->path);
        pthread_mutex_unlock(&r->prefix_lock);
    }
    c->json = q->body ? cJSON_PrintUnformatted(q->body) : NULL;

    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    STRV_FOREACH (hd, r->headers)
        c->hdrs = curl_slist_append(c->hdrs, *hd);
    if (q->header)
        c->hdrs = curl_slist_append(c->hdrs, q->header);
    for (const char *const *hd = q->headers; hd && *hd; hd++)
        c->hdrs = curl_slist_append(c->hdrs, *hd);
    if (c->json)
        c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
    if (r->socket)
        (void) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, r->socket);
    if (rest_share())
        (void) curl_easy_setopt(h, CURLOPT_SHARE, rest_share());
    (void) curl_easy_setopt(h, CURLOPT_URL, c->url);
    (void) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    (void) curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
    (void) curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    (void) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    (void) curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR,
                            startswith(r->base, "https:") ? "https" : "http");
    /* No proxy, whatever the environment says (and no lookup of it per call). */
    (void) curl_easy_setopt(h, CURLOPT_PROXY, "");
    if (c->json) {
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->json);
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(c->json));
    } else if (streq(q->method, "POST")) {
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    (void) curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    (void) curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    (void) curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    if (!c->streaming)
        (void) curl_easy_setopt(h, CURLOPT_TIMEOUT, REST_CALL_TIMEOUT); /* short calls only */
    return 0;
}

/* The transfer is over (rc) or was aborted (aborted): maps it to the
 * HTTP status in *ret_status (0 returned) or an error. Keeps c->body,
 * c->line and the rest for the caller; gives the handle back. */
static int call_end(struct call *c, CURLcode rc, bool aborted, long *ret_status, struct error *err)
{
    long status = 0;
    (void) curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    rest_handle_put(c->h);
    c->h = NULL;
    const char *method = c->method, *path = c->path;
    const char *name = c->r->name, *where = c->r->where, *socket = c->r->socket;

    if (aborted)
        return error_set(err, -ECANCELED, "%s %s: cancelled", method, path);
    if (rc == CURLE_COULDNT_CONNECT && socket) {
        /* curl's words name "localhost port 80"; say what is wrong with the socket. */
        struct stat st;
        const char *why = stat(socket, &st) < 0   ? strerror(errno)
                          : !S_ISSOCK(st.st_mode) ? "not a socket"
                                                  : NULL;
        if (!why)
            return error_set(err, -EREMOTEIO,
                             "cannot reach %s at %s: connection refused (is %s running?)", name,
                             where, name);
        return error_set(err, -EREMOTEIO, "cannot reach %s at %s: %s", name, where, why);
    }
    if (rc != CURLE_OK && status == 0 && rc != CURLE_WRITE_ERROR)
        return error_set(err, -EREMOTEIO, "cannot reach %s at %s: %s", name, where,
                         c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_WRITE_ERROR && c->stopped)
        return c->stopped;
    if (c->too_big || (rc == CURLE_WRITE_ERROR && c->streaming))
        return error_set(err, -EREMOTEIO, "%s %s: the reply is larger than %u bytes", method, path,
                         REST_MAX_REPLY);
    if (rc != CURLE_OK)
        return error_set(err, -EREMOTEIO, "%s %s: %s", method, path,
                         c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
    *ret_status = status;
    return 0;
}

/* Runs one set-up call to its end in a multi of its own. */
static int perform(struct call *c, long *ret_status, struct error *err)
{
    struct rest_multi *h = rest_multi_get();
    if (!h) {
        call_done(c);
        return error_set(err, -ENOMEM, "curl_multi_init failed");
    }
    (void) curl_multi_add_handle(h->m, c->h);
    CURLcode rc = CURLE_OK;
    bool aborted = false;
    for (;;) {
        CURLMsg *msg;
        int left;
        bool done = false;
        while ((msg = curl_multi_info_read(h->m, &left)))
            if (msg->msg == CURLMSG_DONE) {
                rc = msg->data.result;
                done = true;
            }
        if (done)
            break;
        if (h->failed) {
            rc = CURLE_FAILED_INIT;
            break;
        }
        if (rest_multi_wait(h, &c->aborts)) {
            aborted = true;
            break;
        }
    }
    (void) curl_multi_remove_handle(h->m, c->h);
    rest_multi_put(h);
    return call_end(c, rc, aborted, ret_status, err);
}

/* For a failed call, the service's {"message": "..."} into err. */
static void set_reply_error(struct call *c, long status, struct error *err)
{
    cJSON *j = c->body ? cJSON_Parse(c->body) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!cJSON_IsString(m)) {
        const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "errors"), 0);
        m = cJSON_GetObjectItemCaseSensitive(e, "description");
        if (!cJSON_IsString(m) || isempty(m->valuestring))
            m = cJSON_GetObjectItemCaseSensitive(e, "error");
    }
    int code = c->r->status_errno ? c->r->status_errno(status) : -EREMOTEIO;
    if (cJSON_IsString(m))
        error_set(err, code, "%s", m->valuestring);
    else
        error_set(err, code, "%s %s: HTTP %ld", c->method, c->path, status);
    cJSON_Delete(j);
}

int rest_call(struct rest *r, const struct rest_request *q, cJSON **ret_json, struct error *err)
{
    struct call c = {0};
    long status = 0;
    int ret = call_setup(r, q, &c, err);
    if (ret >= 0)
        ret = perform(&c, &status, err);
    if (ret >= 0) {
        if (status >= 400)
            set_reply_error(&c, status, err);
        if (ret_json && (status < 400 || q->error_json))
            *ret_json = c.body ? cJSON_Parse(c.body) : NULL;
        ret = (int) status;
    }
    call_done(&c);
    return ret;
}

/* A stream's result once its transfer is over, as rest_stream returns it. */
static int stream_result(struct call *c, int r, long status, struct error *err)
{
    if (r == 0 && c->line_len > 0 && c->stopped == 0 && c->stream.line && status < 400) {
        /* A last line without its newline. */
        append(&c->line, &c->line_len, &c->line_alloc, "\n", 1);
        r = flush_lines(c);
    }
    if (r == 0 && status >= 400) {
        /* The error body went to the line callback's buffer, or was kept. */
        if (c->stream.line) {
            free(c->body);
            c->body = TAKE_PTR(c->line);
        }
        set_reply_error(c, status, err);
    }
    return r < 0 || r > 0 ? r : (int) status;
}

int rest_stream(struct rest *r, const struct rest_request *q, const struct rest_stream *s,
                struct error *err)
{
    struct call c = {.stream = *s, .streaming = true};
    long status = 0;
    int ret = call_setup(r, q, &c, err);
    if (ret >= 0) {
        ret = perform(&c, &status, err);
        ret = stream_result(&c, ret, status, err);
    }
    call_done(&c);
    return ret;
}

/* ---- groups ---- */

struct rest_group {
    struct rest *r;
    struct rest_multi *h;
    struct call *calls[REST_GROUP_MAX];
    bool in_perform; /* inside curl_multi_socket_action: adding waits until it returns */
};

struct rest_group *rest_group_new(struct rest *r)
{
    struct rest_group *g = xcalloc(1, sizeof(*g));
    g->r = r;
    return g;
}

static void group_drop(struct rest_group *g, int n)
{
    struct call *c = g->calls[n];
    if (!c)
        return;
    if (c->added && c->h)
        (void) curl_multi_remove_handle(g->h->m, c->h);
    call_done(c);
    error_clear(&c->err);
    free(c);
    g->calls[n] = NULL;
}

struct rest_group *rest_group_free(struct rest_group *g)
{
    if (!g)
        return NULL;
    for (int n = 0; n < REST_GROUP_MAX; n++)
        group_drop(g, n);
    if (g->h)
        rest_multi_put(g->h);
    free(g);
    return NULL;
}

void rest_group_cancel(struct rest_group *g, int n)
{
    if (n >= 0 && n < REST_GROUP_MAX)
        group_drop(g, n);
}

int rest_group_add(struct rest_group *g, const struct rest_request *q, const struct rest_stream *s,
                   struct error *err)
{
    struct call *c = xcalloc(1, sizeof(*c));
    c->stream = *s;
    c->streaming = true;
    int r = call_setup(g->r, q, c, err);
    if (r >= 0 && !g->h && !(g->h = rest_multi_get()))
        r = error_set(err, -ENOMEM, "curl_multi_init failed");
    for (int n = 0; r >= 0 && n < REST_GROUP_MAX; n++)
        if (!g->calls[n]) {
            g->calls[n] = c;
            if (!g->in_perform) {
                (void) curl_multi_add_handle(g->h->m, c->h);
                c->added = true;
            }
            return n;
        }
    if (r >= 0)
        r = error_set(err, -EBUSY, "more than %d calls in one group", REST_GROUP_MAX);
    call_done(c);
    free(c);
    return r;
}

int rest_group_run(struct rest_group *g, const int *abort_fds, size_t n_abort, int *ret_result,
                   struct error *err)
{
    struct rest_aborts aborts;
    aborts_init(&aborts, g->r, abort_fds, n_abort);
    for (;;) {
        bool any = false;
        for (int n = 0; n < REST_GROUP_MAX; n++) {
            struct call *c = g->calls[n];
            if (!c)
                continue;
            if (c->done) {
                /* One ended: its result to the caller, its slot freed. */
                *ret_result = c->result;
                if (c->err.code < 0)
                    error_set(err, c->err.code, "%s", error_message(&c->err));
                group_drop(g, n);
                return n;
            }
            if (!c->added) {
                (void) curl_multi_add_handle(g->h->m, c->h);
                c->added = true;
            }
            any = true;
        }
        if (!any)
            return -ENOENT;

        g->in_perform = true;
        bool aborted = rest_multi_wait(g->h, &aborts);
        g->in_perform = false;
        CURLMsg *msg;
        int left;
        bool ended = false;
        while ((msg = curl_multi_info_read(g->h->m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *h = msg->easy_handle;
            CURLcode rc = msg->data.result;
            struct call *c = NULL;
            (void) curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **) &c);
            (void) curl_multi_remove_handle(g->h->m, h);
            c->added = false;
            long status = 0;
            int r = call_end(c, rc, false, &status, &c->err);
            c->result = stream_result(c, r, status, &c->err);
            c->done = true;
            ended = true;
        }
        if (ended)
            continue; /* what ended goes to the caller first, even if libcurl failed */
        if (g->h->failed) {
            g->h->failed = false; /* said once; the next run tries again */
            return error_set(err, -EREMOTEIO, "curl_multi_socket_action failed");
        }
        if (aborted)
            return error_set(err, -ECANCELED, "cancelled");
    }
}
