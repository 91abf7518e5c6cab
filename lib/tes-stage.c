/*
 * tes-stage: the host mapping of a TES task, its binds, and its inputs
 * and outputs in order, through the storage table (tes-stage.h).
 */
#include "tes-stage-internal.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>

static const struct tes_storage *const storages[] = {
    &tes_storage_file,
    &tes_storage_http,
    &tes_storage_https,
};

const struct tes_storage *tes_storage_find(const char *url, char **ret_scheme)
{
    if (ret_scheme)
        *ret_scheme = NULL;
    if (url[0] == '/') {
        if (ret_scheme)
            *ret_scheme = xstrdup("file");
        return &tes_storage_file;
    }
    /* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    if (n == 0 || url[n] != ':')
        return NULL;
    _cleanup_free_ char *scheme = xstrndup(url, n);
    for (char *c = scheme; *c; c++)
        *c = (char) tolower((unsigned char) *c);
    const struct tes_storage *found = NULL;
    for (size_t i = 0; i < ELEMENTSOF(storages) && !found; i++)
        if (streq(storages[i]->scheme, scheme))
            found = storages[i];
    if (ret_scheme)
        *ret_scheme = TAKE_PTR(scheme);
    return found;
}

const char *tes_stage_rel(const char *p)
{
    while (*p == '/')
        p++;
    return *p ? p : ".";
}

void tes_stage_copied_done(struct tes_stage_copied *c)
{
    for (size_t i = 0; i < c->n_files; i++) {
        free(c->files[i].url);
        free(c->files[i].path);
    }
    free(c->files);
    *c = (struct tes_stage_copied){};
}

int tes_stage_root(const char *task_dir, const struct user_ids *u, char **ret_root, int *ret_fd,
                   struct error *err)
{
    _cleanup_free_ char *dir = stage_join(task_dir, TES_STAGE_DIR);
    _cleanup_free_ char *root = stage_join(task_dir, TES_STAGE_ROOT);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return error_set_errno(err, -errno, "cannot make %s", dir);
    /* Made afresh: a retried start begins from an empty mapping. */
    (void) rm_rf(root);
    if (mkdir(root, 0700) < 0)
        return error_set_errno(err, -errno, "cannot make %s", root);
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return error_set_errno(err, -errno, "cannot open %s", root);
    if (u && fchown(fd, u->uid, u->gid) < 0) {
        int r = -errno;
        close(fd);
        return error_set_errno(err, r, "cannot give %s to its account", root);
    }
    *ret_root = TAKE_PTR(root);
    *ret_fd = fd;
    return 0;
}

int tes_stage_root_open(const char *task_dir, char **ret_root, int *ret_fd, struct error *err)
{
    _cleanup_free_ char *root = stage_join(task_dir, TES_STAGE_ROOT);
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return error_set_errno(err, -errno, "cannot open %s", root);
    *ret_root = TAKE_PTR(root);
    *ret_fd = fd;
    return 0;
}

static void binds_add(struct task_mount **binds, size_t *n, const char *host, const char *cpath,
                      enum mount_mode mode)
{
    *binds = xrealloc(*binds, (*n + 1) * sizeof(**binds));
    (*binds)[(*n)++] =
        (struct task_mount){.host = xstrdup(host), .container = xstrdup(cpath), .mode = mode};
}

/* ---- writes ---- */

int tes_stage_write_range(const struct tes_stage *s, const char *cpath, int fd, off_t from,
                          off_t to, struct error *err)
{
    _cleanup_close_ int out = stage_create_as(s, tes_stage_rel(cpath));
    if (out < 0)
        return error_set_errno(err, out, "cannot create it");
    const size_t size = 1U << 16;
    _cleanup_free_ char *buf = xmalloc(size);
    for (off_t at = from; at < to;) {
        size_t want = (size_t) MIN((off_t) size, to - at);
        ssize_t k = pread(fd, buf, want, at);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return error_set_errno(err, k < 0 ? -errno : -EIO, "cannot read the output");
        int r = loop_write(out, buf, (size_t) k);
        if (r < 0)
            return error_set_errno(err, r, "cannot write it");
        at += k;
    }
    return 0;
}

/* ---- inputs ---- */

/* The empty file or directory a read-only bind lands on, made by the
 * account: otherwise dockerd would make it, as root, in the mapping. */
struct placeholder_job {
    const struct tes_stage *s;
    const char *rel;
    bool dir;
};

