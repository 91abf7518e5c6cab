/*
 * Unit tests: the TES 1.1 model (tes.h). The parser, table-driven from
 * the spec's shapes (rows that must be accepted, rows that must be 400
 * naming the field), including the strictness the clients in use hold a
 * server to; parse -> FULL -> parse -> FULL gives the same tree; each
 * view checked against the spec's schemas field for field (no field the
 * spec does not define, every required one present, types as the spec
 * says); service-info; a JobProxy task as a one-executor TES task, and
 * a TES task as the one struct task.
 */
#include "backend.h"
#include "layout.h"
#include "process/process.h"
#include "store.h"
#include "tap.h"
#include "tes.h"

static void tjson_freep(cJSON **j)
{
    cJSON_Delete(*j);
}
#define _cleanup_tjson_ _cleanup_(tjson_freep)

/* "{'a':1}" -> "{\"a\":1}" */
static char *q(const char *s)
{
    char *r = xstrdup(s);
    for (char *c = r; *c; c++)
        if (*c == '\'')
            *c = '"';
    return r;
}

#define X0     "{'image':'alpine','command':['echo','hi']}"
#define T(...) "{'executors':[" X0 "]," __VA_ARGS__ "}"

struct row {
    const char *json;
    int ret;          /* 0, -EINVAL or -EBADMSG */
    const char *want; /* ret < 0: a substring of the message */
};

