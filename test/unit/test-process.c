/*
 * test-process: the process backend driven directly, without the daemon:
 * real shims, real cgroups, real users. Checks who may run, outcomes and
 * their reasons, outputs, confinement, cancel (polite and forced), and
 * recovery of a shim by a new backend instance. Needs root.
 */
#include "process-harness.h"
#include "process/confine.h"
#include "process/shim.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static pid_t killed_shim;

static void test_check(void *state)
{
    struct error err = ERROR_INIT;
    struct task *t = parse("{\"user\":\"root\",\"cmd\":\"true\"}");
    int r = process_backend_ops.check(state, t, &err);
    ok(r == -EACCES, "root is refused: %s", error_message(&err));
    task_free(t);
    t = parse("{\"user\":\"no-such-user-ocps\",\"cmd\":\"true\"}");
    r = process_backend_ops.check(state, t, &err);
    ok(r == -EINVAL, "an unknown account is 400: %s", error_message(&err));
    task_free(t);
    t = parse("{\"user\":\"nobody\",\"cmd\":\"true\"}");
    ok(process_backend_ops.check(state, t, &err) == 0, "nobody may run tasks");
    /* denied_users is the policy's (policy-check.h), decided at submit; the
     * backend is the last line for uid 0 and gid 0 only. */
    strv_push(&cfg.denied_users, "nobody");
    ok(process_backend_ops.check(state, t, &err) == 0,
       "the backend leaves denied_users to the policy");
    cfg.denied_users = strv_free(cfg.denied_users);
    task_free(t);

    /* The last line holds whatever the policy let through: root under
     * another name, and a user of uid 0 handed to the privilege drop. */
    (void) system("userdel -f ocps-uid0-unit >/dev/null 2>&1");
    if (system("useradd -o -u 0 -N -g 0 --no-create-home --home-dir /nonexistent "
               "ocps-uid0-unit >/dev/null 2>&1") == 0) {
        t = parse("{\"user\":\"ocps-uid0-unit\",\"cmd\":\"true\"}");
        r = process_backend_ops.check(state, t, &err);
        ok(r == -EACCES, "a uid-0 alias is refused by the backend itself: %s", error_message(&err));
        task_free(t);
        (void) system("userdel -f ocps-uid0-unit >/dev/null 2>&1");
    } else
        skip("useradd -o -u 0 failed");
    pid_t pid = fork();
    if (pid == 0) {
        struct confine_user u = {.change = true, .uid = 0, .gid = 0};
        const char *step = "";
        int q = confine_apply(&u, false, &step);
        _exit(q == -EPERM && strstr(step, "refuse to run as uid 0") ? 0 : 1);
    }
    int status = 0;
    ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "the privilege drop refuses uid 0 (-EPERM, naming the step)");
    error_clear(&err);
}

