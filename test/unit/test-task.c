/*
 * Unit tests: the task validator (task_from_cjson), table-driven. Each row
 * is a JSON document (written with ' for " to stay readable), the expected
 * return, and either the normalised form (task_to_cjson) it must produce or
 * a substring of the error message, which names the field by its path.
 * Every accepted row is also normalised -> revalidated -> normalised again
 * (same tree) and copied (same tree). Then the struct's fields, the string
 * tables and the unit of bare numbers; the parsers' strictness and the size
 * limits are in test-task-limits.c.
 */
#include "tap.h"
#include "task-test.h"
#include "task.h"

#include <inttypes.h>

struct row {
    const char *json;
    int ret;          /* 0 or -EINVAL */
    const char *want; /* ret 0: the normalised form (NULL: not checked); else a message substring */
};

#define U "'user':'alice'"
#define C "'cmd':'true'"
/* A minimal valid task with more fields, and its normal form with more fields. */
#define T(...) "{" U "," C "," __VA_ARGS__ "}"
#define N(...) "{" U "," C "," __VA_ARGS__ "}"
/* The same around a container. */
#define CT(...) "{" U ",'container':{'image':'alpine'," __VA_ARGS__ "}}"
#define CN(...) "{" U ",'container':{'image':'alpine'," __VA_ARGS__ "}}"

