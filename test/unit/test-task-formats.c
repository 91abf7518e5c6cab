/*
 * Unit tests: the YAML and XML readers (task-yaml.c, task-xml.c). The same
 * task written in JSON, YAML and XML (test/data/tasks/) must normalise to
 * the same tree; malformed, hostile and truncated documents must fail with
 * -EBADMSG and words, never crash. Fixtures are found through
 * TEST_DATA_DIR (set by meson), else $OCPS_TEST_DATA, else ./test/data.
 */
#include "tap.h"
#include "task.h"

static void cjson_freep(cJSON **j)
{
    cJSON_Delete(*j);
}
#define _cleanup_json_ _cleanup_(cjson_freep)

static const char *format_names[] = {"json", "yaml", "xml"};

static bool xml_built;

static const char *data_dir(void)
{
#ifdef TEST_DATA_DIR
    return TEST_DATA_DIR;
#else
    const char *e = getenv("OCPS_TEST_DATA");
    return isempty(e) ? "test/data" : e;
#endif
}

static int parse(enum task_format f, const char *buf, size_t len, cJSON **ret, struct error *err)
{
    switch (f) {
    case TASK_FORMAT_JSON:
        return task_json_parse(buf, len, ret, err);
    case TASK_FORMAT_YAML:
        return task_yaml_parse(buf, len, ret, err);
    case TASK_FORMAT_XML:
        return task_xml_parse(buf, len, ret, err);
    case _TASK_FORMAT_MAX:
    case _TASK_FORMAT_INVALID:
    default:
        return -EINVAL;
    }
}

static int read_fixture(const char *name, enum task_format f, char **ret, size_t *ret_len)
{
    _cleanup_free_ char *path = xasprintf("%s/tasks/%s.%s", data_dir(), name, format_names[f]);
    int r = read_file(path, 1 << 20, ret, ret_len);
    if (r < 0)
        diag("cannot read %s: %s", path, strerror(-r));
    return r;
}

/* Fixture -> tree -> task -> normalised tree; NULL (with a failed test
 * line) at the first step that fails. */
static cJSON *normalise(const char *name, enum task_format f, struct task **ret_task)
{
    _cleanup_free_ char *buf = NULL;
    _cleanup_json_ cJSON *tree = NULL;
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_task_ struct task *t = NULL;
    size_t len;
    int r;

    if (!ok(read_fixture(name, f, &buf, &len) == 0, "%s.%s: read", name, format_names[f]))
        return NULL;
    r = parse(f, buf, len, &tree, &err);
    if (!ok(r == 0 && tree, "%s.%s: parse%s%s", name, format_names[f], r < 0 ? ": " : "",
            r < 0 ? error_message(&err) : ""))
        return NULL;
    r = task_from_cjson(tree, NULL, &t, &err);
    if (!ok(r == 0 && t, "%s.%s: validate%s%s", name, format_names[f], r < 0 ? ": " : "",
            r < 0 ? error_message(&err) : ""))
        return NULL;
    cJSON *n = task_to_cjson(t);
    if (ret_task)
        *ret_task = TAKE_PTR(t);
    return n;
}

static void diag_json(const char *what, const cJSON *j)
{
    _cleanup_free_ char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    diag("%s: %s", what, s ? s : "(null)");
}

static void test_equivalence(void)
{
    static const char *fixtures[] = {"full", "container-full", "jobproxy-helloworld",
                                     "jobproxy-container"};

    for (size_t i = 0; i < ELEMENTSOF(fixtures); i++) {
        _cleanup_task_ struct task *t = NULL;
        _cleanup_json_ cJSON *json = normalise(fixtures[i], TASK_FORMAT_JSON, &t);
        _cleanup_json_ cJSON *yaml = normalise(fixtures[i], TASK_FORMAT_YAML, NULL);

        if (!json || !yaml)
            continue;
        if (!ok(cJSON_Compare(json, yaml, true), "%s: YAML normalises like JSON", fixtures[i])) {
            diag_json("json", json);
            diag_json("yaml", yaml);
        }
        if (xml_built) {
            _cleanup_json_ cJSON *xml = normalise(fixtures[i], TASK_FORMAT_XML, NULL);
            if (xml &&
                !ok(cJSON_Compare(json, xml, true), "%s: XML normalises like JSON", fixtures[i])) {
                diag_json("json", json);
                diag_json("xml", xml);
            }
        }

        /* And the fixtures say what the brief says they say. */
        if (streq(fixtures[i], "full")) {
            ok(streq_ptr(t->user, "nobody") && streq_ptr(t->name, "formats"), "full: user, name");
            ok(!t->cmd.shell && strv_length(t->cmd.argv) == 3 &&
                   streq(t->cmd.argv[2], "echo $GREETING"),
               "full: cmd is an argument vector");
            ok(t->cores == 0.5 && t->memory == 64ULL << 20 && t->cputime == 30 && t->walltime == 60,
               "full: cores, memory, cputime, walltime");
            ok(t->priority == -5, "full: priority, negative");
            ok(streq_ptr(t->backend, "process"), "full: backend");
            ok(t->n_env == 1 && streq(t->env[0].key, "GREETING") &&
                   streq(t->env[0].value, "hello") && t->n_tags == 1 &&
                   streq(t->tags[0].key, "project") && streq(t->tags[0].value, "ocps"),
               "full: env, tags");
        } else if (streq(fixtures[i], "jobproxy-helloworld")) {
            /* Bare numbers in the XSD's units, remembered as bare. */
            ok(t->cmd.shell && streq(t->cmd.argv[0], "/bin/echo 'hello from a JobProxy task'") &&
                   !t->container,
               "jobproxy-helloworld: a shell command");
            ok(t->cores == 1 && t->memory == 128ULL << 30 && t->memory_bare_unit == 1ULL << 30 &&
                   t->cputime == 36000,
               "jobproxy-helloworld: memory 128 GB and cputime 10 hours, as JobProxy's XSD says");
        } else if (streq(fixtures[i], "jobproxy-container")) {
            /* The top-level cmd runs in the container; the JAXB wrapper is unwrapped. */
            const struct task_container *c = t->container;
            ok(!t->cmd.argv && c && c->cmd.shell &&
                   streq(c->cmd.argv[0], "/bin/touch /jobproxy_out/touched.txt"),
               "jobproxy-container: cmd became container.cmd");
            ok(c && c->n_mounts == 1 && streq(c->mounts[0].host, "/tmp/ocps-jobproxy-out") &&
                   streq(c->mounts[0].container, "/jobproxy_out") && c->mounts[0].mode == MOUNT_RW,
               "jobproxy-container: the wrapped mount");
            ok(t->cores == 1 && t->memory == 128ULL << 30 && t->cputime == 36000,
               "jobproxy-container: numbers given as strings");
        } else {
            const struct task_container *c = t->container;
            ok(c && streq_ptr(c->image, "ocps-test:latest") && strv_length(c->cmd.argv) == 3,
               "container-full: image, cmd");
            ok(c && c->n_ports == 2 && c->ports[0].host == 18080 && c->ports[0].container == 80 &&
                   c->ports[1].host == 18081 && c->ports[1].container == 81,
               "container-full: ports");
            ok(c && c->n_mounts == 1 && streq(c->mounts[0].host, "/tmp") &&
                   streq(c->mounts[0].container, "/data") && c->mounts[0].mode == MOUNT_RO,
               "container-full: mounts");
            ok(t->cores == 1 && t->memory == 128ULL << 20, "container-full: cores, memory");
        }
    }
}

