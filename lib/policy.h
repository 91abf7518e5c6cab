/*
 * policy: what each principal may do, from the config's `principals`
 * section, and the accounts nobody may run as.
 *
 *   principals:
 *     default:                     # every principal without an entry of its own
 *       run_as: []                 # accounts its tasks may run as: names and
 *                                  #   "group:NAME" (its members); a unix-socket
 *                                  #   peer may always name itself
 *       tes_user: NAME             # the account its GA4GH TES tasks run as (TES
 *                                  #   has no user field; tes.h); it may run as
 *                                  #   it (added to run_as). None: a unix-socket
 *                                  #   peer's TES tasks run as itself, anyone
 *                                  #   else's TES create is refused (403)
 *       max: {cores: 4, memory: 8G, cputime: 10h, walltime: 1d, output: 1G}
 *       quota: {queued: 10000, running: 64, cores: 8, memory: 32G, stored: 10G}
 *       weight: 1                  # its share of the host under contention
 *       images: ["*"]              # glob patterns an image reference must match
 *                                  #   (one registry: its host, a slash, a star);
 *                                  #   absent: any image, []: none
 *       mounts: {ro: [/data], rw: [/scratch]}   # host path prefixes
 *       ports: {range: 1024-65535, address: 127.0.0.1}
 *     ci-bot: {run_as: [ci], quota: {running: 4}}
 *     ops: {admin: true}           # sees and deletes every task
 *   privileged_groups: [root, sudo, adm, disk, shadow, kmem, docker, lxd,
 *                       libvirt, systemd-journal]
 *
 * Whatever a policy says, nobody runs as uid 0 under any name, with gid 0,
 * as an account below UID_MIN of /etc/login.defs (unless listed by name in
 * run_as), or as a member of a privileged group: root in all but name.
 * Limits and quotas of 0 mean none; the default output cap is 1 GiB.
 *
 * A policy set is built once from the config and read, never changed,
 * while the daemon runs: any thread may read it without a lock.
 */
#pragma once

#include "util/error.h"
#include "util/util.h"

#include <cjson/cJSON.h>

#define POLICY_DEFAULT_NAME   "default"
#define POLICY_DEFAULT_OUTPUT (1ULL << 30)
#define POLICY_NAME_MAX       64

/* Per task maxima: above one, a task is refused (403, naming it). 0 = none. */
struct policy_max {
    double cores;
    uint64_t memory;   /* bytes */
    uint64_t cputime;  /* seconds */
    uint64_t walltime; /* seconds */
    uint64_t output;   /* bytes of stdout plus stderr; POLICY_DEFAULT_OUTPUT unless set */
};

/* Per principal quotas: over one, a submit is refused (429, Retry-After). 0 = none.
 * A task counts from its submit to its end, queued or running (quota.h says why). */
struct policy_quota {
    uint64_t queued;  /* tasks QUEUED */
    uint64_t running; /* tasks not yet ended: queued, INITIALIZING, RUNNING or CANCELING */
    double cores;     /* of its tasks not yet ended */
    uint64_t memory;  /* of its tasks not yet ended */
    uint64_t stored;  /* bytes its ended tasks' files keep under the data dir */
};

struct policy {
    char *name;     /* the principal's, or POLICY_DEFAULT_NAME */
    bool admin;     /* sees, reads and deletes every task; may run as any account allowed at all */
    char **run_as;  /* account names and "group:NAME"; NULL: none beyond itself */
    char *tes_user; /* the account of its TES tasks; NULL: see above */
    struct policy_max max;
    struct policy_quota quota;
    unsigned weight;               /* >= 1 */
    char **images;                 /* glob patterns; NULL: any image */
    char **mounts_ro, **mounts_rw; /* host path prefixes; NULL: no mounts */
    uint16_t port_min, port_max;   /* host ports; 0, 0: none */
    char *port_address;            /* NULL: the docker.port_address */
};

struct policy_set {
    struct policy *entries; /* the named principals */
    size_t n_entries;
    struct policy def; /* "default", filled in when the config has none */
    char **privileged_groups;
};

/* The built-in set: a default entry with no run_as, no limits but the
 * output cap, the privileged groups above. */
void policy_set_init(struct policy_set *s);
void policy_set_done(struct policy_set *s);

/* Loads `principals` (a mapping) over s. -EINVAL naming the key
 * ("principals.ci-bot.max.memory: invalid size \"lots\"") on a bad entry;
 * unknown keys are errors. */
int policy_set_load_principals(struct policy_set *s, const cJSON *principals, struct error *err);
/* Loads `privileged_groups` (a list of group names). */
int policy_set_load_privileged(struct policy_set *s, const cJSON *groups, struct error *err);

/* Whether name may name a principal: 1 to POLICY_NAME_MAX letters, digits
 * and ._@- (tokens, unauthenticated listeners and the principals section
 * alike). */
bool policy_name_valid(const char *name);

/* The entry for a principal's name, or the default one. Never NULL. */
const struct policy *policy_lookup(const struct policy_set *s, const char *name);