static void test_outcomes(void *state)
{
    struct error err = ERROR_INIT;
    struct run r = {0};
    struct ev e;

    int rc =
        start(state, "{\"user\":\"nobody\",\"cmd\":\"echo out; echo err >&2; exit 3\"}", &r, &err);
    ok(rc == 0, "start a task: %s", error_message(&err));
    ok(wait_for(r.id, true, 30, &e), "it ends");
    ok(e.running && e.started > 0, "running() was reported first");
    ok(e.o.state == TASK_EXECUTOR_ERROR && e.o.exit_code == 3, "exit 3 is EXECUTOR_ERROR");
    ok(streq(e.reason, "exited with status 3"), "reason: %s", e.reason);
    ok(e.o.finished >= e.started, "finished after it started");
    _cleanup_free_ char *out = slurp(r.out), *er = slurp(r.err);
    ok(streq(out, "out\n") && streq(er, "err\n"), "stdout and stderr are captured");
    run_done(&r);

    r = (struct run){0};
    ok(start(state, "{\"user\":\"nobody\",\"cmd\":[\"/nonexistent/prog\",\"x\"]}", &r, &err) == 0,
       "start a task whose program does not exist");
    ok(wait_for(r.id, true, 30, &e), "it ends");
    ok(e.o.state == TASK_EXECUTOR_ERROR && strstr(e.reason, "exec /nonexistent/prog") &&
           strstr(e.reason, "No such file"),
       "reason: %s", e.reason);
    ok(!e.running, "it was never running");
    run_done(&r);

    r = (struct run){0};
    ok(start(state, "{\"user\":\"nobody\",\"cmd\":\"true\",\"workdir\":\"/nonexistent\"}", &r,
             &err) == 0,
       "start a task with a missing workdir");
    ok(wait_for(r.id, true, 30, &e), "it ends");
    ok(e.o.state == TASK_EXECUTOR_ERROR && strstr(e.reason, "workdir /nonexistent"), "reason: %s",
       e.reason);
    run_done(&r);

    r = (struct run){0};
    ok(start(state, "{\"user\":\"nobody\",\"cmd\":\"true\",\"stdout\":\"/root/ocps-forbidden\"}",
             &r, &err) == 0,
       "start a task writing its stdout where its user may not");
    ok(wait_for(r.id, true, 30, &e), "it ends");
    ok(e.o.state == TASK_EXECUTOR_ERROR && strstr(e.reason, "stdout /root/ocps-forbidden") &&
           strstr(e.reason, "Permission denied"),
       "reason: %s", e.reason);
    ok(access("/root/ocps-forbidden", F_OK) < 0, "and nothing was written there");
    run_done(&r);
    error_clear(&err);
}

static void test_environment(void *state)
{
    struct error err = ERROR_INIT;
    struct run r = {0};
    struct ev e;
    _cleanup_free_ char *user_out = xasprintf("/tmp/ocps-test-process-%d.out", getpid());
    _cleanup_free_ char *json = xasprintf(
        "{\"user\":\"nobody\",\"stdout\":\"%s\",\"env\":{\"GREETING\":\"hello\"},"
        "\"workdir\":\"/tmp\",\"cmd\":[\"sh\",\"-c\",\"echo $GREETING $OCPS_TASK_ID $USER $(pwd); "
        "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status\"]}",
        user_out);

    unlink(user_out);
    ok(start(state, json, &r, &err) == 0, "start a task with env, workdir and its own stdout");
    ok(wait_for(r.id, true, 30, &e) && e.o.state == TASK_COMPLETE, "it completes: %s", e.reason);
    _cleanup_free_ char *out = slurp(user_out);
    _cleanup_free_ char *first = xasprintf("hello %s nobody /tmp\n", r.id);
    ok(startswith(out, first), "env, OCPS_TASK_ID, USER and workdir are set: %s", out);
    ok(strstr(out, "CapBnd:\t0000000000000000") != NULL, "the bounding set is empty");
    ok(strstr(out, "CapAmb:\t0000000000000000") != NULL, "no ambient capabilities");
    ok(strstr(out, "CapEff:\t0000000000000000") != NULL, "no effective capabilities");
    ok(strstr(out, "NoNewPrivs:\t1") != NULL, "no new privileges");
    struct stat st;
    struct passwd *pw = getpwnam("nobody");
    ok(stat(user_out, &st) == 0 && pw && st.st_uid == pw->pw_uid,
       "the user's stdout file belongs to the user");
    unlink(user_out);
    run_done(&r);
    error_clear(&err);
}

