/*
 * principal: who a request comes from. The HTTP layer makes one for each
 * request before its handler runs, from how the caller proved who it is:
 *
 *   PRINCIPAL_UNIX      a unix-socket peer: its uid (SO_PEERCRED) names
 *                       its account, and the principal is that account's
 *                       name; root, or the daemon's own uid, is an admin
 *   PRINCIPAL_TOKEN     a bearer token: the principal it was issued to
 *   PRINCIPAL_CERT      a TLS client certificate: its subject's name
 *   PRINCIPAL_LISTENER  a listener opened without authentication (an
 *                       explicit opt-in, loopback only): the one principal
 *                       it maps every request to
 *
 * What a principal may do is its policy (policy.h): the config's entry
 * of its name, or the default one; an admin sees and deletes every task.
 * A task records the name of the principal that submitted it, and only
 * that principal, an admin, or the account it runs as sees it
 * (principal_sees).
 */
#pragma once

#include "policy.h"

#include <sys/types.h>

enum principal_via {
    PRINCIPAL_UNIX,
    PRINCIPAL_TOKEN,
    PRINCIPAL_CERT,
    PRINCIPAL_LISTENER,
    _PRINCIPAL_VIA_MAX,
    _PRINCIPAL_VIA_INVALID = -EINVAL,
};

const char *principal_via_to_string(enum principal_via v); /* "unix", "token", ... */
enum principal_via principal_via_from_string(const char *s);

struct principal {
    char *name;
    enum principal_via via;
    bool admin;
    uid_t uid;     /* PRINCIPAL_UNIX: the peer's uid; (uid_t) -1 otherwise */
    char *account; /* PRINCIPAL_UNIX: the peer's own account, which it may always run as */
    const struct policy *policy; /* never NULL; owned by the config */
};

/* A principal of the given name, with its policy from s; admin when the
 * policy says so or 'admin' (the admin token made at first start). */
struct principal *principal_new(const struct policy_set *s, const char *name,
                                enum principal_via via, bool admin);
/* A unix-socket peer's principal. -EACCES when its uid has no account
 * (a peer we cannot name gets nothing), or when the daemon is not root
 * and the peer is not of the daemon's own uid (fail closed). */
int principal_new_unix(const struct policy_set *s, uid_t uid, struct principal **ret,
                       struct error *err);
struct principal *principal_free(struct principal *p);
static inline void principal_freep(struct principal **p)
{
    principal_free(*p);
}

/* Whether p may see (read, follow, delete) a task that the principal
 * 'owner' submitted to run as 'user': an admin sees every task, a
 * principal those it submitted, a unix-socket peer also those that run as
 * its own account (their processes are its own). */
bool principal_sees(const struct principal *p, const char *owner, const char *user);
