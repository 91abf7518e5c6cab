/*
 * backend: the interface every way of running a task implements.
 *
 * A backend is a struct of function pointers (struct backend_ops) plus an
 * opaque state pointer, as redis's ConnectionType and crun's handlers.
 * Required slots: name, init, free, handles, check, start, cancel,
 * recover. Optional slots (callers test for NULL): release, ready,
 * describe, output_path.
 * remote: the backend runs tasks off this host, in a scheduler with its
 * own queue (Slurm): the host's capacity does not apply to its tasks
 * (admission starts them at once), its principals' quotas do.
 *
 * Threads: the supervisor calls every slot from its own thread, one call
 * at a time. A backend watches its tasks however it likes (its own
 * thread, pidfds, an event stream) and reports back through the
 * listener, whose callbacks are safe to call from any thread and copy
 * what they are given.
 *
 * Life of a task in a backend:
 *   check()   at submit time; cheap, no side effects. Refuses what this
 *             backend will never run: -EACCES (403) for a refused user,
 *             -EINVAL (400) for an unknown account or a bad field.
 *   start()   the supervisor has admitted the task (state INITIALIZING).
 *             Returns quickly; later the listener hears running() once
 *             the command runs and ended() exactly once when it is over.
 *             A failure to start that is the task's fault (command not
 *             found, bad workdir) is reported through ended() as
 *             EXECUTOR_ERROR; start() itself fails only when the backend
 *             cannot try (-EREMOTEIO and friends: SYSTEM_ERROR).
 *             The task's walltime counts from its admission (s->admitted),
 *             not from its command's start: a task blocked on the way (a
 *             stdout FIFO nobody reads, a hung mount, an image pull) is
 *             ended by it all the same ("killed: walltime limit ...").
 *             Past s->output_limit bytes of stdout plus stderr the task is
 *             killed and ends "killed: output limit ... exceeded". The
 *             default output files (not named by the task) belong to the
 *             task's user; the task's own paths are opened as its user
 *             (fsuid, fsgid and groups), never as root.
 *   cancel()  asynchronous: SIGTERM to the whole tree, SIGKILL after the
 *             grace period; ended() then reports CANCELED with the
 *             reason "cancelled by request". -ENOENT for a task whose
 *             ended() has already been called (a cancel racing the
 *             task's own end): the supervisor then keeps that outcome.
 *   recover() after a daemon restart, for every task the store says was
 *             INITIALIZING, RUNNING or CANCELING: reattach and report as
 *             usual. A task that ended while the daemon was away is
 *             reported through ended() with its real outcome. Returns
 *             -ENOENT when the task provably never started (the
 *             supervisor then starts it: nothing runs twice).
 *   release() optional: drop what is left (cgroup, container) once the
 *             outcome is on disk in the store. Called by the supervisor
 *             thread: it must not block on anything slow.
 *   ready()   optional: whether the backend can run tasks now (GET
 *             /readyz): 0, or an error naming what it cannot reach (the
 *             Docker daemon). Called by HTTP threads, at any time, beside
 *             the supervisor's calls: it must be thread-safe and bounded.
 *             A backend without it is ready whenever the daemon runs.
 *   describe() optional: why a task the backend reported queued() waits
 *             ("queued in Slurm: Resources"), or NULL. Allocated. HTTP
 *             threads, at any time: thread-safe and bounded.
 *   output_path() optional: where a task that names no stdout (stderr)
 *             file has it, when not <task_dir>/stdout: a directory the
 *             nodes of a cluster see (name LAYOUT_STDOUT or LAYOUT_STDERR).
 *             Called at submit, by HTTP threads: pure, thread-safe.
 *             Allocated. The logs endpoint reads such a file as the
 *             task's user, as one the task named.
 */
#pragma once

#include "config.h"
#include "outcome.h"
#include "task.h"
#include "util/timeutil.h"

struct backend_listener {
    void (*running)(void *userdata, const char *id, usec_t started);
    void (*ended)(void *userdata, const char *id, const struct task_outcome *o);
    void *userdata;
    /* Optional (a backend tests for NULL): a started task waits in the
     * backend's own queue (a Slurm job PENDING). It is reported QUEUED,
     * described by the backend's describe(), until running() or ended(). */
    void (*queued)(void *userdata, const char *id);
};

/* What the supervisor hands a backend to start (or recover) a task. */
struct backend_start {
    const char *id;
    const struct task *task; /* validated, defaults applied: cores > 0, memory > 0 */
    const char *task_dir;    /* <data_dir>/tasks/<id>, exists, mode 0700, owned by the daemon */
    const char *stdout_path; /* task->stdout_path, or <task_dir>/stdout */
    const char *stderr_path;
    const char *port_address; /* host address of its port bindings (its principal's policy);
                                 NULL: the config's */
    usec_t admitted;          /* CLOCK_REALTIME when the supervisor started it; 0: now (recover:
                               * unknown, the backend's own record of its start counts) */
    uint64_t output_limit; /* bytes of stdout plus stderr (the principal's max.output); 0: none */
};

struct backend_ops {
    const char *name;
    bool remote;
    int (*init)(const struct config *cfg, const struct backend_listener *l, void **ret_state,
                struct error *err);
    void (*free)(void *state);
    bool (*handles)(const struct task *t);
    int (*check)(void *state, const struct task *t, struct error *err);
    int (*start)(void *state, const struct backend_start *s, char **ret_handle, struct error *err);
    int (*cancel)(void *state, const char *id, const char *handle, struct error *err);
    int (*recover)(void *state, const struct backend_start *s, const char *handle,
                   struct error *err);
    void (*release)(void *state, const char *id, const char *handle);
    int (*ready)(void *state, struct error *err);
    char *(*describe)(void *state, const char *id);
    char *(*output_path)(void *state, const char *id, const char *name);
};

struct backend {
    const struct backend_ops *ops;
    void *state;
};

static inline int backend_check(struct backend *b, const struct task *t, struct error *err)
{
    return b->ops->check(b->state, t, err);
}
static inline int backend_start(struct backend *b, const struct backend_start *s, char **ret_handle,
                                struct error *err)
{
    return b->ops->start(b->state, s, ret_handle, err);
}
static inline int backend_cancel(struct backend *b, const char *id, const char *handle,
                                 struct error *err)
{
    return b->ops->cancel(b->state, id, handle, err);
}
static inline int backend_recover(struct backend *b, const struct backend_start *s,
                                  const char *handle, struct error *err)
{
    return b->ops->recover(b->state, s, handle, err);
}
static inline void backend_release(struct backend *b, const char *id, const char *handle)
{
    if (b->ops->release)
        b->ops->release(b->state, id, handle);
}
static inline int backend_ready(struct backend *b, struct error *err)
{
    return b->ops->ready ? b->ops->ready(b->state, err) : 0;
}
