/* Unit tests: the HTTP layer's pure logic, without a daemon: content
 * negotiation, path matching, the route table's 404/405 decision, the
 * gate's check of a request head, the pool's counts and deadlines, and
 * the statuses of the router's errors. */
#include "http/http.h"
#include "tap.h"

#include <arpa/inet.h>
#include <sys/socket.h>

static const char *media_name(enum media m)
{
    switch (m) {
    case MEDIA_JSON:
        return "json";
    case MEDIA_XML:
        return "xml";
    case MEDIA_TEXT:
        return "text";
    case MEDIA_YAML:
        return "yaml";
    default:
        return m ? "?" : "406";
    }
}

static void test_negotiate(void)
{
    const unsigned JX = MEDIA_JSON | MEDIA_XML, JXT = MEDIA_JSON | MEDIA_XML | MEDIA_TEXT;
    static const struct {
        const char *accept;
        unsigned offers;
        enum media want;
    } rows[] = {
        /* absent or empty: the first offered, in JSON, XML, TEXT, YAML order */
        {NULL, JX, MEDIA_JSON},
        {"", JX, MEDIA_JSON},
        {NULL, MEDIA_YAML | MEDIA_TEXT, MEDIA_TEXT},
        {NULL, MEDIA_XML | MEDIA_YAML, MEDIA_XML},
        /* exact types, aliases, case */
        {"application/xml", JX, MEDIA_XML},
        {"text/xml", JX, MEDIA_XML},
        {"Application/JSON", JX, MEDIA_JSON},
        {"application/x-yaml", MEDIA_YAML | MEDIA_TEXT, MEDIA_YAML},
        {"text/plain", JXT, MEDIA_TEXT},
        /* q values */
        {"application/json;q=0.5, application/xml", JX, MEDIA_XML},
        {"application/xml; q=0.2, application/json; q=0.9", JX, MEDIA_JSON},
        {"application/json;Q=0.1,application/xml;q=0.3", JX, MEDIA_XML},
        {"application/json;q=0", JX, 0},
        {"application/json;q=0, application/xml;q=0", JX, 0},
        {"application/json;charset=utf-8;q=0.4, application/xml;q=0.3", JX, MEDIA_JSON},
        /* equal q: the earlier format */
        {"application/xml, application/json", JX, MEDIA_JSON},
        /* wildcards */
        {"*/*", JX, MEDIA_JSON},
        {"*/*", MEDIA_YAML | MEDIA_TEXT, MEDIA_TEXT},
        {"text/*", JX, MEDIA_XML},
        {"text/*", JXT, MEDIA_XML},
        {"application/*", MEDIA_TEXT | MEDIA_YAML, MEDIA_YAML},
        /* the most specific range decides a format's q */
        {"*/*;q=0.1, application/xml", JX, MEDIA_XML},
        {"*/*, application/json;q=0", JX, MEDIA_XML},
        {"application/*;q=0.2, application/json;q=0.9", JX, MEDIA_JSON},
        {"text/*;q=0.9, text/plain;q=0.1", JXT, MEDIA_XML},
        /* equal q: the more specific range */
        {"*/*;q=0.5, application/xml;q=0.5", JX, MEDIA_XML},
        /* nothing acceptable: 406 */
        {"image/png", JX, 0},
        {"text/plain", JX, 0},
        {"application/json", MEDIA_TEXT, 0},
        /* blanks around items and parameters */
        {"  image/png ,  application/xml ; q=0.7 ", JX, MEDIA_XML},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        enum media got = http_negotiate(rows[i].accept, rows[i].offers);
        ok(got == rows[i].want, "Accept \"%s\" offering %#x -> %s (got %s)",
           rows[i].accept ? rows[i].accept : "(none)", rows[i].offers, media_name(rows[i].want),
           media_name(got));
    }
}