static void test_cancel(void *state)
{
    struct error err = ERROR_INIT;
    struct run r = {0}, r2 = {0};
    struct ev e;

    ok(start(state, "{\"user\":\"nobody\",\"cmd\":\"sleep 100\"}", &r, &err) == 0,
       "start a sleeper");
    ok(wait_for(r.id, false, 30, &e) && e.running, "it runs");
    usec_t t0 = now_monotonic();
    ok(process_backend_ops.cancel(state, r.id, NULL, &err) == 0, "cancel it");
    ok(wait_for(r.id, true, 30, &e), "it ends");
    ok(e.o.state == TASK_CANCELED && streq(e.reason, "cancelled by request"), "CANCELED: %s",
       e.reason);
    ok(now_monotonic() - t0 < 900 * USEC_PER_MSEC, "SIGTERM ended it before the grace period");

    ok(start(state, "{\"user\":\"nobody\",\"cmd\":\"trap '' TERM; sleep 100 & sleep 100\"}", &r2,
             &err) == 0,
       "start a tree that ignores SIGTERM");
    ok(wait_for(r2.id, false, 30, &e) && e.running, "it runs");
    usleep(200000);
    t0 = now_monotonic();
    ok(process_backend_ops.cancel(state, r2.id, NULL, &err) == 0, "cancel it");
    ok(wait_for(r2.id, true, 30, &e), "it ends");
    usec_t took = now_monotonic() - t0;
    ok(e.o.state == TASK_CANCELED, "CANCELED: %s", e.reason);
    ok(took >= 900 * USEC_PER_MSEC, "SIGKILL came after the 1 s grace period (%lld ms)",
       (long long) (took / USEC_PER_MSEC));
    ok(process_backend_ops.cancel(state, r2.id, NULL, &err) == -ENOENT,
       "cancelling a task whose end was reported is -ENOENT (the end stands)");
    run_done(&r);
    run_done(&r2);
    error_clear(&err);
}

/* One shim runs them all, each with its own outcome. */
/* Threads of the process whose pid is in text. */
static unsigned threads_of(const char *pid)
{
    _cleanup_free_ char *p = xasprintf("/proc/%s/status", pid);
    _cleanup_free_ char *data = NULL;
    if (read_file(p, 1 << 16, &data, NULL) < 0)
        return 0;
    const char *t = strstr(data, "\nThreads:");
    return t ? (unsigned) strtoul(t + 9, NULL, 10) : 0;
}

static void test_one_shim(void *state)
{
    struct error err = ERROR_INIT;
    struct run r[24] = {0};
    bool started = true, same_shim = true, outcomes = true, outputs = true, once = true;
    usec_t t0 = now_monotonic();

    /* Each leaves a sleeper behind when it exits: the shim ends those too. */
    for (size_t i = 0; i < ELEMENTSOF(r); i++) {
        _cleanup_free_ char *json =
            xasprintf("{\"user\":\"nobody\",\"cmd\":\"sleep 0.%zu; echo task %zu; sleep 30 & "
                      "exit %zu\"}",
                      i % 3, i, i);
        started &= start(state, json, &r[i], &err) == 0;
        same_shim &= streq(r[i].handle, r[0].handle);
    }
    ok(started, "start %zu tasks at once: %s", ELEMENTSOF(r), error_message(&err));
    ok(same_shim && !isempty(r[0].handle), "one shim (pid %s) has them all", r[0].handle);
    for (size_t i = 0; i < ELEMENTSOF(r); i++) {
        struct ev e;
        _cleanup_free_ char *want = xasprintf("task %zu\n", i), *out = NULL;
        bool good = wait_for(r[i].id, true, 30, &e) && e.running && e.o.exit_code == (int) i &&
                    e.o.state == (i ? TASK_EXECUTOR_ERROR : TASK_COMPLETE);
        if (!good)
            diag("task %zu: %s (exit %d)", i, e.reason, e.o.exit_code);
        outcomes &= good;
        once &= e.n_running == 1;
        out = slurp(r[i].out);
        outputs &= streq(out, want);
        run_done(&r[i]);
    }
    ok(outcomes, "each ended with its own exit status");
    ok(once, "each was reported running once");
    ok(outputs, "each wrote its own stdout");
    ok(now_monotonic() - t0 < 20 * USEC_PER_SEC,
       "the sleepers they left were killed, not waited for");

    /* Starts one after another reuse the spawner threads the burst made. */
    unsigned before = threads_of(r[0].handle);
    bool fine = true;
    for (int i = 0; i < 6; i++) {
        struct run s = {0};
        struct ev e;
        fine &= start(state, "{\"user\":\"nobody\",\"cmd\":[\"true\"]}", &s, &err) == 0 &&
                wait_for(s.id, true, 30, &e) && e.o.state == TASK_COMPLETE;
        run_done(&s);
    }
    unsigned after = threads_of(r[0].handle);
    ok(fine && before > 1 && after <= before,
       "six more starts make no new threads in the shim (%u, then %u)", before, after);
    error_clear(&err);
}

