/*
 * error: an error code with words, carried up the call chain.
 *
 * A function that can fail returns int: >= 0 on success, a negative errno
 * on failure. When the caller needs words it passes a struct error as the
 * last argument; the callee fills it with error_set() and returns the same
 * negative code, and callers on the way up prefix context with
 * error_wrap() ("submit: start: fork: Resource temporarily unavailable"),
 * as crun's libcrun_error_t does.
 *
 * The error class decides the HTTP status in exactly one place,
 * error_http_status(): EINVAL/EBADMSG 400, ENOKEY 401, EPERM/EACCES 403, ENOENT 404,
 * EBADRQC 405, ENOMSG 406, EEXIST/EBUSY 409, E2BIG 413, EMEDIUMTYPE 415,
 * EUSERS 429, ENOSYS 501, EREMOTEIO 502 (a backend failed),
 * EROFS/ENOSPC/EAGAIN 503, everything else 500.
 *
 * 405 and 406 have no errno of their own. EBADRQC ("invalid request
 * code": the method is not one this resource takes) and ENOMSG ("no
 * message of the desired type": no reply in a type the Accept header
 * names) stand for them: no system call the daemon makes returns either,
 * so a failure from below cannot turn into one by accident, as
 * EOPNOTSUPP (returned by dlopen.c and the cgroup code) could.
 *
 * 401 is ENOKEY ("required key not available": the request carries no
 * credentials, or ones that are not valid), for the same reason: only the
 * kernel's keyring calls return it, and the daemon makes none. EACCES
 * stays 403: the caller is known and may not do this.
 *
 * 429 (a principal is over one of its quotas, quota.h) is EUSERS ("too
 * many users"), for the same reason: no system call the daemon makes
 * returns it, and its words are not far from the meaning.
 */
#pragma once

#include "util.h"

struct error {
    int code;  /* negative errno, 0 when no error is set */
    char *msg; /* owned; NULL when no error is set */
};

#define ERROR_INIT ((struct error){0, NULL})

/* Sets (replacing any earlier error) and returns code, which must be negative. */
int error_set(struct error *err, int code, const char *fmt, ...) _printf_(3, 4);
/* Same with strerror(-code) appended: "open /x: No such file or directory". */
int error_set_errno(struct error *err, int code, const char *fmt, ...) _printf_(3, 4);
/* Prefixes the message with "context: " and returns err->code. */
int error_wrap(struct error *err, const char *fmt, ...) _printf_(2, 3);
/* Frees the message and resets; accepts an unset error. */
void error_clear(struct error *err);
static inline void error_clearp(struct error *err)
{
    error_clear(err);
}
#define _cleanup_error_ _cleanup_(error_clearp)

/* The message, or a generic one from the code when none was set. */
const char *error_message(const struct error *err);

/* The HTTP status for an error code (negative errno). */
int error_http_status(int code);
