/*
 * store: SQLite in WAL mode with one group-committing writer thread.
 * See store.h for the contract.
 */
#include "store.h"
#include "util/log.h"

#include <pthread.h>
#include <sqlite3.h>

#define SCHEMA_VERSION 1
#define RETRY_USEC     (1 * USEC_PER_SEC)
/* Readers of ended HTTP threads kept for the next ones: a client that
 * opens a connection per request (or 8 at once) must not cost a SQLite
 * connection's open and schema read each time. */
#define READERS_IDLE 16

enum op_kind {
    OP_INSERT,
    OP_DELETE,
    OP_STATE,
    OP_HANDLE, /* started: the handle, and QUEUED becomes INITIALIZING */
    OP_SYNC,
    OP_NOTIFY, /* calls fn once what was queued before it is committed */
};

struct op {
    enum op_kind kind;
    bool waited; /* a caller waits on it (lives on its stack) */
    bool done;
    int result;
    char *msg;               /* error words for a waited op */
    struct task_record *rec; /* OP_INSERT */
    char id[37];
    enum task_state state;
    int exit_code;
    bool sync;  /* OP_STATE committed with an fsync */
    char *text; /* reason (OP_STATE) or handle (OP_HANDLE) */
    usec_t started, finished;
    void (*fn)(void *userdata, int result); /* OP_NOTIFY */
    void *userdata;
    struct op *next;
};

struct reader {
    struct store *store;
    sqlite3 *db;
    sqlite3_stmt *get;
    struct reader *prev, *next;
};

struct store {
    char *path;
    sqlite3 *db; /* the writer's */
    sqlite3_stmt *ins, *del, *upd, *upd_handle;
    /* Transaction control, prepared once: a task commits four times. */
    sqlite3_stmt *begin, *commit, *rollback;
    bool sync_full; /* the writer connection's synchronous mode */

    pthread_mutex_t lock;
    pthread_cond_t wake; /* the writer waits on it */
    pthread_cond_t done; /* waiters wait on it */
    struct op *head, *tail;
    struct op *retry; /* async ops the disk refused, oldest first */
    usec_t retry_at;
    bool busy;     /* a commit runs (the writer's, or a caller's own) */
    unsigned held; /* store_hold(): queued ops wait for store_flush() */
    bool stopping;
    pthread_t writer;

    pthread_key_t reader_key;
    struct reader *readers;            /* every reader, for store_close */
    struct reader *idle[READERS_IDLE]; /* of threads that ended: the next thread's */
    size_t n_idle;
};

static const char *const schema_sql = "CREATE TABLE IF NOT EXISTS tasks ("
                                      " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                                      " id TEXT NOT NULL UNIQUE,"
                                      " user TEXT NOT NULL,"
                                      " name TEXT,"
                                      " backend TEXT NOT NULL,"
                                      " state TEXT NOT NULL,"
                                      " exit_code INTEGER NOT NULL DEFAULT -1,"
                                      " reason TEXT,"
                                      " created INTEGER NOT NULL,"
                                      " started INTEGER NOT NULL DEFAULT 0,"
                                      " finished INTEGER NOT NULL DEFAULT 0,"
                                      " spec TEXT NOT NULL,"
                                      " stdout_path TEXT,"
                                      " stderr_path TEXT,"
                                      " handle TEXT);"
                                      "CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state, seq);"
                                      "CREATE INDEX IF NOT EXISTS tasks_user ON tasks(user, seq);";

#define RECORD_COLUMNS                                                                             \
    "seq, id, user, name, backend, state, exit_code, reason, created, started, finished, spec, "   \
    "stdout_path, stderr_path, handle"

/* SQLite's error classes as errno: the HTTP layer turns them into 503/500. */
static int sqlite_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        return -EROFS;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EAGAIN;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static int db_error(struct error *err, sqlite3 *db, int rc, const char *what)
{
    return error_set(err, sqlite_errno(rc), "store: %s: %s", what, sqlite3_errmsg(db));
}

