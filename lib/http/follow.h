/*
 * follow: a task's output file as the body of a logs reply, read once (a
 * snapshot from an offset to the current end) or followed: streamed as
 * the task writes it, woken by inotify, until the task has ended
 * (supervisor_watch_end) or the client hangs up.
 *
 * A task must not be able to point the daemon at another file: output
 * files are opened without following symlinks, must be regular files,
 * and a file the task named must belong to the task's user.
 */
#pragma once

#include "supervisor.h"
#include "util/error.h"

#include <microhttpd.h>
#include <sys/types.h>

struct follow_spec {
    struct supervisor *sv;
    const char *id;   /* the task */
    const char *path; /* its output file; it may not exist yet */
    uid_t owner;      /* the uid the file must belong to; (uid_t) -1: the daemon's own file */
    long tail;        /* start this many lines before the end; -1: at the start */
    bool follow;      /* stream until the task has ended */
    int conn_fd;      /* the client's socket, watched for a hang-up while following */
};

/* A response that reads the file as spec says; the caller adds headers
 * and queues it. A file that does not exist yet is an empty snapshot, or
 * followed until it appears. Negative errno with err set when the file
 * may not be read (-EACCES) or cannot be opened. */
int follow_response(const struct follow_spec *spec, struct MHD_Response **ret, struct error *err);
