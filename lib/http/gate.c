/*
 * gate: our own accept path in front of libmicrohttpd.
 *
 * libmicrohttpd 0.9.75 closes a connection whose request line is one word
 * ("GET\r\n\r\n") without an answer, and answers a Content-Length it
 * cannot parse ("abc", "-1", past 2^64) with its status line and headers
 * twice: parse_connection_headers() queues the error reply and builds
 * its header, then the state machine carries on and builds it again.
 * Neither request reaches our access handler, so nothing in the router
 * can fix them. Framing that two readers may read two ways (request
 * smuggling: Content-Length with Transfer-Encoding, two different
 * Content-Lengths, ...) is refused here too. The gate accepts each
 * connection itself and looks at the head of its first request without
 * consuming it (MSG_PEEK): a head with one of these faults is answered
 * here, with the one error body (reply.c), and the connection is closed
 * after a bounded linger (http.h); any other connection goes to its
 * daemon through MHD_add_connection(), as MHD's own accept would have
 * handed it over. Later requests on a kept-alive connection reach MHD's
 * parser, and their framing is checked once MHD has parsed their head
 * (http_framing_check, called by server.c).
 *
 * The gate also keeps the pool (pool.c): each connection is counted
 * against its client at accept, and takes a served or a follower's
 * share once its head is whole; a connection the pool has no room for
 * is answered 503 with Retry-After, at once or once its head is in,
 * never left in the listen backlog or dropped. A head must be whole
 * within http_header_timeout of the accept, however slowly it comes.
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
 * MHD. For the same reason a TLS connection takes a served share of the
 * pool: a log follower over TLS is counted with the served requests.
 *
 * One thread polls the listening sockets and the connections still
 * waiting for their head, and sweeps the served connections for those
 * past their deadline. A socket stays readable while peeked data sits
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
#define GATE_ACCEPT_BATCH 64
/* Refused connections read and dropped at once; past it, closed after the answer. */
#define GATE_LINGER_MAX 256
#define GATE_NEVER      INT64_MAX

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

/* A Transfer-Encoding field's value: chunked alone, as MHD reads it. A
 * list ("gzip, chunked") or an unknown coding is framing that another
 * reader may take differently. */
static int check_transfer_encoding(const char *value, size_t len, struct error *err)
{
    while (len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len == STRLEN("chunked") && strncasecmp(value, "chunked", len) == 0)
        return 0;
    _cleanup_free_ char *v = printable(value, len);
    return error_set(err, -EINVAL, "Transfer-Encoding \"%s\" is not taken: only chunked", v);
}

/* Where a framing field is: each may be given in one place only. */
struct framing {
    bool http10;
    bool have_length, have_chunked;
    uint64_t length;
    const char *in; /* the framing field the last line was, for a folded one; NULL: another */
};

static int check_field(const char *line, size_t n, struct framing *f, struct error *err)
{
    if (line[0] == ' ' || line[0] == '\t') {
        /* An obsolete line folding continues the field before it. */
        if (f->in)
            return error_set(err, -EINVAL, "%s folded over several lines", f->in);
        return 0;
    }
    const char *colon = memchr(line, ':', n);
    f->in = NULL;
    if (!colon)
        return 0; /* MHD answers a field without a colon with a well-formed 400 */
    size_t name_len = (size_t) (colon - line);
    for (size_t i = 0; i < name_len; i++)
        if ((unsigned char) line[i] <= ' ' || line[i] == 0x7f) {
            /* "Content-Length : 5" may be Content-Length to one reader and
             * an unknown field to the next (RFC 9112 5.1: refuse it). */
            _cleanup_free_ char *v = printable(line, name_len);
            return error_set(err, -EINVAL, "malformed header field name \"%s\"", v);
        }
    if (name_len == 0)
        return error_set(err, -EINVAL, "a header field without a name");
    const char *value = colon + 1;
    size_t value_len = n - name_len - 1;
    if (name_len == STRLEN("Content-Length") &&
        strncasecmp(line, "Content-Length", name_len) == 0) {
        f->in = "Content-Length";
        if (check_content_length(value, value_len, &f->length, &f->have_length, err) < 0)
            return err->code;
    } else if (name_len == STRLEN("Transfer-Encoding") &&
               strncasecmp(line, "Transfer-Encoding", name_len) == 0) {
        f->in = "Transfer-Encoding";
        if (f->have_chunked)
            return error_set(err, -EINVAL, "Transfer-Encoding given twice");
        if (check_transfer_encoding(value, value_len, err) < 0)
            return err->code;
        f->have_chunked = true;
    } else
        return 0;
    if (f->have_length && f->have_chunked)
        return error_set(err, -EINVAL,
                         "Content-Length and Transfer-Encoding together: the length of the body "
                         "is ambiguous");
    if (f->have_chunked && f->http10)
        return error_set(err, -EINVAL, "Transfer-Encoding in an HTTP/1.0 request");
    return 0;
}

