/*
 * docker-internal: what the parts of the Docker backend share. The
 * backend is split by concern, as crun splits its cgroup managers and
 * conmon its exit, logging and OOM handling:
 *
 *   docker.c   the backend slots (init, free, check, start, cancel,
 *              recover, release) and the task record they hand over
 *   image.c    image references, registry credentials, pulls
 *   create.c   a Task as the Engine API's container-create body: a pure
 *              function of the task and the config, tested without dockerd
 *   runner.c   the runner threads: one task's container from create to
 *              its reported end (wait, start, logs, stop, outcome)
 *   tes-run.c  a TES task: inputs, one container per executor, outputs,
 *              its tes-log.json (lib/tes-stage.h does the files)
 *   events.c   dockerd's event stream (exits, OOM kills, kills from
 *              outside) and the reconciliation at each (re)connection
 *   engine.c   the Engine API client (engine.h)
 *
 * Locking: ds->lock guards the task list, the runners' queue and counts,
 * and the fields marked "under ds->lock" below (written by the events
 * thread, cancel() or release() while a runner reads them).
 */
#pragma once

#include "backend.h"
#include "config.h"
#include "engine.h"
#include "outcome.h"
#include "process/confine.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdatomic.h>

#define LABEL_INSTANCE   "org.ocps-proxy.instance"
#define LABEL_TASK       "org.ocps-proxy.task"
#define LABEL_TAG_PREFIX "org.ocps-proxy.tag."
#define NOBODY_ID        65534

struct dtask;

struct docker_state {
    const struct config *cfg;
    struct backend_listener listener;
    struct engine *engine; /* every call watches shutdown_fd */
    char *instance;
    pthread_mutex_t lock;
    struct dtask *tasks;
    int shutdown_fd; /* eventfd: the daemon is stopping; runners let go */
    atomic_bool stopping;
    pthread_cond_t back;   /* broadcast when the events stream (re)connects */
    atomic_bool connected; /* the events stream is up: dockerd answers */
    pthread_cond_t event;  /* broadcast when a die event is recorded */
    pthread_t events_thread;
    bool events_running;
    /* Runner threads (detached) and the tasks launched for them. */
    pthread_cond_t work;        /* signalled when a task is queued for a runner */
    pthread_cond_t runner_done; /* broadcast when a runner lets go of a task or ends */
    pthread_cond_t release;     /* broadcast when release() hands a task back to its runner */
    struct dtask *work_head, *work_tail;
    size_t n_work, n_idle, n_runners;
    bool root; /* running as root (asked once: two syscalls fewer per task) */
};

enum runner_mode {
    RUN_START,  /* image, create, wait, start */
    RUN_FOLLOW, /* recovered: the container runs */
    RUN_FINISH, /* recovered: the container has ended */
};

/* What dockerd's event stream said of the container (under ds->lock). */
struct dtask_events {
    bool die; /* it exited: exit_code and time are the die event's */
    int exit_code;
    usec_t time;
    bool oom;        /* the kernel OOM-killed a process in it */
    int kill_signal; /* the signal of a kill event, 0 if none */
};

/* What the runner did and found; with the events, the facts of the
 * outcome (container_facts in runner.c). */
struct dtask_runner {
    bool ran;          /* started (or found running): a die event will come */
    bool stop_sent;    /* under ds->lock: it stopped the container (cancel, walltime, output) */
    bool walltime_hit; /* ... because the walltime ran out */
    bool output_hit;   /* its output passed the cap: the logs stopped there, the container killed */
    bool dockerd_lost; /* the connection broke while the container ran */
    int external_kill; /* a kill event's signal that the runner did not send */
    char *start_error; /* dockerd refused to start it */
    bool reported;     /* ended() was told */
};