struct bad_row {
    const char *what;
    const char *doc;    /* NULL: built by the test */
    const char *needle; /* a part of the message, or NULL */
};

static char *nested(const char *open, const char *close, const char *inner, unsigned n)
{
    size_t lo = strlen(open), lc = strlen(close), li = strlen(inner);
    char *s = xmalloc(n * (lo + lc) + li + 1), *p = s;

    for (unsigned i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, inner, li);
    p += li;
    for (unsigned i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

static void check_bad(enum task_format f, const struct bad_row *row, const char *doc)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    cJSON *tree = NULL;
    int r = parse(f, doc, strlen(doc), &tree, &err);

    ok(r == -EBADMSG && err.code == r && err.msg && !tree, "%s: %s -> -EBADMSG (%s)",
       format_names[f], row->what, err.msg ? err.msg : "no message");
    if (row->needle)
        ok(err.msg && strstr(err.msg, row->needle), "%s: %s: message names \"%s\"", format_names[f],
           row->what, row->needle);
    cJSON_Delete(tree);
}

static void test_yaml_errors(void)
{
    static const struct bad_row rows[] = {
        {"tab indentation", "user: x\nenv:\n\tA: 1\n", "line 3"},
        {"unclosed quote", "user: \"nobody\ncores: 1\n", "quoted scalar"},
        {"alias", "a: &x 1\nb: *x\n", "aliases are not allowed"},
        {"anchor on a mapping", "a: &x {b: 1}\n", "aliases are not allowed"},
        {"two documents", "user: a\n---\nuser: b\n", "more than one document"},
        {"duplicate key", "user: a\ncores: 1\nuser: b\n", "duplicate key \"user\" at line 3"},
        {"duplicate key in a flow mapping", "{a: 1, a: 2}", "duplicate key \"a\""},
        {"sequence as a key", "[a, b]: 1\n", "keys must be scalars"},
        {"mapping as a key", "? {a: 1}\n: 2\n", "keys must be scalars"},
        {"empty input", "", "empty document"},
        {"only a comment", "# nothing\n", "empty document"},
        {"only a document marker", "---\n", "empty document"},
        {"NUL escape", "user: \"a\\0b\"\n", "NUL"},
        {"invalid UTF-8", "user: \xc3\x28\n", NULL},
        {"unclosed flow sequence", "cmd: [a, b\n", NULL},
        {"bad indentation", "a:\n  b: 1\n c: 2\n", NULL},
    };

    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        check_bad(TASK_FORMAT_YAML, &rows[i], rows[i].doc);

    _cleanup_free_ char *deep_seq = nested("[", "]", "", 100);
    _cleanup_free_ char *deep_map = nested("{a: ", "}", "1", 100);
    check_bad(TASK_FORMAT_YAML, &(struct bad_row){"100 nested sequences", NULL, "too deep"},
              deep_seq);
    check_bad(TASK_FORMAT_YAML, &(struct bad_row){"100 nested mappings", NULL, "too deep"},
              deep_map);

    /* 64 levels are still fine. */
    _cleanup_free_ char *ok_seq = nested("[", "]", "", 64);
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_json_ cJSON *tree = NULL;
    ok(task_yaml_parse(ok_seq, strlen(ok_seq), &tree, &err) == 0 && cJSON_IsArray(tree),
       "yaml: 64 nested sequences are accepted");

    /* The input need not be NUL-terminated: only len bytes are read. */
    cJSON *t2 = NULL;
    ok(task_yaml_parse("a: 1\nb: *x\n", 5, &t2, &err) == 0 && t2 && cJSON_GetArraySize(t2) == 1,
       "yaml: only len bytes are read");
    cJSON_Delete(t2);
}

/* Parses doc in format f and compares the tree with the JSON text want. */
static void check_tree(enum task_format f, const char *what, const char *doc, const char *want)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_json_ cJSON *tree = NULL;
    _cleanup_json_ cJSON *expect = cJSON_Parse(want);
    int r = parse(f, doc, strlen(doc), &tree, &err);

    if (!ok(r == 0 && expect && cJSON_Compare(tree, expect, true), "%s: %s", format_names[f],
            what)) {
        diag("error: %s", r < 0 ? error_message(&err) : "none");
        diag_json("got", tree);
        diag("want: %s", want);
    }
}

