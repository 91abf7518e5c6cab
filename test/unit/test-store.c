/* Unit tests: the store on a real SQLite file - insert, get, list with
 * filters and pages, ordered async updates, delete, concurrent durable
 * inserts, reopen. */
#include "store.h"
#include "tap.h"

#include <pthread.h>

static struct task_record *rec_new(const char *user)
{
    struct task_record *r = xcalloc(1, sizeof(*r));
    uuid_v4(r->id);
    r->user = xstrdup(user);
    r->backend = xstrdup("process");
    r->state = TASK_QUEUED;
    r->exit_code = -1;
    r->created = now_realtime();
    r->spec = xasprintf("{\"user\":\"%s\",\"cmd\":\"true\"}", user);
    r->stdout_path = xstrdup("/tmp/out");
    r->stderr_path = xstrdup("/tmp/err");
    return r;
}

static int count_cb(const struct task_record *r, void *userdata)
{
    (*(int *) userdata)++;
    return 0;
}

struct committed_arg {
    struct store *s;
    char id[37];
    int calls, result, seen;
};

static void committed_cb(void *userdata, int result)
{
    struct committed_arg *c = userdata;
    struct task_record *g = NULL;
    struct error err = ERROR_INIT;
    c->calls++;
    c->result = result;
    /* The writer's own thread: a reader connection of its own sees the commit. */
    if (store_get(c->s, c->id, &g, &err) == 0)
        c->seen = g->state;
    task_record_free(g);
    error_clear(&err);
}

struct writer_arg {
    struct store *s;
    int n;
    int failures;
};

static void *writer(void *p)
{
    struct writer_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        _cleanup_record_ struct task_record *r = rec_new("conc");
        _cleanup_error_ struct error err = ERROR_INIT;
        if (store_insert(a->s, r, &err) < 0)
            a->failures++;
    }
    return NULL;
}

/* A store written by a daemon from before principals (schema version 1)
 * is migrated: every task's owner becomes its user, and lists by
 * principal find them. */
static void test_migration(const char *dir)
{
    _cleanup_free_ char *path = xasprintf("%s/v1.db", dir);
    _cleanup_free_ char *sql = xasprintf(
        "sqlite3 %s \"CREATE TABLE tasks (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL "
        "UNIQUE, user TEXT NOT NULL, name TEXT, backend TEXT NOT NULL, state TEXT NOT NULL, "
        "exit_code INTEGER NOT NULL DEFAULT -1, reason TEXT, created INTEGER NOT NULL, started "
        "INTEGER NOT NULL DEFAULT 0, finished INTEGER NOT NULL DEFAULT 0, spec TEXT NOT NULL, "
        "stdout_path TEXT, stderr_path TEXT, handle TEXT); INSERT INTO tasks (id, user, backend, "
        "state, created, spec) VALUES ('00000000-0000-4000-8000-000000000001', 'carol', "
        "'process', 'COMPLETE', 1, '{\\\"tags\\\":{\\\"wf\\\":\\\"w1\\\"}}'); "
        "PRAGMA user_version=1;\"",
        path);
    if (!ok(system(sql) == 0, "a version 1 store made by the sqlite3 shell"))
        return;
    _cleanup_error_ struct error err = ERROR_INIT;
    struct store *s = NULL;
    ok(store_open(path, &s, &err) == 0, "a version 1 store opens: %s", error_message(&err));
    if (!s)
        return;
    struct task_record *g = NULL;
    ok(store_get(s, "00000000-0000-4000-8000-000000000001", &g, &err) == 0 &&
           streq_ptr(g->principal, "carol"),
       "its task belongs to the principal of its user (%s)", g ? g->principal : "-");
    task_record_free(g);
    int n = 0;
    struct store_filter f = {.state = -1, .principal = "carol"};
    ok(store_list(s, &f, count_cb, &n, &err) == 0 && n == 1, "a list by principal finds it");
    n = 0;
    char *keys[] = {(char *) "wf", NULL}, *values[] = {(char *) "w1", NULL};
    f = (struct store_filter){.state = -1, .tag_keys = keys, .tag_values = values, .n_tags = 1};
    ok(store_list(s, &f, count_cb, &n, &err) == 0 && n == 1,
       "the tags of a task stored before version 5 are found by a tag filter");
    store_close(s);
    _cleanup_free_ char *ver = xasprintf("sqlite3 %s 'PRAGMA user_version' | grep -qx 5", path);
    ok(system(ver) == 0, "the store is at version 5 after it");
}