struct dtask {
    struct docker_state *ds;
    char id[37];
    char name[64];   /* container name: ocps-<id> (a TES task's executor n: ocps-<id>-<n>) */
    char *container; /* its Docker id, once created */
    struct task *task;
    char *task_dir;
    char *out_path, *err_path;
    char *port_address;       /* its principal's; NULL: the config's docker.port_address */
    struct confine_user user; /* uid:gid in the container, file access on the host */
    enum runner_mode mode;
    usec_t started;
    bool told_running;     /* listener.running() was called */
    const char *tes_root;  /* a TES task's host mapping (tes-run.c's), while it runs */
    bool tes_resume;       /* a recovered TES task: tes-run.c resumes it (docker_tes_began) */
    uint64_t output_limit; /* bytes of stdout plus stderr written at most; 0: none */

    /* What ends its long calls (with the engine's shutdown fd). */
    int cancel_fd; /* eventfd: cancel requested */
    int wall_fd;   /* timerfd: walltime, -1 without one */
    bool cancel;   /* under ds->lock: cancel() came */

    int syslog_fd; /* <task_dir>/system.log */
    int out_fd, err_fd;

    struct dtask_events ev;
    struct dtask_runner did;

    /* The wait and the logs, driven together by the runner. */
    struct engine_group *group;
    int logs_call; /* its number in the group, -1 when not following */

    bool released; /* under ds->lock: release() came; the runner removes, then frees t */
    bool done;     /* under ds->lock: its runner has let go of it */
    struct dtask *work_next;
    struct dtask *next;
};

/* What a task's long calls watch besides the engine's shutdown fd: a
 * cancel, its walltime. */
static inline size_t dtask_abort_fds(const struct dtask *t, int fds[static 2])
{
    fds[0] = t->cancel_fd;
    fds[1] = t->wall_fd;
    return 2;
}

/* ---- docker.c ---- */

void dtask_free(struct dtask *t);
/* Under ds->lock. */
struct dtask *docker_find(struct docker_state *ds, const char *id);
/* One line of the task's system log (opened once per task, O_APPEND: the
 * runner and the events thread write whole lines). */
void dtask_syslog(const struct dtask *t, const char *fmt, ...) _printf_(2, 3);
/* A file of the task's output, created (truncated): a path the task named
 * (user_path) as the task's user, given up with -ECANCELED once the task
 * is cancelled, its walltime is over or the daemon stops (a FIFO nobody
 * reads, a hung mount); a default one (in the task's directory) by the
 * daemon, for the task's user, who owns it. */
int dtask_open_output(struct dtask *t, const char *path, bool user_path, int *ret_fd);
/* The same file opened again, not truncated: cut back to keep bytes, and
 * written from there (a resumed TES task's, at the end of its executors
 * that ended). */
int dtask_reopen_output(struct dtask *t, const char *path, bool user_path, off_t keep, int *ret_fd);
/* The walltime timer armed for what is left of it since started (0: now). */
void dtask_arm_walltime(struct dtask *t, usec_t started);
/* Docker's time stamp ("0001-01-01T00:00:00Z", never set: 0). */
usec_t docker_time(const char *s);
/* DELETE of a container (by id or name) and its anonymous volumes. */
int docker_delete_container(struct docker_state *ds, const char *container, struct error *err);
/* Every container labelled as task id's (this instance's), removed with
 * force: the last DELETE's status, 404 when there was none. */
int docker_delete_task_containers(struct docker_state *ds, const char *id);
/* The container of a task whose end was reported by an earlier daemon
 * (or a TES task's containers): removed once that outcome file is surely
 * on disk, as the container is the end's other record (unless the config
 * keeps containers).
 * Returns the DELETE's status, 0 when kept, or a negative errno. */
int docker_delete_recorded(struct docker_state *ds, const char *task_dir, const char *id);

/* ---- image.c ---- */

/* An image reference split into what /images/create wants: the name
 * without tag or digest, the tag (or "sha256:..." digest; "latest" when
 * absent), and the registry host its credentials are filed under
 * ("docker.io" when the name has none). -EINVAL when it is not a valid
 * reference (Docker's grammar: lower-case path components). */
