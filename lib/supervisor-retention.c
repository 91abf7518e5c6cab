/*
 * supervisor-retention: ended tasks are removed once the config's
 * retention has passed since their end (their store record and their
 * directory under the data dir; output files a task named itself are its
 * user's and stay), so the store does not grow without bound.
 *
 * The supervisor thread does it, in batches of SWEEP_BATCH between its
 * events, so no sweep holds up a start or an end for long. It never
 * polls: it keeps the time the oldest ended task falls due (sweep_at) and
 * sleeps until then or the next event; every end brings sweep_at forward
 * if it is the first one known. A task is removed up to SWEEP_SLACK after
 * it falls due, so ends a moment apart go in one sweep.
 */
#include "supervisor-internal.h"
#include "util/log.h"

#include <inttypes.h>

#define SWEEP_BATCH 32
#define SWEEP_SLACK (1 * USEC_PER_SEC)
/* When the store cannot be read, the next try. */
#define SWEEP_RETRY (60 * USEC_PER_SEC)

static usec_t retention_usec(const struct supervisor *sv)
{
    return (usec_t) sv->cfg->retention * USEC_PER_SEC;
}

/* sweep_at = MIN(sweep_at, at), waking the thread if it moved. */
static void sweep_no_later(struct supervisor *sv, usec_t at)
{
    pthread_mutex_lock(&sv->lock);
    if (at < sv->sweep_at) {
        sv->sweep_at = at;
        pthread_cond_signal(&sv->wake);
    }
    pthread_mutex_unlock(&sv->lock);
}

void sv_retain(struct supervisor *sv, usec_t finished)
{
    if (sv->cfg->retention)
        sweep_no_later(sv, finished + retention_usec(sv) + SWEEP_SLACK);
}

struct due {
    char id[37];
    usec_t finished;
};

struct due_list {
    struct due d[SWEEP_BATCH];
    size_t n;
};

static int collect(const char *id, usec_t finished, void *userdata)
{
    struct due_list *l = userdata;
    if (l->n == SWEEP_BATCH)
        return 1;
    snprintf(l->d[l->n].id, sizeof(l->d[l->n].id), "%s", id);
    l->d[l->n++].finished = finished;
    return 0;
}

/* The oldest ended task's due time (USEC_INFINITY: none); -errno if the store cannot say. */
static int next_due(struct supervisor *sv, usec_t *ret)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct due_list l = {0};
    int r = store_list_ended(sv->store, USEC_INFINITY, 1, collect, &l, &err);
    if (r < 0) {
        log_error("retention: %s", error_message(&err));
        return r;
    }
    *ret = l.n ? l.d[0].finished + retention_usec(sv) + SWEEP_SLACK : USEC_INFINITY;
    return 0;
}

void sv_sweep_init(struct supervisor *sv)
{
    usec_t at;
    if (sv->cfg->retention)
        sweep_no_later(sv, next_due(sv, &at) < 0 ? now_realtime() + SWEEP_RETRY : at);
}

/* "7d", "36h", "90m", "45s": the retention as the config would say it. */
static char *format_retention(uint64_t s, char buf[static 32])
{
    if (s % 86400 == 0)
        snprintf(buf, 32, "%" PRIu64 "d", s / 86400);
    else if (s % 3600 == 0)
        snprintf(buf, 32, "%" PRIu64 "h", s / 3600);
    else if (s % 60 == 0)
        snprintf(buf, 32, "%" PRIu64 "m", s / 60);
    else
        snprintf(buf, 32, "%" PRIu64 "s", s);
    return buf;
}

void sv_sweep(struct supervisor *sv)
{
    if (!sv->cfg->retention)
        return;
    _cleanup_error_ struct error err = ERROR_INIT;
    usec_t now = now_realtime();
    pthread_mutex_lock(&sv->lock);
    sv->sweep_at = USEC_INFINITY; /* ends from now on bring it forward again */
    pthread_mutex_unlock(&sv->lock);

    struct due_list l = {0};
    int r = store_list_ended(sv->store, now - retention_usec(sv), SWEEP_BATCH, collect, &l, &err);
    if (r < 0) {
        log_error("retention: %s", error_message(&err));
        sweep_no_later(sv, now + SWEEP_RETRY);
        return;
    }
    if (l.n > 0) {
        char when[32], kept[32];
        format_retention(sv->cfg->retention, kept);
        /* The files first: a crash between leaves a record, removed at the
         * next sweep, never a directory nothing refers to. */
        store_hold(sv->store);
        for (size_t i = 0; i < l.n; i++) {
            sv_remove_files(sv, l.d[i].id);
            store_forget(sv->store, l.d[i].id);
            log_info("task %s removed: it ended at %s, more than the retention of %s ago",
                     l.d[i].id, format_rfc3339(l.d[i].finished, when), kept);
        }
        store_flush(sv->store);
        /* Committed before the next look, which must not find them again. */
        (void) store_sync(sv->store);
    }
    usec_t at = now; /* a full batch: more may be due */
    if (l.n < SWEEP_BATCH && next_due(sv, &at) < 0)
        at = now + SWEEP_RETRY;
    sweep_no_later(sv, at);
}
