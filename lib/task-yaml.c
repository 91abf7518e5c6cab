/*
 * task-yaml: a YAML document to a cJSON tree, with libyaml's event API.
 * Mappings become objects, sequences arrays, scalars strings (numbers stay
 * strings; the validator reads them), and a plain ~, null or empty scalar
 * becomes null. Anything a task or the config file never needs and that
 * only makes a document harder to reason about is refused with -EBADMSG:
 * anchors and aliases (the "billion laughs" of YAML), several documents,
 * duplicate or non-scalar keys, and nesting deeper than YAML_MAX_DEPTH.
 */
#include "task.h"
#include "util/hashmap.h"

#include <yaml.h>

#define YAML_MAX_DEPTH 64

struct yaml_reader {
    yaml_parser_t parser;
    struct error *err;
};

static void cjson_deletep_(cJSON **j)
{
    cJSON_Delete(*j);
}

static void hashmap_freep_(struct hashmap **m)
{
    hashmap_free(*m);
}

/* libyaml's own words and position for a failed yaml_parser_parse(). */
static int parser_error(struct yaml_reader *y)
{
    yaml_parser_t *p = &y->parser;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return error_set(y->err, -ENOMEM, "YAML: out of memory");
    case YAML_READER_ERROR:
        return error_set(y->err, -EBADMSG, "YAML: %s at byte %zu",
                         p->problem ? p->problem : "cannot read input", p->problem_offset);
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR:
        if (p->context)
            return error_set(y->err, -EBADMSG,
                             "YAML: %s at line %zu column %zu (%s at line %zu column %zu)",
                             p->problem ? p->problem : "syntax error", p->problem_mark.line + 1,
                             p->problem_mark.column + 1, p->context, p->context_mark.line + 1,
                             p->context_mark.column + 1);
        return error_set(y->err, -EBADMSG, "YAML: %s at line %zu column %zu",
                         p->problem ? p->problem : "syntax error", p->problem_mark.line + 1,
                         p->problem_mark.column + 1);
    case YAML_NO_ERROR:
    case YAML_COMPOSER_ERROR:
    case YAML_WRITER_ERROR:
    case YAML_EMITTER_ERROR:
    default:
        return error_set(y->err, -EBADMSG, "YAML: %s",
                         p->problem ? p->problem : "malformed document");
    }
}

/* The next event; on failure nothing needs deleting. */
static int next_event(struct yaml_reader *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->parser, ev))
        return parser_error(y);
    return 0;
}

static int event_error(struct yaml_reader *y, const yaml_event_t *ev, const char *what)
{
    return error_set(y->err, -EBADMSG, "YAML: %s at line %zu column %zu", what,
                     ev->start_mark.line + 1, ev->start_mark.column + 1);
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *) ev->data.scalar.value;
    size_t n = ev->data.scalar.length;

    if (ev->data.scalar.tag && streq((const char *) ev->data.scalar.tag, YAML_NULL_TAG))
        return true;
    /* Only an untagged plain scalar: "null" in quotes is the string. */
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !ev->data.scalar.plain_implicit)
        return false;
    return n == 0 || (n == 1 && v[0] == '~') ||
           (n == 4 &&
            (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 || memcmp(v, "NULL", 4) == 0));
}

static int scalar_to_cjson(struct yaml_reader *y, const yaml_event_t *ev, cJSON **ret)
{
    const char *v = (const char *) ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    cJSON *j;

    if (is_null_scalar(ev))
        j = cJSON_CreateNull();
    else if (memchr(v, '\0', n))
        /* "\0" in a double-quoted scalar would silently cut the string short. */
        return event_error(y, ev, "NUL character in scalar");
    else
        j = cJSON_CreateString(v);
    if (!j)
        return error_set(y->err, -ENOMEM, "YAML: out of memory");
    *ret = j;
    return 0;
}

static int node_to_cjson(struct yaml_reader *y, yaml_event_t *ev, unsigned depth, cJSON **ret);

static int sequence_to_cjson(struct yaml_reader *y, unsigned depth, cJSON **ret)
{
    _cleanup_(cjson_deletep_) cJSON *arr = cJSON_CreateArray();
    int r;

    if (!arr)
        return error_set(y->err, -ENOMEM, "YAML: out of memory");
    for (;;) {
        yaml_event_t ev;
        cJSON *item = NULL;

        r = next_event(y, &ev);
        if (r < 0)
            return r;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        r = node_to_cjson(y, &ev, depth, &item);
        yaml_event_delete(&ev);
        if (r < 0)
            return r;
        cJSON_AddItemToArray(arr, item);
    }
    *ret = TAKE_PTR(arr);
    return 0;
}

