/*
 * http: the REST layer on libmicrohttpd.
 *
 * server.c opens the listening sockets (HOST:PORT, https://HOST:PORT with
 * TLS, or unix:/path) and runs one MHD daemon per socket, a thread per
 * connection (handlers may block: a submit waits for its group commit, a
 * log follow waits for output). gate.c accepts the connections and checks
 * each request head for the faults libmicrohttpd 0.9.75 answers wrongly
 * or not at all and for ambiguous framing, before handing the connection
 * to its daemon. pool.c counts the connections per client and per share
 * (served, log followers) and cuts a request that is past its deadline.
 * router.c matches {method, path} in one table, answers
 * 404/405/406/413/415 itself, finds who calls (a bearer token, a client
 * certificate (tls.h), the unix peer's uid, or the listener's principal;
 * 401 with WWW-Authenticate otherwise), negotiates the reply format from
 * Accept and collects the body up to the configured cap. reply.c builds
 * every reply, and every error reply in one shape. handlers.c holds the
 * JobProxy endpoints, tes-handlers.c those of GA4GH TES; follow.c
 * reads a task's output for the logs endpoint; observe.c the operator's
 * endpoints (/metrics, /healthz, /readyz) and the count of requests by
 * route and status.
 */
#pragma once

#include "config.h"
#include "principal.h"
#include "store.h"
#include "supervisor.h"
#include "tokens.h"
#include "util/timeutil.h"

#include <microhttpd.h>
#include <sys/types.h>

#define HTTP_SERVER_NAME "ocps-proxyd/" OCPS_VERSION

/*
 * A request body the daemon will not keep (over max_body, or sent to a
 * route that takes none) is still read, and dropped, so that a client
 * that writes its whole body before it reads the answer (most HTTP
 * libraries) gets the answer rather than a reset: nginx's lingering
 * close. Bounded so that a hostile client cannot hold a thread: at most
 * HTTP_LINGER_BYTES past max_body, HTTP_LINGER_TIME seconds in all and
 * HTTP_LINGER_IDLE seconds between reads (nginx's lingering_time and
 * lingering_timeout); past a bound the connection is closed, and the
 * client may see a reset. The gate lingers the same way after its 400s.
 */
#define HTTP_LINGER_BYTES ((uint64_t) 16 << 20)
#define HTTP_LINGER_TIME  30
#define HTTP_LINGER_IDLE  5

/* The Retry-After of a 503 (a full pool, a client at its cap), seconds. */
#define HTTP_RETRY_AFTER "1"

struct http_server;

struct http_ctx {
    const struct config *cfg;
    struct store *store;
    struct supervisor *sv;
    struct tokens *tokens; /* bearer tokens (tokens.h) */
    /* Listening sockets the service manager passed (socket activation,
     * systemd_listen_fds()): http_server_start() owns them from its call. */
    int *inherited_fds;
    size_t n_inherited;
};

/* Opens every listener in cfg->listen and starts serving. An
 * unauthenticated listener on an address that is not loopback is -EPERM,
 * naming it. A listener whose address is that of an inherited socket
 * (ctx->inherited_fds) is served on that socket, never bound again; an
 * inherited socket no listener names is served as given (tokens on TCP,
 * the peer's uid on a unix socket) and logged so. An inherited unix
 * socket's path is the service manager's: never unlinked. -EINVAL for an
 * inherited fd that is not a listening stream socket. */
int http_server_start(const struct http_ctx *ctx, struct http_server **ret, struct error *err);
/* Stops accepting, waits for open connections, frees. Accepts NULL. */
void http_server_stop(struct http_server *s);

/* ---- inside the HTTP layer ---- */

/* The longest "GET, POST, ..." list http_route_find() writes. */
#define HTTP_ALLOW_MAX 64

enum media {
    MEDIA_JSON = 1 << 0,
    MEDIA_XML = 1 << 1,
    MEDIA_TEXT = 1 << 2,
    MEDIA_YAML = 1 << 3,
};

/* A listening socket's own: what the router needs to know of it. */
struct http_listener {
    const struct http_ctx *ctx;
    const char *unauthenticated; /* config_listener's: principal of requests without credentials */
    bool client_certs;   /* https with a client CA: every request's certificate is checked */
    bool metrics_public; /* GET /metrics without credentials (config.h) */
};

