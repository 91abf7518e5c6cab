/*
 * router: the route table's dispatcher. Everything a handler should not
 * have to think about happens here, once: 404 and 405 (with Allow), 406
 * from Accept, who calls (authenticate: the principal from a client
 * certificate, a token, the unix peer or the listener, or 401 with
 * WWW-Authenticate), 413 from Content-Length or the collected body, and
 * the body itself. Every error goes out through http_reply_error_extra().
 */
#include "http.h"
#include "tls.h"

#include <ctype.h>
#include <sys/socket.h>

/* ---- matching ---- */

bool http_path_match(const char *pattern, const char *url, const char **ret_param)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*') {
        if (strncmp(pattern, url, n - 1) != 0)
            return false;
        const char *p = url + n - 1;
        if (!*p || strchr(p, '/'))
            return false;
        *ret_param = p;
        return true;
    }
    *ret_param = NULL;
    return streq(pattern, url);
}

int http_route_find(const struct route *routes, const char *method, const char *url,
                    const struct route **ret_route, const char **ret_param,
                    char ret_allow[static HTTP_ALLOW_MAX])
{
    const char *m = streq(method, "HEAD") ? "GET" : method;
    bool path_known = false;
    size_t allow_len = 0;
    ret_allow[0] = '\0';
    for (const struct route *rt = routes; rt->method; rt++) {
        const char *param;
        if (!http_path_match(rt->path, url, &param))
            continue;
        if (streq(rt->method, m)) {
            *ret_route = rt;
            *ret_param = param;
            return 0;
        }
        path_known = true;
        int w = snprintf(ret_allow + allow_len, HTTP_ALLOW_MAX - allow_len, "%s%s",
                         allow_len ? ", " : "", rt->method);
        if (w > 0)
            allow_len = MIN(allow_len + (size_t) w, HTTP_ALLOW_MAX - 1);
    }
    return path_known ? -EBADRQC : -ENOENT;
}

/* ---- Accept ---- */

static bool range_matches(const char *range, const char *type)
{
    if (streq(range, "*/*"))
        return true;
    size_t n = strlen(range);
    if (n >= 2 && streq(range + n - 2, "/*"))
        return strncasecmp(range, type, n - 1) == 0;
    return strcaseeq(range, type);
}

enum media http_negotiate(const char *accept, unsigned offers)
{
    static const struct {
        enum media m;
        const char *types[3];
    } known[] = {
        {MEDIA_JSON, {"application/json", NULL}},
        {MEDIA_XML, {"application/xml", "text/xml", NULL}},
        {MEDIA_TEXT, {"text/plain", NULL}},
        {MEDIA_YAML, {"application/yaml", "application/x-yaml", "text/yaml"}},
    };
    enum media first = 0;
    for (size_t i = 0; i < ELEMENTSOF(known); i++)
        if (offers & known[i].m) {
            first = known[i].m;
            break;
        }
    if (isempty(accept))
        return first;

    double best_q = 0;
    int best_spec = -1;
    enum media best = 0;
    for (size_t k = 0; k < ELEMENTSOF(known); k++) {
        if (!(offers & known[k].m))
            continue;
        /* The q of the most specific range matching any of this format's types. */
        double q = -1;
        int spec = -1;
        const char *p = accept;
        while (*p) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t) (end - p) : strlen(p);
            char item[128];
            snprintf(item, sizeof(item), "%.*s", (int) MIN(len, sizeof(item) - 1), p);
            p = end ? end + 1 : p + len;

            char *semi = strchr(item, ';');
            double iq = 1;
            if (semi) {
                *semi = '\0';
                for (char *a = semi + 1; a && *a;) {
                    while (isspace((unsigned char) *a))
                        a++;
                    if ((a[0] == 'q' || a[0] == 'Q') && a[1] == '=')
                        iq = strtod(a + 2, NULL);
                    a = strchr(a, ';');
                    if (a)
                        a++;
                }
            }
            char *t = item;
            while (isspace((unsigned char) *t))
                t++;
            for (char *e = t + strlen(t); e > t && isspace((unsigned char) e[-1]);)
                *--e = '\0';
            int s = streq(t, "*/*") ? 0 : (strchr(t, '*') ? 1 : 2);
            for (size_t i = 0; i < ELEMENTSOF(known[k].types) && known[k].types[i]; i++)
                if (range_matches(t, known[k].types[i]) && s > spec) {
                    spec = s;
                    q = iq;
                }
        }
        if (q > best_q || (q == best_q && q > 0 && spec > best_spec)) {
            best_q = q;
            best_spec = spec;
            best = known[k].m;
        }
    }
    return best_q > 0 ? best : 0;
}

/* ---- the body ---- */

/* Reads one piece of the body: kept while the request is not refused and
 * the body is under the cap, dropped otherwise, within the linger bounds
 * (http.h). Returns MHD_NO past a bound: MHD then closes the connection. */