static void test_path_match(void)
{
    static const struct {
        const char *pattern, *url;
        bool match;
        const char *param;
    } rows[] = {
        {"/v1/jobproxy/ping", "/v1/jobproxy/ping", true, NULL},
        {"/v1/jobproxy/ping", "/v1/jobproxy/ping/", false, NULL},
        {"/v1/jobproxy/ping", "/v1/jobproxy/pin", false, NULL},
        {"/v1/jobproxy/ping", "/v1/jobproxy/ping/x", false, NULL},
        {"/v1/jobproxy/state", "/v1/jobproxy/state", true, NULL},
        {"/v1/jobproxy/state/*", "/v1/jobproxy/state/abc", true, "abc"},
        {"/v1/jobproxy/state/*", "/v1/jobproxy/state/", false, NULL},
        {"/v1/jobproxy/state/*", "/v1/jobproxy/state", false, NULL},
        {"/v1/jobproxy/state/*", "/v1/jobproxy/state/abc/", false, NULL},
        {"/v1/jobproxy/state/*", "/v1/jobproxy/state/abc/def", false, NULL},
        {"/v1/jobproxy/state/*", "/v1/jobproxy/state/../../etc/passwd", false, NULL},
        {"/v1/jobproxy/state/*", "/v1/jobproxy/statex/abc", false, NULL},
        {"/v1/jobproxy/state/*", "/v1/jobproxy/state/.", true, "."},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        const char *param = "unset";
        bool m = http_path_match(rows[i].pattern, rows[i].url, &param);
        ok(m == rows[i].match && (!m || streq_ptr(param, rows[i].param)), "%s %s %s", rows[i].url,
           rows[i].match ? "matches" : "does not match", rows[i].pattern);
    }
}

static void test_route_find(void)
{
    static const struct route table[] = {
        {"GET", "/a", NULL, MEDIA_JSON, false},   {"POST", "/a", NULL, MEDIA_JSON, true},
        {"GET", "/a/*", NULL, MEDIA_JSON, false}, {"DELETE", "/a/*", NULL, MEDIA_JSON, false},
        {"GET", "/b", NULL, MEDIA_TEXT, false},   {},
    };
    static const struct {
        const char *method, *url;
        int want;
        int route; /* index into table when found */
        const char *param, *allow;
    } rows[] = {
        {"GET", "/a", 0, 0, NULL, ""},
        {"POST", "/a", 0, 1, NULL, ""},
        {"HEAD", "/a", 0, 0, NULL, ""},
        {"GET", "/a/x1", 0, 2, "x1", ""},
        {"DELETE", "/a/x1", 0, 3, "x1", ""},
        {"PUT", "/a", -EBADRQC, -1, NULL, "GET, POST"},
        {"POST", "/a/x1", -EBADRQC, -1, NULL, "GET, DELETE"},
        {"DELETE", "/b", -EBADRQC, -1, NULL, "GET"},
        {"GET", "/c", -ENOENT, -1, NULL, ""},
        {"GET", "/a/", -ENOENT, -1, NULL, ""},
        {"GET", "/a/x1/", -ENOENT, -1, NULL, ""},
        {"GET", "/a/x1/y", -ENOENT, -1, NULL, ""},
        {"GET", "/b/", -ENOENT, -1, NULL, ""},
        {"PUT", "/nowhere", -ENOENT, -1, NULL, ""},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        const struct route *rt = NULL;
        const char *param = NULL;
        char allow[HTTP_ALLOW_MAX];
        int q = http_route_find(table, rows[i].method, rows[i].url, &rt, &param, allow);
        bool good = q == rows[i].want;
        if (q == 0)
            good = good && rt == &table[rows[i].route] && streq_ptr(param, rows[i].param);
        else
            good = good && streq(allow, rows[i].allow);
        ok(good, "%s %s -> %s%s%s", rows[i].method, rows[i].url,
           rows[i].want == 0         ? "found"
           : rows[i].want == -ENOENT ? "404"
                                     : "405, Allow: ",
           rows[i].want == -EBADRQC ? rows[i].allow : "", q == rows[i].want ? "" : " (wrong)");
    }

    /* The daemon's own table: every path it serves, and its 405s. */
    const struct route *rt = NULL;
    const char *param = NULL;
    char allow[HTTP_ALLOW_MAX];
    ok(http_route_find(http_routes, "GET", "/v1/jobproxy/ping", &rt, &param, allow) == 0 &&
           rt->handler,
       "the route table serves GET /v1/jobproxy/ping");
    ok(http_route_find(http_routes, "PUT", "/v1/jobproxy/submit", &rt, &param, allow) == -EBADRQC &&
           streq(allow, "POST"),
       "PUT /v1/jobproxy/submit is 405 with Allow: POST (got \"%s\")", allow);
    ok(http_route_find(http_routes, "GET", "/v1/jobproxy/nope", &rt, &param, allow) == -ENOENT,
       "an unknown path is 404");
}

