/*
 * Unit tests: what the task model's parsers refuse before the validator
 * sees a field - the content types, task_json_parse's and task_parse's
 * strictness (duplicate keys, depth, trailing bytes, formats) - and the
 * validator's size limits, each just under and just over.
 */
#include "tap.h"
#include "task-test.h"
#include "task.h"

#include <inttypes.h>

/* Validates a tree built in C; expects -EINVAL with 'want' in the message, or success. */
static void check_tree(cJSON *tree, const char *what, const char *want)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct task *t = NULL;
    int r = task_from_cjson(tree, NULL, &t, &err);
    if (want)
        ok(r == -EINVAL && !t && strstr(error_message(&err), want), "%s: \"%s\" (got %d \"%s\")",
           what, want, r, r < 0 ? error_message(&err) : "");
    else
        ok(r == 0 && t, "%s: valid%s%s", what, r < 0 ? ": " : "", r < 0 ? error_message(&err) : "");
    task_free(t);
    cJSON_Delete(tree);
}

static cJSON *base_tree(bool with_cmd)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", "alice");
    if (with_cmd)
        cJSON_AddStringToObject(o, "cmd", "true");
    return o;
}

static char *repeat(char c, size_t n)
{
    char *s = xmalloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* The size limits, and what JSON cannot say (duplicate keys) but a tree can. */
static void test_limits(void)
{
    for (int over = 0; over <= 1; over++) {
        const char *w;
        cJSON *o;
        _cleanup_free_ char *s = NULL;

        /* user at most 32 bytes: checked by the row table. */
        s = repeat('n', TASK_MAX_NAME + over);
        o = base_tree(true);
        cJSON_AddStringToObject(o, "name", s);
        check_tree(o, over ? "name of 257 bytes" : "name of 256 bytes",
                   over ? "name: is too long (257 bytes, at most 256)" : NULL);
        free(s);

        s = repeat('c', TASK_MAX_STRING + over);
        o = base_tree(false);
        cJSON_AddStringToObject(o, "cmd", s);
        check_tree(o, over ? "cmd of 65537 bytes" : "cmd of 65536 bytes",
                   over ? "cmd: is too long" : NULL);
        free(s);

        o = base_tree(false);
        cJSON *a = cJSON_AddArrayToObject(o, "cmd");
        for (int i = 0; i < TASK_MAX_ARGS + over; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString("x"));
        check_tree(o, over ? "cmd of 4097 arguments" : "cmd of 4096 arguments",
                   over ? "cmd: has too many arguments (4097, at most 4096)" : NULL);

        o = base_tree(false);
        a = cJSON_AddArrayToObject(o, "cmd");
        cJSON_AddItemToArray(a, cJSON_CreateString("x"));
        s = repeat('a', TASK_MAX_STRING + over);
        cJSON_AddItemToArray(a, cJSON_CreateString(s));
        check_tree(o, over ? "cmd[1] of 65537 bytes" : "cmd[1] of 65536 bytes",
                   over ? "cmd[1]: is too long" : NULL);
        free(s);

        s = repeat('i', 1024 + over);
        o = base_tree(false);
        cJSON *c = cJSON_AddObjectToObject(o, "container");
        cJSON_AddStringToObject(c, "image", s);
        check_tree(o, over ? "image of 1025 bytes" : "image of 1024 bytes",
                   over ? "container.image: is too long (1025 bytes, at most 1024)" : NULL);
        free(s);

        s = repeat('p', 4096 + over);
        s[0] = '/';
        w = over ? "stdout: is too long (4097 bytes, at most 4096)" : NULL;
        o = base_tree(true);
        cJSON_AddStringToObject(o, "stdout", s);
        check_tree(o, over ? "stdout of 4097 bytes" : "stdout of 4096 bytes", w);
        free(s);

        o = base_tree(false);
        c = cJSON_AddObjectToObject(o, "container");
        cJSON_AddStringToObject(c, "image", "alpine");
        a = cJSON_AddArrayToObject(c, "ports");
        for (int i = 0; i < TASK_MAX_PORTS + over; i++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "container", 1000 + i);
            cJSON_AddItemToArray(a, p);
        }
        check_tree(o, over ? "257 ports" : "256 ports",
                   over ? "container.ports: has too many entries (257, at most 256)" : NULL);

        o = base_tree(false);
        c = cJSON_AddObjectToObject(o, "container");
        cJSON_AddStringToObject(c, "image", "alpine");
        a = cJSON_AddArrayToObject(c, "volumes");
        for (int i = 0; i < TASK_MAX_MOUNTS + over; i++) {
            char path[32];
            snprintf(path, sizeof(path), "/m%d", i);
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "host", path);
            cJSON_AddStringToObject(m, "container", path);
            cJSON_AddItemToArray(a, m);
        }
        check_tree(o, over ? "257 mounts" : "256 mounts",
                   over ? "container.volumes: has too many entries (257, at most 256)" : NULL);

        o = base_tree(true);
        cJSON *e = cJSON_AddObjectToObject(o, "env");
        for (int i = 0; i < TASK_MAX_ENV + over; i++) {
            char k[32];
            snprintf(k, sizeof(k), "V%d", i);
            cJSON_AddStringToObject(e, k, "x");
        }
        check_tree(o, over ? "1025 env entries" : "1024 env entries",
                   over ? "env: has too many entries (1025, at most 1024)" : NULL);

        o = base_tree(true);
        e = cJSON_AddObjectToObject(o, "tags");
        for (int i = 0; i < TASK_MAX_TAGS + over; i++) {
            char k[32];
            snprintf(k, sizeof(k), "t%d", i);
            cJSON_AddStringToObject(e, k, "x");
        }
        check_tree(o, over ? "65 tags" : "64 tags",
                   over ? "tags: has too many entries (65, at most 64)" : NULL);

        s = repeat('k', TASK_MAX_NAME + over);
        o = base_tree(true);
        e = cJSON_AddObjectToObject(o, "tags");
        cJSON_AddStringToObject(e, s, "x");
        check_tree(o, over ? "tag name of 257 bytes" : "tag name of 256 bytes",
                   over ? "is not a valid tag name" : NULL);
        free(s);

        s = repeat('v', TASK_MAX_STRING + over);
        o = base_tree(true);
        e = cJSON_AddObjectToObject(o, "env");
        cJSON_AddStringToObject(e, "V", s);
        check_tree(o, over ? "env value of 65537 bytes" : "env value of 65536 bytes",
                   over ? "env.V: is too long" : NULL);
        free(s);
        s = NULL;
    }

    /* Duplicate keys never come out of the parsers, but the validator holds its own. */
    cJSON *o = base_tree(true);
    cJSON *e = cJSON_AddObjectToObject(o, "env");
    cJSON_AddStringToObject(e, "A", "1");
    cJSON_AddStringToObject(e, "B", "2");
    cJSON_AddStringToObject(e, "A", "3");
    check_tree(o, "env key given twice", "env.A: is given twice");

    o = base_tree(true);
    e = cJSON_AddObjectToObject(o, "tags");
    cJSON_AddStringToObject(e, "t", "1");
    cJSON_AddStringToObject(e, "t", "2");
    check_tree(o, "tag given twice", "tags.t: is given twice");

    /* A mount entry with host twice: the last wins, nothing leaks. */
    o = base_tree(false);
    cJSON *c = cJSON_AddObjectToObject(o, "container");
    cJSON_AddStringToObject(c, "image", "alpine");
    cJSON *a = cJSON_AddArrayToObject(c, "mounts");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "host", "/first");
    cJSON_AddStringToObject(m, "host", "/second");
    cJSON_AddStringToObject(m, "container", "/c");
    cJSON_AddStringToObject(m, "container", "/d");
    cJSON_AddItemToArray(a, m);
    {
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_task_ struct task *t = NULL;
        ok(task_from_cjson(o, NULL, &t, &err) == 0 && t && t->container->n_mounts == 1 &&
               streq(t->container->mounts[0].host, "/second") &&
               streq(t->container->mounts[0].container, "/d"),
           "mount host and container given twice: the last wins");
        cJSON_Delete(o);
    }

    /* Partly built containers are released on every error path (ASan checks). */
    static const char *const partial[] = {
        "{'user':'a','container':{'image':'alpine','cmd':['x'],'ports':[{'container':80}],"
        "'mounts':[{'host':'/a','container':'/a'},{'host':'/b','container':'rel'}]}}",
        "{'user':'a','container':{'cmd':['x'],'mounts':[{'host':'/a','container':'/a'}],"
        "'ports':[{'container':80},{'container':80}]}}",
        "{'user':'a','container':{'mounts':[{'host':'/a','container':'/a'}],'image':'alpine',"
        "'cmd':'y'},'cmd':'x'}",
        "{'user':'a','container':{'image':'alpine','mounts':{'mount':[{'host':'/a','container':'/"
        "a'},{'host':'/b'}]}}}",
        "{'user':'a','container':{'image':'alpine','ports':[{'port':{'container':80}},"
        "{'port':{'container':80}}]}}",
        "{'user':'a','name':'n','cmd':['a','b'],'env':{'A':'1'},'tags':{'t':'v'},"
        "'stdout':'/o','stderr':'/e','workdir':'/w','memory':'1G','cores':'bad'}",
        "{'user':'a','cmd':'x','env':{'A':'1','B':'2','C':[]}}",
        "{'user':'a','container':{'image':'alpine','mounts':[{'host':'/a'}]}}",
        "{'user':'a','container':{'image':'alpine','mounts':[{'host':'/a','container':'/"
        "a','mode':'x'}]}}",
    };
    for (size_t i = 0; i < ELEMENTSOF(partial); i++) {
        _cleanup_free_ char *json = q(partial[i]);
        _cleanup_tjson_ cJSON *tree = NULL;
        _cleanup_error_ struct error err = ERROR_INIT;
        struct task *t = NULL;
        ok(task_json_parse(json, strlen(json), &tree, &err) == 0 &&
               task_from_cjson(tree, NULL, &t, &err) == -EINVAL && !t,
           "partial task refused and released: %s (%s)", json, error_message(&err));
        task_free(t);
    }
}

