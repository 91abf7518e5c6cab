/*
 * Unit tests: a Task as the Engine API's container-create body
 * (backends/docker/create.c), without dockerd. Each Task field is checked
 * at its Engine API key, table driven: the key's JSON must equal the
 * expected JSON exactly (NULL: the key must be absent). The docker suite
 * checks the same mapping once more on a container dockerd made.
 */
#include "docker/docker-internal.h"
#include "tap.h"

#define ID "0f8b7d52-7bb4-4c36-8a0e-5c3a3f2e9d11"

struct row {
    const char *in;  /* NULL: the body's top level, else "HostConfig" */
    const char *key; /* the Engine API's name */
    const char *want;
};

static cJSON *body_of(const char *task_json, const struct confine_user *u,
                      const struct docker_create_config *cfg)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_task_ struct task *t = NULL;
    if (task_parse(TASK_FORMAT_JSON, task_json, strlen(task_json), NULL, &t, &err) < 0) {
        diag("task %s: %s", task_json, error_message(&err));
        return NULL;
    }
    return docker_create_body(t, ID, u, cfg);
}

static void check(const char *what, const cJSON *body, const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cJSON *in = rows[i].in ? cJSON_GetObjectItemCaseSensitive(body, rows[i].in) : body;
        const cJSON *got = cJSON_GetObjectItemCaseSensitive(in, rows[i].key);
        cJSON *want = rows[i].want ? cJSON_Parse(rows[i].want) : NULL;
        _cleanup_free_ char *text = got ? cJSON_PrintUnformatted(got) : NULL;
        if (rows[i].want && !want)
            diag("bad expectation: %s", rows[i].want);
        ok(rows[i].want ? want && got && cJSON_Compare(got, want, true) : !got,
           "%s: %s%s%s %s (got %s)", what, rows[i].in ? rows[i].in : "", rows[i].in ? "." : "",
           rows[i].key, rows[i].want ? rows[i].want : "absent", text ? text : "nothing");
        cJSON_Delete(want);
    }
}

static void test_full(void)
{
    gid_t groups[] = {27, 44};
    struct confine_user u = {.uid = 1000, .gid = 1001, .groups = groups, .n_groups = 2};
    struct docker_create_config cfg = {
        .instance = "inst-1", .port_address = "127.0.0.1", .network = "none", .pids_limit = 512};
    cJSON *body = body_of(
        "{\"user\": \"alice\", \"cores\": 0.5, \"memory\": \"64M\", \"cputime\": \"30s\","
        " \"walltime\": \"2m\", \"workdir\": \"/tmp\","
        " \"env\": {\"GREETING\": \"hi there\", \"EMPTY\": \"\"},"
        " \"tags\": {\"project\": \"x1\"},"
        " \"container\": {\"image\": \"ocps-test/busybox:1\", \"cmd\": \"echo $GREETING\","
        "   \"ports\": [{\"host\": 18555, \"container\": 80}, {\"host\": 18556, \"container\": 80},"
        "               {\"host\": 18443, \"container\": 443}],"
        "   \"mounts\": [{\"host\": \"/srv/in\", \"container\": \"/in\", \"mode\": \"RO\"},"
        "                {\"host\": \"/srv/out\", \"container\": \"/out\", \"mode\": \"RW\"}]}}",
        &u, &cfg);
    const struct row rows[] = {
        {NULL, "Image", "\"ocps-test/busybox:1\""},
        {NULL, "Cmd", "[\"/bin/sh\", \"-c\", \"echo $GREETING\"]"},
        {NULL, "Env", "[\"GREETING=hi there\", \"EMPTY=\", \"OCPS_TASK_ID=" ID "\"]"},
        {NULL, "WorkingDir", "\"/tmp\""},
        {NULL, "User", "\"1000:1001\""},
        {NULL, "Tty", "false"},
        {NULL, "AttachStdin", "false"},
        {NULL, "OpenStdin", "false"},
        {NULL, "Labels",
         "{\"org.ocps-proxy.instance\": \"inst-1\", \"org.ocps-proxy.task\": \"" ID "\","
         " \"org.ocps-proxy.tag.project\": \"x1\"}"},
        {NULL, "ExposedPorts", "{\"80/tcp\": {}, \"443/tcp\": {}}"},
        {"HostConfig", "PortBindings",
         "{\"80/tcp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": \"18555\"},"
         "             {\"HostIp\": \"127.0.0.1\", \"HostPort\": \"18556\"}],"
         " \"443/tcp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": \"18443\"}]}"},
        {"HostConfig", "Mounts",
         "[{\"Type\": \"bind\", \"Source\": \"/srv/in\", \"Target\": \"/in\", \"ReadOnly\": true},"
         " {\"Type\": \"bind\", \"Source\": \"/srv/out\", \"Target\": \"/out\", \"ReadOnly\": "
         "false}]"},
        {"HostConfig", "NetworkMode", "\"none\""},
        {"HostConfig", "NanoCpus", "500000000"},
        {"HostConfig", "Memory", "67108864"},
        {"HostConfig", "MemorySwap", "67108864"},
        {"HostConfig", "PidsLimit", "512"},
        {"HostConfig", "Ulimits", "[{\"Name\": \"cpu\", \"Soft\": 30, \"Hard\": 31}]"},
        {"HostConfig", "GroupAdd", "[\"27\", \"44\"]"},
        {"HostConfig", "CapDrop", "[\"ALL\"]"},
        {"HostConfig", "SecurityOpt", "[\"no-new-privileges\"]"},
        {"HostConfig", "Init", "true"},
        {"HostConfig", "AutoRemove", "false"},
        {"HostConfig", "Binds", NULL}, /* Mounts only: a missing source is no new directory */
        {NULL, "StopTimeout", NULL},
    };
    if (ok(body, "a full task maps"))
        check("full", body, rows, ELEMENTSOF(rows));
    cJSON_Delete(body);
}

