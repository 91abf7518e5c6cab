/*
 * engine: see engine.h. libcurl over CURLOPT_UNIX_SOCKET_PATH and
 * http://localhost/v<version>/... URLs, every call driven through the
 * multi interface: a blocking call runs a multi handle of its own, a
 * group runs several calls in one. Either way the engine polls libcurl's
 * sockets together with the abort fds (struct mh, libcurl's multi_socket
 * API) instead of a progress callback checking them at every turn of
 * libcurl's loop, which cost a poll() of its own each time.
 *
 * libcurl (and the TLS, Kerberos and LDAP libraries Debian builds it
 * with, ~5 MB resident) is opened on the first call, not when the daemon
 * starts (util/dlopen.h): a daemon that runs no container task never
 * maps it. The sym_ pointers stand in for the library's functions.
 */
#include "engine.h"
#include "util/dlopen.h"
#include "util/timeutil.h"

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
static typeof(curl_easy_getinfo) *sym_curl_easy_getinfo;
static typeof(curl_easy_cleanup) *sym_curl_easy_cleanup;
static typeof(curl_easy_strerror) *sym_curl_easy_strerror;
static typeof(curl_slist_append) *sym_curl_slist_append;
static typeof(curl_slist_free_all) *sym_curl_slist_free_all;
static typeof(curl_multi_init) *sym_curl_multi_init;
static typeof(curl_multi_setopt) *sym_curl_multi_setopt;
static typeof(curl_multi_cleanup) *sym_curl_multi_cleanup;
static typeof(curl_multi_add_handle) *sym_curl_multi_add_handle;
static typeof(curl_multi_remove_handle) *sym_curl_multi_remove_handle;
static typeof(curl_multi_socket_action) *sym_curl_multi_socket_action;
static typeof(curl_multi_info_read) *sym_curl_multi_info_read;

static const struct dlsym_entry curl_syms[] = {
    DLSYM_ENTRY(curl_global_init),
    DLSYM_ENTRY(curl_share_init),
    DLSYM_ENTRY(curl_share_setopt),
    DLSYM_ENTRY(curl_easy_init),
    DLSYM_ENTRY(curl_easy_reset),
    DLSYM_ENTRY(curl_easy_setopt),
    DLSYM_ENTRY(curl_easy_getinfo),
    DLSYM_ENTRY(curl_easy_cleanup),
    DLSYM_ENTRY(curl_easy_strerror),
    DLSYM_ENTRY(curl_slist_append),
    DLSYM_ENTRY(curl_slist_free_all),
    DLSYM_ENTRY(curl_multi_init),
    DLSYM_ENTRY(curl_multi_setopt),
    DLSYM_ENTRY(curl_multi_cleanup),
    DLSYM_ENTRY(curl_multi_add_handle),
    DLSYM_ENTRY(curl_multi_remove_handle),
    DLSYM_ENTRY(curl_multi_socket_action),
    DLSYM_ENTRY(curl_multi_info_read),
    {},
};

#undef curl_share_setopt /* curl.h's argument-count checks */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init         sym_curl_global_init
#define curl_share_init          sym_curl_share_init
#define curl_share_setopt        sym_curl_share_setopt
#define curl_easy_init           sym_curl_easy_init
#define curl_easy_reset          sym_curl_easy_reset
#define curl_easy_setopt         sym_curl_easy_setopt
#define curl_easy_getinfo        sym_curl_easy_getinfo
#define curl_easy_cleanup        sym_curl_easy_cleanup
#define curl_easy_strerror       sym_curl_easy_strerror
#define curl_slist_append        sym_curl_slist_append
#define curl_slist_free_all      sym_curl_slist_free_all
#define curl_multi_init          sym_curl_multi_init
#define curl_multi_setopt        sym_curl_multi_setopt
#define curl_multi_cleanup       sym_curl_multi_cleanup
#define curl_multi_add_handle    sym_curl_multi_add_handle
#define curl_multi_remove_handle sym_curl_multi_remove_handle
#define curl_multi_socket_action sym_curl_multi_socket_action
#define curl_multi_info_read     sym_curl_multi_info_read

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
 * setting up again. A handle is used by one call at a time. Idle multi
 * handles likewise, for blocking calls. */
#define POOL_MAX 16

