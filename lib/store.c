/*
 * store: SQLite in WAL mode (see store.h for the contract): the schema,
 * opening and closing, the records, and the readers (a connection per
 * calling thread). The writer, which commits what is queued as one
 * transaction, is store-writer.c.
 */
#include "store-internal.h"
#include "tes.h"
#include "util/log.h"

#include <fcntl.h>
#include <sys/stat.h>

#define SCHEMA_VERSION 5

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
                                      "CREATE INDEX IF NOT EXISTS tasks_user ON tasks(user, seq);"
                                      /* The retention's sweep: ended tasks by their end. An
                                       * index of its own, made at any version's open (an older
                                       * daemon keeps it up to date without knowing it). */
                                      "CREATE INDEX IF NOT EXISTS tasks_finished ON tasks(finished)"
                                      " WHERE finished > 0;";

/* Each version's changes, applied in order to a store of an older one
 * (a new store is version 0: the table above, then every step). */
static const char *const migrations[SCHEMA_VERSION + 1] = {
    [2] = "ALTER TABLE tasks ADD COLUMN principal TEXT NOT NULL DEFAULT '';"
          /* Before principals, a task's owner was its user. */
          "UPDATE tasks SET principal = user;"
          "CREATE INDEX IF NOT EXISTS tasks_principal ON tasks(principal, seq);",
    /* Bearer tokens (tokens.h): hashes only. Every change to the table
     * counts up tokens_generation, so that a daemon notices a token made
     * or revoked by `ocps-proxyd token` without reading the table again
     * for every commit of its own (tokens.c). */
    [3] = "CREATE TABLE tokens ("
          " id TEXT PRIMARY KEY,"
          " hash BLOB NOT NULL,"
          " principal TEXT NOT NULL,"
          " admin INTEGER NOT NULL DEFAULT 0,"
          " created INTEGER NOT NULL,"
          " expires INTEGER NOT NULL DEFAULT 0,"
          " revoked INTEGER NOT NULL DEFAULT 0);"
          "CREATE TABLE tokens_generation (n INTEGER NOT NULL);"
          "INSERT INTO tokens_generation VALUES (0);"
          "CREATE TRIGGER tokens_inserted AFTER INSERT ON tokens"
          " BEGIN UPDATE tokens_generation SET n = n + 1; END;"
          "CREATE TRIGGER tokens_updated AFTER UPDATE ON tokens"
          " BEGIN UPDATE tokens_generation SET n = n + 1; END;"
          "CREATE TRIGGER tokens_deleted AFTER DELETE ON tokens"
          " BEGIN UPDATE tokens_generation SET n = n + 1; END;",
    /* The bytes an ended task's files keep under the data dir, for its
     * principal's stored-bytes quota: summed per principal through the
     * index alone. Tasks that ended before count 0. */
    [4] = "ALTER TABLE tasks ADD COLUMN stored INTEGER NOT NULL DEFAULT 0;"
          "CREATE INDEX IF NOT EXISTS tasks_principal_stored ON tasks(principal, stored);",
    /* TES's list filters (name_prefix, tag pairs) in the query, not in a
     * scan of every spec: names by an index, tags in a table of their own
     * kept by triggers from the spec's "tags" (so any writer, older ones
     * included, keeps it), filled from the tasks already stored. */
    [5] = "CREATE INDEX IF NOT EXISTS tasks_name ON tasks(name, seq);"
          /* A principal's list walks its tasks in seq order; with the name
           * in the index, a name_prefix is checked there, without reading
           * the rows it leaves out. */
          "DROP INDEX IF EXISTS tasks_principal;"
          "CREATE INDEX tasks_principal ON tasks(principal, seq, name);"
          "CREATE TABLE task_tags ("
          " seq INTEGER NOT NULL,"
          " key TEXT NOT NULL,"
          " value TEXT NOT NULL,"
          " PRIMARY KEY (seq, key)) WITHOUT ROWID;"
          "CREATE TRIGGER task_tags_inserted AFTER INSERT ON tasks BEGIN"
          " INSERT OR IGNORE INTO task_tags SELECT new.seq, key, value"
          " FROM json_each(new.spec, '$.tags'); END;"
          "CREATE TRIGGER task_tags_deleted AFTER DELETE ON tasks BEGIN"
          " DELETE FROM task_tags WHERE seq = old.seq; END;"
          "INSERT OR IGNORE INTO task_tags SELECT tasks.seq, j.key, j.value"
          " FROM tasks, json_each(tasks.spec, '$.tags') AS j;",
};