int task_record_task(const struct task_record *r, struct task **ret, struct error *err)
{
    cJSON *j = r->spec ? cJSON_Parse(r->spec) : NULL;
    if (!j)
        return error_set(err, -EIO, "stored task %s is damaged: its spec is not JSON", r->id);
    int q = task_from_cjson(j, NULL, ret, err);
    cJSON_Delete(j);
    if (q < 0)
        return error_set(err, -EIO, "stored task %s is damaged: %s", r->id, error_message(err));
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

struct task_record *task_record_copy(const struct task_record *r)
{
    struct task_record *c = xmalloc(sizeof(*c));
    *c = *r;
    c->user = dup_or_null(r->user);
    c->name = dup_or_null(r->name);
    c->backend = dup_or_null(r->backend);
    c->reason = dup_or_null(r->reason);
    c->spec = dup_or_null(r->spec);
    c->stdout_path = dup_or_null(r->stdout_path);
    c->stderr_path = dup_or_null(r->stderr_path);
    c->handle = dup_or_null(r->handle);
    return c;
}

void task_record_done(struct task_record *r)
{
    if (!r)
        return;
    free(r->user);
    free(r->name);
    free(r->backend);
    free(r->reason);
    free(r->spec);
    free(r->stdout_path);
    free(r->stderr_path);
    free(r->handle);
    memset(r, 0, sizeof(*r));
}

struct task_record *task_record_free(struct task_record *r)
{
    task_record_done(r);
    free(r);
    return NULL;
}

static int open_db(const char *path, int flags, sqlite3 **ret, struct error *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int r = error_set(err, sqlite_errno(rc), "store: open %s: %s", path,
                          db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return r;
    }
    sqlite3_busy_timeout(db, 5000);
    (void) sqlite3_extended_result_codes(db, 1);
    *ret = db;
    return 0;
}

static int exec_sql(sqlite3 *db, const char *sql, struct error *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int r = error_set(err, sqlite_errno(rc), "store: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return r;
    }
    return 0;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, struct error *err)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, ret, NULL);
    if (rc != SQLITE_OK)
        return db_error(err, db, rc, "prepare");
    return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Applies one op inside the open transaction. Returns an SQLite code. */