static void test_yaml_values(void)
{
    static const struct {
        const char *what, *doc, *want;
    } rows[] = {
        {"cores: ~ is null", "cores: ~\n", "{\"cores\": null}"},
        {"null spellings", "a: null\nb: Null\nc: NULL\nd:\n",
         "{\"a\": null, \"b\": null, \"c\": null, \"d\": null}"},
        {"quoted null is a string", "a: \"null\"\nb: '~'\nc: !!str null\n",
         "{\"a\": \"null\", \"b\": \"~\", \"c\": \"null\"}"},
        {"numbers and booleans stay strings", "cores: 0.5\nn: 42\nb: true\n",
         "{\"cores\": \"0.5\", \"n\": \"42\", \"b\": \"true\"}"},
        {"block and flow collections",
         "cmd: [sh, -c, 'echo hi']\nports:\n  - {host: 1, container: 2}\n",
         "{\"cmd\": [\"sh\", \"-c\", \"echo hi\"], "
         "\"ports\": [{\"host\": \"1\", \"container\": \"2\"}]}"},
        {"literal block scalar", "cmd: |\n  echo a\n  echo b\n",
         "{\"cmd\": \"echo a\\necho b\\n\"}"},
        {"nested config document",
         "listen: [\"127.0.0.1:8080\", unix:/run/ocps.sock]\nlimits:\n  memory: 8G\n"
         "  users:\n    - name: a\n      cores: 2\n",
         "{\"listen\": [\"127.0.0.1:8080\", \"unix:/run/ocps.sock\"], \"limits\": "
         "{\"memory\": \"8G\", \"users\": [{\"name\": \"a\", \"cores\": \"2\"}]}}"},
        {"a sequence at the root", "- a\n- b\n", "[\"a\", \"b\"]"},
        {"explicit document markers", "---\nuser: a\n...\n", "{\"user\": \"a\"}"},
        {"UTF-8 text", "name: \"gr\\u00fc\\u00df\"\n", "{\"name\": \"gr\\u00fc\\u00df\"}"},
    };

    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        check_tree(TASK_FORMAT_YAML, rows[i].what, rows[i].doc, rows[i].want);
}

static void test_xml_errors(void)
{
    static const struct bad_row rows[] = {
        {"billion laughs",
         "<?xml version=\"1.0\"?>\n"
         "<!DOCTYPE lolz [\n"
         " <!ENTITY lol \"lol\">\n"
         " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
         " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
         " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
         "]>\n"
         "<task><user>nobody</user><name>&lol3;</name></task>\n",
         "DOCTYPE is not allowed"},
        {"external entity (XXE)",
         "<!DOCTYPE task [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
         "<task><user>&x;</user></task>",
         "DOCTYPE is not allowed"},
        {"external DTD", "<!DOCTYPE task SYSTEM \"http://example.com/task.dtd\"><task/>",
         "DOCTYPE is not allowed"},
        {"bare DOCTYPE", "<!DOCTYPE task><task><user>x</user></task>", "DOCTYPE is not allowed"},
        {"root <job>", "<job><user>nobody</user></job>", "root element must be <task>"},
        {"unclosed tag", "<task><user>nobody</user>\n<cmd>true</task>", "line 2"},
        {"truncated document", "<task><user>nob", NULL},
        {"repeated <user>", "<task><user>a</user><user>b</user></task>", "element <user> repeated"},
        {"repeated <container>", "<task><container/><container/></task>",
         "element <container> repeated"},
        {"undefined entity", "<task><user>&nobody;</user></task>", "nobody"},
        {"text beside elements", "<task>hello<user>a</user></task>", "text"},
        {"<cmd> with a stray element", "<task><cmd><arg>a</arg><opt>b</opt></cmd></task>", "<arg>"},
        {"<arg> with elements", "<task><cmd><arg><x/></arg></cmd></task>", NULL},
        {"duplicate env key",
         "<task><env><entry key=\"A\">1</entry><entry><key>A</key><value>2</value></entry>"
         "</env></task>",
         "duplicate key \"A\""},
        {"entry without a key", "<task><env><entry>1</entry></env></task>", "key"},
        {"env without entries", "<task><env><A>1</A></env></task>", "<entry>"},
        {"two <key> in one entry",
         "<task><tags><entry><key>a</key><key>b</key><value/></entry></tags></task>", "repeated"},
        {"empty input", "", NULL},
        {"not XML at all", "user: nobody\n", NULL},
        {"bad UTF-8", "<task><user>\xff</user></task>", NULL},
        {"two roots", "<task/><task/>", NULL},
        /* Attributes are fields as much as elements are: an unknown one is
         * refused, as an unknown JSON field is. */
        {"an attribute on the root", "<task version=\"1\"><user>a</user></task>",
         "unknown attribute \"version\" on <task> at line 1"},
        {"an attribute on a field", "<task>\n<user id=\"7\">a</user></task>",
         "unknown attribute \"id\" on <user> at line 2"},
        {"an attribute beside an entry's key",
         "<task><env><entry key=\"A\" sep=\";\">1</entry></env></task>",
         "unknown attribute \"sep\" on <entry>"},
        {"key on an element that is no entry", "<task><user key=\"k\">a</user></task>",
         "unknown attribute \"key\" on <user>"},
        {"an attribute on an empty wrapper",
         "<task><container><mounts mode=\"RO\"/></container></task>",
         "unknown attribute \"mode\" on <mounts>"},
        {"an attribute on an <arg>", "<task><cmd><arg quote=\"no\">a</arg></cmd></task>",
         "\"quote\""},
        {"a key in another namespace",
         "<task xmlns:x=\"urn:x\"><env><entry x:key=\"A\">1</entry></env></task>",
         "unknown attribute \"x:key\" on <entry>"},
        {"xsi:type",
         "<task xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"t\"/>",
         "unknown attribute \"xsi:type\""},
        {"schemaLocation outside the XSI namespace",
         "<task xmlns:xsi=\"urn:not-xsi\" xsi:schemaLocation=\"a b\"/>",
         "unknown attribute \"xsi:schemaLocation\""},
        {"an undeclared xsi prefix", "<task xsi:noNamespaceSchemaLocation=\"a.xsd\"/>",
         "noNamespaceSchemaLocation"},
    };

    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        check_bad(TASK_FORMAT_XML, &rows[i], rows[i].doc);

    _cleanup_free_ char *deep = nested("<a>", "</a>", "x", 100);
    _cleanup_free_ char *doc = xasprintf("<task>%s</task>", deep);
    check_bad(TASK_FORMAT_XML, &(struct bad_row){"100 nested elements", NULL, "too deep"}, doc);
}

