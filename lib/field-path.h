/*
 * field-path: what the two validators (task-validate.c, tes-parse.c)
 * share: a field's path for their messages (every error names the field
 * as a person would point at it, "executors[1].env.HOME: ..."), the words
 * for a JSON value's type, and what an environment variable's name may be.
 */
#pragma once

#include "util/error.h"
#include "util/util.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* One step of the path, on the stack of the walk: a key, or an array
 * element's index (key NULL). */
struct path {
    const struct path *parent;
    const char *key;
    int index;
};

/* "container.ports[1].host"; "" for no path. */
void path_format(const struct path *p, char *buf, size_t size);

/* -EINVAL with "<path>: <what>" ("task: <what>" for no path). */
_printf_(3, 4) int field_error(struct error *err, const struct path *p, const char *fmt, ...);

/* "a string", "a number", "a boolean", "a list", "an object" or "null". */
const char *json_type_name(const cJSON *j);

/* A POSIX shell variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool env_name_ok(const char *s);
