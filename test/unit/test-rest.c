/*
 * Unit tests: the REST client (lib/rest/rest.c) against a small HTTP
 * server of the test's own, on a unix socket in a temporary directory
 * and on 127.0.0.1: canned replies (JSON, errors, lines, a reply header,
 * the prefix and headers sent), the words for a service that cannot be
 * reached, and abort fds: a server that accepts a request and never
 * answers must not hold a call once an abort fd (the client's or the
 * call's) is written. alarm() turns a call that hangs into a failure.
 */
#include "rest/rest.h"
#include "tap.h"
#include "util/json.h"

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* The server: one connection at a time. It reads a request (headers and
 * a Content-Length body), keeps its text, writes 1 to notify_fd if set,
 * then sends reply and closes - or, with reply NULL, keeps the
 * connection open without a word until the client goes. */
struct server {
    int listen_fd;
    int stop_fd;
    pthread_t thread;
    pthread_mutex_t lock;
    const char *reply;
    int notify_fd;
    char request[8192];
};

/* Waits for fd or the server's stop; false on stop. */
static bool server_wait(struct server *s, int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop_fd, .events = POLLIN}};
    while (poll(p, 2, -1) < 0)
        ;
    return !(p[1].revents & POLLIN);
}

static bool read_request(struct server *s, int fd, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (;;) {
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            size_t body = cl ? strtoul(cl + strlen("\r\nContent-Length:"), NULL, 10) : 0;
            if (n >= (size_t) (end + 4 - buf) + body)
                return true;
        }
        if (n + 1 >= size || !server_wait(s, fd))
            return false;
        ssize_t k = recv(fd, buf + n, size - 1 - n, 0);
        if (k <= 0)
            return false;
        n += (size_t) k;
        buf[n] = '\0';
    }
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    while (server_wait(s, s->listen_fd)) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        char buf[8192];
        if (read_request(s, fd, buf, sizeof(buf))) {
            pthread_mutex_lock(&s->lock);
            snprintf(s->request, sizeof(s->request), "%s", buf);
            const char *reply = s->reply;
            int notify = s->notify_fd;
            pthread_mutex_unlock(&s->lock);
            if (notify >= 0)
                (void) eventfd_write(notify, 1);
            if (reply)
                (void) send(fd, reply, strlen(reply), MSG_NOSIGNAL);
            else /* silent: until the client hangs up */
                while (server_wait(s, fd) && recv(fd, buf, sizeof(buf), 0) > 0)
                    ;
        }
        close(fd);
    }
    return NULL;
}

static void server_start(struct server *s, int listen_fd)
{
    *s = (struct server){.listen_fd = listen_fd, .notify_fd = -1};
    s->stop_fd = eventfd(0, EFD_CLOEXEC);
    pthread_mutex_init(&s->lock, NULL);
    pthread_create(&s->thread, NULL, server_main, s);
}

static void server_stop(struct server *s)
{
    (void) eventfd_write(s->stop_fd, 1);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    close(s->stop_fd);
    pthread_mutex_destroy(&s->lock);
}

/* The next requests' reply (NULL: never answer) and who hears of them. */
static void server_set(struct server *s, const char *reply, int notify_fd)
{
    pthread_mutex_lock(&s->lock);
    s->reply = reply;
    s->notify_fd = notify_fd;
    s->request[0] = '\0';
    pthread_mutex_unlock(&s->lock);
}

static int unix_listen(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(fd, 8) < 0) {
        diag("listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int tcp_listen(unsigned *ret_port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *) &a, &len) < 0) {
        close(fd);
        return -1;
    }
    *ret_port = ntohs(a.sin_port);
    return fd;
}

static int test_status_errno(long status)
{
    return status == 404 ? -ENOENT : -EREMOTEIO;
}