/* A child that blocks before its exec (here opening a FIFO nobody reads, as
 * its user) holds up no other task, and can still be cancelled. */
static void test_blocked_start(void *state)
{
    struct error err = ERROR_INIT;
    struct run r = {0}, r2 = {0};
    struct ev e;
    _cleanup_free_ char *fifo = xasprintf("/tmp/ocps-test-process-%d.fifo", getpid());

    (void) unlink(fifo);
    ok(mkfifo(fifo, 0666) == 0 && chmod(fifo, 0666) == 0, "a FIFO nobody reads");
    _cleanup_free_ char *json =
        xasprintf("{\"user\":\"nobody\",\"cmd\":\"echo x\",\"stdout\":\"%s\"}", fifo);
    ok(start(state, json, &r, &err) == 0, "start a task whose stdout is that FIFO");
    usleep(300000);
    ok(start(state, "{\"user\":\"nobody\",\"cmd\":\"echo next\"}", &r2, &err) == 0,
       "start another");
    ok(wait_for(r2.id, true, 10, &e) && e.o.state == TASK_COMPLETE,
       "the other runs to its end meanwhile: %s", e.reason);
    ok(!wait_for(r.id, false, 0, NULL), "the blocked one is not running");
    ok(process_backend_ops.cancel(state, r.id, NULL, &err) == 0, "cancel the blocked one");
    ok(wait_for(r.id, true, 30, &e) && e.o.state == TASK_CANCELED, "it ends CANCELED: %s",
       e.reason);
    (void) unlink(fifo);
    run_done(&r);
    run_done(&r2);
    error_clear(&err);
}

/* start(), with an output cap and an admission time. */
static int start_capped(void *state, const char *json, uint64_t output_limit, usec_t admitted,
                        struct run *r, struct error *err)
{
    uuid_v4(r->id);
    r->dir = xasprintf("%s/%s", data_dir, r->id);
    mkdir(r->dir, 0700);
    r->out = xasprintf("%s/stdout", r->dir);
    r->err = xasprintf("%s/stderr", r->dir);
    r->task = parse(json);
    struct backend_start s = {
        .id = r->id,
        .task = r->task,
        .task_dir = r->dir,
        .stdout_path = r->task->stdout_path ?: r->out,
        .stderr_path = r->task->stderr_path ?: r->err,
        .admitted = admitted,
        .output_limit = output_limit,
    };
    _cleanup_free_ char *handle = NULL;
    int rc = process_backend_ops.start(state, &s, &handle, err);
    snprintf(r->handle, sizeof(r->handle), "%s", handle ? handle : "");
    return rc;
}

/* Waits until the process is gone (the shim reaps what its tasks leave). */
static bool gone(pid_t pid)
{
    for (int i = 0; i < 1000; i++, usleep(10000))
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
    return false;
}

/* A pid a task wrote into a file, once it is there. */
static pid_t read_pid(const char *path)
{
    for (int i = 0; i < 1000; i++, usleep(10000)) {
        _cleanup_free_ char *data = slurp(path);
        if (atoi(data) > 0)
            return (pid_t) atoi(data);
    }
    return 0;
}

#define CAP (1ULL << 20)

