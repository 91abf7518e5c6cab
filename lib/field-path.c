/*
 * field-path: a field's path for the validators' messages (field-path.h).
 */
#include "field-path.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void path_format(const struct path *p, char *buf, size_t size)
{
    if (!p) {
        buf[0] = '\0';
        return;
    }
    path_format(p->parent, buf, size);
    size_t n = strlen(buf);
    if (p->key)
        snprintf(buf + n, size - n, "%s%s", n ? "." : "", p->key);
    else
        snprintf(buf + n, size - n, "[%d]", p->index);
}

int field_error(struct error *err, const struct path *p, const char *fmt, ...)
{
    char where[256];
    va_list ap;

    path_format(p, where, sizeof(where));
    va_start(ap, fmt);
    _cleanup_free_ char *what = xvasprintf(fmt, ap);
    va_end(ap);
    return error_set(err, -EINVAL, "%s: %s", where[0] ? where : "task", what);
}

const char *json_type_name(const cJSON *j)
{
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsArray(j))
        return "a list";
    if (cJSON_IsObject(j))
        return "an object";
    return "null";
}

bool env_name_ok(const char *s)
{
    if (!*s || isdigit((unsigned char) *s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char) *s) && *s != '_')
            return false;
    return true;
}
