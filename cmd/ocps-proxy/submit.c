/*
 * ocps-proxy submit: a task from flags and a command line, or from a file
 * in any of the daemon's three formats; prints the id, or with --wait the
 * task's own exit code once it ends.
 */
#include "cli.h"

#include <getopt.h>
#include <pwd.h>

static const char submit_help[] =
    "Usage: ocps-proxy submit [OPTIONS] -- CMD [ARG...]\n"
    "       ocps-proxy submit [OPTIONS] -f FILE|-\n"
    "Submit a task and print its id.\n\n"
    "  -f, --file FILE        the task as JSON, YAML or XML (by extension or content; - for "
    "stdin)\n"
    "  -u, --user USER        the account it runs as (default: you)\n"
    "      --name NAME        a name to find it by\n"
    "      --image IMAGE      run CMD in a container of IMAGE (Docker backend)\n"
    "      --mount HOST:CONTAINER[:ro|rw]   bind mount (repeatable)\n"
    "      --port HOST:CONTAINER            publish a port (repeatable)\n"
    "      --cores N          CPUs, fractions allowed\n"
    "      --memory SIZE      e.g. 512M, 2G\n"
    "      --cputime DUR      e.g. 90s, 2h\n"
    "      --walltime DUR     e.g. 15m, 1:30:00\n"
    "      --stdout PATH      --stderr PATH   files for the output\n"
    "  -e, --env K=V          environment (repeatable)\n"
    "  -w, --workdir DIR      working directory\n"
    "      --tag K=V          a tag (repeatable)\n"
    "      --wait             wait for the end; exit with the task's exit code\n"
    "      --follow           with --wait, stream its stdout and stderr meanwhile\n\n"
    "The options end at CMD or \"--\": what follows is the task's, left as it is.\n\n"
    "Example:\n"
    "  ocps-proxy submit --memory 256M --cputime 10s --wait -- sh -c 'echo hi; exit 3'\n";

enum {
    OPT_NAME = 256,
    OPT_IMAGE,
    OPT_MOUNT,
    OPT_PORT,
    OPT_CORES,
    OPT_MEMORY,
    OPT_CPUTIME,
    OPT_WALLTIME,
    OPT_STDOUT,
    OPT_STDERR,
    OPT_TAG,
    OPT_WAIT,
    OPT_FOLLOW,
};

static int add_kv(cJSON *task, const char *field, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return usage_error("submit", "--%s wants K=V, not \"%s\"", field, kv);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(task, field);
    if (!m)
        m = cJSON_AddObjectToObject(task, field);
    _cleanup_free_ char *k = xstrndup(kv, eq - kv);
    cJSON_DeleteItemFromObjectCaseSensitive(m, k);
    cJSON_AddStringToObject(m, k, eq + 1);
    return 0;
}

static cJSON *container_of(cJSON *task)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(task, "container");
    return c ? c : cJSON_AddObjectToObject(task, "container");
}

static int add_mount(cJSON *task, const char *spec)
{
    _cleanup_free_ char *s = xstrdup(spec);
    char *host = s, *ctr = strchr(s, ':');
    if (!ctr || ctr == s || !ctr[1])
        return usage_error("submit", "--mount wants HOST:CONTAINER[:ro|rw], not \"%s\"", spec);
    *ctr++ = '\0';
    char *mode = strchr(ctr, ':');
    if (mode)
        *mode++ = '\0';
    if (mode && !strcaseeq(mode, "ro") && !strcaseeq(mode, "rw"))
        return usage_error("submit", "--mount mode must be ro or rw, not \"%s\"", mode);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "host", host);
    cJSON_AddStringToObject(m, "container", ctr);
    cJSON_AddStringToObject(m, "mode", mode && strcaseeq(mode, "ro") ? "RO" : "RW");
    cJSON *list = cJSON_GetObjectItemCaseSensitive(container_of(task), "mounts");
    if (!list)
        list = cJSON_AddArrayToObject(container_of(task), "mounts");
    cJSON_AddItemToArray(list, m);
    return 0;
}

static int add_port(cJSON *task, const char *spec)
{
    char *end;
    unsigned long h = strtoul(spec, &end, 10), c = 0;
    if (end != spec && *end == ':')
        c = strtoul(end + 1, &end, 10);
    if (!h || !c || *end || h > 65535 || c > 65535)
        return usage_error("submit", "--port wants HOST:CONTAINER port numbers, not \"%s\"", spec);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "host", (double) h);
    cJSON_AddNumberToObject(p, "container", (double) c);
    cJSON *list = cJSON_GetObjectItemCaseSensitive(container_of(task), "ports");
    if (!list)
        list = cJSON_AddArrayToObject(container_of(task), "ports");
    cJSON_AddItemToArray(list, p);
    return 0;
}

/* The content type of a task file: by extension, else by its first byte. */
static const char *file_type(const char *path, const char *data)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (dot && streq(dot, ".json"))
        return "application/json";
    if (dot && (streq(dot, ".yaml") || streq(dot, ".yml")))
        return "application/yaml";
    if (dot && streq(dot, ".xml"))
        return "application/xml";
    data += strspn(data, " \t\r\n");
    return *data == '{'   ? "application/json"
           : *data == '<' ? "application/xml"
                          : "application/yaml";
}

static int read_stdin(char **ret)
{
    size_t len = 0, alloc = 0;
    char *buf = NULL;
    for (;;) {
        buf = xgrow(buf, &alloc, len + 4097, 1);
        ssize_t n = read(STDIN_FILENO, buf + len, alloc - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t) n;
    }
    buf[len] = '\0';
    *ret = buf;
    return 0;
}

