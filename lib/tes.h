/*
 * tes: the GA4GH Task Execution Service 1.1 model (issue #13), beside the
 * JobProxy one. This header is the design of the whole TES front door;
 * what exists so far is marked [done], the rest [next].
 *
 * Representation. struct task (task.h) stays the one model the
 * supervisor, the policy and the backends see. A TES task is a struct
 * task whose 'tes' part (struct tes_task below, hung off the task as
 * task->tes [done]) carries what struct task cannot say: the executor
 * list, inputs, outputs, volumes, description, disk_gb, preemptible,
 * zones and the supported backend parameters. It is stored inside the
 * task's spec (the normalised task JSON in tasks.spec) under the key
 * "tes" (tes_task_to_spec_cjson / tes_task_from_spec_cjson, written by
 * task_record_spec [done]), so store.c needs no new column for it and
 * task_record_task() reads it back with the rest; task_to_cjson (the
 * JobProxy form) never shows it. What a TES task does at run time that no JobProxy task
 * has - one log per executor, the copied outputs, the system logs - is
 * kept by the runner in <task_dir>/tes-log.json (LAYOUT_TES_LOG), as
 * exit.json is, and read by the TES handlers (struct tes_task_log,
 * tes_task_log_read [done]); a TES task for which the runner wrote none
 * (one executor run as any container task) gets the record's one
 * executor log. The list's filters are the store's: an index on names
 * and a task_tags table kept by triggers (store.c, schema 5 [done]).
 *
 * The struct task a TES task becomes (tes_task_to_task [done]): user =
 * the account the principal's policy names for TES (below); name = name;
 * container = the FIRST executor (image, command as an argument vector,
 * never a shell string) so the JobProxy view and every check that looks
 * at one image (image policy, pulls) see a real one; env/workdir = the
 * first executor's; cores = cpu_cores; memory = ram_gb GiB (TES says GB;
 * read as 2^30 bytes, which never gives a task less than asked, and is
 * how a bare JobProxy memory number reads already); tags = tags;
 * cputime, walltime and priority from the supported backend_parameters.
 * The JobProxy State of a TES task is its state, exit code (the failing
 * executor's, or the last one's) and reason, as for any task [done: the
 * JobProxy GET shows it as far as its fields go, nothing added].
 *
 * A JobProxy task in TES (tes_task_from_task [done]): one executor from
 * its container (image, argv; a shell string as ["/bin/sh", "-c", s];
 * a command task without a container has image "" since TES requires a
 * string and there is none), env and workdir; stdout/stderr are NOT
 * mapped (they are host paths, TES's are container paths); cores ->
 * cpu_cores (rounded up), memory -> ram_gb; name, tags. Its one executor
 * log comes from the record: started/finished/exit_code, once it ended.
 *
 * Running (docker backend only; the process backend refuses a task with
 * more than one container's worth through backend->handles()
 * (tes_task_needs_runner) [done], and runs no images anyway) [done,
 * backends/docker/tes-run.c with lib/tes-stage.h]: one runner runs the
 * whole task: INITIALIZING = the inputs staged (tes-stage.c, as the
 * task's account with lib/util/as-user.c: content written, file:// and
 * host paths copied - held to the principal's mount prefixes at create
 * by policy-check.c, resolved again and refused when never mountable at
 * copy - or bind-mounted read-only when streamable, http(s) through
 * lib/rest with a size cap (TES_STAGE_MAX_DOWNLOAD), any other scheme ->
 * SYSTEM_ERROR "inputs[i]: no storage for the URL scheme \"s3\"" through
 * the struct tes_storage {scheme, get, put} table left for plugins);
 * then RUNNING = for each executor in order one container
 * (ocps-<id>-<index>, create.c as for any task with the executor's
 * image, command, env, workdir); stdin from an in-container path by
 * wrapping the command in the image's /bin/sh ("exec \"$@\" < \"$0\""),
 * only when stdin is given; stdout and stderr go to the task's output
 * files as every task's do (the logs endpoint serves them whole) and are
 * copied to the executor's stdout/stderr paths in the mapping when it
 * ends; the task stops at the first failure unless ignore_error (a
 * cancel, a limit or a start failure stop it all the same; a last
 * executor that fails with ignore_error leaves the task COMPLETE). Every
 * container path that an input, an output, a volume or a stdio path
 * names is mapped to the host directory <task_dir>/tes/root/<path>
 * (owned by the account, made and read relative to an fd with no
 * symlink followed) and bind-mounted at that same path in every executor
 * (Funnel's worker/file_mapper.go), so all executors share volumes,
 * inputs and outputs. Bind DIRECTORIES, never single files: Funnel
 * learnt that a file bind mount makes mv/unlink of an input fail with
 * EBUSY inside the container; a FILE input or output is bound through
 * its parent directory (a file directly under / alone), a DIRECTORY
 * one and a volume as itself, a wildcard output through its
 * path_prefix, and a directory inside one bound already is not bound
 * again; a streamable input is the one read-only bind of the host path.
 * /tmp is mapped too, as Funnel does. A task with one executor and
 * nothing to share gets no mapping: its container is made exactly as a
 * JobProxy task's. After the last executor - and after a failure too,
 * as Funnel does, but not after a cancel - the outputs are copied from
 * the mapping to their URLs as the account (file:// or host paths;
 * path_prefix wildcards matched component by component with fnmatch(3)
 * in the mapping, no symlink followed), each copied file recorded (url,
 * path, size); a failed copy makes a task that had completed a
 * SYSTEM_ERROR. A cancel kills the running executor's container and
 * stages nothing more. The runner writes tes-log.json before anything
 * runs and whenever an executor ends. A daemon restart resumes the task
 * [done, tes-run.c]: tes-run.json (LAYOUT_TES_RUN), written before each
 * executor's container is made and once its end is logged, says where
 * it was; a running executor's container is followed (never started
 * again), an ended one's exit read from dockerd, then the rest runs as
 * usual; without tes-run.json it was staging inputs, and recovery says
 * it never began, so it is started again from an empty mapping (inputs
 * are idempotent). disk_gb as a size-limited volume is [not done]: Docker
 * binds cannot be size-limited without a quota-capable storage driver.
 *
 * Endpoints (lib/http/tes-handlers.c) [done]: GET /service-info (its
 * id, name, organization and storage from the config's tes: section),
 * GET /tasks, GET /tasks/{id}, POST /tasks (200 {"id"}, not 201) and
 * POST /tasks/{id}:cancel (200 {}; supervisor_cancel: an ended task is
 * left as it ended, never deleted). disk_gb [done at create]: a task
 * asking more than the data dir's filesystem has free is 400 naming
 * resources.disk_gb; a size-limited volume: see Running.
 *
 * Ids: the task id is our UUID (36 characters of [0-9a-f-]): no '/' or
 * ':', so "/tasks/{id}:cancel" routes without ambiguity.
 *
 * States: enum task_state already uses TES's names (QUEUED,
 * INITIALIZING, RUNNING, COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR,
 * CANCELING, CANCELED); task_state_to_string() is the wire value. TES's
 * UNKNOWN, PAUSED and PREEMPTED are never produced; a ?state= of one of
 * them is valid and matches nothing (list_params in tes-handlers.c).
 *
 * Account: TES has no user field. The principal's policy entry gets
 * "tes_user: NAME" [done, policy.h/policy.c], added to its run_as;
 * without it a unix-peer principal runs as itself and any other
 * principal's TES create is 403 "no account for TES tasks: set tes_user
 * in the policy". The 'user' never appears in a TES reply.
 *
 * Wire rules (py-tes refuses unknown fields): replies carry only the
 * spec's fields; size_bytes is a string; times RFC 3339; a task log
 * always has "logs" and "outputs"; every executor log has "exit_code".
 * Create is strict on types and required fields (400 naming the field
 * by its path, as task-validate.c does) and lenient on what clients
 * rely on: unknown URL schemes, inputs without type, streamable,
 * read-only fields sent back (id, state, logs, creation_time: ignored),
 * unknown members (ignored), unsupported backend_parameters when not
 * strict (dropped and named in a system log, as the spec says they must
 * not be stored); an unsupported one with backend_parameters_strict is
 * 400.
 */