int http_head_check(const char *buf, size_t len, struct error *err)
{
    const char *p = buf, *end = buf + len;
    bool request_line = true;
    struct framing f = {};
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        if (!nl)
            return 0;
        size_t n = (size_t) (nl - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        const char *line = p;
        p = nl + 1;
        /* A NUL, or a CR that ends no line, is read as a break by some
         * and as a byte by others (RFC 9112 2.2). */
        if (memchr(line, '\0', n) || memchr(line, '\r', n))
            return error_set(err, -EINVAL, "a NUL or a bare CR in the request head");
        if (request_line) {
            /* Empty lines before the request line are skipped (RFC 9112 2.2), as MHD does. */
            if (n == 0)
                continue;
            const char *last = memrchr(line, ' ', n);
            if (!last) {
                _cleanup_free_ char *v = printable(line, n);
                return error_set(err, -EINVAL,
                                 "malformed request line \"%s\": expected METHOD /path HTTP/1.1",
                                 v);
            }
            f.http10 = (size_t) (line + n - last - 1) == STRLEN("HTTP/1.0") &&
                       memcmp(last + 1, "HTTP/1.0", STRLEN("HTTP/1.0")) == 0;
            request_line = false;
            continue;
        }
        if (n == 0)
            return 1;
        if (check_field(line, n, &f, err) < 0)
            return err->code;
    }
}

bool http_head_follows(const char *buf, size_t len)
{
    static const char prefix[] = "GET /v1/jobproxy/logs/";
    const char *p = buf, *end = buf + len;
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    if ((size_t) (end - p) < STRLEN(prefix) || memcmp(p, prefix, STRLEN(prefix)) != 0)
        return false;
    const char *target_end = memchr(p + 4, ' ', (size_t) (end - p - 4));
    const char *q = target_end ? memchr(p, '?', (size_t) (target_end - p)) : NULL;
    if (!q)
        return false;
    for (const char *a = q + 1; a < target_end;) {
        const char *amp = memchr(a, '&', (size_t) (target_end - a));
        size_t n = amp ? (size_t) (amp - a) : (size_t) (target_end - a);
        if ((n == STRLEN("follow=1") && memcmp(a, "follow=1", n) == 0) ||
            (n == STRLEN("follow=true") && memcmp(a, "follow=true", n) == 0))
            return true;
        a += n + 1;
    }
    return false;
}

struct framing_fields {
    unsigned lengths, encodings;
    const char *length, *encoding;
    bool lengths_differ;
};

