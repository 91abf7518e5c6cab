/* Unit tests: admission (the supervisor's queue and capacity accounting). */
#include "admission.h"
#include "tap.h"

#define GiB (1ULL << 30)
#define KiB (1ULL << 10)

static struct admission_entry entry(int64_t seq, double cores, uint64_t memory)
{
    return (struct admission_entry){.seq = seq, .cores = cores, .memory = memory};
}

/* The queue's seqs, front to back, as "1,2,3"; checks the back links too. */
static char *order(const struct admission *a)
{
    char *s = xstrdup("");
    const struct admission_entry *prev = NULL;
    size_t n = 0;
    for (const struct admission_entry *e = a->head; e; prev = e, e = e->next, n++) {
        if (e->prev != prev) {
            free(s);
            return xstrdup("broken back link");
        }
        char *t = xasprintf("%s%s%lld", s, *s ? "," : "", (long long) e->seq);
        free(s);
        s = t;
    }
    if (a->tail != prev || n != a->n_queued) {
        free(s);
        return xstrdup("broken tail or count");
    }
    return s;
}

static void test_fifo(void)
{
    struct admission a;
    admission_init(&a, 4, 8 * GiB);
    struct admission_entry e[5] = {entry(3, 1, GiB), entry(1, 1, GiB), entry(5, 1, GiB),
                                   entry(2, 1, GiB), entry(4, 1, GiB)};
    for (size_t i = 0; i < ELEMENTSOF(e); i++)
        admission_enqueue(&a, &e[i]);
    _cleanup_free_ char *o = order(&a);
    ok(streq(o, "1,2,3,4,5"), "submits that commit out of order queue in seq order (%s)", o);

    admission_remove(&a, &e[0]); /* seq 3, the middle */
    admission_remove(&a, &e[1]); /* seq 1, the head */
    admission_remove(&a, &e[2]); /* seq 5, the tail */
    _cleanup_free_ char *o2 = order(&a);
    ok(streq(o2, "2,4") && a.n_queued == 2,
       "cancels take tasks out of the middle, head and tail (%s)", o2);

    struct admission_entry *n1 = admission_next(&a), *n2 = admission_next(&a);
    ok(n1 == &e[3] && n2 == &e[4] && !admission_next(&a) && a.n_queued == 0 && !a.head && !a.tail,
       "tasks start in seq order until the queue is empty");
    ok(a.used_cores == 2 && a.used_memory == 2 * GiB, "each start holds its cores and memory");
}

static void test_strict_fifo(void)
{
    struct admission a;
    admission_init(&a, 2, 4 * GiB);
    struct admission_entry running = entry(1, 1, GiB), big = entry(2, 2, GiB),
                           small = entry(3, 1, GiB);
    admission_enqueue(&a, &running);
    admission_enqueue(&a, &big);
    admission_enqueue(&a, &small);
    ok(admission_next(&a) == &running, "the first task starts");
    ok(admission_next(&a) == NULL, "a head that does not fit waits...");
    ok(a.head == &big && a.n_queued == 2,
       "... and the small task behind it, which would fit, does not overtake it");
    admission_release(&a, &running);
    ok(admission_next(&a) == &big, "the head starts once the capacity is back");
    ok(admission_next(&a) == NULL && a.head == &small, "then the next waits for the head's cores");
    admission_release(&a, &big);
    ok(admission_next(&a) == &small && a.used_cores == 1 && a.used_memory == GiB,
       "and starts after it");
}

static void test_accounting(void)
{
    struct admission a;
    admission_init(&a, 0.3, 3 * GiB);
    struct admission_entry x = entry(1, 0.1, GiB), y = entry(2, 0.2, GiB), z = entry(3, 0.01, GiB);
    admission_enqueue(&a, &x);
    admission_enqueue(&a, &y);
    admission_enqueue(&a, &z);
    ok(admission_next(&a) == &x && admission_next(&a) == &y,
       "0.1 + 0.2 cores fit in a capacity of 0.3 (floating point)");
    ok(admission_next(&a) == NULL, "no room is left for 0.01 more");
    admission_release(&a, &x);
    admission_release(&a, &y);
    ok(a.used_cores == 0 && a.used_memory == 0, "releasing what was held gives exactly 0 back");
    admission_release(&a, &x);
    ok(a.used_cores == 0 && a.used_memory == 0, "releasing more than is held never goes below 0");

    struct admission m;
    admission_init(&m, 8, 2 * GiB);
    struct admission_entry fill = entry(1, 1, 2 * GiB), one = entry(2, 1, 1);
    admission_enqueue(&m, &fill);
    admission_enqueue(&m, &one);
    ok(admission_next(&m) == &fill && admission_next(&m) == NULL,
       "memory is a limit too: one byte over capacity waits");

    /* A restarted daemon holds what its recovered tasks hold, even past capacity. */
    struct admission r;
    admission_init(&r, 1, GiB);
    struct admission_entry rec1 = entry(1, 1, GiB), rec2 = entry(2, 1, GiB), q = entry(3, 1, 1);
    admission_hold(&r, &rec1);
    admission_hold(&r, &rec2);
    admission_enqueue(&r, &q);
    ok(admission_next(&r) == NULL, "over capacity after a recovery, nothing starts");
    _cleanup_free_ char *d = admission_describe(&r, &q);
    ok(streq(d, "waiting for capacity: needs 1 core and 1 bytes; 0 cores and 0 bytes free"),
       "and the queued task says none is free (%s)", d);
    admission_release(&r, &rec1);
    ok(admission_next(&r) == NULL, "one released is not enough yet");
    admission_release(&r, &rec2);
    ok(admission_next(&r) == &q, "both released, the queued task starts");
}

static void test_describe(void)
{
    struct admission a;
    admission_init(&a, 2, 24683756 * KiB);
    struct admission_entry hog = entry(1, 2, 2097152 * KiB), head = entry(2, 1, GiB),
                           behind = entry(3, 0.5, GiB);
    admission_enqueue(&a, &hog);
    ok(admission_next(&a) == &hog, "a task takes both cores");
    admission_enqueue(&a, &head);
    admission_enqueue(&a, &behind);
    _cleanup_free_ char *d1 = admission_describe(&a, &head);
    ok(streq(d1, "waiting for capacity: needs 1 core and 1 GiB; 0 cores and 21.5 GiB free"),
       "the head says what it needs and what is free, in one unit form (%s)", d1);
    _cleanup_free_ char *d2 = admission_describe(&a, &behind);
    ok(streq(d2, "waiting in the queue behind earlier tasks (2 queued)"),
       "a task behind it says it waits its turn (%s)", d2);
    admission_release(&a, &hog);
    struct admission_entry h2 = entry(4, 3, GiB);
    admission_remove(&a, &head);
    admission_remove(&a, &behind);
    admission_enqueue(&a, &h2);
    _cleanup_free_ char *d3 = admission_describe(&a, &h2);
    ok(streq(d3, "waiting for capacity: needs 3 cores and 1 GiB; 2 cores and 23.5 GiB free"),
       "plural cores (%s)", d3);
}

int main(void)
{
    test_fifo();
    test_strict_fifo();
    test_accounting();
    test_describe();
    return tap_done();
}