int http_query_count(struct request *r, const char *name, size_t max, size_t *ret,
                     struct error *err)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 1 || (unsigned long) n > max)
        return error_set(err, -EINVAL, "%s: must be an integer from 1 to %zu, not \"%s\"", name,
                         max, v);
    *ret = (size_t) n;
    return 0;
}

int http_query_page_token(struct request *r, int64_t *ret, struct error *err)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "page_token");
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    long long seq = v[0] == 's' ? strtoll(v + 1, &end, 10) : -1;
    if (seq < 0 || errno || *end || end == v + 1)
        return error_set(err, -EINVAL, "page_token: \"%s\" is not a token this server gave", v);
    *ret = seq;
    return 0;
}

static enum MHD_Result take_body(struct request *r, const char *data, size_t n)
{
    size_t max = r->ctx->cfg->max_body;
    r->received += n;
    bool keep = !r->refused.code && r->route->body;
    if (keep && r->received > max) {
        error_set(&r->refused, -E2BIG, "request body is over the limit of %zu bytes", max);
        free(r->body);
        r->body = NULL;
        r->len = r->alloc = 0;
        keep = false;
    }
    if (keep) {
        r->body = xgrow(r->body, &r->alloc, r->len + n + 1, 1);
        memcpy(r->body + r->len, data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    /* Dropped (HTTP allows a body on a route that takes none), and read on
     * so that the client sees our answer (http.h: lingering). */
    usec_t now = now_monotonic();
    if (!r->dropping) {
        unsigned idle = r->ctx->cfg->http_timeout;
        r->dropping = now;
        if (idle == 0 || idle > HTTP_LINGER_IDLE)
            idle = HTTP_LINGER_IDLE;
        (void) MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, idle);
    }
    if (r->received > max + HTTP_LINGER_BYTES ||
        now - r->dropping > HTTP_LINGER_TIME * USEC_PER_SEC)
        return MHD_NO;
    return MHD_YES;
}

/* ---- dispatch ---- */

static struct request *request_new(struct MHD_Connection *conn, const struct http_listener *l)
{
    struct request *r = xcalloc(1, sizeof(*r));
    r->conn = conn;
    r->ctx = l->ctx;
    r->listener = l;
    r->out = MEDIA_JSON;
    r->started = now_monotonic();
    /* Peer credentials matter on unix sockets only; MHD kept the peer's
     * address from accept(), so TCP requests cost no extra syscall. */
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ai && ai->client_addr && ai->client_addr->sa_family == AF_UNIX && ci) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        r->unix_peer = true;
        /* Fail closed: a peer whose credentials cannot be read is nobody's. */
        r->peer_uid = getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0
                          ? cred.uid
                          : (uid_t) -1;
    }
    return r;
}

/* The error in r->refused, with Allow on a 405 and WWW-Authenticate on a
 * 401 (RFC 6750: invalid_token when a token was sent, no error when none
 * was); Connection: close after a body was read and dropped, as a client
 * that sent what we would not take is not kept for another request. */
static enum MHD_Result reply_refused(struct request *r, bool close)
{
    struct http_extra extra[3] = {};
    size_t n = 0;
    if (r->refused.code == -EBADRQC)
        extra[n++] =
            (struct http_extra){.header = true, .name = MHD_HTTP_HEADER_ALLOW, .value = r->allow};
    if (r->refused.code == -ENOKEY)
        extra[n++] = (struct http_extra){
            .header = true,
            .name = MHD_HTTP_HEADER_WWW_AUTHENTICATE,
            .value = r->bearer_sent ? "Bearer realm=\"ocps-proxy\", error=\"invalid_token\""
                                    : "Bearer realm=\"ocps-proxy\""};
    if (close)
        extra[n++] = (struct http_extra){
            .header = true, .name = MHD_HTTP_HEADER_CONNECTION, .value = "close"};
    return http_reply_error_extra(r, &r->refused, extra);
}

/* The token of an Authorization header: "Bearer", then the token (the
 * scheme's case does not matter, RFC 7235). NULL for another scheme. */
static const char *bearer_token(const char *auth)
{
    if (strncasecmp(auth, "Bearer", 6) != 0 || (auth[6] != ' ' && auth[6] != '\t'))
        return NULL;
    auth += 7;
    while (*auth == ' ' || *auth == '\t')
        auth++;
    return auth;
}

/*
 * Who calls: r->principal, or an error (the request is refused).
 *
 *   - On a listener with a client CA (mTLS), first of all, the client
 *     certificate: a request whose connection presented none, or one that
 *     does not verify or names no principal, is 401 (tls.h), whatever else
 *     it carries and on every route.
 *   - A request with an Authorization header is its token's principal,
 *     on any listener, the unix socket and an mTLS listener included (a
 *     client that sends a token asks to be that token's principal: a
 *     gateway holding one certificate may send its users' tokens); a
 *     header that is not a valid bearer token is 401, never a fall back
 *     to another way.
 *   - Without one: a verified client certificate is the principal its CN
 *     names; a unix-socket peer is its account (SO_PEERCRED); a request on
 *     an unauthenticated listener is that listener's principal; on an open
 *     route (ping, the API's contract) nobody (NULL); anything else is 401.
 */