/* Past its output cap (stdout plus stderr) a task is killed, tree and all. */
static void test_output_cap(void *state)
{
    struct error err = ERROR_INIT;
    struct run r = {0};
    struct ev e;
    _cleanup_free_ char *pid_file = xasprintf("/tmp/ocps-test-process-%d.pid", getpid());
    _cleanup_free_ char *json =
        xasprintf("{\"user\":\"nobody\",\"cmd\":\"sleep 300 & echo $! > %s; yes\"}", pid_file);

    (void) unlink(pid_file);
    ok(start_capped(state, json, CAP, 0, &r, &err) == 0, "start a task that writes for ever: %s",
       error_message(&err));
    pid_t sleeper = read_pid(pid_file);
    ok(wait_for(r.id, true, 60, &e), "it ends");
    ok(e.o.state == TASK_EXECUTOR_ERROR && streq(e.reason, "killed: output limit 1 MiB exceeded"),
       "EXECUTOR_ERROR, past its 1 MiB cap: %s", e.reason);
    struct stat st;
    ok(stat(r.out, &st) == 0 && (uint64_t) st.st_size > CAP, "its stdout passed the cap (%lld)",
       (long long) st.st_size);
    ok(sleeper > 0 && gone(sleeper), "the rest of its tree was killed (%d)", (int) sleeper);
    (void) unlink(pid_file);
    run_done(&r);

    r = (struct run){0};
    ok(start_capped(state, "{\"user\":\"nobody\",\"cmd\":\"head -c 500000 /dev/zero\"}", CAP, 0, &r,
                    &err) == 0 &&
           wait_for(r.id, true, 30, &e),
       "a task writing under its cap runs");
    ok(e.o.state == TASK_COMPLETE, "and completes: %s", e.reason);
    run_done(&r);

    r = (struct run){0};
    ok(start_capped(state,
                    "{\"user\":\"nobody\",\"cmd\":\"head -c 700000 /dev/zero; "
                    "head -c 700000 /dev/zero >&2\"}",
                    CAP, 0, &r, &err) == 0 &&
           wait_for(r.id, true, 30, &e),
       "a task writing 700 kB to stdout and as much to stderr runs");
    ok(e.o.state == TASK_EXECUTOR_ERROR && streq(e.reason, "killed: output limit 1 MiB exceeded"),
       "the cap counts both: %s", e.reason);
    run_done(&r);

    /* The task's own file, opened as its user, counts the same. */
    _cleanup_free_ char *own = xasprintf("/tmp/ocps-test-process-%d.own", getpid());
    _cleanup_free_ char *json_own = xasprintf(
        "{\"user\":\"nobody\",\"cmd\":\"yes\",\"stdout\":\"%s\",\"stderr\":\"%s\"}", own, own);
    (void) unlink(own);
    r = (struct run){0};
    ok(start_capped(state, json_own, CAP, 0, &r, &err) == 0 && wait_for(r.id, true, 60, &e),
       "a task writing for ever to a file it named runs");
    ok(e.o.state == TASK_EXECUTOR_ERROR && streq(e.reason, "killed: output limit 1 MiB exceeded"),
       "and is killed past its cap: %s", e.reason);
    (void) unlink(own);
    run_done(&r);
    error_clear(&err);
}

