/*
 * confine: who a task runs as and what it may do.
 *
 * When the daemon is root a task runs as the Unix account its "user"
 * names, with that account's supplementary groups. Whether it may is the
 * policy's to decide, at submit (lib/policy-check.h); this is the last
 * line behind it: whatever a bug there let through, no task runs as uid
 * 0 or with gid 0, here or in a container. When the daemon is not root,
 * tasks run as the daemon's own user. Either way a task gets no new
 * privileges, an empty bounding set and no ambient capabilities.
 */
#pragma once

#include "util/as-user.h"
#include "util/error.h"

#include <sys/types.h>

struct confine_user {
    bool change; /* switch to uid/gid/groups (the daemon is root) */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int n_groups;
    char *name;
    char *home;
    char *shell;
};

/*
 * Resolves 'name' (lib/account.h: kept a moment, so a submit and its
 * start look it up once). -EINVAL for an unknown account; -EACCES for
 * one with uid 0 or gid 0 (primary or supplementary). When the daemon is
 * not root the result describes the daemon's own account.
 */
int confine_user_lookup(const char *name, struct confine_user *ret, struct error *err);
void confine_user_done(struct confine_user *u);

/* The same refusals for an account whatever the daemon runs as (a
 * container's user): -EINVAL when no such account exists. */
int confine_account_lookup(const char *name, struct confine_user *ret, struct error *err);

/* u's filesystem identity for as-user.h, so that opening or checking a
 * path follows u's permissions, not the daemon's: buf filled (its groups
 * are u's, borrowed), or NULL when the daemon does not change users
 * (u->change false: as-user.h then works as the daemon). */
static inline const struct user_ids *confine_ids(const struct confine_user *u, struct user_ids *buf)
{
    if (!u->change)
        return NULL;
    *buf = (struct user_ids){u->uid, u->gid, u->groups, (size_t) u->n_groups};
    return buf;
}

/* Runs f(arg) as u (as_user_run): f's result, or a negative errno if the
 * identity could not be taken. */
static inline int confine_as_user(const struct confine_user *u, int (*f)(void *arg), void *arg)
{
    struct user_ids ids;
    return as_user_run(confine_ids(u, &ids), f, arg);
}

/*
 * In the task's process, just before exec: no new privileges, drop the
 * bounding set (unless it is known to be empty already) and ambient
 * capabilities, switch groups/gid/uid, clear the rest. A user of uid 0
 * or gid 0 is refused here too (-EPERM). On failure returns -errno and
 * names the step in *ret_step. Safe in a vfork()ed child of a threaded
 * process: no malloc, no glibc set*id broadcast.
 */
int confine_apply(const struct confine_user *u, bool bounding_set_empty, const char **ret_step);

/* Empties the calling process's capability bounding set, which its children
 * inherit: the shim does it once for all its tasks (it keeps its own
 * effective capabilities; it never execs). -EPERM without CAP_SETPCAP. */
int confine_drop_bounding_set(void);
