/*
 * test-shim: the shim's protocol with its daemons, between a real
 * ocps-shim and the real process backend (see backends/process/shim.h):
 * a client that stops reading is dropped once its queue passes the bound
 * while the others are served; a daemon whose own connection is dropped
 * reconnects and still hears every end, once; and shims of other
 * protocols: an older one is followed, one started under a daemon of
 * another protocol gets no task, a newer one's tasks are ended, not left
 * unwatched. Needs root.
 */
#include "process-harness.h"
#include "process/shim.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* A task that runs until the file exists, then says what. */
static char *json_until(const char *file, const char *what)
{
    return xasprintf("{\"user\":\"nobody\",\"cmd\":\"while [ ! -e %s ]; do sleep 0.05; done; "
                     "echo %s\"}",
                     file, what);
}

static void touch(const char *path)
{
    (void) write_file_replace(path, "", 0, 0644);
}

/* The shim's resident memory, in KiB; -1 if it cannot be read. */
static long rss_kib(pid_t pid)
{
    _cleanup_free_ char *p = xasprintf("/proc/%d/status", (int) pid);
    _cleanup_free_ char *data = NULL;
    if (read_file(p, 1 << 16, &data, NULL) < 0)
        return -1;
    const char *l = strstr(data, "\nVmRSS:");
    return l ? strtol(l + 7, NULL, 10) : -1;
}

/* How many lines of the shims' log contain what. */
static unsigned log_lines(const char *what)
{
    _cleanup_free_ char *path = xasprintf("%s/shims/shim.log", data_dir);
    _cleanup_free_ char *log = slurp(path);
    unsigned n = 0;
    for (const char *p = log; (p = strstr(p, what)); p++)
        n++;
    return n;
}

/* Waits until the process is gone (reaped, if it was a child of ours). */
static bool wait_gone(pid_t pid, int seconds)
{
    for (int i = 0; i < seconds * 100; i++, usleep(10000))
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
    return false;
}

/* Starts the task and waits until it runs; says why not. */
static bool start_running(void *state, const char *json, struct run *r)
{
    struct error err = ERROR_INIT;
    struct ev e;
    int rc = start(state, json, r, &err);
    if (rc < 0)
        diag("start: %s", error_message(&err));
    error_clear(&err);
    return rc == 0 && wait_for(r->id, false, 30, &e) && e.running;
}