/* The default output files are the task's user's; its directory stays the daemon's. */
static void test_output_owner(void *state)
{
    struct error err = ERROR_INIT;
    struct run r = {0};
    struct ev e;
    struct passwd *pw = getpwnam("nobody");
    struct stat out, er, dir;

    ok(start(state, "{\"user\":\"nobody\",\"cmd\":\"echo out; echo err >&2\"}", &r, &err) == 0 &&
           wait_for(r.id, true, 30, &e) && e.o.state == TASK_COMPLETE,
       "a task with the default outputs completes: %s", e.reason);
    ok(pw && stat(r.out, &out) == 0 && out.st_uid == pw->pw_uid && out.st_gid == pw->pw_gid,
       "its stdout belongs to its user (%d:%d)", (int) out.st_uid, (int) out.st_gid);
    ok(pw && stat(r.err, &er) == 0 && er.st_uid == pw->pw_uid && er.st_gid == pw->pw_gid,
       "its stderr belongs to its user (%d:%d)", (int) er.st_uid, (int) er.st_gid);
    ok(stat(r.dir, &dir) == 0 && dir.st_uid == 0 && (dir.st_mode & 07777) == 0700,
       "its directory is still root's, 0700 (%o)", dir.st_mode & 07777);
    _cleanup_free_ char *text = slurp(r.out);
    ok(streq(text, "out\n"), "and the output is there: %s", text);
    run_done(&r);
    error_clear(&err);
}

/* Walltime counts from admission: a child blocked before its exec (a FIFO
 * nobody reads as stdout) is ended by it, as walltime. */
static void test_walltime_before_exec(void *state)
{
    struct error err = ERROR_INIT;
    struct run r = {0};
    struct ev e;
    _cleanup_free_ char *fifo = xasprintf("/tmp/ocps-test-process-%d.wfifo", getpid());

    (void) unlink(fifo);
    ok(mkfifo(fifo, 0666) == 0 && chmod(fifo, 0666) == 0, "a FIFO nobody reads");
    _cleanup_free_ char *json = xasprintf(
        "{\"user\":\"nobody\",\"cmd\":\"echo x\",\"stdout\":\"%s\",\"walltime\":\"1s\"}", fifo);
    ok(start_capped(state, json, 0, now_realtime(), &r, &err) == 0,
       "start a task with a 1 s walltime whose stdout is that FIFO");
    ok(wait_for(r.id, true, 30, &e), "it ends without anyone reading the FIFO");
    ok(e.o.state == TASK_EXECUTOR_ERROR && streq(e.reason, "killed: walltime limit 1 s exceeded"),
       "by its walltime: %s", e.reason);
    (void) unlink(fifo);
    run_done(&r);
    error_clear(&err);
}

/* A shim killed from outside: its tasks end as lost, with nothing left
 * running, and the next task gets a new shim. */
static void test_shim_killed(void *state)
{
    struct error err = ERROR_INIT;
    struct run r = {0}, r2 = {0};
    struct ev e;

    _cleanup_free_ char *pid_path = xasprintf("/tmp/ocps-test-process-%d.sleeper", getpid());
    _cleanup_free_ char *json =
        xasprintf("{\"user\":\"nobody\",\"cmd\":\"sleep 300 & echo $! > %s; wait\"}", pid_path);
    ok(start(state, json, &r, &err) == 0, "start a task that forks a sleeper");
    ok(wait_for(r.id, false, 30, &e) && e.running, "it runs");
    /* The shell creates the file before it writes the pid: wait for the pid. */
    pid_t sleeper = 0;
    for (int i = 0; i < 1000 && sleeper <= 0; i++) {
        _cleanup_free_ char *data = NULL;
        if (read_file(pid_path, 32, &data, NULL) >= 0)
            sleeper = (pid_t) atoi(data);
        if (sleeper <= 0)
            usleep(10000);
    }
    pid_t shim = killed_shim = (pid_t) atoi(r.handle);
    ok(shim > 1 && kill(shim, SIGKILL) == 0, "kill -9 its shim %d", (int) shim);
    ok(wait_for(r.id, true, 30, &e), "the task ends");
    ok(e.o.state == TASK_SYSTEM_ERROR && strstr(e.reason, "shim ended"), "as SYSTEM_ERROR: %s",
       e.reason);
    bool gone = false;
    for (int i = 0; i < 200 && sleeper > 0 && !gone; i++, usleep(10000))
        gone = kill(sleeper, 0) < 0 && errno == ESRCH;
    ok(gone, "its process tree was killed (sleeper %d)", (int) sleeper);
    (void) unlink(pid_path);
    ok(start(state, "{\"user\":\"nobody\",\"cmd\":\"echo again\"}", &r2, &err) == 0,
       "the next task starts");
    ok(wait_for(r2.id, true, 30, &e) && e.o.state == TASK_COMPLETE, "and completes: %s", e.reason);
    ok(!streq(r2.handle, r.handle), "in a new shim (%s, was %s)", r2.handle, r.handle);
    run_done(&r);
    run_done(&r2);
    error_clear(&err);
}

