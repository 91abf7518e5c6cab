/*
 * Unit tests: the Docker Engine API client (backends/docker/engine.c).
 * The frame decoder runs everywhere; the rest talks to the real dockerd
 * on its unix socket (test/docker/setup.sh starts one and imports the
 * busybox test image) and is skipped, with a reason, when there is none.
 * Containers run with network none and are removed by the test.
 */
#include "docker/engine.h"
#include "tap.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#define IMAGE "ocps-test/busybox:1"

static char *fd_text(int fd)
{
    off_t n = lseek(fd, 0, SEEK_END);
    char *s = xcalloc(1, (size_t) n + 1);
    if (pread(fd, s, (size_t) n, 0) != n)
        s[0] = '\0';
    return s;
}

/* Every way of slicing one multiplexed stream gives the same output. */
static void test_demux(void)
{
    static const unsigned char stream[] = {
        1,    0, 0, 0, 0, 0, 0, 4, 'o', 'u', 't', '\n', 2,    0, 0, 0, 0, 0, 0, 4, 'e', 'r', 'r',
        '\n', 1, 0, 0, 0, 0, 0, 0, 0, /* an empty frame */
        3,    0, 0, 0, 0, 0, 0, 5, 'o', 'o', 'p', 's',  '\n', 1, 0, 0, 0, 0, 0, 0, 2,   'o', 'k',
    };
    bool all = true;
    for (size_t slice = 1; slice <= sizeof(stream); slice++) {
        int out = memfd_create("out", MFD_CLOEXEC), err = memfd_create("err", MFD_CLOEXEC);
        struct engine_demux d;
        engine_demux_init(&d, out, err);
        for (size_t off = 0; off < sizeof(stream); off += slice)
            engine_demux_feed(&d, (const char *) stream + off, MIN(slice, sizeof(stream) - off));
        _cleanup_free_ char *o = fd_text(out), *e = fd_text(err);
        if (!streq(o, "out\nok") || !streq(e, "err\noops\n") || d.error) {
            all = false;
            diag("slice %zu: stdout \"%s\" stderr \"%s\"", slice, o, e);
        }
        close(out);
        close(err);
    }
    ok(all, "frames sliced at every size demultiplex to the same stdout and stderr");
}

/* A limit on the output: what comes up to it is written, then -EFBIG. */
static void test_demux_limit(void)
{
    static const unsigned char stream[] = {
        1, 0, 0, 0, 0, 0, 0, 4, 'o', 'u', 't', '\n', 2, 0, 0, 0, 0, 0, 0, 4, 'e', 'r', 'r', '\n',
    };
    bool all = true;
    for (uint64_t limit = 1; limit <= 9 && all; limit++) {
        int out = memfd_create("out", MFD_CLOEXEC), err = memfd_create("err", MFD_CLOEXEC);
        struct engine_demux d;
        engine_demux_init(&d, out, err);
        d.limit = limit;
        engine_demux_feed(&d, (const char *) stream, sizeof(stream));
        _cleanup_free_ char *o = fd_text(out), *e = fd_text(err);
        size_t got = strlen(o) + strlen(e);
        if (got != MIN(limit, 8) || (limit < 8 ? d.error != -EFBIG : d.error != 0)) {
            all = false;
            diag("limit %" PRIu64 ": wrote \"%s\" and \"%s\", error %d", limit, o, e, d.error);
        }
        close(out);
        close(err);
    }
    ok(all, "a limit lets as many bytes through (stdout and stderr together), then says EFBIG");
}

