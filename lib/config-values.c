/*
 * config-values: reading one setting's value from the config file's tree,
 * the same way for every section (config.c, policy.c): YAML gives
 * strings, so numbers and booleans are accepted as either; sizes and
 * durations go through the task model's unit parsers. Each names the
 * setting by its full key in its error ("docker.pull: ...").
 */
#include "config-values.h"
#include "task.h"

/* A scalar as text: YAML gives strings, but accept numbers too. */
int config_scalar(const cJSON *v, const char *key, char buf[static 64], const char **ret,
                  struct error *err)
{
    if (cJSON_IsString(v)) {
        *ret = v->valuestring;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        snprintf(buf, 64, "%.17g", v->valuedouble);
        *ret = buf;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        *ret = cJSON_IsTrue(v) ? "true" : "false";
        return 0;
    }
    return error_set(err, -EINVAL, "%s: must be a scalar", key);
}

int config_get_string(const cJSON *v, const char *key, char **dst, struct error *err)
{
    char buf[64];
    const char *s;
    int r = config_scalar(v, key, buf, &s, err);
    if (r < 0)
        return r;
    if (isempty(s))
        return error_set(err, -EINVAL, "%s: must not be empty", key);
    free(*dst);
    *dst = xstrdup(s);
    return 0;
}

int config_get_bool(const cJSON *v, const char *key, bool *dst, struct error *err)
{
    char buf[64];
    const char *s;
    int r = config_scalar(v, key, buf, &s, err);
    if (r < 0)
        return r;
    if (strcaseeq(s, "true") || strcaseeq(s, "yes") || strcaseeq(s, "on"))
        *dst = true;
    else if (strcaseeq(s, "false") || strcaseeq(s, "no") || strcaseeq(s, "off"))
        *dst = false;
    else
        return error_set(err, -EINVAL, "%s: must be true or false, not \"%s\"", key, s);
    return 0;
}

int config_get_size(const cJSON *v, const char *key, uint64_t unit, uint64_t *dst,
                    struct error *err)
{
    char buf[64];
    const char *s;
    int r = config_scalar(v, key, buf, &s, err);
    if (r < 0)
        return r;
    if (parse_size(s, unit, dst) < 0)
        return error_set(err, -EINVAL, "%s: invalid size \"%s\"", key, s);
    return 0;
}

int config_get_count(const cJSON *v, const char *key, unsigned min, unsigned max, unsigned *dst,
                     struct error *err)
{
    char buf[64];
    const char *s;
    int r = config_scalar(v, key, buf, &s, err);
    if (r < 0)
        return r;
    uint64_t n = 0;
    bool digits = !isempty(s);
    for (const char *p = s; *p && digits && n <= max; p++)
        if (*p >= '0' && *p <= '9')
            n = n * 10 + (uint64_t) (*p - '0');
        else
            digits = false;
    if (!digits || n < min || n > max)
        return error_set(err, -EINVAL, "%s: must be a whole number from %u to %u, not \"%s\"", key,
                         min, max, s);
    *dst = (unsigned) n;
    return 0;
}

int config_get_seconds(const cJSON *v, const char *key, unsigned *dst, struct error *err)
{
    char buf[64];
    const char *s;
    uint64_t u;
    int r = config_scalar(v, key, buf, &s, err);
    if (r < 0)
        return r;
    if (parse_duration(s, 1, &u) < 0 || u > 24 * 3600)
        return error_set(err, -EINVAL, "%s: invalid duration \"%s\"", key, s);
    *dst = (unsigned) u;
    return 0;
}

int config_get_duration(const cJSON *v, const char *key, uint64_t unit, uint64_t *dst,
                        struct error *err)
{
    char buf[64];
    const char *s;
    uint64_t u;
    int r = config_scalar(v, key, buf, &s, err);
    if (r < 0)
        return r;
    if (parse_duration(s, unit, &u) < 0 || u > TASK_MAX_DURATION)
        return error_set(err, -EINVAL, "%s: invalid duration \"%s\"", key, s);
    *dst = u;
    return 0;
}

int config_get_cores(const cJSON *v, const char *key, double *dst, struct error *err)
{
    char buf[64];
    const char *s;
    int r = config_scalar(v, key, buf, &s, err);
    if (r < 0)
        return r;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !(d > 0) || d > TASK_MAX_CORES)
        return error_set(err, -EINVAL, "%s: must be a positive number of cores, not \"%s\"", key,
                         s);
    *dst = d;
    return 0;
}

/* A unit alone ("M", "h"), read by parse (parse_size_unit, parse_duration_unit). */
int config_get_unit(const cJSON *v, const char *key, int (*parse)(const char *, uint64_t *),
                    const char *examples, uint64_t *dst, struct error *err)
{
    char buf[64];
    const char *s;
    int r = config_scalar(v, key, buf, &s, err);
    if (r < 0)
        return r;
    if (parse(s, dst) < 0)
        return error_set(err, -EINVAL, "%s: must be a unit such as %s, not \"%s\"", key, examples,
                         s);
    return 0;
}

int config_get_strv(const cJSON *v, const char *key, char ***dst, struct error *err)
{
    _cleanup_strv_ char **l = NULL;
    if (cJSON_IsString(v))
        strv_push(&l, v->valuestring);
    else if (cJSON_IsArray(v)) {
        const cJSON *i;
        cJSON_ArrayForEach(i, v)
        {
            if (!cJSON_IsString(i) || isempty(i->valuestring))
                return error_set(err, -EINVAL, "%s: must be a list of strings", key);
            strv_push(&l, i->valuestring);
        }
    } else if (!cJSON_IsNull(v))
        return error_set(err, -EINVAL, "%s: must be a string or a list of strings", key);
    strv_free(*dst);
    *dst = TAKE_PTR(l);
    return 0;
}

int config_expect_object(const cJSON *v, const char *key, struct error *err)
{
    if (!cJSON_IsObject(v))
        return error_set(err, -EINVAL, "%s: must be a mapping", key);
    return 0;
}
