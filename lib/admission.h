/*
 * admission: the queue of tasks waiting for capacity and the capacity
 * the admitted ones hold - the supervisor's decisions, apart from its
 * threads, store and backends, so they can be tested on their own.
 *
 * The host's capacity (cores and memory) is shared out among the tasks
 * that hold it (INITIALIZING, RUNNING, CANCELING). The queue is strict
 * FIFO by submission order (the store's seq): the head starts when it
 * fits, and nothing overtakes it, so a large task is never starved by a
 * stream of small ones.
 *
 * No locking and no allocation here: the caller owns the entries (they
 * are embedded in its own per-task records) and guards the struct.
 */
#pragma once

#include "util/util.h"

struct admission_entry {
    int64_t seq; /* submission order */
    double cores;
    uint64_t memory;
    struct admission_entry *prev, *next; /* in the queue, while queued */
};

struct admission {
    double cap_cores;
    uint64_t cap_memory;
    double used_cores;
    uint64_t used_memory;
    struct admission_entry *head, *tail;
    size_t n_queued;
};

void admission_init(struct admission *a, double cap_cores, uint64_t cap_memory);

/* Queues e in seq order (concurrent submits may arrive out of order). */
void admission_enqueue(struct admission *a, struct admission_entry *e);
/* Takes a queued e out (a cancel). */
void admission_remove(struct admission *a, struct admission_entry *e);
/* The head, dequeued with its capacity held, if it fits now; else NULL. */
struct admission_entry *admission_next(struct admission *a);

/* Capacity held outside the queue (a task recovered after a restart), and its return. */
void admission_hold(struct admission *a, const struct admission_entry *e);
void admission_release(struct admission *a, const struct admission_entry *e);

/* Why a queued e waits, in words ("waiting for capacity: needs 1 core and
 * 1 GiB; 0 cores and 21.5 GiB free"); O(1), whatever the queue's length. */
char *admission_describe(const struct admission *a, const struct admission_entry *e);