static void test_new(void)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    struct engine *e = NULL;
    ok(engine_new("relative/path", &e, &err) == -EINVAL && !e, "a relative socket path is refused");
    setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
    int r = engine_new(NULL, &e, &err);
    ok(r == -EINVAL && strstr(error_message(&err), "unix://"),
       "DOCKER_HOST=tcp:// is refused, naming unix:// (%s)", error_message(&err));
    setenv("DOCKER_HOST", "unix:///run/x.sock", 1);
    ok(engine_new(NULL, &e, &err) == 0 && streq(engine_socket(e), "/run/x.sock"),
       "DOCKER_HOST=unix:///run/x.sock is honoured");
    e = engine_free(e);
    unsetenv("DOCKER_HOST");
    ok(engine_new(NULL, &e, &err) == 0 && streq(engine_socket(e), ENGINE_DEFAULT_SOCKET),
       "the default socket is %s", ENGINE_DEFAULT_SOCKET);
    e = engine_free(e);

    _cleanup_(engine_freep) struct engine *nowhere = NULL;
    (void) engine_new("/nonexistent/docker.sock", &nowhere, &err);
    r = engine_ping(nowhere, &err);
    ok(r == -EREMOTEIO && strstr(error_message(&err),
                                 "cannot reach dockerd at /nonexistent/docker.sock: No such file"),
       "an absent dockerd is -EREMOTEIO naming the socket (%s)", error_message(&err));
}

/* A dockerd that takes the connection and never answers (a socket whose
 * backlog holds it): the engine's abort fd, the daemon's shutdown fd,
 * ends a create there instead of curl's 300 s timeout. */
static void test_abort(void)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    char dir[] = "/tmp/ocps-test-engine-XXXXXX";
    if (!mkdtemp(dir)) {
        ok(false, "mkdtemp: %s", strerror(errno));
        return;
    }
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/docker.sock", dir);
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    _cleanup_close_ int shutdown_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    _cleanup_(engine_freep) struct engine *e = NULL;
    if (!ok(bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0 && listen(fd, 8) == 0 &&
                engine_new(a.sun_path, &e, &err) == 0 && engine_add_abort_fd(e, shutdown_fd) == 0,
            "a silent dockerd listens on %s", a.sun_path))
        return;
    (void) eventfd_write(shutdown_fd, 1);
    cJSON *body = cJSON_Parse("{\"Image\":\"" IMAGE "\"}");
    int st = engine_call(e, "POST", "/containers/create?name=x", body, NULL, &err);
    cJSON_Delete(body);
    ok(st == -ECANCELED && streq(error_message(&err), "POST /containers/create?name=x: cancelled"),
       "a create call to a dockerd that does not answer ends on the engine's abort fd (%d %s)", st,
       error_message(&err));
    st = engine_ping(e, &err);
    ok(st == -ECANCELED, "so does a ping (%d %s)", st, error_message(&err));
    (void) unlink(a.sun_path);
    (void) rmdir(dir);
}

struct waiter {
    struct engine *e;
    const char *id;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool registered;
    int status;     /* HTTP */
    long exit_code; /* from the reply */
    char *reply;
};

static int wait_line(void *userdata, const char *line, size_t len)
{
    struct waiter *w = userdata;
    w->reply = xstrndup(line, len);
    cJSON *j = cJSON_Parse(w->reply);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "StatusCode");
    w->exit_code = cJSON_IsNumber(c) ? (long) c->valuedouble : -1;
    cJSON_Delete(j);
    return 0;
}

