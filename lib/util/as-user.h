/*
 * as-user: file-system work done as another account, by a daemon that is
 * root. A path a client named (a task's stdout, a mount's source) is
 * opened or checked with that account's filesystem identity - its fsuid,
 * fsgid and supplementary groups - so that it reaches exactly what the
 * account could reach, and root never opens it itself.
 *
 * The identity is taken by a short-lived thread of its own, with raw
 * system calls: on Linux credentials belong to a thread, and the raw
 * calls change only the calling one (glibc's setgroups() would change
 * every thread of the daemon). That thread then exits, so nothing is
 * ever changed back. The task's process (backends/process/confine.c) and
 * the logs endpoint (lib/http/follow.c) share this one way.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* An account's filesystem identity. */
struct user_ids {
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* supplementary, the primary group among them, as getgrouplist() */
    size_t n_groups;
};

/* (An account's ids by its name: account_user_ids(), lib/account.h.) */
void user_ids_done(struct user_ids *u);
/* The groups of the account 'name' whose primary group is gid, as
 * getgrouplist() lists them (allocated); -EIO when they cannot be listed. */
int user_ids_groups(const char *name, gid_t gid, gid_t **ret, size_t *ret_n);
/* The same from a group file (a host's /etc/group seen from a
 * container, account.h) rather than NSS; group_file NULL: as above. */
int user_ids_groups_in(const char *group_file, const char *name, gid_t gid, gid_t **ret,
                       size_t *ret_n);
/* A deep copy. */
void user_ids_copy(const struct user_ids *u, struct user_ids *ret);

/* Runs f(arg) in a thread whose filesystem identity is u's and returns
 * f's result; a negative errno if the thread or the identity could not
 * be had. u NULL: f(arg) in the calling thread, as it is. */
int as_user_run(const struct user_ids *u, int (*f)(void *arg), void *arg);

/*
 * open(path, flags | O_CLOEXEC | O_NOCTTY, mode) as u (NULL: as the
 * caller), which may block for as long as the path makes it (a FIFO
 * nobody opens from the other end, a hung mount): it is given up as soon
 * as one of the n_abort_fds abort_fds (-1 entries skipped) is readable,
 * with -ECANCELED; the open left behind is interrupted where it can be,
 * and what it opens all the same is closed. Otherwise 0 and the fd in
 * *ret_fd, or open()'s -errno.
 */
int as_user_open(const struct user_ids *u, const char *path, int flags, mode_t mode,
                 const int *abort_fds, size_t n_abort_fds, int *ret_fd);