/* A task with nothing optional: the keys of what it lacks are absent. */
static void test_minimal(void)
{
    struct confine_user u = {.uid = 65534, .gid = 65534};
    struct docker_create_config cfg = {.instance = "inst-2", .port_address = "0.0.0.0"};
    cJSON *body = body_of("{\"user\": \"nobody\", \"cores\": 1.25, \"memory\": \"1G\","
                          " \"container\": {\"image\": \"busybox\"}}",
                          &u, &cfg);
    const struct row rows[] = {
        {NULL, "Image", "\"busybox\""},
        {NULL, "Cmd", NULL}, /* the image's own */
        {NULL, "Env", "[\"OCPS_TASK_ID=" ID "\"]"},
        {NULL, "WorkingDir", NULL},
        {NULL, "User", "\"65534:65534\""},
        {NULL, "Labels",
         "{\"org.ocps-proxy.instance\": \"inst-2\", \"org.ocps-proxy.task\": \"" ID "\"}"},
        {NULL, "ExposedPorts", NULL},
        {"HostConfig", "PortBindings", NULL},
        {"HostConfig", "Mounts", NULL},
        {"HostConfig", "NetworkMode", NULL}, /* Docker's default */
        {"HostConfig", "NanoCpus", "1250000000"},
        {"HostConfig", "Memory", "1073741824"},
        {"HostConfig", "MemorySwap", "1073741824"},
        {"HostConfig", "PidsLimit", NULL},
        {"HostConfig", "Ulimits", NULL},
        {"HostConfig", "GroupAdd", NULL},
        {"HostConfig", "CapDrop", "[\"ALL\"]"},
        {"HostConfig", "SecurityOpt", "[\"no-new-privileges\"]"},
        {"HostConfig", "Init", "true"},
        {"HostConfig", "AutoRemove", "false"},
    };
    if (ok(body, "a minimal task maps"))
        check("minimal", body, rows, ELEMENTSOF(rows));
    cJSON_Delete(body);
}

/* The command: a string goes through /bin/sh -c, a list as it is. */
static void test_cmd(void)
{
    static const struct {
        const char *cmd;
        const char *want;
    } rows[] = {
        {"\"echo a; echo b\"", "[\"/bin/sh\", \"-c\", \"echo a; echo b\"]"},
        {"[\"echo\", \"a b\", \"$X\"]", "[\"echo\", \"a b\", \"$X\"]"},
        {"[\"/bin/true\"]", "[\"/bin/true\"]"},
    };
    struct confine_user u = {.uid = 1, .gid = 1};
    struct docker_create_config cfg = {.instance = "i", .port_address = "127.0.0.1"};
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        _cleanup_free_ char *task =
            xasprintf("{\"user\": \"u\", \"cores\": 1, \"memory\": \"64M\","
                      " \"container\": {\"image\": \"busybox\", \"cmd\": %s}}",
                      rows[i].cmd);
        cJSON *body = body_of(task, &u, &cfg);
        _cleanup_free_ char *what = xasprintf("cmd %s", rows[i].cmd);
        check(what, body, &(struct row){NULL, "Cmd", rows[i].want}, 1);
        cJSON_Delete(body);
    }
}

int main(void)
{
    test_full();
    test_minimal();
    test_cmd();
    return tap_done();
}