static const struct row rows[] = {
    /* The smallest task, and the spec's example shapes. */
    {"{'executors':[" X0 "]}", 0, NULL},
    {T("'name':'n','description':'d','tags':{'WORKFLOW_ID':'cwl-01234','PROJECT_GROUP':''}"), 0,
     NULL},
    {T("'inputs':[{'url':'s3://my-object-store/file1','path':'/data/file1'}]"), 0, NULL},
    {T("'inputs':[{'url':'file:///path/to/my/file','path':'/data/f','type':'FILE'},"
       "{'url':'/path/to/my/dir','path':'/data/d','type':'DIRECTORY'},"
       "{'content':'hello\\n','path':'/data/c'},{'content':'','path':'/data/empty'}]"),
     0, NULL},
    {T("'outputs':[{'path':'/data/outfile','url':'s3://my-object-store/outfile-1','type':'FILE'},"
       "{'path':'/data/out/*.txt','path_prefix':'/data/out','url':'file:///tmp/o/'}]"),
     0, NULL},
    {T("'volumes':['/vol/A/','/vol/B']"), 0, NULL},
    {T("'resources':{'cpu_cores':4,'preemptible':false,'ram_gb':8,'disk_gb':40,"
       "'zones':['us-west-1']}"),
     0, NULL},
    {"{'executors':[{'image':'ubuntu:20.04','command':['/bin/md5'],'workdir':'/data/',"
     "'stdin':'/data/file1','stdout':'/tmp/stdout.log','stderr':'/tmp/stderr.log',"
     "'env':{'BLASTDB':'/data/GRC38','HMMERDB':'/data/hmmer'},'ignore_error':true}," X0 "]}",
     0, NULL},
    /* Lenient where clients rely on it. */
    {T("'inputs':[{'url':'gs://b/f','path':'/in/f','streamable':true}]"), 0, NULL},
    {T("'inputs':[{'url':'drs://x/y','path':'/in/f'}]"), 0, NULL},
    {T("'resources':{'backend_parameters':{'VmSize':'Standard_D64_v3'}}"), 0, NULL},
    {T("'resources':{'backend_parameters':{'VmSize':'x'},'backend_parameters_strict':false}"), 0,
     NULL},
    {T("'resources':{'backend_parameters':{'WallTime':'2h','priority':'5'},"
       "'backend_parameters_strict':true}"),
     0, NULL},
    {T("'id':'abc','state':'QUEUED','logs':[],'creation_time':'2020-10-02T10:00:00Z'"), 0, NULL},
    {T("'name':null,'inputs':null,'resources':{'ram_gb':null}"), 0, NULL},
    {T("'x-unknown':1"), 0, NULL},
    /* Strict where the spec is. */
    {"{}", -EINVAL, "executors: is required"},
    {"[]", -EINVAL, "task: must be an object"},
    {"{'executors':[]}", -EINVAL, "executors: must not be empty"},
    {"{'executors':{}}", -EINVAL, "executors: must be a list"},
    {"{'executors':[{'command':['x']}]}", -EINVAL, "executors[0].image: is required"},
    {"{'executors':[{'image':'','command':['x']}]}", -EINVAL, "executors[0].image: must not be"},
    {"{'executors':[{'image':'a'}]}", -EINVAL, "executors[0].command: is required"},
    {"{'executors':[{'image':'a','command':[]}]}", -EINVAL, "executors[0].command: must not be"},
    {"{'executors':[{'image':'a','command':'echo hi'}]}", -EINVAL,
     "executors[0].command: must be a list of strings"},
    {"{'executors':[" X0 ",{'image':'a','command':['echo',1]}]}", -EINVAL,
     "executors[1].command[1]: must be a string, not a number"},
    {"{'executors':[{'image':'a','command':['x'],'workdir':'data'}]}", -EINVAL,
     "executors[0].workdir: must be an absolute path"},
    {"{'executors':[{'image':'a','command':['x'],'stdout':'/a/../b'}]}", -EINVAL,
     "executors[0].stdout: must not contain"},
    {"{'executors':[{'image':'a','command':['x'],'env':{'A':1}}]}", -EINVAL,
     "executors[0].env.A: must be a string"},
    {"{'executors':[{'image':'a','command':['x'],'env':{'1A':'x'}}]}", -EINVAL,
     "executors[0].env.1A: is not a valid environment variable name"},
    {"{'executors':[{'image':'a','command':['x'],'ignore_error':'yes'}]}", -EINVAL,
     "executors[0].ignore_error: must be a boolean"},
    {T("'inputs':[{'url':'file:///x'}]"), -EINVAL, "inputs[0].path: is required"},
    {T("'inputs':[{'path':'/x'}]"), -EINVAL, "inputs[0].url: is required unless content"},
    {T("'inputs':[{'url':'/a','path':'x'}]"), -EINVAL, "inputs[0].path: must be an absolute"},
    {T("'inputs':[{'url':'/a','path':'/x','type':'file'}]"), -EINVAL,
     "inputs[0].type: must be \"FILE\" or \"DIRECTORY\""},
    {T("'inputs':[{'content':'x','path':'/x','type':'DIRECTORY'}]"), -EINVAL,
     "inputs[0]: content makes a FILE"},
    {T("'inputs':[{'url':'/a','path':'/x','streamable':1}]"), -EINVAL,
     "inputs[0].streamable: must be a boolean"},
    {T("'outputs':[{'path':'/x'}]"), -EINVAL, "outputs[0].url: is required"},
    {T("'outputs':[{'url':'file:///o'}]"), -EINVAL, "outputs[0].path: is required"},
    {T("'outputs':[{'url':'file:///o','path':'/d/*.txt'}]"), -EINVAL,
     "outputs[0].path_prefix: is required when path has wildcards"},
    {T("'outputs':[{'url':'file:///o','path':'/d/*.txt','path_prefix':'/e'}]"), -EINVAL,
     "outputs[0].path_prefix: must be a prefix of path"},
    {T("'volumes':['vol']"), -EINVAL, "volumes[0]: must be an absolute path"},
    {T("'volumes':'/vol'"), -EINVAL, "volumes: must be a list of strings"},
    {T("'tags':{'a':1}"), -EINVAL, "tags.a: must be a string"},
    {T("'tags':['a']"), -EINVAL, "tags: must be an object"},
    {T("'name':5"), -EINVAL, "name: must be a string"},
    {T("'resources':{'cpu_cores':1.5}"), -EINVAL, "resources.cpu_cores: must be an integer"},
    {T("'resources':{'cpu_cores':'4'}"), -EINVAL, "resources.cpu_cores: must be an integer"},
    {T("'resources':{'cpu_cores':1e300}"), -EINVAL, "resources.cpu_cores: must be between"},
    {T("'resources':{'cpu_cores':-1}"), -EINVAL, "resources.cpu_cores: must be between"},
    {T("'resources':{'ram_gb':'8'}"), -EINVAL, "resources.ram_gb: must be a number"},
    {T("'resources':{'disk_gb':-1}"), -EINVAL, "resources.disk_gb: must be a number of GB"},
    {T("'resources':{'zones':'us'}"), -EINVAL, "resources.zones: must be a list"},
    {T("'resources':{'preemptible':'no'}"), -EINVAL, "resources.preemptible: must be a boolean"},
    {T("'resources':{'backend_parameters':{'VmSize':'x'},'backend_parameters_strict':true}"),
     -EINVAL, "resources.backend_parameters.VmSize: is not a backend parameter"},
    {T("'resources':{'backend_parameters':{'walltime':2}}"), -EINVAL,
     "resources.backend_parameters.walltime: must be a string"},
    {T("'resources':{'backend_parameters':{'walltime':'soon'}}"), -EINVAL,
     "resources.backend_parameters.walltime: must be a duration"},
    {T("'resources':{'backend_parameters':{'priority':'99999'}}"), -EINVAL,
     "resources.backend_parameters.priority: must be an integer between"},
    {T("'resources':{'backend_parameters':{'walltime':'1h','WALLTIME':'2h'}}"), -EINVAL,
     "is given twice"},
    {"{'executors':[" X0 "],}", -EBADMSG, NULL},
};

