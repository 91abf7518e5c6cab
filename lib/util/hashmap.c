/* hashmap: see hashmap.h. FNV-1a hashing, power-of-two buckets, load <= 1. */
#include "hashmap.h"

struct entry {
    const char *key;
    void *value;
    struct entry *next;
};

struct hashmap {
    struct entry **buckets;
    size_t n_buckets;
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
    m->n_buckets = 64;
    m->buckets = xcalloc(m->n_buckets, sizeof(struct entry *));
    return m;
}

struct hashmap *hashmap_free(struct hashmap *m)
{
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->n_buckets; i++)
        for (struct entry *e = m->buckets[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    free(m->buckets);
    free(m);
    return NULL;
}

static void grow(struct hashmap *m)
{
    size_t nb = m->n_buckets * 2;
    struct entry **b = xcalloc(nb, sizeof(struct entry *));
    for (size_t i = 0; i < m->n_buckets; i++)
        for (struct entry *e = m->buckets[i], *n; e; e = n) {
            n = e->next;
            size_t j = hash(e->key) & (nb - 1);
            e->next = b[j];
            b[j] = e;
        }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = nb;
}

void *hashmap_put(struct hashmap *m, const char *key, void *value)
{
    size_t i = hash(key) & (m->n_buckets - 1);
    for (struct entry *e = m->buckets[i]; e; e = e->next)
        if (streq(e->key, key)) {
            void *old = e->value;
            e->key = key;
            e->value = value;
            return old;
        }
    struct entry *e = xmalloc(sizeof(*e));
    *e = (struct entry){ key, value, m->buckets[i] };
    m->buckets[i] = e;
    if (++m->size > m->n_buckets)
        grow(m);
    return NULL;
}

void *hashmap_get(const struct hashmap *m, const char *key)
{
    for (struct entry *e = m->buckets[hash(key) & (m->n_buckets - 1)]; e; e = e->next)
        if (streq(e->key, key))
            return e->value;
    return NULL;
}

void *hashmap_remove(struct hashmap *m, const char *key)
{
    for (struct entry **p = &m->buckets[hash(key) & (m->n_buckets - 1)]; *p; p = &(*p)->next)
        if (streq((*p)->key, key)) {
            struct entry *e = *p;
            void *v = e->value;
            *p = e->next;
            free(e);
            m->size--;
            return v;
        }
    return NULL;
}

size_t hashmap_size(const struct hashmap *m)
{
    return m->size;
}

void hashmap_foreach(const struct hashmap *m, void (*f)(void *value, void *userdata), void *userdata)
{
    for (size_t i = 0; i < m->n_buckets; i++)
        for (struct entry *e = m->buckets[i]; e; e = e->next)
            f(e->value, userdata);
}