static const struct row rows[] = {
    /* ---- the minimum, the root ---- */
    {"{" U "," C "}", 0, "{" U "," C "}"},
    {"[]", -EINVAL, "task: must be an object, not a list"},
    {"1", -EINVAL, "task: must be an object, not a number"},
    {"'x'", -EINVAL, "task: must be an object, not a string"},
    {"null", -EINVAL, "task: must be an object, not null"},
    {"true", -EINVAL, "task: must be an object, not a boolean"},
    {"{}", -EINVAL, "user: is required"},
    {T("'foo':1"), -EINVAL, "foo: unknown field"},
    {T("'User':'bob'"), -EINVAL, "User: unknown field"},
    {T("'mounts':[]"), -EINVAL, "mounts: unknown field"},

    /* ---- user ---- */
    {"{" C "}", -EINVAL, "user: is required"},
    {"{'user':null," C "}", -EINVAL, "user: is required"},
    {"{'user':''," C "}", -EINVAL, "user: must not be empty"},
    {"{'user':5," C "}", -EINVAL, "user: must be a string, not a number"},
    {"{'user':['a']," C "}", -EINVAL, "user: must be a string, not a list"},
    {"{'user':'a b'," C "}", -EINVAL, "user: is not a valid user name"},
    {"{'user':'-x'," C "}", -EINVAL, "user: is not a valid user name"},
    {"{'user':'..'," C "}", -EINVAL, "user: is not a valid user name"},
    {"{'user':'.'," C "}", -EINVAL, "user: is not a valid user name"},
    {"{'user':'a/b'," C "}", -EINVAL, "user: is not a valid user name"},
    {"{'user':'a$b'," C "}", -EINVAL, "user: is not a valid user name"},
    {"{'user':'a:b'," C "}", -EINVAL, "user: is not a valid user name"},
    {"{'user':'abcdefghijklmnopqrstuvwxyz0123456'," C "}", -EINVAL,
     "user: is too long (33 bytes, at most 32)"},
    {"{'user':'abcdefghijklmnopqrstuvwxyz012345'," C "}", 0,
     "{'user':'abcdefghijklmnopqrstuvwxyz012345'," C "}"},
    {"{'user':'Bob.x_y-1$'," C "}", 0, "{'user':'Bob.x_y-1$'," C "}"},

    /* ---- name ---- */
    {T("'name':'job 1'"), 0, N("'name':'job 1'")},
    {T("'name':''"), 0, N("'name':''")},
    {T("'name':null"), 0, "{" U "," C "}"},
    {T("'name':1"), -EINVAL, "name: must be a string, not a number"},

    /* ---- cmd ---- */
    {"{" U ",'cmd':'echo hi; exit 3'}", 0, "{" U ",'cmd':'echo hi; exit 3'}"},
    {"{" U ",'cmd':['/bin/echo','hi','']}", 0, "{" U ",'cmd':['/bin/echo','hi','']}"},
    {"{" U ",'cmd':['true']}", 0, "{" U ",'cmd':['true']}"},
    {"{" U ",'cmd':''}", -EINVAL, "cmd: must not be empty"},
    {"{" U ",'cmd':[]}", -EINVAL, "cmd: must not be empty"},
    {"{" U ",'cmd':['']}", -EINVAL, "cmd[0]: must not be empty"},
    {"{" U ",'cmd':['a',1]}", -EINVAL, "cmd[1]: must be a string, not a number"},
    {"{" U ",'cmd':['a','b',null]}", -EINVAL, "cmd[2]: must be a string, not null"},
    {"{" U ",'cmd':5}", -EINVAL, "cmd: must be a string or a list of strings, not a number"},
    {"{" U ",'cmd':{}}", -EINVAL, "cmd: must be a string or a list of strings, not an object"},
    {"{" U ",'cmd':true}", -EINVAL, "cmd: must be a string or a list of strings, not a boolean"},
    {"{" U "}", -EINVAL, "cmd: one of cmd or container is required"},
    {"{" U ",'cmd':null}", -EINVAL, "cmd: one of cmd or container is required"},
    /* JobProxy's form: a top-level cmd runs in the container that has none. */
    {"{" U ",'cmd':'x','container':{'image':'alpine'}}", 0,
     "{" U ",'container':{'image':'alpine','cmd':'x'}}"},
    {"{" U ",'container':{'image':'alpine'},'cmd':['a','b']}", 0,
     "{" U ",'container':{'image':'alpine','cmd':['a','b']}}"},
    {"{" U ",'cmd':'x','container':{'image':'alpine','cmd':null}}", 0,
     "{" U ",'container':{'image':'alpine','cmd':'x'}}"},
    {"{" U ",'cmd':'x','container':{'image':'alpine','cmd':'y'}}", -EINVAL,
     "cmd: give the command in cmd or in container.cmd, not both"},
    {"{" U ",'cmd':'','container':{'image':'alpine'}}", -EINVAL, "cmd: must not be empty"},
    {"{" U ",'cmd':'x','container':{}}", -EINVAL, "container.image: is required"},
    {"{" U ",'cmd':null,'container':{'image':'alpine'}}", 0,
     "{" U ",'container':{'image':'alpine'}}"},
    {"{" U ",'cmd':'true','container':null}", 0, "{" U "," C "}"},

    /* ---- container ---- */
    {"{" U ",'container':{'image':'alpine'}}", 0, "{" U ",'container':{'image':'alpine'}}"},
    {"{" U ",'container':{'image':'docker.io/library/alpine:3.19@sha256:abc'}}", 0,
     "{" U ",'container':{'image':'docker.io/library/alpine:3.19@sha256:abc'}}"},
    {"{" U ",'container':{}}", -EINVAL, "container.image: is required"},
    {"{" U ",'container':{'image':null}}", -EINVAL, "container.image: is required"},
    {"{" U ",'container':{'cmd':'x'}}", -EINVAL, "container.image: is required"},
    {"{" U ",'container':'alpine'}", -EINVAL, "container: must be an object, not a string"},
    {"{" U ",'container':[]}", -EINVAL, "container: must be an object, not a list"},
    {"{" U ",'container':{'image':''}}", -EINVAL, "container.image: must not be empty"},
    {"{" U ",'container':{'image':5}}", -EINVAL, "container.image: must be a string, not a number"},
    {"{" U ",'container':{'image':'alp ine'}}", -EINVAL,
     "container.image: must not contain white space"},
    {"{" U ",'container':{'image':'alpine\\t'}}", -EINVAL,
     "container.image: must not contain white space"},
    {"{" U ",'container':{'image':'alpine\\n'}}", -EINVAL,
     "container.image: must not contain white space"},
    {CT("'foo':1"), -EINVAL, "container.foo: unknown field"},
    /* container.cmd */
    {CT("'cmd':['sh','-c','exit 0']"), 0, CN("'cmd':['sh','-c','exit 0']")},
    {CT("'cmd':'sleep 1'"), 0, CN("'cmd':'sleep 1'")},
    {CT("'cmd':null"), 0, "{" U ",'container':{'image':'alpine'}}"},
    {CT("'cmd':''"), -EINVAL, "container.cmd: must not be empty"},
    {CT("'cmd':[]"), -EINVAL, "container.cmd: must not be empty"},
    {CT("'cmd':[1]"), -EINVAL, "container.cmd[0]: must be a string, not a number"},
    {CT("'cmd':['a','b',false]"), -EINVAL, "container.cmd[2]: must be a string, not a boolean"},
    {CT("'cmd':{}"), -EINVAL, "container.cmd: must be a string or a list of strings"},

    /* ---- container.ports ---- */
    {CT("'ports':[{'host':8080,'container':80}]"), 0, CN("'ports':[{'host':8080,'container':80}]")},
    {CT("'ports':[{'container':80}]"), 0, CN("'ports':[{'host':80,'container':80}]")},
    {CT("'ports':[{'host':null,'container':80}]"), 0, CN("'ports':[{'host':80,'container':80}]")},
    {CT("'ports':[{'host':'8080','container':'80'}]"), 0,
     CN("'ports':[{'host':8080,'container':80}]")},
    {CT("'ports':[{'host':1,'container':65535},{'host':65535,'container':1}]"), 0,
     CN("'ports':[{'host':1,'container':65535},{'host':65535,'container':1}]")},
    {CT("'ports':[{'host':81,'container':80},{'host':82,'container':80}]"), 0,
     CN("'ports':[{'host':81,'container':80},{'host':82,'container':80}]")},
    {CT("'ports':[]"), 0, "{" U ",'container':{'image':'alpine'}}"},
    {CT("'ports':[{'host':0,'container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':65536,'container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':80,'container':0}]"), -EINVAL,
     "container.ports[0].container: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':80,'container':65536}]"), -EINVAL,
     "container.ports[0].container: must be an integer between 1 and 65535"},
    {CT("'ports':[{'container':80},{'host':0,'container':81}]"), -EINVAL,
     "container.ports[1].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':'x','container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':'80x','container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':'','container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':' 80','container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':-1,'container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':80.5,'container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':true,'container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':'99999999999999999999999','container':80}]"), -EINVAL,
     "container.ports[0].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'host':80,'container':80},{'host':80,'container':81}]"), -EINVAL,
     "container.ports[1].host: port 80 is published twice"},
    {CT("'ports':[{'container':80},{'host':80,'container':90}]"), -EINVAL,
     "container.ports[1].host: port 80 is published twice"},
    {CT("'ports':[{'host':80}]"), -EINVAL, "container.ports[0].container: is required"},
    {CT("'ports':[{'host':80,'container':null}]"), -EINVAL,
     "container.ports[0].container: is required"},
    {CT("'ports':[{'container':80},{'host':81}]"), -EINVAL,
     "container.ports[1].container: is required"},
    {CT("'ports':[{'container':80,'proto':'tcp'}]"), -EINVAL,
     "container.ports[0].proto: unknown field"},
    {CT("'ports':{}"), -EINVAL,
     "container.ports: must be a list or {\"port\": ...}, not an object"},
    {CT("'ports':80"), -EINVAL, "container.ports: must be a list or {\"port\": ...}, not a number"},
    /* JAXB's shapes of JobProxy's XML: {port: item}, {port: [items]}, [{port: item}]. */
    {CT("'ports':{'port':{'host':8080,'container':80}}"), 0,
     CN("'ports':[{'host':8080,'container':80}]")},
    {CT("'ports':{'port':[{'host':'8080','container':'80'},{'container':81}]}"), 0,
     CN("'ports':[{'host':8080,'container':80},{'host':81,'container':81}]")},
    {CT("'ports':[{'port':{'host':8080,'container':80}},{'host':8081,'container':81}]"), 0,
     CN("'ports':[{'host':8080,'container':80},{'host':8081,'container':81}]")},
    {CT("'ports':[{'port':[{'container':80},{'container':81}]},{'port':{'container':82}}]"), 0,
     CN("'ports':[{'host':80,'container':80},{'host':81,'container':81},"
        "{'host':82,'container':82}]")},
    {CT("'ports':{'port':null}"), 0, "{" U ",'container':{'image':'alpine'}}"},
    {CT("'ports':{'port':[]}"), 0, "{" U ",'container':{'image':'alpine'}}"},
    {CT("'ports':{'port':{'host':0,'container':80}}"), -EINVAL,
     "container.ports.port.host: must be an integer between 1 and 65535"},
    {CT("'ports':{'port':[{'container':80},{'host':'x','container':81}]}"), -EINVAL,
     "container.ports.port[1].host: must be an integer between 1 and 65535"},
    {CT("'ports':[{'container':80},{'port':{'container':80}}]"), -EINVAL,
     "container.ports[1].port.host: port 80 is published twice"},
    {CT("'ports':[{'port':{'container':80,'proto':'tcp'}}]"), -EINVAL,
     "container.ports[0].port.proto: unknown field"},
    {CT("'ports':{'port':{'container':80},'host':1}"), -EINVAL,
     "container.ports.host: unknown field beside \"port\""},
    {CT("'ports':{'port':80}"), -EINVAL,
     "container.ports.port: must be an object {host, container}, not a number"},
    {CT("'ports':{'port':{'port':{'container':80}}}"), -EINVAL,
     "container.ports.port.port: unknown field"},
    {CT("'ports':{'mount':{'container':80}}"), -EINVAL,
     "container.ports: must be a list or {\"port\": ...}, not an object"},
    {CT("'ports':[80]"), -EINVAL,
     "container.ports[0]: must be an object {host, container}, not a number"},

    /* ---- container.mounts / volumes ---- */
    {CT("'mounts':[{'host':'/data','container':'/data'}]"), 0,
     CN("'mounts':[{'host':'/data','container':'/data','mode':'RW'}]")},
    {CT("'volumes':[{'host':'/data','container':'/in','mode':'RO'}]"), 0,
     CN("'mounts':[{'host':'/data','container':'/in','mode':'RO'}]")},
    {CT("'mounts':[{'host':'/a','container':'/a','mode':'ro'},"
        "{'host':'/b','container':'/b','mode':'rw'},{'host':'/c','container':'/c','mode':'Rw'}]"),
     0,
     CN("'mounts':[{'host':'/a','container':'/a','mode':'RO'},"
        "{'host':'/b','container':'/b','mode':'RW'},{'host':'/c','container':'/c','mode':'RW'}]")},
    {CT("'mounts':[{'host':'/a','container':'/a','mode':null}]"), 0,
     CN("'mounts':[{'host':'/a','container':'/a','mode':'RW'}]")},
    {CT("'mounts':[{'host':'/a..b','container':'/a/..b/c..'}]"), 0,
     CN("'mounts':[{'host':'/a..b','container':'/a/..b/c..','mode':'RW'}]")},
    {CT("'mounts':[{'host':'/x','container':'/x'},{'host':'/x','container':'/y'}]"), 0,
     CN("'mounts':[{'host':'/x','container':'/x','mode':'RW'},"
        "{'host':'/x','container':'/y','mode':'RW'}]")},
    {CT("'volumes':[]"), 0, "{" U ",'container':{'image':'alpine'}}"},
    {CT("'mounts':[],'volumes':[]"), -EINVAL,
     "container.volumes: give either mounts or volumes, not both"},
    {CT("'volumes':[{'host':'/a','container':'/a'}],'mounts':[{'host':'/b','container':'/b'}]"),
     -EINVAL, "container.mounts: give either mounts or volumes, not both"},
    {CT("'mounts':[{'host':'/a','container':'/a','mode':'bad'}]"), -EINVAL,
     "container.mounts[0].mode: must be RW or RO"},
    {CT("'mounts':[{'host':'/a','container':'/a','mode':''}]"), -EINVAL,
     "container.mounts[0].mode: must be RW or RO"},
    {CT("'mounts':[{'host':'/a','container':'/a','mode':1}]"), -EINVAL,
     "container.mounts[0].mode: must be RW or RO"},
    {CT("'mounts':[{'host':'data','container':'/a'}]"), -EINVAL,
     "container.mounts[0].host: must be an absolute path"},
    {CT("'mounts':[{'host':'/a','container':'a'}]"), -EINVAL,
     "container.mounts[0].container: must be an absolute path"},
    {CT("'mounts':[{'host':'/a/../etc','container':'/a'}]"), -EINVAL,
     "container.mounts[0].host: must not contain \"..\""},
    {CT("'mounts':[{'host':'/a','container':'/a/..'}]"), -EINVAL,
     "container.mounts[0].container: must not contain \"..\""},
    {CT("'mounts':[{'host':'/..','container':'/a'}]"), -EINVAL,
     "container.mounts[0].host: must not contain \"..\""},
    {CT("'mounts':[{'host':'','container':'/a'}]"), -EINVAL,
     "container.mounts[0].host: must not be empty"},
    {CT("'mounts':[{'host':5,'container':'/a'}]"), -EINVAL,
     "container.mounts[0].host: must be a string, not a number"},
    {CT("'mounts':[{'container':'/a'}]"), -EINVAL, "container.mounts[0].host: is required"},
    {CT("'mounts':[{'host':'/a'}]"), -EINVAL, "container.mounts[0].container: is required"},
    {CT("'mounts':[{'host':'/a','container':'/a'},{'host':'/b','container':'/a'}]"), -EINVAL,
     "container.mounts[1].container: /a is mounted twice"},
    {CT("'mounts':[{'host':'/a','container':'/a'},{'host':'/b','container':'/b','ro':true}]"),
     -EINVAL, "container.mounts[1].ro: unknown field"},
    {CT("'volumes':[{'host':'/a','container':'/a'},{'host':'/b'}]"), -EINVAL,
     "container.volumes[1].container: is required"},
    {CT("'mounts':{}"), -EINVAL,
     "container.mounts: must be a list or {\"mount\": ...}, not an object"},
    /* JAXB's shapes of JobProxy's XML, as its own test task sends them. */
    {CT("'mounts':{'mount':{'container':'/in','host':'/data','mode':'RO'}}"), 0,
     CN("'mounts':[{'host':'/data','container':'/in','mode':'RO'}]")},
    {CT("'mounts':{'mount':[{'host':'/a','container':'/a'},{'host':'/b','container':'/b'}]}"), 0,
     CN("'mounts':[{'host':'/a','container':'/a','mode':'RW'},"
        "{'host':'/b','container':'/b','mode':'RW'}]")},
    {CT("'mounts':[{'mount':{'host':'/a','container':'/a'}},{'mount':{'host':'/b','container':'/"
        "b','mode':'ro'}}]"),
     0,
     CN("'mounts':[{'host':'/a','container':'/a','mode':'RW'},"
        "{'host':'/b','container':'/b','mode':'RO'}]")},
    {CT("'volumes':{'volume':{'host':'/a','container':'/a'}}"), 0,
     CN("'mounts':[{'host':'/a','container':'/a','mode':'RW'}]")},
    {CT("'volumes':[{'volume':[{'host':'/a','container':'/a'}]},{'host':'/b','container':'/b'}]"),
     0,
     CN("'mounts':[{'host':'/a','container':'/a','mode':'RW'},"
        "{'host':'/b','container':'/b','mode':'RW'}]")},
    {CT("'mounts':{'mount':{'host':'rel','container':'/a'}}"), -EINVAL,
     "container.mounts.mount.host: must be an absolute path"},
    {CT("'mounts':[{'mount':{'host':'/a','container':'/a'}},{'mount':{'host':'/b'}}]"), -EINVAL,
     "container.mounts[1].mount.container: is required"},
    {CT("'mounts':{'mount':[{'host':'/a','container':'/a'},{'host':'/b','container':'/a'}]}"),
     -EINVAL, "container.mounts.mount[1].container: /a is mounted twice"},
    {CT("'mounts':[{'mount':{'host':'/a','container':'/a'},'mode':'RO'}]"), -EINVAL,
     "container.mounts[0].mode: unknown field beside \"mount\""},
    {CT("'mounts':{'mount':'/a:/a'}"), -EINVAL,
     "container.mounts.mount: must be an object {host, container, mode}, not a string"},
    {CT("'mounts':{'volume':{'host':'/a','container':'/a'}}"), -EINVAL,
     "container.mounts: must be a list or {\"mount\": ...}, not an object"},
    {CT("'volumes':[{'mount':{'host':'/a','container':'/a'}}]"), -EINVAL,
     "container.volumes[0].mount: unknown field"},
    {CT("'volumes':['/a:/a']"), -EINVAL,
     "container.volumes[0]: must be an object {host, container, mode}, not a string"},

    /* ---- cores ---- */
    {T("'cores':2"), 0, N("'cores':2")},
    {T("'cores':0.5"), 0, N("'cores':0.5")},
    {T("'cores':'2'"), 0, N("'cores':2")},
    {T("'cores':'0.25'"), 0, N("'cores':0.25")},
    {T("'cores':'.5'"), 0, N("'cores':0.5")},
    {T("'cores':0.01"), 0, N("'cores':0.01")},
    {T("'cores':1024"), 0, N("'cores':1024")},
    {T("'cores':null"), 0, "{" U "," C "}"},
    {T("'cores':0"), -EINVAL, "cores: must be more than 0 and at most 1024"},
    {T("'cores':'0'"), -EINVAL, "cores: must be more than 0 and at most 1024"},
    {T("'cores':-1"), -EINVAL, "cores: must not be negative"},
    {T("'cores':'-1'"), -EINVAL, "cores: must be a number of CPUs such as 2 or 0.5"},
    {T("'cores':2000"), -EINVAL, "cores: must be more than 0 and at most 1024"},
    {T("'cores':1024.5"), -EINVAL, "cores: must be more than 0 and at most 1024"},
    {T("'cores':'abc'"), -EINVAL, "cores: must be a number of CPUs such as 2 or 0.5"},
    {T("'cores':'2x'"), -EINVAL, "cores: must be a number of CPUs such as 2 or 0.5"},
    {T("'cores':''"), -EINVAL, "cores: must be a number of CPUs such as 2 or 0.5"},
    {T("'cores':'nan'"), -EINVAL, "cores: must be a number of CPUs such as 2 or 0.5"},
    {T("'cores':'inf'"), -EINVAL, "cores: must be a number of CPUs such as 2 or 0.5"},
    {T("'cores':0.001"), -EINVAL, "cores: must be at least 0.01"},
    {T("'cores':true"), -EINVAL, "cores: must be a number or a string, not a boolean"},
    {T("'cores':[2]"), -EINVAL, "cores: must be a number or a string, not a list"},

    /* ---- memory: a bare number is GiB ---- */
    {T("'memory':1"), 0, N("'memory':'1G'")},
    {T("'memory':0.5"), 0, N("'memory':'512M'")},
    {T("'memory':'0.5'"), 0, N("'memory':'512M'")},
    {T("'memory':'2'"), 0, N("'memory':'2G'")},
    {T("'memory':'64M'"), 0, N("'memory':'64M'")},
    {T("'memory':'4M'"), 0, N("'memory':'4M'")},
    {T("'memory':'4096K'"), 0, N("'memory':'4M'")},
    {T("'memory':'1.5G'"), 0, N("'memory':'1536M'")},
    {T("'memory':'2GiB'"), 0, N("'memory':'2G'")},
    {T("'memory':'256 MB'"), 0, N("'memory':'256M'")},
    {T("'memory':'1P'"), 0, N("'memory':'1P'")},
    {T("'memory':'5000001B'"), 0, N("'memory':'5000001B'")},
    /* TODO(units.c): task.h lists "512Mi" among the accepted memory spellings. */
    {T("'memory':'512Mi'"), 0, N("'memory':'512M'")},
    {T("'memory':null"), 0, "{" U "," C "}"},
    {T("'memory':'3M'"), -EINVAL, "memory: 3 MiB is too small (at least 4 MiB)"},
    {T("'memory':'4194303B'"), -EINVAL, "memory: 3.9 MiB is too small (at least 4 MiB)"},
    {T("'memory':0"), -EINVAL, "memory: 0 bytes is too small (at least 4 MiB)"},
    {T("'memory':'2P'"), -EINVAL, "memory: is too large (at most 1 PiB)"},
    {T("'memory':'99999999999P'"), -EINVAL, "memory: is too large (at most 1 PiB)"},
    /* A bare number's refusal says how it was read and how to write it otherwise. */
    {T("'memory':1048577"), -EINVAL,
     "memory: 1048577 was read as 1.0 PiB (a bare number is in GB, JobProxy's unit); write "
     "\"1048577M\" for megabytes; that is too large (at most 1 PiB)"},
    {T("'memory':'0.001'"), -EINVAL,
     "memory: 0.001 was read as 1.0 MiB (a bare number is in GB, JobProxy's unit); write "
     "\"0.001M\" for megabytes; that is too small (at least 4 MiB)"},
    {T("'memory':'abc'"), -EINVAL,
     "memory: must be a size such as \"256M\" or \"1.5G\" (a bare number is in GB, JobProxy's "
     "unit)"},
    {T("'memory':'12X'"), -EINVAL, "memory: must be a size such as"},
    {T("'memory':''"), -EINVAL, "memory: must be a size such as"},
    {T("'memory':-1"), -EINVAL, "memory: must not be negative"},
    {T("'memory':true"), -EINVAL, "memory: must be a number or a string, not a boolean"},
    {T("'memory':{}"), -EINVAL, "memory: must be a number or a string, not an object"},

    /* ---- cputime, walltime: a bare number is hours ---- */
    {T("'cputime':1"), 0, N("'cputime':'3600s'")},
    {T("'cputime':0.5"), 0, N("'cputime':'1800s'")},
    {T("'cputime':'2'"), 0, N("'cputime':'7200s'")},
    {T("'cputime':'90s'"), 0, N("'cputime':'90s'")},
    {T("'cputime':'1.5m'"), 0, N("'cputime':'90s'")},
    {T("'cputime':'0.1s'"), 0, N("'cputime':'1s'")},
    {T("'cputime':'1h30m'"), 0, N("'cputime':'5400s'")},
    {T("'cputime':'1:30:00'"), 0, N("'cputime':'5400s'")},
    {T("'cputime':'2-00:00:00'"), 0, N("'cputime':'172800s'")},
    {T("'cputime':'366d'"), 0, N("'cputime':'31622400s'")},
    {T("'cputime':null"), 0, "{" U "," C "}"},
    {T("'cputime':'0s'"), -EINVAL, "cputime: must be more than 0"},
    {T("'cputime':0"), -EINVAL, "cputime: must be more than 0"},
    {T("'cputime':'400d'"), -EINVAL, "cputime: is too long (at most 366 days)"},
    {T("'cputime':'367d'"), -EINVAL, "cputime: is too long (at most 366 days)"},
    {T("'cputime':9000"), -EINVAL,
     "cputime: 9000 was read as 9000 hours (a bare number is in hours, JobProxy's unit); write "
     "\"9000s\" for seconds; that is too long (at most 366 days)"},
    {T("'walltime':'8785'"), -EINVAL,
     "walltime: 8785 was read as 8785 hours (a bare number is in hours, JobProxy's unit); write "
     "\"8785s\" for seconds; that is too long (at most 366 days)"},
    {T("'cputime':'999999999999999999999d'"), -EINVAL, "cputime: is too long"},
    {T("'cputime':'abc'"), -EINVAL,
     "cputime: must be a duration such as \"90s\", \"15m\" or \"2h\" (a bare number is in "
     "hours, JobProxy's unit)"},
    {T("'cputime':'1x'"), -EINVAL, "cputime: must be a duration such as"},
    {T("'cputime':-1"), -EINVAL, "cputime: must not be negative"},
    {T("'cputime':false"), -EINVAL, "cputime: must be a number or a string, not a boolean"},
    {T("'walltime':2"), 0, N("'walltime':'7200s'")},
    {T("'walltime':'90s'"), 0, N("'walltime':'90s'")},
    {T("'walltime':'15m'"), 0, N("'walltime':'900s'")},
    {T("'walltime':'1d'"), 0, N("'walltime':'86400s'")},
    {T("'walltime':'05:30'"), 0, N("'walltime':'330s'")},
    {T("'walltime':'0s'"), -EINVAL, "walltime: must be more than 0"},
    {T("'walltime':'400d'"), -EINVAL, "walltime: is too long (at most 366 days)"},
    {T("'walltime':'s1'"), -EINVAL, "walltime: must be a duration such as"},
    {T("'walltime':[]"), -EINVAL, "walltime: must be a number or a string, not a list"},

    /* ---- priority: an integer, negative allowed ---- */
    {T("'priority':5"), 0, N("'priority':5")},
    {T("'priority':-1000"), 0, N("'priority':-1000")},
    {T("'priority':1000"), 0, N("'priority':1000")},
    {T("'priority':2.0"), 0, N("'priority':2")},
    {T("'priority':'-7'"), 0, N("'priority':-7")},
    {T("'priority':' +3 '"), 0, N("'priority':3")},
    {T("'priority':0"), 0, "{" U "," C "}"},
    {T("'priority':'0'"), 0, "{" U "," C "}"},
    {T("'priority':null"), 0, "{" U "," C "}"},
    {T("'priority':1001"), -EINVAL, "priority: must be an integer between -1000 and 1000"},
    {T("'priority':-1001"), -EINVAL, "priority: must be an integer between -1000 and 1000"},
    {T("'priority':1.5"), -EINVAL, "priority: must be an integer between -1000 and 1000"},
    {T("'priority':'1.5'"), -EINVAL, "priority: must be an integer between -1000 and 1000"},
    {T("'priority':'high'"), -EINVAL, "priority: must be an integer between -1000 and 1000"},
    {T("'priority':''"), -EINVAL, "priority: must be an integer between -1000 and 1000"},
    {T("'priority':'0x10'"), -EINVAL, "priority: must be an integer between -1000 and 1000"},
    {T("'priority':'99999999999999999999'"), -EINVAL,
     "priority: must be an integer between -1000 and 1000"},
    {T("'priority':1e300"), -EINVAL, "priority: must be an integer between -1000 and 1000"},
    {T("'priority':true"), -EINVAL, "priority: must be an integer or a string, not a boolean"},
    {T("'priority':[1]"), -EINVAL, "priority: must be an integer or a string, not a list"},

    /* ---- backend: the one the task asks for ---- */
    {T("'backend':'slurm'"), 0, N("'backend':'slurm'")},
    {T("'backend':'process'"), 0, N("'backend':'process'")},
    {"{" U ",'container':{'image':'alpine'},'backend':'docker'}", 0,
     "{" U ",'container':{'image':'alpine'},'backend':'docker'}"},
    {T("'backend':'lsf'"), -EINVAL, "backend: must be process, docker or slurm, not \"lsf\""},
    {T("'backend':'Slurm'"), -EINVAL, "backend: must be process, docker or slurm"},
    {T("'backend':''"), -EINVAL, "backend: must not be empty"},
    {T("'backend':1"), -EINVAL, "backend: must be a string, not a number"},
    {T("'backend':'docker'"), -EINVAL,
     "backend: docker runs container tasks only; this task has no container"},
    {"{" U ",'container':{'image':'alpine'},'backend':'slurm'}", -EINVAL,
     "backend: slurm runs commands, not containers; a container task runs on docker"},

    /* ---- stdout, stderr, workdir ---- */
    {T("'stdout':'/tmp/out','stderr':'/tmp/err','workdir':'/home/alice'"), 0,
     N("'stdout':'/tmp/out','stderr':'/tmp/err','workdir':'/home/alice'")},
    {T("'stdout':'/','workdir':'/'"), 0, N("'stdout':'/','workdir':'/'")},
    {T("'stdout':null"), 0, "{" U "," C "}"},
    {T("'stdout':'out'"), -EINVAL, "stdout: must be an absolute path"},
    {T("'stderr':'./err'"), -EINVAL, "stderr: must be an absolute path"},
    {T("'workdir':'home'"), -EINVAL, "workdir: must be an absolute path"},
    {T("'stdout':'/a/../b'"), -EINVAL, "stdout: must not contain \"..\""},
    {T("'stderr':'/a/../b'"), -EINVAL, "stderr: must not contain \"..\""},
    {T("'workdir':'/a/../b'"), -EINVAL, "workdir: must not contain \"..\""},
    {T("'workdir':'/home/..'"), -EINVAL, "workdir: must not contain \"..\""},
    {T("'stdout':''"), -EINVAL, "stdout: must not be empty"},
    {T("'stderr':5"), -EINVAL, "stderr: must be a string, not a number"},
    {T("'workdir':{}"), -EINVAL, "workdir: must be a string, not an object"},

    /* ---- env ---- */
    {T("'env':{'A':'1','B_2':'x y','_c':'','lower':'='}"), 0,
     N("'env':{'A':'1','B_2':'x y','_c':'','lower':'='}")},
    {T("'env':{'N':5,'F':1.5,'T':true,'NO':false}"), 0,
     N("'env':{'N':'5','F':'1.5','T':'true','NO':'false'}")},
    {T("'env':{}"), 0, "{" U "," C "}"},
    {T("'env':null"), 0, "{" U "," C "}"},
    {T("'env':{'1BAD':'x'}"), -EINVAL, "env.1BAD: is not a valid environment variable name"},
    {T("'env':{'A-B':'x'}"), -EINVAL, "env.A-B: is not a valid environment variable name"},
    {T("'env':{'A B':'x'}"), -EINVAL, "env.A B: is not a valid environment variable name"},
    {T("'env':{'A=B':'x'}"), -EINVAL, "env.A=B: is not a valid environment variable name"},
    {T("'env':{'':'x'}"), -EINVAL, "env.: is not a valid environment variable name"},
    {T("'env':{'OK':'1','2X':'x'}"), -EINVAL, "env.2X: is not a valid environment variable name"},
    {T("'env':{'X':null}"), -EINVAL, "env.X: must be a string, not null"},
    {T("'env':{'X':['a']}"), -EINVAL, "env.X: must be a string, not a list"},
    {T("'env':{'X':{}}"), -EINVAL, "env.X: must be a string, not an object"},
    {T("'env':[]"), -EINVAL, "env: must be an object of names to strings, not a list"},
    {T("'env':'A=1'"), -EINVAL, "env: must be an object of names to strings, not a string"},

    /* ---- tags ---- */
    {T("'tags':{'project':'x','a b':'c','1':'2','k-v':''}"), 0,
     N("'tags':{'project':'x','a b':'c','1':'2','k-v':''}")},
    {T("'tags':{'n':3,'b':true}"), 0, N("'tags':{'n':'3','b':'true'}")},
    {T("'tags':{}"), 0, "{" U "," C "}"},
    {T("'tags':{'':'x'}"), -EINVAL, "tags.: is not a valid tag name"},
    {T("'tags':{'k':null}"), -EINVAL, "tags.k: must be a string, not null"},
    {T("'tags':['a']"), -EINVAL, "tags: must be an object of names to strings, not a list"},

    /* ---- everything at once ---- */
    {"{'user':'alice','name':'all','container':{'image':'alpine','cmd':['sh','-c','true'],"
     "'ports':[{'host':8080,'container':80}],'volumes':[{'host':'/d','container':'/"
     "d','mode':'ro'}]},"
     "'cores':'1.5','memory':'1.5G','cputime':'1h30m','walltime':2,'stdout':'/o','stderr':'/e',"
     "'workdir':'/w','env':{'A':'1'},'tags':{'t':'v'}}",
     0,
     "{'user':'alice','name':'all','container':{'image':'alpine','cmd':['sh','-c','true'],"
     "'ports':[{'host':8080,'container':80}],'mounts':[{'host':'/d','container':'/"
     "d','mode':'RO'}]},"
     "'cores':1.5,'memory':'1536M','cputime':'5400s','walltime':'7200s','stdout':'/o',"
     "'stderr':'/e','workdir':'/w','env':{'A':'1'},'tags':{'t':'v'}}"},
};