static void test_rows(void)
{
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        _cleanup_free_ char *json = q(rows[i].json);
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_tes_task_ struct tes_task *t = NULL;
        int r = tes_task_parse(json, strlen(json), &t, &err);
        if (!ok(r == rows[i].ret, "row %zu: %s -> %d (%s)", i, json, r, error_message(&err)))
            continue;
        if (r < 0) {
            ok(!t, "row %zu: nothing returned on failure", i);
            if (rows[i].want)
                ok(strstr(error_message(&err), rows[i].want), "row %zu: message \"%s\" says \"%s\"",
                   i, error_message(&err), rows[i].want);
            continue;
        }
        /* parse -> FULL -> parse -> FULL: the same tree. */
        struct tes_task_view tv = {.id = "x", .state = TASK_QUEUED, .created = 1, .task = t};
        _cleanup_tjson_ cJSON *a = tes_task_to_cjson(&tv, TES_VIEW_FULL);
        _cleanup_free_ char *as = cJSON_PrintUnformatted(a);
        _cleanup_tes_task_ struct tes_task *t2 = NULL;
        r = tes_task_parse(as, strlen(as), &t2, &err);
        if (!ok(r == 0, "row %zu: its FULL view parses again (%s)", i, error_message(&err)))
            continue;
        tv.task = t2;
        _cleanup_tjson_ cJSON *b = tes_task_to_cjson(&tv, TES_VIEW_FULL);
        _cleanup_free_ char *bs = cJSON_PrintUnformatted(b);
        ok(streq(as, bs), "row %zu: round trip %s == %s", i, as, bs);
    }
}

/* ---- the spec's schemas, field for field -------------------------------------------------- */

enum kind { STR, NUM, INT, BOOL, OBJ_STR /* object of strings */, LIST_STR, SCHEMA, LIST_SCHEMA };

struct field {
    const char *name;
    enum kind kind;
    const char *schema; /* SCHEMA, LIST_SCHEMA */
    bool required;
};

struct schema {
    const char *name;
    struct field fields[16];
};

static const struct schema schemas[] = {
    {"tesTask",
     {{"id", STR, NULL, true},
      {"state", STR, NULL, true},
      {"name", STR},
      {"description", STR},
      {"inputs", LIST_SCHEMA, "tesInput"},
      {"outputs", LIST_SCHEMA, "tesOutput"},
      {"resources", SCHEMA, "tesResources"},
      {"executors", LIST_SCHEMA, "tesExecutor", true},
      {"volumes", LIST_STR},
      {"tags", OBJ_STR},
      {"logs", LIST_SCHEMA, "tesTaskLog"},
      {"creation_time", STR}}},
    {"tesMinimal", {{"id", STR, NULL, true}, {"state", STR, NULL, true}}},
    {"tesExecutor",
     {{"image", STR, NULL, true},
      {"command", LIST_STR, NULL, true},
      {"workdir", STR},
      {"stdin", STR},
      {"stdout", STR},
      {"stderr", STR},
      {"env", OBJ_STR},
      {"ignore_error", BOOL}}},
    {"tesInput",
     {{"name", STR},
      {"description", STR},
      {"url", STR},
      {"path", STR, NULL, true},
      {"type", STR},
      {"content", STR},
      {"streamable", BOOL}}},
    {"tesOutput",
     {{"name", STR},
      {"description", STR},
      {"url", STR, NULL, true},
      {"path", STR, NULL, true},
      {"path_prefix", STR},
      {"type", STR}}},
    {"tesResources",
     {{"cpu_cores", INT},
      {"preemptible", BOOL},
      {"ram_gb", NUM},
      {"disk_gb", NUM},
      {"zones", LIST_STR},
      {"backend_parameters", OBJ_STR},
      {"backend_parameters_strict", BOOL}}},
    {"tesTaskLog",
     {{"logs", LIST_SCHEMA, "tesExecutorLog", true},
      {"metadata", OBJ_STR},
      {"start_time", STR},
      {"end_time", STR},
      {"outputs", LIST_SCHEMA, "tesOutputFileLog", true},
      {"system_logs", LIST_STR}}},
    {"tesExecutorLog",
     {{"start_time", STR},
      {"end_time", STR},
      {"stdout", STR},
      {"stderr", STR},
      {"exit_code", INT, NULL, true}}},
    {"tesOutputFileLog",
     {{"url", STR, NULL, true}, {"path", STR, NULL, true}, {"size_bytes", STR, NULL, true}}},
    {"tesServiceType",
     {{"group", STR, NULL, true}, {"artifact", STR, NULL, true}, {"version", STR, NULL, true}}},
    {"Organization", {{"name", STR, NULL, true}, {"url", STR, NULL, true}}},
    {"tesServiceInfo",
     {{"id", STR, NULL, true},
      {"name", STR, NULL, true},
      {"type", SCHEMA, "tesServiceType", true},
      {"description", STR},
      {"organization", SCHEMA, "Organization", true},
      {"contactUrl", STR},
      {"documentationUrl", STR},
      {"createdAt", STR},
      {"updatedAt", STR},
      {"environment", STR},
      {"version", STR, NULL, true},
      {"storage", LIST_STR},
      {"tesResources_backend_parameters", LIST_STR}}},
};

static const struct schema *schema_get(const char *name)
{
    for (size_t i = 0; i < ELEMENTSOF(schemas); i++)
        if (streq(schemas[i].name, name))
            return &schemas[i];
    abort();
}

static bool is_list_of_strings(const cJSON *j)
{
    const cJSON *e;
    if (!cJSON_IsArray(j))
        return false;
    cJSON_ArrayForEach(e, j) if (!cJSON_IsString(e)) return false;
    return true;
}

