/*
 * store-writer: the store's one writer. Writes are ops queued in order;
 * the writer thread (or a caller that finds it idle, for an update no one
 * waits for) takes whatever is queued and commits it as one transaction:
 * concurrent submits and ends share one fsync (a group commit). See
 * store.h for what each write promises.
 */
#include "metrics.h"
#include "store-internal.h"
#include "util/log.h"

#include <fcntl.h>
#include <libgen.h>

/* ---- metrics ---- */

/* [0]: commits without an fsync (synchronous=NORMAL), [1]: with (FULL). */
static struct metric_histogram commit_latency[2] = {{.b = &metric_buckets_latency},
                                                    {.b = &metric_buckets_latency}};
static struct metric_histogram batch_size[2] = {{.b = &metric_buckets_batch},
                                                {.b = &metric_buckets_batch}};
static struct metric_counter commit_failures;

static void collect(FILE *f, void *userdata)
{
    static const char *const sync[2] = {"normal", "full"};
    metrics_family(f, "ocps_store_commit_seconds", "histogram",
                   "Time of the store's commits (a group commit: one transaction for what was "
                   "queued), by synchronous mode (full: with an fsync).");
    for (size_t i = 0; i < 2; i++)
        metrics_histogram(f, "ocps_store_commit_seconds",
                          (const char *const[]){"sync", sync[i], NULL}, &commit_latency[i]);
    metrics_family(f, "ocps_store_commit_batch_size", "histogram",
                   "Writes per commit of the store, by synchronous mode.");
    for (size_t i = 0; i < 2; i++)
        metrics_histogram(f, "ocps_store_commit_batch_size",
                          (const char *const[]){"sync", sync[i], NULL}, &batch_size[i]);
    metrics_family(f, "ocps_store_commit_failures_total", "counter",
                   "Commits of the store that failed (a full or read-only disk); their writes "
                   "are tried again.");
    metrics_sample_u64(f, "ocps_store_commit_failures_total", NULL, metric_get(&commit_failures));
}

static struct metrics_collector collector = {.collect = collect};

/* Applies one op inside the open transaction. Returns an SQLite code. */
static int apply(struct store *s, struct op *o)
{
    sqlite3_stmt *st;
    switch (o->kind) {
    case OP_INSERT: {
        struct task_record *r = o->rec;
        st = s->ins;
        store_bind_text(st, 1, r->id);
        store_bind_text(st, 2, r->user);
        store_bind_text(st, 3, r->name);
        store_bind_text(st, 4, r->backend);
        store_bind_text(st, 5, task_state_to_string(r->state));
        sqlite3_bind_int(st, 6, r->exit_code);
        store_bind_text(st, 7, r->reason);
        sqlite3_bind_int64(st, 8, r->created);
        sqlite3_bind_int64(st, 9, r->started);
        sqlite3_bind_int64(st, 10, r->finished);
        store_bind_text(st, 11, r->spec);
        store_bind_text(st, 12, r->stdout_path);
        store_bind_text(st, 13, r->stderr_path);
        store_bind_text(st, 14, r->handle);
        store_bind_text(st, 15, r->principal ? r->principal : "");
        int rc = store_step_done(st);
        if (rc == SQLITE_OK)
            r->seq = sqlite3_last_insert_rowid(s->db);
        return rc;
    }
    case OP_DELETE: {
        st = s->del;
        store_bind_text(st, 1, o->id);
        int rc = store_step_done(st);
        if (rc == SQLITE_OK && sqlite3_changes(s->db) == 0)
            o->result = -ENOENT;
        return rc;
    }
    case OP_STATE:
        st = s->upd;
        store_bind_text(st, 1, task_state_to_string(o->state));
        sqlite3_bind_int(st, 2, o->exit_code);
        store_bind_text(st, 3, o->text);
        sqlite3_bind_int64(st, 4, o->started);
        sqlite3_bind_int64(st, 5, o->finished);
        store_bind_text(st, 6, o->id);
        return store_step_done(st);
    case OP_HANDLE:
        st = s->upd_handle;
        store_bind_text(st, 1, o->text);
        store_bind_text(st, 2, o->id);
        return store_step_done(st);
    case OP_STORED:
        st = s->upd_stored;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) MIN(o->stored, (uint64_t) INT64_MAX));
        store_bind_text(st, 2, o->id);
        return store_step_done(st);
    case OP_SYNC:
    case OP_NOTIFY:
        return SQLITE_OK;
    }
    return SQLITE_MISUSE;
}

