/*
 * tes-stage-http: the http and https storage of tes-stage (tes-stage.h):
 * an input fetched with one GET through lib/rest (libcurl, opened on
 * first use), no redirect followed, no proxy, at most max_download bytes
 * (past them the fetch stops and the input fails), into a file the
 * task's account creates in the mapping; never from the daemon's own
 * listeners (own_listener). Read-only: an output to an http(s) URL has
 * no storage to write it.
 */
#include "rest/rest.h"
#include "tes-stage-internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>

struct dl {
    int fd;
    uint64_t n, max;
    long status;
    int write_error;
};

static void dl_headers(void *userdata, long status)
{
    struct dl *d = userdata;
    d->status = status;
}

/* Past the cap: the call stops, and says why with this value. */
#define DL_BAD_STATUS 1

static int dl_data(void *userdata, const char *buf, size_t len)
{
    struct dl *d = userdata;
    if (d->status < 200 || d->status >= 300)
        return DL_BAD_STATUS;
    if (d->n + len > d->max)
        return -EFBIG;
    int r = loop_write(d->fd, buf, len);
    if (r < 0)
        return r;
    d->n += len;
    return 0;
}

/* The port of a listener's address ("HOST:PORT", "[::1]:PORT",
 * "https://HOST:PORT"); 0 for a unix socket or what has none. */
static unsigned listener_port(const char *address)
{
    if (startswith(address, "unix:"))
        return 0;
    const char *colon = strrchr(address, ':');
    char *end;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    return colon && *end == '\0' && port < 65536 ? (unsigned) port : 0;
}

static bool is_loopback(const struct sockaddr *a)
{
    if (a->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *) a)->sin_addr.s_addr) >> 24) == 127;
    if (a->sa_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *) a)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
    }
    return false;
}

/*
 * The daemon's own listeners are not an input's server: an unauthenticated
 * one (loopback only) answers as its principal whoever asks, and an input
 * fetched from it would hand a client what that principal may read. So a
 * URL whose host is a loopback address (as resolved now) and whose port is
 * one a listener of the config uses is refused. (Another service on
 * loopback stays reachable, as it is to every local account.)
 */
static int own_listener(const struct tes_stage *s, const char *what, const char *url,
                        const char *authority, size_t alen, bool tls, struct error *err)
{
    /* [userinfo@]host[:port], host possibly [IPv6]. */
    const char *at = memchr(authority, '@', alen);
    if (at) {
        alen -= (size_t) (at + 1 - authority);
        authority = at + 1;
    }
    _cleanup_free_ char *host = NULL;
    const char *after;
    if (authority[0] == '[') {
        const char *close = memchr(authority, ']', alen);
        if (!close)
            return error_set(err, -EINVAL, "%s: %s: a bad IPv6 host", what, url);
        host = xstrndup(authority + 1, (size_t) (close - authority - 1));
        after = close + 1;
    } else {
        const char *colon = memchr(authority, ':', alen);
        host = xstrndup(authority, colon ? (size_t) (colon - authority) : alen);
        after = colon ? colon : authority + alen;
    }
    unsigned port = tls ? 443 : 80;
    if (after < authority + alen && *after == ':')
        port = (unsigned) strtoul(after + 1, NULL, 10);

    bool listened = false;
    const struct config *cfg = s->cfg;
    for (size_t i = 0; cfg && i < cfg->n_listen && !listened; i++)
        listened = listener_port(cfg->listen[i].address) == port;
    if (cfg && !cfg->listen)
        listened = listener_port(CONFIG_DEFAULT_LISTEN) == port;
    if (!listened)
        return 0;
    struct addrinfo *ai = NULL, hints = {.ai_socktype = SOCK_STREAM};
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        return 0; /* the fetch will say it cannot resolve it */
    bool loop = false;
    for (struct addrinfo *p = ai; p && !loop; p = p->ai_next)
        loop = is_loopback(p->ai_addr);
    freeaddrinfo(ai);
    if (loop)
        return error_set(err, -EACCES,
                         "%s: %s is this proxy's own listener, which is not fetched from", what,
                         url);
    return 0;
}

static int http_get(const struct tes_stage *s, const char *what, const char *url, const char *rel,
                    enum tes_file_type type, bool type_given, struct error *err)
{
    if (type_given && type == TES_DIRECTORY)
        return error_set(err, -EINVAL, "%s: a DIRECTORY cannot be fetched from %s", what, url);
    /* scheme://authority then the path and query; no fragment. */
    const char *auth = strstr(url, "://");
    if (!auth)
        return error_set(err, -EINVAL, "%s: %s is not a URL", what, url);
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0)
        return error_set(err, -EINVAL, "%s: %s names no host", what, url);
    int r = own_listener(s, what, url, auth, alen, startswith(url, "https:"), err);
    if (r < 0)
        return r;
    _cleanup_free_ char *base = xstrndup(url, (size_t) (auth - url) + alen);
    const char *rest_of = auth + alen;
    _cleanup_free_ char *path =
        xasprintf("%s%.*s", rest_of[0] == '/' ? "" : "/", (int) strcspn(rest_of, "#"), rest_of);

    struct rest *client = NULL;
    r = rest_new(&(struct rest_options){.name = "the input's server", .url = base}, &client, err);
    if (r < 0)
        return error_wrap(err, "%s", what);
    _cleanup_close_ int fd = stage_create_as(s, rel);
    if (fd < 0) {
        rest_free(client);
        return error_set_errno(err, fd, "%s: cannot create %s in the task", what, rel);
    }
    struct dl d = {.fd = fd, .max = s->max_download ? s->max_download : TES_STAGE_MAX_DOWNLOAD};
    struct rest_stream st = {.data = dl_data, .headers_done = dl_headers, .userdata = &d};
    r = rest_stream(client,
                    &(struct rest_request){.method = "GET",
                                           .path = path,
                                           .unprefixed = true,
                                           .abort_fds = s->abort_fds,
                                           .n_abort_fds = s->n_abort_fds},
                    &st, err);
    rest_free(client);
    if (r == -EFBIG) {
        char lim[32];
        return error_set(err, -EFBIG, "%s: %s is larger than %s, the most an input may fetch", what,
                         url, format_size_human(d.max, lim));
    }
    if (r == DL_BAD_STATUS || (r >= 300 && r < 1000) || (r >= 0 && r < 200))
        return error_set(err, -EREMOTEIO, "%s: GET %s: HTTP %ld", what, url,
                         d.status ? d.status : (long) r);
    if (r == -ECANCELED)
        return error_set(err, r, "%s: fetch given up", what);
    if (r < 0)
        return error_wrap(err, "%s: GET %s", what, url);
    return 0;
}

const struct tes_storage tes_storage_http = {.scheme = "http", .get = http_get};
const struct tes_storage tes_storage_https = {.scheme = "https", .get = http_get};