/* The first difference from the schema, written into why; true when none. */
static bool conforms(const cJSON *j, const char *schema, char *why, size_t size)
{
    const struct schema *s = schema_get(schema);
    const cJSON *m;

    if (!cJSON_IsObject(j)) {
        snprintf(why, size, "%s: not an object", schema);
        return false;
    }
    cJSON_ArrayForEach(m, j)
    {
        const struct field *f = NULL;
        for (size_t i = 0; i < ELEMENTSOF(s->fields) && s->fields[i].name; i++)
            if (streq(s->fields[i].name, m->string))
                f = &s->fields[i];
        if (!f) {
            snprintf(why, size, "%s: field %s is not in the spec", schema, m->string);
            return false;
        }
        bool good = false;
        switch (f->kind) {
        case STR:
            good = cJSON_IsString(m);
            break;
        case NUM:
            good = cJSON_IsNumber(m);
            break;
        case INT:
            good = cJSON_IsNumber(m) && m->valuedouble == (double) (int64_t) m->valuedouble;
            break;
        case BOOL:
            good = cJSON_IsBool(m);
            break;
        case OBJ_STR:
            good = cJSON_IsObject(m) && is_list_of_strings(m) == false;
            if (cJSON_IsObject(m)) {
                const cJSON *e;
                good = true;
                cJSON_ArrayForEach(e, m) good = good && cJSON_IsString(e);
            }
            break;
        case LIST_STR:
            good = is_list_of_strings(m);
            break;
        case SCHEMA:
            if (!conforms(m, f->schema, why, size))
                return false;
            good = true;
            break;
        case LIST_SCHEMA: {
            const cJSON *e;
            if (!cJSON_IsArray(m))
                break;
            cJSON_ArrayForEach(e, m) if (!conforms(e, f->schema, why, size)) return false;
            good = true;
            break;
        }
        }
        if (!good) {
            snprintf(why, size, "%s.%s: wrong type", schema, m->string);
            return false;
        }
    }
    for (size_t i = 0; i < ELEMENTSOF(s->fields) && s->fields[i].name; i++)
        if (s->fields[i].required && !cJSON_GetObjectItemCaseSensitive(j, s->fields[i].name)) {
            snprintf(why, size, "%s: required field %s missing", schema, s->fields[i].name);
            return false;
        }
    return true;
}

#define EVERYTHING                                                                                 \
    "{'name':'n','description':'d','tags':{'k':'v'},"                                              \
    "'inputs':[{'name':'i','description':'id','url':'file:///a','path':'/in/a','type':'FILE',"     \
    "'streamable':true},{'content':'secret','path':'/in/c'},{'url':'s3://b/k','path':'/in/s'}],"   \
    "'outputs':[{'name':'o','description':'od','url':'file:///o/','path':'/out/*.txt',"            \
    "'path_prefix':'/out','type':'DIRECTORY'}],"                                                   \
    "'resources':{'cpu_cores':2,'preemptible':true,'ram_gb':1.5,'disk_gb':3,'zones':['z'],"        \
    "'backend_parameters':{'walltime':'1h','VmSize':'big'}},"                                      \
    "'volumes':['/vol'],"                                                                          \
    "'executors':[{'image':'a','command':['sh','-c','x'],'workdir':'/w','stdin':'/in/a',"          \
    "'stdout':'/o','stderr':'/e','env':{'A':'1'},'ignore_error':true},"                            \
    "{'image':'b','command':['true']}]}"

