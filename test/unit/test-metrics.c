/* Unit tests: metrics (histograms, the Prometheus text format's writers, the registry). */
#include "metrics.h"
#include "tap.h"

/* What fn wrote, as a string (caller frees). */
static char *written(void (*fn)(FILE *f, void *userdata), void *userdata)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fn(f, userdata);
    fclose(f);
    return text;
}

static void write_histogram(FILE *f, void *userdata)
{
    metrics_family(f, "t_seconds", "histogram", "A test.");
    metrics_histogram(f, "t_seconds", (const char *const[]){"route", "/a/{id}", NULL}, userdata);
}

static void test_histogram(void)
{
    static const struct metric_buckets b = {.n = 3, .scale = 1e6, .le = {1000, 10000, 100000}};
    struct metric_histogram h = {.b = &b};
    /* One on a bound (le is inclusive), one inside, two past the last. */
    metric_observe(&h, 1000);
    metric_observe(&h, 5000);
    metric_observe(&h, 200000);
    metric_observe(&h, 300000);
    _cleanup_free_ char *text = written(write_histogram, &h);
    const char *want = "# HELP t_seconds A test.\n"
                       "# TYPE t_seconds histogram\n"
                       "t_seconds_bucket{route=\"/a/{id}\",le=\"0.001\"} 1\n"
                       "t_seconds_bucket{route=\"/a/{id}\",le=\"0.01\"} 2\n"
                       "t_seconds_bucket{route=\"/a/{id}\",le=\"0.1\"} 2\n"
                       "t_seconds_bucket{route=\"/a/{id}\",le=\"+Inf\"} 4\n"
                       "t_seconds_sum{route=\"/a/{id}\"} 0.506\n"
                       "t_seconds_count{route=\"/a/{id}\"} 4\n";
    ok(streq(text, want), "a histogram: cumulative buckets, le inclusive, +Inf, sum and count");
    if (!streq(text, want))
        diag("%s", text);
}

static void write_escapes(FILE *f, void *userdata)
{
    metrics_family(f, "t_total", "counter", "Back\\slash and\nnewline.");
    metrics_sample_u64(f, "t_total", (const char *const[]){"v", "a\"b\\c\nd", "w", "", NULL},
                       UINT64_MAX);
    metrics_sample(f, "t_plain", NULL, 20);
    metrics_sample(f, "t_plain", NULL, 0.25);
    metrics_sample(f, "t_plain", NULL, 1e300 * 1e300);
}

static void test_text(void)
{
    _cleanup_free_ char *text = written(write_escapes, NULL);
    const char *want = "# HELP t_total Back\\\\slash and\\nnewline.\n"
                       "# TYPE t_total counter\n"
                       "t_total{v=\"a\\\"b\\\\c\\nd\",w=\"\"} 18446744073709551615\n"
                       "t_plain 20\n"
                       "t_plain 0.25\n"
                       "t_plain +Inf\n";
    ok(streq(text, want),
       "escapes in HELP and label values; integers exactly, numbers short, +Inf by name");
    if (!streq(text, want))
        diag("%s", text);
}

static int collected;

static void count_collect(FILE *f, void *userdata)
{
    collected++;
    fputs(userdata, f);
}

static void test_registry(void)
{
    static struct metrics_collector a = {.collect = count_collect, .userdata = "a\n"};
    static struct metrics_collector b = {.collect = count_collect, .userdata = "b\n"};
    metrics_register(&a);
    metrics_register(&b);
    metrics_register(&a);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    metrics_collect(f);
    fclose(f);
    ok(collected == 2 && streq(text, "a\nb\n"),
       "collectors write in the order they registered, once however often registered");
    free(text);
}

int main(void)
{
    test_histogram();
    test_text();
    test_registry();
    return tap_done();
}
