/*
 * config: the daemon's settings, from an optional YAML file with command
 * line flags on top. Every field has a working default, so the daemon
 * runs with no file at all (the README's quick start).
 */
#pragma once

#include "policy.h"
#include "task.h"
#include "util/error.h"
#include "util/util.h"

#define CONFIG_DEFAULT_LISTEN   "127.0.0.1:8080"
#define CONFIG_DEFAULT_DATA_DIR "/var/lib/ocps-proxy"

struct config {
    char **listen; /* "HOST:PORT" or "unix:/path" */
    char *data_dir;
    int log_level; /* enum log_level */

    /* Host capacity shared out by admission control (0 = what the machine has). */
    double capacity_cores;
    uint64_t capacity_memory;
    /* Applied to tasks that do not say. */
    double default_cores;
    uint64_t default_memory;
    /* bare_units: {memory: UNIT, time: UNIT}. What a number without a unit
     * means in a task's memory (B, K, M, G, T, P) and in its cputime and
     * walltime (s, m, h, d). Default task_units_jobproxy, JobProxy's XSD:
     * GB and hours; "memory: M" for clients written against JobProxy's
     * Chronos backend, which passed memory on as MB. */
    struct task_units bare_units;

    unsigned kill_grace; /* seconds between SIGTERM and SIGKILL */
    size_t max_body;     /* request body cap, bytes */
    /* HTTP connections (lib/http/pool.c). A client is a TCP peer's address
     * (an IPv6 peer's /64) or a unix-socket peer's uid. A connection that
     * would pass a cap is answered 503 with Retry-After, never dropped. */
    unsigned http_connections;        /* served at once, all listeners, followers apart */
    unsigned http_followers;          /* log followers (logs?follow=1) at once */
    unsigned http_client_connections; /* one client's, waiting, served or following */
    unsigned http_timeout;            /* seconds an idle connection is kept (not a followed log);
                                       * also the time a kept-alive connection has to start its
                                       * next request line; 0: none */
    unsigned http_header_timeout;     /* seconds for a request's head, from its start; 0: none */
    unsigned http_body_timeout;       /* seconds for its body, from the end of its head; 0: none */

    /* What each principal may do (policy.h). */
    struct policy_set policy;

    /* Who may run tasks. */
    bool allow_root;
    char **denied_users;

    /* Process backend. */
    uint64_t pids_limit; /* per task; 0 = no limit */
    char *cgroup_name;   /* our cgroup, under the daemon's own */
    char *shim_path;     /* NULL = next to the daemon binary, then the install path */

    /* Docker backend. */
    char *docker_socket;         /* NULL = $DOCKER_HOST (unix://), then /var/run/docker.sock */
    int docker_pull;             /* enum docker_pull */
    char *docker_port_address;   /* host address of port bindings */
    char *docker_network;        /* NetworkMode of containers; NULL = Docker's default */
    bool docker_keep_containers; /* keep finished containers (debugging) */
    bool docker_queue_when_down; /* accept submits while dockerd is down (else 502) */
    char *docker_instance;       /* the label value naming this proxy's containers */
    struct config_registry *docker_registries;
    size_t n_docker_registries;
};

enum docker_pull {
    DOCKER_PULL_IF_NOT_PRESENT,
    DOCKER_PULL_ALWAYS,
    DOCKER_PULL_NEVER,
};

/* Credentials for one registry host ("127.0.0.1:5000", "docker.io"). */
struct config_registry {
    char *host;
    char *username;
    char *password;
};

/* Fills in the defaults. */
void config_init(struct config *c);
void config_done(struct config *c);

/* Loads a YAML file over the current values. -EINVAL naming the key on a
 * bad file (unknown keys are errors). */
int config_load_file(struct config *c, const char *path, struct error *err);

/* Resolves "what the machine has" for capacity fields left at 0. */
void config_resolve_capacity(struct config *c);