static void test_recover(void **state)
{
    struct error err = ERROR_INIT;
    struct run r = {0};
    struct ev e;

    ok(start(*state, "{\"user\":\"nobody\",\"cmd\":\"sleep 1; echo survived\"}", &r, &err) == 0,
       "start a task");
    ok(wait_for(r.id, false, 30, &e) && e.running, "it runs");
    /* The daemon goes away; the shim does not. */
    process_backend_ops.free(*state);
    *state = NULL;
    ok(process_backend_ops.init(&cfg, &listener, state, &err) == 0, "a new backend instance");
    _cleanup_free_ char *stale = xasprintf("%s/shims/%d.sock", data_dir, (int) killed_shim);
    ok(killed_shim > 0 && access(stale, F_OK) < 0, "it removed the socket of the killed shim");
    ev_forget(r.id, true, false);
    struct backend_start s = {r.id, r.task, r.dir, r.out, r.err};
    int rc = process_backend_ops.recover(*state, &s, NULL, &err);
    ok(rc == 0, "recover the running task: %s", error_message(&err));
    ok(wait_for(r.id, true, 30, &e), "it ends");
    ok(e.running, "recovery reported it running");
    ok(e.o.state == TASK_COMPLETE, "and its real outcome: %s", e.reason);
    _cleanup_free_ char *out = slurp(r.out);
    ok(streq(out, "survived\n"), "its output is complete");

    /* Recovering it again after it ended gives the recorded outcome, once more. */
    ev_forget(r.id, false, true);
    ok(process_backend_ops.recover(*state, &s, NULL, &err) == 0, "recover an ended task");
    ok(wait_for(r.id, true, 5, &e) && e.o.state == TASK_COMPLETE, "its outcome is read back");

    struct run never = {0};
    uuid_v4(never.id);
    never.dir = xasprintf("%s/%s", data_dir, never.id);
    mkdir(never.dir, 0700);
    s = (struct backend_start){never.id, r.task, never.dir, r.out, r.err};
    ok(process_backend_ops.recover(*state, &s, NULL, &err) == -ENOENT,
       "a task that never started is -ENOENT (the supervisor starts it)");
    run_done(&never);
    run_done(&r);
    error_clear(&err);
}

/* The shim dies while no daemon watches, with a command that had not yet
 * exec'd: it may run after all, so a new daemon must not start it again. */
