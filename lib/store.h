/*
 * store: the durable record of every task, in SQLite (WAL mode) under the
 * data directory.
 *
 * Writes go through ONE writer thread that takes whatever is queued and
 * commits it as one transaction (group commit): concurrent submits share
 * one fsync. store_insert() and store_delete() return only once their
 * transaction is on disk (synchronous=FULL); state updates are queued
 * and applied in order without waiting, committed without an fsync of
 * their own (a crash of the daemon cannot lose them; after a power loss
 * the backends' records restore them), and are retried if the disk
 * refuses them, so a transition is never dropped while the daemon runs.
 * A write the disk cannot take fails with -ENOSPC/-EROFS/-EIO (503).
 *
 * Reads use a connection per calling thread (opened on first use, closed
 * when the thread exits), so readers never wait for the writer.
 */
#pragma once

#include "task.h"
#include "util/error.h"
#include "util/timeutil.h"

struct store;

struct task_record {
    int64_t seq; /* insertion order; pages and the FIFO queue follow it */
    char id[37];
    char *user;
    char *name; /* may be NULL */
    char *backend;
    enum task_state state;
    int exit_code;                     /* -1 = none */
    char *reason;                      /* may be NULL */
    usec_t created, started, finished; /* 0 = not yet */
    char *spec;                        /* the normalised task as JSON text */
    char *stdout_path, *stderr_path;   /* effective output files */
    char *handle;                      /* the backend's, may be NULL */
    char *principal;                   /* who submitted it (principal.h) */
};

void task_record_done(struct task_record *r);
/* A deep copy. */
struct task_record *task_record_copy(const struct task_record *r);
/* The task a record stores (its spec, the normalised task as JSON), back
 * as a struct task: the one way a stored task is read again. -EIO when
 * the spec is damaged. */
int task_record_task(const struct task_record *r, struct task **ret, struct error *err);
/* The spec a record stores for t: task_to_cjson(t), and for a TES task its
 * own part under "tes" (tes.h), which task_record_task reads back into
 * t->tes. Allocated; the caller frees it. */
char *task_record_spec(const struct task *t);
struct task_record *task_record_free(struct task_record *r);
static inline void task_record_freep(struct task_record **r)
{
    task_record_free(*r);
}
#define _cleanup_record_ _cleanup_(task_record_freep)

/* Creates the database at path, or migrates it to this version's schema,
 * and closes it again: for tools that work on the file beside the daemon
 * (ocps-proxyd token). */
int store_create(const char *path, struct error *err);
/* Opens (creating and migrating) the database at path and starts the writer. */
int store_open(const char *path, struct store **ret, struct error *err);
/* Flushes queued writes and closes. Accepts NULL. */
void store_close(struct store *s);

/* Durable: returns once the record is committed. r->seq is set. */
int store_insert(struct store *s, struct task_record *r, struct error *err);
/* Durable: -ENOENT if there was no such record. */
int store_delete(struct store *s, const char *id, struct error *err);
/* Removes a record without waiting (the retention's sweep): queued in
 * order like a state update and committed without an fsync of its own
 * (after a power loss the record may be back, to be removed again);
 * retried if the disk refuses it. Nothing if there is no such record. */
void store_forget(struct store *s, const char *id);

/* Updates no one waits for, queued in order; the writer commits what is
 * queued as one transaction. Without 'sync', an update that finds nothing
 * queued before it and the writer idle is committed by the calling thread
 * itself (no wake-up of the writer). Fields: state, exit code, reason,
 * started, finished;
 * started/finished 0 leave the stored value alone. 'sync': committed with
 * an fsync (with whatever else is queued then): an end nothing else has on
 * disk. Without it the update is atomic and ordered but may be lost with
 * the last seconds before a power loss. */
void store_update_state(struct store *s, const char *id, enum task_state state, int exit_code,
                        const char *reason, usec_t started, usec_t finished, bool sync);
/* The task ended: the bytes its files keep under the data dir (queued
 * like a state update). */
void store_update_stored(struct store *s, const char *id, uint64_t bytes);
/* The backend took the task: INITIALIZING, with the backend's handle. */
void store_update_started(struct store *s, const char *id, const char *handle);
/* Between hold and flush, queued updates do not wake the writer: a
 * thread handling a batch of events hands all of its updates over at
 * once (store_update_started and non-sync updates may still commit
 * inline). Waited operations from other threads go ahead as usual. */
void store_hold(struct store *s);
void store_flush(struct store *s);
/* For tests: the writer connection's PRAGMA synchronous (2 FULL, 1
 * NORMAL) as the last commit left it, once nothing is queued. */
int store_writer_synchronous(struct store *s);
/* Waits until everything queued so far is committed (or has failed). */
int store_sync(struct store *s);
/* Without waiting: fn(userdata, 0) from the writer thread once everything
 * queued so far is committed (after a retry, if the disk refused it
 * first); fn(userdata, negative errno) if the store closes before that.
 * fn is called without the store's lock and must not wait for the store. */
void store_when_committed(struct store *s, void (*fn)(void *userdata, int result), void *userdata);

/* -ENOENT when unknown. */
int store_get(struct store *s, const char *id, struct task_record **ret, struct error *err);

struct store_filter {
    int state;             /* -1 = any */
    const char *user;      /* NULL = any */
    const char *principal; /* NULL = any; else its tasks ... */
    const char *or_user;   /* ... and, with principal, those that run as this account */
    bool active_only;      /* QUEUED, INITIALIZING, RUNNING, CANCELING */
    int64_t after_seq;     /* records with seq > after_seq */
    size_t limit;
    /* TES's filters, in the query (indexes; no spec is read): */
    const char *name_prefix; /* NULL or "": any name; else names that start with it */
    char *const *tag_keys;   /* n_tags keys, each a tag the task must have ... */
    char *const *tag_values; /* ... with this value, paired by position; NULL or "": any */
    size_t n_tags;           /* at most STORE_MAX_TAG_FILTERS (else -EINVAL) */
};

#define STORE_MAX_TAG_FILTERS 32

/* Calls f for each matching record in seq order; stops early when f
 * returns non-zero (that value is returned). */
int store_list(struct store *s, const struct store_filter *f,
               int (*fn)(const struct task_record *r, void *userdata), void *userdata,
               struct error *err);

/* The bytes the ended tasks of a principal keep under the data dir (as
 * recorded at their ends): its stored-bytes quota's measure. */
int store_stored_bytes(struct store *s, const char *principal, uint64_t *ret, struct error *err);
/* Ended tasks (a final state) that finished at or before 'before'
 * (realtime), the oldest end first, at most 'limit': fn(id, finished,
 * userdata) for each; stops early when fn returns non-zero (that value
 * is returned). An index keeps this as cheap on a million ended tasks as
 * on ten. */
int store_list_ended(struct store *s, usec_t before, size_t limit,
                     int (*fn)(const char *id, usec_t finished, void *userdata), void *userdata,
                     struct error *err);

/* Whether the store takes writes now (GET /readyz): no commit waits to
 * be tried again, and a page can be written beside the database. 0, or
 * the error naming what fails. */
int store_check_writable(struct store *s, struct error *err);

/* Number of records (for the benchmark and tests). */
int64_t store_count(struct store *s);
