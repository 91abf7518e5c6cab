/*
 * json: reading fields of a cJSON object we did not validate ourselves
 * (engine replies, our own files, the daemon's replies in the CLI).
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdint.h>

/* The string at key, or NULL when it is missing or not a string. */
const char *json_str(const cJSON *j, const char *key);
/* The number at key as a count, or 0 when it is missing, not a number or not positive. */
uint64_t json_u64(const cJSON *j, const char *key);
