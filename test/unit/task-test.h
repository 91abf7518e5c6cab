/*
 * Helpers the task model's unit tests share (test-task.c,
 * test-task-limits.c).
 */
#pragma once

#include "util/util.h"

#include <cjson/cJSON.h>

static inline void tjson_freep(cJSON **j)
{
    cJSON_Delete(*j);
}
#define _cleanup_tjson_ _cleanup_(tjson_freep)

/* "{'a':1}" -> "{\"a\":1}": JSON written with ' for " to stay readable. */
static inline char *q(const char *s)
{
    char *r = xstrdup(s);
    for (char *c = r; *c; c++)
        if (*c == '\'')
            *c = '"';
    return r;
}
