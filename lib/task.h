/*
 * task: the one Task model, its state vocabulary, and the one validator.
 *
 * Every wire format (JSON, YAML, XML) is first turned into a cJSON tree
 * (task-json.c, task-yaml.c, task-xml.c) and then into a struct task by
 * task_from_cjson(), which is the only place that knows the fields, their
 * spellings, their units and their limits. YAML and XML scalars arrive as
 * strings; the validator accepts a string wherever it accepts a number.
 *
 * Units (explicit units everywhere; a bare number in the unit of struct
 * task_units, JobProxy's XSD unless the config says otherwise):
 *   memory   bare number = GiB; "256M", "1.5G", "512Mi", "2GiB", "4096K",
 *            "100B" (binary units, as Docker and Slurm read them)
 *   cputime, walltime   bare number = hours; "90s", "15m", "2h", "1d",
 *            "1h30m"; stored rounded up to whole seconds
 *   cores    a positive number, fractions allowed (0.5 = half a CPU)
 *   priority an integer from -1000 to 1000 (default 0)
 * The normalised form (task_to_cjson) writes memory as a string with the
 * largest binary unit that divides it exactly ("256M", "1536M", "4G",
 * "100B") and durations as whole seconds ("7200s"), so a normalised task
 * submitted again is the same task.
 */
#pragma once

#include "util/error.h"
#include "util/util.h"

#include <cjson/cJSON.h>

/* The GA4GH TES state names, one vocabulary for every backend. */
enum task_state {
    TASK_QUEUED,
    TASK_INITIALIZING,
    TASK_RUNNING,
    TASK_COMPLETE,       /* exit 0 */
    TASK_EXECUTOR_ERROR, /* non-zero exit, killed by a limit or a signal, failed to start */
    TASK_SYSTEM_ERROR,   /* the proxy or the backend failed */
    TASK_CANCELING,
    TASK_CANCELED,
    _TASK_STATE_MAX,
    _TASK_STATE_INVALID = -EINVAL,
};

const char *task_state_to_string(enum task_state s);
enum task_state task_state_from_string(const char *s);
/* COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR and CANCELED are final. */
bool task_state_is_final(enum task_state s);

enum mount_mode {
    MOUNT_RW,
    MOUNT_RO,
    _MOUNT_MODE_MAX,
    _MOUNT_MODE_INVALID = -EINVAL,
};

const char *mount_mode_to_string(enum mount_mode m);   /* "RW", "RO" */
enum mount_mode mount_mode_from_string(const char *s); /* case-insensitive */

/*
 * A command: either one string run with "/bin/sh -c" (shell = true,
 * argv = { string, NULL }) or an argument vector run directly.
 */
struct task_cmd {
    char **argv; /* NULL-terminated; NULL when absent */
    bool shell;
};

struct task_port {
    uint16_t host;
    uint16_t container;
};

struct task_mount {
    char *host;      /* absolute path */
    char *container; /* absolute path */
    enum mount_mode mode;
};

struct task_kv {
    char *key;
    char *value;
};

struct tes_task;

struct task_container {
    char *image;         /* required */
    struct task_cmd cmd; /* optional: the image's default when absent */
    struct task_port *ports;
    size_t n_ports;
    struct task_mount *mounts; /* "mounts" or "volumes" on the wire */
    size_t n_mounts;
};

struct task {
    char *user;          /* required */
    char *name;          /* optional */
    struct task_cmd cmd; /* a command task's; a container task's is container->cmd */
    struct task_container *container;
    double cores;    /* 0 = not given (the daemon's default applies) */
    uint64_t memory; /* bytes; 0 = not given */
    /* The unit a bare memory number was read in, 0 when memory carried its
     * own unit (or was not given): a refusal then says how the number was
     * read. Not part of the task (task_to_cjson leaves it out), so a stored
     * task, always in explicit units, does not have it. */
    uint64_t memory_bare_unit;
    uint64_t cputime;  /* seconds; 0 = no limit */
    uint64_t walltime; /* seconds; 0 = no limit */
    /* Among its principal's queued tasks, higher starts first (admission.h). */
    int priority;      /* TASK_MIN_PRIORITY..TASK_MAX_PRIORITY; default 0 */
    char *stdout_path; /* absolute; NULL = a file under the data dir */
    char *stderr_path;
    char *workdir;       /* absolute; NULL = the user's home (or / ) */
    struct task_kv *env; /* in the order given; keys unique */
    size_t n_env;
    struct task_kv *tags; /* keys unique */
    size_t n_tags;
    /* A TES task's own part (tes.h): its executors, inputs, outputs,
     * volumes; NULL for a JobProxy task. Not in task_to_cjson (the
     * JobProxy view): the store keeps it in the spec under "tes"
     * (task_record_spec, store.h). */
    struct tes_task *tes;
    /* The backend the task asks for (TASK_BACKENDS); NULL: the proxy's
     * choice (a container task goes to docker, a command to the config's
     * cmd_backend). */
    char *backend;
};

/* The names a task's backend field takes, as the backends name themselves. */
#define TASK_BACKENDS "process", "docker", "slurm"
/* Whether a backend by this name runs container tasks (docker) or
 * commands (the others). */
static inline bool task_backend_runs_containers(const char *name)
{
    return streq(name, "docker");
}