/* Also read by `ocps-proxy completion bash`. */
const struct option submit_options[] = {
    {"file", required_argument, NULL, 'f'},
    {"user", required_argument, NULL, 'u'},
    {"name", required_argument, NULL, OPT_NAME},
    {"image", required_argument, NULL, OPT_IMAGE},
    {"mount", required_argument, NULL, OPT_MOUNT},
    {"port", required_argument, NULL, OPT_PORT},
    {"cores", required_argument, NULL, OPT_CORES},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"cputime", required_argument, NULL, OPT_CPUTIME},
    {"walltime", required_argument, NULL, OPT_WALLTIME},
    {"stdout", required_argument, NULL, OPT_STDOUT},
    {"stderr", required_argument, NULL, OPT_STDERR},
    {"env", required_argument, NULL, 'e'},
    {"workdir", required_argument, NULL, 'w'},
    {"tag", required_argument, NULL, OPT_TAG},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {},
};

int cmd_submit(struct cli *c, int argc, char **argv)
{
    /* "+": the options end at CMD, whose own options are the task's. */
    static const struct cmd_opts opts = {"submit", "+f:u:e:w:", submit_options, submit_help};
    cJSON *task = cJSON_CreateObject();
    const char *file = NULL;
    bool wait = false, follow = false, have_user = false;
    int r = 0, o;
    while (r == 0 && (o = cli_getopt(c, &opts, argc, argv, &r)) >= 0) {
        switch (o) {
        case 'f':
            file = optarg;
            break;
        case 'u':
            cJSON_DeleteItemFromObject(task, "user");
            cJSON_AddStringToObject(task, "user", optarg);
            have_user = true;
            break;
        case OPT_NAME:
            cJSON_AddStringToObject(task, "name", optarg);
            break;
        case OPT_IMAGE:
            cJSON_AddStringToObject(container_of(task), "image", optarg);
            break;
        case OPT_MOUNT:
            r = add_mount(task, optarg);
            break;
        case OPT_PORT:
            r = add_port(task, optarg);
            break;
        case OPT_CORES:
        case OPT_MEMORY:
        case OPT_CPUTIME:
        case OPT_WALLTIME:
        case OPT_STDOUT:
        case OPT_STDERR: {
            /* Sent as strings: the daemon's one validator reads every unit form. */
            static const char *const names[] = {"cores",    "memory", "cputime",
                                                "walltime", "stdout", "stderr"};
            cJSON_AddStringToObject(task, names[o - OPT_CORES], optarg);
            break;
        }
        case 'e':
            r = add_kv(task, "env", optarg);
            break;
        case 'w':
            cJSON_AddStringToObject(task, "workdir", optarg);
            break;
        case OPT_TAG:
            r = add_kv(task, "tags", optarg);
            break;
        case OPT_WAIT:
            wait = true;
            break;
        case OPT_FOLLOW:
            follow = wait = true;
            break;
        }
    }
    if (r != 0 || o == OPTS_EXIT) {
        cJSON_Delete(task);
        return r;
    }

    _cleanup_free_ char *body = NULL;
    const char *ctype = "application/json";
    if (file) {
        if (optind < argc || cJSON_GetArraySize(task) > 0) {
            cJSON_Delete(task);
            return usage_error("submit", "-f takes the whole task: no other task flags or CMD");
        }
        size_t len;
        int rr = streq(file, "-") ? read_stdin(&body) : read_file(file, 16 << 20, &body, &len);
        if (rr < 0) {
            cJSON_Delete(task);
            fprintf(stderr, "ocps-proxy: %s: %s\n", file, strerror(-rr));
            return EXIT_USAGE;
        }
        ctype = file_type(streq(file, "-") ? NULL : file, body);
    } else {
        if (optind >= argc) {
            cJSON_Delete(task);
            return usage_error("submit", "no command: ocps-proxy submit [OPTIONS] -- CMD [ARG...]");
        }
        cJSON *cmd = cJSON_CreateArray();
        for (int i = optind; i < argc; i++)
            cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
        cJSON *ctr = cJSON_GetObjectItemCaseSensitive(task, "container");
        if (ctr)
            cJSON_AddItemToObject(ctr, "cmd", cmd);
        else
            cJSON_AddItemToObject(task, "cmd", cmd);
        if (!have_user) {
            struct passwd *pw = getpwuid(getuid());
            cJSON_AddStringToObject(task, "user", pw ? pw->pw_name : "nobody");
        }
        body = cJSON_PrintUnformatted(task);
    }
    cJSON_Delete(task);

    struct reply rep;
    r = cli_request(c, "POST", "/v1/jobproxy/submit", ctype, body, strlen(body), &rep);
    if (r != 0)
        return r;
    cJSON *j = reply_json(&rep, 200);
    reply_done(&rep);
    if (!j)
        return EXIT_TASK_FAILED;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    _cleanup_free_ char *tid = cJSON_IsString(id) ? xstrdup(id->valuestring) : NULL;
    if (c->output == OUTPUT_JSON)
        print_json(j);
    else if (c->output == OUTPUT_YAML)
        print_yaml(j);
    else if (tid)
        printf("%s\n", tid);
    fflush(stdout);
    cJSON_Delete(j);
    if (!tid)
        return EXIT_TASK_FAILED;
    return wait ? wait_task(c, tid, follow) : 0;
}