static void test_xml_forms(void)
{
    static const struct {
        const char *what, *doc, *want;
    } rows[] = {
        {"env as key attributes",
         "<task><env><entry key=\"GREETING\">hello</entry><entry key=\"E\"/></env></task>",
         "{\"env\": {\"GREETING\": \"hello\", \"E\": \"\"}}"},
        {"env as JAXB key/value pairs",
         "<task><env><entry><key>GREETING</key><value>hello</value></entry>"
         "<entry><key>E</key><value/></entry></env></task>",
         "{\"env\": {\"GREETING\": \"hello\", \"E\": \"\"}}"},
        {"tags in both forms, empty map",
         "<task><tags><entry key=\"a\">1</entry><entry><value>2</value><key>b</key></entry>"
         "</tags><env/></task>",
         "{\"tags\": {\"a\": \"1\", \"b\": \"2\"}, \"env\": {}}"},
        {"cmd as text", "<task><cmd>echo hi &amp;&amp; true</cmd></task>",
         "{\"cmd\": \"echo hi && true\"}"},
        {"cmd as <arg> list", "<task><cmd><arg>echo</arg><arg/><arg> hi </arg></cmd></task>",
         "{\"cmd\": [\"echo\", \"\", \" hi \"]}"},
        {"empty elements are empty strings", "<task><user/><name></name></task>",
         "{\"user\": \"\", \"name\": \"\"}"},
        {"namespaces, comments, CDATA ignored",
         "<t:task xmlns:t=\"urn:ocps\"><!-- c --><t:user>nobody</t:user>"
         "<?pi x?><name><![CDATA[a<b]]></name></t:task>",
         "{\"user\": \"nobody\", \"name\": \"a<b\"}"},
        {"a default namespace", "<task xmlns=\"urn:ocps:task\"><user>nobody</user></task>",
         "{\"user\": \"nobody\"}"},
        {"xsi:noNamespaceSchemaLocation (JobProxy's own files)",
         "<task xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
         "xsi:noNamespaceSchemaLocation=\"JobTask.xsd\"><user>nobody</user></task>",
         "{\"user\": \"nobody\"}"},
        {"xsi:schemaLocation under another prefix",
         "<task xmlns=\"urn:ocps:task\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" "
         "i:schemaLocation=\"urn:ocps:task task.xsd\"><user>nobody</user></task>",
         "{\"user\": \"nobody\"}"},
        {"one repeated port is still a list",
         "<task><container><image>i</image><ports><host>1</host><container>2</container>"
         "</ports></container></task>",
         "{\"container\": {\"image\": \"i\", \"ports\": [{\"host\": \"1\", \"container\": "
         "\"2\"}]}}"},
        /* JAXB's shape: the validator unwraps it, as it does for JSON and YAML. */
        {"ports in the wrapper form",
         "<task><container><ports><port><host>1</host><container>2</container></port>"
         "<port><host>3</host><container>4</container></port></ports></container></task>",
         "{\"container\": {\"ports\": [{\"port\": [{\"host\": \"1\", \"container\": \"2\"}, "
         "{\"host\": \"3\", \"container\": \"4\"}]}]}}"},
        {"wrappers repeated, an empty item",
         "<task><container><mounts><mount><host>/a</host></mount></mounts>"
         "<mounts><mount/></mounts></container></task>",
         "{\"container\": {\"mounts\": [{\"mount\": [{\"host\": \"/a\"}]}, {\"mount\": []}]}}"},
        {"a wrapper with a stray element beside the items",
         "<task><container><volumes><volume><host>/a</host></volume><mode>RO</mode>"
         "</volumes></container></task>",
         "{\"container\": {\"volumes\": [{\"volume\": [{\"host\": \"/a\"}], "
         "\"mode\": \"RO\"}]}}"},
        {"volumes as repeated elements, container cmd as args",
         "<task><container><cmd><arg>sh</arg></cmd><volumes><host>/a</host><container>/b"
         "</container></volumes><volumes><host>/c</host><container>/d</container>"
         "<mode>RW</mode></volumes></container></task>",
         "{\"container\": {\"cmd\": [\"sh\"], \"volumes\": [{\"host\": \"/a\", \"container\": "
         "\"/b\"}, {\"host\": \"/c\", \"container\": \"/d\", \"mode\": \"RW\"}]}}"},
        {"empty mounts wrapper", "<task><container><mounts/></container></task>",
         "{\"container\": {\"mounts\": []}}"},
        {"empty task", "<task/>", "{}"},
        {"pretty-printed with an encoding",
         "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<task>\n  <name>gr\xfc\xdf</name>\n"
         "</task>\n",
         "{\"name\": \"gr\\u00fc\\u00df\"}"},
    };

    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        check_tree(TASK_FORMAT_XML, rows[i].what, rows[i].doc, rows[i].want);

    /* The two entry forms and JSON agree once validated and normalised. */
    static const char *env_docs[] = {
        "{\"user\": \"nobody\", \"cmd\": \"true\", \"env\": {\"A\": \"1\"}, "
        "\"tags\": {\"t\": \"v\"}}",
        "<task><user>nobody</user><cmd>true</cmd><env><entry key=\"A\">1</entry></env>"
        "<tags><entry key=\"t\">v</entry></tags></task>",
        "<task><user>nobody</user><cmd>true</cmd><env><entry><key>A</key><value>1</value>"
        "</entry></env><tags><entry><key>t</key><value>v</value></entry></tags></task>",
    };
    _cleanup_json_ cJSON *first = NULL;
    for (size_t i = 0; i < ELEMENTSOF(env_docs); i++) {
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_json_ cJSON *tree = NULL;
        _cleanup_task_ struct task *t = NULL;
        enum task_format f = i == 0 ? TASK_FORMAT_JSON : TASK_FORMAT_XML;

        if (!ok(parse(f, env_docs[i], strlen(env_docs[i]), &tree, &err) == 0 &&
                    task_from_cjson(tree, NULL, &t, &err) == 0,
                "env/tags form %zu validates: %s", i, err.msg ? err.msg : "ok"))
            continue;
        cJSON *n = task_to_cjson(t);
        if (!first)
            first = n;
        else {
            ok(cJSON_Compare(first, n, true), "env/tags form %zu normalises like JSON", i);
            cJSON_Delete(n);
        }
    }
}

