/*
 * token: `ocps-proxyd token create|list|revoke`, the admin's tool for the
 * bearer tokens (tokens.h). It works on the data dir's store itself, with
 * or without a daemon running on it (SQLite's WAL lets both write), and a
 * running daemon sees each change at its next request. It makes every
 * file it creates for root alone (umask 077). Exit codes: 0, 1 an error,
 * 2 a usage error.
 */
#include "config.h"
#include "layout.h"
#include "ocps-proxyd.h"
#include "store.h"
#include "task.h"
#include "tokens.h"

#include <getopt.h>
#include <sys/stat.h>

#define EXIT_USAGE 2

static const char help_text[] =
    "Usage: ocps-proxyd token create [--data-dir DIR] --principal NAME [--expires DURATION] "
    "[--admin]\n"
    "       ocps-proxyd token list [--data-dir DIR]\n"
    "       ocps-proxyd token revoke [--data-dir DIR] ID|TOKEN...\n"
    "Make, list and revoke the bearer tokens of a data dir's daemon, while it runs or not;\n"
    "a running daemon takes a change from its next request on.\n"
    "\n"
    "  -d, --data-dir DIR      the daemon's data dir (default " CONFIG_DEFAULT_DATA_DIR ")\n"
    "  -c, --config FILE       take the data dir from the daemon's config file\n"
    "  -p, --principal NAME    create: who the token stands for (letters, digits, ._@-);\n"
    "                          its policy is the config's principals.NAME, or the default\n"
    "      --expires DURATION  create: valid for this long (90s, 12h, 30d; at most 3650d);\n"
    "                          default: until revoked\n"
    "      --admin             create: the principal is an admin (sees every task)\n"
    "  -h, --help              show this help\n"
    "\n"
    "create prints the new token on stdout, once: the store keeps only its SHA-256.\n"
    "list shows each token's id, principal, state and times, never a token. revoke\n"
    "takes a token's id (or the token itself); requests with it are refused at once.\n"
    "\n"
    "Example:\n"
    "  ocps-proxyd token create --principal ci-bot --expires 30d > ci-bot.token\n"
    "  curl -H \"Authorization: Bearer $(cat ci-bot.token)\" "
    "http://127.0.0.1:8080/v1/jobproxy/state\n";

static int usage(const char *fmt, const char *arg)
{
    fputs("ocps-proxyd token: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'ocps-proxyd token --help'.\n", stderr);
    return EXIT_USAGE;
}

static int fail(const struct error *err)
{
    fprintf(stderr, "ocps-proxyd token: %s\n", error_message(err));
    return EXIT_FAILURE;
}

/* --expires: an absolute time in *ret (0: never). */
static int parse_expires(const char *s, usec_t *ret)
{
    if (streq(s, "never")) {
        *ret = 0;
        return 0;
    }
    uint64_t secs;
    /* A bare number has no obvious unit here: days? seconds? */
    if (is_bare_number(s) || parse_duration(s, 1, &secs) < 0 || secs == 0 ||
        secs > TOKEN_MAX_EXPIRY)
        return -EINVAL;
    *ret = now_realtime() + (usec_t) secs * USEC_PER_SEC;
    return 0;
}

static int create_token(struct tokens *t, const char *principal, bool admin, usec_t expires)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    char text[TOKEN_LEN + 1], id[TOKEN_ID_LEN + 1];
    if (tokens_create(t, principal, admin, expires, text, &err) < 0)
        return fail(&err);
    (void) token_parse(text, id);
    printf("%s\n", text);
    explicit_bzero(text, sizeof(text));
    char ts[32];
    fprintf(stderr, "ocps-proxyd token: token %s of principal %s%s, %s%s; it is not shown again\n",
            id, principal, admin ? " (an admin)" : "",
            expires ? "valid until " : "valid until revoked",
            expires ? format_rfc3339(expires, ts) : "");
    return fflush(stdout) == 0 ? 0 : EXIT_FAILURE;
}

struct row {
    char *cells[7];
};

struct rows {
    struct row *v;
    size_t n;
    usec_t now;
};

static char *time_or(usec_t t, const char *none)
{
    char ts[32];
    return xstrdup(t ? format_rfc3339(t, ts) : none);
}

static int add_row(const struct token_info *info, void *userdata)
{
    struct rows *rs = userdata;
    rs->v = xrealloc(rs->v, (rs->n + 1) * sizeof(*rs->v));
    const char *state = info->revoked                               ? "revoked"
                        : info->expires && info->expires <= rs->now ? "expired"
                                                                    : "valid";
    rs->v[rs->n++] = (struct row){{
        xstrdup(info->id),
        xstrdup(info->principal),
        xstrdup(info->admin ? "yes" : "no"),
        xstrdup(state),
        time_or(info->created, "-"),
        time_or(info->expires, "never"),
        time_or(info->revoked, "-"),
    }};
    return 0;
}

