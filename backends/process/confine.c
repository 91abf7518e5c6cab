/*
 * confine: account lookup and the privilege drop before exec (confine.h).
 * The order of the steps is the one REFERENCE.md records as working:
 * no_new_privs, bounding set (needs CAP_SETPCAP, so while still root),
 * ambient, groups, gid, uid, then whatever capabilities remain.
 */
#include "confine.h"
#include "account.h"
#include "util/util.h"

#include <sys/syscall.h>
#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>

void confine_user_done(struct confine_user *u)
{
    free(u->groups);
    free(u->name);
    free(u->home);
    free(u->shell);
    *u = (struct confine_user){0};
}

/* Takes a's contents. */
static void from_account(struct account *a, bool change, struct confine_user *ret)
{
    *ret = (struct confine_user){
        .change = change,
        .uid = a->uid,
        .gid = a->gid,
        .groups = TAKE_PTR(a->groups),
        .n_groups = a->n_groups,
        .name = TAKE_PTR(a->name),
        .home = TAKE_PTR(a->home),
        .shell = TAKE_PTR(a->shell),
    };
    account_done(a);
}

int confine_account_lookup(const char *name, struct confine_user *ret, struct error *err)
{
    struct account a;
    int r = account_lookup(name, &a, err);
    if (r < 0)
        return r;
    /* The last line: the policy decided at submit; whatever it let
     * through, nothing runs as root here. */
    if (a.uid == 0 || account_in_group(&a, 0)) {
        account_done(&a);
        return error_set(err, -EACCES, "user: %s has uid 0 or gid 0: tasks never run as root",
                         name);
    }
    from_account(&a, true, ret);
    return 0;
}

int confine_user_lookup(const char *name, struct confine_user *ret, struct error *err)
{
    if (geteuid() != 0) {
        /* Unprivileged daemon: everything runs as us; "user" only records the owner. */
        struct account a;
        int r = account_lookup_uid(geteuid(), &a, err);
        if (r < 0)
            return r;
        from_account(&a, false, ret);
        return 0;
    }
    return confine_account_lookup(name, ret, err);
}

int confine_drop_bounding_set(void)
{
    /* Every capability the kernel has, not only those our headers name: it
     * answers EINVAL past its last one. One call each (each makes new
     * credentials), no CAP_IS_SUPPORTED probe first. */
    for (cap_value_t c = 0;; c++) {
        if (cap_drop_bound(c) == 0)
            continue;
        if (errno == EINVAL)
            return 0;
        return -errno;
    }
}

int confine_apply(const struct confine_user *u, bool bounding_set_empty, const char **ret_step)
{
    const char *step = "";
    int r = 0;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        step = "set no_new_privs";
        goto fail;
    }
    if (!bounding_set_empty) {
        r = confine_drop_bounding_set();
        if (r == -EPERM && geteuid() != 0)
            r = 0; /* unprivileged: nothing to drop that we could use */
        if (r < 0) {
            errno = -r;
            step = "drop the capability bounding set";
            goto fail;
        }
    }
    /* One call; libcap's cap_reset_ambient() first reads every capability. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
        step = "clear ambient capabilities";
        goto fail;
    }
    /* Raw system calls from here: glibc's wrappers would broadcast the change
     * to every thread they believe we have, and in a vfork()ed child those
     * are the shim's. capset() rather than cap_init(): no malloc. */
    if (u->change) {
        /* The last line of all: a bug anywhere above does not make root. */
        bool root = u->uid == 0 || u->gid == 0;
        for (int i = 0; i < u->n_groups && !root; i++)
            root = u->groups[i] == 0;
        if (root) {
            errno = EPERM;
            step = "refuse to run as uid 0 or gid 0";
            goto fail;
        }
        if (syscall(SYS_setgroups, (size_t) u->n_groups, u->groups) < 0) {
            step = "setgroups";
            goto fail;
        }
        if (syscall(SYS_setresgid, u->gid, u->gid, u->gid) < 0) {
            step = "setresgid";
            goto fail;
        }
        if (syscall(SYS_setresuid, u->uid, u->uid, u->uid) < 0) {
            step = "setresuid";
            goto fail;
        }
    }
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3] = {{0}};
    if (syscall(SYS_capset, &hdr, none) < 0) {
        step = "clear capabilities";
        goto fail;
    }
    return 0;
fail:
    r = -errno;
    if (ret_step)
        *ret_step = step;
    return r ? r : -EPERM;
}
