/*
 * hashmap: see hashmap.h. FNV-1a hashing, open addressing with linear
 * probing in a power-of-two table kept at most 3/4 full, backward-shift
 * deletion (no tombstones). No allocation per entry: 16 bytes a slot.
 */
#include "hashmap.h"

struct slot {
    const char *key; /* NULL = empty */
    void *value;
};

struct hashmap {
    struct slot *slots;
    size_t n_slots; /* a power of two */
    size_t size;
};

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char) *s;
        h *= 1099511628211ULL;
    }
    return (size_t) h;
}

struct hashmap *hashmap_new(void)
{
    struct hashmap *m = xcalloc(1, sizeof(*m));
    m->n_slots = 16;
    m->slots = xcalloc(m->n_slots, sizeof(struct slot));
    return m;
}

struct hashmap *hashmap_free(struct hashmap *m)
{
    if (!m)
        return NULL;
    free(m->slots);
    free(m);
    return NULL;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const struct hashmap *m, const char *key)
{
    size_t mask = m->n_slots - 1;
    size_t i = hash(key) & mask;
    while (m->slots[i].key && !streq(m->slots[i].key, key))
        i = (i + 1) & mask;
    return i;
}

static void resize(struct hashmap *m, size_t n_slots)
{
    struct slot *old = m->slots;
    size_t n_old = m->n_slots;
    m->slots = xcalloc(n_slots, sizeof(struct slot));
    m->n_slots = n_slots;
    for (size_t i = 0; i < n_old; i++)
        if (old[i].key)
            m->slots[find(m, old[i].key)] = old[i];
    free(old);
}

void *hashmap_put(struct hashmap *m, const char *key, void *value)
{
    size_t i = find(m, key);
    if (m->slots[i].key) {
        void *prev = m->slots[i].value;
        m->slots[i] = (struct slot){key, value};
        return prev;
    }
    m->slots[i] = (struct slot){key, value};
    if (++m->size * 4 > m->n_slots * 3)
        resize(m, m->n_slots * 2);
    return NULL;
}

void *hashmap_get(const struct hashmap *m, const char *key)
{
    size_t i = find(m, key);
    return m->slots[i].key ? m->slots[i].value : NULL;
}

void *hashmap_remove(struct hashmap *m, const char *key)
{
    size_t mask = m->n_slots - 1;
    size_t i = find(m, key);
    if (!m->slots[i].key)
        return NULL;
    void *value = m->slots[i].value;

    /* Backward shift: move later members of the probe run into the hole
     * unless that would put them before their home slot. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = hash(m->slots[j].key) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (struct slot){NULL, NULL};
    m->size--;
    /* Give memory back after a burst (a drained queue), never below 16. */
    if (m->n_slots > 16 && m->size * 8 < m->n_slots)
        resize(m, m->n_slots / 2);
    return value;
}

size_t hashmap_size(const struct hashmap *m)
{
    return m->size;
}

void hashmap_foreach(const struct hashmap *m, void (*f)(void *value, void *userdata),
                     void *userdata)
{
    for (size_t i = 0; i < m->n_slots; i++)
        if (m->slots[i].key)
            f(m->slots[i].value, userdata);
}
