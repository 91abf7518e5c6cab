/*
 * metrics: see metrics.h. The histograms' observation, the text
 * format's writers (label escaping, numbers, the buckets' cumulative
 * counts) and the process's registry of collectors.
 */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>

const struct metric_buckets metric_buckets_latency = {
    .n = 16,
    .scale = 1e6,
    .le = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
           2500000, 5000000, 10000000},
};

const struct metric_buckets metric_buckets_task = {
    .n = 13,
    .scale = 1e6,
    .le = {10000, 100000, 1000000, 5000000, 15000000, 60000000, 300000000, 900000000, 3600000000,
           10800000000, 21600000000, 43200000000, 86400000000},
};

const struct metric_buckets metric_buckets_batch = {
    .n = 11,
    .scale = 1,
    .le = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
};

void metric_observe(struct metric_histogram *h, uint64_t v)
{
    size_t i = 0;
    while (i < h->b->n && v > h->b->le[i])
        i++;
    __atomic_add_fetch(&h->counts[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum, v, __ATOMIC_RELAXED);
}

/* ---- the text format ---- */

/* The shortest text that reads back as v; Prometheus' words for the
 * infinities and NaN. */
static void put_double(FILE *f, double v)
{
    if (isnan(v)) {
        fputs("NaN", f);
        return;
    }
    if (isinf(v)) {
        fputs(v > 0 ? "+Inf" : "-Inf", f);
        return;
    }
    char buf[32];
    if (fabs(v) < 1e15 && v == (double) (int64_t) v) {
        fprintf(f, "%" PRId64, (int64_t) v); /* 20, not 2e+01 */
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

/* HELP text escapes \ and newline; a label value " as well. */
static void put_escaped(FILE *f, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '"' && quote)
            fputs("\\\"", f);
        else
            fputc(*s, f);
    }
}

/* {k="v",...,le="x"}: the pairs of labels, then le if given; nothing
 * when there are no labels at all. */
static void put_labels(FILE *f, const char *const *labels, const double *le)
{
    bool any = false;
    for (const char *const *l = labels; l && l[0]; l += 2) {
        fputs(any ? "," : "{", f);
        fprintf(f, "%s=\"", l[0]);
        put_escaped(f, l[1] ? l[1] : "", true);
        fputc('"', f);
        any = true;
    }
    if (le) {
        fputs(any ? ",le=\"" : "{le=\"", f);
        put_double(f, *le);
        fputc('"', f);
        any = true;
    }
    if (any)
        fputc('}', f);
}

void metrics_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s ", name);
    put_escaped(f, help, false);
    fprintf(f, "\n# TYPE %s %s\n", name, type);
}

void metrics_sample(FILE *f, const char *name, const char *const *labels, double v)
{
    fputs(name, f);
    put_labels(f, labels, NULL);
    fputc(' ', f);
    put_double(f, v);
    fputc('\n', f);
}

void metrics_sample_u64(FILE *f, const char *name, const char *const *labels, uint64_t v)
{
    fputs(name, f);
    put_labels(f, labels, NULL);
    fprintf(f, " %" PRIu64 "\n", v);
}

void metrics_histogram(FILE *f, const char *name, const char *const *labels,
                       const struct metric_histogram *h)
{
    const struct metric_buckets *b = h->b;
    /* Read once, so that the buckets, +Inf and the count agree even while
     * observations go on; the sum is read after them and may be a few
     * observations ahead, as in any Prometheus client. */
    uint64_t counts[METRIC_BUCKETS_MAX + 1];
    for (size_t i = 0; i <= b->n; i++)
        counts[i] = __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
    uint64_t sum = __atomic_load_n(&h->sum, __ATOMIC_RELAXED);

    _cleanup_free_ char *bucket = xasprintf("%s_bucket", name);
    uint64_t cum = 0;
    for (size_t i = 0; i <= b->n; i++) {
        cum += counts[i];
        double le = i < b->n ? (double) b->le[i] / b->scale : INFINITY;
        fputs(bucket, f);
        put_labels(f, labels, &le);
        fprintf(f, " %" PRIu64 "\n", cum);
    }
    _cleanup_free_ char *sum_name = xasprintf("%s_sum", name);
    _cleanup_free_ char *count_name = xasprintf("%s_count", name);
    metrics_sample(f, sum_name, labels, (double) sum / b->scale);
    metrics_sample_u64(f, count_name, labels, cum);
}

/* ---- the registry ---- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_collector *registry_head, **registry_tail = &registry_head;

void metrics_register(struct metrics_collector *c)
{
    pthread_mutex_lock(&registry_lock);
    if (!c->registered) {
        c->registered = true;
        c->next = NULL;
        __atomic_store_n(registry_tail, c, __ATOMIC_RELEASE);
        registry_tail = &c->next;
    }
    pthread_mutex_unlock(&registry_lock);
}

void metrics_collect(FILE *f)
{
    /* Collectors are only ever added, at the tail: the list seen here
     * stays valid after the lock is dropped. */
    pthread_mutex_lock(&registry_lock);
    struct metrics_collector *head = registry_head;
    pthread_mutex_unlock(&registry_lock);
    for (struct metrics_collector *c = head; c; c = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE))
        c->collect(f, c->userdata);
}
