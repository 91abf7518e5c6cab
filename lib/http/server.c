/*
 * server: listening sockets and the MHD daemons behind them. We open the
 * sockets ourselves so that one code path serves IPv4, IPv6 and unix
 * sockets alike, and accept on them ourselves (gate.c), handing each
 * connection to the socket's daemon, which runs without a listening
 * socket of its own. Every connection is counted in one pool (pool.c),
 * which MHD's callbacks here keep up to date: when a request's line, its
 * head and its body are in, and when its answer is sent. An https://
 * listener's daemon runs TLS (MHD_USE_TLS) with the files
 * config_read_tls() read at start (tls.h).
 */
#include "http.h"
#include "tls.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

struct http_server {
    struct http_ctx ctx;
    struct http_listener *listeners; /* daemons[i]'s in listeners[i] */
    struct http_pool *pool;
    struct MHD_Daemon **daemons;
    int *fds; /* the listening sockets, daemons[i]'s in fds[i]; the gate's once it runs */
    size_t n;
    struct http_gate *gate;
    char **unix_paths; /* removed at stop */
};

static int listen_unix(const char *path, struct error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return error_set(err, -EINVAL, "unix socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    struct stat st;
    /* A socket left by an earlier run is ours to replace; any other file is not. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return error_set(err, -EEXIST, "%s exists and is not a socket", path);
        (void) unlink(path);
    }
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return error_set_errno(err, -errno, "socket");
    /* Anyone may connect; what a caller may do is decided from its SO_PEERCRED. */
    mode_t old = umask(0111);
    int r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
    umask(old);
    if (r < 0)
        return error_set_errno(err, -errno, "bind %s", path);
    if (listen(fd, 512) < 0)
        return error_set_errno(err, -errno, "listen %s", path);
    return TAKE_FD(fd);
}

/* 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104. */
static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* A TCP listening socket on addr; with loopback_only, one that any
 * address but a loopback one refuses (-EPERM). */
static int listen_tcp(const char *addr, bool loopback_only, struct error *err)
{
    _cleanup_free_ char *host = NULL;
    const char *port;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':')
            return error_set(err, -EINVAL, "listen: bad address \"%s\" (use [::1]:8080)", addr);
        host = xstrndup(addr + 1, (size_t) (end - addr - 1));
        port = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon)
            return error_set(err, -EINVAL, "listen: \"%s\" is not HOST:PORT or unix:/path", addr);
        host = xstrndup(addr, (size_t) (colon - addr));
        port = colon + 1;
    }
    if (isempty(port))
        return error_set(err, -EINVAL, "listen: \"%s\" has no port", addr);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(isempty(host) ? NULL : host, port, &hints, &res);
    if (g != 0)
        return error_set(err, -EINVAL, "listen %s: %s", addr, gai_strerror(g));
    int r = -EINVAL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (loopback_only && !is_loopback(ai->ai_addr)) {
            char host_text[INET6_ADDRSTRLEN] = "?";
            (void) getnameinfo(ai->ai_addr, ai->ai_addrlen, host_text, sizeof(host_text), NULL, 0,
                               NI_NUMERICHOST);
            r = error_set(err, -EPERM,
                          "listen %s: an unauthenticated listener must be on a loopback address "
                          "(127.0.0.0/8 or ::1), not %s",
                          addr, host_text);
            break;
        }
        _cleanup_close_ int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            r = error_set_errno(err, -errno, "socket");
            continue;
        }
        int one = 1;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            r = error_set_errno(err, -errno, "bind %s", addr);
            continue;
        }
        if (listen(fd, 512) < 0) {
            r = error_set_errno(err, -errno, "listen %s", addr);
            continue;
        }
        r = TAKE_FD(fd);
        break;
    }
    freeaddrinfo(res);
    return r;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    log_debug("http: %s", buf);
}

/* The router's request of one refused by its framing, which has its
 * answer queued: the rest of it goes unread. */
static char framing_refused;

static void *request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    http_pool_event(conn, HTTP_CONN_REQUEST_LINE);
    return NULL; /* the router makes its request at its first call */
}

static enum MHD_Result dispatch(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **req_cls)
{
    if (*req_cls == &framing_refused) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!*req_cls) {
        http_pool_event(conn, HTTP_CONN_HEAD);
        _cleanup_error_ struct error err = ERROR_INIT;
        if (http_framing_check(conn, version, &err) < 0) {
            /* The body cannot be told from the next request: answer, and close. */
            struct request r = {.conn = conn, .out = MEDIA_JSON};
            static const struct http_extra closing[] = {
                {.header = true, .name = MHD_HTTP_HEADER_CONNECTION, .value = "close"},
                {},
            };
            *req_cls = &framing_refused;
            return http_reply_error_extra(&r, &err, closing);
        }
    } else if (*upload_data_size == 0)
        http_pool_event(conn, HTTP_CONN_HANDLING);
    return http_dispatch(cls, conn, url, method, version, upload_data, upload_data_size, req_cls);
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    http_pool_event(conn, HTTP_CONN_DONE);
    if (*req_cls == &framing_refused)
        *req_cls = NULL;
    else
        http_completed(cls, conn, req_cls, toe);
}