static void test_content_types(void)
{
    static const struct {
        const char *type;
        int ret;
        enum task_format format;
    } types[] = {
        {"application/json", 0, TASK_FORMAT_JSON},
        {"application/json; charset=utf-8", 0, TASK_FORMAT_JSON},
        {"application/json;charset=utf-8", 0, TASK_FORMAT_JSON},
        {"Application/JSON", 0, TASK_FORMAT_JSON},
        {" application/json", 0, TASK_FORMAT_JSON},
        {"text/json", 0, TASK_FORMAT_JSON},
        {"application/yaml", 0, TASK_FORMAT_YAML},
        {"application/x-yaml", 0, TASK_FORMAT_YAML},
        {"text/yaml", 0, TASK_FORMAT_YAML},
        {"text/x-yaml; charset=utf-8", 0, TASK_FORMAT_YAML},
        {"application/xml", 0, TASK_FORMAT_XML},
        {"text/xml; charset=iso-8859-1", 0, TASK_FORMAT_XML},
        {"text/plain", -EMEDIUMTYPE, 0},
        {"application/jsonx", -EMEDIUMTYPE, 0},
        {"application/jso", -EMEDIUMTYPE, 0},
        {"application/x-www-form-urlencoded", -EMEDIUMTYPE, 0},
        {"multipart/form-data; boundary=x", -EMEDIUMTYPE, 0},
        {"", -EMEDIUMTYPE, 0},
        {"; charset=utf-8", -EMEDIUMTYPE, 0},
        {NULL, -EMEDIUMTYPE, 0},
    };
    for (size_t i = 0; i < ELEMENTSOF(types); i++) {
        enum task_format f = _TASK_FORMAT_INVALID;
        int r = task_format_from_content_type(types[i].type, &f);
        if (types[i].ret == 0)
            ok(r == 0 && f == types[i].format, "content type \"%s\" -> format %d (got %d, %d)",
               types[i].type, types[i].format, r, f);
        else
            ok(r == types[i].ret && f == _TASK_FORMAT_INVALID,
               "content type \"%s\" -> -EMEDIUMTYPE (got %d)", types[i].type ?: "(null)", r);
    }
}