struct request {
    struct MHD_Connection *conn;
    const struct http_ctx *ctx;
    const struct route *route; /* NULL when refused for want of one */
    const char *param;         /* the {id} of the path, inside url */
    enum media out;            /* the negotiated reply format */
    bool unix_peer;            /* on a unix socket: peer_uid is the caller's */
    uid_t peer_uid;
    /* Who calls (principal.h), set before the handler runs; NULL only on
     * an open route called without credentials (router.c). */
    struct principal *principal;
    /* The socket it came in on (its unauthenticated principal), and
     * whether it carried a bearer token, valid or not (for the 401). */
    const struct http_listener *listener;
    bool bearer_sent;
    char *body;
    size_t len, alloc;
    uint64_t received;          /* body bytes read, kept or not */
    usec_t dropping;            /* when the first dropped body byte came; 0: none yet */
    struct error refused;       /* the answer instead of the handler's, when set */
    char allow[HTTP_ALLOW_MAX]; /* the methods of the path, for a 405 */
    usec_t started;             /* monotonic: its head came (the metrics' latency) */
    unsigned status;            /* of the reply queued; 0: none (yet) */
};

typedef enum MHD_Result (*http_handler)(struct request *r);

struct route {
    const char *method;
    const char *path; /* a trailing "*" matches one path segment: the id */
    http_handler handler;
    unsigned
        offers; /* enum media bits; the first set bit in JSON, XML, TEXT order is the default */
    bool body;  /* takes a request body */
    /* Answered without credentials: liveness and the API's contract, which
     * tell nothing about tasks (credentials sent are checked all the same). */
    bool open;
    /* The metrics: without credentials on a listener with metrics: public,
     * elsewhere for an admin principal only. */
    bool metrics;
};

extern const struct route http_routes[];

/* ---- the operator's endpoints and the request metrics (observe.c) ---- */

enum MHD_Result http_metrics(struct request *r);
enum MHD_Result http_healthz(struct request *r);
enum MHD_Result http_readyz(struct request *r);
/* Registers the HTTP layer's metrics (http_server_start). */
void http_metrics_init(void);
/* A request ends (http_completed): counted by route and status, its
 * time observed. Requests that got no reply are not counted. */
void http_metrics_request(const struct request *r);

/* ---- GA4GH TES 1.1 under /ga4gh/tes/v1 (tes-handlers.c, tes.h) ---- */

enum MHD_Result http_tes_service_info(struct request *r);
enum MHD_Result http_tes_list(struct request *r);
enum MHD_Result http_tes_get(struct request *r);
enum MHD_Result http_tes_create(struct request *r);
enum MHD_Result http_tes_cancel(struct request *r);

/* openapi/ocps-proxy.yaml and its JSON form, built in (openapi/embed.py). */
extern const char openapi_yaml[], openapi_json[];
extern const size_t openapi_yaml_len, openapi_json_len;

/* ---- routing (router.c): pure functions, unit-tested without a daemon ---- */

/* Whether url matches pattern; a trailing "*" in pattern matches one
 * non-empty path segment, returned in *ret_param (else NULL). */
bool http_path_match(const char *pattern, const char *url, const char **ret_param);

/* Finds the route for method and url in routes (ending with an empty
 * entry); HEAD is served by a GET route. Returns 0 with *ret_route and
 * *ret_param set; -ENOENT when no route has this path; -EBADRQC when
 * routes have the path but not the method, their methods listed in
 * ret_allow. */
int http_route_find(const struct route *routes, const char *method, const char *url,
                    const struct route **ret_route, const char **ret_param,
                    char ret_allow[static HTTP_ALLOW_MAX]);

/* The reply format for an Accept header among offers (enum media bits):
 * the highest q, then the most specific range that matches (a full type
 * over a type with any subtype over any type at all), then JSON, XML,
 * TEXT, YAML order. The first offered when accept is empty or NULL; 0
 * when nothing offered is acceptable. */
enum media http_negotiate(const char *accept, unsigned offers);

/* A Content-Length value (len bytes of s): digits only. -EINVAL for
 * anything else, -E2BIG past 2^64 - 1, with err naming the value. */
int http_content_length(const char *s, size_t len, uint64_t *ret, struct error *err);

/* Checks a request head (the request line and header fields, len bytes
 * of buf as they arrived so far) for the faults libmicrohttpd 0.9.75
 * mishandles: a one-word request line (dropped without an answer) and a
 * Content-Length that is not a number, too large or folded (answered
 * with its headers twice); and for framing two readers could read two
 * ways (request smuggling): Content-Length given twice with different
 * values, Content-Length with Transfer-Encoding, a Transfer-Encoding
 * other than chunked, given twice, folded or in an HTTP/1.0 request,
 * blanks between a field's name and its colon, a NUL or a bare CR.
 * Returns 1 when the head is complete and has none of them, 0 when it is
 * not complete yet and has none so far, or the error (-EINVAL 400,
 * -E2BIG 413) with err naming the fault. */
