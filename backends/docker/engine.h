/*
 * engine: the Docker Engine API client: the REST client (rest/rest.h)
 * with what is Docker's own.
 *
 * Every path is prefixed with the API version: /v1.41 pinned, lowered to
 * the daemon's own when /_ping says it is older. Bodies are JSON (cJSON)
 * sent with Content-Type: application/json. A call returns the HTTP
 * status (>= 0) and, for 4xx/5xx, fills err with the daemon's "message"
 * (404 -ENOENT, 409 -EEXIST, 400 -EINVAL, else -EREMOTEIO); it returns
 * -EREMOTEIO when dockerd cannot be reached at all ("cannot reach dockerd
 * at SOCKET: why"), and -ECANCELED once an abort fd of the engine
 * (engine_add_abort_fd) or of the call is readable.
 *
 * Any thread may call at any time (each call takes a pooled handle of
 * its own), and a long call (wait, events, logs) never holds up a short
 * one. A group (below) lets one thread drive several long calls at once.
 */
#pragma once

#include "rest/rest.h"
#include "util/error.h"
#include "util/util.h"

#include <cjson/cJSON.h>

#define ENGINE_API_VERSION    "1.41"
#define ENGINE_DEFAULT_SOCKET "/var/run/docker.sock"

struct engine;

/* socket: a path, "unix:///path", or NULL for $DOCKER_HOST (unix:// only)
 * and then the default. Does not connect. */
int engine_new(const char *socket, struct engine **ret, struct error *err);
struct engine *engine_free(struct engine *e);
static inline void engine_freep(struct engine **e)
{
    engine_free(*e);
}
/* An fd every call of e watches (the backend's shutdown eventfd): once it
 * is readable, each call in flight, and every later one as soon as it has
 * to wait for dockerd, ends with -ECANCELED. Before the first call;
 * -EBUSY past REST_MAX_ABORT_FDS. */
int engine_add_abort_fd(struct engine *e, int fd);
const char *engine_socket(const struct engine *e);
/* "1.41", or the daemon's older version once engine_ping has run. */
const char *engine_api_version(const struct engine *e);

/* GET /_ping; negotiates the API version down. 0, -EREMOTEIO or -ECANCELED. */
int engine_ping(struct engine *e, struct error *err);

/* One request with a JSON body (or none) and a JSON reply (or none: 204,
 * empty, or not JSON). ret_json may be NULL. */
int engine_call(struct engine *e, const char *method, const char *path, const cJSON *body,
                cJSON **ret_json, struct error *err);

/* A request whose reply is a stream of JSON objects, one per line (pull
 * progress, events): line() is called for each complete line; a non-zero
 * return stops the stream (that value is returned). headers_done(), if
 * set, is called once the reply's headers have arrived, which for
 * wait?condition=next-exit proves the wait is registered. Any of the
 * n_abort_fds abort_fds (at most 4; -1 entries are skipped), as the
 * engine's own, stops the call when it becomes readable (-ECANCELED). */
struct engine_stream {
    int (*line)(void *userdata, const char *line, size_t len);
    void (*headers_done)(void *userdata, long status);
    void *userdata;
    const int *abort_fds;
    size_t n_abort_fds;
    const char *header; /* one extra request header ("X-Registry-Auth: ..."), or NULL */
};
int engine_stream(struct engine *e, const char *method, const char *path, const cJSON *body,
                  const struct engine_stream *s, struct error *err);

/* GET /containers/{id}/logs of a container without a TTY, demultiplexed:
 * stream 1 to out_fd, 2 to err_fd. With follow, returns once the
 * container has stopped (or abort_fd, if >= 0, became readable).
 * Returns the HTTP status; -EFBIG once more than 'limit' bytes (stdout and
 * stderr together; 0: no limit) came: the first 'limit' are written. */
int engine_logs(struct engine *e, const char *id, bool follow, int out_fd, int err_fd,
                uint64_t limit, int abort_fd, struct error *err);

/* The frame decoder behind engine_logs, exposed for tests: feed it
 * arbitrary slices of a multiplexed stream. */
struct engine_demux {
    int fds[3]; /* [1] stdout, [2] stderr; [0] unused */
    unsigned char header[8];
    size_t have;      /* header bytes collected */
    size_t left;      /* payload bytes left in the current frame */
    int stream;       /* of the current frame */
    int error;        /* a negative errno once a write failed; -EFBIG past the limit */
    uint64_t limit;   /* payload bytes written at most (0: no limit), set after init */
    uint64_t written; /* payload bytes written */
};
void engine_demux_init(struct engine_demux *d, int out_fd, int err_fd);
void engine_demux_feed(struct engine_demux *d, const char *buf, size_t len);

/*
 * A group: calls one thread drives together (rest.h's groups), so that a
 * task's wait and its logs need one thread, not two. Add calls with
 * engine_group_stream() (as engine_stream; its abort_fds are not used)
 * and engine_group_logs() (as engine_logs with follow), which return the
 * call's number (>= 0) or a negative errno; they may also be called from
 * a callback of a call of the same group (the call then starts when that
 * callback has returned). engine_group_run() runs them until one ends and
 * returns its number, with *ret_result and err as engine_stream or
 * engine_logs would have returned them; -ECANCELED when one of abort_fds
 * (up to 4, -1 ignored) or of the engine's became readable first (the
 * calls go on at the next run); -ENOENT when the group has no call left.
 * A group belongs to one thread at a time.
 */
struct engine_group;
struct engine_group *engine_group_new(struct engine *e);
/* Drops the calls still running. Accepts NULL. */
struct engine_group *engine_group_free(struct engine_group *g);
int engine_group_stream(struct engine_group *g, const char *method, const char *path,
                        const cJSON *body, const struct engine_stream *s, struct error *err);
int engine_group_logs(struct engine_group *g, const char *id, int out_fd, int err_fd,
                      uint64_t limit, struct error *err);
int engine_group_run(struct engine_group *g, const int *abort_fds, size_t n_abort_fds,
                     int *ret_result, struct error *err);
/* Drops call n, ended or not. */
void engine_group_cancel(struct engine_group *g, int n);
