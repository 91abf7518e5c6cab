/*
 * metrics_cost: what the metrics add to each HTTP request, alone: the two
 * monotonic clock reads (the request's head, its end), a counter by route
 * and status and a latency histogram, as lib/http/observe.c does them.
 * Not a test: bench/README.md says how to build and run it and records
 * the figure.
 */
#include "metrics.h"
#include "util/timeutil.h"

#include <time.h>

static struct metric_counter requests[33][17];
static struct metric_histogram durations = {.b = &metric_buckets_latency};

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        usec_t started = now_monotonic();
        metric_inc(&requests[i & 31][i & 15]);
        /* Spread over the buckets, as real latencies are. */
        metric_observe(&durations,
                       (uint64_t) (now_monotonic() - started) + (uint64_t) (i & 1023) * 100);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns =
        ((double) (b.tv_sec - a.tv_sec) * 1e9 + (double) (b.tv_nsec - a.tv_nsec)) / (double) n;
    printf("%.0f ns per request\n", ns);
    return 0;
}