/* An https listener's options for MHD_start_daemon (its key, certificate,
 * client CA and TLS_PRIORITIES); none, the array's end alone, for another
 * listener. MHD keeps the pointers: they are the config's, which outlives
 * the daemon. */
static void tls_options(const struct config_listener *l, struct MHD_OptionItem ret[static 5])
{
    size_t n = 0;
    if (config_listener_is_tls(l)) {
        ret[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, l->pem.key};
        ret[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, l->pem.cert};
        ret[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *) TLS_PRIORITIES};
        if (l->pem.client_ca)
            ret[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, l->pem.client_ca};
    }
    ret[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

int http_server_start(const struct http_ctx *ctx, struct http_server **ret, struct error *err)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->ctx = *ctx;
    const struct config *cfg = ctx->cfg;
    http_metrics_init();
    s->pool = http_pool_new(&(struct http_pool_limits){
        .served = cfg->http_connections,
        .followers = cfg->http_followers,
        .per_client = cfg->http_client_connections,
        .header_timeout = cfg->http_header_timeout,
        .body_timeout = cfg->http_body_timeout,
        .idle_timeout = cfg->http_timeout,
    });
    /* The pool decides who is served; MHD's own limit only backs it up,
     * with room for a connection that has left the pool and not yet MHD. */
    unsigned mhd_limit = 2 * (cfg->http_connections + cfg->http_followers);
    size_t n = cfg->n_listen;
    s->listeners = xcalloc(n, sizeof(struct http_listener));
    s->daemons = xcalloc(n, sizeof(struct MHD_Daemon *));
    s->fds = xcalloc(n, sizeof(int));
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        const struct config_listener *l = &ctx->cfg->listen[i];
        const char *addr = l->address;
        bool is_unix = startswith(addr, "unix:"), tls = config_listener_is_tls(l);
        if (tls && !l->pem.cert) {
            r = error_set(err, -EINVAL, "listen %s: its TLS files were not read", addr);
            break;
        }
        int fd = is_unix ? listen_unix(addr + 5, err)
                         : listen_tcp(tls ? addr + STRLEN("https://") : addr,
                                      l->unauthenticated != NULL, err);
        if (fd < 0) {
            r = fd;
            break;
        }
        s->listeners[s->n] = (struct http_listener){.ctx = &s->ctx,
                                                    .unauthenticated = l->unauthenticated,
                                                    .client_certs = l->pem.client_ca != NULL,
                                                    .metrics_public = l->metrics_public};
        struct MHD_OptionItem tls_opts[5];
        tls_options(l, tls_opts);
        if (is_unix)
            strv_push(&s->unix_paths, addr + 5);
        struct MHD_Daemon *d = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                (tls ? MHD_USE_TLS : 0),
            0, NULL, NULL, dispatch, &s->listeners[s->n], MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
            http_pool_notify, NULL, MHD_OPTION_URI_LOG_CALLBACK, request_line, NULL,
            MHD_OPTION_CONNECTION_LIMIT, mhd_limit, MHD_OPTION_CONNECTION_TIMEOUT,
            ctx->cfg->http_timeout, MHD_OPTION_THREAD_STACK_SIZE, (size_t) (1024 * 1024),
            MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
        if (!d) {
            (void) close(fd);
            r = error_set(err, -EIO, "cannot start the HTTP server on %s", addr);
            break;
        }
        s->fds[s->n] = fd;
        s->daemons[s->n++] = d;
        if (l->unauthenticated)
            log_warn("listening on %s WITHOUT authentication: every request without a token is "
                     "principal \"%s\", and any account on this host can connect",
                     addr, l->unauthenticated);
        else if (l->pem.client_ca)
            log_info("listening on %s (TLS; a client certificate from its client CA names the "
                     "principal)",
                     addr);
        else
            log_info("listening on %s%s", addr, tls ? " (TLS)" : "");
        if (l->metrics_public)
            log_info("listen %s: GET /metrics is answered without credentials (metrics: public)",
                     addr);
    }
    if (r >= 0)
        r = http_gate_start(s->fds, s->daemons, s->n, s->pool, cfg->http_header_timeout, &s->gate,
                            err);
    if (r < 0) {
        http_server_stop(s);
        return r;
    }
    *ret = s;
    return 0;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    /* The gate first: it hands connections to the daemons, and closes the
     * listening sockets. */
    if (s->gate)
        http_gate_stop(s->gate);
    else
        for (size_t i = 0; i < s->n; i++)
            (void) close(s->fds[i]);
    for (size_t i = 0; i < s->n; i++)
        MHD_stop_daemon(s->daemons[i]);
    http_pool_free(s->pool);
    STRV_FOREACH (p, s->unix_paths)
        (void) unlink(*p);
    strv_free(s->unix_paths);
    free(s->listeners);
    free(s->daemons);
    free(s->fds);
    free(s);
}