struct ended_list {
    char ids[8][37];
    usec_t finished[8];
    size_t n;
};

static int ended_cb(const char *id, usec_t finished, void *userdata)
{
    struct ended_list *l = userdata;
    if (l->n == ELEMENTSOF(l->ids))
        return 1;
    snprintf(l->ids[l->n], sizeof(l->ids[l->n]), "%s", id);
    l->finished[l->n++] = finished;
    return 0;
}

/* The retention's look at the store: ended tasks by their end, oldest
 * first; and its removal, without an fsync. */
static void test_ended(const char *dir)
{
    _cleanup_free_ char *path = xasprintf("%s/ended.db", dir);
    _cleanup_error_ struct error err = ERROR_INIT;
    struct store *s = NULL;
    if (!ok(store_open(path, &s, &err) == 0, "open: %s", error_message(&err)))
        return;
    static const struct {
        enum task_state state;
        usec_t finished;
    } rows[] = {
        {TASK_COMPLETE, 100}, {TASK_CANCELED, 50},        {TASK_RUNNING, 0},
        {TASK_QUEUED, 150},   {TASK_EXECUTOR_ERROR, 300}, {TASK_SYSTEM_ERROR, 200},
    };
    struct task_record *r[ELEMENTSOF(rows)];
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        r[i] = rec_new("erin");
        r[i]->state = rows[i].state;
        r[i]->finished = rows[i].finished;
        if (store_insert(s, r[i], &err) < 0)
            ok(false, "insert: %s", error_message(&err));
    }
    struct ended_list l = {0};
    ok(store_list_ended(s, 200, 8, ended_cb, &l, &err) == 0 && l.n == 3 &&
           streq(l.ids[0], r[1]->id) && streq(l.ids[1], r[0]->id) && streq(l.ids[2], r[5]->id) &&
           l.finished[0] == 50 && l.finished[2] == 200,
       "ended tasks that finished by then, oldest end first; no active one");
    l = (struct ended_list){0};
    ok(store_list_ended(s, INT64_MAX, 1, ended_cb, &l, &err) == 0 && l.n == 1 &&
           streq(l.ids[0], r[1]->id),
       "the oldest end alone");
    store_hold(s);
    store_forget(s, r[1]->id);
    store_forget(s, r[0]->id);
    store_forget(s, "no-such-task");
    store_flush(s);
    ok(store_sync(s) == 0 && store_writer_synchronous(s) == 1,
       "removals by the retention are committed without an fsync (NORMAL)");
    struct task_record *g = NULL;
    ok(store_get(s, r[1]->id, &g, &err) == -ENOENT && store_count(s) == 4,
       "and are gone; the unknown one changed nothing");
    l = (struct ended_list){0};
    ok(store_list_ended(s, INT64_MAX, 8, ended_cb, &l, &err) == 0 && l.n == 2 &&
           streq(l.ids[0], r[5]->id) && streq(l.ids[1], r[4]->id),
       "the rest are found as before");
    _cleanup_free_ char *del =
        xasprintf("sqlite3 %s \"SELECT count(*) FROM tasks\" | grep -qx 4", path);
    store_close(s);
    ok(system(del) == 0, "on disk too, after the store closed");
    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        task_record_free(r[i]);
}

/* TES's filters in the query: names by prefix, tags by pairs (a key
 * alone or with "" matches any value), pages over them; a deleted task's
 * tags go with it. */