static void test_json_parse(void)
{
    static const struct {
        const char *json;
        const char *want; /* a substring of the message */
    } bad[] = {
        {"", "empty"},
        {"{", "line 1"},
        {"{'user':", "line 1"},
        {"{} x", "line 1, column 4"},
        {"{}\n\n  x", "line 3, column 3"},
        {"{}{}", "unexpected data after the document"},
        {"[1,]", "line"},
        {"{'a':1,}", "line"},
        {"{'a':1\n'b':2}", "line 2"},
        {"{'a':tru}", "line"},
        {"{'a':'x\\q'}", "line"},
        {"user: alice", "line"},
        {"<task/>", "line"},
        /* Duplicate keys are refused at any depth, naming the key. */
        {"{'a':1,'a':2}", "\"a\" is given twice"},
        {"{'a':{'b':1,'c':2,'b':3}}", "\"b\" is given twice"},
        {"{'a':[{'x':1},{'y':1,'y':2}]}", "\"y\" is given twice"},
        {"{'user':'a','cmd':'x','user':'b'}", "\"user\" is given twice"},
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        _cleanup_free_ char *json = q(bad[i].json);
        _cleanup_error_ struct error err = ERROR_INIT;
        cJSON *j = NULL;
        int r = task_json_parse(json, strlen(json), &j, &err);
        ok(r == -EBADMSG && !j && err.code == -EBADMSG && strstr(error_message(&err), bad[i].want),
           "task_json_parse(%s) -> -EBADMSG \"%s\" (got %d \"%s\")", json, bad[i].want, r,
           error_message(&err));
        cJSON_Delete(j);
    }

    /* A NUL inside the body, and a body that is not NUL-terminated at len. */
    {
        static const char nul[] = "{\"a\":\"x\0y\"}";
        _cleanup_error_ struct error err = ERROR_INIT;
        cJSON *j = NULL;
        ok(task_json_parse(nul, sizeof(nul) - 1, &j, &err) == -EBADMSG && !j &&
               strstr(error_message(&err), "NUL"),
           "a NUL byte in the body is -EBADMSG: %s", error_message(&err));
        cJSON_Delete(j);
    }
    {
        static const char buf[] = "{\"user\":\"a\",\"cmd\":\"x\"}GARBAGE";
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_tjson_ cJSON *j = NULL;
        ok(task_json_parse(buf, strlen(buf) - STRLEN("GARBAGE"), &j, &err) == 0 && j,
           "only len bytes are read: %s", error_message(&err));
    }
    {
        static const char buf[] = " \r\n\t{\"a\":[1,2,{\"b\":null}]} \n\t\r ";
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_tjson_ cJSON *j = NULL;
        ok(task_json_parse(buf, strlen(buf), &j, &err) == 0 && cJSON_IsObject(j),
           "white space around the document is fine: %s", error_message(&err));
    }
    {
        /* The same key in different objects is not a duplicate. */
        _cleanup_free_ char *json = q("{'a':{'x':1},'b':{'x':2},'c':[{'x':1},{'x':2}]}");
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_tjson_ cJSON *j = NULL;
        ok(task_json_parse(json, strlen(json), &j, &err) == 0 && j,
           "the same key in sibling objects is fine: %s", error_message(&err));
    }
}

