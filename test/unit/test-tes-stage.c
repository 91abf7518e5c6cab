/*
 * Unit tests: a TES task's files (lib/tes-stage.c) in a temporary
 * directory, without dockerd: the storage table, inputs (content, host
 * paths and file:// URLs, files and directories, streamable, unknown
 * schemes, what is never mountable, a path the account may not read),
 * the binds, outputs (files, directories, wildcards with path_prefix, a
 * missing one, a symlink left in the mapping), http inputs from a server
 * of the test's own on 127.0.0.1 (a fetch, the size cap, an HTTP error,
 * none from the daemon's own listener's port),
 * and an abort fd that stops staging.
 */
#include "tes-stage.h"
#include "tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

static char tmp[] = "/tmp/test-tes-stage-XXXXXX";

static char *at(const char *rel)
{
    return xasprintf("%s/%s", tmp, rel);
}

static void put(const char *rel, const char *content)
{
    _cleanup_free_ char *p = at(rel);
    _cleanup_free_ char *dir = xstrdup(p);
    *strrchr(dir, '/') = '\0';
    (void) mkdir_p(dir, 0755);
    (void) write_file_replace(p, content, strlen(content), 0644);
}

static char *get(const char *path)
{
    char *buf = NULL;
    size_t n;
    if (read_file(path, 1 << 20, &buf, &n) < 0)
        return NULL;
    return buf;
}

static bool content_is(const char *path, const char *want)
{
    _cleanup_free_ char *got = get(path);
    return got && streq(got, want);
}

/* ---- a small HTTP server: /ok, /big (100 bytes), anything else 404 ---- */

static int http_fd = -1, http_stop = -1;
static unsigned http_port;

