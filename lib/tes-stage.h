/*
 * tes-stage: a TES task's files on the host (issue #13, tes.h's design):
 * the host mapping its executors share, its inputs put in place before
 * the first executor, its outputs copied out after the last one (or after
 * a failure). Used by the Docker backend's TES runner
 * (backends/docker/tes-run.c); no dockerd here, so it is unit-tested on
 * its own (test/unit/test-tes-stage.c).
 *
 * The host mapping. Every container path a volume, an input or an output
 * names is the host path <task_dir>/tes/root/<path> (Funnel's
 * worker/file_mapper.go). The daemon makes <task_dir>/tes/root, owned by
 * the task's account, and holds it open (root_fd); everything under it
 * is made and read as that account, relative to root_fd, with no symlink
 * followed (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): what an
 * executor left there (a symlink to /etc/shadow) reaches nothing its
 * account could not. <task_dir> itself stays the daemon's (0700): the
 * account never needs to search it, as every path starts at root_fd.
 *
 * Binds (tes_stage_binds): DIRECTORIES, never single files - a file bind
 * makes mv or unlink of an input fail with EBUSY in the container
 * (Funnel learnt it). A FILE input or output is bound through its parent
 * directory, a DIRECTORY one and a volume as itself, a wildcard output
 * through its path_prefix; a directory under another bound one is not
 * bound again (it is inside it already). A file directly under / has no
 * parent to bind: it is bound alone. /tmp is mapped too, as Funnel does.
 * A streamable input (file:// or a host path) is instead a read-only
 * bind of the host path itself, after the checks below.
 *
 * Host paths (file:// URLs and absolute paths) are resolved and read or
 * written as the task's account (lib/util/as-user.c; root never opens a
 * path a client named), and one that resolves into what is never
 * mountable (policy_never_mountable: /etc, /proc, the data directory,
 * the Docker socket's directory, ...) is refused, as a mount is. The
 * principal's mount prefixes are a submit-time check (policy-check.c).
 * Symlinks inside a copied directory are skipped, never followed.
 *
 * Storage (struct tes_storage): one entry per URL scheme - file (and
 * absolute paths), http and https (libcurl through lib/rest, GET with a
 * size cap, no redirects). Any other scheme (s3, gs, drs) has none: the
 * task fails with SYSTEM_ERROR and a system log that names it; a plugin
 * is one more entry in the table.
 *
 * Every function here returns 0 or a negative errno with err set to words
 * that name the input or output ("inputs[2]: ..."); what fails is the
 * system's to report (SYSTEM_ERROR, as the spec says of a failed upload
 * or download), never the executor's.
 */
#pragma once

#include "config.h"
#include "tes.h"
#include "util/as-user.h"

/* Under <task_dir>. */
#define TES_STAGE_DIR  "tes"
#define TES_STAGE_ROOT "tes/root"

/* Bytes of one http(s) input at most, unless the caller says. */
#define TES_STAGE_MAX_DOWNLOAD (1ULL << 30)

struct tes_stage {
    const struct config *cfg;    /* the never-mountable list */
    int root_fd;                 /* <task_dir>/tes/root, O_DIRECTORY */
    const char *root;            /* its path (the binds' sources) */
    const struct user_ids *user; /* the task's account; NULL: the caller's own identity */
    const char *account;         /* its name, in errors */
    uint64_t max_download;       /* bytes of one http(s) input; 0: TES_STAGE_MAX_DOWNLOAD */
    /* A download or copy is given up (-ECANCELED) once one is readable. */
    const int *abort_fds;
    size_t n_abort_fds;
};

/* What the outputs' copies did: each file copied (url, path in the
 * container, size), in the task log's outputs. */
struct tes_stage_copied {
    struct tes_output_log *files;
    size_t n_files;
};
void tes_stage_copied_done(struct tes_stage_copied *c);

/*
 * A storage of one URL scheme. get() puts the input at url into the host
 * mapping at rel (a path relative to root_fd, its parent made), as a
 * file or, for TES_DIRECTORY, a directory tree (type_given false: what
 * the source is); put() copies what is at rel in the mapping to url,
 * adding each file copied to *copied (cpath: rel's container path). what
 * names the input or output in errors ("inputs[2]"). put NULL: the
 * scheme is read-only.
 */
struct tes_storage {
    const char *scheme;
    int (*get)(const struct tes_stage *s, const char *what, const char *url, const char *rel,
               enum tes_file_type type, bool type_given, struct error *err);
    int (*put)(const struct tes_stage *s, const char *what, const char *rel, const char *cpath,
               enum tes_file_type type, bool type_given, const char *url,
               struct tes_stage_copied *copied, struct error *err);
};

/* The storage for url (an absolute path is file), or NULL when no storage
 * serves its scheme. *ret_scheme (may be NULL) gets the scheme, allocated. */
const struct tes_storage *tes_storage_find(const char *url, char **ret_scheme);

/* <task_dir>/tes/root made (empty, mode 0700, owned by u's uid and gid;
 * u NULL: left as the caller made it) and opened. */
int tes_stage_root(const char *task_dir, const struct user_ids *u, char **ret_root, int *ret_fd,
                   struct error *err);

/* <task_dir>/tes/root as tes_stage_root left it, opened again (not
 * emptied): a resumed task's mapping, its inputs in place. */
int tes_stage_root_open(const char *task_dir, char **ret_root, int *ret_fd, struct error *err);

/* Each input in place in the mapping (content written, url fetched by its
 * storage), except a streamable host-path input, which becomes a
 * read-only bind added to *binds (resolved and checked). Stops at the
 * first that fails: -EPROTONOSUPPORT for a scheme without storage.
 * binds_only: only the streamable inputs' binds, resolved and checked
 * again (a resumed task: the others are in the mapping already). Staging
 * again from an empty mapping is idempotent: the same inputs land in the
 * same places (a restart in the middle of it starts it over). */
int tes_stage_inputs(const struct tes_stage *s, const struct tes_task *tt, bool binds_only,
                     struct task_mount **binds, size_t *n_binds, struct error *err);

/* The mapping's binds (see above), after the inputs, appended to *binds
 * (RW, host paths under root), each directory (or lone file) made in the
 * mapping by the account first so that dockerd makes none there. */
int tes_stage_binds(const struct tes_stage *s, const struct tes_task *tt, struct task_mount **binds,
                    size_t *n_binds, struct error *err);

/* Each output copied to its url (wildcards matched in the mapping, as
 * the account), each file copied added to *copied. Goes on past one that
 * fails (the others are still wanted) and returns the first failure,
 * with err naming every one that failed. An output whose path does not
 * exist is a failure (the spec's outputs are what the task promised). */
int tes_stage_outputs(const struct tes_stage *s, const struct tes_task *tt,
                      struct tes_stage_copied *copied, struct error *err);

/* Bytes [from, to) of fd (readable by the caller, which reads it) written
 * to container path cpath in the mapping (made, or truncated, by the
 * account): an executor's stdout or stderr where it asked for them. */
int tes_stage_write_range(const struct tes_stage *s, const char *cpath, int fd, off_t from,
                          off_t to, struct error *err);

/* The host path a file:// URL (of this host: no host or "localhost") or
 * an absolute path names, %XX decoded ("file:///a%20b" is "/a b"), as
 * the file storage reads it; NULL for any other URL. Allocated. */
char *tes_file_url_path(const char *url);

/* The container path p as a path relative to the mapping's root ("a/b"
 * for "/a/b"; "." for "/"). */
const char *tes_stage_rel(const char *p);
