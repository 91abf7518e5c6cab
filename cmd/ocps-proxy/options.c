/*
 * options: the global options (-s/--server, -o/--output, --token,
 * --token-file, --cacert, --cert, --key) and the one option parser every
 * command uses. A command hands cli_getopt() its own
 * getopt options; cli_getopt() adds -h/--help and the global options to
 * them, so that the global ones are taken before the command (main's own
 * parse) and anywhere among the command's options and arguments up to
 * "--", in every form getopt_long knows (-o json, -ojson, --output json,
 * --output=json). The messages for refused options are ours (exit 2).
 */
#include "cli.h"

#include <assert.h>

static const char *const output_table[] = {
    [OUTPUT_TABLE] = "table",
    [OUTPUT_JSON] = "json",
    [OUTPUT_YAML] = "yaml",
};
DEFINE_STRING_TABLE_LOOKUP(output, enum output, output_table)

/* A new global option is an entry here, its case in global_option() and,
 * for a long-only one, a val from OPT_GLOBAL on. */
const struct global_option global_options[] = {
    {{"server", required_argument, NULL, 's'},
     "URL",
     "http://HOST:PORT, https://HOST:PORT or unix:/PATH\n(default: $OCPS_PROXY_URL, then "
     "http://127.0.0.1:8080)",
     NULL},
    {{"output", required_argument, NULL, 'o'},
     "FMT",
     "table (default), json or yaml",
     "table json yaml"},
    {{"token", required_argument, NULL, OPT_GLOBAL},
     "TOKEN",
     "the bearer token to send (other local users may see it\nin ps: prefer --token-file or "
     "$OCPS_PROXY_TOKEN)",
     NULL},
    {{"token-file", required_argument, NULL, OPT_GLOBAL + 1},
     "FILE",
     "send the token in FILE. Default: $OCPS_PROXY_TOKEN, then\nfor a server on this host the "
     "daemon's admin.token\n(in $OCPS_PROXY_DATA_DIR or /var/lib/ocps-proxy) if\nit is yours alone",
     NULL},
    {{"cacert", required_argument, NULL, OPT_GLOBAL + 2},
     "FILE",
     "https: trust only the CA certificates in FILE (PEM)\nfor the server's certificate "
     "(default: the system's)",
     NULL},
    {{"cert", required_argument, NULL, OPT_GLOBAL + 3},
     "FILE",
     "https: present the client certificate in FILE (PEM);\non a listener with a client CA "
     "its CN names you",
     NULL},
    {{"key", required_argument, NULL, OPT_GLOBAL + 4},
     "FILE",
     "the key of --cert (PEM; default: in the --cert file)",
     NULL},
    {},
};

/* Applies one global option to c: 0, or EXIT_USAGE after saying why. */
static int global_option(struct cli *c, const char *cmd, int val, const char *arg)
{
    switch (val) {
    case 's':
        if (!startswith(arg, "http://") && !startswith(arg, "https://") &&
            !startswith(arg, "unix:/"))
            return usage_error(
                cmd, "--server wants http://HOST:PORT, https://HOST:PORT or unix:/PATH, not \"%s\"",
                arg);
        c->server = arg;
        return 0;
    case 'o': {
        enum output out = output_from_string(arg);
        if (out < 0)
            return usage_error(cmd, "--output wants table, json or yaml, not \"%s\"", arg);
        c->output = out;
        return 0;
    }
    case OPT_GLOBAL:
    case OPT_GLOBAL + 1:
        if (val == OPT_GLOBAL ? c->token_file != NULL : c->token != NULL)
            return usage_error(cmd, "give --token or --token-file, not both");
        if (val == OPT_GLOBAL)
            c->token = arg;
        else
            c->token_file = arg;
        return 0;
    case OPT_GLOBAL + 2:
        c->cacert = arg;
        return 0;
    case OPT_GLOBAL + 3:
        c->cert = arg;
        return 0;
    case OPT_GLOBAL + 4:
        c->key = arg;
        return 0;
    default:
        assert(!"a global option without its case in global_option()");
        return EXIT_USAGE;
    }
}

