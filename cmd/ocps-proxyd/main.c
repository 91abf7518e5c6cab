/*
 * ocps-proxyd: the task proxy daemon. Reads the flags and the config,
 * opens the store and its tokens (writing the admin token at first
 * start), starts the supervisor (which reattaches to running tasks) and
 * the HTTP server, and waits for SIGTERM/SIGINT. Stopping leaves running
 * tasks running: their shims record how they end, and the next start
 * picks them up. `ocps-proxyd token ...` manages the bearer tokens
 * instead (token.c).
 *
 * Under systemd (ocps-proxyd.service, Type=notify): READY=1 once the
 * tasks of the last run are recovered and every listener is up, STATUS=
 * lines on the way, STOPPING=1 at SIGTERM, WATCHDOG=1 while the
 * supervisor goes round (watchdog.c); the listeners of
 * ocps-proxyd.socket are served in place of binding them (server.c).
 */
#include "account.h"
#include "config.h"
#include "http/http.h"
#include "layout.h"
#include "ocps-config.h"
#include "ocps-proxyd.h"
#include "process/process.h"
#include "store.h"
#include "supervisor.h"
#include "tokens.h"
#include "util/log.h"
#include "util/systemd.h"
#if HAVE_DOCKER
#include "docker/docker.h"
#include "slurm/slurm.h"
#endif

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>

/* The backends this daemon links, in the order a task's backend is looked for. */
static const struct backend_ops *const backends[] = {
    &process_backend_ops,
#if HAVE_DOCKER
    &docker_backend_ops,
    /* Enabled by the config's slurm: section; after process, so that
     * recovery and metrics list the local backends first. */
    &slurm_backend_ops,
#endif
    NULL,
};

static void help(void)
{
    printf("Usage: ocps-proxyd [OPTION]...\n"
           "       ocps-proxyd token create|list|revoke ... (see ocps-proxyd token --help)\n"
           "Run the ocps-proxy daemon: the JobProxy REST API and GA4GH TES 1.1 in front of this "
           "host's compute.\n"
           "\n"
           "  -c, --config FILE      read settings from a YAML file (flags override it)\n"
           "  -l, --listen ADDR      listen on HOST:PORT, [IPv6]:PORT, https://HOST:PORT\n"
           "                         (TLS with the config's tls: settings) or unix:/path;\n"
           "                         repeat for several (default " CONFIG_DEFAULT_LISTEN ")\n"
           "      --listen-unauthenticated ADDR=PRINCIPAL\n"
           "                         listen on a loopback HOST:PORT where a request\n"
           "                         without a token is PRINCIPAL (for clients that\n"
           "                         cannot send one; any local account can connect)\n"
           "  -d, --data-dir DIR     the store and task files (default " CONFIG_DEFAULT_DATA_DIR
           ")\n"
           "      --log-level LEVEL  error, warn, info (default) or debug\n"
           "  -h, --help             show this help and exit\n"
           "  -V, --version          show the version and exit\n"
           "\n"
           "A TCP request authenticates with a bearer token (Authorization: Bearer TOKEN);\n"
           "on a unix socket the caller's uid names it. At its first start the daemon\n"
           "writes an admin token to DIR/admin.token (mode 0600).\n"
           "\n"
           "Example:\n"
           "  ocps-proxyd --listen 127.0.0.1:8080 --data-dir /var/lib/ocps-proxy\n"
           "  curl -s -H \"Authorization: Bearer $(cat /var/lib/ocps-proxy/admin.token)\" \\\n"
           "       -H 'Content-Type: application/json' \\\n"
           "       -d '{\"user\":\"nobody\",\"cmd\":\"echo hello\"}' "
           "http://127.0.0.1:8080/v1/jobproxy/submit\n"
           "\n"
           "Backends: process (a command: a confined process under its own shim),\n"
           "docker (a task with a container: dockerd at $DOCKER_HOST or\n"
           "/var/run/docker.sock, set docker.socket in the config) and slurm (commands\n"
           "as Slurm jobs through slurmrestd, with a slurm: section and cmd_backend:\n"
           "slurm, or a task's \"backend\": \"slurm\").\n"
           "Tasks and containers keep running when the daemon stops; the next start\n"
           "reattaches to them.\n"
           "\n"
           "Under systemd (ocps-proxyd.service, Type=notify) the listening sockets of\n"
           "ocps-proxyd.socket are served where --listen or the config's listen names\n"
           "their address, and as given (tokens on TCP) where nothing does; with no\n"
           "listener configured, only those.\n");
}