static void test_tes_filters(struct store *s)
{
    static const struct {
        const char *name, *tags;
    } rows[] = {
        {"wf-a", "{\"wf\":\"1\",\"lab\":\"x\"}"},
        {"wf-b", "{\"wf\":\"2\",\"lab\":\"x\"}"},
        {"wf", "{\"wf\":\"1\"}"},
        {"w\xc3\xa9", "{\"lab\":\"y\"}"},
        {NULL, "{\"lab\":\"x\"}"},
    };
    _cleanup_error_ struct error err = ERROR_INIT;
    struct task_record *recs[ELEMENTSOF(rows)];
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        recs[i] = rec_new("tess");
        recs[i]->name = rows[i].name ? xstrdup(rows[i].name) : NULL;
        free(recs[i]->spec);
        recs[i]->spec = xasprintf("{\"user\":\"tess\",\"cmd\":\"true\",\"tags\":%s}", rows[i].tags);
        ok(store_insert(s, recs[i], &err) == 0, "insert %zu", i);
    }
    static const struct {
        const char *prefix;
        const char *k[3], *v[3];
        int want;
    } q[] = {
        {"wf", {NULL}, {NULL}, 3},
        {"wf-", {NULL}, {NULL}, 2},
        {"w", {NULL}, {NULL}, 4},
        {"w\xc3", {NULL}, {NULL}, 1},
        {"", {NULL}, {NULL}, 5},
        {"x", {NULL}, {NULL}, 0},
        {NULL, {"lab"}, {"x"}, 3},
        {NULL, {"wf"}, {""}, 3},
        {NULL, {"wf", "lab"}, {"1", "x"}, 1},
        {"wf-", {"wf", "lab"}, {"", "x"}, 2},
        {NULL, {"lab", "wf"}, {"y", ""}, 0},
        {NULL, {"nope"}, {""}, 0},
    };
    for (size_t i = 0; i < ELEMENTSOF(q); i++) {
        size_t n_tags = 0;
        while (n_tags < 3 && q[i].k[n_tags])
            n_tags++;
        struct store_filter f = {.state = -1,
                                 .user = "tess",
                                 .name_prefix = q[i].prefix,
                                 .tag_keys = (char *const *) q[i].k,
                                 .tag_values = (char *const *) q[i].v,
                                 .n_tags = n_tags};
        int n = 0;
        ok(store_list(s, &f, count_cb, &n, &err) == 0 && n == q[i].want, "TES filter %zu: %d tasks",
           i, q[i].want);
    }
    int n = 0;
    struct store_filter f = {.state = -1, .after_seq = recs[0]->seq, .name_prefix = "wf"};
    ok(store_list(s, &f, count_cb, &n, &err) == 0 && n == 2,
       "a page after the first over a prefix");
    store_delete(s, recs[0]->id, &err);
    ok(store_sync(s) == 0, "delete");
    char *keys[] = {(char *) "wf", NULL}, *values[] = {(char *) "1", NULL};
    n = 0;
    f = (struct store_filter){.state = -1, .tag_keys = keys, .tag_values = values, .n_tags = 1};
    ok(store_list(s, &f, count_cb, &n, &err) == 0 && n == 1, "a deleted task's tags go with it");
    /* Gone again: the rest of the test counts its own tasks. */
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        if (i > 0)
            (void) store_delete(s, recs[i]->id, &err);
        task_record_free(recs[i]);
    }
    ok(store_sync(s) == 0, "the filter test's tasks deleted");
}