static void wait_headers(void *userdata, long status)
{
    struct waiter *w = userdata;
    pthread_mutex_lock(&w->lock);
    w->registered = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void *wait_main(void *arg)
{
    struct waiter *w = arg;
    struct error err = ERROR_INIT;
    _cleanup_free_ char *path = xasprintf("/containers/%s/wait?condition=next-exit", w->id);
    struct engine_stream s = {wait_line, wait_headers, w};
    w->status = engine_stream(w->e, "POST", path, NULL, &s, &err);
    error_clear(&err);
    wait_headers(w, 0); /* never leave the test waiting */
    return NULL;
}

static void test_container(void)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_(engine_freep) struct engine *e = NULL;
    (void) engine_new(NULL, &e, &err);
    /* The docker suite runs against the dockerd test/docker/setup.sh starts:
     * without it (or its image) these are failures, not skips. */
    int pr = engine_ping(e, &err);
    unsigned maj = 0, min = 0;
    if (!ok(pr == 0 && sscanf(engine_api_version(e), "%u.%u", &maj, &min) == 2 && maj == 1 &&
                min >= 12 && min <= 41,
            "ping dockerd at %s: API version %s (1.12 to 1.41) (%s)", engine_socket(e),
            engine_api_version(e), pr < 0 ? error_message(&err) : "ok"))
        return;

    cJSON *img = NULL;
    int st = engine_call(e, "GET", "/images/" IMAGE "/json", NULL, &img, &err);
    cJSON_Delete(img);
    if (!ok(st == 200, "the test image %s is there (test/docker/setup.sh makes it): %d", IMAGE, st))
        return;

    st = engine_call(e, "GET", "/containers/doesnotexist-ocps/json", NULL, NULL, &err);
    ok(st == 404 && err.code == -ENOENT && strstr(error_message(&err), "No such container"),
       "a missing container is 404 with dockerd's message (%d %s)", st, error_message(&err));

    cJSON *body = cJSON_Parse("{\"Image\":\"" IMAGE "\",\"Cmd\":[\"sh\",\"-c\","
                              "\"echo out; echo err >&2; exit 3\"],"
                              "\"Labels\":{\"org.ocps-proxy.test\":\"engine\"},"
                              "\"HostConfig\":{\"NetworkMode\":\"none\"}}");
    cJSON *created = NULL;
    st = engine_call(e, "POST", "/containers/create", body, &created, &err);
    cJSON_Delete(body);
    const cJSON *idj = cJSON_GetObjectItemCaseSensitive(created, "Id");
    if (!ok(st == 201 && cJSON_IsString(idj), "create: %d %s", st,
            st < 0 || st >= 400 ? error_message(&err) : "")) {
        cJSON_Delete(created);
        return;
    }
    _cleanup_free_ char *id = xstrdup(idj->valuestring);
    cJSON_Delete(created);

    /* create -> wait(next-exit) registered -> start: the exit cannot be missed. */
    struct waiter w = {.e = e,
                       .id = id,
                       .lock = PTHREAD_MUTEX_INITIALIZER,
                       .cond = PTHREAD_COND_INITIALIZER,
                       .exit_code = -1};
    pthread_t t;
    pthread_create(&t, NULL, wait_main, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.registered)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    _cleanup_free_ char *start = xasprintf("/containers/%s/start", id);
    st = engine_call(e, "POST", start, NULL, NULL, &err);
    ok(st == 204, "start: %d", st);
    pthread_join(t, NULL);
    ok(w.status == 200 && w.exit_code == 3, "wait(next-exit) reports exit 3 (HTTP %d, %s)",
       w.status, w.reply ? w.reply : "no reply");
    free(w.reply);

    int out = memfd_create("out", MFD_CLOEXEC), errfd = memfd_create("err", MFD_CLOEXEC);
    st = engine_logs(e, id, false, out, errfd, 0, -1, &err);
    _cleanup_free_ char *o = fd_text(out), *x = fd_text(errfd);
    ok(st == 200 && streq(o, "out\n") && streq(x, "err\n"),
       "logs demultiplexed: stdout \"%s\" stderr \"%s\"", o, x);
    close(out);
    close(errfd);

    cJSON *info = NULL;
    _cleanup_free_ char *inspect = xasprintf("/containers/%s/json", id);
    st = engine_call(e, "GET", inspect, NULL, &info, &err);
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(info, "State");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(state, "ExitCode");
    ok(st == 200 && cJSON_IsNumber(code) && code->valueint == 3, "inspect: State.ExitCode 3");
    cJSON_Delete(info);

    _cleanup_free_ char *del = xasprintf("/containers/%s?force=1&v=1", id);
    st = engine_call(e, "DELETE", del, NULL, NULL, &err);
    ok(st == 204, "remove: %d", st);
    st = engine_call(e, "GET", inspect, NULL, NULL, &err);
    ok(st == 404, "gone after remove: %d", st);
}

int main(void)
{
    /* A call that hangs fails the test instead of holding up the suite. */
    alarm(100);
    test_demux();
    test_demux_limit();
    test_new();
    test_abort();
    test_container();
    return tap_done();
}