static int parse_args(int argc, char **argv, struct config *cfg, struct error *err)
{
    enum { OPT_LOG_LEVEL = 0x100, OPT_LISTEN_UNAUTHENTICATED };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"listen-unauthenticated", required_argument, NULL, OPT_LISTEN_UNAUTHENTICATED},
        {"data-dir", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {},
    };
    /* The config file first, so that flags override it wherever they stand. */
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:l:d:hV", opts, NULL)) >= 0)
        if (c == 'c') {
            int r = config_load_file(cfg, optarg, err);
            if (r < 0)
                return r;
        }
    optind = 0;
    opterr = 1;
    /* Listeners on the command line replace the config's. */
    bool listen_given = false;
    while ((c = getopt_long(argc, argv, "c:l:d:hV", opts, NULL)) >= 0) {
        switch (c) {
        case 'c':
            break;
        case 'l':
        case OPT_LISTEN_UNAUTHENTICATED:
            if (!listen_given)
                config_clear_listeners(cfg);
            listen_given = true;
            if (c == 'l')
                config_add_listener(cfg, optarg, NULL);
            else if (config_add_listener_arg(cfg, optarg, err) < 0)
                return err->code;
            break;
        case 'd':
            free(cfg->data_dir);
            cfg->data_dir = xstrdup(optarg);
            break;
        case OPT_LOG_LEVEL: {
            int l = log_level_from_string(optarg);
            if (l < 0)
                return error_set(err, -EINVAL,
                                 "--log-level: must be error, warn, info or debug, not \"%s\"",
                                 optarg);
            cfg->log_level = l;
            break;
        }
        case 'h':
            help();
            exit(EXIT_SUCCESS);
        case 'V':
            printf("ocps-proxyd %s\n", OCPS_VERSION);
            exit(EXIT_SUCCESS);
        default:
            return error_set(err, -EINVAL, "try 'ocps-proxyd --help'");
        }
    }
    if (optind < argc)
        return error_set(err, -EINVAL, "unexpected argument \"%s\"; try 'ocps-proxyd --help'",
                         argv[optind]);
    return 0;
}

/* The quick start's token: at the first start (no token in the table
 * yet), an admin token in a file only root reads, as Jupyter does. Never
 * written again, so that revoking it is not undone by a restart. */
static int first_admin_token(struct tokens *t, const char *data_dir, struct error *err)
{
    _cleanup_free_ char *path = layout_admin_token(data_dir);
    bool created;
    int r = tokens_create_first(t, path, &created, err);
    if (r < 0)
        return error_wrap(err, "admin token");
    if (created)
        log_info("first start: wrote a token of principal \"%s\" (an admin) to %s; send it as "
                 "\"Authorization: Bearer TOKEN\"",
                 TOKEN_ADMIN_PRINCIPAL, path);
    return 0;
}

