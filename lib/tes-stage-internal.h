/*
 * tes-stage-internal: what the parts of tes-stage share (tes-stage.h):
 *
 *   tes-stage.c        the mapping, the binds, inputs and outputs in
 *                      order, the storage table
 *   tes-stage-fs.c     files and trees under a directory fd, as the
 *                      account: no symlink followed, abort fds watched
 *   tes-stage-file.c   the file storage (file:// URLs and host paths)
 *   tes-stage-http.c   the http and https storage (lib/rest)
 */
#pragma once

#include "tes-stage.h"

#include <sys/stat.h>

/* openat2(dirfd, rel, flags | O_CLOEXEC | O_NOCTTY, mode) with no symlink
 * and nothing outside dirfd (RESOLVE_BENEATH): the fd or -errno. dirfd
 * AT_FDCWD with an absolute rel: anywhere, with no symlink. */
int stage_open(int dirfd, const char *rel, int flags, mode_t mode);
/* rel's directories made under dirfd (mode 0755, as whoever calls) and
 * the last one opened: the fd, or -errno. rel "." or "": dirfd again (dup). */
int stage_mkdirs(int dirfd, const char *rel);
/* The parent of rel made (stage_mkdirs) and opened, and rel's last
 * component in *ret_base (pointing into rel). */
int stage_parent(int dirfd, const char *rel, const char **ret_base);

/* rel under the mapping (s->root_fd) created or truncated, 0644, as the
 * task's account, its parents made: the fd (O_WRONLY), or -errno. */
int stage_create_as(const struct tes_stage *s, const char *rel);

/* Whether one of the abort fds is readable. */
bool stage_aborted(const struct tes_stage *s);

/* All of in (from its offset) to out; the bytes in *ret_n. -ECANCELED
 * when an abort fd became readable. */
int stage_copy_fd(const struct tes_stage *s, int in, int out, uint64_t *ret_n);

/* What a tree copy tells of each file copied: its path relative to the
 * tree's top and its size. */
typedef void (*stage_copied_fn)(void *userdata, const char *rel, uint64_t size);

/* Directory src's tree into directory dst (both open), files with their
 * permission bits, directories made 0755; symlinks and special files
 * skipped (never followed). Each regular file copied goes to f. */
int stage_copy_tree(const struct tes_stage *s, int src, int dst, stage_copied_fn f, void *userdata);

/* "a" + "/" + "b" without doubling the slash. */
char *stage_join(const char *a, const char *b);

/* A streamable input's host path (a file:// URL or an absolute path)
 * resolved and checked as tes_storage_file's get() does, not copied:
 * what is bound read-only in its place. */
int tes_stage_file_resolve(const struct tes_stage *s, const char *what, const char *url,
                           enum tes_file_type type, bool type_given, char **ret, struct error *err);

/* The storages (tes_storage_find looks them up). */
extern const struct tes_storage tes_storage_file;
extern const struct tes_storage tes_storage_http;
extern const struct tes_storage tes_storage_https;
