/*
 * auth: which credentials the client sends, found once per run (under a
 * lock: `submit --follow` streams from two threads). The bearer token:
 *
 *   1. --token TOKEN or --token-file FILE (not both);
 *   2. $OCPS_PROXY_TOKEN;
 *   3. for an http(s) server on this host (a loopback address), the
 *      daemon's admin token file, <data dir>/admin.token with the data
 *      dir $OCPS_PROXY_DATA_DIR or /var/lib/ocps-proxy, when that file is
 *      the caller's own and no one else may read it (root's, for a daemon
 *      run as root): the quick start needs no flag. A file that someone
 *      else could have put there is not trusted: its token would make the
 *      caller's tasks someone else's. Not with --cert: a token sent wins
 *      over the certificate (the daemon's rule), and a fallback the
 *      caller did not ask for must not make the certificate's requests
 *      the admin's.
 *
 * The client certificate (--cert, --key) and the CAs the server's must
 * chain to (--cacert) are for an https:// server; client.c hands them to
 * libcurl, this file checks that they make sense and can be read.
 *
 * On a unix socket only 1 and 2 apply: there the caller's uid already
 * names it. A token sent over plain http to a host that is not loopback
 * crosses the network readable by anyone on the way: the client says so
 * on stderr (and sends it: the operator chose the address), once a run.
 */
#include "cli.h"
#include "config.h"
#include "layout.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool resolved;
static int result;  /* 0, or the exit code of a failure */
static char *token; /* NULL: none */

/* Whether s can go into a header: printable ASCII without spaces. */
static bool token_sendable(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 0x7f)
            return false;
    return true;
}

/* The host of an http:// or https:// URL, into buf. */
static const char *url_host(const char *url, char *buf, size_t size)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t) (at + 1 - p);
        p = at + 1;
    }
    if (*p == '[') {
        const char *end = memchr(p, ']', n);
        n = end ? (size_t) (end - p - 1) : 0;
        p++;
    } else {
        const char *colon = memchr(p, ':', n);
        if (colon)
            n = (size_t) (colon - p);
    }
    snprintf(buf, size, "%.*s", (int) MIN(n, size - 1), p);
    return buf;
}

bool cli_url_is_loopback(const char *url)
{
    char host[256];
    url_host(url, host, sizeof(host));
    struct in_addr a4;
    struct in6_addr a6;
    if (strcaseeq(host, "localhost"))
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

/* A token file's token, trailing whitespace removed. With 'own', only a
 * regular file of the caller's own that no one else may read or write;
 * NULL for any other (quietly: it is only a fallback). */
static int read_token_file(const char *path, bool own, char **ret)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (own ? O_NOFOLLOW : 0));
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (own && (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)))
        return -EPERM;
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = read_fd(fd, 4096, &text, &len);
    if (r < 0)
        return r;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                       text[len - 1] == '\t'))
        text[--len] = '\0';
    if (strlen(text) != len || !token_sendable(text))
        return -EBADMSG;
    *ret = TAKE_PTR(text);
    return 0;
}

/* --cacert, --cert and --key: for an https server, and files we can read. */
static int check_tls_options(const struct cli *c)
{
    if (!c->cacert && !c->cert && !c->key)
        return 0;
    if (!startswith(c->server, "https://"))
        return usage_error(NULL, "--cacert, --cert and --key are for an https:// server, not %s",
                           c->server);
    if (c->key && !c->cert)
        return usage_error(NULL, "--key is the key of a --cert: give --cert too");
    const struct {
        const char *name, *path;
    } files[] = {{"--cacert", c->cacert}, {"--cert", c->cert}, {"--key", c->key}};
    for (size_t i = 0; i < ELEMENTSOF(files); i++)
        if (files[i].path && access(files[i].path, R_OK) < 0)
            return usage_error(NULL, "%s %s: %s", files[i].name, files[i].path, strerror(errno));
    return 0;
}

static int resolve(const struct cli *c)
{
    const char *env = getenv("OCPS_PROXY_TOKEN");
    int e = check_tls_options(c);
    if (e != 0)
        return e;
    if (c->token) {
        if (!token_sendable(c->token))
            return usage_error(NULL, "--token: a token is printable characters without spaces");
        token = xstrdup(c->token);
    } else if (c->token_file) {
        int r = read_token_file(c->token_file, false, &token);
        if (r == -EBADMSG)
            return usage_error(NULL, "--token-file %s: holds no token (one line, no spaces)",
                               c->token_file);
        if (r < 0)
            return usage_error(NULL, "--token-file %s: %s", c->token_file, strerror(-r));
    } else if (env && *env) {
        if (!token_sendable(env))
            return usage_error(NULL, "$OCPS_PROXY_TOKEN: a token is printable characters "
                                     "without spaces");
        token = xstrdup(env);
    } else if (!c->cert && !startswith(c->server, "unix:") && cli_url_is_loopback(c->server)) {
        const char *dir = getenv("OCPS_PROXY_DATA_DIR");
        _cleanup_free_ char *path = layout_admin_token(dir && *dir ? dir : CONFIG_DEFAULT_DATA_DIR);
        (void) read_token_file(path, true, &token);
    }
    if (token && startswith(c->server, "http://") && !cli_url_is_loopback(c->server)) {
        char host[256];
        fprintf(stderr,
                "ocps-proxy: warning: the token goes to %s over plain http, readable on the "
                "way: anyone who sees it acts as its principal (use https)\n",
                url_host(c->server, host, sizeof(host)));
    }
    return 0;
}

int cli_token(const struct cli *c, const char **ret)
{
    pthread_mutex_lock(&lock);
    if (!resolved) {
        result = resolve(c);
        resolved = true;
    }
    int r = result;
    *ret = token;
    pthread_mutex_unlock(&lock);
    return r;
}