/*
 * JobProxy's shapes, each written in the three formats, validated and
 * normalised: its top-level cmd beside a container, JAXB's wrappers of
 * mounts, ports and volumes, numbers as strings, bare numbers; and the
 * rows that must fail, naming the field by its path (which, for the
 * XML forms, shows the array every repeatable element becomes).
 */
struct shape_row {
    const char *what;
    const char *doc[_TASK_FORMAT_MAX]; /* NULL: not written in that format */
    const char *want;     /* "{...}": the normalised task; else a part of the message */
    const char *xml_want; /* the XML form's message, when its path differs */
};

#define XC(inner) "<task><user>a</user><container><image>i</image>" inner "</container></task>"
#define JC(inner) "{\"user\": \"a\", \"container\": {\"image\": \"i\", " inner "}}"
#define YC(inner) "user: a\ncontainer:\n  image: i\n" inner
#define NC(inner) "{\"user\": \"a\", \"container\": {\"image\": \"i\", " inner "}}"
#define MOUNT_D   "\"host\": \"/d\", \"container\": \"/in\", \"mode\": \"RO\""
#define MOUNT_D_X "<host>/d</host><container>/in</container><mode>RO</mode>"
#define MOUNT_E   "\"host\": \"/e\", \"container\": \"/out\", \"mode\": \"RW\""
#define MOUNT_E_X "<host>/e</host><container>/out</container><mode>RW</mode>"