static void test_views(void)
{
    _cleanup_free_ char *json = q(EVERYTHING);
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_tes_task_ struct tes_task *t = NULL;
    char why[256] = "";

    ok(tes_task_parse(json, strlen(json), &t, &err) == 0, "the full task parses (%s)",
       error_message(&err));
    if (!t)
        return;
    ok(t->n_executors == 2 && t->executors[0].ignore_error && !t->executors[1].ignore_error,
       "two executors, ignore_error on the first");
    ok(t->resources.n_backend_parameters == 1 &&
           streq(t->resources.backend_parameters[0].key, "walltime"),
       "only the supported backend parameter is kept");
    ok(t->ignored_parameters && streq(t->ignored_parameters[0], "VmSize") &&
           !t->ignored_parameters[1],
       "the unsupported one is named for the system log");
    ok(!t->inputs[2].type_given && t->inputs[2].type == TES_FILE,
       "an input without type: not given, FILE by default");

    struct tes_executor_log xl[2] = {
        {.start = 1700000000000000,
         .end = 1700000001000000,
         .exit_code = 3,
         .stdout_tail = xstrdup("out"),
         .stderr_tail = NULL},
        {.start = 1700000001000000, .end = 1700000002000000, .exit_code = 0},
    };
    struct tes_output_log ol = {xstrdup("file:///o/a.txt"), xstrdup("/out/a.txt"),
                                UINT64_C(5000000000)};
    char *sys[] = {"backend parameter VmSize is not supported: ignored", NULL};
    struct tes_task_log log = {.start = 1700000000000000,
                               .end = 1700000002000000,
                               .logs = xl,
                               .n_logs = 2,
                               .outputs = &ol,
                               .n_outputs = 1,
                               .system_logs = sys};
    struct tes_task_view tv = {"0b6f7f1e-1111-4222-8333-944455556666", TASK_EXECUTOR_ERROR,
                               1700000000000000, t, &log};

    _cleanup_tjson_ cJSON *min = tes_task_to_cjson(&tv, TES_VIEW_MINIMAL);
    ok(conforms(min, "tesMinimal", why, sizeof(why)) && cJSON_GetArraySize(min) == 2,
       "MINIMAL: id and state only (%s)", why);
    ok(streq(cJSON_GetObjectItem(min, "state")->valuestring, "EXECUTOR_ERROR"),
       "MINIMAL: state is the TES name");

    _cleanup_tjson_ cJSON *basic = tes_task_to_cjson(&tv, TES_VIEW_BASIC);
    _cleanup_free_ char *bs = cJSON_PrintUnformatted(basic);
    ok(conforms(basic, "tesTask", why, sizeof(why)), "BASIC conforms to tesTask (%s)", why);
    ok(!strstr(bs, "secret"), "BASIC: no input content: %s", bs);
    ok(!strstr(bs, "\"stdout\":\"out\"") && !strstr(bs, "system_logs"),
       "BASIC: no executor stdout/stderr, no system_logs");
    ok(strstr(bs, "\"executors\":[") && strstr(bs, "\"exit_code\":3"),
       "BASIC: executors and exit codes");

    _cleanup_tjson_ cJSON *full = tes_task_to_cjson(&tv, TES_VIEW_FULL);
    _cleanup_free_ char *fs = cJSON_PrintUnformatted(full);
    ok(conforms(full, "tesTask", why, sizeof(why)), "FULL conforms to tesTask (%s)", why);
    ok(strstr(fs, "\"content\":\"secret\"") && strstr(fs, "\"stdout\":\"out\"") &&
           strstr(fs, "\"stderr\":\"\"") && strstr(fs, "\"system_logs\":["),
       "FULL: content, stdout/stderr, system_logs: %s", fs);
    ok(strstr(fs, "\"size_bytes\":\"5000000000\""), "size_bytes is a string");
    ok(strstr(fs, "\"creation_time\":\"2023-11-14T22:13:20.000Z\"") &&
           strstr(fs, "\"start_time\":\"2023-11-14T22:13:21.000Z\""),
       "times are RFC 3339");
    ok(strstr(fs, "\"backend_parameters\":{\"walltime\":\"1h\"}") && !strstr(fs, "VmSize\":"),
       "an unsupported backend parameter is not returned");

    /* Before it has a log: "logs" is [], still conforming. */
    tv.log = NULL;
    tv.state = TASK_QUEUED;
    _cleanup_tjson_ cJSON *queued = tes_task_to_cjson(&tv, TES_VIEW_FULL);
    const cJSON *logs = cJSON_GetObjectItem(queued, "logs");
    ok(conforms(queued, "tesTask", why, sizeof(why)) && cJSON_IsArray(logs) &&
           cJSON_GetArraySize(logs) == 0,
       "a queued task: logs is [] (%s)", why);

    /* A task log with nothing in it still has logs and outputs. */
    struct tes_task_log empty = {};
    tv.log = &empty;
    _cleanup_tjson_ cJSON *started = tes_task_to_cjson(&tv, TES_VIEW_BASIC);
    _cleanup_free_ char *ss = cJSON_PrintUnformatted(started);
    ok(conforms(started, "tesTask", why, sizeof(why)) &&
           strstr(ss, "\"logs\":[{\"logs\":[],\"outputs\":[]}]"),
       "an empty task log has logs and outputs: %s", ss);

    free(xl[0].stdout_tail);
    free(ol.url);
    free(ol.path);
}

static void test_service_info(void)
{
    char *storage[] = {"file:///", NULL};
    struct tes_service_info si = {"org.example.ocps",    "ocps-proxy", "Example",
                                  "https://example.org", "0.1.0",      storage};
    _cleanup_tjson_ cJSON *j = tes_service_info_to_cjson(&si);
    _cleanup_free_ char *s = cJSON_PrintUnformatted(j);
    char why[256] = "";
    ok(conforms(j, "tesServiceInfo", why, sizeof(why)), "service-info conforms (%s)", why);
    ok(strstr(s, "\"type\":{\"group\":\"org.ga4gh\",\"artifact\":\"tes\",\"version\":\"1.1.0\"}"),
       "service-info type: %s", s);
    ok(strstr(s, "\"tesResources_backend_parameters\":[\"walltime\",\"cputime\",\"priority\"]"),
       "service-info lists the supported backend parameters");
}

