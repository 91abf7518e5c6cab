/*
 * gate: our own accept path in front of libmicrohttpd.
 *
 * libmicrohttpd 0.9.75 closes a connection whose request line is one word
 * ("GET\r\n\r\n") without an answer, and answers a Content-Length it
 * cannot parse ("abc", "-1", past 2^64) with its status line and headers
 * twice: parse_connection_headers() queues the error reply and builds
 * its header, then the state machine carries on and builds it again.
 * Neither request reaches our access handler, so nothing in the router
 * can fix them. The gate accepts each connection itself and looks at
 * the head of its first request without consuming it (MSG_PEEK): a head
 * with one of these faults is answered here, with the one error body
 * (reply.c), and the connection is closed after a bounded linger (http.h);
 * any other connection goes to its daemon through MHD_add_connection(),
 * as MHD's own accept would have handed it over. Later requests on a
 * kept-alive connection reach MHD's parser unchecked.
 *
 * A TLS connection (an https listener's) has no plaintext head to peek
 * at: its first bytes are a ClientHello, which the head check would
 * misread (a binary line without a space is "a malformed request line").
 * It waits here only for its first byte: a TLS record goes to MHD, which
 * runs the handshake; a plain HTTP request (an upper-case method letter)
 * is answered 400 in plain text, as nginx does, rather than left to a
 * handshake that fails without a word. So the head checks above do not
 * cover requests over TLS: those reach MHD's parser as they are (its two
 * faults cost such a client a closed connection or a doubled error head,
 * nothing more); checking them would mean ending TLS here, in front of
 * MHD.
 *
 * One thread polls the listening sockets and the connections still
 * waiting for their head. A socket stays readable while peeked data sits
 * in it, so a head that came in part is peeked again after a backoff
 * (GATE_BACKOFF_MIN doubling to GATE_BACKOFF_MAX), not on readability.
 */
#include "http.h"
#include "util/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>

/* A head larger than this is left to MHD, which answers it 431 (its
 * default per-connection memory is 32 KiB, the head included). */
#define GATE_HEAD_MAX    (32 * 1024)
#define GATE_BACKOFF_MIN (5 * USEC_PER_MSEC)
#define GATE_BACKOFF_MAX (500 * USEC_PER_MSEC)
/* After accept() fails for want of file descriptors or memory. */
#define GATE_ACCEPT_PAUSE (100 * USEC_PER_MSEC)
#define GATE_NEVER        INT64_MAX

/* ---- the head ---- */

/* s with anything but printable ASCII as '?', at most 64 bytes: words of
 * a hostile request quoted in a message. */
