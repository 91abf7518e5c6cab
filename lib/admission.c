/* admission: see admission.h. */
#include "admission.h"
#include "task.h"

/* 0.1 + 0.2 cores fit in 0.3. */
#define CORES_EPSILON 1e-9

void admission_init(struct admission *a, double cap_cores, uint64_t cap_memory)
{
    *a = (struct admission){.cap_cores = cap_cores, .cap_memory = cap_memory};
}

void admission_enqueue(struct admission *a, struct admission_entry *e)
{
    struct admission_entry *after = a->tail;
    while (after && after->seq > e->seq)
        after = after->prev;
    e->prev = after;
    e->next = after ? after->next : a->head;
    if (e->next)
        e->next->prev = e;
    else
        a->tail = e;
    if (after)
        after->next = e;
    else
        a->head = e;
    a->n_queued++;
}

void admission_remove(struct admission *a, struct admission_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        a->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        a->tail = e->prev;
    e->prev = e->next = NULL;
    a->n_queued--;
}

static bool fits(const struct admission *a, const struct admission_entry *e)
{
    return a->used_cores + e->cores <= a->cap_cores + CORES_EPSILON &&
           e->memory <= a->cap_memory - MIN(a->used_memory, a->cap_memory);
}

struct admission_entry *admission_next(struct admission *a)
{
    struct admission_entry *e = a->head;
    if (!e || !fits(a, e))
        return NULL;
    admission_remove(a, e);
    admission_hold(a, e);
    return e;
}

void admission_hold(struct admission *a, const struct admission_entry *e)
{
    a->used_cores += e->cores;
    a->used_memory += e->memory;
}

void admission_release(struct admission *a, const struct admission_entry *e)
{
    a->used_cores -= e->cores;
    if (a->used_cores < CORES_EPSILON)
        a->used_cores = 0;
    a->used_memory -= MIN(a->used_memory, e->memory);
}

static const char *cores_word(double n)
{
    return n == 1 ? "core" : "cores";
}

char *admission_describe(const struct admission *a, const struct admission_entry *e)
{
    if (e != a->head)
        return xasprintf("waiting in the queue behind earlier tasks (%zu queued)", a->n_queued);
    char want[32], left[32];
    double free_cores = MAX(a->cap_cores - a->used_cores, 0.0);
    uint64_t free_memory = a->cap_memory - MIN(a->used_memory, a->cap_memory);
    return xasprintf("waiting for capacity: needs %g %s and %s; %g %s and %s free", e->cores,
                     cores_word(e->cores), format_size_human(e->memory, want), free_cores,
                     cores_word(free_cores), format_size_human(free_memory, left));
}