static void test_row(const struct row *row)
{
    _cleanup_free_ char *json = q(row->json);
    _cleanup_tjson_ cJSON *tree = NULL;
    _cleanup_error_ struct error err = ERROR_INIT;
    static struct task sentinel;
    struct task *t = &sentinel;
    int r;

    r = task_json_parse(json, strlen(json), &tree, &err);
    if (!ok(r == 0, "parse %s%s%s", json, r < 0 ? ": " : "", r < 0 ? error_message(&err) : ""))
        return;

    r = task_from_cjson(tree, NULL, &t, &err);
    if (row->ret < 0) {
        ok(r == row->ret && err.code == row->ret && t == &sentinel && err.msg &&
               strstr(err.msg, row->want),
           "%s -> %d \"%s\" (got %d \"%s\")", json, row->ret, row->want, r,
           r < 0 ? error_message(&err) : "");
        if (r == 0 && t != &sentinel)
            task_free(t);
        return;
    }

    if (!ok(r == 0 && t && t != &sentinel, "%s -> valid%s%s", json, r < 0 ? ": " : "",
            r < 0 ? error_message(&err) : ""))
        return;
    _cleanup_task_ struct task *task = t;
    _cleanup_tjson_ cJSON *n1 = task_to_cjson(task);
    _cleanup_free_ char *n1s = cJSON_PrintUnformatted(n1);

    if (row->want) {
        _cleanup_free_ char *want = q(row->want);
        _cleanup_tjson_ cJSON *w = cJSON_Parse(want);
        ok(w && cJSON_Compare(n1, w, true), "%s normalises to %s (got %s)", json, want, n1s);
    }

    /* Normalised, submitted again, normalised again: the same task. */
    _cleanup_task_ struct task *t2 = NULL;
    r = task_from_cjson(n1, NULL, &t2, &err);
    _cleanup_tjson_ cJSON *n2 = r == 0 ? task_to_cjson(t2) : NULL;
    ok(r == 0 && cJSON_Compare(n1, n2, true), "%s is a fixed point%s%s", n1s, r < 0 ? ": " : "",
       r < 0 ? error_message(&err) : "");

    /* A copy is the same task. */
    _cleanup_task_ struct task *c = task_copy(task);
    _cleanup_tjson_ cJSON *nc = task_to_cjson(c);
    ok(c != task && cJSON_Compare(n1, nc, true), "task_copy of %s", n1s);
}