int http_head_check(const char *buf, size_t len, struct error *err);

/* Whether the head in buf asks to follow a task's log (GET
 * /v1/jobproxy/logs/ID?follow=1 or true): such a connection takes a
 * follower's share of the pool, not a served one. */
bool http_head_follows(const char *buf, size_t len);

/* The framing of a request MHD has parsed (a kept-alive connection's
 * later requests, which the gate does not see): -EINVAL naming the fault
 * for Content-Length fields that differ, Content-Length with
 * Transfer-Encoding, a Transfer-Encoding other than chunked or given
 * twice, or one in an HTTP/1.0 request; else 0. */
int http_framing_check(struct MHD_Connection *conn, const char *version, struct error *err);

/* ---- the connection pool (pool.c) ---- */

/* Every connection the daemon holds is counted: per client (a TCP peer's
 * address, an IPv6 peer's /64, a unix-socket peer's uid) and in one share
 * of the pool: waiting at the gate for its head, served by MHD, or
 * following a log. A share or a client at its cap is refused (-EAGAIN,
 * 503) with err naming the cap. Each request has a deadline: its head
 * within header_timeout of its start (the accept, or on a kept-alive
 * connection its request line, which must come within idle_timeout of
 * the previous answer), its body within body_timeout of its head. A
 * connection past its deadline is shut down. Timeouts are seconds, 0
 * for none. Thread-safe. */
struct http_pool_limits {
    unsigned served;     /* connections served at once, log followers not counted */
    unsigned followers;  /* connections following a log at once */
    unsigned per_client; /* one client's connections */
    unsigned header_timeout;
    unsigned body_timeout;
    unsigned idle_timeout;
};

struct http_pool;
struct http_conn; /* one connection, from its accept to its close */

struct http_pool *http_pool_new(const struct http_pool_limits *limits);
/* Once the daemons have stopped. Accepts NULL. */
void http_pool_free(struct http_pool *p);

/* A connection accepted on fd from addr, waiting for its head: its
 * record in *ret, or -EAGAIN when its client holds per_client
 * connections or as many as 'served' are waiting already. */
int http_pool_open(struct http_pool *p, int fd, const struct sockaddr *addr, socklen_t addrlen,
                   struct http_conn **ret, struct error *err);
/* Its head is whole: it takes a served share, or a follower's. -EAGAIN
 * when that share is full (the connection still waits; close it). */
int http_pool_serve(struct http_conn *c, bool follower, struct error *err);
/* Leaves the pool: a connection the gate closes or refuses, or one MHD
 * would not take. The record is freed once nothing holds it. Accepts NULL. */
void http_pool_close(struct http_conn *c);
/* Holding a record across a call that may close it (MHD_add_connection). */
struct http_conn *http_conn_ref(struct http_conn *c);
void http_conn_unref(struct http_conn *c);

/* Shuts down every served connection past its deadline. Returns when to
 * look again (INT64_MAX: nothing is served). */
usec_t http_pool_sweep(struct http_pool *p, usec_t now);

/* The connection on fd starts following a log: it takes a follower's
 * share if it held a served one (-EAGAIN when the followers are at their
 * cap). *ret is held until http_pool_unfollow(); NULL when fd is no
 * connection of a pool (nothing to count). */
int http_pool_follow(int fd, struct http_conn **ret, struct error *err);
void http_pool_unfollow(struct http_conn *c);

/* MHD's callbacks (server.c registers them): NOTIFY_CONNECTION ties MHD's
 * connection to its record; the events move its deadline. */
void http_pool_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);
enum http_conn_event {
    HTTP_CONN_REQUEST_LINE, /* a request line is in: its head's deadline */
    HTTP_CONN_HEAD,         /* the head is whole: the body's deadline */
    HTTP_CONN_HANDLING,     /* the body is in, the handler answers: no deadline */
    HTTP_CONN_DONE,         /* the answer is sent: the next request's deadline */
};
void http_pool_event(struct MHD_Connection *conn, enum http_conn_event ev);

/* ---- the gate (gate.c) ---- */

struct http_gate;

/* Accepts on the n listening sockets fds (taken, closed at stop), counts
 * each connection in pool, and hands each connection whose head passes
 * http_head_check() to daemons[i] with MHD_add_connection(); answers the
 * others itself (400, or 503 when the pool refuses). */
int http_gate_start(const int *fds, struct MHD_Daemon *const *daemons, size_t n,
                    struct http_pool *pool, unsigned header_timeout, struct http_gate **ret,
                    struct error *err);