/* A multi handle driven through its sockets (libcurl's multi_socket
 * API): libcurl names the sockets to watch and when to be called back
 * (on_socket, on_timer); the engine polls those with the abort fds and
 * tells libcurl which socket is ready, so libcurl neither polls each
 * transfer again before reading it nor walks every transfer at each turn
 * (curl_multi_perform did both: ~25 polls per container task). */
#define MH_SOCKS 16
struct mh {
    CURLM *m;
    struct pollfd socks[MH_SOCKS]; /* what libcurl wants watched */
    size_t n_socks;
    bool timer_set;
    usec_t deadline; /* CLOCK_MONOTONIC, when timer_set */
    bool failed;     /* a curl_multi_socket_action failed */
};
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[POOL_MAX];
static size_t pool_n;
static struct mh *mpool[POOL_MAX];
static size_t mpool_n;

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

static int curl_ready(struct error *err)
{
    (void) pthread_once(&curl_once, curl_init_once);
    if (curl_load_error.code < 0)
        return error_set(err, -EREMOTEIO, "cannot reach dockerd: %s",
                         error_message(&curl_load_error));
    return 0;
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

/* How many connections the shared cache keeps. libcurl closes the oldest
 * one whenever a transfer ends with more than that many in the cache -
 * in use or idle - and its default is 4 per easy handle of the multi the
 * transfer ran in: 4 for a blocking call. With a few tasks in flight
 * (each holding a wait and a logs stream) nearly every call then had to
 * connect to dockerd afresh, and dockerd to accept. */
#define CONNS_MAX 64L

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct mh *h = userp;
    size_t i = 0;
    while (i < h->n_socks && h->socks[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < h->n_socks)
            h->socks[i] = h->socks[--h->n_socks];
        return 0;
    }
    if (i == h->n_socks) {
        if (h->n_socks == MH_SOCKS)
            return -1; /* libcurl fails the transfer */
        h->n_socks++;
    }
    h->socks[i] = (struct pollfd){
        .fd = fd,
        .events =
            (short) ((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0)),
    };
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    struct mh *h = userp;
    h->timer_set = timeout_ms >= 0;
    h->deadline = h->timer_set ? now_monotonic() + (usec_t) timeout_ms * 1000 : 0;
    return 0;
}

static void mh_action(struct mh *h, curl_socket_t fd, int bits)
{
    int running = 0;
    CURLMcode mc = curl_multi_socket_action(h->m, fd, bits, &running);
    /* A socket libcurl let go of meanwhile is no failure of the calls. */
    if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
        h->failed = true;
}

static bool mh_watches(const struct mh *h, int fd)
{
    for (size_t i = 0; i < h->n_socks; i++)
        if (h->socks[i].fd == fd)
            return true;
    return false;
}

/* libcurl's timer, if it is due: it starts added transfers this way. */
static void mh_timeout(struct mh *h)
{
    if (h->timer_set && h->deadline <= now_monotonic()) {
        h->timer_set = false;
        mh_action(h, CURL_SOCKET_TIMEOUT, 0);
    }
}

/* Waits for a socket of h, libcurl's timer or one of the abort fds; lets
 * libcurl act on what is ready. True when an abort fd became readable. */
static bool mh_wait(struct mh *h, const int *abort_fds, size_t n_abort)
{
    if (h->timer_set && h->deadline <= now_monotonic()) {
        mh_timeout(h);
        return false;
    }
    struct pollfd p[MH_SOCKS + 4];
    size_t n = h->n_socks, n_socks = n;
    memcpy(p, h->socks, n * sizeof(*p)); /* acting on one may change h->socks */
    for (size_t i = 0; i < n_abort && i < 4; i++)
        if (abort_fds[i] >= 0)
            p[n++] = (struct pollfd){.fd = abort_fds[i], .events = POLLIN};
    int timeout = 1000;
    if (h->timer_set) {
        usec_t now = now_monotonic();
        timeout = h->deadline <= now ? 0 : (int) MIN((h->deadline - now + 999) / 1000, 1000);
    }
    if (poll(p, n, timeout) < 0)
        return false; /* EINTR: look again */
    for (size_t i = n_socks; i < n; i++)
        if (p[i].revents & POLLIN)
            return true; /* the sockets stay ready: the next wait acts on them */
    for (size_t i = 0; i < n_socks; i++)
        if (p[i].revents && mh_watches(h, p[i].fd)) /* acting on one may drop another */
            mh_action(h, p[i].fd,
                      (p[i].revents & POLLIN ? CURL_CSELECT_IN : 0) |
                          (p[i].revents & POLLOUT ? CURL_CSELECT_OUT : 0) |
                          (p[i].revents & (POLLERR | POLLHUP | POLLNVAL) ? CURL_CSELECT_ERR : 0));
    mh_timeout(h);
    return false;
}