static void test_from_task(void)
{
    const char *cases[][2] = {
        {"{'user':'alice','name':'jp','container':{'image':'busybox','cmd':'echo hi'},"
         "'cores':0.5,'memory':'512M','env':{'A':'1'},'workdir':'/tmp','tags':{'t':'v'}}",
         "{'id':'i','state':'RUNNING','name':'jp','resources':{'cpu_cores':1,'ram_gb':0.5},"
         "'executors':[{'image':'busybox','command':['/bin/sh','-c','echo hi'],'workdir':'/tmp',"
         "'env':{'A':'1'}}],'tags':{'t':'v'},'logs':[]}"},
        {"{'user':'alice','container':{'image':'busybox','cmd':['ls','-l']}}",
         "{'id':'i','state':'RUNNING','executors':[{'image':'busybox','command':['ls','-l']}],"
         "'logs':[]}"},
        {"{'user':'alice','container':{'image':'busybox'}}",
         "{'id':'i','state':'RUNNING','executors':[{'image':'busybox','command':[]}],'logs':[]}"},
        {"{'user':'alice','cmd':['true']}",
         "{'id':'i','state':'RUNNING','executors':[{'image':'','command':['true']}],'logs':[]}"},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        _cleanup_free_ char *in = q(cases[i][0]), *want = q(cases[i][1]);
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_task_ struct task *t = NULL;
        if (!ok(task_parse(TASK_FORMAT_JSON, in, strlen(in), NULL, &t, &err) == 0,
                "JobProxy task %zu parses (%s)", i, error_message(&err)))
            continue;
        _cleanup_tes_task_ struct tes_task *tt = tes_task_from_task(t);
        struct tes_task_view tv = {.id = "i", .state = TASK_RUNNING, .task = tt};
        _cleanup_tjson_ cJSON *j = tes_task_to_cjson(&tv, TES_VIEW_FULL);
        _cleanup_free_ char *s = cJSON_PrintUnformatted(j);
        char why[256] = "";
        ok(streq(s, want), "JobProxy task %zu in TES: %s", i, s);
        ok(conforms(j, "tesTask", why, sizeof(why)), "JobProxy task %zu conforms (%s)", i, why);
    }
}

static void test_to_task(void)
{
    const char *cases[][2] = {
        {"{'name':'t','executors':[{'image':'busybox','command':['sh','-c','echo $A'],"
         "'workdir':'/w','env':{'A':'1'}},{'image':'alpine','command':['true']}],"
         "'tags':{'k':'v'},'resources':{'cpu_cores':2,'ram_gb':1.5,"
         "'backend_parameters':{'WallTime':'2h','cputime':'90','priority':'-5'}}}",
         "{'user':'alice','name':'t','container':{'image':'busybox','cmd':['sh','-c','echo $A']},"
         "'cores':2,'memory':'1536M','cputime':'90s','walltime':'7200s','priority':-5,"
         "'workdir':'/w','env':{'A':'1'},'tags':{'k':'v'}}"},
        {"{'executors':[{'image':'busybox','command':['ls']}],'resources':{'ram_gb':0.1}}",
         "{'user':'alice','container':{'image':'busybox','cmd':['ls']},'memory':'107374183B'}"},
        {"{'executors':[{'image':'busybox','command':['ls']}]}",
         "{'user':'alice','container':{'image':'busybox','cmd':['ls']}}"},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        _cleanup_free_ char *in = q(cases[i][0]), *want = q(cases[i][1]);
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_tes_task_ struct tes_task *tt = NULL;
        _cleanup_task_ struct task *t = NULL;
        if (!ok(tes_task_parse(in, strlen(in), &tt, &err) == 0, "TES task %zu parses (%s)", i,
                error_message(&err)))
            continue;
        if (!ok(tes_task_to_task(tt, "alice", &t, &err) == 0, "TES task %zu as a task (%s)", i,
                error_message(&err)))
            continue;
        _cleanup_tjson_ cJSON *j = task_to_cjson(t);
        _cleanup_free_ char *s = cJSON_PrintUnformatted(j);
        ok(streq(s, want), "TES task %zu is the task %s (want %s)", i, s, want);
    }

    /* What the one validator refuses is refused for a TES task too. */
    const char *bad[][2] = {
        {"{'executors':[{'image':'b','command':['x']}],'resources':{'ram_gb':0.001}}", "memory"},
        {"{'executors':[{'image':'b','command':['x']}],'resources':{'cpu_cores':0}}", NULL},
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        _cleanup_free_ char *in = q(bad[i][0]);
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_tes_task_ struct tes_task *tt = NULL;
        _cleanup_task_ struct task *t = NULL;
        if (!ok(tes_task_parse(in, strlen(in), &tt, &err) == 0, "bad %zu parses", i))
            continue;
        int r = tes_task_to_task(tt, "alice", &t, &err);
        if (bad[i][1])
            ok(r == -EINVAL && strstr(error_message(&err), bad[i][1]) &&
                   startswith(error_message(&err), "as a task of this server: "),
               "bad %zu: refused naming %s: %s", i, bad[i][1], error_message(&err));
        else
            ok(r == 0 && t->cores == 0, "cpu_cores 0 is not given: the default applies");
    }
}