static void op_free(struct op *o)
{
    free(o->text);
    free(o->msg);
    free(o);
}

/* Runs a batch as one transaction. Returns 0 or the SQLite code that sank it. */
static int commit_batch(struct store *s, struct op *batch, char **ret_msg)
{
    /* Submits, deletes and ends are on disk before anyone hears of them
     * (synchronous=FULL: the WAL is fsync'd at commit, once for everything
     * in the batch). A batch of other state updates only is committed
     * without the fsync (NORMAL; still atomic, and safe against a crash of
     * the daemon): after a power loss the backends' own records (the
     * started marker, the shim's lock, the container) put a state right at
     * the next start, so an fsync per transition buys nothing. */
    bool full = false;
    uint64_t writes = 0;
    for (struct op *o = batch; o; o = o->next) {
        full = full || o->kind == OP_INSERT ||
               ((o->kind == OP_DELETE || o->kind == OP_STATE) && o->sync);
        writes += o->kind != OP_SYNC && o->kind != OP_NOTIFY;
    }
    if (!writes)
        return SQLITE_OK; /* only waiters for what came before: nothing to commit */
    usec_t start = now_monotonic();
    if (full != s->sync_full) {
        /* Not a prepared statement: SQLite applies this pragma when it is
         * prepared, and a second step does not reliably apply it again. */
        (void) sqlite3_exec(s->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                            NULL, NULL, NULL);
        s->sync_full = full;
    }
    int rc = store_step_done(s->begin);
    if (rc == SQLITE_OK)
        for (struct op *o = batch; o; o = o->next) {
            int q = apply(s, o);
            if (q == SQLITE_OK)
                continue;
            if ((q & 0xff) == SQLITE_CONSTRAINT) {
                /* Only this op fails (a duplicate id); the batch goes on. */
                o->result = -EEXIST;
                continue;
            }
            rc = q;
            break;
        }
    if (rc == SQLITE_OK)
        rc = store_step_done(s->commit);
    if (rc == SQLITE_OK) {
        metric_observe(&commit_latency[full], (uint64_t) (now_monotonic() - start));
        metric_observe(&batch_size[full], writes);
    } else
        metric_inc(&commit_failures);
    if (rc != SQLITE_OK) {
        *ret_msg = xstrdup(sqlite3_errmsg(s->db));
        if (!sqlite3_get_autocommit(s->db))
            (void) store_step_done(s->rollback);
    }
    return rc;
}

struct settled {
    struct op *notify;  /* OP_NOTIFY ops whose callbacks are due */
    struct op *waiters; /* waited ops with their result, not yet told */
};

/* After a batch's commit (lock held): refused async ops kept for a retry
 * in order; the OP_NOTIFY ops and the waited ops handed to batch_notify,
 * which runs the callbacks before it tells any waiter (store_sync()
 * returns only after them). */
static struct settled batch_done(struct store *s, struct op *batch, int rc, const char *msg)
{
    struct settled r = {0};
    struct op **rtail = &s->retry, **ntail = &r.notify, **wtail = &r.waiters;
    while (*rtail)
        rtail = &(*rtail)->next;
    for (struct op *o = batch, *n; o; o = n) {
        n = o->next;
        o->next = NULL;
        if (o->kind == OP_NOTIFY && (rc == SQLITE_OK || s->stopping)) {
            o->result = rc == SQLITE_OK ? 0 : store_sqlite_errno(rc);
            *ntail = o;
            ntail = &o->next;
            continue;
        }
        if (rc != SQLITE_OK) {
            if (!o->waited && !s->stopping) {
                /* A state change is never dropped: keep it for the next try. */
                *rtail = o;
                rtail = &o->next;
                continue;
            }
            o->result = store_sqlite_errno(rc);
            if (o->waited)
                o->msg = xasprintf("store: commit: %s", msg);
            else
                log_error("store: dropping update of task %s at shutdown: %s", o->id, msg);
        }
        if (o->waited) {
            *wtail = o;
            wtail = &o->next;
        } else
            op_free(o);
    }
    if (rc != SQLITE_OK) {
        log_error("store: commit failed: %s", msg);
        s->retry_at = now_monotonic() + RETRY_USEC;
    }
    return r;
}

