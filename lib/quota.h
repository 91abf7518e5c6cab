/*
 * quota: what each principal's tasks hold, against its quotas (policy.h).
 *
 * A task counts against its principal from its submit to its end: it
 * is one of its tasks "running" (not yet ended, whether it already runs
 * or waits to), and its cores and memory are the principal's "in use".
 * A queued task counts because it will run: were only the tasks that
 * run now counted at submit, a principal could queue any number under a
 * quota of 4 and have them all start together later (Kubernetes counts
 * a pending pod against a ResourceQuota for the same reason). The queued
 * quota counts the tasks still waiting, and bounds the backlog apart.
 *
 * The supervisor keeps the counts under its lock: a submit is charged
 * (checked and counted at once, before the task is stored, so that two
 * submits at once cannot both take the last place), and uncounted when
 * its task leaves the queue and when it ends; recovery counts every
 * active task again after a restart. A submit that would take its
 * principal past a quota is refused with -EUSERS (429), naming the
 * quota; the stored-bytes quota is the store's sum of the bytes its
 * ended tasks keep under the data dir (quota_check_stored).
 *
 * Each principal with tasks has a slot, a small number a task keeps
 * (struct sv_task has room for 16 bits, not a pointer): 1 to
 * QUOTA_SLOTS_MAX, 0 for none. A slot is freed, and its number used
 * again, when the principal's last task ends.
 */
#pragma once

#include "policy.h"
#include "util/error.h"
#include "util/hashmap.h"

/*
 * Retry-After of a 429, in seconds. A quota frees when one of the
 * principal's own tasks ends (or, for stored bytes, when it deletes
 * ended ones), and the proxy cannot know when that will be; 30 s keeps
 * a client that retries at that pace to two requests a minute, and a
 * freed place idle for 15 s on average, short next to the tasks
 * quotas are set for. A client that wants to know sooner watches the
 * state of its own tasks.
 */
#define QUOTA_RETRY_AFTER 30
#define QUOTA_SLOTS_MAX   65535

struct quota_usage {
    uint64_t tasks;  /* not yet ended: queued or running */
    uint64_t queued; /* still waiting in the queue */
    double cores;    /* of the tasks not yet ended */
    uint64_t memory;
};

struct quota_slot {
    char *name; /* NULL: free */
    struct quota_usage use;
    uint16_t next_free;
};

struct quota_table {
    struct quota_slot *slots; /* slots[0] unused: slot 0 means none */
    size_t n_slots;           /* in use or freed, 1 + the highest number given */
    uint16_t free_head;       /* 0: none freed */
    struct hashmap *by_name;  /* name -> slot, the slot number as a pointer */
};

void quota_init(struct quota_table *q);
void quota_done(struct quota_table *q);

/*
 * Charges a new task of principal 'name', whose policy entry is 'pol',
 * for (cores, memory): refuses it when it would take the principal past
 * a quota of pol (-EUSERS, naming it), else counts it, as queued, and
 * returns the principal's slot. -EAGAIN when QUOTA_SLOTS_MAX principals
 * have tasks already.
 */
int quota_charge(struct quota_table *q, const char *name, const struct policy *pol, double cores,
                 uint64_t memory, uint16_t *ret_slot, struct error *err);
/* Counts a task found active at recovery, not queued, without a check;
 * 0 when no slot is left (it is then not counted). */
uint16_t quota_count(struct quota_table *q, const char *name, double cores, uint64_t memory);
/* A counted task went into the queue (recovery) or out of it (started,
 * or cancelled while queued). */
void quota_queued(struct quota_table *q, uint16_t slot);
void quota_dequeued(struct quota_table *q, uint16_t slot);
/* A counted task ended (or was never stored): it no longer counts. */
void quota_release(struct quota_table *q, uint16_t slot, double cores, uint64_t memory);

/* The principal of a slot; NULL for slot 0. Valid while the slot is in
 * use, under the owner's lock. */
const char *quota_name(const struct quota_table *q, uint16_t slot);
/* What principal 'name' holds now (zeros when it has no tasks). */
struct quota_usage quota_usage_of(const struct quota_table *q, const char *name);

/* The stored-bytes quota: -EUSERS when 'stored', the bytes the
 * principal's ended tasks keep, has reached pol's quota. */
int quota_check_stored(const char *name, const struct policy *pol, uint64_t stored,
                       struct error *err);
/* The bytes (sizes) of the files in a task's directory and below it, not
 * following symlinks or crossing mounts: what it keeps under the data
 * dir. 0 when there is no such directory. */
uint64_t quota_dir_bytes(const char *dir);