void global_options_help(FILE *f)
{
    for (const struct global_option *g = global_options; g->opt.name; g++) {
        char letter[5] = "    ";
        if (g->opt.val < OPT_GLOBAL)
            snprintf(letter, sizeof(letter), "-%c, ", g->opt.val);
        _cleanup_free_ char *left =
            xasprintf("%s--%s%s%s", letter, g->opt.name, g->arg ? " " : "", g->arg ? g->arg : "");
        fprintf(f, "  %-21s ", left);
        /* Continuation lines under the first. */
        for (const char *l = g->help; *l;) {
            size_t n = strcspn(l, "\n");
            fprintf(f, "%s%.*s\n", l == g->help ? "" : "                        ", (int) n, l);
            l += n + (l[n] == '\n');
        }
    }
}

static bool is_global(int val)
{
    for (const struct global_option *g = global_options; g->opt.name; g++)
        if (g->opt.val == val)
            return true;
    return false;
}

/* Why getopt refused argv[optind - 1] (r is ':' for a missing value, else
 * '?'); returns EXIT_USAGE. */
static int refused(const char *cmd, int r, char **argv, const char *shortopts,
                   const struct option *longopts)
{
    const char *word = argv[optind - 1];
    if (r == ':')
        return usage_error(cmd, "option \"%s\" wants a value", word);
    if (optopt == 0) { /* a long option: unknown, or the start of several */
        size_t n = strcspn(word + 2, "="), matches = 0;
        for (const struct option *l = longopts; l->name; l++)
            matches += strncmp(l->name, word + 2, n) == 0;
        return usage_error(cmd, "%s option \"%s\"", matches > 1 ? "ambiguous" : "unknown", word);
    }
    /* A known option refused: a long one given "=VALUE" though it takes none. */
    if (optopt >= 256 || (optopt != ':' && strchr(shortopts, optopt)))
        return usage_error(cmd, "option \"%.*s\" takes no value", (int) strcspn(word, "="), word);
    return usage_error(cmd, "unknown option \"-%c\"", optopt);
}

int cli_getopt(struct cli *c, const struct cmd_opts *o, int argc, char **argv, int *ret_exit)
{
    static const struct option help = {"help", no_argument, NULL, 'h'};
    size_t n_own = 0, n_global = ELEMENTSOF(global_options) - 1;
    while (o->longopts && o->longopts[n_own].name)
        n_own++;

    /* The command's own options, then --help, then the global ones. */
    struct option longopts[n_own + 1 + n_global + 1];
    for (size_t i = 0; i < n_own; i++) {
        assert(o->longopts[i].val != 'h' && !is_global(o->longopts[i].val));
        longopts[i] = o->longopts[i];
    }
    longopts[n_own] = help;
    for (size_t i = 0; i < n_global; i++)
        longopts[n_own + 1 + i] = global_options[i].opt;
    longopts[n_own + 1 + n_global] = (struct option){0};

    /* "+" stays first; ":" then makes getopt quiet and report a missing
     * value as ':'. */
    const char *own = o->shortopts;
    char shortopts[strlen(own) + 2 * n_global + 4], *p = shortopts;
    if (*own == '+')
        *p++ = *own++;
    *p++ = ':';
    *p++ = 'h';
    p = stpcpy(p, own);
    for (const struct global_option *g = global_options; g->opt.name; g++)
        if (g->opt.val < OPT_GLOBAL) {
            assert(!strchr(own, g->opt.val));
            *p++ = (char) g->opt.val;
            if (g->opt.has_arg == required_argument)
                *p++ = ':';
        }
    *p = '\0';

    for (;;) {
        int r = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (r == 'h' && o->help) {
            fputs(o->help, stdout);
            fputs("\nGlobal options, here or before the command:\n", stdout);
            global_options_help(stdout);
            *ret_exit = 0;
            return OPTS_EXIT;
        }
        if (r == '?' || r == ':') {
            *ret_exit = refused(o->name, r, argv, shortopts, longopts);
            return OPTS_EXIT;
        }
        if (!is_global(r))
            return r; /* the command's own, 'h' for main, or -1 at the end */
        int e = global_option(c, o->name, r, optarg);
        if (e != 0) {
            *ret_exit = e;
            return OPTS_EXIT;
        }
    }
}