static void test_head_check(void)
{
    static const struct {
        const char *head;
        int want;           /* 1 passes, 0 incomplete, else the error */
        const char *needle; /* in the message */
    } rows[] = {
        {"GET /v1/jobproxy/ping HTTP/1.1\r\nHost: x\r\n\r\n", 1, NULL},
        {"GET /v1/jobproxy/ping HTTP/1.1\nHost: x\n\n", 1, NULL},
        {"\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1, NULL},
        {"GET / HTTP/1.1\r\nHost: x\r\n", 0, NULL},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Le", 0, NULL},
        {"GET / HT", 0, NULL},
        {"", 0, NULL},
        {"\r\n", 0, NULL},
        /* two words: MHD's own 400 is well-formed */
        {"GET /v1/jobproxy/ping\r\n\r\n", 1, NULL},
        {"GET\r\n\r\n", -EINVAL, "request line \"GET\""},
        {"GARBAGE\r\n\r\n", -EINVAL, "request line \"GARBAGE\""},
        {"GARBAGE\r\n", -EINVAL, "request line"},
        {"\r\nGET\r\n", -EINVAL, "request line"},
        {"\x01\xff\r\n\r\n", -EINVAL, "request line \"??\""},
        {"POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", 1, NULL},
        {"POST / HTTP/1.1\r\ncontent-length:12\r\n\r\n", 1, NULL},
        {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 1, NULL},
        {"POST / HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\n", 1, NULL},
        {"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", 1, NULL},
        {"POST / HTTP/1.1\r\nX-Content-Length: abc\r\n\r\n", 1, NULL},
        {"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", -EINVAL, "Content-Length \"abc\""},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -EINVAL, "Content-Length \"-1\""},
        {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", -EINVAL, "Content-Length"},
        {"POST / HTTP/1.1\r\nContent-Length: 5 \r\n\r\n", -EINVAL, "Content-Length"},
        {"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", -EINVAL, "Content-Length"},
        {"POST / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n", -EINVAL, "Content-Length"},
        /* found before the head is complete */
        {"POST / HTTP/1.1\r\nContent-Length: x\r\nHost:", -EINVAL, "Content-Length"},
        {"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", -E2BIG,
         "Content-Length"},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n", -EINVAL,
         "conflicting"},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\n 6\r\n\r\n", -EINVAL, "folded"},
        {"POST / HTTP/1.1\r\nX-A: 5\r\n 6\r\n\r\n", 1, NULL},
        /* Framing two readers may read two ways: request smuggling. */
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 1, NULL},
        {"POST / HTTP/1.1\r\ntransfer-encoding:  Chunked \t\r\n\r\n", 1, NULL},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", -EINVAL,
         "Content-Length and Transfer-Encoding together"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", -EINVAL,
         "Content-Length and Transfer-Encoding together"},
        /* found before the head is complete */
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\nHo", -EINVAL,
         "together"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         -EINVAL, "Transfer-Encoding given twice"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -EINVAL,
         "Transfer-Encoding \"gzip, chunked\" is not taken"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", -EINVAL, "not taken"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", -EINVAL, "\"xchunked\""},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", -EINVAL, "only chunked"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", -EINVAL, "not taken"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n ,gzip\r\n\r\n", -EINVAL,
         "Transfer-Encoding folded"},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -EINVAL, "HTTP/1.0"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", -EINVAL,
         "malformed header field name \"Transfer-Encoding \""},
        {"POST / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n", -EINVAL, "field name"},
        {"POST / HTTP/1.1\r\nX Y: 5\r\n\r\n", -EINVAL, "field name"},
        {"POST / HTTP/1.1\r\n: 5\r\n\r\n", -EINVAL, "without a name"},
        {"POST / HTTP/1.1\r\nHost: x\rContent-Length: 5\r\n\r\n", -EINVAL, "bare CR"},
        {"GET / HTTP/1.1\rX: y\r\n\r\n", -EINVAL, "bare CR"},
        /* a field without a colon is MHD's to answer (a well-formed 400) */
        {"GET / HTTP/1.1\r\nBad header\r\n\r\n", 1, NULL},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        _cleanup_error_ struct error err = ERROR_INIT;
        int q = http_head_check(rows[i].head, strlen(rows[i].head), &err);
        ok(q == rows[i].want && (!rows[i].needle || strstr(error_message(&err), rows[i].needle)),
           "head \"%s\" -> %d (got %d: %s)", rows[i].head, rows[i].want, q,
           q < 0 ? error_message(&err) : "-");
    }
}

