/*
 * account: the Unix accounts tasks run as. One lookup serves the policy
 * (who may be run as, policy-check.h) and the backends (what a task runs
 * as, backends/process/confine.h): an account's ids and groups, kept a
 * moment so that a submit and its start do not each parse /etc/passwd
 * and /etc/group again; the host's UID_MIN; and a filesystem identity
 * for checking a path as the account would reach it.
 *
 * The accounts are this system's (NSS), or another host's seen from a
 * container: with a root set (config host_root, the sidecar image) they
 * are read from ROOT/etc/passwd, ROOT/etc/group and ROOT/etc/login.defs
 * as files, since tasks run as the accounts of the host whose dockerd
 * runs them, not of the container the daemon is in.
 */
#pragma once

#include "util/as-user.h"
#include "util/error.h"

#include <sys/types.h>

/* Where accounts are read (see above): NULL or "/" for this system's.
 * Called once at start, before any other thread (not thread-safe). */
void account_set_root(const char *root);
/* The root set, NULL for none. */
const char *account_root(void);
/* The path where this daemon sees the host's file 'path' (absolute):
 * under the root when there is one (caller frees). */
char *account_host_path(const char *path);

struct account {
    char *name;
    uid_t uid;
    gid_t gid;     /* the primary group */
    gid_t *groups; /* every group it is in, the primary included (getgrouplist) */
    int n_groups;
    char *home;  /* "/" when the entry has none */
    char *shell; /* "/bin/sh" when the entry has none */
};

/* The account named 'name'. -EINVAL ("user: no account named ...") when
 * there is none; another negative errno when the lookup failed. Found
 * accounts are kept for 2 s while /etc/passwd and /etc/group stay
 * unchanged. */
int account_lookup(const char *name, struct account *ret, struct error *err);
/* The account of a uid, uncached (the daemon's own). */
int account_lookup_uid(uid_t uid, struct account *ret, struct error *err);
void account_done(struct account *a);
void account_copy(const struct account *a, struct account *ret);

/* The filesystem identity of the account named 'name' (util/as-user.h),
 * from the same lookup: -ENOENT when there is none; ret->groups is
 * allocated (user_ids_done). */
int account_user_ids(const char *name, struct user_ids *ret);

/* The name of the account of uid (caller frees): -ENOENT when there is none. */
int account_uid_name(uid_t uid, char **ret);
/* The gid of the group 'name': -ENOENT when there is none. */
int account_group_gid(const char *name, gid_t *ret);

/* Whether gid is the account's primary group or one of its others. */
bool account_in_group(const struct account *a, gid_t gid);

/* UID_MIN of /etc/login.defs (read again when the file changes), 1000
 * when the file or the setting is absent or unreadable. */
uid_t account_uid_min(void);

/* Runs f(arg) in a short-lived thread whose filesystem identity (fsuid,
 * fsgid, supplementary groups) is the given one, so that opening or
 * resolving a path follows that account's permissions, not the daemon's
 * (the kernel drops the thread's file capabilities with fsuid 0). Returns
 * f's result, or a negative errno when the identity could not be taken.
 * A daemon that is not root cannot take another identity: f then runs
 * as the daemon, directly. */
int account_as(uid_t uid, gid_t gid, const gid_t *groups, int n_groups, int (*f)(void *arg),
               void *arg);
