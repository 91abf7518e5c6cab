/*
 * engine: see engine.h. libcurl's easy interface, one handle per call,
 * CURLOPT_UNIX_SOCKET_PATH and http://localhost/v<version>/... URLs.
 *
 * libcurl (and the TLS, Kerberos and LDAP libraries Debian builds it
 * with, ~5 MB resident) is opened on the first call, not when the daemon
 * starts (util/dlopen.h): a daemon that runs no container task never
 * maps it. The sym_ pointers stand in for the library's functions.
 */
#include "engine.h"
#include "util/dlopen.h"

#define CURL_DISABLE_TYPECHECK /* its macros would call the real symbols */
#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>

static typeof(curl_global_init) *sym_curl_global_init;
static typeof(curl_share_init) *sym_curl_share_init;
static typeof(curl_share_setopt) *sym_curl_share_setopt;
static typeof(curl_easy_init) *sym_curl_easy_init;
static typeof(curl_easy_reset) *sym_curl_easy_reset;
static typeof(curl_easy_setopt) *sym_curl_easy_setopt;
static typeof(curl_easy_perform) *sym_curl_easy_perform;
static typeof(curl_easy_getinfo) *sym_curl_easy_getinfo;
static typeof(curl_easy_cleanup) *sym_curl_easy_cleanup;
static typeof(curl_easy_strerror) *sym_curl_easy_strerror;
static typeof(curl_slist_append) *sym_curl_slist_append;
static typeof(curl_slist_free_all) *sym_curl_slist_free_all;

static const struct dlsym_entry curl_syms[] = {
    DLSYM_ENTRY(curl_global_init),
    DLSYM_ENTRY(curl_share_init),
    DLSYM_ENTRY(curl_share_setopt),
    DLSYM_ENTRY(curl_easy_init),
    DLSYM_ENTRY(curl_easy_reset),
    DLSYM_ENTRY(curl_easy_setopt),
    DLSYM_ENTRY(curl_easy_perform),
    DLSYM_ENTRY(curl_easy_getinfo),
    DLSYM_ENTRY(curl_easy_cleanup),
    DLSYM_ENTRY(curl_easy_strerror),
    DLSYM_ENTRY(curl_slist_append),
    DLSYM_ENTRY(curl_slist_free_all),
    {},
};

#undef curl_share_setopt /* curl.h's argument-count checks */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init    sym_curl_global_init
#define curl_share_init     sym_curl_share_init
#define curl_share_setopt   sym_curl_share_setopt
#define curl_easy_init      sym_curl_easy_init
#define curl_easy_reset     sym_curl_easy_reset
#define curl_easy_setopt    sym_curl_easy_setopt
#define curl_easy_perform   sym_curl_easy_perform
#define curl_easy_getinfo   sym_curl_easy_getinfo
#define curl_easy_cleanup   sym_curl_easy_cleanup
#define curl_easy_strerror  sym_curl_easy_strerror
#define curl_slist_append   sym_curl_slist_append
#define curl_slist_free_all sym_curl_slist_free_all

static struct error curl_load_error; /* set once, under curl_once */

#define ENGINE_MAX_REPLY (64U << 20) /* an inspect or list is far smaller */

struct engine {
    char *socket;
    char version[16];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

/* Idle easy handles, shared by every thread: a handle keeps its
 * connection to dockerd open (keep-alive), so a task's calls - and the
 * next task's, from another thread - reuse it instead of connecting and
 * setting up again. A handle is used by one call at a time. */
#define POOL_MAX 16
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[POOL_MAX];
static size_t pool_n;

/* One connection cache for every handle (libcurl's share interface), so
 * an idle keep-alive connection to dockerd serves the next call whatever
 * thread or handle makes it. */
static CURLSH *share;
static pthread_mutex_t share_lock = PTHREAD_MUTEX_INITIALIZER;

static void share_lock_fn(CURL *h, curl_lock_data data, curl_lock_access access, void *userptr)
{
    pthread_mutex_lock(&share_lock);
}

static void share_unlock_fn(CURL *h, curl_lock_data data, void *userptr)
{
    pthread_mutex_unlock(&share_lock);
}

static void curl_init_once(void)
{
    if (dlopen_many("libcurl.so.4", curl_syms, &curl_load_error) < 0)
        return;
    (void) curl_global_init(CURL_GLOBAL_NOTHING);
    share = curl_share_init();
    if (share) {
        (void) curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock_fn);
        (void) curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock_fn);
        (void) curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    }
}

static CURL *handle_get(void)
{
    CURL *h = NULL;
    pthread_mutex_lock(&pool_lock);
    if (pool_n > 0)
        h = pool[--pool_n];
    pthread_mutex_unlock(&pool_lock);
    if (h) {
        curl_easy_reset(h);
        return h;
    }
    return curl_easy_init();
}

