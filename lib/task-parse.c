/*
 * task-parse: wire format selection and parse + validate in one call.
 *
 * Kept apart from task.c so that programs needing only the model (the
 * shim) do not link the YAML and XML parsers and what they pull in
 * (libxml2 brings ICU).
 */
#include "task.h"

#include <strings.h>

int task_format_from_content_type(const char *content_type, enum task_format *ret)
{
    static const struct {
        const char *type;
        enum task_format format;
    } table[] = {
        {"application/json", TASK_FORMAT_JSON}, {"text/json", TASK_FORMAT_JSON},
        {"application/yaml", TASK_FORMAT_YAML}, {"application/x-yaml", TASK_FORMAT_YAML},
        {"text/yaml", TASK_FORMAT_YAML},        {"text/x-yaml", TASK_FORMAT_YAML},
        {"application/xml", TASK_FORMAT_XML},   {"text/xml", TASK_FORMAT_XML},
    };

    if (!content_type)
        return -EMEDIUMTYPE;
    const char *s = content_type;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strcspn(s, "; \t");
    for (size_t i = 0; i < ELEMENTSOF(table); i++)
        if (strlen(table[i].type) == n && strncasecmp(table[i].type, s, n) == 0) {
            *ret = table[i].format;
            return 0;
        }
    return -EMEDIUMTYPE;
}

int task_parse(enum task_format f, const char *buf, size_t len, const struct task_units *units,
               struct task **ret, struct error *err)
{
    cJSON *j = NULL;
    int r;

    switch (f) {
    case TASK_FORMAT_JSON:
        r = task_json_parse(buf, len, &j, err);
        break;
    case TASK_FORMAT_YAML:
        r = task_yaml_parse(buf, len, &j, err);
        break;
    case TASK_FORMAT_XML:
        r = task_xml_parse(buf, len, &j, err);
        break;
    case _TASK_FORMAT_MAX:
    case _TASK_FORMAT_INVALID:
    default:
        return error_set(err, -EMEDIUMTYPE, "unsupported task format");
    }
    if (r < 0)
        return r;
    r = task_from_cjson(j, units, ret, err);
    cJSON_Delete(j);
    return r;
}
