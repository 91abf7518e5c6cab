/* systemd: see systemd.h. */
#include "systemd.h"
#include "ocps-config.h"

#include <fcntl.h>
#include <sys/stat.h>

#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
/* log.c says where each event comes from; sd_journal_sendv would add
 * this file's line as a second CODE_FILE. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

void systemd_notify(const char *state)
{
    (void) sd_notify(0, state);
}

void systemd_notifyf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *s = xvasprintf(fmt, ap);
    va_end(ap);
    systemd_notify(s);
}

usec_t systemd_watchdog_usec(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec > (uint64_t) INT64_MAX ? INT64_MAX : (usec_t) usec;
}

int systemd_listen_fds(int **ret_fds)
{
    int n = sd_listen_fds(1);
    if (n < 0)
        return n;
    int *fds = n > 0 ? xcalloc((size_t) n, sizeof(int)) : NULL;
    for (int i = 0; i < n; i++) {
        fds[i] = SD_LISTEN_FDS_START + i;
        int flags = fcntl(fds[i], F_GETFD);
        if (flags >= 0)
            (void) fcntl(fds[i], F_SETFD, flags | FD_CLOEXEC);
    }
    *ret_fds = fds;
    return n;
}

int systemd_journal_sendv(const struct iovec *iov, size_t n)
{
    return sd_journal_sendv(iov, (int) n);
}

#else

void systemd_notify(const char *state)
{
}

void systemd_notifyf(const char *fmt, ...)
{
}

usec_t systemd_watchdog_usec(void)
{
    return 0;
}

int systemd_listen_fds(int **ret_fds)
{
    *ret_fds = NULL;
    return 0;
}

int systemd_journal_sendv(const struct iovec *iov, size_t n)
{
    return -ENOSYS;
}

#endif

bool systemd_stderr_is_journal(void)
{
    if (!HAVE_SYSTEMD)
        return false;
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}