static int mapping_to_cjson(struct yaml_reader *y, unsigned depth, cJSON **ret)
{
    _cleanup_(cjson_deletep_) cJSON *obj = cJSON_CreateObject();
    /* Duplicate keys are looked up in a hash so that a mapping with many
     * keys costs linear time, not quadratic. Keys point into obj. */
    _cleanup_(hashmap_freep_) struct hashmap *seen = hashmap_new();
    int r;

    if (!obj)
        return error_set(y->err, -ENOMEM, "YAML: out of memory");
    for (;;) {
        yaml_event_t ev;
        _cleanup_free_ char *key = NULL;
        cJSON *value = NULL;

        r = next_event(y, &ev);
        if (r < 0)
            return r;
        r = 0;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_ALIAS_EVENT || (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.anchor))
            r = event_error(y, &ev, "anchors and aliases are not allowed");
        else if (ev.type != YAML_SCALAR_EVENT)
            r = event_error(y, &ev, "mapping keys must be scalars");
        else if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length))
            r = event_error(y, &ev, "NUL character in key");
        else if (hashmap_get(seen, (const char *) ev.data.scalar.value))
            r = error_set(y->err, -EBADMSG, "YAML: duplicate key \"%.64s\" at line %zu",
                          (const char *) ev.data.scalar.value, ev.start_mark.line + 1);
        else
            key = xstrndup((const char *) ev.data.scalar.value, ev.data.scalar.length);
        yaml_event_delete(&ev);
        if (r < 0)
            return r;

        r = next_event(y, &ev);
        if (r < 0)
            return r;
        r = node_to_cjson(y, &ev, depth, &value);
        yaml_event_delete(&ev);
        if (r < 0)
            return r;
        if (!cJSON_AddItemToObject(obj, key, value)) {
            cJSON_Delete(value);
            return error_set(y->err, -ENOMEM, "YAML: out of memory");
        }
        /* cJSON copied the key: index the copy that lives as long as obj. */
        (void) hashmap_put(seen, value->string, value);
    }
    *ret = TAKE_PTR(obj);
    return 0;
}

/* Converts the node that starts with *ev (owned by the caller), reading
 * the rest of it from the parser. */
static int node_to_cjson(struct yaml_reader *y, yaml_event_t *ev, unsigned depth, cJSON **ret)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor)
            return event_error(y, ev, "anchors and aliases are not allowed");
        return scalar_to_cjson(y, ev, ret);
    case YAML_SEQUENCE_START_EVENT:
        if (ev->data.sequence_start.anchor)
            return event_error(y, ev, "anchors and aliases are not allowed");
        if (depth >= YAML_MAX_DEPTH)
            return event_error(y, ev, "nesting too deep");
        return sequence_to_cjson(y, depth + 1, ret);
    case YAML_MAPPING_START_EVENT:
        if (ev->data.mapping_start.anchor)
            return event_error(y, ev, "anchors and aliases are not allowed");
        if (depth >= YAML_MAX_DEPTH)
            return event_error(y, ev, "nesting too deep");
        return mapping_to_cjson(y, depth + 1, ret);
    case YAML_ALIAS_EVENT:
        return event_error(y, ev, "anchors and aliases are not allowed");
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
    default:
        return event_error(y, ev, "unexpected event");
    }
}

/* Reads the next event and checks that it has the given type. */
static int expect_event(struct yaml_reader *y, yaml_event_type_t type, bool *ret_match,
                        yaml_event_t *ret_ev)
{
    int r = next_event(y, ret_ev);
    if (r < 0)
        return r;
    *ret_match = ret_ev->type == type;
    return 0;
}

static int read_document(struct yaml_reader *y, cJSON **ret)
{
    _cleanup_(cjson_deletep_) cJSON *root = NULL;
    yaml_event_t ev;
    bool match;
    int r;

    r = expect_event(y, YAML_STREAM_START_EVENT, &match, &ev);
    if (r < 0)
        return r;
    yaml_event_delete(&ev);
    if (!match)
        return error_set(y->err, -EBADMSG, "YAML: malformed stream");

    r = expect_event(y, YAML_DOCUMENT_START_EVENT, &match, &ev);
    if (r < 0)
        return r;
    yaml_event_delete(&ev);
    if (!match) /* only comments, or nothing at all */
        return error_set(y->err, -EBADMSG, "YAML: empty document");

    r = next_event(y, &ev);
    if (r < 0)
        return r;
    if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0 &&
        ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        r = error_set(y->err, -EBADMSG, "YAML: empty document");
    else
        r = node_to_cjson(y, &ev, 0, &root);
    yaml_event_delete(&ev);
    if (r < 0)
        return r;

    r = expect_event(y, YAML_DOCUMENT_END_EVENT, &match, &ev);
    if (r < 0)
        return r;
    yaml_event_delete(&ev);
    if (!match)
        return error_set(y->err, -EBADMSG, "YAML: malformed document");

    /* A second document is a parse error even when it is well formed. */
    r = next_event(y, &ev);
    if (r < 0)
        return r;
    if (ev.type != YAML_STREAM_END_EVENT)
        r = event_error(y, &ev, "more than one document");
    yaml_event_delete(&ev);
    if (r < 0)
        return r;

    *ret = TAKE_PTR(root);
    return 0;
}

int task_yaml_parse(const char *buf, size_t len, cJSON **ret, struct error *err)
{
    struct yaml_reader y = {.err = err};
    cJSON *root = NULL;
    int r;

    if (!yaml_parser_initialize(&y.parser))
        return error_set(err, -ENOMEM, "YAML: out of memory");
    yaml_parser_set_input_string(&y.parser, (const unsigned char *) (buf ? buf : ""),
                                 buf ? len : 0);
    r = read_document(&y, &root);
    yaml_parser_delete(&y.parser);
    if (r < 0)
        return r;
    *ret = root;
    return 0;
}