/* Limits of the validator (absurd values are 400, naming the field). */
#define TASK_MAX_CORES    1024.0
#define TASK_MIN_MEMORY   (4ULL << 20) /* 4 MiB */
#define TASK_MAX_MEMORY   (1ULL << 50) /* 1 PiB */
#define TASK_MAX_DURATION (366ULL * 24 * 3600)
#define TASK_MIN_PRIORITY (-1000)
#define TASK_MAX_PRIORITY 1000
#define TASK_MAX_ARGS     4096
#define TASK_MAX_ENV      1024
#define TASK_MAX_TAGS     64
#define TASK_MAX_PORTS    256
#define TASK_MAX_MOUNTS   256
#define TASK_MAX_STRING   65536 /* any one string */
#define TASK_MAX_NAME     256
#define TASK_MAX_USER     32

struct task *task_new(void);
struct task *task_free(struct task *t);
static inline void task_freep(struct task **t)
{
    task_free(*t);
}
#define _cleanup_task_ _cleanup_(task_freep)
struct task *task_copy(const struct task *t);
/* For the validator's partial results. Accept NULL. */
struct task_container *task_container_free(struct task_container *c);
void task_kv_free(struct task_kv *kv, size_t n);

/*
 * What a bare number (one without a unit) means in a task. JobProxy's XSD
 * says GB for memory and hours for cputime; its Chronos backend passed
 * memory on as MB, so sites whose clients followed that set bare_units in
 * the config (config.h).
 */
struct task_units {
    uint64_t memory; /* bytes in one bare unit of memory */
    uint64_t time;   /* seconds in one bare unit of cputime and walltime */
};

extern const struct task_units task_units_jobproxy; /* GB and hours */

/*
 * The validator: builds a task from a cJSON object in any of the accepted
 * spellings, shapes and units; units says what a bare number means (NULL:
 * task_units_jobproxy). On failure returns -EINVAL with a message that
 * names the field by its path ("container.ports[1].host: must be an
 * integer between 1 and 65535") and, for a bare number, says how it was
 * read; *ret is untouched.
 */
int task_from_cjson(const cJSON *root, const struct task_units *units, struct task **ret,
                    struct error *err);

/* The normalised task (canonical spellings and units, no defaults invented). */
cJSON *task_to_cjson(const struct task *t);

/* Each wire format to a cJSON tree. -EBADMSG (400) with the parser's words
 * and position on malformed input (a duplicate key is named, not placed). */
int task_json_parse(const char *buf, size_t len, cJSON **ret, struct error *err);
int task_yaml_parse(const char *buf, size_t len, cJSON **ret, struct error *err);
int task_xml_parse(const char *buf, size_t len, cJSON **ret, struct error *err);

enum task_format {
    TASK_FORMAT_JSON,
    TASK_FORMAT_YAML,
    TASK_FORMAT_XML,
    _TASK_FORMAT_MAX,
    _TASK_FORMAT_INVALID = -EINVAL,
};

/* From a Content-Type value (parameters such as "; charset=utf-8" ignored).
 * -EMEDIUMTYPE (415) for anything else. */
int task_format_from_content_type(const char *content_type, enum task_format *ret);

/* Parse + validate in one call; units as for task_from_cjson. */
int task_parse(enum task_format f, const char *buf, size_t len, const struct task_units *units,
               struct task **ret, struct error *err);

/* Units, shared with the config file and the CLI. 'unit' is the
 * multiplier applied to a bare number (bytes or seconds). */
int parse_size(const char *s, uint64_t unit, uint64_t *ret);
int parse_duration(const char *s, uint64_t unit, uint64_t *ret);
/* Whether s is a bare number ("128", " 0.5 "), the kind 'unit' applies to. */
bool is_bare_number(const char *s);
/* A unit alone, as the config file names the unit of bare numbers: "M",
 * "MB", "MiB", "G", "B", ... for sizes, "s", "min", "h", "d" for
 * durations, to its factor. -EINVAL for anything else (a number too). */
int parse_size_unit(const char *s, uint64_t *ret);
int parse_duration_unit(const char *s, uint64_t *ret);
/* What a bare number is in, for messages: "GB, JobProxy's unit", "MB, as
 * this proxy is set up". */
char *bare_size_unit(uint64_t unit, char buf[static 64]);
char *bare_duration_unit(uint64_t unit, char buf[static 64]);
/* How a bare number was read, for a refusal to say: "128 was read as
 * 128 GiB (a bare number is in GB, JobProxy's unit); write \"128M\" for
 * megabytes". value is what was read (bytes, seconds), unit the factor it
 * was read with. The caller frees the string. */
char *bare_size_reading(uint64_t bytes, uint64_t unit);
char *bare_duration_reading(uint64_t seconds, uint64_t unit);
/* Canonical forms written by task_to_cjson: "256M", "7200s". buf >= 32. */
char *format_size(uint64_t bytes, char buf[static 32]);
char *format_duration(uint64_t seconds, char buf[static 32]);
/* Sizes in words people read, the one form of every message and reason:
 * "64 MiB", "1 GiB", "21.5 GiB" (one decimal, rounded down, when not a
 * whole number of the largest unit), "1000 bytes". buf >= 32. */
char *format_size_human(uint64_t bytes, char buf[static 32]);
