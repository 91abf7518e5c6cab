/*
 * policy-check: what a principal may do (policy.h), decided in one place.
 * Every submit goes through policy_check_task() (supervisor_submit)
 * before it is stored; what it refuses is 403 (-EACCES) naming the rule,
 * or 400 (-EINVAL) for what does not exist.
 *
 *   run_as     the account a task names must be one its principal may
 *              use: its run_as names, the members of its run_as
 *              "group:NAME"s, and for a unix-socket peer its own
 *              account; an admin may name any account
 *   never      whatever a policy says, no task runs as uid 0 (under any
 *              name), with gid 0 (primary or supplementary), as an
 *              account below UID_MIN of /etc/login.defs (unless the
 *              principal's run_as names it), as a member of a privileged
 *              group (privileged_groups) or as one of denied_users
 *   max        a task above a maximum of its principal is refused; a
 *              task that gives no cputime or walltime gets the maximum
 *              as its limit (as Slurm applies a partition's MaxTime)
 *   container  its image must match one of the principal's glob patterns;
 *              each host port must lie in its range; each mount must be
 *              under one of its prefixes (RW under an rw prefix, RO
 *              under ro or rw) - an admin is held to none of these three
 *              lists - and no one mounts what is never mountable
 *
 * Never mountable, whatever a policy says: sockets and device nodes; /
 * itself; /etc, /proc, /sys, /dev, /boot, /root, /run, /var/run,
 * /var/lib/docker, the proxy's data directory and the directory of the
 * Docker socket, each with everything under it. A mount's host path is
 * resolved as the task's user (realpath with the user's filesystem
 * identity), so it reaches only what that user can, through no symlink:
 * the checks hold for the resolved path, which is what the task stores
 * and what is mounted. A path the user cannot search answers the same
 * whether it exists or not. The Docker backend checks each mount again
 * just before it creates the container (policy_recheck_mount), so a
 * symlink swapped in while the task waited gets nothing.
 *
 * The backends keep a last line of their own: they never run uid 0 or
 * gid 0, whatever a bug here let through (backends/process/confine.h).
 */
#pragma once

#include "account.h"
#include "config.h"
#include "principal.h"
#include "task.h"

/* uid and gid of the container of a task whose account does not exist
 * on this host (an admin's, or one a run_as names): nobody. */
#define POLICY_NOBODY_ID 65534

/* The rule a refused task broke (the metrics' refusal reasons). */
enum policy_rule {
    POLICY_RULE_RUN_AS,
    POLICY_RULE_NEVER,
    POLICY_RULE_MAX,
    POLICY_RULE_IMAGE,
    POLICY_RULE_PORTS,
    POLICY_RULE_MOUNTS,
    _POLICY_RULE_MAX,
};

/*
 * Checks a task that principal p submits against p's policy and the
 * never-lists, and settles what the policy decides for it: cputime and
 * walltime from p's maxima when the task gives none, each mount's host
 * path resolved. -EACCES naming the rule ("user: principal ci-bot may
 * run as ci or members of group builders, not alice
 * (principals.ci-bot.run_as)"), -EINVAL for an unknown account (a
 * command task) or a mount path that does not exist. On failure,
 * *ret_rule (when not NULL) names the rule that refused it.
 */
int policy_check_task(const struct config *cfg, const struct principal *p, struct task *t,
                      enum policy_rule *ret_rule, struct error *err);

/* What a task that does not say gets: cores and memory from the config's
 * defaults, lowered to the principal's maxima; cputime and walltime from
 * its maxima. */
void policy_apply_defaults(const struct config *cfg, const struct policy *pol, struct task *t);

/* The never-run-as rules for account a; 'listed': the principal's run_as
 * names it (which lets it use a system account). -EACCES naming the rule. */
int policy_check_account(const struct config *cfg, const struct account *a, bool listed,
                         struct error *err);

/* Whether image matches one of the glob patterns (fnmatch(3) over the
 * reference as written; "*" crosses "/"). NULL patterns: any image. */
bool policy_image_allowed(char *const *patterns, const char *image);

/* Whether path (absolute, resolved) is never mountable, and why: NULL
 * when it may be mounted, else words such as "under /etc" (static or
 * owned by the caller through *ret_words). */
bool policy_never_mountable(const struct config *cfg, const char *path, mode_t type,
                            char **ret_words);

/* Checks mount i of a task submitted by a principal held to pol's prefixes
 * (NULL: an admin, held to none), as account a, and returns its resolved
 * host path in *ret_resolved. */
int policy_check_mount(const struct config *cfg, const struct account *a, const char *principal,
                       const struct policy *pol, const struct task_mount *m, size_t i,
                       char **ret_resolved, struct error *err);

/* At container start: mount i of a task (its host path resolved at
 * submit) must still resolve, as account a, to that same path, and pass
 * the never-list and a's permissions again. -EACCES naming what changed. */
int policy_recheck_mount(const struct config *cfg, const struct account *a,
                         const struct task_mount *m, size_t i, struct error *err);