int main(int argc, char **argv)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct config cfg;

    if (argc > 1 && streq(argv[1], "token"))
        return token_main(argc - 1, argv + 1);

    /* Thread-per-connection would otherwise give each busy thread a malloc arena
     * of its own, and the daemon's footprint would grow with its peak load. */
    (void) mallopt(M_ARENA_MAX, 2);
    config_init(&cfg);
    if (parse_args(argc, argv, &cfg, &err) < 0) {
        fprintf(stderr, "ocps-proxyd: %s\n", error_message(&err));
        config_done(&cfg);
        return 2;
    }
    log_set_level((enum log_level) cfg.log_level);
    /* Before any child is spawned: the variables are unset for them. */
    _cleanup_free_ int *listen_fds = NULL;
    int n_listen_fds = systemd_listen_fds(&listen_fds);
    if (n_listen_fds < 0) {
        log_error("socket activation: LISTEN_FDS: %s", strerror(-n_listen_fds));
        config_done(&cfg);
        return EXIT_FAILURE;
    }
    /* The default listener only when nothing says where to listen: under
     * socket activation the .socket unit may be all the listeners. */
    if (cfg.n_listen == 0 && n_listen_fds == 0)
        config_add_listener(&cfg, CONFIG_DEFAULT_LISTEN, NULL);
    account_set_root(cfg.host_root);
    /* The https listeners' files, before anything else: a key the daemon
     * cannot read stops it before it touches the data dir or a task. */
    if (config_read_tls(&cfg, &err) < 0) {
        log_error("%s", error_message(&err));
        config_done(&cfg);
        return EXIT_FAILURE;
    }
    config_resolve_capacity(&cfg);

    /* A client that hangs up must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Blocked before any thread starts, so only sigwait() below sees them. */
    pthread_sigmask(SIG_BLOCK, &mask, NULL);

    int status = EXIT_FAILURE;
    struct store *store = NULL;
    struct tokens *tokens = NULL;
    struct supervisor *sv = NULL;
    struct http_server *http = NULL;
    struct watchdog *watchdog = NULL;
    _cleanup_free_ char *tasks_dir = layout_tasks(cfg.data_dir);
    _cleanup_free_ char *db = layout_db(cfg.data_dir);
    _cleanup_free_ char *seq = layout_tokens_seq(cfg.data_dir);

    int r = mkdir_p(tasks_dir, 0700);
    if (r < 0) {
        error_set_errno(&err, r, "data dir %s", cfg.data_dir);
        goto out;
    }
    systemd_notify("STATUS=Opening the store");
    r = store_open(db, &store, &err);
    if (r >= 0)
        r = tokens_open(db, seq, &tokens, &err);
    if (r >= 0)
        r = first_admin_token(tokens, cfg.data_dir, &err);
    if (r >= 0)
        r = supervisor_new(&cfg, store, backends, &sv, &err);
    if (r >= 0) {
        systemd_notify("STATUS=Recovering the tasks of the last run");
        r = supervisor_start(sv, &err);
    }
    if (r >= 0) {
        struct http_ctx ctx = {.cfg = &cfg,
                               .store = store,
                               .sv = sv,
                               .tokens = tokens,
                               .inherited_fds = listen_fds,
                               .n_inherited = (size_t) n_listen_fds};
        r = http_server_start(&ctx, &http, &err);
    }
    if (r >= 0 && watchdog_start(sv, &watchdog) < 0)
        r = error_set(&err, -EAGAIN, "cannot start the watchdog thread");
    if (r < 0)
        goto out;
    systemd_notifyf("READY=1\nSTATUS=Serving (data dir %s)", cfg.data_dir);
    log_info("ocps-proxyd %s started (pid %d, data dir %s, capacity %g cores, %" PRIu64 " MiB)",
             OCPS_VERSION, (int) getpid(), cfg.data_dir, cfg.capacity_cores,
             cfg.capacity_memory >> 20);

    for (;;) {
        int sig;
        if (sigwait(&mask, &sig) != 0)
            continue;
        if (sig == SIGHUP)
            continue;
        log_info("received %s, stopping (tasks keep running)", strsignal(sig));
        systemd_notify("STOPPING=1\nSTATUS=Stopping (tasks keep running)");
        break;
    }
    status = EXIT_SUCCESS;
out:
    if (err.code < 0) {
        log_error("%s", error_message(&err));
        systemd_notifyf("STATUS=Failed: %s\nERRNO=%d", error_message(&err), -err.code);
    }
    watchdog_stop(watchdog);
    http_server_stop(http);
    supervisor_free(sv);
    tokens_close(tokens);
    store_close(store);
    config_done(&cfg);
    if (status == EXIT_SUCCESS)
        log_info("stopped");
    return status;
}