static const char reply_ok[] = "HTTP/1.1 200 OK\r\nConnection: close\r\nApi-Version: 1.23\r\n"
                               "Content-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                               "{\"a\":\"b c\"}";
static const char reply_404[] = "HTTP/1.1 404 Not Found\r\nConnection: close\r\n"
                                "Content-Length: 23\r\n\r\n"
                                "{\"message\":\"no such x\"}";
static const char reply_500[] = "HTTP/1.1 500 Oops\r\nConnection: close\r\n"
                                "Content-Length: 4\r\n\r\nnope";
static const char reply_lines[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                  "Content-Length: 25\r\n\r\n"
                                  "{\"n\":1}\r\n\n{\"n\":2}\n{\"n\":3}";

static void test_new(void)
{
    static const struct rest_options bad[] = {
        {.name = "svc"},                                      /* neither socket nor URL */
        {.name = "svc", .socket = "/s", .url = "http://h:1"}, /* both */
        {.name = "svc", .socket = "rel.sock"},
        {.name = "svc", .url = "ftp://h:1"},
        {.name = "svc", .url = "h:1"},
        {.name = "svc", .url = "http://"},
        {.name = "svc", .url = "http:///x"},
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        _cleanup_error_ struct error err = ERROR_INIT;
        struct rest *r = NULL;
        int ret = rest_new(&bad[i], &r, &err);
        ok(ret == -EINVAL && !r, "socket %s, URL %s: refused (%s)", bad[i].socket ?: "none",
           bad[i].url ?: "none", error_message(&err));
    }
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_(rest_freep) struct rest *r = NULL;
    int ret =
        rest_new(&(struct rest_options){.name = "svc", .url = "http://127.0.0.1:1/"}, &r, &err);
    ok(ret == 0 && streq(rest_where(r), "http://127.0.0.1:1/"), "http://HOST:PORT/ is taken");
    _cleanup_(rest_freep) struct rest *tls = NULL;
    error_clear(&err);
    ret = rest_new(&(struct rest_options){.name = "svc", .url = "https://h:1"}, &tls, &err);
    ok(ret == 0 && streq(rest_where(tls), "https://h:1"), "https://HOST:PORT is taken");
}

static void test_escape(void)
{
    _cleanup_free_ char *s = rest_escape("{\"label\":[\"a=b c\"]}");
    ok(streq(s, "%7B%22label%22%3A%5B%22a%3Db%20c%22%5D%7D"), "escape: %s", s);
}

/* Where nothing listens: the service's name, the socket and why. */
static void test_unreachable(const char *dir)
{
    static const struct {
        const char *file;
        const char *why;
    } rows[] = {
        {"absent.sock", "No such file or directory"},
        {"file.sock", "not a socket"},
        {"closed.sock", "connection refused (is svc running?)"},
    };
    _cleanup_free_ char *file = xasprintf("%s/file.sock", dir);
    _cleanup_free_ char *closed = xasprintf("%s/closed.sock", dir);
    (void) write_file_replace(file, "", 0, 0600);
    int fd = unix_listen(closed);
    close(fd); /* bound, nobody listening */
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        _cleanup_error_ struct error err = ERROR_INIT;
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, rows[i].file);
        _cleanup_(rest_freep) struct rest *r = NULL;
        (void) rest_new(&(struct rest_options){.name = "svc", .socket = path}, &r, &err);
        int st = rest_call(r, &(struct rest_request){.method = "GET", .path = "/x"}, NULL, &err);
        _cleanup_free_ char *want = xasprintf("cannot reach svc at %s: %s", path, rows[i].why);
        ok(st == -EREMOTEIO && streq(error_message(&err), want), "%s: %d %s", rows[i].file, st,
           error_message(&err));
    }
}

struct lines {
    char seen[256];
    long headers_status;
};

static int on_line(void *userdata, const char *line, size_t len)
{
    struct lines *l = userdata;
    size_t n = strlen(l->seen);
    snprintf(l->seen + n, sizeof(l->seen) - n, "%.*s|", (int) len, line);
    return 0;
}

static int on_data(void *userdata, const char *buf, size_t len)
{
    return on_line(userdata, buf, len);
}

static void on_headers(void *userdata, long status)
{
    struct lines *l = userdata;
    l->headers_status = status;
}