static struct mh *multi_get(void)
{
    struct mh *h = NULL;
    pthread_mutex_lock(&pool_lock);
    if (mpool_n > 0)
        h = mpool[--mpool_n];
    pthread_mutex_unlock(&pool_lock);
    if (h)
        return h;
    CURLM *m = curl_multi_init();
    if (!m)
        return NULL;
    h = xcalloc(1, sizeof(*h));
    h->m = m;
    (void) curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, CONNS_MAX);
    (void) curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
    (void) curl_multi_setopt(m, CURLMOPT_SOCKETDATA, h);
    (void) curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
    (void) curl_multi_setopt(m, CURLMOPT_TIMERDATA, h);
    return h;
}

/* h must hold no easy handle (libcurl has told it to watch nothing). */
static void multi_put(struct mh *h)
{
    h->timer_set = h->failed = false;
    pthread_mutex_lock(&pool_lock);
    if (mpool_n < POOL_MAX) {
        mpool[mpool_n++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    if (h) {
        (void) curl_multi_cleanup(h->m);
        free(h);
    }
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
    struct engine *e;
    char *method, *path; /* for error messages */
    CURL *h;
    struct curl_slist *hdrs;
    char *url, *json;
    char errbuf[CURL_ERROR_SIZE];
    /* the reply body, unless streamed */
    char *body;
    size_t len, alloc;
    bool too_big;
    /* streaming */
    struct engine_stream stream;
    bool streaming;
    char *line;
    size_t line_len, line_alloc;
    int stopped; /* the line callback's non-zero result */
    bool headers_seen;
    /* logs */
    struct engine_demux demux;
    bool logs;
    char *logs_id;
    /* /_ping */
    char api_version[16];
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
    if (c->logs) {
        engine_demux_feed(&c->demux, data, len);
        return c->demux.error ? 0 : len;
    }
    if (c->streaming && c->stream.line) {
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

/* libcurl calls the header callback once more with an empty line at the
 * end of the headers: that is when a wait is known to be registered. */
static size_t on_header_stream(char *data, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;
    size_t len = size * n;
    if (!c->headers_seen && (len == 2 && data[0] == '\r' && data[1] == '\n')) {
        c->headers_seen = true;
        if (c->streaming && c->stream.headers_done)
            c->stream.headers_done(c->stream.userdata, 0);
    }
    return on_header(data, size, n, userdata);
}

/* Frees what the call holds but its result: handle, headers, buffers. */
static void call_done(struct call *c)
{
    if (c->h)
        handle_put(c->h);
    c->h = NULL;
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    free(c->url);
    free(c->json);
    free(c->method);
    free(c->path);
    free(c->body);
    free(c->line);
    free(c->logs_id);
    c->url = c->json = c->method = c->path = c->body = c->line = c->logs_id = NULL;
}

/* Takes an easy handle and sets the request up; c->streaming/c->logs and
 * their parts are set by the caller. */
static int call_setup(struct engine *e, const char *method, const char *path, const cJSON *body,
                      struct call *c, bool unversioned, struct error *err)
{
    int r = curl_ready(err);
    if (r < 0)
        return r;
    CURL *h = handle_get();
    if (!h)
        return error_set(err, -ENOMEM, "curl_easy_init failed");
    c->e = e;
    c->h = h;
    c->method = xstrdup(method);
    c->path = xstrdup(path);
    c->url = unversioned ? xasprintf("http://localhost%s", path)
                         : xasprintf("http://localhost/v%s%s", e->version, path);
    c->json = body ? cJSON_PrintUnformatted(body) : NULL;

    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    if (c->streaming && c->stream.header)
        c->hdrs = curl_slist_append(c->hdrs, c->stream.header);
    if (c->json)
        c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
    (void) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, e->socket);
    if (share)
        (void) curl_easy_setopt(h, CURLOPT_SHARE, share);
    (void) curl_easy_setopt(h, CURLOPT_URL, c->url);
    (void) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    (void) curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
    (void) curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    (void) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    (void) curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    /* No proxy, whatever the environment says (and no lookup of it per call). */
    (void) curl_easy_setopt(h, CURLOPT_PROXY, "");
    if (c->json) {
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->json);
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(c->json));
    } else if (streq(method, "POST")) {
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    (void) curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_stream);
    (void) curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    (void) curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    if (!c->streaming && !c->logs)
        (void) curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L); /* short calls only */
    return 0;
}