/* Runs the callbacks batch_done handed back (without the lock), then
 * tells the waiters (lock held on entry and exit). */
static void batch_notify(struct store *s, struct settled r)
{
    if (r.notify) {
        pthread_mutex_unlock(&s->lock);
        for (struct op *o = r.notify, *n; o; o = n) {
            n = o->next;
            o->fn(o->userdata, o->result);
            op_free(o);
        }
        pthread_mutex_lock(&s->lock);
    }
    for (struct op *o = r.waiters, *n; o; o = n) {
        n = o->next;
        o->next = NULL;
        o->done = true;
    }
    pthread_cond_broadcast(&s->done);
    if (s->head || s->retry || s->stopping)
        pthread_cond_signal(&s->wake); /* what came while a caller committed its own */
}

void *store_writer_main(void *arg)
{
    struct store *s = arg;
    (void) pthread_setname_np(pthread_self(), "ocps-store");
    metrics_register(&collector);

    pthread_mutex_lock(&s->lock);
    for (;;) {
        /* busy: a caller commits its own update right now (store_update_*). */
        while ((!s->head && !s->stopping && !s->retry) || s->busy)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->retry && !s->head && !s->stopping) {
            usec_t now = now_monotonic();
            if (now < s->retry_at) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                usec_t wait = s->retry_at - now;
                ts.tv_sec += (time_t) (wait / USEC_PER_SEC);
                ts.tv_nsec += (long) (wait % USEC_PER_SEC) * 1000;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&s->wake, &s->lock, &ts);
                continue;
            }
        }
        if (!s->head && !s->retry && s->stopping)
            break;

        /* Take everything queued; earlier refused updates go first to keep order. */
        struct op *batch = s->head;
        s->head = s->tail = NULL;
        if (s->retry) {
            struct op *t = s->retry;
            while (t->next)
                t = t->next;
            t->next = batch;
            batch = s->retry;
            s->retry = NULL;
        }
        s->busy = true;
        pthread_mutex_unlock(&s->lock);

        _cleanup_free_ char *msg = NULL;
        int rc = commit_batch(s, batch, &msg);

        pthread_mutex_lock(&s->lock);
        s->busy = false;
        batch_notify(s, batch_done(s, batch, rc, msg));
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void enqueue(struct store *s, struct op *o)
{
    pthread_mutex_lock(&s->lock);
    if (s->tail)
        s->tail->next = o;
    else
        s->head = o;
    s->tail = o;
    if (!s->held || o->waited)
        pthread_cond_signal(&s->wake);
    if (o->waited)
        while (!o->done)
            pthread_cond_wait(&s->done, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

/* An update no one waits for and that needs no fsync: when nothing is
 * queued before it and the writer is idle, the calling thread commits it
 * itself (it is awake already; waking the writer costs two context
 * switches). Otherwise it is queued behind the rest, in order. */
static void submit_async(struct store *s, struct op *o)
{
    pthread_mutex_lock(&s->lock);
    if (s->head || s->retry || s->busy || s->stopping) {
        pthread_mutex_unlock(&s->lock);
        enqueue(s, o);
        return;
    }
    s->busy = true;
    pthread_mutex_unlock(&s->lock);
    _cleanup_free_ char *msg = NULL;
    int rc = commit_batch(s, o, &msg);
    pthread_mutex_lock(&s->lock);
    s->busy = false;
    batch_notify(s, batch_done(s, o, rc, msg));
    pthread_mutex_unlock(&s->lock);
}

int store_writer_synchronous(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->busy || s->head)
        pthread_cond_wait(&s->done, &s->lock);
    s->busy = true; /* the writer's connection is ours for a moment */
    pthread_mutex_unlock(&s->lock);
    int mode = -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            mode = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    pthread_mutex_lock(&s->lock);
    s->busy = false;
    batch_notify(s, (struct settled){0});
    pthread_mutex_unlock(&s->lock);
    return mode;
}

void store_hold(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    s->held++;
    pthread_mutex_unlock(&s->lock);
}

void store_flush(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->held > 0 && --s->held == 0 && s->head)
        pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

/* Enqueues a waited op and returns its result, with words in err. */
static int run_waited(struct store *s, struct op *o, struct error *err)
{
    o->waited = true;
    enqueue(s, o);
    int r = o->result;
    if (r < 0) {
        if (o->msg)
            error_set(err, r, "%s", o->msg);
        else
            error_set(err, r, "store: %s", strerror(-r));
    }
    free(o->msg);
    return r;
}

int store_insert(struct store *s, struct task_record *r, struct error *err)
{
    struct op o = {.kind = OP_INSERT, .rec = r};
    int q = run_waited(s, &o, err);
    if (q == -EEXIST)
        return error_set(err, -EEXIST, "store: task %s exists", r->id);
    return q;
}

int store_delete(struct store *s, const char *id, struct error *err)
{
    struct op o = {.kind = OP_DELETE, .sync = true};
    snprintf(o.id, sizeof(o.id), "%s", id);
    int r = run_waited(s, &o, err);
    if (r == -ENOENT)
        return error_set(err, -ENOENT, "no task %s", id);
    return r;
}

void store_forget(struct store *s, const char *id)
{
    struct op *o = xcalloc(1, sizeof(*o));
    o->kind = OP_DELETE;
    snprintf(o->id, sizeof(o->id), "%s", id);
    /* Queued, not committed inline: between store_hold and store_flush a
     * sweep's removals go as one transaction. */
    enqueue(s, o);
}

int store_sync(struct store *s)
{
    struct op o = {.kind = OP_SYNC};
    struct error err = ERROR_INIT;
    int r = run_waited(s, &o, &err);
    error_clear(&err);
    return r;
}

void store_when_committed(struct store *s, void (*fn)(void *userdata, int result), void *userdata)
{
    struct op *o = xcalloc(1, sizeof(*o));
    o->kind = OP_NOTIFY;
    o->fn = fn;
    o->userdata = userdata;
    enqueue(s, o);
}

void store_update_state(struct store *s, const char *id, enum task_state state, int exit_code,
                        const char *reason, usec_t started, usec_t finished, bool sync)
{
    struct op *o = xcalloc(1, sizeof(*o));
    o->kind = OP_STATE;
    snprintf(o->id, sizeof(o->id), "%s", id);
    o->state = state;
    o->exit_code = exit_code;
    o->text = reason ? xstrdup(reason) : NULL;
    o->started = started;
    o->finished = finished;
    o->sync = sync;
    if (sync)
        enqueue(s, o);
    else
        submit_async(s, o);
}

void store_update_stored(struct store *s, const char *id, uint64_t bytes)
{
    struct op *o = xcalloc(1, sizeof(*o));
    o->kind = OP_STORED;
    snprintf(o->id, sizeof(o->id), "%s", id);
    o->stored = bytes;
    submit_async(s, o);
}

void store_update_started(struct store *s, const char *id, const char *handle)
{
    struct op *o = xcalloc(1, sizeof(*o));
    o->kind = OP_HANDLE;
    snprintf(o->id, sizeof(o->id), "%s", id);
    o->text = handle ? xstrdup(handle) : NULL;
    submit_async(s, o);
}

/* ---- readiness ---- */

int store_check_writable(struct store *s, struct error *err)
{
    pthread_mutex_lock(&s->lock);
    bool failing = s->retry != NULL;
    pthread_mutex_unlock(&s->lock);
    if (failing)
        return error_set(err, -EIO, "a commit failed and waits to be tried again");
    /* A commit can only fail once there is one to make: a page written
     * beside the database says whether the disk takes writes now (a
     * full or read-only filesystem refuses it at write time, with no
     * fsync needed). */
    _cleanup_free_ char *copy = xstrdup(s->path);
    _cleanup_free_ char *probe = xasprintf("%s/.ready-probe.%d", dirname(copy), gettid());
    _cleanup_close_ int fd =
        open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return error_set_errno(err, -errno, "cannot create a file beside the database");
    static const char page[4096];
    ssize_t n = write(fd, page, sizeof(page));
    int saved = errno;
    (void) unlink(probe);
    if (n < 0)
        return error_set_errno(err, -saved, "cannot write beside the database");
    if ((size_t) n < sizeof(page))
        return error_set(err, -ENOSPC, "cannot write beside the database: the disk is full");
    return 0;
}