static const struct shape_row shape_rows[] = {
    {"top-level cmd runs in the container",
     {"{\"user\": \"a\", \"cmd\": \"echo hi\", \"container\": {\"image\": \"i\"}}",
      "user: a\ncmd: echo hi\ncontainer:\n  image: i\n",
      "<task><user>a</user><cmd>echo hi</cmd><container><image>i</image></container></task>"},
     NC("\"cmd\": \"echo hi\"")},
    {"top-level argument vector runs in the container",
     {"{\"user\": \"a\", \"container\": {\"image\": \"i\"}, \"cmd\": [\"sh\", \"-c\", \"true\"]}",
      "user: a\ncontainer: {image: i}\ncmd:\n  - sh\n  - -c\n  - 'true'\n",
      "<task><user>a</user><container><image>i</image></container>"
      "<cmd><arg>sh</arg><arg>-c</arg><arg>true</arg></cmd></task>"},
     NC("\"cmd\": [\"sh\", \"-c\", \"true\"]")},
    {"one mount in its wrapper",
     {JC("\"mounts\": {\"mount\": {" MOUNT_D "}}"),
      YC("  mounts:\n    mount: {host: /d, container: /in, mode: RO}\n"),
      XC("<mounts><mount>" MOUNT_D_X "</mount></mounts>")},
     NC("\"mounts\": [{" MOUNT_D "}]")},
    {"a list of mounts in one wrapper",
     {JC("\"mounts\": {\"mount\": [{" MOUNT_D "}, {" MOUNT_E "}]}"),
      YC("  mounts:\n    mount:\n      - {host: /d, container: /in, mode: RO}\n"
         "      - host: /e\n        container: /out\n"),
      XC("<mounts><mount>" MOUNT_D_X "</mount><mount>" MOUNT_E_X "</mount></mounts>")},
     NC("\"mounts\": [{" MOUNT_D "}, {" MOUNT_E "}]")},
    {"a list of wrapped mounts",
     {JC("\"mounts\": [{\"mount\": {" MOUNT_D "}}, {\"mount\": {" MOUNT_E "}}]"),
      YC("  mounts:\n    - mount: {host: /d, container: /in, mode: ro}\n"
         "    - mount: {host: /e, container: /out}\n"),
      XC("<mounts><mount>" MOUNT_D_X "</mount></mounts><mounts><mount>" MOUNT_E_X
         "</mount></mounts>")},
     NC("\"mounts\": [{" MOUNT_D "}, {" MOUNT_E "}]")},
    {"flat and wrapped mounts together",
     {JC("\"mounts\": [{" MOUNT_D "}, {\"mount\": [{" MOUNT_E "}]}]"),
      YC("  mounts:\n    - {host: /d, container: /in, mode: RO}\n"
         "    - mount: [{host: /e, container: /out}]\n"),
      XC("<mounts>" MOUNT_D_X "</mounts><mounts><mount>" MOUNT_E_X "</mount></mounts>")},
     NC("\"mounts\": [{" MOUNT_D "}, {" MOUNT_E "}]")},
    {"volumes in their wrapper",
     {JC("\"volumes\": {\"volume\": {" MOUNT_D "}}"),
      YC("  volumes:\n    volume:\n      host: /d\n      container: /in\n      mode: RO\n"),
      XC("<volumes><volume>" MOUNT_D_X "</volume></volumes>")},
     NC("\"mounts\": [{" MOUNT_D "}]")},
    {"one port in its wrapper, numbers as strings",
     {JC("\"ports\": {\"port\": {\"host\": \"8080\", \"container\": \"80\"}}"),
      YC("  ports:\n    port: {host: 8080, container: 80}\n"),
      XC("<ports><port><host>8080</host><container>80</container></port></ports>")},
     NC("\"ports\": [{\"host\": 8080, \"container\": 80}]")},
    {"a list of ports in one wrapper",
     {JC("\"ports\": {\"port\": [{\"host\": 8080, \"container\": 80}, {\"container\": 81}]}"),
      YC("  ports:\n    port:\n      - {host: 8080, container: 80}\n      - container: 81\n"),
      XC("<ports><port><host>8080</host><container>80</container></port>"
         "<port><container>81</container></port></ports>")},
     NC("\"ports\": [{\"host\": 8080, \"container\": 80}, {\"host\": 81, \"container\": 81}]")},
    {"a list of wrapped ports",
     {JC("\"ports\": [{\"port\": {\"host\": 8080, \"container\": 80}}, "
         "{\"port\": {\"host\": 8081, \"container\": 81}}]"),
      YC("  ports:\n    - port: {host: 8080, container: 80}\n"
         "    - port: {host: 8081, container: 81}\n"),
      XC("<ports><port><host>8080</host><container>80</container></port></ports>"
         "<ports><port><host>8081</host><container>81</container></port></ports>")},
     NC("\"ports\": [{\"host\": 8080, \"container\": 80}, {\"host\": 8081, \"container\": 81}]")},
    {"numbers as strings, bare in JobProxy's units",
     {"{\"user\": \"a\", \"cmd\": \"true\", \"cores\": \"1\", \"memory\": \"0.5\", "
      "\"cputime\": \"2\"}",
      "user: a\ncmd: 'true'\ncores: '1'\nmemory: '0.5'\ncputime: '2'\n",
      "<task><user>a</user><cmd>true</cmd><cores>1</cores><memory>0.5</memory>"
      "<cputime>2</cputime></task>"},
     "{\"user\": \"a\", \"cmd\": \"true\", \"cores\": 1, \"memory\": \"512M\", "
     "\"cputime\": \"7200s\"}"},

    {"cmd in both places",
     {"{\"user\": \"a\", \"cmd\": \"x\", \"container\": {\"image\": \"i\", \"cmd\": \"y\"}}",
      "user: a\ncmd: x\ncontainer: {image: i, cmd: y}\n",
      "<task><user>a</user><cmd>x</cmd><container><image>i</image><cmd>y</cmd></container>"
      "</task>"},
     "cmd: give the command in cmd or in container.cmd, not both"},
    {"a bad mount in its wrapper",
     {JC("\"mounts\": {\"mount\": {\"host\": \"rel\", \"container\": \"/a\"}}"),
      YC("  mounts:\n    mount: {host: rel, container: /a}\n"),
      XC("<mounts><mount><host>rel</host><container>/a</container></mount></mounts>")},
     "container.mounts.mount.host: must be an absolute path",
     "container.mounts[0].mount[0].host: must be an absolute path"},
    {"a bad port in a list of wrappers",
     {JC("\"ports\": [{\"port\": {\"container\": 80}}, {\"port\": {\"host\": \"0\", "
         "\"container\": 81}}]"),
      YC("  ports:\n    - port: {container: 80}\n    - port: {host: 0, container: 81}\n"),
      XC("<ports><port><container>80</container></port></ports>"
         "<ports><port><host>0</host><container>81</container></port></ports>")},
     "container.ports[1].port.host: must be an integer between 1 and 65535",
     "container.ports[1].port[0].host: must be an integer between 1 and 65535"},
    {"a field beside the wrapper",
     {JC("\"mounts\": {\"mount\": {" MOUNT_D "}, \"mode\": \"RO\"}"),
      YC("  mounts:\n    mount: {host: /d, container: /in}\n    mode: RO\n"),
      XC("<mounts><mount>" MOUNT_D_X "</mount><mode>RO</mode></mounts>")},
     "container.mounts.mode: unknown field beside \"mount\"",
     "container.mounts[0].mode: unknown field beside \"mount\""},
    {"a mount object without its wrapper",
     {JC("\"mounts\": {" MOUNT_D "}"), YC("  mounts: {host: /d, container: /in}\n"), NULL},
     "container.mounts: must be a list or {\"mount\": ...}, not an object"},
    {"the wrapper of another list",
     {JC("\"volumes\": [{\"mount\": {" MOUNT_D "}}]"),
      YC("  volumes:\n    - mount: {host: /d, container: /in}\n"),
      XC("<volumes><mount>" MOUNT_D_X "</mount></volumes>")},
     "container.volumes[0].mount: unknown field"},
    {"a bare memory number too large",
     {"{\"user\": \"a\", \"cmd\": \"true\", \"memory\": \"2000000\"}",
      "user: a\ncmd: 'true'\nmemory: 2000000\n",
      "<task><user>a</user><cmd>true</cmd><memory>2000000</memory></task>"},
     "memory: 2000000 was read as 1.9 PiB (a bare number is in GB, JobProxy's unit); write "
     "\"2000000M\" for megabytes; that is too large (at most 1 PiB)"},
};