#pragma once

#include "task.h"
#include "util/error.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>

enum tes_file_type {
    TES_FILE,
    TES_DIRECTORY,
    _TES_FILE_TYPE_MAX,
    _TES_FILE_TYPE_INVALID = -EINVAL,
};

const char *tes_file_type_to_string(enum tes_file_type t);
enum tes_file_type tes_file_type_from_string(const char *s);

enum tes_view {
    TES_VIEW_MINIMAL, /* id and state */
    TES_VIEW_BASIC,   /* all but executor stdout/stderr, input content, system_logs */
    TES_VIEW_FULL,
    _TES_VIEW_MAX,
    _TES_VIEW_INVALID = -EINVAL,
};

const char *tes_view_to_string(enum tes_view v);
enum tes_view tes_view_from_string(const char *s); /* exact, as the spec's enum */

struct tes_executor {
    char *image;    /* required */
    char **command; /* required, non-empty, NULL-terminated */
    char *workdir;  /* container paths, absolute; NULL when not given */
    char *stdin_path;
    char *stdout_path;
    char *stderr_path;
    struct task_kv *env;
    size_t n_env;
    bool ignore_error;
};

struct tes_input {
    char *name, *description;
    char *url;     /* NULL when content is given (the spec: url is then ignored) */
    char *path;    /* required, absolute */
    char *content; /* NULL when not given */
    enum tes_file_type type;
    bool type_given; /* the spec lets clients leave it out; the server fills it in */
    bool streamable;
};