static void test_no_second_run(void **state)
{
    struct error err = ERROR_INIT;
    struct run r = {0};
    struct ev e;
    _cleanup_free_ char *fifo = xasprintf("/tmp/ocps-test-process-%d.fifo2", getpid());
    _cleanup_free_ char *ran = xasprintf("/tmp/ocps-test-process-%d.ran", getpid());

    (void) unlink(fifo);
    (void) unlink(ran);
    ok(mkfifo(fifo, 0666) == 0 && chmod(fifo, 0666) == 0, "a FIFO nobody reads yet");
    _cleanup_free_ char *json =
        xasprintf("{\"user\":\"nobody\",\"cmd\":\"echo ran >> %s\",\"stdout\":\"%s\"}", ran, fifo);
    ok(start(*state, json, &r, &err) == 0, "start a task that blocks before its exec");
    usleep(300000);
    process_backend_ops.free(*state); /* the daemon goes */
    *state = NULL;
    pid_t shim = (pid_t) atoi(r.handle);
    ok(shim > 1 && kill(shim, SIGKILL) == 0, "then its shim is killed (%d)", (int) shim);
    int rd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* the command goes on and runs */
    bool did_run = false;
    for (int i = 0; i < 500 && !did_run; i++, usleep(10000)) {
        _cleanup_free_ char *so_far = slurp(ran);
        did_run = !isempty(so_far);
    }
    ok(did_run, "the orphaned command ran");
    ok(process_backend_ops.init(&cfg, &listener, state, &err) == 0, "a new backend instance");
    struct backend_start s = {r.id, r.task, r.dir, r.out, r.err};
    int rc = process_backend_ops.recover(*state, &s, NULL, &err);
    ok(rc == 0, "recover does not offer it for a second start (%d)", rc);
    ok(wait_for(r.id, true, 10, &e) && e.o.state == TASK_SYSTEM_ERROR, "it is reported lost: %s",
       e.reason);
    _cleanup_free_ char *runs = slurp(ran);
    ok(streq(runs, "ran\n"), "it ran once");
    if (rd >= 0)
        close(rd);
    (void) unlink(fifo);
    (void) unlink(ran);
    run_done(&r);
    error_clear(&err);
}

/* What a restarted daemon reads of a task's shim: from shim.lock, or from
 * the files shims before 2026-11 wrote. */
static void test_lock_record(void)
{
    _cleanup_free_ char *dir = xasprintf("%s/lock-record", data_dir);
    _cleanup_free_ char *lock = xasprintf("%s/shim.lock", dir);
    pid_t pid = 0;
    usec_t started = 1;
    ok(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    ok(shim_read_pid(dir, &pid) == -ENOENT && shim_read_started(dir, &started) == -ENOENT,
       "no lock, no pid, never started");

    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ok(fd >= 0 && shim_lock_set_pid(fd, 4242) == 0, "the daemon writes the shim's pid");
    ok(shim_read_pid(dir, &pid) == 0 && pid == 4242, "read back: %d", (int) pid);
    ok(shim_read_started(dir, &started) == -ENOENT, "no started line yet");
    const char line[] = "started 1795445970881771\n";
    ok(pwrite(fd, line, sizeof(line) - 1, SHIM_LOCK_STARTED_AT) == sizeof(line) - 1,
       "the shim adds its started line");
    ok(shim_read_started(dir, &started) == 0 && started == 1795445970881771LL, "started read back");
    ok(shim_lock_set_pid(fd, 7) == 0 && shim_read_pid(dir, &pid) == 0 && pid == 7 &&
           shim_read_started(dir, &started) == 0,
       "a new shim's pid leaves the started line alone");
    close(fd);

    ok(truncate(lock, 0) == 0, "an empty lock, as an older shim held it");
    _cleanup_free_ char *old_pid = xasprintf("%s/shim.pid", dir);
    _cleanup_free_ char *old_started = xasprintf("%s/started", dir);
    ok(write_file_replace(old_pid, "1234", 4, 0600) == 0 &&
           write_file_replace(old_started, "99", 2, 0600) == 0,
       "shim.pid and started, as older shims wrote them");
    ok(shim_read_pid(dir, &pid) == 0 && pid == 1234, "the old pid file is read");
    ok(shim_read_started(dir, &started) == 0 && started == 99, "the old started file is read");
    rm_rf(dir);
}

int main(void)
{
    void *state = harness_init();
    if (!ok(state, "a backend instance"))
        return tap_done();
    test_lock_record();
    test_check(state);
    test_outcomes(state);
    test_environment(state);
    test_cancel(state);
    test_one_shim(state);
    test_blocked_start(state);
    test_output_cap(state);
    test_output_owner(state);
    test_walltime_before_exec(state);
    test_shim_killed(state);
    test_recover(&state);
    test_no_second_run(&state);
    harness_done(state);
    return tap_done();
}
