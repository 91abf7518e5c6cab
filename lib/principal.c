/* principal: see principal.h. */
#include "principal.h"
#include "account.h"

static const char *const via_table[_PRINCIPAL_VIA_MAX] = {
    [PRINCIPAL_UNIX] = "unix",
    [PRINCIPAL_TOKEN] = "token",
    [PRINCIPAL_CERT] = "certificate",
    [PRINCIPAL_LISTENER] = "listener",
};
DEFINE_STRING_TABLE_LOOKUP(principal_via, enum principal_via, via_table)

struct principal *principal_new(const struct policy_set *s, const char *name,
                                enum principal_via via, bool admin)
{
    struct principal *p = xcalloc(1, sizeof(*p));
    p->name = xstrdup(name);
    p->via = via;
    p->uid = (uid_t) -1;
    p->policy = policy_lookup(s, name);
    p->admin = admin || p->policy->admin;
    return p;
}

int principal_new_unix(const struct policy_set *s, uid_t uid, struct principal **ret,
                       struct error *err)
{
    /* A daemon that is not root runs every task as itself: a peer of
     * another account would act as the daemon's (fail closed). */
    uid_t self = geteuid();
    if (self != 0 && uid != self)
        return error_set(err, -EACCES,
                         "this daemon runs as uid %u, not root, and serves only that account on "
                         "its unix socket; the caller is uid %u",
                         (unsigned) self, (unsigned) uid);
    /* The host's account of that uid (account.h: a sidecar's host root). */
    _cleanup_free_ char *name = NULL;
    if (account_uid_name(uid, &name) < 0)
        return error_set(err, -EACCES, "the caller's uid %u has no account", (unsigned) uid);
    /* Root, and the account the daemon runs as, own the daemon already. */
    struct principal *p = principal_new(s, name, PRINCIPAL_UNIX, uid == 0 || uid == geteuid());
    p->uid = uid;
    p->account = TAKE_PTR(name);
    *ret = p;
    return 0;
}

struct principal *principal_free(struct principal *p)
{
    if (p) {
        free(p->name);
        free(p->account);
        free(p);
    }
    return NULL;
}

bool principal_sees(const struct principal *p, const char *owner, const char *user)
{
    return p->admin || streq_ptr(p->name, owner) ||
           (p->via == PRINCIPAL_UNIX && streq_ptr(p->account, user));
}