static void test_shapes(void)
{
    for (size_t i = 0; i < ELEMENTSOF(shape_rows); i++) {
        const struct shape_row *row = &shape_rows[i];

        for (enum task_format f = 0; f < _TASK_FORMAT_MAX; f++) {
            _cleanup_error_ struct error err = ERROR_INIT;
            _cleanup_json_ cJSON *tree = NULL;
            _cleanup_json_ cJSON *n = NULL;
            _cleanup_task_ struct task *t = NULL;
            const char *want = f == TASK_FORMAT_XML && row->xml_want ? row->xml_want : row->want;

            if (!row->doc[f] || (f == TASK_FORMAT_XML && !xml_built))
                continue;
            int r = parse(f, row->doc[f], strlen(row->doc[f]), &tree, &err);
            if (r == 0)
                r = task_from_cjson(tree, NULL, &t, &err);
            if (want[0] != '{') {
                ok(r == -EINVAL && !t && strstr(error_message(&err), want),
                   "%s: %s: \"%s\" (got %d \"%s\")", format_names[f], row->what, want, r,
                   r < 0 ? error_message(&err) : "");
                continue;
            }
            _cleanup_json_ cJSON *expect = cJSON_Parse(want);
            n = r == 0 ? task_to_cjson(t) : NULL;
            if (!ok(n && expect && cJSON_Compare(n, expect, true), "%s: %s", format_names[f],
                    row->what)) {
                diag("error: %s", r < 0 ? error_message(&err) : "none");
                diag_json("got", n);
                diag("want: %s", want);
            }
        }
    }
}

/* A NUL written in a string, and bytes that are not UTF-8, fail in every
 * format, never read as a string cut short or as other characters: cJSON
 * decoded "a\u0000b" into "a" and took any byte. */
