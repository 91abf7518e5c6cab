/*
 * http: the REST layer on libmicrohttpd.
 *
 * server.c opens the listening sockets (HOST:PORT or unix:/path) and runs
 * one MHD daemon per socket, a thread per connection (handlers may block:
 * a submit waits for its group commit, a log follow waits for output).
 * router.c matches {method, path} in one table, answers 404/405/406/413/
 * 415 itself, negotiates the reply format from Accept, collects the body
 * up to the configured cap and turns every error into the one error
 * shape. handlers.c holds the endpoints; follow.c reads a task's output
 * for the logs endpoint.
 */
#pragma once

#include "config.h"
#include "store.h"
#include "supervisor.h"

#include <microhttpd.h>
#include <sys/types.h>

struct http_server;

struct http_ctx {
    const struct config *cfg;
    struct store *store;
    struct supervisor *sv;
};

/* Opens every address in cfg->listen and starts serving. */
int http_server_start(const struct http_ctx *ctx, struct http_server **ret, struct error *err);
/* Stops accepting, waits for open connections, frees. Accepts NULL. */
void http_server_stop(struct http_server *s);

/* ---- inside the HTTP layer ---- */

enum media {
    MEDIA_JSON = 1 << 0,
    MEDIA_XML = 1 << 1,
    MEDIA_TEXT = 1 << 2,
    MEDIA_YAML = 1 << 3,
};

struct request {
    struct MHD_Connection *conn;
    const struct http_ctx *ctx;
    const struct route *route;
    const char *param;    /* the {id} of the path, inside url */
    enum media out;       /* the negotiated reply format */
    bool peer_restricted; /* a unix-socket peer that is not root */
    uid_t peer_uid;
    char *body;
    size_t len, alloc;
    bool too_large;
};

typedef enum MHD_Result (*http_handler)(struct request *r);

struct route {
    const char *method;
    const char *path; /* a trailing "*" matches one path segment: the id */
    http_handler handler;
    unsigned
        offers; /* enum media bits; the first set bit in JSON, XML, TEXT order is the default */
    bool body;  /* takes a request body */
};

extern const struct route http_routes[];

/* openapi/ocps-proxy.yaml and its JSON form, built in (openapi/embed.py). */
extern const char openapi_yaml[], openapi_json[];
extern const size_t openapi_yaml_len, openapi_json_len;

/* Replies. Each takes ownership of what it is given and returns MHD's result. */
enum MHD_Result http_reply_json(struct request *r, unsigned status, cJSON *body,
                                const char *xml_root);
enum MHD_Result http_reply_text(struct request *r, unsigned status, const char *content_type,
                                char *text, size_t len);
/* The one error shape: {"code": status, "message": "..."} (XML when asked for). */
enum MHD_Result http_reply_error(struct request *r, const struct error *err);
enum MHD_Result http_reply_status(struct request *r, unsigned status, const char *fmt, ...)
    _printf_(3, 4);
/* A reply built by the caller: headers added, queued, destroyed. */
enum MHD_Result http_queue(struct request *r, unsigned status, struct MHD_Response *resp);

/* cJSON to the XML form (arrays as repeated elements, env/tags as entries). */
char *http_json_to_xml(const cJSON *j, const char *root);

/* The MHD access handler and completion callback (router.c). */
enum MHD_Result http_dispatch(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls);
void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                    enum MHD_RequestTerminationCode toe);