static void test_head_nul(void)
{
    static const char head[] = "POST / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    _cleanup_error_ struct error err = ERROR_INIT;
    int q = http_head_check(head, sizeof(head) - 1, &err);
    ok(q == -EINVAL && strstr(error_message(&err), "NUL"), "a NUL in a header value -> 400 (%s)",
       q < 0 ? error_message(&err) : "passed");
}

static void test_head_follows(void)
{
    static const struct {
        const char *head;
        bool want;
    } rows[] = {
        {"GET /v1/jobproxy/logs/abc?follow=1 HTTP/1.1\r\n", true},
        {"GET /v1/jobproxy/logs/abc?stream=stderr&follow=true HTTP/1.1\r\n\r\n", true},
        {"\r\nGET /v1/jobproxy/logs/abc?tail=5&follow=1&x=y HTTP/1.1\r\n", true},
        {"GET /v1/jobproxy/logs/abc HTTP/1.1\r\n", false},
        {"GET /v1/jobproxy/logs/abc?follow=0 HTTP/1.1\r\n", false},
        {"GET /v1/jobproxy/logs/abc?nofollow=1 HTTP/1.1\r\n", false},
        {"GET /v1/jobproxy/logs/abc?follow=10 HTTP/1.1\r\n", false},
        {"GET /v1/jobproxy/state/abc?follow=1 HTTP/1.1\r\n", false},
        {"POST /v1/jobproxy/logs/abc?follow=1 HTTP/1.1\r\n", false},
        {"GET /v1/jobproxy/logs/abc HTTP/1.1\r\nX: ?follow=1 y\r\n", false},
        {"GET /v1/jobproxy/logs/abc?follow=1", false}, /* the target not ended yet */
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        ok(http_head_follows(rows[i].head, strlen(rows[i].head)) == rows[i].want, "\"%s\" %s a log",
           rows[i].head, rows[i].want ? "follows" : "does not follow");
}

/* A connection record for a peer at addr, on a fresh socket of its own
 * (the pool files served connections by their socket). */
static int open_at(struct http_pool *p, const char *addr, int fds[2], struct http_conn **ret,
                   struct error *err)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    struct sockaddr_storage ss = {};
    if (!addr)
        ss.ss_family = AF_UNIX;
    else if (inet_pton(AF_INET, addr, &((struct sockaddr_in *) &ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *) &ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    return http_pool_open(p, fds[0], (struct sockaddr *) &ss, sizeof(ss), ret, err);
}

static void test_pool(void)
{
    struct http_pool *p = http_pool_new(&(struct http_pool_limits){
        .served = 3, .followers = 1, .per_client = 2, .body_timeout = 1});
    struct http_conn *c[16] = {};
    int fds[16][2];
    _cleanup_error_ struct error err = ERROR_INIT;

    ok(open_at(p, "10.0.0.1", fds[0], &c[0], &err) == 0 &&
           open_at(p, "10.0.0.1", fds[1], &c[1], &err) == 0,
       "a client opens two connections");
    {
        bool t = open_at(p, "10.0.0.1", fds[2], &c[2], &err) == -EAGAIN &&
                 strstr(error_message(&err), "client 10.0.0.1 holds 2 connections") &&
                 error_http_status(err.code) == 503;
        ok(t, "its third is refused, 503 naming the client (%s)", error_message(&err));
    }
    close(fds[2][0]), close(fds[2][1]);
    ok(open_at(p, "10.0.0.2", fds[2], &c[2], &err) == 0, "another client's is taken");
    {
        bool t = open_at(p, "10.0.0.3", fds[3], &c[3], &err) == -EAGAIN &&
                 strstr(error_message(&err), "3 connections are waiting");
        ok(t, "as many waiting as may be served: the next is refused (%s)", error_message(&err));
    }
    close(fds[3][0]), close(fds[3][1]);

    ok(http_pool_serve(c[0], false, &err) == 0 && http_pool_serve(c[1], false, &err) == 0 &&
           http_pool_serve(c[2], false, &err) == 0,
       "three are served");
    ok(open_at(p, "10.0.0.3", fds[3], &c[3], &err) == 0, "the gate has room again");
    {
        bool t = http_pool_serve(c[3], false, &err) == -EAGAIN &&
                 strstr(error_message(&err), "3 connections are being served");
        ok(t, "a fourth is not served (%s)", error_message(&err));
    }
    ok(http_pool_serve(c[3], true, &err) == 0, "but may follow a log: followers count apart");
    {
        bool t = open_at(p, "10.0.0.4", fds[4], &c[4], &err) == 0 &&
                 http_pool_serve(c[4], true, &err) == -EAGAIN &&
                 strstr(error_message(&err), "1 log followers already");
        ok(t, "a second follower is refused (%s)", error_message(&err));
    }
    http_pool_close(c[4]); /* as the gate does with one it refuses */
    c[4] = NULL;

    /* A served connection that starts to follow needs a follower's share. */
    struct http_conn *f = NULL;
    ok(http_pool_follow(fds[0][0], &f, &err) == -EAGAIN && !f,
       "a served connection cannot follow while the followers are at their cap");
    http_pool_close(c[3]); /* the follower leaves */
    c[3] = NULL;
    ok(http_pool_follow(fds[0][0], &f, &err) == 0 && f, "once one leaves, it can");
    ok(open_at(p, "10.0.0.3", fds[3], &c[3], &err) == 0 && http_pool_serve(c[3], false, &err) == 0,
       "and its served share is free for another");
    http_pool_close(c[3]);
    c[3] = NULL;
    close(fds[3][0]), close(fds[3][1]);
    http_pool_unfollow(f);
    ok(http_pool_follow(fds[4][0], &f, &err) == 0 && !f,
       "a socket the pool does not serve is not counted");

    ok(open_at(p, "10.0.0.1", fds[5], &c[5], &err) == -EAGAIN, "10.0.0.1 is still at its cap");
    close(fds[5][0]), close(fds[5][1]);
    http_pool_close(c[1]);
    c[1] = NULL;
    ok(open_at(p, "10.0.0.1", fds[5], &c[5], &err) == 0, "one closed, 10.0.0.1 opens another");
    http_pool_close(c[5]);
    c[5] = NULL;

    /* IPv6 peers are one client per /64; a v4-mapped peer is its IPv4 address. */
    {
        bool t = open_at(p, "2001:db8::1", fds[6], &c[6], &err) == 0 &&
                 open_at(p, "2001:db8::ffff:2", fds[7], &c[7], &err) == 0 &&
                 open_at(p, "2001:db8::3", fds[8], &c[8], &err) == -EAGAIN &&
                 strstr(error_message(&err), "client 2001:db8::/64");
        ok(t, "2001:db8::1 and ::ffff:2 are one client (%s)", error_message(&err));
    }
    close(fds[8][0]), close(fds[8][1]);
    {
        /* 10.0.0.1 holds c[0]; this is its second. */
        bool t = open_at(p, "::ffff:10.0.0.1", fds[8], &c[8], &err) == 0 &&
                 open_at(p, "10.0.0.1", fds[9], &c[9], &err) == -EAGAIN &&
                 strstr(error_message(&err), "client 10.0.0.1 holds 2");
        ok(t, "::ffff:10.0.0.1 is 10.0.0.1 (%s)", error_message(&err));
    }
    close(fds[9][0]), close(fds[9][1]);
    http_pool_close(c[6]), http_pool_close(c[7]), http_pool_close(c[8]);
    c[6] = c[7] = c[8] = NULL;
    close(fds[8][0]), close(fds[8][1]);
    _cleanup_free_ char *uid = xasprintf("client uid %u holds 2", (unsigned) geteuid());
    {
        bool t = open_at(p, NULL, fds[6], &c[6], &err) == 0 &&
                 open_at(p, NULL, fds[7], &c[7], &err) == 0 &&
                 open_at(p, NULL, fds[8], &c[8], &err) == -EAGAIN &&
                 strstr(error_message(&err), uid);
        ok(t, "unix peers are counted by uid (%s)", error_message(&err));
    }
    close(fds[8][0]), close(fds[8][1]);

    /* Past its deadline (the body's, 1 s after its head), a served
     * connection is shut down: its peer reads the end. */
    usec_t next = http_pool_sweep(p, now_monotonic());
    ok(next != INT64_MAX, "served connections are swept again later");
    http_pool_sweep(p, now_monotonic() + 5 * USEC_PER_SEC);
    char b;
    ok(recv(fds[2][1], &b, 1, MSG_DONTWAIT) == 0, "a connection past its deadline is shut down");

    for (size_t i = 0; i < ELEMENTSOF(c); i++)
        http_pool_close(c[i]);
    http_pool_free(p);
    for (size_t i = 0; i < 9; i++)
        if (i != 3 && i != 8)
            close(fds[i][0]), close(fds[i][1]);
}

static void test_content_length(void)
{
    static const struct {
        const char *value;
        int want;
        uint64_t n;
    } rows[] = {
        {"0", 0, 0},
        {"1048576", 0, 1048576},
        {"18446744073709551615", 0, UINT64_MAX},
        {"18446744073709551616", -E2BIG, 0},
        {"99999999999999999999999", -E2BIG, 0},
        {"", -EINVAL, 0},
        {"abc", -EINVAL, 0},
        {"12a", -EINVAL, 0},
        {" 1", -EINVAL, 0},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        _cleanup_error_ struct error err = ERROR_INIT;
        uint64_t n = 7;
        int q = http_content_length(rows[i].value, strlen(rows[i].value), &n, &err);
        ok(q == rows[i].want && (q < 0 ? n == 7 : n == rows[i].n), "Content-Length \"%s\" -> %d",
           rows[i].value, rows[i].want);
    }
}

static void test_statuses(void)
{
    /* The router's own errors go through the one map like every other
     * (test-util.c has the rest of it). */
    ok(error_http_status(-EBADRQC) == 405, "EBADRQC (method not allowed) -> 405");
    ok(error_http_status(-ENOMSG) == 406, "ENOMSG (nothing acceptable) -> 406");

    _cleanup_error_ struct error err = ERROR_INIT;
    error_set(&err, -EBADRQC, "method PUT not allowed");
    cJSON *j = http_error_json(
        &err, (const struct http_extra[]){{.header = true, .name = "Allow", .value = "GET"},
                                          {.name = "id", .value = "x1"},
                                          {}});
    const cJSON *code = cJSON_GetObjectItem(j, "code"), *msg = cJSON_GetObjectItem(j, "message");
    ok(cJSON_IsNumber(code) && code->valueint == 405 && cJSON_IsString(msg) &&
           streq(msg->valuestring, "method PUT not allowed") &&
           streq_ptr(cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")), "x1") &&
           !cJSON_GetObjectItem(j, "Allow"),
       "the error body: code from the map, the message, body fields and no headers");
    cJSON_Delete(j);
}

/* What http_audit_value() makes of v. */
static char *audit_text(const char *v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    http_audit_value(f, v);
    fclose(f);
    return buf;
}

static void test_audit_value(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"ci-bot", "ci-bot"},
        {"", "\"\""},
        {"two words", "\"two words\""},
        {"a=b", "\"a=b\""},
        {"x\" outcome=accepted", "\"x\\\" outcome=accepted\""},
        {"line\naudit action=forged", "\"line\\x0aaudit action=forged\""},
        {"cr\rtab\tdel\x7f", "\"cr\\x0dtab\\x09del\\x7f\""},
        {"back\\slash", "\"back\\\\slash\""},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        _cleanup_free_ char *got = audit_text(cases[i].in);
        ok(streq(got, cases[i].out), "audit value %zu: %s", i, got);
    }
    _cleanup_free_ char *none = audit_text(NULL);
    ok(streq(none, "\"\""), "a NULL value is an empty quoted one: %s", none);
}

int main(void)
{
    test_negotiate();
    test_path_match();
    test_route_find();
    test_head_check();
    test_head_nul();
    test_head_follows();
    test_pool();
    test_content_length();
    test_statuses();
    test_audit_value();
    return tap_done();
}
