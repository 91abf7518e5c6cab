/* Unit tests: what the daemon tells systemd. The journal fields of a log
 * event (priority, code location, the task's id and principal from the
 * thread's context or from the message), and supervisor_alive(), the
 * watchdog's proof: true while the supervisor goes round its loop, false
 * while a backend holds it (a start that blocks), true again after. */
#include "store.h"
#include "supervisor.h"
#include "tap.h"
#include "util/log.h"

#include <pthread.h>
#include <sys/stat.h>

static const char *field(char **fields, const char *name)
{
    size_t n = strlen(name);
    STRV_FOREACH (f, fields)
        if (strncmp(*f, name, n) == 0 && (*f)[n] == '=')
            return *f + n + 1;
    return NULL;
}

#define ID "0b9a7c6e-1f2d-4e3c-9a8b-7c6d5e4f3a2b"

static void test_fields(void)
{
    _cleanup_strv_ char **a = log_journal_fields(LOG_LEVEL_ERROR, "../lib/x.c", 42, "fn", "boom");
    ok(streq_ptr(field(a, "MESSAGE"), "boom"), "MESSAGE is the message alone");
    ok(streq_ptr(field(a, "PRIORITY"), "3"), "an error is PRIORITY 3");
    ok(streq_ptr(field(a, "CODE_FILE"), "lib/x.c") && streq_ptr(field(a, "CODE_LINE"), "42") &&
           streq_ptr(field(a, "CODE_FUNC"), "fn"),
       "CODE_FILE (the source tree's path), CODE_LINE, CODE_FUNC");
    ok(field(a, "SYSLOG_IDENTIFIER") != NULL, "SYSLOG_IDENTIFIER");
    ok(!field(a, "TASK_ID") && !field(a, "PRINCIPAL"), "no task, no TASK_ID or PRINCIPAL");

    static const struct {
        enum log_level l;
        const char *prio;
    } prios[] = {{LOG_LEVEL_WARN, "4"}, {LOG_LEVEL_INFO, "6"}, {LOG_LEVEL_DEBUG, "7"}};
    for (size_t i = 0; i < ELEMENTSOF(prios); i++) {
        _cleanup_strv_ char **f = log_journal_fields(prios[i].l, NULL, 0, NULL, "m");
        ok(streq_ptr(field(f, "PRIORITY"), prios[i].prio), "%s is PRIORITY %s",
           log_level_to_string(prios[i].l), prios[i].prio);
        ok(!field(f, "CODE_FILE"), "log_to's events have no code location");
    }

    _cleanup_strv_ char **b =
        log_journal_fields(LOG_LEVEL_INFO, NULL, 0, NULL, "task " ID " RUNNING");
    ok(streq_ptr(field(b, "TASK_ID"), ID), "TASK_ID from a message that starts \"task <id>\"");
    _cleanup_strv_ char **c = log_journal_fields(LOG_LEVEL_INFO, NULL, 0, NULL, "task abc RUNNING");
    ok(!field(c, "TASK_ID"), "no TASK_ID from a word that is not an id");

    {
        LOG_CONTEXT_TASK("11111111-2222-3333-4444-555555555555", "alice");
        _cleanup_strv_ char **d = log_journal_fields(LOG_LEVEL_INFO, NULL, 0, NULL, "audit x");
        ok(streq_ptr(field(d, "TASK_ID"), "11111111-2222-3333-4444-555555555555") &&
               streq_ptr(field(d, "PRINCIPAL"), "alice"),
           "TASK_ID and PRINCIPAL from the thread's context");
        {
            LOG_CONTEXT_TASK(NULL, "bob");
            _cleanup_strv_ char **e =
                log_journal_fields(LOG_LEVEL_INFO, NULL, 0, NULL, "task " ID " QUEUED");
            ok(streq_ptr(field(e, "TASK_ID"), ID) && streq_ptr(field(e, "PRINCIPAL"), "bob"),
               "an inner context: its principal, the message's id");
        }
        _cleanup_strv_ char **g = log_journal_fields(LOG_LEVEL_INFO, NULL, 0, NULL, "x");
        ok(streq_ptr(field(g, "PRINCIPAL"), "alice"), "the outer context is back after the inner");
    }
    _cleanup_strv_ char **h = log_journal_fields(LOG_LEVEL_INFO, NULL, 0, NULL, "x");
    ok(!field(h, "PRINCIPAL") && !field(h, "TASK_ID"), "no context once its scope ends");
}

/* ---- a backend whose start() blocks until the test lets it go ---- */

static int gate[2] = {-1, -1};
static bool started;