static void *http_main(void *arg)
{
    (void) arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = http_fd, .events = POLLIN},
                              {.fd = http_stop, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
            return NULL;
        int c = accept4(http_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        char req[4096];
        size_t n = 0;
        while (n < sizeof(req) - 1) {
            ssize_t k = recv(c, req + n, sizeof(req) - 1 - n, 0);
            if (k <= 0)
                break;
            n += (size_t) k;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[n] = '\0';
        char body[128];
        const char *status = "200 OK";
        if (startswith(req, "GET /ok "))
            snprintf(body, sizeof(body), "hello over http\n");
        else if (startswith(req, "GET /big "))
            snprintf(body, sizeof(body), "%0100d", 7);
        else {
            status = "404 Not Found";
            snprintf(body, sizeof(body), "no such thing\n");
        }
        _cleanup_free_ char *reply =
            xasprintf("HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", status,
                      strlen(body), body);
        (void) loop_write(c, reply, strlen(reply));
        close(c);
    }
}

static bool http_start(pthread_t *th)
{
    http_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (http_fd < 0 || bind(http_fd, (struct sockaddr *) &a, sizeof(a)) < 0 ||
        listen(http_fd, 8) < 0 || getsockname(http_fd, (struct sockaddr *) &a, &len) < 0)
        return false;
    http_port = ntohs(a.sin_port);
    http_stop = eventfd(0, EFD_CLOEXEC);
    return pthread_create(th, NULL, http_main, NULL) == 0;
}

/* ---- the stage ---- */

static struct config cfg;

struct fixture {
    struct tes_stage s;
    char *root;
    int root_fd;
    char *task_dir;
};

static void fixture_init(struct fixture *f, const char *name, const struct user_ids *u)
{
    f->task_dir = at(name);
    (void) mkdir(f->task_dir, 0700);
    struct error err = ERROR_INIT;
    int r = tes_stage_root(f->task_dir, u, &f->root, &f->root_fd, &err);
    if (!ok(r >= 0, "%s: the mapping made: %s", name, error_message(&err)))
        exit(1);
    error_clear(&err);
    f->s = (struct tes_stage){.cfg = &cfg,
                              .root_fd = f->root_fd,
                              .root = f->root,
                              .user = u,
                              .account = u ? "nobody" : NULL};
}

static void fixture_done(struct fixture *f)
{
    free(f->root);
    free(f->task_dir);
    close(f->root_fd);
}

static char *in_root(const struct fixture *f, const char *cpath)
{
    return xasprintf("%s%s", f->root, cpath);
}

static void test_storage_find(void)
{
    char *scheme = NULL;
    ok(tes_storage_find("/data/a", NULL) &&
           streq(tes_storage_find("/data/a", NULL)->scheme, "file"),
       "an absolute path is the file storage's");
    ok(tes_storage_find("file:///data/a", NULL) &&
           streq(tes_storage_find("file:///data/a", NULL)->scheme, "file"),
       "file:// is the file storage's");
    const struct tes_storage *h = tes_storage_find("HTTP://127.0.0.1/x", &scheme);
    ok(h && streq(h->scheme, "http") && streq(scheme, "http"), "a scheme is case-insensitive");
    free(scheme);
    ok(!tes_storage_find("s3://bucket/key", &scheme) && streq_ptr(scheme, "s3"),
       "s3:// has no storage, and its scheme is named");
    free(scheme);
    ok(!tes_storage_find("relative/path", &scheme) && !scheme, "a relative path is no URL");
    ok(!tes_storage_find("https://x/y", NULL)->put, "http(s) storage is read-only");
}

static struct tes_input input(const char *url, const char *path, const char *content, int type)
{
    return (struct tes_input){.url = (char *) url,
                              .path = (char *) path,
                              .content = (char *) content,
                              .type = type < 0 ? TES_FILE : (enum tes_file_type) type,
                              .type_given = type >= 0};
}

static int stage_one(struct fixture *f, struct tes_input in, struct error *err)
{
    struct tes_task tt = {.inputs = &in, .n_inputs = 1};
    struct task_mount *binds = NULL;
    size_t n = 0;
    int r = tes_stage_inputs(&f->s, &tt, false, &binds, &n, err);
    for (size_t i = 0; i < n; i++) {
        free(binds[i].host);
        free(binds[i].container);
    }
    free(binds);
    return r;
}

static void test_inputs(void)
{
    struct fixture f;
    fixture_init(&f, "inputs", NULL);
    put("host/one.txt", "one\n");
    put("host/tree/a.txt", "a\n");
    put("host/tree/sub/b.txt", "bb\n");
    _cleanup_free_ char *secret = at("host/secret");
    (void) write_file_replace(secret, "s", 1, 0600);
    _cleanup_free_ char *link = at("host/tree/link");
    (void) symlink(secret, link);
    _cleanup_free_ char *one = at("host/one.txt"), *tree = at("host/tree");
    _cleanup_free_ char *one_url = xasprintf("file://%s", one);

    struct tes_input ins[] = {
        input(NULL, "/data/in/content.txt", "inline content\n", -1),
        input(one, "/data/in/one.txt", NULL, TES_FILE),
        input(one_url, "/data/in/url.txt", NULL, -1),
        input(tree, "/data/tree", NULL, TES_DIRECTORY),
        input(tree, "/data/untyped", NULL, -1),
        input(one, "/stream/one.txt", NULL, TES_FILE),
    };
    ins[5].streamable = true;
    struct tes_task tt = {.inputs = ins, .n_inputs = ELEMENTSOF(ins)};
    struct task_mount *binds = NULL;
    size_t n = 0;
    _cleanup_error_ struct error err = ERROR_INIT;
    int r = tes_stage_inputs(&f.s, &tt, false, &binds, &n, &err);
    ok(r >= 0, "inputs staged: %s", error_message(&err));
    const char *checks[][2] = {
        {"/data/in/content.txt", "inline content\n"},
        {"/data/in/one.txt", "one\n"},
        {"/data/in/url.txt", "one\n"},
        {"/data/tree/a.txt", "a\n"},
        {"/data/tree/sub/b.txt", "bb\n"},
        {"/data/untyped/sub/b.txt", "bb\n"},
    };
    for (size_t i = 0; i < ELEMENTSOF(checks); i++) {
        _cleanup_free_ char *p = in_root(&f, checks[i][0]);
        ok(content_is(p, checks[i][1]), "%s holds its input", checks[i][0]);
    }
    _cleanup_free_ char *l = in_root(&f, "/data/tree/link");
    struct stat st;
    ok(lstat(l, &st) < 0 && errno == ENOENT, "a symlink in an input directory is not copied");
    ok(n == 1 && streq(binds[0].host, one) && streq(binds[0].container, "/stream/one.txt") &&
           binds[0].mode == MOUNT_RO,
       "a streamable input is a read-only bind of its host path");
    _cleanup_free_ char *ph = in_root(&f, "/stream/one.txt");
    ok(lstat(ph, &st) >= 0 && S_ISREG(st.st_mode) && st.st_size == 0,
       "... on an empty file made for it in the mapping");
    for (size_t i = 0; i < n; i++) {
        free(binds[i].host);
        free(binds[i].container);
    }
    free(binds);

    /* A resumed task: the mapping opened again as it was, the inputs in
     * it left alone (an executor may have changed them), only the
     * streamable one's bind made again. */
    _cleanup_free_ char *content = in_root(&f, "/data/in/content.txt");
    (void) write_file_replace(content, "changed by an executor\n", 23, 0644);
    _cleanup_free_ char *root2 = NULL;
    int fd2 = -1;
    r = tes_stage_root_open(f.task_dir, &root2, &fd2, &err);
    ok(r >= 0 && streq(root2, f.root), "the mapping opened again: %s", error_message(&err));
    struct tes_stage again = f.s;
    again.root_fd = fd2;
    struct task_mount *b2 = NULL;
    size_t n2 = 0;
    r = tes_stage_inputs(&again, &tt, true, &b2, &n2, &err);
    ok(r >= 0 && n2 == 1 && streq(b2[0].host, one) && streq(b2[0].container, "/stream/one.txt") &&
           b2[0].mode == MOUNT_RO,
       "binds_only: the streamable input's read-only bind again: %s", error_message(&err));
    ok(content_is(content, "changed by an executor\n"),
       "binds_only: what is in the mapping is not staged again");
    for (size_t i = 0; i < n2; i++) {
        free(b2[i].host);
        free(b2[i].container);
    }
    free(b2);
    if (fd2 >= 0)
        close(fd2);

    error_clear(&err);
    r = stage_one(&f, input("s3://bucket/key", "/data/s3", NULL, -1), &err);
    ok(r == -EPROTONOSUPPORT && strstr(error_message(&err), "inputs[0]") &&
           strstr(error_message(&err), "\"s3\""),
       "an s3:// input has no storage, in words: %s", error_message(&err));
    error_clear(&err);
    _cleanup_free_ char *missing = at("host/missing");
    r = stage_one(&f, input(missing, "/data/m", NULL, -1), &err);
    ok(r == -ENOENT && strstr(error_message(&err), "does not exist"), "a missing host path: %s",
       error_message(&err));
    error_clear(&err);
    r = stage_one(&f, input("/etc/hostname", "/data/h", NULL, -1), &err);
    ok(r == -EACCES && strstr(error_message(&err), "never mounted"),
       "a path under /etc is never read: %s", error_message(&err));
    error_clear(&err);
    r = stage_one(&f, input("file:///etc/../etc/hostname", "/data/h", NULL, -1), &err);
    ok(r == -EACCES, "... nor through \"..\": %s", error_message(&err));
    error_clear(&err);
    _cleanup_free_ char *data_file = xasprintf("%s/x", cfg.data_dir);
    put("data/x", "x");
    r = stage_one(&f, input(data_file, "/data/d", NULL, -1), &err);
    ok(r == -EACCES && strstr(error_message(&err), "data directory"),
       "nor one in the proxy's data directory: %s", error_message(&err));
    error_clear(&err);
    r = stage_one(&f, input(tree, "/data/t2", NULL, TES_FILE), &err);
    ok(r == -EINVAL && strstr(error_message(&err), "directory"),
       "a directory where the input says FILE: %s", error_message(&err));
    error_clear(&err);
    r = stage_one(&f, input("file://otherhost/x", "/data/o", NULL, -1), &err);
    ok(r == -EINVAL, "a file:// URL of another host: %s", error_message(&err));
    fixture_done(&f);
}

static bool has_bind(const struct task_mount *b, size_t n, const struct fixture *f,
                     const char *cpath)
{
    _cleanup_free_ char *host = in_root(f, cpath);
    for (size_t i = 0; i < n; i++)
        if (streq(b[i].container, cpath) && streq(b[i].host, host) && b[i].mode == MOUNT_RW)
            return true;
    return false;
}

static void test_binds(void)
{
    struct fixture f;
    fixture_init(&f, "binds", NULL);
    char *volumes[] = {"/vol", NULL};
    struct tes_input ins[] = {
        input(NULL, "/vol/sub/in.txt", "x", -1),
        input(NULL, "/inputs/a.txt", "a", -1),
        input(NULL, "/top.txt", "t", -1),
    };
    struct tes_output outs[] = {
        {.url = "/x/o.txt", .path = "/out/o.txt"},
        {.url = "/x/d", .path = "/out/d", .type = TES_DIRECTORY, .type_given = true},
        {.url = "/x/w", .path = "/wild/*.txt", .path_prefix = "/wild/"},
    };
    char *cmd[] = {"true", NULL};
    struct tes_executor ex = {.image = "i", .command = cmd, .stdout_path = "/logs/out"};
    struct tes_task tt = {.executors = &ex,
                          .n_executors = 1,
                          .volumes = volumes,
                          .inputs = ins,
                          .n_inputs = ELEMENTSOF(ins),
                          .outputs = outs,
                          .n_outputs = ELEMENTSOF(outs)};
    _cleanup_error_ struct error err = ERROR_INIT;
    struct task_mount *b = NULL;
    size_t n = 0;
    int r = tes_stage_inputs(&f.s, &tt, false, &b, &n, &err);
    if (r >= 0)
        r = tes_stage_binds(&f.s, &tt, &b, &n, &err);
    ok(r >= 0, "binds made: %s", error_message(&err));
    for (size_t i = 0; i < n; i++)
        diag("bind %s -> %s", b[i].host, b[i].container);
    ok(n == 7, "seven binds (got %zu)", n);
    const char *want[] = {"/tmp", "/vol", "/inputs", "/top.txt", "/out", "/wild", "/logs"};
    for (size_t i = 0; i < ELEMENTSOF(want); i++)
        ok(has_bind(b, n, &f, want[i]), "%s is bound from the mapping", want[i]);
    struct stat st;
    _cleanup_free_ char *wild = in_root(&f, "/wild"), *logs = in_root(&f, "/logs");
    ok(stat(wild, &st) >= 0 && S_ISDIR(st.st_mode) && stat(logs, &st) >= 0 && S_ISDIR(st.st_mode),
       "each bound directory exists in the mapping");
    for (size_t i = 0; i < n; i++) {
        free(b[i].host);
        free(b[i].container);
    }
    free(b);
    fixture_done(&f);
}

static bool has_copied(const struct tes_stage_copied *c, const char *url, const char *path,
                       uint64_t size)
{
    for (size_t i = 0; i < c->n_files; i++)
        if (streq(c->files[i].url, url) && streq(c->files[i].path, path) &&
            c->files[i].size_bytes == size)
            return true;
    return false;
}

static void test_outputs(void)
{
    struct fixture f;
    fixture_init(&f, "outputs", NULL);
    /* What the executors left in the mapping. */
    put("outputs/tes/root/out/o.txt", "output\n");
    put("outputs/tes/root/out/d/a", "aa");
    put("outputs/tes/root/out/d/sub/b", "bbb");
    put("outputs/tes/root/wild/1.txt", "1");
    put("outputs/tes/root/wild/2.txt", "22");
    put("outputs/tes/root/wild/3.log", "333");
    put("outputs/tes/root/wild/.hidden.txt", "h");
    _cleanup_free_ char *evil = in_root(&f, "/out/evil");
    (void) symlink("/etc/hostname", evil);

    _cleanup_free_ char *res = at("res"), *o_url = xasprintf("file://%s/new/o.txt", res),
                        *d_url = xasprintf("%s/d", res), *w_url = xasprintf("%s/w", res),
                        *m_url = xasprintf("%s/missing", res), *e_url = xasprintf("%s/evil", res);
    struct tes_output outs[] = {
        {.url = o_url, .path = "/out/o.txt"},
        {.url = d_url, .path = "/out/d", .type = TES_DIRECTORY, .type_given = true},
        {.url = w_url, .path = "/wild/*.txt", .path_prefix = "/wild/"},
        {.url = m_url, .path = "/out/missing.txt"},
        {.url = e_url, .path = "/out/evil"},
        {.url = "/etc/ocps-test-output", .path = "/out/o.txt"},
        {.url = "s3://bucket/o", .path = "/out/o.txt"},
    };
    struct tes_task tt = {.outputs = outs, .n_outputs = ELEMENTSOF(outs)};
    struct tes_stage_copied c = {};
    _cleanup_error_ struct error err = ERROR_INIT;
    int r = tes_stage_outputs(&f.s, &tt, &c, &err);
    const char *msg = error_message(&err);
    ok(r < 0, "a failed output fails the copy: %s", msg);
    ok(strstr(msg, "outputs[3]: /out/missing.txt does not exist"), "a missing output is named");
    ok(strstr(msg, "outputs[4]") && strstr(msg, "symlink"), "a symlink is not copied");
    ok(strstr(msg, "outputs[5]") && strstr(msg, "never mounted"), "nothing is written to /etc");
    ok(strstr(msg, "outputs[6]") && strstr(msg, "\"s3\""), "s3:// has no storage");
    struct stat st;
    ok(stat("/etc/ocps-test-output", &st) < 0, "... and nothing was");

    _cleanup_free_ char *o = xasprintf("%s/new/o.txt", res), *da = xasprintf("%s/d/a", res),
                        *db = xasprintf("%s/d/sub/b", res), *w1 = xasprintf("%s/w/1.txt", res),
                        *w2 = xasprintf("%s/w/2.txt", res), *w3 = xasprintf("%s/w/3.log", res),
                        *wh = xasprintf("%s/w/.hidden.txt", res);
    ok(content_is(o, "output\n"), "a file output is copied, its directory made");
    ok(content_is(da, "aa") && content_is(db, "bbb"), "a directory output is copied whole");
    ok(content_is(w1, "1") && content_is(w2, "22"), "wildcard matches are copied under the URL");
    ok(stat(w3, &st) < 0 && stat(wh, &st) < 0, "... and nothing that does not match");
    ok(c.n_files == 5, "five files copied (%zu)", c.n_files);
    _cleanup_free_ char *da_url = xasprintf("%s/a", d_url), *db_url = xasprintf("%s/sub/b", d_url),
                        *w1_url = xasprintf("%s/1.txt", w_url);
    ok(has_copied(&c, o_url, "/out/o.txt", 7), "the file's url, path and size are logged");
    ok(has_copied(&c, da_url, "/out/d/a", 2) && has_copied(&c, db_url, "/out/d/sub/b", 3),
       "a directory is logged file by file");
    ok(has_copied(&c, w1_url, "/wild/1.txt", 1), "a wildcard match is logged with its own url");
    tes_stage_copied_done(&c);
    fixture_done(&f);
}

static void test_http(void)
{
    pthread_t th;
    if (!http_start(&th)) {
        skip("no loopback HTTP server: %s", strerror(errno));
        return;
    }
    struct fixture f;
    fixture_init(&f, "http", NULL);
    _cleanup_free_ char *ok_url = xasprintf("http://127.0.0.1:%u/ok", http_port),
                        *big = xasprintf("http://127.0.0.1:%u/big", http_port),
                        *nf = xasprintf("http://127.0.0.1:%u/nothing", http_port);
    _cleanup_error_ struct error err = ERROR_INIT;
    int r = stage_one(&f, input(ok_url, "/data/h/ok.txt", NULL, -1), &err);
    _cleanup_free_ char *p = in_root(&f, "/data/h/ok.txt");
    ok(r >= 0 && content_is(p, "hello over http\n"), "an http input is fetched: %s",
       error_message(&err));
    error_clear(&err);
    f.s.max_download = 10;
    r = stage_one(&f, input(big, "/data/h/big", NULL, -1), &err);
    ok(r == -EFBIG && strstr(error_message(&err), "larger than 10 bytes"),
       "past the size cap the fetch fails: %s", error_message(&err));
    error_clear(&err);
    f.s.max_download = 0;
    r = stage_one(&f, input(big, "/data/h/big", NULL, -1), &err);
    ok(r >= 0, "under the cap it is fetched: %s", error_message(&err));
    error_clear(&err);
    r = stage_one(&f, input(nf, "/data/h/nf", NULL, -1), &err);
    ok(r == -EREMOTEIO && strstr(error_message(&err), "HTTP 404"), "an HTTP error: %s",
       error_message(&err));
    error_clear(&err);
    r = stage_one(&f, input(ok_url, "/data/h/dir", NULL, TES_DIRECTORY), &err);
    ok(r == -EINVAL, "no DIRECTORY over http: %s", error_message(&err));

    /* The server on the port of one of the daemon's listeners: as if it
     * were the daemon, whose unauthenticated listeners answer anyone. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", http_port);
    struct config_listener l = {.address = addr};
    struct config own = cfg;
    own.listen = &l;
    own.n_listen = 1;
    f.s.cfg = &own;
    _cleanup_free_ char *by_name = xasprintf("http://localhost:%u/ok", http_port);
    const char *urls[] = {ok_url, by_name};
    for (size_t i = 0; i < ELEMENTSOF(urls); i++) {
        error_clear(&err);
        r = stage_one(&f, input(urls[i], "/data/h/own", NULL, -1), &err);
        ok(r == -EACCES && strstr(error_message(&err), "own listener"),
           "%s: the daemon's own listener is not fetched from: %s", urls[i], error_message(&err));
    }
    snprintf(addr, sizeof(addr), "unix:/run/x.sock");
    error_clear(&err);
    r = stage_one(&f, input(ok_url, "/data/h/own", NULL, -1), &err);
    ok(r >= 0, "a unix-socket listener has no port to keep from: %s", error_message(&err));
    f.s.cfg = &cfg;
    (void) eventfd_write(http_stop, 1);
    pthread_join(th, NULL);
    fixture_done(&f);
}

static void test_abort(void)
{
    struct fixture f;
    fixture_init(&f, "abort", NULL);
    int efd = eventfd(1, EFD_CLOEXEC);
    f.s.abort_fds = &efd;
    f.s.n_abort_fds = 1;
    _cleanup_error_ struct error err = ERROR_INIT;
    int r = stage_one(&f, input(NULL, "/a", "x", -1), &err);
    ok(r == -ECANCELED, "an abort fd stops the inputs: %s", error_message(&err));
    close(efd);
    fixture_done(&f);
}

/* As nobody: what the account may not read is refused, and what it
 * makes is its own. */
static void test_as_user(void)
{
    if (geteuid() != 0) {
        skip("not root: cannot take another account's identity");
        return;
    }
    gid_t groups[] = {65534};
    struct user_ids u = {.uid = 65534, .gid = 65534, .groups = groups, .n_groups = 1};
    struct fixture f;
    fixture_init(&f, "nobody", &u);
    struct stat st;
    ok(fstat(f.root_fd, &st) >= 0 && st.st_uid == 65534, "the mapping is the account's");
    put("private/x", "secret");
    _cleanup_free_ char *priv = at("private"), *px = at("private/x");
    (void) chmod(priv, 0700);
    put("public/y", "public");
    _cleanup_free_ char *py = at("public/y");
    _cleanup_error_ struct error err = ERROR_INIT;
    int r = stage_one(&f, input(px, "/in/x", NULL, -1), &err);
    ok(r == -EACCES && strstr(error_message(&err), "user nobody may not read"),
       "a file the account may not read is refused: %s", error_message(&err));
    error_clear(&err);
    r = stage_one(&f, input(py, "/in/y", NULL, -1), &err);
    _cleanup_free_ char *iy = in_root(&f, "/in/y");
    ok(r >= 0 && stat(iy, &st) >= 0 && st.st_uid == 65534, "a copied input is the account's: %s",
       error_message(&err));
    error_clear(&err);
    struct tes_output o = {.url = px, .path = "/in/y"};
    struct tes_task tt = {.outputs = &o, .n_outputs = 1};
    struct tes_stage_copied c = {};
    r = tes_stage_outputs(&f.s, &tt, &c, &err);
    ok(r == -EACCES && content_is(px, "secret"),
       "an output cannot overwrite what the account may not write: %s", error_message(&err));
    tes_stage_copied_done(&c);
    fixture_done(&f);
}

int main(void)
{
    if (!mkdtemp(tmp))
        return 99;
    (void) chmod(tmp, 0755);
    _cleanup_free_ char *data = at("data");
    (void) mkdir(data, 0700);
    cfg.data_dir = data;
    test_storage_find();
    test_inputs();
    test_binds();
    test_outputs();
    test_http();
    test_abort();
    test_as_user();
    (void) rm_rf(tmp);
    return tap_done();
}