static void test_replies(struct server *s, struct rest *r, const char *where)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    cJSON *j = NULL;
    char version[8] = "";

    server_set(s, reply_ok, -1);
    cJSON *body = cJSON_Parse("{\"k\":1}");
    int st = rest_call(
        r,
        &(struct rest_request){.method = "POST",
                               .path = "/things?x=1",
                               .body = body,
                               .header = "X-Call: 1",
                               .headers = (const char *const[]){"X-More: a", "X-More-2: b", NULL},
                               .reply_header = "api-version",
                               .reply_value = version,
                               .reply_value_size = sizeof(version)},
        &j, &err);
    cJSON_Delete(body);
    ok(st == 200 && streq_ptr(json_str(j, "a"), "b c"), "%s: 200 with its JSON reply (%d %s)",
       where, st, error_message(&err));
    cJSON_Delete(j);
    j = NULL;
    ok(streq(version, "1.23"), "%s: the reply header asked for is kept: \"%s\"", where, version);
    pthread_mutex_lock(&s->lock);
    ok(startswith(s->request, "POST /v9/things?x=1 HTTP/1.1\r\n"),
       "%s: the path comes after the client's prefix", where);
    ok(strstr(s->request, "\r\nX-Client: yes\r\n") && strstr(s->request, "\r\nX-Call: 1\r\n") &&
           strstr(s->request, "\r\nX-More: a\r\n") && strstr(s->request, "\r\nX-More-2: b\r\n") &&
           strstr(s->request, "\r\nContent-Type: application/json\r\n") &&
           strstr(s->request, "\r\n\r\n{\"k\":1}"),
       "%s: the client's and the call's headers and the JSON body are sent", where);
    pthread_mutex_unlock(&s->lock);

    server_set(s, reply_ok, -1);
    st = rest_call(r, &(struct rest_request){.method = "GET", .path = "/_ping", .unprefixed = true},
                   NULL, &err);
    pthread_mutex_lock(&s->lock);
    ok(st == 200 && startswith(s->request, "GET /_ping HTTP/1.1\r\n"),
       "%s: an unprefixed path goes as it is", where);
    pthread_mutex_unlock(&s->lock);

    server_set(s, reply_404, -1);
    st = rest_call(r, &(struct rest_request){.method = "GET", .path = "/x"}, &j, &err);
    ok(st == 404 && err.code == -ENOENT && streq(error_message(&err), "no such x") && !j,
       "%s: 404 is the status, with the reply's message and the client's errno (%s)", where,
       error_message(&err));

    server_set(s, reply_500, -1);
    st = rest_call(r, &(struct rest_request){.method = "DELETE", .path = "/x"}, NULL, &err);
    ok(st == 500 && err.code == -EREMOTEIO && streq(error_message(&err), "DELETE /x: HTTP 500"),
       "%s: an error without a message names the call and its status (%s)", where,
       error_message(&err));

    struct lines l = {0};
    server_set(s, reply_lines, -1);
    st = rest_stream(
        r, &(struct rest_request){.method = "GET", .path = "/events"},
        &(struct rest_stream){.line = on_line, .headers_done = on_headers, .userdata = &l}, &err);
    ok(st == 200 && streq(l.seen, "{\"n\":1}|{\"n\":2}|{\"n\":3}|") && l.headers_status == 200,
       "%s: a stream's lines, the last without its newline: %s", where, l.seen);

    l = (struct lines){0};
    server_set(s, reply_ok, -1);
    st = rest_stream(r, &(struct rest_request){.method = "GET", .path = "/logs"},
                     &(struct rest_stream){.data = on_data, .userdata = &l}, &err);
    ok(st == 200 && streq(l.seen, "{\"a\":\"b c\"}|"), "%s: a stream's data as it is: %s", where,
       l.seen);
}

/* A call to a server that took the request and never answers: ended by
 * the abort fd the server writes once it has the request. */