static int authenticate(struct request *r, struct error *err)
{
    const struct policy_set *ps = &r->ctx->cfg->policy;
    _cleanup_free_ char *cert_name = NULL;
    if (r->listener->client_certs) {
        const union MHD_ConnectionInfo *ti =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        int q = tls_client_name(ti ? ti->tls_session : NULL, &cert_name, err);
        if (q < 0)
            return q;
    }
    const char *auth =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth) {
        const char *token = bearer_token(auth);
        if (!token)
            return error_set(err, -ENOKEY, "the Authorization header must be \"Bearer <token>\"");
        r->bearer_sent = true;
        _cleanup_free_ char *name = NULL;
        bool admin;
        int q = tokens_check(r->ctx->tokens, token, now_realtime(), &name, &admin, err);
        if (q < 0)
            return q;
        r->principal = principal_new(ps, name, PRINCIPAL_TOKEN, admin);
        return 0;
    }
    if (cert_name) {
        r->principal = principal_new(ps, cert_name, PRINCIPAL_CERT, false);
        return 0;
    }
    if (r->unix_peer) {
        if (r->peer_uid == (uid_t) -1)
            return error_set(err, -EACCES, "the caller's credentials cannot be read");
        return principal_new_unix(ps, r->peer_uid, &r->principal, err);
    }
    if (r->listener->unauthenticated) {
        r->principal = principal_new(ps, r->listener->unauthenticated, PRINCIPAL_LISTENER, false);
        return 0;
    }
    if (r->route->open || (r->route->metrics && r->listener->metrics_public))
        return 0;
    return error_set(err, -ENOKEY,
                     "authentication required: send \"Authorization: Bearer <token>\" "
                     "(ocps-proxyd token create makes one)");
}

/* Why the request is refused before any handler runs, or 0: the route,
 * the reply format, a declared body size (length, from the
 * Content-Length cl) over the cap. Sets r->refused. */
static int check(struct request *r, const char *url, const char *method, const char *cl,
                 uint64_t length)
{
    const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
    int q = http_route_find(http_routes, method, url, &r->route, &r->param, r->allow);
    if (q < 0) {
        r->out = http_negotiate(accept, MEDIA_JSON | MEDIA_XML);
        if (q == -ENOENT)
            return error_set(&r->refused, q, "no such endpoint: %s %s", method, url);
        return error_set(&r->refused, q, "method %s not allowed on %s; allowed: %s", method, url,
                         r->allow);
    }
    r->out = http_negotiate(accept, r->route->offers);
    if (!r->out)
        return error_set(&r->refused, -ENOMSG,
                         "cannot answer in any type the Accept header names (%s)", accept);
    int a = authenticate(r, &r->refused);
    if (a < 0) {
        http_audit(r, "authenticate", NULL, NULL, "refused", &r->refused);
        return a;
    }
    /* The metrics hold no task, but how busy the host is, and who is
     * refused why, is an operator's to know. */
    if (r->route->metrics && !r->listener->metrics_public && !(r->principal && r->principal->admin))
        return error_set(&r->refused, -EACCES,
                         "the metrics are for an admin principal, or on a listener with "
                         "metrics: public");
    if (r->route->body && length > r->ctx->cfg->max_body)
        return error_set(&r->refused, -E2BIG,
                         "request body of %s bytes is over the limit of %zu bytes", cl,
                         r->ctx->cfg->max_body);
    return 0;
}

/* Once the head has arrived. A refused request with a body on its way is
 * answered once that body is read and dropped (take_body), so that a
 * client that writes it all before it reads sees the answer; at once
 * when there is no body, when the client waits to be told before it
 * sends one (Expect: 100-continue), or when it announces more than we
 * would read. */
static enum MHD_Result start(struct request *r, const char *url, const char *method)
{
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t length = 0;
    /* MHD and the gate have checked it: this cannot fail. */
    if (cl && http_content_length(cl, strlen(cl), &length, &r->refused) < 0)
        return reply_refused(r, false);
    if (check(r, url, method, cl, length) >= 0)
        return MHD_YES;
    const char *expect = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Expect");
    bool body = length > 0 || MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                          MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (!body || (expect && strcaseeq(expect, "100-continue")) ||
        length > r->ctx->cfg->max_body + HTTP_LINGER_BYTES)
        return reply_refused(r, false);
    return MHD_YES;
}

enum MHD_Result http_dispatch(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    struct request *r = *req_cls;
    if (!r) {
        *req_cls = r = request_new(conn, cls);
        return start(r, url, method);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return take_body(r, upload_data, n);
    }
    if (r->refused.code)
        return reply_refused(r, true);
    return r->route->handler(r);
}

void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct request *r = *req_cls;
    if (!r)
        return;
    http_metrics_request(r);
    error_clear(&r->refused);
    principal_free(r->principal);
    free(r->body);
    free(r);
    *req_cls = NULL;
}
