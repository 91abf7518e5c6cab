/*
 * client: HTTP requests to ocps-proxyd with libcurl, over TCP (http or
 * https, with the CAs of --cacert and the client certificate of --cert)
 * or a unix socket ("unix:/path"). A server that cannot be reached is the one error
 * handled here: the message names the address tried, the exit code is
 * EXIT_UNREACHABLE.
 */
#include "cli.h"

#include <curl/curl.h>

void reply_done(struct reply *r)
{
    free(r->body);
    free(r->content_type);
    *r = (struct reply){0};
}

struct sink {
    struct reply *r;
    size_t alloc;
    int fd; /* streaming: write here instead of collecting */
};

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    struct sink *s = userdata;
    size_t len = size * n;
    if (s->fd >= 0)
        return loop_write(s->fd, data, len) < 0 ? 0 : len;
    s->r->body = xgrow(s->r->body, &s->alloc, s->r->len + len + 1, 1);
    memcpy(s->r->body + s->r->len, data, len);
    s->r->len += len;
    s->r->body[s->r->len] = '\0';
    return len;
}

static int perform(struct cli *c, const char *method, const char *path, const char *ctype,
                   const char *body, size_t len, int fd, struct reply *ret)
{
    CURL *h = curl_easy_init();
    if (!h) {
        fprintf(stderr, "ocps-proxy: out of memory\n");
        return EXIT_TASK_FAILED;
    }
    const char *token;
    int t = cli_token(c, &token);
    if (t != 0) {
        curl_easy_cleanup(h);
        return t;
    }
    _cleanup_free_ char *url = NULL;
    if (startswith(c->server, "unix:")) {
        (void) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->server + strlen("unix:"));
        url = xasprintf("http://localhost%s", path);
    } else {
        size_t n = strlen(c->server);
        url =
            xasprintf("%.*s%s", (int) (n && c->server[n - 1] == '/' ? n - 1 : n), c->server, path);
    }
    struct curl_slist *hdrs = NULL;
    _cleanup_free_ char *ct = ctype ? xasprintf("Content-Type: %s", ctype) : NULL;
    if (ct)
        hdrs = curl_slist_append(hdrs, ct);
    hdrs = curl_slist_append(hdrs, "Accept: application/json, text/plain;q=0.5");
    hdrs = curl_slist_append(hdrs, "Expect:");
    _cleanup_free_ char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
    if (auth)
        hdrs = curl_slist_append(hdrs, auth);
    *ret = (struct reply){0};
    struct sink s = {.r = ret, .fd = fd};
    char errbuf[CURL_ERROR_SIZE] = "";
    (void) curl_easy_setopt(h, CURLOPT_URL, url);
    (void) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    (void) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    (void) curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    (void) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    (void) curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->cacert) {
        /* These CAs alone: a private CA's server is not also to be
         * believed on the word of every CA the system trusts. */
        (void) curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
        (void) curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (c->cert) {
        (void) curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
        (void) curl_easy_setopt(h, CURLOPT_SSLKEY, c->key ? c->key : c->cert);
    }
    if (body) {
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) len);
    }
    CURLcode rc = curl_easy_perform(h);
    (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
    char *got_ct = NULL;
    (void) curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &got_ct);
    ret->content_type = got_ct ? xstrdup(got_ct) : NULL;
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK && ret->status == 0) {
        fprintf(stderr, "ocps-proxy: cannot reach the server at %s: %s\n", c->server,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
        reply_done(ret);
        return EXIT_UNREACHABLE;
    }
    if (rc != CURLE_OK && fd < 0) {
        fprintf(stderr, "ocps-proxy: %s %s: %s\n", method, path,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
        reply_done(ret);
        return EXIT_TASK_FAILED;
    }
    return 0;
}

int cli_request(struct cli *c, const char *method, const char *path, const char *content_type,
                const char *body, size_t len, struct reply *ret)
{
    return perform(c, method, path, content_type, body, len, -1, ret);
}

int cli_stream(struct cli *c, const char *path, int fd, struct reply *ret)
{
    return perform(c, "GET", path, NULL, NULL, 0, fd, ret);
}

void reply_print_error(const struct reply *r)
{
    cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (cJSON_IsString(m))
        fprintf(stderr, "ocps-proxy: %ld: %s\n", r->status, m->valuestring);
    else
        fprintf(stderr, "ocps-proxy: the server answered %ld%s%.200s\n", r->status,
                r->body && *r->body ? ": " : "", r->body ? r->body : "");
    if (r->status == 401)
        fputs("ocps-proxy: give a token with --token-file FILE, $OCPS_PROXY_TOKEN or --token "
              "(`ocps-proxyd token create` makes one; root on the daemon's host uses its "
              "admin.token), or on an https listener with a client CA a certificate from it "
              "with --cert FILE --key FILE\n",
              stderr);
    cJSON_Delete(j);
}

cJSON *reply_json(const struct reply *r, long want_status)
{
    if (r->status != want_status) {
        reply_print_error(r);
        return NULL;
    }
    cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
    if (!j)
        fprintf(stderr, "ocps-proxy: the server's reply is not JSON\n");
    return j;
}