/* The transfer is over (rc) or was aborted (aborted): maps it to the
 * HTTP status in *ret_status (0 returned) or an error. Keeps c->body,
 * c->line and the rest for the caller; gives the handle back. */
static int call_end(struct call *c, CURLcode rc, bool aborted, long *ret_status, struct error *err)
{
    long status = 0;
    (void) curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    handle_put(c->h);
    c->h = NULL;
    const char *method = c->method, *path = c->path, *socket = c->e->socket;

    if (aborted)
        return error_set(err, -ECANCELED, "%s %s: cancelled", method, path);
    if (rc == CURLE_COULDNT_CONNECT) {
        /* curl's words name "localhost port 80"; say what is wrong with the socket. */
        struct stat st;
        const char *why = stat(socket, &st) < 0   ? strerror(errno)
                          : !S_ISSOCK(st.st_mode) ? "not a socket"
                                                  : "connection refused (is dockerd running?)";
        return error_set(err, -EREMOTEIO, "cannot reach dockerd at %s: %s", socket, why);
    }
    if (rc != CURLE_OK && status == 0 && rc != CURLE_WRITE_ERROR)
        return error_set(err, -EREMOTEIO, "cannot reach dockerd at %s: %s", socket,
                         c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_WRITE_ERROR && c->stopped)
        return c->stopped;
    if (rc == CURLE_WRITE_ERROR && c->logs && c->demux.error)
        return error_set_errno(err, c->demux.error, "%s %s: write the output", method, path);
    if (c->too_big || (rc == CURLE_WRITE_ERROR && c->streaming))
        return error_set(err, -EREMOTEIO, "%s %s: the reply is larger than %u bytes", method, path,
                         ENGINE_MAX_REPLY);
    if (rc != CURLE_OK)
        return error_set(err, -EREMOTEIO, "%s %s: %s", method, path,
                         c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
    *ret_status = status;
    return 0;
}

/* Runs one set-up call to its end in a multi of its own. */
static int perform(struct call *c, const int *abort_fds, size_t n_abort, long *ret_status,
                   struct error *err)
{
    struct mh *h = multi_get();
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
        if (mh_wait(h, abort_fds, n_abort)) {
            aborted = true;
            break;
        }
    }
    (void) curl_multi_remove_handle(h->m, c->h);
    multi_put(h);
    return call_end(c, rc, aborted, ret_status, err);
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
    struct call c = {0};
    long status = 0;
    int r = call_setup(e, "GET", "/_ping", NULL, &c, true, err);
    if (r >= 0)
        r = perform(&c, NULL, 0, &status, err);
    call_done(&c);
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
    struct call c = {0};
    long status = 0;
    int r = call_setup(e, method, path, body, &c, false, err);
    if (r >= 0)
        r = perform(&c, NULL, 0, &status, err);
    if (r >= 0) {
        if (status >= 400)
            set_reply_error(&c, status, method, path, err);
        else if (ret_json)
            *ret_json = c.body ? cJSON_Parse(c.body) : NULL;
        r = (int) status;
    }
    call_done(&c);
    return r;
}

/* A stream's result once its transfer is over, as engine_stream returns it. */
static int stream_result(struct call *c, int r, long status, struct error *err)
{
    if (r == 0 && c->line_len > 0 && c->stopped == 0 && c->stream.line && status < 400) {
        /* A last line without its newline. */
        append(&c->line, &c->line_len, &c->line_alloc, "\n", 1);
        r = flush_lines(c);
    }
    if (r == 0 && status >= 400) {
        /* The error body went to the line callback's buffer or nowhere. */
        free(c->body);
        c->body = c->line;
        c->line = NULL;
        set_reply_error(c, status, c->method, c->path, err);
    }
    return r < 0 || r > 0 ? r : (int) status;
}

