/*
 * systemd: the daemon's side of the service manager's protocols, through
 * libsystemd: readiness and status (sd_notify), the watchdog's interval,
 * the listening sockets a .socket unit passes (sd_listen_fds) and the
 * journal's native protocol (sd_journal_send) for log.c.
 *
 * Built without libsystemd (meson -Dsystemd=disabled, the sidecar image)
 * every call is a no-op: nothing is notified, no socket is inherited and
 * the journal is never in use. Without a service manager (no
 * NOTIFY_SOCKET, no LISTEN_FDS, no JOURNAL_STREAM) the same holds at run
 * time, so callers never test for either.
 */
#pragma once

#include "timeutil.h"
#include "util.h"

#include <sys/uio.h>

/* Tells the service manager a state ("READY=1", "STOPPING=1",
 * "STATUS=...", "WATCHDOG=1"): sd_notify(3). Errors are ignored: a
 * manager that cannot be told will act on our exit instead. */
void systemd_notify(const char *state);
void systemd_notifyf(const char *fmt, ...) _printf_(1, 2);

/* The watchdog's interval the manager asked for (WATCHDOG_USEC, when
 * WATCHDOG_PID is ours or unset): we must send "WATCHDOG=1" more often
 * than that. 0 when there is no watchdog. */
usec_t systemd_watchdog_usec(void);

/* The listening sockets passed to us (LISTEN_FDS, when LISTEN_PID is
 * ours), from SD_LISTEN_FDS_START on, each made close-on-exec so that no
 * shim or task inherits one; the variables are unset so that no child
 * believes they are for it. Returns how many (0: none), with *ret_fds
 * allocated (NULL for none; the caller frees the array and owns the
 * fds); a negative errno when the variables are malformed. Call once. */
int systemd_listen_fds(int **ret_fds);

/* Whether stderr is a stream to the journal: JOURNAL_STREAM names the
 * device and inode of a socket and stderr is that socket (systemd.exec(5)).
 * A stderr redirected elsewhere by a child's shell keeps the variable but
 * not the inode, and gets plain lines. */
bool systemd_stderr_is_journal(void);

/* Sends one entry of fields ("MESSAGE=...", "PRIORITY=3", ...) to the
 * journal's native socket: sd_journal_sendv(3). Negative errno on
 * failure (-ENOSYS without libsystemd). */
int systemd_journal_sendv(const struct iovec *iov, size_t n);
