/*
 * Unit tests: admission (the supervisor's queues and capacity accounting).
 * Pure: no threads, no clock. The fair share, priorities and the backfill
 * bound are table-driven: each row is a capacity, the principals' weights
 * and a script of submits, starts, ends and cancels with what must start.
 */
#include "admission.h"
#include "tap.h"

#define GiB (1ULL << 30)
#define KiB (1ULL << 10)

static struct admission_entry entry(int64_t seq, double cores, uint64_t memory)
{
    return (struct admission_entry){.seq = seq, .cores = admission_cores(cores), .memory = memory};
}

#define CORES(n) ((uint64_t) ((n) *ADMISSION_CORE))

/* ---- the scripts ---------------------------------------------------------------------------- */

/*
 * A script is space-separated steps:
 *   +NAME:CORES[:GIB[:PRIORITY]]   submit a task (memory 1 GiB, priority 0 unless given); its
 *                                  principal is the first letter of NAME
 *   +PREFIX*N:...                  N such tasks, PREFIX1 .. PREFIXN
 *   >NAME,NAME,...                 these start, in this order (admission_next)
 *   >-                             nothing starts
 *   -NAME                          a started task ends (admission_release)
 *   xNAME                          a queued task is cancelled (admission_remove)
 */
struct script_row {
    const char *what;
    double cores;
    uint64_t memory_gib;
    const char *weights; /* "a=2,b=1"; any other principal has weight 1 */
    const char *script;
};

#define MAX_TASKS 1100

struct script_task {
    char name[32];
    struct admission_entry e;
};

struct run {
    struct admission a;
    struct script_task *tasks;
    size_t n;
    const char *weights;
    char *failure;
};

static struct script_task *find(struct run *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (streq(r->tasks[i].name, name))
            return &r->tasks[i];
    return NULL;
}

static const char *name_of(struct run *r, const struct admission_entry *e)
{
    for (size_t i = 0; i < r->n; i++)
        if (&r->tasks[i].e == e)
            return r->tasks[i].name;
    return "?";
}

static unsigned weight_of(const char *weights, char principal)
{
    for (const char *w = weights; w && *w; w++)
        if (w[0] == principal && w[1] == '=' && (w == weights || w[-1] == ','))
            return (unsigned) atoi(w + 2);
    return 1;
}

_printf_(2, 3) static void fail(struct run *r, const char *fmt, ...)
{
    if (r->failure)
        return;
    va_list ap;
    va_start(ap, fmt);
    r->failure = xvasprintf(fmt, ap);
    va_end(ap);
}

static void submit(struct run *r, const char *step)
{
    char prefix[16] = "";
    double cores = 1, gib = 1;
    int priority = 0, count = 1;
    const char *colon = strchr(step, ':');
    const char *star = memchr(step, '*', colon ? (size_t) (colon - step) : strlen(step));
    size_t len = star ? (size_t) (star - step) : colon ? (size_t) (colon - step) : strlen(step);
    snprintf(prefix, sizeof(prefix), "%.*s", (int) len, step);
    if (star)
        count = atoi(star + 1);
    if (colon)
        sscanf(colon + 1, "%lf:%lf:%d", &cores, &gib, &priority);
    for (int i = 1; i <= count; i++) {
        if (r->n == MAX_TASKS) {
            fail(r, "too many tasks");
            return;
        }
        struct script_task *t = &r->tasks[r->n];
        if (star)
            snprintf(t->name, sizeof(t->name), "%s%d", prefix, i);
        else
            snprintf(t->name, sizeof(t->name), "%s", prefix);
        t->e = entry((int64_t) ++r->n, cores, (uint64_t) (gib * (double) GiB));
        t->e.priority = (int16_t) priority;
        char principal[2] = {t->name[0], 0};
        admission_enqueue(&r->a, &t->e, principal, weight_of(r->weights, t->name[0]));
    }
}