struct image_ref {
    char *name;
    char *tag;
    char *registry;
};
int docker_image_ref_parse(const char *ref, struct image_ref *ret);
void image_ref_done(struct image_ref *r);
/* "X-Registry-Auth: <base64url JSON>" for the config's credentials of
 * registry, or NULL when it has none. */
char *docker_registry_auth(const struct config *cfg, const char *registry);
/* Pulls the task's image, with its progress in the system log. -ENOENT is
 * the task's fault (refused by the registry or by dockerd), the rest the
 * system's. */
int docker_pull_image(struct dtask *t, struct error *err);

/* ---- create.c ---- */

/* What the config says of every container. */
struct docker_create_config {
    const char *instance;     /* the LABEL_INSTANCE value */
    const char *port_address; /* HostIp of every port binding */
    const char *network;      /* NetworkMode; NULL: Docker's default */
    uint64_t pids_limit;      /* PidsLimit; 0: none */
};
/* The body of POST /containers/create for a task: every Task field
 * mapped, the container confined (no capabilities, no new privileges, an
 * init, no swap beyond the memory limit). user is the task's account as
 * resolved (uid, gid, supplementary groups). */
cJSON *docker_create_body(const struct task *task, const char *task_id,
                          const struct confine_user *user, const struct docker_create_config *cfg);

/* ---- runner.c ---- */

/* Queues t for a runner thread, which owns it from then on (release()
 * unlinks it); starts one when every idle one is spoken for. On failure
 * t is freed. */
int docker_runner_launch(struct docker_state *ds, struct dtask *t, struct error *err);
/* Until dockerd answers again (true) or the daemon stops (false). */
bool dockerd_wait(struct docker_state *ds);
/* One container of t (t->name, made from t->task) from its image to its
 * end, its outcome in *ret (task_outcome_done frees it), not reported.
 * False when the daemon stops first: no outcome, the next daemon follows
 * the task. */
bool runner_container(struct dtask *t, struct task_outcome *ret);
/* A container of t that a daemon before this one made (t->container):
 * followed to its end when live (its logs from the start into the
 * output files, at their ends), else its end read from dockerd with its
 * logs whole; never started again. Its outcome in *ret; false when the
 * daemon stops first. */
bool runner_follow(struct dtask *t, bool live, struct task_outcome *ret);
/* The outcome of a task that ended without its container's word: f's
 * limits filled in from the task, classified into *ret. */
void runner_fail(struct dtask *t, struct outcome_facts *f, struct task_outcome *ret);
/* A call was given up (-ECANCELED) before the container ran: false when
 * the daemon stops (nothing to report), else the task ends here,
 * cancelled or past its walltime (*ret). */
bool runner_given_up(struct dtask *t, struct task_outcome *ret);
/* exit.json written, then the supervisor told: the task's one end. */
void runner_report(struct dtask *t, const struct task_outcome *o);
/* DELETE of t->container, unless the config keeps containers. */
void runner_remove_container(struct dtask *t);

/* ---- tes-run.c ---- */

/* The whole of a TES task (t->task->tes) in the runner's thread: its
 * inputs, each executor in its own container, its outputs, its
 * <task_dir>/tes-log.json, then its one end reported; or, resumed
 * (t->tes_resume), the rest of it from where the last daemon was. */
void docker_tes_run(struct dtask *t);
/* Whether a recovered TES task got as far as an executor: -ENOENT when
 * not (no tes-run.json, written before the first executor's container
 * is made: it was staging its inputs, which start over from an empty
 * mapping when the supervisor starts it again), else 0 with the task's
 * start (0: not known). A task that did is resumed by docker_tes_run
 * (t->tes_resume): no executor that began is started again. */
int docker_tes_began(const char *task_dir, usec_t *ret_started);

/* ---- events.c ---- */

/* The first container task (submitted or recovered) connects: libcurl is
 * loaded, dockerd asked, and its event stream followed from then on. */
void docker_events_connect(struct docker_state *ds);
