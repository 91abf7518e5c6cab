/*
 * The subcommands that look at and act on tasks: state, list, get, logs,
 * wait, delete, ping, version.
 */
#include "cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>

static bool final_state(const char *code)
{
    return code && (streq(code, "COMPLETE") || streq(code, "EXECUTOR_ERROR") ||
                    streq(code, "SYSTEM_ERROR") || streq(code, "CANCELED"));
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* After a command's options: EXIT_USAGE for an argument that starts with
 * '-' (one after "--", or "-"), since a task id never does; 0 otherwise. */
static int check_ids(const char *cmd, int argc, char **argv)
{
    for (int i = optind; i < argc; i++)
        if (argv[i][0] == '-')
            return usage_error(cmd, "unknown option \"%s\" (a task id never starts with \"-\")",
                               argv[i]);
    return 0;
}

/* The parse of a command without options of its own (the global ones and
 * --help only) that takes from min to max task ids: true to go on with the
 * ids at argv[optind...], false to return *ret_exit. */
static bool parse_ids(struct cli *c, const struct cmd_opts *o, int min, int max, int argc,
                      char **argv, int *ret_exit)
{
    if (cli_getopt(c, o, argc, argv, ret_exit) != OPTS_END)
        return false;
    int n = argc - optind;
    if (n > max && max == 0)
        *ret_exit = usage_error(o->name, "unexpected argument \"%s\"", argv[optind]);
    else if (n < min || n > max)
        *ret_exit =
            usage_error(o->name, "%s takes %s", o->name, max == 1 ? "one task id" : "task ids");
    else
        *ret_exit = check_ids(o->name, argc, argv);
    return *ret_exit == 0;
}

/* The table of States: what state, list and watch print. */
static void states_table(struct cli *c, cJSON *states)
{
    static const char *headers[] = {"ID", "NAME", "USER", "STATE", "BACKEND", "AGE", "EXIT"};
    struct table t = {.n_cols = 7, .headers = headers, .state_col = 3};
    const cJSON *s;
    cJSON_ArrayForEach(s, states)
    {
        const cJSON *ec = cJSON_GetObjectItemCaseSensitive(s, "exit_code");
        char *row[7] = {
            dup_or_null(json_str(s, "id")),
            dup_or_null(json_str(s, "name")),
            dup_or_null(json_str(s, "user")),
            dup_or_null(json_str(s, "code")),
            dup_or_null(json_str(s, "backend")),
            format_age(json_str(s, "created")),
            cJSON_IsNumber(ec) ? xasprintf("%d", ec->valueint) : NULL,
        };
        table_add(&t, row);
    }
    table_print(&t, c->color);
    table_done(&t);
}

void print_states(struct cli *c, cJSON *states)
{
    if (c->output == OUTPUT_JSON)
        print_json(states);
    else if (c->output == OUTPUT_YAML)
        print_yaml(states);
    else
        states_table(c, states);
}

/* GET path expecting 200 and JSON: 0 with *ret, or the exit code (the
 * server's error already printed). */
static int get_json(struct cli *c, const char *path, cJSON **ret)
{
    struct reply rep;
    int r = cli_request(c, "GET", path, NULL, NULL, 0, &rep);
    if (r != 0)
        return r;
    *ret = reply_json(&rep, 200);
    reply_done(&rep);
    return *ret ? 0 : EXIT_TASK_FAILED;
}

/* Keeps the tasks that are not over yet; consumes states. */
static cJSON *only_active(cJSON *states)
{
    cJSON *active = cJSON_CreateArray(), *s;
    while ((s = cJSON_DetachItemFromArray(states, 0)))
        if (final_state(json_str(s, "code")))
            cJSON_Delete(s);
        else
            cJSON_AddItemToArray(active, s);
    cJSON_Delete(states);
    return active;
}

/* Every task matching the query, following page tokens. NULL after an error. */
static cJSON *fetch_all(struct cli *c, const char *query, int *ret_exit)
{
    cJSON *all = cJSON_CreateArray();
    _cleanup_free_ char *token = NULL;
    for (;;) {
        _cleanup_free_ char *path = xasprintf("/v1/jobproxy/state?limit=2048%s%s%s", query,
                                              token ? "&page_token=" : "", token ? token : "");
        cJSON *page = NULL;
        int r = get_json(c, path, &page);
        if (r != 0) {
            *ret_exit = r;
            cJSON_Delete(all);
            return NULL;
        }
        cJSON *list = cJSON_DetachItemFromObjectCaseSensitive(page, "state");
        cJSON *s;
        while (list && (s = cJSON_DetachItemFromArray(list, 0)))
            cJSON_AddItemToArray(all, s);
        cJSON_Delete(list);
        free(token);
        token = dup_or_null(json_str(page, "next_page_token"));
        cJSON_Delete(page);
        if (!token || !*token)
            return all;
    }
}

cJSON *fetch_states(struct cli *c, bool all, int *ret_exit)
{
    cJSON *states = fetch_all(c, "", ret_exit);
    return states && !all ? only_active(states) : states;
}

static int get_state(struct cli *c, const char *id, cJSON **ret)
{
    _cleanup_free_ char *path = xasprintf("/v1/jobproxy/state/%s", id);
    return get_json(c, path, ret);
}

/* The tasks in state code (any), of user (any): the active ones unless all
 * or code. */
static int list_tasks(struct cli *c, const char *code, const char *user, bool all)
{
    _cleanup_free_ char *q = xasprintf("%s%s%s%s", code ? "&code=" : "", code ? code : "",
                                       user ? "&user=" : "", user ? user : "");
    int rc = 0;
    cJSON *states = fetch_all(c, q, &rc);
    if (!states)
        return rc;
    if (!all && !code)
        states = only_active(states);
    print_states(c, states);
    cJSON_Delete(states);
    return 0;
}

int cmd_state(struct cli *c, int argc, char **argv)
{
    static const struct cmd_opts opts = {
        "state", "", NULL,
        "Usage: ocps-proxy state [ID...]\n"
        "The State of each task (without IDs: of the tasks that have not ended).\n\n"
        "Example:\n  ocps-proxy state -o json 2f1c...\n"};
    int rc;
    if (!parse_ids(c, &opts, 0, INT_MAX, argc, argv, &rc))
        return rc;
    if (optind == argc)
        return list_tasks(c, NULL, NULL, false);
    cJSON *states = cJSON_CreateArray();
    for (int i = optind; i < argc; i++) {
        cJSON *s = NULL;
        int r = get_state(c, argv[i], &s);
        if (r == EXIT_UNREACHABLE) {
            cJSON_Delete(states);
            return r;
        }
        if (r != 0)
            rc = r;
        else
            cJSON_AddItemToArray(states, s);
    }
    if (cJSON_GetArraySize(states) > 0 || c->output != OUTPUT_TABLE)
        print_states(c, states);
    cJSON_Delete(states);
    return rc;
}

/* Also read by `ocps-proxy completion bash`. */
const struct option list_options[] = {
    {"code", required_argument, NULL, 'c'},
    {"user", required_argument, NULL, 'u'},
    {"all", no_argument, NULL, 'a'},
    {},
};

int cmd_list(struct cli *c, int argc, char **argv)
{
    static const struct cmd_opts opts = {
        "list", "c:u:a", list_options,
        "Usage: ocps-proxy list [--code STATE] [--user USER] [--all]\n"
        "Tasks that have not ended yet; --all adds the ended ones.\n\n"
        "  --code STATE   only tasks in STATE (QUEUED, RUNNING, COMPLETE, ...)\n"
        "  --user USER    only USER's tasks\n"
        "  --all          ended tasks too\n\n"
        "Example:\n  ocps-proxy list --all --user alice -o yaml\n"};
    const char *code = NULL, *user = NULL;
    bool all = false;
    int o, rc = 0;
    while ((o = cli_getopt(c, &opts, argc, argv, &rc)) >= 0) {
        switch (o) {
        case 'c':
            code = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'a':
            all = true;
            break;
        }
    }
    if (o == OPTS_EXIT)
        return rc;
    if (optind < argc)
        return usage_error("list", "unexpected argument \"%s\"", argv[optind]);
    return list_tasks(c, code, user, all);
}

int cmd_get(struct cli *c, int argc, char **argv)
{
    static const struct cmd_opts opts = {
        "get", "", NULL,
        "Usage: ocps-proxy get ID\n"
        "The task as the daemon understood it (normalised units), with its State.\n\n"
        "Example:\n  ocps-proxy get 2f1c... -o json\n"};
    int r;
    if (!parse_ids(c, &opts, 1, 1, argc, argv, &r))
        return r;
    _cleanup_free_ char *path = xasprintf("/v1/jobproxy/task/%s", argv[optind]);
    cJSON *j = NULL;
    r = get_json(c, path, &j);
    if (r != 0)
        return r;
    if (c->output == OUTPUT_JSON)
        print_json(j);
    else
        print_yaml(j); /* nested: YAML reads best for people too */
    cJSON_Delete(j);
    return 0;
}

/* Also read by `ocps-proxy completion bash`. */
enum { OPT_STDERR = 256, OPT_SYSTEM }; /* long only: -s is --server */
const struct option logs_options[] = {
    {"follow", no_argument, NULL, 'f'},
    {"stderr", no_argument, NULL, OPT_STDERR},
    {"system", no_argument, NULL, OPT_SYSTEM},
    {"tail", required_argument, NULL, 'n'},
    {},
};

int cmd_logs(struct cli *c, int argc, char **argv)
{
    static const struct cmd_opts opts = {
        "logs", "fn:", logs_options,
        "Usage: ocps-proxy logs [-f] [--stderr|--system] [--tail N] ID\n"
        "A task's output.\n\n"
        "  -f, --follow   stream until the task ends\n"
        "      --stderr   its stderr instead of stdout\n"
        "      --system   what the proxy did for it (pulls, container events)\n"
        "  -n, --tail N   only the last N lines\n\n"
        "Example:\n  ocps-proxy logs -f --tail 20 2f1c...\n"};
    bool follow = false;
    const char *stream = "stdout", *tail = NULL;
    int o, rc = 0;
    while ((o = cli_getopt(c, &opts, argc, argv, &rc)) >= 0) {
        switch (o) {
        case 'f':
            follow = true;
            break;
        case OPT_STDERR:
            stream = "stderr";
            break;
        case OPT_SYSTEM:
            stream = "system";
            break;
        case 'n':
            tail = optarg;
            break;
        }
    }
    if (o == OPTS_EXIT)
        return rc;
    if (optind + 1 != argc)
        return usage_error("logs", "logs takes one task id");
    rc = check_ids("logs", argc, argv);
    if (rc != 0)
        return rc;
    _cleanup_free_ char *path =
        xasprintf("/v1/jobproxy/logs/%s?stream=%s%s%s%s", argv[optind], stream,
                  tail ? "&tail=" : "", tail ? tail : "", follow ? "&follow=1" : "");
    struct reply rep;
    /* Collect first: an error reply must not be printed as output. */
    int r = follow ? cli_stream(c, path, STDOUT_FILENO, &rep)
                   : cli_request(c, "GET", path, NULL, NULL, 0, &rep);
    if (r != 0)
        return r;
    if (rep.status != 200) {
        reply_print_error(&rep);
        reply_done(&rep);
        return EXIT_TASK_FAILED;
    }
    if (!follow && rep.body)
        (void) loop_write(STDOUT_FILENO, rep.body, rep.len);
    reply_done(&rep);
    return 0;
}

struct stream_arg {
    struct cli *c;
    char *path;
    int fd;
};

static void *stream_main(void *p)
{
    struct stream_arg *a = p;
    struct reply rep;
    if (cli_stream(a->c, a->path, a->fd, &rep) == 0)
        reply_done(&rep);
    return NULL;
}

int wait_task(struct cli *c, const char *id, bool follow_output)
{
    /* The logs stream closes when the task ends: no polling. With output
     * wanted, stderr follows in a second stream. */
    _cleanup_free_ char *out = xasprintf("/v1/jobproxy/logs/%s?follow=1", id);
    _cleanup_close_ int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct stream_arg err_arg = {c, xasprintf("/v1/jobproxy/logs/%s?stream=stderr&follow=1", id),
                                 STDERR_FILENO};
    pthread_t t;
    bool err_thread = follow_output && pthread_create(&t, NULL, stream_main, &err_arg) == 0;
    struct reply rep;
    int r = cli_stream(c, out, follow_output ? STDOUT_FILENO : null, &rep);
    if (err_thread)
        pthread_join(t, NULL);
    free(err_arg.path);
    if (r != 0)
        return r;
    long status = rep.status;
    reply_done(&rep);
    if (status == 404) {
        fprintf(stderr, "ocps-proxy: 404: no task %s\n", id);
        return EXIT_TASK_FAILED;
    }
    cJSON *s = NULL;
    r = get_state(c, id, &s);
    if (r != 0)
        return r;
    const char *code = json_str(s, "code");
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(s, "exit_code");
    int rc = cJSON_IsNumber(ec) && ec->valueint >= 0 ? ec->valueint & 0xff : EXIT_TASK_FAILED;
    if (code && streq(code, "COMPLETE"))
        rc = 0;
    if (!code || !final_state(code))
        rc = EXIT_TASK_FAILED;
    if (rc != 0 && code) {
        _cleanup_free_ char *why = term_safe(json_str(s, "description"));
        fprintf(stderr, "ocps-proxy: task %s %s: %s\n", id, code, why);
    }
    cJSON_Delete(s);
    return rc;
}

int cmd_wait(struct cli *c, int argc, char **argv)
{
    static const struct cmd_opts opts = {
        "wait", "", NULL,
        "Usage: ocps-proxy wait ID...\n"
        "Wait for tasks to end. One task: exit with its exit code; several: 0 if\n"
        "all completed, else 1.\n\n"
        "Example:\n  ocps-proxy wait 2f1c... 9a0b...\n"};
    int rc;
    if (!parse_ids(c, &opts, 1, INT_MAX, argc, argv, &rc))
        return rc;
    if (argc - optind == 1)
        return wait_task(c, argv[optind], false);
    for (int i = optind; i < argc; i++) {
        int r = wait_task(c, argv[i], false);
        if (r == EXIT_UNREACHABLE)
            return r;
        if (r != 0)
            rc = EXIT_TASK_FAILED;
    }
    return rc;
}

int cmd_delete(struct cli *c, int argc, char **argv)
{
    static const struct cmd_opts opts = {
        "delete", "", NULL,
        "Usage: ocps-proxy delete ID...\n"
        "Cancel tasks that are still active (they end CANCELED); remove ended ones.\n\n"
        "Example:\n  ocps-proxy delete 2f1c...\n"};
    int rc;
    if (!parse_ids(c, &opts, 1, INT_MAX, argc, argv, &rc))
        return rc;
    for (int i = optind; i < argc; i++) {
        _cleanup_free_ char *path = xasprintf("/v1/jobproxy/delete/%s", argv[i]);
        struct reply rep;
        int r = cli_request(c, "DELETE", path, NULL, NULL, 0, &rep);
        if (r != 0)
            return r;
        if (rep.status == 204)
            printf("%s\n", argv[i]);
        else {
            reply_print_error(&rep);
            rc = EXIT_TASK_FAILED;
        }
        reply_done(&rep);
    }
    return rc;
}

int cmd_ping(struct cli *c, int argc, char **argv)
{
    static const struct cmd_opts opts = {
        "ping", "", NULL,
        "Usage: ocps-proxy ping\nIs the daemon there?\n\nExample:\n"
        "  ocps-proxy ping --server unix:/run/ocps-proxy.sock\n"};
    int r;
    if (!parse_ids(c, &opts, 0, 0, argc, argv, &r))
        return r;
    struct reply rep;
    r = cli_request(c, "GET", "/v1/jobproxy/ping", NULL, NULL, 0, &rep);
    if (r != 0)
        return r;
    if (rep.status != 200) {
        reply_print_error(&rep);
        reply_done(&rep);
        return EXIT_TASK_FAILED;
    }
    fputs(rep.body ? rep.body : "", stdout);
    reply_done(&rep);
    return 0;
}

int cmd_version(struct cli *c, int argc, char **argv)
{
    static const struct cmd_opts opts = {
        "version", "", NULL,
        "Usage: ocps-proxy version\nThe client's version.\n\nExample:\n"
        "  ocps-proxy version\n"};
    int r;
    if (!parse_ids(c, &opts, 0, 0, argc, argv, &r))
        return r;
    printf("ocps-proxy %s\n", OCPS_VERSION);
    return 0;
}