static void expect_starts(struct run *r, const char *list)
{
    if (streq(list, "-")) {
        struct admission_entry *e = admission_next(&r->a);
        if (e)
            fail(r, "nothing should start, but %s did", name_of(r, e));
        return;
    }
    _cleanup_free_ char *copy = xstrdup(list);
    char *save = NULL;
    for (char *want = strtok_r(copy, ",", &save); want; want = strtok_r(NULL, ",", &save)) {
        struct admission_entry *e = admission_next(&r->a);
        if (!e || !streq(name_of(r, e), want)) {
            fail(r, "%s should start, but %s did", want, e ? name_of(r, e) : "nothing");
            return;
        }
    }
}

static char *run_script(const struct script_row *row)
{
    struct run r = {.tasks = xcalloc(MAX_TASKS, sizeof(struct script_task)),
                    .weights = row->weights};
    admission_init(&r.a, row->cores, row->memory_gib * GiB);
    _cleanup_free_ char *copy = xstrdup(row->script);
    char *save = NULL;
    for (char *step = strtok_r(copy, " ", &save); step && !r.failure;
         step = strtok_r(NULL, " ", &save)) {
        struct script_task *t = find(&r, step + 1);
        switch (step[0]) {
        case '+':
            submit(&r, step + 1);
            break;
        case '>':
            expect_starts(&r, step + 1);
            break;
        case '-':
        case 'x':
            if (!t)
                fail(&r, "%s: no such task", step);
            else if (step[0] == '-')
                admission_release(&r.a, &t->e);
            else
                admission_remove(&r.a, &t->e);
            break;
        default:
            fail(&r, "bad step %s", step);
        }
        if (r.failure) {
            char *f = xasprintf("at %s: %s", step, r.failure);
            free(r.failure);
            r.failure = f;
        }
    }
    admission_done(&r.a);
    free(r.tasks);
    return r.failure;
}

static const struct script_row scripts[] = {
    /* ---- fair share across principals ---- */
    {"one principal's 1000 queued tasks do not hold back another's first task", 1, 8, NULL,
     "+a*1000:1 >a1 >- +b1:1 >- -a1 >b1 -b1 >a2"},
    {"with room for one task, principals take turns (round robin), oldest head first", 1, 8, NULL,
     "+a1:1 +a2:1 +a3:1 +b1:1 +b2:1 +c1:1 >a1 -a1 >b1 -b1 >c1 -c1 >a2 -a2 >b2 -b2 >a3 -a3 >-"},
    {"a principal of weight 2 holds twice the share of one of weight 1", 3, 8, "a=2",
     "+a*6:1 +b*6:1 >a1,b1,a2 >- -b1 >b2 -a1 >a3 -a2 >a4 >- -b2 >b3"},
    {"weights decide even when the heavier principal came last", 4, 8, "b=3",
     "+a*4:1 +b*4:1 >a1,b1,b2,b3 >-"},
    {"the share is the dominant resource: memory counts as much as cores", 4, 4, NULL,
     "+a*4:0.1:1 +b*4:1:0.1 >a1,b1,a2,b2,a3,b3 >- -a1 >a4"},
    {"shares are of what is held now: having waited earns no extra turns", 2, 8, NULL,
     "+a*4:1 >a1,a2 +b*4:1 >- -a1 >b1 -a2 >a3 -b1 >b2"},

    /* ---- priority, within a principal ---- */
    {"priority orders a principal's tasks, higher first, then submission order", 1, 8, NULL,
     "+a1:1 +a2:1:1:5 +a3:1:1:-3 +a4:1:1:5 +a5:1 >a2 -a2 >a4 -a4 >a1 -a1 >a5 -a5 >a3"},
    {"priority does not cross principals", 1, 8, NULL,
     "+a1:1:1:1000 +a2:1:1:1000 +b1:1:1:-1000 >a1 -a1 >b1 -b1 >a2"},
    {"a cancelled task leaves its priority's queue in order", 1, 8, NULL,
     "+a1:1:1:7 +a2:1:1:7 +a3:1:1:7 +a4:1 +a5:1 xa2 >a1 -a1 >a3 -a3 >a4 xa5 -a4 >-"},

    /* ---- backfill and its bound ---- */
    {"a task that does not fit does not block a smaller one behind it", 2, 8, NULL,
     "+a1:1 >a1 +a2:2 +a3:1 >a3 >-"},
    {"the bound: overtaken until it would have fit, then the capacity is reserved", 2, 8, NULL,
     "+a1:1 >a1 +a2:2 +a3:1 +a4:1 +a5:1 >a3 >- -a1 >- -a3 >a2 >- -a2 >a4,a5"},
    {"other principals' small tasks overtake within the same bound", 2, 8, NULL,
     "+a1:1 >a1 +a2:2 +b*3:1 >b1 >- -a1 >b2 >- -b1 >- -b2 >a2 >-"},
    {"the bound in memory", 8, 4, NULL,
     "+a1:1:2 >a1 +a2:1:3 +a3:1:1 +a4:1:1 +a5:1:1 >a3,a4 -a1 >- -a3 >a2 >- -a4 >a5"},
    {"a task that waits only for capacity, overtaken by none, has no claim over a turn", 1, 8, NULL,
     "+a1:1 >a1 +a2:1 >- +b1:1 -a1 >b1 -b1 >a2"},
    {"cancelling the blocked task lifts its reservation", 2, 8, NULL,
     "+a1:1 >a1 +a2:2 +a3:1 +a4:1 >a3 -a1 >- xa2 >a4"},
    {"the blocked task keeps its claim when another principal's turn comes", 2, 8, NULL,
     "+a1:1 >a1 +a2:2 +a3:1 >a3 +b1:1 -a1 >- -a3 >a2 -a2 >b1"},
    {"backfill looks at most 32 of a principal's tasks, but at every principal", 2, 8, NULL,
     "+a1:1 >a1 +aB*40:2 +aS:1 >- +bS:1 >bS"},
    {"a task as big as the host starts when the host is free", 2, 8, NULL,
     "+a1:2 +a2:0.5 >a1 >- -a1 >a2"},
};