/* Stops the gate and closes the listening sockets and waiting connections.
 * Accepts NULL. */
void http_gate_stop(struct http_gate *g);

/* ---- replies (reply.c) ---- */

/* Something a reply carries besides its body: a header (Allow, Location)
 * or, on an error reply, a field of the body ("id"). Arrays of them end
 * with an empty element. */
struct http_extra {
    bool header; /* a reply header; else a field of the error body */
    const char *name;
    const char *value;
};

/* A reply built by the caller: the common headers added, queued, destroyed. */
enum MHD_Result http_queue(struct request *r, unsigned status, struct MHD_Response *resp);
/* text (taken) as the body, with its content type and the headers among
 * extra (NULL or ending with {}). Returns MHD's result. */
enum MHD_Result http_reply(struct request *r, unsigned status, const char *content_type, char *text,
                           size_t len, const struct http_extra *extra);
static inline enum MHD_Result http_reply_text(struct request *r, unsigned status,
                                              const char *content_type, char *text, size_t len)
{
    return http_reply(r, status, content_type, text, len, NULL);
}
/* body (taken) in the negotiated format: XML under xml_root, else JSON. */
enum MHD_Result http_reply_json(struct request *r, unsigned status, cJSON *body,
                                const char *xml_root);
/* The one error reply, for the router and every handler: the status from
 * error_http_status(err->code), the body {"code": status, "message": ...}
 * plus the fields among extra (XML when the client asked for it, else
 * JSON), and the headers among extra. Logs 5xx. */
enum MHD_Result http_reply_error_extra(struct request *r, const struct error *err,
                                       const struct http_extra *extra);
static inline enum MHD_Result http_reply_error(struct request *r, const struct error *err)
{
    return http_reply_error_extra(r, err, NULL);
}

/* body (taken) as text in format out (XML under xml_root, else JSON with a
 * final newline); its content type in *ret_type. */
char *http_format(enum media out, cJSON *body, const char *xml_root, const char **ret_type);
/* A submit refused before anything was stored: 429 with Retry-After
 * (QUOTA_RETRY_AFTER, quota.h says why) for a quota, else the error's
 * status; the JobProxy and TES creates alike. */
enum MHD_Result http_reply_refused(struct request *r, const struct error *err);

/* The error body http_reply_error_extra() sends, as a cJSON object. */
cJSON *http_error_json(const struct error *err, const struct http_extra *extra);

/* cJSON to the XML form (arrays as repeated elements, env/tags as entries). */
char *http_json_to_xml(const cJSON *j, const char *root);

/*
 * The one audit line of a submit, cancel or delete, accepted or refused,
 * and of a request refused at authentication (audit.c), logged whatever
 * log_level says:
 *   audit action=submit principal=ci-bot via=token address=127.0.0.1:40312
 *         user=ci task=<id> outcome=accepted
 *   audit action=submit principal=alice via=unix uid=1001 user=bob task=-
 *         outcome=refused status=403 reason="user: principal alice may ..."
 *   audit action=authenticate principal=- via=- address=127.0.0.1:40313
 *         user=- task=- outcome=refused status=401 reason="..." request="POST /v1/..."
 * user and task are "-" when the request did not get as far as naming
 * them. Values that are not plain words are quoted, with \" \\ and \xNN
 * for control bytes, so that no value forges another key or line. Other
 * refusals of the router (404, 405, 413) have no line: they named no task
 * and no account, and they are no one's attempt at someone else's.
 */
void http_audit(struct request *r, const char *action, const char *user, const char *id,
                const char *outcome, const struct error *err);
/* A value as key=value takes it in an audit line: bare when it is a plain
 * word, else in double quotes with \" \\ and \xNN for control bytes, so
 * that no value (a hostile reason, a path) can forge another key or line. */
void http_audit_value(FILE *f, const char *v);

/* The list endpoints' query parameters, read alike by JobProxy's and
 * TES's (router.c). ?NAME=N, an integer from 1 to max, into *ret (left as
 * it is when absent); 400 naming NAME otherwise. */
int http_query_count(struct request *r, const char *name, size_t max, size_t *ret,
                     struct error *err);
/* ?page_token=s<seq> as a list page gave it: the seq the next page
 * continues after, into *ret (left as it is when absent or empty). */
int http_query_page_token(struct request *r, int64_t *ret, struct error *err);

/* The MHD access handler and completion callback (router.c). */
enum MHD_Result http_dispatch(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls);
void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                    enum MHD_RequestTerminationCode toe);
