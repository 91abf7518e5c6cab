/*
 * process-harness: what the tests of the process backend share
 * (test-process.c, test-shim.c): a data dir and a config for the backend,
 * a listener that records what it hears per task, and starting a task
 * from its JSON. The backend runs for real: real shims (OCPS_SHIM, set by
 * meson), real cgroups, real users; hence root.
 */
#pragma once

#include "process/process.h"
#include "tap.h"
#include "util/util.h"

/* What the listener heard of one task. */
struct ev {
    char id[37];
    bool running, ended;
    int n_running, n_ended;
    usec_t started;
    struct task_outcome o;
    char reason[512];
};

struct run {
    char id[37];
    char handle[24]; /* the shim's pid */
    char *dir, *out, *err;
    struct task *task;
};

extern char *data_dir;
extern struct config cfg;
extern const struct backend_listener listener;

/* Skips the whole program unless it can run; makes the data dir and cfg,
 * and a backend instance (NULL if its init failed, and says why). */
void *harness_init(void);
/* Frees the backend instance, if any, and removes the data dir. */
void harness_done(void *state);

/* Waits until the task is running (want_end = false) or ended; false on timeout. */
bool wait_for(const char *id, bool want_end, int seconds, struct ev *ret);
/* Forgets that the task was reported running / ended (before a recover). */
void ev_forget(const char *id, bool running, bool ended);
/* While closed, the listener's callbacks block: the backend's monitor
 * thread stops reading its shims, as a daemon stuck or stopped would. */
void gate_set(bool closed);

struct task *parse(const char *json);
int start(void *state, const char *json, struct run *r, struct error *err);
void run_done(struct run *r);
/* The file's contents, "" when it cannot be read. */
char *slurp(const char *path);