static int list_tokens(struct tokens *t)
{
    static const char *const headers[7] = {"ID",      "PRINCIPAL", "ADMIN",  "STATE",
                                           "CREATED", "EXPIRES",   "REVOKED"};
    _cleanup_error_ struct error err = ERROR_INIT;
    struct rows rs = {.now = now_realtime()};
    int r = tokens_list(t, add_row, &rs, &err);
    size_t width[7];
    for (size_t c = 0; c < 7; c++) {
        width[c] = strlen(headers[c]);
        for (size_t i = 0; i < rs.n; i++)
            width[c] = MAX(width[c], strlen(rs.v[i].cells[c]));
    }
    if (r >= 0)
        for (size_t i = 0; i <= rs.n; i++)
            for (size_t c = 0; c < 7; c++) {
                const char *cell = i == 0 ? headers[c] : rs.v[i - 1].cells[c];
                if (c == 6)
                    printf("%s\n", cell);
                else
                    printf("%-*s  ", (int) width[c], cell);
            }
    for (size_t i = 0; i < rs.n; i++)
        for (size_t c = 0; c < 7; c++)
            free(rs.v[i].cells[c]);
    free(rs.v);
    return r < 0 ? fail(&err) : 0;
}

static int revoke_tokens(struct tokens *t, char **ids, int n)
{
    int status = 0;
    for (int i = 0; i < n; i++) {
        _cleanup_error_ struct error err = ERROR_INIT;
        char id[TOKEN_ID_LEN + 1];
        /* A leaked token can be revoked by pasting it whole. */
        if (token_parse(ids[i], id) < 0) {
            if (!token_id_valid(ids[i])) {
                fprintf(stderr, "ocps-proxyd token: \"%s\" is neither a token's id nor a token\n",
                        ids[i]);
                status = EXIT_FAILURE;
                continue;
            }
            snprintf(id, sizeof(id), "%s", ids[i]);
        }
        int r = tokens_revoke(t, id, &err);
        if (r < 0) {
            fail(&err);
            status = EXIT_FAILURE;
        } else
            printf(r == 0 ? "revoked %s\n" : "%s was revoked already\n", id);
    }
    return status;
}

int token_main(int argc, char **argv)
{
    enum { OPT_EXPIRES = 0x100, OPT_ADMIN };
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"principal", required_argument, NULL, 'p'},
        {"expires", required_argument, NULL, OPT_EXPIRES},
        {"admin", no_argument, NULL, OPT_ADMIN},
        {"help", no_argument, NULL, 'h'},
        {},
    };
    if (argc < 2)
        return usage("%s", "which? create, list or revoke");
    const char *sub = argv[1];
    if (streq(sub, "-h") || streq(sub, "--help")) {
        fputs(help_text, stdout);
        return 0;
    }
    if (!streq(sub, "create") && !streq(sub, "list") && !streq(sub, "revoke"))
        return usage("unknown command \"%s\" (create, list or revoke)", sub);
    bool is_create = streq(sub, "create");

    const char *data_dir = NULL, *config = NULL, *principal = NULL;
    bool admin = false;
    usec_t expires = 0;
    int c;
    optind = 0; /* getopt starts afresh at argv[1] */
    opterr = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "d:c:p:h", opts, NULL)) >= 0) {
        switch (c) {
        case 'd':
            data_dir = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'p':
        case OPT_EXPIRES:
        case OPT_ADMIN:
            if (!is_create)
                return usage("%s takes no --principal, --expires or --admin", sub);
            if (c == 'p')
                principal = optarg;
            else if (c == OPT_ADMIN)
                admin = true;
            else if (parse_expires(optarg, &expires) < 0)
                return usage("--expires wants a duration with a unit up to 3650d (90s, 12h, 30d) "
                             "or never, not \"%s\"",
                             optarg);
            break;
        case 'h':
            fputs(help_text, stdout);
            return 0;
        default:
            return EXIT_USAGE;
        }
    }
    char **args = argv + 1 + optind;
    int n_args = argc - 1 - optind;
    if (is_create && !principal)
        return usage("%s", "create needs --principal NAME");
    if (streq(sub, "revoke") ? n_args < 1 : n_args > 0)
        return usage(streq(sub, "revoke") ? "%s needs a token's id" : "unexpected argument \"%s\"",
                     streq(sub, "revoke") ? sub : args[0]);

    _cleanup_error_ struct error err = ERROR_INIT;
    struct config cfg;
    config_init(&cfg);
    int status = EXIT_FAILURE;
    struct tokens *t = NULL;
    _cleanup_free_ char *db = NULL, *seq = NULL;
    struct stat st;
    if (config && config_load_file(&cfg, config, &err) < 0)
        goto out;
    if (data_dir) {
        free(cfg.data_dir);
        cfg.data_dir = xstrdup(data_dir);
    }
    /* The store, the WAL and anything else made here: root's alone. */
    umask(077);
    db = layout_db(cfg.data_dir);
    seq = layout_tokens_seq(cfg.data_dir);
    if (is_create) {
        /* Before the daemon's first start too; it then writes no admin token. */
        int r = mkdir_p(cfg.data_dir, 0700);
        if (r < 0) {
            error_set_errno(&err, r, "data dir %s", cfg.data_dir);
            goto out;
        }
    } else if (stat(db, &st) < 0) {
        error_set_errno(&err, -errno, "no store in %s (is it the daemon's --data-dir?)",
                        cfg.data_dir);
        goto out;
    }
    if (store_create(db, &err) < 0 || tokens_open(db, seq, &t, &err) < 0)
        goto out;
    status = is_create            ? create_token(t, principal, admin, expires)
             : streq(sub, "list") ? list_tokens(t)
                                  : revoke_tokens(t, args, n_args);
out:
    if (err.code < 0)
        status = fail(&err);
    tokens_close(t);
    config_done(&cfg);
    return status;
}
