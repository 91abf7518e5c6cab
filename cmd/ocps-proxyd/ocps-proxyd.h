/*
 * ocps-proxyd: what main.c and the token subcommand (token.c) share.
 */
#pragma once

/* `ocps-proxyd token create|list|revoke ...` (argv[0] is "token"): makes,
 * lists and revokes bearer tokens in a data dir's store, beside a running
 * daemon or without one. Returns the process's exit code. */
int token_main(int argc, char **argv);

struct supervisor;
struct watchdog;

/* The service manager's watchdog (watchdog.c): when it asked for one
 * (WatchdogSec=, so WATCHDOG_USEC), a thread sends WATCHDOG=1 each time
 * the supervisor thread has come round its loop (supervisor_alive()),
 * never on a timer alone, so that a daemon stuck in a backend or the
 * store stops pinging and is restarted. *ret is NULL when there is no
 * watchdog. -EAGAIN when the thread cannot start. */
int watchdog_start(struct supervisor *sv, struct watchdog **ret);
/* Stops the thread. Accepts NULL. */
void watchdog_stop(struct watchdog *w);
