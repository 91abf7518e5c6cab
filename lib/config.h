/*
 * config: the daemon's settings, from an optional YAML file with command
 * line flags on top. Every field has a working default, so the daemon
 * runs with no file at all (the README's quick start).
 */
#pragma once

#include "util/error.h"
#include "util/util.h"

#define CONFIG_DEFAULT_LISTEN   "127.0.0.1:8080"
#define CONFIG_DEFAULT_DATA_DIR "/var/lib/ocps-proxy"

struct config {
    char **listen;           /* "HOST:PORT" or "unix:/path" */
    char *data_dir;
    int log_level;           /* enum log_level */

    /* Host capacity shared out by admission control (0 = what the machine has). */
    double capacity_cores;
    uint64_t capacity_memory;
    /* Applied to tasks that do not say. */
    double default_cores;
    uint64_t default_memory;

    unsigned kill_grace;     /* seconds between SIGTERM and SIGKILL */
    size_t max_body;         /* request body cap, bytes */
    unsigned http_connections; /* concurrent HTTP connections per listener */

    /* Who may run tasks. */
    bool allow_root;
    char **denied_users;

    /* Process backend. */
    uint64_t pids_limit;     /* per task; 0 = no limit */
    char *cgroup_name;       /* our cgroup, under the daemon's own */
    char *shim_path;         /* NULL = next to the daemon binary, then the install path */
};

/* Fills in the defaults. */
void config_init(struct config *c);
void config_done(struct config *c);

/* Loads a YAML file over the current values. -EINVAL naming the key on a
 * bad file (unknown keys are errors). */
int config_load_file(struct config *c, const char *path, struct error *err);

/* Resolves "what the machine has" for capacity fields left at 0. */
void config_resolve_capacity(struct config *c);