static void test_task_parse(void)
{
    _cleanup_free_ char *good = q("{'user':'alice','cmd':'true','memory':'64M'}");
    _cleanup_free_ char *bad = q("{'user':'alice','cmd':'true','memory':'3M'}");
    _cleanup_free_ char *dup = q("{'user':'alice','cmd':'true','env':{'A':'1','A':'2'}}");
    _cleanup_error_ struct error err = ERROR_INIT;
    struct task *t = NULL;

    ok(task_parse(TASK_FORMAT_JSON, good, strlen(good), NULL, &t, &err) == 0 && t &&
           t->memory == 64 << 20,
       "task_parse JSON: %s", error_message(&err));
    t = task_free(t);
    ok(task_parse(TASK_FORMAT_JSON, bad, strlen(bad), NULL, &t, &err) == -EINVAL && !t &&
           strstr(error_message(&err), "memory"),
       "task_parse JSON refuses an invalid task: %s", error_message(&err));
    error_clear(&err);
    ok(task_parse(TASK_FORMAT_JSON, dup, strlen(dup), NULL, &t, &err) == -EBADMSG && !t,
       "task_parse JSON refuses duplicate keys with -EBADMSG: %s", error_message(&err));
    error_clear(&err);
    ok(task_parse(TASK_FORMAT_JSON, "{", 1, NULL, &t, &err) == -EBADMSG && !t,
       "task_parse JSON refuses malformed JSON: %s", error_message(&err));
    error_clear(&err);
    ok(task_parse(_TASK_FORMAT_MAX, good, strlen(good), NULL, &t, &err) == -EMEDIUMTYPE && !t,
       "task_parse of an unknown format is -EMEDIUMTYPE");
    error_clear(&err);
    ok(task_parse(_TASK_FORMAT_INVALID, good, strlen(good), NULL, &t, &err) == -EMEDIUMTYPE && !t,
       "task_parse of an invalid format is -EMEDIUMTYPE");
}

int main(void)
{
    test_limits();
    test_content_types();
    test_json_parse();
    test_task_parse();
    return tap_done();
}
