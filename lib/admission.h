/*
 * admission: the queue of tasks waiting for capacity and the capacity
 * the admitted ones hold - the supervisor's decisions, apart from its
 * threads, store and backends, so they can be tested on their own.
 *
 * The host's capacity (cores and memory) is shared out among the tasks
 * that hold it (INITIALIZING, RUNNING, CANCELING). Cores are counted in
 * millionths (ADMISSION_CORE), so sums are exact: 0.1 + 0.2 cores fit in
 * 0.3.
 *
 * Who goes next, when capacity is free:
 *
 * 1. Fair share across principals (weighted dominant share, as Mesos'
 *    DRF; in the spirit of Slurm's fair-share, without its decay of
 *    past use). Each principal with queued tasks has a share: the
 *    larger of the fractions of the host's cores and of its memory that
 *    its tasks hold now, divided by its policy weight. The principal
 *    with the smallest share goes first; among equal shares, the one
 *    whose last start is oldest (never is oldest), then the one whose
 *    first queued task is oldest. So with capacity for one task at a
 *    time, principals take turns (round robin) however many tasks each
 *    has queued, and a principal of weight 2 holds twice the share of
 *    one of weight 1 under contention. Shares of what is held now, not
 *    of past use: a principal gains nothing by waiting and loses
 *    nothing for having run, and nothing needs forgetting over time.
 * 2. Within a principal, a task's priority (higher first), then its
 *    submission order (the store's seq).
 * 3. Backfill: when the task that would go next does not fit, the tasks
 *    after it, in the same order, may start if they fit - at most
 *    ADMISSION_SCAN_PRINCIPAL of each principal's tasks and
 *    ADMISSION_SCAN_MAX in all are looked at per decision (Slurm's
 *    bf_max_job_user and bf_max_job_test), so a decision costs the same
 *    whatever the queues' length.
 * 4. The bound: when a task after it starts, the first task found not
 *    to fit is overtaken, and becomes the blocked task. Smaller tasks may
 *    go on overtaking it only until it would have fit had nothing
 *    overtaken it: until the capacity released since then makes up what
 *    it lacked then (cores and memory alike). From then on the capacity
 *    is reserved for it: nothing else starts until it fits. So it waits
 *    no longer than strict FIFO would have made it wait, plus the rest of
 *    the runs of the tasks that overtook it (they keep what they took);
 *    a stream of small tasks never starves it, and small tasks are not
 *    held up while it could not start anyway. It keeps that claim until
 *    it starts or is cancelled, even when another principal's turn comes
 *    meanwhile. A task that only waits for capacity, overtaken by none,
 *    has no claim: when capacity comes back, the turn decides.
 *
 * 5. An entry marked uncounted (a task of a remote backend, backend.h:
 *    Slurm queues it itself) takes no host capacity: it waits in a FIFO
 *    of its own, starts before anything else at the next decision,
 *    whatever the reservation, and counts towards no share.
 *
 * The caller owns the entries (embedded in its own per-task records)
 * and guards the struct (no locking here). The per-principal records
 * (the queues by priority, the capacity held) are admission's, shared
 * by the principal's entries: an entry holds a pointer, not a name.
 */
#pragma once

#include "util/hashmap.h"
#include "util/util.h"

/* One core, in the unit of admission_entry.cores. */
#define ADMISSION_CORE 1000000ULL
/* Backfill looks at this many of one principal's queued tasks per decision ... */
#define ADMISSION_SCAN_PRINCIPAL 32
/* ... and at this many in all. */
#define ADMISSION_SCAN_MAX 256

struct admission_principal;

struct admission_entry {
    int64_t seq;     /* submission order */
    uint64_t memory; /* bytes */
    uint32_t cores;  /* millionths of a core: admission_cores() */
    int16_t priority;
    bool uncounted;                        /* takes no host capacity (5.) */
    struct admission_principal *principal; /* while queued or holding capacity */
    struct admission_entry *prev, *next;   /* in its principal's queue, while queued */
};

/* One priority of a principal's queue: its tasks in seq order. */
struct admission_level {
    int priority;
    struct admission_entry *head, *tail;
    size_t n;
    struct admission_level *next; /* the next lower priority */
};

/* A principal with tasks queued or holding capacity; freed when it has none. */
struct admission_principal {
    char *name;
    unsigned weight;
    uint64_t used_cores, used_memory; /* held by its tasks */
    size_t n_queued, n_held;
    size_t n_uncounted;             /* queued in the admission's uncounted FIFO */
    uint64_t last_start;            /* the admission's start count at its last start; 0: never */
    struct admission_level *levels; /* highest priority first */
    struct admission_principal *prev, *next; /* in the waiting list, while n_queued > 0 */
    double share;                            /* scratch: while ordering a decision */
};

struct admission {
    uint64_t cap_cores, cap_memory;
    uint64_t used_cores, used_memory;
    size_t n_queued;
    struct hashmap *principals;          /* name -> admission_principal */
    struct admission_principal *waiting; /* those with queued tasks */
    size_t n_waiting;
    uint64_t n_starts;
    struct admission_entry *uncounted_head, *uncounted_tail; /* (5.) */
    /* The bound (4.): the blocked task, and what it still lacks of the
     * capacity released since it was blocked; both 0: reserved. */
    struct admission_entry *blocked;
    uint64_t short_cores, short_memory;
    /* Whether anything changed since a decision found nothing to start. */
    bool dirty;
    struct admission_principal **order; /* scratch for a decision */
    size_t n_order_alloc;
};

/* Millionths of a core, rounded to the nearest. */
uint32_t admission_cores(double cores);

void admission_init(struct admission *a, double cap_cores, uint64_t cap_memory);
/* Frees the per-principal records; the entries are the caller's. */
void admission_done(struct admission *a);

/* Queues e (seq, cores, memory and priority set) for its principal, by
 * name; weight (>= 1, its policy's) is taken when the principal is new
 * to the admission. Concurrent submits may arrive out of seq order. */
void admission_enqueue(struct admission *a, struct admission_entry *e, const char *principal,
                       unsigned weight);
/* Takes a queued e out (a cancel). */
void admission_remove(struct admission *a, struct admission_entry *e);
/* The next task to start (above), dequeued with its capacity held; NULL
 * when none may start now. */
struct admission_entry *admission_next(struct admission *a);

/* Capacity held outside the queue (a task recovered after a restart), for its principal. */
void admission_hold(struct admission *a, struct admission_entry *e, const char *principal,
                    unsigned weight);
/* The capacity a started or held e held comes back (its end). */
void admission_release(struct admission *a, struct admission_entry *e);

/* A principal's record (what its tasks hold, how many are queued), or
 * NULL when it has no task queued or holding capacity. */
const struct admission_principal *admission_principal_find(const struct admission *a,
                                                           const char *name);

/* Why a queued e waits, in words: capacity ("waiting for capacity: needs
 * 1 core and 1 GiB; 0 cores and 21.5 GiB free"), with the bound or the
 * reservation if it is the blocked task; another task's reservation; its
 * principal's turn; its place among its principal's tasks. Costs no more
 * than the number of principals waiting and of e's principal's priorities,
 * whatever the queues' length. */
char *admission_describe(const struct admission *a, const struct admission_entry *e);