int engine_stream(struct engine *e, const char *method, const char *path, const cJSON *body,
                  const struct engine_stream *s, struct error *err)
{
    struct call c = {.stream = *s, .streaming = true};
    long status = 0;
    int r = call_setup(e, method, path, body, &c, false, err);
    if (r >= 0) {
        r = perform(&c, s->abort_fds, s->n_abort_fds, &status, err);
        r = stream_result(&c, r, status, err);
    }
    call_done(&c);
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

static int logs_setup(struct engine *e, const char *id, bool follow, int out_fd, int err_fd,
                      struct call *c, struct error *err)
{
    engine_demux_init(&c->demux, out_fd, err_fd);
    c->logs = true;
    c->logs_id = xstrdup(id);
    _cleanup_free_ char *path =
        xasprintf("/containers/%s/logs?stdout=1&stderr=1%s", id, follow ? "&follow=1" : "");
    return call_setup(e, "GET", path, NULL, c, false, err);
}

static int logs_result(struct call *c, int r, long status, struct error *err)
{
    if (r < 0)
        return r;
    if (status >= 400)
        return error_set(err, status == 404 ? -ENOENT : -EREMOTEIO,
                         "logs of container %s: HTTP %ld", c->logs_id, status);
    return (int) status;
}

int engine_logs(struct engine *e, const char *id, bool follow, int out_fd, int err_fd, int abort_fd,
                struct error *err)
{
    struct call c = {0};
    long status = 0;
    int r = logs_setup(e, id, follow, out_fd, err_fd, &c, err);
    if (r >= 0) {
        r = perform(&c, &abort_fd, 1, &status, err);
        r = logs_result(&c, r, status, err);
    }
    call_done(&c);
    return r;
}

/* ---- groups ---- */

#define GROUP_MAX 8

struct engine_group {
    struct engine *e;
    struct mh *h;
    struct call *calls[GROUP_MAX];
    bool in_perform; /* inside curl_multi_socket_action: adding waits until it returns */
};

struct engine_group *engine_group_new(struct engine *e)
{
    struct engine_group *g = xcalloc(1, sizeof(*g));
    g->e = e;
    return g;
}

static void group_drop(struct engine_group *g, int n)
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

struct engine_group *engine_group_free(struct engine_group *g)
{
    if (!g)
        return NULL;
    for (int n = 0; n < GROUP_MAX; n++)
        group_drop(g, n);
    if (g->h)
        multi_put(g->h);
    free(g);
    return NULL;
}

void engine_group_cancel(struct engine_group *g, int n)
{
    if (n >= 0 && n < GROUP_MAX)
        group_drop(g, n);
}

/* Finds a free slot for a set-up call (the slot's number), or fails. */
static int group_add(struct engine_group *g, struct call *c, int r, struct error *err)
{
    if (r >= 0 && !g->h && !(g->h = multi_get()))
        r = error_set(err, -ENOMEM, "curl_multi_init failed");
    for (int n = 0; r >= 0 && n < GROUP_MAX; n++)
        if (!g->calls[n]) {
            g->calls[n] = c;
            if (!g->in_perform) {
                (void) curl_multi_add_handle(g->h->m, c->h);
                c->added = true;
            }
            return n;
        }
    if (r >= 0)
        r = error_set(err, -EBUSY, "more than %d calls in one group", GROUP_MAX);
    call_done(c);
    free(c);
    return r;
}

int engine_group_stream(struct engine_group *g, const char *method, const char *path,
                        const cJSON *body, const struct engine_stream *s, struct error *err)
{
    struct call *c = xcalloc(1, sizeof(*c));
    c->stream = *s;
    c->streaming = true;
    int r = call_setup(g->e, method, path, body, c, false, err);
    return group_add(g, c, r, err);
}

int engine_group_logs(struct engine_group *g, const char *id, int out_fd, int err_fd,
                      struct error *err)
{
    struct call *c = xcalloc(1, sizeof(*c));
    int r = logs_setup(g->e, id, true, out_fd, err_fd, c, err);
    return group_add(g, c, r, err);
}

int engine_group_run(struct engine_group *g, const int *abort_fds, size_t n_abort, int *ret_result,
                     struct error *err)
{
    for (;;) {
        bool any = false;
        for (int n = 0; n < GROUP_MAX; n++) {
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
        bool aborted = mh_wait(g->h, abort_fds, n_abort);
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
            c->result =
                c->logs ? logs_result(c, r, status, &c->err) : stream_result(c, r, status, &c->err);
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
