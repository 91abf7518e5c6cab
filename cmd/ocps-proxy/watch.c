/*
 * ocps-proxy watch: a live table of tasks. On a terminal it redraws in
 * place every interval until interrupted; otherwise it prints one line per
 * change of a task's state (plain lines for logs and pipes).
 */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = 1;
}

static const char *str(const cJSON *j, const char *key)
{
    const char *s = json_str(j, key);
    return s ? s : "-";
}

/* Also read by `ocps-proxy completion bash`. */
const struct option watch_options[] = {
    {"all", no_argument, NULL, 'a'},
    {"interval", required_argument, NULL, 'i'},
    {"count", required_argument, NULL, 'n'},
    {},
};

int cmd_watch(struct cli *c, int argc, char **argv)
{
    static const struct cmd_opts opts = {
        "watch", "a", watch_options,
        "Usage: ocps-proxy watch [--all] [--interval SECONDS] [--count N]\n"
        "A live table of tasks (id, name, user, state, backend, age, exit), redrawn on\n"
        "a terminal until interrupted; one line per state change otherwise.\n\n"
        "  --all            ended tasks too\n"
        "  --interval S     seconds between looks (default 2)\n"
        "  --count N        stop after N looks\n\n"
        "Example:\n  ocps-proxy watch --all\n"};
    bool all = false;
    double interval = 2;
    long count = -1;
    int o, rc = 0;
    while ((o = cli_getopt(c, &opts, argc, argv, &rc)) >= 0) {
        char *end;
        switch (o) {
        case 'a':
            all = true;
            break;
        case 'i':
            interval = strtod(optarg, &end);
            if (*end || !(interval >= 0.1 && interval <= 3600))
                return usage_error("watch", "--interval wants 0.1 to 3600 seconds");
            break;
        case 'n':
            count = strtol(optarg, &end, 10);
            if (*end || count < 1)
                return usage_error("watch", "--count wants a positive number");
            break;
        }
    }
    if (o == OPTS_EXIT)
        return rc;
    if (optind < argc)
        return usage_error("watch", "unexpected argument \"%s\"", argv[optind]);

    bool tty = isatty(STDOUT_FILENO);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    cJSON *seen = cJSON_CreateObject(); /* id -> last state printed */
    for (long n = 0; !stop && (count < 0 || n < count); n++) {
        cJSON *states = fetch_states(c, all || !tty, &rc);
        if (!states)
            break;
        if (tty && c->output == OUTPUT_TABLE) {
            fputs("\033[H\033[2J", stdout); /* home, clear */
            print_states(c, states);
        } else {
            const cJSON *s;
            cJSON_ArrayForEach(s, states)
            {
                const char *id = str(s, "id"), *code = str(s, "code");
                const cJSON *was = cJSON_GetObjectItemCaseSensitive(seen, id);
                if (cJSON_IsString(was) && streq(was->valuestring, code))
                    continue;
                cJSON_DeleteItemFromObjectCaseSensitive(seen, id);
                cJSON_AddStringToObject(seen, id, code);
                const cJSON *ec = cJSON_GetObjectItemCaseSensitive(s, "exit_code");
                char exit[16] = "-";
                if (cJSON_IsNumber(ec))
                    snprintf(exit, sizeof(exit), "%d", ec->valueint);
                _cleanup_free_ char *name = term_safe(str(s, "name"));
                _cleanup_free_ char *user = term_safe(str(s, "user"));
                printf("%s %s %s %s %s exit=%s\n", id, name, user, code, str(s, "backend"), exit);
            }
        }
        fflush(stdout);
        cJSON_Delete(states);
        if (count >= 0 && n + 1 >= count)
            break;
        struct timespec ts = {(time_t) interval, (long) ((interval - (time_t) interval) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop)
            ;
    }
    cJSON_Delete(seen);
    return rc;
}