static void test_tables(void)
{
    ok(tes_view_from_string("BASIC") == TES_VIEW_BASIC, "view BASIC");
    ok(tes_view_from_string("basic") == _TES_VIEW_INVALID, "views are the spec's enum, exactly");
    ok(tes_file_type_from_string("DIRECTORY") == TES_DIRECTORY, "file type DIRECTORY");
    ok(streq(tes_view_to_string(TES_VIEW_MINIMAL), "MINIMAL"), "view names");
}

/* task->tes in the store's spec: stored, read back, copied, the same. */
static void test_stored(void)
{
    _cleanup_free_ char *in =
        q("{'name':'n','description':'d','executors':[" X0 ",{'image':'b','command':['x'],"
          "'stdin':'/i','ignore_error':true}],'inputs':[{'path':'/in','url':'s3://b/k'},"
          "{'path':'/c','content':'hi'}],'outputs':[{'path':'/o/*','path_prefix':'/o/',"
          "'url':'file:///tmp/o','type':'DIRECTORY'}],'volumes':['/v'],'tags':{'a':'b'},"
          "'resources':{'cpu_cores':2,'ram_gb':1,'disk_gb':2.5,'zones':['z'],"
          "'backend_parameters':{'WallTime':'1h','gpu':'2'}}}");
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_tes_task_ struct tes_task *tt = NULL;
    _cleanup_task_ struct task *t = NULL, *back = NULL;
    if (!ok(tes_task_parse(in, strlen(in), &tt, &err) == 0, "the task parses (%s)",
            error_message(&err)) ||
        !ok(tes_task_to_task(tt, "alice", &t, &err) == 0, "as a task (%s)", error_message(&err)))
        return;
    ok(tes_task_needs_runner(tt), "two executors, inputs, outputs, volumes: the runner's");
    t->tes = TAKE_PTR(tt);
    struct task_record rec = {.id = "i", .spec = task_record_spec(t)};
    ok(task_record_task(&rec, &back, &err) == 0 && back->tes, "read back with its TES part (%s)",
       error_message(&err));
    _cleanup_tjson_ cJSON *a = tes_task_to_spec_cjson(t->tes);
    _cleanup_tjson_ cJSON *b = back && back->tes ? tes_task_to_spec_cjson(back->tes) : NULL;
    ok(b && cJSON_Compare(a, b, true), "the stored TES part reads back the same");
    ok(b && !cJSON_GetObjectItem(b, "id") && !cJSON_GetObjectItem(b, "logs") &&
           strv_length(back->tes->ignored_parameters) == 1 &&
           streq(back->tes->ignored_parameters[0], "gpu"),
       "no read-only fields stored; the dropped parameter kept apart");
    _cleanup_task_ struct task *copy = task_copy(back);
    _cleanup_tjson_ cJSON *c = copy->tes ? tes_task_to_spec_cjson(copy->tes) : NULL;
    ok(c && cJSON_Compare(a, c, true), "task_copy copies the TES part");
    _cleanup_tjson_ cJSON *jp = task_to_cjson(back);
    ok(!cJSON_GetObjectItem(jp, "tes"), "the JobProxy form has no TES part");
    free(rec.spec);

    /* A damaged TES part is a damaged task, not a JobProxy one. */
    _cleanup_free_ char *bad = q("{'user':'alice','container':{'image':'b'},'tes':{'name':1}}");
    struct task_record brec = {.id = "i", .spec = bad};
    _cleanup_task_ struct task *none = NULL;
    ok(task_record_task(&brec, &none, &err) == -EIO && strstr(error_message(&err), "damaged"),
       "a damaged TES part: -EIO (%s)", error_message(&err));

    static const char *const simple[] = {
        T("'resources':{'cpu_cores':1}"),
        "{'executors':[{'image':'a','command':['b'],'stdout':'/o'}]}",
        T("'volumes':['/v']"),
    };
    for (size_t i = 0; i < ELEMENTSOF(simple); i++) {
        _cleanup_free_ char *s = q(simple[i]);
        _cleanup_tes_task_ struct tes_task *x = NULL;
        _cleanup_task_ struct task *xt = NULL;
        if (!ok(tes_task_parse(s, strlen(s), &x, &err) == 0, "parses: %s", simple[i]))
            continue;
        ok(tes_task_needs_runner(x) == (i > 0), "needs the runner: %s", simple[i]);
        if (tes_task_to_task(x, "alice", &xt, &err) < 0)
            continue;
        xt->tes = TAKE_PTR(x);
        ok(!process_backend_ops.handles(xt), "the process backend does not take it");
        /* Even without the container its first executor makes. */
        xt->container = task_container_free(xt->container);
        xt->cmd.argv = strv_copy((char *[]){(char *) "true", NULL});
        ok(process_backend_ops.handles(xt) == (i == 0),
           "without a container, only a one-container TES task would be the process backend's");
    }
}

