/*
 * tes-stage-file: the file storage of tes-stage (tes-stage.h): file://
 * URLs and absolute host paths, read and written as the task's account
 * by a thread of that identity (as_user_run), resolved first (realpath
 * as the account) and refused when the resolved path is never mountable
 * (policy_never_mountable), then opened with no symlink allowed, so a
 * swap between the check and the open gets nothing.
 */
#include "policy-check.h"
#include "tes-stage-internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>

char *tes_file_url_path(const char *url)
{
    const char *p = url;
    if (startswith(url, "file://")) {
        p = url + strlen("file://");
        if (startswith(p, "localhost/"))
            p += strlen("localhost");
    }
    if (p[0] != '/')
        return NULL;
    char *out = xmalloc(strlen(p) + 1), *o = out;
    for (; *p; p++) {
        unsigned v;
        if (startswith(url, "file://") && p[0] == '%' && sscanf(p + 1, "%2x", &v) == 1 &&
            isxdigit((unsigned char) p[1]) && isxdigit((unsigned char) p[2]) && v != 0) {
            *o++ = (char) v;
            p += 2;
        } else
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

static const char *type_words(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISREG(m) ? "a file" : "neither a file nor a directory";
}

/* Words for what resolving or opening a host path as the account said. */
static int host_error(struct error *err, const char *what, const char *user, int r,
                      const char *verb, const char *path)
{
    if (r == -ENOENT)
        return error_set(err, -ENOENT, "%s: %s does not exist", what, path);
    if (r == -EACCES || r == -EPERM)
        return error_set(err, -EACCES, "%s: user %s may not %s %s", what, user, verb, path);
    if (r == -ELOOP)
        return error_set(err, -EACCES, "%s: %s changed (a symlink appeared) and is not used", what,
                         path);
    return error_set_errno(err, r, "%s: %s", what, path);
}

static int never(const struct tes_stage *s, const char *what, const char *path,
                 const char *resolved, mode_t type, struct error *err)
{
    _cleanup_free_ char *words = NULL;
    if (!policy_never_mountable(s->cfg, resolved, type, &words))
        return 0;
    if (streq(path, resolved))
        return error_set(err, -EACCES, "%s: %s %s", what, path, words);
    return error_set(err, -EACCES, "%s: %s (that is, %s) %s", what, path, resolved, words);
}

static const char *user_name(const struct tes_stage *s)
{
    return s->account ? s->account : "(the daemon's)";
}

/* ---- get ---- */

struct get_job {
    const struct tes_stage *s;
    const char *what; /* "inputs[2]" */
    const char *path; /* on the host */
    const char *rel;  /* in the mapping */
    enum tes_file_type type;
    bool type_given;
    bool resolve_only; /* a streamable input: resolved and checked, not copied */
    char *resolved;
    mode_t mode;
    struct error *err;
};

static int get_as(void *arg)
{
    struct get_job *j = arg;
    const struct tes_stage *s = j->s;
    char buf[PATH_MAX];
    if (!realpath(j->path, buf))
        return host_error(j->err, j->what, user_name(s), -errno, "read", j->path);
    struct stat st;
    if (lstat(buf, &st) < 0)
        return host_error(j->err, j->what, user_name(s), -errno, "read", j->path);
    int r = never(s, j->what, j->path, buf, st.st_mode, j->err);
    if (r < 0)
        return r;
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return error_set(j->err, -EINVAL, "%s: %s is %s", j->what, j->path, type_words(st.st_mode));
    if (j->type_given && (j->type == TES_DIRECTORY) != !!S_ISDIR(st.st_mode))
        return error_set(j->err, -EINVAL, "%s: %s is %s, but the input says %s", j->what, j->path,
                         type_words(st.st_mode), tes_file_type_to_string(j->type));
    bool dir = S_ISDIR(st.st_mode);
    _cleanup_close_ int in = stage_open(AT_FDCWD, buf, O_RDONLY | (dir ? O_DIRECTORY : 0), 0);
    if (in < 0)
        return host_error(j->err, j->what, user_name(s), in, "read", j->path);
    j->resolved = xstrdup(buf);
    j->mode = st.st_mode;
    if (j->resolve_only)
        return 0;
    if (dir) {
        _cleanup_close_ int dst = stage_mkdirs(s->root_fd, j->rel);
        if (dst < 0)
            return error_set_errno(j->err, dst, "%s: cannot make the directory", j->what);
        r = stage_copy_tree(s, in, dst, NULL, NULL);
    } else {
        const char *base;
        _cleanup_close_ int pfd = stage_parent(s->root_fd, j->rel, &base);
        if (pfd < 0)
            return error_set_errno(j->err, pfd, "%s: cannot make its directory", j->what);
        _cleanup_close_ int out =
            openat(pfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                   st.st_mode & 0777);
        if (out < 0)
            return error_set_errno(j->err, -errno, "%s: cannot create the file", j->what);
        uint64_t n;
        r = stage_copy_fd(s, in, out, &n);
    }
    if (r == -ECANCELED)
        return error_set(j->err, r, "%s: copy given up", j->what);
    if (r < 0)
        return error_set_errno(j->err, r, "%s: copying %s", j->what, j->path);
    return 0;
}

static int file_get_job(struct get_job *j)
{
    _cleanup_free_ char *path = tes_file_url_path(j->path);
    if (!path)
        return error_set(j->err, -EINVAL,
                         "%s: %s is neither an absolute path nor a file:// URL of this host",
                         j->what, j->path);
    j->path = path;
    return as_user_run(j->s->user, get_as, j);
}

int tes_stage_file_resolve(const struct tes_stage *s, const char *what, const char *url,
                           enum tes_file_type type, bool type_given, char **ret, struct error *err)
{
    struct get_job j = {.s = s,
                        .what = what,
                        .path = url,
                        .type = type,
                        .type_given = type_given,
                        .resolve_only = true,
                        .err = err};
    int r = file_get_job(&j);
    if (r < 0) {
        free(j.resolved);
        return r;
    }
    *ret = j.resolved;
    return 0;
}

static int file_get(const struct tes_stage *s, const char *what, const char *url, const char *rel,
                    enum tes_file_type type, bool type_given, struct error *err)
{
    struct get_job j = {.s = s,
                        .what = what,
                        .path = url,
                        .rel = rel,
                        .type = type,
                        .type_given = type_given,
                        .err = err};
    int r = file_get_job(&j);
    free(j.resolved);
    return r;
}

/* ---- put ---- */

struct put_job {
    const struct tes_stage *s;
    const char *what;
    const char *rel;   /* in the mapping */
    const char *cpath; /* in the container */
    enum tes_file_type type;
    bool type_given;
    const char *url, *path; /* path: url's on the host */
    struct tes_stage_copied *copied;
    struct error *err;
};

static void copied_add(struct tes_stage_copied *c, const char *url, const char *path, uint64_t size)
{
    c->files = xrealloc(c->files, (c->n_files + 1) * sizeof(*c->files));
    c->files[c->n_files++] =
        (struct tes_output_log){.url = xstrdup(url), .path = xstrdup(path), .size_bytes = size};
}

static void tree_copied(void *userdata, const char *rel, uint64_t size)
{
    struct put_job *j = userdata;
    _cleanup_free_ char *url = stage_join(j->url, rel);
    _cleanup_free_ char *path = stage_join(j->cpath, rel);
    copied_add(j->copied, url, path, size);
}

/* The deepest directory of path that exists, resolved, and what is left
 * to make below it ("" when nothing). */
static int existing_ancestor(const char *path, char **ret_resolved, char **ret_rest)
{
    _cleanup_free_ char *p = xstrdup(path);
    for (;;) {
        char buf[PATH_MAX];
        if (realpath(p, buf)) {
            *ret_resolved = xstrdup(buf);
            size_t n = strlen(p);
            *ret_rest = xstrdup(path[n] == '/' ? path + n + 1 : path + n);
            return 0;
        }
        if (errno != ENOENT)
            return -errno;
        char *slash = strrchr(p, '/');
        if (!slash)
            return -ENOENT;
        if (slash == p) {
            p[1] = '\0';
            continue;
        }
        *slash = '\0';
    }
}

static int put_as(void *arg)
{
    struct put_job *j = arg;
    const struct tes_stage *s = j->s;
    _cleanup_close_ int in = stage_open(s->root_fd, j->rel, O_RDONLY, 0);
    if (in == -ENOENT || in == -ENOTDIR)
        return error_set(j->err, -ENOENT, "%s: %s does not exist in the task", j->what, j->cpath);
    if (in == -ELOOP || in == -EXDEV)
        return error_set(j->err, -EINVAL, "%s: %s is a symlink, which is not copied", j->what,
                         j->cpath);
    if (in < 0)
        return error_set_errno(j->err, in, "%s: %s", j->what, j->cpath);
    struct stat st;
    if (fstat(in, &st) < 0)
        return error_set_errno(j->err, -errno, "%s: %s", j->what, j->cpath);
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return error_set(j->err, -EINVAL, "%s: %s is %s", j->what, j->cpath,
                         type_words(st.st_mode));
    if (j->type_given && (j->type == TES_DIRECTORY) != !!S_ISDIR(st.st_mode))
        return error_set(j->err, -EINVAL, "%s: %s is %s, but the output says %s", j->what, j->cpath,
                         type_words(st.st_mode), tes_file_type_to_string(j->type));
    bool dir = S_ISDIR(st.st_mode);

    /* Where it goes: the part that exists resolved and checked, the rest made. */
    const char *slash = strrchr(j->path, '/');
    _cleanup_free_ char *parent =
        slash == j->path ? xstrdup("/") : xstrndup(j->path, (size_t) (slash - j->path));
    const char *base = slash + 1;
    if (isempty(base) || streq(base, ".") || streq(base, ".."))
        return error_set(j->err, -EINVAL, "%s: %s names no file", j->what, j->url);
    _cleanup_free_ char *anc = NULL, *rest = NULL;
    int r = existing_ancestor(parent, &anc, &rest);
    if (r < 0)
        return host_error(j->err, j->what, user_name(s), r, "write", parent);
    _cleanup_free_ char *full_rest = isempty(rest) ? xstrdup(base) : stage_join(rest, base);
    _cleanup_free_ char *resolved = stage_join(anc, full_rest);
    r = never(s, j->what, j->path, resolved, dir ? S_IFDIR : S_IFREG, j->err);
    if (r < 0)
        return r;
    _cleanup_close_ int afd = stage_open(AT_FDCWD, anc, O_RDONLY | O_DIRECTORY, 0);
    if (afd < 0)
        return host_error(j->err, j->what, user_name(s), afd, "write", parent);
    _cleanup_close_ int pfd = stage_mkdirs(afd, isempty(rest) ? "." : rest);
    if (pfd < 0)
        return host_error(j->err, j->what, user_name(s), pfd, "write", parent);
    if (dir) {
        if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
            return host_error(j->err, j->what, user_name(s), -errno, "write", j->path);
        _cleanup_close_ int out =
            openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (out < 0)
            return host_error(j->err, j->what, user_name(s), -errno, "write", j->path);
        r = stage_copy_tree(s, in, out, tree_copied, j);
    } else {
        _cleanup_close_ int out = openat(
            pfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
        if (out < 0)
            return host_error(j->err, j->what, user_name(s), -errno, "write", j->path);
        uint64_t n = 0;
        r = stage_copy_fd(s, in, out, &n);
        if (r >= 0)
            copied_add(j->copied, j->url, j->cpath, n);
    }
    if (r == -ECANCELED)
        return error_set(j->err, r, "%s: copy given up", j->what);
    if (r < 0)
        return error_set_errno(j->err, r, "%s: copying %s to %s", j->what, j->cpath, j->path);
    return 0;
}

static int file_put(const struct tes_stage *s, const char *what, const char *rel, const char *cpath,
                    enum tes_file_type type, bool type_given, const char *url,
                    struct tes_stage_copied *copied, struct error *err)
{
    _cleanup_free_ char *path = tes_file_url_path(url);
    if (!path)
        return error_set(err, -EINVAL,
                         "%s: %s is neither an absolute path nor a file:// URL of this host", what,
                         url);
    struct put_job j = {.s = s,
                        .what = what,
                        .rel = rel,
                        .cpath = cpath,
                        .type = type,
                        .type_given = type_given,
                        .url = url,
                        .path = path,
                        .copied = copied,
                        .err = err};
    return as_user_run(s->user, put_as, &j);
}

const struct tes_storage tes_storage_file = {
    .scheme = "file",
    .get = file_get,
    .put = file_put,
};