struct tes_output {
    char *name, *description;
    char *url;         /* required */
    char *path;        /* required, absolute; may hold POSIX wildcards */
    char *path_prefix; /* required when path has wildcards */
    enum tes_file_type type;
    bool type_given;
};

/* The backend parameters this server supports (service-info lists them),
 * matched case-insensitively; each maps to a struct task field. */
#define TES_BACKEND_PARAMETERS "walltime", "cputime", "priority"

struct tes_resources {
    int cpu_cores;  /* 0 = not given */
    double ram_gb;  /* 0 = not given */
    double disk_gb; /* 0 = not given */
    bool preemptible, preemptible_given;
    char **zones;                       /* NULL when not given */
    struct task_kv *backend_parameters; /* supported ones only, keys lower-cased */
    size_t n_backend_parameters;
    bool backend_parameters_strict;
    bool given; /* a resources object was sent */
};

struct tes_task {
    char *name, *description;
    struct tes_executor *executors; /* at least one */
    size_t n_executors;
    struct tes_input *inputs;
    size_t n_inputs;
    struct tes_output *outputs;
    size_t n_outputs;
    char **volumes; /* absolute container paths; NULL when none */
    struct tes_resources resources;
    struct task_kv *tags;
    size_t n_tags;
    /* Unsupported backend parameters dropped at create (not strict): said
     * in the task log's system_logs, never stored as parameters. */
    char **ignored_parameters;
};

#define TES_MAX_EXECUTORS     256
#define TES_MAX_FILES         4096       /* inputs, outputs, volumes each */
#define TES_MAX_CONTENT       (1U << 20) /* an input's content (the spec asks for >= 128 KiB) */
#define TES_MAX_PAGE_SIZE     2047       /* "must be less than 2048" */
#define TES_DEFAULT_PAGE_SIZE 256

struct tes_task *tes_task_free(struct tes_task *t);
static inline void tes_task_freep(struct tes_task **t)
{
    tes_task_free(*t);
}
#define _cleanup_tes_task_ _cleanup_(tes_task_freep)

/*
 * [done, tes-parse.c] A tesTask request body to a struct tes_task. On
 * failure -EINVAL (400) with a message naming the field by its path
 * ("executors[1].command: is required"), or -EBADMSG for a body that is
 * not JSON; *ret is untouched.
 */
int tes_task_from_cjson(const cJSON *root, struct tes_task **ret, struct error *err);
int tes_task_parse(const char *buf, size_t len, struct tes_task **ret, struct error *err);

/* [done, tes-task.c] A JobProxy task as a one-executor TES task (see above). */
struct tes_task *tes_task_from_task(const struct task *t);

/* [done, tes-task.c] The struct task a TES task runs as (see above),
 * through the one validator: what it refuses (a memory under 4 MiB, a
 * workdir with "..") is -EINVAL naming the task's field, prefixed "as a
 * task of this server: ". account is the policy's (tes_user). The TES
 * part itself is the caller's to hang on it (t->tes = tt). */
int tes_task_to_task(const struct tes_task *tt, const char *account, struct task **ret,
                     struct error *err);

/* [done, tes-task.c] The stored form of a TES task: its tesTask fields
 * (the FULL view without id, state, logs, creation_time) plus
 * "ignored_parameters", kept as task->tes in the spec under "tes"
 * (task_record_spec, store.h). from_spec is -EINVAL on a stored form the
 * parser refuses. tes_task_copy goes through that form. */