static void test_rows(void)
{
    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        test_row(&rows[i]);
}

/* Fields as the validator stores them (the normal form hides some). */
static void test_struct_fields(void)
{
    _cleanup_free_ char *json =
        q("{'user':'alice','cmd':'echo hi','cores':0.5,'memory':0.5,'cputime':'1.5m',"
          "'walltime':'0.1s','env':{'B':'2','A':1},'tags':{'x':'y'}}");
    _cleanup_tjson_ cJSON *tree = NULL;
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_task_ struct task *t = NULL;

    ok(task_json_parse(json, strlen(json), &tree, &err) == 0, "fields: parse");
    ok(task_from_cjson(tree, NULL, &t, &err) == 0 && t, "fields: valid");
    if (!t)
        return;
    ok(streq(t->user, "alice") && !t->name && !t->container, "fields: user, no name, no container");
    ok(t->cmd.shell && t->cmd.argv && streq(t->cmd.argv[0], "echo hi") && !t->cmd.argv[1],
       "fields: a cmd string is one shell argument");
    ok(t->cores == 0.5, "fields: cores 0.5");
    ok(t->memory == 512ULL << 20, "fields: memory 0.5 is 512 MiB (%llu)",
       (unsigned long long) t->memory);
    ok(t->cputime == 90 && t->walltime == 1, "fields: cputime 90 s, walltime rounded up to 1 s");
    ok(!t->stdout_path && !t->stderr_path && !t->workdir, "fields: paths absent");
    ok(t->n_env == 2 && streq(t->env[0].key, "B") && streq(t->env[0].value, "2") &&
           streq(t->env[1].key, "A") && streq(t->env[1].value, "1"),
       "fields: env in the order given, numbers as text");
    ok(t->n_tags == 1 && streq(t->tags[0].key, "x") && streq(t->tags[0].value, "y"),
       "fields: tags");

    _cleanup_free_ char *json2 =
        q("{'user':'bob','container':{'image':'alpine','cmd':['a','b'],"
          "'ports':[{'container':80}],'mounts':[{'host':'/h','container':'/c','mode':'ro'}]}}");
    _cleanup_tjson_ cJSON *tree2 = NULL;
    _cleanup_task_ struct task *t2 = NULL;
    ok(task_json_parse(json2, strlen(json2), &tree2, &err) == 0 &&
           task_from_cjson(tree2, NULL, &t2, &err) == 0 && t2,
       "fields: container task valid");
    if (!t2)
        return;
    const struct task_container *c = t2->container;
    ok(c && !t2->cmd.argv && streq(c->image, "alpine"), "fields: container, no top-level cmd");
    ok(c && !c->cmd.shell && streq(c->cmd.argv[0], "a") && streq(c->cmd.argv[1], "b") &&
           !c->cmd.argv[2],
       "fields: container.cmd list is an argument vector");
    ok(c && c->n_ports == 1 && c->ports[0].host == 80 && c->ports[0].container == 80,
       "fields: host port defaults to the container port");
    ok(c && c->n_mounts == 1 && streq(c->mounts[0].host, "/h") &&
           streq(c->mounts[0].container, "/c") && c->mounts[0].mode == MOUNT_RO,
       "fields: mount");
    ok(t2->cores == 0 && t2->memory == 0 && t2->cputime == 0 && t2->walltime == 0 &&
           t2->n_env == 0 && t2->n_tags == 0,
       "fields: no defaults invented");
    _cleanup_tjson_ cJSON *n = task_to_cjson(t2);
    ok(n && !cJSON_HasObjectItem(n, "cores") && !cJSON_HasObjectItem(n, "memory") &&
           !cJSON_HasObjectItem(n, "env") && !cJSON_HasObjectItem(n, "cmd"),
       "fields: the normal form leaves absent fields out");
}