int main(void)
{
    char dir[] = "/tmp/ocps-test-store-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    _cleanup_free_ char *path = xasprintf("%s/db", dir);
    _cleanup_error_ struct error err = ERROR_INIT;
    struct store *s = NULL;
    ok(store_open(path, &s, &err) == 0, "open: %s", error_message(&err));

    _cleanup_record_ struct task_record *a = rec_new("alice");
    _cleanup_record_ struct task_record *b = rec_new("bob");
    ok(store_insert(s, a, &err) == 0 && a->seq > 0, "insert a (seq %lld)", (long long) a->seq);
    ok(store_insert(s, b, &err) == 0 && b->seq > a->seq, "insert b after a");
    ok(store_insert(s, a, &err) == -EEXIST, "a duplicate id is refused");

    struct task_record *g = NULL;
    ok(store_get(s, a->id, &g, &err) == 0 && streq(g->user, "alice") && g->state == TASK_QUEUED &&
           streq(g->spec, a->spec),
       "get returns what was inserted");
    task_record_free(g);
    g = NULL;
    error_clear(&err);
    ok(store_get(s, "nope", &g, &err) == -ENOENT, "get unknown is -ENOENT");

    store_update_started(s, a->id, "{\"pid\":1}");
    ok(store_sync(s) == 0 && store_get(s, a->id, &g, &err) == 0 && g->state == TASK_INITIALIZING &&
           streq(g->handle, "{\"pid\":1}"),
       "started: INITIALIZING with the backend's handle");
    task_record_free(g);
    g = NULL;
    /* What was committed last decides the fsync mode: a durable insert
     * FULL, a state update NORMAL, an end FULL again, each time. */
    ok(store_writer_synchronous(s) == 1, "a started update is committed without fsync (NORMAL)");
    _cleanup_record_ struct task_record *carol = rec_new("carol");
    ok(store_insert(s, carol, &err) == 0 && store_writer_synchronous(s) == 2,
       "an insert is committed with fsync (FULL)");
    store_update_state(s, carol->id, TASK_RUNNING, -1, NULL, 500, 0, false);
    ok(store_sync(s) == 0 && store_writer_synchronous(s) == 1, "a running update: NORMAL again");
    store_update_state(s, carol->id, TASK_COMPLETE, 0, "exited with status 0", 0, 600, true);
    ok(store_sync(s) == 0 && store_writer_synchronous(s) == 2, "an end: FULL again");
    store_update_state(s, a->id, TASK_RUNNING, -1, NULL, 1000, 0, false);
    store_update_state(s, a->id, TASK_COMPLETE, 0, "exited with status 0", 0, 2000, true);
    ok(store_sync(s) == 0, "sync");
    ok(store_get(s, a->id, &g, &err) == 0 && g->state == TASK_COMPLETE && g->exit_code == 0 &&
           g->started == 1000 && g->finished == 2000 && streq(g->reason, "exited with status 0") &&
           streq(g->handle, "{\"pid\":1}"),
       "updates applied in order");
    task_record_free(g);
    g = NULL;

    /* when_committed: called from the writer once what was queued before
     * is committed, without waiting for anything queued after; a reader
     * then sees it. */
    struct committed_arg c = {.s = s};
    snprintf(c.id, sizeof(c.id), "%s", b->id);
    store_update_state(s, b->id, TASK_CANCELED, -1, "cancelled by request", 0, 3000, true);
    store_when_committed(s, committed_cb, &c);
    ok(store_sync(s) == 0 && c.calls == 1 && c.result == 0 && c.seen == TASK_CANCELED,
       "when_committed runs once, after the commit it waited for");
    store_update_state(s, b->id, TASK_QUEUED, -1, NULL, 0, 0, false);

    int n = 0;
    struct store_filter f = {.state = TASK_COMPLETE};
    ok(store_list(s, &f, count_cb, &n, &err) == 0 && n == 2, "filter by state");
    n = 0;
    f = (struct store_filter){.state = -1, .user = "bob"};
    ok(store_list(s, &f, count_cb, &n, &err) == 0 && n == 1, "filter by user");
    n = 0;
    f = (struct store_filter){.state = -1, .active_only = true};
    ok(store_list(s, &f, count_cb, &n, &err) == 0 && n == 1, "active only");
    n = 0;
    f = (struct store_filter){.state = -1, .after_seq = a->seq};
    ok(store_list(s, &f, count_cb, &n, &err) == 0 && n == 2, "after_seq pages");

    test_tes_filters(s);

    /* Concurrent durable inserts: all land, committed in groups. */
    pthread_t th[8];
    struct writer_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (struct writer_arg){s, 50, 0};
        pthread_create(&th[i], NULL, writer, &args[i]);
    }
    int failures = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        failures += args[i].failures;
    }
    ok(failures == 0 && store_count(s) == 403, "400 concurrent inserts all stored (%lld)",
       (long long) store_count(s));

    /* The bytes ended tasks keep, summed per principal (its stored quota). */
    uint64_t bytes = 1;
    ok(store_stored_bytes(s, "dora", &bytes, &err) == 0 && bytes == 0,
       "a principal without tasks keeps 0 bytes");
    _cleanup_record_ struct task_record *d1 = rec_new("dora"), *d2 = rec_new("dora");
    d1->principal = xstrdup("dora");
    d2->principal = xstrdup("dora");
    ok(store_insert(s, d1, &err) == 0 && store_insert(s, d2, &err) == 0, "two tasks of dora");
    store_update_stored(s, d1->id, 1000);
    store_update_stored(s, d2->id, 234);
    store_update_stored(s, carol->id, 99999);
    ok(store_sync(s) == 0 && store_stored_bytes(s, "dora", &bytes, &err) == 0 && bytes == 1234,
       "her tasks' bytes are summed, no one else's (%llu)", (unsigned long long) bytes);
    ok(store_delete(s, d1->id, &err) == 0 && store_stored_bytes(s, "dora", &bytes, &err) == 0 &&
           bytes == 234,
       "a deleted task's bytes no longer count");
    ok(store_delete(s, d2->id, &err) == 0, "(and the other goes)");

    ok(store_delete(s, b->id, &err) == 0, "delete");
    error_clear(&err);
    ok(store_delete(s, b->id, &err) == -ENOENT, "delete again is -ENOENT");
    store_close(s);

    s = NULL;
    ok(store_open(path, &s, &err) == 0 && store_count(s) == 402, "reopen keeps everything");
    ok(store_get(s, a->id, &g, &err) == 0 && g->state == TASK_COMPLETE, "state survives reopen");
    task_record_free(g);
    store_close(s);
    test_migration(dir);
    test_ended(dir);
    (void) rm_rf(dir);
    return tap_done();
}