static int stuck_init(const struct config *cfg, const struct backend_listener *l, void **ret,
                      struct error *err)
{
    *ret = NULL;
    return 0;
}
static void stuck_free(void *state)
{
}
static bool stuck_handles(const struct task *t)
{
    return true;
}
static int stuck_check(void *state, const struct task *t, struct error *err)
{
    return 0;
}
static int stuck_start(void *state, const struct backend_start *s, char **ret_handle,
                       struct error *err)
{
    __atomic_store_n(&started, true, __ATOMIC_SEQ_CST);
    char c;
    (void) !read(gate[0], &c, 1);
    return error_set(err, -EREMOTEIO, "let go");
}
static int stuck_cancel(void *state, const char *id, const char *handle, struct error *err)
{
    return -ENOENT;
}
static int stuck_recover(void *state, const struct backend_start *s, const char *handle,
                         struct error *err)
{
    return -ENOENT;
}
static const struct backend_ops stuck_ops = {
    .name = "process",
    .init = stuck_init,
    .free = stuck_free,
    .handles = stuck_handles,
    .check = stuck_check,
    .start = stuck_start,
    .cancel = stuck_cancel,
    .recover = stuck_recover,
};

static void test_alive(void)
{
    char tmpl[] = "/tmp/ocps-test-systemd-XXXXXX";
    const char *dir = mkdtemp(tmpl);
    if (!dir || pipe(gate) < 0) {
        ok(false, "a temporary dir and a pipe");
        return;
    }
    struct config cfg;
    config_init(&cfg);
    free(cfg.data_dir);
    cfg.data_dir = xstrdup(dir);
    config_resolve_capacity(&cfg);
    _cleanup_free_ char *tasks = xasprintf("%s/tasks", dir);
    _cleanup_free_ char *db = xasprintf("%s/db.sqlite", dir);
    (void) mkdir(tasks, 0700);
    _cleanup_error_ struct error err = ERROR_INIT;
    struct store *store = NULL;
    struct supervisor *sv = NULL;
    const struct backend_ops *const table[] = {&stuck_ops, NULL};
    if (!ok(store_open(db, &store, &err) == 0, "open the store") ||
        !ok(supervisor_new(&cfg, store, table, &sv, &err) == 0, "a supervisor")) {
        diag("%s", error_message(&err));
        goto out;
    }
    ok(supervisor_alive(sv, 5 * USEC_PER_SEC) == -ESRCH, "not alive before it starts");
    ok(supervisor_start(sv, &err) == 0, "it starts");
    ok(supervisor_alive(sv, 30 * USEC_PER_SEC) == 0, "alive: it comes round its loop");

    /* A queued task, which the loop hands to the backend that blocks. */
    struct task_record *r = xcalloc(1, sizeof(*r));
    uuid_v4(r->id);
    r->user = xstrdup("nobody");
    r->backend = xstrdup("process");
    r->state = TASK_QUEUED;
    r->exit_code = -1;
    r->created = now_realtime();
    r->spec = xstrdup("{\"user\":\"nobody\",\"cmd\":\"true\",\"cores\":1,\"memory\":\"64M\"}");
    r->stdout_path = xasprintf("%s/out", dir);
    r->stderr_path = xasprintf("%s/err", dir);
    r->principal = xstrdup("admin");
    ok(store_insert(store, r, &err) == 0, "a queued task in the store");
    task_record_free(r);
    supervisor_free(sv);
    sv = NULL;
    /* The next start finds it queued, and the loop starts it. */
    if (!ok(supervisor_new(&cfg, store, table, &sv, &err) == 0 && supervisor_start(sv, &err) == 0,
            "the supervisor starts again")) {
        diag("%s", error_message(&err));
        goto out;
    }
    /* Waits for the event, the start, within a bound that only a broken
     * supervisor reaches. */
    usec_t deadline = now_monotonic() + 60 * USEC_PER_SEC;
    while (!__atomic_load_n(&started, __ATOMIC_SEQ_CST) && now_monotonic() < deadline)
        (void) supervisor_alive(sv, 10 * USEC_PER_MSEC);
    if (!ok(__atomic_load_n(&started, __ATOMIC_SEQ_CST), "the loop hands the task to the backend"))
        goto out;
    ok(supervisor_alive(sv, 300 * USEC_PER_MSEC) == -ETIMEDOUT,
       "not alive while a backend's start() holds the loop");
    (void) !write(gate[1], "x", 1);
    ok(supervisor_alive(sv, 30 * USEC_PER_SEC) == 0, "alive again once it lets go");
out:
    supervisor_free(sv);
    store_close(store);
    config_done(&cfg);
    _cleanup_free_ char *rm = xasprintf("rm -rf '%s'", dir);
    (void) !system(rm);
}

int main(void)
{
    test_fields();
    test_alive();
    return tap_done();
}