static void test_states(void)
{
    static const struct {
        enum task_state state;
        const char *name;
        bool final;
    } states[] = {
        {TASK_QUEUED, "QUEUED", false},
        {TASK_INITIALIZING, "INITIALIZING", false},
        {TASK_RUNNING, "RUNNING", false},
        {TASK_COMPLETE, "COMPLETE", true},
        {TASK_EXECUTOR_ERROR, "EXECUTOR_ERROR", true},
        {TASK_SYSTEM_ERROR, "SYSTEM_ERROR", true},
        {TASK_CANCELING, "CANCELING", false},
        {TASK_CANCELED, "CANCELED", true},
    };
    ok(ELEMENTSOF(states) == _TASK_STATE_MAX, "every state is in the table");
    for (size_t i = 0; i < ELEMENTSOF(states); i++) {
        const char *s = task_state_to_string(states[i].state);
        ok(s && streq(s, states[i].name), "task_state_to_string(%d) = %s", states[i].state,
           states[i].name);
        ok(task_state_from_string(states[i].name) == states[i].state, "task_state_from_string(%s)",
           states[i].name);
        ok(task_state_is_final(states[i].state) == states[i].final, "%s is %sfinal", states[i].name,
           states[i].final ? "" : "not ");
    }
    ok(task_state_from_string("running") == TASK_RUNNING,
       "task_state_from_string is case-insensitive");
    ok(task_state_from_string("Executor_Error") == TASK_EXECUTOR_ERROR,
       "task_state_from_string(Executor_Error)");
    ok(task_state_from_string("bogus") == -EINVAL, "unknown state -> -EINVAL");
    ok(task_state_from_string("") == -EINVAL, "empty state -> -EINVAL");
    ok(task_state_from_string("RUNNING ") == -EINVAL, "state with trailing space -> -EINVAL");
    ok(task_state_from_string(NULL) == -EINVAL, "NULL state -> -EINVAL");
    ok(!task_state_to_string(_TASK_STATE_MAX) && !task_state_to_string(_TASK_STATE_INVALID),
       "task_state_to_string out of range is NULL");
    ok(!task_state_is_final(_TASK_STATE_INVALID), "an invalid state is not final");

    ok(streq(mount_mode_to_string(MOUNT_RW), "RW") && streq(mount_mode_to_string(MOUNT_RO), "RO"),
       "mount_mode_to_string");
    ok(!mount_mode_to_string(_MOUNT_MODE_MAX) && !mount_mode_to_string(_MOUNT_MODE_INVALID),
       "mount_mode_to_string out of range is NULL");
    ok(mount_mode_from_string("RW") == MOUNT_RW && mount_mode_from_string("rw") == MOUNT_RW &&
           mount_mode_from_string("Rw") == MOUNT_RW,
       "mount_mode_from_string RW, case-insensitive");
    ok(mount_mode_from_string("RO") == MOUNT_RO && mount_mode_from_string("ro") == MOUNT_RO &&
           mount_mode_from_string("rO") == MOUNT_RO,
       "mount_mode_from_string RO, case-insensitive");
    ok(mount_mode_from_string("bad") == -EINVAL && mount_mode_from_string("") == -EINVAL &&
           mount_mode_from_string("R") == -EINVAL && mount_mode_from_string(NULL) == -EINVAL,
       "mount_mode_from_string unknown -> -EINVAL");
}

