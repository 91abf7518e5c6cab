/*
 * ocps-proxy, the command-line client: shared declarations. main.c parses
 * the global options before the command and dispatches through one table
 * of subcommands; each subcommand parses its own options, the global ones
 * among them, with cli_getopt() and returns the process's exit code.
 */
#pragma once

#include "util/error.h"
#include "util/json.h"
#include "util/util.h"

#include <cjson/cJSON.h>
#include <getopt.h>

/* Exit codes beyond a task's own. */
#define EXIT_TASK_FAILED 1 /* ended in an error state without an exit code; server errors */
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3

enum output {
    OUTPUT_TABLE,
    OUTPUT_JSON,
    OUTPUT_YAML,
    _OUTPUT_MAX,
    _OUTPUT_INVALID = -EINVAL,
};
const char *output_to_string(enum output o);
enum output output_from_string(const char *s);

struct cli {
    const char *server;     /* as given: http://host:port or unix:/path */
    const char *token;      /* --token, or NULL */
    const char *token_file; /* --token-file, or NULL */
    const char *cacert;     /* --cacert: the CAs the https server's certificate must chain to */
    const char *cert;       /* --cert: the client certificate (mTLS), or NULL */
    const char *key;        /* --key: its key; NULL: in the --cert file */
    enum output output;
    bool color;
};

struct command {
    const char *name;
    const char *summary;
    int (*run)(struct cli *c, int argc, char **argv);
    const struct option *options; /* its own long options (for completion), or NULL */
};

/* The commands' own long options, shared with the completion generator. */
extern const struct option submit_options[], list_options[], logs_options[], watch_options[];

/* ---- options.c: the global options and the option parser of every command ---- */

/* A global option: every command takes it, before the command or among its
 * own options and arguments (up to "--"). opt.val is its short letter, or
 * from OPT_GLOBAL on for a long-only one; no command uses these vals, nor
 * 'h', for its own options. */
struct global_option {
    struct option opt;
    const char *arg;    /* the value's name in --help, or NULL */
    const char *help;   /* lines under each other in --help */
    const char *values; /* what bash completes its value with, or NULL */
};
#define OPT_GLOBAL 0x1000
extern const struct global_option global_options[]; /* ends with an empty entry */
/* Their lines in a --help text. */
void global_options_help(FILE *f);

/* What cli_getopt needs of a command. */
struct cmd_opts {
    const char *name;              /* for messages; NULL for main, before the command */
    const char *shortopts;         /* its own; "+" first: options end at the first argument */
    const struct option *longopts; /* its own, or NULL */
    const char *help;              /* printed for -h/--help; NULL: 'h' is returned */
};

#define OPTS_END  (-1) /* the options are over: the arguments are argv[optind...] */
#define OPTS_EXIT (-2) /* the command returns *ret_exit */
/* getopt_long over the command's own options, --help and the global
 * options, permuting argv as getopt does. Applies the global options to c
 * itself and returns the command's next own option; OPTS_END; or OPTS_EXIT
 * after printing the help (*ret_exit = 0) or a usage error (*ret_exit =
 * EXIT_USAGE). A command's parse starts at optind = 0 (main sets it). */
int cli_getopt(struct cli *c, const struct cmd_opts *o, int argc, char **argv, int *ret_exit);

/* ---- auth.c: the credentials: a bearer token, a client certificate ---- */

/* The token to send (NULL: none), found once: --token, --token-file,
 * $OCPS_PROXY_TOKEN, then, unless a client certificate is given, for a
 * server on this host the daemon's admin token file when it is the
 * caller's own. Checks the TLS options once too (an https server; files
 * that can be read). Returns 0, or EXIT_USAGE after saying why (an
 * unreadable --token-file, --cert with an http server). Any thread. */
int cli_token(const struct cli *c, const char **ret);
/* Whether an http(s) URL names a loopback host (localhost, 127.0.0.0/8, ::1). */
bool cli_url_is_loopback(const char *url);

/* ---- client.c: HTTP to the daemon (libcurl) ---- */

struct reply {
    long status;
    char *body;
    size_t len;
    char *content_type;
};
void reply_done(struct reply *r);

/* One request; body may be NULL. Returns 0 with *ret filled (any HTTP
 * status), or EXIT_UNREACHABLE after printing which address was tried. */
int cli_request(struct cli *c, const char *method, const char *path, const char *content_type,
                const char *body, size_t len, struct reply *ret);
/* GET path, writing the body to fd as it arrives (logs?follow=1). */
int cli_stream(struct cli *c, const char *path, int fd, struct reply *ret);
/* The body as JSON, or prints the server's error ("ocps-proxy: 404: no task x")
 * and returns NULL. */
cJSON *reply_json(const struct reply *r, long want_status);
/* Prints "ocps-proxy: <status>: <message>" for an error reply. */
void reply_print_error(const struct reply *r);

/* ---- output.c ---- */

void print_json(const cJSON *j);
void print_yaml(const cJSON *j);
/* A table: n_cols headers, rows of strings (NULL shows as "-"). */
struct table {
    size_t n_cols, n_rows;
    const char **headers;
    char **cells;  /* n_rows * n_cols, owned */
    int state_col; /* coloured by state, -1 for none */
};
/* Takes the row's strings; shows them through term_safe(). */
void table_add(struct table *t, char **row);
/* A copy fit for a terminal: control characters (C0, DEL, C1) as "\xNN",
 * NULL as "-". Anything a task's owner wrote goes through it. */
char *term_safe(const char *s);
void table_print(const struct table *t, bool color);
void table_done(struct table *t);
const char *state_color(const char *code);
char *format_age(const char *rfc3339);

/* ---- the subcommands ---- */

int cmd_submit(struct cli *c, int argc, char **argv);
int cmd_state(struct cli *c, int argc, char **argv);
int cmd_list(struct cli *c, int argc, char **argv);
int cmd_get(struct cli *c, int argc, char **argv);
int cmd_logs(struct cli *c, int argc, char **argv);
int cmd_wait(struct cli *c, int argc, char **argv);
int cmd_delete(struct cli *c, int argc, char **argv);
int cmd_ping(struct cli *c, int argc, char **argv);
int cmd_watch(struct cli *c, int argc, char **argv);
int cmd_version(struct cli *c, int argc, char **argv);

/* Every task's State (all pages); only the active ones unless all. NULL
 * after an error, with the exit code in *ret_exit. */
cJSON *fetch_states(struct cli *c, bool all, int *ret_exit);
/* The States as a table, JSON or YAML, by c->output. */
void print_states(struct cli *c, cJSON *states);

/* Shared by submit --wait and wait: follows the task to its end without
 * polling (logs?follow=1), then returns its exit code (or 1). */
int wait_task(struct cli *c, const char *id, bool follow_output);
/* A usage error: prints it and the command's help hint; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) _printf_(2, 3);
