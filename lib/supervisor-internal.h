/*
 * supervisor-internal: what the supervisor's files share (supervisor.c:
 * the thread, events, submit and delete; supervisor-recover.c: the
 * reattachment to active tasks at start). Not for other modules.
 */
#pragma once

#include "admission.h"
#include "metrics.h"
#include "quota.h"
#include "supervisor.h"
#include "util/hashmap.h"

#include <pthread.h>

/* What starting a task needs from its record, kept from its submit while
 * few tasks are queued: the start then neither reads the store nor parses
 * the spec again. A long queue keeps nothing (100,000 queued tasks must
 * stay small). */
struct sv_ready {
    usec_t created; /* its submit: the queue wait's start */
    struct task *task;
    char *stdout_path, *stderr_path;
};

/* One per active task; 100,000 queued tasks keep 100,000 of these, so
 * the layout is kept tight (104 bytes, the same malloc size class as 96):
 * state, cancel_pending and the backend's index share the byte after the
 * id, the principal's quota slot (quota.h) takes the two bytes that were
 * padding, admission's entry points to its one record of the principal,
 * and cores are a 32-bit count. */
struct sv_task {
    char id[37];
    uint8_t state : 4;          /* enum task_state */
    uint8_t cancel_pending : 1; /* a cancel waits for the supervisor thread */
    uint8_t backend : 3;        /* in sv->backends: sv_backend() */
    uint16_t principal;         /* its principal's slot (quota.h), counted while it is active */
    struct admission_entry q;   /* seq, cores, memory, priority, principal; the queue's links */
    char *handle;
    struct sv_ready *ready; /* NULL: read the record at start */
};

_Static_assert(sizeof(struct sv_task) <= 104, "struct sv_task outgrew its malloc size class");

struct watch {
    char id[37];
    int fd;
    struct watch *next;
};

/* A task that ended, from its end to the store's commit of it: then its
 * backend may drop what is left (release) and its watchers hear. */
struct ended {
    char id[37];
    struct backend *backend;
    char *handle;
    struct ended *next;
};

enum event_kind {
    EV_SCHEDULE,
    EV_CANCEL,
    EV_RUNNING,
    EV_QUEUED, /* waits in its backend's own queue */
    EV_ENDED,
    EV_COMMITTED, /* the ends in 'ended' are on disk */
};

struct event {
    enum event_kind kind;
    char id[37];
    usec_t started;
    struct task_outcome outcome; /* reason owned */
    struct ended *ended;         /* EV_COMMITTED, owned */
    struct event *next;
};

/* At most this many backends: a task keeps its backend's index in 3 bits. */
#define SV_BACKENDS_MAX 8

/* What the supervisor counts (supervisor-metrics.c), by backend index. */
struct sv_metrics {
    struct metric_counter submits[SV_BACKENDS_MAX];
    struct metric_counter ended[SV_BACKENDS_MAX][_TASK_STATE_MAX];
    struct metric_counter refused[_REFUSAL_MAX];
    struct metric_histogram queue_wait[SV_BACKENDS_MAX];
    struct metric_histogram run_time[SV_BACKENDS_MAX];
};

struct supervisor {
    const struct config *cfg;
    struct store *store;
    struct backend *backends; /* one per entry of the table that initialised */
    size_t n_backends;
    struct backend_listener listener;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct hashmap *active; /* id -> sv_task: sv_active_add(), sv_active_remove() */
    /* The active tasks by backend and state (the ocps_tasks gauge), kept
     * with the map: a scrape reads it without a pass over 100,000 tasks. */
    uint32_t n_active[SV_BACKENDS_MAX][_TASK_STATE_MAX];
    /* The supervisor thread's turns of its loop, each broadcast on 'round'
     * (supervisor_alive(): the watchdog's proof that it goes round). */
    uint64_t rounds;
    pthread_cond_t round;
    struct admission adm;     /* the queue and the capacity held */
    struct quota_table quota; /* what each principal's active tasks hold */
    struct event *ev_head, *ev_tail;
    struct watch *watches; /* readers waiting for a task's end */
    struct ended *ended;   /* the supervisor thread's: ends not yet handed to the store's commit */
    struct sv_hub *hub;
    /* Retention: when the next ended task is due to go (realtime; USEC_INFINITY: none known). */
    usec_t sweep_at;
    bool schedule_pending;
    bool stopping;
    bool started;
    pthread_t thread;
    struct sv_metrics metrics;
};

#define USEC_INFINITY INT64_MAX

/* An active task enters or leaves the map, or changes state: with
 * sv->lock held, and only through these, so that n_active agrees. */
static inline void sv_active_add(struct supervisor *sv, struct sv_task *t)
{
    hashmap_put(sv->active, t->id, t);
    sv->n_active[t->backend][t->state]++;
}
static inline void sv_active_remove(struct supervisor *sv, struct sv_task *t)
{
    hashmap_remove(sv->active, t->id);
    sv->n_active[t->backend][t->state]--;
}
static inline void sv_set_state(struct supervisor *sv, struct sv_task *t, enum task_state state)
{
    sv->n_active[t->backend][t->state]--;
    t->state = state;
    sv->n_active[t->backend][t->state]++;
}

/* Its cores as a number of cores (admission counts millionths). */
static inline double sv_task_cores(const struct sv_task *t)
{
    return (double) t->q.cores / ADMISSION_CORE;
}

static inline struct backend *sv_backend(const struct supervisor *sv, const struct sv_task *t)
{
    return &sv->backends[t->backend];
}

/* Frees t and what it holds; returns NULL. */
struct sv_task *sv_task_free(struct sv_task *t);
/* Keeps a copy of t and its record's output paths in st->ready, for its
 * start, unless SV_READY_MAX tasks hold one already (the start then reads
 * the store). */
void sv_task_keep_ready(struct sv_task *st, const struct task *t, const struct task_record *rec);
/* Sets up sv->metrics' histograms (supervisor_new). */
void sv_metrics_init(struct supervisor *sv);
/* A task of backend index b ended in state: counted, with its run time
 * when it ran (started > 0). Any thread. */
void sv_metrics_ended(struct supervisor *sv, unsigned b, enum task_state state, usec_t started,
                      usec_t finished);

/* <data_dir>/tasks/<id> */
char *sv_task_dir(const struct supervisor *sv, const char *id);
/* Removes a task's files: its directory, and its default output's where
 * a backend put it elsewhere (backend.h, output_path). Logs what fails. */
void sv_remove_files(struct supervisor *sv, const char *id);
/* Wakes the supervisor thread to start what fits (any thread). */
void sv_post_schedule(struct supervisor *sv);
/* Posts an event about a task to the supervisor thread. */
void sv_post_kind(struct supervisor *sv, enum event_kind k, const char *id);
/* Ends t (active, in the map) as a system error with reason, or as
 * cancelled when reason is NULL. Supervisor thread, or before it starts. */
void sv_fail_task(struct supervisor *sv, struct sv_task *t, const char *reason);
/* Reattaches to every task the store says is active (supervisor_start). */
int sv_recover(struct supervisor *sv, struct error *err);
/* A task ended at 'finished' (realtime): the retention sweep comes for it
 * in time. Takes sv->lock. */
void sv_retain(struct supervisor *sv, usec_t finished);
/* The supervisor thread, when sv->sweep_at has come: removes one batch of
 * the ended tasks past the retention, with their files. */
void sv_sweep(struct supervisor *sv);
/* At start: when the oldest ended task is due. */
void sv_sweep_init(struct supervisor *sv);