static int placeholder_as(void *arg)
{
    struct placeholder_job *j = arg;
    if (j->dir) {
        int fd = stage_mkdirs(j->s->root_fd, j->rel);
        if (fd < 0)
            return fd;
        close(fd);
        return 0;
    }
    const char *base;
    _cleanup_close_ int pfd = stage_parent(j->s->root_fd, j->rel, &base);
    if (pfd < 0)
        return pfd;
    int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

static int stage_input(const struct tes_stage *s, const struct tes_input *in, size_t i,
                       struct task_mount **binds, size_t *n_binds, struct error *err)
{
    char what[48];
    snprintf(what, sizeof(what), "inputs[%zu]", i);
    const char *rel = tes_stage_rel(in->path);
    if (streq(rel, "."))
        return error_set(err, -EINVAL, "%s: its path is /, which cannot be replaced", what);
    if (in->content) {
        _cleanup_close_ int fd = stage_create_as(s, rel);
        int r = fd < 0 ? fd : loop_write(fd, in->content, strlen(in->content));
        if (r < 0)
            return error_set_errno(err, r, "%s: cannot write its content to %s", what, in->path);
        return 0;
    }
    if (!in->url)
        return error_set(err, -EINVAL, "%s: has neither url nor content", what);
    _cleanup_free_ char *scheme = NULL;
    const struct tes_storage *st = tes_storage_find(in->url, &scheme);
    if (!st)
        return error_set(err, -EPROTONOSUPPORT,
                         "%s: no storage for the URL scheme \"%s\" of %s on this server (it "
                         "reads file:// and absolute paths, http:// and https://)",
                         what, scheme ? scheme : "", in->url);
    if (in->streamable && st == &tes_storage_file) {
        _cleanup_free_ char *resolved = NULL;
        int r = tes_stage_file_resolve(s, what, in->url, in->type, in->type_given, &resolved, err);
        if (r < 0)
            return r;
        struct stat sb;
        bool dir = stat(resolved, &sb) >= 0 && S_ISDIR(sb.st_mode);
        struct placeholder_job pj = {.s = s, .rel = rel, .dir = dir};
        r = as_user_run(s->user, placeholder_as, &pj);
        if (r < 0)
            return error_set_errno(err, r, "%s: cannot make %s in the task", what, in->path);
        binds_add(binds, n_binds, resolved, in->path, MOUNT_RO);
        return 0;
    }
    return st->get(s, what, in->url, rel, in->type, in->type_given, err);
}

int tes_stage_inputs(const struct tes_stage *s, const struct tes_task *tt, bool binds_only,
                     struct task_mount **binds, size_t *n_binds, struct error *err)
{
    for (size_t i = 0; i < tt->n_inputs; i++) {
        const struct tes_input *in = &tt->inputs[i];
        if (stage_aborted(s))
            return error_set(err, -ECANCELED, "inputs: given up");
        if (binds_only && !(in->streamable && !in->content && in->url &&
                            tes_storage_find(in->url, NULL) == &tes_storage_file))
            continue; /* in the mapping already */
        int r = stage_input(s, in, i, binds, n_binds, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- binds ---- */

/* A container path to bind from the mapping: a directory, or (when its
 * parent is /) a file alone. */
struct want {
    char *cpath;
    bool file;
};

static void want_add(struct want **w, size_t *n, const char *cpath, bool file)
{
    *w = xrealloc(*w, (*n + 1) * sizeof(**w));
    (*w)[(*n)++] = (struct want){.cpath = xstrdup(cpath), .file = file};
}

/* A file's parent directory, or the file alone when that is /. */
static void want_parent(struct want **w, size_t *n, const char *cpath)
{
    const char *slash = strrchr(cpath, '/');
    if (!slash || slash == cpath) {
        want_add(w, n, cpath, true);
        return;
    }
    _cleanup_free_ char *parent = xstrndup(cpath, (size_t) (slash - cpath));
    want_add(w, n, parent, false);
}

static bool path_under(const char *p, const char *dir)
{
    size_t k = strlen(dir);
    return strncmp(p, dir, k) == 0 && (p[k] == '/' || p[k] == '\0');
}

static int cmp_want(const void *a, const void *b)
{
    const struct want *x = a, *y = b;
    size_t lx = strlen(x->cpath), ly = strlen(y->cpath);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->cpath, y->cpath);
}

static bool has_wildcard(const char *p)
{
    return strpbrk(p, "*?[") != NULL;
}

struct binds_job {
    const struct tes_stage *s;
    struct want *w;
    size_t n;
};

static int binds_as(void *arg)
{
    struct binds_job *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        const char *rel = tes_stage_rel(j->w[i].cpath);
        struct placeholder_job pj = {.s = j->s, .rel = rel, .dir = !j->w[i].file};
        int r = placeholder_as(&pj);
        if (r < 0)
            return r;
    }
    return 0;
}

int tes_stage_binds(const struct tes_stage *s, const struct tes_task *tt, struct task_mount **binds,
                    size_t *n_binds, struct error *err)
{
    struct want *w = NULL;
    size_t n = 0;
    want_add(&w, &n, "/tmp", false);
    STRV_FOREACH (v, tt->volumes)
        want_add(&w, &n, *v, false);
    for (size_t i = 0; i < tt->n_inputs; i++) {
        const struct tes_input *in = &tt->inputs[i];
        if (in->streamable && !in->content && in->url &&
            tes_storage_find(in->url, NULL) == &tes_storage_file)
            continue; /* bound read-only by tes_stage_inputs */
        struct stat st;
        bool dir = fstatat(s->root_fd, tes_stage_rel(in->path), &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
                   S_ISDIR(st.st_mode);
        if (dir)
            want_add(&w, &n, in->path, false);
        else
            want_parent(&w, &n, in->path);
    }
    for (size_t i = 0; i < tt->n_outputs; i++) {
        const struct tes_output *o = &tt->outputs[i];
        if (has_wildcard(o->path)) {
            /* The prefix's directory holds every match. */
            _cleanup_free_ char *dir = xstrdup(o->path_prefix ? o->path_prefix : o->path);
            char *wc = strpbrk(dir, "*?[");
            if (wc)
                *wc = '\0';
            char *slash = strrchr(dir, '/');
            if (slash && slash != dir && slash[1] != '\0' && wc)
                *slash = '\0';
            size_t k = strlen(dir);
            while (k > 1 && dir[k - 1] == '/')
                dir[--k] = '\0';
            if (!streq(dir, "/"))
                want_add(&w, &n, dir, false);
        } else if (o->type_given && o->type == TES_DIRECTORY)
            want_add(&w, &n, o->path, false);
        else
            want_parent(&w, &n, o->path);
    }
    for (size_t i = 0; i < tt->n_executors; i++) {
        const struct tes_executor *e = &tt->executors[i];
        const char *paths[] = {e->stdin_path, e->stdout_path, e->stderr_path};
        for (size_t k = 0; k < ELEMENTSOF(paths); k++)
            if (paths[k])
                want_parent(&w, &n, paths[k]);
    }

    /* Shortest first: a directory under one kept is inside it already. */
    qsort(w, n, sizeof(*w), cmp_want);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        bool inside = false;
        for (size_t k = 0; k < kept && !inside; k++)
            inside = !w[k].file && path_under(w[i].cpath, w[k].cpath);
        if (inside) {
            free(w[i].cpath);
            continue;
        }
        w[kept++] = w[i];
    }
    struct binds_job j = {.s = s, .w = w, .n = kept};
    int r = as_user_run(s->user, binds_as, &j);
    for (size_t i = 0; i < kept; i++) {
        if (r >= 0) {
            _cleanup_free_ char *host = stage_join(s->root, w[i].cpath);
            binds_add(binds, n_binds, host, w[i].cpath, MOUNT_RW);
        }
        free(w[i].cpath);
    }
    free(w);
    if (r < 0)
        return error_set_errno(err, r, "cannot make the task's directories");
    return 0;
}

/* ---- outputs ---- */

/* The matches of a pattern's components from comp on, under dirfd (rel
 * its path in the mapping), as the account; no symlink followed. */
struct match_job {
    const struct tes_stage *s;
    char **comps;
    char **found; /* container paths */
};

static void match_at(struct match_job *j, int dirfd, const char *cpath, size_t comp)
{
    if (!j->comps[comp]) {
        strv_push(&j->found, cpath);
        return;
    }
    if (strv_length(j->found) >= TES_MAX_FILES)
        return;
    const char *c = j->comps[comp];
    bool last = !j->comps[comp + 1];
    if (!has_wildcard(c)) {
        _cleanup_free_ char *sub = stage_join(cpath, c);
        struct stat st;
        if (fstatat(dirfd, c, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return;
        if (last) {
            if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
                strv_push(&j->found, sub);
            return;
        }
        _cleanup_close_ int fd = openat(dirfd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            match_at(j, fd, sub, comp + 1);
        return;
    }
    int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    rewinddir(d);
    _cleanup_strv_ char **names = NULL;
    for (struct dirent *e; (e = readdir(d));)
        if (!streq(e->d_name, ".") && !streq(e->d_name, "..") &&
            fnmatch(c, e->d_name, FNM_PERIOD) == 0)
            strv_push(&names, e->d_name);
    closedir(d);
    STRV_FOREACH (name, names) {
        _cleanup_free_ char *sub = stage_join(cpath, *name);
        struct stat st;
        if (fstatat(dirfd, *name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (last) {
            if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
                strv_push(&j->found, sub);
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            continue;
        _cleanup_close_ int fd =
            openat(dirfd, *name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            match_at(j, fd, sub, comp + 1);
    }
}

static int match_as(void *arg)
{
    struct match_job *j = arg;
    match_at(j, j->s->root_fd, "", 0);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The container paths in the mapping that match the output's pattern,
 * sorted. */
static char **match(const struct tes_stage *s, const char *pattern)
{
    struct match_job j = {.s = s};
    _cleanup_free_ char *copy = xstrdup(pattern);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
        strv_push(&j.comps, c);
    if (j.comps)
        (void) as_user_run(s->user, match_as, &j);
    strv_free(j.comps);
    if (j.found)
        qsort(j.found, strv_length(j.found), sizeof(char *), cmp_str);
    return j.found;
}

static int put_one(const struct tes_stage *s, const struct tes_output *o, const char *what,
                   const char *cpath, const char *url, bool type_given,
                   struct tes_stage_copied *copied, struct error *err)
{
    _cleanup_free_ char *scheme = NULL;
    const struct tes_storage *st = tes_storage_find(url, &scheme);
    if (!st)
        return error_set(err, -EPROTONOSUPPORT,
                         "%s: no storage for the URL scheme \"%s\" of %s on this server (it "
                         "writes file:// URLs and absolute paths)",
                         what, scheme ? scheme : "", url);
    if (!st->put)
        return error_set(err, -EPROTONOSUPPORT, "%s: %s: this server cannot write to %s URLs", what,
                         url, st->scheme);
    return st->put(s, what, tes_stage_rel(cpath), cpath, o->type, type_given, url, copied, err);
}

static int stage_output(const struct tes_stage *s, const struct tes_output *o, size_t i,
                        struct tes_stage_copied *copied, struct error *err)
{
    char what[48];
    snprintf(what, sizeof(what), "outputs[%zu]", i);
    if (!has_wildcard(o->path))
        return put_one(s, o, what, o->path, o->url, o->type_given, copied, err);
    /* TES 1.1: each match's URL is the output's URL with the match's path,
     * less path_prefix, appended. */
    _cleanup_strv_ char **found = match(s, o->path);
    const char *prefix = o->path_prefix ? o->path_prefix : "";
    int first = 0;
    _cleanup_error_ struct error e1 = ERROR_INIT;
    STRV_FOREACH (m, found) {
        const char *tail = startswith(*m, prefix) ? *m + strlen(prefix) : *m;
        _cleanup_free_ char *url = stage_join(o->url, tail);
        _cleanup_error_ struct error e = ERROR_INIT;
        int r = put_one(s, o, what, *m, url, false, copied, &e);
        if (r < 0 && first == 0) {
            first = r;
            error_set(&e1, r, "%s", error_message(&e));
        }
    }
    if (first < 0)
        return error_set(err, first, "%s", error_message(&e1));
    return 0;
}

int tes_stage_outputs(const struct tes_stage *s, const struct tes_task *tt,
                      struct tes_stage_copied *copied, struct error *err)
{
    int first = 0;
    _cleanup_free_ char *words = NULL;
    for (size_t i = 0; i < tt->n_outputs; i++) {
        if (stage_aborted(s))
            return error_set(err, -ECANCELED, "outputs: given up");
        _cleanup_error_ struct error e = ERROR_INIT;
        int r = stage_output(s, &tt->outputs[i], i, copied, &e);
        if (r >= 0)
            continue;
        if (first == 0)
            first = r;
        char *w =
            words ? xasprintf("%s; %s", words, error_message(&e)) : xstrdup(error_message(&e));
        free(words);
        words = w;
    }
    if (first < 0)
        return error_set(err, first, "%s", words);
    return 0;
}
