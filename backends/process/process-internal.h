/*
 * process-internal: what the two halves of the daemon's process backend
 * share: process.c (the backend's slots) and process-shims.c (the
 * connections to the shims and the monitor thread that reads them).
 */
#pragma once

#include "backend.h"
#include "cgroup.h"

#include <pthread.h>

/* A task whose shim ended (killed from outside) before it wrote exit.json. */
#define SHIM_LOST_REASON                                                                           \
    "the task's shim ended without recording an outcome (see its system log: "                     \
    "logs?stream=system)"

/* One connection to a shim. */
struct shim_conn {
    pid_t pid;
    int fd;
    int protocol; /* what it speaks (shim.h), from its first message; -1 until then */
    bool child;   /* we spawned it: ours to reap */
    bool dead;    /* hung up; the monitor frees it */
    struct shim_conn *next;
};

struct ptask {
    char *id;
    char *task_dir;
    struct shim_conn *shim;
    bool cancel_requested;
    bool running; /* running() reported: an "R" after a reconnect is not news */
    struct ptask *next;
};

struct process_state {
    const struct config *cfg;
    struct backend_listener listener;
    struct cgroup parent;
    char *cgroup_error; /* why there are no cgroups (tasks are refused) */
    char *shim_path;
    char *shim_dir; /* <data_dir>/shims: the shims' sockets and log */
    int protocol;   /* SHIM_PROTOCOL, unless a test stands in for another release */

    pthread_mutex_t lock; /* tasks, shims, own, stop; sends to shims */
    struct ptask *tasks;
    struct shim_conn *shims;
    struct shim_conn *own; /* where new tasks go; NULL until needed, or after it died */
    int wake_fd;
    bool stop;
    pthread_t thread;
    bool thread_started;
};

struct ptask *ptask_free(struct ptask *t);
/* Under ps->lock: the task, on that shim's connection unless shim is NULL. */
struct ptask *ptask_find(struct process_state *ps, const char *id, struct shim_conn *shim);
/* Under ps->lock. */
void ptask_unlink(struct process_state *ps, struct ptask *t);

/* One message to a shim, with NULL or two fds to pass along (SCM_RIGHTS).
 * Under ps->lock. -EPIPE once it has hung up. */
int shim_conn_send(struct shim_conn *c, const char *text, const int fds[2]);
/* Under ps->lock: our live connection to the shim with that pid, or NULL. */
struct shim_conn *shim_conn_find(struct process_state *ps, pid_t pid);
/* Starts this daemon's shim (ps->own). */
int shim_conn_spawn(struct process_state *ps, struct error *err);
/* Connects to a shim an earlier daemon started, unless we already are,
 * and hands it t (unless NULL: ps->tasks takes it) with a "W" in the same
 * breath, so that the first thing the monitor hears from a new connection
 * finds t. -errno when it cannot be reached; t is then the caller's. */
int shim_conn_watch(struct process_state *ps, pid_t pid, struct ptask *t);
/* Sockets of shims killed from outside: nothing answers there any more. */
void shim_sockets_clean(const char *dir);

/* The monitor thread, and how to wake it when it should look again. */
void *process_monitor(void *userdata);
void process_wake(struct process_state *ps);