static char *printable(const char *s, size_t len)
{
    char *p = xstrndup(s, MIN(len, 64));
    for (char *c = p; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?';
    return p;
}

int http_content_length(const char *s, size_t len, uint64_t *ret, struct error *err)
{
    uint64_t n = 0;
    int r = len == 0 ? -EINVAL : 0;
    for (size_t i = 0; i < len && r == 0; i++) {
        unsigned d = (unsigned char) s[i] - '0';
        if (d > 9)
            r = -EINVAL;
        else if (n > (UINT64_MAX - d) / 10)
            r = -E2BIG;
        else
            n = n * 10 + d;
    }
    if (r < 0) {
        _cleanup_free_ char *v = printable(s, len);
        return error_set(err, r,
                         r == -EINVAL ? "Content-Length \"%s\" is not a number of bytes"
                                      : "Content-Length %s is more than any body we take",
                         v);
    }
    *ret = n;
    return 0;
}

/* A Content-Length field's value: what MHD will take, and the same
 * value in every Content-Length field of the head. */
static int check_content_length(const char *value, size_t len, uint64_t *seen, bool *have,
                                struct error *err)
{
    /* MHD strips the blanks before a value, not those after it. */
    while (len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    uint64_t n;
    if (http_content_length(value, len, &n, err) < 0)
        return err->code;
    if (*have && n != *seen)
        return error_set(err, -EINVAL,
                         "conflicting Content-Length fields: %" PRIu64 " and %" PRIu64, *seen, n);
    *seen = n;
    *have = true;
    return 0;
}

int http_head_check(const char *buf, size_t len, struct error *err)
{
    const char *p = buf, *end = buf + len;
    bool request_line = true, in_content_length = false, have_length = false;
    uint64_t length = 0;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        if (!nl)
            return 0;
        size_t n = (size_t) (nl - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        const char *line = p;
        p = nl + 1;
        if (request_line) {
            /* Empty lines before the request line are skipped (RFC 9112 2.2), as MHD does. */
            if (n == 0)
                continue;
            if (!memchr(line, ' ', n)) {
                _cleanup_free_ char *v = printable(line, n);
                return error_set(err, -EINVAL,
                                 "malformed request line \"%s\": expected METHOD /path HTTP/1.1",
                                 v);
            }
            request_line = false;
            continue;
        }
        if (n == 0)
            return 1;
        if (line[0] == ' ' || line[0] == '\t') {
            /* An obsolete line folding continues the field before it. */
            if (in_content_length)
                return error_set(err, -EINVAL, "Content-Length folded over several lines");
            continue;
        }
        static const char name[] = "content-length:";
        in_content_length = n >= STRLEN(name) && strncasecmp(line, name, STRLEN(name)) == 0;
        if (in_content_length && check_content_length(line + STRLEN(name), n - STRLEN(name),
                                                      &length, &have_length, err) < 0)
            return err->code;
    }
}

/* ---- the gate ---- */

struct gate_conn {
    int fd;
    struct MHD_Daemon *daemon;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    usec_t deadline; /* the head must be in by then; lingering: the next read */
    usec_t retry_at; /* the next peek at a partial head; 0: when readable */
    usec_t backoff;
    usec_t linger_end; /* lingering after our answer, until then; 0: not lingering */
    uint64_t dropped;
    int pfd;  /* its index in the poll set, -1 if not polled */
    bool tls; /* an https listener's: its first byte decides */
};

struct http_gate {
    pthread_t thread;
    int stop_fd;
    size_t n;
    int *fds;
    struct MHD_Daemon **daemons;
    struct gate_conn *conns; /* waiting for their head, or lingering */
    size_t n_conns, alloc_conns, max_conns;
    struct pollfd *pfds;
    size_t alloc_pfds;
    unsigned timeout;
    usec_t accept_paused; /* until then */
};

static void conn_remove(struct http_gate *g, size_t i)
{
    g->conns[i] = g->conns[--g->n_conns];
}

/* Answers a head that failed the check, then lingers: the client may
 * still be sending, and closing on unread data would reset the
 * connection and lose the answer. */
static void conn_reject(struct gate_conn *c, const struct error *err, usec_t now)
{
    int status = error_http_status(err->code);
    const char *type;
    _cleanup_free_ char *body = http_format(MEDIA_JSON, http_error_json(err, NULL), "error", &type);
    char date[64];
    struct tm tm;
    time_t t = time(NULL);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
    _cleanup_free_ char *reply =
        xasprintf("HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\nServer: %s\r\n"
                  "X-Content-Type-Options: nosniff\r\nContent-Type: %s\r\n"
                  "Content-Length: %zu\r\n\r\n%s",
                  status, MHD_get_reason_phrase_for((unsigned) status), date, HTTP_SERVER_NAME,
                  type, strlen(body), body);
    log_debug("http: %s", error_message(err));
    /* A few hundred bytes into a fresh socket's buffer: one send does it. */
    (void) send(c->fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void) shutdown(c->fd, SHUT_WR);
    c->linger_end = now + HTTP_LINGER_TIME * USEC_PER_SEC;
    c->deadline = MIN(now + HTTP_LINGER_IDLE * USEC_PER_SEC, c->linger_end);
    c->retry_at = 0;
}

/* Reads and drops what a rejected client still sends. Returns false, the
 * connection closed, once the client has closed or a bound is hit. */
static bool conn_linger(struct gate_conn *c, usec_t now)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0 && (c->dropped += (uint64_t) n) <= HTTP_LINGER_BYTES) {
            c->deadline = MIN(now + HTTP_LINGER_IDLE * USEC_PER_SEC, c->linger_end);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && now < c->deadline)
            return true;
        (void) close(c->fd);
        return false;
    }
}