/* tes-log.json: what the runner writes is what the handlers read back. */
static void test_log_file(void)
{
    char dir[] = "/tmp/test-tes-log.XXXXXX";
    struct tes_task_log got = {};
    if (!ok(mkdtemp(dir), "a task dir"))
        return;
    ok(tes_task_log_read(dir, &got) == -ENOENT, "no tes-log.json yet: -ENOENT");

    struct tes_executor_log xl[2] = {
        {.start = 1764806400123000,
         .end = 1764806401000000,
         .exit_code = 0,
         .stdout_tail = (char *) "hi\n"},
        {.start = 1764806401000000, .end = 1764806402000000, .exit_code = 3},
    };
    struct tes_output_log out = {
        .url = (char *) "file:///tmp/o", .path = (char *) "/data/o", .size_bytes = 5000000000ULL};
    char *sys[] = {(char *) "input[0]: no storage for scheme s3", NULL};
    struct task_kv meta = {(char *) "host", (char *) "h1"};
    const struct tes_task_log l = {.start = 1764806400000000,
                                   .end = 1764806403000000,
                                   .logs = xl,
                                   .n_logs = 2,
                                   .outputs = &out,
                                   .n_outputs = 1,
                                   .system_logs = sys,
                                   .metadata = &meta,
                                   .n_metadata = 1};
    ok(tes_task_log_write(dir, &l, true) == 0, "written");
    if (ok(tes_task_log_read(dir, &got) == 0, "read back")) {
        ok(got.start == l.start && got.end == l.end, "task start and end (RFC 3339, ms)");
        ok(got.n_logs == 2 && got.logs[0].start == xl[0].start && got.logs[1].exit_code == 3 &&
               streq_ptr(got.logs[0].stdout_tail, "hi\n") && !got.logs[1].stdout_tail,
           "executor logs, in order, with their tails");
        ok(got.n_outputs == 1 && got.outputs[0].size_bytes == 5000000000ULL &&
               streq(got.outputs[0].path, "/data/o"),
           "outputs, size_bytes past 32 bits");
        ok(strv_length(got.system_logs) == 1 && streq(got.system_logs[0], sys[0]), "system logs");
        ok(got.n_metadata == 1 && streq(got.metadata[0].value, "h1"), "metadata");
        tes_task_log_done(&got);
    }

    static const char *const bad[] = {
        "not json",
        "{'outputs':[]}",
        "{'logs':[],'outputs':{}}",
        "{'logs':[{'start_time':'2026-12-04T00:00:00Z'}],'outputs':[]}",
        "{'logs':[{'exit_code':1.5}],'outputs':[]}",
        "{'logs':[],'outputs':[{'url':'file:///o','path':'/o','size_bytes':5}]}",
        "{'logs':[],'outputs':[{'url':'file:///o','path':'/o','size_bytes':'-5'}]}",
        "{'logs':[],'outputs':[],'start_time':'yesterday'}",
        "{'logs':[],'outputs':[],'system_logs':[1]}",
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        _cleanup_free_ char *b = q(bad[i]);
        ok(tes_task_log_parse(b, &got) == -EBADMSG, "not a task log: %s", bad[i]);
    }
    _cleanup_free_ char *path = layout_in_task_dir(dir, LAYOUT_TES_LOG);
    (void) unlink(path);
    (void) rmdir(dir);
}

/* An executor's output tail: the range asked for, the last TES_LOG_TAIL
 * bytes of it, never from inside a character, not-UTF-8 as '?'. */
static void test_log_tail(void)
{
    char path[] = "/tmp/test-tes-tail-XXXXXX";
    int fd = mkstemp(path);
    ok(fd >= 0, "a temporary output file");
    (void) unlink(path);
    const char head[] = "first\n";
    (void) loop_write(fd, head, strlen(head));
    _cleanup_free_ char *big = xmalloc(TES_LOG_TAIL + 8);
    memset(big, 'x', TES_LOG_TAIL + 8);
    /* A two-byte character the tail's start (end - TES_LOG_TAIL, 14
     * bytes in) cuts: its second byte is not shown alone. */
    big[7] = (char) 0xc3;
    big[8] = (char) 0xa9;
    big[TES_LOG_TAIL + 5] = (char) 0xff; /* not UTF-8 */
    (void) loop_write(fd, big, TES_LOG_TAIL + 8);
    off_t end = (off_t) strlen(head) + TES_LOG_TAIL + 8;
    _cleanup_free_ char *a = tes_log_tail(fd, 0, (off_t) strlen(head));
    ok(a && streq(a, "first\n"), "the range's bytes: \"%s\"", a ? a : "(null)");
    _cleanup_free_ char *b = tes_log_tail(fd, 0, end);
    ok(b && strlen(b) <= TES_LOG_TAIL && b[strlen(b) - 3] == '?' && b[0] == 'x',
       "a long range: its last TES_LOG_TAIL bytes at most, not from inside a character, a "
       "bad byte as '?'");
    ok(tes_log_tail(fd, 5, 5) == NULL && tes_log_tail(-1, 0, 5) == NULL,
       "an empty range, or no file: NULL");
    close(fd);
}

int main(void)
{
    test_log_tail();
    test_log_file();
    test_stored();
    test_rows();
    test_views();
    test_service_info();
    test_from_task();
    test_to_task();
    test_tables();
    return tap_done();
}