static void test_scripts(void)
{
    for (size_t i = 0; i < ELEMENTSOF(scripts); i++) {
        _cleanup_free_ char *failure = run_script(&scripts[i]);
        ok(!failure, "%s%s%s", scripts[i].what, failure ? ": " : "", failure ? failure : "");
    }
}

/* ---- the queue's structure ------------------------------------------------------------------ */

static void test_seq_order(void)
{
    struct admission a;
    admission_init(&a, 4, 8 * GiB);
    struct admission_entry e[5] = {entry(3, 1, GiB), entry(1, 1, GiB), entry(5, 1, GiB),
                                   entry(2, 1, GiB), entry(4, 1, GiB)};
    for (size_t i = 0; i < ELEMENTSOF(e); i++)
        admission_enqueue(&a, &e[i], "alice", 1);
    const struct admission_level *l = admission_principal_find(&a, "alice")->levels;
    ok(l && !l->next && l->head == &e[1] && l->head->next == &e[3] && e[3].next == &e[0] &&
           e[0].next == &e[4] && e[4].next == &e[2] && l->tail == &e[2] && e[2].prev == &e[4],
       "submits that commit out of order queue in seq order");

    admission_remove(&a, &e[0]); /* seq 3, the middle */
    admission_remove(&a, &e[1]); /* seq 1, the head */
    admission_remove(&a, &e[2]); /* seq 5, the tail */
    ok(l->head == &e[3] && l->tail == &e[4] && e[3].next == &e[4] && e[4].prev == &e[3] &&
           a.n_queued == 2 && l->n == 2,
       "cancels take tasks out of the middle, head and tail");

    struct admission_entry *n1 = admission_next(&a), *n2 = admission_next(&a);
    ok(n1 == &e[3] && n2 == &e[4] && !admission_next(&a) && a.n_queued == 0 && !a.waiting,
       "tasks start in seq order until the queue is empty");
    ok(a.used_cores == CORES(2) && a.used_memory == 2 * GiB,
       "each start holds its cores and memory");
    const struct admission_principal *p = admission_principal_find(&a, "alice");
    ok(p && !p->levels && p->n_queued == 0 && p->n_held == 2 && p->used_cores == CORES(2),
       "its principal counts what its tasks hold; an empty priority's queue is gone");
    admission_release(&a, n1);
    admission_release(&a, n2);
    ok(!admission_principal_find(&a, "alice") && a.used_cores == 0,
       "a principal with nothing queued or held is forgotten");
    admission_done(&a);
}

