/*
 * config-values: one setting's value from the config file's tree (the
 * YAML reader's cJSON), for config.c and policy.c alike. Every function
 * names the setting by 'key' in its error (-EINVAL) and leaves *dst
 * untouched on failure.
 */
#pragma once

#include "util/error.h"
#include "util/util.h"

#include <cjson/cJSON.h>

/* A scalar as text (strings, numbers and booleans alike); buf holds a number's text. */
int config_scalar(const cJSON *v, const char *key, char buf[static 64], const char **ret,
                  struct error *err);
/* A non-empty string; replaces (frees) *dst. */
int config_get_string(const cJSON *v, const char *key, char **dst, struct error *err);
/* true/yes/on, false/no/off. */
int config_get_bool(const cJSON *v, const char *key, bool *dst, struct error *err);
/* A size; a bare number is multiplied by unit. */
int config_get_size(const cJSON *v, const char *key, uint64_t unit, uint64_t *dst,
                    struct error *err);
/* A whole number from min to max (a count of connections). */
int config_get_count(const cJSON *v, const char *key, unsigned min, unsigned max, unsigned *dst,
                     struct error *err);
/* A duration of at most a day, in seconds (timeouts, grace periods). */
int config_get_seconds(const cJSON *v, const char *key, unsigned *dst, struct error *err);
/* A duration of any length, in seconds; a bare number is multiplied by unit. */
int config_get_duration(const cJSON *v, const char *key, uint64_t unit, uint64_t *dst,
                        struct error *err);
/* A positive number of cores. */
int config_get_cores(const cJSON *v, const char *key, double *dst, struct error *err);
/* A unit alone ("M", "h"), read by parse; examples name good ones in the error. */
int config_get_unit(const cJSON *v, const char *key, int (*parse)(const char *, uint64_t *),
                    const char *examples, uint64_t *dst, struct error *err);
/* A string or a list of non-empty strings; replaces (frees) *dst. */
int config_get_strv(const cJSON *v, const char *key, char ***dst, struct error *err);
/* -EINVAL unless v is a mapping. */
int config_expect_object(const cJSON *v, const char *key, struct error *err);