#define RECORD_COLUMNS                                                                             \
    "seq, id, user, name, backend, state, exit_code, reason, created, started, finished, spec, "   \
    "stdout_path, stderr_path, handle, principal"

/* SQLite's error classes as errno: the HTTP layer turns them into 503/500. */
int store_sqlite_errno(int rc)
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
    return error_set(err, store_sqlite_errno(rc), "store: %s: %s", what, sqlite3_errmsg(db));
}

int task_record_task(const struct task_record *r, struct task **ret, struct error *err)
{
    cJSON *j = r->spec ? cJSON_Parse(r->spec) : NULL;
    if (!j)
        return error_set(err, -EIO, "stored task %s is damaged: its spec is not JSON", r->id);
    /* The TES part is not the validator's: it reads the JobProxy task. */
    cJSON *tj = cJSON_DetachItemFromObjectCaseSensitive(j, "tes");
    _cleanup_task_ struct task *t = NULL;
    struct tes_task *tt = NULL;
    int q = task_from_cjson(j, NULL, &t, err);
    if (q >= 0 && tj)
        q = tes_task_from_spec_cjson(tj, &tt, err);
    cJSON_Delete(j);
    cJSON_Delete(tj);
    if (q < 0)
        return error_set(err, -EIO, "stored task %s is damaged: %s", r->id, error_message(err));
    t->tes = tt;
    *ret = TAKE_PTR(t);
    return 0;
}

char *task_record_spec(const struct task *t)
{
    cJSON *j = task_to_cjson(t);
    if (t->tes)
        cJSON_AddItemToObject(j, "tes", tes_task_to_spec_cjson(t->tes));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s)
        abort();
    return s;
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
    c->principal = dup_or_null(r->principal);
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
    free(r->principal);
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
        int r = error_set(err, store_sqlite_errno(rc), "store: open %s: %s", path,
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
        int r = error_set(err, store_sqlite_errno(rc), "store: %s", msg ? msg : sqlite3_errstr(rc));
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

void store_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int store_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
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
    r->principal = col_text(st, 15);
}

/* The store holds every task's command, environment and owner: its files
 * are the daemon's alone (0600), whatever the umask. SQLite makes a new
 * database 0644 less the umask, and its -wal and -shm files with the
 * database's own mode; so the database is made, or put right, here
 * first, and the -wal and -shm files an older daemon left are put right
 * too. */
static int make_private(const char *path, struct error *err)
{
    _cleanup_close_ int fd =
        open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, S_IRUSR | S_IWUSR);
    if (fd < 0 || fchmod(fd, S_IRUSR | S_IWUSR) < 0)
        return error_set_errno(err, -errno, "store: %s", path);
    static const char *const suffixes[] = {"-wal", "-shm"};
    for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
        _cleanup_free_ char *p = xasprintf("%s%s", path, suffixes[i]);
        _cleanup_close_ int f = open(p, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (f < 0 && errno != ENOENT)
            return error_set_errno(err, -errno, "store: %s", p);
        if (f >= 0 && fchmod(f, S_IRUSR | S_IWUSR) < 0)
            return error_set_errno(err, -errno, "store: %s", p);
    }
    return 0;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return version;
}

/* WAL mode, the tables, and every migration step the file lacks, in one
 * transaction: the daemon and `ocps-proxyd token` may open a new data
 * dir at the same time, and the second then finds the steps done. */