static int apply(struct store *s, struct op *o)
{
    sqlite3_stmt *st;
    switch (o->kind) {
    case OP_INSERT: {
        struct task_record *r = o->rec;
        st = s->ins;
        bind_text(st, 1, r->id);
        bind_text(st, 2, r->user);
        bind_text(st, 3, r->name);
        bind_text(st, 4, r->backend);
        bind_text(st, 5, task_state_to_string(r->state));
        sqlite3_bind_int(st, 6, r->exit_code);
        bind_text(st, 7, r->reason);
        sqlite3_bind_int64(st, 8, r->created);
        sqlite3_bind_int64(st, 9, r->started);
        sqlite3_bind_int64(st, 10, r->finished);
        bind_text(st, 11, r->spec);
        bind_text(st, 12, r->stdout_path);
        bind_text(st, 13, r->stderr_path);
        bind_text(st, 14, r->handle);
        int rc = step_done(st);
        if (rc == SQLITE_OK)
            r->seq = sqlite3_last_insert_rowid(s->db);
        return rc;
    }
    case OP_DELETE: {
        st = s->del;
        bind_text(st, 1, o->id);
        int rc = step_done(st);
        if (rc == SQLITE_OK && sqlite3_changes(s->db) == 0)
            o->result = -ENOENT;
        return rc;
    }
    case OP_STATE:
        st = s->upd;
        bind_text(st, 1, task_state_to_string(o->state));
        sqlite3_bind_int(st, 2, o->exit_code);
        bind_text(st, 3, o->text);
        sqlite3_bind_int64(st, 4, o->started);
        sqlite3_bind_int64(st, 5, o->finished);
        bind_text(st, 6, o->id);
        return step_done(st);
    case OP_HANDLE:
        st = s->upd_handle;
        bind_text(st, 1, o->text);
        bind_text(st, 2, o->id);
        return step_done(st);
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
    bool full = false, writes = false;
    for (struct op *o = batch; o; o = o->next) {
        full = full || o->kind == OP_INSERT || o->kind == OP_DELETE ||
               (o->kind == OP_STATE && o->sync);
        writes = writes || (o->kind != OP_SYNC && o->kind != OP_NOTIFY);
    }
    if (!writes)
        return SQLITE_OK; /* only waiters for what came before: nothing to commit */
    if (full != s->sync_full) {
        /* Not a prepared statement: SQLite applies this pragma when it is
         * prepared, and a second step does not reliably apply it again. */
        (void) sqlite3_exec(s->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                            NULL, NULL, NULL);
        s->sync_full = full;
    }
    int rc = step_done(s->begin);
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
        rc = step_done(s->commit);
    if (rc != SQLITE_OK) {
        *ret_msg = xstrdup(sqlite3_errmsg(s->db));
        if (!sqlite3_get_autocommit(s->db))
            (void) step_done(s->rollback);
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
            o->result = rc == SQLITE_OK ? 0 : sqlite_errno(rc);
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
            o->result = sqlite_errno(rc);
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

static void *writer_main(void *arg)
{
    struct store *s = arg;
    (void) pthread_setname_np(pthread_self(), "ocps-store");

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

static void reader_free(void *p)
{
    struct reader *rd = p;
    if (!rd)
        return;
    struct store *s = rd->store;
    pthread_mutex_lock(&s->lock);
    if (rd->prev)
        rd->prev->next = rd->next;
    else
        s->readers = rd->next;
    if (rd->next)
        rd->next->prev = rd->prev;
    pthread_mutex_unlock(&s->lock);
    sqlite3_finalize(rd->get);
    sqlite3_close(rd->db);
    free(rd);
}

/* At a thread's end: its reader waits for the next thread. */
static void reader_release(void *p)
{
    struct reader *rd = p;
    struct store *s = rd->store;
    pthread_mutex_lock(&s->lock);
    bool kept = s->n_idle < READERS_IDLE;
    if (kept)
        s->idle[s->n_idle++] = rd;
    pthread_mutex_unlock(&s->lock);
    if (!kept)
        reader_free(rd);
}

static int reader_get(struct store *s, struct reader **ret, struct error *err)
{
    struct reader *rd = pthread_getspecific(s->reader_key);
    if (rd) {
        *ret = rd;
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    if (s->n_idle > 0)
        rd = s->idle[--s->n_idle];
    pthread_mutex_unlock(&s->lock);
    if (rd) {
        (void) pthread_setspecific(s->reader_key, rd);
        *ret = rd;
        return 0;
    }
    sqlite3 *db;
    int r = open_db(s->path, SQLITE_OPEN_READWRITE, &db, err);
    if (r < 0)
        return r;
    /* One reader per HTTP thread: point lookups need little cache, and a
     * thousand connections must not mean a thousand 2 MiB caches. */
    (void) sqlite3_exec(db, "PRAGMA cache_size=-128", NULL, NULL, NULL);
    rd = xcalloc(1, sizeof(*rd));
    rd->store = s;
    rd->db = db;
    r = prepare(db, "SELECT " RECORD_COLUMNS " FROM tasks WHERE id = ?1", &rd->get, err);
    if (r < 0) {
        sqlite3_close(db);
        free(rd);
        return r;
    }
    pthread_mutex_lock(&s->lock);
    rd->next = s->readers;
    if (s->readers)
        s->readers->prev = rd;
    s->readers = rd;
    pthread_mutex_unlock(&s->lock);
    (void) pthread_setspecific(s->reader_key, rd);
    *ret = rd;
    return 0;
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *) t) : NULL;
}

static void read_record(sqlite3_stmt *st, struct task_record *r)
{
    r->seq = sqlite3_column_int64(st, 0);
    const unsigned char *id = sqlite3_column_text(st, 1);
    snprintf(r->id, sizeof(r->id), "%s", id ? (const char *) id : "");
    r->user = col_text(st, 2);
    r->name = col_text(st, 3);
    r->backend = col_text(st, 4);
    const unsigned char *state = sqlite3_column_text(st, 5);
    r->state = task_state_from_string((const char *) state);
    if ((int) r->state < 0)
        r->state = TASK_SYSTEM_ERROR;
    r->exit_code = sqlite3_column_int(st, 6);
    r->reason = col_text(st, 7);
    r->created = sqlite3_column_int64(st, 8);
    r->started = sqlite3_column_int64(st, 9);
    r->finished = sqlite3_column_int64(st, 10);
    r->spec = col_text(st, 11);
    r->stdout_path = col_text(st, 12);
    r->stderr_path = col_text(st, 13);
    r->handle = col_text(st, 14);
}

int store_open(const char *path, struct store **ret, struct error *err)
{
    _cleanup_free_ struct store *s = xcalloc(1, sizeof(*s));
    int r = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s->db, err);
    if (r < 0)
        return r;
    /* WAL: readers never block the writer; FULL: a commit is on disk when it
     * returns (commit_batch relaxes it for batches of state updates). */
    r = exec_sql(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-256;",
                 err);
    s->sync_full = true;
    if (r >= 0) {
        sqlite3_stmt *st;
        int version = 0;
        if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                version = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
        }
        if (version > SCHEMA_VERSION)
            r = error_set(err, -EINVAL,
                          "store: %s has schema version %d, newer than this daemon's %d", path,
                          version, SCHEMA_VERSION);
        else
            r = exec_sql(s->db, schema_sql, err);
        if (r >= 0 && version < SCHEMA_VERSION) {
            _cleanup_free_ char *sql = xasprintf("PRAGMA user_version=%d", SCHEMA_VERSION);
            r = exec_sql(s->db, sql, err);
        }
    }
    if (r >= 0)
        r = prepare(s->db,
                    "INSERT INTO tasks (id, user, name, backend, state, exit_code, reason, "
                    "created, started, finished, spec, stdout_path, stderr_path, handle) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    &s->ins, err);
    if (r >= 0)
        r = prepare(s->db, "DELETE FROM tasks WHERE id = ?1", &s->del, err);
    if (r >= 0)
        r = prepare(s->db,
                    "UPDATE tasks SET state = ?1, exit_code = ?2, reason = ?3,"
                    " started = CASE WHEN ?4 > 0 THEN ?4 ELSE started END,"
                    " finished = CASE WHEN ?5 > 0 THEN ?5 ELSE finished END WHERE id = ?6",
                    &s->upd, err);
    if (r >= 0)
        r = prepare(s->db,
                    "UPDATE tasks SET handle = ?1, state = CASE state WHEN 'QUEUED' THEN "
                    "'INITIALIZING' ELSE state END WHERE id = ?2",
                    &s->upd_handle, err);
    if (r >= 0)
        r = prepare(s->db, "BEGIN IMMEDIATE", &s->begin, err);
    if (r >= 0)
        r = prepare(s->db, "COMMIT", &s->commit, err);
    if (r >= 0)
        r = prepare(s->db, "ROLLBACK", &s->rollback, err);
    if (r < 0) {
        sqlite3_finalize(s->ins);
        sqlite3_finalize(s->del);
        sqlite3_finalize(s->upd);
        sqlite3_finalize(s->upd_handle);
        sqlite3_finalize(s->begin);
        sqlite3_finalize(s->commit);
        sqlite3_finalize(s->rollback);
        sqlite3_close(s->db);
        return error_wrap(err, "open %s", path);
    }

    s->path = xstrdup(path);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->done, NULL);
    if (pthread_key_create(&s->reader_key, reader_release) != 0)
        abort();
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        abort();
    *ret = TAKE_PTR(s);
    return 0;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer, NULL);

    /* The calling thread's reader and any left by threads still alive. */
    (void) pthread_setspecific(s->reader_key, NULL);
    while (s->readers)
        reader_free(s->readers);
    pthread_key_delete(s->reader_key);

    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->upd);
    sqlite3_finalize(s->upd_handle);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->rollback);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->done);
    free(s->path);
    free(s);
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
    struct op o = {.kind = OP_DELETE};
    snprintf(o.id, sizeof(o.id), "%s", id);
    int r = run_waited(s, &o, err);
    if (r == -ENOENT)
        return error_set(err, -ENOENT, "no task %s", id);
    return r;
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

