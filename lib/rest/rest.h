/*
 * rest: a client of a JSON-over-HTTP service on a unix socket or on TCP
 * (libcurl), shared by the backends that drive a daemon's REST API: the
 * Docker backend's Engine API client (backends/docker/engine.c) today,
 * a Slurm backend's slurmrestd client next. What is particular to one
 * service (API versions, its environment variables, its error classes)
 * stays with its backend; this is the HTTP part.
 *
 * A client names the service (for the words of its errors), where it
 * listens (a unix socket path, with http://localhost URLs, or
 * http://HOST:PORT), a path prefix put before every path ("/v1.41"),
 * request headers sent with every call, and abort fds watched by every
 * call: an fd that becomes readable (a shutdown eventfd) ends whatever
 * call is in flight with -ECANCELED, however long the service takes.
 *
 * A client holds no curl handle: each call takes one of its own (from a
 * pool of idle ones whose connections stay open), so any thread may call
 * at any time, and a long call (a stream) never holds up a short one. A
 * group (below) lets one thread drive several long calls at once.
 *
 * libcurl is opened on the first call, not when the daemon starts
 * (util/dlopen.h): a daemon that never calls maps none of it.
 */
#pragma once

#include "util/error.h"
#include "util/util.h"

#include <cjson/cJSON.h>

#define REST_MAX_ABORT_FDS 4           /* a client's; and a call's */
#define REST_MAX_REPLY     (64U << 20) /* a reply kept whole (not streamed) */
#define REST_CALL_TIMEOUT  300L        /* seconds, for a call that is not a stream */
#define REST_GROUP_MAX     8           /* calls in one group */

struct rest;

struct rest_options {
    /* The service, in the words of errors: "cannot reach NAME at WHERE: why". */
    const char *name;
    /* Exactly one: an absolute unix socket path, or "http://HOST:PORT" (or https://). */
    const char *socket;
    const char *url;
    /* Put before every path unless the request is unprefixed ("/v1.41"); NULL for none. */
    const char *prefix;
    /* The (negative) errno of an HTTP error status (>= 400); NULL: -EREMOTEIO for all. */
    int (*status_errno)(long status);
};

/* A client; connects on its first call. -EINVAL for options that name no
 * absolute socket path or http:// URL (or both). */
int rest_new(const struct rest_options *o, struct rest **ret, struct error *err);
/* Accepts NULL. Calls still in flight must have ended. */
struct rest *rest_free(struct rest *r);
static inline void rest_freep(struct rest **r)
{
    rest_free(*r);
}

/* A header sent with every call ("X-SLURM-USER-NAME: alice"). Before the
 * first call: the client is not locked. */
void rest_add_header(struct rest *r, const char *header);
/* An fd every call of this client watches besides its own: once it is
 * readable (an eventfd written and never read, say) each call in flight,
 * and every later one as soon as it has to wait for the service, ends
 * with -ECANCELED. Before the first call. -EBUSY past REST_MAX_ABORT_FDS. */
int rest_add_abort_fd(struct rest *r, int fd);
/* Replaces the path prefix (a version negotiated with the service); calls
 * set up after it use the new one. Thread-safe. */
void rest_set_prefix(struct rest *r, const char *prefix);
/* The socket path or the URL, as given. */
const char *rest_where(const struct rest *r);

/* One request. Only method and path are required. */
struct rest_request {
    const char *method; /* "GET", "POST", "DELETE", ... */
    const char *path;   /* and query; also what errors name */
    bool unprefixed;    /* no client prefix before path (a version probe) */
    const cJSON *body;  /* sent as application/json; NULL: none */
    const char *header; /* one more request header ("X-Registry-Auth: ..."), or NULL */
    /* More request headers, NULL-terminated, or NULL (slurmrestd's user
     * name and token, which change per call). */
    const char *const *headers;
    /* Watched with the client's (-1 entries skipped); not used in a group. */
    const int *abort_fds;
    size_t n_abort_fds;
    /* A reply header to keep: its value (trimmed, cut to the size) goes to
     * reply_value, which is left alone when the reply has no such header. */
    const char *reply_header;
    char *reply_value;
    size_t reply_value_size;
    /* With ret_json: a reply >= 400 is parsed into *ret_json too (what
     * slurmrestd says in its "errors" array: codes to tell apart). */
    bool error_json;
};

/*
 * A call with a JSON reply (REST_CALL_TIMEOUT at most). Returns the HTTP
 * status (>= 0); for a status >= 400, err holds the reply's "message" (or
 * the first of its "errors", slurmrestd's {"description", "error"}, or
 * "METHOD PATH: HTTP n") with the code status_errno gives; below 400 and
 * with ret_json, *ret_json is the parsed reply, or NULL when it is empty
 * or not JSON. A negative errno when there is no status: -ECANCELED when
 * an abort fd became readable, -EREMOTEIO when the service cannot be
 * reached or the reply broke off or is larger than REST_MAX_REPLY.
 */
int rest_call(struct rest *r, const struct rest_request *q, cJSON **ret_json, struct error *err);

/* How a stream's reply is handed over as it arrives: line() once per
 * complete line (without its "\r\n"; empty lines skipped), or data() with
 * each piece of the body as it is. A non-zero return stops the call and
 * is what it returns. headers_done(), if set, is called once the reply's
 * headers are in (with the status): for a call the service answers only
 * when something happens, that says the service has registered it. With
 * neither line nor data the body is kept as rest_call keeps it. */
struct rest_stream {
    int (*line)(void *userdata, const char *line, size_t len);
    int (*data)(void *userdata, const char *buf, size_t len);
    void (*headers_done)(void *userdata, long status);
    void *userdata;
};

/* A call without a time limit whose reply is handed over as it arrives.
 * Returns as rest_call, or the non-zero value line() or data() stopped it
 * with (err untouched). For a status >= 400, what line() has not taken
 * makes the message. */
int rest_stream(struct rest *r, const struct rest_request *q, const struct rest_stream *s,
                struct error *err);

/*
 * A group: streams one thread drives together (libcurl's multi
 * interface), so that, say, a container's wait and its logs need one
 * thread, not two. rest_group_add() adds a stream (as rest_stream; the
 * request's abort_fds are not used) and returns its number (>= 0) or a
 * negative errno; it may also be called from a callback of a call of the
 * same group (the call then starts when that callback has returned).
 * rest_group_run() runs the calls until one ends and returns its number,
 * with *ret_result and err as rest_stream would have returned them;
 * -ECANCELED when one of the client's abort fds or of abort_fds (up to
 * REST_MAX_ABORT_FDS, -1 ignored) became readable first (the calls go on
 * at the next run); -ENOENT when the group has no call left. A group
 * belongs to one thread at a time.
 */
struct rest_group;
struct rest_group *rest_group_new(struct rest *r);
/* Drops the calls still running. Accepts NULL. */
struct rest_group *rest_group_free(struct rest_group *g);
int rest_group_add(struct rest_group *g, const struct rest_request *q, const struct rest_stream *s,
                   struct error *err);
int rest_group_run(struct rest_group *g, const int *abort_fds, size_t n_abort_fds, int *ret_result,
                   struct error *err);
/* Drops call n, ended or not. */
void rest_group_cancel(struct rest_group *g, int n);

/* URL-encodes s into a new string (query parameters, names in paths). */
char *rest_escape(const char *s);
