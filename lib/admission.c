/* admission: see admission.h. */
#include "admission.h"
#include "task.h"

/* Nothing smaller can be asked for: with less free, no task fits. */
#define MIN_CORES ((uint64_t) (ADMISSION_CORE / 100))

/* Millionths, rounded to the nearest (cores are never negative). */
static uint64_t micro(double cores)
{
    return cores > 0 ? (uint64_t) (cores * (double) ADMISSION_CORE + 0.5) : 0;
}

uint32_t admission_cores(double cores)
{
    return (uint32_t) micro(cores);
}

void admission_init(struct admission *a, double cap_cores, uint64_t cap_memory)
{
    *a = (struct admission){
        .cap_cores = micro(cap_cores),
        .cap_memory = cap_memory,
        .principals = hashmap_new(),
    };
}

static void principal_free(void *value, void *userdata)
{
    struct admission_principal *p = value;
    for (struct admission_level *l = p->levels, *n; l; l = n) {
        n = l->next;
        free(l);
    }
    free(p->name);
    free(p);
}

void admission_done(struct admission *a)
{
    hashmap_foreach(a->principals, principal_free, NULL);
    hashmap_free(a->principals);
    free(a->order);
    *a = (struct admission){};
}

/* ---- per principal ---- */

static struct admission_principal *principal_get(struct admission *a, const char *name,
                                                 unsigned weight)
{
    struct admission_principal *p = hashmap_get(a->principals, name);
    if (!p) {
        p = xcalloc(1, sizeof(*p));
        p->name = xstrdup(name);
        p->weight = MAX(weight, 1u);
        hashmap_put(a->principals, p->name, p);
    }
    return p;
}

/* After an entry let go of p: a principal with nothing queued or held goes. */
static void principal_put(struct admission *a, struct admission_principal *p)
{
    if (p->n_queued == 0 && p->n_held == 0 && p->n_uncounted == 0) {
        hashmap_remove(a->principals, p->name);
        principal_free(p, NULL);
    }
}

const struct admission_principal *admission_principal_find(const struct admission *a,
                                                           const char *name)
{
    return hashmap_get(a->principals, name);
}

static struct admission_level *level_find(const struct admission_principal *p, int priority)
{
    for (struct admission_level *l = p->levels; l && l->priority >= priority; l = l->next)
        if (l->priority == priority)
            return l;
    return NULL;
}

static struct admission_level *level_get(struct admission_principal *p, int priority)
{
    struct admission_level **at = &p->levels;
    while (*at && (*at)->priority > priority)
        at = &(*at)->next;
    if (*at && (*at)->priority == priority)
        return *at;
    struct admission_level *l = xcalloc(1, sizeof(*l));
    l->priority = priority;
    l->next = *at;
    *at = l;
    return l;
}

static void level_drop(struct admission_principal *p, struct admission_level *l)
{
    struct admission_level **at = &p->levels;
    while (*at != l)
        at = &(*at)->next;
    *at = l->next;
    free(l);
}

static struct admission_entry *principal_head(const struct admission_principal *p)
{
    return p->levels ? p->levels->head : NULL;
}

/* ---- capacity ---- */

static uint64_t free_cores(const struct admission *a)
{
    return a->cap_cores - MIN(a->used_cores, a->cap_cores);
}

static uint64_t free_memory(const struct admission *a)
{
    return a->cap_memory - MIN(a->used_memory, a->cap_memory);
}

static bool fits(const struct admission *a, const struct admission_entry *e)
{
    return e->cores <= free_cores(a) && e->memory <= free_memory(a);
}

static bool reserved(const struct admission *a)
{
    return a->blocked && a->short_cores == 0 && a->short_memory == 0;
}

static void hold(struct admission *a, struct admission_entry *e)
{
    if (e->uncounted) {
        e->principal->n_held++;
        return;
    }
    a->used_cores += e->cores;
    a->used_memory += e->memory;
    e->principal->used_cores += e->cores;
    e->principal->used_memory += e->memory;
    e->principal->n_held++;
}

/* ---- the queue ---- */

/* (5.) */
static void enqueue_uncounted(struct admission *a, struct admission_entry *e,
                              struct admission_principal *p)
{
    e->principal = p;
    e->next = NULL;
    e->prev = a->uncounted_tail;
    if (e->prev)
        e->prev->next = e;
    else
        a->uncounted_head = e;
    a->uncounted_tail = e;
    p->n_uncounted++;
}

static void unqueue_uncounted(struct admission *a, struct admission_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        a->uncounted_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        a->uncounted_tail = e->prev;
    e->prev = e->next = NULL;
    e->principal->n_uncounted--;
}