static void handle_put(CURL *h)
{
    pthread_mutex_lock(&pool_lock);
    if (pool_n < POOL_MAX) {
        pool[pool_n++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    if (h)
        curl_easy_cleanup(h);
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
    struct engine *e = xcalloc(1, sizeof(*e));
    e->socket = xstrdup(s);
    snprintf(e->version, sizeof(e->version), "%s", ENGINE_API_VERSION);
    *ret = e;
    return 0;
}

struct engine *engine_free(struct engine *e)
{
    if (e) {
        free(e->socket);
        free(e);
    }
    return NULL;
}

const char *engine_socket(const struct engine *e)
{
    return e->socket;
}

const char *engine_api_version(const struct engine *e)
{
    return e->version;
}

char *engine_escape(const char *s)
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
    /* the reply body, unless streamed */
    char *body;
    size_t len, alloc;
    bool too_big;
    /* streaming */
    const struct engine_stream *stream;
    char *line;
    size_t line_len, line_alloc;
    int stopped; /* the line callback's non-zero result */
    bool headers_seen;
    /* logs */
    struct engine_demux *demux;
    int abort_fd; /* when not streaming; -1 for none */
    /* /_ping */
    char api_version[16];
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

static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;
    size_t len = size * n;
    if (len >= 12 && strncasecmp(data, "Api-Version:", 12) == 0) {
        const char *v = data + 12;
        while (*v == ' ')
            v++;
        size_t l = strcspn(v, "\r\n");
        snprintf(c->api_version, sizeof(c->api_version), "%.*s", (int) MIN(l, 15), v);
    }
    return len;
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
            c->stopped = c->stream->line(c->stream->userdata, start, l);
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
    if (c->demux) {
        engine_demux_feed(c->demux, data, len);
        return c->demux->error ? 0 : len;
    }
    if (c->stream && c->stream->line) {
        append(&c->line, &c->line_len, &c->line_alloc, data, len);
        if (flush_lines(c))
            return 0; /* stop the transfer */
        if (c->line_len > ENGINE_MAX_REPLY)
            return 0;
        return len;
    }
    if (c->len + len > ENGINE_MAX_REPLY) {
        c->too_big = true;
        return 0;
    }
    append(&c->body, &c->len, &c->alloc, data, len);
    return len;
}

/* Progress callback: tells headers_done() once, and honours abort_fd. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct call *c = userdata;
    int fd = c->stream ? c->stream->abort_fd : c->abort_fd;
    if (fd < 0)
        return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0 ? 1 : 0;
}

/* libcurl calls the header callback once more with an empty line at the
 * end of the headers: that is when a wait is known to be registered. */
static size_t on_header_stream(char *data, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;
    size_t len = size * n;
    if (!c->headers_seen && (len == 2 && data[0] == '\r' && data[1] == '\n')) {
        c->headers_seen = true;
        if (c->stream && c->stream->headers_done)
            c->stream->headers_done(c->stream->userdata, 0);
    }
    return on_header(data, size, n, userdata);
}

static int perform(struct engine *e, const char *method, const char *path, const cJSON *body,
                   struct call *c, bool unversioned, long *ret_status, struct error *err)
{
    (void) pthread_once(&curl_once, curl_init_once);
    if (curl_load_error.code < 0)
        return error_set(err, -EREMOTEIO, "cannot reach dockerd: %s",
                         error_message(&curl_load_error));
    CURL *h = handle_get();
    if (!h)
        return error_set(err, -ENOMEM, "curl_easy_init failed");
    _cleanup_free_ char *url = unversioned ? xasprintf("http://localhost%s", path)
                                           : xasprintf("http://localhost/v%s%s", e->version, path);
    _cleanup_free_ char *json = body ? cJSON_PrintUnformatted(body) : NULL;
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";

    hdrs = curl_slist_append(hdrs, "Expect:");
    if (c->stream && c->stream->header)
        hdrs = curl_slist_append(hdrs, c->stream->header);
    if (json)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    (void) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, e->socket);
    if (share)
        (void) curl_easy_setopt(h, CURLOPT_SHARE, share);
    (void) curl_easy_setopt(h, CURLOPT_URL, url);
    (void) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    (void) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    (void) curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    (void) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    (void) curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    if (json) {
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(json));
    } else if (streq(method, "POST")) {
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    (void) curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_stream);
    (void) curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    if ((c->stream && c->stream->abort_fd >= 0) || (!c->stream && c->abort_fd >= 0)) {
        (void) curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        (void) curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
        (void) curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (!c->stream && !c->demux)
        (void) curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L); /* short calls only */

    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    handle_put(h);

    if (rc == CURLE_COULDNT_CONNECT) {
        /* curl's words name "localhost port 80"; say what is wrong with the socket. */
        struct stat st;
        const char *why = stat(e->socket, &st) < 0 ? strerror(errno)
                          : !S_ISSOCK(st.st_mode)  ? "not a socket"
                                                   : "connection refused (is dockerd running?)";
        return error_set(err, -EREMOTEIO, "cannot reach dockerd at %s: %s", e->socket, why);
    }
    if (rc != CURLE_OK && status == 0 && rc != CURLE_WRITE_ERROR && rc != CURLE_ABORTED_BY_CALLBACK)
        return error_set(err, -EREMOTEIO, "cannot reach dockerd at %s: %s", e->socket,
                         errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return error_set(err, -ECANCELED, "%s %s: cancelled", method, path);
    if (rc == CURLE_WRITE_ERROR && c->stopped)
        return c->stopped;
    if (rc == CURLE_WRITE_ERROR && c->demux && c->demux->error)
        return error_set_errno(err, c->demux->error, "%s %s: write the output", method, path);
    if (c->too_big || (rc == CURLE_WRITE_ERROR && c->stream))
        return error_set(err, -EREMOTEIO, "%s %s: the reply is larger than %u bytes", method, path,
                         ENGINE_MAX_REPLY);
    if (rc != CURLE_OK)
        return error_set(err, -EREMOTEIO, "%s %s: %s", method, path,
                         errbuf[0] ? errbuf : curl_easy_strerror(rc));
    *ret_status = status;
    return 0;
}

