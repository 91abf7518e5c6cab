/*
 * ocps-proxy: the command-line client of ocps-proxyd. Global flags, then
 * one subcommand from the table below; each returns the exit code.
 */
#include "cli.h"

#include <curl/curl.h>
#include <stdarg.h>

static const struct command commands[] = {
    { "submit", "submit a task (a command, or a container with --image)", cmd_submit },
    { "state", "the State of tasks", cmd_state },
    { "list", "list tasks", cmd_list },
    { "get", "a task as the daemon understood it", cmd_get },
    { "logs", "a task's output", cmd_logs },
    { "wait", "wait for tasks to end", cmd_wait },
    { "delete", "cancel or remove tasks", cmd_delete },
    { "watch", "a live table of tasks", cmd_watch },
    { "ping", "is the daemon there?", cmd_ping },
    { "version", "the client's version", cmd_version },
    {},
};

static void help(FILE *f)
{
    fputs("Usage: ocps-proxy [--server URL] [-o table|json|yaml] COMMAND [ARGS]\n"
          "Drive an ocps-proxyd: submit tasks, follow them, read their output.\n\n"
          "  -s, --server URL   http://HOST:PORT or unix:/PATH (default: $OCPS_PROXY_URL,\n"
          "                     then http://127.0.0.1:8080)\n"
          "  -o, --output FMT   table (default), json or yaml\n"
          "  -h, --help         this help; COMMAND -h for a command's\n\n"
          "Commands:\n",
          f);
    for (const struct command *c = commands; c->name; c++)
        fprintf(f, "  %-9s %s\n", c->name, c->summary);
    fputs("\nExit codes: 0 ok; a task's own exit code (submit --wait, wait); 1 a task that\n"
          "ended in error without one, or a server error; 2 usage; 3 server unreachable.\n\n"
          "Example:\n  ocps-proxy submit --memory 1G --wait -- make test\n",
          f);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("ocps-proxy: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'ocps-proxy %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct cli c = { .server = getenv("OCPS_PROXY_URL") };
    if (!c.server || !*c.server)
        c.server = "http://127.0.0.1:8080";
    int i = 1;
    /* Global flags come before the command. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (streq(a, "-h") || streq(a, "--help")) {
            help(stdout);
            return 0;
        }
        if (streq(a, "--version"))
            return cmd_version(&c, 1, argv);
        const char *val = NULL;
        bool server = streq(a, "-s") || streq(a, "--server") || startswith(a, "--server=");
        bool output = streq(a, "-o") || streq(a, "--output") || startswith(a, "--output=");
        if (!server && !output)
            return usage_error(NULL, "unknown flag \"%s\"", a);
        if (strchr(a, '='))
            val = strchr(a, '=') + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return usage_error(NULL, "%s wants a value", a);
        if (server) {
            if (!startswith(val, "http://") && !startswith(val, "https://") &&
                !startswith(val, "unix:/"))
                return usage_error(NULL, "--server wants http://HOST:PORT or unix:/PATH, not \"%s\"",
                                   val);
            c.server = val;
        } else if (streq(val, "table"))
            c.output = OUTPUT_TABLE;
        else if (streq(val, "json"))
            c.output = OUTPUT_JSON;
        else if (streq(val, "yaml"))
            c.output = OUTPUT_YAML;
        else
            return usage_error(NULL, "-o wants table, json or yaml, not \"%s\"", val);
    }
    if (i >= argc) {
        help(stderr);
        return EXIT_USAGE;
    }
    const char *nc = getenv("NO_COLOR");
    c.color = isatty(STDOUT_FILENO) && !(nc && *nc);

    for (const struct command *cmd = commands; cmd->name; cmd++)
        if (streq(cmd->name, argv[i])) {
            curl_global_init(CURL_GLOBAL_DEFAULT);
            int r = cmd->run(&c, argc - i, argv + i);
            curl_global_cleanup();
            return r;
        }
    return usage_error(NULL, "unknown command \"%s\"", argv[i]);
}