void admission_enqueue(struct admission *a, struct admission_entry *e, const char *principal,
                       unsigned weight)
{
    struct admission_principal *p = principal_get(a, principal, weight);
    if (e->uncounted) {
        enqueue_uncounted(a, e, p);
        return;
    }
    struct admission_level *l = level_get(p, e->priority);
    struct admission_entry *after = l->tail;
    while (after && after->seq > e->seq)
        after = after->prev;
    e->principal = p;
    e->prev = after;
    e->next = after ? after->next : l->head;
    if (e->next)
        e->next->prev = e;
    else
        l->tail = e;
    if (after)
        after->next = e;
    else
        l->head = e;
    l->n++;
    if (p->n_queued++ == 0) {
        p->prev = NULL;
        p->next = a->waiting;
        if (a->waiting)
            a->waiting->prev = p;
        a->waiting = p;
        a->n_waiting++;
    }
    a->n_queued++;
    /* A task that does not fit changes no decision that found nothing
     * to start (submits to a long queue on a full host cost no scan). */
    if (fits(a, e))
        a->dirty = true;
}

/* Takes e out of its queue; it stays tied to its principal. */
static void unqueue(struct admission *a, struct admission_entry *e)
{
    struct admission_principal *p = e->principal;
    struct admission_level *l = level_find(p, e->priority);
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
    if (--l->n == 0)
        level_drop(p, l);
    if (--p->n_queued == 0) {
        if (p->prev)
            p->prev->next = p->next;
        else
            a->waiting = p->next;
        if (p->next)
            p->next->prev = p->prev;
        p->prev = p->next = NULL;
        a->n_waiting--;
    }
    a->n_queued--;
    if (a->blocked == e)
        a->blocked = NULL;
}

void admission_remove(struct admission *a, struct admission_entry *e)
{
    struct admission_principal *p = e->principal;
    if (e->uncounted) {
        unqueue_uncounted(a, e);
        e->principal = NULL;
        principal_put(a, p);
        return;
    }
    unqueue(a, e);
    e->principal = NULL;
    principal_put(a, p);
    a->dirty = true;
}

void admission_hold(struct admission *a, struct admission_entry *e, const char *principal,
                    unsigned weight)
{
    e->principal = principal_get(a, principal, weight);
    hold(a, e);
}

void admission_release(struct admission *a, struct admission_entry *e)
{
    if (e->uncounted) {
        struct admission_principal *p = e->principal;
        if (p) {
            p->n_held--;
            e->principal = NULL;
            principal_put(a, p);
        }
        return;
    }
    uint64_t cores = MIN(a->used_cores, (uint64_t) e->cores);
    uint64_t memory = MIN(a->used_memory, e->memory);
    a->used_cores -= cores;
    a->used_memory -= memory;
    if (a->blocked) {
        a->short_cores -= MIN(a->short_cores, cores);
        a->short_memory -= MIN(a->short_memory, memory);
    }
    struct admission_principal *p = e->principal;
    if (p) {
        p->used_cores -= MIN(p->used_cores, (uint64_t) e->cores);
        p->used_memory -= MIN(p->used_memory, e->memory);
        p->n_held--;
        e->principal = NULL;
        principal_put(a, p);
    }
    a->dirty = true;
}

/* ---- the decision ---- */

static double share_of(const struct admission *a, const struct admission_principal *p)
{
    double c = a->cap_cores ? (double) p->used_cores / (double) a->cap_cores : 0;
    double m = a->cap_memory ? (double) p->used_memory / (double) a->cap_memory : 0;
    return MAX(c, m) / p->weight;
}

/* Whose turn first: the smaller share, the older last start, the older head. */
static int turn_cmp(const struct admission_principal *x, const struct admission_principal *y)
{
    if (x->share != y->share)
        return x->share < y->share ? -1 : 1;
    if (x->last_start != y->last_start)
        return x->last_start < y->last_start ? -1 : 1;
    int64_t sx = principal_head(x)->seq, sy = principal_head(y)->seq;
    return (sx > sy) - (sx < sy);
}

static int turn_qsort_cmp(const void *x, const void *y)
{
    return turn_cmp(*(struct admission_principal *const *) x,
                    *(struct admission_principal *const *) y);
}

static struct admission_entry *take(struct admission *a, struct admission_entry *e)
{
    unqueue(a, e);
    hold(a, e);
    e->principal->last_start = ++a->n_starts;
    return e;
}

/* e, the first task found not to fit, is overtaken for the first time:
 * what it lacks now is its bound. */
static void block(struct admission *a, struct admission_entry *e)
{
    a->blocked = e;
    a->short_cores = e->cores - MIN((uint64_t) e->cores, free_cores(a));
    a->short_memory = e->memory - MIN(e->memory, free_memory(a));
}

struct admission_entry *admission_next(struct admission *a)
{
    struct admission_entry *u = a->uncounted_head;
    if (u) {
        unqueue_uncounted(a, u);
        hold(a, u);
        return u;
    }
    if (!a->dirty)
        return NULL;
    if (a->blocked && fits(a, a->blocked))
        return take(a, a->blocked);
    if (reserved(a) || a->n_queued == 0) {
        a->dirty = false;
        return NULL;
    }

    a->order = xgrow(a->order, &a->n_order_alloc, a->n_waiting, sizeof(*a->order));
    size_t n = 0;
    for (struct admission_principal *p = a->waiting; p; p = p->next) {
        p->share = share_of(a, p);
        a->order[n++] = p;
    }
    qsort(a->order, n, sizeof(*a->order), turn_qsort_cmp);