/* For a failed call, the daemon's {"message": "..."} into err. */
static void set_reply_error(struct call *c, long status, const char *method, const char *path,
                            struct error *err)
{
    cJSON *j = c->body ? cJSON_Parse(c->body) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    int code = status == 404   ? -ENOENT
               : status == 409 ? -EEXIST
               : status == 400 ? -EINVAL
                               : -EREMOTEIO;
    if (cJSON_IsString(m))
        error_set(err, code, "%s", m->valuestring);
    else
        error_set(err, code, "%s %s: HTTP %ld", method, path, status);
    cJSON_Delete(j);
}

int engine_ping(struct engine *e, struct error *err)
{
    struct call c = {.abort_fd = -1};
    long status = 0;
    int r = perform(e, "GET", "/_ping", NULL, &c, true, &status, err);
    free(c.body);
    if (r < 0)
        return r;
    if (status != 200)
        return error_set(err, -EREMOTEIO, "dockerd at %s answered /_ping with HTTP %ld", e->socket,
                         status);
    unsigned maj, min, pmaj, pmin;
    if (sscanf(c.api_version, "%u.%u", &maj, &min) == 2 &&
        sscanf(ENGINE_API_VERSION, "%u.%u", &pmaj, &pmin) == 2 &&
        (maj < pmaj || (maj == pmaj && min < pmin)))
        snprintf(e->version, sizeof(e->version), "%u.%u", maj, min);
    return 0;
}

int engine_call(struct engine *e, const char *method, const char *path, const cJSON *body,
                cJSON **ret_json, struct error *err)
{
    struct call c = {.abort_fd = -1};
    long status = 0;
    int r = perform(e, method, path, body, &c, false, &status, err);
    if (r < 0) {
        free(c.body);
        return r;
    }
    if (status >= 400)
        set_reply_error(&c, status, method, path, err);
    else if (ret_json)
        *ret_json = c.body ? cJSON_Parse(c.body) : NULL;
    free(c.body);
    return (int) status;
}

int engine_stream(struct engine *e, const char *method, const char *path, const cJSON *body,
                  const struct engine_stream *s, struct error *err)
{
    struct call c = {.stream = s, .abort_fd = -1};
    long status = 0;
    int r = perform(e, method, path, body, &c, false, &status, err);
    if (r == 0 && c.line_len > 0 && c.stopped == 0 && s->line && status < 400) {
        /* A last line without its newline. */
        append(&c.line, &c.line_len, &c.line_alloc, "\n", 1);
        r = flush_lines(&c);
    }
    if (r == 0 && status >= 400) {
        /* The error body went to the line callback's buffer or nowhere. */
        c.body = c.line;
        c.line = NULL;
        set_reply_error(&c, status, method, path, err);
    }
    free(c.line);
    free(c.body);
    return r < 0 || r > 0 ? r : (int) status;
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
        /* 1 stdout, 2 stderr; 0 (stdin) and 3 (the daemon's own error) go to stderr. */
        int fd = d->stream == 1 ? d->fds[1] : d->fds[2];
        if (fd >= 0) {
            int r = loop_write(fd, buf, take);
            if (r < 0)
                d->error = r;
        }
        d->left -= take;
        buf += take;
        len -= take;
    }
}

int engine_logs(struct engine *e, const char *id, bool follow, int out_fd, int err_fd, int abort_fd,
                struct error *err)
{
    struct engine_demux d;
    engine_demux_init(&d, out_fd, err_fd);
    struct call c = {.demux = &d, .abort_fd = abort_fd};
    long status = 0;
    _cleanup_free_ char *path =
        xasprintf("/containers/%s/logs?stdout=1&stderr=1%s", id, follow ? "&follow=1" : "");
    int r = perform(e, "GET", path, NULL, &c, false, &status, err);
    if (r < 0)
        return r;
    if (status >= 400)
        return error_set(err, status == 404 ? -ENOENT : -EREMOTEIO,
                         "logs of container %s: HTTP %ld", id, status);
    return (int) status;
}