static void test_abort(struct server *s, struct rest *r, int client_fd)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_close_ int call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    uint64_t v;

    server_set(s, NULL, client_fd);
    int st = rest_call(r, &(struct rest_request){.method = "POST", .path = "/containers/create"},
                       NULL, &err);
    ok(st == -ECANCELED && streq(error_message(&err), "POST /containers/create: cancelled"),
       "a short call ends when the client's abort fd is written (%d %s)", st, error_message(&err));
    (void) eventfd_read(client_fd, &v);

    server_set(s, NULL, call_fd);
    struct lines l = {0};
    st = rest_stream(r,
                     &(struct rest_request){.method = "GET",
                                            .path = "/events",
                                            .abort_fds = (int[]){-1, call_fd},
                                            .n_abort_fds = 2},
                     &(struct rest_stream){.line = on_line, .userdata = &l}, &err);
    ok(st == -ECANCELED, "a stream ends when its own abort fd is written (%d %s)", st,
       error_message(&err));
    (void) eventfd_read(call_fd, &v);

    struct rest_group *g = rest_group_new(r);
    server_set(s, NULL, client_fd);
    int n = rest_group_add(g, &(struct rest_request){.method = "POST", .path = "/wait"},
                           &(struct rest_stream){.line = on_line, .userdata = &l}, &err);
    int result = 0;
    st = rest_group_run(g, NULL, 0, &result, &err);
    ok(n == 0 && st == -ECANCELED, "a group's run ends when the client's abort fd is written (%d)",
       st);
    rest_group_free(g);
    (void) eventfd_read(client_fd, &v);

    /* An abort fd left readable ends every later call that has to wait. */
    (void) eventfd_write(client_fd, 1);
    server_set(s, NULL, -1);
    st = rest_call(r, &(struct rest_request){.method = "GET", .path = "/x"}, NULL, &err);
    ok(st == -ECANCELED, "a call made after the abort fd was written does not wait (%d)", st);
    (void) eventfd_read(client_fd, &v);

    server_set(s, reply_ok, -1);
    st = rest_call(r, &(struct rest_request){.method = "GET", .path = "/x"}, NULL, &err);
    ok(st == 200, "the client calls again once the abort fd is read (%d %s)", st,
       st < 0 ? error_message(&err) : "");
}

int main(void)
{
    /* A call that hangs fails the test instead of holding up the suite. */
    alarm(60);
    char dir[] = "/tmp/ocps-test-rest-XXXXXX";
    if (!mkdtemp(dir))
        tap_skip_all("mkdtemp failed");

    test_new();
    test_escape();
    test_unreachable(dir);

    _cleanup_free_ char *path = xasprintf("%s/svc.sock", dir);
    int fd = unix_listen(path);
    unsigned port = 0;
    int tfd = tcp_listen(&port);
    if (!ok(fd >= 0 && tfd >= 0, "the test's servers listen on %s and 127.0.0.1:%u", path, port))
        return tap_done();
    struct server us, ts;
    server_start(&us, fd);
    server_start(&ts, tfd);
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *url = xasprintf("http://127.0.0.1:%u", port);
    _cleanup_(rest_freep) struct rest *r = NULL, *t = NULL;
    (void) rest_new(
        &(struct rest_options){
            .name = "svc", .socket = path, .prefix = "/v9", .status_errno = test_status_errno},
        &r, &err);
    (void) rest_new(
        &(struct rest_options){
            .name = "svc", .url = url, .prefix = "/v9", .status_errno = test_status_errno},
        &t, &err);
    rest_add_header(r, "X-Client: yes");
    rest_add_header(t, "X-Client: yes");
    _cleanup_close_ int client_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ok(rest_add_abort_fd(r, client_fd) == 0, "the client takes an abort fd");

    test_replies(&us, r, "unix socket");
    test_replies(&ts, t, "TCP");
    test_abort(&us, r, client_fd);

    r = rest_free(r);
    t = rest_free(t);
    server_stop(&us);
    server_stop(&ts);
    (void) rm_rf(dir);
    return tap_done();
}