/* Peeks at a waiting connection's head and decides. Returns true while
 * the connection stays at the gate, false once it has left: handed to
 * MHD, or closed. */
static bool conn_step(struct gate_conn *c, short revents, usec_t now)
{
    static char head[GATE_HEAD_MAX];
    if (c->linger_end)
        return conn_linger(c, now);

    ssize_t n = recv(c->fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && now < c->deadline)
        return true;
    if (n <= 0) {
        /* Gone, or silent too long, before a request: nothing to answer. */
        (void) close(c->fd);
        return false;
    }
    _cleanup_error_ struct error err = ERROR_INIT;
    if (c->tls && head[0] >= 'A' && head[0] <= 'Z') {
        error_set(&err, -EINVAL, "this port speaks TLS: use https://, not http://");
        conn_reject(c, &err, now);
        return true;
    }
    int q = c->tls ? 1 : http_head_check(head, (size_t) n, &err);
    if (q < 0) {
        conn_reject(c, &err, now);
        return true;
    }
    bool hung_up = revents & (POLLRDHUP | POLLHUP | POLLERR);
    if (q == 0 && (size_t) n < sizeof(head) && !hung_up) {
        if (now >= c->deadline) {
            (void) close(c->fd);
            return false;
        }
        c->backoff = c->backoff ? MIN(c->backoff * 2, GATE_BACKOFF_MAX) : GATE_BACKOFF_MIN;
        c->retry_at = now + c->backoff;
        return true;
    }
    /* A head that passed, a head too large for us to judge, or one that
     * will never be complete: MHD answers or closes as it always has. */
    if (MHD_add_connection(c->daemon, c->fd, (const struct sockaddr *) &c->addr, c->addrlen) !=
        MHD_YES)
        log_debug("http: a connection was refused: %s", strerror(errno));
    return false;
}

static void gate_accept(struct http_gate *g, size_t i, usec_t now)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(g->daemons[i], MHD_DAEMON_INFO_FLAGS);
    bool tls = info && (info->flags & MHD_USE_TLS);
    while (g->n_conns < g->max_conns) {
        struct gate_conn c = {
            .daemon = g->daemons[i], .addrlen = sizeof(c.addr), .pfd = -1, .tls = tls};
        c.fd = accept4(g->fds[i], (struct sockaddr *) &c.addr, &c.addrlen,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c.fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("http: accept: %s", strerror(errno));
                g->accept_paused = now + GATE_ACCEPT_PAUSE;
            }
            return;
        }
        c.deadline = now + (usec_t) g->timeout * USEC_PER_SEC;
        g->conns = xgrow(g->conns, &g->alloc_conns, g->n_conns + 1, sizeof(*g->conns));
        g->conns[g->n_conns++] = c;
    }
}