static int migrate(sqlite3 *db, const char *path, struct error *err)
{
    /* WAL: readers never block the writer; FULL: a commit is on disk when it
     * returns (commit_batch relaxes it for batches of state updates). */
    int r = exec_sql(
        db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-256;", err);
    if (r < 0 || user_version(db) == SCHEMA_VERSION)
        return r;
    r = exec_sql(db, "BEGIN IMMEDIATE", err);
    if (r < 0)
        return r;
    int version = user_version(db);
    if (version > SCHEMA_VERSION)
        r = error_set(err, -EINVAL, "store: %s has schema version %d, newer than this daemon's %d",
                      path, version, SCHEMA_VERSION);
    else
        r = exec_sql(db, schema_sql, err);
    for (int v = version + 1; r >= 0 && v <= SCHEMA_VERSION; v++)
        if (migrations[v])
            r = exec_sql(db, migrations[v], err);
    if (r >= 0) {
        _cleanup_free_ char *sql = xasprintf("PRAGMA user_version=%d; COMMIT;", SCHEMA_VERSION);
        r = exec_sql(db, sql, err);
    }
    if (r < 0)
        (void) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int store_create(const char *path, struct error *err)
{
    sqlite3 *db;
    int r = make_private(path, err);
    if (r < 0)
        return r;
    r = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, err);
    if (r < 0)
        return r;
    r = migrate(db, path, err);
    sqlite3_close(db);
    return r < 0 ? error_wrap(err, "open %s", path) : 0;
}

int store_open(const char *path, struct store **ret, struct error *err)
{
    _cleanup_free_ struct store *s = xcalloc(1, sizeof(*s));
    int r = make_private(path, err);
    if (r < 0)
        return r;
    r = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s->db, err);
    if (r < 0)
        return r;
    r = migrate(s->db, path, err);
    s->sync_full = true;
    if (r >= 0)
        r = prepare(s->db,
                    "INSERT INTO tasks (id, user, name, backend, state, exit_code, reason, "
                    "created, started, finished, spec, stdout_path, stderr_path, handle, "
                    "principal) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
        r = prepare(s->db, "UPDATE tasks SET stored = ?1 WHERE id = ?2", &s->upd_stored, err);
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
        sqlite3_finalize(s->upd_stored);
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
    if (pthread_create(&s->writer, NULL, store_writer_main, s) != 0)
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
    sqlite3_finalize(s->upd_stored);
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

int store_get(struct store *s, const char *id, struct task_record **ret, struct error *err)
{
    struct reader *rd;
    int r = reader_get(s, &rd, err);
    if (r < 0)
        return r;
    store_bind_text(rd->get, 1, id);
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

/* TES's name_prefix as a range over the name index: every name that
 * starts with p sorts from p up to p followed by 0xff, a byte no UTF-8
 * text holds (the comparison is memcmp, BINARY). */
static char *prefix_end(const char *p)
{
    return xasprintf("%s\xff", p);
}

int store_list(struct store *s, const struct store_filter *f,
               int (*fn)(const struct task_record *r, void *userdata), void *userdata,
               struct error *err)
{
    struct reader *rd;
    int r = reader_get(s, &rd, err);
    if (r < 0)
        return r;
    if (f->n_tags > STORE_MAX_TAG_FILTERS)
        return error_set(err, -EINVAL, "at most %d tag filters", STORE_MAX_TAG_FILTERS);
    bool prefix = !isempty(f->name_prefix);
    _cleanup_free_ char *tags = xstrdup("");
    for (size_t i = 0; i < f->n_tags; i++) {
        /* A key without a value (or with "") matches any value. */
        bool any = !f->tag_values || isempty(f->tag_values[i]);
        char value[32] = "";
        if (!any)
            snprintf(value, sizeof(value), " AND g.value = ?%zu", 10 + 2 * i);
        char *t = xasprintf("%s AND EXISTS (SELECT 1 FROM task_tags g WHERE g.seq = tasks.seq"
                            " AND g.key = ?%zu%s)",
                            tags, 9 + 2 * i, value);
        free(tags);
        tags = t;
    }
    _cleanup_free_ char *sql = xasprintf(
        "SELECT " RECORD_COLUMNS " FROM tasks WHERE seq > ?1%s%s%s%s%s%s%s",
        f->state >= 0 ? " AND state = ?2" : "", f->user ? " AND user = ?3" : "",
        !f->principal ? ""
        : f->or_user  ? " AND (principal = ?5 OR user = ?6)"
                      : " AND principal = ?5",
        f->active_only ? " AND state IN ('QUEUED','INITIALIZING','RUNNING','CANCELING')" : "",
        prefix ? " AND name >= ?7 AND name < ?8" : "", tags,
        f->limit > 0 ? " ORDER BY seq LIMIT ?4" : " ORDER BY seq");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(rd->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(err, rd->db, rc, "list");
    sqlite3_bind_int64(st, 1, f->after_seq);
    if (f->state >= 0)
        store_bind_text(st, 2, task_state_to_string((enum task_state) f->state));
    if (f->user)
        store_bind_text(st, 3, f->user);
    if (f->principal)
        store_bind_text(st, 5, f->principal);
    if (f->principal && f->or_user)
        store_bind_text(st, 6, f->or_user);
    if (f->limit > 0)
        sqlite3_bind_int64(st, 4, (sqlite3_int64) f->limit);
    _cleanup_free_ char *end = prefix ? prefix_end(f->name_prefix) : NULL;
    if (prefix) {
        store_bind_text(st, 7, f->name_prefix);
        store_bind_text(st, 8, end);
    }
    for (size_t i = 0; i < f->n_tags; i++) {
        store_bind_text(st, (int) (9 + 2 * i), f->tag_keys[i]);
        if (f->tag_values && !isempty(f->tag_values[i]))
            store_bind_text(st, (int) (10 + 2 * i), f->tag_values[i]);
    }
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

int store_list_ended(struct store *s, usec_t before, size_t limit,
                     int (*fn)(const char *id, usec_t finished, void *userdata), void *userdata,
                     struct error *err)
{
    struct reader *rd;
    int r = reader_get(s, &rd, err);
    if (r < 0)
        return r;
    /* "+state": by tasks_finished, not by tasks_state, which would read
     * every ended task and sort them. */
    static const char sql[] =
        "SELECT id, finished FROM tasks WHERE finished > 0 AND finished <= ?1"
        " AND +state IN ('COMPLETE','EXECUTOR_ERROR','SYSTEM_ERROR','CANCELED')"
        " ORDER BY finished LIMIT ?2";
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(rd->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(err, rd->db, rc, "list ended");
    sqlite3_bind_int64(st, 1, before);
    sqlite3_bind_int64(st, 2, (sqlite3_int64) MIN(limit, (size_t) INT64_MAX));
    r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *id = sqlite3_column_text(st, 0);
        r = fn(id ? (const char *) id : "", sqlite3_column_int64(st, 1), userdata);
        if (r != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_error(err, rd->db, rc, "list ended");
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

int store_stored_bytes(struct store *s, const char *principal, uint64_t *ret, struct error *err)
{
    struct reader *rd;
    int r = reader_get(s, &rd, err);
    if (r < 0)
        return r;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        rd->db, "SELECT COALESCE(SUM(stored), 0) FROM tasks WHERE principal = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(err, rd->db, rc, "stored bytes");
    store_bind_text(st, 1, principal);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 n = sqlite3_column_int64(st, 0);
        *ret = n > 0 ? (uint64_t) n : 0;
        rc = SQLITE_DONE;
    }
    r = rc == SQLITE_DONE ? 0 : db_error(err, rd->db, rc, "stored bytes");
    sqlite3_finalize(st);
    return r;
}