static enum MHD_Result framing_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct framing_fields *ff = cls;
    if (!key || !value)
        return MHD_YES;
    if (strcaseeq(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (ff->length && !streq(ff->length, value))
            ff->lengths_differ = true;
        ff->length = value;
        ff->lengths++;
    } else if (strcaseeq(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        ff->encoding = value;
        ff->encodings++;
    }
    return MHD_YES;
}

int http_framing_check(struct MHD_Connection *conn, const char *version, struct error *err)
{
    struct framing_fields ff = {};
    (void) MHD_get_connection_values(conn, MHD_HEADER_KIND, framing_field, &ff);
    if (ff.lengths_differ)
        return error_set(err, -EINVAL, "conflicting Content-Length fields");
    if (ff.encodings == 0)
        return 0;
    if (ff.lengths > 0)
        return error_set(err, -EINVAL,
                         "Content-Length and Transfer-Encoding together: the length of the body "
                         "is ambiguous");
    if (ff.encodings > 1)
        return error_set(err, -EINVAL, "Transfer-Encoding given twice");
    if (check_transfer_encoding(ff.encoding, strlen(ff.encoding), err) < 0)
        return err->code;
    if (version && streq(version, MHD_HTTP_VERSION_1_0))
        return error_set(err, -EINVAL, "Transfer-Encoding in an HTTP/1.0 request");
    return 0;
}

/* ---- the gate ---- */

struct gate_conn {
    int fd;
    struct MHD_Daemon *daemon;
    struct http_conn *conn; /* its place in the pool; NULL once refused */
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
    struct http_pool *pool;
    struct gate_conn *conns; /* waiting for their head, or lingering */
    size_t n_conns, alloc_conns, n_lingering;
    struct pollfd *pfds;
    size_t alloc_pfds;
    unsigned timeout;
    usec_t accept_paused; /* until then */
};

static void conn_remove(struct http_gate *g, size_t i)
{
    if (g->conns[i].linger_end)
        g->n_lingering--;
    g->conns[i] = g->conns[--g->n_conns];
}

/* Answers a connection the gate refuses (a head that failed the check, a
 * full pool), then lingers: the client may still be sending, and closing
 * on unread data would reset the connection and lose the answer. The
 * refused connection leaves the pool; at most GATE_LINGER_MAX linger, the
 * others are closed at once. Returns false when it was closed. */
static bool conn_reject(struct http_gate *g, struct gate_conn *c, const struct error *err,
                        usec_t now)
{
    http_pool_close(TAKE_PTR(c->conn));
    int status = error_http_status(err->code);
    const char *type;
    _cleanup_free_ char *body = http_format(MEDIA_JSON, http_error_json(err, NULL), "error", &type);
    char date[64];
    struct tm tm;
    time_t t = time(NULL);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
    _cleanup_free_ char *reply = xasprintf(
        "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\nServer: %s\r\n"
        "X-Content-Type-Options: nosniff\r\n%sContent-Type: %s\r\n"
        "Content-Length: %zu\r\n\r\n%s",
        status, MHD_get_reason_phrase_for((unsigned) status), date, HTTP_SERVER_NAME,
        status == 503 ? "Retry-After: " HTTP_RETRY_AFTER "\r\n" : "", type, strlen(body), body);
    log_debug("http: %s", error_message(err));
    /* A few hundred bytes into a fresh socket's buffer: one send does it. */
    (void) send(c->fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void) shutdown(c->fd, SHUT_WR);
    if (g->n_lingering >= GATE_LINGER_MAX) {
        (void) close(c->fd);
        return false;
    }
    g->n_lingering++;
    c->linger_end = now + HTTP_LINGER_TIME * USEC_PER_SEC;
    c->deadline = MIN(now + HTTP_LINGER_IDLE * USEC_PER_SEC, c->linger_end);
    c->retry_at = 0;
    return true;
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

static void conn_close(struct gate_conn *c)
{
    http_pool_close(TAKE_PTR(c->conn));
    (void) close(c->fd);
}

/* Hands a connection whose head is whole to its daemon, in the pool's
 * share its request takes. Returns false once it has left the gate. */
static bool conn_serve(struct http_gate *g, struct gate_conn *c, bool follower, usec_t now)
{
    _cleanup_error_ struct error err = ERROR_INIT;
    if (http_pool_serve(c->conn, follower, &err) < 0)
        return conn_reject(g, c, &err, now);
    /* MHD may close the connection, and tell the pool, before it returns. */
    struct http_conn *hc = http_conn_ref(TAKE_PTR(c->conn));
    if (MHD_add_connection(c->daemon, c->fd, (const struct sockaddr *) &c->addr, c->addrlen) !=
        MHD_YES) {
        log_debug("http: a connection was refused: %s", strerror(errno));
        http_pool_close(hc);
    }
    http_conn_unref(hc);
    return false;
}

/* Peeks at a waiting connection's head and decides. Returns true while
 * the connection stays at the gate, false once it has left: handed to
 * MHD, or closed. */
static bool conn_step(struct http_gate *g, struct gate_conn *c, short revents, usec_t now)
{
    static char head[GATE_HEAD_MAX];
    if (c->linger_end)
        return conn_linger(c, now);

    ssize_t n = recv(c->fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && now < c->deadline)
        return true;
    if (n <= 0) {
        /* Gone, or silent too long, before a request: nothing to answer. */
        conn_close(c);
        return false;
    }
    _cleanup_error_ struct error err = ERROR_INIT;
    if (c->tls) {
        if (head[0] >= 'A' && head[0] <= 'Z') {
            error_set(&err, -EINVAL, "this port speaks TLS: use https://, not http://");
            return conn_reject(g, c, &err, now);
        }
        /* Its request is inside the TLS records: a served share. */
        return conn_serve(g, c, false, now);
    }
    int q = http_head_check(head, (size_t) n, &err);
    if (q < 0)
        return conn_reject(g, c, &err, now);
    bool hung_up = revents & (POLLRDHUP | POLLHUP | POLLERR);
    if (q == 0 && (size_t) n < sizeof(head) && !hung_up) {
        if (now >= c->deadline) {
            /* A head sent a byte at a time is cut at its deadline. */
            log_debug("http: a request head is past its deadline: cut");
            conn_close(c);
            return false;
        }
        c->backoff = c->backoff ? MIN(c->backoff * 2, GATE_BACKOFF_MAX) : GATE_BACKOFF_MIN;
        c->retry_at = now + c->backoff;
        return true;
    }
    /* A head that passed, a head too large for us to judge, or one that
     * will never be complete: MHD answers or closes as it always has. */
    return conn_serve(g, c, q == 1 && http_head_follows(head, (size_t) n), now);
}

static void gate_accept(struct http_gate *g, size_t i, usec_t now)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(g->daemons[i], MHD_DAEMON_INFO_FLAGS);
    bool tls = info && (info->flags & MHD_USE_TLS);
    /* A bounded batch: the waiting connections are served meanwhile. */
    for (unsigned k = 0; k < GATE_ACCEPT_BATCH; k++) {
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
        _cleanup_error_ struct error err = ERROR_INIT;
        bool stays = true;
        if (http_pool_open(g->pool, c.fd, (const struct sockaddr *) &c.addr, c.addrlen, &c.conn,
                           &err) < 0)
            /* Answered at once, before its request: a client over its cap
             * or a gate full of waiting clients is told, not left hanging. */
            stays = conn_reject(g, &c, &err, now);
        else
            c.deadline = now + (usec_t) g->timeout * USEC_PER_SEC;
        if (!stays)
            continue;
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
        bool accepting = now >= g->accept_paused;
        for (size_t i = 0; i < g->n; i++)
            pfds[np++] = (struct pollfd){.fd = accepting ? g->fds[i] : -1, .events = POLLIN};
        usec_t wake = http_pool_sweep(g->pool, now);
        if (!accepting)
            wake = MIN(wake, g->accept_paused);
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
            if (!conn_step(g, c, revents, now))
                conn_remove(g, i);
        }
        for (size_t i = 0; i < g->n; i++)
            if (pfds[1 + i].revents & POLLIN)
                gate_accept(g, i, now);
    }
    return NULL;
}

int http_gate_start(const int *fds, struct MHD_Daemon *const *daemons, size_t n,
                    struct http_pool *pool, unsigned header_timeout, struct http_gate **ret,
                    struct error *err)
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
    g->pool = pool;
    g->timeout = header_timeout ? header_timeout : UINT_MAX / 2;
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
        conn_close(&g->conns[i]);
    for (size_t i = 0; i < g->n; i++)
        (void) close(g->fds[i]);
    free(g->conns);
    free(g->pfds);
    free(g->daemons);
    free(g->fds);
    free(g);
}
