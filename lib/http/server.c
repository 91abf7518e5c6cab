/*
 * server: listening sockets and the MHD daemons behind them. We open the
 * sockets ourselves so that one code path serves IPv4, IPv6 and unix
 * sockets alike, and accept on them ourselves (gate.c), handing each
 * connection to the socket's daemon, which runs without a listening
 * socket of its own. Every connection is counted in one pool (pool.c),
 * which MHD's callbacks here keep up to date: when a request's line, its
 * head and its body are in, and when its answer is sent. An https://
 * listener's daemon runs TLS (MHD_USE_TLS) with the files
 * config_read_tls() read at start (tls.h). Under socket activation the
 * sockets a .socket unit passed are matched to the config's listeners by
 * address and served as they are, never bound a second time.
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

/* The socket addresses of a listener's HOST:PORT or [IPv6]:PORT, in
 * *ret (freeaddrinfo). */
static int resolve_tcp(const char *addr, struct addrinfo **ret, struct error *err)
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
    int g = getaddrinfo(isempty(host) ? NULL : host, port, &hints, ret);
    if (g != 0)
        return error_set(err, -EINVAL, "listen %s: %s", addr, gai_strerror(g));
    return 0;
}

/* A TCP listening socket on addr; with loopback_only, one that any
 * address but a loopback one refuses (-EPERM). */
/* An unauthenticated listener's address, bound here or passed by the
 * service manager: loopback only, or -EPERM naming it. */
static int require_loopback(const char *addr, const struct sockaddr *sa, socklen_t len,
                            struct error *err)
{
    if (is_loopback(sa))
        return 0;
    char host_text[INET6_ADDRSTRLEN] = "?";
    (void) getnameinfo(sa, len, host_text, sizeof(host_text), NULL, 0, NI_NUMERICHOST);
    return error_set(err, -EPERM,
                     "listen %s: an unauthenticated listener must be on a loopback address "
                     "(127.0.0.0/8 or ::1), not %s",
                     addr, host_text);
}

static int listen_tcp(const char *addr, bool loopback_only, struct error *err)
{
    struct addrinfo *res = NULL;
    int r = resolve_tcp(addr, &res, err);
    if (r < 0)
        return r;
    r = -EINVAL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (loopback_only && (r = require_loopback(addr, ai->ai_addr, ai->ai_addrlen, err)) < 0)
            break;
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

/* ---- sockets the service manager passed (socket activation) ---- */

struct inherited {
    int fd;
    struct sockaddr_storage addr; /* getsockname()'s */
    socklen_t len;
    bool used;
};

/* Reads what each passed fd is: a listening stream socket, or -EINVAL. */
static int inherited_read(const int *fds, size_t n, struct inherited **ret, struct error *err)
{
    _cleanup_free_ struct inherited *v = xcalloc(MAX(n, 1), sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        int type = 0, listening = 0;
        socklen_t l1 = sizeof(type), l2 = sizeof(listening);
        v[i] = (struct inherited){.fd = fds[i], .len = sizeof(v[i].addr)};
        if (getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &l1) < 0 ||
            getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &listening, &l2) < 0 ||
            getsockname(fds[i], (struct sockaddr *) &v[i].addr, &v[i].len) < 0)
            return error_set_errno(err, -errno, "socket activation: fd %d", fds[i]);
        int family = v[i].addr.ss_family;
        if (type != SOCK_STREAM || !listening ||
            (family != AF_INET && family != AF_INET6 && family != AF_UNIX))
            return error_set(err, -EINVAL,
                             "socket activation: fd %d is not a listening stream socket (use "
                             "ListenStream= in the .socket unit)",
                             fds[i]);
    }
    *ret = TAKE_PTR(v);
    return 0;
}

static bool sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *) a, *y = (const void *) b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *) a, *y = (const void *) b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