    struct admission_entry *first = NULL; /* the first that did not fit */
    size_t scanned = 0;
    for (size_t i = 0; i < n && scanned < ADMISSION_SCAN_MAX; i++) {
        size_t mine = 0;
        for (struct admission_level *l = a->order[i]->levels; l; l = l->next)
            for (struct admission_entry *e = l->head; e; e = e->next) {
                if (fits(a, e)) {
                    /* It overtakes 'first', which from now on counts its bound. */
                    if (first && !a->blocked)
                        block(a, first);
                    return take(a, e);
                }
                if (!first)
                    first = e;
                /* Nothing can fit in less than the smallest task. */
                if (free_cores(a) < MIN_CORES || free_memory(a) < TASK_MIN_MEMORY)
                    goto none;
                if (++scanned >= ADMISSION_SCAN_MAX || ++mine >= ADMISSION_SCAN_PRINCIPAL)
                    goto next_principal;
            }
    next_principal:;
    }
none:
    a->dirty = false;
    return NULL;
}

/* ---- words ---- */

static const char *cores_word(double n)
{
    return n == 1 ? "core" : "cores";
}

static double cores_of(uint64_t micro)
{
    return (double) micro / (double) ADMISSION_CORE;
}

/* "2 cores and 1 GiB" */
static char *amount(uint64_t cores, uint64_t memory)
{
    char buf[32];
    return xasprintf("%g %s and %s", cores_of(cores), cores_word(cores_of(cores)),
                     format_size_human(memory, buf));
}

static char *capacity_words(const struct admission *a, const struct admission_entry *e)
{
    _cleanup_free_ char *want = amount(e->cores, e->memory);
    _cleanup_free_ char *left = amount(free_cores(a), free_memory(a));
    return xasprintf("needs %s; %s free", want, left);
}

/* "1 core", "1 GiB", "1 core and 1 GiB": what the blocked task still lacks. */
static char *shortfall(const struct admission *a)
{
    char buf[32];
    double c = cores_of(a->short_cores);
    if (a->short_memory == 0)
        return xasprintf("%g %s", c, cores_word(c));
    if (a->short_cores == 0)
        return xstrdup(format_size_human(a->short_memory, buf));
    return xasprintf("%g %s and %s", c, cores_word(c), format_size_human(a->short_memory, buf));
}

/* How many principals go before p (an O(waiting principals) count). */
static size_t turns_before(const struct admission *a, const struct admission_principal *p)
{
    struct admission_principal me = *p;
    me.share = share_of(a, p);
    size_t n = 0;
    for (const struct admission_principal *q = a->waiting; q; q = q->next) {
        if (q == p)
            continue;
        struct admission_principal other = *q;
        other.share = share_of(a, q);
        if (turn_cmp(&other, &me) < 0)
            n++;
    }
    return n;
}

char *admission_describe(const struct admission *a, const struct admission_entry *e)
{
    const struct admission_principal *p = e->principal;
    if (e->uncounted)
        return xstrdup("waiting to be handed to its backend's own queue");
    _cleanup_free_ char *cap = capacity_words(a, e);

    if (e == a->blocked && reserved(a))
        return xasprintf("waiting for capacity, reserved for it: %s; nothing else starts "
                         "until it fits",
                         cap);
    if (e == a->blocked) {
        _cleanup_free_ char *s = shortfall(a);
        return xasprintf("waiting for capacity: %s; smaller tasks may start first until %s more "
                         "%s been released, then the capacity is reserved for it",
                         cap, s, a->short_cores && a->short_memory ? "have" : "has");
    }
    if (reserved(a)) {
        _cleanup_free_ char *big = amount(a->blocked->cores, a->blocked->memory);
        return xasprintf("waiting: the capacity is reserved for a task of %s that waited "
                         "longer (needs %s); nothing else starts until it fits",
                         a->blocked->principal->name, big);
    }

    size_t higher = 0;
    const struct admission_level *l = p->levels;
    for (; l && l->priority > e->priority; l = l->next)
        higher += l->n;
    if (e != l->head)
        return higher ? xasprintf("waiting behind earlier tasks of %s with priority %d (%s has "
                                  "%zu queued, %zu with a higher priority)",
                                  p->name, e->priority, p->name, p->n_queued, higher)
                      : xasprintf("waiting behind earlier tasks of %s with priority %d (%s has "
                                  "%zu queued)",
                                  p->name, e->priority, p->name, p->n_queued);
    if (higher)
        return xasprintf("waiting behind %zu %s of %s with a higher priority (%s has %zu queued)",
                         higher, higher == 1 ? "task" : "tasks", p->name, p->name, p->n_queued);

    size_t before = turns_before(a, p);
    if (before) {
        _cleanup_free_ char *held = amount(p->used_cores, p->used_memory);
        return xasprintf("waiting for its principal's turn: %zu other %s first (fair share: %s "
                         "holds %s, weight %u)",
                         before, before == 1 ? "principal goes" : "principals go", p->name, held,
                         p->weight);
    }
    return xasprintf("waiting for capacity: %s", cap);
}