/* The unit of bare numbers is a parameter of the validator (config
 * bare_units): MB and seconds here, as for clients that followed
 * JobProxy's Chronos backend. Numbers with units mean what they say. */
static void test_bare_units(void)
{
    static const struct task_units mb_s = {.memory = 1ULL << 20, .time = 1};
    static const struct {
        const char *json;
        int ret;
        uint64_t memory, bare_unit, cputime, walltime; /* ret 0 */
        const char *want;                              /* ret < 0: the message */
    } bare_rows[] = {
        {T("'memory':128,'cputime':'10','walltime':90"), 0, 128ULL << 20, 1ULL << 20, 10, 90},
        {T("'memory':'4.5','cputime':0.5"), 0, 4718592, 1ULL << 20, 1, 0},
        {T("'memory':'128G','cputime':'10h','walltime':'1:00:00'"), 0, 128ULL << 30, 0, 36000,
         3600},
        {T("'memory':' 256 '"), 0, 256ULL << 20, 1ULL << 20, 0, 0},
        {T("'memory':1"), -EINVAL, 0, 0, 0, 0,
         "memory: 1 was read as 1 MiB (a bare number is in MB, as this proxy is set up); write "
         "\"1G\" for gigabytes; that is too small (at least 4 MiB)"},
        {T("'cputime':'40000000'"), -EINVAL, 0, 0, 0, 0,
         "cputime: 40000000 was read as 40000000 seconds (a bare number is in seconds, as this "
         "proxy is set up); write \"40000000h\" for hours; that is too long (at most 366 days)"},
        {T("'memory':'lots'"), -EINVAL, 0, 0, 0, 0,
         "memory: must be a size such as \"256M\" or \"1.5G\" (a bare number is in MB, as this "
         "proxy is set up)"},
        {T("'walltime':'soon'"), -EINVAL, 0, 0, 0, 0, "(a bare number is in seconds, as this"},
    };

    for (size_t i = 0; i < ELEMENTSOF(bare_rows); i++) {
        _cleanup_free_ char *json = q(bare_rows[i].json);
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_task_ struct task *t = NULL;
        int r = task_parse(TASK_FORMAT_JSON, json, strlen(json), &mb_s, &t, &err);

        if (bare_rows[i].ret < 0) {
            ok(r == bare_rows[i].ret && !t && strstr(error_message(&err), bare_rows[i].want),
               "bare units MB, s: %s -> \"%s\" (got %d \"%s\")", json, bare_rows[i].want, r,
               error_message(&err));
            continue;
        }
        ok(r == 0 && t && t->memory == bare_rows[i].memory &&
               t->memory_bare_unit == bare_rows[i].bare_unit &&
               t->cputime == bare_rows[i].cputime && t->walltime == bare_rows[i].walltime,
           "bare units MB, s: %s -> memory %" PRIu64 " (bare unit %" PRIu64 "), cputime %" PRIu64
           ", walltime %" PRIu64 ": %s",
           json, bare_rows[i].memory, bare_rows[i].bare_unit, bare_rows[i].cputime,
           bare_rows[i].walltime, error_message(&err));
    }

    /* NULL is JobProxy's units, and the bare unit is remembered, copied,
     * and never written out: the normalised form carries its own units. */
    _cleanup_free_ char *json = q(T("'memory':'128'"));
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_task_ struct task *t = NULL;
    ok(task_parse(TASK_FORMAT_JSON, json, strlen(json), NULL, &t, &err) == 0 && t &&
           t->memory == 128ULL << 30 && t->memory_bare_unit == 1ULL << 30,
       "no units given: a bare 128 is 128 GiB, JobProxy's unit: %s", error_message(&err));
    if (!t)
        return;
    _cleanup_task_ struct task *c = task_copy(t);
    ok(c->memory_bare_unit == t->memory_bare_unit, "task_copy keeps the bare unit");
    _cleanup_tjson_ cJSON *n = task_to_cjson(t);
    _cleanup_free_ char *ns = cJSON_PrintUnformatted(n);
    _cleanup_task_ struct task *again = NULL;
    ok(streq(ns, "{\"user\":\"alice\",\"cmd\":\"true\",\"memory\":\"128G\"}") &&
           task_from_cjson(n, &mb_s, &again, &err) == 0 && again->memory == t->memory &&
           again->memory_bare_unit == 0,
       "the normalised form has its unit, whatever bare numbers mean: %s", ns);
}

int main(void)
{
    test_rows();
    test_bare_units();
    test_struct_fields();
    test_states();
    return tap_done();
}