/* A passed unix socket's path, in ret; NULL when it has none (unnamed, abstract). */
static const char *inherited_path(const struct inherited *in, char ret[static 109])
{
    const struct sockaddr_un *un = (const void *) &in->addr;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    if (un->sun_family != AF_UNIX || in->len <= off || !un->sun_path[0])
        return NULL;
    size_t plen = strnlen(un->sun_path, MIN((size_t) in->len - off, sizeof(un->sun_path)));
    memcpy(ret, un->sun_path, plen);
    ret[plen] = '\0';
    return ret;
}

/* The passed socket, not yet used, bound where the listener's address
 * says: its index, or -1. */
static int inherited_find(struct inherited *v, size_t n, const char *address)
{
    const char *addr = startswith(address, "https://") ? address + STRLEN("https://") : address;
    char path[109];
    if (startswith(addr, "unix:")) {
        for (size_t i = 0; i < n; i++) {
            const char *p = inherited_path(&v[i], path);
            if (!v[i].used && p && streq(p, addr + 5))
                return (int) i;
        }
        return -1;
    }
    _cleanup_error_ struct error ignored = ERROR_INIT;
    struct addrinfo *res = NULL;
    if (resolve_tcp(addr, &res, &ignored) < 0)
        return -1; /* listen_tcp() will say what is wrong with it */
    int found = -1;
    for (struct addrinfo *ai = res; ai && found < 0; ai = ai->ai_next)
        for (size_t i = 0; i < n && found < 0; i++)
            if (!v[i].used && sockaddr_equal(ai->ai_addr, (const struct sockaddr *) &v[i].addr))
                found = (int) i;
    freeaddrinfo(res);
    return found;
}

/* A passed socket's address as a listener's ("HOST:PORT", "[::1]:PORT", "unix:/path"). */
static char *inherited_address(const struct inherited *in)
{
    char host[INET6_ADDRSTRLEN] = "?", port[16] = "?", path[109];
    if (in->addr.ss_family == AF_UNIX) {
        const char *p = inherited_path(in, path);
        return p ? xasprintf("unix:%s", p) : xstrdup("unix:(unnamed)");
    }
    (void) getnameinfo((const struct sockaddr *) &in->addr, in->len, host, sizeof(host), port,
                       sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
    return in->addr.ss_family == AF_INET6 ? xasprintf("[%s]:%s", host, port)
                                          : xasprintf("%s:%s", host, port);
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

/* Starts the MHD daemon of listening socket fd, with listener l's
 * settings (NULL: a passed socket no listener names, served with tokens
 * and without TLS). fd is the server's from here on, closed on failure. */
static int serve(struct http_server *s, int fd, const struct config_listener *l,
                 const char *address, struct error *err)
{
    const struct config *cfg = s->ctx.cfg;
    /* The pool decides who is served; MHD's own limit only backs it up,
     * with room for a connection that has left the pool and not yet MHD. */
    unsigned mhd_limit = 2 * (cfg->http_connections + cfg->http_followers);
    bool tls = l && config_listener_is_tls(l);
    s->listeners[s->n] = (struct http_listener){
        .ctx = &s->ctx,
        .unauthenticated = l ? l->unauthenticated : NULL,
        .client_certs = l && l->pem.client_ca != NULL,
        .metrics_public = l && l->metrics_public,
    };
    struct MHD_OptionItem tls_opts[5] = {{MHD_OPTION_END, 0, NULL}};
    if (l)
        tls_options(l, tls_opts);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0),
        0, NULL, NULL, dispatch, &s->listeners[s->n], MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
        http_pool_notify, NULL, MHD_OPTION_URI_LOG_CALLBACK, request_line, NULL,
        MHD_OPTION_CONNECTION_LIMIT, mhd_limit, MHD_OPTION_CONNECTION_TIMEOUT, cfg->http_timeout,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t) (1024 * 1024), MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    if (!d) {
        (void) close(fd);
        return error_set(err, -EIO, "cannot start the HTTP server on %s", address);
    }
    s->fds[s->n] = fd;
    s->daemons[s->n++] = d;
    return 0;
}