static void test_accounting(void)
{
    struct admission a;
    admission_init(&a, 0.3, 3 * GiB);
    struct admission_entry x = entry(1, 0.1, GiB), y = entry(2, 0.2, GiB), z = entry(3, 0.01, GiB);
    admission_enqueue(&a, &x, "p", 1);
    admission_enqueue(&a, &y, "p", 1);
    admission_enqueue(&a, &z, "p", 1);
    ok(admission_next(&a) == &x && admission_next(&a) == &y,
       "0.1 + 0.2 cores fit in a capacity of 0.3 (whole millionths)");
    ok(admission_next(&a) == NULL, "no room is left for 0.01 more");
    admission_release(&a, &x);
    admission_release(&a, &y);
    ok(a.used_cores == 0 && a.used_memory == 0, "releasing what was held gives exactly 0 back");
    admission_release(&a, &x);
    ok(a.used_cores == 0 && a.used_memory == 0, "releasing more than is held never goes below 0");
    admission_remove(&a, &z);
    admission_done(&a);

    struct admission m;
    admission_init(&m, 8, 2 * GiB);
    struct admission_entry fill = entry(1, 1, 2 * GiB), one = entry(2, 1, 1);
    admission_enqueue(&m, &fill, "p", 1);
    admission_enqueue(&m, &one, "p", 1);
    ok(admission_next(&m) == &fill && admission_next(&m) == NULL,
       "memory is a limit too: one byte over capacity waits");
    admission_done(&m);

    /* A restarted daemon holds what its recovered tasks hold, even past capacity. */
    struct admission r;
    admission_init(&r, 1, GiB);
    struct admission_entry rec1 = entry(1, 1, GiB), rec2 = entry(2, 1, GiB), q = entry(3, 1, 1);
    admission_hold(&r, &rec1, "p", 1);
    admission_hold(&r, &rec2, "p", 1);
    admission_enqueue(&r, &q, "p", 1);
    ok(admission_next(&r) == NULL, "over capacity after a recovery, nothing starts");
    ok(admission_principal_find(&r, "p")->used_cores == CORES(2),
       "the recovered tasks count for their principal");
    admission_release(&r, &rec1);
    ok(admission_next(&r) == NULL, "one released is not enough yet");
    admission_release(&r, &rec2);
    ok(admission_next(&r) == &q, "both released, the queued task starts");
    admission_done(&r);
}

/* ---- the words ------------------------------------------------------------------------------ */

