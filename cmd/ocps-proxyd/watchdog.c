/*
 * watchdog: WATCHDOG=1 to the service manager while the supervisor's loop
 * goes round (see ocps-proxyd.h). A third of the interval between
 * checks, and as long again for the supervisor to answer: a ping at
 * least every two thirds of WatchdogSec while it is alive.
 */
#include "ocps-proxyd.h"
#include "supervisor.h"
#include "util/log.h"
#include "util/systemd.h"

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>

struct watchdog {
    struct supervisor *sv;
    usec_t period;
    int stop_fd; /* readable once watchdog_stop() is called */
    pthread_t thread;
};

static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    (void) pthread_setname_np(pthread_self(), "ocps-watchdog");
    bool stuck = false;
    for (;;) {
        int r = supervisor_alive(w->sv, w->period);
        if (r == 0) {
            systemd_notify("WATCHDOG=1");
            if (stuck)
                log_info("watchdog: the supervisor goes round again; pinging again");
            stuck = false;
        } else if (!stuck) {
            log_error("watchdog: the supervisor did not come round its loop within %" PRId64
                      " ms; not pinging the service manager, which restarts us if it stays so",
                      w->period / USEC_PER_MSEC);
            stuck = true;
        }
        struct pollfd p = {.fd = w->stop_fd, .events = POLLIN};
        int timeout = (int) MIN(w->period / USEC_PER_MSEC, (usec_t) INT32_MAX);
        if (poll(&p, 1, MAX(timeout, 1)) > 0)
            return NULL;
    }
}

int watchdog_start(struct supervisor *sv, struct watchdog **ret)
{
    usec_t interval = systemd_watchdog_usec();
    if (interval <= 0) {
        *ret = NULL;
        return 0;
    }
    struct watchdog *w = xcalloc(1, sizeof(*w));
    w->sv = sv;
    w->period = MAX(interval / 3, (usec_t) 1000);
    w->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (w->stop_fd < 0 || pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
        if (w->stop_fd >= 0)
            (void) close(w->stop_fd);
        free(w);
        return -EAGAIN;
    }
    log_info("watchdog: every %" PRId64 " ms while the supervisor goes round (WatchdogSec %" PRId64
             " ms)",
             w->period / USEC_PER_MSEC, interval / USEC_PER_MSEC);
    *ret = w;
    return 0;
}

void watchdog_stop(struct watchdog *w)
{
    if (!w)
        return;
    uint64_t one = 1;
    (void) !write(w->stop_fd, &one, sizeof(one));
    pthread_join(w->thread, NULL);
    (void) close(w->stop_fd);
    free(w);
}