static void log_listener(const struct config_listener *l, bool inherited)
{
    const char *how = inherited ? ", passed by the service manager" : "";
    if (l->unauthenticated)
        log_warn("listening on %s%s WITHOUT authentication: every request without a token is "
                 "principal \"%s\", and any account on this host can connect",
                 l->address, how, l->unauthenticated);
    else if (l->pem.client_ca)
        log_info("listening on %s%s (TLS; a client certificate from its client CA names the "
                 "principal)",
                 l->address, how);
    else
        log_info("listening on %s%s%s", l->address, how, config_listener_is_tls(l) ? " (TLS)" : "");
    if (l->metrics_public)
        log_info("listen %s: GET /metrics is answered without credentials (metrics: public)",
                 l->address);
}

int http_server_start(const struct http_ctx *ctx, struct http_server **ret, struct error *err)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->ctx = *ctx;
    s->ctx.inherited_fds = NULL;
    s->ctx.n_inherited = 0;
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
    size_t n_inh = ctx->n_inherited;
    size_t n = cfg->n_listen + n_inh;
    s->listeners = xcalloc(MAX(n, 1), sizeof(struct http_listener));
    s->daemons = xcalloc(MAX(n, 1), sizeof(struct MHD_Daemon *));
    s->fds = xcalloc(MAX(n, 1), sizeof(int));
    _cleanup_free_ struct inherited *inh = NULL;
    int r = inherited_read(ctx->inherited_fds, n_inh, &inh, err);
    for (size_t i = 0; r >= 0 && i < cfg->n_listen; i++) {
        const struct config_listener *l = &cfg->listen[i];
        const char *addr = l->address;
        bool is_unix = startswith(addr, "unix:"), tls = config_listener_is_tls(l);
        if (tls && !l->pem.cert) {
            r = error_set(err, -EINVAL, "listen %s: its TLS files were not read", addr);
            break;
        }
        /* Socket activation: a socket already bound here is the one to
         * serve; binding it again would fail, or steal the address. */
        int k = inherited_find(inh, n_inh, addr);
        int fd;
        if (k >= 0) {
            inh[k].used = true;
            fd = inh[k].fd;
            if (l->unauthenticated && !is_unix &&
                (r = require_loopback(addr, (const struct sockaddr *) &inh[k].addr, inh[k].len,
                                      err)) < 0)
                break;
        } else
            fd = is_unix ? listen_unix(addr + 5, err)
                         : listen_tcp(tls ? addr + STRLEN("https://") : addr,
                                      l->unauthenticated != NULL, err);
        if (fd < 0) {
            r = fd;
            break;
        }
        /* Only a path we bound is ours to remove: the service manager's
         * stays for the next start. */
        if (is_unix && k < 0)
            strv_push(&s->unix_paths, addr + 5);
        r = serve(s, fd, l, addr, err);
        if (r >= 0)
            log_listener(l, k >= 0);
    }
    for (size_t i = 0; r >= 0 && i < n_inh; i++) {
        if (inh[i].used)
            continue;
        inh[i].used = true;
        _cleanup_free_ char *addr = inherited_address(&inh[i]);
        r = serve(s, inh[i].fd, NULL, addr, err);
        if (r >= 0)
            log_info("listening on %s, passed by the service manager and not in the config's "
                     "listen: served as given (%s)",
                     addr,
                     inh[i].addr.ss_family == AF_UNIX ? "the peer's uid names the caller"
                                                      : "requests need a token");
    }
    if (r >= 0)
        r = http_gate_start(s->fds, s->daemons, s->n, s->pool, cfg->http_header_timeout, &s->gate,
                            err);
    if (r < 0) {
        /* Passed sockets not handed to a daemon are still ours to close. */
        for (size_t i = 0; i < n_inh; i++)
            if (!inh || !inh[i].used)
                (void) close(ctx->inherited_fds[i]);
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