void store_update_started(struct store *s, const char *id, const char *handle)
{
    struct op *o = xcalloc(1, sizeof(*o));
    o->kind = OP_HANDLE;
    snprintf(o->id, sizeof(o->id), "%s", id);
    o->text = handle ? xstrdup(handle) : NULL;
    submit_async(s, o);
}

int store_get(struct store *s, const char *id, struct task_record **ret, struct error *err)
{
    struct reader *rd;
    int r = reader_get(s, &rd, err);
    if (r < 0)
        return r;
    bind_text(rd->get, 1, id);
    int rc = sqlite3_step(rd->get);
    if (rc == SQLITE_ROW) {
        struct task_record *rec = xcalloc(1, sizeof(*rec));
        read_record(rd->get, rec);
        sqlite3_reset(rd->get);
        *ret = rec;
        return 0;
    }
    sqlite3_reset(rd->get);
    if (rc == SQLITE_DONE)
        return error_set(err, -ENOENT, "no task %s", id);
    return db_error(err, rd->db, rc, "get");
}

int store_list(struct store *s, const struct store_filter *f,
               int (*fn)(const struct task_record *r, void *userdata), void *userdata,
               struct error *err)
{
    struct reader *rd;
    int r = reader_get(s, &rd, err);
    if (r < 0)
        return r;
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT " RECORD_COLUMNS " FROM tasks WHERE seq > ?1%s%s%s%s",
             f->state >= 0 ? " AND state = ?2" : "", f->user ? " AND user = ?3" : "",
             f->active_only ? " AND state IN ('QUEUED','INITIALIZING','RUNNING','CANCELING')" : "",
             f->limit > 0 ? " ORDER BY seq LIMIT ?4" : " ORDER BY seq");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(rd->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(err, rd->db, rc, "list");
    sqlite3_bind_int64(st, 1, f->after_seq);
    if (f->state >= 0)
        bind_text(st, 2, task_state_to_string((enum task_state) f->state));
    if (f->user)
        bind_text(st, 3, f->user);
    if (f->limit > 0)
        sqlite3_bind_int64(st, 4, (sqlite3_int64) f->limit);
    r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct task_record rec = {0};
        read_record(st, &rec);
        r = fn(&rec, userdata);
        task_record_done(&rec);
        if (r != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_error(err, rd->db, rc, "list");
    sqlite3_finalize(st);
    return r;
}

int64_t store_count(struct store *s)
{
    struct reader *rd;
    struct error err = ERROR_INIT;
    if (reader_get(s, &rd, &err) < 0) {
        error_clear(&err);
        return -1;
    }
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(rd->db, "SELECT count(*) FROM tasks", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return n;
}