static int connect_to_shim(pid_t pid)
{
    _cleanup_free_ char *path = xasprintf("%s/shims/%d.sock", data_dir, (int) pid);
    _cleanup_close_ int dirfd = -1;
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || shim_sockaddr(path, &sa, &dirfd) < 0 ||
        connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* A client that asks and never reads its answers: the shim drops it once
 * its queue would pass SHIM_QUEUE_MAX, stays bounded, and serves the
 * daemon meanwhile. */
static void test_slow_client(void *state)
{
    struct error err = ERROR_INIT;
    struct run keep = {0}, during[4] = {0}, after = {0};
    struct ev e;

    ok(start_running(state, "{\"user\":\"nobody\",\"cmd\":\"sleep 300\"}", &keep), "a task runs");
    pid_t shim = (pid_t) atoi(keep.handle);
    _cleanup_close_ int fd = connect_to_shim(shim);
    ok(fd >= 0, "a second client connects to shim %d", (int) shim);
    long before = rss_kib(shim);

    /* Each "W <unknown id>" is answered "E <id>", as long: 4 KiB a reply. */
    char msg[SHIM_MSG_MAX];
    memset(msg, 'x', sizeof(msg));
    msg[0] = 'W';
    msg[1] = ' ';
    size_t sent = 0, n_during = 0;
    bool dropped = false, started = true;
    while (sent < 12 * (size_t) SHIM_QUEUE_MAX) {
        if (send(fd, msg, sizeof(msg), MSG_NOSIGNAL) < 0) {
            dropped = errno == EPIPE;
            break;
        }
        sent += sizeof(msg);
        /* Tasks come and go while the client falls behind. */
        if (sent % (SHIM_QUEUE_MAX / 2) < sizeof(msg) && n_during < ELEMENTSOF(during))
            started &= start(state, "{\"user\":\"nobody\",\"cmd\":\"echo during\"}",
                             &during[n_during++], &err) == 0;
    }
    long grown = rss_kib(shim) - before;
    ok(dropped, "the shim stops taking requests from it (EPIPE after %zu MiB of requests)",
       sent >> 20);
    /* The queue, and what a sanitizer's allocator keeps of freed blocks; a
     * queue of every answer would be 12 times the bound. */
    ok(before > 0 && grown < 3 * (long) (SHIM_QUEUE_MAX >> 10),
       "the shim stays bounded: %ld KiB more (bound %u KiB)", grown, SHIM_QUEUE_MAX >> 10);
    struct timeval tv = {.tv_sec = 30};
    (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n;
    char buf[SHIM_MSG_MAX];
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
        ;
    ok(n == 0, "and closes its connection once it has read what was sent");

    bool ended = started && n_during > 0;
    for (size_t i = 0; i < n_during; i++) {
        ended &=
            wait_for(during[i].id, true, 30, &e) && e.o.state == TASK_COMPLETE && e.n_ended == 1;
        run_done(&during[i]);
    }
    ok(ended, "the %zu tasks started meanwhile ended, each reported once", n_during);
    ok(start(state, "{\"user\":\"nobody\",\"cmd\":\"echo after\"}", &after, &err) == 0 &&
           wait_for(after.id, true, 30, &e) && e.o.state == TASK_COMPLETE,
       "a task started after runs: %s", e.reason);
    ok(streq(after.handle, keep.handle), "in the same shim (%s)", after.handle);
    ok(process_backend_ops.cancel(state, keep.id, NULL, &err) == 0 &&
           wait_for(keep.id, true, 30, &e) && e.o.state == TASK_CANCELED,
       "the first task is still the shim's to cancel: %s", e.reason);
    run_done(&keep);
    run_done(&after);
    error_clear(&err);
}

/* The daemon's own monitor stops reading (its listener blocks): the shim
 * drops its connection, and the daemon reconnects and hears every end. */
static void test_dropped_daemon(void **state)
{
    struct error err = ERROR_INIT;
    struct run keep = {0}, next = {0};
    struct run *runs = xcalloc(2000, sizeof(*runs));
    struct ev e;
    const char *drop_line = "it was the daemon that started us";
    unsigned drops = log_lines(drop_line);

    /* A bound small enough for a test to reach (only the socket's own buffer
     * is left), in a shim of a new backend instance. */
    process_backend_ops.free(*state);
    *state = NULL;
    setenv("OCPS_TEST_SHIM_QUEUE_MAX", "1", 1);
    int rc = process_backend_ops.init(&cfg, &listener, state, &err);
    ok(rc == 0, "a new backend instance: %s", error_message(&err));
    ok(start_running(*state, "{\"user\":\"nobody\",\"cmd\":\"sleep 300\"}", &keep), "a task runs");
    pid_t shim = (pid_t) atoi(keep.handle);

    gate_set(true);
    size_t n = 0;
    bool started = true;
    while (n < 2000 && log_lines(drop_line) == drops) {
        started &= start(*state, "{\"user\":\"nobody\",\"cmd\":[\"true\"]}", &runs[n], &err) == 0;
        n++;
    }
    ok(started, "%zu tasks started while the daemon does not read: %s", n, error_message(&err));
    ok(log_lines(drop_line) == drops + 1, "the shim dropped the daemon's connection");
    rc = start(*state, "{\"user\":\"nobody\",\"cmd\":\"echo next\"}", &next, &err);
    ok(rc == 0, "a task started after the drop: %s", error_message(&err));
    ok(atoi(next.handle) > 0 && atoi(next.handle) != shim, "goes to a new shim (%s, was %d)",
       next.handle, (int) shim);
    gate_set(false);

    bool once = true, complete = true;
    for (size_t i = 0; i < n; i++) {
        bool ended = wait_for(runs[i].id, true, 60, &e);
        complete &= ended && e.o.state == TASK_COMPLETE;
        once &= ended && e.n_ended == 1 && e.n_running <= 1;
        if (!(ended && e.o.state == TASK_COMPLETE))
            diag("task %zu: %s", i, ended ? e.reason : "not ended");
        run_done(&runs[i]);
    }
    ok(complete, "the daemon heard the end of each of the %zu tasks, COMPLETE", n);
    ok(once, "each end (and running) once");
    ok(wait_for(next.id, true, 30, &e) && e.o.state == TASK_COMPLETE, "and of the next: %s",
       e.reason);
    ok(wait_for(keep.id, false, 0, &e) && !e.ended && e.n_running == 1,
       "the first task still runs, reported running once (%d)", e.n_running);
    ok(process_backend_ops.cancel(*state, keep.id, NULL, &err) == 0 &&
           wait_for(keep.id, true, 30, &e) && e.o.state == TASK_CANCELED && e.n_ended == 1,
       "it is cancelled through the new connection: %s", e.reason);
    ok(wait_gone(shim, 30), "the old shim leaves after its last task, and is reaped");
    run_done(&keep);
    run_done(&next);
    free(runs);
    unsetenv("OCPS_TEST_SHIM_QUEUE_MAX");
    error_clear(&err);
}

/* A new backend instance, as a daemon of the given protocol (NULL: ours). */
static void daemon_as(void **state, const char *protocol)
{
    struct error err = ERROR_INIT;
    if (*state)
        process_backend_ops.free(*state);
    *state = NULL;
    if (protocol)
        setenv("OCPS_TEST_SHIM_PROTOCOL", protocol, 1);
    else
        unsetenv("OCPS_TEST_SHIM_PROTOCOL");
    int rc = process_backend_ops.init(&cfg, &listener, state, &err);
    ok(rc == 0, "a backend instance of protocol %s: %s", protocol ?: "ours", error_message(&err));
    error_clear(&err);
}

static int recover(void *state, struct run *r, struct error *err)
{
    struct backend_start s = {r->id, r->task, r->dir, r->out, r->err};
    return process_backend_ops.recover(state, &s, NULL, err);
}

static void test_protocols(void **state)
{
    struct error err = ERROR_INIT;
    struct run old = {0}, mine = {0}, refused = {0}, again = {0}, newer = {0};
    struct ev e;
    /* Where the task's user can see it (the data dir is 0700). */
    _cleanup_free_ char *go = xasprintf("/tmp/ocps-test-shim-%d.go", getpid());
    _cleanup_free_ char *pid_file = xasprintf("/tmp/ocps-test-shim-%d.sleeper", getpid());
    /* The protocol after ours, and how the refusals name both. */
    _cleanup_free_ char *next = xasprintf("%d", SHIM_PROTOCOL + 1);
    _cleanup_free_ char *speaks_next = xasprintf("speaks protocol %s", next);
    _cleanup_free_ char *ours = xasprintf("this daemon protocol %d", SHIM_PROTOCOL);

    /* A shim from before the hello, still running a task after an upgrade. */
    (void) unlink(go);
    daemon_as(state, "0");
    _cleanup_free_ char *until = json_until(go, "old");
    ok(start_running(*state, until, &old),
       "a daemon and its shim from before the hello run a task");
    daemon_as(state, NULL);
    ev_forget(old.id, true, false);
    int rc = recover(*state, &old, &err);
    ok(rc == 0, "the upgraded daemon recovers it: %s", error_message(&err));
    ok(wait_for(old.id, false, 30, &e) && e.running && !e.ended,
       "the old shim answers: it runs (%s)", e.reason);
    touch(go);
    ok(wait_for(old.id, true, 30, &e) && e.o.state == TASK_COMPLETE, "and its end is heard: %s",
       e.reason);
    _cleanup_free_ char *out = slurp(old.out);
    ok(streq(out, "old\n"), "its output is whole");
    ok(start(*state, "{\"user\":\"nobody\",\"cmd\":\"echo mine\"}", &mine, &err) == 0 &&
           wait_for(mine.id, true, 30, &e) && e.o.state == TASK_COMPLETE,
       "a new task runs: %s", e.reason);
    ok(!streq(mine.handle, old.handle), "in a shim of the daemon's own (%s, not %s)", mine.handle,
       old.handle);

    /* An ocps-shim of another protocol put in place under a running daemon. */
    daemon_as(state, NULL);
    setenv("OCPS_TEST_SHIM_PROTOCOL", next, 1);
    rc = start(*state, "{\"user\":\"nobody\",\"cmd\":\"echo refused\"}", &refused, &err);
    ok(rc == -EREMOTEIO && strstr(error_message(&err), speaks_next) &&
           strstr(error_message(&err), ours),
       "a shim of protocol %s gets no task: %s", next, error_message(&err));
    ok(!wait_for(refused.id, false, 0, NULL), "the task was not run");
    unsetenv("OCPS_TEST_SHIM_PROTOCOL");
    error_clear(&err);
    ok(start(*state, "{\"user\":\"nobody\",\"cmd\":\"echo again\"}", &again, &err) == 0 &&
           wait_for(again.id, true, 30, &e) && e.o.state == TASK_COMPLETE,
       "with the right shim in place, tasks run again: %s", e.reason);

    /* A newer shim, met after a downgrade: its tasks are not left unwatched. */
    daemon_as(state, next);
    _cleanup_free_ char *sleeper =
        xasprintf("{\"user\":\"nobody\",\"cmd\":\"sleep 300 & echo $! > %s; wait\"}", pid_file);
    (void) unlink(pid_file);
    ok(start_running(*state, sleeper, &newer), "a daemon and shim of protocol %s run a task", next);
    pid_t child = 0;
    for (int i = 0; i < 1000 && child <= 0; i++) {
        _cleanup_free_ char *data = slurp(pid_file);
        child = (pid_t) atoi(data);
        if (child <= 0)
            usleep(10000);
    }
    daemon_as(state, NULL);
    ev_forget(newer.id, true, false);
    rc = recover(*state, &newer, &err);
    ok(rc == 0, "a daemon of protocol %d takes it over: %s", SHIM_PROTOCOL, error_message(&err));
    ok(wait_for(newer.id, true, 30, &e) && e.o.state == TASK_SYSTEM_ERROR &&
           strstr(e.reason, speaks_next) && strstr(e.reason, "cannot follow"),
       "and ends it, saying why: %s", e.reason);
    ok(child > 0 && wait_gone(child, 10), "its processes were stopped (%d)", (int) child);
    (void) unlink(pid_file);
    (void) unlink(go);

    run_done(&old);
    run_done(&mine);
    run_done(&refused);
    run_done(&again);
    run_done(&newer);
    error_clear(&err);
}

int main(void)
{
    void *state = harness_init();
    if (!ok(state, "a backend instance"))
        return tap_done();
    test_slow_client(state);
    test_dropped_daemon(&state);
    test_protocols(&state);
    harness_done(state);
    return tap_done();
}