static void *gate_loop(void *userdata)
{
    struct http_gate *g = userdata;
    for (;;) {
        usec_t now = now_monotonic();
        g->pfds = xgrow(g->pfds, &g->alloc_pfds, 1 + g->n + g->n_conns, sizeof(*g->pfds));
        struct pollfd *pfds = g->pfds;
        size_t np = 0;
        pfds[np++] = (struct pollfd){.fd = g->stop_fd, .events = POLLIN};
        bool accepting = g->n_conns < g->max_conns && now >= g->accept_paused;
        for (size_t i = 0; i < g->n; i++)
            pfds[np++] = (struct pollfd){.fd = accepting ? g->fds[i] : -1, .events = POLLIN};
        usec_t wake = GATE_NEVER;
        if (!accepting && g->accept_paused > now)
            wake = g->accept_paused;
        for (size_t i = 0; i < g->n_conns; i++) {
            struct gate_conn *c = &g->conns[i];
            /* Waiting out a backoff, only a hang-up is news. */
            c->pfd = (int) np;
            pfds[np++] = (struct pollfd){
                .fd = c->fd, .events = (short) (c->retry_at ? POLLRDHUP : POLLIN | POLLRDHUP)};
            wake = MIN(wake, c->retry_at ? MIN(c->retry_at, c->deadline) : c->deadline);
        }
        int timeout = wake == GATE_NEVER ? -1
                      : wake <= now      ? 0
                                         : (int) ((wake - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
        if (poll(pfds, np, timeout) < 0 && errno != EINTR) {
            log_error("http: poll: %s", strerror(errno));
            break;
        }
        if (pfds[0].revents)
            break;

        now = now_monotonic();
        /* Backwards: a removal moves the last connection, already seen, into i. */
        for (size_t i = g->n_conns; i-- > 0;) {
            struct gate_conn *c = &g->conns[i];
            short revents = c->pfd >= 0 ? pfds[c->pfd].revents : 0;
            bool due = (c->retry_at && now >= c->retry_at) || now >= c->deadline;
            if (!revents && !due)
                continue;
            c->retry_at = 0;
            if (!conn_step(c, revents, now))
                conn_remove(g, i);
        }
        for (size_t i = 0; i < g->n; i++)
            if (pfds[1 + i].revents & POLLIN)
                gate_accept(g, i, now);
    }
    return NULL;
}

int http_gate_start(const int *fds, struct MHD_Daemon *const *daemons, size_t n, unsigned max_conns,
                    unsigned timeout, struct http_gate **ret, struct error *err)
{
    /* accept() is called until it would block. */
    for (size_t i = 0; i < n; i++) {
        int flags = fcntl(fds[i], F_GETFL);
        if (flags < 0 || fcntl(fds[i], F_SETFL, flags | O_NONBLOCK) < 0)
            return error_set_errno(err, -errno, "listening socket");
    }
    struct http_gate *g = xcalloc(1, sizeof(*g));
    g->n = n;
    g->fds = xcalloc(n, sizeof(int));
    memcpy(g->fds, fds, n * sizeof(int));
    g->daemons = xcalloc(n, sizeof(*g->daemons));
    memcpy(g->daemons, daemons, n * sizeof(*g->daemons));
    g->max_conns = MAX(max_conns, 1u);
    g->timeout = timeout ? timeout : UINT_MAX / 2;
    g->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int r = g->stop_fd < 0 ? -errno : -pthread_create(&g->thread, NULL, gate_loop, g);
    if (r < 0) {
        if (g->stop_fd >= 0)
            (void) close(g->stop_fd);
        g->stop_fd = -1;
        g->n = 0; /* the sockets stay the caller's on failure */
        http_gate_stop(g);
        return error_set_errno(err, r, "start the HTTP gate");
    }
    *ret = g;
    return 0;
}

void http_gate_stop(struct http_gate *g)
{
    if (!g)
        return;
    if (g->stop_fd >= 0) {
        (void) eventfd_write(g->stop_fd, 1);
        (void) pthread_join(g->thread, NULL);
        (void) close(g->stop_fd);
    }
    for (size_t i = 0; i < g->n_conns; i++)
        (void) close(g->conns[i].fd);
    for (size_t i = 0; i < g->n; i++)
        (void) close(g->fds[i]);
    free(g->conns);
    free(g->pfds);
    free(g->daemons);
    free(g->fds);
    free(g);
}
