/*
 * follow: a task's output file as the body of a logs reply, read once (a
 * snapshot from an offset to the current end) or followed: streamed as
 * the task writes it, woken by inotify, until the task has ended
 * (supervisor_watch_end) or the client hangs up.
 *
 * A task must not be able to point the daemon at another file, and root
 * never opens a path a client named: the daemon's own files (in the
 * task's directory) are opened without following symlinks and must be
 * regular files; a file the task named is opened as the task's user
 * (fsuid, fsgid and groups: util/as-user.h), also without following a
 * symlink at its end, and must be a regular file. Whether such a path is
 * missing or forbidden is not told apart: either is "not there (yet)" -
 * an empty snapshot, or followed until it can be read - while the task is
 * active, and -ENOENT with the same words once it has ended.
 */
#pragma once

#include "supervisor.h"
#include "util/as-user.h"
#include "util/error.h"

#include <microhttpd.h>
#include <sys/types.h>

struct follow_spec {
    struct supervisor *sv;
    const char *id;              /* the task */
    const char *path;            /* its output file; it may not exist yet */
    bool task_path;              /* the task named it: read as its user, below */
    const struct user_ids *user; /* that user; NULL: as the daemon (which runs every task
                                  * as itself when it is not root) */
    bool no_account;             /* the user has no account here: nobody reads the path */
    long tail;                   /* start this many lines before the end; -1: at the start */
    bool follow;                 /* stream until the task has ended */
    int conn_fd;                 /* the client's socket, watched for a hang-up while following */
};

/* A response that reads the file as spec says; the caller adds headers
 * and queues it. A file that does not exist yet is an empty snapshot, or
 * followed until it appears. Negative errno with err set when the file
 * may not be read (-EACCES: a daemon's file that is not a regular one;
 * -ENOENT: a task's own path it cannot read, once the task has ended) or
 * cannot be opened. */
int follow_response(const struct follow_spec *spec, struct MHD_Response **ret, struct error *err);