static void test_describe(void)
{
    struct admission a;
    admission_init(&a, 2, 24683756 * KiB);
    struct admission_entry hog = entry(1, 1, 2 * GiB), head = entry(2, 2, GiB),
                           behind = entry(3, 0.5, GiB), behind2 = entry(4, 0.5, GiB),
                           behind3 = entry(5, 0.5, GiB);
    admission_enqueue(&a, &hog, "alice", 1);
    ok(admission_next(&a) == &hog, "a task takes a core");
    admission_enqueue(&a, &head, "alice", 1);
    admission_enqueue(&a, &behind, "alice", 1);
    admission_enqueue(&a, &behind2, "alice", 1);
    admission_enqueue(&a, &behind3, "alice", 1);
    _cleanup_free_ char *d1 = admission_describe(&a, &head);
    ok(streq(d1, "waiting for capacity: needs 2 cores and 1 GiB; 1 core and 21.5 GiB free"),
       "the next task says what it needs and what is free, in one unit form (%s)", d1);
    _cleanup_free_ char *d2 = admission_describe(&a, &behind);
    ok(streq(d2, "waiting behind earlier tasks of alice with priority 0 (alice has 4 queued)"),
       "a task behind it says it waits its turn among its principal's tasks (%s)", d2);
    ok(admission_next(&a) == &behind && a.blocked == &head,
       "a smaller task overtakes it, which is then the blocked task");
    _cleanup_free_ char *d3 = admission_describe(&a, &head);
    ok(streq(d3, "waiting for capacity: needs 2 cores and 1 GiB; 0.5 cores and 20.5 GiB free; "
                 "smaller tasks may start first until 1 core more has been released, then the "
                 "capacity is reserved for it"),
       "the blocked task says how long smaller ones may go first (%s)", d3);
    ok(admission_next(&a) == &behind2 && admission_next(&a) == NULL, "another fills the host");

    struct admission_entry urgent = entry(6, 0.5, GiB), bob = entry(7, 0.5, GiB);
    urgent.priority = 9;
    admission_enqueue(&a, &urgent, "alice", 1);
    admission_enqueue(&a, &bob, "bob", 1);
    _cleanup_free_ char *d4 = admission_describe(&a, &head);
    ok(streq(d4, "waiting for capacity: needs 2 cores and 1 GiB; 0 cores and 19.5 GiB free; "
                 "smaller tasks may start first until 1 core more has been released, then the "
                 "capacity is reserved for it"),
       "the blocked task keeps its claim behind a task of a higher priority (%s)", d4);
    _cleanup_free_ char *d5 = admission_describe(&a, &behind3);
    ok(streq(d5, "waiting behind earlier tasks of alice with priority 0 (alice has 3 queued, 1 "
                 "with a higher priority)"),
       "a task behind it counts the higher priority too (%s)", d5);
    _cleanup_free_ char *d6 = admission_describe(&a, &bob);
    ok(streq(d6, "waiting for capacity: needs 0.5 cores and 1 GiB; 0 cores and 19.5 GiB free"),
       "another principal's first task, whose turn it is, waits for capacity (%s)", d6);
    _cleanup_free_ char *d7 = admission_describe(&a, &urgent);
    ok(streq(d7, "waiting for its principal's turn: 1 other principal goes first (fair share: "
                 "alice holds 2 cores and 4 GiB, weight 1)"),
       "a principal's first task says when another principal goes first (%s)", d7);

    admission_release(&a, &hog); /* the core head lacked: its bound */
    _cleanup_free_ char *d8 = admission_describe(&a, &head);
    ok(streq(d8, "waiting for capacity, reserved for it: needs 2 cores and 1 GiB; 1 core and "
                 "21.5 GiB free; nothing else starts until it fits"),
       "past its bound, the capacity is reserved for it (%s)", d8);
    _cleanup_free_ char *d9 = admission_describe(&a, &bob);
    ok(streq(d9, "waiting: the capacity is reserved for a task of alice that waited longer "
                 "(needs 2 cores and 1 GiB); nothing else starts until it fits"),
       "and the others say so (%s)", d9);
    ok(admission_next(&a) == NULL, "bob's task, which would fit, waits");
    admission_release(&a, &behind);
    admission_release(&a, &behind2);
    ok(admission_next(&a) == &head, "the blocked task starts first");
    admission_release(&a, &head);
    _cleanup_free_ char *d10 = admission_describe(&a, &behind3);
    ok(streq(d10, "waiting behind 1 task of alice with a higher priority (alice has 2 queued)"),
       "the first of its priority waits for the higher one (%s)", d10);
    ok(admission_next(&a) == &bob, "bob's turn: alice started last");
    ok(admission_next(&a) == &urgent && admission_next(&a) == &behind3 && !admission_next(&a),
       "then alice's tasks, the higher priority first");
    admission_done(&a);

    struct admission b;
    admission_init(&b, 2, 24683756 * KiB);
    struct admission_entry h2 = entry(4, 3, GiB);
    admission_enqueue(&b, &h2, "alice", 1);
    _cleanup_free_ char *d11 = admission_describe(&b, &h2);
    ok(streq(d11, "waiting for capacity: needs 3 cores and 1 GiB; 2 cores and 23.5 GiB free"),
       "plural cores (%s)", d11);
    admission_remove(&b, &h2);
    admission_done(&b);
}

