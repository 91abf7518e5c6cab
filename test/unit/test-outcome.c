/* Unit tests: outcome (the one classifier of how a task ended, and exit.json). */
#include "outcome.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define MEM (64ULL << 20)

/* A row: the facts a backend saw, and the state and reason clients get. */
static const struct {
    const char *what;
    struct outcome_facts f;
    enum task_state state;
    int exit_code, signal;
    const char *reason;
} rows[] = {
    {"exit 0", {.exit_code = 0}, TASK_COMPLETE, 0, 0, "exited with status 0"},
    {"exit 3", {.exit_code = 3}, TASK_EXECUTOR_ERROR, 3, 0, "exited with status 3"},
    {"a signal",
     {.exit_code = -1, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     -1,
     SIGKILL,
     "killed by signal 9 (KILL)"},
    {"a container's 128+N",
     {.exit_code = 143, .signal = SIGTERM},
     TASK_EXECUTOR_ERROR,
     143,
     SIGTERM,
     "killed by signal 15 (TERM)"},
    {"never ran, the task's fault",
     {.start_error = "exec /nope: No such file or directory", .exit_code = 127},
     TASK_EXECUTOR_ERROR,
     -1,
     0,
     "exec /nope: No such file or directory"},
    {"never ran, the system's fault",
     {.start_error = "cannot enter the task's cgroup: EBUSY", .start_error_system = true},
     TASK_SYSTEM_ERROR,
     -1,
     0,
     "cannot enter the task's cgroup: EBUSY"},
    {"a start error beats a cancel",
     {.start_error = "pull x: manifest unknown", .canceled = true},
     TASK_EXECUTOR_ERROR,
     -1,
     0,
     "pull x: manifest unknown"},
    {"cancelled",
     {.canceled = true, .exit_code = -1, .signal = SIGTERM},
     TASK_CANCELED,
     -1,
     SIGTERM,
     "cancelled by request"},
    {"a cancel beats the walltime",
     {.canceled = true, .walltime_hit = true, .walltime = 10, .signal = SIGKILL},
     TASK_CANCELED,
     0,
     SIGKILL,
     "cancelled by request"},
    {"walltime",
     {.walltime_hit = true, .walltime = 10, .exit_code = -1, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     -1,
     SIGKILL,
     "killed: walltime limit 10 s exceeded"},
    {"walltime beats an OOM seen on the way",
     {.walltime_hit = true, .walltime = 10, .oom = true, .memory = MEM, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     0,
     SIGKILL,
     "killed: walltime limit 10 s exceeded"},
    {"the tree's cputime, killed by the backend",
     {.cputime = 2, .cputime_hit = true, .exit_code = -1, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     -1,
     SIGKILL,
     "killed: cputime limit 2 s exceeded"},
    {"SIGXCPU from the rlimit",
     {.cputime = 2, .exit_code = -1, .signal = SIGXCPU},
     TASK_EXECUTOR_ERROR,
     -1,
     SIGXCPU,
     "killed: cputime limit 2 s exceeded"},
    {"SIGXCPU beats an OOM",
     {.cputime = 2, .oom = true, .memory = MEM, .signal = SIGXCPU},
     TASK_EXECUTOR_ERROR,
     0,
     SIGXCPU,
     "killed: cputime limit 2 s exceeded"},
    {"SIGKILL at the rlimit's hard limit",
     {.cputime = 2, .cpu_used = 2 * USEC_PER_SEC, .exit_code = -1, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     -1,
     SIGKILL,
     "killed: cputime limit 2 s exceeded"},
    {"SIGXCPU without a cputime limit is a signal",
     {.exit_code = -1, .signal = SIGXCPU},
     TASK_EXECUTOR_ERROR,
     -1,
     SIGXCPU,
     "killed by signal 24 (XCPU)"},
    {"SIGKILL well below the cputime limit is a signal",
     {.cputime = 100, .cpu_used = 2 * USEC_PER_SEC, .exit_code = -1, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     -1,
     SIGKILL,
     "killed by signal 9 (KILL)"},
    {"the output cap",
     {.output_hit = true, .output = 1ULL << 30, .exit_code = -1, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     -1,
     SIGKILL,
     "killed: output limit 1 GiB exceeded"},
    {"past the output cap at its end, though it exited 0",
     {.output_hit = true, .output = 1ULL << 20, .exit_code = 0},
     TASK_EXECUTOR_ERROR,
     0,
     0,
     "killed: output limit 1 MiB exceeded"},
    {"a cancel beats the output cap",
     {.canceled = true, .output_hit = true, .output = 1ULL << 20, .signal = SIGKILL},
     TASK_CANCELED,
     0,
     SIGKILL,
     "cancelled by request"},
    {"walltime beats the output cap",
     {.walltime_hit = true,
      .walltime = 10,
      .output_hit = true,
      .output = 1ULL << 20,
      .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     0,
     SIGKILL,
     "killed: walltime limit 10 s exceeded"},
    {"the cputime kill beats the output cap",
     {.cputime = 2,
      .cputime_hit = true,
      .output_hit = true,
      .output = 1ULL << 20,
      .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     0,
     SIGKILL,
     "killed: cputime limit 2 s exceeded"},
    {"the output cap beats an OOM seen on the way",
     {.output_hit = true, .output = 1536ULL << 20, .oom = true, .memory = MEM, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     0,
     SIGKILL,
     "killed: output limit 1.5 GiB exceeded"},
    {"the output cap beats a kill from outside",
     {.output_hit = true,
      .output = 1ULL << 20,
      .external_signal = SIGKILL,
      .exit_code = 137,
      .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     137,
     SIGKILL,
     "killed: output limit 1 MiB exceeded"},
    {"OOM",
     {.oom = true, .memory = MEM, .exit_code = -1, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     -1,
     SIGKILL,
     "killed: memory limit 64 MiB exceeded (OOM)"},
    {"OOM and CPU time at the limit: the OOM kill",
     {.oom = true, .memory = MEM, .cputime = 2, .cpu_used = 3 * USEC_PER_SEC, .signal = SIGKILL},
     TASK_EXECUTOR_ERROR,
     0,
     SIGKILL,
     "killed: memory limit 64 MiB exceeded (OOM)"},
    {"a container's OOM (exit 137)",
     {.oom = true, .memory = MEM, .exit_code = 137, .signal = 9},
     TASK_EXECUTOR_ERROR,
     137,
     9,
     "killed: memory limit 64 MiB exceeded (OOM)"},
    {"OOM of another process, the main one exits 1",
     {.oom = true, .memory = MEM, .exit_code = 1},
     TASK_EXECUTOR_ERROR,
     1,
     0,
     "exited with status 1: a process was killed, memory limit 64 MiB exceeded (OOM)"},
    {"OOM of another process, the main one exits 0",
     {.oom = true, .memory = MEM, .exit_code = 0},
     TASK_COMPLETE,
     0,
     0,
     "exited with status 0"},
    {"the backend lost it",
     {.system_error = "dockerd stopped while the task ran; its container ended with status 0"},
     TASK_SYSTEM_ERROR,
     0,
     0,
     "dockerd stopped while the task ran; its container ended with status 0"},
    {"a cancel beats the backend losing it",
     {.canceled = true, .system_error = "shim lost"},
     TASK_CANCELED,
     0,
     0,
     "cancelled by request"},
    {"a limit beats the backend losing it",
     {.oom = true, .memory = MEM, .signal = SIGKILL, .system_error = "dockerd stopped"},
     TASK_EXECUTOR_ERROR,
     0,
     SIGKILL,
     "killed: memory limit 64 MiB exceeded (OOM)"},
    {"killed from outside",
     {.external_signal = SIGTERM, .external_hint = "docker stop", .exit_code = 143, .signal = 15},
     TASK_SYSTEM_ERROR,
     143,
     15,
     "stopped from outside the proxy by signal 15 (TERM): docker stop; exit status 143"},
    {"the backend losing it beats a kill from outside",
     {.system_error = "dockerd stopped", .external_signal = SIGTERM, .exit_code = 143},
     TASK_SYSTEM_ERROR,
     143,
     0,
     "dockerd stopped"},
};

static void test_precedence(void)
{
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        struct task_outcome o;
        outcome_classify(&rows[i].f, &o);
        ok(o.state == rows[i].state && o.exit_code == rows[i].exit_code &&
               o.signal == rows[i].signal && streq(o.reason, rows[i].reason),
           "%s: %s %d %d \"%s\" (got %s %d %d \"%s\")", rows[i].what,
           task_state_to_string(rows[i].state), rows[i].exit_code, rows[i].signal, rows[i].reason,
           task_state_to_string(o.state), o.exit_code, o.signal, o.reason);
        task_outcome_done(&o);
    }
}

static void test_times(void)
{
    struct task_outcome o;
    outcome_classify(&(struct outcome_facts){.exit_code = 0, .started = 5, .finished = 9}, &o);
    ok(o.started == 5 && o.finished == 9, "the times are the backend's (%lld %lld)",
       (long long) o.started, (long long) o.finished);
    task_outcome_done(&o);
    usec_t before = now_realtime();
    outcome_classify(&(struct outcome_facts){.exit_code = 0}, &o);
    ok(o.finished >= before && o.started == 0, "an end without a time ends now");
    task_outcome_done(&o);
}

static void test_file(void)
{
    char dir[] = "/tmp/ocps-outcome-XXXXXX";
    ok(mkdtemp(dir) != NULL, "a temporary task directory");
    struct task_outcome o, back;
    ok(task_outcome_read(dir, &back) == -ENOENT, "no exit.json: -ENOENT");
    outcome_classify(&(struct outcome_facts){.oom = true,
                                             .memory = MEM,
                                             .signal = SIGKILL,
                                             .exit_code = -1,
                                             .started = 1000,
                                             .finished = 2000},
                     &o);
    ok(task_outcome_write(dir, &o, true) == 0, "exit.json written");
    ok(task_outcome_read(dir, &back) == 0 && back.state == o.state &&
           back.exit_code == o.exit_code && back.signal == o.signal &&
           streq(back.reason, o.reason) && back.started == 1000 && back.finished == 2000,
       "exit.json reads back the same outcome (%s)", back.reason);
    task_outcome_done(&o);
    task_outcome_done(&back);
    _cleanup_free_ char *path = xasprintf("%s/exit.json", dir);
    ok(write_file_atomic(path, "{\"state\":\"RUNNING\",\"exit_code\":0}", 33, 0600) == 0 &&
           task_outcome_read(dir, &back) == -EBADMSG,
       "an exit.json with a state that is not final is refused");
    (void) unlink(path);
    (void) rmdir(dir);
}

/* The same object inside another file (a TES task's tes-run.json). */
static void test_cjson(void)
{
    struct task_outcome o, back = {.exit_code = 99};
    outcome_classify(&(struct outcome_facts){.exit_code = 3, .started = 10, .finished = 20}, &o);
    cJSON *j = task_outcome_to_cjson(&o);
    ok(task_outcome_from_cjson(j, &back) == 0 && back.state == TASK_EXECUTOR_ERROR &&
           back.exit_code == 3 && streq(back.reason, o.reason) && back.started == 10 &&
           back.finished == 20,
       "an outcome as JSON reads back the same (%s)", back.reason);
    cJSON_Delete(j);
    task_outcome_done(&back);
    task_outcome_done(&o);
    back = (struct task_outcome){.exit_code = 99};
    ok(task_outcome_from_cjson(NULL, &back) == -EBADMSG && back.exit_code == 99,
       "no object: -EBADMSG, the outcome untouched");
    j = cJSON_Parse("{\"state\":\"QUEUED\",\"exit_code\":0}");
    ok(task_outcome_from_cjson(j, &back) == -EBADMSG, "a state that is not final: -EBADMSG");
    cJSON_Delete(j);
}

int main(void)
{
    test_precedence();
    test_times();
    test_file();
    test_cjson();
    return tap_done();
}