cJSON *tes_task_to_spec_cjson(const struct tes_task *tt);
int tes_task_from_spec_cjson(const cJSON *j, struct tes_task **ret, struct error *err);
struct tes_task *tes_task_copy(const struct tes_task *tt);

/* [done] Whether the task needs more than one container can do alone:
 * executors past the first, inputs, outputs, volumes, or stdin/stdout/
 * stderr paths. Only the docker backend's TES runner runs those; the
 * process backend's handles() says no to them (and to every container). */
bool tes_task_needs_runner(const struct tes_task *tt);

/* What a task did, for its TES log (tes-log.json for a TES task; built
 * from the record for a JobProxy one). */
struct tes_executor_log {
    usec_t start, end; /* 0 = not known */
    int exit_code;
    char *stdout_tail, *stderr_tail; /* FULL view only; NULL = "" omitted */
};

struct tes_output_log {
    char *url, *path;
    uint64_t size_bytes;
};

struct tes_task_log {
    usec_t start, end;
    struct tes_executor_log *logs; /* only executors that ended (or could not start) */
    size_t n_logs;
    struct tes_output_log *outputs;
    size_t n_outputs;
    char **system_logs; /* FULL view only */
    struct task_kv *metadata;
    size_t n_metadata;
};

void tes_task_log_done(struct tes_task_log *l);

/* [done, tes-json.c] A tesTaskLog in view v (BASIC leaves out the
 * executors' stdout/stderr and system_logs). */
cJSON *tes_task_log_to_cjson(const struct tes_task_log *l, enum tes_view v);

/*
 * [done, tes-log.c] <task_dir>/tes-log.json (LAYOUT_TES_LOG): the task
 * log a TES task's runner keeps, in the spec's tesTaskLog FULL shape
 * (tes-log.c has the exact format). The runner rewrites it whole each
 * time it has something new (an executor ended, outputs copied, a system
 * log), keeping each executor's stdout/stderr tail to TES_LOG_TAIL bytes
 * (the whole output is the task's stdout/stderr files, served by the
 * logs endpoint), and it is mode 0600 and owned by the daemon.
 *
 * tes_task_log_write: the file replaced atomically (fsync'd with sync);
 * -EFBIG past TES_LOG_MAX, -errno otherwise. tes_task_log_read: *ret
 * filled (tes_task_log_done frees it); -ENOENT when the runner wrote
 * none yet, -EBADMSG for a file not of that shape, -EFBIG past
 * TES_LOG_MAX; *ret untouched on failure. tes_task_log_parse: the same
 * from a string.
 */
#define TES_LOG_TAIL (16U << 10)
#define TES_LOG_MAX  (16U << 20)
int tes_task_log_write(const char *task_dir, const struct tes_task_log *l, bool sync);
int tes_task_log_read(const char *task_dir, struct tes_task_log *ret);
int tes_task_log_parse(const char *buf, struct tes_task_log *ret);

/* [done, tes-log.c] An executor log's stdout or stderr: the last
 * TES_LOG_TAIL bytes of [from, to) of the output file rfd (readable),
 * not from the middle of a character, bytes that are not UTF-8 as '?'
 * (it goes into JSON). NULL when there are none. */
char *tes_log_tail(int rfd, off_t from, off_t to);

/* Everything one tesTask reply says. */
struct tes_task_view {
    const char *id;
    enum task_state state;
    usec_t created;
    const struct tes_task *task;
    const struct tes_task_log *log; /* NULL: none yet ("logs": [] in BASIC and FULL) */
};

/* [done, tes-json.c] A tesTask object in view v: exactly the spec's fields. */
cJSON *tes_task_to_cjson(const struct tes_task_view *tv, enum tes_view v);

/* What service-info says that the config decides. */
struct tes_service_info {
    const char *id; /* reverse domain name, e.g. "org.example.ocps-proxy" */
    const char *name;
    const char *organization_name, *organization_url;
    const char *version;  /* the daemon's */
    char *const *storage; /* NULL-terminated URL prefixes it can read and write; may be NULL */
};

/* [done] GET /service-info: type {org.ga4gh, tes, 1.1.0}, the supported
 * backend parameters, and the fields above. */
cJSON *tes_service_info_to_cjson(const struct tes_service_info *si);