/* The cost of a decision and of a submit does not grow with the queue. */
static void test_long_queue(void)
{
    enum { N = 100000 };
    struct admission a;
    admission_init(&a, 2, 8 * GiB);
    struct admission_entry *e = xcalloc(N + 2, sizeof(*e));
    e[0] = entry(1, 2, GiB);
    admission_enqueue(&a, &e[0], "a", 1);
    ok(admission_next(&a) == &e[0], "a task holds every core");
    for (int i = 1; i <= N; i++) {
        e[i] = entry(i + 1, 1, GiB);
        admission_enqueue(&a, &e[i], "a", 1);
    }
    ok(admission_next(&a) == NULL && !a.blocked && !a.dirty,
       "nothing starts; nothing overtook the first queued task, so none is blocked");
    e[N + 1] = entry(N + 2, 1, GiB);
    admission_enqueue(&a, &e[N + 1], "b", 1);
    ok(!a.dirty, "a submit that cannot fit behind the blocked task needs no decision");
    admission_release(&a, &e[0]);
    ok(admission_next(&a) == &e[N + 1] && admission_next(&a) == &e[1],
       "b's first task starts first (a started last), then a's next");
    _cleanup_free_ char *d = admission_describe(&a, &e[N]);
    ok(streq(d, "waiting behind earlier tasks of a with priority 0 (a has 99999 queued)"),
       "the last of 99999 says so without counting them (%s)", d);
    admission_done(&a);
    free(e);
}

/* A remote backend's tasks (Slurm's): no host capacity, no reservation holds them. */
static void test_uncounted(void)
{
    struct admission a;
    admission_init(&a, 1, GiB);
    struct admission_entry full = entry(1, 1, GiB), big = entry(2, 1, GiB),
                           r1 = entry(3, 64, 100 * GiB), r2 = entry(4, 1, GiB);
    r1.uncounted = r2.uncounted = true;
    admission_enqueue(&a, &full, "p", 1);
    ok(admission_next(&a) == &full, "a local task takes the whole host");
    admission_enqueue(&a, &big, "q", 1);
    ok(admission_next(&a) == NULL, "another local one waits");
    admission_enqueue(&a, &r1, "q", 1);
    admission_enqueue(&a, &r2, "p", 1);
    ok(admission_next(&a) == &r1 && admission_next(&a) == &r2,
       "uncounted tasks start at once, in submit order, past the host's capacity");
    ok(admission_next(&a) == NULL, "the local one still waits");
    ok(a.used_cores == CORES(1) && a.used_memory == GiB, "uncounted tasks hold no capacity");
    ok(admission_principal_find(&a, "q")->used_cores == 0 &&
           admission_principal_find(&a, "q")->n_held == 1,
       "nor count towards their principal's share, though held");
    admission_release(&a, &r1);
    admission_release(&a, &r2);
    ok(a.used_cores == CORES(1), "their end gives nothing back");
    struct admission_entry r3 = entry(5, 1, GiB);
    r3.uncounted = true;
    admission_enqueue(&a, &r3, "z", 1);
    ok(admission_principal_find(&a, "z") != NULL, "a queued uncounted task keeps its principal");
    admission_remove(&a, &r3);
    ok(admission_principal_find(&a, "z") == NULL && admission_next(&a) == NULL,
       "cancelled before it started, it is gone");
    admission_release(&a, &full);
    ok(admission_next(&a) == &big, "the local one starts once the host is free");
    admission_release(&a, &big);
    ok(a.used_cores == 0 && a.used_memory == 0, "all given back");
    admission_done(&a);
}

int main(void)
{
    ok(sizeof(struct admission_entry) == 48, "an admission entry is 48 bytes (%zu)",
       sizeof(struct admission_entry));
    test_scripts();
    test_seq_order();
    test_accounting();
    test_describe();
    test_long_queue();
    test_uncounted();
    return tap_done();
}
