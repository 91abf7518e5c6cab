/*
 * supervisor: admission control, the queues, state transitions, recovery
 * after a restart and the retention of ended tasks.
 *
 * The host's capacity (cores and memory, from the config) is shared out
 * among the tasks that hold it: INITIALIZING, RUNNING and CANCELING. A
 * task that does not fit waits QUEUED, in its principal's queue; fair
 * share across principals, priority within one and a bounded backfill
 * decide which starts next (admission.h). The supervisor thread starts
 * tasks and applies what the backends report; it never polls: it sleeps
 * until a submit, a cancel or a backend event wakes it, or until the
 * oldest ended task is due to be removed (the config's retention).
 *
 * Only active tasks live in memory (an id, a few numbers and the
 * backend's handle); everything else is read from the store.
 */
#pragma once

#include "backend.h"
#include "config.h"
#include "principal.h"
#include "store.h"

struct supervisor;

/* Initialises the backends of 'table' (NULL-terminated, in the order a
 * task's backend is looked for: the program that links them assembles
 * it). cfg, store and table must outlive it. */
int supervisor_new(const struct config *cfg, struct store *store,
                   const struct backend_ops *const *table, struct supervisor **ret,
                   struct error *err);
/* Reattaches to the tasks the store says are active, then starts the thread. */
int supervisor_start(struct supervisor *sv, struct error *err);
/* Stops the thread and the backends; tasks keep running. Accepts NULL. */
void supervisor_free(struct supervisor *sv);
/* Wakes the supervisor thread and waits up to timeout for it to come
 * round its loop: 0 when it did (it is not stuck in a backend or the
 * store), -ETIMEDOUT when not, -ESRCH before supervisor_start(). For the
 * service manager's watchdog. */
int supervisor_alive(struct supervisor *sv, usec_t timeout);

/*
 * Admits a validated task submitted by principal p: checks it against p's
 * policy (policy-check.h: -EACCES naming the rule, -EINVAL), applies the
 * defaults, checks it against the host's capacity (-EINVAL) and its
 * backend (-EACCES, -EINVAL), charges it to p's quotas (quota.h: -EUSERS,
 * 429), stores it durably (-ENOSPC/-EROFS/-EIO) and queues it. The policy
 * may change t (a limit from p's maxima, a mount's path resolved): what
 * is stored is the task as changed. *ret holds the stored record. A
 * container task with no container backend is stored as SYSTEM_ERROR and
 * answered -ENOSYS (501), with *ret set.
 */
int supervisor_submit(struct supervisor *sv, const struct principal *p, struct task *t,
                      struct task_record **ret, struct error *err);

/*
 * DELETE: an active task is cancelled (QUEUED ones at once, running ones
 * through their backend) and stays queryable; a task that has ended is
 * removed with its files. -ENOENT for an unknown id.
 */
int supervisor_delete(struct supervisor *sv, const char *id, struct error *err);
/* TES's cancel: an active task cancelled as by DELETE; a task that has
 * ended (or an unknown id) is left as it is. 0, or negative errno when
 * the store failed. */
int supervisor_cancel(struct supervisor *sv, const char *id, struct error *err);

/* Whether the task is still QUEUED..CANCELING (for following its logs). */
bool supervisor_is_active(struct supervisor *sv, const char *id);

/* An eventfd that becomes readable once the task has ended and its final
 * state is committed to the store (at once if it is not active), so a
 * reader of its output learns of the end without polling. Release it with
 * supervisor_unwatch(). Negative errno on failure. */
int supervisor_watch_end(struct supervisor *sv, const char *id);
void supervisor_unwatch(struct supervisor *sv, int fd);

/* A short description of why a queued task waits (NULL if it does not):
 * admission's, or its backend's for one queued there. Caller frees. */
char *supervisor_describe(struct supervisor *sv, const char *id);

/*
 * Why a submit was refused: the reason label of
 * ocps_submit_refusals_total. Each refusal is counted once, where it is
 * decided: the router (auth, too_large, media), the submit handler
 * (media, validation) or supervisor_submit (the rest).
 */
enum submit_refusal {
    REFUSAL_AUTH,          /* 401, or a unix peer whose credentials cannot be read */
    REFUSAL_TOO_LARGE,     /* 413 */
    REFUSAL_MEDIA,         /* 406, 415 */
    REFUSAL_VALIDATION,    /* 400: a task that does not parse or is not valid */
    REFUSAL_POLICY_RUN_AS, /* 403, the principal's run_as (policy-check.h) */
    REFUSAL_POLICY_NEVER,  /* 403, the accounts tasks never run as */
    REFUSAL_POLICY_MAX,    /* 403, the principal's maxima */
    REFUSAL_POLICY_IMAGE,  /* 403, the principal's images */
    REFUSAL_POLICY_PORTS,  /* 403, the principal's ports */
    REFUSAL_POLICY_MOUNTS, /* 403, mounts */
    REFUSAL_CAPACITY,      /* 400, more than the host has */
    REFUSAL_BACKEND,       /* the backend's check */
    REFUSAL_QUOTA,         /* 429 */
    REFUSAL_STORE,         /* 503, 500: the store did not take it */
    REFUSAL_NO_BACKEND,    /* 501: stored as failed, no backend runs it */
    _REFUSAL_MAX,
};

/* Counts a refused submit. Any thread. */
void supervisor_refused(struct supervisor *sv, enum submit_refusal why);

/* The supervisor's metrics, at the call (supervisor-metrics.c): tasks by
 * state and backend, the queue, capacity, the queue wait and run time
 * histograms, submits and refusals. */
void supervisor_metrics(struct supervisor *sv, FILE *f);

/* The backends that cannot run tasks now (backend_ready), by name:
 * "backend docker" or "backend docker, backend slurm", each one's error
 * logged; NULL when every one can. Caller frees. */
char *supervisor_unready(struct supervisor *sv);

/* The backend a task went to, by name ("process", "docker"). */
struct backend *supervisor_backend(struct supervisor *sv, const char *name);
