/*
 * hashmap: string keys to pointers, open hashing with chaining. Not
 * thread-safe: the owner locks. Keys are not copied: they must live as
 * long as their entry (store them inside the value).
 */
#pragma once

#include "util.h"

struct hashmap;

struct hashmap *hashmap_new(void);
/* Frees the map, not the values. Accepts NULL. */
struct hashmap *hashmap_free(struct hashmap *m);
/* Inserts or replaces; returns the previous value or NULL. */
void *hashmap_put(struct hashmap *m, const char *key, void *value);
void *hashmap_get(const struct hashmap *m, const char *key);
/* Removes and returns the value, or NULL. */
void *hashmap_remove(struct hashmap *m, const char *key);
size_t hashmap_size(const struct hashmap *m);
/* Calls f for every value (in no particular order); f must not modify the map. */
void hashmap_foreach(const struct hashmap *m, void (*f)(void *value, void *userdata),
                     void *userdata);
