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

#define CONFIG_DEFAULT_LISTEN    "127.0.0.1:8080"
#define CONFIG_DEFAULT_DATA_DIR  "/var/lib/ocps-proxy"
#define CONFIG_DEFAULT_RETENTION (7 * 24 * 3600)

/*
 * One listener: the config's `listen` takes a list of addresses and of
 * mappings of an address and its options, side by side:
 *
 *   listen:
 *     - 127.0.0.1:8080                   # requests authenticate (tokens)
 *     - unix:/run/ocps-proxy.sock        # the peer's uid names it
 *     - https://0.0.0.0:8443             # TLS with the config's tls: settings
 *     - {address: https://0.0.0.0:8444, tls: {client_ca: /etc/ocps-proxy/clients.pem}}
 *     - {address: 127.0.0.1:8081, unauthenticated: jobproxy-clients}
 *     - {address: 0.0.0.0:9180, metrics: public}
 *
 * `unauthenticated: NAME` opens a TCP listener without authentication, for
 * JobProxy clients that cannot send a header: every request on it that
 * carries no token is principal NAME. Loopback addresses only (the server
 * refuses to start otherwise); the daemon warns at start, as any local
 * account can connect to it. On the command line:
 * --listen-unauthenticated ADDR=NAME.
 *
 * `https://HOST:PORT` speaks TLS (libmicrohttpd's, through GnuTLS) with
 * the certificate and key of the config's top-level `tls:`, each setting
 * of which a listener's own `tls:` may replace (config_tls). With a
 * client_ca, every connection must present a certificate from it, whose
 * subject's CN names the principal (mTLS; tls.h).
 *
 * `metrics: public` lets anyone who reaches the listener read GET
 * /metrics without credentials (a Prometheus server scraping it); on the
 * other listeners (`metrics: admin`, the default) /metrics wants an
 * admin principal. The metrics hold counts, never a task, a user or a
 * principal's name.
 */

/* tls: {cert, key, client_ca}: paths the admin wrote, read once at start
 * by config_read_tls(), never a client's. cert: the server's certificate
 * in PEM, any intermediate certificates after it; key: its private key,
 * PEM, not encrypted; client_ca: the CA certificates (PEM) that client
 * certificates must chain to, NULL for none (no client certificates). */
struct config_tls {
    char *cert;
    char *key;
    char *client_ca;
};

struct config_listener {
    char *address;         /* "HOST:PORT", "[IPv6]:PORT", "https://HOST:PORT" or "unix:/path" */
    char *unauthenticated; /* the principal of every request without credentials; NULL: none */
    struct config_tls tls; /* its own tls settings; a NULL one is the config's */
    bool metrics_public;   /* GET /metrics without credentials */
    /* An https listener's files as config_read_tls() read them (NULL
     * otherwise): the certificate chain, the key and the client CA (NULL
     * when it has none). */
    struct config_tls pem;
};

/* Whether a listener's address is https://. */
static inline bool config_listener_is_tls(const struct config_listener *l)
{
    return startswith(l->address, "https://");
}

struct config {
    struct config_listener *listen; /* NULL: CONFIG_DEFAULT_LISTEN */
    size_t n_listen;
    struct config_tls tls; /* the https listeners' settings, where theirs do not say */
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

    /* retention: 7d. How long an ended task is kept (its record and its
     * files under the data dir) before the supervisor removes it, in
     * seconds; 0 ("0" or "forever"): kept until deleted. */
    uint64_t retention;

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

    /* Accounts no task runs as, beyond the never-list of policy-check.h
     * (uid 0, gid 0, system accounts, privileged groups). */
    char **denied_users;

    /* host_root: /host. Where this daemon sees the host whose dockerd runs
     * its containers, when it is not that host's own (the sidecar image: a
     * read-only bind of the host's /): a task's mounts are checked under
     * it, as the host will resolve them, and accounts are read from its
     * etc/passwd, etc/group and etc/login.defs (lib/account.h); mounts go
     * to dockerd as the host's paths. NULL: this system is the host. */
    char *host_root;
    /* backends: [process, docker, slurm]. The backends that run tasks
     * (NULL: all built; slurm only with a slurm: section); a task no
     * listed backend takes is stored as SYSTEM_ERROR. */
    char **backends;
    /* cmd_backend: process. The backend of a command task that names none
     * (its "backend" field): process, or slurm (the daemon refuses to
     * start when that backend is not enabled). Container tasks go to
     * docker whatever it says. */
    char *cmd_backend;

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

    /* tes: {id, name, organization: {name, url}, storage: [URL prefix, ...]}.
     * What GA4GH TES service-info says of this server (tes.h); NULL: the
     * defaults there. */
    char *tes_id, *tes_name, *tes_organization_name, *tes_organization_url;
    char **tes_storage;
    /* Slurm backend (backends/slurm/): enabled by setting socket or url.
     * slurmrestd at socket or url; every call carries a JWT of token_user
     * signed with the cluster's jwt_key. */
    char *slurm_socket;     /* a unix socket path; or: */
    char *slurm_url;        /* http://HOST:PORT */
    char *slurm_jwt_key;    /* the cluster's AuthAltParameters jwt_key file; or */
    char *slurm_token_file; /* a token of token_user (scontrol token), read again on change */
    char *slurm_token_user; /* SlurmUser or root: "root" */
    char *slurm_partition;  /* NULL: the cluster's default (a task's slurm.* tags win) */
    char *slurm_account;
    char *slurm_qos;
    /* Where a job's stdout and stderr go when the task names no file: a
     * directory every node and the proxy see at the same path (a shared
     * filesystem), one subdirectory per task owned by its user. NULL:
     * <data_dir>/slurm-output, right for a one-node cluster on this host. */
    char *slurm_output_dir;
    bool slurm_queue_when_down; /* accept submits while slurmrestd is down (else 502) */
};

/* Whether the config names a Slurm cluster (slurm.socket or slurm.url). */
static inline bool config_slurm_configured(const struct config *c)
{
    return c->slurm_socket || c->slurm_url;
}

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

/* Adds a listener (copies of the strings); unauthenticated may be NULL. */
void config_add_listener(struct config *c, const char *address, const char *unauthenticated);
/* Removes every listener. */
void config_clear_listeners(struct config *c);
/* The value of --listen-unauthenticated, ADDR=NAME, as a listener. -EINVAL
 * naming what is wrong. */
int config_add_listener_arg(struct config *c, const char *arg, struct error *err);

/* Reads the files of every https listener (its own tls settings over the
 * config's) into its pem, and checks them (tls.h): once, at start, before
 * anything else, so that a key the daemon cannot read stops it before it
 * has done anything. -EINVAL for an https listener without a cert or key,
 * or with client_ca on an unauthenticated listener, or a file that is not
 * what its setting needs; the file's errno when it cannot be read; err
 * names the listener, the setting and the file. */
int config_read_tls(struct config *c, struct error *err);

/* Fills in the defaults. */
void config_init(struct config *c);
void config_done(struct config *c);

/* Loads a YAML file over the current values. -EINVAL naming the key on a
 * bad file (unknown keys are errors). */
int config_load_file(struct config *c, const char *path, struct error *err);

/* Resolves "what the machine has" for capacity fields left at 0. */
void config_resolve_capacity(struct config *c);

/* Whether the config's backends list the backend 'name' (all do without
 * one), and, for slurm, whether a cluster is configured. */
bool config_backend_enabled(const struct config *c, const char *name);
