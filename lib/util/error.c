/* error: see error.h. */
#include "error.h"

static int error_setv(struct error *err, int code, bool with_errno, const char *fmt, va_list ap)
{
    if (code >= 0)
        code = -EIO;
    char *msg = xvasprintf(fmt, ap);
    if (with_errno) {
        char *m = xasprintf("%s: %s", msg, strerror(-code));
        free(msg);
        msg = m;
    }
    free(err->msg);
    err->msg = msg;
    err->code = code;
    return code;
}

int error_set(struct error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = error_setv(err, code, false, fmt, ap);
    va_end(ap);
    return r;
}

int error_set_errno(struct error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = error_setv(err, code, true, fmt, ap);
    va_end(ap);
    return r;
}

int error_wrap(struct error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *ctx = xvasprintf(fmt, ap);
    va_end(ap);
    char *m = xasprintf("%s: %s", ctx, error_message(err));
    free(err->msg);
    err->msg = m;
    if (err->code >= 0)
        err->code = -EIO;
    return err->code;
}

void error_clear(struct error *err)
{
    free(err->msg);
    err->msg = NULL;
    err->code = 0;
}

const char *error_message(const struct error *err)
{
    if (err->msg)
        return err->msg;
    return err->code < 0 ? strerror(-err->code) : "no error";
}

int error_http_status(int code)
{
    switch (-code) {
    case EINVAL:
    case EBADMSG:
    case EDOM:
    case ERANGE:
        return 400;
    case ENOKEY:
        return 401;
    case EPERM:
    case EACCES:
        return 403;
    case ENOENT:
    case ESRCH:
        return 404;
    case EBADRQC:
        return 405;
    case ENOMSG:
        return 406;
    case EEXIST:
    case EBUSY:
        return 409;
    case E2BIG:
    case EMSGSIZE:
        return 413;
    case EMEDIUMTYPE:
        return 415;
    case EUSERS:
        return 429;
    case ENOSYS:
        return 501;
    case EREMOTEIO:
        return 502;
    case EROFS:
    case ENOSPC:
    case EAGAIN:
    case EDQUOT:
        return 503;
    default:
        return 500;
    }
}
