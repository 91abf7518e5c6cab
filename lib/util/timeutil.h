/*
 * timeutil: wall-clock timestamps as used on the wire and in the store.
 * Times are int64 microseconds since the Unix epoch (0 = not set).
 */
#pragma once

#include "util.h"

typedef int64_t usec_t;

#define USEC_PER_SEC  ((usec_t) 1000000)
#define USEC_PER_MSEC ((usec_t) 1000)

usec_t now_realtime(void);
usec_t now_monotonic(void);

/* RFC 3339 in UTC with milliseconds: "2026-11-23T10:00:00.123Z". buf >= 32 bytes. */
char *format_rfc3339(usec_t t, char buf[static 32]);
/* Parses what format_rfc3339 writes (and whole seconds, and offsets); -EINVAL otherwise. */
int parse_rfc3339(const char *s, usec_t *ret);
