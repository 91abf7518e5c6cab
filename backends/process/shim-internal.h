/*
 * shim-internal: what the parts of ocps-shim share (the daemon sees only
 * shim.h).
 *
 *   shim.c        set-up and the main loop: one epoll, and which part each
 *                 event goes to
 *   shim-child.c  the task's process between fork and exec, and the words
 *                 for a failure there
 *   shim-conn.c   the daemons' connections: requests in, a bounded queue
 *                 of replies out, the hello
 *   shim-task.c   a task's life: start, spawners, exec status, timers,
 *                 the output cap, reap, outcome
 *
 * One thread runs all of it except child_run(), which the spawner threads
 * call in a vfork()ed child. Nothing is freed while an event of the
 * current batch may still point to it: a client or task that goes away is
 * marked dead and parked on sh->dead_clients / sh->dead_tasks until the
 * batch is done.
 */
#pragma once

#include "cgroup.h"
#include "confine.h"
#include "shim.h"

#include <stdint.h>

/* What the daemon asked to run (its spec, a JSON memfd). */
struct shim_spec {
    char *id;
    char **argv;
    char **env;
    char *workdir;
    struct confine_user user;
    char *out_path[2];
    bool out_as_user[2];
    int out_fd[2]; /* the default files, opened by the shim for the child; -1: opened by it */
    uint64_t cputime, walltime, memory, kill_grace;
    uint64_t output_limit; /* bytes of stdout plus stderr; 0: none */
    usec_t admitted;       /* CLOCK_REALTIME of the admission, where walltime counts from */
    double cores;
    struct cgroup cg;
};

/* What a child that failed before its exec writes to its status pipe. */
struct child_error {
    int stage; /* enum child_stage, shim-child.c */
    int error; /* positive errno */
};

enum source_kind {
    SRC_SIGNAL,
    SRC_LISTEN,
    SRC_SPAWNED, /* spawn threads report here */
    SRC_CLIENT,
    SRC_OUTPUT, /* the next look at the running tasks' output sizes (one timer for all) */
    SRC_EXEC,   /* the child's exec-status pipe */
    SRC_WALL,   /* walltime */
    SRC_CPU,    /* next cputime check */
    SRC_GRACE,  /* end of the cancel grace period */
    SRC_SETTLE, /* next look at whether the cgroup is empty */
};

/* What an epoll event points to. */
struct source {
    enum source_kind kind;
    void *owner;
};

struct outmsg;

struct client {
    struct source src;
    int fd;
    bool owner;   /* the daemon that started us */
    bool dropped; /* too far behind: no longer read from or written to (see shim.h) */
    bool dead;    /* removed; freed after the current batch of events */
    struct outmsg *out, **out_tail;
    size_t out_bytes; /* counted against sh->queue_max */
    size_t out_count;
    struct client *next;
};

enum stask_phase {
    PHASE_STARTING, /* forked, exec not yet confirmed */
    PHASE_RUNNING,
    PHASE_SETTLING, /* main process gone, waiting for the cgroup to empty */
};

struct stask {
    struct shim_spec spec;
    char *task_dir;
    int lock_fd, log_fd, exec_fd;
    int exec_w; /* the child's end of the exec-status pipe, until its spawn is reported */
    int tfd[4]; /* SRC_WALL .. SRC_SETTLE, -1 until needed */
    struct source src[5];
    enum stask_phase phase;
    pid_t main_pid;
    int main_status;
    bool main_done, canceled, walltime_hit, cputime_hit, output_hit;
    int out_fd[2]; /* the outputs, for their sizes: spec.out_fd, or O_PATH through /proc at exec */
    usec_t out_next; /* CLOCK_MONOTONIC of the next look at their sizes, 0: none */
    bool dead;       /* finished; freed after the current batch of events */
    unsigned settle_tries;
    usec_t started;
    char *fail_reason; /* the command could not be started */
    enum task_state fail_state;
    struct stask *next;
    struct stask *spawn_next; /* in the spawners' queue */
};

struct shim {
    int epfd, sigfd, listen_fd;
    int spawned[2]; /* pipe: spawn threads write struct spawn_done */
    char *sock_path;
    struct source sig_src, listen_src, spawned_src;
    int out_tfd;      /* SRC_OUTPUT: a timerfd (absolute, CLOCK_MONOTONIC) */
    usec_t out_armed; /* when it fires, 0: disarmed */
    struct source out_src;
    int protocol;      /* what our hello says: SHIM_PROTOCOL, unless a test says otherwise */
    size_t queue_max;  /* SHIM_QUEUE_MAX, unless a test says otherwise */
    unsigned spawning; /* spawn threads not yet reported */
    /* Children reaped before their spawn thread reported their pid. */
    struct reaped {
        pid_t pid;
        int status;
    } * early;
    size_t n_early, n_early_alloc;
    struct client *clients;
    struct stask *tasks;
    bool owner_gone;
    /* What events later in the same batch may still point to. */
    struct client *dead_clients;
    struct stask *dead_tasks;
};

/* shim.c: the epoll set. */
int shim_watch_fd(struct shim *sh, int fd, uint32_t events, struct source *src);
/* Closes *fd (and sets it to -1) after taking it out of the epoll set. */
void shim_unwatch_close(struct shim *sh, int *fd);

/* shim-child.c */
/* Once, before any task: what every child starts from (RLIMIT_NOFILE, bounding set). */
void child_init(void);
/* In the vfork()ed child: becomes the task's command, or reports on errfd why not. */
_noreturn_ void child_run(struct shim_spec *s, int errfd);
/* The reason for a failure child_run() reported, and the state it leads to. */
char *child_error_describe(const struct shim_spec *s, const struct child_error *e,
                           enum task_state *ret_state);

/* shim-conn.c */
/* A daemon's connection, our hello first (fd is ours from now on, closed on
 * failure); NULL on failure. */
struct client *client_add(struct shim *sh, int fd, bool owner);
/* A connection waiting on the listening socket. */
void client_accept(struct shim *sh);
/* The connection is readable, writable or gone. */
void client_event(struct shim *sh, struct client *c, uint32_t events);
void client_send(struct shim *sh, struct client *c, const char *fmt, ...) _printf_(3, 4);
/* To every connected daemon: normally one, two while a restarted one reconnects. */
void client_broadcast(struct shim *sh, const char *fmt, ...) _printf_(2, 3);
void client_free(struct client *c);
/* At exit: the daemons still connected (a reconnected one) are let go. */
void client_close_all(struct shim *sh);

/* shim-task.c */
/* Before the loop: the pipe the spawner threads report on. */
int stask_setup(struct shim *sh);
/* "S <id> <task_dir>" with the locked shim.lock and the spec (fds ours, -1 if absent). */
void stask_start(struct shim *sh, const char *id, const char *task_dir, int lock_fd, int spec_fd);
struct stask *stask_find(struct shim *sh, const char *id);
void stask_cancel(struct shim *sh, struct stask *t);
/* One of the task's own sources fired (SRC_EXEC .. SRC_SETTLE). */
void stask_event(struct shim *sh, struct stask *t, enum source_kind k);
/* SRC_OUTPUT: the output sizes of the running tasks that are due. */
void stask_check_outputs(struct shim *sh);
/* SIGCHLD: reaps every child that has ended. */
void stask_reap(struct shim *sh);
/* The spawner threads have reported. */
void stask_read_spawned(struct shim *sh);
/* After stask_finish() (internal), which took its fds out of the epoll set. */
void stask_free(struct stask *t);