static void test_text_faults(void)
{
    static const struct {
        const char *what;
        const char *doc[_TASK_FORMAT_MAX]; /* NULL: no such document in that format */
        const char *needle[_TASK_FORMAT_MAX];
    } rows[] = {
        {"a NUL escape in a string",
         {"{\"user\": \"nobody\", \"cmd\": \"a\\u0000b\"}", "user: nobody\ncmd: \"a\\0b\"\n",
          "<task><user>nobody</user><cmd>a&#0;b</cmd></task>"},
         {"line 1, column 29: a NUL character", "NUL character in scalar at line 2", NULL}},
        {"a NUL escape written otherwise",
         {"[\"\\u0000\"]", "cmd: \"a\\x00b\"\n", "<task><cmd>a&#x0;b</cmd></task>"},
         {"NUL", "NUL", NULL}},
        {"a NUL escape in YAML's long form",
         {NULL, "cmd: \"a\\u0000b\"\n", NULL},
         {NULL, "NUL", NULL}},
        {"a NUL escape in a key",
         {"{\"us\\u0000er\": \"nobody\"}", "\"us\\0er\": nobody\n", NULL},
         {"NUL", "NUL character in key", NULL}},
        {"a raw NUL byte",
         {"{\"user\": \"a\0b\"}", "user: \"a\0b\"\n", "<task><user>a\0b</user></task>"},
         {"NUL", NULL, NULL}},
        {"a lone continuation byte",
         {"{\"user\": \"a\x80\"}", "user: a\x80\n", "<task><user>a\x80</user></task>"},
         {"line 1, column 12: byte 0x80 is not UTF-8", "UTF-8", NULL}},
        {"an overlong '/'",
         {"{\"user\": \"\xc0\xaf\"}", "user: \"\xc0\xaf\"\n", "<task><user>\xc0\xaf</user></task>"},
         {"byte 0xc0 is not UTF-8", "UTF-8", NULL}},
        {"an overlong three-byte form",
         {"{\"user\": \"\xe0\x80\xaf\"}", "user: \"\xe0\x80\xaf\"\n",
          "<task><user>\xe0\x80\xaf</user></task>"},
         {"byte 0xe0 is not UTF-8", "UTF-8", NULL}},
        {"a UTF-16 surrogate in UTF-8",
         {"{\"user\": \"\xed\xa0\x80\"}", "user: \"\xed\xa0\x80\"\n",
          "<task><user>\xed\xa0\x80</user></task>"},
         {"byte 0xed is not UTF-8", NULL, NULL}},
        {"a code point past U+10FFFF",
         {"{\"user\": \"\xf4\x90\x80\x80\"}", "user: \"\xf4\x90\x80\x80\"\n",
          "<task><user>\xf4\x90\x80\x80</user></task>"},
         {"byte 0xf4 is not UTF-8", NULL, NULL}},
        {"a sequence cut short",
         {"{\"user\": \"\xe2\x82\"}", "user: \"\xe2\x82\"\n", "<task><user>\xe2\x82</user></task>"},
         {"byte 0xe2 is not UTF-8", NULL, NULL}},
        {"a Latin-1 byte in a key",
         {"{\"us\xe9r\": \"nobody\"}", "us\xe9r: nobody\n", "<task><us\xe9r>x</us\xe9r></task>"},
         {"column 5: byte 0xe9", NULL, NULL}},
        {"an escaped lone surrogate",
         {"{\"user\": \"\\ud800\"}", "user: \"\\ud800\"\n", "<task><user>&#xD800;</user></task>"},
         {NULL, NULL, NULL}},
    };

    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        for (enum task_format f = 0; f < _TASK_FORMAT_MAX; f++) {
            const char *doc = rows[i].doc[f];
            if (!doc || (f == TASK_FORMAT_XML && !xml_built))
                continue;
            /* The raw NUL rows hold a NUL: their length is the literal's. */
            size_t len = strlen(doc);
            if (strstr(rows[i].what, "raw NUL"))
                len += 1 + strlen(doc + len + 1);
            _cleanup_error_ struct error err = ERROR_INIT;
            _cleanup_json_ cJSON *tree = NULL;
            int r = parse(f, doc, len, &tree, &err);
            const char *needle = rows[i].needle[f];
            ok(r == -EBADMSG && !tree && err.msg && (!needle || strstr(err.msg, needle)),
               "%s: %s -> -EBADMSG%s%s (%s)", format_names[f], rows[i].what,
               needle ? " naming " : "", needle ? needle : "", err.msg ? err.msg : "accepted");
        }

    /* UTF-8 itself is welcome, escaped or not, in every format. */
    static const char *const good[_TASK_FORMAT_MAX] = {
        "{\"name\": \"gr\xc3\xbc\xc3\x9f \xf0\x9f\x90\xa7 \\u00e9 \\ud83d\\udc27 \\\\u0000\"}",
        "name: \"gr\xc3\xbc\xc3\x9f \xf0\x9f\x90\xa7 \\u00e9 \\U0001F427 \\\\u0000\"\n",
        "<task><name>gr\xc3\xbc\xc3\x9f \xf0\x9f\x90\xa7 &#xe9; &#x1F427; \\u0000</name></task>",
    };
    for (enum task_format f = 0; f < _TASK_FORMAT_MAX; f++) {
        if (f == TASK_FORMAT_XML && !xml_built)
            continue;
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_json_ cJSON *tree = NULL;
        int r = parse(f, good[f], strlen(good[f]), &tree, &err);
        const cJSON *name = r == 0 ? cJSON_GetObjectItemCaseSensitive(tree, "name") : NULL;
        ok(cJSON_IsString(name) &&
               streq(name->valuestring, "gr\xc3\xbc\xc3\x9f \xf0\x9f\x90\xa7 \xc3\xa9 "
                                        "\xf0\x9f\x90\xa7 \\u0000"),
           "%s: UTF-8 raw and escaped, and an escaped backslash before u0000, are read whole (%s)",
           format_names[f], r < 0 ? error_message(&err) : "ok");
    }
}

/* Every prefix of a good document either parses (and then validates or
 * not) or fails with -EBADMSG and words; nothing crashes or leaks. */
static void test_truncation(const char *name, enum task_format f)
{
    _cleanup_free_ char *buf = NULL;
    size_t len, parsed = 0, failed = 0, bad = 0;

    if (!ok(read_fixture(name, f, &buf, &len) == 0, "%s.%s: read", name, format_names[f]))
        return;
    for (size_t n = 0; n <= len; n++) {
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_json_ cJSON *tree = NULL;
        /* A private copy of exactly n bytes, so reading past it is caught
         * by the sanitizers. */
        _cleanup_free_ char *copy = xmalloc(n ? n : 1);
        memcpy(copy, buf, n);
        int r = parse(f, copy, n, &tree, &err);
        if (r < 0) {
            failed++;
            if (r != -EBADMSG || !err.msg || tree)
                bad++;
            continue;
        }
        parsed++;
        _cleanup_task_ struct task *t = NULL;
        r = task_from_cjson(tree, NULL, &t, &err);
        if (r < 0 ? !err.msg : !t)
            bad++;
    }
    ok(bad == 0 && failed > 0, "%s.%s: %zu prefixes: %zu parse, %zu fail with -EBADMSG", name,
       format_names[f], len + 1, parsed, failed);
}

int main(void)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    cJSON *probe = NULL;

    xml_built = task_xml_parse("<task/>", 7, &probe, &err) != -EMEDIUMTYPE;
    cJSON_Delete(probe);
    if (!xml_built)
        diag("XML support not built in: %s", error_message(&err));
    ok(xml_built || (err.code == -EMEDIUMTYPE && err.msg),
       "task_xml_parse answers -EMEDIUMTYPE when XML is not built in");

    test_equivalence();
    test_shapes();
    test_yaml_errors();
    test_yaml_values();
    test_text_faults();
    test_truncation("full", TASK_FORMAT_YAML);
    test_truncation("container-full", TASK_FORMAT_YAML);
    test_truncation("jobproxy-container", TASK_FORMAT_YAML);
    if (xml_built) {
        test_xml_errors();
        test_xml_forms();
        test_truncation("full", TASK_FORMAT_XML);
        test_truncation("container-full", TASK_FORMAT_XML);
        test_truncation("jobproxy-container", TASK_FORMAT_XML);
    }
    return tap_done();
}
