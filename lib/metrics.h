/*
 * metrics: the counters and histograms the daemon's modules keep, and
 * their exposition in the Prometheus text format, version 0.0.4 (GET
 * /metrics).
 *
 * Cheap where it counts: a counter is a 64-bit word added to with a
 * relaxed atomic; a histogram is a fixed array of such words, one per
 * bucket, and a sum, its bucket found by a scan of at most
 * METRIC_BUCKETS_MAX bounds. No lock and no allocation per observation.
 * Label values are known when a module starts (an enum, the route
 * table, the backends), so a labelled metric is an array indexed by
 * them, and nothing a client sends becomes a label value.
 *
 * Exposition is pulled: a module registers a collector (metrics_register)
 * that writes its families at scrape time with metrics_family() and the
 * sample writers below; gauges (the queue, what the process holds) are
 * read then, from their owner, not kept up to date on the hot paths. The
 * registry is the process's, as a Prometheus client library's default
 * registry: a module's metrics are the process's, whoever made the
 * module's object.
 *
 * Names follow Prometheus' conventions: the ocps_ prefix, base units
 * (_seconds, _bytes) as suffixes, _total on counters.
 */
#pragma once

#include "util/util.h"

struct metric_counter {
    uint64_t v;
};

static inline void metric_add(struct metric_counter *c, uint64_t n)
{
    __atomic_add_fetch(&c->v, n, __ATOMIC_RELAXED);
}
static inline void metric_inc(struct metric_counter *c)
{
    metric_add(c, 1);
}
static inline uint64_t metric_get(const struct metric_counter *c)
{
    return __atomic_load_n(&c->v, __ATOMIC_RELAXED);
}

#define METRIC_BUCKETS_MAX 16

/* A histogram's buckets: upper bounds (le) in the unit observed, an
 * integer one (microseconds, a count), ascending; exposed divided by
 * scale (1e6 turns microseconds into the seconds Prometheus wants). */
struct metric_buckets {
    size_t n;
    double scale;
    uint64_t le[METRIC_BUCKETS_MAX];
};

/* Request and call latencies: 100 us to 10 s, in microseconds. */
extern const struct metric_buckets metric_buckets_latency;
/* A task's time in the queue or running: 10 ms to a day, in microseconds. */
extern const struct metric_buckets metric_buckets_task;
/* Sizes of batches: 1 to 1024, in items. */
extern const struct metric_buckets metric_buckets_batch;

/* counts[i]: observations in bucket i alone (not cumulative: the
 * exposition sums them), counts[n]: those above the last bound. */
struct metric_histogram {
    const struct metric_buckets *b;
    uint64_t counts[METRIC_BUCKETS_MAX + 1];
    uint64_t sum;
};

void metric_observe(struct metric_histogram *h, uint64_t v);

/* ---- exposition ---- */

/* The content type of what metrics_collect() writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A family's # HELP and # TYPE lines ("counter", "gauge", "histogram");
 * its samples follow, all of them before the next family's. */
void metrics_family(FILE *f, const char *name, const char *type, const char *help);
/* One sample; labels: NULL, or "key", "value", ... pairs ending with
 * NULL (values escaped here). */
void metrics_sample(FILE *f, const char *name, const char *const *labels, double v);
/* One sample of an integer value, written exactly (counters past 2^53). */
void metrics_sample_u64(FILE *f, const char *name, const char *const *labels, uint64_t v);
/* A histogram's samples: name_bucket{...,le="..."} cumulative, +Inf
 * last, name_sum and name_count; labels as metrics_sample's. */
void metrics_histogram(FILE *f, const char *name, const char *const *labels,
                       const struct metric_histogram *h);

/* A module's part of the exposition: collect() writes its families. */
struct metrics_collector {
    void (*collect)(FILE *f, void *userdata);
    void *userdata;
    struct metrics_collector *next; /* the registry's */
    bool registered;                /* the registry's */
};

/* Adds c to the process's registry; a collector registered already is
 * left alone. c is never removed: it must live as long as the process
 * (a static). Thread-safe. */
void metrics_register(struct metrics_collector *c);
/* Every registered collector's families, in the order they registered. */
void metrics_collect(FILE *f);

/* The process's own (from /proc/self, at the call): resident memory,
 * open file descriptors, threads, CPU time and start time. */
void metrics_process(FILE *f);
